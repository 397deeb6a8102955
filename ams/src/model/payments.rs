//! Payment endpoints: pay (§5.5, Order Code §7), inquiryPayment (§5.7), cancel (§5.8),
//! refund (§5.9), inquiryRefund (§5.10).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{
    CodeDetail, Env, Extra, InStorePaymentScenario, NO_LIMIT, Order, PaymentFactor, PaymentMethod,
    PaymentStatus, ProductCode, PspCustomerInfo, Quote, RefundStatus, SecretString,
    SettlementStrategy, Transaction, amount, datetime, optional, present, qr_code_text, region,
    required, response_from_result,
};
use super::{AmsRequest, AmsResponse, FieldError};
use crate::money::Amount;
use crate::result::{AmsResult, Endpoint, ResultCode};
use crate::wallet::Wallet;

/// pay request: agreement payment with an accessToken (§5.5) or an Order Code (§7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayRequest {
    /// `AGREEMENT_PAYMENT`, `IN_STORE_PAYMENT`, ...
    pub product_code: ProductCode,
    /// Idempotency key, String(64).
    pub payment_request_id: String,
    /// The order.
    pub order: Order,
    /// Amount to charge (same currency as `order.orderAmount`).
    pub payment_amount: Amount,
    /// How to pay: wallet + accessToken, or `CONNECT_WALLET` for Order Code.
    pub payment_method: PaymentMethod,
    /// Expiry (agreement: default and maximum request time + 1 min; Order Code < 30 min).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_expiry_time: Option<String>,
    /// Redirect URL, String(2048) (not used for agreement pay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_redirect_url: Option<String>,
    /// notifyPayment URL, String(2048); wins over the Dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_notify_url: Option<String>,
    /// Settlement currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_strategy: Option<SettlementStrategy>,
    /// Environment (send `{"terminalType":"WEB"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    /// Payment factors (in-store scenario, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_factor: Option<PaymentFactor>,
    /// Acquiring region, String(2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_region: Option<String>,
    /// User region, String(2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_region: Option<String>,
    /// App id, String(32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Multi-account merchants, String(32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_account_id: Option<String>,
    /// Credit payment plan (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_pay_plan: Option<Value>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Merchant metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl PayRequest {
    fn base(
        product_code: ProductCode,
        payment_request_id: String,
        order: Order,
        payment_amount: Amount,
        payment_method: PaymentMethod,
    ) -> Self {
        PayRequest {
            product_code,
            payment_request_id,
            order,
            payment_amount,
            payment_method,
            payment_expiry_time: None,
            payment_redirect_url: None,
            payment_notify_url: None,
            settlement_strategy: None,
            env: None,
            payment_factor: None,
            merchant_region: None,
            user_region: None,
            app_id: None,
            merchant_account_id: None,
            credit_pay_plan: None,
            extend_info: None,
            metadata: None,
            extra: Extra::new(),
        }
    }

    /// An agreement (Scan to Bind) payment: `AGREEMENT_PAYMENT`, `paymentMethod` =
    /// wallet + accessToken, `env.terminalType` `WEB`.
    pub fn agreement(
        payment_request_id: impl Into<String>,
        order: Order,
        amount: Amount,
        wallet: Wallet,
        access_token: SecretString,
    ) -> Self {
        let mut method = PaymentMethod::of_type(wallet.as_str());
        method.payment_method_id = Some(access_token);
        PayRequest {
            env: Some(Env::web()),
            ..Self::base(
                ProductCode::AgreementPayment,
                payment_request_id.into(),
                order,
                amount,
                method,
            )
        }
    }

    /// An Order Code payment (§7): `IN_STORE_PAYMENT`, scenario `OrderCode`,
    /// `CONNECT_WALLET`. `order.merchant` (with its store) must be set.
    pub fn order_code(payment_request_id: impl Into<String>, order: Order, amount: Amount) -> Self {
        PayRequest {
            payment_factor: Some(PaymentFactor {
                in_store_payment_scenario: Some(InStorePaymentScenario::OrderCode),
                ..PaymentFactor::default()
            }),
            ..Self::base(
                ProductCode::InStorePayment,
                payment_request_id.into(),
                order,
                amount,
                PaymentMethod::of_type(PaymentMethod::CONNECT_WALLET),
            )
        }
    }

    /// The in-store scenario, if any.
    pub fn in_store_scenario(&self) -> Option<&InStorePaymentScenario> {
        self.payment_factor
            .as_ref()
            .and_then(|f| f.in_store_payment_scenario.as_ref())
    }

    fn validate_order_code(&self) -> Result<(), FieldError> {
        if self.payment_method.payment_method_type != PaymentMethod::CONNECT_WALLET {
            return Err(FieldError::new(
                "paymentMethod.paymentMethodType",
                "must be CONNECT_WALLET for an Order Code payment",
            ));
        }
        let Some(merchant) = &self.order.merchant else {
            return Err(FieldError::new(
                "order.merchant",
                "is required for Order Code",
            ));
        };
        let m = "order.merchant";
        required(
            &format!("{m}.referenceMerchantId"),
            merchant.reference_merchant_id.as_deref().unwrap_or(""),
            64,
        )?;
        required(
            &format!("{m}.merchantMCC"),
            merchant.merchant_mcc.as_deref().unwrap_or(""),
            NO_LIMIT,
        )?;
        required(
            &format!("{m}.merchantName"),
            merchant.merchant_name.as_deref().unwrap_or(""),
            NO_LIMIT,
        )?;
        let Some(store) = &merchant.store else {
            return Err(FieldError::new(
                format!("{m}.store"),
                "is required for Order Code",
            ));
        };
        required(
            &format!("{m}.store.referenceStoreId"),
            store.reference_store_id.as_deref().unwrap_or(""),
            NO_LIMIT,
        )?;
        required(
            &format!("{m}.store.storeName"),
            store.store_name.as_deref().unwrap_or(""),
            NO_LIMIT,
        )?;
        required(
            &format!("{m}.store.storeMCC"),
            store.store_mcc.as_deref().unwrap_or(""),
            NO_LIMIT,
        )
    }
}

