//! The consents users gave, per (uid, app id): the daemon's own file.
//!
//! A system daemon cannot write root's policy file (`/etc/scanbind/policy.toml`), and
//! must not: a consent is one user's answer for one app, not a rule for the device. So
//! the answers to the first-use consent prompt go into a file the daemon owns
//! (`consents.toml` in its state directory, mode 0600, replaced atomically), keyed by
//! the caller's uid and app id: user A allowing `/usr/bin/game` lets user B's
//! `/usr/bin/game` charge only once B was asked too.
//!
//! ```toml
//! [[consent]]
//! uid = 1000
//! app = "/usr/bin/game"
//! wallets = ["ALIPAY_HK"]
//! [consent.limits.HKD]
//! daily = 20000
//! ```
//!
//! It is parsed as strictly as the policy: unknown keys, bad limits, an empty app id
//! or the same (uid, app) twice make it invalid, and an invalid file refuses the
//! payments that need it, with a message naming the file and the entry.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{AppRule, Limits, check_limits};

/// The whole consents file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConsentsFile {
    /// The consents given, oldest first.
    #[serde(default, rename = "consent", skip_serializing_if = "Vec::is_empty")]
    pub consents: Vec<Grant>,
}

/// One user's consent for one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The user who allowed it.
    pub uid: u32,
    /// The app id it was given to (`/usr/bin/game`, `flatpak:…`, `snap:…`).
    pub app: String,
    /// The wallets it may charge; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallets: Option<Vec<String>>,
    /// Limits per ISO 4217 currency code (the policy's `[consent]` limits when it was
    /// given).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Limits>,
}

impl Grant {
    /// The rule this consent gives the app, for this user.
    pub fn rule(&self) -> AppRule {
        AppRule {
            wallets: self.wallets.clone(),
            limits: self.limits.clone(),
            ..AppRule::default()
        }
    }
}

impl ConsentsFile {
    /// Parses and checks a consents file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<ConsentsFile, String> {
        let f: ConsentsFile =
            toml::from_str(text).map_err(|e| format!("{}: {}", origin.display(), e.message()))?;
        let at = |key: String| format!("{}: {key}", origin.display());
        let mut seen = std::collections::BTreeSet::new();
        for (i, g) in f.consents.iter().enumerate() {
            if g.app.is_empty() {
                return Err(at(format!("consent[{i}].app is empty")));
            }
            if !seen.insert((g.uid, g.app.as_str())) {
                return Err(at(format!(
                    "consent[{i}]: uid {} and app {:?} are given twice",
                    g.uid, g.app
                )));
            }
            check_limits(&g.limits, &format!("consent[{i}].limits")).map_err(at)?;
        }
        Ok(f)
    }

    /// The consent of `uid` for `app`, if given.
    pub fn get(&self, uid: u32, app: &str) -> Option<&Grant> {
        self.consents.iter().find(|g| g.uid == uid && g.app == app)
    }

    /// The file as TOML; an error (never an empty text, which would read back as no
    /// consents at all) if it cannot be written as TOML.
    pub fn to_toml(&self) -> Result<String, String> {
        let body = toml::to_string(self)
            .map_err(|e| format!("the consents cannot be written as TOML: {e}"))?;
        Ok(format!(
            "# Written by scanbindd: the consents users gave to apps, per uid and app \
             (docs/policy.md).\n{body}"
        ))
    }
}
