//! End to end: the real server binary against the in-process sandbox, on SQLite and on
//! PostgreSQL (the same tests, generated for each backend).

mod common;

use common::*;
use scanbind_device_api::receipt::{ReceiptKeySet, verify_receipt};
use scanbind_device_api::signing::new_nonce;
use scanbind_device_api::types::{Event, EventEnvelope, RefundStatus};
use serde_json::{Value, json};

/// Registers a device, binds a wallet through the sandbox phone, and returns the device,
/// the binding id and the sealed tokens.
async fn bound_device(world: &World, server: &ServerProc) -> (Device, String, String) {
    let device = Device::new(&server.base);
    device.register().await;
    let mut events = device.events(None).await;
    let start = device
        .ok("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
        .await;
    let binding_id = start["bindingId"].as_str().unwrap().to_owned();
    assert_eq!(start["deviceName"], "Living room TV");
    assert_eq!(start["matchCode"].as_str().unwrap().len(), 6);
    world
        .scan(start["codeValue"].as_str().unwrap(), "approve")
        .await;
    let ev = events.next().await;
    let Event::BindingCompleted(b) = ev.event else {
        panic!("expected binding.completed, got {ev:?}")
    };
    assert_eq!(b.binding_id, binding_id);
    let sealed = b
        .sealed_tokens
        .expect("sealed tokens on the completed event");
    (device, binding_id, sealed)
}

async fn receipt_keys(device: &Device) -> ReceiptKeySet {
    device
        .http
        .get(format!("{}/v1/receipt-keys", device.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn next_of(events: &mut EventStream, kind: &str) -> EventEnvelope {
    loop {
        let e = events.next().await;
        if e.event.kind() == kind {
            return e;
        }
    }
}

async fn full_flow(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let (device, binding_id, sealed) = bound_device(&world, &server).await;

    // The database never holds a token in the clear; the binding is active.
    let b = device
        .ok("GET", &format!("/v1/bindings/{binding_id}"), None)
        .await;
    assert_eq!(b["status"], "active");

    let mut events = device.events(None).await;
    let pay = json!({"appId": "org.example.Game", "appOrderId": "order-1", "bindingId": binding_id,
                     "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 1050}, "description": "Coins"});
    let p = device.ok("POST", "/v1/payments", Some(pay.clone())).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    let keys = receipt_keys(&device).await;
    let receipt = verify_receipt(p["receipt"].as_str().unwrap(), &keys).unwrap();
    assert_eq!(receipt.amount.value, 1050);
    assert_eq!(receipt.status, "succeeded");
    assert_eq!(receipt.app_order_id, "order-1");
    let ev = next_of(&mut events, "payment.result").await;
    let Event::PaymentResult(pe) = ev.event else {
        unreachable!()
    };
    assert_eq!(pe.payment_id, p["paymentId"].as_str().unwrap());

    // Same order id again: the same payment, one charge.
    let again = device.ok("POST", "/v1/payments", Some(pay.clone())).await;
    assert_eq!(again["paymentId"], p["paymentId"]);
    let mut changed = pay.clone();
    changed["amount"]["value"] = json!(2000);
    let (status, err) = device.send("POST", "/v1/payments", Some(changed)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    let ledger = world.ledger().await;
    let ours: Vec<&Value> = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["paymentRequestId"] == p["paymentRequestId"])
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["moneyMovements"], 1, "{ledger}");

    // Partial refund, then its inquiry.
    let pid = p["paymentId"].as_str().unwrap();
    let r = device
        .ok(
            "POST",
            &format!("/v1/payments/{pid}/refunds"),
            Some(json!({"refundId": "r1", "amount": {"currency": "HKD", "value": 500}})),
        )
        .await;
    assert_eq!(r["status"], "succeeded", "{r}");
    verify_receipt(r["receipt"].as_str().unwrap(), &keys).unwrap();
    let ev = next_of(&mut events, "refund.result").await;
    assert!(matches!(ev.event, Event::RefundResult(_)));
    let r2 = device
        .ok("GET", &format!("/v1/payments/{pid}/refunds/r1"), None)
        .await;
    assert_eq!(r2["status"], "succeeded");
    let (status, err) = device
        .send(
            "POST",
            &format!("/v1/payments/{pid}/refunds"),
            Some(json!({"refundId": "r2", "amount": {"currency": "HKD", "value": 600}})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("amount_invalid"))
    );
    let p2 = device.ok("GET", &format!("/v1/payments/{pid}"), None).await;
    assert_eq!(p2["refunded"]["value"], 500);

    // Refresh, then revoke with the new blob.
    let refreshed = device
        .ok(
            "POST",
            &format!("/v1/bindings/{binding_id}/refresh"),
            Some(json!({"sealedTokens": sealed})),
        )
        .await;
    let new_sealed = refreshed["sealedTokens"].as_str().unwrap().to_owned();
    assert_ne!(new_sealed, sealed);
    let revoked = device
        .ok(
            "POST",
            &format!("/v1/bindings/{binding_id}/revoke"),
            Some(json!({"sealedTokens": new_sealed})),
        )
        .await;
    assert_eq!(revoked["status"], "revoked");
    let (status, err) = device.send("POST", "/v1/payments", Some(json!({"appId": "org.example.Game", "appOrderId": "order-2", "bindingId": binding_id,
        "sealedTokens": new_sealed, "amount": {"currency": "HKD", "value": 100}, "description": "More"}))).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("invalid_state")),
        "{err}"
    );

    // Another device cannot use this binding's blob.
    let other = Device::new(&server.base);
    other.register().await;
    let (status, _) = other
        .send("GET", &format!("/v1/bindings/{binding_id}"), None)
        .await;
    assert_eq!(status, 404);

    // Reconciliation export: CSV lines and the settlement summary per currency.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scanbind-server"));
    cmd.envs(world.server_env()).args([
        "export",
        "transactions",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.contains(&format!("payment,{pid},")), "{csv}");
    assert!(csv.contains("\nHKD,1,1050,500,550\n"), "{csv}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanbind-server"))
        .envs(world.server_env())
        .args([
            "export",
            "transactions",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["HKD"]["net"], 550);

    // Metrics and health answer.
    let m = world
        .http
        .get(format!("{}/metrics", server.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("scanbind_payments{status=\"succeeded\"} 1"),
        "{m}"
    );
    let ready = world
        .http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

async fn device_auth_refusals(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let device = Device::new(&server.base);
    device.register().await;
    let code = |v: &Value| v["error"]["code"].as_str().map(str::to_owned);

    // Unsigned.
    let r = world
        .http
        .get(format!("{}/v1/devices/me", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        code(&r.json().await.unwrap()).as_deref(),
        Some("unauthenticated")
    );

    // Good.
    device.ok("GET", "/v1/devices/me", None).await;

    // Replayed: the identical request twice.
    let nonce = new_nonce().unwrap();
    let first = device
        .request_at("GET", "/v1/devices/me", b"", now_s(), &nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let again = device
        .request_at("GET", "/v1/devices/me", b"", now_s(), &nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 401);
    assert_eq!(
        code(&again.json().await.unwrap()).as_deref(),
        Some("replayed_request")
    );

    // Expired (and from the future).
    for skew in [-301, 301, -86_400] {
        let r = device
            .request_at(
                "GET",
                "/v1/devices/me",
                b"",
                now_s() + skew,
                &new_nonce().unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(
            code(&r.json().await.unwrap()).as_deref(),
            Some("stale_request")
        );
    }

    // Wrongly signed: another key claims this device id.
    let mallory = scanbind_device_api::DeviceKey::generate().unwrap();
    let mut h = mallory.sign_request("GET", "/v1/devices/me", now_s(), &new_nonce().unwrap(), b"");
    h.device_id = device.key.device_id();
    let mut rb = world.http.get(format!("{}/v1/devices/me", server.base));
    for (k, v) in h.to_pairs() {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        code(&r.json().await.unwrap()).as_deref(),
        Some("bad_signature")
    );

    // A body changed after signing.
    let nonce = new_nonce().unwrap();
    let h = device.key.sign_request(
        "POST",
        "/v1/bindings",
        now_s(),
        &nonce,
        br#"{"wallet":"GCASH"}"#,
    );
    let mut rb = world
        .http
        .post(format!("{}/v1/bindings", server.base))
        .body(r#"{"wallet":"DANA"}"#);
    for (k, v) in h.to_pairs() {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(
        code(&r.json().await.unwrap()).as_deref(),
        Some("bad_signature")
    );

    // Unknown device.
    let stranger = Device::new(&server.base);
    let (status, v) = stranger.send("GET", "/v1/devices/me", None).await;
    assert_eq!((status, code(&v).as_deref()), (401, Some("unknown_device")));

    // Token registration (enrollment tokens): tests/enrollment.rs.

    // Bad input is a 4xx with a code, never a 5xx.
    let (status, v) = device
        .send("POST", "/v1/bindings", Some(json!({"wallet": "PAYPAL"})))
        .await;
    assert_eq!(
        (status, code(&v).as_deref()),
        (400, Some("wallet_unsupported"))
    );
    let (status, v) = device
        .send("POST", "/v1/payments", Some(json!({"nonsense": true})))
        .await;
    assert_eq!((status, code(&v).as_deref()), (400, Some("bad_request")));
}

/// The `resultCode` of a notification answer (`{"result": {"resultCode": ...}}`).
fn ams_result_code(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    v["result"]["resultCode"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Forged notifications (signed with a key that is not Alipay's, or unsigned) are
/// refused with HTTP 401 and a non-ack `INVALID_SIGNATURE` answer, as docs/server.md
/// records, and change nothing: a pending binding stays pending, a pending payment
/// stays pending.
async fn forged_notifications_change_nothing(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let device = Device::new(&server.base);
    device.register().await;
    let start = device
        .ok("POST", "/v1/bindings", Some(json!({"wallet": "GCASH"})))
        .await;
    let binding_id = start["bindingId"].as_str().unwrap();

    // A notification signed by someone else's key, and one not signed at all.
    let forger = scanbind_ams::PrivateKey::from_text(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ams/tests/fixtures/vector_private_pkcs8.pem"
        ))
        .unwrap(),
    )
    .unwrap();
    let body = br#"{"authorizationNotifyType":"TOKEN_CANCELED","accessToken":"x","result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;
    let time = (now_s() * 1000).to_string();
    let sig = scanbind_ams::signature::sign(
        &forger,
        1,
        "POST",
        "/ams/notify/authorization",
        CLIENT_ID,
        &time,
        body,
    )
    .unwrap();
    for signed in [true, false] {
        let mut rb = world
            .http
            .post(format!("{}/ams/notify/authorization", server.base))
            .header("client-id", CLIENT_ID)
            .header("request-time", &time)
            .body(body.to_vec());
        if signed {
            rb = rb.header("signature", &sig);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            !scanbind_ams::notify::is_ack(text.as_bytes()),
            "a forged notification was acknowledged: {text}"
        );
        assert_eq!(
            (status, ams_result_code(&text).as_str()),
            (401, "INVALID_SIGNATURE"),
            "{text}"
        );
    }
    let b = device
        .ok("GET", &format!("/v1/bindings/{binding_id}"), None)
        .await;
    assert_eq!(b["status"], "pending");
    let m = world
        .http
        .get(format!("{}/metrics", server.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("outcome=\"refused\"} 2"), "{m}");

    // A pending payment (PAYMENT_IN_PROCESS, inquiries far apart) and a forged "failed"
    // result for it: refused, and the payment stays pending.
    let slow = world.spawn_server(&[("SCANBIND_SERVER_PAYMENTS_INQUIRY_BACKOFF_MS", "[600000]")]);
    let (payer, bid, sealed) = bound_device(&world, &slow).await;
    let p = payer
        .ok("POST", "/v1/payments", Some(json!({"appId": "a", "appOrderId": "forge-me", "bindingId": bid,
            "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 9903}, "description": "x"})))
        .await;
    assert_eq!(p["status"], "pending");
    let body = format!(
        r#"{{"notifyType":"PAYMENT_RESULT","result":{{"resultCode":"USER_BALANCE_NOT_ENOUGH","resultStatus":"F","resultMessage":"no"}},"paymentRequestId":"{}","paymentId":"forged"}}"#,
        p["paymentRequestId"].as_str().unwrap()
    );
    let sig = scanbind_ams::signature::sign(
        &forger,
        1,
        "POST",
        "/ams/notify/payment",
        CLIENT_ID,
        &time,
        body.as_bytes(),
    )
    .unwrap();
    for signed in [true, false] {
        let mut rb = world
            .http
            .post(format!("{}/ams/notify/payment", slow.base))
            .header("client-id", CLIENT_ID)
            .header("request-time", &time)
            .body(body.clone());
        if signed {
            rb = rb.header("signature", &sig);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!scanbind_ams::notify::is_ack(text.as_bytes()), "{text}");
        assert_eq!(
            (status, ams_result_code(&text).as_str()),
            (401, "INVALID_SIGNATURE"),
            "{text}"
        );
    }
    let now = payer
        .ok(
            "GET",
            &format!("/v1/payments/{}", p["paymentId"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (now["status"].as_str(), now["resultCode"].as_str()),
        (Some("pending"), Some("PAYMENT_IN_PROCESS")),
        "{now}"
    );
}

/// The server killed while the wallet holds a taken payment (its answer and its
/// notification lost): the device's call fails with the connection (no answer), and a
/// new server process on the same database finishes the payment on its own, succeeded
/// and delivered to the device as a `payment.result` event.
async fn restart_resumes_unfinished_payment(backend: Backend) {
    let world = world(backend).await;
    let mut server =
        world.spawn_server(&[("SCANBIND_SERVER_PAYMENTS_IN_FLIGHT_GRACE_MS", "600000")]);
    let (device, binding_id, sealed) = bound_device(&world, &server).await;
    // The sandbox takes the payment and never answers, its notification is lost, and the
    // server crashes mid-call.
    world
        .arm_fault(json!({"endpoint": "pay", "kind": "hang", "processed": true}))
        .await;
    world
        .arm_fault(json!({"endpoint": "notifications", "kind": "drop"}))
        .await;
    let pay = json!({"appId": "org.example.Game", "appOrderId": "crash-1", "bindingId": binding_id,
                     "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 700}, "description": "Coins"});
    let body = serde_json::to_vec(&pay).unwrap();
    let in_flight = tokio::spawn(
        device
            .request_at(
                "POST",
                "/v1/payments",
                &body,
                now_s(),
                &new_nonce().unwrap(),
            )
            .send(),
    );
    eventually("the sandbox to record the payment", || async {
        world.ledger().await["payments"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    })
    .await;
    server.kill();
    // The device's call dies with the server: the connection closes without an answer
    // (no status, and not the client giving up).
    let err = in_flight
        .await
        .unwrap()
        .expect_err("the device's call dies with the server");
    assert!(
        err.is_request() && !err.is_timeout() && err.status().is_none(),
        "{err:?}"
    );

    // A new process on the same database finishes the payment on its own.
    let server2 = world.spawn_server(&[]);
    let device2 = Device {
        key: scanbind_device_api::DeviceKey::from_pkcs8(device.key.to_pkcs8()).unwrap(),
        http: http(),
        base: server2.base.clone(),
    };
    let mut events = device2.events(Some(0)).await;
    let ev = next_of(&mut events, "payment.result").await;
    let Event::PaymentResult(p) = ev.event else {
        unreachable!()
    };
    assert_eq!(p.app_order_id, "crash-1");
    assert_eq!(p.status.as_str(), "succeeded", "{}", server2.logs());
    assert!(
        server2.logs().contains("resuming unfinished work"),
        "{}",
        server2.logs()
    );
    verify_receipt(p.receipt.as_deref().unwrap(), &receipt_keys(&device2).await).unwrap();
    // The device retries its order: same payment, no second charge.
    let again = device2.ok("POST", "/v1/payments", Some(pay)).await;
    assert_eq!(again["paymentId"], p.payment_id.as_str());
    let ledger = world.ledger().await;
    let movements: Vec<_> = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["moneyMovements"].clone())
        .collect();
    assert_eq!(movements, vec![json!(1)], "{ledger}");
}

async fn unknown_outcome_is_inquired(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let (device, binding_id, sealed) = bound_device(&world, &server).await;
    let mut events = device.events(None).await;
    // PAYMENT_IN_PROCESS, then success on inquiry; and one that ends in failure.
    for (order, amount, expect) in [
        ("slow-ok", 9903, "succeeded"),
        ("slow-fail", 9904, "failed"),
    ] {
        let p = device.ok("POST", "/v1/payments", Some(json!({"appId": "a", "appOrderId": order, "bindingId": binding_id,
            "sealedTokens": sealed, "amount": {"currency": "HKD", "value": amount}, "description": "x"}))).await;
        assert_eq!(p["status"], "pending", "{p}");
        let ev = next_of(&mut events, "payment.result").await;
        let Event::PaymentResult(r) = ev.event else {
            unreachable!()
        };
        assert_eq!(
            (r.app_order_id.as_str(), r.status.as_str()),
            (order, expect)
        );
    }
    // A final F is final at once.
    let p = device
        .ok(
            "POST",
            "/v1/payments",
            Some(
                json!({"appId": "a", "appOrderId": "poor", "bindingId": binding_id,
        "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 9905}, "description": "x"}),
            ),
        )
        .await;
    assert_eq!(
        (p["status"].as_str(), p["resultCode"].as_str()),
        (Some("failed"), Some("USER_BALANCE_NOT_ENOUGH"))
    );
}

/// The next refund's final outcome: (refund id, status, result code).
async fn outcome(events: &mut EventStream) -> (String, RefundStatus, Option<String>) {
    let ev = next_of(events, "refund.result").await;
    let Event::RefundResult(fin) = ev.event else {
        unreachable!()
    };
    (fin.refund_id, fin.status, fin.result_code)
}

/// Alipay may answer a refund `U` / `REFUND_IN_PROCESS` and end it later, in success or
/// failure: the device sees it pending, then each final outcome once.
async fn asynchronous_refunds_reach_the_device(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let (device, binding_id, sealed) = bound_device(&world, &server).await;
    let mut events = device.events(None).await;
    let p = device
        .ok(
            "POST",
            "/v1/payments",
            Some(json!({"appId": "a", "appOrderId": "ar-1", "bindingId": binding_id,
                "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 2000}, "description": "x"})),
        )
        .await;
    assert_eq!(p["status"], "succeeded", "{p}");
    let pid = p["paymentId"].as_str().unwrap().to_owned();
    let refund = |refund_id: &str| {
        let device = &device;
        let path = format!("/v1/payments/{pid}/refunds");
        let body = json!({"refundId": refund_id, "amount": {"currency": "HKD", "value": 500}});
        async move {
            let r = device.ok("POST", &path, Some(body)).await;
            assert_eq!(r["status"], "pending", "{r}");
        }
    };
    // 1. In process, then a success (by inquiry or notification: the same outcome).
    world
        .arm_fault(json!({"endpoint": "refund", "kind": "in_process"}))
        .await;
    refund("slow-ok").await;
    assert_eq!(
        outcome(&mut events).await,
        ("slow-ok".into(), RefundStatus::Succeeded, None)
    );
    // 2. In process, then a failure the server learns by inquiry (the notification is
    // lost): inquiryRefund carries no code, so the refund fails as REFUND_FAILED.
    world
        .arm_fault(json!({"endpoint": "notifications", "kind": "drop"}))
        .await;
    world
        .arm_fault(json!({"endpoint": "refund", "kind": "in_process", "outcome": "PROCESS_FAIL"}))
        .await;
    refund("fail-inquired").await;
    assert_eq!(
        outcome(&mut events).await,
        (
            "fail-inquired".into(),
            RefundStatus::Failed,
            Some("REFUND_FAILED".into())
        )
    );
    // 3. In process, then a failure the server learns from notifyRefund (every inquiry
    // goes unanswered): the notification's code.
    world
        .arm_fault(
            json!({"endpoint": "inquiryRefund", "kind": "unknown_exception", "count": 100_000}),
        )
        .await;
    world
        .arm_fault(
            json!({"endpoint": "refund", "kind": "in_process", "outcome": "PROCESS_FAIL",
                          "after_inquiries": 100_000, "after_seconds": 3600}),
        )
        .await;
    refund("fail-notified").await;
    world
        .control_post("/sandbox/v1/clock/advance", json!({"seconds": 3601}))
        .await;
    assert_eq!(
        outcome(&mut events).await,
        (
            "fail-notified".into(),
            RefundStatus::Failed,
            Some("PROCESS_FAIL".into())
        )
    );
    // Only the refund that succeeded counts, here and at Alipay.
    let p = device.ok("GET", &format!("/v1/payments/{pid}"), None).await;
    assert_eq!(p["refunded"]["value"], 500, "{p}");
    let ledger = world.ledger().await;
    let statuses: Vec<_> = ledger["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_owned(),
                r["moneyMovements"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("SUCCESS".to_owned(), json!(1)),
            ("FAIL".to_owned(), json!(0)),
            ("FAIL".to_owned(), json!(0)),
        ],
        "{ledger}"
    );
}

async fn notification_before_pay_returns(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let (device, binding_id, sealed) = bound_device(&world, &server).await;
    let mut events = device.events(None).await;
    // The sandbox charges and notifies at once but never answers the pay call, nor the
    // two identical retries the server's client would send after each attempt's
    // timeout; every notification is also delivered twice.
    world
        .arm_fault(json!({"endpoint": "pay", "kind": "hang", "processed": true, "count": 3}))
        .await;
    world
        .arm_fault(json!({"endpoint": "notifications", "kind": "duplicate", "count": 5}))
        .await;
    let pay = json!({"appId": "a", "appOrderId": "early", "bindingId": binding_id, "sealedTokens": sealed,
                     "amount": {"currency": "HKD", "value": 300}, "description": "x"});
    let body = serde_json::to_vec(&pay).unwrap();
    let in_flight = tokio::spawn(
        device
            .request_at(
                "POST",
                "/v1/payments",
                &body,
                now_s(),
                &new_nonce().unwrap(),
            )
            .send(),
    );
    let ev = next_of(&mut events, "payment.result").await;
    let Event::PaymentResult(p) = ev.event else {
        unreachable!()
    };
    assert_eq!(
        (p.app_order_id.as_str(), p.status.as_str()),
        ("early", "succeeded")
    );
    // The pay call still in flight ends with the notification's result (it used to
    // wait out every attempt and answer `pending`): its call and retries are dropped,
    // so no `pay` follows the result — the two retries' faults are still armed.
    let answered: Value = in_flight
        .await
        .unwrap()
        .expect("the pay request is answered")
        .json()
        .await
        .unwrap();
    assert_eq!(
        (answered["paymentId"].as_str(), answered["status"].as_str()),
        (Some(p.payment_id.as_str()), Some("succeeded")),
        "{answered}"
    );
    let armed = world.control("/sandbox/v1/faults").await;
    assert_eq!(
        armed["calls"][0]["remaining"], 2,
        "one pay was sent, no retry after the result: {armed}"
    );
    // Retrying the order returns the final payment without another charge.
    let again = device.ok("POST", "/v1/payments", Some(pay)).await;
    assert_eq!(
        (again["paymentId"].as_str(), again["status"].as_str()),
        (Some(p.payment_id.as_str()), Some("succeeded"))
    );
    // The duplicate notification produced no second event: the next result is the next payment's.
    let p2 = device
        .ok(
            "POST",
            "/v1/payments",
            Some(
                json!({"appId": "a", "appOrderId": "next", "bindingId": binding_id,
        "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 301}, "description": "x"}),
            ),
        )
        .await;
    assert_eq!(p2["status"], "succeeded");
    let ev = next_of(&mut events, "payment.result").await;
    let Event::PaymentResult(n) = ev.event else {
        unreachable!()
    };
    assert_eq!(n.app_order_id, "next");
    let m = world
        .http
        .get(format!("{}/metrics", server.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!m.contains("outcome=\"duplicate\"} 0"), "{m}");
}

/// Bad input across every operation of the served OpenAPI document: malformed bodies,
/// wrong types per property, odd path parameters. Never a 5xx; every refusal carries a
/// documented error code. (A schema-driven fuzz in the spirit of schemathesis, in-tree.)
async fn bad_input_never_5xx(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let (device, binding_id, sealed) = bound_device(&world, &server).await;
    let operator_side = Device::new(&server.admin);
    let served: Value = world
        .http
        .get(format!("{}/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        served, on_disk,
        "the served OpenAPI document is docs/openapi.json"
    );
    let known: Vec<String> = scanbind_device_api::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let schemas = &served["components"]["schemas"];
    let odd_values = [
        json!(null),
        json!(-1),
        json!(i64::MAX),
        json!(1.5),
        json!(""),
        json!("x".repeat(5000)),
        json!([]),
        json!({}),
        json!(true),
        json!("\u{0}\u{202e}é"),
    ];
    let odd_params = ["x", "%00", "..%2F..", "pay_%F0%9F%92%A5", &"a".repeat(300)];
    let good_pay = json!({"appId": "fuzz", "appOrderId": "o", "bindingId": binding_id, "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 100}, "description": "d"});
    let mut checked = 0;
    for (path, item) in served["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if path == "/v1/events" {
                continue; // a stream; covered by the flow tests
            }
            let mut bodies: Vec<Value> = vec![
                json!(null),
                json!([]),
                json!("text"),
                json!({"unexpected": 1}),
            ];
            if let Some(name) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                let schema = &schemas[name.rsplit('/').next().unwrap()];
                let base = if name.ends_with("PayRequest") {
                    good_pay.clone()
                } else {
                    let mut b = json!({});
                    for (k, v) in schema["properties"].as_object().unwrap() {
                        b[k] = if v["$ref"].is_string() {
                            json!({"currency": "HKD", "value": 1})
                        } else {
                            json!("v")
                        };
                    }
                    b
                };
                for k in schema["properties"].as_object().unwrap().keys() {
                    for odd in &odd_values {
                        let mut b = base.clone();
                        b[k] = odd.clone();
                        bodies.push(b);
                    }
                    let mut b = base.clone();
                    b.as_object_mut().unwrap().remove(k);
                    bodies.push(b);
                }
            }
            let paths: Vec<String> = if path.contains('{') {
                odd_params
                    .iter()
                    .map(|p| {
                        path.replace("{bindingId}", p)
                            .replace("{paymentId}", p)
                            .replace("{refundId}", p)
                            .replace("{tokenId}", p)
                    })
                    .collect()
            } else {
                vec![path.clone()]
            };
            // The back office is on the operator listener only.
            let caller = if path.starts_with("/admin/") {
                &operator_side
            } else {
                &device
            };
            for p in &paths {
                for b in &bodies {
                    let (status, v) = caller
                        .send(&method.to_uppercase(), p, Some(b.clone()))
                        .await;
                    checked += 1;
                    assert!(status < 500, "{method} {p} {b}: {status} {v}");
                    if status >= 400 {
                        let code = v["error"]["code"].as_str().unwrap_or_default().to_owned();
                        assert!(
                            known.contains(&code),
                            "{method} {p}: undocumented error body {v}"
                        );
                        let documented = op["responses"].get(status.to_string()).is_some();
                        assert!(
                            documented,
                            "{method} {p} {b}: status {status} is not in the document ({v})"
                        );
                    }
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} requests");
}

async fn wallet_unbind_and_qr_expiry(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[("SCANBIND_SERVER_PAYMENTS_BINDING_TTL_SECONDS", "1")]);
    let device = Device::new(&server.base);
    device.register().await;
    let mut events = device.events(None).await;

    // A QR code nobody scans in time expires, and a late approval changes nothing.
    let late = device
        .ok("POST", "/v1/bindings", Some(json!({"wallet": "GCASH"})))
        .await;
    let ev = next_of(&mut events, "binding.expired").await;
    let Event::BindingExpired(b) = ev.event else {
        unreachable!()
    };
    assert_eq!(b.binding_id, late["bindingId"].as_str().unwrap());
    world
        .scan(late["codeValue"].as_str().unwrap(), "approve")
        .await;

    // A binding completed in time (on a server with the default QR life), then unbound
    // from the wallet app.
    drop(events);
    drop(server);
    let server = world.spawn_server(&[]);
    let device = Device {
        key: scanbind_device_api::DeviceKey::from_pkcs8(device.key.to_pkcs8()).unwrap(),
        http: http(),
        base: server.base.clone(),
    };
    let mut events = device.events(None).await;
    // A binding completed in time, then unbound from the wallet app.
    let start = device
        .ok("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
        .await;
    let scanned = world
        .scan(start["codeValue"].as_str().unwrap(), "approve")
        .await;
    let ev = next_of(&mut events, "binding.completed").await;
    let Event::BindingCompleted(b) = ev.event else {
        unreachable!()
    };
    assert_eq!(b.binding_id, start["bindingId"].as_str().unwrap());
    let sealed = b.sealed_tokens.unwrap();
    let user = scanned["user"].as_str().unwrap();
    let page = world
        .http
        .get(format!(
            "{}/wallet/account/{user}",
            world.sandbox.base_url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"authorization\" value=\"";
    let at = page
        .find(marker)
        .expect("an authorization on the account page")
        + marker.len();
    let id = &page[at..at + page[at..].find('"').unwrap()];
    let r = world
        .http
        .post(format!(
            "{}/wallet/account/{user}/unbind",
            world.sandbox.base_url()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("authorization={id}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let ev = next_of(&mut events, "token.cancelled").await;
    let Event::TokenCancelled(c) = ev.event else {
        unreachable!()
    };
    assert_eq!(c.binding_id, b.binding_id);
    assert_eq!(c.status.as_str(), "cancelled");
    let (status, err) = device
        .send(
            "POST",
            "/v1/payments",
            Some(
                json!({"appId": "a", "appOrderId": "after-unbind", "bindingId": b.binding_id,
        "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 100}, "description": "x"}),
            ),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("invalid_state"))
    );
    let late_now = device
        .ok(
            "GET",
            &format!("/v1/bindings/{}", late["bindingId"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(late_now["status"], "expired");
}

async fn order_code_payment(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let device = Device::new(&server.base);
    device.register().await;
    let mut events = device.events(None).await;
    let req = json!({"appId": "org.example.Game", "appOrderId": "oc-1", "amount": {"currency": "HKD", "value": 4200}, "description": "Season pass"});
    let p = device
        .ok("POST", "/v1/payments/order-code", Some(req.clone()))
        .await;
    assert_eq!(
        (p["status"].as_str(), p["product"].as_str()),
        (Some("pending"), Some("order_code")),
        "{p}"
    );
    let code = p["orderCode"]["codeValue"].as_str().unwrap().to_owned();
    // Asking again shows the same code (no second order).
    let again = device
        .ok("POST", "/v1/payments/order-code", Some(req))
        .await;
    assert_eq!(
        again["orderCode"]["codeValue"].as_str(),
        Some(code.as_str())
    );
    world.scan(&code, "pay").await;
    let ev = next_of(&mut events, "payment.result").await;
    let Event::PaymentResult(done) = ev.event else {
        unreachable!()
    };
    assert_eq!(
        (done.app_order_id.as_str(), done.status.as_str()),
        ("oc-1", "succeeded")
    );
    verify_receipt(
        done.receipt.as_deref().unwrap(),
        &receipt_keys(&device).await,
    )
    .unwrap();
    assert!(done.order_code.is_none());
}

async fn cancel_paid_payment(backend: Backend) {
    let world = world(backend).await;
    let server = world.spawn_server(&[]);
    let (device, binding_id, sealed) = bound_device(&world, &server).await;
    let mut events = device.events(None).await;
    let pay = json!({"appId": "org.example.Game", "appOrderId": "cancel-me", "bindingId": binding_id,
                     "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 990}, "description": "Coins"});
    let p = device.ok("POST", "/v1/payments", Some(pay)).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    let first = next_of(&mut events, "payment.result").await;
    let pid = p["paymentId"].as_str().unwrap();

    // Within the cancel window: Alipay reverses the whole charge.
    let c = device
        .ok("POST", &format!("/v1/payments/{pid}/cancel"), None)
        .await;
    assert_eq!(c["status"], "cancelled", "{c}");
    let keys = receipt_keys(&device).await;
    let receipt = verify_receipt(c["receipt"].as_str().unwrap(), &keys).unwrap();
    assert_eq!(
        (receipt.status.as_str(), receipt.app_order_id.as_str()),
        ("cancelled", "cancel-me")
    );

    // The device hears of it on its stream, after the success, with the new receipt.
    let ev = next_of(&mut events, "payment.result").await;
    assert!(ev.seq > first.seq);
    let Event::PaymentResult(pe) = ev.event else {
        unreachable!()
    };
    assert_eq!(
        (pe.payment_id.as_str(), pe.status.as_str()),
        (pid, "cancelled")
    );
    assert_eq!(pe.receipt.as_deref(), c["receipt"].as_str());

    // The sandbox agrees: cancelled, the charge reversed once.
    let ledger = world.ledger().await;
    let ours = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["paymentRequestId"] == p["paymentRequestId"])
        .unwrap();
    assert_eq!(
        (ours["status"].as_str(), ours["reversals"].as_u64()),
        (Some("CANCELLED"), Some(1)),
        "{ours}"
    );

    // Cancelling again changes nothing and charges nothing.
    let again = device
        .ok("POST", &format!("/v1/payments/{pid}/cancel"), None)
        .await;
    assert_eq!(again["status"], "cancelled");
    assert_eq!(again["receipt"], c["receipt"]);
}

macro_rules! on_both {
    ($($name:ident),*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both!(
    full_flow,
    cancel_paid_payment,
    order_code_payment,
    notification_before_pay_returns,
    wallet_unbind_and_qr_expiry,
    bad_input_never_5xx,
    device_auth_refusals,
    forged_notifications_change_nothing,
    restart_resumes_unfinished_payment,
    unknown_outcome_is_inquired,
    asynchronous_refunds_reach_the_device
);
