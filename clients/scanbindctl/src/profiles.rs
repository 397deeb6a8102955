//! `scanbindctl profiles`: who is in front of the TV (`docs/policy.md`, "Profiles and
//! the parent PIN"). Changes the policy through the daemon like `apps`
//! (`io.scanbind.Manager1`); the daemon applies it at the next payment. `set-pin` sets the parent PIN through the daemon (never in a file): only the
//! registered display agent may, so it registers as one for the call (a minimal agent
//! that refuses every prompt) and leaves again.

use std::collections::HashMap;

use scanbind_client::ipc::proxy::AgentManager1Proxy;
use scanbind_client::{Client, Transport};
use scanbind_policy::Limits;
use serde_json::json;
use zvariant::Value;

use crate::exit;
use crate::output::Output;
use crate::policy_file::{self, LimitArgs, refused};
use crate::tty;

/// Options of `profiles`.
#[derive(Debug, clap::Args)]
pub struct ProfilesArgs {
    #[command(subcommand)]
    command: ProfilesCommand,
}

/// `profiles` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ProfilesCommand {
    /// List the profiles and which one is active.
    List,
    /// Add a profile, or change one (options not given are kept).
    Add {
        /// The profile's name: 1 to 32 letters, digits, '-' or '_'.
        name: String,
        /// A kid profile: every charge waits for a parent's approval with the PIN on
        /// the display agent.
        #[arg(long, conflicts_with = "no_kid")]
        kid: bool,
        /// Not a kid profile.
        #[arg(long)]
        no_kid: bool,
        /// The currency of the limits below (ISO 4217), over all apps together while
        /// the profile is active.
        #[arg(long, value_name = "CURRENCY")]
        limit: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Remove a profile (not the active one).
    Remove {
        /// The profile's name.
        name: String,
    },
    /// Make a profile the active one.
    Use {
        /// The profile's name.
        name: String,
    },
    /// No active profile: only the app rules apply.
    None,
    /// Set the parent PIN (4 to 12 digits) that approves a kid profile's charges.
    ///
    /// The daemon keeps only a salted hash in the OS keyring; the PIN is never written
    /// to a file. Asks for the current PIN (Enter if none is set) and the new one twice,
    /// without echo on a terminal; otherwise reads the three lines from stdin.
    SetPin {
        /// Remove the PIN instead (asks only for the current one).
        #[arg(long)]
        remove: bool,
    },
}

fn profile_name(name: &str) -> anyhow::Result<&str> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(exit::usage(format!(
            "{name:?} is not a profile name (1 to 32 letters, digits, '-' or '_')"
        )));
    }
    Ok(name)
}

/// `profiles ...`: checks the arguments, then asks the daemon.
pub async fn run(args: ProfilesArgs, transport: &Transport, out: Output) -> anyhow::Result<()> {
    if let ProfilesCommand::SetPin { remove } = args.command {
        return set_pin(transport, remove, out).await;
    }
    // Arguments first: bad input is reported without the daemon.
    let list = matches!(args.command, ProfilesCommand::List);
    let limits = match &args.command {
        ProfilesCommand::Add { limit, limits, .. } => match limit {
            Some(currency) => {
                let code = policy_file::currency_code(currency)?;
                if limits.is_empty() {
                    return Err(exit::usage(
                        "--limit needs at least one of --per-payment, --daily, --monthly",
                    ));
                }
                let mut given = Limits::default();
                limits.apply(&code, &mut given)?;
                Some((code, given))
            }
            None if !limits.is_empty() => {
                return Err(exit::usage(
                    "--per-payment, --daily and --monthly need --limit CURRENCY",
                ));
            }
            None => None,
        },
        _ => None,
    };
    if let ProfilesCommand::Add { name, .. } = &args.command {
        profile_name(name)?;
    }
    let (_client, m) = policy_file::manager(transport).await?;
    let none = HashMap::new;
    let result = match &args.command {
        ProfilesCommand::List => Ok(()),
        ProfilesCommand::Add {
            name, kid, no_kid, ..
        } => {
            let mut options = HashMap::new();
            if *kid || *no_kid {
                options.insert("kid", Value::from(*kid));
            }
            match m.set_profile(name, options).await {
                Ok(()) => match &limits {
                    Some((code, l)) => {
                        m.set_limits("profile", name, code, policy_file::limits_dict(l), none())
                            .await
                    }
                    None => Ok(()),
                },
                Err(e) => Err(e),
            }
        }
        ProfilesCommand::Remove { name } => m.remove_profile(name, none()).await,
        ProfilesCommand::Use { name } => m.use_profile(name, none()).await,
        ProfilesCommand::None => m.use_profile("", none()).await,
        ProfilesCommand::SetPin { .. } => unreachable!("handled above"),
    };
    result.map_err(refused)?;
    let (path, policy) = policy_file::current(&m).await?;
    let doc = json!({
        "policy": path,
        "active": policy.active_profile,
        "profiles": policy.profiles,
    });
    if !list {
        out.emit(&doc, || {
            println!("policy changed ({path}); the daemon applies it at the next payment");
        });
        return Ok(());
    }
    out.emit(&doc, || {
        println!("policy file: {path}");
        println!(
            "active profile: {}",
            policy.active_profile.as_deref().unwrap_or("none")
        );
        if policy.profiles.is_empty() {
            println!("no profiles");
        }
        for (name, p) in &policy.profiles {
            let active = policy.active_profile.as_deref() == Some(name.as_str());
            println!(
                "{name}{}{}",
                if p.kid {
                    " · kid: each charge needs the parent PIN"
                } else {
                    ""
                },
                if active { " · active" } else { "" }
            );
            for (cur, l) in &p.limits {
                println!("  {cur}: {}", policy_file::limits_text(cur, l));
            }
        }
    });
    Ok(())
}

