//! Unit tests of the payment, refund and checkout domain against a temporary SQLite
//! database. AMS is unreachable here (a closed local port): a call has no answer, which
//! is the "outcome unknown" path; everything else needs no AMS at all.

use std::sync::Arc;

use base64::Engine as _;
use scanbind_ams::PrivateKey;
use scanbind_ams::client::{Client, RetryPolicy};
use scanbind_ams::notify::NotificationVerifier;
use scanbind_device_api::Verifier;
use scanbind_device_api::receipt::{ReceiptKeySet, ReceiptSigner, verify_receipt};
use scanbind_device_api::types::{
    Amount, CheckoutStatus, Event, PayRequest, PaymentStatus, RefundStatus,
};
use tokio::sync::Notify;

use super::checkout::{self, TokenCache, checkout_view, load_checkout, load_parts};
use super::events::EventHub;
use super::payments::{finalize_payment, load_payment, pay, transition_payment};
use super::refunds::{finalize_refund, load_refund};
use super::seal::{Sealer, TokenSet};
use super::{App, AppState};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::bindings::{Activation, NewBinding};
use crate::store::checkouts::{NewCheckout, NewPart};
use crate::store::payments::NewPayment;
use crate::store::refunds::NewRefund;
use crate::store::{self, BindingState, CheckoutState, Db, PaymentStage, Product};
use crate::util::now_ms;

const DEVICE: &str = "dev_test";
const BINDING: &str = "bnd_test";

/// A server state over a fresh SQLite file in `dir`, its AMS at a closed port.
async fn app(dir: &tempfile::TempDir) -> App {
    let mut config = Config::default();
    config.ams.client_id = "TEST_CLIENT".into();
    config.ams.base_url = Some("http://127.0.0.1:9".into());
    config.ams.max_attempts = 1;
    let merchant = PrivateKey::from_text(include_str!(
        "../../../ams/tests/fixtures/vector_private_pkcs8.pem"
    ))
    .unwrap();
    let alipay = PrivateKey::from_text(include_str!(
        "../../../ams/tests/fixtures/other_rsa2048.pem"
    ))
    .unwrap()
    .public_key();
    let ams = Client::builder("TEST_CLIENT", Arc::new(merchant), alipay.clone())
        .retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let pem = crate::util::ed25519_pkcs8_pem().unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let receipt_signer = ReceiptSigner::from_pkcs8(&der).unwrap();
    let receipt_keys = ReceiptKeySet {
        keys: vec![receipt_signer.jwk()],
    };
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let db = Db::connect(&url, 4).await.unwrap();
    Arc::new(AppState {
        notify_verifier: NotificationVerifier::new("TEST_CLIENT", alipay),
        verifier: Verifier::with_window(300),
        config,
        hub: EventHub::new(db.clone()),
        db,
        ams,
        sealer: Sealer::new(&[[42_u8; 32]]).unwrap(),
        receipt_signer,
        receipt_keys,
        engine_wake: Notify::new(),
        public_base_url: "http://127.0.0.1:1".into(),
        public_path_prefix: String::new(),
        instance: "srv_test".into(),
        metrics: Metrics::default(),
        checkout_tokens: TokenCache::default(),
        renewals: crate::domain::subscriptions::Renewals::default(),
    })
}

/// A registered device with an active HKD (Alipay HK) binding; returns the sealed tokens
/// the device holds.
async fn device_with_binding(app: &App) -> String {
    let now = now_ms();
    assert!(
        store::devices::insert(&app.db, DEVICE, "key", "TV", "model", now)
            .await
            .unwrap()
    );
    store::bindings::insert(
        &app.db,
        &NewBinding {
            binding_id: BINDING,
            device_id: DEVICE,
            wallet: "ALIPAY_HK",
            auth_state: "as_test",
            match_code: "ABCDEF",
            code_value: "qr",
            expires_at: now + 60_000,
            now,
        },
    )
    .await
    .unwrap();
    assert!(
        store::bindings::claim_exchange(&app.db, BINDING, now)
            .await
            .unwrap()
    );
    let tokens = TokenSet {
        access_token: "access-token".to_owned().into(),
        refresh_token: None,
    };
    let sealed = app.sealer.seal(DEVICE, BINDING, &tokens).unwrap();
    store::bindings::activate(
        &app.db,
        BINDING,
        &Activation {
            token_fingerprint: "fp",
            user_login_id: None,
            access_token_expires_at: None,
            refresh_token_expires_at: None,
            sealed: &sealed,
            now,
        },
    )
    .await
    .unwrap();
    sealed
}

