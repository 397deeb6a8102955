//! payments/pay (agreement and order code), inquiryPayment, cancel, refund, inquiryRefund,
//! the phone's order-code payment, and the time-driven transitions (in-process payments
//! becoming final, order codes expiring).

use scanbind_ams::model::{
    AmsResponse as _, CancelRequest, CancelResponse, CodeDetail, InquiryPaymentRequest,
    InquiryPaymentResponse, InquiryRefundRequest, InquiryRefundResponse, OrderCodeForm, PayRequest,
    PayResponse, PaymentStatus, ProductCode, Quote, RefundRequest, RefundResponse, RefundStatus,
    SecretString, Transaction, TransactionStatus, TransactionType,
};
use scanbind_ams::money::Amount;
use scanbind_ams::result::{AmsResult, ResultCode};
use time::{Duration, OffsetDateTime, Time};

use super::{Answer, Call, body, fail, parse};
use crate::app::App;
use crate::clock::{UTC8, ams_time, parse_ams_time};
use crate::faults::{CallFault, Magic};
use crate::ids::{random_hex, sequential_id};
use crate::state::{
    ActualPayment, PayState, Payment, PendingOutcome, Product, Refund, State, from_ts, scoped, ts,
};
use crate::wallets;
use scanbind_ams::money::CancelWindow;
use scanbind_ams::money::wallet::cancel_window;

/// Agreement pay closes 1 minute after the request (may only be shortened).
pub const AGREEMENT_EXPIRY: Duration = Duration::minutes(1);
/// Order code default life when the merchant sends no paymentExpiryTime.
pub const ORDER_CODE_DEFAULT_EXPIRY: Duration = Duration::minutes(15);
/// Order code longest life (exclusive).
pub const ORDER_CODE_MAX_EXPIRY: Duration = Duration::minutes(30);
/// How long an asynchronous refund (`isAsyncRefund`) stays `PROCESSING` on the sandbox
/// clock, unless an inquiry finds it first (the second inquiry sees it final).
pub const ASYNC_REFUND_TIME: Duration = Duration::seconds(60);

/// How long a payment quote is valid from the pay request (the sandbox honours the
/// quote of its own payment whenever it is paid).
pub const QUOTE_VALIDITY: Duration = Duration::minutes(5);

/// Refund period of a payment whose wallet is not in the Scan to Bind table (each
/// wallet's own is `WalletProfile::refund_period_days`).
pub const REFUND_PERIOD_DAYS: u32 = 365;

/// The refund period of a payment made with `wallet`.
fn refund_period(wallet: Option<&str>) -> Duration {
    let days = wallet
        .and_then(scanbind_ams::money::wallet::scan_to_bind)
        .map_or(REFUND_PERIOD_DAYS, |w| w.refund_period_days);
    Duration::days(i64::from(days))
}

fn amount(currency: &str, minor: i64) -> Amount {
    Amount {
        currency: currency.to_owned(),
        value: minor.to_string(),
    }
}

fn result_for_code(code: &str, message: Option<&str>) -> AmsResult {
    let code = ResultCode::parse(code);
    let message = message
        .map(str::to_owned)
        .unwrap_or_else(|| code.as_str().to_lowercase().replace('_', " "));
    AmsResult::with_code(code, message)
}

/// `actualPaymentAmount` and `paymentQuote` of a payment priced in another currency than
/// the wallet's.
pub(crate) fn payment_quote(p: &Payment) -> Option<(Amount, Quote)> {
    let a = p.actual.as_ref()?;
    let quote = Quote {
        quote_id: Some(a.quote_id.clone()),
        quote_currency_pair: Some(a.pair.clone()),
        quote_price: Some(a.price.clone()),
        quote_start_time: Some(ams_time(from_ts(a.quote_start))),
        quote_expiry_time: Some(ams_time(from_ts(a.quote_expiry))),
        ..Quote::default()
    };
    Some((amount(&a.currency, a.amount), quote))
}

/// The CNY value of a paid payment at the sandbox's quote (`fx`): the most it can be
/// declared to customs for. Only a payment that succeeded has one.
pub(crate) fn customs_declaration_amount(p: &Payment) -> Option<Amount> {
    p.paid?;
    let currency = scanbind_ams::money::Currency::from_code(&p.currency).ok()?;
    crate::fx::customs_declaration_minor(currency, p.amount).map(|cny| amount("CNY", cny))
}

/// The pay response for a payment's current record (deterministic: an identical replay
/// gets the same bytes).
fn pay_response(p: &Payment, public_url: &str) -> PayResponse {
    let result = match p.status {
        PayState::Success => AmsResult::success(),
        PayState::Cancelled if p.paid.is_some() => AmsResult::success(),
        PayState::Fail => result_for_code(
            p.fail_code.as_deref().unwrap_or("PROCESS_FAIL"),
            p.fail_message.as_deref(),
        ),
        PayState::Processing | PayState::Cancelled => match p.product {
            Product::InStorePayment => AmsResult::success(),
            Product::AgreementPayment if p.status == PayState::Processing => {
                AmsResult::with_code(ResultCode::PaymentInProcess, "payment in process")
            }
            Product::AgreementPayment => {
                AmsResult::with_code(ResultCode::OrderIsClosed, "the order is closed")
            }
        },
    };
    let mut r = PayResponse::from_result(result);
    r.payment_request_id = Some(p.payment_request_id.clone());
    r.payment_id = Some(p.payment_id.clone());
    r.payment_amount = Some(amount(&p.currency, p.amount));
    r.payment_create_time = Some(ams_time(from_ts(p.created)));
    r.payment_time = p.paid.map(|t| ams_time(from_ts(t)));
    if let Some((actual, quote)) = payment_quote(p) {
        r.actual_payment_amount = Some(actual);
        r.payment_quote = Some(quote);
    }
    if p.product == Product::InStorePayment
        && let Some(code) = &p.order_code
    {
        r.order_code_form = Some(OrderCodeForm {
            payment_method_type: Some("CONNECT_WALLET".into()),
            expire_time: Some(ams_time(from_ts(p.expires))),
            code_details: vec![CodeDetail::qr_text(format!(
                "{public_url}/wallet/pay/{code}"
            ))],
            extend_info: None,
        });
    }
    r
}

