//! Device API request bodies and signing headers: every request type parsed from any
//! bytes; a public key and signature decoded from any text and checked over the body:
//! never a panic, (the key is part of the input, so a valid triple is possible).
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanbind_device_api::DevicePublicKey;
use scanbind_device_api::types::{
    OrderCodePayRequest, PayRequest, RefundRequest, RegisterDeviceRequest, StartBindingRequest,
};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<RegisterDeviceRequest>(data);
    let _ = serde_json::from_slice::<StartBindingRequest>(data);
    let _ = serde_json::from_slice::<PayRequest>(data);
    let _ = serde_json::from_slice::<OrderCodePayRequest>(data);
    let _ = serde_json::from_slice::<RefundRequest>(data);
    // "<public key>\n<signature>\n<body>": decoded and verified, never accepted.
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let (Some(k), Some(s), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if let (Ok(k), Ok(s)) = (std::str::from_utf8(k), std::str::from_utf8(s))
        && let Ok(key) = DevicePublicKey::from_base64(k)
    {
        use base64_free::decode;
        if let Some(sig) = decode(s) {
            let _ = key.verify_bytes(body, &sig);
        }
    }
});

/// A tiny URL-safe Base64 decoder (the fuzz crate keeps its dependencies minimal).
mod base64_free {
    pub fn decode(s: &str) -> Option<Vec<u8>> {
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
}
