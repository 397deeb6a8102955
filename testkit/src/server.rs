//! `scanbind-server` as a child process ([`ServerProc`]): started from its environment,
//! ready when it prints `listening on URL` and `admin listening on URL` (the devices'
//! public listener and the operator listener, within [`GUARD`]), killable with SIGKILL.
//!
//! `SCANBIND_BENCH_WRAP="valgrind --tool=callgrind ..."` runs the server under that
//! command, in a process group of its own (see server/README.md, "Benchmarks").

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::wait::GUARD;
use crate::{Error, Result};

/// A running `scanbind-server`. Killed on drop.
#[derive(Debug)]
pub struct ServerProc {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`): the devices' public listener.
    pub base: String,
    /// The base URL of its operator listener (`/metrics`, `/admin/v1`).
    pub admin: String,
    /// Its log file (stderr).
    pub log: PathBuf,
}

impl ServerProc {
    /// Spawns `binary` with `SCANBIND_LOG=log_level`, then `env` (which may override
    /// it) as its `SCANBIND_SERVER_*` variables (none inherited); returns once it
    /// listens. A server that prints nothing within [`GUARD`] is killed and an error.
    pub fn spawn(
        binary: &Path,
        env: &[(String, String)],
        log: &Path,
        log_level: &str,
    ) -> Result<Self> {
        // Profiling hook: the server under SCANBIND_BENCH_WRAP's command.
        let wrap = std::env::var("SCANBIND_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut cmd = match words.next() {
            Some(first) => {
                let mut c = Command::new(first);
                c.args(words).arg(binary);
                // Its own process group, so that `terminate` reaches the wrapper and the
                // server both.
                std::os::unix::process::CommandExt::process_group(&mut c, 0);
                c
            }
            None => Command::new(binary),
        };
        for (k, _) in std::env::vars() {
            if k.starts_with("SCANBIND_SERVER_") {
                cmd.env_remove(k);
            }
        }
        let file = std::fs::File::create(log).map_err(crate::io("create the server log"))?;
        // The log level first, so that a caller's SCANBIND_LOG in `env` wins.
        cmd.env("SCANBIND_LOG", log_level)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file));
        let mut child = cmd.spawn().map_err(crate::io("spawn scanbind-server"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        // Readiness: the server prints this line once its socket accepts.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
        });
        let lines = rx.recv_timeout(GUARD).unwrap_or_default();
        let mut lines = lines.lines();
        let base = lines
            .next()
            .and_then(|l| l.trim().strip_prefix("listening on "));
        let admin = lines
            .next()
            .and_then(|l| l.trim().strip_prefix("admin listening on "));
        let (Some(base), Some(admin)) = (base, admin) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Process(format!(
                "scanbind-server did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )));
        };
        Ok(ServerProc {
            child,
            base: base.to_owned(),
            admin: admin.to_owned(),
            log: log.to_owned(),
        })
    }

    /// Whether the process has exited (reaping it if so).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// `kill -9`, now, and reap (a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -9` and reap, consuming it.
    pub fn kill_9(mut self) {
        self.kill();
    }

    /// SIGTERM to the process group of a wrapped server (see `SCANBIND_BENCH_WRAP`),
    /// and waits for the exit (a profiler wrapping the server writes its output then).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.wait();
    }

    /// Waits (blocking, at most [`GUARD`]) until the process ends by itself — a crash
    /// point — and reaps it; its exit status. A process still running after the guard
    /// is killed and fails the test with its log.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        use wait_timeout::ChildExt as _;
        match self
            .child
            .wait_timeout(GUARD)
            .expect("wait for scanbind-server")
        {
            Some(status) => status,
            None => {
                self.kill();
                panic!(
                    "scanbind-server did not exit within {GUARD:?}: {}",
                    self.logs()
                )
            }
        }
    }

    /// The log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the process has used so far (user + system, clock ticks; Linux).
    pub fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(11) + n(12)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
