//! `payments`: one row per AMS payment (agreement, order code, checkout part). A pending
//! payment becomes final once, by [`settle`] (`UPDATE ... WHERE status = <from>`).

use super::Db;
use super::error::Result;
use super::rows::{PAYMENT_COLUMNS, PaymentRow};
use super::status::{PaymentStatus, Product};

/// A payment by server id.
pub async fn load(db: &Db, payment_id: &str) -> Result<Option<PaymentRow>> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = $1");
    super::one_by_key(db, &sql, payment_id, PaymentRow::from_row).await
}

/// A payment by `paymentRequestId`.
pub async fn by_request(db: &Db, prid: &str) -> Result<Option<PaymentRow>> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_request_id = $1");
    super::one_by_key(db, &sql, prid, PaymentRow::from_row).await
}

/// A new payment row (status `pending`).
#[derive(Debug)]
pub struct NewPayment<'a> {
    /// Server payment id.
    pub payment_id: &'a str,
    /// AMS paymentRequestId.
    pub payment_request_id: &'a str,
    /// Device.
    pub device_id: &'a str,
    /// App.
    pub app_id: &'a str,
    /// App order id.
    pub app_order_id: &'a str,
    /// Binding (agreement payments and checkout parts).
    pub binding_id: Option<&'a str>,
    /// Wallet code.
    pub wallet: &'a str,
    /// ISO 4217.
    pub currency: &'a str,
    /// Minor units.
    pub amount: i64,
    /// Description.
    pub description: &'a str,
    /// paymentExpiryTime, Unix ms.
    pub expires_at: i64,
    /// First engine action, Unix ms.
    pub next_action_at: i64,
    /// Unix ms.
    pub now: i64,
}

