//! `palomar-gui`: the desktop client. Parses the command line, starts the tokio runtime the engine runs on,
//! and opens the window; everything else is in the library (`palomar_gui::app` and the modules beside it).
//! The window is a front end like `palomar chat`: a new feature that is not about drawing belongs in
//! `palomar_client` (the engine, the model, the command parser), where every front end gets it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use palomar_client::backoff::Backoff;
use palomar_gui::notification::Notifier;
use palomar_gui::{Options, PalomarApp};

#[derive(Parser)]
#[command(name = "palomar-gui", version, about = "Palomar's desktop client")]
struct Args {
    /// Server address, host:port [default: the last one used, else 127.0.0.1:5555].
    #[arg(long)]
    server: Option<String>,
    /// Your nickname [default: the last one used].
    #[arg(long)]
    nick: Option<String>,
    /// Client state directory (pins, outbox, cursors), shared with `palomar chat` [default: PALOMAR_HOME or
    /// the platform's data directory].
    #[arg(long, visible_alias = "state-dir")]
    home: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PALOMAR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let home = match palomar_client::home::client_home(args.home) {
        Ok(home) => home,
        Err(error) => {
            eprintln!("palomar-gui: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("palomar-gui: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        home,
        settings_path: palomar_gui::settings::default_path(),
        server: args.server,
        nick: args.nick,
        backoff: Backoff::default(),
        offset: *chrono::Local::now().offset(),
        notifier: Notifier::desktop(runtime.handle().clone()),
    };
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Palomar")
            .with_app_id("palomar")
            .with_inner_size([980.0, 640.0])
            .with_min_inner_size([palomar_gui::app::MIN_WIDTH, palomar_gui::app::MIN_HEIGHT]),
        ..eframe::NativeOptions::default()
    };
    let handle = runtime.handle().clone();
    let result = eframe::run_native(
        "Palomar",
        native,
        Box::new(move |creation| {
            let app = PalomarApp::new(handle, options);
            creation.egui_ctx.set_theme(app.theme().preference());
            Ok(Box::new(app))
        }),
    );
    // The engine gets a moment to say goodbye and save; what was not stored stays in the outbox.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("palomar-gui: cannot open the window: {error}");
            ExitCode::FAILURE
        }
    }
}
