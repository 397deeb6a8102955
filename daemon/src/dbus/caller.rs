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
//! - `flatpak:<app id>` when the process runs in a Flatpak sandbox that can be
//!   verified. Its root (`/proc/PID/root`, opened with `O_PATH`) must not be our own
//!   (a process on the host root is never a Flatpak, whatever files it can see);
//!   `.flatpak-info` is opened relative to that root with `O_NOFOLLOW` (a symlink is
//!   refused), must be a regular file (`fstat`) of at most 64 KiB and name the app
//!   (`[Application] name=`), as xdg-desktop-portal checks it. That file is only a
//!   claim: anyone can make a user and mount namespace and put one there. So the
//!   sandbox must also carry the app's installed files: `[Instance] app-path=` must lie
//!   in a Flatpak installation under `app/<app id>/` (the system one,
//!   `/var/lib/flatpak`, whose directory for the app is root's and writable by nobody
//!   else; in session mode also the user's own, `$XDG_DATA_HOME/flatpak`, owned by
//!   the daemon's user), and the sandbox's `/app` must be that very directory (same
//!   device and inode). A `.flatpak-info` that fails this is no Flatpak: the caller is
//!   unverified (below). A file that is there but malformed refuses the call.
//! - `snap:<snap name>` when the process is confined by a snap's AppArmor profile
//!   (`snap.<name>.<app>`): the label from the bus (`LinuxSecurityLabel`, which it
//!   reads from the socket: `SO_PEERSEC`), else `/proc/PID/attr/apparmor/current` or
//!   `/proc/PID/attr/current`. Only the security label counts (a process cannot pick
//!   its own AppArmor profile): a cgroup path name does not, since a user can name
//!   cgroups (`systemd-run --user --scope --unit=snap.x.y`) in its own subtree.
//! - `unverified:<executable>` ([`UNVERIFIED_PREFIX`](scanbind_policy::UNVERIFIED_PREFIX))
//!   when the process is in another mount or user namespace than the host's (ours or
//!   pid 1's, `/proc/PID/ns/{mnt,user}`) or under another root, and is neither of the
//!   above: inside its own namespace a process can mount anything at any path, so
//!   `/proc/PID/exe` names what the process chose. The policy never matches such an id
//!   with an app's rule or a consent: it is an unknown app (`unknown_apps`; "ask"
//!   becomes a one-off confirmation that is not remembered).
//! - otherwise the absolute path of its executable (`/proc/PID/exe`; ` (deleted)` of
//!   a replaced binary is dropped: an update does not change the app).
//!
//! ## Cache, and a process that execs
//!
//! A bus caller is identified at its first call; the answer is kept under the bus's
//! GUID and the sender's unique name, which the bus never gives to another connection.
//! The bus's credentials are those of the process that opened the connection, but that
//! process may exec another program later and keep the connection (connect-then-exec).
//! So the cache keeps the process (pid and start time, `/proc/PID/stat`) and its
//! executable (device and inode of `/proc/PID/exe`, which an update of the file does
//! not change but an exec does), and every later call checks both again:
//!
//! - the process is gone (the connection lives on in a child it shared it with):
//!   refused (`NotAllowed`);
//! - it runs another executable now: it is `unverified:<new executable>` from then on
//!   (logged), never the app it was.
//!
//! What this cannot see: a process that execs another program *before* the first call
//! on a connection it opened (or that forks and lets its child use the connection
//! while it execs an app) is taken for the program it runs at that first call. Only an
//! unsandboxed process of the caller's own uid can do that, and such a process can
//! also ptrace or `LD_PRELOAD` that app: `docs/security.md` says what session mode
//! protects and what it cannot.

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

/// A caller as identified at its first call, with what tells whether its process is
/// still the same program (module docs: "Cache, and a process that execs").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    caller: Caller,
    /// Its process (none on a peer-to-peer socket, which is not cached).
    process: Option<Process>,
}

