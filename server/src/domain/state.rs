//! The shared state of the running server ([`AppState`]): what every request handler
//! and the engine use. Built at start-up (the top `app` module, which loads the
//! keys named by the configuration).

use std::sync::Arc;

use scanbind_ams::client::Client;
use scanbind_ams::notify::NotificationVerifier;
use scanbind_device_api::Verifier;
use scanbind_device_api::receipt::{ReceiptKeySet, ReceiptSigner};
use tokio::sync::Notify;

use crate::config::Config;
use crate::domain::events::EventHub;
use crate::domain::seal::Sealer;
use crate::metrics::Metrics;
use crate::store::Db;

/// Everything a request handler or the engine needs. Shared behind an [`Arc`]; every
/// field is either immutable after start or internally synchronised.
#[derive(Debug)]
pub struct AppState {
    /// The configuration as loaded.
    pub config: Config,
    /// The database.
    pub db: Db,
    /// The AMS client (merchant key inside; cheap to clone).
    pub ams: Client,
    /// Verifies incoming AMS notifications.
    pub notify_verifier: NotificationVerifier,
    /// Seals and opens token blobs.
    pub sealer: Sealer,
    /// Signs receipts.
    pub receipt_signer: ReceiptSigner,
    /// The published receipt keys (current first).
    pub receipt_keys: ReceiptKeySet,
    /// Device event fan-out.
    pub hub: EventHub,
    /// Wakes the payment engine when new work is scheduled (tokio `Notify`: a permit is
    /// stored if the engine is busy, so no wake-up is lost).
    pub engine_wake: Notify,
    /// Device signature verifier.
    pub verifier: Verifier,
    /// The public base URL (no trailing slash).
    pub public_base_url: String,
    /// Path prefix of the public base URL (empty or `/prefix`), part of the notify path
    /// Alipay signs.
    pub public_path_prefix: String,
    /// This process's id, for engine leases.
    pub instance: String,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Wallet tokens of combined checkouts still being paid, in memory only (never
    /// stored), so the engine can send the remaining parts in this process.
    pub checkout_tokens: crate::domain::checkout::TokenCache,
    /// Renewal passes of subscriptions (they take turns in this process).
    pub renewals: crate::domain::subscriptions::Renewals,
}

/// The shared state handle.
pub type App = Arc<AppState>;

impl AppState {
    /// The notify URL for `kind` (`authorization`, `payment`, `refund`).
    pub fn notify_url(&self, kind: &str) -> String {
        format!("{}/ams/notify/{kind}", self.public_base_url)
    }
}
