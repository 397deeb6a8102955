//! `scanbind-client`: the async Rust API of `scanbindd`, the scanbind device daemon.
//!
//! An app binds the user's wallet once (Scan to Bind: a QR on the screen, scanned
//! with the wallet app) and then charges it with one call. The daemon holds the keys
//! and tokens, writes every payment to its journal before anything leaves the device,
//! and never charges the same order twice. This crate wraps the D-Bus proxies of
//! `scanbind-ipc` in a documented API; the wire contract is `docs/dbus-api.md`, the
//! app developer's guide `docs/apps.md`.
//!
//! ```no_run
//! use scanbind_client::{Client, PayRequest, Transport};
//! use scanbind_client::money::{Currency, Money};
//!
//! # async fn f() -> anyhow::Result<()> {
//! let client = Client::connect(Transport::Auto).await?;
//! let amount = Money::parse_major("49.00", Currency::from_code("HKD")?)?;
//! let payment = client.pay(&PayRequest::new("order-1", amount, "500 gems")).await?;
//! let outcome = payment.wait().await?;
//! if outcome.succeeded() {
//!     // Deliver the gems (send outcome.receipt to your backend first), then:
//!     payment.finish().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`connect`]: where the daemon is ([`Transport`]: session, system, another bus,
//!   a peer-to-peer socket, or auto).
//! - [`Client`]: status, bind, bindings, unbind, pay, history.
//! - [`Binding`]: one binding: its QR code, match code, state, outcome.
//! - [`Payment`]: one payment: state (awaited or streamed), receipt, finish, refund.
//! - [`receipt`]: receipt verification against the merchant server's keys.
//! - [`Error`]: the crate's one error type; a daemon refusal is
//!   [`Error::Daemon`] with the typed [`scanbind_ipc::Error`].

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod binding;
mod client;
pub mod connect;
mod error;
mod http;
mod payment;
pub mod receipt;
mod watch;

pub use binding::{Binding, BindingOutcome, QrMatrix, QrOptions};
pub use client::{BindOptions, Client, ListOptions, PayRequest, SellerPart, Status};
pub use connect::Transport;
pub use error::{Error, Result};
pub use payment::{CheckoutPart, Payment, PaymentOutcome, Refund};
pub use receipt::ReceiptVerifier;
pub use scanbind_ipc::types::Connectivity;
pub use scanbind_ipc::{BindingState, BindingSummary, ErrorInfo, PaymentState, PaymentSummary};

/// Money: integer minor units of an ISO 4217 currency (re-exported from
/// `scanbind-money`). There are no floating-point amounts anywhere.
pub mod money {
    pub use scanbind_money::{Currency, MinorUnits, Money, MoneyError};
}

/// The wire contract (`scanbind-ipc`): error names, proxies, option keys.
pub use scanbind_ipc as ipc;

/// The app developer's guide, `docs/apps.md`: its Rust snippets are doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/apps.md")]
pub struct AppsGuide;
