//! Interoperability with the official Python SDK (`global-open-sdk-python` 1.7.1).
//!
//! Our signatures must verify in the SDK's `signature_tool.verify` and
//! `webhook_tool.check_signature`, and the SDK's `signature_tool.sign` output must verify
//! with ours and be byte-identical to our signature of the same content.
//!
//! The SDK runs in the venv python named by `SCANBIND_PYTHON` (default: the repo's `.venv`), which `scripts/test`
//! creates and exports. Without it these tests fail; they never skip. All SDK work is one
//! batch: every test contributes its operations to a single `tests/python/sdk_sign.py`
//! run (JSON on stdin and stdout), made once per test binary.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scanbind_ams::signature::{self, SignatureHeader};
use scanbind_ams::{Error, PrivateKey, PublicKey};
use serde_json::{Value, json};

const CLIENT: &str = "SANDBOX_5YEXAMPLE00001";
const PAY_PATH: &str = "/ams/api/v1/payments/pay";
const NOTIFY_PATH: &str = "/ams/notify/payment";
/// Python-SDK style request-time.
const TIME_ISO: &str = "2026-11-21T10:00:00+00:00";
/// Java/Go style request-time.
const TIME_MILLIS: &str = "1795255200000";

const PAY_BODY: &str = r#"{"productCode":"AGREEMENT_PAYMENT","paymentRequestId":"pay_20261121_000123","paymentAmount":{"currency":"PHP","value":"12500"},"paymentMethod":{"paymentMethodType":"GCASH","paymentMethodId":"tok_28800000000000000001"},"order":{"referenceOrderId":"ord_000123","orderDescription":"Monthly plan","orderAmount":{"currency":"PHP","value":"12500"}}}"#;
/// The same request with a different amount.
const PAY_BODY_ALTERED: &str = r#"{"productCode":"AGREEMENT_PAYMENT","paymentRequestId":"pay_20261121_000123","paymentAmount":{"currency":"PHP","value":"12501"},"paymentMethod":{"paymentMethodType":"GCASH","paymentMethodId":"tok_28800000000000000001"},"order":{"referenceOrderId":"ord_000123","orderDescription":"Monthly plan","orderAmount":{"currency":"PHP","value":"12500"}}}"#;
/// Raw (unescaped) UTF-8 in the body: multi-byte characters, an emoji, a combining mark.
const UTF8_BODY: &str = "{\"paymentRequestId\":\"pay_ü_001\",\"order\":{\"orderDescription\":\"Café 中文 — 🙂 e\u{301}\"}}";
const NOTIFY_BODY: &str = r#"{"notifyType":"PAYMENT_RESULT","result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"},"paymentRequestId":"pay_20261121_000123","paymentId":"2026112119400000000000001","paymentAmount":{"currency":"PHP","value":"12500"},"paymentCreateTime":"2026-11-21T10:00:00+00:00","paymentTime":"2026-11-21T10:00:02+00:00"}"#;

// ---------------------------------------------------------------- keys

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn merchant_key() -> PrivateKey {
    PrivateKey::from_text(&fixture("vector_private_pkcs8.pem")).unwrap()
}

fn merchant_public() -> PublicKey {
    PublicKey::from_text(&fixture("vector_public_spki.pem")).unwrap()
}

