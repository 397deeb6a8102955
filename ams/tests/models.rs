//! Typed AMS models: the documented JSON examples (ams-api.md §5, §7), SDK body forms,
//! unknown-field preservation, validation rules, secret redaction and the wallet table.

use scanbind_ams::model::*;
use scanbind_ams::wallet::{Wallet, WalletProfile};
use scanbind_ams::{Amount, AmsResult, Currency, MinorUnits, ResultCode, ResultStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Parses `json`, re-serializes, re-parses, and checks both parses are equal.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(json: &str) -> T {
    let first: T = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let text = serde_json::to_string(&first).unwrap();
    let second: T = serde_json::from_str(&text).unwrap();
    assert_eq!(first, second, "round trip changed the value: {text}");
    first
}

fn amount(currency: &str, value: &str) -> Amount {
    Amount {
        currency: currency.into(),
        value: value.into(),
    }
}

fn assert_field<T: Debug>(r: Result<T, FieldError>, field: &str) {
    match r {
        Err(e) => assert_eq!(e.field, field, "{e}"),
        Ok(v) => panic!("expected an error on {field}, got Ok({v:?})"),
    }
}

const SUCCESS: &str = r#"{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}"#;

// ---------------------------------------------------------------------------------------
// Documented examples
// ---------------------------------------------------------------------------------------

const CONSULT_REQ: &str = r#"{"customerBelongsTo":"GCASH","authRedirectUrl":"https://merchant.example/auth/return",
 "authNotifyUrl":"https://merchant.example/notify/auth","scopes":["AGREEMENT_PAY"],
 "authState":"663A8FA9-D836-48EE-8AA1-1FF682989DC7","terminalType":"WEB","env":{"terminalType":"WEB"}}"#;

const CONSULT_RESP: &str = r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"},
 "authCodeForm":{"codeDetails":[
   {"codeValueType":"QRCODE","displayType":"TEXT","codeValue":"https://global.alipay.com/2810020400931LFH2t2mq1jjJ8zSetyv31VU"},
   {"codeValueType":"QRCODE","displayType":"BIGIMAGE","codeValue":"https://<image-host>/qr.png"}]}}"#;

const AUTH_NOTIFY_CODE: &str = r#"{"authorizationNotifyType":"AUTHCODE_CREATED","authCode":"3AB2F588D14B43238637264FCA5AAF35",
 "authState":"663A8FA9-D836-48EE-8AA1-1FF682989DC7",
 "result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;

const AUTH_NOTIFY_CANCEL: &str = r#"{"authorizationNotifyType":"TOKEN_CANCELED","accessToken":"28100103_20215703001538122119",
 "reason":"user unbind","result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;

const APPLY_TOKEN_REQ: &str = r#"{"grantType":"AUTHORIZATION_CODE","customerBelongsTo":"GCASH","authCode":"3AB2F588D14B43238637264FCA5AAF35"}"#;

const APPLY_TOKEN_RESP: &str = r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"},
 "accessToken":"28100103_20215703001538122119","accessTokenExpiryTime":"2025-01-01T00:00:00+08:00",
 "refreshToken":"28100103_20215703001538122120","refreshTokenExpiryTime":"2025-07-01T00:00:00+08:00",
 "userLoginId":"63****1234"}"#;

const REFRESH_REQ: &str = r#"{"grantType":"REFRESH_TOKEN","customerBelongsTo":"GCASH","refreshToken":"28100103_20215703001538122120"}"#;

const PAY_REQ: &str = r#"{"productCode":"AGREEMENT_PAYMENT","paymentRequestId":"pay_20240101_0001",
 "order":{"referenceOrderId":"ord_0001","orderDescription":"In-game coins",
          "orderAmount":{"currency":"PHP","value":"30000"},"env":{"terminalType":"WEB"}},
 "paymentAmount":{"currency":"PHP","value":"30000"},
 "paymentMethod":{"paymentMethodType":"GCASH","paymentMethodId":"28100103_20215703001538122119"},
 "paymentNotifyUrl":"https://merchant.example/notify/pay",
 "settlementStrategy":{"settlementCurrency":"USD"},"env":{"terminalType":"WEB"}}"#;

const PAY_RESP: &str = r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"},
 "paymentRequestId":"pay_20240101_0001","paymentId":"20240101194010800100188000000001",
 "paymentAmount":{"currency":"PHP","value":"30000"},
 "paymentCreateTime":"2024-01-01T12:00:00+08:00","paymentTime":"2024-01-01T12:00:01+08:00"}"#;

const INQUIRY_RESP: &str = r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"},
 "paymentStatus":"FAIL","paymentResultCode":"USER_BALANCE_NOT_ENOUGH",
 "paymentResultMessage":"user balance not enough","paymentRequestId":"pay_20240101_0001",
 "paymentId":"20240101194010800100188000000001","paymentAmount":{"currency":"PHP","value":"30000"}}"#;

const REFUND_REQ: &str = r#"{"refundRequestId":"rf_0001","paymentId":"20240101194010800100188000000001",
 "refundAmount":{"currency":"PHP","value":"10000"},"refundReason":"partial return",
 "refundNotifyUrl":"https://merchant.example/notify/refund"}"#;

const ORDER_CODE_REQ: &str = r#"{"productCode":"IN_STORE_PAYMENT","paymentRequestId":"oc_0001",
 "paymentFactor":{"inStorePaymentScenario":"OrderCode"},
 "paymentMethod":{"paymentMethodType":"CONNECT_WALLET"},
 "paymentAmount":{"currency":"HKD","value":"1000"},
 "order":{"referenceOrderId":"ord_oc_0001","orderDescription":"Coffee","orderAmount":{"currency":"HKD","value":"1000"},
   "merchant":{"referenceMerchantId":"M0001","merchantMCC":"5812","merchantName":"Cafe",
     "store":{"referenceStoreId":"S01","storeName":"Cafe Central","storeMCC":"5812"}}},
 "paymentExpiryTime":"2024-01-01T12:10:00+08:00","paymentNotifyUrl":"https://merchant.example/notify/pay"}"#;

const ORDER_CODE_RESP: &str = r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"},
 "paymentRequestId":"oc_0001","paymentId":"20240101194010800100188000000002",
 "orderCodeForm":{"paymentMethodType":"CONNECT_WALLET","expireTime":"2024-01-01T12:10:00+08:00",
   "codeDetails":[{"codeValueType":"QRCODE","displayType":"TEXT","codeValue":"https://gqr.alipay.com/2810170400"}]}}"#;

