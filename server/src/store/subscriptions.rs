//! `subscriptions` and `subscription_charges` (issue 27): recurring charges the server
//! makes itself. Every change of a subscription is one `UPDATE ... WHERE version = <the
//! version read>` ([`save`]), so two writers (a renewal pass and a payment's result, two
//! replicas) never both apply a change; the loser reads again. A charge is an ordinary
//! `payments` row, linked here by (subscription, period, attempt), which is unique.

use scanbind_device_api::types::SubscriptionStatus;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Db;
use super::error::{Result, StoreError};
use super::rows::{PAYMENT_COLUMNS, PaymentRow};

/// A `subscriptions` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    /// Server id (`sub_…`).
    pub subscription_id: String,
    /// Owner.
    pub device_id: String,
    /// App.
    pub app_id: String,
    /// The app's own id.
    pub app_subscription_id: String,
    /// The binding that pays.
    pub binding_id: String,
    /// Its wallet.
    pub wallet: String,
    /// Plan name.
    pub plan: String,
    /// ISO 4217.
    pub currency: String,
    /// Full price of a period, minor units.
    pub amount: i64,
    /// Period (`P1M`, ...).
    pub period: String,
    /// Trial (`P1W`, ...).
    pub trial: Option<String>,
    /// Introductory price.
    pub intro_amount: Option<i64>,
    /// Introductory periods.
    pub intro_periods: i64,
    /// Digest of the terms.
    pub fingerprint: String,
    /// State.
    pub status: SubscriptionStatus,
    /// Start of period 0, Unix ms (billing clock).
    pub anchor: i64,
    /// End of what is paid for (or of the trial).
    pub period_end: Option<i64>,
    /// Periods paid.
    pub periods_paid: i64,
    /// The period charged next.
    pub charge_index: i64,
    /// Failed attempts at it.
    pub failures: i64,
    /// When it is charged next (billing clock).
    pub next_charge_at: Option<i64>,
    /// The charge in flight.
    pub pending_payment_id: Option<String>,
    /// The sealed grant; `None` once revoked.
    pub token_grant: Option<String>,
    /// Why cancelled / expired / last failure.
    pub reason: Option<String>,
    /// The current signed subscription receipt.
    pub receipt: Option<String>,
    /// Optimistic concurrency version.
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

const COLUMNS: &str = "subscription_id, device_id, app_id, app_subscription_id, binding_id, wallet, plan, currency, amount, period, trial, intro_amount, intro_periods, \
     fingerprint, status, anchor, period_end, periods_paid, charge_index, failures, next_charge_at, pending_payment_id, token_grant, reason, receipt, version, created_at, updated_at";

impl SubscriptionRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let status: String = r.try_get("status")?;
        Ok(SubscriptionRow {
            subscription_id: r.try_get("subscription_id")?,
            device_id: r.try_get("device_id")?,
            app_id: r.try_get("app_id")?,
            app_subscription_id: r.try_get("app_subscription_id")?,
            binding_id: r.try_get("binding_id")?,
            wallet: r.try_get("wallet")?,
            plan: r.try_get("plan")?,
            currency: r.try_get("currency")?,
            amount: r.try_get("amount")?,
            period: r.try_get("period")?,
            trial: r.try_get("trial")?,
            intro_amount: r.try_get("intro_amount")?,
            intro_periods: r.try_get("intro_periods")?,
            fingerprint: r.try_get("fingerprint")?,
            status: SubscriptionStatus::parse(&status).ok_or(StoreError::Unknown {
                column: "subscriptions.status",
                value: status,
            })?,
            anchor: r.try_get("anchor")?,
            period_end: r.try_get("period_end")?,
            periods_paid: r.try_get("periods_paid")?,
            charge_index: r.try_get("charge_index")?,
            failures: r.try_get("failures")?,
            next_charge_at: r.try_get("next_charge_at")?,
            pending_payment_id: r.try_get("pending_payment_id")?,
            token_grant: r.try_get("token_grant")?,
            reason: r.try_get("reason")?,
            receipt: r.try_get("receipt")?,
            version: r.try_get("version")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// A subscription by id.
pub async fn load(db: &Db, subscription_id: &str) -> Result<Option<SubscriptionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM subscriptions WHERE subscription_id = $1");
    super::one_by_key(db, &sql, subscription_id, SubscriptionRow::from_row).await
}

/// The subscription of (device, app, app subscription id).
pub async fn by_app_id(
    db: &Db,
    device_id: &str,
    app_id: &str,
    app_subscription_id: &str,
) -> Result<Option<SubscriptionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE device_id = $1 AND app_id = $2 AND app_subscription_id = $3"
    );
    let row = sqlx::query(&sql)
        .bind(device_id)
        .bind(app_id)
        .bind(app_subscription_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(SubscriptionRow::from_row).transpose()
}

