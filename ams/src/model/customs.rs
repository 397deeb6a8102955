//! Customs endpoints: declare (§5.12) and inquiryDeclarationRequests (§5.13).

use serde::{Deserialize, Serialize};

use super::common::{
    Extra, NO_LIMIT, SecretString, UserName, amount, optional, required, response_from_result,
    wire_enum,
};
use super::{AmsRequest, AmsResponse, FieldError};
use crate::money::{Amount, Currency};
use crate::result::{AmsResult, Endpoint};

wire_enum! {
    /// `identityCheckResult` of a declaration.
    pub enum IdentityCheckResult {
        /// The buyer's identity matches the payer.
        CheckPassed = "CHECK_PASSED",
        /// It does not.
        CheckNotPassed = "CHECK_NOT_PASSED",
    }
}

wire_enum! {
    /// `clearingChannel` of a declaration.
    pub enum ClearingChannel {
        /// China UnionPay.
        Cup = "CUP",
        /// NetsUnion Clearing Corporation.
        Nucc = "NUCC",
        /// Another clearing channel (the documented value `OTHER`).
        OtherChannel = "OTHER",
    }
}

wire_enum! {
    /// `certificateType` of a buyer certificate.
    pub enum CertificateType {
        /// Chinese resident identity card.
        IdCard = "ID_CARD",
        /// Passport.
        Passport = "PASSPORT",
    }
}

/// `customs`: the customs office declared to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customs {
    /// Customs code, e.g. `ZONGSHU`, `ZHENGZHOU`, `NINGBO`, `SHANGHAI_CBT`.
    pub customs_code: String,
    /// Region, `CN`.
    pub region: String,
}

/// `merchantCustomsInfo`: the merchant's registration with customs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantCustomsInfo {
    /// The merchant's customs code.
    pub merchant_customs_code: String,
    /// The merchant's customs name.
    pub merchant_customs_name: String,
}

/// `buyerCertificate`: the buyer's identity document (SDK `Certificate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerCertificate {
    /// `ID_CARD`, `PASSPORT`, ...
    pub certificate_type: CertificateType,
    /// The document number (personal data: redacted in `Debug`).
    pub certificate_no: SecretString,
    /// The holder's name (an SDK `UserName` object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<UserName>,
}

/// The customs offices Alipay's declare API lists for `customs.customsCode` (region
/// `CN`). Hangzhou, Guangzhou and Tianjin declare through `ZONGSHU` (the General
/// Administration of Customs' unified platform).
pub const CUSTOMS_CODES: [&str; 4] = ["ZONGSHU", "ZHENGZHOU", "NINGBO", "SHANGHAI_CBT"];

/// declare request: declare a payment to customs (§5.12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclareRequest {
    /// Idempotency key, String(1–32).
    pub declaration_request_id: String,
    /// The payment, String(64).
    pub payment_id: String,
    /// Amount to declare, CNY, ≤ the payment's `customsDeclarationAmount`.
    pub declaration_amount: Amount,
    /// The customs office.
    pub customs: Customs,
    /// The merchant's customs registration.
    pub merchant_customs_info: MerchantCustomsInfo,
    /// Whether the order is split (then `suborderId` is required). Absent means
    /// false: the official SDK leaves the field out unless it is true.
    #[serde(default, deserialize_with = "crate::flex::bool_or_string")]
    pub split_order: bool,
    /// Sub-order id, String(64); required when `splitOrder`. Alipay (and the
    /// official SDK) spell it `suborderId`, with a lower-case o.
    #[serde(
        default,
        rename = "suborderId",
        skip_serializing_if = "Option::is_none"
    )]
    pub sub_order_id: Option<String>,
    /// The buyer's identity document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_certificate: Option<BuyerCertificate>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl DeclareRequest {
    /// An unsplit declaration of `amount` (CNY) for `payment_id`.
    pub fn new(
        declaration_request_id: impl Into<String>,
        payment_id: impl Into<String>,
        amount: Amount,
        customs: Customs,
        merchant_customs_info: MerchantCustomsInfo,
    ) -> Self {
        DeclareRequest {
            declaration_request_id: declaration_request_id.into(),
            payment_id: payment_id.into(),
            declaration_amount: amount,
            customs,
            merchant_customs_info,
            split_order: false,
            sub_order_id: None,
            buyer_certificate: None,
            extra: Extra::new(),
        }
    }
}

impl AmsRequest for DeclareRequest {
    const ENDPOINT: Endpoint = Endpoint::Declare;
    type Response = DeclareResponse;

    fn idempotency_key(&self) -> Option<&str> {
        Some(&self.declaration_request_id)
    }

