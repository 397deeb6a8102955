//! Bind latency after approval: from the wallet's approval to the daemon's
//! `Binding1.Completed` signal. See benches/README.md.
//!
//! `cargo bench -p scanbind-benches --bench daemon_bind [-- --write-docs]` inside the
//! D-Bus session with a Secret Service that `scripts/bench` starts.
//!
//! - Measured: `StartBinding`, then the wallet user approves through the sandbox's
//!   control API (`POST /sandbox/v1/scan`); the clock starts when that request is
//!   answered (the sandbox has recorded the approval and queued `AUTHCODE_CREATED` to
//!   the server) and stops at the `Completed` signal (state `bound`). In between: the
//!   notification reaches the server, the server exchanges the code for tokens
//!   (`applyToken` to the sandbox), seals them and pushes `binding.completed` on the
//!   device's event stream; the daemon stores the sealed tokens in the keyring and
//!   emits the signal.
//! - Floor, interleaved: the same from the scan's answer to `binding.completed` arriving
//!   on the event stream of a bare device client of the same server (no daemon): what
//!   the sandbox and the server cost. The daemon's own share is the difference.
//! - Beside them, also interleaved: what the daemon does on `binding.completed` before
//!   it signals, storing the sealed tokens in the keyring, timed exactly as its vault
//!   does it (an entry of the run's one Secret Service store on a blocking thread, `set_secret` of a blob of
//!   the same size under a new account, deleted again untimed).
//! - After each round the daemon's binding is unbound again (`Daemon1.Unbind`, untimed,
//!   approved on a display agent of this process, as an app's unbinding needs the user's
//!   approval), so every binding is made on a device with one wallet and the keyring keeps its size
//!   (gnome-keyring rewrites its whole collection file on every change).

mod stack;

use std::process::ExitCode;
use std::time::Instant;

use futures_util::StreamExt as _;
use scanbind_benches::Machine;
use serde_json::json;
use stack::{Device, GUARD, PrivateBus, Samples, ms, s};

const SECTION: &str = "daemon-bind";
const WARMUP: usize = 5;
const ROUNDS: usize = 50;

fn main() -> ExitCode {
    stack::bench_main("daemon_bind", run)
}

struct Figures {
    /// Scan answered → `binding.completed` at a bare device client.
    server: Samples,
    /// Scan answered → the daemon's `Completed`.
    daemon: Samples,
    /// The vault's store of one binding's sealed tokens.
    keyring: Samples,
}

fn run() -> Result<(), String> {
    stack::require_secret_service("daemon_bind")?;
    let stack::Prepared { bins, versions, rt } = stack::prepare("daemon_bind")?;
    let figures = rt.block_on(measure(&bins))?;
    stack::publish(
        "daemon_bind",
        SECTION,
        &report(&Machine::current(), &versions, &figures),
    )
}

