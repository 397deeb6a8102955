//! Device events: written to the `events` table, then fanned out at once.
//!
//! A stream never misses an event: it subscribes to the wake-up channel first, then reads
//! the table from the last sequence number it delivered, and reads again on every
//! wake-up. The wake-up carries only the device id. Within one process it is a tokio
//! broadcast channel; on PostgreSQL every replica also `LISTEN`s on `scanbind_events`
//! and every emit does `pg_notify`, so an event raised on replica A wakes a stream held
//! on replica B. Nothing polls on a timer.

use scanbind_device_api::types::{Event, EventEnvelope};
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

use crate::error::Result;
use crate::store::{self, Db};
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
        let mut tx = self.db.begin().await?;
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
        // Per device, events become visible in sequence order: see `store::events::insert`.
        let seq = store::events::insert(conn, device_id, event.kind(), &payload, now_ms()).await?;
        debug!(device = device_id, seq, kind = event.kind(), "event stored");
        Ok(seq)
    }

    /// On PostgreSQL, queues the cross-replica wake-up inside the caller's transaction
    /// (`pg_notify` is delivered at commit, so no extra round trip and never before the
    /// event is visible); call [`EventHub::wake_local`] after the commit.
    pub async fn notify_in(conn: &mut sqlx::AnyConnection, device_id: &str) -> Result<()> {
        Ok(store::events::notify_in(conn, CHANNEL, device_id).await?)
    }

    /// Wakes the streams of `device_id` in this process only.
    pub fn wake_local(&self, device_id: &str) {
        let _ = self.tx.send(device_id.to_owned());
    }

    /// Wakes the streams of `device_id` on every replica.
    pub async fn wake(&self, device_id: &str) {
        let _ = self.tx.send(device_id.to_owned());
        if let Err(e) = store::events::notify(&self.db, CHANNEL, device_id).await {
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
        let rows = store::events::after(&self.db, device_id, after, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let Ok(event) = serde_json::from_str::<Event>(&r.payload) else {
                continue;
            };
            out.push(EventEnvelope {
                seq: r.seq,
                created_at: rfc3339(r.created_at),
                event,
            });
        }
        Ok(out)
    }

    /// The newest sequence number of `device_id` (0 if none).
    pub async fn latest(&self, device_id: &str) -> Result<i64> {
        Ok(store::events::latest(&self.db, device_id).await?)
    }

    /// On PostgreSQL, starts the `LISTEN` task that relays other replicas' wake-ups.
    pub async fn start_listener(&self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let Some(mut listener) = store::events::listen(&self.db, CHANNEL).await? else {
            return Ok(());
        };
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
