//! The OpenAPI 3.0 document of the device API, served at `/v1/openapi.json`.
//!
//! It is built here, in code, next to the routes; `docs/openapi.json` is the checked-in
//! copy, and the test `openapi_document_matches_docs` fails when the two differ (refresh
//! the file with `scanbind-server openapi > docs/openapi.json`).

use scanbind_device_api::ErrorCode;
use scanbind_device_api::types::{
    BindingStatus, CheckoutStatus, PaymentProduct, PaymentStatus, RefundStatus,
    SUBSCRIPTION_PERIODS, SubscriptionStatus, TRIAL_PERIODS,
};
use serde_json::{Value, json};

/// The wire texts of `values` (their serde names), for an `enum` list: the document lists
/// what the types have, not a copy of it.
fn wire<T: serde::Serialize>(values: &[T]) -> Value {
    Value::Array(
        values
            .iter()
            .map(|v| serde_json::to_value(v).unwrap_or_default())
            .collect(),
    )
}

fn payment_statuses() -> Value {
    wire(&[
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Cancelled,
    ])
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn body(name: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": r(name)}}})
}

fn ok(name: &str, description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": r(name)}}})
}

fn errors(codes: &[u16]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for c in codes {
        m.insert(
            c.to_string(),
            json!({"description": "Error; see `error.code`.", "content": {"application/json": {"schema": r("ApiError")}}}),
        );
    }
    m
}

fn op(
    summary: &str,
    op_id: &str,
    request: Option<&str>,
    success: (u16, &str, &str),
    errs: &[u16],
    params: Value,
    signed: bool,
) -> Value {
    let mut responses = errors(errs);
    responses.insert(success.0.to_string(), ok(success.1, success.2));
    let mut o = json!({"summary": summary, "operationId": op_id, "responses": responses});
    if let Some(req) = request {
        o["requestBody"] = body(req);
    }
    if params.as_array().is_some_and(|a| !a.is_empty()) {
        o["parameters"] = params;
    }
    if signed {
        o["security"] =
            json!([{"deviceSignature": [], "deviceId": [], "deviceTime": [], "deviceNonce": []}]);
    } else {
        o["security"] = json!([]);
    }
    o
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 128}})
}

const AUTH_ERRORS: &[u16] = &[400, 401, 404, 413];

fn query_param(name: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": ty, "minLength": 1, "maxLength": 128}})
}

/// A back-office operation: bearer operator key, `OperatorError` bodies.
fn admin_op(
    summary: &str,
    op_id: &str,
    request: Option<&str>,
    success: (&str, &str),
    errs: &[u16],
    params: Value,
) -> Value {
    let mut responses = serde_json::Map::new();
    for c in errs {
        responses.insert(
            c.to_string(),
            json!({"description": "Error; see `error.code`.", "content": {"application/json": {"schema": r("OperatorError")}}}),
        );
    }
    responses.insert("200".into(), ok(success.0, success.1));
    let mut o = json!({"summary": summary, "operationId": op_id, "tags": ["back office"], "responses": responses, "security": [{"operatorKey": []}]});
    if let Some(req) = request {
        o["requestBody"] = body(req);
    }
    if params.as_array().is_some_and(|a| !a.is_empty()) {
        o["parameters"] = params;
    }
    o
}

