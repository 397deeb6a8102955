//! ams-api.md §10, point by point, against a real `scanbind-sandbox` process.

mod common;

use common::*;
use serde_json::{Value, json};

const GCASH: &str = "GCASH";

/// The wallet balance of the sandbox user `user` (minor units, as text).
async fn balance(sb: &SandboxProc, user: &str) -> String {
    let users = sb.get("/sandbox/v1/users").await;
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user)
        .unwrap_or_else(|| panic!("no sandbox user {user}: {users}"))["balance"]["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn setup(fail_first: u32) -> (SandboxProc, Merchant, Receiver) {
    let sb = SandboxProc::start(&[]).await;
    let m = sb.merchant();
    let rx = Receiver::start(fail_first).await;
    (sb, m, rx)
}

// --- 1–3: paths, headers, signatures -------------------------------------------------

#[tokio::test]
async fn signed_response_with_lowercase_headers_on_both_paths() {
    let (sb, mut m, _rx) = setup(0).await;
    for prefix in ["/ams/api/v1", "/ams/sandbox/api/v1"] {
        m.prefix = prefix.into();
        let a = m
            .call(
                "payments/inquiryPayment",
                &json!({"paymentRequestId": "nope"}),
            )
            .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.code(), "ORDER_NOT_EXIST");
        assert_eq!(a.verified, Some(true), "response must verify over {prefix}");
        for h in ["client-id", "response-time", "signature"] {
            assert!(a.headers.contains_key(h), "missing {h}");
        }
        assert_eq!(a.headers["client-id"], CLIENT_ID);
    }
    sb.stop().await;
}

#[tokio::test]
async fn bad_missing_and_unknown_signatures_answer_without_signature() {
    let (sb, m, _rx) = setup(0).await;
    let path = "/ams/api/v1/payments/inquiryPayment";
    let body = br#"{"paymentRequestId":"x"}"#;
    // Missing.
    let a = m.raw(path, body, false).await;
    assert_eq!((a.status, a.code()), (200, "INVALID_SIGNATURE"));
    assert!(!a.headers.contains_key("signature"));
    // Signed for another path (the sandbox path is part of the content).
    let time = "2024-01-01T00:00:00+00:00";
    let sig =
        scanbind_ams::signature::sign(&m.key, 1, "POST", path, CLIENT_ID, time, body).unwrap();
    let resp = m
        .http
        .post(format!(
            "{}/ams/sandbox/api/v1/payments/inquiryPayment",
            sb.url
        ))
        .header("client-id", CLIENT_ID)
        .header("request-time", time)
        .header("signature", &sig)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let a = m.answer(path, resp).await;
    assert_eq!(a.code(), "INVALID_SIGNATURE");
    assert!(!a.headers.contains_key("signature"));
    // Tampered body.
    let resp = m
        .http
        .post(format!("{}{path}", sb.url))
        .header("client-id", CLIENT_ID)
        .header("request-time", time)
        .header("signature", &sig)
        .body(br#"{"paymentRequestId":"y"}"#.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(m.answer(path, resp).await.code(), "INVALID_SIGNATURE");
    // Tolerant parsing: spaces after commas, lowercase %-hex, header names in any case.
    let tolerant = sig
        .replace(',', ", ")
        .replace("%2F", "%2f")
        .replace("%2B", "%2b")
        .replace("%3D", "%3d");
    let resp = m
        .http
        .post(format!("{}{path}", sb.url))
        .header("CLIENT-ID", CLIENT_ID)
        .header("Request-Time", time)
        .header("SIGNATURE", tolerant)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let a = m.answer(path, resp).await;
    assert_eq!(a.code(), "ORDER_NOT_EXIST");
    assert_eq!(a.verified, Some(true));
    // Unknown key version and unknown client.
    let v2 = sig.replace("keyVersion=1", "keyVersion=2");
    let resp = m
        .http
        .post(format!("{}{path}", sb.url))
        .header("client-id", CLIENT_ID)
        .header("request-time", time)
        .header("signature", v2)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let a = m.answer(path, resp).await;
    assert_eq!(a.code(), "KEY_NOT_FOUND");
    assert!(!a.headers.contains_key("signature"));
    let mut stranger = m.clone();
    stranger.client_id = "SOMEONE_ELSE".into();
    let a = stranger.raw(path, body, true).await;
    assert_eq!(a.code(), "KEY_NOT_FOUND");
    assert!(!a.headers.contains_key("signature"));
    sb.stop().await;
}

#[tokio::test]
async fn absolute_form_request_target_uses_the_uri_path() {
    let (sb, m, _rx) = setup(0).await;
    // What the Python SDK sends: `POST http://host:port/ams/... HTTP/1.1`.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let path = "/ams/api/v1/payments/inquiryPayment";
    let body = r#"{"paymentRequestId":"abs"}"#;
    let time = "2024-01-01T00:00:00+00:00";
    let sig =
        scanbind_ams::signature::sign(&m.key, 1, "POST", path, CLIENT_ID, time, body.as_bytes())
            .unwrap();
    let host = sb.url.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {host}\r\nclient-id: {CLIENT_ID}\r\nRequest-Time: {time}\r\nSignature: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sb.url,
        body.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("ORDER_NOT_EXIST"), "{out}");
    assert!(
        out.contains("\r\nsignature: "),
        "lowercase signature header: {out}"
    );
    sb.stop().await;
}

// --- bad input ------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_never_crashes_and_never_changes_state() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let ok = m
        .call(
            "payments/pay",
            &pay_body("ok1", "PHP", "1000", &token, GCASH, None),
        )
        .await;
    assert_eq!(ok.code(), "SUCCESS");
    let before = sb.ledger().await;
    let users_before = sb.get("/sandbox/v1/users").await;
    let pay = "/ams/api/v1/payments/pay";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"{not json".to_vec(), "not valid JSON"),
        ("empty", Vec::new(), "not valid JSON"),
        ("array", b"[1,2]".to_vec(), "illegal parameter"),
        ("not utf-8", vec![0xff, 0xfe, 0x7b], "UTF-8"),
        (
            "trailing",
            format!("{} x", pay_body("t1", "PHP", "1000", &token, GCASH, None)).into_bytes(),
            "trailing",
        ),
    ];
    for (name, bytes, needle) in cases {
        let a = m.raw(pay, &bytes, true).await;
        assert_eq!(
            (a.status, a.code()),
            (200, "PARAM_ILLEGAL"),
            "{name}: {:?}",
            a.body
        );
        assert!(a.message().contains(needle), "{name}: {}", a.message());
        assert_eq!(a.verified, Some(true));
    }
    // Missing required fields name the field.
    let mut missing = pay_body("m1", "PHP", "1000", &token, GCASH, None);
    missing.as_object_mut().unwrap().remove("paymentRequestId");
    let a = m.call("payments/pay", &missing).await;
    assert_eq!(a.code(), "PARAM_ILLEGAL");
    assert!(a.message().contains("paymentRequestId"), "{}", a.message());
    let mut empty_id = pay_body("", "PHP", "1000", &token, GCASH, None);
    empty_id["paymentRequestId"] = "".into();
    let a = m.call("payments/pay", &empty_id).await;
    assert!(a.message().contains("paymentRequestId"), "{}", a.message());
    let a = m
        .call("authorizations/consult", &json!({"customerBelongsTo": GCASH, "scopes": ["AGREEMENT_PAY"], "authRedirectUrl": "x", "terminalType": "WEB"}))
        .await;
    assert_eq!(a.code(), "PARAM_ILLEGAL");
    assert!(a.message().contains("authState"), "{}", a.message());
    // Wrong types name the field.
    let mut wrong = pay_body("w1", "PHP", "1000", &token, GCASH, None);
    wrong["paymentAmount"]["value"] = json!(true);
    let a = m.call("payments/pay", &wrong).await;
    assert_eq!(a.code(), "PARAM_ILLEGAL");
    assert!(
        a.message().contains("paymentAmount.value"),
        "{}",
        a.message()
    );
    let mut wrong = pay_body("w2", "PHP", "1000", &token, GCASH, None);
    wrong["paymentAmount"]["value"] = json!("12.50");
    let a = m.call("payments/pay", &wrong).await;
    assert_eq!(a.code(), "PARAM_ILLEGAL");
    assert!(a.message().contains("paymentAmount"), "{}", a.message());
    let a = m.call("payments/refund", &json!({"refundRequestId": 5, "paymentId": "x", "refundAmount": {"currency": "PHP", "value": "1"}})).await;
    assert!(a.message().contains("refundRequestId"), "{}", a.message());
    // Oversize body: refused before parsing.
    let big = vec![b' '; 70 * 1024];
    let a = m.raw(pay, &big, true).await;
    assert_eq!((a.status, a.code()), (200, "PARAM_ILLEGAL"));
    assert!(a.message().contains("larger than"), "{}", a.message());
    // Unknown paths and methods.
    let a = m.call("payments/teleport", &json!({})).await;
    assert_eq!((a.status, a.code()), (200, "NO_INTERFACE_DEF"));
    assert_eq!(a.verified, Some(true));
    let resp = m.http.get(format!("{}{pay}", sb.url)).send().await.unwrap();
    let a = m.answer(pay, resp).await;
    assert_eq!((a.status, a.code()), (200, "METHOD_NOT_SUPPORTED"));
    // Nothing changed, and the sandbox still answers.
    assert_eq!(sb.ledger().await, before);
    assert_eq!(sb.get("/sandbox/v1/users").await, users_before);
    let again = m
        .call(
            "payments/pay",
            &pay_body("ok1", "PHP", "1000", &token, GCASH, None),
        )
        .await;
    assert_eq!(again.raw, ok.raw);
    sb.stop().await;
}

