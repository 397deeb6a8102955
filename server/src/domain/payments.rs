//! Payments: agreement payments (Scan to Bind tokens) and Order Code payments, sent
//! once with a deterministic `paymentRequestId`, and made final exactly once. Every state
//! change is one conditional `UPDATE ... WHERE status = <from>` ([`store::payments::settle`]),
//! so a result reached twice (pay answer and notification, two replicas, a retried
//! notification) is applied, receipted and announced exactly once.

use scanbind_ams::model::{AmsResponse, Order, PayRequest};
use scanbind_ams::money::Money;
use scanbind_ams::result::ResultStatus;
use scanbind_ams::wallet::Wallet;
use scanbind_device_api::ErrorCode;
use scanbind_device_api::receipt::{Receipt, ReceiptKind};
use scanbind_device_api::types::{Amount, Conversion, Event, OrderCode, Payment, PaymentProduct};
use tracing::{info, warn};

use crate::domain::bindings::{device_binding, open_tokens};
use crate::domain::seal::TokenSet;
use crate::domain::{App, ams_call, check_amount, check_text, plausible_id, scan_to_bind_wallet};
use crate::error::{Error, Result};
use crate::store::payments::{NewPayment, Settlement};
use crate::store::{self, PaymentRow, PaymentStage, PaymentStatus, Product};
use crate::util::{ams_datetime, new_id, now_ms, rfc3339};

/// The (checkout id, seller id) of a payment that is a part of a combined checkout.
pub async fn checkout_part(app: &App, p: &PaymentRow) -> Result<Option<(String, String)>> {
    if p.product != Product::CheckoutPart {
        return Ok(None);
    }
    Ok(store::checkouts::part_of(&app.db, &p.payment_id).await?)
}

/// Makes an unfinished checkout due now (one of its parts changed) and wakes the engine.
/// A schedule, not money: the relaxed pool (D24). Lost to an OS crash, the checkout is
/// still due at its earlier time.
pub async fn wake_checkout(app: &App, checkout_id: &str) -> Result<()> {
    store::checkouts::make_due(&app.db, checkout_id, now_ms()).await?;
    app.engine_wake.notify_one();
    Ok(())
}

/// Loads a payment by server id.
pub async fn load_payment(app: &App, payment_id: &str) -> Result<Option<PaymentRow>> {
    Ok(store::payments::load(&app.db, payment_id).await?)
}

/// Loads a payment by `paymentRequestId`.
pub async fn load_payment_by_request(app: &App, prid: &str) -> Result<Option<PaymentRow>> {
    Ok(store::payments::by_request(&app.db, prid).await?)
}

/// Loads a payment owned by `device_id` or answers `not_found`.
pub async fn device_payment(app: &App, device_id: &str, payment_id: &str) -> Result<PaymentRow> {
    if !plausible_id(payment_id) {
        return Err(Error::api(
            ErrorCode::NotFound,
            "no such payment on this device",
        ));
    }
    match load_payment(app, payment_id).await? {
        Some(p) if p.device_id == device_id => Ok(p),
        _ => Err(Error::api(
            ErrorCode::NotFound,
            "no such payment on this device",
        )),
    }
}

/// The device view of a payment row.
pub fn payment_view(p: &PaymentRow) -> Payment {
    Payment {
        payment_id: p.payment_id.clone(),
        payment_request_id: p.payment_request_id.clone(),
        app_id: p.app_id.clone(),
        app_order_id: p.app_order_id.clone(),
        product: if p.product == Product::OrderCode {
            PaymentProduct::OrderCode
        } else {
            PaymentProduct::Agreement
        },
        binding_id: p.binding_id.clone(),
        order_code: p
            .code_value
            .clone()
            .filter(|_| p.status == PaymentStatus::Pending)
            .map(|code_value| OrderCode {
                code_value,
                expires_at: rfc3339(p.expires_at),
            }),
        amount: Amount {
            currency: p.currency.clone(),
            value: p.amount,
        },
        description: p.description.clone(),
        status: p.status,
        result_code: p.result_code.clone(),
        result_message: p.result_message.clone(),
        ams_payment_id: p.ams_payment_id.clone(),
        refunded: Amount {
            currency: p.currency.clone(),
            value: p.refunded,
        },
        conversion: p.conversion.clone(),
        receipt: p.receipt.clone(),
        created_at: rfc3339(p.created_at),
        updated_at: rfc3339(p.updated_at),
    }
}

