"""C-ECHO with pynetdicom as the SCU (run with the pynetdicom venv's python).

usage: pynetdicom_echo_scu.py HOST PORT CALLED_AET CALLING_AET [CA CERT KEY]

With CA, CERT and KEY the association runs over TLS, the server checked
against CA for the host name ``localhost``. Prints the C-ECHO status; exits
0 on Success, 1 otherwise.
"""

import ssl
import sys

from pynetdicom import AE
from pynetdicom.sop_class import Verification


def main(argv: list[str]) -> int:
    host, port, called, calling = argv[1], int(argv[2]), argv[3], argv[4]
    tls_args = None
    if len(argv) > 5:
        ca, cert, key = argv[5:8]
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        context.load_cert_chain(cert, key)
        tls_args = (context, "localhost")
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(Verification)
    assoc = ae.associate(host, port, ae_title=called, tls_args=tls_args)
    if not assoc.is_established:
        print("association failed", flush=True)
        return 1
    status = assoc.send_c_echo()
    assoc.release()
    if not status:
        print("no response", flush=True)
        return 1
    print(f"status 0x{status.Status:04X}", flush=True)
    return 0 if status.Status == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
