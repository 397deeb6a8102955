//! Incoming notifications: signature over the merchant's path, typed parse, validation.

use scanbind_ams::model::{
    AuthorizationNotification, AuthorizationNotifyType, PaymentNotification,
};
use scanbind_ams::notify::{ACK_BODY, NotificationHeaders, NotificationVerifier, is_ack};
use scanbind_ams::{Error, PrivateKey, signature};

const CLIENT_ID: &str = "2188120000000001";
const PATH: &str = "/ams/notify/authorization";
const TIME: &str = "2024-01-01T12:00:00+08:00";

fn alipay_key() -> PrivateKey {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/other_rsa2048.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    PrivateKey::from_text(&text).unwrap()
}

fn verifier() -> NotificationVerifier {
    NotificationVerifier::new(CLIENT_ID, alipay_key().public_key())
}

const AUTHCODE: &str = r#"{"authorizationNotifyType":"AUTHCODE_CREATED","authCode":"3AB2F588D14B43238637264FCA5AAF35",
 "authState":"663A8FA9-D836-48EE-8AA1-1FF682989DC7","userLoginId":"63****1234",
 "result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;

fn signed(path: &str, body: &str) -> String {
    signature::sign(
        &alipay_key(),
        1,
        "POST",
        path,
        CLIENT_ID,
        TIME,
        body.as_bytes(),
    )
    .unwrap()
}

fn headers(sig: &str) -> NotificationHeaders<'_> {
    NotificationHeaders {
        client_id: Some(CLIENT_ID),
        request_time: Some(TIME),
        signature: Some(sig),
    }
}

#[test]
fn genuine_notification_verifies_and_parses() {
    let sig = signed(PATH, AUTHCODE);
    let n: AuthorizationNotification = verifier()
        .verify(PATH, headers(&sig), AUTHCODE.as_bytes())
        .unwrap();
    assert_eq!(
        n.authorization_notify_type,
        AuthorizationNotifyType::AuthcodeCreated
    );
    assert_eq!(
        n.auth_state.as_deref(),
        Some("663A8FA9-D836-48EE-8AA1-1FF682989DC7")
    );
    assert_eq!(
        n.auth_code.as_ref().map(|c| c.expose()),
        Some("3AB2F588D14B43238637264FCA5AAF35")
    );
    assert!(
        !format!("{n:?}").contains("3AB2F588"),
        "Debug must not show the authCode"
    );
}

