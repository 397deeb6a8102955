//! `bindings`: one row per Scan to Bind binding. Every change of status is a
//! conditional `UPDATE ... WHERE status = <expected>`: true when this call made it.

use super::Db;
use super::error::Result;
use super::rows::{BINDING_COLUMNS, BindingRow};
use super::status::BindingState;

/// A binding by id.
pub async fn load(db: &Db, binding_id: &str) -> Result<Option<BindingRow>> {
    let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE binding_id = $1");
    super::one_by_key(db, &sql, binding_id, BindingRow::from_row).await
}

/// The binding waiting for `auth_state` (the consult's `authState`).
pub async fn by_auth_state(db: &Db, auth_state: &str) -> Result<Option<BindingRow>> {
    let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE auth_state = $1");
    super::one_by_key(db, &sql, auth_state, BindingRow::from_row).await
}

/// The binding whose access token has this fingerprint.
pub async fn by_token_fingerprint(db: &Db, fingerprint: &str) -> Result<Option<BindingRow>> {
    let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE token_fingerprint = $1");
    super::one_by_key(db, &sql, fingerprint, BindingRow::from_row).await
}

/// Every binding of a device, oldest first.
pub async fn of_device(db: &Db, device_id: &str) -> Result<Vec<BindingRow>> {
    let sql =
        format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE device_id = $1 ORDER BY created_at");
    let rows = sqlx::query(&sql)
        .bind(device_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(BindingRow::from_row).collect()
}

/// A new binding (`pending`).
#[derive(Debug)]
pub struct NewBinding<'a> {
    /// Binding id.
    pub binding_id: &'a str,
    /// Owner.
    pub device_id: &'a str,
    /// Wallet code.
    pub wallet: &'a str,
    /// The consult `authState`.
    pub auth_state: &'a str,
    /// Match code.
    pub match_code: &'a str,
    /// QR code value.
    pub code_value: &'a str,
    /// QR expiry, Unix ms.
    pub expires_at: i64,
    /// Unix ms.
    pub now: i64,
}

/// Inserts a `pending` binding.
pub async fn insert(db: &Db, b: &NewBinding<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO bindings (binding_id, device_id, wallet, auth_state, status, match_code, code_value, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $8)",
    )
    .bind(b.binding_id)
    .bind(b.device_id)
    .bind(b.wallet)
    .bind(b.auth_state)
    .bind(b.match_code)
    .bind(b.code_value)
    .bind(b.expires_at)
    .bind(b.now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// `pending` → `exchanging`: claims the token exchange. False when already handled.
pub async fn claim_exchange(db: &Db, binding_id: &str, now: i64) -> Result<bool> {
    let claimed = sqlx::query(
        "UPDATE bindings SET status = 'exchanging', updated_at = $2 WHERE binding_id = $1 AND status = 'pending'",
    )
    .bind(binding_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// `exchanging` → `pending`: gives an exchange with an unknown outcome back.
pub async fn unclaim_exchange(db: &Db, binding_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE bindings SET status = 'pending' WHERE binding_id = $1 AND status = 'exchanging'",
    )
    .bind(binding_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// What an exchange that succeeded stores.
#[derive(Debug)]
pub struct Activation<'a> {
    /// Fingerprint of the access token.
    pub token_fingerprint: &'a str,
    /// Masked login id.
    pub user_login_id: Option<&'a str>,
    /// Access token expiry (AMS text).
    pub access_token_expires_at: Option<&'a str>,
    /// Refresh token expiry (AMS text).
    pub refresh_token_expires_at: Option<&'a str>,
    /// The sealed tokens awaiting pickup.
    pub sealed: &'a str,
    /// Unix ms.
    pub now: i64,
}

/// `exchanging` → `active` with the sealed tokens.
pub async fn activate(db: &Db, binding_id: &str, a: &Activation<'_>) -> Result<()> {
    sqlx::query(
        "UPDATE bindings SET status = 'active', token_fingerprint = $2, user_login_id = $3, access_token_expires_at = $4, \
         refresh_token_expires_at = $5, sealed_pending = $6, updated_at = $7 WHERE binding_id = $1 AND status = 'exchanging'",
    )
    .bind(binding_id)
    .bind(a.token_fingerprint)
    .bind(a.user_login_id)
    .bind(a.access_token_expires_at)
    .bind(a.refresh_token_expires_at)
    .bind(a.sealed)
    .bind(a.now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// `exchanging` → `failed`.
pub async fn fail_exchange(db: &Db, binding_id: &str, reason: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE bindings SET status = 'failed', reason = $2, updated_at = $3 WHERE binding_id = $1 AND status = 'exchanging'",
    )
    .bind(binding_id)
    .bind(reason)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Ends a binding: `pending` → `expired`, or `active` → `status` (cancelled, revoked).
/// Forgets the sealed tokens. True when this call made the change.
pub async fn finish(
    db: &Db,
    binding_id: &str,
    status: BindingState,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let from = if status == BindingState::Expired {
        "'pending'"
    } else {
        "'active'"
    };
    let sql = format!(
        "UPDATE bindings SET status = $2, reason = $3, sealed_pending = NULL, updated_at = $4 WHERE binding_id = $1 AND status = {from}"
    );
    let done = sqlx::query(&sql)
        .bind(binding_id)
        .bind(status.as_str())
        .bind(reason)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets the pending sealed copy once the device has shown it holds it.
pub async fn forget_sealed(db: &Db, binding_id: &str, blob: &str) -> Result<()> {
    sqlx::query(
        "UPDATE bindings SET sealed_pending = NULL WHERE binding_id = $1 AND sealed_pending = $2",
    )
    .bind(binding_id)
    .bind(blob)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Stores refreshed tokens (a refresh token expiry of `None` keeps the old one).
pub async fn refresh(db: &Db, binding_id: &str, a: &Activation<'_>) -> Result<()> {
    sqlx::query(
        "UPDATE bindings SET token_fingerprint = $2, access_token_expires_at = $3, refresh_token_expires_at = COALESCE($4, refresh_token_expires_at), \
         sealed_pending = $5, updated_at = $6 WHERE binding_id = $1",
    )
    .bind(binding_id)
    .bind(a.token_fingerprint)
    .bind(a.access_token_expires_at)
    .bind(a.refresh_token_expires_at)
    .bind(a.sealed)
    .bind(a.now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// `active` → `revoked` by the device; forgets the tokens.
pub async fn revoke(db: &Db, binding_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE bindings SET status = 'revoked', reason = 'revoked by the device', sealed_pending = NULL, token_fingerprint = NULL, updated_at = $2 \
         WHERE binding_id = $1 AND status = 'active'",
    )
    .bind(binding_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A token exchange cut short by a crash (not updated since `before`): the binding waits
/// again for Alipay's resent notification.
pub async fn reset_stale_exchanges(db: &Db, before: i64) -> Result<()> {
    sqlx::query(
        "UPDATE bindings SET status = 'pending' WHERE status = 'exchanging' AND updated_at < $1",
    )
    .bind(before)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Up to 50 `pending` bindings whose QR code expired by `now`.
pub async fn expired_pending(db: &Db, now: i64) -> Result<Vec<BindingRow>> {
    let sql = format!(
        "SELECT {BINDING_COLUMNS} FROM bindings WHERE status = 'pending' AND expires_at <= $1 LIMIT 50"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(db.pool()).await?;
    rows.iter().map(BindingRow::from_row).collect()
}
