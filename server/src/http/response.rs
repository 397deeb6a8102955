//! How an [`Error`] becomes an HTTP answer: a device-API error body
//! (`{"error":{"code":..,"message":..}}` with the code's status), or the back-office
//! body for an [`OperatorCode`](crate::error::OperatorCode). Internal causes are logged,
//! never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scanbind_device_api::ApiError;

use crate::error::Error;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Operator { code, message } = &self {
            let status = StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({"error": {"code": code.as_str(), "message": message}});
            return (status, Json(body)).into_response();
        }
        let code = self.code();
        let message = match &self {
            Error::Api { message, .. } | Error::Operator { message, .. } => message.clone(),
            Error::Ams(_) => {
                "Alipay gave no trustworthy answer; retry the identical request".into()
            }
            other => {
                tracing::error!(cause = %other, "request failed");
                "internal error; retry the identical request".into()
            }
        };
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ApiError::new(code, message))).into_response()
    }
}
