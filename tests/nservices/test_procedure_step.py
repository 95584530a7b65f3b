"""Modality Performed Procedure Step, dicomnet SCU <-> dicomnet SCP (PS3.4 Annex F).

The information system's side keeps the steps in a dict; the checks PS3.4
F.7.2 asks of the SCP before the handler (IN PROGRESS at N-CREATE, the three
states at N-SET, the event types of F.9), the operations per SOP class, the
0110H/A710H of a step that may no longer be updated, and the notification
the SCP sends to the SCU.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import evt
from dicomnet.plugins.procedure_step import (
    COMPLETED,
    DISCONTINUED,
    EVENT_COMPLETED,
    IN_PROGRESS,
    MPPS,
    MPPS_NOTIFICATION,
    MPPS_RETRIEVE,
    PROCEDURE_STEP,
    may_no_longer_be_updated,
)

from .conftest import WAIT, Established, associate, serve


class InformationSystem:
    """An MPPS SCP keeping the steps in memory (PS3.4 F.7.2)."""

    def __init__(self) -> None:
        self.steps: dict[str, Dataset] = {}

    def on_create(self, event: Any) -> Any:
        uid = event.request.AffectedSOPInstanceUID
        if uid in self.steps:
            return 0x0111, None  # Duplicate SOP instance
        self.steps[uid] = event.attribute_list
        return 0x0000, None

    def on_set(self, event: Any) -> Any:
        step = self.steps.get(event.request.RequestedSOPInstanceUID)
        if step is None:
            return 0x0112, None  # No such SOP instance
        if step.PerformedProcedureStepStatus != IN_PROGRESS:
            return may_no_longer_be_updated(), None
        step.update(event.modification_list)
        return 0x0000, None

    def on_get(self, event: Any) -> Any:
        step = self.steps.get(event.request.RequestedSOPInstanceUID)
        if step is None:
            return 0x0112, None
        wanted = event.attribute_identifiers or [elem.tag for elem in step]
        answer = Dataset()
        for tag in wanted:
            if tag in step:
                answer[tag] = step[tag]
        return 0x0000, answer

    def handlers(self) -> list[Any]:
        return [
            (evt.EVT_N_CREATE, self.on_create),
            (evt.EVT_N_SET, self.on_set),
            (evt.EVT_N_GET, self.on_get),
        ]


def step_attributes(status: str = IN_PROGRESS) -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P-1"
    ds.PerformedProcedureStepID = "PPS-1"
    ds.PerformedProcedureStepStatus = status
    ds.PerformedStationAETitle = "MODALITY"
    ds.PerformedSeriesSequence = []
    return ds


@pytest.fixture
def information_system() -> InformationSystem:
    return InformationSystem()


@pytest.fixture
def mpps(make_ae: Any, information_system: InformationSystem) -> Any:
    """An association from a modality to the information system (MPPS and Retrieve)."""
    scp = make_ae("RIS", supported=[MPPS, MPPS_RETRIEVE])
    port = serve(scp, information_system.handlers())
    modality = make_ae("MODALITY", requested=[MPPS, MPPS_RETRIEVE])
    return associate(modality, port, "RIS")


def test_the_plugin_declares_the_three_sop_classes() -> None:
    assert set(PROCEDURE_STEP.sop_classes) == {MPPS, MPPS_RETRIEVE, MPPS_NOTIFICATION}
    assert PROCEDURE_STEP.reference == "PS3.4 Annex F"
    assert "ModalityPerformedPresentationContexts" in PROCEDURE_STEP.context_lists


def test_a_step_from_in_progress_to_completed(
    mpps: Any, information_system: InformationSystem
) -> None:
    uid = generate_uid()
    status, attributes = mpps.send_n_create(step_attributes(), MPPS, uid)
    assert status.Status == 0x0000 and status.AffectedSOPInstanceUID == uid
    assert attributes == Dataset()
    assert information_system.steps[uid].PatientName == "Doe^Jane"

    done = Dataset()
    done.PerformedProcedureStepStatus = COMPLETED
    done.PerformedProcedureStepEndDate = "20240101"
    status, _ = mpps.send_n_set(done, MPPS, uid)
    assert status.Status == 0x0000

    status, got = mpps.send_n_get([0x00400252, 0x00400250], MPPS_RETRIEVE, uid)
    assert status.Status == 0x0000
    assert got.PerformedProcedureStepStatus == COMPLETED
    assert got.PerformedProcedureStepEndDate == "20240101"
    assert "PatientName" not in got

    # the step may no longer be updated (PS3.4 F.7.2.2.3, Table F.7.2-2)
    again = Dataset()
    again.PerformedProcedureStepStatus = DISCONTINUED
    status, reply = mpps.send_n_set(again, MPPS, uid)
    assert status.Status == 0x0110 and status.ErrorID == 0xA710
    assert status.ErrorComment == "Performed Procedure Step Object may no longer be updated"
    assert reply is None


def test_n_create_must_be_in_progress(mpps: Any, information_system: InformationSystem) -> None:
    """PS3.4 F.7.2.1.3: another status is 0106H, with the attribute as Offending Element."""
    status, reply = mpps.send_n_create(step_attributes(COMPLETED), MPPS, generate_uid())
    assert status.Status == 0x0106
    assert status.OffendingElement == 0x00400252
    assert "IN PROGRESS" in status.ErrorComment
    assert reply is None
    assert information_system.steps == {}


def test_n_create_without_the_status_is_missing_attribute(
    mpps: Any, information_system: InformationSystem
) -> None:
    attributes = step_attributes()
    del attributes.PerformedProcedureStepStatus
    status, _ = mpps.send_n_create(attributes, MPPS, generate_uid())
    assert status.Status == 0x0120 and status.OffendingElement == 0x00400252
    status, _ = mpps.send_n_create(None, MPPS, generate_uid())
    assert status.Status == 0x0120
    assert information_system.steps == {}


def test_n_set_to_an_unknown_state_is_invalid(
    mpps: Any, information_system: InformationSystem
) -> None:
    uid = generate_uid()
    assert mpps.send_n_create(step_attributes(), MPPS, uid)[0].Status == 0
    bogus = Dataset()
    bogus.PerformedProcedureStepStatus = "PAUSED"
    status, _ = mpps.send_n_set(bogus, MPPS, uid)
    assert status.Status == 0x0106 and status.OffendingElement == 0x00400252
    assert information_system.steps[uid].PerformedProcedureStepStatus == IN_PROGRESS


def test_the_handler_decides_duplicates_and_unknown_steps(mpps: Any) -> None:
    uid = generate_uid()
    assert mpps.send_n_create(step_attributes(), MPPS, uid)[0].Status == 0x0000
    assert mpps.send_n_create(step_attributes(), MPPS, uid)[0].Status == 0x0111
    ds = Dataset()
    ds.PerformedProcedureStepStatus = COMPLETED
    assert mpps.send_n_set(ds, MPPS, generate_uid())[0].Status == 0x0112
    assert mpps.send_n_get([], MPPS_RETRIEVE, generate_uid())[0].Status == 0x0112


def test_each_sop_class_has_its_operations(mpps: Any) -> None:
    """PS3.4 F.7.1, F.8.1: N-GET belongs to Retrieve, N-CREATE/N-SET to MPPS."""
    uid = generate_uid()
    assert mpps.send_n_create(step_attributes(), MPPS, uid)[0].Status == 0
    assert mpps.send_n_get([], MPPS, uid)[0].Status == 0x0211
    assert mpps.send_n_create(step_attributes(), MPPS_RETRIEVE, generate_uid())[0].Status == 0x0211
    assert mpps.send_n_delete(MPPS, uid).Status == 0x0211


def test_a_failing_handler_is_processing_failure_and_the_association_lives(
    make_ae: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> Any:
        raise KeyError("the RIS database is down")

    scp = make_ae("RIS", supported=[MPPS])
    port = serve(scp, [(evt.EVT_N_CREATE, broken)])
    modality = make_ae("MODALITY", requested=[MPPS])
    assoc = associate(modality, port, "RIS")
    with caplog.at_level("ERROR", "dicomnet.service"):
        status, _ = assoc.send_n_create(step_attributes(), MPPS, generate_uid())
    assert status.Status == 0x0110
    assert "the RIS database is down" in caplog.text
    assert assoc.is_established
    status, _ = assoc.send_n_create(step_attributes(), MPPS, generate_uid())
    assert status.Status == 0x0110
    assoc.release()


def test_the_scp_notifies_its_scu(make_ae: Any) -> None:
    """PS3.4 F.9: the SCP of the Notification SOP class sends N-EVENT-REPORTs to its SCU;
    here the SCU (a PACS) associates and the SCP notifies on that association."""
    seen: list[tuple[int, str]] = []
    arrived = threading.Event()

    def on_report(event: Any) -> Any:
        seen.append((event.event_type, event.request.AffectedSOPInstanceUID))
        arrived.set()
        return 0x0000, None

    established = Established()
    ris = make_ae("RIS", supported=[MPPS_NOTIFICATION])
    port = serve(ris, [established.binding()])
    pacs = make_ae("PACS", requested=[MPPS_NOTIFICATION])
    assoc = associate(pacs, port, "RIS", evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    notifier = established.next()
    uid = generate_uid()
    status, reply = notifier.send_n_event_report(None, EVENT_COMPLETED, MPPS_NOTIFICATION, uid)
    assert status.Status == 0x0000 and status.EventTypeID == EVENT_COMPLETED
    assert arrived.wait(WAIT) and seen == [(EVENT_COMPLETED, uid)]
    # PS3.4 Table F.9.2-1 has event types 1 to 5
    status, reply = notifier.send_n_event_report(None, 6, MPPS_NOTIFICATION, uid)
    assert status.Status == 0x0113 and reply is None
    assert len(seen) == 1
    assoc.release()
