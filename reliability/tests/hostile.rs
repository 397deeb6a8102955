//! Issue 10 §3, hostile requests against the real `scanbind-server` binary (SQLite) and
//! the sandbox: tokens from another device, tampered sealed blobs, replayed and
//! re-signed device requests, forged notifications. Every one is refused with a typed
//! error and changes nothing: the wallet's ledger is unchanged and the victim's
//! binding still pays. (Stale, unsigned, body-changed and unknown-device requests are
//! covered by server/tests/e2e.rs.)

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

fn code(v: &Value) -> String {
    v["error"]["code"]
        .as_str()
        .or_else(|| v["code"].as_str())
        .unwrap_or("")
        .to_owned()
}

async fn payments_in_ledger(world: &World) -> usize {
    world.ledger().await["payments"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_device_requests_are_refused_and_change_nothing() {
    let world = World::new(world::options()).await;
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
    assert!((400..500).contains(&s), "another device's binding: {s} {v}");
    refused.push(format!(
        "another device's binding + tokens: {s} {}",
        code(&v)
    ));

    // 2. Mallory's own binding with Alice's sealed tokens.
    let (s, v) = mallory
        .send("POST", "/v1/payments", &pay_body("h2", &m_bind, &a_sealed))
        .await
        .unwrap();
    assert!((400..500).contains(&s), "another device's tokens: {s} {v}");
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
    let other_kid = format!(
        "{}.{}.{}",
        parts[0],
        "0000000000000000",
        parts.get(2).unwrap_or(&"")
    );
    for (what, blob) in [
        ("one character changed", flipped),
        ("truncated", truncated),
        ("another key id", other_kid),
    ] {
        let (s, v) = alice
            .send("POST", "/v1/payments", &pay_body("h3", &a_bind, &blob))
            .await
            .unwrap();
        assert!((400..500).contains(&s), "tampered blob ({what}): {s} {v}");
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
    assert_eq!(s, 401, "replay: {v}");
    refused.push(format!("replayed signed request: {s} {}", code(&v)));

    // 5. The same body re-signed by Mallory (a captured request, another signer).
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
    assert!(
        (400..500).contains(&s),
        "re-signed by another device: {s} {v}"
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
    assert_eq!(s, 401, "impersonation: {v}");
    refused.push(format!(
        "another key claiming the device id: {s} {}",
        code(&v)
    ));

    // 7. Forged notifications: a TOKEN_CANCELED for Alice's binding and a failed
    // PAYMENT_RESULT, unsigned and with a made-up signature.
    for (path, body) in [
        (
            "/ams/notify/authorization",
            json!({"authorizationNotifyType": "TOKEN_CANCELED", "accessToken": "x", "reason": "forged",
            "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "s"}}),
        ),
        (
            "/ams/notify/payment",
            json!({"notifyType": "PAYMENT_RESULT", "paymentRequestId": "x", "paymentId": "y",
            "result": {"resultCode": "PROCESS_FAIL", "resultStatus": "F", "resultMessage": "f"}}),
        ),
    ] {
        for sig in [None, Some("algorithm=RSA256,keyVersion=1,signature=QUJD")] {
            let mut rb = world
                .http
                .post(format!("{}{path}", server.base))
                .header("content-type", "application/json")
                .header("client-id", CLIENT_ID)
                .header("request-time", "2026-11-22T10:00:00+08:00")
                .body(body.to_string());
            if let Some(sig) = sig {
                rb = rb.header("signature", sig);
            }
            let r = rb.send().await.unwrap();
            let s = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert!(
                !text.contains("\"resultStatus\":\"S\""),
                "a forged notification was acknowledged: {s} {text}"
            );
            refused.push(format!(
                "forged notification {path} (signature {}): {s}",
                sig.is_some()
            ));
        }
    }

    // Nothing changed: one payment only (the genuine one of step 4), and Alice still pays.
    assert_eq!(
        payments_in_ledger(&world).await,
        before + 1,
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
    for line in &refused {
        eprintln!("| {line} |");
    }
}
