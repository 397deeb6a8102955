//! The one error type of the agent library.

/// What can go wrong in the agent: a request the daemon sent that cannot be shown, the
/// bus, or the daemon refusing the registration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `Show` or `Confirm` named a kind this agent does not know.
    #[error("unknown request kind {kind:?}")]
    UnknownKind {
        /// The kind as received.
        kind: String,
    },
    /// A required `details` key is missing.
    #[error("details key {key:?} is missing")]
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// A `details` key holds a value of another D-Bus type than documented.
    #[error("details key {key:?} must have D-Bus type {expected:?}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// The documented signature.
        expected: &'static str,
    },
    /// The code value does not fit in a QR code.
    #[error("the code value cannot be drawn as a QR code: {0}")]
    Qr(#[from] qrcode::types::QrError),
    /// The user interface has gone away, so nothing can be shown.
    #[error("the user interface has closed")]
    UiClosed,
    /// The window could not be opened or drawn (no display, no OpenGL).
    #[error("the window failed: {0}")]
    Window(String),
    /// The daemon's user (`--daemon-user`) is not in the user database.
    #[error(
        "no user {name:?} to check the daemon's calls against ({reason}): install the \
         scanbind package (its sysusers file makes the user) or pass --daemon-user NAME"
    )]
    NoSuchUser {
        /// The user name.
        name: String,
        /// Why it could not be found.
        reason: String,
    },
    /// A bus or protocol error.
    #[error("D-Bus: {0}")]
    Bus(#[from] zbus::Error),
    /// The daemon refused (`NotAllowed`: this agent is not trusted; `Duplicate`:
    /// another agent is registered) or failed a request.
    #[error("the daemon refused: {0}")]
    Daemon(#[from] scanbind_ipc::Error),
}

impl From<Error> for zbus::fdo::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownKind { .. }
            | Error::MissingKey { .. }
            | Error::WrongType { .. }
            | Error::Qr(_) => zbus::fdo::Error::InvalidArgs(e.to_string()),
            other => zbus::fdo::Error::Failed(other.to_string()),
        }
    }
}
