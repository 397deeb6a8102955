//! Configuration: one TOML file, `SCANBIND_SERVER_<SECTION>_<KEY>` environment overrides,
//! defaults in code. Secrets are never in the file: keys are named by file path, or as
//! `credential:NAME` for `$CREDENTIALS_DIRECTORY/NAME` (systemd `LoadCredential=`).
//!
//! Every key is documented in `docs/server.md`. A bad configuration fails at start with
//! the dotted key and the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// The environment variable prefix of overrides: `SCANBIND_SERVER_AMS_CLIENT_ID` sets
/// `ams.client_id`.
pub const ENV_PREFIX: &str = "SCANBIND_SERVER_";

/// Sections whose names contain `_`, matched before splitting at the first `_`.
const MULTI_WORD_SECTIONS: &[&str] = &["order_code"];

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`.
    pub server: ServerSection,
    /// `[tls]`.
    pub tls: TlsSection,
    /// `[ams]`.
    pub ams: AmsSection,
    /// `[database]`.
    pub database: DatabaseSection,
    /// `[tokens]`.
    pub tokens: TokensSection,
    /// `[receipts]`.
    pub receipts: ReceiptsSection,
    /// `[devices]`.
    pub devices: DevicesSection,
    /// `[payments]`.
    pub payments: PaymentsSection,
    /// `[order_code]`.
    pub order_code: OrderCodeSection,
    /// `[subscriptions]`.
    pub subscriptions: SubscriptionsSection,
    /// `[[sellers]]`: the merchants a combined checkout may pay.
    pub sellers: Vec<SellerEntry>,
    /// Directory relative key paths are resolved against (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerSection::default(),
            tls: TlsSection::default(),
            ams: AmsSection::default(),
            database: DatabaseSection::default(),
            tokens: TokensSection::default(),
            receipts: ReceiptsSection::default(),
            devices: DevicesSection::default(),
            payments: PaymentsSection::default(),
            order_code: OrderCodeSection::default(),
            subscriptions: SubscriptionsSection::default(),
            sellers: Vec::new(),
            base_dir: PathBuf::from("."),
        }
    }
}

/// `[server]`: where to listen and how the world reaches us.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ServerSection {
    /// Listen address of the devices' public listener (default `127.0.0.1:8443`; port
    /// 0 picks a free port).
    pub listen: SocketAddr,
    /// Listen address of the operator listener, the only one serving `/metrics` and the
    /// back office `/admin/v1` (default `127.0.0.1:8444`, or `127.0.0.1:0` when
    /// `listen` has port 0). Keep it off the devices' network. See [`Config::admin_listen`].
    pub admin_listen: Option<SocketAddr>,
    /// The public base URL Alipay posts notifications to, e.g. `https://pay.example.com`
    /// (default: derived from `listen` and `tls.mode`).
    pub public_base_url: Option<String>,
    /// Seconds between keep-alive comments on idle device event streams; 0 (the
    /// default) sends none, so an idle device is never woken. Dead connections are
    /// found by TCP keepalive on both ends instead; set this (e.g. 50) only behind a
    /// proxy that closes connections idle for longer.
    pub events_keep_alive_secs: u32,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            admin_listen: None,
            public_base_url: None,
            events_keep_alive_secs: 0,
        }
    }
}

/// TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain HTTP (behind a TLS-terminating proxy, or for tests).
    #[default]
    Off,
    /// A self-signed certificate generated at start (development).
    SelfSigned,
    /// Certificate and key from `tls.cert_file` / `tls.key_file` (PEM).
    Files,
}

/// `[tls]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TlsSection {
    /// `off` (default), `self-signed` or `files`.
    pub mode: TlsMode,
    /// PEM certificate chain (mode `files`).
    pub cert_file: Option<String>,
    /// PEM private key (mode `files`).
    pub key_file: Option<String>,
}

