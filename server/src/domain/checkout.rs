//! Combined checkouts (`POST /v1/checkouts`): one order paying several sellers, one AMS
//! agreement payment per seller (each its own `paymentRequestId`, with the seller's
//! `referenceMerchantId` in `order.merchant`), confirmed once.
//!
//! Everything is checked before any money moves: the number of parts (2 to 6 in
//! all-or-nothing mode, the merge-pay "same transaction" limit; 2 to 20 otherwise, the PC
//! merge-pay limit), every seller (configured in `[[sellers]]` and `combinable`), every
//! amount and the currency. The checkout row and one `payments` row per part (product
//! `checkout_part`, stage `queued`) then commit together, before the first AMS call.
//!
//! The parts are paid in order. All-or-nothing: once a part fails, the parts not sent yet
//! are failed without a call (`CHECKOUT_ABORTED`), and when every part is final the paid
//! ones are reversed — AMS `cancel` (which returns the whole amount within the cancel
//! window), or a full refund once `cancel` is refused — and the checkout is `failed`.
//! An unknown outcome stops the sending until the payment engine has learnt it.
//! Independent mode: every part is sent; the checkout ends `succeeded`,
//! `partially_succeeded` or `failed`.
//!
//! State is in the database; the engine ([`crate::domain::engine`]) drives unfinished
//! checkouts (under a lease, like payments) and resumes them after a restart. Clear
//! wallet tokens are never stored: they stay in this process's memory ([`TokenCache`])
//! while a checkout is unfinished, and the checkout's row keeps the binding's *sealed*
//! blob as the device sent it (AEAD under the server's sealing key, bound to the device
//! and binding), cleared when the checkout is final. A restarted server (or another
//! replica) opens that blob and sends the parts not sent yet; only when it no longer
//! opens (the binding was revoked, the sealing key rotated out) do they fail
//! (`CHECKOUT_INTERRUPTED`), and in all-or-nothing mode the paid parts are reversed.
//! Fifteen minutes after creation an unfinished checkout is settled
//! (`CHECKOUT_EXPIRED`; parts still in flight are cancelled).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use scanbind_ams::model::{CancelRequest, Merchant};
use scanbind_ams::money::{Currency, Money};
use scanbind_ams::result::ResultStatus;
use scanbind_ams::wallet::Wallet;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::types::{
    Amount, Checkout, CheckoutPart, CheckoutRequest, CheckoutStatus, Event, PaymentStatus,
    RefundRequest, RefundStatus,
};
use tracing::{info, warn};

use crate::domain::bindings::{device_binding, open_tokens};
use crate::domain::payments::{load_payment, send_agreement_pay, transition_loaded};
use crate::domain::refunds::load_refund;
use crate::domain::seal::TokenSet;
use crate::domain::{App, ams_call, check_amount, check_text, plausible_id, scan_to_bind_wallet};
use crate::error::{Error, Result};
use crate::store::checkouts::{NewCheckout, NewPart};
use crate::store::payments::NewPayment;
use crate::store::{
    self, CheckoutRow, CheckoutState, PartRow, PaymentRow, PaymentStage, Product, Reversal,
};
use crate::util::{new_id, now_ms, rfc3339};
/// The most parts (merge pay: 6 sub-orders in one all-or-nothing transaction, 20 on PC
/// otherwise; see docs/server.md) and the fewest (one part is a plain payment): the
/// device API's limits.
pub use scanbind_device_api::limits::{MAX_PARTS, MAX_PARTS_ALL_OR_NOTHING, MIN_PARTS};
/// A checkout not final this long after creation is settled (merge pay's 15 minutes).
pub const EXPIRY_MS: i64 = 15 * 60 * 1000;
/// How long a driver holds a checkout; longer than paying 20 parts with retries.
const LEASE_MS: i64 = 180_000;
/// Refund id prefix of an all-or-nothing reversal by refund.
const REVERSAL_REFUND_ID: &str = "checkout-reversal";

/// Wallet tokens of unfinished checkouts, in this process's memory only.
#[derive(Default)]
pub struct TokenCache {
    inner: Mutex<HashMap<String, (TokenSet, i64)>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.inner.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "TokenCache({n} checkouts)")
    }
}

impl TokenCache {
    fn put(&self, checkout_id: &str, tokens: TokenSet, until: i64) {
        if let Ok(mut m) = self.inner.lock() {
            let now = now_ms();
            m.retain(|_, (_, t)| *t > now);
            m.insert(checkout_id.to_owned(), (tokens, until));
        }
    }

