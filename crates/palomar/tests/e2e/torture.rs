//! CI's short mix of the fault-injection checker (`palomar-torture`) on this package's `palomar` binary: every
//! scenario for a few seconds, with a random seed that the output prints (replay a failure with
//! `palomar-torture --seed N --scenario NAME`).

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

/// The soak's mode: senders typing at a set rate, the server's rate limits off.
#[test]
fn a_run_at_a_set_rate_keeps_every_acknowledged_message() {
    let (report, summary) = torture(&["--scenario", "cut", "--rate", "200", "--messages", "400", "--seconds", "2"]);
    assert_eq!((summary.scenarios_run, summary.skipped, summary.anomalies), (1, 0, 0), "{report}");
    assert!(report.contains("acknowledged  1200"), "every message typed was acknowledged:\n{report}");
}