// --- authorization life ---------------------------------------------------------------

#[tokio::test]
async fn qr_auth_code_and_token_life() {
    let (sb, m, mut rx) = setup(0).await;
    let auth_url = format!("{}/notify/auth", rx.url);
    let consult = |state: &str| {
        json!({"customerBelongsTo": GCASH, "authRedirectUrl": "https://m.example/r",
               "authNotifyUrl": auth_url, "scopes": ["AGREEMENT_PAY"],
               "authState": state, "env": {"terminalType": "WEB"}})
    };
    // The QR value points at the sandbox's own phone page.
    let a = m.call("authorizations/consult", &consult("s1")).await;
    let qr = a.body["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        qr.starts_with(&format!("{}/wallet/authorize/", sb.url)),
        "{qr}"
    );
    assert_eq!(
        a.body["authCodeForm"]["codeDetails"][0]["codeValueType"],
        "QRCODE"
    );
    // Single use.
    let (s, _) = sb
        .post(
            "/sandbox/v1/scan",
            json!({"codeValue": qr, "decision": "approve"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = sb
        .post(
            "/sandbox/v1/scan",
            json!({"codeValue": qr, "decision": "approve"}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let n = rx.next().await;
    assert_eq!(n.body["authorizationNotifyType"], "AUTHCODE_CREATED");
    assert_eq!(n.body["authState"], "s1");
    assert!(n.body["userLoginId"].as_str().unwrap().contains("****"));
    assert_eq!(n.path, "/notify/auth");
    assert!(
        rx.verify(&n, &sb.public_key),
        "notification signed over the merchant path"
    );
    let code = n.body["authCode"].as_str().unwrap().to_owned();
    // authCode: single use.
    let apply =
        json!({"grantType": "AUTHORIZATION_CODE", "customerBelongsTo": GCASH, "authCode": code});
    let t = m.call("authorizations/applyToken", &apply).await;
    assert_eq!(t.code(), "SUCCESS");
    assert!(
        t.body["accessTokenExpiryTime"]
            .as_str()
            .unwrap()
            .ends_with("+08:00")
    );
    assert_eq!(
        m.call("authorizations/applyToken", &apply).await.code(),
        "INVALID_CODE"
    );
    // QR expiry: 15 minutes.
    let a = m.call("authorizations/consult", &consult("s2")).await;
    let qr2 = a.body["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.advance(15 * 60 + 1).await;
    let (s, v) = sb
        .post(
            "/sandbox/v1/scan",
            json!({"codeValue": qr2, "decision": "approve"}),
        )
        .await;
    assert_eq!(s, 409);
    assert!(v["error"].as_str().unwrap().contains("expired"));
    // authCode expiry: 1 minute.
    let a = m.call("authorizations/consult", &consult("s3")).await;
    let qr3 = a.body["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.post(
        "/sandbox/v1/scan",
        json!({"codeValue": qr3, "decision": "approve"}),
    )
    .await;
    let n = rx.next_where("authState", "s3").await;
    sb.advance(61).await;
    let late = json!({"grantType": "AUTHORIZATION_CODE", "customerBelongsTo": GCASH, "authCode": n.body["authCode"]});
    assert_eq!(
        m.call("authorizations/applyToken", &late).await.code(),
        "EXPIRED_CODE"
    );
    // Deny sends nothing and spends the QR.
    let a = m.call("authorizations/consult", &consult("s4")).await;
    let qr4 = a.body["authCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = sb
        .post(
            "/sandbox/v1/scan",
            json!({"codeValue": qr4, "decision": "deny"}),
        )
        .await;
    assert_eq!((s, v["outcome"].as_str()), (200, Some("denied")));
    sb.stop().await;
}

#[tokio::test]
async fn consult_returns_the_code_as_text_and_as_an_image() {
    let (sb, m, _rx) = setup(0).await;
    let a = m
        .call(
            "authorizations/consult",
            &json!({"customerBelongsTo": GCASH, "authRedirectUrl": "https://m.example/r",
                    "scopes": ["AGREEMENT_PAY"], "authState": "img1", "env": {"terminalType": "WEB"}}),
        )
        .await;
    let details = a.body["authCodeForm"]["codeDetails"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{details:?}");
    let text = details[0]["codeValue"].as_str().unwrap();
    assert_eq!(
        (&details[0]["codeValueType"], &details[0]["displayType"]),
        (&json!("QRCODE"), &json!("TEXT"))
    );
    assert_eq!(
        (&details[1]["codeValueType"], &details[1]["displayType"]),
        (&json!("QRCODE"), &json!("BIGIMAGE"))
    );
    let image_url = details[1]["codeValue"].as_str().unwrap();
    let resp = sb.http.get(image_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let png = resp.bytes().await.unwrap();
    // The image is a QR code of the text form: decoded with zbar, as a phone would.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qr.png");
    std::fs::write(&file, &png).unwrap();
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&file)
        .output()
        .expect("zbarimg (package zbar-tools) is needed by this test");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), text);
    // An unknown code has no image.
    let resp = sb
        .http
        .get(format!("{}/wallet/authorize/nope/qr.png", sb.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    sb.stop().await;
}

#[tokio::test]
async fn without_auth_notify_url_authorization_goes_to_the_dashboard_address() {
    let mut rx = Receiver::start(0).await;
    let dashboard = format!("{CLIENT_ID}={}/notify/dashboard", rx.url);
    let sb = SandboxProc::start(&["--notification-url", &dashboard]).await;
    let m = sb.merchant();
    let approve = |body: Value| {
        let sb = &sb;
        let m = &m;
        async move {
            let a = m.call("authorizations/consult", &body).await;
            assert_eq!(a.code(), "SUCCESS", "{:?}", a.body);
            let qr = a.body["authCodeForm"]["codeDetails"][0]["codeValue"]
                .as_str()
                .unwrap()
                .to_owned();
            let (s, _) = sb
                .post(
                    "/sandbox/v1/scan",
                    json!({"codeValue": qr, "decision": "approve"}),
                )
                .await;
            assert_eq!(s, 200);
        }
    };
    // consult names no authNotifyUrl: AUTHCODE_CREATED goes to the merchant's address.
    approve(
        json!({"customerBelongsTo": GCASH, "authRedirectUrl": "https://m.example/r",
                   "scopes": ["AGREEMENT_PAY"], "authState": "d1", "env": {"terminalType": "WEB"}}),
    )
    .await;
    let n = rx.next().await;
    assert_eq!(n.path, "/notify/dashboard");
    assert_eq!(n.body["authorizationNotifyType"], "AUTHCODE_CREATED");
    assert_eq!(n.body["authState"], "d1");
    assert!(rx.verify(&n, &sb.public_key));
    // An explicit authNotifyUrl still wins.
    approve(
        json!({"customerBelongsTo": GCASH, "authRedirectUrl": "https://m.example/r",
                   "authNotifyUrl": format!("{}/notify/auth", rx.url),
                   "scopes": ["AGREEMENT_PAY"], "authState": "d2", "env": {"terminalType": "WEB"}}),
    )
    .await;
    let n = rx.next().await;
    assert_eq!(n.path, "/notify/auth");
    assert_eq!(n.body["authState"], "d2");
    sb.stop().await;
}

#[tokio::test]
async fn refresh_revoke_and_expiry_invalidate_tokens() {
    let (sb, m, mut rx) = setup(0).await;
    let (access, refresh) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let r = m
        .call("authorizations/applyToken", &json!({"grantType": "REFRESH_TOKEN", "customerBelongsTo": GCASH, "refreshToken": refresh}))
        .await;
    assert_eq!(r.code(), "SUCCESS");
    let access2 = r.body["accessToken"].as_str().unwrap().to_owned();
    assert_ne!(access2, access);
    // A refresh token is spent once used.
    let again = m
        .call("authorizations/applyToken", &json!({"grantType": "REFRESH_TOKEN", "customerBelongsTo": GCASH, "refreshToken": refresh}))
        .await;
    assert_eq!(again.code(), "INVALID_ACCESS_TOKEN");
    let pay = m
        .call(
            "payments/pay",
            &pay_body("p1", "PHP", "500", &access2, GCASH, None),
        )
        .await;
    assert_eq!(pay.code(), "SUCCESS");
    assert_eq!(
        m.call("authorizations/revoke", &json!({"accessToken": access2}))
            .await
            .code(),
        "SUCCESS"
    );
    assert_eq!(
        m.call("authorizations/revoke", &json!({"accessToken": access2}))
            .await
            .code(),
        "SUCCESS"
    );
    let pay = m
        .call(
            "payments/pay",
            &pay_body("p2", "PHP", "500", &access2, GCASH, None),
        )
        .await;
    assert_eq!(pay.code(), "INVALID_ACCESS_TOKEN");
    // Expiry: the default access token lives 30 days.
    let (access3, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    sb.advance(31 * 24 * 3600).await;
    let pay = m
        .call(
            "payments/pay",
            &pay_body("p3", "PHP", "500", &access3, GCASH, None),
        )
        .await;
    assert_eq!(pay.code(), "INVALID_ACCESS_TOKEN");
    // Another merchant cannot use the token.
    let (access4, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let mut other = m.clone();
    other.client_id = "PLAIN_CLIENT_01".into();
    let pay = other
        .call(
            "payments/pay",
            &pay_body("p4", "PHP", "500", &access4, GCASH, None),
        )
        .await;
    assert_eq!(pay.code(), "INVALID_ACCESS_TOKEN");
    sb.stop().await;
}

#[tokio::test]
async fn unbind_on_the_phone_sends_token_canceled() {
    let (sb, m, mut rx) = setup(0).await;
    sb.post(
        "/sandbox/v1/users",
        json!({"user": "alice", "wallet": GCASH}),
    )
    .await;
    let (access, _) = bind(&sb, &m, &mut rx, GCASH, Some("alice")).await;
    let page = sb
        .http
        .get(format!("{}/wallet/account/alice", sb.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id = page
        .split("name=\"authorization\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let resp = sb
        .http
        .post(format!("{}/wallet/account/alice/unbind", sb.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("authorization={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let n = rx
        .next_where("authorizationNotifyType", "TOKEN_CANCELED")
        .await;
    assert_eq!(n.body["accessToken"], access.as_str());
    assert!(rx.verify(&n, &sb.public_key));
    let pay = m
        .call(
            "payments/pay",
            &pay_body("u1", "PHP", "500", &access, GCASH, None),
        )
        .await;
    assert_eq!(pay.code(), "INVALID_ACCESS_TOKEN");
    sb.stop().await;
}

// --- payments -------------------------------------------------------------------------

#[tokio::test]
async fn pay_is_idempotent_and_inconsistent_replays_are_refused() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let notify = format!("{}/notify/pay", rx.url);
    let body = pay_body("idem1", "PHP", "30000", &token, GCASH, Some(&notify));
    let first = m.call("payments/pay", &body).await;
    assert_eq!(first.code(), "SUCCESS");
    let n = rx.next_where("notifyType", "PAYMENT_RESULT").await;
    assert_eq!(n.body["result"]["resultStatus"], "S");
    assert_eq!(n.path, "/notify/pay");
    assert!(rx.verify(&n, &sb.public_key));
    let replay = m.call("payments/pay", &body).await;
    assert_eq!(
        replay.raw, first.raw,
        "identical replay returns the stored response"
    );
    let mut changed = body.clone();
    changed["paymentAmount"]["value"] = "30001".into();
    changed["order"]["orderAmount"]["value"] = "30001".into();
    assert_eq!(
        m.call("payments/pay", &changed).await.code(),
        "REPEAT_REQ_INCONSISTENT"
    );
    let ledger = sb.ledger().await;
    let p = ledger_payment(&ledger, "idem1").unwrap();
    assert_eq!(p["moneyMovements"], 1);
    assert_eq!(p["status"], "SUCCESS");
    // Inquiry: paymentId wins over paymentRequestId.
    let pid = first.body["paymentId"].as_str().unwrap();
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentId": pid, "paymentRequestId": "other"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "SUCCESS");
    assert_eq!(q.body["transactions"][0]["transactionType"], "PAYMENT");
    // The same request id from another merchant is a different payment.
    assert_eq!(ledger["payments"].as_array().unwrap().len(), 1);
    sb.stop().await;
}

#[tokio::test]
async fn failure_is_notified_when_the_order_closes() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let notify = format!("{}/notify/pay", rx.url);
    let a = m
        .call(
            "payments/pay",
            &pay_body("nf1", "PHP", "9905", &token, GCASH, Some(&notify)),
        )
        .await;
    assert_eq!(a.code(), "USER_BALANCE_NOT_ENOUGH");
    let pending = sb.notifications().await;
    assert!(
        pending
            .iter()
            .all(|n| n["body"]["paymentRequestId"] != "nf1"),
        "no failure notification before the order closes"
    );
    sb.advance(61).await;
    let n = rx.next_where("paymentRequestId", "nf1").await;
    assert_eq!(n.body["result"]["resultCode"], "USER_BALANCE_NOT_ENOUGH");
    assert_eq!(n.body["result"]["resultStatus"], "F");
    sb.stop().await;
}

#[tokio::test]
async fn wallet_currency_limits_balance_and_expiry() {
    let (sb, m, mut rx) = setup(0).await;
    sb.post(
        "/sandbox/v1/users",
        json!({"user": "poor", "wallet": "TRUEMONEY", "balance": "10000"}),
    )
    .await;
    let (token, _) = bind(&sb, &m, &mut rx, "TRUEMONEY", Some("poor")).await;
    let pay = |id: &str, cur: &str, v: &str| pay_body(id, cur, v, &token, "TRUEMONEY", None);
    assert_eq!(
        // A currency the sandbox has no quote for (see the next test for quoted ones).
        m.call("payments/pay", &pay("c1", "CHF", "100"))
            .await
            .code(),
        "CURRENCY_NOT_SUPPORT"
    );
    assert_eq!(
        m.call("payments/pay", &pay("b1", "THB", "20000"))
            .await
            .code(),
        "USER_BALANCE_NOT_ENOUGH"
    );
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "b1"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "FAIL");
    assert_eq!(q.body["paymentResultCode"], "USER_BALANCE_NOT_ENOUGH");
    assert_eq!(
        m.call("payments/pay", &pay("b2", "THB", "10000"))
            .await
            .code(),
        "SUCCESS"
    );
    assert_eq!(balance(&sb, "poor").await, "0");
    // Limits: TrueMoney 30,000 THB per transaction, 50,000 THB per day.
    sb.post(
        "/sandbox/v1/users",
        json!({"user": "rich", "wallet": "TRUEMONEY", "balance": "100000000"}),
    )
    .await;
    let (rich, _) = bind(&sb, &m, &mut rx, "TRUEMONEY", Some("rich")).await;
    let pay = |id: &str, v: &str| pay_body(id, "THB", v, &rich, "TRUEMONEY", None);
    assert_eq!(
        m.call("payments/pay", &pay("l1", "3000001")).await.code(),
        "USER_AMOUNT_EXCEED_LIMIT"
    );
    assert_eq!(
        m.call("payments/pay", &pay("l2", "3000000")).await.code(),
        "SUCCESS"
    );
    assert_eq!(
        m.call("payments/pay", &pay("l3", "2000000")).await.code(),
        "SUCCESS"
    );
    assert_eq!(
        m.call("payments/pay", &pay("l4", "100")).await.code(),
        "USER_AMOUNT_EXCEED_LIMIT"
    );
    sb.advance(24 * 3600).await;
    assert_eq!(
        m.call("payments/pay", &pay("l5", "100")).await.code(),
        "SUCCESS"
    );
    // Minimum amount (1 THB).
    assert_eq!(
        m.call("payments/pay", &pay("min", "99")).await.code(),
        "PARAM_ILLEGAL"
    );
    // Agreement pay expiry may only be shortened from 1 minute.
    let (rich2, _) = bind(&sb, &m, &mut rx, "TRUEMONEY", Some("rich")).await;
    let mut long = pay_body("e1", "THB", "100", &rich2, "TRUEMONEY", None);
    long["paymentExpiryTime"] = "2099-01-01T00:00:00+08:00".into();
    let a = m.call("payments/pay", &long).await;
    assert_eq!(a.code(), "PARAM_ILLEGAL");
    assert!(a.message().contains("paymentExpiryTime"));
    sb.stop().await;
}

#[tokio::test]
async fn a_payment_priced_in_another_currency_is_paid_at_the_quote() {
    let (sb, m, mut rx) = setup(0).await;
    sb.post(
        "/sandbox/v1/users",
        json!({"user": "ana", "wallet": GCASH, "balance": "100000"}),
    )
    .await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, Some("ana")).await;
    // HKD 10.00 from a PHP wallet at 7.36 PHP per HKD (0.92 / 0.125 CNY): PHP 73.60.
    let a = m
        .call(
            "payments/pay",
            &pay_body("fx1", "HKD", "1000", &token, GCASH, None),
        )
        .await;
    assert_eq!(a.code(), "SUCCESS", "{}", a.body);
    assert_eq!(
        a.body["paymentAmount"],
        json!({"currency": "HKD", "value": "1000"})
    );
    assert_eq!(
        a.body["actualPaymentAmount"],
        json!({"currency": "PHP", "value": "7360"})
    );
    let quote = &a.body["paymentQuote"];
    assert_eq!(
        (
            quote["quoteCurrencyPair"].as_str(),
            quote["quotePrice"].as_str()
        ),
        (Some("HKD/PHP"), Some("7.36"))
    );
    assert!(quote["quoteId"].is_string() && quote["quoteExpiryTime"].is_string());
    assert_eq!(balance(&sb, "ana").await, "92640");
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "fx1"}),
        )
        .await;
    assert_eq!(
        (&q.body["actualPaymentAmount"], &q.body["paymentQuote"]),
        (&a.body["actualPaymentAmount"], quote)
    );
    // The same-currency payment carries neither.
    let same = m
        .call(
            "payments/pay",
            &pay_body("same1", "PHP", "1000", &token, GCASH, None),
        )
        .await;
    assert_eq!(same.code(), "SUCCESS");
    assert!(
        same.body.get("actualPaymentAmount").is_none() && same.body.get("paymentQuote").is_none()
    );
    assert_eq!(balance(&sb, "ana").await, "91640");
    // A partial refund in HKD goes back at the payment's quote (HKD 1.01 = PHP 7.4336,
    // down to PHP 7.43); cancelling then returns exactly the rest of PHP 73.60.
    let r = m
        .call(
            "payments/refund",
            &json!({"refundRequestId": "fxr1", "paymentId": a.body["paymentId"], "refundAmount": {"currency": "HKD", "value": "101"}}),
        )
        .await;
    assert_eq!(r.code(), "SUCCESS", "{}", r.body);
    assert_eq!(balance(&sb, "ana").await, "92383");
    let c = m
        .call("payments/cancel", &json!({"paymentRequestId": "fx1"}))
        .await;
    assert_eq!(c.code(), "SUCCESS", "{}", c.body);
    assert_eq!(balance(&sb, "ana").await, "99000");
    let ledger = sb.ledger().await;
    let p = ledger_payment(&ledger, "fx1").unwrap();
    assert_eq!(
        (&p["actualAmount"], &p["actualRefunded"]),
        (
            &json!({"currency": "PHP", "value": "7360"}),
            &json!({"currency": "PHP", "value": "7360"})
        )
    );
    sb.stop().await;
}

#[tokio::test]
async fn a_pay_naming_another_wallet_than_the_tokens_is_refused_and_charges_nothing() {
    let (sb, m, mut rx) = setup(0).await;
    sb.post(
        "/sandbox/v1/users",
        json!({"user": "budi", "wallet": "DANA", "balance": "100000000"}),
    )
    .await;
    let (dana, _) = bind(&sb, &m, &mut rx, "DANA", Some("budi")).await;
    // A DANA token sent as ALIPAY_HK (in either wallet's currency) must not charge DANA.
    for (id, currency, value) in [("w1", "HKD", "1000"), ("w2", "IDR", "100000")] {
        let a = m
            .call(
                "payments/pay",
                &pay_body(id, currency, value, &dana, "ALIPAY_HK", None),
            )
            .await;
        assert_eq!(a.code(), "PARAM_ILLEGAL", "{id}");
        assert!(
            a.message().contains("paymentMethod.paymentMethodType"),
            "{}",
            a.message()
        );
        assert!(ledger_payment(&sb.ledger().await, id).is_none(), "{id}");
    }
    assert_eq!(balance(&sb, "budi").await, "100000000");
    // The same token with its own wallet pays.
    let a = m
        .call(
            "payments/pay",
            &pay_body("w3", "IDR", "100000", &dana, "DANA", None),
        )
        .await;
    assert_eq!(a.code(), "SUCCESS");
    sb.stop().await;
}

#[tokio::test]
async fn indonesian_payments_cannot_be_cancelled_only_refunded() {
    let (sb, m, mut rx) = setup(0).await;
    let (dana, _) = bind(&sb, &m, &mut rx, "DANA", None).await;
    let paid = m
        .call(
            "payments/pay",
            &pay_body("d1", "IDR", "100000", &dana, "DANA", None),
        )
        .await;
    assert_eq!(paid.code(), "SUCCESS");
    // At once, well inside the wallets' usual window: refused with Alipay's code.
    let a = m
        .call("payments/cancel", &json!({"paymentRequestId": "d1"}))
        .await;
    assert_eq!(a.code(), "CANCEL_WINDOW_EXCEED");
    assert!(a.message().contains("refund instead"), "{}", a.message());
    let ledger = sb.ledger().await;
    let p = ledger_payment(&ledger, "d1").unwrap();
    assert_eq!(p["status"], "SUCCESS", "{p}");
    // A refund in full works.
    let r = m
        .call(
            "payments/refund",
            &json!({"refundRequestId": "dr1", "paymentId": paid.body["paymentId"],
                    "refundAmount": {"currency": "IDR", "value": "100000"}}),
        )
        .await;
    assert_eq!(r.code(), "SUCCESS");
    // Not while it is in process either (magic 9903, in IDR 990300): the payment goes
    // on and ends as it would have.
    let slow = m
        .call(
            "payments/pay",
            &pay_body("d2", "IDR", "990300", &dana, "DANA", None),
        )
        .await;
    assert_eq!(slow.code(), "PAYMENT_IN_PROCESS");
    let a = m
        .call("payments/cancel", &json!({"paymentRequestId": "d2"}))
        .await;
    assert_eq!(a.code(), "CANCEL_WINDOW_EXCEED");
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "d2"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "PROCESSING");
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "d2"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "SUCCESS");
    // Another wallet's payment cancels as before.
    let (gcash, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let g = m
        .call(
            "payments/pay",
            &pay_body("g1", "PHP", "1000", &gcash, GCASH, None),
        )
        .await;
    assert_eq!(g.code(), "SUCCESS");
    let a = m
        .call("payments/cancel", &json!({"paymentRequestId": "g1"}))
        .await;
    assert_eq!(a.code(), "SUCCESS");
    sb.stop().await;
}

#[tokio::test]
async fn asynchronous_refunds_end_in_success_or_failure_with_notify_refund() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let paid = m
        .call(
            "payments/pay",
            &pay_body("ar1", "PHP", "10000", &token, GCASH, None),
        )
        .await;
    let pid = paid.body["paymentId"].as_str().unwrap().to_owned();
    let notify = format!("{}/notify/refund", rx.url);
    let refund = |id: &str, v: &str, asynchronous: bool| {
        json!({"refundRequestId": id, "paymentId": pid, "isAsyncRefund": asynchronous,
               "refundAmount": {"currency": "PHP", "value": v}, "refundNotifyUrl": notify})
    };
    let inquire = |id: &str| json!({"refundRequestId": id});
    // isAsyncRefund: U / REFUND_IN_PROCESS, PROCESSING on the first inquiry, SUCCESS on
    // the second, then notifyRefund.
    let a = m
        .call("payments/refund", &refund("arf1", "4000", true))
        .await;
    assert_eq!(
        (a.code(), a.body["result"]["resultStatus"].as_str()),
        ("REFUND_IN_PROCESS", Some("U"))
    );
    assert!(a.body["refundId"].is_string());
    let q = m.call("payments/inquiryRefund", &inquire("arf1")).await;
    assert_eq!(q.body["refundStatus"], "PROCESSING");
    // The amount is reserved while it is processing.
    assert_eq!(
        m.call("payments/refund", &refund("arf2", "6001", false))
            .await
            .code(),
        "REFUND_AMOUNT_EXCEED"
    );
    let q = m.call("payments/inquiryRefund", &inquire("arf1")).await;
    assert_eq!(q.body["refundStatus"], "SUCCESS");
    assert!(q.body["refundTime"].is_string());
    let n = rx.next_where("refundRequestId", "arf1").await;
    assert_eq!(n.body["refundStatus"], "SUCCESS");
    assert!(rx.verify(&n, &sb.public_key));
    // A replay after the end gets the final answer.
    assert_eq!(
        m.call("payments/refund", &refund("arf1", "4000", true))
            .await
            .code(),
        "SUCCESS"
    );
    // An armed in_process fault makes a refund end FAIL (here when the sandbox clock
    // passes its time, with no inquiry): notifyRefund FAIL, nothing moved, the amount
    // refundable again.
    sb.arm(
        json!({"endpoint": "refund", "kind": "in_process", "outcome": "PROCESS_FAIL",
                  "after_inquiries": 1_000, "after_seconds": 120}),
    )
    .await;
    let a = m
        .call("payments/refund", &refund("arf3", "6000", false))
        .await;
    assert_eq!(a.code(), "REFUND_IN_PROCESS");
    sb.advance(121).await;
    let n = rx.next_where("refundRequestId", "arf3").await;
    assert_eq!(n.body["refundStatus"], "FAIL");
    assert_eq!(n.body["result"]["resultCode"], "PROCESS_FAIL");
    assert!(n.body.get("refundTime").is_none(), "{}", n.body);
    let q = m.call("payments/inquiryRefund", &inquire("arf3")).await;
    assert_eq!(q.body["refundStatus"], "FAIL");
    let ledger = sb.ledger().await;
    let failed = ledger["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["refundRequestId"] == "arf3")
        .unwrap()
        .clone();
    assert_eq!(
        (&failed["status"], &failed["moneyMovements"]),
        (&json!("FAIL"), &json!(0))
    );
    assert_eq!(
        m.call("payments/refund", &refund("arf4", "6000", false))
            .await
            .code(),
        "SUCCESS"
    );
    sb.stop().await;
}

#[tokio::test]
async fn refunds_never_exceed_the_paid_amount_and_are_idempotent() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let paid = m
        .call(
            "payments/pay",
            &pay_body("r1", "PHP", "10000", &token, GCASH, None),
        )
        .await;
    let pid = paid.body["paymentId"].as_str().unwrap().to_owned();
    let notify = format!("{}/notify/refund", rx.url);
    let refund = |id: &str, v: &str| json!({"refundRequestId": id, "paymentId": pid, "refundAmount": {"currency": "PHP", "value": v}, "refundNotifyUrl": notify});
    let a = m.call("payments/refund", &refund("rf1", "6000")).await;
    assert_eq!(a.code(), "SUCCESS");
    let n = rx.next_where("notifyType", "REFUND_RESULT").await;
    assert_eq!(n.body["refundStatus"], "SUCCESS");
    assert!(rx.verify(&n, &sb.public_key));
    assert_eq!(
        m.call("payments/refund", &refund("rf1", "6000")).await.raw,
        a.raw
    );
    assert_eq!(
        m.call("payments/refund", &refund("rf1", "5000"))
            .await
            .code(),
        "REPEAT_REQ_INCONSISTENT"
    );
    assert_eq!(
        m.call("payments/refund", &refund("rf2", "4001"))
            .await
            .code(),
        "REFUND_AMOUNT_EXCEED"
    );
    assert_eq!(
        m.call("payments/refund", &refund("rf3", "4000"))
            .await
            .code(),
        "SUCCESS"
    );
    assert_eq!(
        m.call("payments/refund", &refund("rf4", "1")).await.code(),
        "REFUND_AMOUNT_EXCEED"
    );
    let q = m
        .call("payments/inquiryRefund", &json!({"refundRequestId": "rf1"}))
        .await;
    assert_eq!(
        (q.code(), q.body["refundStatus"].as_str()),
        ("SUCCESS", Some("SUCCESS"))
    );
    let q = m
        .call(
            "payments/inquiryRefund",
            &json!({"refundRequestId": "nope"}),
        )
        .await;
    assert_eq!(q.code(), "ORDER_NOT_EXIST");
    let ledger = sb.ledger().await;
    let refunds = ledger["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 2);
    assert!(refunds.iter().all(|r| r["moneyMovements"] == 1));
    // Refund period: 365 days.
    let paid = m
        .call(
            "payments/pay",
            &pay_body("r2", "PHP", "10000", &token, GCASH, None),
        )
        .await;
    let pid2 = paid.body["paymentId"].as_str().unwrap();
    sb.advance(366 * 24 * 3600).await;
    let late = json!({"refundRequestId": "late", "paymentId": pid2, "refundAmount": {"currency": "PHP", "value": "1"}});
    assert_eq!(
        m.call("payments/refund", &late).await.code(),
        "REFUND_WINDOW_EXCEED"
    );
    sb.stop().await;
}

#[tokio::test]
async fn cancel_refunds_a_paid_order_within_the_window_only() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    m.call(
        "payments/pay",
        &pay_body("k1", "PHP", "10000", &token, GCASH, None),
    )
    .await;
    let a = m
        .call("payments/cancel", &json!({"paymentRequestId": "k1"}))
        .await;
    assert_eq!(a.code(), "SUCCESS");
    assert!(a.body["cancelTime"].is_string());
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "k1"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "CANCELLED");
    assert_eq!(
        m.call("payments/cancel", &json!({"paymentRequestId": "k1"}))
            .await
            .code(),
        "SUCCESS"
    );
    let ledger = sb.ledger().await;
    let p = ledger_payment(&ledger, "k1").unwrap();
    assert_eq!(
        (p["moneyMovements"].as_u64(), p["reversals"].as_u64()),
        (Some(1), Some(1))
    );
    // After 00:15 UTC+8 the next day: refund instead.
    m.call(
        "payments/pay",
        &pay_body("k2", "PHP", "10000", &token, GCASH, None),
    )
    .await;
    sb.advance(2 * 24 * 3600).await;
    assert_eq!(
        m.call("payments/cancel", &json!({"paymentRequestId": "k2"}))
            .await
            .code(),
        "CANCEL_WINDOW_EXCEED"
    );
    assert_eq!(
        m.call("payments/cancel", &json!({"paymentRequestId": "none"}))
            .await
            .code(),
        "ORDER_NOT_EXIST"
    );
    sb.stop().await;
}

#[tokio::test]
async fn order_code_paid_on_the_phone_and_expiry() {
    let (sb, m, mut rx) = setup(0).await;
    let notify = format!("{}/notify/pay", rx.url);
    let oc = |id: &str| {
        json!({"productCode": "IN_STORE_PAYMENT", "paymentRequestId": id,
          "paymentFactor": {"inStorePaymentScenario": "OrderCode"},
          "paymentMethod": {"paymentMethodType": "CONNECT_WALLET"},
          "paymentAmount": {"currency": "HKD", "value": "1000"},
          "order": {"referenceOrderId": format!("o_{id}"), "orderDescription": "Coffee", "orderAmount": {"currency": "HKD", "value": "1000"},
            "merchant": {"referenceMerchantId": "M1", "merchantMCC": "5812", "merchantName": "Cafe",
              "store": {"referenceStoreId": "S1", "storeName": "Cafe Central", "storeMCC": "5812"}}},
          "paymentNotifyUrl": notify})
    };
    let a = m.call("payments/pay", &oc("oc1")).await;
    assert_eq!(a.code(), "SUCCESS");
    let code = a.body["orderCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(code.contains("/wallet/pay/"));
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "oc1"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "PROCESSING");
    let page = sb
        .http
        .get(&code)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Cafe") && page.contains("HKD 10.00"),
        "{page}"
    );
    let (s, v) = sb
        .post(
            "/sandbox/v1/scan",
            json!({"codeValue": code, "decision": "approve"}),
        )
        .await;
    assert_eq!((s, v["outcome"].as_str()), (200, Some("paid")));
    let n = rx.next_where("paymentRequestId", "oc1").await;
    assert_eq!(n.body["result"]["resultCode"], "SUCCESS");
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "oc1"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "SUCCESS");
    // Expiry must be under 30 minutes; an unpaid code closes at its expiry.
    let mut long = oc("oc2");
    long["paymentExpiryTime"] = "2099-01-01T00:00:00+08:00".into();
    assert_eq!(m.call("payments/pay", &long).await.code(), "PARAM_ILLEGAL");
    m.call("payments/pay", &oc("oc3")).await;
    sb.advance(16 * 60).await;
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "oc3"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "CANCELLED");
    sb.stop().await;
}

#[tokio::test]
async fn magic_amounts() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, "KAKAOPAY", None).await;
    let pay = |id: &str, v: &str| pay_body(id, "KRW", v, &token, "KAKAOPAY", None);
    let a = m.call("payments/pay", &pay("m1", "9901")).await;
    assert_eq!((a.code(), a.status_letter()), ("UNKNOWN_EXCEPTION", "U"));
    assert_eq!(
        m.call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "m1"})
        )
        .await
        .code(),
        "ORDER_NOT_EXIST"
    );
    for (id, v, code) in [
        ("m5", "9905", "USER_BALANCE_NOT_ENOUGH"),
        ("m6", "9906", "RISK_REJECT"),
        ("m7", "9907", "INVALID_ACCESS_TOKEN"),
        ("m8", "9908", "USER_AMOUNT_EXCEED_LIMIT"),
    ] {
        assert_eq!(m.call("payments/pay", &pay(id, v)).await.code(), code);
    }
    for (id, v, fin) in [("m3", "9903", "SUCCESS"), ("m4", "9904", "FAIL")] {
        let a = m.call("payments/pay", &pay(id, v)).await;
        assert_eq!((a.code(), a.status_letter()), ("PAYMENT_IN_PROCESS", "U"));
        let q = m
            .call("payments/inquiryPayment", &json!({"paymentRequestId": id}))
            .await;
        assert_eq!(q.body["paymentStatus"], "PROCESSING");
        let q = m
            .call("payments/inquiryPayment", &json!({"paymentRequestId": id}))
            .await;
        assert_eq!(q.body["paymentStatus"], fin);
    }
    // 9902: no answer; the client gives up.
    let hang = m
        .http
        .post(format!("{}/ams/api/v1/payments/pay", sb.url))
        .timeout(std::time::Duration::from_millis(500));
    let body = pay("m2", "9902").to_string();
    let time = "2024-01-01T00:00:00+00:00";
    let sig = scanbind_ams::signature::sign(
        &m.key,
        1,
        "POST",
        "/ams/api/v1/payments/pay",
        CLIENT_ID,
        time,
        body.as_bytes(),
    )
    .unwrap();
    let r = hang
        .header("client-id", CLIENT_ID)
        .header("request-time", time)
        .header("signature", sig)
        .body(body)
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    // Magic amounts apply whatever the wallet's minimum (DANA: 300 IDR = 30000 minor units);
    // IDR amounts end in 00, so the magic number is followed by 00 there.
    let (dana, _) = bind(&sb, &m, &mut rx, "DANA", None).await;
    let a = m
        .call(
            "payments/pay",
            &pay_body("m9", "IDR", "990500", &dana, "DANA", None),
        )
        .await;
    assert_eq!(a.code(), "USER_BALANCE_NOT_ENOUGH");
    // An IDR amount whose last two digits are not 00 is refused, naming the field and rule.
    let a = m
        .call(
            "payments/pay",
            &pay_body("m10", "IDR", "30050", &dana, "DANA", None),
        )
        .await;
    assert_eq!(a.code(), "PARAM_ILLEGAL");
    let msg = a.body["result"]["resultMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains("order.orderAmount.value") && msg.contains("last two digits must be 00"),
        "{msg}"
    );
    assert!(ledger_payment(&sb.ledger().await, "m10").is_none());
    let ledger = sb.ledger().await;
    assert_eq!(ledger_payment(&ledger, "m3").unwrap()["moneyMovements"], 1);
    assert_eq!(ledger_payment(&ledger, "m4").unwrap()["moneyMovements"], 0);
    sb.stop().await;
}

