//! What a run reports: the figures of each target, Palomar as a fraction of the reference relay, and whether
//! the run was clean; printed as a table for people or as one JSON object for scripts.

use std::fmt::Write as _;

use serde::Serialize;

use crate::histogram::Percentiles;
use crate::load::Measurement;
use crate::scenario::{Scenario, Stop};
use crate::spawn::Durability;

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: ScenarioReport,
    pub palomar: TargetReport,
    pub reference_relay: Option<TargetReport>,
    /// Palomar's rates divided by the relay's, measured in the same run.
    pub palomar_vs_relay: Option<Ratios>,
    /// Nothing lost, duplicated, reordered or unacknowledged, no errors, no stall, on every target.
    pub ok: bool,
}

#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    /// The servers' addresses, or "spawned".
    pub server: String,
    /// The spawned servers' store durability.
    pub durability: Option<Durability>,
    /// Servers spawned for the run (0 when the run loaded running ones).
    pub nodes: usize,
    /// The spawned servers kept their store in PostgreSQL.
    pub on_postgres: bool,
    pub clients: usize,
    pub rooms: usize,
    pub senders: usize,
    pub message_bytes: usize,
    pub in_flight: usize,
    pub rate_per_sender: Option<f64>,
    pub duration_secs: Option<f64>,
    pub messages_per_sender: Option<u64>,
}

/// What servers a run spawned.
#[derive(Debug, Clone, Copy)]
pub struct SpawnedReport {
    pub durability: Durability,
    pub nodes: usize,
    pub on_postgres: bool,
}

#[derive(Debug, Serialize)]
pub struct TargetReport {
    /// From the first send to the last acknowledgement or delivery.
    pub elapsed_secs: f64,
    pub sent: u64,
    pub acked: u64,
    /// Summed over receivers; every member of a room receives, the sender too.
    pub deliveries: u64,
    pub expected_deliveries: u64,
    pub acks_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub ack_latency_us: Percentiles,
    pub delivery_latency_us: Percentiles,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub unacknowledged: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub stalled: bool,
    /// CPU seconds of the server (or relay) while the load ran, when it can be observed.
    pub server_cpu_secs: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    pub server_cpu_us_per_message: Option<f64>,
    /// CPU seconds of the PostgreSQL server the spawned servers keep their store in (every `postgres` process
    /// of this machine), while the load ran.
    pub database_cpu_secs: Option<f64>,
    pub database_cpu_us_per_delivery: Option<f64>,
    pub database_cpu_us_per_message: Option<f64>,
    /// Resident memory of a spawned server when the load started, after the clients logged in.
    pub server_memory_at_start_bytes: Option<u64>,
    /// Peak resident memory of a spawned server while the load ran (since its start where the kernel does
    /// not allow resetting the peak).
    pub server_peak_memory_bytes: Option<u64>,
    /// CPU seconds of the load generator itself.
    pub client_cpu_secs: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Ratios {
    pub acks_per_sec: f64,
    pub deliveries_per_sec: f64,
}

impl TargetReport {
    pub fn new(measurement: &Measurement) -> TargetReport {
        let secs = measurement.elapsed.as_secs_f64().max(1e-6);
        // CPU microseconds per item, when both are known.
        let per = |cpu: Option<f64>, count: u64| cpu.filter(|_| count > 0).map(|cpu| cpu * 1e6 / count as f64);
        TargetReport {
            elapsed_secs: measurement.elapsed.as_secs_f64(),
            sent: measurement.sent,
            acked: measurement.acked,
            deliveries: measurement.deliveries,
            expected_deliveries: measurement.expected_deliveries,
            acks_per_sec: measurement.acked as f64 / secs,
            deliveries_per_sec: measurement.deliveries as f64 / secs,
            ack_latency_us: measurement.ack_latency.percentiles(),
            delivery_latency_us: measurement.delivery_latency.percentiles(),
            lost: measurement.lost,
            duplicated: measurement.duplicated,
            reordered: measurement.reordered,
            unacknowledged: measurement.sent.saturating_sub(measurement.acked),
            errors: measurement.errors,
            first_error: measurement.first_error.clone(),
            stalled: measurement.stalled,
            server_cpu_secs: measurement.target_cpu_secs,
            server_cpu_us_per_delivery: per(measurement.target_cpu_secs, measurement.deliveries),
            server_cpu_us_per_message: per(measurement.target_cpu_secs, measurement.acked),
            database_cpu_secs: measurement.database_cpu_secs,
            database_cpu_us_per_delivery: per(measurement.database_cpu_secs, measurement.deliveries),
            database_cpu_us_per_message: per(measurement.database_cpu_secs, measurement.acked),
            server_memory_at_start_bytes: measurement.target_memory_at_start_bytes,
            server_peak_memory_bytes: measurement.target_peak_memory_bytes,
            client_cpu_secs: measurement.client_cpu_secs,
        }
    }

    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.unacknowledged == 0
            && self.errors == 0
            && !self.stalled
            && self.deliveries == self.expected_deliveries
    }
}

