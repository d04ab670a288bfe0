//! The check of one receiver's transcript against what the senders typed and saw acknowledged.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::Value;

/// What the senders did, as a receiver's transcript is checked against it.
pub(crate) struct Expected<'a> {
    /// Text of every message a sender reported queued, by id.
    pub typed: &'a HashMap<String, String>,
    /// Every line written to a sender.
    pub lines: &'a HashSet<String>,
    pub acknowledged: &'a HashSet<String>,
}

/// Checks one reader's transcript; returns how many deliveries it checked.
pub(crate) fn check_receiver(
    nick: &str,
    events: &[(Instant, Value)],
    expected: &Expected,
    anomalies: &mut Vec<String>,
) -> usize {
    let mut last_seq = 0;
    let mut seen = HashSet::new();
    let mut texts = HashSet::new();
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
        } else if !texts.insert(text.to_owned()) {
            anomalies.push(format!("{nick}: the line {text:?} was stored twice, under two ids"));
        }
        match expected.typed.get(id) {
            // Its client was killed after saving it in the outbox and before saying so: the line shows it was
            // typed, and the restarted client sent it.
            None if expected.lines.contains(text) => {}
            None => anomalies.push(format!("{nick}: message {id} was never typed")),
            Some(queued) if text != queued.as_str() => {
                anomalies.push(format!("{nick}: message {id} arrived with other bytes than were typed"))
            }
            Some(_) => {}
        }
    }
    let missing = expected.acknowledged.iter().filter(|id| !seen.contains(id.as_str())).count();
    if missing > 0 {
        anomalies.push(format!("{nick}: {missing} acknowledged message(s) never delivered"));
    }
    checked
}