async fn measure(bins: &std::path::Path) -> Result<Figures, String> {
    let world = stack::world(bins).await?;
    let server = stack::spawn_server(&world)?;
    let bus = PrivateBus::without_services().map_err(s)?;
    let state = tempfile::tempdir().map_err(s)?;
    let daemon =
        stack::spawn_daemon_trusting_this_agent(bins, bus.address(), &server.base, state.path())?;
    let conn = bus.connect().await.map_err(s)?;
    let d = stack::daemon_proxy(&conn).await?;
    // The user approves each (untimed) Unbind on this display agent.
    let _agent = scanbind_testkit::agent::approving_agent(bus.address())
        .await
        .map_err(s)?;
    let device = Device::register(&server.base).await?;
    let mut events = device.events().await?;

    let mut f = Figures {
        server: Samples::default(),
        daemon: Samples::default(),
        keyring: Samples::default(),
    };
    let probe = format!("{}.probe", stack::vault_service(state.path()));
    eprintln!("daemon_bind: {WARMUP} warm-up + {ROUNDS} rounds...");
    for i in 0..WARMUP + ROUNDS {
        // The floor: a bare device client.
        let start = device
            .ok("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
            .await?;
        let id = start["bindingId"]
            .as_str()
            .ok_or("no bindingId")?
            .to_owned();
        stack::scan(&world, start["codeValue"].as_str().ok_or("no codeValue")?).await?;
        let t = Instant::now();
        let sealed = loop {
            let ev = events.next().await?;
            if ev["data"]["bindingId"] == id.as_str() {
                if ev["type"] != "binding.completed" {
                    return Err(format!("direct binding {i}: {ev}"));
                }
                break ev["data"]["sealedTokens"]
                    .as_str()
                    .ok_or("no sealedTokens")?
                    .to_owned();
            }
        };
        let direct = t.elapsed();

        // What the vault does for a new binding.
        let blob = sealed.into_bytes();
        let ((), keyring) =
            stack::keyring_op(&probe, &format!("sealed-tokens:probe-{i}"), move |e| {
                e.set_secret(&blob)
            })
            .await?;
        // Untimed: remove it again, the keyring keeps its size.
        stack::keyring_op(&probe, &format!("sealed-tokens:probe-{i}"), |e| {
            e.delete_credential()
        })
        .await?;

        // Through the daemon.
        let path = d
            .start_binding("ALIPAY_HK", std::collections::HashMap::new())
            .await
            .map_err(s)?;
        let binding = stack::binding_proxy(&conn, &path).await?;
        let mut completed = binding.receive_completed().await.map_err(s)?;
        let code = binding.code_value().await.map_err(s)?;
        stack::scan(&world, &code).await?;
        let t = Instant::now();
        let signal = tokio::time::timeout(GUARD, completed.next())
            .await
            .map_err(|_| format!("no Completed within the guard time: {}", daemon.logs()))?
            .ok_or("signal stream ended")?;
        let through_daemon = t.elapsed();
        let state = signal.args().map_err(s)?.state.to_owned();
        if state != "bound" {
            return Err(format!("binding {i} ended {state}: {}", daemon.logs()));
        }
        // Untimed: unbind again (the daemon revokes the tokens and deletes them from the
        // keyring), so every round binds on a device with one wallet, as in use, and
        // the keyring does not grow from round to round.
        d.unbind(&path, std::collections::HashMap::new())
            .await
            .map_err(|e| format!("Unbind {i}: {e}"))?;
        if i >= WARMUP {
            f.server.push(direct);
            f.daemon.push(through_daemon);
            f.keyring.push(keyring);
        }
    }
    drop(daemon);
    world.sandbox.shutdown().await;
    Ok(f)
}

fn row(name: &str, x: &Samples) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} |",
        ms(x.percentile(50.0)),
        ms(x.percentile(90.0)),
        ms(x.percentile(99.0)),
        ms(x.min()),
        ms(x.max())
    )
}

fn report(machine: &Machine, versions: &str, f: &Figures) -> String {
    let p99 = f.daemon.percentile(99.0);
    let verdict = if p99.as_secs_f64() <= 0.050 {
        "meets"
    } else {
        "misses"
    };
    let own50 = f.daemon.median().as_secs_f64() - f.server.median().as_secs_f64();
    [
        "## Bind latency after approval".to_owned(),
        String::new(),
        format!(
            "Run: {}. Release build (`cargo bench`); {versions}. Real processes: private `dbus-daemon`, `scanbindd` (vault: gnome-keyring), `scanbind-server` on SQLite; the sandbox and the app run in the bench process (2 tokio workers). The machine is shared with other work (noisy).",
            machine.summary()
        ),
        format!(
            "One round = a binding (`ALIPAY_HK`) approved through `POST /sandbox/v1/scan`, timed from that request's answer to the event; {ROUNDS} rounds of each after {WARMUP} warm-up rounds, interleaved. Floor = the same binding started by a bare device client of the same server, timed to `binding.completed` on its `GET /v1/events` stream (notification to the server, `applyToken`, sealing, push)."
        ),
        stack::reproduce("daemon_bind"),
        String::new(),
        "| measure | p50 | p90 | p99 | min | max |".to_owned(),
        "|---|---:|---:|---:|---:|---:|".to_owned(),
        row("**floor**: scan answered → `binding.completed` at a bare device", &f.server),
        row("scan answered → daemon's `Binding1.Completed`", &f.daemon),
        row("(beside: the vault's keyring store of the sealed tokens)", &f.keyring),
        String::new(),
        format!(
            "Daemon p99: **{}** (target ≤ 50 ms: {verdict}; with {ROUNDS} rounds p99 is the slowest round); the daemon's own share at the median: {:.2} ms, of which the keyring store takes {}.",
            ms(p99),
            own50 * 1e3,
            ms(f.keyring.median())
        ),
    ]
    .join("\n")
}
