//! Request, response and event bodies of the device API (`/v1`, JSON, camelCase).
//!
//! Times are RFC 3339 strings in UTC. Money is [`Amount`]: an ISO 4217 code and an
//! integer number of minor units (cents; whole yen). Ids made by the server are opaque
//! strings.

use serde::{Deserialize, Serialize};

/// Money on the wire: `{"currency":"HKD","value":1050}` is HK$10.50.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// Minor units, a non-negative integer.
    pub value: i64,
}

/// What the wallet paid for a payment priced in another currency than the wallet's:
/// Alipay's `actualPaymentAmount` and `paymentQuote` (the price of one unit of the priced
/// currency in the paid one; `paid` is the payment's amount × `quotePrice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversion {
    /// The amount charged to the wallet, in the wallet's currency.
    pub paid: Amount,
    /// `PRICED/PAID`, e.g. `HKD/PHP`.
    pub quote_currency_pair: String,
    /// The quoted price as decimal text (never a float).
    pub quote_price: String,
}

/// `POST /v1/devices`: register a device key. Signed like every other request, with the
/// device id derived from `publicKey`, which proves possession of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    /// Ed25519 public key, base64url without padding (32 bytes).
    pub public_key: String,
    /// Name shown to the user beside the QR code and on the wallet page (1–64 characters).
    pub name: String,
    /// Device model, free text (≤ 64 characters).
    pub model: String,
    /// The device's own single-use enrollment token (`sbe_…`, issued by the operator),
    /// required for a new device unless the server runs with open registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_token: Option<String>,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device id (`dev_…`), derived from the public key.
    pub device_id: String,
    /// Its name.
    pub name: String,
    /// Its model.
    pub model: String,
    /// When it was first registered.
    pub registered_at: String,
}

/// `POST /v1/bindings`: start binding a wallet by Scan to Bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBindingRequest {
    /// The wallet, as AMS names it (`customerBelongsTo`), e.g. `ALIPAY_HK`, `GCASH`.
    pub wallet: String,
}

/// The QR code to display for a new binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartBindingResponse {
    /// The binding id.
    pub binding_id: String,
    /// The text to encode in the QR code.
    pub code_value: String,
    /// When the QR code stops working (15 minutes after it was made).
    pub expires_at: String,
    /// The device name, to show beside the QR code.
    pub device_name: String,
    /// A short code shown beside the QR code; the wallet page shows the same code.
    pub match_code: String,
}

/// The state of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingStatus {
    /// Waiting for the user to scan and approve.
    Pending,
    /// Bound: the device holds sealed tokens.
    Active,
    /// Authorisation or token exchange failed.
    Failed,
    /// Not approved within 15 minutes.
    Expired,
    /// Unbound from the device (`revoke`).
    Revoked,
    /// Unbound from the wallet app (`TOKEN_CANCELED`).
    Cancelled,
}

impl BindingStatus {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            BindingStatus::Pending => "pending",
            BindingStatus::Active => "active",
            BindingStatus::Failed => "failed",
            BindingStatus::Expired => "expired",
            BindingStatus::Revoked => "revoked",
            BindingStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the wire text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => BindingStatus::Pending,
            "active" => BindingStatus::Active,
            "failed" => BindingStatus::Failed,
            "expired" => BindingStatus::Expired,
            "revoked" => BindingStatus::Revoked,
            "cancelled" => BindingStatus::Cancelled,
            _ => return None,
        })
    }
}

/// A binding between this device and a wallet account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// The binding id.
    pub binding_id: String,
    /// The wallet.
    pub wallet: String,
    /// Its state.
    pub status: BindingStatus,
    /// The wallet's masked login id (e.g. `63****1234`), once bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_login_id: Option<String>,
    /// When the access token expires, once bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expires_at: Option<String>,
    /// When the refresh token expires, once bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_at: Option<String>,
    /// The sealed tokens: present when the binding has just completed or the tokens were
    /// just refreshed, until the device first uses them. The device stores this blob and
    /// sends it back with every payment; it cannot be opened anywhere but on the server,
    /// and only for this device and binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_tokens: Option<String>,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the binding was started.
    pub created_at: String,
}

