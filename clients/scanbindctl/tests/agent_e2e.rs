//! The terminal display agent with the real daemon: a private `dbus-daemon`, the
//! session's gnome-keyring, the development sandbox and merchant server and
//! `scanbindd` (in this process, reading a `policy.toml` written with `scanbindctl
//! apps` and `profiles`), and the real `scanbindctl agent` process, trusted through
//! `[[trusted_agents]]`. This test process is the app.
//!
//! Binding shows the QR on the agent; a charge the policy wants confirmed is asked on
//! the agent (`y`: paid, `n`: `Denied` and nothing in the sandbox ledger); a kid
//! profile's charge needs the parent PIN set with `profiles set-pin` (a wrong PIN is
//! asked again with fewer attempts left).
//!
//! Needs `KEYRING_SS_TEST=1`: run it through `scripts/test`.

mod common;
mod json_style;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{AgentProcess, CTL, WAIT};
use scanbind_client::money::{Currency, Money};
use scanbind_client::{BindOptions, BindingState, Client, PayRequest, PaymentState, Transport};
use scanbind_demo::Embedded;
use scanbind_testkit::{PrivateBus, require_secret_service};
use serde_json::{Value as Json, json};

/// `scanbindctl ARGS` with `input` on stdin: (exit code, stdout, stderr).
async fn ctl(args: &[&str], input: &str) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(CTL)
            .env(common::DAEMON_EXE_ENV, common::this_test())
            .args(&args)
            .env_remove("SCANBIND_SOCKET")
            .env_remove("SCANBIND_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn ctl_ok(args: &[&str]) {
    let (code, out, err) = ctl(args, "").await;
    assert_eq!(code, 0, "{args:?}: {out}{err}");
}

fn hkd(minor: i64) -> Money {
    Money::from_minor(Currency::from_code("HKD").unwrap(), minor).unwrap()
}

async fn http_json(req: reqwest::RequestBuilder) -> Json {
    let resp = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("the sandbox did not answer in time")
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

/// Pays in a task (the call returns once the prompt is answered).
fn pay(
    client: &Client,
    order: &str,
    amount: Money,
) -> tokio::task::JoinHandle<scanbind_client::Result<scanbind_client::Payment>> {
    let client = client.clone();
    let request = PayRequest::new(order.to_owned(), amount, "Agent e2e gems");
    tokio::spawn(async move { client.pay(&request).await })
}

async fn paid_state(
    call: tokio::task::JoinHandle<scanbind_client::Result<scanbind_client::Payment>>,
) -> PaymentState {
    let payment = tokio::time::timeout(WAIT, call)
        .await
        .expect("Pay did not return in time")
        .unwrap()
        .expect("Pay was refused");
    tokio::time::timeout(WAIT, payment.wait())
        .await
        .expect("the payment did not complete in time")
        .unwrap()
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_agent_confirms_real_payments() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let bus = PrivateBus::without_services().unwrap();
    let a = bus.address().to_owned();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();

    // The policy, written with the CLI: this agent trusted, this test's charges confirmed.
    let policy = dir.path().join("policy.toml");
    let me = std::env::current_exe().unwrap();
    let me = me.to_str().unwrap();
    let uid = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/self").unwrap().uid().to_string()
    };
    let vault = format!("io.scanbind.Daemon.test.ctl.agent.{}", std::process::id());
    let embedded = Embedded::start_with_policy(&a, &state, &vault, &policy)
        .await
        .unwrap();
    ctl_ok(&[
        "--address",
        &a,
        "apps",
        "trust-agent",
        "--uid",
        &uid,
        "--exe",
        CTL,
    ])
    .await;
    ctl_ok(&["--address", &a, "apps", "allow", me, "--confirm"]).await;
    let http = scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .build()
        .unwrap();
    let sandbox = embedded.sandbox_url().to_owned();

    // The parent PIN, set through the daemon into the keyring (before the terminal
    // agent starts: only the registered agent may set it, and set-pin registers as one).
    let (code, out, err) = ctl(
        &["--json", "--address", &a, "profiles", "set-pin"],
        "\n2468\n2468\n",
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(!text.contains("2468"), "the PIN is in the policy file");

    let mut agent = AgentProcess::start(&a, true);
    agent.expect("registered").await;
    let client = Client::connect(Transport::Address(a.clone()))
        .await
        .unwrap();

    // Binding: the QR is on the agent; the phone approves; the agent takes it off.
    let binding = client
        .bind("ALIPAY_HK", BindOptions::default())
        .await
        .unwrap();
    let shown = agent.expect("show").await;
    assert_eq!(shown["kind"], "binding-qr", "{shown}");
    assert_eq!(shown["request"], binding.path().as_str());
    let code = binding.code_value().await.unwrap();
    assert_eq!(shown["codeValue"], code.as_str());
    assert_eq!(
        shown["details"]["match-code"],
        binding.match_code().await.unwrap().as_str()
    );
    let scanned = http_json(
        http.post(format!("{sandbox}/sandbox/v1/scan"))
            .json(&json!({"codeValue": code, "decision": "approve"})),
    )
    .await;
    assert_eq!(scanned["outcome"], "approved", "{scanned}");
    let bound = agent.expect("dismiss").await;
    assert_eq!(bound["outcome"], "bound", "{bound}");
    let outcome = tokio::time::timeout(WAIT, binding.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.state, BindingState::Bound);

    // A confirmed charge: y pays.
    let call = pay(&client, "agent-e2e-1", hkd(4900));
    let asked = agent.expect("confirm").await;
    assert_eq!(asked["kind"], "payment", "{asked}");
    let message = asked["message"].as_str().unwrap();
    assert!(message.contains("49.00"), "{message}");
    agent.answer("y");
    assert_eq!(agent.expect("answered").await["allowed"], true);
    assert_eq!(paid_state(call).await, PaymentState::Succeeded);

    // n: Denied, nothing charged.
    let call = pay(&client, "agent-e2e-2", hkd(1500));
    assert_eq!(agent.expect("confirm").await["kind"], "payment");
    agent.answer("n");
    assert_eq!(agent.expect("answered").await["allowed"], false);
    let refused = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .expect_err("a declined payment is refused");
    assert_eq!(
        refused.dbus_name().as_deref(),
        Some("io.scanbind.Daemon1.Error.Denied"),
        "{refused}"
    );
    let ledger = http_json(http.get(format!("{sandbox}/sandbox/v1/ledger"))).await;
    let charges = ledger["payments"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "{ledger}");
    assert_eq!(charges[0]["moneyMovements"], 1, "{ledger}");

    // A kid profile. `set-pin` registers as the display agent for its call: while
    // another agent is registered it is refused (Duplicate) and the PIN set above stays.
    let (code, out, err) = ctl(
        &["--json", "--address", &a, "profiles", "set-pin"],
        "2468\n1357\n1357\n",
    )
    .await;
    assert_eq!(code, 4, "{out}{err}");
    let report: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        report["errorName"], "io.scanbind.Daemon1.Error.Duplicate",
        "{report}"
    );
    ctl_ok(&["--address", &a, "apps", "allow", me, "--no-confirm"]).await;
    ctl_ok(&["--address", &a, "profiles", "add", "kids", "--kid"]).await;
    ctl_ok(&["--address", &a, "profiles", "use", "kids"]).await;

    let call = pay(&client, "agent-e2e-3", hkd(1200));
    let asked = agent.expect("confirm").await;
    assert_eq!(asked["kind"], "parent-approval", "{asked}");
    assert_eq!(asked["pinRequired"], true);
    let left = asked["attemptsLeft"].as_u64().unwrap();
    // A wrong PIN: asked again, one attempt fewer.
    agent.answer("1111");
    assert_eq!(agent.expect("answered").await["allowed"], true);
    let again = agent.expect("confirm").await;
    assert_eq!(again["kind"], "parent-approval", "{again}");
    assert_eq!(again["attemptsLeft"].as_u64(), Some(left - 1), "{again}");
    agent.answer("2468");
    assert_eq!(agent.expect("answered").await["allowed"], true);
    assert_eq!(paid_state(call).await, PaymentState::Succeeded);
    let ledger = http_json(http.get(format!("{sandbox}/sandbox/v1/ledger"))).await;
    assert_eq!(ledger["payments"].as_array().unwrap().len(), 2, "{ledger}");

    // Ctrl-C: the agent leaves; a charge that needs it is refused, not charged.
    let pid = agent.child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    agent.expect("unregistered").await;
    let (code, stderr) = agent.exit_code().await;
    assert_eq!(code, 0, "{stderr}");
    let refused = tokio::time::timeout(WAIT, pay(&client, "agent-e2e-4", hkd(100)))
        .await
        .unwrap()
        .unwrap()
        .expect_err("no agent, no approval");
    assert_eq!(
        refused.dbus_name().as_deref(),
        Some("io.scanbind.Daemon1.Error.NeedsConfirmation"),
        "{refused}"
    );
    drop(client);
    embedded.shutdown().await.unwrap();
}