    fn get(&self, checkout_id: &str) -> Option<TokenSet> {
        let m = self.inner.lock().ok()?;
        m.get(checkout_id)
            .filter(|(_, until)| *until > now_ms())
            .map(|(t, _)| t.clone())
    }

    pub(crate) fn remove(&self, checkout_id: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.remove(checkout_id);
        }
    }
}

/// Loads a checkout.
pub async fn load_checkout(app: &App, checkout_id: &str) -> Result<Option<CheckoutRow>> {
    Ok(store::checkouts::load(&app.db, checkout_id).await?)
}

async fn load_by_order(
    app: &App,
    device_id: &str,
    app_id: &str,
    app_order_id: &str,
) -> Result<Option<CheckoutRow>> {
    Ok(store::checkouts::by_order(&app.db, device_id, app_id, app_order_id).await?)
}

/// The parts of a checkout with their payments, in order.
pub async fn load_parts(app: &App, checkout_id: &str) -> Result<Vec<(PartRow, PaymentRow)>> {
    Ok(store::checkouts::parts(&app.db, checkout_id).await?)
}

/// The device view.
pub fn checkout_view(c: &CheckoutRow, parts: &[(PartRow, PaymentRow)]) -> Checkout {
    let status = match c.status {
        CheckoutState::Paying | CheckoutState::Reversing => CheckoutStatus::Pending,
        CheckoutState::Succeeded => CheckoutStatus::Succeeded,
        CheckoutState::PartiallySucceeded => CheckoutStatus::PartiallySucceeded,
        CheckoutState::Failed => CheckoutStatus::Failed,
    };
    Checkout {
        checkout_id: c.checkout_id.clone(),
        app_id: c.app_id.clone(),
        app_order_id: c.app_order_id.clone(),
        status,
        all_or_nothing: c.all_or_nothing,
        currency: c.currency.clone(),
        total_minor: c.total,
        created_at: rfc3339(c.created_at),
        expires_at: rfc3339(c.expires_at),
        parts: parts
            .iter()
            .map(|(part, p)| CheckoutPart {
                index: u32::try_from(part.idx).unwrap_or(0),
                seller_id: part.seller_id.clone(),
                seller_name: part.seller_name.clone(),
                payment_id: p.payment_id.clone(),
                amount_minor: p.amount,
                currency: p.currency.clone(),
                conversion: p.conversion.clone(),
                description: p.description.clone(),
                status: p.status,
                receipt: p.receipt.clone(),
                result_code: p.result_code.clone(),
                result_message: p.result_message.clone(),
                reversed: part.reversed,
            })
            .collect(),
    }
}

/// A checkout owned by `device_id`, as the device sees it, or `not_found`.
pub async fn device_checkout(app: &App, device_id: &str, checkout_id: &str) -> Result<Checkout> {
    let not_found = || Error::api(ErrorCode::NotFound, "no such checkout on this device");
    if !plausible_id(checkout_id) {
        return Err(not_found());
    }
    match load_checkout(app, checkout_id).await? {
        Some(c) if c.device_id == device_id => {
            let parts = load_parts(app, &c.checkout_id).await?;
            Ok(checkout_view(&c, &parts))
        }
        _ => Err(not_found()),
    }
}

struct ValidPart<'a> {
    seller: &'a crate::config::SellerEntry,
    money: Money,
    description: &'a str,
}

