"""Connect, then exec: pays on a bus connection, then execs another program (argv[3])
that keeps the connection and pays again on it. Prints one line per payment:
`<order> ok <path>` or `<order> error <name> <message>`."""
import os
import socket
import sys

from jeepney import DBusAddress, HeaderFields, new_method_call
from jeepney.io.blocking import open_dbus_connection
from jeepney.low_level import Parser

DAEMON = DBusAddress("/io/scanbind/Daemon1", bus_name="io.scanbind.Daemon",
                     interface="io.scanbind.Daemon1")


def pay_call(order):
    return new_method_call(DAEMON, "Pay", "sxssa{sv}", (order, 100, "HKD", "Coins", {}))


def report(order, reply):
    if reply.header.message_type.name == "error":
        name = reply.header.fields.get(HeaderFields.error_name, "?")
        print(order, "error", name, *reply.body, flush=True)
    else:
        print(order, "ok", *reply.body, flush=True)


if sys.argv[1] == "first":
    address, other = sys.argv[2], sys.argv[3]
    conn = open_dbus_connection(bus=address)
    report("before-exec", conn.send_and_get_reply(pay_call("before-exec")))
    fd = conn.sock.fileno()
    os.set_inheritable(fd, True)
    os.execv(other, [other, __file__, "second", str(fd)])
else:
    # The connection is set up already (authenticated, Hello said): raw messages.
    sock = socket.socket(fileno=int(sys.argv[2]))
    serial = 1000
    sock.sendall(pay_call("after-exec").serialise(serial=serial))
    parser = Parser()
    while True:
        data = sock.recv(65536)
        if not data:
            sys.exit("the bus closed the connection")
        for msg in parser.feed(data):
            if msg.header.fields.get(HeaderFields.reply_serial) == serial:
                report("after-exec", msg)
                sys.exit(0)
