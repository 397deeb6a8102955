//! Combined checkouts through the daemon, end to end (issue 8): a private
//! `dbus-daemon`, the Secret Service of `scripts/test`, an in-process sandbox with
//! several sellers under one merchant, the `scanbind-server` binary configured with
//! them, and the `scanbindd` binary. The test is the app: `Pay` with the `sellers`
//! option, the `Parts` property, per-part refunds, kill -9 of the daemon and of the
//! server in the middle.
//!
//! Needs `KEYRING_SS_TEST=1` (run through `scripts/test`; see daemon/README.md).

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{
    DaemonProc, GUARD, World, connect, eventually, journal_rows, spawn_daemon, spawn_daemon_with,
    world_with_sellers,
};
use futures_util::StreamExt as _;
use scanbind_device_api::receipt::{ReceiptKeySet, verify_receipt};
use scanbind_ipc::types::keys;
use scanbind_ipc::{Daemon1Proxy, Error as Wire, Payment1Proxy, PaymentState};
use scanbindd::test_util::{PrivateBus, require_secret_service};
use serde_json::Value as Json;
use zbus::proxy::CacheProperties;
use zvariant::{OwnedObjectPath, OwnedValue, Value};

/// The sellers of every test here; `SELLER_X` is not enabled for combining.
const SELLERS: &[(&str, &str, bool)] = &[
    ("SELLER_A", "Alpha Books", true),
    ("SELLER_B", "Beta Games", true),
    ("SELLER_C", "Gamma Tea", true),
    ("SELLER_D", "Delta Shoes", true),
    ("SELLER_X", "Xeno Imports", false),
];

/// The `sellers` option for these (seller, amount) parts.
fn sellers(parts: &[(&str, i64)]) -> Value<'static> {
    let list: Vec<HashMap<String, Value<'static>>> = parts
        .iter()
        .map(|(seller, amount)| {
            HashMap::from([
                (
                    keys::seller::SELLER.to_owned(),
                    Value::from(seller.to_string()),
                ),
                (keys::seller::AMOUNT_MINOR.to_owned(), Value::from(*amount)),
                (
                    keys::seller::DESCRIPTION.to_owned(),
                    Value::from(format!("goods from {seller}")),
                ),
            ])
        })
        .collect();
    Value::from(list)
}

fn checkout_options(
    parts: &[(&str, i64)],
    all_or_nothing: Option<bool>,
) -> HashMap<&'static str, Value<'static>> {
    let mut o = HashMap::from([(keys::pay::SELLERS, sellers(parts))]);
    if let Some(aon) = all_or_nothing {
        o.insert(keys::pay::ALL_OR_NOTHING, Value::from(aon));
    }
    o
}

fn total(parts: &[(&str, i64)]) -> i64 {
    parts.iter().map(|(_, a)| a).sum()
}

struct Stack {
    world: World,
    server: common::ServerProc,
    bus: PrivateBus,
    state: tempfile::TempDir,
    daemon: Option<DaemonProc>,
    conn: zbus::Connection,
}

impl Stack {
    async fn start() -> Stack {
        require_secret_service();
        let world = world_with_sellers(SELLERS).await;
        let server = world.spawn_server(&[]);
        let bus = PrivateBus::without_services().unwrap();
        let state = tempfile::tempdir().unwrap();
        let daemon = spawn_daemon(bus.address(), &server.base, state.path());
        let conn = connect(&bus).await;
        let stack = Stack {
            world,
            server,
            bus,
            state,
            daemon: Some(daemon),
            conn,
        };
        stack.bind().await;
        stack
    }

