//! Who is calling: the caller's identity, asked from the bus or the socket and the
//! kernel, never taken from the message body. A caller is `(uid, app id)`
//! ([`Caller`]); payments, order ids, budgets and consents belong to that pair.
//!
//! On a bus, the sender's unique name comes from the message header (the bus daemon
//! sets it; a client cannot forge it) and the bus tells its credentials
//! (`GetConnectionCredentials`: `UnixUserID`, `ProcessID`, `ProcessFD` where the bus
//! has one (dbus-broker and newer dbus-daemon releases; dbus-daemon 1.14 has not),
//! `LinuxSecurityLabel`). On a peer-to-peer socket the kernel tells them
//! (`SO_PEERCRED`: uid and pid).
//!
//! ## The process, not just a pid
//!
//! A pid can be recycled: the caller may exit and another process get its number
//! before its `/proc` entry is read. So the process is pinned first and checked after:
//!
//! 1. a pidfd for it: the bus's `ProcessFD` (its pid is read from the pidfd's
//!    `fdinfo`, and must be the bus's `ProcessID`), else `pidfd_open` of the pid;
//! 2. `/proc/PID` opened as a directory, then the pidfd polled: not exited, so the
//!    directory is that process's, and every later read goes through it (a read of
//!    an exited process's directory fails instead of reading another's);
//! 3. its `status`: the real and effective uid must be the uid the bus vouched for
//!    (a process that changed identity since it connected, or a recycled pid, is
//!    refused);
//! 4. the app id (below), then the pidfd polled once more;
//! 5. on a bus, the sender must still be connected: a caller that exits closes its
//!    connection, so a pid recycled between the bus's answer and `pidfd_open` is
//!    caught unless the connection outlived the process that opened it (shared with
//!    a child). A bus with `ProcessFD` leaves no such window at all.
//!
//! Any failed step refuses the call with `NotAllowed`, the reason in the log
//! (`tracing::warn`), never with some other process's identity.
//!
//! ## The app id
//!
//! In this order:
//!
//! - `flatpak:<app id>` when the process runs in a Flatpak sandbox. Checked the way
//!   xdg-desktop-portal does: its root (`/proc/PID/root`, opened with `O_PATH`) must
//!   not be our own (a process on the host root is never a Flatpak, whatever files it
//!   can see), `.flatpak-info` is opened relative to that root with `O_NOFOLLOW`
//!   (Flatpak writes it, read-only to the app; a symlink is refused), must be a
//!   regular file (`fstat`) of at most 64 KiB, and must name the app (`[Application]
//!   name=`). A sandbox root without the file is not a Flatpak (a container: the
//!   next rules apply); a file that is there but wrong refuses the call.
//! - `snap:<snap name>` when the process is confined by a snap's AppArmor profile
//!   (`snap.<name>.<app>`): the label from the bus (`LinuxSecurityLabel`, which it
//!   reads from the socket: `SO_PEERSEC`), else `/proc/PID/attr/apparmor/current` or
//!   `/proc/PID/attr/current`. Only the security label counts: a cgroup path name
//!   does not, since a user can name cgroups in its own delegated subtree.
//! - otherwise the absolute path of its executable (`/proc/PID/exe`; ` (deleted)` of
//!   a replaced binary is dropped: an update does not change the app).
//!
//! ## Cache
//!
//! A bus caller is identified once per connection: the answer is kept under the bus's
//! GUID and the sender's unique name, which the bus never gives to another connection
//! (a later call skips the round trips and the `/proc` reads). The credentials the
//! bus reports are those of the process that opened the connection, fixed for its
//! lifetime; so is the identity kept here.

use std::collections::HashMap;
use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::sync::{LazyLock, Mutex};

use rustix::fs::{FileType, Mode, OFlags};
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

