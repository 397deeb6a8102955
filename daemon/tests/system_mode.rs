//! Issue 21, "Test it for real": system mode end to end, with several real users on a
//! private system bus and no session bus anywhere.
//!
//! - The users (`scanbind_testkit::system::SystemUsers`): `scanbind` runs the daemon,
//!   `sbapp1` and `sbapp2` run the same app, `sbagent` (group `scanbind-agent`) runs
//!   the display agent. Created with `useradd --system` when missing; the test runs as
//!   root, as CI does.
//! - The bus (`SystemBus`): a `dbus-daemon` with the system bus's configuration and
//!   default-deny policy, plus `packaging/dbus/system.d/io.scanbind.Daemon.conf`.
//! - The daemon: `scanbindd --system --dev` started the way
//!   `packaging/systemd/system/scanbindd.service` starts it (`SystemLayout`): as
//!   `scanbind` through `setpriv` with `CAP_SYS_PTRACE` as its only (ambient)
//!   capability, its state directory `scanbind` 0700, the vault's master secret as the
//!   credential `scanbind-vault` in `$CREDENTIALS_DIRECTORY`, a root-owned policy file.
//!   `--dev` keeps the sandbox and the merchant server in the daemon's process, their
//!   state in `<state>/dev`, so a restart of the daemon restarts them on the same data.
//! - The app: this test binary re-run as a child ([`app_child`]) through `setpriv` as
//!   `sbapp1` or `sbapp2`; every child is one app call on the system bus, so both
//!   users run the same executable (the same app id). A copy of the binary at another
//!   path is a second app, one the policy does not list.
//! - The agent: the real `scanbind-agent --system --daemon-user scanbind` as `sbagent`
//!   on Xvfb; `xdotool` presses the remote's keys.
//!
//! A second test opens `io.scanbind.Agent1` to every user on the bus, to reach the
//! agent's own check of its caller (on the packaged policy the bus refuses first).
//!
//! Every wait ends on an event (a line of a child, a D-Bus signal) within a guard time.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;

use common::{GUARD, daemon_binary};
use futures_util::StreamExt as _;
use scanbind_ipc::proxy::{Binding1Proxy, Daemon1Proxy};
use scanbind_testkit::display::{Xvfb, require_display_tools};
use scanbind_testkit::system::{
    BinDir, DAEMON_USER, SharedBinary, SystemBus, SystemLayout, SystemUser, SystemUsers, as_user,
    own,
};
use scanbind_testkit::{DaemonProc, eventually};
use zbus::proxy::CacheProperties;

/// The child's action (`app_child`), words separated by spaces.
const ACTION: &str = "SCANBIND_SYSTEM_TEST_ACTION";
/// What every line of the child's answer starts with.
const OUT: &str = "app: ";
/// The app's daily budget in HKD cents (`policy.toml`).
const DAILY: i64 = 1500;
/// The display agent's object path (`scanbind_agent::service::DEFAULT_AGENT_PATH`).
const AGENT_PATH: &str = "/io/scanbind/Agent";

// ---------------------------------------------------------------------------------
// The app: this binary as a child, one call per process.

