//! Structures shared by several endpoints (ams-api.md §5.0), the open enums, the
//! [`SecretString`] used for bearer secrets, and the small validation helpers.
//!
//! Booleans are serialized as native JSON `true`/`false`, as every official SDK sends them
//! (ams-api.md §1.3), and accepted both natively and as `"true"`/`"false"` strings.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::FieldError;
use crate::money::{Amount, Money, MoneyError};
use crate::result::AmsResult;

/// Defines an open wire enum: known values are variants, anything else is kept in `Other`.
///
/// Generates `as_str`, `parse`, `KNOWN`, `is_known`, `Display`, infallible `FromStr` and
/// string (de)serialization.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate does not know; kept verbatim.
            Other(String),
        }

        impl $name {
            /// Every known value, in documentation order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant,)*];

            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Other(s) => s,
                }
            }

            /// Parses the wire text (exact match); unknown text is kept in `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $text => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }

            /// False for `Other`.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::parse(s))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}
pub(crate) use wire_enum;

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

pub use scanbind_money::SecretString;

// ---------------------------------------------------------------------------------------
// Open enums
// ---------------------------------------------------------------------------------------

wire_enum! {
    /// `terminalType`: the client the user is on (Scan to Bind = `WEB`).
    pub enum TerminalType {
        /// Desktop browser.
        Web = "WEB",
        /// Mobile browser.
        Wap = "WAP",
        /// Mobile app.
        App = "APP",
        /// Mini program.
        MiniApp = "MINI_APP",
    }
}

wire_enum! {
    /// `osType`, for WAP/APP terminals.
    pub enum OsType {
        /// iOS.
        Ios = "IOS",
        /// Android.
        Android = "ANDROID",
    }
}

wire_enum! {
    /// `codeValueType` of a [`CodeDetail`].
    pub enum CodeValueType {
        /// A QR code.
        Qrcode = "QRCODE",
        /// A barcode.
        Barcode = "BARCODE",
    }
}

wire_enum! {
    /// `displayType` of a [`CodeDetail`]: the text to encode, or an image of the code.
    pub enum DisplayType {
        /// The code value itself (a URL to render as a QR code).
        Text = "TEXT",
        /// A small image URL.
        Smallimage = "SMALLIMAGE",
        /// A medium image URL.
        Middleimage = "MIDDLEIMAGE",
        /// A big image URL.
        Bigimage = "BIGIMAGE",
        /// An image URL.
        Image = "IMAGE",
    }
}

wire_enum! {
    /// `productCode` of a pay request.
    pub enum ProductCode {
        /// Agreement (Scan to Bind / auto debit) payment with an accessToken.
        AgreementPayment = "AGREEMENT_PAYMENT",
        /// In-store payment (Order Code, ams-api.md §7).
        InStorePayment = "IN_STORE_PAYMENT",
        /// Cashier (online checkout) payment.
        CashierPayment = "CASHIER_PAYMENT",
    }
}

wire_enum! {
    /// `paymentFactor.inStorePaymentScenario` (mixed case on the wire).
    pub enum InStorePaymentScenario {
        /// The user presents a payment code.
        PaymentCode = "PaymentCode",
        /// The merchant presents an order QR code.
        OrderCode = "OrderCode",
        /// The user scans a static entry code.
        EntryCode = "EntryCode",
    }
}

wire_enum! {
    /// `paymentStatus` in inquiryPayment.
    pub enum PaymentStatus {
        /// Paid (final).
        Success = "SUCCESS",
        /// Failed (final).
        Fail = "FAIL",
        /// Still processing.
        Processing = "PROCESSING",
        /// Cancelled (final).
        Cancelled = "CANCELLED",
        /// Pending.
        Pending = "PENDING",
    }
}

impl PaymentStatus {
    /// SUCCESS, FAIL and CANCELLED are final.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Success | PaymentStatus::Fail | PaymentStatus::Cancelled
        )
    }
}

wire_enum! {
    /// `refundStatus` in inquiryRefund and notifyRefund.
    pub enum RefundStatus {
        /// Refunded (final).
        Success = "SUCCESS",
        /// Still processing.
        Processing = "PROCESSING",
        /// Failed (final).
        Fail = "FAIL",
    }
}

wire_enum! {
    /// `transactionType` of an inquiryPayment transaction.
    pub enum TransactionType {
        /// The payment.
        Payment = "PAYMENT",
        /// A refund.
        Refund = "REFUND",
        /// A capture.
        Capture = "CAPTURE",
        /// A cancellation.
        Cancel = "CANCEL",
        /// An authorization.
        Authorization = "AUTHORIZATION",
        /// A void.
        Void = "VOID",
        /// An incremental authorization.
        Incremental = "INCREMENTAL",
    }
}

