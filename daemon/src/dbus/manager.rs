//! `io.scanbind.Manager1` at `/io/scanbind/Manager1`: the device owner's management
//! interface (issue 22, item 6). It reads and changes the payment policy (apps,
//! profiles, consent limits, trusted display agents) and unbinds wallets directly;
//! `scanbindctl apps` and `scanbindctl profiles` are its clients. Documented in
//! `docs/dbus-api.md`.
//!
//! ## Who may call it
//!
//! Every call is authorized before anything is read or changed ([`Access::authorize`]):
//!
//! 1. the caller is identified as for every call ([`caller::identify`]); a sandboxed
//!    app (Flatpak, snap) is always refused;
//! 2. uid 0 is allowed;
//! 3. where polkit runs on the daemon's bus (the system bus), polkit decides
//!    (`CheckAuthorization` for the caller's unique name and the method's action:
//!    `io.scanbind.read-policy`, `io.scanbind.manage-policy`, `io.scanbind.unbind`);
//! 4. otherwise a system daemon allows the members of its admin group
//!    (`admin_group`, default `scanbind-admin`), a session daemon its own user (who
//!    can edit the policy file anyway).
//!
//! Anyone else gets `NotAllowed`, with the reason in the daemon's log, and nothing
//! changes.
//!
//! ## Changes
//!
//! Arguments are checked here (typed errors, nothing written on any error); the
//! policy is then changed through [`crate::policy::PolicySource::edit`], which checks
//! the result with the same parser as every read and replaces the file atomically.
//! The file is written from its parsed form: comments are not kept.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use scanbind_ipc::Error as Wire;
use scanbind_ipc::names::{ACTION_MANAGE_POLICY, ACTION_READ_POLICY, ACTION_UNBIND};
use scanbind_money::Currency;
use zbus::message::Header;
use zbus::{Connection, interface};
use zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::caller::{self, Caller};
use super::options::no_options;
use super::polkit::{self, Verdict};
use crate::domain::shared::Shared;
use crate::domain::{binding, subscription};
use crate::policy::{AboveCap, AppRule, Limits, PolicyFile, Profile, TrustedAgent, Unknown};

/// The longest app id accepted (as the `Pay` caller's executable path can be).
const MAX_APP_ID: usize = 4096;

/// Who may manage this daemon when polkit does not decide.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// System mode: the admin group's members may manage; otherwise (session mode)
    /// the daemon's own user may.
    pub(crate) system: bool,
    /// The admin group (system mode; `None`: none, only uid 0).
    pub(crate) admin_group: Option<String>,
    /// The daemon's own uid.
    pub(crate) own_uid: u32,
}

impl Access {
    /// The caller of `hdr` if it may do `action`; otherwise `NotAllowed` (logged).
    pub(crate) async fn authorize(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        action: &str,
    ) -> Result<Caller, Wire> {
        let who = caller::identify(conn, hdr).await?;
        let refuse = |why: String| {
            tracing::warn!(uid = who.uid, app = %who.app_id, action, reason = %why, "management call refused");
            Wire::NotAllowed(format!("not authorized to {action}: {why}"))
        };
        if who.app_id.starts_with("flatpak:") || who.app_id.starts_with("snap:") {
            return Err(refuse("a sandboxed app never manages the daemon".into()));
        }
        if who.uid == 0 {
            return Ok(who);
        }
        let sender = hdr
            .sender()
            .filter(|_| conn.unique_name().is_some())
            .map(|s| s.to_string());
        if let Some(sender) = sender
            && polkit::runs(conn).await
        {
            return match polkit::check(conn, &sender, action).await {
                Ok(Verdict::Yes) => {
                    tracing::info!(
                        uid = who.uid,
                        action,
                        "management call authorized by polkit"
                    );
                    Ok(who)
                }
                Ok(Verdict::No) => Err(refuse("polkit did not authorize it".into())),
                Ok(Verdict::Challenge) => Err(refuse(
                    "polkit wants an administrator to authenticate, and no authentication \
                     agent answered (run it from a desktop session, or with pkttyagent)"
                        .into(),
                )),
                Err(e) => Err(refuse(format!("polkit could not be asked ({e})"))),
            };
        }
        if self.system {
            match &self.admin_group {
                Some(group) => match scanbind_ipc::accounts::uid_in_group(who.uid, group) {
                    Ok(true) => Ok(who),
                    Ok(false) => Err(refuse(format!(
                        "uid {} is neither root nor a member of group {group} (polkit does \
                         not run)",
                        who.uid
                    ))),
                    Err(e) => Err(refuse(format!("the group database is unreadable ({e})"))),
                },
                None => Err(refuse(format!(
                    "uid {} is not root, and no admin group is configured (polkit does not run)",
                    who.uid
                ))),
            }
        } else if who.uid == self.own_uid {
            Ok(who)
        } else {
            Err(refuse(format!(
                "uid {} is not this session daemon's user",
                who.uid
            )))
        }
    }
}

