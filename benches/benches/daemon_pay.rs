//! `Pay` round trip through the daemon against its floor. See benches/README.md.
//!
//! `cargo bench -p scanbind-benches --bench daemon_pay [-- --write-docs]` inside the
//! D-Bus session with a Secret Service that `scripts/bench` starts.
//!
//! - Measured: the app calls `io.scanbind.Daemon1.Pay` on a private bus and waits for
//!   the new `Payment1` object's `Completed` signal (state `succeeded`): D-Bus → journal
//!   (fsync'd) → server (`POST /v1/payments`) → sandbox → back. The signal subscription
//!   (a match rule on every `Payment1.Completed`) is in place before the call, so an
//!   early signal is never missed.
//! - Floor = the sum of the medians of three parts measured in the same run, interleaved
//!   with the `Pay`s: (1) a bare D-Bus echo call with `Pay`'s argument signature to a
//!   service on the same private bus (served by this process on its own connection);
//!   (2) one fsync'd SQLite commit (WAL, `synchronous=FULL`, a file in the same
//!   temporary directory as the daemon's journal); (3) the direct signed device-API
//!   call `POST /v1/payments` for the same kind of payment (agreement pay, HKD 1.00)
//!   to the same server, by another bound device.
//! - Beside the floor, what the daemon does on top of it per `Pay`: one more fsync'd
//!   journal commit (the settled state; the floor counts the record's), the `sent`
//!   write without an fsync (docs/decisions.md D25), journal reads and hand-offs to the
//!   journal's thread, the receipt check, the object export and the signals. The
//!   sealed tokens are in memory after the binding's first keyring access (D20), so no
//!   keyring call is on the path.

mod stack;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use scanbind_benches::Machine;
use serde_json::json;
use stack::{Device, GUARD, PrivateBus, Samples, median_row, ms, s, spawn_daemon};
use zvariant::OwnedObjectPath;

const SECTION: &str = "daemon-pay";
const WARMUP: usize = 20;
const ITERATIONS: usize = 200;
const AMOUNT: i64 = 100;
const ECHO_NAME: &str = "io.scanbind.BenchEcho";
const ECHO_PATH: &str = "/io/scanbind/BenchEcho1";
const ECHO_IFACE: &str = "io.scanbind.BenchEcho1";

fn main() -> ExitCode {
    stack::bench_main("daemon_pay", run)
}

/// The echo service: `Pay`'s in-arguments, one object path out, no work.
struct Echo;

#[zbus::interface(name = "io.scanbind.BenchEcho1")]
impl Echo {
    async fn pay(
        &self,
        order_id: String,
        amount_minor: i64,
        currency: String,
        description: String,
        options: HashMap<String, zvariant::OwnedValue>,
    ) -> OwnedObjectPath {
        let _ = (order_id, amount_minor, currency, description, options);
        OwnedObjectPath::try_from("/io/scanbind/BenchEcho1/payment/1").expect("valid path")
    }
}

struct Figures {
    echo: Samples,
    commit: Samples,
    server: Samples,
    pay: Samples,
}

fn run() -> Result<(), String> {
    stack::require_secret_service("daemon_pay")?;
    let stack::Prepared { bins, versions, rt } = stack::prepare("daemon_pay")?;
    let figures = rt.block_on(measure(&bins))?;
    stack::publish(
        "daemon_pay",
        SECTION,
        &report(&Machine::current(), &versions, &figures),
    )
}

