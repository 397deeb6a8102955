//! Real processes for the agent's tests: a private dbus-daemon (`scanbind-testkit`),
//! Xvfb, the `scanbind-agent` binary, and a test-only stand-in for the daemon's side
//! of the agent protocol (it owns `io.scanbind.Daemon` and serves a minimal
//! `io.scanbind.AgentManager1` and `Daemon1.StartBinding`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use scanbind_ipc::Agent1Proxy;
use tokio::sync::mpsc;
use zbus::names::OwnedUniqueName;
use zbus::{Connection, interface};
use zvariant::{OwnedObjectPath, OwnedValue};

/// How long any one wait may take before the test fails (a guard, not a readiness
/// delay: every wait ends on an event).
pub const GUARD: Duration = Duration::from_secs(60);

/// Whether Xvfb, xdotool and zbarimg are installed. Missing tools skip the test with
/// a message, except under CI (`CI` set), where they fail it.
pub fn display_tools_available() -> bool {
    let missing: Vec<&str> = ["Xvfb", "xdotool", "zbarimg"]
        .into_iter()
        .filter(|tool| !on_path(tool))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "missing {} (Debian: xvfb, xdotool, zbar-tools; see agent/README.md)",
        missing.join(", ")
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("SKIPPED: {msg}");
    false
}

pub use scanbind_testkit::PrivateBus;
use scanbind_testkit::on_path;

/// testkit's Xvfb (a display number it picks itself, killed on drop), with the agent
/// tests' screenshots and QR decoding.
pub struct Xvfb {
    x: scanbind_testkit::display::Xvfb,
    shots: tempfile::TempDir,
}

impl Xvfb {
    /// Starts a 1280×720 24-bit screen and waits until the server reports its display.
    pub fn start() -> Xvfb {
        Xvfb {
            x: scanbind_testkit::display::Xvfb::start().expect("cannot start Xvfb"),
            shots: tempfile::tempdir().unwrap(),
        }
    }

    /// `:N`.
    pub fn display(&self) -> &str {
        self.x.display()
    }

    /// Runs `xdotool ARGS` on this display and checks it succeeded.
    pub fn xdotool(&self, args: &[&str]) {
        self.x.xdotool(args);
    }

    /// Focuses the agent's window (no window manager runs here).
    pub fn focus_agent(&self) {
        self.x.focus("scanbind-agent");
    }

    /// Presses keys (xdotool key names) one after the other.
    pub fn keys(&self, keys: &[&str]) {
        self.x.keys(keys);
    }

    /// Takes a screenshot of the root window (core `GetImage`) as a PPM file.
    pub fn screenshot(&self, path: &Path) {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder};
        let (conn, screen_num) = x11rb::connect(Some(self.display())).unwrap();
        let setup = conn.setup();
        let screen = &setup.roots[screen_num];
        let (w, h) = (screen.width_in_pixels, screen.height_in_pixels);
        let image = conn
            .get_image(ImageFormat::Z_PIXMAP, screen.root, 0, 0, w, h, !0)
            .unwrap()
            .reply()
            .unwrap();
        assert_eq!(image.depth, 24);
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == 24)
            .map(|f| usize::from(f.bits_per_pixel))
            .unwrap();
        assert_eq!(bpp, 32, "expected 32 bits per pixel");
        assert_eq!(setup.image_byte_order, ImageOrder::LSB_FIRST);
        let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
        for px in image.data.chunks_exact(4) {
            ppm.extend_from_slice(&[px[2], px[1], px[0]]);
        }
        std::fs::File::create(path)
            .unwrap()
            .write_all(&ppm)
            .unwrap();
    }

    /// Saves a screenshot named `name` when `$SCANBIND_AGENT_SCREENSHOTS` is set (to
    /// look at the screens); does nothing otherwise.
    pub fn keep_screenshot(&self, name: &str) {
        if std::env::var_os("SCANBIND_AGENT_SCREENSHOTS").is_some() {
            self.screenshot(&self.screenshot_dir().join(format!("{name}.ppm")));
        }
    }

    /// Screenshots the display and decodes the QR code(s) on it with `zbarimg`.
    pub fn decode_qr(&self, name: &str) -> String {
        let dir = self.screenshot_dir();
        let path = dir.join(format!("{name}.ppm"));
        self.screenshot(&path);
        let out = Command::new("zbarimg")
            .args(["--raw", "-q"])
            .arg(&path)
            .output()
            .expect("cannot run zbarimg");
        assert!(
            out.status.success(),
            "zbarimg found no code in {} ({}); set SCANBIND_AGENT_SCREENSHOTS=DIR to keep it",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }
}

impl Xvfb {
    /// Where screenshots go: `$SCANBIND_AGENT_SCREENSHOTS` if set (to look at them),
    /// else a temporary directory removed with the server.
    fn screenshot_dir(&self) -> PathBuf {
        match std::env::var_os("SCANBIND_AGENT_SCREENSHOTS") {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                std::fs::create_dir_all(&dir).unwrap();
                dir
            }
            None => self.shots.path().to_owned(),
        }
    }
}

/// The `scanbind-agent` binary on a display, its stdout lines collected; its log
/// (stderr) is printed if the test fails.
pub struct AgentProcess {
    child: Child,
    lines: std_mpsc::Receiver<String>,
    log: tempfile::NamedTempFile,
}

