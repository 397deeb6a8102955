//! Authorization endpoints: consult (§5.1), applyToken (§5.3), revoke (§5.4).

use serde::{Deserialize, Serialize};

use super::common::{
    CodeDetail, Env, Extra, NO_LIMIT, OsType, PspCustomerInfo, SecretString, TerminalType, known,
    optional, qr_code_text, region, required, response_from_result, wire_enum,
};
use super::{AmsRequest, AmsResponse, FieldError};
use crate::result::{AmsResult, Endpoint};
use crate::wallet::Wallet;

wire_enum! {
    /// An authorization scope requested in consult.
    pub enum Scope {
        /// Basic user information.
        BaseUserInfo = "BASE_USER_INFO",
        /// User information.
        UserInfo = "USER_INFO",
        /// Agreement (auto-debit) payments: what Scan to Bind asks for.
        AgreementPay = "AGREEMENT_PAY",
        /// The user's login id.
        UserLoginId = "USER_LOGIN_ID",
        /// A hash of the user's login id.
        HashLoginId = "HASH_LOGIN_ID",
        /// Send OTP.
        SendOtp = "SEND_OTP",
        /// Taobao rebind.
        TaobaoRebind = "TAOBAO_REBIND",
    }
}

wire_enum! {
    /// `grantType` of applyToken.
    pub enum GrantType {
        /// Exchange an authCode for tokens.
        AuthorizationCode = "AUTHORIZATION_CODE",
        /// Exchange a refreshToken for new tokens.
        RefreshToken = "REFRESH_TOKEN",
    }
}

fn wallet_field(field: &str, w: &Wallet) -> Result<(), FieldError> {
    required(field, w.as_str(), 64)
}

/// `authMetaData` of consult (bank direct debit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthMetaData {
    /// Account holder name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_holder_name: Option<String>,
    /// Account holder certificate number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_holder_cert_no: Option<String>,
}

/// consult request: ask AMS for an authorization QR code / URL (§5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsultRequest {
    /// The wallet, String(64).
    pub customer_belongs_to: Wallet,
    /// Secondary merchant id (ISV), String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_client_id: Option<String>,
    /// Overrides the Dashboard notifyAuthorization URL, String(1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_notify_url: Option<String>,
    /// Return URL, String(1024) (unused on the phone in Scan to Bind).
    pub auth_redirect_url: String,
    /// Requested scopes, 1 to 4.
    pub scopes: Vec<Scope>,
    /// Merchant correlation id echoed back, String(256); new for every QR.
    pub auth_state: String,
    /// Deprecated in favour of `env.terminalType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_type: Option<TerminalType>,
    /// `IOS` / `ANDROID` (WAP/APP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<OsType>,
    /// OS version, String(16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Environment; the current docs mark it required, older SDKs send only the top-level
    /// `terminalType`, so one of the two is required (checked in `validate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    /// Acquiring region (`US`, `JP`, `PK`, `SG`), String(2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_region: Option<String>,
    /// Recurring payment (PayPay only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::flex::opt_bool_or_string"
    )]
    pub recurring_payment: Option<bool>,
    /// Bank direct debit data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_meta_data: Option<AuthMetaData>,
    /// Multi-account merchants, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_account_id: Option<String>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ConsultRequest {
    /// The Scan to Bind consult: scopes `[AGREEMENT_PAY]`, `terminalType` `WEB` and
    /// `env.terminalType` `WEB` (ams-api.md §4, §5.1).
    pub fn scan_to_bind(
        wallet: Wallet,
        auth_state: impl Into<String>,
        auth_redirect_url: impl Into<String>,
        auth_notify_url: impl Into<String>,
    ) -> Self {
        ConsultRequest {
            customer_belongs_to: wallet,
            auth_client_id: None,
            auth_notify_url: Some(auth_notify_url.into()),
            auth_redirect_url: auth_redirect_url.into(),
            scopes: vec![Scope::AgreementPay],
            auth_state: auth_state.into(),
            terminal_type: Some(TerminalType::Web),
            os_type: None,
            os_version: None,
            env: Some(Env::web()),
            merchant_region: None,
            recurring_payment: None,
            auth_meta_data: None,
            merchant_account_id: None,
            extend_info: None,
            extra: Extra::new(),
        }
    }

    /// The effective terminal type: `env.terminalType`, else the deprecated top-level one.
    pub fn effective_terminal_type(&self) -> Option<&TerminalType> {
        self.env
            .as_ref()
            .and_then(|e| e.terminal_type.as_ref())
            .or(self.terminal_type.as_ref())
    }
}

impl AmsRequest for ConsultRequest {
    const ENDPOINT: Endpoint = Endpoint::Consult;
    type Response = ConsultResponse;

    fn validate(&self) -> Result<(), FieldError> {
        wallet_field("customerBelongsTo", &self.customer_belongs_to)?;
        optional("authClientId", self.auth_client_id.as_deref(), 64)?;
        optional("authNotifyUrl", self.auth_notify_url.as_deref(), 1024)?;
        required("authRedirectUrl", &self.auth_redirect_url, 1024)?;
        if self.scopes.is_empty() || self.scopes.len() > 4 {
            return Err(FieldError::new(
                "scopes",
                format!("must hold 1 to 4 scopes (got {})", self.scopes.len()),
            ));
        }
        for (i, s) in self.scopes.iter().enumerate() {
            required(&format!("scopes[{i}]"), s.as_str(), NO_LIMIT)?;
        }
        required("authState", &self.auth_state, 256)?;
        optional("osVersion", self.os_version.as_deref(), 16)?;
        if self.effective_terminal_type().is_none() {
            return Err(FieldError::new(
                "env.terminalType",
                "is required (or the deprecated top-level terminalType)",
            ));
        }
        region("merchantRegion", self.merchant_region.as_deref())?;
        optional("merchantAccountId", self.merchant_account_id.as_deref(), 64)
    }
}

