//! `devices` and `seen_nonces`: registered device keys and the replay guard.

use super::Db;
use super::error::Result;
use super::rows::DeviceRow;

/// Registers a device; false when the id is registered already.
pub async fn insert(
    db: &Db,
    device_id: &str,
    public_key: &str,
    name: &str,
    model: &str,
    now: i64,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO devices (device_id, public_key, name, model, registered_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(device_id)
    .bind(public_key)
    .bind(name)
    .bind(model)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Renames a registered device.
pub async fn rename(db: &Db, device_id: &str, name: &str, model: &str) -> Result<()> {
    sqlx::query("UPDATE devices SET name = $2, model = $3 WHERE device_id = $1")
        .bind(device_id)
        .bind(name)
        .bind(model)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A registered device.
pub async fn load(db: &Db, device_id: &str) -> Result<Option<DeviceRow>> {
    let row = sqlx::query(
        "SELECT device_id, public_key, name, model, registered_at FROM devices WHERE device_id = $1",
    )
    .bind(device_id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(DeviceRow::from_row).transpose()
}

/// Records a request nonce; false when `(device, nonce)` was seen before (a replay).
///
/// On the relaxed pool (D19): a request that changes anything commits durably after
/// this, and that commit's flush carries the nonce to disk before any answer.
pub async fn record_nonce(db: &Db, device_id: &str, nonce: &str, expires_at: i64) -> Result<bool> {
    let turn = db.write_turn().await;
    let inserted = sqlx::query(
        "INSERT INTO seen_nonces (device_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(device_id)
    .bind(nonce)
    .bind(expires_at)
    .execute(db.relaxed())
    .await?;
    drop(turn);
    Ok(inserted.rows_affected() == 1)
}

/// Forgets nonces past their expiry.
pub async fn delete_expired_nonces(db: &Db, now: i64) -> Result<()> {
    sqlx::query("DELETE FROM seen_nonces WHERE expires_at < $1")
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}
