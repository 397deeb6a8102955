//! A world for the server: an in-process sandbox (AMS and the phone) with its state
//! file, the merchant, Alipay-side, receipt and sealing keys as files, and a database
//! (SQLite file or a throwaway PostgreSQL).

use std::path::{Path, PathBuf};
use std::time::Duration;

use scanbind_ams::PrivateKey;
use scanbind_sandbox::{Sandbox, SandboxHandle};
use serde_json::Value;

use crate::pg::PgCluster;
use crate::server::ServerProc;

/// The merchant client id every world registers.
pub const CLIENT_ID: &str = "2188TEST0000001";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ams/tests/fixtures");

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the world's directory.
    Sqlite,
    /// A throwaway PostgreSQL cluster.
    Postgres,
}

/// Options of a world.
#[derive(Debug, Clone, Default)]
pub struct WorldOptions {
    /// Access-token lifetime of the wallet (default 30 days).
    pub access_ttl: Option<Duration>,
    /// Keep the sandbox state in a file (outside the world's directory) — the source of
    /// truth for the tokens in the secrets audit.
    pub sandbox_state_file: bool,
    /// The database.
    pub postgres: bool,
    /// The sandbox's notification retry schedule multiplier (`0.001`: retries within
    /// a second).
    pub time_scale: Option<f64>,
    /// The `scanbind-server` binary (default: built by [`crate::bins::binaries`]).
    pub server_binary: Option<PathBuf>,
    /// Where the server's AMS calls go instead of the sandbox (a recording proxy).
    pub ams_base_url: Option<String>,
    /// Sellers (id, name) under the merchant, enabled for combined checkout on both
    /// the sandbox and the server.
    pub sellers: Vec<(&'static str, &'static str)>,
}

/// Sandbox + key files + database.
pub struct World {
    /// Keys, database file, logs: everything the server writes.
    pub dir: tempfile::TempDir,
    /// The sandbox's own directory (its state file): not part of the product.
    pub sandbox_dir: tempfile::TempDir,
    /// The sandbox.
    pub sandbox: SandboxHandle,
    /// The PostgreSQL cluster, for `Backend::Postgres`.
    pub pg: Option<PgCluster>,
    /// The server's `DATABASE_URL`.
    pub database_url: String,
    /// A loopback HTTP client.
    pub http: reqwest::Client,
    ams_base_url: Option<String>,
    server_binary: Option<PathBuf>,
    /// `server.toml` (the sellers), when there are sellers.
    server_config: Option<PathBuf>,
    logs: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("dir", &self.dir.path())
            .field("sandbox", &self.sandbox.base_url())
            .finish_non_exhaustive()
    }
}

impl World {
    /// A world with the given options. Panics on failure (fixture code).
    pub async fn new(options: WorldOptions) -> World {
        if options.server_binary.is_none() {
            // Build the binaries now, off the async workers: a build waiting for the cargo
            // lock must not starve other tasks (a D-Bus handshake times out otherwise).
            tokio::task::block_in_place(crate::bins::binaries);
        }
        let dir = tempfile::tempdir().unwrap();
        let sandbox_dir = tempfile::tempdir().unwrap();
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
        if let Some(access) = options.access_ttl {
            builder = builder.token_ttls(access, Duration::from_secs(3600));
        }
        if let Some(scale) = options.time_scale {
            builder = builder.time_scale(scale);
        }
        if options.sandbox_state_file {
            builder = builder.state_file(sandbox_dir.path().join("sandbox-state.json"));
        }
        let mut sellers_toml = String::new();
        for (id, name) in &options.sellers {
            builder = builder.seller(CLIENT_ID, *id, *name);
            sellers_toml.push_str(&format!(
                "[[sellers]]\nid = \"{id}\"\nname = \"{name}\"\ncombinable = true\n"
            ));
        }
        let sandbox = builder.start().await.unwrap();
        let p = dir.path();
        let server_config = (!options.sellers.is_empty()).then(|| {
            let file = p.join("server.toml");
            std::fs::write(&file, &sellers_toml).unwrap();
            file
        });
        std::fs::write(p.join("merchant.pem"), &merchant_pem).unwrap();
        std::fs::write(p.join("alipay.pem"), sandbox.public_key().to_pem()).unwrap();
        std::fs::write(p.join("receipt.pem"), ed25519_pkcs8_pem()).unwrap();
        std::fs::write(p.join("seal.key"), random_seal_key()).unwrap();
        let (database_url, pg) = if options.postgres {
            let pg = PgCluster::start().unwrap();
            (pg.url.clone(), Some(pg))
        } else {
            (
                format!("sqlite://{}?mode=rwc", p.join("server.db").display()),
                None,
            )
        };
        World {
            dir,
            sandbox_dir,
            sandbox,
            pg,
            database_url,
            http: crate::http(),
            ams_base_url: options.ams_base_url,
            server_binary: options.server_binary,
            server_config,
            logs: 0.into(),
        }
    }

