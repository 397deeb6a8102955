//! Subscriptions (issue 27): recurring charges the server makes itself, each period,
//! whether or not the device is on.
//!
//! **Custody.** At `POST /v1/subscriptions` the device sends the binding's sealed token
//! blob; the server opens it (checking it is this device's active binding) and re-seals
//! the tokens as a *grant* ([`Sealer::seal_grant`](crate::domain::seal::Sealer)): AEAD
//! under a key derived (HKDF) from the sealing key, bound to (binding, app, subscription).
//! The clear token exists only in memory while a charge is sent. The grant is deleted
//! when the subscription stops renewing (cancelled, expired, the binding unbound in the
//! wallet, revoked or expired). Decision D33 in `docs/decisions.md`.
//!
//! **Charges.** Period `k` runs from `anchor + k·period` (calendar months for `P1M`,
//! `P3M`, `P6M`, `P1Y`) to `anchor + (k+1)·period`; the anchor is the subscribe time, or
//! the end of the trial. Each charge is an ordinary agreement payment whose
//! `paymentRequestId` is derived from (subscription, period, attempt)
//! ([`crate::util::subscription_request_id`]); its row, its link in
//! `subscription_charges` and the subscription's `pending_payment_id` commit together
//! before the AMS call, conditional on the subscription's version, so a pass run twice,
//! by two replicas, or again after a crash charges a period once. A charge whose outcome
//! is unknown is finished by the payment engine; the next pass applies its result.
//!
//! **Failures.** A failed renewal enters `grace` (access continues) and is tried again
//! `subscriptions.retry_after_hours` after the period's end (default 24, 72, 144 hours),
//! each retry a new attempt (a new `paymentRequestId`: it only follows a final
//! failure); after the last one fails, `expired`. A failed first charge at subscribe
//! time ends the subscription at once (`expired`).
//!
//! **Time.** Periods are on the billing clock ([`billing_now`]): the system clock, or
//! with `subscriptions.clock = "sandbox"` the sandbox's (its offset read at every pass),
//! so tests renew months in one call. A pass ([`run_renewals`]) is run by the engine
//! (`subscriptions.automatic`) and by `POST /admin/v1/subscriptions/renewals`, which
//! answers when it is done; passes in one process take turns, and each subscription is
//! driven under a lease, as payments are.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use scanbind_ams::money::{Currency, Money};
use scanbind_ams::wallet::Wallet;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::limits::{
    MAX_APP_ID, MAX_APP_SUBSCRIPTION_ID, MAX_INTRODUCTORY_PERIODS, MAX_PLAN,
};
use scanbind_device_api::receipt::SubscriptionReceipt;
use scanbind_device_api::types::{
    Amount, Event, IntroductoryOffer, PaymentStatus, SUBSCRIPTION_PERIODS, SubscribeRequest,
    Subscription, SubscriptionCharge, SubscriptionStatus, TRIAL_PERIODS,
};
use serde::Serialize;
use tracing::{info, warn};

use crate::config::BillingClock;
use crate::domain::bindings::{device_binding, open_tokens};
use crate::domain::events::EventHub;
use crate::domain::payments::{load_payment, send_agreement_pay_at};
use crate::domain::seal::{GrantScope, TokenSet};
use crate::domain::{App, check_amount, check_text, plausible_id, scan_to_bind_wallet};
use crate::error::{Error, Result};
use crate::store::payments::NewPayment;
use crate::store::subscriptions::{ListFilter, SubscriptionRow};
use crate::store::{self, PaymentRow};
use crate::util::{new_id, now_ms, rfc3339};

/// How long a pass holds a subscription (real time); longer than one charge.
const LEASE_MS: i64 = 120_000;
/// The engine runs a pass at most this often (real time).
const ENGINE_PASS_EVERY_MS: i64 = 1_000;
/// How often a change is tried again when another writer changed the row first.
const SAVE_TRIES: usize = 8;

/// Per-process state of renewals: passes take turns, and the sandbox clock's client.
#[derive(Debug, Default)]
pub struct Renewals {
    turn: tokio::sync::Mutex<()>,
    http: OnceLock<Option<reqwest::Client>>,
    last_engine_pass: AtomicI64,
}

/// What one pass did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassSummary {
    /// The billing clock's time the pass ran at, RFC 3339.
    pub now: String,
    /// Subscriptions with something due.
    pub due: u32,
    /// Charges sent.
    pub charges: u32,
    /// Subscriptions another pass held (left to it).
    pub skipped: u32,
}

/// A billing period or trial length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Days(i64),
    Months(i64),
}

fn span(text: &str) -> Option<Span> {
    Some(match text {
        "P3D" => Span::Days(3),
        "P1W" => Span::Days(7),
        "P2W" => Span::Days(14),
        "P1M" => Span::Months(1),
        "P3M" => Span::Months(3),
        "P6M" => Span::Months(6),
        "P1Y" => Span::Months(12),
        _ => return None,
    })
}

