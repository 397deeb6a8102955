//! [`run_child_test`]: re-runs one test of the current test binary in a child process
//! with extra environment (for tests that need another D-Bus address, or that kill the
//! child), and reads its output line by line.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a child test may take before it is killed and the parent test fails.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// A child process running exactly one test of the current test binary.
#[derive(Debug)]
pub struct ChildTest {
    /// The child (kill it, wait for it).
    pub child: Child,
    /// Its stdout, line by line, from a reader thread (the test runs with
    /// `--nocapture`); closed when the child's stdout closes.
    lines: Receiver<String>,
}

/// Starts the current test binary with only the test `name` (exact match), with
/// `--nocapture`, the given extra environment, and `remove` taken out of it.
pub fn run_child_test(
    name: &str,
    env: &[(&str, &str)],
    remove: &[&str],
) -> std::io::Result<ChildTest> {
    let exe: PathBuf = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(ChildTest { child, lines })
}

impl ChildTest {
    /// Waits (at most [`CHILD_TIMEOUT`]) for a stdout line ending in `marker`; returns
    /// whether it came before the child's stdout closed.
    pub fn wait_for_line(&mut self, marker: &str) -> bool {
        let deadline = Instant::now() + CHILD_TIMEOUT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                // libtest prints "test <name> ... " without a newline before the test runs.
                Ok(line) if line.trim_end().ends_with(marker) => return true,
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("child test printed no {marker:?} within {CHILD_TIMEOUT:?}; killed it");
                }
            }
        }
    }

    /// Waits (at most [`CHILD_TIMEOUT`]) for the child to finish and returns its
    /// stdout; panics unless it exited successfully having run exactly one passing
    /// test.
    pub fn expect_one_pass(mut self) -> String {
        let deadline = Instant::now() + CHILD_TIMEOUT;
        let mut out = String::new();
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    out.push_str(&line);
                    out.push('\n');
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "child test did not finish within {CHILD_TIMEOUT:?}; killed it. Output:\n{out}"
                    );
                }
            }
        }
        let status = self.child.wait().expect("child exit status");
        assert!(
            status.success(),
            "child test failed ({status}); its output:\n{out}"
        );
        assert!(
            out.contains("test result: ok. 1 passed"),
            "the child ran no test (wrong name?); its output:\n{out}"
        );
        out
    }
}