async fn measure(bins: &std::path::Path) -> Result<Figures, String> {
    let world = stack::world(bins).await?;
    let server = stack::spawn_server(&world)?;
    let bus = PrivateBus::without_services().map_err(s)?;
    let state = tempfile::tempdir().map_err(s)?;
    let daemon = spawn_daemon(bins, bus.address(), &server.base, state.path())?;
    let conn = bus.connect().await.map_err(s)?;
    let d = stack::daemon_proxy(&conn).await?;
    stack::bind_daemon(&world, &conn, &d).await?;

    // Floor (1): the echo service on its own connection to the same bus.
    let _echo = zbus::connection::Builder::address(bus.address())
        .map_err(s)?
        .name(ECHO_NAME)
        .map_err(s)?
        .serve_at(ECHO_PATH, Echo)
        .map_err(s)?
        .build()
        .await
        .map_err(s)?;
    // Floor (2): a WAL database with synchronous=FULL next to the journal.
    let db = rusqlite::Connection::open(state.path().join("floor.sqlite3")).map_err(s)?;
    let mode: String = db
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(s)?;
    if mode != "wal" {
        return Err(format!("journal_mode is {mode}, not wal"));
    }
    db.pragma_update(None, "synchronous", "FULL").map_err(s)?;
    db.execute_batch(
        "CREATE TABLE payments (id INTEGER PRIMARY KEY, app_id TEXT NOT NULL, \
         order_id TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL, \
         description TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL, \
         UNIQUE (app_id, order_id))",
    )
    .map_err(s)?;
    // Floor (3): another device of the same server, bound to the same wallet.
    let device = Device::register(&server.base).await?;
    let mut events = device.events().await?;
    let (binding_id, sealed) = device.bind(&world, &mut events).await?;

    // Every Payment1.Completed on the bus, subscribed before the first Pay.
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(scanbind_ipc::PAYMENT_INTERFACE)
        .map_err(s)?
        .member("Completed")
        .map_err(s)?
        .build();
    let mut completed = zbus::MessageStream::for_match_rule(rule, &conn, Some(1024))
        .await
        .map_err(s)?;

    let mut f = Figures {
        echo: Samples::default(),
        commit: Samples::default(),
        server: Samples::default(),
        pay: Samples::default(),
    };
    eprintln!("daemon_pay: {WARMUP} warm-up + {ITERATIONS} rounds...");
    for i in 0..WARMUP + ITERATIONS {
        let order = format!("bench-{i}");
        // (1) echo
        let t = Instant::now();
        let reply = conn
            .call_method(
                Some(ECHO_NAME),
                ECHO_PATH,
                Some(ECHO_IFACE),
                "Pay",
                &(
                    order.as_str(),
                    AMOUNT,
                    "HKD",
                    "bench",
                    HashMap::<String, zvariant::Value<'_>>::new(),
                ),
            )
            .await
            .map_err(s)?;
        let _: OwnedObjectPath = reply.body().deserialize().map_err(s)?;
        let echo = t.elapsed();
        // (2) one fsync'd commit
        let t = Instant::now();
        db.execute(
            "INSERT INTO payments (app_id, order_id, amount, currency, description, state, \
             created_at) VALUES (?1, ?2, ?3, 'HKD', 'bench', 'recorded', ?4)",
            rusqlite::params!["/usr/bin/bench-app", order, AMOUNT, i as i64],
        )
        .map_err(s)?;
        let commit = t.elapsed();
        // (3) the direct server call
        let body = json!({"appId": "bench-direct", "appOrderId": order, "bindingId": binding_id,
                          "sealedTokens": sealed, "amount": {"currency": "HKD", "value": AMOUNT},
                          "description": "bench"});
        let t = Instant::now();
        let p = device.ok("POST", "/v1/payments", Some(body)).await?;
        let direct = t.elapsed();
        if p["status"] != "succeeded" {
            return Err(format!("direct payment {i}: {p}"));
        }
        // The Pay round trip.
        let t = Instant::now();
        let path = d
            .pay(&order, AMOUNT, "HKD", "bench", HashMap::new())
            .await
            .map_err(|e| format!("Pay {i}: {e}\n{}", daemon.logs()))?;
        let state = tokio::time::timeout(GUARD, async {
            while let Some(msg) = completed.next().await {
                let msg = msg.map_err(s)?;
                if msg
                    .header()
                    .path()
                    .is_some_and(|p| p.as_str() == path.as_str())
                {
                    let (state, _): (String, HashMap<String, zvariant::OwnedValue>) =
                        msg.body().deserialize().map_err(s)?;
                    return Ok::<_, String>(state);
                }
            }
            Err("signal stream ended".into())
        })
        .await
        .map_err(|_| format!("no Completed for {path} within the guard time"))??;
        let pay = t.elapsed();
        if state != "succeeded" {
            return Err(format!("Pay {i} ended {state}: {}", daemon.logs()));
        }
        if i >= WARMUP {
            f.echo.push(echo);
            f.commit.push(commit);
            f.server.push(direct);
            f.pay.push(pay);
        }
    }
    drop(daemon);
    world.sandbox.shutdown().await;
    Ok(f)
}

fn report(machine: &Machine, versions: &str, f: &Figures) -> String {
    let floor: Duration = f.echo.median() + f.commit.median() + f.server.median();
    let ratio = f.pay.median().as_secs_f64() / floor.as_secs_f64();
    let verdict = if ratio <= 1.2 { "meets" } else { "misses" };
    let explained = floor + f.commit.median();
    [
        "## Daemon `Pay` round trip".to_owned(),
        String::new(),
        format!(
            "Run: {}. Release build (`cargo bench`); {versions}. Real processes: private `dbus-daemon`, `scanbindd` (vault: gnome-keyring), `scanbind-server` on SQLite; the sandbox, the app and the echo service run in the bench process (2 tokio workers). The machine is shared with other work (noisy).",
            machine.summary()
        ),
        format!(
            "One round = `Daemon1.Pay` (agreement pay, HKD 1.00, new order id) until the `Payment1.Completed` signal with state `succeeded`, interleaved with the three floor parts; {ITERATIONS} rounds after {WARMUP} warm-up rounds. Floor = median bare D-Bus echo call (same bus, `Pay`'s signature) + median fsync'd SQLite commit (WAL, `synchronous=FULL`, same disk) + median direct signed `POST /v1/payments` (another device, same server)."
        ),
        stack::reproduce("daemon_pay"),
        String::new(),
        "| measure | median | p90 | min–max |".to_owned(),
        "|---|---:|---:|---:|".to_owned(),
        median_row("D-Bus echo call", &f.echo),
        median_row("SQLite commit (WAL, FULL)", &f.commit),
        median_row("direct `POST /v1/payments`", &f.server),
        format!("| **floor** (sum of the medians) | {} | | |", ms(floor)),
        median_row("`Pay` → `Completed`", &f.pay),
        String::new(),
        format!(
            "`Pay` ÷ floor: **{ratio:.2}×** (target ≤ 1.2×: {verdict})."
        ),
        String::new(),
        "What the daemon does beyond the floor, timed in the same rounds:".to_owned(),
        String::new(),
        "| per `Pay` | median | p90 | min–max |".to_owned(),
        "|---|---:|---:|---:|".to_owned(),
        format!(
            "| 1 more fsync'd journal commit (settled; the floor counts the record's) | {} | | |",
            ms(f.commit.median())
        ),
        format!("| floor + that | {} | | |", ms(explained)),
        format!(
            "| `Pay` − (floor + that): the steps not timed apart (the existing-order read, hand-offs to the journal's thread, the `sent` write without fsync, the receipt check, object export, signals) | {} | | |",
            ms(f.pay.median().saturating_sub(explained))
        ),
    ]
    .join("\n")
}
