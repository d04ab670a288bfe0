//! A throwaway PostgreSQL database for a test: created empty on the test server, dropped with the value. Apart
//! from `testkit` because the store's own tests need it, and `testkit` depends on the store.
//!
//! The test server is `PALOMAR_TEST_POSTGRES` (a URL of a database on it; the user must be allowed to create
//! databases), by default `postgres://postgres@127.0.0.1:5432/postgres`. `.ci/run` makes sure one answers
//! there. With none, tests that need it fail and say so: they are never skipped.
//!
//! Everything here panics on failure, with what failed: it is for tests, where a panic is the report.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};

/// The variable naming the test server.
pub const SERVER_VARIABLE: &str = "PALOMAR_TEST_POSTGRES";
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
