//! Sandbox throughput: signed AGREEMENT_PAYMENT pays per second against an in-process
//! `scanbind-sandbox` on 2 worker threads, next to the floor set by RSA-2048 signing on
//! the same machine. See benches/README.md.
//!
//! `cargo bench -p scanbind-benches --bench sandbox_throughput [-- --write-docs]`
//!
//! - The sandbox runs in this process on its own tokio runtime with 2 worker threads.
//! - The load generator is a separate single-threaded runtime keeping `CONCURRENCY`
//!   requests in flight over keep-alive HTTP/1.1 connections; every request is signed
//!   before timing starts, so the timed loop is the sandbox's work plus HTTP.
//! - Per payment the sandbox makes **1 RSA signature** (the response; the bench sends no
//!   `paymentNotifyUrl`, so there is no notification) and 1 verification.
//! - Floor = ring RSA-2048 signatures/s on 2 threads ÷ signatures per payment: the
//!   payments/s a sandbox doing nothing but its signatures would reach.

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use scanbind_ams::PrivateKey;
use scanbind_benches::{Machine, Plan, Throughput, fmt_rate};

const SECTION: &str = "sandbox-throughput";
const CLIENT: &str = "SANDBOX_5YEXAMPLE00001";
const PATH: &str = "/ams/api/v1/payments/pay";
const TIME: &str = "2026-11-21T10:00:00+00:00";
/// Signatures the sandbox makes per payment (the response).
const SIGNATURES_PER_PAYMENT: f64 = 1.0;
/// Worker threads of the sandbox runtime ("2 cores").
const SANDBOX_THREADS: usize = 2;
/// Requests kept in flight.
const CONCURRENCY: usize = 32;
const PLAN: Plan = Plan {
    warmup: 300,
    rounds: 7,
    iterations: 1500,
};
const FLOOR_PLAN: Plan = Plan {
    warmup: 50,
    rounds: 7,
    iterations: 400,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox_throughput: {e}");
            ExitCode::FAILURE
        }
    }
}

/// ring RSA-2048 signs per second on `threads` threads at once, per round.
fn floor(key: &Arc<PrivateKey>, threads: usize) -> Throughput {
    let content = scanbind_ams::signature::content("POST", PATH, CLIENT, TIME, b"{}");
    for _ in 0..FLOOR_PLAN.warmup {
        black_box(key.sign(&content).expect("sign"));
    }
    let rounds = (0..FLOOR_PLAN.rounds)
        .map(|_| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        for _ in 0..FLOOR_PLAN.iterations {
                            black_box(key.sign(black_box(&content)).expect("sign"));
                        }
                    });
                }
            });
            (threads * FLOOR_PLAN.iterations) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    Throughput::from_rounds(rounds)
}

fn pay_body(request_id: &str, token: &str) -> String {
    serde_json::json!({
        "productCode": "AGREEMENT_PAYMENT",
        "paymentRequestId": request_id,
        "order": {"referenceOrderId": request_id, "orderDescription": "bench",
                  "orderAmount": {"currency": "CNY", "value": "100"}},
        "paymentAmount": {"currency": "CNY", "value": "100"},
        "paymentMethod": {"paymentMethodType": "ALIPAY_CN", "paymentMethodId": token},
        "env": {"terminalType": "WEB"}
    })
    .to_string()
}

struct Signed {
    body: String,
    signature: String,
}