/// Records a pending agreement payment of 1000 HKD minor units.
async fn pending_payment(app: &App, payment_id: &str) {
    let now = now_ms();
    let mut tx = app.db.begin_durable().await.unwrap();
    let order = format!("order-{payment_id}");
    assert!(
        store::payments::insert_agreement(
            &mut tx,
            &NewPayment {
                payment_id,
                payment_request_id: &format!("sbp_{payment_id}"),
                device_id: DEVICE,
                app_id: "app",
                app_order_id: &order,
                binding_id: Some(BINDING),
                wallet: "ALIPAY_HK",
                currency: "HKD",
                amount: 1000,
                description: "tea",
                expires_at: now + 600_000,
                next_action_at: now + 600_000,
                now,
            },
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
}

async fn events(app: &App) -> Vec<Event> {
    app.hub
        .fetch(DEVICE, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[tokio::test]
async fn a_payment_becomes_final_once_with_its_receipt_step_and_event() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    device_with_binding(&app).await;
    pending_payment(&app, "pay_1").await;

    let made = finalize_payment(
        &app,
        "pay_1",
        PaymentStatus::Succeeded,
        None,
        None,
        Some("ams_1"),
    )
    .await
    .unwrap();
    assert!(made);
    // A second result (a late notification saying otherwise) changes nothing.
    let again = finalize_payment(
        &app,
        "pay_1",
        PaymentStatus::Failed,
        Some("USER_BALANCE_NOT_ENOUGH"),
        None,
        None,
    )
    .await
    .unwrap();
    assert!(!again);

    let p = load_payment(&app, "pay_1").await.unwrap().unwrap();
    assert_eq!(p.status, PaymentStatus::Succeeded);
    assert_eq!(p.stage, PaymentStage::Done);
    assert_eq!(p.ams_payment_id.as_deref(), Some("ams_1"));
    let receipt = verify_receipt(p.receipt.as_deref().unwrap(), &app.receipt_keys).unwrap();
    assert_eq!(receipt.status, "succeeded");
    assert_eq!(receipt.payment_id, "pay_1");
    assert_eq!(receipt.checkout_id, None);
    let steps = store::steps::of_subject(&app.db, "pay_1").await.unwrap();
    let finals: Vec<_> = steps.iter().filter(|s| s.step == "final").collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0].outcome, "succeeded");
    assert_eq!(
        store::steps::paid_at(&app.db, "pay_1").await.unwrap(),
        Some(finals[0].at)
    );
    let evs = events(&app).await;
    assert_eq!(evs.len(), 1);
    assert!(
        matches!(&evs[0], Event::PaymentResult(v) if v.status == PaymentStatus::Succeeded && v.order_code.is_none())
    );
}

#[tokio::test]
async fn a_transition_from_another_state_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    device_with_binding(&app).await;
    pending_payment(&app, "pay_2").await;
    let made = transition_payment(
        &app,
        "pay_2",
        PaymentStatus::Succeeded,
        PaymentStatus::Cancelled,
        Some("CANCELLED"),
        None,
        None,
    )
    .await
    .unwrap();
    assert!(!made);
    let p = load_payment(&app, "pay_2").await.unwrap().unwrap();
    assert_eq!(p.status, PaymentStatus::Pending);
    assert_eq!(p.stage, PaymentStage::Sending);
    assert!(events(&app).await.is_empty());
    // An unknown payment is no transition either.
    assert!(
        !finalize_payment(&app, "pay_nope", PaymentStatus::Failed, None, None, None)
            .await
            .unwrap()
    );
}