#[tokio::test]
async fn injected_faults() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let pay = |id: &str| pay_body(id, "PHP", "1000", &token, GCASH, None);
    // U / UNKNOWN_EXCEPTION after processing: the retry returns the stored success, money
    // moved once.
    sb.arm(json!({"endpoint": "pay", "kind": "unknown_exception", "processed": true}))
        .await;
    let a = m.call("payments/pay", &pay("f1")).await;
    assert_eq!((a.code(), a.verified), ("UNKNOWN_EXCEPTION", Some(true)));
    assert_eq!(m.call("payments/pay", &pay("f1")).await.code(), "SUCCESS");
    assert_eq!(
        ledger_payment(&sb.ledger().await, "f1").unwrap()["moneyMovements"],
        1
    );
    // Before processing: nothing recorded.
    sb.arm(json!({"endpoint": "pay", "kind": "unknown_exception", "count": 2}))
        .await;
    assert_eq!(
        m.call("payments/pay", &pay("f2")).await.code(),
        "UNKNOWN_EXCEPTION"
    );
    assert_eq!(
        m.call("payments/pay", &pay("f2")).await.code(),
        "UNKNOWN_EXCEPTION"
    );
    assert!(ledger_payment(&sb.ledger().await, "f2").is_none());
    assert_eq!(m.call("payments/pay", &pay("f2")).await.code(), "SUCCESS");
    // PAYMENT_IN_PROCESS then FAIL after 2 inquiries.
    sb.arm(json!({"endpoint": "pay", "kind": "in_process", "outcome": "USER_BALANCE_NOT_ENOUGH", "after_inquiries": 2})).await;
    assert_eq!(
        m.call("payments/pay", &pay("f3")).await.code(),
        "PAYMENT_IN_PROCESS"
    );
    for want in ["PROCESSING", "PROCESSING", "FAIL"] {
        let q = m
            .call(
                "payments/inquiryPayment",
                &json!({"paymentRequestId": "f3"}),
            )
            .await;
        assert_eq!(q.body["paymentStatus"], want);
    }
    // ... or once the clock passes the time.
    sb.arm(json!({"endpoint": "pay", "kind": "in_process", "after_inquiries": 100, "after_seconds": 30})).await;
    assert_eq!(
        m.call("payments/pay", &pay("f4")).await.code(),
        "PAYMENT_IN_PROCESS"
    );
    sb.advance(31).await;
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "f4"}),
        )
        .await;
    assert_eq!(q.body["paymentStatus"], "SUCCESS");
    // ... or parked (more inquiries and seconds than a test lasts) until released.
    assert_eq!(
        sb.post("/sandbox/v1/release", json!({})).await.1["payments"],
        0
    );
    sb.arm(json!({"endpoint": "pay", "kind": "in_process", "after_inquiries": 1000000, "after_seconds": 3600})).await;
    assert_eq!(
        m.call("payments/pay", &pay("f4p")).await.code(),
        "PAYMENT_IN_PROCESS"
    );
    let by_request = json!({"paymentRequestId": "f4p"});
    let inquire = || m.call("payments/inquiryPayment", &by_request);
    assert_eq!(inquire().await.body["paymentStatus"], "PROCESSING");
    let (status, released) = sb.post("/sandbox/v1/release", json!({})).await;
    assert_eq!(
        (status, released),
        (200, json!({"payments": 1, "refunds": 0}))
    );
    assert_eq!(inquire().await.body["paymentStatus"], "SUCCESS");
    // HTTP 5xx.
    sb.arm(json!({"endpoint": "inquiryPayment", "kind": "http_error", "status": 502}))
        .await;
    let a = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "f4"}),
        )
        .await;
    assert_eq!(a.status, 502);
    // Broken response signature (the call still takes effect).
    sb.arm(json!({"endpoint": "pay", "kind": "bad_signature"}))
        .await;
    let a = m.call("payments/pay", &pay("f5")).await;
    assert_eq!((a.code(), a.verified), ("SUCCESS", Some(false)));
    assert_eq!(
        m.call("payments/pay", &pay("f5")).await.verified,
        Some(true)
    );
    // Hang until the client times out (processed by default).
    sb.arm(json!({"endpoint": "refund", "kind": "hang"})).await;
    let pid = ledger_payment(&sb.ledger().await, "f5").unwrap()["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"refundRequestId": "hr", "paymentId": pid, "refundAmount": {"currency": "PHP", "value": "10"}}).to_string();
    let time = "2024-01-01T00:00:00+00:00";
    let sig = scanbind_ams::signature::sign(
        &m.key,
        1,
        "POST",
        "/ams/api/v1/payments/refund",
        CLIENT_ID,
        time,
        body.as_bytes(),
    )
    .unwrap();
    let r = m
        .http
        .post(format!("{}/ams/api/v1/payments/refund", sb.url))
        .timeout(std::time::Duration::from_millis(500))
        .header("client-id", CLIENT_ID)
        .header("request-time", time)
        .header("signature", sig)
        .body(body)
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    let q = m
        .call("payments/inquiryRefund", &json!({"refundRequestId": "hr"}))
        .await;
    assert_eq!(q.body["refundStatus"], "SUCCESS");
    // List and clear.
    sb.arm(json!({"endpoint": "cancel", "kind": "bad_signature", "count": 3}))
        .await;
    assert_eq!(
        sb.get("/sandbox/v1/faults").await["calls"][0]["remaining"],
        3
    );
    let resp = sb
        .http
        .delete(format!("{}/sandbox/v1/faults", sb.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sb.get("/sandbox/v1/faults").await["calls"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (s, _) = sb
        .post(
            "/sandbox/v1/faults",
            json!({"endpoint": "nope", "kind": "hang"}),
        )
        .await;
    assert_eq!(s, 400);
    sb.stop().await;
}

// --- notifications --------------------------------------------------------------------

#[tokio::test]
async fn notifications_retry_until_the_exact_ack() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let mut slow = Receiver::start(3).await;
    let notify = format!("{}/notify/pay?shop=1", slow.url);
    m.call(
        "payments/pay",
        &pay_body("n1", "PHP", "1000", &token, GCASH, Some(&notify)),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let n = slow.next().await;
        assert!(
            slow.verify(&n, &sb.public_key),
            "every attempt is signed over the merchant path"
        );
        assert_eq!(n.path, "/notify/pay?shop=1");
        seen.push(n);
    }
    assert!(
        seen.iter().all(|n| n.raw == seen[0].raw),
        "the same body every time"
    );
    // Wait until the log shows the ack.
    let record = loop {
        let log = sb.notifications().await;
        let rec = log
            .into_iter()
            .find(|r| r["body"]["paymentRequestId"] == "n1")
            .unwrap();
        if rec["status"] == "acknowledged" {
            break rec;
        }
        tokio::task::yield_now().await;
    };
    let attempts = record["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    assert!(attempts[..3].iter().all(|a| a["acknowledged"] == false));
    assert_eq!(attempts[3]["acknowledged"], true);
    sb.stop().await;
}

#[tokio::test]
async fn notification_faults_drop_duplicate_delay_reorder() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let notify = format!("{}/notify/pay", rx.url);
    let pay = |id: &str| pay_body(id, "PHP", "100", &token, GCASH, Some(&notify));
    sb.arm(json!({"endpoint": "notifications", "kind": "drop"}))
        .await;
    m.call("payments/pay", &pay("d1")).await;
    sb.arm(json!({"endpoint": "notifications", "kind": "duplicate"}))
        .await;
    m.call("payments/pay", &pay("d2")).await;
    let a = rx.next().await;
    let b = rx.next().await;
    assert_eq!(
        (
            a.body["paymentRequestId"].as_str(),
            b.body["paymentRequestId"].as_str()
        ),
        (Some("d2"), Some("d2"))
    );
    sb.arm(json!({"endpoint": "notifications", "kind": "reorder"}))
        .await;
    m.call("payments/pay", &pay("r1")).await;
    m.call("payments/pay", &pay("r2")).await;
    let first = rx.next().await;
    let second = rx.next().await;
    assert_eq!(first.body["paymentRequestId"], "r2");
    assert_eq!(second.body["paymentRequestId"], "r1");
    sb.arm(json!({"endpoint": "notifications", "kind": "delay", "ms": 50}))
        .await;
    m.call("payments/pay", &pay("l1")).await;
    assert_eq!(rx.next().await.body["paymentRequestId"], "l1");
    let log = sb.notifications().await;
    let dropped = log
        .iter()
        .find(|r| r["body"]["paymentRequestId"] == "d1")
        .unwrap();
    assert_eq!(dropped["status"], "dropped");
    assert!(dropped["attempts"].as_array().unwrap().is_empty());
    sb.stop().await;
}

// --- customs --------------------------------------------------------------------------

#[tokio::test]
async fn customs_declaration_and_inquiry() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, "ALIPAY_CN", None).await;
    let paid = m
        .call(
            "payments/pay",
            &pay_body("cn1", "CNY", "10000", &token, "ALIPAY_CN", None),
        )
        .await;
    let pid = paid.body["paymentId"].as_str().unwrap().to_owned();
    let declare = |id: &str, v: &str| {
        json!({"declarationRequestId": id, "paymentId": pid, "declarationAmount": {"currency": "CNY", "value": v},
               "customs": {"customsCode": "ZONGSHU", "region": "CN"},
               "merchantCustomsInfo": {"merchantCustomsCode": "MC1", "merchantCustomsName": "Shop"},
               "splitOrder": false})
    };
    let a = m.call("customs/declare", &declare("dc1", "10000")).await;
    assert_eq!(a.code(), "SUCCESS");
    assert!(a.body["customsPaymentId"].is_string());
    assert_eq!(
        m.call("customs/declare", &declare("dc1", "10000"))
            .await
            .raw,
        a.raw
    );
    assert_eq!(
        m.call("customs/declare", &declare("dc1", "9000"))
            .await
            .code(),
        "REPEAT_REQ_INCONSISTENT"
    );
    assert_eq!(
        m.call("customs/declare", &declare("dc2", "10001"))
            .await
            .code(),
        "PARAM_ILLEGAL"
    );
    // Declarations of one payment never add up to more than was paid.
    let over = m.call("customs/declare", &declare("dc3", "1")).await;
    assert_eq!(over.code(), "PARAM_ILLEGAL", "{}", over.body);
    // Unknown customs office, wrong region.
    let mut bad = declare("dc4", "1");
    bad["customs"]["customsCode"] = json!("ATLANTIS");
    let a = m.call("customs/declare", &bad).await;
    assert_eq!(a.code(), "PARAM_ILLEGAL");
    assert!(a.message().contains("customs.customsCode"), "{}", a.body);
    bad["customs"] = json!({"customsCode": "ZONGSHU", "region": "US"});
    assert_eq!(
        m.call("customs/declare", &bad).await.code(),
        "PARAM_ILLEGAL"
    );
    // Hangzhou declares through ZONGSHU: "HANGZHOU" is not an office Alipay lists.
    bad["customs"] = json!({"customsCode": "HANGZHOU", "region": "CN"});
    assert_eq!(
        m.call("customs/declare", &bad).await.code(),
        "PARAM_ILLEGAL"
    );
    // A CNY payment's customsDeclarationAmount is its amount.
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "cn1"}),
        )
        .await;
    assert_eq!(
        q.body["customsDeclarationAmount"],
        json!({"currency": "CNY", "value": "10000"})
    );
    // A payment in another currency is declared up to its CNY value at the sandbox's
    // quote (300.00 PHP at 0.125 = 37.50 CNY), in inquiryPayment and notifyPayment.
    let (gcash, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let notify = format!("{}/notify/pay", rx.url);
    let php = m
        .call(
            "payments/pay",
            &pay_body("ph1", "PHP", "30000", &gcash, GCASH, Some(&notify)),
        )
        .await;
    assert_eq!(php.code(), "SUCCESS");
    let n = rx.next_where("paymentRequestId", "ph1").await;
    assert_eq!(
        n.body["customsDeclarationAmount"],
        json!({"currency": "CNY", "value": "3750"})
    );
    let q = m
        .call(
            "payments/inquiryPayment",
            &json!({"paymentRequestId": "ph1"}),
        )
        .await;
    assert_eq!(
        q.body["customsDeclarationAmount"],
        json!({"currency": "CNY", "value": "3750"})
    );
    let php_id = php.body["paymentId"].as_str().unwrap().to_owned();
    let declare_php = |id: &str, v: &str| {
        let mut d = declare(id, v);
        d["paymentId"] = json!(php_id);
        d
    };
    assert_eq!(
        m.call("customs/declare", &declare_php("dp1", "3000"))
            .await
            .code(),
        "SUCCESS"
    );
    let over = m.call("customs/declare", &declare_php("dp2", "751")).await;
    assert_eq!(over.code(), "PARAM_ILLEGAL");
    assert!(
        over.message().contains("customsDeclarationAmount"),
        "{}",
        over.body
    );
    assert_eq!(
        m.call("customs/declare", &declare_php("dp3", "750"))
            .await
            .code(),
        "SUCCESS"
    );
    let q = m
        .call(
            "customs/inquiryDeclarationRequests",
            &json!({"declarationRequestIds": ["dc1", "zz"]}),
        )
        .await;
    assert_eq!(q.body["declarationRequestsNotFound"], json!(["zz"]));
    assert_eq!(
        q.body["declarationRecords"][0]["declarationRequestStatus"],
        "PROCESSING"
    );
    sb.advance(120).await;
    let q = m
        .call(
            "customs/inquiryDeclarationRequests",
            &json!({"declarationRequestIds": ["dc1"]}),
        )
        .await;
    let rec: &Value = &q.body["declarationRecords"][0];
    assert_eq!(rec["declarationRequestStatus"], "SUCCESS");
    assert_eq!(rec["declarationAmount"]["value"], "10000");
    let ids: Vec<String> = (0..11).map(|i| format!("id{i}")).collect();
    let q = m
        .call(
            "customs/inquiryDeclarationRequests",
            &json!({"declarationRequestIds": ids}),
        )
        .await;
    assert_eq!(q.code(), "PARAM_ILLEGAL");
    sb.stop().await;
}

