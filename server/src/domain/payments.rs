//! What the device API and the notification intake do: bindings, payments, refunds.
//! Every state change is one conditional `UPDATE ... WHERE status = 'pending'`, so a
//! result reached twice (pay answer and notification, two replicas, a retried
//! notification) is applied, receipted and announced exactly once.

use std::time::Instant;

use scanbind_ams::model::{
    AmsRequest, AmsResponse, ApplyTokenRequest, ConsultRequest, Order, PayRequest, SecretString,
};
use scanbind_ams::money::{Currency, Money};
use scanbind_ams::result::ResultStatus;
use scanbind_ams::wallet::Wallet;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::receipt::{Receipt, ReceiptKind};
use scanbind_device_api::types::{
    Amount, Binding, BindingStatus, Event, OrderCode, Payment, PaymentProduct, PaymentStatus,
    Refund, RefundStatus,
};
use sqlx::Row;
use tracing::{info, warn};

use crate::domain::App;
use crate::domain::seal::{TokenSet, token_fingerprint};
use crate::error::{Error, Result};
use crate::store::{
    BINDING_COLUMNS, BindingRow, PAYMENT_COLUMNS, PaymentRow, REFUND_COLUMNS, RefundRow,
};
use crate::util::{ams_datetime, new_id, now_ms, rfc3339};

/// Calls AMS, recording latency for `/metrics`.
pub async fn ams_call<R: AmsRequest>(
    app: &App,
    req: &R,
) -> Result<R::Response, scanbind_ams::Error> {
    let started = Instant::now();
    let out = app.ams.call(req).await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    app.metrics.ams_call(R::ENDPOINT.path(), ms, out.is_err());
    out
}

// ---------------------------------------------------------------------------------------
// Bindings
// ---------------------------------------------------------------------------------------

/// The device view of a binding row.
pub fn binding_view(row: &BindingRow) -> Binding {
    let status = match row.status.as_str() {
        "exchanging" => BindingStatus::Pending,
        s => BindingStatus::parse(s).unwrap_or(BindingStatus::Failed),
    };
    Binding {
        binding_id: row.binding_id.clone(),
        wallet: row.wallet.clone(),
        status,
        user_login_id: row.user_login_id.clone(),
        access_token_expires_at: row.access_token_expires_at.clone(),
        refresh_token_expires_at: row.refresh_token_expires_at.clone(),
        sealed_tokens: row.sealed_pending.clone(),
        reason: row.reason.clone(),
        created_at: rfc3339(row.created_at),
    }
}

/// Loads a binding by id.
pub async fn load_binding(app: &App, binding_id: &str) -> Result<Option<BindingRow>> {
    let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE binding_id = $1");
    let row = sqlx::query(&sql)
        .bind(binding_id)
        .fetch_optional(app.db.pool())
        .await?;
    row.as_ref().map(BindingRow::from_row).transpose()
}

/// True for an id the server could have made (`[A-Za-z0-9_-]`, 1–64 characters); any
/// other id is simply not found (and never reaches the database).
pub fn plausible_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Loads a binding owned by `device_id` or answers `not_found`.
pub async fn device_binding(app: &App, device_id: &str, binding_id: &str) -> Result<BindingRow> {
    if !plausible_id(binding_id) {
        return Err(Error::api(
            ErrorCode::NotFound,
            "no such binding on this device",
        ));
    }
    match load_binding(app, binding_id).await? {
        Some(b) if b.device_id == device_id => Ok(b),
        _ => Err(Error::api(
            ErrorCode::NotFound,
            "no such binding on this device",
        )),
    }
}

/// The Scan to Bind wallet named by `text`.
pub fn scan_to_bind_wallet(text: &str) -> Result<(Wallet, Currency)> {
    let wallet = Wallet::parse(text);
    match wallet.scan_to_bind() {
        Some(p) => Ok((wallet, p.currency)),
        None => Err(Error::api(
            ErrorCode::WalletUnsupported,
            format!("{text:?} is not a Scan to Bind wallet"),
        )),
    }
}

/// Starts a binding: AMS consult with a fresh authState.
pub async fn start_binding(
    app: &App,
    device_id: &str,
    device_name: &str,
    wallet_text: &str,
) -> Result<(BindingRow, String)> {
    let (wallet, _) = scan_to_bind_wallet(wallet_text)?;
    let binding_id = new_id("bnd");
    let auth_state = new_id("as");
    let match_code = crate::util::match_code();
    let mut req = ConsultRequest::scan_to_bind(
        wallet.clone(),
        auth_state.clone(),
        format!("{}/v1/bindings/return", app.public_base_url),
        app.notify_url("authorization"),
    );
    req.extend_info =
        Some(serde_json::json!({"deviceName": device_name, "matchCode": match_code}).to_string());
    let resp = ams_call(app, &req).await?;
    let result = resp.result();
    if result.result_status != ResultStatus::S {
        return Err(match result.result_status {
            ResultStatus::F => Error::api(
                ErrorCode::PaymentRejected,
                format!(
                    "Alipay refused the binding: {}",
                    result.result_code.as_str()
                ),
            ),
            _ => Error::api(
                ErrorCode::UpstreamUnavailable,
                "Alipay did not answer; start again",
            ),
        });
    }
    let code_value = resp
        .auth_code_form
        .as_ref()
        .and_then(|f| f.qr_text())
        .map(str::to_owned)
        .or_else(|| resp.normal_url.clone())
        .ok_or_else(|| Error::api(ErrorCode::UpstreamUnavailable, "Alipay returned no QR code"))?;
    let now = now_ms();
    let expires = now + app.config.payments.binding_ttl_seconds * 1000;
    sqlx::query(
        "INSERT INTO bindings (binding_id, device_id, wallet, auth_state, status, match_code, code_value, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $8)",
    )
    .bind(&binding_id)
    .bind(device_id)
    .bind(wallet.as_str())
    .bind(&auth_state)
    .bind(&match_code)
    .bind(&code_value)
    .bind(expires)
    .bind(now)
    .execute(app.db.pool())
    .await?;
    app.engine_wake.notify_one();
    let row = load_binding(app, &binding_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "binding vanished"))?;
    Ok((row, code_value))
}

