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
* ``ups`` -- Unified Procedure Step: N-CREATE (SCHEDULED), C-FIND on UPS Pull,
  N-ACTION Change UPS State to IN PROGRESS, N-SET and N-GET with the
  Transaction UID, N-ACTION to COMPLETED; then what must be refused: an
  N-CREATE not SCHEDULED, a Change UPS State without Transaction UID;
* ``ups-watch`` -- listens on a free port for UPS event reports (accepting
  the SCP role for the requestor), prints ``listening on port N``, waits for a
  line on its standard input, subscribes globally (N-ACTION 3), releases and
  waits for one N-EVENT-REPORT;
* ``print`` -- Print Management under the Basic Grayscale Print Management
  Meta SOP Class: N-CREATE film session and film box (1 image), N-SET of the
  image box the SCP created, N-ACTION Print, N-GET of the printer status,
  N-DELETE of the film session, and an N-ACTION of an unknown action type;
* ``log-display`` -- Procedural Event Logging N-ACTION 1 (then 2, refused),
  and Display System N-GET (Manufacturer) on their well-known instances;
* ``media`` -- Media Creation Management: N-CREATE a request, N-ACTION 1
  (initiate), N-GET its Execution Status, N-ACTION 3 (refused), N-ACTION 2
  (cancel);
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
    BasicFilmBox,
    BasicFilmSession,
    BasicGrayscaleImageBox,
    BasicGrayscalePrintManagementMeta,
    DisplaySystem,
    InstanceAvailabilityNotification,
    MediaCreationManagement,
    ModalityPerformedProcedureStep,
    ModalityPerformedProcedureStepRetrieve,
    Printer,
    ProceduralEventLogging,
    StorageCommitmentPushModel,
    UnifiedProcedureStepEvent,
    UnifiedProcedureStepPull,
    UnifiedProcedureStepPush,
    UnifiedProcedureStepWatch,
)

UPS_GLOBAL = "1.2.840.10008.5.1.4.34.5"

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


def ups(assoc):
    uid = generate_uid()
    item = Dataset()
    item.ProcedureStepState = "SCHEDULED"
    item.ProcedureStepLabel = "Segment the liver"
    item.InputReadinessState = "READY"
    status, _ = assoc.send_n_create(item, UnifiedProcedureStepPush, uid)
    say("N-CREATE", status, uid=uid)
    query = Dataset()
    query.ProcedureStepState = "SCHEDULED"
    query.SOPInstanceUID = ""
    found = [ds.SOPInstanceUID for _, ds in assoc.send_c_find(query, UnifiedProcedureStepPull)
             if ds is not None]
    print(json.dumps({"op": "C-FIND", "found": found}), flush=True)
    transaction = generate_uid()
    claim = Dataset()
    claim.ProcedureStepState = "IN PROGRESS"
    claim.TransactionUID = transaction
    status, _ = assoc.send_n_action(claim, 1, UnifiedProcedureStepPush, uid)
    say("claim", status)
    change = Dataset()
    change.TransactionUID = transaction
    change.ProcedureStepLabel = "Segment the liver and the spleen"
    status, _ = assoc.send_n_set(change, UnifiedProcedureStepPush, uid)
    say("N-SET", status)
    status, got = assoc.send_n_get([0x00741204, 0x00741000], UnifiedProcedureStepPush, uid)
    say("N-GET", status, label=str(got.get("ProcedureStepLabel", "")) if got else None,
        state=got.get("ProcedureStepState") if got else None)
    done = Dataset()
    done.ProcedureStepState = "COMPLETED"
    done.TransactionUID = transaction
    status, _ = assoc.send_n_action(done, 1, UnifiedProcedureStepPush, uid)
    say("complete", status)
    item.ProcedureStepState = "IN PROGRESS"
    status, _ = assoc.send_n_create(item, UnifiedProcedureStepPush, generate_uid())
    say("N-CREATE-in-progress", status)
    no_transaction = Dataset()
    no_transaction.ProcedureStepState = "IN PROGRESS"
    status, _ = assoc.send_n_action(no_transaction, 1, UnifiedProcedureStepPush, uid)
    say("claim-without-transaction", status)


