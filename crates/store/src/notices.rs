//! What server nodes sharing one database tell each other: a [`Notice`] from a [`NodeId`], as the text of one
//! PostgreSQL notification. A notice says *that* something was committed, never the committed data itself: the
//! node that receives it reads that from the database, so a notice is small and a lost one costs a read-back,
//! never a wrong message.

use std::fmt;
use std::net::IpAddr;

use palomar_proto::{Nick, RoomName};

use crate::keys::{Account, AccountId, ConvId};

/// The version of the notice format, first in every notice: a node ignores (and logs) notices of another
/// version rather than misreading them, so nodes of two releases can share a database while it is upgraded.
const VERSION: &str = "1";

/// One server process on a shared database, by a number it draws at start: a node that restarts is a new node,
/// and its old self's sessions expire with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub i64);

impl NodeId {
    /// A new node's number, drawn at random (collisions among a handful of nodes are out of reach).
    pub fn random() -> NodeId {
        NodeId(rand::random::<i64>() & i64::MAX)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Something one node committed or saw that the others must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Messages `first..=last` of `conv` are committed.
    Appended { conv: ConvId, first: u64, last: u64 },
    /// The account was removed: its sessions end everywhere.
    AccountRemoved { account: AccountId },
    /// The direct conversation `conv` of `peer` with the removed account `removed` was deleted.
    DirectDeleted { conv: ConvId, removed: Nick, peer: AccountId },
    /// A session of `account` on the sending node has lasted and was announced (the user is online there).
    Online { account: Account },
    /// The sending node's last announced session of `account` ended.
    Offline { account: AccountId },
    /// `account` joined room `conv` through the sending node, shown to its sessions from the seq after
    /// `joined_after`; `newly` when it was not a member before.
    Joined { conv: ConvId, room: RoomName, account: Account, newly: bool, joined_after: u64 },
    /// `account` left room `conv` through the sending node.
    Left { conv: ConvId, room: RoomName, account: Account },
    /// A moderator acted in room `conv` through the sending node; audit log entry `audit` says what.
    Moderated { conv: ConvId, room: RoomName, audit: i64 },
    /// A login of `nick` from `address` failed on the sending node: every node counts it towards its lockouts.
    LoginFailed { nick: Nick, address: IpAddr },
    /// A login of `nick` from `address` succeeded on the sending node: the pair starts afresh everywhere.
    LoginSucceeded { nick: Nick, address: IpAddr },
    /// `account` set or cleared its away message (committed with this notice; read it from the store).
    Away { account: Account },
    /// `account` is typing in conversation `conv` (`typing`), or stopped: passed on, never stored.
    Typing { conv: ConvId, account: Account, typing: bool },
    /// `account`'s read marker in conversation `conv` moved to `seq`. The sending node's writer stores it within
    /// a second; the notice goes at once, as the marker goes to that node's sessions.
    Read { conv: ConvId, account: Account, seq: u64 },
}

/// A notice with the node it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: NodeId,
    pub notice: Notice,
}

/// Why a notification's text is not a notice this release can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable notice {0:?}")]
pub struct Unreadable(pub String);

impl Envelope {
    /// The notification's text: words separated by single spaces (no name or number holds a space), the format's
    /// version and the sender first.
    pub fn encode(&self) -> String {
        let from = self.from.0;
        match &self.notice {
            Notice::Appended { conv, first, last } => format!("{VERSION} {from} appended {conv} {first} {last}"),
            Notice::AccountRemoved { account } => format!("{VERSION} {from} removed {account}"),
            Notice::DirectDeleted { conv, removed, peer } => {
                format!("{VERSION} {from} direct-deleted {conv} {removed} {peer}")
            }
            Notice::Online { account } => format!("{VERSION} {from} online {} {}", account.id, account.nick),
            Notice::Offline { account } => format!("{VERSION} {from} offline {account}"),
            Notice::Joined { conv, room, account, newly, joined_after } => format!(
                "{VERSION} {from} joined {conv} {room} {} {} {} {joined_after}",
                account.id,
                account.nick,
                u8::from(*newly)
            ),
            Notice::Left { conv, room, account } => {
                format!("{VERSION} {from} left {conv} {room} {} {}", account.id, account.nick)
            }
            Notice::Moderated { conv, room, audit } => format!("{VERSION} {from} moderated {conv} {room} {audit}"),
            Notice::LoginFailed { nick, address } => format!("{VERSION} {from} login-failed {nick} {address}"),
            Notice::LoginSucceeded { nick, address } => format!("{VERSION} {from} login-succeeded {nick} {address}"),
            Notice::Away { account } => format!("{VERSION} {from} away {} {}", account.id, account.nick),
            Notice::Typing { conv, account, typing } => {
                format!("{VERSION} {from} typing {conv} {} {} {}", account.id, account.nick, u8::from(*typing))
            }
            Notice::Read { conv, account, seq } => {
                format!("{VERSION} {from} read {conv} {} {} {seq}", account.id, account.nick)
            }
        }
    }

