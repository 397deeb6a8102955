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
    /// No Secret Service (OS keyring) is reachable on this session (the default vault,
    /// `--vault secret-service`). The daemon does not fall back to anything else.
    #[error(
        "no Secret Service (OS keyring) is available on this session. Either install and \
         start one (e.g. `apt install gnome-keyring`; KeePassXC and KWallet work too), or \
         run scanbindd with its own encrypted file vault: `--vault file` with the systemd \
         credential `scanbind-vault` or `--vault-secret-file FILE` (docs/configuration.md, \
         \"The vault\"). scanbindd never stores secrets in a plain file"
    )]
    KeyringUnavailable(#[source] keyring_core::Error),
    /// The keyring exists but is locked and could not be unlocked (no prompter).
    #[error(
        "the OS keyring is locked: unlock it (log in again, or use the keyring manager such \
         as Seahorse) and retry, or run scanbindd with its own encrypted file vault \
         (`--vault file`, docs/configuration.md)"
    )]
    KeyringLocked(#[source] keyring_core::Error),
    /// Any other keyring failure (invalid attributes, ambiguous entries).
    #[error("OS keyring error")]
    Keyring(#[source] keyring_core::Error),
    /// A keyring call panicked or was cancelled on the blocking pool.
    #[error("OS keyring call did not complete")]
    KeyringTask(#[source] tokio::task::JoinError),
    /// The file vault (`--vault file`, the default of `--system`) has no master
    /// secret: no `--vault-secret-file` (or `vault_secret_file`) and no systemd
    /// credential `scanbind-vault`.
    #[error(
        "the file vault has no master secret: give scanbindd the systemd credential \
         `scanbind-vault`. Create it once, as root: `head -c 32 /dev/urandom | systemd-creds \
         encrypt --with-key=auto --name=scanbind-vault - /etc/credstore.encrypted/scanbind-vault` \
         (sealed with the TPM2 where the device has one, else with the host key \
         /var/lib/systemd/credential.secret; the Debian package does this at install) and \
         start scanbindd from a unit with `LoadCredentialEncrypted=scanbind-vault` (the \
         packaged scanbindd.service has it). Or pass `--vault-secret-file FILE` (a file of \
         at least 16 random bytes: `head -c 32 /dev/urandom > FILE && chmod 600 FILE`). For \
         development only, `--dev` without a credential makes a throw-away secret"
    )]
    VaultNoMasterSecret,
    /// `--dev` without a master secret makes a throw-away one, which cannot open the
    /// vault file an earlier run left: refused, the file untouched.
    #[error(
        "the vault file {path} exists, but --dev without a master secret makes a new \
         throw-away secret at every start, which cannot open it. scanbindd leaves it \
         untouched: start it with the credential `scanbind-vault` (or `--vault-secret-file`) \
         the vault was made with, or move the file away to start over"
    )]
    VaultEphemeralExisting {
        /// The vault file.
        path: PathBuf,
    },
    /// The file vault's master secret is too short.
    #[error(
        "the file vault's master secret is shorter than {min} bytes: use at least 32 random \
         bytes (`head -c 32 /dev/urandom`)"
    )]
    VaultSecretTooShort {
        /// The shortest accepted length, in bytes.
        min: usize,
    },
    /// The file holding the vault's master secret could not be read.
    #[error("cannot read the vault's master secret from {path}")]
    VaultSecretUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The vault file cannot be decrypted with this master secret: a wrong secret (or a
    /// damaged file). The file is left untouched.
    #[error(
        "the vault file {path} cannot be decrypted with this master secret (a wrong secret, \
         or a damaged file). scanbindd leaves it untouched: start it with the secret the \
         vault was created with. Only to start over (losing the device key and the \
         bindings' tokens in it), move the file away"
    )]
    VaultUndecryptable {
        /// The vault file.
        path: PathBuf,
    },
    /// The vault file is damaged: not a keyring file, or some of its items do not
    /// decrypt. The file is left untouched.
    #[error(
        "the vault file {path} is damaged ({reason}). scanbindd leaves it untouched: restore \
         it from a backup, or move it away to start over (losing the device key and the \
         bindings' tokens in it)"
    )]
    VaultCorrupt {
        /// The vault file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// The parser's error, if any (boxed: it is large).
        #[source]
        source: Option<Box<oo7::file::Error>>,
    },
    /// The vault file or its directory is accessible to others, or is not a plain file
    /// or directory.
    #[error(
        "the vault path {path} is {found}; it must be {expected}, owned by the daemon's \
         user and not accessible to group or others (fix it with chmod, or move it away)"
    )]
    VaultPermissions {
        /// The file or directory.
        path: PathBuf,
        /// What it is (its mode).
        found: String,
        /// What it must be.
        expected: String,
    },
    /// The vault file or its directory belongs to another user.
    #[error(
        "the vault path {path} is owned by uid {owner}, not by the daemon's user (uid \
         {expected}): run scanbindd as its owner, or fix it with chown"
    )]
    VaultOwner {
        /// The file or directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The daemon's effective uid.
        expected: u32,
    },
    /// The vault's directory or file could not be created or read.
    #[error("file vault {path}")]
    VaultIo {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An operation on the open vault file failed (e.g. it could not be written).
    #[error("file vault {path}: {op} failed")]
    Vault {
        /// The vault file.
        path: PathBuf,
        /// What the vault was doing.
        op: &'static str,
        /// oo7's error (boxed: it is large).
        #[source]
        source: Box<oo7::file::Error>,
    },
    /// In system mode, the policy file (or a directory above it) can be written by
    /// someone other than root: it is not honoured, and every payment is refused until it is
    /// fixed (whoever can write it controls what apps may spend).
    #[error(
        "{path} is {problem}: in system mode the payment policy and every directory above \
         it must be owned by root and writable by root only (whoever can write or replace the \
         file controls spending), so every payment is refused until this is fixed: `{fix}`"
    )]
    PolicyNotRootOwned {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
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
