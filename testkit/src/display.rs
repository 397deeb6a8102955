//! A virtual screen for the window display agent ([`Xvfb`]), and `xdotool` to press
//! its keys: what a person does with a TV remote.
//!
//! `Xvfb` runs as this process's user (root in CI) without `-auth`, so any local user
//! may connect to it: the agent runs as its own system user (`sbagent`) in the
//! system-mode tests. Ready when it reports its display number on `-displayfd`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

/// Whether `Xvfb` and `xdotool` are installed; panics with what is missing otherwise.
pub fn require_display_tools() {
    let missing: Vec<&str> = ["Xvfb", "xdotool"]
        .into_iter()
        .filter(|t| !crate::on_path(t))
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} (Debian: xvfb, xdotool)",
        missing.join(", ")
    );
}

/// An Xvfb server (1280×720, 24 bits) on a display number it picks itself. Killed on
/// drop.
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts one and waits until it reports its display.
    pub fn start() -> crate::Result<Xvfb> {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x720x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(crate::io("cannot start Xvfb"))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let n = line.trim();
        if n.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(crate::Error::Process("Xvfb reported no display".into()));
        }
        let display = format!(":{n}");
        Ok(Xvfb { child, display })
    }

    /// `:N`, for `DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Runs `xdotool ARGS` on this display; panics unless it succeeded.
    pub fn xdotool(&self, args: &[&str]) {
        let status = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .expect("cannot run xdotool");
        assert!(status.success(), "xdotool {args:?} failed");
    }

    /// Focuses the window named exactly `name`, waiting for it to exist (no window
    /// manager runs here).
    pub fn focus(&self, name: &str) {
        let pattern = format!("^{name}$");
        self.xdotool(&[
            "search",
            "--sync",
            "--name",
            &pattern,
            "windowfocus",
            "--sync",
        ]);
    }

    /// Presses keys (xdotool key names) one after the other.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["key", "--delay", "30"];
        args.extend_from_slice(keys);
        self.xdotool(&args);
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
