#!/usr/bin/env python3
"""The official AMS Python SDK (global-open-sdk-python) checks a subscription renewal's
`pay` request exactly as scanbind-server sent it (server/tests/subscriptions.rs).

Reads one JSON object from stdin: {"method", "path", "client_id", "time",
"signature_header", "body", "public_key"} (the body as the exact text sent; the public
key as bare Base64 SubjectPublicKeyInfo) and writes one JSON object to stdout:

  {"signature_ok": bool, "error": str|null,      signature_tool.verify over the bytes sent
   "round_trip_equal": bool,                     AlipayPayRequest.parse_rsp_body(body)
   "round_trip": {...},                          then .to_ams_json(): the SDK's own model
   "product_code": str|null,                     keeps every field, spelled as it spells it
   "payment_method_type": str|null}
"""

import json
import sys

from com.alipay.ams.api.request.pay.alipay_pay_request import AlipayPayRequest
from com.alipay.ams.api.tools import signature_tool


def main():
    op = json.load(sys.stdin)
    header = op["signature_header"]
    value = ""
    for part in header.split(","):
        key, _, v = part.strip().partition("=")
        if key == "signature":
            value = v
    try:
        ok = bool(
            signature_tool.verify(
                op["method"], op["path"], op["client_id"], op["time"], op["body"],
                value, op["public_key"],
            )
        )
        error = None
    except Exception as e:  # the SDK raises on a bad signature
        ok, error = False, "%s: %s" % (type(e).__name__, e)
    req = AlipayPayRequest()
    req.parse_rsp_body(op["body"])
    round_trip = json.loads(req.to_ams_json())
    sent = json.loads(op["body"])
    json.dump(
        {
            "signature_ok": ok,
            "error": error,
            "round_trip_equal": round_trip == sent,
            "round_trip": round_trip,
            "product_code": req.product_code.value if req.product_code else None,
            "payment_method_type": req.payment_method.payment_method_type
            if req.payment_method
            else None,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
