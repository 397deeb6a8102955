//! # scanbind-device-api
//!
//! The contract between a device (the `scanbindd` daemon) and the merchant server
//! (`scanbind-server`): what travels over `/v1`, how a device proves who it is, how errors
//! are named, and how an app's backend checks a receipt offline. No I/O and no runtime:
//! both sides build on it.
//!
//! ## Layout
//!
//! - [`types`]: request, response and event bodies (JSON, camelCase). Money is always an
//!   integer number of minor units with an ISO 4217 code; there are no floats.
//! - [`codes`]: [`ErrorCode`], the stable machine-readable error codes,
//!   and the [`ApiError`] body every failed request carries.
//! - [`signing`]: the device key ([`DeviceKey`]), the canonical string,
//!   the `x-scanbind-*` headers, and the [`Verifier`] with its ±5 minute
//!   window.
//! - [`receipt`]: signed receipts (JWS compact, EdDSA) and the published key set.
//! - [`limits`]: the size limits of request fields (app id, order id, description,
//!   refund id and reason, seller id, checkout parts, device name).
//! - [`error`]: the crate's one error type.
//!
//! ## Signing in one paragraph
//!
//! Every request after registration carries `x-scanbind-device` (the device id),
//! `x-scanbind-time` (Unix seconds), `x-scanbind-nonce` (random, single use) and
//! `x-scanbind-signature` (Ed25519, base64url without padding) over
//! [`canonical_string`](signing::canonical_string): a version tag, the method, the path
//! with its query, the device id, the time, the nonce and the hex SHA-256 of the body, one
//! per line. The server refuses a request whose time is more than five minutes away from
//! its clock, and a nonce it has seen inside that window.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod codes;
pub mod error;
pub mod limits;
pub mod receipt;
pub mod signing;
pub mod types;

pub use codes::{ApiError, ErrorCode};
pub use error::{Error, Result};
pub use signing::{DeviceKey, DevicePublicKey, Verifier};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
