//! Issue 10 §3 and issue 25 item 7, hostile requests against the real
//! `scanbind-server` binary (SQLite) and the sandbox: tokens from another device,
//! tampered sealed blobs, replayed and re-signed device requests, forged notifications.
//! Each is refused with the HTTP status and error code docs/reliability.md §3 lists
//! (pinned, not "some 4xx") and changes nothing: the wallet's ledger holds only the
//! genuine payments, the victim's binding is still active and pays, and her pending
//! payment is still pending. The forged notifications name real things (Alice's access
//! token, her pending payment's ids), and a control at the end sends the same bodies
//! signed with the key the server trusts and sees them cancel the binding and fail the
//! payment: an accepted forgery would have shown. (Stale, unsigned, body-changed and
//! unknown-device requests are covered by server/tests/e2e.rs.)

use scanbind_device_api::signing::new_nonce;
use scanbind_reliability::device::{Device, now_s};
use scanbind_reliability::load::read_events;
use scanbind_reliability::world::{self, CLIENT_ID, World};
use serde_json::{Value, json};

/// Registers and binds a device; returns it with its binding id and sealed tokens.
async fn bound(world: &World, base: &str, user: &str) -> (Device, String, String) {
    let device = Device::new(base).unwrap();
    let body =
        json!({"publicKey": device.key.public_key().to_base64(), "name": user, "model": "x"});
    device
        .call("POST", "/v1/devices", Some(body))
        .await
        .unwrap();
    let resp = device
        .request("GET", "/v1/events", b"")
        .unwrap()
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let reader = tokio::spawn(read_events(resp, move |v| {
        let _ = tx.send(v);
    }));
    world
        .control_post(
            "/sandbox/v1/users",
            json!({"user": user, "wallet": "ALIPAY_HK"}),
        )
        .await;
    let start = device
        .call("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
        .await
        .unwrap();
    let binding = start["bindingId"].as_str().unwrap().to_owned();
    world
        .control_post(
            "/sandbox/v1/scan",
            json!({"codeValue": start["codeValue"], "decision": "approve", "user": user}),
        )
        .await;
    let sealed = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(ev) = rx.recv().await {
            if ev["type"] == "binding.completed" {
                return ev["data"]["sealedTokens"].as_str().unwrap().to_owned();
            }
        }
        panic!("event stream ended")
    })
    .await
    .expect("no binding.completed");
    reader.abort();
    (device, binding, sealed)
}

fn pay_body(order: &str, binding: &str, sealed: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"appId": "org.example.Game", "appOrderId": order, "bindingId": binding,
        "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 700}, "description": "x"}),
    )
    .unwrap()
}

/// The device API error code of an answer (`{"error": {"code": ...}}`).
fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A notification body signed as Alipay signs it, by `key`: the `signature` header.
fn sign_notification(key: &scanbind_ams::PrivateKey, path: &str, time: &str, body: &str) -> String {
    scanbind_ams::signature::sign(key, 1, "POST", path, CLIENT_ID, time, body.as_bytes()).unwrap()
}

