//! CI's short mix of the fault-injection checker: every scenario for a few seconds, with a random seed that
//! the output prints (replay a failure with `palomar torture --seed N --scenario NAME`).

use std::process::Command;

#[test]
fn every_fault_scenario_keeps_every_acknowledged_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_palomar"))
        .args(["torture", "--scenario", "all", "--messages", "40", "--seconds", "4"])
        .output()
        .expect("the checker runs");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(output.status.success(), "anomalies found:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    // Every scenario ran: CI installs strace and runs as root (.ci/run), so none may be skipped here.
    assert!(!report.contains("SKIPPED"), "a scenario did not run:\n{report}");
    assert_eq!(report.lines().filter(|line| line.contains("anomalies 0")).count(), 11, "{report}");
    assert!(report.contains("11 scenario(s) run, 0 skipped, 0 anomalies"), "{report}");
}

/// The soak's mode: senders typing at a set rate, the server's rate limits off.
#[test]
fn a_run_at_a_set_rate_keeps_every_acknowledged_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_palomar"))
        .args(["torture", "--scenario", "cut", "--rate", "200", "--messages", "400", "--seconds", "2"])
        .output()
        .expect("the checker runs");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(output.status.success(), "anomalies found:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains("acknowledged  1200"), "every message typed was acknowledged:\n{report}");
    assert!(report.contains("1 scenario(s) run, 0 skipped, 0 anomalies"), "{report}");
}
