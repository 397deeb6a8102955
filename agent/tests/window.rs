//! The real `scanbind-agent` binary on Xvfb, driven over a private bus by a stand-in
//! daemon: the QR on screen decodes (zbarimg, from a screenshot) to the code value the
//! daemon sent, and confirmations are answered with synthetic key presses (xdotool).

mod common;

use std::collections::HashMap;

use common::{AgentProcess, FakeDaemon, GUARD, PrivateBus, Xvfb};
use scanbind_ipc::types::keys::agent as keys;
use zvariant::Value;

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

struct Rig {
    // Field order is drop order: the agent goes before its display and bus.
    agent: AgentProcess,
    daemon: FakeDaemon,
    proxy: scanbind_ipc::Agent1Proxy<'static>,
    xvfb: Xvfb,
    _bus: PrivateBus,
}

async fn rig() -> Rig {
    let bus = PrivateBus::without_services().unwrap();
    let xvfb = Xvfb::start();
    let mut daemon = FakeDaemon::start(&bus).await;
    // This test process plays the daemon.
    let me = std::env::current_exe().unwrap();
    let agent = AgentProcess::start_for(bus.address(), xvfb.display(), Some(&me));
    let reg = daemon.next_registration().await;
    assert_eq!(reg.path.as_str(), "/io/scanbind/Agent");
    agent.expect_line("scanbind-agent registered");
    let proxy = daemon.agent(&reg).await;
    Rig {
        agent,
        daemon,
        proxy,
        xvfb,
        _bus: bus,
    }
}

type Details = HashMap<&'static str, Value<'static>>;

fn binding_details(code_value: &str) -> Details {
    HashMap::from([
        (keys::CODE_VALUE, Value::from(code_value.to_owned())),
        (keys::MATCH_CODE, Value::from("42")),
        (keys::DEVICE_NAME, Value::from("Living room TV")),
        (keys::WALLET, Value::from("ALIPAY_HK")),
        (keys::WALLET_NAME, Value::from("AlipayHK")),
        (keys::EXPIRES_AT, Value::from(now() + 600)),
    ])
}

impl Rig {
    /// Calls `Confirm` in the background, waits until the prompt is on screen, presses
    /// `keys`, and returns the reply.
    async fn confirm(
        &self,
        request: &'static str,
        kind: &'static str,
        details: Details,
        keys: &[&str],
    ) -> (bool, HashMap<String, zvariant::OwnedValue>) {
        let proxy = self.proxy.clone();
        let call = tokio::spawn(async move { proxy.confirm(request, kind, details).await });
        self.agent.expect_line(&format!("shown {request}"));
        self.xvfb.keep_screenshot(request);
        self.xvfb.focus_agent();
        self.xvfb.keys(keys);
        tokio::time::timeout(GUARD, call)
            .await
            .expect("Confirm never answered")
            .unwrap()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binding_qr_on_screen_is_the_code_the_daemon_issued() {
    if !common::display_tools_available() {
        return;
    }
    let mut rig = rig().await;
    let code = "https://example.test/qr/ABC123";
    rig.proxy
        .show("b1", keys::KIND_BINDING_QR, binding_details(code))
        .await
        .unwrap();
    rig.agent.expect_line("shown b1");
    assert_eq!(rig.xvfb.decode_qr("binding-qr"), code);

    // Expired: the agent offers a fresh code, Enter asks the daemon for one.
    rig.proxy.dismiss("b1", "expired").await.unwrap();
    rig.agent.expect_line("shown b1 expired");
    rig.xvfb.keep_screenshot("expired");
    rig.xvfb.focus_agent();
    rig.xvfb.keys(&["Return"]);
    let wallet = tokio::time::timeout(GUARD, rig.daemon.bindings.recv())
        .await
        .expect("no StartBinding")
        .unwrap();
    assert_eq!(wallet, "ALIPAY_HK");

    // The daemon shows the new code; it replaces the old one on screen.
    let fresh = "https://example.test/qr/FRESH-777";
    rig.proxy
        .show("b2", keys::KIND_BINDING_QR, binding_details(fresh))
        .await
        .unwrap();
    rig.agent.expect_line("shown b2");
    assert_eq!(rig.xvfb.decode_qr("binding-qr-fresh"), fresh);
    rig.proxy.dismiss("b2", "bound").await.unwrap();

    // An order code.
    let order = "https://example.test/order/ORD-9";
    let details: Details = HashMap::from([
        (keys::CODE_VALUE, Value::from(order)),
        (keys::APP_NAME, Value::from("Game X")),
        (keys::AMOUNT_TEXT, Value::from("HK$49.00")),
        (keys::DESCRIPTION, Value::from("1,000 gems")),
        (keys::EXPIRES_AT, Value::from(now() + 300)),
    ]);
    rig.proxy
        .show("o1", keys::KIND_ORDER_CODE, details)
        .await
        .unwrap();
    rig.agent.expect_line("shown o1");
    assert_eq!(rig.xvfb.decode_qr("order-code"), order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_are_answered_with_the_remote() {
    if !common::display_tools_available() {
        return;
    }
    let rig = rig().await;
    let payment = || -> Details {
        HashMap::from([
            (keys::MESSAGE, Value::from("Pay HK$49.00 to Game X?")),
            (keys::TIMEOUT_SECS, Value::from(60_u32)),
        ])
    };

    // Deny is selected first: Right moves to Allow.
    let (allowed, answer) = rig
        .confirm("p1", keys::KIND_PAYMENT, payment(), &["Right", "Return"])
        .await;
    assert!(allowed);
    assert!(answer.is_empty());

    let (allowed, _) = rig
        .confirm("p2", keys::KIND_PAYMENT, payment(), &["Return"])
        .await;
    assert!(!allowed, "Enter on the initial selection denies");

    let (allowed, _) = rig
        .confirm("p3", keys::KIND_PAYMENT, payment(), &["Right", "Escape"])
        .await;
    assert!(!allowed, "Escape denies");

    let consent: Details = HashMap::from([(
        keys::MESSAGE,
        Value::from("Allow Game X to charge your AlipayHK wallet up to HK$100.00 a day?"),
    )]);
    let (allowed, _) = rig
        .confirm(
            "c1",
            keys::KIND_CONSENT,
            consent,
            &["Right", "Left", "Right", "Return"],
        )
        .await;
    assert!(allowed);

    let parent: Details = HashMap::from([
        (
            keys::MESSAGE,
            Value::from("Approve HK$49.00 to Game X for Kid?"),
        ),
        (keys::PIN_REQUIRED, Value::from(true)),
        (keys::ATTEMPTS_LEFT, Value::from(5_u32)),
    ]);
    let (allowed, answer) = rig
        .confirm(
            "k1",
            keys::KIND_PARENT_APPROVAL,
            parent,
            &["1", "2", "9", "BackSpace", "3", "4", "Return"],
        )
        .await;
    assert!(allowed);
    let pin: &str = (&*answer[keys::ANSWER_PIN]).try_into().unwrap();
    assert_eq!(pin, "1234");

    // The daemon gives up: the prompt goes away and Confirm replies "denied".
    let proxy = rig.proxy.clone();
    let call =
        tokio::spawn(async move { proxy.confirm("p4", keys::KIND_PAYMENT, payment()).await });
    rig.agent.expect_line("shown p4");
    rig.proxy.dismiss("p4", "timed-out").await.unwrap();
    let (allowed, answer) = tokio::time::timeout(GUARD, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!allowed && answer.is_empty());
}
