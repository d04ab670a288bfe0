//! `--spawn`: Palomar servers started for the run from this very binary (`palomar serve`) on free loopback
//! ports, each with a temporary data directory and a configuration written for the run (connection limits
//! sized to the run, no rate limits: the load comes from one address and measures the server, not its limits);
//! stopped and removed when dropped. Several nodes share one PostgreSQL database and the first node's TLS
//! identity, as the README says to run them.

use std::path::{Path, PathBuf};
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
    /// the PostgreSQL database `store`, presenting the TLS identity in `identity` (`cert.pem`, `key.pem`) or one
    /// of its own.
    async fn start(
        durability: Durability,
        store: Option<&str>,
        clients: usize,
        identity: Option<&Path>,
    ) -> anyhow::Result<SpawnedServer> {
        let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
        let config = dir.path().join("bench.toml");
        let connections = clients + CONNECTION_MARGIN;
        let mut settings = format!(
            "[limits]\nmax_connections = {connections}\nmax_connections_per_ip = {connections}\n\
             new_connections_per_sec = 0\nnew_connections_per_sec_per_ip = 0\nmessages_per_sec_per_user = 0\n\
             registrations_per_sec = 0\nregistrations_per_sec_per_ip = 0\n\n\
             [store]\ndurability = \"{}\"\n",
            durability.as_config()
        );
        if let Some(identity) = identity {
            settings.push_str(&format!(
                "\n[tls]\ncert = {:?}\nkey = {:?}\n",
                identity.join("cert.pem"),
                identity.join("key.pem")
            ));
        }
        std::fs::write(&config, settings).context("cannot write the server's configuration")?;
        let exe = std::env::current_exe().context("cannot find this program to start the server")?;
        let mut child = Command::new(exe)
            .args(["serve", "--no-web", "--listen", "127.0.0.1:0", "--data"])
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

    /// Where the server keeps the TLS identity it generated.
    fn identity(&self) -> PathBuf {
        self._dir.path().join("data").join("tls")
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

/// The servers of a run: one, or several nodes on one PostgreSQL database.
pub struct SpawnedNodes {
    nodes: Vec<SpawnedServer>,
    on_postgres: bool,
}

impl SpawnedNodes {
    /// Starts `count` servers with room for `clients` connections each, on the embedded store or, for
    /// several, the PostgreSQL database `store`; nodes after the first present its TLS identity.
    pub async fn start(
        durability: Durability,
        store: Option<&str>,
        clients: usize,
        count: usize,
    ) -> anyhow::Result<SpawnedNodes> {
        if count == 0 {
            bail!("--nodes must be at least 1");
        }
        if count > 1 && store.is_none() {
            bail!("several nodes share one PostgreSQL database: give it with --store postgres://USER@HOST/DATABASE");
        }
        let first = SpawnedServer::start(durability, store, clients, None).await?;
        let identity = first.identity();
        let mut nodes = vec![first];
        for _ in 1..count {
            let node = SpawnedServer::start(durability, store, clients, Some(&identity)).await?;
            if node.fingerprint != nodes[0].fingerprint {
                bail!("node {} presents another certificate than the first", nodes.len() + 1);
            }
            nodes.push(node);
        }
        Ok(SpawnedNodes { nodes, on_postgres: store.is_some() })
    }

    pub fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.addr.clone()).collect()
    }

    /// The certificate every node presents.
    pub fn fingerprint(&self) -> Fingerprint {
        self.nodes[0].fingerprint
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn on_postgres(&self) -> bool {
        self.on_postgres
    }

    pub async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
    }

    /// The sum of a figure over the nodes; `None` when any cannot be observed.
    fn sum<T: std::iter::Sum>(&self, figure: impl Fn(u32) -> Option<T>) -> Option<T> {
        self.nodes.iter().map(|node| figure(node.pid)).sum()
    }
}

impl usage::Target for SpawnedNodes {
    fn cpu_secs(&self) -> Option<f64> {
        self.sum(usage::process_cpu_secs)
    }

    fn memory_bytes(&self) -> Option<u64> {
        self.sum(usage::memory_bytes)
    }

    fn reset_peak_memory(&self) {
        for node in &self.nodes {
            usage::reset_peak_memory(node.pid);
        }
    }

    /// The sum of each node's peak.
    fn peak_memory_bytes(&self) -> Option<u64> {
        self.sum(usage::peak_memory_bytes)
    }

    /// Every `postgres` process of this machine: the database's background writers are part of what a message
    /// costs it. `None` when the database is elsewhere (none runs here).
    fn database_cpu_secs(&self) -> Option<f64> {
        if !self.on_postgres {
            return None;
        }
        usage::processes_cpu_secs("postgres").filter(|secs| *secs > 0.0)
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
