//! # scanbind-policy
//!
//! Per-app payment policy (issue 7, first part): which apps may charge, which wallets,
//! a cap per payment and daily / monthly budgets per currency. Documented in
//! `docs/policy.md`. The daemon decides payments with it (`scanbindd::policy` is this
//! crate); `scanbindctl` reads and writes the same file with it. It does not depend on
//! the daemon.
//!
//! The file (`policy.toml`) is read when a payment needs it and re-read whenever its
//! modification time or size changed, so edits take effect without a restart and
//! without any timer. A file that does not parse refuses every payment with a message
//! naming the file and the key (fail closed), until it is fixed.
//!
//! Caps are checked here; budgets are checked by the journal in the same transaction
//! that records the payment ([`Budget`]), so concurrent calls can never overspend.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use scanbind_ipc::Error as Wire;

mod consents;
pub use consents::{ConsentsFile, Grant};
use scanbind_money::{Currency, MinorUnits, Money};
use serde::{Deserialize, Serialize};

/// The first lines of a policy file written through the daemon
/// ([`PolicySource::edit`]).
pub const MANAGED_HEADER: &str = "# scanbind payment policy (docs/policy.md), written by scanbindd for\n\
# io.scanbind.Manager1 (`scanbindctl apps`, `scanbindctl profiles`). The file is\n\
# rewritten from its parsed form at each change: comments are not kept.\n\n";

/// The start of the app id of a caller whose identity the daemon could not verify (a
/// process in a mount or user namespace of its own that is no verifiable Flatpak or
/// snap, or one that exec'd another program on its connection): `unverified:` and the
/// executable it shows. Such an id never matches an app's rule or a consent
/// ([`PolicyFile::decide_with`]): `unknown_apps` decides, and "ask" asks each time
/// (a confirmation, never a remembered consent).
pub const UNVERIFIED_PREFIX: &str = "unverified:";

/// The default policy file: `$XDG_CONFIG_HOME/scanbind/policy.toml` for a user daemon,
/// `/etc/scanbind/policy.toml` for a system one. The user daemon's need not exist
/// (then every app may pay); the system daemon's, and any path configured explicitly,
/// must ([`PolicySource::required`]: missing, no app may pay). Creating or editing it
/// takes effect at the next payment.
pub fn default_policy_path(system: bool) -> Option<PathBuf> {
    if system {
        return Some(PathBuf::from("/etc/scanbind/policy.toml"));
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("scanbind/policy.toml"))
}

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
    /// What a payment above `per_payment` does.
    #[serde(default, skip_serializing_if = "AboveCap::is_refuse")]
    pub above_cap: AboveCap,
    /// Whether it may start subscriptions (`Daemon1.Subscribe`); `false` refuses them
    /// with `NotAllowed` while its one-off payments go on.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub subscriptions: bool,
}

impl Default for AppRule {
    fn default() -> Self {
        AppRule {
            allow: true,
            wallets: None,
            confirm: false,
            limits: BTreeMap::new(),
            above_cap: AboveCap::Refuse,
            subscriptions: true,
        }
    }
}

/// What a payment above an app's `per_payment` cap does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AboveCap {
    /// Refuse it with `AboveLimit` (the default).
    #[default]
    Refuse,
    /// Step up: the payment becomes an order code the user pays on the phone (shown by
    /// the display agent, and in the payment's `OrderCode` for the app).
    OrderCode,
}

impl AboveCap {
    fn is_refuse(&self) -> bool {
        *self == AboveCap::Refuse
    }
}

/// A profile: who is in front of the TV. The active one applies to every app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// A kid profile: every charge waits for a parent's approval with the PIN on the
    /// display agent.
    #[serde(default)]
    pub kid: bool,
    /// Limits per currency over all apps together while this profile is active.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Limits>,
}

/// What an app allowed from the first-use consent prompt gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Limits per currency written into the app's new rule (and named in the prompt).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Limits>,
}

impl Consent {
    fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }
}

/// A display agent the daemon accepts besides the default ones (`scanbind-agent` and
/// `scanbindctl` installed beside `scanbindd`, run by the daemon's own user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedAgent {
    /// The user id it runs as.
    pub uid: u32,
    /// Its executable's absolute path.
    pub exe: PathBuf,
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_yes(b: &bool) -> bool {
    *b
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// What to do with apps not listed.
    #[serde(default)]
    pub unknown_apps: Unknown,
    /// The profile in front of the TV now (a key of `profiles`); none: no profile rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_profile: Option<String>,
    /// How long a prompt on the display agent waits for an answer (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_timeout_secs: Option<u32>,
    /// What the first-use consent prompt grants.
    #[serde(default, skip_serializing_if = "Consent::is_empty")]
    pub consent: Consent,
    /// Display agents trusted besides the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_agents: Vec<TrustedAgent>,
    /// Rules by app id (`/usr/bin/game`, `flatpak:com.example.Game`, `snap:game`).
    #[serde(default)]
    pub apps: BTreeMap<String, AppRule>,
    /// Profiles by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, Profile>,
}

/// What the user must be asked before a payment is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// The first charge of an app the policy does not list (`unknown_apps = "ask"`):
    /// allowing it adds the app with the `[consent]` limits.
    Consent,
    /// The app's rule says `confirm = true`.
    Confirm,
    /// The active profile is a kid's: a parent approves with the PIN.
    ParentApproval,
}

