//! Display agents in system mode, with real users on a real system-configured bus: a
//! private `dbus-daemon` with the system bus's defaults and the packaged policy
//! (`packaging/dbus/system.d`), `scanbindd --system --dev` running as the `scanbind`
//! user with `CAP_SYS_PTRACE` as its one capability (as the unit starts it, through
//! `setpriv`), and `scanbindctl agent` (beside `scanbindd`) run by other users. The
//! daemon trusts the agent of a member of the `scanbind-agent` group, refuses a
//! non-member's and a member's copy elsewhere, and reaches the trusted agent through the
//! bus policy (an app's order code is shown on it).
//!
//! The test creates the users it needs (`useradd`; it runs as root).

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};

use common::GUARD;
use scanbind_testkit::DaemonProc;

const DAEMON_USER: &str = scanbind_ipc::accounts::DAEMON_USER;
const MEMBER: &str = "sbd-agent";
const STRANGER: &str = "sbd-app";

/// Runs `cmd`, which must succeed.
fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

fn exists(db: &str, name: &str) -> bool {
    Command::new("getent")
        .args([db, name])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The system user `name` (made unless it exists; another test may make it at the same
/// time), a member of `group` if given.
fn ensure_user(name: &str, group: Option<&str>) -> scanbind_ipc::accounts::User {
    if let Some(g) = group
        && !exists("group", g)
    {
        let _ = Command::new("groupadd").args(["--system", g]).status();
        assert!(exists("group", g), "cannot create group {g}");
    }
    if !exists("passwd", name) {
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(name)
            .status();
        assert!(exists("passwd", name), "cannot create user {name}");
    }
    let user = scanbind_ipc::accounts::user_by_name(name).unwrap().unwrap();
    if let Some(g) = group
        && !scanbind_ipc::accounts::uid_in_group(user.uid, g).unwrap()
    {
        run_ok(Command::new("usermod").args(["-a", "-G", g, name]));
    }
    user
}

/// `setpriv` arguments that run the rest as `user`, with its groups.
fn as_user(user: &scanbind_ipc::accounts::User) -> Vec<String> {
    vec![
        format!("--reuid={}", user.uid),
        format!("--regid={}", user.gid),
        "--init-groups".into(),
    ]
}

/// A private bus with the system bus's defaults and the packaged policy. Killed on drop.
struct SystemBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl SystemBus {
    fn start() -> SystemBus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/dbus/system.d");
        let config = dir.path().join("system.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
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
  </policy>
  <includedir>{}</includedir>
</busconfig>
"#,
                dir.path().join("bus").display(),
                policy.display(),
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_owned();
        assert!(
            !address.is_empty(),
            "dbus-daemon refused the packaged policy"
        );
        SystemBus {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `scanbindctl`, built once, beside `scanbindd` in the target directory.
fn scanbindctl() -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let bin = Path::new(env!("CARGO_BIN_EXE_scanbindd"))
        .parent()
        .unwrap()
        .join("scanbindctl");
    if !*built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "scanbindctl",
                "--bin",
                "scanbindctl",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build -p scanbindctl");
        assert!(status.success(), "building scanbindctl failed");
        *built = true;
    }
    bin
}

/// `scanbindctl --json agent` run by `user`; its stdout lines arrive on the channel.
/// Killed on drop (its stdin, held here, keeps it waiting for answers).
struct Agent {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Agent {
    fn start(bin: &Path, user: &scanbind_ipc::accounts::User, bus: &SystemBus) -> Agent {
        let mut child = Command::new("setpriv")
            .args(as_user(user))
            .arg("--")
            .arg(bin)
            .args(["--address", &bus.address, "--json", "agent"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("setpriv scanbindctl agent");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Agent { child, lines }
    }

    /// The next JSON line, within the guard.
    fn next(&self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(GUARD)
            .expect("no line from the agent in time");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_daemon_trusts_the_agents_of_the_agent_group_only_and_reaches_them() {
    {
        use std::os::unix::fs::MetadataExt as _;
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(uid, 0, "this test creates users: run it as root");
    }
    let daemon_user = ensure_user(DAEMON_USER, None);
    let member = ensure_user(MEMBER, Some(scanbind_ipc::accounts::AGENT_GROUP));
    let stranger = ensure_user(STRANGER, None);
    assert!(
        !scanbind_ipc::accounts::uid_in_group(stranger.uid, scanbind_ipc::accounts::AGENT_GROUP)
            .unwrap()
    );
    let ctl = scanbindctl();
    let bus = SystemBus::start();

    // The daemon's state and credential, its own; the policy: none (a missing file in
    // a root-owned directory the daemon can read).
    let state = tempfile::tempdir().unwrap();
    let creds = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    std::fs::set_permissions(etc.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut secret = vec![0_u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut secret,
    )
    .unwrap();
    std::fs::write(creds.path().join("scanbind-vault"), &secret).unwrap();
    for p in [state.path(), creds.path()] {
        std::os::unix::fs::chown(p, Some(daemon_user.uid), Some(daemon_user.gid)).unwrap();
    }
    std::os::unix::fs::chown(
        creds.path().join("scanbind-vault"),
        Some(daemon_user.uid),
        None,
    )
    .unwrap();
    let policy = etc.path().join("policy.toml");
    let mut setpriv = as_user(&daemon_user);
    setpriv.extend([
        "--inh-caps=+sys_ptrace".to_owned(),
        "--ambient-caps=+sys_ptrace".to_owned(),
        "--".to_owned(),
        env!("CARGO_BIN_EXE_scanbindd").to_owned(),
        "--system".to_owned(),
        "--policy".to_owned(),
        policy.display().to_string(),
    ]);
    let (daemon, _) = DaemonProc::command(Path::new("setpriv"), state.path())
        .args(setpriv)
        .env_remove("SCANBIND_SERVER_URL")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .envs(&[
            ("DBUS_SYSTEM_BUS_ADDRESS", bus.address.as_str()),
            ("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap()),
        ])
        .log_level("info")
        .spawn_dev()
        .unwrap_or_else(|e| panic!("{e}"));

    // A non-member's agent: refused by the bus policy before the daemon sees it.
    let refused = Agent::start(&ctl, &stranger, &bus);
    let err = refused.next();
    assert!(
        err["error"].as_str().is_some_and(
            |e| e.contains("AccessDenied") || e.contains("not a trusted display agent")
        ),
        "{err}"
    );
    // A member's copy of scanbindctl elsewhere: refused by the daemon, naming the group.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::set_permissions(elsewhere.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = elsewhere.path().join("scanbindctl");
    std::fs::copy(&ctl, &copy).unwrap();
    let refused = Agent::start(&copy, &member, &bus);
    let err = refused.next();
    let text = err["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("is not a trusted display agent") && text.contains("scanbind-agent"),
        "{err}: {}",
        daemon.logs()
    );
    assert!(text.contains(&format!("(uid {})", member.uid)), "{text}");

    // The member's scanbindctl beside scanbindd: trusted.
    let agent = Agent::start(&ctl, &member, &bus);
    let registered = agent.next();
    assert_eq!(
        registered["event"],
        "registered",
        "{registered}: {}",
        daemon.logs()
    );

    // An app of a third user pays by order code: the daemon (user scanbind) shows the
    // code on the agent, through the bus policy.
    let app = tokio::task::spawn_blocking({
        let address = bus.address.clone();
        let stranger = stranger.clone();
        move || {
            Command::new("setpriv")
                .args(as_user(&stranger))
                .args(["--", "busctl", "--address", &address, "call"])
                .args([
                    "io.scanbind.Daemon",
                    "/io/scanbind/Daemon1",
                    "io.scanbind.Daemon1",
                    "Pay",
                    "sxssa{sv}",
                    "agents-1",
                    "1200",
                    "HKD",
                    "Coins",
                    "1",
                    "order-code",
                    "b",
                    "true",
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(app.status.success(), "{app:?}: {}", daemon.logs());
    let shown = agent.next();
    assert_eq!(shown["event"], "show", "{shown}: {}", daemon.logs());
    assert_eq!(shown["kind"], "order-code", "{shown}");
}