/// The private key as the Python SDK takes it: bare Base64 of the PKCS#1 key (it adds
/// the `RSA PRIVATE KEY` PEM markers itself).
fn sdk_private_key() -> String {
    fixture("vector_private_pkcs1.pem")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// The public key as the Python SDK (and the Antom Dashboard) has it: bare Base64 SPKI.
fn sdk_public_key() -> String {
    merchant_public().to_base64()
}

fn other_public_key() -> String {
    PrivateKey::from_text(&fixture("other_rsa2048.pem"))
        .unwrap()
        .public_key()
        .to_base64()
}

// ---------------------------------------------------------------- the SDK batch

/// Our header for POST `path` with our merchant key.
fn our_header(path: &str, time: &str, body: &str) -> String {
    signature::sign(
        &merchant_key(),
        1,
        "POST",
        path,
        CLIENT,
        time,
        body.as_bytes(),
    )
    .unwrap()
}

/// The value after `signature=`, as the SDK's clients cut it out of the header.
fn value_of(header: &str) -> String {
    header
        .split("signature=")
        .nth(1)
        .expect("header has signature=")
        .to_owned()
}

fn message(path: &str, time: &str, body: &str) -> serde_json::Map<String, Value> {
    let Value::Object(map) = json!({
        "method": "POST", "path": path, "client_id": CLIENT, "time": time, "body": body,
    }) else {
        unreachable!()
    };
    map
}

fn op(kind: &str, msg: serde_json::Map<String, Value>, extra: Value) -> Value {
    let mut map = msg;
    map.insert("op".into(), kind.into());
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    Value::Object(map)
}

/// Every operation the tests need from the SDK, each under a name.
fn sdk_ops() -> Vec<(&'static str, Value)> {
    let pk = sdk_private_key();
    let public = sdk_public_key();
    let ours = our_header(PAY_PATH, TIME_ISO, PAY_BODY);
    let verify = |path: &str, time: &str, body: &str, sig: &str, key: &str| {
        op(
            "verify",
            message(path, time, body),
            json!({"signature": sig, "public_key": key}),
        )
    };
    let sig = value_of(&ours);
    let notify = our_header(NOTIFY_PATH, TIME_ISO, NOTIFY_BODY);
    let check = |path: &str, body: &str, header: &str| {
        op(
            "check_signature",
            message(path, TIME_ISO, body),
            json!({"signature_header": header, "public_key": public}),
        )
    };
    let unicode_obj = json!({
        "paymentRequestId": "pay_ünï_001",
        "paymentAmount": {"currency": "JPY", "value": "1200"},
        "order": {
            "orderDescription": "抹茶ラテ ×2 — café 🙂",
            "buyer": {"buyerName": {"firstName": "Zoë", "lastName": "Ødegaard"}},
        },
        "splitOrder": false,
    });
    let sdk_json_msg = || {
        let mut m = message(PAY_PATH, TIME_ISO, "");
        m.remove("body");
        m
    };
    vec![
        // Ours -> SDK verify.
        (
            "ours_pay",
            verify(PAY_PATH, TIME_ISO, PAY_BODY, &sig, &public),
        ),
        (
            "ours_pay_body_altered",
            verify(PAY_PATH, TIME_ISO, PAY_BODY_ALTERED, &sig, &public),
        ),
        (
            "ours_pay_path_altered",
            verify(
                "/ams/sandbox/api/v1/payments/pay",
                TIME_ISO,
                PAY_BODY,
                &sig,
                &public,
            ),
        ),
        (
            "ours_pay_time_altered",
            verify(
                PAY_PATH,
                "2026-11-21T10:00:01+00:00",
                PAY_BODY,
                &sig,
                &public,
            ),
        ),
        (
            "ours_pay_wrong_key",
            verify(PAY_PATH, TIME_ISO, PAY_BODY, &sig, &other_public_key()),
        ),
        (
            "ours_millis",
            verify(
                PAY_PATH,
                TIME_MILLIS,
                PAY_BODY,
                &value_of(&our_header(PAY_PATH, TIME_MILLIS, PAY_BODY)),
                &public,
            ),
        ),
        (
            "ours_utf8",
            verify(
                PAY_PATH,
                TIME_ISO,
                UTF8_BODY,
                &value_of(&our_header(PAY_PATH, TIME_ISO, UTF8_BODY)),
                &public,
            ),
        ),
        // SDK sign -> ours.
        (
            "sdk_pay",
            op(
                "sign",
                message(PAY_PATH, TIME_ISO, PAY_BODY),
                json!({"private_key": pk}),
            ),
        ),
        (
            "sdk_utf8",
            op(
                "sign",
                message(PAY_PATH, TIME_MILLIS, UTF8_BODY),
                json!({"private_key": pk}),
            ),
        ),
        // Notifications: webhook_tool.check_signature on the merchant's notify path.
        ("notify", check(NOTIFY_PATH, NOTIFY_BODY, &notify)),
        (
            "notify_body_altered",
            check(NOTIFY_PATH, &NOTIFY_BODY.replace("12500", "12600"), &notify),
        ),
        (
            "notify_signed_over_api_path",
            check(
                NOTIFY_PATH,
                NOTIFY_BODY,
                &our_header(PAY_PATH, TIME_ISO, NOTIFY_BODY),
            ),
        ),
        // Bodies as the SDK writes them.
        (
            "sdk_json_body",
            op(
                "json_body",
                sdk_json_msg(),
                json!({"obj": unicode_obj, "private_key": pk}),
            ),
        ),
        (
            "sdk_json_body_raw_utf8",
            op(
                "json_body",
                sdk_json_msg(),
                json!({"obj": unicode_obj, "private_key": pk, "ensure_ascii": false}),
            ),
        ),
        (
            "sdk_consult",
            json!({
                "op": "consult_request", "client_id": CLIENT, "private_key": pk,
                "public_key": public, "auth_state": "st_绑定_ü_001",
                "redirect_url": "https://merchant.example/bind/完成?state=st_绑定_ü_001",
            }),
        ),
    ]
}

fn python() -> PathBuf {
    const HOW: &str = "run the tests through scripts/test, which creates .venv with the \
                       official SDK (global-open-sdk-python, scripts/requirements-test.txt) \
                       and exports SCANBIND_PYTHON";
    // scripts/test exports SCANBIND_PYTHON; a plain `cargo test` after it finds the venv it made.
    let python = std::env::var_os("SCANBIND_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"))
        });
    assert!(
        python.is_file(),
        "{} does not exist (SCANBIND_PYTHON unset or wrong): {HOW}",
        python.display()
    );
    python
}

