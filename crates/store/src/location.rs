//! Which database a server keeps its state in, and how to open connections to it: for PostgreSQL, the URL
//! without its password, and whether the connection goes over TLS (and which certificates it trusts).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use postgres::config::{Host, SslMode};
use postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::postgres::PostgresStore;
use crate::records::{Durability, StoreError};
use crate::sqlite::SqliteStore;
use crate::{Result, Store};

/// Where the store is: the embedded SQLite file (the default), or a PostgreSQL database that several server
/// nodes may share.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PostgresSettings>),
}

impl Location {
    /// Opens the writer's connection, creating the schema or migrating it to this release's first.
    pub fn open(&self, durability: Durability) -> Result<Box<dyn Store>> {
        Ok(match self {
            Location::Sqlite(path) => Box::new(SqliteStore::open_with(path, durability)?),
            Location::Postgres(settings) => Box::new(PostgresStore::open(settings, durability)?),
        })
    }

    /// Opens a connection for reads, to a store the writer has opened before.
    pub fn open_reader(&self) -> Result<Box<dyn Store>> {
        Ok(match self {
            Location::Sqlite(path) => Box::new(SqliteStore::open_reader(path)?),
            Location::Postgres(settings) => Box::new(PostgresStore::open_reader(settings)?),
        })
    }
}

impl Location {
    /// Names the program in the database's list of connections (`application_name`), as the connections of
    /// `palomar serve` must be named [`crate::postgres::SERVER_APPLICATION`].
    pub fn with_application(self, name: &str) -> Location {
        match self {
            Location::Postgres(mut settings) => {
                settings.config.application_name(name);
                Location::Postgres(settings)
            }
            sqlite => sqlite,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => path.display().fmt(f),
            Location::Postgres(settings) => settings.fmt(f),
        }
    }
}

/// How to reach a PostgreSQL database: a URL with no password in it, and the password apart.
#[derive(Clone)]
pub struct PostgresSettings {
    pub(crate) config: postgres::Config,
    /// The URL as given (it holds no password), for messages.
    shown: String,
    transport: Transport,
}

/// How the bytes to and from the database travel.
#[derive(Clone)]
enum Transport {
    /// In the clear: a database on this machine, or `sslmode=disable`.
    Plain,
    /// Over TLS, the database's certificate checked against these roots and its host name (as libpq's
    /// `sslmode=verify-full`).
    Verified(Arc<rustls::ClientConfig>),
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings").field("url", &self.shown).finish_non_exhaustive()
    }
}

impl fmt::Display for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shown.fmt(f)
    }
}

impl PostgresSettings {
    /// True when `text` names a PostgreSQL database rather than a file.
    pub fn is_url(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }

    /// `url` is `postgres://USER@HOST[:PORT]/DATABASE[?OPTIONS]`. A password is refused there: a URL ends up on
    /// command lines, in process lists and in shell histories. It comes as `password` instead, which the caller
    /// reads from the environment or a file.
    ///
    /// The connection goes over TLS, the database's certificate checked against the system's roots (or those in
    /// the PEM file `sslrootcert`) and its host name, unless every host is this machine or `sslmode=disable`
    /// says otherwise. `sslmode=require`, `verify-ca` and `verify-full` all check the certificate: Palomar never
    /// sends its accounts' password hashes to a database it cannot tell from another. `prefer` and `allow`, which
    /// fall back to plain text without a word, are refused.
    pub fn parse(url: &str, password: Option<String>) -> Result<PostgresSettings> {
        if !Self::is_url(url) {
            return Err(StoreError::Address(format!("{url:?} is not a postgres:// URL")));
        }
        let (rest, tls_options) = take_tls_options(url)?;
        let mut config = postgres::Config::from_str(&rest)
            .map_err(|e| StoreError::Address(format!("cannot read the database URL {url:?}: {e}")))?;
        if config.get_password().is_some() {
            return Err(StoreError::Address(
                "the database URL holds a password: give it in PGPASSWORD or store.password_file instead, where \
                 other users cannot read it"
                    .into(),
            ));
        }
        if config.get_dbname().is_none() {
            return Err(StoreError::Address(format!("the database URL {url:?} names no database (…/DATABASE)")));
        }
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("palomar");
        }
        let transport = transport(&config, &tls_options)?;
        config.ssl_mode(match transport {
            Transport::Plain => SslMode::Disable,
            Transport::Verified(_) => SslMode::Require,
        });
        Ok(PostgresSettings { config, shown: url.to_owned(), transport })
    }

    /// True when the connection goes over TLS.
    pub fn uses_tls(&self) -> bool {
        matches!(self.transport, Transport::Verified(_))
    }

    /// Opens a connection, over TLS or not as the URL says.
    pub(crate) fn connect(&self) -> std::result::Result<Client, postgres::Error> {
        match &self.transport {
            Transport::Plain => self.config.connect(NoTls),
            Transport::Verified(tls) => self.config.connect(MakeRustlsConnect::new((**tls).clone())),
        }
    }
}

/// What the URL says about TLS, in libpq's words.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsOptions {
    sslmode: Option<String>,
    sslrootcert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of the URL's options: the PostgreSQL client reads neither the way libpq
/// does (it knows no `sslrootcert`, and its `require` would not check the certificate).
fn take_tls_options(url: &str) -> Result<(String, TlsOptions)> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), TlsOptions::default())) };
    let mut options = TlsOptions::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => options.sslmode = Some(percent_decoded(value)?),
            Some(("sslrootcert", value)) => options.sslrootcert = Some(PathBuf::from(percent_decoded(value)?)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, options))
}

