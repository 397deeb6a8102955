//! `scanbindctl apps`: the per-app payment policy (`docs/policy.md`) from a terminal.
//! Edits `policy.toml`; the daemon re-reads it at the next payment (no restart).
//! The file is rewritten from its parsed form, so comments are not kept.

use std::path::PathBuf;

use scanbind_policy::{AboveCap, TrustedAgent, Unknown};

use crate::exit;
use crate::output::Output;
use crate::policy_file::{self, LimitArgs};

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
    /// List the rules and the trusted display agents.
    List,
    /// Let an app charge (optionally only some wallets).
    Allow {
        /// The app id: executable path, flatpak:ID or snap:NAME.
        app: String,
        /// Only these wallets (repeat), e.g. --wallet ALIPAY_HK; all when none is given.
        #[arg(long = "wallet")]
        wallets: Vec<String>,
        /// Every charge needs the user's confirmation on the display agent.
        #[arg(long, conflicts_with = "no_confirm")]
        confirm: bool,
        /// Charges need no confirmation (the default).
        #[arg(long)]
        no_confirm: bool,
        /// What a payment above the per-payment cap does: refuse (AboveLimit, the
        /// default) or order-code (the user pays it by scanning on the phone).
        #[arg(long, value_name = "MODE", value_parser = ["refuse", "order-code"])]
        above_cap: Option<String>,
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
        #[command(flatten)]
        limits: LimitArgs,
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
    /// Trust a display agent besides the default ones (`scanbind-agent` and
    /// `scanbindctl` installed beside `scanbindd`, run by the daemon's user).
    TrustAgent {
        /// The user id it runs as.
        #[arg(long)]
        uid: u32,
        /// Its executable's absolute path.
        #[arg(long, value_name = "PATH")]
        exe: PathBuf,
    },
    /// Stop trusting a display agent added with `trust-agent`.
    UntrustAgent {
        /// The user id it runs as.
        #[arg(long)]
        uid: u32,
        /// Its executable's absolute path.
        #[arg(long, value_name = "PATH")]
        exe: PathBuf,
    },
}

fn app_id(app: &str) -> anyhow::Result<&str> {
    if app.is_empty() || app.len() > 4096 || app.chars().any(char::is_control) {
        return Err(exit::usage(format!("{app:?} is not an app id")));
    }
    Ok(app)
}

fn agent_exe(exe: PathBuf) -> anyhow::Result<PathBuf> {
    if !exe.is_absolute() || exe.to_string_lossy().chars().any(char::is_control) {
        return Err(exit::usage(format!(
            "--exe {} must be an absolute path",
            exe.display()
        )));
    }
    Ok(exe)
}

/// `apps ...`.
pub fn run(args: AppsArgs, out: Output) -> anyhow::Result<()> {
    let path = policy_file::path(args.policy)?;
    let mut policy = policy_file::load(&path)?;
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
                        "{app}: {} · {wallets}{}{}",
                        if rule.allow { "allowed" } else { "denied" },
                        if rule.confirm {
                            " · confirm each charge"
                        } else {
                            ""
                        },
                        if rule.above_cap == AboveCap::OrderCode {
                            " · above the cap: order code"
                        } else {
                            ""
                        }
                    );
                    for (cur, l) in &rule.limits {
                        println!("  {cur}: {}", policy_file::limits_text(cur, l));
                    }
                }
                for a in &policy.trusted_agents {
                    println!("trusted display agent: uid {} {}", a.uid, a.exe.display());
                }
            });
            return Ok(());
        }
        AppsCommand::Allow {
            app,
            wallets,
            confirm,
            no_confirm,
            above_cap,
        } => {
            let rule = policy.apps.entry(app_id(&app)?.to_owned()).or_default();
            rule.allow = true;
            rule.wallets = (!wallets.is_empty())
                .then(|| wallets.iter().map(|w| w.to_ascii_uppercase()).collect());
            if confirm || no_confirm {
                rule.confirm = confirm;
            }
            match above_cap.as_deref() {
                Some("order-code") => rule.above_cap = AboveCap::OrderCode,
                Some(_) => rule.above_cap = AboveCap::Refuse,
                None => {}
            }
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
            limits,
        } => {
            let code = policy_file::currency_code(&currency)?;
            if limits.is_empty() {
                return Err(exit::usage(
                    "give at least one of --per-payment, --daily, --monthly",
                ));
            }
            let mut merged = policy
                .apps
                .get(app_id(&app)?)
                .and_then(|r| r.limits.get(&code).copied())
                .unwrap_or_default();
            limits.apply(&code, &mut merged)?;
            let rule = policy.apps.entry(app).or_default();
            rule.limits.insert(code, merged);
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
        AppsCommand::TrustAgent { uid, exe } => {
            let agent = TrustedAgent {
                uid,
                exe: agent_exe(exe)?,
            };
            if !policy.trusted_agents.contains(&agent) {
                policy.trusted_agents.push(agent);
            }
        }
        AppsCommand::UntrustAgent { uid, exe } => {
            let before = policy.trusted_agents.len();
            policy
                .trusted_agents
                .retain(|a| !(a.uid == uid && a.exe == exe));
            if policy.trusted_agents.len() == before {
                return Err(exit::usage(format!(
                    "no trusted display agent uid {uid} {}",
                    exe.display()
                )));
            }
        }
    }
    policy_file::save(&path, &policy)?;
    out.emit(&policy, || {
        println!(
            "{} updated; the daemon applies it at the next payment",
            path.display()
        );
    });
    Ok(())
}
