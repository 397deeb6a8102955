//! The file vault against real files: round trips across a reopen, and every refusal
//! (wrong secret, damaged file, modes, short secret) leaving the file as it was.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::error::Error;
use crate::store::vault::{SecretKind, Vault, VaultChoice};

const SECRET: &[u8] = b"0123456789abcdef-the-master-secret";
const OTHER: &[u8] = b"0123456789abcdef-another-secret!!";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A vault dir inside a fresh temporary directory, and the vault file's path.
fn fresh() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state").join("vault");
    let file = dir.join("scanbind.keyring");
    (tmp, dir, file)
}

/// A vault holding a device key and one binding's sealed tokens.
async fn filled(dir: &Path) {
    let vault = Vault::file(dir, SECRET).await.unwrap();
    vault
        .store(&SecretKind::DeviceKey, b"\x00device key bytes\xff")
        .await
        .unwrap();
    vault
        .store(
            &SecretKind::SealedTokens {
                binding_id: "b-1".into(),
            },
            b"sealed blob one",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn store_read_delete_round_trip_across_a_reopen() {
    let (_tmp, dir, file) = fresh();
    let vault = Vault::file(&dir, SECRET).await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(vault.describe(), "the file vault");
    let key = SecretKind::DeviceKey;
    let a = SecretKind::SealedTokens {
        binding_id: "b-1".into(),
    };
    let b = SecretKind::SealedTokens {
        binding_id: "b-2".into(),
    };
    assert!(vault.read(&key).await.unwrap().is_none());
    vault
        .store(&key, b"\x00device key bytes\xff")
        .await
        .unwrap();
    vault.store(&a, b"blob a").await.unwrap();
    vault.store(&b, b"blob b").await.unwrap();
    vault
        .store(&ParentPinReplaced::KIND, b"pin 1")
        .await
        .unwrap();
    vault
        .store(&ParentPinReplaced::KIND, b"pin 2")
        .await
        .unwrap();
    assert_eq!(mode(&file), 0o600);
    let got = vault.read(&key).await.unwrap().expect("stored");
    assert_eq!(got.expose(), b"\x00device key bytes\xff");
    assert!(!format!("{got:?}").contains("device"), "Debug hides it");
    assert!(vault.delete(&b).await.unwrap());
    assert!(!vault.delete(&b).await.unwrap());
    drop(vault);

    // Reopened from the file alone (no cache), everything is as it was left.
    let vault = Vault::file(&dir, SECRET).await.unwrap();
    assert_eq!(
        vault.read(&key).await.unwrap().unwrap().expose(),
        b"\x00device key bytes\xff"
    );
    assert_eq!(vault.read(&a).await.unwrap().unwrap().expose(), b"blob a");
    assert!(vault.read(&b).await.unwrap().is_none());
    assert_eq!(
        vault
            .read(&ParentPinReplaced::KIND)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        b"pin 2"
    );
    assert!(vault.delete(&a).await.unwrap());
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir), 0o700);

    // Nothing of it is in the file in the clear.
    let bytes = std::fs::read(&file).unwrap();
    for clear in [&b"device key bytes"[..], b"blob a", b"pin 2", b"device-key"] {
        assert!(
            !bytes.windows(clear.len()).any(|w| w == clear),
            "{:?} is in the file in the clear",
            String::from_utf8_lossy(clear)
        );
    }
}

/// The parent PIN's kind, replaced once in the round trip.
struct ParentPinReplaced;
impl ParentPinReplaced {
    const KIND: SecretKind = SecretKind::ParentPin;
}

