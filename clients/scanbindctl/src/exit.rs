//! Exit codes and error reports.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | failure (anything not below) |
//! | 2 | bad arguments (clap's usage errors and our own checks) |
//! | 3 | the daemon cannot be reached (not running, no bus, socket refused) |
//! | 4 | the daemon refused the request (`io.scanbind.Daemon1.Error.*`) |
//! | 5 | the payment or binding completed without succeeding (failed, denied, expired) |
//! | 6 | timed out waiting for a result |

use std::process::ExitCode;

use crate::output::Output;

/// Failure (anything else).
pub const FAILURE: u8 = 1;
/// Bad arguments.
pub const USAGE: u8 = 2;
/// The daemon cannot be reached.
pub const UNREACHABLE: u8 = 3;
/// The daemon refused.
pub const REFUSED: u8 = 4;
/// Completed without success.
pub const NOT_SUCCEEDED: u8 = 5;
/// Timed out.
pub const TIMEOUT: u8 = 6;

/// An error with a chosen exit code. `message` empty: print nothing more (the
/// command already reported).
#[derive(Debug)]
pub struct Exit {
    /// The exit code.
    pub code: u8,
    /// What to print on stderr.
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// A bad-argument error (exit code 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: USAGE,
        message: message.into(),
    }
    .into()
}

/// An error with its own exit code.
pub fn with_code(code: u8, message: impl Into<String>) -> anyhow::Error {
    Exit {
        code,
        message: message.into(),
    }
    .into()
}

/// The exit code of an error: an [`Exit`] anywhere in the chain, else from a
/// `scanbind_client::Error`, else 1.
pub fn code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Exit>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<scanbind_client::Error>() {
            return match e {
                scanbind_client::Error::Connect { .. }
                | scanbind_client::Error::NotRunning(_)
                | scanbind_client::Error::Bus(_)
                | scanbind_client::Error::Disconnected(_) => UNREACHABLE,
                scanbind_client::Error::Daemon(_) => REFUSED,
                scanbind_client::Error::Money(_) => USAGE,
                _ => FAILURE,
            };
        }
        if cause
            .downcast_ref::<tokio::time::error::Elapsed>()
            .is_some()
        {
            return TIMEOUT;
        }
    }
    FAILURE
}

/// The D-Bus error name in an error's chain, for `--json` reports.
fn dbus_name(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|c| c.downcast_ref::<scanbind_client::Error>())
        .and_then(scanbind_client::Error::dbus_name)
}

/// Prints the error (text on stderr; with `--json` also a JSON document on stdout)
/// and turns the result into the exit code.
pub fn report(result: anyhow::Result<()>, out: Output) -> ExitCode {
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    let code = code_of(&err);
    let silent = err
        .downcast_ref::<Exit>()
        .is_some_and(|e| e.message.is_empty());
    if !silent {
        eprintln!("error: {err:#}");
        if out.json {
            let doc = serde_json::json!({
                "error": format!("{err:#}"),
                "errorName": dbus_name(&err),
                "exitCode": code,
            });
            println!("{doc}");
        }
    }
    ExitCode::from(code)
}
