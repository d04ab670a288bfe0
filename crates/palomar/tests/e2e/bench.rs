//! Smoke test of `palomar bench`: a tiny run of the real binary against a server it spawns and against the
//! reference relay, checked for correctness only. No timing is asserted: figures depend on the machine.

use std::process::Command;

use crate::common::BIN;
use palomar_test_postgres::TestDatabase;
use serde_json::Value;

fn checked_clean(report: &Value, target: &str, messages: u64, receivers: u64) {
    let figures = &report[target];
    assert_eq!(figures["sent"], messages, "{target}: {figures}");
    assert_eq!(figures["acked"], messages, "{target}: {figures}");
    assert_eq!(figures["deliveries"], messages * receivers, "{target}: {figures}");
    for count in ["lost", "duplicated", "reordered", "unacknowledged", "errors"] {
        assert_eq!(figures[count], 0, "{target}: {count} in {figures}");
    }
    assert_eq!(figures["stalled"], false, "{target}: {figures}");
    for latency in ["ack_latency_us", "delivery_latency_us"] {
        let percentiles = &figures[latency];
        assert!(percentiles["p50"].as_u64() <= percentiles["max"].as_u64(), "{target}: {percentiles}");
    }
}

/// Runs `palomar bench ARGS --json`, which must succeed, and reads its report.
fn bench_report(args: &[&str]) -> Value {
    let output = Command::new(BIN).arg("bench").args(args).arg("--json").output().expect("palomar bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"))
}

#[test]
fn a_tiny_bench_run_is_clean_on_palomar_and_on_the_reference_relay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plot = dir.path().join("latency.svg");
    let plot_arg = plot.to_str().expect("a UTF-8 path");
    let report = bench_report(&[
        "--spawn",
        "--clients",
        "3",
        "--senders",
        "1",
        "--messages",
        "20",
        "--reference-relay",
        "--plot",
        plot_arg,
    ]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["scenario"]["server"], "spawned");
    assert_eq!(report["scenario"]["durability"], "full");
    // One room of 3: each message reaches all 3 members, its sender too.
    checked_clean(&report, "palomar", 20, 3);
    checked_clean(&report, "reference_relay", 20, 3);
    assert!(report["palomar"]["server_cpu_secs"].is_number(), "a spawned server's CPU time is reported");
    assert!(report["palomar_vs_relay"]["deliveries_per_sec"].is_number());
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{svg}");
}

/// Three nodes on one database: the clients spread over them, and every message reaches every member of the room
/// whichever node each is on; the database's CPU is reported beside the nodes'.
#[test]
fn a_bench_run_spread_over_three_nodes_is_clean() {
    let database = TestDatabase::create();
    let report = bench_report(&[
        "--spawn",
        "--nodes",
        "3",
        "--store",
        database.url(),
        "--clients",
        "6",
        "--senders",
        "3",
        "--messages",
        "20",
        "--in-flight",
        "4",
    ]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["scenario"]["nodes"], 3);
    assert_eq!(report["scenario"]["on_postgres"], true);
    checked_clean(&report, "palomar", 60, 6);
    assert!(report["palomar"]["database_cpu_secs"].is_number(), "{report}");
}

#[test]
fn several_nodes_need_a_shared_database() {
    let output = Command::new(BIN)
        .args(["bench", "--spawn", "--nodes", "2", "--clients", "2", "--messages", "1"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("share one PostgreSQL database"), "{stderr}");
}

#[test]
fn impossible_scenarios_are_refused_before_connecting() {
    let output =
        Command::new(BIN).args(["bench", "--spawn", "--clients", "2", "--senders", "3"]).output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("senders need at least as many clients"), "{stderr}");
}
