//! CI's short mix of the fault-injection checker (`palomar-torture`) on this package's `palomar` binary: every
//! scenario of one server on SQLite for a few seconds, and a mix on three nodes sharing a throwaway PostgreSQL
//! cluster, with a random seed that the output prints (replay a failure with `palomar-torture --seed N
//! --scenario NAME` and the run's other flags).

use clap::Parser;
use palomar_torture::{Summary, TortureArgs};

/// Runs the checker with `flags` against the binary under test; its report, and what it came to.
fn torture(flags: &[&str]) -> (String, Summary) {
    let mut argv = vec!["palomar-torture", "--palomar", env!("CARGO_BIN_EXE_palomar")];
    argv.extend_from_slice(flags);
    let mut report = Vec::new();
    let summary = palomar_torture::run(&TortureArgs::parse_from(argv), &mut report).expect("the checker runs");
    let report = String::from_utf8_lossy(&report).into_owned();
    println!("{report}");
    (report, summary)
}

#[test]
fn every_fault_scenario_keeps_every_acknowledged_message() {
    let (report, summary) = torture(&["--scenario", "all", "--messages", "40", "--seconds", "4"]);
    assert_eq!(summary.anomalies, 0, "anomalies found:\n{report}");
    // Every scenario ran: CI installs strace and runs as root (.ci/run), so none may be skipped here.
    assert!(!report.contains("SKIPPED"), "a scenario did not run:\n{report}");
    assert_eq!((summary.scenarios_run, summary.skipped, summary.anomalies), (11, 0, 0), "{report}");
    assert_eq!(report.lines().filter(|line| line.contains("anomalies 0")).count(), 11, "{report}");
}

/// Three nodes on a throwaway PostgreSQL cluster of the checker's own, through a mix that deals each fault it
/// names at least once: a node kept down while its clients move, the database crashed and restarted under the
/// nodes, and every fault of one node or of the network that makes sense with several (half-open, whose wait
/// is ten seconds, is left to the longer runs of RELIABILITY.md).
#[test]
fn three_nodes_lose_nothing_acknowledged_when_a_node_dies_or_the_database_restarts() {
    const FAULTS: [&str; 9] =
        ["node-kill", "db-restart", "kill", "graceful", "cut", "cut-mid-frame", "delay", "corrupt", "client-restart"];
    let mix = FAULTS.join(",");
    let flags = ["--nodes", "3", "--store", "postgres-cluster", "--scenario", "mix", "--mix", &mix];
    let (report, summary) = torture(&[&flags[..], &["--messages", "30", "--seconds", "4"]].concat());
    assert_eq!(summary.anomalies, 0, "anomalies found:\n{report}");
    assert_eq!((summary.scenarios_run, summary.skipped), (1, 0), "{report}");
    assert!(!report.contains("SKIPPED"), "{report}");
    for fault in FAULTS {
        assert!(summary.faults.get(fault).is_some_and(|&n| n >= 1), "{fault} was never injected:\n{report}");
    }
}

/// A fault of SQLite's file is refused by name on PostgreSQL, before anything starts, rather than reported as a
/// scenario that found nothing.
#[test]
fn a_disk_fault_is_refused_on_postgresql() {
    let argv = ["palomar-torture", "--palomar", env!("CARGO_BIN_EXE_palomar"), "--nodes", "2", "--scenario"];
    for scenario in ["disk-full", "read-only"] {
        let args = TortureArgs::parse_from(argv.iter().copied().chain([scenario]));
        let error = palomar_torture::run(&args, &mut Vec::new()).expect_err("refused");
        assert!(error.to_string().contains("SQLite's file"), "{error}");
    }
}

/// The soak's mode: senders typing at a set rate, the server's rate limits off.
#[test]
fn a_run_at_a_set_rate_keeps_every_acknowledged_message() {
    let (report, summary) = torture(&["--scenario", "cut", "--rate", "200", "--messages", "400", "--seconds", "2"]);
    assert_eq!((summary.scenarios_run, summary.skipped, summary.anomalies), (1, 0, 0), "{report}");
    assert!(report.contains("acknowledged  1200"), "every message typed was acknowledged:\n{report}");
}
