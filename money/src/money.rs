//! Money values: integer minor units, the ISO 4217 table, and the AMS `Amount` wire form.
//!
//! There are no floats anywhere: an amount is a [`MinorUnits`] integer (cents, fils,
//! whole yen, ...) tagged with a [`Currency`] whose exponent comes from one exhaustive
//! table. Decimal text ("12.34") is parsed and printed digit by digit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors about money values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// Not an ISO 4217 currency code this crate can pay in.
    #[error("unknown currency code {0:?} (expected an ISO 4217 code such as \"HKD\")")]
    UnknownCurrency(String),
    /// A minor-unit amount below zero.
    #[error("amount is negative")]
    Negative,
    /// The value is not a plain integer of decimal digits.
    #[error("amount value {0:?} is not a whole number of minor units (digits only)")]
    NotDigits(String),
    /// The value does not fit in a signed 64-bit integer.
    #[error("amount is too large")]
    Overflow,
    /// A decimal amount has more fraction digits than the currency has.
    #[error("{currency} has {exponent} decimal places but {given:?} has {digits}")]
    TooManyDecimals {
        /// The currency.
        currency: Currency,
        /// Its exponent.
        exponent: u8,
        /// The text given.
        given: String,
        /// How many fraction digits it had.
        digits: usize,
    },
    /// Two amounts of different currencies were combined.
    #[error("currency mismatch: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// A non-negative number of minor units (the smallest unit of a currency).
///
/// The inner value is private; arithmetic is checked and never wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MinorUnits(i64);

impl MinorUnits {
    /// Zero minor units.
    pub const ZERO: MinorUnits = MinorUnits(0);

    /// Wraps a minor-unit count; negative counts are refused.
    pub fn new(value: i64) -> Result<Self, MoneyError> {
        if value < 0 {
            Err(MoneyError::Negative)
        } else {
            Ok(MinorUnits(value))
        }
    }

