"""A Verification SCP with pynetdicom (run with the pynetdicom venv's python).

usage: pynetdicom_echo_scp.py AE_TITLE [CA CERT KEY]

Listens on a free loopback port and prints ``listening on port N``; prints
``C-ECHO from <calling AE title>`` for each C-ECHO; shuts down when its
standard input closes. With CA, CERT and KEY it serves TLS and requires a
client certificate signed by CA.
"""

import ssl
import sys

from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification


def on_echo(event):
    print(f"C-ECHO from {event.assoc.requestor.ae_title}", flush=True)
    return 0x0000


def main(argv: list[str]) -> int:
    context = None
    if len(argv) > 2:
        ca, cert, key = argv[2:5]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
        context.load_cert_chain(cert, key)
        context.verify_mode = ssl.CERT_REQUIRED
    ae = AE(ae_title=argv[1])
    ae.add_supported_context(Verification)
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        ssl_context=context,
        evt_handlers=[(evt.EVT_C_ECHO, on_echo)],
    )
    print(f"listening on port {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
