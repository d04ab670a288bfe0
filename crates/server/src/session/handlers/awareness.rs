//! Knowing who is there (protocol version 6): `SetAway`, `Whois`, `Typing` and `MarkRead`, and the read markers
//! and away messages that follow `Welcome` and `Users`.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use palomar_proto::{
    Conversation, ErrorCode, Nick, READ_MARKERS_PAGE, ReadMarker, RoomName, ServerMsg, WhoisInfo, away_message, unix_ms,
};
use palomar_store::{ConvId, ConvKey};

use crate::session::{OUT_BUDGET, Session, SessionEnd};

impl Session {
    /// Sets the user's away message (an empty one: back). The writer's commit has the hub tell the user's
    /// sessions and those who share a room with it.
    pub(super) async fn set_away(&mut self, typed: &str) -> Result<(), SessionEnd> {
        let message = match away_message(typed) {
            Ok(message) => message,
            Err(refused) => {
                self.error(ErrorCode::InvalidText, refused.to_string(), None);
                return Ok(());
            }
        };
        if let Err(failed) = self.shared.writer.set_away(self.account.clone(), message).await {
            self.error(ErrorCode::StoreUnavailable, failed.0.to_string(), None);
        }
        Ok(())
    }

    /// What anyone may know of the account of `raw`: when it registered, whether it is online and since when,
    /// how long since it last sent a message, its away message, and the rooms the user shares with it.
    pub(super) async fn whois(&mut self, raw: &str) -> Result<(), SessionEnd> {
        let nick = match Nick::parse(raw) {
            Ok(nick) => nick,
            Err(error) => {
                self.error(ErrorCode::InvalidName, error.to_string(), None);
                return Ok(());
            }
        };
        let asked = nick.clone();
        let found = self
            .read(move |db| {
                let Some(account) = db.account(&asked)? else { return Ok(None) };
                let registered_ms = db.account_created_ms(account.id)?.unwrap_or(0);
                let away = db.away_of(account.id)?;
                let conversations = db.conversations_of(account.id)?;
                Ok(Some((account, registered_ms, away, conversations)))
            })
            .await?;
        let Some((account, registered_ms, away, conversations)) = found else {
            self.error(ErrorCode::UnknownNick, format!("there is no user named {nick}"), None);
            return Ok(());
        };
        let mut rooms: Vec<RoomName> = conversations
            .into_iter()
            .filter(|row| self.keys_of.contains_key(&row.id))
            .filter_map(|row| match row.key {
                ConvKey::Room(room) => Some(room),
                ConvKey::Direct(..) => None,
            })
            .collect();
        rooms.sort();
        let shown = self.shared.hub.shown_online(account.id, &account.nick);
        let now = unix_ms();
        self.queue_since_v6(&ServerMsg::Whois(WhoisInfo {
            nick: account.nick,
            registered_ms,
            online: shown.is_some(),
            online_since_ms: shown.map(|shown| shown.since_ms),
            idle_ms: shown.and_then(|shown| shown.last_message_ms).map(|sent| now.saturating_sub(sent)),
            away,
            rooms,
        }));
        Ok(())
    }

    /// Passes on that the user is typing in `conversation`, or stopped, as the [`TypingLimiter`] allows, to the
    /// other members online. A direct conversation that does not exist yet has nobody to tell (its first message
    /// creates it); telling whether its peer exists costs a read, so that is paced as a request.
    ///
    /// [`TypingLimiter`]: crate::session::typing::TypingLimiter
    pub(super) async fn typing(&mut self, conversation: Conversation, typing: bool) -> Result<(), SessionEnd> {
        let Some(&conv) = self.by_view.get(&conversation) else {
            match conversation {
                Conversation::Room(room) => {
                    self.error(ErrorCode::NotMember, format!("you are not in #{room}"), None);
                }
                Conversation::Direct(peer) => {
                    self.pace_request().await;
                    let asked = peer.clone();
                    if self.read(move |db| db.account(&asked)).await?.is_none() {
                        self.error(ErrorCode::UnknownNick, format!("there is no user named {peer}"), None);
                    }
                }
            }
            return Ok(());
        };
        // One who may not speak in a room (muted, or moderated without voice) does not seem to be about to.
        let (now, account) = (Instant::now(), self.account.id);
        let cap = &self.shared.typing;
        if self.speech_refused(conv).is_some() || !self.typing.pass(conv, typing, now, || cap.try_take(account, now)) {
            return Ok(());
        }
        if let Some(key) = self.keys_of.get(&conv) {
            self.shared.hub.typing(conv, key, &self.account, typing, true);
        }
        Ok(())
    }

    /// Moves the user's read marker in `conversation` forward to `seq` (at most the conversation's latest): the
    /// hub passes it on at once, the writer stores it with its next commit. A marker that would not move forward
    /// changes nothing and goes nowhere.
    pub(super) async fn mark_read(&mut self, conversation: Conversation, seq: u64) -> Result<(), SessionEnd> {
        let Some(&conv) = self.by_view.get(&conversation) else {
            self.error(ErrorCode::NotMember, format!("you are not in {conversation}"), None);
            return Ok(());
        };
        let seq = seq.min(self.shared.hub.latest(conv));
        let account = self.account.id;
        // The writer's pending marker first: read after the store's, it could be saved in between and seen in
        // neither.
        let pending = self.shared.writer.pending_read_markers(|who, at| who.id == account && at == conv);
        let stored = self.read(move |db| db.read_marker(account, conv)).await?;
        let current = pending.iter().map(|(_, _, seq)| *seq).fold(stored, u64::max);
        if seq <= current {
            return Ok(());
        }
        self.shared.writer.advance_read_marker(&self.account, conv, seq);
        if let Some(key) = self.keys_of.get(&conv) {
            self.shared.hub.read_marker_moved(conv, key, &self.account, seq, true);
        }
        Ok(())
    }

