"""A DIMSE-N SCP with pynetdicom (run with the pynetdicom venv's python).

usage: pynetdicom_nservice_scp.py AE_TITLE REPORT [SCU_PORT]

Serves Modality Performed Procedure Step (N-CREATE, N-SET; Retrieve: N-GET),
Instance Availability Notification (N-CREATE), Storage Commitment Push Model
(N-ACTION), Unified Procedure Step (Push, Pull: N-CREATE, C-FIND, N-ACTION
Change UPS State, N-SET, N-GET; C301H for a wrong Transaction UID) and Print
Management under the Basic Grayscale Print Management Meta SOP Class (a film
box gets one image box per position of its Image Display Format), Procedural
Event Logging (N-ACTION), Display System (N-GET: Manufacturer "ACME") and
Media Creation Management (N-CREATE, N-ACTION initiate/cancel, N-GET). Listens on
a free loopback port and prints ``listening on port N``; shuts down when its
standard input closes. Prints one JSON object per request
served (``{"op": "N-CREATE", ...}``) and per commitment report sent.

MPPS steps live in memory: N-CREATE of a known UID is 0111H, N-SET or N-GET of
an unknown one 0112H, N-SET of a step no longer IN PROGRESS 0110H. Storage
Commitment commits the instances whose SOP Instance UID does not end in
``.99`` (those fail with 0112H), then reports, after the N-ACTION response:

* REPORT ``same`` -- on the association of the request;
* REPORT ``new`` -- once that association is released, on a new association
  to 127.0.0.1:SCU_PORT (called AE title: the requestor's), proposing the SCP
  role for itself (PS3.4 J.3.3.1.3).
"""

import json
import sys
import threading

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, build_role, evt
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
    UnifiedProcedureStepPull,
    UnifiedProcedureStepPush,
)

INSTANCE = "1.2.840.10008.1.20.1.1"


def say(**fields):
    print(json.dumps(fields), flush=True)