fn run() -> Result<(), String> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("sandbox_throughput: not run without --bench (use cargo bench)");
        return Ok(());
    }
    let merchant = Arc::new(
        PrivateKey::from_text(&scanbind_benches::ams_fixture("vector_private_pkcs8.pem"))
            .map_err(|e| e.to_string())?,
    );
    let sandbox_key = PrivateKey::from_text(&scanbind_benches::ams_fixture("other_rsa2048.pem"))
        .map_err(|e| e.to_string())?;

    eprintln!("sandbox_throughput: floor (ring RSA-2048 sign on {SANDBOX_THREADS} threads)...");
    let floor_signs = floor(
        &Arc::new(
            PrivateKey::from_text(&scanbind_benches::ams_fixture("other_rsa2048.pem"))
                .map_err(|e| e.to_string())?,
        ),
        SANDBOX_THREADS,
    );

    // The sandbox, on its own 2-thread runtime.
    let sandbox_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SANDBOX_THREADS)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let handle = sandbox_rt
        .block_on(
            scanbind_sandbox::Sandbox::builder(sandbox_key)
                .merchant(CLIENT, merchant.public_key())
                .start(),
        )
        .map_err(|e| e.to_string())?;
    let base = handle.base_url().to_owned();

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let http = scanbind_sandbox::notify::http_client().map_err(|e| e.to_string())?;
    let token = client_rt.block_on(bind(&http, &base, &merchant))?;

    let total = PLAN.warmup + PLAN.rounds * PLAN.iterations;
    eprintln!("sandbox_throughput: signing {total} pay requests up front...");
    let requests: Vec<Signed> = (0..total)
        .map(|i| {
            let body = pay_body(&format!("bench_{i:08}"), &token);
            let signature = scanbind_ams::signature::sign(
                &merchant,
                1,
                "POST",
                PATH,
                CLIENT,
                TIME,
                body.as_bytes(),
            )
            .expect("sign");
            Signed { body, signature }
        })
        .collect();
    let requests = Arc::new(requests);

    eprintln!("sandbox_throughput: paying ({CONCURRENCY} in flight)...");
    let mut next = 0;
    let mut send = |n: usize| -> Result<f64, String> {
        let range = next..next + n;
        next += n;
        let start = Instant::now();
        client_rt.block_on(pay_all(&http, &base, &requests, range))?;
        Ok(n as f64 / start.elapsed().as_secs_f64())
    };
    send(PLAN.warmup)?;
    let rounds = (0..PLAN.rounds)
        .map(|_| send(PLAN.iterations))
        .collect::<Result<Vec<_>, _>>()?;
    let pays = Throughput::from_rounds(rounds);
    sandbox_rt.block_on(handle.shutdown());

    let report = report(&Machine::current(), &floor_signs, &pays);
    println!("{report}");
    if scanbind_benches::write_docs_requested() {
        let path = scanbind_benches::update_docs(SECTION, &report)?;
        eprintln!("sandbox_throughput: wrote {}", path.display());
    }
    Ok(())
}

