//! `customerBelongsTo`: the wallet a user pays with (ams-api.md §5.1), and the Scan to
//! Bind wallet table (ams-api.md §4).
//!
//! Unknown wallet codes are kept verbatim in [`Wallet::Other`], so a wallet AMS adds later
//! round-trips unchanged.

use crate::model::common::wire_enum;
use crate::money::{Currency, MinorUnits};

wire_enum! {
    /// A wallet, as AMS names it in `customerBelongsTo` and `paymentMethodType`.
    pub enum Wallet {
        /// Alipay (mainland China).
        AlipayCn = "ALIPAY_CN",
        /// AlipayHK.
        AlipayHk = "ALIPAY_HK",
        /// MPay (Macau).
        Mpay = "MPAY",
        /// DANA (Indonesia).
        Dana = "DANA",
        /// PayPay (Japan).
        Paypay = "PAYPAY",
        /// Boost (Malaysia).
        Boost = "BOOST",
        /// Touch 'n Go eWallet (Malaysia).
        Tng = "TNG",
        /// GrabPay Malaysia.
        GrabpayMy = "GRABPAY_MY",
        /// HiPay (Mongolia).
        Hipay = "HIPAY",
        /// GCash (Philippines).
        Gcash = "GCASH",
        /// Maya (Philippines).
        Maya = "MAYA",
        /// GrabPay Philippines.
        GrabpayPh = "GRABPAY_PH",
        /// GrabPay Singapore.
        GrabpaySg = "GRABPAY_SG",
        /// Kakao Pay (Korea).
        Kakaopay = "KAKAOPAY",
        /// Naver Pay (Korea).
        Naverpay = "NAVERPAY",
        /// Toss Pay (Korea).
        Tosspay = "TOSSPAY",
        /// Rabbit LINE Pay (Thailand).
        RabbitLinePay = "RABBIT_LINE_PAY",
        /// TrueMoney (Thailand).
        Truemoney = "TRUEMONEY",
        /// K PLUS (Thailand).
        Kplus = "KPLUS",
        /// Siam Commercial Bank direct debit.
        DirectDebitSiamcommercialbank = "DIRECT_DEBIT_SIAMCOMMERCIALBANK",
        /// Krungthai Bank direct debit.
        DirectDebitKrungthaibank = "DIRECT_DEBIT_KRUNGTHAIBANK",
        /// ACH direct debit (US).
        AchDirectDebit = "ACH_DIRECT_DEBIT",
        /// ZaloPay (Vietnam).
        Zalopay = "ZALOPAY",
        /// MoMo (Vietnam).
        Momo = "MOMO",
        /// Viettel Money (Vietnam).
        Viettelmoney = "VIETTELMONEY",
        /// JKOPAY (Taiwan).
        Jkopay = "JKOPAY",
        /// bKash (Bangladesh).
        Bkash = "BKASH",
        /// Easypaisa (Pakistan).
        Easypaisa = "EASYPAISA",
        /// Yapily direct debit.
        DirectdebitYapily = "DIRECTDEBIT_YAPILY",
        /// Antom business account.
        AntomBizAccount = "ANTOM_BIZ_ACCOUNT",
    }
}

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

impl Wallet {
    /// The seven Scan to Bind wallets, in the order of the table in ams-api.md §4.
    pub const SCAN_TO_BIND: [Wallet; 7] = [
        Wallet::AlipayCn,
        Wallet::AlipayHk,
        Wallet::Dana,
        Wallet::Gcash,
        Wallet::Kakaopay,
        Wallet::Tng,
        Wallet::Truemoney,
    ];

    /// The Scan to Bind profile of this wallet, or `None` if it is not a Scan to Bind wallet.
    pub fn scan_to_bind(&self) -> Option<WalletProfile> {
        // (currency, min, per txn, daily, yearly, name), in minor units.
        let (currency, min, txn, day, year, name) = match self {
            Wallet::AlipayCn => (Currency::CNY, 10, None, None, None, "Alipay"),
            Wallet::AlipayHk => (
                Currency::HKD,
                1,
                Some(5_000_000),
                None,
                Some(20_000_000),
                "AlipayHK",
            ),
            Wallet::Dana => (
                Currency::IDR,
                30_000,
                Some(1_000_000_000),
                Some(2_000_000_000),
                None,
                "DANA",
            ),
            Wallet::Gcash => (Currency::PHP, 100, None, Some(10_000_000), None, "GCash"),
            Wallet::Kakaopay => (Currency::KRW, 50, Some(2_000_000), None, None, "Kakao Pay"),
            Wallet::Tng => (Currency::MYR, 5, Some(2_000_000), None, None, "Touch 'n Go"),
            Wallet::Truemoney => (
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
}

fn minor(v: i64) -> MinorUnits {
    MinorUnits::new(v).expect("table amounts are non-negative")
}
