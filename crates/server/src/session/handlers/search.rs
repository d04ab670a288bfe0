//! `Search`: the messages of the user's conversations that have every word of a query, newest first, a page at
//! a time (the store's full-text index finds them; membership decides which conversations it looks in).

use palomar_proto::{
    Conversation, ErrorCode, MAX_SEARCH_PAGE, MAX_SEARCH_POSITION_BYTES, SEARCH_VERSION, ServerMsg, search_words,
};
use palomar_store::{SearchHit, SearchRequest, StoreError};

use crate::session::delivery::fitting;
use crate::session::{PAGE_BYTES, Session, SessionEnd};

/// What a client asks for: its words as typed, where, from which position, how many.
pub(super) struct Asked {
    pub(super) query: String,
    pub(super) conversation: Option<Conversation>,
    pub(super) before: Option<String>,
    pub(super) limit: u32,
}

impl Session {
    /// One page of hits, written out before the next request is read, as a scrollback page is.
    pub(super) async fn search(&mut self, asked: Asked) -> Result<(), SessionEnd> {
        let Asked { query, conversation, before, limit } = asked;
        if self.version < SEARCH_VERSION {
            self.error(ErrorCode::Protocol, format!("search needs protocol version {SEARCH_VERSION}"), None);
            return Ok(());
        }
        let words = match search_words(&query) {
            Ok(words) => words,
            Err(why) => {
                self.error(ErrorCode::InvalidText, why.to_string(), None);
                return Ok(());
            }
        };
        let within = match &conversation {
            None => None,
            Some(wanted) => match self.by_view.get(wanted) {
                Some(&conv) => Some(conv),
                None => {
                    self.error(ErrorCode::NotMember, format!("you are not in {wanted}"), None);
                    return Ok(());
                }
            },
        };
        if before.as_ref().is_some_and(|position| position.len() > MAX_SEARCH_POSITION_BYTES) {
            self.error(ErrorCode::Protocol, "not a search position this server gave", None);
            return Ok(());
        }
        let limit = limit.clamp(1, MAX_SEARCH_PAGE);
        // The store indexes new messages in batches: a new search first has it index those still waiting, so
        // that it finds everything stored before it. Later pages are older than the first. Should the store
        // refuse, the search still finds all but the newest.
        if before.is_none()
            && let Err(error) = self.shared.writer.index_for_search().await
        {
            tracing::warn!(%error, "a search goes on without the newest messages indexed");
        }
        let account = self.account.id;
        let found = self
            .read(move |db| {
                let request = SearchRequest { words: &words, within, before: before.as_deref(), limit };
                match db.search(account, &request) {
                    Ok(page) => Ok(Some(page)),
                    Err(StoreError::UnknownSearchPosition(_)) => Ok(None),
                    Err(error) => Err(error),
                }
            })
            .await?;
        let Some(page) = found else {
            self.error(ErrorCode::Protocol, "not a search position this server gave", None);
            return Ok(());
        };
        let (hits, cut) = newest_within(page.hits, PAGE_BYTES);
        let next = if cut { hits.last().map(|hit| hit.position.clone()) } else { page.next };
        let hits = hits.iter().map(|hit| hit.message.for_reader(account)).collect();
        self.out.queue(&ServerMsg::Found { query, conversation, hits, next });
        self.flush().await
    }
}

/// The first `hits` (newest first) whose texts fit in `budget` bytes, at least one; and whether any were cut.
fn newest_within(mut hits: Vec<SearchHit>, budget: usize) -> (Vec<SearchHit>, bool) {
    let keep = fitting(hits.iter().map(|hit| hit.message.text.as_str()), budget);
    let cut = hits.len() > keep;
    hits.truncate(keep);
    (hits, cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palomar_proto::{MessageId, MessageKind, Nick, Revision, RoomName};
    use palomar_store::{ConvKey, StoredMessage};

    fn hits(sizes: &[usize]) -> Vec<SearchHit> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| SearchHit {
                message: StoredMessage {
                    key: ConvKey::Room(RoomName::lobby()),
                    seq: 100 - i as u64,
                    id: MessageId([0; 16]),
                    from: Nick::parse("ana").expect("valid"),
                    ts: 0,
                    text: "x".repeat(size),
                    kind: MessageKind::Text,
                    revision: Revision::Original,
                },
                position: format!("r{i}"),
            })
            .collect()
    }

    fn positions(hits: &[SearchHit]) -> Vec<&str> {
        hits.iter().map(|hit| hit.position.as_str()).collect()
    }

    #[test]
    fn a_page_of_hits_keeps_the_newest_that_fit_in_its_bytes_and_never_nothing() {
        let (kept, cut) = newest_within(hits(&[4, 4, 4]), 8);
        assert_eq!((positions(&kept), cut), (vec!["r0", "r1"], true));
        let (kept, cut) = newest_within(hits(&[100, 1]), 8);
        assert_eq!((positions(&kept), cut), (vec!["r0"], true), "one hit, however long");
        let (kept, cut) = newest_within(hits(&[1, 1]), 8);
        assert_eq!((positions(&kept), cut), (vec!["r0", "r1"], false));
        assert_eq!(newest_within(Vec::new(), 8).0.len(), 0);
    }
}