/// What the wallet paid for a payment priced in another currency, from the AMS answer
/// that reports its success (`actualPaymentAmount` and `paymentQuote`). Kept only when it
/// is consistent with the payment: the currency its wallet pays in (another than the
/// payment's), the pair `<payment currency>/<paid currency>`, a plain decimal price, and
/// a paid amount that is the payment's amount at that price (rounded down, as the
/// sandbox does, or up: within one minor unit); anything else is ignored (and logged),
/// since the payment's own amount stays what was agreed.
pub fn conversion_from(
    p: &PaymentRow,
    actual: Option<&scanbind_ams::money::Amount>,
    quote: Option<&scanbind_ams::model::Quote>,
) -> Option<Conversion> {
    let actual = actual?;
    if actual.currency == p.currency {
        return None;
    }
    let checked = (|| {
        let currency = scanbind_ams::money::Currency::from_code(&actual.currency).ok()?;
        let priced = scanbind_ams::money::Currency::from_code(&p.currency).ok()?;
        let (_, wallet_pays) = scan_to_bind_wallet(&p.wallet).ok()?;
        let value: i64 = actual.value.parse().ok().filter(|v| *v > 0)?;
        let quote = quote?;
        let pair = quote.quote_currency_pair.as_deref()?;
        let price = quote.quote_price.as_deref()?;
        let expected = scanbind_ams::money::convert_at_price(p.amount, priced, currency, price)?;
        (currency == wallet_pays
            && pair == format!("{}/{}", p.currency, currency.code())
            && value.abs_diff(expected) <= 1)
            .then(|| Conversion {
                paid: Amount {
                    currency: currency.code().to_owned(),
                    value,
                },
                quote_currency_pair: pair.to_owned(),
                quote_price: price.to_owned(),
            })
    })();
    if checked.is_none() {
        warn!(payment = %p.payment_id, "the answer's actualPaymentAmount or paymentQuote does not match the payment; not recorded");
    }
    checked
}

/// `p` with the conversion an AMS answer reported (the one already known wins).
pub fn with_conversion(p: &PaymentRow, conversion: Option<Conversion>) -> PaymentRow {
    let mut q = p.clone();
    if q.conversion.is_none() {
        q.conversion = conversion;
    }
    q
}

/// Whether a payment is priced in another currency than its wallet pays in (its success
/// then carries a conversion, learnt from the pay or inquiryPayment answer).
pub fn priced_in_other_currency(p: &PaymentRow) -> bool {
    scan_to_bind_wallet(&p.wallet).is_ok_and(|(_, c)| c.code() != p.currency)
}

fn order_id_taken() -> Error {
    Error::api(
        ErrorCode::IdempotencyConflict,
        "this app order id is used by a part of a combined checkout",
    )
}

