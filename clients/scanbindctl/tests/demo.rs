//! `scanbindctl demo` as a user runs it: the real binary, end to end, running the demo
//! program (`scanbind-demo`), once with its own private `dbus-daemon` and gnome-keyring
//! (needs `dbus-daemon` and `gnome-keyring-daemon` on PATH, as `scripts/test` ensures)
//! and once with both hidden from it, as on a machine with nothing installed but Rust
//! (the embedded broker and the daemon's file vault).

use std::process::Command;
use std::sync::Once;

const CTL: &str = env!("CARGO_BIN_EXE_scanbindctl");

/// Makes sure the demo program is beside `scanbindctl` before a test changes `PATH`:
/// `cargo test -p scanbindctl` builds only this package's binaries, and `scanbindctl
/// demo` builds `scanbind-demo` itself when cargo runs it (`CARGO` is set). A bad
/// wallet is refused by the demo program, so exit code 2 shows it ran.
fn demo_program_ready() {
    static READY: Once = Once::new();
    READY.call_once(|| {
        let out = Command::new(CTL)
            .args(["demo", "--wallet", "PAYPAY"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "scanbindctl demo did not run the demo program: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn demo(args: &[&str], env: &[(&str, &str)]) -> (bool, i32, String, String) {
    demo_program_ready();
    let mut cmd = Command::new(CTL);
    cmd.arg("demo").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The demo's temporary directory, from its output.
fn temp_dir_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split("removed ").nth(1))
        .expect("the demo says what it removed")
        .trim()
        .to_owned()
}

/// What every run of the walk-through prints, whichever bus and keyring it used.
const WALK_THROUGH: &[&str] = &[
    "== 0. Private D-Bus bus and keyring",
    "== 1. Embedded stack: sandbox, merchant server, scanbindd",
    "scanbindd serving io.scanbind.Daemon on the private bus",
    "== 2. The app connects to the daemon",
    "link to the merchant server online",
    "== 3. Bind the ALIPAY_HK wallet (Scan to Bind)",
    "Match code: ",
    "phone: approved",
    "bound: ALIPAY_HK",
    "One-click payment of HKD 49.00",
    "the same payment, no second charge",
    ": succeeded",
    "== 5. Signed receipt, verified against the server's published keys",
    "receipt verified: EdDSA signature",
    "claims: order demo-order-",
    "rejected (as it must be)",
    "goods delivered → Finish",
    "RequestRefund(HKD 24.50)",
    "refunded: HKD 24.50 of HKD 49.00",
    "paid by scan: succeeded, receipt verified, delivered",
    "part 0: STUDIO (Sofa Studio Games) HKD 49.00: succeeded, its own receipt verified",
    "part 1: ADDONS (Night Map Workshop) HKD 24.50: succeeded, its own receipt verified",
    "refunded part 1 (ADDONS) in full: HKD 24.50",
    "The app's payments (ListPayments):",
    "money moved 1×",
    "exactly one charge per order and seller, and one refund each asked for",
    "== 10. Subscription: renewed by the merchant server, the TV need not be on",
    "Error.NeedsConfirmation (an app may not unbind alone; the binding stays)",
    "Subscribe without a display agent → io.scanbind.Daemon1.Error.NeedsConfirmation",
    "Subscribe(Sofa TV Premium, HKD 49.00 a week) → ",
    "active, first week paid, renews at ",
    "the sandbox's clock moves on a week",
    "Changed(active, renewed)",
    "receipt verified (2 periods paid)",
    "Cancel → cancelled: no more charges, access kept until ",
    "== 11. Unbind",
    "the user approves on the display agent",
    "Error.NotBound (as it must)",
    "stopped scanbindd, the merchant server and the sandbox",
    "Done: ",
];

/// Asserts the whole walk-through, the QR, and that the temporary directory is gone.
fn assert_walk_through(stdout: &str) {
    for line in WALK_THROUGH {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(stdout.contains('█'), "the QR is drawn in the terminal");
    let dir = temp_dir_of(stdout);
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is left behind");
}

#[test]
fn demo_walks_through_the_product_and_cleans_up() {
    for tool in ["dbus-daemon", "gnome-keyring-daemon"] {
        assert!(
            scanbind_testkit::on_path(tool),
            "{tool} is not installed (scripts/test installs it)"
        );
    }
    let (ok, _, stdout, stderr) = demo(&[], &[]);
    assert!(ok, "demo failed:\n{stdout}\n{stderr}");
    for line in [
        "  D-Bus: private dbus-daemon\n",
        "  keyring: private gnome-keyring\n",
        "the Secret Service on the private bus, unlocked",
        "its secrets in the private gnome-keyring",
        "cleaned up: stopped the private gnome-keyring and the private dbus-daemon, removed ",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert_walk_through(&stdout);
}

/// A directory of symlinks to every program on this `PATH` except `hidden`: the same
/// machine without those installed.
fn path_without(hidden: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").expect("PATH is set");
    for entry in std::env::split_paths(&path)
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        let link = dir.path().join(&name);
        if hidden.iter().any(|h| name == **h) || link.symlink_metadata().is_ok() {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), link).unwrap();
    }
    dir
}

#[test]
fn without_dbus_daemon_and_gnome_keyring_the_demo_embeds_both() {
    demo_program_ready();
    let hidden = ["dbus-daemon", "gnome-keyring-daemon"];
    let bin = path_without(&hidden);
    let path = bin.path().display().to_string();
    // The check of the check: the tools really are hidden, and the rest is not.
    for tool in hidden {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(!found.status.success(), "{tool} is still on the PATH");
    }
    let (ok, _, stdout, stderr) = demo(
        &[],
        &[
            ("PATH", &path),
            // No session bus either: nothing of the demo may need one.
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
        ],
    );
    assert!(ok, "demo failed:\n{stdout}\n{stderr}");
    for line in [
        "  D-Bus: embedded broker (busd; no dbus-daemon found)\n",
        "  keyring: the daemon's file vault (no gnome-keyring found)\n",
        "its key random and held only in the demo's memory",
        "its secrets in its encrypted file vault",
        "cleaned up: stopped the embedded D-Bus broker, removed ",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert_walk_through(&stdout);
}

#[test]
fn demo_other_wallet_uses_its_currency_and_exponent() {
    let (ok, _, stdout, stderr) = demo(&["--wallet", "KAKAOPAY", "--amount", "5000"], &[]);
    assert!(ok, "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("One-click payment of KRW 5000"), "{stdout}");
    assert!(
        stdout.contains("refunded: KRW 2500 of KRW 5000"),
        "{stdout}"
    );
}

#[test]
fn demo_refuses_bad_input_with_a_clear_error() {
    let (ok, code, _, stderr) = demo(&["--wallet", "PAYPAY"], &[]);
    assert!(!ok && code == 2);
    assert!(stderr.contains("not a Scan to Bind wallet"), "{stderr}");
    let (ok, code, _, stderr) = demo(&["--amount", "49.001"], &[]);
    assert!(!ok && code == 2);
    assert!(stderr.contains("HKD has 2 decimal places"), "{stderr}");
    let (ok, code, _, stderr) = demo(&["--amount=-5"], &[]);
    assert!(!ok && code == 2);
    assert!(stderr.contains("--amount"), "{stderr}");
}