    pub fn decode(text: &str) -> Result<Envelope, Unreadable> {
        let unreadable = || Unreadable(text.chars().take(200).collect());
        let words: Vec<&str> = text.split(' ').collect();
        let int =
            |i: usize| -> Result<i64, Unreadable> { words.get(i).and_then(|w| w.parse().ok()).ok_or_else(unreadable) };
        let seq =
            |i: usize| -> Result<u64, Unreadable> { words.get(i).and_then(|w| w.parse().ok()).ok_or_else(unreadable) };
        let nick = |i: usize| words.get(i).and_then(|w| Nick::try_from((*w).to_owned()).ok()).ok_or_else(unreadable);
        let room =
            |i: usize| words.get(i).and_then(|w| RoomName::try_from((*w).to_owned()).ok()).ok_or_else(unreadable);
        let account =
            |i: usize| -> Result<Account, Unreadable> { Ok(Account { id: AccountId(int(i)?), nick: nick(i + 1)? }) };
        let address = |i: usize| words.get(i).and_then(|w| w.parse::<IpAddr>().ok()).ok_or_else(unreadable);
        if words.first() != Some(&VERSION) {
            return Err(unreadable());
        }
        let from = NodeId(int(1)?);
        let (notice, arity) = match words.get(2).copied() {
            Some("appended") => (Notice::Appended { conv: ConvId(int(3)?), first: seq(4)?, last: seq(5)? }, 6),
            Some("removed") => (Notice::AccountRemoved { account: AccountId(int(3)?) }, 4),
            Some("direct-deleted") => {
                (Notice::DirectDeleted { conv: ConvId(int(3)?), removed: nick(4)?, peer: AccountId(int(5)?) }, 6)
            }
            Some("online") => (Notice::Online { account: account(3)? }, 5),
            Some("offline") => (Notice::Offline { account: AccountId(int(3)?) }, 4),
            Some("joined") => {
                let newly = match words.get(7).copied() {
                    Some("1") => true,
                    Some("0") => false,
                    _ => return Err(unreadable()),
                };
                let notice = Notice::Joined {
                    conv: ConvId(int(3)?),
                    room: room(4)?,
                    account: account(5)?,
                    newly,
                    joined_after: seq(8)?,
                };
                (notice, 9)
            }
            Some("left") => (Notice::Left { conv: ConvId(int(3)?), room: room(4)?, account: account(5)? }, 7),
            Some("moderated") => (Notice::Moderated { conv: ConvId(int(3)?), room: room(4)?, audit: int(5)? }, 6),
            Some("login-failed") => (Notice::LoginFailed { nick: nick(3)?, address: address(4)? }, 5),
            Some("login-succeeded") => (Notice::LoginSucceeded { nick: nick(3)?, address: address(4)? }, 5),
            Some("away") => (Notice::Away { account: account(3)? }, 5),
            Some("typing") => {
                let typing = match words.get(6).copied() {
                    Some("1") => true,
                    Some("0") => false,
                    _ => return Err(unreadable()),
                };
                (Notice::Typing { conv: ConvId(int(3)?), account: account(4)?, typing }, 7)
            }
            Some("read") => (Notice::Read { conv: ConvId(int(3)?), account: account(4)?, seq: seq(6)? }, 7),
            _ => return Err(unreadable()),
        };
        if words.len() != arity {
            return Err(unreadable());
        }
        Ok(Envelope { from, notice })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: i64, nick: &str) -> Account {
        Account { id: AccountId(id), nick: Nick::parse(nick).expect("a nickname") }
    }

    #[test]
    fn every_notice_reads_back_as_it_was_written() {
        let room = RoomName::parse("rust-talk").expect("a room");
        let notices = [
            Notice::Appended { conv: ConvId(7), first: 3, last: 90 },
            Notice::AccountRemoved { account: AccountId(12) },
            Notice::DirectDeleted { conv: ConvId(8), removed: Nick::parse("eve").expect("a nick"), peer: AccountId(3) },
            Notice::Online { account: account(4, "ana") },
            Notice::Offline { account: AccountId(4) },
            Notice::Joined {
                conv: ConvId(9),
                room: room.clone(),
                account: account(5, "bob"),
                newly: true,
                joined_after: 41,
            },
            Notice::Joined {
                conv: ConvId(9),
                room: room.clone(),
                account: account(5, "bob"),
                newly: false,
                joined_after: 0,
            },
            Notice::Left { conv: ConvId(9), room: room.clone(), account: account(5, "bob") },
            Notice::Moderated { conv: ConvId(9), room, audit: 77 },
            Notice::LoginFailed { nick: Nick::parse("ana").expect("a nick"), address: [192, 0, 2, 7].into() },
            Notice::LoginSucceeded {
                nick: Nick::parse("ana").expect("a nick"),
                address: "2001:db8::".parse().expect("an address"),
            },
            Notice::Away { account: account(4, "ana") },
            Notice::Typing { conv: ConvId(9), account: account(4, "ana"), typing: true },
            Notice::Typing { conv: ConvId(9), account: account(4, "ana"), typing: false },
            Notice::Read { conv: ConvId(9), account: account(4, "ana"), seq: 12 },
        ];
        for notice in notices {
            let envelope = Envelope { from: NodeId(i64::MAX), notice };
            assert_eq!(Envelope::decode(&envelope.encode()), Ok(envelope.clone()), "{}", envelope.encode());
        }
    }

    #[test]
    fn a_notice_of_another_version_or_shape_is_refused_not_misread() {
        for text in [
            "",
            "2 5 offline 4",
            "1 5 offline",
            "1 5 offline 4 extra",
            "1 x offline 4",
            "1 5 appended 7 3",
            "1 5 appended 7 -3 9",
            "1 5 online 4 Not-A-Nick",
            "1 5 joined 9 room 5 bob 2 41",
            "1 5 joined 9 #room 5 bob 1 41",
            "1 5 teleported 4",
            "1 5 login-failed ana 300.1.2.3",
            "1 5 login-failed ana",
            "1 5 typing 9 4 ana 2",
            "1 5 read 9 4 ana -1",
        ] {
            assert!(Envelope::decode(text).is_err(), "{text:?} is refused");
        }
    }
}
