//! Time from D-Bus activation to the first reply. See benches/README.md.
//!
//! `cargo bench -p scanbind-benches --bench daemon_activation [-- --write-docs]` inside
//! the D-Bus session with a Secret Service that `scripts/bench` starts.
//!
//! - A private `dbus-daemon` whose `<servicedir>` holds `io.scanbind.Daemon.service`;
//!   its `Exec=` is a wrapper script running the release `scanbindd --address
//!   "$DBUS_STARTER_ADDRESS" --server URL --state-dir DIR` (the keyring stays on the
//!   session bus). Nothing owns `io.scanbind.Daemon` until an app calls it.
//! - Measured: an app's `Daemon1.GetStatus` call to the unowned name (auto-start
//!   allowed), from sending it to its reply: dbus-daemon forks the wrapper, the daemon
//!   starts (tokio runtime, journal, device key from the keyring, registration with the
//!   server, bindings, event stream), owns the name, and answers. Then the bench stops
//!   the daemon (SIGTERM to the name's owner) and waits until the name is released and
//!   the process is gone, and again. The first activation of a run creates the device
//!   key and is reported apart ("cold"); the others find it in the keyring ("warm").
//! - Floor, interleaved: the same activation of a minimal service (this bench binary
//!   with `--floor-service`: a tokio runtime and a zbus connection that owns a name and
//!   answers `GetStatus` with an empty dictionary): process start + bus connection +
//!   name request through the same bus.

mod stack;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use scanbind_benches::Machine;
use stack::{GUARD, PrivateBus, Samples, median_row, ms, s, sh_quote};

const SECTION: &str = "daemon-activation";
const ROUNDS: usize = 20;
const FLOOR_NAME: &str = "io.scanbind.BenchFloor";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--floor-service") {
        return floor_service();
    }
    stack::bench_main("daemon_activation", run)
}

