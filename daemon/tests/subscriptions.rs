//! Subscriptions through the daemon (issue 27), end to end with real processes: the
//! sandbox, `scanbind-server` on the sandbox's clock with manual renewals
//! (`subscriptions.clock = "sandbox"`, `subscriptions.automatic = false`), a private
//! `dbus-daemon`, `scanbindd` and the keyring. This test process plays the app (one
//! connection) and the trusted display agent (a second one); another app is `busctl`
//! (app id `/usr/bin/busctl`), one process per call.
//!
//! Covers: bad input refused with typed errors before anything is asked; the
//! confirmation always asked on the display with the terms; the same id again (no
//! second question) and with other terms (`Duplicate`); a renewal driven by the
//! sandbox clock and a renewal pass reaching the owning app as `Changed` with a new,
//! verifiable receipt; a declined renewal (grace, access goes on) and its retry; another app neither seeing, reading nor cancelling it (and its
//! policy forbidding it subscriptions: `NotAllowed`); the
//! device owner listing every app's subscriptions and cancelling one (`Manager1`, as
//! `scanbindctl subscriptions`); cancel keeping access until the period end, then
//! `expired`.
//!
//! Needs `KEYRING_SS_TEST=1` (run through `scripts/test`; see daemon/README.md).

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::agent::{agent_connection, next_confirm, register, text};
use common::{GUARD, bind_approved, connect, spawn_daemon_with, world};
use futures_util::StreamExt as _;
use scanbind_device_api::receipt::{ReceiptKeySet, verify_subscription_receipt};
use scanbind_ipc::Error as Wire;
use scanbind_ipc::proxy::{Daemon1Proxy, Manager1Proxy, Subscription1Proxy};
use scanbind_ipc::types::keys::agent as keys;
use scanbind_ipc::types::keys::subscribe as opt;
use scanbind_ipc::{BUS_NAME, DAEMON_PATH};
use scanbindd::test_util::{PrivateBus, require_secret_service};
use serde_json::{Value, json};
use zbus::proxy::CacheProperties;
use zvariant::Value as V;

/// Another app: `busctl`, a program of its own (its own app id).
const OTHER: &str = "/usr/bin/busctl";

const WEEK: i64 = 7 * 86_400;

/// The policy file: this test binary is a trusted agent; the other app may pay but
/// not subscribe.
fn write_policy(path: &Path) {
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let uid = rustix::process::getuid().as_raw();
    let body = format!(
        "[apps.\"{OTHER}\"]\nsubscriptions = false\n\
         [[trusted_agents]]\nuid = {uid}\nexe = \"{}\"\n",
        me.display()
    );
    std::fs::write(path, body).unwrap();
}

