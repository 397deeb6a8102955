//! Device authentication: every `/v1` request after registration is signed by the device
//! key, fresh (±window) and not replayed (a `(device, nonce)` pair is accepted once).

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use scanbind_device_api::signing::SignedHeaders;
use scanbind_device_api::{DevicePublicKey, ErrorCode};
use serde::de::DeserializeOwned;

use crate::domain::App;
use crate::error::{Error, Result};
use crate::store::DeviceRow;
use crate::util::now_ms;

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// Maps a signing error to the documented code.
pub fn auth_error(e: scanbind_device_api::Error) -> Error {
    use scanbind_device_api::Error as E;
    match e {
        E::MissingHeader(h) => Error::api(
            ErrorCode::Unauthenticated,
            format!("the {h} header is missing"),
        ),
        E::MalformedHeader(h) => Error::api(
            ErrorCode::Unauthenticated,
            format!("the {h} header is malformed"),
        ),
        E::Stale {
            skew_seconds,
            window_seconds,
        } => Error::api(
            ErrorCode::StaleRequest,
            format!(
                "request time is {skew_seconds} s from the server clock (allowed ±{window_seconds} s)"
            ),
        ),
        _ => Error::api(
            ErrorCode::BadSignature,
            "the request signature does not verify",
        ),
    }
}

/// Reads the signing headers of a request.
pub fn signed_headers(parts: &Parts) -> Result<SignedHeaders> {
    SignedHeaders::from_lookup(|name| parts.headers.get(name).and_then(|v| v.to_str().ok()))
        .map_err(auth_error)
}

/// The path and query as the device signed it.
pub fn signed_path(parts: &Parts) -> &str {
    parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| parts.uri.path())
}

/// Verifies signature and freshness with `key`, then records the nonce (replay check).
pub async fn verify(
    app: &App,
    key: &DevicePublicKey,
    headers: &SignedHeaders,
    parts: &Parts,
    body: &[u8],
) -> Result<()> {
    let now = now_ms();
    app.verifier
        .verify(
            key,
            headers,
            parts.method.as_str(),
            signed_path(parts),
            body,
            now / 1000,
        )
        .map_err(auth_error)?;
    let expires = now + 2 * 1000 * app.verifier.window_seconds();
    // On the relaxed pool (D19): a request that changes anything commits durably after
    // this, and that commit's flush carries the nonce to disk before any answer.
    let fresh =
        crate::domain::devices::accept_nonce(app, &headers.device_id, &headers.nonce, expires)
            .await?;
    if !fresh {
        return Err(Error::api(
            ErrorCode::ReplayedRequest,
            "this nonce was already used; sign the request again",
        ));
    }
    Ok(())
}

/// Reads a body of at most [`MAX_BODY`] bytes.
pub async fn read_body(req: Request) -> Result<(Parts, Bytes)> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| Error::api(ErrorCode::BodyTooLarge, "the body is larger than 64 KiB"))?;
    Ok((parts, bytes))
}

/// Parses a JSON body, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        Error::api(
            ErrorCode::BadRequest,
            format!("invalid body at {path}: {inner}"),
        )
    })
}

/// A request authenticated as a registered device, with its JSON body parsed as `T`
/// (use `()` for requests without a body).
#[derive(Debug)]
pub struct Signed<T> {
    /// The device.
    pub device: DeviceRow,
    /// The body.
    pub body: T,
}

/// Marker for "no body expected": any body is ignored (it is still covered by the
/// signature).
#[derive(Debug, Clone, Copy)]
pub struct NoBody;

/// How a body type is read.
pub trait SignedBody: Sized {
    /// Parses the body bytes.
    fn parse(body: &[u8]) -> Result<Self>;
}

impl SignedBody for NoBody {
    fn parse(_: &[u8]) -> Result<Self> {
        Ok(NoBody)
    }
}

macro_rules! json_body {
    ($($t:ty),*) => {$(
        impl SignedBody for $t {
            fn parse(body: &[u8]) -> Result<Self> {
                parse_json(body)
            }
        }
    )*};
}
json_body!(
    scanbind_device_api::types::CheckoutRequest,
    scanbind_device_api::types::StartBindingRequest,
    scanbind_device_api::types::SealedTokensRequest,
    scanbind_device_api::types::PayRequest,
    scanbind_device_api::types::OrderCodePayRequest,
    scanbind_device_api::types::RefundRequest,
    scanbind_device_api::types::SubscribeRequest
);

impl<T: SignedBody + Send> FromRequest<App> for Signed<T> {
    type Rejection = Error;

    async fn from_request(req: Request, app: &App) -> Result<Self> {
        let result = async {
            let (parts, body) = read_body(req).await?;
            let headers = signed_headers(&parts)?;
            let Some(device) = crate::domain::devices::load(app, &headers.device_id).await? else {
                return Err(Error::api(
                    ErrorCode::UnknownDevice,
                    "no registered device has this id",
                ));
            };
            let key = DevicePublicKey::from_base64(&device.public_key)
                .map_err(|_| Error::api(ErrorCode::Internal, "stored device key is corrupt"))?;
            verify(app, &key, &headers, &parts, &body).await?;
            tracing::Span::current().record("device", device.device_id.as_str());
            let body = T::parse(&body)?;
            Ok(Signed { device, body })
        }
        .await;
        if let Err(e) = &result
            && matches!(
                e.code(),
                ErrorCode::Unauthenticated
                    | ErrorCode::BadSignature
                    | ErrorCode::StaleRequest
                    | ErrorCode::ReplayedRequest
                    | ErrorCode::UnknownDevice
            )
        {
            app.metrics.auth_refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}