/// The `io.scanbind.Manager1` object.
#[derive(Debug)]
pub(crate) struct ManagerObj {
    pub(crate) shared: Arc<Shared>,
    pub(crate) access: Arc<Access>,
}

impl ManagerObj {
    /// Authorizes the caller for `action`, then applies `change` to the policy.
    async fn change(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        what: &str,
        change: impl FnOnce(&mut PolicyFile) -> Result<(), Wire>,
    ) -> Result<(), Wire> {
        self.shared.touch();
        let who = self
            .access
            .authorize(conn, hdr, ACTION_MANAGE_POLICY)
            .await?;
        self.shared.policy.edit(change)?;
        tracing::info!(uid = who.uid, app = %who.app_id, change = what, "payment policy changed");
        Ok(())
    }
}

fn bad(m: impl Into<String>) -> Wire {
    Wire::InvalidArgument(m.into())
}

/// An app id: 1 to 4096 bytes, no control characters.
fn app_id(app: &str) -> Result<&str, Wire> {
    if app.is_empty() || app.len() > MAX_APP_ID || app.chars().any(char::is_control) {
        return Err(bad(format!(
            "{:?} is not an app id (an executable path, flatpak:ID or snap:NAME)",
            app.chars().take(64).collect::<String>()
        )));
    }
    Ok(app)
}

/// A wallet name (`customerBelongsTo`): 1 to 64 ASCII letters, digits or `_`,
/// upper-cased.
fn wallet(w: &str) -> Result<String, Wire> {
    if w.is_empty() || w.len() > 64 || !w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(bad(format!("{w:?} is not a wallet name (e.g. ALIPAY_HK)")));
    }
    Ok(w.to_ascii_uppercase())
}

/// A profile name: 1 to 32 letters, digits, `-` or `_`.
fn profile_name(name: &str) -> Result<&str, Wire> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(bad(format!(
            "{name:?} is not a profile name (1 to 32 letters, digits, '-' or '_')"
        )));
    }
    Ok(name)
}

/// A known ISO 4217 code, upper-cased.
fn currency(code: &str) -> Result<String, Wire> {
    let code = code.to_ascii_uppercase();
    Currency::from_code(&code).map_err(|_| {
        Wire::UnknownCurrency(format!(
            "{code:?} is not an ISO 4217 currency code (e.g. HKD, PHP, IDR, KRW, MYR, THB, CNY)"
        ))
    })?;
    Ok(code)
}

/// `NotFound` for a profile that is not defined, naming those that are.
fn unknown_profile(name: &str, profiles: &std::collections::BTreeMap<String, Profile>) -> Wire {
    let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
    Wire::NotFound(if known.is_empty() {
        format!(
            "no profile {name:?}: there are no profiles (add one with SetProfile, \
             `scanbindctl profiles add NAME`)"
        )
    } else {
        format!("no profile {name:?} (profiles: {})", known.join(", "))
    })
}

/// Takes a boolean option.
fn take_bool(options: &mut HashMap<String, OwnedValue>, key: &str) -> Result<Option<bool>, Wire> {
    match options.remove(key) {
        None => Ok(None),
        Some(v) => match &*v {
            Value::Bool(b) => Ok(Some(*b)),
            _ => Err(bad(format!("option {key} must be a boolean (b)"))),
        },
    }
}

