//! Device request signing: the device key, the canonical string, the headers, the verifier.
//!
//! A device signs every request with its Ed25519 key over [`canonical_string`]:
//!
//! ```text
//! scanbind-device-v1
//! <METHOD>
//! <path with query, as sent>
//! <device id>
//! <time: Unix seconds>
//! <nonce>
//! <hex SHA-256 of the body bytes>
//! ```
//!
//! joined by `\n` with no trailing newline, and sends the four [`HEADER_DEVICE`],
//! [`HEADER_TIME`], [`HEADER_NONCE`] and [`HEADER_SIGNATURE`] headers. The server checks the
//! signature with the key registered for the device id, refuses a time outside
//! ±[`DEFAULT_WINDOW_SECONDS`], and refuses a nonce it has seen within the window
//! (replay). The nonce is what lets a device retry an identical body within the same
//! second: Ed25519 signatures are deterministic, so without it two such requests would
//! be indistinguishable from a replay.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::error::{Error, Result};

/// The first line of the canonical string; bumps if the scheme ever changes.
pub const SCHEME: &str = "scanbind-device-v1";
/// Header carrying the device id.
pub const HEADER_DEVICE: &str = "x-scanbind-device";
/// Header carrying the request time, decimal Unix seconds.
pub const HEADER_TIME: &str = "x-scanbind-time";
/// Header carrying the single-use nonce (16–64 characters of `A-Z a-z 0-9 - _`).
pub const HEADER_NONCE: &str = "x-scanbind-nonce";
/// Header carrying the Ed25519 signature, base64url without padding.
pub const HEADER_SIGNATURE: &str = "x-scanbind-signature";
/// The freshness window: a request time may be this many seconds before or after the
/// server clock.
pub const DEFAULT_WINDOW_SECONDS: i64 = 300;

/// The PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410), followed by the 32-byte seed.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A device's Ed25519 private key. Its `Debug` output never shows key material.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("device_id", &self.public_key().device_id())
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// Generates a new key from the system's secure random source.
    pub fn generate() -> Result<DeviceKey> {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::InvalidKey {
            what: "device key",
            reason: "the random source failed",
        })?;
        DeviceKey::from_pkcs8(doc.as_ref())
    }

    /// Imports a PKCS#8 DER private key (v1 as OpenSSL writes it, or v2 as ring writes it).
    pub fn from_pkcs8(der: &[u8]) -> Result<DeviceKey> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| Error::InvalidKey {
                what: "device key",
                reason: "not an Ed25519 PKCS#8 private key",
            })?;
        Ok(DeviceKey {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// Builds a key from a 32-byte seed (RFC 8032 private key), e.g. for test vectors.
    pub fn from_seed(seed: &[u8; 32]) -> Result<DeviceKey> {
        let mut der = PKCS8_V1_PREFIX.to_vec();
        der.extend_from_slice(seed);
        DeviceKey::from_pkcs8(&der)
    }

    /// The PKCS#8 DER encoding, for storing the key (in the OS keyring, never in a log).
    pub fn to_pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half.
    pub fn public_key(&self) -> DevicePublicKey {
        let mut bytes = [0_u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        DevicePublicKey(bytes)
    }

    /// The device id the server assigns to this key (see [`DevicePublicKey::device_id`]).
    pub fn device_id(&self) -> String {
        self.public_key().device_id()
    }

    /// Signs arbitrary bytes; returns the 64-byte signature.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0_u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }

    /// Signs one request and returns the headers to send with it. `path` is the path and
    /// query exactly as requested (`/v1/payments?x=1`); `time` is Unix seconds.
    pub fn sign_request(
        &self,
        method: &str,
        path: &str,
        time: i64,
        nonce: &str,
        body: &[u8],
    ) -> SignedHeaders {
        let device_id = self.device_id();
        let content = canonical_string(method, path, &device_id, time, nonce, body);
        let signature = URL_SAFE_NO_PAD.encode(self.sign_bytes(content.as_bytes()));
        SignedHeaders {
            device_id,
            time,
            nonce: nonce.to_owned(),
            signature,
        }
    }
}

/// Generates a fresh nonce: 16 random bytes, base64url (22 characters).
pub fn new_nonce() -> Result<String> {
    let mut bytes = [0_u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::InvalidKey {
            what: "nonce",
            reason: "the random source failed",
        })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A device's Ed25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevicePublicKey([u8; 32]);

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevicePublicKey({})", self.to_base64())
    }
}

impl DevicePublicKey {
    /// Wraps 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DevicePublicKey(bytes)
    }

    /// Parses the base64url (no padding) form used on the wire.
    pub fn from_base64(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidKey {
            what: "device public key",
            reason: "not 32 bytes of base64url",
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid())?;
        Ok(DevicePublicKey(bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The base64url (no padding) form used on the wire.
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The device id: `dev_` and the first 16 bytes of SHA-256 of the key, in hex. It is
    /// derived from the key, so registering the same key twice names the same device.
    pub fn device_id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        format!("dev_{}", hex(&digest.as_ref()[..16]))
    }

    /// Verifies a raw 64-byte signature over `message`.
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .map_err(|_| Error::BadSignature)
    }
}

/// The string a device signs (see the module docs). `path` includes the query string.
pub fn canonical_string(
    method: &str,
    path: &str,
    device_id: &str,
    time: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    let body_hash = ring::digest::digest(&ring::digest::SHA256, body);
    format!(
        "{SCHEME}\n{}\n{path}\n{device_id}\n{time}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        hex(body_hash.as_ref())
    )
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The four signing headers of one request, as sent or as received.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `x-scanbind-device`.
    pub device_id: String,
    /// `x-scanbind-time`, Unix seconds.
    pub time: i64,
    /// `x-scanbind-nonce`.
    pub nonce: String,
    /// `x-scanbind-signature`, base64url.
    pub signature: String,
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeaders")
            .field("device_id", &self.device_id)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl SignedHeaders {
    /// The headers as `(name, value)` pairs, ready to attach to a request.
    pub fn to_pairs(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_DEVICE, self.device_id.clone()),
            (HEADER_TIME, self.time.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// Reads and checks the shape of the four headers through `lookup` (which returns a
    /// header's value by lowercase name). Says which header is missing or malformed.
    pub fn from_lookup<'a>(lookup: impl Fn(&'static str) -> Option<&'a str>) -> Result<Self> {
        let get = |name: &'static str| lookup(name).ok_or(Error::MissingHeader(name));
        let device_id = get(HEADER_DEVICE)?;
        let time = get(HEADER_TIME)?;
        let nonce = get(HEADER_NONCE)?;
        let signature = get(HEADER_SIGNATURE)?;
        if !is_device_id(device_id) {
            return Err(Error::MalformedHeader(HEADER_DEVICE));
        }
        if time.is_empty() || time.len() > 12 || !time.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::MalformedHeader(HEADER_TIME));
        }
        let time: i64 = time
            .parse()
            .map_err(|_| Error::MalformedHeader(HEADER_TIME))?;
        if !(16..=64).contains(&nonce.len())
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::MalformedHeader(HEADER_NONCE));
        }
        if signature.len() != 86 {
            return Err(Error::MalformedHeader(HEADER_SIGNATURE));
        }
        Ok(SignedHeaders {
            device_id: device_id.to_owned(),
            time,
            nonce: nonce.to_owned(),
            signature: signature.to_owned(),
        })
    }
}

