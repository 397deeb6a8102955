//! `scanbindctl demo` as a user runs it: the real binary, end to end.

use std::process::Command;

fn demo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scanbindctl"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_runs_the_whole_flow_and_charges_once() {
    let (ok, stdout, stderr) = demo(&[]);
    assert!(ok, "demo failed:\n{stdout}\n{stderr}");
    for line in [
        "notifyAuthorization AUTHCODE_CREATED received, signature verified",
        "pay: SUCCESS",
        "same payment returned, no second charge",
        "notifyPayment SUCCESS received, signature verified",
        "refund HKD 24.50: SUCCESS",
        "pay with the revoked token: INVALID_ACCESS_TOKEN",
        "money moved 1×",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(stdout.contains('█'), "the QR is drawn in the terminal");
}

#[test]
fn demo_other_wallet_uses_its_currency_and_exponent() {
    let (ok, stdout, stderr) = demo(&["--wallet", "KAKAOPAY", "--amount", "5000"]);
    assert!(ok, "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("One-click payment of KRW 5000"), "{stdout}");
    assert!(stdout.contains("refund KRW 2500: SUCCESS"), "{stdout}");
}

#[test]
fn demo_refuses_bad_input_with_a_clear_error() {
    let (ok, _, stderr) = demo(&["--wallet", "PAYPAY"]);
    assert!(!ok);
    assert!(stderr.contains("not a Scan to Bind wallet"), "{stderr}");
    let (ok, _, stderr) = demo(&["--amount", "49.001"]);
    assert!(!ok);
    assert!(stderr.contains("HKD has 2 decimal places"), "{stderr}");
    let (ok, _, stderr) = demo(&["--amount=-5"]);
    assert!(!ok);
    assert!(stderr.contains("--amount"), "{stderr}");
}
