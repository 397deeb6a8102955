//! System mode for real: system users, privilege dropping, a private **system** bus and
//! the on-disk layout of `scanbindd --system` (issue 21).
//!
//! What it starts, as whom, and why:
//!
//! | Piece | Runs as | Why |
//! |---|---|---|
//! | [`SystemUsers::ensure`] | root (the test; CI runs as root) | creates, idempotently, the users of a TV: `scanbind` (the daemon), `sbapp1` and `sbapp2` (two app users), `sbagent` (a display agent, member of the `scanbind-agent` group); [`ensure_users`] the users a test names, in the groups it names |
//! | [`SystemBus`] | root, like the real system bus before it would drop to `messagebus` | a `dbus-daemon` with the system bus's configuration (`<type>system</type>`, EXTERNAL auth only, the default-deny policy of `/usr/share/dbus-1/system.conf`) and the project's policy file(s) from `packaging/dbus/system.d/` included, on a socket every user can reach; [`SystemBusOptions`] for other policy files or directories, activation directories, or a bus open to every user |
//! | [`SystemLayout`] | files owned as systemd would make them | the daemon's state directory (`scanbind`, 0700), its credentials directory with `scanbind-vault` (`scanbind`, 0400, as `LoadCredential=` gives it), the policy file (root, 0644) |
//! | [`daemon_setpriv`] | `scanbind`, with `CAP_SYS_PTRACE` as its only capability | what `packaging/systemd/system/scanbindd.service` gives the daemon (`User=scanbind`, the ambient capability) |
//! | [`as_user`] | any of the users | apps and agents as the users they would be on a TV |
//!
//! Every child runs without a session bus: [`as_user`] and [`SystemLayout::daemon_command`]
//! remove `DBUS_SESSION_BUS_ADDRESS` and set `DBUS_SYSTEM_BUS_ADDRESS` to the private bus.
//!
//! The bus configuration is generated here rather than including
//! `/usr/share/dbus-1/system.conf`, because that file also sets `<user>messagebus</user>`,
//! `<fork/>`, a pid file, the real socket path, a setuid activation helper and includes
//! `/etc/dbus-1/system.d` (the host's own services): none of that belongs in a test. What
//! is kept is everything that decides who may talk to whom (see [`system_bus_config`]).
//!
//! A missing `useradd`, `groupadd`, `setpriv` or `dbus-daemon`, or a test not running as
//! root, fails the test with a message ([`require_tools`]); nothing is skipped.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::daemon::{DaemonCommand, DaemonProc};
use crate::{Error, Result};

/// The daemon's system user (`packaging/sysusers/scanbind.conf`).
pub const DAEMON_USER: &str = "scanbind";
/// The group whose members may register a display agent on the system bus.
pub const AGENT_GROUP: &str = "scanbind-agent";
/// The two app users and the agent user of the tests.
pub const APP_USERS: [&str; 2] = ["sbapp1", "sbapp2"];
/// The display agent's user (member of [`AGENT_GROUP`]).
pub const AGENT_USER: &str = "sbagent";
/// The name of the file vault's systemd credential.
pub const VAULT_CREDENTIAL: &str = "scanbind-vault";

/// The tools the system-mode fixtures run.
const TOOLS: [&str; 5] = ["useradd", "groupadd", "usermod", "setpriv", "dbus-daemon"];

/// Panics unless this process is root and every tool the fixtures run is installed.
pub fn require_tools() {
    let missing: Vec<&str> = TOOLS
        .into_iter()
        .filter(|t| !crate::on_path(t) && !Path::new("/usr/sbin").join(t).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "system-mode tests need {} (Debian: passwd, util-linux, dbus-daemon): missing {}",
        TOOLS.join(", "),
        missing.join(", ")
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    assert!(
        root,
        "system-mode tests create system users and drop privileges: run them as root (CI does)"
    );
}

/// A system user: name, uid and primary gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
}

