//! The real stack for the daemon benchmarks, all real processes: an in-process sandbox
//! (the AMS stand-in), the release `scanbind-server` binary on SQLite, a private
//! `dbus-daemon` (optionally with a service directory, for activation) and the release
//! `scanbindd` binary, whose vault is the gnome-keyring Secret Service on the session
//! bus that `scripts/bench` starts. Adapted from `daemon/tests/common` and
//! `server/tests/common`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use scanbind_device_api::signing::{DeviceKey, new_nonce};
use scanbind_testkit::world::{SealingKey, ServerBinary, ServerConfig, WorldOptions};
use serde_json::{Value, json};

/// The merchant's AMS client id.
pub const CLIENT_ID: &str = "2188BENCH000001";
/// Bound on every wait: a hung bench fails instead of hanging.
pub const GUARD: Duration = Duration::from_secs(60);

/// The `main` of a bench of the stack: runs `run` only under `cargo bench` (which
/// passes `--bench`); an error is printed and fails the process.
pub fn bench_main(bench: &str, run: impl FnOnce() -> Result<(), String>) -> std::process::ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{bench}: not run without --bench (use cargo bench)");
        return std::process::ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{bench}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What a bench of the stack starts from: the release binaries, their versions (for
/// the report) and the 2-worker runtime the bench's side runs on.
pub struct Prepared {
    pub bins: PathBuf,
    pub versions: String,
    pub rt: tokio::runtime::Runtime,
}

/// Builds the release binaries and the runtime.
pub fn prepare(bench: &str) -> Result<Prepared, String> {
    eprintln!("{bench}: building the release scanbindd and scanbind-server...");
    let bins = release_binaries()?;
    let versions = versions(&bins);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(s)?;
    Ok(Prepared { bins, versions, rt })
}

/// Prints a bench's report and, with `--write-docs`, writes it into its section of
/// docs/benchmarks.md.
pub fn publish(bench: &str, section: &str, report: &str) -> Result<(), String> {
    println!("{report}");
    if scanbind_benches::write_docs_requested() {
        let path = scanbind_benches::update_docs(section, report)?;
        eprintln!("{bench}: wrote {}", path.display());
    }
    Ok(())
}

/// Fails unless a Secret Service is on the session bus (`scripts/bench` starts one).
pub fn require_secret_service(bench: &str) -> Result<(), String> {
    if std::env::var_os("KEYRING_SS_TEST").is_none() {
        return Err(format!(
            "{bench} needs a real Secret Service: run it through scripts/bench, which starts an \
             unlocked gnome-keyring in a private D-Bus session and sets KEYRING_SS_TEST=1"
        ));
    }
    Ok(())
}

/// `"{e}"` for any displayable error.
pub fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The binaries as they ship: `scanbindd` from the `dist` profile without the dev
/// stack (what `scripts/package` puts in the package, docs/decisions.md D24) and the
/// release `scanbind-server`, built first (`cargo bench` builds only this package's
/// targets) and linked side by side into `target/bench-bins`, unless
/// `SCANBIND_BENCH_PREBUILT=1` says that directory is already up to date, or
/// `SCANBIND_BENCH_BIN_DIR` names another directory holding both (e.g. wrappers that
/// run them under `strace` or `perf`). Returns their directory.
pub fn release_binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SCANBIND_BENCH_BIN_DIR") {
        return existing_binaries(PathBuf::from(dir));
    }
    // target/release/deps/<bench>-<hash> → target
    let exe = std::env::current_exe().map_err(s)?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .ok_or("cannot find the target directory")?
        .to_owned();
    let dir = target.join("bench-bins");
    if std::env::var("SCANBIND_BENCH_PREBUILT").is_ok_and(|v| v == "1") {
        return existing_binaries(dir);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let builds: [(&[&str], &str, &str); 2] = [
        (
            &["--profile", "dist", "--no-default-features"],
            "scanbindd",
            "dist",
        ),
        (&["--release"], "scanbind-server", "release"),
    ];
    std::fs::create_dir_all(&dir).map_err(s)?;
    for (flags, bin, profile_dir) in builds {
        let status = Command::new(&cargo)
            .arg("build")
            .args(flags)
            .args(["--locked", "--quiet", "-p", bin, "--bin", bin])
            .current_dir(scanbind_benches::repo_root())
            .status()
            .map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() {
            return Err(format!("building {bin} ({profile_dir}) failed"));
        }
        let link = dir.join(bin);
        match std::fs::remove_file(&link) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(s(e)),
            _ => {}
        }
        std::fs::hard_link(target.join(profile_dir).join(bin), &link).map_err(s)?;
    }
    existing_binaries(dir)
}

