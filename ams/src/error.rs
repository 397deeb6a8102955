//! The one error type of this crate.

use crate::result::AmsResult;

/// Everything that can go wrong in the AMS layer.
///
/// Every variant names what was wrong; none of them ever carries a key, a token or a
/// signature value (they are safe to log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key could not be read or has the wrong type or size.
    #[error("invalid {what}: {reason}")]
    InvalidKey {
        /// Which key ("merchant private key", "Alipay public key", ...).
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A key file could not be read.
    #[error("cannot read {what} from {path}: {source}")]
    KeyFile {
        /// Which key.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `signature` header is missing.
    #[error("the signature header is missing")]
    MissingSignature,
    /// The `signature` header is not `algorithm=RSA256,keyVersion=N,signature=...`.
    #[error("malformed signature header: {0}")]
    MalformedSignatureHeader(&'static str),
    /// The header names an algorithm other than RSA256.
    #[error("unsupported signature algorithm {0:?} (only RSA256 is defined)")]
    UnsupportedAlgorithm(String),
    /// The signature is well formed but does not match the content and key.
    #[error("the signature does not verify")]
    BadSignature,
    /// Signing failed inside the crypto library.
    #[error("signing failed")]
    SigningFailed,
    /// A required header is missing (`client-id`, `request-time`, `response-time`).
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// A header value is not visible ASCII.
    #[error("the {0} header is not valid text")]
    InvalidHeader(&'static str),
    /// A body is not UTF-8.
    #[error("the body is not UTF-8 (byte {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A body is not the JSON the model expects.
    #[error("invalid JSON for {what}: {source}")]
    Json {
        /// What was being parsed.
        what: &'static str,
        /// The parser's error (line, column and the field at fault).
        #[source]
        source: serde_json::Error,
    },
    /// A money value is wrong.
    #[error(transparent)]
    Money(#[from] crate::money::MoneyError),
    /// A configuration value (base URL, region, client id) is wrong.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The HTTP exchange failed (connect, TLS, timeout, body read) — outcome unknown.
    #[error("transport error calling {path}: {kind}")]
    Transport {
        /// The AMS path that was called.
        path: String,
        /// What happened.
        kind: TransportKind,
    },
    /// AMS answered with an HTTP status other than 200.
    #[error("AMS answered HTTP {status} on {path}")]
    HttpStatus {
        /// The AMS path.
        path: String,
        /// The HTTP status.
        status: u16,
    },
    /// A successful response came without a signature, or with one that does not verify.
    #[error("the response to {path} is not signed by Alipay: {reason}")]
    UnverifiedResponse {
        /// The AMS path.
        path: String,
        /// What was wrong.
        reason: Box<Error>,
    },
    /// AMS answered with a result that is not success (after all allowed retries).
    #[error("AMS {path} answered {}/{}: {}", .result.result_status, .result.result_code, .result.result_message.as_deref().unwrap_or(""))]
    Ams {
        /// The AMS path.
        path: String,
        /// The result object as received.
        result: AmsResult,
    },
}

/// The kind of transport failure, without any URL or header value in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// Could not connect (refused, DNS, TLS handshake).
    Connect,
    /// The per-attempt timeout elapsed; the request may have been processed.
    Timeout,
    /// The connection broke while sending or reading; the request may have been processed.
    Io,
    /// The response body was larger than allowed.
    BodyTooLarge,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "could not connect",
            TransportKind::Timeout => "timed out (outcome unknown)",
            TransportKind::Io => "connection broken (outcome unknown)",
            TransportKind::BodyTooLarge => "response body too large",
        })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
