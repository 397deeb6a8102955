//! Issue 22, items 2 and 8: no app acts on bindings beyond its grant, and no app can
//! flood the trusted display. Real processes: the sandbox, `scanbind-server`, a
//! private `dbus-daemon` and `scanbindd`. This test process plays the household's app
//! (one connection) and, on a second connection, the trusted display agent; the
//! hostile app is another program in processes of its own (`busctl`, app id
//! `/usr/bin/busctl`), one per call, as an attacker would script it.
//!
//! - `Unbind` from an app needs the user's approval on the agent (no agent:
//!   `NeedsConfirmation`; declined: `Denied`; the binding still pays either way).
//! - `StartBinding` names the app on the display and is limited per app (one pending,
//!   a few per window).
//! - `ListBindings` shows an app only the bindings its policy lets it charge.
//! - Prompts are limited per app (one at a time, a few unapproved per window), while
//!   an app's purchases approved one at a time never run out.
//!
//! Needs `KEYRING_SS_TEST=1` (run through `scripts/test`; see daemon/README.md).

mod common;

use std::collections::HashMap;
use std::path::Path;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use common::agent::{Ev, agent_connection, next, next_confirm, register, text};
use common::{DaemonProc, World};
use common::{GUARD, bind_approved, connect, settled, spawn_daemon_with, world};
use scanbind_ipc::Error as Wire;
use scanbind_ipc::proxy::{Binding1Proxy, Daemon1Proxy};
use scanbind_ipc::types::keys::agent as keys;
use scanbind_ipc::{BUS_NAME, DAEMON_PATH};
use scanbindd::test_util::{PrivateBus, require_secret_service};
use tokio::sync::mpsc;
use zbus::proxy::CacheProperties;

/// The hostile app: `busctl`, a program of its own (its own app id), one process per
/// call.
const HOSTILE: &str = "/usr/bin/busctl";

/// The per-app limits of `scanbindd` (`domain::limits`, documented in
/// docs/dbus-api.md): unapproved prompts and uncompleted bindings per window.
const MAX_UNAPPROVED_PROMPTS: usize = 5;
const MAX_BINDINGS: usize = 5;