/// `start` plus `times` spans: days exactly, months on the calendar (from `start` each
/// time, so the 31st stays the 31st where the month has one).
fn add_span(start: i64, s: Span, times: i64) -> i64 {
    match s {
        Span::Days(d) => start.saturating_add(d.saturating_mul(times).saturating_mul(86_400_000)),
        Span::Months(m) => {
            let Ok(t) =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(start) * 1_000_000)
            else {
                return i64::MAX;
            };
            let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month()) - 1) + m * times;
            let (Ok(year), Ok(month0)) = (
                i32::try_from(total.div_euclid(12)),
                u8::try_from(total.rem_euclid(12)),
            ) else {
                return i64::MAX;
            };
            let Ok(month) = time::Month::try_from(month0 + 1) else {
                return i64::MAX;
            };
            let day = t.day().min(month.length(year));
            time::Date::from_calendar_date(year, month, day)
                .map(|d| t.replace_date(d))
                .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
                .unwrap_or(i64::MAX)
        }
    }
}

/// The start of period `k` of `s` (the end of period `k - 1`).
fn period_start(s: &SubscriptionRow, k: i64) -> i64 {
    add_span(s.anchor, span(&s.period).unwrap_or(Span::Days(30)), k)
}

/// The price of period `k`.
fn price_of(s: &SubscriptionRow, k: i64) -> i64 {
    match s.intro_amount {
        Some(intro) if k < s.intro_periods => intro,
        _ => s.amount,
    }
}

/// The billing clock now, Unix ms: the system clock, or the sandbox's.
pub async fn billing_now(app: &App) -> Result<i64> {
    Ok(now_ms().saturating_add(clock_offset_ms(app).await?))
}

