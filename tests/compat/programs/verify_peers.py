"""Verify a list of DICOM nodes with C-ECHO (a pynetdicom program).

usage: verify_peers.py NAME=HOST:PORT:AE_TITLE ...

Prints one line per node and a summary; the exit status is the number of
nodes that could not be verified.
"""

import sys

from pynetdicom import AE, VerificationPresentationContexts


def verify(ae, host, port, ae_title):
    assoc = ae.associate(host, port, ae_title=ae_title)
    if assoc.is_established:
        status = assoc.send_c_echo()
        assoc.release()
        if status and status.Status == 0x0000:
            return "ok"
        if status:
            return f"failed with status 0x{status.Status:04X}"
        return "no response"
    if assoc.is_rejected:
        return "association rejected"
    if assoc.is_aborted:
        return "association aborted or never connected"
    return "association failed"


def main(argv):
    ae = AE(ae_title="VERIFIER")
    ae.requested_contexts = VerificationPresentationContexts
    ae.connection_timeout = 5
    ae.acse_timeout = 5
    ae.dimse_timeout = 5

    failed = 0
    for spec in argv[1:]:
        name, address = spec.split("=", 1)
        host, port, ae_title = address.split(":")
        outcome = verify(ae, host, int(port), ae_title)
        if outcome != "ok":
            failed += 1
        print(f"{name:<12} {ae_title:<16} {outcome}")
    print(f"{len(argv) - 1 - failed} of {len(argv) - 1} node(s) verified")
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv))
