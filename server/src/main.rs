//! `scanbind-server`: parse arguments, install tracing, run.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Parser, Subcommand, ValueEnum};
use scanbind_server::{Config, app, export};

mod admin_cli;

/// The scanbind merchant server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). `SCANBIND_SERVER_*` variables override it.
    #[arg(long, short, env = "SCANBIND_SERVER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log at debug level.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Write a new key file.
    Keygen {
        /// What the key is for.
        kind: KeyKind,
        /// Where to write it (mode 0600; refuses to overwrite).
        out: PathBuf,
    },
    /// Print the OpenAPI document of the device API.
    Openapi,
    /// Export records for reconciliation.
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// Match a day's settlement reports against the records; exits 1 when anything
    /// differs, 2 when the reports cannot be read.
    Reconcile {
        /// The UTC day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// The directory holding the day's report files.
        #[arg(long)]
        reports: PathBuf,
        /// The contracted fee rate in basis points; each settlement line's fee is checked
        /// against it.
        #[arg(long)]
        fee_bps: Option<i64>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The back office from a terminal: operator keys, payments, refunds, cancels,
    /// customs declarations, bindings, enrollment tokens.
    Admin(admin_cli::AdminArgs),
    /// Write the man page (scanbind-server.8) to a directory.
    #[command(hide = true)]
    Man {
        /// The directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ExportWhat {
    /// Payments and refunds in a time range, with a settlement summary per currency.
    Transactions {
        /// Start (inclusive), RFC 3339, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        from: String,
        /// End (exclusive), RFC 3339.
        #[arg(long)]
        to: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = export::Format::Csv)]
        format: export::Format,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KeyKind {
    /// A token-sealing key (32 random bytes, base64).
    Sealing,
    /// A receipt signing key (Ed25519 PKCS#8 PEM).
    Receipt,
}

fn keygen(kind: KeyKind, out: &PathBuf) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let contents = match kind {
        KeyKind::Sealing => {
            let mut k = [0_u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
                .map_err(|_| anyhow::anyhow!("random source failed"))?;
            format!("{}\n", base64::engine::general_purpose::STANDARD.encode(k))
        }
        KeyKind::Receipt => scanbind_server::util::ed25519_pkcs8_pem()?,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    f.write_all(contents.as_bytes())?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = app::start(config).await?;
    // Readiness line for supervisors and tests: printed once the socket accepts.
    let scheme = if server.app.config.tls.mode == scanbind_server::config::TlsMode::Off {
        "http"
    } else {
        "https"
    };
    // Both lines in one write: a reader that stops after the first loses nothing.
    let ready = format!(
        "listening on {scheme}://{}\nadmin listening on {scheme}://{}\n",
        server.addr, server.admin_addr
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(ready.as_bytes());
    let _ = out.flush();
    drop(out);
    let stop = server.stopper();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        let _ = stop.send(true);
    });
    server.wait().await?;
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let filter = if cli.verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SCANBIND_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = (|| -> anyhow::Result<()> {
        if let Some(Command::Keygen { kind, out }) = &cli.command {
            return keygen(*kind, out);
        }
        if let Some(Command::Man { dir }) = &cli.command {
            use clap::CommandFactory as _;
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command().name("scanbind-server"))
                .section("8")
                .render(&mut page)?;
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join("scanbind-server.8"), page)?;
            return Ok(());
        }
        if let Some(Command::Openapi) = &cli.command {
            std::io::stdout().write_all(scanbind_server::openapi::document_text().as_bytes())?;
            return Ok(());
        }
        if let Some(Command::Admin(args)) = &cli.command
            && !args.needs_config()
        {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            return rt.block_on(admin_cli::run_api(args));
        }
        // A crash point asked of a build without them would be silently ignored and
        // leave a kill -9 test waiting for a crash that never comes: refuse instead.
        if !cfg!(feature = "test-util")
            && std::env::var_os(scanbind_server::util::CRASH_AT_ENV).is_some()
        {
            anyhow::bail!(
                "{} is set but this scanbind-server was built without the test-util feature \
                 (crash points): rebuild with --features test-util or unset it",
                scanbind_server::util::CRASH_AT_ENV
            );
        }
        let config = Config::load(cli.config.as_deref(), std::env::vars())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            match cli.command {
                Some(Command::Export {
                    what: ExportWhat::Transactions { from, to, format },
                }) => {
                    let out = export::transactions(&config, &from, &to, format).await?;
                    std::io::stdout().write_all(out.as_bytes())?;
                    Ok(())
                }
                Some(Command::Reconcile {
                    date,
                    reports,
                    fee_bps,
                    json,
                }) => {
                    // Exit codes: 0 everything matches, 1 differences, 2 cannot reconcile.
                    let outcome = async {
                        let date =
                            scanbind_server::reconcile::parse_date(&date).with_context(|| {
                                format!("--date: expected YYYY-MM-DD, got {date:?}")
                            })?;
                        let db =
                            scanbind_server::db::Db::connect(&config.database_url()?, 2).await?;
                        let o = scanbind_server::reconcile::reconcile(&db, date, &reports, fee_bps)
                            .await;
                        db.pool().close().await;
                        anyhow::Ok(o?)
                    }
                    .await;
                    let outcome = match outcome {
                        Ok(o) => o,
                        Err(e) => {
                            eprintln!("scanbind-server: {e:#}");
                            std::process::exit(2);
                        }
                    };
                    if json {
                        println!("{}", serde_json::to_string_pretty(&outcome)?);
                    } else {
                        print!("{}", scanbind_server::reconcile::render_text(&outcome));
                    }
                    let _ = std::io::stdout().flush();
                    if !outcome.differences.is_empty() {
                        std::process::exit(1);
                    }
                    Ok(())
                }
                Some(Command::Admin(args)) => admin_cli::run_keys(&args, &config).await,
                _ => serve(config).await,
            }
        })
    })();
    if let Err(err) = result {
        tracing::error!("{err:#}");
        eprintln!("scanbind-server: {err:#}");
        std::process::exit(1);
    }
}
