//! End to end through real processes: a private `dbus-daemon` (the daemon serves
//! there), the gnome-keyring that `scripts/test` starts on the session bus (the
//! daemon's vault), an in-process sandbox, the `scanbind-server` binary on SQLite and
//! the `scanbindd` binary. The test is the app: it uses the `scanbind-ipc` proxies.
//!
//! Needs `KEYRING_SS_TEST=1` (run through `scripts/test`; see daemon/README.md).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use common::{DaemonProc, GUARD, World, eventually};
use futures_util::StreamExt as _;
use scanbind_device_api::receipt::{ReceiptKeySet, verify_receipt};
use scanbind_ipc::{
    BUS_NAME, Binding1Proxy, DAEMON_PATH, Daemon1Proxy, Error as Wire, Payment1Proxy, PaymentState,
};
use scanbindd::test_util::{PrivateBus, require_secret_service};
use zbus::proxy::CacheProperties;

async fn connect(bus: &PrivateBus) -> zbus::Connection {
    zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap()
}

/// The number of journal rows (read from outside the daemon).
fn journal_rows(state_dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(state_dir.join("journal.sqlite3")).unwrap();
    conn.query_row("SELECT count(*) FROM payments", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_then_pay_once_with_a_verified_receipt() {
    require_secret_service();
    let world = World::new().await;
    let server = world.spawn_server();
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = DaemonProc::spawn(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();

    // Bind: subscribe to Completed before the wallet approves.
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = Binding1Proxy::builder(&conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut bound = binding.receive_completed().await.unwrap();
    assert_eq!(binding.state().await.unwrap(), "pending");
    assert_eq!(binding.match_code().await.unwrap().len(), 6);
    assert!(binding.expires_at().await.unwrap() > 0);
    let code = binding.code_value().await.unwrap();
    assert!(!code.is_empty());
    world.scan(&code, "approve").await;
    let signal = tokio::time::timeout(GUARD, bound.next())
        .await
        .expect("no Binding Completed within the guard time")
        .unwrap();
    assert_eq!(signal.args().unwrap().state, "bound", "{}", daemon.logs());
    assert_eq!(binding.state().await.unwrap(), "bound");
    assert_eq!(binding.code_value().await.unwrap(), "");

    // Pay: the result arrives as Completed (or is already there when we look).
    let p = d
        .pay("order-1", 4900, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    let (payment, signalled) = settled_payment(&conn, &p).await;
    if let Some(state) = signalled {
        assert_eq!(state, "succeeded", "{}", daemon.logs());
    }
    assert_eq!(payment.state().await.unwrap(), "succeeded");
    assert_eq!(payment.amount_minor().await.unwrap(), 4900);
    assert_eq!(payment.currency().await.unwrap(), "HKD");
    assert_eq!(payment.order_id().await.unwrap(), "order-1");
    assert_eq!(payment.binding().await.unwrap(), path);

    let keys: ReceiptKeySet = world
        .http
        .get(format!("{}/v1/receipt-keys", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let receipt = verify_receipt(&payment.receipt().await.unwrap(), &keys).unwrap();
    assert_eq!(receipt.amount.value, 4900);
    assert_eq!(receipt.amount.currency, "HKD");
    assert_eq!(receipt.status, "succeeded");
    assert_eq!(receipt.app_order_id, "order-1");
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(
        receipt.app_id,
        exe.to_string_lossy(),
        "the app id is the caller's executable"
    );

    // The same order again: the same object, no second charge.
    let again = d
        .pay("order-1", 4900, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    assert_eq!(again, p);
    let ledger = world.ledger().await;
    let payments = ledger["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{ledger}");
    assert_eq!(payments[0]["moneyMovements"], 1, "{ledger}");
    assert_eq!(journal_rows(state.path()), 1);

    // The same order id with another amount is refused.
    let err = d
        .pay("order-1", 5000, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::Duplicate(_)), "{err:?}");

    // The app sees it in its own list.
    let list = d.list_payments(HashMap::new()).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].payment, p);
    assert_eq!(list[0].state, PaymentState::Succeeded);

    // After a restart (same journal, same keyring): the binding is restored from the
    // server and the keyring, the same order id still returns the same, settled
    // payment, and a new order charges once.
    drop(daemon);
    let daemon = DaemonProc::spawn(bus.address(), &server.base, state.path());
    let status = d.get_status(HashMap::new()).await.unwrap();
    let bound: Vec<zvariant::OwnedObjectPath> =
        status["bindings"].try_clone().unwrap().try_into().unwrap();
    assert_eq!(bound.len(), 1, "{}", daemon.logs());
    let after = d
        .pay("order-1", 4900, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    assert_eq!(after, p);
    assert_eq!(payment.state().await.unwrap(), "succeeded");
    let p2 = d
        .pay("order-2", 100, "HKD", "More", HashMap::new())
        .await
        .unwrap();
    let (payment2, _) = settled_payment(&conn, &p2).await;
    assert_eq!(
        payment2.state().await.unwrap(),
        "succeeded",
        "{}",
        daemon.logs()
    );
    let ledger = world.ledger().await;
    let movements: Vec<&serde_json::Value> = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["moneyMovements"])
        .collect();
    assert_eq!(movements, [1, 1], "{ledger}");
    assert_eq!(journal_rows(state.path()), 2);
    let path = bound[0].clone();

    // The live objects implement exactly the checked-in XML.
    for (object, (iface, xml)) in [DAEMON_PATH, path.as_str(), p.as_str()]
        .into_iter()
        .zip(scanbind_ipc::xml::ALL)
    {
        let live = zbus::fdo::IntrospectableProxy::builder(&conn)
            .destination(BUS_NAME)
            .unwrap()
            .path(object)
            .unwrap()
            .build()
            .await
            .unwrap()
            .introspect()
            .await
            .unwrap();
        assert_eq!(
            members(&live, iface),
            members(xml, iface),
            "{iface} at {object} drifted from ipc-proto/xml"
        );
    }
}

/// Every member of `iface` in an introspection document, as comparable lines.
fn members(xml: &str, iface: &str) -> BTreeSet<String> {
    let node = zbus_xml::Node::from_reader(xml.as_bytes()).unwrap();
    let i = node
        .interfaces()
        .iter()
        .find(|i| i.name().as_str() == iface)
        .unwrap_or_else(|| panic!("{iface} missing"));
    let args = |a: &[zbus_xml::Arg]| {
        a.iter()
            .map(|a| {
                format!(
                    "{:?} {} {}",
                    a.direction(),
                    a.ty().inner(),
                    a.name().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = BTreeSet::new();
    for m in i.methods() {
        out.insert(format!("method {}({})", m.name(), args(m.args())));
    }
    for s in i.signals() {
        out.insert(format!("signal {}({})", s.name(), args(s.args())));
    }
    for p in i.properties() {
        let notes: Vec<String> = p
            .annotations()
            .iter()
            .map(|a| format!("{}={}", a.name(), a.value()))
            .collect();
        out.insert(format!(
            "property {} {} read={} write={} {notes:?}",
            p.name(),
            p.ty().inner(),
            p.access().read(),
            p.access().write()
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_pay_calls_get_typed_errors_and_change_nothing() {
    require_secret_service();
    let world = World::new().await;
    let server = world.spawn_server();
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let _daemon = DaemonProc::spawn(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();

    let name = |r: Result<zvariant::OwnedObjectPath, Wire>| match r {
        Ok(p) => format!("unexpected success {p}"),
        Err(e) => zbus::DBusError::name(&e).to_string(),
    };
    let long = "x".repeat(1000);
    let cases: Vec<(&str, i64, &str, &str)> = vec![
        ("o-neg", -100, "HKD", "negative"),
        ("o-zero", 0, "HKD", "zero"),
        ("o-min", i64::MIN, "HKD", "overflow"),
        ("o-cur", 100, "XYZ", "unknown currency"),
        ("o-cur2", 100, "", "empty currency"),
        (&long, 100, "HKD", "oversized order id"),
    ];
    let want = [
        "io.scanbind.Daemon1.Error.InvalidAmount",
        "io.scanbind.Daemon1.Error.InvalidAmount",
        "io.scanbind.Daemon1.Error.InvalidAmount",
        "io.scanbind.Daemon1.Error.UnknownCurrency",
        "io.scanbind.Daemon1.Error.UnknownCurrency",
        "io.scanbind.Daemon1.Error.InvalidArgument",
    ];
    for ((order, amount, currency, what), want) in cases.into_iter().zip(want) {
        let got = name(d.pay(order, amount, currency, what, HashMap::new()).await);
        assert_eq!(got, want, "{what}");
    }
    let mut options = HashMap::new();
    options.insert("tip", zvariant::Value::from(5_i64));
    let got = name(d.pay("o-opt", 100, "HKD", "x", options).await);
    assert_eq!(got, "io.scanbind.Daemon1.Error.UnknownOption");
    // Valid arguments but no wallet bound yet.
    let got = name(d.pay("o-ok", 100, "HKD", "x", HashMap::new()).await);
    assert_eq!(got, "io.scanbind.Daemon1.Error.NotBound");

    assert_eq!(journal_rows(state.path()), 0, "the journal is unchanged");
    let ledger = world.ledger().await;
    assert_eq!(ledger["payments"].as_array().unwrap().len(), 0, "{ledger}");
}

/// Binds `ALIPAY_HK` through the sandbox's scan; returns the binding's path.
async fn bind(
    world: &World,
    conn: &zbus::Connection,
    d: &Daemon1Proxy<'_>,
) -> zvariant::OwnedObjectPath {
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = Binding1Proxy::builder(conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut bound = binding.receive_completed().await.unwrap();
    world
        .scan(&binding.code_value().await.unwrap(), "approve")
        .await;
    let signal = tokio::time::timeout(GUARD, bound.next())
        .await
        .expect("no Binding Completed within the guard time")
        .unwrap();
    assert_eq!(signal.args().unwrap().state, "bound");
    path
}

/// Follows the payment at `path` until it is settled: subscribes to `Completed` first,
/// then waits for it unless the state is already final. Returns the proxy and, when the
/// signal was awaited, the state it carried.
async fn settled_payment(
    conn: &zbus::Connection,
    path: &zvariant::OwnedObjectPath,
) -> (Payment1Proxy<'static>, Option<String>) {
    let payment = Payment1Proxy::builder(conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut completed = payment.receive_completed().await.unwrap();
    let now: PaymentState = payment.state().await.unwrap().parse().unwrap();
    if now.is_terminal() {
        return (payment, None);
    }
    let signal = tokio::time::timeout(GUARD, completed.next())
        .await
        .expect("no Payment Completed within the guard time")
        .unwrap();
    let state = signal.args().unwrap().state.to_string();
    (payment, Some(state))
}

/// The state column of the only journal row.
fn journal_state(state_dir: &Path) -> String {
    let conn = rusqlite::Connection::open(state_dir.join("journal.sqlite3")).unwrap();
    conn.query_row("SELECT state FROM payments", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_cut_off_by_kill_9_is_settled_after_restart() {
    require_secret_service();
    let world = World::new().await;
    // The server gives up on a silent AMS after 5 s and inquires.
    let server = world.spawn_server_with(&[("SCANBIND_SERVER_AMS_ATTEMPT_TIMEOUT_MS", "5000")]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = DaemonProc::spawn(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    bind(&world, &conn, &d).await;

    // The wallet takes the money but neither its answer nor its notification comes;
    // the daemon is killed after sending, before the reply.
    world
        .arm_fault(serde_json::json!({"endpoint": "pay", "kind": "hang", "processed": true}))
        .await;
    world
        .arm_fault(serde_json::json!({"endpoint": "notifications", "kind": "drop"}))
        .await;
    let p = d
        .pay("order-k", 700, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    eventually("the sandbox to record the payment", || async {
        world.ledger().await["payments"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    })
    .await;
    let logs = daemon.logs();
    drop(daemon);
    assert_eq!(journal_state(state.path()), "sent", "{logs}");

    // Restarted, the daemon serves the payment again and settles it, charging once.
    let daemon = DaemonProc::spawn(bus.address(), &server.base, state.path());
    let (payment, _) = settled_payment(&conn, &p).await;
    assert_eq!(
        payment.state().await.unwrap(),
        "succeeded",
        "{}",
        daemon.logs()
    );
    assert!(
        daemon.logs().contains("reconciling open payments"),
        "{}",
        daemon.logs()
    );
    assert!(!payment.receipt().await.unwrap().is_empty());
    assert_eq!(journal_state(state.path()), "succeeded");
    let again = d
        .pay("order-k", 700, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    assert_eq!(again, p);
    let ledger = world.ledger().await;
    let movements: Vec<&serde_json::Value> = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["moneyMovements"])
        .collect();
    assert_eq!(movements, [1], "{ledger}");
}
