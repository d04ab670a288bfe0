//! `palomar backup` and `palomar restore` with the real binary: a backup taken while clients keep sending holds
//! every message acknowledged before it started, once, with its seq; a server restored from it presents the
//! same certificate (a client holding the original pin connects) and carries on with the same accounts, seqs
//! and cursors. Bad input (a non-empty directory, a damaged, truncated or foreign file, a full disk) gets a clear
//! error and leaves nothing behind.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{BIN, Client, ClientSpec, Server, assert_in_order_once, run_client, start_configured};

/// Senders at once, and the lines each writes before waiting for their acknowledgements.
const SENDERS: usize = 4;
const BATCH: usize = 20;
/// Load before the backup starts, so that the store is of some size and the server busy.
const LOAD_BEFORE: Duration = Duration::from_secs(3);
/// A message's text: long enough that the store grows by megabytes in seconds.
const TEXT_BYTES: usize = 1_000;

fn spec<'a>(server: &'a str, nick: &'a str, home: &'a Path) -> ClientSpec<'a> {
    ClientSpec { server, nick, password: &nick[..1], home, extra: &[] }
}

/// Runs `nick`'s client to the end of `input`, which must succeed; its events.
fn session(server: &Server, nick: &str, home: &Path, input: &str) -> Vec<Value> {
    let (status, events) = run_client(spec(&server.addr, nick, home), input);
    assert!(status.success(), "{nick}'s client: {status}: {events:#?}");
    events
}

