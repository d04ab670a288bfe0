//! Rate limits as token buckets: new connections per address and in total ([`ConnectionLimiter`], asked by
//! the accept loop before anything else is spent on a connection), new accounts per address and in total
//! ([`RegistrationLimiter`], asked before a registration's password is hashed), and requests per account across
//! all its sessions ([`AccountLimiter`], awaited by a session before it handles a `Send`, or a scrollback, join,
//! leave or member list). What every per-address limit of the server counts as one address is [`Address`]. The
//! per-address and per-account state is bounded ([`Recent`]): what has not been seen for a while is forgotten.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use palomar_store::AccountId;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::Limits;

/// Most addresses or accounts remembered by one limiter (two generations of half as many each).
const MAX_TRACKED: usize = 65_536;
/// Explaining a refusal in words costs a TLS handshake, so explanations have a budget of their own: at most
/// this many per second in all (past it, refused connections are closed before TLS) …
const EXPLANATIONS_PER_SEC: f64 = 20.0;
const EXPLANATION_BURST: f64 = 40.0;
/// … and at most one per address per this long, so one flooding address cannot use up everyone's.
const EXPLANATION_INTERVAL: Duration = Duration::from_secs(1);

/// A sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Rate {
    /// `None` when `per_sec` is 0: no limit.
    pub fn new(per_sec: f64, burst: u32) -> Option<Rate> {
        (per_sec > 0.0).then_some(Rate { per_sec, burst: f64::from(burst.max(1)) })
    }
}

/// Tokens refill continuously at `rate.per_sec` up to `rate.burst`; each event takes one.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket { tokens: rate.burst, updated: now }
    }

    /// The bucket of a limit that may be switched off (then it is never consulted).
    fn full_if(rate: Option<Rate>, now: Instant) -> Bucket {
        Bucket { tokens: rate.map_or(0.0, |rate| rate.burst), updated: now }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.updated = now;
    }

    fn has_token(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= 1.0
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }

    /// Puts back a token taken for something that then did not happen.
    fn give_back(&mut self, rate: Rate) {
        self.tokens = (self.tokens + 1.0).min(rate.burst);
    }

    /// How long until there is a token, as of the last refill.
    fn wait(&self, rate: Rate) -> Duration {
        Duration::try_from_secs_f64((1.0 - self.tokens).max(0.0) / rate.per_sec).unwrap_or(Duration::MAX)
    }

    /// Takes a token whether or not there is one, going into debt if need be; returns how long until the
    /// token taken would have been there. Callers wait that long, so the debt stays small.
    fn reserve(&mut self, rate: Rate, now: Instant) -> Duration {
        self.refill(rate, now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // A configured rate may be tiny: a wait too long to represent is simply forever.
            Duration::try_from_secs_f64(-self.tokens / rate.per_sec).unwrap_or(Duration::MAX)
        }
    }
}

/// A map that remembers at most `MAX_TRACKED` keys: two generations, the older one dropped whenever the newer
/// one is full. A key used during the last generation is carried over; one unused for a whole generation is
/// forgotten, which gives it a fresh allowance at worst (the total limit still holds).
struct Recent<K, V> {
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
}

impl<K: Hash + Eq + Clone, V> Recent<K, V> {
    fn new() -> Self {
        Recent { current: HashMap::new(), previous: HashMap::new() }
    }