/// Reads one PIN line; the end of input is a usage error.
fn ask(prompt: &str) -> anyhow::Result<zeroize::Zeroizing<String>> {
    tty::read_line(prompt, true)?
        .ok_or_else(|| exit::usage("the input ended before the PIN was given; nothing changed"))
}

/// `profiles set-pin`.
async fn set_pin(transport: &Transport, remove: bool, out: Output) -> anyhow::Result<()> {
    // Reach the daemon before asking anything.
    let client = Client::connect(transport.clone()).await?;
    // Only to the daemon (issue 22 item 4): never the PINs to an impostor of its name.
    let manager =
        crate::agent::verified_manager(client.connection(), &crate::agent::daemon_guard())
            .await?
            .map_err(|why| exit::with_code(exit::REFUSED, why))?;
    let old = ask("Current parent PIN (press Enter if none is set): ")?;
    if !old.is_empty() && !tty::is_pin(&old) {
        return Err(exit::usage(
            "the current PIN is 4 to 12 digits (empty if none is set); nothing changed",
        ));
    }
    let new = if remove {
        zeroize::Zeroizing::new(String::new())
    } else {
        let new = ask("New parent PIN (4 to 12 digits): ")?;
        if !tty::is_pin(&new) {
            return Err(exit::usage(
                "a parent PIN is 4 to 12 digits; nothing changed",
            ));
        }
        let again = ask("The new PIN again: ")?;
        if *again != *new {
            return Err(exit::usage("the two new PINs differ; nothing changed"));
        }
        new
    };
    set_as_agent(client.connection(), &manager, &old, &new).await?;
    let state = if remove { "removed" } else { "set" };
    out.emit(&json!({ "parentPin": state }), || {
        println!("parent PIN {state}");
    });
    Ok(())
}

/// The display agent `set-pin` registers for its call: shows nothing and refuses every
/// prompt (a payment must be approved on the real agent).
struct PinSetter;

#[zbus::interface(name = "io.scanbind.Agent1")]
impl PinSetter {
    /// `Show(s request, s kind, a{sv} details)`: ignored.
    fn show(
        &self,
        _request: String,
        _kind: String,
        _details: HashMap<String, zvariant::OwnedValue>,
    ) {
    }

    /// `Dismiss(s request, s outcome)`: ignored.
    fn dismiss(&self, _request: String, _outcome: String) {}

    /// `Confirm(s request, s kind, a{sv} details)`: always refused.
    fn confirm(
        &self,
        _request: String,
        _kind: String,
        _details: HashMap<String, zvariant::OwnedValue>,
    ) -> (bool, HashMap<String, zvariant::OwnedValue>) {
        (false, HashMap::new())
    }
}

/// `SetParentPin` as the registered display agent: registers [`PinSetter`] (refused
/// with `Duplicate` while another agent, e.g. `scanbindctl agent`, is registered: stop
/// it first), calls, and unregisters whatever the outcome.
async fn set_as_agent(
    conn: &zbus::Connection,
    manager: &AgentManager1Proxy<'_>,
    old: &str,
    new: &str,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let path =
        zvariant::OwnedObjectPath::try_from(format!("/io/scanbind/ctl/pin{}", std::process::id()))
            .context("building the agent's object path")?;
    conn.object_server()
        .at(&path, PinSetter)
        .await
        .context("serving the display agent object")?;
    manager
        .register_agent(&path.as_ref(), HashMap::new())
        .await
        .map_err(scanbind_client::Error::from)
        .context(
            "registering as the display agent to set the PIN (only the registered agent \
             may; if another agent runs, stop it first)",
        )?;
    let result = manager
        .set_parent_pin(old, new, HashMap::new())
        .await
        .map_err(scanbind_client::Error::from);
    let _ = manager
        .unregister_agent(&path.as_ref(), HashMap::new())
        .await;
    Ok(result?)
}