#[tokio::test(flavor = "current_thread")]
async fn a_wrong_secret_is_refused_and_the_file_is_untouched() {
    let (_tmp, dir, file) = fresh();
    filled(&dir).await;
    let before = std::fs::read(&file).unwrap();
    let meta_before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let err = Vault::file(&dir, OTHER).await.unwrap_err();
    assert!(
        matches!(&err, Error::VaultUndecryptable { path } if path == &file),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("untouched"), "{text}");
    assert!(
        !text.contains("another-secret"),
        "no secret in messages: {text}"
    );
    assert!(!format!("{err:?}").contains("another-secret"));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the file was changed"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        meta_before
    );
    // Nothing was created beside it either (no new vault, no temporary file).
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["scanbind.keyring"]);
    // The right secret still opens it.
    let vault = Vault::file(&dir, SECRET).await.unwrap();
    assert!(vault.read(&SecretKind::DeviceKey).await.unwrap().is_some());
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_vault_already_recognises_a_wrong_secret() {
    // Opened once and nothing stored: the check item alone tells a wrong secret.
    let (_tmp, dir, file) = fresh();
    drop(Vault::file(&dir, SECRET).await.unwrap());
    let before = std::fs::read(&file).unwrap();
    let err = Vault::file(&dir, OTHER).await.unwrap_err();
    assert!(matches!(err, Error::VaultUndecryptable { .. }), "{err:?}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[tokio::test(flavor = "current_thread")]
async fn a_damaged_file_is_refused_and_untouched() {
    // Not a keyring file at all.
    let (_tmp, dir, file) = fresh();
    filled(&dir).await;
    let good = std::fs::read(&file).unwrap();
    let mut garbage = good.clone();
    garbage[..16].copy_from_slice(b"not a keyring!!!");
    std::fs::write(&file, &garbage).unwrap();
    let err = Vault::file(&dir, SECRET).await.unwrap_err();
    assert!(
        matches!(&err, Error::VaultCorrupt { path, .. } if path == &file),
        "{err:?}"
    );
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), garbage);

    // Cut short.
    std::fs::write(&file, &good[..good.len() / 2]).unwrap();
    let err = Vault::file(&dir, SECRET).await.unwrap_err();
    assert!(matches!(err, Error::VaultCorrupt { .. }), "{err:?}");
    assert_eq!(std::fs::read(&file).unwrap(), &good[..good.len() / 2]);

    // One byte flipped in the items (the last third of the file holds the newest
    // item's ciphertext and MAC): refused, whether the parser or the MAC notices.
    for back in [40, 60, 80] {
        let mut flipped = good.clone();
        let at = good.len() - back;
        flipped[at] ^= 0x01;
        std::fs::write(&file, &flipped).unwrap();
        let err = Vault::file(&dir, SECRET).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::VaultCorrupt { .. } | Error::VaultUndecryptable { .. }
            ),
            "byte {at}: {err:?}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), flipped);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_file_or_directory_others_can_read_is_refused() {
    let (_tmp, dir, file) = fresh();
    filled(&dir).await;
    let before = std::fs::read(&file).unwrap();

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Vault::file(&dir, SECRET).await.unwrap_err();
    match &err {
        Error::VaultPermissions { path, found, .. } => {
            assert_eq!(path, &file);
            assert_eq!(found, "mode 0644");
        }
        other => panic!("expected VaultPermissions, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("0600"), "{text}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(mode(&file), 0o644, "the mode is the operator's to fix");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = Vault::file(&dir, SECRET).await.unwrap_err();
    assert!(
        matches!(&err, Error::VaultPermissions { path, .. } if path == &dir),
        "{err:?}"
    );
    assert!(err.to_string().contains("0700"), "{err}");

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    Vault::file(&dir, SECRET).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_or_short_secret_is_refused() {
    let (_tmp, dir, _file) = fresh();
    for short in [&b""[..], b"short"] {
        let err = Vault::file(&dir, short).await.unwrap_err();
        assert!(
            matches!(err, Error::VaultSecretTooShort { min: 16 }),
            "{err:?}"
        );
    }
    assert!(!dir.exists(), "nothing is created without a usable secret");

    let missing = dir.join("no-such-secret");
    let err = crate::settings::read_vault_secret(Some(&missing)).unwrap_err();
    assert!(
        matches!(&err, Error::VaultSecretUnreadable { path, .. } if path == &missing),
        "{err:?}"
    );
    // The path the daemon's binary names in its messages is the store's.
    assert_eq!(
        crate::settings::vault_file(&dir),
        dir.join(super::VAULT_FILE)
    );
    let none = Error::VaultNoMasterSecret.to_string();
    for fix in [
        "systemd-creds encrypt --with-key=auto",
        "/var/lib/systemd/credential.secret",
        "LoadCredentialEncrypted=scanbind-vault",
        "scanbind-vault",
        "--vault-secret-file",
    ] {
        assert!(none.contains(fix), "{none}");
    }
}

#[test]
fn the_choice_never_prints_the_secret() {
    let choice = VaultChoice::File {
        dir: "/var/lib/scanbind/vault".into(),
        master_secret: zeroize::Zeroizing::new(b"top-secret-bytes-here".to_vec()),
    };
    let shown = format!("{choice:?}");
    assert!(!shown.contains("top-secret"), "{shown}");
    assert!(shown.contains("21 bytes redacted"), "{shown}");
    let VaultChoice::File { master_secret, .. } =
        VaultChoice::file_with_new_secret("/tmp/x").unwrap()
    else {
        panic!("a file vault")
    };
    assert_eq!(master_secret.len(), 32);
    assert!(matches!(VaultChoice::default(), VaultChoice::SecretService));
}
