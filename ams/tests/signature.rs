//! Known-answer and negative tests for AMS signatures (ams-api.md §2.4).

use scanbind_ams::signature::{self, SignatureHeader};
use scanbind_ams::{Error, PrivateKey, PublicKey};

const VECTOR_A: &str = "KEfWzU/MM60n6ZLjKbsJe86QqaqYIM4jNkNW4J1Y4Cg7UA4Bwqd/sMDuhQWtTe7ams3jDOm5VR6ZVcF7OkuQfXfl1hJSTNVN05idnOlEzvztMfQBYtC6xj/BW+KKggjsLZtEnly0M9RsPWMhuzPtyWb3BywfcwLDPQlBnExC6ZtZBZcJu0zorUloiUxHh5cs7DmbQHRhh5ExeeQdyo4DwbboAe/2vAxZP057nF2k1TyF2DMxl2lO52AxZLsmJSLZC3rT6JA0im6Bfh4JXdmSbAIZ8DYJV61ELpfS3zrF5gIXebQyx1APz6V3M+WqFdBX+c4KrTzUDP2OtQ/2VHNeiw==";
const VECTOR_A_URLENCODED: &str = "KEfWzU%2FMM60n6ZLjKbsJe86QqaqYIM4jNkNW4J1Y4Cg7UA4Bwqd%2FsMDuhQWtTe7ams3jDOm5VR6ZVcF7OkuQfXfl1hJSTNVN05idnOlEzvztMfQBYtC6xj%2FBW%2BKKggjsLZtEnly0M9RsPWMhuzPtyWb3BywfcwLDPQlBnExC6ZtZBZcJu0zorUloiUxHh5cs7DmbQHRhh5ExeeQdyo4DwbboAe%2F2vAxZP057nF2k1TyF2DMxl2lO52AxZLsmJSLZC3rT6JA0im6Bfh4JXdmSbAIZ8DYJV61ELpfS3zrF5gIXebQyx1APz6V3M%2BWqFdBX%2Bc4KrTzUDP2OtQ%2F2VHNeiw%3D%3D";
const VECTOR_B: &str = "Vmjk8dAZqgJsrHaGtNti3OK84cSQmLxYy7/75CBCmYwSGPQn6/YiRiVC9UOU7dshkpzpIC0F81KyhcUGOYRequBAAnI740vPXoWZKwfvidi4PBswOi7I+AOrJX0eugQK/NdpTkZU7FuA3H9OoJpGUK0nUWxbFuoZEyviVliEcgtp3PD4+F3HiE6l5/kyuHv5WGV0DzG1HCx/diwrc9GVno4PrGTCBUVh+ruHguiX6eJxadcz9fIzNozSyOaF5hDcLw+iwIJo2zyDT9uhAiI8pvBsI2KMokYfJY3Ex96WCPZLqB6Uby53w6bFSgm1DMH19K5OHcr0r4c//IlIf+PjzQ==";
const VECTOR_C: &str = "Z3kWtBAS/oRYFvBfW4ZC8y+qQXOWhzPT5P3RMOBIhXzYb/h9BrReWvAinz1ebJ3Q7R5iW6tVWjcIITB62k1vdRaxphYYBrugiD5+HdXpLkhmz0EkECzs7hwctud+VCzCdQIaOWx1tGAwBaga1EyktAU+gHyvoF4VM/9kktj+dHLw6VQo39Z7ZJviJqSVn4tlX7FemY7tLV40Go8Sz7apB664M2KnSahQkT4PpKNKTkZ9x1llmdExPEq6+3ksDv9sfyzgiDQj8FElwRgBVc8O0OqOn3Aeor/dyja+MYtBS/j2zXhtUy3fLt+D8dmKJwDWYcVbtUiLEt5ye9GQcQPorw==";

const B_PATH: &str = "/ams/api/v1/payments/inquiryPayment";
const B_BODY: &str = r#"{"paymentRequestId":"pay_test_001"}"#;
const CLIENT: &str = "SANDBOX_5YEXAMPLE00001";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn vector_key() -> PrivateKey {
    PrivateKey::from_text(&fixture("vector_private_pkcs8.b64")).unwrap()
}

fn vector_public() -> PublicKey {
    PublicKey::from_text(&fixture("vector_public_spki.b64")).unwrap()
}

fn b64(sig: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(sig)
}

#[test]
fn vector_a_raw_content() {
    let sig = vector_key().sign(b"MING").unwrap();
    assert_eq!(b64(&sig), VECTOR_A);
    assert_eq!(signature::encode_signature(&sig), VECTOR_A_URLENCODED);
    vector_public().verify(b"MING", &sig).unwrap();
}

