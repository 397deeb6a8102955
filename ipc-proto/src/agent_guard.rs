//! A display agent's side of trust: it answers only the daemon, and registers only
//! with the daemon.
//!
//! Anything on the bus can send a method call to an agent's unique name (where the bus
//! policy lets it: on a session bus, every program of the user), and on a session bus
//! any program of the user can take or queue for [`BUS_NAME`] while the daemon is not
//! running (it exits when idle). So every display agent (`scanbind-agent`,
//! `scanbindctl agent`) checks, with a [`DaemonGuard`], each call to
//! `io.scanbind.Agent1` before it shows or answers anything, and the owner of
//! [`BUS_NAME`] before it registers ([`DaemonGuard::verified_owner`]):
//!
//! - on a bus, the sender must own [`BUS_NAME`] now (asked of the bus,
//!   `GetNameOwner`), and the bus must vouch (`GetConnectionCredentials`) that it runs
//!   as one of the uids the agent expects of the daemon (the agent's own in session
//!   mode, the `scanbind` user's, [`accounts::DAEMON_USER`](crate::accounts::DAEMON_USER),
//!   in system mode);
//! - and its process must run the daemon's executable: the process is pinned with a
//!   pidfd (the bus's `ProcessFD`, else `pidfd_open` of its `ProcessID`), and the file
//!   `/proc/PID/exe` leads to must be one of the expected executables (the same device
//!   and inode: a process in a mount namespace of its own cannot pass another file off
//!   under a trusted path). Expected: the installed daemon ([`INSTALLED_DAEMONS`]),
//!   `scanbindd` beside the agent's own executable, and a path the agent was started
//!   with (`--daemon-exe`, for development and tests). The daemon's executable cannot
//!   be read when it runs as another user (system mode: only root may look into
//!   another user's process); the uid then vouches alone, since only root can start a
//!   process as the daemon's dedicated user, and the system bus lets only that user
//!   own [`BUS_NAME`];
//! - on a peer-to-peer connection the only peer is the daemon that accepted it.
//!
//! The sender last verified is remembered (a unique name is never given to another
//! connection); any other sender is asked about again.
//!
//! What this does not stop: in session mode a program of the user's own that is not
//! sandboxed can also ptrace the real daemon, or start it on a connection it keeps;
//! `docs/security.md` says what session mode can and cannot promise.

