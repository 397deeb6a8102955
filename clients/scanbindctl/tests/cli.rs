//! The device commands as a user runs them: the real `scanbindctl` binary against the
//! real daemon (the embedded stack in this test process: a private `dbus-daemon`, the
//! session's gnome-keyring, the development sandbox and merchant server, `scanbindd`).
//! Also the Python example (`clients/python/pay.py`, jeepney only) against the same
//! daemon, and bad input refused before anything is sent.
//!
//! Needs `KEYRING_SS_TEST=1` (and `SCANBIND_PYTHON` with jeepney for the Python test):
//! run it through `scripts/test`.

mod json_style;
mod policy_daemon;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use scanbind_demo::Embedded;
use scanbind_testkit::{PrivateBus, require_secret_service};
use serde_json::Value;

const CTL: &str = env!("CARGO_BIN_EXE_scanbindctl");

/// Runs `scanbindctl ARGS` (off the runtime: the daemon it talks to is in this
/// process) and returns (exit code, stdout, stderr).
async fn ctl(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(CTL)
            .args(&args)
            .env_remove("SCANBIND_SOCKET")
            .env_remove("SCANBIND_BUS_ADDRESS")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One `--json` document, checked for the one JSON style (camelCase keys).
fn json(s: &str) -> Value {
    let doc = serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"));
    json_style::assert_camel_case(&doc);
    doc
}

struct Env {
    _dir: tempfile::TempDir,
    bus: PrivateBus,
    embedded: Option<Embedded>,
}

impl Env {
    async fn start(name: &str) -> Env {
        require_secret_service();
        let dir = tempfile::tempdir().unwrap();
        let bus = PrivateBus::start(dir.path()).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let vault = format!("io.scanbind.Daemon.test.ctl.{name}.{}", std::process::id());
        // This test may register as the display agent (to approve an app's Unbind).
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, scanbind_testkit::agent::trusted_agent_toml()).unwrap();
        let embedded = Embedded::start_full(
            bus.address(),
            &state,
            &vault,
            None,
            Default::default(),
            Some(&policy),
        )
        .await
        .unwrap();
        Env {
            _dir: dir,
            bus,
            embedded: Some(embedded),
        }
    }

    fn embedded(&self) -> &Embedded {
        self.embedded.as_ref().unwrap()
    }

    async fn stop(mut self) {
        self.embedded.take().unwrap().shutdown().await.unwrap();
    }

    /// `bind --wallet ALIPAY_HK --json`, approved with `sandbox scan`.
    async fn bind(&self) -> Value {
        let mut child = Command::new(CTL)
            .args([
                "--address",
                self.bus.address(),
                "--json",
                "bind",
                "--wallet",
                "ALIPAY_HK",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first, rest) = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().unwrap().unwrap();
            (first, lines)
        })
        .await
        .unwrap();
        let pending = json(&first);
        assert_eq!(pending["state"], "pending", "{pending}");
        assert_eq!(pending["matchCode"].as_str().unwrap().len(), 6);
        let code = pending["codeValue"].as_str().unwrap().to_owned();
        let (rc, out, err) = ctl(&["sandbox", "scan", &code, "--json"]).await;
        assert_eq!(rc, 0, "{out}{err}");
        assert_eq!(json(&out)["outcome"], "approved");
        let (status, last) = tokio::task::spawn_blocking(move || {
            let last = rest.map(Result::unwrap).last().unwrap();
            (child.wait().unwrap(), last)
        })
        .await
        .unwrap();
        assert!(status.success(), "bind: {last}");
        let bound = json(&last);
        assert_eq!(bound["state"], "bound", "{bound}");
        bound
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_pay_refund_unbind_through_the_cli() {
    let env = Env::start("flow").await;
    let a = env.bus.address();
    let (rc, out, err) = ctl(&["--address", a, "--json", "status"]).await;
    assert_eq!(rc, 0, "{out}{err}");
    let status = json(&out);
    assert_eq!(status["status"]["version"], "0.1.0");

    let bound = env.bind().await;
    // Another wallet, declined on the phone: the sandbox records the denial.
    let (rc, out, err) = ctl(&[
        "--address",
        a,
        "--json",
        "bind",
        "--wallet",
        "GCASH",
        "--no-wait",
    ])
    .await;
    assert_eq!(rc, 0, "{out}{err}");
    let pending = json(out.lines().next().unwrap());
    let code = pending["codeValue"].as_str().unwrap();
    let (rc, out, err) = ctl(&["--json", "sandbox", "scan", code, "--deny"]).await;
    assert_eq!(rc, 0, "{out}{err}");
    assert_eq!(json(&out)["outcome"], "denied");
    let (rc, out, _) = ctl(&["--address", a, "status"]).await;
    assert_eq!(rc, 0);
    assert!(out.contains("ALIPAY_HK") && out.contains("bound"), "{out}");

    // Pay, with a receipt; the same order id again is the same payment.
    let pay = [
        "--address",
        a,
        "--json",
        "pay",
        "49.00",
        "HKD",
        "--description",
        "500 gems",
        "--order-id",
        "cli-1",
    ];
    let (rc, out, err) = ctl(&pay).await;
    assert_eq!(rc, 0, "{out}{err}");
    let paid = json(&out);
    assert_eq!(paid["state"], "succeeded", "{paid}");
    assert_eq!(paid["amountMinor"], 4900);
    let receipt = paid["receipt"].as_str().unwrap();
    let verifier = scanbind_client::ReceiptVerifier::fetch(env.embedded().server_url())
        .await
        .unwrap();
    let hkd = scanbind_client::money::Currency::from_code("HKD").unwrap();
    let claims = verifier
        .verify_payment(
            receipt,
            "cli-1",
            scanbind_client::money::Money::from_minor(hkd, 4900).unwrap(),
        )
        .unwrap();
    assert!(claims.app_id.ends_with("scanbindctl"), "{}", claims.app_id);
    let (rc, again, _) = ctl(&pay).await;
    assert_eq!(rc, 0);
    assert_eq!(json(&again)["payment"], paid["payment"]);

    // History, human and JSON.
    let (rc, out, _) = ctl(&["--address", a, "payments"]).await;
    assert_eq!(rc, 0);
    assert!(
        out.contains("ORDER ID") && out.contains("cli-1") && out.contains("HKD 49.00"),
        "{out}"
    );
    let (_, out, _) = ctl(&["--address", a, "--json", "payments", "--unfinished"]).await;
    // The same key as `pay` prints: one JSON style across commands.
    assert_eq!(json(&out)[0]["orderId"], "cli-1", "{out}");
    assert_eq!(json(&out)[0]["amountMinor"], 4900, "{out}");
    assert_eq!(
        json(&out).as_array().unwrap().len(),
        1,
        "succeeded, not finished yet"
    );
    let (rc, _, err) = ctl(&["--address", a, "finish", "cli-1"]).await;
    assert_eq!(rc, 0, "{err}");
    let (_, out, _) = ctl(&["--address", a, "--json", "payments", "--unfinished"]).await;
    assert_eq!(json(&out).as_array().unwrap().len(), 0);

    // Partial refund, then more than is left.
    let (rc, out, err) = ctl(&["--address", a, "--json", "refund", "cli-1", "10.00"]).await;
    assert_eq!(rc, 0, "{out}{err}");
    assert_eq!(json(&out)["refundedMinor"], 1000, "{out}");
    let (rc, out, err) = ctl(&["--address", a, "--json", "refund", "cli-1", "40.00"]).await;
    assert_eq!(rc, 4, "{out}{err}");
    assert_eq!(
        json(&out)["errorName"],
        "io.scanbind.Daemon1.Error.RefundNotAllowed"
    );

    // The ledger: one charge, one refund.
    let ledger: Value = scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{}/sandbox/v1/ledger",
            env.embedded().sandbox_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payments = ledger["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{ledger}");
    assert_eq!(payments[0]["moneyMovements"], 1, "{ledger}");
    assert_eq!(ledger["refunds"].as_array().unwrap().len(), 1, "{ledger}");

    // A combined checkout from the terminal: two sellers, one confirmation, a part
    // refunded; each seller charged once.
    let (rc, out, err) = ctl(&[
        "--address",
        a,
        "--json",
        "pay",
        "64.00",
        "HKD",
        "--description",
        "Game and map pack",
        "--order-id",
        "cli-bundle",
        "--seller",
        "STUDIO:49.00:Sofa Racer",
        "--seller",
        "ADDONS:15.00",
    ])
    .await;
    assert_eq!(rc, 0, "{out}{err}");
    let bundle = json(&out);
    assert_eq!(bundle["state"], "succeeded", "{bundle}");
    let parts = bundle["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{bundle}");
    assert_eq!(parts[0]["seller"], "STUDIO");
    assert_eq!(parts[1]["description"], "Game and map pack");
    for (i, p) in parts.iter().enumerate() {
        let minor = p["amountMinor"].as_i64().unwrap();
        verifier
            .verify_part(
                p["receipt"].as_str().unwrap(),
                "cli-bundle",
                i as u32,
                p["seller"].as_str().unwrap(),
                scanbind_client::money::Money::from_minor(hkd, minor).unwrap(),
            )
            .unwrap();
    }
    let (rc, out, err) = ctl(&[
        "--address",
        a,
        "--json",
        "refund",
        "cli-bundle",
        "--part",
        "1",
    ])
    .await;
    assert_eq!(rc, 0, "{out}{err}");
    assert_eq!(json(&out)["refundedMinor"], 1500, "{out}");
    let (rc, out, err) = ctl(&["--address", a, "--json", "refund", "cli-bundle", "1.00"]).await;
    assert_eq!(rc, 4, "a checkout refunds per part: {out}{err}");
    assert_eq!(
        json(&out)["errorName"],
        "io.scanbind.Daemon1.Error.InvalidArgument"
    );

    // Doctor against this daemon and server: everything passes.
    let (rc, out, err) = ctl(&[
        "--address",
        a,
        "--json",
        "doctor",
        "--server",
        env.embedded().server_url(),
    ])
    .await;
    assert_eq!(rc, 0, "{out}{err}");
    let checks = json(&out);
    for c in checks["checks"].as_array().unwrap() {
        assert_eq!(c["verdict"], "ok", "{c}");
    }

    // Unbind (an app's Unbind needs the user's approval: this test's display agent
    // gives it); paying afterwards is refused with NotBound (exit 4).
    let _agent = scanbind_testkit::agent::approving_agent(a).await.unwrap();
    let (rc, out, err) = ctl(&["--address", a, "unbind", bound["binding"].as_str().unwrap()]).await;
    assert_eq!(rc, 0, "{out}{err}");
    let (rc, out, err) = ctl(&[
        "--address",
        a,
        "--json",
        "pay",
        "1",
        "HKD",
        "--description",
        "x",
    ])
    .await;
    assert_eq!(rc, 4, "{out}{err}");
    assert_eq!(
        json(&out)["errorName"],
        "io.scanbind.Daemon1.Error.NotBound"
    );
    assert!(err.contains("NotBound"), "{err}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_pays_with_jeepney_alone() {
    let python = std::env::var("SCANBIND_PYTHON").expect(
        "SCANBIND_PYTHON (a python with jeepney, from scripts/requirements-test.txt) is not set: \
         run through scripts/test",
    );
    let env = Env::start("python").await;
    env.bind().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../python/pay.py");
    let run = |order: &'static str, amount: &'static str| {
        let (python, script, bus) = (python.clone(), script.clone(), env.bus.address().to_owned());
        tokio::task::spawn_blocking(move || {
            Command::new(python)
                .arg(script)
                .args([order, amount, "HKD", "Python gems"])
                .env("SCANBIND_BUS_ADDRESS", bus)
                .output()
                .unwrap()
        })
    };
    let out = run("py-1", "1234").await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pay.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in ["recorded", "state: succeeded", "receipt: ey", "delivered"] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // A refusal comes back as the daemon's error name.
    let out = run("py-1", "999").await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("io.scanbind.Daemon1.Error.Duplicate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.stop().await;
}

#[test]
fn bad_arguments_are_refused_with_a_reason_and_exit_code_2() {
    let run = |args: &[&str]| {
        let out = Command::new(CTL)
            .args(args)
            // Nowhere to connect: these must fail before connecting.
            .env("SCANBIND_SOCKET", "/nonexistent/scanbind.sock")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cases: &[(&[&str], &str)] = &[
        (
            &["pay", "1.999", "HKD", "--description", "x"],
            "HKD has 2 decimal places",
        ),
        (
            &["pay", "5.5", "KRW", "--description", "x"],
            "KRW has 0 decimal places",
        ),
        (&["pay", "0", "HKD", "--description", "x"], "more than zero"),
        (&["pay", "-3", "HKD", "--description", "x"], "error"),
        (&["pay", "abc", "HKD", "--description", "x"], "abc"),
        (
            &["pay", "1.00", "XYZ", "--description", "x"],
            "not an ISO 4217 currency code",
        ),
        (
            &["pay", "1.00", "HKD", "--description", ""],
            "1 to 256 characters",
        ),
        (
            &[
                "pay",
                "1.00",
                "HKD",
                "--description",
                "x",
                "--order-id",
                "has space",
            ],
            "printable ASCII",
        ),
        (
            &[
                "pay",
                "3.00",
                "HKD",
                "--description",
                "x",
                "--seller",
                "SELLER_A",
            ],
            "SELLER:AMOUNT",
        ),
        (
            &[
                "pay",
                "3.00",
                "HKD",
                "--description",
                "x",
                "--seller",
                "SELLER_A:1.001",
            ],
            "HKD has 2 decimal places",
        ),
        (
            &["pay", "3.00", "HKD", "--description", "x", "--independent"],
            "--seller",
        ),
        (&["bind", "--wallet", "PAYPAY"], "not a Scan to Bind wallet"),
        (&["payments", "--limit", "0"], "limit"),
        (&["sandbox", "scan", "not a url"], "not a URL"),
        (&["demo", "--amount", "49.001"], "HKD has 2 decimal places"),
        (&["demo", "--wallet", "PAYPAY"], "not a Scan to Bind wallet"),
        (&["status", "--session", "--system"], "cannot be used with"),
    ];
    for (args, expected) in cases {
        let (code, stderr) = run(args);
        assert_eq!(code, 2, "{args:?} exited {code}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: {expected:?} not in {stderr}"
        );
    }
    // No daemon at the socket: exit 3 with the place it looked.
    let (code, stderr) = run(&["status"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("/nonexistent/scanbind.sock"), "{stderr}");
}

#[test]
fn completions_and_man_pages() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(CTL)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("scanbindctl") && text.contains("refund"),
            "{shell}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(CTL)
        .arg("man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(dir.path().join("scanbindctl.1")).unwrap();
    assert!(page.contains(".TH scanbindctl"), "{page}");
    assert!(dir.path().join("scanbindctl-pay.1").exists());
    // Hidden from help, still there for packaging.
    let help = Command::new(CTL).arg("--help").output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("\n  man "));
}

/// The Python snippet of the app developer's guide is the code the Python test runs.
#[test]
fn the_guide_s_python_snippet_is_in_the_tested_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guide = std::fs::read_to_string(root.join("docs/apps.md")).unwrap();
    let example = std::fs::read_to_string(root.join("clients/python/pay.py")).unwrap();
    let snippet = guide
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/apps.md has a Python snippet");
    assert!(
        example.contains(snippet),
        "the Python snippet of docs/apps.md is not a verbatim excerpt of clients/python/pay.py"
    );
}

#[test]
fn apps_edits_the_policy_the_daemon_reads() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let daemon = policy_daemon::PolicyDaemon::start(&policy);
    let p = daemon.socket();
    let run = |args: &[&str]| {
        let out = Command::new(CTL).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run(&[
            "apps",
            "--socket",
            p,
            "allow",
            "/usr/bin/game",
            "--wallet",
            "alipay_hk"
        ])
        .0,
        0
    );
    assert_eq!(
        run(&[
            "apps",
            "--socket",
            p,
            "limit",
            "/usr/bin/game",
            "HKD",
            "--per-payment",
            "100.00",
            "--daily",
            "500"
        ])
        .0,
        0
    );
    assert_eq!(run(&["apps", "--socket", p, "unknown", "deny"]).0, 0);
    // The daemon's own parser reads what the CLI wrote.
    let text = std::fs::read_to_string(&policy).unwrap();
    let parsed = scanbind_policy::PolicyFile::parse(&text, &policy).unwrap();
    let rule = &parsed.apps["/usr/bin/game"];
    assert_eq!(rule.wallets.as_deref(), Some(&["ALIPAY_HK".to_owned()][..]));
    assert_eq!(rule.limits["HKD"].per_payment, Some(10_000));
    assert_eq!(rule.limits["HKD"].daily, Some(50_000));
    assert_eq!(parsed.unknown_apps, scanbind_policy::Unknown::Deny);
    let (code, stdout, _) = run(&["--json", "apps", "--socket", p, "list"]);
    assert_eq!(code, 0);
    assert_eq!(
        json(&stdout)["apps"]["/usr/bin/game"]["limits"]["HKD"]["daily"],
        50_000
    );
    // Bad input: a precise message, exit 2, the file unchanged.
    let (code, _, stderr) = run(&[
        "apps",
        "--socket",
        p,
        "limit",
        "/usr/bin/game",
        "HKD",
        "--daily",
        "1.999",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("HKD has 2 decimal places"), "{stderr}");
    let (code, _, stderr) = run(&[
        "apps",
        "--socket",
        p,
        "limit",
        "/usr/bin/game",
        "XYZ",
        "--daily",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("ISO 4217"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), text);
    assert_eq!(run(&["apps", "--socket", p, "reset", "/usr/bin/game"]).0, 0);
    assert_eq!(run(&["apps", "--socket", p, "reset", "/usr/bin/game"]).0, 2);
}
