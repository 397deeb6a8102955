//! System mode's packaging files, from `packaging/` as they are in the source tree (no
//! package build needed; `packages.rs` checks the same files installed): the system
//! unit's hardening, capability and credential lines (and `systemd-analyze verify` of
//! it), the accounts and directories `systemd-sysusers` and `systemd-tmpfiles` make in a
//! fresh root, the vault credential made by `make-vault-credential` and decrypted again
//! by `systemd-creds`, and the system bus policy enforced by a real `dbus-daemon` for
//! real users (created here with `useradd`; the test runs as root).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::{Command, Output};

use scanbind_packaging::{repo_root, require_tool, run_ok, systemd_verify};
use scanbind_testkit::system::{SystemBus, ensure_users};

fn packaging(rel: &str) -> PathBuf {
    repo_root().join("packaging").join(rel)
}

/// The `[Service]` section of a unit: every key's values, in order.
fn service_section(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_service = false;
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').expect("KEY=VALUE");
        out.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    out
}

#[test]
fn the_system_unit_runs_system_mode_with_the_credential_and_only_cap_sys_ptrace() {
    let text = std::fs::read_to_string(packaging("systemd/system/scanbindd.service")).unwrap();
    let s = service_section(&text);
    let one = |k: &str| -> &str {
        let v = s.get(k).unwrap_or_else(|| panic!("no {k}= in the unit"));
        assert_eq!(v.len(), 1, "{k}= more than once: {v:?}");
        &v[0]
    };
    assert_eq!(
        one("ExecStart"),
        "/usr/bin/scanbindd --system --state-dir /var/lib/scanbind"
    );
    assert_eq!(one("User"), "scanbind");
    assert_eq!(one("LoadCredentialEncrypted"), "scanbind-vault");
    assert_eq!(one("StateDirectory"), "scanbind");
    assert_eq!(one("StateDirectoryMode"), "0700");
    // It must see its callers' /proc/PID/exe and root: no ProtectProc=invisible, and
    // CAP_SYS_PTRACE as its only capability.
    assert!(
        !s.contains_key("ProtectProc"),
        "ProtectProc hides the callers"
    );
    assert_eq!(one("CapabilityBoundingSet"), "CAP_SYS_PTRACE");
    assert_eq!(one("AmbientCapabilities"), "CAP_SYS_PTRACE");
    // ... with the system calls that would use it on other processes filtered out.
    let denied: Vec<&str> = s["SystemCallFilter"]
        .iter()
        .filter_map(|v| v.strip_prefix('~'))
        .flat_map(str::split_whitespace)
        .collect();
    for call in [
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "pidfd_getfd",
    ] {
        assert!(
            denied.contains(&call),
            "{call} is not filtered out: {denied:?}"
        );
    }
    // The rest of the hardening stays.
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("UMask", "0077"),
        ("ProcSubset", "pid"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }

    // systemd-analyze accepts every line (the binary replaced by one that exists here:
    // `packages.rs` verifies the installed unit against the installed binary).
    require_tool("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("scanbindd.service");
    let moved = text.replace("ExecStart=/usr/bin/scanbindd ", "ExecStart=/bin/true ");
    assert_ne!(moved, text);
    std::fs::write(&copy, moved).unwrap();
    systemd_verify(
        &[
            OsStr::new("verify"),
            OsStr::new("--man=no"),
            copy.as_os_str(),
        ],
        None,
    )
    .unwrap();
    // Every filtered name is a system call systemd knows (a typo would be ignored).
    let known = run_ok(Command::new("systemd-analyze").args(["syscall-filter", "@known"]));
    let known = String::from_utf8_lossy(&known.stdout);
    for call in &denied {
        if call.starts_with('@') {
            continue;
        }
        assert!(
            known.lines().any(|l| l.trim() == *call),
            "{call} is not a system call systemd knows"
        );
    }
}

#[test]
fn sysusers_and_tmpfiles_make_the_accounts_and_private_directories() {
    require_tool("systemd-sysusers", "systemd");
    require_tool("systemd-tmpfiles", "systemd");
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let root_arg = format!("--root={}", root.path().display());
    run_ok(
        Command::new("systemd-sysusers")
            .arg(&root_arg)
            .arg(packaging("sysusers/scanbind.conf")),
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let group = std::fs::read_to_string(root.path().join("etc/group")).unwrap();
    let users = scanbind_ipc::accounts::parse_passwd(&passwd);
    let groups = scanbind_ipc::accounts::parse_group(&group);
    let daemon = users
        .iter()
        .find(|u| u.name == scanbind_ipc::accounts::DAEMON_USER)
        .unwrap_or_else(|| panic!("no scanbind user:\n{passwd}"));
    assert!(passwd.contains(":/var/lib/scanbind:"), "{passwd}");
    let agents = groups
        .iter()
        .find(|g| g.name == scanbind_ipc::accounts::AGENT_GROUP)
        .unwrap_or_else(|| panic!("no scanbind-agent group:\n{group}"));
    assert!(agents.members.is_empty(), "nobody is in it by default");
    assert_ne!(agents.gid, daemon.gid);

    run_ok(
        Command::new("systemd-tmpfiles")
            .arg("--create")
            .arg(&root_arg)
            .arg(packaging("tmpfiles/scanbind.conf")),
    );
    let meta = |rel: &str| std::fs::metadata(root.path().join(rel)).unwrap();
    let state = meta("var/lib/scanbind");
    assert_eq!(
        (state.mode() & 0o7777, state.uid()),
        (0o700, daemon.uid),
        "the state directory is the daemon's alone"
    );
    let etc = meta("etc/scanbind");
    assert_eq!((etc.mode() & 0o7777, etc.uid()), (0o755, 0));
    let creds = meta("etc/credstore.encrypted");
    assert_eq!((creds.mode() & 0o7777, creds.uid()), (0o700, 0));
}

#[test]
fn the_vault_credential_is_made_once_and_decrypts_to_32_bytes() {
    require_tool("systemd-creds", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let cred = dir.path().join("credstore.encrypted/scanbind-vault");
    let script = packaging("lib/make-vault-credential");
    let out = run_ok(Command::new(&script).arg(&cred));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created"),
        "{out:?}"
    );
    let meta = std::fs::metadata(&cred).unwrap();
    assert_eq!(meta.mode() & 0o077, 0, "readable by others");
    let sealed = std::fs::read(&cred).unwrap();
    let decrypt = |name: &str| -> Output {
        Command::new("systemd-creds")
            .args(["decrypt", &format!("--name={name}")])
            .arg(&cred)
            .arg("-")
            .output()
            .unwrap()
    };
    let plain = decrypt("scanbind-vault");
    assert!(plain.status.success(), "{plain:?}");
    assert_eq!(plain.stdout.len(), 32);
    assert!(
        !sealed
            .windows(16)
            .any(|w| plain.stdout.windows(16).any(|p| p == w))
    );
    // Bound to its name: the credential cannot be passed off as another one.
    assert!(!decrypt("other").status.success());

    // Never replaced: a second run keeps it byte for byte.
    let out = run_ok(Command::new(&script).arg(&cred));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("kept"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(&cred).unwrap(), sealed);
    assert_eq!(decrypt("scanbind-vault").stdout, plain.stdout);
    assert_eq!(
        std::fs::read_dir(cred.parent().unwrap()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn the_system_bus_policy_lets_agent_group_members_register_and_the_daemon_call_agents() {
    require_tool("dbus-daemon", "dbus-daemon");
    require_tool("dbus-send", "dbus-bin");
    require_tool("setpriv", "util-linux");
    require_tool("useradd", "passwd");
    assert_eq!(
        std::fs::metadata("/proc/self").unwrap().uid(),
        0,
        "this test creates users: run it as root"
    );
    let agent_group = scanbind_ipc::accounts::AGENT_GROUP;
    ensure_users([
        (scanbind_ipc::accounts::DAEMON_USER, &[]),
        ("sbpkg-agent", &[agent_group]),
        ("sbpkg-app", &[]),
    ]);

    // The system bus's own defaults (as /usr/share/dbus-1/system.conf), then the
    // policy and activation directory from packaging/.
    let bus = SystemBus::options()
        .service_dir(packaging("dbus/system-services"))
        .policy_dir(packaging("dbus/system.d"))
        .start()
        .expect("dbus-daemon refused the policy");
    let address = bus.address();

    // `dbus-send` as `user` (with its groups, as a login would give them; root: as is).
    let send = |user: Option<&str>, dest: &str, path: &str, method: &str, args: &[&str]| {
        let mut cmd = match user {
            Some(u) => {
                let gid = scanbind_ipc::accounts::user_by_name(u)
                    .unwrap()
                    .expect("the user exists")
                    .gid;
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={u}"),
                    &format!("--regid={gid}"),
                    "--init-groups",
                    "--",
                    "dbus-send",
                ]);
                c
            }
            None => Command::new("dbus-send"),
        };
        let out = cmd
            .arg(format!("--bus={address}"))
            .args(["--print-reply", &format!("--dest={dest}"), path, method])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let register = |user: Option<&str>| {
        send(
            user,
            "io.scanbind.Daemon",
            "/io/scanbind/Daemon1",
            "io.scanbind.AgentManager1.RegisterAgent",
            &["objpath:/io/scanbind/Agent", "dict:string:string:"],
        )
    };
    // A member of scanbind-agent passes the policy: the call goes on to activation
    // (which, without systemd, runs Exec=/bin/false).
    let member = register(Some("sbpkg-agent"));
    assert!(
        member.contains("Spawn.ChildExited") && !member.contains("AccessDenied"),
        "a scanbind-agent member could not reach AgentManager1: {member}"
    );
    // Anyone else may not, root included.
    for user in [Some("sbpkg-app"), None] {
        let refused = register(user);
        assert!(refused.contains("AccessDenied"), "{user:?}: {refused}");
    }
    // The apps' interface stays open to every user.
    let app = send(
        Some("sbpkg-app"),
        "io.scanbind.Daemon",
        "/io/scanbind/Daemon1",
        "io.scanbind.Daemon1.GetStatus",
        &["dict:string:string:"],
    );
    assert!(
        app.contains("Spawn.ChildExited") && !app.contains("AccessDenied"),
        "{app}"
    );
    // Only the scanbind user may call io.scanbind.Agent1, on any connection (an agent
    // serves it on its unique name): the bus driver, which serves no such interface,
    // answers the daemon's call with an error of its own and refuses everyone else's.
    let agent_call = |user: Option<&str>| {
        send(
            user,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "io.scanbind.Agent1.Dismiss",
            &["string:r1", "string:answered"],
        )
    };
    let daemon = agent_call(Some(scanbind_ipc::accounts::DAEMON_USER));
    assert!(
        !daemon.contains("AccessDenied") && daemon.contains("Error"),
        "the daemon's user could not call Agent1: {daemon}"
    );
    for user in [Some("sbpkg-agent"), Some("sbpkg-app"), None] {
        let refused = agent_call(user);
        assert!(refused.contains("AccessDenied"), "{user:?}: {refused}");
    }
    // And only the scanbind user may own the daemon's name.
    for user in [Some("sbpkg-agent"), None] {
        let own = send(
            user,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.RequestName",
            &["string:io.scanbind.Daemon", "uint32:4"],
        );
        assert!(own.contains("AccessDenied"), "{user:?}: {own}");
    }
}
