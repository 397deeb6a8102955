//! The whole-system reliability and security suite of scanbind (issue 10): fixtures
//! that run the real pieces as processes (the `scanbind-server` and `scanbindd`
//! binaries, an embedded sandbox, a throwaway PostgreSQL), a recording TCP proxy, the
//! secrets scanner and the load generator's engine.
//!
//! The tests live in `tests/`; `scripts/reliability` runs the full version and
//! `docs/reliability.md` records its figures.
#![deny(missing_docs)]

pub mod bins;
pub mod device;
pub mod load;
/// A throwaway PostgreSQL cluster: `scanbind-testkit`'s.
pub use scanbind_testkit::pg;
pub mod secrets;
/// `scanbind-server` as a child process: `scanbind-testkit`'s.
pub use scanbind_testkit::server;
pub mod tee;

/// Errors of the fixtures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// JSON did not parse.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Device key or signing.
    #[error("device: {0}")]
    Device(#[from] scanbind_device_api::Error),
    /// A child process or tool did not behave.
    #[error("{0}")]
    Process(String),
}

/// The result type of the fixtures.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Whether the full run was asked for (`SCANBIND_RELIABILITY_FULL=1`, set by
/// `scripts/reliability`); the short run is part of `cargo test --workspace`.
pub fn full_run() -> bool {
    std::env::var("SCANBIND_RELIABILITY_FULL").is_ok_and(|v| v == "1")
}

/// Runs per crash-matrix cell: 50 in the full run, `short` otherwise; overridable
/// with `SCANBIND_RELIABILITY_RUNS`.
pub fn runs_per_cell(short: usize) -> usize {
    if let Some(n) = std::env::var("SCANBIND_RELIABILITY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if full_run() { 50 } else { short }
}

/// An HTTP client for loopback use (rustls with the ring provider, no proxy).
pub fn http() -> reqwest::Client {
    scanbind_ams::client::http_client_builder(Vec::new())
        .expect("an HTTP client builder")
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

pub mod world {
    //! The suite's world: `scanbind-testkit`'s [`World`] with this suite's choices
    //! ([`options`]): the server binary of [`crate::bins`] (with its crash points), AMS
    //! attempts of 5 s, a short inquiry backoff, a random sealing key (a constant key would
    //! make a poor needle for the secrets audit), and the sellers in `server.toml` when
    //! there are any.

    pub use scanbind_testkit::world::{CLIENT_ID, Database, World, WorldOptions};
    use scanbind_testkit::world::{SealingKey, ServerBinary, ServerConfig};

    /// This suite's world options; a test adds its own (database, sellers, time scale...).
    pub fn options() -> WorldOptions {
        WorldOptions::new(ServerBinary::Build(|| {
            crate::bins::binaries().server.clone()
        }))
        .ams_attempt_timeout_ms(5000)
        .inquiry_backoff_ms("[50, 100, 200]")
        .sealing_key(SealingKey::Random)
        .server_config(ServerConfig::WithSellers)
    }

    /// [`Database::Postgres`] (a cluster of the world's own, which the crash matrix kills)
    /// when `postgres`, else SQLite.
    pub fn database(postgres: bool) -> Database {
        if postgres {
            Database::Postgres
        } else {
            Database::Sqlite
        }
    }
}