fn percent_decoded(value: &str) -> Result<String> {
    let bad = || StoreError::Address(format!("the database URL has a badly escaped option value {value:?}"));
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2).and_then(|hex| std::str::from_utf8(hex).ok()).ok_or_else(bad)?;
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

/// Plain text only to this machine or when asked for; TLS with the certificate checked otherwise.
fn transport(config: &postgres::Config, options: &TlsOptions) -> Result<Transport> {
    let local = config.get_hosts().iter().all(|host| match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    });
    let tls = match options.sslmode.as_deref() {
        None => !local,
        Some("disable") => false,
        Some("require" | "verify-ca" | "verify-full") => true,
        Some(mode @ ("prefer" | "allow")) => {
            return Err(StoreError::Address(format!(
                "sslmode={mode} would fall back to an unencrypted connection without saying so: say \
                 sslmode=require (encrypted, the database's certificate checked) or sslmode=disable (a network \
                 you trust)"
            )));
        }
        Some(other) => {
            return Err(StoreError::Address(format!(
                "sslmode={other} is not one of disable, require, verify-ca, verify-full"
            )));
        }
    };
    if !tls {
        return Ok(Transport::Plain);
    }
    let roots = match &options.sslrootcert {
        Some(path) => roots_from(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Address(format!("cannot set up TLS to the database: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Transport::Verified(Arc::new(tls)))
}

/// The certificates of the PEM file `path`, as the only ones trusted (libpq's `sslrootcert`).
fn roots_from(path: &Path) -> Result<rustls::RootCertStore> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unreadable = |e: &dyn fmt::Display| {
        StoreError::Address(format!(
            "cannot read the database's root certificates (sslrootcert) {}: {e}",
            path.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        roots.add(certificate.map_err(|e| unreadable(&e))?).map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"no certificate in it"));
    }
    Ok(roots)
}

/// The operating system's trusted roots.
fn system_roots() -> Result<rustls::RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(StoreError::Address(
            "no trusted root certificate on this system to check the database's with: give the database's CA as \
             sslrootcert=/path/to/ca.pem in the URL"
                .into(),
        ));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused_and_one_given_apart_is_used() {
        let refused = PostgresSettings::parse("postgres://palomar:secret@db.example/chat", None);
        assert!(matches!(refused, Err(StoreError::Address(why)) if why.contains("PGPASSWORD")));
        let settings =
            PostgresSettings::parse("postgres://palomar@db.example:6543/chat", Some("secret".into())).expect("parses");
        assert_eq!(settings.config.get_password(), Some(&b"secret"[..]));
        assert_eq!(settings.config.get_dbname(), Some("chat"));
        assert!(!format!("{settings:?}").contains("secret"));
        assert_eq!(Location::Postgres(Box::new(settings)).to_string(), "postgres://palomar@db.example:6543/chat");
    }

    #[test]
    fn a_url_without_a_database_or_of_another_kind_is_refused() {
        assert!(PostgresSettings::parse("postgres://palomar@db.example", None).is_err());
        assert!(PostgresSettings::parse("mysql://palomar@db.example/chat", None).is_err());
        assert!(PostgresSettings::is_url("postgresql://h/d"));
        assert!(!PostgresSettings::is_url("/var/lib/palomar"));
    }

    fn tls_of(url: &str) -> bool {
        PostgresSettings::parse(url, None).expect("parses").uses_tls()
    }

    #[test]
    fn tls_is_used_for_every_database_off_this_machine_unless_disabled() {
        assert!(!tls_of("postgres://palomar@127.0.0.1/chat"));
        assert!(!tls_of("postgres://palomar@localhost:5433/chat"));
        assert!(!tls_of("postgres://palomar@[::1]/chat"));
        assert!(tls_of("postgres://palomar@db.example/chat"));
        assert!(tls_of("postgres://palomar@10.0.0.7/chat"));
        assert!(!tls_of("postgres://palomar@db.example/chat?sslmode=disable"));
        assert!(tls_of("postgres://palomar@127.0.0.1/chat?sslmode=require&connect_timeout=5"));
        assert!(tls_of("postgres://palomar@127.0.0.1/chat?sslmode=verify-full"));
    }

    #[test]
    fn a_mode_that_falls_back_to_plain_text_or_an_unknown_one_is_refused() {
        for mode in ["prefer", "allow"] {
            let refused = PostgresSettings::parse(&format!("postgres://p@db.example/chat?sslmode={mode}"), None);
            assert!(matches!(refused, Err(StoreError::Address(why)) if why.contains("sslmode=require")));
        }
        let refused = PostgresSettings::parse("postgres://p@db.example/chat?sslmode=sometimes", None);
        assert!(matches!(refused, Err(StoreError::Address(why)) if why.contains("not one of")));
    }

    #[test]
    fn root_certificates_come_from_the_file_named_and_a_bad_one_is_said() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("no such ca.pem");
        let url =
            format!("postgres://p@db.example/chat?sslrootcert={}", missing.display().to_string().replace(' ', "%20"));
        let refused = PostgresSettings::parse(&url, None);
        assert!(matches!(&refused, Err(StoreError::Address(why)) if why.contains("no such ca.pem")), "{refused:?}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("writes");
        let refused =
            PostgresSettings::parse(&format!("postgres://p@db.example/chat?sslrootcert={}", empty.display()), None);
        assert!(matches!(&refused, Err(StoreError::Address(why)) if why.contains("no certificate")), "{refused:?}");
        let bad_escape = PostgresSettings::parse("postgres://p@db.example/chat?sslrootcert=%zz", None);
        assert!(bad_escape.is_err());
    }
}
