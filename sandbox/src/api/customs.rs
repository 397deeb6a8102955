//! customs/declare and customs/inquiryDeclarationRequests.
//!
//! A declaration progresses on the sandbox clock: `PROCESSING` for the first minute after
//! it is made, then `SUCCESS` with the customs result code `SUCCESS` and a return time
//! (the status enum is unconfirmed in the public docs; these are the values used), or
//! `FAIL` / `MERCHANT_NOT_REGISTERED` for a merchant customs code starting with
//! [`UNREGISTERED_PREFIX`].

use scanbind_ams::model::{
    AmsResponse as _, ClearingChannel, DeclarationRecord, DeclareRequest, DeclareResponse,
    IdentityCheckResult, InquiryDeclarationRequest, InquiryDeclarationResponse,
};
use scanbind_ams::result::{AmsResult, ResultCode};

use super::{Answer, Call, body, fail, parse};
use crate::clock::ams_time;
use crate::ids::sequential_id;
use crate::state::{Declaration, PayState, from_ts, scoped, ts};

/// Seconds a declaration stays PROCESSING.
pub const DECLARATION_PROCESSING_SECS: i64 = 60;

/// A `merchantCustomsCode` starting with this is "not registered" with the customs
/// office: the declaration is accepted, then ends `FAIL` with the customs result code
/// `MERCHANT_NOT_REGISTERED` (the way a real office refuses an unknown merchant).
pub const UNREGISTERED_PREFIX: &str = "UNREG";

/// The customs offices the sandbox accepts in `customs.customsCode` (region `CN`): the
/// ones Alipay lists; any other code is `PARAM_ILLEGAL`.
pub use scanbind_ams::model::CUSTOMS_CODES;

fn field<T: serde::de::DeserializeOwned>(v: &serde_json::Value, name: &str) -> Option<T> {
    serde_json::from_value(v[name].clone()).ok()
}

/// True when the declaration is final and failed (customs refused it): its amount no
/// longer counts against the payment.
fn ended_in_failure(d: &Declaration, now: i64) -> bool {
    now >= d.created + DECLARATION_PROCESSING_SECS
        && d.request["merchantCustomsInfo"]["merchantCustomsCode"]
            .as_str()
            .is_some_and(|c| c.starts_with(UNREGISTERED_PREFIX))
}

