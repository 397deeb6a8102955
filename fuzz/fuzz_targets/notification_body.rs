//! Notification bodies: the three notification models parsed and validated from any
//! bytes, and the verifier (headers + body) with a real Alipay public key: never a
//! panic, and nothing unsigned is ever accepted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanbind_ams::PublicKey;
use scanbind_ams::model::{
    AuthorizationNotification, Notification, PaymentNotification, RefundNotification,
};
use scanbind_ams::notify::{NotificationHeaders, NotificationVerifier};
use std::sync::OnceLock;

fn verifier() -> &'static NotificationVerifier {
    static V: OnceLock<NotificationVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let key = PublicKey::from_text(include_str!(
            "../../ams/tests/fixtures/vector_public_spki.pem"
        ))
        .expect("fixture key");
        NotificationVerifier::new("2188TEST0000001", key)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = serde_json::from_slice::<AuthorizationNotification>(data) {
        let _ = n.validate();
    }
    if let Ok(n) = serde_json::from_slice::<PaymentNotification>(data) {
        let _ = n.validate();
    }
    if let Ok(n) = serde_json::from_slice::<RefundNotification>(data) {
        let _ = n.validate();
    }
    // The first line is the signature header, the rest the body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let sig = std::str::from_utf8(&data[..split]).unwrap_or("");
    let body = data.get(split + 1..).unwrap_or(&[]);
    let headers = NotificationHeaders {
        client_id: Some("2188TEST0000001"),
        request_time: Some("2026-11-22T10:00:00+08:00"),
        signature: Some(sig),
    };
    let r = verifier().verify::<PaymentNotification>("/ams/notify/payment", headers, body);
    assert!(r.is_err(), "a forged notification was accepted");
});
