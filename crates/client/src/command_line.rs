//! What a person types into a chat's entry line: a message, or a slash command (`/join ROOM`, `/msg NICK`,
//! ...), parsed into a [`Typed`] or refused with an error that says how to write it. Line mode, the
//! full-screen client and the desktop client all read their input through [`parse`], so they accept the same
//! commands with the same words. The moderation commands (`/kick`, `/topic`, ...) become a [`RoomAction`] for the
//! room shown: which room that is, and refusing them in a direct conversation, is the front end's part. So is
//! finding the message `/edit`, `/delete`, `/reply` and `/react` mean when no `#SEQ` names it (a [`Target`]).

use palomar_proto::{
    Conversation, NameError, Nick, REACTIONS, Role, RoomAction, RoomName, away_message, reaction_named, search_words,
};

use crate::preferences::{conversation_named, highlight_word};

/// Every command, for completion and help.
pub const COMMANDS: &[&str] = &[
    "/away",
    "/back",
    "/ban",
    "/cleartopic",
    "/delete",
    "/deop",
    "/devoice",
    "/edit",
    "/goto",
    "/help",
    "/highlight",
    "/history",
    "/ignore",
    "/invite",
    "/invite-only",
    "/join",
    "/jump",
    "/kick",
    "/leave",
    "/list",
    "/me",
    "/moderated",
    "/msg",
    "/mute",
    "/op",
    "/quit",
    "/react",
    "/receipts",
    "/reply",
    "/search",
    "/silence",
    "/topic",
    "/typing",
    "/unban",
    "/unhighlight",
    "/unignore",
    "/unmute",
    "/unreact",
    "/unsilence",
    "/users",
    "/voice",
    "/whois",
];

/// What `/help` says in every front end: how each entry is written, and what it does.
pub const HELP: &[(&str, &str)] = &[
    ("/join ROOM", "join ROOM (creating it) and talk there"),
    ("/leave [ROOM]", "leave ROOM (default: the current one)"),
    ("/msg NICK [TEXT]", "open a direct conversation with NICK, sending TEXT"),
    ("/users [ROOM]", "who is in ROOM, online and offline"),
    ("/whois NICK", "NICK: online, idle, away, rooms in common"),
    ("/away [MESSAGE]", "say you are away; alone: you are back"),
    ("/back", "you are back: no more away message"),
    ("/list [ROOM]", "list the rooms, 50 at a time; /list ROOM for those after ROOM"),
    ("/history [N]", "show N older messages of this conversation (default 20)"),
    ("/me TEXT", "say what you do: shown as * NICK TEXT"),
    ("/edit [#SEQ] TEXT", "new text for your last message here (or for message #SEQ)"),
    // The reason is told in the description: the usage column must stay narrow enough for a 40-column terminal.
    ("/delete [#SEQ|NICK]", "delete your last message here, #SEQ, or NICK's last one; a reason may follow"),
    ("/reply [#SEQ] TEXT", "quote and answer someone's last message (or #SEQ)"),
    ("/react [#SEQ] EMOJI", "react to someone's last message (or #SEQ), or undo"),
    // "[#SEQ]" would make the usage column too wide for a 40-column terminal: the description says it.
    ("/unreact #SEQ EMOJI", "take back a reaction (to #SEQ or someone's last)"),
    ("/jump #SEQ", "scroll to message #SEQ (fetched when older)"),
    ("/search [WORDS]", "find messages with WORDS (in:#ROOM, in:@NICK, in:here); alone: older ones"),
    ("/goto N", "open search result N where it was said"),
    ("/topic [TEXT]", "show the room's topic, or set it to TEXT"),
    ("/cleartopic", "remove the room's topic"),
    ("/kick NICK [REASON]", "put NICK out of the room (they may join again)"),
    ("/ban NICK [REASON]", "put NICK out of the room and keep them out"),
    ("/unban NICK", "let NICK join the room again"),
    ("/mute NICK [REASON]", "NICK stays in the room but may not speak"),
    ("/unmute NICK", "let NICK speak again"),
    ("/op NICK", "make NICK a moderator of the room"),
    ("/deop NICK", "take NICK's moderator role away"),
    ("/voice NICK", "let NICK speak while the room is moderated"),
    ("/devoice NICK", "take NICK's voice away"),
    ("/invite NICK", "let NICK join the room while it is invite-only"),
    ("/invite-only on|off", "only members and invited users may join"),
    ("/moderated on|off", "only voiced members and moderators may speak"),
    ("/silence [CONV]", "no alerts from this conversation (or #ROOM, @NICK)"),
    ("/unsilence [CONV]", "alerts from that conversation again"),
    ("/highlight [WORD]", "alert on WORD as on your name; alone: the list"),
    ("/unhighlight WORD", "no more alerts on WORD"),
    ("/ignore [NICK]", "hide NICK's messages; alone: who is ignored"),
    ("/unignore NICK", "show NICK's messages again"),
    ("/receipts on|off", "show and send how far you read, or not"),
    ("/typing on|off", "show and send who is typing, or not"),
    ("/help", "this list"),
    ("/quit", "leave; messages not yet sent wait for next time"),
    ("//text", "send a line that starts with /"),
];

