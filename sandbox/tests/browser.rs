//! The phone pages in a real headless browser (Debian chromium + chromedriver via selenium):
//! open the QR URL, click Approve (or Pay), and see the notification arrive.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::json;

fn python() -> PathBuf {
    let path = std::env::var_os("SCANBIND_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        path.exists(),
        "{} does not exist: run scripts/test (it creates .venv with selenium and installs chromium and chromium-driver)",
        path.display()
    );
    path
}

async fn click(url: &str, button: &str, outcome: &str, expected: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/browser_click.py");
    let out = tokio::process::Command::new(python())
        .arg(script)
        .args([url, button, outcome])
        .args(expected)
        .output()
        .await
        .expect("run the browser driver");
    assert!(
        out.status.success(),
        "browser step failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn approve_a_binding_qr_in_a_browser() {
    let sb = SandboxProc::start(&[]).await;
    let m = sb.merchant();
    let mut rx = Receiver::start(0).await;
    let consult = m
        .call(
            "authorizations/consult",
            &json!({
                "customerBelongsTo": "ALIPAY_HK",
                "authRedirectUrl": "https://merchant.example/return",
                "authNotifyUrl": format!("{}/notify/auth", rx.url),
                "scopes": ["AGREEMENT_PAY"],
                "authState": "browser-1",
                "env": {"terminalType": "WEB"},
                "extendInfo": json!({"merchantName": "Game <Store> & Co", "deviceName": "Living room TV", "matchCode": "4821"}).to_string()
            }),
        )
        .await;
    assert_eq!(consult.code(), "SUCCESS", "{:?}", consult.body);
    let qr = consult.body["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    click(
        &qr,
        "approve",
        "linked",
        &[
            "Game <Store> & Co",
            "Living room TV",
            "4821",
            "AGREEMENT_PAY",
        ],
    )
    .await;
    let n = rx.next_where("authState", "browser-1").await;
    assert_eq!(n.body["authorizationNotifyType"], "AUTHCODE_CREATED");
    assert!(rx.verify(&n, &sb.public_key));
    sb.stop().await;
}

#[tokio::test]
async fn pay_an_order_code_in_a_browser() {
    let sb = SandboxProc::start(&[]).await;
    let m = sb.merchant();
    let mut rx = Receiver::start(0).await;
    let a = m
        .call(
            "payments/pay",
            &json!({"productCode": "IN_STORE_PAYMENT", "paymentRequestId": "browser-oc",
              "paymentFactor": {"inStorePaymentScenario": "OrderCode"},
              "paymentMethod": {"paymentMethodType": "CONNECT_WALLET"},
              "paymentAmount": {"currency": "HKD", "value": "2550"},
              "order": {"referenceOrderId": "o1", "orderDescription": "Season pass", "orderAmount": {"currency": "HKD", "value": "2550"},
                "merchant": {"referenceMerchantId": "M1", "merchantMCC": "5816", "merchantName": "Arcade",
                  "store": {"referenceStoreId": "S1", "storeName": "Arcade Online", "storeMCC": "5816"}}},
              "paymentNotifyUrl": format!("{}/notify/pay", rx.url)}),
        )
        .await;
    assert_eq!(a.code(), "SUCCESS", "{:?}", a.body);
    let code = a.body["orderCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    click(
        &code,
        "pay",
        "Payment complete",
        &["Arcade", "Season pass", "HKD 25.50"],
    )
    .await;
    let n = rx.next_where("paymentRequestId", "browser-oc").await;
    assert_eq!(n.body["result"]["resultCode"], "SUCCESS");
    assert_eq!(n.body["paymentMethodType"], "ALIPAY_HK");
    let ledger = sb.ledger().await;
    assert_eq!(
        ledger_payment(&ledger, "browser-oc").unwrap()["moneyMovements"],
        1
    );
    sb.stop().await;
}
