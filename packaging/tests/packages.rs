//! The Debian packages, end to end: built by `scripts/package`, installed with the real
//! `dpkg --root` (maintainer scripts included) into a fresh root, units checked by
//! `systemd-analyze verify`, and the installed binaries run: the packaged D-Bus
//! activation file starts the installed `scanbindd` on the first call on a private
//! session bus (with a real gnome-keyring on it), which binds and pays through the
//! installed `scanbind-server` (running on the packaged configuration) against an
//! in-process sandbox.
//!
//! Every feature a package promises is required: a missing binary, man page,
//! completion, library, option (`--config`, `--idle-exit`) or subcommand (`doctor`,
//! `status`, `pay`) fails the test (and `scripts/package` itself refuses to build a
//! package without a part it promises; `a_missing_part_fails_the_package_build`).
//!
//! System mode's files are also checked from the source tree, without a package build,
//! in `system_mode.rs`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use futures_util::StreamExt as _;
use scanbind_ams::PrivateKey;
use scanbind_ipc::{BUS_NAME, Binding1Proxy, Daemon1Proxy, Payment1Proxy, PaymentState};
use scanbind_packaging::{
    GUARD, KillOnDrop, Packages, Root, SessionBus, repo_root, require_tool, run_ok, systemd_verify,
};
use scanbind_sandbox::{Sandbox, SandboxHandle};
use scanbind_testkit::system::SystemBus;
use zbus::proxy::CacheProperties;

const CLIENT_ID: &str = "2188TEST0000001";

fn packages() -> &'static Packages {
    require_tool("dpkg-deb", "dpkg");
    require_tool("dpkg-shlibdeps", "dpkg-dev");
    require_tool("strip", "binutils");
    Packages::get(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// Every built package installed into a fresh root.
fn installed() -> Root {
    let p = packages();
    let debs: Vec<&Path> = p.debs.values().map(|d| d.as_path()).collect();
    Root::install(&debs)
}

const SCANBIND_FILES: &[&str] = &[
    "/usr/bin/scanbindd",
    "/usr/bin/scanbindctl",
    "/usr/bin/scanbind-agent",
    "/usr/lib/systemd/user/scanbindd.service",
    "/usr/lib/systemd/user/scanbind-agent.service",
    "/usr/lib/systemd/system/scanbindd.service",
    "/usr/lib/sysusers.d/scanbind.conf",
    "/usr/lib/tmpfiles.d/scanbind.conf",
    "/usr/lib/scanbind/make-vault-credential",
    "/usr/share/dbus-1/services/io.scanbind.Daemon.service",
    "/usr/share/dbus-1/system-services/io.scanbind.Daemon.service",
    "/usr/share/dbus-1/system.d/io.scanbind.Daemon.conf",
    "/usr/share/dbus-1/interfaces/io.scanbind.Daemon1.xml",
    "/usr/share/dbus-1/interfaces/io.scanbind.Binding1.xml",
    "/usr/share/dbus-1/interfaces/io.scanbind.Payment1.xml",
    "/usr/share/dbus-1/interfaces/io.scanbind.Manager1.xml",
    "/usr/share/polkit-1/actions/io.scanbind.policy",
    "/etc/scanbind/scanbindd.toml",
    "/etc/scanbind/policy.toml",
    "/usr/share/doc/scanbind/copyright",
    "/usr/share/doc/scanbind/install.md",
    // Generated from the binaries (clap_mangen, clap_complete).
    "/usr/share/man/man8/scanbindd.8.gz",
    "/usr/share/man/man1/scanbindctl.1.gz",
    "/usr/share/bash-completion/completions/scanbindctl",
    "/usr/share/zsh/vendor-completions/_scanbindctl",
    "/usr/share/fish/vendor_completions.d/scanbindctl.fish",
];

const SERVER_FILES: &[&str] = &[
    "/usr/bin/scanbind-server",
    "/usr/lib/systemd/system/scanbind-server.service",
    "/etc/scanbind/server.toml",
    "/usr/share/scanbind-server/migrations/sqlite/0001_init.sql",
    "/usr/share/scanbind-server/migrations/postgres/0001_init.sql",
    "/usr/share/doc/scanbind-server/copyright",
    "/usr/share/doc/scanbind-server/install.md",
    "/usr/share/man/man8/scanbind-server.8.gz",
];

const LIBRARY_FILES: &[&str] = &["/usr/include/", "/pkgconfig/scanbind.pc", "/libscanbind."];

#[test]
fn packages_hold_the_promised_files_and_metadata() {
    let p = packages();
    for (name, files) in [
        ("scanbind", SCANBIND_FILES),
        ("scanbind-server", SERVER_FILES),
    ] {
        let contents = p.contents(name);
        for f in files {
            assert!(
                contents.iter().any(|c| c == f),
                "{name} lacks {f}; it has {contents:#?}"
            );
        }
        assert_eq!(p.field(name, "Package"), name);
        let depends = p.field(name, "Depends");
        assert!(
            depends.contains("libc6 (>="),
            "{name}: Depends from dpkg-shlibdeps: {depends}"
        );
    }
    // The interface XML is the contract's, byte for byte.
    let root = installed();
    for xml in [
        "io.scanbind.Daemon1",
        "io.scanbind.Binding1",
        "io.scanbind.Payment1",
    ] {
        let shipped =
            std::fs::read(root.join(&format!("usr/share/dbus-1/interfaces/{xml}.xml"))).unwrap();
        let source = std::fs::read(repo_root().join(format!("ipc-proto/xml/{xml}.xml"))).unwrap();
        assert_eq!(shipped, source, "{xml}.xml differs from ipc-proto/xml");
    }
    let contents = p.contents("libscanbind-dev");
    for want in LIBRARY_FILES {
        assert!(
            contents.iter().any(|c| c.contains(want)),
            "libscanbind-dev lacks {want}: {contents:#?}"
        );
    }
    assert_eq!(p.field("libscanbind-dev", "Package"), "libscanbind-dev");
}

/// `scripts/package --profile dev --no-build` over a target directory holding links to
/// the tested binaries, after `change` broke one part: its output and the packages it
/// wrote.
fn package_with(change: impl FnOnce(&Path)) -> (std::process::Output, Vec<String>) {
    packages();
    // The binaries `packages()` packaged: beside this test's own (target/debug/deps).
    let exe = std::env::current_exe().unwrap();
    let built = exe.parent().unwrap().parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("target/debug");
    std::fs::create_dir_all(&bin).unwrap();
    for name in [
        "scanbindd",
        "scanbindctl",
        "scanbind-agent",
        "scanbind-server",
        "libscanbind.so",
        "libscanbind.a",
    ] {
        let real = built.join(name);
        assert!(
            real.exists(),
            "no {} (built by scripts/package)",
            real.display()
        );
        std::os::unix::fs::symlink(&real, bin.join(name)).unwrap();
    }
    change(&bin);
    let out_dir = dir.path().join("out");
    let out = Command::new(repo_root().join("scripts/package"))
        .args([
            "--profile",
            "dev",
            "--no-build",
            "--compress",
            "none",
            "--out",
        ])
        .arg(&out_dir)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let mut debs: Vec<String> = std::fs::read_dir(&out_dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".deb"))
                .collect()
        })
        .unwrap_or_default();
    debs.sort();
    (out, debs)
}

