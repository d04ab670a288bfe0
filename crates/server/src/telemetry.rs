//! The server's numbers for Prometheus: every metric's name, kind, labels and meaning in one place, the handles
//! through which the rest of the server counts, and the process-wide recorder that `/metrics` renders.
//!
//! Handles are registered once, when a server starts, and kept by whoever counts: counting is then an atomic add,
//! with no name to look up per message. Without a recorder (no `[admin] listen`) every handle is a no-op.

use std::sync::OnceLock;
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bounds of the histograms of durations, in seconds: from a page-cache write (tens of µs) to a disk that
/// stalls (seconds).
const SECONDS_BUCKETS: &[f64] =
    &[0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Bounds of the histogram of changes per commit, up to the writer's largest group (2,048).
const OPERATIONS_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1_024.0, 2_048.0];

/// Where a connection came in.
#[derive(Debug, Clone, Copy)]
pub enum Listener {
    Native,
    Web,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over the pace of new connections, closed at once.
    RateClosed,
    /// Over the pace of new connections, told why.
    RateLimited,
    /// Over the server's connection limit.
    ServerFull,
    /// Over the limit of connections from one address.
    AddressFull,
}

/// How a login ended.
#[derive(Debug, Clone, Copy)]
pub enum Login {
    /// The password was right.
    Ok,
    /// A new account was made.
    Registered,
    /// Wrong password (or no such account while registration is closed).
    Failed,
    /// Refused unheard: too many recent failures of the nickname from the address, or from the address.
    LockedOut,
    /// Not judged: the server was busy, or the store could not answer, or the address made too many accounts.
    NotJudged,
    /// The password was right, but the account is suspended.
    Suspended,
}

/// Which account pace a request waited for.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    Messages,
    Requests,
}

/// The handles through which the server counts. Cheap to clone (each handle is shared).
#[derive(Clone)]
pub struct Metrics {
    accepted: [Counter; 2],
    open: [Gauge; 2],
    refused: [Counter; 4],
    logins: [Counter; 6],
    pub sessions: Gauge,
    pub messages_accepted: Counter,
    pub messages_delivered: Counter,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
    pub commits: Counter,
    pub commit_operations: Histogram,
    pub commit_seconds: Histogram,
    pub sync_seconds: Histogram,
    pub store_errors: Counter,
    pub live_queue_overflows: Counter,
    pub read_backs: Counter,
    paced: [Counter; 2],
    pub reads_in_flight: Gauge,
}

impl Default for Metrics {
    /// Handles that count nothing, for tests of the parts that count.
    fn default() -> Self {
        Metrics {
            accepted: [Counter::noop(), Counter::noop()],
            open: [Gauge::noop(), Gauge::noop()],
            refused: std::array::from_fn(|_| Counter::noop()),
            logins: std::array::from_fn(|_| Counter::noop()),
            sessions: Gauge::noop(),
            messages_accepted: Counter::noop(),
            messages_delivered: Counter::noop(),
            bytes_received: Counter::noop(),
            bytes_sent: Counter::noop(),
            commits: Counter::noop(),
            commit_operations: Histogram::noop(),
            commit_seconds: Histogram::noop(),
            sync_seconds: Histogram::noop(),
            store_errors: Counter::noop(),
            live_queue_overflows: Counter::noop(),
            read_backs: Counter::noop(),
            paced: [Counter::noop(), Counter::noop()],
            reads_in_flight: Gauge::noop(),
        }
    }
}

