//! A world for the server ([`World`], feature `world`): an in-process sandbox (AMS and
//! the phone), the merchant, Alipay-side, receipt and sealing keys as files, a database
//! (SQLite file or a throwaway PostgreSQL), and the `scanbind-server` binary started
//! in it as a [`ServerProc`]. What differs between the suites is in [`WorldOptions`];
//! each suite keeps one function that says its choices.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scanbind_ams::PrivateKey;
use scanbind_sandbox::{Sandbox, SandboxHandle};
use serde_json::Value;

use crate::pg::PgCluster;
use crate::server::ServerProc;
use crate::{Error, Result};

/// The merchant client id of a world unless [`WorldOptions::client_id`] says another.
pub const CLIENT_ID: &str = "2188TEST0000001";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ams/tests/fixtures");

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file in the world's directory.
    Sqlite,
    /// A PostgreSQL cluster of the world's own, fsync on ([`PgCluster::start`]: it can
    /// be killed and restarted, for the crash matrix).
    Postgres,
    /// A throwaway PostgreSQL database ([`PgCluster::start_throwaway`]: fsync off, or a
    /// new database in `SCANBIND_TEST_DATABASE_URL`).
    PostgresThrowaway,
}

/// Where the server's sellers configuration (`server.toml`, `SCANBIND_SERVER_CONFIG`)
/// comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerConfig {
    /// None: the sellers are known to the sandbox only (a test writes its own).
    Never,
    /// `server.toml` with the sellers, when there are any.
    WithSellers,
    /// `server.toml` with the sellers, always (empty without sellers).
    Always,
}

/// The server's token sealing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealingKey {
    /// 32 bytes of `42`.
    Fixed,
    /// Fresh random bytes (a constant key would make a poor needle for a secrets audit).
    Random,
}

/// The `scanbind-server` binary.
#[derive(Debug, Clone)]
pub enum ServerBinary {
    /// This one.
    Path(PathBuf),
    /// The one this function builds or finds, called once by [`World::new`] (off the
    /// async workers of a multi-thread runtime: a build waiting for the cargo lock must
    /// not starve other tasks).
    Build(fn() -> PathBuf),
}

/// A seller under the merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seller {
    /// Its reference merchant id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether the server may combine it into one checkout.
    pub combinable: bool,
}

/// What a [`World`] is made of: a builder, each suite sets its own values.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    client_id: String,
    database: Database,
    server_binary: ServerBinary,
    server_log_level: String,
    sellers: Vec<Seller>,
    server_config: ServerConfig,
    sealing_key: SealingKey,
    ams_attempt_timeout_ms: Option<u64>,
    inquiry_backoff_ms: Option<String>,
    access_ttl: Option<Duration>,
    time_scale: Option<f64>,
    sandbox_state_file: bool,
    ams_base_url: Option<String>,
    http: Option<reqwest::Client>,
}

impl WorldOptions {
    /// A world running `server_binary`: client [`CLIENT_ID`], SQLite, no sellers and
    /// no server configuration file, a random sealing key, the server's own AMS attempt
    /// timeout and inquiry backoff, server log level `info`, the sandbox's token
    /// lifetimes and time, and a loopback HTTP client without proxy.
    pub fn new(server_binary: ServerBinary) -> Self {
        WorldOptions {
            client_id: CLIENT_ID.to_owned(),
            database: Database::Sqlite,
            server_binary,
            server_log_level: "info".to_owned(),
            sellers: Vec::new(),
            server_config: ServerConfig::Never,
            sealing_key: SealingKey::Random,
            ams_attempt_timeout_ms: None,
            inquiry_backoff_ms: None,
            access_ttl: None,
            time_scale: None,
            sandbox_state_file: false,
            ams_base_url: None,
            http: None,
        }
    }

    /// The merchant's AMS client id.
    pub fn client_id(mut self, id: &str) -> Self {
        id.clone_into(&mut self.client_id);
        self
    }

    /// The database.
    pub fn database(mut self, database: Database) -> Self {
        self.database = database;
        self
    }

    /// Another `scanbind-server` binary.
    pub fn server_binary(mut self, binary: ServerBinary) -> Self {
        self.server_binary = binary;
        self
    }

    /// The server's `SCANBIND_LOG` for [`World::spawn_server`].
    pub fn server_log_level(mut self, level: &str) -> Self {
        level.clone_into(&mut self.server_log_level);
        self
    }

    /// A seller under the merchant, known to the sandbox (and to the server, as
    /// [`Self::server_config`] says).
    pub fn seller(mut self, id: &str, name: &str, combinable: bool) -> Self {
        self.sellers.push(Seller {
            id: id.to_owned(),
            name: name.to_owned(),
            combinable,
        });
        self
    }

