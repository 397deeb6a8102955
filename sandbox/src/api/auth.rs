//! authorizations/consult, applyToken and revoke, plus what the phone does with a
//! binding QR (approve / deny) and with a binding (unbind).
//!
//! Life of a binding: consult issues a single-use QR valid 15 minutes → the user approves
//! on the phone → AUTHCODE_CREATED carries a single-use authCode valid 1 minute →
//! applyToken exchanges it for an access token and a refresh token → REFRESH_TOKEN grants
//! replace both (the old refresh token is spent) → revoke, or Unbind on the phone (which
//! sends TOKEN_CANCELED), ends the binding and every token of it.

use scanbind_ams::model::AmsResponse as _;
use scanbind_ams::model::{
    ApplyTokenRequest, ApplyTokenResponse, AuthCodeForm, AuthorizationNotification, CodeDetail,
    CodeValueType, ConsultRequest, ConsultResponse, DisplayType, GrantType, RevokeRequest,
    RevokeResponse, SecretString,
};
use scanbind_ams::result::{AmsResult, ResultCode};
use time::Duration;

use super::{Answer, Call, body, fail, parse};
use crate::app::App;
use crate::clock::ams_time;
use crate::ids::{mask_login_id, random_hex};
use crate::state::{
    AuthCode, AuthQr, Authorization, QrStatus, State, Token, TokenKind, from_ts, ts,
};
use crate::wallets;

/// QR life.
pub const QR_TTL: Duration = Duration::minutes(15);
/// authCode life.
pub const AUTH_CODE_TTL: Duration = Duration::minutes(1);

/// What the merchant may show on the phone page, read from consult's `extendInfo` (a JSON
/// object in a string): `merchantName`, `deviceName`, `matchCode`.
fn display_hints(extend_info: Option<&str>) -> (Option<String>, Option<String>, Option<String>) {
    let Some(value) = extend_info.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    else {
        return (None, None, None);
    };
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(128).collect::<String>())
            .filter(|s| !s.is_empty())
    };
    (
        field("merchantName"),
        field("deviceName"),
        field("matchCode"),
    )
}

/// consult: issues a binding QR whose value is this sandbox's phone page.
pub(crate) fn consult(call: &Call<'_>) -> Answer {
    let req: ConsultRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let wallet = req.customer_belongs_to.as_str().to_owned();
    if wallets::profile(&wallet).is_none() {
        return fail(
            ResultCode::ParamIllegal,
            format!("illegal parameter customerBelongsTo: {wallet} is not a Scan to Bind wallet"),
        );
    }
    let (merchant_name, device_name, match_code) = display_hints(req.extend_info.as_deref());
    let app = call.app;
    let code = random_hex(16);
    let url = format!("{}/wallet/authorize/{code}", app.public_url);
    app.write(|state, app| {
        let now = app.clock.now();
        state.qrs.insert(
            code.clone(),
            AuthQr {
                code: code.clone(),
                client_id: call.client_id.to_owned(),
                wallet,
                auth_state: req.auth_state.clone(),
                scopes: req.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                notify_url: req.auth_notify_url.clone(),
                auth_client_id: req.auth_client_id.clone(),
                merchant_name: merchant_name.unwrap_or_else(|| {
                    app.merchants
                        .get(call.client_id)
                        .map(|m| m.name.clone())
                        .unwrap_or_else(|| call.client_id.to_owned())
                }),
                device_name,
                match_code,
                created: ts(now),
                expires: ts(now + QR_TTL),
                status: QrStatus::Pending,
            },
        );
        ((), true)
    });
    let mut resp = ConsultResponse::from_result(AmsResult::success());
    resp.auth_code_form = Some(AuthCodeForm {
        // The code as text to render, and as an image (Alipay returns both).
        code_details: vec![
            CodeDetail::qr_text(url.clone()),
            CodeDetail {
                code_value_type: CodeValueType::Qrcode,
                code_value: format!("{url}/qr.png"),
                display_type: DisplayType::Bigimage,
            },
        ],
    });
    resp.normal_url = Some(url);
    body(&resp)
}

/// What scanning a binding QR did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanResult {
    /// Approved: AUTHCODE_CREATED was sent to the merchant.
    Approved {
        /// The user who approved.
        user: String,
    },
    /// Denied: nothing is sent.
    Denied,
}

/// The phone approves or denies a binding QR. Errors are messages for people.
pub(crate) fn scan_authorize(
    app: &App,
    code: &str,
    approve: bool,
    user: Option<&str>,
) -> Result<ScanResult, String> {
    app.write(|state, app| {
        let r = scan_authorize_locked(state, app, code, approve, user);
        let changed = r.is_ok();
        (r, changed)
    })
}