fn validate<'a>(
    app: &'a App,
    req: &'a CheckoutRequest,
    currency: Currency,
) -> Result<(Vec<ValidPart<'a>>, i64)> {
    check_text(
        "appId",
        &req.app_id,
        scanbind_device_api::limits::MAX_APP_ID,
    )?;
    check_text(
        "appOrderId",
        &req.app_order_id,
        scanbind_device_api::limits::MAX_APP_ORDER_ID,
    )?;
    let max = if req.all_or_nothing {
        MAX_PARTS_ALL_OR_NOTHING
    } else {
        MAX_PARTS
    };
    if !(MIN_PARTS..=max).contains(&req.parts.len()) {
        return Err(Error::api(
            ErrorCode::TooManyParts,
            format!(
                "a{} checkout has {MIN_PARTS} to {max} parts, not {}",
                if req.all_or_nothing {
                    "n all-or-nothing"
                } else {
                    ""
                },
                req.parts.len()
            ),
        ));
    }
    let mut parts = Vec::with_capacity(req.parts.len());
    let mut total: i64 = 0;
    for (i, part) in req.parts.iter().enumerate() {
        check_text(
            &format!("parts[{i}].sellerId"),
            &part.seller_id,
            scanbind_device_api::limits::MAX_SELLER_ID,
        )?;
        check_text(
            &format!("parts[{i}].description"),
            &part.description,
            scanbind_device_api::limits::MAX_PART_DESCRIPTION,
        )?;
        let Some(seller) = app.config.sellers.iter().find(|s| s.id == part.seller_id) else {
            return Err(Error::api(
                ErrorCode::InvalidMergePartner,
                format!(
                    "parts[{i}]: {:?} is not a seller of this merchant",
                    part.seller_id
                ),
            ));
        };
        if !seller.combinable {
            return Err(Error::api(
                ErrorCode::MergePayNotAllowed,
                format!(
                    "parts[{i}]: the seller {:?} is not enabled for combined checkout",
                    part.seller_id
                ),
            ));
        }
        // A part is priced in the wallet's currency, or in its seller's own pricing
        // currency (`[[sellers]] currency`), which the wallet pays at Alipay's quote.
        let priced = part.currency.as_deref().unwrap_or(&req.currency);
        if priced != req.currency && seller.currency.as_deref() != Some(priced) {
            return Err(Error::api(
                ErrorCode::AmountInvalid,
                format!(
                    "parts[{i}]: the seller {:?} does not price in {priced:?} (it prices in {})",
                    part.seller_id,
                    seller.currency.as_deref().unwrap_or(currency.code())
                ),
            ));
        }
        let money = check_amount(
            &Amount {
                currency: priced.to_owned(),
                value: part.amount_minor,
            },
            Some(if priced == req.currency {
                currency
            } else {
                Currency::from_code(priced)
                    .map_err(|e| Error::api(ErrorCode::AmountInvalid, format!("parts[{i}]: {e}")))?
            }),
        )
        .map_err(|e| match e {
            Error::Api { code, message } => Error::api(code, format!("parts[{i}]: {message}")),
            other => other,
        })?;
        if money.currency() == currency {
            total = total
                .checked_add(money.minor().get())
                .ok_or_else(|| Error::api(ErrorCode::AmountInvalid, "the total is too large"))?;
        }
        parts.push(ValidPart {
            seller,
            money,
            description: &part.description,
        });
    }
    if total > 0 {
        Money::from_minor(currency, total)
            .map_err(|e| Error::api(ErrorCode::AmountInvalid, format!("the total: {e}")))?;
    }
    Ok((parts, total))
}

fn fingerprint(req: &CheckoutRequest) -> String {
    let mut fields: Vec<String> = vec![
        req.binding_id.clone(),
        req.currency.clone(),
        if req.all_or_nothing { "1" } else { "0" }.into(),
    ];
    for p in &req.parts {
        fields.push(p.seller_id.clone());
        fields.push(p.amount_minor.to_string());
        fields.push(p.description.clone());
        if let Some(c) = &p.currency {
            // Only when given, so that checkouts recorded before parts had a currency
            // keep their fingerprint.
            fields.push(format!("currency={c}"));
        }
    }
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    crate::util::fingerprint(&refs)
}