/// Takes a string option.
fn take_str(options: &mut HashMap<String, OwnedValue>, key: &str) -> Result<Option<String>, Wire> {
    match options.remove(key) {
        None => Ok(None),
        Some(v) => match &*v {
            Value::Str(s) => Ok(Some(s.to_string())),
            _ => Err(bad(format!("option {key} must be a string (s)"))),
        },
    }
}

/// Parses `SetLimits`' `a{sx}`: `per-payment`, `daily`, `monthly`, each more than zero.
fn limits(given: &HashMap<String, i64>) -> Result<Limits, Wire> {
    if given.is_empty() {
        return Err(bad("give at least one of per-payment, daily, monthly"));
    }
    let mut out = Limits::default();
    for (key, v) in given {
        if *v <= 0 {
            return Err(Wire::InvalidAmount(format!(
                "{key}: a limit must be more than zero minor units, not {v}"
            )));
        }
        match key.as_str() {
            "per-payment" => out.per_payment = Some(*v),
            "daily" => out.daily = Some(*v),
            "monthly" => out.monthly = Some(*v),
            other => {
                return Err(bad(format!(
                    "{other:?} is not a limit (per-payment, daily, monthly)"
                )));
            }
        }
    }
    Ok(out)
}

/// Merges the limits given into `into` (those not given are kept).
fn merge(into: &mut Limits, given: Limits) {
    into.per_payment = given.per_payment.or(into.per_payment);
    into.daily = given.daily.or(into.daily);
    into.monthly = given.monthly.or(into.monthly);
}

/// A policy change a Manager1 call asks for: its arguments are checked when it is
/// made (before the caller is authorized), the change is applied once the caller is.
type Change = Box<dyn FnOnce(&mut PolicyFile) -> Result<(), Wire> + Send>;

/// `AllowApp`'s arguments checked: the change.
fn allow_app(
    app: &str,
    wallets: &[String],
    mut options: HashMap<String, OwnedValue>,
) -> Result<Change, Wire> {
    let confirm = take_bool(&mut options, "confirm")?;
    let above_cap = match take_str(&mut options, "above-cap")?.as_deref() {
        None => None,
        Some("refuse") => Some(AboveCap::Refuse),
        Some("order-code") => Some(AboveCap::OrderCode),
        Some(other) => {
            return Err(bad(format!("above-cap {other:?}: refuse or order-code")));
        }
    };
    no_options("AllowApp", &options)?;
    let app = app_id(app)?.to_owned();
    if wallets.len() > 32 {
        return Err(bad("at most 32 wallets"));
    }
    let wallets = wallets
        .iter()
        .map(|w| wallet(w))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Box::new(move |p| {
        let rule = p.apps.entry(app).or_default();
        rule.allow = true;
        rule.wallets = (!wallets.is_empty()).then_some(wallets);
        if let Some(c) = confirm {
            rule.confirm = c;
        }
        if let Some(a) = above_cap {
            rule.above_cap = a;
        }
        Ok(())
    }))
}

/// `DenyApp`'s arguments checked: the change.
fn deny_app(app: &str, options: &HashMap<String, OwnedValue>) -> Result<Change, Wire> {
    no_options("DenyApp", options)?;
    let app = app_id(app)?.to_owned();
    Ok(Box::new(move |p| {
        p.apps.entry(app).or_default().allow = false;
        Ok(())
    }))
}

/// `RemoveApp`'s arguments checked: the change.
fn remove_app(app: &str, options: &HashMap<String, OwnedValue>) -> Result<Change, Wire> {
    no_options("RemoveApp", options)?;
    let app = app_id(app)?.to_owned();
    Ok(Box::new(move |p| {
        p.apps
            .remove(&app)
            .map(|_| ())
            .ok_or_else(|| Wire::NotFound(format!("{app} has no rule")))
    }))
}

/// `SetUnknownApps`' arguments checked: the change.
fn set_unknown_apps(mode: &str, options: &HashMap<String, OwnedValue>) -> Result<Change, Wire> {
    no_options("SetUnknownApps", options)?;
    let mode = match mode {
        "allow" => Unknown::Allow,
        "deny" => Unknown::Deny,
        "ask" => Unknown::Ask,
        other => return Err(bad(format!("{other:?}: allow, deny or ask"))),
    };
    Ok(Box::new(move |p| {
        p.unknown_apps = mode;
        Ok(())
    }))
}

