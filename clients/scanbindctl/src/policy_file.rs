//! `policy.toml` as `apps` and `profiles` edit it: where it is, reading it through the
//! daemon's own parser (`scanbind-policy`), writing it atomically, and amounts in major units.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use scanbind_policy::{Limits, PolicyFile};

use crate::commands::parse_amount;
use crate::exit;

/// The policy file: `explicit`, else the daemon's default
/// (`$XDG_CONFIG_HOME/scanbind/policy.toml`).
pub fn path(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    explicit
        .or_else(|| scanbind_policy::default_policy_path(false))
        .context("no policy file: pass --policy FILE (HOME and XDG_CONFIG_HOME are unset)")
}

/// Reads and checks the file; a missing file is the default policy. A file the daemon
/// would refuse is a usage error (exit 2) naming the key.
pub fn load(path: &Path) -> anyhow::Result<PolicyFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => PolicyFile::parse(&text, path).map_err(exit::usage),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PolicyFile::default()),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// Replaces the file with `policy` (write to a temporary file, then rename), after
/// checking it with the daemon's own parser.
pub fn save(path: &Path, policy: &PolicyFile) -> anyhow::Result<()> {
    let text = policy.to_toml();
    PolicyFile::parse(&text, path).map_err(|e| anyhow::anyhow!("internal: {e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// Limits given in major units on the command line.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct LimitArgs {
    /// The most per payment, in major units (e.g. 100.00).
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    pub per_payment: Option<String>,
    /// The most per UTC day, in major units.
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    pub daily: Option<String>,
    /// The most per UTC month, in major units.
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    pub monthly: Option<String>,
}

impl LimitArgs {
    /// Whether no limit was given.
    pub fn is_empty(&self) -> bool {
        self.per_payment.is_none() && self.daily.is_none() && self.monthly.is_none()
    }

    /// Checks the amounts against `currency` (a known ISO 4217 code, its decimals, more
    /// than zero) and merges them into `limits` (limits not given are kept). Nothing
    /// changes on an error.
    pub fn apply(&self, currency: &str, limits: &mut Limits) -> anyhow::Result<()> {
        let minor = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
            let Some(v) = v.as_deref() else {
                return Ok(None);
            };
            if v.trim_start().starts_with('-') {
                return Err(exit::usage(format!(
                    "--{flag} {v}: a limit must be a positive amount of {currency}"
                )));
            }
            let money = parse_amount(v, currency)
                .map_err(|e| exit::usage(format!("--{flag} {v}: {e:#}")))?;
            Ok(Some(money.minor().get()))
        };
        let (p, d, m) = (
            minor("per-payment", &self.per_payment)?,
            minor("daily", &self.daily)?,
            minor("monthly", &self.monthly)?,
        );
        limits.per_payment = p.or(limits.per_payment);
        limits.daily = d.or(limits.daily);
        limits.monthly = m.or(limits.monthly);
        Ok(())
    }
}

/// Checks a currency code (exit 2 with examples when unknown) and returns it upper-case.
pub fn currency_code(currency: &str) -> anyhow::Result<String> {
    let code = currency.to_ascii_uppercase();
    scanbind_client::money::Currency::from_code(&code).map_err(|_| {
        exit::usage(format!(
            "{currency:?} is not an ISO 4217 currency code (e.g. HKD, PHP, IDR, KRW, MYR, THB, CNY)"
        ))
    })?;
    Ok(code)
}

/// One line for people: `per payment HKD 100.00 · daily HKD 500.00 · monthly -`.
pub fn limits_text(currency: &str, l: &Limits) -> String {
    let f = |v: Option<i64>| v.map_or("-".to_owned(), |v| crate::commands::money_text(v, currency));
    format!(
        "per payment {} · daily {} · monthly {}",
        f(l.per_payment),
        f(l.daily),
        f(l.monthly)
    )
}
