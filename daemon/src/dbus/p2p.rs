//! The peer-to-peer socket: the same interfaces as on the bus, for systems without a
//! D-Bus daemon. Each client connecting to the Unix socket gets its own D-Bus
//! connection (no bus daemon in between, so no well-known name and no sender field);
//! the caller is identified from the socket's peer credentials (`SO_PEERCRED`).
//!
//! Every binding object is served on every connection, and a payment on the
//! connection that made it (plus the bus); [`Bus::connections`] lets state changes
//! reach all of them. A connection is dropped from that list when its client goes.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt as _;
use scanbind_ipc::DAEMON_PATH;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use super::Bus;
use super::agent::AgentManagerObj;
use super::binding::BindingObj;
use super::daemon::DaemonObj;
use super::manager::{Access, ManagerObj};
use crate::domain::shared::Shared;
use crate::error::{Error, Result};
use crate::sync::lock;

/// Binds the socket at `path` (mode 0600; a stale socket file from a crashed run is
/// replaced) and accepts clients until the task is aborted.
pub(crate) async fn listen(
    shared: Arc<Shared>,
    bus: Arc<Bus>,
    access: Arc<Access>,
    path: &Path,
) -> Result<JoinHandle<()>> {
    let sock_err = |source| Error::Socket {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        // A live daemon answers; a stale file does not.
        match tokio::net::UnixStream::connect(path).await {
            Ok(_) => {
                return Err(sock_err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another scanbindd serves this socket",
                )));
            }
            Err(_) => std::fs::remove_file(path).map_err(sock_err)?,
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::store::journal::create_private_dir(dir).map_err(sock_err)?;
    }
    let listener = UnixListener::bind(path).map_err(sock_err)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(sock_err)?;
    }
    tracing::info!(socket = %path.display(), "serving peer-to-peer connections");
    Ok(tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(cause = %e, "accepting a peer-to-peer client failed");
                    continue;
                }
            };
            let (shared, bus, access) =
                (Arc::clone(&shared), Arc::clone(&bus), Arc::clone(&access));
            tokio::spawn(async move {
                if let Err(e) = serve_client(shared, bus, access, stream).await {
                    tracing::warn!(cause = %e, "a peer-to-peer client failed");
                }
            });
        }
    }))
}

async fn serve_client(
    shared: Arc<Shared>,
    bus: Arc<Bus>,
    access: Arc<Access>,
    stream: tokio::net::UnixStream,
) -> Result<()> {
    let guid = zbus::Guid::generate();
    let mut builder = zbus::connection::Builder::unix_stream(stream)
        .server(guid)?
        .p2p()
        .serve_at(
            DAEMON_PATH,
            DaemonObj {
                shared: Arc::clone(&shared),
                bus: Arc::clone(&bus),
            },
        )?
        .serve_at(
            DAEMON_PATH,
            AgentManagerObj {
                shared: Arc::clone(&shared),
                bus: Arc::clone(&bus),
            },
        )?
        .serve_at(
            scanbind_ipc::MANAGER_PATH,
            ManagerObj {
                shared: Arc::clone(&shared),
                access,
            },
        )?;
    let bindings: Vec<(zvariant::OwnedObjectPath, String)> = lock(&shared.bindings)
        .iter()
        .map(|(id, r)| (r.path.clone(), id.clone()))
        .collect();
    for (path, id) in bindings {
        builder = builder.serve_at(
            path,
            BindingObj {
                shared: Arc::clone(&shared),
                binding_id: id,
            },
        )?;
    }
    let conn = builder.build().await?;
    bus.add_connection(&shared, conn.clone(), std::iter::empty())
        .await?;
    shared.touch();
    tracing::debug!("peer-to-peer client connected");
    // The stream ends when the client hangs up.
    let mut messages = zbus::MessageStream::from(&conn);
    while messages.next().await.is_some() {}
    bus.remove_connections(|c| same(c, &conn));
    shared.touch();
    tracing::debug!("peer-to-peer client left");
    Ok(())
}

/// Whether two handles are the same connection.
fn same(a: &zbus::Connection, b: &zbus::Connection) -> bool {
    a.server_guid() == b.server_guid()
}