    fn validate(&self) -> Result<(), FieldError> {
        required("declarationRequestId", &self.declaration_request_id, 32)?;
        required("paymentId", &self.payment_id, 64)?;
        let m = amount("declarationAmount", &self.declaration_amount, true)?;
        if m.currency() != Currency::CNY {
            return Err(FieldError::new("declarationAmount.currency", "must be CNY"));
        }
        required("customs.customsCode", &self.customs.customs_code, NO_LIMIT)?;
        required("customs.region", &self.customs.region, 2)?;
        required(
            "merchantCustomsInfo.merchantCustomsCode",
            &self.merchant_customs_info.merchant_customs_code,
            NO_LIMIT,
        )?;
        required(
            "merchantCustomsInfo.merchantCustomsName",
            &self.merchant_customs_info.merchant_customs_name,
            NO_LIMIT,
        )?;
        if self.split_order {
            required("suborderId", self.sub_order_id.as_deref().unwrap_or(""), 64)?;
        } else {
            optional("suborderId", self.sub_order_id.as_deref(), 64)?;
        }
        if let Some(c) = &self.buyer_certificate {
            required(
                "buyerCertificate.certificateType",
                c.certificate_type.as_str(),
                NO_LIMIT,
            )?;
            required(
                "buyerCertificate.certificateNo",
                c.certificate_no.expose(),
                NO_LIMIT,
            )?;
        }
        Ok(())
    }
}

/// declare response (§5.12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclareResponse {
    /// Outcome.
    pub result: AmsResult,
    /// Payment id as known to customs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_payment_id: Option<String>,
    /// Order id as known to customs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_order_id: Option<String>,
    /// `CHECK_PASSED` / `CHECK_NOT_PASSED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_check_result: Option<IdentityCheckResult>,
    /// `CUP`, `NUCC`, `OTHER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing_channel: Option<ClearingChannel>,
    /// Clearing transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing_transaction_id: Option<String>,
    /// The provider's customs registration id (e.g. Shanghai `31222699S7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_provider_registration_id: Option<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for DeclareResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}

/// inquiryDeclarationRequests request: 1 to 10 declarationRequestIds (§5.13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryDeclarationRequest {
    /// The ids to look up, 1 to 10, each ≤32.
    pub declaration_request_ids: Vec<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl InquiryDeclarationRequest {
    /// Looks up these declaration request ids.
    pub fn new<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        InquiryDeclarationRequest {
            declaration_request_ids: ids.into_iter().map(Into::into).collect(),
            extra: Extra::new(),
        }
    }
}

impl AmsRequest for InquiryDeclarationRequest {
    const ENDPOINT: Endpoint = Endpoint::InquiryDeclaration;
    type Response = InquiryDeclarationResponse;

    fn validate(&self) -> Result<(), FieldError> {
        let n = self.declaration_request_ids.len();
        if n == 0 || n > 10 {
            return Err(FieldError::new(
                "declarationRequestIds",
                format!("must hold 1 to 10 ids (got {n})"),
            ));
        }
        for (i, id) in self.declaration_request_ids.iter().enumerate() {
            required(&format!("declarationRequestIds[{i}]"), id, 32)?;
        }
        Ok(())
    }
}

/// One declaration in an inquiryDeclarationRequests response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclarationRecord {
    /// The declaration's idempotency key.
    pub declaration_request_id: String,
    /// Payment id as known to customs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_payment_id: Option<String>,
    /// Order id as known to customs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_order_id: Option<String>,
    /// The customs office.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs: Option<Customs>,
    /// The merchant's customs registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_customs_info: Option<MerchantCustomsInfo>,
    /// Declared amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration_amount: Option<Amount>,
    /// Whether the order was split.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::flex::opt_bool_or_string"
    )]
    pub split_order: Option<bool>,
    /// Declaration state (enum unconfirmed, kept as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration_request_status: Option<String>,
    /// Last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_time: Option<String>,
    /// Customs result code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_declaration_result_code: Option<String>,
    /// Customs result text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_declaration_result_desc: Option<String>,
    /// When customs answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_declaration_return_time: Option<String>,
}

/// inquiryDeclarationRequests response (§5.13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryDeclarationResponse {
    /// Outcome.
    pub result: AmsResult,
    /// Ids that were not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration_requests_not_found: Option<Vec<String>>,
    /// The declarations found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration_records: Option<Vec<DeclarationRecord>>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AmsResponse for InquiryDeclarationResponse {
    fn result(&self) -> &AmsResult {
        &self.result
    }
    fn from_result(result: AmsResult) -> Self {
        response_from_result(result)
    }
}
