//! Notification intake (`/ams/notify/*`): verifies Alipay's signature, de-duplicates by
//! the database, applies the result once, and acknowledges only what is done.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scanbind_ams::model::{
    AuthorizationNotification, AuthorizationNotifyType, Notification, PaymentNotification,
    PaymentNotifyType, RefundNotification, RefundStatus as AmsRefundStatus,
};
use scanbind_ams::notify::{ACK_BODY, NotificationHeaders};
use scanbind_ams::result::ResultStatus;
use scanbind_device_api::types::{PaymentStatus, RefundStatus};
use tracing::warn;

use crate::domain::App;
use crate::domain::bindings;
use crate::domain::notifications::{record, release};
use crate::domain::payments;
use crate::domain::refunds;
use crate::error::Result;
use crate::util::now_ms;

fn ack() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], ACK_BODY).into_response()
}

fn not_acked(status: StatusCode, code: &str) -> Response {
    let body = format!(
        r#"{{"result":{{"resultCode":"{code}","resultStatus":"F","resultMessage":"not acknowledged"}}}}"#
    );
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Verifies a notification; `None` (after logging and counting) when it must not be
/// acknowledged.
fn verify_notification<N: Notification>(
    app: &App,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<N> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let nh = NotificationHeaders {
        client_id: h("client-id"),
        request_time: h("request-time"),
        signature: h("signature"),
    };
    let full = format!("{}{path}", app.public_path_prefix);
    match app.notify_verifier.verify::<N>(&full, nh, body) {
        Ok(n) => {
            if let Some(t) = nh.request_time.and_then(|t| t.parse::<i64>().ok()) {
                let lag = (now_ms() - t).max(0);
                app.metrics
                    .notification_lag_ms_sum
                    .fetch_add(u64::try_from(lag).unwrap_or(0), Ordering::Relaxed);
            }
            Some(n)
        }
        Err(e) => {
            app.metrics
                .notifications_refused
                .fetch_add(1, Ordering::Relaxed);
            warn!(path, cause = %e, "notification refused: not acknowledged, nothing changed");
            None
        }
    }
}

/// Claims a notification in the de-dup table (unique key): false if it was already
/// claimed, i.e. this is a duplicate.
async fn claim(app: &App, kind: &str, key: &str) -> Result<bool> {
    record(app, kind, key).await
}

/// De-duplicates by the database, processes, and answers: the exact ack on success or
/// for a duplicate; no ack when the outcome is unknown (Alipay then resends).
async fn intake<F, Fut>(app: &App, kind: &str, idx: usize, key: String, process: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    match claim(app, kind, &key).await {
        Ok(true) => {}
        Ok(false) => {
            app.metrics
                .notifications_duplicate
                .fetch_add(1, Ordering::Relaxed);
            return ack();
        }
        Err(e) => {
            warn!(cause = %e, "notification de-dup claim failed");
            return not_acked(StatusCode::SERVICE_UNAVAILABLE, "UNKNOWN_EXCEPTION");
        }
    }
    match process().await {
        Ok(()) => {
            app.metrics.notifications_ok[idx].fetch_add(1, Ordering::Relaxed);
            ack()
        }
        Err(e) => {
            warn!(kind, cause = %e, "notification not processed; Alipay will resend");
            if let Err(e) = release(app, kind, &key).await {
                warn!(cause = %e, "cannot release the notification claim");
            }
            not_acked(StatusCode::SERVICE_UNAVAILABLE, "UNKNOWN_EXCEPTION")
        }
    }
}

pub(super) async fn notify_authorization(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n: AuthorizationNotification =
        match verify_notification(&app, "/ams/notify/authorization", &headers, &body) {
            Some(n) => n,
            None => return not_acked(StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE"),
        };
    match n.authorization_notify_type.clone() {
        AuthorizationNotifyType::AuthcodeCreated => {
            let state = n.auth_state.clone().unwrap_or_default();
            let key = format!("AUTHCODE_CREATED:{state}");
            intake(&app, "authorization", 0, key, || async {
                match &n.auth_code {
                    Some(code) => {
                        bindings::authcode_created(&app, &state, code, n.user_login_id.as_deref())
                            .await
                    }
                    None => Ok(()),
                }
            })
            .await
        }
        AuthorizationNotifyType::TokenCanceled => {
            let token = n
                .access_token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .unwrap_or_default();
            let key = format!(
                "TOKEN_CANCELED:{}",
                crate::domain::seal::token_fingerprint(&token)
            );
            intake(&app, "authorization", 0, key, || async {
                crate::domain::subscriptions::token_canceled(&app, &token, n.reason.as_deref())
                    .await
            })
            .await
        }
        _ => ack(),
    }
}

pub(super) async fn notify_payment(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n: PaymentNotification =
        match verify_notification(&app, "/ams/notify/payment", &headers, &body) {
            Some(n) => n,
            None => return not_acked(StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE"),
        };
    if n.notify_type != PaymentNotifyType::PaymentResult {
        return ack();
    }
    let key = format!(
        "{}:{}:{}",
        n.payment_id,
        n.result.result_status,
        n.result.result_code.as_str()
    );
    let known = match payments::load_payment_by_request(&app, &n.payment_request_id).await {
        Ok(p) => p,
        Err(e) => {
            warn!(cause = %e, "payment notification: cannot read the payment");
            return not_acked(StatusCode::SERVICE_UNAVAILABLE, "UNKNOWN_EXCEPTION");
        }
    };
    if let Some(p) = &known
        && p.status != PaymentStatus::Pending
    {
        // Already final (usually by the pay answer): nothing to apply; the notification
        // is only recorded for the history (D19).
        return match record(&app, "payment", &key).await {
            Ok(true) => {
                app.metrics.notifications_ok[1].fetch_add(1, Ordering::Relaxed);
                ack()
            }
            Ok(false) => {
                app.metrics
                    .notifications_duplicate
                    .fetch_add(1, Ordering::Relaxed);
                ack()
            }
            Err(e) => {
                warn!(cause = %e, "cannot record the notification");
                not_acked(StatusCode::SERVICE_UNAVAILABLE, "UNKNOWN_EXCEPTION")
            }
        };
    }
    intake(&app, "payment", 1, key, || async {
        let Some(p) = known else {
            warn!("payment notification for an unknown paymentRequestId; acknowledged");
            return Ok(());
        };
        let (status, code, message) = match n.result.result_status {
            ResultStatus::S => (PaymentStatus::Succeeded, None, None),
            ResultStatus::F => (
                PaymentStatus::Failed,
                Some(n.result.result_code.as_str()),
                n.result.result_message.as_deref(),
            ),
            _ => return Ok(()),
        };
        if status == PaymentStatus::Succeeded
            && p.conversion.is_none()
            && payments::priced_in_other_currency(&p)
        {
            // notifyPayment carries no quote: the success of a payment priced in another
            // currency is taken from inquiryPayment, which does, so that its receipt
            // shows what the wallet paid. Inquire now.
            payments::schedule_inquiry(&app, &p.payment_id, None, Some(&n.payment_id)).await?;
            return Ok(());
        }
        payments::transition_loaded(
            &app,
            &p,
            PaymentStatus::Pending,
            status,
            code,
            message,
            Some(&n.payment_id),
            None,
        )
        .await?;
        Ok(())
    })
    .await
}

pub(super) async fn notify_refund(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n: RefundNotification =
        match verify_notification(&app, "/ams/notify/refund", &headers, &body) {
            Some(n) => n,
            None => return not_acked(StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE"),
        };
    let key = format!("{}:{}", n.refund_id, n.refund_status.as_str());
    intake(&app, "refund", 2, key, || async {
        let status = match n.refund_status {
            AmsRefundStatus::Success => RefundStatus::Succeeded,
            AmsRefundStatus::Fail => RefundStatus::Failed,
            _ => return Ok(()),
        };
        let code =
            (status == RefundStatus::Failed).then(|| n.result.result_code.as_str().to_owned());
        refunds::finalize_refund(
            &app,
            &n.refund_request_id,
            status,
            code.as_deref(),
            Some(&n.refund_id),
        )
        .await?;
        Ok(())
    })
    .await
}
