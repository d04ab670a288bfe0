//! The load itself, over any [`Wire`]: connects every client of the scenario (each starts receiving at once),
//! runs the senders, waits until everything sent is acknowledged and delivered, and returns a
//! [`Measurement`].
//!
//! A sender may have `in_flight` messages that have not yet reached every member of its room; receivers give
//! the window back as they get messages, so with 1 each message waits for the previous one to arrive
//! everywhere. Receivers check every sender's counters: they must arrive strictly increasing, with no gaps
//! and no repeats.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palomar_proto::{MessageId, unix_ms};
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::histogram::Histogram;
use crate::progress::Progress;
use crate::scenario::{Scenario, Stop, parse_stamp};
use crate::usage;
use crate::wire::{Event, Inbound, Outbound, Wire};

/// Clients logging in at the same time (a first login hashes a password on the server).
const CONNECT_PARALLEL: usize = 16;
/// A run with messages outstanding and no acknowledgement or delivery for this long has stalled.
const STALL_LIMIT: Duration = Duration::from_secs(15);
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// How often the drain checks whether everything has arrived.
const DRAIN_POLL: Duration = Duration::from_millis(2);
/// Time for the connections to say goodbye at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one run against one target measured.
#[derive(Debug)]
pub struct Measurement {
    /// From the first send to the last acknowledgement or delivery.
    pub elapsed: Duration,
    pub sent: u64,
    pub acked: u64,
    /// First receipts, summed over every receiver.
    pub deliveries: u64,
    pub expected_deliveries: u64,
    pub ack_latency: Histogram,
    pub delivery_latency: Histogram,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Refusals from the target, broken connections, acknowledgements that did not match.
    pub errors: u64,
    pub first_error: Option<String>,
    pub stalled: bool,
    /// CPU seconds the target used while the load ran (not while the clients logged in).
    pub target_cpu_secs: Option<f64>,
    /// CPU seconds the target's database server used meanwhile, when it is a process of this machine.
    pub database_cpu_secs: Option<f64>,
    /// Resident memory of the target when the load started (after the clients logged in).
    pub target_memory_at_start_bytes: Option<u64>,
    pub target_peak_memory_bytes: Option<u64>,
    /// CPU seconds this process spent generating the load (without an in-process target's share).
    pub client_cpu_secs: Option<f64>,
}

/// The messages a sender may still send before some reach every member of its room.
struct Window {
    permits: Semaphore,
    /// Members that have yet to receive each message in flight, by counter modulo the window size.
    remaining: Vec<AtomicU32>,
}

impl Window {
    fn new(size: usize) -> Window {
        Window { permits: Semaphore::new(size), remaining: (0..size).map(|_| AtomicU32::new(0)).collect() }
    }

    fn slot(&self, counter: u64) -> &AtomicU32 {
        &self.remaining[(counter % self.remaining.len() as u64) as usize]
    }

    fn arm(&self, counter: u64, members: u32) {
        self.slot(counter).store(members, Ordering::Release);
    }

    /// One more member has message `counter`; the last one gives its place in the window back.
    fn delivered(&self, counter: u64) {
        let previous = self.slot(counter).fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(1));
        if previous == Ok(1) {
            self.permits.add_permits(1);
        }
    }
}

struct SenderState {
    window: Window,
    /// Highest counter sent so far.
    sent: AtomicU64,
    /// Messages waiting for their acknowledgement, oldest first, with their send times.
    awaiting_ack: Mutex<VecDeque<(MessageId, u64)>>,
}

/// What every task of a run shares.
struct Shared {
    scenario: Scenario,
    clock: Instant,
    senders: Vec<SenderState>,
    acked: AtomicU64,
    delivered: AtomicU64,
    /// When the last acknowledgement or first receipt happened, in microseconds of `clock`.
    last_event_us: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    fn sent_by_sender(&self) -> Vec<u64> {
        self.senders.iter().map(|sender| sender.sent.load(Ordering::Acquire)).collect()
    }