    /// Sellers `(id, name)`, combinable.
    pub fn sellers(self, sellers: &[(&str, &str)]) -> Self {
        sellers
            .iter()
            .fold(self, |o, (id, name)| o.seller(id, name, true))
    }

    /// Whether the server gets the sellers in `server.toml`.
    pub fn server_config(mut self, config: ServerConfig) -> Self {
        self.server_config = config;
        self
    }

    /// The sealing key.
    pub fn sealing_key(mut self, key: SealingKey) -> Self {
        self.sealing_key = key;
        self
    }

    /// `SCANBIND_SERVER_AMS_ATTEMPT_TIMEOUT_MS`.
    pub fn ams_attempt_timeout_ms(mut self, ms: u64) -> Self {
        self.ams_attempt_timeout_ms = Some(ms);
        self
    }

    /// `SCANBIND_SERVER_PAYMENTS_INQUIRY_BACKOFF_MS` (a JSON list).
    pub fn inquiry_backoff_ms(mut self, list: &str) -> Self {
        self.inquiry_backoff_ms = Some(list.to_owned());
        self
    }

    /// The wallet's access-token lifetime (refresh tokens: one hour).
    pub fn access_ttl(mut self, access: Option<Duration>) -> Self {
        self.access_ttl = access;
        self
    }

    /// The sandbox's notification retry schedule multiplier (`0.001`: retries within
    /// a second).
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = Some(scale);
        self
    }

    /// Keep the sandbox state in a file ([`World::sandbox_state_file`], outside the
    /// world's directory).
    pub fn sandbox_state_file(mut self, yes: bool) -> Self {
        self.sandbox_state_file = yes;
        self
    }

    /// Where the server's AMS calls go instead of the sandbox (a recording proxy).
    pub fn ams_base_url(mut self, url: String) -> Self {
        self.ams_base_url = Some(url);
        self
    }

    /// The world's HTTP client (for the sandbox's control API).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }
}

