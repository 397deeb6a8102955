//! Combined checkout overhead against its floor: the same number of single agreement
//! payments. See benches/README.md.
//!
//! `cargo bench -p scanbind-benches --bench checkout_overhead [-- --write-docs]`
//!
//! - Real processes: the release `scanbind-server` on SQLite; the sandbox (with two
//!   sellers under the merchant) and the device client run in the bench process.
//! - Measured: one signed `POST /v1/checkouts` of two parts (two sellers, HKD 1.00
//!   each, all-or-nothing) until its answer says `succeeded`: the server pays each
//!   seller with its own AMS payment, then settles the checkout.
//! - Floor, interleaved in the same rounds: two signed `POST /v1/payments` (agreement
//!   pay, HKD 1.00 each, one after the other) by the same device on the same binding:
//!   the same number of single payments.
//! - Also measured, against one single payment (the first of the two): an order code
//!   payment by a second device (no binding): `POST /v1/payments/order-code`, the
//!   wallet user's scan and payment through the sandbox's control API, until the
//!   `payment.result` event reaches the device's event stream (the sandbox's
//!   notification, the server's processing, the push). The scan request is timed
//!   apart: it is the phone's part, with no counterpart in an agreement payment.

mod stack;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use scanbind_benches::Machine;
use serde_json::json;
use stack::{Device, Samples, median_row, ms, timed};

const SECTION: &str = "checkout-overhead";
const WARMUP: usize = 10;
const ROUNDS: usize = 100;
const AMOUNT: i64 = 100;
const SELLERS: &[(&str, &str)] = &[("SELLER_A", "Alpha Books"), ("SELLER_B", "Beta Games")];

fn main() -> ExitCode {
    stack::bench_main("checkout_overhead", run)
}

struct Figures {
    /// Two single payments, one after the other.
    singles: Samples,
    /// The first of them alone.
    single: Samples,
    /// One combined checkout of two parts.
    checkout: Samples,
    /// One order code payment, issued until its result event.
    order_code: Samples,
    /// Of which the wallet user's scan request.
    scan: Samples,
}

fn run() -> Result<(), String> {
    let stack::Prepared { bins, versions, rt } = stack::prepare("checkout_overhead")?;
    let figures = rt.block_on(measure(&bins))?;
    stack::publish(
        "checkout_overhead",
        SECTION,
        &report(&Machine::current(), &versions, &figures),
    )
}

async fn measure(bins: &std::path::Path) -> Result<Figures, String> {
    let world = stack::world_with_sellers(bins, SELLERS).await?;
    let server = stack::spawn_server(&world)?;
    let device = Device::register(&server.base).await?;
    let mut events = device.events().await?;
    let (binding_id, sealed) = device.bind(&world, &mut events).await?;
    // The order codes' device: its own event stream carries only their results.
    let payer = Device::register(&server.base).await?;
    let mut payer_events = payer.events().await?;
    let mut f = Figures {
        singles: Samples::default(),
        single: Samples::default(),
        checkout: Samples::default(),
        order_code: Samples::default(),
        scan: Samples::default(),
    };
    eprintln!("checkout_overhead: {WARMUP} warm-up + {ROUNDS} rounds...");
    for i in 0..WARMUP + ROUNDS {
        // The floor: two single payments.
        let t = Instant::now();
        let mut first = Duration::ZERO;
        for k in 0..SELLERS.len() {
            let body = json!({"appId": "bench", "appOrderId": format!("single-{i}-{k}"),
                              "bindingId": binding_id, "sealedTokens": sealed,
                              "amount": {"currency": "HKD", "value": AMOUNT},
                              "description": "bench"});
            let p = device.ok("POST", "/v1/payments", Some(body)).await?;
            if p["status"] != "succeeded" {
                return Err(format!("single payment {i}/{k}: {p}"));
            }
            if k == 0 {
                first = t.elapsed();
            }
        }
        let singles = t.elapsed();
        // One checkout of as many parts.
        let parts: Vec<serde_json::Value> = SELLERS
            .iter()
            .map(|(id, _)| json!({"sellerId": id, "amountMinor": AMOUNT, "description": "bench"}))
            .collect();
        let body = json!({"appId": "bench", "appOrderId": format!("cart-{i}"),
                          "bindingId": binding_id, "sealedTokens": sealed, "currency": "HKD",
                          "allOrNothing": true, "parts": parts});
        let t = Instant::now();
        let c = device.ok("POST", "/v1/checkouts", Some(body)).await?;
        let checkout = t.elapsed();
        if c["status"] != "succeeded" {
            return Err(format!("checkout {i}: {c}"));
        }
        // One order code payment, paid by the wallet user as soon as it is shown.
        let body = json!({"appId": "bench", "appOrderId": format!("code-{i}"),
                          "amount": {"currency": "HKD", "value": AMOUNT},
                          "description": "bench"});
        let t = Instant::now();
        let p = payer
            .ok("POST", "/v1/payments/order-code", Some(body))
            .await?;
        let id = p["paymentId"].as_str().ok_or("no paymentId")?.to_owned();
        let code = p["orderCode"]["codeValue"]
            .as_str()
            .ok_or_else(|| format!("order code {i}: no code value in {p}"))?;
        let (scanned, scan) = timed(stack::scan_with(&world, code, "pay")).await;
        scanned?;
        let status = loop {
            let ev = payer_events.next().await?;
            let data = if ev["data"].is_object() {
                &ev["data"]
            } else {
                &ev
            };
            if data["paymentId"].as_str() == Some(id.as_str()) {
                break data["status"].as_str().unwrap_or_default().to_owned();
            }
        };
        let order_code = t.elapsed();
        if status != "succeeded" {
            return Err(format!("order code {i} ended {status}"));
        }
        if i >= WARMUP {
            f.singles.push(singles);
            f.single.push(first);
            f.checkout.push(checkout);
            f.order_code.push(order_code);
            f.scan.push(scan);
        }
    }
    world.sandbox.shutdown().await;
    Ok(f)
}

