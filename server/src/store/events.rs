//! `events`: the device event log, and the PostgreSQL `NOTIFY` / `LISTEN` that wakes
//! streams on other replicas.

use sqlx::Row;

use super::error::Result;
use super::{Backend, Db};

/// One stored event.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Per-table sequence number.
    pub seq: i64,
    /// The event kind.
    pub kind: String,
    /// The event JSON (empty where not selected).
    pub payload: String,
    /// Unix ms.
    pub created_at: i64,
}

/// Stores an event inside the caller's transaction and returns its sequence number.
///
/// Streams read `seq > last delivered`, so per device, events must become visible in
/// sequence order. SQLite has one writer at a time, so they do. On PostgreSQL a
/// BIGSERIAL value is taken at insert but seen at commit: two transactions for one
/// device could commit out of order and a stream would skip the earlier one. A
/// transaction-scoped advisory lock per device makes the second wait until the first
/// has committed before it draws its sequence number.
pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    device_id: &str,
    kind: &str,
    payload: &str,
    now: i64,
) -> Result<i64> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(device_id)
            .execute(&mut *conn)
            .await?;
    }
    let row = sqlx::query(
        "INSERT INTO events (device_id, kind, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING seq",
    )
    .bind(device_id)
    .bind(kind)
    .bind(payload)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("seq")?)
}

/// On PostgreSQL, queues `pg_notify(channel, device_id)` inside the caller's
/// transaction (delivered at commit); nothing on SQLite.
pub async fn notify_in(
    conn: &mut sqlx::AnyConnection,
    channel: &str,
    device_id: &str,
) -> Result<()> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(device_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// On PostgreSQL, `pg_notify(channel, device_id)` now; nothing on SQLite.
pub async fn notify(db: &Db, channel: &str, device_id: &str) -> Result<()> {
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(device_id)
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

/// Events of `device_id` after `after`, oldest first, at most `limit`.
pub async fn after(db: &Db, device_id: &str, after: i64, limit: i64) -> Result<Vec<EventRow>> {
    let rows = sqlx::query(
        "SELECT seq, payload, created_at FROM events WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(device_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EventRow {
                seq: r.try_get("seq")?,
                kind: String::new(),
                payload: r.try_get("payload")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// The newest sequence number of `device_id` (0 if none).
pub async fn latest(db: &Db, device_id: &str) -> Result<i64> {
    let r = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM events WHERE device_id = $1")
        .bind(device_id)
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get("m")?)
}

/// The events of `device_id` that name `payment_id` (`"paymentId":"<id>"` in the
/// payload), in order; `payload` is left empty.
pub async fn naming_payment(db: &Db, device_id: &str, payment_id: &str) -> Result<Vec<EventRow>> {
    let rows = sqlx::query(
        "SELECT seq, kind, created_at FROM events WHERE device_id = $1 AND payload LIKE $2 ESCAPE '\\' ORDER BY seq",
    )
    .bind(device_id)
    .bind(format!("%\"paymentId\":\"{}\"%", super::like_escape(payment_id)))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EventRow {
                seq: r.try_get("seq")?,
                kind: r.try_get("kind")?,
                payload: String::new(),
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// On PostgreSQL, a `LISTEN` connection on `channel`; `None` on SQLite.
pub async fn listen(db: &Db, channel: &str) -> Result<Option<sqlx::postgres::PgListener>> {
    if db.backend() != Backend::Postgres {
        return Ok(None);
    }
    let mut listener = sqlx::postgres::PgListener::connect(db.url()).await?;
    listener.listen(channel).await?;
    Ok(Some(listener))
}