impl AmsRequest for PayRequest {
    const ENDPOINT: Endpoint = Endpoint::Pay;
    type Response = PayResponse;

    fn idempotency_key(&self) -> Option<&str> {
        Some(&self.payment_request_id)
    }

    fn validate(&self) -> Result<(), FieldError> {
        required("productCode", self.product_code.as_str(), NO_LIMIT)?;
        required("paymentRequestId", &self.payment_request_id, 64)?;
        let order_amount = self.order.check()?;
        let paid = amount("paymentAmount", &self.payment_amount, true)?;
        if paid.currency() != order_amount.currency() {
            return Err(FieldError::new(
                "paymentAmount.currency",
                format!(
                    "must equal order.orderAmount.currency ({} != {})",
                    paid.currency(),
                    order_amount.currency()
                ),
            ));
        }
        required(
            "paymentMethod.paymentMethodType",
            &self.payment_method.payment_method_type,
            NO_LIMIT,
        )?;
        let method_id = self
            .payment_method
            .payment_method_id
            .as_ref()
            .map(SecretString::expose);
        match &self.product_code {
            ProductCode::AgreementPayment => {
                required(
                    "paymentMethod.paymentMethodId",
                    method_id.unwrap_or(""),
                    128,
                )?;
            }
            ProductCode::InStorePayment => {
                present(
                    "paymentFactor.inStorePaymentScenario",
                    self.in_store_scenario(),
                )?;
                optional("paymentMethod.paymentMethodId", method_id, 128)?;
                if self.in_store_scenario() == Some(&InStorePaymentScenario::OrderCode) {
                    self.validate_order_code()?;
                }
            }
            _ => optional("paymentMethod.paymentMethodId", method_id, 128)?,
        }
        datetime("paymentExpiryTime", self.payment_expiry_time.as_deref())?;
        optional(
            "paymentRedirectUrl",
            self.payment_redirect_url.as_deref(),
            2048,
        )?;
        optional("paymentNotifyUrl", self.payment_notify_url.as_deref(), 2048)?;
        if let Some(s) = &self.settlement_strategy {
            optional(
                "settlementStrategy.settlementCurrency",
                s.settlement_currency.as_deref(),
                3,
            )?;
        }
        region("merchantRegion", self.merchant_region.as_deref())?;
        region("userRegion", self.user_region.as_deref())?;
        optional("appId", self.app_id.as_deref(), 32)?;
        optional("merchantAccountId", self.merchant_account_id.as_deref(), 32)
    }
}

/// `orderCodeForm`: the order QR code of an Order Code payment (§7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCodeForm {
    /// Payment method type (e.g. `CONNECT_WALLET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_type: Option<String>,
    /// When the code expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// Renderings of the code.
    #[serde(default)]
    pub code_details: Vec<CodeDetail>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
}

impl OrderCodeForm {
    /// The `QRCODE`/`TEXT` value to render as the QR code.
    pub fn qr_text(&self) -> Option<&str> {
        qr_code_text(&self.code_details)
    }
}