wire_enum! {
    /// `transactionStatus` of an inquiryPayment transaction.
    pub enum TransactionStatus {
        /// Succeeded.
        Success = "SUCCESS",
        /// Failed.
        Fail = "FAIL",
        /// Processing.
        Processing = "PROCESSING",
        /// Cancelled.
        Cancelled = "CANCELLED",
        /// Pending.
        Pending = "PENDING",
    }
}

// ---------------------------------------------------------------------------------------
// Shared structures
// ---------------------------------------------------------------------------------------

/// `Env`: the user's environment (ams-api.md §5.0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Env {
    /// `WEB`, `WAP`, `APP`, `MINI_APP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_type: Option<TerminalType>,
    /// `IOS`, `ANDROID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<OsType>,
    /// OS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Browser user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Device token id (risk control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_token_id: Option<String>,
    /// Client IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Cookie id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_id: Option<String>,
    /// In-store terminal id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_terminal_id: Option<String>,
    /// In-store terminal request time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_terminal_request_time: Option<String>,
    /// Browser details (SDK `BrowserInfo` object, kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_info: Option<Value>,
    /// Device brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_brand: Option<String>,
    /// Device model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
    /// Device language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_language: Option<String>,
    /// Device id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
}

impl Env {
    /// `{"terminalType":"WEB"}`, what Scan to Bind sends.
    pub fn web() -> Self {
        Env {
            terminal_type: Some(TerminalType::Web),
            ..Env::default()
        }
    }
}

/// `CodeDetail`: one rendering of a QR code or barcode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeDetail {
    /// `QRCODE` or `BARCODE`.
    pub code_value_type: CodeValueType,
    /// The code text (a URL) or an image URL, ≤2048 characters.
    pub code_value: String,
    /// `TEXT` or one of the image sizes.
    pub display_type: DisplayType,
}

impl CodeDetail {
    /// A `QRCODE` / `TEXT` detail: the value to render as a QR code.
    pub fn qr_text(code_value: impl Into<String>) -> Self {
        CodeDetail {
            code_value_type: CodeValueType::Qrcode,
            code_value: code_value.into(),
            display_type: DisplayType::Text,
        }
    }
}

/// The `codeValue` of the first `QRCODE`/`TEXT` detail: the text to render as a QR code.
pub fn qr_code_text(details: &[CodeDetail]) -> Option<&str> {
    details
        .iter()
        .find(|d| d.code_value_type == CodeValueType::Qrcode && d.display_type == DisplayType::Text)
        .map(|d| d.code_value.as_str())
}

/// A person's name (SDK `UserName`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserName {
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
}

/// A postal address (SDK `Address`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// ISO 3166 region code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// State or province.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Address line 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address1: Option<String>,
    /// Address line 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address2: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
    /// Free label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `Store` of a merchant (in-store payments).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    /// The merchant's store id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_store_id: Option<String>,
    /// Store name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_name: Option<String>,
    /// Store merchant category code.
    #[serde(rename = "storeMCC", default, skip_serializing_if = "Option::is_none")]
    pub store_mcc: Option<String>,
    /// Name shown to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_display_name: Option<String>,
    /// Store terminal id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_terminal_id: Option<String>,
    /// Operator id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_operator_id: Option<String>,
    /// Store address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_address: Option<Address>,
    /// Store phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_phone_no: Option<String>,
}

impl Store {
    /// A store with the three fields Order Code requires.
    pub fn new(
        reference_store_id: impl Into<String>,
        store_name: impl Into<String>,
        store_mcc: impl Into<String>,
    ) -> Self {
        Store {
            reference_store_id: Some(reference_store_id.into()),
            store_name: Some(store_name.into()),
            store_mcc: Some(store_mcc.into()),
            ..Store::default()
        }
    }
}

/// `Merchant` inside an order: the merchant that sells (ISV / in-store).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merchant {
    /// Secondary merchant id (= consult `authClientId` in ISV mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_merchant_id: Option<String>,
    /// Merchant category code.
    #[serde(
        rename = "merchantMCC",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub merchant_mcc: Option<String>,
    /// Legal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    /// Name shown to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_display_name: Option<String>,
    /// Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_address: Option<Address>,
    /// Registration date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_register_date: Option<String>,
    /// The store (in-store payments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<Store>,
    /// Merchant type (individual / enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_type: Option<String>,
}

impl Merchant {
    /// A merchant with the fields Order Code requires (ams-api.md §7).
    pub fn new(
        reference_merchant_id: impl Into<String>,
        merchant_mcc: impl Into<String>,
        merchant_name: impl Into<String>,
        store: Store,
    ) -> Self {
        Merchant {
            reference_merchant_id: Some(reference_merchant_id.into()),
            merchant_mcc: Some(merchant_mcc.into()),
            merchant_name: Some(merchant_name.into()),
            store: Some(store),
            ..Merchant::default()
        }
    }
}

