//! Issue 22, item 1: other apps' payments do not leak through signals or object paths.
//!
//! A hostile app on the same bus subscribes to every signal under the payment path
//! namespace with a plain `AddMatch` (no eavesdropping, no monitor: what any app may
//! do), identifies itself to the daemon like any app, and probes the victim's payment
//! object. It must receive none of the victim's `PropertiesChanged` / `Completed`
//! (while the victim, subscribed the same way, does), `Introspect` must list none of
//! the victim's payments, and every property, method and `Introspect` of the victim's
//! payment must answer as for a path that is not served (`UnknownObject`).
//!
//! Real processes: a `dbus-daemon`, `scanbindd`, and the apps, which are this test
//! binary re-run as children ([`app_child`]) driven line by line over stdin/stdout:
//!
//! - session bus, same user, two apps: the victim is this binary, the hostile app a
//!   copy of it at another path (another app id);
//! - system mode, two users, the same app: the daemon as `scanbind` on a private
//!   system bus with the packaged bus policy, the victim run as `sbapp1`, the hostile
//!   app as `sbapp2`.
//!
//! "None of the victim's signals" is checked without waiting for time to pass: after
//! the victim has received its `Completed`, the hostile app makes a method call to the
//! daemon; the bus delivers a sender's messages in order, so any signal the daemon sent
//! it before that reply is in its queue when the reply arrives.
//!
//! Needs `KEYRING_SS_TEST=1` for the session test (run through `scripts/test`; see
//! daemon/README.md) and root for the system test (it creates users).

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;

use common::{GUARD, spawn_daemon, world};
use futures_util::{FutureExt as _, StreamExt as _};
use scanbind_ipc::proxy::{Binding1Proxy, Daemon1Proxy};
use scanbind_ipc::{BUS_NAME, DAEMON_PATH};
use scanbind_testkit::system::{SharedBinary, SystemBus, SystemLayout, SystemUsers, as_user};
use scanbindd::test_util::{PrivateBus, require_secret_service};
use zbus::proxy::CacheProperties;

/// The bus address of the child (`app_child`); unset in the parent.
const BUS: &str = "SCANBIND_SIGNALS_TEST_BUS";
/// What every line of the child's answer starts with.
const OUT: &str = "app: ";
/// The node that holds every payment object.
const PAYMENTS: &str = "/io/scanbind/Daemon1/payment";

// ---------------------------------------------------------------------------------
// The app: this binary as a child.

/// Writes one `app: KEY VALUE` line.
fn say(key: &str, value: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{OUT}{key} {value}");
    let _ = out.flush();
}

/// The D-Bus error name of a failed standard call, or `ok`.
fn fdo_outcome<T>(r: zbus::fdo::Result<T>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => zbus::DBusError::name(&e).to_string(),
    }
}

/// The D-Bus error name of a failed call, or `ok`.
fn outcome<T>(r: zbus::Result<T>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(zbus::Error::MethodError(name, _, _)) => name.to_string(),
        Err(zbus::Error::FDO(e)) => zbus::DBusError::name(&*e).to_string(),
        Err(e) => format!("other:{e:?}").replace(' ', "_"),
    }
}