    /// Sends the server's AMS calls to `url` (a recording proxy in front of the
    /// sandbox) instead of the sandbox itself.
    pub fn set_ams_base_url(&mut self, url: String) {
        self.ams_base_url = Some(url);
    }

    /// The sandbox state file (when `sandbox_state_file` was set).
    pub fn sandbox_state_file(&self) -> PathBuf {
        self.sandbox_dir.path().join("sandbox-state.json")
    }

    /// The environment of a server process (every `SCANBIND_SERVER_*` variable).
    pub fn server_env(&self) -> Vec<(String, String)> {
        let p = self.dir.path();
        let s = |k: &str, v: String| (format!("SCANBIND_SERVER_{k}"), v);
        let mut env = vec![
            s("SERVER_LISTEN", "127.0.0.1:0".into()),
            s(
                "AMS_BASE_URL",
                self.ams_base_url
                    .clone()
                    .unwrap_or_else(|| self.sandbox.base_url().to_owned()),
            ),
            s("AMS_CLIENT_ID", CLIENT_ID.into()),
            s("AMS_MERCHANT_PRIVATE_KEY", path(p, "merchant.pem")),
            s("AMS_ALIPAY_PUBLIC_KEY", path(p, "alipay.pem")),
            s("AMS_ATTEMPT_TIMEOUT_MS", "5000".into()),
            s("RECEIPTS_SIGNING_KEY", path(p, "receipt.pem")),
            s(
                "TOKENS_SEALING_KEYS",
                format!("[\"{}\"]", path(p, "seal.key")),
            ),
            s("DEVICES_REGISTRATION", "open".into()),
            s("DATABASE_URL", self.database_url.clone()),
            s("PAYMENTS_INQUIRY_BACKOFF_MS", "[50, 100, 200]".into()),
        ];
        if let Some(config) = &self.server_config {
            env.push(s("CONFIG", config.display().to_string()));
        }
        env
    }

    /// Spawns a server with `extra` variables overriding the defaults, logging at
    /// `log_level` to a new file in the world's directory.
    pub fn spawn_server(&self, extra: &[(&str, &str)], log_level: &str) -> ServerProc {
        let mut env = self.server_env();
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let n = self.logs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("server-{n}.log"));
        let binary = self
            .server_binary
            .clone()
            .unwrap_or_else(|| crate::bins::binaries().server.clone());
        ServerProc::spawn(&binary, &env, &log, log_level)
            .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// `GET` a sandbox control path (`/sandbox/v1/...`) as JSON.
    pub async fn control(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sandbox.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST` JSON to a sandbox control path; panics unless it succeeds.
    pub async fn control_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.sandbox.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let ok = r.status().is_success();
        let text = r.text().await.unwrap_or_default();
        assert!(ok, "POST {path} {body}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Arms a sandbox fault.
    pub async fn arm_fault(&self, fault: Value) {
        self.control_post("/sandbox/v1/faults", fault).await;
    }

    /// The sandbox ledger.
    pub async fn ledger(&self) -> Value {
        self.control("/sandbox/v1/ledger").await
    }

    /// What a phone does after scanning `code_value`.
    pub async fn scan(&self, code_value: &str, decision: &str) -> Value {
        self.control_post(
            "/sandbox/v1/scan",
            serde_json::json!({"codeValue": code_value, "decision": decision}),
        )
        .await
    }

    /// The user unbinds every authorization in the wallet app (TOKEN_CANCELED).
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
                rest[..rest.find('"').unwrap_or(0)].to_owned()
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

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// A fresh random 32-byte sealing key, base64 (a constant key would make a poor needle
/// for the secrets audit).
fn random_seal_key() -> String {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut key = [0_u8; 32];
    ring::rand::SystemRandom::new().fill(&mut key).unwrap();
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// A fresh Ed25519 key as PKCS#8 PEM (the receipt signing key).
fn ed25519_pkcs8_pem() -> String {
    use base64::Engine as _;
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}
