//! Who and what the store names: accounts ([`AccountId`], [`Account`]) and conversations ([`ConvId`],
//! [`ConvKey`]), independent of who is looking at them.

use std::fmt;

use palomar_proto::{Conversation, Nick, RoomName};
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// An account's identity. Given out once and never again, even after the account is removed: memberships,
/// cursors and direct conversations hang off it, so a nickname registered anew is a new person with no past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A conversation's identity in the store, a room's or a direct conversation's: the `conversations.id` its
/// messages, members and cursors hang off. Never given out again, even after the conversation is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvId(pub i64);

impl fmt::Display for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ToSql for ConvId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for ConvId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(ConvId)
    }
}

/// An account: its identity and the nickname it goes by (which never changes for that identity).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account {
    pub id: AccountId,
    pub nick: Nick,
}

/// A room, or the direct conversation of two accounts (ordered by id, so both name it the same).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvKey {
    Room(RoomName),
    Direct(Account, Account),
}

impl ConvKey {
    pub fn direct(a: Account, b: Account) -> Self {
        if a.id <= b.id { ConvKey::Direct(a, b) } else { ConvKey::Direct(b, a) }
    }

    /// How `viewer` addresses this conversation (`Direct(peer)` for a direct one).
    pub fn view_for(&self, viewer: AccountId) -> Conversation {
        match self {
            ConvKey::Room(room) => Conversation::Room(room.clone()),
            ConvKey::Direct(a, b) => Conversation::Direct(if a.id == viewer { b.nick.clone() } else { a.nick.clone() }),
        }
    }

    /// The two participants of a direct conversation.
    pub fn participants(&self) -> Option<(&Account, &Account)> {
        match self {
            ConvKey::Direct(a, b) => Some((a, b)),
            ConvKey::Room(_) => None,
        }
    }

    /// The text stored in the `conversations.key` column: `#room`, or `@ID:NICK/ID:NICK` for a direct
    /// conversation. The ids make it unique to the two accounts; the nicknames make it readable without a join.
    pub fn to_column(&self) -> String {
        match self {
            ConvKey::Room(room) => format!("#{room}"),
            ConvKey::Direct(a, b) => format!("@{}:{}/{}:{}", a.id, a.nick, b.id, b.nick),
        }
    }

    pub fn from_column(column: &str) -> Option<Self> {
        if let Some(room) = column.strip_prefix('#') {
            return RoomName::parse(room).ok().map(ConvKey::Room);
        }
        let (a, b) = column.strip_prefix('@')?.split_once('/')?;
        Some(ConvKey::direct(account_from_column(a)?, account_from_column(b)?))
    }

    /// The two nicknames of a direct conversation in sorted order, `@a/b`: what a later conversation between
    /// two accounts of these nicknames continues the seqs of (see `Db::open_direct`).
    pub fn nick_pair(&self) -> Option<String> {
        let (a, b) = self.participants()?;
        let (first, second) = if a.nick <= b.nick { (&a.nick, &b.nick) } else { (&b.nick, &a.nick) };
        Some(format!("@{first}/{second}"))
    }
}

fn account_from_column(part: &str) -> Option<Account> {
    let (id, nick) = part.split_once(':')?;
    Some(Account { id: AccountId(id.parse().ok()?), nick: Nick::parse(nick).ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: i64, nick: &str) -> Account {
        Account { id: AccountId(id), nick: Nick::parse(nick).expect("valid") }
    }

    #[test]
    fn direct_keys_are_the_same_from_both_sides() {
        let (ana, bob) = (account(7, "ana"), account(3, "bob"));
        let key = ConvKey::direct(ana.clone(), bob.clone());
        assert_eq!(key, ConvKey::direct(bob.clone(), ana.clone()));
        assert_eq!(key.view_for(ana.id), Conversation::Direct(bob.nick.clone()));
        assert_eq!(key.view_for(bob.id), Conversation::Direct(ana.nick.clone()));
        assert_eq!(key.to_column(), "@3:bob/7:ana");
        assert_eq!(ConvKey::from_column(&key.to_column()), Some(key.clone()));
        assert_eq!(key.nick_pair().as_deref(), Some("@ana/bob"));
    }

    #[test]
    fn two_accounts_of_one_nickname_name_different_conversations() {
        let bob = account(3, "bob");
        let first_ana = ConvKey::direct(account(1, "ana"), bob.clone());
        let second_ana = ConvKey::direct(account(9, "ana"), bob);
        assert_ne!(first_ana.to_column(), second_ana.to_column());
        assert_eq!(first_ana.nick_pair(), second_ana.nick_pair());
    }

    #[test]
    fn malformed_columns_are_refused() {
        for column in ["@ana/bob", "@1:ana", "@x:ana/2:bob", "@1:Ana!/2:bob", "#", "lobby"] {
            assert_eq!(ConvKey::from_column(column), None, "{column}");
        }
    }
}
