//! What a user chose about being told of messages, for one account in one chat: the conversations silenced (they
//! never alert), extra highlight words (they count as mentions), the nicknames ignored (their messages are not
//! shown), and whether read receipts and typing notices are exchanged (both ways, as in WhatsApp or Signal). The
//! client's own, never sent to the server; kept beside the account's state in `preferences.toml`, a file a person
//! may also edit.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use palomar_proto::{Conversation, Nick, RoomName};
use serde::{Deserialize, Serialize};

use crate::owner_only;

/// Most highlight words one keeps: each is matched against every message.
pub const MAX_HIGHLIGHTS: usize = 50;
/// Most nicknames one ignores.
pub const MAX_IGNORED: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub silenced: BTreeSet<Conversation>,
    /// Lower case: matched with ASCII case ignored, as nicknames are.
    pub highlights: BTreeSet<String>,
    pub ignored: BTreeSet<Nick>,
    /// `/receipts off`: no read marker is sent from here, and nobody's "seen by" is shown.
    pub no_read_receipts: bool,
    /// `/typing off`: nobody is told the user is typing here, and nobody is shown typing.
    pub no_typing_notices: bool,
}

/// What `/receipts off` says.
pub const RECEIPTS_OFF: &str =
    "read receipts off: others are not shown what you read, and you are not shown what they read";
/// What `/receipts on` says.
pub const RECEIPTS_ON: &str = "read receipts on";
/// What `/typing off` says.
pub const TYPING_OFF: &str = "typing notices off: others are not told you are typing, and you are not shown who is";
/// What `/typing on` says.
pub const TYPING_ON: &str = "typing notices on";

/// The file's form: names as they are written (`#room`, `@nick`), so that a person can edit it.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PreferencesFile {
    silenced: Vec<String>,
    highlights: Vec<String>,
    ignored: Vec<String>,
    /// Missing: on.
    read_receipts: Option<bool>,
    /// Missing: on.
    typing_notices: Option<bool>,
}

/// Why the preferences file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a preferences file: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// `preferences.toml` beside the account's state file (`state_path`): per account, per chat.
pub fn preferences_path(state_path: &Path) -> PathBuf {
    state_path.with_file_name("preferences.toml")
}

/// `word` as a highlight word: one word of letters, digits, `-` and `_` (what a mention matches), lower-cased.
pub fn highlight_word(word: &str) -> Result<String, String> {
    if word.is_empty() {
        return Err("the word is missing".to_owned());
    }
    if !word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("one word of letters, digits, - and _ (a message is matched word by word)".to_owned());
    }
    Ok(word.to_ascii_lowercase())
}

/// A conversation as written in a command or the file: `#room`, `@nick`, or a room's bare name.
pub fn conversation_named(name: &str) -> Result<Conversation, String> {
    match name.strip_prefix('@') {
        Some(nick) => Nick::parse(nick).map(Conversation::Direct).map_err(|e| e.to_string()),
        None => {
            RoomName::parse(name.strip_prefix('#').unwrap_or(name)).map(Conversation::Room).map_err(|e| e.to_string())
        }
    }
}

/// What a command did to the preferences: what to tell the user, whether it was refused, whether there is
/// anything new to save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub said: String,
    pub refused: bool,
    pub changed: bool,
}

impl Outcome {
    fn done(said: String) -> Outcome {
        Outcome { said, refused: false, changed: true }
    }

    fn nothing(said: String) -> Outcome {
        Outcome { said, refused: false, changed: false }
    }

    fn refused(said: String) -> Outcome {
        Outcome { said, refused: true, changed: false }
    }
}

/// A switch kept as `off` (so that a file without it, or the default, has it on) turned `on` or off, or said as it
/// is (`None`), in the words `(on, off)`.
fn switch(off: &mut bool, on: Option<bool>, words: (&str, &str)) -> Outcome {
    let said = |on: bool| if on { words.0 } else { words.1 }.to_owned();
    match on {
        None => Outcome::nothing(said(!*off)),
        Some(on) if on != *off => Outcome::nothing(said(on)),
        Some(on) => {
            *off = !on;
            Outcome::done(said(on))
        }
    }
}