    /// The count of minor units.
    pub fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, or `Overflow`.
    pub fn checked_add(self, other: MinorUnits) -> Result<Self, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(MinorUnits)
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`, or `Negative` when the result would be below zero.
    pub fn checked_sub(self, other: MinorUnits) -> Result<Self, MoneyError> {
        match self.0.checked_sub(other.0) {
            Some(v) if v >= 0 => Ok(MinorUnits(v)),
            _ => Err(MoneyError::Negative),
        }
    }

    /// Parses the AMS wire form: decimal digits only, no sign, no point.
    pub fn parse_wire(s: &str) -> Result<Self, MoneyError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::NotDigits(truncate(s)));
        }
        s.parse::<i64>()
            .map(MinorUnits)
            .map_err(|_| MoneyError::Overflow)
    }
}

impl fmt::Display for MinorUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

macro_rules! currencies {
    ($($code:ident $num:literal $exp:literal $name:literal;)*) => {
        /// An ISO 4217 currency (list one, the codes with a defined minor unit).
        ///
        /// The precious-metal, bond-unit, SDR and testing codes (XAU, XAG, XPD, XPT, XBA–XBD,
        /// XDR, XSU, XUA, XTS, XXX) have no minor unit and are not payment currencies, so
        /// they are not in this table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(clippy::upper_case_acronyms)]
        #[non_exhaustive]
        pub enum Currency {
            $(#[doc = $name] $code,)*
        }

        impl Currency {
            /// Every currency in the table.
            pub const TABLE: &'static [Currency] = &[$(Currency::$code,)*];

            /// The alphabetic code, e.g. `"HKD"`.
            pub fn code(self) -> &'static str {
                match self { $(Currency::$code => stringify!($code),)* }
            }

            /// The ISO 4217 numeric code, e.g. `344` for HKD.
            pub fn numeric(self) -> u16 {
                match self { $(Currency::$code => $num,)* }
            }

            /// Number of decimal places of the minor unit (2 for HKD, 0 for KRW, 3 for KWD).
            pub fn exponent(self) -> u8 {
                match self { $(Currency::$code => $exp,)* }
            }

            /// The English name.
            pub fn name(self) -> &'static str {
                match self { $(Currency::$code => $name,)* }
            }

            /// Looks up an alphabetic code (exact, upper case).
            pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
                match code {
                    $(stringify!($code) => Ok(Currency::$code),)*
                    other => Err(MoneyError::UnknownCurrency(truncate(other))),
                }
            }
        }
    };
}

currencies! {
    AED 784 2 "UAE Dirham"; AFN 971 2 "Afghani"; ALL 8 2 "Lek"; AMD 51 2 "Armenian Dram";
    AOA 973 2 "Kwanza"; ARS 32 2 "Argentine Peso"; AUD 36 2 "Australian Dollar";
    AWG 533 2 "Aruban Florin"; AZN 944 2 "Azerbaijan Manat";
    BAM 977 2 "Convertible Mark"; BBD 52 2 "Barbados Dollar"; BDT 50 2 "Taka";
    BGN 975 2 "Bulgarian Lev"; BHD 48 3 "Bahraini Dinar"; BIF 108 0 "Burundi Franc";
    BMD 60 2 "Bermudian Dollar"; BND 96 2 "Brunei Dollar"; BOB 68 2 "Boliviano";
    BOV 984 2 "Mvdol"; BRL 986 2 "Brazilian Real"; BSD 44 2 "Bahamian Dollar";
    BTN 64 2 "Ngultrum"; BWP 72 2 "Pula"; BYN 933 2 "Belarusian Ruble"; BZD 84 2 "Belize Dollar";
    CAD 124 2 "Canadian Dollar"; CDF 976 2 "Congolese Franc"; CHE 947 2 "WIR Euro";
    CHF 756 2 "Swiss Franc"; CHW 948 2 "WIR Franc"; CLF 990 4 "Unidad de Fomento";
    CLP 152 0 "Chilean Peso"; CNY 156 2 "Yuan Renminbi"; COP 170 2 "Colombian Peso";
    COU 970 2 "Unidad de Valor Real"; CRC 188 2 "Costa Rican Colon"; CUP 192 2 "Cuban Peso";
    CVE 132 2 "Cabo Verde Escudo"; CZK 203 2 "Czech Koruna";
    DJF 262 0 "Djibouti Franc"; DKK 208 2 "Danish Krone"; DOP 214 2 "Dominican Peso";
    DZD 12 2 "Algerian Dinar";
    EGP 818 2 "Egyptian Pound"; ERN 232 2 "Nakfa"; ETB 230 2 "Ethiopian Birr"; EUR 978 2 "Euro";
    FJD 242 2 "Fiji Dollar"; FKP 238 2 "Falkland Islands Pound";
    GBP 826 2 "Pound Sterling"; GEL 981 2 "Lari"; GHS 936 2 "Ghana Cedi";
    GIP 292 2 "Gibraltar Pound"; GMD 270 2 "Dalasi"; GNF 324 0 "Guinean Franc";
    GTQ 320 2 "Quetzal"; GYD 328 2 "Guyana Dollar";
    HKD 344 2 "Hong Kong Dollar"; HNL 340 2 "Lempira"; HTG 332 2 "Gourde"; HUF 348 2 "Forint";
    IDR 360 2 "Rupiah"; ILS 376 2 "New Israeli Sheqel"; INR 356 2 "Indian Rupee";
    IQD 368 3 "Iraqi Dinar"; IRR 364 2 "Iranian Rial"; ISK 352 0 "Iceland Krona";
    JMD 388 2 "Jamaican Dollar"; JOD 400 3 "Jordanian Dinar"; JPY 392 0 "Yen";
    KES 404 2 "Kenyan Shilling"; KGS 417 2 "Som"; KHR 116 2 "Riel"; KMF 174 0 "Comorian Franc";
    KPW 408 2 "North Korean Won"; KRW 410 0 "Won"; KWD 414 3 "Kuwaiti Dinar";
    KYD 136 2 "Cayman Islands Dollar"; KZT 398 2 "Tenge";
    LAK 418 2 "Lao Kip"; LBP 422 2 "Lebanese Pound"; LKR 144 2 "Sri Lanka Rupee";
    LRD 430 2 "Liberian Dollar"; LSL 426 2 "Loti"; LYD 434 3 "Libyan Dinar";
    MAD 504 2 "Moroccan Dirham"; MDL 498 2 "Moldovan Leu"; MGA 969 2 "Malagasy Ariary";
    MKD 807 2 "Denar"; MMK 104 2 "Kyat"; MNT 496 2 "Tugrik"; MOP 446 2 "Pataca";
    MRU 929 2 "Ouguiya"; MUR 480 2 "Mauritius Rupee"; MVR 462 2 "Rufiyaa"; MWK 454 2 "Malawi Kwacha";
    MXN 484 2 "Mexican Peso"; MXV 979 2 "Mexican Unidad de Inversion (UDI)";
    MYR 458 2 "Malaysian Ringgit"; MZN 943 2 "Mozambique Metical";
    NAD 516 2 "Namibia Dollar"; NGN 566 2 "Naira"; NIO 558 2 "Cordoba Oro";
    NOK 578 2 "Norwegian Krone"; NPR 524 2 "Nepalese Rupee"; NZD 554 2 "New Zealand Dollar";
    OMR 512 3 "Rial Omani";
    PAB 590 2 "Balboa"; PEN 604 2 "Sol"; PGK 598 2 "Kina"; PHP 608 2 "Philippine Peso";
    PKR 586 2 "Pakistan Rupee"; PLN 985 2 "Zloty"; PYG 600 0 "Guarani";
    QAR 634 2 "Qatari Rial";
    RON 946 2 "Romanian Leu"; RSD 941 2 "Serbian Dinar"; RUB 643 2 "Russian Ruble";
    RWF 646 0 "Rwanda Franc";
    SAR 682 2 "Saudi Riyal"; SBD 90 2 "Solomon Islands Dollar"; SCR 690 2 "Seychelles Rupee";
    SDG 938 2 "Sudanese Pound"; SEK 752 2 "Swedish Krona"; SGD 702 2 "Singapore Dollar";
    SHP 654 2 "Saint Helena Pound"; SLE 925 2 "Leone"; SOS 706 2 "Somali Shilling";
    SRD 968 2 "Surinam Dollar"; SSP 728 2 "South Sudanese Pound"; STN 930 2 "Dobra";
    SVC 222 2 "El Salvador Colon"; SYP 760 2 "Syrian Pound"; SZL 748 2 "Lilangeni";
    THB 764 2 "Baht"; TJS 972 2 "Somoni"; TMT 934 2 "Turkmenistan New Manat";
    TND 788 3 "Tunisian Dinar"; TOP 776 2 "Pa'anga"; TRY 949 2 "Turkish Lira";
    TTD 780 2 "Trinidad and Tobago Dollar"; TWD 901 2 "New Taiwan Dollar";
    TZS 834 2 "Tanzanian Shilling";
    UAH 980 2 "Hryvnia"; UGX 800 0 "Uganda Shilling"; USD 840 2 "US Dollar";
    USN 997 2 "US Dollar (Next day)"; UYI 940 0 "Uruguay Peso en Unidades Indexadas (UI)";
    UYU 858 2 "Peso Uruguayo"; UYW 927 4 "Unidad Previsional"; UZS 860 2 "Uzbekistan Sum";
    VED 926 2 "Bolivar Soberano"; VES 928 2 "Bolivar Soberano"; VND 704 0 "Dong"; VUV 548 0 "Vatu";
    WST 882 2 "Tala";
    XAF 950 0 "CFA Franc BEAC"; XCD 951 2 "East Caribbean Dollar"; XCG 532 2 "Caribbean Guilder";
    XOF 952 0 "CFA Franc BCEAO"; XPF 953 0 "CFP Franc";
    YER 886 2 "Yemeni Rial";
    ZAR 710 2 "Rand"; ZMW 967 2 "Zambian Kwacha"; ZWG 924 2 "Zimbabwe Gold";
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Currency::from_code(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    minor: MinorUnits,
}

impl Money {
    /// Builds a value from minor units.
    pub fn new(currency: Currency, minor: MinorUnits) -> Self {
        Money { currency, minor }
    }

    /// Builds a value from a minor-unit count (negative counts are refused).
    pub fn from_minor(currency: Currency, minor: i64) -> Result<Self, MoneyError> {
        Ok(Money::new(currency, MinorUnits::new(minor)?))
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The minor units.
    pub fn minor(&self) -> MinorUnits {
        self.minor
    }

    /// Parses a decimal amount in major units, e.g. `"12.34"` HKD → 1234 minor units.
    ///
    /// At most `exponent` fraction digits are accepted; no sign, no exponent, no
    /// thousands separators.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let exp = currency.exponent();
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits_ok(int)
            || !digits_ok(frac)
            || (text.contains('.') && frac.is_empty())
        {
            return Err(MoneyError::NotDigits(truncate(text)));
        }
        if frac.len() > exp as usize {
            return Err(MoneyError::TooManyDecimals {
                currency,
                exponent: exp,
                given: truncate(text),
                digits: frac.len(),
            });
        }
        let mut minor: i64 = int.parse().map_err(|_| MoneyError::Overflow)?;
        for _ in 0..exp {
            minor = minor.checked_mul(10).ok_or(MoneyError::Overflow)?;
        }
        let mut frac_value: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            let place = 10_i64.pow(u32::from(exp) - 1 - i as u32);
            frac_value += i64::from(b - b'0') * place;
        }
        let minor = minor.checked_add(frac_value).ok_or(MoneyError::Overflow)?;
        Money::from_minor(currency, minor)
    }

    /// `self + other`, same currency only.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(Money::new(
            self.currency,
            self.minor.checked_add(other.minor)?,
        ))
    }

    /// `self - other`, same currency only, never below zero.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(Money::new(
            self.currency,
            self.minor.checked_sub(other.minor)?,
        ))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// The decimal text in major units, e.g. `"12.34"`.
    pub fn to_major_string(&self) -> String {
        let exp = self.currency.exponent() as usize;
        let digits = self.minor.get().to_string();
        if exp == 0 {
            return digits;
        }
        let padded = format!("{digits:0>width$}", width = exp + 1);
        let (int, frac) = padded.split_at(padded.len() - exp);
        format!("{int}.{frac}")
    }

    /// The AMS wire form.
    pub fn to_amount(&self) -> Amount {
        Amount {
            currency: self.currency.code().to_owned(),
            value: self.minor.get().to_string(),
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.to_major_string())
    }
}

/// The AMS `Amount` object: `{"currency": "HKD", "value": "1000"}`.
///
/// Kept as received (the value may arrive as a JSON string or number; it is stored as
/// text). [`Amount::to_money`] validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// Minor units as a decimal integer string.
    #[serde(deserialize_with = "string_or_integer")]
    pub value: String,
}

impl Amount {
    /// Validates the currency and the value.
    pub fn to_money(&self) -> Result<Money, MoneyError> {
        let currency = Currency::from_code(&self.currency)?;
        Ok(Money::new(currency, MinorUnits::parse_wire(&self.value)?))
    }
}

impl From<Money> for Amount {
    fn from(m: Money) -> Self {
        m.to_amount()
    }
}

/// Accepts a JSON string or an integer and keeps its text (`"30000"` or `30000` →
/// `"30000"`); floats are refused: money and counts are whole numbers. `Amount.value`
/// uses it, and `scanbind_ams::flex::string_or_number` is this function for the AMS
/// models' other fields.
pub fn string_or_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::{self, Visitor};
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V)
}

/// `minor` units of `from` in minor units of `to` at `price` (one unit of `from` in `to`,
/// a plain decimal such as Alipay's `quotePrice` `"7.82608695"`), rounded down; `None`
/// for a price that is not a plain positive decimal of at most 18 places, or a result
/// that does not fit. Exact: integer arithmetic on the decimal digits.
pub fn convert_at_price(minor: i64, from: Currency, to: Currency, price: &str) -> Option<i64> {
    let (whole, frac) = price.split_once('.').unwrap_or((price, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(frac) || frac.len() > 18 {
        return None;
    }
    if price.ends_with('.') {
        return None;
    }
    let mantissa: i128 = format!("{whole}{frac}").parse().ok()?;
    convert_at_scaled_price(minor, from, to, mantissa, u32::try_from(frac.len()).ok()?)
}

/// [`convert_at_price`] with the price given as `scaled` × 10^-`decimals` (e.g. a quote
/// kept as an integer: 7.82608695 is `782608695`, 8): rounded down; `None` for a price
/// that is not positive or a result that does not fit.
pub fn convert_at_scaled_price(
    minor: i64,
    from: Currency,
    to: Currency,
    scaled: i128,
    decimals: u32,
) -> Option<i64> {
    if scaled <= 0 {
        return None;
    }
    let scale = 10_i128.checked_pow(decimals)?;
    let ef = 10_i128.pow(u32::from(from.exponent()));
    let et = 10_i128.pow(u32::from(to.exponent()));
    let num = i128::from(minor).checked_mul(scaled)?.checked_mul(et)?;
    i64::try_from(num.div_euclid(scale.checked_mul(ef)?)).ok()
}

#[cfg(test)]
mod tests {

    #[test]
    fn conversion_at_a_quoted_price_is_exact_and_rounds_down() {
        // USD 10.00 at 7.82608695 HKD = HKD 78.26 (78.2608695 rounded down).
        assert_eq!(
            convert_at_price(1000, Currency::USD, Currency::HKD, "7.82608695"),
            Some(7826)
        );
        // Across exponents: JPY 1000 (no minor digits) at 0.05 CNY = CNY 50.00.
        assert_eq!(
            convert_at_price(1000, Currency::JPY, Currency::CNY, "0.05"),
            Some(5000)
        );
        assert_eq!(
            convert_at_price(1, Currency::USD, Currency::HKD, "7"),
            Some(7)
        );
        for bad in [
            "", ".5", "5.", "-1", "1e3", "0", "0.000", "1.2.3", " 1", "1,5",
        ] {
            assert_eq!(
                convert_at_price(100, Currency::USD, Currency::HKD, bad),
                None,
                "{bad:?}"
            );
        }
        assert_eq!(
            convert_at_price(i64::MAX, Currency::USD, Currency::IDR, "99999999999"),
            None
        );
    }
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut codes = std::collections::HashSet::new();
        let mut nums = std::collections::HashSet::new();
        for c in Currency::TABLE {
            assert_eq!(c.code().len(), 3);
            assert!(codes.insert(c.code()), "duplicate code {c}");
            assert!(
                nums.insert(c.numeric()),
                "duplicate numeric {}",
                c.numeric()
            );
            assert_eq!(Currency::from_code(c.code()).unwrap(), *c);
            assert!(c.exponent() <= 4);
        }
        assert!(Currency::TABLE.len() >= 150);
    }

    #[test]
    fn known_exponents() {
        assert_eq!(Currency::HKD.exponent(), 2);
        assert_eq!(Currency::KRW.exponent(), 0);
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::KWD.exponent(), 3);
        assert_eq!(Currency::CLF.exponent(), 4);
        assert_eq!(Currency::IDR.exponent(), 2);
        assert_eq!(Currency::HKD.numeric(), 344);
    }

    #[test]
    fn parse_major_and_back() {
        let m = Money::parse_major("12.34", Currency::HKD).unwrap();
        assert_eq!(m.minor().get(), 1234);
        assert_eq!(m.to_major_string(), "12.34");
        assert_eq!(
            Money::parse_major("12.3", Currency::HKD)
                .unwrap()
                .minor()
                .get(),
            1230
        );
        assert_eq!(
            Money::parse_major("0.05", Currency::MYR)
                .unwrap()
                .to_major_string(),
            "0.05"
        );
        assert_eq!(
            Money::parse_major("50", Currency::KRW)
                .unwrap()
                .minor()
                .get(),
            50
        );
        assert_eq!(
            Money::parse_major("1.234", Currency::KWD)
                .unwrap()
                .minor()
                .get(),
            1234
        );
        assert_eq!(
            Money::from_minor(Currency::KWD, 5)
                .unwrap()
                .to_major_string(),
            "0.005"
        );
        assert_eq!(
            Money::from_minor(Currency::KRW, 5).unwrap().to_string(),
            "KRW 5"
        );
    }

    #[test]
    fn parse_major_rejects() {
        assert!(matches!(
            Money::parse_major("12.345", Currency::HKD),
            Err(MoneyError::TooManyDecimals { digits: 3, .. })
        ));
        assert!(matches!(
            Money::parse_major("1.5", Currency::KRW),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        for bad in [
            "", ".5", "1.", "-1", "+1", "1e3", "1,000", " 1", "0x10", "１",
        ] {
            assert!(
                matches!(
                    Money::parse_major(bad, Currency::HKD),
                    Err(MoneyError::NotDigits(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            Money::parse_major("92233720368547758.08", Currency::HKD),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::parse_major("99999999999999999999", Currency::KRW),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn wire_values() {
        assert_eq!(MinorUnits::parse_wire("1000").unwrap().get(), 1000);
        assert_eq!(
            MinorUnits::parse_wire("9223372036854775807").unwrap().get(),
            i64::MAX
        );
        assert_eq!(
            MinorUnits::parse_wire("9223372036854775808"),
            Err(MoneyError::Overflow)
        );
        for bad in ["", "-1", "1.0", "1 ", "abc"] {
            assert!(matches!(
                MinorUnits::parse_wire(bad),
                Err(MoneyError::NotDigits(_))
            ));
        }
        let a: Amount = serde_json::from_str(r#"{"currency":"PHP","value":30000}"#).unwrap();
        assert_eq!(a.value, "30000");
        let a: Amount = serde_json::from_str(r#"{"currency":"PHP","value":"30000"}"#).unwrap();
        assert_eq!(
            a.to_money().unwrap(),
            Money::from_minor(Currency::PHP, 30000).unwrap()
        );
        let bad: Amount = serde_json::from_str(r#"{"currency":"XYZ","value":"1"}"#).unwrap();
        assert!(matches!(
            bad.to_money(),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(serde_json::from_str::<Amount>(r#"{"currency":"PHP","value":1.5}"#).is_err());
    }

    #[test]
    fn checked_arithmetic() {
        let a = Money::from_minor(Currency::HKD, 100).unwrap();
        let b = Money::from_minor(Currency::HKD, 30).unwrap();
        assert_eq!(a.checked_sub(b).unwrap().minor().get(), 70);
        assert_eq!(b.checked_sub(a), Err(MoneyError::Negative));
        let c = Money::from_minor(Currency::USD, 1).unwrap();
        assert!(matches!(
            a.checked_add(c),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        let max = Money::from_minor(Currency::HKD, i64::MAX).unwrap();
        assert_eq!(max.checked_add(b), Err(MoneyError::Overflow));
        assert_eq!(MinorUnits::new(-1), Err(MoneyError::Negative));
    }
}
