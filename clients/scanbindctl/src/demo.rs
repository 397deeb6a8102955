//! `scanbindctl demo`: the Scan to Bind life on one machine, against an embedded sandbox.
//!
//! The pieces are real: the sandbox is the same AMS-compatible server the tests use,
//! every AMS call is signed by a merchant key and every response verified with the
//! sandbox's key (`scanbind-ams`), and the notifications the sandbox posts are verified
//! by a receiver on loopback before the demo acts on them. Only the phone is simulated
//! (through the sandbox's control API) unless `--phone` is given, in which case the
//! demo waits for a real phone on the LAN to open the QR and approve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use scanbind_ams::client::Client;
use scanbind_ams::model::{
    ApplyTokenRequest, AuthorizationNotification, AuthorizationNotifyType, ConsultRequest,
    InquiryPaymentRequest, InquiryRefundRequest, Order, PayRequest, PaymentNotification,
    PaymentStatus, RefundNotification, RefundRequest, RefundStatus, RevokeRequest, SecretString,
};
use scanbind_ams::notify::{ACK_BODY, NotificationHeaders, NotificationVerifier};
use scanbind_ams::wallet::Wallet;
use scanbind_ams::{Money, PrivateKey, ResultCode};
use scanbind_sandbox::Sandbox;
use tokio::sync::mpsc;

/// Options of `scanbindctl demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Wallet to bind (customerBelongsTo), e.g. ALIPAY_HK, GCASH, DANA.
    #[arg(long, default_value = "ALIPAY_HK")]
    wallet: String,
    /// Amount of the one-click payment, in major units of the wallet's currency.
    #[arg(long, default_value = "49.00")]
    amount: String,
    /// Wait for a real phone to scan the QR (open the URL) instead of simulating the scan.
    #[arg(long)]
    phone: bool,
    /// Address the embedded sandbox listens on (use 0.0.0.0:PORT with --phone).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Origin the QR points at, e.g. http://192.168.1.20:8100 for a phone on the LAN.
    #[arg(long)]
    public_url: Option<String>,
}

const CLIENT_ID: &str = "SANDBOX_DEMO000001";

enum Event {
    Authorization(Box<AuthorizationNotification>),
    Payment(Box<PaymentNotification>),
    Refund(Box<RefundNotification>),
}

#[derive(Clone)]
struct Receiver {
    verifier: NotificationVerifier,
    events: mpsc::UnboundedSender<Event>,
}

