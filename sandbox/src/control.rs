//! The control API under `/sandbox/v1/` for tests and tools (documented with examples in
//! `docs/sandbox.md`). It is unauthenticated: the sandbox is a development tool.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{auth, payments};
use crate::app::App;
use crate::clock::ams_time;
use crate::faults::{CallFault, NotifyFault, endpoint_by_name};
use crate::state::{User, from_ts};
use crate::wallets;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Parses a JSON body leniently so a bad body gets a 400 with a message, not a rejection page.
fn json_body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON body: {e}"))
}

/// `GET /sandbox/v1/public-key`: the sandbox's signing public key, SPKI PEM.
pub(crate) async fn public_key(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        app.key.public_key().to_pem(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanBody {
    code_value: String,
    decision: String,
    #[serde(default)]
    user: Option<String>,
}

/// The code at the end of a phone-page URL (`.../wallet/authorize/<code>`), and which kind.
fn code_of(code_value: &str) -> Option<(&'static str, &str)> {
    let trimmed = code_value.trim().trim_end_matches('/');
    let trimmed = trimmed.split(['?', '#']).next().unwrap_or(trimmed);
    if let Some(i) = trimmed.rfind("/wallet/authorize/") {
        return Some(("authorize", &trimmed[i + "/wallet/authorize/".len()..]));
    }
    if let Some(i) = trimmed.rfind("/wallet/pay/") {
        return Some(("pay", &trimmed[i + "/wallet/pay/".len()..]));
    }
    None
}

/// `POST /sandbox/v1/scan`: what the phone does after scanning `codeValue`.
pub(crate) async fn scan(State(app): State<Arc<App>>, bytes: axum::body::Bytes) -> Response {
    let req: ScanBody = match json_body(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let approve = match req.decision.as_str() {
        "approve" | "pay" => true,
        "deny" | "decline" => false,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("decision must be \"approve\" or \"deny\", not {other:?}"),
            );
        }
    };
    let Some((kind, code)) = code_of(&req.code_value) else {
        return error(
            StatusCode::BAD_REQUEST,
            "codeValue is not a sandbox QR value (…/wallet/authorize/<code> or …/wallet/pay/<code>)",
        );
    };
    let user = req.user.as_deref();
    match kind {
        "authorize" => match auth::scan_authorize(&app, code, approve, user) {
            Ok(auth::ScanResult::Approved { user }) => {
                Json(json!({"kind": "authorize", "outcome": "approved", "user": user}))
                    .into_response()
            }
            Ok(auth::ScanResult::Denied) => {
                Json(json!({"kind": "authorize", "outcome": "denied"})).into_response()
            }
            Err(msg) => error(StatusCode::CONFLICT, msg),
        },
        _ => match payments::scan_pay(&app, code, approve, user) {
            Ok(true) => Json(json!({"kind": "pay", "outcome": "paid"})).into_response(),
            Ok(false) => Json(json!({"kind": "pay", "outcome": "declined"})).into_response(),
            Err(msg) => error(StatusCode::CONFLICT, msg),
        },
    }
}

/// `GET /sandbox/v1/ledger`: every payment and refund with how many times money moved.
pub(crate) async fn ledger(State(app): State<Arc<App>>) -> Response {
    let now = app.clock.now();
    app.write(|state, _| {
        let changed = payments::sweep(state, now);
        (changed, changed)
    });
    let body = app.store.read(|state| {
        let payments: Vec<Value> = state
            .payments
            .values()
            .map(|p| {
                let (actual, quote) = match payments::payment_quote(p) {
                    Some((a, q)) => (
                        json!({"currency": a.currency, "value": a.value}),
                        json!(q),
                    ),
                    None => (Value::Null, Value::Null),
                };
                let actual_refunded = p.actual.as_ref().map(|a| {
                    json!({"currency": a.currency, "value": p.actual_refunded.to_string()})
                });
                json!({
                    "clientId": p.client_id,
                    "referenceMerchantId": p.reference_merchant_id.as_deref().unwrap_or(&p.client_id),
                    "merchantName": p.merchant_name,
                    "paymentRequestId": p.payment_request_id,
                    "paymentId": p.payment_id,
                    "productCode": match p.product {
                        crate::state::Product::AgreementPayment => "AGREEMENT_PAYMENT",
                        crate::state::Product::InStorePayment => "IN_STORE_PAYMENT",
                    },
                    "status": p.status.as_str(),
                    "resultCode": p.fail_code,
                    "amount": {"currency": p.currency, "value": p.amount.to_string()},
                    "refunded": {"currency": p.currency, "value": p.refunded.to_string()},
                    "actualAmount": actual,
                    "paymentQuote": quote,
                    "actualRefunded": actual_refunded,
                    "user": p.user,
                    "wallet": p.wallet,
                    "createTime": ams_time(from_ts(p.created)),
                    "paymentTime": p.paid.map(|t| ams_time(from_ts(t))),
                    "cancelTime": p.cancelled.map(|t| ams_time(from_ts(t))),
                    "inquiries": p.inquiries,
                    "moneyMovements": p.money_movements,
                    "reversals": p.reversals,
                })
            })
            .collect();
        let refunds: Vec<Value> = state
            .refunds
            .values()
            .map(|r| {
                json!({
                    "clientId": r.client_id,
                    "refundRequestId": r.refund_request_id,
                    "refundId": r.refund_id,
                    "paymentId": r.payment_id,
                    "status": r.status,
                    "amount": {"currency": r.currency, "value": r.amount.to_string()},
                    "actualAmount": r.actual.as_ref().map(|(c, v)| json!({"currency": c, "value": v.to_string()})),
                    "refundTime": ams_time(from_ts(r.finished.unwrap_or(r.created))),
                    "moneyMovements": r.money_movements,
                })
            })
            .collect();
        json!({ "payments": payments, "refunds": refunds })
    });
    Json(body).into_response()
}

/// `GET /sandbox/v1/sellers`: the sellers registered under each client.
pub(crate) async fn sellers(State(app): State<Arc<App>>) -> Response {
    let mut list: Vec<Value> = app
        .sellers
        .iter()
        .map(|((client_id, rmid), name)| {
            json!({"clientId": client_id, "referenceMerchantId": rmid, "name": name})
        })
        .collect();
    list.sort_by_key(|v| v.to_string());
    Json(json!({ "sellers": list })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultBody {
    /// An endpoint name (`pay`, `refund`, ...) or `notifications`.
    endpoint: String,
    #[serde(default = "one")]
    count: u32,
    /// Calls to let through before the fault fires (calls only).
    #[serde(default)]
    skip: u32,
    #[serde(flatten)]
    fault: Value,
}

fn one() -> u32 {
    1
}

/// `POST /sandbox/v1/faults`: arms a fault for the next `count` calls of `endpoint` (after
/// letting `skip` calls through), or the next `count` notifications.
pub(crate) async fn arm_fault(State(app): State<Arc<App>>, bytes: axum::body::Bytes) -> Response {
    let req: FaultBody = match json_body(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if req.count == 0 {
        return error(StatusCode::BAD_REQUEST, "count must be at least 1");
    }
    if req.endpoint == "notifications" {
        let fault: NotifyFault = match serde_json::from_value(req.fault) {
            Ok(f) => f,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid notification fault: {e}"),
                );
            }
        };
        app.faults.arm_notification(fault, req.count);
    } else {
        let Some(endpoint) = endpoint_by_name(&req.endpoint) else {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown endpoint {:?}", req.endpoint),
            );
        };
        let fault: CallFault = match serde_json::from_value(req.fault) {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid fault: {e}")),
        };
        if let CallFault::HttpError { status, .. } = fault
            && !(500..=599).contains(&status)
        {
            return error(StatusCode::BAD_REQUEST, "http_error status must be 500-599");
        }
        app.faults
            .arm_call_after(endpoint, fault, req.count, req.skip);
    }
    Json(app.faults.list()).into_response()
}

/// `GET /sandbox/v1/faults`: what is armed.
pub(crate) async fn list_faults(State(app): State<Arc<App>>) -> Response {
    Json(app.faults.list()).into_response()
}

/// `DELETE /sandbox/v1/faults`: disarms everything.
pub(crate) async fn clear_faults(State(app): State<Arc<App>>) -> Response {
    app.faults.clear();
    Json(app.faults.list()).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    user: String,
    wallet: String,
    /// Minor units, as a string or number.
    #[serde(default, deserialize_with = "scanbind_ams::flex::opt_string_or_number")]
    balance: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView<'a> {
    user: &'a str,
    wallet: &'a str,
    balance: scanbind_ams::Amount,
}

fn user_view(u: &User) -> Value {
    serde_json::to_value(UserView {
        user: &u.login_id,
        wallet: &u.wallet,
        balance: scanbind_ams::Amount {
            currency: u.currency.clone(),
            value: u.balance.to_string(),
        },
    })
    .unwrap_or_default()
}

/// `POST /sandbox/v1/users`: creates (or resets) a wallet user with a balance.
pub(crate) async fn create_user(State(app): State<Arc<App>>, bytes: axum::body::Bytes) -> Response {
    let req: UserBody = match json_body(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some((_, profile)) = wallets::profile(&req.wallet) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{} is not a Scan to Bind wallet", req.wallet),
        );
    };
    if req.user.is_empty() || req.user.len() > 64 {
        return error(StatusCode::BAD_REQUEST, "user must be 1 to 64 characters");
    }
    let balance = match req.balance.as_deref() {
        None => wallets::default_balance(&profile),
        Some(text) => match scanbind_ams::MinorUnits::parse_wire(text) {
            Ok(m) => m.get(),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("balance: {e}")),
        },
    };
    let user = User {
        login_id: req.user.clone(),
        wallet: req.wallet.clone(),
        currency: profile.currency.code().to_owned(),
        balance,
    };
    let view = user_view(&user);
    app.write(|state, _| {
        state.users.insert(user.login_id.clone(), user);
        ((), true)
    });
    (StatusCode::CREATED, Json(view)).into_response()
}