#[test]
fn a_missing_part_fails_the_package_build() {
    // Nothing broken: every package is built, so the failures below are the broken
    // part's.
    let (whole, debs) = package_with(|_| {});
    assert!(
        whole.status.success() && debs.len() == 3,
        "the unbroken build: {debs:?} {}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let (no_agent, debs) = package_with(|bin| {
        std::fs::remove_file(bin.join("scanbind-agent")).unwrap();
    });
    assert!(
        !no_agent.status.success()
            && String::from_utf8_lossy(&no_agent.stderr).contains("scanbind-agent")
            && debs.is_empty(),
        "without scanbind-agent: {debs:?} {no_agent:?}"
    );
    // A CLI that writes no man page (nor completions): /bin/true.
    let (no_man, debs) = package_with(|bin| {
        std::fs::remove_file(bin.join("scanbindctl")).unwrap();
        std::fs::copy("/bin/true", bin.join("scanbindctl")).unwrap();
    });
    assert!(
        !no_man.status.success()
            && String::from_utf8_lossy(&no_man.stderr).contains("no man page for scanbindctl")
            && debs.is_empty(),
        "with a scanbindctl that writes no man page: {debs:?} {no_man:?}"
    );
}

#[test]
fn install_upgrade_remove_and_purge_in_a_fresh_root() {
    let root = installed();
    for f in SCANBIND_FILES.iter().chain(SERVER_FILES) {
        assert!(root.join(f).exists(), "{f} not installed");
    }
    // postinst made the system daemon's user from sysusers.d, in the root.
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("scanbind:") && l.contains(":/var/lib/scanbind:")),
        "no scanbind user in the root's /etc/passwd:\n{passwd}"
    );
    // ... and the agents' group, and (tmpfiles.d) the daemon's private state directory.
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group.lines().any(|l| l.starts_with("scanbind-agent:")),
        "no scanbind-agent group in the root's /etc/group:\n{group}"
    );
    assert!(
        group.lines().any(|l| l.starts_with("scanbind-admin:")),
        "no scanbind-admin group in the root's /etc/group:\n{group}"
    );
    let daemon_uid = scanbind_ipc::accounts::parse_passwd(&passwd)
        .into_iter()
        .find(|u| u.name == "scanbind")
        .unwrap()
        .uid;
    {
        use std::os::unix::fs::MetadataExt as _;
        let state = std::fs::metadata(root.join("var/lib/scanbind")).unwrap();
        assert_eq!((state.mode() & 0o7777, state.uid()), (0o700, daemon_uid));
    }
    // The vault credential is sealed to the machine that runs postinst: never made for
    // another root (dpkg --root), where it would be sealed to the wrong machine.
    assert!(!root.join("etc/credstore.encrypted/scanbind-vault").exists());
    let status = root.dpkg(&[OsStr::new("--status"), OsStr::new("scanbind")]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("Status: install ok installed"));
    let conffiles = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        conffiles.contains("/etc/scanbind/scanbindd.toml"),
        "{conffiles}"
    );
    // The packaged policy protects (issue 22, item 7): a conffile, root's and not
    // writable by others (a system daemon honours nothing else), asking before an
    // unknown app's first charge, with consent limits in every Scan to Bind currency.
    assert!(
        conffiles.contains("/etc/scanbind/policy.toml"),
        "{conffiles}"
    );
    let policy_path = root.join("etc/scanbind/policy.toml");
    let meta = {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(&policy_path).unwrap();
        (m.uid(), m.mode() & 0o7777)
    };
    assert_eq!(meta, (0, 0o644), "{policy_path:?}");
    let policy = scanbind_policy::PolicyFile::parse(
        &std::fs::read_to_string(&policy_path).unwrap(),
        &policy_path,
    )
    .unwrap();
    assert_eq!(policy.unknown_apps, scanbind_policy::Unknown::Ask);
    for wallet in scanbind_money::wallet::SCAN_TO_BIND {
        let currency = scanbind_money::wallet::scan_to_bind(wallet)
            .unwrap()
            .currency;
        let limits = policy.consent_limits(currency).unwrap_or_else(|| {
            panic!("the packaged policy has no consent limits in {currency:?} ({wallet})")
        });
        assert!(
            limits.per_payment.is_some() && limits.daily.is_some() && limits.monthly.is_some(),
            "{wallet}: {limits:?}"
        );
    }

    // An operator's edit of a conffile survives an upgrade to a newer version (the same
    // package with a higher version: dpkg runs the upgrade paths of the scripts).
    let conf = root.join("etc/scanbind/scanbindd.toml");
    let edited = format!(
        "{}\nserver_url = \"https://pay.example.com\"\n",
        std::fs::read_to_string(&conf).unwrap()
    );
    std::fs::write(&conf, &edited).unwrap();
    let p = packages();
    let scratch = tempfile::tempdir().unwrap();
    let newer = with_version(p.deb("scanbind"), "+upgrade1", scratch.path());
    root.dpkg(&[OsStr::new("--install"), newer.as_os_str()]);
    let status = root.dpkg(&[OsStr::new("--status"), OsStr::new("scanbind")]);
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains("+upgrade1\n") && status.contains("Status: install ok installed"),
        "{status}"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);
    assert!(root.join("usr/bin/scanbindd").exists());

    // Remove keeps configuration; purge removes it and the system daemon's state.
    std::fs::create_dir_all(root.join("var/lib/scanbind")).unwrap();
    std::fs::write(root.join("var/lib/scanbind/journal.sqlite3"), b"x").unwrap();
    root.dpkg(&[OsStr::new("--remove"), OsStr::new("scanbind")]);
    assert!(!root.join("usr/bin/scanbindd").exists());
    assert!(
        !root
            .join("usr/share/dbus-1/services/io.scanbind.Daemon.service")
            .exists()
    );
    assert!(conf.exists(), "remove must keep the conffile");
    let credential = root.join("etc/credstore.encrypted/scanbind-vault");
    std::fs::create_dir_all(credential.parent().unwrap()).unwrap();
    std::fs::write(&credential, b"sealed").unwrap();
    root.dpkg(&[OsStr::new("--purge"), OsStr::new("scanbind")]);
    assert!(!conf.exists(), "purge removes the conffile");
    assert!(
        !credential.exists(),
        "purge removes the vault's credential with the vault"
    );
    assert!(
        !root.join("var/lib/scanbind").exists(),
        "purge removes the state"
    );
    // The server's sample config is another package's and stays.
    assert!(root.join("etc/scanbind/server.toml").exists());
    root.dpkg(&[OsStr::new("--purge"), OsStr::new("scanbind-server")]);
    assert!(!root.join("etc/scanbind").exists());
}