impl SystemUser {
    /// Looks `name` up in the user database (`getent passwd`); `None` when absent.
    pub fn lookup(name: &str) -> Option<SystemUser> {
        let out = Command::new("getent")
            .args(["passwd", name])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let line = String::from_utf8(out.stdout).ok()?;
        let fields: Vec<&str> = line.trim_end().split(':').collect();
        match fields.as_slice() {
            [n, _, uid, gid, ..] if *n == name => Some(SystemUser {
                name: name.to_owned(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// The users of a TV in the tests (see the module docs), created if missing.
#[derive(Debug, Clone)]
pub struct SystemUsers {
    /// `scanbind`: the daemon.
    pub daemon: SystemUser,
    /// `sbapp1`, `sbapp2`: two users running apps.
    pub apps: [SystemUser; 2],
    /// `sbagent`: the display agent, in the `scanbind-agent` group.
    pub agent: SystemUser,
}

impl SystemUsers {
    /// Creates whatever is missing with `groupadd --system` and `useradd --system`
    /// (no home, no login shell, a group of the user's own name) and adds `sbagent` to
    /// `scanbind-agent` ([`ensure_users`]).
    pub fn ensure() -> SystemUsers {
        let [daemon, app1, app2, agent] = ensure_users([
            (DAEMON_USER, &[]),
            (APP_USERS[0], &[]),
            (APP_USERS[1], &[]),
            (AGENT_USER, &[AGENT_GROUP]),
        ]);
        SystemUsers {
            daemon,
            apps: [app1, app2],
            agent,
        }
    }
}

/// The system users `(name, supplementary groups)`, in order, each created if missing
/// with its groups ([`ensure_group`], [`ensure_user`]); existing users are kept as they
/// are (but made members of the groups). Idempotent and safe against other test
/// processes doing the same at once (a lock file, and "already exists" counts as done).
/// Panics (via [`require_tools`]) without root or the tools.
pub fn ensure_users<const N: usize>(users: [(&str, &[&str]); N]) -> [SystemUser; N] {
    require_tools();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("scanbind-testkit-users.lock"))
        .expect("open the user-creation lock file");
    lock.lock().expect("lock the user-creation lock file");
    for group in users.iter().flat_map(|(_, groups)| groups.iter()) {
        ensure_group(group);
    }
    let made = users.map(|(name, groups)| ensure_user(name, groups));
    drop(lock);
    made
}

fn group_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["group", name])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Creates the system group `name` unless it exists.
pub fn ensure_group(name: &str) {
    if group_exists(name) {
        return;
    }
    let status = Command::new("groupadd")
        .args(["--system", name])
        .status()
        .unwrap_or_else(|e| panic!("cannot run groupadd: {e}"));
    // 9: the group exists (created meanwhile).
    assert!(
        status.success() || status.code() == Some(9),
        "groupadd --system {name}: {status}"
    );
}

/// Creates the system user `name` (with a group of its own name, no home directory, no
/// login shell) unless it exists, and makes it a member of `groups`. Returns it.
pub fn ensure_user(name: &str, groups: &[&str]) -> SystemUser {
    if SystemUser::lookup(name).is_none() {
        let mut cmd = Command::new("useradd");
        cmd.args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
        ]);
        if !groups.is_empty() {
            cmd.args(["--groups", &groups.join(",")]);
        }
        let status = cmd
            .arg(name)
            .status()
            .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
        // 9: the user exists (created meanwhile).
        assert!(
            status.success() || status.code() == Some(9),
            "useradd --system {name}: {status}"
        );
    }
    for group in groups {
        if !member_of(name, group) {
            let status = Command::new("usermod")
                .args(["--append", "--groups", group, name])
                .status()
                .unwrap_or_else(|e| panic!("cannot run usermod: {e}"));
            assert!(status.success(), "usermod -aG {group} {name}: {status}");
        }
    }
    SystemUser::lookup(name).unwrap_or_else(|| panic!("no user {name} after useradd"))
}

fn member_of(user: &str, group: &str) -> bool {
    Command::new("id")
        .args(["-nG", user])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|g| g.split_whitespace().any(|g| g == group))
}

/// The `setpriv` arguments (before `--` and the program) that run a program as `user`
/// with its supplementary groups and no capabilities.
pub fn setpriv_args(user: &SystemUser) -> Vec<OsString> {
    setpriv_keeping(user, None)
}

/// The `setpriv` arguments that start the daemon as the unit does: as `user` with its
/// groups, `CAP_SYS_PTRACE` inheritable and ambient (it survives the `execve` into the
/// unprivileged daemon) and the bounding set reduced to it. That is
/// `AmbientCapabilities=CAP_SYS_PTRACE` with `CapabilityBoundingSet=CAP_SYS_PTRACE`.
pub fn daemon_setpriv(user: &SystemUser) -> Vec<OsString> {
    setpriv_keeping(user, Some("sys_ptrace"))
}

/// As `user` with its groups, every capability dropped but `cap` (inheritable, ambient
/// and in the bounding set).
fn setpriv_keeping(user: &SystemUser, cap: Option<&str>) -> Vec<OsString> {
    let keep = cap.map(|c| format!(",+{c}")).unwrap_or_default();
    let mut args = vec![
        format!("--reuid={}", user.uid),
        format!("--regid={}", user.gid),
        "--init-groups".to_owned(),
        format!("--inh-caps=-all{keep}"),
    ];
    if let Some(c) = cap {
        args.push(format!("--ambient-caps=+{c}"));
    }
    args.push(format!("--bounding-set=-all{keep}"));
    args.into_iter().map(OsString::from).collect()
}

/// `program` run as `user` through `setpriv` ([`setpriv_args`]), without a session bus
/// (`DBUS_SESSION_BUS_ADDRESS` removed) and with `DBUS_SYSTEM_BUS_ADDRESS` set to
/// `system_bus`. Add arguments and spawn it.
pub fn as_user(user: &SystemUser, program: &Path, system_bus: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(setpriv_args(user))
        .arg("--")
        .arg(program)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("DBUS_SYSTEM_BUS_ADDRESS", system_bus)
        .stdin(Stdio::null());
    cmd
}

/// Sets the owner and mode of `path`.
pub fn own(path: &Path, owner: &SystemUser, mode: u32) {
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    set_mode(path, mode);
}

/// Sets the mode of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

/// A temporary directory every user may enter and read (0755), removed on drop.
pub fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    set_mode(dir.path(), 0o755);
    dir
}

