//! `refunds`: one row per AMS refund. A pending refund becomes final once, by
//! [`settle`] (`UPDATE ... WHERE status = 'pending'`).

use sqlx::Row;

use super::Db;
use super::error::Result;
use super::rows::{REFUND_COLUMNS, RefundRow};
use super::status::RefundStatus;

/// A refund by `refundRequestId`.
pub async fn load(db: &Db, rrid: &str) -> Result<Option<RefundRow>> {
    let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_request_id = $1");
    super::one_by_key(db, &sql, rrid, RefundRow::from_row).await
}

/// The refunds of a payment, oldest first.
pub async fn of_payment(db: &Db, payment_id: &str) -> Result<Vec<RefundRow>> {
    let sql = format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, refund_request_id"
    );
    let rows = sqlx::query(&sql)
        .bind(payment_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(RefundRow::from_row).collect()
}

/// Minor units of a payment's refunds that are pending or succeeded.
pub async fn committed_amount(db: &Db, payment_id: &str) -> Result<i64> {
    Ok(sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS s FROM refunds WHERE payment_id = $1 AND status IN ('pending', 'succeeded')",
    )
    .bind(payment_id)
    .fetch_one(db.pool())
    .await?
    .try_get("s")?)
}

/// A new refund row (status `pending`).
#[derive(Debug)]
pub struct NewRefund<'a> {
    /// AMS refundRequestId.
    pub refund_request_id: &'a str,
    /// Server payment id.
    pub payment_id: &'a str,
    /// App refund id.
    pub refund_id: &'a str,
    /// ISO 4217.
    pub currency: &'a str,
    /// Minor units.
    pub amount: i64,
    /// Reason.
    pub reason: Option<&'a str>,
    /// First engine action, Unix ms.
    pub next_action_at: i64,
    /// Unix ms.
    pub now: i64,
}

/// Inserts a pending refund (nothing when the `refundRequestId` exists).
pub async fn insert(db: &Db, r: &NewRefund<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO refunds (refund_request_id, payment_id, refund_id, currency, amount, reason, status, next_action_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $8) ON CONFLICT DO NOTHING",
    )
    .bind(r.refund_request_id)
    .bind(r.payment_id)
    .bind(r.refund_id)
    .bind(r.currency)
    .bind(r.amount)
    .bind(r.reason)
    .bind(r.next_action_at)
    .bind(r.now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A pending refund is due for an inquiry at `next`.
pub async fn schedule_inquiry(db: &Db, rrid: &str, next: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE refunds SET next_action_at = $2, updated_at = $3 WHERE refund_request_id = $1 AND status = 'pending'")
        .bind(rrid)
        .bind(next)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The final state of a refund.
#[derive(Debug)]
pub struct RefundSettlement<'a> {
    /// The new status.
    pub status: RefundStatus,
    /// Result code.
    pub result_code: Option<&'a str>,
    /// Alipay refundId (kept when `None`).
    pub ams_refund_id: Option<&'a str>,
    /// The signed receipt.
    pub receipt: &'a str,
    /// Unix ms.
    pub now: i64,
}

/// Settles a pending refund in the caller's transaction: true when this call made the
/// change.
pub async fn settle(
    conn: &mut sqlx::AnyConnection,
    rrid: &str,
    s: &RefundSettlement<'_>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE refunds SET status = $2, result_code = $3, ams_refund_id = COALESCE($4, ams_refund_id), receipt = $5, lease_owner = NULL, \
         lease_until = 0, updated_at = $6 WHERE refund_request_id = $1 AND status = 'pending'",
    )
    .bind(rrid)
    .bind(s.status.as_str())
    .bind(s.result_code)
    .bind(s.ams_refund_id)
    .bind(s.receipt)
    .bind(s.now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many all-or-nothing reversal refunds (`checkout-reversal-*`) of a payment failed.
pub async fn failed_reversals(db: &Db, payment_id: &str) -> Result<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM refunds WHERE payment_id = $1 AND refund_id LIKE 'checkout-reversal-%' AND status = 'failed'",
    )
    .bind(payment_id)
    .fetch_one(db.pool())
    .await?
    .try_get("n")?)
}

/// How many refunds of a payment are pending.
pub async fn pending_count(db: &Db, payment_id: &str) -> Result<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM refunds WHERE payment_id = $1 AND status = 'pending'",
    )
    .bind(payment_id)
    .fetch_one(db.pool())
    .await?
    .try_get("n")?)
}

/// Gives the engine lease of a refund back.
pub async fn release_lease(db: &Db, rrid: &str) -> Result<()> {
    sqlx::query(
        "UPDATE refunds SET lease_owner = NULL, lease_until = 0 WHERE refund_request_id = $1",
    )
    .bind(rrid)
    .execute(db.pool())
    .await?;
    Ok(())
}
