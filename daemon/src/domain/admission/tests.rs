//! Admission of a `Pay` against a real journal (in a temporary directory), with fakes
//! for the display and the announcements (`domain::testing`); nothing here needs a
//! bus, a keyring or a server.

use std::sync::Arc;

use scanbind_ipc::BindingState;
use scanbind_ipc::types::Connectivity;
use scanbind_ipc::types::keys::agent as k;
use scanbind_money::{Currency, MinorUnits, Money};
use zvariant::OwnedObjectPath;

use super::{Admitted, PayRequest, admit};
use crate::domain::error::Refusal;
use crate::domain::shared::Shared;
use crate::domain::testing::{self, Display, binding};
use crate::store::journal::{Entry, JournalState, Owner};
use crate::sync::lock;

/// Records a bound `wallet` binding.
fn bind(shared: &Shared, id: &str, wallet: &str) -> OwnedObjectPath {
    binding(shared, id, wallet, BindingState::Bound)
}

/// A daemon's state with `policy` and `display`.
fn daemon(policy: Option<&str>, display: Arc<Display>) -> (tempfile::TempDir, Arc<Shared>) {
    testing::daemon(policy, display, Arc::default())
}

fn hkd(minor: i64) -> Money {
    Money::new(Currency::HKD, MinorUnits::new(minor).unwrap())
}

fn pay(order_id: &str, minor: i64) -> PayRequest {
    PayRequest {
        owner: testing::app_owner(),
        order_id: order_id.into(),
        amount: hkd(minor),
        description: "Coins".into(),
        binding: None,
        order_code: false,
        line_items: None,
        checkout: None,
    }
}

async fn recorded(shared: &Shared) -> Vec<Entry> {
    shared
        .journal(|j| j.list_for_app(&testing::app_owner(), false, 100))
        .await
        .unwrap()
}

#[tokio::test]
async fn no_bound_wallet_is_not_bound_and_records_nothing() {
    let (_dir, shared) = daemon(None, Display::answering(None));
    let e = admit(&shared, pay("o1", 4900)).await.unwrap_err();
    assert!(matches!(e, Refusal::NotBound(_)), "{e:?}");
    assert!(recorded(&shared).await.is_empty());
}

#[tokio::test]
async fn a_new_order_is_recorded_sent_and_the_same_order_is_the_same_payment() {
    let (_dir, shared) = daemon(None, Display::answering(None));
    bind(&shared, "b1", "ALIPAY_HK");
    let Admitted::New(first) = admit(&shared, pay("o1", 4900)).await.unwrap() else {
        panic!("a new order is new");
    };
    assert_eq!(first.state, JournalState::Sent);
    assert_eq!(first.binding, "b1");
    let Admitted::Existing(again) = admit(&shared, pay("o1", 4900)).await.unwrap() else {
        panic!("the same order is the same payment");
    };
    assert_eq!(again.id, first.id);
    let e = admit(&shared, pay("o1", 5000)).await.unwrap_err();
    assert!(
        matches!(
            e,
            Refusal::Failed(crate::error::Error::OrderConflict { .. })
        ),
        "{e:?}"
    );
    assert_eq!(recorded(&shared).await.len(), 1);
}

#[tokio::test]
async fn the_binding_is_chosen_and_the_wallet_limits_apply() {
    let (_dir, shared) = daemon(None, Display::answering(None));
    let hk = bind(&shared, "b1", "ALIPAY_HK");
    bind(&shared, "b2", "ALIPAY_CN");
    let e = admit(&shared, pay("o1", 4900)).await.unwrap_err();
    assert!(matches!(e, Refusal::InvalidArgument(_)), "two bound: {e:?}");
    let named = |order: &str, minor: i64, binding: Option<OwnedObjectPath>| PayRequest {
        binding,
        ..pay(order, minor)
    };
    let unknown = scanbind_ipc::paths::binding_path("ALIPAY_HK", "nope");
    let e = admit(&shared, named("o1", 4900, Some(unknown)))
        .await
        .unwrap_err();
    assert!(matches!(e, Refusal::NotFound(_)), "{e:?}");
    let e = admit(&shared, named("o2", 5_000_001, Some(hk.clone())))
        .await
        .unwrap_err();
    assert!(matches!(e, Refusal::AboveLimit(_)), "{e:?}");
    let e = admit(
        &shared,
        PayRequest {
            order_code: true,
            ..named("o3", 4900, Some(hk.clone()))
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Refusal::InvalidArgument(_)), "{e:?}");
    assert!(recorded(&shared).await.is_empty());
    let admitted = admit(&shared, named("o4", 4900, Some(hk))).await.unwrap();
    assert!(matches!(admitted, Admitted::New(e) if e.binding == "b1"));
}

