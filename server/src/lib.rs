//! # scanbind-server
//!
//! The merchant server: devices talk only to it, and only it talks to Alipay (AMS) or the
//! sandbox. It holds the merchant key, receives Alipay's notifications, seals wallet
//! tokens for devices, drives payments to a final state and signs receipts.
//!
//! ## Layout
//!
//! - [`config`]: the TOML file, `SCANBIND_SERVER_*` overrides, defaults, key references.
//! - [`app`]: shared state, start-up and shutdown ([`app::start`]).
//! - [`api`]: the routes: device API `/v1`, notification intake `/ams/notify/*`, health
//!   and metrics.
//! - [`auth`]: device request authentication (signature, freshness, replay).
//! - [`service`]: bindings, payments, refunds: every state change, applied once.
//! - [`checkout`]: combined checkouts (several sellers, one payment each, all-or-nothing).
//! - [`engine`]: background driver of unfinished payments, refunds and QR expiry.
//! - [`events`]: the device event log and its fan-out (SSE; PostgreSQL LISTEN/NOTIFY).
//! - [`seal`]: token sealing (ChaCha20-Poly1305, key rotation).
//! - [`db`]: the sqlx pool (SQLite or PostgreSQL), migrations, row types.
//! - [`export`]: transaction export and settlement summary.
//! - [`admin`]: the back office: operator API `/admin/v1`, operator keys.
//! - [`customs`]: customs declarations (AMS declare / inquiryDeclarationRequests).
//! - [`reconcile`]: settlement report parsing and reconciliation against the records.
//! - [`metrics`], [`tls`], [`openapi`], [`util`], [`error`].
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod checkout;
pub mod config;
pub mod customs;
pub mod db;
pub mod engine;
pub mod error;
pub mod events;
pub mod export;
pub mod metrics;
pub mod openapi;
pub mod reconcile;
pub mod seal;
pub mod service;
pub mod tls;
pub mod util;

pub use config::Config;
pub use error::{Error, Result};
