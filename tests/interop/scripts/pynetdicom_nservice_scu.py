"""A DIMSE-N SCU with pynetdicom (run with the pynetdicom venv's python).

usage: pynetdicom_nservice_scu.py PORT CALLED_AE_TITLE SCENARIO

Associates with 127.0.0.1:PORT as ``PYNETDICOM-SCU`` and prints one JSON
object per operation: ``{"op": ..., "status": ..., ...}`` (``status`` is
``null`` when no valid response came). Scenarios:

* ``mpps`` -- Modality Performed Procedure Step: N-CREATE (IN PROGRESS), N-SET
  (COMPLETED), N-GET (Retrieve), then what must be refused: an N-CREATE that is
  not IN PROGRESS, an N-SET of the completed step, an N-GET on the MPPS SOP
  class;
* ``ian`` -- Instance Availability Notification: N-CREATE, then an N-SET;
* ``commit-same`` -- Storage Commitment: N-ACTION for three instances (the one
  whose UID ends in ``.99`` is expected to fail), keeps the association open
  and waits for the N-EVENT-REPORT on it;
* ``commit-new`` -- the same, but first listens on a free port for the report
  (accepting the SCP role for the requestor), prints ``listening on port N``,
  waits for a line on its standard input, sends the N-ACTION on an association
  with no N-EVENT-REPORT handler (a report there gets pynetdicom's 0110H),
  releases at once and waits for the report on a new association.
"""

import json
import sys
import threading

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    InstanceAvailabilityNotification,
    ModalityPerformedProcedureStep,
    ModalityPerformedProcedureStepRetrieve,
    StorageCommitmentPushModel,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
INSTANCE = "1.2.840.10008.1.20.1.1"
ROOT = "1.2.826.0.1.3680043.8.498.66001"


def say(op, status, **fields):
    code = status.get("Status") if status is not None else None
    extra = {}
    for keyword in ("ErrorComment", "ErrorID", "AffectedSOPInstanceUID", "OffendingElement"):
        if status is not None and keyword in status:
            value = status[keyword].value
            extra[keyword] = value if isinstance(value, int | str) else str(value)
    print(json.dumps({"op": op, "status": code, **extra, **fields}), flush=True)


def attributes(state):
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P-1"
    ds.PerformedProcedureStepID = "PPS-1"
    ds.PerformedProcedureStepStatus = state
    return ds


def mpps(assoc):
    uid = generate_uid()
    status, reply = assoc.send_n_create(
        attributes("IN PROGRESS"), ModalityPerformedProcedureStep, uid
    )
    say("N-CREATE", status, uid=uid)
    done = Dataset()
    done.PerformedProcedureStepStatus = "COMPLETED"
    status, reply = assoc.send_n_set(done, ModalityPerformedProcedureStep, uid)
    say("N-SET", status)
    status, reply = assoc.send_n_get(
        [0x00400252, 0x00100010], ModalityPerformedProcedureStepRetrieve, uid
    )
    say("N-GET", status, state=reply.get("PerformedProcedureStepStatus") if reply else None,
        patient=str(reply.get("PatientName", "")) if reply else None)
    status, reply = assoc.send_n_create(
        attributes("COMPLETED"), ModalityPerformedProcedureStep, generate_uid()
    )
    say("N-CREATE-completed", status, reply=reply is not None)
    status, reply = assoc.send_n_set(done, ModalityPerformedProcedureStep, uid)
    say("N-SET-again", status)
    status, reply = assoc.send_n_get([0x00400252], ModalityPerformedProcedureStep, uid)
    say("N-GET-on-mpps", status)


def ian(assoc):
    ds = Dataset()
    ds.StudyInstanceUID = ROOT
    ds.ReferencedPerformedProcedureStepSequence = []
    series = Dataset()
    series.SeriesInstanceUID = ROOT + ".1"
    ref = Dataset()
    ref.ReferencedSOPClassUID = CT
    ref.ReferencedSOPInstanceUID = ROOT + ".1.1"
    ref.InstanceAvailability = "ONLINE"
    ref.RetrieveAETitle = "ARCHIVE"
    series.ReferencedSOPSequence = [ref]
    ds.ReferencedSeriesSequence = [series]
    uid = generate_uid()
    status, _ = assoc.send_n_create(ds, InstanceAvailabilityNotification, uid)
    say("N-CREATE", status, uid=uid)
    status, _ = assoc.send_n_set(ds, InstanceAvailabilityNotification, uid)
    say("N-SET", status)


def commitment_request():
    ds = Dataset()
    ds.TransactionUID = generate_uid()
    refs = []
    for suffix in (".1", ".2", ".99"):
        ref = Dataset()
        ref.ReferencedSOPClassUID = CT
        ref.ReferencedSOPInstanceUID = ROOT + suffix
        refs.append(ref)
    ds.ReferencedSOPSequence = refs
    return ds


class Reports:
    def __init__(self):
        self.arrived = threading.Event()
        self.seen = []

    def __call__(self, event):
        info = event.event_information
        self.seen.append({
            "op": "N-EVENT-REPORT",
            "event_type": event.event_type,
            "transaction": info.TransactionUID,
            "committed": [
                r.ReferencedSOPInstanceUID for r in info.get("ReferencedSOPSequence", [])
            ],
            "failed": [[r.ReferencedSOPInstanceUID, r.FailureReason]
                       for r in info.get("FailedSOPSequence", [])],
            "on_requestor": event.assoc.is_requestor,
        })
        self.arrived.set()
        return 0x0000, None

    def report(self):
        if not self.arrived.wait(20):
            print(json.dumps({"op": "N-EVENT-REPORT", "status": None}), flush=True)
            return
        print(json.dumps(self.seen[0]), flush=True)


def main(argv):
    port, called, scenario = int(argv[1]), argv[2], argv[3]
    ae = AE(ae_title="PYNETDICOM-SCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for uid in (
        ModalityPerformedProcedureStep,
        ModalityPerformedProcedureStepRetrieve,
        InstanceAvailabilityNotification,
        StorageCommitmentPushModel,
    ):
        ae.add_requested_context(uid)
    reports = Reports()
    server = None
    if scenario == "commit-new":
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
        server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports)]
        )
        print(f"listening on port {server.server_address[1]}", flush=True)
        sys.stdin.readline()
    # commit-new: no handler on the association of the request, as many SCUs do, so a
    # report sent there is refused (0110H) and must come again on a new association
    handlers = [] if scenario == "commit-new" else [(evt.EVT_N_EVENT_REPORT, reports)]
    assoc = ae.associate("127.0.0.1", port, ae_title=called, evt_handlers=handlers)
    if not assoc.is_established:
        print(json.dumps({"op": "associate", "status": None}), flush=True)
        return 1
    try:
        if scenario == "mpps":
            mpps(assoc)
        elif scenario == "ian":
            ian(assoc)
        elif scenario.startswith("commit"):
            request = commitment_request()
            status, _ = assoc.send_n_action(
                request, 1, StorageCommitmentPushModel, INSTANCE
            )
            say("N-ACTION", status, transaction=request.TransactionUID)
            if scenario == "commit-new":
                assoc.release()
            reports.report()
    finally:
        if assoc.is_established:
            assoc.release()
        if server is not None:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
