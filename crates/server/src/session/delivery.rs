//! What the client has been sent, per conversation, and so what each message that reaches the session needs:
//! to be sent, to be skipped, or to wait for the ones the live queue dropped before it, read back from the log.
//! No I/O and no clock: the session asks, reads the store, writes the socket, and says what went out.

use std::collections::HashMap;

use palomar_store::{ConvId, StoredMessage};

/// Messages read from the log per page when reading back.
const READ_BACK_PAGE: u32 = 256;
/// Where a session starts a direct conversation opened after it logged in: all of it is new to its client,
/// even what another session of the user has acknowledged already.
const NEW_DIRECT_SENT: u64 = 0;

/// Per conversation the session follows, the highest seq sent to its client and the highest it acknowledged.
///
/// **Invariant:** what is sent of a conversation is its seqs in ascending order without a gap, from where the
/// session started it (or from the oldest the log still has, after a `Gap`): a live message is sent only right
/// after the one before it, and whatever the queue dropped in between is read back first.
#[derive(Debug, Default)]
pub(super) struct Delivery {
    /// Highest seq sent: live messages at or below it are skipped.
    sent: HashMap<ConvId, u64>,
    /// Highest seq the client acknowledged, so that repeated acks are not written again.
    acked: HashMap<ConvId, u64>,
}

/// What to do with a message that came live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LiveStep {
    /// The client has it already (read back from the log), or the session no longer follows the conversation
    /// (the message was queued before the session left the room).
    Skip,
    /// It is the next one: send it.
    Send,
    /// Messages before it never came (the live queue had no room): read the log back up to `upto`, then send it.
    ReadBackFirst { upto: u64 },
}

/// The next page to read from a conversation's log: at most `limit` messages with seqs after `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageRequest {
    pub after: u64,
    pub limit: u32,
}

impl Delivery {
    /// Follows `conv`, whose messages up to `sent_after` the client has or is not to be sent.
    pub fn follow(&mut self, conv: ConvId, sent_after: u64) {
        self.sent.insert(conv, sent_after);
    }

    /// Follows a direct conversation met after login from its first message, unless it is followed already.
    pub fn follow_new_direct(&mut self, conv: ConvId) {
        self.sent.entry(conv).or_insert(NEW_DIRECT_SENT);
    }

    pub fn unfollow(&mut self, conv: ConvId) {
        self.sent.remove(&conv);
        self.acked.remove(&conv);
    }

    /// The highest seq of `conv` sent to the client; `None` when the session does not follow it.
    pub fn sent(&self, conv: ConvId) -> Option<u64> {
        self.sent.get(&conv).copied()
    }

    pub fn followed(&self) -> Vec<ConvId> {
        self.sent.keys().copied().collect()
    }

    /// What to do with the message `seq` of `conv`, come live.
    pub fn live(&self, conv: ConvId, seq: u64) -> LiveStep {
        match self.sent(conv) {
            None => LiveStep::Skip,
            Some(sent) if seq <= sent => LiveStep::Skip,
            Some(sent) if seq == sent + 1 => LiveStep::Send,
            Some(_) => LiveStep::ReadBackFirst { upto: seq - 1 },
        }
    }

    /// Notes that the live message `seq` of `conv` was sent, after what [`Delivery::live`] asked for was done.
    pub fn sent_live(&mut self, conv: ConvId, seq: u64) {
        if let Some(sent) = self.sent.get_mut(&conv) {
            *sent = (*sent).max(seq);
        }
    }

    /// When retention removed messages the client has not had, moves past them and returns the oldest seq the
    /// log still has, for the `Gap` that tells the client so.
    pub fn skip_removed(&mut self, conv: ConvId, first_seq: u64) -> Option<u64> {
        let sent = self.sent.get_mut(&conv)?;
        if *sent + 1 >= first_seq {
            return None;
        }
        *sent = first_seq - 1;
        Some(first_seq)
    }

