//! The embedded development stack behind `scanbindd --dev`: an in-process AMS sandbox
//! (the stand-in for Alipay) and an in-process merchant server on SQLite, with their
//! keys, database and sandbox state under one directory. One process then gives an
//! app developer the whole system: point the daemon at [`DevStack::server_url`] and
//! play the phone through the sandbox's pages or control API at
//! [`DevStack::sandbox_url`].
//!
//! Keys are generated on first start (RSA-2048 for the merchant and the sandbox,
//! Ed25519 for receipts, a 256-bit sealing key) and kept in `<dir>/dev/` with mode
//! 0600, so bindings survive a restart. They are development keys: nothing outside
//! this machine trusts them.
//!
//! `scanbindd --dev` (through `scanbindd::dev`, feature `dev-stack`) and the demo
//! (`scanbind-demo`) start it. It is a development tool: never part of what ships.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod bus;

pub use bus::EmbeddedBus;

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine as _;
use scanbind_ams::PrivateKey;
use scanbind_sandbox::{Sandbox, SandboxHandle};
use scanbind_server::app::RunningServer;
use scanbind_server::config::{Config as ServerConfig, RegistrationMode, SellerEntry};

/// Why the development stack could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key, a file, the sandbox or the server: what failed and why.
    #[error("development stack: {0}")]
    Start(String),
    /// The key generation task panicked or was cancelled.
    #[error("a blocking task did not complete")]
    Task(#[source] tokio::task::JoinError),
    /// The embedded D-Bus broker could not start (`busd`'s error, as text).
    #[error("starting the embedded D-Bus broker (busd): {0}")]
    Broker(String),
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The merchant client id of the embedded stack.
pub const DEV_CLIENT_ID: &str = "2188DEV000000001";

/// The sellers of the embedded stack, for combined checkouts: `(id, name)`.
pub const DEV_SELLERS: &[(&str, &str)] = &[
    ("STUDIO", "Sofa Studio Games"),
    ("ADDONS", "Night Map Workshop"),
];

/// Where the development stack's sandbox listens and how phones reach it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DevOptions {
    /// The sandbox's listen address (default: a free loopback port). `0.0.0.0:PORT`
    /// lets a phone on the LAN open the wallet pages.
    pub sandbox_listen: SocketAddr,
    /// The origin the QR codes point at (default: the listen address), e.g.
    /// `http://192.168.1.20:8100` for a phone on the LAN.
    pub sandbox_public_url: Option<String>,
}

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions {
            sandbox_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            sandbox_public_url: None,
        }
    }
}

/// A running sandbox + merchant server pair (see the module docs).
#[derive(Debug)]
pub struct DevStack {
    sandbox: SandboxHandle,
    server: RunningServer,
    server_url: String,
}

fn dev_error(what: &str, cause: impl std::fmt::Display) -> Error {
    Error::Start(format!("{what}: {cause}"))
}

