//! `scanbindctl demo`: runs the demo program, `scanbind-demo`, with the same options.
//!
//! The demo runs the daemon, the merchant server and the sandbox in its own process
//! (`demo/`); `scanbindctl` is what ships to devices and carries none of them. So this
//! command finds `scanbind-demo` next to its own executable (both come out of the same
//! `cargo build`), else on `PATH`, and replaces itself with it (`exec`: the demo's output,
//! signals and exit status are the command's). Run from the source tree with
//! `cargo run --bin scanbindctl -- demo`, where cargo sets `CARGO`, it first builds the
//! demo program once, in the same profile as itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::exit;
use scanbindctl::demo_args::DemoArgs;

/// The demo program's file name.
const DEMO: &str = "scanbind-demo";

/// Runs `scanbind-demo` with `args` (and `-v` `verbose` times); returns only on failure.
pub fn run(args: &DemoArgs, verbose: u8, json: bool) -> anyhow::Result<()> {
    if json {
        return Err(exit::usage(
            "the demo prints for people only; --json is not supported",
        ));
    }
    let own = std::env::current_exe().context("finding scanbindctl's own executable")?;
    let program = match find(&own) {
        Some(p) => p,
        None => build(&own)?,
    };
    let mut cmd = Command::new(&program);
    cmd.args(std::iter::repeat_n(
        OsString::from("-v"),
        usize::from(verbose),
    ))
    .args(args.to_args());
    exec(cmd, &program)
}

/// `scanbind-demo` next to `own`, else on `PATH`.
fn find(own: &Path) -> Option<PathBuf> {
    let beside = own.parent().map(|dir| dir.join(DEMO));
    beside.filter(|p| executable(p)).or_else(|| {
        let paths = std::env::var_os("PATH")?;
        std::env::split_paths(&paths)
            .map(|dir| dir.join(DEMO))
            .find(|p| executable(p))
    })
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Builds `scanbind-demo` with the cargo that ran us (`CARGO`), in the profile `own`
/// was built in, and returns it; or says what to do when we were not run by cargo.
fn build(own: &Path) -> anyhow::Result<PathBuf> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        anyhow::bail!(
            "scanbindctl demo runs the demo program {DEMO}, which is not installed (looked next \
             to {} and on PATH). The shipped scanbindctl carries no daemon, server or sandbox; \
             the demo does. In the source tree run `cargo run --release --bin scanbindctl -- \
             demo` (it builds the demo program first), or build it with `cargo build --release \
             -p scanbind-demo` and put {DEMO} next to scanbindctl or on PATH",
            own.display()
        );
    };
    let profile = own
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--locked", "-p", DEMO, "--bin", DEMO]);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    // The workspace of the scanbindctl cargo runs (cargo run sets it), wherever we are.
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        cmd.arg("--manifest-path")
            .arg(Path::new(&dir).join("Cargo.toml"));
    }
    eprintln!("scanbindctl demo: building the demo program ({DEMO}, once) …");
    let status = cmd
        .status()
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    anyhow::ensure!(status.success(), "building {DEMO} failed ({status})");
    find(own).with_context(|| {
        format!(
            "built {DEMO}, but it is not next to {} (another target directory?)",
            own.display()
        )
    })
}

/// Replaces this process with `cmd`.
fn exec(mut cmd: Command, program: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let e = cmd.exec();
    Err(e).with_context(|| format!("running {}", program.display()))
}
