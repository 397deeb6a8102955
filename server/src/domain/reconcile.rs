//! `scanbind-server reconcile --date D --reports DIR`: reads Alipay's (or the sandbox's)
//! settlement reports of one UTC day and matches them against the server's own records.
//!
//! The reports are in Antom's published layout
//! (<https://docs.antom.com/ac/reconcile/field_summary>): a header line of parameter names,
//! one row per record, and a last line `<END>`. The layout is documented in
//! `docs/operator.md` ("Report layout") and `docs/sandbox.md` ("Reports"): per settlement
//! currency `CUR` and day `YYYYMMDD`, the files `transactionDetails_CUR_YYYYMMDD.csv`,
//! `settlementDetails_CUR_YYYYMMDD.csv` and `settlementSummary_CUR_YYYYMMDD.csv`. Columns
//! are found by their names (in any order; columns the reconciler does not use are
//! ignored). Amounts are signed decimals in major units; `settlementAmountValue` is the net
//! amount (the transaction amount in the settlement currency plus the fee, which is
//! negative when charged).
//!
//! [`parse_report`] reads one file from its bytes (the fuzz target
//! `fuzz/fuzz_targets/settlement_report.rs` calls it). A malformed file (a missing column,
//! a bad value, a duplicate row, a missing `<END>` line, a missing file of a currency's
//! three) is an error ([`Error::Report`]) naming the file and line; nothing is compared
//! then. Otherwise every difference is listed ([`Difference`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use scanbind_ams::money::{Currency, Money};
use serde::Serialize;
use time::{Date, OffsetDateTime, Time};

use crate::error::{Error, Result};
use crate::store::reports::{PaymentMovement, RefundMovement};
use crate::store::{self, Db, PaymentStatus, RefundStatus};

/// The published layout (a file whose last line is not [`END_LINE`] is truncated; the
/// reader finds columns by name, in any order, and ignores columns it does not use).
pub use scanbind_ams::reports::{
    END_LINE, SETTLEMENT_DETAILS_COLUMNS, SETTLEMENT_SUMMARY_COLUMNS, TRANSACTION_DETAILS_COLUMNS,
};

const KINDS: &[&str] = &["PAYMENT", "REFUND", "CANCEL"];

/// One difference between the reports and the records (or inside the reports).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// `missing_on_server`, `missing_in_report`, `amount_mismatch`, `status_mismatch`,
    /// `id_mismatch`, `settlement_mismatch`, `fee_mismatch`, `summary_mismatch`,
    /// `fee_total_mismatch`.
    pub kind: String,
    /// The record: `PAYMENT sbp_…`, `REFUND sbr_…`, `CANCEL sbp_…`, or
    /// `summary HKD TOTAL batch 2026…`.
    pub record: String,
    /// What differs, with both values.
    pub detail: String,
}

/// The outcome of a reconciliation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Settlement currencies with reports.
    pub currencies: Vec<String>,
    /// Transactions in the transaction details reports.
    pub report_transactions: usize,
    /// Money movements the server recorded that day.
    pub server_records: usize,
    /// Every difference; empty when everything matches.
    pub differences: Vec<Difference>,
}

/// The three reports of a settlement currency and day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// `transactionDetails_…`: every transaction of the day.
    TransactionDetails,
    /// `settlementDetails_…`: every transaction settled in the batch, with its fee.
    SettlementDetails,
    /// `settlementSummary_…`: per batch and `summaryType`, the count and totals.
    SettlementSummary,
}

impl ReportKind {
    /// All three, in the order they are read.
    pub const ALL: [ReportKind; 3] = [
        ReportKind::TransactionDetails,
        ReportKind::SettlementDetails,
        ReportKind::SettlementSummary,
    ];

    /// The file name prefix: `transactionDetails`, `settlementDetails`, `settlementSummary`.
    pub fn prefix(self) -> &'static str {
        match self {
            ReportKind::TransactionDetails => "transactionDetails",
            ReportKind::SettlementDetails => "settlementDetails",
            ReportKind::SettlementSummary => "settlementSummary",
        }
    }

    /// The columns the sandbox writes.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            ReportKind::TransactionDetails => TRANSACTION_DETAILS_COLUMNS,
            ReportKind::SettlementDetails => SETTLEMENT_DETAILS_COLUMNS,
            ReportKind::SettlementSummary => SETTLEMENT_SUMMARY_COLUMNS,
        }
    }
}

/// One row of a transaction details or settlement details report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    /// 1-based line in the file.
    pub line: u64,
    /// `settlementBatchId` (may be empty in the transaction details).
    pub settlement_batch_id: String,
    /// `customerId`.
    pub customer_id: String,
    /// `transactionType`: `PAYMENT`, `REFUND` or `CANCEL`.
    pub kind: String,
    /// `transactionId` (Alipay's id; may be empty).
    pub transaction_id: String,
    /// `transactionRequestId`: the server's payment or refund request id.
    pub request_id: String,
    /// `originalTransactionRequestId` (empty for a payment).
    pub original_request_id: String,
    /// `status` (transaction details; empty in the settlement details).
    pub status: String,
    /// `transactionCurrency`.
    pub currency: Currency,
    /// `transactionAmountValue`, signed minor units.
    pub amount: i64,
    /// `settlementCurrency`, when given.
    pub settlement_currency: Option<Currency>,
    /// `settlementAmountValue` (net of the fee), signed minor units, when given.
    pub settlement_amount: Option<i64>,
    /// The fee (`paymentMethodFeeAmountValue`, or `feeAmountValue` of the older layout),
    /// signed minor units of the settlement currency: negative when charged; 0 when empty.
    pub fee: i64,
}