/// The app side, run only as a child (`BUS` set): connects, subscribes to every
/// signal under the payment path namespace with a plain `AddMatch`, then runs the
/// commands of its stdin, one per line, answering with `app: KEY VALUE` lines:
///
/// - `list`: `ListPayments` (the app identifies itself): `listed N`;
/// - `bind`: `StartBinding`: `code VALUE`, then `bound STATE` at its `Completed`;
/// - `pay ORDER [BINDING]`: `Pay`: `payment PATH`, then `completed PATH STATE` once
///   its `Completed` came through the subscription;
/// - `probe PATH [calls]`: what this app learns about someone's payment at `PATH`
///   (with `calls`: also calling its methods);
/// - `signals`: a call to the daemon (the ordering barrier), then `signal PATH
///   MEMBER` for every signal received so far, then `end`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_child() {
    let Ok(address) = std::env::var(BUS) else {
        return;
    };
    let conn = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .method_timeout(GUARD)
        .build()
        .await
        .unwrap();
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path_namespace(PAYMENTS)
        .unwrap()
        .build();
    // AddMatch on the bus: in place when this returns.
    let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None)
        .await
        .unwrap();
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let record = |seen: &mut Vec<(String, String, String)>, m: &zbus::Message| {
        let h = m.header();
        let path = h.path().map(|p| p.to_string()).unwrap_or_default();
        let member = h.member().map(|p| p.to_string()).unwrap_or_default();
        let state = if member == "Completed" {
            m.body()
                .deserialize::<(String, HashMap<String, zvariant::OwnedValue>)>()
                .map(|b| b.0)
                .unwrap_or_default()
        } else {
            String::new()
        };
        seen.push((path, member, state));
    };
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    say(
        "ready",
        conn.unique_name().map(|n| n.as_str()).unwrap_or("?"),
    );
    let mut input = String::new();
    loop {
        input.clear();
        if std::io::stdin().read_line(&mut input).unwrap() == 0 {
            return;
        }
        let words: Vec<&str> = input.split_whitespace().collect();
        match words.as_slice() {
            ["list"] => {
                let list = d.list_payments(HashMap::new()).await.unwrap();
                say("listed", &list.len().to_string());
            }
            ["bind"] => {
                let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
                let binding = Binding1Proxy::builder(&conn)
                    .path(path.clone())
                    .unwrap()
                    .cache_properties(CacheProperties::No)
                    .build()
                    .await
                    .unwrap();
                let mut done = binding.receive_completed().await.unwrap();
                say("binding", path.as_str());
                say("code", &binding.code_value().await.unwrap());
                let signal = tokio::time::timeout(GUARD, done.next())
                    .await
                    .expect("no Binding Completed within the guard time")
                    .unwrap();
                say("bound", signal.args().unwrap().state);
            }
            ["pay", order, rest @ ..] => {
                let mut options = HashMap::new();
                if let [binding] = rest {
                    let binding = zvariant::ObjectPath::try_from(*binding).unwrap();
                    options.insert("binding", zvariant::Value::from(binding));
                }
                let path = d.pay(order, 100, "HKD", "Coins", options).await.unwrap();
                say("payment", path.as_str());
                // Its Completed, through the subscription made before the call.
                let state = loop {
                    let m = tokio::time::timeout(GUARD, stream.next())
                        .await
                        .expect("no Completed of the app's own payment within the guard time")
                        .unwrap()
                        .unwrap();
                    record(&mut seen, &m);
                    let last = seen.last().unwrap();
                    if last.0 == path.as_str() && last.1 == "Completed" {
                        break last.2.clone();
                    }
                };
                say("completed", &format!("{path} {state}"));
            }
            ["probe", path, rest @ ..] => {
                let introspect = |at: String| {
                    let conn = conn.clone();
                    async move {
                        zbus::fdo::IntrospectableProxy::builder(&conn)
                            .destination(BUS_NAME)
                            .unwrap()
                            .path(at)
                            .unwrap()
                            .build()
                            .await
                            .unwrap()
                            .introspect()
                            .await
                    }
                };
                let node = path.rsplit('/').next().unwrap();
                // Every node from the root down: does any show the payment?
                for at in ["/", "/io", "/io/scanbind", DAEMON_PATH, PAYMENTS] {
                    let xml = introspect(at.to_owned()).await.unwrap();
                    let shows = xml.contains(&format!("\"{node}\""));
                    say("introspect", &format!("{at} {shows}"));
                }
                let children: Vec<String> = zbus_xml::Node::from_reader(
                    introspect(PAYMENTS.to_owned()).await.unwrap().as_bytes(),
                )
                .unwrap()
                .nodes()
                .iter()
                .filter_map(|n| n.name().map(str::to_owned))
                .collect();
                say("children", &children.join(","));
                say(
                    "introspect-payment",
                    &fdo_outcome(introspect(path.to_string()).await),
                );
                let props = zbus::fdo::PropertiesProxy::builder(&conn)
                    .destination(BUS_NAME)
                    .unwrap()
                    .path(*path)
                    .unwrap()
                    .build()
                    .await
                    .unwrap();
                let iface =
                    zbus::names::InterfaceName::from_static_str("io.scanbind.Payment1").unwrap();
                say("get", &fdo_outcome(props.get(iface.clone(), "State").await));
                say(
                    "get-receipt",
                    &fdo_outcome(props.get(iface.clone(), "Receipt").await),
                );
                say("get-all", &fdo_outcome(props.get_all(iface).await));
                if rest != ["calls"] {
                    continue;
                }
                let none: HashMap<&str, zvariant::Value<'_>> = HashMap::new();
                let finish = conn
                    .call_method(
                        Some(BUS_NAME),
                        *path,
                        Some("io.scanbind.Payment1"),
                        "Finish",
                        &(none,),
                    )
                    .await;
                say("finish", &outcome(finish));
                let none: HashMap<&str, zvariant::Value<'_>> = HashMap::new();
                let refund = conn
                    .call_method(
                        Some(BUS_NAME),
                        *path,
                        Some("io.scanbind.Payment1"),
                        "RequestRefund",
                        &(1_i64, "mine now", none),
                    )
                    .await;
                say("refund", &outcome(refund));
            }
            ["signals"] => {
                // The barrier: the reply comes after every signal the daemon sent
                // this connection before it.
                d.list_payments(HashMap::new()).await.unwrap();
                while let Some(Some(Ok(m))) = stream.next().now_or_never() {
                    record(&mut seen, &m);
                }
                for (path, member, _) in &seen {
                    say("signal", &format!("{path} {member}"));
                }
                say("end", "");
            }
            other => panic!("unknown command {other:?}"),
        }
    }
}

