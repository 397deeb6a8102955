//! `scanbind-demo`, the program behind `scanbindctl demo`: the whole product on this
//! machine, step by step.
//!
//! Nothing needs to be installed or running beyond what the repository builds.
//! `scanbindctl demo` runs this program with the same options (the shipped
//! `scanbindctl` carries no daemon, server or sandbox). The demo runs in two
//! processes:
//!
//! 1. **This process** (the outer one) starts a private bus, with its socket in a
//!    temporary directory: a private `dbus-daemon` if one is installed, else an
//!    embedded broker in this process (`busd`, [`DemoBus`]). With
//!    `gnome-keyring-daemon` installed it starts a private gnome-keyring on that bus,
//!    unlocked with a throwaway password; without it the daemon keeps its secrets in
//!    its own encrypted file vault in the temporary directory, under a random key that
//!    only the inner process holds. Step 0 says which of each it used. It then runs
//!    itself again with `DBUS_SESSION_BUS_ADDRESS` pointing at the private bus, waits
//!    for it, and removes everything it started, whatever happened.
//! 2. **The inner process** starts the embedded stack (sandbox + merchant server on
//!    SQLite + `scanbindd`, all in process, the daemon on the private bus with its
//!    secrets in that keyring or its file vault) and is the app: every step goes through
//!    `scanbind-client` over D-Bus, exactly as a game would. Only the phone is
//!    simulated, through the sandbox's control API, unless `--interactive`.
//!
//! It exits 0 only if every step did what it says.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use scanbind_client::money::Money;
use scanbind_client::{
    BindOptions, BindingState, Client, ListOptions, PayRequest, PaymentState, ReceiptVerifier,
    SellerPart, Transport,
};
use scanbind_demo::{DemoBus, Embedded};
use scanbind_testkit::{PrivateKeyring, on_path};
use scanbindctl::demo_args::DemoArgs;
use scanbindctl::exit;
use scanbindctl::output::{Output, indented_table};
use scanbindctl::show::{
    check_wallet, money_text, show_qr, time_text, wait_refunded, with_progress,
};

/// Set in the inner process: the private bus address.
const INNER_BUS_ENV: &str = "SCANBIND_DEMO_BUS";
/// Set in the inner process: the demo's temporary directory.
const INNER_DIR_ENV: &str = "SCANBIND_DEMO_DIR";
/// Set in the inner process: where the daemon keeps its secrets, [`VAULT_FILE`] or
/// [`VAULT_SECRET_SERVICE`].
const INNER_VAULT_ENV: &str = "SCANBIND_DEMO_VAULT";
/// [`INNER_VAULT_ENV`]: the daemon's own encrypted file vault, `<demo dir>/vault`.
const VAULT_FILE: &str = "file";
/// [`INNER_VAULT_ENV`]: the private gnome-keyring (the Secret Service on the private bus).
const VAULT_SECRET_SERVICE: &str = "secret-service";
/// The keyring service name of the demo daemon's secrets.
const VAULT_SERVICE: &str = "io.scanbind.Daemon.demo";

/// scanbind demo: run the whole system on this machine and walk through bind, pay,
/// receipt, refund (what `scanbindctl demo` runs).
#[derive(Debug, Parser)]
#[command(name = "scanbind-demo", version, about)]
struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    demo: DemoArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    scanbindctl::output::init_logging(cli.verbose);
    let out = Output { json: false };
    // The daemon runs in process: it needs worker threads for the keyring's blocking
    // calls next to the app's calls.
    let result = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(cli.demo)),
        Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    exit::report(result, out)
}

/// The sandbox's port with `--interactive` (no `--listen`).
const INTERACTIVE_PORT: u16 = 8100;

/// This machine's address on the LAN: the source address the kernel would use to
/// reach a public address (a UDP "connect" sends nothing).
fn lan_ip() -> Option<std::net::IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("192.0.2.1:9").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Bound on each step that does not wait for a person.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the demo (the outer process, or the inner one when [`INNER_BUS_ENV`] is set).
async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let currency = check_wallet(&args.wallet)?;
    let amount = Money::parse_major(&args.amount, currency)
        .map_err(|e| exit::usage(format!("--amount: {e}")))?;
    if amount.minor().get() < 2 {
        return Err(exit::usage(
            "--amount: the demo refunds half, so it needs at least 2 minor units",
        ));
    }
    if let Some(url) = &args.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(exit::usage(format!(
            "--public-url {url:?} must start with http:// or https://"
        )));
    }
    match (
        std::env::var(INNER_BUS_ENV),
        std::env::var_os(INNER_DIR_ENV),
    ) {
        (Ok(bus), Some(dir)) => inner(args, amount, &bus, PathBuf::from(dir)).await,
        _ => outer().await,
    }
}

