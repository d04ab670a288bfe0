//! `--spawn`: a Palomar server started for the run from this very binary (`palomar serve`) on a free loopback
//! port, with a temporary data directory and a configuration written for the run (connection limits sized to
//! the run, no rate limits: the load comes from one address and measures the server, not its limits);
//! stopped and removed when dropped.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use palomar_transport::Fingerprint;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::usage;

/// Time for the server to start and print its address and fingerprint.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Headroom in the spawned server's connection limits above the number of clients.
const CONNECTION_MARGIN: usize = 64;

/// The `[store] durability` setting of the spawned server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every commit synced to disk before it is acknowledged.
    Full,
    /// Synced at checkpoints only: safe when the process dies, not when the power goes.
    Normal,
}

impl Durability {
    /// The value as the server's configuration spells it.
    pub fn as_config(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
        }
    }
}

pub struct SpawnedServer {
    child: Child,
    pid: u32,
    pub addr: String,
    pub fingerprint: Fingerprint,
    /// Holds the data directory and the configuration until the server is gone.
    _dir: tempfile::TempDir,
}

impl SpawnedServer {
    /// Starts `palomar serve` with room for `clients` connections from this address, on the embedded store or
    /// the PostgreSQL database `store`.
    pub async fn start(durability: Durability, store: Option<&str>, clients: usize) -> anyhow::Result<SpawnedServer> {
        let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
        let config = dir.path().join("bench.toml");
        let connections = clients + CONNECTION_MARGIN;
        std::fs::write(
            &config,
            format!(
                "[limits]\nmax_connections = {connections}\nmax_connections_per_ip = {connections}\n\
                 new_connections_per_sec = 0\nnew_connections_per_sec_per_ip = 0\nmessages_per_sec_per_user = 0\n\
                 registrations_per_sec = 0\nregistrations_per_sec_per_ip = 0\n\n\
                 [store]\ndurability = \"{}\"\n",
                durability.as_config()
            ),
        )
        .context("cannot write the server's configuration")?;
        let exe = std::env::current_exe().context("cannot find this program to start the server")?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .args(store.map(|url| ["--store", url]).into_iter().flatten())
            .env("PALOMAR_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server")?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no pipe from the server")?;
        let (addr, fingerprint) = tokio::time::timeout(START_TIMEOUT, read_address(stdout))
            .await
            .context("the server did not print its address in time")??;
        Ok(SpawnedServer { child, pid, addr, fingerprint, _dir: dir })
    }

    /// Stops the server (it holds nothing of value) and waits until it is gone.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Reads `... listening on ADDR` and `certificate fingerprint: SHA256:...` from the server's output.
async fn read_address(stdout: tokio::process::ChildStdout) -> anyhow::Result<(String, Fingerprint)> {
    let mut lines = BufReader::new(stdout).lines();
    let (mut addr, mut fingerprint) = (None, None);
    loop {
        let Some(line) = lines.next_line().await? else { bail!("the server stopped before it was ready") };
        if let Some((_, listening)) = line.split_once("listening on ") {
            addr = Some(listening.trim().to_owned());
        }
        if let Some(printed) = line.strip_prefix("certificate fingerprint: ") {
            fingerprint = Some(Fingerprint::parse(printed.trim()).context("the server printed a bad fingerprint")?);
        }
        if let (Some(addr), Some(fingerprint)) = (&addr, fingerprint) {
            // The server prints one more line when it stops: keep reading so it never writes into a closed pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((addr.clone(), fingerprint));
        }
    }
}

impl usage::Target for SpawnedServer {
    fn cpu_secs(&self) -> Option<f64> {
        usage::process_cpu_secs(self.pid)
    }

    fn memory_bytes(&self) -> Option<u64> {
        usage::memory_bytes(self.pid)
    }

    fn reset_peak_memory(&self) {
        usage::reset_peak_memory(self.pid);
    }

    fn peak_memory_bytes(&self) -> Option<u64> {
        usage::peak_memory_bytes(self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_names_match_the_server_configuration() {
        assert_eq!(Durability::Full.as_config(), "full");
        assert_eq!(Durability::Normal.as_config(), "normal");
    }
}