impl Metrics {
    /// Describes every metric to the current recorder and registers the handles with it.
    pub fn register() -> Metrics {
        describe();
        let listener = |name: &'static str| {
            [metrics::counter!(name, "listener" => "native"), metrics::counter!(name, "listener" => "web")]
        };
        let refused = |reason: &'static str| metrics::counter!("palomar_connections_refused_total", "reason" => reason);
        let login = |outcome: &'static str| metrics::counter!("palomar_logins_total", "outcome" => outcome);
        let paced = |limit: &'static str| metrics::counter!("palomar_rate_limited_total", "limit" => limit);
        Metrics {
            accepted: listener("palomar_connections_accepted_total"),
            open: [
                metrics::gauge!("palomar_connections_open", "listener" => "native"),
                metrics::gauge!("palomar_connections_open", "listener" => "web"),
            ],
            refused: [refused("rate_closed"), refused("rate_limited"), refused("server_full"), refused("address_full")],
            logins: [
                login("ok"),
                login("registered"),
                login("failed"),
                login("locked_out"),
                login("not_judged"),
                login("suspended"),
            ],
            sessions: metrics::gauge!("palomar_sessions_open"),
            messages_accepted: metrics::counter!("palomar_messages_accepted_total"),
            messages_delivered: metrics::counter!("palomar_messages_delivered_total"),
            bytes_received: metrics::counter!("palomar_received_bytes_total"),
            bytes_sent: metrics::counter!("palomar_sent_bytes_total"),
            commits: metrics::counter!("palomar_store_commits_total"),
            commit_operations: metrics::histogram!("palomar_store_commit_operations"),
            commit_seconds: metrics::histogram!("palomar_store_commit_seconds"),
            sync_seconds: metrics::histogram!("palomar_store_sync_seconds"),
            store_errors: metrics::counter!("palomar_store_errors_total"),
            live_queue_overflows: metrics::counter!("palomar_live_queue_overflows_total"),
            read_backs: metrics::counter!("palomar_read_backs_total"),
            paced: [paced("messages"), paced("requests")],
            reads_in_flight: metrics::gauge!("palomar_store_reads_in_flight"),
        }
    }

    pub fn accepted(&self, listener: Listener) -> &Counter {
        &self.accepted[listener as usize]
    }

    pub fn open(&self, listener: Listener) -> &Gauge {
        &self.open[listener as usize]
    }

    pub fn refused(&self, reason: Refused) -> &Counter {
        &self.refused[reason as usize]
    }

    pub fn login(&self, outcome: Login) -> &Counter {
        &self.logins[outcome as usize]
    }

    pub fn paced(&self, pace: Pace) -> &Counter {
        &self.paced[pace as usize]
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("palomar_connections_accepted_total", "Connections taken from a listener (native or web).");
    describe_gauge!("palomar_connections_open", "Connections open now, whatever their state.");
    describe_counter!(
        "palomar_connections_refused_total",
        "Connections turned away: over the pace of new connections (closed at once, or told why), over the \
         server's limit, over one address's limit."
    );
    describe_counter!("palomar_logins_total", "Logins by outcome.");
    describe_gauge!("palomar_sessions_open", "Logged-in sessions.");
    describe_counter!("palomar_messages_accepted_total", "Messages stored and acknowledged to their sender.");
    describe_counter!(
        "palomar_messages_delivered_total",
        "Messages sent to a client (live, caught up or read back; not scrollback)."
    );
    describe_counter!("palomar_received_bytes_total", Unit::Bytes, "Bytes of frames read from clients.");
    describe_counter!("palomar_sent_bytes_total", Unit::Bytes, "Bytes of frames written to clients.");
    describe_counter!("palomar_store_commits_total", "Group commits of the store writer, failed ones included.");
    describe_histogram!("palomar_store_commit_operations", "Changes (messages, joins, …) in one group commit.");
    describe_histogram!(
        "palomar_store_commit_seconds",
        Unit::Seconds,
        "Time of one group commit, from its transaction's start to its end."
    );
    describe_histogram!(
        "palomar_store_sync_seconds",
        Unit::Seconds,
        "Time of one group commit's COMMIT: the sync to disk (or PostgreSQL's acknowledgement)."
    );
    describe_counter!(
        "palomar_store_errors_total",
        "Group commits that failed: nothing in them was accepted, their senders retry."
    );
    describe_counter!(
        "palomar_live_queue_overflows_total",
        "Live deliveries that did not fit in a slow session's queue (the session reads them back from the store)."
    );
    describe_counter!(
        "palomar_read_backs_total",
        "Times a session read messages back from the store because its live queue had overflowed."
    );
    describe_counter!(
        "palomar_rate_limited_total",
        "Requests that waited for their account's pace (messages, or other costly requests)."
    );
    describe_gauge!("palomar_store_reads_in_flight", "Store reads queued or running (catch-ups, scrollback, logins).");
    describe_gauge!("palomar_uptime_seconds", Unit::Seconds, "Seconds since the server started.");
    describe_gauge!("palomar_build_info", "Always 1; the version is in its label.");
}

/// The process's recorder, installed by the first server that serves `/metrics`, and what it needs at each scrape.
pub struct Exporter {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    started: Instant,
}

static EXPORTER: OnceLock<Result<Exporter, String>> = OnceLock::new();

impl Exporter {
    /// Installs the process-wide Prometheus recorder, once; later calls get the same. Must come before
    /// [`Metrics::register`], whose handles would otherwise count nothing.
    pub fn install() -> Result<&'static Exporter, String> {
        EXPORTER
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full("palomar_store_commit_operations".into()),
                            OPERATIONS_BUCKETS,
                        )
                    })
                    .map_err(|e| e.to_string())?;
                let handle =
                    builder.install_recorder().map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
                let process = metrics_process::Collector::default();
                process.describe();
                metrics::gauge!("palomar_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
                Ok(Exporter { handle, process, started: Instant::now() })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The Prometheus text exposition of every metric, the process's read now.
    pub fn render(&self) -> String {
        self.process.collect();
        metrics::gauge!("palomar_uptime_seconds").set(self.started.elapsed().as_secs_f64());
        // Histograms gather their samples until upkeep folds them in; a scrape is the moment that matters.
        self.handle.run_upkeep();
        self.handle.render()
    }
}
