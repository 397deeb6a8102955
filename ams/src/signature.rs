//! AMS RSA256 message signatures.
//!
//! The signed content is `POST <path>\n<client-id>.<time>.<body>` over the exact bytes on
//! the wire; the signature is RSASSA-PKCS1-v1_5 SHA-256, Base64, then URL-encoded into the
//! header `signature: algorithm=RSA256,keyVersion=1,signature=<value>`. The same rule
//! covers requests (`request-time`), responses (`response-time`, the request's path) and
//! notifications (`request-time`, the merchant's own notify path).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::{Error, Result};
use crate::keys::{PrivateKey, PublicKey};

/// The only algorithm AMS defines.
pub const ALGORITHM: &str = "RSA256";

/// What `quote_plus` / `URLEncoder` leave alone: letters, digits and `-._~`.
const QUOTE_PLUS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Builds the content string that is signed: `<method> <path>\n<client-id>.<time>.<body>`.
pub fn content(method: &str, path: &str, client_id: &str, time: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        method.len() + path.len() + client_id.len() + time.len() + body.len() + 4,
    );
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(client_id.as_bytes());
    out.push(b'.');
    out.extend_from_slice(time.as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// A parsed `signature` header.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The `keyVersion` (1 when absent).
    pub key_version: u32,
    /// The raw signature bytes (already URL- and Base64-decoded).
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for SignatureHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureHeader")
            .field("key_version", &self.key_version)
            .field(
                "signature",
                &format_args!("<{} bytes>", self.signature.len()),
            )
            .finish()
    }
}

impl SignatureHeader {
    /// Parses `algorithm=RSA256,keyVersion=1,signature=...` tolerantly: spaces around
    /// commas and `=`, any key case, upper- or lowercase %-hex, a signature left raw
    /// (not URL-encoded), Base64 with or without padding. `algorithm` defaults to RSA256
    /// and `keyVersion` to 1 when absent.
    pub fn parse(value: &str) -> Result<Self> {
        let mut algorithm = None;
        let mut key_version = None;
        let mut signature = None;
        for part in value.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, val)) = part.split_once('=') else {
                return Err(Error::MalformedSignatureHeader("a part has no '='"));
            };
            let key = key.trim();
            let val = val.trim();
            if key.eq_ignore_ascii_case("algorithm") {
                algorithm = Some(val);
            } else if key.eq_ignore_ascii_case("keyVersion") {
                key_version =
                    Some(val.parse::<u32>().map_err(|_| {
                        Error::MalformedSignatureHeader("keyVersion is not a number")
                    })?);
            } else if key.eq_ignore_ascii_case("signature") {
                signature = Some(val);
            }
        }
        if let Some(alg) = algorithm
            && !alg.eq_ignore_ascii_case(ALGORITHM)
        {
            return Err(Error::UnsupportedAlgorithm(alg.chars().take(32).collect()));
        }
        let encoded = signature.ok_or(Error::MalformedSignatureHeader("no signature= part"))?;
        let decoded = percent_decode_str(encoded).decode_utf8().map_err(|_| {
            Error::MalformedSignatureHeader("signature is not valid percent-encoding")
        })?;
        let trimmed = decoded.trim();
        let bytes = STANDARD
            .decode(trimmed)
            .or_else(|_| STANDARD_NO_PAD.decode(trimmed.trim_end_matches('=')))
            .map_err(|_| Error::MalformedSignatureHeader("signature is not valid Base64"))?;
        if bytes.is_empty() {
            return Err(Error::MalformedSignatureHeader("signature is empty"));
        }
        Ok(SignatureHeader {
            key_version: key_version.unwrap_or(1),
            signature: bytes,
        })
    }

    /// Formats the header value: `algorithm=RSA256,keyVersion=N,signature=<urlencoded base64>`.
    pub fn to_header_value(&self) -> String {
        format!(
            "algorithm={ALGORITHM},keyVersion={},signature={}",
            self.key_version,
            encode_signature(&self.signature)
        )
    }
}

/// Base64 then URL-encode (uppercase hex), as `quote_plus(b64encode(sig))`.
pub fn encode_signature(sig: &[u8]) -> String {
    utf8_percent_encode(&STANDARD.encode(sig), QUOTE_PLUS).to_string()
}

/// Signs one message and returns the `signature` header value.
pub fn sign(
    key: &PrivateKey,
    key_version: u32,
    method: &str,
    path: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> Result<String> {
    let signature = key.sign(&content(method, path, client_id, time, body))?;
    Ok(SignatureHeader {
        key_version,
        signature,
    }
    .to_header_value())
}

/// Verifies one message against a `signature` header value.
pub fn verify(
    key: &PublicKey,
    header_value: &str,
    method: &str,
    path: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> Result<()> {
    let header = SignatureHeader::parse(header_value)?;
    key.verify(
        &content(method, path, client_id, time, body),
        &header.signature,
    )
}
