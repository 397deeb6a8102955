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

mod stack;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use scanbind_benches::Machine;
use serde_json::json;
use stack::{Device, Samples, World, ms};

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
    /// One combined checkout of two parts.
    checkout: Samples,
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
    let world = World::with_sellers(bins, SELLERS).await?;
    let server = world.spawn_server()?;
    let device = Device::register(&server.base).await?;
    let mut events = device.events().await?;
    let (binding_id, sealed) = device.bind(&world, &mut events).await?;
    let mut f = Figures {
        singles: Samples::default(),
        checkout: Samples::default(),
    };
    eprintln!("checkout_overhead: {WARMUP} warm-up + {ROUNDS} rounds...");
    for i in 0..WARMUP + ROUNDS {
        // The floor: two single payments.
        let t = Instant::now();
        for k in 0..SELLERS.len() {
            let body = json!({"appId": "bench", "appOrderId": format!("single-{i}-{k}"),
                              "bindingId": binding_id, "sealedTokens": sealed,
                              "amount": {"currency": "HKD", "value": AMOUNT},
                              "description": "bench"});
            let p = device.ok("POST", "/v1/payments", Some(body)).await?;
            if p["status"] != "succeeded" {
                return Err(format!("single payment {i}/{k}: {p}"));
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
        if i >= WARMUP {
            f.singles.push(singles);
            f.checkout.push(checkout);
        }
    }
    world.sandbox.shutdown().await;
    Ok(f)
}

fn row(name: &str, x: &Samples) -> String {
    format!(
        "| {name} | {} | {} | {}–{} |",
        ms(x.median()),
        ms(x.percentile(90.0)),
        ms(x.min()),
        ms(x.max())
    )
}

fn report(machine: &Machine, versions: &str, f: &Figures) -> String {
    let floor: Duration = f.singles.median();
    let ratio = f.checkout.median().as_secs_f64() / floor.as_secs_f64();
    let verdict = if ratio <= 1.1 { "meets" } else { "misses" };
    [
        "## Combined checkout overhead".to_owned(),
        String::new(),
        format!(
            "Run: {}. Release build (`cargo bench`); {versions}. `scanbind-server` on SQLite as its own process; the sandbox (two sellers) and the device client in the bench process (2 tokio workers). The machine is shared with other work (noisy).",
            machine.summary()
        ),
        format!(
            "One round = two signed `POST /v1/payments` (agreement pay, HKD 1.00 each, one after the other: the floor) then one signed `POST /v1/checkouts` of two parts (two sellers, HKD 1.00 each, all-or-nothing) until it answers `succeeded`; same device, same binding; {ROUNDS} rounds after {WARMUP} warm-up rounds."
        ),
        stack::reproduce("checkout_overhead"),
        String::new(),
        "| measure | median | p90 | min–max |".to_owned(),
        "|---|---:|---:|---:|".to_owned(),
        row("**floor**: 2 single payments", &f.singles),
        row("1 checkout of 2 parts", &f.checkout),
        String::new(),
        format!("Checkout ÷ floor: **{ratio:.2}×** (target ≤ 1.1×: {verdict}). The order-code half of this row is not measured yet (its user scan has no counterpart in a single agreement payment)."),
    ]
    .join("\n")
}
