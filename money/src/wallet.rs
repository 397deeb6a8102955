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
    // (currency, min, per txn, daily, yearly, name), in minor units.
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
    })
}

fn minor(v: i64) -> MinorUnits {
    MinorUnits::new(v).expect("table amounts are non-negative")
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
}
