//! `scanbindd`: the scanbind device daemon.
//!
//! Reads the configuration file (`scanbindd::settings`), parses arguments (which
//! override it), installs the log subscriber (stderr), starts the daemon (with
//! `--dev`, also an in-process sandbox and merchant server), prints
//! `scanbindd ready on <bus name>` to stdout once the name is owned, and runs until
//! SIGTERM, SIGINT or the idle timeout.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser};
use scanbindd::settings::{FileConfig, VaultKind, check_server_url};
use scanbindd::{BusChoice, Config, Daemon, VaultChoice};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The scanbind device daemon: serves io.scanbind.Daemon1 to apps on D-Bus.
///
/// Apps bind a wallet by QR code once and then pay with one call; the daemon keeps the
/// device key and the wallet tokens in the OS keyring (or its own encrypted vault
/// file, --vault file) and records every payment in a
/// durable journal before anything leaves the device. Reference: docs/dbus-api.md.
#[derive(Debug, Parser)]
#[command(version, name = "scanbindd")]
struct Args {
    /// Serve on the session bus (the default).
    #[arg(long, conflicts_with_all = ["address", "system", "no_bus"])]
    session: bool,
    /// System mode (TVs, consoles, shared PCs): serve on the system bus (needs the bus
    /// policy) as the scanbind user, secrets in the daemon's own file vault (master
    /// secret: the systemd credential scanbind-vault), state in /var/lib/scanbind
    /// ($STATE_DIRECTORY), only root's configuration and policy, display agents of the
    /// scanbind-agent group's members.
    #[arg(long, conflicts_with_all = ["address", "no_bus"])]
    system: bool,
    /// Serve on the bus at this D-Bus address instead (e.g. unix:path=/run/x).
    #[arg(long, value_name = "DBUS ADDRESS", conflicts_with = "no_bus")]
    address: Option<String>,
    /// Also serve on this Unix socket, one peer-to-peer D-Bus connection per client.
    #[arg(long, value_name = "PATH")]
    p2p: Option<PathBuf>,
    /// Serve on no bus, only on the --p2p socket.
    #[arg(long, requires = "p2p")]
    no_bus: bool,
    /// The merchant server's base URL (https://; http:// only to loopback).
    #[arg(
        long,
        value_name = "URL",
        env = "SCANBIND_SERVER_URL",
        conflicts_with = "dev"
    )]
    server: Option<String>,
    /// Run an in-process AMS sandbox and merchant server (SQLite in the state dir):
    /// the whole system in one process, for app developers. With the file vault and no
    /// master secret, a throw-away one (the vault cannot be opened after a restart).
    #[arg(long)]
    dev: bool,
    /// With --dev: serve on a D-Bus broker inside this process (busd) instead of a bus
    /// daemon, for machines without dbus-daemon; prints `scanbindd embedded bus: ADDRESS`.
    #[arg(long, requires = "dev", conflicts_with_all = ["session", "system", "address", "no_bus"])]
    embedded_bus: bool,
    /// Where the payment journal and the file vault live (default: $XDG_STATE_HOME/scanbind;
    /// with --system $STATE_DIRECTORY, else /var/lib/scanbind).
    #[arg(long, value_name = "DIR", env = "SCANBIND_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The name this device shows on the wallet page.
    #[arg(long)]
    device_name: Option<String>,
    /// Exit after this many seconds without app calls when nothing is in flight
    /// (0: never). D-Bus activation starts the daemon again on the next call.
    #[arg(long, value_name = "SECONDS")]
    idle_exit: Option<u64>,
    /// A file holding the merchant server's provisioning token (default: the systemd
    /// credential `provisioning-token`, if any).
    #[arg(long, value_name = "FILE")]
    provisioning_token_file: Option<PathBuf>,
    /// The per-app payment policy (default: $XDG_CONFIG_HOME/scanbind/policy.toml, or
    /// /etc/scanbind/policy.toml with --system); re-read when it changes.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The configuration file (default: $XDG_CONFIG_HOME/scanbind/scanbindd.toml, then
    /// /etc/scanbind/scanbindd.toml; with --system only the latter).
    #[arg(long, value_name = "FILE", env = "SCANBIND_CONFIG")]
    config: Option<PathBuf>,
    /// Where the secrets are kept: the session's OS keyring (secret-service, the
    /// default without --system) or the daemon's own encrypted vault file in the state
    /// directory (the default with --system)
    /// (file: <state dir>/vault/scanbind.keyring, its master secret from
    /// --vault-secret-file or the systemd credential scanbind-vault).
    #[arg(long, value_enum, value_name = "KIND")]
    vault: Option<VaultArg>,
    /// A file holding the file vault's master secret, at least 16 bytes (default: the
    /// systemd credential scanbind-vault).
    #[arg(long, value_name = "FILE")]
    vault_secret_file: Option<PathBuf>,
    /// The keyring service name of the daemon's secrets (for tests).
    #[arg(long, hide = true, env = "SCANBIND_VAULT_SERVICE", default_value = scanbind_ipc::BUS_NAME)]
    vault_service: String,
    /// Write the man page (scanbindd.8) to this directory and exit.
    #[arg(long, hide = true, value_name = "DIR")]
    generate_man: Option<PathBuf>,
    /// Log at debug level (overridden by SCANBIND_LOG).
    #[arg(long, short)]
    verbose: bool,
}

