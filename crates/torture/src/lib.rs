//! `palomar-torture`: a Jepsen-style checker. It runs the real server binary and real line-mode clients
//! through a fault-injecting proxy ([`proxy`]), records every message typed, acknowledged and delivered,
//! injects faults (server SIGKILL and restarts, cut and half-open connections, delay, corrupted bytes,
//! client restarts, a full or read-only disk; with several nodes on PostgreSQL, a node kept down and the
//! database crashed and restarted), then checks that every acknowledged message reached every member exactly
//! once, in seq order, with the bytes that were typed, and that every outbox drained. Senders also post actions
//! and edit, delete, reply and react to their own stored messages: a message caught up after it changed must show
//! one of its edits or be blank, no reaction may be added twice or taken back without being there, and every
//! receiver must show the lobby alike (texts and reactions) once each entry is applied. The seed of each run is
//! printed so a failure can be replayed. A tool beside the product, not in it: it shells out to `mount`,
//! `strace`, `kill` and PostgreSQL's `initdb` and `pg_ctl`, which the `palomar` binary has no business doing.
//!
//! # Layout
//!
//! - `lib.rs`: the options, and the run of a scenario: start, type, inject, drain, check.
//! - `scenario`: the faults, which of them a setup can take, what `all` and `mix` mean.
//! - `faults`: each fault's injection, and the checks that belong to it.
//! - [`proxy`]: the fault-injecting TCP proxy between the clients and a node.
//! - `nodes`: the `palomar serve` processes, each behind its proxy: started, killed, stopped, started again.
//! - `postgres`: the PostgreSQL server or throwaway cluster several nodes share, a database per scenario.
//! - `client`: the `palomar chat --json` processes and their transcripts.
//! - `disk`: the full and the read-only disk under SQLite's file.
//! - `check`: a receiver's transcript checked against what was typed and acknowledged.

mod check;
mod client;
mod disk;
mod faults;
mod nodes;
mod postgres;
mod proxy;
mod scenario;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use palomar_proto::REACTIONS;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use check::{Expected, Revisions, check_receiver, late_view};
use client::ClientProcess;
use disk::{ReadOnlyFault, SmallDisk};
use nodes::Nodes;
use postgres::{OwnCluster, Store};
use proxy::Flow;
use scenario::{Fault, Scenario, Setup, StoreKind};

/// How long a sender may take to drain its outbox, and a receiver to get every acknowledged message.
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
    /// read-only, node-kill, db-restart, mix) or `all` for each this store and these nodes can take, in turn.
    /// disk-full and read-only are SQLite's (disk-full mounts a small tmpfs, so it needs root; read-only needs
    /// `strace` and the right to trace the server; without them they are skipped with a note); node-kill needs
    /// several nodes; db-restart, `--store postgres-cluster`. A scenario the setup cannot take is refused.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// The faults a mix deals, comma-separated; by default every one this store and these nodes can take but
    /// disk-full. A mix deals them in a random order, each once before any twice.
    #[arg(long, value_delimiter = ',', value_name = "FAULT,...")]
    mix: Vec<String>,
    /// Server nodes, each a `palomar serve` behind a fault proxy of its own, all on one PostgreSQL database with
    /// one TLS identity. Each client is given every node's proxy, the list turned so that the clients' first
    /// choices differ. More than one needs PostgreSQL.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    nodes: u16,
    /// Where the nodes keep their store: `sqlite` (one node only); `postgres-cluster`, a throwaway PostgreSQL
    /// cluster the checker makes with the installed `initdb` and `pg_ctl` (the only store db-restart may
    /// restart); or `postgres://USER@HOST[:PORT]/DB`, a server where USER may create databases (each scenario
    /// gets an empty one, created and dropped through DB; the password from PGPASSWORD). By default sqlite with
    /// one node, postgres-cluster with several.
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub scenarios_run: usize,
    pub skipped: usize,
    pub anomalies: usize,
    /// How many faults of each kind were injected, by name, over the scenarios run: what a mix drew shows here.
    pub faults: BTreeMap<&'static str, usize>,
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

/// What `--store` and `--nodes` ask for.
fn setup(args: &TortureArgs) -> anyhow::Result<Setup> {
    let nodes = usize::from(args.nodes);
    let store = match args.store.as_deref() {
        None if nodes == 1 => StoreKind::Sqlite,
        None | Some("postgres-cluster") => StoreKind::OwnPostgres,
        Some("sqlite") => StoreKind::Sqlite,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => StoreKind::PostgresServer,
        Some(other) => bail!("--store {other:?}: sqlite, postgres-cluster or postgres://USER@HOST[:PORT]/DB"),
    };
    if store == StoreKind::Sqlite && nodes > 1 {
        bail!(
            "several nodes share one PostgreSQL database, and SQLite's file belongs to one server: give --store \
             postgres-cluster or --store postgres://USER@HOST/DB (or no --store)"
        );
    }
    Ok(Setup { store, nodes })
}

