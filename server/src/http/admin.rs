//! The back office: the operator API under `/admin/v1`.
//!
//! Operators authenticate with `Authorization: Bearer sbk_<key id>_<secret>` (the keys
//! are in [`crate::domain::operators`], re-exported here). Each key has one scope, and
//! scopes are ordered: `read` (search and look) < `refund` (refund, cancel, declare to
//! customs) < `admin` (revoke bindings, issue and revoke enrollment tokens). Every
//! change an operator makes to a payment is written to its history (`steps`, step
//! `operator`) with the key's name and the reason. These routes are served only on the
//! operator listener (`server.admin_listen`), never on the devices' public one.
//! Errors are [`OperatorCode`]s (`{"error":{"code":..,"message":..}}`).

use axum::Json;
use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::header;
use axum::routing::{delete, get, post};
use scanbind_ams::result::ResultStatus;
use scanbind_device_api::types::{
    Amount, PaymentStatus, RefundRequest, RefundStatus, SubscriptionStatus,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::domain::payments::{self, payment_view};
use crate::domain::refunds::{self, refund_period_days, refund_view, refundable, refunds_of};
use crate::domain::{App, bindings, enrollment, plausible_id, subscriptions};
use crate::error::{Error, OperatorCode, Result};
use crate::http::auth::{parse_json, read_body};
use crate::store::payments::SearchFilter;
use crate::store::{self, BindingState, PaymentRow, RefundRow};
use crate::util::{now_ms, rfc3339};

pub use crate::domain::operators::{
    OperatorKey, Scope, authenticate, create_key, list_keys, revoke_key,
};

fn op_err(code: OperatorCode, message: impl Into<String>) -> Error {
    Error::operator(code, message)
}

/// An authenticated operator request with its JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Operator<T> {
    /// The key.
    pub key: OperatorKey,
    /// The body.
    pub body: T,
}

impl<T> Operator<T> {
    /// Refuses unless the key has `scope` (or a higher one).
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.key.scope >= scope {
            Ok(())
        } else {
            Err(op_err(
                OperatorCode::Forbidden,
                format!(
                    "key {} has scope {}; this needs {}",
                    self.key.key_id,
                    self.key.scope.as_str(),
                    scope.as_str()
                ),
            ))
        }
    }
}

/// Marker: the operation takes no body (one sent is ignored).
#[derive(Debug, Clone, Copy)]
pub struct Empty;

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Empty)
    }
}

impl<T: DeserializeOwned + Send> FromRequest<App> for Operator<T> {
    type Rejection = Error;

    async fn from_request(req: Request, app: &App) -> Result<Self> {
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let key = authenticate(&app.db, auth.as_deref()).await?;
        let (_, bytes) = read_body(req)
            .await
            .map_err(|_| op_err(OperatorCode::BodyTooLarge, "the body is larger than 64 KiB"))?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        let body = parse_json::<T>(bytes).map_err(to_operator)?;
        Ok(Operator { key, body })
    }
}