/// `AUTHCODE_CREATED`: exchange the code for tokens, seal them, tell the device.
/// Returns `Err` only when the outcome is unknown (the notification is then not
/// acknowledged, so Alipay sends it again).
pub async fn authcode_created(
    app: &App,
    auth_state: &str,
    auth_code: &SecretString,
    login_id: Option<&str>,
) -> Result<()> {
    let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE auth_state = $1");
    let Some(row) = sqlx::query(&sql)
        .bind(auth_state)
        .fetch_optional(app.db.pool())
        .await?
    else {
        warn!("AUTHCODE_CREATED for an unknown authState; ignored");
        return Ok(());
    };
    let binding = BindingRow::from_row(&row)?;
    let now = now_ms();
    let claimed = sqlx::query(
        "UPDATE bindings SET status = 'exchanging', updated_at = $2 WHERE binding_id = $1 AND status = 'pending'",
    )
    .bind(&binding.binding_id)
    .bind(now)
    .execute(app.db.pool())
    .await?;
    if claimed.rows_affected() == 0 {
        info!(binding = %binding.binding_id, status = %binding.status, "authorization already handled");
        return Ok(());
    }
    let wallet = Wallet::parse(&binding.wallet);
    let req = ApplyTokenRequest::authorization_code(wallet, auth_code.clone());
    let resp = match ams_call(app, &req).await {
        Ok(r)
            if r.result.result_status == ResultStatus::S
                || r.result.result_status == ResultStatus::F =>
        {
            r
        }
        other => {
            // Unknown: give the binding back so the resent notification can try again.
            sqlx::query("UPDATE bindings SET status = 'pending' WHERE binding_id = $1 AND status = 'exchanging'")
                .bind(&binding.binding_id)
                .execute(app.db.pool())
                .await?;
            return match other {
                Err(e) => Err(e.into()),
                Ok(_) => Err(Error::api(
                    ErrorCode::UpstreamUnavailable,
                    "applyToken answered U",
                )),
            };
        }
    };
    let access = resp.access_token.clone().filter(|t| !t.expose().is_empty());
    let (status, event) = match (resp.result.result_status == ResultStatus::S, access) {
        (true, Some(access)) => {
            let tokens = TokenSet {
                access_token: access.clone(),
                refresh_token: resp.refresh_token.clone(),
            };
            let blob = app
                .sealer
                .seal(&binding.device_id, &binding.binding_id, &tokens)?;
            sqlx::query(
                "UPDATE bindings SET status = 'active', token_fingerprint = $2, user_login_id = $3, access_token_expires_at = $4, \
                 refresh_token_expires_at = $5, sealed_pending = $6, updated_at = $7 WHERE binding_id = $1 AND status = 'exchanging'",
            )
            .bind(&binding.binding_id)
            .bind(token_fingerprint(access.expose()))
            .bind(resp.user_login_id.as_deref().or(login_id))
            .bind(resp.access_token_expiry_time.as_deref())
            .bind(resp.refresh_token_expiry_time.as_deref())
            .bind(&blob)
            .bind(now_ms())
            .execute(app.db.pool())
            .await?;
            ("active", "completed")
        }
        _ => {
            sqlx::query(
                "UPDATE bindings SET status = 'failed', reason = $2, updated_at = $3 WHERE binding_id = $1 AND status = 'exchanging'",
            )
            .bind(&binding.binding_id)
            .bind(format!("applyToken: {}", resp.result.result_code.as_str()))
            .bind(now_ms())
            .execute(app.db.pool())
            .await?;
            ("failed", "failed")
        }
    };
    let row = load_binding(app, &binding.binding_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "binding vanished"))?;
    let view = binding_view(&row);
    let ev = if event == "completed" {
        Event::BindingCompleted(view)
    } else {
        Event::BindingFailed(view)
    };
    app.hub.emit(&binding.device_id, &ev).await?;
    info!(binding = %binding.binding_id, status, "binding finished");
    Ok(())
}

