//! The daemon's own encrypted file vault (`--vault file`, system mode's default) and
//! the refusal to start without a Secret Service, through real processes: a private
//! `dbus-daemon` that activates nothing (so **no Secret Service** is on it, and it is
//! also the daemon's session or system bus), an in-process sandbox, the
//! `scanbind-server` binary on SQLite and the `scanbindd` binary. System mode
//! (`--system`, the credential in `$CREDENTIALS_DIRECTORY`): every bad credential and
//! every foreign, damaged or exposed vault is refused with the vault's bytes unchanged;
//! `--system --dev` without a credential; the root-owned policy file.
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
use scanbind_ipc::{BindingState, Daemon1Proxy, Payment1Proxy, PaymentState};
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
    let (_, state) = common::bind_approved(world, conn, d).await;
    assert_eq!(state, "bound", "{}", daemon.logs());
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
    let mut all = vec!["--address", bus.address(), "--server", "http://127.0.0.1:9"];
    all.extend_from_slice(args);
    run_to_exit_with(state, &all, &[("DBUS_SESSION_BUS_ADDRESS", bus.address())])
}

/// `scanbindd --system` (the unit's way: a merchant server, `--state-dir state`) with
/// `bus` as its system bus and `creds` (if any) as `$CREDENTIALS_DIRECTORY`, expected
/// to refuse to start: its stderr.
fn system_refusal(bus: &PrivateBus, state: &Path, creds: Option<&Path>, args: &[&str]) -> String {
    let mut all = vec!["--system", "--server", "http://127.0.0.1:9"];
    all.extend_from_slice(args);
    let creds = creds.map(|c| c.to_str().unwrap().to_owned());
    let mut env = vec![("DBUS_SYSTEM_BUS_ADDRESS", bus.address())];
    if let Some(c) = &creds {
        env.push(("CREDENTIALS_DIRECTORY", c.as_str()));
    }
    let (status, log) = run_to_exit_with(state, &all, &env);
    assert!(!status.success(), "{log}");
    log
}