/// pay response (§5.5, §7). For Order Code, S means "code created, not paid".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayResponse {
    /// Outcome.
    pub result: AmsResult,
    /// Echo of the idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// AMS payment id, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<Amount>,
    /// When the payment was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_create_time: Option<String>,
    /// When it was paid (on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_time: Option<String>,
    /// Amount actually paid by the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_payment_amount: Option<Amount>,
    /// Payment exchange quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_quote: Option<Quote>,
    /// Gross settlement amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<Amount>,
    /// Settlement quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_quote: Option<Quote>,
    /// The wallet's customer information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_customer_info: Option<PspCustomerInfo>,
    /// Method-specific result information (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_result_info: Option<Value>,
    /// Acquirer information (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_info: Option<Value>,
    /// The order QR code (Order Code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_code_form: Option<OrderCodeForm>,
    /// Redirect action (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_action_form: Option<Value>,
    /// Cashier URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_url: Option<String>,
    /// Cashier app scheme URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme_url: Option<String>,
    /// Cashier app link URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applink_url: Option<String>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for PayResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}

/// Checks "paymentId or paymentRequestId, at least one" style pairs.
fn one_of(
    (a_name, a): (&str, Option<&str>),
    (b_name, b): (&str, Option<&str>),
    max: usize,
) -> Result<(), FieldError> {
    if a.is_none() && b.is_none() {
        return Err(FieldError::new(
            a_name,
            format!("{a_name} or {b_name} is required"),
        ));
    }
    optional(a_name, a, max)?;
    optional(b_name, b, max)
}

/// inquiryPayment request: `paymentId` or `paymentRequestId` (§5.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryPaymentRequest {
    /// The merchant's request id, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// AMS payment id, String(64); wins if both are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Multi-account merchants, String(32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_account_id: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl InquiryPaymentRequest {
    /// Inquire by AMS payment id.
    pub fn by_payment_id(payment_id: impl Into<String>) -> Self {
        InquiryPaymentRequest {
            payment_request_id: None,
            payment_id: Some(payment_id.into()),
            merchant_account_id: None,
            extra: Extra::new(),
        }
    }

    /// Inquire by the merchant's paymentRequestId.
    pub fn by_payment_request_id(payment_request_id: impl Into<String>) -> Self {
        InquiryPaymentRequest {
            payment_request_id: Some(payment_request_id.into()),
            payment_id: None,
            merchant_account_id: None,
            extra: Extra::new(),
        }
    }
}

impl AmsRequest for InquiryPaymentRequest {
    const ENDPOINT: Endpoint = Endpoint::InquiryPayment;
    type Response = InquiryPaymentResponse;

    fn validate(&self) -> Result<(), FieldError> {
        one_of(
            ("paymentId", self.payment_id.as_deref()),
            ("paymentRequestId", self.payment_request_id.as_deref()),
            64,
        )?;
        optional("merchantAccountId", self.merchant_account_id.as_deref(), 32)
    }
}

/// inquiryPayment response (§5.7): `result` is about the call, `paymentStatus` about the payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryPaymentResponse {
    /// Outcome of the inquiry call.
    pub result: AmsResult,
    /// The payment's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<PaymentStatus>,
    /// Why the payment failed (a result code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_result_code: Option<ResultCode>,
    /// Failure text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_result_message: Option<String>,
    /// The merchant's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// AMS payment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<Amount>,
    /// Amount actually paid by the user (`paymentAmount` × `paymentQuote.quotePrice` when
    /// the wallet pays in another currency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_payment_amount: Option<Amount>,
    /// The quote between the payment currency and the currency actually paid (absent
    /// when they are the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_quote: Option<Quote>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_create_time: Option<String>,
    /// Payment time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_time: Option<String>,
    /// The wallet's customer information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_customer_info: Option<PspCustomerInfo>,
    /// Amount declarable to customs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_declaration_amount: Option<Amount>,
    /// Gross settlement amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<Amount>,
    /// Settlement quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_quote: Option<Quote>,
    /// Transactions on this payment (refunds, cancel, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<Transaction>>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for InquiryPaymentResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}

/// cancel request: `paymentId` or `paymentRequestId`; full amount only (§5.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    /// AMS payment id, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The merchant's request id, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// Multi-account merchants, String(32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_account_id: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CancelRequest {
    /// Cancel by AMS payment id.
    pub fn by_payment_id(payment_id: impl Into<String>) -> Self {
        CancelRequest {
            payment_id: Some(payment_id.into()),
            payment_request_id: None,
            merchant_account_id: None,
            extra: Extra::new(),
        }
    }

    /// Cancel by the merchant's paymentRequestId.
    pub fn by_payment_request_id(payment_request_id: impl Into<String>) -> Self {
        CancelRequest {
            payment_id: None,
            payment_request_id: Some(payment_request_id.into()),
            merchant_account_id: None,
            extra: Extra::new(),
        }
    }
}

impl AmsRequest for CancelRequest {
    const ENDPOINT: Endpoint = Endpoint::Cancel;
    type Response = CancelResponse;