/// Runs the whole batch once per test binary and returns each named result.
fn sdk() -> &'static HashMap<&'static str, Value> {
    static RESULTS: OnceLock<HashMap<&'static str, Value>> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let ops = sdk_ops();
        let input = json!({"ops": ops.iter().map(|(_, op)| op).collect::<Vec<_>>()});
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_sign.py");
        let python = python();
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} {script}: {e}", python.display()));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{script} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let output: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{script} wrote no JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let results = output["results"].as_array().expect("results array");
        assert_eq!(results.len(), ops.len(), "one result per op");
        ops.iter()
            .map(|(name, _)| *name)
            .zip(results.iter().cloned())
            .collect()
    })
}

fn result(name: &str) -> &'static Value {
    sdk()
        .get(name)
        .unwrap_or_else(|| panic!("no SDK op named {name}"))
}

fn str_field<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
}

fn assert_sdk_accepts(name: &str) {
    let r = result(name);
    assert_eq!(
        r["ok"],
        Value::Bool(true),
        "{name}: the SDK rejected our signature: {r}"
    );
}

/// The SDK rejected the signature as not matching (`rsa.VerificationError`), not
/// because of a bad key or a crash.
fn assert_sdk_rejects(name: &str) {
    let r = result(name);
    assert_eq!(r["ok"], Value::Bool(false), "{name}: the SDK accepted: {r}");
    assert_eq!(
        r["error_type"], "VerificationError",
        "{name}: the SDK failed for another reason: {r}"
    );
}

fn b64_body(v: &Value) -> Vec<u8> {
    STANDARD.decode(str_field(v, "body_b64")).unwrap()
}

fn sdk_header(sign_value: &str) -> String {
    format!("algorithm=RSA256,keyVersion=1,signature={sign_value}")
}

// ---------------------------------------------------------------- tests

#[test]
fn sdk_verifies_our_signatures() {
    assert_sdk_accepts("ours_pay");
    assert_sdk_accepts("ours_millis");
    assert_sdk_accepts("ours_utf8");
}

#[test]
fn sdk_rejects_our_signature_over_other_content_or_key() {
    assert_sdk_rejects("ours_pay_body_altered");
    assert_sdk_rejects("ours_pay_path_altered");
    assert_sdk_rejects("ours_pay_time_altered");
    assert_sdk_rejects("ours_pay_wrong_key");
}

