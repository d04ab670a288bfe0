//! Messages on their way to the client: live deliveries batched into frames, and what the live queue dropped
//! read back from the log first, so that each conversation is sent in seq order without a gap.

use std::borrow::Cow;
use std::sync::Arc;

use palomar_proto::{ServerMsg, messages_payload};
use palomar_store::{ConvId, ConvKey, StoredMessage};
use tokio::sync::mpsc;

use super::{FRAME_BUDGET, NEW_DIRECT_SENT, OUT_BUDGET, PAGE_BYTES, Session, SessionEnd};
use crate::hub::{Live, Published};

/// Messages read from the log per frame when catching up.
const CATCH_UP_PAGE: u32 = 256;
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
        let reader = self.account.id;
        let encoded: Vec<Cow<'_, [u8]>> = messages
            .iter()
            .map(|message| match message {
                Outgoing::Live(published) => published.encoded_for(reader),
                Outgoing::Encoded(bytes) => Cow::Borrowed(bytes.as_slice()),
            })
            .collect();
        let mut frame: Vec<&[u8]> = Vec::with_capacity(encoded.len());
        let mut bytes = 0;
        for message in &encoded {
            if !frame.is_empty() && bytes + message.len() > FRAME_BUDGET {
                self.out.queue_payload(&messages_payload(&frame));
                frame.clear();
                bytes = 0;
            }
            bytes += message.len();
            frame.push(message);
        }
        if !frame.is_empty() {
            self.out.queue_payload(&messages_payload(&frame));
        }
    }

    async fn deliver_message(
        &mut self,
        published: Arc<Published>,
        batch: &mut Vec<Outgoing>,
    ) -> Result<(), SessionEnd> {
        let (conv, message) = (published.conv, &published.message);
        let sent = match self.sent.get(&conv) {
            Some(&sent) => sent,
            None if matches!(message.key, ConvKey::Room(_)) => {
                // Queued before this session left the room.
                return Ok(());
            }
            None => {
                // A direct conversation opened by the other side or by another session of this user.
                self.track_conversation(conv, message.key.clone());
                self.sent.insert(conv, NEW_DIRECT_SENT);
                NEW_DIRECT_SENT
            }
        };
        if message.seq <= sent {
            return Ok(());
        }
        if message.seq > sent + 1 {
            self.flush_batch(batch);
            self.send_backlog(conv, message.seq - 1).await?;
        }
        self.sent.insert(conv, message.seq);
        batch.push(Outgoing::Live(published));
        Ok(())
    }

    pub(super) async fn catch_up_all(&mut self) -> Result<(), SessionEnd> {
        let convs: Vec<ConvId> = self.sent.keys().copied().collect();
        for conv in convs {
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
        let mut sent = self.sent.get(&conv).copied().unwrap_or(0);
        if sent >= upto {
            return Ok(());
        }
        let Some(row) = self.read(move |db| db.conversation_by_id(conv)).await? else {
            return Ok(());
        };
        if sent + 1 < row.first_seq {
            self.out.queue(&ServerMsg::Gap { conversation: self.view(&row.key), complete_from: row.first_seq });
            sent = row.first_seq - 1;
            self.sent.insert(conv, sent);
        }
        let row = Arc::new(row);
        let reader = self.account.id;
        while sent < upto {
            let limit = u32::try_from(upto - sent).unwrap_or(u32::MAX).min(CATCH_UP_PAGE);
            let page_row = row.clone();
            let page =
                self.read(move |db| Ok(oldest_within(db.messages_after(&page_row, sent, limit)?, PAGE_BYTES))).await?;
            let Some(last) = page.last() else { break };
            sent = last.seq;
            self.sent.insert(conv, sent);
            let messages =
                page.iter().map(|m| Outgoing::Encoded(palomar_proto::encode(&m.for_reader(reader)))).collect();
            self.queue_messages(messages);
            self.flush().await?;
        }
        Ok(())
    }
}

/// Keeps the oldest messages of `page` (in seq order) whose texts fit in `budget` bytes, at least one.
fn oldest_within(mut page: Vec<StoredMessage>, budget: usize) -> Vec<StoredMessage> {
    let mut bytes = 0;
    let keep = page
        .iter()
        .take_while(|m| {
            bytes += m.text.len();
            bytes <= budget
        })
        .count()
        .max(1);
    page.truncate(keep);
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use palomar_proto::{MessageId, Nick, RoomName};

    fn page(sizes: &[usize]) -> Vec<StoredMessage> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| StoredMessage {
                key: ConvKey::Room(RoomName::lobby()),
                seq: i as u64 + 1,
                id: MessageId([0; 16]),
                from: Nick::parse("ana").expect("valid"),
                ts: 0,
                text: "x".repeat(size),
            })
            .collect()
    }

    fn seqs(page: &[StoredMessage]) -> Vec<u64> {
        page.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn a_read_back_page_keeps_the_oldest_that_fit_in_its_bytes_and_never_nothing() {
        assert_eq!(seqs(&oldest_within(page(&[4, 4, 4, 4]), 8)), [1, 2]);
        assert_eq!(seqs(&oldest_within(page(&[100, 4]), 8)), [1], "one message, however long");
        assert!(oldest_within(Vec::new(), 8).is_empty());
    }
}