/// Verifies one notification; acknowledges it only when it verified and parsed.
async fn receive(
    axum::extract::State(rx): axum::extract::State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let h = NotificationHeaders {
        client_id: get("client-id"),
        request_time: get("request-time"),
        signature: get("signature"),
    };
    let path = uri.path();
    let event = match path {
        "/notify/authorization" => rx
            .verifier
            .verify(path, h, &body)
            .map(|n| Event::Authorization(Box::new(n))),
        "/notify/payment" => rx
            .verifier
            .verify(path, h, &body)
            .map(|n| Event::Payment(Box::new(n))),
        "/notify/refund" => rx
            .verifier
            .verify(path, h, &body)
            .map(|n| Event::Refund(Box::new(n))),
        _ => return (StatusCode::NOT_FOUND, "unknown notification path"),
    };
    match event {
        Ok(event) => {
            // The receiver lives as long as the demo; a closed channel only means it ended.
            let _ = rx.events.send(event);
            (StatusCode::OK, ACK_BODY)
        }
        Err(err) => {
            eprintln!("  ! refused a notification: {err}");
            (StatusCode::BAD_REQUEST, "refused")
        }
    }
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<()> {
    let wallet = Wallet::parse(&args.wallet);
    let profile = wallet
        .scan_to_bind()
        .with_context(|| format!("{} is not a Scan to Bind wallet (try one of ALIPAY_HK, GCASH, DANA, KAKAOPAY, TNG, TRUEMONEY, ALIPAY_CN)", args.wallet))?;
    let amount = Money::parse_major(&args.amount, profile.currency).context("--amount")?;

    step("Keys");
    let merchant_key = Arc::new(PrivateKey::from_text(
        &scanbind_sandbox::keygen::generate_pkcs8_pem()?,
    )?);
    let sandbox_key = PrivateKey::from_text(&scanbind_sandbox::keygen::generate_pkcs8_pem()?)?;
    println!(
        "  merchant RSA-2048 key and sandbox (\"Alipay\") RSA-2048 key generated for this run"
    );

    step("Sandbox and notification receiver");
    let mut builder = Sandbox::builder(sandbox_key)
        .listen(args.listen)
        .merchant(CLIENT_ID, merchant_key.public_key());
    if let Some(url) = &args.public_url {
        builder = builder.public_url(url.clone());
    }
    let sandbox = builder
        .start()
        .await
        .context("starting the embedded sandbox")?;
    let (tx, mut events) = mpsc::unbounded_channel();
    let receiver = Receiver {
        verifier: NotificationVerifier::new(CLIENT_ID, sandbox.public_key().clone()),
        events: tx,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let notify_base = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(receive).with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "  sandbox (AMS API, control API, phone pages) at {}",
        sandbox.base_url()
    );
    println!("  merchant {CLIENT_ID} receives notifications at {notify_base}/notify/...");

    let client = Client::builder(CLIENT_ID, merchant_key, sandbox.public_key().clone())
        .base_url(sandbox.base_url())
        .build()?;
    let http = scanbind_ams::client::http_client_builder(Vec::new())?
        .no_proxy()
        .build()?;

    step(&format!(
        "Bind the {} wallet (Scan to Bind)",
        profile.display_name
    ));
    let auth_state = format!("demo-{}", std::process::id());
    let match_code = format!("{:04}", std::process::id() % 10_000);
    let mut consult = ConsultRequest::scan_to_bind(
        wallet.clone(),
        &auth_state,
        format!("{notify_base}/return"),
        format!("{notify_base}/notify/authorization"),
    );
    // The sandbox's wallet page shows these beside Approve (docs/sandbox.md), as the TV
    // shows the same match code: the user checks they approve the screen in front of them.
    consult.extend_info = Some(
        serde_json::json!({"merchantName": "scanbind demo games", "deviceName": "Living room TV", "matchCode": match_code})
            .to_string(),
    );
    let consult = client.call(&consult).await?;
    ensure!(
        consult.result.is_success(),
        "consult failed: {:?}",
        consult.result
    );
    let code_value = consult
        .auth_code_form
        .as_ref()
        .and_then(|f| f.qr_text())
        .context("consult returned no QR code value")?
        .to_owned();
    print_qr(&code_value)?;
    println!("  QR code value: {code_value}");
    println!(
        "  Device: Living room TV    match code: {match_code}    (single use, valid 15 minutes)"
    );

    if args.phone {
        println!("  Scan it with a phone on the same network and press Approve …");
    } else {
        println!("  Simulating the phone: scan and Approve");
        let scan: serde_json::Value = http
            .post(format!("{}/sandbox/v1/scan", sandbox.base_url()))
            .json(&serde_json::json!({"codeValue": code_value, "decision": "approve"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        println!("  phone: {}", scan["outcome"].as_str().unwrap_or("?"));
    }
    let wait = if args.phone {
        Duration::from_secs(15 * 60)
    } else {
        Duration::from_secs(30)
    };
    let auth = loop {
        match next_event(&mut events, wait).await? {
            Event::Authorization(n)
                if n.authorization_notify_type == AuthorizationNotifyType::AuthcodeCreated =>
            {
                break n;
            }
            _ => continue,
        }
    };
    ensure!(
        auth.auth_state.as_deref() == Some(auth_state.as_str()),
        "authState mismatch"
    );
    println!(
        "  notifyAuthorization AUTHCODE_CREATED received, signature verified (user {})",
        auth.user_login_id.as_deref().unwrap_or("?")
    );
    let auth_code = auth
        .auth_code
        .context("AUTHCODE_CREATED without authCode")?;
    let token = client
        .call(&ApplyTokenRequest::authorization_code(
            wallet.clone(),
            auth_code,
        ))
        .await?;
    ensure!(
        token.result.is_success(),
        "applyToken failed: {:?}",
        token.result
    );
    let access = token
        .access_token
        .clone()
        .context("applyToken returned no access token")?;
    println!(
        "  applyToken: access token issued (valid until {}), refresh token until {}",
        token.access_token_expiry_time.as_deref().unwrap_or("?"),
        token.refresh_token_expiry_time.as_deref().unwrap_or("?")
    );
    println!("  (tokens stay in this process; the demo never prints them)");

    step(&format!("One-click payment of {amount}"));
    let payment_request_id = format!("demo-pay-{}", std::process::id());
    let order = Order::new("order-0001", "Game add-on: 500 gems", amount.to_amount());
    let mut pay = PayRequest::agreement(
        &payment_request_id,
        order,
        amount.to_amount(),
        wallet.clone(),
        access.clone(),
    );
    pay.payment_notify_url = Some(format!("{notify_base}/notify/payment"));
    let paid = client.call(&pay).await?;
    ensure!(paid.result.is_success(), "pay failed: {:?}", paid.result);
    let payment_id = paid
        .payment_id
        .clone()
        .context("pay returned no paymentId")?;
    println!(
        "  pay: {} (paymentId {payment_id})",
        paid.result.result_code
    );
    let replay = client.call(&pay).await?;
    ensure!(
        replay.payment_id.as_deref() == Some(payment_id.as_str()),
        "the replayed pay returned another payment"
    );
    println!("  pay again with the same paymentRequestId: same payment returned, no second charge");
    loop {
        if let Event::Payment(n) = next_event(&mut events, Duration::from_secs(30)).await? {
            println!(
                "  notifyPayment {} received, signature verified",
                n.result.result_code
            );
            break;
        }
    }
    let inquiry = client
        .call(&InquiryPaymentRequest::by_payment_request_id(
            &payment_request_id,
        ))
        .await?;
    ensure!(
        inquiry.payment_status == Some(PaymentStatus::Success),
        "inquiry: {:?}",
        inquiry.payment_status
    );
    println!("  inquiryPayment: SUCCESS");

    step("Partial refund");
    let refund_amount = Money::from_minor(amount.currency(), amount.minor().get() / 2)?;
    let mut refund = RefundRequest::new(
        format!("demo-refund-{}", std::process::id()),
        &payment_id,
        refund_amount.to_amount(),
    );
    refund.refund_notify_url = Some(format!("{notify_base}/notify/refund"));
    refund.refund_reason = Some("demo: partial return".into());
    let refunded = client.call(&refund).await?;
    ensure!(
        refunded.result.is_success(),
        "refund failed: {:?}",
        refunded.result
    );
    let refund_id = refunded
        .refund_id
        .clone()
        .context("refund returned no refundId")?;
    println!("  refund {refund_amount}: {}", refunded.result.result_code);
    loop {
        if let Event::Refund(n) = next_event(&mut events, Duration::from_secs(30)).await? {
            println!(
                "  notifyRefund {} received, signature verified",
                n.refund_status
            );
            break;
        }
    }
    let refund_inquiry = client
        .call(&InquiryRefundRequest::by_refund_id(&refund_id))
        .await?;
    ensure!(
        refund_inquiry.refund_status == Some(RefundStatus::Success),
        "inquiryRefund: {:?}",
        refund_inquiry.refund_status
    );
    println!("  inquiryRefund: SUCCESS");

    step("Unbind");
    let revoked = client.call(&RevokeRequest::new(access.clone())).await?;
    ensure!(
        revoked.result.is_success(),
        "revoke failed: {:?}",
        revoked.result
    );
    println!("  revoke: {}", revoked.result.result_code);
    let mut after = PayRequest::agreement(
        format!("demo-pay-after-{}", std::process::id()),
        Order::new("order-0002", "after unbind", amount.to_amount()),
        amount.to_amount(),
        wallet,
        SecretString::new(access.expose()),
    );
    after.payment_notify_url = None;
    let refused = client.call(&after).await?;
    ensure!(
        refused.result.result_code == ResultCode::InvalidAccessToken,
        "pay after revoke: {:?}",
        refused.result
    );
    println!(
        "  pay with the revoked token: {} (as it must)",
        refused.result.result_code
    );

    step("Sandbox ledger (the exactly-once oracle)");
    let ledger: serde_json::Value = http
        .get(format!("{}/sandbox/v1/ledger", sandbox.base_url()))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut moved = 0;
    for p in ledger["payments"].as_array().into_iter().flatten() {
        let m = p["moneyMovements"].as_u64().unwrap_or(0);
        moved += m;
        println!(
            "  payment {:<28} {:<9} {} {:>8}  refunded {:>8}  money moved {m}×",
            p["paymentRequestId"].as_str().unwrap_or("?"),
            p["status"].as_str().unwrap_or("?"),
            p["amount"]["currency"].as_str().unwrap_or("?"),
            p["amount"]["value"].as_str().unwrap_or("?"),
            p["refunded"]["value"].as_str().unwrap_or("?"),
        );
    }
    for r in ledger["refunds"].as_array().into_iter().flatten() {
        println!(
            "  refund  {:<28} {:<9} {} {:>8}  money moved {}×",
            r["refundRequestId"].as_str().unwrap_or("?"),
            r["status"].as_str().unwrap_or("?"),
            r["amount"]["currency"].as_str().unwrap_or("?"),
            r["amount"]["value"].as_str().unwrap_or("?"),
            r["moneyMovements"].as_u64().unwrap_or(0),
        );
    }
    if moved != 1 {
        bail!("expected exactly one charge in the ledger, found {moved}");
    }
    println!(
        "\nDone: one binding, one charge (even though pay was sent twice), one refund, unbound."
    );
    println!(
        "Next in scanbind: the device daemon (scanbindd) and merchant server will sit between the app and this sandbox."
    );
    sandbox.shutdown().await;
    Ok(())
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<Event>, wait: Duration) -> Result<Event> {
    match tokio::time::timeout(wait, events.recv()).await {
        Ok(Some(event)) => Ok(event),
        Ok(None) => bail!("the notification receiver stopped"),
        Err(_) => bail!("no notification arrived within {} s", wait.as_secs()),
    }
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn print_qr(value: &str) -> Result<()> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::with_error_correction_level(value.as_bytes(), qrcode::EcLevel::M)?;
    // Light modules drawn as blocks: reads as dark-on-light on dark terminals.
    let text = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    println!("{text}");
    Ok(())
}
