//! The check of one receiver's transcript against what the senders typed and saw acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use serde_json::Value;

/// What the senders did, as a receiver's transcript is checked against it.
pub(crate) struct Expected<'a> {
    /// Text of every message a sender reported queued, by id.
    pub typed: &'a HashMap<String, String>,
    /// The text of every line written to a sender (`ClientProcess::lines`).
    pub lines: &'a HashSet<String>,
    pub acknowledged: &'a HashSet<String>,
    pub revisions: &'a Revisions,
}

/// The edits and deletions the senders typed, by the seq of the message they change, and how many replies and
/// reactions.
#[derive(Default)]
pub(crate) struct Revisions {
    edits: HashMap<u64, HashSet<String>>,
    deleted: HashSet<u64>,
    replies: usize,
    reactions: usize,
}

impl Revisions {
    /// Notes an entry a sender queued: its line-mode `kind`, the seq it changes (`of`) and its text.
    pub fn typed(&mut self, kind: Option<&str>, of: Option<u64>, text: &str) {
        match (kind, of) {
            (Some("edit"), Some(of)) => drop(self.edits.entry(of).or_default().insert(text.to_owned())),
            (Some("deletion"), Some(of)) => drop(self.deleted.insert(of)),
            (Some("reply"), _) => self.replies += 1,
            (Some("reaction"), _) => self.reactions += 1,
            _ => {}
        }
    }

    /// What is wrong with a message that came revised (caught up after it changed), if anything: an edited one
    /// must show one of the edits typed for it; a deleted one (or an edit or a reaction of one) must be blank, and
    /// a deletion must have been typed for it.
    pub fn misrevised(&self, event: &Value) -> Option<String> {
        let seq = event["seq"].as_u64().unwrap_or(0);
        let text = event["text"].as_str().unwrap_or_default();
        let changes_another = event["kind"] == "edit" || event["kind"] == "reaction";
        let target = if changes_another { event["of"].as_u64().unwrap_or(0) } else { seq };
        let fine = match event["revision"].as_str() {
            Some("edited") => self.edits.get(&seq).is_some_and(|edits| edits.contains(text)),
            Some("deleted") => text.is_empty() && self.deleted.contains(&target),
            _ => false,
        };
        (!fine).then(|| format!("message {seq} is {} with the text {text:?}", event["revision"]))
    }

    /// How many edits, deletions, replies and reactions were typed.
    pub fn counts(&self) -> [usize; 4] {
        [self.edits.values().map(HashSet::len).sum(), self.deleted.len(), self.replies, self.reactions]
    }
}

/// One message as a reader shows it: its text (an edit's, if edited), or "(deleted)"; and its reactions, each an
/// emoji and who reacted so.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    text: String,
    reactions: BTreeSet<(String, String)>,
}

/// The lobby as a reader shows it once every entry it received is applied in seq order.
pub(crate) type View = BTreeMap<u64, Shown>;

/// Checks one reader's transcript; returns how many deliveries it checked, and the lobby as the reader shows it.
pub(crate) fn check_receiver(
    nick: &str,
    events: &[(Instant, Value)],
    expected: &Expected,
    anomalies: &mut Vec<String>,
) -> (usize, View) {
    let mut last_seq = 0;
    let mut seen = HashSet::new();
    let mut texts = HashSet::new();
    let mut view = View::new();
    let mut checked = 0;
    for (_, event) in events.iter().filter(|(_, e)| e["event"] == "message" && e["conversation"] == "#lobby") {
        checked += 1;
        let seq = event["seq"].as_u64().unwrap_or(0);
        let id = event["id"].as_str().unwrap_or_default();
        let text = event["text"].as_str().unwrap_or_default();
        if seq != last_seq + 1 {
            anomalies.push(format!("{nick}: seq {seq} after {last_seq} with no retention notice"));
        }
        last_seq = seq;
        if !seen.insert(id.to_owned()) {
            anomalies.push(format!("{nick}: message {id} delivered twice"));
        }
        match event["revision"].as_str() {
            Some("original") => {
                // A reaction's text is one of eight emoji, typed again and again.
                if event["kind"] != "reaction" && !texts.insert(text.to_owned()) {
                    anomalies.push(format!("{nick}: the line {text:?} was stored twice, under two ids"));
                }
                match expected.typed.get(id) {
                    // Its client was killed after saving it in the outbox and before saying so: the line shows it
                    // was typed, and the restarted client sent it.
                    None if expected.lines.contains(text) => {}
                    None => anomalies.push(format!("{nick}: message {id} was never typed")),
                    Some(queued) if text != queued.as_str() => {
                        anomalies.push(format!("{nick}: message {id} arrived with other bytes than were typed"))
                    }
                    Some(_) => {}
                }
            }
            _ => {
                if let Some(anomaly) = expected.revisions.misrevised(event) {
                    anomalies.push(format!("{nick}: {anomaly}"));
                }
            }
        }
        if let Err(problem) = apply(&mut view, event) {
            anomalies.push(format!("{nick}: {problem}"));
        }
    }
    let missing = expected.acknowledged.iter().filter(|id| !seen.contains(id.as_str())).count();
    if missing > 0 {
        anomalies.push(format!("{nick}: {missing} acknowledged message(s) never delivered"));
    }
    (checked, view)
}

