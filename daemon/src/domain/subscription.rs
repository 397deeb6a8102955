//! Subscriptions (issue 27): an app's recurring charge on a bound wallet, which the
//! merchant server makes each period by itself (docs/server.md, "Subscriptions").
//!
//! The daemon keeps no record of its own: the server's subscription is the record, and
//! the `Subscription1` objects are views of it, refreshed from the answers to
//! `Subscribe`, `ListSubscriptions` and `Cancel` and from the server's `subscription.*`
//! events ([`changed`]). What the daemon decides is whether to subscribe at all
//! ([`subscribe`]), in this order: the arguments ([`check`]), the same subscription id
//! again (the existing subscription without a question, or `Duplicate` for other
//! terms), the binding and the wallet's limits, the link, the app's policy (its
//! refusal stands; the per-payment cap applies to the price of one period), and then
//! **always** the user's confirmation on the trusted display (a parent's PIN for a kid
//! profile), whatever the policy says. Only then are the binding's sealed tokens sent
//! to the server, which re-seals them as a grant for this subscription only (D33).
//!
//! A subscription's owner is the app (uid and app id) that subscribed: the server
//! keeps it under [`Owner::server_app_id`], lists, reads and cancels only by that app
//! id, and the daemon announces its changes to that app's connections only.

use scanbind_device_api::types::{
    Amount, IntroductoryOffer, SUBSCRIPTION_PERIODS, SubscribeRequest, Subscription, TRIAL_PERIODS,
};
use scanbind_ipc::BindingState;
use scanbind_ipc::types::Connectivity;
use scanbind_money::{MinorUnits, Money};
use zeroize::Zeroize as _;
use zvariant::OwnedObjectPath;

use super::error::Refusal;
use super::prompt::{self, PaymentPrompt};
use super::shared::Shared;
use super::validate::{MAX_DESCRIPTION, check_wallet_limits, validate_pay};
use crate::error::Error;
use crate::store::journal::Owner;
use crate::store::vault::SecretKind;
use crate::sync::lock;

/// The longest plan name (characters): the device API's.
pub(crate) const MAX_PLAN: usize = 128;

/// The longest app subscription id (bytes of printable ASCII): the device API's.
pub(crate) const MAX_SUBSCRIPTION_ID: usize = 64;

/// The most introductory periods: the device API's.
pub(crate) const MAX_INTRO_PERIODS: u32 = 12;

/// A `Subscribe` as the app asked for it (options parsed, not checked yet).
#[derive(Debug, Clone)]
pub(crate) struct SubscribeArgs {
    /// The app's own subscription id (`subscription-id`), if given.
    pub(crate) subscription_id: Option<String>,
    pub(crate) plan: String,
    pub(crate) amount_minor: i64,
    pub(crate) currency: String,
    pub(crate) period: String,
    pub(crate) description: Option<String>,
    pub(crate) trial: Option<String>,
    pub(crate) intro_amount_minor: Option<i64>,
    pub(crate) intro_periods: Option<u32>,
    /// The binding named by the app (`binding`), if any.
    pub(crate) binding: Option<OwnedObjectPath>,
}

/// A `Subscribe` whose arguments were checked.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) subscription_id: String,
    pub(crate) plan: String,
    pub(crate) amount: Money,
    pub(crate) period: String,
    pub(crate) description: Option<String>,
    pub(crate) trial: Option<String>,
    pub(crate) intro: Option<(Money, u32)>,
    pub(crate) binding: Option<OwnedObjectPath>,
}