/// `[ams]`: how to reach Alipay (or the sandbox) and as whom.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AmsSection {
    /// Gateway region `sea`, `na`, `de` or `us` (default `sea`); ignored if `base_url` is set.
    pub region: String,
    /// Any gateway base URL, e.g. a sandbox `http://127.0.0.1:8100`.
    pub base_url: Option<String>,
    /// The merchant client id (required).
    pub client_id: String,
    /// The merchant RSA private key: a file path or `credential:NAME` (required).
    pub merchant_private_key: String,
    /// Alipay's RSA public key: a file path or `credential:NAME` (required).
    pub alipay_public_key: String,
    /// `keyVersion` in the signature header (default 1).
    #[serde(deserialize_with = "flex_u32")]
    pub key_version: u32,
    /// Attempts per AMS call, including the first (default 3).
    #[serde(deserialize_with = "flex_u32")]
    pub max_attempts: u32,
    /// Timeout of one AMS attempt in milliseconds (default 10000).
    #[serde(deserialize_with = "flex_u64")]
    pub attempt_timeout_ms: u64,
}

impl Default for AmsSection {
    fn default() -> Self {
        AmsSection {
            region: "sea".into(),
            base_url: None,
            client_id: String::new(),
            merchant_private_key: String::new(),
            alipay_public_key: String::new(),
            key_version: 1,
            max_attempts: 3,
            attempt_timeout_ms: 10_000,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DatabaseSection {
    /// `sqlite://PATH` or `postgres://...` (default: SQLite under the XDG state dir,
    /// `$XDG_STATE_HOME/scanbind-server/server.db`).
    pub url: Option<String>,
    /// Pool size (default 8).
    #[serde(deserialize_with = "flex_u32")]
    pub max_connections: u32,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: None,
            max_connections: 8,
        }
    }
}

/// `[tokens]`: the AEAD keys that seal access and refresh tokens.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TokensSection {
    /// Sealing key files (32 random bytes, base64), current first, then retired keys that
    /// still open older blobs (required, at least one).
    pub sealing_keys: Vec<String>,
}

/// `[receipts]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ReceiptsSection {
    /// Ed25519 PKCS#8 key (PEM or DER) that signs receipts (required).
    pub signing_key: String,
    /// Retired receipt keys, still published at `/v1/receipt-keys`.
    pub retired_keys: Vec<String>,
}

/// Registration modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationMode {
    /// Any device may register (development).
    Open,
    /// A device must present a per-device, single-use enrollment token issued by the
    /// operator API (default).
    #[default]
    Token,
}

/// `[devices]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DevicesSection {
    /// `token` (default) or `open`.
    pub registration: RegistrationMode,
    /// Removed: the one provisioning token shared by every device. Setting it is a
    /// configuration error pointing at enrollment tokens (decision D30).
    pub provisioning_token: Option<String>,
    /// Freshness window of signed requests, seconds (default 300).
    #[serde(deserialize_with = "flex_i64")]
    pub clock_window_seconds: i64,
}

impl Default for DevicesSection {
    fn default() -> Self {
        DevicesSection {
            registration: RegistrationMode::Token,
            provisioning_token: None,
            clock_window_seconds: 300,
        }
    }
}

/// `[payments]`: timing of the payment engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PaymentsSection {
    /// `paymentExpiryTime` after the first pay request, seconds (default 60, the Scan to
    /// Bind maximum).
    #[serde(deserialize_with = "flex_i64")]
    pub expiry_seconds: i64,
    /// Inquiry back-off in milliseconds; the last value repeats (default 2 s, 4 s, 8 s,
    /// 16 s, 32 s as in Alipay's agreement-pay demo).
    pub inquiry_backoff_ms: Vec<u64>,
    /// How long a pay call may be in flight before a restarted server inquires it,
    /// milliseconds (default 35000).
    #[serde(deserialize_with = "flex_u64")]
    pub in_flight_grace_ms: u64,
    /// How long a binding QR code lives, seconds (default 900).
    #[serde(deserialize_with = "flex_i64")]
    pub binding_ttl_seconds: i64,
}

