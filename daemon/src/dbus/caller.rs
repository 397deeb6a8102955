//! Who is calling: the caller's identity, asked from the bus or the socket, never taken
//! from the message body.
//!
//! On a bus, the sender's unique name comes from the message header (the bus daemon
//! sets it; a client cannot forge it) and the bus tells its credentials
//! (`GetConnectionCredentials`: uid, pid). On a peer-to-peer socket the kernel tells
//! them (`SO_PEERCRED`). The app id is then, in this order:
//!
//! - `flatpak:<app id>` when the process runs in a Flatpak sandbox
//!   (`/proc/<pid>/root/.flatpak-info`, written by Flatpak and read-only to the app);
//! - `snap:<snap name>` when its cgroup is a snap's (`snap.<name>.<app>`);
//! - otherwise the absolute path of its executable (`/proc/<pid>/exe`).
//!
//! A bus caller is identified once per connection: the answer is kept under the bus's
//! GUID and the sender's unique name, which the bus never gives to another connection
//! (a later call skips the `GetConnectionCredentials` round trip and the `/proc`
//! reads). The credentials the bus reports are those of the process that opened the
//! connection, fixed for its lifetime; so is the identity kept here.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use zbus::message::Header;
use zbus::{Connection, fdo};

use scanbind_ipc::Error as Wire;

use crate::store::journal::Owner;

/// The verified identity of the app that sent a method call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The app id (see the module docs).
    pub(crate) app_id: String,
    /// The caller's uid.
    pub(crate) uid: u32,
}

impl Caller {
    /// Who the caller's payments belong to: its uid and app id.
    pub(crate) fn owner(&self) -> Owner {
        Owner {
            uid: self.uid,
            app_id: self.app_id.clone(),
        }
    }
}

/// Bus callers already identified, by (bus GUID, sender's unique name).
static KNOWN: LazyLock<Mutex<HashMap<(String, String), Caller>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// At most this many bus callers are kept; past it the map starts again (a caller is
/// then asked about once more, nothing else changes).
const KNOWN_MAX: usize = 1024;

fn known() -> std::sync::MutexGuard<'static, HashMap<(String, String), Caller>> {
    KNOWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Identifies the sender of `hdr` through the bus, or the peer of a p2p connection.
pub(crate) async fn identify(conn: &Connection, hdr: &Header<'_>) -> Result<Caller, Wire> {
    let key = match hdr.sender() {
        Some(sender) if conn.unique_name().is_some() => {
            Some((conn.server_guid().to_string(), sender.to_string()))
        }
        _ => None,
    };
    if let Some(key) = &key
        && let Some(caller) = known().get(key)
    {
        return Ok(caller.clone());
    }
    let caller = ask(conn, hdr).await?;
    if let Some(key) = key {
        let mut known = known();
        if known.len() >= KNOWN_MAX {
            known.clear();
        }
        known.insert(key, caller.clone());
    }
    Ok(caller)
}

/// Asks the bus (or the socket) who sent `hdr`.
async fn ask(conn: &Connection, hdr: &Header<'_>) -> Result<Caller, Wire> {
    let (pid, uid) = match hdr.sender() {
        Some(sender) if conn.unique_name().is_some() => {
            let creds = fdo::DBusProxy::new(conn)
                .await?
                .get_connection_credentials(sender.clone().into())
                .await
                .map_err(zbus::Error::from)?;
            (creds.process_id(), creds.unix_user_id())
        }
        // A peer-to-peer connection: the socket's peer.
        _ if conn.unique_name().is_none() => {
            let creds = conn.peer_creds().await.map_err(|e| {
                Wire::NotAllowed(format!("cannot read the peer's credentials: {e}"))
            })?;
            (creds.process_id(), creds.unix_user_id())
        }
        _ => return Err(Wire::NotAllowed("the call carries no sender".into())),
    };
    let (Some(pid), Some(uid)) = (pid, uid) else {
        return Err(Wire::NotAllowed(
            "the bus does not know the caller's process".into(),
        ));
    };
    Ok(Caller {
        app_id: app_id_of(pid)?,
        uid,
    })
}

/// The app id of process `pid` (see the module docs).
fn app_id_of(pid: u32) -> Result<String, Wire> {
    if let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/root/.flatpak-info"))
        && let Some(name) = flatpak_app_id(&info)
    {
        return Ok(format!("flatpak:{name}"));
    }
    if let Ok(cgroup) = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        && let Some(name) = snap_name(&cgroup)
    {
        return Ok(format!("snap:{name}"));
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|e| Wire::NotAllowed(format!("cannot identify the calling process {pid}: {e}")))?;
    Ok(exe_identity(&exe.to_string_lossy()))
}

/// The identity of an executable path from `/proc/PID/exe`: an app whose binary was
/// replaced while it runs (an update) reads as `PATH (deleted)`; it is still the app
/// installed at `PATH`, and must keep seeing its own payments.
fn exe_identity(link: &str) -> String {
    link.strip_suffix(" (deleted)").unwrap_or(link).to_owned()
}

/// `name=` of the `[Application]` group of a `.flatpak-info` key file.
fn flatpak_app_id(info: &str) -> Option<String> {
    let mut in_app = false;
    for line in info.lines().map(str::trim) {
        if line.starts_with('[') {
            in_app = line == "[Application]";
        } else if in_app && let Some(v) = line.strip_prefix("name=") {
            let v = v.trim();
            let ok = !v.is_empty()
                && v.len() <= 255
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
            return ok.then(|| v.to_owned());
        }
    }
    None
}

/// The snap name from a `/proc/<pid>/cgroup` listing (`.../snap.<name>.<app>...`).
fn snap_name(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.rsplit(':').next()?;
        path.split('/').find_map(|seg| {
            let rest = seg.strip_prefix("snap.")?;
            let name = rest.split('.').next()?;
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            ok.then(|| name.to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatpak_info_gives_the_application_name() {
        let info = "[Runtime]\nname=org.gnome.Platform\n\n[Application]\nname=com.example.Game\nruntime=x\n";
        assert_eq!(flatpak_app_id(info).as_deref(), Some("com.example.Game"));
        assert_eq!(flatpak_app_id("[Runtime]\nname=org.gnome.Platform\n"), None);
        assert_eq!(flatpak_app_id("[Application]\nname=bad name;rm\n"), None);
    }

    #[test]
    fn snap_cgroups_give_the_snap_name() {
        let cg = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap.tv-game.tv-game-1a2b.scope\n";
        assert_eq!(snap_name(cg).as_deref(), Some("tv-game"));
        assert_eq!(snap_name("0::/user.slice/session-2.scope\n"), None);
    }

    #[test]
    fn our_own_process_is_identified_by_its_executable() {
        let me = app_id_of(std::process::id()).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me, exe_identity(&exe.to_string_lossy()));
    }

    #[test]
    fn an_app_whose_binary_was_replaced_keeps_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("game");
        std::fs::copy("/bin/sleep", &app).unwrap();
        let mut child = std::process::Command::new(&app).arg("30").spawn().unwrap();
        let before = app_id_of(child.id()).unwrap();
        // An update replaces the file under the running process.
        std::fs::remove_file(&app).unwrap();
        std::fs::copy("/bin/sleep", &app).unwrap();
        let link = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
        let after = app_id_of(child.id()).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(link.to_string_lossy().ends_with(" (deleted)"), "{link:?}");
        assert_eq!(before, app.to_string_lossy());
        assert_eq!(after, before);
    }
}
