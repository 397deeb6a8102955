//! Refunds: a refund is recorded `pending` in the journal (within what is left to
//! refund, in one transaction) before it is sent; the server's answer or its
//! `refund.result` event settles it. A refund left `pending` by a crash or a transport
//! error is sent again, with the same refund id, once the link is up after the next
//! start ([`resend_refund`]): the server answers a refund it knows with its state (and
//! re-sends a still pending one to Alipay with the same `refundRequestId`, which the
//! wallet's idempotency answers with the same refund), and sends one it never received.

use scanbind_device_api::types::{Amount, RefundRequest, RefundStatus};

use super::driver::publish_payment;
use super::error::Refusal;
use super::shared::{Shared, crash_point};
use crate::error::{Error, Result};
use crate::store::journal::{Entry, RefundEntry, RefundRecorded, RefundState};

/// The longest refund reason (characters): the contract's limit.
use scanbind_ipc::limits::MAX_REFUND_REASON as MAX_REASON;

/// Checks the `RequestRefund` arguments.
pub(crate) fn check_request(amount_minor: i64, reason: &str) -> std::result::Result<(), Refusal> {
    if amount_minor <= 0 {
        return Err(Refusal::InvalidAmount(format!(
            "amount_minor must be a positive number of minor units, not {amount_minor}"
        )));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(Refusal::InvalidArgument(format!(
            "reason must be at most {MAX_REASON} characters"
        )));
    }
    Ok(())
}

/// Records a refund of `amount_minor` (of checkout part `part`) of the app's payment
/// `entry` under the app's `refund_id` (a fresh one when `None`), sends it and returns
/// the refund id and its state. The same refund id again answers with the refund
/// already recorded.
pub(crate) async fn request(
    shared: &Shared,
    entry: &Entry,
    amount_minor: i64,
    reason: &str,
    part: Option<u32>,
    refund_id: Option<String>,
) -> std::result::Result<(String, RefundState), Refusal> {
    match (super::checkout::spec_of(entry), part) {
        (Some(_), None) => {
            return Err(Refusal::InvalidArgument(
                "a combined checkout is refunded per seller: give the part option".into(),
            ));
        }
        (Some(spec), Some(p)) if p as usize >= spec.parts.len() => {
            return Err(Refusal::InvalidArgument(format!(
                "part {p} does not exist: this checkout has parts 0 to {}",
                spec.parts.len() - 1
            )));
        }
        (None, Some(_)) => {
            return Err(Refusal::InvalidArgument(
                "option part is only for combined checkouts".into(),
            ));
        }
        _ => {}
    }
    let app_refund_id = match refund_id {
        Some(id) => id,
        None => new_refund_id().map_err(|e| Refusal::Internal(e.to_string()))?,
    };
    // Refund ids are per payment: the key sent to the server is prefixed with the
    // payment's idempotency key, so two apps' ids never collide.
    let key = format!("{}-{app_refund_id}", entry.idempotency_key.as_str());
    let (id, k, r) = (entry.id, key, reason.to_owned());
    let recorded = shared
        .journal(move |j| j.record_refund(id, &k, amount_minor, &r, part))
        .await?;
    let refund = match recorded {
        RefundRecorded::NotPaid if part.is_some() => {
            return Err(Refusal::RefundNotAllowed(
                "only a part that succeeded can be refunded".into(),
            ));
        }
        RefundRecorded::NotPaid => {
            return Err(Refusal::RefundNotAllowed(format!(
                "only a succeeded payment can be refunded; this one is {}",
                entry.wire_state().as_str()
            )));
        }
        RefundRecorded::TooMuch(left) => {
            return Err(Refusal::RefundNotAllowed(format!(
                "at most {left} minor units are left to refund"
            )));
        }
        RefundRecorded::Existing(r) if r.amount_minor != amount_minor || r.part != part => {
            return Err(Refusal::Duplicate(format!(
                "refund {app_refund_id} was requested with another amount"
            )));
        }
        RefundRecorded::Existing(r) if r.state != RefundState::Pending => {
            return Ok((app_refund_id, r.state));
        }
        RefundRecorded::Existing(r) => r,
        RefundRecorded::New(r) => {
            crash_point("refund-after-journal");
            r
        }
    };
    let state = send_refund(shared, entry, &refund, reason).await?;
    Ok((app_refund_id, state))
}