/// `POST /v1/bindings/{bindingId}/refresh` and `POST /v1/bindings/{bindingId}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedTokensRequest {
    /// The sealed token blob the device holds for this binding.
    pub sealed_tokens: String,
}

/// `POST /v1/payments`: one agreement payment from a bound wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayRequest {
    /// The app on the device that charges (1–128 characters).
    pub app_id: String,
    /// The app's own order id: the idempotency key. The same (device, app, order id)
    /// is always the same payment (1–64 characters).
    pub app_order_id: String,
    /// Which binding pays.
    pub binding_id: String,
    /// The binding's sealed tokens.
    pub sealed_tokens: String,
    /// How much.
    pub amount: Amount,
    /// What for, shown to the user by the wallet (1–256 characters).
    pub description: String,
}

/// `POST /v1/payments/order-code`: a one-off payment by scanning an order QR code (Order
/// Code Payment), for users who will not bind and as a step-up above an app's cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderCodePayRequest {
    /// The app on the device that charges (1–128 characters).
    pub app_id: String,
    /// The app's own order id: the idempotency key, shared with agreement payments.
    pub app_order_id: String,
    /// How much.
    pub amount: Amount,
    /// What for (1–256 characters).
    pub description: String,
}

/// The order QR code of an order-code payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCode {
    /// The text to encode in the QR code the user scans with the wallet app.
    pub code_value: String,
    /// When the code stops working (the payment is then cancelled).
    pub expires_at: String,
}

/// How a payment is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentProduct {
    /// One-click, from a bound wallet (`AGREEMENT_PAYMENT`).
    Agreement,
    /// The user scans an order QR code (`IN_STORE_PAYMENT` / `OrderCode`).
    OrderCode,
}

/// The state of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Outcome not known yet; the server is inquiring. Never a failure.
    Pending,
    /// Paid (final).
    Succeeded,
    /// Not paid (final); `resultCode` says why.
    Failed,
    /// Cancelled (final); any money taken was returned.
    Cancelled,
}

impl PaymentStatus {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the wire text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => PaymentStatus::Pending,
            "succeeded" => PaymentStatus::Succeeded,
            "failed" => PaymentStatus::Failed,
            "cancelled" => PaymentStatus::Cancelled,
            _ => return None,
        })
    }

    /// True once the status can no longer change.
    pub fn is_final(self) -> bool {
        match self {
            PaymentStatus::Pending => false,
            PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Cancelled => true,
        }
    }
}

/// A payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// The server's payment id.
    pub payment_id: String,
    /// The AMS `paymentRequestId`, derived from (device, app, order id).
    pub payment_request_id: String,
    /// The app.
    pub app_id: String,
    /// The app's order id.
    pub app_order_id: String,
    /// Agreement or order code.
    pub product: PaymentProduct,
    /// The binding that pays (agreement payments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_id: Option<String>,
    /// The QR code to show (order-code payments, while pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_code: Option<OrderCode>,
    /// How much.
    pub amount: Amount,
    /// What for.
    pub description: String,
    /// Its state.
    pub status: PaymentStatus,
    /// Alipay's result code for a failure (or the last non-final one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// Alipay's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_message: Option<String>,
    /// Alipay's `paymentId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ams_payment_id: Option<String>,
    /// Total refunded successfully so far.
    pub refunded: Amount,
    /// For a payment priced in another currency than the wallet's: what the wallet paid,
    /// at which quote (once it succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
    /// The signed receipt, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// When the payment was first asked for.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// `POST /v1/payments/{paymentId}/refunds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundRequest {
    /// The app's refund id: the idempotency key within the payment (1–64 characters).
    pub refund_id: String,
    /// How much to return (same currency as the payment; partial refunds allowed).
    pub amount: Amount,
    /// Why (≤ 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The state of a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Outcome not known yet.
    Pending,
    /// Refunded (final).
    Succeeded,
    /// Not refunded (final).
    Failed,
}