#[test]
fn sdk_signature_verifies_with_ours_and_equals_ours() {
    let sdk_value = str_field(result("sdk_pay"), "signature");
    let header = sdk_header(sdk_value);
    let public = merchant_public();
    signature::verify(
        &public,
        &header,
        "POST",
        PAY_PATH,
        CLIENT,
        TIME_ISO,
        PAY_BODY.as_bytes(),
    )
    .expect("our verify accepts the SDK's signature");
    // PKCS#1 v1.5 is deterministic: the same bytes, and the same URL-encoded text.
    let ours = merchant_key()
        .sign(&signature::content(
            "POST",
            PAY_PATH,
            CLIENT,
            TIME_ISO,
            PAY_BODY.as_bytes(),
        ))
        .unwrap();
    assert_eq!(SignatureHeader::parse(&header).unwrap().signature, ours);
    assert_eq!(sdk_value, signature::encode_signature(&ours));
    assert_eq!(header, our_header(PAY_PATH, TIME_ISO, PAY_BODY));
    // And ours still says no to the SDK's signature over other content.
    let err = signature::verify(
        &public,
        &header,
        "POST",
        PAY_PATH,
        CLIENT,
        TIME_ISO,
        PAY_BODY_ALTERED.as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadSignature), "{err:?}");
}

#[test]
fn sdk_signature_over_raw_utf8_verifies_with_ours() {
    let header = sdk_header(str_field(result("sdk_utf8"), "signature"));
    signature::verify(
        &merchant_public(),
        &header,
        "POST",
        PAY_PATH,
        CLIENT,
        TIME_MILLIS,
        UTF8_BODY.as_bytes(),
    )
    .expect("the SDK signs the UTF-8 bytes we verify");
}

#[test]
fn sdk_webhook_tool_accepts_our_notification() {
    let r = result("notify");
    assert_eq!(r["ok"], Value::Bool(true), "check_signature: {r}");
    assert_sdk_rejects("notify_body_altered");
    // The notification's content uses the merchant's notify path, not an API path.
    assert_sdk_rejects("notify_signed_over_api_path");
}

#[test]
fn sdk_json_body_is_verified_over_its_exact_bytes() {
    for (name, escaped) in [("sdk_json_body", true), ("sdk_json_body_raw_utf8", false)] {
        let r = result(name);
        let body = b64_body(r);
        let text = std::str::from_utf8(&body).unwrap();
        // The SDK's form: indent=3 and, by default, non-ASCII escaped as \uXXXX.
        assert!(text.starts_with("{\n   \""), "{name}: {text}");
        assert_eq!(text.contains("\\u62b9"), escaped, "{name}: {text}");
        assert_eq!(text.contains("抹茶"), !escaped, "{name}: {text}");
        let header = sdk_header(str_field(r, "signature"));
        let public = merchant_public();
        signature::verify(&public, &header, "POST", PAY_PATH, CLIENT, TIME_ISO, &body)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The same JSON value serialised another way is different content.
        let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
        assert_ne!(compact, body);
        assert!(
            matches!(
                signature::verify(
                    &public, &header, "POST", PAY_PATH, CLIENT, TIME_ISO, &compact
                ),
                Err(Error::BadSignature)
            ),
            "{name}: re-serialised body must not verify"
        );
    }
}

#[test]
fn sdk_consult_request_verifies_with_ours() {
    let r = result("sdk_consult");
    let path = str_field(r, "path");
    let time = str_field(r, "time");
    let body = b64_body(r);
    // SANDBOX_ client ids sign the rewritten sandbox path, with an ISO 8601 time.
    assert_eq!(path, "/ams/sandbox/api/v1/authorizations/consult");
    assert!(time.ends_with("+00:00"), "{time}");
    let parsed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed["authState"], "st_绑定_ü_001");
    assert_eq!(parsed["scopes"], json!(["AGREEMENT_PAY"]));
    let header = str_field(r, "signature_header");
    signature::verify(
        &merchant_public(),
        header,
        str_field(r, "method"),
        path,
        CLIENT,
        time,
        &body,
    )
    .expect("our verify accepts the SDK client's request signature");
    // The production path is different content.
    assert!(matches!(
        signature::verify(
            &merchant_public(),
            header,
            "POST",
            "/ams/api/v1/authorizations/consult",
            CLIENT,
            time,
            &body,
        ),
        Err(Error::BadSignature)
    ));
}
