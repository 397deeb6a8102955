//! HTTP routes: the device API (`/v1`), notification intake (`/ams/notify/*`) and
//! operations (`/healthz`, `/readyz`, `/metrics`).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scanbind_ams::model::{
    AuthorizationNotification, AuthorizationNotifyType, Notification, PaymentNotification,
    PaymentNotifyType, RefundNotification, RefundStatus as AmsRefundStatus,
};
use scanbind_ams::notify::{ACK_BODY, NotificationHeaders};
use scanbind_ams::result::ResultStatus;
use scanbind_device_api::DevicePublicKey;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::types::{
    Binding, Checkout, CheckoutRequest, Device, EventEnvelope, Health, OrderCodePayRequest,
    PayRequest, Payment, PaymentStatus, Refund, RefundRequest, RefundStatus, RegisterDeviceRequest,
    SealedTokensRequest, StartBindingRequest, StartBindingResponse,
};
use serde::Deserialize;
use tracing::{Instrument, info, info_span, warn};

use crate::config::RegistrationMode;
use crate::domain::bindings::{self, binding_view};
use crate::domain::notifications::{record, release};
use crate::domain::payments::{self, payment_view};
use crate::domain::refunds::{self, refund_view};
use crate::domain::{App, check_text};
use crate::error::{Error, Result};
use crate::http::auth::{NoBody, Signed, parse_json, read_body, signed_headers};
use crate::store::reports::Counted;
use crate::store::{self, DeviceRow, PaymentStage};
use crate::util::{now_ms, rfc3339};

/// The whole router.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/devices", post(register))
        .route("/v1/devices/me", get(me))
        .route("/v1/bindings", post(start_binding).get(list_bindings))
        .route("/v1/bindings/{binding_id}", get(get_binding))
        .route("/v1/bindings/{binding_id}/refresh", post(refresh))
        .route("/v1/bindings/{binding_id}/revoke", post(revoke))
        .route("/v1/events", get(events))
        .route("/v1/payments", post(pay))
        .route("/v1/checkouts", post(create_checkout))
        .route("/v1/checkouts/{checkout_id}", get(get_checkout))
        .route("/v1/payments/order-code", post(pay_order_code))
        .route("/v1/payments/{payment_id}", get(get_payment))
        .route("/v1/payments/{payment_id}/inquire", post(inquire))
        .route("/v1/payments/{payment_id}/cancel", post(cancel))
        .route("/v1/payments/{payment_id}/refunds", post(refund))
        .route(
            "/v1/payments/{payment_id}/refunds/{refund_id}",
            get(get_refund),
        )
        .route("/v1/receipt-keys", get(receipt_keys))
        .route("/v1/openapi.json", get(openapi))
        .route("/ams/notify/authorization", post(notify_authorization))
        .route("/ams/notify/payment", post(notify_payment))
        .route("/ams/notify/refund", post(notify_refund))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::http::admin::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(correlation))
        .with_state(app)
}

/// Gives every request a correlation id (`x-request-id`, taken from the request or made
/// up) carried by the span of everything done for it, AMS calls included.
async fn correlation(req: Request, next: axum::middleware::Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| crate::util::random_token(9));
    let span = info_span!("request", id = %id, method = %req.method(), path = %req.uri().path(), device = tracing::field::Empty);
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

async fn not_found() -> Error {
    Error::api(ErrorCode::NotFound, "no such route")
}

fn device_view(d: &DeviceRow) -> Device {
    Device {
        device_id: d.device_id.clone(),
        name: d.name.clone(),
        model: d.model.clone(),
        registered_at: rfc3339(d.registered_at),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let da = ring::digest::digest(&ring::digest::SHA256, a);
    let db = ring::digest::digest(&ring::digest::SHA256, b);
    da.as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

async fn register(State(app): State<App>, req: Request) -> Result<(StatusCode, Json<Device>)> {
    let (parts, body) = read_body(req).await?;
    let headers = signed_headers(&parts)?;
    let r: RegisterDeviceRequest = parse_json(&body)?;
    let key = DevicePublicKey::from_base64(&r.public_key).map_err(|_| {
        Error::api(
            ErrorCode::BadRequest,
            "publicKey must be 32 bytes of base64url",
        )
    })?;
    if key.device_id() != headers.device_id {
        return Err(Error::api(
            ErrorCode::BadSignature,
            "the device id is not the one of publicKey",
        ));
    }
    crate::http::auth::verify(&app, &key, &headers, &parts, &body).await?;
    check_text("name", r.name.trim(), 64)?;
    if !r.model.is_empty() {
        check_text("model", &r.model, 64)?;
    }
    if app.config.devices.registration == RegistrationMode::Token {
        let ok = match (&app.provisioning_token, &r.provisioning_token) {
            (Some(expected), Some(given)) => constant_time_eq(expected, given.as_bytes()),
            _ => false,
        };
        if !ok {
            return Err(Error::api(
                ErrorCode::RegistrationRefused,
                "a valid provisioning token is required",
            ));
        }
    }
    let (d, created) = crate::domain::devices::register(
        &app,
        &headers.device_id,
        &key.to_base64(),
        &r.name,
        &r.model,
    )
    .await?;
    info!(device = %d.device_id, "device registered");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(device_view(&d))))
}