/// The policy's verdict on a payment that is not refused.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Budgets the journal checks with the insert.
    pub budgets: Vec<Budget>,
    /// Whom to ask first, if anyone.
    pub prompt: Option<Prompt>,
    /// Above the app's cap with `above_cap = "order-code"`: pay by order code.
    pub step_up: bool,
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
    /// Whether it counts this app's payments only (`false`: every app's, a profile's
    /// budget).
    pub per_app: bool,
}

impl PolicyFile {
    /// Parses and checks a policy; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<PolicyFile, String> {
        let p: PolicyFile =
            toml::from_str(text).map_err(|e| format!("{}: {}", origin.display(), e.message()))?;
        let at = |key: String| format!("{}: {key}", origin.display());
        for (app, rule) in &p.apps {
            check_limits(&rule.limits, &format!("apps.\"{app}\".limits")).map_err(at)?;
        }
        for (name, profile) in &p.profiles {
            check_limits(&profile.limits, &format!("profiles.{name}.limits")).map_err(at)?;
        }
        check_limits(&p.consent.limits, "consent.limits").map_err(at)?;
        if let Some(name) = &p.active_profile
            && !p.profiles.contains_key(name)
        {
            return Err(at(format!(
                "active_profile: no profile {name:?} is defined under [profiles]"
            )));
        }
        if let Some(t) = p.prompt_timeout_secs
            && !(1..=3600).contains(&t)
        {
            return Err(at(format!(
                "prompt_timeout_secs: {t} is not between 1 and 3600"
            )));
        }
        for (i, a) in p.trusted_agents.iter().enumerate() {
            if !a.exe.is_absolute() {
                return Err(at(format!(
                    "trusted_agents[{i}].exe: {} is not an absolute path",
                    a.exe.display()
                )));
            }
        }
        Ok(p)
    }

    /// The policy as TOML (comments are not kept); an error (never an empty text, which
    /// would read back as the default policy) if it cannot be written as TOML.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| format!("the policy cannot be written as TOML: {e}"))
    }

    /// Decides a payment of `amount` by `app` from `wallet` (empty for an order code):
    /// the budgets to check with the insert and whom to ask, or the refusal.
    pub fn decide(
        &self,
        app: &str,
        wallet: &str,
        amount: Money,
        now: i64,
    ) -> Result<Decision, Wire> {
        self.decide_with(app, None, wallet, amount, now)
    }

    /// [`PolicyFile::decide`] for a caller whose user gave `app` a consent
    /// (`granted`, from [`PolicySource::granted`]): the policy's own rule for the app
    /// comes first, then the consent, then `unknown_apps`.
    pub fn decide_with(
        &self,
        app: &str,
        granted: Option<&AppRule>,
        wallet: &str,
        amount: Money,
        now: i64,
    ) -> Result<Decision, Wire> {
        let mut decision = Decision::default();
        let code = amount.currency().code();
        // The profile in front of the TV: its limits hold over every app.
        if let Some(name) = &self.active_profile {
            let profile = self.profiles.get(name).ok_or_else(|| {
                Wire::NotAllowed(format!("the active profile {name:?} is not defined"))
            })?;
            if profile.kid {
                decision.prompt = Some(Prompt::ParentApproval);
            }
            if let Some(limits) = profile.limits.get(code) {
                if let Some(cap) = limits.per_payment
                    && amount.minor().get() > cap
                {
                    return Err(Wire::AboveLimit(format!(
                        "the {name} profile allows at most {} per payment",
                        money_text(amount.currency(), cap)
                    )));
                }
                budgets(&mut decision.budgets, amount.currency(), limits, now, false);
            }
        }
        // An app whose identity could not be verified matches no rule and no consent.
        let unverified = app.starts_with(UNVERIFIED_PREFIX);
        let rule = if unverified {
            None
        } else {
            self.apps.get(app).or(granted)
        };
        let Some(rule) = rule else {
            return match self.unknown_apps {
                Unknown::Allow => Ok(decision),
                Unknown::Deny => Err(Wire::NotAllowed(format!(
                    "the payment policy does not let {app} charge (not listed)"
                ))),
                Unknown::Ask if unverified => {
                    // Asked each time: a consent would be remembered for an id the
                    // caller could claim again.
                    decision.prompt.get_or_insert(Prompt::Confirm);
                    Ok(decision)
                }
                Unknown::Ask => {
                    // A kid's parent approves the charge; the app is not added.
                    decision.prompt.get_or_insert(Prompt::Consent);
                    Ok(decision)
                }
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
            decision.prompt.get_or_insert(Prompt::Confirm);
        }
        let Some(limits) = rule.limits.get(code) else {
            return Ok(decision);
        };
        if let Some(cap) = limits.per_payment
            && amount.minor().get() > cap
        {
            match rule.above_cap {
                AboveCap::Refuse => {
                    return Err(Wire::AboveLimit(format!(
                        "{app} may charge at most {} per payment",
                        money_text(amount.currency(), cap)
                    )));
                }
                // The user confirms on the phone: no prompt on the TV for this one
                // (a kid's still needs the parent).
                AboveCap::OrderCode => {
                    decision.step_up = true;
                    if decision.prompt == Some(Prompt::Confirm) {
                        decision.prompt = None;
                    }
                }
            }
        }
        budgets(&mut decision.budgets, amount.currency(), limits, now, true);
        Ok(decision)
    }

    /// Whether `app` may charge `wallet` at all (what `ListBindings` shows it): the
    /// policy's rule for the app, else `granted` (the user's consent), else
    /// `unknown_apps` (`allow` and `ask`: yes, `deny`: no). A rule with `allow = false`
    /// charges nothing; one with `wallets` only those. Caps, budgets and prompts are
    /// not considered (they decide each payment).
    pub fn may_charge(&self, app: &str, granted: Option<&AppRule>, wallet: &str) -> bool {
        match self.apps.get(app).or(granted) {
            None => self.unknown_apps != Unknown::Deny,
            Some(rule) => {
                rule.allow
                    && rule
                        .wallets
                        .as_ref()
                        .is_none_or(|ws| ws.iter().any(|w| w.eq_ignore_ascii_case(wallet)))
            }
        }
    }

    /// The limits the consent prompt grants in `currency`, if any.
    pub fn consent_limits(&self, currency: Currency) -> Option<Limits> {
        self.consent.limits.get(currency.code()).copied()
    }
}

