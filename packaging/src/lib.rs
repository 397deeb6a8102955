//! Fixtures for testing scanbind's Debian packages, systemd units and D-Bus files
//! (`packaging/`). Test-only: nothing here ships.
//!
//! - [`Packages`]: the `.deb` files, built once per test process by `scripts/package`
//!   (or taken from `$SCANBIND_DEB_DIR`).
//! - [`Root`]: a fresh filesystem root the packages are installed into with the real
//!   `dpkg --root`, maintainer scripts included (`--force-script-chrootless`, so they
//!   run with `$DPKG_ROOT` set instead of in a chroot). Its package database starts as
//!   a copy of the host's, so dependencies are checked against the host's real
//!   packages.
//! - [`systemd_verify`]: `systemd-analyze verify`, failing on any diagnostic.
//! - [`SessionBus`]: a private `dbus-daemon` of type session whose service directory is
//!   the one given, with the environment activated services inherit.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Bound on every wait in these tests: a hang fails the test, it never times anything.
pub const GUARD: Duration = Duration::from_secs(90);

/// The repository root (the parent of `packaging/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("packaging/ has a parent")
        .to_owned()
}

/// Runs `cmd` and panics with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Panics with a message naming the Debian package unless `tool` is on `PATH`.
pub fn require_tool(tool: &str, debian_package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "{tool} is not installed: `apt-get install {debian_package}` (scripts/test installs it)"
    );
}

/// The built packages.
#[derive(Debug)]
pub struct Packages {
    /// The directory holding the `.deb` files.
    pub dir: PathBuf,
    /// Package name → `.deb` file.
    pub debs: BTreeMap<String, PathBuf>,
}

