//! The engine's queue: what is due, leases (`UPDATE ... WHERE lease_until < now`, so two
//! replicas never drive one row at once), re-scheduling, and recovery at start.

use sqlx::Row;

use super::Db;
use super::error::Result;

/// A table the engine drives row by row under a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// `payments`, keyed by `payment_id`.
    Payments,
    /// `refunds`, keyed by `refund_request_id`.
    Refunds,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::Payments => "payments",
            Queue::Refunds => "refunds",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Queue::Payments => "payment_id",
            Queue::Refunds => "refund_request_id",
        }
    }
}

/// How many rows recovery made due.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recovered {
    /// Payments whose AMS call was in flight.
    pub payments: u64,
    /// Refunds never tried by the engine.
    pub refunds: u64,
    /// Unfinished checkouts.
    pub checkouts: u64,
}

/// At start: payments whose call was in flight and refunds never tried are due at
/// `now`; unfinished checkouts are due at `now` and a lease not held by `instance` is
/// void.
pub async fn recover(db: &Db, now: i64, instance: &str) -> Result<Recovered> {
    let p = sqlx::query("UPDATE payments SET next_action_at = $1 WHERE status = 'pending' AND stage = 'sending' AND next_action_at > $1")
        .bind(now)
        .execute(db.pool())
        .await?;
    let r = sqlx::query("UPDATE refunds SET next_action_at = $1 WHERE status = 'pending' AND attempts = 0 AND next_action_at > $1")
        .bind(now)
        .execute(db.pool())
        .await?;
    let c = sqlx::query(
        "UPDATE checkouts SET next_action_at = $1, lease_owner = NULL, lease_until = 0 WHERE status IN ('paying', 'reversing') \
         AND (lease_owner IS NULL OR lease_owner <> $2)",
    )
    .bind(now)
    .bind(instance)
    .execute(db.pool())
    .await?;
    Ok(Recovered {
        payments: p.rows_affected(),
        refunds: r.rows_affected(),
        checkouts: c.rows_affected(),
    })
}

/// Up to 20 pending payments due at `now` and not leased, earliest first.
pub async fn due_payments(db: &Db, now: i64) -> Result<Vec<String>> {
    let due = sqlx::query("SELECT payment_id FROM payments WHERE status = 'pending' AND next_action_at <= $1 AND lease_until < $1 ORDER BY next_action_at LIMIT 20")
        .bind(now)
        .fetch_all(db.pool())
        .await?;
    due.iter().map(|r| Ok(r.try_get("payment_id")?)).collect()
}

/// Up to 20 pending refunds due at `now` and not leased, earliest first.
pub async fn due_refunds(db: &Db, now: i64) -> Result<Vec<String>> {
    let due = sqlx::query("SELECT refund_request_id FROM refunds WHERE status = 'pending' AND next_action_at <= $1 AND lease_until < $1 ORDER BY next_action_at LIMIT 20")
        .bind(now)
        .fetch_all(db.pool())
        .await?;
    due.iter()
        .map(|r| Ok(r.try_get("refund_request_id")?))
        .collect()
}

/// Up to 20 unfinished checkouts due at `now` and not leased, earliest first.
pub async fn due_checkouts(db: &Db, now: i64) -> Result<Vec<String>> {
    let due = sqlx::query("SELECT checkout_id FROM checkouts WHERE status IN ('paying', 'reversing') AND next_action_at <= $1 AND lease_until < $1 ORDER BY next_action_at LIMIT 20")
        .bind(now)
        .fetch_all(db.pool())
        .await?;
    due.iter().map(|r| Ok(r.try_get("checkout_id")?)).collect()
}

/// The earliest due time of any unfinished work (payments, refunds, checkouts, binding
/// QR expiry).
pub async fn next_due(db: &Db) -> Result<Option<i64>> {
    let next = sqlx::query(
        "SELECT MIN(t) AS t FROM (SELECT MIN(next_action_at) AS t FROM payments WHERE status = 'pending' \
         UNION ALL SELECT MIN(next_action_at) AS t FROM refunds WHERE status = 'pending' \
         UNION ALL SELECT MIN(next_action_at) AS t FROM checkouts WHERE status IN ('paying', 'reversing') \
         UNION ALL SELECT MIN(expires_at) AS t FROM bindings WHERE status = 'pending') AS due",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(next.try_get::<Option<i64>, _>("t")?)
}

/// Takes the lease of a pending row for `owner` until `until`; false when another holds
/// it or it is final.
pub async fn lease(db: &Db, q: Queue, id: &str, owner: &str, until: i64, now: i64) -> Result<bool> {
    let (table, key) = (q.table(), q.key());
    let sql = format!(
        "UPDATE {table} SET lease_owner = $2, lease_until = $3 WHERE {key} = $1 AND status = 'pending' AND lease_until < $4"
    );
    let r = sqlx::query(&sql)
        .bind(id)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The engine attempts of a row so far.
pub async fn attempts(db: &Db, q: Queue, id: &str) -> Result<i64> {
    let (table, key) = (q.table(), q.key());
    Ok(
        sqlx::query(&format!("SELECT attempts FROM {table} WHERE {key} = $1"))
            .bind(id)
            .fetch_one(db.pool())
            .await?
            .try_get("attempts")?,
    )
}

/// A pending row is due again at `next`: one attempt more, lease given back.
pub async fn reschedule(db: &Db, q: Queue, id: &str, next: i64, now: i64) -> Result<()> {
    let (table, key) = (q.table(), q.key());
    let sql = format!(
        "UPDATE {table} SET attempts = attempts + 1, next_action_at = $2, lease_owner = NULL, lease_until = 0, updated_at = $3 WHERE {key} = $1 AND status = 'pending'"
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(next)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}