impl Preferences {
    /// `/silence` (`on`) or `/unsilence` of `conversation`.
    pub fn silence(&mut self, conversation: &Conversation, on: bool) -> Outcome {
        match (on, self.silenced.contains(conversation)) {
            (true, false) => {
                self.silenced.insert(conversation.clone());
                Outcome::done(format!("silenced {conversation}: no notifications from it (/unsilence to undo)"))
            }
            (true, true) => Outcome::nothing(format!("{conversation} is already silenced")),
            (false, true) => {
                self.silenced.remove(conversation);
                Outcome::done(format!("{conversation} is no longer silenced"))
            }
            (false, false) => Outcome::nothing(format!("{conversation} is not silenced")),
        }
    }

    /// What `/highlight` alone says.
    pub fn list_highlights(&self) -> String {
        if self.highlights.is_empty() {
            return "no highlight words; /highlight WORD adds one".to_owned();
        }
        let words: Vec<&str> = self.highlights.iter().map(String::as_str).collect();
        format!("highlight words: {}", words.join(", "))
    }

    /// `/highlight WORD`, `word` as [`highlight_word`] gives it.
    pub fn highlight(&mut self, word: String) -> Outcome {
        if self.highlights.contains(&word) {
            Outcome::nothing(format!("{word} is already a highlight word"))
        } else if self.highlights.len() >= MAX_HIGHLIGHTS {
            Outcome::refused(format!(
                "{word} was not added: at most {MAX_HIGHLIGHTS} highlight words (/unhighlight one first)"
            ))
        } else {
            let said = format!("highlighting {word}: messages with it count as mentions (/unhighlight {word} to stop)");
            self.highlights.insert(word);
            Outcome::done(said)
        }
    }

    /// `/unhighlight WORD`.
    pub fn unhighlight(&mut self, word: &str) -> Outcome {
        if self.highlights.remove(word) {
            Outcome::done(format!("no longer highlighting {word}"))
        } else {
            Outcome::nothing(format!("{word} is not a highlight word"))
        }
    }

    /// What `/ignore` alone says.
    pub fn list_ignored(&self) -> String {
        if self.ignored.is_empty() {
            return "ignoring nobody; /ignore NICK hides someone's messages".to_owned();
        }
        let nicks: Vec<String> = self.ignored.iter().map(ToString::to_string).collect();
        format!("ignoring: {}", nicks.join(", "))
    }

    /// `/ignore NICK`, typed by `me`.
    pub fn ignore(&mut self, nick: Nick, me: &Nick) -> Outcome {
        if nick == *me {
            Outcome::refused("you cannot ignore yourself".to_owned())
        } else if self.ignored.contains(&nick) {
            Outcome::nothing(format!("{nick} is already ignored"))
        } else if self.ignored.len() >= MAX_IGNORED {
            Outcome::refused(format!(
                "{nick} was not ignored: at most {MAX_IGNORED} nicknames are (/unignore one first)"
            ))
        } else {
            let said = format!("ignoring {nick}: their messages are hidden (/unignore {nick} to show them)");
            self.ignored.insert(nick);
            Outcome::done(said)
        }
    }

    /// `/unignore NICK`.
    pub fn unignore(&mut self, nick: &Nick) -> Outcome {
        if self.ignored.remove(nick) {
            Outcome::done(format!("no longer ignoring {nick}"))
        } else {
            Outcome::nothing(format!("{nick} is not ignored"))
        }
    }

    /// `/receipts [on|off]` (`None`: what it is now).
    pub fn receipts(&mut self, on: Option<bool>) -> Outcome {
        switch(&mut self.no_read_receipts, on, (RECEIPTS_ON, RECEIPTS_OFF))
    }