/// `authCodeForm`: the authorization code to show as a QR code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthCodeForm {
    /// Renderings of the code (text and images).
    #[serde(default)]
    pub code_details: Vec<CodeDetail>,
}

impl AuthCodeForm {
    /// The `QRCODE`/`TEXT` value to render as the QR code.
    pub fn qr_text(&self) -> Option<&str> {
        qr_code_text(&self.code_details)
    }
}

/// consult response (§5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsultResponse {
    /// Outcome.
    pub result: AmsResult,
    /// Authorization URL (redirect products).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// Normal URL (may embed the code value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_url: Option<String>,
    /// App scheme URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme_url: Option<String>,
    /// App link URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applink_url: Option<String>,
    /// App identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_identifier: Option<String>,
    /// The QR code (Scan to Bind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code_form: Option<AuthCodeForm>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for ConsultResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}

/// applyToken request: exchange an authCode or refreshToken for tokens (§5.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyTokenRequest {
    /// `AUTHORIZATION_CODE` or `REFRESH_TOKEN`.
    pub grant_type: GrantType,
    /// The wallet, String(64).
    pub customer_belongs_to: Wallet,
    /// The authCode, String(128); required for `AUTHORIZATION_CODE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<SecretString>,
    /// The refreshToken, String(128); required for `REFRESH_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretString>,
    /// Acquiring region, String(2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_region: Option<String>,
    /// Multi-account merchants, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_account_id: Option<String>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ApplyTokenRequest {
    fn base(grant_type: GrantType, wallet: Wallet) -> Self {
        ApplyTokenRequest {
            grant_type,
            customer_belongs_to: wallet,
            auth_code: None,
            refresh_token: None,
            merchant_region: None,
            merchant_account_id: None,
            extend_info: None,
            extra: Extra::new(),
        }
    }

    /// `AUTHORIZATION_CODE` grant with the authCode from notifyAuthorization.
    pub fn authorization_code(wallet: Wallet, auth_code: impl Into<SecretString>) -> Self {
        ApplyTokenRequest {
            auth_code: Some(auth_code.into()),
            ..Self::base(GrantType::AuthorizationCode, wallet)
        }
    }

    /// `REFRESH_TOKEN` grant with the newest refreshToken.
    pub fn refresh(wallet: Wallet, refresh_token: impl Into<SecretString>) -> Self {
        ApplyTokenRequest {
            refresh_token: Some(refresh_token.into()),
            ..Self::base(GrantType::RefreshToken, wallet)
        }
    }
}

impl AmsRequest for ApplyTokenRequest {
    const ENDPOINT: Endpoint = Endpoint::ApplyToken;
    type Response = ApplyTokenResponse;

    fn validate(&self) -> Result<(), FieldError> {
        known(
            "grantType",
            self.grant_type.is_known(),
            self.grant_type.as_str(),
        )?;
        wallet_field("customerBelongsTo", &self.customer_belongs_to)?;
        let code = self.auth_code.as_ref().map(SecretString::expose);
        let refresh = self.refresh_token.as_ref().map(SecretString::expose);
        match self.grant_type {
            GrantType::AuthorizationCode => {
                required("authCode", code.unwrap_or(""), 128)?;
                optional("refreshToken", refresh, 128)?;
            }
            _ => {
                required("refreshToken", refresh.unwrap_or(""), 128)?;
                optional("authCode", code, 128)?;
            }
        }
        region("merchantRegion", self.merchant_region.as_deref())?;
        optional("merchantAccountId", self.merchant_account_id.as_deref(), 64)
    }
}

/// applyToken response (§5.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyTokenResponse {
    /// Outcome.
    pub result: AmsResult,
    /// The accessToken (a bearer secret), String(128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretString>,
    /// When the accessToken expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expiry_time: Option<String>,
    /// The refreshToken (a bearer secret); absent means a long-lived accessToken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretString>,
    /// When the refreshToken expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expiry_time: Option<String>,
    /// Masked login id (AGREEMENT_PAY scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_login_id: Option<String>,
    /// The wallet's customer information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_customer_info: Option<PspCustomerInfo>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for ApplyTokenResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}

/// revoke request: invalidate an accessToken (§5.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeRequest {
    /// The accessToken to revoke, String(128).
    pub access_token: SecretString,
    /// Multi-account merchants, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_account_id: Option<String>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl RevokeRequest {
    /// Revokes `access_token`.
    pub fn new(access_token: impl Into<SecretString>) -> Self {
        RevokeRequest {
            access_token: access_token.into(),
            merchant_account_id: None,
            extend_info: None,
            extra: Extra::new(),
        }
    }
}

impl AmsRequest for RevokeRequest {
    const ENDPOINT: Endpoint = Endpoint::Revoke;
    type Response = RevokeResponse;

    fn validate(&self) -> Result<(), FieldError> {
        required("accessToken", self.access_token.expose(), 128)?;
        optional("merchantAccountId", self.merchant_account_id.as_deref(), 64)
    }
}

/// revoke response (§5.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeResponse {
    /// Outcome.
    pub result: AmsResult,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for RevokeResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}
