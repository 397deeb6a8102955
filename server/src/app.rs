//! Start-up and shutdown: builds the [`AppState`] from a [`Config`] (keys, AMS client,
//! database), starts the engine and the event listener, and serves the router. The top
//! of the crate: it wires `http` and `domain` together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scanbind_ams::client::{Client, Region, RetryPolicy};
use scanbind_ams::notify::NotificationVerifier;
use scanbind_ams::{PrivateKey, PublicKey};
use scanbind_device_api::Verifier;
use scanbind_device_api::receipt::{ReceiptKeySet, ReceiptSigner};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tracing::info;

use crate::config::Config;
use crate::domain::events::EventHub;
use crate::domain::seal::{Sealer, parse_sealing_key};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::Db;

pub use crate::domain::{App, AppState};

fn pem_or_der(bytes: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let body: String = text
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::trim)
                .collect();
            STANDARD.decode(body).unwrap_or_default()
        }
        _ => bytes.to_vec(),
    }
}

impl AppState {
    /// Loads keys, connects the database, and builds the state. `bound` is the address
    /// actually listened on (for the default public URL).
    pub async fn build(config: Config, bound: SocketAddr) -> Result<App> {
        let c = &config;
        let merchant = c.read_key_file("ams.merchant_private_key", &c.ams.merchant_private_key)?;
        let merchant = PrivateKey::from_text(&String::from_utf8_lossy(&merchant))
            .map_err(|e| Error::config("ams.merchant_private_key", e.to_string()))?;
        let alipay = c.read_key_file("ams.alipay_public_key", &c.ams.alipay_public_key)?;
        let alipay = PublicKey::from_text(&String::from_utf8_lossy(&alipay))
            .map_err(|e| Error::config("ams.alipay_public_key", e.to_string()))?;
        let mut sealing = Vec::new();
        for (i, k) in c.tokens.sealing_keys.iter().enumerate() {
            let key = format!("tokens.sealing_keys[{i}]");
            let bytes = c.read_key_file(&key, k)?;
            sealing.push(
                parse_sealing_key(&bytes)
                    .ok_or_else(|| Error::config(&key, "must hold 32 bytes (base64)"))?,
            );
        }
        let sealer = Sealer::new(&sealing)?;
        let receipt = c.read_key_file("receipts.signing_key", &c.receipts.signing_key)?;
        let receipt_signer = ReceiptSigner::from_pkcs8(&pem_or_der(&receipt))
            .map_err(|e| Error::config("receipts.signing_key", e.to_string()))?;
        let mut receipt_keys = ReceiptKeySet {
            keys: vec![receipt_signer.jwk()],
        };
        for (i, k) in c.receipts.retired_keys.iter().enumerate() {
            let key = format!("receipts.retired_keys[{i}]");
            let bytes = c.read_key_file(&key, k)?;
            let s = ReceiptSigner::from_pkcs8(&pem_or_der(&bytes))
                .map_err(|e| Error::config(&key, e.to_string()))?;
            receipt_keys.keys.push(s.jwk());
        }
        let mut builder =
            Client::builder(c.ams.client_id.clone(), Arc::new(merchant), alipay.clone())
                .key_version(c.ams.key_version)
                .retry(RetryPolicy {
                    max_attempts: c.ams.max_attempts,
                    attempt_timeout: Duration::from_millis(c.ams.attempt_timeout_ms),
                    ..RetryPolicy::default()
                });
        builder = match &c.ams.base_url {
            Some(url) => builder.base_url(url.clone()),
            None => builder.region(
                Region::parse(&c.ams.region)
                    .map_err(|e| Error::config("ams.region", e.to_string()))?,
            ),
        };
        let ams = builder
            .build()
            .map_err(|e| Error::config("ams.base_url", e.to_string()))?;
        let url = c.database_url()?;
        let db = Db::connect(&url, c.database.max_connections).await?;
        let public_base_url = c.public_base_url(bound);
        let public_path_prefix = public_base_url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{}", p.trim_end_matches('/')))
            .filter(|p| p != "/")
            .unwrap_or_default();
        let hub = EventHub::new(db.clone());
        Ok(Arc::new(AppState {
            notify_verifier: NotificationVerifier::new(c.ams.client_id.clone(), alipay),
            verifier: Verifier::with_window(c.devices.clock_window_seconds),
            config,
            db,
            ams,
            sealer,
            receipt_signer,
            receipt_keys,
            hub,
            engine_wake: Notify::new(),
            public_base_url,
            public_path_prefix,
            instance: crate::util::new_id("srv"),
            metrics: Metrics::default(),
            checkout_tokens: crate::domain::checkout::TokenCache::default(),
            renewals: crate::domain::subscriptions::Renewals::default(),
        }))
    }
}

/// A server that is listening. Drop or [`RunningServer::shutdown`] stops it.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address of the devices' public listener.
    pub addr: SocketAddr,
    /// The bound address of the operator listener (`/metrics`, `/admin/v1`).
    pub admin_addr: SocketAddr,
    /// The shared state.
    pub app: App,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl RunningServer {
    /// Stops accepting, drains open requests and background tasks.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(Error::Serve(format!("server task: {e}"))),
        }
    }

    /// Waits until the server stops by itself (never, unless it fails).
    pub async fn wait(self) -> Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(Error::Serve(format!("server task: {e}"))),
        }
    }

    /// A handle that stops the server when sent `true`.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

async fn bind(key: &str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config(key, format!("cannot bind {addr}: {e}")))
}

/// Serves `router` on `listener` (TLS when `tls` is set) until `stop` turns true.
async fn serve(
    listener: TcpListener,
    tls: Option<crate::tls::Acceptor>,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let shutdown = async move {
        let _ = stop.wait_for(|v| *v).await;
    };
    match tls {
        Some(acceptor) => crate::tls::serve(listener, acceptor, router, shutdown).await,
        None => axum::serve(
            axum::serve::ListenerExt::tap_io(listener, crate::tls::tcp_keepalive),
            router,
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Serve(e.to_string())),
    }
}

/// Binds both listeners (the devices' public one and the operator one), builds the
/// state, starts the engine and the event listener, and serves.
pub async fn start(config: Config) -> Result<RunningServer> {
    let listener = bind("server.listen", config.server.listen).await?;
    let admin_listener = bind("server.admin_listen", config.admin_listen()).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Serve(e.to_string()))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| Error::Serve(e.to_string()))?;
    let tls = crate::tls::acceptor(&config)?;
    let app = AppState::build(config, addr).await?;
    let (stop, stop_rx) = watch::channel(false);
    app.hub.start_listener(stop_rx.clone()).await?;
    let engine = tokio::spawn(crate::domain::engine::run(app.clone(), stop_rx.clone()));
    let router = crate::http::router(app.clone());
    let operator_router = crate::http::operator_router(app.clone());
    info!(%addr, %admin_addr, public = %app.public_base_url, backend = ?app.db.backend(), "scanbind-server listening");
    let task_app = app.clone();
    let task = tokio::spawn(async move {
        let operator = tokio::spawn(serve(
            admin_listener,
            tls.clone(),
            operator_router,
            stop_rx.clone(),
        ));
        let served = serve(listener, tls, router, stop_rx).await;
        let operator_served = match operator.await {
            Ok(r) => r,
            Err(e) => Err(Error::Serve(format!("operator listener task: {e}"))),
        };
        let _ = engine.await;
        task_app.db.close().await;
        served.and(operator_served)
    });
    Ok(RunningServer {
        addr,
        admin_addr,
        app,
        stop,
        task,
    })
}
