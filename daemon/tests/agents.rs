//! Display agents end to end (issue 7): real processes (sandbox, `scanbind-server`,
//! private `dbus-daemon`, `scanbindd`); this test process plays the app and, on a
//! second connection, a display agent serving `io.scanbind.Agent1`. Covers agent
//! trust, one agent at a time, the binding QR shown and dismissed, the first-use
//! consent, per-charge confirmation, a prompt nobody answers, the kid profile's
//! parent PIN with its attempt limit, the step-up to an order code above the cap,
//! and an agent that goes away.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::agent::{Ev, agent_connection, next, next_confirm, register, text};
use common::{GUARD, connect, journal_rows, settled, spawn_daemon_with, world};
use futures_util::StreamExt as _;
use scanbind_ipc::Error as Wire;
use scanbind_ipc::proxy::{AgentManager1Proxy, Binding1Proxy, Daemon1Proxy};
use scanbind_ipc::types::keys::agent as keys;
use scanbindd::test_util::{PrivateBus, require_secret_service};
use zbus::proxy::CacheProperties;
use zvariant::OwnedValue;

fn write_policy(path: &Path, body: &str) {
    // Written aside and renamed: the daemon never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn display_agent_trust_prompts_kid_approval_and_step_up() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let policy = state.path().join("policy.toml");
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let me = me.to_str().unwrap().to_owned();
    let uid = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/self").unwrap().uid()
    };
    write_policy(&policy, "unknown_apps = \"ask\"\n");
    let policy_arg = policy.to_str().unwrap().to_owned();
    let daemon = spawn_daemon_with(
        &["--address", bus.address(), "--policy", &policy_arg],
        &server.base,
        state.path(),
        &[],
    );
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    let manager = AgentManager1Proxy::builder(&conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();

    // Without an agent, a charge that needs the user fails clearly and records nothing.
    let err = d
        .pay("no-agent", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NotBound(_)), "{err:?}"); // nothing bound yet

    // Trust: this test binary is not a default agent (not beside scanbindd).
    let (aconn, mut events) = agent_connection(&bus).await;
    let err = register(&aconn).await.unwrap_err();
    assert!(matches!(err, Wire::NotAllowed(_)), "{err:?}");
    assert!(!manager.agent_registered().await.unwrap());
    let trusted =
        format!("unknown_apps = \"ask\"\n[[trusted_agents]]\nuid = {uid}\nexe = \"{me}\"\n");
    write_policy(&policy, &trusted);
    register(&aconn).await.unwrap();
    assert!(manager.agent_registered().await.unwrap());
    // Only one agent at a time.
    let (other, _other_events) = agent_connection(&bus).await;
    let err = register(&other).await.unwrap_err();
    assert!(matches!(err, Wire::Duplicate(_)), "{err:?}");

    // The binding QR goes to the agent with its match code and comes off when bound.
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = Binding1Proxy::builder(&conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let Ev::Show(request, kind, details) = next(&mut events).await else {
        panic!("expected Show first");
    };
    assert_eq!(kind, keys::KIND_BINDING_QR);
    assert_eq!(
        text(&details, keys::CODE_VALUE),
        binding.code_value().await.unwrap()
    );
    assert_eq!(
        text(&details, keys::MATCH_CODE),
        binding.match_code().await.unwrap()
    );
    assert_eq!(text(&details, keys::WALLET_NAME), "AlipayHK");
    assert!(!text(&details, keys::DEVICE_NAME).is_empty());
    world
        .scan(&text(&details, keys::CODE_VALUE), "approve")
        .await;
    match next(&mut events).await {
        Ev::Dismiss(r, outcome) => {
            assert_eq!(r, request);
            assert_eq!(outcome, "bound");
        }
        other => panic!("expected Dismiss, got {other:?}"),
    }

    // First use: consent asked; "no" refuses and records nothing.
    let pay = {
        let d = d.clone();
        move |order: &'static str, amount: i64| {
            let d = d.clone();
            tokio::spawn(async move { d.pay(order, amount, "HKD", "Coins", HashMap::new()).await })
        }
    };
    let call = pay("consent-no", 100);
    let (asked, answer) = next_confirm(&mut events).await;
    assert_eq!(text(&asked, "kind"), keys::KIND_CONSENT);
    assert!(
        text(&asked, keys::MESSAGE).contains("AlipayHK"),
        "{asked:?}"
    );
    answer.send((false, HashMap::new())).unwrap();
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err, Wire::Denied(_)), "{err:?}");
    assert_eq!(journal_rows(state.path()), 0);

    // "Yes" adds the app with the consent limits and pays.
    write_policy(
        &policy,
        &format!("{trusted}[consent.limits.HKD]\ndaily = 10000\n"),
    );
    let call = pay("consent-yes", 100);
    let (asked, answer) = next_confirm(&mut events).await;
    assert!(
        text(&asked, keys::MESSAGE).contains("HKD 100.00 a day"),
        "{asked:?}"
    );
    answer.send((true, HashMap::new())).unwrap();
    let p = call.await.unwrap().unwrap();
    assert_eq!(settled(&conn, &p).await, "succeeded", "{}", daemon.logs());
    let saved = std::fs::read_to_string(&policy).unwrap();
    assert!(
        saved.contains(&me) && saved.contains("daily = 10000"),
        "{saved}"
    );
    // Now listed: no prompt for the next one (a prompt would block this call).
    let p = d
        .pay("listed", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    assert_eq!(settled(&conn, &p).await, "succeeded");

    // confirm = true: every charge asks; no answer within the prompt timeout refuses.
    let confirm = format!(
        "prompt_timeout_secs = 2\n{trusted}[apps.\"{me}\"]\nconfirm = true\n\
         above_cap = \"order-code\"\n[apps.\"{me}\".limits.HKD]\nper_payment = 1000\n"
    );
    write_policy(&policy, &confirm);
    let call = pay("confirm-yes", 200);
    let (asked, answer) = next_confirm(&mut events).await;
    assert_eq!(text(&asked, "kind"), keys::KIND_PAYMENT);
    assert!(
        text(&asked, keys::MESSAGE).contains("HKD 2.00"),
        "{asked:?}"
    );
    answer.send((true, HashMap::new())).unwrap();
    let p = call.await.unwrap().unwrap();
    assert_eq!(settled(&conn, &p).await, "succeeded");
    let call = pay("confirm-silence", 200);
    let (_asked, unanswered) = next_confirm(&mut events).await;
    let err = call.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Wire::Denied(ref m) if m.contains("nobody answered")),
        "{err:?}"
    );
    match next(&mut events).await {
        Ev::Dismiss(_, outcome) => assert_eq!(outcome, "timed-out"),
        other => panic!("expected Dismiss, got {other:?}"),
    }
    drop(unanswered);

    // Above the cap with above_cap = "order-code": no TV prompt, an order code shown.
    let p = d
        .pay("step-up", 5000, "HKD", "Season pass", HashMap::new())
        .await
        .unwrap();
    let code = loop {
        if let Ev::Show(_, kind, details) = next(&mut events).await {
            assert_eq!(kind, keys::KIND_ORDER_CODE);
            assert!(text(&details, keys::AMOUNT_TEXT).contains("50.00"));
            break text(&details, keys::CODE_VALUE);
        }
    };
    world.scan(&code, "approve").await;
    assert_eq!(settled(&conn, &p).await, "succeeded", "{}", daemon.logs());
    match next(&mut events).await {
        Ev::Dismiss(_, outcome) => assert_eq!(outcome, "succeeded"),
        other => panic!("expected Dismiss, got {other:?}"),
    }

    // Kid profile: without a PIN the charge cannot be approved.
    let kids = format!(
        "active_profile = \"kids\"\n{trusted}[apps.\"{me}\"]\n[profiles.kids]\nkid = true\n"
    );
    write_policy(&policy, &kids);
    let err = d
        .pay("kid-no-pin", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NeedsConfirmation(_)), "{err:?}");
    // Only the registered agent sets the PIN (the app's connection: NotAllowed).
    let err = manager
        .set_parent_pin("", "2468", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NotAllowed(_)), "{err:?}");
    let amanager = AgentManager1Proxy::new(&aconn).await.unwrap();
    amanager
        .set_parent_pin("", "12", HashMap::new())
        .await
        .unwrap_err();
    amanager
        .set_parent_pin("", "2468", HashMap::new())
        .await
        .unwrap();
    // Changing it needs the old one.
    let err = amanager
        .set_parent_pin("0000", "1357", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::Denied(_)), "{err:?}");
    // A wrong PIN is asked again with one attempt fewer; the right one pays.
    let call = pay("kid-approved", 100);
    let (asked, answer) = next_confirm(&mut events).await;
    assert_eq!(text(&asked, "kind"), keys::KIND_PARENT_APPROVAL);
    assert_eq!(asked[keys::PIN_REQUIRED], OwnedValue::from(true));
    let first_left = u32::try_from(asked[keys::ATTEMPTS_LEFT].clone()).unwrap();
    let pin = |p: &str| {
        let mut a = HashMap::new();
        a.insert(
            "pin".to_owned(),
            OwnedValue::from(zvariant::Str::from(p.to_owned())),
        );
        (true, a)
    };
    answer.send(pin("1111")).unwrap();
    let (asked, answer) = next_confirm(&mut events).await;
    let left = u32::try_from(asked[keys::ATTEMPTS_LEFT].clone()).unwrap();
    assert_eq!(left, first_left - 1);
    answer.send(pin("2468")).unwrap();
    let p = call.await.unwrap().unwrap();
    assert_eq!(settled(&conn, &p).await, "succeeded");
    // Wrong PINs until the attempts run out: refused and locked.
    let call = pay("kid-locked", 100);
    loop {
        let (asked, answer) = next_confirm(&mut events).await;
        let left = u32::try_from(asked[keys::ATTEMPTS_LEFT].clone()).unwrap();
        answer.send(pin("0000")).unwrap();
        if left == 1 {
            break;
        }
    }
    let err = call.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Wire::Denied(ref m) if m.contains("locked")),
        "{err:?}"
    );
    let err = d
        .pay("kid-while-locked", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Wire::Denied(ref m) if m.contains("locked")),
        "{err:?}"
    );
    // The right PIN does not change it while locked.
    let err = amanager
        .set_parent_pin("2468", "1357", HashMap::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Wire::Denied(ref m) if m.contains("locked")),
        "{err:?}"
    );
    drop(amanager);

    // The agent goes away: prompts fail with NeedsConfirmation again.
    write_policy(&policy, &confirm);
    drop(aconn);
    drop(events);
    let watcher = AgentManager1Proxy::builder(&conn)
        .cache_properties(CacheProperties::Yes)
        .build()
        .await
        .unwrap();
    let mut changes = watcher.receive_agent_registered_changed().await;
    while watcher.agent_registered().await.unwrap() {
        tokio::time::timeout(GUARD, changes.next())
            .await
            .expect("AgentRegistered did not turn false");
    }
    let err = d
        .pay("gone", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NeedsConfirmation(_)), "{err:?}");

    // The wallet was charged exactly for what was approved.
    let ledger = world.ledger().await;
    let charged: Vec<i64> = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["moneyMovements"] == 1)
        .map(|p| p["amount"]["value"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut charged = charged;
    charged.sort_unstable();
    assert_eq!(charged, [100, 100, 100, 200, 5000], "{ledger}");
}

/// Issue 22, item 3: only the registered agent may set the parent PIN (an app, and a
/// trusted program that is not the registered agent, get `NotAllowed` and nothing
/// changes); a burst of wrong PINs is counted before any is verified, so it cannot try
/// more than the attempt limit; once locked, even the right PIN is refused.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_registered_agent_sets_the_pin_and_a_burst_locks() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let policy = state.path().join("policy.toml");
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let me = me.to_str().unwrap().to_owned();
    let uid = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/self").unwrap().uid()
    };
    write_policy(
        &policy,
        &format!("[[trusted_agents]]\nuid = {uid}\nexe = \"{me}\"\n"),
    );
    let policy_arg = policy.to_str().unwrap().to_owned();
    let daemon = spawn_daemon_with(
        &["--address", bus.address(), "--policy", &policy_arg],
        &server.base,
        state.path(),
        &[],
    );
    let app = connect(&bus).await;
    let app_manager = AgentManager1Proxy::new(&app).await.unwrap();
    let not_allowed = |r: Result<(), Wire>| {
        assert!(matches!(r, Err(Wire::NotAllowed(_))), "{r:?}");
    };

    // No agent registered: nobody may set the first PIN.
    not_allowed(app_manager.set_parent_pin("", "2468", HashMap::new()).await);

    let (aconn, _events) = agent_connection(&bus).await;
    register(&aconn).await.unwrap();
    let agent = AgentManager1Proxy::new(&aconn).await.unwrap();
    // A second connection of the same trusted program, not the registered agent.
    let (other, _other_events) = agent_connection(&bus).await;
    let other_manager = AgentManager1Proxy::new(&other).await.unwrap();
    not_allowed(app_manager.set_parent_pin("", "2468", HashMap::new()).await);
    not_allowed(
        other_manager
            .set_parent_pin("", "2468", HashMap::new())
            .await,
    );
    agent
        .set_parent_pin("", "2468", HashMap::new())
        .await
        .unwrap();
    // With the right current PIN, still not from anyone else; the PIN is unchanged
    // (the agent changes it with the old one, which also clears the counter).
    not_allowed(
        app_manager
            .set_parent_pin("2468", "1357", HashMap::new())
            .await,
    );
    not_allowed(
        other_manager
            .set_parent_pin("2468", "1357", HashMap::new())
            .await,
    );
    agent
        .set_parent_pin("2468", "2468", HashMap::new())
        .await
        .unwrap();

    // A burst of wrong PINs at once: at most the attempt limit is tried, then locked.
    let burst = (0..20).map(|i| {
        let agent = agent.clone();
        async move {
            agent
                .set_parent_pin(&format!("{:04}", 1000 + i), "1357", HashMap::new())
                .await
        }
    });
    let replies = futures_util::future::join_all(burst).await;
    let (mut wrong, mut locked) = (0, 0);
    for r in &replies {
        match r {
            Err(Wire::Denied(m)) if m.contains("locked") => locked += 1,
            Err(Wire::Denied(m)) if m.contains("wrong PIN") => wrong += 1,
            other => panic!("a wrong PIN: {other:?}"),
        }
    }
    // 5 attempts: at most 4 are told "wrong", the fifth engages the lock.
    assert!(
        wrong < 5 && locked > 15,
        "wrong {wrong}, locked {locked}: {replies:?}"
    );
    // Locked: the right PIN is refused and does not lift the lock.
    for _ in 0..2 {
        let r = agent.set_parent_pin("2468", "1357", HashMap::new()).await;
        assert!(
            matches!(r, Err(Wire::Denied(ref m)) if m.contains("locked")),
            "{r:?}\n{}",
            daemon.logs()
        );
    }
}