fn pay_request(sealed: &str, order: &str) -> PayRequest {
    PayRequest {
        binding_id: BINDING.into(),
        sealed_tokens: sealed.into(),
        app_id: "app".into(),
        app_order_id: order.into(),
        amount: Amount {
            currency: "HKD".into(),
            value: 1500,
        },
        description: "noodles".into(),
    }
}

#[tokio::test]
async fn a_pay_without_an_answer_is_recorded_and_handed_to_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let sealed = device_with_binding(&app).await;
    let p = pay(&app, DEVICE, &pay_request(&sealed, "o-1"))
        .await
        .unwrap();
    assert_eq!(p.status, PaymentStatus::Pending);
    assert_eq!(p.stage, PaymentStage::Inquiring);
    assert_eq!(p.product, Product::Agreement);
    assert_eq!(p.amount, 1500);
    let outcomes: Vec<String> = store::steps::of_subject(&app.db, &p.payment_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| format!("{}/{}", s.step, s.outcome))
        .collect();
    assert_eq!(outcomes, ["pay/sent", "pay/no answer"]);
    // The same order again is the same payment; another amount for it is a conflict.
    let again = pay(&app, DEVICE, &pay_request(&sealed, "o-1"))
        .await
        .unwrap();
    assert_eq!(again.payment_id, p.payment_id);
    let mut other = pay_request(&sealed, "o-1");
    other.amount.value = 1600;
    let err = pay(&app, DEVICE, &other).await.unwrap_err();
    assert_eq!(
        err.code(),
        scanbind_device_api::ErrorCode::IdempotencyConflict
    );
}

#[tokio::test]
async fn a_pay_with_tokens_that_do_not_open_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    device_with_binding(&app).await;
    let err = pay(&app, DEVICE, &pay_request("not-a-blob", "o-2"))
        .await
        .unwrap_err();
    assert_ne!(err.code(), scanbind_device_api::ErrorCode::Internal);
    let prid = crate::util::payment_request_id(DEVICE, "app", "o-2");
    assert!(
        store::payments::by_request(&app.db, &prid)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_refund_becomes_final_once_and_adds_to_the_refunded_total() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    device_with_binding(&app).await;
    pending_payment(&app, "pay_3").await;
    assert!(
        finalize_payment(&app, "pay_3", PaymentStatus::Succeeded, None, None, None)
            .await
            .unwrap()
    );
    let now = now_ms();
    store::refunds::insert(
        &app.db,
        &NewRefund {
            refund_request_id: "sbr_1",
            payment_id: "pay_3",
            refund_id: "r1",
            currency: "HKD",
            amount: 400,
            reason: None,
            next_action_at: now,
            now,
        },
    )
    .await
    .unwrap();
    assert!(
        finalize_refund(&app, "sbr_1", RefundStatus::Succeeded, None, Some("ams_r1"))
            .await
            .unwrap()
    );
    assert!(
        !finalize_refund(&app, "sbr_1", RefundStatus::Failed, Some("X"), None)
            .await
            .unwrap()
    );
    let r = load_refund(&app, "sbr_1").await.unwrap().unwrap();
    assert_eq!(r.status, RefundStatus::Succeeded);
    assert_eq!(r.ams_refund_id.as_deref(), Some("ams_r1"));
    let p = load_payment(&app, "pay_3").await.unwrap().unwrap();
    assert_eq!(p.refunded, 400);
    assert_eq!(super::refunds::refundable(&app, &p).await.unwrap(), 600);
    assert!(matches!(
        events(&app).await.last(),
        Some(Event::RefundResult(v)) if v.status == RefundStatus::Succeeded
    ));
}

