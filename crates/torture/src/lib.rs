//! `palomar-torture`: a Jepsen-style checker. It runs the real server binary and real line-mode clients
//! through a fault-injecting proxy ([`proxy`]), records every message typed, acknowledged and delivered,
//! injects faults (server SIGKILL and restarts, cut and half-open connections, delay, corrupted bytes,
//! client restarts, a full or read-only disk), then checks that every acknowledged message reached every
//! member exactly once, in seq order, with the bytes that were typed, and that every outbox drained. The seed
//! of each run is printed so a failure can be replayed. A tool beside the product, not in it: it shells out to
//! `mount`, `strace` and `kill`, which the `palomar` binary has no business doing.
//!
//! # Layout
//!
//! - `lib.rs`: the options, the run of each scenario, the faults.
//! - [`proxy`]: the fault-injecting TCP proxy between the clients and the server.
//! - `server`: the `palomar serve` process: started, killed, stopped, started again.
//! - `client`: the `palomar chat --json` processes and their transcripts.
//! - `disk`: the full and the read-only disk under SQLite's file.
//! - `check`: a receiver's transcript checked against what was typed and acknowledged.

mod check;
mod client;
mod disk;
mod proxy;
mod server;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use check::{Expected, check_receiver};
use client::ClientProcess;
use disk::{ReadOnlyFault, SmallDisk, fill_disk, truncate_wal};
use proxy::{Flow, Proxy};
use server::{ServerProcess, restart_server};

const SCENARIOS: &[&str] = &[
    "kill",
    "graceful",
    "cut",
    "cut-mid-frame",
    "half-open",
    "delay",
    "corrupt",
    "client-restart",
    "disk-full",
    "read-only",
    "mix",
];
/// Longest time the disk-full fault keeps the disk full.
const DISK_FULL_HOLD: Duration = Duration::from_secs(12);
/// Longest time the read-only fault keeps the server's writes failing.
const READ_ONLY_HOLD: Duration = Duration::from_secs(12);
/// A silent connection must be noticed within the heartbeat bound (3 × 2 s) plus this slack.
const HALF_OPEN_BOUND: Duration = Duration::from_secs(10);
const PATIENCE: Duration = Duration::from_secs(180);

/// Check Palomar's delivery guarantees under injected faults (server kills, cut and silent connections, ...).
#[derive(Parser)]
#[command(name = "palomar-torture")]
pub struct TortureArgs {
    /// The `palomar` binary under test; by default the one beside this program (`cargo build` puts them side by
    /// side), else the one on the PATH.
    #[arg(long, value_name = "PATH")]
    palomar: Option<PathBuf>,
    /// A scenario (kill, graceful, cut, cut-mid-frame, half-open, delay, corrupt, client-restart, disk-full,
    /// read-only, mix) or `all` for each in turn. disk-full mounts a small tmpfs, so it needs root; read-only
    /// needs `strace` and the right to trace the server; without them they are skipped with a note.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Seed of the random choices (printed, so a failing run can be replayed); random if not given.
    #[arg(long)]
    seed: Option<u64>,
    /// Clients that type messages.
    #[arg(long, default_value_t = 3)]
    senders: usize,
    /// Clients that only read.
    #[arg(long, default_value_t = 2)]
    receivers: usize,
    /// Messages each sender types.
    #[arg(long, default_value_t = 150)]
    messages: usize,
    /// How long faults are injected, per scenario.
    #[arg(long, default_value_t = 12)]
    seconds: u64,
    /// Messages each sender types per second, evenly (for a soak: hundreds). The server then runs with its
    /// rate limits off, as `palomar bench --spawn` does, so that the run measures delivery, not the limits.
    /// Without it, senders type at an irregular human-ish pace (1 to 25 ms apart) under the default limits.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: Option<u32>,
}

/// The server's configuration for a run at a set rate: one address and a few accounts typing far faster than
/// people do, which the default limits would (rightly) slow down.
const NO_RATE_LIMITS: &str = "[limits]\nmessages_per_sec_per_user = 0\nrequests_per_sec_per_user = 0\n\
                              new_connections_per_sec = 0\nnew_connections_per_sec_per_ip = 0\n\
                              registrations_per_sec = 0\nregistrations_per_sec_per_ip = 0\n";

/// What a run came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub scenarios_run: usize,
    pub skipped: usize,
    pub anomalies: usize,
}

