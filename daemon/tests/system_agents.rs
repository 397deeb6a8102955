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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::GUARD;
use scanbind_ipc::accounts::AGENT_GROUP;
use scanbind_testkit::system::{
    SharedBinary, SystemBus, SystemLayout, SystemUser, ensure_users, packaged_bus_policy,
    setpriv_args,
};

const DAEMON_USER: &str = scanbind_ipc::accounts::DAEMON_USER;
const MEMBER: &str = "sbd-agent";
const STRANGER: &str = "sbd-app";

/// `scanbindctl`, built once, beside `scanbindd` in the target directory.
fn scanbindctl() -> PathBuf {
    common::built_beside_daemon("scanbindctl", "scanbindctl")
}

/// `scanbindctl --json agent` run by `user`; its stdout lines arrive on the channel.
/// Killed on drop (its stdin, held here, keeps it waiting for answers).
struct Agent {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The primary side of its terminal, when it has one.
    _keyboard: Option<std::fs::File>,
}

impl Agent {
    /// On a pipe (the daemon trusts the answers of scanbindctl only from a terminal, so
    /// this is for agents refused anyway).
    fn start(bin: &Path, user: &SystemUser, bus: &SystemBus) -> Agent {
        Agent::start_with(bin, user, bus, Stdio::piped(), None)
    }

    /// On a terminal of its own, as a person runs it.
    fn start_on_terminal(bin: &Path, user: &SystemUser, bus: &SystemBus) -> Agent {
        let (keyboard, terminal) = common::pty();
        Agent::start_with(bin, user, bus, Stdio::from(terminal), Some(keyboard))
    }

    fn start_with(
        bin: &Path,
        user: &SystemUser,
        bus: &SystemBus,
        stdin: Stdio,
        keyboard: Option<std::fs::File>,
    ) -> Agent {
        let mut child = Command::new("setpriv")
            .args(setpriv_args(user))
            .arg("--")
            .arg(bin)
            .args(["--address", bus.address(), "--json", "agent"])
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("setpriv scanbindctl agent");
        let lines = common::lines_of(child.stdout.take().unwrap(), Some);
        Agent {
            child,
            lines,
            _keyboard: keyboard,
        }
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
    let [daemon_user, member, stranger] = ensure_users([
        (DAEMON_USER, &[]),
        (MEMBER, &[AGENT_GROUP]),
        (STRANGER, &[]),
    ]);
    assert!(!scanbind_ipc::accounts::uid_in_group(stranger.uid, AGENT_GROUP).unwrap());
    let ctl = scanbindctl();
    let bus = SystemBus::options()
        .policy_dir(packaged_bus_policy().parent().unwrap())
        .start()
        .expect("dbus-daemon refused the packaged policy");

    // The daemon's state and credential, its own; root's policy lets every app pay (a
    // missing one would refuse every payment: issue 22, item 6).
    let layout = SystemLayout::new(&daemon_user);
    layout.write_policy("unknown_apps = \"allow\"\n");
    let (daemon, _) = layout
        .daemon_command(
            Path::new(env!("CARGO_BIN_EXE_scanbindd")),
            &daemon_user,
            bus.address(),
        )
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
    let copy = SharedBinary::copy(&ctl);
    let refused = Agent::start(&copy, &member, &bus);
    let err = refused.next();
    let text = err["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("is not a trusted display agent") && text.contains("scanbind-agent"),
        "{err}: {}",
        daemon.logs()
    );
    assert!(text.contains(&format!("(uid {})", member.uid)), "{text}");

    // The member's scanbindctl beside scanbindd, on a pipe: its answers could come
    // from any program, refused.
    let piped = Agent::start(&ctl, &member, &bus);
    let err = piped.next();
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a terminal")),
        "{err}"
    );
    // On a terminal: trusted.
    let agent = Agent::start_on_terminal(&ctl, &member, &bus);
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
        let address = bus.address().to_owned();
        let stranger = stranger.clone();
        move || {
            Command::new("setpriv")
                .args(setpriv_args(&stranger))
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