/// One row of a settlement summary report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// 1-based line in the file.
    pub line: u64,
    /// `settlementBatchId`.
    pub settlement_batch_id: String,
    /// `customerId`.
    pub customer_id: String,
    /// `summaryType`: `PAYMENT`, `REFUND`, `CANCEL` or `TOTAL`.
    pub summary_type: String,
    /// `count`.
    pub count: u64,
    /// `settlementCurrency`.
    pub currency: Currency,
    /// `settlementAmountValue` (net), signed minor units.
    pub amount: i64,
    /// The fee total, signed minor units (0 when empty).
    pub fee: i64,
}

/// A parsed report file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedReport {
    /// Transaction details or settlement details rows.
    Transactions(Vec<TransactionRow>),
    /// Settlement summary rows.
    Summary(Vec<SummaryRow>),
}

#[derive(Debug, Clone, Default)]
struct Totals {
    count: u64,
    amount: i64,
    fee: i64,
}

#[derive(Debug, Default)]
struct CurrencyReports {
    details_file: String,
    details: Vec<TransactionRow>,
    settlement_file: String,
    settlement: Vec<TransactionRow>,
    summary_file: String,
    summary: Vec<SummaryRow>,
}

fn bad(file: &str, line: u64, reason: impl Into<String>) -> Error {
    Error::Report {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

/// Parses a signed decimal amount in major units (`-10.50`) into minor units.
pub fn parse_signed_major(text: &str, currency: Currency) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let m = Money::parse_major(digits, currency).ok()?.minor().get();
    Some(if neg { -m } else { m })
}

fn compact(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &f)
        .map_err(|_| Error::config("--date", format!("expected YYYY-MM-DD, got {text:?}")))
}

/// Column names with the older layout's names they replace.
const PSP: &[&str] = &["PSP", "acquirer"];
const FEE: &[&str] = &["paymentMethodFeeAmountValue", "feeAmountValue"];
const FEE_CURRENCY: &[&str] = &["paymentMethodFeeCurrency", "feeCurrency"];
const INITIATED: &[&str] = &["settlementInitiatedDate", "settlementTime"];
const TIMES: &[&str] = &[
    "transactionCreationTime",
    "transactionUpdateTime",
    "transactionCompletionTime",
];

/// A report's header: column name to position.
struct Header<'f> {
    file: &'f str,
    index: HashMap<String, usize>,
}

impl<'f> Header<'f> {
    fn new(file: &'f str, rec: &csv::StringRecord) -> Result<Self> {
        let mut index = HashMap::new();
        for (i, name) in rec.iter().enumerate() {
            if name.is_empty() {
                return Err(bad(file, 1, format!("column {} has no name", i + 1)));
            }
            if index.insert(name.to_owned(), i).is_some() {
                return Err(bad(file, 1, format!("column {name} appears twice")));
            }
        }
        Ok(Header { file, index })
    }

    fn find(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.index.get(*n).copied())
    }

    /// A column every row must have.
    fn need(&self, names: &[&str]) -> Result<usize> {
        self.find(names).ok_or_else(|| {
            bad(
                self.file,
                1,
                format!(
                    "missing column {}",
                    names.first().copied().unwrap_or_default()
                ),
            )
        })
    }
}

/// One row with its line, read through the header.
struct Row<'a> {
    file: &'a str,
    line: u64,
    rec: &'a csv::StringRecord,
}

impl Row<'_> {
    fn at(&self, col: Option<usize>) -> &str {
        col.and_then(|i| self.rec.get(i)).unwrap_or_default()
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        bad(self.file, self.line, reason)
    }

    /// A mandatory identifier: not empty, at most 64 characters.
    fn id(&self, col: Option<usize>, name: &str, required: bool) -> Result<String> {
        let v = self.at(col);
        if required && v.is_empty() {
            return Err(self.err(format!("column {name} is empty")));
        }
        if v.chars().count() > 64 {
            return Err(self.err(format!("column {name}: longer than 64 characters")));
        }
        Ok(v.to_owned())
    }

    fn currency(&self, col: Option<usize>, name: &str) -> Result<Option<Currency>> {
        let v = self.at(col);
        if v.is_empty() {
            return Ok(None);
        }
        Currency::from_code(v)
            .map(Some)
            .map_err(|_| self.err(format!("column {name}: {v:?} is not a currency")))
    }

    fn amount(&self, col: Option<usize>, name: &str, cur: Option<Currency>) -> Result<Option<i64>> {
        let v = self.at(col);
        if v.is_empty() {
            return Ok(None);
        }
        let Some(cur) = cur else {
            return Err(self.err(format!("column {name}: an amount without its currency")));
        };
        parse_signed_major(v, cur).map(Some).ok_or_else(|| {
            self.err(format!(
                "column {name}: {v:?} is not an amount in {cur} (e.g. -10.50)"
            ))
        })
    }

    fn time(&self, col: Option<usize>, name: &str) -> Result<()> {
        let v = self.at(col);
        if v.is_empty()
            || OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).is_ok()
        {
            return Ok(());
        }
        Err(self.err(format!(
            "column {name}: {v:?} is not a time (YYYY-MM-DDTHH:MM:SS+hh:mm)"
        )))
    }
}