/// Where a `notifyAuthorization` goes: the `authNotifyUrl` consult named, else the
/// notification address set for the merchant (its dashboard setting), else nowhere.
fn notify_target(app: &App, client_id: &str, explicit: Option<&String>) -> Option<String> {
    explicit.cloned().or_else(|| {
        app.merchants
            .get(client_id)
            .and_then(|m| m.notification_url.clone())
    })
}

fn scan_authorize_locked(
    state: &mut State,
    app: &App,
    code: &str,
    approve: bool,
    user: Option<&str>,
) -> Result<ScanResult, String> {
    let now = app.clock.now();
    let qr = state
        .qrs
        .get(code)
        .cloned()
        .ok_or_else(|| "this code is not known to the sandbox".to_owned())?;
    if qr.status != QrStatus::Pending {
        return Err("this code has already been used; ask for a new one".into());
    }
    if ts(now) >= qr.expires {
        return Err("this code has expired; ask for a new one".into());
    }
    if !approve {
        if let Some(q) = state.qrs.get_mut(code) {
            q.status = QrStatus::Denied;
        }
        return Ok(ScanResult::Denied);
    }
    let login = wallets::resolve_user(state, &qr.wallet, user)?;
    let auth_code = random_hex(16);
    state.auth_codes.insert(
        auth_code.clone(),
        AuthCode {
            client_id: qr.client_id.clone(),
            qr: qr.code.clone(),
            user: login.clone(),
            created: ts(now),
            expires: ts(now + AUTH_CODE_TTL),
            used: false,
        },
    );
    if let Some(q) = state.qrs.get_mut(code) {
        q.status = QrStatus::Approved;
    }
    if let Some(url) = &notify_target(app, &qr.client_id, qr.notify_url.as_ref()) {
        let mut n = AuthorizationNotification::authcode_created(
            SecretString::new(auth_code),
            qr.auth_state.clone(),
        );
        n.auth_client_id = qr.auth_client_id.clone();
        n.user_login_id = Some(mask_login_id(&login));
        if let Ok(body) = serde_json::to_string(&n) {
            state.notify("notifyAuthorization", &qr.client_id, url, body);
        }
    }
    Ok(ScanResult::Approved { user: login })
}

/// Issues a fresh access and refresh token for `authorization` and returns the response.
fn issue_tokens(
    state: &mut State,
    app: &App,
    authorization: &str,
    user: &str,
) -> ApplyTokenResponse {
    let now = app.clock.now();
    let access = format!("at_{}", random_hex(20));
    let refresh = format!("rt_{}", random_hex(20));
    let access_exp = now + app.config.access_token_ttl;
    let refresh_exp = now + app.config.refresh_token_ttl;
    state.tokens.insert(
        access.clone(),
        Token {
            kind: TokenKind::Access,
            authorization: authorization.to_owned(),
            expires: ts(access_exp),
            used: false,
        },
    );
    state.tokens.insert(
        refresh.clone(),
        Token {
            kind: TokenKind::Refresh,
            authorization: authorization.to_owned(),
            expires: ts(refresh_exp),
            used: false,
        },
    );
    if let Some(a) = state.authorizations.get_mut(authorization) {
        a.access_token = access.clone();
    }
    let mut resp = ApplyTokenResponse::from_result(AmsResult::success());
    resp.access_token = Some(SecretString::new(access));
    resp.access_token_expiry_time = Some(ams_time(access_exp));
    resp.refresh_token = Some(SecretString::new(refresh));
    resp.refresh_token_expiry_time = Some(ams_time(refresh_exp));
    resp.user_login_id = Some(mask_login_id(user));
    resp
}