impl AgentProcess {
    /// Starts the agent on `bus` and `display` (full-screen, as shipped), for the real
    /// scanbindd (the one beside it).
    pub fn start(bus: &str, display: &str) -> AgentProcess {
        AgentProcess::start_for(bus, display, None)
    }

    /// [`AgentProcess::start`] for a daemon running `daemon_exe` (this test process,
    /// when it plays the daemon).
    pub fn start_for(bus: &str, display: &str, daemon_exe: Option<&Path>) -> AgentProcess {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanbind-agent"));
        if let Some(exe) = daemon_exe {
            cmd.arg("--daemon-exe").arg(exe);
        }
        let mut child = cmd
            .args(["--address", bus])
            .env("DISPLAY", display)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("SCANBIND_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .expect("cannot start scanbind-agent");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("scanbind-agent stdout: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        AgentProcess { child, lines, log }
    }

    /// Waits for a line starting with `prefix`; returns the rest of it, or `None`
    /// after the guard time.
    pub fn wait_prefix(&self, prefix: &str) -> Option<String> {
        loop {
            match self.lines.recv_timeout(GUARD) {
                Ok(l) if l.starts_with(prefix) => return Some(l[prefix.len()..].to_owned()),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for exactly `line` on the agent's stdout (other lines are skipped).
    pub fn expect_line(&self, line: &str) {
        loop {
            match self.lines.recv_timeout(GUARD) {
                Ok(l) if l == line => return,
                Ok(_) => {}
                Err(e) => panic!("scanbind-agent never printed {line:?}: {e}"),
            }
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
            eprintln!("scanbind-agent log:\n{log}");
        }
    }
}

/// A registration the stand-in daemon received.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The agent's unique bus name.
    pub sender: OwnedUniqueName,
    /// The path it serves `io.scanbind.Agent1` at.
    pub path: OwnedObjectPath,
}

struct FakeManager {
    registrations: mpsc::UnboundedSender<Registration>,
    refuse: bool,
}

#[interface(name = "io.scanbind.AgentManager1")]
impl FakeManager {
    fn register_agent(
        &self,
        #[zbus(header)] header: zbus::message::Header<'_>,
        agent: OwnedObjectPath,
        _options: HashMap<String, OwnedValue>,
    ) -> Result<(), scanbind_ipc::Error> {
        let sender = header.sender().unwrap().to_owned().into();
        let _ = self.registrations.send(Registration {
            sender,
            path: agent,
        });
        if self.refuse {
            return Err(scanbind_ipc::Error::NotAllowed(
                "this agent is not trusted".into(),
            ));
        }
        Ok(())
    }
}

struct FakeDaemon1 {
    bindings: mpsc::UnboundedSender<String>,
}

#[interface(name = "io.scanbind.Daemon1")]
impl FakeDaemon1 {
    fn start_binding(
        &self,
        wallet: String,
        _options: HashMap<String, OwnedValue>,
    ) -> OwnedObjectPath {
        let _ = self.bindings.send(wallet);
        OwnedObjectPath::try_from("/io/scanbind/Daemon1/binding/fresh_1").unwrap()
    }
}

/// The test's stand-in for scanbindd's side of the agent protocol.
pub struct FakeDaemon {
    /// Its connection (owner of `io.scanbind.Daemon`).
    pub conn: Connection,
    /// Registrations, in order.
    pub registrations: mpsc::UnboundedReceiver<Registration>,
    /// Wallets passed to `StartBinding`, in order.
    pub bindings: mpsc::UnboundedReceiver<String>,
}

impl FakeDaemon {
    /// Owns `io.scanbind.Daemon` on `bus` and serves the stand-in objects.
    pub async fn start(bus: &PrivateBus) -> FakeDaemon {
        FakeDaemon::start_with(bus, false).await
    }

    /// Like [`FakeDaemon::start`], but `RegisterAgent` answers `NotAllowed`.
    pub async fn start_refusing(bus: &PrivateBus) -> FakeDaemon {
        FakeDaemon::start_with(bus, true).await
    }

    async fn start_with(bus: &PrivateBus, refuse: bool) -> FakeDaemon {
        let (reg_tx, registrations) = mpsc::unbounded_channel();
        let (bind_tx, bindings) = mpsc::unbounded_channel();
        let conn = zbus::connection::Builder::address(bus.address())
            .unwrap()
            .serve_at(
                scanbind_ipc::DAEMON_PATH,
                FakeManager {
                    registrations: reg_tx,
                    refuse,
                },
            )
            .unwrap()
            .serve_at(scanbind_ipc::DAEMON_PATH, FakeDaemon1 { bindings: bind_tx })
            .unwrap()
            .name(scanbind_ipc::BUS_NAME)
            .unwrap()
            .build()
            .await
            .unwrap();
        FakeDaemon {
            conn,
            registrations,
            bindings,
        }
    }

    /// Waits for the next `RegisterAgent`.
    pub async fn next_registration(&mut self) -> Registration {
        tokio::time::timeout(GUARD, self.registrations.recv())
            .await
            .expect("no RegisterAgent in time")
            .expect("stand-in gone")
    }

    /// A proxy to the registered agent, from the daemon's connection.
    pub async fn agent(&self, reg: &Registration) -> Agent1Proxy<'static> {
        Agent1Proxy::builder(&self.conn)
            .destination(reg.sender.clone())
            .unwrap()
            .path(reg.path.clone())
            .unwrap()
            .build()
            .await
            .unwrap()
    }
}
