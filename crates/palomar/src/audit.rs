//! `palomar audit`: prints the operator actions recorded in a server's store, oldest of the newest N first.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use palomar_store::{Durability, Location};

use crate::user::StoreChoice;

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    store: StoreChoice,
    /// How many of the newest entries to print.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let (_, location) = args.store.locate()?;
    if let Location::Sqlite(store) = &location
        && !store.exists()
    {
        bail!("no store at {}: wrong --data?", store.display());
    }
    let db = location.open(Durability::Full).with_context(|| format!("cannot open the store {location}"))?;
    for entry in db.audit_log(args.limit)? {
        let detail = if entry.detail.is_empty() { String::new() } else { format!("\t{}", entry.detail) };
        println!(
            "{}\t{}\t{}\t{}{detail}",
            crate::output::utc_datetime(entry.at_ms),
            entry.actor,
            entry.action,
            entry.target
        );
    }
    Ok(ExitCode::SUCCESS)
}