/// `POST /v1/payments`: the same (device, app, order id) is always the same payment.
pub async fn pay(
    app: &App,
    device_id: &str,
    req: &scanbind_device_api::types::PayRequest,
) -> Result<PaymentRow> {
    check_text(
        "appId",
        &req.app_id,
        scanbind_device_api::limits::MAX_APP_ID,
    )?;
    check_text(
        "appOrderId",
        &req.app_order_id,
        scanbind_device_api::limits::MAX_APP_ORDER_ID,
    )?;
    check_text(
        "description",
        &req.description,
        scanbind_device_api::limits::MAX_DESCRIPTION,
    )?;
    let binding = device_binding(app, device_id, &req.binding_id).await?;
    let (wallet, currency) = scan_to_bind_wallet(&binding.wallet)?;
    let money = check_amount(&req.amount, Some(currency))?;
    let prid = crate::util::payment_request_id(device_id, &req.app_id, &req.app_order_id);
    let now = now_ms();
    let payment_id = new_id("pay");
    let expires = now + app.config.payments.expiry_seconds * 1000;
    let grace = i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX);
    // A new payment is recorded only with tokens that open (a retry of a known one is
    // answered from the record even if the binding has since gone).
    let tokens = match open_tokens(app, &binding, &req.sealed_tokens).await {
        Ok(t) => Some(t),
        Err(e) => match load_payment_by_request(app, &prid).await? {
            Some(_) => None,
            None => return Err(e),
        },
    };
    // A fresh payment is sent at once: its row and the "sent" step commit together
    // (one commit instead of two; the row alone is what recovery needs), visible at once
    // and made durable side by side with the AMS call (D34): nobody hears of the payment
    // before both are done.
    let will_send = tokens.is_some() && expires > now;
    let mut tx = app.db.begin_durable().await?;
    let inserted = store::payments::insert_agreement(
        &mut tx,
        &NewPayment {
            payment_id: &payment_id,
            payment_request_id: &prid,
            device_id,
            app_id: &req.app_id,
            app_order_id: &req.app_order_id,
            binding_id: Some(&binding.binding_id),
            wallet: wallet.as_str(),
            currency: currency.code(),
            amount: money.minor().get(),
            description: &req.description,
            expires_at: expires,
            next_action_at: now.saturating_add(grace),
            now,
        },
    )
    .await?;
    let record = if inserted && will_send {
        if crate::util::armed("pay-sent-unrecorded") {
            // Crash test: the AMS call goes out with the record lost, as a power loss
            // before its fsync would lose it.
            tx.rollback().await?;
            None
        } else {
            Some(
                tx.commit_unsynced((&payment_id, "pay", "sent", now))
                    .await?,
            )
        }
    } else {
        tx.commit().await?;
        None
    };
    let p = if inserted {
        // Exactly the row just written: no need to read it back.
        PaymentRow {
            payment_id: payment_id.clone(),
            payment_request_id: prid.clone(),
            device_id: device_id.to_owned(),
            app_id: req.app_id.clone(),
            app_order_id: req.app_order_id.clone(),
            product: Product::Agreement,
            binding_id: Some(binding.binding_id.clone()),
            wallet: wallet.as_str().to_owned(),
            code_value: None,
            currency: currency.code().to_owned(),
            amount: money.minor().get(),
            description: req.description.clone(),
            status: PaymentStatus::Pending,
            stage: PaymentStage::Sending,
            result_code: None,
            result_message: None,
            ams_payment_id: None,
            refunded: 0,
            receipt: None,
            conversion: None,
            expires_at: expires,
            next_action_at: now.saturating_add(grace),
            attempts: 0,
            created_at: now,
            updated_at: now,
        }
    } else {
        // Not inserted and no row with this paymentRequestId: the order id is taken by a
        // part of a combined checkout (`<order id>#<index>`).
        load_payment_by_request(app, &prid)
            .await?
            .ok_or_else(order_id_taken)?
    };
    if p.product != Product::Agreement
        || p.amount != money.minor().get()
        || p.currency != currency.code()
        || p.binding_id.as_deref() != Some(binding.binding_id.as_str())
        || p.description != req.description
    {
        return Err(Error::api(
            ErrorCode::IdempotencyConflict,
            "this app order id was used before with a different amount, binding or description",
        ));
    }
    // Final, or past its expiry (the engine owns it now): answer with what we know.
    if p.status != PaymentStatus::Pending || p.expires_at <= now {
        return Ok(p);
    }
    let Some(tokens) = tokens else {
        // Known, still pending, and these tokens no longer open: the engine finishes it.
        return Ok(p);
    };
    if !inserted {
        app.db.step(&p.payment_id, "pay", "sent", now).await?;
    }
    crate::util::crash_point("pay-recorded");
    send_agreement_pay(app, &p, wallet, money, &tokens, None, record).await
}

/// Waits for a payment's record made durable side by side with its AMS call (`None`:
/// nothing to wait for). Crash tests hold the wait back (`pay-answered-unsynced`) or
/// fail it (`pay-record-fails`).
async fn record_durable(app: &App, record: Option<store::Unsynced<'_>>) -> Result<()> {
    let Some(record) = record else {
        return Ok(());
    };
    if crate::util::armed("pay-answered-unsynced") {
        // Never synced: the crash point after the AMS answer ends the process first.
        std::future::pending::<()>().await;
    }
    if crate::util::armed("pay-record-fails") {
        return Err(store::StoreError::Sync {
            path: "(fault point pay-record-fails)".into(),
            source: std::io::Error::other("fault point"),
        }
        .into());
    }
    Ok(record.durable(&app.db).await?)
}