/// The lobby as a reader that came after everything shows it: it starts some way back (a new member's window),
/// so it gets the messages before as the store holds them now, revised, and the edits, deletions and reactions of
/// messages before its window change nothing it has. Those of messages in its window must apply: what does not is
/// in `anomalies`.
pub(crate) fn late_view(events: &[(Instant, Value)], anomalies: &mut Vec<String>) -> View {
    let mut view = View::new();
    for (_, event) in events.iter().filter(|(_, e)| e["event"] == "message" && e["conversation"] == "#lobby") {
        // A reply is a message of its own, whatever it answers.
        let changes = event["kind"] != "reply";
        let before_window = changes
            && event["of"].as_u64().is_some_and(|of| view.first_key_value().is_none_or(|(first, _)| of < *first));
        if event["seq"].is_u64()
            && event["text"].is_string()
            && !before_window
            && let Err(problem) = apply(&mut view, event)
        {
            anomalies.push(format!("late: {problem}"));
        }
    }
    view
}

/// Applies one entry a reader received to its view of the lobby; what cannot be applied is said: an edit, a
/// deletion or a reaction of a message the view does not hold, a reaction added twice or taken back without
/// being there (the server judges them), or an entry of no kind known.
fn apply(view: &mut View, event: &Value) -> Result<(), String> {
    let seq = event["seq"].as_u64().unwrap_or(0);
    let text = event["text"].as_str().unwrap_or_default();
    let kind = event["kind"].as_str().unwrap_or_default();
    let original = event["revision"] == "original";
    const DELETED: &str = "(deleted)";
    match (kind, event["of"].as_u64()) {
        ("text" | "action" | "reply", _) => {
            let shown = if event["revision"] == "deleted" { DELETED } else { text };
            view.insert(seq, Shown { text: shown.to_owned(), reactions: BTreeSet::new() });
        }
        ("edit", Some(of)) if original => match view.get_mut(&of) {
            Some(shown) if shown.text != DELETED => shown.text = text.to_owned(),
            Some(_) => {}
            None => return Err(format!("the edit {seq} of {of} came before it")),
        },
        ("deletion", Some(of)) => match view.get_mut(&of) {
            Some(shown) => *shown = Shown { text: DELETED.to_owned(), reactions: BTreeSet::new() },
            None => return Err(format!("the deletion {seq} of {of} came before it")),
        },
        ("reaction", Some(of)) if original => {
            let from = event["from"].as_str().unwrap_or_default();
            let added = event["added"].as_bool().unwrap_or(false);
            let Some(shown) = view.get_mut(&of).filter(|shown| shown.text != DELETED) else {
                return Err(format!("the reaction {seq} to {of} came before it, or after its deletion"));
            };
            let reaction = (text.to_owned(), from.to_owned());
            let changed = if added { shown.reactions.insert(reaction) } else { shown.reactions.remove(&reaction) };
            if !changed {
                let what = if added { "added again" } else { "taken back without being there" };
                return Err(format!("the reaction {seq} ({text} by {from} to {of}) was {what}"));
            }
        }
        ("edit" | "reaction", Some(_)) => {}
        (kind, of) => return Err(format!("message {seq} is of kind {kind:?}, of {of:?}")),
    }
    Ok(())
}
