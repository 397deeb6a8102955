//! Subscriptions (issue 27), end to end: the real server binary against the in-process
//! sandbox, on SQLite and PostgreSQL. The server follows the sandbox's clock
//! (`subscriptions.clock = "sandbox"`) and renews only when asked
//! (`subscriptions.automatic = false`, `POST /admin/v1/subscriptions/renewals`, which
//! answers when the pass is done), so a test advances the sandbox clock by a period and
//! runs one pass: no waiting, no sleeps.

mod common;

use common::*;
use scanbind_device_api::receipt::{ReceiptKeySet, verify_subscription_receipt};
use scanbind_device_api::types::{
    Event, EventEnvelope, PaymentStatus, Subscription, SubscriptionStatus,
};
use serde_json::{Value, json};

const DAY: i64 = 86_400;
const APP: &str = "org.example.SofaTv";
const USER: &str = "alipay_hk_user";

impl Drop for T {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.server.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- server log (last lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

struct T {
    world: World,
    server: ServerProc,
    device: Device,
    binding: String,
    sealed: String,
    events: EventStream,
    admin_key: String,
    ops: reqwest::Client,
}

/// One AMS `pay` request as the server sent it.
#[derive(Debug, Clone)]
struct SentPay {
    path: String,
    client_id: String,
    time: String,
    signature: String,
    body: String,
}

type Captured = std::sync::Arc<std::sync::Mutex<Vec<SentPay>>>;

/// A pass-through proxy to the sandbox that keeps every `pay` request it forwards, bytes
/// and headers as sent; its base URL.
async fn capturing_proxy(sandbox: String, captured: Captured) -> String {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use axum::response::Response;
    let upstream = http();
    let handler = move |req: Request| {
        let (upstream, sandbox, captured) = (upstream.clone(), sandbox.clone(), captured.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = to_bytes(body, usize::MAX).await.unwrap();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let header = |n: &str| {
                parts
                    .headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            if path.ends_with("/v1/payments/pay") {
                captured.lock().unwrap().push(SentPay {
                    path: path.clone(),
                    client_id: header("client-id"),
                    time: header("request-time"),
                    signature: header("signature"),
                    body: String::from_utf8(bytes.to_vec()).unwrap(),
                });
            }
            let mut out = upstream.request(parts.method.clone(), format!("{sandbox}{path}"));
            for (k, v) in &parts.headers {
                if k != "host" && k != "content-length" {
                    out = out.header(k, v);
                }
            }
            let resp = out.body(bytes.to_vec()).send().await.unwrap();
            let mut answer = Response::builder().status(resp.status().as_u16());
            for (k, v) in resp.headers() {
                if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                    answer = answer.header(k.as_str(), v.as_bytes());
                }
            }
            answer
                .body(Body::from(resp.bytes().await.unwrap()))
                .unwrap()
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A world, a server on the sandbox clock with manual renewals (`extra` env added), and
/// a device bound to AlipayHK with its event stream open.
async fn setup(backend: Backend, extra: &[(&str, &str)]) -> T {
    setup_via(backend, extra, None).await
}

/// [`setup`], the server's AMS traffic going through [`capturing_proxy`] when `capture`.
async fn setup_via(backend: Backend, extra: &[(&str, &str)], capture: Option<Captured>) -> T {
    let mut world = world(backend).await;
    if let Some(c) = capture {
        let proxy = capturing_proxy(world.sandbox.base_url().to_owned(), c).await;
        world.set_ams_base_url(proxy);
    }
    let mut env = vec![
        ("SCANBIND_SERVER_SUBSCRIPTIONS_CLOCK", "sandbox"),
        ("SCANBIND_SERVER_SUBSCRIPTIONS_AUTOMATIC", "false"),
    ];
    env.extend_from_slice(extra);
    let server = world.spawn_server(&env);
    let device = Device::new(&server.base);
    device.register().await;
    let mut events = device.events(None).await;
    let start = device
        .ok("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
        .await;
    world
        .scan(start["codeValue"].as_str().unwrap(), "approve")
        .await;
    let (binding, sealed) = loop {
        let ev = events.next().await;
        if let Event::BindingCompleted(b) = ev.event {
            break (b.binding_id, b.sealed_tokens.unwrap());
        }
    };
    let out = world
        .server_cli(&[
            "admin", "--json", "keys", "create", "--name", "ops", "--scope", "admin",
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    T {
        world,
        server,
        device,
        binding,
        sealed,
        events,
        admin_key: v["key"].as_str().unwrap().to_owned(),
        ops: http(),
    }
}

impl T {
    fn body(&self, id: &str, period: &str, value: i64) -> Value {
        json!({"appId": APP, "appSubscriptionId": id, "bindingId": self.binding,
               "sealedTokens": self.sealed, "plan": "Sofa TV Premium",
               "amount": {"currency": "HKD", "value": value}, "period": period})
    }

    async fn subscribe(&self, body: Value) -> Subscription {
        let v = self
            .device
            .ok("POST", "/v1/subscriptions", Some(body))
            .await;
        serde_json::from_value(v).unwrap()
    }

    async fn get(&self, id: &str) -> Subscription {
        let v = self
            .device
            .ok("GET", &format!("/v1/subscriptions/{id}"), None)
            .await;
        serde_json::from_value(v).unwrap()
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.server.admin);
        let mut req = if method == "POST" {
            self.ops.post(url)
        } else {
            self.ops.get(url)
        };
        req = req.header("authorization", format!("Bearer {}", self.admin_key));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Runs one renewal pass and returns its summary.
    async fn pass(&self) -> Value {
        let (s, v) = self
            .admin("POST", "/admin/v1/subscriptions/renewals", None)
            .await;
        assert_eq!(s, 200, "renewals: {v}");
        v
    }

    /// `scanbind-server admin --json <args>` against this server's operator listener.
    /// (Async: the sandbox runs on this test's runtime and must keep answering.)
    async fn cli(&self, args: &[&str]) -> Value {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_scanbind-server"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SCANBIND_SERVER_") || k.starts_with("SCANBIND_ADMIN") {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .env("SCANBIND_LOG", "warn")
            .env("SCANBIND_ADMIN_KEY", &self.admin_key)
            .args(["admin", "--json", "--url", &self.server.admin])
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    async fn advance(&self, seconds: i64) {
        self.world
            .control_post("/sandbox/v1/clock/advance", json!({"seconds": seconds}))
            .await;
    }

    /// The sandbox's payments (every pay it took, whatever the outcome).
    async fn ledger_payments(&self) -> Vec<Value> {
        self.world.ledger().await["payments"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn set_balance(&self, minor: i64) {
        self.world
            .control_post(
                "/sandbox/v1/users",
                json!({"user": USER, "wallet": "ALIPAY_HK", "balance": minor.to_string()}),
            )
            .await;
    }

    async fn next_of(&mut self, kind: &str) -> EventEnvelope {
        loop {
            let e = self.events.next().await;
            if e.event.kind() == kind {
                return e;
            }
        }
    }

    async fn receipt_keys(&self) -> ReceiptKeySet {
        self.device
            .http
            .get(format!("{}/v1/receipt-keys", self.device.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn sub_of(e: &EventEnvelope) -> &Subscription {
    match &e.event {
        Event::SubscriptionRenewed(s)
        | Event::SubscriptionRenewalFailed(s)
        | Event::SubscriptionGrace(s)
        | Event::SubscriptionExpired(s)
        | Event::SubscriptionCancelled(s) => s,
        other => panic!("not a subscription event: {other:?}"),
    }
}

fn succeeded_in_ledger(payments: &[Value], prid: &str) -> usize {
    payments
        .iter()
        .filter(|p| p["paymentRequestId"] == prid && p["status"] == "SUCCESS")
        .count()
}

/// First charge at subscribe, three renewals a period apart, a duplicate pass that
/// charges once, a verified subscription receipt, an operator refund of one period, and
/// a cancel that keeps access to the period's end and then charges no more.
async fn renewals_and_cancel(backend: Backend) {
    let mut t = setup(backend, &[]).await;
    let s = t.subscribe(t.body("sofa-1", "P1W", 6800)).await;
    assert_eq!(s.status, SubscriptionStatus::Active, "{s:?}");
    assert!(s.entitled);
    assert_eq!(s.periods_paid, 1);
    assert_eq!(s.charges.len(), 1);
    assert_eq!(s.charges[0].period_index, 0);
    assert_eq!(t.ledger_payments().await.len(), 1);
    assert_eq!(
        succeeded_in_ledger(&t.ledger_payments().await, &s.charges[0].payment_request_id),
        1
    );
    let keys = t.receipt_keys().await;
    let r = verify_subscription_receipt(s.receipt.as_deref().unwrap(), &keys).unwrap();
    assert_eq!(
        (
            r.state.as_str(),
            r.entitled,
            r.periods_paid,
            r.plan.as_str()
        ),
        ("active", true, 1, "Sofa TV Premium")
    );
    assert_eq!(r.app_subscription_id, "sofa-1");
    // A payment receipt verifier refuses a subscription receipt (another typ).
    assert!(
        scanbind_device_api::receipt::verify_receipt(s.receipt.as_deref().unwrap(), &keys).is_err()
    );
    let first_end = r.period_end.unwrap();
    let first = t.next_of("subscription.renewed").await;
    assert_eq!(sub_of(&first).periods_paid, 1);

    // Nothing is due before the period's end.
    let p = t.pass().await;
    assert_eq!(p["charges"], 0, "{p}");
    assert_eq!(t.ledger_payments().await.len(), 1);

    let mut last_end = first_end;
    for renewal in 1..=3_u32 {
        t.advance(7 * DAY).await;
        if renewal == 3 {
            // From the operator's terminal.
            let p = t.cli(&["subscriptions", "renew"]).await;
            assert_eq!(p["charges"], 1, "{p}");
        } else if renewal == 2 {
            // Two passes at once: the period is charged once.
            let (a, b) = tokio::join!(t.pass(), t.pass());
            assert_eq!(
                a["charges"].as_i64().unwrap() + b["charges"].as_i64().unwrap(),
                1,
                "{a} {b}"
            );
            // And one more after it: nothing left.
            assert_eq!(t.pass().await["charges"], 0);
        } else {
            let p = t.pass().await;
            assert_eq!(p["charges"], 1, "renewal {renewal}: {p}");
        }
        let ev = t.next_of("subscription.renewed").await;
        let v = sub_of(&ev);
        assert_eq!(v.periods_paid, renewal + 1, "{v:?}");
        assert_eq!(v.status, SubscriptionStatus::Active);
        let r = verify_subscription_receipt(v.receipt.as_deref().unwrap(), &keys).unwrap();
        assert_eq!(r.period_end.unwrap(), last_end + 7 * DAY);
        last_end = r.period_end.unwrap();
    }
    let s = t.get(&s.subscription_id).await;
    assert_eq!(s.charges.len(), 4);
    let shown = t.cli(&["subscriptions", "show", &s.subscription_id]).await;
    assert_eq!(shown["periodsPaid"], 4, "{shown}");
    assert_eq!(shown["charges"].as_array().unwrap().len(), 4);
    let ledger = t.ledger_payments().await;
    assert_eq!(ledger.len(), 4, "one pay per period: {ledger:?}");
    for c in &s.charges {
        assert_eq!(succeeded_in_ledger(&ledger, &c.payment_request_id), 1);
    }
    let prids: std::collections::HashSet<_> =
        s.charges.iter().map(|c| &c.payment_request_id).collect();
    assert_eq!(prids.len(), 4);

    // The operator refunds period 2 through the refund path.
    let (st, v) = t
        .admin(
            "POST",
            &format!(
                "/admin/v1/subscriptions/{}/periods/2/refunds",
                s.subscription_id
            ),
            Some(json!({"refundId": "goodwill-2", "reason": "outage in week 3"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "succeeded", "{v}");
    let ledger = t.ledger_payments().await;
    let p2 = ledger
        .iter()
        .find(|p| p["paymentRequestId"] == s.charges[2].payment_request_id.as_str())
        .unwrap();
    assert_eq!(p2["refunded"]["value"], "6800", "{p2}");
    // A period never paid cannot be refunded.
    let (st, v) = t
        .admin(
            "POST",
            &format!(
                "/admin/v1/subscriptions/{}/periods/9/refunds",
                s.subscription_id
            ),
            Some(json!({"refundId": "x", "reason": "nope"})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("invalid_state"))
    );

    // Cancel: access until the period's end, no more charges.
    let c: Subscription = serde_json::from_value(
        t.device
            .ok(
                "POST",
                &format!("/v1/subscriptions/{}/cancel", s.subscription_id),
                None,
            )
            .await,
    )
    .unwrap();
    assert_eq!(c.status, SubscriptionStatus::Cancelled);
    assert!(c.entitled);
    assert!(c.next_charge_at.is_none());
    t.next_of("subscription.cancelled").await;
    let (_, admin_view) = t
        .admin(
            "GET",
            &format!("/admin/v1/subscriptions/{}", s.subscription_id),
            None,
        )
        .await;
    assert_eq!(admin_view["grantHeld"], false, "{admin_view}");
    // Cancelling again changes nothing.
    let again: Subscription = serde_json::from_value(
        t.device
            .ok(
                "POST",
                &format!("/v1/subscriptions/{}/cancel", s.subscription_id),
                None,
            )
            .await,
    )
    .unwrap();
    assert_eq!(again.status, SubscriptionStatus::Cancelled);
    t.advance(7 * DAY).await;
    assert_eq!(t.pass().await["charges"], 0);
    let ev = t.next_of("subscription.expired").await;
    assert!(!sub_of(&ev).entitled);
    assert_eq!(t.ledger_payments().await.len(), 4, "no charge after cancel");
    let s = t.get(&s.subscription_id).await;
    assert_eq!(s.status, SubscriptionStatus::Expired);
    let r = verify_subscription_receipt(s.receipt.as_deref().unwrap(), &keys).unwrap();
    assert_eq!((r.state.as_str(), r.entitled), ("expired", false));
}

/// A trial charges nothing until its end; the first charge is then the introductory
/// price, and the next one the full price.
async fn trial_then_intro_price(backend: Backend) {
    let mut t = setup(backend, &[]).await;
    let mut body = t.body("sofa-trial", "P1M", 6800);
    body["trial"] = json!("P1W");
    body["introductory"] = json!({"amountMinor": 100, "periods": 1});
    let s = t.subscribe(body).await;
    assert_eq!(s.status, SubscriptionStatus::Trial);
    assert!(s.entitled);
    assert!(s.charges.is_empty());
    assert_eq!(s.next_charge_amount.as_ref().unwrap().value, 100);
    assert!(
        t.ledger_payments().await.is_empty(),
        "nothing charged in the trial"
    );
    assert_eq!(t.pass().await["charges"], 0);
    t.advance(7 * DAY).await;
    assert_eq!(t.pass().await["charges"], 1);
    let ev = t.next_of("subscription.renewed").await;
    let v = sub_of(&ev);
    assert_eq!(v.status, SubscriptionStatus::Active);
    assert_eq!(v.periods_paid, 1);
    assert_eq!(v.charges[0].amount.value, 100);
    assert_eq!(v.next_charge_amount.as_ref().unwrap().value, 6800);
    let ledger = t.ledger_payments().await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["amount"]["value"], "100");
}

/// A renewal refused for insufficient balance enters grace (access kept), the retry a
/// day later succeeds; another subscription whose retries all fail expires.
async fn grace_recovers_then_one_expires(backend: Backend) {
    let mut t = setup(
        backend,
        &[(
            "SCANBIND_SERVER_SUBSCRIPTIONS_RETRY_AFTER_HOURS",
            "[24, 48]",
        )],
    )
    .await;
    let s = t.subscribe(t.body("sofa-grace", "P1W", 6800)).await;
    assert_eq!(s.status, SubscriptionStatus::Active);
    t.set_balance(10).await;
    t.advance(7 * DAY).await;
    assert_eq!(t.pass().await["charges"], 1);
    let failed = t.next_of("subscription.renewal_failed").await;
    assert!(
        sub_of(&failed)
            .reason
            .as_deref()
            .unwrap()
            .contains("USER_BALANCE_NOT_ENOUGH"),
        "{failed:?}"
    );
    let grace = t.next_of("subscription.grace").await;
    let g = sub_of(&grace);
    assert_eq!(g.status, SubscriptionStatus::Grace);
    assert!(g.entitled, "access continues in grace");
    assert_eq!(g.periods_paid, 1);
    // Nothing before the retry time.
    assert_eq!(t.pass().await["charges"], 0);
    t.set_balance(1_000_000).await;
    t.advance(DAY).await;
    assert_eq!(t.pass().await["charges"], 1);
    let ev = t.next_of("subscription.renewed").await;
    let v = sub_of(&ev);
    assert_eq!(v.status, SubscriptionStatus::Active);
    assert_eq!(v.periods_paid, 2);
    let last = v.charges.last().unwrap();
    assert_eq!((last.period_index, last.attempt), (1, 1));
    assert_ne!(
        v.charges[1].payment_request_id,
        v.charges[2].payment_request_id
    );
    // This one is done; cancel it so it stays out of the way.
    t.device
        .ok(
            "POST",
            &format!("/v1/subscriptions/{}/cancel", s.subscription_id),
            None,
        )
        .await;

    // Another subscription: every attempt fails (period end, +24 h, +48 h), then expired.
    let e = t.subscribe(t.body("sofa-expire", "P1W", 6800)).await;
    assert_eq!(e.status, SubscriptionStatus::Active);
    t.set_balance(10).await;
    t.advance(7 * DAY).await;
    assert_eq!(t.pass().await["charges"], 1);
    assert_eq!(
        t.get(&e.subscription_id).await.status,
        SubscriptionStatus::Grace
    );
    t.advance(DAY).await;
    assert_eq!(t.pass().await["charges"], 1);
    assert_eq!(
        t.get(&e.subscription_id).await.status,
        SubscriptionStatus::Grace
    );
    t.advance(DAY).await;
    assert_eq!(t.pass().await["charges"], 1);
    let x = t.get(&e.subscription_id).await;
    assert_eq!(x.status, SubscriptionStatus::Expired, "{x:?}");
    assert!(!x.entitled);
    assert_eq!(x.charges.len(), 4);
    assert!(x.reason.as_deref().unwrap().contains("3 times"), "{x:?}");
    loop {
        let ev = t.next_of("subscription.expired").await;
        if sub_of(&ev).subscription_id == e.subscription_id {
            break;
        }
    }
    t.advance(7 * DAY).await;
    let before = t.ledger_payments().await.len();
    assert_eq!(t.pass().await["charges"], 0);
    assert_eq!(
        t.ledger_payments().await.len(),
        before,
        "no charge once expired"
    );
}

/// Unbinding in the wallet app (`TOKEN_CANCELED`) ends renewals at once: cancelled,
/// the grant deleted, no charge at the period's end.
async fn wallet_unbind_stops_renewals(backend: Backend) {
    let mut t = setup(backend, &[]).await;
    let s = t.subscribe(t.body("sofa-unbind", "P1W", 6800)).await;
    assert_eq!(s.status, SubscriptionStatus::Active);
    assert_eq!(t.world.unbind_in_wallet(USER).await, 1);
    let ev = t.next_of("subscription.cancelled").await;
    let c = sub_of(&ev);
    assert_eq!(c.status, SubscriptionStatus::Cancelled);
    assert!(
        c.reason.as_deref().unwrap().contains("TOKEN_CANCELED"),
        "{c:?}"
    );
    assert!(c.entitled, "paid time is kept");
    let (_, v) = t
        .admin(
            "GET",
            &format!("/admin/v1/subscriptions/{}", s.subscription_id),
            None,
        )
        .await;
    assert_eq!(v["grantHeld"], false, "{v}");
    t.advance(7 * DAY).await;
    assert_eq!(t.pass().await["charges"], 0);
    assert_eq!(t.ledger_payments().await.len(), 1);
    assert_eq!(
        t.get(&s.subscription_id).await.status,
        SubscriptionStatus::Expired
    );
}

/// Bad input: each a typed error, and nothing changes.
async fn bad_input(backend: Backend) {
    let t = setup(backend, &[]).await;
    let refused = |expect_status: u16, expect_code: &'static str| {
        move |(status, v): (u16, Value)| {
            assert_eq!(status, expect_status, "{v}");
            assert_eq!(v["error"]["code"], expect_code, "{v}");
        }
    };
    let post = |body: Value| t.device.send("POST", "/v1/subscriptions", Some(body));
    refused(400, "bad_request")(post(t.body("b1", "P2M", 6800)).await);
    refused(400, "bad_request")(post(t.body("b1", "monthly", 6800)).await);
    let mut b = t.body("b1", "P1M", 6800);
    b["trial"] = json!("P5D");
    refused(400, "bad_request")(post(b).await);
    refused(400, "amount_invalid")(post(t.body("b1", "P1M", 5_000_001)).await);
    refused(400, "amount_invalid")(post(t.body("b1", "P1M", 0)).await);
    let mut b = t.body("b1", "P1M", 6800);
    b["amount"]["currency"] = json!("USD");
    refused(400, "amount_invalid")(post(b).await);
    let mut b = t.body("b1", "P1M", 6800);
    b["introductory"] = json!({"amountMinor": 6800, "periods": 1});
    refused(400, "amount_invalid")(post(b).await);
    let mut b = t.body("b1", "P1M", 6800);
    b["introductory"] = json!({"amountMinor": 100, "periods": 13});
    refused(400, "bad_request")(post(b).await);
    let mut b = t.body("b1", "P1M", 6800);
    b["sealedTokens"] = json!("sbt1.x.y");
    refused(403, "token_invalid")(post(b).await);
    let mut b = t.body("b1", "P1M", 6800);
    b["appSubscriptionId"] = json!("");
    refused(400, "bad_request")(post(b).await);
    let mut b = t.body("b1", "P1M", 6800);
    b["bindingId"] = json!("bnd_nope");
    refused(404, "not_found")(post(b).await);
    assert!(t.ledger_payments().await.is_empty(), "nothing charged");
    let list = t.device.ok("GET", "/v1/subscriptions", None).await;
    assert_eq!(list["subscriptions"], json!([]));

    // The id reused: same terms answer the same subscription, other terms conflict.
    let s = t.subscribe(t.body("b1", "P1M", 6800)).await;
    let (status, again) = t
        .device
        .send("POST", "/v1/subscriptions", Some(t.body("b1", "P1M", 6800)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["subscriptionId"], s.subscription_id.as_str());
    refused(409, "idempotency_conflict")(post(t.body("b1", "P1M", 9900)).await);
    refused(409, "idempotency_conflict")(post(t.body("b1", "P1Y", 6800)).await);
    assert_eq!(t.ledger_payments().await.len(), 1, "one charge");
    let list = t
        .device
        .ok("GET", &format!("/v1/subscriptions?appId={APP}"), None)
        .await;
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1);
    assert_eq!(list["subscriptions"][0]["amount"]["value"], 6800);
    let other_app = t
        .device
        .ok("GET", "/v1/subscriptions?appId=org.example.Other", None)
        .await;
    assert_eq!(other_app["subscriptions"], json!([]));
    refused(400, "bad_request")(
        t.device
            .send("GET", "/v1/subscriptions?colour=blue", None)
            .await,
    );

    // Another device cannot see or cancel it.
    let stranger = Device::new(&t.server.base);
    stranger.register().await;
    let path = format!("/v1/subscriptions/{}/cancel", s.subscription_id);
    refused(404, "not_found")(stranger.send("POST", &path, None).await);
    refused(404, "not_found")(
        stranger
            .send(
                "GET",
                &format!("/v1/subscriptions/{}", s.subscription_id),
                None,
            )
            .await,
    );
    refused(404, "not_found")(
        t.device
            .send("POST", "/v1/subscriptions/sub_nope/cancel", None)
            .await,
    );
    refused(404, "not_found")(
        t.device
            .send("POST", "/v1/subscriptions/..%2F/cancel", None)
            .await,
    );
    // Scoped to an app (the daemon names the caller): another app's is not found.
    let other = format!(
        "/v1/subscriptions/{}/cancel?appId=org.example.Other",
        s.subscription_id
    );
    refused(404, "not_found")(t.device.send("POST", &other, None).await);
    refused(404, "not_found")(
        t.device
            .send(
                "GET",
                &format!(
                    "/v1/subscriptions/{}?appId=org.example.Other",
                    s.subscription_id
                ),
                None,
            )
            .await,
    );
    refused(400, "bad_request")(
        t.device
            .send(
                "GET",
                &format!("/v1/subscriptions/{}?colour=blue", s.subscription_id),
                None,
            )
            .await,
    );
    let own = t
        .device
        .ok(
            "GET",
            &format!("/v1/subscriptions/{}?appId={APP}", s.subscription_id),
            None,
        )
        .await;
    assert_eq!(own["status"], "active");
    assert_eq!(
        t.get(&s.subscription_id).await.status,
        SubscriptionStatus::Active
    );

    // The operator: unknown ids, bad filters, and a cancel that needs a reason.
    let (st, v) = t
        .admin("GET", "/admin/v1/subscriptions/sub_nope", None)
        .await;
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (st, _) = t
        .admin("GET", "/admin/v1/subscriptions?status=maybe", None)
        .await;
    assert_eq!(st, 400);
    let cancel = format!("/admin/v1/subscriptions/{}/cancel", s.subscription_id);
    let (st, _) = t.admin("POST", &cancel, Some(json!({"reason": ""}))).await;
    assert_eq!(st, 400);
    let (st, v) = t
        .admin("POST", &cancel, Some(json!({"reason": "chargeback"})))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["deviceId"], t.device.key.device_id().as_str());
    let (_, list) = t
        .admin("GET", "/admin/v1/subscriptions?status=cancelled", None)
        .await;
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1);

    // A first charge the wallet refuses: the subscription ends at once, no access.
    t.set_balance(10).await;
    let poor = t.subscribe(t.body("b-poor", "P1M", 6800)).await;
    assert_eq!(poor.status, SubscriptionStatus::Expired, "{poor:?}");
    assert!(!poor.entitled);
    assert!(
        poor.reason
            .as_deref()
            .unwrap()
            .contains("USER_BALANCE_NOT_ENOUGH"),
        "{poor:?}"
    );
    assert_eq!(poor.charges.len(), 1);
    assert_eq!(poor.charges[0].status, PaymentStatus::Failed);
    assert!(poor.next_charge_at.is_none());
    let (_, v) = t
        .admin(
            "GET",
            &format!("/admin/v1/subscriptions/{}", poor.subscription_id),
            None,
        )
        .await;
    assert_eq!(v["grantHeld"], false, "{v}");
}

/// kill -9 of the server while a renewal's pay is at Alipay (the money moved, the answer
/// never came): after the restart the payment engine learns the outcome, the next pass
/// applies it, and the period is charged once.
async fn kill_9_during_renewal_charges_once(backend: Backend) {
    let mut t = setup(backend, &[]).await;
    let s = t.subscribe(t.body("sofa-crash", "P1W", 6800)).await;
    assert_eq!(s.status, SubscriptionStatus::Active);
    t.advance(7 * DAY).await;
    // The next pay takes effect at the sandbox and is never answered, and its
    // notification is dropped (else it would settle the charge and end the hung call).
    t.world
        .arm_fault(json!({"endpoint": "pay", "kind": "hang", "processed": true, "count": 1}))
        .await;
    t.world
        .arm_fault(json!({"endpoint": "notifications", "kind": "drop", "count": 1}))
        .await;
    let url = format!("{}/admin/v1/subscriptions/renewals", t.server.admin);
    let auth = format!("Bearer {}", t.admin_key);
    let ops = t.ops.clone();
    let pass =
        tokio::spawn(async move { ops.post(url).header("authorization", auth).send().await });
    let world = &t.world;
    eventually(
        "the renewal's pay reached the sandbox and moved money",
        || async {
            let ledger = world.ledger().await;
            ledger["payments"]
                .as_array()
                .is_some_and(|p| p.iter().filter(|p| p["status"] == "SUCCESS").count() == 2)
        },
    )
    .await;
    t.server.kill();
    assert!(
        pass.await.unwrap().is_err(),
        "the pass died with the server"
    );
    let r = t
        .world
        .http
        .delete(format!("{}/sandbox/v1/faults", t.world.sandbox.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    t.server = t.world.spawn_server(&[
        ("SCANBIND_SERVER_SUBSCRIPTIONS_CLOCK", "sandbox"),
        ("SCANBIND_SERVER_SUBSCRIPTIONS_AUTOMATIC", "false"),
    ]);
    // The restarted engine inquires the payment in flight and finds it paid.
    let ops = &t;
    let path = format!("/admin/v1/subscriptions/{}", s.subscription_id);
    eventually(
        "the renewal's payment is known to have succeeded",
        || async {
            let (_, v) = ops.admin("GET", &path, None).await;
            v["charges"][1]["status"] == "succeeded"
        },
    )
    .await;
    let p = t.pass().await;
    assert_eq!(p["charges"], 0, "nothing charged again: {p}");
    let (_, v) = t
        .admin(
            "GET",
            &format!("/admin/v1/subscriptions/{}", s.subscription_id),
            None,
        )
        .await;
    assert_eq!(v["status"], "active", "{v}");
    assert_eq!(v["periodsPaid"], 2, "{v}");
    assert_eq!(v["charges"].as_array().unwrap().len(), 2, "{v}");
    let ledger = t.ledger_payments().await;
    assert_eq!(ledger.len(), 2, "one pay per period: {ledger:?}");
    assert_eq!(t.pass().await["charges"], 0);
}

/// The official Python SDK checks a renewal's `pay` exactly as the server sent it: its
/// `signature_tool.verify` accepts the signature over the bytes sent, and its own
/// `AlipayPayRequest` model reads the body and writes back the same JSON (every field one
/// the SDK knows, spelled and shaped as it does). The `paymentRequestId` is the one the
/// subscription names for period 1.
async fn sdk_checks_the_renewal_pay_request(backend: Backend) {
    let captured: Captured = Default::default();
    let t = setup_via(backend, &[], Some(captured.clone())).await;
    let s = t.subscribe(t.body("sofa-sdk", "P1W", 6800)).await;
    t.advance(7 * DAY).await;
    assert_eq!(t.pass().await["charges"], 1);
    let s = t.get(&s.subscription_id).await;
    assert_eq!(s.periods_paid, 2);
    let renewal = &s.charges[1];
    let sent = captured.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "the first charge and one renewal");
    let pay = sent
        .iter()
        .find(|p| p.body.contains(&renewal.payment_request_id))
        .expect("the renewal's pay went through the proxy")
        .clone();
    let public = scanbind_ams::PrivateKey::from_file(&t.world.dir.path().join("merchant.pem"))
        .unwrap()
        .public_key()
        .to_base64();
    let python = std::env::var_os("SCANBIND_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
        });
    assert!(
        python.exists(),
        "{} does not exist: run scripts/test (it creates .venv with global-open-sdk-python and exports SCANBIND_PYTHON)",
        python.display()
    );
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_renewal.py");
    let input = json!({"method": "POST", "path": pay.path, "client_id": pay.client_id, "time": pay.time,
        "signature_header": pay.signature, "body": pay.body, "public_key": public});
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "the SDK script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signature_ok"], true, "{v}");
    assert_eq!(
        v["round_trip_equal"], true,
        "sent {} vs SDK {}",
        pay.body, v["round_trip"]
    );
    assert_eq!(v["product_code"], "AGREEMENT_PAYMENT");
    assert_eq!(v["payment_method_type"], "ALIPAY_HK");
    let body: Value = serde_json::from_str(&pay.body).unwrap();
    assert_eq!(
        body["paymentRequestId"],
        renewal.payment_request_id.as_str()
    );
    assert_eq!(
        body["paymentAmount"],
        json!({"currency": "HKD", "value": "6800"})
    );
    assert_eq!(body["order"]["orderDescription"], "Sofa TV Premium");
    // The SDK rejects it once a byte of the body changes (the check can fail).
    let mut tampered = input.clone();
    tampered["body"] = json!(pay.body.replace("6800", "6801"));
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(tampered.to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signature_ok"], false, "{v}");
}

/// The device refreshes the binding's tokens: the next renewal pays with the new access
/// token (the grant was sealed again), not the one the subscription started with.
async fn refresh_reseals_the_grant(backend: Backend) {
    let captured: Captured = Default::default();
    let t = setup_via(backend, &[], Some(captured.clone())).await;
    t.subscribe(t.body("sofa-refresh", "P1W", 6800)).await;
    let refreshed = t
        .device
        .ok(
            "POST",
            &format!("/v1/bindings/{}/refresh", t.binding),
            Some(json!({"sealedTokens": t.sealed})),
        )
        .await;
    assert_ne!(refreshed["sealedTokens"], t.sealed.as_str());
    t.advance(7 * DAY).await;
    assert_eq!(t.pass().await["charges"], 1);
    let sent = captured.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let token = |p: &SentPay| {
        let v: Value = serde_json::from_str(&p.body).unwrap();
        v["paymentMethod"]["paymentMethodId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(
        token(&sent[0]),
        token(&sent[1]),
        "the renewal used the refreshed access token"
    );
    let ledger = t.ledger_payments().await;
    assert_eq!(
        ledger.iter().filter(|p| p["status"] == "SUCCESS").count(),
        2
    );
}

#[tokio::test]
async fn refresh_reseals_the_grant_sqlite() {
    refresh_reseals_the_grant(Backend::Sqlite).await;
}

#[tokio::test]
async fn refresh_reseals_the_grant_postgres() {
    refresh_reseals_the_grant(Backend::Postgres).await;
}

/// Two server processes on one PostgreSQL database (replicas) run renewal passes at the
/// same moment, three periods in a row: each period is charged once (the database's
/// lease and versioned updates decide, not the in-process turn).
#[tokio::test]
async fn two_replicas_charge_each_period_once() {
    let t = setup(Backend::Postgres, &[]).await;
    let b = t.world.spawn_server(&[
        ("SCANBIND_SERVER_SUBSCRIPTIONS_CLOCK", "sandbox"),
        ("SCANBIND_SERVER_SUBSCRIPTIONS_AUTOMATIC", "false"),
    ]);
    let s = t.subscribe(t.body("sofa-replicas", "P1W", 6800)).await;
    let pass_on = |admin: String| {
        let http = t.ops.clone();
        let auth = format!("Bearer {}", t.admin_key);
        async move {
            let r = http
                .post(format!("{admin}/admin/v1/subscriptions/renewals"))
                .header("authorization", auth)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    for period in 1..=3_i64 {
        t.advance(7 * DAY).await;
        let (x, y) = tokio::join!(pass_on(t.server.admin.clone()), pass_on(b.admin.clone()));
        assert_eq!(
            x["charges"].as_i64().unwrap() + y["charges"].as_i64().unwrap(),
            1,
            "period {period}: {x} {y}"
        );
        let (x, y) = tokio::join!(pass_on(t.server.admin.clone()), pass_on(b.admin.clone()));
        assert_eq!(
            x["charges"].as_i64().unwrap() + y["charges"].as_i64().unwrap(),
            0
        );
    }
    let s = t.get(&s.subscription_id).await;
    assert_eq!(s.periods_paid, 4, "{s:?}");
    assert_eq!(s.charges.len(), 4);
    let ledger = t.ledger_payments().await;
    assert_eq!(ledger.len(), 4, "one pay per period: {ledger:?}");
}

#[tokio::test]
async fn sdk_checks_the_renewal_pay_request_sqlite() {
    sdk_checks_the_renewal_pay_request(Backend::Sqlite).await;
}

#[tokio::test]
async fn kill_9_during_renewal_charges_once_sqlite() {
    kill_9_during_renewal_charges_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn kill_9_during_renewal_charges_once_postgres() {
    kill_9_during_renewal_charges_once(Backend::Postgres).await;
}

#[tokio::test]
async fn renewals_and_cancel_sqlite() {
    renewals_and_cancel(Backend::Sqlite).await;
}

#[tokio::test]
async fn renewals_and_cancel_postgres() {
    renewals_and_cancel(Backend::Postgres).await;
}

#[tokio::test]
async fn trial_then_intro_price_sqlite() {
    trial_then_intro_price(Backend::Sqlite).await;
}

#[tokio::test]
async fn trial_then_intro_price_postgres() {
    trial_then_intro_price(Backend::Postgres).await;
}

#[tokio::test]
async fn grace_recovers_then_one_expires_sqlite() {
    grace_recovers_then_one_expires(Backend::Sqlite).await;
}

#[tokio::test]
async fn grace_recovers_then_one_expires_postgres() {
    grace_recovers_then_one_expires(Backend::Postgres).await;
}

#[tokio::test]
async fn wallet_unbind_stops_renewals_sqlite() {
    wallet_unbind_stops_renewals(Backend::Sqlite).await;
}

#[tokio::test]
async fn wallet_unbind_stops_renewals_postgres() {
    wallet_unbind_stops_renewals(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_input_sqlite() {
    bad_input(Backend::Sqlite).await;
}

#[tokio::test]
async fn bad_input_postgres() {
    bad_input(Backend::Postgres).await;
}
