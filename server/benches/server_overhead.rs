//! Server overhead and throughput, measured as ratios against floors on the same machine
//! (DESIGN.md §7):
//!
//! (a) added latency per payment: the median (and the 99th percentile) of a device's
//!     signed `POST /v1/payments` through `scanbind-server` (a real process) divided by
//!     the same percentile of a direct signed AMS `pay` to the same sandbox with the
//!     same access token;
//! (b) payments per second through server + sandbox with 32 payments in flight, against
//!     the RSA-2048 floor: signatures/s on 2 threads ÷ 3 signatures per payment
//!     (server request, sandbox response, sandbox notification).
//!
//! Both on SQLite, and on PostgreSQL when `PG_BIN_DIR` (or `SCANBIND_TEST_DATABASE_URL`)
//! is set. `cargo bench -p scanbind-server --bench server_overhead` prints a Markdown
//! section.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use scanbind_ams::PrivateKey;
use scanbind_ams::client::Client;
use scanbind_ams::model::{Order, PayRequest};
use scanbind_ams::wallet::Wallet;
use scanbind_device_api::types::Event;
use serde_json::json;

const SEQUENTIAL: usize = 200;
const CONCURRENT_TOTAL: usize = 1000;
const IN_FLIGHT: usize = 32;

/// `SCANBIND_BENCH_COUNTS=sequential,concurrent` overrides the two counts (for profiling
/// runs under `SCANBIND_BENCH_WRAP`, where the difference between two counts gives the
/// instructions per payment).
fn counts() -> (usize, usize) {
    std::env::var("SCANBIND_BENCH_COUNTS")
        .ok()
        .and_then(|v| {
            let (a, b) = v.split_once(',')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .unwrap_or((SEQUENTIAL, CONCURRENT_TOTAL))
}

/// The `q`-th percentile (nearest rank) of the samples; `q = 50.0` is the median.
fn percentile(v: &[Duration], q: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let rank = ((q / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn rsa_floor_per_second() -> f64 {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ams/tests/fixtures/vector_private_pkcs8.pem"
    ))
    .unwrap();
    let key = Arc::new(PrivateKey::from_text(&pem).unwrap());
    let per_thread = 400;
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let key = key.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    std::hint::black_box(key.sign(format!("content {i}").as_bytes()).unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (2 * per_thread) as f64 / started.elapsed().as_secs_f64()
}

struct Figures {
    backend: &'static str,
    direct: Duration,
    server: Duration,
    direct_p99: Duration,
    server_p99: Duration,
    per_second: f64,
}

async fn run(backend: Backend) -> Figures {
    let world = world(backend).await;
    // SCANBIND_BENCH_LOG (e.g. `warn,sqlx::query=debug` to count statements) overrides
    // the server's log filter.
    let log = std::env::var("SCANBIND_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let server = world.spawn_server(&[("SCANBIND_LOG", log.as_str())]);
    let device = Device::new(&server.base);
    device.register().await;
    let mut events = device.events(None).await;
    let start = device
        .ok("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
        .await;
    world
        .scan(start["codeValue"].as_str().unwrap(), "approve")
        .await;
    let Event::BindingCompleted(b) = events.next().await.event else {
        panic!("no binding")
    };
    let sealed = b.sealed_tokens.unwrap();
    // The same access token, for the direct calls (the bench knows the sealing key).
    let sealer = scanbind_server::seal::Sealer::new(&[[42_u8; 32]]).unwrap();
    let token = sealer
        .open(&device.key.device_id(), &b.binding_id, &sealed)
        .unwrap()
        .access_token;
    let merchant = PrivateKey::from_text(
        &std::fs::read_to_string(world.dir.path().join("merchant.pem")).unwrap(),
    )
    .unwrap();
    let direct = Client::builder(
        CLIENT_ID,
        Arc::new(merchant),
        world.sandbox.public_key().clone(),
    )
    .base_url(world.sandbox.base_url())
    .build()
    .unwrap();
    let amount = scanbind_ams::Amount {
        currency: "HKD".into(),
        value: "1".into(),
    };
    let mut direct_times = Vec::new();
    let mut server_times = Vec::new();
    let (sequential, concurrent_total) = counts();
    for i in 0..sequential {
        let req = PayRequest::agreement(
            format!("direct-{i}"),
            Order::new(format!("d{i}"), "bench", amount.clone()),
            amount.clone(),
            Wallet::AlipayHk,
            token.clone(),
        );
        let t = Instant::now();
        let resp = direct.call(&req).await.unwrap();
        direct_times.push(t.elapsed());
        assert!(resp.result.is_success());
        let body = json!({"appId": "bench", "appOrderId": format!("s{i}"), "bindingId": b.binding_id, "sealedTokens": sealed,
                          "amount": {"currency": "HKD", "value": 1}, "description": "bench"});
        let t = Instant::now();
        let p = device.ok("POST", "/v1/payments", Some(body)).await;
        server_times.push(t.elapsed());
        assert_eq!(p["status"], "succeeded");
    }
    let device = Arc::new(device);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = server.cpu_ticks();
    let started = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (device, next, sealed, binding) = (device.clone(), next.clone(), sealed.clone(), b.binding_id.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= concurrent_total {
                        break;
                    }
                    let body = json!({"appId": "bench", "appOrderId": format!("c{i}"), "bindingId": binding, "sealedTokens": sealed,
                                      "amount": {"currency": "HKD", "value": 1}, "description": "bench"});
                    let p = device.ok("POST", "/v1/payments", Some(body)).await;
                    assert_eq!(p["status"], "succeeded");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let per_second = concurrent_total as f64 / started.elapsed().as_secs_f64();
    // Clock ticks are 10 ms on Linux (USER_HZ = 100).
    let cpu_ms = (server.cpu_ticks() - cpu_before) as f64 * 10.0 / concurrent_total.max(1) as f64;
    eprintln!("server CPU per payment (concurrent phase): {cpu_ms:.3} ms");
    let mut server = server;
    if std::env::var_os("SCANBIND_BENCH_WRAP").is_some() {
        // A graceful stop waits for open connections: close the event stream first.
        drop(events);
        server.terminate();
    }
    if let Ok(keep) = std::env::var("SCANBIND_BENCH_KEEP_LOG") {
        let name = if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "pg"
        };
        std::fs::write(format!("{keep}-{name}.log"), server.logs()).unwrap();
    }
    Figures {
        backend: if backend == Backend::Sqlite {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        direct: percentile(&direct_times, 50.0),
        server: percentile(&server_times, 50.0),
        direct_p99: percentile(&direct_times, 99.0),
        server_p99: percentile(&server_times, 99.0),
        per_second,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let floor_signs = rsa_floor_per_second();
    let floor = floor_signs / 3.0;
    let mut figures = vec![rt.block_on(run(Backend::Sqlite))];
    if std::env::var_os("PG_BIN_DIR").is_some()
        || std::env::var_os("SCANBIND_TEST_DATABASE_URL").is_some()
    {
        figures.push(rt.block_on(run(Backend::Postgres)));
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.trim() == "model name")
                    .map(|(_, v)| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("## Merchant server: added latency and payments per second\n");
    println!(
        "CPU: {cpu}, {cores} cores. `cargo bench -p scanbind-server --bench server_overhead`. The server is a real process; the sandbox and the load run in the bench process (2 tokio workers)."
    );
    println!(
        "(a) {} sequential payments each way; (b) {} payments, {IN_FLIGHT} in flight.\n",
        counts().0,
        counts().1
    );
    println!(
        "| backend | direct AMS pay p50 / p99 | through server p50 / p99 | ratio p50 / p99 | server pays/s | floor pays/s (RSA {floor_signs:.0} signs/s ÷ 3) | vs floor |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for f in &figures {
        println!(
            "| {} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2}× / {:.2}× | {:.0} | {:.0} | {:.2} |",
            f.backend,
            f.direct.as_secs_f64() * 1e3,
            f.direct_p99.as_secs_f64() * 1e3,
            f.server.as_secs_f64() * 1e3,
            f.server_p99.as_secs_f64() * 1e3,
            f.server.as_secs_f64() / f.direct.as_secs_f64(),
            f.server_p99.as_secs_f64() / f.direct_p99.as_secs_f64(),
            f.per_second,
            floor,
            f.per_second / floor
        );
    }
}
