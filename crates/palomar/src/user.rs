//! `palomar user`: account management on a server's store (add, remove, list, set a password, suspend, make an
//! operator). Straight on the store, except a removal while a server runs on it, which that server carries out.
//! Every change is recorded in the store's audit log, under the operator who made it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use palomar_proto::{Nick, RoomName, unix_ms};
use palomar_server::{Config, DataDirLock};
use palomar_store::postgres::PostgresStore;
use palomar_store::{ConvKey, Durability, Location, Store, password};

/// Which server's store to work on.
#[derive(Args)]
pub struct StoreChoice {
    /// The server's data directory.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The server's PostgreSQL database, as `palomar serve --store` names it (its password from PGPASSWORD).
    #[arg(long, value_name = "postgres://USER@HOST/DATABASE")]
    store: Option<String>,
    /// Read the data directory or database from this configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl StoreChoice {
    /// The server's configuration, with `--data` and `--store` applied, and where its store is.
    pub fn locate(self) -> anyhow::Result<(Config, Location)> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(data) = self.data {
            config.data = data;
        }
        if let Some(url) = self.store {
            config.store.database = Some(url);
        }
        config.validate()?;
        let location = config.store_location()?.with_application("palomar user");
        Ok((config, location))
    }
}

#[derive(Args)]
pub struct UserArgs {
    #[command(flatten)]
    store: StoreChoice,
    /// Read the password from this file (else PALOMAR_PASSWORD, else a prompt).
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Subcommand)]
enum UserAction {
    /// Create an account (a member of #lobby).
    Add { nick: String },
    /// Delete an account with its direct conversations (for both sides); its messages in rooms stay. The nickname
    /// can then be registered again, as a new account with no past.
    Remove { nick: String },
    /// List the accounts, with their suspensions.
    List,
    /// Set an account's password.
    Passwd { nick: String },
    /// Keep an account from logging in, and end its sessions at once.
    Suspend {
        nick: String,
        /// How long, as a number and a unit: 30s, 30m, 12h, 7d (without it, until `palomar user unsuspend`).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Why, as the account's client will be told.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift an account's suspension.
    Unsuspend { nick: String },
    /// Make an account one of the server's operators, who moderate every room (with the slash commands of any
    /// client: /kick, /ban, /mute, /topic, …). Its next login shows it to its client.
    Promote { nick: String },
    /// Make an operator an ordinary account again.
    Demote { nick: String },
}

/// Longest reason for a suspension.
const MAX_REASON_BYTES: usize = 500;

/// `30s`, `30m`, `12h`, `7d`.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let bad = || format!("{raw:?} is not a duration such as 30s, 30m, 12h or 7d");
    let split = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = raw.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if number == 0 {
        return Err(format!("{raw:?}: a suspension must last some time"));
    }
    // Past this, "until lifted" says it better than a date thousands of years away.
    let secs = number.checked_mul(unit).filter(|secs| *secs <= 100 * 365 * 86_400);
    secs.map(Duration::from_secs).ok_or_else(|| format!("{raw:?}: longer than 100 years; leave --for out"))
}

/// Who is running this command, for the audit log: the user the process runs as.
pub fn operator() -> String {
    // `/proc/self` belongs to the process's user.
    let uid = std::fs::metadata("/proc/self").map_or_else(|_| "?".to_owned(), |meta| meta.uid().to_string());
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "?".to_owned());
    format!("operator (uid {uid}, {user})")
}

/// How long `palomar user remove` waits for a running server to carry the removal out.
const SERVER_PATIENCE: Duration = Duration::from_secs(30);