fn admin_paths() -> Value {
    // Issuing answers 201 and takes an optional body.
    let mut issue = admin_op(
        "Back office: issue a per-device, single-use enrollment token; the answer carries the token (`token`) this once, only its hash is kept (scope admin)",
        "adminIssueEnrollmentToken",
        Some("IssueEnrollmentTokenRequest"),
        ("IssuedEnrollmentToken", "The token, with its secret text."),
        &[400, 401, 403, 413],
        json!([]),
    );
    if let Some(responses) = issue["responses"].as_object_mut()
        && let Some(created) = responses.remove("200")
    {
        responses.insert("201".into(), created);
    }
    issue["requestBody"]["required"] = json!(false);
    json!({
            "/admin/v1/keys/me": {"get": admin_op("Back office: the calling operator key", "adminWhoAmI", None, ("OperatorKey", "The key (never its secret)."), &[401], json!([]))},
            "/admin/v1/payments": {"get": admin_op("Back office: search payments, newest first (scope read)", "adminSearchPayments", None, ("AdminPaymentList", "Matching payments."), &[400, 401, 403], json!([
                query_param("deviceId", "string"), query_param("appId", "string"), query_param("appOrderId", "string"),
                query_param("bindingId", "string"), query_param("wallet", "string"), query_param("amsPaymentId", "string"), query_param("paymentRequestId", "string"),
                {"name": "status", "in": "query", "required": false, "schema": {"type": "string", "enum": payment_statuses()}},
                {"name": "from", "in": "query", "required": false, "schema": {"type": "string", "format": "date-time"}, "description": "Created at or after (RFC 3339)."},
                {"name": "to", "in": "query", "required": false, "schema": {"type": "string", "format": "date-time"}, "description": "Created before (RFC 3339)."},
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
            ]))},
            "/admin/v1/payments/{paymentId}": {"get": admin_op("Back office: one payment with its refunds, declarations and full history (scope read)", "adminGetPayment", None, ("AdminPaymentDetail", "The payment."), &[401, 403, 404], json!([path_param("paymentId")]))},
            "/admin/v1/payments/{paymentId}/refunds": {"post": admin_op("Back office: refund fully or partly with a reason; idempotent per refundId (scope refund)", "adminRefund", Some("OperatorRefundRequest"), ("AdminRefund", "The refund."), &[400, 401, 403, 404, 409, 413, 422, 503], json!([path_param("paymentId")]))},
            "/admin/v1/payments/{paymentId}/cancel": {"post": admin_op("Back office: cancel within the cancel window (scope refund); after it, refund", "adminCancel", Some("ReasonRequest"), ("AdminPayment", "The cancelled payment."), &[400, 401, 403, 404, 409, 413, 422, 503], json!([path_param("paymentId")]))},
            "/admin/v1/payments/{paymentId}/declarations": {"post": admin_op("Back office: declare a CNY payment (or a sub-order) to customs; idempotent per declarationRequestId (scope refund)", "adminDeclare", Some("DeclareRequest"), ("Declaration", "The declaration (processing until customs answers)."), &[400, 401, 403, 404, 409, 413, 422, 503], json!([path_param("paymentId")]))},
            "/admin/v1/declarations": {"get": admin_op("Back office: inquire 1 to 10 declarations at Alipay and store the results (scope read)", "adminInquireDeclarations", None, ("DeclarationInquiry", "The declarations found, and the ids not found."), &[400, 401, 403, 503], json!([
                {"name": "ids", "in": "query", "required": true, "schema": {"type": "string"}, "description": "1 to 10 declaration request ids, comma-separated."}
            ]))},
            "/admin/v1/bindings/{bindingId}/revoke": {"post": admin_op("Back office: revoke a binding (scope admin)", "adminRevokeBinding", Some("ReasonRequest"), ("AdminBinding", "The binding."), &[400, 401, 403, 404, 409, 413, 503], json!([path_param("bindingId")]))},
            "/admin/v1/enrollment-tokens": {
                "post": issue,
                "get": admin_op("Back office: the enrollment tokens and where they stand, never their secrets (scope read)", "adminListEnrollmentTokens", None, ("EnrollmentTokenList", "Every token, oldest first."), &[401, 403], json!([]))
            },
            "/admin/v1/enrollment-tokens/{tokenId}": {"delete": admin_op("Back office: revoke an enrollment token (scope admin; idempotent). A device that already enrolled with it stays registered", "adminRevokeEnrollmentToken", None, ("EnrollmentToken", "The revoked token."), &[401, 403, 404], json!([path_param("tokenId")]))}
    })
}