/// applyToken: AUTHORIZATION_CODE or REFRESH_TOKEN.
pub(crate) fn apply_token(call: &Call<'_>) -> Answer {
    let req: ApplyTokenRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let wallet = req.customer_belongs_to.as_str().to_owned();
    call.app.write(|state, app| {
        let now = ts(app.clock.now());
        match &req.grant_type {
            GrantType::AuthorizationCode => {
                let code = req
                    .auth_code
                    .as_ref()
                    .map(SecretString::expose)
                    .unwrap_or("");
                let Some(ac) = state.auth_codes.get(code).cloned() else {
                    return (
                        fail(ResultCode::InvalidCode, "the authCode is not valid"),
                        false,
                    );
                };
                if ac.client_id != call.client_id || ac.used {
                    return (
                        fail(
                            ResultCode::InvalidCode,
                            "the authCode is not valid or was already used",
                        ),
                        false,
                    );
                }
                if now >= ac.expires {
                    return (
                        fail(ResultCode::ExpiredCode, "the authCode has expired"),
                        false,
                    );
                }
                let Some(qr) = state.qrs.get(&ac.qr).cloned() else {
                    return (
                        fail(ResultCode::InvalidCode, "the authCode is not valid"),
                        false,
                    );
                };
                if qr.wallet != wallet {
                    return (
                        fail(
                            ResultCode::InvalidCode,
                            "the authCode was issued for another customerBelongsTo",
                        ),
                        false,
                    );
                }
                if let Some(c) = state.auth_codes.get_mut(code) {
                    c.used = true;
                }
                let id = format!("auth_{}", state.next_seq());
                state.authorizations.insert(
                    id.clone(),
                    Authorization {
                        id: id.clone(),
                        client_id: call.client_id.to_owned(),
                        user: ac.user.clone(),
                        wallet: qr.wallet.clone(),
                        scopes: qr.scopes.clone(),
                        merchant_name: qr.merchant_name.clone(),
                        notify_url: qr.notify_url.clone(),
                        auth_client_id: qr.auth_client_id.clone(),
                        created: now,
                        revoked: None,
                        access_token: String::new(),
                    },
                );
                let resp = issue_tokens(state, app, &id, &ac.user);
                (body(&resp), true)
            }
            _ => {
                let refresh = req
                    .refresh_token
                    .as_ref()
                    .map(SecretString::expose)
                    .unwrap_or("");
                let valid = state.tokens.get(refresh).and_then(|t| {
                    let a = state.authorizations.get(&t.authorization)?;
                    (t.kind == TokenKind::Refresh
                        && !t.used
                        && now < t.expires
                        && a.revoked.is_none()
                        && a.client_id == call.client_id
                        && a.wallet == wallet)
                        .then(|| (a.id.clone(), a.user.clone()))
                });
                let Some((id, user)) = valid else {
                    return (
                        fail(
                            ResultCode::InvalidAccessToken,
                            "the refresh token is not valid, expired, already used or revoked",
                        ),
                        false,
                    );
                };
                if let Some(t) = state.tokens.get_mut(refresh) {
                    t.used = true;
                }
                let resp = issue_tokens(state, app, &id, &user);
                (body(&resp), true)
            }
        }
    })
}

/// The binding an access token stands for, if the token is valid for `client_id` now.
pub(crate) fn binding_for_token<'s>(
    state: &'s State,
    client_id: &str,
    token: &str,
    now: i64,
) -> Option<&'s Authorization> {
    let t = state.tokens.get(token)?;
    let a = state.authorizations.get(&t.authorization)?;
    (t.kind == TokenKind::Access
        && now < t.expires
        && a.revoked.is_none()
        && a.client_id == client_id)
        .then_some(a)
}

/// revoke: ends the binding of an access token. Revoking again succeeds.
pub(crate) fn revoke(call: &Call<'_>) -> Answer {
    let req: RevokeRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    call.app.write(|state, app| {
        let token = req.access_token.expose();
        let found = state
            .tokens
            .get(token)
            .filter(|t| t.kind == TokenKind::Access)
            .and_then(|t| state.authorizations.get(&t.authorization))
            .filter(|a| a.client_id == call.client_id)
            .map(|a| a.id.clone());
        let Some(id) = found else {
            return (
                fail(
                    ResultCode::InvalidAccessToken,
                    "the access token is not valid",
                ),
                false,
            );
        };
        let mut changed = false;
        if let Some(a) = state.authorizations.get_mut(&id)
            && a.revoked.is_none()
        {
            a.revoked = Some(ts(app.clock.now()));
            changed = true;
        }
        (
            body(&RevokeResponse::from_result(AmsResult::success())),
            changed,
        )
    })
}

/// The phone's Unbind: revokes the binding and sends TOKEN_CANCELED.
pub(crate) fn unbind(app: &App, user: &str, authorization: &str) -> Result<(), String> {
    app.write(|state, app| {
        let Some(a) = state.authorizations.get_mut(authorization) else {
            return (Err("no such authorization".to_owned()), false);
        };
        if a.user != user {
            return (
                Err("this authorization belongs to another user".to_owned()),
                false,
            );
        }
        if a.revoked.is_some() {
            return (Ok(()), false);
        }
        a.revoked = Some(ts(app.clock.now()));
        let a = a.clone();
        if let Some(url) = &notify_target(app, &a.client_id, a.notify_url.as_ref()) {
            let mut n = AuthorizationNotification::token_canceled(
                SecretString::new(a.access_token.clone()),
                "user unbind",
            );
            n.auth_client_id = a.auth_client_id.clone();
            n.user_login_id = Some(mask_login_id(&a.user));
            if let Ok(body) = serde_json::to_string(&n) {
                state.notify("notifyAuthorization", &a.client_id, url, body);
            }
        }
        (Ok(()), true)
    })
}

/// A time stored in the state, for display.
pub(crate) fn show_time(t: i64) -> String {
    ams_time(from_ts(t))
}
