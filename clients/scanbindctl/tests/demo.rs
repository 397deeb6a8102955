//! `scanbindctl demo` as a user runs it: the real binary, end to end, running the demo
//! program (`scanbind-demo`) with its own private `dbus-daemon` and gnome-keyring
//! (needs `dbus-daemon` and `gnome-keyring-daemon` on PATH, as `scripts/test` ensures).

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

#[test]
fn demo_walks_through_the_product_and_cleans_up() {
    let (ok, _, stdout, stderr) = demo(&[], &[]);
    assert!(ok, "demo failed:\n{stdout}\n{stderr}");
    for line in [
        "gnome-keyring (Secret Service) on it, unlocked",
        "scanbindd serving io.scanbind.Daemon on the private bus",
        "link to the merchant server online",
        "Match code: ",
        "phone: approved",
        "bound: ALIPAY_HK",
        "One-click payment of HKD 49.00",
        "the same payment, no second charge",
        ": succeeded",
        "receipt verified: EdDSA signature",
        "claims: order demo-order-",
        "rejected (as it must be)",
        "RequestRefund(HKD 24.50)",
        "refunded: HKD 24.50 of HKD 49.00",
        "money moved 1×",
        "paid by scan: succeeded, receipt verified, delivered",
        "part 0: STUDIO (Sofa Studio Games) HKD 49.00: succeeded, its own receipt verified",
        "part 1: ADDONS (Night Map Workshop) HKD 24.50: succeeded, its own receipt verified",
        "refunded part 1 (ADDONS) in full: HKD 24.50",
        "exactly one charge per order and seller, and one refund each asked for",
        "Error.NotBound (as it must)",
        "stopped scanbindd, the merchant server and the sandbox",
        "Done: ",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(stdout.contains('█'), "the QR is drawn in the terminal");
    let dir = temp_dir_of(&stdout);
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is left behind");
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

#[test]
fn without_a_keyring_the_demo_says_what_to_install() {
    // A PATH with dbus-daemon but no gnome-keyring-daemon, and no session bus.
    let dir = tempfile::tempdir().unwrap();
    let which = Command::new("sh")
        .args(["-c", "command -v dbus-daemon"])
        .output()
        .unwrap();
    let dbus_daemon = String::from_utf8_lossy(&which.stdout).trim().to_owned();
    assert!(!dbus_daemon.is_empty(), "dbus-daemon is not installed");
    std::os::unix::fs::symlink(&dbus_daemon, dir.path().join("dbus-daemon")).unwrap();
    let path = dir.path().display().to_string();
    let (ok, _, stdout, stderr) = demo(
        &[],
        &[
            ("PATH", &path),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
        ],
    );
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("sudo apt install gnome-keyring"),
        "{stderr}"
    );
    // And without dbus-daemon it names both packages.
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, _, stderr) = demo(&[], &[("PATH", &empty.path().display().to_string())]);
    assert!(!ok);
    assert!(
        stderr.contains("sudo apt install dbus-daemon gnome-keyring"),
        "{stderr}"
    );
}
