#!/usr/bin/env python3
"""Pay through scanbindd from Python, with nothing but a D-Bus library (jeepney).

    pip install jeepney==0.9.0
    python3 pay.py ORDER_ID AMOUNT_MINOR CURRENCY DESCRIPTION

The daemon is looked for on $SCANBIND_BUS_ADDRESS if set, else on the session bus.
It pays, waits for the result (subscribing to the payment's Completed signal before
reading its State, so the result cannot slip between the two), prints the receipt for
the app's backend to verify, and marks the order delivered with Finish.

Exit status: 0 paid, 1 not paid, 2 the daemon refused (its error name is printed).
"""

import os
import sys

from jeepney import DBusAddress, MatchRule, Properties, message_bus, new_method_call
from jeepney.io.blocking import open_dbus_connection
from jeepney.wrappers import DBusErrorResponse, unwrap_msg

BUS_NAME = "io.scanbind.Daemon"
DAEMON = DBusAddress("/io/scanbind/Daemon1", bus_name=BUS_NAME, interface="io.scanbind.Daemon1")
PAYMENT_INTERFACE = "io.scanbind.Payment1"
FINAL = {"succeeded", "failed", "cancelled"}
TIMEOUT_S = 60


def prop(conn, address, name):
    """Reads one property; returns its value (the variant unwrapped)."""
    reply = conn.send_and_get_reply(Properties(address).get(name), timeout=TIMEOUT_S)
    (_signature, value), = unwrap_msg(reply)
    return value


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    order_id, currency, description = argv[1], argv[3], argv[4]
    if not argv[2].isdigit() or int(argv[2]) <= 0:
        print("AMOUNT_MINOR must be a positive whole number of minor units", file=sys.stderr)
        return 2
    amount_minor = int(argv[2])
    conn = open_dbus_connection(os.environ.get("SCANBIND_BUS_ADDRESS") or "SESSION")
    try:
        reply = conn.send_and_get_reply(
            new_method_call(DAEMON, "Pay", "sxssa{sv}",
                            (order_id, amount_minor, currency, description, {})),
            timeout=TIMEOUT_S,
        )
        (path,) = unwrap_msg(reply)
    except DBusErrorResponse as e:
        print(f"refused: {e.name}: {e.data[0] if e.data else ''}", file=sys.stderr)
        return 2
    print(f"payment {path} recorded")
    payment = DBusAddress(path, bus_name=BUS_NAME, interface=PAYMENT_INTERFACE)

    # Subscribe to Completed first, then read State.
    rule = MatchRule(type="signal", interface=PAYMENT_INTERFACE, member="Completed", path=path)
    unwrap_msg(conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=TIMEOUT_S))
    with conn.filter(rule) as completed:
        state = prop(conn, payment, "State")
        if state not in FINAL:
            signal = conn.recv_until_filtered(completed, timeout=TIMEOUT_S)
            state = signal.body[0]
    print(f"state: {state}")
    if state != "succeeded":
        name, message = prop(conn, payment, "LastError")
        print(f"not paid: {name}: {message}")
        return 1
    # Send this to your backend, which verifies it against the server's /v1/receipt-keys.
    print(f"receipt: {prop(conn, payment, 'Receipt')}")
    # ... deliver the goods, then:
    unwrap_msg(conn.send_and_get_reply(
        new_method_call(payment, "Finish", "a{sv}", ({},)), timeout=TIMEOUT_S))
    print("delivered")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