/// A device-API error as a back-office error (the shared codes have the same names).
fn to_operator(e: Error) -> Error {
    match e {
        Error::Api { code, message } => {
            let code = OperatorCode::ALL
                .iter()
                .copied()
                .find(|c| c.as_str() == code.as_str())
                .unwrap_or(OperatorCode::InvalidState);
            op_err(code, message)
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------

/// The `/admin/v1` routes (merged into the operator listener's router).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/admin/v1/keys/me", get(whoami))
        .route("/admin/v1/payments", get(search))
        .route("/admin/v1/payments/{payment_id}", get(show))
        .route("/admin/v1/payments/{payment_id}/refunds", post(refund))
        .route("/admin/v1/payments/{payment_id}/cancel", post(cancel))
        .route(
            "/admin/v1/payments/{payment_id}/declarations",
            post(declare),
        )
        .route("/admin/v1/declarations", get(inquire_declarations))
        .route(
            "/admin/v1/bindings/{binding_id}/revoke",
            post(revoke_binding),
        )
        .route("/admin/v1/subscriptions", get(search_subscriptions))
        .route("/admin/v1/subscriptions/renewals", post(run_renewals))
        .route(
            "/admin/v1/subscriptions/{subscription_id}",
            get(show_subscription),
        )
        .route(
            "/admin/v1/subscriptions/{subscription_id}/cancel",
            post(cancel_subscription),
        )
        .route(
            "/admin/v1/subscriptions/{subscription_id}/periods/{period_index}/refunds",
            post(refund_period),
        )
        .route(
            "/admin/v1/enrollment-tokens",
            post(issue_enrollment_token).get(list_enrollment_tokens),
        )
        .route(
            "/admin/v1/enrollment-tokens/{token_id}",
            delete(revoke_enrollment_token),
        )
}

/// `POST /admin/v1/enrollment-tokens`: the body (optional).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IssueTokenRequest {
    /// Which device it is meant for (1–64 printable characters).
    label: Option<String>,
    /// Expiry, RFC 3339; none: never.
    expires_at: Option<String>,
}

/// Issues a per-device enrollment token (scope admin). The answer carries the token
/// (`token`) this once; only a hash of it is kept.
async fn issue_enrollment_token(
    State(app): State<App>,
    op: Operator<Option<IssueTokenRequest>>,
) -> Result<(axum::http::StatusCode, Json<Value>)> {
    op.require(Scope::Admin)?;
    let (label, expires_at) = match &op.body {
        Some(b) => (
            b.label.as_deref(),
            b.expires_at
                .as_deref()
                .map(|t| parse_rfc3339("expiresAt", t))
                .transpose()?,
        ),
        None => (None, None),
    };
    let (token, secret) = enrollment::issue(&app.db, label, expires_at, &op.key.key_id).await?;
    tracing::info!(token = %token.token_id, operator = %op.key.key_id, "enrollment token issued");
    let mut v = serde_json::to_value(&token).unwrap_or_default();
    v["token"] = json!(secret);
    Ok((axum::http::StatusCode::CREATED, Json(v)))
}

/// Lists the enrollment tokens, never their secrets (scope read).
async fn list_enrollment_tokens(
    State(app): State<App>,
    op: Operator<Empty>,
) -> Result<Json<Value>> {
    op.require(Scope::Read)?;
    let tokens = enrollment::list(&app.db).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

/// Revokes an enrollment token (scope admin; idempotent). A device that already
/// enrolled with it stays registered.
async fn revoke_enrollment_token(
    State(app): State<App>,
    Path(token_id): Path<String>,
    op: Operator<Empty>,
) -> Result<Json<enrollment::EnrollmentToken>> {
    op.require(Scope::Admin)?;
    let token = enrollment::revoke(&app.db, &token_id).await?;
    tracing::info!(token = %token.token_id, operator = %op.key.key_id, "enrollment token revoked");
    Ok(Json(token))
}

async fn whoami(op: Operator<Empty>) -> Json<OperatorKey> {
    Json(op.key)
}

fn query_map(
    q: std::result::Result<
        Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<HashMap<String, String>> {
    q.map(|Query(m)| m)
        .map_err(|e| op_err(OperatorCode::BadRequest, format!("bad query string: {e}")))
}

fn parse_rfc3339(name: &str, text: &str) -> Result<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            op_err(
                OperatorCode::BadRequest,
                format!("{name}: expected an RFC 3339 time, got {text:?} ({e})"),
            )
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| op_err(OperatorCode::BadRequest, format!("{name}: out of range")))
}

/// When the payment first succeeded (Unix ms), from its history.
pub async fn paid_at(app: &App, payment_id: &str) -> Result<Option<i64>> {
    Ok(store::steps::paid_at(&app.db, payment_id).await?)
}

async fn admin_payment(app: &App, p: &PaymentRow) -> Result<Value> {
    let mut v = serde_json::to_value(payment_view(p)).unwrap_or_default();
    v["deviceId"] = json!(p.device_id);
    v["wallet"] = json!(p.wallet);
    v["refundable"] = json!({"currency": p.currency, "value": refundable(app, p).await?});
    if let Some(t) = paid_at(app, &p.payment_id).await? {
        v["paidAt"] = json!(rfc3339(t));
    }
    Ok(v)
}

async fn load_payment(app: &App, payment_id: &str) -> Result<PaymentRow> {
    let missing = || op_err(OperatorCode::NotFound, format!("no payment {payment_id:?}"));
    if !plausible_id(payment_id) {
        return Err(missing());
    }
    payments::load_payment(app, payment_id)
        .await?
        .ok_or_else(missing)
}

async fn search(
    State(app): State<App>,
    q: std::result::Result<
        Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    op: Operator<Empty>,
) -> Result<Json<Value>> {
    op.require(Scope::Read)?;
    let q = query_map(q)?;
    let mut filter = SearchFilter::default();
    for (name, column) in [
        ("deviceId", "device_id"),
        ("appId", "app_id"),
        ("appOrderId", "app_order_id"),
        ("bindingId", "binding_id"),
        ("wallet", "wallet"),
        ("amsPaymentId", "ams_payment_id"),
        ("paymentRequestId", "payment_request_id"),
    ] {
        if let Some(v) = q.get(name) {
            if v.is_empty() || v.len() > 128 {
                return Err(op_err(
                    OperatorCode::BadRequest,
                    format!("{name}: 1 to 128 characters"),
                ));
            }
            filter.equal.push((column, v.clone()));
        }
    }
    if let Some(s) = q.get("status") {
        let Some(status) = PaymentStatus::parse(s) else {
            return Err(op_err(
                OperatorCode::BadRequest,
                format!("status: expected pending, succeeded, failed or cancelled, got {s:?}"),
            ));
        };
        filter.status = Some(status);
    }
    if let Some(t) = q.get("from") {
        filter.from = Some(parse_rfc3339("from", t)?);
    }
    if let Some(t) = q.get("to") {
        filter.to = Some(parse_rfc3339("to", t)?);
    }
    filter.limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| op_err(OperatorCode::BadRequest, "limit: 1 to 1000"))?,
    };
    for k in q.keys() {
        if ![
            "deviceId",
            "appId",
            "appOrderId",
            "bindingId",
            "wallet",
            "amsPaymentId",
            "paymentRequestId",
            "status",
            "from",
            "to",
            "limit",
        ]
        .contains(&k.as_str())
        {
            return Err(op_err(
                OperatorCode::BadRequest,
                format!("unknown query parameter {k:?}"),
            ));
        }
    }
    let mut out = Vec::new();
    for p in &store::payments::search(&app.db, &filter).await? {
        out.push(admin_payment(&app, p).await?);
    }
    Ok(Json(json!({ "payments": out })))
}