/// Asks the bus (or the socket) who sent `hdr`, and the kernel which process that is.
async fn ask(conn: &Connection, hdr: &Header<'_>) -> Result<Caller, Wire> {
    match hdr.sender() {
        Some(sender) if conn.unique_name().is_some() => {
            let bus = fdo::DBusProxy::new(conn).await?;
            let creds = bus
                .get_connection_credentials(sender.clone().into())
                .await
                .map_err(zbus::Error::from)?;
            let claim = Claim {
                pid: creds.process_id(),
                uid: creds.unix_user_id(),
                pidfd: match creds.process_fd() {
                    Some(fd) => Some(
                        fd.as_fd()
                            .try_clone_to_owned()
                            .map_err(|e| refused(format!("cannot keep the bus's pidfd: {e}")))?,
                    ),
                    None => None,
                },
                label: creds.linux_security_label().cloned(),
            };
            let caller = examine(claim).map_err(refused)?;
            // Still connected: see step 5 of the module docs.
            let connected = bus
                .name_has_owner(sender.clone().into())
                .await
                .map_err(zbus::Error::from)?;
            if !connected {
                return Err(refused(format!(
                    "{sender} left the bus while it was being identified"
                )));
            }
            Ok(caller)
        }
        // A peer-to-peer connection: the socket's peer.
        _ if conn.unique_name().is_none() => {
            let creds = conn
                .peer_creds()
                .await
                .map_err(|e| refused(format!("cannot read the peer's credentials: {e}")))?;
            examine(Claim {
                pid: creds.process_id(),
                uid: creds.unix_user_id(),
                pidfd: None,
                label: None,
            })
            .map_err(refused)
        }
        _ => Err(refused("the call carries no sender".into())),
    }
}

/// A caller that cannot be identified: the reason to the log, and `NotAllowed`.
fn refused(reason: String) -> Wire {
    tracing::warn!(%reason, "refusing a caller whose identity cannot be established");
    Wire::NotAllowed(format!("cannot identify the caller: {reason}"))
}

/// What the bus (or the socket) vouches for about a caller.
#[derive(Debug, Default)]
struct Claim {
    /// `ProcessID` / the socket's peer pid.
    pid: Option<u32>,
    /// `UnixUserID` / the socket's peer uid.
    uid: Option<u32>,
    /// `ProcessFD`, where the bus gives one.
    pidfd: Option<OwnedFd>,
    /// `LinuxSecurityLabel`, where the bus gives one.
    label: Option<Vec<u8>>,
}

/// Most bytes of `.flatpak-info` read (Flatpak's are a few hundred).
const FLATPAK_INFO_MAX: u64 = 64 * 1024;

/// The caller of `claim`: the steps of the module docs; `Err` says why not.
fn examine(claim: Claim) -> Result<Caller, String> {
    let uid = claim.uid.ok_or("the bus does not know the caller's uid")?;
    let (pidfd, pid) = match claim.pidfd {
        Some(fd) => {
            let pid = pidfd_pid(&fd)?;
            if claim.pid.is_some_and(|p| p != pid) {
                return Err(format!(
                    "the bus's pidfd is process {pid}, its ProcessID {:?}",
                    claim.pid
                ));
            }
            (fd, pid)
        }
        None => {
            let pid = claim
                .pid
                .ok_or("the bus does not know the caller's process")?;
            let raw = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                .ok_or(format!("{pid} is not a process id"))?;
            let fd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
                .map_err(|e| format!("process {pid} is gone ({e})"))?;
            (fd, pid)
        }
    };
    let dir = rustix::fs::open(
        format!("/proc/{pid}"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open /proc/{pid}: {e}"))?;
    alive(&pidfd, pid)?;
    let status = read_at(&dir, "status").map_err(|e| format!("process {pid}: status: {e}"))?;
    let (real, effective) =
        status_uids(&status).ok_or(format!("process {pid}: status has no Uid line"))?;
    if real != uid || effective != uid {
        return Err(format!(
            "process {pid} runs as uid {real} (effective {effective}), the bus says {uid}"
        ));
    }
    let app_id = app_id_of(&dir, pid, claim.label.as_deref())?;
    alive(&pidfd, pid)?;
    Ok(Caller { app_id, uid })
}

/// The app id of the process whose `/proc` directory is `dir` (module docs).
fn app_id_of(dir: &OwnedFd, pid: u32, bus_label: Option<&[u8]>) -> Result<String, String> {
    if let Some(name) = flatpak_of(dir, pid)? {
        return Ok(format!("flatpak:{name}"));
    }
    let label = match bus_label {
        Some(l) => Some(l.to_vec()),
        // No LSM (or another one): unreadable or not AppArmor's, so no snap.
        None => read_at(dir, "attr/apparmor/current")
            .or_else(|_| read_at(dir, "attr/current"))
            .ok(),
    };
    if let Some(name) = label.as_deref().and_then(snap_name) {
        return Ok(format!("snap:{name}"));
    }
    let exe = rustix::fs::readlinkat(dir, "exe", Vec::new())
        .map_err(|e| format!("cannot read the executable of process {pid}: {e}"))?;
    Ok(exe_identity(&exe.to_string_lossy()))
}

/// The Flatpak app id of the process whose `/proc` directory is `dir`, if it runs in
/// a Flatpak sandbox (module docs).
fn flatpak_of(dir: &OwnedFd, pid: u32) -> Result<Option<String>, String> {
    let root = rustix::fs::openat(
        dir,
        "root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open the root of process {pid}: {e}"))?;
    let theirs = rustix::fs::fstat(&root).map_err(|e| format!("process {pid}: root: {e}"))?;
    let ours = rustix::fs::stat("/").map_err(|e| format!("our own root: {e}"))?;
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino) {
        return Ok(None);
    }
    let info = match rustix::fs::openat(
        &root,
        ".flatpak-info",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(format!("process {pid}: cannot open /.flatpak-info: {e}")),
    };
    let st = rustix::fs::fstat(&info).map_err(|e| format!("process {pid}: .flatpak-info: {e}"))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(format!(
            "process {pid}: /.flatpak-info is not a regular file"
        ));
    }
    let mut text = String::new();
    std::fs::File::from(info)
        .take(FLATPAK_INFO_MAX)
        .read_to_string(&mut text)
        .map_err(|e| format!("process {pid}: .flatpak-info: {e}"))?;
    flatpak_app_id(&text)
        .map(Some)
        .ok_or(format!("process {pid}: /.flatpak-info names no valid app"))
}

