//! The properties the fuzz targets check, one function per target, shared by the
//! cargo-fuzz binaries (`fuzz_targets/*.rs`, nightly, coverage-guided) and by the
//! stable replay-and-mutate run of the test command
//! (`reliability/tests/fuzz_short.rs`). Each takes any bytes and must never panic;
//! the asserts are the security properties.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::OnceLock;

/// A check: any bytes in, a panic when a property does not hold.
pub type Check = fn(&[u8]);

/// Every target: its name (the corpus directory) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("ams_signature_header", ams_signature_header),
    ("dbus_options", dbus_options),
    ("device_request_body", device_request_body),
    ("notification_body", notification_body),
    ("sealed_token", sealed_token),
    ("settlement_report", settlement_report),
];

/// The AMS `signature` header parser: any text, never a panic.
pub fn ams_signature_header(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = scanbind_ams::signature::SignatureHeader::parse(text);
    }
}

/// D-Bus option dictionaries (`a{sv}`) as they arrive on the wire: decoded from any
/// bytes in both byte orders, and every value read as the types the daemon's options
/// use. Never a panic. (The daemon's own option validation is private to `scanbindd`;
/// see docs/reliability.md.)
pub fn dbus_options(data: &[u8]) {
    use zvariant::serialized::{Context, Data};
    use zvariant::{BE, LE, OwnedValue};
    for ctx in [Context::new_dbus(LE, 0), Context::new_dbus(BE, 0)] {
        let d = Data::new(data, ctx);
        if let Ok((map, _)) = d.deserialize::<HashMap<String, OwnedValue>>() {
            for (_, v) in map {
                let _ = bool::try_from(&v);
                let _ = u32::try_from(&v);
                let _ = i64::try_from(&v);
                let _ = <&str>::try_from(&v);
            }
        }
    }
}

/// Device API request bodies and signing headers: every request type parsed from any
/// bytes; a public key and signature decoded from any text and checked over the body:
/// never a panic (the key is part of the input, so a valid triple is possible).
pub fn device_request_body(data: &[u8]) {
    use scanbind_device_api::DevicePublicKey;
    use scanbind_device_api::types::{
        OrderCodePayRequest, PayRequest, RefundRequest, RegisterDeviceRequest, StartBindingRequest,
    };
    let _ = serde_json::from_slice::<RegisterDeviceRequest>(data);
    let _ = serde_json::from_slice::<StartBindingRequest>(data);
    let _ = serde_json::from_slice::<PayRequest>(data);
    let _ = serde_json::from_slice::<OrderCodePayRequest>(data);
    let _ = serde_json::from_slice::<RefundRequest>(data);
    // "<public key>\n<signature>\n<body>": decoded and verified.
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let (Some(k), Some(s), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if let (Ok(k), Ok(s)) = (std::str::from_utf8(k), std::str::from_utf8(s))
        && let Ok(key) = DevicePublicKey::from_base64(k)
        && let Some(sig) = base64_decode(s)
    {
        let _ = key.verify_bytes(body, &sig);
    }
}

/// A tiny URL-safe (or standard) Base64 decoder: the fuzz crate keeps its dependencies
/// minimal.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0_u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

fn notification_verifier() -> &'static scanbind_ams::notify::NotificationVerifier {
    static V: OnceLock<scanbind_ams::notify::NotificationVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let key = scanbind_ams::PublicKey::from_text(include_str!(
            "../ams/tests/fixtures/vector_public_spki.pem"
        ))
        .expect("fixture key");
        scanbind_ams::notify::NotificationVerifier::new("2188TEST0000001", key)
    })
}

/// Notification bodies: the three notification models parsed and validated from any
/// bytes, and the verifier (headers + body) with a real Alipay public key: never a
/// panic, and nothing unsigned is ever accepted.
pub fn notification_body(data: &[u8]) {
    use scanbind_ams::model::{
        AuthorizationNotification, Notification, PaymentNotification, RefundNotification,
    };
    use scanbind_ams::notify::NotificationHeaders;
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
    let r =
        notification_verifier().verify::<PaymentNotification>("/ams/notify/payment", headers, body);
    assert!(r.is_err(), "a forged notification was accepted");
}

fn sealer() -> &'static scanbind_server::seal::Sealer {
    static S: OnceLock<scanbind_server::seal::Sealer> = OnceLock::new();
    S.get_or_init(|| scanbind_server::seal::Sealer::new(&[[7_u8; 32], [9_u8; 32]]).expect("sealer"))
}

/// The sealed-token decoder: any text as a blob, for any device and binding: never a
/// panic, and a blob never opens for a device it was not sealed for.
pub fn sealed_token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (Some(device), Some(binding), Some(blob)) = (parts.next(), parts.next(), parts.next())
    else {
        let _ = sealer().open("dev_a", "bind_a", text);
        return;
    };
    let _ = sealer().open(device, binding, blob);
    assert!(sealer().open("dev_other", "bind_other", blob).is_err());
}

/// Settlement reports (`scanbind-server reconcile`'s reader, `reconcile::parse_report`):
/// any bytes as each of the three reports: never a panic; an accepted file ends with its
/// `<END>` line and its rows' lines lie between the header and `<END>`; a refusal names
/// the file.
pub fn settlement_report(data: &[u8]) {
    use scanbind_server::reconcile::{END_LINE, ParsedReport, ReportKind, parse_report};
    const FILE: &str = "settlementDetails_HKD_20261207.csv";
    for kind in ReportKind::ALL {
        match parse_report(kind, FILE, data) {
            Ok(parsed) => {
                let text = std::str::from_utf8(data).expect("accepted bytes are UTF-8");
                let last = text.trim_end_matches(['\n', '\r']).rsplit('\n').next();
                assert_eq!(
                    last.map(|l| l.trim_end_matches('\r')),
                    Some(END_LINE),
                    "accepted without its <END> line"
                );
                let lines = u64::try_from(text.lines().count()).unwrap_or(u64::MAX);
                let rows: Vec<u64> = match parsed {
                    ParsedReport::Transactions(r) => r.iter().map(|x| x.line).collect(),
                    ParsedReport::Summary(r) => r.iter().map(|x| x.line).collect(),
                };
                for line in rows {
                    assert!(line >= 2 && line < lines, "row line {line} of {lines}");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&format!("report {FILE}")),
                    "the error does not name the file: {msg}"
                );
            }
        }
    }
}