/// `SetLimits`' arguments checked: the change.
fn set_limits(
    scope: String,
    name: String,
    currency: &str,
    limits: &HashMap<String, i64>,
    options: &HashMap<String, OwnedValue>,
) -> Result<Change, Wire> {
    no_options("SetLimits", options)?;
    let code = self::currency(currency)?;
    let given = self::limits(limits)?;
    match scope.as_str() {
        "app" => {
            app_id(&name)?;
        }
        "profile" => {
            profile_name(&name)?;
        }
        "consent" if name.is_empty() => {}
        "consent" => return Err(bad("the consent scope takes no name (give \"\")")),
        other => {
            return Err(bad(format!("scope {other:?}: app, profile or consent")));
        }
    }
    Ok(Box::new(move |p| {
        let table = match scope.as_str() {
            "app" => &mut p.apps.entry(name).or_insert_with(AppRule::default).limits,
            "profile" => match p.profiles.get_mut(&name) {
                Some(profile) => &mut profile.limits,
                None => return Err(unknown_profile(&name, &p.profiles)),
            },
            _ => &mut p.consent.limits,
        };
        merge(table.entry(code).or_default(), given);
        Ok(())
    }))
}

/// `SetProfile`'s arguments checked: the change.
fn set_profile(name: &str, mut options: HashMap<String, OwnedValue>) -> Result<Change, Wire> {
    let kid = take_bool(&mut options, "kid")?;
    no_options("SetProfile", &options)?;
    let name = profile_name(name)?.to_owned();
    Ok(Box::new(move |p| {
        let profile = p.profiles.entry(name).or_default();
        if let Some(k) = kid {
            profile.kid = k;
        }
        Ok(())
    }))
}

/// `RemoveProfile`'s arguments checked: the change.
fn remove_profile(name: String, options: &HashMap<String, OwnedValue>) -> Result<Change, Wire> {
    no_options("RemoveProfile", options)?;
    Ok(Box::new(move |p| {
        if p.active_profile.as_deref() == Some(name.as_str()) {
            return Err(bad(format!(
                "{name} is the active profile: switch first (UseProfile, `scanbindctl \
                 profiles use OTHER` or `scanbindctl profiles none`)"
            )));
        }
        if p.profiles.remove(&name).is_none() {
            return Err(unknown_profile(&name, &p.profiles));
        }
        Ok(())
    }))
}

/// `UseProfile`'s arguments checked: the change.
fn use_profile(name: String, options: &HashMap<String, OwnedValue>) -> Result<Change, Wire> {
    no_options("UseProfile", options)?;
    Ok(Box::new(move |p| {
        if name.is_empty() {
            p.active_profile = None;
            return Ok(());
        }
        if !p.profiles.contains_key(&name) {
            return Err(unknown_profile(&name, &p.profiles));
        }
        p.active_profile = Some(name);
        Ok(())
    }))
}

/// `TrustAgent`'s arguments checked: the change.
fn trust_agent(uid: u32, exe: &str, options: &HashMap<String, OwnedValue>) -> Result<Change, Wire> {
    no_options("TrustAgent", options)?;
    let exe = agent_exe(exe)?;
    Ok(Box::new(move |p| {
        let agent = TrustedAgent { uid, exe };
        if !p.trusted_agents.contains(&agent) {
            p.trusted_agents.push(agent);
        }
        Ok(())
    }))
}

/// `UntrustAgent`'s arguments checked: the change.
fn untrust_agent(
    uid: u32,
    exe: &str,
    options: &HashMap<String, OwnedValue>,
) -> Result<Change, Wire> {
    no_options("UntrustAgent", options)?;
    let exe = agent_exe(exe)?;
    Ok(Box::new(move |p| {
        let before = p.trusted_agents.len();
        p.trusted_agents.retain(|a| !(a.uid == uid && a.exe == exe));
        if p.trusted_agents.len() == before {
            return Err(Wire::NotFound(format!(
                "no trusted display agent uid {uid} {}",
                exe.display()
            )));
        }
        Ok(())
    }))
}