/// The app side, run only as a child (`ACTION` set): one D-Bus call on the system bus,
/// its outcome as `app: KEY VALUE` lines. Without `ACTION` it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_child() {
    let Ok(action) = std::env::var(ACTION) else {
        return;
    };
    let words: Vec<&str> = action.split(' ').collect();
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none(),
        "the app must not see a session bus"
    );
    let say = |key: &str, value: &str| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{OUT}{key} {value}");
        let _ = out.flush();
    };
    if let ["open", path] = words.as_slice() {
        match std::fs::File::open(path) {
            Ok(_) => say("open", "ok"),
            Err(e) => say("open", &e.raw_os_error().unwrap_or(-1).to_string()),
        }
        return;
    }
    let conn = zbus::connection::Builder::system()
        .unwrap()
        .method_timeout(GUARD)
        .build()
        .await
        .unwrap();
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    match words.as_slice() {
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
        ["binding-state", path] => {
            let binding = Binding1Proxy::builder(&conn)
                .path(*path)
                .unwrap()
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .unwrap();
            match binding.state().await {
                Ok(s) => say("binding-state", &s),
                Err(e) => say("error", &format!("{e:?}")),
            }
        }
        ["pay", order, amount, binding] => {
            let amount: i64 = amount.parse().unwrap();
            // Several wallets are bound on a shared device: the app names its own.
            let binding = zvariant::ObjectPath::try_from(*binding).unwrap();
            let options = HashMap::from([("binding", zvariant::Value::from(binding))]);
            match d.pay(order, amount, "HKD", "Coins", options).await {
                Err(e) => {
                    let debug = format!("{e:?}");
                    say("error", &format!("{} {debug}", error_name(&debug)));
                }
                Ok(path) => {
                    say("payment", path.as_str());
                    say("state", &common::settled(&conn, &path).await);
                }
            }
        }
        ["list"] => {
            let list = d.list_payments(HashMap::new()).await.unwrap();
            let mut orders: Vec<String> = list
                .iter()
                .map(|p| format!("{}={}", p.order_id, p.payment.as_str()))
                .collect();
            orders.sort();
            say("list", &orders.join(","));
        }
        ["impostor", agent] => {
            let details: HashMap<String, zvariant::Value<'_>> = HashMap::new();
            let reply = conn
                .call_method(
                    Some(*agent),
                    AGENT_PATH,
                    Some("io.scanbind.Agent1"),
                    "Confirm",
                    &("impostor-1", "consent", details),
                )
                .await;
            match reply {
                Ok(_) => say("impostor", "answered"),
                Err(zbus::Error::MethodError(name, message, _)) => say(
                    "impostor",
                    &format!("{} {}", name.as_str(), message.unwrap_or_default()),
                ),
                Err(e) => say("impostor", &format!("{e:?}")),
            }
        }
        other => panic!("unknown action {other:?}"),
    }
}

