//! Attacks on the login path with the real server, over the wire, from several loopback addresses: parallel
//! guessing, guessing from many addresses, spraying many nicknames from one address, probing which nicknames
//! exist, and registration floods. Each test runs its own server with limits low enough to make the attack
//! quick; the tests of this file run one at a time, so that the timings of one are not the load of another.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::common::{LoginAnswer, Server, accounts, add_user, raw_hello_and_leave, raw_login, start_configured};
use palomar_proto::ErrorCode;
use tokio::sync::Mutex;

/// Held by each test while it runs (each test has a runtime of its own, and this lock works across them).
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn from(last: u8) -> IpAddr {
    [127, 0, 0, last].into()
}

fn refused(answer: &LoginAnswer, code: ErrorCode) -> bool {
    matches!(answer, LoginAnswer::Refused(c, _) if *c == code)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The seconds in "try again in N s".
fn retry_secs(answer: &LoginAnswer) -> u64 {
    let LoginAnswer::Refused(_, message) = answer else { panic!("not a refusal: {answer:?}") };
    let (_, after) = message.split_once("try again in ").unwrap_or_else(|| panic!("no retry hint: {message}"));
    after.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no seconds: {message}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_parallel_guesses_are_judged_five_and_two_devices_still_get_in_together() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let addr = server.addr.as_str();
    assert_eq!(raw_login(addr, from(1), "ana", "right horse").await.0, LoginAnswer::Welcome { registered: true });

    // A person's two devices logging in at the same moment: the second waits for the first, then gets in.
    let (phone, laptop) =
        tokio::join!(raw_login(addr, from(1), "ana", "right horse"), raw_login(addr, from(1), "ana", "right horse"));
    assert_eq!(
        (phone.0, laptop.0),
        (LoginAnswer::Welcome { registered: false }, LoginAnswer::Welcome { registered: false })
    );

    let guesses: Vec<_> = (0..100)
        .map(|i| {
            let addr = addr.to_owned();
            tokio::spawn(async move { raw_login(&addr, from(2), "ana", &format!("guess {i}")).await })
        })
        .collect();
    let mut answers = Vec::new();
    for guess in guesses {
        answers.push(guess.await.expect("guess runs").0);
    }
    let judged = answers.iter().filter(|a| refused(a, ErrorCode::AuthFailed)).count();
    let locked = answers.iter().filter(|a| refused(a, ErrorCode::RateLimited)).count();
    let busy = answers.iter().filter(|a| refused(a, ErrorCode::ServerBusy)).count();
    println!("100 parallel guesses: {judged} judged, {locked} refused as locked out, {busy} refused as busy");
    assert_eq!(judged + locked + busy, 100, "{answers:?}");
    assert!((1..=5).contains(&judged), "{judged} guesses judged; the lockout allows 5");
    let (right, _) = raw_login(addr, from(2), "ana", "right horse").await;
    assert!(refused(&right, ErrorCode::RateLimited), "the guessing address is locked out: {right:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nickname_guessed_from_many_addresses_is_slowed_and_its_owner_still_gets_in() {
    const DELAY_MS: u64 = 200;
    const MAX_DELAY_MS: u64 = 400;
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(
        dir.path(),
        &format!("[login]\nmax_failures = 3\ndelay_ms = {DELAY_MS}\nmax_delay_ms = {MAX_DELAY_MS}\n"),
    );
    let addr = server.addr.as_str();
    assert_eq!(raw_login(addr, from(1), "ana", "right horse").await.0, LoginAnswer::Welcome { registered: true });

    let mut failures = 0u32;
    for guesser in 2..=4 {
        for _ in 0..3 {
            let (answer, took) = raw_login(addr, from(guesser), "ana", "guess").await;
            assert!(refused(&answer, ErrorCode::AuthFailed), "127.0.0.{guesser}, failure {failures}: {answer:?}");
            // Lower bounds only: the server waits at least this long, however fast the machine.
            let delay = match failures.checked_sub(3) {
                None => 0,
                Some(beyond) => (DELAY_MS << beyond).min(MAX_DELAY_MS),
            };
            assert!(took >= Duration::from_millis(delay), "failure {failures} answered in {took:?}, before {delay} ms");
            failures += 1;
        }
    }
    let (answer, _) = raw_login(addr, from(2), "ana", "right horse").await;
    assert!(refused(&answer, ErrorCode::RateLimited), "a guessing address is locked out of the nickname: {answer:?}");
    let (answer, took) = raw_login(addr, from(1), "ana", "right horse").await;
    assert_eq!(answer, LoginAnswer::Welcome { registered: false }, "the owner gets in from elsewhere");
    assert!(took >= Duration::from_millis(MAX_DELAY_MS), "slowed like everyone: {took:?}");
    println!("the owner got in after {took:?}, with the nickname under attack");
    let (answer, _) = raw_login(addr, from(2), "bob", "bob's").await;
    assert_eq!(answer, LoginAnswer::Welcome { registered: true }, "a guessing address may use other nicknames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_failing_on_many_nicknames_is_locked_out_only_briefly() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    add_user(&dir.path().join("data"), "ana", "right horse");
    let server = start_configured(dir.path(), "registration = \"closed\"\n");
    let addr = server.addr.as_str();
    let sprayer = from(5);
    for i in 0..19 {
        let (answer, _) = raw_login(addr, sprayer, &format!("n{i}"), "123456").await;
        assert!(refused(&answer, ErrorCode::AuthFailed), "failure {i}: {answer:?}");
    }
    let (answer, _) = raw_login(addr, sprayer, "ana", "right horse").await;
    assert_eq!(answer, LoginAnswer::Welcome { registered: false }, "19 failures lock nobody out of their account");
    assert!(refused(&raw_login(addr, sprayer, "n19", "123456").await.0, ErrorCode::AuthFailed));
    let (answer, _) = raw_login(addr, sprayer, "ana", "right horse").await;
    assert!(refused(&answer, ErrorCode::RateLimited), "{answer:?}");
    assert!(retry_secs(&answer) <= 60, "an address is locked out for a minute at most: {answer:?}");
    println!("after 20 failures on 20 nicknames: {answer:?}");
    let (answer, _) = raw_login(addr, from(1), "ana", "right horse").await;
    assert_eq!(answer, LoginAnswer::Welcome { registered: false }, "other addresses are not affected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_closed_registration_a_login_does_not_tell_which_nicknames_exist() {
    const TRIES: u8 = 9;
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    add_user(&dir.path().join("data"), "ana", "right horse");
    // Enough failures allowed that no delay or lockout differs between the two nicknames.
    let server = start_configured(dir.path(), "registration = \"closed\"\n[login]\nmax_failures = 10\n");
    let addr = server.addr.as_str();
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let mut texts = std::collections::BTreeSet::new();
    for i in 0..TRIES {
        for (nick, times) in [("ana", &mut known), ("zed", &mut unknown)] {
            let (answer, took) = raw_login(addr, [127, 0, 1, i + 1].into(), nick, "wrong horse").await;
            let LoginAnswer::Refused(ErrorCode::AuthFailed, text) = answer else { panic!("{nick}: {answer:?}") };
            texts.insert(text);
            times.push(took);
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    println!("median refusal: known nickname {known:?}, unknown nickname {unknown:?}; texts {texts:?}");
    assert_eq!(texts.len(), 1, "the same words for both: {texts:?}");
    assert!(unknown * 3 >= known && known * 3 >= unknown, "known {known:?} vs unknown {unknown:?}");
}

/// Registers `count` new nicknames from `addresses` at once, `parallel` at a time per address; sends every
/// answer to `answers` as it comes.
fn flood(
    addr: &str,
    addresses: &[IpAddr],
    count: usize,
    parallel: usize,
    answers: tokio::sync::mpsc::UnboundedSender<LoginAnswer>,
) -> tokio::task::JoinSet<()> {
    let mut flood = tokio::task::JoinSet::new();
    for (a, source) in addresses.iter().copied().enumerate() {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel));
        for i in (a..count).step_by(addresses.len()) {
            let (gate, answers, addr) = (gate.clone(), answers.clone(), addr.to_owned());
            flood.spawn(async move {
                let _turn = gate.acquire_owned().await.expect("gate");
                let _ = answers.send(raw_login(&addr, source, &format!("junk{i}"), "junk").await.0);
            });
        }
    }
    flood
}

/// Logs ana in `times` times, one after the other; returns the time from `Hello` to `Welcome` of each.
async fn ana_logs_in(addr: &str, times: usize) -> Vec<Duration> {
    let mut took = Vec::new();
    for _ in 0..times {
        let (answer, time) = raw_login(addr, from(1), "ana", "right horse").await;
        assert_eq!(answer, LoginAnswer::Welcome { registered: false });
        took.push(time);
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_flood_from_two_addresses_mints_few_accounts_and_holds_up_no_login() {
    const FLOOD: usize = 900;
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let addr = server.addr.as_str();
    assert_eq!(raw_login(addr, from(1), "ana", "right horse").await.0, LoginAnswer::Welcome { registered: true });
    let quiet = median(ana_logs_in(addr, 3).await);

    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let flood = flood(addr, &[from(2), from(3)], FLOOD, 100, tx);
    let mut answers = Vec::new();
    while answers.len() < 100 {
        answers.push(rx.recv().await.expect("the flood answers"));
    }
    let during = ana_logs_in(addr, 3).await;
    flood.join_all().await;
    let elapsed = started.elapsed();
    while let Ok(answer) = rx.try_recv() {
        answers.push(answer);
    }
    let registered = answers.iter().filter(|a| **a == LoginAnswer::Welcome { registered: true }).count();
    let limited = answers.iter().filter(|a| refused(a, ErrorCode::RateLimited)).count();
    let busy = answers.iter().filter(|a| refused(a, ErrorCode::ServerBusy)).count();
    let during = median(during);
    println!(
        "{FLOOD} registrations from two addresses in {elapsed:.1?}: {registered} accounts made, {limited} refused \
         as over the address's limit, {busy} as busy; ana's login: {quiet:?} before, {during:?} during"
    );
    assert_eq!(answers.len(), FLOOD);
    // The defaults: 20 at once per address, then one every 10 s each.
    let allowed = 2.0 * (20.0 + 0.1 * elapsed.as_secs_f64()) + 1.0;
    assert!(registered as f64 <= allowed, "{registered} accounts made in {elapsed:?}");
    assert_eq!(registered + limited + busy, FLOOD, "{answers:?}");
    assert!(during <= quiet * 5 + Duration::from_secs(1), "ana's login took {during:?}, {quiet:?} when quiet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_registration_unlimited_a_flood_is_told_busy_and_logins_go_first() {
    const FLOOD: usize = 600;
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        start_configured(dir.path(), "[limits]\nregistrations_per_sec = 0\nregistrations_per_sec_per_ip = 0\n");
    let addr = server.addr.as_str();
    assert_eq!(raw_login(addr, from(1), "ana", "right horse").await.0, LoginAnswer::Welcome { registered: true });
    let quiet = median(ana_logs_in(addr, 3).await);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let flood = flood(addr, &[from(2), from(3)], FLOOD, 100, tx);
    let mut answers = Vec::new();
    while answers.len() < 100 {
        answers.push(rx.recv().await.expect("the flood answers"));
    }
    let during = median(ana_logs_in(addr, 3).await);
    flood.join_all().await;
    while let Ok(answer) = rx.try_recv() {
        answers.push(answer);
    }
    let registered = answers.iter().filter(|a| **a == LoginAnswer::Welcome { registered: true }).count();
    let busy: Vec<&LoginAnswer> = answers.iter().filter(|a| refused(a, ErrorCode::ServerBusy)).collect();
    println!(
        "{FLOOD} registrations: {registered} made, {} told busy; ana's login {quiet:?} before, {during:?} during",
        busy.len()
    );
    assert_eq!(registered + busy.len(), FLOOD, "{answers:?}");
    assert!(!busy.is_empty(), "a full queue answers busy");
    assert!(busy.iter().all(|a| matches!(a, LoginAnswer::Refused(_, why) if why.contains("try again"))), "{busy:?}");
    assert!(during <= quiet * 5 + Duration::from_secs(1), "ana's login took {during:?}, {quiet:?} when quiet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_whose_client_left_before_its_turn_is_not_made() {
    const LEAVERS: usize = 60;
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(
        dir.path(),
        "[limits]\nregistrations_per_sec = 0\nregistrations_per_sec_per_ip = 0\nregistration_queue = 1000\n",
    );
    let addr = server.addr.as_str();
    let mut leavers = tokio::task::JoinSet::new();
    for i in 0..LEAVERS {
        let addr = addr.to_owned();
        leavers.spawn(async move { raw_hello_and_leave(&addr, from(2), &format!("gone{i}"), "pw").await });
    }
    leavers.join_all().await;
    // Registrations are served in order: once a later one is made, every earlier one was made or dropped.
    let (answer, _) = raw_login(addr, from(1), "witness", "pw").await;
    assert_eq!(answer, LoginAnswer::Welcome { registered: true });
    let made = accounts(&server.data).iter().filter(|nick| nick.starts_with("gone")).count();
    println!("{made} of {LEAVERS} registrations whose client left were made");
    assert!(made < LEAVERS / 2, "{made} of {LEAVERS} made for clients that had left");
}