/// A binary the other users can run: the file itself when it and every directory above
/// it are open to others, else a copy in a directory of its own (0755) kept as long as
/// this value. Deref to the path.
#[derive(Debug)]
pub struct SharedBinary {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl SharedBinary {
    /// `binary` where the other users can run it (see the type's docs).
    pub fn new(binary: &Path) -> SharedBinary {
        let open = |p: &Path, bits: u32| {
            std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & bits == bits)
        };
        let reachable = binary.ancestors().skip(1).all(|d| open(d, 0o001));
        if reachable && open(binary, 0o005) {
            return SharedBinary {
                path: binary.to_owned(),
                _dir: None,
            };
        }
        SharedBinary::copy(binary)
    }

    /// A copy of `binary` in a directory of its own (0755), kept as long as this value:
    /// another path, so the daemon sees another app.
    pub fn copy(binary: &Path) -> SharedBinary {
        let dir = shared_tempdir();
        let name = binary.file_name().expect("a file name");
        let path = dir.path().join(name);
        std::fs::copy(binary, &path).unwrap_or_else(|e| panic!("copy {}: {e}", binary.display()));
        set_mode(&path, 0o755);
        SharedBinary {
            path,
            _dir: Some(dir),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::ops::Deref for SharedBinary {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// A directory (0755, removed on drop) of binaries every user can run, side by side:
/// the daemon and its display agent, as packaging installs them (the daemon trusts
/// agents that sit beside it). Each is hard-linked (the same file, pinned even if cargo
/// replaces the original), or copied where a link is impossible.
#[derive(Debug)]
pub struct BinDir {
    dir: tempfile::TempDir,
}

impl BinDir {
    /// An empty one.
    pub fn new() -> BinDir {
        BinDir {
            dir: shared_tempdir(),
        }
    }

    /// Puts `binary` in, under its own name; its new path.
    pub fn add(&self, binary: &Path) -> PathBuf {
        let name = binary.file_name().expect("a file name");
        let path = self.dir.path().join(name);
        if std::fs::hard_link(binary, &path).is_err() {
            std::fs::copy(binary, &path)
                .unwrap_or_else(|e| panic!("copy {}: {e}", binary.display()));
        }
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode());
        if mode.is_ok_and(|m| m & 0o005 != 0o005) {
            set_mode(&path, 0o755);
        }
        path
    }
}

impl Default for BinDir {
    fn default() -> Self {
        BinDir::new()
    }
}

/// What a [`SystemBus`] loads besides the system bus's own configuration
/// ([`system_bus_config`]): policy files and directories, activation directories, and
/// whether its default policy is the system bus's default-deny one or open to every
/// user. Built by [`SystemBus::options`]; [`SystemBusOptions::start`] starts the bus.
#[derive(Debug, Clone, Default)]
pub struct SystemBusOptions {
    policies: Vec<PathBuf>,
    policy_dirs: Vec<PathBuf>,
    service_dirs: Vec<PathBuf>,
    open: bool,
}

impl SystemBusOptions {
    /// Includes the policy file `path` (`<include>`).
    pub fn policy(mut self, path: impl Into<PathBuf>) -> Self {
        self.policies.push(path.into());
        self
    }

    /// Includes every policy file of the directory `dir` (`<includedir>`, as the real
    /// system bus includes `/usr/share/dbus-1/system.d`).
    pub fn policy_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.policy_dirs.push(dir.into());
        self
    }

    /// Activates services from the directory `dir` (`<servicedir>`; without systemd, a
    /// system activation file's `Exec=` is run by the bus itself).
    pub fn service_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.service_dirs.push(dir.into());
        self
    }

    /// Replaces the default-deny policy by one that lets every user own any name and
    /// call anything (a shared bus where the daemon, not the bus, decides who may do
    /// what; a session bus would admit its own user only).
    pub fn open_to_every_user(mut self) -> Self {
        self.open = true;
        self
    }

    /// Starts the bus ([`SystemBus::start_with_options`]).
    pub fn start(&self) -> Result<SystemBus> {
        SystemBus::start_with_options(self)
    }
}

/// The system bus's default policy (`/usr/share/dbus-1/system.conf`): no one may own a
/// name or send a method call unless a policy file allows it; signals and replies pass.
const DEFAULT_DENY: &str = r#"  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Containers1"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>
"#;

/// The open default policy of [`SystemBusOptions::open_to_every_user`].
const OPEN: &str = r#"  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
"#;

/// The bus configuration of [`SystemBus`]: `/usr/share/dbus-1/system.conf` without
/// what only a real boot needs (`<user>`, `<fork/>`, `<pidfile>`, `<syslog/>`,
/// `<standard_system_servicedirs/>`, `<servicehelper>`, the host's `/etc/dbus-1`
/// includes) and with the test's socket, policy files and activation directories
/// (`options`). Kept: the system type, EXTERNAL authentication only, the default-deny
/// policy (no one may own a name or send a method call unless a policy file allows it;
/// signals and replies pass; unless `options` open the bus to every user) and root's
/// extra rights.
pub fn system_bus_config(socket: &Path, options: &SystemBusOptions) -> String {
    let mut extra = String::new();
    for dir in &options.service_dirs {
        extra += &format!("  <servicedir>{}</servicedir>\n", dir.display());
    }
    for p in &options.policies {
        extra += &format!("  <include>{}</include>\n", p.display());
    }
    for dir in &options.policy_dirs {
        extra += &format!("  <includedir>{}</includedir>\n", dir.display());
    }
    let default = if options.open { OPEN } else { DEFAULT_DENY };
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
{default}  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
  </policy>
{extra}</busconfig>
"#,
        socket = socket.display()
    )
}