/// Runs the scenarios `args` names, writing a line of figures per scenario (and each anomaly) to `out`.
pub fn run(args: &TortureArgs, out: &mut dyn Write) -> anyhow::Result<Summary> {
    if args.senders == 0 || args.receivers == 0 || args.messages == 0 {
        bail!("--senders, --receivers and --messages must be at least 1");
    }
    let setup = setup(args)?;
    let plan = scenario::plan(&args.scenario, &args.mix, setup)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let bin = palomar_binary(args.palomar.as_deref())?;
    let store = match (setup.store, args.store.as_deref()) {
        (StoreKind::Sqlite, _) => None,
        (StoreKind::OwnPostgres, _) => Some(Store::Own(OwnCluster::start()?)),
        (StoreKind::PostgresServer, Some(url)) => Some(Store::server(url)?),
        (StoreKind::PostgresServer, None) => bail!("a PostgreSQL server needs its URL"),
    };
    let on = store.as_ref().map_or_else(|| "SQLite".to_owned(), Store::describe);
    writeln!(out, "torture: seed {seed}, {} node(s) on {on}", setup.nodes)?;
    for (fault, reason) in &plan.left_out {
        writeln!(out, "{:<15} not part of `all` here: {reason}", fault.name())?;
    }
    // The proxies' tasks; the checker itself runs on this thread and the clients' reader threads.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the proxy's runtime")?;
    let mut anomalies = 0;
    let mut skipped = 0;
    let mut faults = BTreeMap::new();
    for (index, &scenario) in plan.scenarios.iter().enumerate() {
        let name = scenario.name();
        let scenario_seed = seed.wrapping_add(index as u64);
        // Each scenario on an empty store, as on a new SQLite file: its checks count seqs from 1.
        let database = match &store {
            Some(store) => Some(store.new_database(&format!("palomar_torture_{}_{index}", std::process::id()))?),
            None => None,
        };
        let run = Run {
            scenario,
            deck: plan.deck.clone(),
            deck_named: plan.deck_named,
            rng: StdRng::seed_from_u64(scenario_seed),
            args,
            runtime: runtime.handle(),
            bin: bin.clone(),
            dir: tempfile::tempdir().context("cannot create a temporary directory")?,
            store: store.as_ref(),
            database: database.as_ref().map(|database| database.url.as_str()),
        };
        let outcome = run.execute()?;
        drop(database);
        if let Some(reason) = outcome.skipped {
            // Not a line of figures: a scenario that did not run must not read like one that passed.
            writeln!(out, "{name:<15} seed {scenario_seed:<20} SKIPPED: {reason}")?;
            skipped += 1;
            continue;
        }
        let count: usize = outcome.faults.values().sum();
        let drawn = match scenario {
            Scenario::Mix => {
                let drawn: Vec<String> =
                    outcome.faults.iter().map(|(fault, n)| format!("{} {n}", fault.name())).collect();
                format!("  drew {}", drawn.join(", "))
            }
            Scenario::Only(_) => String::new(),
        };
        writeln!(
            out,
            "{name:<15} seed {scenario_seed:<20} faults {count:>3}  refused {:>3}  typed {:>5} (edits {:>3}, deletions {:>3}, replies {:>3}, reactions {:>3})  acknowledged {:>5}  deliveries checked {:>6}  anomalies {}  ({:.1} s){drawn}",
            outcome.refusals,
            outcome.typed,
            outcome.revisions[0],
            outcome.revisions[1],
            outcome.revisions[2],
            outcome.revisions[3],
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
        for (fault, n) in outcome.faults {
            *faults.entry(fault.name()).or_default() += n;
        }
    }
    let scenarios_run = plan.scenarios.len() - skipped;
    writeln!(out, "torture: seed {seed}, {scenarios_run} scenario(s) run, {skipped} skipped, {anomalies} anomalies")?;
    Ok(Summary { scenarios_run, skipped, anomalies, faults })
}

struct Outcome {
    /// Why the scenario could not run on this machine.
    skipped: Option<&'static str>,
    /// Faults injected, by kind.
    faults: BTreeMap<Fault, usize>,
    /// Sends the server refused because it could not store them (a full disk, the database down): they must be
    /// retried.
    refusals: usize,
    typed: usize,
    /// Of those typed, edits, deletions, replies and reactions (the rest are messages and actions).
    revisions: [usize; 4],
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
            faults: BTreeMap::new(),
            refusals: 0,
            typed: 0,
            revisions: [0; 4],
            acknowledged: 0,
            checked: 0,
            anomalies: Vec::new(),
            elapsed: started.elapsed(),
        }
    }
}