/// Sends the agreement pay of a pending payment whose "sent" step is recorded, applies a
/// final answer once, and hands an unknown one to the engine. `merchant`: the seller
/// paid (`order.merchant`), for a part of a combined checkout. `record`: the payment's
/// record, committed but not yet known to be durable: the wait for it runs side by side
/// with the AMS call, and the answer is applied only once both are done (D34). If that
/// wait fails, nothing of the answer is applied and the error is returned (the device
/// retries the same order, and the engine inquires the payment after its in-flight
/// grace): no one hears of a payment whose record is not known to be durable. Returns
/// the payment as it is afterwards.
pub async fn send_agreement_pay(
    app: &App,
    p: &PaymentRow,
    wallet: Wallet,
    money: Money,
    tokens: &TokenSet,
    merchant: Option<scanbind_ams::model::Merchant>,
    record: Option<store::Unsynced<'_>>,
) -> Result<PaymentRow> {
    send_agreement_pay_at(app, p, wallet, money, tokens, merchant, record, 0).await
}

/// [`send_agreement_pay`] with `paymentExpiryTime` moved by `clock_offset_ms`: a
/// subscription charge made on the sandbox's clock (`subscriptions.clock = "sandbox"`)
/// states its expiry on that clock.
#[allow(clippy::too_many_arguments)]
pub async fn send_agreement_pay_at(
    app: &App,
    p: &PaymentRow,
    wallet: Wallet,
    money: Money,
    tokens: &TokenSet,
    merchant: Option<scanbind_ams::model::Merchant>,
    record: Option<store::Unsynced<'_>>,
    clock_offset_ms: i64,
) -> Result<PaymentRow> {
    let prid = p.payment_request_id.clone();
    let mut order = Order::new(&p.payment_id, &p.description, money.to_amount());
    order.env = Some(scanbind_ams::model::Env::web());
    order.merchant = merchant;
    let mut ams_req = PayRequest::agreement(
        &prid,
        order,
        money.to_amount(),
        wallet,
        tokens.access_token.clone(),
    );
    ams_req.payment_expiry_time = Some(ams_datetime(p.expires_at.saturating_add(clock_offset_ms)));
    ams_req.payment_notify_url = Some(app.notify_url("payment"));
    let call = async {
        let answer = until_final(app, p, ams_call(app, &ams_req)).await;
        crate::util::crash_point("pay-answered-unsynced");
        crate::util::crash_point("pay-sent-unrecorded");
        answer
    };
    let (durable, answer) = tokio::join!(record_durable(app, record), call);
    if let Err(e) = durable {
        warn!(payment = %p.payment_id, cause = %e, "the payment's record is not known to be on the disk: its AMS answer is not applied (the device's retry and the engine's inquiry learn it again)");
        return Err(e);
    }
    let Some(answer) = answer? else {
        // Made final meanwhile (by `notifyPayment` or another replica's inquiry): the
        // call and its retries are dropped, so no late `pay` follows the result.
        app.db
            .step(&p.payment_id, "pay", "superseded", now_ms())
            .await?;
        return load_payment(app, &p.payment_id)
            .await?
            .ok_or_else(|| Error::api(ErrorCode::Internal, "payment vanished"));
    };
    match answer {
        Ok(resp) => {
            crate::util::crash_point("pay-answered");
            let r = resp.result();
            let answer = format!("{}/{}", r.result_status, r.result_code.as_str());
            let fin = match r.result_status {
                // The answer's step commits with the final state (one durable commit).
                ResultStatus::S => Some((PaymentStatus::Succeeded, None, None)),
                ResultStatus::F => Some((
                    PaymentStatus::Failed,
                    Some(r.result_code.as_str()),
                    r.result_message.as_deref(),
                )),
                _ => None,
            };
            match fin {
                Some((status, code, message)) => {
                    let paid = with_conversion(
                        p,
                        conversion_from(
                            p,
                            resp.actual_payment_amount.as_ref(),
                            resp.payment_quote.as_ref(),
                        ),
                    );
                    if let Some(done) = transition_loaded(
                        app,
                        &paid,
                        PaymentStatus::Pending,
                        status,
                        code,
                        message,
                        resp.payment_id.as_deref(),
                        Some(("pay", &answer)),
                    )
                    .await?
                    {
                        crate::util::crash_point("pay-settled");
                        return Ok(done);
                    }
                }
                None => {
                    app.db.step(&p.payment_id, "pay", &answer, now_ms()).await?;
                    schedule_inquiry(
                        app,
                        &p.payment_id,
                        Some(r.result_code.as_str()),
                        resp.payment_id.as_deref(),
                    )
                    .await?
                }
            }
        }
        Err(e) => {
            warn!(payment = %p.payment_id, cause = %e, "pay outcome unknown; inquiring");
            app.db
                .step(&p.payment_id, "pay", "no answer", now_ms())
                .await?;
            schedule_inquiry(app, &p.payment_id, None, None).await?;
        }
    }
    load_payment(app, &p.payment_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "payment vanished"))
}