/// `GET /sandbox/v1/users`: every wallet user and balance.
pub(crate) async fn list_users(State(app): State<Arc<App>>) -> Response {
    let users: Vec<Value> = app
        .store
        .read(|s| s.users.values().map(user_view).collect());
    Json(json!({ "users": users })).into_response()
}

/// `GET /sandbox/v1/notifications`: the delivery log.
pub(crate) async fn notifications(State(app): State<Arc<App>>) -> Response {
    Json(json!({ "notifications": app.notifier.log() })).into_response()
}

fn clock_view(app: &App) -> Value {
    json!({
        "now": ams_time(app.clock.now()),
        "offsetSeconds": app.clock.offset().as_secs(),
    })
}

/// `GET /sandbox/v1/clock`: the sandbox time and its offset from real time.
pub(crate) async fn clock(State(app): State<Arc<App>>) -> Response {
    Json(clock_view(&app)).into_response()
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: u64,
}

/// `POST /sandbox/v1/clock/advance` `{"seconds": N}`: moves the clock forward and applies
/// what became due.
pub(crate) async fn advance_clock(
    State(app): State<Arc<App>>,
    bytes: axum::body::Bytes,
) -> Response {
    let req: AdvanceBody = match json_body(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let now = app.clock.advance(Duration::from_secs(req.seconds));
    let offset = app.clock.offset().as_secs();
    app.write(|state, _| {
        state.clock_offset_secs = offset;
        payments::sweep(state, now);
        ((), true)
    });
    Json(clock_view(&app)).into_response()
}

/// `POST /sandbox/v1/release`: every payment and refund an `in_process` fault (or a
/// magic amount) holds `PROCESSING` becomes final now with its planned outcome
/// ([`payments::release`]); `{"payments": N, "refunds": M}`, how many it released.
pub(crate) async fn release(State(app): State<Arc<App>>) -> Response {
    let now = app.clock.now();
    let (payments, refunds) = app.write(|state, _| {
        let released = payments::release(state, now);
        (released, released != (0, 0))
    });
    Json(json!({ "payments": payments, "refunds": refunds })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReportsQuery {
    date: Option<String>,
    client_id: Option<String>,
}

/// `GET /sandbox/v1/reports?date=YYYY-MM-DD[&clientId=...]`: the day's transaction
/// details, settlement details and settlement summary per settlement currency, as CSV
/// texts (see [`crate::reports`]).
pub(crate) async fn reports(
    State(app): State<Arc<App>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let q: ReportsQuery =
        match serde_json::to_value(url_query_pairs(query.as_deref().unwrap_or_default()))
            .and_then(serde_json::from_value)
        {
            Ok(q) => q,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad query: {e}")),
        };
    let Some(date) = q.date.as_deref().and_then(crate::reports::parse_date) else {
        return error(
            StatusCode::BAD_REQUEST,
            "query parameter date must be YYYY-MM-DD",
        );
    };
    let now = app.clock.now();
    app.write(|state, _| {
        let changed = payments::sweep(state, now);
        (changed, changed)
    });
    let files = app.store.read(|state| {
        crate::reports::generate(state, q.client_id.as_deref(), date, crate::reports::FEE_BPS)
    });
    Json(json!({
        "date": date.to_string(),
        "feeBps": crate::reports::FEE_BPS,
        "files": files,
    }))
    .into_response()
}

/// `a=1&b=2` → `{"a":"1","b":"2"}` (percent-decoded; the last value of a repeated key wins).
fn url_query_pairs(query: &str) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let url = format!("http://x/?{query}");
    if let Ok(u) = reqwest::Url::parse(&url) {
        for (k, v) in u.query_pairs() {
            out.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    out
}