fn admin_schemas() -> Value {
    let operator_codes: Vec<&str> = crate::error::OperatorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let text = |min: u32, max: u32| json!({"type": "string", "minLength": min, "maxLength": max});
    json!({
                "OperatorError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": operator_codes}, "message": {"type": "string"}}}}},
                "OperatorKey": {"type": "object", "required": ["keyId", "name", "scope", "createdAt"], "properties": {
                    "keyId": {"type": "string"}, "name": {"type": "string"}, "scope": {"type": "string", "enum": crate::store::Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()},
                    "createdAt": {"type": "string", "format": "date-time"}, "lastUsedAt": {"type": "string", "format": "date-time", "nullable": true}, "revokedAt": {"type": "string", "format": "date-time", "nullable": true}}},
                "AdminPayment": {"allOf": [r("Payment"), {"type": "object", "required": ["deviceId", "wallet", "refundable"], "properties": {
                    "deviceId": {"type": "string"}, "wallet": {"type": "string"}, "refundable": r("Amount"), "paidAt": {"type": "string", "format": "date-time"}}}]},
                "AdminPaymentList": {"type": "object", "required": ["payments"], "properties": {"payments": {"type": "array", "items": r("AdminPayment")}}},
                "AdminRefund": {"allOf": [r("Refund"), {"type": "object", "properties": {"reason": {"type": "string"}}}]},
                "HistoryEntry": {"type": "object", "required": ["at", "source", "subject", "step", "outcome"], "properties": {
                    "at": {"type": "string", "format": "date-time"}, "source": {"type": "string", "enum": ["step", "notification", "event", "operator"]},
                    "subject": {"type": "string"}, "step": {"type": "string"}, "outcome": {"type": "string"}}},
                "AdminPaymentDetail": {"type": "object", "required": ["payment", "refunds", "declarations", "history"], "properties": {
                    "payment": r("AdminPayment"), "refunds": {"type": "array", "items": r("AdminRefund")},
                    "declarations": {"type": "array", "items": r("Declaration")}, "history": {"type": "array", "items": r("HistoryEntry")}}},
                "OperatorRefundRequest": {"type": "object", "required": ["refundId", "amount", "reason"], "additionalProperties": false, "properties": {
                    "refundId": text(1, 64), "amount": r("Amount"), "reason": text(1, 256)}},
                "ReasonRequest": {"type": "object", "required": ["reason"], "additionalProperties": false, "properties": {"reason": text(1, 256)}},
                "DeclareRequest": {"type": "object", "required": ["declarationRequestId", "customsCode", "merchantCustomsCode", "merchantCustomsName", "amount"], "additionalProperties": false, "properties": {
                    "declarationRequestId": text(1, 32), "customsCode": {"type": "string", "enum": crate::domain::customs::CUSTOMS_CODES},
                    "merchantCustomsCode": text(1, 64), "merchantCustomsName": text(1, 256), "amount": r("Amount"), "subOrderId": text(1, 64)}},
                "Declaration": {"type": "object", "required": ["declarationRequestId", "paymentId", "customsCode", "merchantCustomsCode", "merchantCustomsName", "amount", "status", "operator", "createdAt", "updatedAt"], "properties": {
                    "declarationRequestId": {"type": "string"}, "paymentId": {"type": "string"}, "subOrderId": {"type": "string"}, "customsCode": {"type": "string"},
                    "merchantCustomsCode": {"type": "string"}, "merchantCustomsName": {"type": "string"}, "amount": r("Amount"),
                    "status": {"type": "string", "enum": crate::store::DeclarationStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()}, "resultCode": {"type": "string"}, "resultDesc": {"type": "string"},
                    "customsPaymentId": {"type": "string"}, "customsOrderId": {"type": "string"}, "identityCheckResult": {"type": "string"}, "clearingChannel": {"type": "string"},
                    "operator": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}}},
                "DeclarationInquiry": {"type": "object", "required": ["declarations", "notFound"], "properties": {
                    "declarations": {"type": "array", "items": r("Declaration")}, "notFound": {"type": "array", "items": {"type": "string"}}}},
                "AdminBinding": {"allOf": [r("Binding"), {"type": "object", "required": ["deviceId"], "properties": {"deviceId": {"type": "string"}}}]},
                "IssueEnrollmentTokenRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "label": text(1, crate::domain::enrollment::MAX_LABEL as u32), "expiresAt": {"type": "string", "format": "date-time", "description": "Expiry (RFC 3339); none: never. A time in the past makes a token that is refused at once."}}},
                "EnrollmentToken": {"type": "object", "required": ["tokenId", "state", "createdBy", "createdAt"], "properties": {
                    "tokenId": {"type": "string"}, "label": {"type": "string"},
                    "state": {"type": "string", "enum": crate::domain::enrollment::TokenState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()},
                    "createdBy": {"type": "string", "description": "The operator key id that issued it."}, "createdAt": {"type": "string", "format": "date-time"},
                    "expiresAt": {"type": "string", "format": "date-time"}, "revokedAt": {"type": "string", "format": "date-time"},
                    "usedAt": {"type": "string", "format": "date-time"}, "usedBy": {"type": "string", "description": "The device that enrolled with it."}}},
                "IssuedEnrollmentToken": {"allOf": [r("EnrollmentToken"), {"type": "object", "required": ["token"], "properties": {"token": {"type": "string", "description": "`sbe_<token id>_<secret>`: give it to the one device it is for. Shown only now."}}}]},
                "EnrollmentTokenList": {"type": "object", "required": ["tokens"], "properties": {"tokens": {"type": "array", "items": r("EnrollmentToken")}}}
    })
}

