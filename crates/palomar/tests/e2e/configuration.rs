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

#[test]
fn shells_and_man_get_what_they_need() {
    let run = |args: &[&str]| {
        let output = Command::new(BIN).args(args).output().expect("runs");
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("_palomar()") && bash.contains("--web-listen"), "{bash}");
    assert!(run(&["completions", "zsh"]).starts_with("#compdef palomar"));
    assert!(run(&["completions", "fish"]).contains("complete -c palomar"));
    let refused = Command::new(BIN).args(["completions", "tcsh"]).output().expect("runs");
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("bash"));

    let page = run(&["manpage"]);
    assert!(page.contains(".TH palomar 1") && page.contains("serve"), "{page}");
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = dir.path().join("man1");
    run(&["manpage", "--dir", pages.to_str().expect("UTF-8")]);
    for name in ["palomar.1", "palomar-serve.1", "palomar-chat.1"] {
        let text = std::fs::read_to_string(pages.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.starts_with(".ie"), "{name} is a roff page: {text}");
    }
}

#[test]
fn logs_can_be_one_json_object_per_line() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Command::new(BIN)
        .args(["serve", "--no-web", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .env("PALOMAR_LOG_FORMAT", "json")
        .env("PALOMAR_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("palomar serve runs");
    let mut stdout = std::io::BufReader::new(server.stdout.take().expect("stdout")).lines();
    let listening = stdout.by_ref().map_while(Result::ok).any(|line| line.contains("listening on"));
    assert!(listening, "the server started");
    // A graceful stop is logged (at info), so there is something to read.
    let stopped = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill runs");
    assert!(stopped.success());
    let stderr = std::io::BufReader::new(server.stderr.take().expect("stderr"));
    let lines: Vec<String> = stderr.lines().map_while(Result::ok).collect();
    let _ = server.wait();
    drop(stdout);
    assert!(!lines.is_empty(), "the stop was logged");
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["level"].is_string() && event["timestamp"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|line| line.contains("everything acknowledged is on disk")), "{lines:?}");
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/palomar.service"))
        .expect("contrib/palomar.service");
    assert!(unit.contains("\nExecStart=palomar serve "), "the unit starts the installed binary, wherever it is");
    // systemd-analyze checks that ExecStart's program exists: the one under test stands in for the installed one.
    let dir = tempfile::tempdir().expect("temp dir");
    let checked = dir.path().join("palomar.service");
    std::fs::write(&checked, unit.replace("\nExecStart=palomar ", &format!("\nExecStart={BIN} "))).expect("writes");
    let output = match Command::new("systemd-analyze").arg("verify").arg(&checked).output() {
        Ok(output) => output,
        Err(error) => panic!("systemd-analyze cannot run ({error}): run .ci/run, or apt-get install systemd"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
}