/// How far the billing clock is ahead of the system clock (0 unless
/// `subscriptions.clock = "sandbox"`).
async fn clock_offset_ms(app: &App) -> Result<i64> {
    if app.config.subscriptions.clock != BillingClock::Sandbox {
        return Ok(0);
    }
    let base = app.config.ams.base_url.as_deref().unwrap_or_default();
    let unreachable = |what: &str| {
        Error::api(
            ErrorCode::UpstreamUnavailable,
            format!("the sandbox clock: {what}"),
        )
    };
    let http = app
        .renewals
        .http
        .get_or_init(|| {
            scanbind_ams::client::http_client_builder(Vec::new())
                .ok()?
                .no_proxy()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| unreachable("no HTTP client"))?;
    let body = http
        .get(format!("{}/sandbox/v1/clock", base.trim_end_matches('/')))
        .send()
        .await
        .map_err(|_| unreachable("no answer"))?
        .bytes()
        .await
        .map_err(|_| unreachable("no answer"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| unreachable("not JSON"))?;
    let secs = v["offsetSeconds"]
        .as_i64()
        .ok_or_else(|| unreachable("no offsetSeconds"))?;
    Ok(secs.saturating_mul(1000))
}

/// Whether the app should grant access at billing time `now`.
fn entitled(s: &SubscriptionRow, now: i64) -> bool {
    match s.status {
        SubscriptionStatus::Trial | SubscriptionStatus::Active | SubscriptionStatus::Grace => true,
        SubscriptionStatus::Cancelled => s.period_end.is_some_and(|e| e > now),
        SubscriptionStatus::Pending | SubscriptionStatus::Expired => false,
    }
}

fn periods_paid(s: &SubscriptionRow) -> u32 {
    u32::try_from(s.periods_paid).unwrap_or(u32::MAX)
}

fn receipt(app: &App, s: &SubscriptionRow, now: i64) -> String {
    app.receipt_signer.sign_subscription(&SubscriptionReceipt {
        ver: 1,
        iss: app.ams.client_id().to_owned(),
        iat: now_ms() / 1000,
        device_id: s.device_id.clone(),
        app_id: s.app_id.clone(),
        app_subscription_id: s.app_subscription_id.clone(),
        subscription_id: s.subscription_id.clone(),
        plan: s.plan.clone(),
        period: s.period.clone(),
        amount: Amount {
            currency: s.currency.clone(),
            value: s.amount,
        },
        state: s.status.as_str().to_owned(),
        entitled: entitled(s, now),
        period_end: s.period_end.map(|e| e / 1000),
        periods_paid: periods_paid(s),
    })
}

/// The device view of a subscription with its charges, at billing time `now`.
pub fn view(
    s: &SubscriptionRow,
    charges: &[store::subscriptions::Charge],
    now: i64,
) -> Subscription {
    let next = s.next_charge_at.filter(|_| {
        s.status != SubscriptionStatus::Cancelled && s.status != SubscriptionStatus::Expired
    });
    Subscription {
        subscription_id: s.subscription_id.clone(),
        app_id: s.app_id.clone(),
        app_subscription_id: s.app_subscription_id.clone(),
        binding_id: s.binding_id.clone(),
        plan: s.plan.clone(),
        amount: Amount {
            currency: s.currency.clone(),
            value: s.amount,
        },
        period: s.period.clone(),
        trial: s.trial.clone(),
        introductory: s.intro_amount.map(|amount_minor| IntroductoryOffer {
            amount_minor,
            periods: u32::try_from(s.intro_periods).unwrap_or(0),
        }),
        status: s.status,
        entitled: entitled(s, now),
        current_period_end: s.period_end.map(rfc3339),
        periods_paid: periods_paid(s),
        next_charge_at: next.map(rfc3339),
        next_charge_amount: next.map(|_| Amount {
            currency: s.currency.clone(),
            value: price_of(s, s.charge_index),
        }),
        reason: s.reason.clone(),
        receipt: s.receipt.clone(),
        charges: charges
            .iter()
            .map(|(k, a, p)| SubscriptionCharge {
                period_index: u32::try_from(*k).unwrap_or(0),
                attempt: u32::try_from(*a).unwrap_or(0),
                payment_id: p.payment_id.clone(),
                payment_request_id: p.payment_request_id.clone(),
                amount: Amount {
                    currency: p.currency.clone(),
                    value: p.amount,
                },
                status: p.status,
                result_code: p.result_code.clone(),
                receipt: p.receipt.clone(),
            })
            .collect(),
        created_at: rfc3339(s.created_at),
        updated_at: rfc3339(s.updated_at),
    }
}

/// Loads a subscription.
pub async fn load(app: &App, subscription_id: &str) -> Result<Option<SubscriptionRow>> {
    Ok(store::subscriptions::load(&app.db, subscription_id).await?)
}

/// The view of a subscription by id (as it is now).
pub async fn load_view(app: &App, s: &SubscriptionRow) -> Result<Subscription> {
    let charges = store::subscriptions::charges(&app.db, &s.subscription_id).await?;
    Ok(view(s, &charges, billing_now_or_system(app).await))
}

async fn billing_now_or_system(app: &App) -> i64 {
    billing_now(app).await.unwrap_or_else(|_| now_ms())
}

fn not_found() -> Error {
    Error::api(ErrorCode::NotFound, "no such subscription on this device")
}

/// A subscription of `device_id` (of the app `app_id` when given: the daemon names the
/// calling app), or `not_found`, the same answer whether it does not exist or is another
/// device's or app's.
pub async fn device_subscription(
    app: &App,
    device_id: &str,
    app_id: Option<&str>,
    subscription_id: &str,
) -> Result<SubscriptionRow> {
    if !plausible_id(subscription_id) {
        return Err(not_found());
    }
    if let Some(a) = app_id {
        check_text("appId", a, MAX_APP_ID)?;
    }
    match load(app, subscription_id).await? {
        Some(s) if s.device_id == device_id && app_id.is_none_or(|a| a == s.app_id) => Ok(s),
        _ => Err(not_found()),
    }
}

/// `GET /v1/subscriptions`: the device's subscriptions, oldest first (`app_id`: one app).
pub async fn device_subscriptions(
    app: &App,
    device_id: &str,
    app_id: Option<&str>,
) -> Result<Vec<Subscription>> {
    if let Some(a) = app_id {
        check_text("appId", a, MAX_APP_ID)?;
    }
    let rows = store::subscriptions::list(
        &app.db,
        &ListFilter {
            device_id: Some(device_id),
            app_id,
            ..ListFilter::default()
        },
        1000,
    )
    .await?;
    let now = billing_now_or_system(app).await;
    let mut out = Vec::with_capacity(rows.len());
    for s in &rows {
        let charges = store::subscriptions::charges(&app.db, &s.subscription_id).await?;
        out.push(view(s, &charges, now));
    }
    Ok(out)
}

/// The wallet's minimum and per-transaction limit for `value` (the wallet's currency).
fn check_wallet_limits(wallet: &str, field: &str, value: i64) -> Result<()> {
    let Some(profile) = scanbind_ams::money::wallet::scan_to_bind(wallet) else {
        return Ok(());
    };
    if value < profile.min_amount.get() {
        return Err(Error::api(
            ErrorCode::AmountInvalid,
            format!(
                "{field}: {value} is below the {wallet} minimum of {} minor units",
                profile.min_amount.get()
            ),
        ));
    }
    if let Some(max) = profile.per_transaction_limit
        && value > max.get()
    {
        return Err(Error::api(
            ErrorCode::AmountInvalid,
            format!(
                "{field}: {value} is above the {wallet} per-payment limit of {} minor units",
                max.get()
            ),
        ));
    }
    Ok(())
}

/// Checks a request and returns (wallet, currency, money, fingerprint of the terms).
fn validate(
    req: &SubscribeRequest,
    wallet_text: &str,
) -> Result<(Wallet, Currency, Money, String)> {
    check_text("appId", &req.app_id, MAX_APP_ID)?;
    check_text(
        "appSubscriptionId",
        &req.app_subscription_id,
        MAX_APP_SUBSCRIPTION_ID,
    )?;
    check_text("plan", &req.plan, MAX_PLAN)?;
    if !SUBSCRIPTION_PERIODS.contains(&req.period.as_str()) {
        return Err(Error::api(
            ErrorCode::BadRequest,
            format!("period must be one of {}", SUBSCRIPTION_PERIODS.join(", ")),
        ));
    }
    if let Some(t) = &req.trial
        && !TRIAL_PERIODS.contains(&t.as_str())
    {
        return Err(Error::api(
            ErrorCode::BadRequest,
            format!("trial must be one of {}", TRIAL_PERIODS.join(", ")),
        ));
    }
    let (wallet, currency) = scan_to_bind_wallet(wallet_text)?;
    let money = check_amount(&req.amount, Some(currency))?;
    check_wallet_limits(wallet.as_str(), "amount", req.amount.value)?;
    if let Some(intro) = &req.introductory {
        if !(1..=MAX_INTRODUCTORY_PERIODS).contains(&intro.periods) {
            return Err(Error::api(
                ErrorCode::BadRequest,
                format!("introductory.periods must be 1 to {MAX_INTRODUCTORY_PERIODS}"),
            ));
        }
        let a = Amount {
            currency: req.amount.currency.clone(),
            value: intro.amount_minor,
        };
        check_amount(&a, Some(currency))?;
        if intro.amount_minor >= req.amount.value {
            return Err(Error::api(
                ErrorCode::AmountInvalid,
                "introductory.amountMinor must be less than the amount",
            ));
        }
        check_wallet_limits(
            wallet.as_str(),
            "introductory.amountMinor",
            intro.amount_minor,
        )?;
    }
    let intro = req
        .introductory
        .as_ref()
        .map(|i| format!("{}x{}", i.amount_minor, i.periods))
        .unwrap_or_default();
    let fingerprint = crate::util::fingerprint(&[
        &req.binding_id,
        &req.plan,
        currency.code(),
        &req.amount.value.to_string(),
        &req.period,
        req.trial.as_deref().unwrap_or(""),
        &intro,
    ]);
    Ok((wallet, currency, money, fingerprint))
}

/// `POST /v1/subscriptions`: the same (device, app, app subscription id) is always the
/// same subscription; with other terms, `idempotency_conflict` and nothing changes.
pub async fn subscribe(app: &App, device_id: &str, req: &SubscribeRequest) -> Result<Subscription> {
    let binding = device_binding(app, device_id, &req.binding_id).await?;
    let (wallet, currency, _money, fingerprint) = validate(req, &binding.wallet)?;
    let conflict = || {
        Error::api(
            ErrorCode::IdempotencyConflict,
            "this app subscription id was used before with other terms",
        )
    };
    if let Some(s) =
        store::subscriptions::by_app_id(&app.db, device_id, &req.app_id, &req.app_subscription_id)
            .await?
    {
        return if s.fingerprint == fingerprint {
            load_view(app, &s).await
        } else {
            Err(conflict())
        };
    }
    let tokens = open_tokens(app, &binding, &req.sealed_tokens).await?;
    let now = billing_now(app).await?;
    let subscription_id = new_id("sub");
    let grant = app.sealer.seal_grant(
        GrantScope {
            binding_id: &binding.binding_id,
            app_id: &req.app_id,
            subscription_id: &subscription_id,
        },
        &tokens,
    )?;
    let trial = req.trial.as_deref().and_then(span);
    let anchor = trial.map_or(now, |t| add_span(now, t, 1));
    let real_now = now_ms();
    let mut row = SubscriptionRow {
        subscription_id: subscription_id.clone(),
        device_id: device_id.to_owned(),
        app_id: req.app_id.clone(),
        app_subscription_id: req.app_subscription_id.clone(),
        binding_id: binding.binding_id.clone(),
        wallet: wallet.as_str().to_owned(),
        plan: req.plan.clone(),
        currency: currency.code().to_owned(),
        amount: req.amount.value,
        period: req.period.clone(),
        trial: req.trial.clone(),
        intro_amount: req.introductory.as_ref().map(|i| i.amount_minor),
        intro_periods: req
            .introductory
            .as_ref()
            .map_or(0, |i| i64::from(i.periods)),
        fingerprint,
        status: if trial.is_some() {
            SubscriptionStatus::Trial
        } else {
            SubscriptionStatus::Pending
        },
        anchor,
        period_end: trial.map(|_| anchor),
        periods_paid: 0,
        charge_index: 0,
        failures: 0,
        next_charge_at: Some(anchor),
        pending_payment_id: None,
        token_grant: Some(grant),
        reason: None,
        receipt: None,
        version: 0,
        created_at: real_now,
        updated_at: real_now,
    };
    row.receipt = Some(receipt(app, &row, now));
    let mut tx = app.db.begin_durable().await?;
    let inserted = store::subscriptions::insert(&mut tx, &row).await?;
    tx.commit().await?;
    if !inserted {
        // Another request with the same id won the race.
        let s = store::subscriptions::by_app_id(
            &app.db,
            device_id,
            &req.app_id,
            &req.app_subscription_id,
        )
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "subscription vanished"))?;
        return if s.fingerprint == row.fingerprint {
            load_view(app, &s).await
        } else {
            Err(conflict())
        };
    }
    info!(subscription = %subscription_id, status = row.status.as_str(), "subscribed");
    if trial.is_none() {
        // The first charge, now, with the tokens the device just sent.
        charge(app, &subscription_id, now, Some(tokens)).await?;
        settle(app, &subscription_id, now).await?;
    }
    let s = load(app, &subscription_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "subscription vanished"))?;
    load_view(app, &s).await
}