/// Checks the arguments of `Subscribe` (nothing else is asked before this).
pub(crate) fn check(a: SubscribeArgs) -> Result<Checked, Refusal> {
    let Some(id) = a.subscription_id else {
        return Err(Refusal::InvalidArgument(
            "option subscription-id is required (the app's own id for this subscription)".into(),
        ));
    };
    if id.is_empty()
        || id.len() > MAX_SUBSCRIPTION_ID
        || !id.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return Err(Refusal::InvalidArgument(format!(
            "option subscription-id must be 1 to {MAX_SUBSCRIPTION_ID} printable ASCII \
             characters without spaces"
        )));
    }
    if a.plan.trim().is_empty() || a.plan.chars().count() > MAX_PLAN {
        return Err(Refusal::InvalidArgument(format!(
            "plan must be 1 to {MAX_PLAN} characters"
        )));
    }
    if !SUBSCRIPTION_PERIODS.contains(&a.period.as_str()) {
        return Err(Refusal::InvalidArgument(format!(
            "period must be one of {}, not {:?}",
            SUBSCRIPTION_PERIODS.join(", "),
            a.period
        )));
    }
    if let Some(t) = &a.trial
        && !TRIAL_PERIODS.contains(&t.as_str())
    {
        return Err(Refusal::InvalidArgument(format!(
            "option trial must be one of {}, not {t:?}",
            TRIAL_PERIODS.join(", ")
        )));
    }
    if let Some(d) = &a.description
        && (d.is_empty() || d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(Refusal::InvalidArgument(format!(
            "option description must be 1 to {MAX_DESCRIPTION} characters"
        )));
    }
    // The amount and currency as `Pay` checks them (the id and text are checked above).
    let amount = validate_pay("subscription", a.amount_minor, &a.currency, "subscription")?;
    let intro = match (a.intro_amount_minor, a.intro_periods) {
        (None, None) => None,
        (Some(minor), Some(periods)) => {
            if !(1..=MAX_INTRO_PERIODS).contains(&periods) {
                return Err(Refusal::InvalidArgument(format!(
                    "option intro-periods must be 1 to {MAX_INTRO_PERIODS}"
                )));
            }
            let m = MinorUnits::new(minor)
                .ok()
                .filter(|_| minor > 0)
                .ok_or_else(|| {
                    Refusal::InvalidAmount(format!(
                        "intro-amount-minor must be a positive number of minor units, not {minor}"
                    ))
                })?;
            if minor >= a.amount_minor {
                return Err(Refusal::InvalidArgument(
                    "the introductory price must be less than the full price".into(),
                ));
            }
            Some((Money::new(amount.currency(), m), periods))
        }
        _ => {
            return Err(Refusal::InvalidArgument(
                "an introductory offer takes both intro-amount-minor and intro-periods".into(),
            ));
        }
    };
    Ok(Checked {
        subscription_id: id,
        plan: a.plan,
        amount,
        period: a.period,
        description: a.description,
        trial: a.trial,
        intro,
        binding: a.binding,
    })
}

/// Whether the server's `s` has the terms of `c` (the same subscription id again).
fn same_terms(s: &Subscription, c: &Checked) -> bool {
    s.plan == c.plan
        && s.amount.value == c.amount.minor().get()
        && s.amount.currency == c.amount.currency().code()
        && s.period == c.period
        && s.trial == c.trial
        && s.introductory.as_ref().map(|i| (i.amount_minor, i.periods))
            == c.intro.map(|(m, n)| (m.minor().get(), n))
}

/// A server refusal in the app's terms: `Duplicate` for other terms under the same
/// id, `NotFound` for a subscription the server does not know for this app.
fn refusal(e: Error) -> Refusal {
    match e {
        Error::ServerRejected { status: 409, .. } => Refusal::Duplicate(format!(
            "{e}; the subscription id was used with other terms, nothing changed"
        )),
        Error::ServerRejected { status: 404, .. } => {
            Refusal::NotFound("no such subscription for this app".into())
        }
        other => Refusal::Failed(other),
    }
}

fn online(shared: &Shared) -> Result<(), Refusal> {
    if *lock(&shared.connectivity) == Connectivity::Online {
        Ok(())
    } else {
        Err(Refusal::Offline(
            "the merchant server is not reachable; nothing changed, retry later".into(),
        ))
    }
}

