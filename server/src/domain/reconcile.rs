//! `scanbind-server reconcile --date D --reports DIR`: reads Alipay's (or the sandbox's)
//! settlement reports of one UTC day and matches them against the server's own records.
//!
//! The report layout is documented in `docs/sandbox.md` ("Reports") and
//! `docs/operator.md`: per settlement currency `CUR` and day `YYYYMMDD`, the files
//! `transactionDetails_CUR_YYYYMMDD.csv`, `settlementDetails_CUR_YYYYMMDD.csv` and
//! `settlementSummary_CUR_YYYYMMDD.csv`. Amounts are signed decimals in major units.
//!
//! A malformed file (wrong columns, a bad number, a duplicate row, a missing file of a
//! currency's three) is an error ([`Error::Report`]) naming the file and line; nothing is
//! compared then. Otherwise every difference is listed ([`Difference`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use scanbind_ams::money::{Currency, Money};
use serde::Serialize;
use time::{Date, OffsetDateTime, Time};

use crate::error::{Error, Result};
use crate::store::reports::{PaymentMovement, RefundMovement};
use crate::store::{self, Db, PaymentStatus, RefundStatus};

/// Columns of the transaction details report.
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

/// Columns of the settlement details report.
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

/// Columns of the settlement summary report.
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

const KINDS: &[&str] = &["PAYMENT", "REFUND", "CANCEL"];

/// One difference between the reports and the records (or inside the reports).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// `missing_on_server`, `missing_in_report`, `amount_mismatch`, `status_mismatch`,
    /// `id_mismatch`, `settlement_mismatch`, `fee_mismatch`, `summary_mismatch`,
    /// `fee_total_mismatch`.
    pub kind: String,
    /// The record: `PAYMENT sbp_…`, `REFUND sbr_…`, `CANCEL sbp_…`, or `summary HKD TOTAL`.
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

/// One transaction line (transaction or settlement details).
#[derive(Debug, Clone)]
struct Line {
    file: String,
    line: u64,
    transaction_id: String,
    request_id: String,
    kind: String,
    status: String,
    currency: Currency,
    amount: i64,
    settlement_amount: i64,
    fee: i64,
    net: i64,
}

#[derive(Debug, Clone, Default)]
struct SummaryRow {
    count: i64,
    amount: i64,
    fee: i64,
    net: i64,
}

#[derive(Debug, Default)]
struct CurrencyReports {
    details: Vec<Line>,
    settlement: Vec<Line>,
    summary: BTreeMap<String, SummaryRow>,
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

struct Table {
    file: String,
    rows: Vec<(u64, csv::StringRecord)>,
    index: BTreeMap<&'static str, usize>,
}

impl Table {
    fn get<'a>(&self, rec: &'a csv::StringRecord, col: &str) -> &'a str {
        self.index
            .get(col)
            .and_then(|i| rec.get(*i))
            .unwrap_or_default()
    }

    fn money(
        &self,
        line: u64,
        rec: &csv::StringRecord,
        col: &str,
        currency: Currency,
    ) -> Result<i64> {
        let text = self.get(rec, col);
        parse_signed_major(text, currency).ok_or_else(|| {
            bad(
                &self.file,
                line,
                format!("column {col}: {text:?} is not an amount in {currency} (e.g. -10.50)"),
            )
        })
    }

    fn currency(
        &self,
        line: u64,
        rec: &csv::StringRecord,
        col: &str,
        want: Currency,
    ) -> Result<()> {
        let text = self.get(rec, col);
        if text != want.code() {
            return Err(bad(
                &self.file,
                line,
                format!("column {col}: {text:?}, but the file is for {want}"),
            ));
        }
        Ok(())
    }
}

