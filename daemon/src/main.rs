//! `scanbindd`: the scanbind device daemon.
//!
//! Parses arguments, installs the log subscriber (stderr), starts the daemon, prints
//! `scanbindd ready on <bus name>` to stdout once the name is owned, and runs until
//! SIGTERM or SIGINT.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use scanbindd::{BusChoice, Config, Daemon};
use tracing_subscriber::EnvFilter;

/// The scanbind device daemon: serves io.scanbind.Daemon1 to apps on D-Bus.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Serve on the session bus (the default).
    #[arg(long, conflicts_with = "address")]
    session: bool,
    /// Serve on the bus at this D-Bus address instead (e.g. unix:path=/run/x).
    #[arg(long, value_name = "DBUS ADDRESS")]
    address: Option<String>,
    /// The merchant server's base URL.
    #[arg(long, value_name = "URL", env = "SCANBIND_SERVER_URL")]
    server: String,
    /// Where the payment journal lives (default: $XDG_STATE_HOME/scanbind).
    #[arg(long, value_name = "DIR", env = "SCANBIND_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The name this device shows on the wallet page.
    #[arg(long, default_value = "scanbind device")]
    device_name: String,
    /// The keyring service name of the daemon's secrets (for tests).
    #[arg(long, hide = true, env = "SCANBIND_VAULT_SERVICE", default_value = scanbind_ipc::BUS_NAME)]
    vault_service: String,
    /// Log at debug level (overridden by SCANBIND_LOG).
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let default = if args.verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("SCANBIND_LOG").unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .init();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let journal_path = match args.state_dir {
        Some(dir) => dir.join("journal.sqlite3"),
        None => scanbindd::default_journal_path()
            .context("no state directory: set XDG_STATE_HOME or HOME, or pass --state-dir")?,
    };
    let bus = match args.address {
        Some(a) => BusChoice::Address(a),
        None => BusChoice::Session,
    };
    let mut config = Config::new(bus, args.server, journal_path);
    config.device_name = args.device_name;
    config.vault_service = args.vault_service;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let daemon = Daemon::start(config).await.context("starting scanbindd")?;
        println!("scanbindd ready on {}", daemon.bus_name());
        daemon
            .run_until(shutdown_signal())
            .await
            .context("running scanbindd")
    })
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %e, "cannot watch SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
}
