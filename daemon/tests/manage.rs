//! Issue 22, item 6: policy changes go through the daemon (`io.scanbind.Manager1`),
//! and a configured policy file that is missing fails closed.
//!
//! - A real system-type bus with the packaged bus policy, `scanbindd --system --dev`
//!   as the `scanbind` user (as the unit starts it), and real users made with
//!   `useradd`: an ordinary user's `scanbindctl` and `busctl` calls to every kind of
//!   `Manager1` method are refused (`NotAllowed`) and the policy files stay byte for
//!   byte as they were; a member of the admin group and root may change the policy,
//!   which the daemon writes to its own `<state>/policy.toml` (root's file untouched)
//!   and applies to the next payment.
//! - Polkit, for real: `polkitd` on the same bus with the packaged actions file
//!   (`packaging/polkit/io.scanbind.policy`, whose owner annotation lets the
//!   `scanbind` user ask about other users) and a site rule that grants one user: that
//!   user may change the policy; a stranger and even a member of the admin group may
//!   not (where polkit runs, it decides).
//! - Polkit, a stand-in authority (`org.freedesktop.PolicyKit1` served by this test)
//!   that records what the daemon asks and answers as the test says: the daemon asks
//!   about the caller's unique name (`system-bus-name`) with the method's action id,
//!   obeys a "no" even for a member of the admin group, and a "yes" for a stranger.
//! - A policy file given with `--policy` that does not exist refuses every payment,
//!   naming the file; the session daemon's default path that does not exist yet does
//!   not.
//!
//! Runs as root (it creates users and drops privileges with `setpriv`).

mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use common::{DaemonProc, connect};
use scanbind_ipc::accounts::ADMIN_GROUP;
use scanbind_ipc::types::keys::pay;
use scanbind_ipc::{Daemon1Proxy, Manager1Proxy};
use scanbind_testkit::system::{
    SystemBus, SystemLayout, SystemUser, as_user, ensure_users, packaged_bus_policy,
};
use scanbindd::test_util::PrivateBus;

const DAEMON_USER: &str = scanbind_ipc::accounts::DAEMON_USER;
const ADMIN: &str = "sbm-admin";
const STRANGER: &str = "sbm-user";

fn scanbindctl() -> PathBuf {
    common::built_beside_daemon("scanbindctl", "scanbindctl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `scanbindctl --address BUS ARGS` as `user`.
fn ctl_as(user: &SystemUser, bus: &SystemBus, args: &[&str]) -> Output {
    as_user(user, &scanbindctl(), bus.address())
        .args(["--address", bus.address()])
        .args(args)
        .output()
        .expect("setpriv scanbindctl")
}

/// `busctl call` of a `Manager1` method as `user`.
fn busctl_as(user: &SystemUser, bus: &SystemBus, method: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(scanbind_testkit::system::setpriv_args(user))
        .arg("--")
        .arg("busctl")
        .arg(format!("--address={}", bus.address()))
        .args([
            "call",
            "io.scanbind.Daemon",
            scanbind_ipc::MANAGER_PATH,
            scanbind_ipc::MANAGER_INTERFACE,
            method,
        ])
        .args(args);
    cmd.output().expect("setpriv busctl")
}

/// What the daemon's policy files hold now: root's, and the daemon's own.
fn snapshot(layout: &SystemLayout) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        std::fs::read(layout.policy_file()).unwrap(),
        std::fs::read(layout.state_dir().join("policy.toml")).ok(),
    )
}