#[test]
fn vector_b_inquiry_payment() {
    let content = signature::content(
        "POST",
        B_PATH,
        CLIENT,
        "2024-01-01T00:00:00Z",
        B_BODY.as_bytes(),
    );
    assert_eq!(
        std::str::from_utf8(&content).unwrap(),
        "POST /ams/api/v1/payments/inquiryPayment\nSANDBOX_5YEXAMPLE00001.2024-01-01T00:00:00Z.{\"paymentRequestId\":\"pay_test_001\"}"
    );
    let header = signature::sign(
        &vector_key(),
        1,
        "POST",
        B_PATH,
        CLIENT,
        "2024-01-01T00:00:00Z",
        B_BODY.as_bytes(),
    )
    .unwrap();
    assert!(header.starts_with(
        "algorithm=RSA256,keyVersion=1,signature=Vmjk8dAZqgJsrHaGtNti3OK84cSQmLxYy7%2F75CBC"
    ));
    assert!(header.ends_with("%2BPjzQ%3D%3D"));
    let parsed = SignatureHeader::parse(&header).unwrap();
    assert_eq!(b64(&parsed.signature), VECTOR_B);
    signature::verify(
        &vector_public(),
        &header,
        "POST",
        B_PATH,
        CLIENT,
        "2024-01-01T00:00:00Z",
        B_BODY.as_bytes(),
    )
    .unwrap();
}

#[test]
fn vector_c_consult_epoch_millis() {
    let path = "/ams/sandbox/api/v1/authorizations/consult";
    let body = r#"{"authState":"st_001","customerBelongsTo":"GCASH","scopes":["AGREEMENT_PAY"]}"#;
    let header = signature::sign(
        &vector_key(),
        1,
        "POST",
        path,
        CLIENT,
        "1700000000000",
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        b64(&SignatureHeader::parse(&header).unwrap().signature),
        VECTOR_C
    );
}

#[test]
fn all_key_forms_load_and_agree() {
    let forms = [
        fixture("vector_private_pkcs8.b64"),
        fixture("vector_private_pkcs8.pem"),
        fixture("vector_private_pkcs1.pem"),
    ];
    for text in &forms {
        let key = PrivateKey::from_text(text).unwrap();
        assert_eq!(b64(&key.sign(b"MING").unwrap()), VECTOR_A);
        assert_eq!(key.public_key(), vector_public());
    }
    // The Python SDK wraps the bare Base64 it is given in RSA PRIVATE KEY markers,
    // whatever the body (here PKCS#8), in memory. Wrapped in 64-column lines, as PEM is,
    // that loads: the label is not trusted, the DER is read as PKCS#8 or PKCS#1.
    let body = fixture("vector_private_pkcs8.b64");
    let body = body.trim();
    let lines: Vec<&str> = (0..body.len())
        .step_by(64)
        .map(|i| &body[i..(i + 64).min(body.len())])
        .collect();
    let wrapped = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let key = PrivateKey::from_text(&wrapped).unwrap();
    assert_eq!(key.public_key(), vector_public());
    assert_eq!(b64(&key.sign(b"MING").unwrap()), VECTOR_A);
    // The SDK's in-memory form itself, the whole body on one line, is not PEM (RFC 7468
    // lines are at most 64 columns): refused as a bad PEM, never guessed at. The bare
    // Base64 the SDK is configured with loads (the first form above).
    let one_line =
        format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----");
    match PrivateKey::from_text(&one_line) {
        Err(Error::InvalidKey { what, reason }) => {
            assert_eq!(what, "private key");
            assert!(reason.starts_with("bad PEM: "), "{reason}");
        }
        other => panic!("a one-line PEM body: {other:?}"),
    }
    for text in [
        fixture("vector_public_spki.pem"),
        fixture("vector_public_pkcs1.pem"),
        fixture("vector_public_spki.b64"),
    ] {
        assert_eq!(PublicKey::from_text(&text).unwrap(), vector_public());
    }
    let public = vector_public();
    assert_eq!(PublicKey::from_text(&public.to_pem()).unwrap(), public);
    assert_eq!(public.to_base64(), fixture("vector_public_spki.b64").trim());
    assert_eq!(public.modulus_bits(), 2048);
}