/// A process, as later calls recognise it again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Process {
    pid: u32,
    /// `starttime` of `/proc/PID/stat`: a recycled pid has another.
    start: u64,
    /// Device and inode of the executable it runs (`/proc/PID/exe`).
    exe: (u64, u64),
}

/// Bus callers already identified, by (bus GUID, sender's unique name).
static KNOWN: LazyLock<Mutex<HashMap<(String, String), Known>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// At most this many bus callers are kept; past it the map starts again (a caller is
/// then asked about once more, nothing else changes).
const KNOWN_MAX: usize = 1024;

fn known() -> std::sync::MutexGuard<'static, HashMap<(String, String), Known>> {
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
    let cached = key.as_ref().and_then(|key| known().get(key).cloned());
    if let Some(seen) = cached {
        let caller = recheck(&seen).map_err(refused)?;
        if caller != seen.caller
            && let Some(key) = &key
        {
            // From now on it is what it runs now.
            known().insert(
                key.clone(),
                Known {
                    caller: caller.clone(),
                    process: seen.process,
                },
            );
        }
        return Ok(caller);
    }
    let found = ask(conn, hdr).await?;
    if let Some(key) = key {
        let mut known = known();
        if known.len() >= KNOWN_MAX {
            known.clear();
        }
        known.insert(key, found.clone());
    }
    Ok(found.caller)
}

/// Whether the standard input of the caller's process is a terminal (a virtual
/// console, a serial line or a pseudo-terminal), as the kernel tells it
/// (`/proc/PID/fd/0`, read while the process is the one identified): the display
/// agents that read their answers from standard input are trusted only then
/// (`super::agent`), so that a program cannot start one on a pipe and answer its
/// prompts itself. The caller is identified first ([`identify`]).
pub(crate) async fn input_is_terminal(conn: &Connection, hdr: &Header<'_>) -> Result<bool, Wire> {
    identify(conn, hdr).await?;
    let cached = match hdr.sender() {
        Some(sender) if conn.unique_name().is_some() => known()
            .get(&(conn.server_guid().to_string(), sender.to_string()))
            .and_then(|k| k.process.clone()),
        _ => None,
    };
    let process = match cached {
        Some(p) => p,
        None => {
            let creds = conn
                .peer_creds()
                .await
                .map_err(|e| refused(format!("cannot read the peer's credentials: {e}")))?;
            examine_process(Claim {
                pid: creds.process_id(),
                uid: creds.unix_user_id(),
                pidfd: None,
                label: None,
            })
            .map_err(refused)?
            .1
        }
    };
    terminal_input(&process).map_err(refused)
}

