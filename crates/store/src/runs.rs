//! Runs: the index from a conversation's seqs to the rows of its messages, kept as short arrays.
//!
//! One index entry per message was the store's largest cost when messages arrive in many conversations at once:
//! every commit touched a page of the index for each of them. A run holds the row ids of up to [`RUN_MAX`]
//! consecutive seqs of one conversation in one small blob, so indexing a batch of messages writes one row per
//! conversation instead of one per message. This module only shapes runs; `db.rs` stores them.

/// Most row ids in one run. 64 ids make a 512-byte blob, which SQLite keeps inside its B-tree page instead of
/// spilling to overflow pages.
pub const RUN_MAX: usize = 64;

const ID_BYTES: usize = std::mem::size_of::<i64>();

/// The row ids of seqs `first_seq`, `first_seq + 1`, … of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub first_seq: u64,
    pub ids: Vec<i64>,
}

impl Run {
    /// Reads a run as stored: the ids as little-endian 64-bit integers, one after the other.
    pub fn decode(first_seq: u64, blob: &[u8]) -> Result<Run, String> {
        if blob.is_empty() || !blob.len().is_multiple_of(ID_BYTES) {
            return Err(format!("a run of {} bytes at seq {first_seq}", blob.len()));
        }
        let ids = blob
            .chunks_exact(ID_BYTES)
            .map(|bytes| i64::from_le_bytes(<[u8; ID_BYTES]>::try_from(bytes).unwrap_or_default()))
            .collect();
        Ok(Run { first_seq, ids })
    }

    pub fn encode(&self) -> Vec<u8> {
        self.ids.iter().flat_map(|id| id.to_le_bytes()).collect()
    }

    /// Each seq with its row id, in seq order.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = (u64, i64)> + '_ {
        self.ids.iter().enumerate().map(|(offset, &id)| (self.first_seq + offset as u64, id))
    }

    fn next_seq(&self) -> u64 {
        self.first_seq + self.ids.len() as u64
    }

    /// The part of the run after `upto`, if any.
    pub fn after(&self, upto: u64) -> Option<Run> {
        let skip = usize::try_from(upto.saturating_add(1).saturating_sub(self.first_seq)).unwrap_or(usize::MAX);
        (skip < self.ids.len()).then(|| Run { first_seq: self.first_seq.max(upto + 1), ids: self.ids[skip..].to_vec() })
    }
}

/// The runs to write so that `entries` (seqs in ascending order, with their row ids) are indexed after `last`,
/// the conversation's newest run: `last` topped up first when the entries continue it, then new runs of at most
/// [`RUN_MAX`]. A gap in the seqs starts a new run, so a run never claims a seq it does not hold.
pub fn extend(last: Option<Run>, entries: &[(u64, i64)]) -> Vec<Run> {
    let mut runs: Vec<Run> = last.into_iter().collect();
    let mut changed_from = runs.len();
    for &(seq, id) in entries {
        match runs.last_mut() {
            Some(run) if run.next_seq() == seq && run.ids.len() < RUN_MAX => {
                run.ids.push(id);
                changed_from = changed_from.min(runs.len() - 1);
            }
            _ => runs.push(Run { first_seq: seq, ids: vec![id] }),
        }
    }
    runs.split_off(changed_from.min(runs.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(seqs: std::ops::RangeInclusive<u64>) -> Vec<(u64, i64)> {
        seqs.map(|seq| (seq, seq as i64 * 10)).collect()
    }

    #[test]
    fn a_run_survives_encoding() {
        let run = Run { first_seq: 7, ids: vec![1, -2, i64::MAX] };
        assert_eq!(Run::decode(7, &run.encode()), Ok(run));
        assert!(Run::decode(1, &[0; 7]).is_err());
        assert!(Run::decode(1, &[]).is_err());
    }

    #[test]
    fn new_entries_top_up_the_last_run_then_start_full_ones() {
        let last = Run { first_seq: 1, ids: vec![10; RUN_MAX - 2] };
        let runs = extend(Some(last), &entries(RUN_MAX as u64 - 1..=2 * RUN_MAX as u64 + 5));
        let shape: Vec<(u64, usize)> = runs.iter().map(|run| (run.first_seq, run.ids.len())).collect();
        assert_eq!(shape, [(1, RUN_MAX), (RUN_MAX as u64 + 1, RUN_MAX), (2 * RUN_MAX as u64 + 1, 5)]);
        assert_eq!(runs[2].entries().next(), Some((2 * RUN_MAX as u64 + 1, (2 * RUN_MAX as i64 + 1) * 10)));
    }

    #[test]
    fn a_full_last_run_or_a_gap_is_left_alone() {
        let full = Run { first_seq: 1, ids: vec![10; RUN_MAX] };
        let runs = extend(Some(full), &entries(RUN_MAX as u64 + 1..=RUN_MAX as u64 + 1));
        assert_eq!(runs, [Run { first_seq: RUN_MAX as u64 + 1, ids: vec![(RUN_MAX as i64 + 1) * 10] }]);
        let short = Run { first_seq: 1, ids: vec![10] };
        let runs = extend(Some(short), &[(5, 50), (6, 60), (9, 90)]);
        assert_eq!(runs, [Run { first_seq: 5, ids: vec![50, 60] }, Run { first_seq: 9, ids: vec![90] }]);
        assert!(extend(None, &[]).is_empty());
    }

    #[test]
    fn retention_keeps_the_part_after_the_cut() {
        let run = Run { first_seq: 10, ids: vec![1, 2, 3, 4] };
        assert_eq!(run.after(11), Some(Run { first_seq: 12, ids: vec![3, 4] }));
        assert_eq!(run.after(5), Some(run.clone()));
        assert_eq!(run.after(13), None);
    }
}