/// A key from the AMS test fixtures.
fn fixture_key(name: &str) -> scanbind_ams::PrivateKey {
    let path = format!(
        "{}/../ams/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    scanbind_ams::PrivateKey::from_text(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Posts a notification to the server; its status and body.
async fn notify(
    world: &World,
    base: &str,
    path: &str,
    time: &str,
    body: &str,
    signature: Option<&str>,
) -> (u16, String) {
    let mut rb = world
        .http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("client-id", CLIENT_ID)
        .header("request-time", time)
        .body(body.to_owned());
    if let Some(sig) = signature {
        rb = rb.header("signature", sig);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The wallet's record of the payment with this `paymentRequestId`.
async fn ams_payment(world: &World, payment_request_id: &str) -> Value {
    let ledger = world.ledger().await;
    ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["paymentRequestId"] == payment_request_id)
        .cloned()
        .unwrap_or_else(|| panic!("{payment_request_id} is not in the ledger: {ledger}"))
}

async fn payments_in_ledger(world: &World) -> usize {
    world.ledger().await["payments"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_device_requests_are_refused_and_change_nothing() {
    // The wallet's state file holds the tokens it issued (for the forged TOKEN_CANCELED).
    let world = World::new(world::options().sandbox_state_file(true)).await;
    let server = world.spawn_server_logged(&[], "info");
    let (alice, a_bind, a_sealed) = bound(&world, &server.base, "alice_hk").await;
    let (mallory, m_bind, m_sealed) = bound(&world, &server.base, "mallory_hk").await;
    let before = payments_in_ledger(&world).await;
    let mut refused = Vec::new();

    // 1. Alice's binding and tokens presented by Mallory's device.
    let (s, v) = mallory
        .send("POST", "/v1/payments", &pay_body("h1", &a_bind, &a_sealed))
        .await
        .unwrap();
    assert_eq!(
        (s, code(&v)),
        (404, "not_found"),
        "another device's binding: {v}"
    );
    refused.push(format!(
        "another device's binding + tokens: {s} {}",
        code(&v)
    ));

    // 2. Mallory's own binding with Alice's sealed tokens.
    let (s, v) = mallory
        .send("POST", "/v1/payments", &pay_body("h2", &m_bind, &a_sealed))
        .await
        .unwrap();
    assert_eq!(
        (s, code(&v)),
        (403, "token_invalid"),
        "another device's tokens: {v}"
    );
    refused.push(format!(
        "own binding, another device's tokens: {s} {}",
        code(&v)
    ));

    // 3. Tampered sealed blobs: one character changed, truncated, another key id.
    let mut flipped = a_sealed.clone().into_bytes();
    let i = flipped.len() - 5;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let truncated = a_sealed[..a_sealed.len() - 8].to_owned();
    let parts: Vec<&str> = a_sealed.splitn(3, '.').collect();
    assert_eq!(parts.len(), 3, "sbt1.<key id>.<data>: {a_sealed}");
    let other_kid = format!("{}.{}.{}", parts[0], "k00000000", parts[2]);
    for (what, blob) in [
        ("one character changed", flipped),
        ("truncated", truncated),
        ("another key id", other_kid),
    ] {
        assert_ne!(blob, a_sealed);
        let (s, v) = alice
            .send("POST", "/v1/payments", &pay_body("h3", &a_bind, &blob))
            .await
            .unwrap();
        assert_eq!(
            (s, code(&v)),
            (403, "token_invalid"),
            "tampered blob ({what}): {v}"
        );
        refused.push(format!("tampered sealed blob, {what}: {s} {}", code(&v)));
    }

    // 4. Alice's signed request replayed byte for byte (same nonce).
    let body = pay_body("h4", &a_bind, &a_sealed);
    let nonce = new_nonce().unwrap();
    let h = alice
        .key
        .sign_request("POST", "/v1/payments", now_s(), &nonce, &body);
    let send = |headers: scanbind_device_api::signing::SignedHeaders, body: Vec<u8>| {
        let mut rb = world
            .http
            .post(format!("{}/v1/payments", server.base))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers.to_pairs() {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    let first = send(h.clone(), body.clone()).await.unwrap();
    assert_eq!(first.status().as_u16(), 200, "the genuine request");
    let again = send(h, body.clone()).await.unwrap();
    let s = again.status().as_u16();
    let v: Value = again.json().await.unwrap_or(Value::Null);
    assert_eq!((s, code(&v)), (401, "replayed_request"), "replay: {v}");
    refused.push(format!("replayed signed request: {s} {}", code(&v)));

    // 5. The same body re-signed by Mallory (a captured request, another signer): the
    // binding it names is not Mallory's.
    let h = mallory.key.sign_request(
        "POST",
        "/v1/payments",
        now_s(),
        &new_nonce().unwrap(),
        &body,
    );
    let r = send(h, body.clone()).await.unwrap();
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (s, code(&v)),
        (404, "not_found"),
        "re-signed by another device: {v}"
    );
    refused.push(format!(
        "captured request re-signed by another device: {s} {}",
        code(&v)
    ));

    // 6. Mallory's key claiming Alice's device id.
    let mut h = mallory.key.sign_request(
        "POST",
        "/v1/payments",
        now_s(),
        &new_nonce().unwrap(),
        &body,
    );
    h.device_id = alice.key.device_id();
    let r = send(h, pay_body("h6", &a_bind, &a_sealed)).await.unwrap();
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!((s, code(&v)), (401, "bad_signature"), "impersonation: {v}");
    refused.push(format!(
        "another key claiming the device id: {s} {}",
        code(&v)
    ));

    // 7. Forged notifications aimed at real things. Alice has a payment the wallet holds
    // in process (for a day), so it is pending at the server; and her binding's access
    // token is read from the wallet's state (the worst case: a forger who knows it).
    world
        .arm_fault(
            json!({"endpoint": "pay", "kind": "in_process", "outcome": "SUCCESS",
                          "after_inquiries": 1_000_000, "after_seconds": 86_400}),
        )
        .await;
    let pending = alice
        .call(
            "POST",
            "/v1/payments",
            Some(serde_json::from_slice(&pay_body("h-pending", &a_bind, &a_sealed)).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(pending["status"], "pending", "{pending}");
    let pending_path = format!("/v1/payments/{}", pending["paymentId"].as_str().unwrap());
    let prid = pending["paymentRequestId"].as_str().unwrap().to_owned();
    let ams_payment_id = ams_payment(&world, &prid).await["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let state: Value =
        serde_json::from_slice(&std::fs::read(world.sandbox_state_file()).unwrap()).unwrap();
    let alice_token = state["authorizations"]
        .as_object()
        .unwrap()
        .values()
        .find(|a| a["user"] == "alice_hk")
        .and_then(|a| a["accessToken"].as_str())
        .expect("Alice's authorization in the wallet's state")
        .to_owned();
    let cancel_body = json!({"authorizationNotifyType": "TOKEN_CANCELED",
        "accessToken": alice_token, "reason": "forged",
        "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"}})
    .to_string();
    let fail_body = json!({"notifyType": "PAYMENT_RESULT", "paymentRequestId": prid,
        "paymentId": ams_payment_id,
        "result": {"resultCode": "PROCESS_FAIL", "resultStatus": "F", "resultMessage": "forged"}})
    .to_string();
    let time = (now_s() * 1000).to_string();
    // Not Alipay's key: the merchant's own (what a forger holding a merchant key has).
    let forger = fixture_key("vector_private_pkcs8.pem");
    let notifications = [
        ("/ams/notify/authorization", &cancel_body),
        ("/ams/notify/payment", &fail_body),
    ];
    for (path, body) in notifications {
        let forged_sig = sign_notification(&forger, path, &time, body);
        for (how, sig) in [
            ("unsigned", None),
            (
                "made-up signature",
                Some("algorithm=RSA256,keyVersion=1,signature=QUJD"),
            ),
            ("signed with another key", Some(forged_sig.as_str())),
        ] {
            let (s, text) = notify(&world, &server.base, path, &time, body, sig).await;
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            assert_eq!(
                (
                    s,
                    &answer["result"]["resultStatus"],
                    &answer["result"]["resultCode"]
                ),
                (401, &json!("F"), &json!("INVALID_SIGNATURE")),
                "forged notification {path} ({how}): {text}"
            );
            assert!(!scanbind_ams::notify::is_ack(text.as_bytes()), "{text}");
            refused.push(format!(
                "forged notification {path} ({how}): {s} {}",
                answer["result"]["resultCode"].as_str().unwrap_or("")
            ));
        }
    }
    let metrics = world
        .http
        .get(format!("{}/metrics", server.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scanbind_notifications_total{kind=\"any\",outcome=\"refused\"} 6\n"),
        "six forgeries refused: {metrics}"
    );

    // Nothing changed: her binding is active, her payment pending at the server and in
    // the wallet, the ledger holds the genuine payments only (step 4's and the pending
    // one), and both devices pay.
    let b = alice
        .call("GET", &format!("/v1/bindings/{a_bind}"), None)
        .await
        .unwrap();
    assert_eq!(b["status"], "active", "{b}");
    let p = alice.call("GET", &pending_path, None).await.unwrap();
    assert_eq!(p["status"], "pending", "{p}");
    assert_eq!(ams_payment(&world, &prid).await["status"], "PROCESSING");
    assert_eq!(
        payments_in_ledger(&world).await,
        before + 2,
        "{}",
        world.ledger().await
    );
    let ok = alice
        .call(
            "POST",
            "/v1/payments",
            Some(serde_json::from_slice(&pay_body("h-after", &a_bind, &a_sealed)).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let ok = mallory
        .call(
            "POST",
            "/v1/payments",
            Some(serde_json::from_slice(&pay_body("m-after", &m_bind, &m_sealed)).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(ok["status"], "succeeded", "{ok}");

    // The control: the same two bodies signed with the key the server trusts (the
    // sandbox's, i.e. Alipay's) are acknowledged and do what the forgeries would have
    // done: Alice's binding is cancelled, her pending payment failed.
    let alipay = fixture_key("other_rsa2048.pem");
    for (path, body) in notifications {
        let sig = sign_notification(&alipay, path, &time, body);
        let (s, text) = notify(&world, &server.base, path, &time, body, Some(&sig)).await;
        assert_eq!(s, 200, "{path}: {text}");
        assert!(
            scanbind_ams::notify::is_ack(text.as_bytes()),
            "{path}: {text}"
        );
    }
    let b = alice
        .call("GET", &format!("/v1/bindings/{a_bind}"), None)
        .await
        .unwrap();
    assert_eq!(b["status"], "cancelled", "{b}");
    let p = alice.call("GET", &pending_path, None).await.unwrap();
    assert_eq!(
        (&p["status"], &p["resultCode"]),
        (&json!("failed"), &json!("PROCESS_FAIL")),
        "{p}"
    );
    for line in &refused {
        eprintln!("| {line} |");
    }
}