/// Queues notifyPayment for a payment that just became final.
fn notify_payment(state: &mut State, pid: &str) {
    let Some(p) = state.payments.get_mut(pid) else {
        return;
    };
    if p.notified {
        return;
    }
    p.notified = true;
    let Some(url) = p.notify_url.clone() else {
        return;
    };
    let result = match p.status {
        PayState::Success => AmsResult::success(),
        _ => result_for_code(
            p.fail_code.as_deref().unwrap_or("PROCESS_FAIL"),
            p.fail_message.as_deref(),
        ),
    };
    let mut n = serde_json::json!({
        "notifyType": "PAYMENT_RESULT",
        "result": result,
        "paymentRequestId": p.payment_request_id,
        "paymentId": p.payment_id,
        "paymentAmount": amount(&p.currency, p.amount),
        "paymentCreateTime": ams_time(from_ts(p.created)),
    });
    if let Some(paid) = p.paid {
        n["paymentTime"] = ams_time(from_ts(paid)).into();
    }
    if let Some(c) = customs_declaration_amount(p) {
        n["customsDeclarationAmount"] = serde_json::to_value(c).unwrap_or_default();
    }
    if let Some(w) = &p.wallet {
        n["paymentMethodType"] = w.clone().into();
    }
    let client = p.client_id.clone();
    state.notify("notifyPayment", &client, &url, n.to_string());
}

/// Takes the money for a payment now (balance and limits permitting) and marks it paid,
/// or marks it failed. Returns whether it succeeded.
fn settle(state: &mut State, pid: &str, now: OffsetDateTime) -> bool {
    let Some(p) = state.payments.get(pid).cloned() else {
        return false;
    };
    let (Some(user), Some(wallet)) = (p.user.clone(), p.wallet.clone()) else {
        return false;
    };
    let charged = p.charged().1;
    let verdict = match wallets::profile(&wallet) {
        None => Err(("UNAVAILABLE_PAYMENT_METHOD", "the wallet is not available")),
        Some((_, profile)) => match wallets::check_limits(state, &profile, &user, charged, now) {
            Some(why) => Err(("USER_AMOUNT_EXCEED_LIMIT", why)),
            None => match state.users.get(&user) {
                Some(u) if u.balance >= charged => Ok(()),
                Some(_) => Err(("USER_BALANCE_NOT_ENOUGH", "user balance not enough")),
                None => Err(("USER_NOT_EXIST", "the wallet user does not exist")),
            },
        },
    };
    let ok = verdict.is_ok();
    match verdict {
        Ok(()) => {
            if let Some(u) = state.users.get_mut(&user) {
                u.balance -= charged;
            }
            wallets::add_usage(state, &user, charged, now);
            if let Some(p) = state.payments.get_mut(pid) {
                p.status = PayState::Success;
                p.paid = Some(ts(now));
                p.money_movements += 1;
                p.pending = None;
            }
        }
        Err((code, message)) => mark_failed(state, pid, code, message),
    }
    state.open_payments.remove(pid);
    ok
}

fn mark_failed(state: &mut State, pid: &str, code: &str, message: &str) {
    if let Some(p) = state.payments.get_mut(pid) {
        p.status = PayState::Fail;
        p.fail_code = Some(code.to_owned());
        p.fail_message = Some(message.to_owned());
        p.pending = None;
    }
    state.open_payments.remove(pid);
}

/// Finishes an in-process payment with its planned outcome and notifies.
fn finish_pending(state: &mut State, pid: &str, now: OffsetDateTime) {
    let Some(pending) = state.payments.get(pid).and_then(|p| p.pending.clone()) else {
        return;
    };
    match pending.fail_code.as_deref() {
        None => {
            settle(state, pid, now);
        }
        Some(code) => mark_failed(state, pid, code, &code.to_lowercase().replace('_', " ")),
    }
    notify_payment(state, pid);
}

/// Applies every time-driven transition due at `now`: in-process payments whose time has
/// come become final; unpaid order codes past their expiry are cancelled; failed agreement
/// pays whose order has closed are notified. Returns whether anything changed.
pub(crate) fn sweep(state: &mut State, now: OffsetDateTime) -> bool {
    let now_ts = ts(now);
    let due: Vec<String> = state
        .open_payments
        .iter()
        .filter(|pid| {
            state.payments.get(*pid).is_some_and(|p| match &p.pending {
                Some(pending) => now_ts >= pending.final_at,
                None => p.status == PayState::Processing && now_ts >= p.expires,
            })
        })
        .cloned()
        .collect();
    let notices: Vec<String> = state
        .failure_notices
        .iter()
        .filter(|(_, at)| now_ts >= **at)
        .map(|(pid, _)| pid.clone())
        .collect();
    for pid in &notices {
        state.failure_notices.remove(pid);
        notify_payment(state, pid);
    }
    let due_refunds: Vec<String> = state
        .open_refunds
        .iter()
        .filter(|id| {
            state
                .refunds
                .get(*id)
                .and_then(|r| r.pending.as_ref())
                .is_none_or(|p| now_ts >= p.final_at)
        })
        .cloned()
        .collect();
    for id in &due_refunds {
        finish_refund(state, id, now);
    }
    for pid in &due {
        let pending = state.payments.get(pid).is_some_and(|p| p.pending.is_some());
        if pending {
            finish_pending(state, pid, now);
        } else if let Some(p) = state.payments.get_mut(pid) {
            p.status = PayState::Cancelled;
            p.cancelled = Some(now_ts);
            state.open_payments.remove(pid);
        }
    }
    !due.is_empty() || !notices.is_empty() || !due_refunds.is_empty()
}

/// `POST /sandbox/v1/release`: every payment and refund held `PROCESSING` by an
/// `in_process` fault or a magic amount becomes final now, with its planned outcome,
/// as if its time had come (notifications go out). A test parks a payment with
/// `after_inquiries` and `after_seconds` too large to pass and releases it here.
/// Returns how many payments and refunds it released.
pub(crate) fn release(state: &mut State, now: OffsetDateTime) -> (usize, usize) {
    let now_ts = ts(now);
    let mut payments = 0;
    for pid in state.open_payments.clone() {
        if let Some(pending) = state
            .payments
            .get_mut(&pid)
            .and_then(|p| p.pending.as_mut())
        {
            pending.final_at = pending.final_at.min(now_ts);
            payments += 1;
        }
    }
    let mut refunds = 0;
    for id in state.open_refunds.clone() {
        if let Some(pending) = state.refunds.get_mut(&id).and_then(|r| r.pending.as_mut()) {
            pending.final_at = pending.final_at.min(now_ts);
            refunds += 1;
        }
    }
    sweep(state, now);
    (payments, refunds)
}

