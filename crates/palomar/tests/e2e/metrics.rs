//! The operator's listener with the real binary: `/metrics` after real traffic, whose counters moved by what
//! the clients did; `/healthz`; `/readyz` while the store takes writes, and not while another process holds its
//! write lock.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{ClientSpec, PATIENCE, Server, run_client};

/// `GET path` on the admin listener: the status code and the body.
fn get(server: &Server, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(&server.admin_addr).expect("connects to the admin listener");
    tcp.set_read_timeout(Some(PATIENCE)).expect("sets a timeout");
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.admin_addr).expect("sends");
    let mut response = String::new();
    tcp.read_to_string(&mut response).expect("reads the answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status code");
    (status, body.to_owned())
}

/// Every sample of the exposition, by its name with labels as written (`palomar_logins_total{outcome="ok"}`).
pub(crate) fn scrape(server: &Server) -> HashMap<String, f64> {
    let (status, body) = get(server, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect("a sample is a name and a value");
            (name.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

pub(crate) fn value(samples: &HashMap<String, f64>, name: &str) -> f64 {
    *samples.get(name).unwrap_or_else(|| panic!("no {name} in {samples:#?}"))
}

/// The metric names in the Grafana dashboard's queries (`palomar_…`, `process_…`).
fn dashboard_metric_names() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("reads the dashboard")).expect("valid JSON");
    let mut names = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a query");
            let mut rest = expr;
            while let Some(start) = rest.find("palomar_").into_iter().chain(rest.find("process_")).min() {
                let name: String = rest[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                rest = &rest[start + name.len()..];
                names.push(name);
            }
        }
    }
    names
}

/// A dashboard that asks for a name the server does not export shows an empty panel, not an error.
fn dashboard_asks_only_for_what_the_server_exports(samples: &HashMap<String, f64>) {
    let exported: std::collections::HashSet<&str> =
        samples.keys().map(|key| key.split_once('{').map_or(key.as_str(), |(name, _)| name)).collect();
    let names = dashboard_metric_names();
    assert!(names.len() >= 20, "the dashboard's queries: {names:?}");
    let missing: Vec<&String> = names.iter().filter(|name| !exported.contains(name.as_str())).collect();
    assert!(missing.is_empty(), "the dashboard asks for metrics the server does not export: {missing:?}");
}

fn spec<'a>(server: &'a Server, nick: &'a str, password: &'a str, home: &'a Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password, home, extra: &[] }
}

#[test]
fn metrics_count_what_clients_did_and_health_says_whether_the_store_takes_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_on(&dir.path().join("data"), "127.0.0.1:0", &["--admin-listen", "127.0.0.1:0"]);
    assert!(!server.admin_addr.is_empty(), "the server says where its metrics are");
    assert_eq!(get(&server, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(&server, "/readyz"), (200, "ready\n".into()));
    assert_eq!(get(&server, "/nothing").0, 404);
    let before = scrape(&server);
    assert_eq!(value(&before, "palomar_messages_accepted_total"), 0.0);
    assert_eq!(value(&before, r#"palomar_build_info{version="0.1.0"}"#), 1.0);

    let (ana, bob) = (dir.path().join("ana"), dir.path().join("bob"));
    let (status, _) = run_client(spec(&server, "bob", "b", &bob), "");
    assert!(status.success());
    let (status, events) = run_client(spec(&server, "ana", "a", &ana), "one\ntwo\nthree\n");
    assert!(status.success());
    assert_eq!(events.iter().filter(|e| e["event"] == "accepted").count(), 3, "{events:#?}");
    let (status, _) = run_client(spec(&server, "ana", "wrong", &ana), "");
    assert!(!status.success(), "a wrong password is refused");
    let (status, events) = run_client(spec(&server, "bob", "b", &bob), "");
    assert!(status.success());
    assert_eq!(events.iter().filter(|e| e["event"] == "message").count(), 3, "bob reads the three");

    // Sessions end on the server a moment after their clients exit.
    let deadline = Instant::now() + PATIENCE;
    let after = loop {
        let after = scrape(&server);
        if value(&after, "palomar_sessions_open") == 0.0 || Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(value(&after, "palomar_sessions_open"), 0.0);
    assert_eq!(value(&after, r#"palomar_connections_open{listener="native"}"#), 0.0);
    assert_eq!(value(&after, r#"palomar_connections_accepted_total{listener="native"}"#), 4.0);
    assert_eq!(value(&after, r#"palomar_logins_total{outcome="registered"}"#), 2.0);
    assert_eq!(value(&after, r#"palomar_logins_total{outcome="ok"}"#), 1.0);
    assert_eq!(value(&after, r#"palomar_logins_total{outcome="failed"}"#), 1.0);
    assert_eq!(value(&after, r#"palomar_logins_total{outcome="locked_out"}"#), 0.0);
    assert_eq!(value(&after, "palomar_messages_accepted_total"), 3.0);
    // bob's second session had all three; ana's own come back to her, unless she left first.
    let delivered = value(&after, "palomar_messages_delivered_total");
    assert!((3.0..=6.0).contains(&delivered), "delivered {delivered}");
    assert!(value(&after, "palomar_received_bytes_total") > 0.0);
    assert!(value(&after, "palomar_sent_bytes_total") > value(&before, "palomar_sent_bytes_total"));
    let commits = value(&after, "palomar_store_commits_total");
    assert!(commits >= 3.0, "two registrations and at least one group of messages: {commits}");
    assert_eq!(value(&after, "palomar_store_commit_seconds_count"), commits, "every commit timed");
    assert_eq!(value(&after, "palomar_store_errors_total"), 0.0);
    assert!(value(&after, "palomar_store_commit_operations_sum") >= 5.0, "2 registrations + 3 messages at least");
    assert!(value(&after, "process_resident_memory_bytes") > 1_000_000.0);
    assert!(value(&after, "palomar_uptime_seconds") > 0.0);
    dashboard_asks_only_for_what_the_server_exports(&after);

    // Another process holds the store's write lock: nothing can be stored, and the server says so.
    let blocker = rusqlite::Connection::open(server.data.join("store.sqlite")).expect("opens the store");
    blocker.execute_batch("BEGIN IMMEDIATE").expect("takes the write lock");
    // A readiness answer stands for a second (probers cannot make the store write more often), so the one given
    // before the lock was taken may still be the answer for a moment.
    let deadline = Instant::now() + PATIENCE;
    let (status, body) = loop {
        let (status, body) = get(&server, "/readyz");
        if status != 200 || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: "), "{body}");
    assert_eq!(get(&server, "/healthz").0, 200, "the process still answers");
    blocker.execute_batch("ROLLBACK").expect("lets go");
    let deadline = Instant::now() + PATIENCE;
    while get(&server, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "ready again once the lock is gone");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.terminate().success());
}