#[test]
fn result_example() {
    let r: AmsResult = serde_json::from_str(SUCCESS).unwrap();
    assert_eq!(r, AmsResult::success());
    let resp: RevokeResponse = round_trip(&format!(r#"{{"result":{SUCCESS}}}"#));
    assert!(resp.result().is_success());
    assert!(resp.extra.is_empty());
}

#[test]
fn consult_examples() {
    let req: ConsultRequest = round_trip(CONSULT_REQ);
    assert_eq!(req.customer_belongs_to, Wallet::Gcash);
    assert_eq!(req.scopes, vec![Scope::AgreementPay]);
    assert_eq!(req.auth_state, "663A8FA9-D836-48EE-8AA1-1FF682989DC7");
    assert_eq!(req.terminal_type, Some(TerminalType::Web));
    assert_eq!(req.env, Some(Env::web()));
    assert_eq!(
        req.auth_notify_url.as_deref(),
        Some("https://merchant.example/notify/auth")
    );
    assert!(req.extra.is_empty());
    req.validate().unwrap();

    // The constructor builds exactly the documented request.
    let built = ConsultRequest::scan_to_bind(
        Wallet::Gcash,
        "663A8FA9-D836-48EE-8AA1-1FF682989DC7",
        "https://merchant.example/auth/return",
        "https://merchant.example/notify/auth",
    );
    assert_eq!(built, req);
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        serde_json::from_str::<serde_json::Value>(CONSULT_REQ).unwrap()
    );

    let resp: ConsultResponse = round_trip(CONSULT_RESP);
    assert!(resp.result.is_success());
    let form = resp.auth_code_form.as_ref().unwrap();
    assert_eq!(form.code_details.len(), 2);
    assert_eq!(form.code_details[1].display_type, DisplayType::Bigimage);
    assert_eq!(
        form.qr_text(),
        Some("https://global.alipay.com/2810020400931LFH2t2mq1jjJ8zSetyv31VU")
    );
}

#[test]
fn authorization_notification_examples() {
    let n: AuthorizationNotification = round_trip(AUTH_NOTIFY_CODE);
    assert_eq!(
        n.authorization_notify_type,
        AuthorizationNotifyType::AuthcodeCreated
    );
    assert_eq!(
        n.auth_code.as_ref().unwrap().expose(),
        "3AB2F588D14B43238637264FCA5AAF35"
    );
    assert_eq!(
        n.auth_state.as_deref(),
        Some("663A8FA9-D836-48EE-8AA1-1FF682989DC7")
    );
    assert!(n.result().is_success());
    n.validate().unwrap();
    assert_eq!(
        AuthorizationNotification::authcode_created(
            "3AB2F588D14B43238637264FCA5AAF35",
            "663A8FA9-D836-48EE-8AA1-1FF682989DC7"
        ),
        n
    );
    assert_eq!(
        <AuthorizationNotification as Notification>::KIND,
        NotificationKind::Authorization
    );

    let n: AuthorizationNotification = round_trip(AUTH_NOTIFY_CANCEL);
    assert_eq!(
        n.authorization_notify_type,
        AuthorizationNotifyType::TokenCanceled
    );
    assert_eq!(
        n.access_token.as_ref().unwrap().expose(),
        "28100103_20215703001538122119"
    );
    assert_eq!(n.reason.as_deref(), Some("user unbind"));
    n.validate().unwrap();
    assert_eq!(
        AuthorizationNotification::token_canceled("28100103_20215703001538122119", "user unbind"),
        n
    );
}

#[test]
fn apply_token_examples() {
    let req: ApplyTokenRequest = round_trip(APPLY_TOKEN_REQ);
    assert_eq!(req.grant_type, GrantType::AuthorizationCode);
    assert_eq!(req.customer_belongs_to, Wallet::Gcash);
    req.validate().unwrap();
    assert_eq!(
        ApplyTokenRequest::authorization_code(Wallet::Gcash, "3AB2F588D14B43238637264FCA5AAF35"),
        req
    );

    let resp: ApplyTokenResponse = round_trip(APPLY_TOKEN_RESP);
    assert_eq!(
        resp.access_token.as_ref().unwrap().expose(),
        "28100103_20215703001538122119"
    );
    assert_eq!(
        resp.refresh_token.as_ref().unwrap().expose(),
        "28100103_20215703001538122120"
    );
    assert_eq!(
        resp.access_token_expiry_time.as_deref(),
        Some("2025-01-01T00:00:00+08:00")
    );
    assert_eq!(resp.user_login_id.as_deref(), Some("63****1234"));
    // Secrets serialize as plain strings.
    let text = serde_json::to_string(&resp).unwrap();
    assert!(text.contains(r#""accessToken":"28100103_20215703001538122119""#));

    let req: ApplyTokenRequest = round_trip(REFRESH_REQ);
    assert_eq!(req.grant_type, GrantType::RefreshToken);
    req.validate().unwrap();
    assert_eq!(
        ApplyTokenRequest::refresh(Wallet::Gcash, "28100103_20215703001538122120"),
        req
    );
}

#[test]
fn pay_examples() {
    let req: PayRequest = round_trip(PAY_REQ);
    assert_eq!(req.product_code, ProductCode::AgreementPayment);
    assert_eq!(req.idempotency_key(), Some("pay_20240101_0001"));
    assert_eq!(req.payment_amount, amount("PHP", "30000"));
    assert_eq!(req.payment_method.payment_method_type, "GCASH");
    assert_eq!(
        req.payment_method
            .payment_method_id
            .as_ref()
            .unwrap()
            .expose(),
        "28100103_20215703001538122119"
    );
    assert_eq!(
        req.settlement_strategy
            .as_ref()
            .unwrap()
            .settlement_currency
            .as_deref(),
        Some("USD")
    );
    assert_eq!(req.order.env, Some(Env::web()));
    req.validate().unwrap();

    let mut order = Order::new("ord_0001", "In-game coins", amount("PHP", "30000"));
    order.env = Some(Env::web());
    let mut built = PayRequest::agreement(
        "pay_20240101_0001",
        order,
        amount("PHP", "30000"),
        Wallet::Gcash,
        SecretString::new("28100103_20215703001538122119"),
    );
    built.payment_notify_url = Some("https://merchant.example/notify/pay".into());
    built.settlement_strategy = Some(SettlementStrategy {
        settlement_currency: Some("USD".into()),
    });
    assert_eq!(built, req);

    let resp: PayResponse = round_trip(PAY_RESP);
    assert!(resp.result.is_success());
    assert_eq!(
        resp.payment_id.as_deref(),
        Some("20240101194010800100188000000001")
    );
    assert_eq!(
        resp.payment_request_id.as_deref(),
        Some("pay_20240101_0001")
    );
    assert_eq!(
        resp.payment_time.as_deref(),
        Some("2024-01-01T12:00:01+08:00")
    );
    assert_eq!(
        resp.payment_amount.unwrap().to_money().unwrap().minor(),
        MinorUnits::new(30000).unwrap()
    );
}

#[test]
fn inquiry_payment_example() {
    let resp: InquiryPaymentResponse = round_trip(INQUIRY_RESP);
    assert!(resp.result.is_success());
    assert_eq!(resp.payment_status, Some(PaymentStatus::Fail));
    assert!(resp.payment_status.as_ref().unwrap().is_final());
    assert_eq!(
        resp.payment_result_code,
        Some(ResultCode::UserBalanceNotEnough)
    );
    assert_eq!(
        resp.payment_result_message.as_deref(),
        Some("user balance not enough")
    );
}

#[test]
fn refund_example() {
    let req: RefundRequest = round_trip(REFUND_REQ);
    assert_eq!(req.idempotency_key(), Some("rf_0001"));
    assert_eq!(req.refund_amount, amount("PHP", "10000"));
    assert_eq!(req.refund_reason.as_deref(), Some("partial return"));
    req.validate().unwrap();
    let mut built = RefundRequest::new(
        "rf_0001",
        "20240101194010800100188000000001",
        amount("PHP", "10000"),
    );
    built.refund_reason = Some("partial return".into());
    built.refund_notify_url = Some("https://merchant.example/notify/refund".into());
    assert_eq!(built, req);
}

#[test]
fn order_code_examples() {
    let req: PayRequest = round_trip(ORDER_CODE_REQ);
    assert_eq!(req.product_code, ProductCode::InStorePayment);
    assert_eq!(
        req.in_store_scenario(),
        Some(&InStorePaymentScenario::OrderCode)
    );
    assert_eq!(
        req.payment_method.payment_method_type,
        PaymentMethod::CONNECT_WALLET
    );
    assert!(req.payment_method.payment_method_id.is_none());
    let merchant = req.order.merchant.as_ref().unwrap();
    assert_eq!(merchant.merchant_mcc.as_deref(), Some("5812"));
    assert_eq!(
        merchant.store.as_ref().unwrap().store_mcc.as_deref(),
        Some("5812")
    );
    req.validate().unwrap();
    // Mixed-case scenario and upper-case MCC keys survive serialization.
    let text = serde_json::to_string(&req).unwrap();
    assert!(text.contains(r#""inStorePaymentScenario":"OrderCode""#));
    assert!(text.contains(r#""merchantMCC":"5812""#));
    assert!(text.contains(r#""storeMCC":"5812""#));

    let mut order = Order::new("ord_oc_0001", "Coffee", amount("HKD", "1000"));
    order.merchant = Some(Merchant::new(
        "M0001",
        "5812",
        "Cafe",
        Store::new("S01", "Cafe Central", "5812"),
    ));
    let mut built = PayRequest::order_code("oc_0001", order, amount("HKD", "1000"));
    built.payment_expiry_time = Some("2024-01-01T12:10:00+08:00".into());
    built.payment_notify_url = Some("https://merchant.example/notify/pay".into());
    assert_eq!(built, req);

    let resp: PayResponse = round_trip(ORDER_CODE_RESP);
    let form = resp.order_code_form.as_ref().unwrap();
    assert_eq!(form.payment_method_type.as_deref(), Some("CONNECT_WALLET"));
    assert_eq!(form.qr_text(), Some("https://gqr.alipay.com/2810170400"));
}

#[test]
fn other_endpoint_bodies() {
    let cancel: CancelResponse = round_trip(&format!(
        r#"{{"result":{SUCCESS},"paymentId":"p1","paymentRequestId":"r1","cancelTime":"2024-01-01T12:00:00+08:00"}}"#
    ));
    assert_eq!(
        cancel.cancel_time.as_deref(),
        Some("2024-01-01T12:00:00+08:00")
    );

    let refund: RefundResponse = round_trip(&format!(
        r#"{{"result":{SUCCESS},"refundRequestId":"rf_0001","refundId":"rid","paymentId":"p1",
            "refundAmount":{{"currency":"PHP","value":"10000"}},"refundTime":"2024-01-01T12:00:00+08:00"}}"#
    ));
    assert_eq!(refund.refund_id.as_deref(), Some("rid"));

    let inq: InquiryRefundResponse = round_trip(&format!(
        r#"{{"result":{SUCCESS},"refundId":"rid","refundRequestId":"rf_0001","refundStatus":"PROCESSING"}}"#
    ));
    assert_eq!(inq.refund_status, Some(RefundStatus::Processing));

    let inq: InquiryPaymentResponse = round_trip(&format!(
        r#"{{"result":{SUCCESS},"paymentStatus":"SUCCESS","transactions":[
            {{"transactionType":"REFUND","transactionStatus":"SUCCESS","transactionAmount":{{"currency":"PHP","value":"100"}},
              "transactionRequestId":"rf_0001","transactionId":"rid","transactionTime":"2024-01-01T12:00:00+08:00",
              "transactionResult":{SUCCESS}}}]}}"#
    ));
    let t = &inq.transactions.as_ref().unwrap()[0];
    assert_eq!(t.transaction_type, Some(TransactionType::Refund));
    assert_eq!(t.transaction_status, Some(TransactionStatus::Success));

    let declare: DeclareResponse = round_trip(&format!(
        r#"{{"result":{SUCCESS},"customsPaymentId":"cp","customsOrderId":"co","identityCheckResult":"CHECK_PASSED",
            "clearingChannel":"OTHER","clearingTransactionId":"ct","customsProviderRegistrationId":"31222699S7"}}"#
    ));
    assert_eq!(
        declare.identity_check_result,
        Some(IdentityCheckResult::CheckPassed)
    );
    assert_eq!(
        declare.clearing_channel,
        Some(ClearingChannel::OtherChannel)
    );

    let inq: InquiryDeclarationResponse = round_trip(&format!(
        r#"{{"result":{SUCCESS},"declarationRequestsNotFound":["x"],"declarationRecords":[
            {{"declarationRequestId":"d1","customs":{{"customsCode":"ZONGSHU","region":"CN"}},
              "merchantCustomsInfo":{{"merchantCustomsCode":"mc","merchantCustomsName":"mn"}},
              "declarationAmount":{{"currency":"CNY","value":"100"}},"splitOrder":"false",
              "declarationRequestStatus":"SUCCESS"}}]}}"#
    ));
    let rec = &inq.declaration_records.as_ref().unwrap()[0];
    assert_eq!(rec.split_order, Some(false));
    assert_eq!(rec.customs.as_ref().unwrap().customs_code, "ZONGSHU");

    let pn: PaymentNotification = round_trip(&format!(
        r#"{{"notifyType":"PAYMENT_RESULT","result":{SUCCESS},"paymentRequestId":"pay_20240101_0001",
            "paymentId":"20240101194010800100188000000001","paymentAmount":{{"currency":"PHP","value":"30000"}},
            "paymentCreateTime":"2024-01-01T12:00:00+08:00","paymentTime":"2024-01-01T12:00:01+08:00"}}"#
    ));
    assert_eq!(pn.notify_type, PaymentNotifyType::PaymentResult);
    pn.validate().unwrap();
    assert_eq!(
        <PaymentNotification as Notification>::KIND,
        NotificationKind::Payment
    );

    let rn: RefundNotification = round_trip(&format!(
        r#"{{"notifyType":"REFUND_RESULT","result":{SUCCESS},"refundStatus":"SUCCESS","refundRequestId":"rf_0001",
            "refundId":"rid","refundAmount":{{"currency":"PHP","value":"10000"}},"refundTime":"2024-01-01T12:00:00+08:00"}}"#
    ));
    assert_eq!(rn.notify_type, RefundNotifyType::RefundResult);
    rn.validate().unwrap();
    assert_eq!(
        <RefundNotification as Notification>::KIND,
        NotificationKind::Refund
    );
}

