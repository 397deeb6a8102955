//! Two `scanbind-server` processes on one PostgreSQL behave as one service.

mod common;

use common::*;
use scanbind_device_api::DeviceKey;
use scanbind_device_api::types::Event;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_events_and_payments() {
    let world = world(Backend::Postgres).await;
    let a = world.spawn_server(&[]);
    let b = world.spawn_server(&[]);
    let on_a = Device::new(&a.base);
    on_a.register().await;
    let on_b = Device {
        key: DeviceKey::from_pkcs8(on_a.key.to_pkcs8()).unwrap(),
        http: http(),
        base: b.base.clone(),
    };
    // The device listens on B; the binding is started on A, so Alipay notifies A.
    let mut events = on_b.events(None).await;
    let start = on_a
        .ok("POST", "/v1/bindings", Some(json!({"wallet": "ALIPAY_HK"})))
        .await;
    world
        .scan(start["codeValue"].as_str().unwrap(), "approve")
        .await;
    let ev = events.next().await;
    let Event::BindingCompleted(binding) = ev.event else {
        panic!("expected binding.completed, got {ev:?}")
    };
    let sealed = binding.sealed_tokens.unwrap();
    // A payment left unknown on A (PAYMENT_IN_PROCESS) is finished once, by one of them.
    let p = on_a
        .ok("POST", "/v1/payments", Some(json!({"appId": "a", "appOrderId": "r-1", "bindingId": binding.binding_id,
            "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 9903}, "description": "x"})))
        .await;
    assert_eq!(p["status"], "pending");
    let ev = events.next().await;
    let Event::PaymentResult(done) = ev.event else {
        panic!("expected payment.result, got {ev:?}")
    };
    assert_eq!(done.status.as_str(), "succeeded");
    // Exactly one result event: the next event on the stream is the next payment's.
    let p2 = on_b
        .ok("POST", "/v1/payments", Some(json!({"appId": "a", "appOrderId": "r-2", "bindingId": binding.binding_id,
            "sealedTokens": sealed, "amount": {"currency": "HKD", "value": 100}, "description": "x"})))
        .await;
    assert_eq!(p2["status"], "succeeded");
    let ev = events.next().await;
    let Event::PaymentResult(next) = ev.event else {
        panic!("expected payment.result, got {ev:?}")
    };
    assert_eq!(next.app_order_id, "r-2");
    let ledger = world.ledger().await;
    for p in ledger["payments"].as_array().unwrap() {
        assert!(p["moneyMovements"].as_i64().unwrap() <= 1, "{ledger}");
    }
}
