//! The domain layer: what the server does, on top of [`crate::store`]. Bindings,
//! payments, refunds, combined checkouts, customs, reconciliation, export, token
//! sealing, the device event hub, and the engine that drives unfinished work. It calls
//! store functions and AMS, never SQL.

pub mod checkout;
pub mod customs;
pub mod engine;
pub mod events;
pub mod export;
pub mod operators;
pub mod payments;
pub mod reconcile;
pub mod seal;
pub mod state;

pub use state::{App, AppState};
