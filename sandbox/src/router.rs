//! The whole HTTP surface in one table: the AMS API (every path the table does not
//! name), the control API (`/sandbox/v1/...`) and the phone pages (`/wallet/...`), each
//! handed the shared [`App`].

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::app::App;
use crate::{api, control, phone};

/// The whole HTTP surface: AMS API, control API, phone pages.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/sandbox/v1/public-key", get(control::public_key))
        .route("/sandbox/v1/scan", post(control::scan))
        .route("/sandbox/v1/ledger", get(control::ledger))
        .route("/sandbox/v1/reports", get(control::reports))
        .route("/sandbox/v1/sellers", get(control::sellers))
        .route(
            "/sandbox/v1/faults",
            get(control::list_faults)
                .post(control::arm_fault)
                .delete(control::clear_faults),
        )
        .route(
            "/sandbox/v1/users",
            post(control::create_user).get(control::list_users),
        )
        .route("/sandbox/v1/notifications", get(control::notifications))
        .route("/sandbox/v1/clock", get(control::clock))
        .route("/sandbox/v1/clock/advance", post(control::advance_clock))
        .route("/sandbox/v1/release", post(control::release))
        .route(
            "/wallet/authorize/{code}",
            get(phone::authorize_page).post(phone::authorize_submit),
        )
        .route(
            "/wallet/authorize/{code}/qr.png",
            get(phone::authorize_qr_png),
        )
        .route(
            "/wallet/pay/{code}",
            get(phone::pay_page).post(phone::pay_submit),
        )
        .route("/wallet/account/{user}", get(phone::account_page))
        .route("/wallet/account/{user}/unbind", post(phone::unbind_submit))
        .fallback(api::handle)
        .with_state(app)
}
