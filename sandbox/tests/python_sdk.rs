//! Interop: the official Alipay Python SDK (`global-open-sdk-python`) drives a sandbox
//! process through the whole Scan to Bind life, once with a normal client id and once with
//! a `SANDBOX_` client id (which makes the SDK rewrite paths to `/ams/sandbox/api`).

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The venv Python with the SDK (`SCANBIND_PYTHON`, default `<repo>/.venv/bin/python`).
pub fn python() -> PathBuf {
    let path = std::env::var_os("SCANBIND_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        path.exists(),
        "{} does not exist: run scripts/test (it creates .venv with global-open-sdk-python and selenium and exports SCANBIND_PYTHON)",
        path.display()
    );
    path
}

async fn drive(client_id: &str) {
    let sb = SandboxProc::start(&[]).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_lifecycle.py");
    let out = tokio::process::Command::new(python())
        .arg(script)
        .arg(&sb.url)
        .arg(client_id)
        .arg(fixture("merchant_key.pem"))
        .output()
        .await
        .expect("run the Python SDK driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Python SDK lifecycle failed for {client_id}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains(&format!("OK {client_id}")), "{stdout}");
    sb.stop().await;
}

#[tokio::test]
async fn python_sdk_lifecycle_with_a_normal_client_id() {
    drive("PLAIN_CLIENT_01").await;
}

#[tokio::test]
async fn python_sdk_lifecycle_with_a_sandbox_client_id() {
    drive(CLIENT_ID).await;
}