/// Runs `call` (an AMS call for pending payment `p`, with its retries) until it answers or
/// `p` becomes final by another path, whichever comes first: `None` in the second case,
/// the call then dropped. A final result learned from `notifyPayment` while the call
/// waits between two attempts (a `U` answer or a broken response signature is retried
/// with the same `paymentRequestId`) ends the call, so no `pay` is sent after the
/// result. Watches the event hub's wake-ups of `p`'s device (every replica's, on
/// PostgreSQL) and reads the payment's status on each.
async fn until_final<T>(
    app: &App,
    p: &PaymentRow,
    call: impl std::future::Future<Output = T>,
) -> Result<Option<T>> {
    use tokio::sync::broadcast::error::RecvError;
    let mut woken = app.hub.subscribe();
    let mut watching = true;
    tokio::pin!(call);
    loop {
        tokio::select! {
            out = &mut call => return Ok(Some(out)),
            w = woken.recv(), if watching => {
                let look = match w {
                    Ok(device) => device == p.device_id,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => {
                        watching = false;
                        false
                    }
                };
                if look
                    && load_payment(app, &p.payment_id)
                        .await?
                        .is_some_and(|now| now.status != PaymentStatus::Pending)
                {
                    return Ok(None);
                }
            }
        }
    }
}

