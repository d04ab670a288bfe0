//! A throwaway PostgreSQL database for a test: created empty on the test server, dropped with the value. Apart
//! from `testkit` because the store's own tests need it, and `testkit` depends on the store.
//!
//! The test server is `PALOMAR_TEST_DATABASE_URL` (a URL of a database on it; the user must be allowed to create
//! databases), by default `postgres://postgres@127.0.0.1:5432/postgres`. `.ci/run` makes sure one answers
//! there. With none, tests that need it fail and say so: they are never skipped. A test that restarts the
//! server has a [`TestCluster`] of its own instead, made from the installed PostgreSQL's programs.
//!
//! Everything here panics on failure, with what failed: it is for tests, where a panic is the report.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};

/// The variable naming the test server.
pub const SERVER_VARIABLE: &str = "PALOMAR_TEST_DATABASE_URL";
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// An empty database of its own, dropped (with whatever is still connected to it) when this is.
pub struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

/// The test server's URL.
pub fn server_url() -> String {
    std::env::var(SERVER_VARIABLE).unwrap_or_else(|_| DEFAULT_SERVER.to_owned())
}

/// Runs `work` with a connection to the test server's administrative database. On a thread of its own: the
/// synchronous client runs a runtime of its own, which cannot start inside an async test's.
fn on_server<T: Send + 'static>(
    server: &str,
    work: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
) -> Result<T, String> {
    let server = server.to_owned();
    std::thread::spawn(move || {
        let mut client = Client::connect(&server, NoTls).map_err(|e| {
            format!(
                "this test needs PostgreSQL, and none answered at {server} ({e}). `.ci/run` starts one; or set \
                 {SERVER_VARIABLE} to the URL of a database on a server where this user may create databases"
            )
        })?;
        work(&mut client).map_err(|e| e.to_string())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        static CREATED: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.subsec_nanos());
        let name = format!("palomar_test_{}_{}_{nanos}", std::process::id(), CREATED.fetch_add(1, Ordering::Relaxed));
        let server = server_url();
        let create = format!("CREATE DATABASE {name}");
        on_server(&server, move |client| client.batch_execute(&create))
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        let (base, _) =
            server.rsplit_once('/').unwrap_or_else(|| panic!("{SERVER_VARIABLE} {server:?} names no database"));
        let url = format!("{base}/{name}");
        TestDatabase { server, name, url }
    }

    /// The URL of this database, as a server's `--store` takes it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Ends every connection to this database (as a database restart would), returning how many there were.
    pub fn disconnect_everyone(&self) -> i64 {
        let name = self.name.clone();
        on_server(&self.server, move |client| {
            client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )?
                .try_get(0)
        })
        .unwrap_or_else(|e| panic!("cannot disconnect the test database's clients: {e}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = on_server(&self.server, move |client| client.batch_execute(&drop)) {
            eprintln!("cannot drop the test database {}: {e}", self.name);
        }
    }
}

/// A PostgreSQL server of a test's own, on a free port and a temp directory, made with the installed
/// PostgreSQL's `initdb` and run with its `pg_ctl`: for what a test does to the whole server (a restart), which it
/// must not do to a shared one. Stopped, without waiting, when dropped. As root (as CI runs), the server runs as
/// the `postgres` user, since PostgreSQL refuses to run as root.
pub struct TestCluster {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    pub fn start() -> TestCluster {
        TestCluster::start_with(None)
    }

    /// A cluster that accepts TCP connections over TLS only, presenting the certificate `cert_pem` (with the
    /// private key `key_pem`).
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> TestCluster {
        TestCluster::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> TestCluster {
        let bin = installed_bin().unwrap_or_else(|| {
            panic!("this test needs PostgreSQL's server programs (initdb, pg_ctl); `.ci/run` installs them")
        });
        let dir = tempfile::tempdir().expect("a temp dir");
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "cannot give the cluster's directory to the postgres user");
        }
        let cluster = TestCluster { bin, data, port, _dir: dir };
        let data = cluster.data.to_str().expect("a UTF-8 path").to_owned();
        cluster.run("initdb", &["-A", "trust", "-U", "postgres", "-D", &data]);
        if let Some((cert_pem, key_pem)) = tls {
            cluster.require_tls(cert_pem, key_pem);
        }
        cluster.pg_ctl(&["start"]);
        cluster
    }

    /// Installs the certificate, turns TLS on and lets TCP clients in over TLS only (`hostssl`).
    fn require_tls(&self, cert_pem: &str, key_pem: &str) {
        let write = |name: &str, text: &str| {
            let path = self.data.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            path
        };
        write("server.crt", cert_pem);
        let key = write("server.key", key_pem);
        // PostgreSQL refuses a key that others may read.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("key mode");
        let mut conf = std::fs::OpenOptions::new().append(true).open(self.data.join("postgresql.conf")).expect("conf");
        std::io::Write::write_all(&mut conf, b"\nssl = on\n").expect("writes conf");
        write("pg_hba.conf", "hostssl all all 127.0.0.1/32 trust\n");
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .args(["server.crt", "server.key", "pg_hba.conf"].map(|name| self.data.join(name)))
                .status()
                .expect("chown runs");
            assert!(status.success(), "cannot give the certificate to the postgres user");
        }
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Restarts it as a crash would leave it (`pg_ctl restart -m immediate`): every connection drops, and what
    /// was committed is recovered from the log.
    pub fn restart_immediately(&self) {
        self.pg_ctl(&["restart", "-m", "immediate"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data.to_str().expect("a UTF-8 path").to_owned();
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", self.port);
        let log = self.data.with_file_name("log");
        let log = log.to_str().expect("a UTF-8 path").to_owned();
        let mut all = vec!["-D", &data, "-l", &log, "-w", "-o", &options];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = as_postgres(&path);
        let output = command.args(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap_or_default().to_owned();
        let path = self.bin.join("pg_ctl");
        let mut command = as_postgres(&path);
        let _ = command.args(["-D", &data, "stop", "-m", "immediate"]).output();
    }
}

/// The newest installed PostgreSQL's server programs (Debian keeps them apart, in /usr/lib/postgresql/N/bin).
fn installed_bin() -> Option<std::path::PathBuf> {
    let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
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
fn as_postgres(program: &std::path::Path) -> std::process::Command {
    if is_root() {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        std::process::Command::new(program)
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}