#[test]
fn error_responses_carry_only_result() {
    let f = AmsResult::with_code(ResultCode::ParamIllegal, "bad");
    fn check<R: AmsResponse + PartialEq + Debug>(f: &AmsResult) {
        let r = R::from_result(f.clone());
        assert_eq!(r.result(), f);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        let back: R = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
    check::<ConsultResponse>(&f);
    check::<ApplyTokenResponse>(&f);
    check::<RevokeResponse>(&f);
    check::<PayResponse>(&f);
    check::<InquiryPaymentResponse>(&f);
    check::<CancelResponse>(&f);
    check::<RefundResponse>(&f);
    check::<InquiryRefundResponse>(&f);
    check::<DeclareResponse>(&f);
    check::<InquiryDeclarationResponse>(&f);

    // The way AMS reports a rejected request parses for every endpoint.
    let body = r#"{"result":{"resultCode":"INVALID_ACCESS_TOKEN","resultStatus":"F","resultMessage":"x"}}"#;
    let r: PayResponse = serde_json::from_str(body).unwrap();
    assert_eq!(r.result.result_code, ResultCode::InvalidAccessToken);
    assert_eq!(r.result.result_status, ResultStatus::F);
}

#[test]
fn endpoints_and_keys() {
    use scanbind_ams::result::Endpoint;
    assert_eq!(ConsultRequest::ENDPOINT, Endpoint::Consult);
    assert_eq!(ApplyTokenRequest::ENDPOINT, Endpoint::ApplyToken);
    assert_eq!(RevokeRequest::ENDPOINT, Endpoint::Revoke);
    assert_eq!(PayRequest::ENDPOINT, Endpoint::Pay);
    assert_eq!(InquiryPaymentRequest::ENDPOINT, Endpoint::InquiryPayment);
    assert_eq!(CancelRequest::ENDPOINT, Endpoint::Cancel);
    assert_eq!(RefundRequest::ENDPOINT, Endpoint::Refund);
    assert_eq!(InquiryRefundRequest::ENDPOINT, Endpoint::InquiryRefund);
    assert_eq!(DeclareRequest::ENDPOINT, Endpoint::Declare);
    assert_eq!(
        InquiryDeclarationRequest::ENDPOINT,
        Endpoint::InquiryDeclaration
    );
    assert_eq!(declare_ok().idempotency_key(), Some("decl_0001"));
    assert_eq!(
        InquiryPaymentRequest::by_payment_id("p").idempotency_key(),
        None
    );
    assert_eq!(RevokeRequest::new("t").idempotency_key(), None);
}

// ---------------------------------------------------------------------------------------
// SDK body forms and unknown fields
// ---------------------------------------------------------------------------------------

#[test]
fn sdk_native_scalars() {
    let body = r#"{"declarationRequestId":"decl_0001","paymentId":"p1",
        "declarationAmount":{"currency":"CNY","value":30000},
        "customs":{"customsCode":"ZONGSHU","region":"CN"},
        "merchantCustomsInfo":{"merchantCustomsCode":"mc","merchantCustomsName":"mn"},
        "splitOrder":true,"suborderId":"sub1"}"#;
    let req: DeclareRequest = round_trip(body);
    assert!(req.split_order);
    assert_eq!(req.sub_order_id.as_deref(), Some("sub1"));
    assert_eq!(req.declaration_amount.value, "30000");
    req.validate().unwrap();
    // Booleans go out natively, amounts as the documented string.
    let v = serde_json::to_value(&req).unwrap();
    assert_eq!(v["splitOrder"], serde_json::Value::Bool(true));
    assert_eq!(v["suborderId"], "sub1");
    assert!(v.get("subOrderId").is_none(), "{v}");
    assert_eq!(v["declarationAmount"]["value"], "30000");

    let strings = body
        .replace(r#""splitOrder":true"#, r#""splitOrder":"true""#)
        .replace(r#""value":30000"#, r#""value":"30000""#);
    assert_eq!(
        serde_json::from_str::<DeclareRequest>(&strings).unwrap(),
        req
    );

    let mut refund: serde_json::Value = serde_json::from_str(REFUND_REQ).unwrap();
    refund["isAsyncRefund"] = serde_json::Value::Bool(false);
    refund["refundAmount"]["value"] = serde_json::json!(10000);
    let r: RefundRequest = serde_json::from_value(refund.clone()).unwrap();
    assert_eq!(r.is_async_refund, Some(false));
    assert_eq!(r.refund_amount.value, "10000");
    refund["isAsyncRefund"] = "TRUE".into();
    let r: RefundRequest = serde_json::from_value(refund.clone()).unwrap();
    assert_eq!(r.is_async_refund, Some(true));
    refund["isAsyncRefund"] = "yes".into();
    assert!(serde_json::from_value::<RefundRequest>(refund).is_err());

    // Quote: guaranteed and quotePrice in both forms, no floats for money.
    let q: Quote =
        serde_json::from_str(r#"{"quotePrice":56.12,"guaranteed":"true","quoteId":"q"}"#).unwrap();
    assert_eq!(q.quote_price.as_deref(), Some("56.12"));
    assert_eq!(q.guaranteed, Some(true));
    let q: Quote = serde_json::from_str(r#"{"quotePrice":"56.12","guaranteed":false}"#).unwrap();
    assert_eq!(q.quote_price.as_deref(), Some("56.12"));
    assert_eq!(q.guaranteed, Some(false));

    let g: Goods = serde_json::from_str(r#"{"goodsQuantity":3}"#).unwrap();
    assert_eq!(g.goods_quantity.as_deref(), Some("3"));
}

/// The Python SDK sends `json.dumps(body, indent=3)`.
#[test]
fn python_sdk_pretty_body() {
    let body = r#"{
   "productCode": "AGREEMENT_PAYMENT",
   "paymentRequestId": "pay_py_0001",
   "order": {
      "referenceOrderId": "ord_py_0001",
      "orderDescription": "In-game coins",
      "orderAmount": {
         "currency": "HKD",
         "value": "1000"
      }
   },
   "paymentAmount": {
      "currency": "HKD",
      "value": "1000"
   },
   "paymentMethod": {
      "paymentMethodType": "ALIPAY_HK",
      "paymentMethodId": "28100103_token"
   },
   "env": {
      "terminalType": "WEB"
   },
   "isAuthorization": false
}"#;
    let req: PayRequest = round_trip(body);
    assert_eq!(req.payment_request_id, "pay_py_0001");
    assert_eq!(
        req.payment_method.payment_method_type,
        Wallet::AlipayHk.as_str()
    );
    assert_eq!(
        req.extra.get("isAuthorization"),
        Some(&serde_json::Value::Bool(false))
    );
    req.validate().unwrap();
}

#[test]
fn unknown_fields_survive() {
    let mut v: serde_json::Value = serde_json::from_str(PAY_RESP).unwrap();
    v["brandNewField"] = serde_json::json!({"nested": [1, 2, 3]});
    v["anotherOne"] = "x".into();
    let resp: PayResponse = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(resp.extra.len(), 2);
    assert_eq!(resp.extra["brandNewField"]["nested"][2], 3);
    assert_eq!(serde_json::to_value(&resp).unwrap(), v);

    let mut n: serde_json::Value = serde_json::from_str(AUTH_NOTIFY_CODE).unwrap();
    n["authTime"] = "2024-01-01T12:00:00+08:00".into();
    n["customerId"] = "c1".into();
    let parsed: AuthorizationNotification = serde_json::from_value(n.clone()).unwrap();
    assert_eq!(parsed.extra["customerId"], "c1");
    assert_eq!(serde_json::to_value(&parsed).unwrap(), n);

    // Unknown enum values are kept, not fatal.
    let mut r: serde_json::Value = serde_json::from_str(CONSULT_REQ).unwrap();
    r["scopes"] = serde_json::json!(["AGREEEMENT_PAY", "USER_INFO"]);
    r["customerBelongsTo"] = "NEW_WALLET".into();
    let parsed: ConsultRequest = serde_json::from_value(r.clone()).unwrap();
    assert_eq!(
        parsed.scopes,
        vec![Scope::Other("AGREEEMENT_PAY".into()), Scope::UserInfo]
    );
    assert_eq!(
        parsed.customer_belongs_to,
        Wallet::Other("NEW_WALLET".into())
    );
    assert_eq!(serde_json::to_value(&parsed).unwrap(), r);

    let inq: InquiryPaymentResponse = serde_json::from_str(
        r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S"},"paymentStatus":"REVERSED","paymentResultCode":"NEW_CODE"}"#,
    )
    .unwrap();
    assert_eq!(
        inq.payment_status,
        Some(PaymentStatus::Other("REVERSED".into()))
    );
    assert!(!inq.payment_status.as_ref().unwrap().is_final());
    assert_eq!(
        inq.payment_result_code,
        Some(ResultCode::Other("NEW_CODE".into()))
    );
}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

#[test]
fn debug_never_shows_secrets() {
    let resp: ApplyTokenResponse = serde_json::from_str(APPLY_TOKEN_RESP).unwrap();
    let dbg = format!("{resp:?} {resp:#?}");
    assert!(!dbg.contains("28100103"), "{dbg}");
    assert!(dbg.contains("<redacted>"));

    let req: PayRequest = serde_json::from_str(PAY_REQ).unwrap();
    let dbg = format!("{req:?}");
    assert!(!dbg.contains("28100103_20215703001538122119"), "{dbg}");
    assert!(dbg.contains("pay_20240101_0001"));

    for dbg in [
        format!(
            "{:?}",
            serde_json::from_str::<ApplyTokenRequest>(APPLY_TOKEN_REQ).unwrap()
        ),
        format!(
            "{:?}",
            serde_json::from_str::<ApplyTokenRequest>(REFRESH_REQ).unwrap()
        ),
        format!(
            "{:?}",
            serde_json::from_str::<AuthorizationNotification>(AUTH_NOTIFY_CODE).unwrap()
        ),
        format!(
            "{:?}",
            serde_json::from_str::<AuthorizationNotification>(AUTH_NOTIFY_CANCEL).unwrap()
        ),
        format!("{:?}", RevokeRequest::new("28100103_20215703001538122119")),
    ] {
        assert!(!dbg.contains("3AB2F588"), "{dbg}");
        assert!(!dbg.contains("28100103_2021"), "{dbg}");
    }

    let s = SecretString::new("hunter2");
    assert_eq!(format!("{s:?}"), "<redacted>");
    assert_eq!(s.expose(), "hunter2");
    assert_eq!(serde_json::to_string(&s).unwrap(), r#""hunter2""#);
}

// ---------------------------------------------------------------------------------------
// validate()
// ---------------------------------------------------------------------------------------

fn pay_ok() -> PayRequest {
    serde_json::from_str(PAY_REQ).unwrap()
}

fn order_code_ok() -> PayRequest {
    serde_json::from_str(ORDER_CODE_REQ).unwrap()
}

fn declare_ok() -> DeclareRequest {
    DeclareRequest::new(
        "decl_0001",
        "20240101194010800100188000000001",
        amount("CNY", "30000"),
        Customs {
            customs_code: "ZONGSHU".into(),
            region: "CN".into(),
        },
        MerchantCustomsInfo {
            merchant_customs_code: "mc".into(),
            merchant_customs_name: "mn".into(),
        },
    )
}

#[test]
fn validate_consult() {
    let ok: ConsultRequest = serde_json::from_str(CONSULT_REQ).unwrap();
    ok.validate().unwrap();

    let mut r = ok.clone();
    r.auth_state = String::new();
    assert_field(r.validate(), "authState");
    r.auth_state = "x".repeat(257);
    assert_field(r.validate(), "authState");
    r.auth_state = "x".repeat(256);
    r.validate().unwrap();

    let mut r = ok.clone();
    r.scopes.clear();
    assert_field(r.validate(), "scopes");
    r.scopes = vec![Scope::AgreementPay; 5];
    assert_field(r.validate(), "scopes");

    let mut r = ok.clone();
    r.auth_redirect_url = format!("https://x/{}", "a".repeat(1024));
    assert_field(r.validate(), "authRedirectUrl");

    let mut r = ok.clone();
    r.auth_notify_url = Some("a".repeat(1025));
    assert_field(r.validate(), "authNotifyUrl");

    let mut r = ok.clone();
    r.customer_belongs_to = Wallet::Other(String::new());
    assert_field(r.validate(), "customerBelongsTo");

    // env.terminalType or the deprecated top-level terminalType.
    let mut r = ok.clone();
    r.env = None;
    r.validate().unwrap();
    r.terminal_type = None;
    assert_field(r.validate(), "env.terminalType");
    r.env = Some(Env::web());
    r.validate().unwrap();

    let mut r = ok.clone();
    r.merchant_region = Some("USA".into());
    assert_field(r.validate(), "merchantRegion");
    let mut r = ok;
    r.os_version = Some("1".repeat(17));
    assert_field(r.validate(), "osVersion");
}

#[test]
fn validate_apply_token() {
    let mut r = ApplyTokenRequest::authorization_code(Wallet::AlipayHk, "code");
    r.validate().unwrap();
    r.auth_code = None;
    assert_field(r.validate(), "authCode");
    r.refresh_token = Some("refresh".into());
    assert_field(r.validate(), "authCode");
    r.auth_code = Some(SecretString::new("c".repeat(129)));
    assert_field(r.validate(), "authCode");

    let mut r = ApplyTokenRequest::refresh(Wallet::Dana, "refresh");
    r.validate().unwrap();
    r.refresh_token = None;
    assert_field(r.validate(), "refreshToken");
    r.auth_code = Some("code".into());
    assert_field(r.validate(), "refreshToken");

    let mut r = ApplyTokenRequest::refresh(Wallet::Dana, "refresh");
    r.grant_type = GrantType::parse("CLIENT_CREDENTIALS");
    assert_field(r.validate(), "grantType");

    let r = RevokeRequest::new("");
    assert_field(r.validate(), "accessToken");
    RevokeRequest::new("token").validate().unwrap();
}

#[test]
fn validate_pay() {
    pay_ok().validate().unwrap();

    let mut r = pay_ok();
    r.payment_request_id = "x".repeat(65);
    assert_field(r.validate(), "paymentRequestId");

    let mut r = pay_ok();
    r.payment_amount.value = "300.00".into();
    assert_field(r.validate(), "paymentAmount.value");
    r.payment_amount.value = "0".into();
    assert_field(r.validate(), "paymentAmount.value");
    r.payment_amount.value = "-1".into();
    assert_field(r.validate(), "paymentAmount.value");

    let mut r = pay_ok();
    r.payment_amount.currency = "XYZ".into();
    assert_field(r.validate(), "paymentAmount.currency");

    let mut r = pay_ok();
    r.payment_amount = amount("USD", "30000");
    assert_field(r.validate(), "paymentAmount.currency");

    let mut r = pay_ok();
    r.order.order_amount.value = "1e3".into();
    assert_field(r.validate(), "order.orderAmount.value");

    let mut r = pay_ok();
    r.order.reference_order_id = String::new();
    assert_field(r.validate(), "order.referenceOrderId");
    let mut r = pay_ok();
    r.order.order_description = "d".repeat(257);
    assert_field(r.validate(), "order.orderDescription");

    let mut r = pay_ok();
    r.payment_method.payment_method_id = None;
    assert_field(r.validate(), "paymentMethod.paymentMethodId");

    let mut r = pay_ok();
    r.payment_method.payment_method_type = String::new();
    assert_field(r.validate(), "paymentMethod.paymentMethodType");

    let mut r = pay_ok();
    r.payment_expiry_time = Some("2024-01-01 12:00".into());
    assert_field(r.validate(), "paymentExpiryTime");
    r.payment_expiry_time = Some("2024-01-01T12:01:00+08:00".into());
    r.validate().unwrap();

    let mut r = pay_ok();
    r.payment_notify_url = Some("u".repeat(2049));
    assert_field(r.validate(), "paymentNotifyUrl");

    let mut r = pay_ok();
    r.merchant_account_id = Some("m".repeat(33));
    assert_field(r.validate(), "merchantAccountId");
}

#[test]
fn validate_order_code() {
    order_code_ok().validate().unwrap();

    let mut r = order_code_ok();
    r.order.merchant = None;
    assert_field(r.validate(), "order.merchant");

    let mut r = order_code_ok();
    r.order.merchant.as_mut().unwrap().merchant_mcc = None;
    assert_field(r.validate(), "order.merchant.merchantMCC");

    let mut r = order_code_ok();
    r.order.merchant.as_mut().unwrap().reference_merchant_id = None;
    assert_field(r.validate(), "order.merchant.referenceMerchantId");

    let mut r = order_code_ok();
    r.order.merchant.as_mut().unwrap().merchant_name = None;
    assert_field(r.validate(), "order.merchant.merchantName");

    let mut r = order_code_ok();
    r.order.merchant.as_mut().unwrap().store = None;
    assert_field(r.validate(), "order.merchant.store");

    let mut r = order_code_ok();
    r.order
        .merchant
        .as_mut()
        .unwrap()
        .store
        .as_mut()
        .unwrap()
        .store_mcc = None;
    assert_field(r.validate(), "order.merchant.store.storeMCC");

    let mut r = order_code_ok();
    r.order
        .merchant
        .as_mut()
        .unwrap()
        .store
        .as_mut()
        .unwrap()
        .reference_store_id = Some(String::new());
    assert_field(r.validate(), "order.merchant.store.referenceStoreId");

    let mut r = order_code_ok();
    r.order
        .merchant
        .as_mut()
        .unwrap()
        .store
        .as_mut()
        .unwrap()
        .store_name = None;
    assert_field(r.validate(), "order.merchant.store.storeName");

    let mut r = order_code_ok();
    r.payment_method.payment_method_type = "ALIPAY_HK".into();
    assert_field(r.validate(), "paymentMethod.paymentMethodType");

    let mut r = order_code_ok();
    r.payment_factor = None;
    assert_field(r.validate(), "paymentFactor.inStorePaymentScenario");
}

#[test]
fn validate_inquiries_and_cancel() {
    let mut r = InquiryPaymentRequest::by_payment_id("p1");
    r.validate().unwrap();
    InquiryPaymentRequest::by_payment_request_id("r1")
        .validate()
        .unwrap();
    r.payment_id = None;
    assert_field(r.validate(), "paymentId");
    r.payment_request_id = Some("r".repeat(65));
    assert_field(r.validate(), "paymentRequestId");

    let mut c = CancelRequest::by_payment_request_id("r1");
    c.validate().unwrap();
    CancelRequest::by_payment_id("p1").validate().unwrap();
    c.payment_request_id = None;
    assert_field(c.validate(), "paymentId");

    let mut i = InquiryRefundRequest::by_refund_id("rid");
    i.validate().unwrap();
    InquiryRefundRequest::by_refund_request_id("rf")
        .validate()
        .unwrap();
    i.refund_id = None;
    assert_field(i.validate(), "refundId");
}

#[test]
fn validate_refund() {
    let ok: RefundRequest = serde_json::from_str(REFUND_REQ).unwrap();
    ok.validate().unwrap();

    let mut r = ok.clone();
    r.refund_amount.value = "0".into();
    assert_field(r.validate(), "refundAmount.value");
    r.refund_amount.value = "ten".into();
    assert_field(r.validate(), "refundAmount.value");

    let mut r = ok.clone();
    r.refund_amount.currency = "php".into();
    assert_field(r.validate(), "refundAmount.currency");

    let mut r = ok.clone();
    r.refund_request_id = String::new();
    assert_field(r.validate(), "refundRequestId");

    let mut r = ok.clone();
    r.payment_id = "p".repeat(65);
    assert_field(r.validate(), "paymentId");

    let mut r = ok;
    r.refund_reason = Some("r".repeat(257));
    assert_field(r.validate(), "refundReason");
}

#[test]
fn declare_without_split_order_is_an_unsplit_declaration() {
    // The official SDK leaves `splitOrder` out unless it is true.
    let body = r#"{"declarationRequestId":"decl_0002","paymentId":"p1",
        "declarationAmount":{"currency":"CNY","value":"100"},
        "customs":{"customsCode":"ZONGSHU","region":"CN"},
        "merchantCustomsInfo":{"merchantCustomsCode":"mc","merchantCustomsName":"mn"}}"#;
    let req: DeclareRequest = serde_json::from_str(body).unwrap();
    assert!(!req.split_order);
    req.validate().unwrap();
    // The misspelling Alipay does not know stays an unknown field, not a sub-order.
    let typo = body.replace(
        r#""paymentId":"p1","#,
        r#""paymentId":"p1","subOrderId":"s1","#,
    );
    let req: DeclareRequest = serde_json::from_str(&typo).unwrap();
    assert_eq!(req.sub_order_id, None);
    assert!(req.extra.contains_key("subOrderId"));
}

#[test]
fn validate_declare() {
    declare_ok().validate().unwrap();

    let mut r = declare_ok();
    r.split_order = true;
    assert_field(r.validate(), "suborderId");
    r.sub_order_id = Some("sub1".into());
    r.validate().unwrap();
    r.sub_order_id = Some("s".repeat(65));
    assert_field(r.validate(), "suborderId");

    let mut r = declare_ok();
    r.declaration_request_id = "d".repeat(33);
    assert_field(r.validate(), "declarationRequestId");
    r.declaration_request_id = String::new();
    assert_field(r.validate(), "declarationRequestId");

    let mut r = declare_ok();
    r.declaration_amount = amount("HKD", "100");
    assert_field(r.validate(), "declarationAmount.currency");

    let mut r = declare_ok();
    r.customs.customs_code = String::new();
    assert_field(r.validate(), "customs.customsCode");

    let mut r = declare_ok();
    r.merchant_customs_info.merchant_customs_name = String::new();
    assert_field(r.validate(), "merchantCustomsInfo.merchantCustomsName");

    let mut r = declare_ok();
    r.buyer_certificate = Some(BuyerCertificate {
        certificate_type: CertificateType::IdCard,
        certificate_no: SecretString::new("110101199003070000"),
        holder_name: Some(UserName {
            full_name: Some("Zhang San".into()),
            ..UserName::default()
        }),
    });
    r.validate().unwrap();
    assert!(!format!("{r:?}").contains("110101199003070000"));
    r.buyer_certificate.as_mut().unwrap().certificate_no = SecretString::new("");
    assert_field(r.validate(), "buyerCertificate.certificateNo");
}

#[test]
fn validate_inquiry_declaration() {
    InquiryDeclarationRequest::new(["d1"]).validate().unwrap();
    InquiryDeclarationRequest::new((0..10).map(|i| format!("d{i}")))
        .validate()
        .unwrap();
    assert_field(
        InquiryDeclarationRequest::new(Vec::<String>::new()).validate(),
        "declarationRequestIds",
    );
    assert_field(
        InquiryDeclarationRequest::new((0..11).map(|i| format!("d{i}"))).validate(),
        "declarationRequestIds",
    );
    assert_field(
        InquiryDeclarationRequest::new(["ok".to_string(), "x".repeat(33)]).validate(),
        "declarationRequestIds[1]",
    );
    assert_field(
        InquiryDeclarationRequest::new(["ok", ""]).validate(),
        "declarationRequestIds[1]",
    );
}

#[test]
fn validate_notifications() {
    let mut n: AuthorizationNotification = serde_json::from_str(AUTH_NOTIFY_CODE).unwrap();
    n.auth_code = None;
    assert_field(n.validate(), "authCode");
    let mut n: AuthorizationNotification = serde_json::from_str(AUTH_NOTIFY_CODE).unwrap();
    n.auth_state = None;
    assert_field(n.validate(), "authState");

    let mut n: AuthorizationNotification = serde_json::from_str(AUTH_NOTIFY_CANCEL).unwrap();
    n.access_token = None;
    assert_field(n.validate(), "accessToken");

    let mut n = AuthorizationNotification::token_canceled("t", "r");
    n.authorization_notify_type = AuthorizationNotifyType::TokenCreated;
    assert_field(n.validate(), "authState");
    n.auth_state = Some("s".into());
    n.validate().unwrap();

    let body = format!(
        r#"{{"notifyType":"REFUND_RESULT","result":{SUCCESS},"refundStatus":"PROCESSING","refundRequestId":"rf",
            "refundId":"rid","refundAmount":{{"currency":"PHP","value":"1"}}}}"#
    );
    let n: RefundNotification = serde_json::from_str(&body).unwrap();
    assert_field(n.validate(), "refundStatus");

    let body = format!(
        r#"{{"notifyType":"PAYMENT_RESULT","result":{SUCCESS},"paymentRequestId":"","paymentId":"p"}}"#
    );
    let n: PaymentNotification = serde_json::from_str(&body).unwrap();
    assert_field(n.validate(), "paymentRequestId");

    // Required fields are enforced by the type: a payment notification without paymentId
    // does not parse.
    let body =
        format!(r#"{{"notifyType":"PAYMENT_RESULT","result":{SUCCESS},"paymentRequestId":"r"}}"#);
    assert!(serde_json::from_str::<PaymentNotification>(&body).is_err());
}

// ---------------------------------------------------------------------------------------
// Wallets
// ---------------------------------------------------------------------------------------

#[test]
fn wallet_round_trip() {
    let all = [
        "ALIPAY_CN",
        "ALIPAY_HK",
        "MPAY",
        "DANA",
        "PAYPAY",
        "BOOST",
        "TNG",
        "GRABPAY_MY",
        "HIPAY",
        "GCASH",
        "MAYA",
        "GRABPAY_PH",
        "GRABPAY_SG",
        "KAKAOPAY",
        "NAVERPAY",
        "TOSSPAY",
        "RABBIT_LINE_PAY",
        "TRUEMONEY",
        "KPLUS",
        "DIRECT_DEBIT_SIAMCOMMERCIALBANK",
        "DIRECT_DEBIT_KRUNGTHAIBANK",
        "ACH_DIRECT_DEBIT",
        "ZALOPAY",
        "MOMO",
        "VIETTELMONEY",
        "JKOPAY",
        "BKASH",
        "EASYPAISA",
        "DIRECTDEBIT_YAPILY",
        "ANTOM_BIZ_ACCOUNT",
    ];
    assert_eq!(Wallet::KNOWN.len(), all.len());
    for text in all {
        let w = Wallet::parse(text);
        assert!(w.is_known(), "{text}");
        assert_eq!(w.as_str(), text);
        assert_eq!(w.to_string(), text);
        assert_eq!(text.parse::<Wallet>().unwrap(), w);
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Wallet>(&json).unwrap(), w);
    }
    assert_eq!(Wallet::parse("ALIPAY_HK"), Wallet::AlipayHk);
    assert_eq!(Wallet::parse("KAKAOPAY"), Wallet::Kakaopay);

    let new = Wallet::parse("NEW_WALLET");
    assert_eq!(new, Wallet::Other("NEW_WALLET".into()));
    assert!(!new.is_known());
    assert_eq!(serde_json::to_string(&new).unwrap(), r#""NEW_WALLET""#);
    assert_eq!(
        serde_json::from_str::<Wallet>(r#""NEW_WALLET""#).unwrap(),
        new
    );
    // Exact match: the wire is upper case.
    assert_eq!(Wallet::parse("gcash"), Wallet::Other("gcash".into()));
}

#[test]
fn scan_to_bind_table() {
    let mu = |v: i64| MinorUnits::new(v).unwrap();
    for w in &Wallet::SCAN_TO_BIND {
        let p = w
            .scan_to_bind()
            .unwrap_or_else(|| panic!("{w} has no profile"));
        assert!(p.min_amount > MinorUnits::ZERO);
        assert!(!p.display_name.is_empty());
    }
    assert_eq!(
        Wallet::Gcash.scan_to_bind().unwrap().currency,
        Currency::PHP
    );
    assert!(Wallet::Maya.scan_to_bind().is_none());
    assert!(Wallet::Other("NEW_WALLET".into()).scan_to_bind().is_none());

    assert_eq!(
        Wallet::AlipayHk.scan_to_bind().unwrap(),
        WalletProfile {
            currency: Currency::HKD,
            min_amount: mu(1),
            per_transaction_limit: Some(mu(5_000_000)),
            daily_limit: None,
            yearly_limit: Some(mu(20_000_000)),
            display_name: "AlipayHK",
            region: "Hong Kong, China",
            refund: true,
            partial_refund: true,
            chargeback: false,
            refund_period_days: 365,
            cancel: scanbind_ams::money::CancelWindow::NextDay0015,
        }
    );
    let kakao = Wallet::Kakaopay.scan_to_bind().unwrap();
    assert_eq!((kakao.currency, kakao.min_amount), (Currency::KRW, mu(50)));
    assert_eq!(kakao.per_transaction_limit, Some(mu(2_000_000)));

    let dana = Wallet::Dana.scan_to_bind().unwrap();
    assert_eq!(dana.currency, Currency::IDR);
    assert_eq!(dana.min_amount, mu(30_000)); // 300 IDR, exponent 2
    assert_eq!(dana.per_transaction_limit, Some(mu(1_000_000_000)));
    assert_eq!(dana.daily_limit, Some(mu(2_000_000_000)));
    // Seed 001: Indonesia, refunds full and partial for 365 days, no chargebacks; the
    // cancel page: Indonesian methods cannot be cancelled.
    assert_eq!(dana.region, "Indonesia");
    assert!(dana.refund && dana.partial_refund && !dana.chargeback);
    assert_eq!(dana.refund_period_days, 365);
    assert_eq!(dana.cancel, scanbind_ams::money::CancelWindow::NotAllowed);

    let tng = Wallet::Tng.scan_to_bind().unwrap();
    assert_eq!((tng.currency, tng.min_amount), (Currency::MYR, mu(5)));
    let cn = Wallet::AlipayCn.scan_to_bind().unwrap();
    assert_eq!((cn.currency, cn.min_amount), (Currency::CNY, mu(10)));
    let tm = Wallet::Truemoney.scan_to_bind().unwrap();
    assert_eq!(
        (tm.per_transaction_limit, tm.daily_limit),
        (Some(mu(3_000_000)), Some(mu(5_000_000)))
    );
}

#[test]
fn open_enums() {
    assert_eq!(
        serde_json::to_string(&InStorePaymentScenario::OrderCode).unwrap(),
        r#""OrderCode""#
    );
    assert_eq!(
        InStorePaymentScenario::parse("ORDERCODE"),
        InStorePaymentScenario::Other("ORDERCODE".into())
    );
    for s in PaymentStatus::KNOWN {
        assert_eq!(PaymentStatus::parse(s.as_str()), *s);
    }
    assert!(PaymentStatus::Cancelled.is_final());
    assert!(!PaymentStatus::Processing.is_final());
    assert_eq!(
        "MINI_APP".parse::<TerminalType>().unwrap(),
        TerminalType::MiniApp
    );
    assert_eq!(
        serde_json::from_str::<CodeDetail>(
            r#"{"codeValueType":"QRCODE","displayType":"MIDDLEIMAGE","codeValue":"u"}"#
        )
        .unwrap()
        .display_type,
        DisplayType::Middleimage
    );
}