impl ScenarioReport {
    pub fn new(scenario: &Scenario, server: String, spawned: Option<SpawnedReport>) -> ScenarioReport {
        ScenarioReport {
            server,
            durability: spawned.as_ref().map(|spawned| spawned.durability),
            nodes: spawned.as_ref().map_or(0, |spawned| spawned.nodes),
            on_postgres: spawned.is_some_and(|spawned| spawned.on_postgres),
            clients: scenario.clients,
            rooms: scenario.rooms,
            senders: scenario.senders,
            message_bytes: scenario.text_bytes,
            in_flight: scenario.in_flight,
            rate_per_sender: scenario.rate_per_sender,
            duration_secs: match scenario.stop {
                Stop::After(duration) => Some(duration.as_secs_f64()),
                Stop::Messages(_) => None,
            },
            messages_per_sender: match scenario.stop {
                Stop::Messages(count) => Some(count),
                Stop::After(_) => None,
            },
        }
    }

    /// One line saying what was run.
    pub fn describe(&self) -> String {
        let members = if self.clients.is_multiple_of(self.rooms) {
            format!("{}", self.clients / self.rooms)
        } else {
            format!("{}-{}", self.clients / self.rooms, self.clients / self.rooms + 1)
        };
        let rooms = if self.rooms == 1 { "room" } else { "rooms" };
        let senders = if self.senders == 1 { "sender" } else { "senders" };
        let pace = self.rate_per_sender.map_or("flat out".to_owned(), |rate| format!("{rate} msg/s per sender"));
        let length = match (self.duration_secs, self.messages_per_sender) {
            (Some(secs), _) => format!("{secs} s"),
            (None, Some(1)) => "1 message per sender".to_owned(),
            (None, Some(count)) => format!("{count} messages per sender"),
            (None, None) => String::new(),
        };
        let server = match self.durability {
            Some(durability) => {
                let servers =
                    if self.nodes == 1 { "spawned server".to_owned() } else { format!("{} spawned nodes", self.nodes) };
                let store = if self.on_postgres { "PostgreSQL" } else { "the embedded store" };
                format!("{servers} on {store}, durability {}", durability.as_config())
            }
            None => format!("server {}", self.server),
        };
        format!(
            "{} clients, {} {rooms} of {members}, {} {senders}, {}-byte messages, {} in flight per sender, {pace}, {length}; {server}",
            self.clients, self.rooms, self.senders, self.message_bytes, self.in_flight
        )
    }
}

impl Report {
    pub fn new(scenario: ScenarioReport, palomar: TargetReport, reference_relay: Option<TargetReport>) -> Report {
        let palomar_vs_relay = reference_relay.as_ref().map(|relay| Ratios {
            acks_per_sec: ratio(palomar.acks_per_sec, relay.acks_per_sec),
            deliveries_per_sec: ratio(palomar.deliveries_per_sec, relay.deliveries_per_sec),
        });
        let ok = palomar.clean() && reference_relay.as_ref().is_none_or(TargetReport::clean);
        Report { scenario, palomar, reference_relay, palomar_vs_relay, ok }
    }