/// What [`list`] selects (every field optional).
#[derive(Debug, Default)]
pub struct ListFilter<'a> {
    /// One device.
    pub device_id: Option<&'a str>,
    /// One app.
    pub app_id: Option<&'a str>,
    /// One state.
    pub status: Option<SubscriptionStatus>,
    /// One binding.
    pub binding_id: Option<&'a str>,
}

/// Subscriptions matching `f`, oldest first, at most `limit`.
pub async fn list(db: &Db, f: &ListFilter<'_>, limit: i64) -> Result<Vec<SubscriptionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE ($1 = '' OR device_id = $1) AND ($2 = '' OR app_id = $2) \
         AND ($3 = '' OR status = $3) AND ($4 = '' OR binding_id = $4) ORDER BY created_at, subscription_id LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(f.device_id.unwrap_or(""))
        .bind(f.app_id.unwrap_or(""))
        .bind(f.status.map(SubscriptionStatus::as_str).unwrap_or(""))
        .bind(f.binding_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(SubscriptionRow::from_row).collect()
}

/// Inserts a new subscription in the caller's transaction (version 0); false when
/// (device, app, app subscription id) exists.
pub async fn insert(conn: &mut sqlx::AnyConnection, s: &SubscriptionRow) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO subscriptions (subscription_id, device_id, app_id, app_subscription_id, binding_id, wallet, plan, currency, amount, period, trial, \
         intro_amount, intro_periods, fingerprint, status, anchor, period_end, periods_paid, charge_index, failures, next_charge_at, pending_payment_id, \
         token_grant, reason, receipt, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, 0, $26, $27) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&s.subscription_id)
    .bind(&s.device_id)
    .bind(&s.app_id)
    .bind(&s.app_subscription_id)
    .bind(&s.binding_id)
    .bind(&s.wallet)
    .bind(&s.plan)
    .bind(&s.currency)
    .bind(s.amount)
    .bind(&s.period)
    .bind(s.trial.as_deref())
    .bind(s.intro_amount)
    .bind(s.intro_periods)
    .bind(&s.fingerprint)
    .bind(s.status.as_str())
    .bind(s.anchor)
    .bind(s.period_end)
    .bind(s.periods_paid)
    .bind(s.charge_index)
    .bind(s.failures)
    .bind(s.next_charge_at)
    .bind(s.pending_payment_id.as_deref())
    .bind(s.token_grant.as_deref())
    .bind(s.reason.as_deref())
    .bind(s.receipt.as_deref())
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes the mutable fields of `s` in the caller's transaction if the stored version is
/// still `s.version` (and bumps it); false when someone else changed it first.
pub async fn save(conn: &mut sqlx::AnyConnection, s: &SubscriptionRow) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE subscriptions SET status = $3, period_end = $4, periods_paid = $5, charge_index = $6, failures = $7, next_charge_at = $8, \
         pending_payment_id = $9, token_grant = $10, reason = $11, receipt = $12, updated_at = $13, version = version + 1 \
         WHERE subscription_id = $1 AND version = $2",
    )
    .bind(&s.subscription_id)
    .bind(s.version)
    .bind(s.status.as_str())
    .bind(s.period_end)
    .bind(s.periods_paid)
    .bind(s.charge_index)
    .bind(s.failures)
    .bind(s.next_charge_at)
    .bind(s.pending_payment_id.as_deref())
    .bind(s.token_grant.as_deref())
    .bind(s.reason.as_deref())
    .bind(s.receipt.as_deref())
    .bind(s.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Links a charge's payment to its subscription, period and attempt (caller's
/// transaction); false when that (subscription, period, attempt) already has one.
pub async fn insert_charge(
    conn: &mut sqlx::AnyConnection,
    payment_id: &str,
    subscription_id: &str,
    period_index: i64,
    attempt: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO subscription_charges (payment_id, subscription_id, period_index, attempt) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(payment_id)
    .bind(subscription_id)
    .bind(period_index)
    .bind(attempt)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One charge: (period index, attempt, its payment).
pub type Charge = (i64, i64, PaymentRow);

/// The charges of a subscription, oldest first.
pub async fn charges(db: &Db, subscription_id: &str) -> Result<Vec<Charge>> {
    let cols: String = PAYMENT_COLUMNS
        .split(", ")
        .map(|c| format!("p.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT c.period_index, c.attempt, {cols} FROM subscription_charges c JOIN payments p ON p.payment_id = c.payment_id \
         WHERE c.subscription_id = $1 ORDER BY c.period_index, c.attempt"
    );
    let rows = sqlx::query(&sql)
        .bind(subscription_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("period_index")?,
                r.try_get("attempt")?,
                PaymentRow::from_row(r)?,
            ))
        })
        .collect()
}

