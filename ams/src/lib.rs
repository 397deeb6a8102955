//! # scanbind-ams
//!
//! Alipay's AMS wire protocol, complete and exact, for both sides of the wire: the
//! merchant server uses it to call Alipay, and the sandbox uses it to *be* Alipay.
//! No product logic lives here.
//!
//! ## Layout
//!
//! - [`money`]: [`MinorUnits`], the ISO 4217 [`Currency`]
//!   table, and the wire [`Amount`]. No floats anywhere. This is the `scanbind-money`
//!   crate, re-exported unchanged.
//! - [`keys`]: RSA private and public keys in every form merchants meet them.
//! - [`signature`]: the signed content string, RSA256 signing and verification, and the
//!   tolerant `signature` header parser.
//! - [`result`]: the `result` object, result codes, and [`decide`](result::decide), the one
//!   function that says whether an outcome is final, retryable or must be inquired.
//! - [`wallet`]: `customerBelongsTo` wallets, keeping unknown values; their Scan to Bind
//!   limits come from `scanbind_money::wallet`.
//! - [`model`]: typed requests, responses and notifications for every endpoint used.
//! - [`flex`]: scalar fields accepted both as JSON strings and as native values.
//! - [`client`]: the async HTTP client: regions, sandbox path rewrite, signing, response
//!   verification, retries with the same idempotency key.
//! - [`notify`]: verifying and parsing incoming notifications, and the exact acknowledgement.
//! - [`error`]: the crate's one error type.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod client;
pub mod error;
pub mod flex;
pub mod keys;
pub mod model;
pub mod notify;
pub mod reports;
pub mod result;
pub mod signature;
pub mod wallet;

pub use error::{Error, Result};
pub use keys::{PrivateKey, PublicKey};
pub use result::{AmsResult, ResultCode, ResultStatus};
/// Money: the `scanbind-money` crate (integer minor units, the ISO 4217 table, the wire
/// `Amount`), re-exported so `scanbind_ams::money::...` is where it always was.
pub use scanbind_money as money;
pub use scanbind_money::{Amount, Currency, MinorUnits, Money};
