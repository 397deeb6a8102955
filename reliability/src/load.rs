//! The load generator's engine: `N` simulated devices, each with its own Ed25519 key,
//! registration, wallet user and binding, paying in a closed loop against one or more
//! `scanbind-server` replicas and the sandbox for a fixed time, each listening on its
//! own event stream. Loopback only, bounded in devices and time.
//!
//! Reported: payments per second, p50 / p99 / max latency of `POST /v1/payments`,
//! errors (non-2xx answers or a final state other than `succeeded`), and lost
//! notifications (a succeeded or pending payment whose `payment.result` event never
//! reached its device's stream).
//!
//! Faults under load ([`FaultPlan`], issue 25 item 3): one replica killed in the middle
//! (its devices move to the others: a payment in flight is sent again with the same
//! order id, which the server's idempotency makes the same payment, and the event stream
//! reopens on another replica after the last sequence number seen, so no event is
//! missed), PostgreSQL killed and restarted in the middle, and the sandbox's
//! notifications dropped or delayed. Every fault is recorded when it fires, with proof
//! that it did (the replica's exit, the new postmaster pid, the consumed notification
//! faults). The report then adds: payments attempted, failed, results lost (a payment
//! whose final state never reached its device, by answer or event), events missed
//! (a payment's `payment.result` never on its device's stream), charged twice, and the
//! longest time a device waited for a result.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scanbind_device_api::DeviceKey;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::device::Device;
use crate::server::ServerProc;
use crate::world::World;

/// Upper bounds: the generator is for this machine's loopback, not a stress weapon.
pub const MAX_DEVICES: usize = 5000;
/// Longest run.
pub const MAX_SECONDS: u64 = 600;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Simulated devices.
    pub devices: usize,
    /// Measured time.
    pub duration: Duration,
    /// How long to wait after the end for the last events.
    pub drain: Duration,
    /// Faults injected during the measured window.
    pub faults: FaultPlan,
}

/// Faults injected during the measured window (none by default).
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Kill (SIGKILL) the last replica this far into the window; needs 2 replicas or more.
    pub kill_replica_at: Option<Duration>,
    /// Kill PostgreSQL (every process, `kill -9`) and start it again (crash recovery)
    /// this far into the window; needs `--postgres`.
    pub restart_postgres_at: Option<Duration>,
    /// Arm this many dropped, then this many delayed (by [`NOTIFY_DELAY_MS`]) sandbox
    /// notifications at the start of the window.
    pub notifications: u32,
}

impl FaultPlan {
    /// Whether any fault is planned.
    pub fn any(&self) -> bool {
        self.kill_replica_at.is_some()
            || self.restart_postgres_at.is_some()
            || self.notifications > 0
    }
}

