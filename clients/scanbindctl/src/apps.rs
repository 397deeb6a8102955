//! `scanbindctl apps`: the per-app payment policy (`docs/policy.md`) from a terminal.
//! Edits `policy.toml`; the daemon re-reads it at the next payment (no restart).
//! The file is rewritten from its parsed form, so comments are not kept.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use scanbindd::policy::{PolicyFile, Unknown};

use crate::commands::parse_amount;
use crate::exit;
use crate::output::Output;

/// Options of `apps`.
#[derive(Debug, clap::Args)]
pub struct AppsArgs {
    /// The policy file (default: the daemon's, $XDG_CONFIG_HOME/scanbind/policy.toml).
    #[arg(long, global = true, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(subcommand)]
    command: AppsCommand,
}

/// `apps` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AppsCommand {
    /// List the rules.
    List,
    /// Let an app charge (optionally only some wallets).
    Allow {
        /// The app id: executable path, flatpak:ID or snap:NAME.
        app: String,
        /// Only these wallets (repeat), e.g. --wallet ALIPAY_HK.
        #[arg(long = "wallet")]
        wallets: Vec<String>,
    },
    /// Forbid an app to charge.
    Deny {
        /// The app id.
        app: String,
    },
    /// Set an app's limits in one currency (amounts in major units, e.g. 100.00).
    Limit {
        /// The app id.
        app: String,
        /// The ISO 4217 currency.
        currency: String,
        /// The most per payment.
        #[arg(long)]
        per_payment: Option<String>,
        /// The most per UTC day.
        #[arg(long)]
        daily: Option<String>,
        /// The most per UTC month.
        #[arg(long)]
        monthly: Option<String>,
    },
    /// What to do with apps not listed: allow, deny or ask.
    Unknown {
        /// allow, deny or ask.
        #[arg(value_parser = ["allow", "deny", "ask"])]
        mode: String,
    },
    /// Remove an app's rule (it is then an unknown app).
    Reset {
        /// The app id.
        app: String,
    },
}

fn policy_path(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    explicit
        .or_else(|| scanbindd::settings::default_policy_path(false))
        .context("no policy file: pass --policy FILE (HOME and XDG_CONFIG_HOME are unset)")
}

fn load(path: &Path) -> anyhow::Result<PolicyFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => PolicyFile::parse(&text, path).map_err(exit::usage),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PolicyFile::default()),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

fn save(path: &Path, policy: &PolicyFile) -> anyhow::Result<()> {
    let text = policy.to_toml();
    // Checked by the daemon's own parser before it replaces the file.
    PolicyFile::parse(&text, path).map_err(|e| anyhow::anyhow!("internal: {e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

fn app_id(app: &str) -> anyhow::Result<&str> {
    if app.is_empty() || app.len() > 4096 || app.chars().any(char::is_control) {
        return Err(exit::usage(format!("{app:?} is not an app id")));
    }
    Ok(app)
}

/// `apps ...`.
pub fn run(args: AppsArgs, out: Output) -> anyhow::Result<()> {
    let path = policy_path(args.policy)?;
    let mut policy = load(&path)?;
    match args.command {
        AppsCommand::List => {
            out.emit(&policy, || {
                println!("policy file: {}", path.display());
                println!("unknown apps: {:?}", policy.unknown_apps);
                if policy.apps.is_empty() {
                    println!("no app rules");
                }
                for (app, rule) in &policy.apps {
                    let wallets = rule
                        .wallets
                        .as_ref()
                        .map_or("all wallets".to_owned(), |w| w.join(", "));
                    println!(
                        "{app}: {} · {wallets}{}",
                        if rule.allow { "allowed" } else { "denied" },
                        if rule.confirm {
                            " · confirm each charge"
                        } else {
                            ""
                        }
                    );
                    for (cur, l) in &rule.limits {
                        println!(
                            "  {cur}: per payment {:?} · daily {:?} · monthly {:?} (minor units)",
                            l.per_payment, l.daily, l.monthly
                        );
                    }
                }
            });
            return Ok(());
        }
        AppsCommand::Allow { app, wallets } => {
            let rule = policy.apps.entry(app_id(&app)?.to_owned()).or_default();
            rule.allow = true;
            rule.wallets = (!wallets.is_empty())
                .then(|| wallets.iter().map(|w| w.to_ascii_uppercase()).collect());
        }
        AppsCommand::Deny { app } => {
            policy
                .apps
                .entry(app_id(&app)?.to_owned())
                .or_default()
                .allow = false;
        }
        AppsCommand::Limit {
            app,
            currency,
            per_payment,
            daily,
            monthly,
        } => {
            let minor = |v: Option<String>| -> anyhow::Result<Option<i64>> {
                v.map(|v| parse_amount(&v, &currency).map(|m| m.minor().get()))
                    .transpose()
            };
            let (p, d, m) = (minor(per_payment)?, minor(daily)?, minor(monthly)?);
            if p.is_none() && d.is_none() && m.is_none() {
                return Err(exit::usage(
                    "give at least one of --per-payment, --daily, --monthly",
                ));
            }
            let rule = policy.apps.entry(app_id(&app)?.to_owned()).or_default();
            let limits = rule
                .limits
                .entry(currency.to_ascii_uppercase())
                .or_default();
            limits.per_payment = p.or(limits.per_payment);
            limits.daily = d.or(limits.daily);
            limits.monthly = m.or(limits.monthly);
        }
        AppsCommand::Unknown { mode } => {
            policy.unknown_apps = match mode.as_str() {
                "deny" => Unknown::Deny,
                "ask" => Unknown::Ask,
                _ => Unknown::Allow,
            };
        }
        AppsCommand::Reset { app } => {
            if policy.apps.remove(app_id(&app)?).is_none() {
                return Err(exit::usage(format!("{app} has no rule")));
            }
        }
    }
    save(&path, &policy)?;
    out.emit(&policy, || {
        println!(
            "{} updated; the daemon applies it at the next payment",
            path.display()
        );
    });
    Ok(())
}
