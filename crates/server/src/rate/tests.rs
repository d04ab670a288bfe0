//! Tests of the rate limits: connections, registrations and account requests, IPv6 /64s, bounded memory.

use super::*;

fn limits(per_ip: (f64, u32), total: (f64, u32)) -> Limits {
    Limits {
        new_connections_per_sec_per_ip: per_ip.0,
        new_connection_burst_per_ip: per_ip.1,
        new_connections_per_sec: total.0,
        new_connection_burst: total.1,
        ..Limits::default()
    }
}

fn ip(last: u8) -> IpAddr {
    [10, 0, 0, last].into()
}

#[test]
fn an_address_gets_its_burst_then_its_rate() {
    let limiter = ConnectionLimiter::new(&limits((2.0, 3), (0.0, 0)));
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(limiter.arrive(ip(1), start), Arrival::Admit);
    }
    assert!(matches!(limiter.arrive(ip(1), start), Arrival::Explain(why) if why.contains("your address")));
    assert_eq!(limiter.arrive(ip(2), start), Arrival::Admit, "other addresses are not affected");
    assert_eq!(limiter.arrive(ip(1), start + Duration::from_millis(550)), Arrival::Admit, "one token per 500 ms");
    assert_ne!(limiter.arrive(ip(1), start + Duration::from_millis(650)), Arrival::Admit);
    let later = start + Duration::from_secs(60);
    for _ in 0..3 {
        assert_eq!(limiter.arrive(ip(1), later), Arrival::Admit, "the burst is back after a quiet while");
    }
}

#[test]
fn refusals_are_explained_once_a_second_per_address_then_closed_before_tls() {
    let limiter = ConnectionLimiter::new(&limits((1.0, 1), (0.0, 0)));
    let start = Instant::now();
    assert_eq!(limiter.arrive(ip(1), start), Arrival::Admit);
    assert!(matches!(limiter.arrive(ip(1), start), Arrival::Explain(_)));
    for _ in 0..100 {
        assert_eq!(limiter.arrive(ip(1), start), Arrival::Close);
    }
    assert_eq!(limiter.arrive(ip(2), start), Arrival::Admit);
    assert!(matches!(limiter.arrive(ip(2), start), Arrival::Explain(_)), "another address still hears why");
}

#[test]
fn the_total_limit_holds_across_addresses_and_explanations_have_a_budget() {
    let limiter = ConnectionLimiter::new(&limits((0.0, 0), (10.0, 10)));
    let start = Instant::now();
    let arrivals: Vec<Arrival> = (0..1_000u32).map(|i| limiter.arrive(IpAddr::from(i.to_be_bytes()), start)).collect();
    assert_eq!(arrivals.iter().filter(|a| **a == Arrival::Admit).count(), 10);
    let explained: Vec<&str> =
        arrivals.iter().filter_map(|a| if let Arrival::Explain(why) = a { Some(*why) } else { None }).collect();
    assert_eq!(explained.len(), EXPLANATION_BURST as usize, "the rest is closed before TLS");
    assert!(explained.iter().all(|why| why.contains("too many new connections right now")), "{explained:?}");
}

#[test]
fn a_refused_attempt_takes_no_token() {
    let limiter = ConnectionLimiter::new(&limits((1.0, 1), (0.0, 0)));
    let start = Instant::now();
    assert_eq!(limiter.arrive(ip(1), start), Arrival::Admit);
    for i in 1..=9 {
        assert_ne!(limiter.arrive(ip(1), start + Duration::from_millis(100 * i)), Arrival::Admit);
    }
    let later = start + Duration::from_millis(1_100);
    assert_eq!(limiter.arrive(ip(1), later), Arrival::Admit, "the refused attempts did not push it back");
}

#[test]
fn zero_means_no_limit() {
    let limiter = ConnectionLimiter::new(&limits((0.0, 0), (0.0, 0)));
    let now = Instant::now();
    assert!((0..10_000).all(|_| limiter.arrive(ip(1), now) == Arrival::Admit));
    let messages = AccountLimiter::messages(&Limits { messages_per_sec_per_user: 0.0, ..Limits::default() });
    assert!((0..10_000).all(|_| messages.reserve(AccountId(1), now).is_zero()));
}

