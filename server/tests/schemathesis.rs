//! Fuzzes the device API with schemathesis (PyPI) against the served OpenAPI document:
//! no 5xx, every status documented, every response conforms to its schema.
//!
//! schemathesis cannot sign requests, so it talks to a small signing proxy run by this
//! test: the proxy signs every request as a registered device and forwards it to the
//! server: the back office paths (`/admin/...`) to its operator listener, everything
//! else to the devices' public listener. schemathesis is installed (pinned,
//! `tests/schemathesis/requirements.txt`) into a venv under the cargo target dir, made
//! with `$SCANBIND_PYTHON` (exported by `scripts/test`) or `python3`.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use common::*;
use scanbind_device_api::DeviceKey;
use scanbind_device_api::signing::new_nonce;

struct Proxy {
    key: DeviceKey,
    upstream: String,
    /// The operator listener, for `/admin/...`.
    admin: String,
    http: reqwest::Client,
}

async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let content_type = req.headers().get("content-type").cloned();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let upstream = if path.starts_with("/admin/") {
        &proxy.admin
    } else {
        &proxy.upstream
    };
    let headers = proxy
        .key
        .sign_request(&method, &path, now_s(), &new_nonce().unwrap(), &body);
    let mut rb = proxy
        .http
        .request(method.parse().unwrap(), format!("{upstream}{path}"))
        .body(body.to_vec());
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    for (k, v) in headers.to_pairs() {
        rb = rb.header(k, v);
    }
    match rb.send().await {
        Ok(resp) => {
            let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned();
            let bytes = resp.bytes().await.unwrap_or_default();
            (status, [("content-type", ct)], bytes).into_response()
        }
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    }
}

/// The venv with schemathesis, made once per requirements file.
async fn schemathesis() -> PathBuf {
    let reqs = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/schemathesis/requirements.txt"
    );
    let text = std::fs::read(reqs).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &text);
    let tag: String = digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("schemathesis-venv-{tag}"));
    let exe = venv.join("bin/schemathesis");
    if exe.exists() {
        return exe;
    }
    let python = std::env::var("SCANBIND_PYTHON").unwrap_or_else(|_| "python3".into());
    let tmp = venv.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    let st = tokio::process::Command::new(&python).args(["-m", "venv"]).arg(&tmp).status().await
        .unwrap_or_else(|e| panic!("cannot run {python} to make the schemathesis venv ({e}); run scripts/test, which exports SCANBIND_PYTHON"));
    assert!(st.success(), "{python} -m venv failed");
    let out = tokio::process::Command::new(tmp.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            reqs,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "pip install schemathesis failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Made under a temporary name and renamed, so a half-made venv is never used. Entry
    // scripts keep the old path in their shebang, so the test runs `python -m` instead.
    if std::fs::rename(&tmp, &venv).is_err() {
        return tmp.join("bin/schemathesis");
    }
    exe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let world = world(Backend::Sqlite).await;
    let server = world.spawn_server(&[]);
    let device = Device::new(&server.base);
    device.register().await;
    let proxy = Arc::new(Proxy {
        key: DeviceKey::from_pkcs8(device.key.to_pkcs8()).unwrap(),
        upstream: server.base.clone(),
        admin: server.admin.clone(),
        http: http(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let exe = schemathesis().await;
    let venv_python = exe.parent().unwrap().join("python");
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let out = tokio::process::Command::new(venv_python)
        .args(["-m", "schemathesis.cli", "run", schema, "--url", &proxy_url])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
        .args(["--exclude-path", "/v1/events", "--max-examples", "30", "--seed", "20261121", "--workers", "1"])
        .args(["--generation-with-security-parameters", "false", "--no-color"])
        // Its caches (.hypothesis, .schemathesis) go to the test's temp dir, not the tree.
        .current_dir(world.dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
}
