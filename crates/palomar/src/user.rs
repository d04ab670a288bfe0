//! `palomar user`: account management on a server's store (add, remove, list, set a password). Straight on the
//! store, except a removal while a server runs on it, which that server carries out.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use palomar_proto::{Nick, RoomName, unix_ms};
use palomar_server::{Config, DataDirLock};
use palomar_store::postgres::PostgresStore;
use palomar_store::{ConvKey, Durability, Location, Store, password};

#[derive(Args)]
pub struct UserArgs {
    /// The server's data directory.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The server's PostgreSQL database, as `palomar serve --store` names it (its password from PGPASSWORD).
    #[arg(long, value_name = "postgres://USER@HOST/DATABASE")]
    store: Option<String>,
    /// Read the data directory or database from this configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
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
    /// List the accounts.
    List,
    /// Set an account's password.
    Passwd { nick: String },
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
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(data) = args.data {
        config.data = data;
    }
    if let Some(url) = args.store {
        config.store.database = Some(url);
    }
    config.validate()?;
    let location = config.store_location()?.with_application("palomar user");
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
            println!("removed {nick}");
        }
        UserAction::List => {
            for (nick, created_ms) in db.accounts()? {
                println!("{nick}\tcreated {}", crate::output::utc_datetime(created_ms));
            }
        }
        UserAction::Passwd { nick: raw } => {
            let nick = nick(&raw)?;
            if db.account(&nick)?.is_none() {
                bail!("there is no account {nick}");
            }
            let hash =
                password::hash_password(&crate::secrets::password(args.password_file.as_deref(), "new password: ")?)?;
            db.set_password_hash(&nick, &hash)?;
            println!("password of {nick} changed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
