//! Settlement and reconciliation reports: transaction details, settlement details and the
//! settlement summary, per UTC day and settlement currency, as CSV files.
//!
//! The layout (file names, columns, number format) is documented in `docs/sandbox.md`
//! ("Reports"); `scanbind-server reconcile` reads exactly this layout. In short:
//!
//! - a day is a UTC calendar day of the sandbox clock; a transaction belongs to the day of
//!   its transaction time (payment: paid; refund: refunded; cancel: cancelled);
//! - the settlement currency is the transaction currency (no FX: `quotePrice` is `1`);
//! - amounts are signed decimal strings in major units with the currency's exponent
//!   (`10.50`, `-5.00`, `300` for IDR/KRW); payments are positive, refunds and cancels
//!   negative;
//! - the fee is [`FEE_BPS`] basis points of the absolute amount, rounded half up in minor
//!   units, charged on payments and returned on refunds and cancels (negative).

use std::collections::BTreeMap;

use scanbind_ams::money::Currency;
use serde::Serialize;
use time::{Date, OffsetDateTime};

use crate::state::{PayState, State, from_ts};

/// The fee rate the sandbox charges, in basis points (1.80 %).
pub const FEE_BPS: i64 = 180;

/// Columns of `transactionDetails_<CUR>_<YYYYMMDD>.csv`.
pub const TRANSACTION_DETAILS_COLUMNS: &[&str] = &[
    "transactionId",
    "transactionRequestId",
    "originalTransactionId",
    "originalTransactionRequestId",
    "referenceOrderId",
    "transactionType",
    "transactionStatus",
    "transactionTime",
    "transactionCurrency",
    "transactionAmount",
    "paymentMethodType",
];

/// Columns of `settlementDetails_<CUR>_<YYYYMMDD>.csv`.
pub const SETTLEMENT_DETAILS_COLUMNS: &[&str] = &[
    "settlementBatchCode",
    "transactionId",
    "transactionRequestId",
    "originalTransactionRequestId",
    "transactionType",
    "transactionTime",
    "transactionCurrency",
    "transactionAmount",
    "settlementCurrency",
    "settlementAmount",
    "quoteCurrencyPair",
    "quotePrice",
    "feeCurrency",
    "feeAmount",
    "netSettlementAmount",
];

/// Columns of `settlementSummary_<CUR>_<YYYYMMDD>.csv`.
pub const SETTLEMENT_SUMMARY_COLUMNS: &[&str] = &[
    "settlementBatchCode",
    "settlementCurrency",
    "settlementDate",
    "summaryType",
    "transactionCount",
    "settlementAmount",
    "feeAmount",
    "netSettlementAmount",
];

/// One report file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportFile {
    /// File name, e.g. `settlementSummary_HKD_20261122.csv`.
    pub name: String,
    /// CSV text (RFC 4180, `\n` line ends, a header line first).
    pub content: String,
}

/// One money movement of the day.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    request_id: String,
    original_id: String,
    original_request_id: String,
    reference_order_id: String,
    kind: &'static str,
    time: String,
    currency: Currency,
    /// Signed minor units.
    amount: i64,
    method: String,
}

/// The fee for a signed amount: [`FEE_BPS`] of its absolute value, rounded half up, with
/// the amount's sign.
pub fn fee_for(amount: i64, bps: i64) -> i64 {
    let abs = i128::from(amount).abs();
    let fee = (abs * i128::from(bps) + 5_000) / 10_000;
    let fee = i64::try_from(fee).unwrap_or(i64::MAX);
    if amount < 0 { -fee } else { fee }
}

/// A signed amount in major units with the currency's exponent: `-10.50`.
pub fn major(currency: Currency, minor: i64) -> String {
    let exp = u32::from(currency.exponent());
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exp == 0 {
        return format!("{sign}{abs}");
    }
    let unit = 10_u64.pow(exp);
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = exp as usize
    )
}

