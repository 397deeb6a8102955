//! `scanbindd`, the scanbind device daemon (library part).
//!
//! The daemon runs on the PC, TV or console, serves the `scanbind-ipc` D-Bus contract
//! to apps, keeps the device key and the sealed wallet tokens in the OS keyring, and
//! records every payment in a durable journal before anything leaves the device.
//! This crate is the library; the `scanbindd` binary is a thin `main` around it.
//!
//! # Layers
//!
//! The modules are layered; each imports only the ones below it:
//!
//! ```text
//! runtime            Daemon::start / run_until: wiring, server events, idle exit
//! untrusted          the parsers of untrusted input as pure functions (fuzz targets)
//! dbus               Daemon1, Binding1, Payment1, AgentManager1 adapters; caller identity,
//!                    options, the connection list, p2p socket; errors → wire (one place)
//! domain             validation, admission of a payment, the payment driver, checkouts,
//!                    bindings, refunds, refresh, prompts, PIN, the shared state; it
//!                    announces and asks through its own traits (Publisher, Prompter),
//!                    which the dbus layer implements
//! link               the merchant server's signing client and event stream
//! store              journal (SQLite), vault (OS keyring or the daemon's own vault file)
//! leaves             error, policy, settings, qr, sync, test_util
//! ```
//!
//! - [`error`]: the crate's error type, [`Error`] (its mapping to the wire error
//!   [`scanbind_ipc::Error`], [`Error::to_wire`], is made in the D-Bus layer).
//! - `store`: `vault`, the device key and the sealed token blobs, in the OS keyring
//!   (Secret Service on Linux; every keyring call on tokio's blocking pool) or in the
//!   daemon's own encrypted vault file ([`VaultChoice`]); and
//!   `journal`, the payment journal, SQLite in WAL mode with `synchronous=FULL` in the
//!   XDG state directory. A payment is committed there before it is sent.
//! - `link`: the signing client of the merchant server and its event stream reader
//!   (reconnects with a capped back-off; no polling).
//! - `domain`: what the daemon decides and does, without D-Bus.
//! - `dbus`: one adapter per interface, the caller's identity, the peer-to-peer socket.
//! - [`runtime`](Daemon): [`Daemon::start`] and [`Daemon::run_until`], used by the
//!   `scanbindd` binary.
//! - [`untrusted`]: the parsers of untrusted input (Manager1 arguments, `.desktop`
//!   files, `/proc` listings, Flatpak and AppArmor identities) as pure functions, for
//!   the fuzz targets.
//! - [`settings`]: the configuration file; [`policy`]: the per-app payment policy;
//!   `qr`: QR rendering; [`dev`] (feature `dev-stack`): the in-process sandbox and
//!   server behind `scanbindd --dev`; `test_util` (feature `test-util`): fixtures for
//!   tests, such as a private D-Bus bus without a Secret Service.
//!
//! `daemon/README.md` maps concepts to files and lists the known gaps.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod dbus;
/// The in-process sandbox and merchant server behind `scanbindd --dev`: the
/// `scanbind-devstack` crate.
#[cfg(feature = "dev-stack")]
pub use scanbind_devstack as dev;
mod domain;
pub mod error;
pub(crate) mod link;
/// The per-app payment policy: the `scanbind-policy` crate.
pub use scanbind_policy as policy;
mod qr;
mod runtime;
pub mod settings;
pub(crate) mod store;
mod sync;
pub mod untrusted;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use error::{Error, Result};
pub use runtime::{BusChoice, Config, Daemon, default_journal_path};
pub use store::vault::VaultChoice;
