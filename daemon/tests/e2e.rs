//! End to end through real processes: a private `dbus-daemon` (the daemon serves
//! there), the gnome-keyring that `scripts/test` starts on the session bus (the
//! daemon's vault), an in-process sandbox, the `scanbind-server` binary on SQLite and
//! the `scanbindd` binary. The test is the app: it uses the `scanbind-ipc` proxies.
//!
//! Needs `KEYRING_SS_TEST=1` (run through `scripts/test`; see daemon/README.md).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use common::{
    DaemonProc, GUARD, World, connect, eventually, journal_rows, spawn_daemon, spawn_daemon_dev,
    spawn_daemon_with, world, world_with_token_ttls,
};
use futures_util::StreamExt as _;
use scanbind_device_api::receipt::{ReceiptKeySet, verify_receipt};
use scanbind_ipc::{
    BUS_NAME, Binding1Proxy, DAEMON_PATH, Daemon1Proxy, Error as Wire, Payment1Proxy, PaymentState,
};
use scanbindd::test_util::{PrivateBus, require_secret_service};
use zbus::proxy::CacheProperties;

#[tokio::test(flavor = "multi_thread")]
async fn bind_then_pay_once_with_a_verified_receipt() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();

    // Bind: subscribe to Completed before the wallet approves.
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = binding_proxy(&conn, &path).await;
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

    let keys: ReceiptKeySet = receipt_keys(&world, &server.base).await;
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
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
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
    let manager = (scanbind_ipc::MANAGER_INTERFACE, scanbind_ipc::xml::MANAGER1);
    for (object, (iface, xml)) in [
        DAEMON_PATH,
        path.as_str(),
        p.as_str(),
        scanbind_ipc::MANAGER_PATH,
    ]
    .into_iter()
    .zip(scanbind_ipc::xml::ALL[..3].iter().chain([&manager]))
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
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let _daemon = spawn_daemon(bus.address(), &server.base, state.path());
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
    let (path, state) = common::bind_approved(world, conn, d).await;
    assert_eq!(state, "bound");
    path
}

