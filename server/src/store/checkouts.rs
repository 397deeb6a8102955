//! `checkouts` and `checkout_parts`: combined checkouts, one `payments` row per part.
//! Leases, releases and wake-ups are schedules, not money: they go to the relaxed pool
//! (D24) under the writer turn.

use std::collections::HashMap;

use sqlx::Row;

use super::Db;
use super::error::{Result, StoreError};
use super::rows::{CHECKOUT_COLUMNS, CheckoutRow, PAYMENT_COLUMNS, PartRow, PaymentRow};
use super::status::{CheckoutState, Reversal};

/// A checkout by id.
pub async fn load(db: &Db, checkout_id: &str) -> Result<Option<CheckoutRow>> {
    let sql = format!("SELECT {CHECKOUT_COLUMNS} FROM checkouts WHERE checkout_id = $1");
    super::one_by_key(db, &sql, checkout_id, CheckoutRow::from_row).await
}

/// The checkout of (device, app, app order id).
pub async fn by_order(
    db: &Db,
    device_id: &str,
    app_id: &str,
    app_order_id: &str,
) -> Result<Option<CheckoutRow>> {
    let sql = format!(
        "SELECT {CHECKOUT_COLUMNS} FROM checkouts WHERE device_id = $1 AND app_id = $2 AND app_order_id = $3"
    );
    let row = sqlx::query(&sql)
        .bind(device_id)
        .bind(app_id)
        .bind(app_order_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(CheckoutRow::from_row).transpose()
}

/// A new checkout (status `paying`, leased by its creator).
#[derive(Debug)]
pub struct NewCheckout<'a> {
    /// Checkout id.
    pub checkout_id: &'a str,
    /// Owner.
    pub device_id: &'a str,
    /// App.
    pub app_id: &'a str,
    /// App order id.
    pub app_order_id: &'a str,
    /// Binding that pays.
    pub binding_id: &'a str,
    /// ISO 4217.
    pub currency: &'a str,
    /// Sum of the parts.
    pub total: i64,
    /// All-or-nothing mode.
    pub all_or_nothing: bool,
    /// Digest of the request.
    pub fingerprint: &'a str,
    /// Unix ms.
    pub expires_at: i64,
    /// Lease (and first action) until, Unix ms.
    pub lease_until: i64,
    /// The lease holder.
    pub lease_owner: &'a str,
    /// The binding's sealed token blob as the device sent it (never a clear token): what
    /// a restarted server needs to send the parts not sent yet.
    pub sealed_tokens: &'a str,
    /// Unix ms.
    pub now: i64,
}

/// Inserts a checkout in the caller's transaction; false when (device, app, order id)
/// exists.
pub async fn insert(conn: &mut sqlx::AnyConnection, c: &NewCheckout<'_>) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO checkouts (checkout_id, device_id, app_id, app_order_id, binding_id, currency, total, all_or_nothing, fingerprint, status, \
         expires_at, next_action_at, lease_owner, lease_until, created_at, updated_at, sealed_tokens) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'paying', $10, $11, $12, $11, $13, $13, $14) ON CONFLICT DO NOTHING",
    )
    .bind(c.checkout_id)
    .bind(c.device_id)
    .bind(c.app_id)
    .bind(c.app_order_id)
    .bind(c.binding_id)
    .bind(c.currency)
    .bind(c.total)
    .bind(i64::from(c.all_or_nothing))
    .bind(c.fingerprint)
    .bind(c.expires_at)
    .bind(c.lease_until)
    .bind(c.lease_owner)
    .bind(c.now)
    .bind(c.sealed_tokens)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    Ok(inserted)
}

/// A new part row.
#[derive(Debug)]
pub struct NewPart<'a> {
    /// Position, from 0.
    pub idx: i64,
    /// The part's payment.
    pub payment_id: &'a str,
    /// Seller id.
    pub seller_id: &'a str,
    /// Seller name.
    pub seller_name: &'a str,
    /// Seller MCC.
    pub seller_mcc: &'a str,
}

/// Inserts a part in the caller's transaction.
pub async fn insert_part(
    conn: &mut sqlx::AnyConnection,
    checkout_id: &str,
    p: &NewPart<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO checkout_parts (checkout_id, idx, payment_id, seller_id, seller_name, seller_mcc) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(checkout_id)
    .bind(p.idx)
    .bind(p.payment_id)
    .bind(p.seller_id)
    .bind(p.seller_name)
    .bind(p.seller_mcc)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The parts of a checkout with their payments, in order.
pub async fn parts(db: &Db, checkout_id: &str) -> Result<Vec<(PartRow, PaymentRow)>> {
    let rows = sqlx::query(
        "SELECT idx, payment_id, seller_id, seller_name, seller_mcc, reversal, reversed FROM checkout_parts WHERE checkout_id = $1 ORDER BY idx",
    )
    .bind(checkout_id)
    .fetch_all(db.pool())
    .await?;
    let sql = format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id IN (SELECT payment_id FROM checkout_parts WHERE checkout_id = $1)"
    );
    let mut payments: HashMap<String, PaymentRow> = HashMap::new();
    for r in sqlx::query(&sql)
        .bind(checkout_id)
        .fetch_all(db.pool())
        .await?
    {
        let p = PaymentRow::from_row(&r)?;
        payments.insert(p.payment_id.clone(), p);
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let part = PartRow::from_row(&r)?;
        let p = payments
            .remove(&part.payment_id)
            .ok_or(StoreError::Missing("checkout part without payment"))?;
        out.push((part, p));
    }
    Ok(out)
}

