//! The agent with the real daemon: `scanbindd --dev` (its in-process sandbox and
//! merchant server) on a private bus, the real `scanbind-agent` on Xvfb. The daemon
//! trusts the agent because it sits beside `scanbindd` in the target directory. An
//! app (this test) starts a binding: the QR on screen decodes to the binding's
//! `CodeValue`; the phone scans it and the screen clears; a charge that the policy
//! wants confirmed is allowed with Right, Enter and refused with Escape.
//!
//! Needs the Secret Service of `scripts/test` (`KEYRING_SS_TEST=1`) like every
//! daemon end-to-end test, and fails without it.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{AgentProcess, GUARD, PrivateBus, Xvfb};
use futures_util::StreamExt as _;
use scanbind_ipc::proxy::{AgentManager1Proxy, Binding1Proxy, Daemon1Proxy, Payment1Proxy};
use scanbind_ipc::{Error as Wire, PaymentState};
use zbus::proxy::CacheProperties;
use zvariant::OwnedObjectPath;

/// `scanbindd` beside `scanbind-agent` in the target directory, built once.
fn scanbindd_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_scanbind-agent"))
        .parent()
        .unwrap()
        .to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let status = Command::new(cargo)
        // With the crash points, as every other test builds it: the shared binary must
        // stay the one the kill -9 tests need.
        .args([
            "build",
            "--quiet",
            "--locked",
            "-p",
            "scanbindd",
            "--features",
            "scanbindd/test-util",
            "--bin",
            "scanbindd",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build -p scanbindd");
    assert!(status.success(), "building scanbindd failed");
    let bin = dir.join("scanbindd");
    assert!(bin.exists(), "no {}", bin.display());
    bin
}

/// `scanbindd --dev`, killed on drop; its log is kept for failure messages.
struct Daemon {
    child: Child,
    log: PathBuf,
    sandbox: String,
}

impl Daemon {
    fn spawn(bus: &str, state_dir: &Path, policy: &Path) -> Daemon {
        let log = state_dir.join("scanbindd.log");
        let mut child = Command::new(scanbindd_binary())
            .args(["--dev", "--address", bus, "--state-dir"])
            .arg(state_dir)
            .arg("--policy")
            .arg(policy)
            .env_remove("SCANBIND_SERVER_URL")
            .env_remove("SCANBINDD_CRASH_AT")
            .env("SCANBIND_LOG", "info")
            .env(
                "SCANBIND_VAULT_SERVICE",
                format!("io.scanbind.Daemon.test.{}", state_dir.display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn scanbindd --dev");
        // Two lines: the dev stack's URLs, then readiness. Read on a thread so a
        // silent daemon fails the test after the guard time instead of hanging it.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next = || {
            rx.recv_timeout(GUARD).unwrap_or_else(|e| {
                panic!(
                    "scanbindd --dev did not start ({e}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
        };
        let first = next();
        let ready = next();
        assert_eq!(ready.trim(), "scanbindd ready on io.scanbind.Daemon");
        let sandbox = first
            .split_whitespace()
            .skip_while(|w| *w != "sandbox")
            .nth(1)
            .expect("sandbox URL on the first line")
            .to_owned();
        Daemon {
            child,
            log,
            sandbox,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The phone scans `code_value` and decides.
    async fn scan(&self, code_value: &str, decision: &str) {
        let http = scanbind_ams::client::http_client_builder(Vec::new())
            .unwrap()
            .no_proxy()
            .timeout(GUARD)
            .build()
            .unwrap();
        let r = http
            .post(format!("{}/sandbox/v1/scan", self.sandbox))
            .json(&serde_json::json!({"codeValue": code_value, "decision": decision}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "scan failed: {}", r.status());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn settled(conn: &zbus::Connection, path: &OwnedObjectPath) -> PaymentState {
    let p = Payment1Proxy::builder(conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut completed = p.receive_completed().await.unwrap();
    let now: PaymentState = p.state().await.unwrap().parse().unwrap();
    if now.is_terminal() {
        return now;
    }
    let signal = tokio::time::timeout(GUARD, completed.next())
        .await
        .expect("no Completed within the guard time")
        .unwrap();
    signal.args().unwrap().state.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanbindd_shows_its_binding_code_and_asks_through_the_window() {
    assert!(
        std::env::var_os("KEYRING_SS_TEST").is_some(),
        "this test needs a real Secret Service: run it through scripts/test (see \
         agent/README.md)"
    );
    if !common::display_tools_available() {
        return;
    }
    let bus = PrivateBus::without_services().unwrap();
    let xvfb = Xvfb::start();
    let state = tempfile::tempdir().unwrap();
    let policy = state.path().join("policy.toml");
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    std::fs::write(
        &policy,
        format!("[apps.\"{}\"]\nconfirm = true\n", me.display()),
    )
    .unwrap();
    let daemon = Daemon::spawn(bus.address(), state.path(), &policy);
    let agent = AgentProcess::start(bus.address(), xvfb.display());
    agent.expect_line("scanbind-agent registered");

    let conn = bus.connect().await.unwrap();
    let manager = AgentManager1Proxy::builder(&conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    assert!(manager.agent_registered().await.unwrap());
    let d = Daemon1Proxy::new(&conn).await.unwrap();

    // The binding QR on screen is the code the daemon issued.
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = Binding1Proxy::builder(&conn)
        .path(path)
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let code_value = binding.code_value().await.unwrap();
    assert!(!code_value.is_empty());
    let shown = || {
        agent
            .wait_prefix("shown ")
            .unwrap_or_else(|| panic!("nothing shown; scanbindd log:\n{}", daemon.logs()))
    };
    let request = shown();
    assert_eq!(
        xvfb.decode_qr("scanbindd-binding-qr"),
        code_value,
        "{}",
        daemon.logs()
    );
    // The phone approves; the binding completes (and the screen clears).
    let mut completed = binding.receive_completed().await.unwrap();
    daemon.scan(&code_value, "approve").await;
    if binding.state().await.unwrap() != "bound" {
        let signal = tokio::time::timeout(GUARD, completed.next())
            .await
            .expect("the binding did not complete")
            .unwrap();
        assert_eq!(signal.args().unwrap().state, "bound");
    }

    // A charge the policy wants confirmed: Right, Enter allows it.
    let pay = |order: &'static str| {
        let d = d.clone();
        tokio::spawn(async move {
            d.pay(order, 4900, "HKD", "1,000 gems", HashMap::new())
                .await
        })
    };
    let call = pay("agent-yes");
    let prompt = shown();
    assert_ne!(prompt, request);
    xvfb.focus_agent();
    xvfb.keys(&["Right", "Return"]);
    let payment = tokio::time::timeout(GUARD, call)
        .await
        .expect("Pay never returned")
        .unwrap()
        .unwrap_or_else(|e| panic!("Pay failed: {e:?}\n{}", daemon.logs()));
    assert_eq!(settled(&conn, &payment).await, PaymentState::Succeeded);

    // Escape refuses: the app gets Denied.
    let call = pay("agent-no");
    shown();
    xvfb.keys(&["Escape"]);
    let err = tokio::time::timeout(GUARD, call)
        .await
        .expect("Pay never returned")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Wire::Denied(_)), "{err:?}");
}