    fn validate(&self) -> Result<(), FieldError> {
        one_of(
            ("paymentId", self.payment_id.as_deref()),
            ("paymentRequestId", self.payment_request_id.as_deref()),
            64,
        )?;
        optional("merchantAccountId", self.merchant_account_id.as_deref(), 32)
    }
}

/// cancel response (§5.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelResponse {
    /// Outcome.
    pub result: AmsResult,
    /// AMS payment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The merchant's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// When it was cancelled (on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_time: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for CancelResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}

/// refund request: full or partial, cumulative ≤ paid (§5.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// Idempotency key, String(64).
    pub refund_request_id: String,
    /// The payment to refund, String(64).
    pub payment_id: String,
    /// Amount to refund (positive, same currency as the payment).
    pub refund_amount: Amount,
    /// The merchant's own refund id, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_refund_id: Option<String>,
    /// Reason, String(256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    /// notifyRefund URL, String(1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_notify_url: Option<String>,
    /// Asynchronous refund.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::flex::opt_bool_or_string"
    )]
    pub is_async_refund: Option<bool>,
    /// Capture id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
    /// Refund details (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_details: Option<Value>,
    /// Merchant metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl RefundRequest {
    /// Refunds `amount` of `payment_id` under the idempotency key `refund_request_id`.
    pub fn new(
        refund_request_id: impl Into<String>,
        payment_id: impl Into<String>,
        amount: Amount,
    ) -> Self {
        RefundRequest {
            refund_request_id: refund_request_id.into(),
            payment_id: payment_id.into(),
            refund_amount: amount,
            reference_refund_id: None,
            refund_reason: None,
            refund_notify_url: None,
            is_async_refund: None,
            capture_id: None,
            refund_details: None,
            metadata: None,
            extend_info: None,
            extra: Extra::new(),
        }
    }
}

impl AmsRequest for RefundRequest {
    const ENDPOINT: Endpoint = Endpoint::Refund;
    type Response = RefundResponse;

    fn idempotency_key(&self) -> Option<&str> {
        Some(&self.refund_request_id)
    }

    fn validate(&self) -> Result<(), FieldError> {
        required("refundRequestId", &self.refund_request_id, 64)?;
        required("paymentId", &self.payment_id, 64)?;
        amount("refundAmount", &self.refund_amount, true)?;
        optional("referenceRefundId", self.reference_refund_id.as_deref(), 64)?;
        optional("refundReason", self.refund_reason.as_deref(), 256)?;
        optional("refundNotifyUrl", self.refund_notify_url.as_deref(), 1024)?;
        optional("metadata", self.metadata.as_deref(), 2048)
    }
}

/// refund response (§5.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundResponse {
    /// Outcome.
    pub result: AmsResult,
    /// Echo of the idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// AMS refund id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The refunded payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Amount refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<Amount>,
    /// When it was refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
    /// Gross settlement amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<Amount>,
    /// Settlement quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_quote: Option<Quote>,
    /// Acquirer reference number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_reference_no: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for RefundResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}

/// inquiryRefund request: `refundId` or `refundRequestId` (§5.10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRefundRequest {
    /// The merchant's refund request id, String(64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// AMS refund id, String(64); wins if both are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// Multi-account merchants, String(32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_account_id: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl InquiryRefundRequest {
    /// Inquire by AMS refund id.
    pub fn by_refund_id(refund_id: impl Into<String>) -> Self {
        InquiryRefundRequest {
            refund_request_id: None,
            refund_id: Some(refund_id.into()),
            merchant_account_id: None,
            extra: Extra::new(),
        }
    }

    /// Inquire by the merchant's refundRequestId.
    pub fn by_refund_request_id(refund_request_id: impl Into<String>) -> Self {
        InquiryRefundRequest {
            refund_request_id: Some(refund_request_id.into()),
            refund_id: None,
            merchant_account_id: None,
            extra: Extra::new(),
        }
    }
}

impl AmsRequest for InquiryRefundRequest {
    const ENDPOINT: Endpoint = Endpoint::InquiryRefund;
    type Response = InquiryRefundResponse;

    fn validate(&self) -> Result<(), FieldError> {
        one_of(
            ("refundId", self.refund_id.as_deref()),
            ("refundRequestId", self.refund_request_id.as_deref()),
            64,
        )?;
        optional("merchantAccountId", self.merchant_account_id.as_deref(), 32)
    }
}

/// inquiryRefund response (§5.10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRefundResponse {
    /// Outcome of the inquiry call.
    pub result: AmsResult,
    /// AMS refund id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The merchant's refund request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// Amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<Amount>,
    /// `SUCCESS`, `PROCESSING`, `FAIL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<RefundStatus>,
    /// When it was refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
    /// Gross settlement amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<Amount>,
    /// Settlement quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_quote: Option<Quote>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for InquiryRefundResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}
