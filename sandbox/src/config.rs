//! What a sandbox is started with: merchants and their keys, the sandbox's own signing
//! key, its public URL, the notification time scale, token lifetimes and the state file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use scanbind_ams::{PrivateKey, PublicKey};

use crate::error::{Error, Result};

/// Default largest request body accepted (rejected before parsing).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// Default access token life.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default refresh token life.
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A merchant registered with the sandbox: its client id and public keys by `keyVersion`.
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    /// The `client-id` (e.g. `SANDBOX_5YEXAMPLE00001`).
    pub client_id: String,
    /// The display name on the phone pages (defaults to the client id).
    pub name: String,
    /// Public keys by key version (1 unless told otherwise).
    pub keys: BTreeMap<u32, PublicKey>,
    /// The notification address set for the merchant in Alipay's dashboard: where
    /// `notifyAuthorization` goes when `consult` gave no `authNotifyUrl`. None: such a
    /// notification is not sent.
    pub notification_url: Option<String>,
}

impl MerchantConfig {
    /// A merchant with one key, version 1.
    pub fn new(client_id: impl Into<String>, key: PublicKey) -> Self {
        let client_id = client_id.into();
        MerchantConfig {
            name: client_id.clone(),
            client_id,
            keys: BTreeMap::from([(1, key)]),
            notification_url: None,
        }
    }

    /// Parses the command-line form `CLIENT_ID[@KEY_VERSION]=PUBLIC_KEY_FILE` and reads the key.
    pub fn from_arg(arg: &str) -> Result<Self> {
        let (id, path) = arg.split_once('=').ok_or_else(|| {
            Error::Config(format!(
                "--merchant {arg:?}: expected CLIENT_ID=PUBLIC_KEY.pem"
            ))
        })?;
        let (client_id, version) = match id.split_once('@') {
            Some((c, v)) => (
                c,
                v.parse::<u32>().map_err(|_| {
                    Error::Config(format!("--merchant {id:?}: key version is not a number"))
                })?,
            ),
            None => (id, 1),
        };
        if client_id.is_empty() {
            return Err(Error::Config("--merchant: empty client id".into()));
        }
        let key = PublicKey::from_file(Path::new(path))?;
        Ok(MerchantConfig {
            client_id: client_id.to_owned(),
            name: client_id.to_owned(),
            keys: BTreeMap::from([(version, key)]),
            notification_url: None,
        })
    }
}

/// Parses the command-line form `CLIENT_ID=URL` of `--notification-url`: the address
/// set in the merchant's dashboard (http or https).
pub fn notification_url_arg(arg: &str) -> Result<(String, String)> {
    let (client_id, url) = arg.split_once('=').ok_or_else(|| {
        Error::Config(format!(
            "--notification-url {arg:?}: expected CLIENT_ID=URL"
        ))
    })?;
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::Config(format!("--notification-url {arg:?}: not a URL: {e}")))?;
    if client_id.is_empty() || !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "--notification-url {arg:?}: needs a client id and an http(s) URL"
        )));
    }
    Ok((client_id.to_owned(), url.to_owned()))
}

/// A seller: another merchant identity under a client (a marketplace's sub-merchant),
/// named in `order.merchant.referenceMerchantId` of a pay request. Payments naming it
/// are recorded and settled for it; a pay naming a seller the client has not registered
/// is refused (`F` / `ACCESS_DENIED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerConfig {
    /// The client the seller belongs to.
    pub client_id: String,
    /// The seller's `referenceMerchantId`.
    pub reference_merchant_id: String,
    /// Its display name (defaults to the reference merchant id).
    pub name: String,
}

impl SellerConfig {
    /// Parses the command-line form `CLIENT_ID=REFERENCE_MERCHANT_ID[:NAME]`.
    pub fn from_arg(arg: &str) -> Result<Self> {
        let (client_id, rest) = arg.split_once('=').ok_or_else(|| {
            Error::Config(format!(
                "--seller {arg:?}: expected CLIENT_ID=REFERENCE_MERCHANT_ID[:NAME]"
            ))
        })?;
        let (rmid, name) = match rest.split_once(':') {
            Some((r, n)) => (r, n),
            None => (rest, rest),
        };
        if client_id.is_empty() || rmid.is_empty() || rmid.len() > 64 || name.is_empty() {
            return Err(Error::Config(format!(
                "--seller {arg:?}: client id, reference merchant id (1-64) and name must not be empty"
            )));
        }
        Ok(SellerConfig {
            client_id: client_id.to_owned(),
            reference_merchant_id: rmid.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// Everything a sandbox needs to start. Build it with [`crate::Sandbox::builder`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The origin written into QR code values (`http://192.168.1.20:8080`); defaults to
    /// the listening address.
    pub public_url: Option<String>,
    /// Registered merchants.
    pub merchants: Vec<MerchantConfig>,
    /// Sellers (further merchant identities) under the registered clients.
    pub sellers: Vec<SellerConfig>,
    /// The sandbox's "Antom" private key: signs responses and notifications.
    pub signing_key: Arc<PrivateKey>,
    /// Multiplies the notification retry schedule (0s, 2m, 10m, 10m, 1h, 2h, 6h, 15h);
    /// 0.001 turns 2 minutes into 120 ms.
    pub time_scale: f64,
    /// Where state is kept across restarts (written atomically after each change).
    pub state_file: Option<PathBuf>,
    /// Access token life.
    pub access_token_ttl: Duration,
    /// Refresh token life.
    pub refresh_token_ttl: Duration,
    /// Largest request body accepted.
    pub max_body: usize,
}

impl Config {
    /// A configuration with defaults around a signing key.
    pub fn new(signing_key: PrivateKey) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            merchants: Vec::new(),
            sellers: Vec::new(),
            signing_key: Arc::new(signing_key),
            time_scale: 1.0,
            state_file: None,
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// Loads the signing key at `path`, or generates an RSA-2048 key there (PKCS#8 PEM, mode
/// 0600) when the file does not exist. Returns the key and whether it was generated.
pub fn load_or_generate_signing_key(path: &Path) -> Result<(PrivateKey, bool)> {
    if path.exists() {
        return Ok((PrivateKey::from_file(path)?, false));
    }
    let pem = crate::keygen::generate_pkcs8_pem()?;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            what: "create the signing key's directory",
            path: dir.to_owned(),
            source,
        })?;
    }
    write_private(path, pem.as_bytes())?;
    Ok((PrivateKey::from_text(&pem)?, true))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| Error::Io {
        what: "write the signing key",
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        what: "write the signing key",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::notification_url_arg;

    #[test]
    fn notification_url_args_are_checked() {
        assert_eq!(
            notification_url_arg("C1=https://m.example/notify").unwrap(),
            ("C1".to_owned(), "https://m.example/notify".to_owned())
        );
        for bad in [
            "C1",
            "=https://m.example/n",
            "C1=ftp://m.example/n",
            "C1=not a url",
        ] {
            assert!(notification_url_arg(bad).is_err(), "{bad}");
        }
    }
}
