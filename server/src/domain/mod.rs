//! The domain layer: what the server does, on top of [`crate::store`]. Bindings,
//! payments, refunds, combined checkouts, customs, reconciliation, export, token
//! sealing, the device event hub, operator keys, and the engine that drives unfinished
//! work. It calls store functions and AMS, never SQL.
//!
//! Inside, one way too: [`engine`] drives [`checkout`], which pays its parts through
//! [`payments`] and reverses them through [`refunds`]; [`payments`] and [`refunds`] know
//! nothing of checkouts beyond the store rows (a part's receipt names its checkout).

use std::time::Instant;

use scanbind_ams::model::AmsRequest;
use scanbind_ams::money::{Currency, Money};
use scanbind_ams::wallet::Wallet;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::types::Amount;

use crate::error::{Error, Result};

pub mod bindings;
pub mod checkout;
pub mod customs;
pub mod devices;
pub mod engine;
pub mod enrollment;
pub mod events;
pub mod export;
pub mod notifications;
pub mod operators;
pub mod payments;
pub mod reconcile;
pub mod refunds;
pub mod seal;
pub mod state;
pub mod subscriptions;

#[cfg(test)]
mod tests;

pub use state::{App, AppState};

/// Calls AMS, recording latency for `/metrics`.
pub async fn ams_call<R: AmsRequest>(
    app: &App,
    req: &R,
) -> Result<R::Response, scanbind_ams::Error> {
    let started = Instant::now();
    let out = app.ams.call(req).await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    app.metrics.ams_call(R::ENDPOINT.path(), ms, out.is_err());
    out
}

/// The delay before the next inquiry of something asked `attempts` times already: the
/// configured back-off (`payments.inquiry_backoff_ms`), its last step repeated, 2 s when
/// the list is empty.
pub fn inquiry_delay_ms(app: &state::AppState, attempts: i64) -> i64 {
    let list = &app.config.payments.inquiry_backoff_ms;
    let idx = usize::try_from(attempts.max(0))
        .unwrap_or(usize::MAX)
        .min(list.len().saturating_sub(1));
    i64::try_from(list.get(idx).copied().unwrap_or(2_000)).unwrap_or(2_000)
}

/// True for an id the server could have made (`[A-Za-z0-9_-]`, 1–64 characters); any
/// other id is simply not found (and never reaches the database).
pub fn plausible_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The Scan to Bind wallet named by `text`.
pub fn scan_to_bind_wallet(text: &str) -> Result<(Wallet, Currency)> {
    let wallet = Wallet::parse(text);
    match wallet.scan_to_bind() {
        Some(p) => Ok((wallet, p.currency)),
        None => Err(Error::api(
            ErrorCode::WalletUnsupported,
            format!("{text:?} is not a Scan to Bind wallet"),
        )),
    }
}

/// Validates a device amount against a currency.
pub fn check_amount(amount: &Amount, expected: Option<Currency>) -> Result<Money> {
    let currency = Currency::from_code(&amount.currency)
        .map_err(|e| Error::api(ErrorCode::AmountInvalid, e.to_string()))?;
    if let Some(exp) = expected
        && exp != currency
    {
        return Err(Error::api(
            ErrorCode::AmountInvalid,
            format!("this wallet pays in {exp}, not {currency}"),
        ));
    }
    if amount.value <= 0 {
        return Err(Error::api(
            ErrorCode::AmountInvalid,
            "the amount must be positive",
        ));
    }
    scanbind_ams::money::wallet::check_amount_step(currency, amount.value)
        .map_err(|e| Error::api(ErrorCode::AmountInvalid, e))?;
    Money::from_minor(currency, amount.value)
        .map_err(|e| Error::api(ErrorCode::AmountInvalid, e.to_string()))
}

/// Refuses a text field that is empty, longer than `max` characters or has control
/// characters.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(Error::api(
            ErrorCode::BadRequest,
            format!("{field} must be 1 to {max} printable characters"),
        ));
    }
    Ok(())
}