use std::os::fd::{AsFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rustix::fs::{Mode, OFlags};
use zbus::message::Header;
use zbus::names::{BusName, OwnedUniqueName, UniqueName};
use zbus::{Connection, fdo};

use crate::BUS_NAME;

/// Where packages install the daemon (`packaging/`: `/usr/bin/scanbindd`).
pub const INSTALLED_DAEMONS: &[&str] = &["/usr/bin/scanbindd", "/usr/libexec/scanbind/scanbindd"];

/// The daemon's executable name.
const DAEMON_FILE: &str = "scanbindd";

/// Checks that a call to a display agent comes from the daemon (see the module docs).
#[derive(Debug)]
pub struct DaemonGuard {
    daemon_uids: Vec<u32>,
    daemon_exes: Vec<PathBuf>,
    verified: Mutex<Option<OwnedUniqueName>>,
}

impl DaemonGuard {
    /// A guard that accepts the owner of the daemon's name running as one of
    /// `daemon_uids` (none: it accepts nobody on a bus) and one of `daemon_exes`
    /// ([`DaemonGuard::expected_daemons`] gives the usual ones).
    pub fn new(
        daemon_uids: impl IntoIterator<Item = u32>,
        daemon_exes: impl IntoIterator<Item = PathBuf>,
    ) -> DaemonGuard {
        DaemonGuard {
            daemon_uids: daemon_uids.into_iter().collect(),
            daemon_exes: daemon_exes.into_iter().collect(),
            verified: Mutex::new(None),
        }
    }

    /// The executables the daemon may run: [`INSTALLED_DAEMONS`], `scanbindd` beside
    /// the running program, and `extra` (an agent's `--daemon-exe`).
    pub fn expected_daemons(extra: Option<&Path>) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = INSTALLED_DAEMONS.iter().map(PathBuf::from).collect();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|me| me.parent().map(Path::to_path_buf))
        {
            out.push(dir.join(DAEMON_FILE));
        }
        out.extend(extra.map(Path::to_path_buf));
        out
    }

    /// The uids the daemon may run as.
    pub fn daemon_uids(&self) -> &[u32] {
        &self.daemon_uids
    }

    /// The executables the daemon may run.
    pub fn daemon_exes(&self) -> &[PathBuf] {
        &self.daemon_exes
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
        if self.is_verified(sender) {
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
        self.verify(&dbus, sender).await
    }

    /// The current owner of [`BUS_NAME`] once it is verified as the daemon: `Ok(None)`
    /// when nobody owns the name, `AccessDenied` when its owner is not the daemon. An
    /// agent registers with that unique name, never with the well-known one (whose
    /// owner could change between the check and the call).
    pub async fn verified_owner(&self, conn: &Connection) -> fdo::Result<Option<OwnedUniqueName>> {
        if conn.unique_name().is_none() {
            return Ok(None);
        }
        let dbus = fdo::DBusProxy::new(conn).await?;
        let name = BusName::try_from(BUS_NAME).map_err(zbus::Error::from)?;
        let owner = match dbus.get_name_owner(name).await {
            Ok(owner) => owner,
            Err(fdo::Error::NameHasNoOwner(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !self.is_verified(&owner) {
            self.verify(&dbus, &owner).await?;
        }
        Ok(Some(owner))
    }

    fn is_verified(&self, sender: &UniqueName<'_>) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|d| d == sender)
    }

    /// Asks the bus and the kernel whether `sender` runs as the daemon (module docs).
    async fn verify(&self, dbus: &fdo::DBusProxy<'_>, sender: &UniqueName<'_>) -> fdo::Result<()> {
        let creds = dbus
            .get_connection_credentials(BusName::from(sender.to_owned()))
            .await?;
        let uid = creds
            .unix_user_id()
            .ok_or_else(|| refused("the bus does not know its uid".into()))?;
        if !self.daemon_uids.contains(&uid) {
            let expected: Vec<String> = self.daemon_uids.iter().map(u32::to_string).collect();
            return Err(refused(format!(
                "it is a process of uid {uid}, not the daemon's uid {}",
                expected.join(" or ")
            )));
        }
        let pidfd = match creds.process_fd() {
            Some(fd) => Some(
                fd.as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| refused(format!("cannot keep the bus's pidfd: {e}")))?,
            ),
            None => None,
        };
        self.runs_daemon(creds.process_id(), pidfd, uid)
            .map_err(refused)?;
        *self.verified.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(sender.to_owned().into());
        Ok(())
    }

    /// `Ok` when process `pid` (pinned by `pidfd` where the bus gave one) runs one of
    /// the daemon's executables, or runs as another uid than ours whose executable we
    /// may not see (module docs).
    fn runs_daemon(
        &self,
        pid: Option<u32>,
        pidfd: Option<OwnedFd>,
        uid: u32,
    ) -> Result<(), String> {
        let pid = pid.ok_or("the bus does not know its process")?;
        let raw = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or(format!("{pid} is not a process id"))?;
        let pidfd = match pidfd {
            Some(fd) => fd,
            None => rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
                .map_err(|e| format!("process {pid} is gone ({e})"))?,
        };
        let dir = rustix::fs::open(
            format!("/proc/{pid}"),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("cannot open /proc/{pid}: {e}"))?;
        alive(&pidfd, pid)?;
        let exe = match rustix::fs::statat(&dir, "exe", rustix::fs::AtFlags::empty()) {
            Ok(st) => Some((st.st_dev, st.st_ino)),
            Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM)
                if uid != rustix::process::geteuid().as_raw() =>
            {
                None
            }
            Err(e) => return Err(format!("cannot see the executable of process {pid}: {e}")),
        };
        alive(&pidfd, pid)?;
        let Some(exe) = exe else {
            return Ok(());
        };
        let expected = self.daemon_exes.iter().any(|path| {
            rustix::fs::stat(path.as_path()).is_ok_and(|st| (st.st_dev, st.st_ino) == exe)
        });
        if expected {
            return Ok(());
        }
        let shown = rustix::fs::readlinkat(&dir, "exe", Vec::new())
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".into());
        let list: Vec<String> = self
            .daemon_exes
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Err(format!(
            "its process {pid} runs {shown}, not the daemon ({})",
            list.join(", ")
        ))
    }
}

/// `AccessDenied` for an owner of the daemon's name that is not the daemon.
fn refused(why: String) -> fdo::Error {
    fdo::Error::AccessDenied(format!("the owner of {BUS_NAME} is not the daemon: {why}"))
}

/// `Ok` while the process of `pidfd` has not exited (a pidfd turns readable when it
/// does).
fn alive(pidfd: &OwnedFd, pid: u32) -> Result<(), String> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&now)) {
        Ok(0) => Ok(()),
        Ok(_) => Err(format!("process {pid} exited while it was being checked")),
        Err(e) => Err(format!("cannot watch process {pid}: {e}")),
    }
}
