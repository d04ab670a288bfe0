//! # palomar-bench: the load generator behind `palomar bench`
//!
//! In the spirit of `redis-benchmark`: many client connections from one process speak the real protocol (TLS,
//! HMAC-tagged frames, accounts) to a Palomar server, and the report says what users feel: acknowledged
//! messages and deliveries per second, latency from send to acknowledgement and from send to delivery, and
//! whether anything was lost, duplicated or reordered (which must never happen). `--reference-relay` runs the
//! same load, with the same code, against a minimal relay in this process, so every report can state Palomar
//! as a fraction of the practical limit of this machine measured in the same run.
//!
//! # Layout
//! - `scenario`: who is in which room, who sends how much how fast, and the text of each message.
//! - `wire`: what the load needs of a connection, so both targets are driven by the same code.
//! - `palomar_wire`: a lean client of the real protocol (no outbox, no disk).
//! - `relay`: the reference relay and its client.
//! - `load`: connects the clients, runs senders and receivers, drains, and measures.
//! - `histogram`: latency histograms.
//! - `spawn` and `usage`: servers started for the run, and CPU and memory figures from /proc.
//! - `progress`, `report` and `plot`: the progress bar, the table or JSON, and the SVG picture.

mod histogram;
mod load;
mod palomar_wire;
mod plot;
mod progress;
mod relay;
mod report;
mod scenario;
mod spawn;
mod usage;
mod wire;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use palomar_transport::{Fingerprint, TrustDecision};

use crate::load::Measurement;
use crate::palomar_wire::PalomarWire;
use crate::plot::Curve;
use crate::progress::Progress;
use crate::relay::{Relay, RelayWire};
use crate::report::{Report, ScenarioReport, SpawnedReport, TargetReport};
use crate::scenario::{Scenario, Stop};
use crate::spawn::{Durability, SpawnedNodes};

const DEFAULT_SERVER: &str = "127.0.0.1:5555";

/// `palomar bench`: load a server with many clients and report throughput, latency and correctness.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Client i (nickname b<i>) joins room bench-<i mod ROOMS>; the first SENDERS clients send. \
    Every member of a room receives each of its messages, the sender too. Connecting and logging in are not \
    measured. Exits 1 when anything was lost, duplicated, reordered or left unacknowledged.")]
pub struct BenchArgs {
    /// Server to load, HOST:PORT [default: 127.0.0.1:5555]; several nodes of one chat as a comma-separated
    /// list, over which the clients are spread (client i connects to the (i mod N)th).
    #[arg(long, conflicts_with = "spawn")]
    server: Option<String>,
    /// Certificate fingerprint of --server (SHA256:...), the same on every node; without it any certificate is
    /// accepted.
    #[arg(long, conflicts_with = "spawn")]
    fingerprint: Option<String>,
    /// Start a server for this run (this binary's `serve`) on a free port with a temporary data directory;
    /// its CPU time and peak memory are reported.
    #[arg(long)]
    spawn: bool,
    /// Store durability of the spawned server: "full" syncs every commit, "normal" only at checkpoints.
    #[arg(long, value_enum, default_value = "full", requires = "spawn")]
    durability: Durability,
    /// Keep the spawned server's store in this PostgreSQL database (an empty one: accounts and messages of an
    /// earlier run would be read back) instead of its temporary directory.
    #[arg(long, requires = "spawn", value_name = "postgres://USER@HOST/DATABASE")]
    store: Option<String>,
    /// Spawn this many server nodes on the --store database, sharing the first one's TLS identity, and spread
    /// the clients over them; CPU and memory are their sums.
    #[arg(long, default_value_t = 1, requires = "spawn")]
    nodes: usize,
    /// Password of the bench accounts; the first login with a free nickname registers it.
    #[arg(long, default_value = "palomar-bench")]
    password: String,
    /// Client connections, each its own account.
    #[arg(long, short = 'c', default_value_t = 10)]
    clients: usize,
    /// Rooms the clients are spread over.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Clients that send.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Size of each message text in bytes (48 to 8192).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages per sender that have not yet reached every member of the room; with 1 each message waits
    /// until the previous one has arrived everywhere.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Messages per second per sender [default: flat out].
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0, conflicts_with = "messages")]
    duration: f64,
    /// Messages per sender, instead of a duration.
    #[arg(long)]
    messages: Option<u64>,
    /// Also run the same load against a minimal in-process relay (plain TCP, no TLS, no HMAC, no storage)
    /// and report Palomar as a fraction of it.
    #[arg(long)]
    reference_relay: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write the latency distributions as an SVG picture to this file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

