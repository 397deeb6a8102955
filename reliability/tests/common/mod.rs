//! The app side of the suite: the `scanbindd` binary on a private bus with the
//! session's gnome-keyring, and the D-Bus calls an app makes.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt as _;
use scanbind_ipc::{Binding1Proxy, Daemon1Proxy, Payment1Proxy, PaymentState};
use scanbind_reliability::world::World;
use zbus::proxy::CacheProperties;

pub use scanbind_testkit::DaemonProc;
pub use scanbindd::test_util::{PrivateBus, require_secret_service};

/// Bound on every wait (a hung run fails; never a timing assertion).
pub const GUARD: Duration = Duration::from_secs(90);

/// `scanbindd` ([`scanbind_reliability::bins`], with its crash points) serving on `bus`
/// against `server`, with extra environment (e.g. a crash point). Waits at most
/// [`GUARD`] for its ready line and, in `wait_exit`, for its exit.
pub fn spawn_daemon(bus: &str, server: &str, state_dir: &Path, env: &[(&str, &str)]) -> DaemonProc {
    spawn_daemon_logged(bus, server, state_dir, env, "info,scanbindd=debug")
}

/// As `spawn_daemon`, at the given log level.
pub fn spawn_daemon_logged(
    bus: &str,
    server: &str,
    state_dir: &Path,
    env: &[(&str, &str)],
    log_level: &str,
) -> DaemonProc {
    // Every app may pay (as without a policy); this test process may register as the
    // display agent (an app's Unbind needs the user's approval: `unbind_approved`).
    let policy = state_dir.join("policy.toml");
    std::fs::write(&policy, scanbind_testkit::agent::trusted_agent_toml())
        .unwrap_or_else(|e| panic!("{}: {e}", policy.display()));
    DaemonProc::command(&scanbind_reliability::bins::binaries().daemon, state_dir)
        .args([std::ffi::OsStr::new("--policy"), policy.as_os_str()])
        .address(bus)
        .server(server)
        .envs(env)
        .log_level(log_level)
        .suite("reliability")
        .guard(Some(GUARD))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn connect(bus: &PrivateBus) -> zbus::Connection {
    zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap()
}

/// Binds `ALIPAY_HK` through the sandbox's scan as `user` (or the default user);
/// returns the binding's path.
/// Unbinds `path` as the app: an app's `Unbind` needs the user's approval on the
/// display agent, given by an approving agent registered for this call and
/// unregistered after it (the daemon's policy trusts this process: `spawn_daemon`).
pub async fn unbind_approved(
    bus: &PrivateBus,
    d: &Daemon1Proxy<'_>,
    path: &zvariant::OwnedObjectPath,
) {
    let agent = scanbind_testkit::agent::approving_agent(bus.address())
        .await
        .unwrap_or_else(|e| panic!("registering the approving agent: {e}"));
    d.unbind(&path.as_ref(), HashMap::new()).await.unwrap();
    scanbind_testkit::agent::unregister_agent(&agent)
        .await
        .unwrap();
}

pub async fn bind(
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

/// A payment proxy that does not cache properties.
pub async fn payment_proxy(
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

/// Follows the payment at `path` until it is settled (subscribes to `Completed`
/// first). Returns the proxy and the final state.
pub async fn settle(
    conn: &zbus::Connection,
    path: &zvariant::OwnedObjectPath,
) -> (Payment1Proxy<'static>, String) {
    let payment = payment_proxy(conn, path).await;
    let mut completed = payment.receive_completed().await.unwrap();
    let now: PaymentState = payment.state().await.unwrap().parse().unwrap();
    if now.is_terminal() {
        return (payment, now.as_str().to_owned());
    }
    let signal = tokio::time::timeout(GUARD, completed.next())
        .await
        .expect("no Payment Completed within the guard time")
        .unwrap();
    let state = signal.args().unwrap().state.to_string();
    (payment, state)
}

/// Waits (bounded by this suite's [`GUARD`]) until `f` holds: only to observe other
/// processes from outside, never for readiness of our own.
pub async fn eventually<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    scanbind_testkit::eventually_within(GUARD, what, f).await;
}

/// Journal rows of one order: (state, delivered).
pub fn journal_of(state_dir: &Path, order: &str) -> Option<(String, i64)> {
    let conn = rusqlite::Connection::open(state_dir.join("journal.sqlite3")).ok()?;
    conn.query_row(
        "SELECT state, delivered FROM payments WHERE order_id = ?1",
        [order],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

/// Every ledger payment with `moneyMovements` per `paymentRequestId`.
pub fn movements(ledger: &serde_json::Value) -> Vec<(String, String, i64)> {
    ledger["payments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["paymentRequestId"].as_str().unwrap_or("").to_owned(),
                        p["status"].as_str().unwrap_or("").to_owned(),
                        p["moneyMovements"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The whole system for one test: world (sandbox + keys + DB), server, private bus,
/// daemon, and the app's connection.
pub struct Rig {
    pub world: World,
    pub server: Option<scanbind_reliability::server::ServerProc>,
    pub bus: PrivateBus,
    pub state: tempfile::TempDir,
    pub daemon: Option<DaemonProc>,
    pub conn: zbus::Connection,
    pub server_extra: Vec<(String, String)>,
}

impl Rig {
    /// Starts everything; the server listens on a fixed loopback port so that it can be
    /// restarted where the daemon expects it.
    pub async fn new(world: World, server_extra: &[(&str, &str)]) -> Rig {
        tokio::task::block_in_place(scanbind_reliability::bins::binaries);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut extra: Vec<(String, String)> = server_extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        extra.push((
            "SCANBIND_SERVER_SERVER_LISTEN".into(),
            format!("127.0.0.1:{port}"),
        ));
        let bus = PrivateBus::without_services().unwrap();
        let conn = connect(&bus).await;
        let mut rig = Rig {
            world,
            server: None,
            bus,
            state: tempfile::tempdir().unwrap(),
            daemon: None,
            conn,
            server_extra: extra,
        };
        rig.start_server();
        rig.start_daemon(&[]);
        rig
    }

    pub fn start_server(&mut self) {
        let extra: Vec<(&str, &str)> = self
            .server_extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.server = Some(self.world.spawn_server_logged(&extra, "info"));
    }

    pub fn server_base(&self) -> String {
        let (_, listen) = self
            .server_extra
            .iter()
            .find(|(k, _)| k == "SCANBIND_SERVER_SERVER_LISTEN")
            .unwrap();
        format!("http://{listen}")
    }

    pub fn start_daemon(&mut self, env: &[(&str, &str)]) {
        self.daemon = None;
        let base = self.server_base();
        self.daemon = Some(spawn_daemon(
            self.bus.address(),
            &base,
            self.state.path(),
            env,
        ));
    }

    pub async fn daemon1(&self) -> Daemon1Proxy<'static> {
        Daemon1Proxy::new(&self.conn).await.unwrap()
    }

    pub fn logs(&self) -> String {
        let d = self
            .daemon
            .as_ref()
            .map(DaemonProc::logs)
            .unwrap_or_default();
        let s = self.server.as_ref().map(|s| s.logs()).unwrap_or_default();
        format!("--- daemon\n{}\n--- server\n{}", tail(&d), tail(&s))
    }
}

/// The last 6000 bytes (or a little less, at a character boundary) of a log, for
/// failure messages.
pub fn tail(log: &str) -> String {
    let from = log.len().saturating_sub(6000);
    let from = (from..log.len())
        .find(|i| log.is_char_boundary(*i))
        .unwrap_or(log.len());
    log[from..].to_owned()
}

/// Waits (bounded) until the daemon's link to the server is `online` again (after the
/// server restarted): what an app does on `Offline`.
pub async fn wait_online(d: &Daemon1Proxy<'_>) {
    eventually("the daemon to be online", || async {
        d.get_status(HashMap::new())
            .await
            .ok()
            .and_then(|s| s.get("connectivity").and_then(|v| v.try_clone().ok()))
            .and_then(|v| String::try_from(v).ok())
            .is_some_and(|c| c == "online")
    })
    .await;
}
