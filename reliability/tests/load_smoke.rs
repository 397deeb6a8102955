//! Issue 10 §5 in the short run: the load generator's engine with a few devices for a
//! few seconds, on SQLite with one server and on PostgreSQL with two replicas. Every
//! payment succeeds, every result reaches its device's event stream, no double charge.
//! And issue 25 item 3, faults under load: the same on PostgreSQL with two replicas
//! while one replica is killed, PostgreSQL is killed and restarted, and notifications
//! are dropped and delayed; the documented outcome is the same (every payment
//! succeeds, nothing lost, missed or charged twice), and each fault is shown to fire.
//! The full runs (1,000 devices for 60 s) are `scripts/reliability` with the
//! `scanbind-load` binary; their figures are in docs/reliability.md.

use std::time::Duration;

use scanbind_reliability::load::{FaultPlan, LoadPlan, LoadReport, run};
use scanbind_reliability::world::{self, World};

async fn load(postgres: bool, replicas: usize, devices: usize, faults: FaultPlan) -> LoadReport {
    let world = World::new(
        world::options()
            .database(world::database(postgres))
            .time_scale(0.001),
    )
    .await;
    let mut servers: Vec<_> = (0..replicas)
        .map(|_| world.spawn_server_logged(&[], "warn"))
        .collect();
    let plan = LoadPlan {
        devices,
        duration: Duration::from_secs(if faults.any() { 8 } else { 3 }),
        // Payments a killed replica held are taken over when its lease (60 s) ends.
        drain: Duration::from_secs(if faults.any() { 150 } else { 30 }),
        faults,
    };
    let db = if postgres { "postgres" } else { "sqlite" };
    let report = run(&world, &mut servers, &plan, db).await.unwrap();
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    report
}

/// The outcome every run records: every payment started succeeded and its device heard
/// it, nothing was charged twice or for a payment the device does not count.
fn every_payment_succeeded_once(report: &LoadReport, devices: usize) {
    assert!(report.succeeded >= devices as u64, "{report:?}");
    assert_eq!(report.attempted, report.succeeded, "{report:?}");
    assert_eq!(
        (report.errors, report.failed, report.results_lost),
        (0, 0, 0),
        "{report:?}"
    );
    assert_eq!(
        (report.events_missed, report.lost_notifications),
        (0, 0),
        "{report:?}"
    );
    assert_eq!(
        (report.double_charges, report.charged_not_succeeded),
        (0, 0),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_few_devices_on_sqlite() {
    let report = load(false, 1, 20, FaultPlan::default()).await;
    every_payment_succeeded_once(&report, 20);
    assert!(report.faults_fired.is_empty(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_few_devices_on_postgresql_with_two_replicas() {
    let report = load(true, 2, 20, FaultPlan::default()).await;
    every_payment_succeeded_once(&report, 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_under_load_on_postgresql_with_two_replicas() {
    let faults = FaultPlan {
        kill_replica_at: Some(Duration::from_secs(2)),
        restart_postgres_at: Some(Duration::from_secs(4)),
        notifications: 10,
    };
    let report = load(true, 2, 30, faults).await;
    // Each fault fired where the plan says.
    let fired = &report.faults_fired;
    assert_eq!(fired.len(), 3, "{fired:?}");
    assert!(
        fired[0].contains("killed replica 1") && fired[0].ends_with("exited"),
        "{fired:?}"
    );
    assert!(
        fired[1].contains("killed PostgreSQL") && fired[1].contains("started it again"),
        "{fired:?}"
    );
    assert!(
        fired[2].ends_with("0 armed notification faults left unfired")
            && !fired[2].starts_with("notifications: 0 dropped"),
        "{fired:?}"
    );
    // The devices of the killed replica moved: requests were retried and streams
    // reopened.
    assert!(report.retries > 0 && report.reconnects > 0, "{report:?}");
    every_payment_succeeded_once(&report, 30);
}
