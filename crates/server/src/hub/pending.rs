//! What waits beside a session's bounded queue: the kinds of live items it dropped, and the changes to the
//! user's conversations made elsewhere.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};

use palomar_store::ConvKey;
use parking_lot::{Mutex, MutexGuard};

use super::{Change, Live, MAX_CHANGES_BESIDE};

/// What reaches a session beside its bounded queue: the kinds of live items that did not fit, changes to the
/// user's conversations made elsewhere, and the removal of the session's own account. Empty and
/// allocation-free while nothing happens.
#[derive(Debug, Default)]
pub struct PendingChanges {
    flags: AtomicU8,
    changes: Mutex<VecDeque<Change>>,
}

/// What the hub noted beside a session since it last looked: live items dropped (each kind read back in its own
/// way, so that a session behind on messages alone does not also reread its rooms' members), and more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MissedKinds {
    /// Committed messages: the log has them.
    pub messages: bool,
    /// A message of a direct conversation, which may be its first: the store knows the conversation.
    pub direct: bool,
    /// Someone's arrival, departure, join or leave: the hub and the store know who is online and who is a member.
    pub presence: bool,
    /// Changes to the user's conversations overflowed [`MAX_CHANGES_BESIDE`]: the store knows them.
    pub conversations: bool,
    /// The session's account was removed: the session ends.
    pub account_removed: bool,
    /// The session's account was suspended: the session ends, unless the suspension was lifted since.
    pub account_suspended: bool,
    /// Someone's away message or read marker (version 6): the store has them. The member lists that `presence`
    /// sends again carry those of their rooms; the user's own markers, and its direct peers', are sent again too.
    pub awareness: bool,
}

impl PendingChanges {
    pub(super) const MESSAGES: u8 = 1;
    pub(super) const DIRECT: u8 = 2;
    pub(super) const PRESENCE: u8 = 4;
    pub(super) const CONVERSATIONS: u8 = 8;
    pub(super) const ACCOUNT_REMOVED: u8 = 16;
    pub(super) const ACCOUNT_SUSPENDED: u8 = 32;
    pub(super) const AWARENESS: u8 = 64;

    pub(super) fn note(&self, flags: u8) {
        self.flags.fetch_or(flags, Ordering::AcqRel);
    }

    /// Notes the kind of `item`, which the queue had no room for; false when it is of a kind nobody reads back
    /// (a typing notice, which expires by itself), so there is nothing to wake the session for.
    pub(super) fn note_dropped(&self, item: &Live) -> bool {
        let flags = match item {
            Live::Message(published) => match published.message.key {
                ConvKey::Room(_) => Self::MESSAGES,
                ConvKey::Direct(..) => Self::MESSAGES | Self::DIRECT,
            },
            Live::Presence { .. } => Self::PRESENCE,
            Live::Away { .. } | Live::ReadMarker { .. } => Self::PRESENCE | Self::AWARENESS,
            Live::Typing { .. } => return false,
        };
        self.note(flags);
        true
    }

    /// What was noted since the last call, and clears it.
    pub fn take_missed(&self) -> MissedKinds {
        let flags = self.flags.swap(0, Ordering::AcqRel);
        MissedKinds {
            messages: flags & Self::MESSAGES != 0,
            direct: flags & Self::DIRECT != 0,
            presence: flags & Self::PRESENCE != 0,
            conversations: flags & Self::CONVERSATIONS != 0,
            account_removed: flags & Self::ACCOUNT_REMOVED != 0,
            account_suspended: flags & Self::ACCOUNT_SUSPENDED != 0,
            awareness: flags & Self::AWARENESS != 0,
        }
    }

    /// The changes made elsewhere since the last call, oldest first.
    pub fn take_changes(&self) -> VecDeque<Change> {
        std::mem::take(&mut *self.lock_changes())
    }

    fn lock_changes(&self) -> MutexGuard<'_, VecDeque<Change>> {
        self.changes.lock()
    }

    pub(super) fn push_change(&self, change: Change) {
        let mut changes = self.lock_changes();
        if changes.len() >= MAX_CHANGES_BESIDE {
            // The store holds the outcome of every change: the session reads it instead of the list.
            changes.clear();
            self.note(Self::CONVERSATIONS);
        } else {
            changes.push_back(change);
        }
    }
}
