//! # scanbind-sandbox
//!
//! An AMS-compatible Alipay for development, demos and tests: the same paths, headers,
//! signatures, result codes, idempotency, time limits and notifications (with retries) as
//! the real service, simulated Scan to Bind wallets with balances and limits, a phone
//! wallet web page that QR codes point at, and fault injection. The official Alipay SDKs
//! work against it unchanged.
//!
//! ## Layout
//!
//! - [`Sandbox`] / [`SandboxBuilder`] / [`SandboxHandle`] (this file): start a sandbox
//!   in-process and stop it.
//! - `router`: the route table (AMS API, control API, phone pages), on top of
//!   everything else.
//! - `app`: the shared context every handler gets (merchants, key, clock, store,
//!   faults, notifier).
//! - [`config`]: merchants and keys, signing key (loaded or generated), time scale, token
//!   lifetimes, state file.
//! - [`clock`]: real time plus an offset tests move forward.
//! - [`state`]: all data behind one lock, optionally persisted to a JSON file.
//! - `api/`: the AMS API pipeline (size limit → headers → merchant → signature → parse →
//!   validate → handler) and one module per AMS group: `auth`, `payments`, `customs`.
//! - `respond`: HTTP 200 answers, signed over the exact bytes and the request path.
//! - [`notify`]: notifications signed over the merchant's path and retried on the real
//!   schedule, scaled; a delivery log.
//! - [`faults`]: per-endpoint and per-notification faults, and the magic amounts.
//! - `phone`: the wallet pages (authorize, pay, account).
//! - `control`: the `/sandbox/v1/...` control API.
//! - [`reports`]: settlement and reconciliation reports (CSV) per day and currency.
//! - [`wallets`]: wallet users, default balances, limit usage.
//! - [`ids`], [`keygen`], [`error`]: identifiers, RSA key generation, the error type.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod api;
mod app;
pub mod clock;
pub mod config;
mod control;
pub mod error;
pub mod faults;
pub mod fx;
pub mod ids;
pub mod keygen;
pub mod notify;
mod phone;
mod qr_image;
pub mod reports;
mod respond;
mod router;
pub mod state;
pub mod wallets;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use scanbind_ams::{PrivateKey, PublicKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, MerchantConfig, SellerConfig};
pub use error::{Error, Result};

/// The sandbox: build one with [`Sandbox::builder`].
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Starts building a sandbox that signs with `signing_key`.
    pub fn builder(signing_key: PrivateKey) -> SandboxBuilder {
        SandboxBuilder {
            config: Config::new(signing_key),
        }
    }
}

/// Configures a sandbox before it starts.
#[derive(Debug)]
pub struct SandboxBuilder {
    config: Config,
}

impl SandboxBuilder {
    /// Builds from a complete configuration.
    pub fn from_config(config: Config) -> Self {
        SandboxBuilder { config }
    }

    /// The address to listen on (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// Registers a merchant with one public key (keyVersion 1).
    pub fn merchant(mut self, client_id: impl Into<String>, key: PublicKey) -> Self {
        self.config
            .merchants
            .push(MerchantConfig::new(client_id, key));
        self
    }

    /// Registers a seller: a further merchant identity (`referenceMerchantId`) under the
    /// client `client_id`, for combined checkouts that pay several sellers.
    pub fn seller(
        mut self,
        client_id: impl Into<String>,
        reference_merchant_id: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        self.config.sellers.push(config::SellerConfig {
            client_id: client_id.into(),
            reference_merchant_id: reference_merchant_id.into(),
            name: name.into(),
        });
        self
    }

    /// Sets the notification address of the merchant `client_id` (registered before), as
    /// in Alipay's dashboard: `notifyAuthorization` goes there when `consult` names no
    /// `authNotifyUrl`.
    pub fn notification_url(mut self, client_id: &str, url: impl Into<String>) -> Self {
        let url = url.into();
        for m in self
            .config
            .merchants
            .iter_mut()
            .filter(|m| m.client_id == client_id)
        {
            m.notification_url = Some(url.clone());
        }
        self
    }

    /// Registers a merchant described in full.
    pub fn merchant_config(mut self, merchant: MerchantConfig) -> Self {
        self.config.merchants.push(merchant);
        self
    }

    /// The origin written into QR code values (default: the listening address).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.config.public_url = Some(url.into());
        self
    }

    /// Multiplies the notification retry schedule (e.g. 0.001).
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.config.time_scale = scale;
        self
    }

    /// Keeps state in this file across restarts.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.state_file = Some(path.into());
        self
    }

    /// Access and refresh token lifetimes.
    pub fn token_ttls(mut self, access: Duration, refresh: Duration) -> Self {
        self.config.access_token_ttl = access;
        self.config.refresh_token_ttl = refresh;
        self
    }

    /// Binds the socket and starts serving.
    pub async fn start(self) -> Result<SandboxHandle> {
        let mut config = self.config;
        config.access_token_ttl = config.access_token_ttl.min(clock::MAX_OFFSET);
        config.refresh_token_ttl = config.refresh_token_ttl.min(clock::MAX_OFFSET);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let base_url = format!("http://{addr}");
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| base_url.clone())
            .trim_end_matches('/')
            .to_owned();
        let store = state::Store::open(config.state_file.clone())?;
        let offset = store.read(|s| s.clock_offset_secs);
        let clock = Arc::new(clock::Clock::with_offset(Duration::from_secs(offset)));
        let faults = Arc::new(faults::Faults::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let notifier = Arc::new(notify::Notifier::new(
            Arc::clone(&config.signing_key),
            Arc::clone(&clock),
            config.time_scale,
            Arc::clone(&faults),
            stop_rx.clone(),
        )?);
        let app = Arc::new(app::App {
            merchants: config
                .merchants
                .iter()
                .map(|m| (m.client_id.clone(), m.clone()))
                .collect(),
            sellers: config
                .sellers
                .iter()
                .map(|s| {
                    (
                        (s.client_id.clone(), s.reference_merchant_id.clone()),
                        s.name.clone(),
                    )
                })
                .collect(),
            key: Arc::clone(&config.signing_key),
            clock,
            store,
            faults,
            notifier,
            public_url: public_url.clone(),
            config,
            shutdown: stop_rx.clone(),
        });
        let ticker = tokio::spawn(tick(Arc::clone(&app), stop_rx.clone()));
        let router = router::router(Arc::clone(&app));
        let mut stop = stop_rx;
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(err) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(cause = %err, "the sandbox HTTP server failed");
            }
        });
        Ok(SandboxHandle {
            addr,
            base_url,
            public_url,
            public_key: app.key.public_key(),
            stop: stop_tx,
            server,
            ticker,
        })
    }
}

/// Applies time-driven transitions once a second of real time, so in-process payments
/// become final and order codes expire even when nobody asks.
async fn tick(app: Arc<app::App>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let now = app.clock.now();
                app.write(|state, _| {
                    let changed = api::payments::sweep(state, now);
                    ((), changed)
                });
            }
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// A running sandbox.
#[derive(Debug)]
pub struct SandboxHandle {
    addr: SocketAddr,
    base_url: String,
    public_url: String,
    public_key: PublicKey,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    ticker: JoinHandle<()>,
}

impl SandboxHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the gateway URL for AMS clients.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The origin used in QR code values.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The sandbox's signing public key (verify responses and notifications with it).
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Stops serving: wakes hanging calls, stops notification retries, waits for the
    /// server to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = self.ticker.await;
    }

    /// Serves until `signal` completes (e.g. SIGTERM), then shuts down.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}
