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

use std::collections::{HashMap, HashSet};

use scanbind_device_api::types::{
    Checkout, CheckoutPartRequest, CheckoutRequest, CheckoutStatus, PaymentStatus,
};
use scanbind_ipc::types::keys;
use scanbind_ipc::{Error as Wire, ErrorInfo};
use serde::{Deserialize, Serialize};
use zbus::DBusError as _;
use zeroize::Zeroize as _;
use zvariant::{OwnedValue, Value};

use crate::error::{Error, Result};
use crate::store::journal::{Entry, Transition};
use crate::dbus::daemon::{Shared, crash_point, settle_checkout};

/// The most parts of a checkout whose parts succeed or fail independently (the merge
/// pay seed's PC limit; a TV app is a PC-class client: `docs/decisions.md` D23).
pub(crate) const MAX_PARTS: usize = 20;
/// The most parts of an all-or-nothing checkout (the seed's `out_merge_no` limit).
pub(crate) const MAX_PARTS_ALL_OR_NOTHING: usize = 6;
/// The longest seller id and part description (characters).
const MAX_SELLER: usize = 64;
const MAX_DESCRIPTION: usize = 256;

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
    pub(crate) fn to_json(&self) -> std::result::Result<String, Wire> {
        serde_json::to_string(self).map_err(|e| Wire::Internal(format!("encoding parts: {e}")))
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
    serde_json::from_str(entry.checkout_result.as_deref()?).ok()
}

/// Parses and checks the `sellers` option (`aa{sv}`): 2 to [`MAX_PARTS`] parts (at
/// most [`MAX_PARTS_ALL_OR_NOTHING`] when all-or-nothing), each seller once, each
/// amount positive, adding up to `total` exactly (checked arithmetic).
pub(crate) fn parse_sellers(
    v: &Value<'_>,
    total: i64,
    all_or_nothing: bool,
) -> std::result::Result<CheckoutSpec, Wire> {
    use keys::seller as k;
    let bad = |m: String| Wire::InvalidArgument(format!("sellers: {m}"));
    let Value::Array(items) = v else {
        return Err(bad("must be aa{sv}".into()));
    };
    let max = if all_or_nothing {
        MAX_PARTS_ALL_OR_NOTHING
    } else {
        MAX_PARTS
    };
    if items.len() < 2 || items.len() > max {
        return Err(bad(format!(
            "give 2 to {max} parts{}",
            if all_or_nothing {
                " in an all-or-nothing checkout (20 with all-or-nothing false)"
            } else {
                ""
            }
        )));
    }
    let mut parts = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    let mut sum: i64 = 0;
    for (i, item) in items.inner().iter().enumerate() {
        let Value::Dict(d) = item else {
            return Err(bad(format!("part {i} must be a{{sv}}")));
        };
        let (mut seller, mut amount, mut description) = (None, None, None);
        for (key, val) in d.iter() {
            let Value::Str(key) = key else {
                return Err(bad(format!("part {i}: keys must be strings")));
            };
            let val = match val {
                Value::Value(inner) => &**inner,
                other => other,
            };
            match (key.as_str(), val) {
                (k::SELLER, Value::Str(s))
                    if (1..=MAX_SELLER).contains(&s.len())
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
                {
                    seller = Some(s.to_string());
                }
                (k::AMOUNT_MINOR, Value::I64(a)) if *a > 0 => amount = Some(*a),
                (k::DESCRIPTION, Value::Str(s))
                    if !s.is_empty() && s.chars().count() <= MAX_DESCRIPTION =>
                {
                    description = Some(s.to_string());
                }
                (k::SELLER, _) => {
                    return Err(bad(format!(
                        "part {i}: seller must be s of 1 to {MAX_SELLER} of A-Z a-z 0-9 _ . -"
                    )));
                }
                (k::AMOUNT_MINOR, _) => {
                    return Err(Wire::InvalidAmount(format!(
                        "sellers: part {i}: amount-minor must be x > 0"
                    )));
                }
                (k::DESCRIPTION, _) => {
                    return Err(bad(format!(
                        "part {i}: description must be s of 1 to {MAX_DESCRIPTION} characters"
                    )));
                }
                (other, _) => {
                    return Err(Wire::UnknownOption(format!(
                        "seller part {i} has an unknown key {other:?}"
                    )));
                }
            }
        }
        let (Some(seller), Some(amount_minor), Some(description)) = (seller, amount, description)
        else {
            return Err(bad(format!(
                "part {i} needs seller, amount-minor and description"
            )));
        };
        if !seen.insert(seller.clone()) {
            return Err(bad(format!("seller {seller:?} appears twice")));
        }
        sum = sum
            .checked_add(amount_minor)
            .ok_or_else(|| Wire::InvalidAmount("sellers: the total overflows".into()))?;
        parts.push(SellerPart {
            seller,
            amount_minor,
            description,
        });
    }
    if sum != total {
        return Err(Wire::InvalidAmount(format!(
            "the sellers' parts add up to {sum}, not amount_minor {total}"
        )));
    }
    Ok(CheckoutSpec {
        all_or_nothing,
        parts,
    })
}