/// customs/declare: idempotent by declarationRequestId; amount ≤ paid when the payment is
/// in CNY.
pub(crate) fn declare(call: &Call<'_>) -> Answer {
    let req: DeclareRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let minor = match req.declaration_amount.to_money() {
        Ok(m) => m.minor().get(),
        Err(e) => {
            return fail(
                ResultCode::ParamIllegal,
                format!("illegal parameter declarationAmount: {e}"),
            );
        }
    };
    if !CUSTOMS_CODES.contains(&req.customs.customs_code.as_str()) {
        return fail(
            ResultCode::ParamIllegal,
            format!(
                "illegal parameter customs.customsCode: unknown customs office {:?}",
                req.customs.customs_code
            ),
        );
    }
    if req.customs.region != "CN" {
        return fail(
            ResultCode::ParamIllegal,
            "illegal parameter customs.region: must be CN",
        );
    }
    let as_json = serde_json::to_value(&req).unwrap_or_default();
    call.app.write(|state, app| {
        let now = app.clock.now();
        let key = scoped(call.client_id, &req.declaration_request_id);
        if let Some(existing) = state.declarations.get(&key) {
            let same = existing.payment_id == req.payment_id
                && existing.request["declarationAmount"] == as_json["declarationAmount"];
            return if same {
                (Answer::Body(existing.response.clone()), false)
            } else {
                (
                    fail(
                        ResultCode::RepeatReqInconsistent,
                        "declarationRequestId was used before with different key fields",
                    ),
                    false,
                )
            };
        }
        let Some(p) = state
            .payments
            .get(&req.payment_id)
            .filter(|p| p.client_id == call.client_id)
            .cloned()
        else {
            return (
                fail(ResultCode::OrderNotExist, "the payment does not exist"),
                false,
            );
        };
        if p.status != PayState::Success {
            return (
                fail(
                    ResultCode::OrderStatusInvalid,
                    "only a paid payment can be declared",
                ),
                false,
            );
        }
        let declared: i64 = state
            .declarations
            .values()
            .filter(|d| d.client_id == call.client_id && d.payment_id == p.payment_id)
            .filter(|d| !ended_in_failure(d, ts(now)))
            .filter_map(|d| {
                d.request["declarationAmount"]["value"]
                    .as_str()?
                    .parse::<i64>()
                    .ok()
            })
            .sum();
        // The payment's customsDeclarationAmount (its CNY value; the amount itself for a
        // CNY payment) caps every declaration of it together, whatever it was paid in.
        let Some(cap) = super::payments::customs_declaration_amount(&p)
            .and_then(|a| a.value.parse::<i64>().ok())
        else {
            return (
                fail(
                    ResultCode::ParamIllegal,
                    format!(
                        "illegal parameter paymentId: a payment in {} has no customs declaration amount",
                        p.currency
                    ),
                ),
                false,
            );
        };
        if declared + minor > cap {
            return (
                fail(
                    ResultCode::ParamIllegal,
                    format!(
                        "illegal parameter declarationAmount: the payment's declarations would total \
                         {} CNY minor units, above its customsDeclarationAmount of {cap}",
                        declared + minor
                    ),
                ),
                false,
            );
        }
        let seq = state.next_seq();
        let mut resp = DeclareResponse::from_result(AmsResult::success());
        resp.customs_payment_id = Some(sequential_id(now, 21, seq));
        resp.customs_order_id = Some(sequential_id(now, 22, seq));
        resp.identity_check_result = req
            .buyer_certificate
            .as_ref()
            .map(|_| IdentityCheckResult::CheckPassed);
        resp.clearing_channel = Some(ClearingChannel::Cup);
        resp.clearing_transaction_id = Some(sequential_id(now, 23, seq));
        resp.customs_provider_registration_id = Some("31222699S7".into());
        let response = serde_json::to_string(&resp).unwrap_or_default();
        state.declarations.insert(
            key,
            Declaration {
                declaration_request_id: req.declaration_request_id.clone(),
                client_id: call.client_id.to_owned(),
                payment_id: p.payment_id.clone(),
                request: as_json.clone(),
                customs_payment_id: resp.customs_payment_id.clone().unwrap_or_default(),
                customs_order_id: resp.customs_order_id.clone().unwrap_or_default(),
                created: ts(now),
                response: response.clone(),
            },
        );
        (Answer::Body(response), true)
    })
}

/// customs/inquiryDeclarationRequests: up to 10 ids; unknown ones are listed in
/// `declarationRequestsNotFound`.
pub(crate) fn inquiry_declarations(call: &Call<'_>) -> Answer {
    let req: InquiryDeclarationRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let now = call.app.now_ts();
    call.app.store.read(|state| {
        let mut records = Vec::new();
        let mut missing = Vec::new();
        for id in &req.declaration_request_ids {
            let Some(d) = state.declarations.get(&scoped(call.client_id, id)) else {
                missing.push(id.clone());
                continue;
            };
            let done_at = d.created + DECLARATION_PROCESSING_SECS;
            let done = now >= done_at;
            let refused = ended_in_failure(d, now);
            let (status, code, desc) = if refused {
                (
                    "FAIL",
                    "MERCHANT_NOT_REGISTERED",
                    "the merchant is not registered with this customs office",
                )
            } else {
                ("SUCCESS", "SUCCESS", "declared")
            };
            records.push(DeclarationRecord {
                declaration_request_id: d.declaration_request_id.clone(),
                customs_payment_id: Some(d.customs_payment_id.clone()),
                customs_order_id: Some(d.customs_order_id.clone()),
                customs: field(&d.request, "customs"),
                merchant_customs_info: field(&d.request, "merchantCustomsInfo"),
                declaration_amount: field(&d.request, "declarationAmount"),
                split_order: d.request["splitOrder"].as_bool(),
                declaration_request_status: Some(
                    if done { status } else { "PROCESSING" }.to_owned(),
                ),
                last_modified_time: Some(ams_time(from_ts(if done { done_at } else { d.created }))),
                customs_declaration_result_code: done.then(|| code.to_owned()),
                customs_declaration_result_desc: done.then(|| desc.to_owned()),
                customs_declaration_return_time: done.then(|| ams_time(from_ts(done_at))),
            });
        }
        let mut resp = InquiryDeclarationResponse::from_result(AmsResult::success());
        resp.declaration_records = Some(records);
        resp.declaration_requests_not_found = Some(missing);
        body(&resp)
    })
}
