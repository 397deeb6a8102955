//! The command line: `serve` generates a missing signing key, `scan` acts as the phone for
//! a running sandbox, `ledger` prints its ledger.

mod common;

use common::*;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_scanbind-sandbox");

#[tokio::test]
async fn scan_and_ledger_subcommands_drive_a_running_sandbox() {
    let sb = SandboxProc::start(&[]).await;
    let m = sb.merchant();
    let mut rx = Receiver::start(0).await;
    let consult = m
        .call(
            "authorizations/consult",
            &json!({"customerBelongsTo": "DANA", "authRedirectUrl": "https://m.example/r",
                    "authNotifyUrl": format!("{}/notify/auth", rx.url), "scopes": ["AGREEMENT_PAY"],
                    "authState": "cli-1", "env": {"terminalType": "WEB"}}),
        )
        .await;
    let qr = consult.body["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = tokio::process::Command::new(BIN)
        .args(["scan", &qr])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = rx.next_where("authState", "cli-1").await;
    assert_eq!(n.body["authorizationNotifyType"], "AUTHCODE_CREATED");
    // A spent code is refused with a non-zero exit.
    let out = tokio::process::Command::new(BIN)
        .args(["scan", &qr, "--deny"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let out = tokio::process::Command::new(BIN)
        .args(["ledger", "--url", &sb.url])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let ledger: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(ledger["payments"].is_array() && ledger["refunds"].is_array());
    sb.stop().await;
}

#[tokio::test]
async fn serve_generates_a_missing_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("keys/sandbox.pem");
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--signing-key"])
        .arg(&key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(120), lines.next_line())
        .await
        .expect("sandbox did not start")
        .unwrap()
        .unwrap();
    let url = line.split_whitespace().last().unwrap().to_owned();
    let pem = scanbind_sandbox::notify::http_client()
        .unwrap()
        .get(format!("{url}/sandbox/v1/public-key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let private = scanbind_ams::PrivateKey::from_file(&key).unwrap();
    assert_eq!(
        scanbind_ams::PublicKey::from_text(&pem).unwrap(),
        private.public_key()
    );
    child.kill().await.unwrap();
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("generated a new signing key"), "{stderr}");
    assert!(stderr.contains(key.to_str().unwrap()), "{stderr}");
}
