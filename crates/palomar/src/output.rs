//! How line mode shows engine events: one line each, readable (coloured on a terminal) or JSON.
//!
//! Texts, errors and reasons may come from a malicious server, which can send any character: the readable
//! lines show control characters as escapes (`\u{1b}`), and the JSON lines write the ones JSON itself would
//! leave raw as `\u` escapes, so neither form can drive the terminal it is printed on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufWriter, Stdout, Write};

use chrono::{DateTime, Local, TimeZone, Utc};
use palomar_client::Event;
use palomar_client::model::{
    MORE_FOUND, found_header, hit_line, hit_time, invited_text, own_away_text, room_change_text, room_listing_lines,
    standing_text, whois_lines,
};
use palomar_proto::{
    Conversation, Message, MessageId, MessageKind, Nick, PresenceState, ReadMarker, Revision, RoomChange, RoomListing,
    RoomName, WhoisInfo, escape_controls, is_refused_in_text, unix_ms,
};
use serde::Serialize;
use serde_json::{Value, json};

/// `palomar chat --help` after the options: every line `--json` can print, and the exit statuses. Kept whole by
/// a test that prints every kind of event.
pub const LINE_MODE_HELP: &str = "\
JSON lines (--json): one object per line, its kind in \"event\"; ts fields are milliseconds since the epoch.
  message              a message: conversation (\"#room\" or \"@nick\"), seq, id, from, ts, text, own (true: yours),
                       kind (text, action, edit, deletion), of (the seq an edit or a deletion changes, else null),
                       revision (original, edited: text is its latest, deleted: text is empty); an edit's text is
                       the new text, a deletion's the reason (\"\" when none)
  queued               your message is in the outbox: id, conversation, kind, of, text
  accepted             the server stored your message: id, conversation, seq, ts
  presence             someone in a room: room, nick, state (joined, left, online, offline)
  status               the connection, by its state:
                         connecting: server (the address tried, one of --server's), attempt
                         connected: nick, registered (true: this login created the account), server (the
                           address connected to)
                         synced: everything the server held at login has been printed
                         disconnected: reason, server (the address that dropped, or the last one tried), retry_in_ms,
                           attempt, pending (messages in the outbox), refused_for_now (true: the server refused
                           the login until then); with several addresses, only once every one of them failed
                         server-shutting-down: message
  users                the answer to /users: room, online, offline (lists of nicknames)
  joined               you are in a conversation: conversation, latest_seq, first_seq (the oldest still kept)
  left                 you left a room: room
  closed               a conversation is gone for good (the other account was removed): conversation, reason
  history              the answer to /history: conversation, complete_from (older ones were removed), messages
                       (each with conversation, seq, id, from, ts, text, kind, of, revision)
  gap                  retention removed messages you had not seen: conversation, complete_from
  rewound              the server was restored from an older backup and ends the conversation at
                       latest_seq where you had seen up to had; new messages take the seqs after it:
                       conversation, latest_seq, had
  pinned               the server's certificate, trusted on first use: server (the first address of --server,
                       under which the certificate of every address is pinned), fingerprint
  confirm-certificate  (the full-screen client's question, never printed here): server, fingerprint
  error                something failed and the client goes on: message, code (the server's, or null), id (of a
                       message refused for good, or null)
  fatal                the client stops: message, certificate_changed, password_refused
  room_state           a room's settings and your standing in it (after joining, and whenever they change): room
                       (#name, as everywhere), topic (\"\" when none), invite_only, moderated, role (member, voice,
                       moderator, owner), muted, operator (true: you are one of the server's operators)
  room_event           what a moderator did in a room: room, by (the moderator's nickname, or null for the server's
                       operator at its console), change (kicked, banned, unbanned, muted, unmuted, role, invited,
                       topic, invite_only, moderated), and as the change has them: nick (whom it was done to),
                       reason (kicked, banned, muted), role (the one given), text (the new topic; \"\" cleared it),
                       on (invite_only and moderated: true turned it on)
  invited              you were invited to an invite-only room: room, by (null for the server's operator)
  rooms                the answer to /list: rooms (by name, each with room (#name), members, topic (\"\" when none),
                       invite_only), more (true: there are rooms after the last; /list LASTROOM shows them)
  found                the answer to /search: query, conversation (\"#room\" or \"@nick\" searched in, or null:
                       everywhere), hits (newest first, each with conversation, seq, id, from, ts, text, kind, of,
                       revision), more (true: there are older ones; /search alone shows them)
  away                 an away message set or cleared (/away, /back; yours, on any of your devices, or that of
                       someone in one of your rooms): nick, message (null: back)
  whois                the answer to /whois: nick, registered_ms, online, online_since_ms (null when offline),
                       idle_ms (since its last message; null when none since it came online, or offline), away
                       (its away message, or null), rooms (#name: those you share; about yourself, yours)
  typing               someone is typing in a conversation, or stopped: conversation, nick, typing (true or false;
                       a true lasts 6 s unless renewed)
  read                 how far someone has read a conversation (you too, on another device): conversation, nick,
                       seq (the last message read); one line for each when several come together
  notice               a line of the client's own (the /help text): text

Exit status: 0 everything was stored and answered; 2 stopped for good (see the fatal line); 3 --drain-timeout
passed with messages still in the outbox (they go out next time); 4 some input lines were refused (the last error
line counts them); 130 Ctrl+C.
";

pub fn utc_datetime(ms: u64) -> String {
    Utc.timestamp_millis_opt(i64::try_from(ms).unwrap_or(0))
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn local_time(ms: u64) -> String {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0))
        .map(|t| t.with_timezone(&Local).format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Style {
    Own,
    Nick,
    Notice,
    Error,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Own => "\x1b[36m",
            Style::Nick => "\x1b[1m",
            Style::Notice => "\x1b[2m",
            Style::Error => "\x1b[31m",
        }
    }
}

/// serde_json's compact format, except that DEL, the C1 controls and the bidirectional controls are written as
/// `\u` escapes too (serde_json escapes the C0 ones only): the JSON decodes to the same text, but a terminal
/// it is printed on sees no control character.
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> std::io::Result<()> {
        // Only DEL and characters whose UTF-8 starts with 0xc2 (C1) or 0xe2 (bidi) can need it: most
        // fragments are written without decoding them.
        if !fragment.bytes().any(|b| matches!(b, 0x7f | 0xc2 | 0xe2)) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| is_refused_in_text(c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// Lines are buffered: a catch-up of thousands of messages is a few writes, not one per line. Notices and
/// errors are written at once; after events, the caller says when to `flush` (when no more are waiting).
pub struct Printer<W: Write = BufWriter<Stdout>> {
    json: bool,
    color: bool,
    out: RefCell<W>,
    /// When each of our messages was queued (typed), to show beside its server time when that is much later.
    typed: RefCell<HashMap<MessageId, u64>>,
    /// While disconnected: the reason last printed and the attempts so far. Reconnect attempts are one line per
    /// reason, not one per attempt, and the line back says how many it took.
    outage: RefCell<Option<(String, u32)>>,
    /// Our nickname once connected, so that what moderators do to us reads "you".
    me: RefCell<Option<Nick>>,
}

/// A message as a JSON line. The fields are in alphabetical order, as `json!` objects print theirs.
#[derive(Serialize)]
struct MessageLine<'a> {
    /// A reaction's only: added, or taken back.
    #[serde(skip_serializing_if = "Option::is_none")]
    added: Option<bool>,
    conversation: String,
    event: &'static str,
    from: &'a str,
    id: String,
    kind: &'static str,
    of: Option<u64>,
    own: bool,
    revision: &'static str,
    seq: u64,
    text: &'a str,
    ts: u64,
}

impl<'a> MessageLine<'a> {
    fn new(message: &'a Message, own: bool) -> Self {
        MessageLine {
            added: match message.kind {
                MessageKind::Reaction { added, .. } => Some(added),
                _ => None,
            },
            conversation: message.conversation.to_string(),
            event: "message",
            from: message.from.as_str(),
            id: message.id.to_hex(),
            kind: kind_name(message.kind),
            of: message.kind.refers_to(),
            own,
            revision: revision_name(message.revision),
            seq: message.seq,
            text: &message.text,
            ts: message.ts,
        }
    }
}

fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Action => "action",
        MessageKind::Edit { .. } => "edit",
        MessageKind::Deletion { .. } => "deletion",
        MessageKind::Reply { .. } => "reply",
        MessageKind::Reaction { .. } => "reaction",
    }
}

fn revision_name(revision: Revision) -> &'static str {
    match revision {
        Revision::Original => "original",
        Revision::Edited => "edited",
        Revision::Deleted => "deleted",
    }
}

/// A listing of rooms as a JSON line, its fields in the order its documentation gives them (a `json!` object
/// would print them alphabetically).
#[derive(Serialize)]
struct RoomsLine<'a> {
    event: &'static str,
    rooms: Vec<ListedRoom<'a>>,
    more: bool,
}

#[derive(Serialize)]
struct ListedRoom<'a> {
    room: String,
    members: u32,
    topic: &'a str,
    invite_only: bool,
}

impl<'a> RoomsLine<'a> {
    fn new(rooms: &'a [RoomListing], more: bool) -> Self {
        let rooms = rooms
            .iter()
            .map(|listing| ListedRoom {
                room: format!("#{}", listing.room),
                members: listing.members,
                topic: &listing.topic,
                invite_only: listing.invite_only,
            })
            .collect();
        RoomsLine { event: "rooms", rooms, more }
    }
}

impl Printer {
    pub fn new(json: bool, color: bool) -> Self {
        Printer::to(json, color, BufWriter::with_capacity(1 << 16, std::io::stdout()))
    }
}

impl<W: Write> Printer<W> {
    fn to(json: bool, color: bool, out: W) -> Self {
        Printer {
            json,
            color,
            out: RefCell::new(out),
            typed: RefCell::default(),
            outage: RefCell::default(),
            me: RefCell::default(),
        }
    }

    /// Writes out the lines buffered so far.
    pub fn flush(&self) {
        // A closed stdout (a pipe whose reader left) must not kill the client before its outbox drains.
        let _ = self.out.borrow_mut().flush();
    }

    /// Every line but a message's text passes here, so this is where what came from the server is escaped.
    fn paint(&self, style: Style, text: &str) -> String {
        let text = escape_controls(text);
        if self.color { format!("{}{text}\x1b[0m", style.code()) } else { text.into_owned() }
    }

    fn line(&self, text: &str) {
        let _ = writeln!(self.out.borrow_mut(), "{text}");
    }

    fn json_line(&self, value: impl Serialize) {
        let mut out = self.out.borrow_mut();
        let written = value.serialize(&mut serde_json::Serializer::with_formatter(&mut *out, TerminalSafe));
        if written.is_ok() {
            let _ = out.write_all(b"\n");
        }
    }

    /// A line of line mode's own (command help, local errors), not from the engine.
    pub fn notice(&self, text: &str) {
        if self.json {
            self.json_line(json!({"event": "notice", "text": text}));
        } else {
            self.line(&self.paint(Style::Notice, &format!("-- {text}")));
        }
        self.flush();
    }

    pub fn error(&self, text: &str) {
        if self.json {
            self.json_line(json!({"event": "error", "code": Value::Null, "message": text, "id": Value::Null}));
        } else {
            self.line(&self.paint(Style::Error, &format!("!! {text}")));
        }
        self.flush();
    }

    /// The readable line of a message; `None` for an edit or a reaction of a deleted message, which has nothing
    /// left to say.
    fn message_line(&self, message: &Message, own: bool, prefix: &str) -> Option<String> {
        let style = if own { Style::Own } else { Style::Nick };
        // Continuation lines are indented so a multi-line message cannot pass for several messages.
        let text = escape_controls(&message.text).replace('\n', "\n    ");
        let typed = match self.typed.borrow_mut().remove(&message.id) {
            Some(typed) if message.ts.saturating_sub(typed) >= 60_000 => format!(" (typed {})", local_time(typed)),
            _ => String::new(),
        };
        let edited = if message.revision == Revision::Edited { " (edited)" } else { "" };
        let said = match (message.kind, message.revision) {
            (MessageKind::Edit { .. } | MessageKind::Reaction { .. }, Revision::Deleted) => return None,
            (MessageKind::Text | MessageKind::Action | MessageKind::Reply { .. }, Revision::Deleted) => {
                format!("{} (deleted)", self.paint(style, &format!("<{}>", message.from)))
            }
            (MessageKind::Text, _) => format!("{} {text}{edited}", self.paint(style, &format!("<{}>", message.from))),
            (MessageKind::Reply { of }, _) => {
                format!("{} \u{21aa} #{of} {text}{edited}", self.paint(style, &format!("<{}>", message.from)))
            }
            (MessageKind::Reaction { of, added: true }, _) => {
                format!("{} reacted {text} to #{of}", self.paint(style, message.from.as_str()))
            }
            (MessageKind::Reaction { of, added: false }, _) => {
                format!("{} took back {text} from #{of}", self.paint(style, message.from.as_str()))
            }
            (MessageKind::Action, _) => format!("{} {text}{edited}", self.paint(style, &format!("* {}", message.from))),
            (MessageKind::Edit { of }, _) => {
                format!("{} edited #{of}: {text}", self.paint(style, message.from.as_str()))
            }
            (MessageKind::Deletion { of }, _) => {
                let reason = if text.is_empty() { String::new() } else { format!(": {text}") };
                format!("{} deleted #{of}{reason}", self.paint(style, message.from.as_str()))
            }
        };
        Some(format!("{prefix}{} {} {said}{typed}", local_time(message.ts), message.conversation))
    }

    /// Buffers the event's line; see [`Printer::flush`].
    pub fn event(&self, event: &Event) {
        match event {
            Event::Queued { id, .. } => drop(self.typed.borrow_mut().insert(*id, unix_ms())),
            Event::Error { id: Some(id), .. } => drop(self.typed.borrow_mut().remove(id)),
            Event::Connected { nick, .. } => drop(self.me.borrow_mut().replace(nick.clone())),
            _ => {}
        }
        if self.json {
            // Messages are most of what a client prints: written straight from a struct, not built as a map.
            match event {
                Event::Message { message, own } => self.json_line(MessageLine::new(message, *own)),
                Event::Rooms { rooms, more } => self.json_line(RoomsLine::new(rooms, *more)),
                _ => match event_json(event) {
                    Value::Array(lines) => lines.into_iter().for_each(|line| self.json_line(line)),
                    line => self.json_line(line),
                },
            }
            return;
        }
        let notice = |text: String| self.line(&self.paint(Style::Notice, &text));
        match event {
            Event::Connecting { server, attempt } => {
                if *attempt == 0 {
                    notice(format!("-- connecting to {server}"));
                }
            }
            Event::Pinned { server, fingerprint } => {
                notice(format!("-- first connection to {server}: trusting its certificate {fingerprint}"))
            }
            Event::Connected { server, nick, registered, .. } => {
                let new = if *registered { " (new account registered)" } else { "" };
                let back = match self.outage.borrow_mut().take() {
                    Some((_, attempts)) => format!(" (back after {attempts} attempt(s))"),
                    None => String::new(),
                };
                notice(format!("-- connected as {nick} to {server}{new}{back}"))
            }
            Event::Disconnected { reason, retry_in, attempt, pending, .. } => {
                let mut outage = self.outage.borrow_mut();
                let repeated = outage.as_ref().is_some_and(|(last, _)| last == reason);
                *outage = Some((reason.clone(), *attempt));
                if !repeated {
                    let still = if *attempt > 1 { "still disconnected, now" } else { "disconnected" };
                    notice(format!(
                        "-- {still}: {reason}; reconnecting in {:.1} s (attempt {attempt}, {pending} message(s) waiting; \
                         further attempts for the same reason are not shown)",
                        retry_in.as_secs_f64()
                    ))
                }
            }
            Event::Queued { .. } | Event::Accepted { .. } | Event::Synced | Event::ConfirmCertificate { .. } => {}
            Event::Message { message, own } => {
                if let Some(line) = self.message_line(message, *own, "") {
                    self.line(&line)
                }
            }
            Event::Presence { room, nick, state } => {
                let what = match state {
                    PresenceState::Joined => "joined",
                    PresenceState::Left => "left",
                    PresenceState::Online => "is online",
                    PresenceState::Offline => "went offline",
                };
                notice(format!("{} #{room} * {nick} {what}", local_time(unix_ms())))
            }
            Event::Users { room, online, offline } => {
                let list = |nicks: &[palomar_proto::Nick]| {
                    if nicks.is_empty() {
                        "(none)".to_owned()
                    } else {
                        nicks.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                    }
                };
                notice(format!("-- #{room} online: {}; offline: {}", list(online), list(offline)))
            }
            Event::Joined { info } => {
                notice(format!("-- joined {} ({} messages so far)", info.conversation, info.latest_seq))
            }
            Event::Left { room } => notice(format!("-- left #{room}")),
            Event::Closed { conversation, reason } => notice(format!("-- {conversation} is closed: {reason}")),
            Event::History(page) => {
                if page.messages.is_empty() {
                    notice(format!("-- no older messages in {}", page.conversation));
                }
                for message in page.messages.iter().filter_map(|m| self.message_line(m, false, "(history) ")) {
                    self.line(&message);
                }
            }
            Event::Gap { conversation, complete_from } => notice(format!(
                "-- {conversation}: messages before seq {complete_from} were removed by the server's retention policy"
            )),
            Event::Rewound { conversation, latest_seq, had } => self.line(&self.paint(
                Style::Error,
                &format!(
                    "!! {conversation}: the server was restored from an older backup and holds it up to message \
                     {latest_seq}, where you had seen {had}; what came after is gone from the server, and messages \
                     sent since the restore and before now may be missing here"
                ),
            )),
            Event::Error { message, .. } => self.line(&self.paint(Style::Error, &format!("!! {message}"))),
            Event::ServerShuttingDown { message } => notice(format!("-- server: {message}")),
            Event::Fatal { message, .. } => self.line(&self.paint(Style::Error, &format!("!! {message}"))),
            Event::RoomState(state) => {
                let topic =
                    if state.topic.is_empty() { "no topic".to_owned() } else { format!("topic: {}", state.topic) };
                let standing = standing_text(state).map(|standing| format!(" ({standing})")).unwrap_or_default();
                notice(format!("-- #{}: {topic}{standing}", state.room))
            }
            Event::RoomEvent { room, by, change } => {
                let me = self.me.borrow();
                let text = room_change_text(room, by.as_ref(), change, me.as_ref());
                notice(format!("{} #{room} * {text}", local_time(unix_ms())))
            }
            Event::Invited { room, by } => notice(format!("-- {}", invited_text(room, by.as_ref()))),
            Event::Rooms { rooms, more } => {
                room_listing_lines(rooms, *more).into_iter().for_each(|line| notice(format!("-- {line}")))
            }
            Event::Found { query, conversation, hits, next } => {
                self.found(query, conversation.as_ref(), hits, next.is_some(), 1)
            }
            // Others' away messages are no news in a conversation (`/whois` tells them); ours is the answer to
            // `/away` or `/back`, or says at login that we still are away.
            Event::Away { nick, message } => {
                if self.me.borrow().as_ref() == Some(nick) {
                    notice(format!("-- {}", own_away_text(message.as_deref())))
                }
            }
            Event::Whois(info) => {
                let me = self.me.borrow().clone().unwrap_or_else(|| info.nick.clone());
                for line in whois_lines(info, &me, unix_ms(), *Local::now().offset()) {
                    notice(format!("-- {line}"))
                }
            }
            // Who is typing and how far others read are for programs (`--json`): as lines in a log they would
            // bury the messages.
            Event::Typing { .. } | Event::ReadMarkers(_) => {}
        }
    }

    /// A search's answer: what was found, one line per hit numbered from `first` (a later page goes on from the
    /// last number), and how to see older ones when `more`. In JSON, the same as [`Printer::event`] prints.
    pub fn found(&self, query: &str, conversation: Option<&Conversation>, hits: &[Message], more: bool, first: usize) {
        if self.json {
            return self.json_line(found_json(query, conversation, hits, more));
        }
        let notice = |text: &str| self.line(&self.paint(Style::Notice, &format!("-- {}", escape_controls(text))));
        notice(&found_header(query, conversation, hits.len(), first > 1));
        let (now, offset) = (unix_ms(), *Local::now().offset());
        for (number, hit) in (first..).zip(hits) {
            notice(&hit_line(number, hit, &hit_time(hit.ts, now, offset)));
        }
        if more {
            notice(MORE_FOUND);
        }
    }
}

fn found_json(query: &str, conversation: Option<&Conversation>, hits: &[Message], more: bool) -> Value {
    json!({
        "event": "found", "query": query, "conversation": conversation.map(Conversation::to_string),
        "hits": hits.iter().map(message_json).collect::<Vec<_>>(), "more": more,
    })
}

fn message_json(message: &Message) -> Value {
    json!({
        "conversation": message.conversation.to_string(),
        "seq": message.seq,
        "id": message.id.to_hex(),
        "from": message.from.as_str(),
        "ts": message.ts,
        "text": message.text,
        "kind": kind_name(message.kind),
        "of": message.kind.refers_to(),
        "revision": revision_name(message.revision),
    })
}

fn whois_json(info: &WhoisInfo) -> Value {
    json!({
        "event": "whois", "nick": info.nick.as_str(), "registered_ms": info.registered_ms, "online": info.online,
        "online_since_ms": info.online_since_ms, "idle_ms": info.idle_ms, "away": info.away,
        "rooms": info.rooms.iter().map(|room| format!("#{room}")).collect::<Vec<_>>(),
    })
}

fn read_json(marker: &ReadMarker) -> Value {
    json!({
        "event": "read", "conversation": marker.conversation.to_string(), "nick": marker.nick.as_str(),
        "seq": marker.seq,
    })
}

/// An event as its JSON line; an array for an event printed as several lines (a page of read markers: a line for
/// each marker).
fn event_json(event: &Event) -> Value {
    match event {
        Event::Connecting { server, attempt } => {
            json!({"event": "status", "state": "connecting", "server": server, "attempt": attempt})
        }
        Event::Synced => json!({"event": "status", "state": "synced"}),
        Event::ConfirmCertificate { server, fingerprint } => {
            json!({"event": "confirm-certificate", "server": server, "fingerprint": fingerprint.to_string()})
        }
        Event::Pinned { server, fingerprint } => {
            json!({"event": "pinned", "server": server, "fingerprint": fingerprint.to_string()})
        }
        Event::Connected { server, nick, registered, .. } => json!({
            "event": "status", "state": "connected", "nick": nick.as_str(), "registered": registered, "server": server,
        }),
        Event::Disconnected { reason, server, retry_in, attempt, pending, refused_for_now } => json!({
            "event": "status", "state": "disconnected", "reason": reason, "server": server,
            "retry_in_ms": retry_in.as_millis() as u64, "attempt": attempt, "pending": pending,
            "refused_for_now": refused_for_now,
        }),
        Event::Queued { id, to, kind, text } => {
            let mut queued = json!({
                "event": "queued", "id": id.to_hex(), "conversation": to.to_string(), "kind": kind_name(*kind),
                "of": kind.refers_to(), "text": text,
            });
            if let MessageKind::Reaction { added, .. } = kind {
                queued["added"] = Value::Bool(*added);
            }
            queued
        }
        Event::Accepted { id, conversation, seq, ts } => {
            json!({"event": "accepted", "id": id.to_hex(), "conversation": conversation.to_string(), "seq": seq, "ts": ts})
        }
        Event::Message { message, own } => json!(MessageLine::new(message, *own)),
        Event::Presence { room, nick, state } => {
            json!({"event": "presence", "room": format!("#{room}"), "nick": nick.as_str(), "state": state.as_str()})
        }
        Event::Users { room, online, offline } => json!({
            "event": "users", "room": format!("#{room}"),
            "online": online.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            "offline": offline.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        }),
        Event::Joined { info } => json!({
            "event": "joined", "conversation": info.conversation.to_string(),
            "latest_seq": info.latest_seq, "first_seq": info.first_seq,
        }),
        Event::Left { room } => json!({"event": "left", "room": format!("#{room}")}),
        Event::Closed { conversation, reason } => {
            json!({"event": "closed", "conversation": conversation.to_string(), "reason": reason})
        }
        Event::History(page) => json!({
            "event": "history", "conversation": page.conversation.to_string(), "complete_from": page.complete_from,
            "messages": page.messages.iter().map(message_json).collect::<Vec<_>>(),
        }),
        Event::Gap { conversation, complete_from } => {
            json!({"event": "gap", "conversation": conversation.to_string(), "complete_from": complete_from})
        }
        Event::Rewound { conversation, latest_seq, had } => json!({
            "event": "rewound", "conversation": conversation.to_string(), "latest_seq": latest_seq, "had": had,
        }),
        Event::Error { code, message, id } => json!({
            "event": "error", "code": code.map(|c| format!("{c:?}")), "message": message, "id": id.map(|i| i.to_hex()),
        }),
        Event::ServerShuttingDown { message } => {
            json!({"event": "status", "state": "server-shutting-down", "message": message})
        }
        Event::Fatal { message, certificate_changed, password_refused } => {
            json!({
                "event": "fatal", "message": message, "certificate_changed": certificate_changed,
                "password_refused": password_refused,
            })
        }
        Event::RoomState(state) => json!({
            "event": "room_state", "room": format!("#{}", state.room), "topic": state.topic,
            "invite_only": state.invite_only, "moderated": state.moderated, "role": state.role.as_str(),
            "muted": state.muted, "operator": state.operator,
        }),
        Event::RoomEvent { room, by, change } => room_event_json(room, by.as_ref(), change),
        Event::Invited { room, by } => {
            json!({"event": "invited", "room": format!("#{room}"), "by": by.as_ref().map(Nick::as_str)})
        }
        Event::Rooms { rooms, more } => json!(RoomsLine::new(rooms, *more)),
        Event::Found { query, conversation, hits, next } => {
            found_json(query, conversation.as_ref(), hits, next.is_some())
        }
        Event::Away { nick, message } => json!({"event": "away", "nick": nick.as_str(), "message": message}),
        Event::Whois(info) => whois_json(info),
        Event::Typing { conversation, nick, typing } => json!({
            "event": "typing", "conversation": conversation.to_string(), "nick": nick.as_str(), "typing": typing,
        }),
        Event::ReadMarkers(markers) => Value::Array(markers.iter().map(read_json).collect()),
    }
}

/// A room event's line: `change` names it, and the fields it has follow.
fn room_event_json(room: &RoomName, by: Option<&Nick>, change: &RoomChange) -> Value {
    let mut line = json!({"event": "room_event", "room": format!("#{room}"), "by": by.map(Nick::as_str)});
    let (kind, fields) = match change {
        RoomChange::Kicked { nick, reason } => ("kicked", json!({"nick": nick.as_str(), "reason": reason})),
        RoomChange::Banned { nick, reason } => ("banned", json!({"nick": nick.as_str(), "reason": reason})),
        RoomChange::Unbanned { nick } => ("unbanned", json!({"nick": nick.as_str()})),
        RoomChange::Muted { nick, reason } => ("muted", json!({"nick": nick.as_str(), "reason": reason})),
        RoomChange::Unmuted { nick } => ("unmuted", json!({"nick": nick.as_str()})),
        RoomChange::RoleSet { nick, role } => ("role", json!({"nick": nick.as_str(), "role": role.as_str()})),
        RoomChange::Invited { nick } => ("invited", json!({"nick": nick.as_str()})),
        RoomChange::Topic { text } => ("topic", json!({"text": text})),
        RoomChange::InviteOnly(on) => ("invite_only", json!({"on": on})),
        RoomChange::Moderated(on) => ("moderated", json!({"on": on})),
    };
    if let (Value::Object(line), Value::Object(fields)) = (&mut line, fields) {
        line.insert("change".to_owned(), Value::String(kind.to_owned()));
        line.extend(fields);
    }
    line
}

#[cfg(test)]
mod tests {
    use palomar_client::Event;
    use palomar_proto::{Conversation, ErrorCode, Message, MessageId, Nick, RoomName};
    use serde_json::Value;

    use super::*;

    /// Everything a hostile server controls that line mode prints: a message's text, an error, the reason
    /// of a shutdown, and a fatal refusal quoting the server.
    const HOSTILE: &str = "\x1b]0;owned\x07\x1b[2J\r\u{9b}31m\x7f\u{202e}gpj.exe\ttab\nnext";

    fn hostile_events() -> Vec<Event> {
        let message = Message {
            conversation: Conversation::Room(RoomName::lobby()),
            seq: 1,
            id: MessageId([1; 16]),
            from: Nick::parse("mallory").expect("valid"),
            ts: 0,
            text: HOSTILE.to_owned(),
            kind: palomar_proto::MessageKind::Text,
            revision: palomar_proto::Revision::Original,
        };
        vec![
            Event::Message { message, own: false },
            Event::Error { code: Some(ErrorCode::Protocol), message: HOSTILE.to_owned(), id: None },
            Event::ServerShuttingDown { message: HOSTILE.to_owned() },
            Event::Fatal {
                message: format!("login refused: {HOSTILE}"),
                certificate_changed: false,
                password_refused: true,
            },
            Event::Disconnected {
                reason: format!("the server refused the login for now: {HOSTILE}"),
                server: "127.0.0.1:5555".into(),
                retry_in: std::time::Duration::ZERO,
                attempt: 1,
                pending: 0,
                refused_for_now: true,
            },
        ]
    }

    fn printed(json: bool, color: bool) -> String {
        let printer = Printer::to(json, color, Vec::new());
        for event in hostile_events() {
            printer.event(&event);
        }
        String::from_utf8(printer.out.into_inner()).expect("UTF-8")
    }

    #[test]
    fn readable_lines_show_control_characters_as_escapes() {
        for color in [false, true] {
            let output = printed(false, color);
            // The only escape sequences left are the printer's own colours.
            let own_colours = ["\x1b[36m", "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[0m"];
            let uncoloured = own_colours.iter().fold(output.clone(), |text, code| text.replace(code, ""));
            assert!(!uncoloured.chars().any(is_refused_in_text), "{uncoloured:?}");
            assert_eq!(
                uncoloured.matches("\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}\\u{9b}31m\\u{7f}\\u{202e}").count(),
                5
            );
            assert!(uncoloured.contains("gpj.exe\ttab\n    next"), "a message's next line is indented: {uncoloured:?}");
        }
    }

    #[test]
    fn json_lines_escape_every_control_character_and_mean_the_same() {
        let output = printed(true, false);
        assert!(!output.trim_end().chars().any(|c| is_refused_in_text(c) || c == '\t'), "{output:?}");
        let lines: Vec<Value> = output.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
        assert_eq!(lines[0]["text"], HOSTILE);
        assert_eq!(lines[1]["message"], HOSTILE);
        assert_eq!(lines[2]["message"], HOSTILE);
        assert_eq!(lines[3]["message"], format!("login refused: {HOSTILE}"));
        assert_eq!(lines.len(), 5);
    }

    fn disconnected(reason: &str, attempt: u32) -> Event {
        let retry_in = std::time::Duration::from_secs(1);
        let server = "127.0.0.1:5555".into();
        Event::Disconnected { reason: reason.to_owned(), server, retry_in, attempt, pending: 2, refused_for_now: false }
    }

    #[test]
    fn reconnect_attempts_print_once_per_reason_and_the_way_back_counts_them() {
        let printer = Printer::to(false, false, Vec::new());
        printer.event(&disconnected("the server closed the connection", 1));
        for attempt in 2..=4 {
            printer.event(&disconnected("cannot reach 127.0.0.1:5555: connection refused", attempt));
        }
        printer.event(&disconnected("cannot reach 127.0.0.1:5555: connection refused", 5));
        let connected = Event::Connected {
            server: "127.0.0.1:5556".into(),
            nick: Nick::parse("ana").expect("valid"),
            registered: false,
            conversations: vec![],
            version: palomar_proto::PROTOCOL_VERSION,
        };
        printer.event(&connected);
        printer.event(&disconnected("the server closed the connection", 1));
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 4, "{output}");
        assert!(
            lines[0].starts_with("-- disconnected: the server closed the connection; reconnecting in 1.0 s (attempt 1")
        );
        assert!(lines[1].starts_with("-- still disconnected, now: cannot reach 127.0.0.1:5555: connection refused;"));
        assert_eq!(lines[2], "-- connected as ana to 127.0.0.1:5556 (back after 5 attempt(s))");
        assert!(lines[3].starts_with("-- disconnected: the server closed"), "a new outage is told again");
    }

    #[test]
    fn a_message_stored_long_after_it_was_typed_says_when_it_was_typed() {
        let printer = Printer::to(false, false, Vec::new());
        let id = MessageId([3; 16]);
        let conversation = Conversation::Room(RoomName::lobby());
        printer.event(&Event::Queued { id, to: conversation.clone(), kind: MessageKind::Text, text: "late".into() });
        let typed = local_time(unix_ms());
        let from = Nick::parse("ana").expect("valid");
        let message = Message {
            conversation,
            seq: 1,
            id,
            from,
            ts: unix_ms() + 600_000,
            text: "late".into(),
            kind: palomar_proto::MessageKind::Text,
            revision: palomar_proto::Revision::Original,
        };
        printer.event(&Event::Message { message: message.clone(), own: true });
        printer.event(&Event::Message { message: Message { id: MessageId([4; 16]), ..message }, own: true });
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<&str> = output.lines().collect();
        assert!(lines[0].ends_with(&format!("#lobby <ana> late (typed {typed})")), "{output}");
        assert!(lines[1].ends_with("#lobby <ana> late"), "{output}");
    }

    fn entry(seq: u64, from: &str, kind: MessageKind, revision: Revision, text: &str) -> Event {
        let message = Message {
            conversation: Conversation::Room(RoomName::lobby()),
            seq,
            id: MessageId([seq as u8; 16]),
            from: Nick::parse(from).expect("valid"),
            ts: 0,
            text: text.to_owned(),
            kind,
            revision,
        };
        Event::Message { message, own: false }
    }

    fn kinds_of_messages() -> Vec<Event> {
        vec![
            entry(40, "ana", MessageKind::Action, Revision::Original, "waves"),
            entry(41, "ana", MessageKind::Text, Revision::Edited, "new text"),
            entry(42, "ana", MessageKind::Edit { of: 41 }, Revision::Original, "new text"),
            entry(43, "bob", MessageKind::Text, Revision::Deleted, ""),
            entry(44, "bob", MessageKind::Edit { of: 43 }, Revision::Deleted, ""),
            entry(45, "bob", MessageKind::Deletion { of: 43 }, Revision::Original, ""),
            entry(46, "carol", MessageKind::Deletion { of: 41 }, Revision::Original, "spam"),
        ]
    }

    #[test]
    fn actions_edits_and_deletions_read_as_people_say_them() {
        let printer = Printer::to(false, false, Vec::new());
        kinds_of_messages().iter().for_each(|event| printer.event(event));
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let time = local_time(0);
        let expected: Vec<String> = [
            "#lobby * ana waves",
            "#lobby <ana> new text (edited)",
            "#lobby ana edited #41: new text",
            "#lobby <bob> (deleted)",
            "#lobby bob deleted #43",
            "#lobby carol deleted #41: spam",
        ]
        .iter()
        .map(|line| format!("{time} {line}"))
        .collect();
        assert_eq!(output.lines().collect::<Vec<_>>(), expected, "an edit of a deleted message is not printed");
    }

    /// Scripts read the text as typed: links, backticks and fences stay, each line of a code block keeps its own
    /// indentation behind the continuation's.
    #[test]
    fn rich_text_is_printed_as_typed() {
        let text = "see https://a.example `x`:\n```rust\nfn main() {\n\tlet x = 1;\n    go();\n}\n```";
        for color in [false, true] {
            let printer = Printer::to(false, color, Vec::new());
            printer.event(&entry(50, "bob", MessageKind::Text, Revision::Original, text));
            let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
            let expected = "see https://a.example `x`:\n    ```rust\n    fn main() {\n    \tlet x = 1;\n        go();\n    }\n    ```\n";
            assert!(output.ends_with(expected), "{output:?}");
            assert_eq!(
                output.matches('\x1b').count(),
                if color { 2 } else { 0 },
                "only the nick is painted: {output:?}"
            );
        }
    }

    #[test]
    fn a_message_s_json_line_says_its_kind_what_it_changes_and_what_became_of_it() {
        let printer = Printer::to(true, false, Vec::new());
        kinds_of_messages().iter().for_each(|event| printer.event(event));
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<Value> = output.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
        let fields: Vec<(&str, Value, &str)> = lines
            .iter()
            .map(|line| {
                let (kind, revision) = (line["kind"].as_str().expect("kind"), line["revision"].as_str().expect("rev"));
                (kind, line["of"].clone(), revision)
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("action", Value::Null, "original"),
                ("text", Value::Null, "edited"),
                ("edit", json!(41), "original"),
                ("text", Value::Null, "deleted"),
                ("edit", json!(43), "deleted"),
                ("deletion", json!(43), "original"),
                ("deletion", json!(41), "original"),
            ]
        );
        let first = output.lines().next().expect("a line");
        assert_eq!(
            first,
            format!(
                "{{\"conversation\":\"#lobby\",\"event\":\"message\",\"from\":\"ana\",\"id\":\"{}\",\"kind\":\"action\",\
                 \"of\":null,\"own\":false,\"revision\":\"original\",\"seq\":40,\"text\":\"waves\",\"ts\":0}}",
                MessageId([40; 16])
            ),
            "the fields in alphabetical order"
        );
    }

    /// One event of every kind line mode can print, as JSON.
    fn every_json_line() -> Vec<Value> {
        let lobby = Conversation::Room(RoomName::lobby());
        let ana = Nick::parse("ana").expect("valid");
        let id = MessageId([5; 16]);
        let message = Message {
            conversation: lobby.clone(),
            seq: 1,
            id,
            from: ana.clone(),
            ts: 1,
            text: "hi".into(),
            kind: palomar_proto::MessageKind::Text,
            revision: palomar_proto::Revision::Original,
        };
        let info = palomar_proto::ConversationInfo { conversation: lobby.clone(), latest_seq: 1, first_seq: 1 };
        let fingerprint = palomar_transport::Fingerprint([1; 32]);
        let page = palomar_proto::HistoryPage {
            conversation: lobby.clone(),
            messages: vec![message.clone()],
            complete_from: 1,
        };
        let events = vec![
            Event::Connecting { server: "s".into(), attempt: 0 },
            Event::ConfirmCertificate { server: "s".into(), fingerprint },
            Event::Pinned { server: "s".into(), fingerprint },
            Event::Connected {
                server: "s".into(),
                nick: ana.clone(),
                registered: true,
                conversations: vec![info.clone()],
                version: palomar_proto::PROTOCOL_VERSION,
            },
            Event::Synced,
            disconnected("gone", 1),
            Event::Queued { id, to: lobby.clone(), kind: MessageKind::Text, text: "hi".into() },
            Event::Accepted { id, conversation: lobby.clone(), seq: 1, ts: 1 },
            Event::Message { message, own: true },
            Event::Presence { room: RoomName::lobby(), nick: ana.clone(), state: palomar_proto::PresenceState::Online },
            Event::Users { room: RoomName::lobby(), online: vec![ana], offline: vec![] },
            Event::Joined { info },
            Event::Left { room: RoomName::lobby() },
            Event::Closed { conversation: lobby.clone(), reason: "r".into() },
            Event::History(page),
            Event::Gap { conversation: lobby.clone(), complete_from: 3 },
            Event::Rewound { conversation: lobby, latest_seq: 3, had: 5 },
            Event::Error { code: None, message: "m".into(), id: None },
            Event::ServerShuttingDown { message: "m".into() },
            Event::Fatal { message: "m".into(), certificate_changed: false, password_refused: false },
        ];
        let events = events
            .into_iter()
            .chain(moderation_events())
            .chain(listing_events())
            .chain(found_events())
            .chain(awareness_events());
        let printer = Printer::to(true, false, Vec::new());
        events.for_each(|event| printer.event(&event));
        printer.notice("help");
        printer.error("refused");
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        output.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect()
    }

    #[test]
    fn the_long_help_names_every_json_line_and_its_fields() {
        for line in every_json_line() {
            let Value::Object(fields) = &line else { panic!("an object: {line}") };
            let kind = fields["event"].as_str().expect("event");
            let entry = LINE_MODE_HELP.lines().position(|l| l.starts_with(&format!("  {kind} "))).expect(kind);
            // The event's own lines: its entry and those indented under it.
            let text: String = LINE_MODE_HELP.lines().skip(entry).take_while(|l| l.starts_with("  ")).collect();
            let text = match fields.get("state").and_then(Value::as_str) {
                Some(state) if kind == "status" => text.lines().next().map_or(String::new(), |_| {
                    let at = text.find(&format!("{state}:")).unwrap_or_else(|| panic!("state {state}"));
                    text[at..].to_owned()
                }),
                _ => text,
            };
            for field in fields.keys().filter(|k| !matches!(k.as_str(), "event" | "state")) {
                assert!(text.contains(field.as_str()), "{kind}: {field} is not described");
            }
        }
    }

    fn moderation_events() -> Vec<Event> {
        use palomar_proto::{Role, RoomChange, RoomState};

        let garden = RoomName::parse("garden").expect("valid");
        let nick = |name: &str| Nick::parse(name).expect("valid");
        let change = |by: Option<&str>, change| Event::RoomEvent { room: garden.clone(), by: by.map(nick), change };
        vec![
            Event::RoomState(RoomState {
                room: garden.clone(),
                topic: "seeds".into(),
                invite_only: false,
                moderated: true,
                role: Role::Voice,
                muted: false,
                operator: false,
            }),
            change(Some("ana"), RoomChange::Kicked { nick: nick("bob"), reason: "spam".into() }),
            change(None, RoomChange::Banned { nick: nick("bob"), reason: "spam".into() }),
            change(Some("ana"), RoomChange::Unbanned { nick: nick("bob") }),
            change(Some("ana"), RoomChange::Muted { nick: nick("bob"), reason: "hush".into() }),
            change(Some("ana"), RoomChange::Unmuted { nick: nick("bob") }),
            change(Some("ana"), RoomChange::RoleSet { nick: nick("bob"), role: Role::Moderator }),
            change(Some("ana"), RoomChange::Invited { nick: nick("bob") }),
            change(Some("ana"), RoomChange::Topic { text: "weeds".into() }),
            change(Some("ana"), RoomChange::InviteOnly(true)),
            change(Some("ana"), RoomChange::Moderated(false)),
            Event::Invited { room: garden, by: Some(nick("ana")) },
        ]
    }

    fn listing_events() -> Vec<Event> {
        use palomar_proto::RoomListing;

        let listing = |room: &str, members, topic: &str, invite_only| RoomListing {
            room: RoomName::parse(room).expect("valid"),
            members,
            topic: topic.into(),
            invite_only,
        };
        vec![
            Event::Rooms { rooms: vec![listing("garden", 3, "Seeds", false)], more: false },
            Event::Rooms {
                rooms: vec![listing("attic", 1, "", true), listing("garden", 3, "Seeds \x1b[2J", true)],
                more: true,
            },
            Event::Rooms { rooms: Vec::new(), more: false },
        ]
    }

    fn found_events() -> Vec<Event> {
        let hit = |seq, kind, text: &str| Message {
            conversation: Conversation::Room(RoomName::lobby()),
            seq,
            id: MessageId([seq as u8; 16]),
            from: Nick::parse("bob").expect("valid"),
            ts: 1,
            text: text.into(),
            kind,
            revision: Revision::Original,
        };
        vec![
            Event::Found {
                query: "lunch".into(),
                conversation: None,
                hits: vec![hit(41, MessageKind::Text, "lunch?\nat noon"), hit(7, MessageKind::Action, "brings lunch")],
                next: Some("r7".into()),
            },
            Event::Found {
                query: "lunch".into(),
                conversation: Some(Conversation::Room(RoomName::lobby())),
                hits: Vec::new(),
                next: None,
            },
        ]
    }

    /// Version 6's events: away messages (ours and another's), a `/whois` answer, typing, read markers.
    fn awareness_events() -> Vec<Event> {
        let nick = |name: &str| Nick::parse(name).expect("valid");
        let lobby = Conversation::Room(RoomName::lobby());
        let now = unix_ms();
        vec![
            Event::Away { nick: nick("ana"), message: Some("lunch".into()) },
            Event::Away { nick: nick("bob"), message: None },
            Event::Whois(WhoisInfo {
                nick: nick("bob"),
                registered_ms: 1_763_985_600_000,
                online: true,
                online_since_ms: Some(now - 7_800_000),
                idle_ms: Some(300_000),
                away: Some("in a meeting".into()),
                rooms: vec![RoomName::lobby(), RoomName::parse("rust").expect("valid")],
            }),
            Event::Typing { conversation: Conversation::Direct(nick("bob")), nick: nick("bob"), typing: true },
            Event::ReadMarkers(vec![
                ReadMarker { conversation: lobby.clone(), nick: nick("bob"), seq: 41 },
                ReadMarker { conversation: lobby, nick: nick("ana"), seq: 40 },
            ]),
        ]
    }

    #[test]
    fn awareness_json_lines_have_their_exact_shapes() {
        let printer = Printer::to(true, false, Vec::new());
        awareness_events().iter().for_each(|event| printer.event(event));
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<Value> = output.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
        let since = lines.get(2).map(|line| line["online_since_ms"].clone()).unwrap_or_default();
        assert!(since.is_u64(), "{output}");
        let expected = [
            json!({"event": "away", "nick": "ana", "message": "lunch"}),
            json!({"event": "away", "nick": "bob", "message": null}),
            json!({"event": "whois", "nick": "bob", "registered_ms": 1_763_985_600_000_u64, "online": true,
                   "online_since_ms": since, "idle_ms": 300_000, "away": "in a meeting",
                   "rooms": ["#lobby", "#rust"]}),
            json!({"event": "typing", "conversation": "@bob", "nick": "bob", "typing": true}),
            json!({"event": "read", "conversation": "#lobby", "nick": "bob", "seq": 41}),
            json!({"event": "read", "conversation": "#lobby", "nick": "ana", "seq": 40}),
        ];
        assert_eq!(lines, expected, "{output}");
    }

    #[test]
    fn our_away_message_and_a_whois_answer_read_as_notices_and_typing_and_markers_are_not_printed() {
        let printer = Printer::to(false, false, Vec::new());
        printer.event(&Event::Connected {
            server: "s".into(),
            nick: Nick::parse("ana").expect("valid"),
            registered: false,
            conversations: vec![],
            version: palomar_proto::AWARENESS_VERSION,
        });
        awareness_events().iter().for_each(|event| printer.event(event));
        printer.event(&Event::Away { nick: Nick::parse("ana").expect("valid"), message: None });
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<&str> = output.lines().skip(1).collect();
        let since = palomar_client::model::local_time(unix_ms() - 7_800_000, unix_ms(), *Local::now().offset());
        let online = format!("-- bob: online since {since} (2 h 10 min), idle 5 min");
        assert_eq!(
            lines,
            [
                "-- you are away: lunch",
                online.as_str(),
                "-- bob: away: in a meeting",
                "-- bob: registered 2025-11-24",
                "-- bob: rooms in common: #lobby, #rust",
                "-- you are back",
            ],
            "{output}"
        );
    }

    #[test]
    fn a_search_s_answer_is_its_words_one_line_a_hit_and_one_json_line() {
        let printer = Printer::to(false, false, Vec::new());
        let events = found_events();
        printer.event(&events[0]);
        if let Event::Found { query, conversation, hits, .. } = &events[0] {
            printer.found(query, conversation.as_ref(), &hits[1..], false, 3);
        }
        printer.event(&events[1]);
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let time = hit_time(1, unix_ms(), *Local::now().offset());
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(
            lines,
            [
                "-- 2 messages found for “lunch”".to_owned(),
                format!("-- [1] #lobby  bob  {time}  lunch?"),
                format!("-- [2] #lobby  bob  {time}  * bob brings lunch"),
                "-- /search shows older ones".to_owned(),
                "-- 1 more found for “lunch”".to_owned(),
                format!("-- [3] #lobby  bob  {time}  * bob brings lunch"),
                "-- nothing found for “lunch” in #lobby".to_owned(),
            ]
        );

        let printer = Printer::to(true, false, Vec::new());
        printer.event(&found_events()[1]);
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let line: Value = serde_json::from_str(output.trim()).expect("JSON");
        assert_eq!(
            line,
            json!({"event": "found", "query": "lunch", "conversation": "#lobby", "hits": [], "more": false})
        );
    }

    #[test]
    fn a_listing_is_one_json_line_with_its_exact_shape() {
        let printer = Printer::to(true, false, Vec::new());
        listing_events().iter().for_each(|event| printer.event(event));
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<Value> = output.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
        let expected = [
            r##"{"event":"rooms","rooms":[{"room":"#garden","members":3,"topic":"Seeds","invite_only":false}],"more":false}"##,
            r##"{"event":"rooms","rooms":[{"room":"#attic","members":1,"topic":"","invite_only":true},{"room":"#garden","members":3,"topic":"Seeds \u001b[2J","invite_only":true}],"more":true}"##,
            r#"{"event":"rooms","rooms":[],"more":false}"#,
        ];
        assert_eq!(lines.len(), expected.len(), "{output}");
        for (line, expected) in lines.iter().zip(expected) {
            assert_eq!(*line, serde_json::from_str::<Value>(expected).expect("JSON"));
        }
        assert_eq!(output.lines().next(), Some(expected[0]), "the fields in the documented order");
    }

    #[test]
    fn a_listing_reads_one_room_a_line_and_says_how_to_see_the_next_ones() {
        let printer = Printer::to(false, false, Vec::new());
        listing_events().iter().for_each(|event| printer.event(event));
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(
            lines,
            [
                "-- #garden  3 members  Seeds",
                "-- #attic  1 member  invite-only",
                "-- #garden  3 members  invite-only  Seeds \\u{1b}[2J",
                "-- more rooms after #garden: /list garden shows the next ones",
                "-- there are no rooms to list",
            ]
        );
    }

    #[test]
    fn moderation_json_lines_have_their_exact_shapes() {
        let printer = Printer::to(true, false, Vec::new());
        moderation_events().iter().for_each(|event| printer.event(event));
        printer.event(&Event::Error {
            code: Some(ErrorCode::NotAllowed),
            message: "you are muted".into(),
            id: Some(MessageId([1; 16])),
        });
        printer.event(&Event::Error { code: Some(ErrorCode::Banned), message: "banned".into(), id: None });
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<Value> = output.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
        let expected = [
            r##"{"event":"room_state","room":"#garden","topic":"seeds","invite_only":false,"moderated":true,"role":"voice","muted":false,"operator":false}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"kicked","nick":"bob","reason":"spam"}"##,
            r##"{"event":"room_event","room":"#garden","by":null,"change":"banned","nick":"bob","reason":"spam"}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"unbanned","nick":"bob"}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"muted","nick":"bob","reason":"hush"}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"unmuted","nick":"bob"}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"role","nick":"bob","role":"moderator"}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"invited","nick":"bob"}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"topic","text":"weeds"}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"invite_only","on":true}"##,
            r##"{"event":"room_event","room":"#garden","by":"ana","change":"moderated","on":false}"##,
            r##"{"event":"invited","room":"#garden","by":"ana"}"##,
            r#"{"event":"error","code":"NotAllowed","message":"you are muted","id":"01010101010101010101010101010101"}"#,
            r#"{"event":"error","code":"Banned","message":"banned","id":null}"#,
        ];
        assert_eq!(lines.len(), expected.len(), "{output}");
        for (line, expected) in lines.iter().zip(expected) {
            assert_eq!(*line, serde_json::from_str::<Value>(expected).expect("JSON"));
        }
    }

    #[test]
    fn moderation_reads_as_people_say_it_and_what_is_done_to_us_says_you() {
        let printer = Printer::to(false, false, Vec::new());
        printer.event(&Event::Connected {
            server: "s".into(),
            nick: Nick::parse("bob").expect("valid"),
            registered: false,
            conversations: vec![],
            version: palomar_proto::PROTOCOL_VERSION,
        });
        moderation_events().iter().for_each(|event| printer.event(event));
        let output = String::from_utf8(printer.out.into_inner()).expect("UTF-8");
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines[1], "-- #garden: topic: seeds (voice · moderated)");
        assert!(lines[2].ends_with(" #garden * you were kicked from #garden by ana: spam"), "{output}");
        assert!(lines[3].ends_with(" #garden * you were banned from #garden by the server's operator: spam"));
        assert!(lines[9].ends_with(" #garden * ana set the topic: weeds"), "{output}");
        assert_eq!(lines[12], "-- you were invited to #garden by ana — /join garden");
    }
}
