//! How AMS answers: always HTTP 200 with the business result in the body, and the
//! lowercase `client-id`, `response-time` and `signature` headers signed over the exact
//! response bytes and the request's path — except for INVALID_SIGNATURE / KEY_NOT_FOUND
//! and other answers to unauthenticated requests, which carry no signature.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use scanbind_ams::result::{AmsResult, ResultCode};
use scanbind_ams::signature::SignatureHeader;

use crate::app::App;
use crate::clock::ams_time;

const JSON: &str = "application/json; charset=UTF-8";

/// A body holding only `result`.
pub(crate) fn result_body(code: ResultCode, message: impl Into<String>) -> String {
    let result = AmsResult::with_code(code, message);
    serde_json::json!({ "result": result }).to_string()
}

/// An unsigned HTTP 200 answer (the request could not be authenticated).
pub(crate) fn unsigned(code: ResultCode, message: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(Body::from(result_body(code, message)));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    resp
}

/// A signed HTTP 200 answer. With `corrupt` the signature is made not to verify (the
/// `bad_signature` fault).
pub(crate) fn signed(
    app: &App,
    path: &str,
    client_id: &str,
    body: String,
    corrupt: bool,
) -> Response<Body> {
    let response_time = ams_time(app.clock.now());
    let signature = app
        .key
        .sign(&scanbind_ams::signature::content(
            "POST",
            path,
            client_id,
            &response_time,
            body.as_bytes(),
        ))
        .map(|mut sig| {
            if corrupt && let Some(first) = sig.first_mut() {
                *first ^= 0x5a;
            }
            SignatureHeader {
                key_version: 1,
                signature: sig,
            }
            .to_header_value()
        });
    let mut resp = Response::new(Body::from(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    if let Ok(v) = HeaderValue::from_str(client_id) {
        headers.insert("client-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&response_time) {
        headers.insert("response-time", v);
    }
    match signature.map(|s| HeaderValue::from_str(&s)) {
        Ok(Ok(v)) => {
            headers.insert("signature", v);
        }
        _ => tracing::error!("could not sign a response"),
    }
    resp
}

/// A bare HTTP error (the `http_error` fault).
pub(crate) fn http_error(status: u16) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(Body::from(
        status.canonical_reason().unwrap_or("error").to_owned(),
    ));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
