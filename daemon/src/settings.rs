//! The daemon's configuration file (TOML), documented in `docs/configuration.md`.
//!
//! Looked up at `--config FILE`, else `$XDG_CONFIG_HOME/scanbind/scanbindd.toml`
//! (`~/.config/...`), else `/etc/scanbind/scanbindd.toml`; the first that exists is
//! read, none is fine. Command-line flags and `SCANBIND_*` variables override it.
//! Unknown keys are an error that names the key, so a typo never passes silently.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The system-wide configuration file.
pub const SYSTEM_CONFIG: &str = "/etc/scanbind/scanbindd.toml";

/// The file's contents; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FileConfig {
    /// The merchant server's base URL (`https://...`; `http://` only for loopback).
    pub server_url: Option<String>,
    /// The name this device shows on the wallet page.
    pub device_name: Option<String>,
    /// Where the journal lives.
    pub state_dir: Option<PathBuf>,
    /// Exit after this many seconds idle (0: never).
    pub idle_exit_secs: Option<u64>,
    /// Also serve on this peer-to-peer Unix socket.
    pub p2p_socket: Option<PathBuf>,
    /// A file holding the server's provisioning token (for servers that do not take
    /// open registration). The token itself is never in this file.
    pub provisioning_token_file: Option<PathBuf>,
    /// The per-app payment policy (`docs/policy.md`).
    pub policy_file: Option<PathBuf>,
    /// Where the secrets are kept: `"secret-service"` (the default) or `"file"` (the
    /// daemon's own encrypted vault in `<state_dir>/vault/`).
    pub vault: Option<VaultKind>,
    /// A file holding the file vault's master secret (default: the systemd credential
    /// `scanbind-vault`). The secret itself is never in this file.
    pub vault_secret_file: Option<PathBuf>,
    /// System mode: the group whose members may change the policy and unbind wallets
    /// (`io.scanbind.Manager1`) where polkit does not run (default `scanbind-admin`;
    /// `""`: none, only root).
    pub admin_group: Option<String>,
}

/// Where the daemon keeps its secrets (the `vault` key, `--vault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum VaultKind {
    /// The session's Secret Service (OS keyring).
    SecretService,
    /// The daemon's own encrypted vault file ([`crate::VaultChoice::File`]).
    File,
}

/// The systemd credential the file vault's master secret is read from when no
/// secret file is configured: `$CREDENTIALS_DIRECTORY/scanbind-vault`
/// (`LoadCredentialEncrypted=scanbind-vault`).
pub const VAULT_CREDENTIAL: &str = "scanbind-vault";

/// The system daemon's consents file: `<state_dir>/consents.toml` (each user's answers
/// to the first-use consent prompt, per uid and app; `docs/policy.md`).
pub fn consents_file(state_dir: &Path) -> PathBuf {
    state_dir.join("consents.toml")
}

/// The file vault's directory under the state directory.
pub fn vault_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("vault")
}

/// The file vault's file in its directory (`scanbind.keyring`).
pub fn vault_file(vault_dir: &Path) -> PathBuf {
    vault_dir.join("scanbind.keyring")
}

/// Reads the file vault's master secret, byte for byte: from `file` if given, else
/// from the systemd credential [`VAULT_CREDENTIAL`]; neither is
/// [`Error::VaultNoMasterSecret`] (its message says how to make one).
pub fn read_vault_secret(file: Option<&Path>) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let path = match file {
        Some(f) => f.to_owned(),
        None => match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) if Path::new(&dir).join(VAULT_CREDENTIAL).exists() => {
                PathBuf::from(dir).join(VAULT_CREDENTIAL)
            }
            _ => return Err(Error::VaultNoMasterSecret),
        },
    };
    std::fs::read(&path)
        .map(zeroize::Zeroizing::new)
        .map_err(|source| Error::VaultSecretUnreadable { path, source })
}

/// The default policy file (`scanbind_policy::default_policy_path`): the policy crate
/// is the one home of where the file lives.
pub use scanbind_policy::default_policy_path;

