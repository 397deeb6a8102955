//! Known-answer and negative tests for device request signing and receipts.

use scanbind_device_api::Error;
use scanbind_device_api::receipt::{
    Receipt, ReceiptKeySet, ReceiptKind, ReceiptSigner, verify_receipt,
};
use scanbind_device_api::signing::{
    DeviceKey, DevicePublicKey, SignedHeaders, Verifier, canonical_string, is_device_id,
};
use scanbind_device_api::types::Amount;

/// RFC 8032 §7.1, test 1.
const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC8032_SIG_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rfc_key() -> DeviceKey {
    let seed: [u8; 32] = unhex(RFC8032_SEED).try_into().unwrap();
    DeviceKey::from_seed(&seed).unwrap()
}

const NONCE: &str = "AAAAAAAAAAAAAAAAAAAAAA";
const NOW: i64 = 1_790_000_000;

#[test]
fn rfc8032_vector() {
    let key = rfc_key();
    assert_eq!(hex(key.public_key().as_bytes()), RFC8032_PUBLIC);
    assert_eq!(hex(&key.sign_bytes(b"")), RFC8032_SIG_EMPTY);
}

#[test]
fn canonical_string_known_answer() {
    let s = canonical_string(
        "post",
        "/v1/payments?x=1",
        "dev_00112233445566778899aabbccddeeff",
        NOW,
        NONCE,
        b"{}",
    );
    assert_eq!(
        s,
        "scanbind-device-v1\nPOST\n/v1/payments?x=1\ndev_00112233445566778899aabbccddeeff\n1790000000\nAAAAAAAAAAAAAAAAAAAAAA\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
}

#[test]
fn device_id_and_signature_known_answer() {
    let key = rfc_key();
    let id = key.device_id();
    assert!(is_device_id(&id), "{id}");
    assert_eq!(id, "dev_21fe31dfa154a261626bf854046fd227");
    let headers = key.sign_request("POST", "/v1/bindings", NOW, NONCE, br#"{"wallet":"GCASH"}"#);
    // Ed25519 is deterministic: this value is fixed for these inputs.
    assert_eq!(
        headers.signature,
        "gtkTtYToCjQc6AZguIGHP5DqYjbt76mu1kmLrUXDh9O5ZKW1h_CP1jeQ-M8XsR_oEbEQjuXvsk4W2_b8xjh8Aw"
    );
}

fn signed(key: &DeviceKey, body: &[u8]) -> SignedHeaders {
    key.sign_request("POST", "/v1/payments", NOW, NONCE, body)
}

#[test]
fn verifies_and_rejects_tampering() {
    let key = DeviceKey::generate().unwrap();
    let public = key.public_key();
    let v = Verifier::default();
    let body = br#"{"a":1}"#;
    let h = signed(&key, body);
    v.verify(&public, &h, "POST", "/v1/payments", body, NOW)
        .unwrap();
    // Clock skew inside the window on both sides.
    v.verify(&public, &h, "POST", "/v1/payments", body, NOW + 300)
        .unwrap();
    v.verify(&public, &h, "POST", "/v1/payments", body, NOW - 300)
        .unwrap();

    let bad = |r: scanbind_device_api::Result<()>| assert_eq!(r, Err(Error::BadSignature));
    bad(v.verify(&public, &h, "POST", "/v1/payments", br#"{"a":2}"#, NOW));
    bad(v.verify(&public, &h, "PUT", "/v1/payments", body, NOW));
    bad(v.verify(&public, &h, "POST", "/v1/payments?x", body, NOW));
    let mut other_nonce = h.clone();
    other_nonce.nonce = "BBBBBBBBBBBBBBBBBBBBBB".into();
    bad(v.verify(&public, &other_nonce, "POST", "/v1/payments", body, NOW));
    // Another key cannot sign for this device.
    let mallory = DeviceKey::generate().unwrap();
    let mut forged = signed(&mallory, body);
    forged.device_id = h.device_id.clone();
    bad(v.verify(&public, &forged, "POST", "/v1/payments", body, NOW));
    // And this key does not verify another device id.
    bad(v.verify(&mallory.public_key(), &h, "POST", "/v1/payments", body, NOW));
}

#[test]
fn stale_requests_are_refused() {
    let key = DeviceKey::generate().unwrap();
    let h = signed(&key, b"");
    let v = Verifier::default();
    for now in [NOW + 301, NOW - 301, NOW + 86_400] {
        assert!(matches!(
            v.verify(&key.public_key(), &h, "POST", "/v1/payments", b"", now),
            Err(Error::Stale { .. })
        ));
    }
}

#[test]
fn header_shapes() {
    let key = DeviceKey::generate().unwrap();
    let h = signed(&key, b"");
    let pairs = h.to_pairs();
    let lookup = |pairs: &[(&'static str, String)], name: &str| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let parsed = SignedHeaders::from_lookup(|n| {
        pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
    })
    .unwrap();
    assert_eq!(parsed, h);
    for missing in 0..4 {
        let mut p = pairs.to_vec();
        let name = p.remove(missing).0;
        assert!(lookup(&p, name).is_none());
        let r = SignedHeaders::from_lookup(|n| {
            p.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
        });
        assert_eq!(r, Err(Error::MissingHeader(name)));
    }
    for (idx, value) in [
        (0, "device"),
        (1, "-5"),
        (1, "12x"),
        (2, "short"),
        (2, "has space in the nonce value!"),
        (3, "abc"),
    ] {
        let mut p = pairs.to_vec();
        p[idx].1 = value.to_owned();
        let r = SignedHeaders::from_lookup(|n| {
            p.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
        });
        assert_eq!(r, Err(Error::MalformedHeader(p[idx].0)), "{value}");
    }
}

#[test]
fn pkcs8_round_trip() {
    let key = DeviceKey::generate().unwrap();
    let again = DeviceKey::from_pkcs8(key.to_pkcs8()).unwrap();
    assert_eq!(key.public_key(), again.public_key());
    assert!(DeviceKey::from_pkcs8(b"nonsense").is_err());
    let pk = key.public_key();
    assert_eq!(DevicePublicKey::from_base64(&pk.to_base64()).unwrap(), pk);
    assert!(DevicePublicKey::from_base64("AAAA").is_err());
}

/// A device key's `Debug` is its device id and nothing else: not the seed, the PKCS#8
/// document or the public key, in any encoding (the output is pinned exactly; the id is
/// `dev_` and the first 16 bytes of SHA-256 of RFC 8032's test-1 public key).
#[test]
fn device_key_debug_shows_only_the_device_id() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let key = rfc_key();
    let shown = format!("{key:?}");
    assert_eq!(
        shown,
        r#"DeviceKey { device_id: "dev_21fe31dfa154a261626bf854046fd227", .. }"#
    );
    assert_eq!(
        format!("{key:#?}"),
        "DeviceKey {\n    device_id: \"dev_21fe31dfa154a261626bf854046fd227\",\n    ..\n}"
    );
    let seed = unhex(RFC8032_SEED);
    for material in [&seed[..], key.to_pkcs8(), key.public_key().as_bytes()] {
        for form in [
            hex(material),
            STANDARD.encode(material),
            URL_SAFE_NO_PAD.encode(material),
        ] {
            assert!(!shown.contains(&form[..12]), "{shown} shows {form}");
        }
    }
}

fn receipt() -> Receipt {
    Receipt {
        ver: 1,
        kind: ReceiptKind::Payment,
        iss: "SANDBOX_MERCHANT".into(),
        iat: NOW,
        device_id: "dev_00112233445566778899aabbccddeeff".into(),
        app_id: "org.example.Game".into(),
        app_order_id: "order-1".into(),
        payment_id: "pay_1".into(),
        payment_request_id: "prq_1".into(),
        ams_payment_id: Some("2024".into()),
        refund_id: None,
        refund_request_id: None,
        status: "succeeded".into(),
        amount: Amount {
            currency: "HKD".into(),
            value: 1050,
        },
        conversion: None,
        result_code: None,
        seller_id: None,
        checkout_id: None,
    }
}

#[test]
fn receipts_verify_offline_and_refuse_forgeries() {
    let key = DeviceKey::generate().unwrap();
    let signer = ReceiptSigner::from_pkcs8(key.to_pkcs8()).unwrap();
    let set = ReceiptKeySet {
        keys: vec![signer.jwk()],
    };
    let jws = signer.sign(&receipt());
    assert_eq!(verify_receipt(&jws, &set).unwrap(), receipt());

    // Unknown key.
    let other = ReceiptSigner::from_pkcs8(DeviceKey::generate().unwrap().to_pkcs8()).unwrap();
    assert_eq!(
        verify_receipt(&other.sign(&receipt()), &set),
        Err(Error::UnknownReceiptKey)
    );
    // Payload swapped under a valid signature.
    let mut changed = receipt();
    changed.amount.value = 999_999;
    let forged_payload = signer.sign(&changed);
    let parts: Vec<&str> = jws.split('.').collect();
    let forged_parts: Vec<&str> = forged_payload.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], forged_parts[1], parts[2]);
    assert_eq!(verify_receipt(&spliced, &set), Err(Error::BadSignature));
    assert!(verify_receipt("a.b", &set).is_err());
    assert!(verify_receipt("", &set).is_err());
    // Key set round-trips through JSON (what /v1/receipt-keys serves).
    let json = serde_json::to_string(&set).unwrap();
    let back: ReceiptKeySet = serde_json::from_str(&json).unwrap();
    assert_eq!(verify_receipt(&jws, &back).unwrap(), receipt());
}
