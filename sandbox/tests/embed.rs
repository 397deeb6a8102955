//! The embeddable API: a sandbox started in-process (as `scanbindd --dev` and the
//! merchant server's tests do), including a clean shutdown while a call hangs.

mod common;

use common::*;
use scanbind_ams::{PrivateKey, PublicKey};
use serde_json::json;

#[tokio::test]
async fn in_process_sandbox_serves_and_shuts_down_with_a_hanging_call() {
    let key = PrivateKey::from_file(&fixture("sandbox_key.pem")).unwrap();
    let expected = key.public_key();
    let merchant = PublicKey::from_file(&fixture("merchant_pub.pem")).unwrap();
    let handle = scanbind_sandbox::Sandbox::builder(key)
        .merchant(CLIENT_ID, merchant)
        .public_url("http://phone.example:8080/")
        .time_scale(0.001)
        .start()
        .await
        .unwrap();
    assert_eq!(handle.public_key(), &expected);
    assert_eq!(handle.public_url(), "http://phone.example:8080");
    assert_eq!(handle.base_url(), format!("http://{}", handle.addr()));
    let http = scanbind_sandbox::notify::http_client().unwrap();
    let m = Merchant {
        url: handle.base_url().to_owned(),
        client_id: CLIENT_ID.into(),
        key: std::sync::Arc::new(merchant_key()),
        sandbox_key: expected.clone(),
        http: http.clone(),
        prefix: "/ams/sandbox/api/v1".into(),
    };
    let consult = m
        .call(
            "authorizations/consult",
            &json!({"customerBelongsTo": "TNG", "authRedirectUrl": "https://m.example/r",
                    "scopes": ["AGREEMENT_PAY"], "authState": "e1", "env": {"terminalType": "WEB"}}),
        )
        .await;
    assert_eq!(consult.verified, Some(true));
    let qr = consult.body["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap();
    assert!(
        qr.starts_with("http://phone.example:8080/wallet/authorize/"),
        "{qr}"
    );

    // A hanging call in flight must not keep shutdown waiting.
    let arm = http
        .post(format!("{}/sandbox/v1/faults", handle.base_url()))
        .header("content-type", "application/json")
        .body(json!({"endpoint": "inquiryPayment", "kind": "hang"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(arm.status(), 200);
    let hanging = {
        let m = m.clone();
        tokio::spawn(async move {
            m.call("payments/inquiryPayment", &json!({"paymentRequestId": "x"}))
                .await
                .status
        })
    };
    // Make sure the hanging call reached the sandbox: the fault is consumed.
    loop {
        let faults = http
            .get(format!("{}/sandbox/v1/faults", handle.base_url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&faults).unwrap();
        if v["calls"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(WAIT, handle.shutdown())
        .await
        .expect("shutdown completes while a call hangs");
    assert_eq!(hanging.await.unwrap(), 503);
}