/// The project's system bus policy, `packaging/dbus/system.d/io.scanbind.Daemon.conf`.
pub fn packaged_bus_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/dbus/system.d/io.scanbind.Daemon.conf")
}

/// A private `dbus-daemon` configured as the system bus ([`system_bus_config`]) with
/// the given policy files, its socket in a temporary directory every user can enter
/// (dbus-daemon makes the socket itself 0777, as on the real system bus). Runs as
/// root, killed on drop.
#[derive(Debug)]
pub struct SystemBus {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl SystemBus {
    /// Starts it with the packaged policy ([`packaged_bus_policy`]).
    pub fn start() -> Result<SystemBus> {
        SystemBus::options().policy(packaged_bus_policy()).start()
    }

    /// Starts it with these policy files.
    pub fn start_with(policies: &[&Path]) -> Result<SystemBus> {
        policies
            .iter()
            .fold(SystemBus::options(), |o, p| o.policy(*p))
            .start()
    }

    /// No policy file, no activation directory, the default-deny policy: add what the
    /// test needs, then [`SystemBusOptions::start`].
    pub fn options() -> SystemBusOptions {
        SystemBusOptions::default()
    }

    /// Starts it with `options`; returns once it printed its address (it accepts
    /// connections from then on). A missing policy file or directory is an error.
    pub fn start_with_options(options: &SystemBusOptions) -> Result<SystemBus> {
        let files = options.policies.iter().map(|p| (p, p.is_file()));
        let dirs = (options.policy_dirs.iter())
            .chain(&options.service_dirs)
            .map(|d| (d, d.is_dir()));
        if let Some((missing, _)) = files.chain(dirs).find(|(_, there)| !there) {
            return Err(Error::Process(format!(
                "no bus policy or service file or directory {}",
                missing.display()
            )));
        }
        let dir = tempfile::tempdir().map_err(crate::io("creating the bus directory"))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(crate::io("opening the bus directory to every user"))?;
        let config = dir.path().join("system.conf");
        let socket = dir.path().join("system_bus_socket");
        std::fs::write(&config, system_bus_config(&socket, options))
            .map_err(crate::io("writing the bus configuration"))?;
        let log = std::fs::File::create(dir.path().join("dbus-daemon.log"))
            .map_err(crate::io("creating the bus log"))?;
        let mut cmd = Command::new("dbus-daemon");
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
        let (child, address) = crate::bus::start_dbus_daemon(cmd, &config, Stdio::from(log))
            .map_err(|e| match e {
                Error::Process(_) => Error::Process(format!(
                    "the system-type dbus-daemon printed no address: {}",
                    std::fs::read_to_string(dir.path().join("dbus-daemon.log")).unwrap_or_default()
                )),
                e => e,
            })?;
        Ok(SystemBus {
            child,
            address,
            dir,
        })
    }