/// `palomar ARGS`: whether it succeeded, its stdout and its stderr.
fn palomar(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN).args(args).stdin(Stdio::null()).output().expect("palomar runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// `palomar backup --data DATA --to FILE EXTRA…`.
fn backup(data: &Path, file: &Path, extra: &[&str]) -> (bool, String, String) {
    palomar(&[&["backup", "--data", text(data), "--to", text(file)], extra].concat())
}

/// `palomar restore --from FILE --data DATA`.
fn restore(file: &Path, data: &Path) -> (bool, String, String) {
    palomar(&["restore", "--from", text(file), "--data", text(data)])
}

/// A message the server acknowledged to its sender, and when the test had read the acknowledgement (never
/// before the server sent it).
#[derive(Debug, Clone)]
struct Acked {
    seq: u64,
    id: String,
    read_at: Instant,
}

/// Sends batches of messages to `#lobby` as `nick` until `stop`, then waits for the outbox to empty; every
/// acknowledgement, stamped when read.
fn send_until(server: String, nick: String, home: PathBuf, stop: Arc<AtomicBool>) -> Vec<Acked> {
    let mut client = Client::start(spec(&server, &nick, &home));
    let filler = "x".repeat(TEXT_BYTES);
    let (mut sent, mut acked, mut stamped) = (0, Vec::new(), HashSet::new());
    let mut stamp = |seen: &[Value], acked: &mut Vec<Acked>| {
        let read_at = Instant::now();
        for event in seen.iter().filter(|e| e["event"] == "accepted") {
            let id = event["id"].as_str().expect("an id").to_owned();
            if stamped.insert(id.clone()) {
                assert_eq!(event["conversation"], "#lobby");
                acked.push(Acked { seq: event["seq"].as_u64().expect("a seq"), id, read_at });
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..BATCH {
            sent += 1;
            client.line(&format!("{nick} {sent} {filler}"));
        }
        // The sender's own copy of the batch's last message: it and all before it are stored. Their
        // acknowledgements come with or after their copies; those not read yet are stamped in a later round.
        let last = format!("{nick} {sent} ");
        client.wait_for("the batch's last message", |e| {
            e["event"] == "message" && e["text"].as_str().is_some_and(|text| text.starts_with(&last))
        });
        stamp(&client.seen, &mut acked);
    }
    let (status, events) = client.finish();
    assert!(status.success(), "{nick}'s client: {status}");
    stamp(&events, &mut acked);
    assert_eq!(acked.len(), sent, "{nick}: every message acknowledged");
    acked
}

/// `(seq, id)` of every message of `#lobby` among `events`.
fn lobby_history(events: &[Value]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "message" && e["conversation"] == "#lobby")
        .map(|e| (e["seq"].as_u64().expect("a seq"), e["id"].as_str().expect("an id").to_owned()))
        .collect()
}

/// The value of the summary line `name: VALUE`.
fn summary<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {stdout}"))
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("lists")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_backup_under_load_restores_every_acknowledged_message_once_with_its_seq() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Unpaced, so that the senders keep the writer busy rather than wait for their tokens.
    let server = start_configured(dir.path(), "[limits]\nmessages_per_sec_per_user = 0\n");
    let original_fingerprint = server.fingerprint.clone();
    // The reader registers now and reads only from the restored server: its cursor in #lobby is at 0 there.
    let reader_home = dir.path().join("reader");
    session(&server, "reader", &reader_home, "");

    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|n| {
            let (addr, nick, home) = (server.addr.clone(), format!("sender{n}"), dir.path().join(format!("sender{n}")));
            let stop = stop.clone();
            std::thread::spawn(move || send_until(addr, nick, home, stop))
        })
        .collect();
    std::thread::sleep(LOAD_BEFORE);

    let file = dir.path().join("backups").join("palomar.tar");
    std::fs::create_dir(file.parent().expect("a parent")).expect("creates");
    let backup_started = Instant::now();
    let (ok, stdout, stderr) = backup(&server.data, &file, &[]);
    let backup_ended = Instant::now();
    // A little more load after it, so that what is acknowledged after the backup started is not all of it.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Acked> = senders.into_iter().flat_map(|sender| sender.join().expect("a sender ran")).collect();
    assert!(ok, "backs up while the server runs: {stdout}{stderr}");
    assert!(stderr.contains("copying: ") && stderr.contains("writing: "), "progress lines off a terminal: {stderr}");
    let took = backup_ended - backup_started;
    let before: Vec<&Acked> = acked.iter().filter(|a| a.read_at < backup_started).collect();
    let during = acked.iter().filter(|a| a.read_at > backup_started && a.read_at < backup_ended).count();
    let messages: u64 = summary(&stdout, "messages").parse().expect("a count");
    eprintln!(
        "backup under load: {} messages ({} acknowledged before it started, {during} while it ran), {:.2} s, {} bytes",
        messages,
        before.len(),
        took.as_secs_f64(),
        std::fs::metadata(&file).expect("the backup").len()
    );
    assert!(!before.is_empty() && during > 0, "the load ran before and while the backup ran: {stdout}");
    assert!(messages >= before.len() as u64, "{stdout}");
    assert_eq!(summary(&stdout, "accounts"), (SENDERS + 1).to_string());
    assert!(stdout.contains(&original_fingerprint), "{stdout}");
    let mode = std::fs::metadata(&file).expect("the backup").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "owner-only: it holds the key and the password hashes");
    assert_eq!(listing(file.parent().expect("a parent")), ["palomar.tar"], "no temporary file left beside it");

    // Restored into a new directory, a server on it presents the same certificate.
    let restored = dir.path().join("restored");
    let (ok, stdout, stderr) = restore(&file, &restored);
    assert!(ok, "restores: {stdout}{stderr}");
    assert_eq!(summary(&stdout, "messages"), messages.to_string());
    let mode = |path: &Path| std::fs::metadata(path).expect("exists").permissions().mode() & 0o777;
    assert_eq!((mode(&restored), mode(&restored.join("tls/key.pem"))), (0o700, 0o600), "owner-only");
    let second = Server::start(&restored);
    assert_eq!(second.fingerprint, original_fingerprint, "the same certificate");
    // A client that holds the original pin for this address connects: the server proves it holds the key.
    let fresh_home = dir.path().join("reader-on-restored");
    let (ok, _, stderr) = palomar(&[
        "trust",
        "--server",
        &second.addr,
        "--fingerprint",
        &original_fingerprint,
        "--home",
        text(&fresh_home),
    ]);
    assert!(ok, "{stderr}");
    let (status, events) = run_client(spec(&second.addr, "reader", &fresh_home), "");
    assert!(status.success(), "the reader connects with the original pin and its password: {events:#?}");
    assert!(!events.iter().any(|e| e["event"] == "fatal"), "{events:#?}");

    // Every message acknowledged before the backup started is there, once, with its seq; the log has no gap;
    // and whatever else is there was acknowledged with the same seq.
    let history = lobby_history(&events);
    assert_in_order_once(&events, "#lobby");
    assert_eq!(history.len() as u64, messages, "the whole log of #lobby, from seq 1");
    let seqs: Vec<u64> = history.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=messages).collect::<Vec<_>>(), "seqs 1 to {messages} without a gap");
    let by_id: HashMap<&str, u64> = history.iter().map(|(seq, id)| (id.as_str(), *seq)).collect();
    for acked in &before {
        assert_eq!(by_id.get(acked.id.as_str()), Some(&acked.seq), "acknowledged before the backup: {acked:?}");
    }
    let acked_seqs: HashMap<&str, u64> = acked.iter().map(|a| (a.id.as_str(), a.seq)).collect();
    for (seq, id) in &history {
        assert_eq!(acked_seqs.get(id.as_str()), Some(seq), "message {id} is in the backup with the seq it was given");
    }

    // The restored directory is not empty any more: refused, and left as it is.
    let listed = listing(&restored);
    let store_before = std::fs::read(restored.join("store.sqlite")).expect("reads");
    let (ok, _, stderr) = restore(&file, &restored);
    assert!(!ok && stderr.contains("is not empty") && stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(listing(&restored), listed);
    assert_eq!(std::fs::read(restored.join("store.sqlite")).expect("reads"), store_before);
    assert!(second.terminate().success());
    assert!(server.terminate().success());

    // A damaged backup, and a truncated one: refused, and no directory left behind.
    let whole = std::fs::read(&file).expect("reads the backup");
    let mut damaged = whole.clone();
    damaged[whole.len() / 2] ^= 0x01;
    let cases = [("damaged", damaged, "damaged"), ("truncated", whole[..whole.len() / 2].to_vec(), "truncated")];
    for (name, bytes, says) in cases {
        let bad = dir.path().join(format!("{name}.tar"));
        std::fs::write(&bad, bytes).expect("writes");
        let target = dir.path().join("into").join(name);
        let (ok, _, stderr) = restore(&bad, &target);
        assert!(!ok && stderr.contains(says) && stderr.contains("nothing was restored"), "{name}: {stderr}");
        assert_eq!(listing(&dir.path().join("into")), Vec::<String>::new(), "{name}: nothing left behind");
    }
}

