//! The AMS `result` object and what each outcome means for the caller.
//!
//! [`decide`] is the single place that says, for an endpoint and what came back
//! (a result or a transport failure), whether the outcome is final, whether the identical
//! request may be sent again, whether the transaction must be inquired, or whether a new
//! request is needed (ams-api.md §3.2).

use std::fmt;

use serde::{Deserialize, Serialize};

/// `resultStatus`: S, F or U.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResultStatus {
    /// Success: final.
    S,
    /// Failed: final, act on the code.
    F,
    /// Unknown: retry the identical request or inquire.
    U,
    /// Any other value; treated as U (unknown) by [`decide`].
    Other(String),
}

impl ResultStatus {
    /// The wire letter.
    pub fn as_str(&self) -> &str {
        match self {
            ResultStatus::S => "S",
            ResultStatus::F => "F",
            ResultStatus::U => "U",
            ResultStatus::Other(s) => s,
        }
    }
}

impl fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResultStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "S" => ResultStatus::S,
            "F" => ResultStatus::F,
            "U" => ResultStatus::U,
            _ => ResultStatus::Other(s),
        })
    }
}

macro_rules! result_codes {
    ($($variant:ident = $text:literal, $doc:literal;)*) => {
        /// `resultCode`. Known codes are variants; anything else is kept in [`ResultCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ResultCode {
            $(#[doc = $doc] $variant,)*
            /// A code this crate does not know; kept verbatim.
            Other(String),
        }

        impl ResultCode {
            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ResultCode::$variant => $text,)*
                    ResultCode::Other(s) => s,
                }
            }

            /// Parses the wire text (unknown codes become [`ResultCode::Other`]).
            pub fn parse(s: &str) -> ResultCode {
                match s {
                    $($text => ResultCode::$variant,)*
                    other => ResultCode::Other(other.to_owned()),
                }
            }

            /// The status this code is documented with (`None` for `Other`).
            pub fn documented_status(&self) -> Option<ResultStatus> {
                Some(match self {
                    ResultCode::Success => ResultStatus::S,
                    ResultCode::PaymentInProcess
                    | ResultCode::RefundInProcess
                    | ResultCode::UnknownException
                    | ResultCode::RequestTrafficExceedLimit => ResultStatus::U,
                    ResultCode::Other(_) => return None,
                    _ => ResultStatus::F,
                })
            }
        }
    };
}