    /// The bus address (`unix:path=...,guid=...`), for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The directory of its socket, configuration and log (`dbus-daemon.log`: the
    /// bus's notes on rejected messages).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the bus logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir().join("dbus-daemon.log")).unwrap_or_default()
    }

    /// A new connection of this (root) process.
    pub async fn connect(&self) -> Result<zbus::Connection> {
        Ok(zbus::connection::Builder::address(self.address())?
            .method_timeout(crate::GUARD)
            .build()
            .await?)
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files of `scanbindd --system` as systemd would lay them out for the unit, in a
/// temporary directory (0755, so the daemon's user can reach what is inside):
///
/// - `state/`: `StateDirectory=scanbind`, owned by `scanbind`, 0700;
/// - `credentials/scanbind-vault`: `$CREDENTIALS_DIRECTORY` of `LoadCredential=`, the
///   directory 0500 and the file 0400, both owned by `scanbind`; 32 random bytes;
/// - `policy.toml`: `/etc/scanbind/policy.toml`, owned by root, 0644 (written by
///   [`SystemLayout::write_policy`]);
/// - `scanbindd.toml`: an empty configuration file (`SCANBIND_CONFIG`), so that no
///   file of the host's `/etc/scanbind` is read.
#[derive(Debug)]
pub struct SystemLayout {
    root: tempfile::TempDir,
}

impl SystemLayout {
    /// Creates the layout for `daemon` (the `scanbind` user).
    pub fn new(daemon: &SystemUser) -> SystemLayout {
        use std::io::Read as _;
        let root = shared_tempdir();
        let layout = SystemLayout { root };
        std::fs::create_dir(layout.state_dir()).expect("create the state directory");
        own(&layout.state_dir(), daemon, 0o700);
        let creds = layout.credentials_dir();
        std::fs::create_dir(&creds).expect("create the credentials directory");
        let mut secret = [0_u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut secret))
            .expect("read /dev/urandom");
        let file = creds.join(VAULT_CREDENTIAL);
        std::fs::write(&file, secret).expect("write the vault credential");
        own(&file, daemon, 0o400);
        own(&creds, daemon, 0o500);
        std::fs::write(layout.config_file(), "").expect("write the configuration file");
        set_mode(&layout.config_file(), 0o644);
        layout
    }

    /// `StateDirectory=` (the daemon's `--state-dir`).
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// `$CREDENTIALS_DIRECTORY`.
    pub fn credentials_dir(&self) -> PathBuf {
        self.root.path().join("credentials")
    }

    /// The policy file (`--policy`; `/etc/scanbind/policy.toml` on a device).
    pub fn policy_file(&self) -> PathBuf {
        self.root.path().join("policy.toml")
    }

    /// The (empty) configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.root.path().join("scanbindd.toml")
    }

