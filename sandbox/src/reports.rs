//! Settlement and reconciliation reports in Alipay's (Antom's) published layout: the
//! transaction details, settlement details and settlement summary reports, per UTC day
//! and settlement currency, as CSV files.
//!
//! The layout is Antom's (<https://docs.antom.com/ac/reconcile/field_summary>,
//! `transaction_details`, `settlement_details`, `settlement_summary` on the same site) and
//! is documented in `docs/sandbox.md` ("Reports"); `scanbind-server reconcile` reads it.
//! In short:
//!
//! - a file is a header line of Alipay's parameter names, one row per record, and a last
//!   line `<END>` (a file without it is truncated);
//! - a day is a UTC calendar day of the sandbox clock; a transaction belongs to the day of
//!   its completion (payment: paid; refund: refunded; cancel: cancelled);
//! - one settlement batch per merchant (`customerId`), settlement currency and day; its
//!   `settlementBatchId` is 19 digits, the day `YYYYMMDD` and 11 digits derived from the
//!   merchant and the currency;
//! - the settlement currency is the transaction currency (no FX yet: `quotePrice` is `1`);
//! - amounts are signed decimal strings in major units with the currency's exponent
//!   (`10.50`, `-5.00`, `300` for KRW); payments are positive, refunds and cancels
//!   negative;
//! - the fee (`paymentMethodFeeAmountValue`) is [`FEE_BPS`] basis points of the absolute
//!   amount, rounded half up in minor units, with the opposite sign of the amount (charged
//!   on payments: negative; returned on refunds and cancels: positive), and
//!   `settlementAmountValue` is the net amount: the transaction amount plus the fee.

use std::collections::BTreeMap;

use scanbind_ams::money::Currency;
use serde::Serialize;
use time::{Date, Duration, OffsetDateTime, Time};

pub use scanbind_ams::reports::{
    END_LINE, SETTLEMENT_DETAILS_COLUMNS, SETTLEMENT_SUMMARY_COLUMNS, TRANSACTION_DETAILS_COLUMNS,
};

use crate::state::{PayState, Product, State, from_ts};

/// The fee rate the sandbox charges, in basis points (1.80 %).
pub const FEE_BPS: i64 = 180;

/// The `PSP` the sandbox names (the acquirer that settles with the merchant).
pub const PSP: &str = "Antom";

/// One report file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportFile {
    /// File name, e.g. `settlementSummary_HKD_20261122.csv`.
    pub name: String,
    /// CSV text (RFC 4180, `\n` line ends): the header line, the rows, and `<END>`.
    pub content: String,
}

/// A summary row's sums: count, net settlement amount and fee (signed minor units).
type Totals = (u64, i64, i64);

/// One money movement of the day.
#[derive(Debug, Clone)]
struct Item {
    client_id: String,
    id: String,
    request_id: String,
    original_request_id: String,
    reference_order_id: String,
    reference_merchant_id: String,
    description: String,
    product: &'static str,
    kind: &'static str,
    created: String,
    completed: String,
    currency: Currency,
    /// Signed minor units.
    amount: i64,
    method: String,
}

/// The fee for a signed amount: `bps` of its absolute value, rounded half up, with the
/// amount's sign.
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

/// ISO 8601 with the offset, as the reports write times: `2026-12-07T10:00:00+00:00`.
fn report_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
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

/// The settlement batch of a merchant's transactions in `currency` on `date`: `YYYYMMDD`
/// and 11 digits of an FNV-1a hash of the merchant and the currency (19 digits, like
/// Alipay's).
pub fn settlement_batch_id(client_id: &str, currency: Currency, date: Date) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in client_id
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(currency.code().bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}{:011}", compact(date), h % 100_000_000_000)
}