/// `POST /v1/checkouts`: validates, records, pays. The same (device, app, order id)
/// with the same request is always the same checkout.
pub async fn create(app: &App, device_id: &str, req: &CheckoutRequest) -> Result<Checkout> {
    let binding = device_binding(app, device_id, &req.binding_id).await?;
    let (wallet, currency) = scan_to_bind_wallet(&binding.wallet)?;
    let (parts, total) = validate(app, req, currency)?;
    let fp = fingerprint(req);
    if let Some(c) = load_by_order(app, device_id, &req.app_id, &req.app_order_id).await? {
        return resume(app, &c, &fp, &binding, &req.sealed_tokens).await;
    }
    let tokens = open_tokens(app, &binding, &req.sealed_tokens).await?;
    let now = now_ms();
    let checkout_id = new_id("chk");
    let expires = now + EXPIRY_MS;
    let mut tx = app.db.begin_durable().await?;
    let inserted = store::checkouts::insert(
        &mut tx,
        &NewCheckout {
            checkout_id: &checkout_id,
            device_id,
            app_id: &req.app_id,
            app_order_id: &req.app_order_id,
            binding_id: &binding.binding_id,
            currency: currency.code(),
            total,
            all_or_nothing: req.all_or_nothing,
            fingerprint: &fp,
            expires_at: expires,
            lease_until: now + LEASE_MS,
            lease_owner: &app.instance,
            sealed_tokens: &req.sealed_tokens,
            now,
        },
    )
    .await?;
    if !inserted {
        // The same request, concurrently: answer as a retry.
        tx.rollback().await?;
        let c = load_by_order(app, device_id, &req.app_id, &req.app_order_id)
            .await?
            .ok_or_else(|| Error::api(ErrorCode::Internal, "checkout vanished"))?;
        return resume(app, &c, &fp, &binding, &req.sealed_tokens).await;
    }
    // The first part is claimed in the checkout's own record and sent right after it
    // (D34): one commit fewer than claiming it on its own.
    let first_expires = now + app.config.payments.expiry_seconds * 1000;
    let grace = i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX);
    let mut first: Option<(PartRow, PaymentRow)> = None;
    for (i, part) in parts.iter().enumerate() {
        let payment_id = new_id("pay");
        let prid =
            crate::util::checkout_part_request_id(device_id, &req.app_id, &req.app_order_id, i);
        let part_order_id = format!("{}#{i}", req.app_order_id);
        let sending = i == 0;
        let new = NewPayment {
            payment_id: &payment_id,
            payment_request_id: &prid,
            device_id,
            app_id: &req.app_id,
            app_order_id: &part_order_id,
            binding_id: Some(&binding.binding_id),
            wallet: wallet.as_str(),
            currency: part.money.currency().code(),
            amount: part.money.minor().get(),
            description: part.description,
            expires_at: if sending { first_expires } else { expires },
            next_action_at: if sending {
                now.saturating_add(grace)
            } else {
                expires + 60_000
            },
            now,
        };
        let fresh = store::payments::insert_checkout_part(&mut tx, &new, sending).await?;
        if !fresh {
            tx.rollback().await?;
            return Err(Error::api(
                ErrorCode::IdempotencyConflict,
                format!(
                    "the app order id {:?} is already used by a payment",
                    format!("{}#{i}", req.app_order_id)
                ),
            ));
        }
        let idx = i64::try_from(i).unwrap_or(0);
        store::checkouts::insert_part(
            &mut tx,
            &checkout_id,
            &NewPart {
                idx,
                payment_id: &payment_id,
                seller_id: &part.seller.id,
                seller_name: &part.seller.name,
                seller_mcc: &part.seller.mcc,
            },
        )
        .await?;
        if sending {
            first = Some((
                PartRow {
                    idx,
                    payment_id: payment_id.clone(),
                    seller_id: part.seller.id.clone(),
                    seller_name: part.seller.name.clone(),
                    seller_mcc: part.seller.mcc.clone(),
                    reversal: None,
                    reversed: false,
                },
                PaymentRow {
                    payment_id: payment_id.clone(),
                    payment_request_id: prid.clone(),
                    device_id: device_id.to_owned(),
                    app_id: req.app_id.clone(),
                    app_order_id: part_order_id.clone(),
                    product: Product::CheckoutPart,
                    binding_id: Some(binding.binding_id.clone()),
                    wallet: wallet.as_str().to_owned(),
                    code_value: None,
                    currency: part.money.currency().code().to_owned(),
                    amount: part.money.minor().get(),
                    description: part.description.to_owned(),
                    status: PaymentStatus::Pending,
                    stage: PaymentStage::Sending,
                    result_code: None,
                    result_message: None,
                    ams_payment_id: None,
                    refunded: 0,
                    receipt: None,
                    conversion: None,
                    expires_at: first_expires,
                    next_action_at: now.saturating_add(grace),
                    attempts: 0,
                    created_at: now,
                    updated_at: now,
                },
            ));
        }
    }
    store::steps::insert_checkout(
        &mut tx,
        &checkout_id,
        &format!(
            "created: {} parts, {}",
            parts.len(),
            if req.all_or_nothing {
                "all-or-nothing"
            } else {
                "independent"
            }
        ),
        now,
    )
    .await?;
    let (first_part, first_payment) =
        first.ok_or_else(|| Error::api(ErrorCode::Internal, "a checkout without parts"))?;
    // Visible at once; durable side by side with the first part's AMS call (D34).
    let record = tx
        .commit_unsynced((&first_payment.payment_id, "pay", "sent", now))
        .await?;
    info!(checkout = %checkout_id, parts = parts.len(), all_or_nothing = req.all_or_nothing, "checkout created");
    app.checkout_tokens
        .put(&checkout_id, tokens.clone(), expires);
    crate::util::crash_point("checkout-recorded");
    let outcome = async {
        send_claimed(app, &first_part, &first_payment, &tokens, Some(record)).await?;
        crate::util::crash_point("checkout-part-sent");
        drive(app, &checkout_id).await
    }
    .await;
    release(app, &checkout_id).await?;
    outcome?;
    device_checkout(app, device_id, &checkout_id).await
}

