//! Per-app payment policy (issue 7, first part): which apps may charge, which wallets,
//! a cap per payment and daily / monthly budgets per currency. Documented in
//! `docs/policy.md`.
//!
//! The file (`policy.toml`) is read when a payment needs it and re-read whenever its
//! modification time or size changed, so edits take effect without a restart and
//! without any timer. A file that does not parse refuses every payment with a message
//! naming the file and the key (fail closed), until it is fixed.
//!
//! Caps are checked here; budgets are checked by the journal in the same transaction
//! that records the payment ([`Budget`]), so concurrent calls can never overspend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use scanbind_ams::{Currency, MinorUnits, Money};
use scanbind_ipc::Error as Wire;
use serde::{Deserialize, Serialize};

/// What to do with an app the file does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Unknown {
    /// Let it pay (the default without a policy file: development machines).
    #[default]
    Allow,
    /// Refuse.
    Deny,
    /// Ask the user through a trusted display agent (issue 7); without one the
    /// payment fails with `NeedsConfirmation`.
    Ask,
}

/// Limits in one currency, minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The most one payment may be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_payment: Option<i64>,
    /// The most per UTC day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<i64>,
    /// The most per UTC month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<i64>,
}

/// One app's rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRule {
    /// Whether it may charge at all.
    #[serde(default = "yes")]
    pub allow: bool,
    /// Wallets (customerBelongsTo) it may charge; all when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallets: Option<Vec<String>>,
    /// Every charge needs the user's confirmation on a trusted display.
    #[serde(default)]
    pub confirm: bool,
    /// Limits per ISO 4217 currency code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Limits>,
}

impl Default for AppRule {
    fn default() -> Self {
        AppRule {
            allow: true,
            wallets: None,
            confirm: false,
            limits: BTreeMap::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// What to do with apps not listed.
    #[serde(default)]
    pub unknown_apps: Unknown,
    /// Rules by app id (`/usr/bin/game`, `flatpak:com.example.Game`, `snap:game`).
    #[serde(default)]
    pub apps: BTreeMap<String, AppRule>,
}

/// A budget the journal checks atomically with the insert: the sum of the app's
/// payments in `currency` not failed or cancelled since `since` (Unix seconds) plus
/// the new amount must stay within `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The budget's currency.
    pub currency: Currency,
    /// The start of the period (Unix seconds).
    pub since: i64,
    /// The most, minor units.
    pub limit: i64,
    /// `daily` or `monthly`, for the message.
    pub period: &'static str,
}

impl PolicyFile {
    /// Parses and checks a policy; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<PolicyFile, String> {
        let p: PolicyFile =
            toml::from_str(text).map_err(|e| format!("{}: {}", origin.display(), e.message()))?;
        for (app, rule) in &p.apps {
            for (code, limits) in &rule.limits {
                let at =
                    |k: &str| format!("{}: apps.\"{app}\".limits.{code}.{k}", origin.display());
                Currency::from_code(code).map_err(|_| {
                    format!(
                        "{}: apps.\"{app}\".limits.{code}: not an ISO 4217 currency",
                        origin.display()
                    )
                })?;
                for (k, v) in [
                    ("per_payment", limits.per_payment),
                    ("daily", limits.daily),
                    ("monthly", limits.monthly),
                ] {
                    if let Some(v) = v
                        && v <= 0
                    {
                        return Err(format!(
                            "{} must be a positive number of minor units, not {v}",
                            at(k)
                        ));
                    }
                }
            }
        }
        Ok(p)
    }

    /// The policy as TOML (comments are not kept).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Decides a payment of `amount` by `app` from `wallet` (empty for an order code):
    /// the budgets to check with the insert, or the refusal.
    pub(crate) fn decide(
        &self,
        app: &str,
        wallet: &str,
        amount: Money,
        now: i64,
    ) -> Result<Vec<Budget>, Wire> {
        let Some(rule) = self.apps.get(app) else {
            return match self.unknown_apps {
                Unknown::Allow => Ok(Vec::new()),
                Unknown::Deny => Err(Wire::NotAllowed(format!(
                    "the payment policy does not let {app} charge (not listed)"
                ))),
                Unknown::Ask => Err(Wire::NeedsConfirmation(format!(
                    "{app} has not been allowed yet and no trusted display agent can ask the \
                     user; nothing was charged"
                ))),
            };
        };
        if !rule.allow {
            return Err(Wire::NotAllowed(format!(
                "the payment policy does not let {app} charge"
            )));
        }
        if let Some(wallets) = &rule.wallets
            && !wallet.is_empty()
            && !wallets.iter().any(|w| w.eq_ignore_ascii_case(wallet))
        {
            return Err(Wire::NotAllowed(format!(
                "the payment policy does not let {app} charge {wallet}"
            )));
        }
        if rule.confirm {
            return Err(Wire::NeedsConfirmation(format!(
                "each charge by {app} needs the user's confirmation and no trusted display \
                 agent is running; nothing was charged"
            )));
        }
        let code = amount.currency().code();
        let Some(limits) = rule.limits.get(code) else {
            return Ok(Vec::new());
        };
        if let Some(cap) = limits.per_payment
            && amount.minor().get() > cap
        {
            return Err(Wire::AboveLimit(format!(
                "{app} may charge at most {} per payment",
                money_text(amount.currency(), cap)
            )));
        }
        let mut budgets = Vec::new();
        if let Some(limit) = limits.daily {
            budgets.push(Budget {
                currency: amount.currency(),
                since: now - now.rem_euclid(86_400),
                limit,
                period: "daily",
            });
        }
        if let Some(limit) = limits.monthly {
            budgets.push(Budget {
                currency: amount.currency(),
                since: month_start(now),
                limit,
                period: "monthly",
            });
        }
        Ok(budgets)
    }
}