#[tokio::test]
async fn offline_refuses_a_new_order_but_returns_a_known_one() {
    let (_dir, shared) = daemon(None, Display::answering(None));
    bind(&shared, "b1", "ALIPAY_HK");
    let Admitted::New(first) = admit(&shared, pay("o1", 4900)).await.unwrap() else {
        panic!("new");
    };
    *lock(&shared.connectivity) = Connectivity::Offline;
    let e = admit(&shared, pay("o2", 4900)).await.unwrap_err();
    assert!(matches!(e, Refusal::Offline(_)), "{e:?}");
    let known = admit(&shared, pay("o1", 4900)).await.unwrap();
    assert!(matches!(known, Admitted::Existing(e) if e.id == first.id));
}

const CONFIRM: &str = "[apps.\"/usr/bin/game\"]\nconfirm = true\n";

#[tokio::test]
async fn a_charge_the_policy_wants_confirmed_is_asked_on_the_display() {
    // The user says no: refused, nothing recorded.
    let display = Display::answering(Some(false));
    let (_dir, shared) = daemon(Some(CONFIRM), Arc::clone(&display));
    bind(&shared, "b1", "ALIPAY_HK");
    let e = admit(&shared, pay("o1", 4900)).await.unwrap_err();
    assert!(matches!(e, Refusal::Denied(_)), "{e:?}");
    assert_eq!(display.asked(), [k::KIND_PAYMENT]);
    assert!(recorded(&shared).await.is_empty());

    // No display: the app is told a confirmation is needed.
    let (_dir, shared) = daemon(Some(CONFIRM), Display::answering(None));
    bind(&shared, "b1", "ALIPAY_HK");
    let e = admit(&shared, pay("o1", 4900)).await.unwrap_err();
    assert!(matches!(e, Refusal::NeedsConfirmation(_)), "{e:?}");

    // Yes: recorded.
    let display = Display::answering(Some(true));
    let (_dir, shared) = daemon(Some(CONFIRM), Arc::clone(&display));
    bind(&shared, "b1", "ALIPAY_HK");
    assert!(matches!(
        admit(&shared, pay("o1", 4900)).await.unwrap(),
        Admitted::New(_)
    ));
    assert_eq!(display.asked(), [k::KIND_PAYMENT]);
    assert_eq!(recorded(&shared).await.len(), 1);
}

#[tokio::test]
async fn a_blocked_app_is_refused_by_the_policy_without_a_prompt() {
    let display = Display::answering(Some(true));
    let (_dir, shared) = daemon(
        Some("[apps.\"/usr/bin/game\"]\nallow = false\n"),
        Arc::clone(&display),
    );
    bind(&shared, "b1", "ALIPAY_HK");
    let e = admit(&shared, pay("o1", 4900)).await.unwrap_err();
    assert!(
        matches!(&e, Refusal::Policy(scanbind_ipc::Error::NotAllowed(_))),
        "{e:?}"
    );
    assert!(display.asked().is_empty());
    assert!(recorded(&shared).await.is_empty());
}

const ASK: &str = "unknown_apps = \"ask\"\n[consent.limits.HKD]\ndaily = 5000\n";

/// [`pay`] by the app run as `uid`.
fn pay_as(uid: u32, order_id: &str, minor: i64) -> PayRequest {
    PayRequest {
        owner: Owner {
            uid,
            app_id: testing::APP.into(),
        },
        ..pay(order_id, minor)
    }
}