/// The key fields of pay that must match on a replay.
fn same_pay(p: &Payment, req: &PayRequest, product: Product) -> bool {
    let method_id = req
        .payment_method
        .payment_method_id
        .as_ref()
        .map(|s| s.expose().to_owned());
    p.product == product
        && p.currency == req.payment_amount.currency
        && p.amount.to_string() == req.payment_amount.value
        && p.payment_method_id == method_id
}

/// payments/pay.
pub(crate) fn pay(call: &Call<'_>) -> Answer {
    let req: PayRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let product = match &req.product_code {
        ProductCode::AgreementPayment => Product::AgreementPayment,
        ProductCode::InStorePayment
            if req.in_store_scenario().map(|s| s.as_str()) == Some("OrderCode") =>
        {
            Product::InStorePayment
        }
        other => {
            return fail(
                ResultCode::ParamIllegal,
                format!(
                    "illegal parameter productCode: the sandbox supports AGREEMENT_PAYMENT and IN_STORE_PAYMENT with OrderCode, not {}",
                    other.as_str()
                ),
            );
        }
    };
    let minor = match req.payment_amount.to_money() {
        Ok(m) => m.minor().get(),
        Err(e) => {
            return fail(
                ResultCode::ParamIllegal,
                format!("illegal parameter paymentAmount: {e}"),
            );
        }
    };
    let expiry = match req.payment_expiry_time.as_deref() {
        Some(text) => match parse_ams_time(text) {
            Some(t) => Some(t),
            None => {
                return fail(
                    ResultCode::ParamIllegal,
                    "illegal parameter paymentExpiryTime: not an ISO 8601 datetime",
                );
            }
        },
        None => None,
    };
    if let Err(answer) = seller_of(call, &req) {
        return answer;
    }
    let app = call.app;
    app.write(|state, app| {
        let now = app.clock.now();
        let mut changed = sweep(state, now);
        if let Some(p) = state.payment_by_request(call.client_id, &req.payment_request_id) {
            let answer = if same_pay(p, &req, product) {
                body(&pay_response(p, &app.public_url))
            } else {
                fail(
                    ResultCode::RepeatReqInconsistent,
                    "paymentRequestId was used before with different key fields",
                )
            };
            return (answer, changed);
        }
        let answer = match product {
            Product::AgreementPayment => agreement_pay(state, call, &req, minor, expiry, now),
            Product::InStorePayment => order_code_pay(state, call, &req, minor, expiry, now),
        };
        changed |= answer.1;
        (answer.0, changed)
    })
}

/// The seller a pay names: `order.merchant.referenceMerchantId` when it is a seller
/// registered under the calling client (`None` when absent or the client itself, or when
/// the client has no sellers at all). A client with sellers has any other merchant id
/// refused before anything is recorded: `F` / `ACCESS_DENIED` (the client is not
/// contracted to collect for that merchant).
fn seller_of(call: &Call<'_>, req: &PayRequest) -> Result<Option<(String, String)>, Answer> {
    let Some(rmid) = req
        .order
        .merchant
        .as_ref()
        .and_then(|m| m.reference_merchant_id.as_deref())
    else {
        return Ok(None);
    };
    // A client without sellers is not a multi-merchant setup: its merchant ids (ISV
    // sub-merchants, stores) are taken as sent and not checked.
    if rmid == call.client_id || !call.app.sellers.keys().any(|(c, _)| c == call.client_id) {
        return Ok(None);
    }
    match call
        .app
        .sellers
        .get(&(call.client_id.to_owned(), rmid.to_owned()))
    {
        Some(name) => Ok(Some((rmid.to_owned(), name.clone()))),
        None => Err(fail(
            ResultCode::AccessDenied,
            format!("access denied: the merchant {rmid:?} is not registered under this client"),
        )),
    }
}

fn new_payment(
    state: &mut State,
    call: &Call<'_>,
    req: &PayRequest,
    product: Product,
    minor: i64,
    now: OffsetDateTime,
    expires: OffsetDateTime,
) -> Payment {
    let seq = state.next_seq();
    let seller = seller_of(call, req).ok().flatten();
    let merchant_name = req
        .order
        .merchant
        .as_ref()
        .and_then(|m| {
            m.merchant_display_name
                .clone()
                .or_else(|| m.merchant_name.clone())
        })
        .unwrap_or_else(|| {
            call.app
                .merchants
                .get(call.client_id)
                .map(|m| m.name.clone())
                .unwrap_or_else(|| call.client_id.to_owned())
        });
    Payment {
        payment_id: sequential_id(now, 11, seq),
        payment_request_id: req.payment_request_id.clone(),
        client_id: call.client_id.to_owned(),
        product,
        currency: req.payment_amount.currency.clone(),
        amount: minor,
        status: PayState::Processing,
        fail_code: None,
        fail_message: None,
        user: None,
        wallet: None,
        payment_method_id: req
            .payment_method
            .payment_method_id
            .as_ref()
            .map(|s| s.expose().to_owned()),
        description: req.order.order_description.clone(),
        reference_order_id: req.order.reference_order_id.clone(),
        merchant_name: seller
            .as_ref()
            .map(|(_, name)| name.clone())
            .unwrap_or(merchant_name),
        reference_merchant_id: seller.map(|(rmid, _)| rmid),
        notify_url: req.payment_notify_url.clone(),
        created: ts(now),
        paid: None,
        expires: ts(expires),
        cancelled: None,
        refunded: 0,
        money_movements: 0,
        reversals: 0,
        order_code: None,
        pending: None,
        inquiries: 0,
        notified: false,
        actual: None,
        actual_refunded: 0,
    }
}

fn insert_payment(state: &mut State, p: Payment) -> String {
    let pid = p.payment_id.clone();
    state
        .payment_requests
        .insert(scoped(&p.client_id, &p.payment_request_id), pid.clone());
    if p.status == PayState::Processing {
        state.open_payments.insert(pid.clone());
    }
    state.payments.insert(pid.clone(), p);
    pid
}

