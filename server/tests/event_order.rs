//! Events of one device become visible in sequence order on PostgreSQL.
//!
//! Streams read `seq > last delivered`; if a later sequence number could commit before an
//! earlier one, a stream would skip the earlier event. This test holds one writer's
//! transaction open and checks that a second writer for the same device waits for it
//! (seen in `pg_locks`, not by timing), that a writer for another device does not, and
//! that the sequence order equals the commit order.

mod common;

use scanbind_device_api::types::Event;
use scanbind_server::db::Db;
use scanbind_server::events::EventHub;
use serde_json::json;
use sqlx::Row;

fn event(binding: &str) -> Event {
    serde_json::from_value(json!({"type": "binding.expired", "data": {
        "bindingId": binding, "wallet": "ALIPAY_HK", "status": "expired", "createdAt": "2026-01-01T00:00:00Z"
    }}))
    .unwrap()
}

async fn waiting_on_advisory_locks(db: &Db) -> i64 {
    sqlx::query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_device_events_commit_in_sequence_order_on_postgres() {
    let pg = common::PgCluster::start_throwaway().unwrap();
    let db = Db::connect(&pg.url, 4).await.unwrap();
    let hub = EventHub::new(db.clone());

    let mut first = db.pool().begin().await.unwrap();
    let seq1 = EventHub::insert(&mut first, "dev_order", &event("bnd_1"))
        .await
        .unwrap();

    let second_hub = EventHub::new(db.clone());
    let second =
        tokio::spawn(async move { second_hub.emit("dev_order", &event("bnd_2")).await.unwrap() });
    common::eventually("the second writer to wait on the device's lock", || async {
        waiting_on_advisory_locks(&db).await == 1
    })
    .await;

    // Another device is not held up by the open transaction.
    let other = hub.emit("dev_other", &event("bnd_3")).await.unwrap();
    assert!(other > seq1);
    assert!(
        !second.is_finished(),
        "the second writer must wait for the first to commit"
    );

    first.commit().await.unwrap();
    let seq2 = second.await.unwrap();
    assert!(
        seq2 > seq1,
        "sequence order must equal commit order ({seq1} then {seq2})"
    );
    assert_eq!(waiting_on_advisory_locks(&db).await, 0);

    let seqs: Vec<i64> =
        sqlx::query("SELECT seq FROM events WHERE device_id = 'dev_order' ORDER BY seq")
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("seq").unwrap())
            .collect();
    assert_eq!(seqs, vec![seq1, seq2]);
}