/// A fresh refund id: `r-` + 24 hex digits.
fn new_refund_id() -> Result<String> {
    let mut bytes = [0_u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::ServerProtocol("no randomness for a refund id".into()))?;
    Ok(format!(
        "r-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Sends a recorded refund to the server and settles it from the answer. A transport
/// error leaves it `pending` (sent again at the next start, [`resend_refund`], or settled
/// by the server's event); a refusal fails it and is the app's error.
pub(crate) async fn send_refund(
    shared: &Shared,
    entry: &Entry,
    refund: &RefundEntry,
    reason: &str,
) -> std::result::Result<RefundState, Refusal> {
    // A checkout part is refunded as the seller's own payment.
    let server_id = match refund.part {
        Some(part) => super::checkout::part_payment_id(entry, part),
        None => entry.server_payment_id.clone(),
    };
    let Some(server_id) = server_id else {
        return Err(Refusal::RefundNotAllowed(
            "the server has not confirmed this payment yet; retry later".into(),
        ));
    };
    let req = RefundRequest {
        refund_id: refund.refund_id.clone(),
        amount: Amount {
            currency: entry.amount.currency().code().to_owned(),
            value: refund.amount_minor,
        },
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
    };
    match shared.link.refund(&server_id, &req).await {
        Ok(r) => {
            crash_point("refund-after-send");
            settle_refund(shared, &r.refund_id, r.status).await?;
            Ok(match r.status {
                RefundStatus::Pending => RefundState::Pending,
                RefundStatus::Succeeded => RefundState::Succeeded,
                RefundStatus::Failed => RefundState::Failed,
            })
        }
        Err(Error::ServerRejected {
            status,
            code,
            message,
        }) if (400..500).contains(&status) => {
            settle_refund(shared, &refund.refund_id, RefundStatus::Failed).await?;
            Err(Refusal::RefundNotAllowed(format!("{code}: {message}")))
        }
        Err(e) => {
            tracing::warn!(refund = %refund.refund_id, cause = %e, "refund outcome unknown");
            Ok(RefundState::Pending)
        }
    }
}

/// Settles a refund from the server's answer or event: journal first, then the
/// payment object's `RefundedMinor`.
pub(crate) async fn settle_refund(
    shared: &Shared,
    refund_id: &str,
    status: RefundStatus,
) -> Result<()> {
    let state = match status {
        RefundStatus::Pending => return Ok(()),
        RefundStatus::Succeeded => RefundState::Succeeded,
        RefundStatus::Failed => RefundState::Failed,
    };
    let rid = refund_id.to_owned();
    let settled = shared
        .journal(move |j| {
            let Some(r) = j.settle_refund(&rid, state)? else {
                return Ok(None);
            };
            Ok(Some(j.get(r.payment)?))
        })
        .await?;
    let Some(entry) = settled else {
        tracing::debug!("a refund this device did not record");
        return Ok(());
    };
    publish_payment(shared, &entry, false).await?;
    tracing::info!(refund = refund_id, state = state.as_str(), "refund settled");
    Ok(())
}

/// Sends a refund left `pending` by a crash or a transport error again, with the same
/// refund id and body ([`send_refund`]), and settles it from the answer: the server
/// answers a refund it knows with its state, and records and sends one it never
/// received (nothing of it was refunded, so the app's refund still goes through). A
/// refund of a payment the server has not confirmed yet waits for the next start.
pub(crate) async fn resend_refund(shared: &Shared, r: RefundEntry) -> Result<()> {
    let id = r.payment;
    let entry = shared.journal(move |j| j.get(id)).await?;
    let server_id = match r.part {
        Some(part) => super::checkout::part_payment_id(&entry, part),
        None => entry.server_payment_id.clone(),
    };
    if server_id.is_none() {
        return Ok(());
    }
    tracing::info!(refund = %r.refund_id, "sending a pending refund again");
    match send_refund(shared, &entry, &r, &r.reason).await {
        Ok(state) => {
            tracing::debug!(refund = %r.refund_id, state = state.as_str(), "pending refund sent again");
            Ok(())
        }
        // Refused by the server: `send_refund` failed it in the journal.
        Err(refusal) => {
            tracing::warn!(refund = %r.refund_id, cause = %refusal, "the server refused a pending refund");
            Ok(())
        }
    }
}