    fn progress_count(&self) -> u64 {
        self.acked.load(Ordering::Relaxed) + self.delivered.load(Ordering::Relaxed)
    }

    /// True when every message sent so far is acknowledged and has reached every member.
    fn settled(&self) -> bool {
        let sent = self.sent_by_sender();
        self.acked.load(Ordering::Acquire) >= sent.iter().sum::<u64>()
            && self.delivered.load(Ordering::Acquire) >= self.scenario.expected_deliveries(&sent)
    }
}

/// One receiver's view of one sender.
#[derive(Debug, Clone, Default)]
struct Track {
    /// Highest counter received.
    last: u64,
    /// Counters below `last` that have not arrived (yet).
    missing: BTreeSet<u64>,
}

impl Track {
    fn distinct(&self) -> u64 {
        self.last - self.missing.len() as u64
    }
}

/// What one receiving connection saw.
struct ReceiverStats {
    delivery_latency: Histogram,
    ack_latency: Histogram,
    /// By sender.
    tracks: Vec<Track>,
    duplicated: u64,
    reordered: u64,
    errors: u64,
    first_error: Option<String>,
}

impl ReceiverStats {
    fn new(senders: usize) -> ReceiverStats {
        ReceiverStats {
            delivery_latency: Histogram::default(),
            ack_latency: Histogram::default(),
            tracks: vec![Track::default(); senders],
            duplicated: 0,
            reordered: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn handle(&mut self, event: Event, client: usize, shared: &Shared, now_us: u64) {
        match event {
            Event::Accepted(id) => {
                let Some(sender) = shared.senders.get(client) else {
                    return self.error(format!("client {client} sends nothing but got an acknowledgement"));
                };
                let oldest = sender.awaiting_ack.lock().pop_front();
                match oldest {
                    Some((expected, sent_us)) if expected == id => {
                        self.ack_latency.record(now_us.saturating_sub(sent_us));
                        shared.acked.fetch_add(1, Ordering::AcqRel);
                        shared.last_event_us.fetch_max(now_us, Ordering::Relaxed);
                    }
                    _ => self.error(format!("client {client} got an acknowledgement out of order")),
                }
            }
            Event::Delivered(text) => {
                // Texts of earlier runs in the same rooms, or of other users, are not this run's business.
                let Some(stamp) = parse_stamp(&text).filter(|stamp| stamp.run_id == shared.scenario.run_id) else {
                    return;
                };
                let Some(sender) = shared.senders.get(stamp.sender) else {
                    return self.error(format!("client {client} got a message from a sender that does not exist"));
                };
                if stamp.counter == 0 || stamp.counter > sender.sent.load(Ordering::Acquire) {
                    return self.error(format!("client {client} got a message that was never sent"));
                }
                let track = &mut self.tracks[stamp.sender];
                let first_receipt = if stamp.counter > track.last {
                    track.missing.extend(track.last + 1..stamp.counter);
                    track.last = stamp.counter;
                    true
                } else if track.missing.remove(&stamp.counter) {
                    self.reordered += 1;
                    true
                } else {
                    self.duplicated += 1;
                    false
                };
                if first_receipt {
                    self.delivery_latency.record(now_us.saturating_sub(stamp.sent_us));
                    sender.window.delivered(stamp.counter);
                    shared.delivered.fetch_add(1, Ordering::AcqRel);
                    shared.last_event_us.fetch_max(now_us, Ordering::Relaxed);
                }
            }
            Event::Refused(why) => self.error(format!("client {client}: {why}")),
        }
    }
}

async fn receive<I: Inbound>(
    mut inbound: I,
    client: usize,
    shared: Arc<Shared>,
    finish: CancellationToken,
) -> ReceiverStats {
    let mut stats = ReceiverStats::new(shared.senders.len());
    let mut events = Vec::new();
    let finished = finish.cancelled();
    tokio::pin!(finished);
    loop {
        let open = tokio::select! {
            biased;
            _ = &mut finished => break,
            open = inbound.next(&mut events) => open,
        };
        let now_us = shared.now_us();
        for event in events.drain(..) {
            stats.handle(event, client, &shared, now_us);
        }
        match open {
            Ok(true) => {}
            Ok(false) => {
                stats.error(format!("client {client}: the connection was closed by the other side"));
                break;
            }
            Err(error) => {
                stats.error(format!("client {client}: {error:#}"));
                break;
            }
        }
    }
    stats
}

/// When `sender`'s first paced message goes, within the first `period`. Senders are spread evenly over it, as
/// independent users would be: started together, all their messages would arrive in the same instant, every
/// period, and the latency measured would be the time to drain those bursts.
fn phase(period: Duration, sender: usize, senders: usize) -> Duration {
    period.mul_f64(sender as f64 / senders.max(1) as f64)
}

/// Sends until the deadline, the message count, or `stop`; returns the connection and what went wrong.
async fn send_messages<O: Outbound>(
    mut outbound: O,
    sender: usize,
    shared: Arc<Shared>,
    deadline: Option<tokio::time::Instant>,
    stop: CancellationToken,
) -> (usize, O, Option<String>) {
    let scenario = &shared.scenario;
    let state = &shared.senders[sender];
    let members = u32::try_from(scenario.members_of(scenario.room_of(sender))).unwrap_or(u32::MAX);
    let count = match scenario.stop {
        Stop::Messages(count) => count,
        Stop::After(_) => u64::MAX,
    };
    let mut pace = scenario.rate_per_sender.map(|rate| {
        let period = Duration::from_secs_f64(1.0 / rate);
        let first = tokio::time::Instant::now() + phase(period, sender, scenario.senders);
        let mut pace = tokio::time::interval_at(first, period);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        pace
    });
    let time_up = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(time_up);
    for counter in 1..=count {
        let ready = async {
            if let Some(pace) = pace.as_mut() {
                pace.tick().await;
            }
            state.window.permits.acquire().await.map(|permit| permit.forget())
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = &mut time_up => break,
            ready = ready => if ready.is_err() { break },
        }
        state.window.arm(counter, members);
        let id = MessageId::time_ordered(unix_ms(), rand::random());
        let sent_us = shared.now_us();
        state.awaiting_ack.lock().push_back((id, sent_us));
        state.sent.store(counter, Ordering::Release);
        if let Err(error) = outbound.send(id, scenario.text(sender, counter, sent_us)).await {
            return (sender, outbound, Some(format!("sender {sender}: {error:#}")));
        }
    }
    (sender, outbound, None)
}

/// Runs `scenario` against `wire`'s target; `target` observes its resource use.
pub async fn run<W: Wire>(
    wire: W,
    scenario: &Scenario,
    target: &dyn usage::Target,
    in_process_target: bool,
    label: &str,
    progress: &Progress,
) -> anyhow::Result<Measurement> {
    let shared = Arc::new(Shared {
        scenario: scenario.clone(),
        clock: Instant::now(),
        senders: (0..scenario.senders)
            .map(|_| SenderState {
                window: Window::new(scenario.in_flight),
                sent: AtomicU64::new(0),
                awaiting_ack: Mutex::new(VecDeque::new()),
            })
            .collect(),
        acked: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        last_event_us: AtomicU64::new(0),
    });
    let finish = CancellationToken::new();
    // Receivers end when this run ends, whichever way it ends.
    let _finish_on_return = finish.clone().drop_guard();

    progress.connecting(label, scenario.clients);
    let wire = Arc::new(wire);
    let gate = Arc::new(Semaphore::new(CONNECT_PARALLEL));
    let mut connecting = JoinSet::new();
    for client in 0..scenario.clients {
        let (wire, shared, gate, finish) = (wire.clone(), shared.clone(), gate.clone(), finish.clone());
        connecting.spawn(async move {
            let _turn = gate.acquire_owned().await?;
            let (inbound, outbound) = wire.connect(&shared.scenario, client).await?;
            let receiver = tokio::spawn(receive(inbound, client, shared, finish));
            anyhow::Ok((client, outbound, receiver))
        });
    }
    let mut outbounds: Vec<Option<W::Outbound>> = (0..scenario.clients).map(|_| None).collect();
    let mut receivers = Vec::with_capacity(scenario.clients);
    while let Some(connected) = connecting.join_next().await {
        let (client, outbound, receiver) = connected??;
        outbounds[client] = Some(outbound);
        receivers.push((client, receiver));
        progress.connected();
    }

    let target_cpu_before = target.cpu_secs();
    let database_cpu_before = target.database_cpu_secs();
    let own_cpu_before = usage::own_cpu_secs();
    let target_memory_at_start_bytes = target.memory_bytes();
    target.reset_peak_memory();
    let started_us = shared.now_us();
    let deadline = match scenario.stop {
        Stop::After(duration) => Some(tokio::time::Instant::now() + duration),
        Stop::Messages(_) => None,
    };
    progress.sending(scenario.stop, scenario.senders);
    let stop = CancellationToken::new();
    let mut sending = JoinSet::new();
    for (sender, outbound) in outbounds.iter_mut().enumerate().take(scenario.senders) {
        if let Some(outbound) = outbound.take() {
            sending.spawn(send_messages(outbound, sender, shared.clone(), deadline, stop.clone()));
        }
    }

    let mut problems: Vec<String> = Vec::new();
    let mut watch = Watch::new(&shared);
    let mut ticker = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            sent = sending.join_next() => match sent {
                None => break,
                Some(Ok((sender, outbound, problem))) => {
                    outbounds[sender] = Some(outbound);
                    problems.extend(problem);
                }
                Some(Err(error)) => problems.push(format!("a sender failed: {error}")),
            },
            _ = ticker.tick() => {
                let elapsed = Duration::from_micros(shared.now_us() - started_us);
                progress.update(scenario.stop, elapsed, shared.acked.load(Ordering::Relaxed), shared.delivered.load(Ordering::Relaxed));
                if watch.stalled(&shared) {
                    stop.cancel();
                }
            }
        }
    }
    progress.draining();
    while !shared.settled() && !watch.stalled(&shared) {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let target_cpu_secs = target.cpu_secs().zip(target_cpu_before).map(|(after, before)| after - before);
    let database_cpu_secs = target.database_cpu_secs().zip(database_cpu_before).map(|(after, before)| after - before);
    let own_cpu_secs = usage::own_cpu_secs().zip(own_cpu_before).map(|(after, before)| after - before);
    let target_peak_memory_bytes = target.peak_memory_bytes();
    let last_event_us = shared.last_event_us.load(Ordering::Acquire).max(started_us);
    finish.cancel();

    let mut closing = JoinSet::new();
    for outbound in outbounds.into_iter().flatten() {
        closing.spawn(outbound.close());
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing.join_all()).await;

    let sent_by_sender = shared.sent_by_sender();
    let mut measurement = Measurement {
        elapsed: Duration::from_micros(last_event_us - started_us),
        sent: sent_by_sender.iter().sum(),
        acked: shared.acked.load(Ordering::Acquire),
        deliveries: shared.delivered.load(Ordering::Acquire),
        expected_deliveries: scenario.expected_deliveries(&sent_by_sender),
        ack_latency: Histogram::default(),
        delivery_latency: Histogram::default(),
        lost: 0,
        duplicated: 0,
        reordered: 0,
        errors: 0,
        first_error: None,
        stalled: watch.has_stalled,
        target_cpu_secs,
        database_cpu_secs,
        target_memory_at_start_bytes,
        target_peak_memory_bytes,
        client_cpu_secs: if in_process_target {
            own_cpu_secs.zip(target_cpu_secs).map(|(own, target)| own - target)
        } else {
            own_cpu_secs
        },
    };
    for problem in problems {
        measurement.errors += 1;
        measurement.first_error.get_or_insert(problem);
    }
    for (client, receiver) in receivers {
        let stats = match receiver.await {
            Ok(stats) => stats,
            Err(error) => {
                measurement.errors += 1;
                measurement.first_error.get_or_insert(format!("client {client}'s receiver failed: {error}"));
                continue;
            }
        };
        measurement.ack_latency.merge(&stats.ack_latency);
        measurement.delivery_latency.merge(&stats.delivery_latency);
        measurement.duplicated += stats.duplicated;
        measurement.reordered += stats.reordered;
        measurement.errors += stats.errors;
        if measurement.first_error.is_none() {
            measurement.first_error = stats.first_error;
        }
        let room = scenario.room_of(client);
        for (sender, track) in stats.tracks.iter().enumerate().filter(|(sender, _)| scenario.room_of(*sender) == room) {
            measurement.lost += sent_by_sender[sender].saturating_sub(track.distinct());
        }
    }
    Ok(measurement)
}

/// Notices a run that stopped moving while messages are still outstanding.
struct Watch {
    seen: u64,
    moved_at: Instant,
    has_stalled: bool,
}

impl Watch {
    fn new(shared: &Shared) -> Watch {
        Watch { seen: shared.progress_count(), moved_at: Instant::now(), has_stalled: false }
    }