async fn me(s: Signed<NoBody>) -> Json<Device> {
    Json(device_view(&s.device))
}

async fn start_binding(
    State(app): State<App>,
    s: Signed<StartBindingRequest>,
) -> Result<(StatusCode, Json<StartBindingResponse>)> {
    let (row, code_value) =
        bindings::start_binding(&app, &s.device.device_id, &s.device.name, &s.body.wallet).await?;
    Ok((
        StatusCode::CREATED,
        Json(StartBindingResponse {
            binding_id: row.binding_id,
            code_value,
            expires_at: rfc3339(row.expires_at),
            device_name: s.device.name,
            match_code: row.match_code,
        }),
    ))
}

async fn list_bindings(State(app): State<App>, s: Signed<NoBody>) -> Result<Json<Vec<Binding>>> {
    Ok(Json(
        bindings::device_bindings(&app, &s.device.device_id).await?,
    ))
}

async fn get_binding(
    State(app): State<App>,
    Path(binding_id): Path<String>,
    s: Signed<NoBody>,
) -> Result<Json<Binding>> {
    let b = bindings::device_binding(&app, &s.device.device_id, &binding_id).await?;
    Ok(Json(binding_view(&b)))
}

async fn refresh(
    State(app): State<App>,
    Path(binding_id): Path<String>,
    s: Signed<SealedTokensRequest>,
) -> Result<Json<Binding>> {
    let b = bindings::device_binding(&app, &s.device.device_id, &binding_id).await?;
    Ok(Json(
        bindings::refresh_tokens(&app, &b, &s.body.sealed_tokens).await?,
    ))
}

async fn revoke(
    State(app): State<App>,
    Path(binding_id): Path<String>,
    s: Signed<SealedTokensRequest>,
) -> Result<Json<Binding>> {
    let b = bindings::device_binding(&app, &s.device.device_id, &binding_id).await?;
    Ok(Json(
        bindings::revoke(&app, &b, &s.body.sealed_tokens).await?,
    ))
}

async fn pay(State(app): State<App>, s: Signed<PayRequest>) -> Result<Json<Payment>> {
    let p = payments::pay(&app, &s.device.device_id, &s.body).await?;
    Ok(Json(payment_view(&p)))
}

async fn create_checkout(
    State(app): State<App>,
    s: Signed<CheckoutRequest>,
) -> Result<(StatusCode, Json<Checkout>)> {
    let c = crate::domain::checkout::create(&app, &s.device.device_id, &s.body).await?;
    let status = if c.status.is_final() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(c)))
}

async fn get_checkout(
    State(app): State<App>,
    Path(checkout_id): Path<String>,
    s: Signed<NoBody>,
) -> Result<Json<Checkout>> {
    Ok(Json(
        crate::domain::checkout::device_checkout(&app, &s.device.device_id, &checkout_id).await?,
    ))
}

async fn pay_order_code(
    State(app): State<App>,
    s: Signed<OrderCodePayRequest>,
) -> Result<Json<Payment>> {
    let p = payments::pay_order_code(&app, &s.device.device_id, &s.body).await?;
    Ok(Json(payment_view(&p)))
}

async fn get_payment(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    s: Signed<NoBody>,
) -> Result<Json<Payment>> {
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    Ok(Json(payment_view(&p)))
}

async fn inquire(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    s: Signed<NoBody>,
) -> Result<Json<Payment>> {
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    if p.status == PaymentStatus::Pending
        && p.stage != PaymentStage::Sending
        && p.stage != PaymentStage::Queued
    {
        crate::domain::engine::drive_payment(&app, &p.payment_id).await?;
    }
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    Ok(Json(payment_view(&p)))
}

async fn cancel(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    s: Signed<NoBody>,
) -> Result<Json<Payment>> {
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    if p.status != PaymentStatus::Pending && p.status != PaymentStatus::Succeeded {
        return Ok(Json(payment_view(&p)));
    }
    let resp = crate::domain::ams_call(
        &app,
        &scanbind_ams::model::CancelRequest::by_payment_request_id(&p.payment_request_id),
    )
    .await?;
    app.db
        .step(
            &p.payment_id,
            "cancel",
            &format!(
                "{}/{}",
                resp.result.result_status,
                resp.result.result_code.as_str()
            ),
            now_ms(),
        )
        .await?;
    match resp.result.result_status {
        ResultStatus::S => {
            // A cancelled pending payment never charged; a cancelled paid one is refunded
            // in full by Alipay. Either way the device gets the new state and receipt.
            payments::transition_payment(
                &app,
                &p.payment_id,
                p.status,
                PaymentStatus::Cancelled,
                Some("CANCELLED"),
                Some("cancelled by the device"),
                resp.payment_id.as_deref(),
            )
            .await?;
        }
        ResultStatus::F => {
            return Err(Error::api(
                ErrorCode::PaymentRejected,
                format!(
                    "Alipay refused the cancel: {}",
                    resp.result.result_code.as_str()
                ),
            ));
        }
        _ => {
            return Err(Error::api(
                ErrorCode::UpstreamUnavailable,
                "Alipay did not answer; retry",
            ));
        }
    }
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    Ok(Json(payment_view(&p)))
}