/// `HKD 49.00` for 4900 minor units.
pub(crate) fn money_text(currency: Currency, minor: i64) -> String {
    match MinorUnits::new(minor) {
        Ok(m) => Money::new(currency, m).to_string(),
        Err(_) => format!("{minor} minor units of {}", currency.code()),
    }
}

/// The start of the UTC month of `now` (Unix seconds).
fn month_start(now: i64) -> i64 {
    let t =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let first = t
        .date()
        .replace_day(1)
        .unwrap_or(t.date())
        .midnight()
        .assume_utc();
    first.unix_timestamp()
}

/// A file's (modification time, size): when either changes, the file is read again.
type Stamp = (Option<SystemTime>, u64);

/// The policy file and its last-read contents, re-read when it changed.
#[derive(Debug)]
pub(crate) struct PolicySource {
    path: Option<PathBuf>,
    /// (modification time, size) of the copy read, and what it gave. A std mutex:
    /// held while a small file is read and parsed.
    cache: Mutex<Option<(Stamp, Result<PolicyFile, String>)>>,
}

impl PolicySource {
    /// The policy at `path`; `None`: no policy (every app may pay).
    pub(crate) fn new(path: Option<PathBuf>) -> PolicySource {
        PolicySource {
            path,
            cache: Mutex::new(None),
        }
    }

    /// The current policy: the file re-read if it changed; a missing file is the
    /// default (allow), an unreadable or invalid one an error.
    pub(crate) fn current(&self) -> Result<PolicyFile, String> {
        let Some(path) = &self.path else {
            return Ok(PolicyFile::default());
        };
        let stamp = match std::fs::metadata(path) {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(PolicyFile::default());
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut cache = crate::service::lock(&self.cache);
        if let Some((s, policy)) = cache.as_ref()
            && *s == stamp
        {
            return policy.clone();
        }
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|text| PolicyFile::parse(&text, path));
        if let Err(e) = &parsed {
            tracing::error!(cause = %e, "the payment policy is invalid: refusing payments until it is fixed");
        } else {
            tracing::info!(policy = %path.display(), "payment policy loaded");
        }
        *cache = Some((stamp, parsed.clone()));
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hkd(minor: i64) -> Money {
        Money::new(Currency::HKD, MinorUnits::new(minor).unwrap())
    }

    const FILE: &str = r#"
unknown_apps = "deny"
[apps."/usr/bin/game"]
wallets = ["ALIPAY_HK"]
[apps."/usr/bin/game".limits.HKD]
per_payment = 10000
daily = 50000
monthly = 200000
[apps."/usr/bin/kids"]
confirm = true
[apps."/usr/bin/banned"]
allow = false
"#;

    #[test]
    fn rules_caps_and_budgets() {
        let p = PolicyFile::parse(FILE, Path::new("policy.toml")).unwrap();
        let now = 1_790_000_000; // 2026-09-21T...
        let b = p
            .decide("/usr/bin/game", "ALIPAY_HK", hkd(4900), now)
            .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].since % 86_400, 0);
        assert!(b[1].since <= b[0].since);
        assert!(matches!(
            p.decide("/usr/bin/game", "ALIPAY_HK", hkd(10_001), now),
            Err(Wire::AboveLimit(_))
        ));
        assert!(matches!(
            p.decide("/usr/bin/game", "GCASH", hkd(100), now),
            Err(Wire::NotAllowed(_))
        ));
        assert!(matches!(
            p.decide("/usr/bin/kids", "ALIPAY_HK", hkd(100), now),
            Err(Wire::NeedsConfirmation(_))
        ));
        assert!(matches!(
            p.decide("/usr/bin/banned", "ALIPAY_HK", hkd(100), now),
            Err(Wire::NotAllowed(_))
        ));
        assert!(matches!(
            p.decide("/usr/bin/other", "ALIPAY_HK", hkd(100), now),
            Err(Wire::NotAllowed(_))
        ));
        // No policy at all: everyone may pay, without budgets.
        let open = PolicyFile::default();
        assert_eq!(open.decide("/x", "ALIPAY_HK", hkd(1), now).unwrap(), vec![]);
    }

    #[test]
    fn bad_files_name_the_key() {
        let e = PolicyFile::parse(
            "[apps.\"/g\".limits.HKD]\nper_payment = -5\n",
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(e.contains("apps.\"/g\".limits.HKD.per_payment"), "{e}");
        let e = PolicyFile::parse("[apps.\"/g\".limits.XYZ]\ndaily = 5\n", Path::new("p.toml"))
            .unwrap_err();
        assert!(e.contains("XYZ"), "{e}");
        let e = PolicyFile::parse("unknown_apps = \"maybe\"\n", Path::new("p.toml")).unwrap_err();
        assert!(e.contains("p.toml"), "{e}");
        let e = PolicyFile::parse("[apps.\"/g\"]\nallw = true\n", Path::new("p.toml")).unwrap_err();
        assert!(e.contains("allw"), "{e}");
    }

    #[test]
    fn month_start_is_the_first_at_midnight_utc() {
        // 2026-11-22T02:00:00Z → 2026-11-01T00:00:00Z
        assert_eq!(month_start(1_795_312_800), 1_793_491_200);
    }
}
