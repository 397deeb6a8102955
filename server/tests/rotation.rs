//! Key rotation: a new sealing key seals, the retired one still opens old blobs; a retired
//! receipt key stays published so old receipts keep verifying.

mod common;

use base64::Engine as _;
use common::*;
use scanbind_device_api::DeviceKey;
use scanbind_device_api::receipt::{ReceiptKeySet, verify_receipt};
use scanbind_device_api::types::Event;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_and_receipt_keys_rotate() {
    let world = world(Backend::Sqlite).await;
    let first = world.spawn_server(&[]);
    let device = Device::new(&first.base);
    device.register().await;
    let mut events = device.events(None).await;
    let start = device
        .ok("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
        .await;
    world
        .scan(start["codeValue"].as_str().unwrap(), "approve")
        .await;
    let ev = events.next().await;
    let Event::BindingCompleted(b) = ev.event else {
        panic!("{ev:?}")
    };
    let old_blob = b.sealed_tokens.unwrap();
    let p = device
        .ok("POST", "/v1/payments", Some(json!({"appId": "a", "appOrderId": "before", "bindingId": b.binding_id,
            "sealedTokens": old_blob, "amount": {"currency": "HKD", "value": 100}, "description": "x"})))
        .await;
    let old_receipt = p["receipt"].as_str().unwrap().to_owned();
    drop(events);
    drop(first);

    // Rotate both: new keys first, old ones retired.
    let dir = world.dir.path();
    std::fs::write(
        dir.join("seal-new.key"),
        base64::engine::general_purpose::STANDARD.encode([7_u8; 32]),
    )
    .unwrap();
    std::fs::write(
        dir.join("receipt-new.pem"),
        scanbind_server::util::ed25519_pkcs8_pem().unwrap(),
    )
    .unwrap();
    let sealing = format!(
        "[\"{}\", \"{}\"]",
        dir.join("seal-new.key").display(),
        dir.join("seal.key").display()
    );
    let retired = format!("[\"{}\"]", dir.join("receipt.pem").display());
    let second = world.spawn_server(&[
        ("SCANBIND_SERVER_TOKENS_SEALING_KEYS", &sealing),
        (
            "SCANBIND_SERVER_RECEIPTS_SIGNING_KEY",
            dir.join("receipt-new.pem").to_str().unwrap(),
        ),
        ("SCANBIND_SERVER_RECEIPTS_RETIRED_KEYS", &retired),
    ]);
    let device = Device {
        key: DeviceKey::from_pkcs8(device.key.to_pkcs8()).unwrap(),
        http: http(),
        base: second.base.clone(),
    };
    let keys: ReceiptKeySet = device
        .http
        .get(format!("{}/v1/receipt-keys", second.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys.keys.len(), 2);
    verify_receipt(&old_receipt, &keys).expect("old receipts still verify");
    // The old blob still opens; a refresh re-seals with the new key.
    let p2 = device
        .ok("POST", "/v1/payments", Some(json!({"appId": "a", "appOrderId": "after", "bindingId": b.binding_id,
            "sealedTokens": old_blob, "amount": {"currency": "HKD", "value": 100}, "description": "x"})))
        .await;
    assert_eq!(p2["status"], "succeeded");
    let new_receipt = verify_receipt(p2["receipt"].as_str().unwrap(), &keys).unwrap();
    assert_eq!(new_receipt.app_order_id, "after");
    let refreshed = device
        .ok(
            "POST",
            &format!("/v1/bindings/{}/refresh", b.binding_id),
            Some(json!({"sealedTokens": old_blob})),
        )
        .await;
    let new_blob = refreshed["sealedTokens"].as_str().unwrap();
    let old_kid = old_blob.split('.').nth(1).unwrap();
    let new_kid = new_blob.split('.').nth(1).unwrap();
    assert_ne!(old_kid, new_kid);

    // Once the old sealing key is dropped, old blobs no longer open.
    drop(second);
    let third = world.spawn_server(&[
        (
            "SCANBIND_SERVER_TOKENS_SEALING_KEYS",
            &format!("[\"{}\"]", dir.join("seal-new.key").display()),
        ),
        (
            "SCANBIND_SERVER_RECEIPTS_SIGNING_KEY",
            dir.join("receipt-new.pem").to_str().unwrap(),
        ),
    ]);
    let device = Device {
        key: DeviceKey::from_pkcs8(device.key.to_pkcs8()).unwrap(),
        http: http(),
        base: third.base.clone(),
    };
    let (status, err) = device
        .send("POST", "/v1/payments", Some(json!({"appId": "a", "appOrderId": "late", "bindingId": b.binding_id,
            "sealedTokens": old_blob, "amount": {"currency": "HKD", "value": 100}, "description": "x"})))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("token_invalid"))
    );
    let p3 = device
        .ok("POST", "/v1/payments", Some(json!({"appId": "a", "appOrderId": "late", "bindingId": b.binding_id,
            "sealedTokens": new_blob, "amount": {"currency": "HKD", "value": 100}, "description": "x"})))
        .await;
    assert_eq!(p3["status"], "succeeded");
}
