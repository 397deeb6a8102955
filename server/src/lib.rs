//! # scanbind-server
//!
//! The merchant server: devices talk only to it, and only it talks to Alipay (AMS) or the
//! sandbox. It holds the merchant key, receives Alipay's notifications, seals wallet
//! tokens for devices, drives payments to a final state and signs receipts.
//!
//! ## Layers
//!
//! One way, top to bottom (a module uses only modules below it):
//!
//! ```text
//! app      start-up and shutdown (builds the AppState, serves, stops)
//! http     router, device API, notification intake, back office, OpenAPI, health, metrics
//! domain   bindings, payments, refunds, checkouts, customs, reconcile, export, sealing,
//!          events, operator keys, the engine; the shared AppState
//! store    every SQL statement: pool, migrations, row types, typed statuses and stages
//! leaves   config, tls, metrics, util, error
//! ```
//!
//! - [`app`]: start-up and shutdown ([`app::start`]).
//! - [`http`]: the routes ([`http::router`]); device authentication; the back office.
//! - [`domain`]: what the server does; [`domain::AppState`] is the shared state.
//! - [`store`]: the sqlx pool (SQLite or PostgreSQL), migrations, row types, queries.
//! - [`config`]: the TOML file, `SCANBIND_SERVER_*` overrides, defaults, key references.
//! - [`tls`], [`metrics`], [`util`], [`error`].
//!
//! ## Stable paths
//!
//! Callers outside this crate (tests, benches, the daemon's dev stack, the reliability
//! suite) use the module paths of the flat layout; they stay valid as re-exports:
//! [`db`] (= [`store`]), [`seal`], [`events`], [`reconcile`], [`export`], [`openapi`],
//! [`admin`], next to [`app`], [`config`] and [`util`].
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod store;
pub mod tls;
pub mod util;

pub use config::Config;
pub use error::{Error, Result};

/// Stable path of [`domain::events`].
pub use domain::events;
/// Stable path of [`domain::export`].
pub use domain::export;
/// Stable path of [`domain::reconcile`].
pub use domain::reconcile;
/// Stable path of [`domain::seal`].
pub use domain::seal;
/// Stable path of [`http::admin`] (operator keys are re-exported there).
pub use http::admin;
/// Stable path of [`http::openapi`].
pub use http::openapi;
/// Stable path of [`store`] (the flat layout's `db`).
pub use store as db;