/// Asks the server that holds the data directory to remove the account (only its writer may: it also ends the
/// account's sessions and tells its peers' sessions), and waits until it has.
fn removed_by_the_server(db: &dyn Store, nick: &Nick) -> anyhow::Result<bool> {
    let request = db.request_removal(nick, unix_ms())?;
    let deadline = Instant::now() + SERVER_PATIENCE;
    loop {
        if let Some(removed) = db.removal_outcome(request)? {
            return Ok(removed);
        }
        if Instant::now() > deadline {
            bail!(
                "the server running on this store did not remove {nick} within {} s; it will when it can (the \
                 request stays queued)",
                SERVER_PATIENCE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let (config, location) = args.store.locate()?;
    if let Location::Sqlite(store) = &location {
        if !store.exists() && !matches!(args.action, UserAction::Add { .. }) {
            bail!("no store at {}: wrong --data?", store.display());
        }
        std::fs::create_dir_all(&config.data).with_context(|| format!("cannot create {}", config.data.display()))?;
        // Owner-only, as `palomar serve` makes it: the store holds the password hashes.
        std::fs::set_permissions(&config.data, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict the data directory {}", config.data.display()))?;
    }
    let db = location.open(Durability::Full).with_context(|| format!("cannot open the store {location}"))?;
    let nick = |raw: &str| Nick::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"));
    let operator = operator();
    let audit = |action: &str, nick: &Nick, detail: &str| {
        db.record_audit(unix_ms(), &operator, action, nick.as_str(), detail)
            .with_context(|| format!("{action} {nick} was done, but could not be recorded in the audit log"))
    };
    match args.action {
        UserAction::Add { nick: raw } => {
            let nick = nick(&raw)?;
            if db.account(&nick)?.is_some() {
                bail!("{nick} already exists");
            }
            let hash =
                password::hash_password(&crate::secrets::password(args.password_file.as_deref(), "new password: ")?)?;
            db.begin()?;
            let result = (|| {
                let Some(account) = db.create_account(&nick, &hash, unix_ms())? else { return Ok(false) };
                let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby()))?;
                db.add_member(lobby.id, account.id, lobby.last_seq.saturating_sub(config.history.join_window))?;
                Ok::<_, palomar_store::StoreError>(true)
            })();
            match result {
                Ok(true) => db.commit()?,
                Ok(false) => {
                    db.rollback();
                    bail!("{nick} already exists");
                }
                Err(e) => {
                    db.rollback();
                    return Err(e.into());
                }
            }
            audit("user add", &nick, "")?;
            println!("created {nick}");
        }
        UserAction::Remove { nick: raw } => {
            let nick = nick(&raw)?;
            // While no server runs on the store, the removal is done here; the data directory's lock, held until
            // it is done, keeps a server from starting meanwhile.
            let removed = match &location {
                Location::Sqlite(_) => match DataDirLock::take(&config.data)? {
                    Some(_no_server) => db.remove_account(&nick)?.is_some(),
                    None => removed_by_the_server(&*db, &nick)?,
                },
                Location::Postgres(settings) if PostgresStore::servers_connected(settings)? == 0 => {
                    db.remove_account(&nick)?.is_some()
                }
                Location::Postgres(_) => removed_by_the_server(&*db, &nick)?,
            };
            if !removed {
                bail!("there is no account {nick}");
            }
            audit("user remove", &nick, "")?;
            println!("removed {nick}");
        }
        UserAction::List => {
            let suspended: std::collections::HashMap<Nick, palomar_store::Suspension> =
                db.suspensions(unix_ms())?.into_iter().map(|s| (s.account.nick.clone(), s)).collect();
            let operators: std::collections::HashSet<Nick> = db.operators()?.into_iter().collect();
            for (nick, created_ms) in db.accounts()? {
                let operator = if operators.contains(&nick) { "\toperator" } else { "" };
                let suspension = suspended.get(&nick).map_or_else(String::new, |s| format!("\t{}", describe(s)));
                println!("{nick}\tcreated {}{operator}{suspension}", crate::output::utc_datetime(created_ms));
            }
        }
        UserAction::Promote { nick: raw } => {
            let nick = nick(&raw)?;
            if db.operators()?.contains(&nick) {
                bail!("{nick} is an operator already");
            }
            if db.set_operator(&nick, true)?.is_none() {
                bail!("there is no account {nick}");
            }
            audit("user promote", &nick, "")?;
            println!("{nick} is an operator: it moderates every room");
        }
        UserAction::Demote { nick: raw } => {
            let nick = nick(&raw)?;
            if db.account(&nick)?.is_none() {
                bail!("there is no account {nick}");
            }
            if !db.operators()?.contains(&nick) {
                bail!("{nick} is not an operator");
            }
            db.set_operator(&nick, false)?;
            audit("user demote", &nick, "")?;
            println!("{nick} is no longer an operator");
        }
        UserAction::Passwd { nick: raw } => {
            let nick = nick(&raw)?;
            if db.account(&nick)?.is_none() {
                bail!("there is no account {nick}");
            }
            let hash =
                password::hash_password(&crate::secrets::password(args.password_file.as_deref(), "new password: ")?)?;
            db.set_password_hash(&nick, &hash)?;
            audit("user passwd", &nick, "")?;
            println!("password of {nick} changed");
        }
        UserAction::Suspend { nick: raw, duration, reason } => {
            let nick = nick(&raw)?;
            // It goes to the account's clients in an error message, which must stay short.
            if reason.len() > MAX_REASON_BYTES {
                bail!("a reason has at most {MAX_REASON_BYTES} bytes");
            }
            let now = unix_ms();
            let until = duration.map(|d| now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
            let Some(account) = db.suspend(&nick, until, &reason, now)? else {
                bail!("there is no account {nick}");
            };
            let suspension = palomar_store::Suspension { account, until_ms: until, reason, since_ms: now };
            audit("user suspend", &nick, &describe(&suspension))?;
            println!("{nick} {}", describe(&suspension));
        }
        UserAction::Unsuspend { nick: raw } => {
            let nick = nick(&raw)?;
            if db.account(&nick)?.is_none() {
                bail!("there is no account {nick}");
            }
            if !db.unsuspend(&nick)? {
                bail!("{nick} is not suspended");
            }
            audit("user unsuspend", &nick, "")?;
            println!("{nick} may log in again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// "suspended until …: reason", for `list`, the audit log and the operator.
fn describe(suspension: &palomar_store::Suspension) -> String {
    let until = suspension
        .until_ms
        .map_or_else(|| "until lifted".to_owned(), |ms| format!("until {}", crate::output::utc_datetime(ms)));
    let why = if suspension.reason.is_empty() { "no reason given" } else { &suspension.reason };
    format!("suspended {until}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_number_and_a_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "7", "d", "7w", "-1d", "1.5h", "7 d", "0s", "99999999999999999999d", "40000d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
