//! # scanbind-money
//!
//! Money as every scanbind crate sees it: integer minor units of an ISO 4217 currency,
//! the AMS `Amount` wire form, the Scan to Bind wallet limits, and the redacted
//! [`SecretString`]. There are no floats anywhere.
//!
//! This crate sits at the bottom of the workspace: it depends on serde and thiserror
//! only, so the app-side crates (`scanbind-client`, `libscanbind`) and the policy
//! (`scanbind-policy`) use money without the AMS protocol crate. `scanbind-ams`
//! re-exports everything here unchanged (`scanbind_ams::money`, `scanbind_ams::Money`,
//! `scanbind_ams::wallet::WalletProfile`, `scanbind_ams::model::SecretString`).
//!
//! ## Layout
//!
//! - `money` (re-exported at the root): [`MinorUnits`], the exhaustive ISO 4217
//!   [`Currency`] table, [`Money`], the wire [`Amount`] and [`MoneyError`], the crate's
//!   one error type.
//! - [`wallet`]: [`WalletProfile`] and the Scan to Bind wallet table (currency, minimum,
//!   limits), keyed by wire code. Uses `money`.
//! - [`secret`]: [`SecretString`]. Uses nothing else here.
//!
//! ```
//! use scanbind_money::{Currency, Money};
//!
//! let price = Money::parse_major("49.00", Currency::HKD).unwrap();
//! assert_eq!(price.minor().get(), 4900);
//! assert_eq!(price.to_string(), "HKD 49.00");
//! let limits = scanbind_money::wallet::scan_to_bind("ALIPAY_HK").unwrap();
//! assert!(price.minor() <= limits.per_transaction_limit.unwrap());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod money;
pub mod secret;
pub mod wallet;

pub use money::{
    Amount, Currency, MinorUnits, Money, MoneyError, convert_at_price, convert_at_scaled_price,
    string_or_integer,
};
pub use secret::SecretString;
pub use wallet::{CancelWindow, WalletProfile};
