//! The vault: where the daemon keeps the device key, the sealed token blobs and the
//! parent PIN's hash. Nothing else in the daemon touches a keyring.
//!
//! One abstraction ([`Vault`], over the private `Backend` trait), one implementation
//! per kind of store; which one a daemon uses is the operator's choice
//! ([`VaultChoice`], `--vault`), never a fallback:
//!
//! | kind | where | module |
//! |---|---|---|
//! | [`VaultChoice::SecretService`] (default) | the session's OS keyring: Secret Service (gnome-keyring, KeePassXC, KWallet), macOS Keychain, Windows Credential Manager | `secret_service` |
//! | [`VaultChoice::File`] | the daemon's own encrypted file, `<dir>/scanbind.keyring` in gnome-keyring's keyring file format, its key derived from a master secret (a systemd credential, TPM2-sealed where present) | `file` |
//!
//! A later platform store (a TPM-only store, Android Keystore, Windows DPAPI) is one
//! more `Backend` and one more [`VaultChoice`] variant (docs/decisions.md D28).
//!
//! [`Vault`] adds what every store shares: the [`SecretKind`] → account naming, a
//! cache of the sealed token blobs (D20), and [`Secret`], bytes zeroed on drop and
//! never printed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use zeroize::Zeroizing;

use crate::error::Result;

mod file;
mod secret_service;

/// The keyring "service" attribute of every scanbind secret in the Secret Service
/// (the bus name).
pub(crate) const SERVICE: &str = scanbind_ipc::BUS_NAME;

/// Where the daemon keeps its secrets ([`Config::vault`](crate::Config::vault),
/// `scanbindd --vault`).
///
/// `Debug` never shows the master secret.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum VaultChoice {
    /// The session's OS keyring (on Linux the Secret Service: gnome-keyring, KeePassXC,
    /// KWallet), under the keyring service name
    /// [`Config::vault_service`](crate::Config::vault_service). The default. Without a
    /// Secret Service the daemon refuses to start ([`Error::KeyringUnavailable`](crate::Error::KeyringUnavailable)).
    #[default]
    SecretService,
    /// The daemon's own encrypted vault file, `dir/scanbind.keyring` (gnome-keyring's
    /// keyring file format, read and written with `oo7`). `dir` is created with mode
    /// 0700 if it is missing; an existing `dir` or file that is not the daemon user's
    /// own, or is readable by others, is refused. The file's key is derived from
    /// `master_secret` (at least 16 bytes; the daemon reads it from the systemd
    /// credential `scanbind-vault` or `--vault-secret-file`). A wrong secret or a
    /// damaged file is refused and never overwritten.
    File {
        /// The directory of the vault file (`scanbindd` uses `<state dir>/vault`).
        dir: PathBuf,
        /// The master secret the file's key is derived from.
        master_secret: Zeroizing<Vec<u8>>,
    },
}

impl VaultChoice {
    /// The file vault in `dir` with a new random 32-byte master secret: for a
    /// throw-away daemon (a demo in a temporary directory), whose vault nobody needs to
    /// open again after it exits.
    pub fn file_with_new_secret(dir: impl Into<PathBuf>) -> Result<VaultChoice> {
        use ring::rand::SecureRandom as _;
        let mut secret = Zeroizing::new(vec![0_u8; 32]);
        ring::rand::SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| crate::Error::Config("no random numbers for the vault secret".into()))?;
        Ok(VaultChoice::File {
            dir: dir.into(),
            master_secret: secret,
        })
    }
}

impl fmt::Debug for VaultChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultChoice::SecretService => f.write_str("SecretService"),
            VaultChoice::File { dir, master_secret } => f
                .debug_struct("File")
                .field("dir", dir)
                .field(
                    "master_secret",
                    &format_args!("<{} bytes redacted>", master_secret.len()),
                )
                .finish(),
        }
    }
}

/// What a secret in the vault is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretKind {
    /// The device's private key (PKCS#8 DER).
    DeviceKey,
    /// The sealed access and refresh tokens of one binding (an opaque blob only the
    /// server can open, bound to this device and binding).
    SealedTokens {
        /// The server's binding id.
        binding_id: String,
    },
    /// The parent PIN's salted hash (kid profiles).
    ParentPin,
}

impl SecretKind {
    /// The secret's account name in the store (the keyring "username" attribute).
    fn account(&self) -> String {
        match self {
            SecretKind::DeviceKey => "device-key".to_owned(),
            SecretKind::SealedTokens { binding_id } => format!("sealed-tokens:{binding_id}"),
            SecretKind::ParentPin => "parent-pin".to_owned(),
        }
    }
}