/// Adds the daily and monthly budgets of `limits`.
fn budgets(out: &mut Vec<Budget>, currency: Currency, limits: &Limits, now: i64, per_app: bool) {
    if let Some(limit) = limits.daily {
        out.push(Budget {
            currency,
            since: now - now.rem_euclid(86_400),
            limit,
            period: "daily",
            per_app,
        });
    }
    if let Some(limit) = limits.monthly {
        out.push(Budget {
            currency,
            since: month_start(now),
            limit,
            period: "monthly",
            per_app,
        });
    }
}

/// Checks limits per currency: known ISO 4217 codes, positive amounts. The error names
/// the key under `prefix`.
fn check_limits(limits: &BTreeMap<String, Limits>, prefix: &str) -> Result<(), String> {
    for (code, l) in limits {
        Currency::from_code(code)
            .map_err(|_| format!("{prefix}.{code}: not an ISO 4217 currency"))?;
        for (k, v) in [
            ("per_payment", l.per_payment),
            ("daily", l.daily),
            ("monthly", l.monthly),
        ] {
            if let Some(v) = v
                && v <= 0
            {
                return Err(format!(
                    "{prefix}.{code}.{k} must be a positive number of minor units, not {v}"
                ));
            }
        }
    }
    Ok(())
}

/// Replaces `path` with `text` atomically: a new file beside it (same file system, so
/// the rename is atomic) with `mode`, written and synced, then renamed over it.
fn replace_file(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `HKD 49.00` for 4900 minor units.
pub fn money_text(currency: Currency, minor: i64) -> String {
    match MinorUnits::new(minor) {
        Ok(m) => Money::new(currency, m).to_string(),
        Err(_) => format!("{minor} minor units of {}", currency.code()),
    }
}

/// Locks a mutex, recovering it if a panicking holder poisoned it: the guarded values
/// (a cache, a writer token) stay valid whatever a panic interrupted.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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

/// A file parsed by `parse` and its last-read contents, re-read when it changed; a
/// missing file is `T::default()`.
#[derive(Debug)]
struct Watched<T> {
    path: PathBuf,
    /// (modification time, size) of the copy read, and what it gave. A std mutex:
    /// held while a small file is read and parsed.
    cache: Mutex<Option<(Stamp, Result<T, String>)>>,
}

impl<T: Clone + Default> Watched<T> {
    fn new(path: PathBuf) -> Watched<T> {
        Watched {
            path,
            cache: Mutex::new(None),
        }
    }

    /// The contents (the file re-read if it changed), and whether it was read now
    /// rather than taken from the cache (for the log).
    fn read(
        &self,
        parse: impl FnOnce(&str, &Path) -> Result<T, String>,
    ) -> (Result<T, String>, bool) {
        let stamp = match std::fs::metadata(&self.path) {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Ok(T::default()), false);
            }
            Err(e) => return (Err(format!("{}: {e}", self.path.display())), false),
        };
        let mut cache = lock(&self.cache);
        if let Some((s, value)) = cache.as_ref()
            && *s == stamp
        {
            return (value.clone(), false);
        }
        let parsed = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))
            .and_then(|text| parse(&text, &self.path));
        *cache = Some((stamp, parsed.clone()));
        (parsed, true)
    }
}

/// The policy file and its last-read contents, re-read when it changed, and where
/// consents are kept.
#[derive(Debug)]
pub struct PolicySource {
    policy: Option<Watched<PolicyFile>>,
    /// The daemon's consents file ([`PolicySource::with_consents`]), if it has one.
    consents: Option<Watched<ConsentsFile>>,
    /// The one uid whose consents may go into the policy file when there is no
    /// consents file (a session daemon's own user); `None`: any (not known).
    policy_owner: Option<u32>,
    /// Held while a consent is written (one writer at a time).
    write: Mutex<()>,
    /// Checked before every read ([`PolicySource::set_guard`]).
    guard: std::sync::OnceLock<PolicyGuard>,
    /// The file changes made through the daemon go to, when it is not the policy file
    /// itself ([`PolicySource::with_managed`]), and its check.
    managed: Option<(Watched<PolicyFile>, PolicyGuard)>,
    /// A missing policy file refuses every payment ([`PolicySource::required`]).
    required: bool,
}