/// `TOKEN_CANCELED`: the user unbound in the wallet app.
pub async fn token_canceled(app: &App, access_token: &str, reason: Option<&str>) -> Result<()> {
    let fp = token_fingerprint(access_token);
    let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE token_fingerprint = $1");
    let Some(row) = sqlx::query(&sql)
        .bind(&fp)
        .fetch_optional(app.db.pool())
        .await?
    else {
        return Ok(());
    };
    let b = BindingRow::from_row(&row)?;
    set_binding_final(
        app,
        &b,
        "cancelled",
        reason.unwrap_or("unbound in the wallet app"),
    )
    .await
}

/// Moves an active or pending binding to a final status and tells the device.
pub async fn set_binding_final(
    app: &App,
    b: &BindingRow,
    status: &str,
    reason: &str,
) -> Result<()> {
    let from = if status == "expired" {
        "'pending'"
    } else {
        "'active'"
    };
    let sql = format!(
        "UPDATE bindings SET status = $2, reason = $3, sealed_pending = NULL, updated_at = $4 WHERE binding_id = $1 AND status = {from}"
    );
    let done = sqlx::query(&sql)
        .bind(&b.binding_id)
        .bind(status)
        .bind(reason)
        .bind(now_ms())
        .execute(app.db.pool())
        .await?;
    if done.rows_affected() == 1 {
        let row = load_binding(app, &b.binding_id)
            .await?
            .ok_or_else(|| Error::api(ErrorCode::Internal, "binding vanished"))?;
        let view = binding_view(&row);
        let ev = match status {
            "expired" => Event::BindingExpired(view),
            "cancelled" => Event::TokenCancelled(view),
            _ => Event::TokenCancelled(view),
        };
        app.hub.emit(&b.device_id, &ev).await?;
    }
    Ok(())
}

/// Opens the device's sealed tokens for an active binding, and forgets the pending copy
/// once the device has shown it holds it.
pub async fn open_tokens(app: &App, b: &BindingRow, blob: &str) -> Result<TokenSet> {
    let tokens = app.sealer.open(&b.device_id, &b.binding_id, blob)?;
    if b.status != "active" {
        return Err(Error::api(
            ErrorCode::InvalidState,
            format!("the binding is {}", b.status),
        ));
    }
    if b.sealed_pending.as_deref() == Some(blob) {
        sqlx::query("UPDATE bindings SET sealed_pending = NULL WHERE binding_id = $1 AND sealed_pending = $2")
            .bind(&b.binding_id)
            .bind(blob)
            .execute(app.db.pool())
            .await?;
    }
    Ok(tokens)
}

