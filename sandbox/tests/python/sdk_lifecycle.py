"""Drives a scanbind sandbox through the whole Scan to Bind life with the official
Alipay Python SDK (global-open-sdk-python), unchanged apart from its connection factory.

Usage: sdk_lifecycle.py SANDBOX_URL CLIENT_ID MERCHANT_PKCS8_PEM

The SDK signs every request and verifies every response signature itself; the
notifications (AUTHCODE_CREATED, notifyPayment, notifyRefund) are received by a small HTTP
server here and verified with the SDK's webhook tool. Covers consult and applyToken with
both grant types, agreement pay with GCash, AlipayHK and DANA, an order code paid on the
phone, inquiry, cancel (and DANA's refused cancel), refunds, customs declarations whole
and split with their inquiry, and revoke. Exits non-zero (with a message) on the first
deviation.
"""

import http.client
import http.server
import json
import queue
import sys
import threading
import urllib.parse
import urllib.request
import uuid

from cryptography.hazmat.primitives import serialization

import com.alipay.ams.api.net.default_http_rpc as default_http_rpc
from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient
from com.alipay.ams.api.model.amount import Amount
from com.alipay.ams.api.model.customer_belongs_to import CustomerBelongsTo
from com.alipay.ams.api.model.customs_info import CustomsInfo
from com.alipay.ams.api.model.env import Env
from com.alipay.ams.api.model.grant_type import GrantType
from com.alipay.ams.api.model.merchant import Merchant
from com.alipay.ams.api.model.merchant_customs_info import MerchantCustomsInfo
from com.alipay.ams.api.model.order import Order
from com.alipay.ams.api.model.in_store_payment_scenario import InStorePaymentScenario
from com.alipay.ams.api.model.payment_factor import PaymentFactor
from com.alipay.ams.api.model.payment_method import PaymentMethod
from com.alipay.ams.api.model.product_code_type import ProductCodeType
from com.alipay.ams.api.model.scope_type import ScopeType
from com.alipay.ams.api.model.store import Store
from com.alipay.ams.api.model.terminal_type import TerminalType
from com.alipay.ams.api.response.pay.alipay_pay_query_response import AlipayPayQueryResponse
from com.alipay.ams.api.response.pay.alipay_pay_response import AlipayPayResponse
from com.alipay.ams.api.request.auth.alipay_auth_apply_token_request import AlipayAuthApplyTokenRequest
from com.alipay.ams.api.request.auth.alipay_auth_consult_request import AlipayAuthConsultRequest
from com.alipay.ams.api.request.auth.alipay_auth_revoke_token_request import AlipayAuthRevokeTokenRequest
from com.alipay.ams.api.request.declare.alipay_customs_declare_request import AlipayCustomsDeclareRequest
from com.alipay.ams.api.request.declare.alipay_customs_query_request import AlipayCustomsQueryRequest
from com.alipay.ams.api.request.pay.alipay_inquiry_refund_request import AlipayInquiryRefundRequest
from com.alipay.ams.api.request.pay.alipay_pay_cancel_request import AlipayPayCancelRequest
from com.alipay.ams.api.request.pay.alipay_pay_query_request import AlipayPayQueryRequest
from com.alipay.ams.api.request.pay.alipay_pay_request import AlipayPayRequest
from com.alipay.ams.api.request.pay.alipay_refund_request import AlipayRefundRequest
from com.alipay.ams.api.tools.webhook_tool import check_signature

ACK = b'{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}'


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def expect(cond, message):
    if not cond:
        fail(message)


def point_sdk_at(sandbox_url):
    """Replace the SDK's HTTPS-to-port-443 connection factory with plain HTTP to the sandbox."""
    parsed = urllib.parse.urlparse(sandbox_url)

    def connection(url, timeout=15):
        return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)

    setattr(default_http_rpc, "__get_http_connection", connection)


