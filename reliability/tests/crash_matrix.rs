//! Issue 10 §1, the crash matrix: `kill -9` of the `scanbind-server` process, of
//! `scanbindd`, or of the whole PostgreSQL cluster, at each step of
//! bind, pay and refund, then a restart. The steps are reached deterministically by
//! parking the flow with a sandbox fault and observing the wallet from outside, by the
//! server's own crash points (`SCANBIND_CRASH_AT`, its `test-util` build: pay recorded /
//! answered / settled, a combined checkout's part sent / reversal decided), and by
//! timed kills right after `Pay` returns.
//! After the restart: the app sees a final state, exactly the final state the wallet's
//! ledger agrees with (`succeeded` ⇔ money moved once), the payment is in the app's
//! unfinished list exactly once until it calls `Finish`, and never a second charge.
//! The daemon is a victim too: the same fault-parked and timed cells with `scanbindd`
//! killed instead of the server, and its own crash points (`SCANBINDD_CRASH_AT`:
//! before-journal, after-journal, after-send, after-settle) for one payment and for an
//! all-or-nothing checkout, after which the app pays the same order again.
//!
//! System mode (issue 21) has cells of its own: `scanbindd --system` started as the unit
//! starts it (as the `scanbind` user through `setpriv`, `CAP_SYS_PTRACE` only, its vault
//! credential in `$CREDENTIALS_DIRECTORY`) on a private system bus with the packaged
//! policy (`scanbind_testkit::system`), killed mid-payment by its own crash point
//! (`after-send`) and by `kill -9` while the wallet holds the answer, and restarted the
//! same way: charged once, the result delivered once. Those need no Secret Service.
//!
//! Runs per cell: 1 in `cargo test`, 50 with `SCANBIND_RELIABILITY_FULL=1`
//! (`scripts/reliability`); `SCANBIND_RELIABILITY_RUNS=N` overrides.
//! Needs `KEYRING_SS_TEST=1` and, for the PostgreSQL cells, `PG_BIN_DIR`.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::{GUARD, Rig, bind, eventually, require_secret_service, settle};
use futures_util::StreamExt as _;
use scanbind_ipc::{Binding1Proxy, Daemon1Proxy};
use scanbind_reliability::world::{self, World};
use serde_json::json;
use zbus::proxy::CacheProperties;

use scanbind_testkit::DaemonProc;
use scanbind_testkit::system::{SharedBinary, SystemBus, SystemLayout, SystemUsers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Server,
    Postgres,
    Daemon,
}

/// The sellers of the combined-checkout cells.
const SELLERS: [(&str, &str); 2] = [("SELLER_A", "Sofa Studio"), ("SELLER_B", "Map Workshop")];

async fn rig(victim: Victim) -> Rig {
    let world = World::new(
        world::options()
            .database(world::database(victim == Victim::Postgres))
            .time_scale(0.001)
            .sellers(&SELLERS),
    )
    .await;
    let rig = Rig::new(world, &[("SCANBIND_SERVER_AMS_ATTEMPT_TIMEOUT_MS", "3000")]).await;
    let d = rig.daemon1().await;
    bind(&rig.world, &rig.conn, &d).await;
    rig
}

/// `kill -9` of the victim, then its restart (same port, same database).
fn crash(rig: &mut Rig, victim: Victim) {
    match victim {
        Victim::Server => {
            rig.server.take().expect("a server").kill_9();
            rig.start_server();
        }
        Victim::Postgres => {
            let pg = rig.world.pg.as_ref().expect("a cluster");
            pg.kill_9().unwrap();
            pg.restart().unwrap();
        }
        Victim::Daemon => {
            // start_daemon drops (kill -9, SIGKILL) the running one first.
            rig.start_daemon(&[]);
        }
    }
}

/// What the after-restart checks need of a rig: the session-bus [`Rig`] or the
/// system-mode [`SystemRig`].
trait Scene {
    /// The world (sandbox ledger).
    fn world(&self) -> &World;
    /// The app's connection to the daemon's bus.
    fn conn(&self) -> &zbus::Connection;
    /// The tails of the logs, for failure messages.
    fn logs(&self) -> String;
    /// The running daemon, taken out (to wait for its exit or kill it).
    fn take_daemon(&mut self) -> Option<DaemonProc>;
    /// (Re)starts the daemon with extra environment (a crash point); the running one,
    /// if any, is killed first (SIGKILL).
    fn start_daemon(&mut self, env: &[(&str, &str)]);
    /// The daemon's interface on the app's connection.
    async fn daemon1(&self) -> Daemon1Proxy<'static> {
        Daemon1Proxy::new(self.conn()).await.unwrap()
    }
}