/// The state directory of the system daemon when none is configured: systemd's
/// `$STATE_DIRECTORY` (`StateDirectory=scanbind`; its first entry), else
/// `/var/lib/scanbind`.
pub fn system_state_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .and_then(|v| {
            v.to_str()
                .and_then(|v| v.split(':').next())
                .filter(|d| Path::new(d).is_absolute())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(SYSTEM_STATE_DIR))
}

/// The system daemon's state directory (the packaged unit's `--state-dir`).
pub const SYSTEM_STATE_DIR: &str = "/var/lib/scanbind";

/// The check the system daemon makes of its policy file before every read
/// ([`scanbind_policy::PolicySource::set_guard`]): whoever can write the file, or
/// replace it, controls what apps may spend, so it must be root's. The file (if it
/// exists) must be a plain file, not a symbolic link, owned by root and not writable by
/// group or others; every directory above it (symbolic links resolved) must be owned by
/// root and not writable by group or others, unless it is sticky (as `/tmp`: others
/// cannot rename root's entries there). A missing file (or directory) is no policy, as
/// in session mode. Otherwise [`Error::PolicyNotRootOwned`] (as text: the policy
/// crate's errors are text), which refuses every payment until it is fixed.
pub fn check_root_policy(path: &Path) -> std::result::Result<(), String> {
    root_owned(path).map_err(|e| e.to_string())
}

fn root_owned(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let refuse = |what: &Path, problem: String, fix: String| Error::PolicyNotRootOwned {
        path: what.to_owned(),
        problem,
        fix,
    };
    let dir_fix = |dir: &Path| format!("chown root:root {0} && chmod 0755 {0}", dir.display());
    let file_fix = format!("chown root:root {0} && chmod 0644 {0}", path.display());
    let f = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(refuse(path, format!("unreadable ({e})"), file_fix)),
        Ok(f) => f,
    };
    if !f.file_type().is_file() {
        return Err(refuse(
            path,
            "not a plain file (a symbolic link?)".to_owned(),
            format!(
                "replace {} with a plain file owned by root, mode 0644",
                path.display()
            ),
        ));
    }
    if f.uid() != 0 || f.mode() & 0o022 != 0 {
        return Err(refuse(
            path,
            format!(
                "owned by uid {} with mode {:04o}",
                f.uid(),
                f.mode() & 0o7777
            ),
            file_fix,
        ));
    }
    let parent = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let real = parent
        .canonicalize()
        .map_err(|e| refuse(parent, format!("unreadable ({e})"), dir_fix(parent)))?;
    for dir in real.ancestors() {
        let d = std::fs::metadata(dir)
            .map_err(|e| refuse(dir, format!("unreadable ({e})"), dir_fix(dir)))?;
        let sticky = d.mode() & 0o1000 != 0;
        if d.uid() != 0 || (d.mode() & 0o022 != 0 && !sticky) {
            return Err(refuse(
                dir,
                format!(
                    "a directory owned by uid {} with mode {:04o}",
                    d.uid(),
                    d.mode() & 0o7777
                ),
                dir_fix(dir),
            ));
        }
    }
    Ok(())
}

/// The system daemon's policy file for changes made through `io.scanbind.Manager1`:
/// `<state_dir>/policy.toml` (the daemon cannot write root's `/etc/scanbind`). While it
/// exists it is the policy in effect.
pub fn managed_policy_file(state_dir: &Path) -> PathBuf {
    state_dir.join("policy.toml")
}