#[test]
fn wrong_key_types_are_typed_errors() {
    for (name, text) in [
        ("rsa1024", fixture("other_rsa1024.pem")),
        ("ec", fixture("other_ec.pem")),
        ("public as private", fixture("vector_public_spki.pem")),
        ("garbage", "not a key at all!".to_owned()),
        ("empty", String::new()),
        ("bad base64", "MIIE$$$$".to_owned()),
        (
            "truncated",
            fixture("vector_private_pkcs8.b64")[..200].to_owned(),
        ),
    ] {
        let err = PrivateKey::from_text(&text).unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{name}: {err:?}");
    }
    for (name, text) in [
        ("ec public", fixture("other_ec_pub.pem")),
        ("private as public", fixture("vector_private_pkcs8.pem")),
        ("garbage", "%%%".to_owned()),
        ("short", "MIIBIjAN".to_owned()),
    ] {
        let err = PublicKey::from_text(&text).unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{name}: {err:?}");
    }
    let small = PrivateKey::from_text(&fixture("other_rsa1024.pem"))
        .unwrap_err()
        .to_string();
    assert!(small.contains("private key"), "{small}");
}

#[test]
fn key_debug_never_shows_material() {
    let dbg = format!("{:?}", vector_key());
    assert_eq!(dbg, "PrivateKey(RSA-2048, redacted)");
}

#[test]
fn tampering_is_detected() {
    let key = vector_key();
    let public = vector_public();
    let time = "2024-01-01T00:00:00Z";
    let header = signature::sign(&key, 1, "POST", B_PATH, CLIENT, time, B_BODY.as_bytes()).unwrap();
    let verify = |path: &str, client: &str, time: &str, body: &str| {
        signature::verify(
            &public,
            &header,
            "POST",
            path,
            client,
            time,
            body.as_bytes(),
        )
    };
    verify(B_PATH, CLIENT, time, B_BODY).unwrap();
    assert!(matches!(
        verify(
            B_PATH,
            CLIENT,
            time,
            r#"{"paymentRequestId":"pay_test_002"}"#
        ),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        verify(
            B_PATH,
            CLIENT,
            time,
            r#"{"paymentRequestId": "pay_test_001"}"#
        ),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        verify(
            "/ams/sandbox/api/v1/payments/inquiryPayment",
            CLIENT,
            time,
            B_BODY
        ),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        verify(B_PATH, CLIENT, "2024-01-01T00:00:01Z", B_BODY),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        verify(B_PATH, "SANDBOX_OTHER", time, B_BODY),
        Err(Error::BadSignature)
    ));
    let other = PrivateKey::from_text(&fixture("other_rsa2048.pem"))
        .unwrap()
        .public_key();
    assert!(matches!(
        signature::verify(
            &other,
            &header,
            "POST",
            B_PATH,
            CLIENT,
            time,
            B_BODY.as_bytes()
        ),
        Err(Error::BadSignature)
    ));
}

#[test]
fn header_parsing_is_tolerant() {
    let sig = vector_key().sign(b"MING").unwrap();
    let lower = VECTOR_A_URLENCODED
        .replace("%2F", "%2f")
        .replace("%2B", "%2b")
        .replace("%3D", "%3d");
    for value in [
        format!("algorithm=RSA256,keyVersion=1,signature={VECTOR_A_URLENCODED}"),
        format!("algorithm=RSA256, keyVersion=1, signature={VECTOR_A_URLENCODED}"),
        format!("Algorithm=rsa256 , KeyVersion = 1 ,Signature = {lower}"),
        format!("signature={VECTOR_A}"),
        format!(
            "keyVersion=2,algorithm=RSA256,signature={}",
            VECTOR_A.trim_end_matches('=')
        ),
    ] {
        let parsed = SignatureHeader::parse(&value).unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(parsed.signature, sig, "{value}");
    }
    assert_eq!(
        SignatureHeader::parse(&format!("keyVersion=2,signature={VECTOR_A}"))
            .unwrap()
            .key_version,
        2
    );
}

#[test]
fn malformed_headers_are_typed_errors() {
    for value in [
        "",
        "algorithm=RSA256,keyVersion=1",
        "algorithm=RSA256,keyVersion=x,signature=abc",
        "garbage",
        "signature=",
        "signature=%%%",
        "signature=%FF%FE",
        "signature=not*base64",
    ] {
        let err = SignatureHeader::parse(value).unwrap_err();
        assert!(
            matches!(err, Error::MalformedSignatureHeader(_)),
            "{value:?}: {err:?}"
        );
    }
    assert!(matches!(
        SignatureHeader::parse(&format!("algorithm=HMAC,signature={VECTOR_A}")),
        Err(Error::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn non_utf8_body_signs_and_verifies_bytewise() {
    let key = vector_key();
    let body = [0xff_u8, 0xfe, b'{', b'}'];
    let header = signature::sign(&key, 1, "POST", B_PATH, CLIENT, "t", &body).unwrap();
    signature::verify(
        &vector_public(),
        &header,
        "POST",
        B_PATH,
        CLIENT,
        "t",
        &body,
    )
    .unwrap();
}
