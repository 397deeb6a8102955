//! The daemon's own encrypted file vault (`--vault file`) and the refusal to start
//! without a Secret Service, through real processes: a private `dbus-daemon` that
//! activates nothing (so **no Secret Service** is on it, and it is also the daemon's
//! session bus), an in-process sandbox, the `scanbind-server` binary on SQLite and the
//! `scanbindd` binary.
//!
//! These tests need no gnome-keyring; they must pass with none.

mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{DaemonProc, GUARD, World, connect, spawn_daemon_with, world};
use futures_util::StreamExt as _;
use scanbind_device_api::DeviceKey;
use scanbind_ipc::{Binding1Proxy, BindingState, Daemon1Proxy, Payment1Proxy, PaymentState};
use scanbindd::test_util::PrivateBus;
use zbus::proxy::CacheProperties;

/// 32 random bytes in a 0600 file of their own: a master secret.
fn secret_file(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let mut bytes = vec![0_u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, bytes)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The devices the server has registered: `(device_id, public_key)`.
fn server_devices(world: &World) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(world.dir.path().join("server.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT device_id, public_key FROM devices ORDER BY device_id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The device ids of the server's active bindings.
fn server_binding_devices(world: &World) -> Vec<String> {
    let conn = rusqlite::Connection::open(world.dir.path().join("server.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT device_id FROM bindings WHERE status = 'active'")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Binds `ALIPAY_HK` through the sandbox's scan.
async fn bind(world: &World, conn: &zbus::Connection, d: &Daemon1Proxy<'_>, daemon: &DaemonProc) {
    let path = d.start_binding("ALIPAY_HK", HashMap::new()).await.unwrap();
    let binding = Binding1Proxy::builder(conn)
        .path(path)
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut bound = binding.receive_completed().await.unwrap();
    world
        .scan(&binding.code_value().await.unwrap(), "approve")
        .await;
    let signal = tokio::time::timeout(GUARD, bound.next())
        .await
        .expect("no Binding Completed within the guard time")
        .unwrap();
    assert_eq!(signal.args().unwrap().state, "bound", "{}", daemon.logs());
}

/// Pays `amount` HKD for `order` and waits until the payment is final: `succeeded`.
async fn pay(conn: &zbus::Connection, d: &Daemon1Proxy<'_>, order: &str, daemon: &DaemonProc) {
    let path = d
        .pay(order, 1200, "HKD", "Coins", HashMap::new())
        .await
        .unwrap();
    let payment = Payment1Proxy::builder(conn)
        .path(path)
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut completed = payment.receive_completed().await.unwrap();
    let now: PaymentState = payment.state().await.unwrap().parse().unwrap();
    if !now.is_terminal() {
        tokio::time::timeout(GUARD, completed.next())
            .await
            .expect("no Payment Completed within the guard time")
            .unwrap();
    }
    assert_eq!(
        payment.state().await.unwrap(),
        "succeeded",
        "{}",
        daemon.logs()
    );
}

/// Runs `scanbindd` with `args` (and `--state-dir state`) on `bus` as its session bus,
/// expecting it to exit by itself; its exit status and stderr. No `ready` line may
/// come.
fn run_to_exit(
    bus: &PrivateBus,
    state: &Path,
    args: &[&str],
) -> (std::process::ExitStatus, String) {
    use wait_timeout::ChildExt as _;
    let log = state.join("refused.log");
    let mut child = Command::new(common::daemon_binary())
        .env_remove("SCANBINDD_CRASH_AT")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("SCANBIND_VAULT_SERVICE")
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env("SCANBIND_LOG", "info")
        .args(["--address", bus.address()])
        .args(["--server", "http://127.0.0.1:9", "--state-dir"])
        .arg(state)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("spawn scanbindd");
    let status = match child.wait_timeout(GUARD).unwrap() {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scanbindd did not exit within {GUARD:?}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(!out.contains("ready"), "it must not start: {out}");
    (status, std::fs::read_to_string(&log).unwrap())
}

/// Whether `haystack` holds `needle`, or any 16-byte piece of it.
fn contains_any_piece(haystack: &[u8], needle: &[u8]) -> bool {
    let piece = needle.len().min(16);
    needle
        .windows(piece)
        .any(|p| haystack.windows(piece).any(|w| w == p))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_vault_keeps_the_device_and_its_binding_without_any_secret_service() {
    let world = world().await;
    let server = world.spawn_server(&[]);
    // The daemon's session bus is this private bus too: no Secret Service anywhere.
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let (secret, secret_bytes) = secret_file(secrets.path(), "vault.key");
    let secret_arg = secret.to_str().unwrap();
    let file_vault = [
        "--address",
        bus.address(),
        "--vault",
        "file",
        "--vault-secret-file",
        secret_arg,
    ];
    let no_keyring = [("DBUS_SESSION_BUS_ADDRESS", bus.address())];
    let vault_dir = state.path().join("vault");
    let vault_file = vault_dir.join("scanbind.keyring");

    let daemon = spawn_daemon_with(&file_vault, &server.base, state.path(), &no_keyring);
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    bind(&world, &conn, &d, &daemon).await;
    pay(&conn, &d, "vault-order-1", &daemon).await;
    let devices = server_devices(&world);
    assert_eq!(devices.len(), 1, "{devices:?}");
    let device_id = devices[0].0.clone();
    assert_eq!(
        server_binding_devices(&world),
        std::slice::from_ref(&device_id)
    );
    assert_eq!(mode(&vault_file), 0o600);
    assert_eq!(mode(&vault_dir), 0o700);
    drop(daemon);

    // Restarted on the same vault: the same device (no new registration), the binding
    // restored from the vault's sealed tokens, and it pays.
    let daemon = spawn_daemon_with(&file_vault, &server.base, state.path(), &no_keyring);
    let bindings = d.list_bindings(HashMap::new()).await.unwrap();
    assert_eq!(bindings.len(), 1, "{bindings:?}: {}", daemon.logs());
    assert_eq!(bindings[0].state, BindingState::Bound);
    pay(&conn, &d, "vault-order-2", &daemon).await;
    assert_eq!(
        server_devices(&world),
        devices,
        "the server sees the same device"
    );
    drop(daemon);

    // The same secret from the systemd credential instead of a file.
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("scanbind-vault"), &secret_bytes).unwrap();
    let daemon = spawn_daemon_with(
        &["--address", bus.address(), "--vault", "file"],
        &server.base,
        state.path(),
        &[
            ("DBUS_SESSION_BUS_ADDRESS", bus.address()),
            ("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap()),
        ],
    );
    pay(&conn, &d, "vault-order-3", &daemon).await;
    assert_eq!(server_devices(&world), devices);
    drop(daemon);
    let ledger = world.ledger().await;
    assert_eq!(ledger["payments"].as_array().unwrap().len(), 3, "{ledger}");

    // A wrong secret: the daemon refuses to start and the vault is untouched.
    let before = std::fs::read(&vault_file).unwrap();
    let (wrong, _) = secret_file(secrets.path(), "wrong.key");
    let (status, log) = run_to_exit(
        &bus,
        state.path(),
        &[
            "--vault",
            "file",
            "--vault-secret-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("cannot be decrypted with this master secret"),
        "{log}"
    );
    assert!(log.contains(&vault_file.display().to_string()), "{log}");
    assert_eq!(
        std::fs::read(&vault_file).unwrap(),
        before,
        "the vault changed"
    );

    // Inside: the device key the server knows and the binding's sealed tokens, neither
    // of them (nor any 16-byte piece of them) in the file's bytes in the clear.
    let keyring = oo7::file::Keyring::load(&vault_file, oo7::Secret::from(secret_bytes.clone()))
        .await
        .unwrap();
    let mut device_key = None;
    let mut sealed = Vec::new();
    for item in keyring.items().await.unwrap() {
        let item = item.unwrap();
        let account = item.attributes()["account"].to_string();
        if account == "device-key" {
            device_key = Some(item.secret().as_bytes().to_vec());
        } else if account.starts_with("sealed-tokens:") {
            sealed.push(item.secret().as_bytes().to_vec());
        }
    }
    let device_key = device_key.expect("the device key is in the vault");
    assert_eq!(
        DeviceKey::from_pkcs8(&device_key).unwrap().device_id(),
        device_id
    );
    assert_eq!(sealed.len(), 1, "one binding's sealed tokens");
    let bytes = std::fs::read(&vault_file).unwrap();
    assert!(
        !contains_any_piece(&bytes, &device_key),
        "device key in clear"
    );
    assert!(
        !contains_any_piece(&bytes, &sealed[0]),
        "sealed tokens in clear"
    );
    assert!(
        !contains_any_piece(&bytes, &secret_bytes),
        "master secret in the file"
    );
    for text in [&b"device-key"[..], b"sealed-tokens", b"io.scanbind"] {
        assert!(!contains_any_piece(&bytes, text), "{text:?} in clear");
    }
    // And the master secret is in no log.
    let logs = std::fs::read(state.path().join("scanbindd.log")).unwrap();
    assert!(!contains_any_piece(&logs, &secret_bytes));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_secret_service_the_default_vault_refuses_to_start_naming_both_fixes() {
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (status, log) = run_to_exit(&bus, state.path(), &[]);
    assert!(!status.success(), "{log}");
    for fix in [
        "no Secret Service",
        "apt install gnome-keyring",
        "--vault file",
        "scanbind-vault",
        "--vault-secret-file",
    ] {
        assert!(log.contains(fix), "{fix:?} missing: {log}");
    }
    assert!(!state.path().join("vault").exists(), "no silent fallback");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_vault_without_a_master_secret_refuses_to_start() {
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (status, log) = run_to_exit(&bus, state.path(), &["--vault", "file"]);
    assert!(!status.success(), "{log}");
    for fix in [
        "no master secret",
        "systemd-creds encrypt",
        "--vault-secret-file",
    ] {
        assert!(log.contains(fix), "{fix:?} missing: {log}");
    }
    assert!(!state.path().join("vault").exists());

    // A secret file for the Secret Service is a mistake, not ignored.
    let secrets = tempfile::tempdir().unwrap();
    let (secret, _) = secret_file(secrets.path(), "vault.key");
    let (status, log) = run_to_exit(
        &bus,
        state.path(),
        &["--vault-secret-file", secret.to_str().unwrap()],
    );
    assert!(!status.success(), "{log}");
    assert!(log.contains("use it with --vault file"), "{log}");
}
