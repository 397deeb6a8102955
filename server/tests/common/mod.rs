//! Test fixtures: an in-process sandbox, the server as a real child process
//! (`scanbind_testkit::ServerProc`), a signing device client with an SSE reader, and a
//! throwaway PostgreSQL cluster (`scanbind_testkit::PgCluster`).
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use scanbind_ams::{PrivateKey, PublicKey};
use scanbind_device_api::DeviceKey;
use scanbind_device_api::signing::new_nonce;
use scanbind_device_api::types::EventEnvelope;
use scanbind_sandbox::{Sandbox, SandboxHandle};
#[allow(unused_imports)] // each test binary uses a part
pub use scanbind_testkit::{PgCluster, ServerProc, eventually};
use serde_json::Value;

pub const CLIENT_ID: &str = "2188TEST0000001";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ams/tests/fixtures");

/// Guard against a hung test: every wait is bounded by this (a failure, never a timing
/// assertion).
pub const GUARD: Duration = Duration::from_secs(60);

pub fn http() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Sandbox + key files + database: everything a server process needs.
pub struct World {
    pub dir: tempfile::TempDir,
    pub sandbox: SandboxHandle,
    pub database_url: String,
    pub pg: Option<PgCluster>,
    pub http: reqwest::Client,
    log_counter: std::sync::atomic::AtomicU32,
}

impl World {
    pub async fn new(backend: Backend) -> World {
        Self::with_sellers(backend, &[]).await
    }

    /// A world whose sandbox knows these sellers (reference merchant id, name) under the
    /// test client.
    pub async fn with_sellers(backend: Backend, sellers: &[(&str, &str)]) -> World {
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
        for (id, name) in sellers {
            builder = builder.seller(CLIENT_ID, *id, *name);
        }
        let sandbox = builder.start().await.unwrap();
        let p = dir.path();
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
        let (database_url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}?mode=rwc", p.join("server.db").display()),
                None,
            ),
            Backend::Postgres => {
                let pg = PgCluster::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
                (pg.url.clone(), Some(pg))
            }
        };
        World {
            dir,
            sandbox,
            database_url,
            pg,
            http: http(),
            log_counter: 0.into(),
        }
    }

    /// The environment of a server process.
    pub fn server_env(&self) -> Vec<(String, String)> {
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
            s("DATABASE_URL", self.database_url.clone()),
            s("PAYMENTS_INQUIRY_BACKOFF_MS", "[50, 100, 200]".into()),
        ]
    }

    pub fn spawn_server(&self, extra: &[(&str, &str)]) -> ServerProc {
        let mut env = self.server_env();
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        let n = self
            .log_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("server-{n}.log"));
        ServerProc::spawn(
            Path::new(env!("CARGO_BIN_EXE_scanbind-server")),
            &env,
            &log,
            "info,scanbind_server=debug",
        )
        .unwrap_or_else(|e| panic!("server did not start: {e}"))
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
        assert!(
            r.status().is_success(),
            "scan: {}",
            r.text().await.unwrap_or_default()
        );
        r.json().await.unwrap()
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
}

/// A device: its key and a signing HTTP client.
pub struct Device {
    pub key: DeviceKey,
    pub http: reqwest::Client,
    pub base: String,
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Device {
    pub fn new(base: &str) -> Device {
        Device {
            key: DeviceKey::generate().unwrap(),
            http: http(),
            base: base.to_owned(),
        }
    }

    /// Builds a signed request with explicit time and nonce (for replay/stale tests).
    pub fn request_at(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        time: i64,
        nonce: &str,
    ) -> reqwest::RequestBuilder {
        let headers = self.key.sign_request(method, path, time, nonce, body);
        let mut rb = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers.to_pairs() {
            rb = rb.header(k, v);
        }
        rb
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let resp = self
            .request_at(method, path, &bytes, now_s(), &new_nonce().unwrap())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.send(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    pub async fn register(&self) -> Value {
        let body = serde_json::json!({"publicKey": self.key.public_key().to_base64(), "name": "Living room TV", "model": "TV-1"});
        self.ok("POST", "/v1/devices", Some(body)).await
    }

    pub async fn events(&self, after: Option<i64>) -> EventStream {
        let path = match after {
            Some(a) => format!("/v1/events?after={a}"),
            None => "/v1/events".to_owned(),
        };
        let resp = self
            .request_at("GET", &path, b"", now_s(), &new_nonce().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "events: {}",
            resp.text().await.unwrap_or_default()
        );
        EventStream {
            resp,
            buf: String::new(),
        }
    }
}

/// Reads Server-Sent Events.
pub struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    pub async fn next(&mut self) -> EventEnvelope {
        tokio::time::timeout(GUARD, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let data: String = block
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(str::trim_start)
                        .collect::<Vec<_>>()
                        .join("\n");
                    if data.is_empty() {
                        continue; // keep-alive comment
                    }
                    return serde_json::from_str(&data).unwrap();
                }
                let chunk = self
                    .resp
                    .chunk()
                    .await
                    .unwrap()
                    .expect("event stream ended");
                self.buf.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("no event within the guard time")
    }
}

pub fn public_key_of(pem: &str) -> PublicKey {
    PublicKey::from_text(pem).unwrap()
}