/// Refreshes tokens (`REFRESH_TOKEN` grant) and returns the binding with the new blob.
pub async fn refresh_tokens(app: &App, b: &BindingRow, blob: &str) -> Result<Binding> {
    let tokens = open_tokens(app, b, blob).await?;
    let refresh = tokens.refresh_token.clone().ok_or_else(|| {
        Error::api(
            ErrorCode::InvalidState,
            "the wallet issued no refresh token",
        )
    })?;
    let req = ApplyTokenRequest::refresh(Wallet::parse(&b.wallet), refresh);
    let resp = ams_call(app, &req).await?;
    match resp.result.result_status {
        ResultStatus::S => {}
        ResultStatus::F => {
            return Err(Error::api(
                ErrorCode::PaymentRejected,
                format!(
                    "Alipay refused the refresh: {}",
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
    let access = resp.access_token.clone().ok_or_else(|| {
        Error::api(
            ErrorCode::UpstreamUnavailable,
            "no access token in the answer",
        )
    })?;
    let new = TokenSet {
        access_token: access.clone(),
        refresh_token: resp.refresh_token.clone().or(tokens.refresh_token),
    };
    let sealed = app.sealer.seal(&b.device_id, &b.binding_id, &new)?;
    sqlx::query(
        "UPDATE bindings SET token_fingerprint = $2, access_token_expires_at = $3, refresh_token_expires_at = COALESCE($4, refresh_token_expires_at), \
         sealed_pending = $5, updated_at = $6 WHERE binding_id = $1",
    )
    .bind(&b.binding_id)
    .bind(token_fingerprint(access.expose()))
    .bind(resp.access_token_expiry_time.as_deref())
    .bind(resp.refresh_token_expiry_time.as_deref())
    .bind(&sealed)
    .bind(now_ms())
    .execute(app.db.pool())
    .await?;
    let row = load_binding(app, &b.binding_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "binding vanished"))?;
    let view = binding_view(&row);
    app.hub
        .emit(&b.device_id, &Event::TokenRefreshed(view.clone()))
        .await?;
    Ok(view)
}

/// Revokes the binding's token at Alipay and marks it revoked.
pub async fn revoke(app: &App, b: &BindingRow, blob: &str) -> Result<Binding> {
    let tokens = open_tokens(app, b, blob).await?;
    let req = scanbind_ams::model::RevokeRequest::new(tokens.access_token.clone());
    let resp = ams_call(app, &req).await?;
    let code = resp.result.result_code.as_str().to_owned();
    let gone = resp.result.result_status == ResultStatus::S || code == "INVALID_ACCESS_TOKEN";
    if !gone {
        return Err(match resp.result.result_status {
            ResultStatus::F => Error::api(
                ErrorCode::PaymentRejected,
                format!("Alipay refused the revoke: {code}"),
            ),
            _ => Error::api(
                ErrorCode::UpstreamUnavailable,
                "Alipay did not answer; retry",
            ),
        });
    }
    sqlx::query(
        "UPDATE bindings SET status = 'revoked', reason = 'revoked by the device', sealed_pending = NULL, token_fingerprint = NULL, updated_at = $2 \
         WHERE binding_id = $1 AND status = 'active'",
    )
    .bind(&b.binding_id)
    .bind(now_ms())
    .execute(app.db.pool())
    .await?;
    let row = load_binding(app, &b.binding_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "binding vanished"))?;
    Ok(binding_view(&row))
}

// ---------------------------------------------------------------------------------------
// Payments
// ---------------------------------------------------------------------------------------

/// Loads a payment by server id.
pub async fn load_payment(app: &App, payment_id: &str) -> Result<Option<PaymentRow>> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = $1");
    let row = sqlx::query(&sql)
        .bind(payment_id)
        .fetch_optional(app.db.pool())
        .await?;
    row.as_ref().map(PaymentRow::from_row).transpose()
}

/// Loads a payment by `paymentRequestId`.
pub async fn load_payment_by_request(app: &App, prid: &str) -> Result<Option<PaymentRow>> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_request_id = $1");
    let row = sqlx::query(&sql)
        .bind(prid)
        .fetch_optional(app.db.pool())
        .await?;
    row.as_ref().map(PaymentRow::from_row).transpose()
}

/// Loads a payment owned by `device_id` or answers `not_found`.
pub async fn device_payment(app: &App, device_id: &str, payment_id: &str) -> Result<PaymentRow> {
    if !plausible_id(payment_id) {
        return Err(Error::api(
            ErrorCode::NotFound,
            "no such payment on this device",
        ));
    }
    match load_payment(app, payment_id).await? {
        Some(p) if p.device_id == device_id => Ok(p),
        _ => Err(Error::api(
            ErrorCode::NotFound,
            "no such payment on this device",
        )),
    }
}

/// The device view of a payment row.
pub fn payment_view(p: &PaymentRow) -> Payment {
    Payment {
        payment_id: p.payment_id.clone(),
        payment_request_id: p.payment_request_id.clone(),
        app_id: p.app_id.clone(),
        app_order_id: p.app_order_id.clone(),
        product: if p.product == "order_code" {
            PaymentProduct::OrderCode
        } else {
            PaymentProduct::Agreement
        },
        binding_id: p.binding_id.clone(),
        order_code: p
            .code_value
            .clone()
            .filter(|_| p.status == "pending")
            .map(|code_value| OrderCode {
                code_value,
                expires_at: rfc3339(p.expires_at),
            }),
        amount: Amount {
            currency: p.currency.clone(),
            value: p.amount,
        },
        description: p.description.clone(),
        status: PaymentStatus::parse(&p.status).unwrap_or(PaymentStatus::Pending),
        result_code: p.result_code.clone(),
        result_message: p.result_message.clone(),
        ams_payment_id: p.ams_payment_id.clone(),
        refunded: Amount {
            currency: p.currency.clone(),
            value: p.refunded,
        },
        receipt: p.receipt.clone(),
        created_at: rfc3339(p.created_at),
        updated_at: rfc3339(p.updated_at),
    }
}

/// Validates a device amount against a currency.
pub fn check_amount(amount: &Amount, expected: Option<Currency>) -> Result<Money> {
    let currency = Currency::from_code(&amount.currency)
        .map_err(|e| Error::api(ErrorCode::AmountInvalid, e.to_string()))?;
    if let Some(exp) = expected
        && exp != currency
    {
        return Err(Error::api(
            ErrorCode::AmountInvalid,
            format!("this wallet pays in {exp}, not {currency}"),
        ));
    }
    if amount.value <= 0 {
        return Err(Error::api(
            ErrorCode::AmountInvalid,
            "the amount must be positive",
        ));
    }
    Money::from_minor(currency, amount.value)
        .map_err(|e| Error::api(ErrorCode::AmountInvalid, e.to_string()))
}

pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(Error::api(
            ErrorCode::BadRequest,
            format!("{field} must be 1 to {max} printable characters"),
        ));
    }
    Ok(())
}

fn order_id_taken() -> Error {
    Error::api(
        ErrorCode::IdempotencyConflict,
        "this app order id is used by a part of a combined checkout",
    )
}

