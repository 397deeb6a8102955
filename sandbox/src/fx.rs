//! The sandbox's exchange quotes: fixed, documented prices in CNY per unit of each
//! currency it quotes, so every conversion is reproducible. Alipay quotes live rates;
//! the sandbox's are plausible and never change (tests pin them).
//!
//! Used for `customsDeclarationAmount` (the CNY value of a payment, the most a payment
//! can be declared to Chinese customs for). Conversions are integer arithmetic on minor
//! units and round down: a derived amount never exceeds what was paid.

use scanbind_ams::money::Currency;

/// CNY per one unit (major) of each quoted currency, as (numerator, denominator, the
/// price as Alipay writes it).
const CNY_PER_UNIT: &[(Currency, i64, i64, &str)] = &[
    (Currency::CNY, 1, 1, "1"),
    (Currency::HKD, 92, 100, "0.92"),
    (Currency::IDR, 45, 100_000, "0.00045"),
    (Currency::PHP, 125, 1000, "0.125"),
    (Currency::KRW, 52, 10_000, "0.0052"),
    (Currency::MYR, 155, 100, "1.55"),
    (Currency::THB, 20, 100, "0.20"),
    (Currency::USD, 720, 100, "7.20"),
    (Currency::EUR, 780, 100, "7.80"),
    (Currency::GBP, 910, 100, "9.10"),
    (Currency::JPY, 48, 1000, "0.048"),
    (Currency::SGD, 535, 100, "5.35"),
];

/// The CNY price of one unit of `currency` as Alipay writes a `quotePrice`, if quoted.
pub fn cny_price(currency: Currency) -> Option<&'static str> {
    CNY_PER_UNIT
        .iter()
        .find(|(c, ..)| *c == currency)
        .map(|(.., text)| *text)
}

/// The CNY price of one unit of `currency` as (numerator, denominator), if quoted.
fn rate(currency: Currency) -> Option<(i128, i128)> {
    CNY_PER_UNIT
        .iter()
        .find(|(q, ..)| *q == currency)
        .map(|(_, n, d, _)| (i128::from(*n), i128::from(*d)))
}

/// `minor` units of `from` in minor units of `to`, rounded down; `None` when either
/// currency is not quoted or the result does not fit.
pub fn convert_down(minor: i64, from: Currency, to: Currency) -> Option<i64> {
    let (nf, df) = rate(from)?;
    let (nt, dt) = rate(to)?;
    let ef = 10_i128.pow(u32::from(from.exponent()));
    let et = 10_i128.pow(u32::from(to.exponent()));
    // minor_to = minor_from / 10^ef * (nf/df) / (nt/dt) * 10^et
    let num = i128::from(minor) * nf * dt * et;
    let den = df * nt * ef;
    i64::try_from(num.div_euclid(den)).ok()
}

/// Decimal places of a cross-currency [`Quote`] price.
pub const QUOTE_DECIMALS: u32 = 8;

/// A payment quote between the currency a payment is priced in and the currency the
/// wallet pays in (Alipay's `paymentQuote`): the price of one unit of `from` in `to`,
/// the cross rate through CNY truncated to [`QUOTE_DECIMALS`] places. Conversions use
/// exactly this price (the `actualPaymentAmount` is `paymentAmount` × `quotePrice`,
/// rounded down to the paying currency's minor unit), so anyone can check them from the
/// quote alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The priced currency.
    pub from: Currency,
    /// The paying currency.
    pub to: Currency,
    /// The price × 10^[`QUOTE_DECIMALS`].
    scaled: i128,
}

impl Quote {
    /// The quote from `from` to `to`; `None` when either is not quoted, or they are the
    /// same currency (no quote is needed).
    pub fn between(from: Currency, to: Currency) -> Option<Quote> {
        if from == to {
            return None;
        }
        let (nf, df) = rate(from)?;
        let (nt, dt) = rate(to)?;
        let scaled = (nf * dt * 10_i128.pow(QUOTE_DECIMALS)).div_euclid(df * nt);
        (scaled > 0).then_some(Quote { from, to, scaled })
    }

    /// The quote `from` → `to` at a price written by [`Quote::price`] (a payment's
    /// stored quote, honoured as it was given); `None` if the text is not such a price.
    pub fn at_price(from: Currency, to: Currency, price: &str) -> Option<Quote> {
        let (whole, frac) = price.split_once('.').unwrap_or((price, ""));
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || frac.len() > QUOTE_DECIMALS as usize
            || !all_digits(whole)
            || !all_digits(frac)
        {
            return None;
        }
        let padded = format!("{whole}{frac:0<width$}", width = QUOTE_DECIMALS as usize);
        let scaled: i128 = padded.parse().ok()?;
        (scaled > 0).then_some(Quote { from, to, scaled })
    }

