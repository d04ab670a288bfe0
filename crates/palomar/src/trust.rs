//! `palomar trust`: pin a server's certificate fingerprint by hand (after the server got a new certificate)
//! or forget a pin.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use palomar_client::KnownHosts;
use palomar_client::server_address::{ServerAddresses, parse_server};
use palomar_transport::Fingerprint;

#[derive(Args)]
pub struct TrustArgs {
    /// The server as given to `palomar chat --server`; for several nodes, the list or its first address (the
    /// chat's name, under which the one pin of every node is kept).
    #[arg(long, value_parser = parse_server)]
    server: ServerAddresses,
    /// The fingerprint `palomar serve` printed (SHA256:...).
    #[arg(long, required_unless_present = "forget", conflicts_with = "forget")]
    fingerprint: Option<String>,
    /// Remove the pin instead; the next connection pins whatever the server presents.
    #[arg(long)]
    forget: bool,
    /// Client state directory (default: PALOMAR_HOME or the platform's data directory).
    #[arg(long)]
    home: Option<PathBuf>,
}

pub fn run(args: TrustArgs) -> anyhow::Result<ExitCode> {
    let hosts = KnownHosts::new(crate::client_home(args.home)?.join("known_hosts"));
    if args.forget {
        let removed =
            hosts.forget(args.server.name()).with_context(|| format!("cannot update {}", hosts.path().display()))?;
        println!("{}", if removed { "pin removed" } else { "there was no pin for this server" });
        return Ok(ExitCode::SUCCESS);
    }
    let text = args.fingerprint.unwrap_or_default();
    let Some(fingerprint) = Fingerprint::parse(&text) else {
        bail!(
            "{text:?} is not a fingerprint: expected SHA256: followed by 64 hex digits, as `palomar serve` prints it"
        );
    };
    let chat = args.server.name();
    hosts.set(chat, fingerprint).with_context(|| format!("cannot update {}", hosts.path().display()))?;
    println!("pinned {fingerprint} for {chat}");
    Ok(ExitCode::SUCCESS)
}
