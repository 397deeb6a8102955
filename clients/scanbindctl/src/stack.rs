//! The embedded stack: a private `dbus-daemon`, optionally a private gnome-keyring on
//! it, and [`Embedded`] = the development sandbox and merchant server
//! (`scanbindd::dev::DevStack`, SQLite in a directory) plus `scanbindd` itself, in
//! this process, serving on that bus.
//!
//! `scanbindctl demo` runs on it, and so do the tests of the client libraries (the
//! C and Rust clients and the Python example include this file with `#[path]`), so
//! every one of them talks to the real daemon over a real bus. Real processes are
//! waited for by what they print or by their bus names, never by sleeping.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt as _;

/// A boxed error: this module is shared by crates with different error types.
pub type StackError = Box<dyn std::error::Error + Send + Sync>;

/// The well-known name of the Secret Service.
pub const SECRETS_NAME: &str = "org.freedesktop.secrets";

/// How long a helper process may take to appear on the bus before we give up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `program` is an executable file on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            std::fs::metadata(&p).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt as _;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// A private `dbus-daemon` (session-type bus, no service activation) in a directory
/// of its own. Killed on drop.
#[derive(Debug)]
pub struct PrivateBus {
    child: Child,
    address: String,
}

impl PrivateBus {
    /// Starts one with its socket and configuration in `dir`; returns once it printed
    /// its address (it accepts connections from then on).
    pub fn start(dir: &Path) -> Result<PrivateBus, StackError> {
        let config = dir.join("bus.conf");
        std::fs::write(&config, bus_config(&dir.join("bus.socket")))?;
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start dbus-daemon: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("dbus-daemon has no stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let address = line.trim().to_owned();
        if address.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err("dbus-daemon printed no address".into());
        }
        Ok(PrivateBus { child, address })
    }

    /// The bus address (`unix:path=...,guid=...`).
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

/// A gnome-keyring (Secret Service only) with its files in a directory of its own,
/// unlocked with a throwaway password, on a given bus. Killed on drop.
#[derive(Debug)]
pub struct PrivateKeyring {
    child: Child,
}

impl PrivateKeyring {
    /// Starts `gnome-keyring-daemon --foreground --unlock --components=secrets` on
    /// `bus_address` with `XDG_DATA_HOME` and `XDG_RUNTIME_DIR` under `dir`, and
    /// returns once it owns `org.freedesktop.secrets` there.
    pub async fn start(bus_address: &str, dir: &Path) -> Result<PrivateKeyring, StackError> {
        use std::io::Write as _;
        use std::os::unix::fs::DirBuilderExt as _;
        let (data, run) = (dir.join("data"), dir.join("run"));
        for d in [&data, &run] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)?;
        }
        // Watch the bus before starting it, so its arrival cannot be missed.
        let conn = zbus::connection::Builder::address(bus_address)?
            .build()
            .await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let mut owners = dbus
            .receive_name_owner_changed_with_args(&[(0, SECRETS_NAME)])
            .await?;
        let mut child = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", bus_address)
            .env("XDG_DATA_HOME", &data)
            .env("XDG_RUNTIME_DIR", &run)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start gnome-keyring-daemon: {e}"))?;
        // The password of the throwaway login keyring, then EOF.
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(b"scanbind-demo")?;
        }
        let keyring = PrivateKeyring { child };
        let name = zbus::names::BusName::try_from(SECRETS_NAME)?;
        if !dbus.name_has_owner(name).await? {
            let arrived = tokio::time::timeout(START_TIMEOUT, owners.next()).await;
            if !matches!(arrived, Ok(Some(_))) {
                return Err(format!(
                    "gnome-keyring-daemon did not appear on the bus within {} s",
                    START_TIMEOUT.as_secs()
                )
                .into());
            }
        }
        Ok(keyring)
    }
}

impl Drop for PrivateKeyring {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a Secret Service is on the session bus (owned or activatable).
pub async fn session_has_secret_service() -> bool {
    async fn check() -> zbus::Result<bool> {
        let conn = zbus::Connection::session().await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = zbus::names::BusName::try_from(SECRETS_NAME)?;
        if dbus.name_has_owner(name).await? {
            return Ok(true);
        }
        Ok(dbus
            .list_activatable_names()
            .await?
            .iter()
            .any(|n| n.as_str() == SECRETS_NAME))
    }
    check().await.unwrap_or(false)
}

/// The development sandbox and merchant server plus `scanbindd`, in this process.
#[derive(Debug)]
pub struct Embedded {
    dev: scanbindd::dev::DevStack,
    daemon: tokio::task::JoinHandle<scanbindd::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

// `start` and `start_with` serve the client crates' tests, which include this file.
#[allow(dead_code)]
impl Embedded {
    /// Starts the sandbox and the server (files under `state_dir`), then the daemon
    /// serving on `bus_address` with its journal under `state_dir` and its secrets in
    /// the Secret Service of the session bus under the keyring service name
    /// `vault_service`. Returns once the daemon owns its name.
    pub async fn start(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
    ) -> Result<Embedded, StackError> {
        Embedded::start_with(bus_address, state_dir, vault_service, None).await
    }

    /// As [`Embedded::start`], the daemon also serving peer-to-peer connections on the
    /// Unix socket `p2p_socket`.
    pub async fn start_with(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
        p2p_socket: Option<&Path>,
    ) -> Result<Embedded, StackError> {
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
    ) -> Result<Embedded, StackError> {
        Embedded::start_full(bus_address, state_dir, vault_service, p2p_socket, dev, None).await
    }

    /// As [`Embedded::start`], the daemon reading its payment policy from
    /// `policy_file` (`docs/policy.md`).
    pub async fn start_with_policy(
        bus_address: &str,
        state_dir: &Path,
        vault_service: &str,
        policy_file: &Path,
    ) -> Result<Embedded, StackError> {
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
    ) -> Result<Embedded, StackError> {
        let dev = scanbindd::dev::DevStack::start_with(state_dir, dev).await?;
        let mut config = scanbindd::Config::new(
            scanbindd::BusChoice::Address(bus_address.to_owned()),
            dev.server_url().to_owned(),
            state_dir.join("journal.sqlite3"),
        );
        config.device_name = "Living room TV".to_owned();
        config.vault_service = vault_service.to_owned();
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
    pub async fn shutdown(self) -> Result<(), StackError> {
        let _ = self.stop.send(());
        let ran = self.daemon.await;
        self.dev.shutdown().await;
        ran??;
        Ok(())
    }
}