/// The full history of a payment: AMS calls and other steps (its own, its refunds' and
/// its declarations'), notifications received, device events, operator actions.
async fn history(app: &App, p: &PaymentRow, refunds: &[RefundRow]) -> Result<Vec<Value>> {
    let mut subjects = vec![p.payment_id.clone()];
    subjects.extend(refunds.iter().map(|r| r.refund_request_id.clone()));
    for d in crate::domain::customs::of_payment(app, &p.payment_id).await? {
        subjects.push(d.declaration_request_id);
    }
    let mut out: Vec<(i64, i64, Value)> = Vec::new();
    for s in &subjects {
        for r in store::steps::of_subject(&app.db, s).await? {
            let source = if r.step == "operator" {
                "operator"
            } else {
                "step"
            };
            out.push((
                r.at,
                r.id,
                json!({"at": rfc3339(r.at), "source": source, "subject": s, "step": r.step, "outcome": r.outcome}),
            ));
        }
    }
    let mut keys: Vec<String> = Vec::new();
    keys.extend(p.ams_payment_id.clone());
    keys.extend(refunds.iter().filter_map(|r| r.ams_refund_id.clone()));
    for k in keys {
        for r in store::notifications::about(&app.db, &k).await? {
            let at = r.received_at;
            out.push((
                at,
                0,
                json!({"at": rfc3339(at), "source": "notification", "subject": k, "step": r.kind, "outcome": r.dedup_key}),
            ));
        }
    }
    for r in store::events::naming_payment(&app.db, &p.device_id, &p.payment_id).await? {
        let (at, seq) = (r.created_at, r.seq);
        out.push((
            at,
            seq,
            json!({"at": rfc3339(at), "source": "event", "subject": p.device_id, "step": r.kind, "outcome": format!("seq {seq}")}),
        ));
    }
    out.sort_by_key(|(at, id, _)| (*at, *id));
    Ok(out.into_iter().map(|(_, _, v)| v).collect())
}

fn admin_refund(r: &RefundRow) -> Value {
    let mut v = serde_json::to_value(refund_view(r)).unwrap_or_default();
    if let Some(reason) = &r.reason {
        v["reason"] = json!(reason);
    }
    v
}