/// The (checkout id, seller id) of a part's payment.
pub async fn part_of(db: &Db, payment_id: &str) -> Result<Option<(String, String)>> {
    let row =
        sqlx::query("SELECT checkout_id, seller_id FROM checkout_parts WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_optional(db.pool())
            .await?;
    match row {
        Some(r) => Ok(Some((r.try_get("checkout_id")?, r.try_get("seller_id")?))),
        None => Ok(None),
    }
}

/// Makes an unfinished checkout due at `now` (relaxed pool: lost to an OS crash, the
/// checkout is still due at its earlier time).
pub async fn make_due(db: &Db, checkout_id: &str, now: i64) -> Result<()> {
    let _turn = db.write_turn().await;
    sqlx::query(
        "UPDATE checkouts SET next_action_at = $2 WHERE checkout_id = $1 AND status IN ('paying', 'reversing') AND next_action_at > $2",
    )
    .bind(checkout_id)
    .bind(now)
    .execute(db.relaxed())
    .await?;
    Ok(())
}

/// Takes the lease of an unfinished checkout for `owner` until `until`; false when
/// another holds it or it is final. Relaxed pool: visible to every replica at once; one
/// lost to an OS crash had expired by the time anything could run again.
pub async fn lease(db: &Db, checkout_id: &str, owner: &str, until: i64, now: i64) -> Result<bool> {
    let _turn = db.write_turn().await;
    let r = sqlx::query(
        "UPDATE checkouts SET lease_owner = $2, lease_until = $3 WHERE checkout_id = $1 AND status IN ('paying', 'reversing') AND lease_until < $4",
    )
    .bind(checkout_id)
    .bind(owner)
    .bind(until)
    .bind(now)
    .execute(db.relaxed())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives `owner`'s lease back; the checkout is due again at `next` (relaxed pool).
pub async fn release(db: &Db, checkout_id: &str, owner: &str, next: i64, now: i64) -> Result<()> {
    let _turn = db.write_turn().await;
    sqlx::query(
        "UPDATE checkouts SET lease_owner = NULL, lease_until = 0, attempts = attempts + 1, next_action_at = $3, updated_at = $4 \
         WHERE checkout_id = $1 AND lease_owner = $2",
    )
    .bind(checkout_id)
    .bind(owner)
    .bind(next)
    .bind(now)
    .execute(db.relaxed())
    .await?;
    Ok(())
}

/// `paying` → `reversing` (all-or-nothing: a part failed).
pub async fn set_reversing(db: &Db, checkout_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE checkouts SET status = 'reversing', updated_at = $2 WHERE checkout_id = $1 AND status = 'paying'",
    )
    .bind(checkout_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// An open checkout becomes final (lease given back), in the caller's transaction: true
/// when this call made the change.
pub async fn finish(
    conn: &mut sqlx::AnyConnection,
    checkout_id: &str,
    status: CheckoutState,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE checkouts SET status = $2, lease_owner = NULL, lease_until = 0, updated_at = $3, sealed_tokens = NULL WHERE checkout_id = $1 AND status IN ('paying', 'reversing')",
    )
    .bind(checkout_id)
    .bind(status.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The sealed token blob an unfinished checkout keeps (`None` once it is final).
pub async fn sealed_tokens(db: &Db, checkout_id: &str) -> Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT sealed_tokens FROM checkouts WHERE checkout_id = $1")
            .bind(checkout_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.and_then(|(t,)| t))
}

/// Marks a part reversed, and how.
pub async fn mark_reversed(db: &Db, checkout_id: &str, idx: i64, how: Reversal) -> Result<()> {
    sqlx::query(
        "UPDATE checkout_parts SET reversed = 1, reversal = $3 WHERE checkout_id = $1 AND idx = $2",
    )
    .bind(checkout_id)
    .bind(idx)
    .bind(how.as_str())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A part's reversal becomes a refund (its cancel was refused).
pub async fn reverse_by_refund(db: &Db, checkout_id: &str, idx: i64) -> Result<()> {
    sqlx::query(
        "UPDATE checkout_parts SET reversal = 'refund' WHERE checkout_id = $1 AND idx = $2",
    )
    .bind(checkout_id)
    .bind(idx)
    .execute(db.pool())
    .await?;
    Ok(())
}
