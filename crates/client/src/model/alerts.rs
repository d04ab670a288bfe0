//! What alerts the user, and the choices that decide it: `/silence` (a conversation never alerts), `/highlight`
//! (a word alerts as our nickname does) and `/ignore` (someone's messages are not drawn, counted or alerted on).
//! The choices are the user's [`Preferences`]; the front end loads them at start and saves them when told
//! ([`Action::SavePreferences`]).

use palomar_proto::{Conversation, Message, MessageKind, Nick};

use super::conv::first_line;
use super::{Action, ChatModel};
use crate::preferences::{Outcome, Preferences};

/// Most characters of a message shown in an alert.
const ALERT_CHARS: usize = 200;

/// What to tell a user who is not looking: a desktop notification's title and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub title: String,
    pub body: String,
}

impl Alert {
    /// An alert for `message`, which came in `conversation`: who and where, and the start of its first line.
    pub(super) fn of_message(message: &Message) -> Alert {
        let title = match &message.conversation {
            Conversation::Room(room) => format!("{} in #{room}", message.from),
            Conversation::Direct(_) => format!("{} (direct)", message.from),
        };
        let (mut body, cut) = first_line(&message.text, ALERT_CHARS);
        if cut {
            body.push('…');
        }
        if message.kind == MessageKind::Action {
            body = format!("* {} {body}", message.from);
        }
        Alert { title, body }
    }
}

impl ChatModel {
    pub fn preferences(&self) -> &Preferences {
        &self.preferences
    }

    /// Takes the preferences the front end loaded: silenced conversations, highlight words, ignored nicknames.
    pub fn set_preferences(&mut self, preferences: Preferences) {
        self.preferences = preferences;
        self.follow_ignored();
    }

    /// Whether `conversation` never alerts (`/silence`).
    pub fn is_silenced(&self, conversation: &Conversation) -> bool {
        self.preferences.silenced.contains(conversation)
    }

    /// Whether `nick` is ignored (`/ignore`).
    pub fn is_ignored(&self, nick: &Nick) -> bool {
        self.preferences.ignored.contains(nick)
    }

    /// Whether a message from someone else calls us: our nickname or a highlight word in it.
    pub(super) fn calls_us(&self, text: &str) -> bool {
        super::mentions(text, &self.me) || self.preferences.highlights_in(text)
    }

    fn follow_ignored(&mut self) {
        for conv in &mut self.convs {
            conv.ignore(&self.preferences.ignored);
        }
    }

    /// `/silence` and `/unsilence`: `conversation` (`None`: the one shown) alerts or not.
    pub(super) fn silence(&mut self, conversation: Option<Conversation>, on: bool) -> Vec<Action> {
        let conversation = conversation.unwrap_or_else(|| self.current().id.clone());
        let outcome = self.preferences.silence(&conversation, on);
        self.told(outcome)
    }

    /// `/highlight [WORD]`: lists the words, or adds one.
    pub(super) fn highlight(&mut self, word: Option<String>) -> Vec<Action> {
        match word {
            Some(word) => {
                let outcome = self.preferences.highlight(word);
                self.told(outcome)
            }
            None => {
                self.notice_here(self.preferences.list_highlights(), false);
                Vec::new()
            }
        }
    }

    /// `/unhighlight WORD`.
    pub(super) fn unhighlight(&mut self, word: String) -> Vec<Action> {
        let outcome = self.preferences.unhighlight(&word);
        self.told(outcome)
    }

    /// `/ignore [NICK]`: lists whom, or hides NICK's messages.
    pub(super) fn ignore(&mut self, nick: Option<Nick>) -> Vec<Action> {
        match nick {
            Some(nick) => {
                let outcome = self.preferences.ignore(nick, &self.me);
                if outcome.changed {
                    self.follow_ignored();
                }
                self.told(outcome)
            }
            None => {
                self.notice_here(self.preferences.list_ignored(), false);
                Vec::new()
            }
        }
    }

    /// `/unignore NICK`: shows their messages again where they were.
    pub(super) fn unignore(&mut self, nick: Nick) -> Vec<Action> {
        let outcome = self.preferences.unignore(&nick);
        if outcome.changed {
            self.follow_ignored();
        }
        self.told(outcome)
    }

    /// Says what a command did; saving is asked for when it changed something.
    pub(super) fn told(&mut self, outcome: Outcome) -> Vec<Action> {
        self.notice_here(outcome.said, outcome.refused);
        if outcome.changed { vec![Action::SavePreferences] } else { Vec::new() }
    }
}
