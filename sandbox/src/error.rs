//! The sandbox's error type (start-up, configuration and persistence; request errors
//! never become Rust errors: they are AMS results in a response body).

use std::path::PathBuf;

/// Everything that can stop a sandbox from starting or saving its state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is wrong.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// A key could not be read or used.
    #[error(transparent)]
    Key(#[from] scanbind_ams::Error),
    /// Generating the signing key failed.
    #[error("cannot generate the sandbox signing key: {0}")]
    KeyGeneration(String),
    /// A file operation failed.
    #[error("cannot {what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not valid sandbox state.
    #[error("the state file {path} is not valid sandbox state: {source}")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client for notifications could not be built.
    #[error("cannot build the notification HTTP client: {0}")]
    HttpClient(String),
}

/// `Result` with the sandbox [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