/// A positive decimal rate: digits with at most one `.`, not all zeros (`1`, `0.1283`).
fn is_positive_rate(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|b| *b == b'.').count() <= 1
        && text.bytes().any(|b| b.is_ascii_digit() && b != b'0')
}

/// Splits a report into its CSV part (header and rows) after checking the last line is
/// `<END>`.
fn strip_end<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        bad(
            file,
            0,
            format!("not UTF-8 text (at byte {})", e.valid_up_to()),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let body = text.strip_suffix('\n').unwrap_or(text);
    let body = body.strip_suffix('\r').unwrap_or(body);
    let (head, last) = match body.rfind('\n') {
        Some(i) => (&body[..=i], &body[i + 1..]),
        None => ("", body),
    };
    let last_line = u64::try_from(head.matches('\n').count())
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    if last.trim_end_matches('\r') != END_LINE {
        return Err(bad(
            file,
            last_line,
            format!("truncated: the last line is not {END_LINE}"),
        ));
    }
    if head.trim().is_empty() {
        return Err(bad(file, 1, "no header line before <END>"));
    }
    if let Some(i) = head
        .lines()
        .position(|l| l.trim_end_matches('\r') == END_LINE)
    {
        let line = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        return Err(bad(file, line, format!("{END_LINE} before the last line")));
    }
    Ok(head)
}

