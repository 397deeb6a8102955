//! The device API (`/v1`): registration, bindings, payments, checkouts, refunds, the
//! receipt keys, the OpenAPI document, and the event stream (SSE).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use scanbind_ams::result::ResultStatus;
use scanbind_device_api::DevicePublicKey;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::types::{
    Binding, Checkout, CheckoutRequest, Device, EventEnvelope, OrderCodePayRequest, PayRequest,
    Payment, PaymentStatus, Refund, RefundRequest, RefundStatus, RegisterDeviceRequest,
    SealedTokensRequest, StartBindingRequest, StartBindingResponse, SubscribeRequest, Subscription,
    SubscriptionList,
};
use serde::Deserialize;
use tracing::{info, warn};

use crate::config::RegistrationMode;
use crate::domain::bindings::{self, binding_view};
use crate::domain::payments::{self, payment_view};
use crate::domain::refunds::{self, refund_view};
use crate::domain::subscriptions;
use crate::domain::{App, check_text};
use crate::error::{Error, Result};
use crate::http::auth::{NoBody, Signed, parse_json, read_body, signed_headers};
use crate::store::enrollment_tokens::NewDevice;
use crate::store::{DeviceRow, PaymentStage};
use crate::util::{now_ms, rfc3339};

fn device_view(d: &DeviceRow) -> Device {
    Device {
        device_id: d.device_id.clone(),
        name: d.name.clone(),
        model: d.model.clone(),
        registered_at: rfc3339(d.registered_at),
    }
}

pub(super) async fn register(
    State(app): State<App>,
    req: Request,
) -> Result<(StatusCode, Json<Device>)> {
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
    check_text(
        "name",
        r.name.trim(),
        scanbind_device_api::limits::MAX_DEVICE_NAME,
    )?;
    if !r.model.is_empty() {
        check_text(
            "model",
            &r.model,
            scanbind_device_api::limits::MAX_DEVICE_MODEL,
        )?;
    }
    let public_key = key.to_base64();
    let (d, created) = if app.config.devices.registration == RegistrationMode::Token
        && crate::domain::devices::load(&app, &headers.device_id)
            .await?
            .is_none()
    {
        // A new device: it enrolls with its own single-use token (a registered device
        // proved its key with the signature and only renames itself).
        let device = NewDevice {
            device_id: &headers.device_id,
            public_key: &public_key,
            name: &r.name,
            model: &r.model,
        };
        let created =
            crate::domain::enrollment::enroll(&app.db, r.provisioning_token.as_deref(), device)
                .await
                .inspect_err(|e| {
                    if e.code() == ErrorCode::RegistrationRefused {
                        app.metrics
                            .enrollments_refused
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(device = %headers.device_id, "enrollment refused");
                    }
                })?;
        let d = crate::domain::devices::load(&app, &headers.device_id)
            .await?
            .ok_or_else(|| Error::api(ErrorCode::Internal, "device vanished"))?;
        (d, created)
    } else {
        crate::domain::devices::register(&app, &headers.device_id, &public_key, &r.name, &r.model)
            .await?
    };
    info!(device = %d.device_id, "device registered");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(device_view(&d))))
}

pub(super) async fn me(s: Signed<NoBody>) -> Json<Device> {
    Json(device_view(&s.device))
}

