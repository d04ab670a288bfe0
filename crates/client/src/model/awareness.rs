//! Knowing who is there (protocol version 6), all but read markers: away messages (`/away`, `/back`, the user's
//! own for the status line, others' for member lists, the notice when writing to someone away), `/whois` and the
//! lines its answer is shown as, and typing notices, sent as the entry line changes and shown under the
//! conversation until they expire (neither with `/typing off`). The words are here, in shared functions, so that
//! every front end says the same; read markers are in `read_markers`.

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use palomar_proto::{AWARENESS_VERSION, Conversation, Nick, TYPING_RENEW_MS, TYPING_SHOWN_MS, WhoisInfo};

use super::{Action, ChatModel, Status};
use crate::engine::{Command, NO_AWAY_MESSAGES, NO_WHOIS};

/// "5 s", "3 min", "2 h 10 min", "3 d 4 h": how long, in the largest units that say it.
pub fn duration_text(ms: u64) -> String {
    let seconds = ms / 1000;
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    if seconds < 60 {
        format!("{seconds} s")
    } else if minutes < 60 {
        format!("{minutes} min")
    } else if hours < 24 {
        format!("{hours} h {} min", minutes % 60)
    } else {
        format!("{days} d {} h", hours % 24)
    }
}

/// A moment seen from `now_ms` at `offset`: "14:05" today, "2026-11-01 14:05" another day.
pub fn local_time(ms: u64, now_ms: u64, offset: FixedOffset) -> String {
    let at = |ms: u64| DateTime::from_timestamp_millis(i64::try_from(ms).ok()?).map(|t| t.with_timezone(&offset));
    let (Some(then), Some(now)) = (at(ms), at(now_ms)) else { return String::new() };
    if then.date_naive() == now.date_naive() {
        then.format("%H:%M").to_string()
    } else {
        then.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// The notices a `Whois` answer is shown as, one per line, asked by `me` at `now_ms` (times at `offset`):
/// "ana: online since 14:05 (2 h 10 min), idle 5 min" (or "ana: offline"), "ana: away: lunch" when away,
/// "ana: registered 2026-11-01", "ana: rooms in common: #lobby, #rust" (about oneself: "ana: rooms: …").
pub fn whois_lines(info: &WhoisInfo, me: &Nick, now_ms: u64, offset: FixedOffset) -> Vec<String> {
    let nick = &info.nick;
    let mut lines = Vec::new();
    lines.push(match (info.online, info.online_since_ms) {
        (false, _) => format!("{nick}: offline"),
        (true, None) => format!("{nick}: online"),
        (true, Some(since)) => {
            let mut line = format!(
                "{nick}: online since {} ({})",
                local_time(since, now_ms, offset),
                duration_text(now_ms.saturating_sub(since))
            );
            if let Some(idle) = info.idle_ms {
                line.push_str(&format!(", idle {}", duration_text(idle)));
            }
            line
        }
    });
    if let Some(away) = &info.away {
        lines.push(format!("{nick}: away: {away}"));
    }
    let registered = DateTime::from_timestamp_millis(i64::try_from(info.registered_ms).unwrap_or(i64::MAX))
        .map(|t| t.with_timezone(&offset).format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    lines.push(format!("{nick}: registered {registered}"));
    let rooms: Vec<String> = info.rooms.iter().map(|room| format!("#{room}")).collect();
    lines.push(match (nick == me, rooms.is_empty()) {
        (true, true) => format!("{nick}: no rooms"),
        (true, false) => format!("{nick}: rooms: {}", rooms.join(", ")),
        (false, true) => format!("{nick}: no rooms in common"),
        (false, false) => format!("{nick}: rooms in common: {}", rooms.join(", ")),
    });
    lines
}

/// What `/whois` says when the server knows no such account.
pub fn no_such_user(nick: &Nick) -> String {
    format!("no such user: {nick}")
}

/// A member as a member list writes it: "ana", or "ana (away: lunch)".
pub fn member_text(nick: &Nick, away: Option<&str>) -> String {
    match away {
        Some(message) => format!("{nick} (away: {message})"),
        None => nick.to_string(),
    }
}

/// The notice a direct conversation gets, once, when the user writes to someone away: "ana is away: lunch".
pub fn away_notice(nick: &Nick, message: &str) -> String {
    format!("{nick} is away: {message}")
}

/// What the user's own away message is told as: "you are away: lunch", or "you are back" (`None`).
pub fn own_away_text(message: Option<&str>) -> String {
    match message {
        Some(message) => format!("you are away: {message}"),
        None => "you are back".to_owned(),
    }
}

/// What the status line (or top bar) shows while the user is away: "away: lunch".
pub fn away_status_text(message: &str) -> String {
    format!("away: {message}")
}

/// Who is typing, in words: "ana is typing…", "ana and bob are typing…", "ana, bob and cy are typing…",
/// "several people are typing…" (4 or more); `None` when nobody is.
pub fn typing_text(nicks: &[&Nick]) -> Option<String> {
    Some(match nicks {
        [] => return None,
        [one] => format!("{one} is typing…"),
        [one, two] => format!("{one} and {two} are typing…"),
        [one, two, three] => format!("{one}, {two} and {three} are typing…"),
        _ => "several people are typing…".to_owned(),
    })
}

impl ChatModel {
    /// The protocol version of the last session (`None` before the first connection).
    pub fn server_version(&self) -> Option<u16> {
        self.server_version
    }

    /// Whether the server of the last session knows away messages, `/whois`, typing and read markers.
    pub fn knows_awareness(&self) -> bool {
        self.server_version.is_some_and(|version| version >= AWARENESS_VERSION)
    }

    /// The user's own away message, while one is set (the status line shows "away: MESSAGE").
    pub fn own_away(&self) -> Option<&str> {
        self.own_away.as_deref()
    }

    /// The status line's words for the user's own away message ([`away_status_text`]), while one is set.
    pub fn away_status(&self) -> Option<String> {
        self.own_away.as_deref().map(away_status_text)
    }

    /// `nick`'s away message, as far as the server told (forgotten when they go offline).
    pub fn away_of(&self, nick: &Nick) -> Option<&str> {
        self.away.get(nick).map(String::as_str)
    }

    /// A connection was made: others' away messages come again after the member lists asked for now, and the
    /// user's own at login when one is set (so none shows until it does).
    pub(super) fn away_reconnected(&mut self) {
        self.away.clear();
        if let Some(before) = self.own_away.take() {
            self.own_away_before = Some(before);
        }
    }

    /// `/away [MESSAGE]` or `/back` (`None`): the message already checked by the parser.
    pub(super) fn set_away(&mut self, message: Option<String>) -> Vec<Action> {
        if self.status == Status::Connected && !self.knows_awareness() {
            self.notice_here(NO_AWAY_MESSAGES.to_owned(), true);
            return Vec::new();
        }
        self.own_away_before = None;
        // While disconnected the engine keeps the latest for the next connection; the server's `Away` confirms.
        vec![Action::Engine(Command::SetAway(message.unwrap_or_default()))]
    }

    /// `/whois NICK`.
    pub(super) fn whois(&mut self, nick: Nick) -> Vec<Action> {
        if self.status != Status::Connected {
            self.notice_here("not connected: /whois once reconnected".to_owned(), true);
            return Vec::new();
        }
        if !self.knows_awareness() {
            self.notice_here(NO_WHOIS.to_owned(), true);
            return Vec::new();
        }
        self.whois_asked = Some(nick.clone());
        vec![Action::Engine(Command::Whois(nick))]
    }

    /// The answer to `/whois`, as notices where the user is.
    pub(super) fn whois_answered(&mut self, info: WhoisInfo) {
        self.whois_asked = None;
        self.known_nicks.insert(info.nick.clone());
        for line in whois_lines(&info, &self.me, (self.clock)(), self.offset) {
            self.notice_here(line, false);
        }
    }

    /// Someone's away message (`None`: back), ours included.
    pub(super) fn away_changed(&mut self, nick: Nick, message: Option<String>) {
        if nick == self.me {
            let before = self.own_away_before.take().or_else(|| self.own_away.take());
            if before != message {
                self.notice_here(own_away_text(message.as_deref()), false);
            }
            self.own_away = message;
            return;
        }
        match message {
            Some(message) => drop(self.away.insert(nick, message)),
            None => drop(self.away.remove(&nick)),
        }
    }

    /// A message is being sent to `to`: when it is someone away, their away message is told there, once until
    /// it changes.
    pub(super) fn tell_away_of_peer(&mut self, to: &Conversation) {
        let Conversation::Direct(peer) = to else { return };
        let Some(message) = self.away.get(peer).cloned() else { return };
        if self.away_told.get(peer) == Some(&message) {
            return;
        }
        let index = self.conv_index(to);
        let ts = (self.clock)();
        self.convs[index].notice(ts, away_notice(peer, &message), false);
        self.away_told.insert(peer.clone(), message);
    }

    /// The front end calls this whenever the entry line's text changes (and after switching conversations),
    /// with the text now there. It returns the `Typing` to send: `true` for text that is not a command (again
    /// at most every `TYPING_RENEW_MS`), `false` once the text is emptied or a command, or the conversation
    /// switched away from, after a `true`. Nothing while disconnected or against a server older than version 6.
    pub fn entry_changed(&mut self, text: &str) -> Vec<Action> {
        if self.status != Status::Connected || !self.knows_awareness() {
            self.typing_sent = None;
            return Vec::new();
        }
        if self.preferences.no_typing_notices {
            return self.stop_typing();
        }
        let here = self.current().id.clone();
        let mut actions = Vec::new();
        if let Some((conversation, _)) = self.typing_sent.take_if(|(conversation, _)| *conversation != here) {
            actions.push(Action::Engine(Command::Typing { conversation, typing: false }));
        }
        // A direct conversation with no message yet does not exist on the server, which drops typing there (and
        // answers `UnknownNick` for a nickname nobody has): the first message creates it.
        let exists = !matches!(here, Conversation::Direct(_)) || self.current().latest_seq().is_some();
        let typing = exists && !text.is_empty() && !text.starts_with('/');
        let renew = Duration::from_millis(TYPING_RENEW_MS);
        match (&self.typing_sent, typing) {
            (Some((_, at)), true) if self.now.saturating_duration_since(*at) < renew => {}
            (_, true) => {
                self.typing_sent = Some((here.clone(), self.now));
                actions.push(Action::Engine(Command::Typing { conversation: here, typing: true }));
            }
            (Some(_), false) => {
                self.typing_sent = None;
                actions.push(Action::Engine(Command::Typing { conversation: here, typing: false }));
            }
            (None, false) => {}
        }
        actions
    }

    /// Who is typing in the conversation shown, in words ([`typing_text`]): the status line under the messages
    /// shows it. Ignored users are left out; a notice older than `TYPING_SHOWN_MS` has expired.
    pub fn typing_status(&self) -> Option<String> {
        if self.preferences.no_typing_notices {
            return None;
        }
        let shown = Duration::from_millis(TYPING_SHOWN_MS);
        let nicks: Vec<&Nick> = self
            .current()
            .typing
            .iter()
            .filter(|(nick, at)| self.now.saturating_duration_since(**at) < shown && !self.is_ignored(nick))
            .map(|(nick, _)| nick)
            .collect();
        typing_text(&nicks)
    }

    /// A `typing: false` for the `true` said last, if one is standing.
    fn stop_typing(&mut self) -> Vec<Action> {
        match self.typing_sent.take() {
            Some((conversation, _)) => vec![Action::Engine(Command::Typing { conversation, typing: false })],
            None => Vec::new(),
        }
    }

    /// `/typing [on|off]`. Turned off while the user's typing is being told, it is told stopped.
    pub(super) fn typing_notices(&mut self, on: Option<bool>) -> Vec<Action> {
        let outcome = self.preferences.typing_notices(on);
        let mut actions = if self.preferences.no_typing_notices { self.stop_typing() } else { Vec::new() };
        actions.extend(self.told(outcome));
        actions
    }

    /// A typing notice from the server.
    pub(super) fn typing_heard(&mut self, conversation: Conversation, nick: Nick, typing: bool) {
        if nick == self.me {
            return;
        }
        let index = self.conv_index(&conversation);
        let conv = &mut self.convs[index];
        if typing {
            conv.typing.insert(nick, self.now);
        } else {
            conv.typing.remove(&nick);
        }
    }

    /// Forgets typing notices that have expired, as the clock moves on.
    pub(super) fn expire_typing(&mut self, now: Instant) {
        let shown = Duration::from_millis(TYPING_SHOWN_MS);
        for conv in &mut self.convs {
            conv.typing.retain(|_, at| now.saturating_duration_since(*at) < shown);
        }
    }
}

#[cfg(test)]
mod tests;
