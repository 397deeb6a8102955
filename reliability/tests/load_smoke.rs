//! Issue 10 §5 in the short run: the load generator's engine with a few devices for a
//! few seconds, on SQLite with one server and on PostgreSQL with two replicas. Every
//! payment succeeds, every result reaches its device's event stream, no double charge.
//! The full run (1,000 devices for 60 s) is `scripts/reliability` with the
//! `scanbind-load` binary; its figures are in docs/reliability.md.

use std::time::Duration;

use scanbind_reliability::load::{LoadPlan, run};
use scanbind_reliability::world::{self, World};

async fn smoke(postgres: bool, replicas: usize, devices: usize) {
    let world = World::new(
        world::options()
            .database(world::database(postgres))
            .time_scale(0.001),
    )
    .await;
    let servers: Vec<_> = (0..replicas)
        .map(|_| world.spawn_server_logged(&[], "warn"))
        .collect();
    let plan = LoadPlan {
        devices,
        duration: Duration::from_secs(3),
        drain: Duration::from_secs(30),
    };
    let db = if postgres { "postgres" } else { "sqlite" };
    let report = run(&world, &servers, &plan, db).await.unwrap();
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    assert!(report.succeeded >= devices as u64, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.lost_notifications, 0, "{report:?}");
    assert_eq!(report.double_charges, 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_few_devices_on_sqlite() {
    smoke(false, 1, 20).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_few_devices_on_postgresql_with_two_replicas() {
    smoke(true, 2, 20).await;
}