fn product_code(p: Product) -> &'static str {
    match p {
        Product::AgreementPayment => "AGREEMENT_PAYMENT",
        Product::InStorePayment => "IN_STORE_PAYMENT",
    }
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
        let base = Item {
            client_id: p.client_id.clone(),
            id: p.payment_id.clone(),
            request_id: p.payment_request_id.clone(),
            original_request_id: String::new(),
            reference_order_id: p.reference_order_id.clone(),
            reference_merchant_id: p.reference_merchant_id.clone().unwrap_or_default(),
            description: p.description.clone(),
            product: product_code(p.product),
            kind: "PAYMENT",
            created: report_time(from_ts(p.created)),
            completed: String::new(),
            currency,
            amount: p.amount,
            method,
        };
        if let Some(paid) = p.paid
            && p.money_movements > 0
            && on_day(paid)
        {
            out.push(Item {
                completed: report_time(from_ts(paid)),
                ..base.clone()
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
                original_request_id: p.payment_request_id.clone(),
                kind: "CANCEL",
                created: report_time(from_ts(at)),
                completed: report_time(from_ts(at)),
                amount: -(p.amount - refunded),
                ..base
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
            client_id: r.client_id.clone(),
            id: r.refund_id.clone(),
            request_id: r.refund_request_id.clone(),
            original_request_id: p.map(|p| p.payment_request_id.clone()).unwrap_or_default(),
            reference_order_id: p.map(|p| p.reference_order_id.clone()).unwrap_or_default(),
            reference_merchant_id: p
                .and_then(|p| p.reference_merchant_id.clone())
                .unwrap_or_default(),
            description: p.map(|p| p.description.clone()).unwrap_or_default(),
            product: p.map_or("AGREEMENT_PAYMENT", |p| product_code(p.product)),
            kind: "REFUND",
            created: report_time(from_ts(r.created)),
            completed: report_time(from_ts(done)),
            currency,
            amount: -r.amount,
            method: p.and_then(|p| p.wallet.clone()).unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| {
        (&a.completed, &a.request_id, a.kind).cmp(&(&b.completed, &b.request_id, b.kind))
    });
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
    let mut text = String::from_utf8(bytes).unwrap_or_default();
    text.push_str(END_LINE);
    text.push('\n');
    text
}

/// One row of a details report: the value of each column of `columns`.
fn detail_row(columns: &[&str], it: &Item, batch: &str, initiated: &str, fee: i64) -> Vec<String> {
    let code = it.currency.code();
    let m = |v: i64| major(it.currency, v);
    columns
        .iter()
        .map(|c| match *c {
            "settlementBatchId" => batch.to_owned(),
            "customerId" => it.client_id.clone(),
            "PSP" => PSP.to_owned(),
            "referenceMerchantId" => it.reference_merchant_id.clone(),
            "transactionId" => it.id.clone(),
            "transactionRequestId" => it.request_id.clone(),
            "referenceTransactionId" => it.reference_order_id.clone(),
            "transactionType" => it.kind.to_owned(),
            "originalTransactionRequestId" => it.original_request_id.clone(),
            "orderDescription" => it.description.clone(),
            "paymentMethodType" | "wallet" => it.method.clone(),
            "status" => "SUCCESS".to_owned(),
            "transactionCreationTime" => it.created.clone(),
            "transactionUpdateTime" | "transactionCompletionTime" => it.completed.clone(),
            "settlementInitiatedDate" => initiated.to_owned(),
            "productCode" => it.product.to_owned(),
            "transactionAmountValue" => m(it.amount),
            "transactionCurrency" | "settlementCurrency" | "paymentMethodFeeCurrency" => {
                code.to_owned()
            }
            "settlementAmountValue" => m(it.amount + fee),
            "quoteCurrencyPair" => format!("{code}/{code}"),
            "quotePrice" => "1".to_owned(),
            "paymentMethodFeeAmountValue" => m(fee),
            // ARN, referenceStoreId, convertedTransactionAmountValue, convertedCurrency,
            // taxFeeAmountValue, taxFeeCurrency: nothing in the sandbox.
            _ => String::new(),
        })
        .collect()
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
    // The batch settles when the day closes.
    let initiated = report_time(OffsetDateTime::new_utc(date, Time::MIDNIGHT) + Duration::DAY);
    let mut files = Vec::new();
    for (code, list) in by_currency {
        let Ok(cur) = Currency::from_code(code) else {
            continue;
        };
        let m = |v: i64| major(cur, v);
        let mut details = Vec::new();
        let mut settlement = Vec::new();
        // Per batch: its merchant, and per summary type (count, net, fee).
        let mut totals: BTreeMap<String, (String, BTreeMap<&'static str, Totals>)> =
            BTreeMap::new();
        for it in &list {
            let batch = settlement_batch_id(&it.client_id, cur, date);
            // The fee has the opposite sign of the amount: charged on payments.
            let fee = -fee_for(it.amount, fee_bps);
            details.push(detail_row(
                TRANSACTION_DETAILS_COLUMNS,
                it,
                &batch,
                &initiated,
                fee,
            ));
            settlement.push(detail_row(
                SETTLEMENT_DETAILS_COLUMNS,
                it,
                &batch,
                &initiated,
                fee,
            ));
            let (_, per_kind) = totals
                .entry(batch)
                .or_insert_with(|| (it.client_id.clone(), BTreeMap::new()));
            for key in [it.kind, "TOTAL"] {
                let t = per_kind.entry(key).or_default();
                t.0 += 1;
                t.1 += it.amount + fee;
                t.2 += fee;
            }
        }
        let mut summary = Vec::new();
        for (batch, (customer, per_kind)) in &totals {
            for kind in ["TOTAL", "PAYMENT", "REFUND", "CANCEL"] {
                let Some((n, net, fee)) = per_kind.get(kind).copied() else {
                    continue;
                };
                summary.push(
                    SETTLEMENT_SUMMARY_COLUMNS
                        .iter()
                        .map(|c| match *c {
                            "settlementBatchId" => batch.clone(),
                            "customerId" => customer.clone(),
                            "PSP" => PSP.to_owned(),
                            "summaryType" => kind.to_owned(),
                            "settlementInitiatedDate" => initiated.clone(),
                            "count" => n.to_string(),
                            "settlementAmountValue" => m(net),
                            "settlementCurrency" | "paymentMethodFeeCurrency" => code.to_owned(),
                            "paymentMethodFeeAmountValue" => m(fee),
                            _ => String::new(),
                        })
                        .collect(),
                );
            }
        }
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

    /// The published layout, copied from Antom's pages (fetched through the stored copies
    /// of docs.antom.com/ac/reconcile/*; see docs/sandbox.md "Reports"). The settlement
    /// summary header is the page's parameter table; the two details reports start with
    /// the parameters their pages list first and continue with the remaining fields the
    /// field summary (field_summary.md) marks for them, in its order.
    const PUBLISHED_SETTLEMENT_SUMMARY: &str = "settlementBatchId,customerId,PSP,summaryType,settlementInitiatedDate,count,settlementAmountValue,settlementCurrency,paymentMethodFeeAmountValue,paymentMethodFeeCurrency,taxFeeAmountValue,taxFeeCurrency";
    const PUBLISHED_SETTLEMENT_DETAILS: &str = concat!(
        // settlement_details: the page's first parameters.
        "settlementBatchId,customerId,PSP,ARN,referenceMerchantId,referenceStoreId,transactionId,transactionRequestId,referenceTransactionId,",
        // field_summary: the other settlement-details fields, in its order.
        "transactionType,originalTransactionRequestId,paymentMethodType,wallet,transactionCreationTime,transactionUpdateTime,transactionCompletionTime,settlementInitiatedDate,productCode,transactionAmountValue,transactionCurrency,convertedTransactionAmountValue,convertedCurrency,settlementAmountValue,settlementCurrency,quoteCurrencyPair,quotePrice,",
        // settlement_summary: the fee parameters.
        "paymentMethodFeeAmountValue,paymentMethodFeeCurrency,taxFeeAmountValue,taxFeeCurrency"
    );
    const PUBLISHED_TRANSACTION_DETAILS: &str = concat!(
        // transaction_details: the page's first parameters.
        "customerId,PSP,ARN,referenceMerchantId,referenceStoreId,transactionId,transactionRequestId,",
        // field_summary: the other transaction-details fields, in its order.
        "settlementBatchId,transactionType,originalTransactionRequestId,referenceTransactionId,orderDescription,paymentMethodType,wallet,status,transactionCreationTime,transactionUpdateTime,transactionCompletionTime,productCode,transactionAmountValue,transactionCurrency,convertedTransactionAmountValue,convertedCurrency,settlementAmountValue,settlementCurrency,quoteCurrencyPair,quotePrice,",
        // settlement_summary: the fee parameters.
        "paymentMethodFeeAmountValue,paymentMethodFeeCurrency,taxFeeAmountValue,taxFeeCurrency"
    );

    #[test]
    fn headers_are_the_published_ones() {
        assert_eq!(
            SETTLEMENT_SUMMARY_COLUMNS.join(","),
            PUBLISHED_SETTLEMENT_SUMMARY
        );
        assert_eq!(
            SETTLEMENT_DETAILS_COLUMNS.join(","),
            PUBLISHED_SETTLEMENT_DETAILS
        );
        assert_eq!(
            TRANSACTION_DETAILS_COLUMNS.join(","),
            PUBLISHED_TRANSACTION_DETAILS
        );
    }

    #[test]
    fn a_file_is_header_rows_and_end() {
        let text = csv_text(&["a", "b"], &[vec!["1".into(), "x,y".into()]]);
        assert_eq!(text, "a,b\n1,\"x,y\"\n<END>\n");
        assert_eq!(csv_text(&["a"], &[]), "a\n<END>\n");
    }

    #[test]
    fn batch_ids_are_19_digits_per_merchant_currency_and_day() {
        let d = parse_date("2026-12-07").unwrap();
        let a = settlement_batch_id("m1", Currency::HKD, d);
        assert_eq!(a.len(), 19);
        assert!(a.starts_with("20261207") && a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(a, settlement_batch_id("m1", Currency::HKD, d));
        assert_ne!(a, settlement_batch_id("m2", Currency::HKD, d));
        assert_ne!(a, settlement_batch_id("m1", Currency::CNY, d));
        assert_ne!(
            a,
            settlement_batch_id("m1", Currency::HKD, parse_date("2026-12-08").unwrap())
        );
    }

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