/// The `palomar` binary to test: `--palomar`, else the one beside this program, else `palomar` on the PATH.
fn palomar_binary(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path.to_owned());
    }
    let own = std::env::current_exe().context("cannot find where this program is")?;
    let beside = own.with_file_name(format!("palomar{}", std::env::consts::EXE_SUFFIX));
    Ok(if beside.is_file() { beside } else { PathBuf::from("palomar") })
}

/// Runs the scenarios `args` names, writing a line of figures per scenario (and each anomaly) to `out`.
pub fn run(args: &TortureArgs, out: &mut dyn Write) -> anyhow::Result<Summary> {
    let scenarios: Vec<&str> = match args.scenario.as_str() {
        "all" => SCENARIOS.to_vec(),
        name if SCENARIOS.contains(&name) => vec![name],
        other => bail!("unknown scenario {other:?}; one of {} or all", SCENARIOS.join(", ")),
    };
    if args.senders == 0 || args.receivers == 0 || args.messages == 0 {
        bail!("--senders, --receivers and --messages must be at least 1");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let bin = palomar_binary(args.palomar.as_deref())?;
    // The proxy's tasks; the checker itself runs on this thread and the clients' reader threads.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the proxy's runtime")?;
    let mut anomalies = 0;
    let mut skipped = 0;
    for (index, scenario) in scenarios.iter().enumerate() {
        let scenario_seed = seed.wrapping_add(index as u64);
        let outcome = Run::new(scenario, scenario_seed, args, runtime.handle(), &bin)?.execute()?;
        if let Some(reason) = outcome.skipped {
            // Not a line of figures: a scenario that did not run must not read like one that passed.
            writeln!(out, "{scenario:<15} seed {scenario_seed:<20} SKIPPED: {reason}")?;
            skipped += 1;
            continue;
        }
        writeln!(
            out,
            "{scenario:<15} seed {scenario_seed:<20} faults {:>3}  refused {:>3}  typed {:>5}  acknowledged {:>5}  deliveries checked {:>6}  anomalies {}  ({:.1} s)",
            outcome.faults,
            outcome.refusals,
            outcome.typed,
            outcome.acknowledged,
            outcome.checked,
            outcome.anomalies.len(),
            outcome.elapsed.as_secs_f64()
        )?;
        for anomaly in &outcome.anomalies {
            writeln!(out, "  ANOMALY: {anomaly}")?;
        }
        out.flush()?;
        anomalies += outcome.anomalies.len();
    }
    let scenarios_run = scenarios.len() - skipped;
    writeln!(out, "torture: seed {seed}, {scenarios_run} scenario(s) run, {skipped} skipped, {anomalies} anomalies")?;
    Ok(Summary { scenarios_run, skipped, anomalies })
}

struct Outcome {
    /// Why the scenario could not run on this machine.
    skipped: Option<&'static str>,
    faults: usize,
    /// Sends the server refused because it could not store them (a full disk): they must be retried.
    refusals: usize,
    typed: usize,
    acknowledged: usize,
    checked: usize,
    anomalies: Vec<String>,
    elapsed: Duration,
}

impl Outcome {
    /// A scenario this machine cannot run.
    fn skipped(reason: &'static str, started: Instant) -> Outcome {
        Outcome {
            skipped: Some(reason),
            faults: 0,
            refusals: 0,
            typed: 0,
            acknowledged: 0,
            checked: 0,
            anomalies: Vec::new(),
            elapsed: started.elapsed(),
        }
    }
}

/// Everything a run starts: the server, the proxy in front of it, and the clients.
struct Cluster {
    server: ServerProcess,
    server_addr: String,
    data: PathBuf,
    /// The server's configuration file, when the run needs one.
    config: Option<PathBuf>,
    proxy: Proxy,
    senders: Vec<ClientProcess>,
    receivers: Vec<ClientProcess>,
}

struct Run<'a> {
    scenario: &'a str,
    rng: StdRng,
    args: &'a TortureArgs,
    runtime: &'a tokio::runtime::Handle,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl<'a> Run<'a> {
    fn new(
        scenario: &'a str,
        seed: u64,
        args: &'a TortureArgs,
        runtime: &'a tokio::runtime::Handle,
        bin: &Path,
    ) -> anyhow::Result<Self> {
        Ok(Run {
            scenario,
            rng: StdRng::seed_from_u64(seed),
            args,
            runtime,
            bin: bin.to_owned(),
            dir: tempfile::tempdir().context("cannot create a temporary directory")?,
        })
    }

    fn execute(mut self) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let data = self.dir.path().join("data");
        let _small_disk = match self.scenario {
            "disk-full" => match SmallDisk::mount(&data) {
                Some(disk) => Some(disk),
                None => return Ok(Outcome::skipped("mounting a small file system needs root", started)),
            },
            "read-only" if !ReadOnlyFault::available() => {
                return Ok(Outcome::skipped("needs strace, and the right to trace a process", started));
            }
            _ => None,
        };
        let config = match self.args.rate {
            Some(_) => {
                let path = self.dir.path().join("server.toml");
                std::fs::write(&path, NO_RATE_LIMITS).context("cannot write the server's configuration")?;
                Some(path)
            }
            None => None,
        };
        let (server, server_addr) = ServerProcess::start(&self.bin, &data, config.as_deref(), "127.0.0.1:0")?;
        let proxy = self.runtime.block_on(Proxy::start(server_addr.clone()))?;
        let mut anomalies = Vec::new();

        let mut receivers = Vec::new();
        for i in 0..self.args.receivers {
            let nick = format!("r{i}");
            receivers.push(ClientProcess::start(&self.bin, &proxy.addr, &nick, &self.dir.path().join(&nick))?);
        }
        let mut senders = Vec::new();
        for i in 0..self.args.senders {
            let nick = format!("s{i}");
            senders.push(ClientProcess::start(&self.bin, &proxy.addr, &nick, &self.dir.path().join(&nick))?);
        }
        for client in receivers.iter().chain(senders.iter()) {
            if !client.wait_for(|e| e["state"] == "connected", Duration::from_secs(60)) {
                bail!("{} did not connect", client.nick);
            }
        }

        // Each sender types its messages on a thread of its own: at a human-ish, irregular pace, or at the rate
        // asked for, on a schedule that a slow moment does not shift.
        let typing: Vec<_> = senders
            .iter()
            .enumerate()
            .map(|(i, sender)| {
                let stdin = sender.stdin.clone();
                let lines = sender.lines.clone();
                let count = self.args.messages;
                let interval = self.args.rate.map(|rate| Duration::from_secs(1) / rate);
                let mut rng = StdRng::seed_from_u64(self.rng.random());
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut typed = 0;
                    while typed < count {
                        let line = format!("s{i} message {typed} {}", "x".repeat(rng.random_range(0..40)));
                        let written = match stdin.lock().as_mut() {
                            Some(pipe) => writeln!(pipe, "{line}").and_then(|()| pipe.flush()).is_ok(),
                            None => false,
                        };
                        if written {
                            lines.lock().insert(line);
                            typed += 1;
                        }
                        match interval {
                            Some(interval) => {
                                let due = started + interval * u32::try_from(typed).unwrap_or(u32::MAX);
                                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                            }
                            None => std::thread::sleep(Duration::from_millis(rng.random_range(1..25))),
                        }
                    }
                })
            })
            .collect();

        let mut cluster = Cluster { server, server_addr, data, config, proxy, senders, receivers };
        let faults = self.inject_faults(&mut cluster, &mut anomalies)?;
        let Cluster { mut server, proxy, mut senders, mut receivers, .. } = cluster;
        proxy.set_flow(Flow::Pass);
        for thread in typing {
            let _ = thread.join();
        }

        // Every sender must drain its outbox and exit 0.
        for sender in &mut senders {
            match sender.finish(PATIENCE) {
                Some(status) if status.success() => {}
                Some(status) => {
                    anomalies.push(format!("{} exited with {status}: its outbox did not drain", sender.nick))
                }
                None => anomalies.push(format!("{} did not exit in time", sender.nick)),
            }
        }
        let mut typed: HashMap<String, String> = HashMap::new();
        let mut acknowledged: HashSet<String> = HashSet::new();
        let mut refusals = 0;
        for sender in &senders {
            // Typed, then the process killed: the acknowledgement may have been saved (the message left the
            // outbox) and not printed yet.
            let mut cut_short = Vec::new();
            sender.with_events(|events| {
                let mut queued_at = HashMap::new();
                for (at, event) in events {
                    if event["code"] == "StoreUnavailable" {
                        refusals += 1;
                    }
                    let id = event["id"].as_str().unwrap_or_default().to_owned();
                    match event["event"].as_str() {
                        Some("queued") => {
                            typed.insert(id.clone(), event["text"].as_str().unwrap_or_default().to_owned());
                            queued_at.insert(id, *at);
                        }
                        Some("accepted") => {
                            queued_at.remove(&id);
                            acknowledged.insert(id);
                        }
                        _ => {}
                    }
                }
                for (id, at) in queued_at {
                    if sender.restarts.iter().any(|restart| *restart > at) {
                        cut_short.push(id);
                    } else {
                        anomalies.push(format!("message {id} was typed but never acknowledged"));
                    }
                }
            });
            // Such a message was acknowledged all the same if the server stored it: then every receiver must have
            // it once, as any other (a message the restarted client still had would have been acknowledged).
            acknowledged.extend(cut_short);
        }
        let lines: HashSet<String> = senders.iter().flat_map(|sender| sender.lines.lock().clone()).collect();

        let mut checked = 0;
        for receiver in &mut receivers {
            let all_there = |events: &[(Instant, Value)]| {
                let seen: HashSet<&str> = events
                    .iter()
                    .filter(|(_, e)| e["event"] == "message")
                    .filter_map(|(_, e)| e["id"].as_str())
                    .collect();
                acknowledged.iter().all(|id| seen.contains(id.as_str()))
            };
            let deadline = Instant::now() + PATIENCE;
            while !receiver.with_events(all_there) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(250));
            }
            receiver.finish(Duration::from_secs(60));
            let expected = Expected { typed: &typed, lines: &lines, acknowledged: &acknowledged };
            checked += receiver.with_events(|events| check_receiver(&receiver.nick, events, &expected, &mut anomalies));
        }
        server.terminate();
        Ok(Outcome {
            skipped: None,
            faults,
            refusals,
            typed: typed.len(),
            acknowledged: acknowledged.len(),
            checked,
            anomalies,
            elapsed: started.elapsed(),
        })
    }

    fn pause(&mut self, from_ms: u64, to_ms: u64) {
        std::thread::sleep(Duration::from_millis(self.rng.random_range(from_ms..to_ms)));
    }

    fn inject_faults(&mut self, cluster: &mut Cluster, anomalies: &mut Vec<String>) -> anyhow::Result<usize> {
        let Cluster { server, server_addr, data, config, proxy, senders, receivers } = cluster;
        let end = Instant::now() + Duration::from_secs(self.args.seconds);
        let mut faults = 0;
        let read_only = ReadOnlyFault::available();
        let kinds: Vec<&str> = SCENARIOS
            .iter()
            .copied()
            .filter(|k| !matches!(*k, "mix" | "disk-full") && (*k != "read-only" || read_only))
            .collect();
        while Instant::now() < end {
            self.pause(300, 2_000);
            let kind =
                if self.scenario == "mix" { kinds[self.rng.random_range(0..kinds.len())] } else { self.scenario };
            faults += 1;
            match kind {
                "kill" | "graceful" => {
                    if kind == "kill" {
                        server.kill()
                    } else {
                        server.terminate()
                    }
                    self.pause(100, 1_500);
                    *server = restart_server(&self.bin, data, config.as_deref(), server_addr)?;
                }
                "cut" => proxy.cut_all(),
                "cut-mid-frame" => proxy.cut_mid_frame(),
                "corrupt" => proxy.corrupt_next(),
                "delay" => {
                    proxy.set_flow(Flow::Delay(Duration::from_millis(self.rng.random_range(2..40))));
                    self.pause(500, 2_500);
                    proxy.set_flow(Flow::Pass);
                }
                "half-open" => {
                    let since = Instant::now();
                    proxy.set_flow(Flow::Blackhole);
                    // A receiver waiting to reconnect when the silence began meets it only at its next attempt
                    // (up to the 10 s of the longest backoff later): it is held to the bound from then on.
                    let deadlines: Vec<Instant> =
                        receivers.iter().map(|client| client.next_attempt(since) + HALF_OPEN_BOUND).collect();
                    let until = deadlines.iter().copied().max().unwrap_or(since + HALF_OPEN_BOUND);
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    proxy.set_flow(Flow::Pass);
                    for (client, deadline) in receivers.iter().zip(deadlines) {
                        let noticed = client.with_events(|events| {
                            events
                                .iter()
                                .rev()
                                .any(|(at, e)| *at > since && *at <= deadline && e["state"] == "disconnected")
                        });
                        if !noticed {
                            // Where the client stood when the silence began, to tell a connection it missed from
                            // one it was still making.
                            let before = client.with_events(|events| {
                                events.iter().rev().find(|(at, e)| *at <= since && e["event"] == "status").map_or_else(
                                    || "nothing".to_owned(),
                                    |(at, e)| format!("{} {:.1} s before", e, since.duration_since(*at).as_secs_f64()),
                                )
                            });
                            anomalies.push(format!(
                                "{} did not notice a silent connection within {} s of meeting it (its last status \
                                 before: {before})",
                                client.nick,
                                HALF_OPEN_BOUND.as_secs()
                            ));
                        }
                    }
                    proxy.cut_all();
                }
                "disk-full" => {
                    // Only where the store sits on the small file system (not in a mix).
                    // SQLite reuses the space of its write-ahead log, so a full disk shows only when the log
                    // must grow: empty it first, then fill the disk, and hold it full until a send is refused
                    // (or long enough that one should have been).
                    truncate_wal(&data.join("store.sqlite"));
                    if let Some(filler) = fill_disk(data) {
                        let since = Instant::now();
                        // Typing may be over by now: one more line makes sure that a send meets the fault.
                        let which = self.rng.random_range(0..senders.len());
                        senders[which].type_line(&format!("s{which} typed while the disk is full ({faults})"));
                        let refused = |sender: &ClientProcess| {
                            sender.with_events(|events| {
                                events.iter().rev().any(|(at, e)| *at > since && e["code"] == "StoreUnavailable")
                            })
                        };
                        while since.elapsed() < DISK_FULL_HOLD && !senders.iter().any(refused) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        self.pause(200, 1_500);
                        let _ = std::fs::remove_file(filler);
                    }
                }
                "read-only" => {
                    // The store's disk turns read-only: every file write of the server fails with EROFS until
                    // the fault is lifted. Sends must be refused, not acknowledged, while reads go on.
                    let fault = ReadOnlyFault::inject(server.child.id())?;
                    let since = Instant::now();
                    // Typing may be over by now: one more line makes sure that a send meets the fault.
                    let which = self.rng.random_range(0..senders.len());
                    senders[which].type_line(&format!("s{which} typed while the disk is read-only ({faults})"));
                    let refused_since = |senders: &[ClientProcess]| -> HashSet<String> {
                        let refused = |events: &[(Instant, Value)]| -> Vec<String> {
                            events
                                .iter()
                                .filter(|(at, e)| *at > since && e["code"] == "StoreUnavailable")
                                .filter_map(|(_, e)| e["id"].as_str().map(str::to_owned))
                                .collect()
                        };
                        senders.iter().flat_map(|sender| sender.with_events(refused)).collect()
                    };
                    while since.elapsed() < READ_ONLY_HOLD && refused_since(senders).is_empty() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    self.pause(200, 1_500);
                    drop(fault);
                    // The same process must recover by itself: every send refused meanwhile is accepted when
                    // its client retries.
                    let refused = refused_since(senders);
                    let accepted = |senders: &[ClientProcess]| -> HashSet<String> {
                        let accepted = |events: &[(Instant, Value)]| -> Vec<String> {
                            events
                                .iter()
                                .filter(|(_, e)| e["event"] == "accepted")
                                .filter_map(|(_, e)| e["id"].as_str().map(str::to_owned))
                                .collect()
                        };
                        senders.iter().flat_map(|sender| sender.with_events(accepted)).collect()
                    };
                    let lifted = Instant::now();
                    while lifted.elapsed() < PATIENCE / 6 && !refused.is_subset(&accepted(senders)) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    let stuck = refused.difference(&accepted(senders)).count();
                    if stuck > 0 {
                        anomalies.push(format!(
                            "{stuck} send(s) refused while the disk was read-only were not accepted within {} s \
                             of it being writable again",
                            (PATIENCE / 6).as_secs()
                        ));
                    }
                    // Then a SIGKILL: an acknowledgement of anything that was not on disk would show as a loss.
                    server.kill();
                    *server = restart_server(&self.bin, data, config.as_deref(), server_addr)?;
                }
                "client-restart" => {
                    let which = self.rng.random_range(0..senders.len());
                    senders[which].restart(&self.bin, &proxy.addr)?;
                }
                other => bail!("no such fault {other}"),
            }
        }
        Ok(faults)
    }
}