pub(super) async fn start_binding(
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

pub(super) async fn list_bindings(
    State(app): State<App>,
    s: Signed<NoBody>,
) -> Result<Json<Vec<Binding>>> {
    Ok(Json(
        bindings::device_bindings(&app, &s.device.device_id).await?,
    ))
}

pub(super) async fn get_binding(
    State(app): State<App>,
    Path(binding_id): Path<String>,
    s: Signed<NoBody>,
) -> Result<Json<Binding>> {
    let b = bindings::device_binding(&app, &s.device.device_id, &binding_id).await?;
    Ok(Json(binding_view(&b)))
}

pub(super) async fn refresh(
    State(app): State<App>,
    Path(binding_id): Path<String>,
    s: Signed<SealedTokensRequest>,
) -> Result<Json<Binding>> {
    let b = bindings::device_binding(&app, &s.device.device_id, &binding_id).await?;
    let view = bindings::refresh_tokens(&app, &b, &s.body.sealed_tokens).await?;
    if let Some(blob) = &view.sealed_tokens {
        // Subscriptions renew with the new tokens from now on.
        subscriptions::binding_refreshed(&app, &b.device_id, &b.binding_id, blob).await?;
    }
    Ok(Json(view))
}

pub(super) async fn revoke(
    State(app): State<App>,
    Path(binding_id): Path<String>,
    s: Signed<SealedTokensRequest>,
) -> Result<Json<Binding>> {
    let b = bindings::device_binding(&app, &s.device.device_id, &binding_id).await?;
    let view = bindings::revoke(&app, &b, &s.body.sealed_tokens).await?;
    crate::domain::subscriptions::binding_ended(&app, &b.binding_id, "the binding was revoked")
        .await?;
    Ok(Json(view))
}

pub(super) async fn pay(State(app): State<App>, s: Signed<PayRequest>) -> Result<Json<Payment>> {
    let p = payments::pay(&app, &s.device.device_id, &s.body).await?;
    Ok(Json(payment_view(&p)))
}

pub(super) async fn create_checkout(
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

pub(super) async fn get_checkout(
    State(app): State<App>,
    Path(checkout_id): Path<String>,
    s: Signed<NoBody>,
) -> Result<Json<Checkout>> {
    Ok(Json(
        crate::domain::checkout::device_checkout(&app, &s.device.device_id, &checkout_id).await?,
    ))
}

pub(super) async fn pay_order_code(
    State(app): State<App>,
    s: Signed<OrderCodePayRequest>,
) -> Result<Json<Payment>> {
    let p = payments::pay_order_code(&app, &s.device.device_id, &s.body).await?;
    Ok(Json(payment_view(&p)))
}

pub(super) async fn get_payment(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    s: Signed<NoBody>,
) -> Result<Json<Payment>> {
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    Ok(Json(payment_view(&p)))
}

pub(super) async fn inquire(
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

pub(super) async fn cancel(
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

pub(super) async fn refund(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    s: Signed<RefundRequest>,
) -> Result<Json<Refund>> {
    let p = payments::device_payment(&app, &s.device.device_id, &payment_id).await?;
    let r = refunds::refund(&app, &p, &s.body).await?;
    Ok(Json(refund_view(&r)))
}

pub(super) async fn get_refund(
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

/// `POST /v1/subscriptions`: 201 when new, 200 for a repeat of the same terms.
pub(super) async fn subscribe(
    State(app): State<App>,
    s: Signed<SubscribeRequest>,
) -> Result<(StatusCode, Json<Subscription>)> {
    let known = crate::store::subscriptions::by_app_id(
        &app.db,
        &s.device.device_id,
        &s.body.app_id,
        &s.body.app_subscription_id,
    )
    .await?
    .is_some();
    let sub = subscriptions::subscribe(&app, &s.device.device_id, &s.body).await?;
    let status = if known {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(sub)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SubscriptionsQuery {
    app_id: Option<String>,
}

pub(super) async fn list_subscriptions(
    State(app): State<App>,
    q: AppQuery,
    s: Signed<NoBody>,
) -> Result<Json<SubscriptionList>> {
    let q = app_query(q)?;
    Ok(Json(SubscriptionList {
        subscriptions: subscriptions::device_subscriptions(
            &app,
            &s.device.device_id,
            q.app_id.as_deref(),
        )
        .await?,
    }))
}

type AppQuery =
    std::result::Result<Query<SubscriptionsQuery>, axum::extract::rejection::QueryRejection>;

fn app_query(q: AppQuery) -> Result<SubscriptionsQuery> {
    let Query(q) =
        q.map_err(|_| Error::api(ErrorCode::BadRequest, "the only query parameter is appId"))?;
    Ok(q)
}

pub(super) async fn get_subscription(
    State(app): State<App>,
    Path(subscription_id): Path<String>,
    q: AppQuery,
    s: Signed<NoBody>,
) -> Result<Json<Subscription>> {
    let q = app_query(q)?;
    let row = subscriptions::device_subscription(
        &app,
        &s.device.device_id,
        q.app_id.as_deref(),
        &subscription_id,
    )
    .await?;
    Ok(Json(subscriptions::load_view(&app, &row).await?))
}

pub(super) async fn cancel_subscription(
    State(app): State<App>,
    Path(subscription_id): Path<String>,
    q: AppQuery,
    s: Signed<NoBody>,
) -> Result<Json<Subscription>> {
    let q = app_query(q)?;
    Ok(Json(
        subscriptions::cancel(
            &app,
            &s.device.device_id,
            q.app_id.as_deref(),
            &subscription_id,
        )
        .await?,
    ))
}

pub(super) async fn receipt_keys(State(app): State<App>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(app.receipt_keys.clone()),
    )
        .into_response()
}

pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::http::openapi::document_text(),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    after: Option<i64>,
}

struct StreamGuard(App);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.metrics.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn events(
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