/// A retry of a known checkout: the same request continues it (with its tokens, if they
/// open), another one is a conflict.
async fn resume(
    app: &App,
    c: &CheckoutRow,
    fp: &str,
    binding: &store::BindingRow,
    blob: &str,
) -> Result<Checkout> {
    if c.fingerprint != fp {
        return Err(Error::api(
            ErrorCode::IdempotencyConflict,
            "this app order id was used before for another checkout",
        ));
    }
    if c.is_open() && lease(app, &c.checkout_id).await? {
        if let Ok(tokens) = open_tokens(app, binding, blob).await {
            app.checkout_tokens
                .put(&c.checkout_id, tokens, c.expires_at);
        }
        let outcome = drive_with(app, &c.checkout_id, true).await;
        release(app, &c.checkout_id).await?;
        outcome?;
    }
    device_checkout(app, &c.device_id, &c.checkout_id).await
}

/// Takes the checkout's lease for this process. False when another holds it or it is
/// final.
pub async fn lease(app: &App, checkout_id: &str) -> Result<bool> {
    let now = now_ms();
    // Leases are on the relaxed pool (D24): visible to every replica at once; one lost
    // to an OS crash had expired by the time anything could run again.
    Ok(store::checkouts::lease(&app.db, checkout_id, &app.instance, now + LEASE_MS, now).await?)
}

/// Gives the lease back; an unfinished checkout is due again after the back-off (a part
/// becoming final makes it due at once, see
/// [`wake_checkout`](crate::domain::payments::wake_checkout)). On the relaxed pool (D24): lost
/// to an OS crash, the lease runs out by itself.
pub async fn release(app: &App, checkout_id: &str) -> Result<()> {
    let Some(c) = load_checkout(app, checkout_id).await? else {
        return Ok(());
    };
    if !c.is_open() {
        // Final: its last commit gave the lease back with the state.
        return Ok(());
    }
    let delay = super::inquiry_delay_ms(app, c.attempts);
    let now = now_ms();
    let next = if now < c.expires_at {
        (now + delay).min(c.expires_at)
    } else {
        now + delay
    };
    store::checkouts::release(&app.db, checkout_id, &app.instance, next, now).await?;
    Ok(())
}

/// One step of an unfinished checkout (the caller holds its lease): pays what can be
/// paid, and settles it once every part is final.
pub async fn drive(app: &App, checkout_id: &str) -> Result<()> {
    drive_with(app, checkout_id, false).await
}

/// [`drive`]; `resend`: for the device's retry, parts sent and still pending are sent
/// again with their paymentRequestId.
async fn drive_with(app: &App, checkout_id: &str, resend: bool) -> Result<()> {
    let Some(c) = load_checkout(app, checkout_id).await? else {
        return Ok(());
    };
    if c.status == CheckoutState::Paying {
        pay_parts(app, &c, resend).await?;
    }
    let Some(c) = load_checkout(app, checkout_id).await? else {
        return Ok(());
    };
    if c.status == CheckoutState::Reversing {
        reverse_parts(app, &c).await?;
    }
    Ok(())
}

/// The tokens of a checkout this process does not hold (it restarted, or another replica
/// started the checkout): opened from the sealed blob the checkout's row keeps. `None`
/// when there is none or it no longer opens.
async fn reopen_tokens(app: &App, c: &CheckoutRow) -> Result<Option<TokenSet>> {
    let Some(blob) = store::checkouts::sealed_tokens(&app.db, &c.checkout_id).await? else {
        return Ok(None);
    };
    let Some(binding) = store::bindings::load(&app.db, &c.binding_id).await? else {
        return Ok(None);
    };
    match open_tokens(app, &binding, &blob).await {
        Ok(tokens) => {
            info!(checkout = %c.checkout_id, "tokens reopened from the checkout's sealed blob");
            app.checkout_tokens
                .put(&c.checkout_id, tokens.clone(), c.expires_at);
            Ok(Some(tokens))
        }
        Err(e) => {
            warn!(checkout = %c.checkout_id, cause = %e, "the checkout's sealed tokens do not open");
            Ok(None)
        }
    }
}

