//! `customerBelongsTo`: the wallet a user pays with (ams-api.md §5.1), and its Scan to
//! Bind profile (ams-api.md §4; the table itself is `scanbind_money::wallet`).
//!
//! Unknown wallet codes are kept verbatim in [`Wallet::Other`], so a wallet AMS adds later
//! round-trips unchanged.

use crate::model::common::wire_enum;

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

pub use scanbind_money::wallet::WalletProfile;

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

    /// The Scan to Bind profile of this wallet, or `None` if it is not a Scan to Bind wallet
    /// (the table is `scanbind_money::wallet`).
    pub fn scan_to_bind(&self) -> Option<WalletProfile> {
        if !self.is_known() {
            return None;
        }
        scanbind_money::wallet::scan_to_bind(self.as_str())
    }
}
