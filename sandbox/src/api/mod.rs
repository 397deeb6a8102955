//! The AMS API under `/ams/api/v1/...` and `/ams/sandbox/api/v1/...`.
//!
//! Every request goes through one pipeline, in this order, and any step can end it with
//! an AMS result (HTTP 200):
//! 1. method (POST only) and body size (bodies over the limit are refused before they
//!    are read in full, let alone parsed);
//! 2. headers `client-id`, `request-time`, `signature`, read in any case (`request-time`
//!    is opaque text);
//! 3. merchant and key version lookup (KEY_NOT_FOUND, unsigned);
//! 4. signature verification over `POST <exact path requested>`, the headers and the raw
//!    body bytes (INVALID_SIGNATURE, unsigned) — the path comes from the URI's path, so
//!    an absolute-form request target (`POST http://host/ams/...`, as the Python SDK
//!    sends) works;
//! 5. endpoint lookup (NO_INTERFACE_DEF, signed);
//! 6. fault injection ([`crate::faults`]);
//! 7. JSON parse into the typed model and `validate()` (PARAM_ILLEGAL naming the field);
//! 8. the endpoint's handler ([`auth`], [`payments`], [`customs`]), which changes state
//!    under the store's lock.
//!
//! Nothing before step 8 touches state, so garbage never changes anything.

pub(crate) mod auth;
pub(crate) mod customs;
pub(crate) mod payments;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Response};
use scanbind_ams::model::AmsRequest;
use scanbind_ams::result::{Endpoint, ResultCode};
use scanbind_ams::signature::SignatureHeader;
use serde::Serialize;

use crate::app::App;
use crate::faults::CallFault;
use crate::respond::{self, result_body};

/// Oversize bodies up to this size are drained before the answer (see [`handle`]).
const DRAIN_LIMIT: usize = 1024 * 1024;

/// What a handler answers.
pub(crate) enum Answer {
    /// A response body (signed by the pipeline).
    Body(String),
    /// No answer at all: hold the connection (magic amount 9902).
    Hang,
}

/// Serializes a response model.
pub(crate) fn body<T: Serialize>(response: &T) -> Answer {
    match serde_json::to_string(response) {
        Ok(s) => Answer::Body(s),
        Err(_) => fail(
            ResultCode::UnknownException,
            "could not encode the response",
        ),
    }
}

/// A result-only answer.
pub(crate) fn fail(code: ResultCode, message: impl Into<String>) -> Answer {
    Answer::Body(result_body(code, message))
}

/// Parses and validates a request body. Errors name the field (`paymentAmount.value: ...`).
pub(crate) fn parse<T: AmsRequest>(bytes: &[u8]) -> Result<T, Answer> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| fail(ResultCode::ParamIllegal, "the request body is not UTF-8"))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let request: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the request body is not valid JSON: {inner}")
        } else if path == "." || path.is_empty() {
            format!("illegal parameter: {inner}")
        } else {
            format!("illegal parameter {path}: {inner}")
        };
        fail(ResultCode::ParamIllegal, message)
    })?;
    de.end().map_err(|_| {
        fail(
            ResultCode::ParamIllegal,
            "the request body has trailing characters after the JSON value",
        )
    })?;
    request.validate().map_err(|e| {
        fail(
            ResultCode::ParamIllegal,
            format!("illegal parameter {}: {}", e.field, e.reason),
        )
    })?;
    Ok(request)
}

