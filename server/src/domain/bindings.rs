//! Scan to Bind bindings: start (AMS consult), the token exchange on `AUTHCODE_CREATED`,
//! refresh, revoke, and the ends a binding can come to (expired, cancelled in the wallet
//! app, revoked). Every change of status is a conditional `UPDATE` in
//! [`store::bindings`], so a notification handled twice changes nothing the second time.

use scanbind_ams::model::{AmsResponse, ApplyTokenRequest, ConsultRequest, SecretString};
use scanbind_ams::result::ResultStatus;
use scanbind_ams::wallet::Wallet;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::types::{Binding, BindingStatus, Event};
use tracing::{info, warn};

use crate::domain::seal::{TokenSet, token_fingerprint};
use crate::domain::{App, ams_call, plausible_id, scan_to_bind_wallet};
use crate::error::{Error, Result};
use crate::store::bindings::{Activation, NewBinding};
use crate::store::{self, BindingRow, BindingState};
use crate::util::{new_id, now_ms, rfc3339};

/// The device view of a binding row (`exchanging` shows as pending).
pub fn binding_view(row: &BindingRow) -> Binding {
    let status = match row.status {
        BindingState::Pending | BindingState::Exchanging => BindingStatus::Pending,
        BindingState::Active => BindingStatus::Active,
        BindingState::Failed => BindingStatus::Failed,
        BindingState::Expired => BindingStatus::Expired,
        BindingState::Revoked => BindingStatus::Revoked,
        BindingState::Cancelled => BindingStatus::Cancelled,
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
    Ok(store::bindings::load(&app.db, binding_id).await?)
}

async fn reload(app: &App, binding_id: &str) -> Result<BindingRow> {
    load_binding(app, binding_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "binding vanished"))
}

/// Every binding of a device, oldest first, as the device sees them.
pub async fn device_bindings(app: &App, device_id: &str) -> Result<Vec<Binding>> {
    Ok(store::bindings::of_device(&app.db, device_id)
        .await?
        .iter()
        .map(binding_view)
        .collect())
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
    store::bindings::insert(
        &app.db,
        &NewBinding {
            binding_id: &binding_id,
            device_id,
            wallet: wallet.as_str(),
            auth_state: &auth_state,
            match_code: &match_code,
            code_value: &code_value,
            expires_at: expires,
            now,
        },
    )
    .await?;
    app.engine_wake.notify_one();
    let row = reload(app, &binding_id).await?;
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
    let Some(binding) = store::bindings::by_auth_state(&app.db, auth_state).await? else {
        warn!("AUTHCODE_CREATED for an unknown authState; ignored");
        return Ok(());
    };
    let now = now_ms();
    if !store::bindings::claim_exchange(&app.db, &binding.binding_id, now).await? {
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
            store::bindings::unclaim_exchange(&app.db, &binding.binding_id).await?;
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
    let status = match (resp.result.result_status == ResultStatus::S, access) {
        (true, Some(access)) => {
            let tokens = TokenSet {
                access_token: access.clone(),
                refresh_token: resp.refresh_token.clone(),
            };
            let blob = app
                .sealer
                .seal(&binding.device_id, &binding.binding_id, &tokens)?;
            let fingerprint = token_fingerprint(access.expose());
            store::bindings::activate(
                &app.db,
                &binding.binding_id,
                &Activation {
                    token_fingerprint: &fingerprint,
                    user_login_id: resp.user_login_id.as_deref().or(login_id),
                    access_token_expires_at: resp.access_token_expiry_time.as_deref(),
                    refresh_token_expires_at: resp.refresh_token_expiry_time.as_deref(),
                    sealed: &blob,
                    now: now_ms(),
                },
            )
            .await?;
            BindingState::Active
        }
        _ => {
            store::bindings::fail_exchange(
                &app.db,
                &binding.binding_id,
                &format!("applyToken: {}", resp.result.result_code.as_str()),
                now_ms(),
            )
            .await?;
            BindingState::Failed
        }
    };
    let row = reload(app, &binding.binding_id).await?;
    let view = binding_view(&row);
    let ev = if status == BindingState::Active {
        Event::BindingCompleted(view)
    } else {
        Event::BindingFailed(view)
    };
    app.hub.emit(&binding.device_id, &ev).await?;
    info!(binding = %binding.binding_id, status = status.as_str(), "binding finished");
    Ok(())
}

/// `TOKEN_CANCELED`: the user unbound in the wallet app.
pub async fn token_canceled(app: &App, access_token: &str, reason: Option<&str>) -> Result<()> {
    let fp = token_fingerprint(access_token);
    let Some(b) = store::bindings::by_token_fingerprint(&app.db, &fp).await? else {
        return Ok(());
    };
    set_binding_final(
        app,
        &b,
        BindingState::Cancelled,
        reason.unwrap_or("unbound in the wallet app"),
    )
    .await
}

/// Moves a binding to a final status and tells the device: `expired` from pending,
/// `cancelled` or `revoked` from active.
pub async fn set_binding_final(
    app: &App,
    b: &BindingRow,
    status: BindingState,
    reason: &str,
) -> Result<()> {
    if store::bindings::finish(&app.db, &b.binding_id, status, reason, now_ms()).await? {
        let row = reload(app, &b.binding_id).await?;
        let view = binding_view(&row);
        let ev = match status {
            BindingState::Expired => Event::BindingExpired(view),
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
    if b.status != BindingState::Active {
        return Err(Error::api(
            ErrorCode::InvalidState,
            format!("the binding is {}", b.status),
        ));
    }
    if b.sealed_pending.as_deref() == Some(blob) {
        store::bindings::forget_sealed(&app.db, &b.binding_id, blob).await?;
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
    let fingerprint = token_fingerprint(access.expose());
    store::bindings::refresh(
        &app.db,
        &b.binding_id,
        &Activation {
            token_fingerprint: &fingerprint,
            user_login_id: None,
            access_token_expires_at: resp.access_token_expiry_time.as_deref(),
            refresh_token_expires_at: resp.refresh_token_expiry_time.as_deref(),
            sealed: &sealed,
            now: now_ms(),
        },
    )
    .await?;
    let row = reload(app, &b.binding_id).await?;
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
    store::bindings::revoke(&app.db, &b.binding_id, now_ms()).await?;
    let row = reload(app, &b.binding_id).await?;
    Ok(binding_view(&row))
}