/// The floor's service: owns `FLOOR_NAME` on `$DBUS_STARTER_ADDRESS` and answers
/// `GetStatus` until killed.
fn floor_service() -> ExitCode {
    struct Floor;
    #[zbus::interface(name = "io.scanbind.Daemon1")]
    impl Floor {
        async fn get_status(
            &self,
            options: HashMap<String, zvariant::OwnedValue>,
        ) -> HashMap<String, zvariant::OwnedValue> {
            let _ = options;
            HashMap::new()
        }
    }
    let run = async {
        let address = std::env::var("DBUS_STARTER_ADDRESS").map_err(s)?;
        let _conn = zbus::connection::Builder::address(address.as_str())
            .map_err(s)?
            .serve_at(scanbind_ipc::DAEMON_PATH, Floor)
            .map_err(s)?
            .name(FLOOR_NAME)
            .map_err(s)?
            .build()
            .await
            .map_err(s)?;
        std::future::pending::<()>().await;
        Ok::<(), String>(())
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(s)
        .and_then(|rt| rt.block_on(run));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor service: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Figures {
    cold: Duration,
    daemon: Samples,
    floor: Samples,
}

fn run() -> Result<(), String> {
    stack::require_secret_service("daemon_activation")?;
    let stack::Prepared { bins, versions, rt } = stack::prepare("daemon_activation")?;
    let figures = rt.block_on(measure(&bins))?;
    stack::publish(
        "daemon_activation",
        SECTION,
        &report(&Machine::current(), &versions, &figures),
    )
}

async fn measure(bins: &std::path::Path) -> Result<Figures, String> {
    let world = stack::world(bins).await?;
    let server = stack::spawn_server(&world)?;
    let session = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .map_err(|_| "no DBUS_SESSION_BUS_ADDRESS (the keyring's bus)")?;
    let state = tempfile::tempdir().map_err(s)?;
    let services = tempfile::tempdir().map_err(s)?;
    let log = state.path().join("scanbindd.log");

    // The daemon's wrapper: the activated process gets the bus in DBUS_STARTER_ADDRESS;
    // its keyring is on the session bus, named explicitly.
    let wrapper = services.path().join("scanbindd-activated");
    stack::write_script(
        &wrapper,
        &format!(
            "export DBUS_SESSION_BUS_ADDRESS={session} SCANBIND_VAULT_SERVICE={vault} SCANBIND_LOG=warn\n\
             exec {bin} --address \"$DBUS_STARTER_ADDRESS\" --server {server} --state-dir {state} >>{log} 2>&1",
            session = sh_quote(&session),
            vault = sh_quote(&stack::vault_service(state.path())),
            bin = sh_quote(&bins.join("scanbindd").display().to_string()),
            server = sh_quote(&server.base),
            state = sh_quote(&state.path().display().to_string()),
            log = sh_quote(&log.display().to_string()),
        ),
    )?;
    std::fs::write(
        services.path().join("io.scanbind.Daemon.service"),
        format!(
            "[D-BUS Service]\nName={}\nExec={}\n",
            scanbind_ipc::BUS_NAME,
            wrapper.display()
        ),
    )
    .map_err(s)?;
    let me = std::env::current_exe().map_err(s)?;
    std::fs::write(
        services.path().join(format!("{FLOOR_NAME}.service")),
        format!(
            "[D-BUS Service]\nName={FLOOR_NAME}\nExec={} --floor-service\n",
            me.display()
        ),
    )
    .map_err(s)?;

    let bus = PrivateBus::start_with(Some(services.path())).map_err(s)?;
    let conn = bus.connect().await.map_err(s)?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.map_err(s)?;

    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("daemon_activation: 1 cold + {ROUNDS} rounds...");
    let cold = activate(&conn, &dbus, scanbind_ipc::BUS_NAME)
        .await
        .map_err(|e| format!("{e}\n{}", logs()))?;
    let mut f = Figures {
        cold,
        daemon: Samples::default(),
        floor: Samples::default(),
    };
    // One untimed floor activation: the bench binary's pages get cached.
    activate(&conn, &dbus, FLOOR_NAME).await?;
    for _ in 0..ROUNDS {
        f.floor.push(activate(&conn, &dbus, FLOOR_NAME).await?);
        f.daemon.push(
            activate(&conn, &dbus, scanbind_ipc::BUS_NAME)
                .await
                .map_err(|e| format!("{e}\n{}", logs()))?,
        );
    }
    world.sandbox.shutdown().await;
    Ok(f)
}

/// Activates `name` with a `GetStatus` call and times it; then stops the process that
/// owns the name and waits until it is gone.
async fn activate(
    conn: &zbus::Connection,
    dbus: &zbus::fdo::DBusProxy<'_>,
    name: &str,
) -> Result<Duration, String> {
    if dbus
        .name_has_owner(name.try_into().map_err(s)?)
        .await
        .map_err(s)?
    {
        return Err(format!("{name} is already owned"));
    }
    let mut changes = dbus
        .receive_name_owner_changed_with_args(&[(0, name)])
        .await
        .map_err(s)?;
    let t = Instant::now();
    let reply = conn
        .call_method(
            Some(name),
            scanbind_ipc::DAEMON_PATH,
            Some(scanbind_ipc::DAEMON_INTERFACE),
            "GetStatus",
            &(HashMap::<String, zvariant::Value<'_>>::new(),),
        )
        .await
        .map_err(|e| format!("GetStatus to {name}: {e}"))?;
    let elapsed = t.elapsed();
    let _: HashMap<String, zvariant::OwnedValue> = reply.body().deserialize().map_err(s)?;

    let pid = dbus
        .get_connection_unix_process_id(name.try_into().map_err(s)?)
        .await
        .map_err(s)?;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(s)?;
    if !status.success() {
        return Err(format!("kill -TERM {pid} failed"));
    }
    // The name is released when the process's connection closes...
    tokio::time::timeout(GUARD, async {
        while let Some(change) = changes.next().await {
            if change.args().is_ok_and(|a| a.new_owner().is_none()) {
                return Ok(());
            }
        }
        Err("NameOwnerChanged stream ended".to_owned())
    })
    .await
    .map_err(|_| format!("{name} was not released within the guard time"))??;
    // ...and the process itself is gone once dbus-daemon reaped it (nothing signals
    // that to us: look, bounded).
    let deadline = Instant::now() + GUARD;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            return Err(format!("process {pid} ({name}) did not exit"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(elapsed)
}

fn report(machine: &Machine, versions: &str, f: &Figures) -> String {
    let p50 = f.daemon.median();
    let verdict = if p50.as_secs_f64() <= 0.100 {
        "meets"
    } else {
        "misses"
    };
    [
        "## Daemon D-Bus activation to first reply".to_owned(),
        String::new(),
        format!(
            "Run: {}. Release build (`cargo bench`); {versions}. A private `dbus-daemon` with a `<servicedir>`; `scanbind-server` on SQLite as a process; the sandbox and the app run in the bench process. The machine is shared with other work (noisy).",
            machine.summary()
        ),
        format!(
            "One round = `Daemon1.GetStatus` to the unowned `io.scanbind.Daemon`, from the call to its reply (dbus-daemon starts the daemon through a wrapper passing `--address \"$DBUS_STARTER_ADDRESS\"`; the daemon opens its journal, reads its device key from gnome-keyring, registers with the server, restores bindings, opens its event stream, owns the name, answers); then SIGTERM and wait until it is gone. {ROUNDS} warm rounds (device key already in the keyring), interleaved with the floor: the same activation of a minimal tokio + zbus service (process start, bus connection, name request, one reply)."
        ),
        stack::reproduce("daemon_activation"),
        String::new(),
        "| measure | median | p90 | min–max |".to_owned(),
        "|---|---:|---:|---:|".to_owned(),
        median_row("**floor**: minimal zbus service activated", &f.floor),
        median_row("`scanbindd` activated (warm)", &f.daemon),
        format!("| `scanbindd` activated, first start of the run (cold: new device key) | {} | | |", ms(f.cold)),
        String::new(),
        format!(
            "Median warm activation: **{}** (target ≤ 100 ms: {verdict}; slowest warm round {}, cold start {}); {:.1}× the floor.",
            ms(p50),
            ms(f.daemon.max()),
            ms(f.cold),
            p50.as_secs_f64() / f.floor.median().as_secs_f64()
        ),
    ]
    .join("\n")
}