/// Sandbox + key files + database, and the server binary to run in it.
pub struct World {
    /// Keys, database file, server logs: everything the server writes.
    pub dir: tempfile::TempDir,
    /// The sandbox's own directory (its state file): not part of the product.
    pub sandbox_dir: tempfile::TempDir,
    /// The sandbox.
    pub sandbox: SandboxHandle,
    /// The PostgreSQL cluster, for the PostgreSQL databases.
    pub pg: Option<PgCluster>,
    /// The server's `DATABASE_URL`.
    pub database_url: String,
    /// The HTTP client of [`WorldOptions::http`].
    pub http: reqwest::Client,
    client_id: String,
    ams_base_url: Option<String>,
    ams_attempt_timeout_ms: Option<u64>,
    inquiry_backoff_ms: Option<String>,
    server_binary: PathBuf,
    server_log_level: String,
    /// `server.toml` (the sellers), as [`ServerConfig`] says.
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
        Self::try_new(options)
            .await
            .unwrap_or_else(|e| panic!("the world did not start: {e}"))
    }

    /// [`World::new`], with an error instead of a panic.
    pub async fn try_new(options: WorldOptions) -> Result<World> {
        let server_binary = match options.server_binary {
            ServerBinary::Path(path) => path,
            ServerBinary::Build(build) => off_the_workers(build),
        };
        let dir = tempfile::tempdir().map_err(crate::io("create the world's directory"))?;
        let sandbox_dir =
            tempfile::tempdir().map_err(crate::io("create the sandbox's directory"))?;
        let read = |name: &str| {
            std::fs::read_to_string(format!("{FIXTURES}/{name}"))
                .map_err(crate::io(format!("read {name}")))
        };
        let merchant_pem = read("vector_private_pkcs8.pem")?;
        let merchant =
            PrivateKey::from_text(&merchant_pem).map_err(|e| setup("merchant key", e))?;
        let alipay = PrivateKey::from_text(&read("other_rsa2048.pem")?)
            .map_err(|e| setup("Alipay key", e))?;
        let mut builder = Sandbox::builder(alipay)
            .listen(([127, 0, 0, 1], 0).into())
            .merchant(options.client_id.as_str(), merchant.public_key());
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
        for Seller {
            id,
            name,
            combinable,
        } in &options.sellers
        {
            builder = builder.seller(options.client_id.as_str(), id.as_str(), name.as_str());
            sellers_toml.push_str(&format!(
                "[[sellers]]\nid = \"{id}\"\nname = \"{name}\"\ncombinable = {combinable}\n"
            ));
        }
        let sandbox = builder.start().await.map_err(|e| setup("sandbox", e))?;
        let p = dir.path();
        let write = |name: &str, text: &str| {
            std::fs::write(p.join(name), text).map_err(crate::io(format!("write {name}")))
        };
        let server_config = match options.server_config {
            ServerConfig::Always => true,
            ServerConfig::WithSellers => !options.sellers.is_empty(),
            ServerConfig::Never => false,
        };
        let server_config = if server_config {
            write("server.toml", &sellers_toml)?;
            Some(p.join("server.toml"))
        } else {
            None
        };
        write("merchant.pem", &merchant_pem)?;
        write("alipay.pem", &sandbox.public_key().to_pem())?;
        write("receipt.pem", &ed25519_pkcs8_pem()?)?;
        write("seal.key", &seal_key(options.sealing_key)?)?;
        let (database_url, pg) = match options.database {
            Database::Sqlite => (
                format!("sqlite://{}?mode=rwc", p.join("server.db").display()),
                None,
            ),
            Database::Postgres => {
                let pg = PgCluster::start()?;
                (pg.url.clone(), Some(pg))
            }
            Database::PostgresThrowaway => {
                let pg = PgCluster::start_throwaway()?;
                (pg.url.clone(), Some(pg))
            }
        };
        let http = match options.http {
            Some(http) => http,
            None => http()?,
        };
        Ok(World {
            dir,
            sandbox_dir,
            sandbox,
            pg,
            database_url,
            http,
            client_id: options.client_id,
            ams_base_url: options.ams_base_url,
            ams_attempt_timeout_ms: options.ams_attempt_timeout_ms,
            inquiry_backoff_ms: options.inquiry_backoff_ms,
            server_binary,
            server_log_level: options.server_log_level,
            server_config,
            logs: 0.into(),
        })
    }

    /// Sends the server's AMS calls to `url` (a recording proxy in front of the
    /// sandbox) instead of the sandbox itself.
    pub fn set_ams_base_url(&mut self, url: String) {
        self.ams_base_url = Some(url);
    }

    /// The sandbox state file (with [`WorldOptions::sandbox_state_file`]).
    pub fn sandbox_state_file(&self) -> PathBuf {
        self.sandbox_dir.path().join("sandbox-state.json")
    }

    /// The merchant's AMS client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The environment of a server process (every `SCANBIND_SERVER_*` variable).
    pub fn server_env(&self) -> Vec<(String, String)> {
        let p = self.dir.path();
        let s = |k: &str, v: String| (format!("SCANBIND_SERVER_{k}"), v);
        let mut env = vec![
            s("SERVER_LISTEN", "127.0.0.1:0".into()),
            s("SERVER_ADMIN_LISTEN", "127.0.0.1:0".into()),
            s(
                "AMS_BASE_URL",
                self.ams_base_url
                    .clone()
                    .unwrap_or_else(|| self.sandbox.base_url().to_owned()),
            ),
            s("AMS_CLIENT_ID", self.client_id.clone()),
            s("AMS_MERCHANT_PRIVATE_KEY", path(p, "merchant.pem")),
            s("AMS_ALIPAY_PUBLIC_KEY", path(p, "alipay.pem")),
            s("RECEIPTS_SIGNING_KEY", path(p, "receipt.pem")),
            s(
                "TOKENS_SEALING_KEYS",
                format!("[\"{}\"]", path(p, "seal.key")),
            ),
            s("DEVICES_REGISTRATION", "open".into()),
            s("DATABASE_URL", self.database_url.clone()),
        ];
        if let Some(ms) = self.ams_attempt_timeout_ms {
            env.push(s("AMS_ATTEMPT_TIMEOUT_MS", ms.to_string()));
        }
        if let Some(list) = &self.inquiry_backoff_ms {
            env.push(s("PAYMENTS_INQUIRY_BACKOFF_MS", list.clone()));
        }
        if let Some(config) = &self.server_config {
            env.push(s("CONFIG", config.display().to_string()));
        }
        env
    }

    /// Spawns a server with `extra` variables overriding the defaults, at the log
    /// level of [`WorldOptions::server_log_level`]. Panics when it does not start.
    pub fn spawn_server(&self, extra: &[(&str, &str)]) -> ServerProc {
        self.spawn_server_logged(extra, &self.server_log_level)
    }

    /// [`World::spawn_server`] at the given log level.
    pub fn spawn_server_logged(&self, extra: &[(&str, &str)], log_level: &str) -> ServerProc {
        self.try_spawn_server(extra, log_level)
            .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Spawns a server with `extra` variables overriding the defaults, logging at
    /// `log_level` to a new file (`server-N.log`) in the world's directory.
    pub fn try_spawn_server(&self, extra: &[(&str, &str)], log_level: &str) -> Result<ServerProc> {
        let mut env = self.server_env();
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let n = self.logs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("server-{n}.log"));
        ServerProc::spawn(&self.server_binary, &env, &log, log_level)
    }

    /// Runs the world's `scanbind-server` binary with the server environment (no
    /// inherited `SCANBIND_SERVER_*` or `SCANBIND_ADMIN*` variables) and `args`, e.g.
    /// `admin keys create`.
    pub fn server_cli(&self, args: &[&str]) -> Result<std::process::Output> {
        let mut cmd = std::process::Command::new(&self.server_binary);
        for (k, _) in std::env::vars() {
            if k.starts_with("SCANBIND_SERVER_") || k.starts_with("SCANBIND_ADMIN") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.server_env())
            .env("SCANBIND_LOG", "warn")
            .args(args)
            .output()
            .map_err(crate::io("run scanbind-server"))
    }

    /// Issues one per-device enrollment token on `server`'s operator listener, with a
    /// new operator key of scope `admin` (made by [`World::server_cli`]); the token's
    /// text, for a device's `provisioningToken` (`scanbindd --provisioning-token-file`).
    pub async fn enrollment_token(&self, server: &ServerProc, label: &str) -> Result<String> {
        let out = self.server_cli(&[
            "admin", "--json", "keys", "create", "--name", label, "--scope", "admin",
        ])?;
        if !out.status.success() {
            return Err(Error::Process(format!(
                "admin keys create: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let key: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| setup("admin keys create answered", e))?;
        let key = key["key"].as_str().unwrap_or_default();
        let r = self
            .http
            .post(format!("{}/admin/v1/enrollment-tokens", server.admin))
            .bearer_auth(key)
            .json(&serde_json::json!({ "label": label }))
            .send()
            .await
            .map_err(|e| setup("POST /admin/v1/enrollment-tokens", e))?;
        let status = r.status();
        let v: Value = r
            .json()
            .await
            .map_err(|e| setup("POST /admin/v1/enrollment-tokens answered", e))?;
        match v["token"].as_str() {
            Some(t) if status.as_u16() == 201 => Ok(t.to_owned()),
            _ => Err(Error::Process(format!(
                "POST /admin/v1/enrollment-tokens: {status} {v}"
            ))),
        }
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
        self.try_control_post(path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`World::control_post`], with an error instead of a panic.
    pub async fn try_control_post(&self, path: &str, body: Value) -> Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.sandbox.base_url()))
            .json(&body)
            .send()
            .await
            .map_err(|e| setup(&format!("POST {path}"), e))?;
        let ok = r.status().is_success();
        let text = r.text().await.unwrap_or_default();
        if !ok {
            return Err(Error::Process(format!("POST {path} {body}: {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Arms a sandbox fault.
    pub async fn arm_fault(&self, fault: Value) {
        self.control_post("/sandbox/v1/faults", fault).await;
    }

    /// The sandbox ledger.
    pub async fn ledger(&self) -> Value {
        self.control("/sandbox/v1/ledger").await
    }

    /// What a phone does after scanning `code_value` (`approve` a binding, `pay` an
    /// order code): the sandbox's answer.
    pub async fn scan(&self, code_value: &str, decision: &str) -> Value {
        self.try_scan(code_value, decision)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`World::scan`], with an error instead of a panic.
    pub async fn try_scan(&self, code_value: &str, decision: &str) -> Result<Value> {
        self.try_control_post(
            "/sandbox/v1/scan",
            serde_json::json!({"codeValue": code_value, "decision": decision}),
        )
        .await
    }

    /// The user unbinds every authorization from the wallet app's account page (the
    /// sandbox then sends TOKEN_CANCELED); returns how many were unbound.
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

/// A loopback HTTP client (rustls with the ring provider, no proxy): the default of
/// [`WorldOptions::http`].
pub fn http() -> Result<reqwest::Client> {
    scanbind_ams::client::http_client_builder(Vec::new())
        .map_err(|e| setup("HTTP client", e))?
        .no_proxy()
        .build()
        .map_err(|e| setup("HTTP client", e))
}

/// A part of the world that did not start.
fn setup(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Process(format!("{what}: {e}"))
}

/// Runs `build` off the async workers when on a multi-thread runtime.
fn off_the_workers(build: fn() -> PathBuf) -> PathBuf {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(build),
        _ => build(),
    }
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The sealing key, base64.
fn seal_key(key: SealingKey) -> Result<String> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [42_u8; 32];
    if key == SealingKey::Random {
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Process("no random bytes".into()))?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A fresh Ed25519 key as PKCS#8 PEM (the receipt signing key).
fn ed25519_pkcs8_pem() -> Result<String> {
    use base64::Engine as _;
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| Error::Process("Ed25519 key generation failed".into()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    Ok(format!(
        "-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"
    ))
}