    /// The next page to read back for the client to have `conv` up to `upto`; `None` once it has.
    pub fn next_page(&self, conv: ConvId, upto: u64) -> Option<PageRequest> {
        let sent = self.sent(conv)?;
        if sent >= upto {
            return None;
        }
        let limit = u32::try_from(upto - sent).unwrap_or(u32::MAX).min(READ_BACK_PAGE);
        Some(PageRequest { after: sent, limit })
    }

    /// Of a page read back from the log of `conv` (in seq order), the messages to send, noted as sent: those
    /// the client does not have yet.
    pub fn take_page(&mut self, conv: ConvId, mut page: Vec<StoredMessage>) -> Vec<StoredMessage> {
        let Some(sent) = self.sent.get_mut(&conv) else { return Vec::new() };
        page.retain(|message| {
            let new = message.seq > *sent;
            if new {
                *sent = message.seq;
            }
            new
        });
        page
    }

    /// The client acknowledged `conv` up to `seq`: returns the position to save, if it is further than the one
    /// saved before. A client cannot acknowledge what it was not sent.
    pub fn ack(&mut self, conv: ConvId, seq: u64) -> Option<u64> {
        let seq = seq.min(self.sent(conv).unwrap_or(0));
        if seq <= self.acked.get(&conv).copied().unwrap_or(0) {
            return None;
        }
        self.acked.insert(conv, seq);
        Some(seq)
    }
}

/// Keeps the oldest messages of `page` (in seq order) whose texts fit in `budget` bytes, at least one.
pub(super) fn oldest_within(mut page: Vec<StoredMessage>, budget: usize) -> Vec<StoredMessage> {
    let keep = fitting(page.iter().map(|m| m.text.as_str()), budget);
    page.truncate(keep);
    page
}

