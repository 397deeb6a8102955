//! Settling and unbinding bindings: the record first, then the display and one
//! announcement. Fakes from `domain::testing`; no bus, keyring or server.

use std::sync::Arc;

use scanbind_ipc::BindingState;

use super::{settle_binding, unbind};
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