    fn get_or_insert_with(&mut self, key: &K, make: impl FnOnce() -> V) -> &mut V {
        if !self.current.contains_key(key) {
            let carried = self.previous.remove(key);
            if self.current.len() >= MAX_TRACKED / 2 {
                self.previous = std::mem::take(&mut self.current);
            }
            return self.current.entry(key.clone()).or_insert(carried.unwrap_or_else(make));
        }
        self.current.entry(key.clone()).or_insert_with(make)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// One address, as every per-address limit of the server counts it (new connections, open connections, new
/// accounts, failed logins): an IPv4 address, or an IPv6 /64, because an IPv6 host usually holds a whole /64
/// and could otherwise be thousands of addresses. An IPv4-mapped IPv6 address is its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address(IpAddr);

impl Address {
    pub fn of(ip: IpAddr) -> Address {
        Address(match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
        })
    }

    /// The address as counted (an IPv6 address is its /64).
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Admit,
    /// Over a limit: finish TLS, say why with `ServerFull`, close.
    Explain(&'static str),
    /// Over a limit, and explanations are used up: close at once, before TLS (the cheapest refusal).
    Close,
}

struct AddressState {
    bucket: Bucket,
    explained: Option<Instant>,
}

struct ConnectionState {
    total: Bucket,
    explanations: Bucket,
    addresses: Recent<Address, AddressState>,
}

/// New connections per second, per address and in total. Only admitted connections take tokens, so a
/// client refused while a flood goes on gets in as soon as the flood stops and tokens are back.
pub struct ConnectionLimiter {
    total: Option<Rate>,
    per_address: Option<Rate>,
    explanations: Rate,
    state: Mutex<ConnectionState>,
}

impl ConnectionLimiter {
    pub fn new(limits: &Limits) -> ConnectionLimiter {
        let now = Instant::now();
        let total = Rate::new(limits.new_connections_per_sec, limits.new_connection_burst);
        let explanations = Rate { per_sec: EXPLANATIONS_PER_SEC, burst: EXPLANATION_BURST };
        ConnectionLimiter {
            total,
            per_address: Rate::new(limits.new_connections_per_sec_per_ip, limits.new_connection_burst_per_ip),
            explanations,
            state: Mutex::new(ConnectionState {
                total: Bucket::full_if(total, now),
                explanations: Bucket::full(explanations, now),
                addresses: Recent::new(),
            }),
        }
    }

    /// Decides about a connection from `ip` arriving at `now`.
    pub fn arrive(&self, ip: IpAddr, now: Instant) -> Arrival {
        if self.total.is_none() && self.per_address.is_none() {
            return Arrival::Admit;
        }
        let mut guard = self.state.lock();
        let ConnectionState { total, explanations, addresses } = &mut *guard;
        let address = addresses.get_or_insert_with(&Address::of(ip), || AddressState {
            bucket: Bucket::full_if(self.per_address, now),
            explained: None,
        });
        let address_ok = self.per_address.is_none_or(|rate| address.bucket.has_token(rate, now));
        let total_ok = self.total.is_none_or(|rate| total.has_token(rate, now));
        if address_ok && total_ok {
            if self.per_address.is_some() {
                address.bucket.take();
            }
            if self.total.is_some() {
                total.take();
            }
            return Arrival::Admit;
        }
        let explain = address.explained.is_none_or(|at| now.saturating_duration_since(at) >= EXPLANATION_INTERVAL)
            && explanations.has_token(self.explanations, now);
        if !explain {
            return Arrival::Close;
        }
        explanations.take();
        address.explained = Some(now);
        Arrival::Explain(if address_ok {
            "the server is taking too many new connections right now; try again in a few seconds"
        } else {
            "too many new connections from your address; try again in a few seconds"
        })
    }
}

/// Which registration limit a new account is over, and how long until it would not be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationRefused {
    /// Too many new accounts from this address.
    Address(Duration),
    /// Too many new accounts in total.
    Total(Duration),
}

struct RegistrationState {
    total: Bucket,
    addresses: Recent<Address, Bucket>,
}

/// New accounts per second, per address and in total. Each costs an Argon2 hash now and a row in the store for
/// good, so a stranger may not make them as fast as the password threads would take them.
pub struct RegistrationLimiter {
    total: Option<Rate>,
    per_address: Option<Rate>,
    state: Mutex<RegistrationState>,
}

impl RegistrationLimiter {
    pub fn new(limits: &Limits) -> RegistrationLimiter {
        let total = Rate::new(limits.registrations_per_sec, limits.registration_burst);
        RegistrationLimiter {
            total,
            per_address: Rate::new(limits.registrations_per_sec_per_ip, limits.registration_burst_per_ip),
            state: Mutex::new(RegistrationState {
                total: Bucket::full_if(total, Instant::now()),
                addresses: Recent::new(),
            }),
        }
    }