fn read_table(path: &Path, name: &str, columns: &'static [&'static str]) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(path)
        .map_err(|e| bad(name, 0, format!("cannot open: {e}")))?;
    let header = rdr
        .headers()
        .map_err(|e| bad(name, 1, format!("cannot read the header: {e}")))?
        .clone();
    let got: Vec<&str> = header.iter().collect();
    if got != columns {
        return Err(bad(
            name,
            1,
            format!(
                "wrong columns: expected {}; got {}",
                columns.join(","),
                got.join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad(name, line, format!("malformed row: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        rows.push((line, rec));
    }
    let index = columns.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    Ok(Table {
        file: name.to_owned(),
        rows,
        index,
    })
}

fn check_kind(t: &Table, line: u64, kind: &str) -> Result<()> {
    if !KINDS.contains(&kind) {
        return Err(bad(
            &t.file,
            line,
            format!("column transactionType: {kind:?} is not PAYMENT, REFUND or CANCEL"),
        ));
    }
    Ok(())
}

fn read_details(path: &Path, name: &str, cur: Currency) -> Result<Vec<Line>> {
    let t = read_table(path, name, TRANSACTION_DETAILS_COLUMNS)?;
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for (line, rec) in &t.rows {
        let kind = t.get(rec, "transactionType").to_owned();
        check_kind(&t, *line, &kind)?;
        let request_id = t.get(rec, "transactionRequestId").to_owned();
        if request_id.is_empty() {
            return Err(bad(name, *line, "column transactionRequestId is empty"));
        }
        t.currency(*line, rec, "transactionCurrency", cur)?;
        let amount = t.money(*line, rec, "transactionAmount", cur)?;
        if let Some(first) = seen.insert((kind.clone(), request_id.clone()), *line) {
            return Err(bad(
                name,
                *line,
                format!("duplicate row: {kind} {request_id} is also on line {first}"),
            ));
        }
        out.push(Line {
            file: name.to_owned(),
            line: *line,
            transaction_id: t.get(rec, "transactionId").to_owned(),
            request_id,
            kind,
            status: t.get(rec, "transactionStatus").to_owned(),
            currency: cur,
            amount,
            settlement_amount: amount,
            fee: 0,
            net: amount,
        });
    }
    Ok(out)
}

fn read_settlement(path: &Path, name: &str, cur: Currency) -> Result<Vec<Line>> {
    let t = read_table(path, name, SETTLEMENT_DETAILS_COLUMNS)?;
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for (line, rec) in &t.rows {
        let kind = t.get(rec, "transactionType").to_owned();
        check_kind(&t, *line, &kind)?;
        let request_id = t.get(rec, "transactionRequestId").to_owned();
        if request_id.is_empty() {
            return Err(bad(name, *line, "column transactionRequestId is empty"));
        }
        t.currency(*line, rec, "settlementCurrency", cur)?;
        t.currency(*line, rec, "feeCurrency", cur)?;
        let tx_cur = Currency::from_code(t.get(rec, "transactionCurrency")).map_err(|_| {
            bad(
                name,
                *line,
                format!(
                    "column transactionCurrency: {:?} is not a currency",
                    t.get(rec, "transactionCurrency")
                ),
            )
        })?;
        let amount = t.money(*line, rec, "transactionAmount", tx_cur)?;
        let settlement_amount = t.money(*line, rec, "settlementAmount", cur)?;
        let fee = t.money(*line, rec, "feeAmount", cur)?;
        let net = t.money(*line, rec, "netSettlementAmount", cur)?;
        if let Some(first) = seen.insert((kind.clone(), request_id.clone()), *line) {
            return Err(bad(
                name,
                *line,
                format!("duplicate row: {kind} {request_id} is also on line {first}"),
            ));
        }
        out.push(Line {
            file: name.to_owned(),
            line: *line,
            transaction_id: t.get(rec, "transactionId").to_owned(),
            request_id,
            kind,
            status: "SUCCESS".into(),
            currency: tx_cur,
            amount,
            settlement_amount,
            fee,
            net,
        });
    }
    Ok(out)
}

fn read_summary(path: &Path, name: &str, cur: Currency) -> Result<BTreeMap<String, SummaryRow>> {
    let t = read_table(path, name, SETTLEMENT_SUMMARY_COLUMNS)?;
    let mut out: BTreeMap<String, SummaryRow> = BTreeMap::new();
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for (line, rec) in &t.rows {
        let kind = t.get(rec, "summaryType").to_owned();
        if !KINDS.contains(&kind.as_str()) && kind != "TOTAL" {
            return Err(bad(
                name,
                *line,
                format!("column summaryType: {kind:?} is not PAYMENT, REFUND, CANCEL or TOTAL"),
            ));
        }
        t.currency(*line, rec, "settlementCurrency", cur)?;
        let count_text = t.get(rec, "transactionCount");
        let count = count_text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                bad(
                    name,
                    *line,
                    format!("column transactionCount: {count_text:?} is not a count"),
                )
            })?;
        let row = SummaryRow {
            count,
            amount: t.money(*line, rec, "settlementAmount", cur)?,
            fee: t.money(*line, rec, "feeAmount", cur)?,
            net: t.money(*line, rec, "netSettlementAmount", cur)?,
        };
        if let Some(first) = lines.insert(kind.clone(), *line) {
            return Err(bad(
                name,
                *line,
                format!("duplicate row: summaryType {kind} is also on line {first}"),
            ));
        }
        out.insert(kind, row);
    }
    Ok(out)
}

/// Reads every report of `date` in `dir`, by settlement currency.
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
        let kind = match prefix {
            "transactionDetails" => "transactionDetails",
            "settlementDetails" => "settlementDetails",
            "settlementSummary" => "settlementSummary",
            _ => continue,
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
            .insert(kind, e.path());
    }
    let mut out = BTreeMap::new();
    for (cur, files) in found {
        let currency = Currency::from_code(&cur).map_err(|e| bad(&cur, 0, e.to_string()))?;
        let mut reports = CurrencyReports::default();
        for kind in [
            "transactionDetails",
            "settlementDetails",
            "settlementSummary",
        ] {
            let name = format!("{kind}_{cur}_{day}.csv");
            let Some(path) = files.get(kind) else {
                return Err(bad(
                    &name,
                    0,
                    format!(
                        "missing: every settlement currency has all three reports ({cur} lacks this one)"
                    ),
                ));
            };
            match kind {
                "transactionDetails" => reports.details = read_details(path, &name, currency)?,
                "settlementDetails" => reports.settlement = read_settlement(path, &name, currency)?,
                _ => reports.summary = read_summary(path, &name, currency)?,
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
                        l.file,
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
        let details: BTreeMap<(&str, &str), &Line> = rep
            .details
            .iter()
            .map(|l| ((l.kind.as_str(), l.request_id.as_str()), l))
            .collect();
        let mut settled: BTreeSet<(&str, &str)> = BTreeSet::new();
        let mut totals: BTreeMap<&str, SummaryRow> = BTreeMap::new();
        for l in &rep.settlement {
            let key = (l.kind.as_str(), l.request_id.as_str());
            settled.insert(key);
            let record = format!("{} {}", l.kind, l.request_id);
            match details.get(&key) {
                None => d(
                    "settlement_mismatch",
                    record.clone(),
                    format!(
                        "settled in {} line {} but not in the transaction details",
                        l.file, l.line
                    ),
                ),
                Some(t) if t.amount != l.amount => d(
                    "settlement_mismatch",
                    record.clone(),
                    format!(
                        "transaction details {}; settlement details {}",
                        major(t.amount),
                        major(l.amount)
                    ),
                ),
                Some(_) => {}
            }
            if l.currency == currency && l.settlement_amount != l.amount {
                d(
                    "settlement_mismatch",
                    record.clone(),
                    format!(
                        "settlement amount {} differs from the transaction amount {} in the same currency",
                        major(l.settlement_amount),
                        major(l.amount)
                    ),
                );
            }
            if l.net != l.settlement_amount - l.fee {
                d(
                    "fee_mismatch",
                    record.clone(),
                    format!(
                        "net {} is not settlement {} minus fee {}",
                        major(l.net),
                        major(l.settlement_amount),
                        major(l.fee)
                    ),
                );
            }
            if let Some(bps) = fee_bps {
                let want = fee_for(l.settlement_amount, bps);
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
            for k in [l.kind.as_str(), "TOTAL"] {
                let t = totals.entry(k).or_default();
                t.count += 1;
                t.amount += l.settlement_amount;
                t.fee += l.fee;
                t.net += l.net;
            }
        }
        for l in &rep.details {
            if !settled.contains(&(l.kind.as_str(), l.request_id.as_str())) {
                d(
                    "settlement_mismatch",
                    format!("{} {}", l.kind, l.request_id),
                    format!(
                        "in {} line {} but not in the settlement details",
                        l.file, l.line
                    ),
                );
            }
        }
        // 3. The summary against the settlement details.
        for k in ["PAYMENT", "REFUND", "CANCEL", "TOTAL"] {
            let want = totals.get(k).cloned().unwrap_or_default();
            let record = format!("summary {cur} {k}");
            let Some(got) = rep.summary.get(k) else {
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
                        "summary amount {}; settlement details {}",
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
            if got.net != want.net {
                d(
                    "summary_mismatch",
                    record.clone(),
                    format!(
                        "summary net {}; settlement details {}",
                        major(got.net),
                        major(want.net)
                    ),
                );
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

    #[test]
    fn fees_match_the_sandbox_rounding() {
        assert_eq!(fee_for(1050, 180), 19);
        assert_eq!(fee_for(-1050, 180), -19);
        assert_eq!(fee_for(25, 180), 0);
    }
}