result_codes! {
    Success = "SUCCESS", "Done.";
    PaymentInProcess = "PAYMENT_IN_PROCESS", "Payment still processing: inquire or wait for the notification (U).";
    RefundInProcess = "REFUND_IN_PROCESS", "Refund accepted and still processing (asynchronous refund): inquire or wait for notifyRefund (U).";
    UnknownException = "UNKNOWN_EXCEPTION", "System error: retry the identical request or inquire (U).";
    RequestTrafficExceedLimit = "REQUEST_TRAFFIC_EXCEED_LIMIT", "Rate limited: back off and retry (U).";
    ProcessFail = "PROCESS_FAIL", "General business failure.";
    ParamIllegal = "PARAM_ILLEGAL", "A parameter is missing or invalid.";
    AccessDenied = "ACCESS_DENIED", "Not permitted or not contracted.";
    InvalidSignature = "INVALID_SIGNATURE", "The signature does not verify with the registered key.";
    KeyNotFound = "KEY_NOT_FOUND", "No key registered for the client id and key version.";
    InvalidClient = "INVALID_CLIENT", "Unknown client id.";
    ClientInvalid = "CLIENT_INVALID", "Unknown client id (cancel's spelling).";
    InvalidClientStatus = "INVALID_CLIENT_STATUS", "The client is not active.";
    ClientForbiddenAccessApi = "CLIENT_FORBIDDEN_ACCESS_API", "The client may not call this API.";
    InvalidApi = "INVALID_API", "Unknown API path.";
    NoInterfaceDef = "NO_INTERFACE_DEF", "No interface defined at this path.";
    MethodNotSupported = "METHOD_NOT_SUPPORTED", "HTTP method not supported.";
    MediaTypeNotAcceptable = "MEDIA_TYPE_NOT_ACCEPTABLE", "Content type not accepted.";
    RepeatReqInconsistent = "REPEAT_REQ_INCONSISTENT", "Same idempotency id with different key fields.";
    OrderNotExist = "ORDER_NOT_EXIST", "Unknown payment or refund.";
    OrderIsClosed = "ORDER_IS_CLOSED", "The order is already closed.";
    OrderStatusInvalid = "ORDER_STATUS_INVALID", "The order's state does not allow the operation.";
    InvalidAccessToken = "INVALID_ACCESS_TOKEN", "Token expired, revoked or unknown: re-authorise the user.";
    UserBalanceNotEnough = "USER_BALANCE_NOT_ENOUGH", "Insufficient wallet balance.";
    UserAmountExceedLimit = "USER_AMOUNT_EXCEED_LIMIT", "The user's wallet limit is exceeded.";
    PaymentAmountExceedLimit = "PAYMENT_AMOUNT_EXCEED_LIMIT", "Merchant or product amount limit exceeded.";
    PaymentCountExceedLimit = "PAYMENT_COUNT_EXCEED_LIMIT", "Merchant or product count limit exceeded.";
    UserNotExist = "USER_NOT_EXIST", "The wallet user does not exist.";
    UserStatusAbnormal = "USER_STATUS_ABNORMAL", "The wallet user's status is abnormal.";
    UserKycNotQualified = "USER_KYC_NOT_QUALIFIED", "The wallet user is not KYC qualified.";
    UserPaymentVerificationFailed = "USER_PAYMENT_VERIFICATION_FAILED", "User verification failed.";
    RiskReject = "RISK_REJECT", "Rejected by risk control.";
    CurrencyNotSupport = "CURRENCY_NOT_SUPPORT", "Currency not supported.";
    RegulationRestriction = "REGULATION_RESTRICTION", "Not allowed by regulation.";
    UnavailablePaymentMethod = "UNAVAILABLE_PAYMENT_METHOD", "Payment method unavailable.";
    CancelWindowExceed = "CANCEL_WINDOW_EXCEED", "Too late to cancel: refund instead.";
    RefundAmountExceed = "REFUND_AMOUNT_EXCEED", "Total refunds would exceed the paid amount.";
    RefundWindowExceed = "REFUND_WINDOW_EXCEED", "Past the refund period.";
    MerchantBalanceNotEnough = "MERCHANT_BALANCE_NOT_ENOUGH", "Merchant funds insufficient for the refund.";
    InvalidCode = "INVALID_CODE", "Unknown or already used authCode.";
    ExpiredCode = "EXPIRED_CODE", "Expired authCode.";
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResultCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(ResultCode::parse(&s))
    }
}

/// The `result` object of every response and notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmsResult {
    /// Machine code.
    pub result_code: ResultCode,
    /// S, F or U.
    pub result_status: ResultStatus,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_message: Option<String>,
}

impl AmsResult {
    /// `SUCCESS` / `S` / `success`.
    pub fn success() -> Self {
        AmsResult {
            result_code: ResultCode::Success,
            result_status: ResultStatus::S,
            result_message: Some("success".into()),
        }
    }

    /// A result with a code, its documented status (F for unknown codes) and a message.
    pub fn with_code(code: ResultCode, message: impl Into<String>) -> Self {
        let status = code.documented_status().unwrap_or(ResultStatus::F);
        AmsResult {
            result_code: code,
            result_status: status,
            result_message: Some(message.into()),
        }
    }

    /// True for S.
    pub fn is_success(&self) -> bool {
        self.result_status == ResultStatus::S
    }
}