/// Reads `path`, or writes what `make` returns there first (mode 0600).
fn key_file(path: &Path, make: impl FnOnce() -> Result<String>) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = make()?;
            write_private(path, text.as_bytes())
                .map_err(|e| dev_error(&format!("writing {}", path.display()), e))?;
            Ok(text)
        }
        Err(e) => Err(dev_error(&format!("reading {}", path.display()), e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn rsa_pem() -> Result<String> {
    scanbind_sandbox::keygen::generate_pkcs8_pem().map_err(|e| dev_error("generating a key", e))
}

impl DevStack {
    /// Starts the sandbox and the server on loopback ports, their files under
    /// `<state_dir>/dev/`.
    pub async fn start(state_dir: &Path) -> Result<DevStack> {
        DevStack::start_with(state_dir, DevOptions::default()).await
    }

    /// As [`DevStack::start`], the sandbox listening and reachable as `options` say.
    pub async fn start_with(state_dir: &Path, options: DevOptions) -> Result<DevStack> {
        let dir = state_dir.join("dev");
        create_private_dir(&dir)
            .map_err(|e| dev_error(&format!("creating {}", dir.display()), e))?;
        let keys_dir = dir.clone();
        // Key generation is CPU work: off the async workers.
        let (merchant_pem, alipay_pem) = tokio::task::spawn_blocking(move || {
            let merchant = key_file(&keys_dir.join("merchant.pem"), rsa_pem)?;
            let alipay = key_file(&keys_dir.join("sandbox.pem"), rsa_pem)?;
            key_file(&keys_dir.join("receipt.pem"), || {
                scanbind_server::util::ed25519_pkcs8_pem()
                    .map_err(|e| dev_error("generating the receipt key", e))
            })?;
            key_file(&keys_dir.join("seal.key"), || {
                let mut key = [0_u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
                    .map_err(|_| dev_error("generating the sealing key", "no randomness"))?;
                Ok(base64::engine::general_purpose::STANDARD.encode(key))
            })?;
            Ok::<_, Error>((merchant, alipay))
        })
        .await
        .map_err(Error::Task)??;
        let merchant =
            PrivateKey::from_text(&merchant_pem).map_err(|e| dev_error("merchant key", e))?;
        let alipay = PrivateKey::from_text(&alipay_pem).map_err(|e| dev_error("sandbox key", e))?;
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut builder = Sandbox::builder(alipay)
            .listen(options.sandbox_listen)
            .merchant(DEV_CLIENT_ID, merchant.public_key())
            .state_file(dir.join("sandbox-state.json"));
        for (id, name) in DEV_SELLERS {
            builder = builder.seller(DEV_CLIENT_ID, *id, *name);
        }
        if let Some(url) = options.sandbox_public_url {
            builder = builder.public_url(url);
        }
        let sandbox = builder
            .start()
            .await
            .map_err(|e| dev_error("starting the sandbox", e))?;
        let alipay_pub = dir.join("sandbox-public.pem");
        write_private(&alipay_pub, sandbox.public_key().to_pem().as_bytes())
            .map_err(|e| dev_error("writing the sandbox public key", e))?;

        let mut config = ServerConfig::default();
        config.base_dir = dir.clone();
        config.server.listen = loopback;
        config.ams.base_url = Some(sandbox.base_url().to_owned());
        config.ams.client_id = DEV_CLIENT_ID.to_owned();
        config.ams.merchant_private_key = path_str(&dir.join("merchant.pem"));
        config.ams.alipay_public_key = path_str(&alipay_pub);
        config.receipts.signing_key = path_str(&dir.join("receipt.pem"));
        config.tokens.sealing_keys = vec![path_str(&dir.join("seal.key"))];
        config.devices.registration = RegistrationMode::Open;
        // Subscriptions renew on the sandbox's clock, so the demo and the tests renew a
        // period by moving it on (`POST /sandbox/v1/clock/advance`).
        config.subscriptions.clock = scanbind_server::config::BillingClock::Sandbox;
        config.sellers = DEV_SELLERS
            .iter()
            .map(|(id, name)| SellerEntry::new(*id, *name))
            .collect();
        config.database.url = Some(format!(
            "sqlite://{}?mode=rwc",
            dir.join("server.sqlite3").display()
        ));
        let server = match scanbind_server::app::start(config).await {
            Ok(s) => s,
            Err(e) => {
                sandbox.shutdown().await;
                return Err(dev_error("starting the merchant server", e));
            }
        };
        let server_url = format!("http://{}", server.addr);
        tracing::info!(server = %server_url, sandbox = %sandbox.base_url(), "development stack started");
        Ok(DevStack {
            sandbox,
            server,
            server_url,
        })
    }

    /// The merchant server's base URL (plain HTTP on loopback).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The sandbox's base URL: its AMS API, phone pages and control API
    /// (`/sandbox/v1/...`).
    pub fn sandbox_url(&self) -> &str {
        self.sandbox.base_url()
    }

    /// The merchant client id the server uses.
    pub fn client_id(&self) -> &str {
        DEV_CLIENT_ID
    }

    /// Stops the server (draining open requests) and then the sandbox.
    pub async fn shutdown(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!(cause = %e, "the development server stopped with an error");
        }
        self.sandbox.shutdown().await;
    }
}

/// Creates `dir` and its parents, readable by this user only (0700 on Unix).
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}
