//! `scanbindctl profiles` and the `apps` options of issue 7 as a user runs them: the
//! real binary changes the policy through a real daemon (`io.scanbind.Manager1`), which
//! writes a real `policy.toml` that its own parser then reads. Bad input exits 2 with
//! a reason and leaves the file byte for byte as it was.

mod json_style;
mod policy_daemon;

use policy_daemon::PolicyDaemon;

use std::path::Path;
use std::process::Command;

use scanbind_policy::{AboveCap, PolicyFile};
use serde_json::Value;

const CTL: &str = env!("CARGO_BIN_EXE_scanbindctl");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(CTL)
        .args(args)
        // Only the daemon named with --socket.
        .env("SCANBIND_SOCKET", "/nonexistent/scanbind.sock")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

fn parsed(path: &Path) -> PolicyFile {
    PolicyFile::parse(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

#[test]
fn profiles_round_trip_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("scanbind/policy.toml");
    let daemon = PolicyDaemon::start(&policy);
    let p = daemon.socket();
    ok(&["profiles", "--socket", p, "add", "parent"]);
    ok(&[
        "profiles",
        "--socket",
        p,
        "add",
        "kids",
        "--kid",
        "--limit",
        "hkd",
        "--daily",
        "50",
        "--monthly",
        "200.50",
    ]);
    // Changing one limit keeps the others; kid stays.
    ok(&[
        "profiles",
        "--socket",
        p,
        "add",
        "kids",
        "--limit",
        "HKD",
        "--per-payment",
        "20",
    ]);
    ok(&["profiles", "--socket", p, "use", "kids"]);
    let file = parsed(&policy);
    assert_eq!(file.active_profile.as_deref(), Some("kids"));
    let kids = &file.profiles["kids"];
    assert!(kids.kid);
    assert_eq!(kids.limits["HKD"].daily, Some(5_000));
    assert_eq!(kids.limits["HKD"].monthly, Some(20_050));
    assert_eq!(kids.limits["HKD"].per_payment, Some(2_000));
    assert!(!file.profiles["parent"].kid);
    assert!(file.profiles["parent"].limits.is_empty());

    // JSON and text listings.
    let list: Value =
        serde_json::from_str(&ok(&["--json", "profiles", "--socket", p, "list"])).unwrap();
    json_style::assert_camel_case(&list);
    assert_eq!(list["active"], "kids");
    assert_eq!(list["profiles"]["kids"]["kid"], true);
    assert_eq!(list["profiles"]["kids"]["limits"]["HKD"]["daily"], 5_000);
    let text = ok(&["profiles", "--socket", p, "list"]);
    assert!(text.contains("active profile: kids"), "{text}");
    assert!(text.contains("daily HKD 50.00"), "{text}");

    // Bad input: exit 2, a reason, the file unchanged.
    let before = std::fs::read_to_string(&policy).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["use", "guest"],
            "no profile \"guest\" (profiles: kids, parent)",
        ),
        (&["remove", "guest"], "no profile \"guest\""),
        (&["remove", "kids"], "kids is the active profile"),
        (
            &["add", "kids", "--limit", "HKD", "--daily", "-5"],
            "a limit must be a positive amount",
        ),
        (
            &["add", "kids", "--limit", "HKD", "--daily=-5"],
            "--daily -5: a limit must be a positive amount of HKD",
        ),
        (
            &["add", "kids", "--limit", "HKD", "--daily", "1.999"],
            "HKD has 2 decimal places",
        ),
        (
            &["add", "kids", "--limit", "KRW", "--daily", "10.5"],
            "KRW has 0 decimal places",
        ),
        (
            &["add", "kids", "--limit", "HKD", "--daily", "0"],
            "more than zero",
        ),
        (
            &["add", "kids", "--limit", "XYZ", "--daily", "1"],
            "not an ISO 4217 currency code",
        ),
        (&["add", "kids", "--limit", "HKD"], "at least one of"),
        (&["add", "kids", "--daily", "1"], "need --limit CURRENCY"),
        (&["add", "kids", "--kid", "--no-kid"], "cannot be used with"),
        (&["add", "two words"], "not a profile name"),
        (&["add", ""], "not a profile name"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["profiles", "--socket", p];
        full.extend_from_slice(args);
        let (code, _, err) = run(&full);
        assert_eq!(code, 2, "{args:?} exited {code}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: {expected:?} not in {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&policy).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }

    // Switching off, then removing.
    ok(&["profiles", "--socket", p, "none"]);
    assert_eq!(parsed(&policy).active_profile, None);
    ok(&["profiles", "--socket", p, "remove", "kids"]);
    let file = parsed(&policy);
    assert!(!file.profiles.contains_key("kids"));
    assert!(file.profiles.contains_key("parent"));
    // `use` with no profiles at all says how to add one.
    ok(&["profiles", "--socket", p, "remove", "parent"]);
    let (code, _, err) = run(&["profiles", "--socket", p, "use", "kids"]);
    assert_eq!(code, 2);
    assert!(err.contains("profiles add NAME"), "{err}");
}

#[test]
fn a_file_the_daemon_would_refuse_is_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let bad = "[apps.\"/g\".limits.HKD]\nper_payment = -5\n";
    std::fs::write(&policy, bad).unwrap();
    let daemon = PolicyDaemon::start(&policy);
    // The daemon refuses to change a policy it cannot read (exit 4), naming the key.
    let (code, _, err) = run(&["profiles", "--socket", daemon.socket(), "add", "a"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("per_payment"), "{err}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), bad);
}

#[test]
fn without_the_daemon_nothing_is_changed_and_it_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-daemon.sock");
    for args in [
        &["apps", "list"][..],
        &["apps", "allow", "/usr/bin/game"],
        &["profiles", "add", "kids"],
    ] {
        let mut full = vec!["--socket", socket.to_str().unwrap()];
        full.extend_from_slice(args);
        let (code, _, err) = run(&full);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(
            err.contains("through scanbindd (io.scanbind.Manager1), which cannot be reached"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn apps_confirm_above_cap_and_trusted_agents() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let daemon = PolicyDaemon::start(&policy);
    let p = daemon.socket();
    ok(&[
        "apps",
        "--socket",
        p,
        "allow",
        "/usr/bin/game",
        "--confirm",
        "--above-cap",
        "order-code",
    ]);
    ok(&[
        "apps",
        "--socket",
        p,
        "limit",
        "/usr/bin/game",
        "HKD",
        "--per-payment",
        "100",
    ]);
    let file = parsed(&policy);
    let rule = &file.apps["/usr/bin/game"];
    assert!(rule.confirm);
    assert_eq!(rule.above_cap, AboveCap::OrderCode);
    assert_eq!(rule.limits["HKD"].per_payment, Some(10_000));
    // Allowing again without the flags keeps them; the flags turn them off.
    ok(&["apps", "--socket", p, "allow", "/usr/bin/game"]);
    assert!(parsed(&policy).apps["/usr/bin/game"].confirm);
    ok(&[
        "apps",
        "--socket",
        p,
        "allow",
        "/usr/bin/game",
        "--no-confirm",
        "--above-cap",
        "refuse",
    ]);
    let file = parsed(&policy);
    assert!(!file.apps["/usr/bin/game"].confirm);
    assert_eq!(file.apps["/usr/bin/game"].above_cap, AboveCap::Refuse);

    ok(&[
        "apps",
        "--socket",
        p,
        "trust-agent",
        "--uid",
        "1000",
        "--exe",
        "/opt/tv/shell",
    ]);
    // Twice is once.
    ok(&[
        "apps",
        "--socket",
        p,
        "trust-agent",
        "--uid",
        "1000",
        "--exe",
        "/opt/tv/shell",
    ]);
    let file = parsed(&policy);
    assert_eq!(file.trusted_agents.len(), 1);
    assert_eq!(file.trusted_agents[0].uid, 1000);
    assert_eq!(file.trusted_agents[0].exe, Path::new("/opt/tv/shell"));
    let text = ok(&["apps", "--socket", p, "list"]);
    assert!(
        text.contains("trusted display agent: uid 1000 /opt/tv/shell"),
        "{text}"
    );

    let before = std::fs::read_to_string(&policy).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["trust-agent", "--uid", "1000", "--exe", "shell"],
            "must be an absolute path",
        ),
        (&["trust-agent", "--uid", "-1", "--exe", "/x"], "error"),
        (
            &["untrust-agent", "--uid", "1001", "--exe", "/opt/tv/shell"],
            "no trusted display agent",
        ),
        (
            &["allow", "/usr/bin/game", "--above-cap", "ask"],
            "invalid value",
        ),
        (
            &["allow", "/usr/bin/game", "--confirm", "--no-confirm"],
            "cannot be used with",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["apps", "--socket", p];
        full.extend_from_slice(args);
        let (code, _, err) = run(&full);
        assert_eq!(code, 2, "{args:?} exited {code}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: {expected:?} not in {err}"
        );
        assert_eq!(std::fs::read_to_string(&policy).unwrap(), before);
    }
    ok(&[
        "apps",
        "--socket",
        p,
        "untrust-agent",
        "--uid",
        "1000",
        "--exe",
        "/opt/tv/shell",
    ]);
    assert!(parsed(&policy).trusted_agents.is_empty());
}
