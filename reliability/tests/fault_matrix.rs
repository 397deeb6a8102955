//! Issue 10 §2, the fault matrix, end to end through the daemon: the app pays (and
//! refunds) over D-Bus while the sandbox injects every fault it has — `U` results,
//! `PAYMENT_IN_PROCESS` then success or failure, HTTP 5xx, hangs, broken response
//! signatures, dropped / duplicated / delayed / reordered notifications, expired and
//! invalid tokens, `TOKEN_CANCELED` during a payment — plus the merchant server
//! unreachable from the daemon (a closed port) and the device's clock skewed
//! (libfaketime). Each cell checks the final state the app sees and the wallet's
//! ledger: a payment the app sees `succeeded` moved money exactly once, any other final
//! state moved none, a refund the app sees `succeeded` moved money exactly once.
//!
//! Needs `KEYRING_SS_TEST=1` (run through `scripts/test`).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::{GUARD, Rig, bind, eventually, require_secret_service, settle};
use futures_util::StreamExt as _;
use scanbind_ipc::Error as Wire;
use scanbind_reliability::world::{self, World, WorldOptions};
use serde_json::{Value, json};

/// The request ids of every ledger payment (to find what a cell added).
async fn ledger_ids(rig: &Rig) -> BTreeSet<String> {
    common::movements(&rig.world.ledger().await)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

/// What a pay cell saw: the final app state, the ledger payments the cell added as
/// (status, moneyMovements), the calls of the armed faults still left unfired (0
/// when every armed fault fired), and the app's `LastError` name.
struct Seen {
    state: String,
    added: Vec<(String, i64)>,
    unfired: u64,
    error: String,
}

/// The calls left on the armed faults (call and notification faults; 0: all fired).
async fn unfired(rig: &Rig) -> u64 {
    let left = rig.world.control("/sandbox/v1/faults").await;
    ["calls", "notifications"]
        .iter()
        .flat_map(|k| left[k].as_array().cloned().unwrap_or_default())
        .map(|f| f["remaining"].as_u64().unwrap_or(0))
        .sum()
}

/// The ledger payments that the ledger `before` did not have.
async fn added_payments(rig: &Rig, before: &Value) -> Vec<Value> {
    let known: BTreeSet<String> = common::movements(before)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    rig.world.ledger().await["payments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !known.contains(p["paymentRequestId"].as_str().unwrap_or("")))
        .collect()
}

/// Disarms every fault.
async fn clear_faults(rig: &Rig) {
    let status = rig
        .world
        .http
        .delete(format!(
            "{}/sandbox/v1/faults",
            rig.world.sandbox.base_url()
        ))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "DELETE /sandbox/v1/faults: {status}");
}

/// Pays `order` with `faults` armed; what the cell saw.
async fn pay_cell(rig: &Rig, order: &str, amount: i64, faults: &[Value]) -> Seen {
    let before = ledger_ids(rig).await;
    for f in faults {
        rig.world.arm_fault(f.clone()).await;
    }
    let d = rig.daemon1().await;
    let p = d
        .pay(order, amount, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_or_else(|e| panic!("{order}: Pay failed: {e:?}\n{}", rig.logs()));
    let (payment, state) = settle(&rig.conn, &p).await;
    assert_eq!(payment.state().await.unwrap(), state);
    let error = payment.last_error().await.unwrap().name;
    let unfired = unfired(rig).await;
    clear_faults(rig).await;
    let added = common::movements(&rig.world.ledger().await)
        .into_iter()
        .filter(|(id, _, _)| !before.contains(id))
        .map(|(_, st, m)| (st, m))
        .collect();
    Seen {
        state,
        added,
        unfired,
        error,
    }
}

/// The invariant of every cell, and the final state the docs record for it.
fn check(cell: &str, want: &str, got: &Seen, table: &mut Vec<String>) {
    let Seen {
        state,
        added,
        unfired,
        error,
    } = got;
    let moved: i64 = added.iter().map(|(_, m)| m).sum();
    let line = format!("| {cell} | {state} | {moved} | {added:?} | {error} | unfired {unfired} |");
    eprintln!("{line}");
    table.push(line);
    assert_eq!(state, want, "{cell}: final state");
    match state.as_str() {
        "succeeded" => assert_eq!(
            moved, 1,
            "{cell}: succeeded must have charged exactly once: {added:?}"
        ),
        "failed" | "cancelled" => {
            assert_eq!(moved, 0, "{cell}: {state} must not have charged: {added:?}")
        }
        other => panic!("{cell}: not final: {other}"),
    }
    assert!(
        added.len() <= 1,
        "{cell}: more than one AMS payment for one order: {added:?}"
    );
}

async fn rig(options: WorldOptions) -> Rig {
    let world = World::new(options).await;
    // A silent AMS is given up on after 3 s (the hang cells), then inquired.
    let rig = Rig::new(world, &[("SCANBIND_SERVER_AMS_ATTEMPT_TIMEOUT_MS", "3000")]).await;
    let d = rig.daemon1().await;
    bind(&rig.world, &rig.conn, &d).await;
    rig
}

/// How a cell shows that its fault fired.
#[derive(Debug, Clone, Copy)]
enum Fired {
    /// The armed faults were consumed, all but this many calls (0: every one fired).
    Armed(u64),
    /// A magic amount that records nothing (a plain pay of that amount would be
    /// recorded): the ledger has no payment for the order.
    NotRecorded,
    /// A magic amount refused by the wallet: the ledger's payment has this `resultCode`.
    Code(&'static str),
    /// A magic amount that holds the payment in process: the server had to inquire
    /// (the ledger counts its inquiries).
    Inquired,
}

/// A pay cell: its name, the amount, the faults to arm, the final state the docs
/// record, and how it shows that its fault fired.
type Cell<'a> = (&'a str, i64, Vec<Value>, &'a str, Fired);

#[tokio::test(flavor = "multi_thread")]
async fn pay_faults_end_in_the_right_state_and_ledger() {
    require_secret_service();
    let mut table = Vec::new();
    let pay = |e: &str, kind: &str| json!({"endpoint": e, "kind": kind});
    let cells: Vec<Cell<'_>> = vec![
        (
            "pay: bad response signature",
            111,
            vec![pay("pay", "bad_signature")],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: U processed (money moved, answer lost)",
            102,
            vec![json!({"endpoint":"pay","kind":"unknown_exception","processed":true})],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: U twice processed, notification dropped",
            103,
            vec![
                json!({"endpoint":"pay","kind":"unknown_exception","processed":true,"count":2}),
                pay("notifications", "drop"),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: U not processed, then ok",
            101,
            vec![pay("pay", "unknown_exception")],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: magic 9901 (U forever, nothing recorded)",
            9901,
            vec![],
            "failed",
            Fired::NotRecorded,
        ),
        (
            "pay: PAYMENT_IN_PROCESS then SUCCESS",
            104,
            vec![
                json!({"endpoint":"pay","kind":"in_process","after_inquiries":2,"after_seconds":86400}),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: PAYMENT_IN_PROCESS then PROCESS_FAIL",
            105,
            vec![
                json!({"endpoint":"pay","kind":"in_process","outcome":"PROCESS_FAIL","after_inquiries":2,"after_seconds":86400}),
            ],
            "failed",
            Fired::Armed(0),
        ),
        (
            "pay: magic 9903 (in process, then SUCCESS)",
            9903,
            vec![],
            "succeeded",
            Fired::Inquired,
        ),
        (
            "pay: magic 9904 (in process, then FAIL)",
            9904,
            vec![],
            "failed",
            Fired::Inquired,
        ),
        (
            "pay: HTTP 500 not processed",
            106,
            vec![pay("pay", "http_error")],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: HTTP 503 processed",
            107,
            vec![json!({"endpoint":"pay","kind":"http_error","status":503,"processed":true})],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: HTTP 502 x3 not processed",
            108,
            vec![json!({"endpoint":"pay","kind":"http_error","status":502,"count":3})],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: hang, processed",
            109,
            vec![pay("pay", "hang")],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: hang, not processed",
            110,
            vec![json!({"endpoint":"pay","kind":"hang","processed":false})],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: inquiry U + pay in process",
            112,
            vec![
                json!({"endpoint":"pay","kind":"in_process","after_inquiries":2,"after_seconds":86400}),
                pay("inquiryPayment", "unknown_exception"),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: inquiry HTTP 500 + pay in process",
            113,
            vec![
                json!({"endpoint":"pay","kind":"in_process","after_inquiries":2,"after_seconds":86400}),
                pay("inquiryPayment", "http_error"),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: inquiry bad signature + pay in process",
            114,
            vec![
                json!({"endpoint":"pay","kind":"in_process","after_inquiries":2,"after_seconds":86400}),
                pay("inquiryPayment", "bad_signature"),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "pay: magic 9905 balance",
            9905,
            vec![],
            "failed",
            Fired::Code("USER_BALANCE_NOT_ENOUGH"),
        ),
        (
            "pay: magic 9906 risk reject",
            9906,
            vec![],
            "failed",
            Fired::Code("RISK_REJECT"),
        ),
        (
            "pay: magic 9907 invalid token",
            9907,
            vec![],
            "failed",
            Fired::NotRecorded,
        ),
        (
            "notify: dropped (in process)",
            115,
            vec![
                json!({"endpoint":"pay","kind":"in_process","after_inquiries":1}),
                pay("notifications", "drop"),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "notify: duplicated (in process)",
            116,
            vec![
                json!({"endpoint":"pay","kind":"in_process","after_inquiries":1}),
                pay("notifications", "duplicate"),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "notify: delayed 1.5 s (in process)",
            117,
            vec![
                json!({"endpoint":"pay","kind":"in_process","after_inquiries":1}),
                json!({"endpoint":"notifications","kind":"delay","ms":1500}),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "notify: reordered (in process)",
            118,
            vec![
                json!({"endpoint":"pay","kind":"in_process","after_inquiries":1}),
                pay("notifications", "reorder"),
            ],
            "succeeded",
            Fired::Armed(0),
        ),
        (
            "notify: failure notification dropped",
            119,
            vec![
                json!({"endpoint":"pay","kind":"in_process","outcome":"PROCESS_FAIL","after_inquiries":1}),
                pay("notifications", "drop"),
            ],
            "failed",
            Fired::Armed(0),
        ),
    ];
    // Three rigs side by side (the cells mostly wait): the short run stays short. The
    // bad-response-signature cell and the two `U processed` cells come first, one on
    // each rig: the server once made a late `pay` call after them (a retry of the
    // answered call, sent after `notifyPayment` had settled it), which consumed the next
    // cell's armed fault; that next cell's own "fired" check now catches any such call
    // (see docs/reliability.md).
    let chunks: Vec<Vec<(usize, Cell<'_>)>> = {
        let mut c = vec![Vec::new(), Vec::new(), Vec::new()];
        for (i, cell) in cells.into_iter().enumerate() {
            c[i % 3].push((i, cell));
        }
        c
    };
    let results = futures_util::future::join_all(chunks.into_iter().map(|chunk| async move {
        let rig = if chunk.is_empty() {
            None
        } else {
            Some(rig(world::options()).await)
        };
        let mut table = Vec::new();
        for (i, (cell, amount, faults, want, fired)) in chunk {
            let rig = rig.as_ref().unwrap();
            let before = rig.world.ledger().await;
            let got = pay_cell(rig, &format!("f-{i}"), amount, &faults).await;
            check(cell, want, &got, &mut table);
            // The cell's fault fired.
            match fired {
                Fired::Armed(left) => assert_eq!(got.unfired, left, "{cell}: armed calls unfired"),
                Fired::NotRecorded => {
                    assert!(got.added.is_empty(), "{cell}: recorded: {:?}", got.added)
                }
                Fired::Code(code) => {
                    let added = added_payments(rig, &before).await;
                    assert!(
                        added.len() == 1 && added[0]["resultCode"] == code,
                        "{cell}: the wallet's answer: {added:?}"
                    );
                }
                Fired::Inquired => {
                    let added = added_payments(rig, &before).await;
                    assert!(
                        added.len() == 1 && added[0]["inquiries"].as_u64().unwrap_or(0) >= 1,
                        "{cell}: never inquired: {added:?}"
                    );
                }
            }
        }
        // No order anywhere was charged twice.
        if let Some(rig) = &rig {
            for (id, _, m) in common::movements(&rig.world.ledger().await) {
                assert!(m <= 1, "{id} moved money {m} times");
            }
        }
        table
    }))
    .await;
    table.extend(results.into_iter().flatten());
}

#[tokio::test(flavor = "multi_thread")]
async fn refund_faults_refund_exactly_once() {
    require_secret_service();
    let rig = rig(world::options()).await;
    let d = rig.daemon1().await;
    let p = d
        .pay("r-base", 5000, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    let (payment, st) = settle(&rig.conn, &p).await;
    assert_eq!(st, "succeeded");
    let cells: Vec<(&str, Value, &str)> = vec![
        (
            "refund: U not processed",
            json!({"endpoint":"refund","kind":"unknown_exception"}),
            "succeeded",
        ),
        (
            "refund: U processed",
            json!({"endpoint":"refund","kind":"unknown_exception","processed":true}),
            "succeeded",
        ),
        (
            "refund: HTTP 500 processed",
            json!({"endpoint":"refund","kind":"http_error","processed":true}),
            "succeeded",
        ),
        (
            "refund: hang processed",
            json!({"endpoint":"refund","kind":"hang"}),
            "succeeded",
        ),
        (
            "refund: bad response signature",
            json!({"endpoint":"refund","kind":"bad_signature"}),
            "succeeded",
        ),
        (
            "refund: notification dropped",
            json!({"endpoint":"notifications","kind":"drop"}),
            "succeeded",
        ),
    ];
    for (i, (cell, fault, want)) in cells.into_iter().enumerate() {
        rig.world.arm_fault(fault).await;
        let mut opts = HashMap::new();
        let rid = format!("rf-{i}");
        opts.insert("refund-id", zvariant::Value::from(rid.as_str()));
        let (_, state) = payment
            .request_refund(100, cell, opts)
            .await
            .unwrap_or_else(|e| panic!("{cell}: {e:?}\n{}", rig.logs()));
        let mut state = state;
        if state != "succeeded" && state != "failed" {
            // Pending: the refund's final state arrives later; ask again (idempotent).
            eventually(&format!("{cell} to settle"), || async {
                let mut o = HashMap::new();
                o.insert("refund-id", zvariant::Value::from(rid.as_str()));
                let (_, s) = payment.request_refund(100, cell, o).await.unwrap();
                s == "succeeded" || s == "failed"
            })
            .await;
            let mut o = HashMap::new();
            o.insert("refund-id", zvariant::Value::from(rid.as_str()));
            state = payment.request_refund(100, cell, o).await.unwrap().1;
        }
        // The cell's fault fired.
        assert_eq!(
            unfired(&rig).await,
            0,
            "{cell}: the armed fault did not fire"
        );
        clear_faults(&rig).await;
        let ledger = rig.world.ledger().await;
        let refunds = ledger["refunds"].as_array().cloned().unwrap_or_default();
        let moved: i64 = refunds
            .iter()
            .map(|r| r["moneyMovements"].as_i64().unwrap_or(0))
            .sum();
        eprintln!("| {cell} | {state} | total refunds moved {moved} |");
        assert_eq!(state, want, "{cell}\n{}", rig.logs());
        assert_eq!(
            moved,
            i as i64 + 1,
            "{cell}: refunds moved so far: {ledger}"
        );
    }
    assert_eq!(payment.refunded_minor().await.unwrap(), 600);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_expired_at_the_wallet_charges_nothing() {
    require_secret_service();
    // Access tokens live 10 minutes on the wallet's clock; the daemon's refresh timer
    // runs on real time, so advancing the wallet's clock expires the token under it.
    let rig = rig(world::options().access_ttl(Some(Duration::from_secs(600)))).await;
    let mut table = Vec::new();
    rig.world
        .control_post("/sandbox/v1/clock/advance", json!({"seconds": 601}))
        .await;
    let got = pay_cell(&rig, "t-expired", 200, &[]).await;
    check(
        "token: access token expired at the wallet",
        "failed",
        &got,
        &mut table,
    );
    // The expiry fired: the wallet refused the token before recording the payment (a
    // pay with a live token is recorded), and the server's refusal reached the app.
    assert!(got.added.is_empty(), "recorded: {:?}", got.added);
    assert_eq!(got.error, "io.scanbind.Daemon1.Error.ServerError");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_canceled_during_a_payment_in_process() {
    require_secret_service();
    let rig = rig(world::options()).await;
    let mut table = Vec::new();
    // TOKEN_CANCELED while a payment is in process: the wallet accepted it before the
    // user unbound, so it completes; the binding goes away.
    let d = rig.daemon1().await;
    let mut removed = d.receive_binding_removed().await.unwrap();
    let before = ledger_ids(&rig).await;
    rig.world
        .arm_fault(json!({"endpoint":"pay","kind":"in_process","after_inquiries":3}))
        .await;
    let p = d
        .pay("t-canceled", 300, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    eventually("the wallet to record the payment", || async {
        ledger_ids(&rig).await.len() > before.len()
    })
    .await;
    assert!(rig.world.unbind_in_wallet("alipay_hk_user").await >= 1);
    let signal = tokio::time::timeout(GUARD, removed.next())
        .await
        .expect("no BindingRemoved")
        .unwrap();
    assert_eq!(signal.args().unwrap().reason, "token-canceled");
    let (payment, state) = settle(&rig.conn, &p).await;
    let added: Vec<(String, i64)> = common::movements(&rig.world.ledger().await)
        .into_iter()
        .filter(|(id, _, _)| !before.contains(id))
        .map(|(_, s, m)| (s, m))
        .collect();
    let seen = Seen {
        state,
        added,
        unfired: unfired(&rig).await,
        error: payment.last_error().await.unwrap().name,
    };
    check(
        "token: TOKEN_CANCELED during a payment in process",
        "succeeded",
        &seen,
        &mut table,
    );
    // The in-process fault fired (the cancellation came while the wallet held it).
    assert_eq!(seen.unfired, 0, "the in-process fault did not fire");
    let err = d
        .pay("t-after", 100, "HKD", "x", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NotBound(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_unreachable_from_the_daemon_charges_nothing_then_once() {
    require_secret_service();
    let mut rig = rig(world::options()).await;
    let d = rig.daemon1().await;
    // The server goes away: its port is closed.
    tokio::task::block_in_place(|| rig.server.take().unwrap().kill_9());
    let before = ledger_ids(&rig).await;
    // The fault fired: the daemon has noticed (its event stream broke).
    eventually("the daemon to notice the server is gone", || async {
        let status = d.get_status(HashMap::new()).await.unwrap();
        String::try_from(status["connectivity"].try_clone().unwrap()).unwrap() != "online"
    })
    .await;
    let r = d.pay("u-1", 400, "HKD", "Coins", HashMap::new()).await;
    let first = match &r {
        Ok(p) => panic!("accepted while offline: {p:?}"),
        Err(e) => zbus::DBusError::name(e).to_string(),
    };
    eprintln!("| server unreachable (closed port): Pay → {first} |");
    assert!(
        matches!(r, Err(Wire::Offline(_))),
        "Pay while offline: {r:?}"
    );
    assert_eq!(
        ledger_ids(&rig).await,
        before,
        "nothing charged while offline"
    );
    // Back: the same order is charged exactly once.
    rig.start_server();
    let d = rig.daemon1().await;
    let p = tokio::time::timeout(GUARD, async {
        loop {
            match d.pay("u-1", 400, "HKD", "Coins", HashMap::new()).await {
                Ok(p) => break p,
                Err(Wire::Offline(_)) => {
                    // The daemon reconnects on its own schedule: wait for `online`.
                    let status = d.get_status(HashMap::new()).await.unwrap();
                    let c = String::try_from(status["connectivity"].try_clone().unwrap()).unwrap();
                    if c != "online" {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Err(e) => panic!("{e:?}\n{}", rig.logs()),
            }
        }
    })
    .await
    .expect("the daemon did not come back online");
    let (_, state) = settle(&rig.conn, &p).await;
    assert_eq!(state, "succeeded", "{}", rig.logs());
    let added: Vec<i64> = common::movements(&rig.world.ledger().await)
        .into_iter()
        .filter(|(id, _, _)| !before.contains(id))
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(added, [1]);
}

/// libfaketime (Debian package `faketime`), preloaded into the daemon only:
/// `SCANBIND_LIBFAKETIME`, else the multiarch path of this machine.
fn libfaketime() -> String {
    if let Ok(p) = std::env::var("SCANBIND_LIBFAKETIME") {
        return p;
    }
    let arch = std::env::consts::ARCH;
    format!("/usr/lib/{arch}-linux-gnu/faketime/libfaketime.so.1")
}

/// Pays once per skew with the daemon's clock shifted by libfaketime.
async fn skew_cells(skews: &[&str]) {
    require_secret_service();
    let lib = libfaketime();
    assert!(
        std::path::Path::new(&lib).exists(),
        "needs libfaketime: apt-get install faketime (scripts/lib.sh SYSTEM_PACKAGES)"
    );
    let mut rig = rig(world::options()).await;
    for (i, skew) in skews.iter().enumerate() {
        rig.start_daemon(&[
            ("LD_PRELOAD", lib.as_str()),
            ("FAKETIME", skew),
            ("FAKETIME_DONT_RESET", "1"),
        ]);
        let d = rig.daemon1().await;
        let before = ledger_ids(&rig).await;
        let order = format!("skew-{i}");
        let r = d
            .pay(&order, 500 + i as i64, "HKD", "Coins", HashMap::new())
            .await;
        let (state, moved) = match r {
            Ok(p) => {
                let (_, s) = settle(&rig.conn, &p).await;
                let m: i64 = common::movements(&rig.world.ledger().await)
                    .into_iter()
                    .filter(|(id, _, _)| !before.contains(id))
                    .map(|(_, _, m)| m)
                    .sum();
                (s, m)
            }
            Err(e) => (zbus::DBusError::name(&e).to_string(), 0),
        };
        eprintln!("| device clock {skew} s | {state} | {moved} |");
        match state.as_str() {
            "succeeded" => assert_eq!(moved, 1),
            _ => assert_eq!(moved, 0, "{skew}: {state} but charged"),
        }
        assert_eq!(
            state,
            "succeeded",
            "device clock {skew} s: the payment did not go through\n{}",
            rig.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn device_clock_skew_within_the_window() {
    skew_cells(&["+60", "-60"]).await;
}

/// A device whose clock is 10 minutes off: today `scanbindd` exits at start-up
/// (`stale_request (HTTP 401): request time is 600 s from the server clock (allowed
/// ±300 s)`), so the app cannot pay at all.
#[tokio::test(flavor = "multi_thread")]
async fn device_clock_skew_beyond_the_window() {
    skew_cells(&["+600", "-600"]).await;
}
