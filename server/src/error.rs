//! The error type of the domain and HTTP layers, and the back-office error codes. How it
//! becomes an HTTP answer is up in the `http` layer (`http::response`). The store has
//! its own ([`StoreError`]); it converts into this one (a database failure stays
//! [`Error::Database`], a bad database URL stays [`Error::Config`]).

use scanbind_device_api::ErrorCode;

use crate::store::StoreError;

macro_rules! operator_codes {
    ($($variant:ident = $text:literal, $status:literal, $doc:literal;)*) => {
        /// A stable back-office error code (`{"error":{"code":..,"message":..}}`).
        /// Codes are append-only.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OperatorCode {
            $(#[doc = $doc] $variant,)*
        }

        impl OperatorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [OperatorCode] = &[$(OperatorCode::$variant,)*];

            /// The wire text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(OperatorCode::$variant => $text,)*
                }
            }

            /// The HTTP status.
            pub fn http_status(self) -> u16 {
                match self {
                    $(OperatorCode::$variant => $status,)*
                }
            }

            /// What the code means, for documentation.
            pub fn description(self) -> &'static str {
                match self {
                    $(OperatorCode::$variant => $doc,)*
                }
            }
        }
    };
}

operator_codes! {
    BadRequest = "bad_request", 400, "A parameter or the body is malformed or missing; the message names it.";
    AmountInvalid = "amount_invalid", 400, "Not a positive whole number of minor units, the wrong currency, or more than the payment allows (refundable or declarable amount).";
    CustomsInvalid = "customs_invalid", 400, "An unknown customs office code or bad merchant customs registration.";
    Unauthenticated = "unauthenticated", 401, "No operator key, or an unknown, malformed or revoked one.";
    Forbidden = "forbidden", 403, "The key's scope does not allow this operation.";
    NotFound = "not_found", 404, "No such payment, binding, refund or declaration.";
    IdempotencyConflict = "idempotency_conflict", 409, "The refund or declaration id was used before with other parameters.";
    InvalidState = "invalid_state", 409, "Not allowed in the payment's current state (e.g. refunding a failed payment).";
    RefundPeriodExceeded = "refund_period_exceeded", 409, "The wallet's refund period (365 days after payment) has passed.";
    CancelWindowExceeded = "cancel_window_exceeded", 409, "The cancel window has passed: refund instead.";
    BodyTooLarge = "body_too_large", 413, "The body is over 64 KiB.";
    PaymentRejected = "payment_rejected", 422, "Alipay refused with a final result; the message carries its result code.";
    Internal = "internal", 500, "Unexpected. Retrying the identical request is safe.";
    UpstreamUnavailable = "upstream_unavailable", 503, "No trustworthy answer from Alipay. Retrying the identical request is safe.";
}

impl std::fmt::Display for OperatorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OperatorCode {
    /// The closest device code (for logs and metrics that count device codes).
    pub fn device_code(self) -> ErrorCode {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == self.as_str())
            .unwrap_or(match self {
                OperatorCode::Forbidden => ErrorCode::RegistrationRefused,
                OperatorCode::CustomsInvalid => ErrorCode::BadRequest,
                _ => ErrorCode::InvalidState,
            })
    }
}

/// Everything that can go wrong in the server.
///
/// No variant ever carries a token, a key or a signature: all are safe to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration key is missing or wrong; names the key (`ams.client_id`).
    #[error("configuration key {key}: {reason}")]
    Config {
        /// The dotted key.
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// A request is refused with a documented device-API error code.
    #[error("{code}: {message}")]
    Api {
        /// The stable code.
        code: ErrorCode,
        /// Text for people.
        message: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An AMS call gave no trustworthy answer or could not be made.
    #[error("AMS: {0}")]
    Ams(#[from] scanbind_ams::Error),
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the file is.
        what: &'static str,
        /// Where.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed (bind, TLS).
    #[error("serving: {0}")]
    Serve(String),
    /// A back-office (operator API) request is refused with a documented operator code.
    #[error("{code}: {message}")]
    Operator {
        /// The stable code.
        code: OperatorCode,
        /// Text for people; names the record.
        message: String,
    },
    /// The store read a value it does not know, or missed a row it just wrote.
    #[error(transparent)]
    Store(StoreError),
    /// A settlement report file is malformed; names the file, the line and the reason.
    #[error("report {file}{at}: {reason}", at = if *line > 0 { format!(" line {line}") } else { String::new() })]
    Report {
        /// The file name.
        file: String,
        /// 1-based line number (1 is the header); 0 when the fault is the file itself.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(e) => Error::Database(e),
            StoreError::Migrate(e) => Error::Migrate(e),
            StoreError::Url => {
                Error::config("database.url", "must start with sqlite:// or postgres://")
            }
            StoreError::Sync { path, source } => Error::Io {
                what: "syncing the SQLite WAL",
                path,
                source,
            },
            other => Error::Store(other),
        }
    }
}

impl Error {
    /// A device-API error.
    pub fn api(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Api {
            code,
            message: message.into(),
        }
    }

    /// A configuration error.
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// A back-office error.
    pub fn operator(code: OperatorCode, message: impl Into<String>) -> Self {
        Error::Operator {
            code,
            message: message.into(),
        }
    }

    /// The code a device sees for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Api { code, .. } => *code,
            Error::Operator { code, .. } => code.device_code(),
            Error::Ams(_) => ErrorCode::UpstreamUnavailable,
            _ => ErrorCode::Internal,
        }
    }
}
