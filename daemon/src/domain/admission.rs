//! Admission of a payment: everything `Pay` decides before the payment is recorded,
//! in this order: the same order again (the existing payment, or `Duplicate`), the
//! binding to charge, the wallet's limits, the link, the app's policy (refusals,
//! prompts on the display, the step-up to an order code), and then the journal
//! commit (fsync'd, with the budgets) before anything leaves the device.

use std::sync::Arc;

use scanbind_ipc::BindingState;
use scanbind_ipc::types::Connectivity;
use scanbind_money::{MinorUnits, Money};

use super::error::Refusal;
use zvariant::OwnedObjectPath;

use super::checkout::CheckoutSpec;
use super::prompt::{self, PaymentPrompt};
use super::shared::{Shared, crash_point};
use super::validate::check_wallet_limits;
use crate::error::Error;
use crate::store::journal::{Entry, NewPayment, Owner, Recorded};
use crate::sync::lock;

/// A `Pay` whose arguments and options were checked.
#[derive(Debug)]
pub(crate) struct PayRequest {
    /// Who pays: the caller's uid and app id.
    pub(crate) owner: Owner,
    pub(crate) order_id: String,
    pub(crate) amount: Money,
    pub(crate) description: String,
    /// The binding named by the app (`binding` option), if any.
    pub(crate) binding: Option<OwnedObjectPath>,
    /// Pay by scanning an order code (`order-code` option).
    pub(crate) order_code: bool,
    /// The line items as stored (JSON), if any.
    pub(crate) line_items: Option<String>,
    /// A combined checkout's parts, if any.
    pub(crate) checkout: Option<CheckoutSpec>,
}

/// What admission decided.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// The same order again (or a concurrent `Pay` of it): its payment, as it is.
    Existing(Entry),
    /// A new payment, recorded and marked `sent`: drive it
    /// ([`super::driver::spawn`]).
    New(Entry),
}

/// Admits (or refuses) a payment; see the module docs.
pub(crate) async fn admit(shared: &Arc<Shared>, req: PayRequest) -> Result<Admitted, Refusal> {
    let PayRequest {
        owner,
        order_id,
        amount,
        description,
        binding: chosen,
        mut order_code,
        line_items,
        checkout,
    } = req;
    let checkout_json = checkout.as_ref().map(|c| c.to_json()).transpose()?;

    // The same order again: the existing payment, whatever the link state.
    let (who, order) = (owner.clone(), order_id.clone());
    if let Some(existing) = shared.journal(move |j| j.find(&who, &order)).await? {
        if existing.amount != amount
            || existing.description != description
            || existing.line_items != line_items
            || existing.checkout != checkout_json
            // (An app's order stepped up to an order code is still the same order.)
            || (order_code && !existing.is_order_code)
        {
            return Err(Error::OrderConflict { order_id }.into());
        }
        return Ok(Admitted::Existing(existing));
    }

    if order_code && chosen.is_some() {
        return Err(Refusal::InvalidArgument(
            "order-code pays by scanning; it takes no binding".into(),
        ));
    }
    let mut wallet = String::new();
    let mut binding_id = if order_code {
        String::new()
    } else {
        let bindings = lock(&shared.bindings);
        let mut bound = bindings
            .iter()
            .filter(|(_, b)| b.state == BindingState::Bound)
            .filter(|(_, b)| chosen.as_ref().is_none_or(|c| *c == b.path));
        match (bound.next(), bound.next()) {
            (Some((id, b)), None) => {
                match &checkout {
                    // Each seller is paid by a payment of its own.
                    Some(spec) => {
                        for part in &spec.parts {
                            let minor = MinorUnits::new(part.amount_minor)
                                .map_err(|e| Refusal::InvalidAmount(format!("sellers: {e}")))?;
                            check_wallet_limits(&b.wallet, Money::new(amount.currency(), minor))?;
                        }
                    }
                    None => check_wallet_limits(&b.wallet, amount)?,
                }
                wallet = b.wallet.clone();
                id.clone()
            }
            (None, _) if chosen.is_some() => {
                return Err(Refusal::NotFound("no such bound binding".into()));
            }
            (None, _) => {
                return Err(Refusal::NotBound(
                    "no wallet is bound to this device: call StartBinding first".into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Refusal::InvalidArgument(
                    "several wallets are bound: name one with the binding option".into(),
                ));
            }
        }
    };
    if *lock(&shared.connectivity) != Connectivity::Online {
        return Err(Refusal::Offline(
            "the merchant server is not reachable; nothing was charged, retry later".into(),
        ));
    }

    // The app's policy: refusals and prompts here, budgets with the insert below.
    let decide = || -> Result<crate::policy::Decision, Refusal> {
        let invalid = |e| Refusal::NotAllowed(format!("the payment policy is invalid: {e}"));
        let policy = shared.policy.current().map_err(invalid)?;
        // The root policy's rule for the app first, then this user's consent for it.
        let granted = shared
            .policy
            .granted(owner.uid, &owner.app_id)
            .map_err(invalid)?;
        policy
            .decide_with(
                &owner.app_id,
                granted.as_ref(),
                &wallet,
                amount,
                crate::link::unix_now(),
            )
            .map_err(Refusal::Policy)
    };
    let mut decision = decide()?;
    if decision.step_up && checkout.is_some() {
        // One order code cannot pay several sellers.
        return Err(Refusal::AboveLimit(
            "the checkout is above this app's per-payment cap; a combined checkout is \
             not stepped up to an order code; nothing was charged"
                .into(),
        ));
    }
    if let Some(asked) = decision.prompt.take() {
        let shown = match &checkout {
            Some(spec) => format!("{description} (paid to {})", spec.sellers_text()),
            None => description.clone(),
        };
        let p = PaymentPrompt {
            owner: &owner,
            wallet: &wallet,
            amount,
            description: &shown,
        };
        prompt::ask(shared, &asked, &p).await?;
        if asked == crate::policy::Prompt::Consent {
            // Allowed now: the app's new rule (its limits) applies to this payment.
            decision = decide()?;
            decision.prompt = None;
        }
    }
    if decision.step_up {
        // Above the app's cap: the user pays this one on the phone.
        tracing::info!(app = %owner.app_id, uid = owner.uid, "above the cap: stepping up to an order code");
        order_code = true;
        binding_id = String::new();
    }
    let budgets = decision.budgets;

    crash_point("before-journal");
    // Committed (fsync'd) before anything leaves the device.
    let recorded = shared
        .journal(move |j| {
            let recorded = j.record(&NewPayment {
                owner: &owner,
                order_id: &order_id,
                amount,
                description: &description,
                binding: &binding_id,
                line_items: line_items.as_deref(),
                order_code,
                budgets: &budgets,
                checkout: checkout_json.as_deref(),
            })?;
            // Sent at once (by the driver): `sent` in the same hand-off to the journal.
            match recorded {
                Recorded::New(entry) => Ok(Recorded::New(j.mark_sent(entry.id)?)),
                other => Ok(other),
            }
        })
        .await?;
    match recorded {
        Recorded::OverBudget { budget, spent } => Err(Refusal::AboveLimit(format!(
            "the {} budget of {} for this app would be exceeded ({} spent); nothing was \
             charged",
            budget.period,
            crate::policy::money_text(budget.currency, budget.limit),
            crate::policy::money_text(budget.currency, spent),
        ))),
        Recorded::Existing(entry) => Ok(Admitted::Existing(entry)),
        Recorded::New(entry) => Ok(Admitted::New(entry)),
    }
}

#[cfg(test)]
mod tests;