#[test]
fn a_stopped_server_is_backed_up_and_carries_on_from_its_backup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (ana, bob) = (dir.path().join("ana"), dir.path().join("bob"));
    let server = Server::start(&data);
    session(&server, "bob", &bob, "");
    session(&server, "ana", &ana, "one\ntwo\n/msg bob private\n");
    let read = session(&server, "bob", &bob, "");
    assert_eq!(read.iter().filter(|e| e["event"] == "message").count(), 3, "{read:#?}");
    let address = server.addr.clone();
    assert!(server.terminate().success());

    let file = dir.path().join("palomar.tar");
    let (ok, stdout, stderr) = backup(&data, &file, &[]);
    assert!(ok, "backs up a stopped server: {stdout}{stderr}");
    assert_eq!((summary(&stdout, "accounts"), summary(&stdout, "messages")), ("2", "3"), "{stdout}");
    // Not over an existing file without --force; with it, yes.
    let (ok, _, stderr) = backup(&data, &file, &[]);
    assert!(!ok && stderr.contains("exists") && stderr.contains("--force"), "{stderr}");
    let (ok, stdout, stderr) = backup(&data, &file, &["--force"]);
    assert!(ok, "{stdout}{stderr}");
    let listed = tar_listing(&file);
    assert_eq!(listed, ["palomar-backup.json", "store.sqlite", "tls/cert.pem", "tls/key.pem"], "any tar reads it");

    // Into an empty directory that exists (as systemd's StateDirectory would), then on the same address: the
    // clients' pins, passwords and cursors all hold.
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).expect("creates");
    let (ok, stdout, stderr) = restore(&file, &restored);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(listing(&restored), ["store.sqlite", "tls"], "nothing else, no staging directory left");
    let server = Server::start_on(&restored, &address, &[]);
    let (status, again) = run_client(spec(&server.addr, "bob", &bob), "");
    assert!(status.success(), "bob's pin and password hold: {again:#?}");
    assert!(!again.iter().any(|e| e["event"] == "message"), "nothing twice: bob's cursors came along: {again:#?}");
    let (status, next) = run_client(spec(&server.addr, "ana", &ana), "three\n/msg bob private two\n");
    assert!(status.success());
    let next: Vec<(String, u64)> = next
        .iter()
        .filter(|e| e["event"] == "accepted")
        .map(|e| (e["conversation"].as_str().expect("a name").to_owned(), e["seq"].as_u64().expect("a seq")))
        .collect();
    assert_eq!(next, [("#lobby".to_owned(), 3), ("@bob".to_owned(), 2)], "the seqs continue");
    assert!(server.terminate().success());
}