/// `Goods`: one line of an order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goods {
    /// The merchant's goods id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_goods_id: Option<String>,
    /// Goods name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_name: Option<String>,
    /// Category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_category: Option<String>,
    /// Brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_brand: Option<String>,
    /// Unit price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_unit_amount: Option<Amount>,
    /// Quantity (a string or an integer on the wire).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::flex::opt_string_or_number"
    )]
    pub goods_quantity: Option<String>,
    /// SKU name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_sku_name: Option<String>,
    /// Goods page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_url: Option<String>,
    /// Delivery method (`PHYSICAL`, `DIGITAL`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_method_type: Option<String>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_image_url: Option<String>,
}

/// `Buyer`: the merchant's view of the buyer (risk control).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Buyer {
    /// The merchant's buyer id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_buyer_id: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_name: Option<UserName>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_phone_no: Option<String>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_email: Option<String>,
    /// When the buyer registered with the merchant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_registration_time: Option<String>,
}

/// `Order`: what is being bought (ams-api.md §5.0, §5.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The merchant's order id, ≤64.
    pub reference_order_id: String,
    /// Description shown to the user, ≤256.
    pub order_description: String,
    /// Order amount.
    pub order_amount: Amount,
    /// The selling merchant (required for Order Code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<Merchant>,
    /// Goods lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods: Option<Vec<Goods>>,
    /// Shipping information (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Value>,
    /// The buyer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer: Option<Buyer>,
    /// The order's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
}

impl Order {
    /// An order with its three required fields.
    pub fn new(
        reference_order_id: impl Into<String>,
        order_description: impl Into<String>,
        order_amount: Amount,
    ) -> Self {
        Order {
            reference_order_id: reference_order_id.into(),
            order_description: order_description.into(),
            order_amount,
            merchant: None,
            goods: None,
            shipping: None,
            buyer: None,
            env: None,
            extend_info: None,
        }
    }
}

/// `paymentMethod` of a pay request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethod {
    /// The wallet (`GCASH`, `ALIPAY_HK`, ...) or `CONNECT_WALLET` for Order Code.
    pub payment_method_type: String,
    /// The accessToken for agreement payments (a bearer secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_id: Option<SecretString>,
    /// Customer id (SDK model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Funding source (SDK model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<String>,
    /// Method-specific data (SDK model, kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_meta_data: Option<Value>,
}

impl PaymentMethod {
    /// The Order Code payment method type: the buyer's wallet is unknown until it scans.
    pub const CONNECT_WALLET: &'static str = "CONNECT_WALLET";

    /// A payment method of this type and nothing else.
    pub fn of_type(payment_method_type: impl Into<String>) -> Self {
        PaymentMethod {
            payment_method_type: payment_method_type.into(),
            payment_method_id: None,
            customer_id: None,
            extend_info: None,
            funding: None,
            payment_method_meta_data: None,
        }
    }
}

/// `paymentFactor` of a pay request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFactor {
    /// Evaluation only, no payment.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::flex::opt_bool_or_string"
    )]
    pub is_payment_evaluation: Option<bool>,
    /// `PaymentCode`, `OrderCode`, `EntryCode` (in-store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_store_payment_scenario: Option<InStorePaymentScenario>,
    /// `BUNDLE`, `TILE`, `UNIFIED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presentment_mode: Option<String>,
    /// Capture mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<String>,
    /// Authorization only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::flex::opt_bool_or_string"
    )]
    pub is_authorization: Option<bool>,
}

/// `settlementStrategy` of a pay request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementStrategy {
    /// The currency the merchant is settled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_currency: Option<String>,
}

/// `pspCustomerInfo`: the wallet's view of the customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PspCustomerInfo {
    /// The wallet's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_name: Option<String>,
    /// The wallet's customer id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_customer_id: Option<String>,
    /// Customer id for display (masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_customer_id: Option<String>,
    /// Customer name for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_customer_name: Option<String>,
    /// Alipay CN 2088 user id.
    #[serde(
        rename = "customer2088Id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_2088_id: Option<String>,
    /// Extended information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
}

/// `Quote`: an exchange-rate quote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// Quote id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_id: Option<String>,
    /// Currency pair, e.g. `USD/PHP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_currency_pair: Option<String>,
    /// The rate as decimal text (a JSON string or number on the wire; never a float here).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_decimal_text"
    )]
    pub quote_price: Option<String>,
    /// Validity start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_start_time: Option<String>,
    /// Validity end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_expiry_time: Option<String>,
    /// Whether the rate is guaranteed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::flex::opt_bool_or_string"
    )]
    pub guaranteed: Option<bool>,
    /// Exchanged amount (SDK model; shape unconfirmed, kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_amount: Option<Value>,
}