    async fn daemon(&self) -> Daemon1Proxy<'static> {
        Daemon1Proxy::new(&self.conn).await.unwrap()
    }

    fn logs(&self) -> String {
        self.daemon.as_ref().map(|d| d.logs()).unwrap_or_default()
    }

    async fn bind(&self) {
        let d = self.daemon().await;
        let (_, state) = common::bind_approved(&self.world, &self.conn, &d).await;
        assert_eq!(state, "bound");
    }

    async fn checkout(
        &self,
        order: &str,
        parts: &[(&str, i64)],
        all_or_nothing: Option<bool>,
    ) -> Result<OwnedObjectPath, Wire> {
        self.daemon()
            .await
            .pay(
                order,
                total(parts),
                "HKD",
                "Basket",
                checkout_options(parts, all_or_nothing),
            )
            .await
    }

    /// Follows a payment to its final state; the state and the `Completed` signals seen.
    async fn settled(&self, path: &OwnedObjectPath) -> (Payment1Proxy<'static>, String) {
        let payment = proxy(&self.conn, path).await;
        let mut completed = payment.receive_completed().await.unwrap();
        loop {
            let now: PaymentState = payment.state().await.unwrap().parse().unwrap();
            if now.is_terminal() {
                return (payment, now.as_str().to_owned());
            }
            tokio::time::timeout(GUARD, completed.next())
                .await
                .unwrap_or_else(|_| panic!("no Completed within the guard time: {}", self.logs()))
                .unwrap();
        }
    }

    async fn receipt_keys(&self) -> ReceiptKeySet {
        self.world
            .http
            .get(format!("{}/v1/receipt-keys", self.server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn proxy(conn: &zbus::Connection, path: &OwnedObjectPath) -> Payment1Proxy<'static> {
    Payment1Proxy::builder(conn)
        .path(path.clone())
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// One part of `Parts`, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    seller: String,
    amount: i64,
    state: String,
    receipt: String,
    reversed: bool,
    code: String,
    refunded: i64,
}

async fn parts(p: &Payment1Proxy<'_>) -> Vec<Part> {
    use keys::part as k;
    let s = |d: &HashMap<String, OwnedValue>, key: &str| -> String {
        <&str>::try_from(&d[key]).unwrap().to_owned()
    };
    let x = |d: &HashMap<String, OwnedValue>, key: &str| -> i64 { i64::try_from(&d[key]).unwrap() };
    <Vec<HashMap<String, OwnedValue>>>::try_from(p.parts().await.unwrap())
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(u32::try_from(&d[k::INDEX]).unwrap() as usize, i);
            Part {
                seller: s(d, k::SELLER),
                amount: x(d, k::AMOUNT_MINOR),
                state: s(d, k::STATE),
                receipt: s(d, k::RECEIPT),
                reversed: bool::try_from(&d[k::REVERSED]).unwrap(),
                code: s(d, k::RESULT_CODE),
                refunded: x(d, k::REFUNDED_MINOR),
            }
        })
        .collect()
}

fn ledger_payments(ledger: &Json) -> Vec<Json> {
    ledger["payments"].as_array().cloned().unwrap_or_default()
}

/// What the wallet's user is out of pocket: paid minus returned, over every payment.
fn net_charged(ledger: &Json) -> i64 {
    ledger_payments(ledger)
        .iter()
        .filter(|p| p["moneyMovements"] == 1)
        .filter(|p| p["status"] == "SUCCESS" || p["status"] == "CANCELLED")
        .map(|p| {
            let amount: i64 = p["amount"]["value"].as_str().unwrap().parse().unwrap();
            let back: i64 = p["refunded"]["value"].as_str().unwrap().parse().unwrap();
            amount - back
        })
        .sum()
}

