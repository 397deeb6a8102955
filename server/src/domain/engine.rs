//! The payment engine: drives every unfinished payment and refund to a final state, and
//! expires unscanned binding QR codes. All of its state is in the database, so a
//! restarted server (or another replica) resumes where this one stopped.
//!
//! Combined checkouts ([`checkout`](super::checkout)): pay the parts not sent yet, settle once every
//! part is final (all-or-nothing: reverse the paid parts), expire after 15 minutes.
//!
//! Payments: `inquiryPayment` with back-off (`payments.inquiry_backoff_ms`) until final;
//! still open after `paymentExpiryTime` (+5 s) → `cancel`. Refunds: `inquiryRefund`
//! with back-off; a refund Alipay never saw is re-sent with the same `refundRequestId`.
//!
//! A replica takes a row with a lease (`UPDATE ... WHERE lease_until < now`), so two
//! replicas never drive the same payment at once. The loop sleeps until the earliest
//! due action or until woken by [`AppState::engine_wake`](crate::domain::AppState).

use std::time::Duration;

use scanbind_ams::model::{
    CancelRequest, InquiryPaymentRequest, InquiryRefundRequest, PaymentStatus as AmsPaymentStatus,
    RefundStatus as AmsRefundStatus,
};
use scanbind_ams::result::ResultStatus;
use scanbind_device_api::types::{PaymentStatus, RefundStatus};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::domain::bindings::set_binding_final;
use crate::domain::payments::{self, finalize_payment, load_payment};
use crate::domain::refunds::{finalize_refund, load_refund, send_refund};
use crate::domain::{App, ams_call};
use crate::error::Result;
use crate::store::work::Queue;
use crate::store::{self, BindingState, PaymentStage};
use crate::util::now_ms;

/// How long a lease lasts; longer than one AMS call with its retries.
const LEASE_MS: i64 = 60_000;
/// Grace after `paymentExpiryTime` before cancelling.
const EXPIRY_GRACE_MS: i64 = 5_000;
/// Longest sleep between looks at the database (other replicas may schedule work).
const MAX_IDLE: Duration = Duration::from_secs(5);

/// Runs until `stop` turns true.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    if let Err(e) = recover(&app).await {
        warn!(cause = %e, "cannot recover in-flight payments at start");
    }
    loop {
        if *stop.borrow() {
            break;
        }
        let next = match tick(&app).await {
            Ok(next) => next,
            Err(e) => {
                warn!(cause = %e, "engine tick failed");
                Some(now_ms() + 1_000)
            }
        };
        let wait = next
            .map(|t| Duration::from_millis(u64::try_from((t - now_ms()).max(0)).unwrap_or(0)))
            .unwrap_or(MAX_IDLE)
            .min(MAX_IDLE);
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            _ = app.engine_wake.notified() => {},
            _ = tokio::time::sleep(wait) => {},
        }
    }
}

/// At start, no AMS call of this process is in flight, so every payment or refund whose
/// call was in flight when a previous process stopped is due for an inquiry now (with
/// several replicas this may add one harmless, read-only inquiry).
pub async fn recover(app: &App) -> Result<()> {
    let r = store::work::recover(&app.db, now_ms(), &app.instance).await?;
    store::subscriptions::recover(&app.db, &app.instance).await?;
    if r.payments + r.refunds + r.checkouts > 0 {
        tracing::info!(
            payments = r.payments,
            refunds = r.refunds,
            checkouts = r.checkouts,
            "resuming unfinished work"
        );
    }
    Ok(())
}

/// Does all due work once; returns the next due time, if any.
pub async fn tick(app: &App) -> Result<Option<i64>> {
    let now = now_ms();
    store::devices::delete_expired_nonces(&app.db, now).await?;
    // A token exchange cut short by a crash (older than any live exchange could be): the
    // binding waits again for Alipay's resent notification.
    store::bindings::reset_stale_exchanges(&app.db, now - 120_000).await?;
    // Binding QR codes nobody scanned in time.
    for b in store::bindings::expired_pending(&app.db, now).await? {
        set_binding_final(
            app,
            &b,
            BindingState::Expired,
            "nobody scanned the QR code in time",
        )
        .await?;
    }
    for id in store::work::due_payments(&app.db, now).await? {
        if lease(app, Queue::Payments, &id).await?
            && let Err(e) = drive_payment(app, &id).await
        {
            warn!(payment = %id, cause = %e, "payment step failed; will retry");
            reschedule(app, Queue::Payments, &id, 0).await?;
        }
    }
    for id in store::work::due_refunds(&app.db, now).await? {
        if lease(app, Queue::Refunds, &id).await?
            && let Err(e) = drive_refund(app, &id).await
        {
            warn!(refund = %id, cause = %e, "refund step failed; will retry");
            reschedule(app, Queue::Refunds, &id, 0).await?;
        }
    }
    for id in store::work::due_checkouts(&app.db, now).await? {
        if crate::domain::checkout::lease(app, &id).await? {
            if let Err(e) = crate::domain::checkout::drive(app, &id).await {
                warn!(checkout = %id, cause = %e, "checkout step failed; will retry");
            }
            crate::domain::checkout::release(app, &id).await?;
        }
    }
    // Subscription renewals (at most once a second; `subscriptions.automatic`).
    if let Err(e) = crate::domain::subscriptions::engine_pass(app).await {
        warn!(cause = %e, "renewal pass failed; will retry");
    }
    Ok(store::work::next_due(&app.db).await?)
}

async fn lease(app: &App, q: Queue, id: &str) -> Result<bool> {
    let now = now_ms();
    Ok(store::work::lease(&app.db, q, id, &app.instance, now + LEASE_MS, now).await?)
}