    /// The file vault: `<state>/vault/scanbind.keyring`.
    pub fn vault_file(&self) -> PathBuf {
        self.state_dir().join("vault").join("scanbind.keyring")
    }

    /// Writes the policy file as root would: aside, then renamed over it (the daemon
    /// never reads half a file), owned by root, mode 0644.
    pub fn write_policy(&self, text: &str) {
        let path = self.policy_file();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write the policy file");
        set_mode(&tmp, 0o644);
        std::os::unix::fs::chown(&tmp, Some(0), Some(0)).expect("chown the policy file");
        std::fs::rename(&tmp, &path).expect("rename the policy file");
    }

    /// `binary --system --state-dir <state> --policy <policy.toml>` started as the unit
    /// starts it: as `daemon` with `CAP_SYS_PTRACE` only ([`daemon_setpriv`]), with
    /// `CREDENTIALS_DIRECTORY`, `DBUS_SYSTEM_BUS_ADDRESS` set to `bus` and no session
    /// bus. Add `--dev` (`spawn_dev`) or `--server URL`, then spawn it; its log is
    /// `<state>/scanbindd.log` (written by this root process).
    pub fn daemon_command(&self, binary: &Path, daemon: &SystemUser, bus: &str) -> DaemonCommand {
        let creds = self.credentials_dir();
        let config = self.config_file();
        DaemonProc::command(binary, &self.state_dir())
            .wrapper("setpriv", daemon_setpriv(daemon))
            .args([OsString::from("--system"), OsString::from("--policy")])
            .args([self.policy_file()])
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("SCANBIND_SERVER_URL")
            .env_remove("SCANBIND_STATE_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .envs(&[
                ("DBUS_SYSTEM_BUS_ADDRESS", bus),
                ("CREDENTIALS_DIRECTORY", &creds.display().to_string()),
                ("SCANBIND_CONFIG", &config.display().to_string()),
            ])
    }
}
