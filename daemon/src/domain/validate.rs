//! Checks of what apps ask for, before anything is recorded: the `Pay` arguments,
//! the wallet's own limits, the `StartBinding` wallet name.

use super::error::Refusal;
use scanbind_money::{Currency, MinorUnits, Money};

// The longest order id, description, wallet, label and line item name accepted
// (characters) and the most line items: the contract's limits (`docs/dbus-api.md`).
pub(crate) use scanbind_ipc::limits::{
    MAX_DESCRIPTION, MAX_ITEM_NAME, MAX_LABEL, MAX_LINE_ITEMS, MAX_ORDER_ID, MAX_WALLET,
};

/// The wallet's own minimum and per-payment limit (ams-api.md §4), checked before
/// anything is recorded, for amounts in the wallet's currency.
pub(crate) fn check_wallet_limits(wallet: &str, amount: Money) -> Result<(), Refusal> {
    let Some(profile) = scanbind_ams::wallet::Wallet::parse(wallet).scan_to_bind() else {
        return Ok(());
    };
    if profile.currency != amount.currency() {
        return Ok(());
    }
    if amount.minor() < profile.min_amount {
        return Err(Refusal::BelowMinimum(format!(
            "{} takes at least {} minor units of {}",
            profile.display_name,
            profile.min_amount.get(),
            profile.currency.code()
        )));
    }
    if let Some(limit) = profile.per_transaction_limit
        && amount.minor() > limit
    {
        return Err(Refusal::AboveLimit(format!(
            "{} takes at most {} minor units of {} per payment",
            profile.display_name,
            limit.get(),
            profile.currency.code()
        )));
    }
    Ok(())
}

/// Checks the `Pay` arguments; the money on success.
pub(crate) fn validate_pay(
    order_id: &str,
    amount_minor: i64,
    currency: &str,
    description: &str,
) -> Result<Money, Refusal> {
    if order_id.is_empty()
        || order_id.len() > MAX_ORDER_ID
        || !order_id.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(Refusal::InvalidArgument(format!(
            "order_id must be 1 to {MAX_ORDER_ID} printable ASCII characters"
        )));
    }
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION {
        return Err(Refusal::InvalidArgument(format!(
            "description must be 1 to {MAX_DESCRIPTION} characters"
        )));
    }
    if amount_minor <= 0 {
        return Err(Refusal::InvalidAmount(format!(
            "amount_minor must be a positive number of minor units, not {amount_minor}"
        )));
    }
    let currency = Currency::from_code(currency).map_err(|_| {
        Refusal::UnknownCurrency(format!(
            "{currency:?} is not an ISO 4217 code scanbind pays in"
        ))
    })?;
    let minor = MinorUnits::new(amount_minor)
        .map_err(|e| Refusal::InvalidAmount(format!("amount_minor: {e}")))?;
    scanbind_money::wallet::check_amount_step(currency, amount_minor)
        .map_err(|e| Refusal::InvalidAmount(format!("amount_minor: {e}")))?;
    Ok(Money::new(currency, minor))
}

/// Checks the wallet named in `StartBinding`.
pub(crate) fn validate_wallet(wallet: &str) -> Result<(), Refusal> {
    if wallet.is_empty()
        || wallet.len() > MAX_WALLET
        || !wallet
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Refusal::InvalidArgument(format!(
            "wallet must be 1 to {MAX_WALLET} of A-Z a-z 0-9 _ (e.g. ALIPAY_HK)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