fn existing_binaries(dir: PathBuf) -> Result<PathBuf, String> {
    for bin in ["scanbindd", "scanbind-server"] {
        if !dir.join(bin).is_file() {
            return Err(format!("no {}", dir.join(bin).display()));
        }
    }
    Ok(dir)
}

/// The source commit (`git describe --always --dirty`), `scanbindd --version` and
/// `scanbind-server --version`, dbus-daemon's and gnome-keyring's versions, and the
/// kernel: one line for reports.
pub fn versions(bins: &Path) -> String {
    let first_line = |cmd: &mut Command| -> String {
        cmd.output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "unknown".into())
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let commit = first_line(Command::new("git").args([
        "-C",
        &scanbind_benches::repo_root().display().to_string(),
        "describe",
        "--always",
        "--dirty",
    ]));
    format!(
        "commit {commit}, {}, {}, {}, {}, Linux {kernel}",
        first_line(Command::new(bins.join("scanbindd")).arg("--version")),
        first_line(Command::new(bins.join("scanbind-server")).arg("--version")),
        first_line(Command::new("dbus-daemon").arg("--version")),
        first_line(Command::new("gnome-keyring-daemon").arg("--version")),
    )
}

/// An HTTP client (loopback, no proxy).
pub fn http() -> Result<reqwest::Client, String> {
    scanbind_testkit::world::http().map_err(s)
}

/// Sandbox + key files + the SQLite path, and the server binary to run in it
/// (`scanbind-testkit`'s).
pub use scanbind_testkit::world::World;

/// This suite's world: the release `scanbind-server` in `bins` logging at `warn`, the
/// bench's own client id, the fixed sealing key, the server's own AMS timeouts and
/// backoff, and `server.toml` with these (id, name) sellers (combinable), also known to
/// the sandbox. Starts the sandbox on the current tokio runtime.
pub async fn world_with_sellers(bins: &Path, sellers: &[(&str, &str)]) -> Result<World, String> {
    let options = WorldOptions::new(ServerBinary::Path(bins.join("scanbind-server")))
        .client_id(CLIENT_ID)
        .sellers(sellers)
        .server_config(ServerConfig::Always)
        .sealing_key(SealingKey::Fixed)
        .server_log_level("warn");
    World::try_new(options).await.map_err(s)
}

/// [`world_with_sellers`] without sellers.
pub async fn world(bins: &Path) -> Result<World, String> {
    world_with_sellers(bins, &[]).await
}

/// Starts the world's `scanbind-server` (SQLite in the world's directory).
pub fn spawn_server(world: &World) -> Result<ServerProc, String> {
    world.try_spawn_server(&[], "warn").map_err(s)
}

/// The wallet user scans a QR code value and decides (`approve` a binding, `pay` an
/// order code). Returns when the sandbox answered.
pub async fn scan_with(world: &World, code_value: &str, decision: &str) -> Result<(), String> {
    world
        .try_scan(code_value, decision)
        .await
        .map(drop)
        .map_err(|e| format!("scan: {e}"))
}

/// The wallet user scans and approves a binding's QR code value.
pub async fn scan(world: &World, code_value: &str) -> Result<(), String> {
    scan_with(world, code_value, "approve").await
}

/// `scanbind-server` as a child process (`scanbind-testkit`'s); killed on drop.
pub use scanbind_testkit::ServerProc;

/// A private `dbus-daemon` (`scanbind-testkit`'s); with a service directory
/// (`PrivateBus::start_with`), names can be activated.
#[allow(unused_imports)] // each bench uses a part
pub use scanbind_testkit::PrivateBus;

/// The keyring service name of a daemon whose state lives in `state_dir`: one keyring
/// namespace per run, so runs never share a device key.
pub fn vault_service(state_dir: &Path) -> String {
    format!("io.scanbind.Daemon.bench.{}", state_dir.display())
}

/// `scanbindd` as a child process (`scanbind-testkit`'s); killed on drop.
pub use scanbind_testkit::DaemonProc;

