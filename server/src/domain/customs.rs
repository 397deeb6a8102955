//! Customs declarations for cross-border physical goods: AMS `customs/declare` and
//! `customs/inquiryDeclarationRequests`, with the results stored in `declarations`.
//!
//! Only CNY payments (Alipay CN buyers) are declared: Chinese customs takes CNY amounts,
//! and the server has no exchange rate to check a declaration of a payment made in
//! another currency. A payment may be declared whole, or split into sub-orders
//! (`subOrderId`), each its own declaration; together they never exceed the amount paid.
//!
//! States: `sending` (written, AMS not answered yet: send the identical request again),
//! `processing` (accepted by Alipay, customs has not answered), `succeeded`, `failed`.

use scanbind_ams::model::{
    Customs, DeclareRequest, InquiryDeclarationRequest, MerchantCustomsInfo,
};
use scanbind_ams::result::ResultStatus;
use scanbind_device_api::types::Amount;
use serde::{Deserialize, Serialize};

use crate::domain::{App, ams_call, plausible_id};
use crate::error::{Error, OperatorCode, Result};
use crate::store::declarations::{Acceptance, InquiryResult, NewDeclaration};
use crate::store::{self, DeclarationRow, DeclarationStatus, PaymentRow, PaymentStatus};
use crate::util::{now_ms, rfc3339};

/// Customs offices accepted in a declaration (region `CN`): the ones Alipay lists
/// (Hangzhou, Guangzhou and Tianjin declare through `ZONGSHU`).
pub use scanbind_ams::model::CUSTOMS_CODES;

fn err(code: OperatorCode, message: impl Into<String>) -> Error {
    Error::operator(code, message)
}

/// `POST /admin/v1/payments/{id}/declarations` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeclareBody {
    /// Idempotency key, 1–32 characters of `A-Z a-z 0-9 _ -`.
    pub declaration_request_id: String,
    /// The customs office, e.g. `SHANGHAI_CBT` (see [`CUSTOMS_CODES`]).
    pub customs_code: String,
    /// The merchant's registration code with that customs office.
    pub merchant_customs_code: String,
    /// The merchant's registered name.
    pub merchant_customs_name: String,
    /// Amount declared, CNY.
    pub amount: Amount,
    /// A sub-order of a split payment (then `splitOrder` is true at Alipay).
    #[serde(default)]
    pub sub_order_id: Option<String>,
}

/// A stored declaration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Declaration {
    /// The idempotency key.
    pub declaration_request_id: String,
    /// The server payment id.
    pub payment_id: String,
    /// Sub-order, when split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_order_id: Option<String>,
    /// Customs office.
    pub customs_code: String,
    /// Merchant customs registration.
    pub merchant_customs_code: String,
    /// Merchant customs name.
    pub merchant_customs_name: String,
    /// Amount (CNY).
    pub amount: Amount,
    /// `sending`, `processing`, `succeeded`, `failed`.
    pub status: String,
    /// Customs result code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// Customs result text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_desc: Option<String>,
    /// Payment id at customs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customs_payment_id: Option<String>,
    /// Order id at customs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customs_order_id: Option<String>,
    /// `CHECK_PASSED` / `CHECK_NOT_PASSED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_check_result: Option<String>,
    /// `CUP`, `NUCC`, `OTHER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clearing_channel: Option<String>,
    /// Who declared it (operator key name).
    pub operator: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

