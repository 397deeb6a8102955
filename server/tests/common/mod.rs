//! Test fixtures: this suite's world (`scanbind_testkit::World`: an in-process
//! sandbox, keys, a database and the server as a real child process), a signing device
//! client with an SSE reader, and a throwaway PostgreSQL cluster
//! (`scanbind_testkit::PgCluster`).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use scanbind_ams::PublicKey;
use scanbind_device_api::DeviceKey;
use scanbind_device_api::signing::new_nonce;
use scanbind_device_api::types::EventEnvelope;
#[allow(unused_imports)] // each test binary uses a part
pub use scanbind_testkit::world::{
    CLIENT_ID, Database, SealingKey, ServerBinary, World, WorldOptions,
};
#[allow(unused_imports)] // each test binary uses a part
pub use scanbind_testkit::{PgCluster, ServerProc, eventually};
use serde_json::Value;

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

/// This suite's world (`scanbind_testkit::world`): the server binary of this package,
/// the fixed sealing key, AMS attempts of 60 s, a short inquiry backoff, the sellers
/// in the sandbox only (a test that needs them in the server writes `server.toml`), a
/// throwaway PostgreSQL, and [`http`] (no trusted roots).
pub fn world_options(backend: Backend) -> WorldOptions {
    WorldOptions::new(ServerBinary::Path(
        env!("CARGO_BIN_EXE_scanbind-server").into(),
    ))
    .database(match backend {
        Backend::Sqlite => Database::Sqlite,
        Backend::Postgres => Database::PostgresThrowaway,
    })
    .sealing_key(SealingKey::Fixed)
    .ams_attempt_timeout_ms(60_000)
    .inquiry_backoff_ms("[50, 100, 200]")
    .server_log_level("info,scanbind_server=debug")
    .http(http())
}

/// Sandbox + key files + database: everything a server process needs.
pub async fn world(backend: Backend) -> World {
    World::new(world_options(backend)).await
}

/// A world whose sandbox knows these sellers (reference merchant id, name) under the
/// test client.
pub async fn world_with_sellers(backend: Backend, sellers: &[(&str, &str)]) -> World {
    World::new(world_options(backend).sellers(sellers)).await
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