impl BenchArgs {
    fn scenario(&self) -> anyhow::Result<Scenario> {
        let stop = match self.messages {
            Some(count) => Stop::Messages(count),
            None if self.duration.is_finite() && self.duration > 0.0 => {
                Stop::After(Duration::from_secs_f64(self.duration))
            }
            None => anyhow::bail!("the duration must be a positive number of seconds"),
        };
        let scenario = Scenario {
            clients: self.clients,
            rooms: self.rooms,
            senders: self.senders,
            text_bytes: self.size,
            in_flight: self.in_flight,
            rate_per_sender: self.rate,
            stop,
            run_id: rand::random(),
        };
        scenario.validate().map_err(anyhow::Error::msg)?;
        Ok(scenario)
    }
}

/// Runs `palomar bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let scenario = args.scenario()?;
    let progress = Progress::new(!args.json && std::io::stderr().is_terminal());
    let (server, spawned_report, palomar) = if args.spawn {
        let spawned = SpawnedNodes::start(args.durability, args.store.as_deref(), scenario.clients, args.nodes).await?;
        let spawned_report =
            SpawnedReport { durability: args.durability, nodes: spawned.len(), on_postgres: spawned.on_postgres() };
        let wire = PalomarWire::new(
            &spawned.addresses(),
            TrustDecision::Pinned(spawned.fingerprint()),
            args.password.clone(),
        )?;
        let measured = load::run(wire, &scenario, &spawned, false, "palomar", &progress).await;
        spawned.stop().await;
        ("spawned".to_owned(), Some(spawned_report), measured?)
    } else {
        let list = args.server.clone().unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let addresses: Vec<String> = list.split(',').map(|address| address.trim().to_owned()).collect();
        if addresses.iter().any(String::is_empty) {
            anyhow::bail!("--server {list:?} has an empty address in it");
        }
        let trust = match &args.fingerprint {
            Some(text) => {
                TrustDecision::Pinned(Fingerprint::parse(text).context("--fingerprint is not a fingerprint")?)
            }
            None => TrustDecision::FirstUse,
        };
        let wire = PalomarWire::new(&addresses, trust, args.password.clone())?;
        let measured = load::run(wire, &scenario, &usage::Unobserved, false, "palomar", &progress).await?;
        (list, None, measured)
    };
    let relay = if args.reference_relay {
        let relay = Relay::start()?;
        let wire = RelayWire::new(relay.addr());
        Some(load::run(wire, &scenario, &relay, true, "reference relay", &progress).await?)
    } else {
        None
    };
    progress.clear();

    let scenario_report = ScenarioReport::new(&scenario, server, spawned_report);
    if let Some(path) = &args.plot {
        let picture = plot::svg(&scenario_report.describe(), &curves(&palomar, relay.as_ref()));
        std::fs::write(path, picture).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let report = Report::new(scenario_report, TargetReport::new(&palomar), relay.as_ref().map(TargetReport::new));
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn curves<'a>(palomar: &'a Measurement, relay: Option<&'a Measurement>) -> Vec<Curve<'a>> {
    let mut curves = vec![
        Curve {
            label: "Palomar: delivery".into(),
            histogram: &palomar.delivery_latency,
            color: "#1f6fb4",
            dashed: false,
        },
        Curve {
            label: "Palomar: acknowledgement".into(),
            histogram: &palomar.ack_latency,
            color: "#1f6fb4",
            dashed: true,
        },
    ];
    if let Some(relay) = relay {
        curves.push(Curve {
            label: "relay: delivery".into(),
            histogram: &relay.delivery_latency,
            color: "#d0402b",
            dashed: false,
        });
        curves.push(Curve {
            label: "relay: acknowledgement".into(),
            histogram: &relay.ack_latency,
            color: "#d0402b",
            dashed: true,
        });
    }
    curves
}
