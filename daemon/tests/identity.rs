//! A caller is (uid, app id): the same app binary run by two users is two owners that
//! share no payment, no order id and no budget. Real processes: a private
//! `dbus-daemon` that admits every user, `scanbindd` (as root, on the session's
//! keyring), the sandbox and `scanbind-server`, and one app binary (`busctl`) run as
//! two other users with `setpriv`.
//!
//! Needs `KEYRING_SS_TEST=1` (run through `scripts/test`; see daemon/README.md) and
//! root (to run the app as other users).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{bind_approved, eventually, spawn_daemon_with, world};
use scanbind_ipc::{BUS_NAME, DAEMON_PATH, Daemon1Proxy, Payment1Proxy};
use scanbind_testkit::system::{SystemBus, ensure_users};
use scanbindd::test_util::require_secret_service;
use zbus::proxy::CacheProperties;

/// Two users of the same app: system users this test creates if they are not there
/// (the bus admits only users it can look up).
const ALICE: &str = "sbtest-alice";
const BOB: &str = "sbtest-bob";

/// The one app binary both users run.
const APP: &str = "/usr/bin/busctl";

/// The app (`busctl` on the shared bus) as `uid` calls `method` (`interface.member`)
/// on the object `path` of the daemon with `args` (the signature, then the values).
fn call_as(uid: u32, bus: &SystemBus, path: &str, method: &str, args: &[&str]) -> Output {
    let (interface, member) = method.rsplit_once('.').expect("interface.member");
    Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "--",
            APP,
            &format!("--address={}", bus.address()),
        ])
        .args(["call", BUS_NAME, path, interface, member])
        .args(args)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("setpriv and busctl run")
}

