//! Device events: written to the `events` table, then fanned out at once.
//!
//! A stream never misses an event: it subscribes to the wake-up channel first, then reads
//! the table from the last sequence number it delivered, and reads again on every
//! wake-up. The wake-up carries only the device id. Within one process it is a tokio
//! broadcast channel; on PostgreSQL every replica also `LISTEN`s on `scanbind_events`
//! and every emit does `pg_notify`, so an event raised on replica A wakes a stream held
//! on replica B. Nothing polls on a timer.

use scanbind_device_api::types::{Event, EventEnvelope};
use sqlx::Row;
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

use crate::error::Result;
use crate::store::{Backend, Db};
use crate::util::{now_ms, rfc3339};

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "scanbind_events";

/// Fan-out of "device X has new events".
#[derive(Debug)]
pub struct EventHub {
    db: Db,
    // broadcast: every open stream gets every wake-up and filters by device id; a lagging
    // receiver just re-reads the table, so dropped wake-ups lose nothing.
    tx: broadcast::Sender<String>,
}

impl EventHub {
    /// A hub over `db`.
    pub fn new(db: Db) -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventHub { db, tx }
    }

    /// Subscribes to wake-ups (do this before reading the table).
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    /// Stores an event for `device_id` and wakes its streams on every replica.
    pub async fn emit(&self, device_id: &str, event: &Event) -> Result<i64> {
        // In its own transaction so that, on PostgreSQL, the per-device lock taken by
        // `insert` is held until this event has committed.
        let mut tx = self.db.pool().begin().await?;
        let seq = Self::insert(&mut tx, device_id, event).await?;
        tx.commit().await?;
        self.wake(device_id).await;
        Ok(seq)
    }

    /// Stores an event inside the caller's transaction (so a state change and its event
    /// commit together); call [`EventHub::wake`] after the commit.
    pub async fn insert(
        conn: &mut sqlx::AnyConnection,
        device_id: &str,
        event: &Event,
    ) -> Result<i64> {
        let payload = serde_json::to_string(event).unwrap_or_default();
        // Streams read `seq > last delivered`, so per device, events must become visible
        // in sequence order. SQLite has one writer at a time, so they do. On PostgreSQL
        // a BIGSERIAL value is taken at insert but seen at commit: two transactions for
        // one device could commit out of order and a stream would skip the earlier one.
        // A transaction-scoped advisory lock per device makes the second wait until the
        // first has committed before it draws its sequence number.
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
        .bind(event.kind())
        .bind(payload)
        .bind(now_ms())
        .fetch_one(&mut *conn)
        .await?;
        let seq: i64 = row.try_get("seq")?;
        debug!(device = device_id, seq, kind = event.kind(), "event stored");
        Ok(seq)
    }

    /// On PostgreSQL, queues the cross-replica wake-up inside the caller's transaction
    /// (`pg_notify` is delivered at commit, so no extra round trip and never before the
    /// event is visible); call [`EventHub::wake_local`] after the commit.
    pub async fn notify_in(conn: &mut sqlx::AnyConnection, device_id: &str) -> Result<()> {
        if conn.backend_name() == "PostgreSQL" {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(device_id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Wakes the streams of `device_id` in this process only.
    pub fn wake_local(&self, device_id: &str) {
        let _ = self.tx.send(device_id.to_owned());
    }

    /// Wakes the streams of `device_id` on every replica.
    pub async fn wake(&self, device_id: &str) {
        let _ = self.tx.send(device_id.to_owned());
        if self.db.backend() == Backend::Postgres
            && let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(device_id)
                .execute(self.db.pool())
                .await
        {
            warn!(cause = %e, "pg_notify failed; other replicas learn on their next wake-up");
        }
    }

    /// Events of `device_id` after `after`, oldest first, at most `limit`.
    pub async fn fetch(
        &self,
        device_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventEnvelope>> {
        let rows = sqlx::query(
            "SELECT seq, payload, created_at FROM events WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(device_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let payload: String = r.try_get("payload")?;
            let Ok(event) = serde_json::from_str::<Event>(&payload) else {
                continue;
            };
            out.push(EventEnvelope {
                seq: r.try_get("seq")?,
                created_at: rfc3339(r.try_get("created_at")?),
                event,
            });
        }
        Ok(out)
    }

    /// The newest sequence number of `device_id` (0 if none).
    pub async fn latest(&self, device_id: &str) -> Result<i64> {
        let r = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM events WHERE device_id = $1")
            .bind(device_id)
            .fetch_one(self.db.pool())
            .await?;
        Ok(r.try_get("m")?)
    }

    /// On PostgreSQL, starts the `LISTEN` task that relays other replicas' wake-ups.
    pub async fn start_listener(&self, mut stop: watch::Receiver<bool>) -> Result<()> {
        if self.db.backend() != Backend::Postgres {
            return Ok(());
        }
        let mut listener = sqlx::postgres::PgListener::connect(self.db.url()).await?;
        listener.listen(CHANNEL).await?;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|v| *v) => break,
                    n = listener.recv() => match n {
                        Ok(n) => { let _ = tx.send(n.payload().to_owned()); }
                        Err(e) => {
                            // PgListener reconnects on the next recv; wake everyone so
                            // streams re-read what they may have missed meanwhile.
                            warn!(cause = %e, "LISTEN connection lost; reconnecting");
                            let _ = tx.send(String::new());
                        }
                    },
                }
            }
        });
        Ok(())
    }
}