/// Reads one report from its bytes: checks the `<END>` line, finds the columns by name
/// and validates every value the reconciler uses. `file` names the file in errors.
pub fn parse_report(kind: ReportKind, file: &str, bytes: &[u8]) -> Result<ParsedReport> {
    // Line numbers are counted on `\n`; CRLF files count the same.
    let csv_text = strip_end(file, bytes)?.replace("\r\n", "\n");
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(csv_text.as_bytes());
    let header = rdr
        .headers()
        .map_err(|e| bad(file, 1, format!("cannot read the header: {e}")))?
        .clone();
    let h = Header::new(file, &header)?;
    let mut records = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad(file, line, format!("malformed row: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        records.push((line, rec));
    }
    match kind {
        ReportKind::SettlementSummary => {
            parse_summary(file, &h, &records).map(ParsedReport::Summary)
        }
        _ => parse_transactions(kind, file, &h, &records).map(ParsedReport::Transactions),
    }
}

fn parse_transactions(
    kind: ReportKind,
    file: &str,
    h: &Header<'_>,
    records: &[(u64, csv::StringRecord)],
) -> Result<Vec<TransactionRow>> {
    let settlement = kind == ReportKind::SettlementDetails;
    let c_batch = if settlement {
        Some(h.need(&["settlementBatchId"])?)
    } else {
        h.find(&["settlementBatchId"])
    };
    let c_customer = h.need(&["customerId"])?;
    h.need(PSP)?;
    let c_type = h.need(&["transactionType"])?;
    let c_id = h.need(&["transactionId"])?;
    let c_req = h.need(&["transactionRequestId"])?;
    let c_orig = h.find(&["originalTransactionRequestId"]);
    let c_status = if settlement {
        h.find(&["status"])
    } else {
        Some(h.need(&["status"])?)
    };
    let c_cur = h.need(&["transactionCurrency"])?;
    let c_amount = h.need(&["transactionAmountValue"])?;
    let (c_scur, c_samount, c_fee) = if settlement {
        (
            Some(h.need(&["settlementCurrency"])?),
            Some(h.need(&["settlementAmountValue"])?),
            Some(h.need(FEE)?),
        )
    } else {
        (
            h.find(&["settlementCurrency"]),
            h.find(&["settlementAmountValue"]),
            h.find(FEE),
        )
    };
    let c_fee_cur = h.find(FEE_CURRENCY);
    let c_quote = h.find(&["quotePrice"]);
    let c_initiated = h.find(INITIATED);
    let c_times: Vec<(Option<usize>, &str)> = TIMES.iter().map(|t| (h.find(&[t]), *t)).collect();
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for (line, rec) in records {
        let r = Row {
            file,
            line: *line,
            rec,
        };
        let kind = r.at(Some(c_type)).to_owned();
        if !KINDS.contains(&kind.as_str()) {
            return Err(r.err(format!(
                "column transactionType: {kind:?} is not PAYMENT, REFUND or CANCEL"
            )));
        }
        let settlement_batch_id = r.id(c_batch, "settlementBatchId", settlement)?;
        let customer_id = r.id(Some(c_customer), "customerId", true)?;
        let transaction_id = r.id(Some(c_id), "transactionId", false)?;
        let request_id = r.id(Some(c_req), "transactionRequestId", true)?;
        let original_request_id = r.id(c_orig, "originalTransactionRequestId", false)?;
        let currency = r
            .currency(Some(c_cur), "transactionCurrency")?
            .ok_or_else(|| r.err("column transactionCurrency is empty"))?;
        let amount = r
            .amount(Some(c_amount), "transactionAmountValue", Some(currency))?
            .ok_or_else(|| r.err("column transactionAmountValue is empty"))?;
        let settlement_currency = r.currency(c_scur, "settlementCurrency")?;
        let settlement_amount =
            r.amount(c_samount, "settlementAmountValue", settlement_currency)?;
        if settlement && settlement_amount.is_none() {
            return Err(r.err("column settlementAmountValue is empty"));
        }
        let fee_currency = r.currency(c_fee_cur, "paymentMethodFeeCurrency")?;
        let fee = r
            .amount(
                c_fee,
                "paymentMethodFeeAmountValue",
                fee_currency.or(settlement_currency),
            )?
            .unwrap_or(0);
        if let (Some(f), Some(s)) = (fee_currency, settlement_currency)
            && f != s
        {
            return Err(r.err(format!(
                "column paymentMethodFeeCurrency: {f}, but the settlement currency is {s}"
            )));
        }
        let quote = r.at(c_quote);
        if !quote.is_empty() && !is_positive_rate(quote) {
            return Err(r.err(format!(
                "column quotePrice: {quote:?} is not a positive rate"
            )));
        }
        for (c, name) in &c_times {
            r.time(*c, name)?;
        }
        r.time(c_initiated, "settlementInitiatedDate")?;
        let status = r.at(c_status).to_owned();
        if let Some(first) = seen.insert((kind.clone(), request_id.clone()), *line) {
            return Err(r.err(format!(
                "duplicate row: {kind} {request_id} is also on line {first}"
            )));
        }
        out.push(TransactionRow {
            line: *line,
            settlement_batch_id,
            customer_id,
            kind,
            transaction_id,
            request_id,
            original_request_id,
            status,
            currency,
            amount,
            settlement_currency,
            settlement_amount,
            fee,
        });
    }
    Ok(out)
}

fn parse_summary(
    file: &str,
    h: &Header<'_>,
    records: &[(u64, csv::StringRecord)],
) -> Result<Vec<SummaryRow>> {
    let c_batch = h.need(&["settlementBatchId"])?;
    let c_customer = h.need(&["customerId"])?;
    h.need(PSP)?;
    let c_type = h.need(&["summaryType"])?;
    let c_count = h.need(&["count"])?;
    let c_amount = h.need(&["settlementAmountValue"])?;
    let c_cur = h.need(&["settlementCurrency"])?;
    let c_fee = h.need(FEE)?;
    let c_fee_cur = h.find(FEE_CURRENCY);
    let c_initiated = h.find(INITIATED);
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for (line, rec) in records {
        let r = Row {
            file,
            line: *line,
            rec,
        };
        let summary_type = r.at(Some(c_type)).to_owned();
        if !KINDS.contains(&summary_type.as_str()) && summary_type != "TOTAL" {
            return Err(r.err(format!(
                "column summaryType: {summary_type:?} is not PAYMENT, REFUND, CANCEL or TOTAL"
            )));
        }
        let settlement_batch_id = r.id(Some(c_batch), "settlementBatchId", true)?;
        let customer_id = r.id(Some(c_customer), "customerId", true)?;
        let count_text = r.at(Some(c_count));
        let count = count_text
            .parse::<u64>()
            .map_err(|_| r.err(format!("column count: {count_text:?} is not a count")))?;
        let currency = r
            .currency(Some(c_cur), "settlementCurrency")?
            .ok_or_else(|| r.err("column settlementCurrency is empty"))?;
        let amount = r
            .amount(Some(c_amount), "settlementAmountValue", Some(currency))?
            .ok_or_else(|| r.err("column settlementAmountValue is empty"))?;
        let fee_currency = r.currency(c_fee_cur, "paymentMethodFeeCurrency")?;
        if let Some(f) = fee_currency
            && f != currency
        {
            return Err(r.err(format!(
                "column paymentMethodFeeCurrency: {f}, but the settlement currency is {currency}"
            )));
        }
        let fee = r
            .amount(Some(c_fee), "paymentMethodFeeAmountValue", Some(currency))?
            .unwrap_or(0);
        r.time(c_initiated, "settlementInitiatedDate")?;
        if let Some(first) = seen.insert((settlement_batch_id.clone(), summary_type.clone()), *line)
        {
            return Err(r.err(format!(
                "duplicate row: batch {settlement_batch_id} summaryType {summary_type} is also on line {first}"
            )));
        }
        out.push(SummaryRow {
            line: *line,
            settlement_batch_id,
            customer_id,
            summary_type,
            count,
            currency,
            amount,
            fee,
        });
    }
    Ok(out)
}

/// Reads every report of `date` in `dir`, by settlement currency, and checks each row's
/// settlement currency is the file's.
fn read_reports(dir: &Path, date: Date) -> Result<BTreeMap<String, CurrencyReports>> {
    let day = compact(date);
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        what: "read the reports directory",
        path: dir.to_owned(),
        source,
    })?;
    let mut found: BTreeMap<String, BTreeMap<&'static str, std::path::PathBuf>> = BTreeMap::new();
    for e in entries {
        let e = e.map_err(|source| Error::Io {
            what: "read the reports directory",
            path: dir.to_owned(),
            source,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".csv") else {
            continue;
        };
        let parts: Vec<&str> = stem.split('_').collect();
        let [prefix, cur, d] = parts[..] else {
            continue;
        };
        let Some(kind) = ReportKind::ALL.iter().find(|k| k.prefix() == prefix) else {
            continue;
        };
        if d != day {
            continue;
        }
        if Currency::from_code(cur).is_err() {
            return Err(bad(
                &name,
                0,
                format!("{cur:?} in the file name is not a currency"),
            ));
        }
        found
            .entry(cur.to_owned())
            .or_default()
            .insert(kind.prefix(), e.path());
    }
    let mut out = BTreeMap::new();
    for (cur, files) in found {
        let currency = Currency::from_code(&cur).map_err(|e| bad(&cur, 0, e.to_string()))?;
        let mut reports = CurrencyReports::default();
        for kind in ReportKind::ALL {
            let name = format!("{}_{cur}_{day}.csv", kind.prefix());
            let Some(path) = files.get(kind.prefix()) else {
                return Err(bad(
                    &name,
                    0,
                    format!(
                        "missing: every settlement currency has all three reports ({cur} lacks this one)"
                    ),
                ));
            };
            let bytes =
                std::fs::read(path).map_err(|e| bad(&name, 0, format!("cannot read: {e}")))?;
            match parse_report(kind, &name, &bytes)? {
                ParsedReport::Transactions(rows) => {
                    for r in &rows {
                        if let Some(s) = r.settlement_currency
                            && s != currency
                        {
                            return Err(bad(
                                &name,
                                r.line,
                                format!(
                                    "column settlementCurrency: {s}, but the file is for {currency}"
                                ),
                            ));
                        }
                        if kind == ReportKind::TransactionDetails && r.currency != currency {
                            return Err(bad(
                                &name,
                                r.line,
                                format!(
                                    "column transactionCurrency: {}, but the file is for {currency}",
                                    r.currency
                                ),
                            ));
                        }
                    }
                    if kind == ReportKind::TransactionDetails {
                        reports.details_file = name;
                        reports.details = rows;
                    } else {
                        reports.settlement_file = name;
                        reports.settlement = rows;
                    }
                }
                ParsedReport::Summary(rows) => {
                    if let Some(r) = rows.iter().find(|r| r.currency != currency) {
                        return Err(bad(
                            &name,
                            r.line,
                            format!(
                                "column settlementCurrency: {}, but the file is for {currency}",
                                r.currency
                            ),
                        ));
                    }
                    reports.summary_file = name;
                    reports.summary = rows;
                }
            }
        }
        out.insert(cur, reports);
    }
    Ok(out)
}

