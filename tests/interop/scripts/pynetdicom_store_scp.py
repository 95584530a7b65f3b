"""A Storage SCP with pynetdicom (run with the pynetdicom venv's python).

usage: pynetdicom_store_scp.py AE_TITLE OUTDIR [TRANSFER_SYNTAX...]

Accepts every storage SOP class pynetdicom knows, in the transfer syntaxes
given (default: every one pynetdicom knows, the requestor's choice). Listens
on a free loopback port and prints ``listening on port N``. Each received
data set is written, exactly as it arrived, to ``OUTDIR/<SOP Instance
UID>.dcm`` behind pynetdicom's File Meta Information, and
``stored <SOP Instance UID> <transfer syntax> <calling AE title>`` is printed.
Shuts down when its standard input closes.
"""

import sys
from pathlib import Path

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt


def main(argv: list[str]) -> int:
    ae_title, outdir = argv[1], Path(argv[2])
    syntaxes = argv[3:] or ALL_TRANSFER_SYNTAXES

    def on_store(event):
        uid = event.request.AffectedSOPInstanceUID
        (outdir / f"{uid}.dcm").write_bytes(event.encoded_dataset())
        syntax = event.context.transfer_syntax
        print(f"stored {uid} {syntax} {event.assoc.requestor.ae_title}", flush=True)
        return 0x0000

    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, syntaxes)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    print(f"listening on port {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