/// `POST /v1/payments`: the same (device, app, order id) is always the same payment.
pub async fn pay(
    app: &App,
    device_id: &str,
    req: &scanbind_device_api::types::PayRequest,
) -> Result<PaymentRow> {
    check_text("appId", &req.app_id, 128)?;
    check_text("appOrderId", &req.app_order_id, 64)?;
    check_text("description", &req.description, 256)?;
    let binding = device_binding(app, device_id, &req.binding_id).await?;
    let (wallet, currency) = scan_to_bind_wallet(&binding.wallet)?;
    let money = check_amount(&req.amount, Some(currency))?;
    let prid = crate::util::payment_request_id(device_id, &req.app_id, &req.app_order_id);
    let now = now_ms();
    let payment_id = new_id("pay");
    let expires = now + app.config.payments.expiry_seconds * 1000;
    let grace = i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX);
    // A new payment is recorded only with tokens that open (a retry of a known one is
    // answered from the record even if the binding has since gone).
    let tokens = match open_tokens(app, &binding, &req.sealed_tokens).await {
        Ok(t) => Some(t),
        Err(e) => match load_payment_by_request(app, &prid).await? {
            Some(_) => None,
            None => return Err(e),
        },
    };
    // A fresh payment is sent at once: its row and the "sent" step commit together
    // (one durable commit instead of two; the row alone is what recovery needs).
    let will_send = tokens.is_some() && expires > now;
    let mut tx = app.db.begin_durable().await?;
    let inserted = sqlx::query(
        "INSERT INTO payments (payment_id, payment_request_id, device_id, app_id, app_order_id, product, binding_id, wallet, currency, amount, description, \
         status, stage, expires_at, next_action_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'agreement', $6, $7, $8, $9, $10, 'pending', 'sending', $11, $12, $13, $13) ON CONFLICT DO NOTHING",
    )
    .bind(&payment_id)
    .bind(&prid)
    .bind(device_id)
    .bind(&req.app_id)
    .bind(&req.app_order_id)
    .bind(&binding.binding_id)
    .bind(wallet.as_str())
    .bind(currency.code())
    .bind(money.minor().get())
    .bind(&req.description)
    .bind(expires)
    .bind(now.saturating_add(grace))
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted && will_send {
        sqlx::query(
            "INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, 'pay', 'sent', $2)",
        )
        .bind(&payment_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let p = if inserted {
        // Exactly the row just written: no need to read it back.
        PaymentRow {
            payment_id: payment_id.clone(),
            payment_request_id: prid.clone(),
            device_id: device_id.to_owned(),
            app_id: req.app_id.clone(),
            app_order_id: req.app_order_id.clone(),
            product: "agreement".into(),
            binding_id: Some(binding.binding_id.clone()),
            wallet: wallet.as_str().to_owned(),
            code_value: None,
            currency: currency.code().to_owned(),
            amount: money.minor().get(),
            description: req.description.clone(),
            status: "pending".into(),
            stage: "sending".into(),
            result_code: None,
            result_message: None,
            ams_payment_id: None,
            refunded: 0,
            receipt: None,
            expires_at: expires,
            next_action_at: now.saturating_add(grace),
            attempts: 0,
            created_at: now,
            updated_at: now,
        }
    } else {
        // Not inserted and no row with this paymentRequestId: the order id is taken by a
        // part of a combined checkout (`<order id>#<index>`).
        load_payment_by_request(app, &prid)
            .await?
            .ok_or_else(order_id_taken)?
    };
    if p.product != "agreement"
        || p.amount != money.minor().get()
        || p.currency != currency.code()
        || p.binding_id.as_deref() != Some(binding.binding_id.as_str())
        || p.description != req.description
    {
        return Err(Error::api(
            ErrorCode::IdempotencyConflict,
            "this app order id was used before with a different amount, binding or description",
        ));
    }
    // Final, or past its expiry (the engine owns it now): answer with what we know.
    if p.status != "pending" || p.expires_at <= now {
        return Ok(p);
    }
    let Some(tokens) = tokens else {
        // Known, still pending, and these tokens no longer open: the engine finishes it.
        return Ok(p);
    };
    if !inserted {
        app.db.step(&p.payment_id, "pay", "sent", now).await?;
    }
    crate::util::crash_point("pay-recorded");
    send_agreement_pay(app, &p, wallet, money, &tokens, None).await
}

/// Sends the agreement pay of a pending payment whose "sent" step is recorded, applies a
/// final answer once, and hands an unknown one to the engine. `merchant`: the seller
/// paid (`order.merchant`), for a part of a combined checkout. Returns the payment as it
/// is afterwards.
pub async fn send_agreement_pay(
    app: &App,
    p: &PaymentRow,
    wallet: Wallet,
    money: Money,
    tokens: &TokenSet,
    merchant: Option<scanbind_ams::model::Merchant>,
) -> Result<PaymentRow> {
    let prid = p.payment_request_id.clone();
    let mut order = Order::new(&p.payment_id, &p.description, money.to_amount());
    order.env = Some(scanbind_ams::model::Env::web());
    order.merchant = merchant;
    let mut ams_req = PayRequest::agreement(
        &prid,
        order,
        money.to_amount(),
        wallet,
        tokens.access_token.clone(),
    );
    ams_req.payment_expiry_time = Some(ams_datetime(p.expires_at));
    ams_req.payment_notify_url = Some(app.notify_url("payment"));
    match ams_call(app, &ams_req).await {
        Ok(resp) => {
            crate::util::crash_point("pay-answered");
            let r = resp.result();
            let answer = format!("{}/{}", r.result_status, r.result_code.as_str());
            let fin = match r.result_status {
                // The answer's step commits with the final state (one durable commit).
                ResultStatus::S => Some((PaymentStatus::Succeeded, None, None)),
                ResultStatus::F => Some((
                    PaymentStatus::Failed,
                    Some(r.result_code.as_str()),
                    r.result_message.as_deref(),
                )),
                _ => None,
            };
            match fin {
                Some((status, code, message)) => {
                    if let Some(done) = transition_loaded(
                        app,
                        p,
                        "pending",
                        status,
                        code,
                        message,
                        resp.payment_id.as_deref(),
                        Some(("pay", &answer)),
                    )
                    .await?
                    {
                        crate::util::crash_point("pay-settled");
                        return Ok(done);
                    }
                }
                None => {
                    app.db.step(&p.payment_id, "pay", &answer, now_ms()).await?;
                    schedule_inquiry(
                        app,
                        &p.payment_id,
                        Some(r.result_code.as_str()),
                        resp.payment_id.as_deref(),
                    )
                    .await?
                }
            }
        }
        Err(e) => {
            warn!(payment = %p.payment_id, cause = %e, "pay outcome unknown; inquiring");
            app.db
                .step(&p.payment_id, "pay", "no answer", now_ms())
                .await?;
            schedule_inquiry(app, &p.payment_id, None, None).await?;
        }
    }
    load_payment(app, &p.payment_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "payment vanished"))
}

