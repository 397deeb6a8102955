//! The one error type of this crate.

/// What can go wrong with keys, signatures and receipts.
///
/// No variant carries key material, a signature value or a token: all are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key could not be generated or parsed.
    #[error("invalid {what}: {reason}")]
    InvalidKey {
        /// Which key.
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A required `x-scanbind-*` header is absent.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// A `x-scanbind-*` header is present but malformed.
    #[error("the {0} header is malformed")]
    MalformedHeader(&'static str),
    /// The request time is outside the freshness window.
    #[error(
        "the request time is {skew_seconds} s away from the server clock (window ±{window_seconds} s)"
    )]
    Stale {
        /// Request time minus server time, in seconds.
        skew_seconds: i64,
        /// The allowed distance.
        window_seconds: i64,
    },
    /// The signature does not verify for this key and request.
    #[error("the signature does not verify")]
    BadSignature,
    /// A receipt is not a well-formed JWS compact string of the expected kind.
    #[error("malformed receipt: {0}")]
    MalformedReceipt(&'static str),
    /// A receipt names a key id that the key set does not hold.
    #[error("the receipt is signed with an unknown key id")]
    UnknownReceiptKey,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
