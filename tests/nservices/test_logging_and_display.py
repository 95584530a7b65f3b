"""Application Event Logging (PS3.4 Annex P), Display System Management (Annex EE) and Media
Creation Management (Annex S), dicomnet SCU <-> dicomnet SCP."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import evt
from dicomnet.plugins.application_event_logging import (
    PROCEDURAL_EVENT_LOGGING,
    PROCEDURAL_EVENT_LOGGING_INSTANCE,
    RECORD_PROCEDURAL_EVENT,
    SUBSTANCE_ADMINISTRATION_LOGGING,
    SUBSTANCE_ADMINISTRATION_LOGGING_INSTANCE,
)
from dicomnet.plugins.display_system import DISPLAY_SYSTEM, DISPLAY_SYSTEM_INSTANCE
from dicomnet.plugins.media_creation import (
    ACTION_CANCEL,
    ACTION_INITIATE,
    MEDIA_CREATION_MANAGEMENT,
)

from .conftest import associate, serve


def test_procedural_events_are_logged(make_ae: Any) -> None:
    log: list[tuple[str, int, str]] = []

    def on_action(event: Any) -> Any:
        info = event.action_information
        log.append((event.request.RequestedSOPClassUID, event.action_type, info.PatientID))
        if info.PatientID == "UNKNOWN":
            return 0xC110, None  # patient cannot be identified (PS3.4 P.3.2.4)
        return 0x0000, None

    scp = make_ae("LOGGER", supported=[PROCEDURAL_EVENT_LOGGING, SUBSTANCE_ADMINISTRATION_LOGGING])
    port = serve(scp, [(evt.EVT_N_ACTION, on_action)])
    scu = make_ae("INJECTOR",
                  requested=[PROCEDURAL_EVENT_LOGGING, SUBSTANCE_ADMINISTRATION_LOGGING])
    assoc = associate(scu, port, "LOGGER")
    event = Dataset()
    event.PatientID = "P-1"
    event.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.5001"
    event.StudyID = "1"
    event.SynchronizationFrameOfReferenceUID = ""
    event.PerformedLocation = "CATH LAB 2"
    status, reply = assoc.send_n_action(event, RECORD_PROCEDURAL_EVENT, PROCEDURAL_EVENT_LOGGING,
                                        PROCEDURAL_EVENT_LOGGING_INSTANCE)
    assert status.Status == 0x0000 and status.ActionTypeID == 1 and reply == Dataset()
    # Record Procedural Event is the only action of the SOP class (Table P.2-2)
    status, _ = assoc.send_n_action(event, 2, PROCEDURAL_EVENT_LOGGING,
                                    PROCEDURAL_EVENT_LOGGING_INSTANCE)
    assert status.Status == 0x0123
    # the MAR side: its own statuses
    administration = Dataset()
    administration.PatientID = "UNKNOWN"
    status, _ = assoc.send_n_action(administration, 1, SUBSTANCE_ADMINISTRATION_LOGGING,
                                    SUBSTANCE_ADMINISTRATION_LOGGING_INSTANCE)
    assert status.Status == 0xC110
    # N-ACTION is the only operation
    assert assoc.send_n_get([], PROCEDURAL_EVENT_LOGGING,
                            PROCEDURAL_EVENT_LOGGING_INSTANCE)[0].Status == 0x0211
    assoc.release()
    assert log == [
        (PROCEDURAL_EVENT_LOGGING, 1, "P-1"),
        (SUBSTANCE_ADMINISTRATION_LOGGING, 1, "UNKNOWN"),
    ]


def test_the_display_system_is_read_with_n_get(make_ae: Any) -> None:
    def on_get(event: Any) -> Any:
        if event.request.RequestedSOPInstanceUID != DISPLAY_SYSTEM_INSTANCE:
            return 0x0112, None
        answer = Dataset()
        for tag in event.attribute_identifiers:
            if tag == 0x00080070:
                answer.Manufacturer = "ACME displays"
            elif tag == 0x00181000:
                answer.DeviceSerialNumber = "D-42"
        return 0x0000, answer

    scp = make_ae("WORKSTATION", supported=[DISPLAY_SYSTEM])
    port = serve(scp, [(evt.EVT_N_GET, on_get)])
    qa = make_ae("QA", requested=[DISPLAY_SYSTEM])
    assoc = associate(qa, port, "WORKSTATION")
    status, attributes = assoc.send_n_get([0x00080070, 0x00181000], DISPLAY_SYSTEM,
                                          DISPLAY_SYSTEM_INSTANCE)
    assert status.Status == 0x0000
    assert attributes.Manufacturer == "ACME displays" and attributes.DeviceSerialNumber == "D-42"
    assert assoc.send_n_get([], DISPLAY_SYSTEM, "1.2.3")[0].Status == 0x0112
    assert assoc.send_n_set(Dataset(), DISPLAY_SYSTEM,
                            DISPLAY_SYSTEM_INSTANCE)[0].Status == 0x0211
    assoc.release()


def test_media_creation_request_initiate_status_cancel(make_ae: Any) -> None:
    """PS3.4 Annex S: N-CREATE the request, N-ACTION 1 initiate, N-GET its status, N-ACTION 2
    cancel; another action is 0123H, an N-SET 0211H."""
    requests: dict[str, str] = {}

    def on_create(event: Any) -> Any:
        requests[event.request.AffectedSOPInstanceUID] = "IDLE"
        return 0x0000, None

    def on_action(event: Any) -> Any:
        uid = event.request.RequestedSOPInstanceUID
        if uid not in requests:
            return 0x0112, None
        if event.action_type == ACTION_INITIATE:
            if requests[uid] != "IDLE":
                return 0xA510, None  # initiate already received
            requests[uid] = "PENDING"
        elif requests[uid] == "DONE":
            return 0xC201, None
        else:
            del requests[uid]
        return 0x0000, None

    def on_get(event: Any) -> Any:
        status = Dataset()
        status.ExecutionStatus = requests[event.request.RequestedSOPInstanceUID]
        return 0x0000, status

    burner = make_ae("BURNER", supported=[MEDIA_CREATION_MANAGEMENT])
    port = serve(burner, [(evt.EVT_N_CREATE, on_create), (evt.EVT_N_ACTION, on_action),
                          (evt.EVT_N_GET, on_get)])
    scu = make_ae("VIEWER", requested=[MEDIA_CREATION_MANAGEMENT])
    assoc = associate(scu, port, "BURNER")
    uid = generate_uid()
    request = Dataset()
    request.LabelText = "Study of Jane Doe"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = generate_uid()
    request.ReferencedSOPSequence = [item]
    assert assoc.send_n_create(request, MEDIA_CREATION_MANAGEMENT, uid)[0].Status == 0
    initiate = Dataset()
    initiate.NumberOfCopies = 1
    status, _ = assoc.send_n_action(initiate, ACTION_INITIATE, MEDIA_CREATION_MANAGEMENT, uid)
    assert status.Status == 0x0000
    status, _ = assoc.send_n_action(initiate, ACTION_INITIATE, MEDIA_CREATION_MANAGEMENT, uid)
    assert status.Status == 0xA510
    status, got = assoc.send_n_get([0x21000020], MEDIA_CREATION_MANAGEMENT, uid)
    assert got.ExecutionStatus == "PENDING"
    assert assoc.send_n_action(None, 3, MEDIA_CREATION_MANAGEMENT, uid)[0].Status == 0x0123
    assert assoc.send_n_set(request, MEDIA_CREATION_MANAGEMENT, uid)[0].Status == 0x0211
    assert assoc.send_n_action(None, ACTION_CANCEL, MEDIA_CREATION_MANAGEMENT,
                               uid)[0].Status == 0x0000
    assert requests == {}
    assoc.release()
