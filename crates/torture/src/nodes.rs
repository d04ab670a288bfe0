//! The `palomar serve` nodes under test, each behind a fault proxy of its own: started, killed, stopped
//! gracefully, started again on the same address. One node keeps its store in SQLite; several share one
//! PostgreSQL database and one TLS identity, as README's "Several nodes on one database" says to run them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::proxy::Proxy;

/// How a node is started: the same every time, so that a node started again is the node it was.
struct NodeCommand {
    data: PathBuf,
    config: Option<PathBuf>,
    /// The PostgreSQL database's URL, if not SQLite in `data`.
    store: Option<String>,
}

impl NodeCommand {
    /// Starts the node on `listen`; returns it with the address it listens on once it says so.
    fn start(&self, bin: &Path, listen: &str) -> anyhow::Result<(Child, String)> {
        let mut command = Command::new(bin);
        // The checker speaks the native protocol only; a web listener would take a fixed port.
        command.args(["serve", "--no-web", "--listen", listen, "--data"]).arg(&self.data);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        if let Some(store) = &self.store {
            command.args(["--store", store]);
        }
        let mut child = command
            .env("PALOMAR_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some((_, addr)) = line.split_once("listening on ") {
                        break addr.trim().to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("the server stopped before listening");
                }
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok((child, addr))
    }
}

/// One node: its process (none while it is down), where it listens, and the proxy its clients reach it through.
struct Node {
    command: NodeCommand,
    process: Option<Child>,
    addr: String,
    proxy: Proxy,
}

impl Node {
    fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the time a graceful stop may take; then SIGKILL.
    fn terminate(&mut self) {
        let Some(child) = &mut self.process else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                self.process = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The nodes of a run.
pub(crate) struct Nodes {
    bin: PathBuf,
    nodes: Vec<Node>,
}

impl Nodes {
    /// Starts `count` nodes with their data directories in `dir` ([`data_dir`]), on the PostgreSQL database
    /// `store` (else each on SQLite in its data directory, which is for one node only), configured with
    /// `settings` (TOML), each behind a proxy of its own on `runtime`. The first node generates the chat's
    /// certificate; the others are given its certificate and key, so that the fingerprint a client pins holds
    /// for every node.
    pub fn start(
        bin: &Path,
        dir: &Path,
        count: usize,
        store: Option<&str>,
        settings: Option<&str>,
        runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Nodes> {
        let mut nodes = Nodes { bin: bin.to_owned(), nodes: Vec::with_capacity(count) };
        for index in 0..count {
            let data = data_dir(dir, index);
            let mut toml = settings.unwrap_or_default().to_owned();
            if index > 0 {
                let tls = data_dir(dir, 0).join("tls");
                let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
                toml.push_str(&format!("[tls]\ncert = {:?}\nkey = {:?}\n", utf8(&cert)?, utf8(&key)?));
            }
            let config = match toml.is_empty() {
                true => None,
                false => {
                    let path = dir.join(format!("node{index}.toml"));
                    std::fs::write(&path, toml).context("cannot write a node's configuration")?;
                    Some(path)
                }
            };
            let command = NodeCommand { data, config, store: store.map(str::to_owned) };
            let (child, addr) = command.start(bin, "127.0.0.1:0")?;
            let proxy = runtime.block_on(Proxy::start(addr.clone()))?;
            nodes.nodes.push(Node { command, process: Some(child), addr, proxy });
        }
        Ok(nodes)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The data directory of the first node (with SQLite, the only one): where its store file is.
    pub fn first_data(&self) -> &Path {
        &self.nodes[0].command.data
    }

    /// The process id of node `index`, while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.nodes[index].process.as_ref().map(Child::id)
    }

    /// The address of node `index`'s proxy, as its clients name it.
    pub fn proxy_addr(&self, index: usize) -> &str {
        &self.nodes[index].proxy.addr
    }

    pub fn proxies(&self) -> impl Iterator<Item = &Proxy> {
        self.nodes.iter().map(|node| &node.proxy)
    }

    /// The `--server` list for the `k`th client: every node's proxy, starting at a different one for each client
    /// (the list turned by `k`), so that the clients' first choices are spread over the nodes.
    pub fn server_list(&self, k: usize) -> String {
        let count = self.nodes.len();
        (0..count).map(|i| self.proxy_addr((k + i) % count)).collect::<Vec<_>>().join(",")
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// SIGTERM: a graceful stop.
    pub fn terminate(&mut self, index: usize) {
        self.nodes[index].terminate();
    }

    pub fn terminate_all(&mut self) {
        for node in &mut self.nodes {
            node.terminate();
        }
    }

    /// Starts node `index` again, on the address it had, which its proxy forwards to.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[index];
        node.kill();
        // The port may take a moment to be free again after a kill.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match node.command.start(&self.bin, &node.addr) {
                Ok((child, _)) => {
                    node.process = Some(child);
                    return Ok(());
                }
                Err(error) if Instant::now() > deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Node `index`'s data directory in `dir`, which holds its TLS identity (and with SQLite its store).
pub(crate) fn data_dir(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("node{index}"))
}

fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))
}
