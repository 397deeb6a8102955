//! A display agent's side of trust: it answers only the daemon.
//!
//! Anything on the bus can send a method call to an agent's unique name (where the bus
//! policy lets it: on a session bus, every program of the user). So every display agent
//! (`scanbind-agent`, `scanbindctl agent`) checks each call to `io.scanbind.Agent1`
//! with a [`DaemonGuard`] before it shows or answers anything:
//!
//! - on a bus, the sender must own [`BUS_NAME`] now (asked of the bus,
//!   `GetNameOwner`), and the bus must vouch that it runs as the daemon's uid
//!   (`GetConnectionUnixUser`) as one of the uids the agent expects of it: the agent's
//!   own in session mode, the `scanbind` user's
//!   ([`accounts::DAEMON_USER`](crate::accounts::DAEMON_USER)) in system mode;
//! - on a peer-to-peer connection the only peer is the daemon that accepted it.
//!
//! The sender last verified is remembered; any other sender is asked about again.

use std::sync::{Mutex, PoisonError};

use zbus::message::Header;
use zbus::names::{BusName, OwnedUniqueName};
use zbus::{Connection, fdo};

use crate::BUS_NAME;

/// Checks that a call to a display agent comes from the daemon (see the module docs).
#[derive(Debug)]
pub struct DaemonGuard {
    daemon_uids: Vec<u32>,
    verified: Mutex<Option<OwnedUniqueName>>,
}

impl DaemonGuard {
    /// A guard that accepts the owner of the daemon's name running as one of
    /// `daemon_uids` (none: it accepts nobody on a bus).
    pub fn new(daemon_uids: impl IntoIterator<Item = u32>) -> DaemonGuard {
        DaemonGuard {
            daemon_uids: daemon_uids.into_iter().collect(),
            verified: Mutex::new(None),
        }
    }

    /// The uids the daemon may run as.
    pub fn daemon_uids(&self) -> &[u32] {
        &self.daemon_uids
    }

    /// `Ok` when the call in `header`, received on `conn`, comes from the daemon;
    /// `AccessDenied` (its message says why) otherwise.
    pub async fn check(&self, conn: &Connection, header: &Header<'_>) -> fdo::Result<()> {
        let Some(sender) = header.sender() else {
            // A peer-to-peer connection: the peer is the daemon.
            return if conn.unique_name().is_none() {
                Ok(())
            } else {
                Err(fdo::Error::AccessDenied(
                    "the call carries no sender".into(),
                ))
            };
        };
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if verified.as_ref().is_some_and(|d| d == sender) {
            return Ok(());
        }
        let dbus = fdo::DBusProxy::new(conn).await?;
        let owner = dbus
            .get_name_owner(BusName::try_from(BUS_NAME).map_err(zbus::Error::from)?)
            .await
            .ok();
        if owner.as_ref().is_none_or(|o| o != sender) {
            return Err(fdo::Error::AccessDenied(format!(
                "only {BUS_NAME} may call a display agent"
            )));
        }
        let uid = dbus
            .get_connection_unix_user(BusName::from(sender.to_owned()))
            .await?;
        if !self.daemon_uids.contains(&uid) {
            let expected: Vec<String> = self.daemon_uids.iter().map(u32::to_string).collect();
            return Err(fdo::Error::AccessDenied(format!(
                "{BUS_NAME} is owned by a process of uid {uid}, not the daemon's uid {}: \
                 refused",
                expected.join(" or ")
            )));
        }
        *self.verified.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(sender.to_owned().into());
        Ok(())
    }
}
