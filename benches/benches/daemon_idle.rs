//! The daemon's idle footprint: resident memory and wake-ups per second. See
//! benches/README.md.
//!
//! `cargo bench -p scanbind-benches --bench daemon_idle [-- --write-docs]` inside the
//! D-Bus session with a Secret Service that `scripts/bench` starts.
//!
//! - The daemon runs as it does on a device: on a private bus, bound to one wallet (so
//!   its event stream to the server is open and one token-refresh timer is armed), after
//!   one payment. Then nobody calls it.
//! - After a settling pause (`SCANBIND_BENCH_IDLE_SETTLE_SECS`, default 15 s: longer
//!   than tokio's 10 s keep-alive of idle blocking threads), the context switches of
//!   every thread (`voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches` in
//!   `/proc/<pid>/task/<tid>/status`) are read, again after the idle window
//!   (`SCANBIND_BENCH_IDLE_SECS`, default 60 s; the recorded figure uses the default),
//!   and the difference per second is the wake-up rate: a thread that sleeps and is
//!   woken switches out once per wake-up. RSS is `VmRSS` of `/proc/<pid>/status` at the
//!   end of the window.

mod stack;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use scanbind_benches::Machine;
use stack::{PrivateBus, s, spawn_daemon};

const SECTION: &str = "daemon-idle";

fn main() -> ExitCode {
    stack::bench_main("daemon_idle", run)
}

fn secs_from_env(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number of seconds")),
        Err(_) => Ok(default),
    }
}

/// One thread's context switches.
#[derive(Debug, Clone)]
struct ThreadCount {
    name: String,
    switches: u64,
}

/// Every thread of `pid`: tid → (name, voluntary + nonvoluntary switches).
fn thread_counts(pid: u32) -> Result<BTreeMap<u32, ThreadCount>, String> {
    let mut out = BTreeMap::new();
    let dir = format!("/proc/{pid}/task");
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let entry = entry.map_err(s)?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread may end between the listing and the read: skip it.
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let name = status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        out.insert(
            tid,
            ThreadCount {
                name,
                switches: field("voluntary_ctxt_switches:") + field("nonvoluntary_ctxt_switches:"),
            },
        );
    }
    Ok(out)
}

/// A `kB` field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(s)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {key} in /proc/{pid}/status"))
}

/// Resident KiB per mapped object (`/proc/<pid>/smaps`), largest first.
fn rss_by_mapping(pid: u32) -> Result<Vec<(String, u64)>, String> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).map_err(s)?;
    let mut by: HashMap<String, u64> = HashMap::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_header = fields.len() >= 5
            && fields[0].contains('-')
            && fields[1].len() == 4
            && !fields[0].ends_with(':');
        if is_header {
            current = if fields.len() > 5 {
                fields[5..].join(" ")
            } else {
                "[anonymous]".to_owned()
            };
        } else if let Some(v) = line.strip_prefix("Rss:") {
            let kib: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            *by.entry(current.clone()).or_default() += kib;
        }
    }
    let mut out: Vec<(String, u64)> = by.into_iter().filter(|(_, k)| *k > 0).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

struct Figures {
    mappings: Vec<(String, u64)>,
    window: Duration,
    settle: u64,
    rss_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    hwm_kib: u64,
    threads: usize,
    /// Per thread name: switches in the window and how many threads carry that name.
    per_name: BTreeMap<String, (u64, usize)>,
    total: u64,
    /// Threads that ended during the window (their switches are not counted).
    ended: usize,
}

fn run() -> Result<(), String> {
    stack::require_secret_service("daemon_idle")?;
    let window = secs_from_env("SCANBIND_BENCH_IDLE_SECS", 60)?;
    let settle = secs_from_env("SCANBIND_BENCH_IDLE_SETTLE_SECS", 15)?;
    let stack::Prepared { bins, versions, rt } = stack::prepare("daemon_idle")?;
    let figures = rt.block_on(measure(&bins, window, settle))?;
    stack::publish(
        "daemon_idle",
        SECTION,
        &report(&Machine::current(), &versions, &figures),
    )
}