// --- settlement reports ---------------------------------------------------------------

#[tokio::test]
async fn settlement_reports_per_day_and_currency() {
    let (sb, m, mut rx) = setup(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let paid = m
        .call(
            "payments/pay",
            &pay_body("rp1", "PHP", "30000", &token, GCASH, None),
        )
        .await;
    assert_eq!(paid.code(), "SUCCESS");
    let pid = paid.body["paymentId"].as_str().unwrap().to_owned();
    let r = m
        .call(
            "payments/refund",
            &json!({"refundRequestId": "rf1", "paymentId": pid, "refundAmount": {"currency": "PHP", "value": "10000"}}),
        )
        .await;
    assert_eq!(r.code(), "SUCCESS");
    let clock = sb.get("/sandbox/v1/clock").await;
    let now = clock["now"].as_str().unwrap();
    // The sandbox clock prints UTC+8; reports use UTC days.
    let t = time::OffsetDateTime::parse(now, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .to_offset(time::UtcOffset::UTC);
    let date = format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day());
    let day = date.replace('-', "");
    let v = sb.get(&format!("/sandbox/v1/reports?date={date}")).await;
    let files = v["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            format!("settlementDetails_PHP_{day}.csv"),
            format!("settlementSummary_PHP_{day}.csv"),
            format!("transactionDetails_PHP_{day}.csv")
        ]
    );
    let content = |i: usize| files[i]["content"].as_str().unwrap().to_owned();
    // Alipay's layout: a header line of parameter names, one row per record, `<END>`.
    let rows = |i: usize| -> Vec<std::collections::BTreeMap<String, String>> {
        let text = content(i);
        let body = text
            .strip_suffix("\n<END>\n")
            .expect("the last line is <END>");
        let mut rdr = csv::ReaderBuilder::new().from_reader(body.as_bytes());
        let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_owned).collect();
        rdr.records()
            .map(|r| {
                header
                    .iter()
                    .cloned()
                    .zip(r.unwrap().iter().map(str::to_owned))
                    .collect()
            })
            .collect()
    };
    assert!(
        content(2).starts_with("customerId,PSP,ARN,referenceMerchantId,referenceStoreId,transactionId,transactionRequestId,"),
        "{}",
        content(2)
    );
    let tx = rows(2);
    assert_eq!(tx.len(), 2, "{tx:?}");
    let of = |rows: &[std::collections::BTreeMap<String, String>], kind: &str| {
        rows.iter()
            .find(|r| r["transactionType"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {rows:?}"))
            .clone()
    };
    let pay_row = &of(&tx, "PAYMENT");
    assert_eq!(pay_row["transactionType"], "PAYMENT");
    assert_eq!(pay_row["transactionId"], pid);
    assert_eq!(pay_row["transactionRequestId"], "rp1");
    assert_eq!(pay_row["status"], "SUCCESS");
    assert_eq!(pay_row["PSP"], "Antom");
    assert_eq!(pay_row["transactionAmountValue"], "300.00");
    assert_eq!(pay_row["transactionCurrency"], "PHP");
    assert_eq!(pay_row["productCode"], "AGREEMENT_PAYMENT");
    let refund_row = &of(&tx, "REFUND");
    assert_eq!(refund_row["transactionType"], "REFUND");
    assert_eq!(refund_row["transactionRequestId"], "rf1");
    assert_eq!(refund_row["originalTransactionRequestId"], "rp1");
    assert_eq!(refund_row["transactionAmountValue"], "-100.00");
    // 300.00 at 1.80 % is 5.40, deducted; the refund returns 1.80. The settlement amount
    // is net of the fee.
    let st = rows(0);
    let (st_pay, st_refund) = (of(&st, "PAYMENT"), of(&st, "REFUND"));
    let batch = st_pay["settlementBatchId"].clone();
    assert!(batch.len() == 19 && batch.starts_with(&day), "{batch}");
    for (row, amount, fee, net) in [
        (&st_pay, "300.00", "-5.40", "294.60"),
        (&st_refund, "-100.00", "1.80", "-98.20"),
    ] {
        assert_eq!(row["settlementBatchId"], batch);
        assert_eq!(row["transactionAmountValue"], amount);
        assert_eq!(row["paymentMethodFeeAmountValue"], fee);
        assert_eq!(row["settlementAmountValue"], net);
        assert_eq!(row["settlementCurrency"], "PHP");
        assert_eq!(row["quoteCurrencyPair"], "PHP/PHP");
        assert_eq!(row["quotePrice"], "1");
    }
    let sum = rows(1);
    let kinds: Vec<&str> = sum.iter().map(|r| r["summaryType"].as_str()).collect();
    assert_eq!(kinds, ["TOTAL", "PAYMENT", "REFUND"]);
    assert_eq!(sum[0]["settlementBatchId"], batch);
    assert_eq!(sum[0]["count"], "2");
    assert_eq!(sum[0]["settlementAmountValue"], "196.40");
    assert_eq!(sum[0]["paymentMethodFeeAmountValue"], "-3.60");
    // Another day has no reports; a bad date is refused.
    let empty = sb.get("/sandbox/v1/reports?date=2001-01-01").await;
    assert!(empty["files"].as_array().unwrap().is_empty());
    let status = sb
        .http
        .get(format!("{}/sandbox/v1/reports?date=yesterday", sb.url))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 400);
    // The CLI writes the same files.
    let out_dir = sb.dir.path().join("reports");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanbind-sandbox"))
        .args(["reports", "--date", &date, "--url", &sb.url, "--dir"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(out_dir.join(name)).unwrap(),
            content(i)
        );
    }
    sb.stop().await;
}

