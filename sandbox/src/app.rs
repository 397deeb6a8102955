//! The shared context every request handler gets: the merchants, the signing key, the
//! clock, the store, the faults and the notifier. The routes that hand it to the
//! handlers are in `router.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use scanbind_ams::PrivateKey;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{Config, MerchantConfig};
use crate::faults::Faults;
use crate::notify::Notifier;
use crate::state::{State, Store};

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