impl Default for PaymentsSection {
    fn default() -> Self {
        PaymentsSection {
            expiry_seconds: 60,
            inquiry_backoff_ms: vec![2_000, 4_000, 8_000, 16_000, 32_000],
            in_flight_grace_ms: 35_000,
            binding_ttl_seconds: 900,
        }
    }
}

/// `[order_code]`: Order Code Payment (the user scans an order QR code).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct OrderCodeSection {
    /// Life of an order QR code, seconds (default 300; Alipay allows less than 1800).
    #[serde(deserialize_with = "flex_i64")]
    pub expiry_seconds: i64,
    /// Merchant name shown in the wallet (default `scanbind merchant`).
    pub merchant_name: String,
    /// Merchant category code (default `5815`, digital goods).
    pub merchant_mcc: String,
    /// Store id sent as `referenceStoreId` (default `online`).
    pub store_id: String,
    /// Store name (default `Online store`).
    pub store_name: String,
}

impl Default for OrderCodeSection {
    fn default() -> Self {
        OrderCodeSection {
            expiry_seconds: 300,
            merchant_name: "scanbind merchant".into(),
            merchant_mcc: "5815".into(),
            store_id: "online".into(),
            store_name: "Online store".into(),
        }
    }
}

/// Which clock decides when a subscription period ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingClock {
    /// This machine's clock (production).
    System,
    /// The sandbox's clock (`GET <ams.base_url>/sandbox/v1/clock`: real time plus the
    /// offset `POST /sandbox/v1/clock/advance` moved it by), read at every renewal pass,
    /// so tests renew a month in one call. Only against the sandbox: the server refuses
    /// it without `ams.base_url`.
    Sandbox,
}

/// `[subscriptions]`: renewals (issue 27).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SubscriptionsSection {
    /// `system` (default) or `sandbox`.
    pub clock: BillingClock,
    /// When a failed renewal is tried again, hours after the period's end (the grace
    /// period's schedule; default 24, 72, 144: days 1, 3 and 6). After the last one
    /// fails the subscription expires.
    pub retry_after_hours: Vec<u64>,
    /// Whether the engine runs renewal passes by itself (default true). With false,
    /// renewals run only when asked (`POST /admin/v1/subscriptions/renewals`): tests that
    /// must decide when a pass happens.
    #[serde(deserialize_with = "flex_bool")]
    pub automatic: bool,
}

impl Default for SubscriptionsSection {
    fn default() -> Self {
        SubscriptionsSection {
            clock: BillingClock::System,
            retry_after_hours: vec![24, 72, 144],
            automatic: true,
        }
    }
}

/// One `[[sellers]]` entry: a merchant identity (sub-merchant) under this client that a
/// combined checkout (`POST /v1/checkouts`) may pay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SellerEntry {
    /// The seller's `referenceMerchantId` (what devices send as `sellerId`; 1–64 of
    /// `[A-Za-z0-9_.-]`).
    pub id: String,
    /// Its name, sent as `merchantName` and shown in checkouts.
    pub name: String,
    /// Merchant category code (default `5815`).
    #[serde(default = "default_mcc")]
    pub mcc: String,
    /// Whether it may be part of a combined checkout (default true); a seller set to
    /// false is refused with `merge_pay_not_allowed`.
    #[serde(default = "default_true")]
    pub combinable: bool,
    /// The ISO 4217 code the seller prices in, when it is not the wallet's: its parts of
    /// a combined checkout may be priced in it, and the wallet pays them in its own
    /// currency at Alipay's quote (default: none, the seller prices in the wallet's).
    #[serde(default)]
    pub currency: Option<String>,
}

fn default_mcc() -> String {
    "5815".into()
}

fn default_true() -> bool {
    true
}

impl SellerEntry {
    /// A combinable seller with the default MCC.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        SellerEntry {
            id: id.into(),
            name: name.into(),
            mcc: default_mcc(),
            combinable: true,
            currency: None,
        }
    }

    /// The same seller pricing in `currency` (an ISO 4217 code).
    pub fn pricing_in(mut self, currency: impl Into<String>) -> Self {
        self.currency = Some(currency.into());
        self
    }

    /// The same seller with `combinable` set.
    pub fn combinable(mut self, combinable: bool) -> Self {
        self.combinable = combinable;
        self
    }
}