/// One app: a child running [`app_child`], its answers as they come.
struct App {
    what: String,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl App {
    /// Starts `cmd` (this binary or a copy, possibly through `setpriv`) as the app
    /// on the bus at `address`; returns once it is subscribed.
    fn start(what: &str, mut cmd: Command, address: &str) -> App {
        let mut child = cmd
            .args(["app_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(BUS, address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the app");
        // libtest writes "test app_child ... " before the test's own output, without a
        // line break: an answer starts anywhere in a line.
        let lines = common::lines_of(child.stdout.take().unwrap(), |line| {
            line.find(OUT).map(|at| line[at + OUT.len()..].to_owned())
        });
        let stdin = child.stdin.take().unwrap();
        let mut app = App {
            what: what.to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
        };
        app.expect("ready");
        app
    }

    /// Sends a command.
    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("the app reads its commands");
    }

    /// The value of the next line with `key` (other lines are kept for the failure
    /// message).
    fn expect(&mut self, key: &str) -> String {
        loop {
            match self.lines.recv_timeout(GUARD) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let (k, v) = line.split_once(' ').unwrap_or((&line, ""));
                    if k == key {
                        return v.to_owned();
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    panic!(
                        "the app ({}) said no {key} ({e}); it said {:?}",
                        self.what, self.seen
                    );
                }
            }
        }
    }

    /// Every `(path, member)` signal it received, after the ordering barrier.
    fn signals(&mut self) -> Vec<(String, String)> {
        self.send("signals");
        let mut out = Vec::new();
        loop {
            match self.lines.recv_timeout(GUARD) {
                Ok(line) if line.starts_with("end") => return out,
                Ok(line) => {
                    if let Some(s) = line.strip_prefix("signal ") {
                        let (p, m) = s.split_once(' ').unwrap();
                        out.push((p.to_owned(), m.to_owned()));
                    }
                }
                Err(e) => panic!("the app ({}) did not list its signals: {e}", self.what),
            }
        }
    }

    /// Pays `order` (with `binding`, if given): its path, once the app saw its
    /// `Completed` (state `succeeded`).
    fn pay(&mut self, order: &str, binding: Option<&str>) -> String {
        self.send(&format!("pay {order} {}", binding.unwrap_or_default()));
        let path = self.expect("payment");
        let completed = self.expect("completed");
        assert_eq!(completed, format!("{path} succeeded"), "{}", self.what);
        path
    }