/// Subscriptions (issue 27): the device API and the back office.
fn subscription_paths() -> Value {
    let mut paths = json!({
        "/v1/subscriptions": {
            "post": op("Subscribe from a bound wallet: the server keeps a grant of the binding's tokens scoped to this subscription and charges each period itself (the first at once, or at the trial's end); idempotent per (device, appId, appSubscriptionId)", "subscribe", Some("SubscribeRequest"), (201, "Subscription", "A new subscription (200: the same terms sent again)."), &[400, 401, 403, 404, 409, 413, 503], json!([]), true),
            "get": op("This device's subscriptions, oldest first (restore after reinstall)", "listSubscriptions", None, (200, "SubscriptionList", "The subscriptions."), &[400, 401, 413], json!([query_param("appId", "string")]), true)
        },
        "/v1/subscriptions/{subscriptionId}": {"get": op("One subscription with its charges; with appId, only that app's (another's is not_found)", "getSubscription", None, (200, "Subscription", "The subscription."), AUTH_ERRORS, json!([path_param("subscriptionId"), query_param("appId", "string")]), true)},
        "/v1/subscriptions/{subscriptionId}/cancel": {"post": op("Cancel: no more charges, access until the period's end; cancelling again changes nothing; with appId, only that app's (another device's or app's is not_found)", "cancelSubscription", None, (200, "Subscription", "The cancelled (or already ended) subscription."), AUTH_ERRORS, json!([path_param("subscriptionId"), query_param("appId", "string")]), true)},
        "/admin/v1/subscriptions": {"get": admin_op("Back office: subscriptions, oldest first (scope read)", "adminSearchSubscriptions", None, ("AdminSubscriptionList", "Matching subscriptions."), &[400, 401, 403], json!([
            query_param("deviceId", "string"), query_param("appId", "string"), query_param("bindingId", "string"),
            {"name": "status", "in": "query", "required": false, "schema": {"type": "string", "enum": wire(SubscriptionStatus::ALL)}},
            {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
        ]))},
        "/admin/v1/subscriptions/renewals": {"post": admin_op("Back office: run a renewal pass now and answer when it is done (scope admin); the engine runs them by itself unless subscriptions.automatic is false", "adminRunRenewals", None, ("RenewalPass", "What the pass did."), &[401, 403, 503], json!([]))},
        "/admin/v1/subscriptions/{subscriptionId}": {"get": admin_op("Back office: one subscription with its charges (scope read)", "adminGetSubscription", None, ("AdminSubscription", "The subscription."), &[401, 403, 404], json!([path_param("subscriptionId")]))},
        "/admin/v1/subscriptions/{subscriptionId}/cancel": {"post": admin_op("Back office: cancel a subscription (scope refund): no more charges, access until the period's end", "adminCancelSubscription", Some("ReasonRequest"), ("AdminSubscription", "The subscription."), &[400, 401, 403, 404, 409, 413], json!([path_param("subscriptionId")]))},
        "/admin/v1/subscriptions/{subscriptionId}/periods/{periodIndex}/refunds": {"post": admin_op("Back office: refund a paid period (scope refund) through its charge's refund path (POST /admin/v1/payments/{paymentId}/refunds); the amount defaults to what is still refundable", "adminRefundPeriod", Some("PeriodRefundRequest"), ("AdminRefund", "The refund."), &[400, 401, 403, 404, 409, 413, 422, 503], json!([path_param("subscriptionId"), {"name": "periodIndex", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}]))}
    });
    paths["/v1/subscriptions"]["post"]["responses"]["200"] = ok(
        "Subscription",
        "The subscription this appSubscriptionId already names (same terms).",
    );
    paths
}

fn subscription_schemas() -> Value {
    use scanbind_device_api::limits::{MAX_APP_ID, MAX_APP_SUBSCRIPTION_ID, MAX_PLAN};
    let lim = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let text = |min: u32, max: u32| json!({"type": "string", "minLength": min, "maxLength": max});
    let intro = json!({"type": "object", "required": ["amountMinor", "periods"], "additionalProperties": false, "properties": {
        "amountMinor": {"type": "integer", "format": "int64", "minimum": 1, "description": "Price of one introductory period, less than amount."},
        "periods": {"type": "integer", "minimum": 1, "maximum": scanbind_device_api::limits::MAX_INTRODUCTORY_PERIODS}}});
    json!({
        "SubscribeRequest": {"type": "object", "required": ["appId", "appSubscriptionId", "bindingId", "sealedTokens", "plan", "amount", "period"], "additionalProperties": false, "properties": {
            "appId": text(1, lim(MAX_APP_ID)), "appSubscriptionId": text(1, lim(MAX_APP_SUBSCRIPTION_ID)),
            "bindingId": {"type": "string"}, "sealedTokens": {"type": "string"},
            "plan": text(1, lim(MAX_PLAN)), "amount": r("Amount"),
            "period": {"type": "string", "enum": SUBSCRIPTION_PERIODS, "description": "Billing period (ISO 8601): months are calendar months from the anchor."},
            "trial": {"type": "string", "enum": TRIAL_PERIODS, "description": "Free trial before the first charge."},
            "introductory": intro}},
        "IntroductoryOffer": intro,
        "SubscriptionCharge": {"type": "object", "required": ["periodIndex", "attempt", "paymentId", "paymentRequestId", "amount", "status"], "properties": {
            "periodIndex": {"type": "integer"}, "attempt": {"type": "integer"}, "paymentId": {"type": "string"},
            "paymentRequestId": {"type": "string", "description": "Derived from (subscription, period, attempt)."},
            "amount": r("Amount"), "status": {"type": "string", "enum": payment_statuses()},
            "resultCode": {"type": "string"}, "receipt": {"type": "string"}}},
        "Subscription": {"type": "object", "required": ["subscriptionId", "appId", "appSubscriptionId", "bindingId", "plan", "amount", "period", "status", "entitled", "periodsPaid", "charges", "createdAt", "updatedAt"], "properties": {
            "subscriptionId": {"type": "string"}, "appId": {"type": "string"}, "appSubscriptionId": {"type": "string"}, "bindingId": {"type": "string"},
            "plan": {"type": "string"}, "amount": r("Amount"), "period": {"type": "string"}, "trial": {"type": "string"}, "introductory": r("IntroductoryOffer"),
            "status": {"type": "string", "enum": wire(SubscriptionStatus::ALL)},
            "entitled": {"type": "boolean", "description": "Grant access now: trial, active, grace, or cancelled before currentPeriodEnd."},
            "currentPeriodEnd": {"type": "string", "format": "date-time"}, "periodsPaid": {"type": "integer"},
            "nextChargeAt": {"type": "string", "format": "date-time"}, "nextChargeAmount": r("Amount"),
            "reason": {"type": "string"},
            "receipt": {"type": "string", "description": "JWS compact (EdDSA, typ scanbind-subscription+jwt); verify against /v1/receipt-keys."},
            "charges": {"type": "array", "items": r("SubscriptionCharge")},
            "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}}},
        "SubscriptionList": {"type": "object", "required": ["subscriptions"], "properties": {"subscriptions": {"type": "array", "items": r("Subscription")}}},
        "AdminSubscription": {"allOf": [r("Subscription"), {"type": "object", "required": ["deviceId", "wallet", "grantHeld"], "properties": {
            "deviceId": {"type": "string"}, "wallet": {"type": "string"},
            "grantHeld": {"type": "boolean", "description": "Whether the server still holds the token grant (never the grant itself)."}}}]},
        "AdminSubscriptionList": {"type": "object", "required": ["subscriptions"], "properties": {"subscriptions": {"type": "array", "items": r("AdminSubscription")}}},
        "PeriodRefundRequest": {"type": "object", "required": ["refundId", "reason"], "additionalProperties": false, "properties": {
            "refundId": text(1, 64), "amount": r("Amount"), "reason": text(1, 256)}},
        "RenewalPass": {"type": "object", "required": ["now", "due", "charges", "skipped"], "properties": {
            "now": {"type": "string", "format": "date-time", "description": "The billing clock's time of the pass."},
            "due": {"type": "integer"}, "charges": {"type": "integer", "description": "Charges sent."},
            "skipped": {"type": "integer", "description": "Held by another pass (replica)."}}}
    })
}

fn checkout_paths() -> Value {
    let mut paths = json!({
        "/v1/checkouts": {"post": op("Combined checkout: pay several sellers, one payment per seller, optionally all-or-nothing; idempotent per (device, appId, appOrderId)", "createCheckout", Some("CheckoutRequest"), (200, "Checkout", "Final: succeeded, partially_succeeded or failed."), &[400, 401, 403, 404, 409, 413, 503], json!([]), true)},
        "/v1/checkouts/{checkoutId}": {"get": op("One combined checkout", "getCheckout", None, (200, "Checkout", "The checkout."), AUTH_ERRORS, json!([path_param("checkoutId")]), true)}
    });
    paths["/v1/checkouts"]["post"]["responses"]["202"] = ok(
        "Checkout",
        "Pending: a part's outcome is not known yet; the final checkout follows as the event checkout.result (or GET it).",
    );
    paths
}

fn checkout_schemas() -> Value {
    let text = |min: u32, max: u32| json!({"type": "string", "minLength": min, "maxLength": max});
    let part = json!({"type": "object", "required": ["index", "sellerId", "sellerName", "paymentId", "amountMinor", "description", "status", "reversed"], "properties": {
        "index": {"type": "integer"}, "sellerId": {"type": "string"}, "sellerName": {"type": "string"},
        "paymentId": {"type": "string", "description": "The part's payment: GET /v1/payments/{paymentId} and refunds work on it."},
        "amountMinor": {"type": "integer", "format": "int64"}, "description": {"type": "string"},
        "currency": {"type": "string", "description": "ISO 4217 code the part is priced in."},
        "conversion": r("Conversion"),
        "status": {"type": "string", "enum": payment_statuses()},
        "receipt": {"type": "string", "description": "JWS compact (EdDSA) naming the seller (sellerId and checkoutId claims)."},
        "resultCode": {"type": "string"}, "resultMessage": {"type": "string"},
        "reversed": {"type": "boolean", "description": "Paid, then cancelled or refunded in full because another part of an all-or-nothing checkout failed."}}});
    json!({
        "CheckoutRequest": {"type": "object", "required": ["appId", "appOrderId", "bindingId", "sealedTokens", "currency", "allOrNothing", "parts"], "additionalProperties": false, "properties": {
            "appId": text(1, 128), "appOrderId": text(1, 64), "bindingId": {"type": "string"}, "sealedTokens": {"type": "string"},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}, "allOrNothing": {"type": "boolean"},
            "parts": {"type": "array", "minItems": 2, "maxItems": 20, "description": "At most 6 when allOrNothing.", "items": {"type": "object", "required": ["sellerId", "amountMinor", "description"], "additionalProperties": false, "properties": {
                "sellerId": text(1, 64), "amountMinor": {"type": "integer", "format": "int64", "minimum": 1},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "What the part is priced in: the checkout's currency when absent, or the seller's own pricing currency (sellers[].currency), paid in the wallet's currency at Alipay's quote."},
                "description": text(1, 256)}}}}},
        "Conversion": {"type": "object", "required": ["paid", "quoteCurrencyPair", "quotePrice"], "description": "What the wallet paid for a payment priced in another currency (Alipay's actualPaymentAmount and paymentQuote).", "properties": {
            "paid": r("Amount"), "quoteCurrencyPair": {"type": "string", "example": "USD/HKD"},
            "quotePrice": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "example": "7.82608695"}}},
        "CheckoutPart": part,
        "Checkout": {"type": "object", "required": ["checkoutId", "appId", "appOrderId", "status", "allOrNothing", "currency", "totalMinor", "createdAt", "expiresAt", "parts"], "properties": {
            "checkoutId": {"type": "string"}, "appId": {"type": "string"}, "appOrderId": {"type": "string"},
            "status": {"type": "string", "enum": wire(&[CheckoutStatus::Pending, CheckoutStatus::Succeeded, CheckoutStatus::PartiallySucceeded, CheckoutStatus::Failed])},
            "allOrNothing": {"type": "boolean"}, "currency": {"type": "string"}, "totalMinor": {"type": "integer", "format": "int64"},
            "createdAt": {"type": "string", "format": "date-time"}, "expiresAt": {"type": "string", "format": "date-time"},
            "parts": {"type": "array", "items": r("CheckoutPart")}}}
    })
}

