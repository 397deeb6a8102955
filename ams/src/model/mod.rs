//! Typed models of every AMS request, response and notification scanbind uses.
//!
//! Conventions shared by every type here:
//! - JSON field names are camelCase, exactly as AMS spells them.
//! - Scalars that the docs send as strings but SDKs send natively (Booleans, integers)
//!   are accepted in both forms ([`crate::flex`]). We send `Amount.value` as the documented
//!   string and Booleans natively (`true`), as every official SDK does (ams-api.md §1.3).
//! - Every top-level request, response and notification keeps unknown fields in
//!   `extra` (flattened), so nothing a newer AMS sends is lost or fatal.
//! - Optional fields are `Option` and are left out of the JSON when `None`.
//!
//! ## Layout
//! - [`common`]: shared structures (`Env`, `Order`, `Merchant`, `CodeDetail`, ...).
//! - [`auth`]: consult, applyToken, revoke.
//! - [`payments`]: pay, inquiryPayment, cancel, refund, inquiryRefund.
//! - [`customs`]: declare, inquiryDeclarationRequests.
//! - [`notify`]: notifyAuthorization, notifyPayment, notifyRefund bodies.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::result::{AmsResult, Endpoint};

pub mod auth;
pub mod common;
pub mod customs;
pub mod notify;
pub mod payments;

pub use auth::*;
pub use common::*;
pub use customs::*;
pub use notify::*;
pub use payments::*;

/// A field-level validation failure: which field and why (becomes `PARAM_ILLEGAL`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The JSON path of the field, e.g. `paymentAmount.value`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A request body sent to one AMS endpoint.
pub trait AmsRequest: Serialize + DeserializeOwned + Send + Sync {
    /// The endpoint it is posted to.
    const ENDPOINT: Endpoint;
    /// The response body type.
    type Response: AmsResponse;
    /// The idempotency key carried by this request, if the endpoint has one
    /// (`paymentRequestId`, `refundRequestId`, `declarationRequestId`).
    fn idempotency_key(&self) -> Option<&str> {
        None
    }
    /// Checks what serde cannot: required-when rules, lengths, enums, amounts.
    fn validate(&self) -> Result<(), FieldError>;
}

/// A response body from one AMS endpoint.
pub trait AmsResponse: Serialize + DeserializeOwned + Send + Sync {
    /// The `result` object.
    fn result(&self) -> &AmsResult;
    /// A response carrying only `result` (how AMS answers errors: every other field absent).
    fn from_result(result: AmsResult) -> Self;
}