/// `busctl call` as the other app: its reply, or its error message.
async fn other(
    bus: &PrivateBus,
    path: &str,
    method: &str,
    args: &[&str],
) -> Result<String, String> {
    let (interface, member) = method.rsplit_once('.').unwrap();
    let out = tokio::process::Command::new(OTHER)
        .arg(format!("--address={}", bus.address()))
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

fn options<'a>(id: &'a str, extra: &[(&'a str, V<'a>)]) -> HashMap<&'a str, V<'a>> {
    let mut o = HashMap::from([(opt::SUBSCRIPTION_ID, V::from(id))]);
    for (k, v) in extra {
        o.insert(*k, v.clone());
    }
    o
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_renew_cancel_through_the_daemon() {
    require_secret_service();
    assert!(
        scanbind_testkit::tools::on_path("busctl"),
        "busctl (systemd) plays the other app"
    );
    let world = world().await;
    let server = world.spawn_server(&[
        ("SCANBIND_SERVER_SUBSCRIPTIONS_CLOCK", "sandbox"),
        ("SCANBIND_SERVER_SUBSCRIPTIONS_AUTOMATIC", "false"),
    ]);
    let out = world
        .server_cli(&[
            "admin", "--json", "keys", "create", "--name", "ops", "--scope", "admin",
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin_key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = common::http();
    let renewal_pass = || async {
        let resp = http
            .post(format!("{}/admin/v1/subscriptions/renewals", server.admin))
            .header("authorization", format!("Bearer {admin_key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    };
    let advance = |seconds: i64| {
        let world = &world;
        async move {
            world
                .control_post("/sandbox/v1/clock/advance", json!({"seconds": seconds}))
                .await;
        }
    };
    let receipt_keys: ReceiptKeySet = http
        .get(format!("{}/v1/receipt-keys", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let policy = state.path().join("policy.toml");
    write_policy(&policy);
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
    let (_path, bound) = bind_approved(&world, &conn, &d).await;
    assert_eq!(bound, "bound", "{}", daemon.logs());

    // Bad input: typed errors, nothing asked (no agent is registered yet: a question
    // would be `NeedsConfirmation`).
    let err = d
        .subscribe(
            "Sofa TV Premium",
            6800,
            "HKD",
            "P2M",
            options("sofa-1", &[]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Wire::InvalidArgument(ref m) if m.contains("period")),
        "{err:?}"
    );
    let err = d
        .subscribe("Sofa TV Premium", 6800, "HKD", "P1W", HashMap::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Wire::InvalidArgument(ref m) if m.contains("subscription-id")),
        "{err:?}"
    );
    let err = d
        .subscribe(
            "Sofa TV Premium",
            6800,
            "HKD",
            "P1W",
            options("sofa-1", &[(opt::TRIAL, V::from("P5D"))]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::InvalidArgument(_)), "{err:?}");
    let err = d
        .subscribe("Sofa TV Premium", 0, "HKD", "P1W", options("sofa-1", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::InvalidAmount(_)), "{err:?}");
    let err = d
        .subscribe(
            "Sofa TV Premium",
            6800,
            "HKD",
            "P1W",
            options("sofa-1", &[("colour", V::from("red"))]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::UnknownOption(_)), "{err:?}");
    // Without a display, a subscription is never made silently.
    let err = d
        .subscribe(
            "Sofa TV Premium",
            6800,
            "HKD",
            "P1W",
            options("sofa-1", &[]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NeedsConfirmation(_)), "{err:?}");

    // With the display: the user reads the terms and says yes.
    let (aconn, mut asked) = agent_connection(&bus).await;
    register(&aconn)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.logs()));
    let call = {
        let d = d.clone();
        tokio::spawn(async move {
            d.subscribe(
                "Sofa TV Premium",
                6800,
                "HKD",
                "P1W",
                options("sofa-1", &[]),
            )
            .await
        })
    };
    let (details, answer) = next_confirm(&mut asked).await;
    assert_eq!(text(&details, "kind"), keys::KIND_PAYMENT);
    let message = text(&details, keys::MESSAGE);
    assert!(
        message.contains(
            "Subscribe to Sofa TV Premium for HKD 68.00 a week, first charge today, renews every"
        ),
        "{message}"
    );
    assert!(message.contains("cancel any time"), "{message}");
    assert_eq!(text(&details, keys::AMOUNT_TEXT), "HKD 68.00");
    answer.send((true, HashMap::new())).unwrap();
    let path = call
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.logs()));
    let sub = Subscription1Proxy::builder(&conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    assert_eq!(sub.state().await.unwrap(), "active");
    assert_eq!(sub.subscription_id().await.unwrap(), "sofa-1");
    assert_eq!(sub.plan().await.unwrap(), "Sofa TV Premium");
    assert_eq!(sub.amount_minor().await.unwrap(), 6800);
    assert_eq!(sub.currency().await.unwrap(), "HKD");
    assert_eq!(sub.period().await.unwrap(), "P1W");
    assert!(sub.entitled().await.unwrap());
    assert_eq!(sub.periods_paid().await.unwrap(), 1);
    assert_eq!(sub.next_charge_minor().await.unwrap(), 6800);
    let end = sub.current_period_end().await.unwrap();
    assert!(end > 0);
    assert_eq!(sub.next_charge_at().await.unwrap(), end);
    let r = verify_subscription_receipt(&sub.receipt().await.unwrap(), &receipt_keys).unwrap();
    assert_eq!(r.app_subscription_id, "sofa-1");
    assert!(r.entitled);

    // The same id and terms again: the same object, no second question (a question
    // would wait for the agent, which does not answer, and end in `Denied`).
    let again = d
        .subscribe(
            "Sofa TV Premium",
            6800,
            "HKD",
            "P1W",
            options("sofa-1", &[]),
        )
        .await
        .unwrap();
    assert_eq!(again, path);
    // Other terms under the same id: `Duplicate`, nothing changes.
    let err = d
        .subscribe(
            "Sofa TV Premium",
            9900,
            "HKD",
            "P1W",
            options("sofa-1", &[]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::Duplicate(_)), "{err:?}");
    assert_eq!(sub.amount_minor().await.unwrap(), 6800);
    assert_eq!(
        d.list_subscriptions(HashMap::new()).await.unwrap(),
        vec![path.clone()]
    );

    // A week later the server renews it by itself; the owning app hears of it.
    let mut changed = sub.receive_changed().await.unwrap();
    advance(WEEK).await;
    renewal_pass().await;
    let signal = tokio::time::timeout(GUARD, changed.next())
        .await
        .unwrap_or_else(|_| panic!("no Changed within the guard time\n{}", daemon.logs()))
        .unwrap();
    let args = signal.args().unwrap();
    assert_eq!((args.state(), args.event()), (&"active", &"renewed"));
    assert_eq!(sub.periods_paid().await.unwrap(), 2);
    assert_eq!(sub.current_period_end().await.unwrap(), end + WEEK);
    let receipt = sub.receipt().await.unwrap();
    let r = verify_subscription_receipt(&receipt, &receipt_keys).unwrap();
    assert!(r.entitled);

    // The next renewal is declined (the balance is too low): grace, access goes on; the
    // retry a day later (the server's first retry) pays.
    let balance = |minor: &'static str| {
        let world = &world;
        async move {
            world
                .control_post(
                    "/sandbox/v1/users",
                    json!({"user": "alipay_hk_user", "wallet": "ALIPAY_HK", "balance": minor}),
                )
                .await;
        }
    };
    balance("10").await;
    advance(WEEK).await;
    renewal_pass().await;
    let mut events = Vec::new();
    while events.len() < 2 {
        let signal = tokio::time::timeout(GUARD, changed.next())
            .await
            .expect("no Changed for the declined renewal within the guard time")
            .unwrap();
        let args = signal.args().unwrap();
        events.push((args.state().to_string(), args.event().to_string()));
    }
    assert_eq!(events[0].1, "renewal-failed", "{events:?}");
    assert_eq!(
        events[1],
        ("grace".to_owned(), "grace".to_owned()),
        "{events:?}"
    );
    assert_eq!(sub.state().await.unwrap(), "grace");
    assert!(sub.entitled().await.unwrap(), "access goes on in grace");
    assert_eq!(sub.periods_paid().await.unwrap(), 2);
    balance("1000000").await;
    advance(86_400).await;
    renewal_pass().await;
    let signal = tokio::time::timeout(GUARD, changed.next())
        .await
        .expect("no Changed for the retry within the guard time")
        .unwrap();
    let args = signal.args().unwrap();
    assert_eq!((args.state(), args.event()), (&"active", &"renewed"));
    assert_eq!(sub.periods_paid().await.unwrap(), 3);
    let end = end + WEEK;

    // Another app sees nothing of it and cannot cancel it.
    let listed = other(
        &bus,
        DAEMON_PATH,
        "io.scanbind.Daemon1.ListSubscriptions",
        &["a{sv}", "0"],
    )
    .await
    .unwrap();
    assert_eq!(listed, "ao 0");
    let read = other(
        &bus,
        path.as_str(),
        "org.freedesktop.DBus.Properties.Get",
        &["ss", "io.scanbind.Subscription1", "Receipt"],
    )
    .await
    .unwrap_err();
    assert!(read.contains("Unknown object"), "{read}");
    let cancel = other(
        &bus,
        path.as_str(),
        "io.scanbind.Subscription1.Cancel",
        &["a{sv}", "0"],
    )
    .await
    .unwrap_err();
    assert!(cancel.contains("Unknown object"), "{cancel}");
    // Its policy forbids it subscriptions: refused before anything is asked.
    let refused = other(
        &bus,
        DAEMON_PATH,
        "io.scanbind.Daemon1.Subscribe",
        &[
            "sxssa{sv}",
            "Sofa TV Premium",
            "6800",
            "HKD",
            "P1W",
            "1",
            "subscription-id",
            "s",
            "other-1",
        ],
    )
    .await
    .unwrap_err();
    assert!(
        refused.contains("does not let /usr/bin/busctl start subscriptions"),
        "{refused}"
    );
    assert_eq!(sub.state().await.unwrap(), "active");

    // A second one, with a free trial: the device owner sees every app's subscriptions
    // and cancels this one (Manager1, as `scanbindctl subscriptions`); the app hears.
    let call = {
        let d = d.clone();
        tokio::spawn(async move {
            d.subscribe(
                "Sofa TV Kids",
                3800,
                "HKD",
                "P1M",
                options("sofa-2", &[(opt::TRIAL, V::from("P3D"))]),
            )
            .await
        })
    };
    let (details, answer) = next_confirm(&mut asked).await;
    let message = text(&details, keys::MESSAGE);
    assert!(message.contains("free for 3 days"), "{message}");
    answer.send((true, HashMap::new())).unwrap();
    let path2 = call.await.unwrap().unwrap();
    let sub2 = Subscription1Proxy::builder(&conn)
        .path(path2.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    assert_eq!(sub2.state().await.unwrap(), "trial");
    assert_eq!(sub2.periods_paid().await.unwrap(), 0);
    let mut changed2 = sub2.receive_changed().await.unwrap();
    let manager = Manager1Proxy::new(&conn).await.unwrap();
    let all = manager.list_subscriptions(HashMap::new()).await.unwrap();
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.iter().all(|s| s.app_id == me.to_str().unwrap()),
        "{all:?}"
    );
    let id2 = all
        .iter()
        .find(|s| s.app_subscription_id == "sofa-2")
        .unwrap()
        .subscription
        .clone();
    assert_eq!(
        manager
            .cancel_subscription(&id2, HashMap::new())
            .await
            .unwrap(),
        "cancelled"
    );
    let signal = tokio::time::timeout(GUARD, changed2.next())
        .await
        .expect("no Changed(cancelled) within the guard time")
        .unwrap();
    assert_eq!(signal.args().unwrap().state(), &"cancelled");
    assert_eq!(sub2.state().await.unwrap(), "cancelled");
    let err = manager
        .cancel_subscription("sub_nosuch", HashMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Wire::NotFound(_)), "{err:?}");
    assert_eq!(sub.state().await.unwrap(), "active");

    // Cancel: no more renewals, access until the period's end, then expired.
    assert_eq!(sub.cancel(HashMap::new()).await.unwrap(), "cancelled");
    let signal = tokio::time::timeout(GUARD, changed.next())
        .await
        .expect("no Changed(cancelled) within the guard time")
        .unwrap();
    let args = signal.args().unwrap();
    assert_eq!((args.state(), args.event()), (&"cancelled", &"cancelled"));
    assert!(sub.entitled().await.unwrap());
    assert_eq!(sub.next_charge_at().await.unwrap(), 0);
    assert_eq!(sub.current_period_end().await.unwrap(), end + WEEK);
    advance(WEEK).await;
    renewal_pass().await;
    let signal = tokio::time::timeout(GUARD, changed.next())
        .await
        .expect("no Changed(expired) within the guard time")
        .unwrap();
    let args = signal.args().unwrap();
    assert_eq!((args.state(), args.event()), (&"expired", &"expired"));
    assert!(!sub.entitled().await.unwrap());
    assert_eq!(
        sub.periods_paid().await.unwrap(),
        3,
        "no charge after the cancel"
    );
}