#[test]
fn ipv6_addresses_share_their_slash_64() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
    let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("address");
    let c: IpAddr = "2001:db8:1:3::1".parse().expect("address");
    assert_eq!(Address::of(a), Address::of(b));
    assert_ne!(Address::of(a), Address::of(c));
    assert_eq!(Address::of(a).to_string(), "2001:db8:1:2::/64");
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("address");
    assert_eq!(Address::of(mapped), Address::of(ip(1)));
    let limiter = ConnectionLimiter::new(&limits((1.0, 1), (0.0, 0)));
    let now = Instant::now();
    assert_eq!(limiter.arrive(a, now), Arrival::Admit);
    assert_ne!(limiter.arrive(b, now), Arrival::Admit, "one /64 is one address");
    assert_eq!(limiter.arrive(c, now), Arrival::Admit);
}

fn registrations(per_ip: (f64, u32), total: (f64, u32)) -> RegistrationLimiter {
    RegistrationLimiter::new(&Limits {
        registrations_per_sec_per_ip: per_ip.0,
        registration_burst_per_ip: per_ip.1,
        registrations_per_sec: total.0,
        registration_burst: total.1,
        ..Limits::default()
    })
}

#[test]
fn new_accounts_are_limited_per_address_then_in_total() {
    let limiter = registrations((0.1, 3), (1.0, 5));
    let start = Instant::now();
    let (here, there, third) = (Address::of(ip(1)), Address::of(ip(2)), Address::of(ip(3)));
    for _ in 0..3 {
        assert_eq!(limiter.take(here, start), Ok(()));
    }
    let Err(RegistrationRefused::Address(wait)) = limiter.take(here, start) else { panic!("over the burst") };
    assert!(wait.abs_diff(Duration::from_secs(10)) < Duration::from_millis(1), "one per 10 s: {wait:?}");
    for _ in 0..2 {
        assert_eq!(limiter.take(there, start), Ok(()), "another address has its own allowance");
    }
    let Err(RegistrationRefused::Total(wait)) = limiter.take(third, start) else { panic!("over the total") };
    assert!(wait.abs_diff(Duration::from_secs(1)) < Duration::from_millis(1), "one a second: {wait:?}");
    assert_eq!(limiter.take(third, start + Duration::from_millis(1_001)), Ok(()));
    assert_eq!(limiter.take(here, start + Duration::from_secs(11)), Ok(()), "the address's next token");
}

#[test]
fn a_registration_given_back_counts_against_nobody() {
    let limiter = registrations((0.001, 1), (0.001, 1));
    let now = Instant::now();
    let here = Address::of(ip(1));
    assert_eq!(limiter.take(here, now), Ok(()));
    assert!(limiter.take(here, now).is_err());
    limiter.give_back(here, now);
    assert_eq!(limiter.take(here, now), Ok(()));
    let off = registrations((0.0, 0), (0.0, 0));
    assert!((0..10_000).all(|_| off.take(here, now).is_ok()), "0 means no limit");
}

#[test]
fn a_slash_64_registers_as_one_address() {
    let limiter = registrations((0.001, 2), (0.0, 0));
    let now = Instant::now();
    for host in ["2001:db8::1", "2001:db8::2"] {
        assert_eq!(limiter.take(Address::of(host.parse().expect("address")), now), Ok(()));
    }
    assert!(limiter.take(Address::of("2001:db8::3".parse().expect("address")), now).is_err());
    assert_eq!(limiter.take(Address::of("2001:db8:0:1::1".parse().expect("address")), now), Ok(()));
}

#[test]
fn a_user_past_the_burst_waits_its_turn_across_sessions() {
    let limits = Limits { messages_per_sec_per_user: 10.0, message_burst_per_user: 5, ..Limits::default() };
    let limiter = AccountLimiter::messages(&limits);
    let (ana, bob) = (AccountId(1), AccountId(2));
    let now = Instant::now();
    for _ in 0..5 {
        assert!(limiter.reserve(ana, now).is_zero());
    }
    // Two sessions of ana asking at the same moment are queued one behind the other, 100 ms apart.
    let about = |wait: Duration, millis: u64| wait.abs_diff(Duration::from_millis(millis)) < Duration::from_millis(1);
    assert!(about(limiter.reserve(ana, now), 100));
    assert!(about(limiter.reserve(ana, now), 200));
    assert!(limiter.reserve(bob, now).is_zero(), "bob is not slowed by ana");
    assert!(limiter.reserve(ana, now + Duration::from_secs(60)).is_zero(), "the allowance comes back");
}

#[test]
fn memory_stays_bounded_under_a_flood_of_addresses() {
    let limiter = ConnectionLimiter::new(&limits((1.0, 1), (0.0, 0)));
    let now = Instant::now();
    for i in 0..(3 * MAX_TRACKED as u32) {
        limiter.arrive(IpAddr::from(i.to_be_bytes()), now);
    }
    let tracked = limiter.state.lock().addresses.len();
    assert!(tracked <= MAX_TRACKED, "{tracked} addresses remembered");
}
