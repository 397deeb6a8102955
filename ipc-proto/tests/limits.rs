//! Every size limit of the D-Bus contract is at most its counterpart in the device API:
//! what the daemon accepts from an app, it can always forward to the merchant server.

use scanbind_device_api::limits as api;
use scanbind_ipc::limits as dbus;

#[test]
fn dbus_limits_fit_the_device_api() {
    let pairs = [
        ("order id", dbus::MAX_ORDER_ID, api::MAX_APP_ORDER_ID),
        ("description", dbus::MAX_DESCRIPTION, api::MAX_DESCRIPTION),
        ("refund id", dbus::MAX_REFUND_ID, api::MAX_REFUND_ID),
        (
            "refund reason",
            dbus::MAX_REFUND_REASON,
            api::MAX_REFUND_REASON,
        ),
        ("seller", dbus::MAX_SELLER, api::MAX_SELLER_ID),
        (
            "part description",
            dbus::MAX_PART_DESCRIPTION,
            api::MAX_PART_DESCRIPTION,
        ),
        ("parts", dbus::MAX_PARTS, api::MAX_PARTS),
        (
            "all-or-nothing parts",
            dbus::MAX_PARTS_ALL_OR_NOTHING,
            api::MAX_PARTS_ALL_OR_NOTHING,
        ),
    ];
    for (what, on_dbus, on_api) in pairs {
        assert!(
            on_dbus <= on_api,
            "the D-Bus {what} limit {on_dbus} exceeds the device API's {on_api}"
        );
    }
    // A checkout the daemon accepts has at least as many parts as the server requires.
    let (dbus_min, api_min) = (dbus::MIN_PARTS, api::MIN_PARTS);
    assert!(
        dbus_min >= api_min,
        "the D-Bus minimum of parts {dbus_min} is below the device API's {api_min}"
    );
}
