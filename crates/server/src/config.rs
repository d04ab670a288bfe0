//! The server's configuration: one TOML file, every field optional, defaults embedded
//! (`palomar serve --print-config` prints them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palomar_store::{Location, PostgresSettings};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Directory holding the store and the generated certificate.
    pub data: PathBuf,
    /// Whether the first login with a free nickname registers it.
    pub registration: Registration,
    pub tls: TlsSettings,
    pub limits: Limits,
    pub history: HistorySettings,
    pub login: LoginSettings,
    pub store: StoreSettings,
    pub web: WebSettings,
    pub admin: AdminSettings,
}

/// Longest `login.max_delay_ms`. The delay comes on top of a login's wait for its turn in the password queue, and
/// the reference client gives up on a login after 60 s however long the server keeps it waiting (with pings).
const MAX_LOGIN_DELAY_MS: u64 = 5_000;
/// What a client waits at most for the answer to a login (`palomar_client`'s `LOGIN_DEADLINE`).
const CLIENT_LOGIN_WAIT_SECS: u64 = 60;
/// Longest time any setting may name: a week is past any sensible timeout or lockout, and keeps every deadline
/// the server computes from a setting (now + it, the heartbeat times `missed_heartbeats`) far from overflowing.
const MAX_TIME_SECS: u64 = 7 * 24 * 3_600;
/// Most heartbeats a peer may miss; with [`MAX_TIME_SECS`] per heartbeat the dead-peer time still fits.
const MAX_MISSED_HEARTBEATS: u32 = 1_000;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Closed,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain; without it a self-signed certificate is generated in `<data>/tls`.
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest frame body accepted, in bytes; a larger one closes the connection.
    pub max_frame_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Time allowed for the TLS handshake and the `Hello` frame together.
    pub handshake_timeout_ms: u64,
    /// A ping goes out after this long without traffic.
    pub heartbeat_interval_ms: u64,
    /// A peer silent for this many heartbeat intervals is taken for dead.
    pub missed_heartbeats: u32,
    /// Messages of one connection waiting for the store before the server stops reading from it.
    pub max_unacknowledged_per_connection: usize,
    /// Bytes of those messages' texts, at most: past it the server stops reading from the connection too.
    pub max_unacknowledged_bytes_per_connection: usize,
    /// Bytes of frames read from a connection ahead of the session that handles them (at least one frame of
    /// `max_frame_bytes`). While the session is slowed down or waits, the server stops reading and TCP pushes
    /// back, so whatever a client sends, this is what waits in memory for it.
    pub read_ahead_bytes_per_connection: usize,
    /// Live deliveries and presence buffered per connection; past it the session reads back what it missed (the
    /// log's messages, the rooms' member lists) instead.
    pub live_queue_per_connection: usize,
    /// New connections accepted per second in total (0: no limit), after a burst of `new_connection_burst`.
    /// Past it a connection is refused with `ServerFull` (or, in a flood, closed before TLS).
    pub new_connections_per_sec: f64,
    pub new_connection_burst: u32,
    /// The same per address (per /64 for IPv6).
    pub new_connections_per_sec_per_ip: f64,
    pub new_connection_burst_per_ip: u32,
    /// Messages one account may send per second over all its sessions (0: no limit), after a burst of
    /// `message_burst_per_user`. Past it the server reads that account's connections more slowly: the
    /// sender is slowed down, nothing is refused or dropped.
    pub messages_per_sec_per_user: f64,
    pub message_burst_per_user: u32,
    /// The same for the other requests that cost the server a store read or write, or a notice to others:
    /// scrollback (`History`), `Join`, `Leave` and member lists (`Users`). A client asks for scrollback and
    /// members of each of its conversations when it starts, hence the burst.
    pub requests_per_sec_per_user: f64,
    pub request_burst_per_user: u32,
    /// Connections one account may have logged in at once: a person has a few devices, not hundreds.
    pub max_sessions_per_user: usize,
    /// Rooms one account may be a member of.
    pub max_rooms_per_user: u64,
    /// A user's arrival is announced to its rooms once a session of it has lasted this long, and then its
    /// departure too: a script that connects, sends and leaves at once does not notify everyone twice.
    pub presence_after_ms: u64,
    /// New accounts per second in total (0: no limit), after a burst of `registration_burst`. Past it a
    /// registration is answered `ServerBusy`.
    pub registrations_per_sec: f64,
    pub registration_burst: u32,
    /// The same per address (per /64 for IPv6); past it a registration is answered `RateLimited`.
    pub registrations_per_sec_per_ip: f64,
    pub registration_burst_per_ip: u32,
    /// Password checks (logins of existing accounts) waiting for the password threads; past it a login is
    /// answered `ServerBusy`, to retry later.
    pub password_queue: usize,
    /// Registrations waiting for the password threads, which take them only when no check waits; past it a
    /// registration is answered `ServerBusy`.
    pub registration_queue: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySettings {
    /// How many earlier messages a new member of a room receives.
    pub join_window: u64,
    /// Messages kept per conversation; 0 keeps everything.
    pub retention_messages: u64,
    /// How often retention runs.
    pub retention_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LoginSettings {
    /// Failed logins of one nickname from one address before that pair is locked out (the nickname from other
    /// addresses, and the address for other nicknames, are not).
    pub max_failures: u32,
    /// The pair's lockout after `max_failures`, doubled for every further failure up to `max_lockout_secs`.
    pub lockout_secs: u64,
    pub max_lockout_secs: u64,
    /// Failed logins from one address, whatever the nicknames, before the address is locked out for
    /// `address_lockout_secs` (0: no limit). Kept short: many people may share one address.
    pub max_failures_per_address: u32,
    pub address_lockout_secs: u64,
    /// Once a nickname had `max_failures` recent failures, from any addresses, each further login of it waits
    /// this long before it is judged, doubled for every further failure up to `max_delay_ms`. Logins of one
    /// nickname are judged one at a time, so this paces guessing from many addresses without locking the
    /// nickname's owner out.
    pub delay_ms: u64,
    pub max_delay_ms: u64,
}

/// The browser client's HTTPS listener: its files and its WebSocket (PROTOCOL.md, section 15).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Whether to serve the browser client at all.
    pub enabled: bool,
    /// Address and port of the HTTPS listener, with the same certificate as `listen`.
    pub listen: SocketAddr,
    /// Origins besides the server's own (`https://` and the address the browser asked for) whose pages may open
    /// the WebSocket, e.g. "https://chat.example.org" behind a proxy; each is scheme://host[:port].
    pub allowed_origins: Vec<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 5580)), allowed_origins: Vec::new() }
    }
}