/// Secret bytes read from the vault: zeroed on drop, never printed.
pub(crate) struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// The bytes.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// One kind of store behind [`Vault`]. Secrets are addressed by account name
/// ([`SecretKind::account`]); a missing secret is `None` / `false`, not an error.
trait Backend: Send + Sync + fmt::Debug {
    /// Stores (or replaces) the secret of `account`.
    fn store<'a>(&'a self, account: &'a str, secret: &'a [u8]) -> BoxFuture<'a, Result<()>>;
    /// Reads the secret of `account`.
    fn read<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Option<Zeroizing<Vec<u8>>>>>;
    /// Deletes the secret of `account`; whether there was one.
    fn delete<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// The store, for people (logs).
    fn describe(&self) -> &'static str;
}

/// The daemon's vault: one store, and a cache of the sealed token blobs.
#[derive(Debug, Clone)]
pub(crate) struct Vault {
    backend: Arc<dyn Backend>,
    /// Sealed token blobs already stored or read, by account (docs/decisions.md D20):
    /// a payment then needs no Secret Service session. Zeroed when dropped; the only
    /// persistent copy stays in the store. The device key is not cached (it is read
    /// once at start). A std mutex: held for a lookup, an insert or a removal.
    cache: Arc<std::sync::Mutex<std::collections::HashMap<String, Zeroizing<Vec<u8>>>>>,
}

impl Vault {
    /// The Secret Service vault of the daemon ([`SERVICE`]).
    #[cfg(test)]
    pub(crate) fn new() -> Vault {
        Vault::with_service(SERVICE)
    }

    /// The Secret Service vault under another keyring service name (tests use one per
    /// test). Nothing is opened until the first operation.
    pub(crate) fn with_service(service: impl Into<String>) -> Vault {
        Vault::over(Arc::new(secret_service::SecretServiceStore::new(service)))
    }

    /// The daemon's own file vault in `dir`, opened now: the directory and file are
    /// checked (owner, mode) and the file is decrypted (see [`VaultChoice::File`]).
    pub(crate) async fn file(dir: &Path, master_secret: &[u8]) -> Result<Vault> {
        let store = file::FileStore::open(dir, master_secret).await?;
        Ok(Vault::over(Arc::new(store)))
    }

    /// The vault `choice` names; `service` is the Secret Service's keyring service name.
    pub(crate) async fn open(choice: &VaultChoice, service: &str) -> Result<Vault> {
        match choice {
            VaultChoice::SecretService => Ok(Vault::with_service(service)),
            VaultChoice::File { dir, master_secret } => Vault::file(dir, master_secret).await,
        }
    }

    fn over(backend: Arc<dyn Backend>) -> Vault {
        Vault {
            backend,
            cache: Arc::default(),
        }
    }

    /// The store, for people (logs): "the OS keyring (Secret Service)", "the file vault".
    pub(crate) fn describe(&self) -> &'static str {
        self.backend.describe()
    }

    /// Stores (or replaces) a secret.
    pub(crate) async fn store(&self, kind: &SecretKind, secret: &[u8]) -> Result<()> {
        let account = kind.account();
        self.backend.store(&account, secret).await?;
        // Cached only once the store holds it.
        if matches!(kind, SecretKind::SealedTokens { .. }) {
            crate::sync::lock(&self.cache).insert(account, Zeroizing::new(secret.to_vec()));
        }
        Ok(())
    }

    /// Reads a secret; `None` when there is none.
    pub(crate) async fn read(&self, kind: &SecretKind) -> Result<Option<Secret>> {
        let account = kind.account();
        let cacheable = matches!(kind, SecretKind::SealedTokens { .. });
        if cacheable && let Some(hit) = crate::sync::lock(&self.cache).get(&account) {
            return Ok(Some(Secret(hit.clone())));
        }
        let Some(bytes) = self.backend.read(&account).await? else {
            return Ok(None);
        };
        if cacheable {
            crate::sync::lock(&self.cache).insert(account, bytes.clone());
        }
        Ok(Some(Secret(bytes)))
    }

    /// Deletes a secret; returns whether there was one.
    pub(crate) async fn delete(&self, kind: &SecretKind) -> Result<bool> {
        let account = kind.account();
        // Forgotten first: a failed delete never leaves a usable copy here.
        crate::sync::lock(&self.cache).remove(&account);
        self.backend.delete(&account).await
    }
}

#[cfg(test)]
mod tests;
