//! Signed receipts: JWS compact serialisation (RFC 7515) with EdDSA (Ed25519, RFC 8037).
//!
//! The server signs a [`Receipt`] when a payment or refund reaches a final state. An app's
//! backend verifies it offline with [`verify_receipt`] against the key set the server
//! publishes at `/v1/receipt-keys` ([`ReceiptKeySet`], a JWKS). The JOSE header is
//! `{"alg":"EdDSA","kid":"<key id>","typ":"scanbind-receipt+jwt"}`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::signing::{DevicePublicKey, hex};
use crate::types::Amount;

/// The JOSE `typ` of a receipt.
pub const RECEIPT_TYP: &str = "scanbind-receipt+jwt";

/// The JOSE `typ` of a subscription receipt (a different `typ`, so a subscription
/// receipt can never pass for a payment receipt or the other way round).
pub const SUBSCRIPTION_RECEIPT_TYP: &str = "scanbind-subscription+jwt";

/// The claims of a subscription receipt: the entitlement an app can check offline. Signed
/// by the same key as payment receipts, issued again on every change of state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionReceipt {
    /// Format version, 1.
    pub ver: u32,
    /// Issuer: the merchant's AMS client id.
    pub iss: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// The device that subscribed.
    pub device_id: String,
    /// The app on the device.
    pub app_id: String,
    /// The app's own subscription id.
    pub app_subscription_id: String,
    /// The server's subscription id.
    pub subscription_id: String,
    /// The plan's name.
    pub plan: String,
    /// The billing period (ISO 8601 duration).
    pub period: String,
    /// The full price of one period.
    pub amount: Amount,
    /// The state (`pending`, `trial`, `active`, `grace`, `cancelled`, `expired`).
    pub state: String,
    /// Whether the app should grant access at `iat`.
    pub entitled: bool,
    /// The end of what is paid for (or of the trial), Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<i64>,
    /// Periods paid so far.
    pub periods_paid: u32,
}

/// What a receipt is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptKind {
    /// A payment reached a final state.
    Payment,
    /// A refund reached a final state.
    Refund,
}

/// The claims of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// Format version, 1.
    pub ver: u32,
    /// Payment or refund.
    pub kind: ReceiptKind,
    /// Issuer: the merchant's AMS client id.
    pub iss: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// The device that asked for it.
    pub device_id: String,
    /// The app on the device.
    pub app_id: String,
    /// The app's own order id.
    pub app_order_id: String,
    /// The server's payment id.
    pub payment_id: String,
    /// The AMS `paymentRequestId`.
    pub payment_request_id: String,
    /// Alipay's `paymentId`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ams_payment_id: Option<String>,
    /// The app's refund id (refund receipts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The AMS `refundRequestId` (refund receipts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// Final status: `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// The amount paid or refunded.
    pub amount: Amount,
    /// A payment priced in another currency than the wallet's: what the wallet paid and
    /// at which quote (payment receipts of a succeeded payment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<crate::types::Conversion>,
    /// Alipay's result code for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// The seller paid (`referenceMerchantId`), for a part of a combined checkout; absent
    /// when the merchant itself is paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<String>,
    /// The combined checkout the payment is a part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_id: Option<String>,
}

/// One public key of a [`ReceiptKeySet`] (a JWK, RFC 8037 `OKP`/`Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptJwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Key id.
    pub kid: String,
    /// The public key, base64url.
    pub x: String,
}

/// The keys published at `/v1/receipt-keys`: the current one first, then retired ones
/// still valid for old receipts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReceiptKeySet {
    /// The keys.
    pub keys: Vec<ReceiptJwk>,
}

/// The receipt key id of a public key: `rk_` and 8 bytes of its SHA-256 in hex.
pub fn receipt_key_id(public: &DevicePublicKey) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public.as_bytes());
    format!("rk_{}", hex(&digest.as_ref()[..8]))
}

impl ReceiptJwk {
    /// The JWK of an Ed25519 public key.
    pub fn from_public(public: &DevicePublicKey) -> Self {
        ReceiptJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
            kid: receipt_key_id(public),
            x: public.to_base64(),
        }
    }
}

/// Signs receipts with one Ed25519 key. `Debug` never shows key material.
pub struct ReceiptSigner {
    pair: Ed25519KeyPair,
    kid: String,
}

impl fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
    typ: String,
}

impl ReceiptSigner {
    /// A signer from a PKCS#8 Ed25519 private key (v1 or v2).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| Error::InvalidKey {
                what: "receipt signing key",
                reason: "not an Ed25519 PKCS#8 private key",
            })?;
        let kid = receipt_key_id(&public_of(&pair));
        Ok(ReceiptSigner { pair, kid })
    }

    /// The key id written into every receipt.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn public_key(&self) -> DevicePublicKey {
        public_of(&self.pair)
    }

    /// The JWK to publish.
    pub fn jwk(&self) -> ReceiptJwk {
        ReceiptJwk::from_public(&self.public_key())
    }

    /// Signs `receipt` as a JWS compact string.
    pub fn sign(&self, receipt: &Receipt) -> String {
        self.sign_typed(RECEIPT_TYP, receipt)
    }

    /// Signs a subscription receipt as a JWS compact string (typ
    /// [`SUBSCRIPTION_RECEIPT_TYP`]).
    pub fn sign_subscription(&self, receipt: &SubscriptionReceipt) -> String {
        self.sign_typed(SUBSCRIPTION_RECEIPT_TYP, receipt)
    }

    fn sign_typed<T: Serialize>(&self, typ: &str, receipt: &T) -> String {
        let header = Header {
            alg: "EdDSA".into(),
            kid: self.kid.clone(),
            typ: typ.into(),
        };
        // Both serialisations are of plain structs of strings and integers: infallible.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let payload = serde_json::to_vec(receipt).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = self.pair.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn public_of(pair: &Ed25519KeyPair) -> DevicePublicKey {
    let mut bytes = [0_u8; 32];
    bytes.copy_from_slice(pair.public_key().as_ref());
    DevicePublicKey::from_bytes(bytes)
}

/// Verifies a receipt against a key set and returns its claims.
pub fn verify_receipt(jws: &str, keys: &ReceiptKeySet) -> Result<Receipt> {
    verify_typed(jws, keys, RECEIPT_TYP)
}

/// Verifies a subscription receipt against a key set and returns its claims.
pub fn verify_subscription_receipt(jws: &str, keys: &ReceiptKeySet) -> Result<SubscriptionReceipt> {
    verify_typed(jws, keys, SUBSCRIPTION_RECEIPT_TYP)
}

fn verify_typed<T: serde::de::DeserializeOwned>(
    jws: &str,
    keys: &ReceiptKeySet,
    typ: &str,
) -> Result<T> {
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::MalformedReceipt("not three dot-separated parts"));
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Error::MalformedReceipt("bad JOSE header"))?;
    if header.alg != "EdDSA" || header.typ != typ {
        return Err(Error::MalformedReceipt("not an EdDSA scanbind receipt"));
    }
    let jwk = keys
        .keys
        .iter()
        .find(|k| k.kid == header.kid && k.kty == "OKP" && k.crv == "Ed25519")
        .ok_or(Error::UnknownReceiptKey)?;
    let public = DevicePublicKey::from_base64(&jwk.x)?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Error::MalformedReceipt("bad signature encoding"))?;
    public.verify_bytes(format!("{h}.{p}").as_bytes(), &sig)?;
    URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Error::MalformedReceipt("bad payload"))
}
