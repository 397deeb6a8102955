//! D-Bus and the Secret Service: a private `dbus-daemon` ([`PrivateBus`]), a private
//! gnome-keyring on it ([`PrivateKeyring`]), and the checks for a Secret Service
//! ([`require_secret_service`], [`session_has_secret_service`]).
//!
//! Real processes, waited for by what they print or by their bus names, never by
//! sleeping.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt as _;

use crate::{Error, Result};

/// The well-known name of the Secret Service.
pub const SECRETS_NAME: &str = "org.freedesktop.secrets";

/// How long a helper process may take to appear on the bus before we give up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable `scripts/test` sets inside its private D-Bus session once
/// an unlocked gnome-keyring serves the Secret Service there.
pub const KEYRING_SS_TEST: &str = "KEYRING_SS_TEST";

/// Panics unless `scripts/test` (or the equivalent commands) provided a Secret Service.
///
/// Keyring tests fail, never skip, when run outside it.
pub fn require_secret_service() {
    assert!(
        std::env::var_os(KEYRING_SS_TEST).is_some(),
        "this test needs a real Secret Service: run it through scripts/test, which starts an \
         unlocked gnome-keyring in a private D-Bus session and sets {KEYRING_SS_TEST}=1 \
         (see daemon/README.md for the one-line equivalent)"
    );
}

/// A private `dbus-daemon` (session-type bus) with its socket and configuration in a
/// directory: given ([`PrivateBus::start`]) or a temporary one of its own
/// ([`PrivateBus::without_services`], [`PrivateBus::start_with`]). Without a service
/// directory nothing can be activated on it, so in particular no
/// `org.freedesktop.secrets` appears unless someone starts it. Killed on drop.
#[derive(Debug)]
pub struct PrivateBus {
    child: Child,
    address: String,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl PrivateBus {
    /// Starts one with its socket and configuration in `dir`; returns once it printed
    /// its address (it accepts connections from then on).
    pub fn start(dir: &Path) -> Result<PrivateBus> {
        PrivateBus::spawn(dir.to_owned(), None, None)
    }

    /// Starts one in a temporary directory of its own (removed on drop); nothing can be
    /// activated on it.
    pub fn without_services() -> Result<PrivateBus> {
        PrivateBus::start_with(None)
    }

    /// Starts one in a temporary directory of its own whose `<servicedir>` is
    /// `services` (when given), so names can be activated. It inherits this process's
    /// environment, so activated services see the session bus (and its Secret
    /// Service) in `DBUS_SESSION_BUS_ADDRESS`. With a service directory, the bus's
    /// notes ("Activating service ...") go to `dbus-daemon.log` in its directory.
    pub fn start_with(services: Option<&Path>) -> Result<PrivateBus> {
        let temp = tempfile::tempdir().map_err(crate::io("creating the bus directory"))?;
        PrivateBus::spawn(temp.path().to_owned(), services, Some(temp))
    }

    fn spawn(
        dir: PathBuf,
        services: Option<&Path>,
        temp: Option<tempfile::TempDir>,
    ) -> Result<PrivateBus> {
        let config = dir.join("bus.conf");
        std::fs::write(&config, bus_config(&dir.join("bus.socket"), services))
            .map_err(crate::io("writing the bus configuration"))?;
        let stderr = match services {
            Some(_) => Stdio::from(
                std::fs::File::create(dir.join("dbus-daemon.log"))
                    .map_err(crate::io("creating the bus log"))?,
            ),
            None => Stdio::null(),
        };
        let (child, address) = start_dbus_daemon(Command::new("dbus-daemon"), &config, stderr)?;
        Ok(PrivateBus {
            child,
            address,
            dir,
            _temp: temp,
        })
    }

    /// The bus address (`unix:path=...,guid=...`), for `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The directory holding its socket, configuration and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new connection to the bus.
    pub async fn connect(&self) -> Result<zbus::Connection> {
        Ok(zbus::connection::Builder::address(self.address())?
            .build()
            .await?)
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (a `dbus-daemon` command) on the configuration file `config`, in the
/// foreground, stdin closed and stderr to `stderr`, and reads the address it prints:
/// once it has, it accepts connections. A daemon that prints none is killed and reaped
/// ([`Error::Process`]).
pub(crate) fn start_dbus_daemon(
    mut cmd: Command,
    config: &Path,
    stderr: Stdio,
) -> Result<(Child, String)> {
    let mut child = cmd
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile", "--print-address=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(crate::io("cannot start dbus-daemon"))?;
    let mut line = String::new();
    let read = match child.stdout.take() {
        Some(stdout) => BufReader::new(stdout).read_line(&mut line).map(drop),
        None => Err(std::io::Error::other("no stdout")),
    };
    let address = line.trim().to_owned();
    if read.is_err() || address.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Process("dbus-daemon printed no address".into()));
    }
    Ok((child, address))
}

fn bus_config(socket: &Path, services: Option<&Path>) -> String {
    let servicedir = services
        .map(|d| format!("  <servicedir>{}</servicedir>\n", d.display()))
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
{servicedir}  <policy context="default">
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
    pub async fn start(bus_address: &str, dir: &Path) -> Result<PrivateKeyring> {
        use std::io::Write as _;
        use std::os::unix::fs::DirBuilderExt as _;
        let (data, run) = (dir.join("data"), dir.join("run"));
        for d in [&data, &run] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(crate::io(format!("creating {}", d.display())))?;
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
            .map_err(crate::io("cannot start gnome-keyring-daemon"))?;
        // The password of the throwaway login keyring, then EOF.
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(b"scanbind-demo")
                .map_err(crate::io("unlocking gnome-keyring-daemon"))?;
        }
        let keyring = PrivateKeyring { child };
        let name = zbus::names::BusName::try_from(SECRETS_NAME).map_err(zbus::Error::from)?;
        if !dbus.name_has_owner(name).await? {
            let arrived = tokio::time::timeout(START_TIMEOUT, owners.next()).await;
            if !matches!(arrived, Ok(Some(_))) {
                return Err(Error::Process(format!(
                    "gnome-keyring-daemon did not appear on the bus within {} s",
                    START_TIMEOUT.as_secs()
                )));
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