/// The AMS operations, for [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// authorizations/consult (no idempotency key: a retry needs a new authState).
    Consult,
    /// authorizations/applyToken.
    ApplyToken,
    /// authorizations/revoke.
    Revoke,
    /// payments/pay (idempotent by paymentRequestId).
    Pay,
    /// payments/inquiryPayment.
    InquiryPayment,
    /// payments/cancel.
    Cancel,
    /// payments/refund (idempotent by refundRequestId).
    Refund,
    /// payments/inquiryRefund.
    InquiryRefund,
    /// customs/declare (idempotent by declarationRequestId).
    Declare,
    /// customs/inquiryDeclarationRequests.
    InquiryDeclaration,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Consult,
        Endpoint::ApplyToken,
        Endpoint::Revoke,
        Endpoint::Pay,
        Endpoint::InquiryPayment,
        Endpoint::Cancel,
        Endpoint::Refund,
        Endpoint::InquiryRefund,
        Endpoint::Declare,
        Endpoint::InquiryDeclaration,
    ];

    /// The production path, e.g. `/ams/api/v1/payments/pay`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Consult => "/ams/api/v1/authorizations/consult",
            Endpoint::ApplyToken => "/ams/api/v1/authorizations/applyToken",
            Endpoint::Revoke => "/ams/api/v1/authorizations/revoke",
            Endpoint::Pay => "/ams/api/v1/payments/pay",
            Endpoint::InquiryPayment => "/ams/api/v1/payments/inquiryPayment",
            Endpoint::Cancel => "/ams/api/v1/payments/cancel",
            Endpoint::Refund => "/ams/api/v1/payments/refund",
            Endpoint::InquiryRefund => "/ams/api/v1/payments/inquiryRefund",
            Endpoint::Declare => "/ams/api/v1/customs/declare",
            Endpoint::InquiryDeclaration => "/ams/api/v1/customs/inquiryDeclarationRequests",
        }
    }

    /// Looks an endpoint up by path, production (`/ams/api/v1/..`) or sandbox
    /// (`/ams/sandbox/api/v1/..`).
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let tail = path
            .strip_prefix("/ams/api/v1/")
            .or_else(|| path.strip_prefix("/ams/sandbox/api/v1/"))?;
        Endpoint::ALL
            .into_iter()
            .find(|e| e.path().strip_prefix("/ams/api/v1/") == Some(tail))
    }

    /// Whether sending the identical request twice is safe (the request carries an
    /// idempotency key, or the operation is a read or naturally idempotent).
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Endpoint::Consult)
    }
}

/// What came back from one attempt.
#[derive(Debug, Clone, Copy)]
pub enum Attempt<'a> {
    /// A verified response with this result.
    Answered(&'a AmsResult),
    /// The request never left (connection refused, DNS, TLS handshake): nothing happened.
    NotSent,
    /// Sent, but no usable answer: timeout, broken connection, HTTP 5xx, or a response
    /// whose signature did not verify. The outcome is unknown.
    NoAnswer,
    /// An HTTP status other than 200 and not 5xx (e.g. 404 from a proxy): not processed.
    Rejected(u16),
}

/// What the caller must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The outcome is final and successful.
    Succeeded,
    /// The outcome is final and failed; act on the result code.
    Failed,
    /// Send the identical request again (same idempotency key and body), after back-off.
    RetrySame,
    /// The transaction may still complete: inquire (or wait for the notification).
    Inquire,
    /// Start over with a new request (a fresh authState for consult).
    NewRequest,
}