/// [`HELP`] as lines of text, the descriptions lined up in one column.
pub fn help_lines() -> impl Iterator<Item = String> {
    let width = HELP.iter().map(|(usage, _)| usage.chars().count()).max().unwrap_or(0);
    HELP.iter().map(move |(usage, what)| format!("{usage:<width$}  {what}"))
}

/// A parsed entry line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// A message for the current conversation, exactly as typed (`//text` arrives here as `/text`).
    Text(String),
    /// `/join ROOM`: join (or create) a room and talk there.
    Join(RoomName),
    /// `/leave [ROOM]`: `None` is the current conversation.
    Leave(Option<RoomName>),
    /// `/msg NICK [TEXT]`: without text, only opens the direct conversation.
    Msg {
        to: Nick,
        text: Option<String>,
    },
    /// `/users [ROOM]`: `None` is the current room.
    Users(Option<RoomName>),
    /// `/whois NICK` (or `@NICK`): what the server may say of NICK's account.
    Whois(Nick),
    /// `/away MESSAGE` (checked: trimmed, one line, not too long), or `/away` alone and `/back` (`None`).
    Away(Option<String>),
    /// `/list [ROOM]`: the server's rooms by name, from the first or after `ROOM` (the next page).
    List(Option<RoomName>),
    /// `/history [N]`: `None` leaves the number to the front end.
    History(Option<u32>),
    /// `/me TEXT`: an action in the current conversation.
    Me(String),
    /// `/edit [#SEQ] TEXT`: new text for one of our messages in the current conversation (`None`: the latest).
    Edit {
        of: Option<u64>,
        text: String,
    },
    /// `/delete [#SEQ|NICK] [REASON]`: a message of the current conversation deleted, with a reason (may be empty).
    Delete {
        of: Target,
        reason: String,
    },
    /// `/reply [#SEQ] TEXT`: an answer to a message of the current conversation (`None`: the latest of someone
    /// else's).
    Reply {
        of: Option<u64>,
        text: String,
    },
    /// `/react [#SEQ] EMOJI`: a reaction (one of [`REACTIONS`], typed or by name) to a message of the current
    /// conversation (`None`: the latest of someone else's), or taking ours back; `/unreact` only takes back
    /// (`take_back`: line mode keeps no messages to know which reactions are ours).
    React {
        of: Option<u64>,
        emoji: &'static str,
        take_back: bool,
    },
    /// `/jump #SEQ`: bring message `SEQ` of the current conversation on screen (a front end with a window only).
    Jump(u64),
    /// `/search [in:CONV] WORDS`: messages with every word; `None` (`/search` alone): the next page of the last
    /// search.
    Search(Option<SearchTyped>),
    /// `/goto N`: open hit `N` (from 1) of the last search in its conversation.
    Goto(usize),
    /// `/topic` without text: show the current room's topic.
    ShowTopic,
    /// A moderation command (`/kick`, `/topic TEXT`, `/moderated on`, ...) for the current room.
    Moderate(RoomAction),
    /// `/silence [CONV]` (`on`) or `/unsilence [CONV]`: whether a conversation (`None`: the current one) may alert.
    Silence {
        conv: Option<Conversation>,
        on: bool,
    },
    /// `/highlight [WORD]`: a word (lower case) that alerts as a mention does; `None` lists them.
    Highlight(Option<String>),
    /// `/unhighlight WORD`.
    Unhighlight(String),
    /// `/ignore [NICK]`: hide what NICK sends; `None` lists whom.
    Ignore(Option<Nick>),
    /// `/unignore NICK`.
    Unignore(Nick),
    /// `/receipts [on|off]`: whether read receipts are exchanged; `None` says which.
    Receipts(Option<bool>),
    /// `/typing [on|off]`: whether typing notices are exchanged; `None` says which.
    TypingNotices(Option<bool>),
    Help,
    Quit,
}

/// A new search: its words as they go to the server, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTyped {
    pub query: String,
    pub scope: SearchScope,
}

/// Where `/search` looks: `in:here`, `in:#ROOM` or `in:@NICK`, or everywhere without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchScope {
    Everywhere,
    /// The conversation shown.
    Here,
    In(Conversation),
}

/// The message `/delete` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Our latest message in the current conversation.
    MyLatest,
    /// `#SEQ`: that message of the current conversation.
    Seq(u64),
    /// `NICK`: NICK's latest message in the current conversation (a moderator removing spam).
    LatestOf(Nick),
}

/// Why a line was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command /{0}; /help lists them")]
    Unknown(String),
    #[error("{usage}: {reason}")]
    Usage { usage: &'static str, reason: String },
}

