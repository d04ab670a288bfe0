//! Tests of the login limiter (lockouts, delays, addresses, bounded memory), of logins taking turns, and of what
//! a suspended account is told.

use super::*;

fn settings() -> LoginSettings {
    LoginSettings {
        max_failures: 3,
        lockout_secs: 60,
        max_lockout_secs: 600,
        max_failures_per_address: 10,
        address_lockout_secs: 30,
        delay_ms: 100,
        max_delay_ms: 1_000,
    }
}

fn nick(name: &str) -> Nick {
    Nick::parse(name).expect("valid")
}

fn address(last: u8) -> Address {
    Address::of([127, 0, 0, last].into())
}

#[test]
fn failures_lock_out_the_nickname_from_that_address_only() {
    let limiter = LoginLimiter::new(settings());
    let (ana, bob) = (nick("ana"), nick("bob"));
    let (here, elsewhere) = (address(1), address(2));
    let now = Instant::now();
    for _ in 0..2 {
        limiter.failed(&ana, here, now);
    }
    assert_eq!(limiter.check(&ana, here, now), Ok(()));
    limiter.failed(&ana, here, now);
    assert_eq!(limiter.check(&ana, here, now), Err(LockedOut::Pair(Duration::from_secs(60))));
    assert_eq!(limiter.check(&ana, elsewhere, now), Ok(()), "the nickname is not locked out everywhere");
    assert_eq!(limiter.check(&bob, here, now), Ok(()), "the address is not locked out for other nicknames");
    limiter.succeeded(&ana, here);
    assert_eq!(limiter.check(&ana, here, now), Ok(()), "the right password starts the pair afresh");
}

#[test]
fn lockouts_double_up_to_their_cap_then_are_forgotten() {
    let limiter = LoginLimiter::new(settings());
    let (ana, here) = (nick("ana"), address(1));
    let mut now = Instant::now();
    let mut lockouts = Vec::new();
    for _ in 0..10 {
        limiter.failed(&ana, here, now);
        if let Err(LockedOut::Pair(wait)) = limiter.check(&ana, here, now) {
            lockouts.push(wait.as_secs());
            now += wait;
        }
    }
    assert_eq!(lockouts, [60, 120, 240, 480, 600, 600, 600, 600], "capped at max_lockout_secs");
    let later = now + Duration::from_secs(600);
    assert_eq!(limiter.check(&ana, here, later), Ok(()));
    limiter.failed(&ana, here, later);
    assert_eq!(limiter.check(&ana, here, later), Ok(()), "after a quiet spell the count starts again");
}

#[test]
fn a_nickname_failing_from_many_addresses_is_slowed_down_not_locked_out() {
    let limiter = LoginLimiter::new(settings());
    let ana = nick("ana");
    let now = Instant::now();
    let mut delays = Vec::new();
    for last in 1..=8 {
        delays.push(limiter.delay(&ana, now).as_millis());
        limiter.failed(&ana, address(last), now);
        assert_eq!(limiter.check(&ana, address(100), now), Ok(()), "a fresh address may always try");
    }
    assert_eq!(delays, [0, 0, 0, 100, 200, 400, 800, 1_000]);
    assert_eq!(limiter.delay(&nick("bob"), now), Duration::ZERO, "other nicknames are not slowed");
    assert_eq!(limiter.delay(&ana, now + Duration::from_secs(1_199)), Duration::from_millis(1_000));
    let later = now + Duration::from_secs(1_200);
    assert_eq!(limiter.delay(&ana, later), Duration::ZERO, "forgotten after a quiet spell");
}

#[test]
fn an_address_failing_on_many_nicknames_is_locked_out_briefly() {
    let limiter = LoginLimiter::new(settings());
    let (here, ana) = (address(1), nick("ana"));
    let now = Instant::now();
    for i in 0..9 {
        limiter.failed(&nick(&format!("n{i}")), here, now);
    }
    assert_eq!(limiter.check(&ana, here, now), Ok(()));
    limiter.failed(&nick("n9"), here, now);
    assert_eq!(limiter.check(&ana, here, now), Err(LockedOut::Address(Duration::from_secs(30))));
    assert_eq!(limiter.check(&ana, address(2), now), Ok(()));
    let after = now + Duration::from_secs(30);
    assert_eq!(limiter.check(&ana, here, after), Ok(()), "then a fresh allowance");
    limiter.failed(&nick("n10"), here, after);
    assert_eq!(limiter.check(&ana, here, after), Ok(()));
}

#[test]
fn a_slash_64_is_one_address_for_lockouts() {
    let limiter = LoginLimiter::new(settings());
    let ana = nick("ana");
    let now = Instant::now();
    for host in ["2001:db8::1", "2001:db8::2", "2001:db8::3"] {
        limiter.failed(&ana, Address::of(host.parse().expect("address")), now);
    }
    let neighbour = Address::of("2001:db8::ffff".parse().expect("address"));
    assert!(limiter.check(&ana, neighbour, now).is_err(), "the /64 shares its lockout");
    let other = Address::of("2001:db8:0:1::1".parse().expect("address"));
    assert_eq!(limiter.check(&ana, other, now), Ok(()));
}

#[test]
fn memory_stays_bounded_under_a_flood_of_failures() {
    let limiter = LoginLimiter::new(LoginSettings { max_failures: 2, ..settings() });
    let now = Instant::now();
    for i in 0..(MAX_TRACKED as u32 + 1_000) {
        let from = Address::of(IpAddr::from(i.to_be_bytes()));
        limiter.failed(&nick(&format!("n{}", i % 50_000)), from, now);
    }
    let tracked = limiter.failures.lock().len();
    assert!(tracked <= MAX_TRACKED + 3, "{tracked} records");
}

#[tokio::test]
async fn logins_of_one_nickname_take_turns_and_leave_nothing_behind() {
    let limiter = Arc::new(LoginLimiter::new(settings()));
    let (ana, bob) = (nick("ana"), nick("bob"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = limiter.turn(&ana, deadline).await.expect("nobody else is in line");
    assert!(limiter.turn(&bob, deadline).await.is_some(), "another nickname does not wait");
    let soon = Instant::now() + Duration::from_millis(50);
    assert!(limiter.turn(&ana, soon).await.is_none(), "a login waits no longer than its deadline");
    let mut second = {
        let (limiter, ana) = (limiter.clone(), ana.clone());
        tokio::spawn(async move { limiter.turn(&ana, deadline).await.is_some() })
    };
    let waiting = tokio::time::timeout(Duration::from_millis(100), &mut second).await;
    assert!(waiting.is_err(), "the second login waits while the first is judged");
    drop(first);
    assert!(second.await.expect("runs"), "then it gets its turn");
    assert!(limiter.turns.lock().is_empty(), "no line is kept once nobody waits");
}

#[test]
fn a_suspension_says_until_when_and_why() {
    let account = Account { id: palomar_store::AccountId(1), nick: nick("ana") };
    let mut suspension = Suspension { account, until_ms: Some(1_796_601_600_000), reason: "spam".into(), since_ms: 0 };
    assert_eq!(suspended(&suspension), "the account ana is suspended until 2026-12-07 00:00:00 UTC: spam");
    suspension.until_ms = None;
    suspension.reason.clear();
    assert_eq!(suspended(&suspension), "the account ana is suspended until an operator lifts it: no reason given");
}
