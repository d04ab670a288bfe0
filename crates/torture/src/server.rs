//! The `palomar serve` process under test: started on an address, killed, stopped gracefully, started again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub(crate) struct ServerProcess {
    pub child: Child,
}

impl ServerProcess {
    pub fn start(
        bin: &Path,
        data: &Path,
        config: Option<&Path>,
        listen: &str,
    ) -> anyhow::Result<(ServerProcess, String)> {
        let mut command = Command::new(bin);
        command.args(["serve", "--listen", listen, "--data"]).arg(data);
        if let Some(config) = config {
            command.arg("--config").arg(config);
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
                _ => bail!("the server stopped before listening"),
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok((ServerProcess { child }, addr))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn restart_server(
    bin: &Path,
    data: &Path,
    config: Option<&Path>,
    addr: &str,
) -> anyhow::Result<ServerProcess> {
    // The port may take a moment to be free again after a kill.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ServerProcess::start(bin, data, config, addr) {
            Ok((server, _)) => return Ok(server),
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