/// How late a delayed notification is sent, real milliseconds.
pub const NOTIFY_DELAY_MS: u64 = 1500;
/// How long a device keeps retrying one payment (transport errors, 5xx) before it gives
/// up on it (then counted in `results_lost`).
pub const PAYMENT_GIVE_UP: Duration = Duration::from_secs(150);
/// Pause between two tries of the same request, or two reconnects of an event stream.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What came out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    /// Devices.
    pub devices: usize,
    /// Server replicas.
    pub replicas: usize,
    /// Database (`sqlite` / `postgres`).
    pub database: String,
    /// Measured seconds.
    pub seconds: f64,
    /// Payments that succeeded (answered `succeeded`, or `pending` then `succeeded`).
    pub succeeded: u64,
    /// Errors: transport errors, non-2xx answers, other final states.
    pub errors: u64,
    /// Payments per second (succeeded / seconds).
    pub throughput: f64,
    /// Latency percentiles of `POST /v1/payments`, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Payments first answered `pending` (slow AMS answer), final later by event; the
    /// ones that then succeeded are in `succeeded`.
    pub answered_pending: u64,
    /// Succeeded or pending payments whose `payment.result` never arrived on the device's stream.
    pub lost_notifications: u64,
    /// Wallet ledger: payments that moved money more than once (must be 0).
    pub double_charges: u64,
    /// Seconds spent registering and binding every device (not measured above).
    pub setup_seconds: f64,
    /// The first few error messages.
    pub sample_errors: Vec<String>,
    /// Payments the devices started (distinct order ids).
    pub attempted: u64,
    /// Payments that ended in another final state than `succeeded`, or were refused.
    pub failed: u64,
    /// Payments whose final state never reached the device (no final answer, no final
    /// event, by the end of the drain; or given up after [`PAYMENT_GIVE_UP`]).
    pub results_lost: u64,
    /// Payments known to the device (answered) whose `payment.result` event never came
    /// on its stream.
    pub events_missed: u64,
    /// Wallet payments that moved money and that the device does not count as succeeded
    /// (money taken for a sale the app never heard of; must be 0).
    pub charged_not_succeeded: u64,
    /// The longest time from a device's first `POST /v1/payments` of a payment to its
    /// final result (answer or event), milliseconds.
    pub longest_wait_ms: f64,
    /// Same-request retries after a transport error or a 5xx answer.
    pub retries: u64,
    /// Event-stream reconnects.
    pub reconnects: u64,
    /// The faults that fired, each with its time into the window and its proof.
    pub faults_fired: Vec<String>,
    /// Seconds from the end of the window until every answered payment's event had
    /// arrived (or the drain ended).
    pub drain_seconds: f64,
}

/// Reads SSE blocks from a response; calls `f` with each event's JSON.
pub async fn read_events(mut resp: reqwest::Response, mut f: impl FnMut(Value)) {
    let mut buf = String::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n");
            if let Ok(v) = serde_json::from_str::<Value>(&data) {
                f(v);
            }
        }
    }
}

/// How one payment ended, as its device knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The answer was final: `succeeded` (true) or another final state (false).
    Final(bool),
    /// Answered `pending`: final later, by event.
    Pending,
    /// Refused (4xx) before it existed.
    Refused,
    /// No answer after [`PAYMENT_GIVE_UP`] of retries.
    GaveUp,
}

/// One payment a device started.
struct Started {
    device: usize,
    payment_id: Option<String>,
    outcome: Outcome,
    began: Instant,
    /// When the answer came.
    answered: Instant,
}

#[derive(Default)]
struct Shared {
    latencies: Mutex<Vec<Duration>>,
    errors: Mutex<Vec<String>>,
    started: Mutex<Vec<Started>>,
    /// Payment id → (final status, when the event arrived), from the event streams.
    notified: Mutex<HashMap<String, (String, Instant)>>,
    retries: AtomicU64,
    reconnects: AtomicU64,
}