/// One money movement as the server recorded it.
#[derive(Debug, Clone)]
struct Record {
    kind: &'static str,
    request_id: String,
    ams_id: Option<String>,
    currency: String,
    /// Signed minor units.
    amount: i64,
    /// The server's status of the payment or refund.
    status: RecordStatus,
}

/// The status of a [`Record`]: a payment's or a refund's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordStatus {
    Payment(PaymentStatus),
    Refund(RefundStatus),
}

impl std::fmt::Display for RecordStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordStatus::Payment(s) => s.as_str(),
            RecordStatus::Refund(s) => s.as_str(),
        })
    }
}

fn refund_record(r: RefundMovement) -> Record {
    Record {
        kind: "REFUND",
        request_id: r.refund_request_id,
        ams_id: r.ams_refund_id,
        currency: r.currency,
        amount: -r.amount,
        status: RecordStatus::Refund(r.status),
    }
}

fn day_bounds(date: Date) -> (i64, i64) {
    let start = OffsetDateTime::new_utc(date, Time::MIDNIGHT);
    let ms = |t: OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    (ms(start), ms(start) + 86_400_000)
}

/// The server's money movements of the day (by the time of their final step).
async fn server_records(db: &Db, date: Date) -> Result<Vec<Record>> {
    let (from, to) = day_bounds(date);
    let mut out = Vec::new();
    for p in store::reports::final_payments(db, from, to).await? {
        let cancelled = p.outcome == Some(PaymentStatus::Cancelled);
        if cancelled {
            // Only a cancel of a paid payment moves money (a reversal).
            let paid = store::reports::times_paid(db, &p.payment_request_id).await?;
            if paid == 0 {
                continue;
            }
        }
        out.push(payment_record(p, cancelled));
    }
    for r in store::reports::final_refunds(db, from, to).await? {
        out.push(refund_record(r));
    }
    Ok(out)
}

/// A payment as a `PAYMENT` record (its amount) or a `CANCEL` one (minus what was not
/// refunded before).
fn payment_record(p: PaymentMovement, cancel: bool) -> Record {
    Record {
        kind: if cancel { "CANCEL" } else { "PAYMENT" },
        request_id: p.payment_request_id,
        ams_id: p.ams_payment_id,
        currency: p.currency,
        amount: if cancel {
            -(p.amount - p.refunded)
        } else {
            p.amount
        },
        status: RecordStatus::Payment(p.status),
    }
}

/// Looks a report line's record up on the server, whatever its day.
async fn server_record_for(db: &Db, kind: &str, request_id: &str) -> Result<Option<Record>> {
    if kind == "REFUND" {
        return Ok(store::reports::refund_movement_of(db, request_id)
            .await?
            .map(refund_record));
    }
    Ok(store::reports::payment_movement_of(db, request_id)
        .await?
        .map(|p| payment_record(p, kind == "CANCEL")))
}

fn fee_for(amount: i64, bps: i64) -> i64 {
    let abs = i128::from(amount).abs();
    let fee = i64::try_from((abs * i128::from(bps) + 5_000) / 10_000).unwrap_or(i64::MAX);
    if amount < 0 { -fee } else { fee }
}