/// Records a `paying` checkout of two queued parts, as `create` does before paying.
async fn open_checkout(app: &App, id: &str, all_or_nothing: bool, expires_at: i64) {
    let now = now_ms();
    let mut tx = app.db.begin_durable().await.unwrap();
    assert!(
        store::checkouts::insert(
            &mut tx,
            &NewCheckout {
                checkout_id: id,
                device_id: DEVICE,
                app_id: "app",
                app_order_id: id,
                binding_id: BINDING,
                currency: "HKD",
                total: 300,
                all_or_nothing,
                fingerprint: "fp",
                expires_at,
                lease_until: 0,
                lease_owner: "nobody",
                // A blob that does not open (as after the binding's revocation).
                sealed_tokens: "sbt1.does-not-open",
                now,
            },
        )
        .await
        .unwrap()
    );
    for i in 0..2_i64 {
        let payment_id = format!("{id}_part{i}");
        let order = format!("{id}#{i}");
        assert!(
            store::payments::insert_checkout_part(
                &mut tx,
                &NewPayment {
                    payment_id: &payment_id,
                    payment_request_id: &format!("sbc_{payment_id}"),
                    device_id: DEVICE,
                    app_id: "app",
                    app_order_id: &order,
                    binding_id: Some(BINDING),
                    wallet: "ALIPAY_HK",
                    currency: "HKD",
                    amount: 100 + 100 * i,
                    description: "part",
                    expires_at,
                    next_action_at: expires_at + 60_000,
                    now,
                },
                false,
            )
            .await
            .unwrap()
        );
        store::checkouts::insert_part(
            &mut tx,
            id,
            &NewPart {
                idx: i,
                payment_id: &payment_id,
                seller_id: "seller",
                seller_name: "Seller",
                seller_mcc: "5411",
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_checkout_whose_sealed_tokens_do_not_open_fails_its_unsent_parts() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    device_with_binding(&app).await;
    // All-or-nothing, no tokens in this process and a kept blob that does not open.
    open_checkout(&app, "chk_1", true, now_ms() + 600_000).await;
    assert!(checkout::lease(&app, "chk_1").await.unwrap());
    assert!(!checkout::lease(&app, "chk_1").await.unwrap());
    checkout::drive(&app, "chk_1").await.unwrap();

    let c = load_checkout(&app, "chk_1").await.unwrap().unwrap();
    assert_eq!(c.status, CheckoutState::Failed);
    assert!(!c.is_open());
    let parts = load_parts(&app, "chk_1").await.unwrap();
    let codes: Vec<_> = parts
        .iter()
        .map(|(_, p)| (p.status, p.stage, p.result_code.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        codes,
        [
            (
                PaymentStatus::Failed,
                PaymentStage::Done,
                "CHECKOUT_INTERRUPTED".to_owned()
            ),
            (
                PaymentStatus::Failed,
                PaymentStage::Done,
                "CHECKOUT_ABORTED".to_owned()
            ),
        ]
    );
    // Each part's receipt names its checkout and seller.
    for (_, p) in &parts {
        let r = verify_receipt(p.receipt.as_deref().unwrap(), &app.receipt_keys).unwrap();
        assert_eq!(r.checkout_id.as_deref(), Some("chk_1"));
        assert_eq!(r.seller_id.as_deref(), Some("seller"));
    }
    // Final: no lease to take any more, and the device heard of it once.
    assert!(!checkout::lease(&app, "chk_1").await.unwrap());
    let results: Vec<_> = events(&app)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::CheckoutResult(c) => Some(c.status),
            _ => None,
        })
        .collect();
    assert_eq!(results, [CheckoutStatus::Failed]);
}

#[tokio::test]
async fn an_expired_checkout_fails_its_unsent_parts_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    device_with_binding(&app).await;
    open_checkout(&app, "chk_2", false, now_ms() - 1).await;
    checkout::drive(&app, "chk_2").await.unwrap();
    let c = load_checkout(&app, "chk_2").await.unwrap().unwrap();
    assert_eq!(c.status, CheckoutState::Failed);
    for (_, p) in load_parts(&app, "chk_2").await.unwrap() {
        assert_eq!(p.result_code.as_deref(), Some("CHECKOUT_EXPIRED"));
    }
}

#[tokio::test]
async fn a_released_checkout_is_due_again_after_the_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    device_with_binding(&app).await;
    open_checkout(&app, "chk_3", true, now_ms() + 600_000).await;
    assert!(checkout::lease(&app, "chk_3").await.unwrap());
    checkout::release(&app, "chk_3").await.unwrap();
    let c = load_checkout(&app, "chk_3").await.unwrap().unwrap();
    assert_eq!(c.attempts, 1);
    assert_eq!(c.status, CheckoutState::Paying);
    // The lease is free again.
    assert!(checkout::lease(&app, "chk_3").await.unwrap());
}