/// `resend`: the device asked again (the same order): parts sent and still pending are
/// sent again too.
async fn pay_parts(app: &App, c: &CheckoutRow, resend: bool) -> Result<()> {
    let now = now_ms();
    let expired = now >= c.expires_at;
    let tokens = match app.checkout_tokens.get(&c.checkout_id) {
        Some(t) => Some(t),
        None => reopen_tokens(app, c).await?,
    };
    let mut failed = false;
    let mut unknown = false;
    for (part, p) in load_parts(app, &c.checkout_id).await? {
        let p = match (p.status, p.stage) {
            (PaymentStatus::Pending, PaymentStage::Abandoned) => {
                fail_unsent(app, &p, "CHECKOUT_ABORTED", "this part was not sent").await?;
                failed = true;
                continue;
            }
            (PaymentStatus::Pending, PaymentStage::Queued) => {
                let reason = if c.all_or_nothing && failed {
                    Some((
                        "CHECKOUT_ABORTED",
                        "another part of the all-or-nothing checkout failed; this part was not sent",
                    ))
                } else if c.all_or_nothing && unknown {
                    // Wait: the part before is not known yet.
                    continue;
                } else if expired {
                    Some((
                        "CHECKOUT_EXPIRED",
                        "the checkout expired before this part was sent",
                    ))
                } else if tokens.is_none() {
                    Some((
                        "CHECKOUT_INTERRUPTED",
                        "the binding's tokens no longer open (revoked binding or retired sealing key); this part was not sent and nothing was charged for it",
                    ))
                } else {
                    None
                };
                match (reason, &tokens) {
                    (Some((code, message)), _) => {
                        fail_unsent(app, &p, code, message).await?;
                        failed = true;
                        continue;
                    }
                    (None, Some(tokens)) => {
                        let sent = send_part(app, &part, &p, tokens).await?;
                        crate::util::crash_point("checkout-part-sent");
                        sent
                    }
                    (None, None) => continue,
                }
            }
            (PaymentStatus::Pending, PaymentStage::Sending | PaymentStage::Inquiring)
                if resend && !expired && p.expires_at > now =>
            {
                match &tokens {
                    // The device's retry of the same order: a sent part still pending is
                    // sent again with its paymentRequestId, which the wallet answers
                    // from the request it has (or takes now if it never had it: the
                    // server stopped between the claim and the call, or the claim's
                    // durable wait failed), exactly as a retried single payment (D34).
                    Some(tokens) => {
                        app.db.step(&p.payment_id, "pay", "sent", now).await?;
                        send_claimed(app, &part, &p, tokens, None).await?
                    }
                    None => p,
                }
            }
            _ => p,
        };
        match p.status {
            PaymentStatus::Pending => {
                unknown = true;
                if expired {
                    // Past the checkout's life: the payment engine cancels it now.
                    store::payments::cancel_sent_part(&app.db, &p.payment_id, now_ms()).await?;
                    app.engine_wake.notify_one();
                }
            }
            PaymentStatus::Succeeded => {}
            _ => failed = true,
        }
    }
    if unknown {
        return Ok(());
    }
    let parts = load_parts(app, &c.checkout_id).await?;
    let Some(status) = outcome(c, &parts) else {
        return Ok(());
    };
    if status != CheckoutState::Reversing
        && !load_checkout(app, &c.checkout_id)
            .await?
            .is_some_and(|c| c.is_open())
    {
        // Settled by its last part's final commit (D34).
        return Ok(());
    }
    if status == CheckoutState::Reversing {
        store::checkouts::set_reversing(&app.db, &c.checkout_id, now_ms()).await?;
        app.db
            .step(
                &c.checkout_id,
                "checkout",
                "a part failed: reversing the paid parts",
                now_ms(),
            )
            .await?;
        return Ok(());
    }
    finish(app, c, status).await
}

/// What a checkout whose parts are `parts` comes to: `None` while a part is pending,
/// [`CheckoutState::Reversing`] when an all-or-nothing checkout has paid and failed
/// parts, else its final state.
pub fn outcome(c: &CheckoutRow, parts: &[(PartRow, PaymentRow)]) -> Option<CheckoutState> {
    if parts
        .iter()
        .any(|(_, p)| p.status == PaymentStatus::Pending)
    {
        return None;
    }
    let paid = parts
        .iter()
        .filter(|(_, p)| p.status == PaymentStatus::Succeeded)
        .count();
    Some(if paid == parts.len() {
        CheckoutState::Succeeded
    } else if paid == 0 {
        CheckoutState::Failed
    } else if c.all_or_nothing {
        CheckoutState::Reversing
    } else {
        CheckoutState::PartiallySucceeded
    })
}

