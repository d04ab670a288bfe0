//! The PostgreSQL store of a run with several nodes: a server given by URL, or a throwaway cluster of the
//! checker's own (the only one the `db-restart` scenario may restart); and the empty database each scenario
//! gets on it.
//!
//! The cluster is made the way `palomar-test-postgres`'s `TestCluster` makes one (`initdb` and `pg_ctl` of the
//! installed PostgreSQL, a temp directory, a free port, run as the `postgres` user when we are root), not
//! shared with it: that crate is for tests and panics on failure, and this checker depends on no Palomar crate
//! (it drives the binaries, as any script could). What differs is what a tool needs: errors that say what to
//! do, and a stop and a start apart, so that a scenario can hold the database down until a send meets it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Where the nodes keep their store.
pub(crate) enum Store {
    /// A server some operator runs; its user must be allowed to create databases.
    Server { url: String },
    /// A cluster of our own, which may be restarted.
    Own(OwnCluster),
}

impl Store {
    /// `postgres://USER@HOST[:PORT]/DB` (`DB` is only where we connect to create the scenarios' databases).
    pub fn server(url: &str) -> anyhow::Result<Store> {
        split_url(url)?;
        Ok(Store::Server { url: url.to_owned() })
    }

    /// The URL of the administrative database, where the scenarios' databases are created and dropped.
    fn admin_url(&self) -> String {
        match self {
            Store::Server { url } => url.clone(),
            Store::Own(cluster) => cluster.url(),
        }
    }

    /// Says what the nodes run on, for the report (no password: those never go in a URL here).
    pub fn describe(&self) -> String {
        match self {
            Store::Server { url } => format!("PostgreSQL at {url}"),
            Store::Own(cluster) => format!("a throwaway PostgreSQL cluster at {}", cluster.url()),
        }
    }

    /// The cluster, when it is ours to restart.
    pub fn own(&self) -> Option<&OwnCluster> {
        match self {
            Store::Own(cluster) => Some(cluster),
            Store::Server { .. } => None,
        }
    }

    /// A new, empty database for one scenario: accounts, logs and seqs start from nothing, as on a new SQLite
    /// file, so the checks need not tell this scenario's messages from an earlier one's.
    pub fn new_database(&self, name: &str) -> anyhow::Result<Database> {
        let admin = self.admin_url();
        let statements = [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")];
        run_sql(&admin, &statements)
            .with_context(|| format!("cannot create the database {name} (the user must be allowed to)"))?;
        let (base, _, query) = split_url(&admin)?;
        let url = match query {
            Some(query) => format!("{base}/{name}?{query}"),
            None => format!("{base}/{name}"),
        };
        Ok(Database { admin, name: name.to_owned(), url })
    }
}

/// A scenario's database, dropped with this value (whoever is still connected is disconnected).
pub(crate) struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = run_sql(&self.admin, &[format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)]);
    }
}

/// Splits a PostgreSQL URL into what precedes its database name, the name, and the query.
fn split_url(url: &str) -> anyhow::Result<(&str, &str, Option<&str>)> {
    let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) else {
        bail!("{url:?} is not a PostgreSQL URL (postgres://USER@HOST[:PORT]/DATABASE)");
    };
    let scheme = url.len() - rest.len();
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    match path.split_once('/') {
        Some((host, database)) if !host.is_empty() && !database.is_empty() => {
            Ok((&url[..scheme + host.len()], database, query))
        }
        _ => bail!("{url:?} names no database (postgres://USER@HOST[:PORT]/DATABASE)"),
    }
}

/// Runs `statements` one by one (`CREATE DATABASE` may not share a query string) on the database at `url`,
/// with the password from `PGPASSWORD`, as the server takes it.
fn run_sql(url: &str, statements: &[String]) -> anyhow::Result<()> {
    let mut config: postgres::Config = url.parse().with_context(|| format!("cannot read the URL {url:?}"))?;
    if let Ok(password) = std::env::var("PGPASSWORD") {
        config.password(password);
    }
    // The synchronous client runs a runtime of its own, which cannot start inside another: a thread of its own.
    let statements = statements.to_vec();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let mut client = config.connect(postgres::NoTls).context("cannot connect to PostgreSQL")?;
        for statement in &statements {
            client.batch_execute(statement).with_context(|| format!("{statement} failed"))?;
        }
        Ok(())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A PostgreSQL cluster of our own on a free port and a temp directory, stopped when dropped.
pub(crate) struct OwnCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnCluster {
    pub fn start() -> anyhow::Result<OwnCluster> {
        let Some(bin) = installed_bin() else {
            bail!(
                "a throwaway PostgreSQL cluster needs PostgreSQL's server programs (initdb, pg_ctl in \
                 /usr/lib/postgresql/N/bin); install them, or give a server with --store postgres://…"
            );
        };
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port")?
            .port();
        if is_root() {
            // PostgreSQL refuses to run as root: its files belong to the `postgres` user.
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            if !status.is_ok_and(|status| status.success()) {
                bail!("cannot give the cluster's directory to the postgres user");
            }
        }
        let cluster = OwnCluster { bin, data: dir.path().join("data"), port, _dir: dir };
        cluster.run("initdb", &["-A", "trust", "-U", "postgres", "-D", path(&cluster.data)?])?;
        cluster.pg_ctl(&["start"])?;
        Ok(cluster)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it as a crash would (`pg_ctl stop -m immediate`): every connection drops, nothing is flushed, and
    /// the next start recovers what was committed from the log. With [`OwnCluster::start_again`], what `pg_ctl
    /// restart -m immediate` does, in two steps.
    pub fn crash(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["stop", "-m", "immediate"])
    }

    pub fn start_again(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["start"])
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", self.port);
        let log = self.data.with_file_name("log");
        let mut all = vec!["-D", path(&self.data)?, "-l", path(&log)?, "-w", "-o", &options];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all)
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let output = as_postgres(&self.bin.join(program))
            .args(args)
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        if !output.status.success() {
            bail!(
                "{program} {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        if let Ok(data) = path(&self.data) {
            let _ = as_postgres(&self.bin.join("pg_ctl")).args(["-D", data, "stop", "-m", "immediate"]).output();
        }
    }
}

fn path(path: &Path) -> anyhow::Result<&str> {
    path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The newest installed PostgreSQL's server programs (Debian keeps them apart, in /usr/lib/postgresql/N/bin).
fn installed_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A command that runs `program` as the `postgres` user when this process is root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn a_url_splits_around_its_database_name() {
        assert_eq!(split_url("postgres://u@h:5/db").ok(), Some(("postgres://u@h:5", "db", None)));
        assert_eq!(split_url("postgresql://u@h/db?x=1").ok(), Some(("postgresql://u@h", "db", Some("x=1"))));
        assert!(split_url("postgres://u@h").is_err());
        assert!(split_url("postgres://u@h/").is_err());
        assert!(split_url("mysql://u@h/db").is_err());
    }
}