// --- state file -----------------------------------------------------------------------

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().unwrap().to_owned();
    let sb = SandboxProc::start_in(dir, &["--state-file", &state_arg]).await;
    let m = sb.merchant();
    let mut rx = Receiver::start(0).await;
    let (token, _) = bind(&sb, &m, &mut rx, GCASH, None).await;
    let first = m
        .call(
            "payments/pay",
            &pay_body("s1", "PHP", "1000", &token, GCASH, None),
        )
        .await;
    sb.advance(3600).await;
    let before = sb.ledger().await;
    let dir = sb.stop().await;
    assert!(state.exists());
    let sb = SandboxProc::start_in(dir, &["--state-file", &state_arg]).await;
    let m = sb.merchant();
    assert_eq!(sb.ledger().await, before);
    assert!(
        sb.get("/sandbox/v1/clock").await["offsetSeconds"]
            .as_u64()
            .unwrap()
            >= 3600
    );
    // The token still works, and the idempotent replay still answers the same.
    let replay = m
        .call(
            "payments/pay",
            &pay_body("s1", "PHP", "1000", &token, GCASH, None),
        )
        .await;
    assert_eq!(replay.body, first.body);
    assert_eq!(
        m.call(
            "payments/pay",
            &pay_body("s2", "PHP", "1000", &token, GCASH, None)
        )
        .await
        .code(),
        "SUCCESS"
    );
    sb.stop().await;
}