#[test]
fn forged_or_misdirected_notifications_are_refused() {
    let v = verifier();
    let sig = signed(PATH, AUTHCODE);
    // Body altered after signing.
    let altered = AUTHCODE.replace("63****1234", "63****9999");
    assert!(matches!(
        v.verify::<AuthorizationNotification>(PATH, headers(&sig), altered.as_bytes()),
        Err(Error::BadSignature)
    ));
    // Signed over another path (e.g. replayed from the payment endpoint).
    assert!(matches!(
        v.verify::<AuthorizationNotification>(
            "/ams/notify/payment",
            headers(&sig),
            AUTHCODE.as_bytes()
        ),
        Err(Error::BadSignature)
    ));
    // Signed by someone else's key.
    let forger = PrivateKey::from_text(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/vector_private_pkcs8.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let forged = signature::sign(
        &forger,
        1,
        "POST",
        PATH,
        CLIENT_ID,
        TIME,
        AUTHCODE.as_bytes(),
    )
    .unwrap();
    assert!(matches!(
        v.verify::<AuthorizationNotification>(PATH, headers(&forged), AUTHCODE.as_bytes()),
        Err(Error::BadSignature)
    ));
    // Another request-time than the one signed.
    let h = NotificationHeaders {
        request_time: Some("2024-01-01T12:00:01+08:00"),
        ..headers(&sig)
    };
    assert!(matches!(
        v.verify::<AuthorizationNotification>(PATH, h, AUTHCODE.as_bytes()),
        Err(Error::BadSignature)
    ));
    // Unsigned, no time, no client id, another client id.
    let none = NotificationHeaders {
        signature: None,
        ..headers(&sig)
    };
    assert!(matches!(
        v.verify::<AuthorizationNotification>(PATH, none, AUTHCODE.as_bytes()),
        Err(Error::MissingSignature)
    ));
    let none = NotificationHeaders {
        request_time: None,
        ..headers(&sig)
    };
    assert!(matches!(
        v.verify::<AuthorizationNotification>(PATH, none, AUTHCODE.as_bytes()),
        Err(Error::MissingHeader("request-time"))
    ));
    let none = NotificationHeaders {
        client_id: None,
        ..headers(&sig)
    };
    assert!(matches!(
        v.verify::<AuthorizationNotification>(PATH, none, AUTHCODE.as_bytes()),
        Err(Error::MissingHeader("client-id"))
    ));
    let other = NotificationHeaders {
        client_id: Some("SOMEONE_ELSE"),
        ..headers(&sig)
    };
    match v.verify::<AuthorizationNotification>(PATH, other, AUTHCODE.as_bytes()) {
        Err(Error::Config(m)) => assert!(m.contains("another client id"), "{m}"),
        r => panic!("a notification to another client id: {r:?}"),
    }
    let garbage = NotificationHeaders {
        signature: Some("garbage"),
        ..headers(&sig)
    };
    assert!(matches!(
        v.verify::<AuthorizationNotification>(PATH, garbage, AUTHCODE.as_bytes()),
        Err(Error::MalformedSignatureHeader(_))
    ));
}

#[test]
fn signed_but_malformed_bodies_are_typed_errors() {
    let v = verifier();
    for body in [
        "{not json",
        r#"{"authorizationNotifyType":"AUTHCODE_CREATED"}"#,
        r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S"}}"#,
        "[]",
    ] {
        let sig = signed(PATH, body);
        let err = v
            .verify::<AuthorizationNotification>(PATH, headers(&sig), body.as_bytes())
            .unwrap_err();
        assert!(matches!(err, Error::Json { .. }), "{body}: {err:?}");
    }
    // AUTHCODE_CREATED without its authCode: parsed, then refused by validate().
    let body = r#"{"authorizationNotifyType":"AUTHCODE_CREATED","authState":"s","result":{"resultCode":"SUCCESS","resultStatus":"S"}}"#;
    let sig = signed(PATH, body);
    let err = v
        .verify::<AuthorizationNotification>(PATH, headers(&sig), body.as_bytes())
        .unwrap_err();
    assert!(err.to_string().contains("authCode"), "{err}");
    // Not UTF-8.
    let body = b"{\"a\":\"\xff\"}";
    let sig = signature::sign(&alipay_key(), 1, "POST", PATH, CLIENT_ID, TIME, body).unwrap();
    assert!(matches!(
        v.verify::<AuthorizationNotification>(PATH, headers(&sig), body),
        Err(Error::NotUtf8 { .. })
    ));
}

#[test]
fn payment_notification_with_native_and_string_scalars() {
    let path = "/ams/notify/payment";
    let body = r#"{
   "notifyType": "PAYMENT_RESULT",
   "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"},
   "paymentRequestId": "pay_1",
   "paymentId": "2024010119401080010018800000000",
   "paymentAmount": {"currency": "HKD", "value": 4900},
   "paymentTime": "2024-01-01T12:00:01+08:00",
   "somethingNew": {"nested": true}
}"#;
    let sig = signed(path, body);
    let n: PaymentNotification = verifier()
        .verify(path, headers(&sig), body.as_bytes())
        .unwrap();
    assert_eq!(n.payment_request_id, "pay_1");
    assert_eq!(
        n.payment_amount
            .as_ref()
            .unwrap()
            .to_money()
            .unwrap()
            .minor()
            .get(),
        4900
    );
    assert!(n.extra.contains_key("somethingNew"));
}

#[test]
fn acknowledgement_body_is_exact() {
    assert_eq!(
        ACK_BODY,
        r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#
    );
    assert!(is_ack(ACK_BODY.as_bytes()));
}