/// Decides the next step for `endpoint` after `attempt` (ams-api.md §3.2).
pub fn decide(endpoint: Endpoint, attempt: Attempt<'_>) -> Next {
    match attempt {
        Attempt::NotSent => Next::RetrySame,
        Attempt::Rejected(_) => Next::Failed,
        Attempt::NoAnswer => {
            if endpoint.is_idempotent() {
                Next::RetrySame
            } else {
                Next::NewRequest
            }
        }
        Attempt::Answered(result) => match result.result_status {
            ResultStatus::S => Next::Succeeded,
            ResultStatus::F => Next::Failed,
            ResultStatus::U | ResultStatus::Other(_) => match (endpoint, &result.result_code) {
                (Endpoint::Pay, ResultCode::PaymentInProcess)
                | (Endpoint::Refund, ResultCode::RefundInProcess) => Next::Inquire,
                (Endpoint::Consult, _) => Next::NewRequest,
                _ => Next::RetrySame,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: ResultStatus, code: &str) -> AmsResult {
        AmsResult {
            result_code: ResultCode::parse(code),
            result_status: status,
            result_message: None,
        }
    }

    #[test]
    fn decision_table() {
        use Endpoint::*;
        use Next::*;
        use ResultStatus as St;
        let s = r(St::S, "SUCCESS");
        let f = r(St::F, "USER_BALANCE_NOT_ENOUGH");
        let u_unknown = r(St::U, "UNKNOWN_EXCEPTION");
        let u_in_process = r(St::U, "PAYMENT_IN_PROCESS");
        let u_traffic = r(St::U, "REQUEST_TRAFFIC_EXCEED_LIMIT");
        let weird = r(St::Other("X".into()), "SOMETHING_NEW");
        let table: &[(Endpoint, Attempt<'_>, Next)] = &[
            (Pay, Attempt::Answered(&s), Succeeded),
            (Pay, Attempt::Answered(&f), Failed),
            (Pay, Attempt::Answered(&u_unknown), RetrySame),
            (Pay, Attempt::Answered(&u_traffic), RetrySame),
            (Pay, Attempt::Answered(&u_in_process), Inquire),
            (Pay, Attempt::Answered(&weird), RetrySame),
            (Pay, Attempt::NoAnswer, RetrySame),
            (Pay, Attempt::NotSent, RetrySame),
            (Pay, Attempt::Rejected(404), Failed),
            (Consult, Attempt::Answered(&s), Succeeded),
            (Consult, Attempt::Answered(&u_unknown), NewRequest),
            (Consult, Attempt::NoAnswer, NewRequest),
            (Consult, Attempt::NotSent, RetrySame),
            (Refund, Attempt::Answered(&u_in_process), RetrySame),
            (Refund, Attempt::Answered(&u_unknown), RetrySame),
            (Refund, Attempt::NoAnswer, RetrySame),
            (Refund, Attempt::Answered(&f), Failed),
            (Revoke, Attempt::Answered(&u_unknown), RetrySame),
            (Cancel, Attempt::Answered(&u_unknown), RetrySame),
            (Cancel, Attempt::NoAnswer, RetrySame),
            (ApplyToken, Attempt::NoAnswer, RetrySame),
            (InquiryPayment, Attempt::Answered(&u_unknown), RetrySame),
            (InquiryRefund, Attempt::NoAnswer, RetrySame),
            (Declare, Attempt::Answered(&u_unknown), RetrySame),
            (InquiryDeclaration, Attempt::Answered(&f), Failed),
        ];
        for (endpoint, attempt, want) in table {
            assert_eq!(
                decide(*endpoint, *attempt),
                *want,
                "{endpoint:?} {attempt:?}"
            );
        }
    }

    #[test]
    fn every_endpoint_s_and_f_are_final() {
        for e in Endpoint::ALL {
            assert_eq!(
                decide(e, Attempt::Answered(&AmsResult::success())),
                Next::Succeeded
            );
            let f = AmsResult::with_code(ResultCode::ParamIllegal, "x");
            assert_eq!(decide(e, Attempt::Answered(&f)), Next::Failed);
            assert_eq!(Endpoint::from_path(e.path()), Some(e));
            let sandbox = e.path().replacen("/ams/api", "/ams/sandbox/api", 1);
            assert_eq!(Endpoint::from_path(&sandbox), Some(e));
        }
        assert_eq!(Endpoint::from_path("/ams/api/v1/payments/nope"), None);
    }

    #[test]
    fn result_json_round_trip() {
        let json = r#"{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}"#;
        let r: AmsResult = serde_json::from_str(json).unwrap();
        assert_eq!(r, AmsResult::success());
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        let r: AmsResult =
            serde_json::from_str(r#"{"resultCode":"NEW_CODE","resultStatus":"F"}"#).unwrap();
        assert_eq!(r.result_code, ResultCode::Other("NEW_CODE".into()));
        assert_eq!(
            AmsResult::with_code(ResultCode::PaymentInProcess, "p").result_status,
            ResultStatus::U
        );
    }
}