    /// Takes a token for one new account from `address`, or says which limit is reached. A refused attempt
    /// takes nothing.
    pub fn take(&self, address: Address, now: Instant) -> Result<(), RegistrationRefused> {
        if self.total.is_none() && self.per_address.is_none() {
            return Ok(());
        }
        let mut guard = self.state.lock();
        let RegistrationState { total, addresses } = &mut *guard;
        let bucket = addresses.get_or_insert_with(&address, || Bucket::full_if(self.per_address, now));
        if let Some(rate) = self.per_address
            && !bucket.has_token(rate, now)
        {
            return Err(RegistrationRefused::Address(bucket.wait(rate)));
        }
        if let Some(rate) = self.total
            && !total.has_token(rate, now)
        {
            return Err(RegistrationRefused::Total(total.wait(rate)));
        }
        if self.per_address.is_some() {
            bucket.take();
        }
        if self.total.is_some() {
            total.take();
        }
        Ok(())
    }

    /// Gives back the token of a registration that did not take place (the server was too busy to hash its
    /// password), so that it counts against nobody.
    pub fn give_back(&self, address: Address, now: Instant) {
        let mut guard = self.state.lock();
        let RegistrationState { total, addresses } = &mut *guard;
        if let Some(rate) = self.per_address {
            addresses.get_or_insert_with(&address, || Bucket::full(rate, now)).give_back(rate);
        }
        if let Some(rate) = self.total {
            total.give_back(rate);
        }
    }
}

/// Requests of one kind per second per account, shared by all the account's sessions: messages, and apart from
/// them the requests that cost a store read or write or a notice to others (scrollback, joins, leaves, member
/// lists).
pub struct AccountLimiter {
    rate: Option<Rate>,
    buckets: Mutex<Recent<AccountId, Bucket>>,
}

impl AccountLimiter {
    /// At most `per_sec` after a burst of `burst`; 0 switches the limit off.
    pub fn new(per_sec: f64, burst: u32) -> AccountLimiter {
        AccountLimiter { rate: Rate::new(per_sec, burst), buckets: Mutex::new(Recent::new()) }
    }

    /// The limit of `Send`s.
    pub fn messages(limits: &Limits) -> AccountLimiter {
        AccountLimiter::new(limits.messages_per_sec_per_user, limits.message_burst_per_user)
    }

    /// The limit of `History`, `Join`, `Leave` and `Users`.
    pub fn requests(limits: &Limits) -> AccountLimiter {
        AccountLimiter::new(limits.requests_per_sec_per_user, limits.request_burst_per_user)
    }

    /// Takes a token for one request of `account`; returns how long the session must wait before handling it.
    pub fn reserve(&self, account: AccountId, now: Instant) -> Duration {
        let Some(rate) = self.rate else { return Duration::ZERO };
        let mut buckets = self.buckets.lock();
        buckets.get_or_insert_with(&account, || Bucket::full(rate, now)).reserve(rate, now)
    }

    /// Takes a token for one notice of `account` if there is one: false, and nothing taken, when the account is
    /// over its rate. For what is dropped rather than waited for (typing notices).
    pub fn try_take(&self, account: AccountId, now: Instant) -> bool {
        let Some(rate) = self.rate else { return true };
        let mut buckets = self.buckets.lock();
        let bucket = buckets.get_or_insert_with(&account, || Bucket::full(rate, now));
        if !bucket.has_token(rate, now) {
            return false;
        }
        bucket.take();
        true
    }

    /// Waits until `account` may make one more request (or `stop`: the server shuts down, or the client left).
    /// While a session waits here it reads nothing more from its client: TCP then slows the sender down, and
    /// nothing is dropped. True when it had to wait.
    pub async fn pace(&self, account: AccountId, stop: &CancellationToken) -> bool {
        let wait = self.reserve(account, Instant::now());
        if wait.is_zero() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => {}
        }
        true
    }
}

#[cfg(test)]
mod tests;
