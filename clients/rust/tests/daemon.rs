//! The client against the real daemon: a private `dbus-daemon`, the session's
//! gnome-keyring, the development sandbox and merchant server, and `scanbindd` in this
//! process (the demo's embedded stack, `scanbind_demo::Embedded`), over the bus and
//! over the daemon's peer-to-peer socket.
//!
//! Needs `KEYRING_SS_TEST=1`: run it through `scripts/test`.

use std::time::Duration;

use futures_util::StreamExt as _;
use scanbind_client::money::{Currency, Money};
use scanbind_client::{
    BindOptions, BindingState, Client, Error, ListOptions, PayRequest, PaymentState, QrOptions,
    ReceiptVerifier, Transport,
};
use scanbind_demo::Embedded;
use scanbind_testkit::{PrivateBus, require_secret_service};

const GUARD: Duration = Duration::from_secs(60);

async fn guard<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {GUARD:?}"))
}

fn hkd(minor: i64) -> Money {
    Money::from_minor(Currency::from_code("HKD").unwrap(), minor).unwrap()
}

async fn scan(sandbox: &str, code: &str, decision: &str) {
    let r = scanbind_ams::client::http_client_builder(Vec::new())
        .unwrap()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{sandbox}/sandbox/v1/scan"))
        .json(&serde_json::json!({"codeValue": code, "decision": decision}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_pay_refund_restore_and_unbind() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let bus = PrivateBus::start(dir.path()).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let socket = dir.path().join("scanbindd.sock");
    let vault = format!("io.scanbind.Daemon.test.client.{}", std::process::id());
    // This test may register as the display agent (to approve its own Unbind).
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, scanbind_testkit::agent::trusted_agent_toml()).unwrap();
    let stack = Embedded::start_full(
        bus.address(),
        &state,
        &vault,
        Some(&socket),
        Default::default(),
        Some(&policy),
    )
    .await
    .unwrap();
    let client = Client::connect(Transport::Address(bus.address().to_owned()))
        .await
        .unwrap();
    assert!(!client.is_p2p());
    guard("online", client.wait_online()).await.unwrap();
    let status = client.status().await.unwrap();
    assert!(status.is_online());
    assert!(status.bindings.is_empty());

    // Nothing bound yet: a typed refusal.
    let err = client
        .pay(&PayRequest::new("early", hkd(100), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Daemon(scanbind_client::ipc::Error::NotBound(_))),
        "{err:?}"
    );
    assert_eq!(
        err.dbus_name().as_deref(),
        Some("io.scanbind.Daemon1.Error.NotBound")
    );

    // Bind, its states streamed.
    let binding = client
        .bind(
            "ALIPAY_HK",
            BindOptions {
                label: Some("living room".into()),
                display: Some(false),
            },
        )
        .await
        .unwrap();
    let mut states = binding.receive_states().await.unwrap();
    assert_eq!(states.next().await.unwrap().unwrap(), BindingState::Pending);
    let qr = binding.qr_matrix().await.unwrap();
    assert!(qr.width >= 21 && qr.modules.len() == (qr.width * qr.width) as usize);
    assert!(qr.is_dark(0, 0), "finder pattern corner");
    assert!(!qr.is_dark(-1, 0), "quiet zone");
    let svg = binding.qr_svg(QrOptions::default()).await.unwrap();
    assert!(svg.contains("<svg"));
    let png = binding
        .qr_png(QrOptions {
            module_size: Some(4),
            quiet_zone: Some(true),
        })
        .await
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    assert_eq!(binding.match_code().await.unwrap().len(), 6);
    scan(
        stack.sandbox_url(),
        &binding.code_value().await.unwrap(),
        "approve",
    )
    .await;
    let mut last = BindingState::Pending;
    while last == BindingState::Pending {
        last = guard("bound state", states.next()).await.unwrap().unwrap();
    }
    assert_eq!(last, BindingState::Bound);
    let outcome = binding.wait().await.unwrap();
    assert_eq!(outcome.state, BindingState::Bound);
    assert!(outcome.error.is_none());
    assert_eq!(
        client.status().await.unwrap().bindings,
        vec![binding.path().clone()]
    );

    // Pay once; the same order is the same payment; its states are streamed.
    let request = PayRequest::new("order-1", hkd(4900), "500 gems");
    let payment = client.pay(&request).await.unwrap();
    let again = client.pay(&request).await.unwrap();
    assert_eq!(again.path(), payment.path());
    let mut states = payment.receive_states().await.unwrap();
    let outcome = guard("payment", payment.wait()).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    let mut seen = guard("state stream", states.next()).await.unwrap().unwrap();
    while !seen.is_terminal() {
        seen = guard("state stream", states.next()).await.unwrap().unwrap();
    }
    assert_eq!(seen, PaymentState::Succeeded);
    assert_eq!(payment.amount().await.unwrap(), hkd(4900));
    assert_eq!(payment.order_id().await.unwrap(), "order-1");
    let err = client
        .pay(&PayRequest::new("order-1", hkd(5000), "500 gems"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Daemon(scanbind_client::ipc::Error::Duplicate(_))
        ),
        "{err:?}"
    );

    // The receipt verifies and names this order; a wrong expectation is refused.
    let verifier = ReceiptVerifier::fetch(stack.server_url()).await.unwrap();
    let receipt = outcome.receipt.as_deref().unwrap();
    let claims = verifier
        .verify_payment(receipt, "order-1", hkd(4900))
        .unwrap();
    assert_eq!(claims.status, "succeeded");
    assert!(matches!(
        verifier.verify_payment(receipt, "order-2", hkd(4900)),
        Err(Error::ReceiptMismatch(_))
    ));
    assert!(matches!(
        verifier.verify_payment(receipt, "order-1", hkd(4901)),
        Err(Error::ReceiptMismatch(_))
    ));

    // Restore after a restart: the app finds what it has not delivered yet, over the
    // daemon's peer-to-peer socket this time.
    let p2p = Client::connect(Transport::Socket(socket.clone()))
        .await
        .unwrap();
    assert!(p2p.is_p2p());
    let unfinished = p2p.unfinished_payments().await.unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].path(), payment.path());
    assert_eq!(
        unfinished[0].state().await.unwrap(),
        PaymentState::Succeeded
    );
    unfinished[0].finish().await.unwrap();
    unfinished[0].finish().await.unwrap();
    assert!(unfinished[0].delivered().await.unwrap());
    assert!(p2p.unfinished_payments().await.unwrap().is_empty());
    // The same payment seen on the bus agrees: one state, every connection.
    assert!(payment.delivered().await.unwrap());

    // A partial refund, awaited through RefundedMinor; more than is left is refused.
    let mut refunded = payment.receive_refunded().await.unwrap();
    let refund = payment.refund(hkd(1000), "partial").await.unwrap();
    assert_ne!(refund.state, "failed");
    let mut total = guard("refunded", refunded.next()).await.unwrap().unwrap();
    while total != hkd(1000) {
        total = guard("refunded", refunded.next()).await.unwrap().unwrap();
    }
    let err = payment.refund(hkd(4000), "too much").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Daemon(scanbind_client::ipc::Error::RefundNotAllowed(_))
        ),
        "{err:?}"
    );
    let history = client.payments(ListOptions::default()).await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].delivered);

    // Unbind: an app needs the user's approval on the display agent (none yet:
    // NeedsConfirmation, still bound) ...
    let err = client.unbind(&binding.path().as_ref()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Daemon(scanbind_client::ipc::Error::NeedsConfirmation(_))
        ),
        "{err:?}"
    );
    assert_eq!(binding.state().await.unwrap(), BindingState::Bound);
    let _agent = scanbind_testkit::agent::approving_agent(bus.address())
        .await
        .unwrap();
    // ... approved: the binding is gone and paying is refused again.
    client.unbind(&binding.path().as_ref()).await.unwrap();
    assert_eq!(binding.state().await.unwrap(), BindingState::Unbound);
    let err = client
        .pay(&PayRequest::new("order-3", hkd(100), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Daemon(scanbind_client::ipc::Error::NotBound(_))),
        "{err:?}"
    );

    drop((client, p2p));
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_daemon_is_a_typed_error_naming_where_it_looked() {
    let err = Client::connect(Transport::Socket("/nonexistent/scanbind.sock".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/scanbind.sock"),
        "{err}"
    );

    // A bus without the daemon on it.
    let dir = tempfile::tempdir().unwrap();
    let bus = PrivateBus::start(dir.path()).unwrap();
    let err = Client::connect(Transport::Address(bus.address().to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotRunning(_)), "{err:?}");
    assert!(err.to_string().contains("not running"), "{err}");
}
