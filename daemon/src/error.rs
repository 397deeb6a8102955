//! The daemon's error type. Its mapping to the wire errors apps receive is made in
//! one place, in the D-Bus layer (`dbus/error.rs`).

use std::path::PathBuf;

/// Everything that can go wrong inside the daemon.
///
/// Keeps the underlying error as its `source()`; [`Error::to_wire`] turns it into the
/// `io.scanbind.Daemon1.Error.*` an app receives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No Secret Service (OS keyring) is reachable on this session.
    #[error(
        "no Secret Service (OS keyring) is available: install and start gnome-keyring or \
         another Secret Service provider (KeePassXC, KWallet) in this session; scanbindd \
         never stores secrets in a plain file"
    )]
    KeyringUnavailable(#[source] keyring_core::Error),
    /// The keyring exists but is locked and could not be unlocked (no prompter).
    #[error(
        "the OS keyring is locked: unlock it (log in again, or use the keyring manager such \
         as Seahorse) and retry"
    )]
    KeyringLocked(#[source] keyring_core::Error),
    /// Any other keyring failure (invalid attributes, ambiguous entries).
    #[error("OS keyring error")]
    Keyring(#[source] keyring_core::Error),
    /// A keyring call panicked or was cancelled on the blocking pool.
    #[error("OS keyring call did not complete")]
    KeyringTask(#[source] tokio::task::JoinError),
    /// The journal's directory could not be created.
    #[error("cannot create the journal directory {path}")]
    JournalDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The journal database could not be put into its required mode (WAL,
    /// `synchronous=FULL`) or has a schema from a newer version.
    #[error("payment journal {path}: {reason}")]
    JournalSetup {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An SQLite operation on the journal failed.
    #[error("payment journal: {op} failed")]
    Journal {
        /// What the journal was doing.
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The journal holds a row this version cannot read.
    #[error("payment journal: corrupt entry {id}: {reason}")]
    JournalCorrupt {
        /// The entry's id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The app reused an order id with different payment parameters.
    #[error("order id {order_id:?} was already used by this app for a different payment")]
    OrderConflict {
        /// The app's order id.
        order_id: String,
    },
    /// A journal entry was asked to move to a state its current state cannot reach.
    #[error("payment {id}: cannot move from {from} to {to}")]
    InvalidTransition {
        /// The entry's id.
        id: i64,
        /// Its current state.
        from: &'static str,
        /// The requested state.
        to: &'static str,
    },
    /// No journal entry with this id.
    #[error("payment {0} is not in the journal")]
    UnknownPayment(i64),
    /// A task on the blocking pool (a journal write) panicked or was cancelled.
    #[error("a blocking task did not complete")]
    Task(#[source] tokio::task::JoinError),
    /// The device key in the vault could not be used, or a nonce could not be made.
    #[error("device key")]
    DeviceKey(#[source] scanbind_device_api::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for the merchant server")]
    HttpClient(#[source] scanbind_ams::Error),
    /// The merchant server could not be reached (connect, timeout, broken stream).
    #[error("the merchant server is not reachable")]
    ServerUnreachable(#[source] reqwest::Error),
    /// The merchant server answered with an error body.
    #[error("the merchant server refused the request: {code} (HTTP {status}): {message}")]
    ServerRejected {
        /// The HTTP status.
        status: u16,
        /// The stable error code (`docs/server.md`, "Error codes").
        code: String,
        /// The server's text for people.
        message: String,
    },
    /// The merchant server answered something this version cannot read.
    #[error("unexpected answer from the merchant server: {0}")]
    ServerProtocol(String),
    /// The D-Bus connection could not be set up or an object could not be served.
    #[error("D-Bus")]
    Bus(#[from] zbus::Error),
    /// The bus name is owned by another process.
    #[error(
        "the bus name {0} is already owned: another scanbindd is running on this bus; stop it \
         (systemctl --user stop scanbindd) and start again"
    )]
    NameTaken(String),
    /// The embedded development stack (`--dev`) could not start.
    #[error("development stack: {0}")]
    DevStack(String),
    /// The daemon's configuration file or arguments are invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The peer-to-peer socket could not be set up.
    #[error("peer-to-peer socket {path}")]
    Socket {
        /// The socket path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn journal(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| Error::Journal { op, source }
    }
}
