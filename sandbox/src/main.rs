//! `scanbind-sandbox`: run an AMS-compatible Alipay locally, or act as the phone / read
//! the ledger of a running one.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use scanbind_sandbox::config::{self, MerchantConfig};
use scanbind_sandbox::{Config, SandboxBuilder};

/// An AMS-compatible Alipay simulator with simulated wallets, a phone wallet page and
/// fault injection.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log at debug level.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a sandbox.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// A merchant: CLIENT_ID[@KEY_VERSION]=PUBLIC_KEY_FILE (PEM or Base64). Repeatable.
        #[arg(long = "merchant", value_name = "CLIENT_ID=PUBLIC_KEY.pem")]
        merchants: Vec<String>,
        /// A seller (a further merchant identity under a client, for combined checkouts):
        /// CLIENT_ID=REFERENCE_MERCHANT_ID[:NAME]. Repeatable.
        #[arg(long = "seller", value_name = "CLIENT_ID=MERCHANT_ID[:NAME]")]
        sellers: Vec<String>,
        /// The notification address of a merchant, as set in Alipay's dashboard:
        /// notifyAuthorization goes there when consult names no authNotifyUrl. Repeatable.
        #[arg(long = "notification-url", value_name = "CLIENT_ID=URL")]
        notification_urls: Vec<String>,
        /// The sandbox's private signing key (PKCS#8/PKCS#1 PEM); generated there if missing.
        #[arg(long, value_name = "KEY.pem")]
        signing_key: Option<PathBuf>,
        /// Origin written into QR code values, e.g. http://192.168.1.20:8080 so a phone on
        /// the LAN can open them (default: the listening address).
        #[arg(long)]
        public_url: Option<String>,
        /// Multiplies the notification retry schedule (0.001 turns 2 min into 120 ms).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Keep state in this JSON file across restarts.
        #[arg(long)]
        state_file: Option<PathBuf>,
        /// Access token life in seconds.
        #[arg(long, default_value_t = config::DEFAULT_ACCESS_TOKEN_TTL.as_secs())]
        access_token_ttl: u64,
        /// Refresh token life in seconds.
        #[arg(long, default_value_t = config::DEFAULT_REFRESH_TOKEN_TTL.as_secs())]
        refresh_token_ttl: u64,
    },
    /// Act as the phone: scan a QR code value of a running sandbox and approve (or deny).
    Scan {
        /// The QR code value (…/wallet/authorize/<code> or …/wallet/pay/<code>).
        code_value: String,
        /// Deny (or decline) instead of approving.
        #[arg(long)]
        deny: bool,
        /// The wallet user (default: the wallet's default user).
        #[arg(long)]
        user: Option<String>,
        /// The sandbox (default: the origin of CODE_VALUE).
        #[arg(long, env = "SCANBIND_SANDBOX_URL")]
        url: Option<String>,
    },
    /// Print the ledger of a running sandbox (JSON).
    Ledger {
        /// The sandbox.
        #[arg(
            long,
            env = "SCANBIND_SANDBOX_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
    },
    /// Write the day's settlement and reconciliation reports (three CSV files per
    /// settlement currency) of a running sandbox into a directory.
    Reports {
        /// The UTC day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// Where to write the files (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Only this merchant's transactions (default: all).
        #[arg(long)]
        client_id: Option<String>,
        /// The sandbox.
        #[arg(
            long,
            env = "SCANBIND_SANDBOX_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
    },
}

fn default_key_path() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("scanbind-sandbox").join("signing-key.pem")
}

