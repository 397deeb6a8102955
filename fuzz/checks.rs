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
    ("identity_sources", identity_sources),
    ("manager_calls", manager_calls),
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

/// The sealed-token decoder and sealer, two properties from any bytes:
///
/// 1. Any text as a blob (`device\nbinding\nblob`, or the whole text as the blob),
///    opened for that device and binding: never a panic, and nothing opens for another
///    device. A fuzzed blob was never sealed, so this only shows that the decoder
///    refuses what it cannot authenticate.
/// 2. A blob sealed from the input ([`sealed_round_trip`]) opens for its own device and
///    binding with exactly the tokens sealed, and for nothing else: not another device,
///    not another binding, not the two swapped, and not once changed, truncated or
///    extended (changes chosen from the input). Every refusal is `token_invalid`. A
///    sealer that ignored the device, the binding or the tag fails here.
pub fn sealed_token(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut parts = text.splitn(3, '\n');
        if let (Some(device), Some(binding), Some(blob)) =
            (parts.next(), parts.next(), parts.next())
        {
            let _ = sealer().open(device, binding, blob);
            assert_refused(sealer().open("dev_other", "bind_other", blob), || {
                "a fuzzed blob".to_owned()
            });
        } else {
            let _ = sealer().open("dev_a", "bind_a", text);
        }
    }
    sealed_round_trip(data);
}

/// FNV-1a: picks the changes made to a sealed blob from the input, deterministically.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Panics unless `r` is the `token_invalid` refusal; `what` names the case (made only
/// on a failure: the short run calls this some 400,000 times).
fn assert_refused(
    r: Result<scanbind_server::seal::TokenSet, scanbind_server::error::Error>,
    what: impl Fn() -> String,
) {
    match r {
        Ok(_) => panic!("{}: it opened", what()),
        Err(e) if e.code() != scanbind_device_api::ErrorCode::TokenInvalid => {
            panic!("{}: {e}", what())
        }
        Err(_) => {}
    }
}

