//! The client's one error type.

use scanbind_ipc::Error as Wire;

/// Everything a client call can fail with.
///
/// A refusal by the daemon arrives as [`Error::Daemon`] carrying the typed wire error
/// ([`scanbind_ipc::Error`], `io.scanbind.Daemon1.Error.*`): match on its variant, never
/// on a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection could be made to the daemon.
    #[error("cannot connect to scanbindd ({target}): {source}")]
    Connect {
        /// Where the client looked (a bus or a socket path).
        target: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The bus is there, but no daemon owns `io.scanbind.Daemon` on it and none can
    /// be activated.
    #[error("scanbindd is not running on {0} (start it, or pass another bus or socket)")]
    NotRunning(String),
    /// The daemon refused the call with one of its documented errors.
    #[error(transparent)]
    Daemon(Wire),
    /// A transport or protocol failure on the bus (including the daemon going away).
    #[error("D-Bus: {0}")]
    Bus(zbus::Error),
    /// The daemon reported a state this client version does not know.
    #[error("the daemon reported an unknown state {0:?}")]
    UnknownState(String),
    /// An amount is not valid money (negative, too large, unknown currency).
    #[error(transparent)]
    Money(#[from] scanbind_money::MoneyError),
    /// The object's signal stream ended before it completed (the daemon went away).
    #[error("the daemon went away before {0} completed")]
    Disconnected(&'static str),
    /// The receipt keys could not be fetched from the merchant server.
    #[error("fetching the receipt keys from {url}: {source}")]
    ReceiptKeys {
        /// The URL asked.
        url: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A receipt does not verify (bad signature, unknown key, malformed).
    #[error("the receipt does not verify: {0}")]
    Receipt(#[from] scanbind_device_api::Error),
    /// A receipt verifies but says something else than the payment it should prove.
    #[error("the receipt does not match the payment: {0}")]
    ReceiptMismatch(String),
}

impl Error {
    /// The D-Bus error name of a daemon refusal (`io.scanbind.Daemon1.Error.Offline`,
    /// ...), or of a transport error the bus reported by name.
    pub fn dbus_name(&self) -> Option<String> {
        use zbus::DBusError as _;
        match self {
            Error::Daemon(w) => Some(w.name().to_string()),
            Error::Bus(zbus::Error::MethodError(name, _, _)) => Some(name.to_string()),
            _ => None,
        }
    }
}

impl From<Wire> for Error {
    fn from(e: Wire) -> Self {
        match e {
            Wire::ZBus(z) => Error::from(z),
            other => Error::Daemon(other),
        }
    }
}

impl From<zbus::Error> for Error {
    fn from(e: zbus::Error) -> Self {
        // A typed daemon error that reached us through a property getter or another
        // zbus-typed path is still a typed daemon error.
        match Wire::from(e) {
            Wire::ZBus(z) => Error::Bus(z),
            other => Error::Daemon(other),
        }
    }
}

impl From<zbus::fdo::Error> for Error {
    fn from(e: zbus::fdo::Error) -> Self {
        Error::from(zbus::Error::from(e))
    }
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