impl RefundStatus {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// Parses the wire text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => RefundStatus::Pending,
            "succeeded" => RefundStatus::Succeeded,
            "failed" => RefundStatus::Failed,
            _ => return None,
        })
    }

    /// True once the status can no longer change.
    pub fn is_final(self) -> bool {
        !matches!(self, RefundStatus::Pending)
    }
}

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// The app's refund id.
    pub refund_id: String,
    /// The AMS `refundRequestId`.
    pub refund_request_id: String,
    /// The payment refunded.
    pub payment_id: String,
    /// How much.
    pub amount: Amount,
    /// Its state.
    pub status: RefundStatus,
    /// Alipay's result code for a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// Alipay's `refundId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ams_refund_id: Option<String>,
    /// The signed receipt, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// When it was asked for.
    pub created_at: String,
}

/// `POST /v1/checkouts`: one combined checkout paying several sellers, one agreement
/// payment per seller, confirmed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutRequest {
    /// The app on the device that charges (1–128 characters).
    pub app_id: String,
    /// The app's own order id: the idempotency key of the whole checkout. The same
    /// (device, app, order id) with the same parts is always the same checkout; with other
    /// parts it is `idempotency_conflict` (1–64 characters; the namespace is separate from
    /// single payments').
    pub app_order_id: String,
    /// Which binding pays.
    pub binding_id: String,
    /// The binding's sealed tokens.
    pub sealed_tokens: String,
    /// ISO 4217 code of the wallet's currency: what every part is paid in, and what a
    /// part without its own `currency` is priced in.
    pub currency: String,
    /// All parts succeed or none is charged (parts already paid are reversed when one
    /// fails). At most 6 parts; otherwise at most 20.
    pub all_or_nothing: bool,
    /// The parts, one per seller, in order (2 or more).
    pub parts: Vec<CheckoutPartRequest>,
}

/// One seller's part of a [`CheckoutRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutPartRequest {
    /// The seller, as the server's configuration names it (its `referenceMerchantId`).
    pub seller_id: String,
    /// How much, in minor units of the part's currency (positive).
    pub amount_minor: i64,
    /// ISO 4217 code the part is priced in: the checkout's (the wallet's) when absent,
    /// or the seller's own pricing currency (its `currency` in the server's `[[sellers]]`),
    /// paid in the wallet's currency at Alipay's quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// What for, shown to the user by the wallet (1–256 characters).
    pub description: String,
}

/// The state of a combined checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutStatus {
    /// Some part's outcome is not known yet (never a failure).
    Pending,
    /// Every part was paid (final).
    Succeeded,
    /// Independent mode only: some parts were paid and some failed; each part says which
    /// (final).
    PartiallySucceeded,
    /// Nothing is charged: every part failed, or (all-or-nothing) a part failed and every
    /// paid part was reversed (final).
    Failed,
}

impl CheckoutStatus {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutStatus::Pending => "pending",
            CheckoutStatus::Succeeded => "succeeded",
            CheckoutStatus::PartiallySucceeded => "partially_succeeded",
            CheckoutStatus::Failed => "failed",
        }
    }

    /// Parses the wire text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => CheckoutStatus::Pending,
            "succeeded" => CheckoutStatus::Succeeded,
            "partially_succeeded" => CheckoutStatus::PartiallySucceeded,
            "failed" => CheckoutStatus::Failed,
            _ => return None,
        })
    }

    /// True once the status can no longer change.
    pub fn is_final(self) -> bool {
        !matches!(self, CheckoutStatus::Pending)
    }
}

/// A combined checkout and its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    /// The server's checkout id (`chk_…`).
    pub checkout_id: String,
    /// The app on the device that charged.
    pub app_id: String,
    /// The app's order id.
    pub app_order_id: String,
    /// Its state.
    pub status: CheckoutStatus,
    /// Whether all parts succeed or none is charged.
    pub all_or_nothing: bool,
    /// ISO 4217 code of the wallet's currency (what every part is paid in).
    pub currency: String,
    /// The sum of the parts priced in `currency`, minor units (a part priced in another
    /// currency shows what it cost in `currency` in its `conversion`, once paid).
    pub total_minor: i64,
    /// When it was created.
    pub created_at: String,
    /// When an unfinished checkout is settled (15 minutes after creation).
    pub expires_at: String,
    /// The parts, in request order.
    pub parts: Vec<CheckoutPart>,
}