impl Scene for Rig {
    fn world(&self) -> &World {
        &self.world
    }
    fn conn(&self) -> &zbus::Connection {
        &self.conn
    }
    fn logs(&self) -> String {
        Rig::logs(self)
    }
    fn take_daemon(&mut self) -> Option<DaemonProc> {
        self.daemon.take()
    }
    fn start_daemon(&mut self, env: &[(&str, &str)]) {
        Rig::start_daemon(self, env);
    }
}

async fn ledger_ids(rig: &impl Scene) -> BTreeSet<String> {
    common::movements(&rig.world().ledger().await)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

async fn clear_faults(rig: &impl Scene) {
    let _ = rig
        .world()
        .http
        .delete(format!(
            "{}/sandbox/v1/faults",
            rig.world().sandbox.base_url()
        ))
        .send()
        .await;
}

/// Whether every armed call fault has fired (the parked call reached the wallet).
async fn faults_consumed(rig: &Rig) -> bool {
    let f = rig.world.control("/sandbox/v1/faults").await;
    f["calls"].as_array().is_some_and(Vec::is_empty)
}

/// The after-restart checks of one pay run: final state, ledger, delivered once.
async fn check_payment(
    rig: &impl Scene,
    cell: &str,
    before: &BTreeSet<String>,
    p: &zvariant::OwnedObjectPath,
    want: Option<&str>,
) -> String {
    let (payment, state) =
        tokio::time::timeout(GUARD - Duration::from_secs(5), settle(rig.conn(), p))
            .await
            .unwrap_or_else(|_| panic!("{cell}: not final after the restart\n{}", rig.logs()));
    let added: Vec<(String, String, i64)> = common::movements(&rig.world().ledger().await)
        .into_iter()
        .filter(|(id, _, _)| !before.contains(id))
        .collect();
    let moved: i64 = added.iter().map(|(_, _, m)| m).sum();
    assert!(
        added.len() <= 1,
        "{cell}: two AMS payments for one order: {added:?}"
    );
    match state.as_str() {
        "succeeded" => assert_eq!(moved, 1, "{cell}: charged {moved} times\n{}", rig.logs()),
        _ => assert_eq!(moved, 0, "{cell}: {state} but charged\n{}", rig.logs()),
    }
    if let Some(want) = want {
        assert_eq!(state, want, "{cell}\n{}", rig.logs());
    }
    // Delivered exactly once: in the unfinished list once, gone after Finish.
    let d = Daemon1Proxy::new(rig.conn()).await.unwrap();
    let mut unfinished = HashMap::new();
    unfinished.insert("unfinished", zvariant::Value::from(true));
    let open = d.list_payments(unfinished.clone()).await.unwrap();
    let mine = open.iter().filter(|x| &x.payment == p).count();
    if state != "succeeded" {
        assert_eq!(mine, 0, "{cell}: a {state} payment has nothing to deliver");
        return state;
    }
    assert_eq!(mine, 1, "{cell}: the result is to deliver exactly once");
    payment.finish(HashMap::new()).await.unwrap();
    let open = d.list_payments(unfinished).await.unwrap();
    assert!(
        open.iter().all(|x| &x.payment != p),
        "{cell}: still unfinished after Finish"
    );
    state
}

/// Pays `order` with the wallet's `fault` armed, waits until the wallet records the
/// payment, then `crash`es; after the restart the payment must end `succeeded`, charged
/// once and delivered once (the checks of [`check_payment`]).
async fn pay_recorded_then_crash<S: Scene>(
    rig: &mut S,
    cell: &str,
    fault: serde_json::Value,
    (order, amount): (&str, i64),
    crash: impl FnOnce(&mut S),
) -> String {
    let before = ledger_ids(rig).await;
    rig.world().arm_fault(fault).await;
    let d = rig.daemon1().await;
    common::wait_online(&d).await;
    let p = d
        .pay(order, amount, "HKD", "x", HashMap::new())
        .await
        .unwrap();
    eventually("the wallet to record the payment", || async {
        ledger_ids(rig).await.len() > before.len()
    })
    .await;
    crash(rig);
    let s = check_payment(rig, cell, &before, &p, Some("succeeded")).await;
    clear_faults(rig).await;
    s
}

/// Pay: the AMS call was sent and taken (money moved), its answer never comes; kill.
async fn pay_sent_processed(rig: &mut Rig, victim: Victim, run: usize) -> String {
    pay_recorded_then_crash(
        rig,
        &format!("{victim:?} pay ams-sent-processed #{run}"),
        json!({"endpoint":"pay","kind":"hang","processed":true}),
        (&format!("c1-{victim:?}-{run}"), 1000 + run as i64),
        |rig| crash(rig, victim),
    )
    .await
}

/// Pay: the AMS call reached the wallet but was not taken, no answer; kill.
async fn pay_sent_unprocessed(rig: &mut Rig, victim: Victim, run: usize) -> String {
    let cell = format!("{victim:?} pay ams-sent-unprocessed #{run}");
    let before = ledger_ids(rig).await;
    rig.world
        .arm_fault(json!({"endpoint":"pay","kind":"hang","processed":false}))
        .await;
    let d = rig.daemon1().await;
    common::wait_online(&d).await;
    let p = d
        .pay(
            &format!("c2-{victim:?}-{run}"),
            2000 + run as i64,
            "HKD",
            "x",
            HashMap::new(),
        )
        .await
        .unwrap();
    eventually("the pay call to reach the wallet", || faults_consumed(rig)).await;
    crash(rig, victim);
    let s = check_payment(rig, &cell, &before, &p, None).await;
    clear_faults(rig).await;
    s
}

/// Pay: the wallet answered PAYMENT_IN_PROCESS; the server is inquiring; kill.
async fn pay_in_process(rig: &mut Rig, victim: Victim, run: usize) -> String {
    pay_recorded_then_crash(
        rig,
        &format!("{victim:?} pay in-process #{run}"),
        json!({"endpoint":"pay","kind":"in_process","after_inquiries":3}),
        (&format!("c3-{victim:?}-{run}"), 3000 + run as i64),
        |rig| crash(rig, victim),
    )
    .await
}

/// Pay: a kill at a varying moment (0–45 ms) after `Pay` returned.
async fn pay_timed(rig: &mut Rig, victim: Victim, run: usize) -> String {
    let cell = format!("{victim:?} pay timed-kill #{run}");
    let before = ledger_ids(rig).await;
    let d = rig.daemon1().await;
    common::wait_online(&d).await;
    let p = d
        .pay(
            &format!("c4-{victim:?}-{run}"),
            4000 + run as i64,
            "HKD",
            "x",
            HashMap::new(),
        )
        .await
        .unwrap();
    // The one deliberate delay: it picks the kill moment, it does not wait for anything.
    tokio::time::sleep(Duration::from_millis((run as u64 * 7) % 46)).await;
    crash(rig, victim);
    check_payment(rig, &cell, &before, &p, None).await
}

/// Refund: the AMS refund was sent and taken, its answer never comes; kill.
async fn refund_sent_processed(
    rig: &mut Rig,
    victim: Victim,
    run: usize,
    base: &zvariant::OwnedObjectPath,
) -> String {
    let cell = format!("{victim:?} refund ams-sent-processed #{run}");
    let refunds = |l: &serde_json::Value| -> i64 {
        l["refunds"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["moneyMovements"].as_i64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    common::wait_online(&rig.daemon1().await).await;
    let moved_before = refunds(&rig.world.ledger().await);
    rig.world
        .arm_fault(json!({"endpoint":"refund","kind":"hang","processed":true}))
        .await;
    let payment = common::payment_proxy(&rig.conn, base).await;
    let rid = format!("cr-{victim:?}-{run}");
    let conn = rig.conn.clone();
    let (b, r) = (base.clone(), rid.clone());
    let call = tokio::spawn(async move {
        let payment = common::payment_proxy(&conn, &b).await;
        let mut o = HashMap::new();
        o.insert("refund-id", zvariant::Value::from(r.as_str()));
        payment.request_refund(1, "crash", o).await
    });
    eventually("the wallet to record the refund", || async {
        refunds(&rig.world.ledger().await) > moved_before
    })
    .await;
    crash(rig, victim);
    let first = tokio::time::timeout(GUARD, call)
        .await
        .expect("RequestRefund hung")
        .unwrap();
    // The app retries the same refund id until it is final.
    let mut state = String::new();
    tokio::time::timeout(GUARD, async {
        loop {
            let mut o = HashMap::new();
            o.insert("refund-id", zvariant::Value::from(rid.as_str()));
            match payment.request_refund(1, "crash", o).await {
                Ok((_, s)) if s == "succeeded" || s == "failed" => {
                    state = s;
                    return;
                }
                Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{cell}: the refund never settled (first answer {first:?})\n{}",
            rig.logs()
        )
    });
    let moved = refunds(&rig.world.ledger().await) - moved_before;
    assert_eq!(state, "succeeded", "{cell}");
    assert_eq!(moved, 1, "{cell}: refunded {moved} times");
    clear_faults(rig).await;
    state
}

/// A binding's state, read afresh (None while its object is not there).
async fn binding_state(
    conn: &zbus::Connection,
    path: &zvariant::OwnedObjectPath,
) -> Option<String> {
    let b = Binding1Proxy::builder(conn)
        .path(path.clone())
        .ok()?
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .ok()?;
    b.state().await.ok()
}

/// Bind: the user approved while the victim was down (the wallet's notification
/// retries reach the restarted server).
async fn bind_approved_while_down(rig: &mut Rig, victim: Victim, run: usize) -> String {
    let cell = format!("{victim:?} bind approved-while-down #{run}");
    let d: Daemon1Proxy<'_> = rig.daemon1().await;
    common::wait_online(&d).await;
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = Binding1Proxy::builder(&rig.conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut done = binding.receive_completed().await.unwrap();
    let code = binding.code_value().await.unwrap();
    match victim {
        Victim::Server => {
            rig.server.take().unwrap().kill_9();
            rig.world.scan(&code, "approve").await;
            rig.start_server();
        }
        Victim::Postgres => {
            let pg = rig.world.pg.as_ref().unwrap();
            pg.kill_9().unwrap();
            rig.world.scan(&code, "approve").await;
            pg.restart().unwrap();
        }
        Victim::Daemon => {
            rig.daemon = None;
            rig.world.scan(&code, "approve").await;
            rig.start_daemon(&[]);
        }
    }
    let state = if victim == Victim::Daemon {
        // The restarted daemon restores the binding from its journal and follows it to
        // its end; the signal of the dead one is gone, the state is what counts.
        let conn = &rig.conn;
        eventually("the binding to end after the daemon's restart", || async {
            binding_state(conn, &path)
                .await
                .is_some_and(|s| s != "pending")
        })
        .await;
        binding_state(conn, &path).await.unwrap_or_default()
    } else {
        let signal = tokio::time::timeout(GUARD, done.next())
            .await
            .unwrap_or_else(|_| panic!("{cell}: no Binding Completed\n{}", rig.logs()))
            .unwrap();
        signal.args().unwrap().state.to_string()
    };
    assert_eq!(state, "bound", "{cell}\n{}", rig.logs());
    // Back to one binding for the next run.
    common::unbind_approved(&rig.bus, &d, &path).await;
    state
}

/// Replaces the server by one that kills itself at `point` (`SCANBIND_CRASH_AT`).
fn arm_crash_point(rig: &mut Rig, point: &str) {
    rig.server.take().expect("a server").kill_9();
    let mut extra: Vec<(&str, &str)> = rig
        .server_extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    extra.push(("SCANBIND_CRASH_AT", point));
    rig.server = Some(rig.world.spawn_server_logged(&extra, "info"));
}

/// Waits for the armed server to reach its crash point and die, then restarts it.
fn crashed_then_restart(rig: &mut Rig, cell: &str) {
    let server = rig.server.take().expect("a server");
    let log = server.log.clone();
    let status = tokio::task::block_in_place(|| server.wait_exit());
    assert!(!status.success(), "{cell}: the server exited cleanly");
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        log.contains("crash point"),
        "{cell}: the server died elsewhere than its crash point:\n{log}"
    );
    rig.start_server();
}

/// Pay through a server that kills itself at `point`, then restarts on the same
/// database; `want`: the state the app must see (None: any final one that the ledger
/// agrees with).
async fn pay_crash_point(rig: &mut Rig, point: &str, want: Option<&str>, run: usize) -> String {
    let cell = format!("Server crash-point {point} #{run}");
    let before = ledger_ids(rig).await;
    arm_crash_point(rig, point);
    let d = rig.daemon1().await;
    common::wait_online(&d).await;
    let p = d
        .pay(
            &format!("cp-{point}-{run}"),
            5000 + run as i64,
            "HKD",
            "x",
            HashMap::new(),
        )
        .await
        .unwrap();
    crashed_then_restart(rig, &cell);
    check_payment(rig, &cell, &before, &p, want).await
}

/// The `sellers` option of `Pay` for these (seller, amount) parts.
fn sellers(parts: &[(&str, i64)]) -> zvariant::Value<'static> {
    use scanbind_ipc::types::keys::seller as k;
    let list: Vec<HashMap<String, zvariant::Value<'static>>> = parts
        .iter()
        .map(|(seller, amount)| {
            HashMap::from([
                (
                    k::SELLER.to_owned(),
                    zvariant::Value::from(seller.to_string()),
                ),
                (k::AMOUNT_MINOR.to_owned(), zvariant::Value::from(*amount)),
                (
                    k::DESCRIPTION.to_owned(),
                    zvariant::Value::from(format!("goods from {seller}")),
                ),
            ])
        })
        .collect();
    zvariant::Value::from(list)
}

/// The `Pay` options of an all-or-nothing checkout of these parts.
fn checkout_options(parts: &[(&str, i64)]) -> HashMap<&'static str, zvariant::Value<'static>> {
    use scanbind_ipc::types::keys;
    HashMap::from([
        (keys::pay::SELLERS, sellers(parts)),
        (keys::pay::ALL_OR_NOTHING, zvariant::Value::from(true)),
    ])
}

/// A combined all-or-nothing checkout through a server that kills itself at `point`;
/// after the restart the app sees `succeeded` with every part charged once, or
/// `failed` with nothing charged (every paid part reversed) — never half-paid.
async fn checkout_crash_point(
    rig: &mut Rig,
    point: &str,
    parts: &[(&str, i64)],
    run: usize,
) -> String {
    let cell = format!("Server checkout crash-point {point} #{run}");
    let before = ledger_ids(rig).await;
    arm_crash_point(rig, point);
    let d = rig.daemon1().await;
    common::wait_online(&d).await;
    let total: i64 = parts.iter().map(|(_, a)| a).sum();
    let p = d
        .pay(
            &format!("cc-{point}-{run}"),
            total,
            "HKD",
            "Basket",
            checkout_options(parts),
        )
        .await
        .unwrap();
    crashed_then_restart(rig, &cell);
    check_checkout(rig, &cell, &before, &p, parts).await
}

/// The after-restart checks of one all-or-nothing checkout: final, and either every
/// part charged once (`succeeded`) or nothing kept (`failed`); delivered once.
async fn check_checkout(
    rig: &impl Scene,
    cell: &str,
    before: &BTreeSet<String>,
    p: &zvariant::OwnedObjectPath,
    parts: &[(&str, i64)],
) -> String {
    let total: i64 = parts.iter().map(|(_, a)| a).sum();
    let (payment, state) =
        tokio::time::timeout(GUARD - Duration::from_secs(5), settle(rig.conn(), p))
            .await
            .unwrap_or_else(|_| panic!("{cell}: not final after the restart\n{}", rig.logs()));
    let ledger = rig.world().ledger().await;
    let added: Vec<&serde_json::Value> = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| !before.contains(x["paymentRequestId"].as_str().unwrap_or("")))
        .collect();
    let minor = |v: &serde_json::Value| -> i64 { v["value"].as_str().unwrap().parse().unwrap() };
    for x in &added {
        assert!(
            x["moneyMovements"].as_i64().unwrap_or(0) <= 1,
            "{cell}: a part charged twice: {x}"
        );
    }
    // What the wallet's user is out of pocket for this checkout.
    let net: i64 = added
        .iter()
        .filter(|x| x["moneyMovements"] == 1)
        .filter(|x| x["status"] == "SUCCESS" || x["status"] == "CANCELLED")
        .map(|x| {
            if x["status"] == "CANCELLED" {
                0
            } else {
                minor(&x["amount"]) - minor(&x["refunded"])
            }
        })
        .sum();
    match state.as_str() {
        "succeeded" => assert_eq!(net, total, "{cell}: succeeded but charged {net}: {ledger}"),
        "failed" => assert_eq!(net, 0, "{cell}: failed but {net} kept: {ledger}"),
        other => panic!(
            "{cell}: an all-or-nothing checkout ended {other}\n{}",
            rig.logs()
        ),
    }
    assert!(
        added.len() <= parts.len(),
        "{cell}: more AMS payments than parts: {ledger}"
    );
    // The result reaches the app once: listed unfinished until Finish when it succeeded.
    let d = rig.daemon1().await;
    let unfinished = HashMap::from([("unfinished", zvariant::Value::from(true))]);
    let mine = d
        .list_payments(unfinished)
        .await
        .unwrap()
        .iter()
        .filter(|x| &x.payment == p)
        .count();
    assert_eq!(
        mine,
        usize::from(state == "succeeded"),
        "{cell}: {state}, listed unfinished {mine} times"
    );
    if state == "succeeded" {
        payment.finish(HashMap::new()).await.unwrap();
    }
    state
}

/// The server's crash-point cells (`SCANBIND_CRASH_AT`), `runs` times each, on one rig.
async fn crash_point_cells(runs: usize) -> Vec<String> {
    let mut rig = rig(Victim::Server).await;
    let mut out = Vec::new();
    for run in 0..runs {
        for (point, want) in [
            ("pay-recorded", None),
            ("pay-answered", Some("succeeded")),
            ("pay-settled", Some("succeeded")),
        ] {
            out.push(format!(
                "crash-point {point}: {}",
                pay_crash_point(&mut rig, point, want, run).await
            ));
        }
        // A part paid, the next not sent: the restarted server has no tokens for it.
        out.push(format!(
            "checkout crash-point checkout-part-sent: {}",
            checkout_crash_point(
                &mut rig,
                "checkout-part-sent",
                &[("SELLER_A", 1000 + run as i64), ("SELLER_B", 1100)],
                run
            )
            .await
        ));
        // The second part fails (magic 9905, not enough balance): reversal decided.
        let failed = checkout_crash_point(
            &mut rig,
            "checkout-reversing",
            &[("SELLER_A", 1200 + run as i64), ("SELLER_B", 9905)],
            run,
        )
        .await;
        assert_eq!(failed, "failed", "a failing part fails the checkout");
        out.push(format!("checkout crash-point checkout-reversing: {failed}"));
    }
    no_double_charge(&rig).await;
    out
}

/// Waits for the armed daemon to reach its crash point and die, then restarts it.
fn daemon_crashed_then_restart(rig: &mut impl Scene, cell: &str, point: &str) {
    let mut daemon = rig.take_daemon().expect("a daemon");
    let status = tokio::task::block_in_place(|| daemon.wait_exit());
    assert!(!status.success(), "{cell}: the daemon exited cleanly");
    // The log file is shared by every start; this start's part is after the last header.
    let log = daemon.logs();
    let this_start = log.rsplit("--- scanbindd").next().unwrap_or_default();
    assert!(
        this_start.contains(&format!("crash point {point}")),
        "{cell}: the daemon died elsewhere than its crash point:\n{this_start}"
    );
    drop(daemon);
    rig.start_daemon(&[]);
}

/// Pays one order (or, with `parts`, an all-or-nothing checkout of two sellers) through
/// a daemon that kills itself at `point` (`SCANBINDD_CRASH_AT`); after the restart the
/// app pays the same order again, as it does after any error, and must get the same
/// payment, charged once (every part once) and delivered once. `who` names the daemon
/// in the cell (`Daemon`, `System daemon`).
async fn daemon_crash_point(
    rig: &mut impl Scene,
    who: &str,
    point: &str,
    parts: &[(&str, i64)],
    run: usize,
) -> String {
    let kind = if parts.is_empty() { "pay" } else { "checkout" };
    let cell = format!("{who} {kind} crash-point {point} #{run}");
    let before = ledger_ids(rig).await;
    rig.start_daemon(&[("SCANBINDD_CRASH_AT", point)]);
    let order = format!("cd-{kind}-{point}-{run}");
    let amount = if parts.is_empty() {
        6000 + run as i64
    } else {
        parts.iter().map(|(_, a)| a).sum()
    };
    let options = || {
        if parts.is_empty() {
            HashMap::new()
        } else {
            checkout_options(parts)
        }
    };
    let d = rig.daemon1().await;
    common::wait_online(&d).await;
    // The daemon dies at the crash point, before or after it answered.
    let first = d.pay(&order, amount, "HKD", "Basket", options()).await;
    daemon_crashed_then_restart(rig, &cell, point);
    let d = rig.daemon1().await;
    common::wait_online(&d).await;
    let p = d
        .pay(&order, amount, "HKD", "Basket", options())
        .await
        .unwrap_or_else(|e| panic!("{cell}: the retry was refused: {e}\n{}", rig.logs()));
    if let Ok(first) = first {
        assert_eq!(first, p, "{cell}: the same payment object across the crash");
    }
    let state = if parts.is_empty() {
        check_payment(rig, &cell, &before, &p, Some("succeeded")).await
    } else {
        check_checkout(rig, &cell, &before, &p, parts).await
    };
    assert_eq!(state, "succeeded", "{cell}\n{}", rig.logs());
    state
}

/// The daemon's crash-point cells (`SCANBINDD_CRASH_AT`), `runs` times each, on one rig:
/// every point of a payment's life in the daemon, for one payment and for a checkout.
async fn daemon_crash_point_cells(runs: usize) -> Vec<String> {
    let mut rig = rig(Victim::Daemon).await;
    let mut out = Vec::new();
    for run in 0..runs {
        for point in [
            "before-journal",
            "after-journal",
            "after-send",
            "after-settle",
        ] {
            let one = daemon_crash_point(&mut rig, "Daemon", point, &[], run).await;
            out.push(format!("crash-point {point}: {one}"));
            let parts = [("SELLER_A", 1300 + run as i64), ("SELLER_B", 1400)];
            let all = daemon_crash_point(&mut rig, "Daemon", point, &parts, run).await;
            out.push(format!("checkout crash-point {point}: {all}"));
        }
    }
    no_double_charge(&rig).await;
    out
}

/// The pay cells, `runs` times each, on one rig.
async fn pay_cells(victim: Victim, runs: usize) -> Vec<String> {
    let mut rig = rig(victim).await;
    let mut out = Vec::new();
    for run in 0..runs {
        out.push(format!(
            "pay ams-sent-processed: {}",
            pay_sent_processed(&mut rig, victim, run).await
        ));
        out.push(format!(
            "pay ams-sent-unprocessed: {}",
            pay_sent_unprocessed(&mut rig, victim, run).await
        ));
        out.push(format!(
            "pay in-process: {}",
            pay_in_process(&mut rig, victim, run).await
        ));
        out.push(format!(
            "pay timed-kill: {}",
            pay_timed(&mut rig, victim, run).await
        ));
    }
    no_double_charge(&rig).await;
    out
}

/// The refund and bind cells, `runs` times each, on another rig.
async fn refund_and_bind_cells(victim: Victim, runs: usize) -> Vec<String> {
    let mut rig = rig(victim).await;
    let d = rig.daemon1().await;
    let base = d
        .pay("c-base", 100_000, "HKD", "refund base", HashMap::new())
        .await
        .unwrap();
    let (_, st) = settle(&rig.conn, &base).await;
    assert_eq!(st, "succeeded");
    let mut out = Vec::new();
    for run in 0..runs {
        out.push(format!(
            "refund ams-sent-processed: {}",
            refund_sent_processed(&mut rig, victim, run, &base).await
        ));
    }
    // Each bind run unbinds again at its end.
    for run in 0..runs {
        out.push(format!(
            "bind approved-while-down: {}",
            bind_approved_while_down(&mut rig, victim, run).await
        ));
    }
    no_double_charge(&rig).await;
    out
}

async fn no_double_charge(rig: &Rig) {
    let ledger = rig.world.ledger().await;
    for (id, _, m) in common::movements(&ledger) {
        assert!(m <= 1, "{id} charged {m} times");
    }
}

async fn matrix(victim: Victim) {
    require_secret_service();
    let runs = scanbind_reliability::runs_per_cell(1);
    let points = async {
        match victim {
            Victim::Server => crash_point_cells(runs).await,
            Victim::Daemon => daemon_crash_point_cells(runs).await,
            Victim::Postgres => Vec::new(),
        }
    };
    let (a, b, c) = tokio::join!(
        pay_cells(victim, runs),
        refund_and_bind_cells(victim, runs),
        points
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for k in a.into_iter().chain(b).chain(c) {
        *counts.entry(k).or_default() += 1;
    }
    let mut lines: Vec<String> = counts
        .into_iter()
        .map(|(k, v)| format!("| {victim:?} | {k} | {v} |"))
        .collect();
    lines.sort();
    eprintln!("crash matrix ({runs} runs per cell):\n{}", lines.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_server_at_every_step() {
    matrix(Victim::Server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_daemon_at_every_step() {
    matrix(Victim::Daemon).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_postgresql_at_every_step() {
    matrix(Victim::Postgres).await;
}

/// The system-mode rig (issue 21): this suite's world and `scanbind-server` (as root,
/// on a fixed loopback port), a private system bus with the packaged policy, and
/// `scanbindd --system --server URL` as `scanbind` (`SystemLayout::daemon_command`).
/// The app is this test process, a root client on the system bus.
struct SystemRig {
    world: World,
    server: Option<scanbind_reliability::server::ServerProc>,
    server_extra: Vec<(String, String)>,
    users: SystemUsers,
    layout: SystemLayout,
    binary: SharedBinary,
    daemon: Option<DaemonProc>,
    conn: zbus::Connection,
    bus: SystemBus,
}

impl Scene for SystemRig {
    fn world(&self) -> &World {
        &self.world
    }
    fn conn(&self) -> &zbus::Connection {
        &self.conn
    }
    fn logs(&self) -> String {
        let d = self
            .daemon
            .as_ref()
            .map(DaemonProc::logs)
            .unwrap_or_default();
        let s = self.server.as_ref().map(|s| s.logs()).unwrap_or_default();
        format!(
            "--- daemon\n{}\n--- server\n{}\n--- bus\n{}",
            common::tail(&d),
            common::tail(&s),
            self.bus.logs()
        )
    }
    fn take_daemon(&mut self) -> Option<DaemonProc> {
        self.daemon.take()
    }
    fn start_daemon(&mut self, env: &[(&str, &str)]) {
        SystemRig::start_daemon(self, env);
    }
}

impl SystemRig {
    async fn new() -> SystemRig {
        let users = SystemUsers::ensure();
        let binary = tokio::task::block_in_place(|| {
            SharedBinary::new(&scanbind_reliability::bins::binaries().daemon)
        });
        let world = World::new(
            world::options()
                .database(world::database(false))
                .time_scale(0.001),
        )
        .await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server_extra = vec![
            (
                "SCANBIND_SERVER_AMS_ATTEMPT_TIMEOUT_MS".to_owned(),
                "3000".to_owned(),
            ),
            (
                "SCANBIND_SERVER_SERVER_LISTEN".to_owned(),
                format!("127.0.0.1:{port}"),
            ),
        ];
        let bus = SystemBus::start().unwrap();
        let conn = bus.connect().await.unwrap();
        let layout = SystemLayout::new(&users.daemon);
        // Every app may pay (root's policy file, as on a device).
        layout.write_policy("unknown_apps = \"allow\"\n");
        let mut rig = SystemRig {
            world,
            server: None,
            server_extra,
            users,
            layout,
            binary,
            daemon: None,
            conn,
            bus,
        };
        let extra: Vec<(&str, &str)> = rig
            .server_extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        rig.server = Some(rig.world.spawn_server_logged(&extra, "info"));
        rig.start_daemon(&[]);
        rig
    }

    /// (Re)starts the daemon as the unit does, with extra environment (a crash point);
    /// the running one, if any, is killed first (SIGKILL).
    fn start_daemon(&mut self, env: &[(&str, &str)]) {
        self.daemon = None;
        let server = format!(
            "http://{}",
            self.server_extra
                .iter()
                .find(|(k, _)| k == "SCANBIND_SERVER_SERVER_LISTEN")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        );
        let daemon = self
            .layout
            .daemon_command(&self.binary, &self.users.daemon, self.bus.address())
            .server(&server)
            .envs(env)
            .suite("reliability")
            .guard(None)
            .spawn()
            .unwrap_or_else(|e| panic!("scanbindd --system as scanbind: {e}\n{}", self.bus.logs()));
        self.daemon = Some(daemon);
    }
}

/// System mode, the daemon's own crash point `after-send` (the payment is journaled and
/// sent to the server, the daemon dies before the answer): restarted as the unit
/// restarts it, the app pays the same order again and gets the same payment, charged
/// once and delivered once.
async fn system_crash_point(rig: &mut SystemRig, run: usize) -> String {
    daemon_crash_point(rig, "System daemon", "after-send", &[], run).await
}

/// System mode, `kill -9` of the daemon while the wallet has taken the payment and
/// holds its answer: restarted as the unit restarts it, the payment ends `succeeded`,
/// charged once and delivered once.
async fn system_kill_9_sent(rig: &mut SystemRig, run: usize) -> String {
    pay_recorded_then_crash(
        rig,
        &format!("System daemon pay ams-sent-processed #{run}"),
        json!({"endpoint":"pay","kind":"hang","processed":true}),
        (&format!("cs-kill-{run}"), 8000 + run as i64),
        |rig| {
            rig.daemon.take().expect("a daemon").kill();
            rig.start_daemon(&[]);
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_system_mode_daemon_mid_payment() {
    let runs = scanbind_reliability::runs_per_cell(1);
    let mut rig = SystemRig::new().await;
    let d = rig.daemon1().await;
    bind(&rig.world, &rig.conn, &d).await;
    let mut out = Vec::new();
    for run in 0..runs {
        out.push(format!(
            "| System daemon | crash-point after-send | {} |",
            system_crash_point(&mut rig, run).await
        ));
        out.push(format!(
            "| System daemon | pay kill-9 ams-sent-processed | {} |",
            system_kill_9_sent(&mut rig, run).await
        ));
    }
    let ledger = rig.world.ledger().await;
    for (id, _, m) in common::movements(&ledger) {
        assert!(m <= 1, "{id} charged {m} times");
    }
    eprintln!(
        "crash matrix, system mode ({runs} runs per cell):\n{}",
        out.join("\n")
    );
}