def print_film(assoc):
    meta = BasicGrayscalePrintManagementMeta
    session_uid, box_uid = generate_uid(), generate_uid()
    session = Dataset()
    session.NumberOfCopies = 1
    session.MediumType = "PAPER"
    status, _ = assoc.send_n_create(session, BasicFilmSession, session_uid, meta_uid=meta)
    say("N-CREATE-session", status)
    box = Dataset()
    box.ImageDisplayFormat = "STANDARD\\1,1"
    status, attributes = assoc.send_n_create(box, BasicFilmBox, box_uid, meta_uid=meta)
    references = attributes.ReferencedImageBoxSequence if attributes else []
    say("N-CREATE-box", status, image_boxes=len(references))
    image = Dataset()
    image.ImageBoxPosition = 1
    pixels = Dataset()
    pixels.SamplesPerPixel = 1
    pixels.PhotometricInterpretation = "MONOCHROME2"
    pixels.Rows = pixels.Columns = 2
    pixels.BitsAllocated = pixels.BitsStored = 8
    pixels.HighBit = 7
    pixels.PixelRepresentation = 0
    pixels.PixelData = b"\x00\x40\x80\xff"
    image.BasicGrayscaleImageSequence = [pixels]
    status, _ = assoc.send_n_set(
        image, BasicGrayscaleImageBox, references[0].ReferencedSOPInstanceUID, meta_uid=meta
    )
    say("N-SET-image", status)
    status, _ = assoc.send_n_action(None, 1, BasicFilmBox, box_uid, meta_uid=meta)
    say("print", status)
    status, info = assoc.send_n_get([0x21100010], Printer, "1.2.840.10008.5.1.1.17",
                                    meta_uid=meta)
    say("N-GET-printer", status, printer=info.get("PrinterStatus") if info else None)
    status, _ = assoc.send_n_action(None, 7, BasicFilmBox, box_uid, meta_uid=meta)
    say("action-7", status)
    status = assoc.send_n_delete(BasicFilmSession, session_uid, meta_uid=meta)
    say("N-DELETE-session", status)


def log_and_display(assoc):
    event = Dataset()
    event.PatientID = "P-1"
    event.StudyInstanceUID = ROOT
    status, _ = assoc.send_n_action(event, 1, ProceduralEventLogging, "1.2.840.10008.1.40.1")
    say("log", status)
    status, _ = assoc.send_n_action(event, 2, ProceduralEventLogging, "1.2.840.10008.1.40.1")
    say("log-action-2", status)
    status, got = assoc.send_n_get([0x00080070], DisplaySystem, "1.2.840.10008.5.1.1.40.1")
    say("display", status, manufacturer=str(got.get("Manufacturer", "")) if got else None)


def media(assoc):
    uid = generate_uid()
    request = Dataset()
    request.LabelText = "Study of Jane Doe"
    item = Dataset()
    item.ReferencedSOPClassUID = CT
    item.ReferencedSOPInstanceUID = ROOT + ".1"
    request.ReferencedSOPSequence = [item]
    status, _ = assoc.send_n_create(request, MediaCreationManagement, uid)
    say("N-CREATE", status)
    initiate = Dataset()
    initiate.NumberOfCopies = 1
    status, _ = assoc.send_n_action(initiate, 1, MediaCreationManagement, uid)
    say("initiate", status)
    status, got = assoc.send_n_get([0x21000020], MediaCreationManagement, uid)
    say("N-GET", status, state=got.get("ExecutionStatus") if got else None)
    status, _ = assoc.send_n_action(None, 3, MediaCreationManagement, uid)
    say("action-3", status)
    status, _ = assoc.send_n_action(None, 2, MediaCreationManagement, uid)
    say("cancel", status)


def subscribe(assoc):
    info = Dataset()
    info.ReceivingAE = "PYNETDICOM-SCU"
    info.DeletionLock = "FALSE"
    status, _ = assoc.send_n_action(info, 3, UnifiedProcedureStepPush, UPS_GLOBAL)
    say("subscribe", status)


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
        if event.request.AffectedSOPClassUID == UnifiedProcedureStepPush:
            self.seen.append({
                "op": "N-EVENT-REPORT",
                "event_type": event.event_type,
                "ups": event.request.AffectedSOPInstanceUID,
                "state": info.get("ProcedureStepState"),
                "context": event.context.abstract_syntax,
            })
            self.arrived.set()
            return 0x0000, None
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
        UnifiedProcedureStepPush,
        UnifiedProcedureStepPull,
        UnifiedProcedureStepWatch,
        BasicGrayscalePrintManagementMeta,
        ProceduralEventLogging,
        DisplaySystem,
        MediaCreationManagement,
    ):
        ae.add_requested_context(uid)
    reports = Reports()
    server = None
    if scenario in ("commit-new", "ups-watch"):
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
        ae.add_supported_context(UnifiedProcedureStepEvent, scu_role=False, scp_role=True)
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
        elif scenario == "ups":
            ups(assoc)
        elif scenario == "print":
            print_film(assoc)
        elif scenario == "log-display":
            log_and_display(assoc)
        elif scenario == "media":
            media(assoc)
        elif scenario == "ups-watch":
            subscribe(assoc)
            assoc.release()
            reports.report()
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