/// The `Parts` property: one dictionary per part (keys in [`keys::part`]), the
/// request's fields filled in with the server's latest answer.
pub(crate) fn part_views(entry: &Entry) -> Vec<HashMap<String, OwnedValue>> {
    use keys::part as k;
    let Some(spec) = spec_of(entry) else {
        return Vec::new();
    };
    let result = result_of(entry);
    let s = |v: &str| OwnedValue::try_from(Value::from(v)).unwrap_or_else(|_| OwnedValue::from(0));
    spec.parts
        .iter()
        .enumerate()
        .map(|(i, asked)| {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let known = result
                .as_ref()
                .and_then(|c| c.parts.iter().find(|p| p.index == index));
            let mut d = HashMap::new();
            d.insert(k::INDEX.to_owned(), OwnedValue::from(index));
            d.insert(k::SELLER.to_owned(), s(&asked.seller));
            d.insert(
                k::AMOUNT_MINOR.to_owned(),
                OwnedValue::from(asked.amount_minor),
            );
            d.insert(k::DESCRIPTION.to_owned(), s(&asked.description));
            d.insert(
                k::SELLER_NAME.to_owned(),
                s(known.map(|p| p.seller_name.as_str()).unwrap_or_default()),
            );
            d.insert(
                k::STATE.to_owned(),
                s(known.map_or("pending", |p| p.status.as_str())),
            );
            d.insert(
                k::RECEIPT.to_owned(),
                s(known.and_then(|p| p.receipt.as_deref()).unwrap_or_default()),
            );
            d.insert(
                k::REVERSED.to_owned(),
                OwnedValue::from(known.is_some_and(|p| p.reversed)),
            );
            d.insert(
                k::RESULT_CODE.to_owned(),
                s(known
                    .and_then(|p| p.result_code.as_deref())
                    .unwrap_or_default()),
            );
            d.insert(
                k::REFUNDED_MINOR.to_owned(),
                OwnedValue::from(entry.part_refunds.get(&index).copied().unwrap_or(0)),
            );
            d
        })
        .collect()
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
            Transition::Failed(ErrorInfo {
                name: Wire::ServerError(String::new()).name().to_string(),
                message: if reversed > 0 {
                    format!("{why}; the {reversed} paid part(s) were reversed, nothing is charged")
                } else {
                    format!("{why}; nothing is charged")
                },
            })
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
        app_id: entry.app_id.clone(),
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
                description: p.description.clone(),
            })
            .collect(),
    };
    let result = shared.server.checkout(&req).await;
    req.sealed_tokens.zeroize();
    crash_point("after-send");
    match result {
        Ok(c) => settle_checkout(shared, id, &c).await,
        Err(e @ Error::ServerRejected { status, .. }) if (400..500).contains(&status) => {
            // Refused before any money moved (unknown or non-combinable seller, limits).
            let info = ErrorInfo {
                name: Wire::ServerError(String::new()).name().to_string(),
                message: e.to_string(),
            };
            crate::dbus::daemon::settle_payment(shared, id, Transition::Failed(info)).await
        }
        Err(e) => {
            tracing::warn!(payment = id, cause = %e, "checkout outcome unknown");
            crate::dbus::daemon::settle_payment(shared, id, Transition::PendingUnknown).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use zvariant::Array;

    fn part(seller: &str, amount: i64) -> HashMap<String, Value<'static>> {
        HashMap::from([
            ("seller".to_owned(), Value::from(seller.to_owned())),
            ("amount-minor".to_owned(), Value::from(amount)),
            ("description".to_owned(), Value::from("thing")),
        ])
    }

    fn sellers(parts: Vec<HashMap<String, Value<'static>>>) -> Value<'static> {
        let mut a = Array::new(&zvariant::Signature::static_dict(
            &zvariant::Signature::Str,
            &zvariant::Signature::Variant,
        ));
        for p in parts {
            a.append(Value::from(p)).unwrap();
        }
        Value::Array(a)
    }

    #[test]
    fn good_parts_parse_in_order() {
        let v = sellers(vec![part("SELLER_A", 100), part("SELLER_B", 250)]);
        let spec = parse_sellers(&v, 350, true).unwrap();
        assert!(spec.all_or_nothing);
        assert_eq!(
            spec.parts
                .iter()
                .map(|p| (p.seller.as_str(), p.amount_minor))
                .collect::<Vec<_>>(),
            [("SELLER_A", 100), ("SELLER_B", 250)]
        );
        assert_eq!(spec.sellers_text(), "SELLER_A and SELLER_B");
        let back: CheckoutSpec = serde_json::from_str(&spec.to_json().unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn bad_parts_get_typed_errors() {
        let name = |r: std::result::Result<CheckoutSpec, Wire>| r.unwrap_err().name().to_string();
        let seven: Vec<_> = (0..7).map(|i| part(&format!("S{i}"), 1)).collect();
        assert!(name(parse_sellers(&sellers(seven.clone()), 7, true)).ends_with("InvalidArgument"));
        assert!(
            parse_sellers(&sellers(seven), 7, false).is_ok(),
            "20 when independent"
        );
        let many: Vec<_> = (0..21).map(|i| part(&format!("S{i}"), 1)).collect();
        assert!(name(parse_sellers(&sellers(many), 21, false)).ends_with("InvalidArgument"));
        let one = sellers(vec![part("A", 5)]);
        assert!(name(parse_sellers(&one, 5, true)).ends_with("InvalidArgument"));
        let twice = sellers(vec![part("A", 5), part("A", 5)]);
        assert!(name(parse_sellers(&twice, 10, true)).ends_with("InvalidArgument"));
        let wrong_sum = sellers(vec![part("A", 5), part("B", 5)]);
        assert!(name(parse_sellers(&wrong_sum, 11, true)).ends_with("InvalidAmount"));
        let negative = sellers(vec![part("A", -5), part("B", 15)]);
        assert!(name(parse_sellers(&negative, 10, true)).ends_with("InvalidAmount"));
        let overflow = sellers(vec![part("A", i64::MAX), part("B", 1)]);
        assert!(name(parse_sellers(&overflow, 1, true)).ends_with("InvalidAmount"));
        let bad_id = sellers(vec![part("has space", 5), part("B", 5)]);
        assert!(name(parse_sellers(&bad_id, 10, true)).ends_with("InvalidArgument"));
        let mut extra = part("A", 5);
        extra.insert("colour".into(), Value::from("red"));
        let unknown = sellers(vec![extra, part("B", 5)]);
        assert!(name(parse_sellers(&unknown, 10, true)).ends_with("UnknownOption"));
        assert!(name(parse_sellers(&Value::from("x"), 10, true)).ends_with("InvalidArgument"));
    }
}