/// One entry of inquiryPayment `transactions[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// `PAYMENT`, `REFUND`, `CAPTURE`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<TransactionType>,
    /// `SUCCESS`, `FAIL`, `PROCESSING`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_status: Option<TransactionStatus>,
    /// Amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_amount: Option<Amount>,
    /// The merchant's request id (e.g. refundRequestId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_request_id: Option<String>,
    /// AMS's id (e.g. refundId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_time: Option<String>,
    /// Its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_result: Option<AmsResult>,
    /// Gross settlement amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<Amount>,
    /// Settlement quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_quote: Option<Quote>,
}

/// Unknown top-level fields, preserved verbatim.
pub type Extra = Map<String, Value>;

// ---------------------------------------------------------------------------------------
// Helpers for the model modules
// ---------------------------------------------------------------------------------------

/// Accepts a decimal as a JSON string or number and keeps its text.
fn opt_decimal_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a decimal string or number, got {other}"
        ))),
    }
}

/// Builds a response that carries only `result` (every other field is optional).
pub(crate) fn response_from_result<T: serde::de::DeserializeOwned>(result: AmsResult) -> T {
    let mut body = Map::new();
    body.insert(
        "result".into(),
        serde_json::to_value(result).expect("AmsResult always serializes"),
    );
    serde_json::from_value(Value::Object(body))
        .expect("every response field except result is optional")
}

/// No documented maximum length.
pub(crate) const NO_LIMIT: usize = usize::MAX;

/// An optional two-letter region code (`merchantRegion`, `userRegion`).
pub(crate) fn region(field: &str, value: Option<&str>) -> Result<(), FieldError> {
    match value {
        Some(v) if v.chars().count() != 2 => {
            Err(FieldError::new(field, "must be a 2-letter region code"))
        }
        _ => Ok(()),
    }
}

/// A required string: non-empty and at most `max` characters.
pub(crate) fn required(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "is required and must not be empty"));
    }
    max_len(field, value, max)
}

/// An optional string: when present, non-empty and at most `max` characters.
pub(crate) fn optional(field: &str, value: Option<&str>, max: usize) -> Result<(), FieldError> {
    match value {
        Some(v) => required(field, v, max),
        None => Ok(()),
    }
}

/// At most `max` characters.
pub(crate) fn max_len(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    let n = value.chars().count();
    if n > max {
        Err(FieldError::new(
            field,
            format!("must be at most {max} characters (got {n})"),
        ))
    } else {
        Ok(())
    }
}

/// A present value.
pub(crate) fn present<T>(field: &str, value: Option<&T>) -> Result<(), FieldError> {
    match value {
        Some(_) => Ok(()),
        None => Err(FieldError::new(field, "is required")),
    }
}

/// A valid amount (known currency, digits only); strictly positive when `positive`.
/// Errors name `<field>.currency` or `<field>.value`.
pub(crate) fn amount(field: &str, a: &Amount, positive: bool) -> Result<Money, FieldError> {
    match a.to_money() {
        Ok(m) if positive && m.minor().get() == 0 => Err(FieldError::new(
            format!("{field}.value"),
            "must be greater than zero",
        )),
        Ok(m) => {
            scanbind_money::wallet::check_amount_step(m.currency(), m.minor().get())
                .map_err(|e| FieldError::new(format!("{field}.value"), e))?;
            Ok(m)
        }
        Err(e @ MoneyError::UnknownCurrency(_)) => {
            Err(FieldError::new(format!("{field}.currency"), e.to_string()))
        }
        Err(e) => Err(FieldError::new(format!("{field}.value"), e.to_string())),
    }
}

/// An optional ISO 8601 date-time with offset (RFC 3339), e.g. `2024-01-01T12:00:00+08:00`.
pub(crate) fn datetime(field: &str, value: Option<&str>) -> Result<(), FieldError> {
    let Some(v) = value else { return Ok(()) };
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|_| ())
        .map_err(|_| {
            FieldError::new(
                field,
                "must be an ISO 8601 date-time with offset, e.g. 2024-01-01T12:00:00+08:00",
            )
        })
}

/// A known enum value (not `Other`).
pub(crate) fn known(field: &str, is_known: bool, value: &str) -> Result<(), FieldError> {
    if is_known {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("unsupported value {value:?}"),
        ))
    }
}

impl Order {
    /// Validates the order under `order.`; the amount must be a valid amount.
    pub(crate) fn check(&self) -> Result<Money, FieldError> {
        required("order.referenceOrderId", &self.reference_order_id, 64)?;
        required("order.orderDescription", &self.order_description, 256)?;
        let m = amount("order.orderAmount", &self.order_amount, false)?;
        if let Some(merchant) = &self.merchant {
            optional(
                "order.merchant.referenceMerchantId",
                merchant.reference_merchant_id.as_deref(),
                64,
            )?;
        }
        Ok(m)
    }
}
