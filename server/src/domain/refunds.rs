//! Refunds: recorded once per (payment, app refund id), sent with a deterministic
//! `refundRequestId`, finalised once with a signed receipt (and added to the payment's
//! refunded total in the same transaction).

use scanbind_ams::money::Currency;
use scanbind_ams::result::ResultStatus;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::receipt::{Receipt, ReceiptKind};
use scanbind_device_api::types::{Amount, Event, Refund, RefundStatus};
use tracing::warn;

use crate::domain::payments::{checkout_part, load_payment, wake_checkout};
use crate::domain::{App, ams_call, check_amount, check_text};
use crate::error::{Error, Result};
use crate::store::refunds::{NewRefund, RefundSettlement};
use crate::store::{self, PaymentRow, PaymentStatus, RefundRow};
use crate::util::{now_ms, rfc3339};

/// The days after payment during which a wallet outside the Scan to Bind table accepts
/// a refund; each Scan to Bind wallet has its own ([`refund_period_days`]).
pub const REFUND_PERIOD_DAYS: i64 = 365;

/// The days after payment during which `wallet` (its AMS code) accepts a refund: the
/// wallet table's refund period (seed 001), [`REFUND_PERIOD_DAYS`] for other wallets.
pub fn refund_period_days(wallet: &str) -> i64 {
    scanbind_ams::money::wallet::scan_to_bind(wallet)
        .map_or(REFUND_PERIOD_DAYS, |w| i64::from(w.refund_period_days))
}

/// Loads a refund by `refundRequestId`.
pub async fn load_refund(app: &App, rrid: &str) -> Result<Option<RefundRow>> {
    Ok(store::refunds::load(&app.db, rrid).await?)
}

/// The refunds of a payment, oldest first.
pub async fn refunds_of(app: &App, payment_id: &str) -> Result<Vec<RefundRow>> {
    Ok(store::refunds::of_payment(&app.db, payment_id).await?)
}

/// Minor units still refundable: paid − pending and succeeded refunds (0 unless the
/// payment succeeded).
pub async fn refundable(app: &App, p: &PaymentRow) -> Result<i64> {
    if p.status != PaymentStatus::Succeeded {
        return Ok(0);
    }
    let used = store::refunds::committed_amount(&app.db, &p.payment_id).await?;
    Ok((p.amount - used).max(0))
}

/// The device view of a refund row.
pub fn refund_view(r: &RefundRow) -> Refund {
    Refund {
        refund_id: r.refund_id.clone(),
        refund_request_id: r.refund_request_id.clone(),
        payment_id: r.payment_id.clone(),
        amount: Amount {
            currency: r.currency.clone(),
            value: r.amount,
        },
        status: r.status,
        result_code: r.result_code.clone(),
        ams_refund_id: r.ams_refund_id.clone(),
        receipt: r.receipt.clone(),
        created_at: rfc3339(r.created_at),
    }
}

/// `POST /v1/payments/{id}/refunds`.
pub async fn refund(
    app: &App,
    p: &PaymentRow,
    req: &scanbind_device_api::types::RefundRequest,
) -> Result<RefundRow> {
    check_text(
        "refundId",
        &req.refund_id,
        scanbind_device_api::limits::MAX_REFUND_ID,
    )?;
    if let Some(r) = &req.reason {
        check_text("reason", r, scanbind_device_api::limits::MAX_REFUND_REASON)?;
    }
    let currency = Currency::from_code(&p.currency).ok();
    let money = check_amount(&req.amount, currency)?;
    let rrid = crate::util::refund_request_id(&p.payment_id, &req.refund_id);
    if let Some(existing) = load_refund(app, &rrid).await? {
        if existing.amount != money.minor().get() {
            return Err(Error::api(
                ErrorCode::IdempotencyConflict,
                "this refund id was used with another amount",
            ));
        }
        if existing.status != RefundStatus::Pending {
            return Ok(existing);
        }
    } else {
        if p.status != PaymentStatus::Succeeded {
            return Err(Error::api(
                ErrorCode::InvalidState,
                format!("the payment is {}", p.status.as_str()),
            ));
        }
        let used = store::refunds::committed_amount(&app.db, &p.payment_id).await?;
        if used.saturating_add(money.minor().get()) > p.amount {
            return Err(Error::api(
                ErrorCode::AmountInvalid,
                "refunds would exceed the amount paid",
            ));
        }
        let now = now_ms();
        store::refunds::insert(
            &app.db,
            &NewRefund {
                refund_request_id: &rrid,
                payment_id: &p.payment_id,
                refund_id: &req.refund_id,
                currency: &p.currency,
                amount: money.minor().get(),
                reason: req.reason.as_deref(),
                next_action_at: now
                    + i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX),
                now,
            },
        )
        .await?;
    }
    send_refund(app, &rrid).await?;
    load_refund(app, &rrid)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "refund vanished"))
}