/// The document.
pub fn document() -> Value {
    let amount = json!({"type": "object", "required": ["currency", "value"], "additionalProperties": false, "properties": {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "example": "HKD"},
        "value": {"type": "integer", "format": "int64", "minimum": 0, "description": "Minor units (cents; whole yen)."}}});
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let binding = json!({"type": "object", "required": ["bindingId", "wallet", "status", "createdAt"], "properties": {
        "bindingId": {"type": "string"}, "wallet": {"type": "string"},
        "status": {"type": "string", "enum": wire(&[BindingStatus::Pending, BindingStatus::Active, BindingStatus::Failed, BindingStatus::Expired, BindingStatus::Revoked, BindingStatus::Cancelled])},
        "userLoginId": {"type": "string"}, "accessTokenExpiresAt": {"type": "string"}, "refreshTokenExpiresAt": {"type": "string"},
        "sealedTokens": {"type": "string"}, "reason": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"}}});
    let payment = json!({"type": "object", "required": ["paymentId", "paymentRequestId", "appId", "appOrderId", "product", "amount", "description", "status", "refunded", "createdAt", "updatedAt"], "properties": {
        "paymentId": {"type": "string"}, "paymentRequestId": {"type": "string"}, "appId": {"type": "string"}, "appOrderId": {"type": "string"},
        "product": {"type": "string", "enum": wire(&[PaymentProduct::Agreement, PaymentProduct::OrderCode])},
        "bindingId": {"type": "string"},
        "orderCode": {"type": "object", "required": ["codeValue", "expiresAt"], "properties": {"codeValue": {"type": "string"}, "expiresAt": {"type": "string", "format": "date-time"}}},
        "amount": r("Amount"), "description": {"type": "string"},
        "status": {"type": "string", "enum": payment_statuses()},
        "resultCode": {"type": "string"}, "resultMessage": {"type": "string"}, "amsPaymentId": {"type": "string"},
        "refunded": r("Amount"), "conversion": r("Conversion"), "receipt": {"type": "string", "description": "JWS compact (EdDSA); verify against /v1/receipt-keys."},
        "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}}});
    let refund = json!({"type": "object", "required": ["refundId", "refundRequestId", "paymentId", "amount", "status", "createdAt"], "properties": {
        "refundId": {"type": "string"}, "refundRequestId": {"type": "string"}, "paymentId": {"type": "string"}, "amount": r("Amount"),
        "status": {"type": "string", "enum": wire(&[RefundStatus::Pending, RefundStatus::Succeeded, RefundStatus::Failed])}, "resultCode": {"type": "string"},
        "amsRefundId": {"type": "string"}, "receipt": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"}}});
    let text = |min: u32, max: u32| json!({"type": "string", "minLength": min, "maxLength": max});
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "scanbind-server device API",
            "version": "1",
            "description": "The API between a scanbind device (scanbindd) and the merchant server. Every operation except registration-free reads (receipt keys, this document, health) is signed by the device key: see docs/server.md, \"Device authentication\". Errors carry a stable `error.code`. The back office (tag `back office`, under /admin/v1) is served only on the server's operator listener (`server.admin_listen`, loopback by default), never on the devices' public listener (which answers 404 there), and is authenticated by operator keys instead: see docs/operator.md."
        },
        "paths": {
            "/v1/devices": {"post": op("Register a device key; a new device in token registration mode presents its own single-use enrollment token (`provisioningToken`), otherwise `registration_refused`", "registerDevice", Some("RegisterDeviceRequest"), (201, "Device", "Registered (200 when the key was already registered)."), &[400, 401, 403, 413], json!([]), true)},
            "/v1/devices/me": {"get": op("The calling device", "getDevice", None, (200, "Device", "The device."), AUTH_ERRORS, json!([]), true)},
            "/v1/bindings": {
                "post": op("Start binding a wallet (Scan to Bind)", "startBinding", Some("StartBindingRequest"), (201, "StartBindingResponse", "The QR code to show."), &[400, 401, 404, 413, 422, 503], json!([]), true),
                "get": op("List this device's bindings", "listBindings", None, (200, "BindingList", "Bindings, oldest first."), AUTH_ERRORS, json!([]), true)
            },
            "/v1/bindings/{bindingId}": {"get": op("One binding", "getBinding", None, (200, "Binding", "The binding."), AUTH_ERRORS, json!([path_param("bindingId")]), true)},
            "/v1/bindings/{bindingId}/refresh": {"post": op("Refresh the binding's tokens", "refreshTokens", Some("SealedTokensRequest"), (200, "Binding", "The binding with new sealed tokens."), &[400, 401, 403, 404, 409, 413, 422, 503], json!([path_param("bindingId")]), true)},
            "/v1/bindings/{bindingId}/revoke": {"post": op("Unbind (revoke the token at Alipay)", "revokeBinding", Some("SealedTokensRequest"), (200, "Binding", "The revoked binding."), &[400, 401, 403, 404, 409, 413, 422, 503], json!([path_param("bindingId")]), true)},
            "/v1/events": {"get": {
                "summary": "The device's event stream (Server-Sent Events)", "operationId": "events",
                "security": [{"deviceSignature": [], "deviceId": [], "deviceTime": [], "deviceNonce": []}],
                "parameters": [{"name": "after", "in": "query", "required": false, "schema": {"type": "integer", "format": "int64"}, "description": "Resume after this sequence number (or send Last-Event-ID). Without it the stream starts with new events."}],
                "responses": {"200": {"description": "`text/event-stream`: `event:` is the type, `id:` the sequence number, `data:` an EventEnvelope.", "content": {"text/event-stream": {"schema": r("EventEnvelope")}}},
                              "400": {"description": "Error", "content": {"application/json": {"schema": r("ApiError")}}},
                              "401": {"description": "Error", "content": {"application/json": {"schema": r("ApiError")}}}}}},
            "/v1/payments": {"post": op("Pay from a bound wallet (agreement payment); idempotent per (device, appId, appOrderId)", "pay", Some("PayRequest"), (200, "Payment", "The payment (maybe still pending)."), &[400, 401, 403, 404, 409, 413, 503], json!([]), true)},
            "/v1/payments/order-code": {"post": op("Pay once by scanning an order QR code (Order Code Payment); idempotent per (device, appId, appOrderId)", "payOrderCode", Some("OrderCodePayRequest"), (200, "Payment", "The payment, pending with its orderCode until the user pays."), &[400, 401, 409, 413, 503], json!([]), true)},
            "/v1/payments/{paymentId}": {"get": op("One payment", "getPayment", None, (200, "Payment", "The payment."), AUTH_ERRORS, json!([path_param("paymentId")]), true)},
            "/v1/payments/{paymentId}/inquire": {"post": op("Ask Alipay now about a pending payment", "inquirePayment", None, (200, "Payment", "The payment."), &[400, 401, 404, 413, 503], json!([path_param("paymentId")]), true)},
            "/v1/payments/{paymentId}/cancel": {"post": op("Cancel a payment (full amount)", "cancelPayment", None, (200, "Payment", "The payment."), &[400, 401, 404, 413, 422, 503], json!([path_param("paymentId")]), true)},
            "/v1/payments/{paymentId}/refunds": {"post": op("Refund (full or partial); idempotent per refundId", "refund", Some("RefundRequest"), (200, "Refund", "The refund (maybe still pending)."), &[400, 401, 404, 409, 413, 503], json!([path_param("paymentId")]), true)},
            "/v1/payments/{paymentId}/refunds/{refundId}": {"get": op("One refund (inquires Alipay while pending)", "getRefund", None, (200, "Refund", "The refund."), &[400, 401, 404, 413, 503], json!([path_param("paymentId"), path_param("refundId")]), true)},
            "/v1/receipt-keys": {"get": op("Public keys that verify receipts (JWKS)", "receiptKeys", None, (200, "ReceiptKeySet", "Current key first."), &[], json!([]), false)},
            "/v1/openapi.json": {"get": {"summary": "This document", "operationId": "openapi", "security": [], "responses": {"200": {"description": "OpenAPI 3.0 JSON.", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
        },
        "components": {
            "securitySchemes": {
                "operatorKey": {"type": "http", "scheme": "bearer", "description": "An operator key `sbk_<key id>_<secret>` (`scanbind-server admin keys create`)."},
                "deviceId": {"type": "apiKey", "in": "header", "name": "x-scanbind-device"},
                "deviceTime": {"type": "apiKey", "in": "header", "name": "x-scanbind-time"},
                "deviceNonce": {"type": "apiKey", "in": "header", "name": "x-scanbind-nonce"},
                "deviceSignature": {"type": "apiKey", "in": "header", "name": "x-scanbind-signature", "description": "Ed25519 over the canonical string (docs/server.md)."}
            },
            "schemas": {
                "Amount": amount,
                "ApiError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": codes}, "message": {"type": "string"}}}}},
                "RegisterDeviceRequest": {"type": "object", "required": ["publicKey", "name", "model"], "additionalProperties": false, "properties": {
                    "publicKey": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}, "name": text(1, 64), "model": text(0, 64), "provisioningToken": {"type": "string", "description": "The device's enrollment token `sbe_<token id>_<secret>` issued by the operator (required for a new device unless the server runs with open registration). Single use: the first device registering with it consumes it; a token used by another device, revoked, expired or not valid is refused with `registration_refused`."}}},
                "Device": {"type": "object", "required": ["deviceId", "name", "model", "registeredAt"], "properties": {
                    "deviceId": {"type": "string"}, "name": {"type": "string"}, "model": {"type": "string"}, "registeredAt": {"type": "string", "format": "date-time"}}},
                "StartBindingRequest": {"type": "object", "required": ["wallet"], "additionalProperties": false, "properties": {"wallet": {"type": "string", "example": "ALIPAY_HK"}}},
                "StartBindingResponse": {"type": "object", "required": ["bindingId", "codeValue", "expiresAt", "deviceName", "matchCode"], "properties": {
                    "bindingId": {"type": "string"}, "codeValue": {"type": "string"}, "expiresAt": {"type": "string", "format": "date-time"},
                    "deviceName": {"type": "string"}, "matchCode": {"type": "string"}}},
                "Binding": binding,
                "BindingList": {"type": "array", "items": r("Binding")},
                "SealedTokensRequest": {"type": "object", "required": ["sealedTokens"], "additionalProperties": false, "properties": {"sealedTokens": {"type": "string"}}},
                "PayRequest": {"type": "object", "required": ["appId", "appOrderId", "bindingId", "sealedTokens", "amount", "description"], "additionalProperties": false, "properties": {
                    "appId": text(1, 128), "appOrderId": text(1, 64), "bindingId": {"type": "string"}, "sealedTokens": {"type": "string"},
                    "amount": r("Amount"), "description": text(1, 256)}},
                "Payment": payment,
                "OrderCodePayRequest": {"type": "object", "required": ["appId", "appOrderId", "amount", "description"], "additionalProperties": false, "properties": {
                    "appId": text(1, 128), "appOrderId": text(1, 64), "amount": r("Amount"), "description": text(1, 256)}},
                "RefundRequest": {"type": "object", "required": ["refundId", "amount"], "additionalProperties": false, "properties": {
                    "refundId": text(1, 64), "amount": r("Amount"), "reason": text(1, 256)}},
                "Refund": refund,
                "EventEnvelope": {"type": "object", "required": ["seq", "createdAt", "type", "data"], "properties": {
                    "seq": {"type": "integer", "format": "int64"}, "createdAt": {"type": "string", "format": "date-time"},
                    "type": {"type": "string", "enum": ["binding.completed", "binding.failed", "binding.expired", "token.cancelled", "token.refreshed", "payment.result", "refund.result", "checkout.result",
                        "subscription.renewed", "subscription.renewal_failed", "subscription.grace", "subscription.expired", "subscription.cancelled"]},
                    "data": {"type": "object", "description": "A Binding, Payment, Refund, Checkout or Subscription, by type."}}},
                "ReceiptKeySet": {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {"type": "object", "required": ["kty", "crv", "alg", "use", "kid", "x"], "properties": {
                    "kty": {"type": "string", "enum": ["OKP"]}, "crv": {"type": "string", "enum": ["Ed25519"]}, "alg": {"type": "string", "enum": ["EdDSA"]},
                    "use": {"type": "string"}, "kid": {"type": "string"}, "x": {"type": "string"}}}}}}
            }
        }
    });
    if let (Some(p), Some(extra)) = (doc["paths"].as_object_mut(), checkout_paths().as_object()) {
        p.extend(extra.clone());
    }
    if let (Some(p), Some(extra)) = (
        doc["components"]["schemas"].as_object_mut(),
        checkout_schemas().as_object(),
    ) {
        p.extend(extra.clone());
    }
    if let (Some(p), Some(extra)) = (
        doc["paths"].as_object_mut(),
        subscription_paths().as_object(),
    ) {
        p.extend(extra.clone());
    }
    if let (Some(p), Some(extra)) = (
        doc["components"]["schemas"].as_object_mut(),
        subscription_schemas().as_object(),
    ) {
        p.extend(extra.clone());
    }
    if let (Some(p), Some(extra)) = (doc["paths"].as_object_mut(), admin_paths().as_object()) {
        p.extend(extra.clone());
    }
    if let (Some(p), Some(extra)) = (
        doc["components"]["schemas"].as_object_mut(),
        admin_schemas().as_object(),
    ) {
        p.extend(extra.clone());
    }
    doc
}

/// The document as pretty JSON text with a final newline (the form checked into `docs/`).
pub fn document_text() -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&document()).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_document_matches_docs() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == super::document_text(),
            "docs/openapi.json is stale: run `cargo run -p scanbind-server -- openapi > docs/openapi.json`"
        );
    }
}

