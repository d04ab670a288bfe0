//! The browser client's unit tests (`crates/server/web-tests/*.test.mjs`: its engine's outbox, cursors, acks and
//! reconnects, its commands, links, rich text and model) run by node's own test runner, so that `cargo test`
//! covers the JavaScript the server serves as it covers the Rust. Without node the test fails rather than skips: a
//! client whose tests did not run is not a tested client.

use std::path::Path;
use std::process::Command;

#[test]
fn the_browser_clients_unit_tests_pass() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = crate_dir.join("web-tests");
    let output = match Command::new("node").arg("--test").arg(&tests).current_dir(crate_dir).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "`node` was not found, and the browser client's unit tests need it (Node.js 20 or later): run .ci/run, \
             or: apt-get install nodejs"
        ),
        Err(error) => panic!("could not run `node --test {}`: {error}", tests.display()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`node --test {}` failed ({}):\n{stdout}\n{stderr}",
        tests.display(),
        output.status
    );
    // A runner that found no test file passes too: that must not pass here.
    let passed = stdout
        .lines()
        .find_map(|line| line.strip_prefix("# pass "))
        .and_then(|count| count.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(passed > 0, "`node --test {}` ran no test:\n{stdout}\n{stderr}", tests.display());
}