/// Sends (or re-sends: same `refundRequestId`, same body) a pending refund.
pub async fn send_refund(app: &App, rrid: &str) -> Result<()> {
    let Some(r) = load_refund(app, rrid).await? else {
        return Ok(());
    };
    let Some(p) = load_payment(app, &r.payment_id).await? else {
        return Ok(());
    };
    let Some(ams_payment_id) = p.ams_payment_id.clone() else {
        return finalize_refund(
            app,
            rrid,
            RefundStatus::Failed,
            Some("ORDER_NOT_EXIST"),
            None,
        )
        .await
        .map(|_| ());
    };
    let amount = scanbind_ams::Amount {
        currency: r.currency.clone(),
        value: r.amount.to_string(),
    };
    let mut req = scanbind_ams::model::RefundRequest::new(rrid, ams_payment_id, amount);
    req.refund_reason = r.reason.clone();
    req.refund_notify_url = Some(app.notify_url("refund"));
    req.reference_refund_id = Some(r.refund_id.chars().take(64).collect());
    app.db.step(rrid, "refund", "sent", now_ms()).await?;
    crate::util::crash_point("refund-recorded");
    match ams_call(app, &req).await {
        Ok(resp) => {
            crate::util::crash_point("refund-answered");
            let res = &resp.result;
            app.db
                .step(
                    rrid,
                    "refund",
                    &format!("{}/{}", res.result_status, res.result_code.as_str()),
                    now_ms(),
                )
                .await?;
            match res.result_status {
                ResultStatus::S => {
                    finalize_refund(
                        app,
                        rrid,
                        RefundStatus::Succeeded,
                        None,
                        resp.refund_id.as_deref(),
                    )
                    .await?;
                }
                ResultStatus::F => {
                    finalize_refund(
                        app,
                        rrid,
                        RefundStatus::Failed,
                        Some(res.result_code.as_str()),
                        resp.refund_id.as_deref(),
                    )
                    .await?;
                }
                _ => schedule_refund_inquiry(app, rrid).await?,
            }
        }
        Err(e) => {
            warn!(refund = %rrid, cause = %e, "refund outcome unknown; inquiring");
            schedule_refund_inquiry(app, rrid).await?;
        }
    }
    Ok(())
}

async fn schedule_refund_inquiry(app: &App, rrid: &str) -> Result<()> {
    store::refunds::schedule_inquiry(
        &app.db,
        rrid,
        now_ms() + super::inquiry_delay_ms(app, 0),
        now_ms(),
    )
    .await?;
    app.engine_wake.notify_one();
    Ok(())
}

/// Moves a pending refund to a final status once (and adds a success to the payment's
/// refunded total in the same transaction).
pub async fn finalize_refund(
    app: &App,
    rrid: &str,
    status: RefundStatus,
    code: Option<&str>,
    ams_refund_id: Option<&str>,
) -> Result<bool> {
    let Some(r) = load_refund(app, rrid).await? else {
        return Ok(false);
    };
    if r.status != RefundStatus::Pending {
        return Ok(false);
    }
    let Some(p) = load_payment(app, &r.payment_id).await? else {
        return Ok(false);
    };
    let part = checkout_part(app, &p).await?;
    let receipt = Receipt {
        ver: 1,
        kind: ReceiptKind::Refund,
        iss: app.ams.client_id().to_owned(),
        iat: now_ms() / 1000,
        device_id: p.device_id.clone(),
        app_id: p.app_id.clone(),
        app_order_id: p.app_order_id.clone(),
        payment_id: p.payment_id.clone(),
        payment_request_id: p.payment_request_id.clone(),
        ams_payment_id: p.ams_payment_id.clone(),
        refund_id: Some(r.refund_id.clone()),
        refund_request_id: Some(rrid.to_owned()),
        status: status.as_str().to_owned(),
        amount: Amount {
            currency: r.currency.clone(),
            value: r.amount,
        },
        conversion: None,
        result_code: code.map(str::to_owned),
        seller_id: part.as_ref().map(|(_, seller)| seller.clone()),
        checkout_id: part.as_ref().map(|(checkout, _)| checkout.clone()),
    };
    let jws = app.receipt_signer.sign(&receipt);
    let mut tx = app.db.begin().await?;
    let settled = store::refunds::settle(
        &mut tx,
        rrid,
        &RefundSettlement {
            status,
            result_code: code,
            ams_refund_id,
            receipt: &jws,
            now: now_ms(),
        },
    )
    .await?;
    if !settled {
        tx.rollback().await?;
        return Ok(false);
    }
    if status == RefundStatus::Succeeded {
        store::payments::add_refunded(&mut tx, &r.payment_id, r.amount, now_ms()).await?;
    }
    store::steps::insert_final(&mut tx, rrid, status.as_str(), now_ms()).await?;
    let mut fin = r.clone();
    fin.status = status;
    fin.result_code = code.map(str::to_owned);
    fin.ams_refund_id = ams_refund_id.map(str::to_owned).or(r.ams_refund_id.clone());
    fin.receipt = Some(jws);
    crate::domain::events::EventHub::insert(
        &mut tx,
        &p.device_id,
        &Event::RefundResult(refund_view(&fin)),
    )
    .await?;
    tx.commit().await?;
    app.hub.wake(&p.device_id).await;
    if let Some((checkout_id, _)) = &part {
        wake_checkout(app, checkout_id).await?;
    }
    Ok(true)
}
