//! The store: what the daemon keeps on this device, at the bottom of the layers.
//!
//! - [`journal`]: the payment journal (SQLite, WAL, `synchronous=FULL`).
//! - [`vault`]: the OS keyring (device key, sealed tokens, parent PIN hash).

// Parts of the journal and vault API (open-entry reconciliation, per-binding token
// deletion on unbind) are used only by their tests until the rest of issue 5 lands.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod journal;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod vault;