/// Whether file descriptor 0 of process `p` is a terminal ([`input_is_terminal`]).
fn terminal_input(p: &Process) -> Result<bool, String> {
    let pid = p.pid;
    let dir = rustix::fs::open(
        format!("/proc/{pid}"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| gone(pid))?;
    let same = |dir: &OwnedFd| start_time(dir).is_ok_and(|t| t == p.start);
    if !same(&dir) {
        return Err(gone(pid));
    }
    let input = match rustix::fs::statat(&dir, "fd/0", rustix::fs::AtFlags::empty()) {
        Ok(st) => is_terminal(st.st_mode, st.st_rdev),
        // Another user's process: its `fd` directory is closed to us, even with
        // CAP_SYS_PTRACE (system mode); its `fdinfo` and `mountinfo` are not.
        Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => on_devpts(&dir),
        Err(_) => false,
    };
    if !same(&dir) {
        return Err(gone(pid));
    }
    Ok(input)
}

/// Whether file descriptor 0 of the process of `dir` is a file of a `devpts` mount (a
/// pseudo-terminal): its mount (`fdinfo/0`'s `mnt_id`) looked up in its `mountinfo`.
/// A pipe's or socket's mount is none of those listed.
fn on_devpts(dir: &OwnedFd) -> bool {
    let Ok(info) = read_at(dir, "fdinfo/0") else {
        return false;
    };
    let info = String::from_utf8_lossy(&info);
    let Some(mnt) = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .map(str::trim)
    else {
        return false;
    };
    let Ok(mounts) = read_at_most(dir, "mountinfo", MOUNTINFO_MAX) else {
        return false;
    };
    String::from_utf8_lossy(&mounts).lines().any(|line| {
        line.split_whitespace().next() == Some(mnt)
            && line
                .split_once(" - ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                == Some("devpts")
    })
}

/// Most bytes of a `mountinfo` read.
const MOUNTINFO_MAX: u64 = 4 * 1024 * 1024;

/// Whether a file of mode `mode` and device `rdev` is a terminal: a character device
/// of the tty majors (4: consoles and serial lines, 5: `/dev/tty`, `/dev/console`,
/// 136 to 143: pseudo-terminals).
fn is_terminal(mode: u32, rdev: u64) -> bool {
    FileType::from_raw_mode(mode) == FileType::CharacterDevice
        && matches!(rustix::fs::major(rdev), 4 | 5 | 136..=143)
}

/// A later call of a caller identified before: still the same process running the same
/// executable? The same caller then; another executable: `unverified:` it; the process
/// gone: `Err` (module docs).
fn recheck(seen: &Known) -> Result<Caller, String> {
    let Some(p) = &seen.process else {
        return Ok(seen.caller.clone());
    };
    let pid = p.pid;
    let dir = rustix::fs::open(
        format!("/proc/{pid}"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| gone(pid))?;
    let same = |dir: &OwnedFd| start_time(dir).is_ok_and(|t| t == p.start);
    if !same(&dir) {
        return Err(gone(pid));
    }
    let exe = exe_inode(&dir, pid);
    // Read between two looks at its start time: the same process throughout.
    if !same(&dir) {
        return Err(gone(pid));
    }
    if exe? == p.exe {
        return Ok(seen.caller.clone());
    }
    let now = rustix::fs::readlinkat(&dir, "exe", Vec::new())
        .map(|l| exe_identity(&l.to_string_lossy()))
        .unwrap_or_default();
    tracing::warn!(
        pid,
        was = %seen.caller.app_id,
        now = %now,
        "a caller's process runs another executable since its first call: unverified from now on"
    );
    Ok(Caller {
        app_id: unverified(&now),
        uid: seen.caller.uid,
    })
}

/// The reason for a caller whose process is gone.
fn gone(pid: u32) -> String {
    format!(
        "process {pid}, which opened the connection, is gone (another process uses its \
         connection)"
    )
}

/// Asks the bus (or the socket) who sent `hdr`, and the kernel which process that is.
async fn ask(conn: &Connection, hdr: &Header<'_>) -> Result<Known, Wire> {
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
            let (caller, process) = examine_process(claim).map_err(refused)?;
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
            Ok(Known {
                caller,
                process: Some(process),
            })
        }
        // A peer-to-peer connection: the socket's peer.
        _ if conn.unique_name().is_none() => {
            let creds = conn
                .peer_creds()
                .await
                .map_err(|e| refused(format!("cannot read the peer's credentials: {e}")))?;
            let caller = examine(Claim {
                pid: creds.process_id(),
                uid: creds.unix_user_id(),
                pidfd: None,
                label: None,
            })
            .map_err(refused)?;
            Ok(Known {
                caller,
                process: None,
            })
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
    examine_process(claim).map(|(caller, _)| caller)
}

/// [`examine`], and the process as a later call recognises it.
fn examine_process(claim: Claim) -> Result<(Caller, Process), String> {
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
    let app_id = app_id_of(&dir, pid, uid, claim.label.as_deref())?;
    let process = Process {
        pid,
        start: start_time(&dir).map_err(|e| format!("process {pid}: stat: {e}"))?,
        exe: exe_inode(&dir, pid)?,
    };
    alive(&pidfd, pid)?;
    Ok((Caller { app_id, uid }, process))
}

/// `starttime` (field 22) of the `stat` of the `/proc/PID` directory `dir`.
fn start_time(dir: &OwnedFd) -> Result<u64, String> {
    let stat = read_at(dir, "stat").map_err(|e| e.to_string())?;
    stat_start_time(&stat).ok_or_else(|| "no start time".to_owned())
}

/// `starttime` (field 22) of a `/proc/PID/stat` line.
pub(crate) fn stat_start_time(stat: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(stat);
    // The command name (field 2) may hold anything but ends at the last ')'.
    let rest = text.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19).and_then(|v| v.parse().ok())
}

/// Device and inode of the executable of the process of `dir` (the file it runs,
/// wherever it is mounted).
fn exe_inode(dir: &OwnedFd, pid: u32) -> Result<(u64, u64), String> {
    let st = rustix::fs::statat(dir, "exe", rustix::fs::AtFlags::empty())
        .map_err(|e| format!("cannot stat the executable of process {pid}: {e}"))?;
    Ok((st.st_dev, st.st_ino))
}

/// The app id of a caller whose identity is ambiguous (module docs).
fn unverified(exe: &str) -> String {
    format!("{}{exe}", scanbind_policy::UNVERIFIED_PREFIX)
}

/// The namespace `kind` (`mnt`, `user`) of the `/proc/PID` directory `dir`, or of
/// `path`, as device and inode.
fn namespace(dir: Option<&OwnedFd>, path: &str) -> Option<(u64, u64)> {
    let st = match dir {
        Some(dir) => rustix::fs::statat(dir, path, rustix::fs::AtFlags::empty()),
        None => rustix::fs::stat(path),
    }
    .ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Whether the process of `dir` shares the host's mount and user namespaces: ours or
/// pid 1's (where we may read it; a daemon hardened by systemd has a mount namespace
/// of its own). `Err` when its own cannot be read.
fn in_host_namespaces(dir: &OwnedFd, pid: u32) -> Result<bool, String> {
    for kind in ["mnt", "user"] {
        let theirs = namespace(Some(dir), &format!("ns/{kind}"))
            .ok_or(format!("process {pid}: cannot read its {kind} namespace"))?;
        let host = [
            namespace(None, &format!("/proc/self/ns/{kind}")),
            namespace(None, &format!("/proc/1/ns/{kind}")),
        ];
        if !host.contains(&Some(theirs)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The app id of the process whose `/proc` directory is `dir`, running as `uid`
/// (module docs).
fn app_id_of(
    dir: &OwnedFd,
    pid: u32,
    uid: u32,
    bus_label: Option<&[u8]>,
) -> Result<String, String> {
    let sandbox = match flatpak_of(dir, pid, uid)? {
        Sandbox::Flatpak(name) => return Ok(format!("flatpak:{name}")),
        Sandbox::Host => false,
        Sandbox::Other => true,
    };
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
    let exe = exe_identity(&exe.to_string_lossy());
    if sandbox || !in_host_namespaces(dir, pid)? {
        tracing::info!(
            pid,
            exe,
            "a caller in a namespace or root of its own that is no verifiable Flatpak or snap: unverified"
        );
        return Ok(unverified(&exe));
    }
    Ok(exe)
}

/// Where a process runs, as far as its root tells.
#[derive(Debug, PartialEq, Eq)]
enum Sandbox {
    /// Under our root.
    Host,
    /// In the verified Flatpak sandbox of this app.
    Flatpak(String),
    /// Under another root: a container, a chroot, or a Flatpak that cannot be verified.
    Other,
}

/// Where the process whose `/proc` directory is `dir` (running as `uid`) runs: on our
/// root, in a verified Flatpak sandbox, or elsewhere (module docs). `Err` for a
/// `.flatpak-info` that is there but malformed.
fn flatpak_of(dir: &OwnedFd, pid: u32, uid: u32) -> Result<Sandbox, String> {
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
        return Ok(Sandbox::Host);
    }
    let info = match rustix::fs::openat(
        &root,
        ".flatpak-info",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(Sandbox::Other),
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
    let name =
        flatpak_app_id(&text).ok_or(format!("process {pid}: /.flatpak-info names no valid app"))?;
    match installed_app(&root, &text, &name, uid) {
        Ok(()) => Ok(Sandbox::Flatpak(name)),
        Err(why) => {
            tracing::warn!(
                pid,
                app = %name,
                %why,
                "a .flatpak-info that Flatpak's installation does not back: not a Flatpak"
            );
            Ok(Sandbox::Other)
        }
    }
}

/// The Flatpak installations whose apps a caller of `uid` may be: the system one, and
/// in session mode (`uid` is ours) the user's own, with the uid that must own them.
fn flatpak_installations(uid: u32) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = vec![(std::path::PathBuf::from(FLATPAK_SYSTEM_DIR), 0)];
    if uid == rustix::process::geteuid().as_raw() {
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".local/share"))
            });
        if let Some(data) = data {
            out.push((data.join("flatpak"), uid));
        }
    }
    #[cfg(test)]
    TEST_INSTALLATIONS.with(|t| out.extend(t.borrow().iter().map(|p| (p.clone(), 0))));
    out
}

/// The system-wide Flatpak installation.
const FLATPAK_SYSTEM_DIR: &str = "/var/lib/flatpak";

#[cfg(test)]
thread_local! {
    /// Installations a test made (owned by root, as the system one).
    static TEST_INSTALLATIONS: std::cell::RefCell<Vec<std::path::PathBuf>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `Ok` when the sandbox whose root is `root` carries app `name` as a Flatpak
/// installation has it (module docs); `Err` says why not.
fn installed_app(root: &OwnedFd, info: &str, name: &str, uid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    use std::path::{Component, Path};
    let app_path = key_file_value(info, "Instance", "app-path").ok_or("no [Instance] app-path")?;
    let app_path = Path::new(app_path);
    if !app_path.is_absolute()
        || app_path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!(
            "app-path {app_path:?} is not a plain absolute path"
        ));
    }
    let (install, owner) = flatpak_installations(uid)
        .into_iter()
        .find(|(dir, _)| app_path.starts_with(dir.join("app").join(name)))
        .ok_or(format!(
            "app-path {app_path:?} is in no Flatpak installation of {name}"
        ))?;
    // The app's directory in the installation is the installation owner's, and
    // writable by nobody else (so nobody else put that app there).
    let dir = install.join("app").join(name);
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| format!("{dir:?}: {e}"))?;
    if !meta.is_dir() || meta.uid() != owner || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{dir:?} is not a directory of uid {owner} that only it may write"
        ));
    }
    let installed = std::fs::metadata(app_path).map_err(|e| format!("{app_path:?}: {e}"))?;
    let app = rustix::fs::openat(
        root,
        "app",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("the sandbox has no /app: {e}"))?;
    let mounted = rustix::fs::fstat(&app).map_err(|e| format!("the sandbox's /app: {e}"))?;
    if (mounted.st_dev, mounted.st_ino) != (installed.dev(), installed.ino()) {
        return Err(format!("the sandbox's /app is not {app_path:?}"));
    }
    Ok(())
}