    /// `/typing [on|off]` (`None`: what it is now).
    pub fn typing_notices(&mut self, on: Option<bool>) -> Outcome {
        switch(&mut self.no_typing_notices, on, (TYPING_ON, TYPING_OFF))
    }

    /// The preferences in `path`; none chosen when it does not exist.
    pub fn load(path: &Path) -> Result<Preferences, PreferencesError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Preferences::default()),
            Err(source) => return Err(PreferencesError::Io { path: path.to_owned(), source }),
        };
        let invalid = |reason: String| PreferencesError::Invalid { path: path.to_owned(), reason };
        let file: PreferencesFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let silenced = file
            .silenced
            .iter()
            .map(|name| conversation_named(name).map_err(|e| invalid(format!("silenced {name:?}: {e}"))))
            .collect::<Result<_, _>>()?;
        let highlights = file
            .highlights
            .iter()
            .map(|word| highlight_word(word).map_err(|e| invalid(format!("highlight {word:?}: {e}"))))
            .collect::<Result<_, _>>()?;
        let ignored = file
            .ignored
            .iter()
            .map(|nick| Nick::parse(nick).map_err(|e| invalid(format!("ignored {nick:?}: {e}"))))
            .collect::<Result<_, _>>()?;
        Ok(Preferences {
            silenced,
            highlights,
            ignored,
            no_read_receipts: file.read_receipts == Some(false),
            no_typing_notices: file.typing_notices == Some(false),
        })
    }

    /// The preferences in `path` for a front end to start with, and what to tell the user when the file could
    /// not be read: none apply then, and the first change replaces the file.
    pub fn load_or_explain(path: &Path) -> (Preferences, Option<String>) {
        match Preferences::load(path) {
            Ok(preferences) => (preferences, None),
            Err(error) => {
                (Preferences::default(), Some(format!("{error}; none apply, and your next change replaces it")))
            }
        }
    }

    /// Writes the preferences owner-only (whom one ignores is nobody else's business), replacing the file whole:
    /// a crash leaves the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), PreferencesError> {
        let io = |source| PreferencesError::Io { path: path.to_owned(), source };
        let file = PreferencesFile {
            silenced: self.silenced.iter().map(ToString::to_string).collect(),
            highlights: self.highlights.iter().cloned().collect(),
            ignored: self.ignored.iter().map(ToString::to_string).collect(),
            read_receipts: Some(!self.no_read_receipts),
            typing_notices: Some(!self.no_typing_notices),
        };
        let text = toml::to_string(&file).map_err(|e| io(std::io::Error::other(e)))?;
        if let Some(dir) = path.parent() {
            owner_only::create_dir_all(dir).map_err(io)?;
        }
        let staged = path.with_extension("toml.new");
        let mut out = owner_only::create(&staged).map_err(io)?;
        out.write_all(text.as_bytes()).and_then(|()| out.sync_all()).map_err(io)?;
        std::fs::rename(&staged, path).map_err(io)
    }

    /// Whether `text` holds one of the highlight words, matched word by word as a mention is.
    pub fn highlights_in(&self, text: &str) -> bool {
        !self.highlights.is_empty()
            && text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .any(|word| !word.is_empty() && self.highlights.contains(&word.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(name: &str) -> Nick {
        Nick::parse(name).expect("valid nick")
    }

    #[test]
    fn preferences_survive_a_save_and_a_load_and_a_missing_file_is_none_chosen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = preferences_path(&dir.path().join("chat").join("ana").join("state.sqlite"));
        assert_eq!(Preferences::load(&path).expect("loads"), Preferences::default());
        let mut chosen = Preferences::default();
        chosen.silenced.insert(conversation_named("#random").expect("room"));
        chosen.silenced.insert(conversation_named("@bob").expect("direct"));
        chosen.highlights.insert(highlight_word("Deploy").expect("word"));
        chosen.ignored.insert(nick("mallory"));
        chosen.no_read_receipts = true;
        chosen.save(&path).expect("saves");
        assert_eq!(Preferences::load(&path).expect("loads"), chosen);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("exists").permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner only");
        }
        let text = std::fs::read_to_string(&path).expect("reads");
        assert!(text.contains("\"#random\"") && text.contains("\"@bob\"") && text.contains("\"deploy\""), "{text}");
        assert!(text.contains("read_receipts = false") && text.contains("typing_notices = true"), "{text}");
        // A file written before these two settings existed has them on.
        std::fs::write(&path, "ignored = [\"mallory\"]\n").expect("writes");
        let older = Preferences::load(&path).expect("loads");
        assert!(!older.no_read_receipts && !older.no_typing_notices);
    }

    #[test]
    fn a_broken_file_is_an_error_that_names_it_and_what_is_wrong() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("preferences.toml");
        std::fs::write(&path, "ignored = [\"not a nick!\"]\n").expect("writes");
        let error = Preferences::load(&path).expect_err("refused").to_string();
        assert!(error.contains("preferences.toml") && error.contains("not a nick!"), "{error}");
        std::fs::write(&path, "silence = []\n").expect("writes");
        assert!(Preferences::load(&path).is_err(), "an unknown key is a mistake, not nothing");
    }

    #[test]
    fn highlight_words_match_whole_words_with_case_ignored() {
        let mut preferences = Preferences::default();
        assert!(!preferences.highlights_in("deploy now"));
        preferences.highlights.insert(highlight_word("deploy").expect("word"));
        assert!(preferences.highlights_in("DEPLOY now"));
        assert!(preferences.highlights_in("the deploy, again"));
        assert!(!preferences.highlights_in("redeployed"));
        assert!(highlight_word("two words").is_err());
        assert!(highlight_word("").is_err());
        assert_eq!(highlight_word("On-Call_2").as_deref(), Ok("on-call_2"));
    }

    #[test]
    fn commands_change_them_within_their_limits_and_say_so() {
        let (me, bob) = (nick("ana"), nick("bob"));
        let mut preferences = Preferences::default();
        assert_eq!(preferences.list_ignored(), "ignoring nobody; /ignore NICK hides someone's messages");
        assert!(preferences.ignore(me.clone(), &me).refused);
        let ignored = preferences.ignore(bob.clone(), &me);
        assert!(ignored.changed && !ignored.refused, "{ignored:?}");
        assert!(!preferences.ignore(bob.clone(), &me).changed);
        assert_eq!(preferences.list_ignored(), "ignoring: bob");
        assert!(preferences.unignore(&bob).changed);
        assert_eq!(preferences.unignore(&bob).said, "bob is not ignored");
        for n in 0..MAX_IGNORED {
            assert!(preferences.ignore(nick(&format!("n{n}")), &me).changed);
        }
        assert!(preferences.ignore(bob, &me).refused);

        for n in 0..MAX_HIGHLIGHTS {
            assert!(preferences.highlight(format!("w{n}")).changed);
        }
        let refused = preferences.highlight("deploy".to_owned());
        assert!(refused.refused && refused.said.contains("at most 50"), "{refused:?}");
        assert!(preferences.unhighlight("w0").changed);
        assert!(!preferences.unhighlight("w0").changed);

        let random = conversation_named("#random").expect("room");
        assert!(preferences.silence(&random, true).changed);
        assert_eq!(preferences.silence(&random, true).said, "#random is already silenced");
        assert!(preferences.silence(&random, false).changed);
        assert_eq!(preferences.silence(&random, false).said, "#random is not silenced");
    }

    #[test]
    fn conversations_are_named_as_typed() {
        assert_eq!(conversation_named("#random"), conversation_named("random"));
        assert!(matches!(conversation_named("@bob"), Ok(Conversation::Direct(_))));
        assert!(conversation_named("@").is_err());
        assert!(conversation_named("#no spaces").is_err());
    }
}
