//! The vault: the OS keyring holding the device key and the sealed token blobs.
//!
//! On Linux this is the Secret Service (gnome-keyring, KeePassXC, KWallet) through the
//! `keyring` crate's async backend; on macOS the Keychain and on Windows the Credential
//! Manager. The backend was chosen deliberately (docs/decisions.md D12): its API is
//! synchronous and drives its own zbus 4 connection with `block_on`, which panics on a
//! tokio worker thread, so **every keyring call here runs in
//! [`tokio::task::spawn_blocking`]**. Nothing else in the daemon touches `keyring`.
//!
//! There is no fallback: no Secret Service is [`Error::KeyringUnavailable`], a locked
//! keyring is [`Error::KeyringLocked`], and the daemon refuses to work rather than
//! writing a secret anywhere else.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The keyring "service" attribute of every scanbind secret (the bus name).
pub(crate) const SERVICE: &str = scanbind_ipc::BUS_NAME;

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
    /// The keyring "username" attribute for this secret.
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

/// The OS keyring, under one keyring service name.
#[derive(Debug, Clone)]
pub(crate) struct Vault {
    service: String,
    /// Sealed token blobs already stored or read, by account (docs/decisions.md D20):
    /// a payment then needs no Secret Service session. Zeroed when dropped; the only
    /// persistent copy stays in the keyring. The device key is not cached (it is read
    /// once at start). A std mutex: held for a lookup, an insert or a removal.
    cache: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Zeroizing<Vec<u8>>>>>,
}

impl Vault {
    /// The vault of the daemon ([`SERVICE`]).
    pub(crate) fn new() -> Vault {
        Vault::with_service(SERVICE)
    }

    /// A vault under another keyring service name (tests use one per test).
    pub(crate) fn with_service(service: impl Into<String>) -> Vault {
        Vault {
            service: service.into(),
            cache: std::sync::Arc::default(),
        }
    }

    /// Stores (or replaces) a secret.
    pub(crate) async fn store(&self, kind: &SecretKind, secret: &[u8]) -> Result<()> {
        let copy = Zeroizing::new(secret.to_vec());
        let secret = Zeroizing::new(secret.to_vec());
        self.blocking(kind, move |entry| entry.set_secret(&secret))
            .await?;
        // Cached only once the keyring holds it.
        if matches!(kind, SecretKind::SealedTokens { .. }) {
            crate::service::lock(&self.cache).insert(kind.account(), copy);
        }
        Ok(())
    }

    /// Reads a secret; `None` when there is none.
    pub(crate) async fn read(&self, kind: &SecretKind) -> Result<Option<Secret>> {
        let cacheable = matches!(kind, SecretKind::SealedTokens { .. });
        if cacheable && let Some(hit) = crate::service::lock(&self.cache).get(&kind.account()) {
            return Ok(Some(Secret(hit.clone())));
        }
        match self.blocking(kind, |entry| entry.get_secret()).await {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                if cacheable {
                    crate::service::lock(&self.cache).insert(kind.account(), bytes.clone());
                }
                Ok(Some(Secret(bytes)))
            }
            Err(Error::Keyring(keyring::Error::NoEntry)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a secret; returns whether there was one.
    pub(crate) async fn delete(&self, kind: &SecretKind) -> Result<bool> {
        // Forgotten first: a failed keyring delete never leaves a usable copy here.
        crate::service::lock(&self.cache).remove(&kind.account());
        match self.blocking(kind, |entry| entry.delete_credential()).await {
            Ok(()) => Ok(true),
            Err(Error::Keyring(keyring::Error::NoEntry)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs one keyring operation on the blocking pool and classifies its error.
    async fn blocking<T, F>(&self, kind: &SecretKind, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
    {
        let service = self.service.clone();
        let account = kind.account();
        tokio::task::spawn_blocking(move || {
            keyring::Entry::new(&service, &account).and_then(|entry| op(&entry))
        })
        .await
        .map_err(Error::KeyringTask)?
        .map_err(classify)
    }
}

/// Maps a keyring error to the daemon's meaning of it (stack-notes §2): a platform
/// failure means no usable Secret Service on this session; no storage access means
/// the keyring is locked (or its unlock prompt is unavailable).
fn classify(e: keyring::Error) -> Error {
    match e {
        keyring::Error::PlatformFailure(_) => Error::KeyringUnavailable(e),
        keyring::Error::NoStorageAccess(_) => Error::KeyringLocked(e),
        other => Error::Keyring(other),
    }
}

#[cfg(test)]
mod tests;