class Notifications:
    """A tiny merchant notification endpoint."""

    def __init__(self):
        self.received = queue.Queue()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                outer.received.put({
                    "path": self.path,
                    "client_id": self.headers.get("client-id"),
                    "request_time": self.headers.get("request-time"),
                    "signature": self.headers.get("signature"),
                    "body": body,
                })
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(ACK)))
                self.end_headers()
                self.wfile.write(ACK)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def next_where(self, field, value):
        while True:
            try:
                n = self.received.get(timeout=30)
            except queue.Empty:
                fail("no notification with %s=%s arrived" % (field, value))
            if json.loads(n["body"]).get(field) == value:
                return n


def control(sandbox_url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sandbox_url + path, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read().decode()


def execute(client, request):
    # DefaultAlipayClient.execute verifies the response signature and raises otherwise.
    return json.loads(client.execute(request))


def result_code(resp):
    return resp["result"]["resultCode"]


def agreement_pay(token, request_id, value, notify_url, wallet="GCASH", currency="PHP"):
    req = AlipayPayRequest()
    req.product_code = ProductCodeType.AGREEMENT_PAYMENT
    req.payment_request_id = request_id
    order = Order()
    order.reference_order_id = "ord_" + request_id
    order.order_description = "In-game coins"
    order.order_amount = Amount(currency, value)
    req.order = order
    req.payment_amount = Amount(currency, value)
    method = PaymentMethod()
    method.payment_method_type = wallet
    method.payment_method_id = token
    req.payment_method = method
    req.payment_notify_url = notify_url
    env = Env()
    env.terminal_type = TerminalType.WEB
    req.env = env
    return req


def verified(notification, alipay_public_key, what):
    n = notification
    expect(check_signature("POST", n["path"], n["client_id"], n["request_time"], n["body"], n["signature"],
                           alipay_public_key), "%s signature does not verify" % what)
    return json.loads(n["body"])


def bind(client, sandbox_url, notifications, alipay_public_key, wallet):
    """consult -> the phone approves -> AUTHCODE_CREATED (verified) -> applyToken."""
    auth_state = "st_" + uuid.uuid4().hex
    consult = AlipayAuthConsultRequest()
    consult.customer_belongs_to = wallet
    consult.auth_redirect_url = "https://merchant.example/return"
    consult.auth_notify_url = notifications.url + "/notify/auth"
    consult.scopes = [ScopeType.AGREEMENT_PAY]
    consult.auth_state = auth_state
    consult.terminal_type = TerminalType.WEB
    resp = execute(client, consult)
    expect(result_code(resp) == "SUCCESS", "consult %s: %s" % (wallet, resp))
    code_value = resp["authCodeForm"]["codeDetails"][0]["codeValue"]
    control(sandbox_url, "/sandbox/v1/scan", {"codeValue": code_value, "decision": "approve"})
    auth = verified(notifications.next_where("authState", auth_state), alipay_public_key,
                    "AUTHCODE_CREATED (%s)" % wallet)
    apply = AlipayAuthApplyTokenRequest()
    apply.grant_type = GrantType.AUTHORIZATION_CODE
    apply.customer_belongs_to = wallet
    apply.auth_code = auth["authCode"]
    resp = execute(client, apply)
    expect(result_code(resp) == "SUCCESS", "applyToken %s: %s" % (wallet, resp))
    return resp


def declare(payment_id, request_id, value, suborder_id=None):
    """A customs declaration as the SDK builds it: the SDK leaves `splitOrder` out unless
    it is true, and spells the sub-order `suborderId`."""
    req = AlipayCustomsDeclareRequest()
    req.declaration_request_id = request_id
    req.payment_id = payment_id
    req.declaration_amount = Amount("CNY", value)
    customs = CustomsInfo()
    customs.customs_code = "ZONGSHU"
    customs.region = "CN"
    req.customs = customs
    merchant = MerchantCustomsInfo()
    merchant.merchant_customs_code = "MC0001"
    merchant.merchant_customs_name = "Scanbind Games"
    req.merchant_customs_info = merchant
    if suborder_id is not None:
        req.split_order = True
        req.suborder_id = suborder_id
    return req


def main():
    sandbox_url, client_id, key_path = sys.argv[1], sys.argv[2], sys.argv[3]
    point_sdk_at(sandbox_url)

    # The SDK wraps the key text in "BEGIN RSA PRIVATE KEY": give it the PKCS#1 body.
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    pkcs1 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode()
    merchant_key = "".join(line for line in pkcs1.splitlines() if not line.startswith("-----"))
    alipay_public_key = control(sandbox_url, "/sandbox/v1/public-key")

    notifications = Notifications()
    client = DefaultAlipayClient(sandbox_url, client_id, merchant_key, alipay_public_key)

    # 1. consult
    auth_state = "st_" + uuid.uuid4().hex
    consult = AlipayAuthConsultRequest()
    consult.customer_belongs_to = CustomerBelongsTo.GCASH
    consult.auth_redirect_url = "https://merchant.example/return"
    consult.auth_notify_url = notifications.url + "/notify/auth"
    consult.scopes = [ScopeType.AGREEMENT_PAY]
    consult.auth_state = auth_state
    consult.terminal_type = TerminalType.WEB
    resp = execute(client, consult)
    expect(result_code(resp) == "SUCCESS", "consult: %s" % resp)
    code_value = resp["authCodeForm"]["codeDetails"][0]["codeValue"]

    # 2. the phone approves (control API)
    control(sandbox_url, "/sandbox/v1/scan", {"codeValue": code_value, "decision": "approve"})

    # 3. AUTHCODE_CREATED, verified with the SDK's webhook tool
    n = notifications.next_where("authState", auth_state)
    expect(check_signature("POST", n["path"], n["client_id"], n["request_time"], n["body"], n["signature"],
                           alipay_public_key), "AUTHCODE_CREATED signature does not verify")
    auth = json.loads(n["body"])
    expect(auth["authorizationNotifyType"] == "AUTHCODE_CREATED", "notify type: %s" % auth)

    # 4. applyToken
    apply = AlipayAuthApplyTokenRequest()
    apply.grant_type = GrantType.AUTHORIZATION_CODE
    apply.customer_belongs_to = CustomerBelongsTo.GCASH
    apply.auth_code = auth["authCode"]
    resp = execute(client, apply)
    expect(result_code(resp) == "SUCCESS", "applyToken: %s" % resp)
    token = resp["accessToken"]

    pay_notify = notifications.url + "/notify/pay"
    # 5. pay
    pay_id = "py_" + uuid.uuid4().hex[:20]
    resp = execute(client, agreement_pay(token, pay_id, "30000", pay_notify))
    expect(result_code(resp) == "SUCCESS", "pay: %s" % resp)
    payment_id = resp["paymentId"]
    n = notifications.next_where("paymentRequestId", pay_id)
    expect(check_signature("POST", n["path"], n["client_id"], n["request_time"], n["body"], n["signature"],
                           alipay_public_key), "notifyPayment signature does not verify")

    # 6. inquiryPayment
    inquiry = AlipayPayQueryRequest()
    inquiry.payment_request_id = pay_id
    resp = execute(client, inquiry)
    expect(resp.get("paymentStatus") == "SUCCESS", "inquiryPayment: %s" % resp)
    # 300.00 PHP at the sandbox's quote of 0.125 CNY: 37.50 CNY may be declared to customs.
    expect(resp.get("customsDeclarationAmount") == {"currency": "CNY", "value": "3750"},
           "inquiryPayment customsDeclarationAmount: %s" % resp)

    # 7. refund
    refund_id = "rf_" + uuid.uuid4().hex[:20]
    refund = AlipayRefundRequest()
    refund.refund_request_id = refund_id
    refund.payment_id = payment_id
    refund.refund_amount = Amount("PHP", "10000")
    resp = execute(client, refund)
    expect(result_code(resp) == "SUCCESS", "refund: %s" % resp)

    # 8. inquiryRefund
    inquiry_refund = AlipayInquiryRefundRequest()
    inquiry_refund.refund_request_id = refund_id
    resp = execute(client, inquiry_refund)
    expect(resp.get("refundStatus") == "SUCCESS", "inquiryRefund: %s" % resp)

    # 8b. customs declarations: one whole (no splitOrder in the SDK's JSON), one split
    # order in two sub-orders (suborderId), then inquiryDeclarationRequests
    whole = declare(payment_id, "dw_" + uuid.uuid4().hex[:20], "100")
    body = json.loads(whole.to_ams_json())
    expect("splitOrder" not in body, "the SDK sent splitOrder for a whole declaration: %s" % body)
    resp = execute(client, whole)
    expect(result_code(resp) == "SUCCESS", "declare (whole): %s" % resp)
    split_ids = []
    for sub in ("sub_a", "sub_b"):
        req = declare(payment_id, "ds_" + uuid.uuid4().hex[:20], "50", sub)
        body = json.loads(req.to_ams_json())
        expect(body.get("suborderId") == sub and body.get("splitOrder") is True,
               "the SDK's split declaration: %s" % body)
        resp = execute(client, req)
        expect(result_code(resp) == "SUCCESS", "declare (split %s): %s" % (sub, resp))
        split_ids.append(req.declaration_request_id)
    query = AlipayCustomsQueryRequest()
    query.declaration_request_ids = [whole.declaration_request_id] + split_ids
    resp = execute(client, query)
    expect(result_code(resp) == "SUCCESS", "inquiryDeclarationRequests: %s" % resp)
    records = {r["declarationRequestId"]: r for r in resp.get("declarationRecords", [])}
    expect(len(records) == 3, "inquiryDeclarationRequests records: %s" % resp)
    expect(records[whole.declaration_request_id].get("splitOrder") is False,
           "whole declaration's splitOrder: %s" % records)
    expect(all(records[i].get("splitOrder") is True for i in split_ids),
           "split declarations' splitOrder: %s" % records)

    # 8c. a payment priced in HKD, paid from the GCash (PHP) wallet at the sandbox's quote:
    # the SDK's own response models read actualPaymentAmount and paymentQuote from pay and
    # inquiryPayment. HKD 10.00 at 7.36 PHP per HKD (0.92 / 0.125 CNY) = PHP 73.60.
    fx_id = "py_" + uuid.uuid4().hex[:20]
    raw = client.execute(agreement_pay(token, fx_id, "1000", pay_notify, currency="HKD"))
    fx = AlipayPayResponse(raw)
    expect(fx.result.result_code == "SUCCESS", "cross-currency pay: %s" % raw)
    expect((fx.payment_amount.currency, fx.payment_amount.value) == ("HKD", "1000"),
           "cross-currency paymentAmount: %s" % raw)
    expect((fx.actual_payment_amount.currency, fx.actual_payment_amount.value) == ("PHP", "7360"),
           "cross-currency actualPaymentAmount: %s" % raw)
    expect(fx.payment_quote.quote_currency_pair == "HKD/PHP" and str(fx.payment_quote.quote_price) == "7.36",
           "cross-currency paymentQuote: %s" % raw)
    inquiry = AlipayPayQueryRequest()
    inquiry.payment_request_id = fx_id
    raw = client.execute(inquiry)
    fxq = AlipayPayQueryResponse(raw)
    expect(fxq.actual_payment_amount.value == "7360" and fxq.payment_quote.quote_id == fx.payment_quote.quote_id,
           "cross-currency inquiryPayment: %s" % raw)
    n = notifications.next_where("paymentRequestId", fx_id)
    verified(n, alipay_public_key, "notifyPayment (cross-currency)")
    # CHF has no sandbox quote: refused, nothing charged.
    raw = client.execute(agreement_pay(token, "py_" + uuid.uuid4().hex[:20], "1000", pay_notify, currency="CHF"))
    expect(json.loads(raw)["result"]["resultCode"] == "CURRENCY_NOT_SUPPORT", "unquoted currency: %s" % raw)

    # 8a. an asynchronous refund (isAsyncRefund): U / REFUND_IN_PROCESS, PROCESSING,
    # then SUCCESS and a verified notifyRefund
    async_id = "rf_" + uuid.uuid4().hex[:20]
    refund = AlipayRefundRequest()
    refund.refund_request_id = async_id
    refund.payment_id = payment_id
    refund.refund_amount = Amount("PHP", "5000")
    refund.is_async_refund = True
    refund.refund_notify_url = notifications.url + "/notify/refund"
    resp = execute(client, refund)
    expect(result_code(resp) == "REFUND_IN_PROCESS" and resp["result"]["resultStatus"] == "U",
           "async refund: %s" % resp)
    inquiry_refund = AlipayInquiryRefundRequest()
    inquiry_refund.refund_request_id = async_id
    resp = execute(client, inquiry_refund)
    expect(resp.get("refundStatus") == "PROCESSING", "async refund, first inquiry: %s" % resp)
    resp = execute(client, inquiry_refund)
    expect(resp.get("refundStatus") == "SUCCESS", "async refund, second inquiry: %s" % resp)
    n = verified(notifications.next_where("refundRequestId", async_id), alipay_public_key,
                 "notifyRefund (async)")
    expect(n.get("refundStatus") == "SUCCESS", "async notifyRefund: %s" % n)

    # 9. cancel another payment
    pay2 = "py_" + uuid.uuid4().hex[:20]
    resp = execute(client, agreement_pay(token, pay2, "5000", pay_notify))
    expect(result_code(resp) == "SUCCESS", "second pay: %s" % resp)
    cancel = AlipayPayCancelRequest()
    cancel.payment_id = resp["paymentId"]
    resp = execute(client, cancel)
    expect(result_code(resp) == "SUCCESS", "cancel: %s" % resp)

    # 10. revoke
    revoke = AlipayAuthRevokeTokenRequest()
    revoke.access_token = token
    resp = execute(client, revoke)
    expect(result_code(resp) == "SUCCESS", "revoke: %s" % resp)

    # 11. pay with the revoked token
    resp = execute(client, agreement_pay(token, "py_" + uuid.uuid4().hex[:20], "1000", pay_notify))
    expect(result_code(resp) == "INVALID_ACCESS_TOKEN", "pay after revoke: %s" % resp)

    # 12. the two wallets of the seed: AlipayHK (HKD) and DANA (IDR); and the
    # REFRESH_TOKEN grant
    hk = bind(client, sandbox_url, notifications, alipay_public_key, "ALIPAY_HK")
    refresh = AlipayAuthApplyTokenRequest()
    refresh.grant_type = GrantType.REFRESH_TOKEN
    refresh.customer_belongs_to = "ALIPAY_HK"
    refresh.refresh_token = hk["refreshToken"]
    resp = execute(client, refresh)
    expect(result_code(resp) == "SUCCESS" and resp["accessToken"] != hk["accessToken"],
           "applyToken REFRESH_TOKEN: %s" % resp)
    hk_token = resp["accessToken"]
    hk_pay = "py_" + uuid.uuid4().hex[:20]
    resp = execute(client, agreement_pay(hk_token, hk_pay, "1000", pay_notify, "ALIPAY_HK", "HKD"))
    expect(result_code(resp) == "SUCCESS", "AlipayHK pay: %s" % resp)
    verified(notifications.next_where("paymentRequestId", hk_pay), alipay_public_key, "notifyPayment (AlipayHK)")

    dana = bind(client, sandbox_url, notifications, alipay_public_key, "DANA")
    dana_pay = "py_" + uuid.uuid4().hex[:20]
    resp = execute(client, agreement_pay(dana["accessToken"], dana_pay, "100000", pay_notify, "DANA", "IDR"))
    expect(result_code(resp) == "SUCCESS", "DANA pay: %s" % resp)
    dana_payment_id = resp["paymentId"]
    verified(notifications.next_where("paymentRequestId", dana_pay), alipay_public_key, "notifyPayment (DANA)")
    # Indonesian methods cannot be cancelled: refund instead (with notifyRefund).
    cancel = AlipayPayCancelRequest()
    cancel.payment_id = dana_payment_id
    resp = execute(client, cancel)
    expect(result_code(resp) == "CANCEL_WINDOW_EXCEED", "DANA cancel: %s" % resp)
    dana_refund = "rf_" + uuid.uuid4().hex[:20]
    refund = AlipayRefundRequest()
    refund.refund_request_id = dana_refund
    refund.payment_id = dana_payment_id
    refund.refund_amount = Amount("IDR", "100000")
    refund.refund_notify_url = notifications.url + "/notify/refund"
    resp = execute(client, refund)
    expect(result_code(resp) == "SUCCESS", "DANA refund: %s" % resp)
    n = verified(notifications.next_where("refundRequestId", dana_refund), alipay_public_key, "notifyRefund")
    expect(n.get("refundStatus") == "SUCCESS", "notifyRefund: %s" % n)

    # 13. an order code (IN_STORE_PAYMENT, OrderCode), paid on the phone
    oc_id = "oc_" + uuid.uuid4().hex[:20]
    oc = AlipayPayRequest()
    oc.product_code = ProductCodeType.IN_STORE_PAYMENT
    oc.payment_request_id = oc_id
    factor = PaymentFactor()
    factor.in_store_payment_scenario = InStorePaymentScenario.ORDERCODE
    oc.payment_factor = factor
    method = PaymentMethod()
    method.payment_method_type = "CONNECT_WALLET"
    oc.payment_method = method
    oc.payment_amount = Amount("HKD", "1000")
    order = Order()
    order.reference_order_id = "ord_" + oc_id
    order.order_description = "Coffee"
    order.order_amount = Amount("HKD", "1000")
    merchant = Merchant()
    merchant.reference_merchant_id = "M1"
    merchant.merchant_mcc = "5812"
    merchant.merchant_name = "Cafe"
    store = Store()
    store.reference_store_id = "S1"
    store.store_name = "Cafe Central"
    store.store_mcc = "5812"
    merchant.store = store
    order.merchant = merchant
    oc.order = order
    oc.payment_notify_url = pay_notify
    resp = execute(client, oc)
    expect(result_code(resp) == "SUCCESS", "order code pay: %s" % resp)
    code = resp["orderCodeForm"]["codeDetails"][0]["codeValue"]
    out = json.loads(control(sandbox_url, "/sandbox/v1/scan", {"codeValue": code, "decision": "approve"}))
    expect(out.get("outcome") == "paid", "order code scan: %s" % out)
    n = verified(notifications.next_where("paymentRequestId", oc_id), alipay_public_key, "notifyPayment (order code)")
    expect(n["result"]["resultCode"] == "SUCCESS", "order code notification: %s" % n)
    inquiry = AlipayPayQueryRequest()
    inquiry.payment_request_id = oc_id
    resp = execute(client, inquiry)
    expect(resp.get("paymentStatus") == "SUCCESS", "order code inquiry: %s" % resp)

    ledger = json.loads(control(sandbox_url, "/sandbox/v1/ledger"))
    paid = [p for p in ledger["payments"] if p["paymentRequestId"] == pay_id]
    expect(len(paid) == 1 and paid[0]["moneyMovements"] == 1, "ledger: %s" % ledger)
    print("OK " + client_id)


if __name__ == "__main__":
    main()