/// One seller's part of a [`Checkout`]: an ordinary payment of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutPart {
    /// Position in the request, from 0.
    pub index: u32,
    /// The seller (`referenceMerchantId`).
    pub seller_id: String,
    /// The seller's name.
    pub seller_name: String,
    /// The server's payment id of this part: `GET /v1/payments/{paymentId}` and refunds
    /// (`POST /v1/payments/{paymentId}/refunds`) work on it like on any payment.
    pub payment_id: String,
    /// How much, minor units of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code the part is priced in.
    #[serde(default)]
    pub currency: String,
    /// A part priced in another currency than the wallet's: what the wallet paid, at
    /// which quote (once it succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
    /// What for.
    pub description: String,
    /// The part's payment state (`cancelled` once reversed by all-or-nothing).
    pub status: PaymentStatus,
    /// The part's signed payment receipt, once final (its `paymentRequestId` is the
    /// part's, its `appOrderId` is `<checkout order id>#<index>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// Alipay's result code for a failure (or `CHECKOUT_REVERSED` / `CHECKOUT_EXPIRED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// Alipay's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_message: Option<String>,
    /// True when this part was paid and then cancelled or refunded in full because
    /// another part of an all-or-nothing checkout failed.
    pub reversed: bool,
}

/// An event on a device's stream (`GET /v1/events`, Server-Sent Events). The SSE `event:`
/// field is the `type`, the `id:` field is `seq`, and `data:` is this whole object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Per-server increasing sequence number; resume with `Last-Event-ID` or `?after=`.
    pub seq: i64,
    /// When it happened.
    pub created_at: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
// An event is built once, serialised and dropped (never stored in bulk): boxing the
// payment variant would only make every producer and consumer unwrap it.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// The wallet was bound; `sealedTokens` is set.
    #[serde(rename = "binding.completed")]
    BindingCompleted(Binding),
    /// The binding failed (authorisation or token exchange).
    #[serde(rename = "binding.failed")]
    BindingFailed(Binding),
    /// Nobody scanned the QR code in time.
    #[serde(rename = "binding.expired")]
    BindingExpired(Binding),
    /// The user unbound from the wallet app; delete the sealed tokens.
    #[serde(rename = "token.cancelled")]
    TokenCancelled(Binding),
    /// Tokens were refreshed; `sealedTokens` is the new blob.
    #[serde(rename = "token.refreshed")]
    TokenRefreshed(Binding),
    /// A payment reached a final state.
    #[serde(rename = "payment.result")]
    PaymentResult(Payment),
    /// A refund reached a final state.
    #[serde(rename = "refund.result")]
    RefundResult(Refund),
    /// A combined checkout reached a final state.
    #[serde(rename = "checkout.result")]
    CheckoutResult(Checkout),
    /// A subscription period was paid (the first charge too); `receipt` is new.
    #[serde(rename = "subscription.renewed")]
    SubscriptionRenewed(Subscription),
    /// A renewal charge failed; `reason` carries Alipay's result code.
    #[serde(rename = "subscription.renewal_failed")]
    SubscriptionRenewalFailed(Subscription),
    /// The subscription entered its grace period (retries follow).
    #[serde(rename = "subscription.grace")]
    SubscriptionGrace(Subscription),
    /// The subscription ended: no access, no more charges.
    #[serde(rename = "subscription.expired")]
    SubscriptionExpired(Subscription),
    /// The subscription was cancelled (by the app, the operator or an unbind in the
    /// wallet): access until `currentPeriodEnd`.
    #[serde(rename = "subscription.cancelled")]
    SubscriptionCancelled(Subscription),
}

impl Event {
    /// The `type` text (also the SSE `event:` field).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::BindingCompleted(_) => "binding.completed",
            Event::BindingFailed(_) => "binding.failed",
            Event::BindingExpired(_) => "binding.expired",
            Event::TokenCancelled(_) => "token.cancelled",
            Event::TokenRefreshed(_) => "token.refreshed",
            Event::PaymentResult(_) => "payment.result",
            Event::RefundResult(_) => "refund.result",
            Event::CheckoutResult(_) => "checkout.result",
            Event::SubscriptionRenewed(_) => "subscription.renewed",
            Event::SubscriptionRenewalFailed(_) => "subscription.renewal_failed",
            Event::SubscriptionGrace(_) => "subscription.grace",
            Event::SubscriptionExpired(_) => "subscription.expired",
            Event::SubscriptionCancelled(_) => "subscription.cancelled",
        }
    }
}

