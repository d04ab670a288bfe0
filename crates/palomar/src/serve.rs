//! `palomar serve`: configuration, TLS identity, signals, and the server library's `run`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use palomar_server::Config;
use palomar_server::config::Registration;
use palomar_transport::ServerIdentity;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5555].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address of the browser client's HTTPS listener [default: 127.0.0.1:5580].
    #[arg(long, value_name = "ADDR", conflicts_with = "no_web")]
    web_listen: Option<SocketAddr>,
    /// Do not serve the browser client.
    #[arg(long)]
    no_web: bool,
    /// Serve Prometheus metrics and health checks (/metrics, /healthz, /readyz) over plain HTTP on this address,
    /// e.g. 127.0.0.1:9555 [default: off].
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
    /// Data directory (store and generated certificate) [default: ./palomar-data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Keep everything in this PostgreSQL database instead of the data directory's embedded store. Its password
    /// comes from PGPASSWORD or the configuration's store.password_file.
    #[arg(long, value_name = "postgres://USER@HOST/DATABASE")]
    store: Option<String>,
    /// TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Refuse to register new nicknames (accounts then come from `palomar user add`).
    #[arg(long)]
    closed_registration: bool,
    /// Print the default configuration and exit.
    #[arg(long)]
    print_config: bool,
    /// How log lines on stderr are written: for people, or one JSON object per line for log shippers.
    #[arg(long, value_enum, env = "PALOMAR_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.print_config {
        print!("{}", Config::default_toml());
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(args.log_format);
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(web_listen) = args.web_listen {
        config.web.listen = web_listen;
    }
    if args.no_web {
        config.web.enabled = false;
    }
    if let Some(admin_listen) = args.admin_listen {
        config.admin.listen = Some(admin_listen);
    }
    if let Some(data) = args.data {
        config.data = data;
    }
    if let Some(url) = args.store {
        config.store.database = Some(url);
    }
    config.validate()?;
    if args.closed_registration {
        config.registration = Registration::Closed;
    }
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("cannot create the data directory {}", config.data.display()))?;
    std::fs::set_permissions(&config.data, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict the data directory {}", config.data.display()))?;
    let identity = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => {
            // A missing or unreadable file is said as such, not as a file without a certificate.
            for (setting, path) in [("tls.cert", cert), ("tls.key", key)] {
                std::fs::File::open(path).with_context(|| format!("{setting}: cannot read {}", path.display()))?;
            }
            ServerIdentity::load(cert, key)?
        }
        _ => ServerIdentity::load_or_generate(&config.data.join("tls"))?,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    let web = if config.web.enabled {
        let web = tokio::net::TcpListener::bind(config.web.listen).await.with_context(|| {
            format!("cannot listen on {} for the web client (web.listen; --no-web turns it off)", config.web.listen)
        })?;
        Some(web)
    } else {
        None
    };
    let admin = match config.admin.listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for metrics and health checks (admin.listen)"))?,
        ),
        None => None,
    };
    // Caught before anyone is told the server listens: a SIGTERM from whoever read that line stops it gracefully.
    let signals = Signals::install()?;
    println!("palomar {} listening on {local}", env!("CARGO_PKG_VERSION"));
    if let Some(web) = &web {
        println!("web client: https://{}/", web.local_addr()?);
    }
    if let Some(admin) = &admin {
        println!("metrics: http://{}/metrics", admin.local_addr()?);
    }
    println!("data directory: {}", config.data.display());
    if let Some(database) = &config.store.database {
        println!("store: {database}");
    }
    println!("certificate fingerprint: {}", identity.fingerprint());

    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(signals, shutdown.clone(), identity.clone()));
    let listeners = palomar_server::Listeners { chat: listener, web, admin };
    palomar_server::run(listeners, config, identity, shutdown).await?;
    // Whoever read the first lines may be gone (`palomar serve | head`): a stop that went well is not a panic.
    let _ = writeln!(std::io::stdout(), "palomar stopped");
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PALOMAR_LOG").unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// The signals a server acts on, caught from the moment they are installed.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        let catch = |kind: SignalKind, name: &str| signal(kind).with_context(|| format!("cannot catch {name}"));
        Ok(Self {
            interrupt: catch(SignalKind::interrupt(), "SIGINT")?,
            terminate: catch(SignalKind::terminate(), "SIGTERM")?,
            hangup: catch(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

/// SIGINT and SIGTERM stop the server gracefully; SIGHUP reloads the certificate.
async fn watch_signals(signals: Signals, shutdown: CancellationToken, identity: Arc<ServerIdentity>) {
    let Signals { mut interrupt, mut terminate, mut hangup } = signals;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => match identity.reload() {
                Ok(fingerprint) => tracing::info!(%fingerprint, "certificate reloaded"),
                Err(error) => tracing::error!(%error, "certificate reload failed; keeping the current one"),
            },
        }
    }
    tracing::info!("stopping: telling clients, finishing writes");
    shutdown.cancel();
}