/// `SetPolicy`'s policy: at most 1 MiB of TOML that the policy parser accepts.
fn given_policy(policy: &str) -> Result<PolicyFile, Wire> {
    if policy.len() > 1 << 20 {
        return Err(bad("the policy is longer than 1 MiB"));
    }
    PolicyFile::parse(policy, std::path::Path::new("the policy given"))
        .map_err(Wire::InvalidArgument)
}

/// The Manager1 members [`apply_call`] knows, in the order of its `member` index.
pub(crate) const MEMBERS: &[&str] = &[
    "GetPolicy",
    "SetPolicy",
    "AllowApp",
    "DenyApp",
    "RemoveApp",
    "SetUnknownApps",
    "SetLimits",
    "SetProfile",
    "RemoveProfile",
    "UseProfile",
    "TrustAgent",
    "UntrustAgent",
    "Unbind",
];

/// A Manager1 call without the bus, for the fuzz targets (the `untrusted` module): `body`
/// (D-Bus wire format, little-endian) is decoded as the arguments of member
/// `MEMBERS[member]`, which are checked by the very functions the method uses, and the
/// change is applied to `policy` as the method applies it once the caller is
/// authorized (`Unbind` and `GetPolicy` only check their arguments). A body that does
/// not decode is `InvalidArgument` (the bus refuses such a call before the method).
pub(crate) fn apply_call(policy: &mut PolicyFile, member: usize, body: &[u8]) -> Result<(), Wire> {
    use zvariant::serialized::{Context, Data};
    type Options = HashMap<String, OwnedValue>;
    let data = Data::new(body, Context::new_dbus(zvariant::LE, 0));
    fn decode<'d, T: serde::Deserialize<'d> + zvariant::Type>(
        data: &'d Data<'d, 'd>,
    ) -> Result<T, Wire> {
        data.deserialize::<T>()
            .map(|(v, _)| v)
            .map_err(|e| bad(format!("the arguments do not decode: {e}")))
    }
    let change = match MEMBERS.get(member).copied() {
        Some("GetPolicy") => return no_options("GetPolicy", &decode::<Options>(&data)?),
        Some("SetPolicy") => {
            let (text, options) = decode::<(String, Options)>(&data)?;
            no_options("SetPolicy", &options)?;
            *policy = given_policy(&text)?;
            return Ok(());
        }
        Some("AllowApp") => {
            let (app, wallets, options) = decode::<(String, Vec<String>, Options)>(&data)?;
            allow_app(&app, &wallets, options)?
        }
        Some("DenyApp") => {
            let (app, options) = decode::<(String, Options)>(&data)?;
            deny_app(&app, &options)?
        }
        Some("RemoveApp") => {
            let (app, options) = decode::<(String, Options)>(&data)?;
            remove_app(&app, &options)?
        }
        Some("SetUnknownApps") => {
            let (mode, options) = decode::<(String, Options)>(&data)?;
            set_unknown_apps(&mode, &options)?
        }
        Some("SetLimits") => {
            let (scope, name, currency, limits, options) =
                decode::<(String, String, String, HashMap<String, i64>, Options)>(&data)?;
            set_limits(scope, name, &currency, &limits, &options)?
        }
        Some("SetProfile") => {
            let (name, options) = decode::<(String, Options)>(&data)?;
            set_profile(&name, options)?
        }
        Some("RemoveProfile") => {
            let (name, options) = decode::<(String, Options)>(&data)?;
            remove_profile(name, &options)?
        }
        Some("UseProfile") => {
            let (name, options) = decode::<(String, Options)>(&data)?;
            use_profile(name, &options)?
        }
        Some("TrustAgent") => {
            let (uid, exe, options) = decode::<(u32, String, Options)>(&data)?;
            trust_agent(uid, &exe, &options)?
        }
        Some("UntrustAgent") => {
            let (uid, exe, options) = decode::<(u32, String, Options)>(&data)?;
            untrust_agent(uid, &exe, &options)?
        }
        Some("Unbind") => {
            let (_binding, options) = decode::<(OwnedObjectPath, Options)>(&data)?;
            return no_options("Unbind", &options);
        }
        _ => return Err(bad(format!("Manager1 has no member {member}"))),
    };
    change(policy)
}