/// Follows the payment at `path` until it is settled: subscribes to `Completed` first,
/// then waits for it unless the state is already final. Returns the proxy and, when the
/// signal was awaited, the state it carried.
async fn settled_payment(
    conn: &zbus::Connection,
    path: &zvariant::OwnedObjectPath,
) -> (Payment1Proxy<'static>, Option<String>) {
    let payment = payment_proxy(conn, path).await;
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
    let world = world().await;
    // The server gives up on a silent AMS after 5 s and inquires.
    let server = world.spawn_server(&[("SCANBIND_SERVER_AMS_ATTEMPT_TIMEOUT_MS", "5000")]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
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
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
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

/// Pays `amount` HKD for `order` and asserts it succeeds (the daemon's log on failure).
async fn pay_and_expect_success(
    conn: &zbus::Connection,
    d: &Daemon1Proxy<'_>,
    order: &str,
    amount: i64,
    daemon: &DaemonProc,
) -> Payment1Proxy<'static> {
    let p = d
        .pay(order, amount, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    let (payment, _) = settled_payment(conn, &p).await;
    assert_eq!(
        payment.state().await.unwrap(),
        "succeeded",
        "{}",
        daemon.logs()
    );
    payment
}

/// A proxy of the binding at `path` that does not cache properties.
async fn binding_proxy(
    conn: &zbus::Connection,
    path: &zvariant::OwnedObjectPath,
) -> Binding1Proxy<'static> {
    Binding1Proxy::builder(conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// The server's published receipt keys.
async fn receipt_keys(world: &World, server: &str) -> ReceiptKeySet {
    world
        .http
        .get(format!("{server}/v1/receipt-keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A proxy of the payment at `path` that does not cache properties.
async fn payment_proxy(
    conn: &zbus::Connection,
    path: &zvariant::OwnedObjectPath,
) -> Payment1Proxy<'static> {
    Payment1Proxy::builder(conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// Decodes a PNG with `zbarimg` (installed by scripts/test): the QR's text.
fn decode_qr_png(png: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qr.png");
    std::fs::write(&file, png).unwrap();
    let out = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw"])
        .arg(&file)
        .output()
        .expect("zbarimg (apt install zbar-tools)");
    assert!(out.status.success(), "zbarimg could not read the QR");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// A policy that trusts this test binary as a display agent.
fn trusted_agent_policy() -> String {
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let uid = rustix::process::getuid().as_raw();
    format!(
        "[[trusted_agents]]\nuid = {uid}\nexe = \"{}\"\n",
        me.display()
    )
}

/// A display agent whose user approves every question (an `Unbind`).
struct Approving;

#[zbus::interface(name = "io.scanbind.Agent1")]
impl Approving {
    fn show(
        &self,
        _request: String,
        _kind: String,
        _details: HashMap<String, zvariant::OwnedValue>,
    ) {
    }

    fn dismiss(&self, _request: String, _outcome: String) {}

    fn confirm(
        &self,
        _request: String,
        _kind: String,
        _details: HashMap<String, zvariant::OwnedValue>,
    ) -> (bool, HashMap<String, zvariant::OwnedValue>) {
        (true, HashMap::new())
    }
}

/// [`Approving`], registered on a connection of its own.
async fn approving_agent(bus: &PrivateBus) -> zbus::Connection {
    const PATH: &str = "/io/scanbind/TestAgent";
    let conn = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .method_timeout(GUARD)
        .serve_at(PATH, Approving)
        .unwrap()
        .build()
        .await
        .unwrap();
    scanbind_ipc::proxy::AgentManager1Proxy::new(&conn)
        .await
        .unwrap()
        .register_agent(&PATH.try_into().unwrap(), HashMap::new())
        .await
        .unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_pay_with_line_items_refund_and_unbind() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    // This test binary may register as the display agent (to approve the unbinding).
    let policy = state.path().join("policy.toml");
    std::fs::write(&policy, trusted_agent_policy()).unwrap();
    let daemon = spawn_daemon_with(
        &[
            "--address",
            bus.address(),
            "--policy",
            policy.to_str().unwrap(),
        ],
        &server.base,
        state.path(),
        &[],
    );
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();

    // The QR in every form encodes CodeValue.
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = binding_proxy(&conn, &path).await;
    let code = binding.code_value().await.unwrap();
    let png = binding.get_qr_png(HashMap::new()).await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(decode_qr_png(&png), code);
    let svg = binding.get_qr_svg(HashMap::new()).await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
    let (width, modules) = binding.get_qr_matrix(HashMap::new()).await.unwrap();
    assert_eq!(modules.len(), (width * width) as usize);
    let mut big = HashMap::new();
    big.insert("module-size", zvariant::Value::from(2_u32));
    big.insert("quiet-zone", zvariant::Value::from(false));
    let small = binding.get_qr_png(big).await.unwrap();
    assert!(small.len() < png.len());
    let mut bad = HashMap::new();
    bad.insert("module-size", zvariant::Value::from(0_u32));
    let err = binding.get_qr_png(bad).await.unwrap_err();
    assert!(matches!(err, Wire::InvalidArgument(_)), "{err:?}");

    let mut bound = binding.receive_completed().await.unwrap();
    let scanned = world.scan(&code, "approve").await;
    let user = scanned["user"].as_str().unwrap().to_owned();
    let signal = tokio::time::timeout(GUARD, bound.next())
        .await
        .expect("no Binding Completed")
        .unwrap();
    assert_eq!(signal.args().unwrap().state, "bound");
    // Once bound, Label is the wallet's masked account, not the app's text.
    let label = binding.label().await.unwrap();
    assert!(label.contains("****"), "{label}");
    // A completed binding has no valid QR any more.
    let err = binding.get_qr_png(HashMap::new()).await.unwrap_err();
    assert!(matches!(err, Wire::Expired(_)), "{err:?}");

    // The wallet's own limits are checked before anything is recorded.
    let err = d
        .pay("order-big", 5_000_001, "HKD", "Too much", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::AboveLimit(_)), "{err:?}");

    // Line items must add up to the amount; then they travel with the payment.
    let item = |name: &str, q: u32, a: i64| {
        let mut m: HashMap<&str, zvariant::Value<'_>> = HashMap::new();
        m.insert("name", zvariant::Value::from(name.to_owned()));
        m.insert("quantity", zvariant::Value::from(q));
        m.insert("amount-minor", zvariant::Value::from(a));
        m
    };
    let mut wrong = HashMap::new();
    wrong.insert(
        "line-items",
        zvariant::Value::from(vec![item("Gem", 3, 1000), item("Skin", 1, 1999)]),
    );
    let err = d
        .pay("order-li", 5000, "HKD", "Shop", wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::InvalidAmount(_)), "{err:?}");
    assert_eq!(journal_rows(state.path()), 0);
    let mut items = HashMap::new();
    items.insert(
        "line-items",
        zvariant::Value::from(vec![item("Gem", 3, 1000), item("Skin", 1, 2000)]),
    );
    let p = d.pay("order-li", 5000, "HKD", "Shop", items).await.unwrap();
    let (payment, _) = settled_payment(&conn, &p).await;
    assert_eq!(
        payment.state().await.unwrap(),
        "succeeded",
        "{}",
        daemon.logs()
    );
    let stored: String = rusqlite::Connection::open(state.path().join("journal.sqlite3"))
        .unwrap()
        .query_row("SELECT line_items FROM payments", [], |r| r.get(0))
        .unwrap();
    assert!(stored.contains("\"Skin\""), "{stored}");

    // Refunds: partial, idempotent by refund id, never above what was paid.
    assert_eq!(payment.refunded_minor().await.unwrap(), 0);
    let mut rid = HashMap::new();
    rid.insert("refund-id", zvariant::Value::from("r-1"));
    let (id1, st1) = payment
        .request_refund(2000, "one gem returned", rid.clone())
        .await
        .unwrap();
    assert_eq!(id1, "r-1");
    assert_eq!(st1, "succeeded", "{}", daemon.logs());
    let (_, again) = payment
        .request_refund(2000, "one gem returned", rid)
        .await
        .unwrap();
    assert_eq!(again, "succeeded");
    assert_eq!(payment.refunded_minor().await.unwrap(), 2000);
    let err = payment
        .request_refund(3001, "too much", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::RefundNotAllowed(_)), "{err:?}");
    let err = payment
        .request_refund(-5, "negative", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::InvalidAmount(_)), "{err:?}");
    let ledger = world.ledger().await;
    let refunds = ledger["refunds"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(refunds, 1, "one refund in the wallet's ledger: {ledger}");

    // Unbind: an app needs the user's approval on the display agent (without one:
    // NeedsConfirmation, nothing changed) ...
    let err = d.unbind(&path.as_ref(), HashMap::new()).await.unwrap_err();
    assert!(matches!(err, Wire::NeedsConfirmation(_)), "{err:?}");
    assert_eq!(binding.state().await.unwrap(), "bound");
    let _agent = approving_agent(&bus).await;
    // ... then BindingRemoved(unbound), the binding is gone, paying is refused.
    let mut removed = d.receive_binding_removed().await.unwrap();
    d.unbind(&path.as_ref(), HashMap::new()).await.unwrap();
    let signal = tokio::time::timeout(GUARD, removed.next())
        .await
        .expect("no BindingRemoved")
        .unwrap();
    let args = signal.args().unwrap();
    assert_eq!(args.reason, "unbound");
    assert_eq!(binding.state().await.unwrap(), "unbound");
    let err = d
        .pay("order-after", 100, "HKD", "x", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NotBound(_)), "{err:?}");
    let err = d
        .unbind(
            &zvariant::ObjectPath::try_from("/io/scanbind/Daemon1/binding/NOPE_1").unwrap(),
            HashMap::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NotFound(_)), "{err:?}");

    // Bind again, then the user unbinds in the wallet app: TOKEN_CANCELED reaches the
    // app as BindingRemoved(token-canceled).
    let path2 = bind(&world, &conn, &d).await;
    world.unbind_in_wallet(&user).await;
    let signal = tokio::time::timeout(GUARD, removed.next())
        .await
        .expect("no BindingRemoved after the wallet unbound")
        .unwrap();
    let args = signal.args().unwrap();
    assert_eq!(args.reason, "token-canceled", "{}", daemon.logs());
    assert_eq!(args.binding.as_str(), path2.as_str());
}

/// Alipay may take a refund asynchronously (`REFUND_IN_PROCESS`) and end it later: the
/// app sees `pending`, then the outcome: `RefundedMinor` grows for a success; a failure
/// shows as `failed` for the same refund id and frees its amount.
#[tokio::test(flavor = "multi_thread")]
async fn an_asynchronous_refund_settles_later_in_success_or_failure() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    bind(&world, &conn, &d).await;
    let p = d
        .pay("order-async-refund", 3000, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    let (payment, _) = settled_payment(&conn, &p).await;
    assert_eq!(payment.state().await.unwrap(), "succeeded");
    let with_id = |id: &str| HashMap::from([("refund-id", zvariant::Value::from(id.to_owned()))]);

    world
        .arm_fault(serde_json::json!({"endpoint": "refund", "kind": "in_process"}))
        .await;
    let (_, first) = payment
        .request_refund(1000, "slow", with_id("r-slow-ok"))
        .await
        .unwrap();
    assert_eq!(first, "pending", "{}", daemon.logs());
    eventually("the asynchronous refund succeeds", || async {
        payment.refunded_minor().await.unwrap() == 1000
    })
    .await;

    world
        .arm_fault(
            serde_json::json!({"endpoint": "refund", "kind": "in_process", "outcome": "PROCESS_FAIL"}),
        )
        .await;
    let (_, first) = payment
        .request_refund(1000, "slow", with_id("r-slow-fail"))
        .await
        .unwrap();
    assert_eq!(first, "pending");
    eventually("the asynchronous refund fails", || async {
        let (_, now) = payment
            .request_refund(1000, "slow", with_id("r-slow-fail"))
            .await
            .unwrap();
        now == "failed"
    })
    .await;
    assert_eq!(payment.refunded_minor().await.unwrap(), 1000);
    // The failed refund's amount is free again: the rest of the payment refunds.
    let (_, rest) = payment
        .request_refund(2000, "rest", with_id("r-rest"))
        .await
        .unwrap();
    assert_eq!(rest, "succeeded", "{}", daemon.logs());
    assert_eq!(payment.refunded_minor().await.unwrap(), 3000);
}

/// `kill -9` at each crash point of a payment, the app paying the same order again
/// after the restart: the same payment object, succeeded, charged once, delivered once.
/// The app's first `Pay` has one outcome per point: the two points inside `Pay`
/// (`before-journal`, `after-journal`) die before the reply, so the bus answers
/// `NoReply`; the two in the payment's driver (`after-send`, `after-settle`) come after
/// the reply, which the app holds. That order is forced, not raced: the server is
/// stopped (`SIGSTOP`) while the app pays, so the driver cannot get past its call to the
/// server until the app has its answer.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_every_step_of_a_payment_charges_once_and_delivers_once() {
    use rustix::process::{Pid, Signal, kill_process};
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let server_pid = Pid::from_raw(i32::try_from(server.pid()).unwrap()).unwrap();
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let addr = ["--address", bus.address()];
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    bind(&world, &conn, &d).await;
    drop(daemon);

    // Whether the app's first Pay is answered before the crash.
    let points = [
        ("before-journal", false),
        ("after-journal", false),
        ("after-send", true),
        ("after-settle", true),
    ];
    for (i, (point, replied)) in points.iter().enumerate() {
        let order = format!("order-{point}");
        let amount = 100 + i as i64;
        let mut crashing = spawn_daemon_with(
            &addr,
            &server.base,
            state.path(),
            &[("SCANBINDD_CRASH_AT", point)],
        );
        // The app pays with the server held; the server goes on once the app has its
        // answer (or the daemon has died).
        kill_process(server_pid, Signal::STOP).unwrap();
        let first = d.pay(&order, amount, "HKD", "Coins", HashMap::new()).await;
        kill_process(server_pid, Signal::CONT).unwrap();
        let status = crashing.wait_exit();
        assert!(!status.success(), "{point}: the daemon should have crashed");
        assert!(crashing.logs().contains(&format!("crash point {point}")));

        // Restarted, the app does what an app does after an error or at start: it pays
        // the same order again (idempotent) and catches up with ListPayments.
        let daemon = spawn_daemon(bus.address(), &server.base, state.path());
        let p = d
            .pay(&order, amount, "HKD", "Coins", HashMap::new())
            .await
            .unwrap();
        match (replied, first) {
            (true, Ok(before)) => assert_eq!(
                before, p,
                "{point}: the same payment object across the crash"
            ),
            (false, Err(Wire::ZBus(zbus::Error::MethodError(name, _, _)))) => assert_eq!(
                name.as_str(),
                "org.freedesktop.DBus.Error.NoReply",
                "{point}: the daemon died before replying"
            ),
            (_, first) => panic!("{point}: the first Pay answered {first:?}"),
        }
        let (payment, _) = settled_payment(&conn, &p).await;
        assert_eq!(
            payment.state().await.unwrap(),
            "succeeded",
            "{point}: {}",
            daemon.logs()
        );
        let mut unfinished = HashMap::new();
        unfinished.insert("unfinished", zvariant::Value::from(true));
        let open = d.list_payments(unfinished.clone()).await.unwrap();
        assert_eq!(open.len(), 1, "{point}: exactly this payment is to deliver");
        assert_eq!(open[0].payment, p);
        payment.finish(HashMap::new()).await.unwrap();
        assert!(d.list_payments(unfinished).await.unwrap().is_empty());
        drop(daemon);
    }

    // Every order charged exactly once in the wallet's ledger.
    let ledger = world.ledger().await;
    let payments = ledger["payments"].as_array().unwrap();
    assert_eq!(payments.len(), points.len(), "{ledger}");
    for p in payments {
        assert_eq!(p["moneyMovements"], 1, "{ledger}");
    }
    assert_eq!(journal_rows(state.path()), points.len() as i64);
}

/// Runs `busctl` against the private bus: another app (another executable).
fn busctl(bus: &PrivateBus, args: &[&str]) -> std::process::Output {
    std::process::Command::new("busctl")
        .arg(format!("--address={}", bus.address()))
        .args(args)
        .output()
        .expect("busctl (systemd)")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_cannot_see_or_touch_another_apps_payments() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    bind(&world, &conn, &d).await;

    // App B (busctl) pays; its order ids are its own.
    let out = busctl(
        &bus,
        &[
            "call",
            BUS_NAME,
            DAEMON_PATH,
            "io.scanbind.Daemon1",
            "Pay",
            "sxssa{sv}",
            "shared-order",
            "300",
            "HKD",
            "B's coins",
            "0",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let b_path = text
        .trim()
        .trim_start_matches("o ")
        .trim_matches('"')
        .to_owned();
    let b_path = zvariant::OwnedObjectPath::try_from(b_path).unwrap();
    eventually("B's payment to settle", || async {
        journal_state_of(state.path(), "shared-order") == "succeeded"
    })
    .await;

    // App A (this test) does not see it, cannot read, finish or refund it: B's
    // payment answers A as a path that is not served (issue 22, item 1).
    assert!(d.list_payments(HashMap::new()).await.unwrap().is_empty());
    let theirs = payment_proxy(&conn, &b_path).await;
    let err = theirs.receipt().await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownObject"), "{err:?}");
    let err = theirs.order_id().await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownObject"), "{err:?}");
    let err = theirs.finish(HashMap::new()).await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownObject"), "{err:?}");
    let err = theirs
        .request_refund(300, "mine now", HashMap::new())
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("UnknownObject"), "{err:?}");

    // A forged sender field: the bus daemon replaces it with ours, so it does nothing.
    let forged = zbus::message::Message::method_call(b_path.as_str(), "Finish")
        .unwrap()
        .sender(":1.1")
        .unwrap()
        .destination(BUS_NAME)
        .unwrap()
        .interface("io.scanbind.Payment1")
        .unwrap()
        .build(&(HashMap::<String, zvariant::Value<'_>>::new(),))
        .unwrap();
    let serial = forged.primary_header().serial_num();
    let mut replies = zbus::MessageStream::from(&conn);
    conn.send(&forged).await.unwrap();
    let reply = tokio::time::timeout(GUARD, async {
        loop {
            let m = replies.next().await.unwrap().unwrap();
            if m.header().reply_serial() == Some(serial) {
                return m;
            }
        }
    })
    .await
    .expect("no reply to the forged call");
    assert_eq!(
        reply.message_type(),
        zbus::message::Type::Error,
        "a forged sender must not finish B's payment"
    );
    assert_eq!(
        journal_delivered_of(state.path(), "shared-order"),
        0,
        "{}",
        daemon.logs()
    );

    // The same order id from A is A's own payment: a second, separate charge.
    let mine = d
        .pay("shared-order", 300, "HKD", "A's coins", HashMap::new())
        .await
        .unwrap();
    assert_ne!(mine, b_path);
    let (payment, _) = settled_payment(&conn, &mine).await;
    assert_eq!(payment.state().await.unwrap(), "succeeded");
    assert_eq!(d.list_payments(HashMap::new()).await.unwrap().len(), 1);
}

fn journal_state_of(state_dir: &Path, order: &str) -> String {
    let conn = rusqlite::Connection::open(state_dir.join("journal.sqlite3")).unwrap();
    conn.query_row(
        "SELECT state FROM payments WHERE order_id = ?1",
        [order],
        |r| r.get(0),
    )
    .unwrap_or_default()
}

fn journal_delivered_of(state_dir: &Path, order: &str) -> i64 {
    let conn = rusqlite::Connection::open(state_dir.join("journal.sqlite3")).unwrap();
    conn.query_row(
        "SELECT delivered FROM payments WHERE order_id = ?1",
        [order],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_interface_on_a_peer_to_peer_socket() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let state = tempfile::tempdir().unwrap();
    let sock = state.path().join("scanbindd.sock");
    let sock_s = sock.to_str().unwrap().to_owned();
    let daemon = spawn_daemon_with(
        &["--no-bus", "--p2p", &sock_s],
        &server.base,
        state.path(),
        &[],
    );
    let stream = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let conn = zbus::connection::Builder::unix_stream(stream)
        .p2p()
        .build()
        .await
        .unwrap();
    let d = Daemon1Proxy::builder(&conn)
        .destination(BUS_NAME)
        .unwrap()
        .build()
        .await
        .unwrap();
    let status = d.get_status(HashMap::new()).await.unwrap();
    assert_eq!(
        String::try_from(status["connectivity"].try_clone().unwrap()).unwrap(),
        "online"
    );
    let path = bind(&world, &conn, &d).await;
    let payment = pay_and_expect_success(&conn, &d, "p2p-order", 250, &daemon).await;
    assert_eq!(payment.binding().await.unwrap(), path);
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let keys: ReceiptKeySet = receipt_keys(&world, &server.base).await;
    let receipt = verify_receipt(&payment.receipt().await.unwrap(), &keys).unwrap();
    assert_eq!(
        receipt.app_id,
        exe.to_string_lossy(),
        "the peer is identified by the socket's credentials"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_process_gives_the_whole_system_with_dev() {
    require_secret_service();
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (daemon, sandbox) = spawn_daemon_dev(bus.address(), state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = binding_proxy(&conn, &path).await;
    let mut bound = binding.receive_completed().await.unwrap();
    // The phone: the embedded sandbox's control API.
    let http = common::http();
    let r = http
        .post(format!("{sandbox}/sandbox/v1/scan"))
        .json(&serde_json::json!({
            "codeValue": binding.code_value().await.unwrap(),
            "decision": "approve"
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let signal = tokio::time::timeout(GUARD, bound.next())
        .await
        .expect("no Binding Completed")
        .unwrap();
    assert_eq!(signal.args().unwrap().state, "bound", "{}", daemon.logs());
    pay_and_expect_success(&conn, &d, "dev-order", 1200, &daemon).await;
    let ledger: serde_json::Value = http
        .get(format!("{sandbox}/sandbox/v1/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["payments"][0]["moneyMovements"], 1, "{ledger}");
    // Its keys and database live in the state dir.
    for f in ["dev/merchant.pem", "dev/server.sqlite3", "journal.sqlite3"] {
        assert!(state.path().join(f).exists(), "{f}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_refreshed_before_they_expire() {
    require_secret_service();
    // Access tokens live 4 s: the daemon refreshes at half-life, again and again.
    let world = world_with_token_ttls(Some(std::time::Duration::from_secs(4))).await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    bind(&world, &conn, &d).await;
    eventually("two token refreshes", || async {
        daemon.logs().matches("tokens refreshed").count() >= 2
    })
    .await;
    // The first access token has expired by now; paying works with the refreshed one.
    pay_and_expect_success(&conn, &d, "after-refresh", 100, &daemon).await;
}

/// Offline, nothing is queued: started without a server, `Pay` (no wallet bound yet) is
/// `NotBound` and `StartBinding` is `Offline`; the daemon comes online with the server,
/// binds and pays; the server gone again, `Pay` with a bound wallet is `Offline`, and the
/// journal holds only the payment made online.
#[tokio::test(flavor = "multi_thread")]
async fn starts_offline_refuses_to_queue_and_comes_online_with_the_server() {
    require_secret_service();
    let world = world().await;
    // A port nobody listens on yet; the server comes up there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &url, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::builder(&conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    assert_eq!(d.connectivity().await.unwrap(), "offline");
    // A caching proxy follows PropertiesChanged; cached upfront, so it is subscribed
    // before this returns (a lazily caching one can miss an early change).
    let watcher = Daemon1Proxy::builder(&conn)
        .cache_properties(CacheProperties::Yes)
        .build()
        .await
        .unwrap();
    let mut changes = watcher.receive_connectivity_changed().await;
    let err = d
        .pay("offline-1", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    // No wallet is known yet either, and the binding is checked before the link (as
    // docs/dbus-api.md records for Pay): NotBound; nothing is recorded or queued.
    assert!(matches!(err, Wire::NotBound(_)), "{err:?}");
    let err = d
        .start_binding("ALIPAY_HK", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::Offline(_)), "{err:?}");
    assert_eq!(journal_rows(state.path()), 0);

    let addr = format!("127.0.0.1:{port}");
    let mut server = world.spawn_server(&[("SCANBIND_SERVER_SERVER_LISTEN", &addr)]);
    let came_online = tokio::time::timeout(GUARD, async {
        while let Some(c) = changes.next().await {
            if c.get().await.unwrap() == "online" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        came_online,
        Ok(true),
        "never came online: {}",
        daemon.logs()
    );
    bind(&world, &conn, &d).await;
    pay_and_expect_success(&conn, &d, "online-1", 100, &daemon).await;

    // The server goes away: the link notices (its event stream breaks), and a payment
    // with the bound wallet is refused, not queued.
    server.kill();
    let went_away = tokio::time::timeout(GUARD, async {
        while let Some(c) = changes.next().await {
            if c.get().await.unwrap() != "online" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(went_away, Ok(true), "never left online: {}", daemon.logs());
    let err = d
        .pay("offline-2", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::Offline(_)), "{err:?}");
    assert_eq!(
        journal_rows(state.path()),
        1,
        "only the payment made online"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_wants_a_provisioning_token_gets_it_from_a_file() {
    require_secret_service();
    let world = world().await;
    // The operator issues this device its own single-use enrollment token.
    let server = world.spawn_server(&[("SCANBIND_SERVER_DEVICES_REGISTRATION", "token")]);
    let token = world.enrollment_token(&server, "daemon e2e").await.unwrap();
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    // Without the token the daemon says why it cannot start, and does not leak it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanbindd"))
        .args([
            "--address",
            bus.address(),
            "--server",
            &server.base,
            "--state-dir",
        ])
        .arg(state.path())
        .env(
            "SCANBIND_VAULT_SERVICE",
            format!("io.scanbind.Daemon.test.{}", state.path().display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("provisioning"), "{err}");
    // With it, registration succeeds; the token never reaches the log.
    let token_file = state.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let token_arg = token_file.to_str().unwrap().to_owned();
    let daemon = spawn_daemon_with(
        &[
            "--address",
            bus.address(),
            "--provisioning-token-file",
            &token_arg,
        ],
        &server.base,
        state.path(),
        &[],
    );
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    bind(&world, &conn, &d).await;
    assert!(!daemon.logs().contains(&token));
}

/// Pays `order` by order code and returns the payment and its code once made.
async fn pay_by_code(
    conn: &zbus::Connection,
    d: &Daemon1Proxy<'_>,
    order: &str,
    amount: i64,
) -> (Payment1Proxy<'static>, String) {
    let mut options = HashMap::new();
    options.insert("order-code", zvariant::Value::from(true));
    let p = d
        .pay(order, amount, "HKD", "Season pass", options)
        .await
        .unwrap();
    // A caching proxy follows PropertiesChanged; the returned one reads live.
    let watcher = Payment1Proxy::builder(conn)
        .path(p.clone())
        .unwrap()
        .cache_properties(CacheProperties::Yes)
        .build()
        .await
        .unwrap();
    let mut changes = watcher.receive_order_code_changed().await;
    let payment = payment_proxy(conn, &p).await;
    let mut code = payment.order_code().await.unwrap();
    while code.is_empty() {
        let c = tokio::time::timeout(GUARD, changes.next())
            .await
            .expect("no order code")
            .unwrap();
        code = c.get().await.unwrap();
    }
    (payment, code)
}

#[tokio::test(flavor = "multi_thread")]
async fn pay_by_scanning_an_order_code_without_binding() {
    require_secret_service();
    let world = world().await;
    // The default expiry (five minutes): the scan below never races it.
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();

    // No wallet is bound: the order code needs none.
    let (payment, code) = pay_by_code(&conn, &d, "code-1", 3900).await;
    assert!(payment.order_code_expires_at().await.unwrap() > 0);
    let scanned = world.scan(&code, "approve").await;
    assert_eq!(scanned["outcome"], "paid", "{scanned}");
    let (payment, _) = settled_payment(&conn, &payment.inner().path().to_owned().into()).await;
    assert_eq!(
        payment.state().await.unwrap(),
        "succeeded",
        "{}",
        daemon.logs()
    );
    assert_eq!(
        payment.order_code().await.unwrap(),
        "",
        "no code once final"
    );
    let keys = receipt_keys(&world, &server.base).await;
    let receipt = verify_receipt(&payment.receipt().await.unwrap(), &keys).unwrap();
    assert_eq!(receipt.amount.value, 3900);
    let ledger = world.ledger().await;
    let charged = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["moneyMovements"] == 1)
        .count();
    assert_eq!(charged, 1, "the scanned code charged once: {ledger}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_code_nobody_scans_is_cancelled_when_it_expires() {
    require_secret_service();
    let world = world().await;
    // Unpaid order codes expire after 1 s (then the server cancels them).
    let server = world.spawn_server(&[("SCANBIND_SERVER_ORDER_CODE_EXPIRY_SECONDS", "1")]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();

    // Nobody scans it: it is cancelled after its code expires, and the app is told.
    let (unpaid, _) = pay_by_code(&conn, &d, "code-2", 1000).await;
    let (unpaid, signalled) =
        settled_payment(&conn, &unpaid.inner().path().to_owned().into()).await;
    if let Some(state) = signalled {
        assert_eq!(state, "cancelled");
    }
    assert_eq!(
        unpaid.state().await.unwrap(),
        "cancelled",
        "{}",
        daemon.logs()
    );
    let ledger = world.ledger().await;
    let charged = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["moneyMovements"] != 0)
        .count();
    assert_eq!(charged, 0, "an unscanned code charges nothing: {ledger}");
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_caps_and_budgets_hold_under_a_thousand_concurrent_attempts() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let policy = state.path().join("policy.toml");
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let me = me.to_str().unwrap();
    std::fs::write(
        &policy,
        format!(
            "unknown_apps = \"deny\"\n[apps.\"{me}\"]\nwallets = [\"ALIPAY_HK\"]\n\
             [apps.\"{me}\".limits.HKD]\nper_payment = 500\ndaily = 1000\n"
        ),
    )
    .unwrap();
    let policy_arg = policy.to_str().unwrap().to_owned();
    let daemon = spawn_daemon_with(
        &["--address", bus.address(), "--policy", &policy_arg],
        &server.base,
        state.path(),
        &[],
    );
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    bind(&world, &conn, &d).await;

    // Above the per-payment cap.
    let err = d
        .pay("cap", 501, "HKD", "Too much", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::AboveLimit(_)), "{err:?}");

    // 1,000 concurrent attempts of HK$0.10 against a HK$10.00 daily budget, over ten
    // connections (the bus allows 128 pending calls per connection).
    let mut proxies = Vec::new();
    for _ in 0..10 {
        let c = connect(&bus).await;
        proxies.push(Daemon1Proxy::new(&c).await.unwrap());
    }
    let attempts = (0..1000).map(|i| {
        let d = proxies[i % 10].clone();
        async move {
            d.pay(&format!("burst-{i}"), 10, "HKD", "Coin", HashMap::new())
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let accepted: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, Wire::AboveLimit(_)), "{e:?}");
        }
    }
    assert_eq!(
        accepted.len(),
        100,
        "exactly the budget's worth is accepted"
    );
    for p in &accepted {
        let (payment, _) = settled_payment(&conn, p).await;
        assert_eq!(
            payment.state().await.unwrap(),
            "succeeded",
            "{}",
            daemon.logs()
        );
    }
    let ledger = world.ledger().await;
    let charged: i64 = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["moneyMovements"] == 1)
        .map(|p| {
            p["amount"]["value"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        charged, 1000,
        "not one minor unit over the budget: {ledger}"
    );
    assert_eq!(journal_rows(state.path()), 100);

    // Edits take effect at the next payment, without a restart: denied, then an
    // invalid file fails closed and names the key.
    std::fs::write(&policy, format!("[apps.\"{me}\"]\nallow = false\n")).unwrap();
    let err = d
        .pay("denied", 10, "HKD", "Coin", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NotAllowed(_)), "{err:?}");
    std::fs::write(
        &policy,
        format!("[apps.\"{me}\".limits.HKD]\nper_payment = -5\nextra = 1\n"),
    )
    .unwrap();
    let err = d
        .pay("invalid", 10, "HKD", "Coin", HashMap::new())
        .await
        .unwrap_err();
    match &err {
        Wire::NotAllowed(m) => assert!(m.contains("policy"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(journal_rows(state.path()), 100, "nothing recorded");
}
