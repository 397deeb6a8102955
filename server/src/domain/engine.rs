//! The payment engine: drives every unfinished payment and refund to a final state, and
//! expires unscanned binding QR codes. All of its state is in the database, so a
//! restarted server (or another replica) resumes where this one stopped.
//!
//! Combined checkouts ([`crate::domain::checkout`]): pay the parts not sent yet, settle once every
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
use sqlx::Row;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::domain::App;
use crate::domain::payments::{
    ams_call, finalize_payment, finalize_refund, load_payment, load_refund, send_refund,
    set_binding_final,
};
use crate::error::Result;
use crate::store::{BINDING_COLUMNS, BindingRow};
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
    let now = now_ms();
    let p = sqlx::query("UPDATE payments SET next_action_at = $1 WHERE status = 'pending' AND stage = 'sending' AND next_action_at > $1")
        .bind(now)
        .execute(app.db.pool())
        .await?;
    let r = sqlx::query("UPDATE refunds SET next_action_at = $1 WHERE status = 'pending' AND attempts = 0 AND next_action_at > $1")
        .bind(now)
        .execute(app.db.pool())
        .await?;
    // Unfinished combined checkouts: due now; a lease left by a stopped process is void.
    let c = sqlx::query(
        "UPDATE checkouts SET next_action_at = $1, lease_owner = NULL, lease_until = 0 WHERE status IN ('paying', 'reversing') \
         AND (lease_owner IS NULL OR lease_owner <> $2)",
    )
    .bind(now)
    .bind(&app.instance)
    .execute(app.db.pool())
    .await?;
    if p.rows_affected() + r.rows_affected() + c.rows_affected() > 0 {
        tracing::info!(
            payments = p.rows_affected(),
            refunds = r.rows_affected(),
            checkouts = c.rows_affected(),
            "resuming unfinished work"
        );
    }
    Ok(())
}

/// Does all due work once; returns the next due time, if any.
pub async fn tick(app: &App) -> Result<Option<i64>> {
    let now = now_ms();
    sqlx::query("DELETE FROM seen_nonces WHERE expires_at < $1")
        .bind(now)
        .execute(app.db.pool())
        .await?;
    // A token exchange cut short by a crash (older than any live exchange could be): the
    // binding waits again for Alipay's resent notification.
    sqlx::query(
        "UPDATE bindings SET status = 'pending' WHERE status = 'exchanging' AND updated_at < $1",
    )
    .bind(now - 120_000)
    .execute(app.db.pool())
    .await?;
    // Binding QR codes nobody scanned in time.
    let sql = format!(
        "SELECT {BINDING_COLUMNS} FROM bindings WHERE status = 'pending' AND expires_at <= $1 LIMIT 50"
    );
    for row in sqlx::query(&sql).bind(now).fetch_all(app.db.pool()).await? {
        let b = BindingRow::from_row(&row)?;
        set_binding_final(app, &b, "expired", "nobody scanned the QR code in time").await?;
    }
    let due = sqlx::query("SELECT payment_id FROM payments WHERE status = 'pending' AND next_action_at <= $1 AND lease_until < $1 ORDER BY next_action_at LIMIT 20")
        .bind(now)
        .fetch_all(app.db.pool())
        .await?;
    for row in due {
        let id: String = row.try_get("payment_id")?;
        if lease(app, "payments", "payment_id", &id).await?
            && let Err(e) = drive_payment(app, &id).await
        {
            warn!(payment = %id, cause = %e, "payment step failed; will retry");
            reschedule(app, "payments", "payment_id", &id, 0).await?;
        }
    }
    let due = sqlx::query("SELECT refund_request_id FROM refunds WHERE status = 'pending' AND next_action_at <= $1 AND lease_until < $1 ORDER BY next_action_at LIMIT 20")
        .bind(now)
        .fetch_all(app.db.pool())
        .await?;
    for row in due {
        let id: String = row.try_get("refund_request_id")?;
        if lease(app, "refunds", "refund_request_id", &id).await?
            && let Err(e) = drive_refund(app, &id).await
        {
            warn!(refund = %id, cause = %e, "refund step failed; will retry");
            reschedule(app, "refunds", "refund_request_id", &id, 0).await?;
        }
    }
    let due = sqlx::query("SELECT checkout_id FROM checkouts WHERE status IN ('paying', 'reversing') AND next_action_at <= $1 AND lease_until < $1 ORDER BY next_action_at LIMIT 20")
        .bind(now)
        .fetch_all(app.db.pool())
        .await?;
    for row in due {
        let id: String = row.try_get("checkout_id")?;
        if crate::domain::checkout::lease(app, &id).await? {
            if let Err(e) = crate::domain::checkout::drive(app, &id).await {
                warn!(checkout = %id, cause = %e, "checkout step failed; will retry");
            }
            crate::domain::checkout::release(app, &id).await?;
        }
    }
    let next = sqlx::query(
        "SELECT MIN(t) AS t FROM (SELECT MIN(next_action_at) AS t FROM payments WHERE status = 'pending' \
         UNION ALL SELECT MIN(next_action_at) AS t FROM refunds WHERE status = 'pending' \
         UNION ALL SELECT MIN(next_action_at) AS t FROM checkouts WHERE status IN ('paying', 'reversing') \
         UNION ALL SELECT MIN(expires_at) AS t FROM bindings WHERE status = 'pending') AS due",
    )
    .fetch_one(app.db.pool())
    .await?;
    Ok(next.try_get::<Option<i64>, _>("t")?)
}