/// How many of `texts`, from the first, fit in `budget` bytes together: at least one, so that a page always
/// moves on, however long its first text.
pub(super) fn fitting<'a>(texts: impl Iterator<Item = &'a str>, budget: usize) -> usize {
    let mut bytes = 0;
    texts
        .take_while(|text| {
            bytes += text.len();
            bytes <= budget
        })
        .count()
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palomar_proto::{MessageId, Nick, RoomName};
    use palomar_store::ConvKey;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn message(seq: u64, text_len: usize) -> StoredMessage {
        StoredMessage {
            key: ConvKey::Room(RoomName::lobby()),
            seq,
            id: MessageId([0; 16]),
            from: Nick::parse("ana").expect("valid"),
            ts: 0,
            text: "x".repeat(text_len),
            kind: palomar_proto::MessageKind::Text,
            revision: palomar_proto::Revision::Original,
        }
    }

    fn seqs(page: &[StoredMessage]) -> Vec<u64> {
        page.iter().map(|m| m.seq).collect()
    }

    const ROOM: ConvId = ConvId(1);

    #[test]
    fn a_read_back_page_keeps_the_oldest_that_fit_in_its_bytes_and_never_nothing() {
        let page = |sizes: &[usize]| sizes.iter().enumerate().map(|(i, &size)| message(i as u64 + 1, size)).collect();
        assert_eq!(seqs(&oldest_within(page(&[4, 4, 4, 4]), 8)), [1, 2]);
        assert_eq!(seqs(&oldest_within(page(&[100, 4]), 8)), [1], "one message, however long");
        assert!(oldest_within(Vec::new(), 8).is_empty());
    }

    #[test]
    fn a_live_message_is_sent_next_skipped_when_sent_or_read_back_after_a_gap() {
        let mut delivery = Delivery::default();
        assert_eq!(delivery.live(ROOM, 1), LiveStep::Skip, "a conversation the session does not follow");
        delivery.follow(ROOM, 4);
        assert_eq!(delivery.live(ROOM, 3), LiveStep::Skip);
        assert_eq!(delivery.live(ROOM, 4), LiveStep::Skip);
        assert_eq!(delivery.live(ROOM, 5), LiveStep::Send);
        assert_eq!(delivery.live(ROOM, 9), LiveStep::ReadBackFirst { upto: 8 });
        assert_eq!(delivery.next_page(ROOM, 8), Some(PageRequest { after: 4, limit: 4 }));
        assert_eq!(delivery.next_page(ROOM, 10_000), Some(PageRequest { after: 4, limit: READ_BACK_PAGE }));
        assert_eq!(seqs(&delivery.take_page(ROOM, (3..=6).map(|seq| message(seq, 1)).collect())), [5, 6]);
        assert_eq!(delivery.next_page(ROOM, 8), Some(PageRequest { after: 6, limit: 2 }));
        assert_eq!(seqs(&delivery.take_page(ROOM, (7..=8).map(|seq| message(seq, 1)).collect())), [7, 8]);
        assert_eq!(delivery.next_page(ROOM, 8), None);
        delivery.sent_live(ROOM, 9);
        assert_eq!(delivery.sent(ROOM), Some(9));
        assert_eq!(delivery.live(ROOM, 9), LiveStep::Skip);
        delivery.unfollow(ROOM);
        assert_eq!(delivery.live(ROOM, 10), LiveStep::Skip, "queued before the session left the room");
        assert_eq!(delivery.next_page(ROOM, 20), None);
    }

    #[test]
    fn messages_removed_by_retention_are_skipped_once_with_the_oldest_kept() {
        let mut delivery = Delivery::default();
        delivery.follow(ROOM, 2);
        assert_eq!(delivery.skip_removed(ROOM, 3), None, "nothing the client lacks was removed");
        assert_eq!(delivery.skip_removed(ROOM, 10), Some(10));
        assert_eq!(delivery.sent(ROOM), Some(9));
        assert_eq!(delivery.skip_removed(ROOM, 10), None);
        assert_eq!(delivery.skip_removed(ConvId(2), 10), None, "a conversation the session does not follow");
    }

    #[test]
    fn a_direct_conversation_met_after_login_starts_at_its_first_message_once() {
        let mut delivery = Delivery::default();
        delivery.follow_new_direct(ROOM);
        assert_eq!(delivery.live(ROOM, 1), LiveStep::Send);
        delivery.sent_live(ROOM, 1);
        delivery.follow_new_direct(ROOM);
        assert_eq!(delivery.sent(ROOM), Some(1), "already followed: where it is stays");
    }

    #[test]
    fn acks_are_saved_forward_only_and_never_past_what_was_sent() {
        let mut delivery = Delivery::default();
        assert_eq!(delivery.ack(ROOM, 3), None, "a conversation the session does not follow");
        delivery.follow(ROOM, 5);
        assert_eq!(delivery.ack(ROOM, 3), Some(3));
        assert_eq!(delivery.ack(ROOM, 3), None);
        assert_eq!(delivery.ack(ROOM, 2), None);
        assert_eq!(delivery.ack(ROOM, 99), Some(5));
        delivery.unfollow(ROOM);
        delivery.follow(ROOM, 5);
        assert_eq!(delivery.ack(ROOM, 4), Some(4), "a conversation followed again starts afresh");
    }

    /// One step of a session's life, as the property test draws it.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        /// The next message of a conversation is committed; it reaches the live queue unless drawn as one the
        /// queue had no room for.
        Publish(usize),
        /// The session takes the oldest item of its live queue.
        TakeLive,
        /// The session reads a conversation back up to its latest committed seq (missed messages, a join).
        CatchUp(usize),
    }

    fn event(conversations: usize) -> impl Strategy<Value = Event> {
        prop_oneof![
            (0..conversations).prop_map(Event::Publish),
            Just(Event::TakeLive),
            (0..conversations).prop_map(Event::CatchUp),
        ]
    }

    /// Drives a [`Delivery`] as the session does, answering its reads from complete logs, and records what it
    /// sends per conversation.
    struct Run {
        delivery: Delivery,
        /// Per conversation, whether each seq (index + 1) reaches the live queue.
        live: Vec<Vec<bool>>,
        committed: Vec<u64>,
        queue: VecDeque<(usize, u64)>,
        /// Most messages a read returns, whatever was asked for, as when a page's bytes run out.
        page_cap: u32,
        sent: Vec<Vec<u64>>,
    }

    impl Run {
        fn new(live: Vec<Vec<bool>>, page_cap: u32) -> Run {
            let mut delivery = Delivery::default();
            for conv in 0..live.len() {
                delivery.follow(conv_id(conv), 0);
            }
            let conversations = live.len();
            Run {
                delivery,
                live,
                committed: vec![0; conversations],
                queue: VecDeque::new(),
                page_cap,
                sent: vec![Vec::new(); conversations],
            }
        }

        fn apply(&mut self, event: Event) {
            match event {
                Event::Publish(conv) => {
                    let seq = self.committed[conv] + 1;
                    let Some(&live) = self.live[conv].get(seq as usize - 1) else { return };
                    self.committed[conv] = seq;
                    if live {
                        self.queue.push_back((conv, seq));
                    }
                }
                Event::TakeLive => {
                    if let Some((conv, seq)) = self.queue.pop_front() {
                        self.take_live(conv, seq);
                    }
                }
                Event::CatchUp(conv) => self.read_back(conv, self.committed[conv]),
            }
        }

        fn take_live(&mut self, conv: usize, seq: u64) {
            match self.delivery.live(conv_id(conv), seq) {
                LiveStep::Skip => return,
                LiveStep::Send => {}
                LiveStep::ReadBackFirst { upto } => self.read_back(conv, upto),
            }
            self.delivery.sent_live(conv_id(conv), seq);
            self.sent[conv].push(seq);
        }

        fn read_back(&mut self, conv: usize, upto: u64) {
            let id = conv_id(conv);
            assert_eq!(self.delivery.skip_removed(id, 1), None, "nothing was removed");
            let log_len = self.live[conv].len() as u64;
            while let Some(PageRequest { after, limit }) = self.delivery.next_page(id, upto) {
                let page = (after + 1..=log_len).take(limit.min(self.page_cap) as usize).map(|s| message(s, 1));
                let page = self.delivery.take_page(id, page.collect());
                assert!(!page.is_empty(), "a read back that reads nothing new would never end");
                self.sent[conv].extend(seqs(&page));
            }
        }

        fn assert_gap_free(&self) {
            for (conv, sent) in self.sent.iter().enumerate() {
                let expected: Vec<u64> = (1..=sent.len() as u64).collect();
                assert_eq!(sent, &expected, "conversation {conv}");
                assert_eq!(self.delivery.sent(conv_id(conv)), Some(sent.len() as u64));
            }
        }
    }

    fn conv_id(conv: usize) -> ConvId {
        ConvId(conv as i64 + 1)
    }

    proptest! {
        #[test]
        fn any_interleaving_of_live_and_read_back_sends_each_conversation_gap_free_in_order(
            (live, events) in (1usize..=4).prop_flat_map(|conversations| {
                (vec(vec(any::<bool>(), 0..=40), conversations), vec(event(conversations), 0..300))
            }),
            page_cap in 1u32..=8,
        ) {
            let mut run = Run::new(live, page_cap);
            for event in events {
                run.apply(event);
                run.assert_gap_free();
            }
            while let Some((conv, seq)) = run.queue.pop_front() {
                run.take_live(conv, seq);
            }
            run.assert_gap_free();
            for conv in 0..run.live.len() {
                let log_len = run.live[conv].len() as u64;
                run.committed[conv] = log_len;
                run.read_back(conv, log_len);
                prop_assert_eq!(run.sent[conv].len() as u64, log_len, "caught up with conversation {}", conv);
            }
            run.assert_gap_free();
        }
    }
}
