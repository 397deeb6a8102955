//! The shared context every request handler gets, and the router that ties the parts
//! together.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use scanbind_ams::PrivateKey;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{Config, MerchantConfig};
use crate::faults::Faults;
use crate::notify::Notifier;
use crate::state::{State, Store};
use crate::{api, control, phone};

/// Everything handlers share. Immutable apart from the parts with their own locks
/// (`store`, `faults`, the notifier's log, the clock's offset).
#[derive(Debug)]
pub(crate) struct App {
    /// Merchants by client id.
    pub merchants: HashMap<String, MerchantConfig>,
    /// Seller names by (client id, reference merchant id).
    pub sellers: HashMap<(String, String), String>,
    /// The sandbox's signing key.
    pub key: Arc<PrivateKey>,
    /// The sandbox clock.
    pub clock: Arc<Clock>,
    /// All data, behind one lock.
    pub store: Store,
    /// Armed faults.
    pub faults: Arc<Faults>,
    /// Notification delivery.
    pub notifier: Arc<Notifier>,
    /// Origin of the phone pages (`http://host:port`, no trailing slash).
    pub public_url: String,
    /// Start-up configuration (token lifetimes, body limit).
    pub config: Config,
    /// Becomes true when the sandbox stops (wakes hanging calls and retry sleeps).
    pub shutdown: watch::Receiver<bool>,
}

impl App {
    /// Runs a state change, saves the state file when it changed, and sends the
    /// notifications it produced.
    pub fn write<R>(&self, f: impl FnOnce(&mut State, &App) -> (R, bool)) -> R {
        let (out, outgoing) = self.store.write(|state| f(state, self));
        if !outgoing.is_empty() {
            self.notifier.dispatch(outgoing);
        }
        out
    }

    /// The current sandbox time as a stored timestamp.
    pub fn now_ts(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }
}

/// The whole HTTP surface: AMS API, control API, phone pages.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/sandbox/v1/public-key", get(control::public_key))
        .route("/sandbox/v1/scan", post(control::scan))
        .route("/sandbox/v1/ledger", get(control::ledger))
        .route("/sandbox/v1/reports", get(control::reports))
        .route("/sandbox/v1/sellers", get(control::sellers))
        .route(
            "/sandbox/v1/faults",
            get(control::list_faults)
                .post(control::arm_fault)
                .delete(control::clear_faults),
        )
        .route(
            "/sandbox/v1/users",
            post(control::create_user).get(control::list_users),
        )
        .route("/sandbox/v1/notifications", get(control::notifications))
        .route("/sandbox/v1/clock", get(control::clock))
        .route("/sandbox/v1/clock/advance", post(control::advance_clock))
        .route(
            "/wallet/authorize/{code}",
            get(phone::authorize_page).post(phone::authorize_submit),
        )
        .route(
            "/wallet/pay/{code}",
            get(phone::pay_page).post(phone::pay_submit),
        )
        .route("/wallet/account/{user}", get(phone::account_page))
        .route("/wallet/account/{user}/unbind", post(phone::unbind_submit))
        .fallback(api::handle)
        .with_state(app)
}
