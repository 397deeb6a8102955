//! Notification bodies AMS posts to the merchant: notifyAuthorization (§5.2),
//! notifyPayment (§5.6), notifyRefund (§5.11).
//!
//! Validation is deliberately limited to what a merchant needs to act on a notification
//! (the fields its type makes conditional); anything else is accepted so a real AMS
//! notification is never refused for an informational field.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FieldError;
use super::common::{
    Extra, NO_LIMIT, PspCustomerInfo, Quote, RefundStatus, SecretString, optional, required,
    wire_enum,
};
use crate::money::Amount;
use crate::result::AmsResult;

/// Which notification a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// notifyAuthorization.
    Authorization,
    /// notifyPayment.
    Payment,
    /// notifyRefund.
    Refund,
}

/// A notification body AMS posts to the merchant.
pub trait Notification: Serialize + DeserializeOwned {
    /// Which notification this is.
    const KIND: NotificationKind;
    /// Checks the fields the notification type makes conditional.
    fn validate(&self) -> Result<(), FieldError>;
    /// The `result` object.
    fn result(&self) -> &AmsResult;
}

wire_enum! {
    /// `authorizationNotifyType`.
    pub enum AuthorizationNotifyType {
        /// The user approved: carries `authCode` and `authState` (auto-debit / Scan to Bind).
        AuthcodeCreated = "AUTHCODE_CREATED",
        /// A token was created: carries `accessToken` and `authState`.
        TokenCreated = "TOKEN_CREATED",
        /// The user unbound in the wallet: carries `accessToken` and `reason`.
        TokenCanceled = "TOKEN_CANCELED",
    }
}

wire_enum! {
    /// `notifyType` of notifyPayment.
    pub enum PaymentNotifyType {
        /// The payment reached a final state.
        PaymentResult = "PAYMENT_RESULT",
        /// The payment is pending.
        PaymentPending = "PAYMENT_PENDING",
    }
}

wire_enum! {
    /// `notifyType` of notifyRefund.
    pub enum RefundNotifyType {
        /// The refund reached a final state.
        RefundResult = "REFUND_RESULT",
    }
}

/// notifyAuthorization body (§5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationNotification {
    /// `AUTHCODE_CREATED`, `TOKEN_CREATED`, `TOKEN_CANCELED`; String(32).
    pub authorization_notify_type: AuthorizationNotifyType,
    /// Secondary merchant id, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_client_id: Option<String>,
    /// The accessToken (TOKEN_CREATED, TOKEN_CANCELED), String(128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretString>,
    /// The consult authState (AUTHCODE_CREATED, TOKEN_CREATED), String(256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_state: Option<String>,
    /// The authCode (AUTHCODE_CREATED), String(128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<SecretString>,
    /// Why the token was cancelled (TOKEN_CANCELED), String(256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Always SUCCESS.
    pub result: AmsResult,
    /// Masked login id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_login_id: Option<String>,
    /// User id (SDK model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Pass-through information (SDK model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_through_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AuthorizationNotification {
    fn base(kind: AuthorizationNotifyType) -> Self {
        AuthorizationNotification {
            authorization_notify_type: kind,
            auth_client_id: None,
            access_token: None,
            auth_state: None,
            auth_code: None,
            reason: None,
            result: AmsResult::success(),
            user_login_id: None,
            user_id: None,
            pass_through_info: None,
            extra: Extra::new(),
        }
    }

    /// `AUTHCODE_CREATED` for the QR identified by `auth_state`.
    pub fn authcode_created(
        auth_code: impl Into<SecretString>,
        auth_state: impl Into<String>,
    ) -> Self {
        AuthorizationNotification {
            auth_code: Some(auth_code.into()),
            auth_state: Some(auth_state.into()),
            ..Self::base(AuthorizationNotifyType::AuthcodeCreated)
        }
    }

    /// `TOKEN_CANCELED`: the user unbound in the wallet.
    pub fn token_canceled(
        access_token: impl Into<SecretString>,
        reason: impl Into<String>,
    ) -> Self {
        AuthorizationNotification {
            access_token: Some(access_token.into()),
            reason: Some(reason.into()),
            ..Self::base(AuthorizationNotifyType::TokenCanceled)
        }
    }
}

impl Notification for AuthorizationNotification {
    const KIND: NotificationKind = NotificationKind::Authorization;

