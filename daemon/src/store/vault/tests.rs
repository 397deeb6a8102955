//! Secret Service vault tests against the real Secret Service (gnome-keyring started
//! by `scripts/test`) and against a bus that has none. The file vault's tests are in
//! `file/tests.rs`.

use std::sync::atomic::{AtomicU32, Ordering};

use super::secret_service::{SecretServiceStore, classify};
use super::*;
use crate::error::Error;
use crate::test_util::{PrivateBus, require_secret_service, run_child_test};

/// A keyring service name no other test (or run) uses.
fn unique_vault() -> Vault {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    Vault::with_service(format!(
        "io.scanbind.Daemon.test.{}.{n}",
        std::process::id()
    ))
}

#[test]
fn the_daemon_vault_is_named_after_the_bus_name() {
    assert_eq!(
        SecretServiceStore::new(SERVICE).service,
        "io.scanbind.Daemon"
    );
    assert_eq!(Vault::new().describe(), "the OS keyring (Secret Service)");
    assert_eq!(SecretKind::DeviceKey.account(), "device-key");
    assert_eq!(
        SecretKind::SealedTokens {
            binding_id: "b1".into()
        }
        .account(),
        "sealed-tokens:b1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_read_delete_round_trip() {
    require_secret_service();
    let vault = unique_vault();
    let key = SecretKind::DeviceKey;
    assert!(vault.read(&key).await.unwrap().is_none());

    vault
        .store(&key, b"\x00device key bytes\xff")
        .await
        .unwrap();
    let got = vault.read(&key).await.unwrap().expect("stored secret");
    assert_eq!(got.expose(), b"\x00device key bytes\xff");
    assert!(
        !format!("{got:?}").contains("device"),
        "Debug must not show the secret"
    );

    vault.store(&key, b"replaced").await.unwrap();
    assert_eq!(
        vault.read(&key).await.unwrap().unwrap().expose(),
        b"replaced"
    );

    assert!(vault.delete(&key).await.unwrap());
    assert!(vault.read(&key).await.unwrap().is_none());
    assert!(!vault.delete(&key).await.unwrap());
}

#[tokio::test(flavor = "current_thread")]
async fn sealed_tokens_are_kept_per_binding() {
    require_secret_service();
    let vault = unique_vault();
    let a = SecretKind::SealedTokens {
        binding_id: "b-1".into(),
    };
    let b = SecretKind::SealedTokens {
        binding_id: "b-2".into(),
    };
    vault.store(&a, b"blob a").await.unwrap();
    vault.store(&b, b"blob b").await.unwrap();
    assert_eq!(vault.read(&a).await.unwrap().unwrap().expose(), b"blob a");
    assert!(vault.delete(&a).await.unwrap());
    assert!(vault.read(&a).await.unwrap().is_none());
    assert_eq!(vault.read(&b).await.unwrap().unwrap().expose(), b"blob b");
    assert!(vault.delete(&b).await.unwrap());
}

/// Set in the child process of the "unavailable" tests: which case to probe.
const CHILD_FLAG: &str = "SCANBINDD_TEST_VAULT_CHILD";

/// Runs [`probe_unavailable_in_child`] in a child process with `env` and checks it.
fn assert_unavailable_in_child(env: &[(&str, &str)], remove: &[&str]) {
    let mut env = env.to_vec();
    env.push((CHILD_FLAG, "1"));
    let child = run_child_test(
        "store::vault::tests::probe_unavailable_in_child",
        &env,
        remove,
    )
    .expect("re-run the test binary");
    let out = child.expect_one_pass();
    assert!(out.contains("probe: KeyringUnavailable"), "{out}");
}

#[test]
fn no_secret_service_on_the_bus_is_a_typed_error() {
    let bus = PrivateBus::without_services().expect("start a private dbus-daemon");
    assert_unavailable_in_child(&[("DBUS_SESSION_BUS_ADDRESS", bus.address())], &[]);
}

#[test]
fn no_session_bus_at_all_is_a_typed_error() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    assert_unavailable_in_child(&[("XDG_RUNTIME_DIR", dir)], &["DBUS_SESSION_BUS_ADDRESS"]);
}

/// The child half of the "unavailable" tests. Without the flag (a normal test run) it
/// only checks the flag is absent: it is a helper the parent tests re-run.
#[test]
fn probe_unavailable_in_child() {
    if std::env::var_os(CHILD_FLAG).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        let vault = unique_vault();
        for result in [
            vault.store(&SecretKind::DeviceKey, b"x").await.map(|_| ()),
            vault.read(&SecretKind::DeviceKey).await.map(|_| ()),
            vault.delete(&SecretKind::DeviceKey).await.map(|_| ()),
        ] {
            match result {
                Err(e @ Error::KeyringUnavailable(_)) => {
                    let text = e.to_string();
                    // It names both fixes: a Secret Service, or the daemon's file vault.
                    assert!(text.contains("apt install gnome-keyring"), "{text}");
                    assert!(text.contains("--vault file"), "{text}");
                    assert!(text.contains("--vault-secret-file"), "{text}");
                    assert!(
                        text.contains("never stores secrets in a plain file"),
                        "{text}"
                    );
                }
                other => panic!("expected KeyringUnavailable, got {other:?}"),
            }
        }
    });
    println!("probe: KeyringUnavailable");
}

#[test]
fn keyring_errors_are_classified() {
    let boxed = || -> Box<dyn std::error::Error + Send + Sync> { "x".into() };
    assert!(matches!(
        classify(keyring_core::Error::PlatformFailure(boxed())),
        Error::KeyringUnavailable(_)
    ));
    assert!(matches!(
        classify(keyring_core::Error::NoStorageAccess(boxed())),
        Error::KeyringLocked(_)
    ));
    assert!(matches!(
        classify(keyring_core::Error::NoEntry),
        Error::Keyring(keyring_core::Error::NoEntry)
    ));
    let locked = classify(keyring_core::Error::NoStorageAccess(boxed())).to_string();
    assert!(locked.contains("unlock"), "{locked}");
}
