//! The payment driver: pays an open journal entry through the merchant server and
//! settles it. Every state change is committed to the journal first, then announced
//! through the [`Publisher`](super::ports::Publisher); a crash between the two is
//! healed by the re-drive at the next start (the server answers idempotently).
//!
//! ```text
//! pending ─► sent ─► server ─► succeeded | failed | cancelled
//!                      └─(no answer / 5xx)─► pending-unknown ─► asked again (back-off)
//! ```
//!
//! Order codes ([`drive_order_code`]) are shown on the display and settled by the
//! server's `payment.result` event; combined checkouts are driven by
//! [`super::checkout`].

use std::sync::Arc;

use scanbind_device_api::types::{Amount, OrderCodePayRequest, PayRequest, Payment, PaymentStatus};
use scanbind_ipc::paths::payment_path;
use zeroize::Zeroize as _;
use zvariant::OwnedValue;

use super::error::Failure;
use super::shared::{Shared, crash_point};
use crate::error::{Error, Result};
use crate::store::journal::{Entry, JournalState, Transition};
use crate::store::vault::SecretKind;
use crate::sync::lock;

/// Drives a payment just recorded (`sent`, `entry` as written) in a task of its own.
pub(crate) fn spawn(shared: &Arc<Shared>, entry: Entry) {
    let (shared, id) = (Arc::clone(shared), entry.id);
    tokio::spawn(async move {
        if let Err(e) = execute_payment_from(&shared, id, Some(entry)).await {
            tracing::error!(payment = id, cause = %e, "payment could not be settled");
        }
    });
}

/// Pays an open journal entry through the server and settles entry and object: a
/// `pending` entry is marked `sent` first; a `sent` or `pending-unknown` one (after a
/// crash or a transport error) is sent again with the same app order id, which the
/// server answers idempotently (never a second charge).
pub(crate) async fn execute_payment(shared: &Shared, id: i64) -> Result<()> {
    execute_payment_from(shared, id, None).await
}