/// `Subscribe`: see the module docs. The server's subscription on success.
pub(crate) async fn subscribe(
    shared: &std::sync::Arc<Shared>,
    owner: &Owner,
    c: Checked,
) -> Result<Subscription, Refusal> {
    online(shared)?;
    let app_id = owner.server_app_id();
    // The same id again: the existing subscription, never a second confirmation.
    let existing = shared.link.subscriptions(&app_id).await.map_err(refusal)?;
    if let Some(s) = existing
        .into_iter()
        .find(|s| s.app_subscription_id == c.subscription_id)
    {
        if same_terms(&s, &c) {
            return Ok(s);
        }
        return Err(Refusal::Duplicate(format!(
            "subscription id {:?} was used with other terms; nothing changed",
            c.subscription_id
        )));
    }
    let (binding_id, wallet) = {
        let bindings = lock(&shared.bindings);
        let mut bound = bindings
            .iter()
            .filter(|(_, b)| b.state == BindingState::Bound)
            .filter(|(_, b)| c.binding.as_ref().is_none_or(|p| *p == b.path));
        match (bound.next(), bound.next()) {
            (Some((id, b)), None) => (id.clone(), b.wallet.clone()),
            (None, _) if c.binding.is_some() => {
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
    check_wallet_limits(&wallet, c.amount)?;
    if let Some((intro, _)) = c.intro {
        check_wallet_limits(&wallet, intro)?;
    }

    // The app's policy: its refusal stands (a denied app, a profile's or the app's
    // per-payment cap on the price of one period); whatever it says about prompts, the
    // user confirms a subscription (a parent, for a kid profile).
    let invalid = |e| Refusal::NotAllowed(format!("the payment policy is invalid: {e}"));
    let policy = shared.policy.current().map_err(invalid)?;
    let granted = shared
        .policy
        .granted(owner.uid, &owner.app_id)
        .map_err(invalid)?;
    // The policy's own rule for the app first, then the user's consent.
    if policy
        .apps
        .get(&owner.app_id)
        .or(granted.as_ref())
        .is_some_and(|rule| !rule.subscriptions)
    {
        return Err(Refusal::NotAllowed(format!(
            "the payment policy does not let {} start subscriptions",
            owner.app_id
        )));
    }
    let decision = policy
        .decide_with(
            &owner.app_id,
            granted.as_ref(),
            &wallet,
            c.amount,
            crate::link::unix_now(),
        )
        .map_err(Refusal::Policy)?;
    if decision.step_up {
        return Err(Refusal::AboveLimit(
            "one period of the subscription is above this app's per-payment cap; nothing \
             was charged"
                .into(),
        ));
    }
    let text = terms_text(&c, crate::link::unix_now());
    let p = PaymentPrompt {
        owner,
        wallet: &wallet,
        amount: c.amount,
        description: c.description.as_deref().unwrap_or(&c.plan),
    };
    if decision.prompt == Some(crate::policy::Prompt::ParentApproval) {
        let shown = format!("{} ({text})", p.description);
        let p = PaymentPrompt {
            description: &shown,
            ..p
        };
        prompt::ask(shared, &crate::policy::Prompt::ParentApproval, &p).await?;
    } else {
        confirm(shared, &p, &text).await?;
    }

    let tokens = shared
        .vault
        .read(&SecretKind::SealedTokens {
            binding_id: binding_id.clone(),
        })
        .await?
        .ok_or_else(|| {
            Refusal::NotBound(
                "the binding's tokens are not in the keyring: bind the wallet again".into(),
            )
        })?;
    let mut req = SubscribeRequest {
        app_id,
        app_subscription_id: c.subscription_id.clone(),
        binding_id,
        sealed_tokens: String::from_utf8_lossy(tokens.expose()).into_owned(),
        plan: c.plan.clone(),
        amount: Amount {
            currency: c.amount.currency().code().to_owned(),
            value: c.amount.minor().get(),
        },
        period: c.period.clone(),
        trial: c.trial.clone(),
        introductory: c.intro.map(|(m, periods)| IntroductoryOffer {
            amount_minor: m.minor().get(),
            periods,
        }),
    };
    drop(tokens);
    let result = shared.link.subscribe(&req).await;
    req.sealed_tokens.zeroize();
    let s = result.map_err(refusal)?;
    tracing::info!(
        app = %owner.app_id,
        uid = owner.uid,
        subscription = %s.subscription_id,
        state = s.status.as_str(),
        "subscribed"
    );
    Ok(s)
}

/// The user's confirmation of a subscription on the trusted display (kind `payment`),
/// within the app's prompt limits.
async fn confirm(
    shared: &std::sync::Arc<Shared>,
    p: &PaymentPrompt<'_>,
    terms: &str,
) -> Result<(), Refusal> {
    use scanbind_ipc::types::keys::agent as keys;
    let app = prompt::app_label(&p.owner.app_id).text();
    let message = format!(
        "{app} asks: {terms}. Paid from your {} wallet.",
        prompt::wallet_name(p.wallet)
    );
    let timeout = prompt::prompt_timeout(shared);
    let asked = async {
        let answer = shared
            .prompter
            .confirm(
                keys::KIND_PAYMENT,
                p.details(message, "Confirm the subscription"),
                timeout,
                "a subscription always needs the user's confirmation",
            )
            .await?;
        if answer.allowed {
            Ok(())
        } else {
            Err(Refusal::Denied(
                "the user declined the subscription; nothing was charged".into(),
            ))
        }
    };
    prompt::limited(shared, p.owner, asked).await
}

/// "a month", "every 3 months", ...: how often a period recurs.
fn period_text(period: &str) -> &'static str {
    match period {
        "P1W" => "a week",
        "P1M" => "a month",
        "P3M" => "every 3 months",
        "P6M" => "every 6 months",
        "P1Y" => "a year",
        _ => "a period",
    }
}

/// How long a trial lasts, in words, and in days.
fn trial_text(trial: &str) -> (&'static str, i64) {
    match trial {
        "P3D" => ("3 days", 3),
        "P1W" => ("a week", 7),
        "P2W" => ("2 weeks", 14),
        "P1M" => ("a month", 30),
        _ => ("a while", 0),
    }
}

/// "1st", "2nd", "23rd", ...
fn ordinal(n: u8) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The terms as the user reads them: "Subscribe to Sofa TV Premium for HKD 68.00 a
/// month, first charge today, renews on the 7th, cancel any time" (`now`: Unix
/// seconds, the day of the first charge without a trial).
pub(crate) fn terms_text(c: &Checked, now: i64) -> String {
    let plan = prompt::display_text(&c.plan);
    let every = period_text(&c.period);
    let price = match c.intro {
        Some((intro, n)) => format!(
            "{intro} {every} for the first {n} period{}, then {} {every}",
            if n == 1 { "" } else { "s" },
            c.amount
        ),
        None => format!("{} {every}", c.amount),
    };
    let (first, first_day) = match &c.trial {
        Some(t) => {
            let (words, days) = trial_text(t);
            (
                format!("free for {words}, first charge after the trial"),
                now + days * 86_400,
            )
        }
        None => ("first charge today".to_owned(), now),
    };
    let day = time::OffsetDateTime::from_unix_timestamp(first_day)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let renews = match c.period.as_str() {
        "P1W" => format!("renews every {}", day.weekday()),
        "P1Y" => format!("renews every year on {} {}", day.day(), day.month()),
        _ => format!("renews on the {}", ordinal(day.day())),
    };
    format!("Subscribe to {plan} for {price}, {first}, {renews}, cancel any time")
}

/// `ListSubscriptions`: the app's subscriptions, as the server knows them.
pub(crate) async fn list(shared: &Shared, owner: &Owner) -> Result<Vec<Subscription>, Refusal> {
    online(shared)?;
    shared
        .link
        .subscriptions(&owner.server_app_id())
        .await
        .map_err(refusal)
}

/// `Cancel`: cancels the app's subscription `subscription_id` (the server's id) at the
/// server; the subscription as it is now.
pub(crate) async fn cancel(
    shared: &Shared,
    owner: &Owner,
    subscription_id: &str,
) -> Result<Subscription, Refusal> {
    online(shared)?;
    let s = shared
        .link
        .cancel_subscription(subscription_id, &owner.server_app_id())
        .await
        .map_err(refusal)?;
    tracing::info!(app = %owner.app_id, uid = owner.uid, subscription = %s.subscription_id, "subscription cancelled");
    Ok(s)
}

/// Every app's subscriptions on this device (the device owner's `scanbindctl
/// subscriptions list`).
pub(crate) async fn list_all(shared: &Shared) -> Result<Vec<Subscription>, Refusal> {
    online(shared)?;
    shared.link.all_subscriptions().await.map_err(refusal)
}

/// Cancels any app's subscription (the device owner's decision): the subscription as
/// it is now, copied to its objects (the server's `subscription.cancelled` event
/// tells the owning app).
pub(crate) async fn cancel_any(
    shared: &Shared,
    subscription_id: &str,
) -> Result<Subscription, Refusal> {
    let s = list_all(shared)
        .await?
        .into_iter()
        .find(|s| s.subscription_id == subscription_id)
        .ok_or_else(|| {
            Refusal::NotFound(format!(
                "no subscription {subscription_id:?} on this device"
            ))
        })?;
    let owner = Owner::from_server_app_id(&s.app_id);
    let s = cancel(shared, &owner, subscription_id).await?;
    shared.publisher.subscription_changed(&s, None).await?;
    Ok(s)
}

/// A `subscription.*` event from the server: announced to the owning app
/// (`event`: a key of `scanbind_ipc::types::keys::subscription_changed`).
pub(crate) async fn changed(
    shared: &Shared,
    s: &Subscription,
    event: &'static str,
) -> crate::error::Result<()> {
    shared.publisher.subscription_changed(s, Some(event)).await
}

/// Unix seconds of an RFC 3339 time (0 when absent or unreadable).
pub(crate) fn unix_of(t: Option<&str>) -> i64 {
    t.and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    })
    .map_or(0, |t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SubscribeArgs {
        SubscribeArgs {
            subscription_id: Some("sofa-premium-1".into()),
            plan: "Sofa TV Premium".into(),
            amount_minor: 6800,
            currency: "HKD".into(),
            period: "P1M".into(),
            description: None,
            trial: None,
            intro_amount_minor: None,
            intro_periods: None,
            binding: None,
        }
    }

    #[test]
    fn bad_arguments_are_typed_refusals() {
        let bad = |f: fn(&mut SubscribeArgs)| {
            let mut a = args();
            f(&mut a);
            check(a).unwrap_err()
        };
        assert!(matches!(
            bad(|a| a.period = "P2M".into()),
            Refusal::InvalidArgument(_)
        ));
        assert!(matches!(
            bad(|a| a.trial = Some("P5D".into())),
            Refusal::InvalidArgument(_)
        ));
        assert!(matches!(
            bad(|a| a.subscription_id = None),
            Refusal::InvalidArgument(_)
        ));
        assert!(matches!(
            bad(|a| a.subscription_id = Some("has space".into())),
            Refusal::InvalidArgument(_)
        ));
        assert!(matches!(
            bad(|a| a.plan = String::new()),
            Refusal::InvalidArgument(_)
        ));
        assert!(matches!(
            bad(|a| a.amount_minor = 0),
            Refusal::InvalidAmount(_)
        ));
        assert!(matches!(
            bad(|a| a.currency = "XYZ".into()),
            Refusal::UnknownCurrency(_)
        ));
        assert!(matches!(
            bad(|a| a.intro_periods = Some(2)),
            Refusal::InvalidArgument(_)
        ));
        assert!(matches!(
            bad(|a| {
                a.intro_amount_minor = Some(6800);
                a.intro_periods = Some(2);
            }),
            Refusal::InvalidArgument(_)
        ));
        assert!(matches!(
            bad(|a| {
                a.intro_amount_minor = Some(100);
                a.intro_periods = Some(13);
            }),
            Refusal::InvalidArgument(_)
        ));
        assert!(check(args()).is_ok());
    }

    #[test]
    fn the_confirmation_states_price_period_first_charge_and_renewal_day() {
        // 2026-12-07, a Monday.
        let now = 1_796_601_600;
        let c = check(args()).unwrap();
        assert_eq!(
            terms_text(&c, now),
            "Subscribe to Sofa TV Premium for HKD 68.00 a month, first charge today, renews \
             on the 7th, cancel any time"
        );
        let mut a = args();
        a.period = "P1W".into();
        a.trial = Some("P1W".into());
        a.intro_amount_minor = Some(1000);
        a.intro_periods = Some(2);
        let text = terms_text(&check(a).unwrap(), now);
        assert!(text.contains("HKD 10.00 a week for the first 2 periods, then HKD 68.00 a week"));
        assert!(text.contains("free for a week"));
        assert!(text.contains("renews every Monday"), "{text}");
    }
}