impl Packages {
    /// The packages, built once per process: from `$SCANBIND_DEB_DIR` if set, otherwise
    /// by `scripts/package --profile dev --compress none --out <tmp>/debs`, which builds
    /// nothing after `cargo test --workspace` (the same binaries the other tests ran).
    pub fn get(tmp: &Path) -> &'static Packages {
        // A failed build is remembered too: the other tests fail at once, not rebuild.
        static PACKAGES: OnceLock<Result<Packages, String>> = OnceLock::new();
        let built = PACKAGES.get_or_init(|| {
            std::panic::catch_unwind(|| Packages::build(tmp)).map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "building the packages panicked".to_owned())
            })
        });
        match built {
            Ok(p) => p,
            Err(e) => panic!("the packages could not be built: {e}"),
        }
    }

    fn build(tmp: &Path) -> Packages {
        {
            let dir = match std::env::var_os("SCANBIND_DEB_DIR").filter(|v| !v.is_empty()) {
                Some(dir) => PathBuf::from(dir),
                None => {
                    let dir = tmp.join("debs");
                    let mut cmd = Command::new(repo_root().join("scripts/package"));
                    cmd.args(["--profile", "dev", "--compress", "none", "--out"])
                        .arg(&dir);
                    let out = run_ok(&mut cmd);
                    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
                    dir
                }
            };
            let mut debs = BTreeMap::new();
            for entry in std::fs::read_dir(&dir).expect("the package directory") {
                let path = entry.expect("a directory entry").path();
                if path.extension() == Some(OsStr::new("deb")) {
                    let name = path
                        .file_name()
                        .and_then(OsStr::to_str)
                        .and_then(|n| n.split('_').next())
                        .expect("NAME_VERSION_ARCH.deb")
                        .to_owned();
                    debs.insert(name, path);
                }
            }
            Packages { dir, debs }
        }
    }

    /// The `.deb` of `name`; panics if it was not built.
    pub fn deb(&self, name: &str) -> &Path {
        self.debs
            .get(name)
            .unwrap_or_else(|| panic!("no {name} package in {}", self.dir.display()))
    }

    /// Paths (without the leading `.`) of the files and links in package `name`.
    pub fn contents(&self, name: &str) -> Vec<String> {
        let out = run_ok(
            Command::new("dpkg-deb")
                .arg("--fsys-tarfile")
                .arg(self.deb(name)),
        );
        let mut tar = Command::new("tar")
            .args(["-t", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar");
        tar.stdin
            .take()
            .expect("piped stdin")
            .write_all(&out.stdout)
            .expect("feed tar");
        let listed = tar.wait_with_output().expect("tar output");
        assert!(listed.status.success(), "tar -t failed");
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter(|l| !l.ends_with('/'))
            .map(|l| l.trim_start_matches('.').to_owned())
            .collect()
    }

    /// One field of package `name`'s control file.
    pub fn field(&self, name: &str, field: &str) -> String {
        let out = run_ok(
            Command::new("dpkg-deb")
                .arg("--field")
                .arg(self.deb(name))
                .arg(field),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// A fresh root with packages installed by `dpkg --root`. Removed on drop.
#[derive(Debug)]
pub struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    /// An empty root whose dpkg database is a copy of the host's (so `Depends` are
    /// checked against the host's installed packages), with `debs` installed.
    pub fn install(debs: &[&Path]) -> Root {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = dir.path().join("var/lib/dpkg");
        for sub in ["info", "updates", "triggers"] {
            std::fs::create_dir_all(db.join(sub)).expect("dpkg database dirs");
        }
        std::fs::copy("/var/lib/dpkg/status", db.join("status")).expect("the host's dpkg status");
        std::fs::write(db.join("available"), "").expect("dpkg available");
        let root = Root { dir };
        let mut args: Vec<&OsStr> = vec![OsStr::new("--install")];
        args.extend(debs.iter().map(|d| d.as_os_str()));
        root.dpkg(&args);
        root
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `PATH` in the root, e.g. `usr/bin/scanbindd`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    /// Runs `dpkg --root=ROOT --force-script-chrootless ARGS` and panics unless it
    /// succeeds; returns its output.
    pub fn dpkg(&self, args: &[&OsStr]) -> Output {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", self.path().display()))
            .arg("--force-script-chrootless")
            .arg("--log=/dev/null");
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0)
            != 0
        {
            cmd.arg("--force-not-root");
        }
        // dpkg wants ldconfig and start-stop-daemon on PATH, which may lack /sbin.
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{path}:/usr/sbin:/sbin"))
            .args(args)
            .stdin(Stdio::null());
        run_ok(&mut cmd)
    }
}

/// Runs `systemd-analyze ARGS` (with a private `XDG_RUNTIME_DIR` and `MANPATH`) and
/// returns `Err(diagnostics)` unless it exits 0 *and* prints nothing: `verify` reports
/// unknown keys and unparsable values as warnings with exit status 0.
pub fn systemd_verify(args: &[&OsStr], manpath: Option<&Path>) -> Result<(), String> {
    let runtime = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(args)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_LOG_COLOR", "0");
    if let Some(m) = manpath {
        cmd.env("MANPATH", m);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run systemd-analyze: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("systemd-analyze {args:?}: {}\n{text}", out.status))
    }
}

/// A private `dbus-daemon` of type session, listening on a socket in a temp dir,
/// activating services from `service_dir`; activated services inherit `env` (and
/// `DBUS_SESSION_BUS_ADDRESS` pointing at this bus) but no `SCANBIND_*` variable of
/// the test's own environment. Killed on drop (kill what it activated yourself).
#[derive(Debug)]
pub struct SessionBus {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl SessionBus {
    /// Starts the bus and waits until it prints its address.
    pub fn start(service_dir: &Path, env: &[(String, String)]) -> SessionBus {
        let dir = tempfile::tempdir().expect("a temp dir");
        let socket = dir.path().join("bus");
        let config = dir.path().join("session.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display(),
                service_dir.display()
            ),
        )
        .expect("write the bus config");
        let mut cmd = Command::new("dbus-daemon");
        // Activated services see only the scanbind settings the test gives them.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SCANBIND_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", socket.display()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("bus.log")).expect("bus log"),
            ));
        let mut child = cmd
            .spawn()
            .expect("start dbus-daemon (apt-get install dbus-daemon)");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        stdout.read_line(&mut line).expect("read the bus address");
        // Activated services inherit the bus's stdout: keep it open and drained, as a
        // service manager's journal stream would be.
        let log = dir.path().join("bus.log");
        std::thread::spawn(move || {
            let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(log) else {
                return;
            };
            let _ = std::io::copy(&mut stdout, &mut file);
        });
        let address = line.trim().to_owned();
        if address.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "dbus-daemon printed no address: {}",
                std::fs::read_to_string(dir.path().join("bus.log")).unwrap_or_default()
            );
        }
        SessionBus {
            child,
            address,
            dir,
        }
    }

    /// The bus address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// What the bus logged (activation failures, policy rejections).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bus.log")).unwrap_or_default()
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
