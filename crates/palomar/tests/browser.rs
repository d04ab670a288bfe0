//! The browser client in a real headless Chromium against the real binary: `tests/browser/run.mjs` (node and
//! playwright-core) starts `palomar serve` with its web listener and a line-mode client, and drives the page as
//! a person would (sign-up, messages both ways, a reload, the server killed and restarted, hostile text, phone
//! and desktop layouts). It fails, never skips, when node, Chromium or the script's `node_modules` is missing: a
//! browser client whose browser test did not run is not tested.

use std::path::Path;
use std::process::Command;

const REMEDY: &str = "run .ci/run, or: apt-get install chromium && npm ci --prefix crates/palomar/tests/browser";

#[test]
fn the_browser_client_works_against_the_real_server() {
    let script_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("browser");
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| Path::new("/usr/bin/chromium").to_path_buf(), Into::into);
    assert!(
        chromium.exists(),
        "Chromium is not installed at {} (set CHROMIUM to another): {REMEDY}",
        chromium.display()
    );
    let playwright = script_dir.join("node_modules").join("playwright-core");
    assert!(playwright.is_dir(), "{} is missing: {REMEDY}", playwright.display());
    let output = match Command::new("node")
        .arg(script_dir.join("run.mjs"))
        .current_dir(&script_dir)
        .env("PALOMAR_BIN", env!("CARGO_BIN_EXE_palomar"))
        .env("CHROMIUM", &chromium)
        .output()
    {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            panic!("`node` was not found, and the browser test needs it (Node.js 20 or later): {REMEDY}")
        }
        Err(error) => panic!("could not run node: {error}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser test failed ({}):\n{stdout}\n{stderr}", output.status);
    println!("{stdout}");
}