async fn signed_call(
    http: &reqwest::Client,
    base: &str,
    key: &PrivateKey,
    path: &str,
    body: &str,
) -> Result<serde_json::Value, String> {
    let signature =
        scanbind_ams::signature::sign(key, 1, "POST", path, CLIENT, TIME, body.as_bytes())
            .map_err(|e| e.to_string())?;
    let resp = http
        .post(format!("{base}{path}"))
        .header("client-id", CLIENT)
        .header("request-time", TIME)
        .header("signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// consult → scan → authCode (read from the delivery log) → applyToken; returns the token.
async fn bind(http: &reqwest::Client, base: &str, key: &PrivateKey) -> Result<String, String> {
    let user =
        serde_json::json!({"user": "bench", "wallet": "ALIPAY_CN", "balance": "1000000000000000"});
    http.post(format!("{base}/sandbox/v1/users"))
        .header("content-type", "application/json")
        .body(user.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let consult = serde_json::json!({
        "customerBelongsTo": "ALIPAY_CN", "authRedirectUrl": "https://m.example/r",
        "authNotifyUrl": "http://127.0.0.1:9/unreachable", "scopes": ["AGREEMENT_PAY"],
        "authState": "bench", "env": {"terminalType": "WEB"}
    });
    let c = signed_call(
        http,
        base,
        key,
        "/ams/api/v1/authorizations/consult",
        &consult.to_string(),
    )
    .await?;
    let qr = c["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .ok_or("consult gave no QR")?
        .to_owned();
    let scan = serde_json::json!({"codeValue": qr, "decision": "approve", "user": "bench"});
    http.post(format!("{base}/sandbox/v1/scan"))
        .header("content-type", "application/json")
        .body(scan.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let log = http
        .get(format!("{base}/sandbox/v1/notifications"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let log: serde_json::Value = serde_json::from_slice(&log).map_err(|e| e.to_string())?;
    let code = log["notifications"][0]["body"]["authCode"]
        .as_str()
        .ok_or("no AUTHCODE_CREATED in the delivery log")?
        .to_owned();
    let apply = serde_json::json!({"grantType": "AUTHORIZATION_CODE", "customerBelongsTo": "ALIPAY_CN", "authCode": code});
    let t = signed_call(
        http,
        base,
        key,
        "/ams/api/v1/authorizations/applyToken",
        &apply.to_string(),
    )
    .await?;
    t["accessToken"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("applyToken failed: {t}"))
}

/// Sends `requests[range]` with `CONCURRENCY` in flight; every answer must be SUCCESS.
async fn pay_all(
    http: &reqwest::Client,
    base: &str,
    requests: &Arc<Vec<Signed>>,
    range: std::ops::Range<usize>,
) -> Result<(), String> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
    let end = range.end;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let http = http.clone();
        let url = format!("{base}{PATH}");
        let requests = Arc::clone(requests);
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= end {
                    return Ok::<(), String>(());
                }
                let r = &requests[i];
                let resp = http
                    .post(&url)
                    .header("client-id", CLIENT)
                    .header("request-time", TIME)
                    .header("signature", &r.signature)
                    .body(r.body.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
                if !bytes.windows(9).any(|w| w == b"\"SUCCESS\"") {
                    return Err(format!(
                        "pay {i} failed: {}",
                        String::from_utf8_lossy(&bytes)
                    ));
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn report(machine: &Machine, floor_signs: &Throughput, pays: &Throughput) -> String {
    let floor_pays = floor_signs.median() / SIGNATURES_PER_PAYMENT;
    let ratio = pays.median() / floor_pays;
    let (lo, hi) = pays.range();
    let (flo, fhi) = floor_signs.range();
    [
        "## Sandbox payments per second".to_owned(),
        String::new(),
        format!(
            "Run: {}. Release build (`cargo bench`); the sandbox runs in-process on a tokio runtime with {SANDBOX_THREADS} worker threads, the load generator on one more thread ({CONCURRENCY} requests in flight, HTTP/1.1 keep-alive, all requests signed before timing).",
            machine.summary()
        ),
        format!(
            "One payment = one signed `AGREEMENT_PAYMENT` `pay` (new `paymentRequestId`, ALIPAY_CN, no notification): the sandbox verifies the request signature, checks token, limits and balance, records it and signs the response ({SIGNATURES_PER_PAYMENT:.0} RSA-2048 signature per payment). Floor = ring RSA-2048 signs/s on {SANDBOX_THREADS} threads ÷ signatures per payment."
        ),
        String::new(),
        "| measure | per second (median) | rounds (min–max) | rounds×iterations | vs floor |".to_owned(),
        "|---|---:|---:|---:|---:|".to_owned(),
        format!(
            "| ring RSA-2048 signs on {SANDBOX_THREADS} threads | {} | {}–{} | {}×{} | |",
            fmt_rate(floor_signs.median()),
            fmt_rate(flo),
            fmt_rate(fhi),
            FLOOR_PLAN.rounds,
            FLOOR_PLAN.iterations * SANDBOX_THREADS
        ),
        format!(
            "| **floor**: payments/s if signing were the only cost | {} | | | 1.00 |",
            fmt_rate(floor_pays)
        ),
        format!(
            "| scanbind-sandbox pays/s | {} | {}–{} | {}×{} | {ratio:.2} |",
            fmt_rate(pays.median()),
            fmt_rate(lo),
            fmt_rate(hi),
            PLAN.rounds,
            PLAN.iterations
        ),
        String::new(),
        format!("Sandbox payments/s ÷ floor: **{ratio:.2}**."),
    ]
    .join("\n")
}