/// Everything a scenario starts: the nodes with their proxies, and the clients.
struct Chat {
    nodes: Nodes,
    senders: Vec<ClientProcess>,
    receivers: Vec<ClientProcess>,
}

impl Chat {
    fn clients(&self) -> impl Iterator<Item = &ClientProcess> {
        self.receivers.iter().chain(&self.senders)
    }
}

/// One scenario's run.
struct Run<'a> {
    scenario: Scenario,
    /// What a mix deals from.
    deck: Vec<Fault>,
    /// Whether `--mix` named the deck.
    deck_named: bool,
    rng: StdRng,
    args: &'a TortureArgs,
    runtime: &'a tokio::runtime::Handle,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The PostgreSQL store, if not SQLite.
    store: Option<&'a Store>,
    /// The URL of this scenario's database on it.
    database: Option<&'a str>,
}

/// What a sender did to its own messages, so that nothing it types is refused: a message deleted is never changed,
/// replied or reacted to again, and a reaction is taken back only when it was added.
#[derive(Default)]
struct OwnChanges {
    deleted: HashSet<u64>,
    reacted: HashSet<(u64, &'static str)>,
}

/// The next line sender `s{sender}` types, and the text it stores: mostly a message, sometimes an action, or an
/// edit, a deletion, a reply or a reaction (added or taken back) of one of its recent messages already stored.
/// Every text but a reaction's emoji is unique within the run.
fn next_line(
    sender: usize,
    n: usize,
    rng: &mut StdRng,
    transcript: &client::Transcript,
    own: &mut OwnChanges,
) -> (String, String) {
    let choice = rng.random_range(0..16);
    let stored = || -> Vec<u64> {
        transcript
            .lock()
            .iter()
            .filter(|(_, e)| e["event"] == "message" && e["own"] == true && e["conversation"] == "#lobby")
            .filter(|(_, e)| e["kind"] == "text" || e["kind"] == "action" || e["kind"] == "reply")
            .filter_map(|(_, e)| e["seq"].as_u64())
            .filter(|seq| !own.deleted.contains(seq))
            .collect()
    };
    match choice {
        0 => {
            let text = format!("s{sender} action {n}");
            (format!("/me {text}"), text)
        }
        1..=4 => {
            // Recent ones, so that readers catching up (and the late reader) get some of them already revised.
            let stored = stored();
            let candidates = &stored[stored.len().saturating_sub(10)..];
            if let Some(&seq) = candidates.get(rng.random_range(0..candidates.len().max(1))) {
                match choice {
                    1 => {
                        let text = format!("s{sender} edit {n}");
                        return (format!("/edit #{seq} {text}"), text);
                    }
                    2 => {
                        own.deleted.insert(seq);
                        own.reacted.retain(|(of, _)| *of != seq);
                        let text = format!("s{sender} reason {n}");
                        return (format!("/delete #{seq} {text}"), text);
                    }
                    3 => {
                        let text = format!("s{sender} reply {n}");
                        return (format!("/reply #{seq} {text}"), text);
                    }
                    _ => {
                        // As often a reaction taken back as one added, so that both kinds reach every reader.
                        let taken_back = own
                            .reacted
                            .iter()
                            .nth(rng.random_range(0..own.reacted.len().max(1)))
                            .copied()
                            .filter(|_| rng.random_bool(0.5));
                        if let Some((of, emoji)) = taken_back {
                            own.reacted.remove(&(of, emoji));
                            return (format!("/unreact #{of} {emoji}"), emoji.to_owned());
                        }
                        let (emoji, _) = REACTIONS[rng.random_range(0..REACTIONS.len())];
                        let command = if own.reacted.insert((seq, emoji)) {
                            "react"
                        } else {
                            own.reacted.remove(&(seq, emoji));
                            "unreact"
                        };
                        return (format!("/{command} #{seq} {emoji}"), emoji.to_owned());
                    }
                }
            }
            let line = format!("s{sender} message {n}");
            (line.clone(), line)
        }
        _ => {
            let line = format!("s{sender} message {n} {}", "x".repeat(rng.random_range(0..40)));
            (line.clone(), line)
        }
    }
}

impl Run<'_> {
    fn execute(mut self) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let _small_disk = match self.scenario {
            Scenario::Only(Fault::DiskFull) => match SmallDisk::mount(&nodes::data_dir(self.dir.path(), 0)) {
                Some(disk) => Some(disk),
                None => return Ok(Outcome::skipped("mounting a small file system needs root", started)),
            },
            _ => None,
        };
        // Whether the scenario may inject read-only, and whether it was asked for by name.
        let read_only = match self.scenario {
            Scenario::Only(fault) => (fault == Fault::ReadOnly).then_some(true),
            Scenario::Mix => self.deck.contains(&Fault::ReadOnly).then_some(self.deck_named),
        };
        if let Some(named) = read_only
            && !ReadOnlyFault::available()
        {
            if named {
                return Ok(Outcome::skipped("needs strace, and the right to trace a process", started));
            }
            // A mix of whatever this machine can do: the line of figures says what it drew.
            self.deck.retain(|fault| *fault != Fault::ReadOnly);
        }
        let settings = self.args.rate.map(|_| NO_RATE_LIMITS);
        let nodes = Nodes::start(
            &self.bin,
            self.dir.path(),
            usize::from(self.args.nodes),
            self.database,
            settings,
            self.runtime,
        )?;
        let mut anomalies = Vec::new();

