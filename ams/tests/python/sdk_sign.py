#!/usr/bin/env python3
"""Runs the official AMS Python SDK (global-open-sdk-python) for ams/tests/sdk_interop.rs.

Reads one JSON object from stdin: {"ops": [op, ...]} and writes {"results": [result, ...]}
(one result per op, same order) to stdout. Every op runs the SDK's own code:

  {"op": "sign", "method", "path", "client_id", "time", "body", "private_key"}
      -> {"signature": <signature_tool.sign value: URL-encoded Base64>}
  {"op": "verify", "method", "path", "client_id", "time", "body", "signature", "public_key"}
      -> {"ok": bool, "error_type": str|null, "error": str|null}   (signature_tool.verify)
  {"op": "check_signature", ..., "signature_header", "public_key"}
      -> same shape                                                (webhook_tool.check_signature)
  {"op": "json_body", "obj", "method", "path", "client_id", "time", "private_key",
   "ensure_ascii" (optional, default true)}
      -> {"body_b64", "signature"}: body = json.dumps(obj, indent=3) as the SDK's
         request classes write it, sent as UTF-8 like net/default_http_rpc.do_post
  {"op": "consult_request", "client_id", "private_key", "public_key", "auth_state",
   "redirect_url"}
      -> {"path", "time", "body_b64", "signature_header"}: an AlipayAuthConsultRequest
         built, sandbox-adjusted, timed and signed exactly as DefaultAlipayClient.execute
         does before sending

Keys are passed as the SDK expects them: the private key as the bare Base64 of a PKCS#1
RSAPrivateKey, the public key as the bare Base64 SubjectPublicKeyInfo. A verification
failure is reported, not raised: error_type is the exception class name
(rsa.VerificationError for a signature that does not match).
"""

import base64
import json
import sys

from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient
from com.alipay.ams.api.model.customer_belongs_to import CustomerBelongsTo
from com.alipay.ams.api.model.scope_type import ScopeType
from com.alipay.ams.api.model.terminal_type import TerminalType
from com.alipay.ams.api.request.auth.alipay_auth_consult_request import (
    AlipayAuthConsultRequest,
)
from com.alipay.ams.api.tools import signature_tool, webhook_tool
from com.alipay.ams.api.tools.constants import DEFAULT_CHARSET, DEFAULT_KEY_VERSION
from com.alipay.ams.api.tools.date_tools import get_cur_iso8601_time


def checked(fn):
    try:
        ok = fn()
        return {"ok": bool(ok), "error_type": None, "error": None}
    except Exception as e:  # the SDK raises on a bad signature
        return {"ok": False, "error_type": type(e).__name__, "error": str(e)}


def run(op):
    kind = op["op"]
    if kind == "sign":
        return {
            "signature": signature_tool.sign(
                op["method"], op["path"], op["client_id"], op["time"], op["body"],
                op["private_key"],
            )
        }
    if kind == "verify":
        return checked(
            lambda: signature_tool.verify(
                op["method"], op["path"], op["client_id"], op["time"], op["body"],
                op["signature"], op["public_key"],
            )
        )
    if kind == "check_signature":
        return checked(
            lambda: webhook_tool.check_signature(
                op["method"], op["path"], op["client_id"], op["time"], op["body"],
                op["signature_header"], op["public_key"],
            )
        )
    if kind == "json_body":
        body = json.dumps(op["obj"], indent=3, ensure_ascii=op.get("ensure_ascii", True))
        return {
            "body_b64": base64.b64encode(body.encode(DEFAULT_CHARSET)).decode("ascii"),
            "signature": signature_tool.sign(
                op["method"], op["path"], op["client_id"], op["time"], body,
                op["private_key"],
            ),
        }
    if kind == "consult_request":
        client = DefaultAlipayClient(
            "https://open-sea-global.alipay.com", op["client_id"], op["private_key"],
            op["public_key"],
        )
        request = AlipayAuthConsultRequest()
        request.customer_belongs_to = CustomerBelongsTo.GCASH
        request.auth_client_id = op["client_id"]
        request.auth_redirect_url = op["redirect_url"]
        request.scopes = [ScopeType.AGREEMENT_PAY]
        request.auth_state = op["auth_state"]
        request.terminal_type = TerminalType.WEB
        # The same steps, in the same order, as DefaultAlipayClient.execute.
        client.adjust_sandbox_url(request)
        path = request.path
        req_time = get_cur_iso8601_time()
        req_body = request.to_ams_json()
        sign_value = signature_tool.sign(
            request.http_method.value, path, op["client_id"], req_time, req_body,
            op["private_key"],
        )
        return {
            "method": request.http_method.value,
            "path": path,
            "time": req_time,
            "body_b64": base64.b64encode(req_body.encode(DEFAULT_CHARSET)).decode("ascii"),
            "signature_header": "algorithm=RSA256,keyVersion="
            + DEFAULT_KEY_VERSION
            + ",signature="
            + sign_value,
        }
    raise ValueError("unknown op " + repr(kind))


def main():
    request = json.load(sys.stdin)
    results = [run(op) for op in request["ops"]]
    json.dump({"results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
