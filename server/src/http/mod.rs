//! The HTTP layer, on top of [`crate::domain`]: the router, the device API (`/v1`), the
//! notification intake (`/ams/notify/*`), the back office (`/admin/v1`), the OpenAPI
//! document, health and metrics endpoints. Two routers: [`router`] for the devices'
//! public listener, [`operator_router`] for the operator listener (metrics, back office).

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use scanbind_device_api::ErrorCode;
use tracing::{Instrument, info_span};

use crate::domain::App;
use crate::error::Error;

pub mod admin;
pub mod auth;
pub mod device;
pub mod notify;
pub mod openapi;
pub mod ops;
pub mod response;

pub use device::RESUME_AFTER_HEADER;

use device::{
    cancel, create_checkout, events, get_binding, get_checkout, get_payment, get_refund, inquire,
    list_bindings, me, pay, pay_order_code, receipt_keys, refresh, refund, register, revoke,
    start_binding,
};
use notify::{notify_authorization, notify_payment, notify_refund};
use ops::{healthz, metrics, readyz};

/// The router of the devices' public listener: the device API, the notification intake,
/// health. `/metrics` and `/admin/v1` are not here (they answer `404 not_found`): they
/// are served only by [`operator_router`], on the operator listener.
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
        .route(
            "/v1/subscriptions",
            post(device::subscribe).get(device::list_subscriptions),
        )
        .route(
            "/v1/subscriptions/{subscription_id}",
            get(device::get_subscription),
        )
        .route(
            "/v1/subscriptions/{subscription_id}/cancel",
            post(device::cancel_subscription),
        )
        .route("/v1/receipt-keys", get(receipt_keys))
        .route("/v1/openapi.json", get(device::openapi))
        .route("/ams/notify/authorization", post(notify_authorization))
        .route("/ams/notify/payment", post(notify_payment))
        .route("/ams/notify/refund", post(notify_refund))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(correlation))
        .with_state(app)
}

/// The router of the operator listener (`server.admin_listen`): `/metrics`, the back
/// office `/admin/v1` (operator keys), and health.
pub fn operator_router(app: App) -> Router {
    Router::new()
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