/// `AboveLimit("...")` → `AboveLimit`: the variant of a `scanbind_ipc::Error`.
fn error_name(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One run of the app as a user: its `app:` lines as they come.
struct App {
    what: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl App {
    /// `exe` (this test binary, or a copy) as `user`, doing `action`.
    fn start(user: &SystemUser, exe: &Path, bus: &str, action: &str) -> App {
        let mut child = as_user(user, exe, bus)
            .args(["app_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(ACTION, action)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the app through setpriv");
        // libtest writes "test app_child ... " before the test's own output, without a
        // line break: an answer starts anywhere in a line.
        let lines = common::lines_of(child.stdout.take().unwrap(), |line| {
            line.find(OUT).map(|at| line[at + OUT.len()..].to_owned())
        });
        App {
            what: format!("{action:?} as {}", user.name),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line: `(key, value)`.
    fn next(&mut self, wanted: &str) -> (String, String) {
        match self.lines.recv_timeout(GUARD) {
            Ok(line) => {
                self.seen.push(line.clone());
                let (k, v) = line.split_once(' ').unwrap_or((&line, ""));
                (k.to_owned(), v.to_owned())
            }
            Err(e) => {
                let _ = self.child.kill();
                panic!(
                    "the app ({}) said no {wanted} ({e}); it said {:?}",
                    self.what, self.seen
                );
            }
        }
    }

    /// The value of the next line with `key` (other keys are kept for the failure
    /// message).
    fn expect(&mut self, key: &str) -> String {
        loop {
            let (k, v) = self.next(key);
            if k == key {
                return v;
            }
        }
    }

    /// Waits for the child's end; it must have passed.
    fn done(mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the app ({}) failed: {status}", self.what);
    }
}

/// Pays `amount` HKD cents for `order` as `user` with the wallet of `binding`: the
/// payment's path and its final state, or the name of the error `Pay` returned (its
/// message goes to stderr).
fn pay(
    user: &SystemUser,
    exe: &Path,
    bus: &str,
    (order, amount): (&str, i64),
    binding: &str,
) -> Result<(String, String), String> {
    let action = format!("pay {order} {amount} {binding}");
    let mut app = App::start(user, exe, bus, &action);
    let (k, v) = app.next("payment or error");
    let out = match k.as_str() {
        "payment" => Ok((v, app.expect("state"))),
        "error" => {
            eprintln!("{action} as {}: {v}", user.name);
            Err(v.split(' ').next().unwrap_or_default().to_owned())
        }
        other => panic!("the app said {other} {v}"),
    };
    app.done();
    out
}

/// Runs `action` as `user` and returns the value of `key`.
fn app_once(user: &SystemUser, exe: &Path, bus: &str, action: &str, key: &str) -> String {
    let mut app = App::start(user, exe, bus, action);
    let v = app.expect(key);
    app.done();
    v
}

// ---------------------------------------------------------------------------------
// The system around it.

/// The phone of the dev stack's sandbox.
async fn scan(sandbox: &str, code_value: &str) {
    let r = common::http()
        .post(format!("{sandbox}/sandbox/v1/scan"))
        .json(&serde_json::json!({"codeValue": code_value, "decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "scan failed: {}", r.status());
}

/// The sandbox's ledger: `(order id at the wallet, money movements)` of each payment.
async fn charges(sandbox: &str) -> usize {
    let ledger: serde_json::Value = common::http()
        .get(format!("{sandbox}/sandbox/v1/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ledger["payments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["moneyMovements"].as_i64() == Some(1))
                .count()
        })
        .unwrap_or(0)
}

/// Binds a wallet as `user`: the app starts it, the phone approves, the app sees
/// `bound`. Returns the binding's path.
async fn bind(user: &SystemUser, exe: &Path, bus: &str, sandbox: &str, logs: &str) -> String {
    let mut app = App::start(user, exe, bus, "bind");
    let path = app.expect("binding");
    let code = app.expect("code");
    scan(sandbox, &code).await;
    let state = app.expect("bound");
    assert_eq!(state, "bound", "{logs}");
    app.done();
    path
}

/// The merchant server's devices, and the devices its payments came from (the dev
/// stack's database, read from outside).
fn server_devices(state: &Path) -> (Vec<String>, Vec<String>) {
    let db = rusqlite::Connection::open(state.join("dev/server.sqlite3")).unwrap();
    let column = |sql: &str| -> Vec<String> {
        let mut q = db.prepare(sql).unwrap();
        q.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    (
        column("SELECT device_id FROM devices ORDER BY device_id"),
        column("SELECT DISTINCT device_id FROM payments ORDER BY device_id"),
    )
}

/// `scanbind-agent` built once per test binary, next to `scanbindd`.
fn agent_binary() -> PathBuf {
    common::built_beside_daemon("scanbind-agent", "scanbind-agent")
}

/// The real display agent as `sbagent`: `scanbind-agent --system --daemon-user
/// scanbind` on the Xvfb display, its stdout lines collected. Killed on drop.
struct Agent {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _home: tempfile::TempDir,
}

impl Agent {
    fn start(user: &SystemUser, bin: &Path, bus: &str, display: &str, log: &Path) -> Agent {
        let home = tempfile::tempdir().unwrap();
        own(home.path(), user, 0o700);
        let mut child = as_user(user, bin, bus)
            .args(["--system", "--daemon-user", DAEMON_USER])
            .env("DISPLAY", display)
            .env("HOME", home.path())
            .env("SCANBIND_LOG", "info")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("XDG_RUNTIME_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .expect("start scanbind-agent through setpriv");
        let lines = common::lines_of(child.stdout.take().unwrap(), Some);
        Agent {
            child,
            lines,
            seen: Vec::new(),
            _home: home,
        }
    }

    /// The rest of the next line starting with `prefix` (earlier lines are kept).
    fn expect(&mut self, prefix: &str, log: &Path) -> String {
        loop {
            match self.lines.recv_timeout(GUARD) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(e) => panic!(
                    "scanbind-agent printed no {prefix:?} ({e}); it printed {:?}; its log:\n{}",
                    self.seen,
                    std::fs::read_to_string(log).unwrap_or_default()
                ),
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The unique bus name of the only connection of `uid`.
async fn unique_name_of(bus: &SystemBus, uid: u32) -> String {
    let conn = bus.connect().await.unwrap();
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
    let mut found = Vec::new();
    for name in dbus.list_names().await.unwrap() {
        if !name.starts_with(':') {
            continue;
        }
        let bus_name = zbus::names::BusName::try_from(name.as_str()).unwrap();
        if dbus.get_connection_unix_user(bus_name).await.ok() == Some(uid) {
            found.push(name.to_string());
        }
    }
    assert_eq!(found.len(), 1, "connections of uid {uid}: {found:?}");
    found.remove(0)
}

fn start_daemon(
    layout: &SystemLayout,
    binary: &Path,
    users: &SystemUsers,
    bus: &SystemBus,
) -> (DaemonProc, String) {
    layout
        .daemon_command(binary, &users.daemon, bus.address())
        .log_level("info,scanbindd=debug")
        .spawn_dev()
        .unwrap_or_else(|e| {
            panic!(
                "scanbindd --system --dev as scanbind: {e}\nbus: {}",
                bus.logs()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_mode_with_several_users_on_a_system_bus() {
    let users = SystemUsers::ensure();
    require_display_tools();
    let [app1, app2] = &users.apps;
    let bus = SystemBus::start().unwrap();
    let layout = SystemLayout::new(&users.daemon);
    // The daemon and the agent side by side, as installed: the daemon trusts the
    // agents beside it (run by a member of scanbind-agent).
    let bin = BinDir::new();
    let daemon_bin = bin.add(&daemon_binary());
    let agent_bin = bin.add(&agent_binary());
    let me = std::env::current_exe().unwrap();
    // The app: this binary where every user can run it (both users run this path).
    let app = SharedBinary::new(&me);
    // A second app at another path, one the policy does not list.
    let stranger = SharedBinary::copy(&me);
    layout.write_policy(&format!(
        "unknown_apps = \"ask\"\n\
         [consent.limits.HKD]\ndaily = 100000\n\
         [apps.\"{app}\".limits.HKD]\ndaily = {DAILY}\n",
        app = app.display()
    ));
    let (mut daemon, mut sandbox) = start_daemon(&layout, &daemon_bin, &users, &bus);
    let a = bus.address();

    // sbapp1: a binding and a payment.
    let binding1 = bind(app1, &app, a, &sandbox, &daemon.logs()).await;
    let (payment1, state) =
        pay(app1, &app, a, ("tv-order-1", 1000), &binding1).expect("sbapp1 pays");
    assert_eq!(state, "succeeded", "{}", daemon.logs());

    // No app user can read the vault.
    let vault = layout.vault_file();
    assert!(vault.is_file(), "no vault file {}", vault.display());
    let opened = app_once(app1, &app, a, &format!("open {}", vault.display()), "open");
    assert_eq!(opened, "13", "open() of the vault as sbapp1: EACCES");

    // A restart: the same device at the server, the binding still bound, a new payment
    // without binding again.
    let (devices, from) = server_devices(&layout.state_dir());
    assert_eq!(devices.len(), 1, "one device registered: {devices:?}");
    assert_eq!(from, devices, "the payment came from that device");
    daemon.kill();
    drop(daemon);
    (daemon, sandbox) = start_daemon(&layout, &daemon_bin, &users, &bus);
    let state = app_once(
        app1,
        &app,
        a,
        &format!("binding-state {binding1}"),
        "binding-state",
    );
    assert_eq!(state, "bound", "after the restart\n{}", daemon.logs());
    let (payment1b, state) =
        pay(app1, &app, a, ("tv-order-2", 100), &binding1).expect("sbapp1 pays again");
    assert_eq!(state, "succeeded", "{}", daemon.logs());
    assert_eq!(
        server_devices(&layout.state_dir()),
        (devices.clone(), devices.clone()),
        "the same device key after the restart"
    );
    assert_eq!(charges(&sandbox).await, 2, "two charges at the wallet");

    // sbapp2, the same app binary: its own binding and payment, even under the same
    // order id, and its own budget.
    let binding2 = bind(app2, &app, a, &sandbox, &daemon.logs()).await;
    let (payment2, state) =
        pay(app2, &app, a, ("tv-order-1", 1000), &binding2).expect("sbapp2 pays");
    assert_eq!(state, "succeeded", "{}", daemon.logs());
    assert_ne!(payment1, payment2, "one payment per (user, app, order)");
    assert_eq!(charges(&sandbox).await, 3, "three charges at the wallet");
    // sbapp1 has spent 1100 of its 1500: 1000 more is above its budget.
    let over = pay(app1, &app, a, ("tv-order-3", 1000), &binding1);
    assert_eq!(over, Err("AboveLimit".to_owned()), "sbapp1's daily budget");

    // Each user sees its own payments only.
    let list1 = app_once(app1, &app, a, "list", "list");
    let list2 = app_once(app2, &app, a, "list", "list");
    assert_eq!(
        list1,
        format!("tv-order-1={payment1},tv-order-2={payment1b}"),
        "sbapp1's payments"
    );
    assert_eq!(list2, format!("tv-order-1={payment2}"), "sbapp2's payments");

    // The display agent as sbagent.
    let xvfb = Xvfb::start().unwrap();
    let agent_log = layout.state_dir().with_file_name("agent.log");
    let mut agent = Agent::start(&users.agent, &agent_bin, a, xvfb.display(), &agent_log);
    agent.expect("scanbind-agent registered", &agent_log);

    // A process of another user calling the agent as if it were the daemon: refused,
    // and the agent shows nothing for it.
    let agent_name = unique_name_of(&bus, users.agent.uid).await;
    let impostor = app_once(app2, &app, a, &format!("impostor {agent_name}"), "impostor");
    assert_eq!(
        impostor.split(' ').next(),
        Some("org.freedesktop.DBus.Error.AccessDenied"),
        "sbapp2 calling io.scanbind.Agent1 directly\nbus: {}",
        bus.logs()
    );
    // The bus itself refuses it (only the daemon's user may call Agent1); the agent's
    // own check is the next test.
    assert!(
        impostor.contains("Rejected send message"),
        "the bus let it through: {impostor}"
    );

    // An app the policy does not list: the agent asks for consent, the user allows.
    let mut consent = App::start(
        app2,
        &stranger,
        a,
        &format!("pay stranger-1 500 {binding2}"),
    );
    let shown = agent.expect("shown ", &agent_log);
    assert_ne!(
        shown, "impostor-1",
        "the agent showed the impostor's prompt"
    );
    xvfb.focus("scanbind-agent");
    xvfb.keys(&["Right", "Return"]);
    let (k, v) = consent.next("payment");
    assert_eq!(
        k,
        "payment",
        "the consented payment: {v}\n{}",
        daemon.logs()
    );
    assert_eq!(consent.expect("state"), "succeeded", "{}", daemon.logs());
    consent.done();
    assert!(
        !agent.seen.iter().any(|l| l.contains("impostor-1")),
        "the agent showed the impostor's prompt: {:?}",
        agent.seen
    );
    eventually("the consented payment at the wallet", || async {
        charges(&sandbox).await == 4
    })
    .await;
}

/// The agent's own check, where the bus would let anyone call it: the same system bus
/// plus a policy file that opens `io.scanbind.Agent1` to every user. A process of
/// another user calling the agent directly is refused by the agent itself
/// (`AccessDenied`, not the bus's "Rejected send message"), before anything is shown:
/// a `Confirm` it accepted would wait for the user instead of answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_itself_refuses_a_caller_that_is_not_the_daemon() {
    let users = SystemUsers::ensure();
    require_display_tools();
    let open = tempfile::tempdir().unwrap();
    scanbind_testkit::system::set_mode(open.path(), 0o755);
    let open_policy = open.path().join("open-agent.conf");
    std::fs::write(
        &open_policy,
        "<busconfig><policy context=\"default\">\
         <allow send_interface=\"io.scanbind.Agent1\"/></policy></busconfig>\n",
    )
    .unwrap();
    let bus = SystemBus::start_with(&[
        &scanbind_testkit::system::packaged_bus_policy(),
        &open_policy,
    ])
    .unwrap();
    let layout = SystemLayout::new(&users.daemon);
    layout.write_policy("unknown_apps = \"allow\"\n");
    let bin = BinDir::new();
    let daemon_bin = bin.add(&daemon_binary());
    let agent_bin = bin.add(&agent_binary());
    let (_daemon, _sandbox) = start_daemon(&layout, &daemon_bin, &users, &bus);
    let xvfb = Xvfb::start().unwrap();
    let agent_log = layout.state_dir().with_file_name("agent.log");
    let a = bus.address();
    let mut agent = Agent::start(&users.agent, &agent_bin, a, xvfb.display(), &agent_log);
    agent.expect("scanbind-agent registered", &agent_log);
    let agent_name = unique_name_of(&bus, users.agent.uid).await;
    let app = SharedBinary::new(&std::env::current_exe().unwrap());
    let impostor = app_once(
        &users.apps[1],
        &app,
        a,
        &format!("impostor {agent_name}"),
        "impostor",
    );
    let (name, message) = impostor.split_once(' ').unwrap_or((&impostor, ""));
    assert_eq!(
        name, "org.freedesktop.DBus.Error.AccessDenied",
        "sbapp2 calling io.scanbind.Agent1 on an open bus: {impostor}"
    );
    assert!(
        !message.starts_with("Rejected send message"),
        "the bus, not the agent, refused it: {message}"
    );
    assert!(
        !agent.seen.iter().any(|l| l.contains("impostor-1")),
        "the agent showed the impostor's prompt: {:?}",
        agent.seen
    );
}