    /// `quoteCurrencyPair`: `FROM/TO`.
    pub fn pair(&self) -> String {
        format!("{}/{}", self.from.code(), self.to.code())
    }

    /// `quotePrice` as decimal text, without trailing zeros (`7.36`, `0.00061141`).
    pub fn price(&self) -> String {
        let unit = 10_i128.pow(QUOTE_DECIMALS);
        let whole = self.scaled / unit;
        let frac = self.scaled % unit;
        if frac == 0 {
            return whole.to_string();
        }
        let digits = format!("{frac:0width$}", width = QUOTE_DECIMALS as usize);
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }

    /// `minor` units of the priced currency in minor units of the paying currency at
    /// this price, rounded down; `None` if it does not fit.
    pub fn convert(&self, minor: i64) -> Option<i64> {
        scanbind_ams::money::convert_at_scaled_price(
            minor,
            self.from,
            self.to,
            self.scaled,
            QUOTE_DECIMALS,
        )
    }
}

/// The CNY value of a payment of `minor` units of `currency` (its
/// `customsDeclarationAmount`), rounded down; `None` if the currency is not quoted.
pub fn customs_declaration_minor(currency: Currency, minor: i64) -> Option<i64> {
    convert_down(minor, currency, Currency::CNY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_down_across_exponents() {
        // 300.00 PHP at 0.125 = 37.50 CNY.
        assert_eq!(
            customs_declaration_minor(Currency::PHP, 30_000),
            Some(3_750)
        );
        // CNY is itself.
        assert_eq!(
            customs_declaration_minor(Currency::CNY, 12_345),
            Some(12_345)
        );
        // 1,000 KRW (exponent 0) at 0.0052 = 5.20 CNY.
        assert_eq!(customs_declaration_minor(Currency::KRW, 1_000), Some(520));
        // 10.01 HKD at 0.92 = 9.2092 CNY, down to 9.20.
        assert_eq!(customs_declaration_minor(Currency::HKD, 1_001), Some(920));
        // 1,000 IDR at 0.00045 = 0.45 CNY.
        assert_eq!(customs_declaration_minor(Currency::IDR, 100_000), Some(45));
        // Not quoted.
        assert_eq!(customs_declaration_minor(Currency::CHF, 100), None);
        assert_eq!(cny_price(Currency::MYR), Some("1.55"));
        // Cross rate through CNY: 10.00 USD in HKD at 7.20 / 0.92 = 78.26 HKD.
        assert_eq!(
            convert_down(1_000, Currency::USD, Currency::HKD),
            Some(7_826)
        );
    }

    #[test]
    fn quotes_are_truncated_cross_rates_and_conversions_use_the_written_price() {
        // 0.92 / 0.125 = 7.36 PHP per HKD exactly.
        let q = Quote::between(Currency::HKD, Currency::PHP).unwrap();
        assert_eq!((q.pair().as_str(), q.price().as_str()), ("HKD/PHP", "7.36"));
        // 10.00 HKD = 73.60 PHP.
        assert_eq!(q.convert(1_000), Some(7_360));
        // 7.20 / 0.92 = 7.82608695652... truncated to 8 places.
        let q = Quote::between(Currency::USD, Currency::HKD).unwrap();
        assert_eq!(q.price(), "7.82608695");
        // 10.00 USD × 7.82608695 = 78.2608695 HKD, down to 78.26.
        assert_eq!(q.convert(1_000), Some(7_826));
        // Exponent 2 to exponent 0: 1.00 HKD × (0.92 / 0.0052) = 176.92307692 KRW → 176.
        let q = Quote::between(Currency::HKD, Currency::KRW).unwrap();
        assert_eq!(
            (q.price().as_str(), q.convert(100)),
            ("176.92307692", Some(176))
        );
        // IDR has exponent 2 in AMS: 1,000.00 IDR in PHP at 0.00045 / 0.125 = 0.0036.
        let q = Quote::between(Currency::IDR, Currency::PHP).unwrap();
        assert_eq!(
            (q.price().as_str(), q.convert(100_000)),
            ("0.0036", Some(360))
        );
        // No quote for one currency, or for an unquoted one.
        assert_eq!(Quote::between(Currency::HKD, Currency::HKD), None);
        assert_eq!(Quote::between(Currency::CHF, Currency::HKD), None);
        // A stored price reads back as the same quote.
        let q = Quote::between(Currency::USD, Currency::HKD).unwrap();
        assert_eq!(
            Quote::at_price(Currency::USD, Currency::HKD, &q.price()),
            Some(q)
        );
    }
}
