//! `scanbindd` as a child process ([`DaemonProc`]): started by a [`DaemonCommand`]
//! (the binary is the caller's: each suite builds its own, with or without crash
//! points), ready when it prints [`READY_LINE`], killed on drop.
//!
//! Every start appends to `scanbindd.log` in the state directory, after a header line
//! `--- scanbindd ARGS ENV`, so a test can tell one start from the next.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::wait::GUARD;
use crate::{Error, Result};

/// What `scanbindd` prints on stdout once it serves its bus name.
pub const READY_LINE: &str = "scanbindd ready on io.scanbind.Daemon";

/// How to start a `scanbindd`: made by [`DaemonProc::command`], ended by
/// [`DaemonCommand::spawn`] or [`DaemonCommand::spawn_dev`].
#[derive(Debug, Clone)]
pub struct DaemonCommand {
    binary: PathBuf,
    wrapper: Option<(OsString, Vec<OsString>)>,
    state_dir: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    log_level: String,
    suite: String,
    guard: Option<Duration>,
}

impl DaemonCommand {
    /// `--address ADDRESS`: serve on that bus.
    pub fn address(self, bus_address: &str) -> Self {
        self.args(["--address", bus_address])
    }

    /// `--server URL`: the merchant server.
    pub fn server(self, url: &str) -> Self {
        self.args(["--server", url])
    }

    /// Runs the binary through `program ARGS -- BINARY ...` (e.g. `setpriv` to start it
    /// as another user, [`crate::system::daemon_setpriv`]).
    pub fn wrapper<I, S>(mut self, program: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper = Some((program.into(), args.into_iter().map(Into::into).collect()));
        self
    }

    /// More command-line arguments (e.g. `--p2p PATH --no-bus`), in order.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Extra environment (e.g. a crash point). `SCANBIND_LOG` and
    /// `SCANBIND_VAULT_SERVICE` are set after it, so those of [`Self::log_level`] and
    /// [`Self::suite`] win.
    pub fn envs(mut self, env: &[(&str, &str)]) -> Self {
        self.env
            .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// A variable of the test's own environment the daemon must not inherit
    /// (`SCANBINDD_CRASH_AT` never is).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env_remove.push(key.to_owned());
        self
    }

    /// `SCANBIND_LOG` (default `info,scanbindd=debug`).
    pub fn log_level(mut self, level: &str) -> Self {
        level.clone_into(&mut self.log_level);
        self
    }

    /// The suite's part of the keyring service name,
    /// `io.scanbind.Daemon.SUITE.STATE_DIR` (default `test`): one keyring namespace per
    /// state directory, so parallel tests never share a device key.
    pub fn suite(mut self, suite: &str) -> Self {
        suite.clone_into(&mut self.suite);
        self
    }

    /// The bound on the ready line and on [`DaemonProc::wait_exit`] (default
    /// [`GUARD`]); `None`: unbounded.
    pub fn guard(mut self, guard: Option<Duration>) -> Self {
        self.guard = guard;
        self
    }

    /// Starts the daemon and waits for [`READY_LINE`]. A daemon that prints anything
    /// else, or nothing within the guard, is killed and an error with its log.
    pub fn spawn(self) -> Result<DaemonProc> {
        let (mut proc, stdout) = self.start()?;
        let line = proc.lines(stdout, 1)?.remove(0);
        if line.trim() != READY_LINE {
            proc.kill();
            return Err(Error::Process(format!(
                "scanbindd did not start ({line:?}): {}",
                proc.logs()
            )));
        }
        Ok(proc)
    }

    /// Starts `scanbindd --dev` (its in-process sandbox and server): waits for its two
    /// lines (the sandbox's URL, then [`READY_LINE`]). Returns the process and the
    /// sandbox's base URL.
    pub fn spawn_dev(self) -> Result<(DaemonProc, String)> {
        let (mut proc, stdout) = self.args(["--dev"]).start()?;
        let mut lines = proc.lines(stdout, 2)?;
        let ready = lines.pop().unwrap_or_default();
        let first = lines.pop().unwrap_or_default();
        let sandbox = first
            .split_whitespace()
            .skip_while(|w| *w != "sandbox")
            .nth(1)
            .map(str::to_owned);
        match (sandbox, ready.trim()) {
            (Some(s), READY_LINE) => Ok((proc, s)),
            _ => {
                proc.kill();
                Err(Error::Process(format!(
                    "scanbindd --dev did not start ({first:?} {ready:?}): {}",
                    proc.logs()
                )))
            }
        }
    }

    fn start(self) -> Result<(DaemonProc, ChildStdout)> {
        let log = self.state_dir.join("scanbindd.log");
        let mut log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(crate::io("open the daemon log"))?;
        writeln!(log_file, "--- scanbindd {:?} {:?}", self.args, self.env)
            .map_err(crate::io("write the daemon log"))?;
        let mut cmd = match &self.wrapper {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg("--").arg(&self.binary);
                cmd
            }
            None => Command::new(&self.binary),
        };
        cmd.env_remove("SCANBINDD_CRASH_AT");
        for key in &self.env_remove {
            cmd.env_remove(key);
        }
        let mut child = cmd
            .args(&self.args)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .envs(self.env.iter().cloned())
            .env("SCANBIND_LOG", &self.log_level)
            .env(
                "SCANBIND_VAULT_SERVICE",
                format!(
                    "io.scanbind.Daemon.{}.{}",
                    self.suite,
                    self.state_dir.display()
                ),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(crate::io(format!("spawn {}", self.binary.display())))?;
        let stdout = child.stdout.take().expect("piped stdout");
        Ok((
            DaemonProc {
                child,
                log,
                guard: self.guard,
            },
            stdout,
        ))
    }
}

/// A running `scanbindd`. Killed on drop.
#[derive(Debug)]
pub struct DaemonProc {
    child: Child,
    /// Its log file (stderr; appended to by every start in the same state directory).
    pub log: PathBuf,
    guard: Option<Duration>,
}

impl DaemonProc {
    /// A command for `binary` keeping its state in `state_dir` (add the bus and the
    /// server to it).
    pub fn command(binary: &Path, state_dir: &Path) -> DaemonCommand {
        DaemonCommand {
            binary: binary.to_owned(),
            wrapper: None,
            state_dir: state_dir.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            log_level: "info,scanbindd=debug".to_owned(),
            suite: "test".to_owned(),
            guard: Some(GUARD),
        }
    }

    /// The first `n` lines of `out`, within the guard.
    fn lines(&mut self, out: ChildStdout, n: usize) -> Result<Vec<String>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(out);
            let mut lines = Vec::new();
            for _ in 0..n {
                let mut line = String::new();
                let _ = out.read_line(&mut line);
                lines.push(line);
            }
            let _ = tx.send(lines);
        });
        let lines = match self.guard {
            Some(guard) => rx.recv_timeout(guard).ok(),
            None => rx.recv().ok(),
        };
        lines.ok_or_else(|| {
            self.kill();
            Error::Process(format!(
                "scanbindd printed nothing within {:?}: {}",
                self.guard,
                self.logs()
            ))
        })
    }

    /// The log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, now, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to end by itself (a crash point); its exit status. A
    /// process still running after the guard fails the test with its log.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        use wait_timeout::ChildExt as _;
        let status = match self.guard {
            Some(guard) => self.child.wait_timeout(guard).expect("wait for scanbindd"),
            None => Some(self.child.wait().expect("wait for scanbindd")),
        };
        status.unwrap_or_else(|| {
            panic!(
                "scanbindd did not exit within {:?}: {}",
                self.guard,
                self.logs()
            )
        })
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        self.kill();
    }
}
