//! Receipt verification against the merchant server's published keys.
//!
//! A succeeded payment carries a receipt: a JWS signed with Ed25519 by the merchant
//! server. Verify it where it matters — on the app's backend, before granting what was
//! bought — against the key set the server publishes at `/v1/receipt-keys`.

pub use scanbind_device_api::receipt::{Receipt, ReceiptKeySet, ReceiptKind};
use scanbind_money::Money;

use crate::error::{Error, Result};

/// The path of the key set on the merchant server.
pub const RECEIPT_KEYS_PATH: &str = "/v1/receipt-keys";

/// Verifies receipts against one key set.
#[derive(Debug, Clone)]
pub struct ReceiptVerifier {
    keys: ReceiptKeySet,
}

impl ReceiptVerifier {
    /// A verifier with a key set the caller already has (fetched earlier, pinned in
    /// configuration).
    pub fn new(keys: ReceiptKeySet) -> ReceiptVerifier {
        ReceiptVerifier { keys }
    }

    /// Fetches the key set from the merchant server at `server_url` (its base URL,
    /// e.g. `https://pay.example.com`).
    pub async fn fetch(server_url: &str) -> Result<ReceiptVerifier> {
        let url = format!("{}{RECEIPT_KEYS_PATH}", server_url.trim_end_matches('/'));
        let wrap = |e: Box<dyn std::error::Error + Send + Sync>| Error::ReceiptKeys {
            url: url.clone(),
            source: e,
        };
        let http = crate::http::client_builder()
            .map_err(wrap)?
            .build()
            .map_err(|e| wrap(Box::new(e)))?;
        let keys: ReceiptKeySet = http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| wrap(Box::new(e)))?
            .json()
            .await
            .map_err(|e| wrap(Box::new(e)))?;
        Ok(ReceiptVerifier { keys })
    }

    /// The key set.
    pub fn keys(&self) -> &ReceiptKeySet {
        &self.keys
    }

    /// Checks the signature and returns the claims.
    pub fn verify(&self, jws: &str) -> Result<Receipt> {
        Ok(scanbind_device_api::receipt::verify_receipt(
            jws, &self.keys,
        )?)
    }

    /// Checks the signature and that the receipt proves a succeeded payment of
    /// `amount` for `order_id`.
    pub fn verify_payment(&self, jws: &str, order_id: &str, amount: Money) -> Result<Receipt> {
        let r = self.verify(jws)?;
        let mismatch = |what: String| Err(Error::ReceiptMismatch(what));
        if r.kind != ReceiptKind::Payment {
            return mismatch("it is not a payment receipt".into());
        }
        if r.status != "succeeded" {
            return mismatch(format!("its status is {:?}", r.status));
        }
        if r.app_order_id != order_id {
            return mismatch(format!(
                "it is for order {:?}, not {order_id:?}",
                r.app_order_id
            ));
        }
        if r.amount.value != amount.minor().get() || r.amount.currency != amount.currency().code() {
            return mismatch(format!(
                "it is for {} {} minor units, not {amount}",
                r.amount.currency, r.amount.value
            ));
        }
        Ok(r)
    }

    /// Checks the signature and that the receipt proves a succeeded payment of
    /// `amount` to `seller` as part `index` of the combined checkout `order_id`.
    pub fn verify_part(
        &self,
        jws: &str,
        order_id: &str,
        index: u32,
        seller: &str,
        amount: Money,
    ) -> Result<Receipt> {
        let r = self.verify_payment(jws, &format!("{order_id}#{index}"), amount)?;
        if r.seller_id.as_deref() != Some(seller) {
            return Err(Error::ReceiptMismatch(format!(
                "it names seller {:?}, not {seller:?}",
                r.seller_id
            )));
        }
        Ok(r)
    }
}