fn usage(usage: &'static str) -> impl FnOnce(NameError) -> CommandError {
    move |error| CommandError::Usage { usage, reason: error.to_string() }
}

/// Parses one entry (it may span several lines); `Ok(None)` when there is nothing but white space.
///
/// The text of a message is not checked here (see `palomar_proto::validate_text`): the engine's caller does
/// that where it decides where the text goes.
pub fn parse(line: &str) -> Result<Option<Typed>, CommandError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    if let Some(escaped) = line.strip_prefix("//") {
        return Ok(Some(Typed::Text(format!("/{escaped}"))));
    }
    let Some(command) = line.strip_prefix('/') else { return Ok(Some(Typed::Text(line.to_owned()))) };
    let (name, rest) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
    let rest = rest.trim();
    let optional_room = |usage_text: &'static str| -> Result<Option<RoomName>, CommandError> {
        if rest.is_empty() { Ok(None) } else { RoomName::parse(rest).map(Some).map_err(usage(usage_text)) }
    };
    let typed = match name.to_ascii_lowercase().as_str() {
        "join" => Typed::Join(RoomName::parse(rest).map_err(usage("/join ROOM"))?),
        "leave" => Typed::Leave(optional_room("/leave [ROOM]")?),
        "msg" => {
            let (nick, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let to = Nick::parse(nick).map_err(usage("/msg NICK [TEXT]"))?;
            let text = text.trim();
            Typed::Msg { to, text: (!text.is_empty()).then(|| text.to_owned()) }
        }
        "users" => Typed::Users(optional_room("/users [ROOM]")?),
        "whois" => Typed::Whois(one_nick(rest.strip_prefix('@').unwrap_or(rest), "/whois NICK")?),
        "away" => Typed::Away(
            away_message(rest)
                .map_err(|why| CommandError::Usage { usage: "/away [MESSAGE]", reason: why.to_string() })?,
        ),
        "back" if rest.is_empty() => Typed::Away(None),
        "back" => return Err(missing("/back", "nothing comes after it; /away MESSAGE sets one")),
        "list" => Typed::List(optional_room("/list [ROOM]")?),
        "history" => match rest {
            "" => Typed::History(None),
            n => match n.parse::<u32>() {
                Ok(n) if n > 0 => Typed::History(Some(n)),
                _ => {
                    let reason = "N must be a whole number of messages, 1 or more".to_owned();
                    return Err(CommandError::Usage { usage: "/history [N]", reason });
                }
            },
        },
        "me" if rest.is_empty() => return Err(missing("/me TEXT", "the text is missing")),
        "me" => Typed::Me(rest.to_owned()),
        "edit" => {
            const USAGE: &str = "/edit [#SEQ] TEXT";
            let (of, text) = numbered(rest, USAGE)?;
            if text.is_empty() {
                return Err(missing(USAGE, "the new text is missing"));
            }
            Typed::Edit { of, text: text.to_owned() }
        }
        "reply" => {
            const USAGE: &str = "/reply [#SEQ] TEXT";
            let (of, text) = numbered(rest, USAGE)?;
            if text.is_empty() {
                return Err(missing(USAGE, "the text is missing"));
            }
            Typed::Reply { of, text: text.to_owned() }
        }
        "react" | "unreact" => {
            let take_back = name.eq_ignore_ascii_case("unreact");
            let usage_text = if take_back { "/unreact [#SEQ] EMOJI" } else { "/react [#SEQ] EMOJI" };
            let (of, typed) = numbered(rest, usage_text)?;
            let Some(emoji) = reaction_named(typed) else {
                let known: Vec<String> = REACTIONS.iter().map(|(emoji, name)| format!("{emoji} {name}")).collect();
                let reason = format!("EMOJI is one of {}", known.join(", "));
                return Err(CommandError::Usage { usage: usage_text, reason });
            };
            Typed::React { of, emoji, take_back }
        }
        "jump" => {
            const USAGE: &str = "/jump #SEQ";
            match numbered(rest, USAGE)? {
                (Some(seq), "") => Typed::Jump(seq),
                _ => return Err(missing(USAGE, "#SEQ is a message's number, as in #41")),
            }
        }
        "search" if rest.is_empty() => Typed::Search(None),
        "search" => Typed::Search(Some(search(rest)?)),
        "goto" => match rest.parse::<usize>() {
            Ok(n) if n > 0 && rest.bytes().all(|b| b.is_ascii_digit()) => Typed::Goto(n),
            _ => return Err(missing("/goto N", "N is the number of a search result, as in [3]")),
        },
        "delete" => {
            const USAGE: &str = "/delete [#SEQ|NICK] [REASON]";
            let (which, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let of = if which.is_empty() {
                Target::MyLatest
            } else if let Some(seq) = which.strip_prefix('#') {
                Target::Seq(message_number(seq, USAGE)?)
            } else {
                Target::LatestOf(Nick::parse(which).map_err(usage(USAGE))?)
            };
            Typed::Delete { of, reason: reason.trim().to_owned() }
        }
        "topic" if rest.is_empty() => Typed::ShowTopic,
        "topic" => Typed::Moderate(RoomAction::Topic { text: rest.to_owned() }),
        "cleartopic" => Typed::Moderate(RoomAction::Topic { text: String::new() }),
        "kick" => {
            let (nick, reason) = nick_and_reason(rest, "/kick NICK [REASON]")?;
            Typed::Moderate(RoomAction::Kick { nick, reason })
        }
        "ban" => {
            let (nick, reason) = nick_and_reason(rest, "/ban NICK [REASON]")?;
            Typed::Moderate(RoomAction::Ban { nick, reason })
        }
        "mute" => {
            let (nick, reason) = nick_and_reason(rest, "/mute NICK [REASON]")?;
            Typed::Moderate(RoomAction::Mute { nick, reason })
        }
        "unban" => Typed::Moderate(RoomAction::Unban { nick: only_nick(rest, "/unban NICK")? }),
        "unmute" => Typed::Moderate(RoomAction::Unmute { nick: only_nick(rest, "/unmute NICK")? }),
        "invite" => Typed::Moderate(RoomAction::Invite { nick: only_nick(rest, "/invite NICK")? }),
        "op" => set_role(rest, "/op NICK", Role::Moderator)?,
        "deop" => set_role(rest, "/deop NICK", Role::Member)?,
        "voice" => set_role(rest, "/voice NICK", Role::Voice)?,
        "devoice" => set_role(rest, "/devoice NICK", Role::Member)?,
        "invite-only" => Typed::Moderate(RoomAction::InviteOnly(on_or_off(rest, "/invite-only on|off")?)),
        "moderated" => Typed::Moderate(RoomAction::Moderated(on_or_off(rest, "/moderated on|off")?)),
        "silence" | "unsilence" => {
            let on = name.eq_ignore_ascii_case("silence");
            let usage_text = if on { "/silence [#ROOM|@NICK]" } else { "/unsilence [#ROOM|@NICK]" };
            let conv = match rest {
                "" => None,
                name => {
                    Some(conversation_named(name).map_err(|reason| CommandError::Usage { usage: usage_text, reason })?)
                }
            };
            Typed::Silence { conv, on }
        }
        "highlight" if rest.is_empty() => Typed::Highlight(None),
        "highlight" => Typed::Highlight(Some(
            highlight_word(rest).map_err(|reason| CommandError::Usage { usage: "/highlight [WORD]", reason })?,
        )),
        "unhighlight" => Typed::Unhighlight(
            highlight_word(rest).map_err(|reason| CommandError::Usage { usage: "/unhighlight WORD", reason })?,
        ),
        "ignore" if rest.is_empty() => Typed::Ignore(None),
        "ignore" => Typed::Ignore(Some(one_nick(rest, "/ignore [NICK]")?)),
        "unignore" => Typed::Unignore(one_nick(rest, "/unignore NICK")?),
        "receipts" if rest.is_empty() => Typed::Receipts(None),
        "receipts" => Typed::Receipts(Some(on_or_off(rest, "/receipts [on|off]")?)),
        "typing" if rest.is_empty() => Typed::TypingNotices(None),
        "typing" => Typed::TypingNotices(Some(on_or_off(rest, "/typing [on|off]")?)),
        "help" => Typed::Help,
        "quit" => Typed::Quit,
        _ => return Err(CommandError::Unknown(name.to_owned())),
    };
    Ok(Some(typed))
}

/// `[in:CONV] WORDS`, the `in:` anywhere in the line: what follows `/search`, and what a window's search field
/// takes.
pub fn search(rest: &str) -> Result<SearchTyped, CommandError> {
    const USAGE: &str = "/search [in:#ROOM|in:@NICK|in:here] WORDS";
    let refused = |reason: String| CommandError::Usage { usage: USAGE, reason };
    let mut scope = SearchScope::Everywhere;
    let mut words = Vec::new();
    for word in rest.split_whitespace() {
        let Some(place) = word.get(..3).filter(|start| start.eq_ignore_ascii_case("in:")).map(|_| &word[3..]) else {
            words.push(word);
            continue;
        };
        if scope != SearchScope::Everywhere {
            return Err(refused("one in: at most".to_owned()));
        }
        scope = if place.eq_ignore_ascii_case("here") {
            SearchScope::Here
        } else {
            SearchScope::In(conversation_named(place).map_err(refused)?)
        };
    }
    let query = words.join(" ");
    search_words(&query).map_err(|why| refused(why.to_string()))?;
    Ok(SearchTyped { query, scope })
}

fn missing(usage: &'static str, reason: &str) -> CommandError {
    CommandError::Usage { usage, reason: reason.to_owned() }
}

/// `[#SEQ] REST`: the message number, if one starts `rest`, and what follows it, trimmed.
fn numbered<'a>(rest: &'a str, usage_text: &'static str) -> Result<(Option<u64>, &'a str), CommandError> {
    match rest.strip_prefix('#') {
        Some(numbered) => {
            let (seq, text) = numbered.split_once(char::is_whitespace).unwrap_or((numbered, ""));
            Ok((Some(message_number(seq, usage_text)?), text.trim()))
        }
        None => Ok((None, rest)),
    }
}