/// The check the daemon makes of its managed policy file ([`managed_policy_file`])
/// before every read: a plain file (not a symbolic link) owned by the daemon's user
/// or root and not writable by group or others, in a directory owned by the daemon's
/// user or root and not writable by group or others. Otherwise
/// [`Error::PolicyNotRootOwned`] (as text), which refuses every payment.
pub fn check_managed_policy(path: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    let refuse = |what: &Path, problem: String| {
        Error::PolicyNotRootOwned {
            path: what.to_owned(),
            problem,
            fix: format!(
                "it is written by scanbindd only (io.scanbind.Manager1): remove {} to go \
                 back to the configured policy file",
                path.display()
            ),
        }
        .to_string()
    };
    let f =
        std::fs::symlink_metadata(path).map_err(|e| refuse(path, format!("unreadable ({e})")))?;
    if !f.file_type().is_file() {
        return Err(refuse(
            path,
            "not a plain file (a symbolic link?)".to_owned(),
        ));
    }
    let parent = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let d = std::fs::metadata(parent).map_err(|e| refuse(parent, format!("unreadable ({e})")))?;
    for (what, m) in [(path, &f), (parent, &d)] {
        if (m.uid() != me && m.uid() != 0) || m.mode() & 0o022 != 0 {
            return Err(refuse(
                what,
                format!(
                    "owned by uid {} with mode {:04o} (must be the daemon's, uid {me}, or \
                     root's, writable by its owner only)",
                    m.uid(),
                    m.mode() & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

/// The systemd credential name read when no token file is configured:
/// `$CREDENTIALS_DIRECTORY/provisioning-token` (`LoadCredential=`).
pub const PROVISIONING_CREDENTIAL: &str = "provisioning-token";

/// Reads the provisioning token: from `file` if given, else from the systemd
/// credential if present; `None` when neither. The text is trimmed; an empty file is
/// an error.
pub fn read_provisioning_token(file: Option<&Path>) -> Result<Option<String>> {
    let path = match file {
        Some(f) => f.to_owned(),
        None => match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => {
                let p = PathBuf::from(dir).join(PROVISIONING_CREDENTIAL);
                if !p.exists() {
                    return Ok(None);
                }
                p
            }
            None => return Ok(None),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Config(format!(
            "reading the provisioning token {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Config(format!("{} is empty", path.display())));
    }
    Ok(Some(token.to_owned()))
}

impl FileConfig {
    /// Parses and checks a file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<FileConfig> {
        let c: FileConfig = toml::from_str(text)
            .map_err(|e| Error::Config(format!("{}: {}", origin.display(), e.message())))?;
        if let Some(url) = &c.server_url {
            check_server_url(url)
                .map_err(|m| Error::Config(format!("{}: server_url: {m}", origin.display())))?;
        }
        if let Some(name) = &c.device_name
            && (name.is_empty() || name.chars().count() > 64)
        {
            return Err(Error::Config(format!(
                "{}: device_name must be 1 to 64 characters",
                origin.display()
            )));
        }
        Ok(c)
    }

    /// The file to read: `explicit`, else the user's (not in system mode: the system
    /// daemon reads only root's configuration), else the system's; `None` if none
    /// exists (an explicit one must exist).
    pub fn locate(explicit: Option<&Path>, system: bool) -> Result<Option<PathBuf>> {
        if let Some(p) = explicit {
            if !p.exists() {
                return Err(Error::Config(format!("{} does not exist", p.display())));
            }
            return Ok(Some(p.to_owned()));
        }
        let user = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|d| d.join("scanbind/scanbindd.toml"))
            .filter(|_| !system);
        Ok([user, Some(PathBuf::from(SYSTEM_CONFIG))]
            .into_iter()
            .flatten()
            .find(|p| p.exists()))
    }

    /// Reads the file found by [`FileConfig::locate`], or the defaults.
    pub fn load(explicit: Option<&Path>, system: bool) -> Result<(FileConfig, Option<PathBuf>)> {
        match FileConfig::locate(explicit, system)? {
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| Error::Config(format!("reading {}: {e}", p.display())))?;
                Ok((FileConfig::parse(&text, &p)?, Some(p)))
            }
            None => Ok((FileConfig::default(), None)),
        }
    }
}

/// A server URL must be `https://`, or `http://` to a loopback host.
pub fn check_server_url(url: &str) -> std::result::Result<(), String> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    if url.starts_with("https://")
        || loopback.iter().any(|p| {
            url.starts_with(p) && matches!(url.as_bytes().get(p.len()), None | Some(b':' | b'/'))
        })
    {
        Ok(())
    } else {
        Err(format!(
            "{url:?} must start with https:// (plain http only to 127.0.0.1, localhost or [::1])"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let c = FileConfig::parse(
            "server_url = \"https://pay.example.com\"\ndevice_name = \"Living room TV\"\nstate_dir = \"/var/lib/scanbind\"\nidle_exit_secs = 300\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.server_url.as_deref(), Some("https://pay.example.com"));
        assert_eq!(c.idle_exit_secs, Some(300));
    }

    #[test]
    fn typos_and_bad_values_name_the_key() {
        let e = FileConfig::parse("sever_url = \"x\"\n", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("sever_url"), "{e}");
        let e = FileConfig::parse(
            "server_url = \"http://evil.example\"\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("server_url"), "{e}");
        let e = FileConfig::parse("idle_exit_secs = -1\n", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("t.toml"), "{e}");
    }

    #[test]
    fn the_vault_keys_parse() {
        let c = FileConfig::parse(
            "vault = \"file\"\nvault_secret_file = \"/etc/scanbind/vault.key\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.vault, Some(VaultKind::File));
        assert_eq!(
            c.vault_secret_file.as_deref(),
            Some(Path::new("/etc/scanbind/vault.key"))
        );
        let c = FileConfig::parse("vault = \"secret-service\"\n", Path::new("t.toml")).unwrap();
        assert_eq!(c.vault, Some(VaultKind::SecretService));
        let e = FileConfig::parse("vault = \"tpm\"\n", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("`tpm`"), "{e}");
        assert!(e.to_string().contains("secret-service"), "{e}");
    }

    #[test]
    fn a_policy_file_that_is_not_roots_is_refused_naming_the_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        set(dir.path(), 0o755);
        // Missing (the file, or its directory): no policy, fine (the tests run as root:
        // the directory is root's, in the sticky /tmp).
        assert_eq!(rustix::process::geteuid().as_raw(), 0, "run as root");
        check_root_policy(&path).unwrap();
        check_root_policy(&dir.path().join("no-such-dir/policy.toml")).unwrap();
        std::fs::write(&path, "unknown_apps = \"deny\"\n").unwrap();
        set(&path, 0o644);
        check_root_policy(&path).unwrap();
        for mode in [0o664, 0o646, 0o666] {
            set(&path, mode);
            let e = check_root_policy(&path).unwrap_err();
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains(&format!("chmod 0644 {}", path.display())), "{e}");
        }
        set(&path, 0o644);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let e = check_root_policy(&path).unwrap_err();
        assert!(e.contains("owned by uid 65534"), "{e}");
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        set(dir.path(), 0o777);
        let e = check_root_policy(&path).unwrap_err();
        assert!(
            e.contains(&format!("chmod 0755 {}", dir.path().display())),
            "{e}"
        );
        // Any directory above counts, not only the file's own.
        set(dir.path(), 0o755);
        let sub = dir.path().join("etc");
        std::fs::create_dir(&sub).unwrap();
        set(&sub, 0o755);
        let inner = sub.join("policy.toml");
        std::fs::write(&inner, "unknown_apps = \"deny\"\n").unwrap();
        set(&inner, 0o644);
        check_root_policy(&inner).unwrap();
        set(dir.path(), 0o775);
        let e = check_root_policy(&inner).unwrap_err();
        assert!(
            e.contains(&format!("chmod 0755 {}", dir.path().display())),
            "{e}"
        );
        // ... unless it is sticky (others cannot replace root's entries there).
        set(dir.path(), 0o1777);
        check_root_policy(&inner).unwrap();
        set(dir.path(), 0o755);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        let e = check_root_policy(&path).unwrap_err();
        assert!(e.contains("not a plain file"), "{e}");
    }

    #[test]
    fn the_system_state_dir_is_systemds_or_var_lib() {
        // (Setting the variable is unsafe in this edition: the test reads only.)
        assert_eq!(SYSTEM_STATE_DIR, "/var/lib/scanbind");
        if std::env::var_os("STATE_DIRECTORY").is_none() {
            assert_eq!(system_state_dir(), PathBuf::from(SYSTEM_STATE_DIR));
        }
    }

    #[test]
    fn loopback_http_is_allowed_but_not_lookalikes() {
        assert!(check_server_url("http://127.0.0.1:8443").is_ok());
        assert!(check_server_url("http://localhost/").is_ok());
        assert!(check_server_url("http://localhost.evil.com").is_err());
        assert!(check_server_url("ftp://x").is_err());
    }
}
