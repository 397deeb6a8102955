#!/usr/bin/env python3
"""Sign + verify throughput of the official AMS Python SDK (global-open-sdk-python).

One operation is what the SDK does per message: signature_tool.sign over the content,
then signature_tool.verify of that signature (both load the key from its text each
call, as the SDK's client does per request). Run by benches/benches/ams_sign_verify.rs
with the same content and key as our side; prints one `ops_per_sec <rate>` line per
timed round.
"""

import argparse
import sys
import time

from com.alipay.ams.api.tools import signature_tool


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--method", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--time", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--private-key", required=True, help="bare Base64 PKCS#1")
    p.add_argument("--public-key", required=True, help="bare Base64 SPKI")
    p.add_argument("--expected-signature", required=True,
                   help="our URL-encoded signature of the same content")
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--rounds", type=int, required=True)
    p.add_argument("--iterations", type=int, required=True)
    a = p.parse_args()

    def op():
        sig = signature_tool.sign(a.method, a.path, a.client_id, a.time, a.body, a.private_key)
        if not signature_tool.verify(a.method, a.path, a.client_id, a.time, a.body, sig,
                                     a.public_key):
            raise SystemExit("SDK verify returned false")
        return sig

    # The SDK must do the same work as ours: the same signature of the same content.
    sig = op()
    if sig != a.expected_signature:
        sys.exit("SDK signature differs from ours:\n%s\n%s" % (sig, a.expected_signature))

    for _ in range(a.warmup):
        op()
    for _ in range(a.rounds):
        start = time.perf_counter()
        for _ in range(a.iterations):
            op()
        elapsed = time.perf_counter() - start
        print("ops_per_sec %.3f" % (a.iterations / elapsed), flush=True)


if __name__ == "__main__":
    main()