/// The subscription a payment charges, if it is a subscription charge.
pub async fn subscription_of_payment(db: &Db, payment_id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT subscription_id FROM subscription_charges WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get("subscription_id")).transpose()?)
}

/// Subscriptions with something to do at billing time `now`: a charge due (none in
/// flight), a charge in flight whose payment is final (its result not applied yet), or a
/// cancelled one whose paid time is over.
pub async fn due(db: &Db, now: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT subscription_id FROM subscriptions WHERE \
         (status IN ('trial', 'active', 'grace') AND pending_payment_id IS NULL AND next_charge_at IS NOT NULL AND next_charge_at <= $1) \
         OR (pending_payment_id IS NOT NULL AND EXISTS (SELECT 1 FROM payments p WHERE p.payment_id = subscriptions.pending_payment_id AND p.status <> 'pending')) \
         OR (status = 'cancelled' AND pending_payment_id IS NULL AND (period_end IS NULL OR period_end <= $1)) \
         ORDER BY subscription_id",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get("subscription_id")?))
        .collect()
}

/// Takes the lease of a subscription for `owner` until `until` (real time); false when
/// another holds it.
pub async fn lease(
    db: &Db,
    subscription_id: &str,
    owner: &str,
    until: i64,
    now: i64,
) -> Result<bool> {
    let _turn = db.write_turn().await;
    let done = sqlx::query(
        "UPDATE subscriptions SET lease_owner = $2, lease_until = $3 WHERE subscription_id = $1 AND (lease_until < $4 OR lease_owner = $2)",
    )
    .bind(subscription_id)
    .bind(owner)
    .bind(until)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// At start: leases not held by `instance` are void (no pass of a stopped process is
/// running; a live replica's pass loses nothing, since every change is conditional on
/// the version it read). Returns how many were voided.
pub async fn recover(db: &Db, instance: &str) -> Result<u64> {
    let _turn = db.write_turn().await;
    let done = sqlx::query(
        "UPDATE subscriptions SET lease_owner = NULL, lease_until = 0 WHERE lease_owner IS NOT NULL AND lease_owner <> $1",
    )
    .bind(instance)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Gives a lease back.
pub async fn release(db: &Db, subscription_id: &str, owner: &str) -> Result<()> {
    let _turn = db.write_turn().await;
    sqlx::query(
        "UPDATE subscriptions SET lease_owner = NULL, lease_until = 0 WHERE subscription_id = $1 AND lease_owner = $2",
    )
    .bind(subscription_id)
    .bind(owner)
    .execute(db.pool())
    .await?;
    Ok(())
}
