//! Shared by the agent tests: a running `scanbindctl agent` process.

#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::mpsc;

pub const CTL: &str = env!("CARGO_BIN_EXE_scanbindctl");
/// Names one more executable the agents accept as the daemon's.
pub const DAEMON_EXE_ENV: &str = "SCANBIND_DAEMON_EXE";

/// This test's executable: it plays (or embeds) the daemon, so the agents it starts
/// must accept it as the daemon's (`$SCANBIND_DAEMON_EXE`).
pub fn this_test() -> std::path::PathBuf {
    std::env::current_exe().unwrap()
}
/// The longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `scanbindctl agent`: stdin to answer, stdout lines on a channel.
pub struct AgentProcess {
    /// Taken by [`AgentProcess::exit_code`].
    pub child: Option<Child>,
    pub stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: tempfile::NamedTempFile,
}

impl AgentProcess {
    pub fn start(address: &str, json: bool) -> AgentProcess {
        AgentProcess::start_with(&["--address", address], json)
    }

    /// With other connection options (`--socket PATH`).
    pub fn start_with(conn: &[&str], json: bool) -> AgentProcess {
        AgentProcess::start_full(conn, json, Stdio::piped())
    }

    /// With `stdin` (a terminal) instead of a pipe.
    pub fn start_full(conn: &[&str], json: bool, stdin: Stdio) -> AgentProcess {
        AgentProcess::start_for(conn, json, stdin, Some(&this_test()))
    }

    /// For a daemon running `daemon_exe` (`$SCANBIND_DAEMON_EXE`); `None`: only the
    /// real scanbindd (installed or beside scanbindctl).
    pub fn start_for(
        conn: &[&str],
        json: bool,
        stdin: Stdio,
        daemon_exe: Option<&std::path::Path>,
    ) -> AgentProcess {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(CTL);
        match daemon_exe {
            Some(exe) => cmd.env(DAEMON_EXE_ENV, exe),
            None => cmd.env_remove(DAEMON_EXE_ENV),
        };
        cmd.args(conn);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .arg("agent")
            .env_remove("SCANBIND_SOCKET")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.reopen().unwrap()))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        AgentProcess {
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    pub async fn line(&mut self) -> String {
        match tokio::time::timeout(WAIT, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the agent's stdout closed; stderr:\n{}", self.stderr()),
            Err(_) => panic!("no line from the agent in time; stderr:\n{}", self.stderr()),
        }
    }

    /// The next line that contains `text`.
    pub async fn line_with(&mut self, text: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.contains(text);
            seen.push(line);
            if done {
                return seen;
            }
        }
    }

    pub async fn event(&mut self) -> Json {
        let line = self.line().await;
        let event =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        crate::json_style::assert_camel_case(&event);
        event
    }

    /// The next event, which must be `kind`.
    pub async fn expect(&mut self, kind: &str) -> Json {
        let e = self.event().await;
        assert_eq!(e["event"], kind, "{e}");
        e
    }

    pub fn answer(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the exit (bounded) and returns the exit code and what was on stderr.
    pub async fn exit_code(mut self) -> (i32, String) {
        let mut child = self.child.take().expect("still running");
        let status = tokio::time::timeout(
            WAIT,
            tokio::task::spawn_blocking(move || child.wait().unwrap()),
        )
        .await
        .expect("the agent did not exit in time")
        .unwrap();
        (status.code().unwrap_or(-1), self.stderr())
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