/// `key=` of group `[group]` of a key file.
fn key_file_value<'a>(text: &'a str, group: &str, key: &str) -> Option<&'a str> {
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) == Some(group);
        } else if inside
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim());
        }
    }
    None
}

/// Reads a file of a `/proc/PID` directory (64 KiB at most).
fn read_at(dir: &OwnedFd, name: &str) -> std::io::Result<Vec<u8>> {
    read_at_most(dir, name, FLATPAK_INFO_MAX)
}

/// Reads at most `max` bytes of a file of a `/proc/PID` directory.
fn read_at_most(dir: &OwnedFd, name: &str, max: u64) -> std::io::Result<Vec<u8>> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    std::fs::File::from(fd).take(max).read_to_end(&mut out)?;
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
pub(crate) fn fdinfo_pid(info: &str) -> Option<u32> {
    let v = info.lines().find_map(|l| l.strip_prefix("Pid:"))?.trim();
    v.parse::<u32>().ok().filter(|p| *p > 0)
}

/// The real and effective uids of a `/proc/PID/status` listing (`Uid: r e s f`).
pub(crate) fn status_uids(status: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(str::parse::<u32>);
    Some((ids.next()?.ok()?, ids.next()?.ok()?))
}

/// The identity of an executable path from `/proc/PID/exe`: an app whose binary was
/// replaced while it runs (an update) reads as `PATH (deleted)`; it is still the app
/// installed at `PATH`, and must keep seeing its own payments.
pub(crate) fn exe_identity(link: &str) -> String {
    link.strip_suffix(" (deleted)").unwrap_or(link).to_owned()
}

