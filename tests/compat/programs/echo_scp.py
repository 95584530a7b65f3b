"""Verification SCP for the department's health checks (a pynetdicom program).

Listens on 127.0.0.1 (port from the command line, 0 for any free port) as
COMPAT-SCP and answers C-ECHO. Associations must be addressed to COMPAT-SCP.
Requestors in maintenance (MAINTENANCE) get a failure status. Each event is
printed as one line.

Control on standard input: ``quiet`` stops logging new connections,
end of input shuts the server down.
"""

import sys
import threading

from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

IN_MAINTENANCE = {"MAINTENANCE"}


_print_lock = threading.Lock()


def log(message):
    # handlers run in several threads: one lock, so that lines never interleave
    with _print_lock:
        print(message, flush=True)


def handle_echo(event, served):
    """EVT_C_ECHO: return a status for the C-ECHO-RSP."""
    requestor = event.assoc.requestor
    served.append(requestor.ae_title)
    log(
        f"C-ECHO from {requestor.ae_title}: message ID {event.request.MessageID}, "
        f"context {event.context.context_id} ({event.context.abstract_syntax.name})"
    )
    if requestor.ae_title in IN_MAINTENANCE:
        return 0x0211  # Unrecognized Operation
    return 0x0000


def on_conn_open(event):
    log(f"connection opened from {event.address[0]}")


def on_established(event):
    assoc = event.assoc
    requestor = assoc.requestor
    log(
        f"association established with {requestor.ae_title} at {requestor.address} "
        f"({len(assoc.accepted_contexts)} accepted context(s), "
        f"max PDU {requestor.maximum_length})"
    )


def on_rejected(event):
    log(f"association from {event.assoc.requestor.ae_title} rejected")


def on_released(event):
    log(f"association released by {event.assoc.requestor.ae_title}")


def on_aborted(event):
    log(f"association aborted by {event.assoc.requestor.ae_title}")


def main(argv):
    port = int(argv[1]) if len(argv) > 1 else 0
    ae = AE(ae_title="COMPAT-SCP")
    ae.require_called_aet = True
    ae.add_supported_context(Verification)
    ae.acse_timeout = 10
    ae.network_timeout = 10

    served = []
    handlers = [
        (evt.EVT_C_ECHO, handle_echo, [served]),
        (evt.EVT_CONN_OPEN, on_conn_open),
    ]
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    server.bind(evt.EVT_ESTABLISHED, on_established)
    server.bind(evt.EVT_REJECTED, on_rejected)
    server.bind(evt.EVT_RELEASED, on_released)
    server.bind(evt.EVT_ABORTED, on_aborted)
    log(f"listening on port {server.server_address[1]}")

    for line in sys.stdin:
        if line.strip() == "quiet":
            server.unbind(evt.EVT_CONN_OPEN, on_conn_open)
            log("no longer logging connections")

    server.shutdown()
    log(f"served {len(served)} C-ECHO request(s): {', '.join(served)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