/// [`execute_payment`], starting from the entry as just written (`sent`) when the
/// caller has it: no second read of the journal before the request goes out.
async fn execute_payment_from(shared: &Shared, id: i64, mut fresh: Option<Entry>) -> Result<()> {
    use std::sync::atomic::Ordering;
    // One driver per payment: a re-drive while one runs is a no-op.
    if !lock(&shared.driving).insert(id) {
        return Ok(());
    }
    shared.busy.fetch_add(1, Ordering::SeqCst);
    let mut attempt = 0_u32;
    let result = loop {
        if let Err(e) = drive_payment(shared, id, fresh.take()).await {
            break Err(e);
        }
        // Outcome still unknown (the request failed, the server answered 5xx, or the
        // wallet is still processing): ask again, with the same app order id, after a
        // capped back-off, until a result arrives here or by the event stream. A
        // payment is never left in limbo waiting for an event that may never come.
        match shared.journal(move |j| j.get(id)).await {
            Ok(e) if e.state == JournalState::PendingUnknown => {
                let wait = crate::link::backoff(attempt, 0);
                attempt = attempt.saturating_add(1);
                tracing::debug!(payment = id, ?wait, "outcome unknown; asking again");
                tokio::time::sleep(wait).await;
            }
            Ok(_) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    lock(&shared.driving).remove(&id);
    shared.busy.fetch_sub(1, Ordering::SeqCst);
    shared.touch();
    result
}

async fn drive_payment(shared: &Shared, id: i64, fresh: Option<Entry>) -> Result<()> {
    // Asked again (not the first send of a payment just journaled): it may be at the
    // server already.
    let again = fresh.is_none();
    let entry = match fresh {
        Some(entry) if entry.state == JournalState::Sent => entry,
        _ => shared.journal(move |j| j.mark_sent(id)).await?,
    };
    if entry.state.is_terminal() {
        return Ok(());
    }
    if entry.is_order_code {
        return drive_order_code(shared, entry).await;
    }
    let tokens = shared
        .vault
        .read(&SecretKind::SealedTokens {
            binding_id: entry.binding.clone(),
        })
        .await?;
    let msg = "the binding's tokens are not in the keyring: bind the wallet again";
    let Some(tokens) = tokens else {
        if again && entry.checkout.is_none() {
            // The tokens went (the user unbound in the wallet) while the payment was
            // out: the server answers a payment it knows from its record, without
            // tokens, and the wallet may still take it; failing it here could show
            // `failed` for a payment that is charged. One it does not know, it refuses
            // (nothing was charged).
            return ask_without_tokens(shared, &entry, msg).await;
        }
        return settle_payment(shared, id, Transition::Failed(Failure::NotBound.info(msg))).await;
    };
    if entry.checkout.is_some() {
        let sealed = String::from_utf8_lossy(tokens.expose()).into_owned();
        drop(tokens);
        return super::checkout::drive_checkout(shared, entry, sealed).await;
    }
    let mut req = PayRequest {
        app_id: entry.owner().server_app_id(),
        app_order_id: entry.order_id.clone(),
        binding_id: entry.binding.clone(),
        sealed_tokens: String::from_utf8_lossy(tokens.expose()).into_owned(),
        amount: Amount {
            currency: entry.amount.currency().code().to_owned(),
            value: entry.amount.minor().get(),
        },
        description: entry.description.clone(),
    };
    drop(tokens);
    let result = shared.link.pay(&req).await;
    req.sealed_tokens.zeroize();
    crash_point("after-send");
    let mut server_id = None;
    let t = match result {
        Ok(p) => {
            server_id = Some(p.payment_id.clone());
            transition_for(&p)
        }
        Err(e @ Error::ServerRejected { status, .. }) if (400..500).contains(&status) => {
            // A final refusal (4xx): nothing was charged.
            Transition::Failed(Failure::Server.info(e.to_string()))
        }
        Err(e) => {
            // Sent, outcome unknown: the entry stays open for reconciliation.
            tracing::warn!(payment = id, cause = %e, "payment outcome unknown");
            Transition::PendingUnknown
        }
    };
    settle_payment_with(shared, id, t, server_id).await
}

/// Asks the server again about a payment whose binding's tokens are gone: the same
/// request with no tokens, which the server answers from its record for a payment it
/// knows; a refusal (it does not know it: nothing was charged) fails it `NotBound`.
async fn ask_without_tokens(shared: &Shared, entry: &Entry, msg: &str) -> Result<()> {
    let req = PayRequest {
        app_id: entry.owner().server_app_id(),
        app_order_id: entry.order_id.clone(),
        binding_id: entry.binding.clone(),
        sealed_tokens: String::new(),
        amount: Amount {
            currency: entry.amount.currency().code().to_owned(),
            value: entry.amount.minor().get(),
        },
        description: entry.description.clone(),
    };
    let (t, server_id) = match shared.link.pay(&req).await {
        Ok(p) => (transition_for(&p), Some(p.payment_id.clone())),
        Err(Error::ServerRejected { status, .. }) if (400..500).contains(&status) => {
            (Transition::Failed(Failure::NotBound.info(msg)), None)
        }
        Err(e) => {
            tracing::warn!(payment = entry.id, cause = %e, "payment outcome unknown");
            (Transition::PendingUnknown, None)
        }
    };
    settle_payment_with(shared, entry.id, t, server_id).await
}

/// An order code payment: asks the server for the order QR code (idempotent per app
/// order id, so a re-drive after a crash gets the same code), publishes it, and
/// settles at once if the server already knows the outcome; otherwise the server's
/// `payment.result` event settles it (paid, declined, or cancelled after expiry).
async fn drive_order_code(shared: &Shared, entry: Entry) -> Result<()> {
    let id = entry.id;
    let req = OrderCodePayRequest {
        app_id: entry.owner().server_app_id(),
        app_order_id: entry.order_id.clone(),
        amount: Amount {
            currency: entry.amount.currency().code().to_owned(),
            value: entry.amount.minor().get(),
        },
        description: entry.description.clone(),
    };
    let p = match shared.link.pay_order_code(&req).await {
        Ok(p) => p,
        Err(e @ Error::ServerRejected { status, .. }) if (400..500).contains(&status) => {
            let info = Failure::Server.info(e.to_string());
            return settle_payment(shared, id, Transition::Failed(info)).await;
        }
        Err(e) => {
            tracing::warn!(payment = id, cause = %e, "order code not made yet");
            return settle_payment(shared, id, Transition::PendingUnknown).await;
        }
    };
    let sid = p.payment_id.clone();
    let code = p.order_code.clone();
    let updated = shared
        .journal(move |j| {
            j.set_server_payment_id(id, &sid)?;
            match code {
                Some(c) => {
                    let expires = time::OffsetDateTime::parse(
                        &c.expires_at,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map(|t| t.unix_timestamp())
                    .unwrap_or(0);
                    j.set_order_code(id, &c.code_value, expires)
                }
                None => j.get(id),
            }
        })
        .await?;
    publish_payment(shared, &updated, false).await?;
    if let Some(code) = &updated.order_code
        && !updated.state.is_terminal()
    {
        use super::prompt::str_value;
        use scanbind_ipc::types::keys::agent as k;
        let label = super::prompt::app_label(&updated.app_id);
        let app = label.name.clone();
        let mut details = vec![
            (k::TITLE, str_value(format!("Pay {app}"))),
            (
                k::MESSAGE,
                str_value(format!(
                    "Scan with your wallet app to pay {} to {} for {}.",
                    updated.amount,
                    label.text(),
                    updated.description
                )),
            ),
            (k::CODE_VALUE, str_value(code.clone())),
            (
                k::EXPIRES_AT,
                OwnedValue::from(updated.order_code_expires_at.unwrap_or(0)),
            ),
            (k::APP_ID, str_value(updated.app_id.clone())),
            (k::AMOUNT_TEXT, str_value(updated.amount.to_string())),
            (
                k::AMOUNT_MINOR,
                OwnedValue::from(updated.amount.minor().get()),
            ),
            (
                k::CURRENCY,
                str_value(updated.amount.currency().code().to_owned()),
            ),
            (k::DESCRIPTION, str_value(updated.description.clone())),
            (
                k::OBJECT,
                super::prompt::path_value(&payment_path(id.unsigned_abs())),
            ),
        ];
        details.extend(label.details());
        shared
            .prompter
            .show(
                payment_path(id.unsigned_abs()).to_string(),
                k::KIND_ORDER_CODE,
                details,
            )
            .await;
    }
    match p.status {
        PaymentStatus::Pending => Ok(()),
        _ => settle_payment(shared, id, transition_for(&p)).await,
    }
}

/// The journal transition for a server payment.
pub(crate) fn transition_for(p: &Payment) -> Transition {
    let error = || {
        Failure::Server.info(format!(
            "{}: {}",
            p.result_code.as_deref().unwrap_or("unknown"),
            p.result_message.as_deref().unwrap_or_default()
        ))
    };
    match p.status {
        PaymentStatus::Succeeded => Transition::Succeeded(p.receipt.clone().unwrap_or_default()),
        PaymentStatus::Failed => Transition::Failed(error()),
        PaymentStatus::Cancelled => Transition::Cancelled(error()),
        PaymentStatus::Pending => Transition::PendingUnknown,
    }
}

/// Settles a combined checkout from the server's answer (its response or its
/// `checkout.result` event): the answer and the state in one commit, then the object.
pub(crate) async fn settle_checkout(
    shared: &Shared,
    id: i64,
    c: &scanbind_device_api::types::Checkout,
) -> Result<()> {
    let t = super::checkout::transition_for_checkout(c);
    let json = serde_json::to_string(c)
        .map_err(|e| Error::ServerProtocol(format!("re-encoding a checkout: {e}")))?;
    let checkout_id = c.checkout_id.clone();
    let (before, after) = shared
        .journal(move |j| {
            let before = j.get(id)?.state;
            if before.is_terminal() {
                return Ok((before, j.get(id)?));
            }
            Ok((
                before,
                j.advance_checkout(id, t, Some(&checkout_id), Some(&json))?,
            ))
        })
        .await?;
    crash_point("after-settle");
    publish_payment(shared, &after, before != after.state).await
}

/// Commits `t`, copies the entry to the object (if served) and announces the change;
/// `Completed` is emitted only when this call made the state final.
pub(crate) async fn settle_payment(shared: &Shared, id: i64, t: Transition) -> Result<()> {
    settle_payment_with(shared, id, t, None).await
}

/// [`settle_payment`], remembering the server's payment id in the same commit.
pub(crate) async fn settle_payment_with(
    shared: &Shared,
    id: i64,
    t: Transition,
    server_payment_id: Option<String>,
) -> Result<()> {
    let (before, after) = shared
        .journal(move |j| {
            let before = j.get(id)?.state;
            // "Outcome unknown" after the result already arrived (the event stream won
            // the race with a failing request): the known result stands.
            if before.is_terminal() && t == Transition::PendingUnknown {
                return Ok((before, j.get(id)?));
            }
            Ok((before, j.advance_with(id, t, server_payment_id.as_deref())?))
        })
        .await?;
    crash_point("after-settle");
    if after.is_order_code && after.state.is_terminal() && !before.is_terminal() {
        let path = payment_path(after.id.unsigned_abs()).to_string();
        shared
            .prompter
            .dismiss(path, after.state.to_wire().as_str())
            .await;
    }
    publish_payment(shared, &after, before != after.state).await
}

/// Announces a committed entry through the [`Publisher`](super::ports::Publisher):
/// `PropertiesChanged` for state, receipt, error, delivered and refunded, and
/// `Completed` when `state_changed` made the state final.
pub(crate) async fn publish_payment(
    shared: &Shared,
    after: &Entry,
    state_changed: bool,
) -> Result<()> {
    shared
        .publisher
        .payment_changed(after, state_changed)
        .await?;
    if state_changed && after.state.is_terminal() {
        let path = payment_path(after.id.unsigned_abs());
        tracing::info!(payment = %path, state = after.state.to_wire().as_str(), "payment completed");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
