//! The shape of a run: which client is in which room, who sends, how much and how fast, and the text of
//! every message, which carries what a receiver needs to check it (run, sender, counter, send time).

use std::time::Duration;

/// Smallest text size: the stamp at the start of every text takes up to 47 bytes.
pub const MIN_TEXT_BYTES: usize = 48;
/// Largest text a server accepts.
pub const MAX_TEXT_BYTES: usize = 8192;

/// When the senders stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    After(Duration),
    /// After this many messages from each sender.
    Messages(u64),
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub clients: usize,
    pub rooms: usize,
    pub senders: usize,
    pub text_bytes: usize,
    /// Messages a sender may have sent that have not yet reached every member of its room.
    pub in_flight: usize,
    /// Messages per second per sender; `None` is flat out.
    pub rate_per_sender: Option<f64>,
    pub stop: Stop,
    /// Tags this run's texts, so that messages from earlier runs in the same rooms are not counted.
    pub run_id: u64,
}

/// What a receiver reads back from a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub run_id: u64,
    pub sender: usize,
    /// 1 for a sender's first message, then one more for each.
    pub counter: u64,
    /// When it was sent, in microseconds of the run's clock.
    pub sent_us: u64,
}

impl Scenario {
    /// Checks that the numbers make a runnable scenario.
    pub fn validate(&self) -> Result<(), String> {
        if self.clients == 0 || self.rooms == 0 || self.senders == 0 || self.in_flight == 0 {
            return Err("clients, rooms, senders and in-flight must all be at least 1".into());
        }
        if self.rooms > self.clients {
            return Err(format!("{} rooms need at least as many clients (got {})", self.rooms, self.clients));
        }
        if self.senders > self.clients {
            return Err(format!("{} senders need at least as many clients (got {})", self.senders, self.clients));
        }
        if !(MIN_TEXT_BYTES..=MAX_TEXT_BYTES).contains(&self.text_bytes) {
            return Err(format!("the message size must be {MIN_TEXT_BYTES} to {MAX_TEXT_BYTES} bytes"));
        }
        if self.rate_per_sender.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
            return Err("the rate must be a positive number of messages per second".into());
        }
        match self.stop {
            Stop::After(duration) if duration.is_zero() => Err("the duration must be positive".into()),
            Stop::Messages(0) => Err("the message count must be at least 1".into()),
            _ => Ok(()),
        }
    }

    /// Client `client` is in room `client mod rooms`, so rooms fill evenly and the first `senders` clients
    /// (the senders) are spread over the rooms in turn.
    pub fn room_of(&self, client: usize) -> usize {
        client % self.rooms
    }

    pub fn members_of(&self, room: usize) -> usize {
        self.clients / self.rooms + usize::from(room < self.clients % self.rooms)
    }

    pub fn nick(&self, client: usize) -> String {
        format!("b{client}")
    }

    pub fn room_name(&self, room: usize) -> String {
        format!("bench-{room}")
    }

    /// Deliveries expected for what each sender sent: every member of its room (the sender too) gets it.
    pub fn expected_deliveries(&self, sent_by_sender: &[u64]) -> u64 {
        sent_by_sender
            .iter()
            .enumerate()
            .map(|(sender, &sent)| sent * self.members_of(self.room_of(sender)) as u64)
            .sum()
    }

    /// The text of one message: the stamp, then padding up to the message size.
    pub fn text(&self, sender: usize, counter: u64, sent_us: u64) -> String {
        let mut text = format!("{:016x} {sender} {counter} {sent_us} ", self.run_id);
        let padding = self.text_bytes.saturating_sub(text.len());
        text.extend(std::iter::repeat_n('x', padding));
        text
    }
}

/// Reads the stamp at the start of a text; `None` for a text this tool did not write.
pub fn parse_stamp(text: &str) -> Option<Stamp> {
    let mut fields = text.split(' ');
    let run_id = u64::from_str_radix(fields.next()?, 16).ok()?;
    let sender = fields.next()?.parse().ok()?;
    let counter = fields.next()?.parse().ok()?;
    let sent_us = fields.next()?.parse().ok()?;
    Some(Stamp { run_id, sender, counter, sent_us })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(clients: usize, rooms: usize, senders: usize) -> Scenario {
        Scenario {
            clients,
            rooms,
            senders,
            text_bytes: 100,
            in_flight: 1,
            rate_per_sender: None,
            stop: Stop::Messages(10),
            run_id: 0xfeed,
        }
    }

    #[test]
    fn clients_fill_the_rooms_evenly_and_senders_take_turns() {
        let ingest = scenario(200, 100, 100);
        assert!(ingest.validate().is_ok());
        assert!((0..100).all(|room| ingest.members_of(room) == 2));
        assert_eq!((0..100).map(|sender| ingest.room_of(sender)).collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
        let uneven = scenario(5, 2, 1);
        assert_eq!((uneven.members_of(0), uneven.members_of(1)), (3, 2));
        assert_eq!(uneven.expected_deliveries(&[4]), 12);
        assert!(scenario(2, 3, 1).validate().is_err());
        assert!(scenario(2, 1, 3).validate().is_err());
    }

    #[test]
    fn a_text_has_the_requested_size_and_gives_its_stamp_back() {
        let fan_out = scenario(10, 1, 2);
        let text = fan_out.text(1, 42, 123_456);
        assert_eq!(text.len(), 100);
        assert!(palomar_proto::validate_text(&text).is_ok());
        assert_eq!(parse_stamp(&text), Some(Stamp { run_id: 0xfeed, sender: 1, counter: 42, sent_us: 123_456 }));
        let longest = fan_out.text(99_999, u64::from(u32::MAX), 999_999_999_999);
        assert!(longest.len() <= fan_out.text_bytes && MIN_TEXT_BYTES >= longest.trim_end_matches('x').len());
        assert_eq!(parse_stamp("hello there"), None);
    }
}
