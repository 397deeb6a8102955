//! `scanbindctl subscriptions`: every app's subscriptions on this device, and cancelling
//! one, as the device owner (`io.scanbind.Manager1.ListSubscriptions` and
//! `CancelSubscription`, authorized like `apps` and `unbind`; docs/dbus-api.md).

use std::collections::HashMap;

use scanbind_client::Transport;
use serde_json::json;

use crate::exit;
use crate::output::Output;
use crate::policy_file::{manager, refused};

/// Options of `subscriptions`.
#[derive(Debug, clap::Args)]
pub struct SubscriptionsArgs {
    #[command(subcommand)]
    command: SubscriptionsCommand,
}

/// `subscriptions` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SubscriptionsCommand {
    /// List every app's subscriptions on this device (state, price, period end).
    List,
    /// Cancel a subscription: no more renewals; the app keeps access until the end of
    /// the period paid for.
    Cancel {
        /// The subscription's id, as `list` shows it (`sub_...`).
        id: String,
    },
}

/// Runs `subscriptions`.
pub async fn run(
    args: SubscriptionsArgs,
    transport: &Transport,
    out: Output,
) -> anyhow::Result<()> {
    match args.command {
        SubscriptionsCommand::List => {
            let (_client, m) = manager(transport).await?;
            let subs = m
                .list_subscriptions(HashMap::new())
                .await
                .map_err(refused)?;
            let rows: Vec<_> = subs
                .iter()
                .map(|s| {
                    json!({
                        "subscription": s.subscription, "uid": s.uid, "appId": s.app_id,
                        "appSubscriptionId": s.app_subscription_id, "plan": s.plan,
                        "amountMinor": s.amount_minor, "currency": s.currency,
                        "period": s.period, "state": s.state,
                        "currentPeriodEnd": s.current_period_end,
                    })
                })
                .collect();
            out.emit(&json!({ "subscriptions": rows }), || {
                if subs.is_empty() {
                    println!("no subscriptions");
                }
                for s in &subs {
                    println!(
                        "{}  {:<9}  {} {} per {}  {} (uid {}, {})  until {}",
                        s.subscription,
                        s.state,
                        s.currency,
                        s.amount_minor,
                        s.period,
                        s.plan,
                        s.uid,
                        s.app_id,
                        s.current_period_end
                    );
                }
            });
            Ok(())
        }
        SubscriptionsCommand::Cancel { id } => {
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                return Err(exit::usage(format!(
                    "subscription id {id:?} must be 1 to 64 printable ASCII characters"
                )));
            }
            let (_client, m) = manager(transport).await?;
            let state = m
                .cancel_subscription(&id, HashMap::new())
                .await
                .map_err(refused)?;
            out.emit(&json!({"subscription": id, "state": state}), || {
                println!("{id}: {state} (no more renewals; access until the period's end)");
            });
            Ok(())
        }
    }
}