async fn measure(bins: &std::path::Path, window: u64, settle: u64) -> Result<Figures, String> {
    let world = stack::world(bins).await?;
    let server = stack::spawn_server(&world)?;
    let bus = PrivateBus::without_services().map_err(s)?;
    let state = tempfile::tempdir().map_err(s)?;
    let daemon = spawn_daemon(bins, bus.address(), &server.base, state.path())?;
    let pid = daemon.pid();
    {
        let conn = bus.connect().await.map_err(s)?;
        let d = stack::daemon_proxy(&conn).await?;
        stack::bind_daemon(&world, &conn, &d).await?;
        let path = d
            .pay("idle-1", 100, "HKD", "bench", HashMap::new())
            .await
            .map_err(s)?;
        // Wait for the payment to settle (observing from outside: the journal is
        // the daemon's, its state property the app's view).
        let payment = scanbind_ipc::Payment1Proxy::builder(&conn)
            .path(path)
            .map_err(s)?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(s)?;
        let deadline = Instant::now() + stack::GUARD;
        while payment.state().await.map_err(s)? != "succeeded" {
            if Instant::now() > deadline {
                return Err(format!("the payment did not settle: {}", daemon.logs()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The app disconnects.
    }
    eprintln!("daemon_idle: settling {settle} s, then measuring {window} s of idle...");
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let before = thread_counts(pid)?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(window)).await;
    let after = thread_counts(pid)?;
    let elapsed = started.elapsed();
    let rss_kib = status_kib(pid, "VmRSS:")?;
    let anon_kib = status_kib(pid, "RssAnon:")?;
    let file_kib = status_kib(pid, "RssFile:")?;
    let hwm_kib = status_kib(pid, "VmHWM:")?;
    let mappings = rss_by_mapping(pid)?;

    let mut per_name: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    let mut total = 0;
    for (tid, now) in &after {
        let was = before.get(tid).map_or(0, |b| b.switches);
        let delta = now.switches.saturating_sub(was);
        total += delta;
        let e = per_name.entry(now.name.clone()).or_default();
        e.0 += delta;
        e.1 += 1;
    }
    let ended = before.keys().filter(|t| !after.contains_key(t)).count();
    drop(daemon);
    world.sandbox.shutdown().await;
    Ok(Figures {
        mappings,
        window: elapsed,
        settle,
        rss_kib,
        anon_kib,
        file_kib,
        hwm_kib,
        threads: after.len(),
        per_name,
        total,
        ended,
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn report(machine: &Machine, versions: &str, f: &Figures) -> String {
    let secs = f.window.as_secs_f64();
    let rate = f.total as f64 / secs;
    let rss_ok = f.rss_kib <= 10 * 1024;
    let verdict = |ok: bool| if ok { "meets" } else { "misses" };
    let mut lines = vec![
        "## Daemon idle footprint".to_owned(),
        String::new(),
        format!(
            "Run: {}. Release build; {versions}. The daemon runs on a private bus with its vault in gnome-keyring, bound to one wallet (event stream to the server open, one token-refresh timer armed) after one payment; the app has disconnected. The machine is shared with other work (noisy).",
            machine.summary()
        ),
        format!(
            "After {} s of settling, context switches of every thread of the process (`voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches` in `/proc/<pid>/task/*/status`) over a {secs:.1} s idle window{}; RSS from `/proc/<pid>/status` at its end.",
            f.settle,
            if f.window < Duration::from_secs(59) {
                " (**shortened with SCANBIND_BENCH_IDLE_SECS: not the recorded figure**)"
            } else {
                ""
            }
        ),
        stack::reproduce("daemon_idle"),
        String::new(),
        "| measure | value | target |".to_owned(),
        "|---|---:|---|".to_owned(),
        format!(
            "| RSS (`VmRSS`) | {} | ≤ 10 MiB: {} |",
            mib(f.rss_kib),
            verdict(rss_ok)
        ),
        format!(
            "| of which anonymous / file-backed | {} / {} | |",
            mib(f.anon_kib),
            mib(f.file_kib)
        ),
        format!("| peak RSS (`VmHWM`) | {} | |", mib(f.hwm_kib)),
        format!(
            "| wake-ups (context switches) per second | {rate:.2} ({} in {secs:.0} s) | 0: {} |",
            f.total,
            verdict(f.total == 0)
        ),
        format!(
            "| threads | {}{} | |",
            f.threads,
            if f.ended > 0 {
                format!(" ({} ended during the window, not counted)", f.ended)
            } else {
                String::new()
            }
        ),
        String::new(),
        "Context switches in the window by thread name:".to_owned(),
        String::new(),
        "| thread | threads | switches |".to_owned(),
        "|---|---:|---:|".to_owned(),
    ];
    for (name, (switches, n)) in &f.per_name {
        lines.push(format!("| `{name}` | {n} | {switches} |"));
    }
    lines.extend([
        String::new(),
        "Resident memory by mapping (`/proc/<pid>/smaps`, largest 8):".to_owned(),
        String::new(),
        "| mapping | RSS |".to_owned(),
        "|---|---:|".to_owned(),
    ]);
    for (name, kib) in f.mappings.iter().take(8) {
        // Temporary and target paths differ per run and machine: keep the file name.
        let short = if name.starts_with('/') {
            Path::new(name)
                .file_name()
                .map_or(name.clone(), |n| n.to_string_lossy().into_owned())
        } else {
            name.clone()
        };
        lines.push(format!("| `{short}` | {} |", mib(*kib)));
    }
    lines.join("\n")
}
