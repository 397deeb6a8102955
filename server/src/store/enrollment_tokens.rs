//! `enrollment_tokens`: per-device, single-use registration tokens (the secret only as
//! a hash). A token is consumed by the conditional `UPDATE` of [`enroll`], in the same
//! transaction as the device's row, so of two registrations presenting one token
//! exactly one wins.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Db;
use super::error::Result;

/// An enrollment token as stored (never the secret).
#[derive(Debug, Clone)]
pub struct EnrollmentTokenRow {
    /// Public id.
    pub token_id: String,
    /// The operator's label.
    pub label: Option<String>,
    /// The operator key that issued it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; `None`: never expires.
    pub expires_at: Option<i64>,
    /// Unix ms.
    pub revoked_at: Option<i64>,
    /// Unix ms.
    pub used_at: Option<i64>,
    /// The device that consumed it.
    pub used_by: Option<String>,
}

const COLUMNS: &str =
    "token_id, label, created_by, created_at, expires_at, revoked_at, used_at, used_by";

impl EnrollmentTokenRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(EnrollmentTokenRow {
            token_id: r.try_get("token_id")?,
            label: r.try_get("label")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            revoked_at: r.try_get("revoked_at")?,
            used_at: r.try_get("used_at")?,
            used_by: r.try_get("used_by")?,
        })
    }
}

/// Inserts a token.
pub async fn insert(
    db: &Db,
    token_id: &str,
    secret_hash: &str,
    label: Option<&str>,
    created_by: &str,
    created_at: i64,
    expires_at: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO enrollment_tokens (token_id, secret_hash, label, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_id)
    .bind(secret_hash)
    .bind(label)
    .bind(created_by)
    .bind(created_at)
    .bind(expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Every token, oldest first.
pub async fn list(db: &Db) -> Result<Vec<EnrollmentTokenRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM enrollment_tokens ORDER BY created_at, token_id"
    ))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(EnrollmentTokenRow::from_row).collect()
}

/// One token with its secret hash.
pub async fn with_secret(db: &Db, token_id: &str) -> Result<Option<(EnrollmentTokenRow, String)>> {
    let Some(row) = sqlx::query(&format!(
        "SELECT {COLUMNS}, secret_hash FROM enrollment_tokens WHERE token_id = $1"
    ))
    .bind(token_id)
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    let hash: String = row.try_get("secret_hash")?;
    Ok(Some((EnrollmentTokenRow::from_row(&row)?, hash)))
}

/// Revokes a token (idempotent; the first revocation time stays). False when there is
/// no such token.
pub async fn revoke(db: &Db, token_id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE enrollment_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE token_id = $1",
    )
    .bind(token_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A new device to register with [`enroll`].
#[derive(Debug, Clone, Copy)]
pub struct NewDevice<'a> {
    /// Its id (derived from the key).
    pub device_id: &'a str,
    /// Its public key (base64url).
    pub public_key: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its model.
    pub model: &'a str,
}

/// Consumes token `token_id` for `device` and registers the device, in one durable
/// transaction. The token is taken only when `secret_hash` matches, it is neither
/// revoked nor expired at `now`, and it is unused or was used by this very device (a
/// retried registration). False (and nothing changed) otherwise; the caller reads
/// the row to say why.
pub async fn enroll(
    db: &Db,
    token_id: &str,
    secret_hash: &str,
    device: NewDevice<'_>,
    now: i64,
) -> Result<bool> {
    let mut tx = db.begin_durable().await?;
    let taken = sqlx::query(
        "UPDATE enrollment_tokens SET used_at = COALESCE(used_at, $3), used_by = $4 \
         WHERE token_id = $1 AND secret_hash = $2 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $3) AND (used_by IS NULL OR used_by = $4)",
    )
    .bind(token_id)
    .bind(secret_hash)
    .bind(now)
    .bind(device.device_id)
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO devices (device_id, public_key, name, model, registered_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(device.device_id)
    .bind(device.public_key)
    .bind(device.name)
    .bind(device.model)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
