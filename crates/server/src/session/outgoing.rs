//! Messages on their way to the client: live deliveries batched into frames, and what the live queue dropped
//! read back from the log first, as [`Delivery`](super::delivery::Delivery) decides.

use std::borrow::Cow;
use std::sync::Arc;

use palomar_proto::{ReadMarker, ServerMsg, encode_message, messages_payload};
use palomar_store::{ConvId, ConvKey, StoredMessage};
use tokio::sync::mpsc;

use super::delivery::{LiveStep, PageRequest, oldest_within};
use super::{FRAME_BUDGET, OUT_BUDGET, PAGE_BYTES, Session, SessionEnd};
use crate::hub::{Live, Published};

/// Live deliveries gathered before they are written out.
const LIVE_BATCH: usize = 256;

/// A message waiting in a batch for its `Messages` frame.
enum Outgoing {
    /// Delivered live: in a room, its encoding is shared with the other members' sessions.
    Live(Arc<Published>),
    /// Read from the log and encoded for this reader.
    Encoded(Vec<u8>),
}

impl Session {
    /// Sends a live item and whatever else is already queued behind it, messages batched into frames.
    pub(super) async fn deliver(&mut self, first: Live, rx: &mut mpsc::Receiver<Live>) -> Result<(), SessionEnd> {
        let mut batch: Vec<Outgoing> = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(item) = next.take() {
            taken += 1;
            match item {
                Live::Message(published) => self.deliver_message(published, &mut batch).await?,
                Live::Presence { room, nick, state } => {
                    self.flush_batch(&mut batch);
                    self.out.queue(&ServerMsg::Presence { room, nick, state });
                }
                Live::Away { nick, message } => {
                    self.flush_batch(&mut batch);
                    self.queue_since_v6(&ServerMsg::Away { nick, message });
                }
                Live::Typing { key, nick, typing } => {
                    self.flush_batch(&mut batch);
                    self.queue_since_v6(&ServerMsg::Typing { conversation: self.view(&key), nick, typing });
                }
                Live::ReadMarker { key, nick, seq } => {
                    self.flush_batch(&mut batch);
                    let markers = vec![ReadMarker { conversation: self.view(&key), nick, seq }];
                    self.queue_since_v6(&ServerMsg::ReadMarkers { markers });
                }
            }
            if batch.len() >= LIVE_BATCH {
                self.flush_batch(&mut batch);
            }
            if self.out.pending_len() >= OUT_BUDGET {
                // A reader that keeps up loses nothing by a write here; one that does not is not buffered for.
                self.flush().await?;
            }
            if taken < 4 * LIVE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        self.flush_batch(&mut batch);
        Ok(())
    }

    fn flush_batch(&mut self, batch: &mut Vec<Outgoing>) {
        self.queue_messages(std::mem::take(batch));
    }

    /// Queues messages as `Messages` frames of bounded size, in order.
    fn queue_messages(&mut self, messages: Vec<Outgoing>) {
        self.shared.metrics.messages_delivered.increment(messages.len() as u64);
        let (reader, version) = (self.account.id, self.version);
        let encoded: Vec<Cow<'_, [u8]>> = messages
            .iter()
            .map(|message| match message {
                Outgoing::Live(published) => published.encoded_for(reader, version),
                Outgoing::Encoded(bytes) => Cow::Borrowed(bytes.as_slice()),
            })
            .collect();
        let mut frame: Vec<&[u8]> = Vec::with_capacity(encoded.len());
        let mut bytes = 0;
        for message in &encoded {
            if !frame.is_empty() && bytes + message.len() > FRAME_BUDGET {
                self.out.queue_payload(&messages_payload(&frame), version);
                frame.clear();
                bytes = 0;
            }
            bytes += message.len();
            frame.push(message);
        }
        if !frame.is_empty() {
            self.out.queue_payload(&messages_payload(&frame), version);
        }
    }

    async fn deliver_message(
        &mut self,
        published: Arc<Published>,
        batch: &mut Vec<Outgoing>,
    ) -> Result<(), SessionEnd> {
        let (conv, message) = (published.conv, &published.message);
        if self.delivery.sent(conv).is_none() && matches!(message.key, ConvKey::Direct(..)) {
            // A direct conversation opened by the other side or by another session of this user.
            self.track_new_direct(conv, message.key.clone());
        }
        let seq = message.seq;
        match self.delivery.live(conv, seq) {
            LiveStep::Skip => return Ok(()),
            LiveStep::Send => {}
            LiveStep::ReadBackFirst { upto } => {
                self.shared.metrics.read_backs.increment(1);
                self.flush_batch(batch);
                self.send_backlog(conv, upto).await?;
            }
        }
        self.delivery.sent_live(conv, seq);
        let stored_after_all = self.delivering(message);
        batch.push(Outgoing::Live(published));
        if stored_after_all {
            self.flush_batch(batch);
            self.flush().await?;
            return Err(SessionEnd::StoredAfterAll);
        }
        Ok(())
    }

    /// Notes a message on its way to the client, remembering this user's own (see `refuse_for_now`). True when it
    /// is the one this connection's later sends wait for, refused because the store did not say it took it, yet
    /// stored: its commit went through as the database's connection broke. The client, seeing it delivered, takes
    /// it as accepted and never sends it again.
    fn delivering(&mut self, message: &StoredMessage) -> bool {
        if message.from != self.account.nick {
            return false;
        }
        if self.own_delivered.len() >= self.shared.config.limits.max_unacknowledged_per_connection {
            self.own_delivered.pop_front();
        }
        self.own_delivered.push_back(message.id);
        self.awaiting_resend == Some(message.id)
    }

    pub(super) async fn catch_up_all(&mut self) -> Result<(), SessionEnd> {
        for conv in self.delivery.followed() {
            self.catch_up(conv).await?;
        }
        Ok(())
    }

    /// Sends what the client lacks of `conv` up to its latest committed message.
    pub(super) async fn catch_up(&mut self, conv: ConvId) -> Result<(), SessionEnd> {
        let latest = self.shared.hub.latest(conv);
        self.send_backlog(conv, latest).await
    }

    /// Sends everything from the log after what this client has, up to `upto`, a page per frame; says so
    /// explicitly when retention already removed part of it.
    async fn send_backlog(&mut self, conv: ConvId, upto: u64) -> Result<(), SessionEnd> {
        if self.delivery.next_page(conv, upto).is_none() {
            return Ok(());
        }
        let Some(row) = self.read(move |db| db.conversation_by_id(conv)).await? else {
            return Ok(());
        };
        if let Some(complete_from) = self.delivery.skip_removed(conv, row.first_seq) {
            self.out.queue(&ServerMsg::Gap { conversation: self.view(&row.key), complete_from });
        }
        let row = Arc::new(row);
        let reader = self.account.id;
        while let Some(PageRequest { after, limit }) = self.delivery.next_page(conv, upto) {
            let page_row = row.clone();
            let page =
                self.read(move |db| Ok(oldest_within(db.messages_after(&page_row, after, limit)?, PAGE_BYTES))).await?;
            let page = self.delivery.take_page(conv, page);
            if page.is_empty() {
                break;
            }
            let mut stored_after_all = false;
            for message in &page {
                stored_after_all |= self.delivering(message);
            }
            let messages =
                page.iter().map(|m| Outgoing::Encoded(encode_message(&m.for_reader(reader), self.version))).collect();
            self.queue_messages(messages);
            self.flush().await?;
            if stored_after_all {
                return Err(SessionEnd::StoredAfterAll);
            }
        }
        Ok(())
    }
}
