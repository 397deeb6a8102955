//! The limits in `scanbind_device_api::limits` are the ones `docs/openapi.json` states,
//! so the constants and the published contract cannot drift apart.

use scanbind_device_api::limits::*;
use serde_json::Value;

fn openapi() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json");
    serde_json::from_str(&text).expect("docs/openapi.json is JSON")
}

/// `(minLength, maxLength)` of a property of a schema (`parts` items when `part`).
fn length(doc: &Value, schema: &str, field: &str, part: bool) -> (u64, u64) {
    let mut props = &doc["components"]["schemas"][schema]["properties"];
    if part {
        props = &props["parts"]["items"]["properties"];
    }
    let p = &props[field];
    let n = |k: &str| {
        p[k].as_u64()
            .unwrap_or_else(|| panic!("{schema}.{field} has no {k}"))
    };
    (n("minLength"), n("maxLength"))
}

#[test]
fn limits_match_the_openapi_document() {
    let doc = openapi();
    let max = |n: usize| u64::try_from(n).unwrap();
    for schema in ["PayRequest", "OrderCodePayRequest", "CheckoutRequest"] {
        assert_eq!(length(&doc, schema, "appId", false), (1, max(MAX_APP_ID)));
        assert_eq!(
            length(&doc, schema, "appOrderId", false),
            (1, max(MAX_APP_ORDER_ID))
        );
    }
    for schema in ["PayRequest", "OrderCodePayRequest"] {
        assert_eq!(
            length(&doc, schema, "description", false),
            (1, max(MAX_DESCRIPTION))
        );
    }
    assert_eq!(
        length(&doc, "RefundRequest", "refundId", false),
        (1, max(MAX_REFUND_ID))
    );
    assert_eq!(
        length(&doc, "RefundRequest", "reason", false),
        (1, max(MAX_REFUND_REASON))
    );
    assert_eq!(
        length(&doc, "CheckoutRequest", "sellerId", true),
        (1, max(MAX_SELLER_ID))
    );
    assert_eq!(
        length(&doc, "CheckoutRequest", "description", true),
        (1, max(MAX_PART_DESCRIPTION))
    );
    let parts = &doc["components"]["schemas"]["CheckoutRequest"]["properties"]["parts"];
    assert_eq!(parts["minItems"].as_u64(), Some(max(MIN_PARTS)));
    assert_eq!(parts["maxItems"].as_u64(), Some(max(MAX_PARTS)));
    assert_eq!(
        parts["description"].as_str(),
        Some(format!("At most {MAX_PARTS_ALL_OR_NOTHING} when allOrNothing.").as_str())
    );
    assert_eq!(
        length(&doc, "SubscribeRequest", "appId", false),
        (1, max(MAX_APP_ID))
    );
    assert_eq!(
        length(&doc, "SubscribeRequest", "appSubscriptionId", false),
        (1, max(MAX_APP_SUBSCRIPTION_ID))
    );
    assert_eq!(
        length(&doc, "SubscribeRequest", "plan", false),
        (1, max(MAX_PLAN))
    );
    let intro = &doc["components"]["schemas"]["IntroductoryOffer"]["properties"]["periods"];
    assert_eq!(
        intro["maximum"].as_u64(),
        Some(u64::from(MAX_INTRODUCTORY_PERIODS))
    );
    let period = &doc["components"]["schemas"]["SubscribeRequest"]["properties"]["period"];
    assert_eq!(
        period["enum"],
        serde_json::json!(scanbind_device_api::types::SUBSCRIPTION_PERIODS)
    );
    assert_eq!(
        length(&doc, "RegisterDeviceRequest", "name", false),
        (1, max(MAX_DEVICE_NAME))
    );
    assert_eq!(
        length(&doc, "RegisterDeviceRequest", "model", false),
        (0, max(MAX_DEVICE_MODEL))
    );
}
