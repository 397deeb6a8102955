//! `scanbindd --dev --embedded-bus` on a machine with nothing installed but the daemon:
//! no bus daemon (the broker runs inside scanbindd, busd) and no Secret Service (the
//! daemon's own file vault). An app binds a wallet and pays over real D-Bus on the
//! embedded broker, exactly as on a session bus.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt as _;
use scanbind_ipc::proxy::{Binding1Proxy, Daemon1Proxy, Payment1Proxy};
use zbus::proxy::CacheProperties;

/// The bound on every wait of this test (a debug build on a loaded 2-core machine).
const GUARD: Duration = Duration::from_secs(120);

/// The daemon process; killed on drop.
struct Scanbindd(Child);

impl Drop for Scanbindd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the daemon's stdout until its ready line; returns the embedded bus address
/// and the sandbox URL it printed before it.
fn wait_ready(child: &mut Child) -> (String, String) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut bus, mut sandbox, mut seen) = (None, None, Vec::new());
    loop {
        let line = rx
            .recv_timeout(GUARD)
            .unwrap_or_else(|_| panic!("scanbindd did not get ready; its stdout: {seen:?}"));
        if let Some(a) = line.strip_prefix("scanbindd embedded bus: ") {
            bus = Some(a.to_owned());
        }
        if let Some(rest) = line.strip_prefix("scanbindd dev stack: server ") {
            sandbox = rest.split(" sandbox ").nth(1).map(str::to_owned);
        }
        if line.starts_with("scanbindd ready on ") {
            break;
        }
        seen.push(line);
    }
    (
        bus.expect("no `scanbindd embedded bus:` line before ready"),
        sandbox.expect("no `scanbindd dev stack:` line before ready"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_with_an_embedded_bus_and_the_file_vault_needs_no_bus_daemon_or_keyring() {
    let state = tempfile::tempdir().unwrap();
    let secret = state.path().join("vault-secret");
    std::fs::write(&secret, b"a master secret for this test only").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_scanbindd"))
        .args([
            "--dev",
            "--embedded-bus",
            "--vault",
            "file",
            "--vault-secret-file",
        ])
        .arg(&secret)
        .arg("--state-dir")
        .arg(state.path())
        // No bus and no Secret Service anywhere: the daemon must not need either.
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("scanbindd starts");
    let mut daemon = Scanbindd(child);
    let (address, sandbox) = wait_ready(&mut daemon.0);
    assert!(
        address.starts_with("unix:path=") && address.contains(state.path().to_str().unwrap()),
        "the broker's socket is not in the state directory: {address}"
    );

    let conn = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .method_timeout(GUARD)
        .build()
        .await
        .expect("an app connects to the embedded broker");
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    assert_eq!(d.version().await.unwrap(), env!("CARGO_PKG_VERSION"));

    // Bind: the phone scans the code on the development sandbox.
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = Binding1Proxy::builder(&conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut bound = binding.receive_completed().await.unwrap();
    let http = scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .timeout(GUARD)
        .build()
        .unwrap();
    let scan = http
        .post(format!("{sandbox}/sandbox/v1/scan"))
        .json(&serde_json::json!({
            "codeValue": binding.code_value().await.unwrap(),
            "decision": "approve"
        }))
        .send()
        .await
        .unwrap();
    assert!(scan.status().is_success(), "{}", scan.status());
    let signal = tokio::time::timeout(GUARD, bound.next())
        .await
        .expect("no Binding Completed")
        .unwrap();
    assert_eq!(signal.args().unwrap().state, "bound");

    // Pay: subscribed before the first read, so the result cannot be missed.
    let p = d
        .pay("embedded-bus-1", 1200, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    let payment = Payment1Proxy::builder(&conn)
        .path(p)
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut completed = payment.receive_completed().await.unwrap();
    if payment.state().await.unwrap() != "succeeded" {
        tokio::time::timeout(GUARD, completed.next())
            .await
            .expect("no Payment Completed")
            .unwrap();
    }
    assert_eq!(payment.state().await.unwrap(), "succeeded");

    // The secrets went to the daemon's own vault under the state directory.
    assert!(state.path().join("vault/scanbind.keyring").is_file());
}
