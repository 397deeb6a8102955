//! Where the daemon is: the session bus, the system bus, another bus, or a
//! peer-to-peer Unix socket.

use std::path::PathBuf;

use scanbind_ipc::BUS_NAME;
use zbus::Connection;
use zbus::fdo::DBusProxy;

use crate::error::{Error, Result};

/// The environment variable naming a peer-to-peer socket of the daemon
/// (`scanbindd --p2p PATH`); [`Transport::Auto`] uses it first.
pub const SOCKET_ENV: &str = "SCANBIND_SOCKET";

/// The environment variable naming the D-Bus address of a bus the daemon serves on
/// (`unix:path=...`); [`Transport::Auto`] uses it when [`SOCKET_ENV`] is not set.
pub const BUS_ADDRESS_ENV: &str = "SCANBIND_BUS_ADDRESS";

/// The longest a single D-Bus call may take before it fails (every method of the API
/// answers at once; long operations are objects to wait on).
pub const METHOD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How to reach the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// [`SOCKET_ENV`] if set, else [`BUS_ADDRESS_ENV`] if set, else the session bus if
    /// the daemon is there (running or activatable), else the system bus if it is
    /// there.
    #[default]
    Auto,
    /// The session bus (`DBUS_SESSION_BUS_ADDRESS`): desktops, one daemon per user.
    Session,
    /// The system bus: single-user TVs and consoles.
    System,
    /// A bus at this D-Bus address (`unix:path=/run/...`).
    Address(String),
    /// A peer-to-peer Unix socket served by `scanbindd --p2p PATH` (no bus at all).
    Socket(PathBuf),
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Auto => f.write_str("the default place"),
            Transport::Session => f.write_str("the session bus"),
            Transport::System => f.write_str("the system bus"),
            Transport::Address(a) => write!(f, "the bus at {a}"),
            Transport::Socket(p) => write!(f, "the socket {}", p.display()),
        }
    }
}

/// Opens a connection over `transport` and checks that the daemon is there (on a
/// bus: its name is owned or activatable). Returns the connection and whether it is
/// peer-to-peer.
pub(crate) async fn open(transport: &Transport) -> Result<(Connection, bool)> {
    match transport {
        Transport::Auto => auto().await,
        Transport::Socket(path) => Ok((socket(path).await?, true)),
        bus => {
            let conn = bus_connection(bus).await?;
            if !daemon_on(&conn).await? {
                return Err(Error::NotRunning(bus.to_string()));
            }
            Ok((conn, false))
        }
    }
}

async fn auto() -> Result<(Connection, bool)> {
    if let Some(path) = std::env::var_os(SOCKET_ENV).filter(|v| !v.is_empty()) {
        return Ok((socket(&PathBuf::from(path)).await?, true));
    }
    if let Ok(address) = std::env::var(BUS_ADDRESS_ENV)
        && !address.is_empty()
    {
        let t = Transport::Address(address);
        let conn = bus_connection(&t).await?;
        if !daemon_on(&conn).await? {
            return Err(Error::NotRunning(t.to_string()));
        }
        return Ok((conn, false));
    }
    let mut looked = Vec::new();
    for t in [Transport::Session, Transport::System] {
        match bus_connection(&t).await {
            Ok(conn) => {
                if daemon_on(&conn).await? {
                    return Ok((conn, false));
                }
                looked.push(t.to_string());
            }
            Err(e) => looked.push(format!("{t} ({e})")),
        }
    }
    Err(Error::NotRunning(looked.join(" or ")))
}

async fn bus_connection(t: &Transport) -> Result<Connection> {
    let target = t.to_string();
    let wrap = |e: zbus::Error| Error::Connect {
        target: target.clone(),
        source: Box::new(e),
    };
    let builder = match t {
        Transport::Session => zbus::connection::Builder::session(),
        Transport::System => zbus::connection::Builder::system(),
        Transport::Address(a) => zbus::connection::Builder::address(a.as_str()),
        Transport::Auto | Transport::Socket(_) => unreachable!("not a bus"),
    };
    builder
        .map_err(wrap)?
        .method_timeout(METHOD_TIMEOUT)
        .build()
        .await
        .map_err(wrap)
}

async fn socket(path: &std::path::Path) -> Result<Connection> {
    let target = format!("the socket {}", path.display());
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| Error::Connect {
            target: target.clone(),
            source: Box::new(e),
        })?;
    zbus::connection::Builder::unix_stream(stream)
        .p2p()
        .method_timeout(METHOD_TIMEOUT)
        .build()
        .await
        .map_err(|e| Error::Connect {
            target,
            source: Box::new(e),
        })
}

/// Whether the daemon's name is owned on this bus, or can be activated there.
async fn daemon_on(conn: &Connection) -> Result<bool> {
    let dbus = DBusProxy::new(conn).await?;
    let name = zbus::names::BusName::try_from(BUS_NAME).map_err(zbus::Error::from)?;
    if dbus.name_has_owner(name).await? {
        return Ok(true);
    }
    let activatable = dbus.list_activatable_names().await?;
    Ok(activatable.iter().any(|n| n.as_str() == BUS_NAME))
}