#[cfg(test)]
mod doc_tests {
    /// `docs/server.md` documents every error code and every configuration key.
    #[test]
    fn server_doc_covers_codes_and_keys() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/server.md"))
                .unwrap();
        for code in scanbind_device_api::ErrorCode::ALL {
            assert!(
                doc.contains(&format!("| `{}` |", code.as_str())),
                "docs/server.md lacks error code {code}"
            );
        }
        // Every key the loader accepts: an unknown key is an error naming it, a known one is not.
        let keys = [
            "server.listen",
            "server.admin_listen",
            "server.public_base_url",
            "tls.mode",
            "tls.cert_file",
            "tls.key_file",
            "ams.region",
            "ams.base_url",
            "ams.client_id",
            "ams.merchant_private_key",
            "ams.alipay_public_key",
            "ams.key_version",
            "ams.max_attempts",
            "ams.attempt_timeout_ms",
            "database.url",
            "database.max_connections",
            "tokens.sealing_keys",
            "receipts.signing_key",
            "receipts.retired_keys",
            "devices.registration",
            "devices.provisioning_token",
            "devices.clock_window_seconds",
            "payments.expiry_seconds",
            "payments.inquiry_backoff_ms",
            "payments.in_flight_grace_ms",
            "payments.binding_ttl_seconds",
            "subscriptions.clock",
            "subscriptions.retry_after_hours",
            "subscriptions.automatic",
        ];
        for key in keys {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "docs/server.md lacks configuration key {key}"
            );
            let (section, name) = key.split_once('.').unwrap();
            let table: toml::Table = format!("[{section}]\n{name} = {{ bogus = 1 }}\n")
                .parse()
                .unwrap();
            let err = serde_path_to_error::deserialize::<_, crate::config::Config>(
                toml::Value::Table(table),
            )
            .unwrap_err();
            assert!(
                err.path().to_string().starts_with(key),
                "{key} is not a configuration key: {err}"
            );
        }
    }
}
