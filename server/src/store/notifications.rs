//! `notifications`: the de-duplication record of AMS notifications (unique
//! `(kind, dedup_key)`).

use sqlx::Row;

use super::Db;
use super::error::Result;

/// One recorded notification.
#[derive(Debug, Clone)]
pub struct NotificationRow {
    /// `authorization`, `payment`, `refund`.
    pub kind: String,
    /// The de-dup key.
    pub dedup_key: String,
    /// Unix ms.
    pub received_at: i64,
}

/// Records a notification on the relaxed pool (D19), taking the writer turn: false if
/// it was already recorded.
pub async fn record(db: &Db, kind: &str, key: &str, now: i64) -> Result<bool> {
    let turn = db.write_turn().await;
    let r = sqlx::query(
        "INSERT INTO notifications (kind, dedup_key, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(kind)
    .bind(key)
    .bind(now)
    .execute(db.relaxed())
    .await?;
    drop(turn);
    Ok(r.rows_affected() == 1)
}

/// Forgets a record (processing failed, so Alipay's resend is processed).
pub async fn release(db: &Db, kind: &str, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM notifications WHERE kind = $1 AND dedup_key = $2")
        .bind(kind)
        .bind(key)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The notifications whose de-dup key starts with `<id>:` (an Alipay payment or refund
/// id), oldest first.
pub async fn about(db: &Db, id: &str) -> Result<Vec<NotificationRow>> {
    let rows = sqlx::query(
        "SELECT kind, dedup_key, received_at FROM notifications WHERE dedup_key LIKE $1 ESCAPE '\\' ORDER BY received_at",
    )
    .bind(format!("{}:%", super::like_escape(id)))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(NotificationRow {
                kind: r.try_get("kind")?,
                dedup_key: r.try_get("dedup_key")?,
                received_at: r.try_get("received_at")?,
            })
        })
        .collect()
}
