//! `scanbindd`, the scanbind device daemon (library part).
//!
//! The daemon runs on the PC, TV or console, serves the `scanbind-ipc` D-Bus contract
//! to apps, keeps the device key and the sealed wallet tokens in the OS keyring, and
//! records every payment in a durable journal before anything leaves the device.
//! This crate is the library; the `scanbindd` binary will be a thin `main` around it.
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
//!   bus without a Secret Service.
//!
//! Still to come (issue 5): the D-Bus objects (`Daemon1`, `Binding1`, `Payment1`), the
//! server link, reconciliation at start, policy and the binary; see `daemon/README.md`.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod error;
// The vault and the journal are used by the D-Bus service, which is the next step of
// issue 5; until then only their tests use them.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod journal;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod vault;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use error::{Error, Result};
