//! The product binaries the suite runs: built once per test process with cargo
//! (`scanbindd` and `scanbind-server`, both with their `test-util` crash points), then hard-linked
//! into a private directory so that a concurrent build replacing `target/debug/*`
//! cannot swap a binary under a running test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Paths of the product binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `scanbindd`, built with the `test-util` feature (crash points).
    pub daemon: PathBuf,
    /// `scanbind-server`, built with the `test-util` feature (crash points).
    pub server: PathBuf,
}

/// Builds (once per process) and returns the binaries; with `SCANBIND_RELIABILITY_BINS`
/// set, takes them from that directory instead (no build). Panics when the build fails:
/// this is test-fixture code.
pub fn binaries() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| build().unwrap_or_else(|e| panic!("building the product binaries: {e}")))
}

fn build() -> crate::Result<Binaries> {
    // Prebuilt binaries (e.g. a release build, or while the tree does not build).
    if let Some(dir) = std::env::var_os("SCANBIND_RELIABILITY_BINS") {
        let dir = PathBuf::from(dir);
        return Ok(Binaries {
            daemon: dir.join("scanbindd"),
            server: dir.join("scanbind-server"),
        });
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // One build per package: with both packages in one `cargo build`, the
    // `scanbindd/test-util` feature did not reach the `scanbindd` binary (cargo 1.95).
    for package in ["scanbindd", "scanbind-server"] {
        let status = Command::new(&cargo)
            .args([
                "build",
                "--quiet",
                "--locked",
                "-p",
                package,
                "--features",
                "test-util",
                "--bin",
                package,
            ])
            .current_dir(manifest)
            .status()
            .map_err(crate::io("run cargo build"))?;
        if !status.success() {
            return Err(crate::Error::Process(format!(
                "cargo build -p {package}: {status}"
            )));
        }
    }
    let target = target_dir(manifest);
    let tmp = target.join("tmp");
    // Links left by earlier, finished test processes (they pin old inodes).
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("scanbind-reliability-bins-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let private = tmp.join(format!("scanbind-reliability-bins-{}", std::process::id()));
    std::fs::create_dir_all(&private).map_err(crate::io("create the binaries dir"))?;
    let link = |name: &str| -> crate::Result<PathBuf> {
        let from = target.join("debug").join(name);
        let to = private.join(name);
        let _ = std::fs::remove_file(&to);
        std::fs::hard_link(&from, &to)
            .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
            .map_err(crate::io(format!("link {}", from.display())))?;
        Ok(to)
    };
    Ok(Binaries {
        daemon: link("scanbindd")?,
        server: link("scanbind-server")?,
    })
}

/// The cargo target directory: `CARGO_TARGET_DIR`, else `<workspace>/target`.
fn target_dir(manifest: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("..").join("target"))
}