fn agreement_pay(
    state: &mut State,
    call: &Call<'_>,
    req: &PayRequest,
    minor: i64,
    expiry: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> (Answer, bool) {
    let magic = req
        .payment_amount
        .to_money()
        .ok()
        .and_then(|m| Magic::for_amount(m.currency(), minor));
    match magic {
        Some(Magic::UnknownException) => {
            return (
                fail(
                    ResultCode::UnknownException,
                    "unknown exception (magic amount 9901)",
                ),
                false,
            );
        }
        Some(Magic::Hang) => return (Answer::Hang, false),
        Some(Magic::InvalidAccessToken) => {
            return (
                fail(
                    ResultCode::InvalidAccessToken,
                    "the access token is not valid (magic amount 9907)",
                ),
                false,
            );
        }
        _ => {}
    }
    let token = req
        .payment_method
        .payment_method_id
        .as_ref()
        .map(SecretString::expose)
        .unwrap_or("");
    let Some(binding) =
        super::auth::binding_for_token(state, call.client_id, token, ts(now)).cloned()
    else {
        return (
            fail(
                ResultCode::InvalidAccessToken,
                "the access token is not valid, expired or revoked",
            ),
            false,
        );
    };
    // The token was issued for one wallet: a pay that names another wallet is refused,
    // never charged to the token's wallet.
    if req.payment_method.payment_method_type != binding.wallet {
        return (
            fail(
                ResultCode::ParamIllegal,
                format!(
                    "illegal parameter paymentMethod.paymentMethodType: {:?} is not the wallet \
                     the access token was issued for",
                    req.payment_method.payment_method_type
                ),
            ),
            false,
        );
    }
    let expires = now + AGREEMENT_EXPIRY;
    if let Some(t) = expiry {
        if t > expires {
            return (
                fail(
                    ResultCode::ParamIllegal,
                    "illegal parameter paymentExpiryTime: may only shorten the 1-minute default",
                ),
                false,
            );
        }
        if t <= now {
            return (
                fail(
                    ResultCode::ParamIllegal,
                    "illegal parameter paymentExpiryTime: already past",
                ),
                false,
            );
        }
    }
    let Some((_, profile)) = wallets::profile(&binding.wallet) else {
        return (
            fail(
                ResultCode::UnavailablePaymentMethod,
                "the wallet is not available",
            ),
            false,
        );
    };
    // A payment priced in another currency is paid in the wallet's at the sandbox's
    // quote (`fx`); a currency without a quote is refused. Magic amounts select their
    // scenario whatever the wallet's currency and minimum.
    let quote = match scanbind_ams::money::Currency::from_code(&req.payment_amount.currency) {
        Ok(c) if c == profile.currency => None,
        Ok(c) if magic.is_none() => match crate::fx::Quote::between(c, profile.currency) {
            Some(q) => Some(q),
            None => {
                return (
                    fail(
                        ResultCode::CurrencyNotSupport,
                        format!(
                            "{} pays in {} and the sandbox has no quote for {}",
                            binding.wallet,
                            profile.currency.code(),
                            c.code()
                        ),
                    ),
                    false,
                );
            }
        },
        _ => None,
    };
    let actual_minor = match &quote {
        Some(q) => match q.convert(minor) {
            Some(a) if a > 0 => a,
            _ => {
                return (
                    fail(
                        ResultCode::ParamIllegal,
                        format!(
                            "illegal parameter paymentAmount.value: worth nothing in {} at {}",
                            profile.currency.code(),
                            q.price()
                        ),
                    ),
                    false,
                );
            }
        },
        None => minor,
    };
    if magic.is_none() && actual_minor < profile.min_amount.get() {
        return (
            fail(
                ResultCode::ParamIllegal,
                format!(
                    "illegal parameter paymentAmount.value: below the {} minimum of {} minor units",
                    binding.wallet,
                    profile.min_amount.get()
                ),
            ),
            false,
        );
    }
    let mut p = new_payment(
        state,
        call,
        req,
        Product::AgreementPayment,
        minor,
        now,
        expiry.unwrap_or(expires),
    );
    p.user = Some(binding.user.clone());
    p.wallet = Some(binding.wallet.clone());
    if let Some(q) = &quote {
        p.actual = Some(ActualPayment {
            currency: profile.currency.code().to_owned(),
            amount: actual_minor,
            quote_id: format!("QT{}", p.payment_id),
            pair: q.pair(),
            price: q.price(),
            quote_start: ts(now),
            quote_expiry: ts(now + QUOTE_VALIDITY),
        });
    }
    let fixed_fail = match magic {
        Some(Magic::BalanceNotEnough) => Some((
            "USER_BALANCE_NOT_ENOUGH",
            "user balance not enough (magic amount 9905)",
        )),
        Some(Magic::RiskReject) => Some((
            "RISK_REJECT",
            "rejected by risk control (magic amount 9906)",
        )),
        Some(Magic::AmountExceedLimit) => Some((
            "USER_AMOUNT_EXCEED_LIMIT",
            "user amount exceeds limit (magic amount 9908)",
        )),
        _ => None,
    };
    let pending = match (magic, &call.in_process) {
        (Some(Magic::InProcessThenSuccess), _) => Some(PendingOutcome {
            fail_code: None,
            inquiries_left: 1,
            final_at: ts(now + Duration::seconds(60)),
        }),
        (Some(Magic::InProcessThenFail), _) => Some(PendingOutcome {
            fail_code: Some("PROCESS_FAIL".into()),
            inquiries_left: 1,
            final_at: ts(now + Duration::seconds(60)),
        }),
        (
            _,
            Some(CallFault::InProcess {
                outcome,
                after_inquiries,
                after_seconds,
            }),
        ) => Some(PendingOutcome {
            fail_code: (outcome != "SUCCESS").then(|| outcome.clone()),
            inquiries_left: *after_inquiries,
            final_at: ts(now).saturating_add(i64::try_from(*after_seconds).unwrap_or(i64::MAX)),
        }),
        _ => None,
    };
    if let Some((code, message)) = fixed_fail {
        p.status = PayState::Fail;
        p.fail_code = Some(code.into());
        p.fail_message = Some(message.into());
        let pid = insert_payment(state, p);
        notify_when_closed(state, &pid);
        return (pay_answer(state, &pid, call.app), true);
    }
    if let Some(pending) = pending {
        p.pending = Some(pending);
        let pid = insert_payment(state, p);
        return (pay_answer(state, &pid, call.app), true);
    }
    let pid = insert_payment(state, p);
    state.open_payments.insert(pid.clone());
    if settle(state, &pid, now) {
        notify_payment(state, &pid);
    } else {
        notify_when_closed(state, &pid);
    }
    (pay_answer(state, &pid, call.app), true)
}

/// A failed agreement pay is notified when the order closes (its expiry, 1 minute by
/// default), as AMS does; success is notified at once.
fn notify_when_closed(state: &mut State, pid: &str) {
    if let Some(expires) = state.payments.get(pid).map(|p| p.expires) {
        state.failure_notices.insert(pid.to_owned(), expires);
    }
}

fn pay_answer(state: &State, pid: &str, app: &App) -> Answer {
    match state.payments.get(pid) {
        Some(p) => body(&pay_response(p, &app.public_url)),
        None => fail(ResultCode::UnknownException, "payment vanished"),
    }
}

fn order_code_pay(
    state: &mut State,
    call: &Call<'_>,
    req: &PayRequest,
    minor: i64,
    expiry: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> (Answer, bool) {
    let expires = match expiry {
        Some(t) if t <= now => {
            return (
                fail(
                    ResultCode::ParamIllegal,
                    "illegal parameter paymentExpiryTime: already past",
                ),
                false,
            );
        }
        Some(t) if t - now >= ORDER_CODE_MAX_EXPIRY => {
            return (
                fail(
                    ResultCode::ParamIllegal,
                    "illegal parameter paymentExpiryTime: must be less than 30 minutes away",
                ),
                false,
            );
        }
        Some(t) => t,
        None => now + ORDER_CODE_DEFAULT_EXPIRY,
    };
    let mut p = new_payment(
        state,
        call,
        req,
        Product::InStorePayment,
        minor,
        now,
        expires,
    );
    let code = random_hex(16);
    p.order_code = Some(code.clone());
    let pid = insert_payment(state, p);
    state.order_codes.insert(code, pid.clone());
    (pay_answer(state, &pid, call.app), true)
}

/// What the phone's pay page shows about an order code.
#[derive(Debug, Clone)]
pub(crate) struct OrderView {
    /// Merchant name.
    pub merchant: String,
    /// Order description.
    pub description: String,
    /// Currency code.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Current state.
    pub status: PayState,
    /// Expired already.
    pub expired: bool,
}

/// Looks an order code up for the phone page.
pub(crate) fn order_view(app: &App, code: &str) -> Option<OrderView> {
    app.write(|state, app| {
        let now = app.clock.now();
        let changed = sweep(state, now);
        let view = state
            .order_codes
            .get(code)
            .and_then(|pid| state.payments.get(pid))
            .map(|p| OrderView {
                merchant: p.merchant_name.clone(),
                description: p.description.clone(),
                currency: p.currency.clone(),
                amount: p.amount,
                status: p.status,
                expired: ts(now) >= p.expires,
            });
        (view, changed)
    })
}

/// The phone pays (or declines) an order code. Declining leaves the order open (the buyer
/// walked away). Errors are messages for people.
pub(crate) fn scan_pay(
    app: &App,
    code: &str,
    approve: bool,
    user: Option<&str>,
) -> Result<bool, String> {
    app.write(|state, app| {
        let now = app.clock.now();
        let mut changed = sweep(state, now);
        let Some(pid) = state.order_codes.get(code).cloned() else {
            return (
                Err("this code is not known to the sandbox".to_owned()),
                changed,
            );
        };
        let Some(p) = state.payments.get(&pid).cloned() else {
            return (
                Err("this code is not known to the sandbox".to_owned()),
                changed,
            );
        };
        if p.status != PayState::Processing {
            return (
                Err(format!(
                    "this order is already {}",
                    p.status.as_str().to_lowercase()
                )),
                changed,
            );
        }
        if !approve {
            return (Ok(false), changed);
        }
        let wallet = match user {
            Some(login) => match state.users.get(login) {
                Some(u) => u.wallet.clone(),
                None => return (Err(format!("there is no wallet user {login}")), changed),
            },
            None => {
                let found = scanbind_ams::wallet::Wallet::SCAN_TO_BIND.iter().find(|w| {
                    w.scan_to_bind()
                        .is_some_and(|pr| pr.currency.code() == p.currency)
                });
                match found {
                    Some(w) => w.as_str().to_owned(),
                    None => {
                        return (
                            Err(format!("no simulated wallet pays in {}", p.currency)),
                            changed,
                        );
                    }
                }
            }
        };
        let login = match wallets::resolve_user(state, &wallet, user) {
            Ok(l) => l,
            Err(e) => return (Err(e), changed),
        };
        if state
            .users
            .get(&login)
            .is_some_and(|u| u.currency != p.currency)
        {
            return (
                Err(format!("{wallet} cannot pay in {}", p.currency)),
                changed,
            );
        }
        changed = true;
        if let Some(pm) = state.payments.get_mut(&pid) {
            pm.user = Some(login);
            pm.wallet = Some(wallet);
        }
        if settle(state, &pid, now) {
            notify_payment(state, &pid);
            (Ok(true), changed)
        } else {
            let why = state
                .payments
                .get(&pid)
                .and_then(|p| p.fail_message.clone())
                .unwrap_or_default();
            // A failed attempt on the phone does not close the order: the buyer may try
            // another wallet. Restore it to PROCESSING.
            if let Some(pm) = state.payments.get_mut(&pid) {
                pm.status = PayState::Processing;
                pm.fail_code = None;
                pm.fail_message = None;
                pm.user = None;
                pm.wallet = None;
            }
            state.open_payments.insert(pid);
            (Err(format!("payment failed: {why}")), changed)
        }
    })
}

/// Finds the caller's payment: `paymentId` wins over `paymentRequestId`.
fn find_payment(
    state: &State,
    client_id: &str,
    payment_id: Option<&str>,
    request_id: Option<&str>,
) -> Option<String> {
    match payment_id {
        Some(id) => state
            .payments
            .get(id)
            .filter(|p| p.client_id == client_id)
            .map(|p| p.payment_id.clone()),
        None => request_id
            .and_then(|r| state.payment_by_request(client_id, r))
            .map(|p| p.payment_id.clone()),
    }
}

fn transaction(
    kind: TransactionType,
    status: TransactionStatus,
    currency: &str,
    minor: i64,
    request_id: &str,
    id: &str,
    time: Option<i64>,
) -> Transaction {
    let mut t = Transaction::default();
    t.transaction_type = Some(kind);
    t.transaction_status = Some(status);
    t.transaction_amount = Some(amount(currency, minor));
    t.transaction_request_id = Some(request_id.to_owned());
    t.transaction_id = Some(id.to_owned());
    t.transaction_time = time.map(|t| ams_time(from_ts(t)));
    t
}

/// payments/inquiryPayment.
pub(crate) fn inquiry_payment(call: &Call<'_>) -> Answer {
    let req: InquiryPaymentRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    call.app.write(|state, app| {
        let now = app.clock.now();
        let mut changed = sweep(state, now);
        let Some(pid) = find_payment(
            state,
            call.client_id,
            req.payment_id.as_deref(),
            req.payment_request_id.as_deref(),
        ) else {
            return (
                fail(ResultCode::OrderNotExist, "the payment does not exist"),
                changed,
            );
        };
        if let Some(p) = state.payments.get_mut(&pid) {
            p.inquiries += 1;
            changed = true;
            if let Some(pending) = p.pending.as_mut() {
                if pending.inquiries_left == 0 {
                    finish_pending(state, &pid, now);
                } else {
                    pending.inquiries_left -= 1;
                }
            }
        }
        let Some(p) = state.payments.get(&pid) else {
            return (
                fail(ResultCode::OrderNotExist, "the payment does not exist"),
                changed,
            );
        };
        let mut r = InquiryPaymentResponse::from_result(AmsResult::success());
        r.payment_status = Some(PaymentStatus::parse(p.status.as_str()));
        match p.status {
            PayState::Fail => {
                r.payment_result_code = Some(ResultCode::parse(
                    p.fail_code.as_deref().unwrap_or("PROCESS_FAIL"),
                ));
                r.payment_result_message = p.fail_message.clone();
            }
            PayState::Success => {
                r.payment_result_code = Some(ResultCode::Success);
                r.payment_result_message = Some("success".into());
            }
            _ => {}
        }
        r.payment_request_id = Some(p.payment_request_id.clone());
        r.payment_id = Some(p.payment_id.clone());
        r.payment_amount = Some(amount(&p.currency, p.amount));
        r.customs_declaration_amount = customs_declaration_amount(p);
        if let Some((actual, quote)) = payment_quote(p) {
            r.actual_payment_amount = Some(actual);
            r.payment_quote = Some(quote);
        }
        r.payment_create_time = Some(ams_time(from_ts(p.created)));
        r.payment_time = p.paid.map(|t| ams_time(from_ts(t)));
        let pay_status = match p.status {
            PayState::Success | PayState::Cancelled if p.paid.is_some() => {
                TransactionStatus::Success
            }
            PayState::Processing => TransactionStatus::Processing,
            PayState::Cancelled => TransactionStatus::Cancelled,
            _ => TransactionStatus::Fail,
        };
        let mut txs = vec![transaction(
            TransactionType::Payment,
            pay_status,
            &p.currency,
            p.amount,
            &p.payment_request_id,
            &p.payment_id,
            p.paid.or(Some(p.created)),
        )];
        for rf in state
            .refunds
            .values()
            .filter(|r| r.payment_id == p.payment_id)
        {
            txs.push(transaction(
                TransactionType::Refund,
                TransactionStatus::parse(&rf.status),
                &rf.currency,
                rf.amount,
                &rf.refund_request_id,
                &rf.refund_id,
                Some(rf.created),
            ));
        }
        if let Some(c) = p.cancelled {
            txs.push(transaction(
                TransactionType::Cancel,
                TransactionStatus::Success,
                &p.currency,
                p.amount,
                &p.payment_request_id,
                &p.payment_id,
                Some(c),
            ));
        }
        r.transactions = Some(txs);
        (body(&r), changed)
    })
}

/// The last moment a payment paid at `paid` can be cancelled: 00:15 UTC+8 the next day.
pub(crate) fn cancel_deadline(paid: OffsetDateTime) -> OffsetDateTime {
    let local = paid.to_offset(UTC8);
    let next_day = local.date().next_day().unwrap_or(local.date());
    next_day
        .with_time(Time::from_hms(0, 15, 0).unwrap_or(Time::MIDNIGHT))
        .assume_offset(UTC8)
}

/// payments/cancel: full amount; a paid order is refunded in full (within the window).
pub(crate) fn cancel(call: &Call<'_>) -> Answer {
    let req: CancelRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    call.app.write(|state, app| {
        let now = app.clock.now();
        let changed = sweep(state, now);
        let Some(pid) = find_payment(
            state,
            call.client_id,
            req.payment_id.as_deref(),
            req.payment_request_id.as_deref(),
        ) else {
            return (fail(ResultCode::OrderNotExist, "the payment does not exist"), changed);
        };
        let Some(p) = state.payments.get(&pid).cloned() else {
            return (fail(ResultCode::OrderNotExist, "the payment does not exist"), changed);
        };
        let ok = |p: &Payment| {
            let mut r = CancelResponse::from_result(AmsResult::success());
            r.payment_id = Some(p.payment_id.clone());
            r.payment_request_id = Some(p.payment_request_id.clone());
            r.cancel_time = p.cancelled.map(|t| ams_time(from_ts(t)));
            body(&r)
        };
        match p.status {
            PayState::Cancelled => (ok(&p), changed),
            PayState::Fail => (
                fail(ResultCode::OrderStatusInvalid, "a failed payment cannot be cancelled"),
                changed,
            ),
            PayState::Processing
                if p.wallet.as_deref().map(cancel_window) == Some(CancelWindow::NotAllowed) =>
            {
                (
                    fail(
                        ResultCode::CancelWindowExceed,
                        "Indonesian payment methods cannot be cancelled; wait for the result, \
                         then refund",
                    ),
                    changed,
                )
            }
            PayState::Processing => {
                if let Some(pm) = state.payments.get_mut(&pid) {
                    pm.status = PayState::Cancelled;
                    pm.cancelled = Some(ts(now));
                    pm.pending = None;
                }
                state.open_payments.remove(&pid);
                let answer = state.payments.get(&pid).map(ok);
                (answer.unwrap_or_else(|| fail(ResultCode::UnknownException, "payment vanished")), true)
            }
            PayState::Success => {
                let paid = from_ts(p.paid.unwrap_or(p.created));
                if p.wallet.as_deref().map(cancel_window) == Some(CancelWindow::NotAllowed) {
                    return (
                        fail(
                            ResultCode::CancelWindowExceed,
                            "Indonesian payment methods cannot be cancelled; refund instead",
                        ),
                        changed,
                    );
                }
                if now > cancel_deadline(paid) {
                    return (
                        fail(
                            ResultCode::CancelWindowExceed,
                            "the cancel window (00:15 UTC+8 the day after payment) has passed; refund instead",
                        ),
                        changed,
                    );
                }
                let back = p.amount - p.refunded;
                // What goes back to the user: in the wallet's currency, everything not
                // refunded yet.
                let back_charged = match &p.actual {
                    Some(a) => a.amount - p.actual_refunded,
                    None => back,
                };
                if let Some(user) = &p.user
                    && let Some(u) = state.users.get_mut(user)
                {
                    u.balance = u.balance.saturating_add(back_charged);
                }
                if let Some(pm) = state.payments.get_mut(&pid) {
                    pm.status = PayState::Cancelled;
                    pm.cancelled = Some(ts(now));
                    pm.refunded = pm.amount;
                    if let Some(a) = &pm.actual {
                        pm.actual_refunded = a.amount;
                    }
                    if back > 0 {
                        pm.reversals += 1;
                    }
                }
                let answer = state.payments.get(&pid).map(ok);
                (answer.unwrap_or_else(|| fail(ResultCode::UnknownException, "payment vanished")), true)
            }
        }
    })
}

/// The refund answer for a refund's current record: `S` once it succeeded, `U` /
/// `REFUND_IN_PROCESS` while an asynchronous refund is pending, `F` with its code once it
/// failed (an identical replay gets these same bytes).
fn refund_response(r: &Refund) -> String {
    let result = match (r.status.as_str(), &r.fail_code) {
        ("PROCESSING", _) => AmsResult::with_code(
            ResultCode::RefundInProcess,
            "refund in process: inquire or wait for notifyRefund",
        ),
        ("FAIL", code) => result_for_code(code.as_deref().unwrap_or("PROCESS_FAIL"), None),
        _ => AmsResult::success(),
    };
    let mut resp = RefundResponse::from_result(result);
    resp.refund_request_id = Some(r.refund_request_id.clone());
    resp.refund_id = Some(r.refund_id.clone());
    resp.payment_id = Some(r.payment_id.clone());
    resp.refund_amount = Some(amount(&r.currency, r.amount));
    if r.status == "SUCCESS" {
        resp.refund_time = Some(ams_time(from_ts(r.finished.unwrap_or(r.created))));
    }
    serde_json::to_string(&resp).unwrap_or_default()
}

/// Queues notifyRefund for a refund that is final (if it named a notify URL).
fn notify_refund(state: &mut State, refund_id: &str) {
    let Some(rf) = state.refunds.get(refund_id) else {
        return;
    };
    let Some(url) = rf.notify_url.clone() else {
        return;
    };
    let result = match &rf.fail_code {
        Some(code) => result_for_code(code, None),
        None => AmsResult::success(),
    };
    let mut n = serde_json::json!({
        "notifyType": "REFUND_RESULT",
        "result": result,
        "refundStatus": rf.status,
        "refundRequestId": rf.refund_request_id,
        "refundId": rf.refund_id,
        "refundAmount": amount(&rf.currency, rf.amount),
    });
    if rf.status == "SUCCESS" {
        n["refundTime"] = ams_time(from_ts(rf.finished.unwrap_or(rf.created))).into();
    }
    let client_id = rf.client_id.clone();
    state.notify("notifyRefund", &client_id, &url, n.to_string());
}

/// Moves the money of a refund that succeeded back to the paying user.
fn move_refund_money(state: &mut State, refund_id: &str) {
    let Some(rf) = state.refunds.get_mut(refund_id) else {
        return;
    };
    rf.money_movements = 1;
    let (pid, mut minor) = (rf.payment_id.clone(), rf.amount);
    // A payment priced in another currency is refunded in the wallet's at the payment's
    // own quote, rounded down, and the refund that completes the payment's amount returns
    // exactly what is left of what was charged: the user gets back all they paid.
    let moved: i64 = state
        .refunds
        .values()
        .filter(|r| r.payment_id == pid && r.money_movements > 0)
        .map(|r| r.amount)
        .sum();
    if let Some(p) = state.payments.get_mut(&pid)
        && let Some(a) = &p.actual
    {
        let left = a.amount - p.actual_refunded;
        let back = if moved >= p.amount {
            left
        } else {
            scanbind_ams::money::Currency::from_code(&p.currency)
                .ok()
                .zip(scanbind_ams::money::Currency::from_code(&a.currency).ok())
                .and_then(|(from, to)| crate::fx::Quote::at_price(from, to, &a.price))
                .and_then(|q| q.convert(minor))
                .unwrap_or(0)
                .clamp(0, left)
        };
        p.actual_refunded += back;
        let currency = a.currency.clone();
        minor = back;
        if let Some(rf) = state.refunds.get_mut(refund_id) {
            rf.actual = Some((currency, back));
        }
    }
    let user = state.payments.get(&pid).and_then(|p| p.user.clone());
    if let Some(user) = user
        && let Some(u) = state.users.get_mut(&user)
    {
        u.balance = u.balance.saturating_add(minor);
    }
}

/// Finishes an asynchronous refund with its planned outcome and notifies. A failed
/// refund gives its amount back to what the payment can still refund.
fn finish_refund(state: &mut State, refund_id: &str, now: OffsetDateTime) {
    let Some(pending) = state.refunds.get(refund_id).and_then(|r| r.pending.clone()) else {
        return;
    };
    state.open_refunds.remove(refund_id);
    let Some(rf) = state.refunds.get_mut(refund_id) else {
        return;
    };
    rf.pending = None;
    rf.finished = Some(ts(now));
    match pending.fail_code {
        None => {
            rf.status = "SUCCESS".into();
            rf.response = refund_response(rf);
            move_refund_money(state, refund_id);
        }
        Some(code) => {
            rf.status = "FAIL".into();
            rf.fail_code = Some(code);
            rf.response = refund_response(rf);
            let (pid, minor) = (rf.payment_id.clone(), rf.amount);
            if let Some(p) = state.payments.get_mut(&pid) {
                p.refunded -= minor;
            }
        }
    }
    notify_refund(state, refund_id);
}

/// payments/refund: idempotent by refundRequestId; cumulative refunds ≤ paid.
pub(crate) fn refund(call: &Call<'_>) -> Answer {
    let req: RefundRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let minor = match req.refund_amount.to_money() {
        Ok(m) => m.minor().get(),
        Err(e) => {
            return fail(
                ResultCode::ParamIllegal,
                format!("illegal parameter refundAmount: {e}"),
            );
        }
    };
    call.app.write(|state, app| {
        let now = app.clock.now();
        let changed = sweep(state, now);
        let key = scoped(call.client_id, &req.refund_request_id);
        if let Some(existing) = state
            .refund_requests
            .get(&key)
            .and_then(|id| state.refunds.get(id))
        {
            let same = existing.payment_id == req.payment_id
                && existing.currency == req.refund_amount.currency
                && existing.amount == minor;
            return if same {
                (Answer::Body(existing.response.clone()), changed)
            } else {
                (
                    fail(
                        ResultCode::RepeatReqInconsistent,
                        "refundRequestId was used before with different key fields",
                    ),
                    changed,
                )
            };
        }
        let Some(p) = state
            .payments
            .get(&req.payment_id)
            .filter(|p| p.client_id == call.client_id)
            .cloned()
        else {
            return (
                fail(ResultCode::OrderNotExist, "the payment does not exist"),
                changed,
            );
        };
        match p.status {
            PayState::Success => {}
            PayState::Processing => {
                return (
                    fail(ResultCode::PaymentInProcess, "the payment is not final yet"),
                    changed,
                );
            }
            PayState::Fail | PayState::Cancelled => {
                return (
                    fail(ResultCode::OrderIsClosed, "the payment is closed"),
                    changed,
                );
            }
        }
        if req.refund_amount.currency != p.currency {
            return (
                fail(
                    ResultCode::ParamIllegal,
                    format!(
                        "illegal parameter refundAmount.currency: must be {}",
                        p.currency
                    ),
                ),
                changed,
            );
        }
        let paid = from_ts(p.paid.unwrap_or(p.created));
        let period = refund_period(p.wallet.as_deref());
        if now > paid + period {
            return (
                fail(
                    ResultCode::RefundWindowExceed,
                    format!(
                        "the wallet's refund period of {} days has passed",
                        period.whole_days()
                    ),
                ),
                changed,
            );
        }
        if p.refunded.saturating_add(minor) > p.amount {
            return (
                fail(
                    ResultCode::RefundAmountExceed,
                    "the total refunded would exceed the paid amount",
                ),
                changed,
            );
        }
        // An asynchronous refund (isAsyncRefund, or an armed in_process fault) is
        // PROCESSING first and becomes final later; its amount is reserved meanwhile.
        let pending = match &call.in_process {
            Some(CallFault::InProcess {
                outcome,
                after_inquiries,
                after_seconds,
            }) => Some(PendingOutcome {
                fail_code: (outcome != "SUCCESS").then(|| outcome.clone()),
                inquiries_left: *after_inquiries,
                final_at: ts(now).saturating_add(i64::try_from(*after_seconds).unwrap_or(i64::MAX)),
            }),
            _ if req.is_async_refund == Some(true) => Some(PendingOutcome {
                fail_code: None,
                inquiries_left: 1,
                final_at: ts(now + ASYNC_REFUND_TIME),
            }),
            _ => None,
        };
        let seq = state.next_seq();
        let mut rf = Refund {
            refund_id: sequential_id(now, 12, seq),
            refund_request_id: req.refund_request_id.clone(),
            client_id: call.client_id.to_owned(),
            payment_id: p.payment_id.clone(),
            currency: p.currency.clone(),
            amount: minor,
            status: if pending.is_some() {
                "PROCESSING"
            } else {
                "SUCCESS"
            }
            .into(),
            created: ts(now),
            finished: None,
            pending,
            fail_code: None,
            notify_url: req.refund_notify_url.clone(),
            money_movements: 0,
            response: String::new(),
            actual: None,
        };
        rf.response = refund_response(&rf);
        if let Some(pm) = state.payments.get_mut(&p.payment_id) {
            pm.refunded += minor;
        }
        let id = rf.refund_id.clone();
        let answer = Answer::Body(rf.response.clone());
        let asynchronous = rf.pending.is_some();
        state.refund_requests.insert(key, id.clone());
        state.refunds.insert(id.clone(), rf);
        if asynchronous {
            state.open_refunds.insert(id);
        } else {
            move_refund_money(state, &id);
            notify_refund(state, &id);
        }
        (answer, true)
    })
}

/// payments/inquiryRefund: `refundId` wins over `refundRequestId`.
pub(crate) fn inquiry_refund(call: &Call<'_>) -> Answer {
    let req: InquiryRefundRequest = match parse(call.body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    call.app.write(|state, app| {
        let now = app.clock.now();
        let changed = sweep(state, now);
        let found = match req.refund_id.as_deref() {
            Some(id) => state.refunds.get(id),
            None => req
                .refund_request_id
                .as_deref()
                .and_then(|r| state.refund_requests.get(&scoped(call.client_id, r)))
                .and_then(|id| state.refunds.get(id)),
        }
        .filter(|r| r.client_id == call.client_id)
        .map(|r| r.refund_id.clone());
        let Some(id) = found else {
            return (
                fail(ResultCode::OrderNotExist, "the refund does not exist"),
                changed,
            );
        };
        // An asynchronous refund answers PROCESSING for its planned inquiries, then
        // becomes final.
        let mut moved = changed;
        if let Some(left) = state
            .refunds
            .get(&id)
            .and_then(|r| r.pending.as_ref())
            .map(|p| p.inquiries_left)
        {
            if left == 0 {
                finish_refund(state, &id, now);
            } else if let Some(p) = state.refunds.get_mut(&id).and_then(|r| r.pending.as_mut()) {
                p.inquiries_left -= 1;
            }
            moved = true;
        }
        let Some(rf) = state.refunds.get(&id) else {
            return (
                fail(ResultCode::OrderNotExist, "the refund does not exist"),
                moved,
            );
        };
        let mut r = InquiryRefundResponse::from_result(AmsResult::success());
        r.refund_id = Some(rf.refund_id.clone());
        r.refund_request_id = Some(rf.refund_request_id.clone());
        r.refund_amount = Some(amount(&rf.currency, rf.amount));
        r.refund_status = Some(RefundStatus::parse(&rf.status));
        if rf.status == "SUCCESS" {
            r.refund_time = Some(ams_time(from_ts(rf.finished.unwrap_or(rf.created))));
        }
        (body(&r), moved)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_deadline_is_0015_next_day_utc8() {
        // 2024-01-01T23:30:00+08:00 → 2024-01-02T00:15:00+08:00
        let paid = OffsetDateTime::from_unix_timestamp(1_704_123_000).unwrap();
        assert_eq!(ams_time(cancel_deadline(paid)), "2024-01-02T00:15:00+08:00");
    }
}