async fn lease(app: &App, table: &str, key: &str, id: &str) -> Result<bool> {
    let now = now_ms();
    let sql = format!(
        "UPDATE {table} SET lease_owner = $2, lease_until = $3 WHERE {key} = $1 AND status = 'pending' AND lease_until < $4"
    );
    let r = sqlx::query(&sql)
        .bind(id)
        .bind(&app.instance)
        .bind(now + LEASE_MS)
        .bind(now)
        .execute(app.db.pool())
        .await?;
    Ok(r.rows_affected() == 1)
}

fn backoff(app: &App, attempts: i64) -> i64 {
    let list = &app.config.payments.inquiry_backoff_ms;
    let idx = usize::try_from(attempts.max(0))
        .unwrap_or(usize::MAX)
        .min(list.len().saturating_sub(1));
    i64::try_from(list.get(idx).copied().unwrap_or(2_000)).unwrap_or(2_000)
}

async fn reschedule(app: &App, table: &str, key: &str, id: &str, extra: i64) -> Result<()> {
    let attempts: i64 = sqlx::query(&format!("SELECT attempts FROM {table} WHERE {key} = $1"))
        .bind(id)
        .fetch_one(app.db.pool())
        .await?
        .try_get("attempts")?;
    let sql = format!(
        "UPDATE {table} SET attempts = attempts + 1, next_action_at = $2, lease_owner = NULL, lease_until = 0, updated_at = $3 WHERE {key} = $1 AND status = 'pending'"
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(now_ms() + backoff(app, attempts) + extra)
        .bind(now_ms())
        .execute(app.db.pool())
        .await?;
    Ok(())
}

/// One engine step for a payment: inquire, or cancel once past expiry.
pub async fn drive_payment(app: &App, payment_id: &str) -> Result<()> {
    let Some(p) = load_payment(app, payment_id).await? else {
        return Ok(());
    };
    if p.status != "pending" {
        return Ok(());
    }
    let now = now_ms();
    if p.stage == "cancelling" {
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
                sqlx::query("UPDATE payments SET stage = 'inquiring' WHERE payment_id = $1 AND status = 'pending'")
                    .bind(payment_id)
                    .execute(app.db.pool())
                    .await?;
                reschedule(app, "payments", "payment_id", payment_id, 0).await?;
            }
            _ => reschedule(app, "payments", "payment_id", payment_id, 0).await?,
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
                finalize_payment(
                    app,
                    payment_id,
                    PaymentStatus::Succeeded,
                    None,
                    None,
                    ams_id,
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
        sqlx::query("UPDATE payments SET stage = 'cancelling', next_action_at = $2, lease_owner = NULL, lease_until = 0 WHERE payment_id = $1 AND status = 'pending'")
            .bind(payment_id)
            .bind(now_ms())
            .execute(app.db.pool())
            .await?;
        app.engine_wake.notify_one();
        return Ok(());
    }
    sqlx::query(
        "UPDATE payments SET stage = 'inquiring' WHERE payment_id = $1 AND status = 'pending'",
    )
    .bind(payment_id)
    .execute(app.db.pool())
    .await?;
    reschedule(app, "payments", "payment_id", payment_id, 0).await
}

/// One engine step for a refund.
pub async fn drive_refund(app: &App, rrid: &str) -> Result<()> {
    let Some(r) = load_refund(app, rrid).await? else {
        return Ok(());
    };
    if r.status != "pending" {
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
            _ => reschedule(app, "refunds", "refund_request_id", rrid, 0).await?,
        },
        Ok(resp) if resp.result.result_code.as_str() == "ORDER_NOT_EXIST" => {
            // Alipay never saw it: send the identical refund again.
            sqlx::query("UPDATE refunds SET lease_owner = NULL, lease_until = 0 WHERE refund_request_id = $1")
                .bind(rrid)
                .execute(app.db.pool())
                .await?;
            send_refund(app, rrid).await?;
        }
        _ => reschedule(app, "refunds", "refund_request_id", rrid, 0).await?,
    }
    Ok(())
}