/// `--vault`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum VaultArg {
    /// The session's Secret Service (OS keyring).
    SecretService,
    /// The daemon's own encrypted vault file.
    File,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.generate_man {
        return match write_man(dir) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("scanbindd: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let default = if args.verbose { "debug" } else { "info" };
    // `SCANBIND_LOG`: `LEVEL` or `TARGET=LEVEL` directives, comma-separated (a
    // `tracing_subscriber` `Targets` filter: no regex engine in the resident daemon).
    let asked = std::env::var("SCANBIND_LOG").ok();
    let parsed = asked.as_deref().map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(t)) => t.clone(),
        _ => default.parse::<Targets>().unwrap_or_default(),
    };
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    if let Some(Err(e)) = parsed {
        tracing::warn!(cause = %e, "SCANBIND_LOG is not a valid filter; logging at {default}");
    }
    // A crash point asked of a build without them would be silently ignored and leave
    // a kill -9 test waiting for a crash that never comes: refuse instead.
    if !cfg!(feature = "test-util") && std::env::var_os("SCANBINDD_CRASH_AT").is_some() {
        tracing::error!(
            "SCANBINDD_CRASH_AT is set but this scanbindd was built without the test-util \
             feature (crash points): rebuild with --features test-util or unset it"
        );
        return std::process::ExitCode::FAILURE;
    }
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn write_man(dir: &std::path::Path) -> anyhow::Result<()> {
    let cmd = Args::command();
    let man = clap_mangen::Man::new(cmd).section("8");
    let mut out = Vec::new();
    man.render(&mut out).context("rendering the man page")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("scanbindd.8");
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let (file, file_path) = FileConfig::load(args.config.as_deref(), args.system)?;
    if let Some(p) = &file_path {
        tracing::info!(config = %p.display(), "configuration file read");
    }
    let state_dir = args
        .state_dir
        .or(file.state_dir.clone())
        .or_else(|| args.system.then(scanbindd::settings::system_state_dir));
    let journal_path = match &state_dir {
        Some(dir) => dir.join("journal.sqlite3"),
        None => scanbindd::default_journal_path()
            .context("no state directory: set XDG_STATE_HOME or HOME, or pass --state-dir")?,
    };
    let state_dir = journal_path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    // `--embedded-bus` (dev stack only) replaces it with the broker's address.
    #[cfg_attr(not(feature = "dev-stack"), allow(unused_mut))]
    let mut bus = if args.no_bus {
        BusChoice::None
    } else if let Some(a) = args.address {
        BusChoice::Address(a)
    } else if args.system {
        BusChoice::System
    } else {
        BusChoice::Session
    };
    let server = args.server.or(file.server_url.clone());
    if let Some(url) = &server {
        check_server_url(url).map_err(|m| anyhow::anyhow!("--server: {m}"))?;
    }
    if server.is_none() && !args.dev {
        anyhow::bail!(
            "no merchant server: pass --server URL, set server_url in the configuration file, \
             or use --dev for the embedded development stack"
        );
    }
    let vault_kind = match args.vault {
        Some(VaultArg::SecretService) => VaultKind::SecretService,
        Some(VaultArg::File) => VaultKind::File,
        None => file.vault.unwrap_or(if args.system {
            VaultKind::File
        } else {
            VaultKind::SecretService
        }),
    };
    let vault_secret_file = args.vault_secret_file.or(file.vault_secret_file.clone());
    let vault = match vault_kind {
        VaultKind::File => {
            let dir = scanbindd::settings::vault_dir(&state_dir);
            match scanbindd::settings::read_vault_secret(vault_secret_file.as_deref()) {
                Ok(master_secret) => VaultChoice::File { dir, master_secret },
                Err(scanbindd::Error::VaultNoMasterSecret) if args.dev => throw_away_vault(dir)?,
                Err(e) => return Err(e.into()),
            }
        }
        _ => {
            if vault_secret_file.is_some() {
                anyhow::bail!(
                    "--vault-secret-file (vault_secret_file) is the master secret of the file \
                     vault: use it with --vault file (vault = \"file\")"
                );
            }
            VaultChoice::SecretService
        }
    };
    // One worker: the daemon waits on the bus, the network and its blocking pool (journal
    // fsyncs, keyring), never on its own CPU; every worker thread is a stack and a malloc
    // arena resident all day (docs/decisions.md D24).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        #[cfg(feature = "dev-stack")]
        let dev = if args.dev {
            let dev = scanbindd::dev::DevStack::start(&state_dir)
                .await
                .context("starting the development stack")?;
            {
                use std::io::Write as _;
                let mut out = std::io::stdout();
                let _ = writeln!(
                    out,
                    "scanbindd dev stack: server {} sandbox {}",
                    dev.server_url(),
                    dev.sandbox_url()
                );
                let _ = out.flush();
            }
            Some(dev)
        } else {
            None
        };
        // The embedded broker lives in the dev stack's private directory, as long as
        // this process runs.
        #[cfg(feature = "dev-stack")]
        let _embedded_bus = if args.embedded_bus {
            let broker = scanbindd::dev::EmbeddedBus::start(&state_dir.join("dev"))
                .await
                .context("starting the embedded D-Bus broker")?;
            {
                use std::io::Write as _;
                let mut out = std::io::stdout();
                let _ = writeln!(out, "scanbindd embedded bus: {}", broker.address());
                let _ = out.flush();
            }
            bus = BusChoice::Address(broker.address().to_owned());
            Some(broker)
        } else {
            None
        };
        #[cfg(not(feature = "dev-stack"))]
        if args.dev {
            anyhow::bail!("this scanbindd was built without the dev-stack feature");
        }
        #[cfg(feature = "dev-stack")]
        let server_url = match &dev {
            Some(d) => d.server_url().to_owned(),
            None => server.unwrap_or_default(),
        };
        #[cfg(not(feature = "dev-stack"))]
        let server_url = server.unwrap_or_default();
        let _ = &state_dir;
        let mut config = Config::new(bus, server_url, journal_path);
        if let Some(name) = args.device_name.or(file.device_name.clone()) {
            config.device_name = name;
        }
        config.vault = vault;
        config.vault_service = args.vault_service;
        config.p2p_socket = args.p2p.or(file.p2p_socket.clone());
        config.provisioning_token = scanbindd::settings::read_provisioning_token(
            args.provisioning_token_file
                .as_deref()
                .or(file.provisioning_token_file.as_deref()),
        )?
        .map(scanbind_money::SecretString::new);
        // Configured explicitly, or the system daemon's: a missing file refuses every
        // payment. Only the session daemon's default path may be missing (every app
        // may pay until the user writes one).
        config.policy_required = args.system || args.policy.is_some() || file.policy_file.is_some();
        config.policy_file = args
            .policy
            .or(file.policy_file.clone())
            .or_else(|| scanbindd::settings::default_policy_path(args.system));
        if args.system {
            config.managed_policy_file = Some(scanbindd::settings::managed_policy_file(&state_dir));
            config.admin_group = Some(
                file.admin_group
                    .clone()
                    .unwrap_or_else(|| scanbind_ipc::accounts::ADMIN_GROUP.to_owned()),
            );
        }
        // A system daemon keeps each user's consents itself: the policy is root's.
        if args.system {
            config.consents_file = Some(scanbindd::settings::consents_file(&state_dir));
        }
        config.idle_exit = args
            .idle_exit
            .or(file.idle_exit_secs)
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let daemon = Daemon::start(config).await.context("starting scanbindd")?;
        // A closed stdout (e.g. under D-Bus activation) is not an error.
        {
            use std::io::Write as _;
            let mut out = std::io::stdout();
            let _ = writeln!(out, "scanbindd ready on {}", daemon.bus_name());
            let _ = out.flush();
        }
        let result = daemon
            .run_until(shutdown_signal())
            .await
            .context("running scanbindd");
        #[cfg(feature = "dev-stack")]
        if let Some(dev) = dev {
            dev.shutdown().await;
        }
        result
    })
}

/// `--dev` with the file vault and no master secret: a random one for this run only,
/// said loudly. A vault an earlier run left is refused (this secret cannot open it).
fn throw_away_vault(dir: PathBuf) -> anyhow::Result<VaultChoice> {
    let file = scanbindd::settings::vault_file(&dir);
    if file.exists() {
        return Err(scanbindd::Error::VaultEphemeralExisting { path: file }.into());
    }
    tracing::warn!(
        vault = %file.display(),
        "DEVELOPMENT ONLY: no master secret for the file vault (no credential scanbind-vault, \
         no --vault-secret-file): using a throw-away random one. The vault, its device key and \
         its bindings cannot be opened after this process exits; a restart refuses to start \
         until the file is moved away. Never use this on a real device"
    );
    Ok(VaultChoice::file_with_new_secret(dir)?)
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
