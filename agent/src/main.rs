//! `scanbind-agent`: the full-screen display agent. See the crate README.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use scanbind_agent::service::{self, ServiceConfig};
use scanbind_agent::ui::{self, UiOptions};
use tracing_subscriber::EnvFilter;

/// Shows scanbind's binding QR codes, order codes and confirmations full-screen, for
/// the daemon (scanbindd) that trusts it. Keys: arrows choose, Enter confirms, Escape
/// refuses, digits and Backspace type a PIN.
#[derive(Debug, Parser)]
#[command(name = "scanbind-agent", version)]
struct Args {
    /// Connect to this D-Bus address instead of the session bus.
    #[arg(long, value_name = "ADDR", conflicts_with = "system")]
    address: Option<String>,
    /// Connect to the system bus (a system-wide scanbindd, `scanbindd --system`); the
    /// daemon must then run as the scanbind user (--daemon-user).
    #[arg(long)]
    system: bool,
    /// Accept calls only from a daemon running as this user (default: scanbind with
    /// --system, else the agent's own user).
    #[arg(long, value_name = "NAME")]
    daemon_user: Option<String>,
    /// Also accept a daemon running this executable (besides the installed scanbindd
    /// and the scanbindd beside this program): for development and tests.
    #[arg(long, value_name = "PATH", env = "SCANBIND_DAEMON_EXE")]
    daemon_exe: Option<std::path::PathBuf>,
    /// An ordinary window instead of full-screen.
    #[arg(long)]
    windowed: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("SCANBIND_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let mut config = ServiceConfig::default();
    let daemon_user = args.daemon_user.clone().or_else(|| {
        args.system
            .then(|| scanbind_ipc::accounts::DAEMON_USER.to_owned())
    });
    if let Some(name) = &daemon_user {
        config.daemon_uid = service::daemon_uid(name)?;
    }
    config.daemon_exe = args.daemon_exe.clone();
    tracing::info!(
        daemon_uid = config.daemon_uid,
        "only the daemon's calls of this uid are heard"
    );

    let (ui_handle, inbox) = service::ui_channel();
    let (actions_tx, actions_rx) = tokio::sync::mpsc::unbounded_channel();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let conn = runtime
        .block_on(async {
            match (&args.address, args.system) {
                (Some(addr), _) => {
                    zbus::connection::Builder::address(addr.as_str())?
                        .build()
                        .await
                }
                (None, true) => zbus::Connection::system().await,
                (None, false) => zbus::Connection::session().await,
            }
        })
        .context("cannot connect to the bus")?;

    // The bus runs on its own thread; the window owns the main thread (some platforms
    // insist). A refused registration or a broken bus ends the process.
    std::thread::Builder::new()
        .name("dbus".into())
        .spawn(move || {
            let result = runtime.block_on(service::run(
                conn,
                config,
                ui_handle,
                actions_rx,
                || print_line("scanbind-agent registered"),
                |why| print_line(&format!("scanbind-agent not registering: {why}")),
            ));
            match result {
                Ok(()) => std::process::exit(0),
                Err(e) => {
                    eprintln!("scanbind-agent: {e}");
                    std::process::exit(1);
                }
            }
        })
        .context("cannot start the bus thread")?;

    ui::run(
        inbox,
        actions_tx,
        UiOptions {
            fullscreen: !args.windowed,
        },
        Box::new(|marker| print_line(&format!("shown {marker}"))),
    )
    .context("the window failed")?;
    Ok(())
}

/// One line on stdout for whoever watches (tests); a closed stdout is not an error.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