async fn show(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    op: Operator<Empty>,
) -> Result<Json<Value>> {
    op.require(Scope::Read)?;
    let p = load_payment(&app, &payment_id).await?;
    let refunds = refunds_of(&app, &p.payment_id).await?;
    let declarations = crate::domain::customs::of_payment(&app, &p.payment_id).await?;
    Ok(Json(json!({
        "payment": admin_payment(&app, &p).await?,
        "refunds": refunds.iter().map(admin_refund).collect::<Vec<_>>(),
        "declarations": declarations,
        "history": history(&app, &p, &refunds).await?,
    })))
}

/// `POST /admin/v1/payments/{id}/refunds` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorRefundRequest {
    /// The operator's refund id (idempotency key per payment), 1–64 characters.
    pub refund_id: String,
    /// Amount, in the payment's currency.
    pub amount: Amount,
    /// Why (required), 1–256 characters.
    pub reason: String,
}

async fn record(app: &App, subject: &str, key: &OperatorKey, what: &str) -> Result<()> {
    let text: String = format!("{} ({}): {what}", key.name, key.key_id)
        .chars()
        .take(512)
        .collect();
    Ok(app.db.step(subject, "operator", &text, now_ms()).await?)
}

fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() || reason.chars().count() > 256 {
        return Err(op_err(
            OperatorCode::BadRequest,
            "reason: 1 to 256 characters",
        ));
    }
    Ok(())
}

