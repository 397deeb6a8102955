//! Who is calling: the caller's identity, asked from the bus, never taken from the
//! message body.
//!
//! The sender's unique name comes from the message header (the bus daemon sets it; a
//! client cannot forge it). The bus then tells its credentials
//! (`GetConnectionCredentials`: uid, pid), and the app id is the executable behind the
//! pid (`/proc/<pid>/exe`). Flatpak and snap app ids are still to come (issue 5).

use zbus::message::Header;
use zbus::{Connection, fdo};

use scanbind_ipc::Error as Wire;

/// The verified identity of the app that sent a method call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The app id: the absolute path of the caller's executable.
    pub(crate) app_id: String,
    /// The caller's uid.
    pub(crate) uid: u32,
}

/// Identifies the sender of `hdr` through the bus.
pub(crate) async fn identify(conn: &Connection, hdr: &Header<'_>) -> Result<Caller, Wire> {
    let sender = hdr
        .sender()
        .ok_or_else(|| Wire::NotAllowed("the call carries no sender".into()))?;
    let creds = fdo::DBusProxy::new(conn)
        .await?
        .get_connection_credentials(sender.clone().into())
        .await
        .map_err(zbus::Error::from)?;
    let (Some(pid), Some(uid)) = (creds.process_id(), creds.unix_user_id()) else {
        return Err(Wire::NotAllowed(
            "the bus does not know the caller's process".into(),
        ));
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|e| Wire::NotAllowed(format!("cannot identify the calling process {pid}: {e}")))?;
    Ok(Caller {
        app_id: exe.to_string_lossy().into_owned(),
        uid,
    })
}