/// The checkout a part's payment settles, when `fin` (the part's final row, not yet
/// committed) is its last pending part and the outcome is final (not a reversal): the
/// checkout then settles in the part's own final commit (D34; [`finish_in`]). `None`
/// otherwise, and the engine settles it as before.
pub async fn settled_by(
    app: &App,
    checkout_id: &str,
    fin: &PaymentRow,
) -> Result<Option<(CheckoutRow, CheckoutState, Checkout)>> {
    let Some(c) = load_checkout(app, checkout_id).await? else {
        return Ok(None);
    };
    if c.status != CheckoutState::Paying {
        return Ok(None);
    }
    let mut parts = load_parts(app, checkout_id).await?;
    for (_, p) in parts.iter_mut() {
        if p.payment_id == fin.payment_id {
            *p = fin.clone();
        }
    }
    match outcome(&c, &parts) {
        Some(status) if status != CheckoutState::Reversing => {
            let mut done = c.clone();
            done.status = status;
            let view = checkout_view(&done, &parts);
            Ok(Some((c, status, view)))
        }
        _ => Ok(None),
    }
}

/// Makes the checkout final in the caller's transaction (its status, its `final` step
/// and its device event): true when this call made the change.
pub async fn finish_in(
    conn: &mut sqlx::AnyConnection,
    c: &CheckoutRow,
    status: CheckoutState,
    view: Checkout,
    now: i64,
) -> Result<bool> {
    if !store::checkouts::finish(conn, &c.checkout_id, status, now).await? {
        return Ok(false);
    }
    store::steps::insert_final(conn, &c.checkout_id, status.as_str(), now).await?;
    crate::domain::events::EventHub::insert(conn, &c.device_id, &Event::CheckoutResult(view))
        .await?;
    Ok(true)
}

/// Fails a part that was never sent (no AMS call was made for it).
async fn fail_unsent(app: &App, p: &PaymentRow, code: &str, message: &str) -> Result<()> {
    // Claim it first, so that it can no longer be sent by anyone.
    if store::payments::abandon_queued(&app.db, &p.payment_id).await? {
        transition_loaded(
            app,
            p,
            PaymentStatus::Pending,
            PaymentStatus::Failed,
            Some(code),
            Some(message),
            None,
            Some(("pay", "not sent")),
        )
        .await?;
    }
    Ok(())
}

/// Sends one queued part: its "sent" step and new expiry commit before the call.
async fn send_part(
    app: &App,
    part: &PartRow,
    p: &PaymentRow,
    tokens: &TokenSet,
) -> Result<PaymentRow> {
    let now = now_ms();
    let expires = now + app.config.payments.expiry_seconds * 1000;
    let grace = i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX);
    let mut tx = app.db.begin_durable().await?;
    let claimed = store::payments::claim_queued(
        &mut tx,
        &p.payment_id,
        expires,
        now.saturating_add(grace),
        now,
    )
    .await?;
    if !claimed {
        tx.rollback().await?;
        return load_payment(app, &p.payment_id)
            .await?
            .ok_or_else(|| Error::api(ErrorCode::Internal, "payment vanished"));
    }
    // Visible at once; durable side by side with the part's AMS call (D34).
    let record = tx
        .commit_unsynced((&p.payment_id, "pay", "sent", now))
        .await?;
    let mut sending = p.clone();
    sending.stage = PaymentStage::Sending;
    sending.expires_at = expires;
    send_claimed(app, part, &sending, tokens, Some(record)).await
}

/// Sends a part claimed for sending (stage `sending`) to its seller. `record`: its claim,
/// committed but not yet known to be durable (see
/// [`send_agreement_pay`]).
async fn send_claimed(
    app: &App,
    part: &PartRow,
    p: &PaymentRow,
    tokens: &TokenSet,
    record: Option<store::Unsynced<'_>>,
) -> Result<PaymentRow> {
    let currency = Currency::from_code(&p.currency)
        .map_err(|e| Error::api(ErrorCode::Internal, e.to_string()))?;
    let money = Money::from_minor(currency, p.amount)
        .map_err(|e| Error::api(ErrorCode::Internal, e.to_string()))?;
    let merchant = Merchant {
        reference_merchant_id: Some(part.seller_id.clone()),
        merchant_mcc: Some(part.seller_mcc.clone()),
        merchant_name: Some(part.seller_name.clone()),
        merchant_display_name: Some(part.seller_name.clone()),
        ..Merchant::default()
    };
    send_agreement_pay(
        app,
        p,
        Wallet::parse(&p.wallet),
        money,
        tokens,
        Some(merchant),
        record,
    )
    .await
}

async fn mark_reversed(app: &App, c: &CheckoutRow, part: &PartRow, how: Reversal) -> Result<()> {
    store::checkouts::mark_reversed(&app.db, &c.checkout_id, part.idx, how).await?;
    Ok(app
        .db
        .step(
            &part.payment_id,
            "reversal",
            &format!("{how}: done"),
            now_ms(),
        )
        .await?)
}

