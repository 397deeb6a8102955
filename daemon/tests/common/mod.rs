//! Fixtures for the daemon's end-to-end tests, all real processes: this suite's world
//! (`scanbind_testkit::World`: an in-process sandbox (AMS stand-in), keys, and the
//! `scanbind-server` binary on SQLite), a private `dbus-daemon` and the `scanbindd`
//! binary (`scanbind_testkit::DaemonProc`). Adapted from `server/tests/common`.
#![allow(dead_code)]

pub mod agent;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

#[allow(unused_imports)] // each test binary uses a part
pub use scanbind_testkit::world::{
    CLIENT_ID, SealingKey, ServerBinary, ServerConfig, World, WorldOptions,
};
#[allow(unused_imports)] // each test binary uses a part
pub use scanbind_testkit::{DaemonProc, ServerProc, eventually};

/// Bound on every wait (a hung test fails; never a timing assertion).
pub const GUARD: Duration = Duration::from_secs(60);

/// A connection to the private bus whose method calls give up after [`GUARD`] (a daemon
/// that never answers fails the test instead of hanging it).
pub async fn connect(bus: &scanbindd::test_util::PrivateBus) -> zbus::Connection {
    zbus::connection::Builder::address(bus.address())
        .unwrap()
        .method_timeout(GUARD)
        .build()
        .await
        .unwrap()
}

/// The number of journal rows (read from outside the daemon).
pub fn journal_rows(state_dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(state_dir.join("journal.sqlite3")).unwrap();
    conn.query_row("SELECT count(*) FROM payments", [], |r| r.get(0))
        .unwrap()
}

pub fn http() -> reqwest::Client {
    scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .timeout(GUARD)
        .build()
        .unwrap()
}

/// This suite's world (`scanbind_testkit::world`): the `scanbind-server` of
/// [`server_binary`], the fixed sealing key, AMS attempts of 60 s, a short inquiry
/// backoff, `server.toml` always (the sellers, if any), and [`http`] (bounded by
/// [`GUARD`]).
pub fn world_options() -> WorldOptions {
    WorldOptions::new(ServerBinary::Build(server_binary))
        .sealing_key(SealingKey::Fixed)
        .ams_attempt_timeout_ms(60_000)
        .inquiry_backoff_ms("[50, 100, 200]")
        .server_config(ServerConfig::Always)
        .http(http())
}

/// Sandbox + key files + SQLite database: everything a server process needs.
pub async fn world() -> World {
    World::new(world_options()).await
}

/// A world whose wallet issues access tokens valid for `access` only.
pub async fn world_with_token_ttls(access: Option<Duration>) -> World {
    World::new(world_options().access_ttl(access)).await
}

/// A world whose sandbox knows these sellers under the merchant, and whose server
/// is configured with them (`(id, name, combinable)`) for combined checkouts.
pub async fn world_with_sellers(sellers: &[(&str, &str, bool)]) -> World {
    let options = sellers
        .iter()
        .fold(world_options(), |o, (id, name, combinable)| {
            o.seller(id, name, *combinable)
        });
    World::new(options).await
}