/// Writes `next` (read at `next.version`) with its receipt and `events` in one
/// transaction; false when another writer changed the row first.
async fn save_with_events(
    app: &App,
    next: &mut SubscriptionRow,
    now: i64,
    events: &[fn(Subscription) -> Event],
) -> Result<bool> {
    next.updated_at = now_ms();
    next.receipt = Some(receipt(app, next, now));
    let charges = store::subscriptions::charges(&app.db, &next.subscription_id).await?;
    let mut tx = app.db.begin_durable().await?;
    if !store::subscriptions::save(&mut tx, next).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    next.version += 1;
    if !events.is_empty() {
        let v = view(next, &charges, now);
        for make in events {
            EventHub::insert(&mut tx, &next.device_id, &make(v.clone())).await?;
        }
        EventHub::notify_in(&mut tx, &next.device_id).await?;
    }
    tx.commit().await?;
    if !events.is_empty() {
        app.hub.wake_local(&next.device_id);
    }
    Ok(true)
}

/// Starts the charge that is due for `subscription_id` at billing time `now`: records it,
/// then sends it. `tokens`: the clear tokens when the caller has them (subscribe);
/// otherwise the grant is opened. Does nothing when a charge is in flight or none is due.
/// Returns whether a charge was sent.
async fn charge(
    app: &App,
    subscription_id: &str,
    now: i64,
    tokens: Option<TokenSet>,
) -> Result<bool> {
    let Some(mut s) = load(app, subscription_id).await? else {
        return Ok(false);
    };
    let chargeable = matches!(
        s.status,
        SubscriptionStatus::Pending
            | SubscriptionStatus::Trial
            | SubscriptionStatus::Active
            | SubscriptionStatus::Grace
    );
    if !chargeable || s.pending_payment_id.is_some() || s.next_charge_at.is_none_or(|t| t > now) {
        return Ok(false);
    }
    let scope = GrantScope {
        binding_id: &s.binding_id,
        app_id: &s.app_id,
        subscription_id: &s.subscription_id,
    };
    let (tokens, reseal) = match tokens {
        Some(t) => (t, false),
        None => {
            let opened = s
                .token_grant
                .as_deref()
                .ok_or_else(|| Error::api(ErrorCode::TokenInvalid, "no token grant"))
                .and_then(|g| app.sealer.open_grant(scope, g));
            match opened {
                Ok(t) => t,
                Err(_) => {
                    // The grant no longer opens (its sealing key was removed): nothing can
                    // be charged any more.
                    warn!(subscription = %s.subscription_id, "the token grant does not open; expiring");
                    end(
                        app,
                        &s.subscription_id,
                        SubscriptionStatus::Expired,
                        "the token grant no longer opens (sealing key removed)",
                        now,
                    )
                    .await?;
                    return Ok(false);
                }
            }
        }
    };
    let binding_ok = store::bindings::load(&app.db, &s.binding_id)
        .await?
        .is_some_and(|b| b.status == store::BindingState::Active);
    if !binding_ok {
        end(
            app,
            &s.subscription_id,
            SubscriptionStatus::Cancelled,
            "the binding is no longer active",
            now,
        )
        .await?;
        return Ok(false);
    }
    if reseal {
        s.token_grant = Some(app.sealer.seal_grant(scope, &tokens)?);
    }
    let (k, attempt) = (s.charge_index, s.failures);
    let value = price_of(&s, k);
    let (wallet, currency) = scan_to_bind_wallet(&s.wallet)?;
    let money = Money::from_minor(currency, value)
        .map_err(|e| Error::api(ErrorCode::AmountInvalid, e.to_string()))?;
    let prid = crate::util::subscription_request_id(&s.subscription_id, k, attempt);
    let payment_id = new_id("pay");
    let order_id = format!("{}#{k}.{attempt}", s.subscription_id);
    let real_now = now_ms();
    let expires = real_now + app.config.payments.expiry_seconds * 1000;
    let grace = i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX);
    let mut tx = app.db.begin_durable().await?;
    let inserted = store::payments::insert_agreement(
        &mut tx,
        &NewPayment {
            payment_id: &payment_id,
            payment_request_id: &prid,
            device_id: &s.device_id,
            app_id: &s.app_id,
            app_order_id: &order_id,
            binding_id: Some(&s.binding_id),
            wallet: wallet.as_str(),
            currency: currency.code(),
            amount: value,
            description: &s.plan,
            expires_at: expires,
            next_action_at: real_now.saturating_add(grace),
            now: real_now,
        },
    )
    .await?;
    let linked = inserted
        && store::subscriptions::insert_charge(
            &mut tx,
            &payment_id,
            &s.subscription_id,
            k,
            attempt,
        )
        .await?;
    s.pending_payment_id = Some(payment_id.clone());
    s.updated_at = real_now;
    let claimed = linked && store::subscriptions::save(&mut tx, &s).await?;
    if !claimed {
        // Another pass (or replica) recorded this charge first.
        tx.rollback().await?;
        return Ok(false);
    }
    store::steps::insert_pay_sent(&mut tx, &payment_id, real_now).await?;
    tx.commit().await?;
    crate::util::crash_point("subscription-charge-recorded");
    info!(subscription = %s.subscription_id, period = k, attempt, payment = %payment_id, "charging");
    let p = PaymentRow {
        payment_id: payment_id.clone(),
        payment_request_id: prid,
        device_id: s.device_id.clone(),
        app_id: s.app_id.clone(),
        app_order_id: order_id,
        product: store::Product::Agreement,
        binding_id: Some(s.binding_id.clone()),
        wallet: wallet.as_str().to_owned(),
        code_value: None,
        currency: currency.code().to_owned(),
        amount: value,
        description: s.plan.clone(),
        status: PaymentStatus::Pending,
        stage: store::PaymentStage::Sending,
        result_code: None,
        result_message: None,
        ams_payment_id: None,
        refunded: 0,
        receipt: None,
        conversion: None,
        expires_at: expires,
        next_action_at: real_now.saturating_add(grace),
        attempts: 0,
        created_at: real_now,
        updated_at: real_now,
    };
    let offset = now - real_now;
    send_agreement_pay_at(app, &p, wallet, money, &tokens, None, None, offset).await?;
    Ok(true)
}