/// The operator's listener: Prometheus metrics and health checks over plain HTTP, for a loopback or private
/// address only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Address and port of `/metrics`, `/healthz` and `/readyz`; unset, there is no such listener.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// When a commit counts as done. "full" (the default): synced to disk before any message in it is
    /// acknowledged, so nothing acknowledged is lost even to a power cut. "normal": written to the operating
    /// system and synced at checkpoints; still nothing lost when the server process dies (even `kill -9`),
    /// but a power cut or an OS crash may lose the last acknowledged messages. Faster on slow disks.
    pub durability: Durability,
    /// A PostgreSQL database to keep everything in, instead of the embedded store in `data`:
    /// `postgres://USER@HOST[:PORT]/DATABASE`, with no password in it.
    pub database: Option<String>,
    /// A file holding the database user's password (else the `PGPASSWORD` environment variable; else none).
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

impl From<Durability> for palomar_store::Durability {
    fn from(durability: Durability) -> Self {
        match durability {
            Durability::Full => palomar_store::Durability::Full,
            Durability::Normal => palomar_store::Durability::Normal,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5555)),
            data: PathBuf::from("palomar-data"),
            registration: Registration::Open,
            tls: TlsSettings::default(),
            limits: Limits::default(),
            history: HistorySettings::default(),
            login: LoginSettings::default(),
            store: StoreSettings::default(),
            web: WebSettings::default(),
            admin: AdminSettings::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: palomar_proto::DEFAULT_MAX_FRAME,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            handshake_timeout_ms: 10_000,
            heartbeat_interval_ms: 2_000,
            missed_heartbeats: 3,
            max_unacknowledged_per_connection: 1_024,
            max_unacknowledged_bytes_per_connection: 256 * 1024,
            read_ahead_bytes_per_connection: 128 * 1024,
            live_queue_per_connection: 1_024,
            // A restart's reconnecting crowd or `palomar bench --clients 200` fits in the bursts; a flood of
            // handshakes is held to what two cores shrug off, and to what one address may reasonably need.
            new_connections_per_sec: 200.0,
            new_connection_burst: 1_000,
            new_connections_per_sec_per_ip: 20.0,
            new_connection_burst_per_ip: 500,
            // Far beyond anyone typing, enough for a script or an outbox resent after a while offline.
            messages_per_sec_per_user: 20.0,
            message_burst_per_user: 200,
            requests_per_sec_per_user: 20.0,
            request_burst_per_user: 500,
            max_sessions_per_user: 16,
            max_rooms_per_user: 1_000,
            presence_after_ms: 2_000,
            // People register once: a household or a classroom behind one address fits in the burst, a script
            // minting accounts gets one every 10 s per address and one a second in all (2 % of a core hashing).
            registrations_per_sec: 1.0,
            registration_burst: 100,
            registrations_per_sec_per_ip: 0.1,
            registration_burst_per_ip: 20,
            // At ~20 ms per Argon2 run on two threads: about 1.3 s of checks waiting, well inside the 60 s a
            // client waits for its answer while the server pings; a restart's reconnecting crowd past that retries
            // with backoff.
            password_queue: 128,
            registration_queue: 16,
        }
    }
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings { join_window: 50, retention_messages: 0, retention_interval_secs: 60 }
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings {
            max_failures: 5,
            lockout_secs: 30,
            max_lockout_secs: 900,
            max_failures_per_address: 20,
            address_lockout_secs: 60,
            delay_ms: 250,
            max_delay_ms: 3_000,
        }
    }
}