macro_rules! flex {
    ($name:ident, $t:ty) => {
        fn $name<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<$t, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Flex {
                N($t),
                S(String),
            }
            match Flex::deserialize(d)? {
                Flex::N(n) => Ok(n),
                Flex::S(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}"))),
            }
        }
    };
}
flex!(flex_u32, u32);
flex!(flex_u64, u64);
flex!(flex_i64, i64);
flex!(flex_bool, bool);

impl Config {
    /// Loads the file (if any), applies `SCANBIND_SERVER_*` overrides from `env`, and
    /// checks the values that need no file access.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| Error::Io {
                    what: "config file",
                    path: p.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| Error::config("(file)", format!("{}: {e}", p.display())))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            // `SCANBIND_SERVER_CONFIG` names the file itself (`--config`), and `_LOG`
            // style variables of other tools are not ours.
            if rest == "config" {
                continue;
            }
            // Section names may contain `_` (`order_code`): the longest known section
            // that prefixes the name wins.
            let known = MULTI_WORD_SECTIONS
                .iter()
                .find_map(|s| rest.strip_prefix(s)?.strip_prefix('_').map(|k| (*s, k)));
            let Some((section, key)) = known.or_else(|| rest.split_once('_')) else {
                return Err(Error::config(
                    name,
                    "expected SCANBIND_SERVER_<SECTION>_<KEY>",
                ));
            };
            let value = if value.trim_start().starts_with('[') {
                let parsed: toml::Table = format!("v = {value}")
                    .parse()
                    .map_err(|e| Error::config(format!("{section}.{key}"), format!("{e}")))?;
                parsed
                    .get("v")
                    .cloned()
                    .unwrap_or(toml::Value::String(value))
            } else {
                toml::Value::String(value)
            };
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => {
                    t.insert(key.to_owned(), value);
                }
                _ => return Err(Error::config(section, "is not a table")),
            }
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                Error::config(key, e.inner().to_string())
            })?;
        config.base_dir = path
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        if self.ams.client_id.is_empty() {
            return Err(Error::config("ams.client_id", "is required"));
        }
        for (key, value) in [
            ("ams.merchant_private_key", &self.ams.merchant_private_key),
            ("ams.alipay_public_key", &self.ams.alipay_public_key),
            ("receipts.signing_key", &self.receipts.signing_key),
        ] {
            if value.is_empty() {
                return Err(Error::config(
                    key,
                    "is required (a file path or credential:NAME)",
                ));
            }
            if value.contains("-----BEGIN") {
                return Err(Error::config(
                    key,
                    "must name a file, never hold the key itself",
                ));
            }
        }
        if self.tokens.sealing_keys.is_empty() {
            return Err(Error::config(
                "tokens.sealing_keys",
                "needs at least one key file (the current key first)",
            ));
        }
        if self.devices.provisioning_token.is_some() {
            return Err(Error::config(
                "devices.provisioning_token",
                "the shared provisioning token is no longer supported: remove this key and \
                 give each device its own single-use enrollment token \
                 (scanbind-server admin enrollment-tokens issue, or POST \
                 /admin/v1/enrollment-tokens on the operator listener; docs/server.md)",
            ));
        }
        if self.admin_listen() == self.server.listen && self.server.listen.port() != 0 {
            return Err(Error::config(
                "server.admin_listen",
                "must differ from server.listen (the operator API never shares the devices' listener)",
            ));
        }
        if self.ams.base_url.is_none() {
            scanbind_ams::client::Region::parse(&self.ams.region)
                .map_err(|e| Error::config("ams.region", e.to_string()))?;
        }
        if self.ams.max_attempts == 0 {
            return Err(Error::config("ams.max_attempts", "must be at least 1"));
        }
        if !(1..=60).contains(&self.payments.expiry_seconds) {
            return Err(Error::config(
                "payments.expiry_seconds",
                "must be 1 to 60 (Scan to Bind allows at most one minute)",
            ));
        }
        if !(1..1800).contains(&self.order_code.expiry_seconds) {
            return Err(Error::config(
                "order_code.expiry_seconds",
                "must be 1 to 1799",
            ));
        }
        if self.subscriptions.clock == BillingClock::Sandbox && self.ams.base_url.is_none() {
            return Err(Error::config(
                "subscriptions.clock",
                "sandbox needs ams.base_url (the sandbox); production uses system",
            ));
        }
        let retries = &self.subscriptions.retry_after_hours;
        if retries.len() > 10
            || retries.iter().any(|h| *h == 0 || *h > 24 * 60)
            || retries.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(Error::config(
                "subscriptions.retry_after_hours",
                "must be at most 10 increasing values of 1 to 1440 hours",
            ));
        }
        if self.payments.inquiry_backoff_ms.is_empty() {
            return Err(Error::config(
                "payments.inquiry_backoff_ms",
                "must not be empty",
            ));
        }
        if self.devices.clock_window_seconds < 1 {
            return Err(Error::config(
                "devices.clock_window_seconds",
                "must be positive",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, seller) in self.sellers.iter().enumerate() {
            let ok_id = (1..=64).contains(&seller.id.len())
                && seller
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok_id {
                return Err(Error::config(
                    format!("sellers[{i}].id"),
                    "must be 1 to 64 of A-Z a-z 0-9 _ . -",
                ));
            }
            if !seen.insert(seller.id.as_str()) {
                return Err(Error::config(format!("sellers[{i}].id"), "is a duplicate"));
            }
            if seller.name.trim().is_empty() || seller.name.chars().count() > 128 {
                return Err(Error::config(
                    format!("sellers[{i}].name"),
                    "must be 1 to 128 characters",
                ));
            }
            if seller.mcc.len() != 4 || !seller.mcc.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::config(
                    format!("sellers[{i}].mcc"),
                    "must be 4 digits",
                ));
            }
            if let Some(c) = &seller.currency
                && scanbind_ams::money::Currency::from_code(c).is_err()
            {
                return Err(Error::config(
                    format!("sellers[{i}].currency"),
                    "must be an ISO 4217 alphabetic code (e.g. USD)",
                ));
            }
        }
        if let Some(url) = &self.server.public_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::config(
                "server.public_base_url",
                "must start with http:// or https://",
            ));
        }
        if self.tls.mode == TlsMode::Files
            && (self.tls.cert_file.is_none() || self.tls.key_file.is_none())
        {
            return Err(Error::config(
                "tls.cert_file",
                "mode \"files\" needs cert_file and key_file",
            ));
        }
        Ok(())
    }

    /// The operator listener's address: `server.admin_listen`, else `127.0.0.1:8444`, or
    /// `127.0.0.1:0` (any free port) when `server.listen` has port 0.
    pub fn admin_listen(&self) -> SocketAddr {
        self.server.admin_listen.unwrap_or_else(|| {
            let port = if self.server.listen.port() == 0 {
                0
            } else {
                8444
            };
            SocketAddr::from(([127, 0, 0, 1], port))
        })
    }

    /// The database URL, defaulting to SQLite under the XDG state directory.
    pub fn database_url(&self) -> Result<String> {
        if let Some(url) = &self.database.url {
            return Ok(url.clone());
        }
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .ok_or_else(|| {
                Error::config(
                    "database.url",
                    "no default: neither XDG_STATE_HOME nor HOME is set",
                )
            })?;
        let dir = state.join("scanbind-server");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: "state directory",
            path: dir.clone(),
            source,
        })?;
        Ok(format!(
            "sqlite://{}?mode=rwc",
            dir.join("server.db").display()
        ))
    }

    /// Resolves a key reference: `credential:NAME` → `$CREDENTIALS_DIRECTORY/NAME`;
    /// a relative path → relative to the config file's directory.
    pub fn resolve_key_path(&self, key: &str, value: &str) -> Result<PathBuf> {
        if let Some(name) = value.strip_prefix("credential:") {
            if name.is_empty() || name.contains('/') {
                return Err(Error::config(key, "credential:NAME needs a plain name"));
            }
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                Error::config(
                    key,
                    "names a credential but $CREDENTIALS_DIRECTORY is not set",
                )
            })?;
            return Ok(PathBuf::from(dir).join(name));
        }
        let p = PathBuf::from(value);
        Ok(if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        })
    }

    /// Reads a key file named by `key`, mapping failures to a config error on that key.
    pub fn read_key_file(&self, key: &str, value: &str) -> Result<Vec<u8>> {
        let path = self.resolve_key_path(key, value)?;
        std::fs::read(&path)
            .map_err(|e| Error::config(key, format!("cannot read {}: {e}", path.display())))
    }

    /// The public base URL notifications are posted to (without a trailing slash).
    pub fn public_base_url(&self, bound: SocketAddr) -> String {
        match &self.server.public_base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls.mode == TlsMode::Off {
                    "http"
                } else {
                    "https"
                };
                format!("{scheme}://{bound}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const MIN: &[(&str, &str)] = &[
        ("SCANBIND_SERVER_AMS_CLIENT_ID", "SANDBOX_1"),
        ("SCANBIND_SERVER_AMS_MERCHANT_PRIVATE_KEY", "merchant.pem"),
        ("SCANBIND_SERVER_AMS_ALIPAY_PUBLIC_KEY", "alipay.pem"),
        ("SCANBIND_SERVER_RECEIPTS_SIGNING_KEY", "receipt.pem"),
        ("SCANBIND_SERVER_TOKENS_SEALING_KEYS", "[\"k1\", \"k0\"]"),
        ("SCANBIND_SERVER_DEVICES_REGISTRATION", "open"),
    ];

    #[test]
    fn env_overrides_and_defaults() {
        let mut e = env(MIN);
        e.push((
            "SCANBIND_SERVER_DEVICES_CLOCK_WINDOW_SECONDS".into(),
            "60".into(),
        ));
        e.push(("OTHER".into(), "x".into()));
        // A section with `_` in its name, and the variable naming the file itself.
        e.push((
            "SCANBIND_SERVER_ORDER_CODE_EXPIRY_SECONDS".into(),
            "42".into(),
        ));
        e.push(("SCANBIND_SERVER_CONFIG".into(), "/nonexistent.toml".into()));
        let c = Config::load(None, e).unwrap();
        assert_eq!(c.order_code.expiry_seconds, 42);
        assert_eq!(c.ams.client_id, "SANDBOX_1");
        assert_eq!(c.tokens.sealing_keys, vec!["k1", "k0"]);
        assert_eq!(c.devices.clock_window_seconds, 60);
        assert_eq!(c.devices.registration, RegistrationMode::Open);
        assert_eq!(c.payments.expiry_seconds, 60);
        assert_eq!(c.server.listen.port(), 8443);
        assert_eq!(c.admin_listen(), SocketAddr::from(([127, 0, 0, 1], 8444)));
    }

    #[test]
    fn sellers_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            let path = dir.path().join("server.toml");
            std::fs::write(&path, text).unwrap();
            Config::load(Some(&path), env(MIN))
        };
        let c = load(
            "[[sellers]]\nid = \"SELLER_A\"\nname = \"Alpha\"\n\n[[sellers]]\nid = \"SELLER_B\"\nname = \"Beta\"\nmcc = \"5942\"\ncombinable = false\n",
        )
        .unwrap();
        assert_eq!(c.sellers.len(), 2);
        assert_eq!(
            (c.sellers[0].mcc.as_str(), c.sellers[0].combinable),
            ("5815", true)
        );
        assert_eq!(
            (c.sellers[1].mcc.as_str(), c.sellers[1].combinable),
            ("5942", false)
        );
        for (text, key) in [
            (
                "[[sellers]]\nid = \"has space\"\nname = \"x\"\n",
                "sellers[0].id",
            ),
            (
                "[[sellers]]\nid = \"A\"\nname = \"x\"\nmcc = \"12\"\n",
                "sellers[0].mcc",
            ),
            (
                "[[sellers]]\nid = \"A\"\nname = \"x\"\n[[sellers]]\nid = \"A\"\nname = \"y\"\n",
                "sellers[1].id",
            ),
            (
                "[[sellers]]\nid = \"A\"\nname = \"x\"\ncolour = 1\n",
                "colour",
            ),
            (
                "[[sellers]]\nid = \"A\"\nname = \"x\"\ncurrency = \"XYZ\"\n",
                "sellers[0].currency",
            ),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn bad_config_names_the_key() {
        let err = |extra: &[(&str, &str)], skip: Option<&str>| {
            let mut e: Vec<_> = env(MIN)
                .into_iter()
                .filter(|(k, _)| Some(k.as_str()) != skip)
                .collect();
            e.extend(env(extra));
            Config::load(None, e).unwrap_err().to_string()
        };
        assert!(err(&[], Some("SCANBIND_SERVER_AMS_CLIENT_ID")).contains("ams.client_id"));
        assert!(
            err(
                &[("SCANBIND_SERVER_DEVICES_CLOCK_WINDOW_SECONDS", "soon")],
                None
            )
            .contains("devices.clock_window_seconds")
        );
        assert!(
            err(&[("SCANBIND_SERVER_DEVICES_REGISTRATION", "maybe")], None)
                .contains("devices.registration")
        );
        assert!(err(&[("SCANBIND_SERVER_AMS_COLOUR", "blue")], None).contains("colour"));
        // Token registration needs no file: tokens are issued per device.
        let mut e = env(MIN);
        e.push((
            "SCANBIND_SERVER_DEVICES_REGISTRATION".into(),
            "token".into(),
        ));
        assert!(Config::load(None, e).is_ok());
        // The removed shared token is refused, naming its replacement.
        let shared = err(
            &[("SCANBIND_SERVER_DEVICES_PROVISIONING_TOKEN", "prov.token")],
            None,
        );
        assert!(
            shared.contains("devices.provisioning_token") && shared.contains("enrollment"),
            "{shared}"
        );
        assert!(
            err(
                &[
                    ("SCANBIND_SERVER_SERVER_LISTEN", "127.0.0.1:9000"),
                    ("SCANBIND_SERVER_SERVER_ADMIN_LISTEN", "127.0.0.1:9000")
                ],
                None
            )
            .contains("server.admin_listen")
        );
        assert!(
            err(
                &[(
                    "SCANBIND_SERVER_AMS_MERCHANT_PRIVATE_KEY",
                    "-----BEGIN PRIVATE KEY-----"
                )],
                None
            )
            .contains("never hold the key")
        );
        assert!(err(&[("SCANBIND_SERVER_AMS_REGION", "mars")], None).contains("ams.region"));
        assert!(
            err(&[("SCANBIND_SERVER_PAYMENTS_EXPIRY_SECONDS", "600")], None)
                .contains("payments.expiry_seconds")
        );
    }

    #[test]
    fn toml_file_and_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            r#"
[server]
listen = "127.0.0.1:0"
[ams]
client_id = "SANDBOX_2"
merchant_private_key = "credential:merchant"
alipay_public_key = "keys/alipay.pem"
[receipts]
signing_key = "r.pem"
[tokens]
sealing_keys = ["s1"]
[devices]
registration = "token"
"#,
        )
        .unwrap();
        let c = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(
            c.resolve_key_path("ams.alipay_public_key", &c.ams.alipay_public_key)
                .unwrap(),
            dir.path().join("keys/alipay.pem")
        );
        let e = c
            .read_key_file("ams.alipay_public_key", &c.ams.alipay_public_key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ams.alipay_public_key"), "{e}");
    }
}
