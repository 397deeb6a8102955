//! `scanbind-testkit`: the shared test fixtures of the scanbind workspace. Real
//! processes, no mocks, every wait bounded and ended by an event.
//!
//! | Module | Fixtures |
//! |---|---|
//! | [`agent`] | [`agent::approving_agent`]: a display agent that approves every question; [`agent::trusted_agent_toml`] |
//! | [`bus`] | [`PrivateBus`] (a private `dbus-daemon`), [`PrivateKeyring`] (a private gnome-keyring on it), [`require_secret_service`], [`session_has_secret_service`] |
//! | [`child`] | [`run_child_test`]: one test of the current test binary in a child process |
//! | [`daemon`] | [`DaemonProc`]: the `scanbindd` binary as a child process, started by a [`DaemonCommand`] |
//! | [`server`] | [`ServerProc`]: the `scanbind-server` binary as a child process |
//! | [`pg`] | [`PgCluster`]: a throwaway PostgreSQL cluster (or a database in a given server) |
//! | `world` (feature `world`) | `World`: an in-process sandbox, keys, a database and the `scanbind-server` binary in it; `WorldOptions` |
//! | [`system`] | system mode for real: [`system::SystemUsers`] (created with `useradd`), [`system::SystemBus`] (a private system-type bus with the packaged policy), [`system::SystemLayout`] (state, credential and policy files as systemd lays them out), `setpriv` helpers |
//! | [`display`] | [`display::Xvfb`]: a virtual X display, keys pressed with `xdotool` |
//! | [`wait`] | [`eventually`]: a bounded wait on a condition |
//! | [`tools`] | [`on_path`] |
//!
//! Without features it depends on no scanbind crate that it tests (`scanbindd::test_util` re-exports
//! parts of it), so every crate can use it as a dev-dependency. Fixture code panics
//! where a test would only unwrap; what a tool (the demo) also uses returns [`Error`].

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod agent;
pub mod bus;
pub mod child;
pub mod daemon;
pub mod display;
pub mod pg;
pub mod server;
pub mod system;
pub mod tools;
pub mod wait;
#[cfg(feature = "world")]
pub mod world;

pub use bus::{
    KEYRING_SS_TEST, PrivateBus, PrivateKeyring, SECRETS_NAME, require_secret_service,
    session_has_secret_service,
};
pub use child::{CHILD_TIMEOUT, ChildTest, run_child_test};
pub use daemon::{DaemonCommand, DaemonProc, READY_LINE};
pub use pg::PgCluster;
pub use server::ServerProc;
pub use tools::on_path;
pub use wait::{GUARD, eventually, eventually_within};

/// Why a fixture could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A D-Bus connection or call failed.
    #[error("D-Bus: {0}")]
    Bus(#[from] zbus::Error),
    /// A D-Bus standard interface call failed.
    #[error("D-Bus: {0}")]
    Fdo(#[from] zbus::fdo::Error),
    /// A child process did not behave.
    #[error("{0}")]
    Process(String),
}

/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
