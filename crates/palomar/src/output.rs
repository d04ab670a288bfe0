//! How line mode shows engine events: one line each, readable (coloured on a terminal) or JSON.

use std::cell::RefCell;
use std::io::{BufWriter, Stdout, Write};

use chrono::{DateTime, Local, TimeZone, Utc};
use palomar_client::Event;
use palomar_proto::{Message, PresenceState};
use serde::Serialize;
use serde_json::{Value, json};

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

fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
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

/// Lines are buffered: a catch-up of thousands of messages is a few writes, not one per line. Notices and
/// errors are written at once; after events, the caller says when to `flush` (when no more are waiting).
pub struct Printer {
    json: bool,
    color: bool,
    out: RefCell<BufWriter<Stdout>>,
}

/// A message as a JSON line. The fields are in alphabetical order, as `json!` objects print theirs.
#[derive(Serialize)]
struct MessageLine<'a> {
    conversation: String,
    event: &'static str,
    from: &'a str,
    id: String,
    own: bool,
    seq: u64,
    text: &'a str,
    ts: u64,
}

impl<'a> MessageLine<'a> {
    fn new(message: &'a Message, own: bool) -> Self {
        MessageLine {
            conversation: message.conversation.to_string(),
            event: "message",
            from: message.from.as_str(),
            id: message.id.to_hex(),
            own,
            seq: message.seq,
            text: &message.text,
            ts: message.ts,
        }
    }
}

impl Printer {
    pub fn new(json: bool, color: bool) -> Self {
        Printer { json, color, out: RefCell::new(BufWriter::with_capacity(1 << 16, std::io::stdout())) }
    }

    /// Writes out the lines buffered so far.
    pub fn flush(&self) {
        // A closed stdout (a pipe whose reader left) must not kill the client before its outbox drains.
        let _ = self.out.borrow_mut().flush();
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color { format!("{}{text}\x1b[0m", style.code()) } else { text.to_owned() }
    }

    fn line(&self, text: &str) {
        let _ = writeln!(self.out.borrow_mut(), "{text}");
    }

    fn json_line(&self, value: impl Serialize) {
        let mut out = self.out.borrow_mut();
        if serde_json::to_writer(&mut *out, &value).is_ok() {
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

    fn message_json(message: &Message) -> Value {
        json!({
            "conversation": message.conversation.to_string(),
            "seq": message.seq,
            "id": message.id.to_hex(),
            "from": message.from.as_str(),
            "ts": message.ts,
            "text": message.text,
        })
    }

    fn message_line(&self, message: &Message, own: bool, prefix: &str) -> String {
        let nick = format!("<{}>", message.from);
        let nick = self.paint(if own { Style::Own } else { Style::Nick }, &nick);
        // Continuation lines are indented so a multi-line message cannot pass for several messages.
        let text = message.text.replace('\n', "\n    ");
        format!("{prefix}{} {} {nick} {text}", local_time(message.ts), message.conversation)
    }

    /// Buffers the event's line; see [`Printer::flush`].
    pub fn event(&self, event: &Event) {
        if self.json {
            // Messages are most of what a client prints: written straight from a struct, not built as a map.
            match event {
                Event::Message { message, own } => self.json_line(MessageLine::new(message, *own)),
                _ => self.json_line(event_json(event)),
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
            Event::Connected { nick, registered, .. } => {
                let new = if *registered { " (new account registered)" } else { "" };
                notice(format!("-- connected as {nick}{new}"))
            }
            Event::Disconnected { reason, retry_in, attempt, pending } => notice(format!(
                "-- disconnected: {reason}; reconnecting in {:.1} s (attempt {attempt}, {pending} message(s) waiting)",
                retry_in.as_secs_f64()
            )),
            Event::Queued { .. } | Event::Accepted { .. } | Event::Synced | Event::ConfirmCertificate { .. } => {}
            Event::Message { message, own } => self.line(&self.message_line(message, *own, "")),
            Event::Presence { room, nick, state } => {
                let what = match state {
                    PresenceState::Joined => "joined",
                    PresenceState::Left => "left",
                    PresenceState::Online => "is online",
                    PresenceState::Offline => "went offline",
                };
                notice(format!("{} #{room} * {nick} {what}", local_time(now_ms())))
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
                for message in &page.messages {
                    self.line(&self.message_line(message, false, "(history) "));
                }
            }
            Event::Gap { conversation, complete_from } => notice(format!(
                "-- {conversation}: messages before seq {complete_from} were removed by the server's retention policy"
            )),
            Event::Error { message, .. } => self.line(&self.paint(Style::Error, &format!("!! {message}"))),
            Event::ServerShuttingDown { message } => notice(format!("-- server: {message}")),
            Event::Fatal { message, .. } => self.line(&self.paint(Style::Error, &format!("!! {message}"))),
        }
    }
}

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
        Event::Connected { nick, registered, .. } => {
            json!({"event": "status", "state": "connected", "nick": nick.as_str(), "registered": registered})
        }
        Event::Disconnected { reason, retry_in, attempt, pending } => json!({
            "event": "status", "state": "disconnected", "reason": reason,
            "retry_in_ms": retry_in.as_millis() as u64, "attempt": attempt, "pending": pending,
        }),
        Event::Queued { id, to, text } => {
            json!({"event": "queued", "id": id.to_hex(), "conversation": to.to_string(), "text": text})
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
            "messages": page.messages.iter().map(Printer::message_json).collect::<Vec<_>>(),
        }),
        Event::Gap { conversation, complete_from } => {
            json!({"event": "gap", "conversation": conversation.to_string(), "complete_from": complete_from})
        }
        Event::Error { code, message, id } => json!({
            "event": "error", "code": code.map(|c| format!("{c:?}")), "message": message, "id": id.map(|i| i.to_hex()),
        }),
        Event::ServerShuttingDown { message } => {
            json!({"event": "status", "state": "server-shutting-down", "message": message})
        }
        Event::Fatal { message, certificate_changed } => {
            json!({"event": "fatal", "message": message, "certificate_changed": certificate_changed})
        }
    }
}