/// A check of the policy file made before every read (e.g. the system daemon's "owned
/// by root, writable by root only"); its error refuses every payment.
pub type PolicyGuard = fn(&Path) -> Result<(), String>;

impl PolicySource {
    /// The policy at `path`; `None`: no policy (every app may pay). Consents go into
    /// that file ([`PolicySource::grant`]) until [`PolicySource::with_consents`] says
    /// otherwise.
    pub fn new(path: Option<PathBuf>) -> PolicySource {
        PolicySource {
            policy: path.map(Watched::new),
            consents: None,
            policy_owner: None,
            write: Mutex::new(()),
            guard: std::sync::OnceLock::new(),
            managed: None,
            required: false,
        }
    }

    /// Makes a missing policy file refuse every payment (fail closed) instead of
    /// letting every app pay: for a path the user configured explicitly, and for the
    /// system daemon's. Only the session daemon's default path may be missing.
    pub fn required(mut self, required: bool) -> PolicySource {
        self.required = required;
        self
    }

    /// Changes made through the daemon ([`PolicySource::edit`]) go to `managed`, a file
    /// the daemon owns (the system daemon's `<state dir>/policy.toml`: it cannot write
    /// root's `/etc/scanbind/policy.toml`, and must not be able to). While `managed`
    /// exists it *is* the policy (checked by `guard` before every read); the policy
    /// file given to [`PolicySource::new`] is then only the starting point of the
    /// first change.
    pub fn with_managed(mut self, managed: Option<PathBuf>, guard: PolicyGuard) -> PolicySource {
        self.managed = managed.map(|p| (Watched::new(p), guard));
        self
    }

    /// The file the policy is read from now: the managed one if it exists, else the
    /// policy file (`None`: no policy configured).
    pub fn path(&self) -> Option<&Path> {
        if let Some((m, _)) = &self.managed
            && std::fs::symlink_metadata(&m.path).is_ok()
        {
            return Some(&m.path);
        }
        self.policy.as_ref().map(|p| p.path.as_path())
    }

    /// Changes the policy: `change` gets the current policy (a policy file that does
    /// not exist yet starts from the defaults, with `unknown_apps = "ask"` where a
    /// missing file would refuse payments), and what it leaves is checked with the
    /// same parser as every read and written atomically (a new file beside the old
    /// one, synced, renamed over it) to the managed file if there is one, else to the
    /// policy file. One change at a time; nothing is written when `change` fails.
    /// The file is written from its parsed form, so comments are not kept.
    ///
    /// Errors: `change`'s own; `NotAllowed` when no policy file is configured;
    /// `Internal` when the current policy cannot be read or is invalid (fix the file,
    /// or replace it whole with `change` ignoring its argument: see
    /// [`PolicySource::replace`]), or the file cannot be written.
    pub fn edit<T>(
        &self,
        change: impl FnOnce(&mut PolicyFile) -> Result<T, Wire>,
    ) -> Result<T, Wire> {
        let _writer = lock(&self.write);
        let mut policy = self.current_for_edit()?;
        let out = change(&mut policy)?;
        self.write_policy(&policy)?;
        Ok(out)
    }

    /// Replaces the whole policy with `policy` (checked and written as by
    /// [`PolicySource::edit`]; the current file need not be valid).
    pub fn replace(&self, policy: &PolicyFile) -> Result<(), Wire> {
        let _writer = lock(&self.write);
        self.write_policy(policy)
    }