/// `name=` of the `[Application]` group of a `.flatpak-info` key file.
pub(crate) fn flatpak_app_id(info: &str) -> Option<String> {
    let v = key_file_value(info, "Application", "name")?;
    let ok = !v.is_empty()
        && v.len() <= 255
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    ok.then(|| v.to_owned())
}

/// The snap name of an AppArmor label (`snap.<name>.<app> (enforce)`; a parallel
/// install's `<name>_<key>` is kept whole). Anything else (`unconfined`, another
/// profile, an SELinux context) is not a snap.
pub(crate) fn snap_name(label: &[u8]) -> Option<String> {
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
    /// `sleep` (a mount namespace and chroot, as Flatpak's bubblewrap makes one), with
    /// `app` (if any) mounted at its `/app`. `userns`: in a user namespace of its own
    /// too, as the user `nobody` makes it (no privilege needed).
    async fn sandboxed_with(
        extra: &[(&str, Option<&str>)],
        app: Option<&std::path::Path>,
        userns: bool,
    ) -> (tempfile::TempDir, Child) {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir(r.join("usr")).unwrap();
        std::fs::create_dir(r.join("app")).unwrap();
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
        let app_mount = app.map_or(String::new(), |a| {
            format!("mount --bind '{}' '{}/app' && ", a.display(), r.display())
        });
        let script = format!(
            "mount --bind /usr '{0}/usr' && {app_mount}exec chroot '{0}' /usr/bin/sleep 300",
            r.display()
        );
        let mut cmd = if userns {
            // nobody must reach the root: the temporary directory is 0700.
            std::fs::set_permissions(r, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .args(["unshare", "--user", "--map-root-user"]);
            c
        } else {
            Command::new("unshare")
        };
        let child = cmd
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) runs");
        // The chroot's exec: from then on its root is not ours.
        runs_sleep(child.id()).await;
        (root, child)
    }

    /// An unverified caller running `sleep` (its path as seen from our root).
    fn unverified_sleep(who: &Caller) {
        assert!(
            who.app_id.starts_with("unverified:/") && who.app_id.ends_with("/usr/bin/sleep"),
            "{who:?}"
        );
    }

    async fn sandboxed(extra: &[(&str, Option<&str>)]) -> (tempfile::TempDir, Child) {
        sandboxed_with(extra, None, false).await
    }

    /// A Flatpak installation (as root's `/var/lib/flatpak`) holding `app`: the
    /// installation and the app's `files` directory.
    fn installation(app: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let install = tempfile::tempdir().unwrap();
        let files = install
            .path()
            .join(format!("app/{app}/x86_64/stable/0123abcd/files"));
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("manifest.json"), "{}").unwrap();
        (install, files)
    }

    fn flatpak_info(app: &str, app_path: &std::path::Path) -> String {
        format!(
            "[Application]\nname={app}\nruntime=runtime/x\n\n[Instance]\ninstance-id=42\napp-path={}\n",
            app_path.display()
        )
    }

    #[tokio::test]
    async fn a_flatpak_sandbox_is_identified_only_when_the_installation_backs_it() {
        let uid = rustix::process::geteuid().as_raw();
        let (install, files) = installation("com.example.Game");
        TEST_INSTALLATIONS.with(|t| t.borrow_mut().push(install.path().to_path_buf()));
        let info = flatpak_info("com.example.Game", &files);

        // The app's installed files at /app and the file saying so: a Flatpak.
        let (_root, child) =
            sandboxed_with(&[(".flatpak-info", Some(&info))], Some(&files), false).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        assert_eq!(who.unwrap().app_id, "flatpak:com.example.Game");

        // The file alone (its /app is not the installed app): unverified.
        let (_root, child) = sandboxed(&[(".flatpak-info", Some(&info))]).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        unverified_sleep(&who.unwrap());

        // Naming an app of the installation it does not carry: unverified.
        let (other_install, other_files) = installation("com.example.Other");
        TEST_INSTALLATIONS.with(|t| t.borrow_mut().push(other_install.path().to_path_buf()));
        let lie = flatpak_info("com.example.Other", &other_files);
        let (_root, child) =
            sandboxed_with(&[(".flatpak-info", Some(&lie))], Some(&files), false).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        unverified_sleep(&who.unwrap());

        // An installation directory others may write: not one the app can be trusted from.
        let app_dir = install.path().join("app/com.example.Game");
        std::fs::set_permissions(
            &app_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let (_root, child) =
            sandboxed_with(&[(".flatpak-info", Some(&info))], Some(&files), false).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        std::fs::set_permissions(
            &app_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        unverified_sleep(&who.unwrap());

        // A sandbox root without the file: not a Flatpak, and not the host: unverified.
        let (_root, child) = sandboxed(&[]).await;
        let who = examine(claim(child.id(), uid));
        kill(child);
        unverified_sleep(&who.unwrap());

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

    #[tokio::test]
    async fn a_fake_flatpak_in_a_user_namespace_is_unverified() {
        // Any user (here nobody) can make a user and mount namespace, and put a
        // .flatpak-info naming any app in a root of its own.
        let info = "[Application]\nname=com.example.Game\n\n[Instance]\napp-path=/var/lib/flatpak/app/com.example.Game/x86_64/stable/1/files\n";
        let (_root, child) = sandboxed_with(&[(".flatpak-info", Some(info))], None, true).await;
        let who = examine(claim(child.id(), 65534));
        kill(child);
        unverified_sleep(&who.unwrap());
    }

    #[tokio::test]
    async fn a_fake_executable_in_a_namespace_of_its_own_is_unverified() {
        // nobody, in a user and mount namespace of its own, mounts its program over
        // /usr/bin/true and runs it there: /proc/PID/exe says /usr/bin/true.
        let script = "mount --bind /usr/bin/sleep /usr/bin/true && exec /usr/bin/true 300";
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["unshare", "--user", "--map-root-user", "--mount"])
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .spawn()
            .expect("setpriv and unshare (util-linux) run");
        let pid = child.id();
        scanbind_testkit::eventually("the fake /usr/bin/true to run", || async move {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|p| p == std::path::Path::new("/usr/bin/true"))
        })
        .await;
        let who = examine(claim(pid, 65534));
        kill(child);
        // The fault fired: the process shows the path it chose.
        assert_eq!(who.unwrap().app_id, "unverified:/usr/bin/true");
    }

    #[tokio::test]
    async fn a_process_in_a_cgroup_named_like_a_snap_is_no_snap() {
        // Users name cgroups in their own delegated subtree as they like; root makes
        // one here (cgroup v2).
        let v2 = if std::path::Path::new("/sys/fs/cgroup/unified").is_dir() {
            "/sys/fs/cgroup/unified"
        } else {
            "/sys/fs/cgroup"
        };
        let cgroup =
            std::path::Path::new(v2).join(format!("snap.fake{}.app.scope", std::process::id()));
        std::fs::create_dir(&cgroup).expect("a cgroup v2 hierarchy to make a cgroup in");
        let script = format!(
            "echo $$ > '{}/cgroup.procs' && exec /usr/bin/sleep 300",
            cgroup.display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        runs_sleep(pid).await;
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let who = examine(claim(pid, rustix::process::geteuid().as_raw()));
        kill(child);
        let _ = std::fs::remove_dir(&cgroup);
        assert!(cgroups.contains("/snap.fake"), "{cgroups}");
        assert_eq!(who.unwrap().app_id, "/usr/bin/sleep");
    }

    #[tokio::test]
    async fn a_process_that_execs_another_program_is_no_longer_the_first() {
        let uid = rustix::process::geteuid().as_raw();
        // It waits for a line, then execs sleep: the same process, another program.
        let mut child = Command::new("/bin/sh")
            .args(["-c", "read line; exec /usr/bin/sleep 300"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let (first, process) = examine_process(claim(pid, uid)).unwrap();
        let seen = Known {
            caller: first.clone(),
            process: Some(process),
        };
        assert_eq!(recheck(&seen).unwrap(), first, "nothing changed yet");
        use std::io::Write as _;
        writeln!(child.stdin.take().unwrap(), "go").unwrap();
        runs_sleep(pid).await;
        let later = recheck(&seen);
        kill(child);
        assert!(!first.app_id.ends_with("sleep"), "{first:?}");
        assert_eq!(later.unwrap().app_id, "unverified:/usr/bin/sleep");
        // And gone: refused.
        let err = recheck(&seen).unwrap_err();
        assert!(err.contains("is gone"), "{err}");
    }

    #[test]
    fn only_a_terminal_on_standard_input_is_a_terminal() {
        let uid = rustix::process::geteuid().as_raw();
        let input_of = |stdin: Stdio| {
            let child = Command::new("/usr/bin/sleep")
                .arg("300")
                .stdin(stdin)
                .spawn()
                .unwrap();
            let (_, p) = examine_process(claim(child.id(), uid)).unwrap();
            let terminal = terminal_input(&p);
            kill(child);
            terminal.unwrap()
        };
        assert!(!input_of(Stdio::piped()), "a pipe");
        assert!(!input_of(Stdio::null()), "/dev/null");
        let file = tempfile::tempfile().unwrap();
        assert!(!input_of(Stdio::from(file)), "a file");
        // A pseudo-terminal's secondary side.
        let master =
            rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
                .unwrap();
        rustix::pty::grantpt(&master).unwrap();
        rustix::pty::unlockpt(&master).unwrap();
        let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
        let pts = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .unwrap();
        let pts_too = pts.try_clone().unwrap();
        assert!(input_of(Stdio::from(pts)), "a pseudo-terminal");
        // What another user's process shows (its fd directory closed): the mount.
        let on_pts = |stdin: Stdio| {
            let child = Command::new("/usr/bin/sleep")
                .arg("300")
                .stdin(stdin)
                .spawn()
                .unwrap();
            let dir = rustix::fs::open(
                format!("/proc/{}", child.id()),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            let yes = on_devpts(&dir);
            kill(child);
            yes
        };
        assert!(on_pts(Stdio::from(pts_too)));
        assert!(!on_pts(Stdio::piped()));
        assert!(!on_pts(Stdio::null()));
    }

    #[test]
    fn an_app_whose_binary_was_replaced_keeps_its_identity() {
        let uid = rustix::process::geteuid().as_raw();
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("game");
        std::fs::copy("/bin/sleep", &app).unwrap();
        // Another test's fork may briefly hold the copy open for writing (ETXTBSY) until
        // its exec closes it: try again until then.
        let child = loop {
            match std::process::Command::new(&app).arg("30").spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::yield_now()
                }
                other => break other.unwrap(),
            }
        };
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
