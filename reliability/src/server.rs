//! `scanbind-server` as a child process: started from its environment, ready when it
//! prints `listening on URL`, killable with SIGKILL.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `scanbind-server`.
#[derive(Debug)]
pub struct ServerProc {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    /// Its log file (stderr).
    pub log: PathBuf,
}

impl ServerProc {
    /// Spawns the server with exactly `env` as its `SCANBIND_SERVER_*` variables and
    /// `SCANBIND_LOG=log_level`; returns once it listens.
    pub fn spawn(
        binary: &Path,
        env: &[(String, String)],
        log: &Path,
        log_level: &str,
    ) -> crate::Result<Self> {
        let mut cmd = Command::new(binary);
        for (k, _) in std::env::vars() {
            if k.starts_with("SCANBIND_SERVER_") {
                cmd.env_remove(k);
            }
        }
        let file = std::fs::File::create(log).map_err(crate::io("create the server log"))?;
        cmd.envs(env.iter().cloned())
            .env("SCANBIND_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file));
        let mut child = cmd.spawn().map_err(crate::io("spawn scanbind-server"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(crate::io("read the server's first line"))?;
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(crate::Error::Process(format!(
                "scanbind-server did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )));
        };
        Ok(ServerProc {
            child,
            base: base.to_owned(),
            log: log.to_owned(),
        })
    }

    /// `kill -9` and reap.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (blocking) until the process ends by itself — a crash point — and reaps
    /// it; its exit status.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for scanbind-server")
    }

    /// The log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