#[interface(name = "io.scanbind.Manager1")]
impl ManagerObj {
    /// `GetPolicy(a{sv} options) -> (s path, s policy)`: the file the policy is read
    /// from now and the policy as TOML (its parsed form; the defaults when the file
    /// does not exist yet).
    #[zbus(out_args("path", "policy"))]
    async fn get_policy(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String), Wire> {
        self.shared.touch();
        no_options("GetPolicy", &options)?;
        self.access
            .authorize(conn, &hdr, ACTION_READ_POLICY)
            .await?;
        let path = self
            .shared
            .policy
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let exists = self
            .shared
            .policy
            .path()
            .is_some_and(|p| std::fs::symlink_metadata(p).is_ok());
        let policy = match self.shared.policy.current() {
            Ok(p) => p,
            // Missing and required: what the first change would start from.
            Err(_) if !exists && !path.is_empty() => PolicyFile {
                unknown_apps: Unknown::Ask,
                ..PolicyFile::default()
            },
            Err(e) => {
                return Err(Wire::Internal(format!(
                    "the current policy cannot be read: {e} (fix the file, or replace it \
                     with SetPolicy)"
                )));
            }
        };
        Ok((path, policy.to_toml().map_err(Wire::Internal)?))
    }

    /// `SetPolicy(s policy, a{sv} options)`: replaces the whole policy with `policy`
    /// (TOML, checked like the file).
    async fn set_policy(
        &self,
        policy: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        self.shared.touch();
        no_options("SetPolicy", &options)?;
        let who = self
            .access
            .authorize(conn, &hdr, ACTION_MANAGE_POLICY)
            .await?;
        let parsed = given_policy(&policy)?;
        self.shared.policy.replace(&parsed)?;
        tracing::info!(uid = who.uid, app = %who.app_id, "payment policy replaced");
        Ok(())
    }

    /// `AllowApp(s app, as wallets, a{sv} options)`: lets `app` charge `wallets` (all
    /// when empty); options `confirm` (b) and `above-cap` (s: `refuse` or
    /// `order-code`), kept when not given.
    async fn allow_app(
        &self,
        app: String,
        wallets: Vec<String>,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = allow_app(&app, &wallets, options)?;
        self.change(conn, &hdr, "allow app", change).await
    }

    /// `DenyApp(s app, a{sv} options)`: forbids `app` to charge (its rule's other
    /// settings are kept).
    async fn deny_app(
        &self,
        app: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = deny_app(&app, &options)?;
        self.change(conn, &hdr, "deny app", change).await
    }

    /// `RemoveApp(s app, a{sv} options)`: removes `app`'s rule (it is then an unknown
    /// app); `NotFound` if it has none.
    async fn remove_app(
        &self,
        app: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = remove_app(&app, &options)?;
        self.change(conn, &hdr, "remove app", change).await
    }

    /// `SetUnknownApps(s mode, a{sv} options)`: what apps without a rule get: `allow`,
    /// `deny` or `ask`.
    async fn set_unknown_apps(
        &self,
        mode: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = set_unknown_apps(&mode, &options)?;
        self.change(conn, &hdr, "unknown apps", change).await
    }

    /// `SetLimits(s scope, s name, s currency, a{sx} limits, a{sv} options)`: merges
    /// `limits` (minor units, more than zero; keys `per-payment`, `daily`, `monthly`)
    /// into an app's rule (`app`; a rule is made if the app has none), a profile
    /// (`profile`, which must exist) or the first-use consent (`consent`, `name`
    /// empty).
    #[allow(clippy::too_many_arguments)]
    async fn set_limits(
        &self,
        scope: String,
        name: String,
        currency: String,
        limits: HashMap<String, i64>,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = set_limits(scope, name, &currency, &limits, &options)?;
        self.change(conn, &hdr, "limits", change).await
    }

    /// `SetProfile(s name, a{sv} options)`: adds a profile, or changes one; option
    /// `kid` (b), kept when not given.
    async fn set_profile(
        &self,
        name: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = set_profile(&name, options)?;
        self.change(conn, &hdr, "profile", change).await
    }