async fn reschedule(app: &App, q: Queue, id: &str, extra: i64) -> Result<()> {
    let attempts = store::work::attempts(&app.db, q, id).await?;
    store::work::reschedule(
        &app.db,
        q,
        id,
        now_ms() + super::inquiry_delay_ms(app, attempts) + extra,
        now_ms(),
    )
    .await?;
    Ok(())
}

/// One engine step for a payment: inquire, or cancel once past expiry.
pub async fn drive_payment(app: &App, payment_id: &str) -> Result<()> {
    let Some(p) = load_payment(app, payment_id).await? else {
        return Ok(());
    };
    if p.status != PaymentStatus::Pending {
        return Ok(());
    }
    let now = now_ms();
    if p.stage == PaymentStage::Cancelling {
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
            .step(payment_id, "cancel", &outcome, now_ms())
            .await?;
        match resp {
            Ok(r) if r.result.result_status == ResultStatus::S => {
                finalize_payment(
                    app,
                    payment_id,
                    PaymentStatus::Cancelled,
                    Some("CANCELLED"),
                    Some("cancelled after the payment expired"),
                    r.payment_id.as_deref(),
                )
                .await?;
            }
            Ok(r) if r.result.result_code.as_str() == "ORDER_NOT_EXIST" => {
                finalize_payment(
                    app,
                    payment_id,
                    PaymentStatus::Failed,
                    Some("ORDER_NOT_EXIST"),
                    Some("Alipay never received the payment"),
                    None,
                )
                .await?;
            }
            Ok(r) if r.result.result_status == ResultStatus::F => {
                // Cannot cancel (e.g. already paid): inquire again to learn the outcome.
                store::payments::set_inquiring(&app.db, payment_id).await?;
                reschedule(app, Queue::Payments, payment_id, 0).await?;
            }
            _ => reschedule(app, Queue::Payments, payment_id, 0).await?,
        }
        return Ok(());
    }
    let resp = ams_call(
        app,
        &InquiryPaymentRequest::by_payment_request_id(&p.payment_request_id),
    )
    .await;
    let outcome = match &resp {
        Ok(r) => format!(
            "{}/{} {}",
            r.result.result_status,
            r.result.result_code.as_str(),
            r.payment_status.as_ref().map(|s| s.as_str()).unwrap_or("-")
        ),
        Err(_) => "no answer".into(),
    };
    app.db
        .step(payment_id, "inquiry", &outcome, now_ms())
        .await?;
    if let Ok(r) = &resp
        && r.result.result_status == ResultStatus::S
    {
        let ams_id = r.payment_id.as_deref();
        match r.payment_status {
            Some(AmsPaymentStatus::Success) => {
                // The answer's quote (a payment priced in another currency) goes on the
                // receipt; `p` was read before the call, and the transition is
                // conditional on its still being pending.
                let paid = payments::with_conversion(
                    &p,
                    payments::conversion_from(
                        &p,
                        r.actual_payment_amount.as_ref(),
                        r.payment_quote.as_ref(),
                    ),
                );
                payments::transition_loaded(
                    app,
                    &paid,
                    PaymentStatus::Pending,
                    PaymentStatus::Succeeded,
                    None,
                    None,
                    ams_id,
                    None,
                )
                .await?;
                return Ok(());
            }
            Some(AmsPaymentStatus::Fail) => {
                let code = r
                    .payment_result_code
                    .as_ref()
                    .map(|c| c.as_str().to_owned());
                finalize_payment(
                    app,
                    payment_id,
                    PaymentStatus::Failed,
                    code.as_deref(),
                    r.payment_result_message.as_deref(),
                    ams_id,
                )
                .await?;
                return Ok(());
            }
            Some(AmsPaymentStatus::Cancelled) => {
                finalize_payment(
                    app,
                    payment_id,
                    PaymentStatus::Cancelled,
                    Some("CANCELLED"),
                    None,
                    ams_id,
                )
                .await?;
                return Ok(());
            }
            _ => {}
        }
    }
    if now >= p.expires_at + EXPIRY_GRACE_MS {
        debug!(payment = %payment_id, "still open after expiry; cancelling");
        store::payments::set_cancelling(&app.db, payment_id, now_ms()).await?;
        app.engine_wake.notify_one();
        return Ok(());
    }
    store::payments::set_inquiring(&app.db, payment_id).await?;
    reschedule(app, Queue::Payments, payment_id, 0).await
}

/// One engine step for a refund.
pub async fn drive_refund(app: &App, rrid: &str) -> Result<()> {
    let Some(r) = load_refund(app, rrid).await? else {
        return Ok(());
    };
    if r.status != RefundStatus::Pending {
        return Ok(());
    }
    let resp = ams_call(app, &InquiryRefundRequest::by_refund_request_id(rrid)).await;
    match resp {
        Ok(resp) if resp.result.result_status == ResultStatus::S => match resp.refund_status {
            Some(AmsRefundStatus::Success) => {
                finalize_refund(
                    app,
                    rrid,
                    RefundStatus::Succeeded,
                    None,
                    resp.refund_id.as_deref(),
                )
                .await?;
            }
            Some(AmsRefundStatus::Fail) => {
                finalize_refund(
                    app,
                    rrid,
                    RefundStatus::Failed,
                    Some("REFUND_FAILED"),
                    resp.refund_id.as_deref(),
                )
                .await?;
            }
            _ => reschedule(app, Queue::Refunds, rrid, 0).await?,
        },
        Ok(resp) if resp.result.result_code.as_str() == "ORDER_NOT_EXIST" => {
            // Alipay never saw it: send the identical refund again.
            store::refunds::release_lease(&app.db, rrid).await?;
            send_refund(app, rrid).await?;
        }
        _ => reschedule(app, Queue::Refunds, rrid, 0).await?,
    }
    Ok(())
}