async fn refund(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    s: Signed<RefundRequest>,
) -> Result<Json<Refund>> {
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    let r = refunds::refund(&app, &p, &s.body).await?;
    Ok(Json(refund_view(&r)))
}

async fn get_refund(
    State(app): State<App>,
    Path((payment_id, refund_id)): Path<(String, String)>,
    s: Signed<NoBody>,
) -> Result<Json<Refund>> {
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    let rrid = crate::util::refund_request_id(&p.payment_id, &refund_id);
    let r = refunds::load_refund(&app, &rrid)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::NotFound, "no such refund"))?;
    if r.status == RefundStatus::Pending {
        crate::domain::engine::drive_refund(&app, &rrid).await?;
    }
    let r = refunds::load_refund(&app, &rrid)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::NotFound, "no such refund"))?;
    Ok(Json(refund_view(&r)))
}

async fn receipt_keys(State(app): State<App>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(app.receipt_keys.clone()),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::http::openapi::document_text(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<i64>,
}

struct StreamGuard(App);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.metrics.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn events(
    State(app): State<App>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
    s: Signed<NoBody>,
) -> Result<Response> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let device_id = s.device.device_id.clone();
    // Subscribe before the first read so nothing emitted in between is missed.
    let rx = app.hub.subscribe();
    let after = match last_event_id.or(q.after) {
        Some(a) => a,
        None => app.hub.latest(&device_id).await?,
    };
    app.metrics.open_streams.fetch_add(1, Ordering::Relaxed);
    let keep_alive_secs = app.config.server.events_keep_alive_secs;
    let guard = StreamGuard(app.clone());
    // `drained`: the last read returned less than a full batch, so everything committed
    // before it has been delivered; anything committed since sends a wake-up, which the
    // receiver (subscribed before the first read) holds. No re-read is needed until then.
    let state = (
        app,
        device_id,
        after,
        rx,
        std::collections::VecDeque::<EventEnvelope>::new(),
        guard,
        false,
    );
    let stream = futures_util::stream::unfold(
        state,
        |(app, device_id, mut after, mut rx, mut buf, guard, mut drained)| async move {
            loop {
                if let Some(ev) = buf.pop_front() {
                    after = ev.seq;
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    let sse = SseEvent::default()
                        .id(ev.seq.to_string())
                        .event(ev.event.kind())
                        .data(data);
                    return Some((
                        Ok::<_, Infallible>(sse),
                        (app, device_id, after, rx, buf, guard, drained),
                    ));
                }
                if !drained {
                    match app.hub.fetch(&device_id, after, EVENT_BATCH).await {
                        Ok(list) if !list.is_empty() => {
                            drained = list.len() < usize::try_from(EVENT_BATCH).unwrap_or(0);
                            buf.extend(list);
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            warn!(cause = %e, "event stream read failed; closing");
                            return None;
                        }
                    }
                }
                drained = false;
                loop {
                    match rx.recv().await {
                        Ok(d) if d == device_id || d.is_empty() => break,
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        },
    );
    // The sequence number the stream starts after, so a client that has not seen an
    // event yet can still resume without a gap after a reconnect.
    let resume = [(RESUME_AFTER_HEADER, after.to_string())];
    // No keep-alive comments by default: an idle device sleeps (TCP keepalive finds
    // dead peers without waking either process).
    let keep_alive = keep_alive_secs;
    let sse = Sse::new(stream);
    Ok(if keep_alive == 0 {
        (resume, sse).into_response()
    } else {
        let every = Duration::from_secs(u64::from(keep_alive));
        (resume, sse.keep_alive(KeepAlive::new().interval(every))).into_response()
    })
}

/// Events read per query by an event stream.
const EVENT_BATCH: i64 = 100;

/// The response header of `GET /v1/events` naming the sequence number the stream
/// starts after.
pub const RESUME_AFTER_HEADER: &str = "x-scanbind-resume-after";

// ---------------------------------------------------------------------------------------
// Notification intake
// ---------------------------------------------------------------------------------------

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

async fn notify_authorization(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
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
                bindings::token_canceled(&app, &token, n.reason.as_deref()).await
            })
            .await
        }
        _ => ack(),
    }
}

async fn notify_payment(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
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

async fn notify_refund(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
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

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

async fn readyz(State(app): State<App>) -> Response {
    if app.db.ping().await {
        Json(Health {
            status: "ok".into(),
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "database unavailable".into(),
            }),
        )
            .into_response()
    }
}

async fn metrics(State(app): State<App>) -> Response {
    let payments = store::reports::count_by_status(&app.db, Counted::Payments)
        .await
        .unwrap_or_default();
    let refunds = store::reports::count_by_status(&app.db, Counted::Refunds)
        .await
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&payments, &refunds),
    )
        .into_response()
}
