//! Sellers: several merchant identities under one client (combined checkout), against a
//! real `scanbind-sandbox` process started with `--seller`.

mod common;

use common::*;
use serde_json::{Value, json};

const GCASH: &str = "GCASH";

fn with_seller(mut body: Value, rmid: &str) -> Value {
    body["order"]["merchant"] = json!({
        "referenceMerchantId": rmid,
        "merchantMCC": "5411",
        "merchantName": "ignored by the sandbox",
    });
    body
}

#[tokio::test]
async fn payments_per_seller_are_recorded_refused_and_faulted_per_part() {
    let sb = SandboxProc::start(&[
        "--seller",
        &format!("{CLIENT_ID}=SELLER_A:Alpha Books"),
        "--seller",
        &format!("{CLIENT_ID}=SELLER_B"),
        "--seller",
        "PLAIN_CLIENT_01=SELLER_C:Only for the other client",
    ])
    .await;
    let m = sb.merchant();
    let mut rx = Receiver::start(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;

    let sellers = sb.get("/sandbox/v1/sellers").await;
    assert_eq!(sellers["sellers"].as_array().unwrap().len(), 3, "{sellers}");

    // A registered seller: paid and recorded for it.
    let a = m
        .call(
            "payments/pay",
            &with_seller(
                pay_body("s1", "PHP", "1500", &token, GCASH, None),
                "SELLER_A",
            ),
        )
        .await;
    assert_eq!(a.code(), "SUCCESS", "{:?}", a.body);
    // The client itself named as the merchant, and no merchant at all: the client.
    let b = m
        .call(
            "payments/pay",
            &with_seller(
                pay_body("s2", "PHP", "2500", &token, GCASH, None),
                CLIENT_ID,
            ),
        )
        .await;
    assert_eq!(b.code(), "SUCCESS", "{:?}", b.body);
    // A magic amount fails this one part only.
    let c = m
        .call(
            "payments/pay",
            &with_seller(
                pay_body("s3", "PHP", "9905", &token, GCASH, None),
                "SELLER_B",
            ),
        )
        .await;
    assert_eq!(c.code(), "USER_BALANCE_NOT_ENOUGH", "{:?}", c.body);
    assert_eq!(c.status_letter(), "F");
    // Unknown seller, and a seller of another client: refused, nothing recorded.
    for (id, rmid) in [("s4", "SELLER_Z"), ("s5", "SELLER_C")] {
        let d = m
            .call(
                "payments/pay",
                &with_seller(pay_body(id, "PHP", "1000", &token, GCASH, None), rmid),
            )
            .await;
        assert_eq!(d.code(), "ACCESS_DENIED", "{:?}", d.body);
        assert_eq!(d.status_letter(), "F");
    }

    let ledger = sb.ledger().await;
    let s1 = ledger_payment(&ledger, "s1").unwrap();
    assert_eq!(s1["referenceMerchantId"], "SELLER_A");
    assert_eq!(s1["merchantName"], "Alpha Books");
    assert_eq!(s1["status"], "SUCCESS");
    assert_eq!(s1["moneyMovements"], 1);
    let s2 = ledger_payment(&ledger, "s2").unwrap();
    assert_eq!(s2["referenceMerchantId"], CLIENT_ID);
    let s3 = ledger_payment(&ledger, "s3").unwrap();
    assert_eq!(s3["referenceMerchantId"], "SELLER_B");
    assert_eq!(s3["merchantName"], "SELLER_B");
    assert_eq!(s3["status"], "FAIL");
    assert_eq!(s3["moneyMovements"], 0);
    assert!(ledger_payment(&ledger, "s4").is_none());
    assert!(ledger_payment(&ledger, "s5").is_none());

    // A seller's part is cancelled like any payment (money back, once).
    let k = m
        .call("payments/cancel", &json!({"paymentRequestId": "s1"}))
        .await;
    assert_eq!(k.code(), "SUCCESS", "{:?}", k.body);
    let ledger = sb.ledger().await;
    let s1 = ledger_payment(&ledger, "s1").unwrap();
    assert_eq!(s1["status"], "CANCELLED");
    assert_eq!(s1["reversals"], 1);
    assert_eq!(s1["refunded"]["value"], "1500");
    sb.stop().await;
}

#[tokio::test]
async fn a_bad_seller_argument_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanbind-sandbox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--seller",
            "NO_EQUALS_SIGN",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--seller"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_fault_can_skip_calls_to_hit_a_later_part() {
    let sb = SandboxProc::start(&["--seller", &format!("{CLIENT_ID}=SELLER_A")]).await;
    let m = sb.merchant();
    let mut rx = Receiver::start(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    // The third pay (and only it) answers U without effect.
    sb.arm(json!({"endpoint": "pay", "kind": "unknown_exception", "skip": 2}))
        .await;
    let mut codes = Vec::new();
    for i in 0..4 {
        let a = m
            .call(
                "payments/pay",
                &with_seller(
                    pay_body(&format!("k{i}"), "PHP", "1000", &token, GCASH, None),
                    "SELLER_A",
                ),
            )
            .await;
        codes.push(a.code().to_owned());
    }
    assert_eq!(
        codes,
        ["SUCCESS", "SUCCESS", "UNKNOWN_EXCEPTION", "SUCCESS"],
        "{codes:?}"
    );
    let ledger = sb.ledger().await;
    assert!(ledger_payment(&ledger, "k2").is_none());
    assert_eq!(ledger_payment(&ledger, "k3").unwrap()["status"], "SUCCESS");
    sb.stop().await;
}