fn origin_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(u.origin().ascii_serialization())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = if cli.verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .init();
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("scanbind-sandbox: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            listen,
            merchants,
            sellers,
            notification_urls,
            signing_key,
            public_url,
            time_scale,
            state_file,
            access_token_ttl,
            refresh_token_ttl,
        } => {
            let key_path = signing_key.unwrap_or_else(default_key_path);
            let (key, generated) = config::load_or_generate_signing_key(&key_path)
                .with_context(|| format!("signing key {}", key_path.display()))?;
            if generated {
                eprintln!("generated a new signing key: {}", key_path.display());
            }
            if !(time_scale.is_finite() && time_scale >= 0.0) {
                bail!("--time-scale must be a non-negative number");
            }
            let mut config = Config::new(key);
            config.listen = listen;
            config.public_url = public_url;
            config.time_scale = time_scale;
            config.state_file = state_file;
            config.access_token_ttl = Duration::from_secs(access_token_ttl);
            config.refresh_token_ttl = Duration::from_secs(refresh_token_ttl);
            for m in &merchants {
                config.merchants.push(MerchantConfig::from_arg(m)?);
            }
            for s in &sellers {
                config.sellers.push(config::SellerConfig::from_arg(s)?);
            }
            for arg in &notification_urls {
                let (client_id, url) = config::notification_url_arg(arg)?;
                let mut found = false;
                for m in config
                    .merchants
                    .iter_mut()
                    .filter(|m| m.client_id == client_id)
                {
                    m.notification_url = Some(url.clone());
                    found = true;
                }
                if !found {
                    bail!("--notification-url {arg:?}: no --merchant {client_id} was given");
                }
            }
            if config.merchants.is_empty() {
                eprintln!("warning: no --merchant given; every AMS call will get KEY_NOT_FOUND");
            }
            let handle = SandboxBuilder::from_config(config).start().await?;
            {
                let mut out = std::io::stdout().lock();
                writeln!(out, "scanbind-sandbox listening on {}", handle.base_url())?;
                out.flush()?;
            }
            handle.run_until(shutdown_signal()).await;
            Ok(())
        }
        Command::Scan {
            code_value,
            deny,
            user,
            url,
        } => {
            let base = match url.or_else(|| origin_of(&code_value)) {
                Some(b) => b,
                None => bail!("cannot tell which sandbox to use: pass --url"),
            };
            let client = scanbind_sandbox::notify::http_client()?;
            let mut body = serde_json::json!({
                "codeValue": code_value,
                "decision": if deny { "deny" } else { "approve" },
            });
            if let Some(u) = user {
                body["user"] = u.into();
            }
            let resp = client
                .post(format!("{}/sandbox/v1/scan", base.trim_end_matches('/')))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .context("cannot reach the sandbox")?;
            let ok = resp.status().is_success();
            let text = resp
                .text()
                .await
                .context("cannot read the sandbox's answer")?;
            println!("{text}");
            if !ok {
                bail!("the scan was refused");
            }
            Ok(())
        }
        Command::Ledger { url } => {
            let client = scanbind_sandbox::notify::http_client()?;
            let resp = client
                .get(format!("{}/sandbox/v1/ledger", url.trim_end_matches('/')))
                .send()
                .await
                .context("cannot reach the sandbox")?;
            let bytes = resp.bytes().await.context("cannot read the ledger")?;
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).context("the ledger is not JSON")?;
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(())
        }
        Command::Reports {
            date,
            dir,
            client_id,
            url,
        } => {
            let client = scanbind_sandbox::notify::http_client()?;
            let mut target =
                reqwest::Url::parse(&format!("{}/sandbox/v1/reports", url.trim_end_matches('/')))
                    .context("--url is not a URL")?;
            target.query_pairs_mut().append_pair("date", &date);
            if let Some(c) = &client_id {
                target.query_pairs_mut().append_pair("clientId", c);
            }
            let resp = client
                .get(target)
                .send()
                .await
                .context("cannot reach the sandbox")?;
            let ok = resp.status().is_success();
            let bytes = resp.bytes().await.context("cannot read the reports")?;
            if !ok {
                bail!("the sandbox refused: {}", String::from_utf8_lossy(&bytes));
            }
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).context("the reports answer is not JSON")?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for f in value["files"].as_array().into_iter().flatten() {
                let (Some(name), Some(content)) = (f["name"].as_str(), f["content"].as_str())
                else {
                    bail!("the reports answer is malformed");
                };
                if name.contains('/') || name.starts_with('.') {
                    bail!("refusing the file name {name:?}");
                }
                let path = dir.join(name);
                std::fs::write(&path, content)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