    fn validate(&self) -> Result<(), FieldError> {
        let kind = &self.authorization_notify_type;
        required("authorizationNotifyType", kind.as_str(), 32)?;
        let token = self.access_token.as_ref().map(SecretString::expose);
        let code = self.auth_code.as_ref().map(SecretString::expose);
        let state = self.auth_state.as_deref();
        match kind {
            AuthorizationNotifyType::AuthcodeCreated => {
                required("authCode", code.unwrap_or(""), 128)?;
                required("authState", state.unwrap_or(""), 256)?;
            }
            AuthorizationNotifyType::TokenCreated => {
                required("accessToken", token.unwrap_or(""), 128)?;
                required("authState", state.unwrap_or(""), 256)?;
            }
            AuthorizationNotifyType::TokenCanceled => {
                required("accessToken", token.unwrap_or(""), 128)?;
            }
            AuthorizationNotifyType::Other(_) => {}
        }
        optional("authClientId", self.auth_client_id.as_deref(), 64)?;
        optional("accessToken", token, 128)?;
        optional("authCode", code, 128)?;
        optional("authState", state, 256)?;
        optional("reason", self.reason.as_deref(), 256)
    }

    fn result(&self) -> &AmsResult {
        &self.result
    }
}

/// notifyPayment body (§5.6): `result` is the payment outcome (S paid, F failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentNotification {
    /// `PAYMENT_RESULT` or `PAYMENT_PENDING`.
    pub notify_type: PaymentNotifyType,
    /// The payment outcome.
    pub result: AmsResult,
    /// The merchant's request id.
    pub payment_request_id: String,
    /// AMS payment id.
    pub payment_id: String,
    /// Amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<Amount>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_create_time: Option<String>,
    /// Payment time (on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_time: Option<String>,
    /// Amount declarable to customs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_declaration_amount: Option<Amount>,
    /// Gross settlement amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<Amount>,
    /// Settlement quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_quote: Option<Quote>,
    /// The wallet's customer information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_customer_info: Option<PspCustomerInfo>,
    /// Acquirer reference number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_reference_no: Option<String>,
    /// Method-specific result information (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_result_info: Option<Value>,
    /// Acquirer information (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_info: Option<Value>,
    /// Promotions applied (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_result: Option<Vec<Value>>,
    /// The wallet that paid (useful for Order Code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_type: Option<String>,
    /// Merchant metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Notification for PaymentNotification {
    const KIND: NotificationKind = NotificationKind::Payment;

    fn validate(&self) -> Result<(), FieldError> {
        required("notifyType", self.notify_type.as_str(), NO_LIMIT)?;
        required("paymentRequestId", &self.payment_request_id, 64)?;
        required("paymentId", &self.payment_id, 64)
    }

    fn result(&self) -> &AmsResult {
        &self.result
    }
}

/// notifyRefund body (§5.11), sent when the refund is final.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundNotification {
    /// `REFUND_RESULT`.
    pub notify_type: RefundNotifyType,
    /// Outcome.
    pub result: AmsResult,
    /// `SUCCESS` or `FAIL`.
    pub refund_status: RefundStatus,
    /// The merchant's refund request id, String(64).
    pub refund_request_id: String,
    /// AMS refund id, String(64).
    pub refund_id: String,
    /// Amount.
    pub refund_amount: Amount,
    /// Refund time (on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
    /// Gross settlement amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<Amount>,
    /// Settlement quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_quote: Option<Quote>,
    /// Acquirer reference number (cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Amount actually refunded (SDK model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_refund_amount: Option<Amount>,
    /// Merchant metadata, String(2048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Notification for RefundNotification {
    const KIND: NotificationKind = NotificationKind::Refund;

    fn validate(&self) -> Result<(), FieldError> {
        required("notifyType", self.notify_type.as_str(), NO_LIMIT)?;
        if !matches!(
            self.refund_status,
            RefundStatus::Success | RefundStatus::Fail
        ) {
            return Err(FieldError::new(
                "refundStatus",
                format!(
                    "must be SUCCESS or FAIL in a notification (got {})",
                    self.refund_status
                ),
            ));
        }
        required("refundRequestId", &self.refund_request_id, 64)?;
        required("refundId", &self.refund_id, 64)?;
        super::common::amount("refundAmount", &self.refund_amount, false)?;
        optional("metadata", self.metadata.as_deref(), 2048)
    }

    fn result(&self) -> &AmsResult {
        &self.result
    }
}