    fn stalled(&mut self, shared: &Shared) -> bool {
        let now = shared.progress_count();
        if now != self.seen || shared.settled() {
            self.seen = now;
            self.moved_at = Instant::now();
        } else if self.moved_at.elapsed() > STALL_LIMIT {
            self.has_stalled = true;
        }
        self.has_stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_senders_are_spread_over_the_period() {
        let period = Duration::from_millis(10);
        let phases: Vec<Duration> = (0..4).map(|sender| phase(period, sender, 4)).collect();
        assert_eq!(phases, [0, 2_500, 5_000, 7_500].map(Duration::from_micros));
        assert_eq!(phase(period, 0, 1), Duration::ZERO);
    }

    #[test]
    fn the_last_member_to_receive_gives_the_place_back() {
        let window = Window::new(2);
        assert!(window.permits.try_acquire().map(|p| p.forget()).is_ok());
        window.arm(1, 3);
        window.delivered(1);
        window.delivered(1);
        assert_eq!(window.permits.available_permits(), 1);
        window.delivered(1);
        assert_eq!(window.permits.available_permits(), 2);
        window.delivered(1);
        assert_eq!(window.permits.available_permits(), 2, "a stray receipt gives nothing back");
    }

    #[test]
    fn receivers_tell_duplicates_from_late_arrivals() {
        let mut stats = ReceiverStats::new(1);
        let shared = Shared {
            scenario: Scenario {
                clients: 2,
                rooms: 1,
                senders: 1,
                text_bytes: 64,
                in_flight: 4,
                rate_per_sender: None,
                stop: Stop::Messages(4),
                run_id: 7,
            },
            clock: Instant::now(),
            senders: vec![SenderState {
                window: Window::new(4),
                sent: AtomicU64::new(4),
                awaiting_ack: Mutex::new(VecDeque::new()),
            }],
            acked: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            last_event_us: AtomicU64::new(0),
        };
        for counter in [1, 3, 2, 2, 4] {
            let text = shared.scenario.text(0, counter, 0);
            stats.handle(Event::Delivered(text), 1, &shared, 10);
        }
        assert_eq!((stats.tracks[0].last, stats.tracks[0].distinct()), (4, 4));
        assert_eq!((stats.reordered, stats.duplicated, stats.errors), (1, 1, 0));
        assert_eq!(shared.delivered.load(Ordering::Relaxed), 4);
        stats.handle(Event::Delivered(shared.scenario.text(0, 5, 0)), 1, &shared, 10);
        assert_eq!(stats.errors, 1, "a counter beyond what was sent is an error");
        stats.handle(Event::Delivered("someone else's chat".into()), 1, &shared, 10);
        assert_eq!(stats.errors, 1, "other texts are ignored");
    }
}
