//! Error codes: the stable, machine-readable part of every failed `/v1` response.
//!
//! A failed request answers with an HTTP status and the body
//! `{"error":{"code":"<code>","message":"<text for people>"}}`. Clients branch on `code`
//! only; `message` may change at any time. Codes are append-only: a published code never
//! changes meaning and is never removed.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($variant:ident = $text:literal, $status:literal, $doc:literal;)*) => {
        /// A stable error code. The text form (see [`ErrorCode::as_str`]) is the contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(#[doc = $doc] #[doc = ""] #[doc = concat!("Wire text `", $text, "`, HTTP ", stringify!($status), ".")] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }

            /// The HTTP status the server answers with.
            pub fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// What the code means, for documentation.
            pub fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $doc,)*
                }
            }

            /// Parses the wire text; `None` for a code this version does not know.
            pub fn parse(text: &str) -> Option<ErrorCode> {
                match text {
                    $($text => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    BadRequest = "bad_request", 400, "The body or a parameter is malformed or missing; the message names the field.";
    AmountInvalid = "amount_invalid", 400, "The amount is not a positive whole number of minor units, or its currency is unknown or not the wallet's.";
    WalletUnsupported = "wallet_unsupported", 400, "The wallet (`customerBelongsTo`) does not support Scan to Bind.";
    Unauthenticated = "unauthenticated", 401, "A required `x-scanbind-*` header is missing or malformed.";
    BadSignature = "bad_signature", 401, "The request signature does not verify with the device's registered key.";
    StaleRequest = "stale_request", 401, "`x-scanbind-time` is more than five minutes away from the server clock; check the device clock and sign again.";
    ReplayedRequest = "replayed_request", 401, "This nonce was already used within the freshness window; sign again with a new nonce.";
    UnknownDevice = "unknown_device", 401, "No registered device has this id.";
    RegistrationRefused = "registration_refused", 403, "Registration needs a valid enrollment token in this deployment (none was sent, or it is not valid, used by another device, revoked or expired).";
    TokenInvalid = "token_invalid", 403, "The sealed token blob does not open for this device and binding (wrong binding, tampered, or sealed with a retired key).";
    NotFound = "not_found", 404, "No such binding, payment or refund for this device.";
    IdempotencyConflict = "idempotency_conflict", 409, "The same app order id (or refund id) was used before with different parameters.";
    InvalidState = "invalid_state", 409, "The operation is not allowed in the current state (binding not active, payment not successful, ...).";
    BodyTooLarge = "body_too_large", 413, "The request body is larger than 64 KiB.";
    PaymentRejected = "payment_rejected", 422, "Alipay refused the operation with a final result; `message` carries its result code.";
    UpstreamUnavailable = "upstream_unavailable", 503, "Alipay could not be reached or gave no trustworthy answer; it is safe to retry the identical request.";
    Internal = "internal", 500, "An unexpected server error; it is safe to retry the identical request.";
    MergePayNotAllowed = "merge_pay_not_allowed", 403, "A combined checkout names a seller this merchant has not enabled for combining (Alipay's `MERGE_PAY_NOT_ALLOWED`); nothing was charged.";
    InvalidMergePartner = "invalid_merge_partner", 400, "A combined checkout names a seller this merchant does not know (Alipay's `INVALID_MERGE_PARTNER`); nothing was charged.";
    TooManyParts = "too_many_parts", 400, "A combined checkout has fewer than 2 parts, more than 6 in all-or-nothing mode, or more than 20 otherwise; nothing was charged.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ErrorCode::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {text:?}")))
    }
}

/// The body of every failed `/v1` response: `{"error":{"code":..,"message":..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The error.
    pub error: ApiErrorDetail,
}

/// The inside of [`ApiError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// The stable code.
    pub code: ErrorCode,
    /// Text for people; never parsed.
    pub message: String,
}

impl ApiError {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            error: ApiErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!((400..600).contains(&code.http_status()));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    #[test]
    fn published_codes_never_change() {
        // Append-only contract: these strings are what clients branch on.
        let expected = [
            "bad_request",
            "amount_invalid",
            "wallet_unsupported",
            "unauthenticated",
            "bad_signature",
            "stale_request",
            "replayed_request",
            "unknown_device",
            "registration_refused",
            "token_invalid",
            "not_found",
            "idempotency_conflict",
            "invalid_state",
            "body_too_large",
            "payment_rejected",
            "upstream_unavailable",
            "internal",
            "merge_pay_not_allowed",
            "invalid_merge_partner",
            "too_many_parts",
        ];
        let actual: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(actual[..expected.len()], expected);
    }

    #[test]
    fn body_shape() {
        let body = ApiError::new(ErrorCode::StaleRequest, "clock");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"stale_request","message":"clock"}}"#
        );
    }
}