/// Applies the result of the charge in flight, if its payment is final: paid → the
/// period is paid (`active`, or still `cancelled`); failed → `grace` with the next retry,
/// or `expired` after the last one (a failed first charge at subscribe: `expired`).
pub async fn settle(app: &App, subscription_id: &str, now: i64) -> Result<()> {
    for _ in 0..SAVE_TRIES {
        let Some(s) = load(app, subscription_id).await? else {
            return Ok(());
        };
        let Some(pid) = s.pending_payment_id.clone() else {
            return Ok(());
        };
        let Some(p) = load_payment(app, &pid).await? else {
            return Ok(());
        };
        if p.status == PaymentStatus::Pending {
            return Ok(());
        }
        let mut n = s.clone();
        n.pending_payment_id = None;
        let k = s.charge_index;
        let mut events: Vec<fn(Subscription) -> Event> = Vec::new();
        if p.status == PaymentStatus::Succeeded {
            n.periods_paid += 1;
            n.charge_index = k + 1;
            n.failures = 0;
            let end = period_start(&s, k + 1);
            n.period_end = Some(s.period_end.map_or(end, |e| e.max(end)));
            if s.status != SubscriptionStatus::Cancelled && s.status != SubscriptionStatus::Expired
            {
                n.status = SubscriptionStatus::Active;
                n.next_charge_at = Some(end);
                n.reason = None;
            }
            events.push(Event::SubscriptionRenewed);
        } else {
            let code = p
                .result_code
                .clone()
                .unwrap_or_else(|| p.status.as_str().to_owned());
            match s.status {
                SubscriptionStatus::Pending => {
                    n.status = SubscriptionStatus::Expired;
                    n.next_charge_at = None;
                    n.token_grant = None;
                    n.reason = Some(format!("the first charge failed: {code}"));
                    events.push(Event::SubscriptionExpired);
                }
                SubscriptionStatus::Cancelled | SubscriptionStatus::Expired => {}
                _ => {
                    n.failures += 1;
                    events.push(Event::SubscriptionRenewalFailed);
                    let retries = &app.config.subscriptions.retry_after_hours;
                    match usize::try_from(n.failures - 1)
                        .ok()
                        .and_then(|i| retries.get(i))
                    {
                        Some(hours) => {
                            let h = i64::try_from(*hours).unwrap_or(24);
                            n.next_charge_at = Some(period_start(&s, k) + h * 3_600_000);
                            n.reason = Some(format!("renewal failed: {code}"));
                            if s.status != SubscriptionStatus::Grace {
                                n.status = SubscriptionStatus::Grace;
                                events.push(Event::SubscriptionGrace);
                            }
                        }
                        None => {
                            n.status = SubscriptionStatus::Expired;
                            n.next_charge_at = None;
                            n.token_grant = None;
                            n.reason =
                                Some(format!("renewal failed {} times, last: {code}", n.failures));
                            events.push(Event::SubscriptionExpired);
                        }
                    }
                }
            }
        }
        if save_with_events(app, &mut n, now, &events).await? {
            info!(subscription = %subscription_id, period = k, payment = %pid, status = n.status.as_str(), "charge settled");
            return Ok(());
        }
    }
    Err(Error::api(
        ErrorCode::Internal,
        "the subscription kept changing",
    ))
}