/// The policy file: this test binary is a trusted agent, plus `rules`.
fn write_policy(path: &Path, rules: &str) {
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let uid = rustix::process::getuid().as_raw();
    let body = format!(
        "{rules}\n[[trusted_agents]]\nuid = {uid}\nexe = \"{}\"\n",
        me.display()
    );
    // Written aside and renamed: the daemon never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// This test binary's path: the household app's id.
fn me() -> String {
    std::fs::read_link("/proc/self/exe")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Everything one test needs.
struct Rig {
    world: World,
    _server: scanbind_testkit::ServerProc,
    bus: PrivateBus,
    state: tempfile::TempDir,
    policy: std::path::PathBuf,
    daemon: DaemonProc,
    /// The household app's connection.
    conn: zbus::Connection,
    d: Daemon1Proxy<'static>,
}

impl Rig {
    async fn start(rules: &str) -> Rig {
        require_secret_service();
        assert!(
            scanbind_testkit::tools::on_path("busctl"),
            "busctl (systemd) plays the hostile app"
        );
        let world = world().await;
        let server = world.spawn_server(&[]);
        let bus = PrivateBus::without_services().unwrap();
        let state = tempfile::tempdir().unwrap();
        let policy = state.path().join("policy.toml");
        write_policy(&policy, rules);
        let policy_arg = policy.to_str().unwrap().to_owned();
        let daemon = spawn_daemon_with(
            &["--address", bus.address(), "--policy", &policy_arg],
            &server.base,
            state.path(),
            &[],
        );
        let conn = connect(&bus).await;
        let d = Daemon1Proxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap();
        Rig {
            world,
            _server: server,
            bus,
            state,
            policy,
            daemon,
            conn,
            d,
        }
    }

    /// Registers this process as the display agent on a connection of its own.
    async fn agent(&self) -> (zbus::Connection, mpsc::UnboundedReceiver<Ev>) {
        let (conn, rx) = agent_connection(&self.bus).await;
        register(&conn)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.daemon.logs()));
        (conn, rx)
    }

    /// The hostile app calls `method` (`interface.member`) on the daemon's entry point
    /// with `args` (the signature, then the values): its reply, or its error message.
    async fn hostile(&self, method: &str, args: &[&str]) -> Result<String, String> {
        self.hostile_at(DAEMON_PATH, method, args).await
    }

    /// The hostile app calls `method` on the object at `path`.
    async fn hostile_at(&self, path: &str, method: &str, args: &[&str]) -> Result<String, String> {
        let (interface, member) = method.rsplit_once('.').expect("interface.member");
        let out = tokio::process::Command::new(HOSTILE)
            .arg(format!("--address={}", self.bus.address()))
            .arg("--timeout=120")
            .args(["call", BUS_NAME, path, interface, member])
            .args(args)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("busctl runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// The hostile app's `Unbind(path)`.
    async fn hostile_unbind(&self, path: &str) -> Result<String, String> {
        self.hostile("io.scanbind.Daemon1.Unbind", &["oa{sv}", path, "0"])
            .await
    }

    /// The hostile app's `Unbind(path)` while the test's agent answers its question
    /// with `allow`: the call's result, and what the agent was asked.
    async fn hostile_unbind_answered(
        &self,
        path: &str,
        events: &mut mpsc::UnboundedReceiver<Ev>,
        allow: bool,
    ) -> (
        Result<String, String>,
        HashMap<String, zvariant::OwnedValue>,
    ) {
        let ask = async {
            let (asked, answer) = next_confirm(events).await;
            answer.send((allow, HashMap::new())).unwrap();
            asked
        };
        tokio::join!(self.hostile_unbind(path), ask)
    }

    /// The hostile app's `StartBinding("ALIPAY_HK")`: the binding's path.
    async fn hostile_start_binding(&self) -> Result<String, String> {
        let out = self
            .hostile(
                "io.scanbind.Daemon1.StartBinding",
                &["sa{sv}", "ALIPAY_HK", "0"],
            )
            .await?;
        // `o "/io/scanbind/Daemon1/binding/..."`
        Ok(out.trim_start_matches("o ").trim_matches('"').to_owned())
    }

    /// The hostile app's `Pay(order, 1.00 HKD)`.
    async fn hostile_pay(&self, order: &str) -> Result<String, String> {
        self.hostile(
            "io.scanbind.Daemon1.Pay",
            &["sxssa{sv}", order, "100", "HKD", "Coins", "0"],
        )
        .await
    }

    /// How many bindings the hostile app's `ListBindings` returns.
    async fn hostile_list_bindings(&self) -> usize {
        let out = self
            .hostile("io.scanbind.Daemon1.ListBindings", &["a{sv}", "0"])
            .await
            .unwrap_or_else(|e| panic!("ListBindings: {e}"));
        // `a(osss) N "/io/..." ...`
        let mut words = out.split_whitespace();
        assert_eq!(words.next(), Some("a(osss)"), "{out}");
        words.next().unwrap().parse().unwrap()
    }

    /// Whether the hostile app's `GetStatus` lists a bound binding.
    async fn hostile_status_shows_a_binding(&self) -> bool {
        let out = self
            .hostile("io.scanbind.Daemon1.GetStatus", &["a{sv}", "0"])
            .await
            .unwrap_or_else(|e| panic!("GetStatus: {e}"));
        assert!(out.contains("\"bindings\" ao"), "{out}");
        out.contains("/io/scanbind/Daemon1/binding/")
    }

    /// The household app pays `order` (1.00 HKD): it succeeds.
    async fn pays(&self, order: &str) {
        let p = self
            .d
            .pay(order, 100, "HKD", "Coins", HashMap::new())
            .await
            .unwrap_or_else(|e| panic!("{order}: {e}\n{}", self.daemon.logs()));
        assert_eq!(
            settled(&self.conn, &p).await,
            "succeeded",
            "{}",
            self.daemon.logs()
        );
    }

    async fn binding_state(&self, path: &zvariant::OwnedObjectPath) -> String {
        Binding1Proxy::builder(&self.conn)
            .path(path.clone())
            .unwrap()
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap()
            .state()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_unbinds_only_with_the_users_confirmation() {
    let rig = Rig::start("").await;
    let (path, state) = bind_approved(&rig.world, &rig.conn, &rig.d).await;
    assert_eq!(state, "bound");

    // No display agent: NeedsConfirmation, and the household's wallet still pays.
    let err = rig.hostile_unbind(path.as_str()).await.unwrap_err();
    assert!(
        err.contains("no trusted display agent") && err.contains("not changed"),
        "{err}\n{}",
        rig.daemon.logs()
    );
    assert_eq!(rig.binding_state(&path).await, "bound");
    rig.pays("after-no-agent").await;

    // The user declines on the agent, which names the app that asks: Denied, still
    // bound.
    let (_agent, mut events) = rig.agent().await;
    let (result, asked) = rig.hostile_unbind_answered(&path, &mut events, false).await;
    assert_eq!(text(&asked, "kind"), keys::KIND_UNBIND);
    assert_eq!(text(&asked, keys::APP_NAME), "busctl");
    assert_eq!(text(&asked, keys::APP_EXE), HOSTILE);
    assert_eq!(text(&asked, keys::APP_ID), HOSTILE);
    assert_eq!(text(&asked, keys::WALLET), "ALIPAY_HK");
    assert_eq!(text(&asked, keys::WALLET_NAME), "AlipayHK");
    // The account is the wallet's masked login (the sandbox's `xx****yyyy`).
    assert!(text(&asked, keys::ACCOUNT).contains("****"), "{asked:?}");
    assert!(text(&asked, keys::MESSAGE).contains("busctl"), "{asked:?}");
    let err = result.unwrap_err();
    assert!(err.contains("did not allow"), "{err}");
    assert_eq!(rig.binding_state(&path).await, "bound");
    rig.pays("after-declined").await;

    // The user approves: unbound, and nobody can pay from it any more.
    let (result, asked) = rig.hostile_unbind_answered(&path, &mut events, true).await;
    assert_eq!(text(&asked, keys::APP_NAME), "busctl");
    assert_eq!(text(&asked, keys::APP_EXE), HOSTILE);
    result.unwrap_or_else(|e| panic!("{e}\n{}", rig.daemon.logs()));
    assert_eq!(rig.binding_state(&path).await, "unbound");
    let err = rig
        .d
        .pay("after-unbind", 100, "HKD", "Coins", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NotBound(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn binding_qr_codes_name_the_app_and_cannot_flood_the_display() {
    let rig = Rig::start("").await;
    let (_agent, mut events) = rig.agent().await;

    // The QR code on the display names the app that asked for it.
    let first = rig
        .hostile_start_binding()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.daemon.logs()));
    // One pending binding per app.
    let err = rig.hostile_start_binding().await.unwrap_err();
    assert!(err.contains("waiting to be scanned"), "{err}");
    // Cancelling its own pending binding needs no question; then it may start another,
    // up to the window's limit.
    let mut pending = first;
    for _ in 1..MAX_BINDINGS {
        rig.hostile_unbind(&pending)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", rig.daemon.logs()));
        pending = rig
            .hostile_start_binding()
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", rig.daemon.logs()));
    }
    rig.hostile_unbind(&pending).await.unwrap();
    let err = rig.hostile_start_binding().await.unwrap_err();
    assert!(err.contains("not completed"), "{err}");

    // Another app is not held up: its QR code comes; by then the display was shown
    // the hostile app's codes exactly up to the limit, each naming it.
    let theirs = rig
        .d
        .start_binding("ALIPAY_HK", HashMap::new())
        .await
        .unwrap();
    let mut hostile_shown = 0;
    loop {
        match next(&mut events).await {
            Ev::Show(_, kind, details) => {
                assert_eq!(kind, keys::KIND_BINDING_QR);
                if text(&details, keys::APP_ID) == HOSTILE {
                    // Named from the system, with its executable beside the name.
                    assert_eq!(text(&details, keys::APP_NAME), "busctl");
                    assert_eq!(text(&details, keys::APP_EXE), HOSTILE);
                    assert!(
                        text(&details, keys::MESSAGE).starts_with("busctl (/usr/bin/busctl) asks"),
                        "{details:?}"
                    );
                    hostile_shown += 1;
                } else {
                    assert_eq!(text(&details, keys::APP_ID), me());
                    break;
                }
            }
            Ev::Dismiss(..) => {}
            Ev::Confirm(..) => panic!("no question was expected"),
        }
    }
    assert_eq!(hostile_shown, MAX_BINDINGS, "{}", rig.daemon.logs());
    // The household app's binding still completes.
    let code = Binding1Proxy::builder(&rig.conn)
        .path(theirs.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap()
        .code_value()
        .await
        .unwrap();
    rig.world.scan(&code, "approve").await;
    common::eventually("the household's binding to be bound", || async {
        rig.binding_state(&theirs).await == "bound"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_bindings_and_status_show_only_what_the_apps_policy_lets_it_charge() {
    let rig = Rig::start(&format!("[apps.\"{HOSTILE}\"]\nallow = false\n")).await;
    let (path, state) = bind_approved(&rig.world, &rig.conn, &rig.d).await;
    assert_eq!(state, "bound");
    // The household app (allowed as an unknown app) sees the binding.
    let mine = rig.d.list_bindings(HashMap::new()).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].binding.as_str(), path.as_str());
    // The denied app sees none, in ListBindings or GetStatus, and the binding object
    // answers it as a path nobody serves: no label (the masked account), no QR code.
    assert_eq!(rig.hostile_list_bindings().await, 0);
    let get_label = rig
        .hostile_at(
            path.as_str(),
            "org.freedesktop.DBus.Properties.Get",
            &["ss", "io.scanbind.Binding1", "Label"],
        )
        .await;
    assert!(
        get_label
            .as_ref()
            .is_err_and(|e| e.contains("Unknown object")),
        "{get_label:?}"
    );
    let qr = rig
        .hostile_at(
            path.as_str(),
            "io.scanbind.Binding1.GetQrPng",
            &["a{sv}", "0"],
        )
        .await;
    assert!(
        qr.as_ref().is_err_and(|e| e.contains("Unknown object")),
        "{qr:?}"
    );
    assert!(!rig.hostile_status_shows_a_binding().await);
    // Allowed for another wallet only: none either.
    write_policy(
        &rig.policy,
        &format!("[apps.\"{HOSTILE}\"]\nwallets = [\"GCASH\"]\n"),
    );
    assert_eq!(rig.hostile_list_bindings().await, 0);
    assert!(!rig.hostile_status_shows_a_binding().await);
    // Allowed for this wallet: it sees it.
    write_policy(
        &rig.policy,
        &format!("[apps.\"{HOSTILE}\"]\nwallets = [\"ALIPAY_HK\"]\n"),
    );
    assert_eq!(rig.hostile_list_bindings().await, 1);
    // ... and may read it: the masked account, and `Expired` for the QR of a bound one.
    let get_label = rig
        .hostile_at(
            path.as_str(),
            "org.freedesktop.DBus.Properties.Get",
            &["ss", "io.scanbind.Binding1", "Label"],
        )
        .await
        .unwrap();
    assert!(get_label.contains("****"), "{get_label}");
    let qr = rig
        .hostile_at(
            path.as_str(),
            "io.scanbind.Binding1.GetQrPng",
            &["a{sv}", "0"],
        )
        .await;
    assert!(
        qr.as_ref().is_err_and(|e| e.contains("no longer valid")),
        "{qr:?}"
    );
    assert!(rig.hostile_status_shows_a_binding().await);
    // unknown_apps = "deny": an unlisted app sees none, a listed one its own.
    write_policy(
        &rig.policy,
        &format!("unknown_apps = \"deny\"\n[apps.\"{}\"]\n", me()),
    );
    assert_eq!(rig.hostile_list_bindings().await, 0);
    assert!(!rig.hostile_status_shows_a_binding().await);
    assert_eq!(rig.d.list_bindings(HashMap::new()).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_flood_is_cut_off_but_purchases_one_at_a_time_are_not() {
    let rules = format!(
        "[apps.\"{HOSTILE}\"]\nconfirm = true\n[apps.\"{}\"]\nconfirm = true\n",
        me()
    );
    let rig = Rig::start(&rules).await;
    let (_, state) = bind_approved(&rig.world, &rig.conn, &rig.d).await;
    assert_eq!(state, "bound");
    let (_agent, mut events) = rig.agent().await;

    // Ten charges at once: one question on the display (held open here), the other
    // nine refused at once without one.
    let mut calls: FuturesUnordered<_> = (0..10)
        .map(|i| {
            let rig = &rig;
            async move { rig.hostile_pay(&format!("flood-{i}")).await }
        })
        .collect();
    let (refused, (asked, answer)) = tokio::time::timeout(GUARD, async {
        let mut refused = Vec::new();
        let mut question = None;
        while refused.len() < 9 || question.is_none() {
            tokio::select! {
                Some(r) = calls.next() => refused.push(r.expect_err("a flood charge was not refused")),
                q = next_confirm(&mut events), if question.is_none() => question = Some(q),
            }
        }
        (refused, question.unwrap())
    })
    .await
    .unwrap_or_else(|_| panic!("the flood was not cut off\n{}", rig.daemon.logs()));
    for err in &refused {
        assert!(err.contains("one question at a time"), "{err}");
    }
    assert_eq!(text(&asked, keys::APP_ID), HOSTILE);
    answer.send((false, HashMap::new())).unwrap();
    let last = calls.next().await.unwrap().unwrap_err();
    assert!(last.contains("declined"), "{last}");
    assert!(calls.next().await.is_none());

    // One after the other, each declined, up to the limit ...
    for i in 1..MAX_UNAPPROVED_PROMPTS {
        let ask = async {
            let (asked, answer) = next_confirm(&mut events).await;
            assert_eq!(text(&asked, keys::APP_ID), HOSTILE);
            answer.send((false, HashMap::new())).unwrap();
        };
        let order = format!("nag-{i}");
        let (result, ()) = tokio::join!(rig.hostile_pay(&order), ask);
        assert!(result.unwrap_err().contains("declined"));
    }
    // ... then refused without a question.
    let err = rig.hostile_pay("nag-last").await.unwrap_err();
    assert!(err.contains("without approval"), "{err}");

    // The household app buys one thing at a time, each approved, more often than the
    // limit: never cut off, and the next question on the display is always its own
    // (nothing of the hostile app's was shown after the cut-off).
    for i in 0..2 * MAX_UNAPPROVED_PROMPTS {
        let order = format!("mine-{i}");
        let ask = async {
            let (asked, answer) = next_confirm(&mut events).await;
            assert_eq!(text(&asked, keys::APP_ID), me());
            assert_eq!(text(&asked, "kind"), keys::KIND_PAYMENT);
            answer.send((true, HashMap::new())).unwrap();
        };
        let (paid, ()) = tokio::join!(rig.d.pay(&order, 100, "HKD", "Coins", HashMap::new()), ask);
        let p = paid.unwrap_or_else(|e| panic!("{order}: {e}\n{}", rig.daemon.logs()));
        assert_eq!(settled(&rig.conn, &p).await, "succeeded");
    }
    // Nothing of the hostile app's was recorded.
    let hostile_rows: i64 = rusqlite::Connection::open(rig.state.path().join("journal.sqlite3"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM payments WHERE app_id = ?1",
            [HOSTILE],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hostile_rows, 0);
}