/// `deb` repacked with `suffix` appended to its version: an "upgrade" of it.
fn with_version(deb: &Path, suffix: &str, dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("tree");
    run_ok(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    let control = tree.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).unwrap();
    let bumped: String = text
        .lines()
        .map(|l| match l.strip_prefix("Version: ") {
            Some(v) => format!("Version: {v}{suffix}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    assert_ne!(bumped, text);
    std::fs::write(&control, bumped).unwrap();
    let out = dir.join("newer.deb");
    run_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Znone", "--build"])
            .arg(&tree)
            .arg(&out),
    );
    out
}

#[test]
fn units_pass_systemd_analyze_verify() {
    require_tool("systemd-analyze", "systemd");
    let root = installed();
    // The units' dependencies (sysinit.target, dbus.socket, ...) come from the host's
    // systemd, as they would from the systemd package in a real root.
    run_ok(
        Command::new("cp")
            .args([
                "-a",
                "-n",
                "/usr/lib/systemd/system",
                "/usr/lib/systemd/user",
            ])
            .arg(root.join("usr/lib/systemd")),
    );
    assert!(
        root.join("usr/bin/scanbind-agent").exists(),
        "the scanbind-agent binary its user unit runs is not installed"
    );
    // Man pages are checked (Documentation=man:...): every unit's page is packaged.
    let manpath = root.join("usr/share/man");
    let man_check = |page: &str| {
        assert!(
            manpath.join(page).exists(),
            "{page}, the Documentation= of a unit, is not installed"
        );
        "--man=yes"
    };

    // System units: with --root, so ExecStart= binaries are the installed ones.
    for (unit, page) in [
        ("scanbindd.service", "man8/scanbindd.8.gz"),
        ("scanbind-server.service", "man8/scanbind-server.8.gz"),
    ] {
        let unit_path = format!("/usr/lib/systemd/system/{unit}");
        let root_arg = format!("--root={}", root.path().display());
        systemd_verify(
            &[
                OsStr::new("verify"),
                OsStr::new(man_check(page)),
                OsStr::new(&root_arg),
                OsStr::new(&unit_path),
            ],
            Some(&manpath),
        )
        .unwrap();
    }
    // User units: systemd-analyze has no --root for --user, so it verifies copies whose
    // only change is the ExecStart= prefix pointing into the root.
    let copies = tempfile::tempdir().unwrap();
    for (unit, page) in [
        ("scanbindd.service", "man8/scanbindd.8.gz"),
        ("scanbind-agent.service", "man8/scanbindd.8.gz"),
    ] {
        let text =
            std::fs::read_to_string(root.join(&format!("usr/lib/systemd/user/{unit}"))).unwrap();
        let moved = text.replace(
            "\nExecStart=/usr/bin/",
            &format!("\nExecStart={}/usr/bin/", root.path().display()),
        );
        assert_ne!(moved, text, "{unit} has an ExecStart=/usr/bin/...");
        let copy = copies.path().join(unit);
        std::fs::write(&copy, moved).unwrap();
        systemd_verify(
            &[
                OsStr::new("--user"),
                OsStr::new("verify"),
                OsStr::new(man_check(page)),
                copy.as_os_str(),
            ],
            Some(&manpath),
        )
        .unwrap();
    }
    // The check can fail: a unit with a typo is refused.
    let bad = copies.path().join("bad.service");
    std::fs::write(
        &bad,
        "[Service]\nType=exec\nExecStart=/bin/true\nProtectSystem=stricter\n",
    )
    .unwrap();
    let refused = systemd_verify(
        &[
            OsStr::new("verify"),
            OsStr::new("--man=no"),
            bad.as_os_str(),
        ],
        None,
    );
    assert!(refused.is_err(), "a broken unit passed verification");
}

#[test]
fn system_bus_policy_and_activation_file_load() {
    require_tool("dbus-daemon", "dbus-daemon");
    require_tool("dbus-send", "dbus-bin");
    let root = installed();
    // The system bus's own defaults (deny owning, allow calls back to clients), then the
    // packaged policy and activation directory, as /usr/share/dbus-1/system.conf does.
    let bus = SystemBus::options()
        .service_dir(root.join("usr/share/dbus-1/system-services"))
        .policy_dir(root.join("usr/share/dbus-1/system.d"))
        .start()
        .expect("dbus-daemon did not accept the packaged policy");
    let address = bus.address();
    let send = |args: &[&str]| {
        Command::new("dbus-send")
            .arg(format!("--bus={address}"))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    // The system activation file parsed (it names User= and SystemdService=).
    let names = send(&["org.freedesktop.DBus.ListActivatableNames"]);
    assert!(
        String::from_utf8_lossy(&names.stdout).contains("\"io.scanbind.Daemon\""),
        "io.scanbind.Daemon is not activatable: {}",
        String::from_utf8_lossy(&names.stderr)
    );
    // Only the scanbind user may own the name: this test's user may not.
    let own = send(&[
        "org.freedesktop.DBus.RequestName",
        "string:io.scanbind.Daemon",
        "uint32:4",
    ]);
    assert!(
        !own.status.success() && String::from_utf8_lossy(&own.stderr).contains("AccessDenied"),
        "a non-scanbind user could own io.scanbind.Daemon: {:?}",
        own
    );
    // Any local app may call the daemon's interfaces: the call passes the policy and
    // asks for activation, which without systemd runs `Exec=/bin/false` (activation
    // goes through systemd only).
    let call = Command::new("dbus-send")
        .arg(format!("--bus={address}"))
        .args([
            "--print-reply",
            "--dest=io.scanbind.Daemon",
            "/io/scanbind/Daemon1",
            "io.scanbind.Daemon1.GetStatus",
            "dict:string:string:",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&call.stderr);
    assert!(
        err.contains("Spawn.ChildExited") && !err.contains("AccessDenied"),
        "a call to io.scanbind.Daemon1 should pass the policy and fail to spawn: {err}"
    );
    // Registering a display agent is for the scanbind-agent group only (this test's
    // user, root, is not in it; packaging/tests/system_mode.rs runs a member).
    let agent = Command::new("dbus-send")
        .arg(format!("--bus={address}"))
        .args([
            "--print-reply",
            "--dest=io.scanbind.Daemon",
            "/io/scanbind/Daemon1",
            "io.scanbind.AgentManager1.RegisterAgent",
            "objpath:/io/scanbind/Agent",
            "dict:string:string:",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&agent.stderr).contains("AccessDenied"),
        "{agent:?}"
    );
    // Other interfaces on the name are refused by the policy.
    let other = Command::new("dbus-send")
        .arg(format!("--bus={address}"))
        .args([
            "--print-reply",
            "--dest=io.scanbind.Daemon",
            "/io/scanbind/Daemon1",
            "io.scanbind.NotOurs.Call",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("AccessDenied"),
        "{other:?}"
    );
}

/// The payment world: sandbox in process, the installed server on the packaged config.
struct ServerProc {
    _child: KillOnDrop,
    base: String,
}

fn start_installed_server(
    root: &Root,
    sandbox_url: &str,
    alipay_pem: &str,
    dir: &Path,
) -> ServerProc {
    let creds = dir.join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let fixtures = repo_root().join("ams/tests/fixtures");
    std::fs::copy(
        fixtures.join("vector_private_pkcs8.pem"),
        creds.join("scanbind-server.merchant-key"),
    )
    .unwrap();
    std::fs::write(creds.join("scanbind-server.alipay-public-key"), alipay_pem).unwrap();
    let server_bin = root.join("usr/bin/scanbind-server");
    for (kind, name) in [
        ("sealing", "scanbind-server.sealing-key"),
        ("receipt", "scanbind-server.receipt-key"),
    ] {
        run_ok(
            Command::new(&server_bin)
                .args(["keygen", kind])
                .arg(creds.join(name)),
        );
    }
    let log = dir.join("server.log");
    let mut cmd = Command::new(&server_bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SCANBIND_") {
            cmd.env_remove(k);
        }
    }
    // The packaged configuration as it ships, keys from $CREDENTIALS_DIRECTORY as under
    // systemd; the environment supplies what an operator would edit.
    cmd.arg("--config")
        .arg(root.join("etc/scanbind/server.toml"))
        .arg("serve")
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env("SCANBIND_SERVER_SERVER_LISTEN", "127.0.0.1:0")
        .env("SCANBIND_SERVER_AMS_BASE_URL", sandbox_url)
        .env("SCANBIND_SERVER_AMS_CLIENT_ID", CLIENT_ID)
        .env(
            "SCANBIND_SERVER_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("server.db").display()),
        )
        // The desktop's daemon here has no enrollment token.
        .env("SCANBIND_SERVER_DEVICES_REGISTRATION", "open")
        .env(
            "SCANBIND_SERVER_PAYMENTS_INQUIRY_BACKOFF_MS",
            "[50, 100, 200]",
        )
        .env("SCANBIND_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(base) = line.trim().strip_prefix("listening on ") else {
        panic!(
            "the installed scanbind-server did not start on the packaged config: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    ServerProc {
        base: base.to_owned(),
        _child: child,
    }
}

/// Sends SIGTERM to a process this test caused to start (the bus-activated daemon,
/// which is the bus's child, not ours) when dropped.
struct TermOnDrop(u32);

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}

fn http() -> reqwest::Client {
    scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .build()
        .unwrap()
}

/// A desktop session with the packages installed: an in-process sandbox, the installed
/// server on the packaged config, a private session bus whose service directory holds
/// the packaged activation file, a real gnome-keyring on that bus, and the daemon's
/// per-user config file made from the packaged one (every documented key switched on).
struct Desktop {
    root: Root,
    dir: tempfile::TempDir,
    sandbox: scanbind_sandbox::SandboxHandle,
    server: ServerProc,
    bus: SessionBus,
    keyring: KillOnDrop,
    conn: zbus::Connection,
    dbus: zbus::fdo::DBusProxy<'static>,
    /// `scanbindd --help` of the installed daemon (what it supports).
    help: String,
    p2p_socket: std::path::PathBuf,
}

async fn desktop(idle_exit_secs: u64) -> Desktop {
    require_tool("dbus-daemon", "dbus-daemon");
    require_tool("gnome-keyring-daemon", "gnome-keyring");
    let root = installed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Alipay (the sandbox) and the installed merchant server.
    let fixtures = repo_root().join("ams/tests/fixtures");
    let merchant = PrivateKey::from_text(
        &std::fs::read_to_string(fixtures.join("vector_private_pkcs8.pem")).unwrap(),
    )
    .unwrap();
    let alipay = PrivateKey::from_text(
        &std::fs::read_to_string(fixtures.join("other_rsa2048.pem")).unwrap(),
    )
    .unwrap();
    let sandbox = Sandbox::builder(alipay)
        .listen("127.0.0.1:0".parse().unwrap())
        .merchant(CLIENT_ID, merchant.public_key())
        .start()
        .await
        .unwrap();
    let server =
        start_installed_server(&root, sandbox.base_url(), &sandbox.public_key().to_pem(), d);

    // The packaged session activation file; the only change is where /usr/bin is.
    let services = d.join("services");
    std::fs::create_dir_all(&services).unwrap();
    let shipped =
        std::fs::read_to_string(root.join("usr/share/dbus-1/services/io.scanbind.Daemon.service"))
            .unwrap();
    let moved = shipped.replace(
        "\nExec=/usr/bin/",
        &format!("\nExec={}/usr/bin/", root.path().display()),
    );
    assert_ne!(moved, shipped, "the activation file runs /usr/bin/...");
    std::fs::write(services.join("io.scanbind.Daemon.service"), &moved).unwrap();

    // The daemon's settings: the per-user config file (XDG override of the packaged
    // /etc one) where the daemon reads one, else the environment.
    let (config_home, state_home, runtime, data) = (
        d.join("config"),
        d.join("state"),
        d.join("run"),
        d.join("data"),
    );
    for p in [&config_home, &state_home, &runtime, &data] {
        std::fs::create_dir_all(p).unwrap();
        run_ok(Command::new("chmod").arg("0700").arg(p));
    }
    let help = run_ok(Command::new(root.join("usr/bin/scanbindd")).arg("--help"));
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let env: Vec<(String, String)> = vec![
        ("XDG_CONFIG_HOME".into(), config_home.display().to_string()),
        ("XDG_STATE_HOME".into(), state_home.display().to_string()),
        ("XDG_RUNTIME_DIR".into(), runtime.display().to_string()),
        ("XDG_DATA_HOME".into(), data.display().to_string()),
        ("SCANBIND_LOG".into(), "info,scanbindd=debug".into()),
    ];
    let p2p_socket = d.join("p2p.sock");
    assert!(
        help.contains("--config"),
        "the installed scanbindd has no --config:\n{help}"
    );
    // The packaged file with every documented key switched on (values for this
    // test): the daemon accepts every key the file documents.
    let packaged = std::fs::read_to_string(root.join("etc/scanbind/scanbindd.toml")).unwrap();
    let values: HashMap<&str, String> = HashMap::from([
        ("server_url", format!("{:?}", server.base)),
        ("device_name", "\"Packaging test TV\"".to_owned()),
        (
            "state_dir",
            format!("{:?}", state_home.join("scanbind").display().to_string()),
        ),
        ("idle_exit_secs", idle_exit_secs.to_string()),
        (
            "p2p_socket",
            format!("{:?}", p2p_socket.display().to_string()),
        ),
    ]);
    let mut switched_on = 0;
    let config: String = packaged
        .lines()
        .map(|line| {
            let key = line
                .strip_prefix('#')
                .and_then(|l| l.split_once(" = "))
                .map(|(k, _)| k)
                .filter(|k| {
                    k.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                });
            match key {
                Some(key) => {
                    let value = values.get(key).unwrap_or_else(|| {
                        panic!("scanbindd.toml documents {key}: give it a test value")
                    });
                    switched_on += 1;
                    format!("{key} = {value}\n")
                }
                None => format!("{line}\n"),
            }
        })
        .collect();
    assert_eq!(switched_on, values.len(), "documented keys:\n{config}");
    std::fs::create_dir_all(config_home.join("scanbind")).unwrap();
    std::fs::write(config_home.join("scanbind/scanbindd.toml"), config).unwrap();
    let bus = SessionBus::start(&services, &env);

    // A real Secret Service on the same session bus, as in a desktop session.
    let conn = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
    let mut secrets_owned = dbus
        .receive_name_owner_changed_with_args(&[(0, "org.freedesktop.secrets")])
        .await
        .unwrap();
    let mut keyring = KillOnDrop(
        Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", &data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    {
        let mut stdin = keyring.0.stdin.take().unwrap();
        stdin.write_all(b"packaging-test").unwrap();
    }
    let secrets = zbus::names::BusName::try_from("org.freedesktop.secrets").unwrap();
    if !dbus.name_has_owner(secrets.clone()).await.unwrap() {
        tokio::time::timeout(GUARD, secrets_owned.next())
            .await
            .expect("gnome-keyring did not take org.freedesktop.secrets")
            .unwrap();
    }

    // Not running; activatable from the packaged file.
    let name = zbus::names::BusName::try_from(BUS_NAME).unwrap();
    assert!(!dbus.name_has_owner(name.clone()).await.unwrap());
    let activatable = dbus.list_activatable_names().await.unwrap();
    assert!(
        activatable.iter().any(|n| n.as_str() == BUS_NAME),
        "{activatable:?}"
    );

    Desktop {
        root,
        dir,
        sandbox,
        server,
        bus,
        keyring,
        conn,
        dbus,
        help,
        p2p_socket,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_call_activates_the_installed_daemon_which_binds_and_pays() {
    let Desktop {
        root,
        dir,
        sandbox,
        server,
        bus,
        keyring,
        conn,
        dbus,
        help: _,
        p2p_socket,
    } = desktop(0).await;
    let name = zbus::names::BusName::try_from(BUS_NAME).unwrap();

    // The first method call starts it.
    let daemon = Daemon1Proxy::new(&conn).await.unwrap();
    let status = tokio::time::timeout(GUARD, daemon.get_status(HashMap::new()))
        .await
        .expect("activation hung")
        .unwrap_or_else(|e| panic!("activation failed: {e}\nbus log:\n{}", bus.log()));
    // The device name comes from the per-user config file.
    let device_name = status
        .get(scanbind_ipc::types::keys::status::DEVICE_NAME)
        .map(|v| String::try_from(v.try_clone().unwrap()).unwrap());
    assert_eq!(
        device_name.as_deref(),
        Some("Packaging test TV"),
        "{status:?}"
    );
    let pid = dbus
        .get_connection_unix_process_id(name.clone())
        .await
        .unwrap();
    let _daemon_guard = TermOnDrop(pid);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        root.join("usr/bin/scanbindd"),
        "the name's owner is the installed scanbindd"
    );

    // Bind a wallet: the phone approves through the sandbox.
    let path = daemon
        .start_binding("ALIPAY_HK", HashMap::new())
        .await
        .unwrap();
    let binding = Binding1Proxy::builder(&conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut bound = binding.receive_completed().await.unwrap();
    let code = binding.code_value().await.unwrap();
    let http = http();
    let scan = http
        .post(format!("{}/sandbox/v1/scan", sandbox.base_url()))
        .json(&serde_json::json!({"codeValue": code, "decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert!(scan.status().is_success(), "{:?}", scan.text().await);
    let signal = tokio::time::timeout(GUARD, bound.next())
        .await
        .unwrap_or_else(|_| panic!("no Binding Completed; bus log:\n{}", bus.log()))
        .unwrap();
    assert_eq!(signal.args().unwrap().state, "bound", "{}", bus.log());

    // One click: pay, and the sandbox ledger shows exactly one charge.
    let p = daemon
        .pay(
            "pkg-order-1",
            4900,
            "HKD",
            "Packaging smoke test",
            HashMap::new(),
        )
        .await
        .unwrap();
    let payment = Payment1Proxy::builder(&conn)
        .path(p.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut completed = payment.receive_completed().await.unwrap();
    let now: PaymentState = payment.state().await.unwrap().parse().unwrap();
    if !now.is_terminal() {
        tokio::time::timeout(GUARD, completed.next())
            .await
            .unwrap_or_else(|_| panic!("no Payment Completed; bus log:\n{}", bus.log()))
            .unwrap();
    }
    assert_eq!(payment.state().await.unwrap(), "succeeded", "{}", bus.log());
    let ledger = sandbox_ledger(&http, &sandbox).await;
    let payments = ledger["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{ledger}");
    assert_eq!(payments[0]["moneyMovements"], 1, "{ledger}");

    // The installed CLI against the activated daemon.
    let ctl = root.join("usr/bin/scanbindctl");
    let ctl_help = run_ok(Command::new(&ctl).arg("--help"));
    let ctl_help = String::from_utf8_lossy(&ctl_help.stdout).to_string();
    // doctor also checks the server's reachability and clock.
    for (sub, args) in [
        ("doctor", vec!["--server", server.base.as_str()]),
        ("status", vec![]),
    ] {
        assert!(
            ctl_help.lines().any(|l| l.trim_start().starts_with(sub)),
            "the installed scanbindctl has no {sub}:\n{ctl_help}"
        );
        let mut cmd = Command::new(&ctl);
        cmd.arg(sub)
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
            .env_remove("SCANBIND_SERVER_URL");
        run_ok_async(cmd).await;
    }
    // The peer-to-peer socket from the config file serves the CLI too.
    let mut cmd = Command::new(&ctl);
    cmd.arg("status")
        .arg("--socket")
        .arg(&p2p_socket)
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    run_ok_async(cmd).await;

    let mut expected_payments = 1;
    assert!(
        ctl_help.lines().any(|l| l.trim_start().starts_with("pay ")),
        "the installed scanbindctl has no pay:\n{ctl_help}"
    );
    // The installed CLI pays with the bound wallet and waits for the result.
    let mut cmd = Command::new(&ctl);
    cmd.args(["pay", "3.00", "HKD", "--description", "CLI smoke test"])
        .args(["--order-id", "pkg-order-cli", "--timeout", "60"])
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address());
    run_ok_async(cmd).await;
    expected_payments += 1;
    let ledger = sandbox_ledger(&http, &sandbox).await;
    let payments = ledger["payments"].as_array().unwrap();
    assert_eq!(payments.len(), expected_payments, "{ledger}");
    assert!(
        payments.iter().any(|p| p["amount"]
            == serde_json::json!({"currency": "HKD", "value": "300"})
            && p["status"] == "SUCCESS"
            && p["moneyMovements"] == 1),
        "no 3.00 HKD charge in {ledger}"
    );

    // The installed C library: the example app, built with the packaged header and
    // pkg-config file, pays through the activated daemon.
    packages().deb("libscanbind-dev");
    let exe = build_c_example(&root, dir.path());
    let mut cmd = Command::new(exe);
    cmd.args(["pkg-order-c", "1200", "HKD", "C library smoke test"])
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env_remove("SCANBIND_SOCKET")
        .env_remove("SCANBIND_BUS_ADDRESS");
    run_ok_async(cmd).await;
    let ledger = sandbox_ledger(&http, &sandbox).await;
    assert_eq!(
        ledger["payments"].as_array().unwrap().len(),
        expected_payments + 1,
        "{ledger}"
    );
    drop(keyring);
    sandbox.shutdown().await;
}

/// Compiles clients/c/examples/pay.c with `cc $(pkg-config --cflags --libs scanbind)`
/// against the root's header, library and pkg-config file only.
fn build_c_example(root: &Root, dir: &Path) -> std::path::PathBuf {
    require_tool("cc", "gcc");
    require_tool("pkg-config", "pkgconf");
    let pc = run_ok(
        Command::new("find")
            .arg(root.path())
            .args(["-name", "scanbind.pc"]),
    );
    let pc = String::from_utf8_lossy(&pc.stdout).trim().to_owned();
    assert!(!pc.is_empty(), "no scanbind.pc installed");
    let pc_dir = Path::new(&pc).parent().unwrap().to_owned();
    let flags = run_ok(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "scanbind"])
            .env("PKG_CONFIG_LIBDIR", &pc_dir)
            .env("PKG_CONFIG_SYSROOT_DIR", root.path()),
    );
    let flags = String::from_utf8_lossy(&flags.stdout).to_string();
    assert!(
        flags.contains(&root.path().display().to_string()),
        "pkg-config flags do not point into the root: {flags}"
    );
    let libdir = root
        .path()
        .join(pc_dir.parent().unwrap().strip_prefix(root.path()).unwrap());
    let exe = dir.join("pay");
    run_ok(
        Command::new("cc")
            .arg(repo_root().join("clients/c/examples/pay.c"))
            .args(flags.split_whitespace())
            .arg(format!("-Wl,-rpath,{}", libdir.display()))
            .arg("-lpthread")
            .arg("-o")
            .arg(&exe),
    );
    exe
}

#[test]
fn installed_man_pages_and_completions_work() {
    require_tool("man", "man-db");
    let root = installed();
    let manpath = root.join("usr/share/man");
    for (page, section, synopsis) in [
        ("scanbindctl", "1", "scanbindctl"),
        ("scanbindd", "8", "scanbindd"),
        ("scanbind-server", "8", "scanbind-server"),
    ] {
        let out = run_ok(
            Command::new("man")
                .arg("--manpath")
                .arg(&manpath)
                .args(["-P", "cat", section, page])
                .env("MANWIDTH", "80"),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS") && text.contains(synopsis),
            "man {section} {page}:\n{text}"
        );
    }
    // The completion scripts: bash parses its own (zsh and fish are not installed
    // here; their files are checked in the package's contents), and every one
    // completes scanbindctl's subcommands.
    let bash = root.join("usr/share/bash-completion/completions/scanbindctl");
    run_ok(Command::new("bash").arg("-n").arg(&bash));
    for script in [
        bash,
        root.join("usr/share/zsh/vendor-completions/_scanbindctl"),
        root.join("usr/share/fish/vendor_completions.d/scanbindctl.fish"),
    ] {
        let text = std::fs::read_to_string(&script).unwrap();
        for sub in ["pay", "status", "doctor"] {
            assert!(
                text.contains(sub),
                "{} does not complete {sub}",
                script.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_daemon_exits_and_the_next_call_activates_it_again() {
    let desk = desktop(1).await;
    assert!(
        desk.help.contains("--idle-exit"),
        "the installed scanbindd has no --idle-exit:\n{}",
        desk.help
    );
    let name = zbus::names::BusName::try_from(BUS_NAME).unwrap();
    let mut owners = desk
        .dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await
        .unwrap();
    let daemon = Daemon1Proxy::new(&desk.conn).await.unwrap();
    let mut pids = Vec::new();
    for round in 0..2 {
        // A call activates the daemon ...
        daemon
            .get_status(HashMap::new())
            .await
            .unwrap_or_else(|e| panic!("activation {round} failed: {e}\n{}", desk.bus.log()));
        let pid = desk
            .dbus
            .get_connection_unix_process_id(name.clone())
            .await
            .unwrap();
        // No kill guard: with idle_exit_secs = 1 the daemon exits by itself.
        pids.push(pid);
        // ... which gives the name up once it has been idle for idle_exit_secs = 1.
        loop {
            let change = tokio::time::timeout(GUARD, owners.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("the daemon did not exit when idle:\n{}", desk.bus.log())
                })
                .unwrap();
            if change.args().unwrap().new_owner().is_none() {
                break;
            }
        }
        assert!(!desk.dbus.name_has_owner(name.clone()).await.unwrap());
    }
    assert_ne!(pids[0], pids[1], "the second call started a new daemon");
}

/// [`run_ok`] (stdin closed) off the async runtime.
async fn run_ok_async(mut cmd: Command) -> std::process::Output {
    cmd.stdin(Stdio::null());
    tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The sandbox's ledger.
async fn sandbox_ledger(http: &reqwest::Client, sandbox: &SandboxHandle) -> serde_json::Value {
    http.get(format!("{}/sandbox/v1/ledger", sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