/// Starts the release daemon in `bins` and waits (unbounded) for its ready line.
pub fn spawn_daemon(
    bins: &Path,
    bus_address: &str,
    server: &str,
    state_dir: &Path,
) -> Result<DaemonProc, String> {
    DaemonProc::command(&bins.join("scanbindd"), state_dir)
        .address(bus_address)
        .server(server)
        .log_level("warn")
        .suite("bench")
        .guard(None)
        .spawn()
        .map_err(s)
}

/// [`spawn_daemon`] with a policy that trusts this process as the display agent
/// (`scanbind_testkit::agent`: an app's `Unbind` needs the user's approval) and lets
/// every app pay, as without a policy.
pub fn spawn_daemon_trusting_this_agent(
    bins: &Path,
    bus_address: &str,
    server: &str,
    state_dir: &Path,
) -> Result<DaemonProc, String> {
    let policy = state_dir.join("policy.toml");
    std::fs::write(&policy, scanbind_testkit::agent::trusted_agent_toml()).map_err(s)?;
    DaemonProc::command(&bins.join("scanbindd"), state_dir)
        .args([std::ffi::OsStr::new("--policy"), policy.as_os_str()])
        .address(bus_address)
        .server(server)
        .log_level("warn")
        .suite("bench")
        .guard(None)
        .spawn()
        .map_err(s)
}

/// Binds `ALIPAY_HK` through the daemon (StartBinding, the wallet approves, Completed
/// `bound`). Returns the binding's path.
pub async fn bind_daemon(
    world: &World,
    conn: &zbus::Connection,
    d: &scanbind_ipc::Daemon1Proxy<'_>,
) -> Result<zvariant::OwnedObjectPath, String> {
    use futures_util::StreamExt as _;
    let path = d
        .start_binding("ALIPAY_HK", HashMap::new())
        .await
        .map_err(s)?;
    let binding = binding_proxy(conn, &path).await?;
    let mut completed = binding.receive_completed().await.map_err(s)?;
    scan(world, &binding.code_value().await.map_err(s)?).await?;
    let signal = tokio::time::timeout(GUARD, completed.next())
        .await
        .map_err(|_| "no Binding1.Completed within the guard time")?
        .ok_or("signal stream ended")?;
    let state = signal.args().map_err(s)?.state.to_owned();
    if state != "bound" {
        return Err(format!("binding ended {state}"));
    }
    Ok(path)
}

/// A `Binding1` proxy at `path` that caches nothing.
pub async fn binding_proxy(
    conn: &zbus::Connection,
    path: &zvariant::OwnedObjectPath,
) -> Result<scanbind_ipc::Binding1Proxy<'static>, String> {
    scanbind_ipc::Binding1Proxy::builder(conn)
        .path(path.clone())
        .map_err(s)?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(s)
}

/// A `Daemon1` proxy that caches nothing.
pub async fn daemon_proxy(
    conn: &zbus::Connection,
) -> Result<scanbind_ipc::Daemon1Proxy<'static>, String> {
    scanbind_ipc::Daemon1Proxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(s)
}

/// A device talking to the server directly: its key and a signing HTTP client.
pub struct Device {
    pub key: DeviceKey,
    pub http: reqwest::Client,
    pub base: String,
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Device {
    /// A new device key; registers it with the server.
    pub async fn register(base: &str) -> Result<Device, String> {
        let device = Device {
            key: DeviceKey::generate().map_err(s)?,
            http: http()?,
            base: base.to_owned(),
        };
        let body = json!({"publicKey": device.key.public_key().to_base64(), "name": "bench", "model": "bench"});
        device.ok("POST", "/v1/devices", Some(body)).await?;
        Ok(device)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder, String> {
        let headers = self
            .key
            .sign_request(method, path, now_s(), &new_nonce().map_err(s)?, body);
        let mut rb = self
            .http
            .request(method.parse().map_err(s)?, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers.to_pairs() {
            rb = rb.header(k, v);
        }
        Ok(rb)
    }

    /// A signed call that must answer 2xx; its JSON body.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(&b).map_err(s)?,
            None => Vec::new(),
        };
        let resp = self
            .request(method, path, &bytes)?
            .send()
            .await
            .map_err(s)?;
        let status = resp.status();
        let text = resp.bytes().await.map_err(s)?;
        if !status.is_success() {
            return Err(format!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&text)
            ));
        }
        serde_json::from_slice(&text).map_err(s)
    }

    /// Binds `ALIPAY_HK` through the sandbox's scan: (binding id, sealed tokens), from
    /// the first event on `events` (opened before).
    pub async fn bind(
        &self,
        world: &World,
        events: &mut EventStream,
    ) -> Result<(String, String), String> {
        let start = self
            .ok("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
            .await?;
        scan(world, start["codeValue"].as_str().ok_or("no codeValue")?).await?;
        let ev = events.next().await?;
        let field = |k: &str| {
            ev["data"][k]
                .as_str()
                .or_else(|| ev[k].as_str())
                .map(str::to_owned)
        };
        match (field("bindingId"), field("sealedTokens")) {
            (Some(binding_id), Some(sealed)) => Ok((binding_id, sealed)),
            _ => Err(format!("unexpected first event {ev}")),
        }
    }

    /// Opens `GET /v1/events`.
    pub async fn events(&self) -> Result<EventStream, String> {
        let resp = self
            .request("GET", "/v1/events", b"")?
            .send()
            .await
            .map_err(s)?;
        if resp.status().as_u16() != 200 {
            return Err(format!("events: {}", resp.status()));
        }
        Ok(EventStream {
            resp,
            buf: String::new(),
        })
    }
}