/// Reads a file of a `/proc/PID` directory.
fn read_at(dir: &OwnedFd, name: &str) -> std::io::Result<Vec<u8>> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(FLATPAK_INFO_MAX)
        .read_to_end(&mut out)?;
    Ok(out)
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
        Ok(_) => Err(format!(
            "process {pid} exited while it was being identified"
        )),
        Err(e) => Err(format!("cannot watch process {pid}: {e}")),
    }
}

/// The pid of a pidfd, from its `fdinfo` (`Pid:`; `-1` once the process exited, `0`
/// in another pid namespace: both refused).
fn pidfd_pid(pidfd: &OwnedFd) -> Result<u32, String> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))
        .map_err(|e| format!("cannot read the bus's pidfd: {e}"))?;
    fdinfo_pid(&info).ok_or("the bus's pidfd names no live process of ours".into())
}

/// `Pid:` of an `fdinfo` listing, when it is a pid.
fn fdinfo_pid(info: &str) -> Option<u32> {
    let v = info.lines().find_map(|l| l.strip_prefix("Pid:"))?.trim();
    v.parse::<u32>().ok().filter(|p| *p > 0)
}

/// The real and effective uids of a `/proc/PID/status` listing (`Uid: r e s f`).
fn status_uids(status: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(str::parse::<u32>);
    Some((ids.next()?.ok()?, ids.next()?.ok()?))
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

/// The snap name of an AppArmor label (`snap.<name>.<app> (enforce)`; a parallel
/// install's `<name>_<key>` is kept whole). Anything else (`unconfined`, another
/// profile, an SELinux context) is not a snap.
fn snap_name(label: &[u8]) -> Option<String> {
    let label = std::str::from_utf8(label).ok()?;
    // The profile name ends at the mode (" (enforce)"), a NUL or a newline.
    let profile = label.split([' ', '\0', '\n']).next()?;
    let mut parts = profile.strip_prefix("snap.")?.split('.');
    let name = parts.next()?;
    // A snap's own profiles always name the app or hook after the snap.
    parts.next().filter(|app| !app.is_empty())?;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    #[test]
    fn flatpak_info_gives_the_application_name() {
        let info = "[Runtime]\nname=org.gnome.Platform\n\n[Application]\nname=com.example.Game\nruntime=x\n";
        assert_eq!(flatpak_app_id(info).as_deref(), Some("com.example.Game"));
        assert_eq!(flatpak_app_id("[Runtime]\nname=org.gnome.Platform\n"), None);
        assert_eq!(flatpak_app_id("[Application]\nname=bad name;rm\n"), None);
        assert_eq!(flatpak_app_id("[Application]\nname=\n"), None);
    }

    #[test]
    fn apparmor_labels_give_the_snap_name() {
        assert_eq!(
            snap_name(b"snap.tv-game.tv-game (enforce)\0").as_deref(),
            Some("tv-game")
        );
        assert_eq!(
            snap_name(b"snap.game_beta.daemon (complain)\n").as_deref(),
            Some("game_beta")
        );
        assert_eq!(
            snap_name(b"snap.game.hook.configure").as_deref(),
            Some("game")
        );
        for not_a_snap in [
            &b"unconfined"[..],
            b"/usr/bin/game (enforce)",
            b"snap.game",
            b"snap..app",
            b"snap.Game.app",
            b"unconfined_u:unconfined_r:unconfined_t:s0",
            b"\xff\xfe",
        ] {
            assert_eq!(snap_name(not_a_snap), None, "{not_a_snap:?}");
        }
    }

    #[test]
    fn status_and_fdinfo_parsers() {
        let status = b"Name:\tgame\nUmask:\t0022\nUid:\t1000\t1001\t1000\t1000\nGid:\t1\t1\t1\t1\n";
        assert_eq!(status_uids(status), Some((1000, 1001)));
        assert_eq!(status_uids(b"Name:\tx\n"), None);
        assert_eq!(status_uids(b"Uid:\tx\t1\n"), None);
        assert_eq!(
            fdinfo_pid("pos:\t0\nflags:\t02000002\nPid:\t4242\n"),
            Some(4242)
        );
        assert_eq!(fdinfo_pid("Pid:\t-1\n"), None);
        assert_eq!(fdinfo_pid("Pid:\t0\n"), None);
        assert_eq!(fdinfo_pid("pos:\t0\n"), None);
    }

    /// What the bus would vouch for about `pid` running as `uid`.
    fn claim(pid: u32, uid: u32) -> Claim {
        Claim {
            pid: Some(pid),
            uid: Some(uid),
            ..Claim::default()
        }
    }

    /// Waits until process `pid` (a child exec'ing through a wrapper) runs `sleep`.
    async fn runs_sleep(pid: u32) {
        scanbind_testkit::eventually(&format!("process {pid} to run sleep"), || async move {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p.ends_with("sleep"))
        })
        .await;
    }

    fn kill(mut child: Child) {
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn our_own_process_is_identified_by_its_executable() {
        let me = examine(claim(
            std::process::id(),
            rustix::process::geteuid().as_raw(),
        ))
        .unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.app_id, exe_identity(&exe.to_string_lossy()));
        // Through a pidfd, as a bus with ProcessFD gives it.
        let pid = rustix::process::Pid::from_raw(std::process::id() as i32).unwrap();
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
        let via_fd = examine(Claim {
            pidfd: Some(fd),
            ..claim(std::process::id(), rustix::process::geteuid().as_raw())
        })
        .unwrap();
        assert_eq!(via_fd, me);
    }

    #[tokio::test]
    async fn a_process_of_another_user_is_identified_with_that_uid() {
        // As root: a child that runs as nobody (65534).
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["/usr/bin/sleep", "300"])
            .stdin(Stdio::null())
            .spawn()
            .expect("setpriv (util-linux) runs");
        let pid = child.id();
        // setpriv execs sleep in place.
        runs_sleep(pid).await;
        let who = examine(claim(pid, 65534));
        // The bus claiming another uid for that process: refused.
        let wrong = examine(claim(pid, 0));
        kill(child);
        assert_eq!(
            who.unwrap(),
            Caller {
                app_id: "/usr/bin/sleep".into(),
                uid: 65534
            }
        );
        let err = wrong.unwrap_err();
        assert!(
            err.contains("uid 65534") && err.contains("the bus says 0"),
            "{err}"
        );
        assert!(matches!(refused(err), Wire::NotAllowed(_)));
    }

    #[test]
    fn a_process_that_is_gone_is_refused() {
        // Exited and reaped: its pid names nothing (or, recycled, someone else).
        let mut gone = Command::new("true").spawn().unwrap();
        let pid = gone.id();
        assert!(gone.wait().unwrap().success());
        let err = examine(claim(pid, rustix::process::geteuid().as_raw())).unwrap_err();
        assert!(err.contains(&pid.to_string()), "{err}");

        // Exited, not reaped (a zombie): its pidfd says it is gone.
        let mut zombie = Command::new("true").spawn().unwrap();
        let zpid = zombie.id();
        let raw = rustix::process::Pid::from_raw(zpid as i32).unwrap();
        let fd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).unwrap();
        // The pidfd turns readable when it exits: wait for that event.
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        assert_eq!(rustix::event::poll(&mut fds, None).unwrap(), 1);
        let err = examine(claim(zpid, rustix::process::geteuid().as_raw())).unwrap_err();
        assert!(err.contains("exited"), "{err}");
        // The same through a bus's pidfd.
        let err = examine(Claim {
            pidfd: Some(fd.try_clone().unwrap()),
            ..claim(zpid, rustix::process::geteuid().as_raw())
        })
        .unwrap_err();
        assert!(err.contains("exited"), "{err}");
        // Reaped, the pidfd names no process at all.
        zombie.wait().unwrap();
        let err = examine(Claim {
            pidfd: Some(fd),
            ..claim(zpid, rustix::process::geteuid().as_raw())
        })
        .unwrap_err();
        assert!(err.contains("pidfd"), "{err}");

        // No pid, no uid: nothing to go by.
        assert!(examine(Claim::default()).is_err());
        assert!(
            examine(Claim {
                uid: Some(0),
                ..Claim::default()
            })
            .is_err()
        );
    }

    /// A child in a sandbox root made of the host's /usr and `extra` files, running
    /// `sleep` (a mount namespace and chroot, as Flatpak's bubblewrap makes one).
    async fn sandboxed(extra: &[(&str, Option<&str>)]) -> (tempfile::TempDir, Child) {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir(r.join("usr")).unwrap();
        for link in ["bin", "lib", "lib64"] {
            std::os::unix::fs::symlink(format!("usr/{link}"), r.join(link)).unwrap();
        }
        for (name, text) in extra {
            match text {
                Some(text) => std::fs::write(r.join(name), text).unwrap(),
                // A symlink to a file the app controls.
                None => std::os::unix::fs::symlink("/tmp/fake-info", r.join(name)).unwrap(),
            }
        }
        let script = format!(
            "mount --bind /usr '{0}/usr' && exec chroot '{0}' /usr/bin/sleep 300",
            r.display()
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) runs");
        // The chroot's exec: from then on its root is not ours.
        runs_sleep(child.id()).await;
        (root, child)
    }

    #[tokio::test]
    async fn a_flatpak_sandbox_is_identified_by_its_flatpak_info_and_nothing_else() {
        let uid = rustix::process::geteuid().as_raw();
        let info = "[Application]\nname=com.example.Game\nruntime=runtime/x\n";
        let (_root, child) = sandboxed(&[(".flatpak-info", Some(info))]).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        assert_eq!(who.unwrap().app_id, "flatpak:com.example.Game");

        // A sandbox root without the file: not a Flatpak (the executable counts).
        let (_root, child) = sandboxed(&[]).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        assert!(who.unwrap().app_id.ends_with("/sleep"));

        // A symlink in its place, or a file that names no app: refused.
        let (_root, child) = sandboxed(&[(".flatpak-info", None)]).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        assert!(who.unwrap_err().contains(".flatpak-info"));
        let (_root, child) = sandboxed(&[(".flatpak-info", Some("[Runtime]\nname=x\n"))]).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        assert!(who.unwrap_err().contains("names no valid app"));
    }

    #[test]
    fn an_app_whose_binary_was_replaced_keeps_its_identity() {
        let uid = rustix::process::geteuid().as_raw();
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("game");
        std::fs::copy("/bin/sleep", &app).unwrap();
        let child = std::process::Command::new(&app).arg("30").spawn().unwrap();
        let before = examine(claim(child.id(), uid)).map(|c| c.app_id);
        // An update replaces the file under the running process.
        std::fs::remove_file(&app).unwrap();
        std::fs::copy("/bin/sleep", &app).unwrap();
        let link = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
        let after = examine(claim(child.id(), uid)).map(|c| c.app_id);
        kill(child);
        assert!(link.to_string_lossy().ends_with(" (deleted)"), "{link:?}");
        assert_eq!(before.as_deref(), Ok(&*app.to_string_lossy()));
        assert_eq!(after, before);
    }
}