/// `POST /v1/payments/order-code`: an Order Code payment. Alipay's `S` here only means
/// the order QR code was issued; the result comes by `notifyPayment` or inquiry.
pub async fn pay_order_code(
    app: &App,
    device_id: &str,
    req: &scanbind_device_api::types::OrderCodePayRequest,
) -> Result<PaymentRow> {
    check_text("appId", &req.app_id, 128)?;
    check_text("appOrderId", &req.app_order_id, 64)?;
    check_text("description", &req.description, 256)?;
    let money = check_amount(&req.amount, None)?;
    let currency = money.currency();
    let prid = crate::util::payment_request_id(device_id, &req.app_id, &req.app_order_id);
    let now = now_ms();
    let payment_id = new_id("pay");
    let expires = now + app.config.order_code.expiry_seconds * 1000;
    let grace = i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO payments (payment_id, payment_request_id, device_id, app_id, app_order_id, product, binding_id, wallet, currency, amount, description, \
         status, stage, expires_at, next_action_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'order_code', NULL, 'CONNECT_WALLET', $6, $7, $8, 'pending', 'sending', $9, $10, $11, $11) ON CONFLICT DO NOTHING",
    )
    .bind(&payment_id)
    .bind(&prid)
    .bind(device_id)
    .bind(&req.app_id)
    .bind(&req.app_order_id)
    .bind(currency.code())
    .bind(money.minor().get())
    .bind(&req.description)
    .bind(expires)
    .bind(now.saturating_add(grace))
    .bind(now)
    .execute(app.db.pool())
    .await?;
    let p = load_payment_by_request(app, &prid)
        .await?
        .ok_or_else(order_id_taken)?;
    if p.product != "order_code"
        || p.amount != money.minor().get()
        || p.currency != currency.code()
        || p.description != req.description
    {
        return Err(Error::api(
            ErrorCode::IdempotencyConflict,
            "this app order id was used before with different parameters",
        ));
    }
    if p.status != "pending" || p.expires_at <= now || p.code_value.is_some() {
        return Ok(p);
    }
    let oc = &app.config.order_code;
    let store = scanbind_ams::model::Store::new(&oc.store_id, &oc.store_name, &oc.merchant_mcc);
    let mut order = Order::new(&p.payment_id, &p.description, money.to_amount());
    order.merchant = Some(scanbind_ams::model::Merchant::new(
        app.ams.client_id(),
        &oc.merchant_mcc,
        &oc.merchant_name,
        store,
    ));
    let mut ams_req = PayRequest::order_code(&prid, order, money.to_amount());
    ams_req.payment_expiry_time = Some(ams_datetime(p.expires_at));
    ams_req.payment_notify_url = Some(app.notify_url("payment"));
    app.db.step(&p.payment_id, "pay", "sent", now).await?;
    match ams_call(app, &ams_req).await {
        Ok(resp) => {
            let r = resp.result();
            app.db
                .step(
                    &p.payment_id,
                    "pay",
                    &format!("{}/{}", r.result_status, r.result_code.as_str()),
                    now_ms(),
                )
                .await?;
            let code = resp
                .order_code_form
                .as_ref()
                .and_then(|f| f.qr_text())
                .map(str::to_owned);
            match (r.result_status.clone(), code) {
                (ResultStatus::F, _) => {
                    finalize_payment(
                        app,
                        &p.payment_id,
                        PaymentStatus::Failed,
                        Some(r.result_code.as_str()),
                        r.result_message.as_deref(),
                        resp.payment_id.as_deref(),
                    )
                    .await?;
                }
                (_, Some(code)) => {
                    sqlx::query("UPDATE payments SET code_value = $2 WHERE payment_id = $1")
                        .bind(&p.payment_id)
                        .bind(&code)
                        .execute(app.db.pool())
                        .await?;
                    schedule_inquiry(app, &p.payment_id, None, resp.payment_id.as_deref()).await?;
                }
                _ => {
                    schedule_inquiry(
                        app,
                        &p.payment_id,
                        Some(r.result_code.as_str()),
                        resp.payment_id.as_deref(),
                    )
                    .await?;
                }
            }
        }
        Err(e) => {
            warn!(payment = %p.payment_id, cause = %e, "order-code pay outcome unknown; inquiring");
            schedule_inquiry(app, &p.payment_id, None, None).await?;
        }
    }
    load_payment(app, &p.payment_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "payment vanished"))
}

