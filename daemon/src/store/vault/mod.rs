//! The vault: the OS keyring holding the device key and the sealed token blobs.
//!
//! On Linux this is the Secret Service (gnome-keyring, KeePassXC, KWallet) through
//! `keyring-core` and its zbus store (the daemon's own zbus 5); on macOS the Keychain and
//! on Windows the Credential Manager, through their `keyring-core` stores
//! (docs/decisions.md D12, D26). The API is synchronous and `block_on`s its D-Bus calls,
//! which must not happen on a tokio worker thread, so **every keyring call here runs in
//! [`tokio::task::spawn_blocking`]**. Nothing else in the daemon touches the keyring.
//!
//! A vault opens its store (on Linux: one Secret Service connection and session) on its
//! first operation and keeps it; a store whose operation failed for want of a Secret
//! Service, or of access to it, is dropped, so the next operation opens a new one (a
//! keyring daemon that was restarted or unlocked meanwhile is found again).
//!
//! There is no fallback: no Secret Service is [`Error::KeyringUnavailable`], a locked
//! keyring is [`Error::KeyringLocked`], and the daemon refuses to work rather than
//! writing a secret anywhere else.

use std::fmt;
use std::sync::Arc;

use keyring_core::CredentialStore;
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
    /// The platform store, opened on first use (see the module docs).
    store: Arc<StoreSlot>,
}

/// A vault's store, once opened. The Secret Service store's D-Bus proxies block on a
/// call when dropped, which must not happen on a tokio thread: the last vault's store is
/// dropped on a short-lived thread of its own.
#[derive(Default)]
struct StoreSlot(std::sync::Mutex<Option<Arc<CredentialStore>>>);

impl StoreSlot {
    fn get(&self) -> Option<Arc<CredentialStore>> {
        crate::sync::lock(&self.0).clone()
    }

    fn set(&self, store: Option<Arc<CredentialStore>>) {
        let old = std::mem::replace(&mut *crate::sync::lock(&self.0), store);
        drop(old);
    }
}

impl fmt::Debug for StoreSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self.get().is_some();
        f.debug_struct("StoreSlot").field("open", &open).finish()
    }
}

impl Drop for StoreSlot {
    fn drop(&mut self) {
        let store = self
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(store) = store {
            let closing = std::thread::Builder::new()
                .name("keyring-close".into())
                .spawn(move || drop(store));
            if let Err(e) = closing {
                tracing::warn!(cause = %e, "could not close the keyring store's connection");
            }
        }
    }
}

/// Opens this platform's credential store.
fn open_store() -> keyring_core::Result<Arc<CredentialStore>> {
    #[cfg(all(unix, not(target_os = "macos")))]
    let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()?;
    #[cfg(target_os = "macos")]
    let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
    #[cfg(windows)]
    let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
    Ok(store)
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
            store: Arc::default(),
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
            crate::sync::lock(&self.cache).insert(kind.account(), copy);
        }
        Ok(())
    }

    /// Reads a secret; `None` when there is none.
    pub(crate) async fn read(&self, kind: &SecretKind) -> Result<Option<Secret>> {
        let cacheable = matches!(kind, SecretKind::SealedTokens { .. });
        if cacheable && let Some(hit) = crate::sync::lock(&self.cache).get(&kind.account()) {
            return Ok(Some(Secret(hit.clone())));
        }
        match self.blocking(kind, |entry| entry.get_secret()).await {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                if cacheable {
                    crate::sync::lock(&self.cache).insert(kind.account(), bytes.clone());
                }
                Ok(Some(Secret(bytes)))
            }
            Err(Error::Keyring(keyring_core::Error::NoEntry)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a secret; returns whether there was one.
    pub(crate) async fn delete(&self, kind: &SecretKind) -> Result<bool> {
        // Forgotten first: a failed keyring delete never leaves a usable copy here.
        crate::sync::lock(&self.cache).remove(&kind.account());
        match self.blocking(kind, |entry| entry.delete_credential()).await {
            Ok(()) => Ok(true),
            Err(Error::Keyring(keyring_core::Error::NoEntry)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs one keyring operation on the blocking pool and classifies its error.
    async fn blocking<T, F>(&self, kind: &SecretKind, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&keyring_core::Entry) -> keyring_core::Result<T> + Send + 'static,
    {
        let service = self.service.clone();
        let account = kind.account();
        let slot = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let store = match slot.get() {
                Some(store) => store,
                None => {
                    let store = open_store()?;
                    slot.set(Some(Arc::clone(&store)));
                    store
                }
            };
            let result = keyring_core::Entry::new_in_store(&store, &service, &account)
                .and_then(|entry| op(&entry));
            if let Err(
                keyring_core::Error::PlatformFailure(_) | keyring_core::Error::NoStorageAccess(_),
            ) = &result
            {
                // Opened again next time (see the module docs).
                slot.set(None);
            }
            result
        })
        .await
        .map_err(Error::KeyringTask)?
        .map_err(classify)
    }
}

/// Maps a keyring error to the daemon's meaning of it (stack-notes §2): a platform
/// failure means no usable Secret Service on this session; no storage access means
/// the keyring is locked (or its unlock prompt is unavailable).
fn classify(e: keyring_core::Error) -> Error {
    match e {
        keyring_core::Error::PlatformFailure(_) => Error::KeyringUnavailable(e),
        keyring_core::Error::NoStorageAccess(_) => Error::KeyringLocked(e),
        other => Error::Keyring(other),
    }
}

#[cfg(test)]
mod tests;