/// The digits after `#` in `#SEQ`.
fn message_number(digits: &str, usage_text: &'static str) -> Result<u64, CommandError> {
    match digits.parse::<u64>() {
        // `parse` alone would also take a sign.
        Ok(seq) if seq > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(seq),
        _ => Err(missing(usage_text, "#SEQ is a message's number, as in #41")),
    }
}

/// `NICK [REASON]`: the nickname checked (and sent in its canonical form), the rest of the line the reason.
fn nick_and_reason(rest: &str, usage_text: &'static str) -> Result<(String, String), CommandError> {
    let (nick, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let nick = Nick::parse(nick).map_err(usage(usage_text))?;
    Ok((nick.to_string(), reason.trim().to_owned()))
}

/// `NICK` and nothing after it, in its canonical form.
fn only_nick(rest: &str, usage_text: &'static str) -> Result<String, CommandError> {
    Ok(one_nick(rest, usage_text)?.to_string())
}

/// `NICK` and nothing after it.
fn one_nick(rest: &str, usage_text: &'static str) -> Result<Nick, CommandError> {
    if rest.contains(char::is_whitespace) {
        let reason = "one nickname, and nothing after it".to_owned();
        return Err(CommandError::Usage { usage: usage_text, reason });
    }
    Nick::parse(rest).map_err(usage(usage_text))
}

fn set_role(rest: &str, usage_text: &'static str, role: Role) -> Result<Typed, CommandError> {
    Ok(Typed::Moderate(RoomAction::SetRole { nick: only_nick(rest, usage_text)?, role }))
}

fn on_or_off(rest: &str, usage_text: &'static str) -> Result<bool, CommandError> {
    match rest.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(CommandError::Usage { usage: usage_text, reason: "say on or off".to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use palomar_testkit::nick;

    use super::*;

    #[test]
    fn help_names_every_command_once_with_descriptions_in_one_column() {
        let lines: Vec<String> = help_lines().collect();
        for command in COMMANDS {
            let mentions = lines.iter().filter(|line| line.split_whitespace().next() == Some(*command)).count();
            assert_eq!(mentions, 1, "{command} in {lines:#?}");
        }
        let column =
            |line: &String| line.find("  ").map(|gap| gap + line[gap..].len() - line[gap..].trim_start().len());
        let columns: HashSet<_> = lines.iter().map(column).collect();
        assert_eq!(columns.len(), 1, "descriptions start in one column: {lines:#?}");
        // The desktop client tells a help line by its description.
        let descriptions: HashSet<_> = HELP.iter().map(|(_, what)| what).collect();
        assert_eq!(descriptions.len(), HELP.len(), "every description is its own");
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("valid room")
    }

    #[test]
    fn text_is_sent_as_typed_and_a_double_slash_escapes() {
        assert_eq!(parse("  hello  "), Ok(Some(Typed::Text("  hello  ".into()))));
        assert_eq!(parse("//join me"), Ok(Some(Typed::Text("/join me".into()))));
        assert_eq!(parse("line one\nline two"), Ok(Some(Typed::Text("line one\nline two".into()))));
        assert_eq!(parse(" \n\t "), Ok(None));
    }

    #[test]
    fn commands_and_their_arguments() {
        assert_eq!(parse("/join #Garden"), Ok(Some(Typed::Join(room("garden")))));
        assert_eq!(parse("/leave"), Ok(Some(Typed::Leave(None))));
        assert_eq!(parse("/leave garden"), Ok(Some(Typed::Leave(Some(room("garden"))))));
        assert_eq!(parse("/msg bob"), Ok(Some(Typed::Msg { to: nick("bob"), text: None })));
        assert_eq!(
            parse("/msg Bob  hi there\nsecond line "),
            Ok(Some(Typed::Msg { to: nick("bob"), text: Some("hi there\nsecond line".into()) }))
        );
        assert_eq!(parse("/users"), Ok(Some(Typed::Users(None))));
        assert_eq!(parse("/users lobby"), Ok(Some(Typed::Users(Some(RoomName::lobby())))));
        assert_eq!(parse("/list"), Ok(Some(Typed::List(None))));
        assert_eq!(parse("/list  #Garden "), Ok(Some(Typed::List(Some(room("garden"))))));
        assert_eq!(parse("/history"), Ok(Some(Typed::History(None))));
        assert_eq!(parse("/history 10"), Ok(Some(Typed::History(Some(10)))));
        assert_eq!(parse("/HELP"), Ok(Some(Typed::Help)));
        assert_eq!(parse("/quit now"), Ok(Some(Typed::Quit)));
    }

    #[test]
    fn mistakes_say_how_to_write_the_command() {
        let error = |line| parse(line).expect_err("refused").to_string();
        assert_eq!(error("/join"), "/join ROOM: room name must not be empty");
        assert!(error("/join two words").starts_with("/join ROOM: room name may only contain"));
        assert!(error("/msg 9lives hi").starts_with("/msg NICK [TEXT]: nickname may only contain"));
        assert!(error("/list no way").starts_with("/list [ROOM]: room name may only contain"));
        assert_eq!(error("/history 0"), "/history [N]: N must be a whole number of messages, 1 or more");
        assert_eq!(error("/dance"), "unknown command /dance; /help lists them");
        assert_eq!(error("/"), "unknown command /; /help lists them");
    }

    #[test]
    fn actions_edits_and_deletions() {
        assert_eq!(parse("/me  waves  "), Ok(Some(Typed::Me("waves".into()))));
        assert_eq!(parse("/edit fixed  text "), Ok(Some(Typed::Edit { of: None, text: "fixed  text".into() })));
        assert_eq!(parse("/edit #41  fixed"), Ok(Some(Typed::Edit { of: Some(41), text: "fixed".into() })));
        assert_eq!(parse("/delete"), Ok(Some(Typed::Delete { of: Target::MyLatest, reason: String::new() })));
        assert_eq!(parse("/delete #41"), Ok(Some(Typed::Delete { of: Target::Seq(41), reason: String::new() })));
        assert_eq!(
            parse("/delete #41  off topic "),
            Ok(Some(Typed::Delete { of: Target::Seq(41), reason: "off topic".into() }))
        );
        assert_eq!(
            parse("/delete Bob spam"),
            Ok(Some(Typed::Delete { of: Target::LatestOf(nick("bob")), reason: "spam".into() }))
        );
        assert_eq!(parse("//me waves"), Ok(Some(Typed::Text("/me waves".into()))));
    }

    #[test]
    fn action_edit_and_deletion_mistakes_say_how_to_write_them() {
        let error = |line| parse(line).expect_err("refused").to_string();
        assert_eq!(error("/me"), "/me TEXT: the text is missing");
        assert_eq!(error("/me   "), "/me TEXT: the text is missing");
        assert_eq!(error("/edit"), "/edit [#SEQ] TEXT: the new text is missing");
        assert_eq!(error("/edit #41"), "/edit [#SEQ] TEXT: the new text is missing");
        assert_eq!(error("/edit #abc x"), "/edit [#SEQ] TEXT: #SEQ is a message's number, as in #41");
        assert_eq!(error("/edit #+4 x"), "/edit [#SEQ] TEXT: #SEQ is a message's number, as in #41");
        assert_eq!(error("/edit #0 x"), "/edit [#SEQ] TEXT: #SEQ is a message's number, as in #41");
        assert_eq!(error("/delete #"), "/delete [#SEQ|NICK] [REASON]: #SEQ is a message's number, as in #41");
        assert!(error("/delete b@d spam").starts_with("/delete [#SEQ|NICK] [REASON]: nickname may only contain"));
    }

    #[test]
    fn replies_and_reactions() {
        assert_eq!(parse("/reply  sure "), Ok(Some(Typed::Reply { of: None, text: "sure".into() })));
        assert_eq!(
            parse("/reply #41 sure\nthing"),
            Ok(Some(Typed::Reply { of: Some(41), text: "sure\nthing".into() }))
        );
        let react = |of, emoji, take_back| Ok(Some(Typed::React { of, emoji, take_back }));
        assert_eq!(parse("/react 👍"), react(None, "👍", false));
        assert_eq!(parse("/react #41 :tada:"), react(Some(41), "🎉", false));
        assert_eq!(parse("/REACT #41 heart"), react(Some(41), "❤\u{fe0f}", false));
        assert_eq!(parse("/unreact #41 ❤"), react(Some(41), "❤\u{fe0f}", true));
        let error = |line| parse(line).expect_err("refused").to_string();
        assert_eq!(error("/reply #41"), "/reply [#SEQ] TEXT: the text is missing");
        assert_eq!(error("/reply"), "/reply [#SEQ] TEXT: the text is missing");
        assert_eq!(error("/reply #x hi"), "/reply [#SEQ] TEXT: #SEQ is a message's number, as in #41");
        let unknown = error("/react #41 smile");
        assert!(unknown.starts_with("/react [#SEQ] EMOJI: EMOJI is one of 👍 +1, 👎 -1, "), "{unknown}");
        assert!(unknown.ends_with("👀 eyes"), "{unknown}");
        assert!(error("/react").starts_with("/react [#SEQ] EMOJI: EMOJI is one of"));
        assert!(error("/unreact #4 x").starts_with("/unreact [#SEQ] EMOJI: EMOJI is one of"));
    }

    #[test]
    fn silence_highlight_and_ignore() {
        let error = |line| parse(line).expect_err("refused").to_string();
        let random = Conversation::Room(RoomName::parse("random").expect("room"));
        let bob = Nick::parse("bob").expect("nick");
        assert_eq!(parse("/silence"), Ok(Some(Typed::Silence { conv: None, on: true })));
        assert_eq!(parse("/silence #random"), Ok(Some(Typed::Silence { conv: Some(random.clone()), on: true })));
        assert_eq!(parse("/unsilence random"), Ok(Some(Typed::Silence { conv: Some(random), on: false })));
        assert_eq!(
            parse("/silence @bob"),
            Ok(Some(Typed::Silence { conv: Some(Conversation::Direct(bob.clone())), on: true }))
        );
        assert_eq!(parse("/highlight"), Ok(Some(Typed::Highlight(None))));
        assert_eq!(parse("/highlight Deploy"), Ok(Some(Typed::Highlight(Some("deploy".to_owned())))));
        assert_eq!(parse("/unhighlight deploy"), Ok(Some(Typed::Unhighlight("deploy".to_owned()))));
        assert_eq!(parse("/receipts"), Ok(Some(Typed::Receipts(None))));
        assert_eq!(parse("/receipts OFF"), Ok(Some(Typed::Receipts(Some(false)))));
        assert_eq!(parse("/typing on"), Ok(Some(Typed::TypingNotices(Some(true)))));
        assert!(matches!(parse("/typing maybe"), Err(CommandError::Usage { usage: "/typing [on|off]", .. })));
        assert_eq!(parse("/ignore"), Ok(Some(Typed::Ignore(None))));
        assert_eq!(parse("/ignore bob"), Ok(Some(Typed::Ignore(Some(bob.clone())))));
        assert_eq!(parse("/unignore bob"), Ok(Some(Typed::Unignore(bob))));
        assert!(error("/silence #two words").starts_with("/silence [#ROOM|@NICK]: "));
        assert!(error("/highlight two words").starts_with("/highlight [WORD]: one word"));
        assert!(error("/unhighlight").starts_with("/unhighlight WORD: "));
        assert!(error("/ignore bob carol").starts_with("/ignore [NICK]: one nickname"));
        assert!(error("/unignore").starts_with("/unignore NICK: "));
        // The room moderation commands keep their words.
        assert!(matches!(parse("/mute bob"), Ok(Some(Typed::Moderate(RoomAction::Mute { .. })))));
    }

    #[test]
    fn away_back_and_whois() {
        assert_eq!(parse("/away  lunch, back at 2 "), Ok(Some(Typed::Away(Some("lunch, back at 2".into())))));
        assert_eq!(parse("/away"), Ok(Some(Typed::Away(None))), "alone: back");
        assert_eq!(parse("/back"), Ok(Some(Typed::Away(None))));
        assert_eq!(parse("/whois bob"), Ok(Some(Typed::Whois(nick("bob")))));
        assert_eq!(parse("/whois @Bob"), Ok(Some(Typed::Whois(nick("bob")))), "@NICK as a conversation names it");
        let error = |line: &str| parse(line).expect_err("refused").to_string();
        assert_eq!(
            error(&format!("/away {}", "x".repeat(201))),
            "/away [MESSAGE]: an away message is at most 200 bytes long"
        );
        assert_eq!(
            error("/away out\u{1b}[2J"),
            "/away [MESSAGE]: an away message is one line, without control characters"
        );
        assert!(error("/back soon").starts_with("/back: "));
        assert!(error("/whois").starts_with("/whois NICK: "));
        assert!(error("/whois bob carol").starts_with("/whois NICK: one nickname"));
    }

    #[test]
    fn jump() {
        assert_eq!(parse("/jump #41"), Ok(Some(Typed::Jump(41))));
        let search = |query: &str, scope| Ok(Some(Typed::Search(Some(SearchTyped { query: query.into(), scope }))));
        assert_eq!(parse("/search  Lunch  Friday "), search("Lunch Friday", SearchScope::Everywhere));
        assert_eq!(
            parse("/search lunch IN:#Garden"),
            search("lunch", SearchScope::In(Conversation::Room(room("garden"))))
        );
        assert_eq!(parse("/search in:@bob lunch"), search("lunch", SearchScope::In(Conversation::Direct(nick("bob")))));
        assert_eq!(parse("/search in:here lunch?"), search("lunch?", SearchScope::Here));
        assert_eq!(parse("/search"), Ok(Some(Typed::Search(None))), "the next page");
        for (wrong, reason) in [
            ("/search in:here", "search for at least one word"),
            ("/search ???", "search for at least one word"),
            ("/search a b c d e f g h i", "search for at most 8 words"),
            ("/search in:here in:#garden x", "one in: at most"),
            ("/search in:#Bad! x", "room name may only contain"),
        ] {
            match parse(wrong) {
                Err(CommandError::Usage { reason: said, .. }) => assert!(said.starts_with(reason), "{wrong}: {said}"),
                other => panic!("{wrong} was taken: {other:?}"),
            }
        }
        assert_eq!(parse("/goto 3"), Ok(Some(Typed::Goto(3))));
        for wrong in ["/goto", "/goto 0", "/goto +3", "/goto #3", "/goto 3 4"] {
            assert!(parse(wrong).is_err(), "{wrong} was taken");
        }
        assert_eq!(parse("/JUMP  #7 "), Ok(Some(Typed::Jump(7))));
        let error = |line| parse(line).expect_err("refused").to_string();
        for wrong in ["/jump", "/jump 41", "/jump #", "/jump #x", "/jump #41 more", "/jump #-1"] {
            assert_eq!(error(wrong), "/jump #SEQ: #SEQ is a message's number, as in #41", "{wrong}");
        }
    }

    fn moderate(line: &str) -> RoomAction {
        match parse(line) {
            Ok(Some(Typed::Moderate(action))) => action,
            other => panic!("{line}: a moderation command expected, got {other:?}"),
        }
    }

    #[test]
    fn moderation_commands_and_their_arguments() {
        let (bob, no_reason) = ("bob".to_owned(), String::new());
        assert_eq!(
            moderate("/kick Bob  spamming the room "),
            RoomAction::Kick { nick: bob.clone(), reason: "spamming the room".into() }
        );
        assert_eq!(moderate("/kick bob"), RoomAction::Kick { nick: bob.clone(), reason: no_reason.clone() });
        assert_eq!(moderate("/ban bob spam"), RoomAction::Ban { nick: bob.clone(), reason: "spam".into() });
        assert_eq!(moderate("/ban bob"), RoomAction::Ban { nick: bob.clone(), reason: no_reason.clone() });
        assert_eq!(moderate("/unban bob"), RoomAction::Unban { nick: bob.clone() });
        assert_eq!(moderate("/mute bob calm down"), RoomAction::Mute { nick: bob.clone(), reason: "calm down".into() });
        assert_eq!(moderate("/mute bob"), RoomAction::Mute { nick: bob.clone(), reason: no_reason });
        assert_eq!(moderate("/unmute bob"), RoomAction::Unmute { nick: bob.clone() });
        assert_eq!(moderate("/op bob"), RoomAction::SetRole { nick: bob.clone(), role: Role::Moderator });
        assert_eq!(moderate("/deop bob"), RoomAction::SetRole { nick: bob.clone(), role: Role::Member });
        assert_eq!(moderate("/voice bob"), RoomAction::SetRole { nick: bob.clone(), role: Role::Voice });
        assert_eq!(moderate("/devoice bob"), RoomAction::SetRole { nick: bob.clone(), role: Role::Member });
        assert_eq!(moderate("/invite bob"), RoomAction::Invite { nick: bob });
        assert_eq!(moderate("/topic  Seeds and  weeds "), RoomAction::Topic { text: "Seeds and  weeds".into() });
        assert_eq!(moderate("/cleartopic"), RoomAction::Topic { text: String::new() });
        assert_eq!(moderate("/invite-only on"), RoomAction::InviteOnly(true));
        assert_eq!(moderate("/invite-only OFF"), RoomAction::InviteOnly(false));
        assert_eq!(moderate("/moderated on"), RoomAction::Moderated(true));
        assert_eq!(moderate("/moderated off"), RoomAction::Moderated(false));
        assert_eq!(parse("/topic"), Ok(Some(Typed::ShowTopic)));
        assert_eq!(parse("/topic   "), Ok(Some(Typed::ShowTopic)));
    }

    #[test]
    fn moderation_mistakes_say_how_to_write_the_command() {
        let error = |line| parse(line).expect_err("refused").to_string();
        assert_eq!(error("/kick"), "/kick NICK [REASON]: nickname must not be empty");
        assert!(error("/ban 9lives spam").starts_with("/ban NICK [REASON]: nickname may only contain"));
        assert!(error("/mute b@d").starts_with("/mute NICK [REASON]: nickname may only contain"));
        assert_eq!(error("/unban"), "/unban NICK: nickname must not be empty");
        assert_eq!(error("/unmute bob now"), "/unmute NICK: one nickname, and nothing after it");
        assert_eq!(error("/op"), "/op NICK: nickname must not be empty");
        assert_eq!(error("/deop bob carol"), "/deop NICK: one nickname, and nothing after it");
        assert!(error("/voice #garden").starts_with("/voice NICK: nickname may only contain"));
        assert_eq!(error("/devoice"), "/devoice NICK: nickname must not be empty");
        assert_eq!(error("/invite"), "/invite NICK: nickname must not be empty");
        assert_eq!(error("/invite-only"), "/invite-only on|off: say on or off");
        assert_eq!(error("/invite-only yes"), "/invite-only on|off: say on or off");
        assert_eq!(error("/moderated maybe"), "/moderated on|off: say on or off");
    }
}
