//! The Scan to Bind wallet table (ams-api.md §4): each wallet's currency, minimum payment
//! and documented limits, keyed by its AMS wire code (`customerBelongsTo`, e.g.
//! `"ALIPAY_HK"`).
//!
//! The typed wallet enum is AMS vocabulary and lives in `scanbind_ams::wallet::Wallet`,
//! whose `scan_to_bind()` reads this table; callers that only need the limits (the
//! daemon's amount checks, the sandbox's balances) can read it here without the AMS
//! protocol crate.

use crate::money::{Currency, MinorUnits};

/// Currency, minimum and limits of a Scan to Bind wallet (ams-api.md §4; limits change
/// over time). Amounts are minor units of `currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletProfile {
    /// The wallet's currency.
    pub currency: Currency,
    /// Smallest payment.
    pub min_amount: MinorUnits,
    /// Largest single payment, if documented.
    pub per_transaction_limit: Option<MinorUnits>,
    /// Daily limit, if documented.
    pub daily_limit: Option<MinorUnits>,
    /// Yearly limit, if documented.
    pub yearly_limit: Option<MinorUnits>,
    /// The wallet's name for people.
    pub display_name: &'static str,
    /// Where its buyers are (the seed's "Buyer country/region" column).
    pub region: &'static str,
    /// Whether a payment can be refunded.
    pub refund: bool,
    /// Whether a payment can be refunded in part.
    pub partial_refund: bool,
    /// Whether the wallet has chargebacks (disputes). None of the Scan to Bind wallets do.
    pub chargeback: bool,
    /// Days after payment during which a refund is accepted.
    pub refund_period_days: u32,
    /// When `cancel` is accepted for a paid payment.
    pub cancel: CancelWindow,
}

/// When Alipay accepts `cancel` for a paid payment (the Scan to Bind cancel page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelWindow {
    /// Until 00:15 (UTC+8) of the day after the payment; then `CANCEL_WINDOW_EXCEED`.
    NextDay0015,
    /// Never: Indonesian payment methods cannot be cancelled (`CANCEL_WINDOW_EXCEED`
    /// at once); refund instead.
    NotAllowed,
}

/// The wire codes of the seven Scan to Bind wallets, in the order of the table in
/// ams-api.md §4.
pub const SCAN_TO_BIND: [&str; 7] = [
    "ALIPAY_CN",
    "ALIPAY_HK",
    "DANA",
    "GCASH",
    "KAKAOPAY",
    "TNG",
    "TRUEMONEY",
];

/// The Scan to Bind profile of the wallet with wire code `code` (exact, upper case),
/// or `None` if it is not a Scan to Bind wallet.
pub fn scan_to_bind(code: &str) -> Option<WalletProfile> {
    // (currency, min, per txn, daily, yearly, name), in minor units. Seed 001's table
    // (AlipayHK, DANA) and the Scan to Bind overview (the others) agree on the rest:
    // refunds full and partial for 365 days, no chargebacks.
    let (currency, min, txn, day, year, name) = match code {
        "ALIPAY_CN" => (Currency::CNY, 10, None, None, None, "Alipay"),
        "ALIPAY_HK" => (
            Currency::HKD,
            1,
            Some(5_000_000),
            None,
            Some(20_000_000),
            "AlipayHK",
        ),
        "DANA" => (
            Currency::IDR,
            30_000,
            Some(1_000_000_000),
            Some(2_000_000_000),
            None,
            "DANA",
        ),
        "GCASH" => (Currency::PHP, 100, None, Some(10_000_000), None, "GCash"),
        "KAKAOPAY" => (Currency::KRW, 50, Some(2_000_000), None, None, "Kakao Pay"),
        "TNG" => (Currency::MYR, 5, Some(2_000_000), None, None, "Touch 'n Go"),
        "TRUEMONEY" => (
            Currency::THB,
            100,
            Some(3_000_000),
            Some(5_000_000),
            None,
            "TrueMoney",
        ),
        _ => return None,
    };
    Some(WalletProfile {
        currency,
        min_amount: minor(min),
        per_transaction_limit: txn.map(minor),
        daily_limit: day.map(minor),
        yearly_limit: year.map(minor),
        display_name: name,
        region: match code {
            "ALIPAY_CN" => "China mainland",
            "ALIPAY_HK" => "Hong Kong, China",
            "DANA" => "Indonesia",
            "GCASH" => "Philippines",
            "KAKAOPAY" => "South Korea",
            "TNG" => "Malaysia",
            _ => "Thailand",
        },
        refund: true,
        partial_refund: true,
        chargeback: false,
        refund_period_days: 365,
        cancel: if code == "DANA" {
            CancelWindow::NotAllowed
        } else {
            CancelWindow::NextDay0015
        },
    })
}

/// The cancel window of the wallet with wire code `code`; a wallet outside the Scan to
/// Bind table gets the wallets' usual window.
pub fn cancel_window(code: &str) -> CancelWindow {
    scan_to_bind(code).map_or(CancelWindow::NextDay0015, |p| p.cancel)
}

fn minor(v: i64) -> MinorUnits {
    MinorUnits::new(v).expect("table amounts are non-negative")
}

/// Alipay's granularity for amounts in `currency`, in minor units: every amount sent to
/// AMS is a whole multiple of it. Alipay requires the last two digits of an IDR `value`
/// to be `00` (whole rupiah, although ISO 4217 gives IDR two decimals); every other
/// currency takes any whole number of its minor units.
pub fn amount_step(currency: Currency) -> i64 {
    match currency {
        Currency::IDR => 100,
        _ => 1,
    }
}

/// Checks `minor` units of `currency` against [`amount_step`]; the error says the rule
/// and the nearest amounts that follow it.
pub fn check_amount_step(currency: Currency, minor: i64) -> Result<(), String> {
    let step = amount_step(currency);
    if minor % step == 0 {
        return Ok(());
    }
    let below = minor - minor.rem_euclid(step);
    Err(format!(
        "Alipay takes {currency} amounts only in whole multiples of {step} minor units \
         (the last two digits must be 00): {minor} is not, {below} or {} is",
        below + step
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scan_to_bind_code_has_a_profile() {
        for code in SCAN_TO_BIND {
            let p = scan_to_bind(code).unwrap_or_else(|| panic!("{code} has no profile"));
            assert!(p.min_amount > MinorUnits::ZERO);
            assert!(!p.display_name.is_empty());
        }
        assert!(scan_to_bind("MAYA").is_none());
        assert!(scan_to_bind("alipay_hk").is_none());
    }

    #[test]
    fn idr_amounts_end_in_00() {
        assert_eq!(amount_step(Currency::IDR), 100);
        assert!(check_amount_step(Currency::IDR, 30_000).is_ok());
        let e = check_amount_step(Currency::IDR, 30_050).unwrap_err();
        assert!(e.contains("30000 or 30100"), "{e}");
        assert!(check_amount_step(Currency::IDR, 1).is_err());
        // Every other currency takes any whole number of minor units.
        assert!(check_amount_step(Currency::HKD, 1).is_ok());
        assert!(check_amount_step(Currency::KRW, 7).is_ok());
    }
}