#[tokio::test]
async fn the_device_sees_open_checkouts_as_pending() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    device_with_binding(&app).await;
    open_checkout(&app, "chk_4", false, now_ms() + 600_000).await;
    let mut c = load_checkout(&app, "chk_4").await.unwrap().unwrap();
    let parts = load_parts(&app, "chk_4").await.unwrap();
    for (state, seen) in [
        (CheckoutState::Paying, CheckoutStatus::Pending),
        (CheckoutState::Reversing, CheckoutStatus::Pending),
        (CheckoutState::Succeeded, CheckoutStatus::Succeeded),
        (
            CheckoutState::PartiallySucceeded,
            CheckoutStatus::PartiallySucceeded,
        ),
        (CheckoutState::Failed, CheckoutStatus::Failed),
    ] {
        c.status = state;
        let v = checkout_view(&c, &parts);
        assert_eq!(v.status, seen);
        assert_eq!(v.parts.len(), 2);
        assert_eq!(v.parts[1].amount_minor, 200);
    }
}

#[tokio::test]
async fn a_binding_in_exchange_shows_as_pending_and_expires_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let now = now_ms();
    store::devices::insert(&app.db, DEVICE, "key", "TV", "", now)
        .await
        .unwrap();
    store::bindings::insert(
        &app.db,
        &NewBinding {
            binding_id: "bnd_x",
            device_id: DEVICE,
            wallet: "ALIPAY_HK",
            auth_state: "as_x",
            match_code: "ABCDEF",
            code_value: "qr",
            expires_at: now - 1,
            now,
        },
    )
    .await
    .unwrap();
    store::bindings::claim_exchange(&app.db, "bnd_x", now)
        .await
        .unwrap();
    let b = super::bindings::load_binding(&app, "bnd_x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.status, BindingState::Exchanging);
    assert_eq!(
        super::bindings::binding_view(&b).status,
        scanbind_device_api::types::BindingStatus::Pending
    );
    store::bindings::unclaim_exchange(&app.db, "bnd_x")
        .await
        .unwrap();
    let b = super::bindings::load_binding(&app, "bnd_x")
        .await
        .unwrap()
        .unwrap();
    for _ in 0..2 {
        super::bindings::set_binding_final(&app, &b, BindingState::Expired, "too late")
            .await
            .unwrap();
    }
    let b = super::bindings::load_binding(&app, "bnd_x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.status, BindingState::Expired);
    let expired = events(&app)
        .await
        .into_iter()
        .filter(|e| matches!(e, Event::BindingExpired(_)))
        .count();
    assert_eq!(expired, 1);
}

#[test]
fn idr_amounts_must_end_in_00() {
    let idr = |value| Amount {
        currency: "IDR".into(),
        value,
    };
    let money = super::check_amount(&idr(30_000), Some(scanbind_ams::Currency::IDR)).unwrap();
    assert_eq!(money.minor().get(), 30_000);
    let err = super::check_amount(&idr(30_050), Some(scanbind_ams::Currency::IDR)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("last two digits must be 00"), "{text}");
    assert!(matches!(
        err,
        crate::error::Error::Api {
            code: scanbind_device_api::ErrorCode::AmountInvalid,
            ..
        }
    ));
}

/// A payment of USD 10.00 from an Alipay HK (HKD) wallet, as the store returns it.
fn usd_payment_from_an_hkd_wallet() -> store::PaymentRow {
    store::PaymentRow {
        payment_id: "pay_usd".into(),
        payment_request_id: "prid".into(),
        device_id: DEVICE.into(),
        app_id: "a".into(),
        app_order_id: "o".into(),
        product: Product::Agreement,
        binding_id: Some(BINDING.into()),
        wallet: "ALIPAY_HK".into(),
        code_value: None,
        currency: "USD".into(),
        amount: 1000,
        description: "x".into(),
        status: PaymentStatus::Pending,
        stage: PaymentStage::Sending,
        result_code: None,
        result_message: None,
        ams_payment_id: None,
        refunded: 0,
        receipt: None,
        conversion: None,
        expires_at: 0,
        next_action_at: 0,
        attempts: 0,
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn a_reported_conversion_is_kept_only_when_it_matches_the_payment() {
    use super::payments::conversion_from;
    let p = usd_payment_from_an_hkd_wallet();
    let paid = |currency: &str, value: &str| scanbind_ams::money::Amount {
        currency: currency.into(),
        value: value.into(),
    };
    let quote = |pair: &str, price: &str| -> scanbind_ams::model::Quote {
        serde_json::from_value(serde_json::json!({"quoteCurrencyPair": pair, "quotePrice": price}))
            .unwrap()
    };
    // The sandbox's answer: USD 10.00 at 7.82608695 = HKD 78.26, rounded down.
    let kept = conversion_from(
        &p,
        Some(&paid("HKD", "7826")),
        Some(&quote("USD/HKD", "7.82608695")),
    )
    .expect("a consistent conversion is kept");
    assert_eq!(
        (
            kept.paid.currency.as_str(),
            kept.paid.value,
            kept.quote_price.as_str()
        ),
        ("HKD", 7826, "7.82608695")
    );
    // Rounded up instead (another gateway's rounding): still the same price.
    assert!(
        conversion_from(
            &p,
            Some(&paid("HKD", "7827")),
            Some(&quote("USD/HKD", "7.82608695"))
        )
        .is_some()
    );
    // Forged or inconsistent answers are not recorded.
    for (what, amount, q) in [
        (
            "more than the price gives",
            paid("HKD", "7900"),
            Some(quote("USD/HKD", "7.82608695")),
        ),
        (
            "less than the price gives",
            paid("HKD", "7000"),
            Some(quote("USD/HKD", "7.82608695")),
        ),
        (
            "a price changed to match a forged amount's pair",
            paid("HKD", "7826"),
            Some(quote("USD/HKD", "8.5")),
        ),
        (
            "another currency than the wallet's",
            paid("CNY", "7230"),
            Some(quote("USD/CNY", "7.23")),
        ),
        (
            "the pair reversed",
            paid("HKD", "7826"),
            Some(quote("HKD/USD", "7.82608695")),
        ),
        (
            "not a decimal price",
            paid("HKD", "7826"),
            Some(quote("USD/HKD", "7.8e0")),
        ),
        (
            "a negative price",
            paid("HKD", "7826"),
            Some(quote("USD/HKD", "-7.82608695")),
        ),
        ("no quote", paid("HKD", "7826"), None),
        (
            "a zero amount",
            paid("HKD", "0"),
            Some(quote("USD/HKD", "0")),
        ),
        (
            "not an amount",
            paid("HKD", "78.26"),
            Some(quote("USD/HKD", "7.82608695")),
        ),
        (
            "not a currency",
            paid("XXY", "7826"),
            Some(quote("USD/XXY", "7.82608695")),
        ),
    ] {
        assert_eq!(
            conversion_from(&p, Some(&amount), q.as_ref()),
            None,
            "{what}"
        );
    }
    // Paid in the payment's own currency: no conversion at all.
    assert_eq!(conversion_from(&p, Some(&paid("USD", "1000")), None), None);
}