/// `POST /v1/payments/order-code`: an Order Code payment. Alipay's `S` here only means
/// the order QR code was issued; the result comes by `notifyPayment` or inquiry.
pub async fn pay_order_code(
    app: &App,
    device_id: &str,
    req: &scanbind_device_api::types::OrderCodePayRequest,
) -> Result<PaymentRow> {
    check_text(
        "appId",
        &req.app_id,
        scanbind_device_api::limits::MAX_APP_ID,
    )?;
    check_text(
        "appOrderId",
        &req.app_order_id,
        scanbind_device_api::limits::MAX_APP_ORDER_ID,
    )?;
    check_text(
        "description",
        &req.description,
        scanbind_device_api::limits::MAX_DESCRIPTION,
    )?;
    let money = check_amount(&req.amount, None)?;
    let currency = money.currency();
    let prid = crate::util::payment_request_id(device_id, &req.app_id, &req.app_order_id);
    let now = now_ms();
    let payment_id = new_id("pay");
    let expires = now + app.config.order_code.expiry_seconds * 1000;
    let grace = i64::try_from(app.config.payments.in_flight_grace_ms).unwrap_or(i64::MAX);
    store::payments::insert_order_code(
        &app.db,
        &NewPayment {
            payment_id: &payment_id,
            payment_request_id: &prid,
            device_id,
            app_id: &req.app_id,
            app_order_id: &req.app_order_id,
            binding_id: None,
            wallet: "CONNECT_WALLET",
            currency: currency.code(),
            amount: money.minor().get(),
            description: &req.description,
            expires_at: expires,
            next_action_at: now.saturating_add(grace),
            now,
        },
    )
    .await?;
    let p = load_payment_by_request(app, &prid)
        .await?
        .ok_or_else(order_id_taken)?;
    if p.product != Product::OrderCode
        || p.amount != money.minor().get()
        || p.currency != currency.code()
        || p.description != req.description
    {
        return Err(Error::api(
            ErrorCode::IdempotencyConflict,
            "this app order id was used before with different parameters",
        ));
    }
    if p.status != PaymentStatus::Pending || p.expires_at <= now || p.code_value.is_some() {
        return Ok(p);
    }
    let oc = &app.config.order_code;
    let store = scanbind_ams::model::Store::new(&oc.store_id, &oc.store_name, &oc.merchant_mcc);
    let mut order = Order::new(&p.payment_id, &p.description, money.to_amount());
    order.merchant = Some(scanbind_ams::model::Merchant::new(
        app.ams.client_id(),
        &oc.merchant_mcc,
        &oc.merchant_name,
        store,
    ));
    let mut ams_req = PayRequest::order_code(&prid, order, money.to_amount());
    ams_req.payment_expiry_time = Some(ams_datetime(p.expires_at));
    ams_req.payment_notify_url = Some(app.notify_url("payment"));
    app.db.step(&p.payment_id, "pay", "sent", now).await?;
    match ams_call(app, &ams_req).await {
        Ok(resp) => {
            let r = resp.result();
            app.db
                .step(
                    &p.payment_id,
                    "pay",
                    &format!("{}/{}", r.result_status, r.result_code.as_str()),
                    now_ms(),
                )
                .await?;
            let code = resp
                .order_code_form
                .as_ref()
                .and_then(|f| f.qr_text())
                .map(str::to_owned);
            match (r.result_status.clone(), code) {
                (ResultStatus::F, _) => {
                    finalize_payment(
                        app,
                        &p.payment_id,
                        PaymentStatus::Failed,
                        Some(r.result_code.as_str()),
                        r.result_message.as_deref(),
                        resp.payment_id.as_deref(),
                    )
                    .await?;
                }
                (_, Some(code)) => {
                    store::payments::set_code_value(&app.db, &p.payment_id, &code).await?;
                    schedule_inquiry(app, &p.payment_id, None, resp.payment_id.as_deref()).await?;
                }
                _ => {
                    schedule_inquiry(
                        app,
                        &p.payment_id,
                        Some(r.result_code.as_str()),
                        resp.payment_id.as_deref(),
                    )
                    .await?;
                }
            }
        }
        Err(e) => {
            warn!(payment = %p.payment_id, cause = %e, "order-code pay outcome unknown; inquiring");
            schedule_inquiry(app, &p.payment_id, None, None).await?;
        }
    }
    load_payment(app, &p.payment_id)
        .await?
        .ok_or_else(|| Error::api(ErrorCode::Internal, "payment vanished"))
}

/// Hands a pending payment to the engine's inquiry loop.
pub async fn schedule_inquiry(
    app: &App,
    payment_id: &str,
    code: Option<&str>,
    ams_id: Option<&str>,
) -> Result<()> {
    store::payments::schedule_inquiry(
        &app.db,
        payment_id,
        now_ms() + super::inquiry_delay_ms(app, 0),
        code,
        ams_id,
        now_ms(),
    )
    .await?;
    app.engine_wake.notify_one();
    Ok(())
}

/// Moves a pending payment to a final status once: signs the receipt, stores it, emits
/// the event. Returns true if this call made the change.
pub async fn finalize_payment(
    app: &App,
    payment_id: &str,
    status: PaymentStatus,
    code: Option<&str>,
    message: Option<&str>,
    ams_id: Option<&str>,
) -> Result<bool> {
    transition_payment(
        app,
        payment_id,
        PaymentStatus::Pending,
        status,
        code,
        message,
        ams_id,
    )
    .await
}

/// Moves a payment from the state `from` to `status` with a new signed receipt, its step
/// and its device event in one transaction (e.g. `succeeded` → `cancelled` after a cancel,
/// which refunds the whole amount). False when the payment is not in `from`.
pub async fn transition_payment(
    app: &App,
    payment_id: &str,
    from: PaymentStatus,
    status: PaymentStatus,
    code: Option<&str>,
    message: Option<&str>,
    ams_id: Option<&str>,
) -> Result<bool> {
    let Some(p) = load_payment(app, payment_id).await? else {
        return Ok(false);
    };
    if p.status != from {
        return Ok(false);
    }
    Ok(
        transition_loaded(app, &p, from, status, code, message, ams_id, None)
            .await?
            .is_some(),
    )
}

