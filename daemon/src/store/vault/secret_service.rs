//! The Secret Service backend of the vault: the OS keyring.
//!
//! On Linux this is the Secret Service (gnome-keyring, KeePassXC, KWallet) through
//! `keyring-core` and its zbus store (the daemon's own zbus 5); on macOS the Keychain and
//! on Windows the Credential Manager, through their `keyring-core` stores
//! (docs/decisions.md D12, D26). The API is synchronous and `block_on`s its D-Bus calls,
//! which must not happen on a tokio worker thread, so **every keyring call here runs in
//! [`tokio::task::spawn_blocking`]**. Nothing else in the daemon touches the keyring.
//!
//! A store is opened (on Linux: one Secret Service connection and session) on the first
//! operation and kept; a store whose operation failed for want of a Secret Service, or
//! of access to it, is dropped, so the next operation opens a new one (a keyring daemon
//! that was restarted or unlocked meanwhile is found again).
//!
//! There is no fallback: no Secret Service is [`Error::KeyringUnavailable`], a locked
//! keyring is [`Error::KeyringLocked`], and the daemon refuses to work rather than
//! writing a secret anywhere else (the daemon's own file vault, `super::file`, is a
//! separate choice the operator makes, never a fallback).

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use keyring_core::CredentialStore;
use zeroize::Zeroizing;

use super::Backend;
use crate::error::{Error, Result};

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

/// The OS keyring under one keyring service name (the "service" attribute; the
/// secret's account is the "username").
#[derive(Debug)]
pub(super) struct SecretServiceStore {
    pub(super) service: String,
    /// The platform store, opened on first use (see the module docs).
    store: Arc<StoreSlot>,
}

impl SecretServiceStore {
    /// The store of `service`; nothing is opened yet.
    pub(super) fn new(service: impl Into<String>) -> SecretServiceStore {
        SecretServiceStore {
            service: service.into(),
            store: Arc::default(),
        }
    }

    /// Runs one keyring operation on the blocking pool and classifies its error.
    async fn blocking<T, F>(&self, account: &str, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&keyring_core::Entry) -> keyring_core::Result<T> + Send + 'static,
    {
        let service = self.service.clone();
        let account = account.to_owned();
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

impl Backend for SecretServiceStore {
    fn store<'a>(&'a self, account: &'a str, secret: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        let secret = Zeroizing::new(secret.to_vec());
        Box::pin(self.blocking(account, move |entry| entry.set_secret(&secret)))
    }

    fn read<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Option<Zeroizing<Vec<u8>>>>> {
        Box::pin(async move {
            match self.blocking(account, |entry| entry.get_secret()).await {
                Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
                Err(Error::Keyring(keyring_core::Error::NoEntry)) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn delete<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            match self
                .blocking(account, |entry| entry.delete_credential())
                .await
            {
                Ok(()) => Ok(true),
                Err(Error::Keyring(keyring_core::Error::NoEntry)) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn describe(&self) -> &'static str {
        "the OS keyring (Secret Service)"
    }
}

/// Maps a keyring error to the daemon's meaning of it (stack-notes §2): a platform
/// failure means no usable Secret Service on this session; no storage access means
/// the keyring is locked (or its unlock prompt is unavailable).
pub(super) fn classify(e: keyring_core::Error) -> Error {
    match e {
        keyring_core::Error::PlatformFailure(_) => Error::KeyringUnavailable(e),
        keyring_core::Error::NoStorageAccess(_) => Error::KeyringLocked(e),
        other => Error::Keyring(other),
    }
}
