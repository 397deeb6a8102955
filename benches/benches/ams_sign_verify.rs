//! AMS RSA256 sign + verify throughput: ours against the official Python SDK, with ring's
//! bare RSA-2048 sign as the floor. See benches/README.md.
//!
//! `cargo bench -p scanbind-benches --bench ams_sign_verify [-- --write-docs]`
//! (needs `SCANBIND_PYTHON`; `scripts/bench` sets it up).

use std::hint::black_box;
use std::process::{Command, ExitCode};

use scanbind_ams::signature;
use scanbind_ams::{PrivateKey, PublicKey};
use scanbind_benches::{Machine, Plan, Throughput, fmt_rate, measure};

const SECTION: &str = "ams-sign-verify";
/// The ratio of ours over the SDK this benchmark is meant to show at least.
const TARGET_RATIO: f64 = 20.0;

const METHOD: &str = "POST";
const PATH: &str = "/ams/api/v1/payments/pay";
const CLIENT: &str = "SANDBOX_5YEXAMPLE00001";
const TIME: &str = "2026-11-21T10:00:00+00:00";
/// A realistic agreement-pay request body; with the header fields the signed content is
/// about 300 bytes.
const BODY: &str = r#"{"productCode":"AGREEMENT_PAYMENT","paymentRequestId":"pay_20261121_000123","paymentAmount":{"currency":"PHP","value":"12500"},"paymentMethod":{"paymentMethodType":"GCASH","paymentMethodId":"tok_2880000000000001"},"order":{"referenceOrderId":"ord_123"}}"#;

const RUST_PLAN: Plan = Plan {
    warmup: 50,
    rounds: 7,
    iterations: 300,
};
const PYTHON_PLAN: Plan = Plan {
    warmup: 10,
    rounds: 7,
    iterations: 40,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ams_sign_verify: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    // `cargo test --benches` runs bench targets with no `--bench`; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("ams_sign_verify: not run without --bench (use cargo bench)");
        return Ok(());
    }
    let python = scanbind_benches::python()?;
    let key = PrivateKey::from_text(&scanbind_benches::ams_fixture("vector_private_pkcs8.pem"))
        .map_err(|e| e.to_string())?;
    let public = PublicKey::from_text(&scanbind_benches::ams_fixture("vector_public_spki.pem"))
        .map_err(|e| e.to_string())?;
    let content = signature::content(METHOD, PATH, CLIENT, TIME, BODY.as_bytes());

    // One op: sign the message into its header, then verify that header.
    let op = || {
        let header = signature::sign(
            &key,
            1,
            METHOD,
            PATH,
            CLIENT,
            TIME,
            black_box(BODY.as_bytes()),
        )
        .expect("sign");
        signature::verify(
            &public,
            black_box(&header),
            METHOD,
            PATH,
            CLIENT,
            TIME,
            BODY.as_bytes(),
        )
        .expect("verify");
    };
    let expected = signature::encode_signature(&key.sign(&content).map_err(|e| e.to_string())?);

    eprintln!("ams_sign_verify: floor (ring RSA-2048 sign)...");
    let floor = measure(RUST_PLAN, || {
        black_box(key.sign(black_box(&content)).expect("sign"));
    });
    eprintln!("ams_sign_verify: scanbind sign+verify...");
    let ours = measure(RUST_PLAN, op);
    eprintln!("ams_sign_verify: official Python SDK sign+verify...");
    let script = scanbind_benches::repo_root().join("benches/python/sdk_sign_verify.py");
    let sdk_private: String = scanbind_benches::ams_fixture("vector_private_pkcs1.pem")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let sdk = scanbind_benches::run_python_rounds(
        Command::new(&python)
            .arg(&script)
            .args([
                "--method",
                METHOD,
                "--path",
                PATH,
                "--client-id",
                CLIENT,
                "--time",
                TIME,
            ])
            .args(["--body", BODY, "--private-key", &sdk_private])
            .args([
                "--public-key",
                &public.to_base64(),
                "--expected-signature",
                &expected,
            ])
            .args(["--warmup", &PYTHON_PLAN.warmup.to_string()])
            .args(["--rounds", &PYTHON_PLAN.rounds.to_string()])
            .args(["--iterations", &PYTHON_PLAN.iterations.to_string()]),
    )?;

    let report = report(&Machine::current(), content.len(), &floor, &ours, &sdk);
    println!("{report}");
    if scanbind_benches::write_docs_requested() {
        let path = scanbind_benches::update_docs(SECTION, &report)?;
        eprintln!("ams_sign_verify: wrote {}", path.display());
    }
    Ok(())
}

fn row(name: &str, t: &Throughput, plan: Plan, ratio: &str) -> String {
    let (lo, hi) = t.range();
    format!(
        "| {name} | {} | {:.0} | {}–{} | {}×{} | {ratio} |",
        fmt_rate(t.median()),
        t.micros_per_op(),
        fmt_rate(lo),
        fmt_rate(hi),
        plan.rounds,
        plan.iterations,
    )
}

fn report(
    machine: &Machine,
    content_len: usize,
    floor: &Throughput,
    ours: &Throughput,
    sdk: &Throughput,
) -> String {
    let vs_sdk = ours.median() / sdk.median();
    let verdict = if vs_sdk >= TARGET_RATIO {
        "meets"
    } else {
        "**misses**"
    };
    [
        "## AMS RSA256 sign + verify".to_owned(),
        String::new(),
        format!("Run: {}. Release build (`cargo bench`), one thread.", machine.summary()),
        format!(
            "One op = sign one {content_len}-byte pay-request content (`POST {PATH}`, \
             Python-style request-time) into its `signature` header, then verify it. \
             Median of the rounds; ratios are against the floor of the same run."
        ),
        String::new(),
        "| measure | ops/s (median) | µs/op | rounds ops/s (min–max) | rounds×iterations | vs floor |".to_owned(),
        "|---|---:|---:|---:|---:|---:|".to_owned(),
        row("**floor**: ring RSA-2048 PKCS#1 v1.5 SHA-256 sign alone", floor, RUST_PLAN, "1.00"),
        row(
            "scanbind-ams `signature::sign` + `signature::verify`",
            ours,
            RUST_PLAN,
            &format!("{:.2}", ours.median() / floor.median()),
        ),
        row(
            "official Python SDK 1.7.1 `signature_tool.sign` + `verify`",
            sdk,
            PYTHON_PLAN,
            &format!("{:.3}", sdk.median() / floor.median()),
        ),
        String::new(),
        format!(
            "scanbind / Python SDK: **{vs_sdk:.1}×** (target ≥ {TARGET_RATIO:.0}×: {verdict})."
        ),
    ]
    .join("\n")
}