/// Runs `scanbindd ARGS --state-dir state` with `env` (and no session bus, credential
/// or crash point of the test's own), expecting it to exit by itself; its exit status
/// and stderr. No `ready` line may come.
fn run_to_exit_with(
    state: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, String) {
    use wait_timeout::ChildExt as _;
    let log = state.join("refused.log");
    let mut child = Command::new(common::daemon_binary())
        .env_remove("SCANBINDD_CRASH_AT")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("SCANBIND_VAULT_SERVICE")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("SCANBIND_SERVER_URL")
        .env("SCANBIND_LOG", "info")
        .envs(env.iter().copied())
        .args(args)
        .arg("--state-dir")
        .arg(state)
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

/// A credential directory (`$CREDENTIALS_DIRECTORY`) holding `scanbind-vault` = `bytes`.
fn credential(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scanbind-vault");
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    dir
}

fn random32() -> Vec<u8> {
    let mut bytes = vec![0_u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

/// `scanbindd --system --dev` with `bus` as its system bus, the way the unit starts it
/// (`--state-dir`, the credential in `$CREDENTIALS_DIRECTORY` if given).
fn system_dev(bus: &PrivateBus, state: &Path, creds: Option<&Path>) -> DaemonProc {
    let creds = creds.map(|c| c.to_str().unwrap().to_owned());
    let mut env = vec![("DBUS_SYSTEM_BUS_ADDRESS", bus.address())];
    if let Some(c) = &creds {
        env.push(("CREDENTIALS_DIRECTORY", c.as_str()));
    }
    let mut cmd = DaemonProc::command(Path::new(env!("CARGO_BIN_EXE_scanbindd")), state)
        .env_remove("SCANBIND_SERVER_URL")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["--system"])
        .log_level("info");
    cmd = cmd.envs(&env);
    cmd.spawn_dev().unwrap_or_else(|e| panic!("{e}")).0
}

/// Copies the file vault of `from` into a new state directory (modes kept).
fn copy_state(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::create_dir(to.path().join("vault")).unwrap();
    std::fs::set_permissions(
        to.path().join("vault"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let file = to.path().join("vault/scanbind.keyring");
    std::fs::copy(from.join("vault/scanbind.keyring"), &file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    to
}

#[tokio::test(flavor = "multi_thread")]
async fn system_mode_refuses_a_missing_wrong_or_corrupt_credential_and_a_foreign_or_exposed_vault_losing_nothing()
 {
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let vault_dir = state.path().join("vault");
    let vault_file = vault_dir.join("scanbind.keyring");

    // No credential: refused with how to make one, and no vault is made.
    let log = system_refusal(&bus, state.path(), None, &[]);
    for fix in [
        "the file vault has no master secret",
        "systemd-creds encrypt --with-key=auto --name=scanbind-vault",
        "/etc/credstore.encrypted/scanbind-vault",
        "TPM2",
        "/var/lib/systemd/credential.secret",
        "LoadCredentialEncrypted=scanbind-vault",
    ] {
        assert!(log.contains(fix), "{fix:?} missing: {log}");
    }
    assert!(!vault_dir.exists(), "nothing is made without a secret");

    // With the credential: the vault is made (the file vault is system mode's default)
    // with the device key, and a restart opens it again (no new key).
    let secret = random32();
    let creds = credential(&secret);
    let daemon = system_dev(&bus, state.path(), Some(creds.path()));
    assert_eq!(mode(&vault_file), 0o600);
    assert_eq!(mode(&vault_dir), 0o700);
    drop(daemon);
    let daemon = system_dev(&bus, state.path(), Some(creds.path()));
    let logs = daemon.logs();
    assert_eq!(
        logs.matches("created a new device key").count(),
        1,
        "the restart made a new device key: {logs}"
    );
    assert!(!logs.contains("DEVELOPMENT ONLY"), "{logs}");
    drop(daemon);
    let before = std::fs::read(&vault_file).unwrap();
    let unchanged = |what: &str| {
        assert_eq!(
            std::fs::read(&vault_file).unwrap(),
            before,
            "the vault changed after {what}"
        );
    };

    // A wrong credential, and corrupted ones: refused, the vault untouched.
    let undecryptable = format!(
        "the vault file {} cannot be decrypted with this master secret",
        vault_file.display()
    );
    let mut flipped = secret.clone();
    flipped[0] ^= 0x01;
    for (what, bytes, expect) in [
        ("another secret", random32(), undecryptable.as_str()),
        ("one flipped bit", flipped, undecryptable.as_str()),
        (
            "a truncated credential",
            secret[..8].to_vec(),
            "shorter than 16 bytes",
        ),
        ("an empty credential", Vec::new(), "shorter than 16 bytes"),
    ] {
        let wrong = credential(&bytes);
        let log = system_refusal(&bus, state.path(), Some(wrong.path()), &[]);
        assert!(log.contains(expect), "{what}: {expect:?} missing: {log}");
        unchanged(what);
    }
    // A credential that cannot be read (a directory in its place).
    let odd = tempfile::tempdir().unwrap();
    std::fs::create_dir(odd.path().join("scanbind-vault")).unwrap();
    let log = system_refusal(&bus, state.path(), Some(odd.path()), &[]);
    assert!(
        log.contains("cannot read the vault's master secret from"),
        "{log}"
    );
    unchanged("an unreadable credential");

    // A vault from another device (made there under its own credential): refused here.
    let other_state = tempfile::tempdir().unwrap();
    let other_creds = credential(&random32());
    drop(system_dev(
        &bus,
        other_state.path(),
        Some(other_creds.path()),
    ));
    let foreign = copy_state(other_state.path());
    let foreign_file = foreign.path().join("vault/scanbind.keyring");
    let foreign_bytes = std::fs::read(&foreign_file).unwrap();
    let log = system_refusal(&bus, foreign.path(), Some(creds.path()), &[]);
    assert!(
        log.contains(&format!(
            "the vault file {} cannot be decrypted",
            foreign_file.display()
        )),
        "{log}"
    );
    assert_eq!(std::fs::read(&foreign_file).unwrap(), foreign_bytes);

    // A damaged vault file (cut short): refused as damaged, left as it is.
    let damaged = copy_state(state.path());
    let damaged_file = damaged.path().join("vault/scanbind.keyring");
    let cut = before[..before.len() / 2].to_vec();
    std::fs::write(&damaged_file, &cut).unwrap();
    let log = system_refusal(&bus, damaged.path(), Some(creds.path()), &[]);
    assert!(
        log.contains("is damaged") || log.contains("cannot be decrypted"),
        "{log}"
    );
    assert_eq!(std::fs::read(&damaged_file).unwrap(), cut);

    // Exposed or foreign-owned vault file or directory: refused, naming the fix.
    let nobody = 65534;
    for (what, path, expect) in [
        ("file mode 0644", &vault_file, "mode 0644"),
        ("directory mode 0750", &vault_dir, "mode 0750"),
        ("file owned by nobody", &vault_file, "owned by uid 65534"),
        (
            "directory owned by nobody",
            &vault_dir,
            "owned by uid 65534",
        ),
    ] {
        let is_dir = path == &vault_dir;
        if what.contains("mode") {
            let m = if is_dir { 0o750 } else { 0o644 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
        } else {
            std::os::unix::fs::chown(path, Some(nobody), None).unwrap();
        }
        let log = system_refusal(&bus, state.path(), Some(creds.path()), &[]);
        assert!(log.contains(expect), "{what}: {expect:?} missing: {log}");
        assert!(log.contains(&path.display().to_string()), "{what}: {log}");
        // Put right again.
        std::os::unix::fs::chown(path, Some(0), None).unwrap();
        let m = if is_dir { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
        unchanged(what);
    }

    // After all that, the right credential opens the same vault: nothing was lost.
    let daemon = system_dev(&bus, state.path(), Some(creds.path()));
    let logs = daemon.logs();
    assert_eq!(
        logs.matches("created a new device key").count(),
        1,
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn system_dev_without_a_credential_uses_a_throw_away_secret_and_says_so() {
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let vault_file = state.path().join("vault/scanbind.keyring");
    let daemon = system_dev(&bus, state.path(), None);
    // It serves on the system bus (DBUS_SYSTEM_BUS_ADDRESS), with no session bus.
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    let status = d.get_status(HashMap::new()).await.unwrap();
    assert!(!status.is_empty());
    let logs = daemon.logs();
    assert!(logs.contains("DEVELOPMENT ONLY"), "{logs}");
    assert!(
        logs.contains("cannot be opened after this process exits"),
        "{logs}"
    );
    assert!(vault_file.exists());
    drop(daemon);

    // That vault cannot be opened again: refused, left as it is.
    let before = std::fs::read(&vault_file).unwrap();
    let (status, log) = run_to_exit_with(
        state.path(),
        &["--system", "--dev"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", bus.address())],
    );
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("the vault file {} exists", vault_file.display()))
            && log.contains("throw-away secret"),
        "{log}"
    );
    assert_eq!(std::fs::read(&vault_file).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_system_mode_a_policy_file_others_can_write_refuses_every_payment() {
    use scanbind_ipc::types::keys::pay;
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap(); // root's, 0700
    let policy = etc.path().join("policy.toml");
    std::fs::write(&policy, "unknown_apps = \"allow\"\n").unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).unwrap();
    let creds = credential(&random32());
    let mut cmd = DaemonProc::command(Path::new(env!("CARGO_BIN_EXE_scanbindd")), state.path())
        .env_remove("SCANBIND_SERVER_URL")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["--system", "--policy", policy.to_str().unwrap()])
        .log_level("info");
    cmd = cmd.envs(&[
        ("DBUS_SYSTEM_BUS_ADDRESS", bus.address()),
        ("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap()),
    ]);
    let (daemon, _) = cmd.spawn_dev().unwrap_or_else(|e| panic!("{e}"));
    // Said at start, not only at the first payment.
    assert!(
        daemon
            .logs()
            .contains("system mode: the payment policy is refused"),
        "{}",
        daemon.logs()
    );
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    let order_code = || HashMap::from([(pay::ORDER_CODE, zvariant::Value::from(true))]);
    let err = d
        .pay("policy-1", 1200, "HKD", "Coins", order_code())
        .await
        .unwrap_err();
    match err {
        scanbind_ipc::Error::NotAllowed(m) => {
            assert!(m.contains(&policy.display().to_string()), "{m}");
            assert!(m.contains("mode 0666"), "{m}");
            assert!(
                m.contains(&format!(
                    "chown root:root {0} && chmod 0644 {0}",
                    policy.display()
                )),
                "{m}"
            );
        }
        other => panic!("expected NotAllowed, got {other:?}"),
    }
    // Fixed by root: the same file is honoured again (checked at every read, although
    // the file's contents and time did not change).
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let paid = d.pay("policy-2", 1200, "HKD", "Coins", order_code()).await;
    assert!(paid.is_ok(), "{paid:?}: {}", daemon.logs());
    // Written by someone else later: refused again.
    std::os::unix::fs::chown(&policy, Some(65534), None).unwrap();
    let err = d
        .pay("policy-3", 1200, "HKD", "Coins", order_code())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, scanbind_ipc::Error::NotAllowed(m) if m.contains("owned by uid 65534")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_session_mode_the_policy_files_owner_is_not_checked() {
    use scanbind_ipc::types::keys::pay;
    let bus = PrivateBus::without_services().unwrap();
    let state = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    let policy = etc.path().join("policy.toml");
    std::fs::write(&policy, "unknown_apps = \"allow\"\n").unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let (secret, _) = secret_file(secrets.path(), "vault.key");
    let (daemon, _) = DaemonProc::command(Path::new(env!("CARGO_BIN_EXE_scanbindd")), state.path())
        .env_remove("SCANBIND_SERVER_URL")
        .address(bus.address())
        .args([
            "--policy",
            policy.to_str().unwrap(),
            "--vault",
            "file",
            "--vault-secret-file",
            secret.to_str().unwrap(),
        ])
        .log_level("info")
        .spawn_dev()
        .unwrap_or_else(|e| panic!("{e}"));
    let conn = connect(&bus).await;
    let d = Daemon1Proxy::new(&conn).await.unwrap();
    let paid = d
        .pay(
            "session-1",
            1200,
            "HKD",
            "Coins",
            HashMap::from([(pay::ORDER_CODE, zvariant::Value::from(true))]),
        )
        .await;
    assert!(paid.is_ok(), "{paid:?}: {}", daemon.logs());
}
