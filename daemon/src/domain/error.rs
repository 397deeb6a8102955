//! The domain's error: why the daemon refuses, or could not do, what an app asked.
//!
//! Each kind is one of the errors apps know (`docs/dbus-api.md`); the D-Bus layer maps
//! it to the wire error in one place (`dbus/error.rs`), keeping the message. A failure
//! below the domain (journal, keyring, merchant server) is carried as it is
//! ([`Refusal::Failed`]) and mapped by its own kind.
//!
//! [`Failure`] is what a payment records when it fails after it was admitted (its
//! `LastError`); the names recorded there are the contract's error names, taken here
//! and nowhere else in the domain.

use scanbind_ipc::ErrorInfo;

/// Why a request from an app is refused or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// An argument or option is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The amount (or a part of it) is not a positive number of minor units, or the
    /// parts do not add up.
    #[error("{0}")]
    InvalidAmount(String),
    /// Not a currency scanbind pays in.
    #[error("{0}")]
    UnknownCurrency(String),
    /// No wallet is bound, or the binding's tokens are gone.
    #[error("{0}")]
    NotBound(String),
    /// No such object for this app.
    #[error("{0}")]
    NotFound(String),
    /// The app may not do this (policy).
    #[error("{0}")]
    NotAllowed(String),
    /// The merchant server is not reachable; nothing was started.
    #[error("{0}")]
    Offline(String),
    /// Below the wallet's minimum.
    #[error("{0}")]
    BelowMinimum(String),
    /// Above a wallet limit, an app's cap or budget.
    #[error("{0}")]
    AboveLimit(String),
    /// The same id was used for something else.
    #[error("{0}")]
    Duplicate(String),
    /// The app asks too often or already has something waiting on the display (the
    /// per-app limits of [`super::limits`]); nothing was shown or done.
    #[error("{0}")]
    Busy(String),
    /// The user must answer on a display and none is there (or no parent PIN is set).
    #[error("{0}")]
    NeedsConfirmation(String),
    /// The user (or a parent) said no, nobody answered, or the PIN attempts ran out.
    #[error("{0}")]
    Denied(String),
    /// A refund is not possible.
    #[error("{0}")]
    RefundNotAllowed(String),
    /// The merchant server answered something unusable.
    #[error("{0}")]
    ServerError(String),
    /// An unexpected internal failure.
    #[error("{0}")]
    Internal(String),
    /// The payment policy's refusal, already in the wire's terms (the policy
    /// (`crate::policy`) speaks them).
    #[error(transparent)]
    Policy(scanbind_ipc::Error),
    /// A failure below the domain (journal, keyring, merchant server).
    #[error(transparent)]
    Failed(#[from] crate::error::Error),
}

/// Why a payment failed after it was admitted, as its journal entry records it
/// (`LastError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The binding cannot pay (its tokens are gone): `NotBound`.
    NotBound,
    /// The merchant server or the wallet refused or failed it: `ServerError`.
    Server,
}

impl Failure {
    /// The `LastError` recorded for this failure: the error name apps know for it,
    /// and `message`.
    pub(crate) fn info(self, message: impl Into<String>) -> ErrorInfo {
        use zbus::DBusError as _;
        let kind = match self {
            Failure::NotBound => scanbind_ipc::Error::NotBound(String::new()),
            Failure::Server => scanbind_ipc::Error::ServerError(String::new()),
        };
        ErrorInfo {
            name: kind.name().to_string(),
            message: message.into(),
        }
    }
}