fn report(machine: &Machine, versions: &str, f: &Figures) -> String {
    let floor: Duration = f.singles.median();
    let ratio = f.checkout.median().as_secs_f64() / floor.as_secs_f64();
    let verdict = |r: f64| if r <= 1.1 { "meets" } else { "misses" };
    let single = f.single.median().as_secs_f64();
    let code_ratio = f.order_code.median().as_secs_f64() / single;
    let ours = f.order_code.median().saturating_sub(f.scan.median());
    let ours_ratio = ours.as_secs_f64() / single;
    [
        "## Order code and combined checkout overhead".to_owned(),
        String::new(),
        format!(
            "Run: {}. Release build (`cargo bench`); {versions}. `scanbind-server` on SQLite as its own process; the sandbox (two sellers) and the device client in the bench process (2 tokio workers). The machine is shared with other work (noisy).",
            machine.summary()
        ),
        format!(
            "One round = two signed `POST /v1/payments` (agreement pay, HKD 1.00 each, one after the other: the floor) then one signed `POST /v1/checkouts` of two parts (two sellers, HKD 1.00 each, all-or-nothing) until it answers `succeeded`; same device, same binding; then, by a second device, one order code payment (HKD 1.00): `POST /v1/payments/order-code`, the wallet user's scan and payment (`POST /sandbox/v1/scan`, decision `pay`) as soon as the code is shown, until its `payment.result` event arrives on the device's event stream; {ROUNDS} rounds after {WARMUP} warm-up rounds."
        ),
        stack::reproduce("checkout_overhead"),
        String::new(),
        "| measure | median | p90 | min–max |".to_owned(),
        "|---|---:|---:|---:|".to_owned(),
        median_row("**floor**: 2 single payments", &f.singles),
        median_row("1 checkout of 2 parts", &f.checkout),
        median_row("**floor**: 1 single payment (the first of the two)", &f.single),
        median_row("1 order code payment: issued → scanned and paid → result event", &f.order_code),
        median_row("of which the wallet user's scan request (the phone's part)", &f.scan),
        format!("| order code without the scan request (median − median) | {} | | |", ms(ours)),
        String::new(),
        format!(
            "Checkout ÷ floor: **{ratio:.2}×** (target ≤ 1.1×: {}). Order code ÷ one single payment: **{code_ratio:.2}×** (target ≤ 1.1×: {}); without the phone's scan request, which has no counterpart in an agreement payment, {ours_ratio:.2}× ({}).",
            verdict(ratio),
            verdict(code_ratio),
            verdict(ours_ratio)
        ),
    ]
    .join("\n")
}