fn step(n: u32, title: &str) {
    println!("\n== {n}. {title}");
}

/// The outer process: private bus and keyring, the inner process, clean-up.
async fn outer() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("scanbind-demo.")
        .tempdir()
        .context("creating a temporary directory")?;
    step(0, "Private D-Bus bus and keyring");
    let bus = DemoBus::start(dir.path())
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("  D-Bus: {}", bus.describe());
    println!("    private bus at {}", bus.address());
    let mut inner_env: Vec<(&str, String)> = vec![
        (INNER_BUS_ENV, bus.address().to_owned()),
        (INNER_DIR_ENV, dir.path().display().to_string()),
        // Nothing of the demo reaches the session of whoever runs it.
        ("DBUS_SESSION_BUS_ADDRESS", bus.address().to_owned()),
    ];
    let keyring = if on_path("gnome-keyring-daemon") {
        let k = PrivateKeyring::start(bus.address(), &dir.path().join("keyring"))
            .await
            .map_err(|e| anyhow::anyhow!("starting a private gnome-keyring: {e}"))?;
        println!("  keyring: private gnome-keyring");
        println!(
            "    the Secret Service on the private bus, unlocked, files in {}",
            dir.path().display()
        );
        inner_env.push((INNER_VAULT_ENV, VAULT_SECRET_SERVICE.to_owned()));
        Some(k)
    } else {
        println!("  keyring: the daemon's file vault (no gnome-keyring found)");
        println!(
            "    encrypted, in {}, its key random and held only in the demo's memory",
            dir.path().join("vault").display()
        );
        inner_env.push((INNER_VAULT_ENV, VAULT_FILE.to_owned()));
        None
    };
    let exe = std::env::current_exe().context("finding the demo program's own executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(inner_env)
        .spawn()
        .context("starting the demo process")?;
    // Ctrl-C reaches the child too (same process group); SIGTERM and SIGHUP come to
    // this process only, so they stop the child. Either way we stay to clean up.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("watching SIGHUP")?;
    let status = loop {
        tokio::select! {
            s = child.wait() => break s.context("waiting for the demo process")?,
            _ = tokio::signal::ctrl_c() => println!("\n  interrupted: stopping the demo"),
            _ = term.recv() => {
                println!("\n  terminated: stopping the demo");
                let _ = child.start_kill();
            }
            _ = hup.recv() => {
                let _ = child.start_kill();
            }
        }
    };
    let mut stopped = Vec::new();
    if let Some(keyring) = keyring {
        drop(keyring);
        stopped.push("the private gnome-keyring");
    }
    stopped.push(if bus.is_embedded() {
        "the embedded D-Bus broker"
    } else {
        "the private dbus-daemon"
    });
    bus.stop().await;
    let path = dir.path().display().to_string();
    dir.close()
        .context("removing the demo's temporary directory")?;
    println!(
        "  cleaned up: stopped {}, removed {path}",
        stopped.join(" and ")
    );
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(exit::with_code(
            u8::try_from(code).unwrap_or(exit::FAILURE),
            "",
        )),
        None => Err(exit::with_code(
            exit::FAILURE,
            "the demo process was killed",
        )),
    }
}