/// Hands a pending payment to the engine's inquiry loop.
pub async fn schedule_inquiry(
    app: &App,
    payment_id: &str,
    code: Option<&str>,
    ams_id: Option<&str>,
) -> Result<()> {
    let first = app
        .config
        .payments
        .inquiry_backoff_ms
        .first()
        .copied()
        .unwrap_or(2_000);
    sqlx::query(
        "UPDATE payments SET stage = 'inquiring', next_action_at = $2, result_code = COALESCE($3, result_code), \
         ams_payment_id = COALESCE($4, ams_payment_id), updated_at = $5 WHERE payment_id = $1 AND status = 'pending'",
    )
    .bind(payment_id)
    .bind(now_ms() + i64::try_from(first).unwrap_or(2_000))
    .bind(code)
    .bind(ams_id)
    .bind(now_ms())
    .execute(app.db.pool())
    .await?;
    app.engine_wake.notify_one();
    Ok(())
}

/// Moves a pending payment to a final status once: signs the receipt, stores it, emits
/// the event. Returns true if this call made the change.
pub async fn finalize_payment(
    app: &App,
    payment_id: &str,
    status: PaymentStatus,
    code: Option<&str>,
    message: Option<&str>,
    ams_id: Option<&str>,
) -> Result<bool> {
    transition_payment(app, payment_id, "pending", status, code, message, ams_id).await
}

/// Moves a payment from the state `from` to `status` with a new signed receipt, its step
/// and its device event in one transaction (e.g. `succeeded` → `cancelled` after a cancel,
/// which refunds the whole amount). False when the payment is not in `from`.
pub async fn transition_payment(
    app: &App,
    payment_id: &str,
    from: &str,
    status: PaymentStatus,
    code: Option<&str>,
    message: Option<&str>,
    ams_id: Option<&str>,
) -> Result<bool> {
    let Some(p) = load_payment(app, payment_id).await? else {
        return Ok(false);
    };
    if p.status != from {
        return Ok(false);
    }
    Ok(
        transition_loaded(app, &p, from, status, code, message, ams_id, None)
            .await?
            .is_some(),
    )
}