    /// `RemoveProfile(s name, a{sv} options)`: removes a profile; `NotFound` if there
    /// is none, `InvalidArgument` for the active one (switch first).
    async fn remove_profile(
        &self,
        name: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = remove_profile(name, &options)?;
        self.change(conn, &hdr, "remove profile", change).await
    }

    /// `UseProfile(s name, a{sv} options)`: makes `name` the active profile (it must
    /// exist); an empty name: no active profile.
    async fn use_profile(
        &self,
        name: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = use_profile(name, &options)?;
        self.change(conn, &hdr, "active profile", change).await
    }

    /// `TrustAgent(u uid, s exe, a{sv} options)`: trusts the display agent `exe` (an
    /// absolute path) run by `uid`, besides the default ones.
    async fn trust_agent(
        &self,
        uid: u32,
        exe: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = trust_agent(uid, &exe, &options)?;
        self.change(conn, &hdr, "trust agent", change).await
    }

    /// `UntrustAgent(u uid, s exe, a{sv} options)`: stops trusting a display agent
    /// added with `TrustAgent`; `NotFound` if it is not listed.
    async fn untrust_agent(
        &self,
        uid: u32,
        exe: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        let change = untrust_agent(uid, &exe, &options)?;
        self.change(conn, &hdr, "untrust agent", change).await
    }

    /// `ListSubscriptions(a{sv} options) -> a(susssxsssx) subscriptions`: every app's
    /// subscriptions on this device (read-policy action).
    #[zbus(out_args("subscriptions"))]
    async fn list_subscriptions(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<scanbind_ipc::SubscriptionSummary>, Wire> {
        self.shared.touch();
        no_options("ListSubscriptions", &options)?;
        self.access
            .authorize(conn, &hdr, ACTION_READ_POLICY)
            .await?;
        let subs = subscription::list_all(&self.shared).await?;
        Ok(subs
            .into_iter()
            .map(|s| {
                let owner = crate::store::journal::Owner::from_server_app_id(&s.app_id);
                scanbind_ipc::SubscriptionSummary {
                    current_period_end: subscription::unix_of(s.current_period_end.as_deref()),
                    subscription: s.subscription_id,
                    uid: owner.uid,
                    app_id: owner.app_id,
                    app_subscription_id: s.app_subscription_id,
                    plan: s.plan,
                    amount_minor: s.amount.value,
                    currency: s.amount.currency,
                    period: s.period,
                    state: s.status.as_str().to_owned(),
                }
            })
            .collect())
    }

    /// `CancelSubscription(s subscription, a{sv} options) -> s state`: cancels any
    /// app's subscription (the unbind action: it stops charges on the wallet).
    #[zbus(out_args("state"))]
    async fn cancel_subscription(
        &self,
        subscription: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, Wire> {
        self.shared.touch();
        no_options("CancelSubscription", &options)?;
        let who = self.access.authorize(conn, &hdr, ACTION_UNBIND).await?;
        let s = subscription::cancel_any(&self.shared, &subscription).await?;
        tracing::info!(uid = who.uid, subscription = %s.subscription_id, "subscription cancelled by a manager");
        Ok(s.status.as_str().to_owned())
    }

    /// `Unbind(o binding, a{sv} options)`: revokes a binding (or abandons a pending
    /// one) at once, without asking on the display: the device owner's decision.
    async fn unbind(
        &self,
        binding: OwnedObjectPath,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Wire> {
        self.shared.touch();
        no_options("Unbind", &options)?;
        let who = self.access.authorize(conn, &hdr, ACTION_UNBIND).await?;
        binding::unbind(&self.shared, &binding, &who.owner()).await?;
        tracing::info!(uid = who.uid, binding = %binding.as_str(), "binding unbound by a manager");
        Ok(())
    }
}

/// A display agent's executable: an absolute path without control characters.
fn agent_exe(exe: &str) -> Result<PathBuf, Wire> {
    let path = PathBuf::from(exe);
    if !path.is_absolute() || exe.len() > MAX_APP_ID || exe.chars().any(char::is_control) {
        return Err(bad(format!("{exe:?} must be an absolute path")));
    }
    Ok(path)
}