/// Server-Sent Events of `GET /v1/events`.
pub struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    /// The next event's JSON envelope (keep-alive comments skipped).
    pub async fn next(&mut self) -> Result<Value, String> {
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
                        continue;
                    }
                    return serde_json::from_str(&data).map_err(s);
                }
                let chunk = self
                    .resp
                    .chunk()
                    .await
                    .map_err(s)?
                    .ok_or("event stream ended")?;
                self.buf.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .map_err(|_| "no event within the guard time".to_owned())?
    }
}

/// Durations in a run, for percentiles.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// The `p`-th percentile (nearest rank), `p` in 0..=100.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    pub fn median(&self) -> Duration {
        self.percentile(50.0)
    }

    pub fn min(&self) -> Duration {
        self.0.iter().copied().min().unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A table row `| name | median | p90 | min–max |` of `x`.
pub fn median_row(name: &str, x: &Samples) -> String {
    format!(
        "| {name} | {} | {} | {}–{} |",
        ms(x.median()),
        ms(x.percentile(90.0)),
        ms(x.min()),
        ms(x.max())
    )
}

/// Writes a wrapper script (mode 0755) at `path` with `body` after the shebang.
pub fn write_script(path: &Path, body: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut f = std::fs::File::create(path).map_err(s)?;
    writeln!(f, "#!/bin/sh\n{body}").map_err(s)?;
    drop(f);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(s)
}

/// Shell-quotes `text` in single quotes.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Times `f` once.
pub async fn timed<T, F: std::future::Future<Output = T>>(f: F) -> (T, Duration) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

/// One keyring operation exactly as the daemon's vault runs it (`daemon/src/vault`): an
/// entry of one Secret Service store kept for the run (its connection and session are
/// opened once), on a blocking-pool thread. Timed from the spawn to the result.
pub async fn keyring_op<T: Send + 'static>(
    service: &str,
    account: &str,
    op: impl FnOnce(&keyring_core::Entry) -> keyring_core::Result<T> + Send + 'static,
) -> Result<(T, Duration), String> {
    static STORE: std::sync::OnceLock<std::sync::Arc<keyring_core::CredentialStore>> =
        std::sync::OnceLock::new();
    let (service, account) = (service.to_owned(), account.to_owned());
    let t = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let store = match STORE.get() {
            Some(store) => store.clone(),
            None => {
                let store: std::sync::Arc<keyring_core::CredentialStore> =
                    zbus_secret_service_keyring_store::Store::new()?;
                STORE.get_or_init(|| store).clone()
            }
        };
        keyring_core::Entry::new_in_store(&store, &service, &account).and_then(|entry| op(&entry))
    })
    .await
    .map_err(s)?
    .map_err(|e| format!("keyring: {e}"))?;
    Ok((out, t.elapsed()))
}

/// The report line that says how to rerun `bench`.
pub fn reproduce(bench: &str) -> String {
    format!(
        "Reproduce: `scripts/bench` (every section), or this one alone with `cargo bench -p scanbind-benches --bench {bench}` inside a D-Bus session with an unlocked gnome-keyring (`benches/README.md`)."
    )
}