/// The entries of a tar file, as `tar tf` lists them.
fn tar_listing(file: &Path) -> Vec<String> {
    let output = Command::new("tar").arg("tf").arg(file).output().expect("tar runs");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let (status, _) = run_client(spec(&server.addr, "ana", &dir.path().join("ana")), "hello\n");
    assert!(status.success());
    assert!(server.terminate().success());
    let file = dir.path().join("palomar.tar");

    let (ok, _, stderr) = backup(&dir.path().join("missing"), &file, &[]);
    assert!(!ok && stderr.contains("there is no data directory"), "{stderr}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("creates");
    let (ok, _, stderr) = backup(&empty, &file, &[]);
    assert!(!ok && stderr.contains("there is no store"), "{stderr}");
    let (ok, _, stderr) = backup(&data, dir.path(), &[]);
    assert!(!ok && stderr.contains("is a directory"), "{stderr}");
    for own in ["store.sqlite", "tls/key.pem"] {
        let (ok, _, stderr) = backup(&data, &data.join(own), &["--force"]);
        assert!(!ok && stderr.contains("one of the server's own files"), "{own}: {stderr}");
    }
    let (ok, _, stderr) = backup(&data, &dir.path().join("no-such-dir").join("palomar.tar"), &[]);
    assert!(!ok && stderr.contains("there is no directory"), "{stderr}");
    let config = dir.path().join("postgres.toml");
    std::fs::write(&config, "[store]\ndatabase = \"postgres://palomar@127.0.0.1/palomar\"\n").expect("writes");
    let (ok, _, stderr) = palomar(&["backup", "--config", text(&config), "--data", text(&data), "--to", text(&file)]);
    assert!(!ok && stderr.contains("pg_dump") && stderr.contains("--identity-only"), "{stderr}");
    assert!(!file.exists(), "no backup without the messages unless asked for");
    let (ok, stdout, stderr) =
        palomar(&["backup", "--config", text(&config), "--data", text(&data), "--to", text(&file), "--identity-only"]);
    assert!(ok && stdout.contains("NOT BACKED UP") && stdout.contains("pg_dump"), "{stdout}{stderr}");
    let (ok, stdout, stderr) = restore(&file, &dir.path().join("identity-only"));
    assert!(ok && stdout.contains("NOT in this backup"), "{stdout}{stderr}");
    assert_eq!(listing(&dir.path().join("identity-only")), ["tls"]);
    std::fs::remove_file(&file).expect("removes");

    let (ok, _, stderr) = restore(&dir.path().join("missing.tar"), &dir.path().join("r1"));
    assert!(!ok && stderr.contains("cannot read the backup"), "{stderr}");
    let (ok, _, stderr) = restore(dir.path(), &dir.path().join("r1"));
    assert!(!ok && stderr.contains("is a directory"), "{stderr}");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "shopping list\n".repeat(100)).expect("writes");
    let (ok, _, stderr) = restore(&notes, &dir.path().join("r1"));
    assert!(!ok && stderr.contains("not a Palomar backup"), "{stderr}");
    assert!(!dir.path().join("r1").exists());
    let (ok, _, stderr) = restore(&notes, &notes);
    assert!(!ok && stderr.contains("is not a directory"), "{stderr}");
}