/// Inserts an agreement payment (stage `sending`) in the caller's transaction; false
/// when the `paymentRequestId` or the order id is taken.
pub async fn insert_agreement(conn: &mut sqlx::AnyConnection, p: &NewPayment<'_>) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO payments (payment_id, payment_request_id, device_id, app_id, app_order_id, product, binding_id, wallet, currency, amount, description, \
         status, stage, expires_at, next_action_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'agreement', $6, $7, $8, $9, $10, 'pending', 'sending', $11, $12, $13, $13) ON CONFLICT DO NOTHING",
    )
    .bind(p.payment_id)
    .bind(p.payment_request_id)
    .bind(p.device_id)
    .bind(p.app_id)
    .bind(p.app_order_id)
    .bind(p.binding_id)
    .bind(p.wallet)
    .bind(p.currency)
    .bind(p.amount)
    .bind(p.description)
    .bind(p.expires_at)
    .bind(p.next_action_at)
    .bind(p.now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts an Order Code payment (stage `sending`, wallet `CONNECT_WALLET`); false when
/// the `paymentRequestId` or the order id is taken.
pub async fn insert_order_code(db: &Db, p: &NewPayment<'_>) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO payments (payment_id, payment_request_id, device_id, app_id, app_order_id, product, binding_id, wallet, currency, amount, description, \
         status, stage, expires_at, next_action_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'order_code', NULL, 'CONNECT_WALLET', $6, $7, $8, 'pending', 'sending', $9, $10, $11, $11) ON CONFLICT DO NOTHING",
    )
    .bind(p.payment_id)
    .bind(p.payment_request_id)
    .bind(p.device_id)
    .bind(p.app_id)
    .bind(p.app_order_id)
    .bind(p.currency)
    .bind(p.amount)
    .bind(p.description)
    .bind(p.expires_at)
    .bind(p.next_action_at)
    .bind(p.now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts a part of a combined checkout in the caller's transaction: stage `queued`,
/// or `sending` when it is sent right after this commit (`sending`: the first part,
/// claimed in the checkout's own record). False when the `paymentRequestId` or the
/// order id is taken.
pub async fn insert_checkout_part(
    conn: &mut sqlx::AnyConnection,
    p: &NewPayment<'_>,
    sending: bool,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO payments (payment_id, payment_request_id, device_id, app_id, app_order_id, product, binding_id, wallet, currency, amount, description, \
         status, stage, expires_at, next_action_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $15, $12, $13, $14, $14) ON CONFLICT DO NOTHING",
    )
    .bind(p.payment_id)
    .bind(p.payment_request_id)
    .bind(p.device_id)
    .bind(p.app_id)
    .bind(p.app_order_id)
    .bind(Product::CheckoutPart.as_str())
    .bind(p.binding_id)
    .bind(p.wallet)
    .bind(p.currency)
    .bind(p.amount)
    .bind(p.description)
    .bind(p.expires_at)
    .bind(p.next_action_at)
    .bind(p.now)
    .bind(if sending { "sending" } else { "queued" })
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the order QR code of an Order Code payment.
pub async fn set_code_value(db: &Db, payment_id: &str, code: &str) -> Result<()> {
    sqlx::query("UPDATE payments SET code_value = $2 WHERE payment_id = $1")
        .bind(payment_id)
        .bind(code)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A pending payment goes to stage `inquiring`, due at `next`; keeps the known result
/// code and Alipay id unless new ones are given.
pub async fn schedule_inquiry(
    db: &Db,
    payment_id: &str,
    next: i64,
    code: Option<&str>,
    ams_id: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE payments SET stage = 'inquiring', next_action_at = $2, result_code = COALESCE($3, result_code), \
         ams_payment_id = COALESCE($4, ams_payment_id), updated_at = $5 WHERE payment_id = $1 AND status = 'pending'",
    )
    .bind(payment_id)
    .bind(next)
    .bind(code)
    .bind(ams_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The final state of a payment.
#[derive(Debug)]
pub struct Settlement<'a> {
    /// The new status.
    pub status: PaymentStatus,
    /// Result code.
    pub result_code: Option<&'a str>,
    /// Result message.
    pub result_message: Option<&'a str>,
    /// Alipay paymentId (kept when `None`).
    pub ams_payment_id: Option<&'a str>,
    /// The signed receipt.
    pub receipt: &'a str,
    /// What the wallet paid for a payment priced in another currency (kept when `None`).
    pub conversion: Option<&'a scanbind_device_api::types::Conversion>,
    /// Unix ms.
    pub now: i64,
}

/// Settles a payment: `from` → the final status, stage `done`, receipt stored, lease
/// given back, in the caller's transaction. True when this call made the change (the
/// payment was in `from`).
pub async fn settle(
    conn: &mut sqlx::AnyConnection,
    payment_id: &str,
    from: PaymentStatus,
    s: &Settlement<'_>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE payments SET status = $2, stage = 'done', result_code = $3, result_message = $4, ams_payment_id = COALESCE($5, ams_payment_id), \
         receipt = $6, lease_owner = NULL, lease_until = 0, updated_at = $7, \
         paid_currency = COALESCE($9, paid_currency), paid_amount = COALESCE($10, paid_amount), \
         quote_pair = COALESCE($11, quote_pair), quote_price = COALESCE($12, quote_price) \
         WHERE payment_id = $1 AND status = $8",
    )
    .bind(payment_id)
    .bind(s.status.as_str())
    .bind(s.result_code)
    .bind(s.result_message)
    .bind(s.ams_payment_id)
    .bind(s.receipt)
    .bind(s.now)
    .bind(from.as_str())
    .bind(s.conversion.map(|c| c.paid.currency.as_str()))
    .bind(s.conversion.map(|c| c.paid.value))
    .bind(s.conversion.map(|c| c.quote_currency_pair.as_str()))
    .bind(s.conversion.map(|c| c.quote_price.as_str()))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds a successful refund to the payment's refunded total, in the caller's
/// transaction.
pub async fn add_refunded(
    conn: &mut sqlx::AnyConnection,
    payment_id: &str,
    amount: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE payments SET refunded = refunded + $2, updated_at = $3 WHERE payment_id = $1",
    )
    .bind(payment_id)
    .bind(amount)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A pending payment sent earlier goes to stage `cancelling` now (a checkout past its
/// life); parts not sent, being sent or being cancelled are left alone.
pub async fn cancel_sent_part(db: &Db, payment_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE payments SET stage = 'cancelling', next_action_at = $2 WHERE payment_id = $1 AND status = 'pending' \
         AND stage NOT IN ('queued', 'sending', 'cancelling')",
    )
    .bind(payment_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Claims a queued checkout part that will never be sent (stage `abandoned`). True when
/// it is (now or already) abandoned and still pending.
pub async fn abandon_queued(db: &Db, payment_id: &str) -> Result<bool> {
    let claimed = sqlx::query(
        "UPDATE payments SET stage = 'abandoned' WHERE payment_id = $1 AND status = 'pending' AND stage IN ('queued', 'abandoned')",
    )
    .bind(payment_id)
    .execute(db.pool())
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Claims a queued checkout part for sending (stage `sending`, new expiry), in the
/// caller's transaction. False when it is not queued any more.
pub async fn claim_queued(
    conn: &mut sqlx::AnyConnection,
    payment_id: &str,
    expires_at: i64,
    next_action_at: i64,
    now: i64,
) -> Result<bool> {
    let claimed = sqlx::query(
        "UPDATE payments SET stage = 'sending', expires_at = $2, next_action_at = $3, updated_at = $4 \
         WHERE payment_id = $1 AND status = 'pending' AND stage = 'queued'",
    )
    .bind(payment_id)
    .bind(expires_at)
    .bind(next_action_at)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    Ok(claimed)
}

/// A pending payment goes to stage `inquiring`.
pub async fn set_inquiring(db: &Db, payment_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE payments SET stage = 'inquiring' WHERE payment_id = $1 AND status = 'pending'",
    )
    .bind(payment_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A pending payment past its expiry goes to stage `cancelling`, due now, lease given
/// back.
pub async fn set_cancelling(db: &Db, payment_id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE payments SET stage = 'cancelling', next_action_at = $2, lease_owner = NULL, lease_until = 0 WHERE payment_id = $1 AND status = 'pending'")
        .bind(payment_id)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A filter value of [`search`].
#[derive(Debug, Clone)]
pub enum SearchValue {
    /// Text.
    Text(String),
    /// A number.
    Int(i64),
}

/// The filters of [`search`]: all must hold.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// `(column, value)` equalities; the columns are the caller's fixed names.
    pub equal: Vec<(&'static str, String)>,
    /// The payment status.
    pub status: Option<PaymentStatus>,
    /// Created at or after (Unix ms).
    pub from: Option<i64>,
    /// Created before (Unix ms).
    pub to: Option<i64>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// Payments matching `f`, newest first.
pub async fn search(db: &Db, f: &SearchFilter) -> Result<Vec<PaymentRow>> {
    let mut cond = Vec::new();
    let mut params = Vec::new();
    for (column, v) in &f.equal {
        params.push(SearchValue::Text(v.clone()));
        cond.push(format!("{column} = ${}", params.len()));
    }
    if let Some(s) = f.status {
        params.push(SearchValue::Text(s.as_str().to_owned()));
        cond.push(format!("status = ${}", params.len()));
    }
    if let Some(t) = f.from {
        params.push(SearchValue::Int(t));
        cond.push(format!("created_at >= ${}", params.len()));
    }
    if let Some(t) = f.to {
        params.push(SearchValue::Int(t));
        cond.push(format!("created_at < ${}", params.len()));
    }
    let filter = if cond.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", cond.join(" AND "))
    };
    let limit = f.limit;
    let sql = format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments {filter} ORDER BY created_at DESC, payment_id LIMIT {limit}"
    );
    let mut query = sqlx::query(&sql);
    for p in params {
        query = match p {
            SearchValue::Text(s) => query.bind(s),
            SearchValue::Int(i) => query.bind(i),
        };
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter().map(PaymentRow::from_row).collect()
}