def main(argv):
    ae_title, report = argv[1], argv[2]
    scu_port = int(argv[3]) if len(argv) > 3 else None
    steps = {}
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for uid in (
        ModalityPerformedProcedureStep,
        ModalityPerformedProcedureStepRetrieve,
        InstanceAvailabilityNotification,
        StorageCommitmentPushModel,
        UnifiedProcedureStepPush,
        UnifiedProcedureStepPull,
        BasicGrayscalePrintManagementMeta,
        ProceduralEventLogging,
        DisplaySystem,
        MediaCreationManagement,
    ):
        ae.add_supported_context(uid)

    films = {}
    image_boxes = {}

    def on_print_create(event):
        attributes = event.attribute_list
        uid = event.request.AffectedSOPInstanceUID or generate_uid()
        say(op="N-CREATE", sop_class=event.request.AffectedSOPClassUID, uid=uid)
        answer = Dataset()
        if event.request.AffectedSOPClassUID == BasicFilmBox:
            columns, rows = attributes.ImageDisplayFormat.split("\\")[1].split(",")
            references = []
            for _ in range(int(columns) * int(rows)):
                ref = Dataset()
                ref.ReferencedSOPClassUID = BasicGrayscaleImageBox
                ref.ReferencedSOPInstanceUID = generate_uid()
                image_boxes[ref.ReferencedSOPInstanceUID] = None
                references.append(ref)
            answer.ImageDisplayFormat = attributes.ImageDisplayFormat
            answer.ReferencedImageBoxSequence = references
            films[uid] = references
        if event.request.AffectedSOPInstanceUID is None:
            answer.AffectedSOPInstanceUID = uid
        return 0x0000, answer

    media_requests = {}

    def on_create(event):
        if event.request.AffectedSOPClassUID in (BasicFilmSession, BasicFilmBox):
            return on_print_create(event)
        if event.request.AffectedSOPClassUID == MediaCreationManagement:
            uid = event.request.AffectedSOPInstanceUID
            say(op="N-CREATE", sop_class=event.request.AffectedSOPClassUID, uid=uid)
            media_requests[uid] = "IDLE"
            return 0x0000, None
        attributes = event.attribute_list
        uid = event.request.AffectedSOPInstanceUID
        say(op="N-CREATE", sop_class=event.request.AffectedSOPClassUID, uid=uid,
            patient=str(attributes.get("PatientName", "")),
            state=attributes.get("PerformedProcedureStepStatus"))
        if event.request.AffectedSOPClassUID == InstanceAvailabilityNotification:
            return 0x0000, None
        if event.request.AffectedSOPClassUID == UnifiedProcedureStepPush:
            workitems[uid] = attributes
            return 0x0000, None
        if uid in steps:
            return 0x0111, None
        steps[uid] = attributes
        return 0x0000, attributes

    workitems = {}
    transactions = {}

    def on_find(event):
        say(op="C-FIND", sop_class=event.request.AffectedSOPClassUID)
        wanted = event.identifier.get("ProcedureStepState")
        for uid, item in workitems.items():
            if wanted and item.ProcedureStepState != wanted:
                continue
            match = Dataset()
            match.SOPInstanceUID = uid
            match.ProcedureStepState = item.ProcedureStepState
            yield 0xFF00, match

    def on_ups_action(event):
        uid = event.request.RequestedSOPInstanceUID
        info = event.action_information
        say(op="N-ACTION", action=event.action_type, state=info.get("ProcedureStepState"))
        item = workitems.get(uid)
        if item is None:
            return 0xC307, None
        state, transaction = info.ProcedureStepState, info.get("TransactionUID")
        if item.ProcedureStepState == "SCHEDULED" and state == "IN PROGRESS":
            transactions[uid] = transaction
        elif transactions.get(uid) != transaction:
            return 0xC301, None
        item.ProcedureStepState = state
        return 0x0000, None

    def on_set(event):
        uid = event.request.RequestedSOPInstanceUID
        changes = event.modification_list
        if event.request.RequestedSOPClassUID == BasicGrayscaleImageBox:
            say(op="N-SET", uid=uid, state=None)
            if uid not in image_boxes:
                return 0x0112, None
            image_boxes[uid] = changes
            return 0x0000, None
        if uid in workitems:
            say(op="N-SET", uid=uid, state=None)
            if changes.get("TransactionUID") != transactions.get(uid):
                return 0xC301, None
            workitems[uid].update(changes)
            return 0x0000, None
        say(op="N-SET", uid=uid, state=changes.get("PerformedProcedureStepStatus"))
        step = steps.get(uid)
        if step is None:
            return 0x0112, None
        if step.PerformedProcedureStepStatus != "IN PROGRESS":
            status = Dataset()
            status.Status = 0x0110
            status.ErrorComment = "Performed Procedure Step Object may no longer be updated"
            status.ErrorID = 0xA710
            return status, None
        step.update(changes)
        return 0x0000, changes

    def on_get(event):
        uid = event.request.RequestedSOPInstanceUID
        if event.request.RequestedSOPClassUID == MediaCreationManagement:
            say(op="N-GET", uid=uid, tags=[int(t) for t in event.attribute_identifiers])
            answer = Dataset()
            answer.ExecutionStatus = media_requests.get(uid, "FAILURE")
            return 0x0000, answer
        if event.request.RequestedSOPClassUID == DisplaySystem:
            say(op="N-GET", uid=uid, tags=[int(t) for t in event.attribute_identifiers])
            answer = Dataset()
            answer.Manufacturer = "ACME"
            return 0x0000, answer
        if event.request.RequestedSOPClassUID == Printer:
            say(op="N-GET", uid=uid, tags=[int(t) for t in event.attribute_identifiers])
            answer = Dataset()
            answer.PrinterStatus = "NORMAL"
            return 0x0000, answer
        say(op="N-GET", uid=uid, tags=[int(t) for t in event.attribute_identifiers])
        step = steps.get(uid, workitems.get(uid))
        if step is None:
            return 0x0112, None
        answer = Dataset()
        for tag in event.attribute_identifiers:
            if tag in step:
                answer[tag] = step[tag]
        return 0x0000, answer

    released = {}  # id(association) -> set when it is released
    answered = {}  # id(association) -> set once its N-ACTION-RSP is on the wire
    armed = set()

    def on_released(event):
        flag = released.get(id(event.assoc))
        if flag is not None:
            flag.set()

    def on_dimse_sent(event):
        if type(event.message).__name__ == "N_ACTION_RSP":
            armed.add(id(event.assoc))

    def on_data_sent(event):
        # the first write after the N-ACTION-RSP was handed over is that response
        if id(event.assoc) in armed:
            armed.discard(id(event.assoc))
            answered.setdefault(id(event.assoc), threading.Event()).set()

    def on_action(event):
        if event.request.RequestedSOPClassUID == MediaCreationManagement:
            uid = event.request.RequestedSOPInstanceUID
            say(op="N-ACTION", action=event.action_type, state=media_requests.get(uid))
            if event.action_type == 1:
                media_requests[uid] = "PENDING"
            else:
                media_requests.pop(uid, None)
            return 0x0000, None
        if event.request.RequestedSOPClassUID == ProceduralEventLogging:
            say(op="N-ACTION", action=event.action_type,
                state=event.action_information.get("PatientID"))
            return 0x0000, None
        if event.request.RequestedSOPClassUID == UnifiedProcedureStepPush:
            return on_ups_action(event)
        if event.request.RequestedSOPClassUID == BasicFilmBox:
            uid = event.request.RequestedSOPInstanceUID
            say(op="N-ACTION", action=event.action_type, state=None)
            if uid not in films:
                return 0x0112, None
            printed = [image_boxes[r.ReferencedSOPInstanceUID] is not None for r in films[uid]]
            say(op="printed", images=printed)
            return 0x0000, None
        info = event.action_information
        say(op="N-ACTION", action=event.action_type, transaction=info.TransactionUID)
        result = Dataset()
        result.TransactionUID = info.TransactionUID
        committed, failed = [], []
        for ref in info.ReferencedSOPSequence:
            item = Dataset()
            item.ReferencedSOPClassUID = ref.ReferencedSOPClassUID
            item.ReferencedSOPInstanceUID = ref.ReferencedSOPInstanceUID
            if ref.ReferencedSOPInstanceUID.endswith(".99"):
                item.FailureReason = 0x0112
                failed.append(item)
            else:
                committed.append(item)
        if committed:
            result.ReferencedSOPSequence = committed
        if failed:
            result.FailedSOPSequence = failed
        event_type = 2 if failed else 1
        assoc = event.assoc
        calling = assoc.requestor.ae_title
        flag = released.setdefault(id(assoc), threading.Event())
        sent = answered.setdefault(id(assoc), threading.Event())

        def send_report():
            sent.wait(20)
            sent.clear()
            if report == "same":
                status, _ = assoc.send_n_event_report(
                    result, event_type, StorageCommitmentPushModel, INSTANCE
                )
                say(op="report", where="same", status=status.get("Status"))
                return
            flag.wait(20)  # the SCU released the association of the request
            other = ae.associate(
                "127.0.0.1", scu_port, ae_title=calling,
                ext_neg=[build_role(StorageCommitmentPushModel, scp_role=True)],
            )
            if not other.is_established:
                say(op="report", where="new", status=None)
                return
            status, _ = other.send_n_event_report(
                result, event_type, StorageCommitmentPushModel, INSTANCE
            )
            say(op="report", where="new", status=status.get("Status"))
            other.release()

        # after the N-ACTION response has gone out
        threading.Thread(target=send_report, daemon=True).start()
        return 0x0000, None

    if scu_port is not None:
        ae.add_requested_context(StorageCommitmentPushModel)
    def on_delete(event):
        say(op="N-DELETE", uid=event.request.RequestedSOPInstanceUID)
        return 0x0000

    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[
            (evt.EVT_N_CREATE, on_create),
            (evt.EVT_N_SET, on_set),
            (evt.EVT_N_GET, on_get),
            (evt.EVT_N_ACTION, on_action),
            (evt.EVT_C_FIND, on_find),
            (evt.EVT_N_DELETE, on_delete),
            (evt.EVT_RELEASED, on_released),
            (evt.EVT_DIMSE_SENT, on_dimse_sent),
            (evt.EVT_DATA_SENT, on_data_sent),
        ],
    )
    print(f"listening on port {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