/// `[tls]` as `--print-config` shows it: both keys are unset by default.
const TLS_SETTINGS: &str = "[tls]
# A certificate chain and its private key (PEM), for a CA-issued certificate; set both or neither. Without them
# the server generates a self-signed certificate in <data>/tls and clients pin it on first use. SIGHUP reloads
# them (a renewed certificate, without a restart).
# cert = \"/etc/palomar/fullchain.pem\"
# key = \"/etc/palomar/privkey.pem\"
";

/// An origin as browsers send it in `Origin`: `https://host` or `http://host`, an optional port, nothing else.
fn is_origin(text: &str) -> bool {
    let Some(authority) = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")) else {
        return false;
    };
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 address, in brackets.
        Some(inner) => match inner.split_once(']') {
            Some((address, rest)) => (address, rest),
            None => return false,
        },
        None => authority.find(':').map_or((authority, ""), |colon| authority.split_at(colon)),
    };
    let host_ok = if authority.starts_with('[') {
        host.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty() && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    let port_ok =
        port.is_empty() || port.strip_prefix(':').is_some_and(|port| port.parse::<u16>().is_ok_and(|p| p > 0));
    host_ok && port_ok
}

/// `[admin]` as `--print-config` shows it: off by default.
const ADMIN_SETTINGS: &str = "[admin]
# Prometheus metrics (/metrics) and health checks (/healthz: the process answers; /readyz: the store takes
# writes), plain HTTP without authentication: keep it on a loopback or private address.
# listen = \"127.0.0.1:9555\"
";