/// True for a well-formed device id (`dev_` + 32 lowercase hex digits).
pub fn is_device_id(text: &str) -> bool {
    text.strip_prefix("dev_").is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Checks device request signatures and freshness. The clock is passed in by the caller
/// (`now` in Unix seconds), so tests need no real time.
#[derive(Debug, Clone, Copy)]
pub struct Verifier {
    window_seconds: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            window_seconds: DEFAULT_WINDOW_SECONDS,
        }
    }
}

impl Verifier {
    /// A verifier with a freshness window of ±`window_seconds`.
    pub fn with_window(window_seconds: i64) -> Self {
        Verifier {
            window_seconds: window_seconds.max(0),
        }
    }

    /// The window, in seconds.
    pub fn window_seconds(&self) -> i64 {
        self.window_seconds
    }

    /// Verifies one request: freshness first (cheap), then the signature. Replay
    /// detection (a nonce seen before) is the caller's job, because it needs storage:
    /// remember `(device_id, nonce)` for twice the window after this returns `Ok`.
    pub fn verify(
        &self,
        key: &DevicePublicKey,
        headers: &SignedHeaders,
        method: &str,
        path: &str,
        body: &[u8],
        now: i64,
    ) -> Result<()> {
        let skew = headers.time.saturating_sub(now);
        if skew.abs() > self.window_seconds {
            return Err(Error::Stale {
                skew_seconds: skew,
                window_seconds: self.window_seconds,
            });
        }
        if key.device_id() != headers.device_id {
            return Err(Error::BadSignature);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(&headers.signature)
            .map_err(|_| Error::MalformedHeader(HEADER_SIGNATURE))?;
        let content = canonical_string(
            method,
            path,
            &headers.device_id,
            headers.time,
            &headers.nonce,
            body,
        );
        key.verify_bytes(content.as_bytes(), &signature)
    }
}