/// The inner process: the embedded stack and the walk-through.
async fn inner(args: DemoArgs, amount: Money, bus: &str, dir: PathBuf) -> anyhow::Result<()> {
    step(1, "Embedded stack: sandbox, merchant server, scanbindd");
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    let mut dev = scanbindd::dev::DevOptions::default();
    if let Some(listen) = args.listen {
        dev.sandbox_listen = listen;
    } else if args.interactive {
        // A phone on the LAN must reach the wallet pages.
        dev.sandbox_listen = SocketAddr::from(([0, 0, 0, 0], INTERACTIVE_PORT));
    }
    dev.sandbox_public_url = args.public_url.clone().or_else(|| {
        (args.interactive || dev.sandbox_listen.ip().is_unspecified())
            .then(|| lan_ip().map(|ip| format!("http://{ip}:{}", dev.sandbox_listen.port())))
            .flatten()
    });
    // The file vault's master secret is made here, in the process that uses it, and
    // never leaves its memory (VaultChoice's Debug does not show it).
    let (vault, secrets_in) = match std::env::var(INNER_VAULT_ENV).as_deref() {
        Ok(VAULT_FILE) => (
            scanbindd::VaultChoice::file_with_new_secret(dir.join("vault"))
                .map_err(|e| anyhow::anyhow!("the demo's file vault: {e}"))?,
            "its encrypted file vault",
        ),
        _ => (
            scanbindd::VaultChoice::SecretService,
            "the private gnome-keyring",
        ),
    };
    // The demo plays the user on the display agent too (step 10): its policy trusts
    // this process as an agent; every app may pay, as without a policy.
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, scanbind_testkit::agent::trusted_agent_toml())?;
    let stack = Embedded::start_with_vault(bus, &state, VAULT_SERVICE, vault, dev, Some(&policy))
        .await
        .map_err(|e| anyhow::anyhow!("starting the embedded stack: {e}"))?;
    println!(
        "  sandbox (Alipay + the phone's wallet pages) at {}",
        stack.sandbox_url()
    );
    println!(
        "  merchant server (SQLite in {}) at {}",
        state.display(),
        stack.server_url()
    );
    println!(
        "  scanbindd serving io.scanbind.Daemon on the private bus, its secrets in {secrets_in}"
    );
    let result = walk_through(&args, amount, bus, &stack).await;
    let stopped = stack.shutdown().await;
    println!("  stopped scanbindd, the merchant server and the sandbox");
    result?;
    stopped.map_err(|e| anyhow::anyhow!("stopping the embedded stack: {e}"))?;
    println!(
        "\nDone: bound, paid once with one click (the same order sent twice), receipt verified, \
         half refunded, paid once by scanning an order code, a two-seller checkout paid with one \
         confirmation and one part refunded, a weekly subscription confirmed, renewed by the \
         server and cancelled, unbound: every step checked against the sandbox's ledger \
         and the signed receipts."
    );
    Ok(())
}

async fn timed<T>(what: &str, fut: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, fut).await.map_err(|_| {
        exit::with_code(
            exit::TIMEOUT,
            format!("{what}: no result within {} s", STEP_TIMEOUT.as_secs()),
        )
    })
}