/// The billing periods a subscription may have (ISO 8601 durations): one week, one
/// month, three months, six months, one year. Months are calendar months from the
/// subscription's anchor (the 31st renews on the last day of shorter months).
pub const SUBSCRIPTION_PERIODS: &[&str] = &["P1W", "P1M", "P3M", "P6M", "P1Y"];

/// The free trial lengths a subscription may start with: 3 days, 1 week, 2 weeks, 1 month.
pub const TRIAL_PERIODS: &[&str] = &["P3D", "P1W", "P2W", "P1M"];

/// `POST /v1/subscriptions`: a recurring charge on a bound wallet. The server keeps a
/// grant of the binding's tokens scoped to this subscription and charges each period
/// itself, with or without the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeRequest {
    /// The app on the device that subscribes (1–128 characters).
    pub app_id: String,
    /// The app's own subscription id: the idempotency key. The same (device, app,
    /// subscription id) is always the same subscription; sent again with other terms
    /// it is `idempotency_conflict` (1–64 characters).
    pub app_subscription_id: String,
    /// Which binding pays.
    pub binding_id: String,
    /// The binding's sealed tokens (the server re-seals them as a grant for this
    /// subscription only).
    pub sealed_tokens: String,
    /// The plan's name, shown to the user and written on every charge (1–128 characters).
    pub plan: String,
    /// The price of one period, in the wallet's currency, within the wallet's minimum and
    /// per-transaction limit.
    pub amount: Amount,
    /// The billing period, one of [`SUBSCRIPTION_PERIODS`].
    pub period: String,
    /// A free trial before the first charge, one of [`TRIAL_PERIODS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<String>,
    /// An introductory price for the first periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introductory: Option<IntroductoryOffer>,
}

/// An introductory price: the first `periods` charged periods cost `amountMinor` (less
/// than the full price, in the same currency, within the wallet's limits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntroductoryOffer {
    /// The price of one introductory period, minor units.
    pub amount_minor: i64,
    /// How many periods (1 to 12).
    pub periods: u32,
}

/// The state of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// The first charge is in flight (outcome not known yet). No access yet.
    Pending,
    /// In its free trial; the first charge is at the trial's end. Access.
    Trial,
    /// The current period is paid; renews at its end. Access.
    Active,
    /// A renewal failed; the server retries on the documented schedule. Access.
    Grace,
    /// Will not renew (cancelled by the app, the operator, or an unbind in the wallet):
    /// access until `currentPeriodEnd`, then `expired`.
    Cancelled,
    /// Ended (final): no access, no more charges.
    Expired,
}

impl SubscriptionStatus {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Pending => "pending",
            SubscriptionStatus::Trial => "trial",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Grace => "grace",
            SubscriptionStatus::Cancelled => "cancelled",
            SubscriptionStatus::Expired => "expired",
        }
    }

    /// Parses the wire text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => SubscriptionStatus::Pending,
            "trial" => SubscriptionStatus::Trial,
            "active" => SubscriptionStatus::Active,
            "grace" => SubscriptionStatus::Grace,
            "cancelled" => SubscriptionStatus::Cancelled,
            "expired" => SubscriptionStatus::Expired,
            _ => return None,
        })
    }

    /// Every status.
    pub const ALL: &'static [SubscriptionStatus] = &[
        SubscriptionStatus::Pending,
        SubscriptionStatus::Trial,
        SubscriptionStatus::Active,
        SubscriptionStatus::Grace,
        SubscriptionStatus::Cancelled,
        SubscriptionStatus::Expired,
    ];
}

/// One charge of a subscription: period `periodIndex` (0 = the first charged period),
/// attempt `attempt` (0, then one more per retry in grace), an ordinary agreement
/// payment whose `paymentRequestId` is derived from (subscription, period, attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionCharge {
    /// Which period.
    pub period_index: u32,
    /// Which attempt at it.
    pub attempt: u32,
    /// The server's payment id (refund it through the payment's refund path).
    pub payment_id: String,
    /// The AMS `paymentRequestId`.
    pub payment_request_id: String,
    /// How much.
    pub amount: Amount,
    /// The payment's state.
    pub status: PaymentStatus,
    /// Alipay's result code for a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// The payment's signed receipt, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