/// [`transition_payment`] for a payment already read (`p`; its immutable fields are what
/// the receipt needs, and the `UPDATE ... WHERE status = from` decides). `step`, an AMS
/// answer to record, commits in the same transaction, whether or not the transition
/// happens. Returns the final row when this call made the change.
#[allow(clippy::too_many_arguments)]
pub async fn transition_loaded(
    app: &App,
    p: &PaymentRow,
    from: PaymentStatus,
    status: PaymentStatus,
    code: Option<&str>,
    message: Option<&str>,
    ams_id: Option<&str>,
    step: Option<(&str, &str)>,
) -> Result<Option<PaymentRow>> {
    let payment_id = p.payment_id.as_str();
    let part = checkout_part(app, p).await?;
    let receipt = Receipt {
        ver: 1,
        kind: ReceiptKind::Payment,
        iss: app.ams.client_id().to_owned(),
        iat: now_ms() / 1000,
        device_id: p.device_id.clone(),
        app_id: p.app_id.clone(),
        app_order_id: p.app_order_id.clone(),
        payment_id: p.payment_id.clone(),
        payment_request_id: p.payment_request_id.clone(),
        ams_payment_id: ams_id.map(str::to_owned).or(p.ams_payment_id.clone()),
        refund_id: None,
        refund_request_id: None,
        status: status.as_str().to_owned(),
        amount: Amount {
            currency: p.currency.clone(),
            value: p.amount,
        },
        conversion: p.conversion.clone(),
        result_code: code.map(str::to_owned),
        seller_id: part.as_ref().map(|(_, seller)| seller.clone()),
        checkout_id: part.as_ref().map(|(checkout, _)| checkout.clone()),
    };
    let jws = app.receipt_signer.sign(&receipt);
    let now = now_ms();
    let mut fin = p.clone();
    fin.status = status;
    fin.stage = PaymentStage::Done;
    fin.result_code = code.map(str::to_owned);
    fin.result_message = message.map(str::to_owned);
    fin.ams_payment_id = ams_id.map(str::to_owned).or(p.ams_payment_id.clone());
    fin.receipt = Some(jws.clone());
    fin.updated_at = now;
    // The last part of a checkout settles the checkout in its own final commit (D34).
    let settles = match &part {
        Some((checkout_id, _)) if from == PaymentStatus::Pending => {
            crate::domain::checkout::settled_by(app, checkout_id, &fin).await?
        }
        _ => None,
    };
    // The final state, its steps and its event commit together: a crash cannot leave a
    // final payment whose result the device never hears of.
    let mut tx = app.db.begin_durable().await?;
    if let Some((step, outcome)) = step {
        store::steps::insert(&mut tx, payment_id, step, outcome, now).await?;
    }
    let settled = store::payments::settle(
        &mut tx,
        payment_id,
        from,
        &Settlement {
            status,
            result_code: code,
            result_message: message,
            ams_payment_id: ams_id,
            receipt: &jws,
            conversion: p.conversion.as_ref(),
            now,
        },
    )
    .await?;
    if !settled {
        tx.rollback().await?;
        if let Some((step, outcome)) = step {
            // Someone else (usually the notification) made the payment final, durably;
            // this answer's step is history only: the relaxed pool (D19).
            store::steps::insert_relaxed(&app.db, payment_id, step, outcome, now).await?;
        }
        return Ok(None);
    }
    store::steps::insert_final(&mut tx, payment_id, status.as_str(), now).await?;
    crate::domain::events::EventHub::insert(
        &mut tx,
        &p.device_id,
        &Event::PaymentResult(payment_view(&fin)),
    )
    .await?;
    let mut finished = None;
    if let Some((c, checkout_status, view)) = settles
        && crate::domain::checkout::finish_in(&mut tx, &c, checkout_status, view, now).await?
    {
        finished = Some((c.checkout_id, checkout_status));
    }
    crate::domain::events::EventHub::notify_in(&mut tx, &p.device_id).await?;
    tx.commit().await?;
    app.hub.wake_local(&p.device_id);
    info!(payment = %payment_id, status = status.as_str(), "payment final");
    match (&part, finished) {
        (_, Some((checkout_id, checkout_status))) => {
            app.checkout_tokens.remove(&checkout_id);
            info!(checkout = %checkout_id, status = checkout_status.as_str(), "checkout final");
        }
        (Some((checkout_id, _)), None) => wake_checkout(app, checkout_id).await?,
        (None, None) => {}
    }
    Ok(Some(fin))
}