/// All-or-nothing: undoes every paid part (cancel, or a full refund after the cancel
/// window), then fails the checkout.
async fn reverse_parts(app: &App, c: &CheckoutRow) -> Result<()> {
    crate::util::crash_point("checkout-reversing");
    let mut outstanding = false;
    for (part, p) in load_parts(app, &c.checkout_id).await? {
        if part.reversed || p.status != PaymentStatus::Succeeded {
            continue;
        }
        if p.refunded >= p.amount {
            mark_reversed(app, c, &part, Reversal::Refund).await?;
            continue;
        }
        if part.reversal != Some(Reversal::Refund) {
            let resp = ams_call(
                app,
                &CancelRequest::by_payment_request_id(&p.payment_request_id),
            )
            .await;
            let outcome = match &resp {
                Ok(r) => format!(
                    "{}/{}",
                    r.result.result_status,
                    r.result.result_code.as_str()
                ),
                Err(_) => "no answer".into(),
            };
            app.db
                .step(&p.payment_id, "reversal cancel", &outcome, now_ms())
                .await?;
            match resp {
                Ok(r) if r.result.result_status == ResultStatus::S => {
                    transition_loaded(
                        app,
                        &p,
                        PaymentStatus::Succeeded,
                        PaymentStatus::Cancelled,
                        Some("CHECKOUT_REVERSED"),
                        Some("cancelled: another part of the all-or-nothing checkout failed"),
                        r.payment_id.as_deref(),
                        None,
                    )
                    .await?;
                    mark_reversed(app, c, &part, Reversal::Cancel).await?;
                    continue;
                }
                Ok(r) if r.result.result_status == ResultStatus::F => {
                    // Past the cancel window (or not cancellable): refund in full.
                    store::checkouts::reverse_by_refund(&app.db, &c.checkout_id, part.idx).await?;
                }
                _ => {
                    outstanding = true;
                    continue;
                }
            }
        }
        if !refund_part(app, &p).await? {
            outstanding = true;
        } else {
            mark_reversed(app, c, &part, Reversal::Refund).await?;
        }
    }
    if outstanding {
        return Ok(());
    }
    finish(app, c, CheckoutState::Failed).await
}

/// Refunds what is left of a paid part; true once it is refunded in full.
async fn refund_part(app: &App, p: &PaymentRow) -> Result<bool> {
    let failed = store::refunds::failed_reversals(&app.db, &p.payment_id).await?;
    let refund_id = format!("{REVERSAL_REFUND_ID}-{failed}");
    let rrid = crate::util::refund_request_id(&p.payment_id, &refund_id);
    let amount = match load_refund(app, &rrid).await? {
        Some(r) => r.amount,
        None => {
            let used = store::refunds::committed_amount(&app.db, &p.payment_id).await?;
            p.amount - used
        }
    };
    if amount <= 0 {
        // Everything is refunded or being refunded: done once those are final.
        let pending = store::refunds::pending_count(&app.db, &p.payment_id).await?;
        return Ok(pending == 0);
    }
    let req = RefundRequest {
        refund_id,
        amount: Amount {
            currency: p.currency.clone(),
            value: amount,
        },
        reason: Some("all-or-nothing checkout reversed".into()),
    };
    match crate::domain::refunds::refund(app, p, &req).await {
        Ok(r) => Ok(r.status == RefundStatus::Succeeded && {
            let p = load_payment(app, &p.payment_id).await?;
            p.is_some_and(|p| p.refunded >= p.amount)
        }),
        Err(e) => {
            warn!(payment = %p.payment_id, cause = %e, "reversal refund failed; will retry");
            Ok(false)
        }
    }
}

/// Makes the checkout final once: its status and its device event commit together.
async fn finish(app: &App, c: &CheckoutRow, status: CheckoutState) -> Result<()> {
    let parts = load_parts(app, &c.checkout_id).await?;
    let mut fin = c.clone();
    fin.status = status;
    let view = checkout_view(&fin, &parts);
    let now = now_ms();
    let mut tx = app.db.begin_durable().await?;
    if !finish_in(&mut tx, c, status, view, now).await? {
        tx.rollback().await?;
        return Ok(());
    }
    crate::domain::events::EventHub::notify_in(&mut tx, &c.device_id).await?;
    tx.commit().await?;
    app.hub.wake_local(&c.device_id);
    app.checkout_tokens.remove(&c.checkout_id);
    info!(checkout = %c.checkout_id, status = status.as_str(), "checkout final");
    Ok(())
}