#[tokio::test]
async fn a_consent_is_one_users_and_so_is_its_budget() {
    let display = Display::answering(Some(true));
    let (dir, shared) = testing::daemon_with_consents(Some(ASK), Arc::clone(&display));
    bind(&shared, "b1", "ALIPAY_HK");
    // User 1001's first charge asks; the next does not.
    let first = admit(&shared, pay_as(1001, "o1", 4900)).await.unwrap();
    assert!(matches!(first, Admitted::New(_)), "{first:?}");
    assert_eq!(display.asked(), [k::KIND_CONSENT]);
    let next = admit(&shared, pay_as(1001, "o2", 100)).await.unwrap();
    assert!(matches!(next, Admitted::New(_)), "{next:?}");
    assert_eq!(display.asked(), [k::KIND_CONSENT]);
    // The same app run by another user is asked too, and has a budget of its own.
    let other = admit(&shared, pay_as(1002, "o1", 4900)).await.unwrap();
    assert!(matches!(other, Admitted::New(_)), "{other:?}");
    assert_eq!(display.asked(), [k::KIND_CONSENT, k::KIND_CONSENT]);
    // The consent's daily 50.00: 1001 has spent it all, 1002 has 1.00 left.
    let e = admit(&shared, pay_as(1001, "o3", 100)).await.unwrap_err();
    assert!(matches!(e, Refusal::AboveLimit(_)), "{e:?}");
    let last = admit(&shared, pay_as(1002, "o2", 100)).await.unwrap();
    assert!(matches!(last, Admitted::New(_)), "{last:?}");
    // Kept in the daemon's consents file; the policy file is not written.
    let consents = std::fs::read_to_string(dir.path().join("consents.toml")).unwrap();
    assert!(
        consents.contains("uid = 1001") && consents.contains("uid = 1002"),
        "{consents}"
    );
    let policy = std::fs::read_to_string(dir.path().join("policy.toml")).unwrap();
    assert_eq!(policy, ASK);
}

#[tokio::test]
async fn without_a_consents_file_another_users_consent_is_not_kept_for_everyone() {
    let display = Display::answering(Some(true));
    let (dir, shared) = daemon(Some(ASK), Arc::clone(&display));
    bind(&shared, "b1", "ALIPAY_HK");
    let other = crate::store::journal::own_uid().wrapping_add(1);
    let e = admit(&shared, pay_as(other, "o1", 100)).await.unwrap_err();
    assert!(matches!(e, Refusal::Internal(_)), "{e:?}");
    assert_eq!(display.asked(), [k::KIND_CONSENT]);
    let policy = std::fs::read_to_string(dir.path().join("policy.toml")).unwrap();
    assert_eq!(policy, ASK);
    assert!(
        shared
            .journal(|j| j.open_entries())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_consent_prompt_names_the_daily_limit_or_says_there_is_none() {
    // HKD has a consent limit in ASK, CNY none (issue 22, item 7).
    let display = Display::answering(Some(false));
    let (_dir, shared) = testing::daemon_with_consents(Some(ASK), Arc::clone(&display));
    bind(&shared, "b1", "ALIPAY_HK");
    let e = admit(&shared, pay_as(1001, "o1", 100)).await.unwrap_err();
    assert!(matches!(e, Refusal::Denied(_)), "{e:?}");
    bind(&shared, "b2", "ALIPAY_CN");
    let mut cny = pay_as(1001, "o2", 100);
    cny.amount = Money::new(Currency::CNY, MinorUnits::new(100).unwrap());
    cny.binding = Some(shared.binding_path_of("b2"));
    let e = admit(&shared, cny).await.unwrap_err();
    assert!(matches!(e, Refusal::Denied(_)), "{e:?}");
    let messages = display.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains(" up to HKD 50.00 a day?"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains(" with no daily limit?"),
        "{}",
        messages[1]
    );
}

#[tokio::test]
async fn declined_prompts_run_out_but_approved_ones_never_do() {
    use crate::domain::limits::MAX_UNAPPROVED_PROMPTS;
    // The user declines: after the limit the app is refused with Busy, nothing asked.
    let display = Display::answering(Some(false));
    let (_dir, shared) = daemon(Some(CONFIRM), Arc::clone(&display));
    bind(&shared, "b1", "ALIPAY_HK");
    for i in 0..MAX_UNAPPROVED_PROMPTS {
        let e = admit(&shared, pay(&format!("no-{i}"), 100))
            .await
            .unwrap_err();
        assert!(matches!(e, Refusal::Denied(_)), "{e:?}");
    }
    let e = admit(&shared, pay("one-more", 100)).await.unwrap_err();
    assert!(
        matches!(e, Refusal::Busy(ref m) if m.contains("without approval")),
        "{e:?}"
    );
    assert_eq!(display.asked().len(), MAX_UNAPPROVED_PROMPTS);
    assert!(recorded(&shared).await.is_empty());

    // One purchase at a time, each approved: never cut off.
    let display = Display::answering(Some(true));
    let (_dir, shared) = daemon(Some(CONFIRM), Arc::clone(&display));
    bind(&shared, "b1", "ALIPAY_HK");
    for i in 0..4 * MAX_UNAPPROVED_PROMPTS {
        assert!(matches!(
            admit(&shared, pay(&format!("yes-{i}"), 100)).await.unwrap(),
            Admitted::New(_)
        ));
    }
    assert_eq!(display.asked().len(), 4 * MAX_UNAPPROVED_PROMPTS);
}
