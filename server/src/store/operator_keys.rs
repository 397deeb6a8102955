//! `operator_keys`: back-office API keys (the secret only as a hash).

use sqlx::Row;

use super::Db;
use super::error::Result;
use super::rows::OperatorKeyRow;
use super::status::Scope;

/// Inserts a key.
pub async fn insert(
    db: &Db,
    key_id: &str,
    name: &str,
    scope: Scope,
    secret_hash: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO operator_keys (key_id, name, scope, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key_id)
    .bind(name)
    .bind(scope.as_str())
    .bind(secret_hash)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Every key, oldest first.
pub async fn list(db: &Db) -> Result<Vec<OperatorKeyRow>> {
    let rows = sqlx::query("SELECT key_id, name, scope, created_at, last_used_at, revoked_at FROM operator_keys ORDER BY created_at, key_id")
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(OperatorKeyRow::from_row).collect()
}

/// Revokes a key (idempotent). False when there is no such key.
pub async fn revoke(db: &Db, key_id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE operator_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE key_id = $1",
    )
    .bind(key_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A key with its secret hash.
pub async fn with_secret(db: &Db, key_id: &str) -> Result<Option<(OperatorKeyRow, String)>> {
    let Some(row) = sqlx::query("SELECT key_id, name, scope, secret_hash, created_at, last_used_at, revoked_at FROM operator_keys WHERE key_id = $1")
        .bind(key_id)
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(None);
    };
    let hash: String = row.try_get("secret_hash")?;
    Ok(Some((OperatorKeyRow::from_row(&row)?, hash)))
}

/// Records an accepted use.
pub async fn touch(db: &Db, key_id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE operator_keys SET last_used_at = $2 WHERE key_id = $1")
        .bind(key_id)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}