fn report_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn compact(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn items(state: &State, client_id: Option<&str>, date: Date) -> Vec<Item> {
    let on_day = |t: i64| from_ts(t).date() == date;
    let mine = |c: &str| client_id.is_none_or(|want| want == c);
    let mut out = Vec::new();
    for p in state.payments.values().filter(|p| mine(&p.client_id)) {
        let Ok(currency) = Currency::from_code(&p.currency) else {
            continue;
        };
        let method = p.wallet.clone().unwrap_or_default();
        if let Some(paid) = p.paid
            && p.money_movements > 0
            && on_day(paid)
        {
            out.push(Item {
                id: p.payment_id.clone(),
                request_id: p.payment_request_id.clone(),
                original_id: String::new(),
                original_request_id: String::new(),
                reference_order_id: p.reference_order_id.clone(),
                kind: "PAYMENT",
                time: report_time(from_ts(paid)),
                currency,
                amount: p.amount,
                method: method.clone(),
            });
        }
        if p.status == PayState::Cancelled
            && p.reversals > 0
            && let Some(at) = p.cancelled
            && on_day(at)
        {
            let refunded: i64 = state
                .refunds
                .values()
                .filter(|r| r.payment_id == p.payment_id && r.status == "SUCCESS")
                .map(|r| r.amount)
                .sum();
            out.push(Item {
                id: p.payment_id.clone(),
                request_id: p.payment_request_id.clone(),
                original_id: p.payment_id.clone(),
                original_request_id: p.payment_request_id.clone(),
                reference_order_id: p.reference_order_id.clone(),
                kind: "CANCEL",
                time: report_time(from_ts(at)),
                currency,
                amount: -(p.amount - refunded),
                method: method.clone(),
            });
        }
    }
    for r in state.refunds.values().filter(|r| mine(&r.client_id)) {
        let done = r.finished.unwrap_or(r.created);
        if r.status != "SUCCESS" || r.money_movements == 0 || !on_day(done) {
            continue;
        }
        let Ok(currency) = Currency::from_code(&r.currency) else {
            continue;
        };
        let p = state.payments.get(&r.payment_id);
        out.push(Item {
            id: r.refund_id.clone(),
            request_id: r.refund_request_id.clone(),
            original_id: r.payment_id.clone(),
            original_request_id: p.map(|p| p.payment_request_id.clone()).unwrap_or_default(),
            reference_order_id: p.map(|p| p.reference_order_id.clone()).unwrap_or_default(),
            kind: "REFUND",
            time: report_time(from_ts(done)),
            currency,
            amount: -r.amount,
            method: p.and_then(|p| p.wallet.clone()).unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| (&a.time, &a.request_id, a.kind).cmp(&(&b.time, &b.request_id, b.kind)));
    out
}

fn csv_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(r);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// The three reports of `date` for every settlement currency with at least one
/// transaction that day, for `client_id` (or every merchant when `None`), sorted by name.
pub fn generate(
    state: &State,
    client_id: Option<&str>,
    date: Date,
    fee_bps: i64,
) -> Vec<ReportFile> {
    let mut by_currency: BTreeMap<&'static str, Vec<Item>> = BTreeMap::new();
    for it in items(state, client_id, date) {
        by_currency.entry(it.currency.code()).or_default().push(it);
    }
    let day = compact(date);
    let mut files = Vec::new();
    for (code, list) in by_currency {
        let Ok(cur) = Currency::from_code(code) else {
            continue;
        };
        let batch = format!("{day}{code}01");
        let m = |v: i64| major(cur, v);
        let details: Vec<Vec<String>> = list
            .iter()
            .map(|it| {
                vec![
                    it.id.clone(),
                    it.request_id.clone(),
                    it.original_id.clone(),
                    it.original_request_id.clone(),
                    it.reference_order_id.clone(),
                    it.kind.to_owned(),
                    "SUCCESS".to_owned(),
                    it.time.clone(),
                    code.to_owned(),
                    m(it.amount),
                    it.method.clone(),
                ]
            })
            .collect();
        let mut totals: BTreeMap<&'static str, (i64, i64, i64)> = BTreeMap::new();
        let settlement: Vec<Vec<String>> = list
            .iter()
            .map(|it| {
                let fee = fee_for(it.amount, fee_bps);
                for key in [it.kind, "TOTAL"] {
                    let t = totals.entry(key).or_default();
                    t.0 += 1;
                    t.1 += it.amount;
                    t.2 += fee;
                }
                vec![
                    batch.clone(),
                    it.id.clone(),
                    it.request_id.clone(),
                    it.original_request_id.clone(),
                    it.kind.to_owned(),
                    it.time.clone(),
                    code.to_owned(),
                    m(it.amount),
                    code.to_owned(),
                    m(it.amount),
                    format!("{code}/{code}"),
                    "1".to_owned(),
                    code.to_owned(),
                    m(fee),
                    m(it.amount - fee),
                ]
            })
            .collect();
        let settlement_date = date.to_string();
        let summary: Vec<Vec<String>> = ["PAYMENT", "REFUND", "CANCEL", "TOTAL"]
            .iter()
            .map(|kind| {
                let (n, amount, fee) = totals.get(kind).copied().unwrap_or_default();
                vec![
                    batch.clone(),
                    code.to_owned(),
                    settlement_date.clone(),
                    (*kind).to_owned(),
                    n.to_string(),
                    m(amount),
                    m(fee),
                    m(amount - fee),
                ]
            })
            .collect();
        files.push(ReportFile {
            name: format!("settlementDetails_{code}_{day}.csv"),
            content: csv_text(SETTLEMENT_DETAILS_COLUMNS, &settlement),
        });
        files.push(ReportFile {
            name: format!("settlementSummary_{code}_{day}.csv"),
            content: csv_text(SETTLEMENT_SUMMARY_COLUMNS, &summary),
        });
        files.push(ReportFile {
            name: format!("transactionDetails_{code}_{day}.csv"),
            content: csv_text(TRANSACTION_DETAILS_COLUMNS, &details),
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_units_follow_the_exponent() {
        assert_eq!(major(Currency::HKD, 1050), "10.50");
        assert_eq!(major(Currency::HKD, -5), "-0.05");
        assert_eq!(major(Currency::KRW, 300), "300");
        assert_eq!(major(Currency::HKD, 0), "0.00");
    }

    #[test]
    fn fees_round_half_up_and_keep_the_sign() {
        assert_eq!(fee_for(1050, 180), 19); // 18.9
        assert_eq!(fee_for(-1050, 180), -19);
        assert_eq!(fee_for(25, 180), 0); // 0.45
        assert_eq!(fee_for(28, 180), 1); // 0.504
        assert!(fee_for(i64::MAX, 180) > 0); // no overflow
    }
}