async fn start(layout: &SystemLayout, daemon_user: &SystemUser, bus: &SystemBus) -> DaemonProc {
    layout
        .daemon_command(
            Path::new(env!("CARGO_BIN_EXE_scanbindd")),
            daemon_user,
            bus.address(),
        )
        .log_level("info")
        .spawn_dev()
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

fn assert_refused(out: &Output, what: &str, daemon: &DaemonProc) {
    let t = text(out);
    assert!(!out.status.success(), "{what} was accepted: {t}");
    assert!(
        t.contains("NotAllowed") || t.contains("not authorized"),
        "{what}: not refused by the daemon as NotAllowed: {t}\n{}",
        daemon.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_root_and_the_admin_group_change_the_policy_of_a_system_daemon() {
    let [daemon_user, admin, stranger] =
        ensure_users([(DAEMON_USER, &[]), (ADMIN, &[ADMIN_GROUP]), (STRANGER, &[])]);
    assert!(!scanbind_ipc::accounts::uid_in_group(stranger.uid, ADMIN_GROUP).unwrap());
    let bus = SystemBus::options()
        .policy_dir(packaged_bus_policy().parent().unwrap())
        .start()
        .expect("dbus-daemon refused the packaged policy");
    let layout = SystemLayout::new(&daemon_user);
    layout.write_policy("unknown_apps = \"deny\"\n");
    let daemon = start(&layout, &daemon_user, &bus).await;
    let before = snapshot(&layout);
    assert_eq!(before.1, None);

    // The stranger: every kind of call refused by the daemon itself (the bus lets
    // everyone call Manager1 so that polkit can ask for a password), nothing written.
    for args in [
        &["apps", "allow", "/usr/bin/evil"][..],
        &["apps", "unknown", "allow"],
        &["apps", "list"],
        &["apps", "trust-agent", "--uid", "1", "--exe", "/tmp/evil"],
        &["profiles", "add", "evil"],
        &["unbind", "/io/scanbind/Daemon1/binding/x_1"],
    ] {
        let out = ctl_as(&stranger, &bus, args);
        assert_refused(&out, &format!("{args:?} by {STRANGER}"), &daemon);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", text(&out));
        assert_eq!(snapshot(&layout), before, "{args:?} changed a policy file");
    }
    let out = busctl_as(
        &stranger,
        &bus,
        "SetPolicy",
        &["sa{sv}", "unknown_apps = \"allow\"", "0"],
    );
    assert_refused(&out, "SetPolicy by a stranger", &daemon);
    let out = busctl_as(
        &stranger,
        &bus,
        "SetLimits",
        &[
            "sssa{sx}a{sv}",
            "consent",
            "",
            "HKD",
            "1",
            "daily",
            "1",
            "0",
        ],
    );
    assert_refused(&out, "SetLimits by a stranger", &daemon);
    assert_eq!(snapshot(&layout), before);
    // Refused with the reason in the daemon's log.
    assert!(
        daemon.logs().contains("management call refused"),
        "{}",
        daemon.logs()
    );

    // A member of the admin group (polkit does not run on this bus): allowed. The
    // daemon writes its own copy; root's file is untouched.
    let out = ctl_as(&admin, &bus, &["apps", "allow", "/usr/bin/game"]);
    assert!(out.status.success(), "{}\n{}", text(&out), daemon.logs());
    let out = ctl_as(&admin, &bus, &["--json", "apps", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["apps"]["/usr/bin/game"]["allow"], true, "{listed}");
    assert_eq!(
        listed["unknownApps"]
            .as_str()
            .or(listed["unknown_apps"].as_str()),
        Some("deny")
    );
    let after = snapshot(&layout);
    assert_eq!(after.0, before.0, "root's policy file was written");
    let managed = layout.state_dir().join("policy.toml");
    let text_now = String::from_utf8(after.1.clone().expect("the daemon's policy file")).unwrap();
    let parsed = scanbindd::policy::PolicyFile::parse(&text_now, &managed).unwrap();
    assert!(parsed.apps["/usr/bin/game"].allow);
    assert_eq!(parsed.unknown_apps, scanbindd::policy::Unknown::Deny);
    let meta = std::fs::metadata(&managed).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (daemon_user.uid, 0o600));

    // Root too; and the change applies to the next payment (an order code needs no
    // binding): root's own scanbindctl is now denied by the policy.
    let out = ctl_as(
        &SystemUser::lookup("root").unwrap(),
        &bus,
        &["apps", "deny", "/usr/bin/game"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let parsed =
        scanbindd::policy::PolicyFile::parse(&std::fs::read_to_string(&managed).unwrap(), &managed)
            .unwrap();
    assert!(!parsed.apps["/usr/bin/game"].allow);

    // The stranger still cannot, after the admin did.
    let now = snapshot(&layout);
    let out = ctl_as(&stranger, &bus, &["apps", "reset", "/usr/bin/game"]);
    assert_refused(&out, "reset by a stranger", &daemon);
    assert_eq!(snapshot(&layout), now);
}

/// A stand-in for polkit's authority on the bus: answers `CheckAuthorization` with
/// the answer the test set, and records (subject kind, subject name, action id).
#[derive(Clone, Default)]
struct FakeAuthority {
    answer: Arc<Mutex<bool>>,
    asked: Arc<Mutex<Vec<(String, String, String)>>>,
}

#[zbus::interface(name = "org.freedesktop.PolicyKit1.Authority")]
impl FakeAuthority {
    fn check_authorization(
        &self,
        subject: (String, HashMap<String, zvariant::OwnedValue>),
        action_id: String,
        _details: HashMap<String, String>,
        _flags: u32,
        _cancellation_id: String,
    ) -> (bool, bool, HashMap<String, String>) {
        let name = subject
            .1
            .get("name")
            .and_then(|v| String::try_from(v.clone()).ok())
            .unwrap_or_default();
        self.asked
            .lock()
            .unwrap()
            .push((subject.0, name, action_id));
        (*self.answer.lock().unwrap(), false, HashMap::new())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn where_polkit_runs_it_decides_for_the_action_asked() {
    let [daemon_user, admin, stranger] =
        ensure_users([(DAEMON_USER, &[]), (ADMIN, &[ADMIN_GROUP]), (STRANGER, &[])]);
    // polkit's own bus policy lets anyone call it and root own its name.
    let polkit_conf = tempfile::tempdir().unwrap();
    let conf = polkit_conf.path().join("polkit.conf");
    std::fs::write(
        &conf,
        "<busconfig><policy user=\"root\"><allow own=\"org.freedesktop.PolicyKit1\"/></policy>\
         <policy context=\"default\"><allow send_destination=\"org.freedesktop.PolicyKit1\"/>\
         </policy></busconfig>\n",
    )
    .unwrap();
    std::fs::set_permissions(polkit_conf.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bus = SystemBus::options()
        .policy_dir(packaged_bus_policy().parent().unwrap())
        .policy(&conf)
        .start()
        .unwrap();
    let authority = FakeAuthority::default();
    let _polkit = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .name("org.freedesktop.PolicyKit1")
        .unwrap()
        .serve_at("/org/freedesktop/PolicyKit1/Authority", authority.clone())
        .unwrap()
        .build()
        .await
        .expect("the stand-in polkit owns its name");
    let layout = SystemLayout::new(&daemon_user);
    layout.write_policy("unknown_apps = \"deny\"\n");
    let daemon = start(&layout, &daemon_user, &bus).await;
    let before = snapshot(&layout);

    // polkit says no: even the admin group's member is refused, nothing written.
    *authority.answer.lock().unwrap() = false;
    let out = ctl_as(&admin, &bus, &["apps", "allow", "/usr/bin/game"]);
    assert_refused(&out, "a change polkit refused", &daemon);
    assert!(
        text(&out).contains("polkit did not authorize"),
        "{}",
        text(&out)
    );
    assert_eq!(snapshot(&layout), before);
    {
        let asked = authority.asked.lock().unwrap();
        assert_eq!(asked.len(), 1, "{asked:?}");
        let (kind, name, action) = &asked[0];
        assert_eq!(kind, "system-bus-name");
        assert!(name.starts_with(':'), "a unique name: {name}");
        assert_eq!(action, scanbind_ipc::names::ACTION_MANAGE_POLICY);
    }
    let out = busctl_as(
        &admin,
        &bus,
        "Unbind",
        &["oa{sv}", "/io/scanbind/Daemon1/binding/x_1", "0"],
    );
    assert_refused(&out, "an unbind polkit refused", &daemon);
    assert_eq!(
        authority.asked.lock().unwrap().last().unwrap().2,
        scanbind_ipc::names::ACTION_UNBIND
    );

    // polkit says yes: a stranger may (polkit, not the group, decides); the read after
    // the change asks for the read action.
    *authority.answer.lock().unwrap() = true;
    let out = ctl_as(&stranger, &bus, &["apps", "allow", "/usr/bin/game"]);
    assert!(out.status.success(), "{}\n{}", text(&out), daemon.logs());
    let asked: Vec<String> = authority
        .asked
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.2.clone())
        .collect();
    assert_eq!(
        asked[asked.len() - 2..],
        [
            scanbind_ipc::names::ACTION_MANAGE_POLICY.to_owned(),
            scanbind_ipc::names::ACTION_READ_POLICY.to_owned()
        ]
    );
    assert!(snapshot(&layout).1.is_some());
    assert_eq!(snapshot(&layout).0, before.0);
}

/// polkitd's executable (package `polkitd`, installed by `scripts/lib.sh`).
const POLKITD: &str = "/usr/lib/polkit-1/polkitd";

/// polkitd itself, on the test's bus: in its own mount namespace whose
/// `/usr/share/polkit-1/actions` holds the packaged `io.scanbind.policy` only and whose
/// `/etc/polkit-1/rules.d` holds `rules` (the host's files are not touched). It starts
/// as root and drops to the `polkitd` user itself, as under its unit. Killed on drop.
struct Polkitd {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Polkitd {
    async fn start(bus: &SystemBus, rules: &str) -> Polkitd {
        assert!(
            Path::new(POLKITD).exists(),
            "{POLKITD} is missing: install the polkitd package (scripts/lib.sh does)"
        );
        let dir = scanbind_testkit::system::shared_tempdir();
        let (actions, rules_dir) = (dir.path().join("actions"), dir.path().join("rules.d"));
        std::fs::create_dir(&actions).unwrap();
        std::fs::create_dir(&rules_dir).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/polkit/io.scanbind.policy"),
            actions.join("io.scanbind.policy"),
        )
        .unwrap();
        std::fs::write(rules_dir.join("50-scanbind-test.rules"), rules).unwrap();
        for d in [&actions, &rules_dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let log = std::fs::File::create(dir.path().join("polkitd.log")).unwrap();
        let child = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" /usr/share/polkit-1/actions && \
                 mount --bind \"$2\" /etc/polkit-1/rules.d && exec \"$3\" --no-debug",
            )
            .arg("sh")
            .args([&actions, &rules_dir])
            .arg(POLKITD)
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare polkitd");
        let polkitd = Polkitd { child, dir };
        let conn = bus.connect().await.unwrap();
        let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
        let log = polkitd.dir.path().join("polkitd.log");
        let stat = format!("/proc/{}/stat", polkitd.child.id());
        scanbind_testkit::eventually("polkitd to own org.freedesktop.PolicyKit1", || {
            let (dbus, log, stat) = (dbus.clone(), log.clone(), stat.clone());
            async move {
                let name = zbus::names::BusName::try_from("org.freedesktop.PolicyKit1").unwrap();
                let owned = dbus.name_has_owner(name).await.unwrap_or(false);
                // An exited polkitd (a zombie until the drop reaps it) fails at once.
                let state = std::fs::read_to_string(&stat).unwrap_or_default();
                let alive = state
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| !rest.trim_start().starts_with('Z'));
                assert!(
                    owned || alive,
                    "polkitd exited: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                owned
            }
        })
        .await;
        polkitd
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("polkitd.log")).unwrap_or_default()
    }
}

impl Drop for Polkitd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn polkitd_decides_with_the_packaged_actions_and_the_sites_rules() {
    const PK_ADMIN: &str = "sbm-pkadmin";
    let [daemon_user, admin, stranger, pk_admin] = ensure_users([
        (DAEMON_USER, &[]),
        (ADMIN, &[ADMIN_GROUP]),
        (STRANGER, &[]),
        (PK_ADMIN, &[]),
    ]);
    let bus = SystemBus::options()
        .policy_dir(packaged_bus_policy().parent().unwrap())
        .policy("/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf")
        .start()
        .expect("the bus with polkit's own bus policy (package polkitd)");
    // The site's rule: one user may manage scanbind. Nobody is in an active session
    // here, so the packaged defaults (allow_any no) refuse everyone else.
    let polkitd = Polkitd::start(
        &bus,
        &format!(
            "polkit.addRule(function(action, subject) {{\n\
             \x20   if (action.id.indexOf(\"io.scanbind.\") == 0 && subject.user == \"{PK_ADMIN}\") {{\n\
             \x20       return polkit.Result.YES;\n    }}\n}});\n"
        ),
    )
    .await;
    let layout = SystemLayout::new(&daemon_user);
    layout.write_policy("unknown_apps = \"deny\"\n");
    let daemon = start(&layout, &daemon_user, &bus).await;
    let before = snapshot(&layout);

    // Refused by polkit: a stranger, and a member of the admin group (where polkit
    // runs, polkit decides, not the group).
    for user in [&stranger, &admin] {
        let out = ctl_as(user, &bus, &["apps", "allow", "/usr/bin/game"]);
        assert_refused(&out, &format!("a change by {}", user.name), &daemon);
        assert!(
            text(&out).contains("polkit did not authorize"),
            "{}\n{}\n{}",
            text(&out),
            daemon.logs(),
            polkitd.logs()
        );
        assert_eq!(snapshot(&layout), before);
    }
    // Authorized by polkit's rule: the change is written, and read back.
    let out = ctl_as(
        &pk_admin,
        &bus,
        &["--json", "apps", "allow", "/usr/bin/game"],
    );
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        text(&out),
        daemon.logs(),
        polkitd.logs()
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["apps"]["/usr/bin/game"]["allow"], true, "{listed}");
    assert_eq!(snapshot(&layout).0, before.0);
    assert!(snapshot(&layout).1.is_some());
    assert!(
        daemon
            .logs()
            .contains("management call authorized by polkit"),
        "{}",
        daemon.logs()
    );
}

fn secret_file(dir: &Path) -> PathBuf {
    let mut bytes = vec![0_u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    let path = dir.join("vault.key");
    std::fs::write(&path, &bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A session daemon on `bus` with `args`, its secrets in a file vault.
fn session_daemon(bus: &PrivateBus, state: &Path, config_home: &Path, args: &[&str]) -> DaemonProc {
    let secret = secret_file(state);
    DaemonProc::command(Path::new(env!("CARGO_BIN_EXE_scanbindd")), state)
        .env_remove("SCANBIND_SERVER_URL")
        .env_remove("SCANBIND_CONFIG")
        .envs(&[("XDG_CONFIG_HOME", config_home.to_str().unwrap())])
        .address(bus.address())
        .args(["--vault", "file", "--vault-secret-file"])
        .args([secret])
        .args(args)
        .log_level("info")
        .spawn_dev()
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

fn order_code() -> HashMap<&'static str, zvariant::Value<'static>> {
    HashMap::from([(pay::ORDER_CODE, zvariant::Value::from(true))])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_policy_file_that_is_missing_refuses_every_payment() {
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    let policy = etc.path().join("policy.toml");
    let daemon = session_daemon(
        &bus,
        state.path(),
        config_home.path(),
        &["--policy", policy.to_str().unwrap()],
    );
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    let err = d
        .pay("missing-1", 1200, "HKD", "Coins", order_code())
        .await
        .unwrap_err();
    match &err {
        scanbind_ipc::Error::NotAllowed(m) => {
            assert!(m.contains(&policy.display().to_string()), "{m}");
            assert!(m.contains("does not exist"), "{m}");
        }
        other => panic!("expected NotAllowed, got {other:?}: {}", daemon.logs()),
    }
    assert!(
        daemon
            .logs()
            .contains("the payment policy is missing: refusing payments"),
        "{}",
        daemon.logs()
    );
    // The session's own user creates it through the daemon: the first change starts
    // from "ask" (never from "every app may pay").
    let m = Manager1Proxy::new(&conn).await.unwrap();
    m.set_unknown_apps("allow", HashMap::new()).await.unwrap();
    assert!(policy.exists());
    let paid = d.pay("missing-2", 1200, "HKD", "Coins", order_code()).await;
    assert!(paid.is_ok(), "{paid:?}: {}", daemon.logs());
    // Deleted again: closed again.
    std::fs::remove_file(&policy).unwrap();
    let err = d
        .pay("missing-3", 1200, "HKD", "Coins", order_code())
        .await
        .unwrap_err();
    assert!(matches!(err, scanbind_ipc::Error::NotAllowed(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_daemons_default_policy_path_may_be_missing() {
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    let daemon = session_daemon(&bus, state.path(), config_home.path(), &[]);
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    let paid = d.pay("default-1", 1200, "HKD", "Coins", order_code()).await;
    assert!(paid.is_ok(), "{paid:?}: {}", daemon.logs());
    // Managed through the daemon, it is written where the user's daemon reads it.
    let m = Manager1Proxy::new(&conn).await.unwrap();
    let (path, _) = m.get_policy(HashMap::new()).await.unwrap();
    assert_eq!(
        Path::new(&path),
        config_home.path().join("scanbind/policy.toml")
    );
    m.set_unknown_apps("deny", HashMap::new()).await.unwrap();
    let err = d
        .pay("default-2", 1200, "HKD", "Coins", order_code())
        .await
        .unwrap_err();
    assert!(matches!(err, scanbind_ipc::Error::NotAllowed(_)), "{err:?}");
}
