//! Operations: `/healthz`, `/readyz` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scanbind_device_api::types::Health;

use crate::domain::App;
use crate::store;
use crate::store::reports::Counted;

pub(super) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

pub(super) async fn readyz(State(app): State<App>) -> Response {
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

pub(super) async fn metrics(State(app): State<App>) -> Response {
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