async fn walk_through(
    args: &DemoArgs,
    amount: Money,
    bus: &str,
    stack: &Embedded,
) -> anyhow::Result<()> {
    let http = scanbind_ams::client::http_client_builder(Vec::new())?
        .no_proxy()
        .build()?;

    step(2, "The app connects to the daemon");
    let client = Client::connect(Transport::Address(bus.to_owned())).await?;
    timed("waiting for the daemon's server link", client.wait_online()).await??;
    let status = client.status().await?;
    println!(
        "  scanbindd {}: link to the merchant server {}, device {:?}, {} wallet(s) bound",
        status.version,
        status.connectivity,
        status.device_name,
        status.bindings.len()
    );

    step(
        3,
        &format!("Bind the {} wallet (Scan to Bind)", args.wallet),
    );
    let binding = client
        .bind(
            &args.wallet,
            BindOptions {
                label: Some("scanbind demo".into()),
                display: Some(false),
            },
        )
        .await?;
    ensure!(
        binding.state().await? == BindingState::Pending,
        "a new binding is pending"
    );
    show_qr(&binding).await?;
    let code_value = binding.code_value().await?;
    println!("  QR code value: {code_value}");
    if args.interactive {
        println!("  Open that URL on a phone (or scan the QR) and press Approve …");
    } else {
        println!("  Simulating the phone: scan and Approve");
        let scan: serde_json::Value = http
            .post(format!("{}/sandbox/v1/scan", stack.sandbox_url()))
            .json(&serde_json::json!({"codeValue": code_value, "decision": "approve"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ensure!(scan["outcome"] == "approved", "the phone's scan: {scan}");
        println!(
            "  phone: approved (as user {})",
            scan["user"].as_str().unwrap_or("?")
        );
    }
    let wait = if args.interactive {
        Duration::from_secs(args.phone_timeout)
    } else {
        STEP_TIMEOUT
    };
    let expires = binding.expires_at().await?;
    let outcome =
        with_progress("waiting for the phone", Some(expires), wait, binding.wait()).await??;
    ensure!(
        outcome.state == BindingState::Bound,
        "the binding ended {} ({:?})",
        outcome.state,
        outcome.error
    );
    println!(
        "  bound: {} {} ({})",
        args.wallet,
        binding.label().await?,
        binding.path()
    );
    ensure!(
        binding.code_value().await?.is_empty(),
        "the QR is void once bound"
    );

    step(4, &format!("One-click payment of {amount}"));
    let order_id = format!("demo-order-{}", std::process::id());
    let request = PayRequest::new(&order_id, amount, "Game add-on: 500 gems");
    let payment = timed("Pay", client.pay(&request)).await??;
    println!("  Pay({order_id}, {amount}) → {} (pending)", payment.path());
    let again = client.pay(&request).await?;
    ensure!(
        again.path() == payment.path(),
        "the same order returned another payment"
    );
    println!("  Pay again with the same order id → the same payment, no second charge");
    let outcome = timed("waiting for the payment", payment.wait()).await??;
    ensure!(
        outcome.state == PaymentState::Succeeded,
        "the payment ended {} ({:?})",
        outcome.state,
        outcome.error
    );
    println!("  payment {}: succeeded", payment.path());

    step(
        5,
        "Signed receipt, verified against the server's published keys",
    );
    let receipt = outcome
        .receipt
        .context("a succeeded payment has a receipt")?;
    let verifier = ReceiptVerifier::fetch(stack.server_url()).await?;
    let claims = verifier.verify_payment(&receipt, &order_id, amount)?;
    println!(
        "  receipt verified: EdDSA signature by key {} of {}/v1/receipt-keys",
        verifier.keys().keys.first().map_or("?", |k| k.kid.as_str()),
        stack.server_url()
    );
    println!(
        "  claims: order {} · {} · {} · app {} · device {}",
        claims.app_order_id,
        money_text(claims.amount.value, &claims.amount.currency),
        claims.status,
        claims.app_id,
        claims.device_id
    );
    let mut tampered = receipt.clone().into_bytes();
    if let Some(b) = tampered.iter_mut().rev().nth(3) {
        *b = if *b == b'A' { b'B' } else { b'A' };
    }
    let tampered = String::from_utf8(tampered)?;
    ensure!(
        verifier.verify(&tampered).is_err(),
        "a tampered receipt must not verify"
    );
    println!("  the same receipt with one character changed: rejected (as it must be)");
    payment.finish().await?;
    ensure!(payment.delivered().await?, "Finish marks it delivered");
    println!("  goods delivered → Finish: the payment is no longer listed as unfinished");

    step(6, "Partial refund");
    let half = Money::from_minor(amount.currency(), amount.minor().get() / 2)?;
    let refund = timed(
        "RequestRefund",
        payment.refund(half, "demo: partial return"),
    )
    .await??;
    println!(
        "  RequestRefund({half}) → refund {} ({})",
        refund.id, refund.state
    );
    ensure!(refund.state != "failed", "the refund failed");
    timed("waiting for the refund", wait_refunded(&payment, half)).await??;
    let refunded = payment.refunded().await?;
    ensure!(refunded == half, "refunded {refunded}, expected {half}");
    println!("  refunded: {refunded} of {amount}");

    step(
        7,
        "Pay once by scanning: an order QR code, no binding needed",
    );
    let code_order = format!("demo-scan-{}", std::process::id());
    let by_code = PayRequest::new(&code_order, amount, "Season pass (pay by scan)").by_order_code();
    let scan_payment = timed("Pay (order code)", client.pay(&by_code)).await??;
    let (code, expires_at) = timed("waiting for the order code", scan_payment.order_code())
        .await??
        .context("the server made no order code")?;
    if let Ok(qr) = scanbindctl::qr::render_text(&code) {
        println!("{qr}");
    }
    let left = expires_at - time::OffsetDateTime::now_utc().unix_timestamp();
    println!(
        "  order code for {amount}: {code} (expires in {} s)",
        left.max(0)
    );
    if args.interactive {
        println!("  Scan it with the phone and press Pay …");
    } else {
        println!("  Simulating the phone: scan the order code and Pay");
        let scan: serde_json::Value = http
            .post(format!("{}/sandbox/v1/scan", stack.sandbox_url()))
            .json(&serde_json::json!({"codeValue": code, "decision": "approve"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ensure!(scan["outcome"] == "paid", "the phone's scan: {scan}");
    }
    let wait = if args.interactive {
        Duration::from_secs(args.phone_timeout)
    } else {
        STEP_TIMEOUT
    };
    let scanned = tokio::time::timeout(wait, scan_payment.wait())
        .await
        .map_err(|_| exit::with_code(exit::TIMEOUT, "the order code was not paid in time"))??;
    ensure!(
        scanned.state == PaymentState::Succeeded,
        "the order code payment ended {} ({:?})",
        scanned.state,
        scanned.error
    );
    let receipt = scanned
        .receipt
        .context("a succeeded payment has a receipt")?;
    verifier.verify_payment(&receipt, &code_order, amount)?;
    scan_payment.finish().await?;
    println!("  paid by scan: succeeded, receipt verified, delivered");

    step(
        8,
        "Combined checkout: two sellers, one confirmation, all or nothing",
    );
    let (studio, studio_name) = scanbindd::dev::DEV_SELLERS[0];
    let (addons, addons_name) = scanbindd::dev::DEV_SELLERS[1];
    let addon_amount = Money::from_minor(amount.currency(), (amount.minor().get() / 2).max(1))?;
    let total = Money::from_minor(
        amount.currency(),
        amount.minor().get() + addon_amount.minor().get(),
    )?;
    let bundle_order = format!("demo-bundle-{}", std::process::id());
    let bundle = PayRequest::new(&bundle_order, total, "Racer and map pack")
        .sellers([
            SellerPart::new(studio, amount, "Sofa Racer"),
            SellerPart::new(addons, addon_amount, "Night maps"),
        ])
        .all_or_nothing(true);
    let checkout = timed("Pay (combined checkout)", client.pay(&bundle)).await??;
    println!(
        "  Pay({bundle_order}, {total}) with sellers {studio} {amount} + {addons} {addon_amount} → {}",
        checkout.path()
    );
    let outcome = timed("waiting for the checkout", checkout.wait()).await??;
    ensure!(
        outcome.state == PaymentState::Succeeded,
        "the checkout ended {} ({:?})",
        outcome.state,
        outcome.error
    );
    let parts = checkout.parts().await?;
    ensure!(parts.len() == 2, "two parts, found {}", parts.len());
    for (part, name) in parts.iter().zip([studio_name, addons_name]) {
        let part_amount = Money::from_minor(amount.currency(), part.amount_minor)?;
        let receipt = part
            .receipt
            .as_deref()
            .with_context(|| format!("part {} succeeded without a receipt", part.index))?;
        verifier.verify_part(
            receipt,
            &bundle_order,
            part.index,
            &part.seller,
            part_amount,
        )?;
        ensure!(
            part.seller_name == name,
            "part {} names seller {:?}",
            part.index,
            part.seller_name
        );
        println!(
            "  part {}: {} ({}) {part_amount}: {}, its own receipt verified",
            part.index, part.seller, part.seller_name, part.state
        );
    }
    checkout.finish().await?;
    let refund = timed(
        "RequestRefund (part 1)",
        checkout.refund_part(1, addon_amount, "demo: maps returned"),
    )
    .await??;
    ensure!(refund.state != "failed", "the part refund failed");
    timed(
        "waiting for the part refund",
        wait_refunded(&checkout, addon_amount),
    )
    .await??;
    println!("  refunded part 1 ({addons}) in full: {addon_amount}; part 0 untouched");

    step(9, "The ledger");
    let history = client.payments(ListOptions::default()).await?;
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|p| {
            vec![
                p.order_id.clone(),
                money_text(p.amount_minor, &p.currency),
                p.state.to_string(),
                if p.delivered { "yes" } else { "no" }.into(),
                time_text(p.created_at),
            ]
        })
        .collect();
    println!("  The app's payments (ListPayments):");
    indented_table(
        "    ",
        &["ORDER ID", "AMOUNT", "STATE", "DELIVERED", "CREATED (UTC)"],
        &rows,
    );
    ensure!(history.len() == 3, "three payments in the app's history");
    let ledger: serde_json::Value = http
        .get(format!("{}/sandbox/v1/ledger", stack.sandbox_url()))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!("  The sandbox's ledger (what Alipay recorded):");
    let mut moved = 0;
    for p in ledger["payments"].as_array().into_iter().flatten() {
        let m = p["moneyMovements"].as_u64().unwrap_or(0);
        moved += m;
        println!(
            "    payment {:<9} {:>10}  refunded {:>10}  money moved {m}×  to {}",
            p["status"].as_str().unwrap_or("?"),
            ledger_money(&p["amount"]),
            ledger_money(&p["refunded"]),
            p["referenceMerchantId"].as_str().unwrap_or("?"),
        );
    }
    let mut refunds = 0;
    for r in ledger["refunds"].as_array().into_iter().flatten() {
        refunds += 1;
        println!(
            "    refund  {:<9} {:>10}                       money moved {}×",
            r["status"].as_str().unwrap_or("?"),
            ledger_money(&r["amount"]),
            r["moneyMovements"].as_u64().unwrap_or(0),
        );
    }
    ensure!(
        moved == 4,
        "expected exactly four charges (one-click, scan, two checkout parts) in the ledger, \
         found {moved}"
    );
    ensure!(
        refunds == 2,
        "expected two refunds in the ledger, found {refunds}"
    );
    println!("  exactly one charge per order and seller, and one refund each asked for");

    step(
        10,
        "Subscription: renewed by the merchant server, the TV need not be on",
    );
    // Unbinding stops every app from charging the wallet, and a subscription lets the
    // server charge it every period: an app needs the user's approval on the trusted
    // display agent for either, whatever its policy says.
    match client.unbind(&binding.path().as_ref()).await {
        Err(scanbind_client::Error::Daemon(scanbind_client::ipc::Error::NeedsConfirmation(_))) => {
            println!(
                "  Unbind without a display agent → io.scanbind.Daemon1.Error.NeedsConfirmation \
                 (an app may not unbind alone; the binding stays)"
            );
        }
        Err(e) => bail!("Unbind without a display agent: expected NeedsConfirmation, got {e}"),
        Ok(()) => bail!("Unbind without a display agent was accepted"),
    }
    let _agent = subscription(&http, amount, bus, stack, &client, &verifier).await?;

    step(11, "Unbind");
    println!("  the user approves on the display agent (the demo's own, which says yes)");
    timed("Unbind", client.unbind(&binding.path().as_ref())).await??;
    let state = binding.state().await?;
    ensure!(
        state == BindingState::Unbound,
        "after Unbind the binding is {state}"
    );
    println!("  Unbind → the binding is unbound, its tokens revoked and deleted");
    let after = PayRequest::new(format!("{order_id}-after"), amount, "after unbind");
    match client.pay(&after).await {
        Err(scanbind_client::Error::Daemon(scanbind_client::ipc::Error::NotBound(_))) => {
            println!("  Pay after unbinding → io.scanbind.Daemon1.Error.NotBound (as it must)");
        }
        Err(e) => bail!("Pay after unbinding: expected NotBound, got {e}"),
        Ok(p) => bail!("Pay after unbinding was accepted: {}", p.path()),
    }
    Ok(())
}

/// Step 10: a weekly plan at `price`, confirmed on the display agent (registered here;
/// returned so that it stays registered), renewed once by the server on the sandbox's
/// clock a week later, then cancelled (access kept to the period's end). Every receipt
/// is verified.
async fn subscription(
    http: &reqwest::Client,
    price: Money,
    bus: &str,
    stack: &Embedded,
    client: &Client,
    verifier: &ReceiptVerifier,
) -> anyhow::Result<zbus::Connection> {
    use scanbind_client::ipc::Subscription1Proxy;
    use scanbind_client::ipc::types::keys::subscribe as opt;
    const WEEK: i64 = 7 * 24 * 3600;
    let id = format!("demo-sub-{}", std::process::id());
    let options = || {
        std::collections::HashMap::from([
            (opt::SUBSCRIPTION_ID, zvariant::Value::from(id.as_str())),
            (opt::DESCRIPTION, zvariant::Value::from("Sofa TV Premium")),
        ])
    };
    let daemon = client.daemon_proxy();
    let plan = "Sofa TV Premium";
    let minor = price.minor().get();
    let currency = price.currency().code();
    match daemon
        .subscribe(plan, minor, currency, "P1W", options())
        .await
    {
        Err(scanbind_client::ipc::Error::NeedsConfirmation(_)) => println!(
            "  Subscribe without a display agent → io.scanbind.Daemon1.Error.NeedsConfirmation \
             (a subscription always needs the user)"
        ),
        Err(e) => bail!("Subscribe without a display agent: expected NeedsConfirmation, got {e}"),
        Ok(p) => bail!("Subscribe without a display agent was accepted: {p}"),
    }
    let agent = scanbind_testkit::agent::approving_agent(bus)
        .await
        .context("registering the demo's display agent")?;
    println!("  the demo registers its display agent and plays the user, who says yes");
    let path = timed(
        "Subscribe",
        daemon.subscribe(plan, minor, currency, "P1W", options()),
    )
    .await??;
    let sub = Subscription1Proxy::builder(client.connection())
        .path(path.clone())?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let keys = verifier.keys();
    let check = |jws: &str| -> anyhow::Result<scanbind_device_api::receipt::SubscriptionReceipt> {
        let r = scanbind_device_api::receipt::verify_subscription_receipt(jws, keys)
            .map_err(|e| anyhow::anyhow!("the subscription receipt: {e}"))?;
        ensure!(
            r.app_subscription_id == id,
            "the receipt names {}",
            r.app_subscription_id
        );
        Ok(r)
    };
    let first = check(&sub.receipt().await?)?;
    ensure!(
        sub.state().await? == "active" && first.entitled && first.periods_paid == 1,
        "after Subscribe: {} (entitled {}, {} periods paid)",
        sub.state().await?,
        first.entitled,
        first.periods_paid
    );
    let end = sub.current_period_end().await?;
    println!(
        "  Subscribe({plan}, {price} a week) → {path}: active, first week paid, renews at {}, \
         receipt verified",
        time_text(end)
    );
    // The server renews it by itself when the week is over: on the sandbox's clock,
    // moved on a week here (nobody waits a week).
    let mut changed = sub.receive_changed().await?;
    http.post(format!("{}/sandbox/v1/clock/advance", stack.sandbox_url()))
        .json(&serde_json::json!({"seconds": WEEK}))
        .send()
        .await?
        .error_for_status()?;
    println!("  the sandbox's clock moves on a week");
    let signal = timed(
        "waiting for the renewal",
        futures_util::StreamExt::next(&mut changed),
    )
    .await?
    .context("the Changed signals ended")?;
    let args = signal.args()?;
    ensure!(
        (*args.state(), *args.event()) == ("active", "renewed"),
        "Changed({}, {}), expected (active, renewed)",
        args.state(),
        args.event()
    );
    let renewed = check(&sub.receipt().await?)?;
    ensure!(
        renewed.periods_paid == 2 && sub.current_period_end().await? == end + WEEK,
        "after the renewal: {} periods paid",
        renewed.periods_paid
    );
    println!(
        "  Changed(active, renewed): the merchant server charged the second week with the \
         grant it holds for this subscription only; receipt verified (2 periods paid)"
    );
    let state = timed("Cancel", sub.cancel(std::collections::HashMap::new())).await??;
    ensure!(state == "cancelled", "Cancel → {state}");
    ensure!(
        sub.entitled().await? && sub.next_charge_at().await? == 0,
        "a cancelled subscription keeps access to the period's end and is not charged again"
    );
    println!(
        "  Cancel → cancelled: no more charges, access kept until {}",
        time_text(end + WEEK)
    );
    Ok(agent)
}

/// An AMS amount (`{"currency": "HKD", "value": "4900"}`, minor units as text) for
/// people.
fn ledger_money(amount: &serde_json::Value) -> String {
    let currency = amount["currency"].as_str().unwrap_or("?");
    match amount["value"].as_str().and_then(|v| v.parse::<i64>().ok()) {
        Some(minor) => money_text(minor, currency),
        None => format!("{currency} ?"),
    }
}