/// A device's event stream that survives its server: when the stream ends or cannot be
/// opened, it is opened again (on the next replica) after the last sequence number seen
/// (`Last-Event-ID`, 0 before any event: a new device's stream reads from the start),
/// so no event is missed. Every event goes to `tx`.
async fn follow_events(
    device: Arc<Device>,
    bases: Arc<Vec<String>>,
    home: usize,
    tx: tokio::sync::mpsc::UnboundedSender<Value>,
    shared: Arc<Shared>,
) {
    // A new device has no events yet: read from the start, so that an event raised
    // before this stream's first request reached the server (its binding's
    // `binding.completed`, on a loaded machine) is not skipped as "old".
    let mut last: i64 = 0;
    let mut cur = home;
    let mut first = true;
    loop {
        if !first {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        first = false;
        let Ok(rb) = device.request_to(&bases[cur], "GET", "/v1/events", b"") else {
            return;
        };
        match rb.header("last-event-id", last.to_string()).send().await {
            Ok(resp) if resp.status().is_success() => {
                read_events(resp, |v| {
                    if let Some(seq) = v["seq"].as_i64() {
                        last = last.max(seq);
                    }
                    let _ = tx.send(v);
                })
                .await;
                if tx.is_closed() {
                    return;
                }
            }
            _ => {}
        }
        // The stream ended or did not open: the replica may be gone; try the next one.
        cur = (cur + 1) % bases.len();
    }
}

/// Pays one payment: the same request again after a transport error or a 5xx answer
/// (on the next replica after a transport error), until an answer or
/// [`PAYMENT_GIVE_UP`].
async fn pay_one(
    device: &Device,
    bases: &[String],
    cur: &mut usize,
    body: &[u8],
    shared: &Shared,
) -> (Outcome, Option<String>, Option<String>) {
    let began = Instant::now();
    loop {
        match device
            .send_to(&bases[*cur], "POST", "/v1/payments", body)
            .await
        {
            Ok((status, p)) if (200..300).contains(&status) => {
                let id = p["paymentId"].as_str().map(str::to_owned);
                return match p["status"].as_str() {
                    Some("succeeded") => (Outcome::Final(true), id, None),
                    Some("pending") => (Outcome::Pending, id, None),
                    other => (
                        Outcome::Final(false),
                        id,
                        Some(format!("final state {other:?}")),
                    ),
                };
            }
            Ok((status, v)) if status >= 500 || status == 429 => {
                if began.elapsed() >= PAYMENT_GIVE_UP {
                    return (Outcome::GaveUp, None, Some(format!("HTTP {status}: {v}")));
                }
            }
            Ok((status, v)) => {
                return (Outcome::Refused, None, Some(format!("HTTP {status}: {v}")));
            }
            Err(e) => {
                if began.elapsed() >= PAYMENT_GIVE_UP {
                    return (Outcome::GaveUp, None, Some(e.to_string()));
                }
                *cur = (*cur + 1) % bases.len();
            }
        }
        shared.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Fires one planned fault; returns its proof.
async fn fire(world: &World, servers: &mut [ServerProc], fault: &str) -> crate::Result<String> {
    match fault {
        "kill-replica" => {
            let last = servers.len() - 1;
            let server = &mut servers[last];
            let pid = server.pid();
            server.kill();
            let gone = server.has_exited();
            if !gone {
                return Err(crate::Error::Process(format!(
                    "replica {last} (pid {pid}) still running after the kill"
                )));
            }
            Ok(format!(
                "killed replica {last} ({}, pid {pid}): exited",
                server.base
            ))
        }
        "restart-postgres" => {
            let pg = world.pg.as_ref().ok_or_else(|| {
                crate::Error::Process("restarting PostgreSQL needs --postgres".into())
            })?;
            let before = pg.postmaster_pid();
            tokio::task::block_in_place(|| {
                pg.kill_9()?;
                pg.restart()
            })
            .map_err(|e| crate::Error::Process(format!("restarting PostgreSQL: {e}")))?;
            let after = pg.postmaster_pid();
            if before.is_none() || before == after {
                return Err(crate::Error::Process(format!(
                    "PostgreSQL's postmaster did not change ({before:?} → {after:?})"
                )));
            }
            Ok(format!(
                "killed PostgreSQL (postmaster {}) and started it again (postmaster {})",
                before.unwrap_or_default(),
                after.unwrap_or_default()
            ))
        }
        other => Err(crate::Error::Process(format!("unknown fault {other}"))),
    }
}

/// Runs the plan against the world's sandbox and the given server replicas (device
/// `i` talks to replica `i % replicas`, and moves to the next one when its replica does
/// not answer).
pub async fn run(
    world: &World,
    servers: &mut [ServerProc],
    plan: &LoadPlan,
    database: &str,
) -> crate::Result<LoadReport> {
    if !(1..=MAX_DEVICES).contains(&plan.devices) {
        return Err(crate::Error::Process(format!(
            "devices must be 1..={MAX_DEVICES}"
        )));
    }
    if plan.duration.as_secs() > MAX_SECONDS {
        return Err(crate::Error::Process(format!("at most {MAX_SECONDS} s")));
    }
    if servers.is_empty() {
        return Err(crate::Error::Process("no server".into()));
    }
    if plan.faults.kill_replica_at.is_some() && servers.len() < 2 {
        return Err(crate::Error::Process(
            "killing a replica needs 2 replicas or more".into(),
        ));
    }
    if plan.faults.restart_postgres_at.is_some() && world.pg.is_none() {
        return Err(crate::Error::Process(
            "restarting PostgreSQL needs --postgres".into(),
        ));
    }
    for s in servers.iter() {
        if !s.base.starts_with("http://127.0.0.1:") {
            return Err(crate::Error::Process(format!("loopback only: {}", s.base)));
        }
    }
    let http = crate::http();
    let shared = Arc::new(Shared::default());
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let sandbox = world.sandbox.base_url().to_owned();

    // Setup: register, open the event stream, bind (as its own wallet user), in
    // parallel batches.
    let setup = Instant::now();
    let mut devices = Vec::with_capacity(plan.devices);
    let mut streams = Vec::new();
    let batch = 50;
    for start in (0..plan.devices).step_by(batch) {
        let mut set = tokio::task::JoinSet::new();
        for i in start..(start + batch).min(plan.devices) {
            let home = i % bases.len();
            let device = Arc::new(Device {
                key: DeviceKey::generate()?,
                http: http.clone(),
                base: bases[home].clone(),
            });
            let (sandbox, http, shared, bases) =
                (sandbox.clone(), http.clone(), shared.clone(), bases.clone());
            set.spawn(async move {
                let r: crate::Result<_> = async {
                    device
                        .call("POST", "/v1/devices", Some(json!({"publicKey": device.key.public_key().to_base64(), "name": format!("load-{i}"), "model": "load"})))
                        .await?;
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
                    let stream = tokio::spawn(follow_events(
                        device.clone(),
                        bases,
                        home,
                        tx,
                        shared.clone(),
                    ));
                    let user = format!("load_user_{i}");
                    let r = http
                        .post(format!("{sandbox}/sandbox/v1/users"))
                        .json(&json!({"user": user, "wallet": "ALIPAY_HK"}))
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        return Err(crate::Error::Process(format!("create user: {}", r.status())));
                    }
                    let start = device.call("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"}))).await?;
                    let binding = start["bindingId"].as_str().unwrap_or_default().to_owned();
                    let r = http
                        .post(format!("{sandbox}/sandbox/v1/scan"))
                        .json(&json!({"codeValue": start["codeValue"], "decision": "approve", "user": user}))
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        return Err(crate::Error::Process(format!("scan: {}", r.status())));
                    }
                    let sealed = tokio::time::timeout(Duration::from_secs(120), async {
                        while let Some(ev) = rx.recv().await {
                            if ev["type"] == "binding.completed" && ev["data"]["bindingId"] == binding.as_str() {
                                return ev["data"]["sealedTokens"].as_str().map(str::to_owned);
                            }
                        }
                        None
                    })
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(|| crate::Error::Process(format!("device {i}: no binding.completed")))?;
                    // From now on, count payment results.
                    let counter = tokio::spawn(async move {
                        while let Some(ev) = rx.recv().await {
                            if ev["type"] == "payment.result"
                                && let Some(id) = ev["data"]["paymentId"].as_str()
                            {
                                let status = ev["data"]["status"].as_str().unwrap_or("").to_owned();
                                shared
                                    .notified
                                    .lock()
                                    .await
                                    .entry(id.to_owned())
                                    .or_insert((status, Instant::now()));
                            }
                        }
                    });
                    drop(counter);
                    Ok((device, stream, binding, sealed))
                }
                .await;
                (i, r)
            });
        }
        while let Some(joined) = set.join_next().await {
            let (i, r) = joined.map_err(|e| crate::Error::Process(format!("a setup task: {e}")))?;
            let (device, stream, binding, sealed) =
                r.map_err(|e| crate::Error::Process(format!("setting up device {i}: {e}")))?;
            streams.push(stream);
            devices.push((i, device, binding, sealed));
        }
    }
    let setup_seconds = setup.elapsed().as_secs_f64();

    // Notification faults are armed for the whole window.
    let mut faults_fired = Vec::new();
    let notify_faults = plan.faults.notifications;
    if notify_faults > 0 {
        for fault in [
            json!({"endpoint": "notifications", "kind": "drop", "count": notify_faults}),
            json!({"endpoint": "notifications", "kind": "delay", "ms": NOTIFY_DELAY_MS, "count": notify_faults}),
        ] {
            let r = http
                .post(format!("{sandbox}/sandbox/v1/faults"))
                .json(&fault)
                .send()
                .await?;
            if !r.status().is_success() {
                return Err(crate::Error::Process(format!(
                    "arming {fault}: {}",
                    r.status()
                )));
            }
        }
    }

    // The measured window: every device pays in a closed loop until the deadline.
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, device, binding, sealed) in devices {
        let (shared, stop, bases) = (shared.clone(), stop.clone(), bases.clone());
        set.spawn(async move {
            let mut n = 0_u64;
            let mut cur = i % bases.len();
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"appId": "org.example.Load", "appOrderId": format!("load-{i}-{n}"), "bindingId": binding,
                                  "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 100}, "description": "load"});
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                let t = Instant::now();
                let (outcome, payment_id, error) =
                    pay_one(&device, &bases, &mut cur, &bytes, &shared).await;
                let took = t.elapsed();
                if matches!(outcome, Outcome::Final(_) | Outcome::Pending) {
                    shared.latencies.lock().await.push(took);
                }
                if let Some(e) = error {
                    shared.errors.lock().await.push(format!("device {i}: {e}"));
                }
                shared.started.lock().await.push(Started {
                    device: i,
                    payment_id,
                    outcome,
                    began: t,
                    answered: Instant::now(),
                });
            }
        });
    }
    let mut schedule: Vec<(Duration, &str)> = Vec::new();
    if let Some(at) = plan.faults.kill_replica_at {
        schedule.push((at, "kill-replica"));
    }
    if let Some(at) = plan.faults.restart_postgres_at {
        schedule.push((at, "restart-postgres"));
    }
    schedule.sort();
    for (at, fault) in schedule {
        if at < plan.duration {
            tokio::time::sleep_until(tokio::time::Instant::from_std(began + at)).await;
            let proof = fire(world, servers, fault).await?;
            faults_fired.push(format!("{:.1} s: {proof}", began.elapsed().as_secs_f64()));
        }
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(began + plan.duration)).await;
    stop.store(true, Ordering::Relaxed);
    while set.join_next().await.is_some() {}
    let seconds = began.elapsed().as_secs_f64();

    // Give the last events `drain` to arrive (bounded), then count what never did.
    let drain_began = Instant::now();
    let deadline = drain_began + plan.drain;
    loop {
        let started = shared.started.lock().await;
        let notified = shared.notified.lock().await;
        let waiting = started
            .iter()
            .filter_map(|s| s.payment_id.as_ref())
            .filter(|id| !notified.contains_key(*id))
            .count();
        if waiting == 0 || Instant::now() >= deadline {
            break;
        }
        drop((started, notified));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_seconds = drain_began.elapsed().as_secs_f64();
    for s in streams {
        s.abort();
    }

    // What each payment came to.
    let (mut succeeded, mut failed, mut lost, mut missed, mut answered_pending) =
        (0_u64, 0_u64, 0_u64, 0_u64, 0_u64);
    let mut longest = Duration::ZERO;
    let mut pending_other = Vec::new();
    let mut succeeded_ids = std::collections::HashSet::new();
    {
        let started = shared.started.lock().await;
        let notified = shared.notified.lock().await;
        for s in started.iter() {
            let event = s.payment_id.as_ref().and_then(|id| notified.get(id));
            if s.payment_id.is_some() && event.is_none() {
                missed += 1;
            }
            let result_at = match &s.outcome {
                Outcome::Final(ok) => {
                    if *ok {
                        succeeded += 1;
                        succeeded_ids.extend(s.payment_id.clone());
                    } else {
                        failed += 1;
                    }
                    Some(s.answered)
                }
                Outcome::Pending => {
                    answered_pending += 1;
                    match event {
                        Some((status, at)) => {
                            if status == "succeeded" {
                                succeeded += 1;
                                succeeded_ids.extend(s.payment_id.clone());
                            } else {
                                failed += 1;
                                pending_other
                                    .push(format!("device {}: pending, then {status}", s.device));
                            }
                            Some(*at)
                        }
                        None => {
                            lost += 1;
                            None
                        }
                    }
                }
                Outcome::Refused => {
                    failed += 1;
                    Some(s.answered)
                }
                Outcome::GaveUp => {
                    lost += 1;
                    None
                }
            };
            if let Some(at) = result_at {
                longest = longest.max(at.saturating_duration_since(s.began));
            }
        }
    }
    shared.errors.lock().await.extend(pending_other);
    let attempted = shared.started.lock().await.len() as u64;

    let ledger: Value = http
        .get(format!("{sandbox}/sandbox/v1/ledger"))
        .send()
        .await?
        .json()
        .await?;
    let payments = ledger["payments"].as_array().cloned().unwrap_or_default();
    let double_charges = payments
        .iter()
        .filter(|p| p["moneyMovements"].as_i64().unwrap_or(0) > 1)
        .count() as u64;
    // Money taken for payments the devices do not count as succeeded. The ledger names
    // AMS payments, the devices server payments: compare counts (every charged payment
    // is one server payment, by the deterministic paymentRequestId).
    let charged = payments
        .iter()
        .filter(|p| {
            p["moneyMovements"].as_i64().unwrap_or(0) >= 1
                && p["productCode"] == "AGREEMENT_PAYMENT"
        })
        .count() as u64;
    let charged_not_succeeded = charged.saturating_sub(succeeded_ids.len() as u64);

    if notify_faults > 0 {
        let left: Value = http
            .get(format!("{sandbox}/sandbox/v1/faults"))
            .send()
            .await?
            .json()
            .await?;
        let unfired = left["notifications"].as_array().map_or(0, Vec::len);
        let log: Value = http
            .get(format!("{sandbox}/sandbox/v1/notifications"))
            .send()
            .await?
            .json()
            .await?;
        let dropped = log["notifications"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|n| n["status"] == "dropped").count());
        faults_fired.push(format!(
            "notifications: {dropped} dropped, {notify_faults} armed to be delayed {NOTIFY_DELAY_MS} ms; {unfired} armed notification faults left unfired"
        ));
    }

    let mut lat = shared.latencies.lock().await.clone();
    lat.sort();
    let pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let idx = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[idx].as_secs_f64() * 1000.0
    };
    let errors = shared.errors.lock().await.clone();
    Ok(LoadReport {
        devices: plan.devices,
        replicas: servers.len(),
        database: database.to_owned(),
        seconds,
        succeeded,
        errors: errors.len() as u64,
        throughput: succeeded as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
        answered_pending,
        lost_notifications: missed,
        double_charges,
        setup_seconds,
        sample_errors: errors.into_iter().take(5).collect(),
        attempted,
        failed,
        results_lost: lost,
        events_missed: missed,
        charged_not_succeeded,
        longest_wait_ms: longest.as_secs_f64() * 1000.0,
        retries: shared.retries.load(Ordering::Relaxed),
        reconnects: shared.reconnects.load(Ordering::Relaxed),
        faults_fired,
        drain_seconds,
    })
}
