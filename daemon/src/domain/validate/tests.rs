//! Tests of the `Pay` argument validation (the bus-level behaviour is covered by
//! `daemon/tests/e2e.rs`). The refusals are compared by the wire error apps get.

use scanbind_ipc::Error as Wire;
use zbus::DBusError;

use super::validate_pay;
use crate::domain::error::Refusal;

fn name(r: Result<scanbind_money::Money, Refusal>) -> String {
    match r {
        Ok(m) => format!("ok {} {}", m.minor().get(), m.currency().code()),
        Err(e) => Wire::from(e).name().to_string(),
    }
}

#[test]
fn pay_arguments_are_checked() {
    let cases: &[(&str, i64, &str, &str, &str)] = &[
        ("o1", 4900, "HKD", "Coins", "ok 4900 HKD"),
        (
            "o1",
            0,
            "HKD",
            "Coins",
            "io.scanbind.Daemon1.Error.InvalidAmount",
        ),
        (
            "o1",
            -1,
            "HKD",
            "Coins",
            "io.scanbind.Daemon1.Error.InvalidAmount",
        ),
        (
            "o1",
            i64::MIN,
            "HKD",
            "Coins",
            "io.scanbind.Daemon1.Error.InvalidAmount",
        ),
        (
            "o1",
            1,
            "XXY",
            "Coins",
            "io.scanbind.Daemon1.Error.UnknownCurrency",
        ),
        (
            "o1",
            1,
            "hkd",
            "Coins",
            "io.scanbind.Daemon1.Error.UnknownCurrency",
        ),
        (
            "",
            1,
            "HKD",
            "Coins",
            "io.scanbind.Daemon1.Error.InvalidArgument",
        ),
        // Alipay takes IDR only in whole rupiah: the last two digits must be 00.
        (
            "o1",
            30_050,
            "IDR",
            "Coins",
            "io.scanbind.Daemon1.Error.InvalidAmount",
        ),
    ];
    for (order, amount, currency, desc, want) in cases {
        assert_eq!(
            name(validate_pay(order, *amount, currency, desc)),
            *want,
            "{order:?} {amount} {currency}"
        );
    }
    assert_eq!(
        name(validate_pay(&"x".repeat(64), 1, "HKD", "d")),
        "ok 1 HKD"
    );
    assert_eq!(name(validate_pay("o1", 30_000, "IDR", "d")), "ok 30000 IDR");
    let long = "x".repeat(300);
    assert_eq!(
        name(validate_pay(&long, 1, "HKD", "d")),
        "io.scanbind.Daemon1.Error.InvalidArgument"
    );
    assert_eq!(
        name(validate_pay("o", 1, "HKD", &long)),
        "io.scanbind.Daemon1.Error.InvalidArgument"
    );
}
