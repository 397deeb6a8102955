//! The row types: one struct per table row the domain reads, decoded (statuses and
//! stages typed) at this boundary.

use scanbind_device_api::types::{Amount, Conversion};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::error::Result;
use super::status::{
    BindingState, CheckoutState, DeclarationStatus, PaymentStage, PaymentStatus, Product,
    RefundStatus, Reversal, Scope, decode, decode_opt,
};

/// A `devices` row.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// Device id.
    pub device_id: String,
    /// Public key, base64url.
    pub public_key: String,
    /// Name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Unix ms.
    pub registered_at: i64,
}

impl DeviceRow {
    /// Decodes a row.
    pub fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(DeviceRow {
            device_id: r.try_get("device_id")?,
            public_key: r.try_get("public_key")?,
            name: r.try_get("name")?,
            model: r.try_get("model")?,
            registered_at: r.try_get("registered_at")?,
        })
    }
}

/// A `bindings` row.
#[derive(Debug, Clone)]
pub struct BindingRow {
    /// Binding id.
    pub binding_id: String,
    /// Owner.
    pub device_id: String,
    /// Wallet code.
    pub wallet: String,
    /// The consult `authState`.
    pub auth_state: String,
    /// Its state.
    pub status: BindingState,
    /// Match code.
    pub match_code: String,
    /// QR code value.
    pub code_value: String,
    /// QR expiry, Unix ms.
    pub expires_at: i64,
    /// Masked login id.
    pub user_login_id: Option<String>,
    /// Access token expiry (AMS text).
    pub access_token_expires_at: Option<String>,
    /// Refresh token expiry (AMS text).
    pub refresh_token_expires_at: Option<String>,
    /// Sealed blob awaiting pickup by the device.
    pub sealed_pending: Option<String>,
    /// Failure or cancellation reason.
    pub reason: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// Columns selected for [`BindingRow`].
pub const BINDING_COLUMNS: &str = "binding_id, device_id, wallet, auth_state, status, match_code, code_value, expires_at, user_login_id, access_token_expires_at, refresh_token_expires_at, sealed_pending, reason, created_at";

impl BindingRow {
    /// Decodes a row.
    pub fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(BindingRow {
            binding_id: r.try_get("binding_id")?,
            device_id: r.try_get("device_id")?,
            wallet: r.try_get("wallet")?,
            auth_state: r.try_get("auth_state")?,
            status: decode(r, "status")?,
            match_code: r.try_get("match_code")?,
            code_value: r.try_get("code_value")?,
            expires_at: r.try_get("expires_at")?,
            user_login_id: r.try_get("user_login_id")?,
            access_token_expires_at: r.try_get("access_token_expires_at")?,
            refresh_token_expires_at: r.try_get("refresh_token_expires_at")?,
            sealed_pending: r.try_get("sealed_pending")?,
            reason: r.try_get("reason")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// A `payments` row.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    /// Server payment id.
    pub payment_id: String,
    /// AMS paymentRequestId.
    pub payment_request_id: String,
    /// Device.
    pub device_id: String,
    /// App.
    pub app_id: String,
    /// App order id.
    pub app_order_id: String,
    /// What kind of payment.
    pub product: Product,
    /// Binding (agreement payments).
    pub binding_id: Option<String>,
    /// Wallet code (`CONNECT_WALLET` for order codes).
    pub wallet: String,
    /// Order code QR value (order-code payments).
    pub code_value: Option<String>,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Description.
    pub description: String,
    /// Its status.
    pub status: PaymentStatus,
    /// The engine's stage.
    pub stage: PaymentStage,
    /// Result code.
    pub result_code: Option<String>,
    /// Result message.
    pub result_message: Option<String>,
    /// Alipay paymentId.
    pub ams_payment_id: Option<String>,
    /// Refunded so far, minor units.
    pub refunded: i64,
    /// Receipt.
    pub receipt: Option<String>,
    /// A payment priced in another currency than the wallet's: what the wallet paid, at
    /// which quote (once known).
    pub conversion: Option<Conversion>,
    /// paymentExpiryTime, Unix ms.
    pub expires_at: i64,
    /// Next engine action, Unix ms.
    pub next_action_at: i64,
    /// Engine attempts so far.
    pub attempts: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Columns selected for [`PaymentRow`].
pub const PAYMENT_COLUMNS: &str = "payment_id, payment_request_id, device_id, app_id, app_order_id, product, binding_id, wallet, code_value, currency, amount, description, status, stage, result_code, result_message, ams_payment_id, refunded, receipt, paid_currency, paid_amount, quote_pair, quote_price, expires_at, next_action_at, attempts, created_at, updated_at";

impl PaymentRow {
    /// Decodes a row.
    pub fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(PaymentRow {
            payment_id: r.try_get("payment_id")?,
            payment_request_id: r.try_get("payment_request_id")?,
            device_id: r.try_get("device_id")?,
            app_id: r.try_get("app_id")?,
            app_order_id: r.try_get("app_order_id")?,
            product: decode(r, "product")?,
            binding_id: r.try_get("binding_id")?,
            wallet: r.try_get("wallet")?,
            code_value: r.try_get("code_value")?,
            currency: r.try_get("currency")?,
            amount: r.try_get("amount")?,
            description: r.try_get("description")?,
            status: decode(r, "status")?,
            stage: decode(r, "stage")?,
            result_code: r.try_get("result_code")?,
            result_message: r.try_get("result_message")?,
            ams_payment_id: r.try_get("ams_payment_id")?,
            refunded: r.try_get("refunded")?,
            receipt: r.try_get("receipt")?,
            conversion: match (
                r.try_get::<Option<String>, _>("paid_currency")?,
                r.try_get::<Option<i64>, _>("paid_amount")?,
                r.try_get::<Option<String>, _>("quote_pair")?,
                r.try_get::<Option<String>, _>("quote_price")?,
            ) {
                (Some(currency), Some(value), Some(pair), Some(price)) => Some(Conversion {
                    paid: Amount { currency, value },
                    quote_currency_pair: pair,
                    quote_price: price,
                }),
                _ => None,
            },
            expires_at: r.try_get("expires_at")?,
            next_action_at: r.try_get("next_action_at")?,
            attempts: r.try_get("attempts")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// A `refunds` row.
#[derive(Debug, Clone)]
pub struct RefundRow {
    /// AMS refundRequestId.
    pub refund_request_id: String,
    /// Server payment id.
    pub payment_id: String,
    /// App refund id.
    pub refund_id: String,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Reason.
    pub reason: Option<String>,
    /// Its status.
    pub status: RefundStatus,
    /// Result code.
    pub result_code: Option<String>,
    /// Alipay refundId.
    pub ams_refund_id: Option<String>,
    /// Receipt.
    pub receipt: Option<String>,
    /// Next engine action, Unix ms.
    pub next_action_at: i64,
    /// Engine attempts.
    pub attempts: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// Columns selected for [`RefundRow`].
pub const REFUND_COLUMNS: &str = "refund_request_id, payment_id, refund_id, currency, amount, reason, status, result_code, ams_refund_id, receipt, next_action_at, attempts, created_at";

impl RefundRow {
    /// Decodes a row.
    pub fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(RefundRow {
            refund_request_id: r.try_get("refund_request_id")?,
            payment_id: r.try_get("payment_id")?,
            refund_id: r.try_get("refund_id")?,
            currency: r.try_get("currency")?,
            amount: r.try_get("amount")?,
            reason: r.try_get("reason")?,
            status: decode(r, "status")?,
            result_code: r.try_get("result_code")?,
            ams_refund_id: r.try_get("ams_refund_id")?,
            receipt: r.try_get("receipt")?,
            next_action_at: r.try_get("next_action_at")?,
            attempts: r.try_get("attempts")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// A `checkouts` row.
#[derive(Debug, Clone)]
pub struct CheckoutRow {
    /// Checkout id.
    pub checkout_id: String,
    /// Owner.
    pub device_id: String,
    /// App.
    pub app_id: String,
    /// App order id.
    pub app_order_id: String,
    /// Binding that pays.
    pub binding_id: String,
    /// ISO 4217.
    pub currency: String,
    /// Sum of the parts, minor units.
    pub total: i64,
    /// All-or-nothing mode.
    pub all_or_nothing: bool,
    /// Digest of the request (idempotency).
    pub fingerprint: String,
    /// Its state.
    pub status: CheckoutState,
    /// Unix ms.
    pub expires_at: i64,
    /// Engine attempts.
    pub attempts: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// Columns selected for [`CheckoutRow`].
pub const CHECKOUT_COLUMNS: &str = "checkout_id, device_id, app_id, app_order_id, binding_id, currency, total, all_or_nothing, fingerprint, status, expires_at, attempts, created_at";

impl CheckoutRow {
    /// Decodes a row.
    pub fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(CheckoutRow {
            checkout_id: r.try_get("checkout_id")?,
            device_id: r.try_get("device_id")?,
            app_id: r.try_get("app_id")?,
            app_order_id: r.try_get("app_order_id")?,
            binding_id: r.try_get("binding_id")?,
            currency: r.try_get("currency")?,
            total: r.try_get("total")?,
            all_or_nothing: r.try_get::<i64, _>("all_or_nothing")? != 0,
            fingerprint: r.try_get("fingerprint")?,
            status: decode(r, "status")?,
            expires_at: r.try_get("expires_at")?,
            attempts: r.try_get("attempts")?,
            created_at: r.try_get("created_at")?,
        })
    }

    /// True while the engine still drives it.
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }
}

/// A `checkout_parts` row.
#[derive(Debug, Clone)]
pub struct PartRow {
    /// Position, from 0.
    pub idx: i64,
    /// The part's payment.
    pub payment_id: String,
    /// Seller id (`referenceMerchantId`).
    pub seller_id: String,
    /// Seller name.
    pub seller_name: String,
    /// Seller MCC.
    pub seller_mcc: String,
    /// How it is being reversed, once a reversal started.
    pub reversal: Option<Reversal>,
    /// Reversed by all-or-nothing.
    pub reversed: bool,
}

impl PartRow {
    /// Decodes a row.
    pub fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(PartRow {
            idx: r.try_get("idx")?,
            payment_id: r.try_get("payment_id")?,
            seller_id: r.try_get("seller_id")?,
            seller_name: r.try_get("seller_name")?,
            seller_mcc: r.try_get("seller_mcc")?,
            reversal: decode_opt(r, "reversal")?,
            reversed: r.try_get::<i64, _>("reversed")? != 0,
        })
    }
}

/// A `declarations` row.
#[derive(Debug, Clone)]
pub struct DeclarationRow {
    /// The idempotency key.
    pub declaration_request_id: String,
    /// The server payment id.
    pub payment_id: String,
    /// Sub-order, when split.
    pub sub_order_id: Option<String>,
    /// Customs office.
    pub customs_code: String,
    /// Merchant customs registration.
    pub merchant_customs_code: String,
    /// Merchant customs name.
    pub merchant_customs_name: String,
    /// ISO 4217 (CNY).
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Its status.
    pub status: DeclarationStatus,
    /// Customs result code.
    pub result_code: Option<String>,
    /// Customs result text.
    pub result_desc: Option<String>,
    /// Payment id at customs.
    pub customs_payment_id: Option<String>,
    /// Order id at customs.
    pub customs_order_id: Option<String>,
    /// `CHECK_PASSED` / `CHECK_NOT_PASSED`.
    pub identity_check_result: Option<String>,
    /// `CUP`, `NUCC`, `OTHER`.
    pub clearing_channel: Option<String>,
    /// Who declared it (operator key name).
    pub operator: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Columns selected for [`DeclarationRow`].
pub const DECLARATION_COLUMNS: &str = "declaration_request_id, payment_id, sub_order_id, customs_code, merchant_customs_code, merchant_customs_name, currency, amount, status, result_code, result_desc, customs_payment_id, customs_order_id, identity_check_result, clearing_channel, operator, created_at, updated_at";

impl DeclarationRow {
    /// Decodes a row.
    pub fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(DeclarationRow {
            declaration_request_id: r.try_get("declaration_request_id")?,
            payment_id: r.try_get("payment_id")?,
            sub_order_id: r.try_get("sub_order_id")?,
            customs_code: r.try_get("customs_code")?,
            merchant_customs_code: r.try_get("merchant_customs_code")?,
            merchant_customs_name: r.try_get("merchant_customs_name")?,
            currency: r.try_get("currency")?,
            amount: r.try_get("amount")?,
            status: decode(r, "status")?,
            result_code: r.try_get("result_code")?,
            result_desc: r.try_get("result_desc")?,
            customs_payment_id: r.try_get("customs_payment_id")?,
            customs_order_id: r.try_get("customs_order_id")?,
            identity_check_result: r.try_get("identity_check_result")?,
            clearing_channel: r.try_get("clearing_channel")?,
            operator: r.try_get("operator")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// An `operator_keys` row (the secret hash only where authentication reads it).
#[derive(Debug, Clone)]
pub struct OperatorKeyRow {
    /// Public id.
    pub key_id: String,
    /// Who or what holds it.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub last_used_at: Option<i64>,
    /// Unix ms.
    pub revoked_at: Option<i64>,
}

impl OperatorKeyRow {
    /// Decodes a row.
    pub fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(OperatorKeyRow {
            key_id: r.try_get("key_id")?,
            name: r.try_get("name")?,
            scope: decode(r, "scope")?,
            created_at: r.try_get("created_at")?,
            last_used_at: r.try_get("last_used_at")?,
            revoked_at: r.try_get("revoked_at")?,
        })
    }
}