/// [`transition_payment`] for a payment already read (`p`; its immutable fields are what
/// the receipt needs, and the `UPDATE ... WHERE status = from` decides). `step`, an AMS
/// answer to record, commits in the same transaction, whether or not the transition
/// happens. Returns the final row when this call made the change.
#[allow(clippy::too_many_arguments)]
pub async fn transition_loaded(
    app: &App,
    p: &PaymentRow,
    from: &str,
    status: PaymentStatus,
    code: Option<&str>,
    message: Option<&str>,
    ams_id: Option<&str>,
    step: Option<(&str, &str)>,
) -> Result<Option<PaymentRow>> {
    let payment_id = p.payment_id.as_str();
    let part = if p.product == crate::domain::checkout::PART_PRODUCT {
        crate::domain::checkout::part_of(app, payment_id).await?
    } else {
        None
    };
    let receipt = Receipt {
        ver: 1,
        kind: ReceiptKind::Payment,
        iss: app.ams.client_id().to_owned(),
        iat: now_ms() / 1000,
        device_id: p.device_id.clone(),
        app_id: p.app_id.clone(),
        app_order_id: p.app_order_id.clone(),
        payment_id: p.payment_id.clone(),
        payment_request_id: p.payment_request_id.clone(),
        ams_payment_id: ams_id.map(str::to_owned).or(p.ams_payment_id.clone()),
        refund_id: None,
        refund_request_id: None,
        status: status.as_str().to_owned(),
        amount: Amount {
            currency: p.currency.clone(),
            value: p.amount,
        },
        result_code: code.map(str::to_owned),
        seller_id: part.as_ref().map(|(_, seller)| seller.clone()),
        checkout_id: part.as_ref().map(|(checkout, _)| checkout.clone()),
    };
    let jws = app.receipt_signer.sign(&receipt);
    let now = now_ms();
    // The final state, its steps and its event commit together: a crash cannot leave a
    // final payment whose result the device never hears of.
    let mut tx = app.db.begin_durable().await?;
    if let Some((step, outcome)) = step {
        sqlx::query("INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, $2, $3, $4)")
            .bind(payment_id)
            .bind(step)
            .bind(outcome)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let done = sqlx::query(
        "UPDATE payments SET status = $2, stage = 'done', result_code = $3, result_message = $4, ams_payment_id = COALESCE($5, ams_payment_id), \
         receipt = $6, lease_owner = NULL, lease_until = 0, updated_at = $7 WHERE payment_id = $1 AND status = $8",
    )
    .bind(payment_id)
    .bind(status.as_str())
    .bind(code)
    .bind(message)
    .bind(ams_id)
    .bind(&jws)
    .bind(now)
    .bind(from)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        if let Some((step, outcome)) = step {
            // Someone else (usually the notification) made the payment final, durably;
            // this answer's step is history only: the relaxed pool (D19).
            let _turn = app.db.write_turn().await;
            sqlx::query(
                "INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, $2, $3, $4)",
            )
            .bind(payment_id)
            .bind(step)
            .bind(outcome)
            .bind(now)
            .execute(app.db.relaxed())
            .await?;
        }
        return Ok(None);
    }
    sqlx::query("INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, 'final', $2, $3)")
        .bind(payment_id)
        .bind(status.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let mut fin = p.clone();
    fin.status = status.as_str().to_owned();
    fin.stage = "done".into();
    fin.result_code = code.map(str::to_owned);
    fin.result_message = message.map(str::to_owned);
    fin.ams_payment_id = ams_id.map(str::to_owned).or(p.ams_payment_id.clone());
    fin.receipt = Some(jws);
    fin.updated_at = now;
    crate::domain::events::EventHub::insert(
        &mut tx,
        &p.device_id,
        &Event::PaymentResult(payment_view(&fin)),
    )
    .await?;
    crate::domain::events::EventHub::notify_in(&mut tx, &p.device_id).await?;
    tx.commit().await?;
    app.hub.wake_local(&p.device_id);
    info!(payment = %payment_id, status = status.as_str(), "payment final");
    if let Some((checkout_id, _)) = &part {
        crate::domain::checkout::wake(app, checkout_id).await?;
    }
    Ok(Some(fin))
}

// ---------------------------------------------------------------------------------------
// Refunds
// ---------------------------------------------------------------------------------------

/// The days after payment during which every Scan to Bind wallet accepts a refund
/// (the seed's wallet table: 365 days for all of them).
pub const REFUND_PERIOD_DAYS: i64 = 365;

/// Loads a refund by `refundRequestId`.
pub async fn load_refund(app: &App, rrid: &str) -> Result<Option<RefundRow>> {
    let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_request_id = $1");
    let row = sqlx::query(&sql)
        .bind(rrid)
        .fetch_optional(app.db.pool())
        .await?;
    row.as_ref().map(RefundRow::from_row).transpose()
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
        status: RefundStatus::parse(&r.status).unwrap_or(RefundStatus::Pending),
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
    check_text("refundId", &req.refund_id, 64)?;
    if let Some(r) = &req.reason {
        check_text("reason", r, 256)?;
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
        if existing.status != "pending" {
            return Ok(existing);
        }
    } else {
        if p.status != "succeeded" {
            return Err(Error::api(
                ErrorCode::InvalidState,
                format!("the payment is {}", p.status),
            ));
        }
        let used: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS s FROM refunds WHERE payment_id = $1 AND status IN ('pending', 'succeeded')",
        )
        .bind(&p.payment_id)
        .fetch_one(app.db.pool())
        .await?
        .try_get("s")?;
        if used.saturating_add(money.minor().get()) > p.amount {
            return Err(Error::api(
                ErrorCode::AmountInvalid,
                "refunds would exceed the amount paid",
            ));
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO refunds (refund_request_id, payment_id, refund_id, currency, amount, reason, status, next_action_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&rrid)
        .bind(&p.payment_id)
        .bind(&req.refund_id)
        .bind(&p.currency)
        .bind(money.minor().get())
        .bind(req.reason.as_deref())
        .bind(now + i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX))
        .bind(now)
        .execute(app.db.pool())
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
    match ams_call(app, &req).await {
        Ok(resp) => {
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
    let first = app
        .config
        .payments
        .inquiry_backoff_ms
        .first()
        .copied()
        .unwrap_or(2_000);
    sqlx::query("UPDATE refunds SET next_action_at = $2, updated_at = $3 WHERE refund_request_id = $1 AND status = 'pending'")
        .bind(rrid)
        .bind(now_ms() + i64::try_from(first).unwrap_or(2_000))
        .bind(now_ms())
        .execute(app.db.pool())
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
    if r.status != "pending" {
        return Ok(false);
    }
    let Some(p) = load_payment(app, &r.payment_id).await? else {
        return Ok(false);
    };
    let part = if p.product == crate::domain::checkout::PART_PRODUCT {
        crate::domain::checkout::part_of(app, &p.payment_id).await?
    } else {
        None
    };
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
        result_code: code.map(str::to_owned),
        seller_id: part.as_ref().map(|(_, seller)| seller.clone()),
        checkout_id: part.as_ref().map(|(checkout, _)| checkout.clone()),
    };
    let jws = app.receipt_signer.sign(&receipt);
    let mut tx = app.db.pool().begin().await?;
    let done = sqlx::query(
        "UPDATE refunds SET status = $2, result_code = $3, ams_refund_id = COALESCE($4, ams_refund_id), receipt = $5, lease_owner = NULL, \
         lease_until = 0, updated_at = $6 WHERE refund_request_id = $1 AND status = 'pending'",
    )
    .bind(rrid)
    .bind(status.as_str())
    .bind(code)
    .bind(ams_refund_id)
    .bind(&jws)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    if status == RefundStatus::Succeeded {
        sqlx::query(
            "UPDATE payments SET refunded = refunded + $2, updated_at = $3 WHERE payment_id = $1",
        )
        .bind(&r.payment_id)
        .bind(r.amount)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("INSERT INTO steps (subject_id, step, outcome, at) VALUES ($1, 'final', $2, $3)")
        .bind(rrid)
        .bind(status.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    let mut fin = r.clone();
    fin.status = status.as_str().to_owned();
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
        crate::domain::checkout::wake(app, checkout_id).await?;
    }
    Ok(true)
}
