//! `scanbind-server export transactions`: payments and refunds created in a time range,
//! as CSV or JSON, followed by a settlement summary per currency (paid, refunded, net),
//! for reconciliation against Alipay's settlement reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::reports::ExportRow;
use crate::store::status::Stored;
use crate::store::{self, Db, PaymentStatus, RefundStatus};
use crate::util::rfc3339;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values (RFC 4180), one transaction per line.
    Csv,
    /// One JSON document with `transactions` and `summary`.
    Json,
}

/// One exported line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// `payment` or `refund`.
    pub kind: &'static str,
    /// Server payment id.
    pub payment_id: String,
    /// AMS paymentRequestId or refundRequestId.
    pub request_id: String,
    /// Alipay's id (paymentId or refundId).
    pub ams_id: Option<String>,
    /// Device.
    pub device_id: String,
    /// App.
    pub app_id: String,
    /// App order id.
    pub app_order_id: String,
    /// Status.
    pub status: String,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Created, RFC 3339.
    pub created_at: String,
}

/// Settlement totals of one currency, minor units.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Successful payments (count).
    pub payments: i64,
    /// Sum of successful payments.
    pub paid: i64,
    /// Sum of successful refunds.
    pub refunded: i64,
    /// paid − refunded.
    pub net: i64,
}

fn parse_time(key: &str, text: &str) -> Result<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| Error::config(key, format!("{text:?} is not RFC 3339: {e}")))?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Exports `[from, to)`.
pub async fn transactions(config: &Config, from: &str, to: &str, format: Format) -> Result<String> {
    let from = parse_time("--from", from)?;
    let to = parse_time("--to", to)?;
    let db = Db::connect(&config.database_url()?, 2).await?;
    let (list, summary) = collect(&db, from, to).await?;
    db.pool().close().await;
    Ok(render(&list, &summary, format))
}

fn transaction<S: Stored>(kind: &'static str, r: ExportRow<S>) -> Transaction {
    Transaction {
        kind,
        payment_id: r.payment_id,
        request_id: r.request_id,
        ams_id: r.ams_id,
        device_id: r.device_id,
        app_id: r.app_id,
        app_order_id: r.app_order_id,
        status: r.status.as_str().to_owned(),
        currency: r.currency,
        amount: r.amount,
        created_at: rfc3339(r.created_at),
    }
}

/// Reads the records of `[from, to)` (Unix ms) and the per-currency summary.
pub async fn collect(
    db: &Db,
    from: i64,
    to: i64,
) -> Result<(Vec<Transaction>, BTreeMap<String, Summary>)> {
    let mut list = Vec::new();
    let mut succeeded = Vec::new();
    for r in store::reports::export_payments(db, from, to).await? {
        succeeded.push(r.status == PaymentStatus::Succeeded);
        list.push(transaction("payment", r));
    }
    for r in store::reports::export_refunds(db, from, to).await? {
        succeeded.push(r.status == RefundStatus::Succeeded);
        list.push(transaction("refund", r));
    }
    let mut summary: BTreeMap<String, Summary> = BTreeMap::new();
    for (t, ok) in list.iter().zip(succeeded) {
        if !ok {
            continue;
        }
        let s = summary.entry(t.currency.clone()).or_default();
        if t.kind == "payment" {
            s.payments += 1;
            s.paid = s.paid.saturating_add(t.amount);
        } else {
            s.refunded = s.refunded.saturating_add(t.amount);
        }
        s.net = s.paid.saturating_sub(s.refunded);
    }
    Ok((list, summary))
}

/// Renders the export.
pub fn render(list: &[Transaction], summary: &BTreeMap<String, Summary>, format: Format) -> String {
    match format {
        Format::Json => {
            let doc = serde_json::json!({"transactions": list, "summary": summary});
            format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
        }
        Format::Csv => {
            let mut out = String::from(
                "kind,payment_id,request_id,ams_id,device_id,app_id,app_order_id,status,currency,amount_minor,created_at\n",
            );
            for t in list {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    t.kind,
                    csv_field(&t.payment_id),
                    csv_field(&t.request_id),
                    csv_field(t.ams_id.as_deref().unwrap_or("")),
                    csv_field(&t.device_id),
                    csv_field(&t.app_id),
                    csv_field(&t.app_order_id),
                    t.status,
                    t.currency,
                    t.amount,
                    t.created_at
                );
            }
            out.push_str(
                "\n# settlement summary\ncurrency,payments,paid_minor,refunded_minor,net_minor\n",
            );
            for (c, s) in summary {
                let _ = writeln!(
                    out,
                    "{c},{},{},{},{}",
                    s.payments, s.paid, s.refunded, s.net
                );
            }
            out
        }
    }
}