fn view(r: DeclarationRow) -> Declaration {
    Declaration {
        declaration_request_id: r.declaration_request_id,
        payment_id: r.payment_id,
        sub_order_id: r.sub_order_id,
        customs_code: r.customs_code,
        merchant_customs_code: r.merchant_customs_code,
        merchant_customs_name: r.merchant_customs_name,
        amount: Amount {
            currency: r.currency,
            value: r.amount,
        },
        status: r.status.as_str().to_owned(),
        result_code: r.result_code,
        result_desc: r.result_desc,
        customs_payment_id: r.customs_payment_id,
        customs_order_id: r.customs_order_id,
        identity_check_result: r.identity_check_result,
        clearing_channel: r.clearing_channel,
        operator: r.operator,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

/// One declaration by id.
pub async fn load(app: &App, id: &str) -> Result<Option<Declaration>> {
    Ok(store::declarations::load(&app.db, id).await?.map(view))
}

/// The declarations of a payment, oldest first.
pub async fn of_payment(app: &App, payment_id: &str) -> Result<Vec<Declaration>> {
    Ok(store::declarations::of_payment(&app.db, payment_id)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

fn text(name: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(err(
            OperatorCode::CustomsInvalid,
            format!("{name}: 1 to {max} characters"),
        ));
    }
    Ok(())
}

/// Validates, stores (`sending`), and sends a declaration; idempotent by
/// `declarationRequestId`. A refusal by Alipay removes the row again, so the same id can
/// be used once the input is fixed.
pub async fn declare(
    app: &App,
    p: &PaymentRow,
    b: &DeclareBody,
    operator: &str,
) -> Result<Declaration> {
    let id = &b.declaration_request_id;
    if !plausible_id(id) || id.len() > 32 {
        return Err(err(
            OperatorCode::BadRequest,
            "declarationRequestId: 1 to 32 characters of A-Z a-z 0-9 _ -",
        ));
    }
    if let Some(s) = &b.sub_order_id
        && !plausible_id(s)
    {
        return Err(err(
            OperatorCode::BadRequest,
            "subOrderId: 1 to 64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    let pid = &p.payment_id;
    if let Some(existing) = store::declarations::load(&app.db, id).await? {
        let same = existing.payment_id == *pid
            && existing.amount == b.amount.value
            && existing.currency == b.amount.currency
            && existing.customs_code == b.customs_code
            && existing.sub_order_id == b.sub_order_id;
        if !same {
            return Err(err(
                OperatorCode::IdempotencyConflict,
                format!("declaration {id} was made before with other parameters"),
            ));
        }
        if existing.status != DeclarationStatus::Sending {
            return Ok(view(existing));
        }
    } else {
        if !CUSTOMS_CODES.contains(&b.customs_code.as_str()) {
            return Err(err(
                OperatorCode::CustomsInvalid,
                format!(
                    "declaration {id}: unknown customs office {:?} (known: {})",
                    b.customs_code,
                    CUSTOMS_CODES.join(", ")
                ),
            ));
        }
        text("merchantCustomsCode", &b.merchant_customs_code, 64)?;
        text("merchantCustomsName", &b.merchant_customs_name, 256)?;
        if p.status != PaymentStatus::Succeeded {
            return Err(err(
                OperatorCode::InvalidState,
                format!(
                    "payment {pid} is {}: only a succeeded payment can be declared",
                    p.status.as_str()
                ),
            ));
        }
        if p.currency != "CNY" {
            return Err(err(
                OperatorCode::InvalidState,
                format!(
                    "payment {pid} is in {}: only CNY payments (Alipay CN buyers) are declared to customs",
                    p.currency
                ),
            ));
        }
        if b.amount.currency != "CNY"
            || scanbind_ams::money::Currency::from_code(&b.amount.currency).is_err()
        {
            return Err(err(
                OperatorCode::AmountInvalid,
                format!(
                    "declaration {id}: customs declarations are in CNY, not {:?}",
                    b.amount.currency
                ),
            ));
        }
        if b.amount.value <= 0 {
            return Err(err(
                OperatorCode::AmountInvalid,
                format!("declaration {id}: the amount must be positive"),
            ));
        }
        let declared = store::declarations::declared_amount(&app.db, pid).await?;
        if declared.saturating_add(b.amount.value) > p.amount {
            return Err(err(
                OperatorCode::AmountInvalid,
                format!(
                    "declaration {id}: {} CNY is more than payment {pid} leaves to declare ({} of {} CNY)",
                    b.amount.value,
                    p.amount - declared,
                    p.amount
                ),
            ));
        }
        let now = now_ms();
        store::declarations::insert(
            &app.db,
            &NewDeclaration {
                declaration_request_id: id,
                payment_id: pid,
                sub_order_id: b.sub_order_id.as_deref(),
                customs_code: &b.customs_code,
                merchant_customs_code: &b.merchant_customs_code,
                merchant_customs_name: &b.merchant_customs_name,
                currency: &b.amount.currency,
                amount: b.amount.value,
                operator,
                now,
            },
        )
        .await?;
    }
    let d = load(app, id)
        .await?
        .ok_or_else(|| err(OperatorCode::Internal, "declaration vanished"))?;
    let Some(ams_payment_id) = p.ams_payment_id.clone() else {
        return Err(err(
            OperatorCode::InvalidState,
            format!("payment {pid} has no Alipay paymentId"),
        ));
    };
    let mut req = DeclareRequest::new(
        id.clone(),
        ams_payment_id,
        scanbind_ams::Amount {
            currency: d.amount.currency.clone(),
            value: d.amount.value.to_string(),
        },
        Customs {
            customs_code: d.customs_code.clone(),
            region: "CN".into(),
        },
        MerchantCustomsInfo {
            merchant_customs_code: d.merchant_customs_code.clone(),
            merchant_customs_name: d.merchant_customs_name.clone(),
        },
    );
    if let Some(s) = &d.sub_order_id {
        req.split_order = true;
        req.sub_order_id = Some(s.clone());
    }
    app.db.step(id, "declare", "sent", now_ms()).await?;
    let resp = match ams_call(app, &req).await {
        Ok(r) => r,
        Err(e) => {
            app.db
                .step(id, "declare", &format!("no answer: {e}"), now_ms())
                .await?;
            return Err(err(
                OperatorCode::UpstreamUnavailable,
                format!(
                    "declaration {id}: Alipay did not answer; send the identical request again"
                ),
            ));
        }
    };
    let code = resp.result.result_code.as_str().to_owned();
    app.db
        .step(
            id,
            "declare",
            &format!("{}/{code}", resp.result.result_status),
            now_ms(),
        )
        .await?;
    match resp.result.result_status {
        ResultStatus::S => {
            let identity = resp.identity_check_result.map(|c| c.as_str().to_owned());
            let channel = resp.clearing_channel.map(|c| c.as_str().to_owned());
            store::declarations::accept(
                &app.db,
                id,
                &Acceptance {
                    customs_payment_id: resp.customs_payment_id.as_deref(),
                    customs_order_id: resp.customs_order_id.as_deref(),
                    identity_check_result: identity.as_deref(),
                    clearing_channel: channel.as_deref(),
                    now: now_ms(),
                },
            )
            .await?;
        }
        ResultStatus::F => {
            store::declarations::remove_refused(&app.db, id).await?;
            let message = resp.result.result_message.clone().unwrap_or_default();
            let c = match code.as_str() {
                "PARAM_ILLEGAL" if message.contains("declarationAmount") => {
                    OperatorCode::AmountInvalid
                }
                "PARAM_ILLEGAL" => OperatorCode::CustomsInvalid,
                _ => OperatorCode::PaymentRejected,
            };
            return Err(err(
                c,
                format!("declaration {id}: Alipay refused it ({code}: {message})"),
            ));
        }
        _ => {
            return Err(err(
                OperatorCode::UpstreamUnavailable,
                format!(
                    "declaration {id}: Alipay's answer was not final ({code}); send the identical request again"
                ),
            ));
        }
    }
    load(app, id)
        .await?
        .ok_or_else(|| err(OperatorCode::Internal, "declaration vanished"))
}

/// Asks Alipay about up to 10 declarations and stores what it says. Returns the stored
/// declarations found and the ids unknown here or at Alipay.
pub async fn inquire(app: &App, ids: &[String]) -> Result<(Vec<Declaration>, Vec<String>)> {
    if ids.is_empty() || ids.len() > 10 {
        return Err(err(
            OperatorCode::BadRequest,
            format!(
                "ids: 1 to 10 declaration request ids, comma-separated (got {})",
                ids.len()
            ),
        ));
    }
    for id in ids {
        if !plausible_id(id) || id.len() > 32 {
            return Err(err(
                OperatorCode::BadRequest,
                format!("ids: {id:?} is not a declaration request id"),
            ));
        }
    }
    let resp = ams_call(app, &InquiryDeclarationRequest::new(ids.iter().cloned())).await?;
    if resp.result.result_status != ResultStatus::S {
        return Err(err(
            OperatorCode::UpstreamUnavailable,
            format!(
                "Alipay did not answer the inquiry ({})",
                resp.result.result_code.as_str()
            ),
        ));
    }
    let mut not_found: Vec<String> = resp.declaration_requests_not_found.unwrap_or_default();
    for rec in resp.declaration_records.unwrap_or_default() {
        let status = match rec.declaration_request_status.as_deref() {
            Some("SUCCESS") => DeclarationStatus::Succeeded,
            Some("FAIL") => DeclarationStatus::Failed,
            _ => DeclarationStatus::Processing,
        };
        store::declarations::record_inquiry(
            &app.db,
            &rec.declaration_request_id,
            &InquiryResult {
                status,
                result_code: rec.customs_declaration_result_code.as_deref(),
                result_desc: rec.customs_declaration_result_desc.as_deref(),
                customs_payment_id: rec.customs_payment_id.as_deref(),
                customs_order_id: rec.customs_order_id.as_deref(),
                now: now_ms(),
            },
        )
        .await?;
    }
    let mut found = Vec::new();
    for id in ids {
        match load(app, id).await? {
            Some(d) if !not_found.contains(id) => found.push(d),
            Some(_) => {}
            None => {
                if !not_found.contains(id) {
                    not_found.push(id.clone());
                }
            }
        }
    }
    Ok((found, not_found))
}