    fn current_for_edit(&self) -> Result<PolicyFile, Wire> {
        let Some(path) = self.path() else {
            return Err(Wire::NotAllowed(
                "no policy file is configured for this daemon (policy_file in scanbindd.toml)"
                    .to_owned(),
            ));
        };
        if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            let mut fresh = PolicyFile::default();
            if self.required {
                fresh.unknown_apps = Unknown::Ask;
            }
            return Ok(fresh);
        }
        self.current().map_err(|e| {
            Wire::Internal(format!(
                "the current policy cannot be changed: {e} (fix the file, or replace it whole)"
            ))
        })
    }

    fn write_policy(&self, policy: &PolicyFile) -> Result<(), Wire> {
        let (path, mode) = match (&self.managed, &self.policy) {
            (Some((m, _)), _) => (&m.path, 0o600),
            (None, Some(p)) => (&p.path, 0o644),
            (None, None) => {
                return Err(Wire::NotAllowed(
                    "no policy file is configured for this daemon (policy_file in scanbindd.toml)"
                        .to_owned(),
                ));
            }
        };
        let text = format!(
            "{MANAGED_HEADER}{}",
            policy.to_toml().map_err(Wire::Internal)?
        );
        PolicyFile::parse(&text, path).map_err(Wire::InvalidArgument)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Wire::Internal(format!("creating {}: {e}", dir.display())))?;
        }
        replace_file(path, &text, mode)
            .map_err(|e| Wire::Internal(format!("the policy could not be written: {e}")))?;
        tracing::info!(policy = %path.display(), "payment policy changed through the daemon");
        Ok(())
    }

    /// Makes every read call `guard` on the path first (once; later calls are
    /// ignored). While it fails, [`PolicySource::current`] is its error.
    pub fn set_guard(&self, guard: PolicyGuard) {
        let _ = self.guard.set(guard);
    }

    /// Where consents are kept: `consents`, the daemon's own file per (uid, app)
    /// ([`ConsentsFile`]); or, with `None`, the policy file itself (a session daemon:
    /// the user's own file), for `policy_owner`'s consents only: a consent of any
    /// other uid is refused rather than written for every user of the app.
    pub fn with_consents(mut self, consents: Option<PathBuf>, policy_owner: u32) -> PolicySource {
        self.consents = consents.map(Watched::new);
        self.policy_owner = Some(policy_owner);
        self
    }

    /// Keeps `uid`'s answer to the first-use consent prompt for `app`: allowed for
    /// `wallet` (all wallets when empty) with `limits`. Into the consents file when
    /// there is one (replaced atomically, mode 0600; a consent already given is kept
    /// as it is); otherwise the app is added to the policy file (replaced atomically;
    /// an app already listed keeps its rule).
    pub fn grant(
        &self,
        uid: u32,
        app: &str,
        wallet: &str,
        limits: BTreeMap<String, Limits>,
    ) -> Result<(), String> {
        let wallets = (!wallet.is_empty()).then(|| vec![wallet.to_owned()]);
        let _writer = lock(&self.write);
        if let Some(consents) = &self.consents {
            let mut file = self.consents_file(consents)?;
            if file.get(uid, app).is_none() {
                file.consents.push(Grant {
                    uid,
                    app: app.to_owned(),
                    wallets,
                    limits,
                });
                replace_file(&consents.path, &file.to_toml()?, 0o600)?;
            }
            return Ok(());
        }
        if self.policy_owner.is_some_and(|owner| owner != uid) {
            return Err(format!(
                "a consent of uid {uid} cannot be kept: this daemon keeps consents in its \
                 user's policy file, for that user only"
            ));
        }
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let mut file = self.current()?;
        file.apps.entry(app.to_owned()).or_insert_with(|| AppRule {
            wallets,
            limits,
            ..AppRule::default()
        });
        replace_file(&policy.path, &file.to_toml()?, 0o644)
    }

    /// The rule `uid`'s consent gives `app`, if that user gave one (only with a
    /// consents file; a consent kept in the policy file is the app's rule there).
    pub fn granted(&self, uid: u32, app: &str) -> Result<Option<AppRule>, String> {
        let Some(consents) = &self.consents else {
            return Ok(None);
        };
        Ok(self.consents_file(consents)?.get(uid, app).map(Grant::rule))
    }

    fn consents_file(&self, consents: &Watched<ConsentsFile>) -> Result<ConsentsFile, String> {
        let (parsed, fresh) = consents.read(ConsentsFile::parse);
        if fresh && let Err(e) = &parsed {
            tracing::error!(cause = %e, "the consents file is invalid: refusing the payments that need it until it is fixed");
        }
        parsed
    }

    /// The current policy: the managed file if it exists ([`PolicySource::with_managed`]),
    /// else the policy file, re-read if it changed. A missing file is the default
    /// (allow) unless [`PolicySource::required`], then an error (fail closed); an
    /// unreadable or invalid one is an error.
    pub fn current(&self) -> Result<PolicyFile, String> {
        if let Some((managed, guard)) = &self.managed
            && std::fs::symlink_metadata(&managed.path).is_ok()
        {
            if let Err(e) = guard(&managed.path) {
                tracing::error!(cause = %e, "the managed payment policy file is not trusted: refusing payments");
                return Err(e);
            }
            return Self::parsed(managed);
        }
        let Some(policy) = &self.policy else {
            return Ok(PolicyFile::default());
        };
        if let Some(guard) = self.guard.get()
            && let Err(e) = guard(&policy.path)
        {
            tracing::error!(cause = %e, "the payment policy file is not trusted: refusing payments");
            return Err(e);
        }
        if self.required
            && std::fs::symlink_metadata(&policy.path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            let e = format!(
                "{}: the configured payment policy file does not exist, so no app may pay \
                 (fail closed); create it, or change the policy with `scanbindctl apps`",
                policy.path.display()
            );
            tracing::error!(cause = %e, "the payment policy is missing: refusing payments");
            return Err(e);
        }
        Self::parsed(policy)
    }

    fn parsed(policy: &Watched<PolicyFile>) -> Result<PolicyFile, String> {
        let (parsed, fresh) = policy.read(PolicyFile::parse);
        if fresh {
            match &parsed {
                Err(e) => {
                    tracing::error!(cause = %e, "the payment policy is invalid: refusing payments until it is fixed");
                }
                Ok(_) => {
                    tracing::info!(policy = %policy.path.display(), "payment policy loaded");
                }
            }
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hkd(minor: i64) -> Money {
        Money::new(Currency::HKD, MinorUnits::new(minor).unwrap())
    }

    #[test]
    fn an_unverified_caller_matches_no_rule_and_no_consent() {
        let text = "unknown_apps = \"deny\"\n[apps.\"/usr/bin/game\"]\n[apps.\"unverified:/usr/bin/game\"]\n";
        let p = PolicyFile::parse(text, Path::new("p.toml")).unwrap();
        assert!(p.decide("/usr/bin/game", "", hkd(100), 0).is_ok());
        let rule = AppRule::default();
        let e = p
            .decide_with("unverified:/usr/bin/game", Some(&rule), "", hkd(100), 0)
            .unwrap_err();
        assert!(matches!(e, Wire::NotAllowed(_)), "{e:?}");
        // "ask": asked every time, never a consent that would be remembered.
        let ask = PolicyFile::parse("unknown_apps = \"ask\"\n", Path::new("p.toml")).unwrap();
        let d = ask
            .decide("unverified:/usr/bin/game", "", hkd(100), 0)
            .unwrap();
        assert_eq!(d.prompt, Some(Prompt::Confirm));
        let d = ask.decide("/usr/bin/game", "", hkd(100), 0).unwrap();
        assert_eq!(d.prompt, Some(Prompt::Consent));
    }

    #[test]
    fn subscriptions_can_be_forbidden_per_app_and_are_allowed_by_default() {
        let text = "[apps.\"/usr/bin/tv\"]\nsubscriptions = false\n[apps.\"/usr/bin/game\"]\n";
        let p = PolicyFile::parse(text, Path::new("p.toml")).unwrap();
        assert!(!p.apps["/usr/bin/tv"].subscriptions);
        assert!(p.apps["/usr/bin/game"].subscriptions);
        assert!(AppRule::default().subscriptions);
        // Its one-off payments go on.
        assert!(p.decide("/usr/bin/tv", "", hkd(100), 0).is_ok());
        // Written back only where it is not the default.
        let toml = p.to_toml().unwrap();
        assert_eq!(toml.matches("subscriptions = false").count(), 1, "{toml}");
        assert!(!toml.contains("subscriptions = true"), "{toml}");
        assert_eq!(PolicyFile::parse(&toml, Path::new("p.toml")).unwrap(), p);
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
    fn which_wallets_an_app_may_charge() {
        let p = PolicyFile::parse(FILE, Path::new("policy.toml")).unwrap();
        assert!(p.may_charge("/usr/bin/game", None, "ALIPAY_HK"));
        assert!(p.may_charge("/usr/bin/game", None, "alipay_hk"));
        assert!(!p.may_charge("/usr/bin/game", None, "GCASH"));
        assert!(p.may_charge("/usr/bin/kids", None, "GCASH"));
        assert!(!p.may_charge("/usr/bin/banned", None, "ALIPAY_HK"));
        // Not listed: unknown_apps = "deny" shows nothing, unless the user consented.
        assert!(!p.may_charge("/usr/bin/new", None, "ALIPAY_HK"));
        let consent = AppRule {
            wallets: Some(vec!["ALIPAY_HK".into()]),
            ..AppRule::default()
        };
        assert!(p.may_charge("/usr/bin/new", Some(&consent), "ALIPAY_HK"));
        assert!(!p.may_charge("/usr/bin/new", Some(&consent), "GCASH"));
        // The policy's own rule comes before a consent.
        assert!(!p.may_charge("/usr/bin/banned", Some(&consent), "ALIPAY_HK"));
        for (unknown, may) in [("allow", true), ("ask", true), ("deny", false)] {
            let p = PolicyFile::parse(
                &format!("unknown_apps = \"{unknown}\"\n"),
                Path::new("p.toml"),
            )
            .unwrap();
            assert_eq!(
                p.may_charge("/usr/bin/new", None, "ALIPAY_HK"),
                may,
                "{unknown}"
            );
        }
    }

    #[test]
    fn rules_caps_and_budgets() {
        let p = PolicyFile::parse(FILE, Path::new("policy.toml")).unwrap();
        let now = 1_790_000_000; // 2026-09-21T...
        let d = p
            .decide("/usr/bin/game", "ALIPAY_HK", hkd(4900), now)
            .unwrap();
        assert_eq!((d.prompt.clone(), d.step_up), (None, false));
        let b = d.budgets;
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|b| b.per_app));
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
        assert_eq!(
            p.decide("/usr/bin/kids", "ALIPAY_HK", hkd(100), now)
                .unwrap()
                .prompt,
            Some(Prompt::Confirm)
        );
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
        assert_eq!(
            open.decide("/x", "ALIPAY_HK", hkd(1), now).unwrap(),
            Decision::default()
        );
    }

    #[test]
    fn consent_profiles_and_step_up() {
        let p = PolicyFile::parse(
            r#"
unknown_apps = "ask"
active_profile = "kids"
[consent.limits.HKD]
daily = 10000
[apps."/usr/bin/game"]
above_cap = "order-code"
confirm = true
[apps."/usr/bin/game".limits.HKD]
per_payment = 1000
[profiles.kids]
kid = true
[profiles.kids.limits.HKD]
per_payment = 5000
daily = 20000
[profiles.adults]
"#,
            Path::new("policy.toml"),
        )
        .unwrap();
        let now = 1_790_000_000;
        // The kid's parent is asked before anything else; the profile budget spans apps.
        let d = p
            .decide("/usr/bin/new", "ALIPAY_HK", hkd(100), now)
            .unwrap();
        assert_eq!(d.prompt, Some(Prompt::ParentApproval));
        assert_eq!(d.budgets.len(), 1);
        assert!(!d.budgets[0].per_app);
        // Above the app's cap: an order code (still the parent's approval first).
        let d = p
            .decide("/usr/bin/game", "ALIPAY_HK", hkd(2000), now)
            .unwrap();
        assert!(d.step_up);
        assert_eq!(d.prompt, Some(Prompt::ParentApproval));
        // Above the profile's cap: refused.
        assert!(matches!(
            p.decide("/usr/bin/game", "ALIPAY_HK", hkd(5001), now),
            Err(Wire::AboveLimit(_))
        ));
        // No profile: consent for the unknown, confirm without step-up under the cap,
        // and a step-up needs no TV confirmation (the phone confirms).
        let mut adult = p.clone();
        adult.active_profile = None;
        let d = adult
            .decide("/usr/bin/new", "ALIPAY_HK", hkd(100), now)
            .unwrap();
        assert_eq!(d.prompt, Some(Prompt::Consent));
        assert_eq!(
            adult.consent_limits(Currency::HKD).unwrap().daily,
            Some(10000)
        );
        let d = adult
            .decide("/usr/bin/game", "ALIPAY_HK", hkd(100), now)
            .unwrap();
        assert_eq!((d.prompt, d.step_up), (Some(Prompt::Confirm), false));
        let d = adult
            .decide("/usr/bin/game", "ALIPAY_HK", hkd(2000), now)
            .unwrap();
        assert_eq!((d.prompt, d.step_up), (None, true));
        // An unknown active profile is refused at parse time.
        let e = PolicyFile::parse("active_profile = \"x\"\n", Path::new("p.toml")).unwrap_err();
        assert!(e.contains("active_profile"), "{e}");
        let e = PolicyFile::parse("prompt_timeout_secs = 0\n", Path::new("p.toml")).unwrap_err();
        assert!(e.contains("prompt_timeout_secs"), "{e}");
        let e = PolicyFile::parse(
            "[[trusted_agents]]\nuid = 1\nexe = \"agent\"\n",
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(e.contains("trusted_agents[0].exe"), "{e}");
        let e = PolicyFile::parse("[profiles.k.limits.HKD]\ndaily = 0\n", Path::new("p.toml"))
            .unwrap_err();
        assert!(e.contains("profiles.k.limits.HKD.daily"), "{e}");
        // Round trip through TOML keeps everything.
        assert_eq!(
            PolicyFile::parse(&p.to_toml().unwrap(), Path::new("p.toml")).unwrap(),
            p
        );
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

    const ASKING: &str = r#"
unknown_apps = "ask"
[consent.limits.HKD]
daily = 20000
[apps."/usr/bin/banned"]
allow = false
"#;

    fn source(dir: &Path) -> (PathBuf, PathBuf, PolicySource) {
        let policy = dir.join("policy.toml");
        let consents = dir.join("state/consents.toml");
        std::fs::create_dir_all(consents.parent().unwrap()).unwrap();
        std::fs::write(&policy, ASKING).unwrap();
        let src = PolicySource::new(Some(policy.clone())).with_consents(Some(consents.clone()), 0);
        (policy, consents, src)
    }

    #[test]
    fn a_consent_is_one_users_for_one_app() {
        let dir = tempfile::tempdir().unwrap();
        let (policy, consents, src) = source(dir.path());
        let now = 1_790_000_000;
        let decide = |uid: u32, app: &str| {
            let granted = src.granted(uid, app).unwrap();
            src.current()
                .unwrap()
                .decide_with(app, granted.as_ref(), "ALIPAY_HK", hkd(100), now)
        };
        assert_eq!(
            decide(1001, "/usr/bin/game").unwrap().prompt,
            Some(Prompt::Consent)
        );
        let limits = src.current().unwrap().consent.limits;
        src.grant(1001, "/usr/bin/game", "ALIPAY_HK", limits.clone())
            .unwrap();

        // User 1001's game may charge now, with the consent's limits, per app.
        let d = decide(1001, "/usr/bin/game").unwrap();
        assert_eq!(d.prompt, None);
        assert_eq!(d.budgets.len(), 1);
        assert!(d.budgets[0].per_app && d.budgets[0].limit == 20000);
        // Only that wallet.
        let granted = src.granted(1001, "/usr/bin/game").unwrap();
        assert!(matches!(
            src.current().unwrap().decide_with(
                "/usr/bin/game",
                granted.as_ref(),
                "GCASH",
                hkd(100),
                now
            ),
            Err(Wire::NotAllowed(_))
        ));
        // Another user of the same binary is still asked; so is another app.
        assert_eq!(
            decide(1002, "/usr/bin/game").unwrap().prompt,
            Some(Prompt::Consent)
        );
        assert_eq!(
            decide(1001, "/usr/bin/other").unwrap().prompt,
            Some(Prompt::Consent)
        );
        // The root policy's own rule comes first: a consent cannot lift a ban.
        src.grant(1001, "/usr/bin/banned", "", BTreeMap::new())
            .unwrap();
        assert!(src.granted(1001, "/usr/bin/banned").unwrap().is_some());
        assert!(matches!(
            decide(1001, "/usr/bin/banned"),
            Err(Wire::NotAllowed(_))
        ));

        // The policy file is untouched; the consents file is the daemon's, 0600.
        assert_eq!(std::fs::read_to_string(&policy).unwrap(), ASKING);
        let text = std::fs::read_to_string(&consents).unwrap();
        let back = ConsentsFile::parse(&text, &consents).unwrap();
        assert_eq!(back.consents.len(), 2);
        assert_eq!(back.get(1001, "/usr/bin/game").unwrap().limits, limits);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&consents).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        // Granting again keeps the first answer.
        src.grant(1001, "/usr/bin/game", "", BTreeMap::new())
            .unwrap();
        let again = std::fs::read_to_string(&consents).unwrap();
        assert_eq!(again, text);
    }

    #[test]
    fn bad_consents_files_name_the_entry_and_refuse() {
        let origin = Path::new("consents.toml");
        let twice = "[[consent]]\nuid = 1\napp = \"/a\"\n[[consent]]\nuid = 1\napp = \"/a\"\n";
        for (text, needle) in [
            (twice, "consent[1]"),
            ("[[consent]]\nuid = 1\napp = \"\"\n", "consent[0].app"),
            ("[[consent]]\nuid = -1\napp = \"/a\"\n", "consents.toml"),
            (
                "[[consent]]\nuid = 1\napp = \"/a\"\nallow = true\n",
                "allow",
            ),
            (
                "[[consent]]\nuid = 1\napp = \"/a\"\n[consent.limits.HKD]\ndaily = 0\n",
                "consent[0].limits.HKD.daily",
            ),
        ] {
            let err = ConsentsFile::parse(text, origin).unwrap_err();
            assert!(err.contains(needle), "{err} does not name {needle}");
        }
        // An invalid file on disk refuses (fails closed), and is not overwritten.
        let dir = tempfile::tempdir().unwrap();
        let (_policy, consents, src) = source(dir.path());
        std::fs::write(&consents, twice).unwrap();
        assert!(src.granted(1, "/a").is_err());
        assert!(src.grant(2, "/b", "", BTreeMap::new()).is_err());
        assert_eq!(std::fs::read_to_string(&consents).unwrap(), twice);
    }

    #[test]
    fn without_a_consents_file_only_the_policy_owner_grants_into_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, ASKING).unwrap();
        let src = PolicySource::new(Some(policy.clone())).with_consents(None, 1000);
        // Another user's consent would become a rule for everyone: refused.
        let err = src
            .grant(1001, "/usr/bin/game", "", BTreeMap::new())
            .unwrap_err();
        assert!(err.contains("uid 1001"), "{err}");
        assert_eq!(std::fs::read_to_string(&policy).unwrap(), ASKING);
        // The session's own user: into its own policy file, as before.
        src.grant(1000, "/usr/bin/game", "ALIPAY_HK", BTreeMap::new())
            .unwrap();
        let p = src.current().unwrap();
        assert_eq!(
            p.apps["/usr/bin/game"].wallets.as_deref(),
            Some(&["ALIPAY_HK".to_owned()][..])
        );
        assert_eq!(src.granted(1000, "/usr/bin/game").unwrap(), None);
    }

    #[test]
    fn a_required_policy_that_is_missing_fails_closed_and_the_default_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let now = 1_790_000_000;
        // The session daemon's default path, not created yet: every app may pay.
        let open = PolicySource::new(Some(path.clone()));
        assert!(
            open.current()
                .unwrap()
                .decide("/a", "", hkd(1), now)
                .is_ok()
        );
        // Configured explicitly (or the system daemon's): refused, naming the file.
        let closed = PolicySource::new(Some(path.clone())).required(true);
        let e = closed.current().unwrap_err();
        assert!(
            e.contains("does not exist") && e.contains("policy.toml"),
            "{e}"
        );
        // Deleting it after it was read closes it again (no stale cache).
        std::fs::write(&path, "unknown_apps = \"allow\"\n").unwrap();
        assert!(closed.current().is_ok());
        std::fs::remove_file(&path).unwrap();
        assert!(closed.current().is_err());
        // The first change through the daemon starts from "ask", not "allow".
        closed
            .edit(|p| {
                p.apps.insert("/usr/bin/game".into(), AppRule::default());
                Ok(())
            })
            .unwrap();
        let p = closed.current().unwrap();
        assert_eq!(p.unknown_apps, Unknown::Ask);
        assert!(p.apps.contains_key("/usr/bin/game"));
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("# scanbind")
        );
    }

    #[test]
    fn changes_go_to_the_managed_file_which_then_is_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("etc-policy.toml");
        let managed = dir.path().join("state/policy.toml");
        std::fs::write(&base, ASKING).unwrap();
        let src = PolicySource::new(Some(base.clone()))
            .required(true)
            .with_managed(Some(managed.clone()), |_| Ok(()));
        assert_eq!(src.path(), Some(base.as_path()));
        // A failed change writes nothing.
        let e = src
            .edit(|_| Err::<(), _>(Wire::NotFound("no".into())))
            .unwrap_err();
        assert!(matches!(e, Wire::NotFound(_)));
        assert!(!managed.exists());
        src.edit(|p| {
            p.unknown_apps = Unknown::Deny;
            Ok(())
        })
        .unwrap();
        // The base is untouched; the managed copy has the base's rules and the change.
        assert_eq!(std::fs::read_to_string(&base).unwrap(), ASKING);
        assert_eq!(src.path(), Some(managed.as_path()));
        let p = src.current().unwrap();
        assert_eq!(p.unknown_apps, Unknown::Deny);
        assert!(!p.apps["/usr/bin/banned"].allow);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&managed).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        // An invalid managed file refuses payments and edits, but can be replaced.
        std::fs::write(&managed, "unknown_apps = 5\n").unwrap();
        assert!(src.current().is_err());
        assert!(matches!(src.edit(|_| Ok(())), Err(Wire::Internal(_))));
        src.replace(&PolicyFile::default()).unwrap();
        assert_eq!(src.current().unwrap(), PolicyFile::default());
    }
}
