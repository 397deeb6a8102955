//! The file backend of the vault: the daemon's own encrypted vault file, for a
//! daemon with no Secret Service (system mode on TVs and consoles, a headless box).
//!
//! The file is `<dir>/scanbind.keyring` in gnome-keyring's keyring file format (the
//! one Flatpak apps keep their secrets in), read and written by `oo7`
//! (docs/decisions.md D28): each secret is an item encrypted with AES-128-CBC and
//! authenticated with HMAC-SHA256, its attributes stored only as MACs, under a key
//! derived from the master secret with PBKDF2-SHA256 (100 000 rounds, a random salt in
//! the file). Every write goes to a new 0600 file that is fsync'd and renamed over the
//! old one.
//!
//! Opening is strict, so nothing in a vault is ever lost to a mistake:
//! - the directory is created 0700 if missing; an existing directory or file must be
//!   the daemon user's own and not accessible to group or others
//!   ([`Error::VaultPermissions`], [`Error::VaultOwner`]);
//! - a master secret shorter than [`MIN_SECRET_LEN`] is refused
//!   ([`Error::VaultSecretTooShort`]);
//! - every item must decrypt: a wrong master secret is [`Error::VaultUndecryptable`],
//!   a file that cannot be parsed or whose items partly fail is [`Error::VaultCorrupt`];
//!   in both cases the file is left exactly as it is (never rewritten, never
//!   replaced by a new vault);
//! - a new vault gets a check item first, so a wrong secret is recognised even before
//!   anything else was stored.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use oo7::file::Keyring;
use zeroize::Zeroizing;

use super::Backend;
use crate::error::{Error, Result};

/// The vault file's name in its directory.
pub(crate) const VAULT_FILE: &str = "scanbind.keyring";

/// The shortest master secret accepted, in bytes.
pub(crate) const MIN_SECRET_LEN: usize = 16;

/// The `application` attribute of every item (the bus name).
const APPLICATION: &str = scanbind_ipc::BUS_NAME;

/// The account of the check item a new vault starts with.
const CHECK_ACCOUNT: &str = "vault-check";

/// The daemon's encrypted vault file, open.
#[derive(Debug)]
pub(super) struct FileStore {
    path: PathBuf,
    keyring: Keyring,
}

impl FileStore {
    /// Opens (or creates) `dir/scanbind.keyring` with `master_secret`, strictly (see
    /// the module docs).
    pub(super) async fn open(dir: &Path, master_secret: &[u8]) -> Result<FileStore> {
        if master_secret.len() < MIN_SECRET_LEN {
            return Err(Error::VaultSecretTooShort {
                min: MIN_SECRET_LEN,
            });
        }
        prepare_dir(dir)?;
        let path = dir.join(VAULT_FILE);
        check_private(&path, 0o600, false)?;
        let secret = oo7::Secret::from(Zeroizing::new(master_secret.to_vec()));
        let keyring = Keyring::load(&path, secret)
            .await
            .map_err(|e| load_error(&path, e))?;
        let items = keyring.items().await.map_err(|e| load_error(&path, e))?;
        let broken = items.iter().filter(|item| item.is_err()).count();
        let total = items.len();
        drop(items);
        if broken > 0 {
            return Err(Error::VaultCorrupt {
                path,
                reason: format!("{broken} of {total} items cannot be decrypted"),
                source: None,
            });
        }
        let store = FileStore { path, keyring };
        if total == 0 {
            store.store(CHECK_ACCOUNT, b"scanbind vault").await?;
        }
        tracing::debug!(path = %store.path.display(), items = total, "file vault open");
        Ok(store)
    }

    fn op_error(&self, op: &'static str) -> impl FnOnce(oo7::file::Error) -> Error + '_ {
        move |source| Error::Vault {
            path: self.path.clone(),
            op,
            source: Box::new(source),
        }
    }
}

/// The attributes an item is found by.
fn attributes(account: &str) -> HashMap<&str, &str> {
    HashMap::from([("application", APPLICATION), ("account", account)])
}

impl Backend for FileStore {
    fn store<'a>(&'a self, account: &'a str, secret: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let secret = oo7::Secret::from(Zeroizing::new(secret.to_vec()));
            self.keyring
                .create_item(account, &attributes(account), secret, true)
                .await
                .map_err(self.op_error("store"))?;
            Ok(())
        })
    }

    fn read<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Option<Zeroizing<Vec<u8>>>>> {
        Box::pin(async move {
            let item = self
                .keyring
                .lookup_item(&attributes(account))
                .await
                .map_err(self.op_error("read"))?;
            Ok(item.map(|item| Zeroizing::new(item.secret().as_bytes().to_vec())))
        })
    }

    fn delete<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let attributes = attributes(account);
            let found = self
                .keyring
                .lookup_item_index(&attributes)
                .await
                .map_err(self.op_error("delete"))?;
            if found.is_none() {
                return Ok(false);
            }
            self.keyring
                .delete(&attributes)
                .await
                .map_err(self.op_error("delete"))?;
            Ok(true)
        })
    }

    fn describe(&self) -> &'static str {
        "the file vault"
    }
}

/// Creates `dir` (mode 0700) if it is missing, else checks it.
fn prepare_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| Error::VaultIo {
                    path: parent.to_owned(),
                    source,
                })?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|source| Error::VaultIo {
                    path: dir.to_owned(),
                    source,
                })?;
            check_private(dir, 0o700, true)
        }
        Err(source) => Err(Error::VaultIo {
            path: dir.to_owned(),
            source,
        }),
        Ok(_) => check_private(dir, 0o700, true),
    }
}

/// Checks that `path` (if it exists) is a directory (`dir`) or a regular file, owned
/// by the daemon's effective user, with no access for group or others (`expected` is
/// the mode the error message asks for).
fn check_private(path: &Path, expected: u32, dir: bool) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::VaultIo {
                path: path.to_owned(),
                source,
            });
        }
        Ok(meta) => meta,
    };
    let kind_ok = if dir {
        meta.file_type().is_dir()
    } else {
        meta.file_type().is_file()
    };
    let mode = meta.mode() & 0o7777;
    if !kind_ok || mode & 0o077 != 0 {
        return Err(Error::VaultPermissions {
            path: path.to_owned(),
            found: if kind_ok {
                format!("mode {mode:04o}")
            } else {
                "not a plain file or directory (a symbolic link?)".to_owned()
            },
            expected: format!(
                "a {} with mode {expected:04o}",
                if dir { "directory" } else { "file" }
            ),
        });
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(Error::VaultOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            expected: euid,
        });
    }
    Ok(())
}

/// The meaning of an error while opening the vault file.
fn load_error(path: &Path, e: oo7::file::Error) -> Error {
    match e {
        oo7::file::Error::IncorrectSecret => Error::VaultUndecryptable {
            path: path.to_owned(),
        },
        oo7::file::Error::Io(source) => Error::VaultIo {
            path: path.to_owned(),
            source,
        },
        other => Error::VaultCorrupt {
            path: path.to_owned(),
            reason: "not a readable keyring file".to_owned(),
            source: Some(Box::new(other)),
        },
    }
}

#[cfg(test)]
mod tests;
