//! `palomar-torture`: the fault-injection checker's command line (see the library for what it does).

use std::process::ExitCode;

use clap::Parser;
use palomar_torture::TortureArgs;

fn main() -> ExitCode {
    let args = TortureArgs::parse();
    match palomar_torture::run(&args, &mut std::io::stdout()) {
        Ok(summary) if summary.anomalies == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("palomar-torture: {error:#}");
            ExitCode::from(2)
        }
    }
}