    /// Probes the payment at `path` (`calls`: its methods too): the answers by key.
    fn probe(&mut self, path: &str, calls: bool) -> HashMap<String, Vec<String>> {
        self.send(&format!(
            "probe {path} {}",
            if calls { "calls" } else { "" }
        ));
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for key in ["introspect"; 5] {
            let v = self.expect(key);
            out.entry(key.to_owned()).or_default().push(v);
        }
        let keys: &[&str] = if calls {
            &[
                "children",
                "introspect-payment",
                "get",
                "get-receipt",
                "get-all",
                "finish",
                "refund",
            ]
        } else {
            &[
                "children",
                "introspect-payment",
                "get",
                "get-receipt",
                "get-all",
            ]
        };
        for &key in keys {
            let v = self.expect(key);
            out.entry(key.to_owned()).or_default().push(v);
        }
        out
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The node name of a payment path (`p<n>`).
fn node(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

/// What zbus answers for a path it does not serve.
const UNKNOWN_OBJECT: &str = "org.freedesktop.DBus.Error.UnknownObject";

/// The hostile app saw nothing of the victim's payment at `victim` (`probe`), and its
/// `signals` hold none on that path.
fn assert_hidden(probe: &HashMap<String, Vec<String>>, signals: &[(String, String)], victim: &str) {
    let leaked: Vec<_> = signals.iter().filter(|(p, _)| p == victim).collect();
    assert!(
        leaked.is_empty(),
        "the hostile app received the victim's signals: {leaked:?}"
    );
    for shown in &probe["introspect"] {
        assert!(
            shown.ends_with(" false"),
            "Introspect shows the victim's payment: {shown}"
        );
    }
    assert!(
        !probe["children"][0].split(',').any(|c| c == node(victim)),
        "the payment node lists the victim's payment: {:?}",
        probe["children"]
    );
    for key in [
        "introspect-payment",
        "get",
        "get-receipt",
        "get-all",
        "finish",
        "refund",
    ] {
        assert_eq!(
            probe[key],
            [UNKNOWN_OBJECT],
            "{key} of the victim's payment by the hostile app"
        );
    }
}

/// The victim received its payment's `PropertiesChanged` and `Completed`.
fn assert_received(signals: &[(String, String)], path: &str) {
    for member in ["PropertiesChanged", "Completed"] {
        assert!(
            signals.iter().any(|(p, m)| p == path && m == member),
            "the victim did not receive its own {member}: {signals:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// The tests.

/// Session bus, one user, two apps: the victim (this binary) and a hostile app (a copy
/// of it at another path) that has paid too, so it is a known app with payments of
/// its own.
#[tokio::test(flavor = "multi_thread")]
async fn another_app_of_the_same_user_sees_no_payment_of_the_victim() {
    if std::env::var_os(BUS).is_some() {
        return;
    }
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = spawn_daemon(bus.address(), &server.base, state.path());
    let me = std::env::current_exe().unwrap();
    let copy = SharedBinary::copy(&me);
    assert_ne!(copy.path(), me, "the hostile app is another executable");

    let mut victim = App::start("victim", Command::new(&me), bus.address());
    let mut hostile = App::start("hostile", Command::new(copy.path()), bus.address());
    // Both known to the daemon before anything happens.
    victim.send("list");
    victim.expect("listed");
    hostile.send("list");
    hostile.expect("listed");

    victim.send("bind");
    let code = victim.expect("code");
    world.scan(&code, "approve").await;
    assert_eq!(victim.expect("bound"), "bound", "{}", daemon.logs());

    let paid = victim.pay("victim-1", None);
    // The hostile app's own payment: its subscription works, and it gets its own.
    let own = hostile.pay("hostile-1", None);
    assert_ne!(own, paid);

    let probe = hostile.probe(&paid, true);
    let hostile_signals = hostile.signals();
    assert_received(&hostile_signals, &own);
    assert_hidden(&probe, &hostile_signals, &paid);
    // The hostile app's Introspect lists its own payment.
    assert_eq!(probe["children"], [node(&own)]);

    // The victim received its own, and none of the hostile app's; its Introspect
    // lists its own payment only.
    let victim_signals = victim.signals();
    assert_received(&victim_signals, &paid);
    assert!(
        !victim_signals.iter().any(|(p, _)| *p == own),
        "the victim received the other app's signals: {victim_signals:?}"
    );
    let theirs = victim.probe(&own, true);
    assert_hidden(&theirs, &victim_signals, &own);
    assert_eq!(theirs["children"], [node(&paid)]);
    drop(daemon);
}

/// System mode, two users of the same app: the victim `sbapp1`, the hostile `sbapp2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_on_the_system_bus_sees_no_payment_of_the_victim() {
    if std::env::var_os(BUS).is_some() {
        return;
    }
    let users = SystemUsers::ensure();
    let [alice, bob] = &users.apps;
    let bus = SystemBus::start().unwrap();
    let layout = SystemLayout::new(&users.daemon);
    let me = std::env::current_exe().unwrap();
    let app = SharedBinary::new(&me);
    layout.write_policy(&format!(
        "[apps.\"{app}\".limits.HKD]\ndaily = 100000\n",
        app = app.path().display()
    ));
    let (daemon, sandbox) = layout
        .daemon_command(&common::daemon_binary(), &users.daemon, bus.address())
        .log_level("info,scanbindd=debug")
        .spawn_dev()
        .unwrap_or_else(|e| panic!("scanbindd --system --dev: {e}\nbus: {}", bus.logs()));
    let a = bus.address();

    let mut victim = App::start("victim as sbapp1", as_user(alice, app.path(), a), a);
    let mut hostile = App::start("hostile as sbapp2", as_user(bob, app.path(), a), a);
    hostile.send("list");
    hostile.expect("listed");

    victim.send("bind");
    let binding = victim.expect("binding");
    let code = victim.expect("code");
    let r = common::http()
        .post(format!("{sandbox}/sandbox/v1/scan"))
        .json(&serde_json::json!({"codeValue": code, "decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "scan failed: {}", r.status());
    assert_eq!(victim.expect("bound"), "bound", "{}", daemon.logs());
    let paid = victim.pay("tv-order-1", Some(&binding));

    let probe = hostile.probe(&paid, true);
    let hostile_signals = hostile.signals();
    assert_hidden(&probe, &hostile_signals, &paid);
    assert!(
        probe["children"][0].is_empty(),
        "sbapp2 has no payment: {:?}",
        probe["children"]
    );

    let victim_signals = victim.signals();
    assert_received(&victim_signals, &paid);
    let mine = victim.probe(&paid, false);
    assert_eq!(mine["children"], [node(&paid)]);
    assert_eq!(mine["get"], ["ok"]);
    assert_eq!(mine["introspect-payment"], ["ok"]);
    drop(daemon);
}
