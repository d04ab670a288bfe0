//! Which database a server keeps its state in, and how to open connections to it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

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
    pub fn parse(url: &str, password: Option<String>) -> Result<PostgresSettings> {
        if !Self::is_url(url) {
            return Err(StoreError::Address(format!("{url:?} is not a postgres:// URL")));
        }
        let mut config = postgres::Config::from_str(url)
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
        Ok(PostgresSettings { config, shown: url.to_owned() })
    }
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
}