/// A subscription as the device sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The server's id.
    pub subscription_id: String,
    /// The app.
    pub app_id: String,
    /// The app's own id.
    pub app_subscription_id: String,
    /// The binding that pays.
    pub binding_id: String,
    /// The plan's name.
    pub plan: String,
    /// The full price of one period.
    pub amount: Amount,
    /// The billing period.
    pub period: String,
    /// The trial, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<String>,
    /// The introductory price, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introductory: Option<IntroductoryOffer>,
    /// The state.
    pub status: SubscriptionStatus,
    /// Whether the app should grant access now (trial, active, grace, or cancelled before
    /// `currentPeriodEnd`).
    pub entitled: bool,
    /// The end of what is paid for (or of the trial), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<String>,
    /// Periods paid so far.
    pub periods_paid: u32,
    /// When the server charges next, RFC 3339 (none once cancelled or expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_charge_at: Option<String>,
    /// What it charges next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_charge_amount: Option<Amount>,
    /// Why it was cancelled or expired, or why the last charge failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The signed subscription receipt (JWS, typ `scanbind-subscription+jwt`) of the
    /// current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// Every charge, oldest first.
    pub charges: Vec<SubscriptionCharge>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// `GET /v1/subscriptions`: the device's subscriptions (`?appId=` narrows to one app).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionList {
    /// Oldest first.
    pub subscriptions: Vec<Subscription>,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` or the reason it is not.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkout_wire_shapes() {
        let req: CheckoutRequest = serde_json::from_str(
            r#"{"appId":"org.example.Shop","appOrderId":"cart-42","bindingId":"bnd_1","sealedTokens":"sbt1.x",
                "currency":"HKD","allOrNothing":true,
                "parts":[{"sellerId":"SELLER_A","amountMinor":1000,"description":"Books"}]}"#,
        )
        .unwrap();
        assert!(req.all_or_nothing);
        assert_eq!(req.parts[0].amount_minor, 1000);
        assert!(
            serde_json::from_str::<CheckoutRequest>(r#"{"appId":"a","extra":1}"#).is_err(),
            "unknown fields are refused"
        );
        let c = Checkout {
            checkout_id: "chk_1".into(),
            app_id: "org.example.Shop".into(),
            app_order_id: "cart-42".into(),
            status: CheckoutStatus::PartiallySucceeded,
            all_or_nothing: false,
            currency: "HKD".into(),
            total_minor: 1000,
            created_at: "2026-11-22T07:00:00Z".into(),
            expires_at: "2026-11-22T07:15:00Z".into(),
            parts: vec![CheckoutPart {
                index: 0,
                seller_id: "SELLER_A".into(),
                seller_name: "Alpha Books".into(),
                payment_id: "pay_1".into(),
                amount_minor: 1000,
                currency: "HKD".into(),
                conversion: None,
                description: "Books".into(),
                status: PaymentStatus::Failed,
                receipt: None,
                result_code: Some("RISK_REJECT".into()),
                result_message: None,
                reversed: false,
            }],
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"checkoutId":"chk_1","appId":"org.example.Shop","appOrderId":"cart-42","status":"partially_succeeded","allOrNothing":false,"currency":"HKD","totalMinor":1000,"createdAt":"2026-11-22T07:00:00Z","expiresAt":"2026-11-22T07:15:00Z","parts":[{"index":0,"sellerId":"SELLER_A","sellerName":"Alpha Books","paymentId":"pay_1","amountMinor":1000,"currency":"HKD","description":"Books","status":"failed","resultCode":"RISK_REJECT","reversed":false}]}"#
        );
        assert_eq!(serde_json::from_str::<Checkout>(&json).unwrap(), c);
        let ev = serde_json::to_value(Event::CheckoutResult(c)).unwrap();
        assert_eq!(ev["type"], "checkout.result");
        for s in [
            CheckoutStatus::Pending,
            CheckoutStatus::Succeeded,
            CheckoutStatus::PartiallySucceeded,
            CheckoutStatus::Failed,
        ] {
            assert_eq!(CheckoutStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