/// Reads the reports of `date` from `dir` and reconciles them against the records in
/// `db`. `fee_bps`, when given, is the contracted fee rate each settlement line's fee is
/// checked against.
pub async fn reconcile(db: &Db, date: Date, dir: &Path, fee_bps: Option<i64>) -> Result<Outcome> {
    let reports = read_reports(dir, date)?;
    let mut diffs = Vec::new();
    let mut d = |kind: &str, record: String, detail: String| {
        diffs.push(Difference {
            kind: kind.to_owned(),
            record,
            detail,
        });
    };
    let ours = server_records(db, date).await?;
    let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
    let mut report_transactions = 0;
    for (cur, rep) in &reports {
        let currency = Currency::from_code(cur).map_err(|e| bad(cur, 0, e.to_string()))?;
        let major = |v: i64| {
            Money::from_minor(currency, v.abs())
                .map(|m| {
                    format!(
                        "{}{} {cur}",
                        if v < 0 { "-" } else { "" },
                        m.to_major_string()
                    )
                })
                .unwrap_or_else(|_| format!("{v} minor units {cur}"))
        };
        // 1. Transaction details against the server.
        for l in &rep.details {
            report_transactions += 1;
            let record = format!("{} {}", l.kind, l.request_id);
            reported.insert((l.kind.clone(), l.request_id.clone()));
            let Some(s) = server_record_for(db, &l.kind, &l.request_id).await? else {
                d(
                    "missing_on_server",
                    record,
                    format!(
                        "in {} line {} ({}), not in the server's records",
                        rep.details_file,
                        l.line,
                        major(l.amount)
                    ),
                );
                continue;
            };
            let expected_status = match l.kind.as_str() {
                "PAYMENT" => matches!(
                    s.status,
                    RecordStatus::Payment(PaymentStatus::Succeeded | PaymentStatus::Cancelled)
                ),
                "CANCEL" => s.status == RecordStatus::Payment(PaymentStatus::Cancelled),
                _ => s.status == RecordStatus::Refund(RefundStatus::Succeeded),
            };
            if l.status != "SUCCESS" || !expected_status {
                d(
                    "status_mismatch",
                    record.clone(),
                    format!("report: {} {}; server: {}", l.kind, l.status, s.status),
                );
            }
            if s.currency != l.currency.code() || s.amount != l.amount {
                d(
                    "amount_mismatch",
                    record.clone(),
                    format!(
                        "report: {}; server: {} minor units {}",
                        major(l.amount),
                        s.amount,
                        s.currency
                    ),
                );
            }
            if let Some(ams) = &s.ams_id
                && !l.transaction_id.is_empty()
                && *ams != l.transaction_id
            {
                d(
                    "id_mismatch",
                    record.clone(),
                    format!("report transactionId {}; server {}", l.transaction_id, ams),
                );
            }
        }
        // 2. Settlement details against transaction details; fees.
        let details: BTreeMap<(&str, &str), &TransactionRow> = rep
            .details
            .iter()
            .map(|l| ((l.kind.as_str(), l.request_id.as_str()), l))
            .collect();
        let mut settled: BTreeSet<(&str, &str)> = BTreeSet::new();
        // Per batch, per summary type.
        let mut totals: BTreeMap<&str, BTreeMap<&str, Totals>> = BTreeMap::new();
        for l in &rep.settlement {
            let key = (l.kind.as_str(), l.request_id.as_str());
            settled.insert(key);
            let record = format!("{} {}", l.kind, l.request_id);
            // The parser requires both in the settlement details.
            let net = l.settlement_amount.unwrap_or_default();
            let gross = net - l.fee;
            match details.get(&key) {
                None => d(
                    "settlement_mismatch",
                    record.clone(),
                    format!(
                        "settled in {} line {} but not in the transaction details",
                        rep.settlement_file, l.line
                    ),
                ),
                Some(t) if t.amount != l.amount || t.currency != l.currency => d(
                    "settlement_mismatch",
                    record.clone(),
                    format!(
                        "transaction details {} {}; settlement details {} {}",
                        t.amount, t.currency, l.amount, l.currency
                    ),
                ),
                Some(_) => {}
            }
            if l.currency == currency && gross != l.amount {
                d(
                    "settlement_mismatch",
                    record.clone(),
                    format!(
                        "settlement amount {} minus fee {} is not the transaction amount {} in the same currency",
                        major(net),
                        major(l.fee),
                        major(l.amount)
                    ),
                );
            }
            if let Some(bps) = fee_bps {
                let want = -fee_for(gross, bps);
                if want != l.fee {
                    d(
                        "fee_mismatch",
                        record.clone(),
                        format!(
                            "fee {}; the contracted {bps} bps make {}",
                            major(l.fee),
                            major(want)
                        ),
                    );
                }
            }
            let batch = totals.entry(l.settlement_batch_id.as_str()).or_default();
            for k in [l.kind.as_str(), "TOTAL"] {
                let t = batch.entry(k).or_default();
                t.count += 1;
                t.amount += net;
                t.fee += l.fee;
            }
        }
        for l in &rep.details {
            if !settled.contains(&(l.kind.as_str(), l.request_id.as_str())) {
                d(
                    "settlement_mismatch",
                    format!("{} {}", l.kind, l.request_id),
                    format!(
                        "in {} line {} but not in the settlement details",
                        rep.details_file, l.line
                    ),
                );
            }
        }
        // 3. The summary against the settlement details, per batch.
        let summary: BTreeMap<(&str, &str), &SummaryRow> = rep
            .summary
            .iter()
            .map(|r| ((r.settlement_batch_id.as_str(), r.summary_type.as_str()), r))
            .collect();
        let batches: BTreeSet<&str> = totals
            .keys()
            .copied()
            .chain(summary.keys().map(|(b, _)| *b))
            .collect();
        for batch in batches {
            for k in ["PAYMENT", "REFUND", "CANCEL", "TOTAL"] {
                let want = totals
                    .get(batch)
                    .and_then(|t| t.get(k))
                    .cloned()
                    .unwrap_or_default();
                let record = format!("summary {cur} {k} batch {batch}");
                let Some(got) = summary.get(&(batch, k)) else {
                    if want.count > 0 || k == "TOTAL" {
                        d("summary_mismatch", record, "no summary row".into());
                    }
                    continue;
                };
                if got.count != want.count {
                    d(
                        "summary_mismatch",
                        record.clone(),
                        format!(
                            "summary count {}; settlement details {}",
                            got.count, want.count
                        ),
                    );
                }
                if got.amount != want.amount {
                    d(
                        "summary_mismatch",
                        record.clone(),
                        format!(
                            "summary settlement amount {}; settlement details {}",
                            major(got.amount),
                            major(want.amount)
                        ),
                    );
                }
                if got.fee != want.fee {
                    d(
                        "fee_total_mismatch",
                        record.clone(),
                        format!(
                            "summary fee {}; settlement details {}",
                            major(got.fee),
                            major(want.fee)
                        ),
                    );
                }
            }
        }
    }
    // 4. The server's movements of the day that no report lists.
    for r in &ours {
        if !reported.contains(&(r.kind.to_owned(), r.request_id.clone())) {
            d(
                "missing_in_report",
                format!("{} {}", r.kind, r.request_id),
                format!(
                    "the server recorded {} minor units {} (Alipay id {}) that day; no transaction details report lists it",
                    r.amount,
                    r.currency,
                    r.ams_id.as_deref().unwrap_or("none")
                ),
            );
        }
    }
    Ok(Outcome {
        date: date.to_string(),
        currencies: reports.keys().cloned().collect(),
        report_transactions,
        server_records: ours.len(),
        differences: diffs,
    })
}

