//! [`Embedded`]: the development sandbox and merchant server
//! (`scanbindd::dev::DevStack`, SQLite in a directory) plus `scanbindd` itself, in
//! this process, serving on a given bus.
//!
//! The demo runs on it, and so do the tests of the clients (the C and Rust clients,
//! `scanbindctl` and the Python example), so every one of them talks to the real
//! daemon over a real bus.

use std::path::Path;

/// Why the embedded stack could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sandbox or the merchant server.
    #[error(transparent)]
    DevStack(#[from] scanbindd::dev::Error),
    /// The daemon.
    #[error(transparent)]
    Daemon(#[from] scanbindd::Error),
    /// The private `dbus-daemon` ([`DemoBus`](crate::DemoBus)).
    #[error("starting a private dbus-daemon: {0}")]
    DbusDaemon(#[source] scanbind_testkit::Error),
    /// The embedded D-Bus broker ([`EmbeddedBus`](crate::EmbeddedBus)), with `busd`'s
    /// message.
    #[error("starting the embedded D-Bus broker (busd): {0}")]
    Broker(String),
    /// The daemon's task panicked or was cancelled.
    #[error("the daemon's task did not complete")]
    Task(#[source] tokio::task::JoinError),
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The development sandbox and merchant server plus `scanbindd`, in this process.
#[derive(Debug)]
pub struct Embedded {
    dev: scanbindd::dev::DevStack,
    daemon: tokio::task::JoinHandle<scanbindd::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Embedded {
    /// Starts the sandbox and the server (files under `state_dir`), then the daemon
    /// serving on `bus_address` with its journal under `state_dir` and its secrets in
    /// the Secret Service of the session bus under the keyring service name
    /// `vault_service`. Returns once the daemon owns its name.
    pub async fn start(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
    ) -> Result<Embedded> {
        Embedded::start_with(bus_address, state_dir, vault_service, None).await
    }

    /// As [`Embedded::start`], the daemon also serving peer-to-peer connections on the
    /// Unix socket `p2p_socket`.
    pub async fn start_with(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
        p2p_socket: Option<&Path>,
    ) -> Result<Embedded> {
        Embedded::start_dev(
            bus_address,
            state_dir,
            vault_service,
            p2p_socket,
            scanbindd::dev::DevOptions::default(),
        )
        .await
    }

    /// As [`Embedded::start_with`], the sandbox listening and reachable as `dev` says
    /// (a phone on the LAN).
    pub async fn start_dev(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
        p2p_socket: Option<&Path>,
        dev: scanbindd::dev::DevOptions,
    ) -> Result<Embedded> {
        Embedded::start_full(bus_address, state_dir, vault_service, p2p_socket, dev, None).await
    }

    /// As [`Embedded::start`], the daemon reading its payment policy from
    /// `policy_file` (`docs/policy.md`).
    pub async fn start_with_policy(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
        policy_file: &Path,
    ) -> Result<Embedded> {
        Embedded::start_full(
            bus_address,
            state_dir,
            vault_service,
            None,
            scanbindd::dev::DevOptions::default(),
            Some(policy_file),
        )
        .await
    }

    /// Everything: the daemon also serving `p2p_socket`, the sandbox as `dev` says,
    /// the policy from `policy_file`.
    pub async fn start_full(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
        p2p_socket: Option<&Path>,
        dev: scanbindd::dev::DevOptions,
        policy_file: Option<&Path>,
    ) -> Result<Embedded> {
        Embedded::start_vault(
            bus_address,
            state_dir,
            vault_service,
            scanbindd::VaultChoice::SecretService,
            dev,
            p2p_socket,
            policy_file,
        )
        .await
    }

    /// As [`Embedded::start_dev`], the daemon keeping its secrets where `vault` says:
    /// the Secret Service under `vault_service`, or its own encrypted file (the demo
    /// without a Secret Service, [`scanbindd::VaultChoice::file_with_new_secret`]),
    /// and reading its payment policy from `policy_file` when given.
    pub async fn start_with_vault(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
        vault: scanbindd::VaultChoice,
        dev: scanbindd::dev::DevOptions,
        policy_file: Option<&Path>,
    ) -> Result<Embedded> {
        Embedded::start_vault(
            bus_address,
            state_dir,
            vault_service,
            vault,
            dev,
            None,
            policy_file,
        )
        .await
    }

    async fn start_vault(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
        vault: scanbindd::VaultChoice,
        dev: scanbindd::dev::DevOptions,
        p2p_socket: Option<&Path>,
        policy_file: Option<&Path>,
    ) -> Result<Embedded> {
        let dev = scanbindd::dev::DevStack::start_with(state_dir, dev).await?;
        let mut config = scanbindd::Config::new(
            scanbindd::BusChoice::Address(bus_address.to_owned()),
            dev.server_url().to_owned(),
            state_dir.join("journal.sqlite3"),
        );
        config.device_name = "Living room TV".to_owned();
        config.vault_service = vault_service.to_owned();
        config.vault = vault;
        config.p2p_socket = p2p_socket.map(Path::to_owned);
        config.policy_file = policy_file.map(Path::to_owned);
        let daemon = match scanbindd::Daemon::start(config).await {
            Ok(d) => d,
            Err(e) => {
                dev.shutdown().await;
                return Err(e.into());
            }
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let daemon = tokio::spawn(daemon.run_until(async move {
            let _ = stopped.await;
        }));
        Ok(Embedded { dev, daemon, stop })
    }

    /// The merchant server's base URL.
    pub fn server_url(&self) -> &str {
        self.dev.server_url()
    }

    /// The sandbox's base URL (control API `/sandbox/v1/...`, phone pages).
    pub fn sandbox_url(&self) -> &str {
        self.dev.sandbox_url()
    }

    /// Stops the daemon, then the server and the sandbox.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(());
        let ran = self.daemon.await;
        self.dev.shutdown().await;
        ran.map_err(Error::Task)??;
        Ok(())
    }
}
