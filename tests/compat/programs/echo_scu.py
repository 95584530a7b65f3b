"""Check that a Verification SCP behaves (a pynetdicom program).

usage: echo_scu.py HOST PORT CALLED_AE_TITLE

Runs the checks a site engineer runs after installing a node: a request to
the wrong AE title must be rejected; a normal association must accept
Verification (and, here, refuse CT Image Storage); C-ECHO must succeed; the
association must release cleanly and refuse further requests; an aborted
association must be reported as aborted; a node in maintenance must answer
C-ECHO with a failure. Exit status 0 when every check passed.
"""

import sys

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, Verification


def on_established(event):
    print(f"  established with {event.assoc.acceptor.ae_title}")


def on_released(event):
    print("  released")


def echo(assoc):
    status = assoc.send_c_echo()
    if status:
        print(f"  C-ECHO status: 0x{status.Status:04X}")
        return status.Status
    print("  C-ECHO: no valid response (timeout, abort or invalid)")
    return None


def main(argv):
    host, port, called = argv[1], int(argv[2]), argv[3]
    failures = 0

    ae = AE(ae_title="COMPAT-SCU")
    ae.acse_timeout = 10
    ae.dimse_timeout = 10
    ae.network_timeout = 10
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    handlers = [(evt.EVT_ESTABLISHED, on_established), (evt.EVT_RELEASED, on_released)]

    print("1. wrong called AE title")
    assoc = ae.associate(host, port, ae_title="NOT-" + called[:12], evt_handlers=handlers)
    if assoc.is_rejected:
        print("  rejected, as it should be")
    else:
        print(f"  NOT rejected (established={assoc.is_established})")
        failures += 1
        if assoc.is_established:
            assoc.release()

    print("2. echo and release")
    assoc = ae.associate(host, port, ae_title=called, evt_handlers=handlers)
    if assoc.is_established:
        print(f"  peer accepts PDUs of up to {assoc.acceptor.maximum_length} bytes")
        for cx in assoc.accepted_contexts:
            print(f"  accepted: {cx.abstract_syntax.name} in {cx.transfer_syntax[0].name}")
        for cx in assoc.rejected_contexts:
            print(f"  refused: {cx.abstract_syntax.name}")
        if echo(assoc) != 0x0000:
            failures += 1

        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        try:
            assoc.send_c_store(ds)
            print("  C-STORE was sent without an accepted context")
            failures += 1
        except ValueError:
            print("  C-STORE refused locally: no accepted context")

        assoc.release()
        print(f"  is_released={assoc.is_released} is_established={assoc.is_established}")
        try:
            assoc.send_c_echo()
            print("  C-ECHO was sent after release")
            failures += 1
        except RuntimeError:
            print("  C-ECHO after release refused")
    else:
        print("  association failed")
        failures += 1

    print("3. echo and abort")
    assoc = ae.associate(host, port, ae_title=called)
    if assoc.is_established:
        status = assoc.send_c_echo(msg_id=7)
        if status and status.Status == 0x0000:
            print("  C-ECHO succeeded")
        else:
            failures += 1
        assoc.abort()
        print(f"  is_aborted={assoc.is_aborted} is_established={assoc.is_established}")
    else:
        print("  association failed")
        failures += 1

    print("4. node in maintenance")
    ae.ae_title = "MAINTENANCE"
    assoc = ae.associate(host, port, ae_title=called)
    if assoc.is_established:
        status = echo(assoc)
        if status is not None and status != 0x0000:
            print("  failure status, as it should be")
        else:
            failures += 1
        assoc.release()
    else:
        print("  association failed")
        failures += 1

    print(f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