/// One authenticated call, as handlers see it.
pub(crate) struct Call<'a> {
    /// The app.
    pub app: &'a App,
    /// The authenticated merchant.
    pub client_id: &'a str,
    /// The raw body.
    pub body: &'a [u8],
    /// An armed PAYMENT_IN_PROCESS fault, for pay.
    pub in_process: Option<CallFault>,
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The fallback handler: every path that is not a control or phone route.
pub(crate) async fn handle(State(app): State<Arc<App>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    if parts.method != Method::POST {
        return respond::unsigned(
            ResultCode::MethodNotSupported,
            format!("{} is not supported; AMS APIs are POST", parts.method),
        );
    }
    let max = app.config.max_body;
    let too_large = || {
        respond::unsigned(
            ResultCode::ParamIllegal,
            format!("the request body is larger than {max} bytes"),
        )
    };
    // Bodies a little over the limit are read and discarded (never parsed) so the client
    // gets a clean answer on a healthy connection; beyond DRAIN_LIMIT the connection is
    // answered at once and closed.
    let drain = max.max(DRAIN_LIMIT);
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > drain as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, drain).await {
        Ok(b) if b.len() <= max => b,
        Ok(_) => return too_large(),
        Err(_) => {
            return respond::unsigned(
                ResultCode::ParamIllegal,
                format!("the request body is larger than {max} bytes or could not be read"),
            );
        }
    };
    let Some(client_id) = header_text(&parts.headers, "client-id") else {
        return respond::unsigned(ResultCode::ParamIllegal, "the client-id header is missing");
    };
    let Some(request_time) = header_text(&parts.headers, "request-time") else {
        return respond::unsigned(
            ResultCode::ParamIllegal,
            "the request-time header is missing",
        );
    };
    let Some(merchant) = app.merchants.get(client_id) else {
        return respond::unsigned(
            ResultCode::KeyNotFound,
            "no public key is registered for this client-id",
        );
    };
    let Some(signature) = header_text(&parts.headers, "signature") else {
        return respond::unsigned(
            ResultCode::InvalidSignature,
            "the signature header is missing",
        );
    };
    let parsed = match SignatureHeader::parse(signature) {
        Ok(p) => p,
        Err(err) => {
            return respond::unsigned(ResultCode::InvalidSignature, err.to_string());
        }
    };
    let Some(key) = merchant.keys.get(&parsed.key_version) else {
        return respond::unsigned(
            ResultCode::KeyNotFound,
            format!(
                "no public key with keyVersion {} is registered for this client-id",
                parsed.key_version
            ),
        );
    };
    let content = scanbind_ams::signature::content("POST", &path, client_id, request_time, &bytes);
    if key.verify(&content, &parsed.signature).is_err() {
        return respond::unsigned(
            ResultCode::InvalidSignature,
            "the signature does not verify with the registered public key",
        );
    }
    let client_id = merchant.client_id.clone();
    let Some(endpoint) = Endpoint::from_path(&path) else {
        let body = result_body(
            ResultCode::NoInterfaceDef,
            "no interface is defined at this path",
        );
        return respond::signed(&app, &path, &client_id, body, false);
    };

    let fault = app.faults.take_call(endpoint);
    let processed = match &fault {
        Some(CallFault::UnknownException { processed })
        | Some(CallFault::HttpError { processed, .. })
        | Some(CallFault::Hang { processed }) => *processed,
        _ => true,
    };
    let answer = if processed {
        let call = Call {
            app: &app,
            client_id: &client_id,
            body: &bytes,
            in_process: match &fault {
                Some(f @ CallFault::InProcess { .. }) => Some(f.clone()),
                _ => None,
            },
        };
        Some(dispatch(endpoint, &call))
    } else {
        None
    };
    tracing::debug!(endpoint = ?endpoint, fault = ?fault, "AMS call");

    match fault {
        Some(CallFault::UnknownException { .. }) => respond::signed(
            &app,
            &path,
            &client_id,
            result_body(ResultCode::UnknownException, "unknown exception (injected)"),
            false,
        ),
        Some(CallFault::HttpError { status, .. }) => respond::http_error(status),
        Some(CallFault::Hang { .. }) => hang(&app).await,
        other => match answer {
            Some(Answer::Body(body)) => respond::signed(
                &app,
                &path,
                &client_id,
                body,
                matches!(other, Some(CallFault::BadSignature)),
            ),
            Some(Answer::Hang) => hang(&app).await,
            None => respond::unsigned(ResultCode::UnknownException, "not processed"),
        },
    }
}

/// Holds the connection open until the sandbox stops (the client gives up first).
async fn hang(app: &App) -> Response<Body> {
    let mut shutdown = app.shutdown.clone();
    let _ = shutdown.wait_for(|stopped| *stopped).await;
    respond::http_error(503)
}

fn dispatch(endpoint: Endpoint, call: &Call<'_>) -> Answer {
    match endpoint {
        Endpoint::Consult => auth::consult(call),
        Endpoint::ApplyToken => auth::apply_token(call),
        Endpoint::Revoke => auth::revoke(call),
        Endpoint::Pay => payments::pay(call),
        Endpoint::InquiryPayment => payments::inquiry_payment(call),
        Endpoint::Cancel => payments::cancel(call),
        Endpoint::Refund => payments::refund(call),
        Endpoint::InquiryRefund => payments::inquiry_refund(call),
        Endpoint::Declare => customs::declare(call),
        Endpoint::InquiryDeclaration => customs::inquiry_declarations(call),
        _ => fail(
            ResultCode::NoInterfaceDef,
            "no interface is defined at this path",
        ),
    }
}