/// Ends renewals: `cancelled` (access until the period's end) or `expired`; deletes the
/// grant. Idempotent: a subscription already there (or expired) is left as it is.
/// Returns whether this call made the change.
pub async fn end(
    app: &App,
    subscription_id: &str,
    to: SubscriptionStatus,
    reason: &str,
    now: i64,
) -> Result<bool> {
    for _ in 0..SAVE_TRIES {
        let Some(s) = load(app, subscription_id).await? else {
            return Ok(false);
        };
        if s.status == SubscriptionStatus::Expired || s.status == to {
            return Ok(false);
        }
        let mut n = s.clone();
        n.status = to;
        n.next_charge_at = None;
        n.token_grant = None;
        if to == SubscriptionStatus::Cancelled || n.reason.is_none() {
            n.reason = Some(reason.to_owned());
        }
        let ev: fn(Subscription) -> Event = if to == SubscriptionStatus::Expired {
            Event::SubscriptionExpired
        } else {
            Event::SubscriptionCancelled
        };
        if save_with_events(app, &mut n, now, &[ev]).await? {
            info!(subscription = %subscription_id, status = to.as_str(), reason, "subscription ended");
            return Ok(true);
        }
    }
    Err(Error::api(
        ErrorCode::Internal,
        "the subscription kept changing",
    ))
}