/// The agent on the daemon's peer-to-peer socket, the app on the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known gap: scanbindd's calls to an agent registered over its peer-to-peer \
            socket get no answer yet (agents on the bus work); tracked in the issue 7 note"]
async fn the_terminal_agent_over_the_peer_to_peer_socket() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let bus = PrivateBus::without_services().unwrap();
    let a = bus.address().to_owned();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let socket = dir.path().join("scanbindd.sock");
    let policy = dir.path().join("policy.toml");
    let me = std::env::current_exe().unwrap();
    let me = me.to_str().unwrap();
    let uid = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/self").unwrap().uid().to_string()
    };
    let vault = format!(
        "io.scanbind.Daemon.test.ctl.agentp2p.{}",
        std::process::id()
    );
    let embedded = Embedded::start_full(
        &a,
        &state,
        &vault,
        Some(&socket),
        scanbindd::dev::DevOptions::default(),
        Some(&policy),
    )
    .await
    .unwrap();
    ctl_ok(&[
        "--address",
        &a,
        "apps",
        "trust-agent",
        "--uid",
        &uid,
        "--exe",
        CTL,
    ])
    .await;
    ctl_ok(&["--address", &a, "apps", "allow", me, "--confirm"]).await;

    let mut agent = AgentProcess::start_with(&["--socket", socket.to_str().unwrap()], true);
    agent.expect("registered").await;
    // The app on the bus; the agent on the socket.
    let client = Client::connect(Transport::Address(a.clone()))
        .await
        .unwrap();
    let binding = client
        .bind("ALIPAY_HK", BindOptions::default())
        .await
        .unwrap();
    let shown = agent.expect("show").await;
    assert_eq!(shown["request"], binding.path().as_str(), "{shown}");
    // The daemon stops: the socket closes, the agent says so and exits 3.
    drop(client);
    embedded.shutdown().await.unwrap();
    let (code, stderr) = agent.exit_code().await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("the daemon closed the connection"),
        "{stderr}"
    );
}