async fn refund(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    op: Operator<OperatorRefundRequest>,
) -> Result<Json<Value>> {
    op.require(Scope::Refund)?;
    let p = load_payment(&app, &payment_id).await?;
    let req = &op.body;
    check_reason(&req.reason)?;
    if !plausible_id(&req.refund_id) {
        return Err(op_err(
            OperatorCode::BadRequest,
            "refundId: 1 to 64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    let pid = &p.payment_id;
    let rrid = crate::util::refund_request_id(pid, &req.refund_id);
    let existing = refunds::load_refund(&app, &rrid).await?;
    if existing.is_none() {
        // Everything is checked before anything is written or sent.
        if p.status != PaymentStatus::Succeeded {
            return Err(op_err(
                OperatorCode::InvalidState,
                format!(
                    "payment {pid} is {}: only a succeeded payment can be refunded",
                    p.status.as_str()
                ),
            ));
        }
        if req.amount.currency != p.currency {
            return Err(op_err(
                OperatorCode::AmountInvalid,
                format!(
                    "payment {pid} was paid in {}; a refund in {:?} is not possible",
                    p.currency, req.amount.currency
                ),
            ));
        }
        if req.amount.value <= 0 {
            return Err(op_err(
                OperatorCode::AmountInvalid,
                format!("refund {}: the amount must be positive", req.refund_id),
            ));
        }
        let left = refundable(&app, &p).await?;
        if req.amount.value > left {
            return Err(op_err(
                OperatorCode::AmountInvalid,
                format!(
                    "payment {pid}: {} {} is more than the {left} {} still refundable (paid {}, already refunded or in progress {})",
                    req.amount.value,
                    p.currency,
                    p.currency,
                    p.amount,
                    p.amount - left
                ),
            ));
        }
        let period = refund_period_days(&p.wallet);
        if let Some(paid) = paid_at(&app, pid).await?
            && now_ms() - paid > period * 86_400_000
        {
            return Err(op_err(
                OperatorCode::RefundPeriodExceeded,
                format!(
                    "payment {pid} was paid {}; the {} wallet's refund period is {period} days",
                    rfc3339(paid),
                    p.wallet
                ),
            ));
        }
    }
    let device_req = RefundRequest {
        refund_id: req.refund_id.clone(),
        amount: req.amount.clone(),
        reason: Some(req.reason.clone()),
    };
    let r = refunds::refund(&app, &p, &device_req)
        .await
        .map_err(to_operator)?;
    if existing.is_none() {
        record(
            &app,
            pid,
            &op.key,
            &format!(
                "refund {} of {} {}: {}",
                req.refund_id, req.amount.value, p.currency, req.reason
            ),
        )
        .await?;
    }
    if r.status == RefundStatus::Failed {
        let code = r.result_code.clone().unwrap_or_default();
        let (c, hint) = match code.as_str() {
            "REFUND_WINDOW_EXCEED" => (
                OperatorCode::RefundPeriodExceeded,
                "the wallet's refund period has passed",
            ),
            "REFUND_AMOUNT_EXCEED" => (
                OperatorCode::AmountInvalid,
                "Alipay counts more refunded than this server",
            ),
            _ => (OperatorCode::PaymentRejected, "Alipay refused the refund"),
        };
        return Err(op_err(
            c,
            format!("refund {} of payment {pid}: {hint} ({code})", req.refund_id),
        ));
    }
    Ok(Json(admin_refund(&r)))
}

/// `POST /admin/v1/payments/{id}/cancel` and `/admin/v1/bindings/{id}/revoke` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why (required), 1–256 characters.
    pub reason: String,
}

async fn cancel(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    op: Operator<ReasonRequest>,
) -> Result<Json<Value>> {
    op.require(Scope::Refund)?;
    check_reason(&op.body.reason)?;
    let p = load_payment(&app, &payment_id).await?;
    let pid = &p.payment_id;
    match p.status {
        PaymentStatus::Cancelled => return Ok(Json(admin_payment(&app, &p).await?)),
        PaymentStatus::Failed => {
            return Err(op_err(
                OperatorCode::InvalidState,
                format!("payment {pid} failed: there is nothing to cancel"),
            ));
        }
        _ => {}
    }
    let resp = crate::domain::ams_call(
        &app,
        &scanbind_ams::model::CancelRequest::by_payment_request_id(&p.payment_request_id),
    )
    .await?;
    let outcome = format!(
        "{}/{}",
        resp.result.result_status,
        resp.result.result_code.as_str()
    );
    app.db.step(pid, "cancel", &outcome, now_ms()).await?;
    match resp.result.result_status {
        ResultStatus::S => {
            payments::transition_payment(
                &app,
                pid,
                p.status,
                PaymentStatus::Cancelled,
                Some("CANCELLED"),
                Some("cancelled by the operator"),
                resp.payment_id.as_deref(),
            )
            .await?;
            record(&app, pid, &op.key, &format!("cancel: {}", op.body.reason)).await?;
        }
        ResultStatus::F if resp.result.result_code.as_str() == "CANCEL_WINDOW_EXCEED" => {
            return Err(op_err(
                OperatorCode::CancelWindowExceeded,
                format!(
                    "payment {pid}: the cancel window has passed; refund instead (POST /admin/v1/payments/{pid}/refunds)"
                ),
            ));
        }
        ResultStatus::F => {
            return Err(op_err(
                OperatorCode::PaymentRejected,
                format!(
                    "payment {pid}: Alipay refused the cancel ({})",
                    resp.result.result_code.as_str()
                ),
            ));
        }
        _ => {
            return Err(op_err(
                OperatorCode::UpstreamUnavailable,
                format!("payment {pid}: Alipay did not answer the cancel; retry"),
            ));
        }
    }
    let p = load_payment(&app, pid).await?;
    Ok(Json(admin_payment(&app, &p).await?))
}

async fn revoke_binding(
    State(app): State<App>,
    Path(binding_id): Path<String>,
    op: Operator<ReasonRequest>,
) -> Result<Json<Value>> {
    op.require(Scope::Admin)?;
    check_reason(&op.body.reason)?;
    let missing = || op_err(OperatorCode::NotFound, format!("no binding {binding_id:?}"));
    if !plausible_id(&binding_id) {
        return Err(missing());
    }
    let b = bindings::load_binding(&app, &binding_id)
        .await?
        .ok_or_else(missing)?;
    match b.status {
        BindingState::Active => {
            // The server holds tokens only until the device first uses them. While it
            // still does, the token is revoked at Alipay too; otherwise the binding is
            // refused here from now on and the device is told (token.cancelled).
            if let Some(blob) = b.sealed_pending.clone()
                && let Ok(tokens) = app.sealer.open(&b.device_id, &b.binding_id, &blob)
            {
                let req = scanbind_ams::model::RevokeRequest::new(tokens.access_token.clone());
                let outcome = match crate::domain::ams_call(&app, &req).await {
                    Ok(r) => format!(
                        "{}/{}",
                        r.result.result_status,
                        r.result.result_code.as_str()
                    ),
                    Err(e) => format!("no answer: {e}"),
                };
                app.db
                    .step(&b.binding_id, "revoke", &outcome, now_ms())
                    .await?;
            }
            bindings::set_binding_final(
                &app,
                &b,
                BindingState::Revoked,
                &format!("revoked by the operator: {}", op.body.reason),
            )
            .await?;
            crate::domain::subscriptions::binding_ended(
                &app,
                &b.binding_id,
                "the binding was revoked by the operator",
            )
            .await?;
            record(
                &app,
                &b.binding_id,
                &op.key,
                &format!("revoke: {}", op.body.reason),
            )
            .await?;
        }
        BindingState::Revoked | BindingState::Cancelled => {}
        other => {
            return Err(op_err(
                OperatorCode::InvalidState,
                format!("binding {binding_id} is {other}: only an active binding can be revoked"),
            ));
        }
    }
    let b = bindings::load_binding(&app, &binding_id)
        .await?
        .ok_or_else(missing)?;
    let mut v = serde_json::to_value(bindings::binding_view(&b)).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("sealedTokens");
    }
    v["deviceId"] = json!(b.device_id);
    Ok(Json(v))
}

async fn declare(
    State(app): State<App>,
    Path(payment_id): Path<String>,
    op: Operator<crate::domain::customs::DeclareBody>,
) -> Result<Json<crate::domain::customs::Declaration>> {
    op.require(Scope::Refund)?;
    let p = load_payment(&app, &payment_id).await?;
    let d = crate::domain::customs::declare(&app, &p, &op.body, &op.key.name).await?;
    Ok(Json(d))
}

async fn inquire_declarations(
    State(app): State<App>,
    q: std::result::Result<
        Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    op: Operator<Empty>,
) -> Result<Json<Value>> {
    op.require(Scope::Read)?;
    let q = query_map(q)?;
    let ids: Vec<String> = q
        .get("ids")
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let (found, not_found) = crate::domain::customs::inquire(&app, &ids).await?;
    Ok(Json(json!({"declarations": found, "notFound": not_found})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/operator.md` documents every operator error code and the report layout the
    /// reconciler reads.
    #[test]
    fn operator_doc_covers_codes_and_report_columns() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operator.md"))
                .unwrap();
        for code in OperatorCode::ALL {
            assert!(
                doc.contains(&format!("| `{}` | {} |", code.as_str(), code.http_status())),
                "docs/operator.md lacks error code {code}"
            );
        }
        for cols in [
            crate::domain::reconcile::TRANSACTION_DETAILS_COLUMNS,
            crate::domain::reconcile::SETTLEMENT_DETAILS_COLUMNS,
            crate::domain::reconcile::SETTLEMENT_SUMMARY_COLUMNS,
        ] {
            assert!(
                doc.contains(&format!("`{}`", cols.join(","))),
                "docs/operator.md lacks the columns {cols:?}"
            );
        }
        for c in crate::domain::customs::CUSTOMS_CODES {
            assert!(
                doc.contains(&format!("`{c}`")),
                "docs/operator.md lacks {c}"
            );
        }
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(Scope::Read < Scope::Refund && Scope::Refund < Scope::Admin);
        for s in [Scope::Read, Scope::Refund, Scope::Admin] {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("root"), None);
    }
}

// ---------------------------------------------------------------------------------------
// Subscriptions (issue 27)
// ---------------------------------------------------------------------------------------

async fn load_subscription(
    app: &App,
    subscription_id: &str,
) -> Result<crate::store::subscriptions::SubscriptionRow> {
    let not_found = || {
        op_err(
            OperatorCode::NotFound,
            format!("no subscription {subscription_id}"),
        )
    };
    if !plausible_id(subscription_id) {
        return Err(not_found());
    }
    subscriptions::load(app, subscription_id)
        .await?
        .ok_or_else(not_found)
}

/// `GET /admin/v1/subscriptions` query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubscriptionQuery {
    device_id: Option<String>,
    app_id: Option<String>,
    binding_id: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

/// Subscriptions, oldest first (scope read).
async fn search_subscriptions(
    State(app): State<App>,
    q: std::result::Result<Query<SubscriptionQuery>, axum::extract::rejection::QueryRejection>,
    op: Operator<Empty>,
) -> Result<Json<Value>> {
    op.require(Scope::Read)?;
    let Query(q) = q.map_err(|e| op_err(OperatorCode::BadRequest, e.body_text()))?;
    let status = match q.status.as_deref() {
        None => None,
        Some(t) => Some(SubscriptionStatus::parse(t).ok_or_else(|| {
            op_err(
                OperatorCode::BadRequest,
                "status: pending, trial, active, grace, cancelled or expired",
            )
        })?),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(op_err(OperatorCode::BadRequest, "limit: 1 to 1000"));
    }
    let rows = subscriptions::search(
        &app,
        &crate::store::subscriptions::ListFilter {
            device_id: q.device_id.as_deref(),
            app_id: q.app_id.as_deref(),
            binding_id: q.binding_id.as_deref(),
            status,
        },
        limit,
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for s in &rows {
        out.push(subscriptions::admin_view(&app, s).await?);
    }
    Ok(Json(json!({ "subscriptions": out })))
}

/// One subscription with its charges (scope read).
async fn show_subscription(
    State(app): State<App>,
    Path(subscription_id): Path<String>,
    op: Operator<Empty>,
) -> Result<Json<Value>> {
    op.require(Scope::Read)?;
    let s = load_subscription(&app, &subscription_id).await?;
    Ok(Json(subscriptions::admin_view(&app, &s).await?))
}

/// Cancels a subscription (scope refund): no more charges, access until the period's
/// end. Cancelling a cancelled one changes nothing; an expired one is `invalid_state`.
async fn cancel_subscription(
    State(app): State<App>,
    Path(subscription_id): Path<String>,
    op: Operator<ReasonRequest>,
) -> Result<Json<Value>> {
    op.require(Scope::Refund)?;
    check_reason(&op.body.reason)?;
    let s = load_subscription(&app, &subscription_id).await?;
    if s.status == SubscriptionStatus::Expired {
        return Err(op_err(
            OperatorCode::InvalidState,
            format!("subscription {subscription_id} has expired: there is nothing to cancel"),
        ));
    }
    let now = subscriptions::billing_now(&app)
        .await
        .unwrap_or_else(|_| now_ms());
    if subscriptions::end(
        &app,
        &s.subscription_id,
        SubscriptionStatus::Cancelled,
        &format!("cancelled by the operator: {}", op.body.reason),
        now,
    )
    .await?
    {
        record(
            &app,
            &s.subscription_id,
            &op.key,
            &format!("cancel: {}", op.body.reason),
        )
        .await?;
    }
    let s = load_subscription(&app, &subscription_id).await?;
    Ok(Json(subscriptions::admin_view(&app, &s).await?))
}

/// `POST /admin/v1/subscriptions/{id}/periods/{k}/refunds` body: as a payment refund,
/// the amount optional (default: what is still refundable of that period's charge).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PeriodRefundRequest {
    refund_id: String,
    amount: Option<Amount>,
    reason: String,
}

/// Refunds period `k` of a subscription (scope refund): the refund path of the period's
/// paid charge (`POST /admin/v1/payments/{paymentId}/refunds`), same checks and answer.
async fn refund_period(
    State(app): State<App>,
    Path((subscription_id, period_index)): Path<(String, String)>,
    op: Operator<PeriodRefundRequest>,
) -> Result<Json<Value>> {
    op.require(Scope::Refund)?;
    let s = load_subscription(&app, &subscription_id).await?;
    let k: i64 = period_index
        .parse()
        .ok()
        .filter(|k| (0..=100_000).contains(k))
        .ok_or_else(|| op_err(OperatorCode::BadRequest, "period index: a number from 0"))?;
    let p = subscriptions::paid_charge(&app, &s, k)
        .await?
        .ok_or_else(|| {
            op_err(
                OperatorCode::InvalidState,
                format!("subscription {subscription_id}: period {k} was not paid"),
            )
        })?;
    let amount = match op.body.amount.clone() {
        Some(a) => a,
        None => Amount {
            currency: p.currency.clone(),
            value: refundable(&app, &p).await?,
        },
    };
    let body = OperatorRefundRequest {
        refund_id: op.body.refund_id.clone(),
        amount,
        reason: op.body.reason.clone(),
    };
    let out = refund(
        State(app.clone()),
        Path(p.payment_id.clone()),
        Operator {
            key: op.key.clone(),
            body,
        },
    )
    .await?;
    record(
        &app,
        &s.subscription_id,
        &op.key,
        &format!(
            "refund of period {k} (payment {}): {}",
            p.payment_id, op.body.reason
        ),
    )
    .await?;
    Ok(out)
}

/// Runs a renewal pass now and answers when it is done (scope admin): what
/// `subscriptions.automatic` does by itself, for tests and for operators who run
/// renewals on their own schedule.
async fn run_renewals(State(app): State<App>, op: Operator<Empty>) -> Result<Json<Value>> {
    op.require(Scope::Admin)?;
    let summary = subscriptions::run_renewals(&app).await?;
    Ok(Json(serde_json::to_value(summary).unwrap_or(Value::Null)))
}