/// Property 2 of [`sealed_token`]. The input's lines (lossy UTF-8) are the device id,
/// the binding id, the access token and, when there is a fourth line, the refresh
/// token; a fifth and sixth line name another device and another binding.
pub fn sealed_round_trip(data: &[u8]) {
    use scanbind_ams::model::SecretString;
    use scanbind_server::seal::TokenSet;
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let device = lines.next().unwrap_or_default();
    let binding = lines.next().unwrap_or_default();
    let access = lines.next().unwrap_or_default();
    let refresh = lines.next();
    let (more_devices, more_bindings) = (lines.next(), lines.next());
    let tokens = TokenSet {
        access_token: SecretString::new(access),
        refresh_token: refresh.map(SecretString::new),
    };
    let blob = sealer()
        .seal(device, binding, &tokens)
        .expect("sealing never fails");
    let sealed_part = &blob[blob.rfind('.').expect("sbt1.<kid>.<data>") + 1..];
    let raw = base64_decode(sealed_part).expect("the blob is Base64url");
    assert!(
        access.len() < 12 || !raw.windows(access.len()).any(|w| w == access.as_bytes()),
        "the access token is in the sealed blob in the clear"
    );
    let opened = sealer()
        .open(device, binding, &blob)
        .unwrap_or_else(|e| panic!("a blob does not open for its own device and binding: {e}"));
    assert_eq!(opened.access_token.expose(), access);
    assert_eq!(
        opened.refresh_token.as_ref().map(SecretString::expose),
        refresh
    );

    // Another device with the same binding, another binding with the same device: the
    // additional data differs whatever the ids hold.
    let mut devices = vec![format!("{device}x")];
    let mut bindings = vec![format!("{binding}x")];
    devices.extend(more_devices.map(str::to_owned));
    bindings.extend(more_bindings.map(str::to_owned));
    for other in devices.iter().filter(|d| *d != device) {
        assert_refused(sealer().open(other, binding, &blob), || {
            format!("sealed for ({device:?}, {binding:?}), opened as device {other:?}")
        });
    }
    for other in bindings.iter().filter(|b| *b != binding) {
        assert_refused(sealer().open(device, other, &blob), || {
            format!("sealed for ({device:?}, {binding:?}), opened as binding {other:?}")
        });
    }
    // Both changed, or swapped. The additional data joins the ids with `|`, so for ids
    // holding a `|` two pairs can share it ((a|b, c) and (a, b|c)); the server's ids
    // (`dev_` / `bnd_` and hex) never do, and this part keeps to such ids.
    if !device.contains('|') && !binding.contains('|') {
        let pairs = devices
            .iter()
            .zip(&bindings)
            .map(|(d, b)| (d.as_str(), b.as_str()))
            .chain([(binding, device)])
            .filter(|(d, b)| !d.contains('|') && !b.contains('|') && (*d, *b) != (device, binding));
        for (d, b) in pairs {
            assert_refused(sealer().open(d, b, &blob), || {
                format!("sealed for ({device:?}, {binding:?}), opened as ({d:?}, {b:?})")
            });
        }
    }

    // The blob changed: one character replaced (by another Base64 character, so the
    // decoder passes it on and the tag must catch it), one bit flipped, truncated,
    // extended.
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let h = fnv1a(data);
    let bytes = blob.as_bytes();
    let data_at = blob.len() - sealed_part.len();
    let mut replaced = bytes.to_vec();
    let i = data_at + (h % (bytes.len() - data_at) as u64) as usize;
    let was = B64.iter().position(|c| *c == bytes[i]).expect("Base64");
    replaced[i] = B64[(was + 1 + (h >> 8) as usize % 63) % 64];
    let mut flipped = bytes.to_vec();
    flipped[(h >> 16) as usize % bytes.len()] ^= 1 << ((h >> 40) % 8);
    let cut = 1 + (h >> 24) as usize % (bytes.len() - 1);
    let changed = [
        (
            "one character replaced",
            String::from_utf8_lossy(&replaced).into_owned(),
        ),
        (
            "one bit flipped",
            String::from_utf8_lossy(&flipped).into_owned(),
        ),
        ("truncated", blob[..bytes.len() - cut].to_owned()),
        (
            "extended",
            format!("{blob}{}", B64[(h >> 32) as usize % 64] as char),
        ),
    ];
    for (what, b) in changed {
        assert_ne!(b, blob, "{what}: unchanged");
        assert_refused(sealer().open(device, binding, &b), || {
            format!("sealed for ({device:?}, {binding:?}), {what}")
        });
    }
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

/// `io.scanbind.Manager1` calls (issue 25 §4): the input is a sequence of calls, each
/// `[member][body length, u16 LE][body]` (a body in D-Bus wire format, little-endian),
/// applied in turn to one policy by `scanbindd::untrusted::manager_call`: the very
/// argument checks and policy changes of the methods. Never a panic; a refused call
/// changes nothing (the daemon discards it); and every accepted change leaves a policy
/// that the daemon writes (`to_toml`) and reads back (`PolicyFile::parse`, the parser
/// of every read) as the same policy (`SetPolicy`'s policy included).
pub fn manager_calls(data: &[u8]) {
    use scanbindd::policy::PolicyFile;
    use scanbindd::untrusted::{MANAGER_MEMBERS, manager_call};
    let mut policy = PolicyFile::default();
    let mut rest = data;
    while let [member, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        let member = usize::from(*member) % MANAGER_MEMBERS.len();
        let before = policy.clone();
        if manager_call(&mut policy, member, body).is_err() {
            policy = before;
            continue;
        }
        let text = policy
            .to_toml()
            .unwrap_or_else(|e| panic!("an accepted policy cannot be written: {e}"));
        let back = PolicyFile::parse(&text, std::path::Path::new("the written policy"))
            .unwrap_or_else(|e| {
                panic!(
                    "{} was accepted but its policy does not read back: {e}\n{text}",
                    MANAGER_MEMBERS[member]
                )
            });
        assert_eq!(
            back, policy,
            "{} was accepted but its policy reads back changed:\n{text}",
            MANAGER_MEMBERS[member]
        );
    }
}

/// The caller identity's sources (issue 25 §4), each parsed from any bytes by the
/// daemon's own parsers (`scanbindd::untrusted`): never a panic, and what they yield
/// keeps its documented form: a `.desktop` entry's name is one trimmed line (other
/// control characters are removed where a prompt shows it) and its programs are not
/// empty; the start time of a `/proc/PID/stat` line is found whatever
/// its command name holds (`)`, spaces, newlines, any bytes); a pidfd's pid is
/// positive; a Flatpak app id and a snap name hold only the characters their rules
/// allow (so `flatpak:ID` and `snap:NAME` never read as a path); an executable link's
/// identity is the link with at most one ` (deleted)` removed.
pub fn identity_sources(data: &[u8]) {
    use scanbindd::untrusted as u;
    let text = String::from_utf8_lossy(data);
    if let Some((name, programs)) = u::desktop_entry(&text) {
        assert!(
            !name.is_empty() && name.trim() == name && !name.contains('\n'),
            "a .desktop name {name:?}"
        );
        assert!(
            programs.iter().all(|p| !p.is_empty()),
            "an empty program in {programs:?}"
        );
    }
    // A stat line whose command name is the input (the kernel allows any bytes in it).
    let start = data.iter().fold(17_u64, |a, b| {
        a.wrapping_mul(31).wrapping_add(u64::from(*b))
    });
    let mut stat = b"4242 (".to_vec();
    stat.extend_from_slice(&data[..data.len().min(64)]);
    stat.extend_from_slice(
        format!(") S 1 4242 4242 0 -1 4194560 97 0 0 0 1 2 0 0 20 0 1 0 {start} 9000 300\n")
            .as_bytes(),
    );
    assert_eq!(
        u::proc_stat_start_time(&stat),
        Some(start),
        "the start time of {:?}",
        String::from_utf8_lossy(&stat)
    );
    let _ = u::proc_stat_start_time(data);
    let _ = u::proc_status_uids(data);
    if let Some(pid) = u::pidfd_info_pid(&text) {
        assert!(pid > 0, "pid {pid}");
    }
    if let Some(id) = u::flatpak_info_app_id(&text) {
        assert!(
            (1..=255).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "a Flatpak app id {id:?}"
        );
    }
    if let Some(name) = u::apparmor_snap_name(data) {
        assert!(
            (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
                && data.starts_with(format!("snap.{name}.").as_bytes()),
            "a snap name {name:?} from {text:?}"
        );
    }
    let id = u::exe_link_identity(&text);
    assert!(
        id == text || format!("{id} (deleted)") == text,
        "the identity {id:?} of the link {text:?}"
    );
}
