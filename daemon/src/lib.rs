//! `scanbindd`, the scanbind device daemon (library part).
//!
//! The daemon runs on the PC, TV or console, serves the `scanbind-ipc` D-Bus contract
//! to apps, keeps the device key and the sealed wallet tokens in the OS keyring, and
//! records every payment in a durable journal before anything leaves the device.
//! This crate is the library; the `scanbindd` binary is a thin `main` around it.
//!
//! # Layout
//!
//! - [`error`]: the crate's one error type, [`Error`], and its mapping to the wire
//!   error [`scanbind_ipc::Error`].
//! - `vault`: the OS keyring (Secret Service on Linux) holding the device key and the
//!   sealed token blobs. Every keyring call runs on tokio's blocking pool.
//! - `journal`: the payment journal, SQLite in WAL mode with `synchronous=FULL` in the
//!   XDG state directory. A payment is committed here before it is sent.
//! - `test_util` (feature `test-util`): fixtures for tests, such as a private D-Bus
//!   bus without a Secret Service (re-exported from `scanbind-testkit`).
//!
//! - `server`: the signing client of the merchant server and its event stream reader
//!   (reconnects with a capped back-off; no polling).
//! - `service`: `io.scanbind.Daemon1` and the state shared by all objects; `binding`:
//!   `io.scanbind.Binding1`; `payment`: `io.scanbind.Payment1`; `caller`: the caller's
//!   identity from the bus.
//! - [`runtime`](Daemon): [`Daemon::start`] and [`Daemon::run_until`], used by the
//!   `scanbindd` binary.
//!
//! - `refresh`: token refresh timers; `qr`: QR rendering; `p2p`: the peer-to-peer
//!   socket; [`settings`]: the configuration file; [`dev`] (feature `dev-stack`): the
//!   in-process sandbox and server behind `scanbindd --dev`.
//!
//! `daemon/README.md` maps the modules and lists the known gaps.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod agent;
mod binding;
mod caller;
mod checkout;
/// The in-process sandbox and merchant server behind `scanbindd --dev`: the
/// `scanbind-devstack` crate.
#[cfg(feature = "dev-stack")]
pub use scanbind_devstack as dev;
pub mod error;
// Parts of the journal and vault API (open-entry reconciliation, per-binding token
// deletion on unbind) are used only by their tests until the rest of issue 5 lands.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod journal;
mod p2p;
mod payment;
mod pin;
pub mod policy;
mod qr;
mod refresh;
mod runtime;
pub(crate) mod server;
mod service;
pub mod settings;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod vault;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use error::{Error, Result};
pub use runtime::{BusChoice, Config, Daemon, default_journal_path};
