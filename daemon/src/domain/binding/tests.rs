//! Settling and unbinding bindings: the record first, then the display and one
//! announcement. Fakes from `domain::testing`; no bus, keyring or server.

use std::sync::Arc;

use scanbind_ipc::BindingState;

use scanbind_ipc::types::keys::agent as keys;

use super::{settle_binding, unbind, unbind_confirmed};
use crate::domain::error::Refusal;
use crate::domain::testing::{self, Announced, Display, binding};
use crate::sync::lock;

#[tokio::test]
async fn a_settled_binding_leaves_the_display_and_is_announced_once() {
    let (display, announced) = (Display::answering(None), Arc::new(Announced::default()));
    let (_dir, shared) = testing::daemon(None, Arc::clone(&display), Arc::clone(&announced));
    let path = binding(&shared, "b1", "ALIPAY_HK", BindingState::Pending).to_string();

    assert!(
        settle_binding(&shared, "b1", BindingState::Bound, None, None)
            .await
            .unwrap()
    );
    let record = lock(&shared.bindings)["b1"].clone();
    assert_eq!(record.state, BindingState::Bound);
    assert!(record.code_value.is_empty(), "the QR code is spent");
    assert_eq!(display.dismissed(), [(path.clone(), "bound")]);
    assert_eq!(
        announced.bindings(),
        [(path.clone(), BindingState::Bound, None)]
    );

    // The same state again, or a late `expired`: no change, nothing announced.
    for state in [BindingState::Bound, BindingState::Expired] {
        assert!(
            !settle_binding(&shared, "b1", state, None, None)
                .await
                .unwrap()
        );
    }
    assert_eq!(announced.bindings().len(), 1);
    // A binding this run does not know.
    assert!(
        !settle_binding(&shared, "nope", BindingState::Bound, None, None)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn unbinding_a_pending_binding_abandons_it() {
    let (display, announced) = (Display::answering(None), Arc::new(Announced::default()));
    let (_dir, shared) = testing::daemon(None, Arc::clone(&display), Arc::clone(&announced));
    let path = binding(&shared, "b1", "ALIPAY_HK", BindingState::Pending);

    let other = scanbind_ipc::paths::binding_path("ALIPAY_HK", "nope");
    let e = unbind(&shared, &other, &testing::app_owner())
        .await
        .unwrap_err();
    assert!(matches!(e, Refusal::NotFound(_)), "{e:?}");

    unbind(&shared, &path, &testing::app_owner()).await.unwrap();
    assert_eq!(lock(&shared.bindings)["b1"].state, BindingState::Unbound);
    assert_eq!(
        announced.bindings(),
        [(
            path.to_string(),
            BindingState::Unbound,
            Some("unbound".into())
        )]
    );
    assert_eq!(display.dismissed(), [(path.to_string(), "unbound")]);
}

#[tokio::test]
async fn an_app_unbinds_only_with_the_users_confirmation() {
    let hostile = crate::store::journal::Owner {
        uid: 1000,
        app_id: "/usr/bin/hostile".into(),
    };
    for (answer, expect) in [(None, "NeedsConfirmation"), (Some(false), "Denied")] {
        let display = Display::answering(answer);
        let (_dir, shared) = testing::daemon(None, Arc::clone(&display), Arc::default());
        let path = binding(&shared, "b1", "ALIPAY_HK", BindingState::Pending);
        let e = unbind_confirmed(&shared, &path, &hostile)
            .await
            .unwrap_err();
        let name = match &e {
            Refusal::NeedsConfirmation(m) | Refusal::Denied(m) => {
                assert!(m.contains("not changed"), "{m}");
                if matches!(e, Refusal::Denied(_)) {
                    "Denied"
                } else {
                    "NeedsConfirmation"
                }
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(name, expect);
        assert_eq!(display.asked(), [keys::KIND_UNBIND]);
        assert!(
            display.messages()[0].contains("hostile"),
            "{:?}",
            display.messages()
        );
        assert_eq!(lock(&shared.bindings)["b1"].state, BindingState::Pending);
    }
    let display = Display::answering(Some(true));
    let (_dir, shared) = testing::daemon(None, Arc::clone(&display), Arc::default());
    let path = binding(&shared, "b1", "ALIPAY_HK", BindingState::Pending);
    unbind_confirmed(&shared, &path, &hostile).await.unwrap();
    assert_eq!(display.asked(), [keys::KIND_UNBIND]);
    assert_eq!(lock(&shared.bindings)["b1"].state, BindingState::Unbound);
}

#[tokio::test]
async fn declined_unbinds_run_out_without_a_question() {
    let display = Display::answering(Some(false));
    let (_dir, shared) = testing::daemon(None, Arc::clone(&display), Arc::default());
    let path = binding(&shared, "b1", "ALIPAY_HK", BindingState::Pending);
    let nag = testing::app_owner();
    for _ in 0..crate::domain::limits::MAX_UNAPPROVED_PROMPTS {
        let e = unbind_confirmed(&shared, &path, &nag).await.unwrap_err();
        assert!(matches!(e, Refusal::Denied(_)), "{e:?}");
    }
    let e = unbind_confirmed(&shared, &path, &nag).await.unwrap_err();
    assert!(matches!(e, Refusal::Busy(_)), "{e:?}");
    assert_eq!(
        display.asked().len(),
        crate::domain::limits::MAX_UNAPPROVED_PROMPTS,
        "nothing shown past the limit"
    );
    assert_eq!(lock(&shared.bindings)["b1"].state, BindingState::Pending);
}