/// `Pay(order, amount)` by the app as `uid`: the payment's path, or the error.
fn pay_as(uid: u32, bus: &SystemBus, order: &str, amount: i64) -> Result<String, String> {
    let amount = amount.to_string();
    let out = call_as(
        uid,
        bus,
        DAEMON_PATH,
        "io.scanbind.Daemon1.Pay",
        &["sxssa{sv}", order, &amount, "HKD", "Coins", "0"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        Ok(text
            .trim()
            .trim_start_matches("o ")
            .trim_matches('"')
            .to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `ListPayments` by the app as `uid`: the paths it lists.
fn list_as(uid: u32, bus: &SystemBus) -> Vec<String> {
    let out = call_as(
        uid,
        bus,
        DAEMON_PATH,
        "io.scanbind.Daemon1.ListPayments",
        &["a{sv}", "0"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `a(osxsbsx) N "/io/..." "order" 4900 "HKD" false "succeeded" 1700000000 ...`
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("\"/"))
        .map(|w| w.trim_matches('"').to_owned())
        .collect()
}

/// The journal's (uid, app id, order id, state, idempotency key) rows, read from outside.
fn rows(state: &Path) -> Vec<(u32, String, String, String, String)> {
    let conn = rusqlite::Connection::open(state.join("journal.sqlite3")).unwrap();
    let mut stmt = conn
        .prepare("SELECT uid, app_id, order_id, state, idempotency_key FROM payments ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// Waits until every payment in the journal is settled as succeeded.
async fn all_succeeded(state: &Path, n: usize) {
    eventually(&format!("{n} payments to succeed"), || async {
        let rows = rows(state);
        rows.len() == n && rows.iter().all(|r| r.3 == "succeeded")
    })
    .await;
}

/// `Finish` of the payment at `path` by the app as `uid`.
fn finish_as(uid: u32, bus: &SystemBus, path: &str) -> Output {
    call_as(
        uid,
        bus,
        path,
        "io.scanbind.Payment1.Finish",
        &["a{sv}", "0"],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_users_of_the_same_app_share_no_payment_order_or_budget() {
    require_secret_service();
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs the app as other users: run it as root"
    );
    let [alice, bob] = ensure_users([(ALICE, &[]), (BOB, &[])]).map(|u| u.uid);
    let world = world().await;
    let server = world.spawn_server(&[]);
    // A bus that admits every user (a session bus admits only its own), like a system
    // bus, whose policy leaves every decision to the daemon.
    let bus = SystemBus::options()
        .open_to_every_user()
        .start()
        .expect("dbus-daemon runs");
    let state = tempfile::tempdir().unwrap();
    // The app may charge 50.00 a day: per user.
    let policy = state.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!("[apps.\"{APP}\".limits.HKD]\ndaily = 5000\n"),
    )
    .unwrap();
    let policy_arg = policy.to_string_lossy().into_owned();
    let daemon = spawn_daemon_with(
        &["--address", bus.address(), "--policy", &policy_arg],
        &server.base,
        state.path(),
        &[],
    );
    let conn = bus.connect().await.unwrap();
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    assert_eq!(bind_approved(&world, &conn, &d).await.1, "bound");

    // Alice pays order-1, then Bob pays the same order id with the same app: two
    // payments, two idempotency keys, and Bob's budget is not Alice's.
    let alices =
        pay_as(alice, &bus, "order-1", 4900).unwrap_or_else(|e| panic!("{e}\n{}", daemon.logs()));
    all_succeeded(state.path(), 1).await;
    let bobs =
        pay_as(bob, &bus, "order-1", 4900).unwrap_or_else(|e| panic!("{e}\n{}", daemon.logs()));
    all_succeeded(state.path(), 2).await;
    assert_ne!(alices, bobs);
    let journal = rows(state.path());
    assert_eq!(
        journal
            .iter()
            .map(|r| (r.0, r.1.as_str(), r.2.as_str()))
            .collect::<Vec<_>>(),
        [(alice, APP, "order-1"), (bob, APP, "order-1")]
    );
    assert_ne!(journal[0].4, journal[1].4, "one idempotency key each");
    // Two charges at the wallet too (the server keeps them apart).
    let ledger = world.ledger().await;
    let movements: Vec<&serde_json::Value> = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["moneyMovements"])
        .collect();
    assert_eq!(movements, [1, 1], "{ledger}");

    // The same order again by Alice is her payment, not a new one.
    assert_eq!(pay_as(alice, &bus, "order-1", 4900).unwrap(), alices);
    // Each lists only its own.
    assert_eq!(list_as(alice, &bus), std::slice::from_ref(&alices));
    assert_eq!(list_as(bob, &bus), std::slice::from_ref(&bobs));
    // The same binary run by a third user (root): none of theirs.
    assert!(list_as(0, &bus).is_empty());

    // Bob cannot read or finish Alice's payment: it answers him as a path that is not
    // served (UnknownObject), so he does not even learn that it exists.
    let read = call_as(
        bob,
        &bus,
        &alices,
        "org.freedesktop.DBus.Properties.Get",
        &["ss", "io.scanbind.Payment1", "State"],
    );
    assert!(!read.status.success());
    let err = String::from_utf8_lossy(&read.stderr);
    assert!(err.contains(&format!("Unknown object '{alices}'")), "{err}");
    let finish = finish_as(bob, &bus, &alices);
    assert!(!finish.status.success());
    let err = String::from_utf8_lossy(&finish.stderr);
    assert!(err.contains(&format!("Unknown object '{alices}'")), "{err}");
    // She still can, once.
    let finish = finish_as(alice, &bus, &alices);
    assert!(
        finish.status.success(),
        "{}",
        String::from_utf8_lossy(&finish.stderr)
    );

    // Budgets: Alice's next 2.00 would exceed her 50.00 a day (49.00 spent) ...
    let err = pay_as(alice, &bus, "order-2", 200).unwrap_err();
    assert!(err.contains("budget"), "{err}");
    // ... and so would Bob's: each has spent 49.00 of their own.
    let err = pay_as(bob, &bus, "order-2", 200).unwrap_err();
    assert!(err.contains("budget"), "{err}");
    // 1.00 fits each.
    pay_as(bob, &bus, "order-3", 100).unwrap();
    all_succeeded(state.path(), 3).await;

    // This test's own connection (root, another app) sees none of theirs either, and
    // cannot read them.
    assert!(d.list_payments(HashMap::new()).await.unwrap().is_empty());
    let theirs = Payment1Proxy::builder(&conn)
        .path(alices.as_str())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let err = theirs.state().await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownObject"), "{err:?}");
    drop(daemon);
}

/// `Pay(order, 1.00 HKD)` by `uid` from inside a user and mount namespace of its own,
/// after `setup` (shell commands run there first; `exec` of the caller follows):
/// `$BUSCTL` then calls the daemon. The payment's path, or the error.
fn pay_from_namespace(
    uid: u32,
    bus: &SystemBus,
    setup: &str,
    busctl: &str,
    order: &str,
) -> Result<String, String> {
    // sh -c SCRIPT _ ADDRESS ORDER: the caller is exec'd, so it is the process the bus
    // knows.
    let script = format!(
        "{setup} && exec {busctl} --address=\"$1\" call {BUS_NAME} {DAEMON_PATH} \
         io.scanbind.Daemon1 Pay sxssa{{sv}} \"$2\" 100 HKD Coins 0"
    );
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "--",
        ])
        .args([
            "unshare",
            "--user",
            "--map-current-user",
            "--keep-caps",
            "--mount",
        ])
        .args(["--propagation", "private", "sh", "-c", &script, "sh"])
        .args([bus.address(), order])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("setpriv, unshare and busctl run");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_in_a_namespace_of_its_own_cannot_claim_an_app() {
    require_secret_service();
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs the app as another user: run it as root"
    );
    let [alice] = ensure_users([(ALICE, &[])]).map(|u| u.uid);
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = SystemBus::options()
        .open_to_every_user()
        .start()
        .expect("dbus-daemon runs");
    let state = tempfile::tempdir().unwrap();
    // Only busctl and one Flatpak app may charge; every other app is refused.
    let policy = state.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!("unknown_apps = \"deny\"\n[apps.\"{APP}\"]\n[apps.\"flatpak:com.example.Game\"]\n"),
    )
    .unwrap();
    let policy_arg = policy.to_string_lossy().into_owned();
    let daemon = spawn_daemon_with(
        &["--address", bus.address(), "--policy", &policy_arg],
        &server.base,
        state.path(),
        &[],
    );
    let conn = bus.connect().await.unwrap();
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    assert_eq!(bind_approved(&world, &conn, &d).await.1, "bound");

    // The genuine app pays.
    pay_as(alice, &bus, "genuine", 100).unwrap_or_else(|e| panic!("{e}\n{}", daemon.logs()));

    // Alice's own program (a copy of busctl: another file) mounted over the app's path
    // in a namespace of her own: /proc/PID/exe says /usr/bin/busctl, and it is refused.
    let own = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        own.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let evil = own.path().join("evil");
    std::fs::copy(APP, &evil).unwrap();
    let setup = format!("mount --bind '{}' {APP}", evil.display());
    let err = pay_from_namespace(alice, &bus, &setup, APP, "fake-exe").unwrap_err();
    assert!(
        err.contains("not let unverified:/usr/bin/busctl"),
        "{err}\n{}",
        daemon.logs()
    );

    // A fake Flatpak sandbox: a root of her own with a .flatpak-info naming the allowed
    // app (and the host's /usr, /etc, /proc and /tmp, for the bus): refused.
    let root = own.path().join("root");
    for dir in ["usr", "etc", "proc", "tmp", "app"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for link in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{link}"), root.join(link)).unwrap();
    }
    std::fs::write(
        root.join(".flatpak-info"),
        "[Application]\nname=com.example.Game\n\n[Instance]\napp-path=/var/lib/flatpak/app/com.example.Game/x86_64/stable/1/files\n",
    )
    .unwrap();
    let r = root.display();
    let script_setup = format!(
        "for d in usr etc tmp; do mount --rbind /$d '{r}/'$d || exit 1; done && \
         mount --rbind /proc '{r}/proc'"
    );
    let err = pay_from_namespace(
        alice,
        &bus,
        &script_setup,
        &format!("chroot '{r}' {APP}"),
        "fake-flatpak",
    )
    .unwrap_err();
    assert!(
        err.contains("not let unverified:"),
        "{err}\n{}",
        daemon.logs()
    );
    assert!(!err.contains("flatpak:"), "{err}");
    // The fake fired: the daemon read the .flatpak-info naming the app, and found no
    // installation behind it.
    let logs = daemon.logs();
    assert!(
        logs.contains("installation does not back") && logs.contains("com.example.Game"),
        "{logs}"
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_that_execs_another_program_keeps_no_identity() {
    require_secret_service();
    let python = std::env::var("SCANBIND_PYTHON")
        .expect("SCANBIND_PYTHON: a Python with jeepney (scripts/test sets it)");
    // The app: the real Python interpreter (the venv's python is a link to it).
    let app = std::fs::canonicalize(&python).unwrap();
    let world = world().await;
    let server = world.spawn_server(&[]);
    let bus = SystemBus::options()
        .open_to_every_user()
        .start()
        .expect("dbus-daemon runs");
    let state = tempfile::tempdir().unwrap();
    let policy = state.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!("unknown_apps = \"deny\"\n[apps.\"{}\"]\n", app.display()),
    )
    .unwrap();
    let policy_arg = policy.to_string_lossy().into_owned();
    let daemon = spawn_daemon_with(
        &["--address", bus.address(), "--policy", &policy_arg],
        &server.base,
        state.path(),
        &[],
    );
    let conn = bus.connect().await.unwrap();
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    assert_eq!(bind_approved(&world, &conn, &d).await.1, "bound");

    // The other program: a copy of the interpreter (another file) that runs the second
    // half of the script on the connection the first half opened and paid on.
    let other_dir = tempfile::tempdir().unwrap();
    let other = other_dir.path().join("other-program");
    std::fs::copy(&app, &other).unwrap();
    // jeepney alone on the path (the venv's site-packages shadows parts of the standard
    // library for a plain interpreter).
    let found = Command::new(&python)
        .args([
            "-c",
            "import jeepney, os; print(os.path.dirname(jeepney.__file__))",
        ])
        .output()
        .expect("SCANBIND_PYTHON runs");
    assert!(
        found.status.success(),
        "jeepney: {}",
        String::from_utf8_lossy(&found.stderr)
    );
    let jeepney = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    let site_dir = tempfile::tempdir().unwrap();
    let copied = Command::new("cp")
        .args(["-r", &jeepney])
        .arg(site_dir.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let site = site_dir.path().to_str().unwrap().to_owned();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/connect_then_exec.py");
    let out = tokio::task::spawn_blocking({
        let (app, address, other) = (app.clone(), bus.address().to_owned(), other.clone());
        move || {
            Command::new(&app)
                .arg(&script)
                .args(["first", &address])
                .arg(&other)
                .env("PYTHONPATH", &site)
                .stdin(Stdio::null())
                .output()
                .expect("the script runs")
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.logs()
    );
    // The fault fired: the first program paid as the app on that connection.
    assert!(
        lines[0].starts_with("before-exec ok /io/scanbind/"),
        "{text}"
    );
    // The program it exec'd, on the same connection, is not the app.
    assert!(
        lines[1].starts_with("after-exec error io.scanbind.Daemon1.Error.NotAllowed")
            && lines[1].contains(&format!("unverified:{}", other.display())),
        "{text}\n{}",
        daemon.logs()
    );
    drop(daemon);
}
