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
    assert_eq!(report.lines().filter(|line| line.contains("anomalies 0")).count(), 11, "{report}");
    assert!(report.contains(", 0 anomalies"), "{report}");
}
