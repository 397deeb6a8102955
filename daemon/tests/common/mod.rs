//! Fixtures for the daemon's end-to-end tests, all real processes: an in-process
//! sandbox (AMS stand-in), the `scanbind-server` binary on SQLite
//! (`scanbind_testkit::ServerProc`), a private `dbus-daemon` and the `scanbindd`
//! binary (`scanbind_testkit::DaemonProc`). Adapted from `server/tests/common`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use scanbind_ams::PrivateKey;
use scanbind_sandbox::{Sandbox, SandboxHandle};
#[allow(unused_imports)] // each test binary uses a part
pub use scanbind_testkit::{DaemonProc, ServerProc, eventually};
use serde_json::Value;

pub const CLIENT_ID: &str = "2188TEST0000001";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ams/tests/fixtures");

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

/// Sandbox + key files + SQLite database: everything a server process needs.
pub struct World {
    pub dir: tempfile::TempDir,
    pub sandbox: SandboxHandle,
    pub http: reqwest::Client,
}

impl World {
    pub async fn new() -> World {
        Self::with_token_ttls(None).await
    }

    /// A world whose wallet issues access tokens valid for `access` only.
    pub async fn with_token_ttls(access: Option<Duration>) -> World {
        Self::build(access, &[]).await
    }

    /// A world whose sandbox knows these sellers under the merchant, and whose server
    /// is configured with them (`(id, name, combinable)`) for combined checkouts.
    pub async fn with_sellers(sellers: &[(&str, &str, bool)]) -> World {
        Self::build(None, sellers).await
    }

    async fn build(access: Option<Duration>, sellers: &[(&str, &str, bool)]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let merchant_pem =
            std::fs::read_to_string(format!("{FIXTURES}/vector_private_pkcs8.pem")).unwrap();
        let merchant = PrivateKey::from_text(&merchant_pem).unwrap();
        let alipay = PrivateKey::from_text(
            &std::fs::read_to_string(format!("{FIXTURES}/other_rsa2048.pem")).unwrap(),
        )
        .unwrap();
        let mut builder = Sandbox::builder(alipay)
            .listen("127.0.0.1:0".parse().unwrap())
            .merchant(CLIENT_ID, merchant.public_key());
        if let Some(access) = access {
            builder = builder.token_ttls(access, Duration::from_secs(3600));
        }
        let mut toml = String::new();
        for (id, name, combinable) in sellers {
            builder = builder.seller(CLIENT_ID, *id, *name);
            toml.push_str(&format!(
                "[[sellers]]\nid = \"{id}\"\nname = \"{name}\"\ncombinable = {combinable}\n"
            ));
        }
        let sandbox = builder.start().await.unwrap();
        let p = dir.path();
        std::fs::write(p.join("server.toml"), toml).unwrap();
        std::fs::write(p.join("merchant.pem"), &merchant_pem).unwrap();
        std::fs::write(p.join("alipay.pem"), sandbox.public_key().to_pem()).unwrap();
        std::fs::write(
            p.join("receipt.pem"),
            scanbind_server::util::ed25519_pkcs8_pem().unwrap(),
        )
        .unwrap();
        use base64::Engine as _;
        std::fs::write(
            p.join("seal.key"),
            base64::engine::general_purpose::STANDARD.encode([42_u8; 32]),
        )
        .unwrap();
        World {
            dir,
            sandbox,
            http: http(),
        }
    }

    fn server_env(&self) -> Vec<(String, String)> {
        let p = self.dir.path();
        let s = |k: &str, v: String| (format!("SCANBIND_SERVER_{k}"), v);
        vec![
            s("SERVER_LISTEN", "127.0.0.1:0".into()),
            s("AMS_BASE_URL", self.sandbox.base_url().to_owned()),
            s("AMS_CLIENT_ID", CLIENT_ID.into()),
            s(
                "AMS_MERCHANT_PRIVATE_KEY",
                p.join("merchant.pem").display().to_string(),
            ),
            s(
                "AMS_ALIPAY_PUBLIC_KEY",
                p.join("alipay.pem").display().to_string(),
            ),
            s("AMS_ATTEMPT_TIMEOUT_MS", "60000".into()),
            s(
                "RECEIPTS_SIGNING_KEY",
                p.join("receipt.pem").display().to_string(),
            ),
            s(
                "TOKENS_SEALING_KEYS",
                format!("[\"{}\"]", p.join("seal.key").display()),
            ),
            s("DEVICES_REGISTRATION", "open".into()),
            s(
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", p.join("server.db").display()),
            ),
            s("PAYMENTS_INQUIRY_BACKOFF_MS", "[50, 100, 200]".into()),
            s("CONFIG", p.join("server.toml").display().to_string()),
        ]
    }

    pub fn spawn_server(&self) -> ServerProc {
        self.spawn_server_with(&[])
    }

    /// The server with some `SCANBIND_SERVER_*` variables overridden.
    pub fn spawn_server_with(&self, extra: &[(&str, &str)]) -> ServerProc {
        let mut env = self.server_env();
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        ServerProc::spawn(
            &server_binary(),
            &env,
            &self.dir.path().join("server.log"),
            "info",
        )
        .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    pub async fn arm_fault(&self, fault: Value) {
        let r = self
            .http
            .post(format!("{}/sandbox/v1/faults", self.sandbox.base_url()))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "fault: {}",
            r.text().await.unwrap_or_default()
        );
    }

    pub async fn ledger(&self) -> Value {
        self.http
            .get(format!("{}/sandbox/v1/ledger", self.sandbox.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn scan(&self, code_value: &str, decision: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/sandbox/v1/scan", self.sandbox.base_url()))
            .json(&serde_json::json!({"codeValue": code_value, "decision": decision}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "scan failed");
        r.json().await.unwrap()
    }

    /// The user unbinds every authorization from the wallet app's account page
    /// (the sandbox then sends TOKEN_CANCELED); returns how many were unbound.
    pub async fn unbind_in_wallet(&self, user: &str) -> usize {
        let base = self.sandbox.base_url();
        let page = self
            .http
            .get(format!("{base}/wallet/account/{user}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let marker = "name=\"authorization\" value=\"";
        let ids: Vec<String> = page
            .match_indices(marker)
            .map(|(i, _)| {
                let rest = &page[i + marker.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .collect();
        for id in &ids {
            let r = self
                .http
                .post(format!("{base}/wallet/account/{user}/unbind"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("authorization={id}"))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "unbind {id}");
        }
        ids.len()
    }
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
    let dir = built
        .parent()
        .unwrap()
        .join(format!("scanbindd-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("scanbindd");
    std::fs::copy(built, &copy).unwrap();
    *bin = Some(copy.clone());
    copy
}

/// The `scanbind-server` binary next to `scanbindd` in the target directory, built
/// once per test binary (cargo builds only this package's binaries for its tests).
fn server_binary() -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let dir = Path::new(env!("CARGO_BIN_EXE_scanbindd"))
        .parent()
        .unwrap()
        .to_owned();
    let bin = dir.join("scanbind-server");
    if !*built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "scanbind-server",
                "--bin",
                "scanbind-server",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build -p scanbind-server");
        assert!(status.success(), "building scanbind-server failed");
        *built = true;
    }
    assert!(bin.exists(), "no {}", bin.display());
    bin
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
