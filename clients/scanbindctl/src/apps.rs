//! `scanbindctl apps`: the per-app payment policy (`docs/policy.md`) from a terminal.
//! Reads and changes it through the daemon (`io.scanbind.Manager1`), which checks who
//! asks (polkit, root, the admin group, or the session's own user), checks the change
//! with its own parser and writes the file atomically; it applies at the next payment
//! (no restart). The file is rewritten from its parsed form, so comments are not kept.

use std::collections::HashMap;
use std::path::PathBuf;

use scanbind_client::Transport;
use scanbind_policy::{AboveCap, Limits};
use zvariant::Value;

use crate::exit;
use crate::output::Output;
use crate::policy_file::{self, LimitArgs, refused};

/// Options of `apps`.
#[derive(Debug, clap::Args)]
pub struct AppsArgs {
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

/// `apps ...`: checks the arguments, then asks the daemon.
pub async fn run(args: AppsArgs, transport: &Transport, out: Output) -> anyhow::Result<()> {
    // Arguments first: bad input is reported without the daemon.
    let change = Change::check(args.command)?;
    let list = matches!(change, Change::List);
    let (_client, manager) = policy_file::manager(transport).await?;
    change.send(&manager).await?;
    let (path, policy) = policy_file::current(&manager).await?;
    if !list {
        out.emit(&policy, || {
            println!("policy changed ({path}); the daemon applies it at the next payment");
        });
        return Ok(());
    }
    out.emit(&policy, || {
        println!("policy file: {path}");
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
    Ok(())
}

/// One checked `apps` request.
enum Change {
    List,
    Allow {
        app: String,
        wallets: Vec<String>,
        confirm: Option<bool>,
        above_cap: Option<String>,
    },
    Deny(String),
    Limit {
        app: String,
        currency: String,
        limits: Limits,
    },
    Unknown(String),
    Reset(String),
    Trust(u32, PathBuf),
    Untrust(u32, PathBuf),
}

impl Change {
    fn check(command: AppsCommand) -> anyhow::Result<Change> {
        Ok(match command {
            AppsCommand::List => Change::List,
            AppsCommand::Allow {
                app,
                wallets,
                confirm,
                no_confirm,
                above_cap,
            } => Change::Allow {
                app: app_id(&app)?.to_owned(),
                wallets: wallets.iter().map(|w| w.to_ascii_uppercase()).collect(),
                confirm: (confirm || no_confirm).then_some(confirm),
                above_cap,
            },
            AppsCommand::Deny { app } => Change::Deny(app_id(&app)?.to_owned()),
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
                let mut given = Limits::default();
                limits.apply(&code, &mut given)?;
                Change::Limit {
                    app: app_id(&app)?.to_owned(),
                    currency: code,
                    limits: given,
                }
            }
            AppsCommand::Unknown { mode } => Change::Unknown(mode),
            AppsCommand::Reset { app } => Change::Reset(app_id(&app)?.to_owned()),
            AppsCommand::TrustAgent { uid, exe } => Change::Trust(uid, agent_exe(exe)?),
            AppsCommand::UntrustAgent { uid, exe } => Change::Untrust(uid, exe),
        })
    }

    async fn send(self, m: &scanbind_client::ipc::proxy::Manager1Proxy<'_>) -> anyhow::Result<()> {
        let none = HashMap::new;
        let exe_text = |exe: &PathBuf| exe.to_string_lossy().into_owned();
        let result = match self {
            Change::List => Ok(()),
            Change::Allow {
                app,
                wallets,
                confirm,
                above_cap,
            } => {
                let mut options = HashMap::new();
                if let Some(c) = confirm {
                    options.insert("confirm", Value::from(c));
                }
                if let Some(a) = &above_cap {
                    options.insert("above-cap", Value::from(a.as_str()));
                }
                let wallets: Vec<&str> = wallets.iter().map(String::as_str).collect();
                m.allow_app(&app, &wallets, options).await
            }
            Change::Deny(app) => m.deny_app(&app, none()).await,
            Change::Limit {
                app,
                currency,
                limits,
            } => {
                m.set_limits(
                    "app",
                    &app,
                    &currency,
                    policy_file::limits_dict(&limits),
                    none(),
                )
                .await
            }
            Change::Unknown(mode) => m.set_unknown_apps(&mode, none()).await,
            Change::Reset(app) => m.remove_app(&app, none()).await,
            Change::Trust(uid, exe) => m.trust_agent(uid, &exe_text(&exe), none()).await,
            Change::Untrust(uid, exe) => m.untrust_agent(uid, &exe_text(&exe), none()).await,
        };
        result.map_err(refused)
    }
}