    /// After `Welcome`, and again when the queue dropped a marker or an away message: the user's own away message
    /// when it has one, then its own read marker in each of its conversations and its direct peers' markers.
    pub(in crate::session) async fn send_own_awareness(&mut self) -> Result<(), SessionEnd> {
        if self.version < palomar_proto::AWARENESS_VERSION {
            return Ok(());
        }
        let account = self.account.id;
        let directs: HashSet<ConvId> =
            self.keys_of.iter().filter(|(_, key)| matches!(key, ConvKey::Direct(..))).map(|(conv, _)| *conv).collect();
        let pending = self.shared.writer.pending_read_markers(|who, conv| who.id == account || directs.contains(&conv));
        let (away, stored) = self.read(move |db| Ok((db.away_of(account)?, db.read_markers_of(account)?))).await?;
        if let Some(message) = away {
            self.out.queue(&ServerMsg::Away { nick: self.account.nick.clone(), message: Some(message) });
        }
        let markers = highest(stored.into_iter().chain(pending))
            .into_iter()
            .filter_map(|(conv, nick, seq)| self.marker(conv, nick, seq))
            .collect();
        self.queue_read_markers(markers).await
    }

    /// The read markers of room `conv` that wait for the writer: taken before the store's are read, so that one
    /// saved in between is seen in either (see [`Session::queue_room_markers`]).
    pub(in crate::session) fn pending_read_markers_in(&self, conv: ConvId) -> Vec<(Nick, u64)> {
        let pending = self.shared.writer.pending_read_markers(|_, at| at == conv);
        pending.into_iter().map(|(_, nick, seq)| (nick, seq)).collect()
    }

    /// What goes before a room's `Users` (version 6): an `Away` for each of `online` who is away, so that a client
    /// writing out the member list as it arrives already knows who is away. With `restated` (member lists sent
    /// in place of dropped items), every one of `online` not in it yet is told, `None` for those not away: the
    /// client may have missed someone coming back. Each once, however many of the user's rooms they are in.
    pub(in crate::session) fn queue_room_aways(
        &mut self,
        online: &[Nick],
        away: Vec<(Nick, String)>,
        restated: Option<&mut HashSet<Nick>>,
    ) {
        if self.version < palomar_proto::AWARENESS_VERSION {
            return;
        }
        let mut away: BTreeMap<Nick, String> =
            away.into_iter().filter(|(nick, _)| online.binary_search(nick).is_ok()).collect();
        match restated {
            None => {
                for (nick, message) in away {
                    self.out.queue(&ServerMsg::Away { nick, message: Some(message) });
                }
            }
            Some(restated) => {
                for nick in online.iter().filter(|nick| restated.insert((*nick).clone())) {
                    self.out.queue(&ServerMsg::Away { nick: nick.clone(), message: away.remove(nick) });
                }
            }
        }
    }

    /// What goes after a room's `Users` (version 6): the read markers of its members (`markers`: the store's and
    /// the writer's pending ones, which may name a member twice).
    pub(in crate::session) fn queue_room_markers(&mut self, conv: ConvId, markers: Vec<(Nick, u64)>) {
        if self.version < palomar_proto::AWARENESS_VERSION {
            return;
        }
        let markers: Vec<ReadMarker> = highest(markers.into_iter().map(|(nick, seq)| (conv, nick, seq)))
            .into_iter()
            .filter_map(|(conv, nick, seq)| self.marker(conv, nick, seq))
            .collect();
        for page in markers.chunks(READ_MARKERS_PAGE) {
            self.out.queue(&ServerMsg::ReadMarkers { markers: page.to_vec() });
        }
    }

    /// The marker of `nick` in `conv` as the client names it; `None` for a conversation it does not know.
    fn marker(&self, conv: ConvId, nick: Nick, seq: u64) -> Option<ReadMarker> {
        Some(ReadMarker { conversation: self.view(self.keys_of.get(&conv)?), nick, seq })
    }

    /// Queues `markers` in pages of at most [`READ_MARKERS_PAGE`], writing out as it goes.
    async fn queue_read_markers(&mut self, markers: Vec<ReadMarker>) -> Result<(), SessionEnd> {
        for page in markers.chunks(READ_MARKERS_PAGE) {
            self.out.queue(&ServerMsg::ReadMarkers { markers: page.to_vec() });
            if self.out.pending_len() >= OUT_BUDGET {
                self.flush().await?;
            }
        }
        Ok(())
    }
}

/// The highest of `markers` for each conversation and nickname, in that order.
fn highest(markers: impl Iterator<Item = (ConvId, Nick, u64)>) -> Vec<(ConvId, Nick, u64)> {
    let mut highest: BTreeMap<(ConvId, Nick), u64> = BTreeMap::new();
    for (conv, nick, seq) in markers {
        let entry = highest.entry((conv, nick)).or_insert(seq);
        *entry = (*entry).max(seq);
    }
    highest.into_iter().map(|((conv, nick), seq)| (conv, nick, seq)).collect()
}
