//! `declarations`: customs declarations of payments.

use sqlx::Row;

use super::Db;
use super::error::Result;
use super::rows::{DECLARATION_COLUMNS, DeclarationRow};
use super::status::DeclarationStatus;

/// One declaration by id.
pub async fn load(db: &Db, id: &str) -> Result<Option<DeclarationRow>> {
    let sql =
        format!("SELECT {DECLARATION_COLUMNS} FROM declarations WHERE declaration_request_id = $1");
    super::one_by_key(db, &sql, id, DeclarationRow::from_row).await
}

/// The declarations of a payment, oldest first.
pub async fn of_payment(db: &Db, payment_id: &str) -> Result<Vec<DeclarationRow>> {
    let sql = format!(
        "SELECT {DECLARATION_COLUMNS} FROM declarations WHERE payment_id = $1 ORDER BY created_at, declaration_request_id"
    );
    let rows = sqlx::query(&sql)
        .bind(payment_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(DeclarationRow::from_row).collect()
}

/// Minor units of a payment declared and not failed.
pub async fn declared_amount(db: &Db, payment_id: &str) -> Result<i64> {
    Ok(sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS s FROM declarations WHERE payment_id = $1 AND status <> 'failed'",
    )
    .bind(payment_id)
    .fetch_one(db.pool())
    .await?
    .try_get("s")?)
}

/// A new declaration (status `sending`).
#[derive(Debug)]
pub struct NewDeclaration<'a> {
    /// The idempotency key.
    pub declaration_request_id: &'a str,
    /// The server payment id.
    pub payment_id: &'a str,
    /// Sub-order, when split.
    pub sub_order_id: Option<&'a str>,
    /// Customs office.
    pub customs_code: &'a str,
    /// Merchant customs registration.
    pub merchant_customs_code: &'a str,
    /// Merchant customs name.
    pub merchant_customs_name: &'a str,
    /// ISO 4217.
    pub currency: &'a str,
    /// Minor units.
    pub amount: i64,
    /// Operator key name.
    pub operator: &'a str,
    /// Unix ms.
    pub now: i64,
}

/// Inserts a declaration (`sending`); nothing when the id exists.
pub async fn insert(db: &Db, d: &NewDeclaration<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO declarations (declaration_request_id, payment_id, sub_order_id, customs_code, merchant_customs_code, merchant_customs_name, currency, amount, status, operator, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'sending', $9, $10, $10) ON CONFLICT DO NOTHING",
    )
    .bind(d.declaration_request_id)
    .bind(d.payment_id)
    .bind(d.sub_order_id)
    .bind(d.customs_code)
    .bind(d.merchant_customs_code)
    .bind(d.merchant_customs_name)
    .bind(d.currency)
    .bind(d.amount)
    .bind(d.operator)
    .bind(d.now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// What Alipay's acceptance of a declaration carries.
#[derive(Debug)]
pub struct Acceptance<'a> {
    /// Payment id at customs.
    pub customs_payment_id: Option<&'a str>,
    /// Order id at customs.
    pub customs_order_id: Option<&'a str>,
    /// Identity check result.
    pub identity_check_result: Option<&'a str>,
    /// Clearing channel.
    pub clearing_channel: Option<&'a str>,
    /// Unix ms.
    pub now: i64,
}

/// `sending` → `processing` (Alipay accepted it).
pub async fn accept(db: &Db, id: &str, a: &Acceptance<'_>) -> Result<()> {
    sqlx::query(
        "UPDATE declarations SET status = 'processing', customs_payment_id = $2, customs_order_id = $3, identity_check_result = $4, clearing_channel = $5, updated_at = $6 \
         WHERE declaration_request_id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(a.customs_payment_id)
    .bind(a.customs_order_id)
    .bind(a.identity_check_result)
    .bind(a.clearing_channel)
    .bind(a.now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Removes a `sending` declaration Alipay refused (its id can be used again).
pub async fn remove_refused(db: &Db, id: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM declarations WHERE declaration_request_id = $1 AND status = 'sending'",
    )
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// What an inquiry learnt about a declaration.
#[derive(Debug)]
pub struct InquiryResult<'a> {
    /// The new status.
    pub status: DeclarationStatus,
    /// Customs result code.
    pub result_code: Option<&'a str>,
    /// Customs result text.
    pub result_desc: Option<&'a str>,
    /// Payment id at customs (kept when `None`).
    pub customs_payment_id: Option<&'a str>,
    /// Order id at customs (kept when `None`).
    pub customs_order_id: Option<&'a str>,
    /// Unix ms.
    pub now: i64,
}

/// Stores what an inquiry learnt.
pub async fn record_inquiry(db: &Db, id: &str, r: &InquiryResult<'_>) -> Result<()> {
    sqlx::query(
        "UPDATE declarations SET status = $2, result_code = $3, result_desc = $4, customs_payment_id = COALESCE($5, customs_payment_id), \
         customs_order_id = COALESCE($6, customs_order_id), updated_at = $7 WHERE declaration_request_id = $1",
    )
    .bind(id)
    .bind(r.status.as_str())
    .bind(r.result_code)
    .bind(r.result_desc)
    .bind(r.customs_payment_id)
    .bind(r.customs_order_id)
    .bind(r.now)
    .execute(db.pool())
    .await?;
    Ok(())
}
