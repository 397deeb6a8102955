//! Settling a payment: the journal commit first, then one announcement through the
//! `Publisher`; a final order code is taken off the display. Fakes from
//! `domain::testing`; no bus, keyring or server.

use std::sync::Arc;

use scanbind_ipc::ErrorInfo;
use scanbind_ipc::paths::payment_path;
use scanbind_money::Money;

use super::settle_payment;
use crate::domain::shared::Shared;
use crate::domain::testing::{self, Announced, Display};
use crate::store::journal::{Entry, JournalState, NewPayment, Recorded, Transition};

/// Records a payment and marks it `sent`, as admission does.
async fn sent(shared: &Shared, order_id: &'static str, order_code: bool) -> Entry {
    shared
        .journal(move |j| {
            let recorded = j.record(&NewPayment {
                owner: &testing::app_owner(),
                order_id,
                amount: Money::from_minor(scanbind_money::Currency::HKD, 4900).unwrap(),
                description: "Coins",
                binding: if order_code { "" } else { "b1" },
                line_items: None,
                order_code,
                budgets: &[],
                checkout: None,
            })?;
            let Recorded::New(entry) = recorded else {
                panic!("a new order");
            };
            j.mark_sent(entry.id)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_result_is_committed_then_announced_once() {
    let (display, announced) = (Display::answering(None), Arc::new(Announced::default()));
    let (_dir, shared) = testing::daemon(None, Arc::clone(&display), Arc::clone(&announced));
    let id = sent(&shared, "o1", false).await.id;

    settle_payment(&shared, id, Transition::Succeeded("receipt".into()))
        .await
        .unwrap();
    let entry = shared.journal(move |j| j.get(id)).await.unwrap();
    assert_eq!(entry.state, JournalState::Succeeded);
    assert_eq!(entry.receipt.as_deref(), Some("receipt"));
    assert_eq!(announced.payments(), [(id, JournalState::Succeeded, true)]);

    // "Outcome unknown" after the result arrived (a request that failed late): the
    // result stands, and nothing is announced as changed.
    settle_payment(&shared, id, Transition::PendingUnknown)
        .await
        .unwrap();
    let entry = shared.journal(move |j| j.get(id)).await.unwrap();
    assert_eq!(entry.state, JournalState::Succeeded);
    assert_eq!(
        announced.payments(),
        [
            (id, JournalState::Succeeded, true),
            (id, JournalState::Succeeded, false)
        ]
    );
    assert!(display.dismissed().is_empty(), "not an order code");
}

#[tokio::test]
async fn a_final_order_code_is_taken_off_the_display() {
    let (display, announced) = (Display::answering(None), Arc::new(Announced::default()));
    let (_dir, shared) = testing::daemon(None, Arc::clone(&display), Arc::clone(&announced));
    let id = sent(&shared, "o1", true).await.id;
    shared
        .journal(move |j| j.set_order_code(id, "https://qr.example/o1", 0))
        .await
        .unwrap();

    let why = ErrorInfo {
        name: "io.scanbind.Daemon1.Error.ServerError".into(),
        message: "declined".into(),
    };
    settle_payment(&shared, id, Transition::Failed(why))
        .await
        .unwrap();
    assert_eq!(
        display.dismissed(),
        [(payment_path(id.unsigned_abs()).to_string(), "failed")]
    );
    assert_eq!(announced.payments(), [(id, JournalState::Failed, true)]);
}