/// A disk that fills up while the store is copied, or while the file is written: an error that says so, and
/// no file left behind. On a tmpfs of its own, so it needs root (as CI is).
#[test]
fn a_full_disk_is_an_error_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let lines: String = (0..200).map(|n| format!("message {n} {}\n", "y".repeat(500))).collect();
    let (status, _) = run_client(spec(&server.addr, "ana", &dir.path().join("ana")), &lines);
    assert!(status.success());
    let file = dir.path().join("palomar.tar");
    let (ok, stdout, stderr) = backup(&data, &file, &[]);
    assert!(ok, "{stdout}{stderr}");
    let size = std::fs::metadata(&file).expect("the backup").len();
    // Too small for the store's copy; then room for the copy but not for the file beside it as well.
    for (room, says) in [(size / 2, "is full"), (size + size / 2, "No space left on device")] {
        let small = dir.path().join(format!("small-{room}"));
        let _disk = SmallDisk::mount(&small, room);
        let (ok, _, stderr) = backup(&data, &small.join("palomar.tar"), &[]);
        assert!(!ok && stderr.contains(says), "{room} bytes of room: {stderr}");
        assert_eq!(listing(&small), Vec::<String>::new(), "{room} bytes of room: nothing left behind");
    }
    assert!(server.terminate().success());
}

/// A tmpfs of `bytes` mounted on a directory until dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: &Path, bytes: u64) -> SmallDisk {
        std::fs::create_dir_all(path).expect("creates");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "cannot mount a small tmpfs on {}: this test needs root", path.display());
        SmallDisk(path.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_client_that_saw_more_than_an_older_backup_holds_is_told_and_sees_the_new_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (ana, bob) = (dir.path().join("ana"), dir.path().join("bob"));
    let server = Server::start(&data);
    session(&server, "bob", &bob, "");
    session(&server, "ana", &ana, "one\ntwo\n");
    let file = dir.path().join("palomar.tar");
    let (ok, stdout, stderr) = backup(&data, &file, &[]);
    assert!(ok, "{stdout}{stderr}");
    // After the backup: bob reads four messages, of which the restored server will hold two.
    session(&server, "ana", &ana, "three\nfour\n");
    let read = session(&server, "bob", &bob, "");
    assert_eq!(read.iter().filter(|e| e["event"] == "message").count(), 4, "{read:#?}");
    let address = server.addr.clone();
    assert!(server.terminate().success());

    let restored = dir.path().join("restored");
    let (ok, stdout, stderr) = restore(&file, &restored);
    assert!(ok, "{stdout}{stderr}");
    let server = Server::start_on(&restored, &address, &[]);
    let mut reader = Client::start(spec(&server.addr, "bob", &bob));
    let rewound = reader.wait_for("rewound", |e| e["event"] == "rewound");
    assert_eq!(
        (&rewound["conversation"], &rewound["latest_seq"], &rewound["had"]),
        (&"#lobby".into(), &2.into(), &4.into()),
        "bob is told where the server's #lobby ends now"
    );
    let sent = session(&server, "ana", &ana, "after the restore\n");
    let accepted: Vec<u64> =
        sent.iter().filter(|e| e["event"] == "accepted").map(|e| e["seq"].as_u64().expect("a seq")).collect();
    assert_eq!(accepted, [3], "the restored server gives out seq 3 again");
    let message = reader.wait_for("the new message", |e| e["event"] == "message");
    assert_eq!((&message["seq"], &message["text"]), (&3.into(), &"after the restore".into()), "shown, not dropped");
    reader.close_stdin();
    let (status, events) = reader.finish();
    assert!(status.success());
    assert_eq!(events.iter().filter(|e| e["event"] == "rewound").count(), 1, "said once: {events:#?}");
    let again = session(&server, "bob", &bob, "");
    assert!(!again.iter().any(|e| e["event"] == "rewound" || e["event"] == "message"), "settled: {again:#?}");
    assert!(server.terminate().success());
}