        // Receivers first, so that they are there from the first message on; each client's list of nodes starts
        // at another node.
        let mut receivers = Vec::new();
        for i in 0..self.args.receivers {
            let nick = format!("r{i}");
            let servers = nodes.server_list(i);
            receivers.push(ClientProcess::start(&self.bin, &servers, &nick, &self.dir.path().join(&nick))?);
        }
        let mut senders = Vec::new();
        for i in 0..self.args.senders {
            let nick = format!("s{i}");
            let servers = nodes.server_list(self.args.receivers + i);
            senders.push(ClientProcess::start(&self.bin, &servers, &nick, &self.dir.path().join(&nick))?);
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
                let transcript = sender.transcript();
                let count = self.args.messages;
                let interval = self.args.rate.map(|rate| Duration::from_secs(1) / rate);
                let mut rng = StdRng::seed_from_u64(self.rng.random());
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut typed = 0;
                    let mut own = OwnChanges::default();
                    while typed < count {
                        let (line, text) = next_line(i, typed, &mut rng, &transcript, &mut own);
                        let written = match stdin.lock().as_mut() {
                            Some(pipe) => writeln!(pipe, "{line}").and_then(|()| pipe.flush()).is_ok(),
                            None => false,
                        };
                        if written {
                            lines.lock().insert(text);
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

        let mut chat = Chat { nodes, senders, receivers };
        let faults = self.inject_faults(&mut chat, &mut anomalies)?;
        let Chat { mut nodes, mut senders, mut receivers } = chat;
        nodes.proxies().for_each(|proxy| proxy.set_flow(Flow::Pass));
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
        let mut revisions = Revisions::default();
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
                            let text = event["text"].as_str().unwrap_or_default().to_owned();
                            revisions.typed(event["kind"].as_str(), event["of"].as_u64(), &text);
                            typed.insert(id.clone(), text);
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
        let mut first_view = None;
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
            let expected =
                Expected { typed: &typed, lines: &lines, acknowledged: &acknowledged, revisions: &revisions };
            let (deliveries, view) =
                receiver.with_events(|events| check_receiver(&receiver.nick, events, &expected, &mut anomalies));
            checked += deliveries;
            match &first_view {
                None => first_view = Some((receiver.nick.clone(), view)),
                Some((first, seen)) if *seen != view => anomalies.push(format!(
                    "{} and {first} show the lobby differently once every edit, deletion and reaction is applied",
                    receiver.nick
                )),
                Some(_) => {}
            }
        }
        // A member who comes after everything is read from the store as it is now: each message in its window must
        // show what the receivers ended up showing, every edit and deletion already applied by the store.
        if let Some((first, view)) = &first_view {
            let late = ClientProcess::start(&self.bin, &nodes.server_list(0), "late", &self.dir.path().join("late"))?;
            if !late.wait_for(|e| e["state"] == "synced", PATIENCE) {
                anomalies.push("a late reader did not catch up".to_owned());
            }
            late.with_events(|events| {
                let revised = events.iter().filter(|(_, e)| e["event"] == "message" && e["revision"] != "original");
                anomalies.extend(revised.filter_map(|(_, e)| revisions.misrevised(e)).map(|a| format!("late: {a}")));
            });
            let late_view = late.with_events(|events| late_view(events, &mut anomalies));
            let differing = late_view.iter().filter(|(seq, shown)| view.get(seq) != Some(shown)).count();
            if late_view.is_empty() || differing > 0 {
                anomalies.push(format!(
                    "a late reader shows {differing} of its {} messages otherwise than {first} does",
                    late_view.len()
                ));
            }
        }
        nodes.terminate_all();
        Ok(Outcome {
            skipped: None,
            faults,
            refusals,
            typed: typed.len(),
            revisions: revisions.counts(),
            acknowledged: acknowledged.len(),
            checked,
            anomalies,
            elapsed: started.elapsed(),
        })
    }

    fn pause(&mut self, from_ms: u64, to_ms: u64) {
        std::thread::sleep(Duration::from_millis(self.rng.random_range(from_ms..to_ms)));
    }
}