/// `scanbindd` built with its crash points (`test-util`), copied to a path of this test
/// process's own: another build in the shared target directory (with other features)
/// can then never swap the binary a kill -9 test relies on.
pub fn daemon_binary() -> PathBuf {
    static BIN: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut bin = BIN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(b) = bin.as_ref() {
        return b.clone();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--locked",
            "-p",
            "scanbindd",
            "--features",
            "test-util",
            "--bin",
            "scanbindd",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build -p scanbindd --features test-util");
    assert!(status.success(), "building scanbindd with test-util failed");
    let built = Path::new(env!("CARGO_BIN_EXE_scanbindd"));
    let parent = built.parent().unwrap();
    remove_stale_copies(parent);
    let dir = parent.join(format!("scanbindd-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("scanbindd");
    std::fs::copy(built, &copy).unwrap();
    *bin = Some(copy.clone());
    copy
}

/// Removes the `scanbindd-test-<pid>` copies that test processes which have since exited
/// left in `dir` (each is ~100 MB; a copy in use by a live test process is kept).
fn remove_stale_copies(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("scanbindd-test-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The binary `bin` of the workspace package `package`, built (`cargo build`) once per
/// test binary and package, next to `scanbindd` in the target directory (cargo builds
/// only this package's binaries for its tests).
pub fn built_beside_daemon(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let path = Path::new(env!("CARGO_BIN_EXE_scanbindd")).with_file_name(bin);
    if !built.iter().any(|b| b == bin) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--locked", "-p", package, "--bin", bin])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap_or_else(|e| panic!("cargo build -p {package}: {e}"));
        assert!(status.success(), "building {package} failed");
        built.push(bin.to_owned());
    }
    assert!(path.exists(), "no {}", path.display());
    path
}

/// The `scanbind-server` binary next to `scanbindd` in the target directory, built
/// once per test binary ([`built_beside_daemon`]).
pub fn server_binary() -> PathBuf {
    built_beside_daemon("scanbind-server", "scanbind-server")
}

/// Binds `ALIPAY_HK` as the app of `conn`, the user approving through the sandbox's
/// scan: the binding's path and the state its `Completed` signal carried (within
/// [`GUARD`]).
pub async fn bind_approved(
    world: &World,
    conn: &zbus::Connection,
    d: &scanbind_ipc::Daemon1Proxy<'_>,
) -> (zvariant::OwnedObjectPath, String) {
    use futures_util::StreamExt as _;
    let path = d
        .start_binding("ALIPAY_HK", std::collections::HashMap::new())
        .await
        .unwrap();
    let binding = scanbind_ipc::Binding1Proxy::builder(conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut done = binding.receive_completed().await.unwrap();
    world
        .scan(&binding.code_value().await.unwrap(), "approve")
        .await;
    let signal = tokio::time::timeout(GUARD, done.next())
        .await
        .expect("no Binding Completed within the guard time")
        .unwrap();
    let state = signal.args().unwrap().state.to_owned();
    (path, state)
}

/// Follows the payment at `path` to its final state (subscribed to `Completed` before
/// reading the state; the signal awaited within [`GUARD`]).
pub async fn settled(conn: &zbus::Connection, path: &zvariant::OwnedObjectPath) -> String {
    use futures_util::StreamExt as _;
    let p = scanbind_ipc::Payment1Proxy::builder(conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut completed = p.receive_completed().await.unwrap();
    let now: scanbind_ipc::PaymentState = p.state().await.unwrap().parse().unwrap();
    if now.is_terminal() {
        return now.as_str().to_owned();
    }
    let signal = tokio::time::timeout(GUARD, completed.next())
        .await
        .expect("no Payment Completed within the guard time")
        .unwrap();
    signal.args().unwrap().state.to_string()
}

/// The lines of a child's `out`, read on a thread of their own, as `keep` maps them
/// (`None`: passed over); the channel closes at the end of the output.
pub fn lines_of(
    out: impl std::io::Read + Send + 'static,
    keep: impl Fn(String) -> Option<String> + Send + 'static,
) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(line) = keep(line)
                && tx.send(line).is_err()
            {
                break;
            }
        }
    });
    lines
}

/// `scanbindd` (with its crash points, [`daemon_binary`]) serving on `bus_address`.
pub fn spawn_daemon(bus_address: &str, server: &str, state_dir: &Path) -> DaemonProc {
    spawn_daemon_with(&["--address", bus_address], server, state_dir, &[])
}

/// With other bus arguments (e.g. `--p2p PATH --no-bus`) and extra environment.
pub fn spawn_daemon_with(
    bus_args: &[&str],
    server: &str,
    state_dir: &Path,
    env: &[(&str, &str)],
) -> DaemonProc {
    DaemonProc::command(&daemon_binary(), state_dir)
        .args(bus_args.iter().copied())
        .server(server)
        .envs(env)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `scanbindd --dev`: the daemon with its in-process sandbox and server. Returns
/// the process and the sandbox's base URL (from its first line).
pub fn spawn_daemon_dev(bus_address: &str, state_dir: &Path) -> (DaemonProc, String) {
    DaemonProc::command(Path::new(env!("CARGO_BIN_EXE_scanbindd")), state_dir)
        .env_remove("SCANBIND_SERVER_URL")
        .address(bus_address)
        .log_level("info")
        .spawn_dev()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A pseudo-terminal: its primary side (what a user types goes in here) and its
/// secondary side (a program's standard input: a terminal as the kernel tells it).
pub fn pty() -> (std::fs::File, std::fs::File) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let primary = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal");
    grantpt(&primary).unwrap();
    unlockpt(&primary).unwrap();
    let name = ptsname(&primary, Vec::new()).unwrap();
    let secondary = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    (std::fs::File::from(primary), secondary)
}
