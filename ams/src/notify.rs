//! Incoming notifications: verify, parse, acknowledge.
//!
//! Alipay signs a notification with its own key over the **merchant's** notify path
//! (domain excluded) and the notification's `request-time` header. A merchant must answer
//! HTTP 200 with exactly [`ACK_BODY`]; anything else makes Alipay retry.
//!
//! [`NotificationVerifier::verify`] checks the client id, the signature over the raw bytes,
//! then parses and validates the typed body. A forged, unsigned or malformed notification
//! is an `Err`, and the caller must neither act on it nor acknowledge it.

use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::model::Notification;
use crate::signature;

/// The exact acknowledgement body that stops Alipay's retries.
pub const ACK_BODY: &str =
    r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;

/// True when `body` is a success acknowledgement: JSON whose `result` has
/// `resultCode` SUCCESS and `resultStatus` S (what Alipay checks; spacing is free).
pub fn is_ack(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct R {
        result_code: String,
        result_status: String,
    }
    #[derive(serde::Deserialize)]
    struct Ack {
        result: R,
    }
    serde_json::from_slice::<Ack>(body)
        .is_ok_and(|a| a.result.result_code == "SUCCESS" && a.result.result_status == "S")
}

/// The three headers a notification is verified with (names are case-insensitive on
/// the wire; the caller looks them up).
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationHeaders<'a> {
    /// `client-id`.
    pub client_id: Option<&'a str>,
    /// `request-time`.
    pub request_time: Option<&'a str>,
    /// `signature`.
    pub signature: Option<&'a str>,
}

/// Verifies notifications for one merchant.
#[derive(Debug, Clone)]
pub struct NotificationVerifier {
    client_id: String,
    alipay_public_key: PublicKey,
}

impl NotificationVerifier {
    /// A verifier for notifications addressed to `client_id`, signed by `alipay_public_key`.
    pub fn new(client_id: impl Into<String>, alipay_public_key: PublicKey) -> Self {
        NotificationVerifier {
            client_id: client_id.into(),
            alipay_public_key,
        }
    }

    /// Verifies and parses one notification received at `path` (the path of the notify
    /// URL as requested, without scheme, host or query).
    pub fn verify<N: Notification>(
        &self,
        path: &str,
        headers: NotificationHeaders<'_>,
        body: &[u8],
    ) -> Result<N> {
        let client_id = headers.client_id.ok_or(Error::MissingHeader("client-id"))?;
        if client_id != self.client_id {
            return Err(Error::Config(
                "notification is addressed to another client id".into(),
            ));
        }
        let time = headers
            .request_time
            .ok_or(Error::MissingHeader("request-time"))?;
        let sig = headers.signature.ok_or(Error::MissingSignature)?;
        signature::verify(
            &self.alipay_public_key,
            sig,
            "POST",
            path,
            client_id,
            time,
            body,
        )?;
        let text = std::str::from_utf8(body).map_err(|e| Error::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let parsed: N = serde_json::from_str(text).map_err(|source| Error::Json {
            what: "notification",
            source,
        })?;
        parsed
            .validate()
            .map_err(|e| Error::Config(format!("invalid notification: {e}")))?;
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_body_is_an_ack() {
        assert!(is_ack(ACK_BODY.as_bytes()));
        assert!(is_ack(
            br#"{ "result" : { "resultStatus":"S", "resultCode":"SUCCESS" } }"#
        ));
        assert!(!is_ack(
            br#"{"result":{"resultCode":"SUCCESS","resultStatus":"U"}}"#
        ));
        assert!(!is_ack(
            br#"{"result":{"resultCode":"FAIL","resultStatus":"S"}}"#
        ));
        assert!(!is_ack(b"OK"));
        assert!(!is_ack(b""));
    }
}
