//! Combined checkouts: one `Pay` that pays several sellers (`sellers` option).
//!
//! The daemon treats a checkout as one payment of the app (one journal row, one
//! `Payment1` object, one order id, one budget charge for the total, one confirmation);
//! the merchant server splits it into one AMS payment per seller (`POST /v1/checkouts`)
//! and reverses the paid parts of an all-or-nothing checkout when one fails. The
//! journal keeps the parts as asked ([`CheckoutSpec`], fixed at record time, part of
//! the idempotency check) and the server's latest answer (its `Checkout`), from which
//! the `Parts` property, the final state and per-part refunds are derived.
//!
//! Re-driving after a crash or a lost answer posts the same checkout again with the
//! same app order id: the server answers idempotently, so no part is charged twice.

use scanbind_device_api::types::{
    Checkout, CheckoutPartRequest, CheckoutRequest, CheckoutStatus, PaymentStatus,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize as _;

use super::driver::{settle_checkout, settle_payment};
use super::error::{Failure, Refusal};
use super::shared::{Shared, crash_point};
use crate::error::{Error, Result};
use crate::store::journal::{Entry, Transition};

// The most parts (independent: the merge pay seed's PC limit, D23; all-or-nothing:
// the seed's `out_merge_no` limit) and the longest seller id and part description:
// the contract's limits.
pub(crate) use scanbind_ipc::limits::{
    MAX_PART_DESCRIPTION as MAX_DESCRIPTION, MAX_PARTS, MAX_PARTS_ALL_OR_NOTHING, MAX_SELLER,
};

/// One seller's part, as the app asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SellerPart {
    pub(crate) seller: String,
    pub(crate) amount_minor: i64,
    pub(crate) description: String,
}

/// A checkout as the app asked for it (stored in the journal as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CheckoutSpec {
    pub(crate) all_or_nothing: bool,
    pub(crate) parts: Vec<SellerPart>,
}

impl CheckoutSpec {
    /// The JSON stored in the journal.
    pub(crate) fn to_json(&self) -> std::result::Result<String, Refusal> {
        serde_json::to_string(self).map_err(|e| Refusal::Internal(format!("encoding parts: {e}")))
    }

    /// "Alpha Books, Beta Games and Gamma Tea": the sellers, for prompts.
    pub(crate) fn sellers_text(&self) -> String {
        let ids: Vec<&str> = self.parts.iter().map(|p| p.seller.as_str()).collect();
        match ids.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

/// The parts as asked, from a journal entry (`None` for other payments).
pub(crate) fn spec_of(entry: &Entry) -> Option<CheckoutSpec> {
    serde_json::from_str(entry.checkout.as_deref()?).ok()
}

/// The server's latest answer about an entry's checkout, if any.
pub(crate) fn result_of(entry: &Entry) -> Option<Checkout> {
    entry.server_checkout()
}

/// The journal transition for the server's answer about a checkout: succeeded and
/// partially succeeded are `succeeded` in the journal (money moved; the answer kept
/// beside it tells them apart), failed is `failed` with the first failing part's
/// reason, pending is `pending-unknown` (asked again).
pub(crate) fn transition_for_checkout(c: &Checkout) -> Transition {
    match c.status {
        CheckoutStatus::Succeeded | CheckoutStatus::PartiallySucceeded => {
            Transition::Succeeded(String::new())
        }
        CheckoutStatus::Failed => {
            let why = c
                .parts
                .iter()
                .find(|p| p.status == PaymentStatus::Failed && !p.reversed)
                .map(|p| {
                    format!(
                        "seller {} ({}): {}{}",
                        p.seller_id,
                        p.index,
                        p.result_code.as_deref().unwrap_or("failed"),
                        p.result_message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "no part was charged".to_owned());
            let reversed = c.parts.iter().filter(|p| p.reversed).count();
            Transition::Failed(Failure::Server.info(if reversed > 0 {
                format!("{why}; the {reversed} paid part(s) were reversed, nothing is charged")
            } else {
                format!("{why}; nothing is charged")
            }))
        }
        CheckoutStatus::Pending => Transition::PendingUnknown,
    }
}

/// Sends a recorded checkout to the server (`POST /v1/checkouts`, idempotent per app
/// order id) with the binding's sealed tokens, and settles the entry from the answer.
pub(crate) async fn drive_checkout(shared: &Shared, entry: Entry, tokens: String) -> Result<()> {
    let id = entry.id;
    let Some(spec) = spec_of(&entry) else {
        return Err(Error::JournalCorrupt {
            id,
            reason: "unreadable checkout parts".into(),
        });
    };
    let mut req = CheckoutRequest {
        app_id: entry.owner().server_app_id(),
        app_order_id: entry.order_id.clone(),
        binding_id: entry.binding.clone(),
        sealed_tokens: tokens,
        currency: entry.amount.currency().code().to_owned(),
        all_or_nothing: spec.all_or_nothing,
        parts: spec
            .parts
            .iter()
            .map(|p| CheckoutPartRequest {
                seller_id: p.seller.clone(),
                amount_minor: p.amount_minor,
                // The daemon's `sellers` parts are priced in the payment's currency.
                currency: None,
                description: p.description.clone(),
            })
            .collect(),
    };
    let result = shared.link.checkout(&req).await;
    req.sealed_tokens.zeroize();
    crash_point("after-send");
    match result {
        Ok(c) => settle_checkout(shared, id, &c).await,
        Err(e @ Error::ServerRejected { status, .. }) if (400..500).contains(&status) => {
            // Refused before any money moved (unknown or non-combinable seller, limits).
            let info = Failure::Server.info(e.to_string());
            settle_payment(shared, id, Transition::Failed(info)).await
        }
        Err(e) => {
            tracing::warn!(payment = id, cause = %e, "checkout outcome unknown");
            settle_payment(shared, id, Transition::PendingUnknown).await
        }
    }
}

/// The server payment id of a checkout part (for its refunds).
pub(crate) fn part_payment_id(entry: &Entry, part: u32) -> Option<String> {
    result_of(entry)?
        .parts
        .into_iter()
        .find(|p| p.index == part)
        .map(|p| p.payment_id)
}