    /// The table for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "palomar bench: {}\n", self.scenario.describe());
        let relay = self.reference_relay.as_ref();
        let ratios = self.palomar_vs_relay.as_ref();
        if relay.is_some() {
            let _ = writeln!(out, "{:<26}{:>16}{:>18}{:>16}", "", "palomar", "reference relay", "palomar/relay");
        } else {
            let _ = writeln!(out, "{:<26}{:>16}", "", "palomar");
        }
        let mut row = |name: &str, value: &dyn Fn(&TargetReport) -> String, ratio: Option<f64>| {
            let _ = write!(out, "{name:<26}{:>16}", value(&self.palomar));
            if let Some(relay) = relay {
                let _ = write!(out, "{:>18}", value(relay));
                if let Some(ratio) = ratio {
                    let _ = write!(out, "{ratio:>16.2}");
                }
            }
            out.push('\n');
        };
        row("elapsed", &|t| format!("{:.3} s", t.elapsed_secs), None);
        row("messages acked", &|t| thousands(t.acked), None);
        row("acked msg/s", &|t| thousands(t.acks_per_sec.round() as u64), ratios.map(|r| r.acks_per_sec));
        row("deliveries", &|t| thousands(t.deliveries), None);
        row("deliveries/s", &|t| thousands(t.deliveries_per_sec.round() as u64), ratios.map(|r| r.deliveries_per_sec));
        for (name, pick) in LATENCIES {
            row(&format!("ack latency {name}"), &|t| millis(pick(&t.ack_latency_us)), None);
        }
        for (name, pick) in LATENCIES {
            row(&format!("delivery latency {name}"), &|t| millis(pick(&t.delivery_latency_us)), None);
        }
        row("lost/duplicated/reordered", &|t| format!("{}/{}/{}", t.lost, t.duplicated, t.reordered), None);
        row("unacknowledged/errors", &|t| format!("{}/{}", t.unacknowledged, t.errors), None);
        row("server CPU", &|t| optional(t.server_cpu_secs, |s| format!("{s:.2} s")), None);
        row("server CPU per delivery", &|t| optional(t.server_cpu_us_per_delivery, |us| format!("{us:.2} µs")), None);
        row("server CPU per message", &|t| optional(t.server_cpu_us_per_message, |us| format!("{us:.2} µs")), None);
        if self.palomar.database_cpu_secs.is_some() {
            row("database CPU", &|t| optional(t.database_cpu_secs, |s| format!("{s:.2} s")), None);
            row(
                "database CPU per delivery",
                &|t| optional(t.database_cpu_us_per_delivery, |us| format!("{us:.2} µs")),
                None,
            );
            row(
                "database CPU per message",
                &|t| optional(t.database_cpu_us_per_message, |us| format!("{us:.2} µs")),
                None,
            );
        }
        row("server memory at start", &|t| optional(t.server_memory_at_start_bytes, mebibytes), None);
        row("server peak memory", &|t| optional(t.server_peak_memory_bytes, mebibytes), None);
        row("load generator CPU", &|t| optional(t.client_cpu_secs, |s| format!("{s:.2} s")), None);
        out.push('\n');
        if self.ok {
            out.push_str("result: clean (nothing lost, duplicated, reordered or unacknowledged; no errors)\n");
        } else {
            out.push_str("result: NOT CLEAN\n");
            for (name, target) in [("palomar", Some(&self.palomar)), ("reference relay", relay)] {
                if let Some(error) = target.and_then(|t| t.first_error.as_ref()) {
                    let _ = writeln!(out, "  {name}, first error: {error}");
                }
                if target.is_some_and(|t| t.stalled) {
                    let _ = writeln!(out, "  {name}: stalled (no progress for 15 s with messages outstanding)");
                }
            }
        }
        out
    }
}

type Pick = fn(&Percentiles) -> u64;

const LATENCIES: [(&str, Pick); 5] =
    [("p50", |p| p.p50), ("p90", |p| p.p90), ("p99", |p| p.p99), ("p99.9", |p| p.p999), ("max", |p| p.max)];

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn optional<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "-".to_owned(), show)
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn millis(micros: u64) -> String {
    let ms = micros as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.3} ms")
    } else if ms < 100.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(millis(1_234), "1.234 ms");
        assert_eq!(millis(123_456), "123.5 ms");
    }
}
