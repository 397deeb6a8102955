//! The load generator's engine: `N` simulated devices, each with its own Ed25519 key,
//! registration, wallet user and binding, paying in a closed loop against one or more
//! `scanbind-server` replicas and the sandbox for a fixed time, each listening on its
//! own event stream. Loopback only, bounded in devices and time.
//!
//! Reported: payments per second, p50 / p99 / max latency of `POST /v1/payments`,
//! errors (non-2xx answers or a final state other than `succeeded`), and lost
//! notifications (a succeeded or pending payment whose `payment.result` event never
//! reached its device's stream).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

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

struct Shared {
    latencies: Mutex<Vec<Duration>>,
    errors: Mutex<Vec<String>>,
    succeeded: Mutex<Vec<(usize, String)>>,
    /// Payment id → final status, from the event streams.
    notified: Mutex<HashMap<String, String>>,
    /// Payments answered `pending` (final later, by event).
    pending: Mutex<Vec<(usize, String)>>,
}

/// Runs the plan against the world's sandbox and the given server replicas (device
/// `i` talks to replica `i % replicas`).
pub async fn run(
    world: &World,
    servers: &[ServerProc],
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
    for s in servers {
        if !s.base.starts_with("http://127.0.0.1:") {
            return Err(crate::Error::Process(format!("loopback only: {}", s.base)));
        }
    }
    let http = crate::http();
    let shared = Arc::new(Shared {
        latencies: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        succeeded: Mutex::new(Vec::new()),
        notified: Mutex::new(HashMap::new()),
        pending: Mutex::new(Vec::new()),
    });

    // Setup: register, open the event stream, bind (as its own wallet user), in
    // parallel batches.
    let setup = Instant::now();
    let mut devices = Vec::with_capacity(plan.devices);
    let mut streams = Vec::new();
    let batch = 50;
    for start in (0..plan.devices).step_by(batch) {
        let mut set = tokio::task::JoinSet::new();
        for i in start..(start + batch).min(plan.devices) {
            let device = Device {
                key: DeviceKey::generate()?,
                http: http.clone(),
                base: servers[i % servers.len()].base.clone(),
            };
            let sandbox = world.sandbox.base_url().to_owned();
            let http = http.clone();
            let shared = shared.clone();
            set.spawn(async move {
                let r: crate::Result<(Device, tokio::task::JoinHandle<()>, String, String)> = async {
                    device
                        .call("POST", "/v1/devices", Some(json!({"publicKey": device.key.public_key().to_base64(), "name": format!("load-{i}"), "model": "load"})))
                        .await?;
                    let resp = device.request("GET", "/v1/events", b"")?.send().await?;
                    if !resp.status().is_success() {
        return Err(crate::Error::Process(format!("events: {}", resp.status())));
    }
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
                    let stream = tokio::spawn(read_events(resp, move |v| {
                        let _ = tx.send(v);
                    }));
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
                                shared.notified.lock().await.insert(id.to_owned(), status);
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

    // The measured window: every device pays in a closed loop until the deadline.
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, device, binding, sealed) in devices {
        let (shared, stop) = (shared.clone(), stop.clone());
        set.spawn(async move {
            let mut n = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"appId": "org.example.Load", "appOrderId": format!("load-{i}-{n}"), "bindingId": binding,
                                  "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 100}, "description": "load"});
                let t = Instant::now();
                let r = device.call("POST", "/v1/payments", Some(body)).await;
                let took = t.elapsed();
                match r {
                    Ok(p) if p["status"] == "succeeded" => {
                        shared.latencies.lock().await.push(took);
                        let id = p["paymentId"].as_str().unwrap_or_default().to_owned();
                        shared.succeeded.lock().await.push((i, id));
                    }
                    Ok(p) if p["status"] == "pending" => {
                        // Accepted, final later (the AMS answer was slow): its result
                        // comes as an event; the answer's latency still counts.
                        shared.latencies.lock().await.push(took);
                        let id = p["paymentId"].as_str().unwrap_or_default().to_owned();
                        shared.pending.lock().await.push((i, id));
                    }
                    Ok(p) => shared.errors.lock().await.push(format!("device {i}: status {}", p["status"])),
                    Err(e) => shared.errors.lock().await.push(format!("device {i}: {e}")),
                }
            }
        });
    }
    tokio::time::sleep(plan.duration).await;
    stop.store(true, Ordering::Relaxed);
    while set.join_next().await.is_some() {}
    let seconds = began.elapsed().as_secs_f64();

    // Give the last events `drain` to arrive (bounded), then count what never did.
    let deadline = Instant::now() + plan.drain;
    let lost = loop {
        let succeeded = shared.succeeded.lock().await;
        let pending = shared.pending.lock().await;
        let notified = shared.notified.lock().await;
        let lost = succeeded
            .iter()
            .chain(pending.iter())
            .filter(|(_, id)| !notified.contains_key(id))
            .count() as u64;
        if lost == 0 || Instant::now() >= deadline {
            break lost;
        }
        drop((succeeded, pending, notified));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A pending answer that ended in anything but `succeeded` is an error.
    let (mut pending_succeeded, mut pending_other) = (0_u64, Vec::new());
    {
        let notified = shared.notified.lock().await;
        for (i, id) in shared.pending.lock().await.iter() {
            match notified.get(id).map(String::as_str) {
                Some("succeeded") => pending_succeeded += 1,
                Some(other) => pending_other.push(format!("device {i}: pending, then {other}")),
                None => {}
            }
        }
    }
    shared.errors.lock().await.extend(pending_other);
    for s in streams {
        s.abort();
    }

    let ledger: Value = http
        .get(format!("{}/sandbox/v1/ledger", world.sandbox.base_url()))
        .send()
        .await?
        .json()
        .await?;
    let double_charges = ledger["payments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["moneyMovements"].as_i64().unwrap_or(0) > 1)
                .count()
        })
        .unwrap_or(0) as u64;

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
    let succeeded = shared.succeeded.lock().await.len() as u64 + pending_succeeded;
    let answered_pending = shared.pending.lock().await.len() as u64;
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
        lost_notifications: lost,
        double_charges,
        setup_seconds,
        sample_errors: errors.into_iter().take(5).collect(),
    })
}
