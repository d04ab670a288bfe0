//! `palomar serve` given a configuration that is wrong: each mistake is said once, and in its own words.

use std::process::{Command, Stdio};

use crate::common::BIN;

/// Runs `palomar serve ARGS` until it stops (they all stop at once); its exit success and its stderr.
fn serve(args: &[&str], data: &std::path::Path) -> (bool, String) {
    let output = Command::new(BIN)
        .args(["serve", "--no-web", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("palomar serve runs");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_bad_configuration_file_is_explained_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("palomar.toml");
    std::fs::write(&config, "listn = \"127.0.0.1:1\"\n").expect("writes");
    let (ok, stderr) = serve(&["--config", config.to_str().expect("UTF-8")], &dir.path().join("data"));
    assert!(!ok);
    assert_eq!(stderr.matches("unknown field `listn`").count(), 1, "{stderr}");

    let missing = dir.path().join("missing.toml");
    let (ok, stderr) = serve(&["--config", missing.to_str().expect("UTF-8")], &dir.path().join("data"));
    assert!(!ok);
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");

    std::fs::write(&config, "[login]\ndelay_ms = 6000\nmax_delay_ms = 6000\n").expect("writes");
    let (ok, stderr) = serve(&["--config", config.to_str().expect("UTF-8")], &dir.path().join("data"));
    assert!(!ok);
    assert!(stderr.contains("clients give up on a login after 60 s"), "{stderr}");
}

#[test]
fn a_missing_certificate_file_is_said_to_be_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("palomar.toml");
    std::fs::write(&config, "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n")
        .expect("writes");
    let (ok, stderr) = serve(&["--config", config.to_str().expect("UTF-8")], &dir.path().join("data"));
    assert!(!ok);
    assert!(stderr.contains("tls.cert: cannot read /nonexistent/cert.pem: No such file"), "{stderr}");
    assert!(!stderr.contains("usable"), "{stderr}");
}

#[test]
fn print_config_shows_the_tls_keys_commented() {
    let output = Command::new(BIN).args(["serve", "--print-config"]).output().expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let tls = &text[text.find("[tls]").expect("a [tls] section")..];
    let tls = &tls[..tls.find("\n[").expect("another section after it")];
    assert!(tls.contains("# cert = ") && tls.contains("# key = "), "{tls}");
}
