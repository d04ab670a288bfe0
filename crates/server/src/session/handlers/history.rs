//! `History`: a page of scrollback before a seq, bounded in count and in bytes of text.

use palomar_proto::{Conversation, ErrorCode, HistoryPage, history_payload};
use palomar_store::StoredMessage;

use crate::session::delivery::fitting;
use crate::session::{PAGE_BYTES, Session, SessionEnd};

/// Most scrollback messages per request.
const MAX_HISTORY_PAGE: u32 = 500;

impl Session {
    /// A page of scrollback: at most `limit` messages and [`PAGE_BYTES`] of text, written out before the next
    /// request is read, so a client that asks without reading holds one page at most.
    pub(super) async fn history(
        &mut self,
        conversation: Conversation,
        before: u64,
        limit: u32,
    ) -> Result<(), SessionEnd> {
        let Some(&conv) = self.by_view.get(&conversation) else {
            self.error(ErrorCode::NotMember, format!("you are not in {conversation}"), None);
            return Ok(());
        };
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        let page = self
            .read(move |db| {
                let row = db.conversation_by_id(conv)?;
                let messages = match &row {
                    Some(row) => newest_within(db.messages_before(row, before, limit)?, PAGE_BYTES),
                    None => Vec::new(),
                };
                Ok((row.map(|r| r.first_seq).unwrap_or(1), messages))
            })
            .await?;
        let (complete_from, messages) = page;
        let messages = messages.iter().map(|m| m.for_reader(self.account.id)).collect();
        let page = HistoryPage { conversation, messages, complete_from };
        self.out.queue_payload(&history_payload(&page, self.version), self.version);
        self.flush().await
    }
}

/// Keeps the newest messages of `page` (in seq order) whose texts fit in `budget` bytes, at least one.
fn newest_within(mut page: Vec<StoredMessage>, budget: usize) -> Vec<StoredMessage> {
    let keep = fitting(page.iter().rev().map(|m| m.text.as_str()), budget);
    let drop = page.len().saturating_sub(keep);
    page.drain(..drop);
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use palomar_proto::{MessageId, Nick, RoomName};
    use palomar_store::ConvKey;

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
                kind: palomar_proto::MessageKind::Text,
                revision: palomar_proto::Revision::Original,
            })
            .collect()
    }

    fn seqs(page: &[StoredMessage]) -> Vec<u64> {
        page.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn a_scrollback_page_keeps_the_newest_that_fit_in_its_bytes_and_never_nothing() {
        assert_eq!(seqs(&newest_within(page(&[4, 4, 4, 4]), 8)), [3, 4]);
        assert_eq!(seqs(&newest_within(page(&[4, 100]), 8)), [2], "one message, however long");
        assert_eq!(seqs(&newest_within(page(&[1, 1]), 8)), [1, 2]);
        assert!(newest_within(Vec::new(), 8).is_empty());
    }
}
