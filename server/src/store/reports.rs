//! Read-only queries for reports: the transaction export, the reconciliation against
//! Alipay's settlement reports, and the status counts of `/metrics`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Db;
use super::error::Result;
use super::status::{PaymentStatus, RefundStatus, Stored, decode};

/// One exported payment or refund (`status` is [`PaymentStatus`] or [`RefundStatus`]).
#[derive(Debug, Clone)]
pub struct ExportRow<S> {
    /// Server payment id.
    pub payment_id: String,
    /// AMS paymentRequestId or refundRequestId.
    pub request_id: String,
    /// Alipay's id.
    pub ams_id: Option<String>,
    /// Device.
    pub device_id: String,
    /// App.
    pub app_id: String,
    /// App order id.
    pub app_order_id: String,
    /// Status.
    pub status: S,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Unix ms.
    pub created_at: i64,
}

fn export_row<S: Stored>(r: &AnyRow, request: &str, ams: &str) -> Result<ExportRow<S>> {
    Ok(ExportRow {
        payment_id: r.try_get("payment_id")?,
        request_id: r.try_get(request)?,
        ams_id: r.try_get(ams)?,
        device_id: r.try_get("device_id")?,
        app_id: r.try_get("app_id")?,
        app_order_id: r.try_get("app_order_id")?,
        status: decode(r, "status")?,
        currency: r.try_get("currency")?,
        amount: r.try_get("amount")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Payments created in `[from, to)` (Unix ms), in order.
pub async fn export_payments(db: &Db, from: i64, to: i64) -> Result<Vec<ExportRow<PaymentStatus>>> {
    let rows = sqlx::query(
        "SELECT payment_id, payment_request_id, ams_payment_id, device_id, app_id, app_order_id, status, currency, amount, created_at \
         FROM payments WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, payment_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| export_row(r, "payment_request_id", "ams_payment_id"))
        .collect()
}

/// Refunds created in `[from, to)` (Unix ms) with their payments' device and order, in
/// order.
pub async fn export_refunds(db: &Db, from: i64, to: i64) -> Result<Vec<ExportRow<RefundStatus>>> {
    let rows = sqlx::query(
        "SELECT r.payment_id, r.refund_request_id, r.ams_refund_id, p.device_id, p.app_id, p.app_order_id, r.status, r.currency, r.amount, r.created_at \
         FROM refunds r JOIN payments p ON p.payment_id = r.payment_id WHERE r.created_at >= $1 AND r.created_at < $2 ORDER BY r.created_at, r.refund_request_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| export_row(r, "refund_request_id", "ams_refund_id"))
        .collect()
}

/// A payment as the reconciliation sees it.
#[derive(Debug, Clone)]
pub struct PaymentMovement {
    /// AMS paymentRequestId.
    pub payment_request_id: String,
    /// Alipay paymentId.
    pub ams_payment_id: Option<String>,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Refunded so far, minor units.
    pub refunded: i64,
    /// Its status now.
    pub status: PaymentStatus,
    /// The final status recorded by the `final` step that selected it (day queries).
    pub outcome: Option<PaymentStatus>,
}

/// A refund as the reconciliation sees it.
#[derive(Debug, Clone)]
pub struct RefundMovement {
    /// AMS refundRequestId.
    pub refund_request_id: String,
    /// Alipay refundId.
    pub ams_refund_id: Option<String>,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Its status.
    pub status: RefundStatus,
}

fn refund_movement(r: &AnyRow) -> Result<RefundMovement> {
    Ok(RefundMovement {
        refund_request_id: r.try_get("refund_request_id")?,
        ams_refund_id: r.try_get("ams_refund_id")?,
        currency: r.try_get("currency")?,
        amount: r.try_get("amount")?,
        status: decode(r, "status")?,
    })
}

/// Payments that became `succeeded` or `cancelled` in `[from, to)` (by their `final`
/// step), in the order of those steps.
pub async fn final_payments(db: &Db, from: i64, to: i64) -> Result<Vec<PaymentMovement>> {
    let rows = sqlx::query(
        "SELECT p.payment_request_id, p.ams_payment_id, p.currency, p.amount, p.refunded, p.status, s.outcome FROM steps s \
         JOIN payments p ON p.payment_id = s.subject_id \
         WHERE s.step = 'final' AND s.outcome IN ('succeeded', 'cancelled') AND s.at >= $1 AND s.at < $2 ORDER BY s.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PaymentMovement {
                payment_request_id: r.try_get("payment_request_id")?,
                ams_payment_id: r.try_get("ams_payment_id")?,
                currency: r.try_get("currency")?,
                amount: r.try_get("amount")?,
                refunded: r.try_get("refunded")?,
                status: decode(r, "status")?,
                outcome: Some(decode(r, "outcome")?),
            })
        })
        .collect()
}

/// How many times the payment with this `paymentRequestId` became `succeeded`.
pub async fn times_paid(db: &Db, prid: &str) -> Result<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM steps s JOIN payments p ON p.payment_id = s.subject_id \
         WHERE p.payment_request_id = $1 AND s.step = 'final' AND s.outcome = 'succeeded'",
    )
    .bind(prid)
    .fetch_one(db.pool())
    .await?
    .try_get("n")?)
}

/// Refunds that became `succeeded` in `[from, to)` (by their `final` step), in order.
pub async fn final_refunds(db: &Db, from: i64, to: i64) -> Result<Vec<RefundMovement>> {
    let rows = sqlx::query(
        "SELECT r.refund_request_id, r.ams_refund_id, r.currency, r.amount, r.status FROM steps s \
         JOIN refunds r ON r.refund_request_id = s.subject_id \
         WHERE s.step = 'final' AND s.outcome = 'succeeded' AND s.at >= $1 AND s.at < $2 ORDER BY s.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(refund_movement).collect()
}

/// A refund by `refundRequestId`, whatever its day.
pub async fn refund_movement_of(db: &Db, rrid: &str) -> Result<Option<RefundMovement>> {
    let row = sqlx::query(
        "SELECT refund_request_id, ams_refund_id, currency, amount, status FROM refunds WHERE refund_request_id = $1",
    )
    .bind(rrid)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(refund_movement).transpose()
}

/// A payment by `paymentRequestId`, whatever its day (`outcome` is `None`).
pub async fn payment_movement_of(db: &Db, prid: &str) -> Result<Option<PaymentMovement>> {
    let row = sqlx::query(
        "SELECT payment_request_id, ams_payment_id, currency, amount, refunded, status FROM payments WHERE payment_request_id = $1",
    )
    .bind(prid)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(PaymentMovement {
            payment_request_id: r.try_get("payment_request_id")?,
            ams_payment_id: r.try_get("ams_payment_id")?,
            currency: r.try_get("currency")?,
            amount: r.try_get("amount")?,
            refunded: r.try_get("refunded")?,
            status: decode(&r, "status")?,
            outcome: None,
        })
    })
    .transpose()
}

/// A table with a `status` column counted by `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// `payments`.
    Payments,
    /// `refunds`.
    Refunds,
}

/// Rows per status text (a metrics label), in order of the text; rows that do not read
/// are left out.
pub async fn count_by_status(db: &Db, counted: Counted) -> Result<Vec<(String, i64)>> {
    let table = match counted {
        Counted::Payments => "payments",
        Counted::Refunds => "refunds",
    };
    let sql = format!("SELECT status, COUNT(*) AS n FROM {table} GROUP BY status ORDER BY status");
    let rows = sqlx::query(&sql).fetch_all(db.pool()).await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.try_get("status").ok()?, r.try_get("n").ok()?)))
        .collect())
}