fn journal_state_of(state_dir: &Path, order: &str) -> String {
    let conn = rusqlite::Connection::open(state_dir.join("journal.sqlite3")).unwrap();
    conn.query_row(
        "SELECT state FROM payments WHERE order_id = ?1",
        [order],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_combined_checkout_pays_each_seller_once_with_receipts_and_refunds_per_part() {
    let stack = Stack::start().await;
    let d = stack.daemon().await;
    let basket = [("SELLER_A", 1000), ("SELLER_B", 2000), ("SELLER_C", 1500)];
    let path = stack.checkout("cart-1", &basket, None).await.unwrap();
    let (payment, state) = stack.settled(&path).await;
    assert_eq!(state, "succeeded", "{}", stack.logs());
    assert_eq!(payment.amount_minor().await.unwrap(), 4500);
    // A checkout has no single receipt: each seller's is in its part.
    assert_eq!(payment.receipt().await.unwrap(), "");

    let keys = stack.receipt_keys().await;
    let got = parts(&payment).await;
    assert_eq!(got.len(), 3);
    for (i, (part, (seller, amount))) in got.iter().zip(basket).enumerate() {
        assert_eq!(
            (part.seller.as_str(), part.amount, part.state.as_str()),
            (seller, amount, "succeeded")
        );
        assert!(!part.reversed && part.code.is_empty() && part.refunded == 0);
        let r = verify_receipt(&part.receipt, &keys).unwrap();
        assert_eq!(r.seller_id.as_deref(), Some(seller));
        assert_eq!(r.app_order_id, format!("cart-1#{i}"));
        assert_eq!(r.amount.value, amount);
        assert_eq!(r.status, "succeeded");
    }
    let ledger = stack.world.ledger().await;
    assert_eq!(
        ledger_payments(&ledger).len(),
        3,
        "one AMS payment per seller"
    );
    assert_eq!(net_charged(&ledger), 4500);

    // The same order again: the same payment, no second charge; other parts: Duplicate.
    assert_eq!(stack.checkout("cart-1", &basket, None).await.unwrap(), path);
    let other = [("SELLER_A", 1000), ("SELLER_B", 3500)];
    assert!(matches!(
        stack.checkout("cart-1", &other, None).await,
        Err(Wire::Duplicate(_))
    ));
    assert!(matches!(
        d.pay("cart-1", 4500, "HKD", "Basket", HashMap::new()).await,
        Err(Wire::Duplicate(_))
    ));
    assert_eq!(ledger_payments(&stack.world.ledger().await).len(), 3);

    // Refunds are per part, each within its own amount.
    let part = |i: u32| HashMap::from([(keys::request_refund::PART, Value::from(i))]);
    assert!(matches!(
        payment.request_refund(100, "", HashMap::new()).await,
        Err(Wire::InvalidArgument(_))
    ));
    assert!(matches!(
        payment.request_refund(100, "", part(3)).await,
        Err(Wire::InvalidArgument(_))
    ));
    assert!(matches!(
        payment.request_refund(2001, "", part(1)).await,
        Err(Wire::RefundNotAllowed(_))
    ));
    let (_, state) = payment
        .request_refund(500, "one game returned", part(1))
        .await
        .unwrap();
    assert_eq!(state, "succeeded", "{}", stack.logs());
    assert!(matches!(
        payment.request_refund(1501, "", part(1)).await,
        Err(Wire::RefundNotAllowed(_))
    ));
    eventually("the part's refund to show", || async {
        parts(&payment).await[1].refunded == 500
    })
    .await;
    assert_eq!(payment.refunded_minor().await.unwrap(), 500);
    let refunded: Vec<i64> = parts(&payment).await.iter().map(|p| p.refunded).collect();
    assert_eq!(refunded, [0, 500, 0]);
    assert_eq!(net_charged(&stack.world.ledger().await), 4000);

    // Delivered once, then no longer unfinished.
    let unfinished = || HashMap::from([(keys::list_payments::UNFINISHED, Value::from(true))]);
    let open = d.list_payments(unfinished()).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, PaymentState::Succeeded);
    payment.finish(HashMap::new()).await.unwrap();
    assert!(d.list_payments(unfinished()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn all_or_nothing_reverses_paid_parts_and_independent_parts_say_which_failed() {
    let stack = Stack::start().await;
    let d = stack.daemon().await;

    // All-or-nothing: the third of four parts fails (magic amount 9905: not enough
    // balance); the two paid parts are reversed, the fourth is never sent.
    let basket = [
        ("SELLER_A", 1000),
        ("SELLER_B", 2000),
        ("SELLER_C", 9905),
        ("SELLER_D", 1500),
    ];
    let path = stack.checkout("aon-1", &basket, Some(true)).await.unwrap();
    let (payment, state) = stack.settled(&path).await;
    assert_eq!(state, "failed", "{}", stack.logs());
    let error = payment.last_error().await.unwrap();
    assert!(error.name.ends_with("ServerError"), "{error:?}");
    assert!(
        error.message.contains("SELLER_C") && error.message.contains("reversed"),
        "{error:?}"
    );
    let got: Vec<(String, bool, String)> = parts(&payment)
        .await
        .into_iter()
        .map(|p| (p.state, p.reversed, p.code))
        .collect();
    assert_eq!(
        got,
        [
            ("cancelled".into(), true, "CHECKOUT_REVERSED".into()),
            ("cancelled".into(), true, "CHECKOUT_REVERSED".into()),
            ("failed".into(), false, "USER_BALANCE_NOT_ENOUGH".into()),
            ("failed".into(), false, "CHECKOUT_ABORTED".into()),
        ]
    );
    let ledger = stack.world.ledger().await;
    assert_eq!(
        net_charged(&ledger),
        0,
        "every paid part reversed: {ledger}"
    );
    assert!(matches!(
        payment
            .request_refund(
                100,
                "",
                HashMap::from([(keys::request_refund::PART, Value::from(0_u32))])
            )
            .await,
        Err(Wire::RefundNotAllowed(_))
    ));

    // Independent parts: the second fails, the others are charged.
    let basket = [("SELLER_A", 1100), ("SELLER_B", 9905), ("SELLER_C", 1300)];
    let path = stack.checkout("ind-1", &basket, Some(false)).await.unwrap();
    let (payment, state) = stack.settled(&path).await;
    assert_eq!(state, "partially-succeeded", "{}", stack.logs());
    let states: Vec<String> = parts(&payment).await.into_iter().map(|p| p.state).collect();
    assert_eq!(states, ["succeeded", "failed", "succeeded"]);
    assert_eq!(net_charged(&stack.world.ledger().await), 1100 + 1300);
    let (_, refund) = payment
        .request_refund(
            1100,
            "",
            HashMap::from([(keys::request_refund::PART, Value::from(0_u32))]),
        )
        .await
        .unwrap();
    assert_eq!(refund, "succeeded");
    assert!(matches!(
        payment
            .request_refund(
                1,
                "",
                HashMap::from([(keys::request_refund::PART, Value::from(1_u32))])
            )
            .await,
        Err(Wire::RefundNotAllowed(_))
    ));
    // The app delivers what was paid for.
    let listed = d.list_payments(HashMap::new()).await.unwrap();
    let summary = listed.iter().find(|p| p.payment == path).unwrap();
    assert_eq!(summary.state, PaymentState::PartiallySucceeded);
    payment.finish(HashMap::new()).await.unwrap();
    assert!(payment.delivered().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn checkout_limits_and_refused_sellers_charge_nothing() {
    let stack = Stack::start().await;
    let d = stack.daemon().await;
    let seven: Vec<(String, i64)> = (0..7).map(|i| (format!("S{i}"), 100)).collect();
    let seven: Vec<(&str, i64)> = seven.iter().map(|(s, a)| (s.as_str(), *a)).collect();
    let twenty_one: Vec<(String, i64)> = (0..21).map(|i| (format!("S{i}"), 100)).collect();
    let twenty_one: Vec<(&str, i64)> = twenty_one.iter().map(|(s, a)| (s.as_str(), *a)).collect();
    // 7 parts all-or-nothing and 21 independent are over the limits.
    assert!(matches!(
        stack.checkout("lim-1", &seven, None).await,
        Err(Wire::InvalidArgument(m)) if m.contains('6')
    ));
    assert!(matches!(
        stack.checkout("lim-2", &twenty_one, Some(false)).await,
        Err(Wire::InvalidArgument(m)) if m.contains("20")
    ));
    // Parts that do not add up, a seller twice, a single part.
    let parts = [("SELLER_A", 100), ("SELLER_B", 200)];
    assert!(matches!(
        d.pay(
            "lim-3",
            301,
            "HKD",
            "Basket",
            checkout_options(&parts, None)
        )
        .await,
        Err(Wire::InvalidAmount(_))
    ));
    assert!(matches!(
        stack
            .checkout("lim-4", &[("SELLER_A", 100), ("SELLER_A", 200)], None)
            .await,
        Err(Wire::InvalidArgument(_))
    ));
    assert!(matches!(
        stack.checkout("lim-5", &[("SELLER_A", 100)], None).await,
        Err(Wire::InvalidArgument(_))
    ));
    // sellers with order-code, all-or-nothing without sellers.
    let mut with_code = checkout_options(&parts, None);
    with_code.insert(keys::pay::ORDER_CODE, Value::from(true));
    assert!(matches!(
        d.pay("lim-6", 300, "HKD", "Basket", with_code).await,
        Err(Wire::InvalidArgument(_))
    ));
    assert!(matches!(
        d.pay(
            "lim-7",
            300,
            "HKD",
            "Basket",
            HashMap::from([(keys::pay::ALL_OR_NOTHING, Value::from(true))])
        )
        .await,
        Err(Wire::InvalidArgument(_))
    ));
    assert_eq!(journal_rows(stack.state.path()), 0, "nothing was recorded");

    // A seller not enabled for combining, and one the server does not know: refused
    // by the server before any money moves.
    for (order, seller, code) in [
        ("ref-1", "SELLER_X", "merge_pay_not_allowed"),
        ("ref-2", "SELLER_NOBODY", "invalid_merge_partner"),
    ] {
        let path = stack
            .checkout(order, &[("SELLER_A", 100), (seller, 200)], None)
            .await
            .unwrap();
        let (payment, state) = stack.settled(&path).await;
        assert_eq!(state, "failed", "{}", stack.logs());
        let error = payment.last_error().await.unwrap();
        assert!(error.message.contains(code), "{error:?}");
    }
    assert!(ledger_payments(&stack.world.ledger().await).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_daemon_or_the_server_mid_checkout_charges_once_and_tells_the_app() {
    let mut stack = Stack::start().await;
    let d = stack.daemon().await;
    let addr = ["--address", stack.bus.address()];
    stack.daemon = None;

    // The daemon dies at each step of a checkout; restarted, the app pays the same
    // order again and catches up. Every part is charged exactly once.
    let points = ["after-journal", "after-send", "after-settle"];
    for point in points {
        let order = format!("crash-{point}");
        let basket = [("SELLER_A", 1000), ("SELLER_B", 2000)];
        let mut crashing = spawn_daemon_with(
            &addr,
            &stack.server.base,
            stack.state.path(),
            &[("SCANBINDD_CRASH_AT", point)],
        );
        let first = stack.checkout(&order, &basket, None).await;
        assert!(
            !crashing.wait_exit().success(),
            "{point}: should have crashed"
        );
        stack.daemon = Some(spawn_daemon(
            stack.bus.address(),
            &stack.server.base,
            stack.state.path(),
        ));
        let path = stack.checkout(&order, &basket, None).await.unwrap();
        if let Ok(before) = first {
            assert_eq!(before, path, "{point}: the same payment across the crash");
        }
        let (payment, state) = stack.settled(&path).await;
        assert_eq!(state, "succeeded", "{point}: {}", stack.logs());
        assert!(
            parts(&payment)
                .await
                .iter()
                .all(|p| p.state == "succeeded" && !p.receipt.is_empty())
        );
        let unfinished = HashMap::from([(keys::list_payments::UNFINISHED, Value::from(true))]);
        let open = d.list_payments(unfinished).await.unwrap();
        assert_eq!(open.len(), 1, "{point}: exactly this one to deliver");
        payment.finish(HashMap::new()).await.unwrap();
        stack.daemon = None;
    }
    let ledger = stack.world.ledger().await;
    let paid = ledger_payments(&ledger);
    assert_eq!(paid.len(), 2 * points.len(), "{ledger}");
    assert!(paid.iter().all(|p| p["moneyMovements"] == 1), "{ledger}");
    assert_eq!(net_charged(&ledger), 3000 * points.len() as i64);

    // The server dies mid-checkout: the second part is taken by the wallet and never
    // answered, the third never sent. After the server is back it learns the second
    // part's outcome and sends the third with the tokens its checkout kept sealed
    // (issue 25 item 1): the checkout succeeds, every seller charged once, and the app
    // is told so.
    stack.daemon = Some(spawn_daemon(
        stack.bus.address(),
        &stack.server.base,
        stack.state.path(),
    ));
    let before = ledger_payments(&stack.world.ledger().await).len();
    stack
        .world
        .arm_fault(
            serde_json::json!({"endpoint": "pay", "kind": "hang", "processed": true, "skip": 1}),
        )
        .await;
    // The hung part's notification is dropped too (else it would settle the part, end
    // the hung call and let the third part go before the kill); the first part's goes
    // first, in order.
    stack
        .world
        .arm_fault(serde_json::json!({"endpoint": "notifications", "kind": "drop", "count": 2}))
        .await;
    let basket = [("SELLER_A", 1000), ("SELLER_B", 1100), ("SELLER_C", 1200)];
    let path = stack.checkout("srv-crash", &basket, None).await.unwrap();
    eventually("the wallet to take the second part", || async {
        ledger_payments(&stack.world.ledger().await).len() == before + 2
    })
    .await;
    eventually("both notifications to be dropped", || async {
        stack.world.control("/sandbox/v1/faults").await["notifications"] == serde_json::json!([])
    })
    .await;
    assert_eq!(
        journal_state_of(stack.state.path(), "srv-crash"),
        "sent",
        "the outcome is not known yet"
    );
    // The daemon and the server restart on the same state (a daemon started before
    // the server comes back waits for it offline).
    stack.daemon = None;
    stack.server.kill();
    stack.server = stack.world.spawn_server(&[]);
    stack.daemon = Some(spawn_daemon(
        stack.bus.address(),
        &stack.server.base,
        stack.state.path(),
    ));
    let (payment, state) = stack.settled(&path).await;
    assert_eq!(state, "succeeded", "{}", stack.logs());
    let reversed: Vec<bool> = parts(&payment).await.iter().map(|p| p.reversed).collect();
    assert_eq!(reversed, [false, false, false]);
    let ledger = stack.world.ledger().await;
    assert_eq!(ledger_payments(&ledger).len(), before + 3, "{ledger}");
    assert!(
        ledger_payments(&ledger)
            .iter()
            .all(|p| p["moneyMovements"] == 1),
        "{ledger}"
    );
    assert_eq!(
        net_charged(&ledger),
        3000 * points.len() as i64 + 3300,
        "the interrupted checkout charged every seller once: {ledger}"
    );
}