/// `[store]` as `--print-config` shows it: the database keys are unset by default.
const STORE_SETTINGS: &str = "[store]
# Everything is kept in <data>/store.sqlite unless a PostgreSQL database is named here (see the README). Its
# password comes from password_file or PGPASSWORD, never the URL.
# database = \"postgres://palomar@db.example/palomar\"
# password_file = \"/etc/palomar/database-password\"
";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The causes are part of the message, not `source`s: a report that prints the chain would say them twice.
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{path} is not a valid configuration: {error}")]
    Parse { path: PathBuf, error: Box<toml::de::Error> },
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        let config: Config = toml::from_str(&text)
            .map_err(|error| ConfigError::Parse { path: path.to_owned(), error: Box::new(error) })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        if limits.max_frame_bytes < 1024 {
            return Err(ConfigError::Invalid("limits.max_frame_bytes must be at least 1024".into()));
        }
        if limits.heartbeat_interval_ms == 0 || limits.missed_heartbeats == 0 {
            return Err(ConfigError::Invalid(
                "limits.heartbeat_interval_ms and limits.missed_heartbeats must be positive".into(),
            ));
        }
        if limits.missed_heartbeats > MAX_MISSED_HEARTBEATS {
            return Err(ConfigError::Invalid(format!(
                "limits.missed_heartbeats may not exceed {MAX_MISSED_HEARTBEATS}"
            )));
        }
        let times = [
            ("limits.handshake_timeout_ms", Duration::from_millis(limits.handshake_timeout_ms)),
            ("limits.heartbeat_interval_ms", Duration::from_millis(limits.heartbeat_interval_ms)),
            ("limits.presence_after_ms", Duration::from_millis(limits.presence_after_ms)),
            ("history.retention_interval_secs", Duration::from_secs(self.history.retention_interval_secs)),
            ("login.lockout_secs", Duration::from_secs(self.login.lockout_secs)),
            ("login.max_lockout_secs", Duration::from_secs(self.login.max_lockout_secs)),
            ("login.address_lockout_secs", Duration::from_secs(self.login.address_lockout_secs)),
        ];
        if let Some((name, _)) = times.iter().find(|(_, time)| time.as_secs() > MAX_TIME_SECS) {
            return Err(ConfigError::Invalid(format!("{name} may not exceed a week ({MAX_TIME_SECS} s)")));
        }
        if limits.max_unacknowledged_per_connection == 0
            || limits.live_queue_per_connection == 0
            || limits.max_sessions_per_user == 0
            || limits.max_rooms_per_user == 0
        {
            return Err(ConfigError::Invalid(
                "per-connection queue limits, max_sessions_per_user and max_rooms_per_user must be positive".into(),
            ));
        }
        if limits.max_unacknowledged_bytes_per_connection < palomar_proto::names::MAX_TEXT_LEN {
            return Err(ConfigError::Invalid(format!(
                "limits.max_unacknowledged_bytes_per_connection must be at least {} (one message)",
                palomar_proto::names::MAX_TEXT_LEN
            )));
        }
        if limits.read_ahead_bytes_per_connection < limits.max_frame_bytes {
            return Err(ConfigError::Invalid(
                "limits.read_ahead_bytes_per_connection must be at least limits.max_frame_bytes".into(),
            ));
        }
        let rates = [
            ("new_connections_per_sec", limits.new_connections_per_sec, limits.new_connection_burst),
            (
                "new_connections_per_sec_per_ip",
                limits.new_connections_per_sec_per_ip,
                limits.new_connection_burst_per_ip,
            ),
            ("messages_per_sec_per_user", limits.messages_per_sec_per_user, limits.message_burst_per_user),
            ("requests_per_sec_per_user", limits.requests_per_sec_per_user, limits.request_burst_per_user),
            ("registrations_per_sec", limits.registrations_per_sec, limits.registration_burst),
            ("registrations_per_sec_per_ip", limits.registrations_per_sec_per_ip, limits.registration_burst_per_ip),
        ];
        for (name, per_sec, burst) in rates {
            if !per_sec.is_finite() || per_sec < 0.0 {
                return Err(ConfigError::Invalid(format!("limits.{name} must be a number, 0 or more (0: no limit)")));
            }
            if per_sec > 0.0 && burst == 0 {
                return Err(ConfigError::Invalid(format!("the burst that goes with limits.{name} must be at least 1")));
            }
        }
        if limits.password_queue == 0 || limits.registration_queue == 0 {
            return Err(ConfigError::Invalid(
                "limits.password_queue and limits.registration_queue must be positive".into(),
            ));
        }
        let login = &self.login;
        if login.max_failures == 0 {
            return Err(ConfigError::Invalid("login.max_failures must be at least 1".into()));
        }
        if login.lockout_secs > login.max_lockout_secs || login.address_lockout_secs > login.max_lockout_secs {
            return Err(ConfigError::Invalid(
                "login.lockout_secs and login.address_lockout_secs may not exceed login.max_lockout_secs".into(),
            ));
        }
        if login.delay_ms > login.max_delay_ms || login.max_delay_ms > MAX_LOGIN_DELAY_MS {
            return Err(ConfigError::Invalid(format!(
                "login.delay_ms may not exceed login.max_delay_ms, and that not {MAX_LOGIN_DELAY_MS} (the delay \
                 comes on top of the wait for the password queue, and clients give up on a login after \
                 {CLIENT_LOGIN_WAIT_SECS} s)"
            )));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid("tls.cert and tls.key go together".into()));
        }
        match &self.store.database {
            Some(url) => {
                PostgresSettings::parse(url, None).map_err(|e| ConfigError::Invalid(format!("store.database: {e}")))?;
            }
            None if self.store.password_file.is_some() => {
                return Err(ConfigError::Invalid("store.password_file goes with store.database".into()));
            }
            None => {}
        }
        if let Some(origin) = self.web.allowed_origins.iter().find(|origin| !is_origin(origin)) {
            return Err(ConfigError::Invalid(format!(
                "web.allowed_origins: {origin:?} is not an origin (scheme://host[:port], lower-case, nothing after)"
            )));
        }
        Ok(())
    }

    /// The default configuration as TOML, for `--print-config`. Settings unset by default (the TLS files) are
    /// there too, commented out, with what they do: TOML has no way to write "unset".
    pub fn default_toml() -> String {
        let text = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        text.replacen("[tls]\n", TLS_SETTINGS, 1).replacen("[store]\n", STORE_SETTINGS, 1).replacen(
            "[admin]\n",
            ADMIN_SETTINGS,
            1,
        )
    }

    /// Whether HSTS may be sent: only with a configured certificate, since telling browsers to insist on HTTPS
    /// with a self-signed one would lock users out the day it changes.
    pub fn has_real_certificate(&self) -> bool {
        self.tls.cert.is_some()
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.limits.heartbeat_interval_ms)
    }

    /// Silence after which a peer is taken for dead.
    pub fn dead_after(&self) -> Duration {
        self.heartbeat_interval() * self.limits.missed_heartbeats
    }

    /// Where the store is: the database of `store.database`, with its password read now from
    /// `store.password_file` or `PGPASSWORD`; else the embedded store in the data directory.
    pub fn store_location(&self) -> Result<Location, ConfigError> {
        let Some(url) = &self.store.database else { return Ok(Location::Sqlite(self.data.join("store.sqlite"))) };
        let password = match &self.store.password_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.clone(), error })?;
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            None => std::env::var("PGPASSWORD").ok(),
        };
        PostgresSettings::parse(url, password)
            .map(|settings| Location::Postgres(Box::new(settings)))
            .map_err(|e| ConfigError::Invalid(format!("store.database: {e}")))
    }
}

#[cfg(test)]
mod tests;