/// `POST /v1/subscriptions/{id}/cancel`: no more charges; access until the period's end.
pub async fn cancel(
    app: &App,
    device_id: &str,
    app_id: Option<&str>,
    subscription_id: &str,
) -> Result<Subscription> {
    let s = device_subscription(app, device_id, app_id, subscription_id).await?;
    let now = billing_now_or_system(app).await;
    end(
        app,
        &s.subscription_id,
        SubscriptionStatus::Cancelled,
        "cancelled by the app",
        now,
    )
    .await?;
    let s = device_subscription(app, device_id, app_id, subscription_id).await?;
    load_view(app, &s).await
}

/// The binding `binding_id` ended (unbound in the wallet, revoked, expired): every
/// subscription it pays stops renewing at once (`cancelled`, access until the period's
/// end) and its grant is deleted.
pub async fn binding_ended(app: &App, binding_id: &str, reason: &str) -> Result<()> {
    let rows = store::subscriptions::list(
        &app.db,
        &ListFilter {
            binding_id: Some(binding_id),
            ..ListFilter::default()
        },
        10_000,
    )
    .await?;
    let now = billing_now_or_system(app).await;
    for s in rows {
        if matches!(
            s.status,
            SubscriptionStatus::Pending
                | SubscriptionStatus::Trial
                | SubscriptionStatus::Active
                | SubscriptionStatus::Grace
        ) {
            end(
                app,
                &s.subscription_id,
                SubscriptionStatus::Cancelled,
                reason,
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// The device refreshed the binding's tokens (`POST /v1/bindings/{id}/refresh`;
/// `blob` is the new device blob): every live subscription's grant is sealed again with
/// the new tokens, so renewals keep working past the old access token's expiry.
pub async fn binding_refreshed(
    app: &App,
    device_id: &str,
    binding_id: &str,
    blob: &str,
) -> Result<()> {
    let tokens = app.sealer.open(device_id, binding_id, blob)?;
    let rows = store::subscriptions::list(
        &app.db,
        &ListFilter {
            binding_id: Some(binding_id),
            ..ListFilter::default()
        },
        10_000,
    )
    .await?;
    let now = billing_now_or_system(app).await;
    for row in rows {
        for _ in 0..SAVE_TRIES {
            let Some(s) = load(app, &row.subscription_id).await? else {
                break;
            };
            if s.token_grant.is_none() || s.device_id != device_id {
                break;
            }
            let mut n = s.clone();
            n.token_grant = Some(app.sealer.seal_grant(
                GrantScope {
                    binding_id: &s.binding_id,
                    app_id: &s.app_id,
                    subscription_id: &s.subscription_id,
                },
                &tokens,
            )?);
            if save_with_events(app, &mut n, now, &[]).await? {
                info!(subscription = %s.subscription_id, "token grant sealed again after a refresh");
                break;
            }
        }
    }
    Ok(())
}

/// `TOKEN_CANCELED` (the user unbound in the wallet app): the binding ends
/// ([`bindings::token_canceled`](crate::domain::bindings::token_canceled)) and so do its
/// subscriptions' renewals. Both steps are idempotent, so a notification Alipay sends
/// again after a crash between them finishes the second.
pub async fn token_canceled(app: &App, access_token: &str, reason: Option<&str>) -> Result<()> {
    crate::domain::bindings::token_canceled(app, access_token, reason).await?;
    let fp = crate::domain::seal::token_fingerprint(access_token);
    if let Some(b) = store::bindings::by_token_fingerprint(&app.db, &fp).await? {
        binding_ended(
            app,
            &b.binding_id,
            "the wallet was unbound (TOKEN_CANCELED)",
        )
        .await?;
    }
    Ok(())
}

/// One renewal pass at the billing clock's now: settles charges whose payments are
/// final, charges what is due (one period per subscription per pass), expires cancelled
/// subscriptions whose paid time is over. Passes in this process take turns; each
/// subscription is driven under a lease.
pub async fn run_renewals(app: &App) -> Result<PassSummary> {
    let _turn = app.renewals.turn.lock().await;
    pass(app).await
}

/// The engine's pass: at most once a second, never waiting behind another pass.
pub async fn engine_pass(app: &App) -> Result<()> {
    if !app.config.subscriptions.automatic {
        return Ok(());
    }
    let real = now_ms();
    let last = app.renewals.last_engine_pass.load(Ordering::Relaxed);
    if real - last < ENGINE_PASS_EVERY_MS {
        return Ok(());
    }
    let Ok(_turn) = app.renewals.turn.try_lock() else {
        return Ok(());
    };
    app.renewals.last_engine_pass.store(real, Ordering::Relaxed);
    pass(app).await.map(|_| ())
}

async fn pass(app: &App) -> Result<PassSummary> {
    let now = billing_now(app).await?;
    let ids = store::subscriptions::due(&app.db, now).await?;
    let mut summary = PassSummary {
        now: rfc3339(now),
        due: u32::try_from(ids.len()).unwrap_or(u32::MAX),
        ..PassSummary::default()
    };
    for id in ids {
        let real = now_ms();
        if !store::subscriptions::lease(&app.db, &id, &app.instance, real + LEASE_MS, real).await? {
            summary.skipped += 1;
            continue;
        }
        let out = drive(app, &id, now).await;
        store::subscriptions::release(&app.db, &id, &app.instance).await?;
        match out {
            Ok(true) => summary.charges += 1,
            Ok(false) => {}
            Err(e) => {
                warn!(subscription = %id, cause = %e, "renewal step failed; the next pass retries")
            }
        }
    }
    Ok(summary)
}

/// One subscription in a pass; true when a charge was sent.
async fn drive(app: &App, id: &str, now: i64) -> Result<bool> {
    settle(app, id, now).await?;
    let Some(s) = load(app, id).await? else {
        return Ok(false);
    };
    if s.pending_payment_id.is_some() {
        return Ok(false);
    }
    if s.status == SubscriptionStatus::Cancelled {
        if s.period_end.is_none_or(|e| e <= now) {
            end(
                app,
                id,
                SubscriptionStatus::Expired,
                "the cancelled subscription's paid time is over",
                now,
            )
            .await?;
        }
        return Ok(false);
    }
    let sent = charge(app, id, now, None).await?;
    if sent {
        settle(app, id, now).await?;
    }
    Ok(sent)
}

/// The back office's view: the device view plus the device id.
pub async fn admin_view(app: &App, s: &SubscriptionRow) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(load_view(app, s).await?)
        .map_err(|_| Error::api(ErrorCode::Internal, "cannot encode"))?;
    v["deviceId"] = serde_json::Value::String(s.device_id.clone());
    v["wallet"] = serde_json::Value::String(s.wallet.clone());
    // Whether the server still holds a token grant (never the grant itself).
    v["grantHeld"] = serde_json::Value::Bool(s.token_grant.is_some());
    Ok(v)
}

/// Subscriptions for the back office.
pub async fn search(app: &App, f: &ListFilter<'_>, limit: i64) -> Result<Vec<SubscriptionRow>> {
    Ok(store::subscriptions::list(&app.db, f, limit).await?)
}

/// The succeeded charge of period `k`, for a refund of that period.
pub async fn paid_charge(app: &App, s: &SubscriptionRow, k: i64) -> Result<Option<PaymentRow>> {
    Ok(store::subscriptions::charges(&app.db, &s.subscription_id)
        .await?
        .into_iter()
        .find(|(idx, _, p)| *idx == k && p.status == PaymentStatus::Succeeded)
        .map(|(_, _, p)| p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn calendar_months_and_days() {
        // 2026-01-31T10:00:00Z
        let jan31 = 1_769_853_600_000;
        assert_eq!(
            rfc3339(add_span(jan31, Span::Months(1), 1)),
            "2026-02-28T10:00:00Z"
        );
        assert_eq!(
            rfc3339(add_span(jan31, Span::Months(1), 2)),
            "2026-03-31T10:00:00Z"
        );
        assert_eq!(
            rfc3339(add_span(jan31, Span::Months(12), 1)),
            "2027-01-31T10:00:00Z"
        );
        assert_eq!(
            rfc3339(add_span(jan31, Span::Months(3), 4)),
            "2027-01-31T10:00:00Z"
        );
        assert_eq!(add_span(jan31, Span::Days(7), 3), jan31 + 21 * DAY);
        for p in SUBSCRIPTION_PERIODS.iter().chain(TRIAL_PERIODS) {
            assert!(span(p).is_some(), "{p}");
        }
        assert_eq!(span("P2M"), None);
        assert_eq!(span("p1m"), None);
    }
}