/// `scanbindctl --json agent` (beside `scanbindd`) on `bus`, with `stdin`; its stdout
/// lines on the channel.
fn ctl_agent(
    ctl: &Path,
    bus: &PrivateBus,
    stdin: std::process::Stdio,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(ctl)
        .args(["--address", bus.address(), "--json", "agent"])
        .env_remove("SCANBIND_DAEMON_EXE")
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("scanbindctl agent runs");
    let lines = common::lines_of(child.stdout.take().unwrap(), Some);
    (child, lines)
}

/// The next JSON line of an agent, within the guard.
fn json_line(lines: &std::sync::mpsc::Receiver<String>) -> serde_json::Value {
    let line = lines
        .recv_timeout(GUARD)
        .expect("no line from the agent in time");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_cannot_answer_its_own_consent_through_a_piped_terminal_agent() {
    require_secret_service();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    // An app the policy does not know is asked about (consent); no agent is named.
    let policy = state.path().join("policy.toml");
    write_policy(&policy, "unknown_apps = \"ask\"\n");
    let policy_arg = policy.to_str().unwrap().to_owned();
    // The system's metadata names this app (a root-owned .desktop file whose Exec is
    // this test's executable): prompts show that name and the executable (item 7).
    let data = tempfile::tempdir().unwrap();
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    std::fs::create_dir(data.path().join("applications")).unwrap();
    std::fs::write(
        data.path().join("applications/test-shop.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=Test Shop\nExec={} --tv\n",
            me.display()
        ),
    )
    .unwrap();
    let data_dirs = data.path().to_str().unwrap().to_owned();
    // The real scanbindd with scanbindctl beside it: scanbindctl is a default agent.
    let ctl = common::built_beside_daemon("scanbindctl", "scanbindctl");
    let daemon =
        common::DaemonProc::command(Path::new(env!("CARGO_BIN_EXE_scanbindd")), state.path())
            .address(bus.address())
            .args(["--policy", &policy_arg])
            .envs(&[("XDG_DATA_DIRS", &data_dirs)])
            .server(&server.base)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    assert_eq!(common::bind_approved(&world, &conn, &d).await.1, "bound");

    // The hostile app (this process) starts the terminal agent on a pipe, to answer
    // "y" to its own consent prompt: the daemon refuses the agent.
    let (mut hostile, lines) = ctl_agent(&ctl, &bus, std::process::Stdio::piped());
    let refused = json_line(&lines);
    let text = refused["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("not a terminal") && text.contains("trusted_agents"),
        "{refused}: {}",
        daemon.logs()
    );
    {
        use std::io::Write as _;
        let _ = writeln!(hostile.stdin.as_mut().unwrap(), "y");
    }
    assert_eq!(hostile.wait().unwrap().code(), Some(4));
    // Its payment is not approved: nobody trusted can be asked.
    let err = d
        .pay("piped-y", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NeedsConfirmation(_)), "{err:?}");
    assert_eq!(journal_rows(state.path()), 0, "a payment was recorded");

    // The same agent on a terminal (a person at the keyboard) is trusted and asked.
    let (mut keyboard, terminal) = common::pty();
    let (mut agent, lines) = ctl_agent(&ctl, &bus, std::process::Stdio::from(terminal));
    let registered = json_line(&lines);
    assert_eq!(
        registered["event"],
        "registered",
        "{registered}: {}",
        daemon.logs()
    );
    let pay = {
        let d = d.clone();
        tokio::spawn(async move { d.pay("typed-y", 100, "HKD", "Coins", HashMap::new()).await })
    };
    let confirm = loop {
        let e = json_line(&lines);
        if e["event"] == "confirm" {
            break e;
        }
    };
    assert_eq!(confirm["kind"], keys::KIND_CONSENT, "{confirm}");
    // The app as the system's metadata names it, its executable beside it.
    assert_eq!(confirm["details"][keys::APP_NAME], "Test Shop", "{confirm}");
    assert_eq!(
        confirm["details"][keys::APP_EXE],
        me.to_str().unwrap(),
        "{confirm}"
    );
    assert!(
        confirm["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("Test Shop ({})", me.display()))),
        "{confirm}"
    );
    {
        use std::io::Write as _;
        writeln!(keyboard, "y").unwrap();
    }
    let path = tokio::time::timeout(GUARD, pay)
        .await
        .expect("the consent was not answered in time")
        .unwrap()
        .unwrap_or_else(|e| panic!("{e:?}: {}", daemon.logs()));
    assert_eq!(settled(&conn, &path).await, "succeeded");
    let _ = agent.kill();
    let _ = agent.wait();
}