/// The outcome as text for a terminal: one line per difference.
pub fn render_text(o: &Outcome) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "reconcile {}: currencies [{}], {} report transactions, {} server records",
        o.date,
        o.currencies.join(", "),
        o.report_transactions,
        o.server_records
    );
    for d in &o.differences {
        let _ = writeln!(s, "DIFF {:<20} {:<50} {}", d.kind, d.record, d.detail);
    }
    let _ = writeln!(s, "{} difference(s)", o.differences.len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_major_amounts() {
        assert_eq!(parse_signed_major("10.50", Currency::HKD), Some(1050));
        assert_eq!(parse_signed_major("-0.05", Currency::HKD), Some(-5));
        assert_eq!(parse_signed_major("300", Currency::KRW), Some(300));
        assert_eq!(parse_signed_major("1,5", Currency::HKD), None);
        assert_eq!(parse_signed_major("1.555", Currency::HKD), None);
        assert_eq!(parse_signed_major("--1", Currency::HKD), None);
        assert_eq!(parse_signed_major("", Currency::HKD), None);
    }

    const SUMMARY: &str = "settlementBatchId,customerId,PSP,summaryType,settlementInitiatedDate,count,settlementAmountValue,settlementCurrency,paymentMethodFeeAmountValue,paymentMethodFeeCurrency,taxFeeAmountValue,taxFeeCurrency\n\
        2026120700000000001,m1,Antom,TOTAL,2026-12-08T00:00:00+00:00,1,10.31,HKD,-0.19,HKD,,\n\
        2026120700000000001,m1,Antom,PAYMENT,2026-12-08T00:00:00+00:00,1,10.31,HKD,-0.19,HKD,,\n\
        <END>\n";

    fn summary(text: &str) -> Result<ParsedReport> {
        parse_report(
            ReportKind::SettlementSummary,
            "settlementSummary_HKD_20261207.csv",
            text.as_bytes(),
        )
    }

    fn reason(r: Result<ParsedReport>) -> String {
        r.expect_err("must be refused").to_string()
    }

    #[test]
    fn a_summary_parses_by_column_name() {
        let ParsedReport::Summary(rows) = summary(SUMMARY).unwrap() else {
            panic!("not a summary");
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].summary_type, "TOTAL");
        assert_eq!((rows[0].count, rows[0].amount, rows[0].fee), (1, 1031, -19));
        // Columns in another order, CRLF line ends, the older layout's names: the same rows.
        let mut lines: Vec<Vec<&str>> = SUMMARY
            .lines()
            .filter(|l| *l != END_LINE)
            .map(|l| l.split(',').collect())
            .collect();
        for l in &mut lines {
            l.swap(0, 6);
        }
        let mut text = lines
            .iter()
            .map(|l| l.join(","))
            .collect::<Vec<_>>()
            .join("\r\n")
            .replace("PSP", "acquirer")
            .replace("paymentMethodFeeAmountValue", "feeAmountValue");
        text.push_str("\r\n<END>\r\n");
        let ParsedReport::Summary(again) = summary(&text).unwrap() else {
            panic!("not a summary");
        };
        assert_eq!(again, rows);
    }

    #[test]
    fn a_file_without_its_end_line_is_truncated() {
        let cut = SUMMARY.strip_suffix("<END>\n").unwrap();
        let e = reason(summary(cut));
        assert_eq!(
            e,
            "report settlementSummary_HKD_20261207.csv line 3: truncated: the last line is not <END>"
        );
        // Cut in the middle of a row.
        let e = reason(summary(&SUMMARY[..SUMMARY.len() - 20]));
        assert!(e.contains("line 3: truncated"), "{e}");
        assert!(reason(summary("")).contains("truncated"));
        assert!(reason(summary("<END>\n")).contains("no header line"));
        // <END> then more rows: the last line is not <END>.
        let more = format!("{SUMMARY}2026120700000000001,m1,Antom,REFUND,,0,0.00,HKD,0.00,HKD,,\n");
        assert!(reason(summary(&more)).contains("line 5: truncated"));
        // <END> twice.
        let twice = format!("{SUMMARY}<END>\n");
        let e = reason(summary(&twice));
        assert!(e.contains("line 4: <END> before the last line"), "{e}");
    }

    #[test]
    fn missing_columns_and_bad_values_name_file_and_line() {
        let cases = [
            ("count", "tally", "line 1: missing column count"),
            ("PSP", "psp", "line 1: missing column PSP"),
            (
                "paymentMethodFeeAmountValue",
                "fee",
                "line 1: missing column paymentMethodFeeAmountValue",
            ),
            (
                "10.31,HKD,-0.19",
                "10.3.1,HKD,-0.19",
                "line 2: column settlementAmountValue",
            ),
            (
                "10.31,HKD,-0.19",
                "10.315,HKD,-0.19",
                "line 2: column settlementAmountValue",
            ),
            (
                "10.31,HKD,-0.19",
                "10.31,HKX,-0.19",
                "line 2: column settlementCurrency",
            ),
            ("+00:00,1,", "+00:00,-1,", "line 2: column count"),
            ("TOTAL", "SUBTOTAL", "line 2: column summaryType"),
            (
                "2026-12-08T00:00:00+00:00",
                "08/12/2026",
                "line 2: column settlementInitiatedDate",
            ),
            ("Antom,PAYMENT", "Antom,TOTAL", "line 3: duplicate row"),
            (
                "-0.19,HKD,,",
                "-0.19,CNY,,",
                "line 2: column paymentMethodFeeCurrency",
            ),
        ];
        for (from, to, want) in cases {
            let text = SUMMARY.replacen(from, to, 1);
            assert_ne!(text, SUMMARY, "{from}");
            let e = reason(summary(&text));
            assert!(
                e.starts_with("report settlementSummary_HKD_20261207.csv ") && e.contains(want),
                "{from} -> {to}: {e}"
            );
        }
        let e = reason(summary(&SUMMARY.replacen("\n2026", "\n,2026", 1)));
        assert!(e.contains("line 2: malformed row"), "{e}");
        let e = reason(summary(&SUMMARY.replacen("count", "PSP", 1)));
        assert!(e.contains("line 1: column PSP appears twice"), "{e}");
        let e = reason(parse_report(
            ReportKind::SettlementSummary,
            "s.csv",
            b"\xff\xfe,\n<END>\n",
        ));
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn details_need_their_columns() {
        let header = SETTLEMENT_DETAILS_COLUMNS.join(",");
        let row = |amount: &str| {
            SETTLEMENT_DETAILS_COLUMNS
                .iter()
                .map(|c| match *c {
                    "settlementBatchId" => "2026120700000000001",
                    "customerId" => "m1",
                    "PSP" => "Antom",
                    "transactionId" => "sbp_1",
                    "transactionRequestId" => "r1",
                    "transactionType" => "PAYMENT",
                    "transactionCurrency" | "settlementCurrency" | "paymentMethodFeeCurrency" => {
                        "HKD"
                    }
                    "transactionAmountValue" => amount,
                    "settlementAmountValue" => "10.31",
                    "paymentMethodFeeAmountValue" => "-0.19",
                    "quotePrice" => "1",
                    "transactionCompletionTime" => "2026-12-07T10:00:00+00:00",
                    _ => "",
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let file = |amount: &str| format!("{header}\n{}\n<END>\n", row(amount));
        let parse = |t: &str| {
            parse_report(
                ReportKind::SettlementDetails,
                "settlementDetails_HKD_20261207.csv",
                t.as_bytes(),
            )
        };
        let ParsedReport::Transactions(rows) = parse(&file("10.50")).unwrap() else {
            panic!("not details");
        };
        assert_eq!(
            (rows[0].amount, rows[0].settlement_amount, rows[0].fee),
            (1050, Some(1031), -19)
        );
        let e = reason(parse(&file("1O.50")));
        assert!(
            e.contains("settlementDetails_HKD_20261207.csv line 2: column transactionAmountValue"),
            "{e}"
        );
        let e = reason(parse(&file("10.50").replacen(
            "transactionRequestId",
            "requestId",
            1,
        )));
        assert!(
            e.contains("line 1: missing column transactionRequestId"),
            "{e}"
        );
        let e = reason(parse(&file("10.50").replacen(",PAYMENT,", ",CAPTURE,", 1)));
        assert!(e.contains("line 2: column transactionType"), "{e}");
        let e = reason(parse(&file("10.50").replacen(",1,", ",-1,", 1)));
        assert!(e.contains("line 2: column quotePrice"), "{e}");
        // The transaction details need a status column; the settlement details do not.
        let e = reason(parse_report(
            ReportKind::TransactionDetails,
            "t.csv",
            file("10.50").as_bytes(),
        ));
        assert!(e.contains("line 1: missing column status"), "{e}");
    }

    #[test]
    fn fees_match_the_sandbox_rounding() {
        assert_eq!(fee_for(1050, 180), 19);
        assert_eq!(fee_for(-1050, 180), -19);
        assert_eq!(fee_for(25, 180), 0);
    }
}
