"""RT Machine Verification, dicomnet SCU (TDS) <-> dicomnet SCP (MPV) (PS3.4 Annex DD).

A Machine Parameter Verifier keeping its plans and verification instances in
memory; each service (N-CREATE, N-SET, N-ACTION, N-GET, N-DELETE), the
service's own statuses, the checks before the handler, the Pending/Done
reports reaching the TDS on the association of the N-ACTION, and the handler
failures that must give the TDS a failure status or a NOT_VERIFIED, never a
dead association or a wait without end.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import evt
from dicomnet.plugins.rt_machine_verification import (
    ACTION_REQUEST_BEAM_VERIFICATION,
    BEAM_NOT_IN_FRACTION_GROUP,
    EVENT_DONE,
    EVENT_PENDING,
    EVT_MACHINE_VERIFICATION,
    FRACTION_GROUP_NOT_IN_PLAN,
    NO_SUCH_VERIFICATION,
    NOT_VERIFIED,
    REPORT_LATER,
    RT_CONVENTIONAL_MACHINE_VERIFICATION,
    RT_ION_MACHINE_VERIFICATION,
    RT_MACHINE_VERIFICATION,
    RT_PLAN_NOT_FOUND,
    VERIFIED,
    VERIFIED_OVR,
    Verification,
    VerificationResults,
    creation_attributes,
    send_verification_report,
)

from .conftest import WAIT, Established, associate, serve

CONVENTIONAL = RT_CONVENTIONAL_MACHINE_VERIFICATION
ION = RT_ION_MACHINE_VERIFICATION
PLAN = "1.2.826.0.1.3680043.8.498.77001"
ION_PLAN = "1.2.826.0.1.3680043.8.498.77002"
#: the plans the MPV knows: UID -> fraction group -> beam number -> planned gantry angle
PLANS = {PLAN: {1: {1: 180.0, 2: 90.0}}, ION_PLAN: {1: {1: 270.0}}}
#: how far the actual gantry angle may be from the plan's
TOLERANCE = 0.5


def beam(number: int = 1, gantry: float = 180.0, *, ion: bool = False) -> Dataset:
    """The Modification List of an N-SET for one beam (PS3.4 Tables DD.3.2.1-1/-2)."""
    general = Dataset()
    general.ReferencedBeamNumber = number
    general.TreatmentMachineName = "LINAC-1"
    general.RadiationType = "PROTON" if ion else "PHOTON"
    point = Dataset()
    point.GantryAngle = gantry
    point.ReferencedControlPointIndex = 0
    module = Dataset()
    ds = Dataset()
    ds.GeneralMachineVerificationSequence = [general]
    if ion:
        module.IonControlPointVerificationSequence = [point]
        ds.IonMachineVerificationSequence = [module]
    else:
        module.ConventionalControlPointVerificationSequence = [point]
        ds.ConventionalMachineVerificationSequence = [module]
    return ds


class Verifier:
    """An MPV: plans and verification instances in memory (PS3.4 DD.3.2)."""

    def __init__(self) -> None:
        self.instances: dict[str, Dataset] = {}
        self.overridden: set[str] = set()  # instances whose operator approved an override
        self.verified: list[Verification] = []

    def on_create(self, event: Any) -> Any:
        attributes = event.attribute_list
        plan = attributes.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID
        if plan not in PLANS:
            return RT_PLAN_NOT_FOUND, None
        group = attributes.get("ReferencedFractionGroupNumber", 1)
        if group not in PLANS[plan]:
            return FRACTION_GROUP_NOT_IN_PLAN, None
        attributes.ReferencedFractionGroupNumber = group
        self.instances[event.request.AffectedSOPInstanceUID] = attributes
        return 0x0000, None

    def on_set(self, event: Any) -> Any:
        instance = self.instances.get(event.request.RequestedSOPInstanceUID)
        if instance is None:
            return 0x0112, None  # no such SOP instance (PS3.7 C.5)
        changes = event.modification_list
        plan = PLANS[instance.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID]
        number = changes.GeneralMachineVerificationSequence[0].ReferencedBeamNumber
        if number not in plan[instance.ReferencedFractionGroupNumber]:
            return BEAM_NOT_IN_FRACTION_GROUP, None
        instance.update(changes)
        return 0x0000, None

    def on_get(self, event: Any) -> Any:
        instance = self.instances.get(event.request.RequestedSOPInstanceUID)
        if instance is None:
            return NO_SUCH_VERIFICATION, None
        answer = Dataset()
        for tag in event.attribute_identifiers or [elem.tag for elem in instance]:
            if tag in instance:
                answer[tag] = instance[tag]
        return 0x0000, answer

    def on_action(self, event: Any) -> Any:
        if event.request.RequestedSOPInstanceUID not in self.instances:
            return NO_SUCH_VERIFICATION, None
        return 0x0000, None

    def on_delete(self, event: Any) -> Any:
        if self.instances.pop(event.request.RequestedSOPInstanceUID, None) is None:
            return 0x0112
        return 0x0000

    def verify(self, event: Any) -> Any:
        """EVT_MACHINE_VERIFICATION: compare the gantry angle with the plan's."""
        verification = event.verification
        self.verified.append(verification)
        instance = self.instances[verification.sop_instance_uid]
        plan = PLANS[instance.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID]
        general = instance.GeneralMachineVerificationSequence[0]
        planned = plan[instance.ReferencedFractionGroupNumber][general.ReferencedBeamNumber]
        module = (instance.IonMachineVerificationSequence if verification.is_ion
                  else instance.ConventionalMachineVerificationSequence)[0]
        points = (module.IonControlPointVerificationSequence if verification.is_ion
                  else module.ConventionalControlPointVerificationSequence)
        failed = abs(float(points[0].GantryAngle) - planned) > TOLERANCE
        if not failed:
            status = VERIFIED
        elif verification.sop_instance_uid in self.overridden:
            status = VERIFIED_OVR
        else:
            status = NOT_VERIFIED
        instance.TreatmentVerificationStatus = status
        return status

    def handlers(self, *, verify: Any = None) -> list[Any]:
        return [
            (evt.EVT_N_CREATE, self.on_create),
            (evt.EVT_N_SET, self.on_set),
            (evt.EVT_N_GET, self.on_get),
            (evt.EVT_N_ACTION, self.on_action),
            (evt.EVT_N_DELETE, self.on_delete),
            (EVT_MACHINE_VERIFICATION, verify or self.verify),
        ]


class Session:
    """A TDS associated with an MPV, receiving the reports on its association."""

    def __init__(self, make_ae: Any, handlers: list[Any], *, plugins: Any = None) -> None:
        self.results = VerificationResults()
        self.established = Established()
        mpv = make_ae("MPV", supported=[CONVENTIONAL, ION], plugins=plugins)
        port = serve(mpv, [*handlers, self.established.binding()])
        tds = make_ae("TDS", requested=[CONVENTIONAL, ION])
        self.assoc = associate(tds, port, "MPV",
                               evt_handlers=[(evt.EVT_N_EVENT_REPORT, self.results)])

    def create(self, sop_class: str = CONVENTIONAL, plan: str = PLAN, **kwargs: Any) -> str:
        uid = generate_uid()
        status, _ = self.assoc.send_n_create(
            creation_attributes(sop_class, plan, "P-1", **kwargs), sop_class, uid
        )
        assert status.Status == 0x0000, status
        return uid

    def verify(self, uid: str, sop_class: str = CONVENTIONAL) -> str | None:
        status, _ = self.assoc.send_n_action(
            None, ACTION_REQUEST_BEAM_VERIFICATION, sop_class, uid
        )
        assert status.Status == 0x0000 and status.ActionTypeID == 1, status
        return self.results.wait(uid, WAIT)


@pytest.fixture
def verifier() -> Verifier:
    return Verifier()


@pytest.fixture
def session(make_ae: Any, verifier: Verifier) -> Session:
    return Session(make_ae, verifier.handlers())


def test_the_plugin_declares_both_sop_classes_and_every_n_service() -> None:
    assert set(RT_MACHINE_VERIFICATION.sop_classes) == {CONVENTIONAL, ION}
    assert CONVENTIONAL == "1.2.840.10008.5.1.4.34.8" and ION == "1.2.840.10008.5.1.4.34.9"
    assert RT_MACHINE_VERIFICATION.reference == "PS3.4 Annex DD"
    assert "RTMachineVerificationPresentationContexts" in RT_MACHINE_VERIFICATION.context_lists
    names = {event.name for event in RT_MACHINE_VERIFICATION.events}
    assert names == {
        "EVT_N_CREATE", "EVT_N_SET", "EVT_N_GET", "EVT_N_ACTION", "EVT_N_DELETE",
        "EVT_N_EVENT_REPORT", "EVT_MACHINE_VERIFICATION",
    }


def test_a_beam_verified_then_the_session_deleted(session: Session, verifier: Verifier) -> None:
    """PS3.17 BBB.3.2: N-CREATE, N-SET, N-ACTION, Done on the same association, N-GET,
    N-DELETE; then the instance is gone (DD.3.2.4.3)."""
    uid = session.create()
    status, _ = session.assoc.send_n_set(beam(1, 180.2), CONVENTIONAL, uid)
    assert status.Status == 0x0000
    assert session.verify(uid) == VERIFIED
    assert verifier.verified == [Verification(CONVENTIONAL, uid)]
    status, got = session.assoc.send_n_get([0x3008002C, 0x00100020], CONVENTIONAL, uid)
    assert status.Status == 0x0000
    assert got.TreatmentVerificationStatus == VERIFIED and got.PatientID == "P-1"
    # the next beam, on the same instance (BBB.3.2.2 9f)
    assert session.assoc.send_n_set(beam(2, 90.0), CONVENTIONAL, uid)[0].Status == 0x0000
    assert session.verify(uid) == VERIFIED
    assert session.assoc.send_n_delete(CONVENTIONAL, uid).Status == 0x0000
    status, got = session.assoc.send_n_get([0x3008002C], CONVENTIONAL, uid)
    assert status.Status == NO_SUCH_VERIFICATION and got is None
    session.assoc.release()
    assert session.results.pending(uid) == 0


def test_an_ion_beam(session: Session) -> None:
    uid = session.create(ION, ION_PLAN)
    assert session.assoc.send_n_set(beam(1, 270.0, ion=True), ION, uid)[0].Status == 0x0000
    assert session.verify(uid, ION) == VERIFIED
    session.assoc.release()


def test_not_verified_then_verified_after_an_override(
    session: Session, verifier: Verifier
) -> None:
    """PS3.17 BBB.3.3: NOT_VERIFIED, the operator overrides, VERIFIED_OVR; each Done is
    the TDS's once."""
    uid = session.create()
    session.assoc.send_n_set(beam(1, 175.0), CONVENTIONAL, uid)
    assert session.verify(uid) == NOT_VERIFIED
    verifier.overridden.add(uid)
    assert session.verify(uid) == VERIFIED_OVR
    assert session.results.wait(uid, 0) is None  # nothing left over
    session.assoc.release()


def test_pending_then_done(make_ae: Any, verifier: Verifier) -> None:
    """DD.3.2.5.3: Pending while the check runs, then Done."""

    def slow(event: Any) -> Any:
        answer = send_verification_report(event.assoc, event.verification)
        assert answer.Status == 0x0000 and answer.EventTypeID == EVENT_PENDING
        return verifier.verify(event)

    session = Session(make_ae, verifier.handlers(verify=slow))
    uid = session.create()
    session.assoc.send_n_set(beam(), CONVENTIONAL, uid)
    assert session.verify(uid) == VERIFIED
    assert session.results.pending(uid) == 1
    session.assoc.release()


def test_report_later_from_another_thread(make_ae: Any, verifier: Verifier) -> None:
    later: list[Any] = []
    asked = threading.Event()

    def queue(event: Any) -> Any:
        later.append((event.assoc, event.verification))
        asked.set()
        return REPORT_LATER

    session = Session(make_ae, verifier.handlers(verify=queue))
    uid = session.create()
    session.assoc.send_n_set(beam(), CONVENTIONAL, uid)
    status, _ = session.assoc.send_n_action(None, 1, CONVENTIONAL, uid)
    assert status.Status == 0x0000 and asked.wait(WAIT)
    assert session.results.wait(uid, 0) is None  # nothing reported yet
    assoc, verification = later[0]
    done: list[Any] = []
    worker = threading.Thread(
        target=lambda: done.append(send_verification_report(assoc, verification, VERIFIED_OVR))
    )
    worker.start()
    assert session.results.wait(uid, WAIT) == VERIFIED_OVR
    worker.join(WAIT)
    assert done[0].Status == 0x0000 and done[0].EventTypeID == EVENT_DONE
    session.assoc.release()


def test_evt_n_action_alone_reports_nothing(make_ae: Any, verifier: Verifier) -> None:
    """pynetdicom's contract: the N-ACTION handler's status, and the application reports."""
    handlers = [h for h in verifier.handlers() if h[0] is not EVT_MACHINE_VERIFICATION]
    session = Session(make_ae, handlers)
    uid = session.create()
    session.assoc.send_n_set(beam(), CONVENTIONAL, uid)
    status, _ = session.assoc.send_n_action(None, 1, CONVENTIONAL, uid)
    assert status.Status == 0x0000
    assert session.results.wait(uid, 0.2) is None
    mpv_assoc = session.established.next()
    answer = send_verification_report(mpv_assoc, Verification(CONVENTIONAL, uid), VERIFIED)
    assert answer.Status == 0x0000
    assert session.results.wait(uid, WAIT) == VERIFIED
    session.assoc.release()


def test_without_any_action_handler_the_n_action_fails(
    make_ae: Any, verifier: Verifier, caplog: pytest.LogCaptureFixture
) -> None:
    handlers = [h for h in verifier.handlers()
                if h[0] not in (EVT_MACHINE_VERIFICATION, evt.EVT_N_ACTION)]
    session = Session(make_ae, handlers)
    uid = session.create()
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        status, _ = session.assoc.send_n_action(None, 1, CONVENTIONAL, uid)
    assert status.Status == 0x0110 and "ActionTypeID" not in status
    assert "No handler is bound to EVT_N_ACTION" in caplog.text
    session.assoc.release()


# -- the service's own statuses -----------------------------------------------------------------


def test_the_handlers_statuses_reach_the_tds(session: Session, verifier: Verifier) -> None:
    assoc = session.assoc
    unknown_plan = creation_attributes(CONVENTIONAL, "1.2.826.0.1.3680043.8.498.77099", "P-1")
    assert assoc.send_n_create(unknown_plan, CONVENTIONAL, generate_uid())[0].Status == 0xC227
    no_group = creation_attributes(CONVENTIONAL, PLAN, "P-1", fraction_group=3)
    assert assoc.send_n_create(no_group, CONVENTIONAL, generate_uid())[0].Status == 0xC221
    uid = session.create(fraction_group=1)
    assert assoc.send_n_set(beam(7), CONVENTIONAL, uid)[0].Status == 0xC224
    # a failed N-ACTION starts no verification: no report follows
    status, _ = assoc.send_n_action(None, 1, CONVENTIONAL, generate_uid())
    assert status.Status == NO_SUCH_VERIFICATION and "ActionTypeID" not in status
    assert verifier.verified == []
    assert assoc.send_n_delete(CONVENTIONAL, generate_uid()).Status == 0x0112
    assoc.release()


# -- handler failures ----------------------------------------------------------------------------


def test_a_failing_verification_reports_not_verified(
    make_ae: Any, verifier: Verifier, caplog: pytest.LogCaptureFixture
) -> None:
    """The TDS is never left waiting, and never told a failed check passed."""
    answers: list[Any] = [RuntimeError("the plan database is down"), 42, "PASSED",
                          Dataset()]

    def failing(event: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    session = Session(make_ae, verifier.handlers(verify=failing))
    uid = session.create()
    session.assoc.send_n_set(beam(), CONVENTIONAL, uid)
    for expected in ("the plan database is down", "neither a Treatment Verification Status",
                     "'PASSED' is not a Treatment Verification Status",
                     "None is not a Treatment Verification Status"):
        caplog.clear()
        with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
            assert session.verify(uid) == NOT_VERIFIED
        assert "EVT_MACHINE_VERIFICATION failed" in caplog.text
        assert expected in caplog.text
    session.assoc.release()


def test_failing_handlers_give_processing_failure(
    make_ae: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> Any:
        raise KeyError("instances")

    session = Session(make_ae, [(evt.EVT_N_CREATE, broken), (evt.EVT_N_SET, lambda e: "yes")])
    uid = generate_uid()
    with caplog.at_level(logging.ERROR):
        status, reply = session.assoc.send_n_create(
            creation_attributes(CONVENTIONAL, PLAN, "P-1"), CONVENTIONAL, uid
        )
        assert status.Status == 0x0110 and reply is None
        assert "KeyError" in caplog.text
        caplog.clear()
        assert session.assoc.send_n_set(beam(), CONVENTIONAL, uid)[0].Status == 0x0110
        assert "EVT_N_SET" in caplog.text
        caplog.clear()
        # no handler bound to EVT_N_GET
        assert session.assoc.send_n_get([], CONVENTIONAL, uid)[0].Status == 0x0110
        assert "No handler is bound to EVT_N_GET" in caplog.text
    assert session.assoc.is_established
    session.assoc.release()


# -- the checks before the handler ------------------------------------------------------------


@pytest.fixture
def recorded(make_ae: Any) -> tuple[Any, list[str]]:
    """An MPV whose handlers only record that they ran; and the TDS's association."""
    calls: list[str] = []

    def record(name: str) -> Any:
        def handler(event: Any) -> Any:
            calls.append(name)
            return 0x0000, None
        return handler

    mpv = make_ae("MPV", supported=[CONVENTIONAL, ION])
    port = serve(mpv, [(evt.EVT_N_CREATE, record("create")), (evt.EVT_N_SET, record("set")),
                       (evt.EVT_N_ACTION, record("action")),
                       (evt.EVT_N_EVENT_REPORT, record("report"))])
    tds = make_ae("TDS", requested=[CONVENTIONAL, ION])
    return associate(tds, port, "MPV"), calls


def without(ds: Dataset, keyword: str) -> Dataset:
    del ds[keyword]
    return ds


def test_n_create_checks(recorded: tuple[Any, list[str]]) -> None:
    """PS3.4 Tables DD.3.2.1-1/-2 and 5.4.2.1."""
    assoc, calls = recorded

    def create(ds: Dataset, sop_class: str = CONVENTIONAL) -> Any:
        return assoc.send_n_create(ds, sop_class, generate_uid())

    good = creation_attributes(CONVENTIONAL, PLAN, "P-1")
    status, _ = create(without(good.copy(), "ReferencedRTPlanSequence"))
    assert status.Status == 0x0120 and status.OffendingElement == 0x300C0002
    empty_plans = good.copy()
    empty_plans.ReferencedRTPlanSequence = []
    assert create(empty_plans)[0].Status == 0x0121
    two_plans = creation_attributes(CONVENTIONAL, PLAN, "P-1")
    two_plans.ReferencedRTPlanSequence.append(two_plans.ReferencedRTPlanSequence[0])
    status, _ = create(two_plans)
    assert status.Status == 0x0106 and status.OffendingElement == 0x300C0002
    assert "2 plans" in status.ErrorComment
    no_uid = creation_attributes(CONVENTIONAL, PLAN, "P-1")
    del no_uid.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID
    status, _ = create(no_uid)
    assert status.Status == 0x0120 and status.OffendingElement == 0x00081155
    status, _ = create(without(creation_attributes(CONVENTIONAL, PLAN, "P-1"), "PatientID"))
    assert status.Status == 0x0120 and status.OffendingElement == 0x00100020
    assert create(creation_attributes(CONVENTIONAL, PLAN, ""))[0].Status == 0x0121
    # the MPV's own result and the other SOP class's module are not allowed (0105H)
    result = creation_attributes(CONVENTIONAL, PLAN, "P-1")
    result.TreatmentVerificationStatus = VERIFIED
    result.IonMachineVerificationSequence = []
    status, _ = create(result)
    assert status.Status == 0x0105
    assert list(status.AttributeIdentifierList) == [0x00741046, 0x3008002C]
    conventional_on_ion = creation_attributes(ION, ION_PLAN, "P-1")
    conventional_on_ion.ConventionalMachineVerificationSequence = []
    assert create(conventional_on_ion, ION)[0].Status == 0x0105
    # the machine verification sequences are created empty (DD.3.2.1.3.1)
    early = creation_attributes(CONVENTIONAL, PLAN, "P-1")
    early.GeneralMachineVerificationSequence = beam().GeneralMachineVerificationSequence
    status, _ = create(early)
    assert status.Status == 0x0106 and status.OffendingElement == 0x00741042
    assert calls == []
    assert create(creation_attributes(CONVENTIONAL, PLAN, "P-1"))[0].Status == 0x0000
    assert create(creation_attributes(ION, ION_PLAN, "P-1"), ION)[0].Status == 0x0000
    assert calls == ["create", "create"]
    assoc.release()


def test_n_set_checks(recorded: tuple[Any, list[str]]) -> None:
    assoc, calls = recorded
    uid = generate_uid()

    def set_(ds: Dataset, sop_class: str = CONVENTIONAL) -> Any:
        return assoc.send_n_set(ds, sop_class, uid)

    replan = beam()
    replan.PatientID = "P-2"
    status, _ = set_(replan)
    assert status.Status == 0x0105 and status.AttributeIdentifierList == 0x00100020
    self_verified = beam()
    self_verified.add_new(0x00741048, "SQ", [])  # Failed Attributes Sequence
    assert set_(self_verified)[0].Status == 0x0105
    assert set_(beam(), ION)[0].Status == 0x0105  # a conventional module on an ion instance
    two = beam()
    two.GeneralMachineVerificationSequence.append(Dataset())
    status, _ = set_(two)
    assert status.Status == 0x0106 and status.OffendingElement == 0x00741042
    no_point = beam()
    module = no_point.ConventionalMachineVerificationSequence[0]
    del module.ConventionalControlPointVerificationSequence
    status, _ = set_(no_point)
    assert status.Status == 0x0120 and status.OffendingElement == 0x0074104C
    two_points = beam(ion=True)
    points = two_points.IonMachineVerificationSequence[0].IonControlPointVerificationSequence
    points.append(points[0])
    assert set_(two_points, ION)[0].Status == 0x0106
    assert calls == []
    # clearing the parameters with empty sequences is allowed (DD.3.2.1.3.2)
    cleared = Dataset()
    cleared.GeneralMachineVerificationSequence = []
    cleared.ConventionalMachineVerificationSequence = []
    assert set_(cleared)[0].Status == 0x0000
    assert set_(beam(ion=True), ION)[0].Status == 0x0000
    assert calls == ["set", "set"]
    assoc.release()


def test_n_action_and_event_report_checks(recorded: tuple[Any, list[str]]) -> None:
    assoc, calls = recorded
    uid = generate_uid()
    status, _ = assoc.send_n_action(None, 2, CONVENTIONAL, uid)
    assert status.Status == 0x0123 and calls == []
    assert assoc.send_n_action(None, 1, CONVENTIONAL, uid)[0].Status == 0x0000
    # N-EVENT-REPORT: Pending (1), or Done (2) with a Treatment Verification Status
    assert assoc.send_n_event_report(None, 3, CONVENTIONAL, uid)[0].Status == 0x0113
    assert assoc.send_n_event_report(None, 2, CONVENTIONAL, uid)[0].Status == 0x0115
    wrong = Dataset()
    wrong.TreatmentVerificationStatus = "PASSED"
    assert assoc.send_n_event_report(wrong, 2, CONVENTIONAL, uid)[0].Status == 0x0115
    assert calls == ["action"]
    assert assoc.send_n_event_report(None, 1, CONVENTIONAL, uid)[0].Status == 0x0000
    done = Dataset()
    done.TreatmentVerificationStatus = NOT_VERIFIED
    status, _ = assoc.send_n_event_report(done, 2, ION, uid)
    assert status.Status == 0x0000 and status.EventTypeID == 2
    assert calls == ["action", "report", "report"]
    assoc.release()


# -- the report's way -------------------------------------------------------------------------


def test_a_report_after_the_tds_released_is_lost_and_logged(
    make_ae: Any, verifier: Verifier, caplog: pytest.LogCaptureFixture
) -> None:
    """Annex DD defines no association of the MPV's own for the report."""
    later: list[Any] = []
    asked = threading.Event()

    def queue(event: Any) -> Any:
        later.append((event.assoc, event.verification))
        asked.set()
        return REPORT_LATER

    session = Session(make_ae, verifier.handlers(verify=queue))
    uid = session.create()
    session.assoc.send_n_set(beam(), CONVENTIONAL, uid)
    session.assoc.send_n_action(None, 1, CONVENTIONAL, uid)
    assert asked.wait(WAIT)
    session.assoc.release()
    assoc, verification = later[0]
    assert not assoc.is_established
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        answer = send_verification_report(assoc, verification, VERIFIED)
    assert answer == Dataset()
    assert "no longer established" in caplog.text


def test_send_verification_report_refuses_a_bad_status(session: Session) -> None:
    verification = Verification(CONVENTIONAL, generate_uid())
    with pytest.raises(ValueError, match="Treatment Verification Status"):
        send_verification_report(session.assoc, verification, "OK")
    with pytest.raises(ValueError, match="Treatment Verification Status"):
        send_verification_report(session.assoc, verification, Dataset())
    session.assoc.release()


def test_verification_results_refuses_other_reports() -> None:
    results = VerificationResults()

    class Report:
        def __init__(self, sop_class: str, event_type: int, information: Any = None) -> None:
            self.request = type("Request", (), {
                "AffectedSOPClassUID": sop_class, "AffectedSOPInstanceUID": "1.2.3",
                "EventTypeID": event_type,
            })()
            self.event_information = information

    status, _ = results(Report("1.2.840.10008.1.20.1", 1))
    assert status.Status == 0x0118
    status, _ = results(Report(CONVENTIONAL, 2, Dataset()))
    assert status.Status == 0x0115
    done = Dataset()
    done.TreatmentVerificationStatus = VERIFIED
    assert results(Report(ION, 2, done)) == (0x0000, None)
    assert results(Report(ION, 1)) == (0x0000, None)
    assert results.wait("1.2.3", 0) == VERIFIED and results.pending("1.2.3") == 1


def test_creation_attributes() -> None:
    conventional = creation_attributes(CONVENTIONAL, PLAN, "P-1")
    (plan,) = conventional.ReferencedRTPlanSequence
    assert plan.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.481.5"  # RT Plan Storage
    assert plan.ReferencedSOPInstanceUID == PLAN and conventional.PatientID == "P-1"
    assert conventional.ConventionalMachineVerificationSequence == []
    assert "IonMachineVerificationSequence" not in conventional
    assert "ReferencedFractionGroupNumber" not in conventional
    ion = creation_attributes(ION, ION_PLAN, "P-1", fraction_group=2)
    assert ion.ReferencedRTPlanSequence[0].ReferencedSOPClassUID == (
        "1.2.840.10008.5.1.4.1.1.481.8"  # RT Ion Plan Storage
    )
    assert ion.ReferencedFractionGroupNumber == 2 and ion.IonMachineVerificationSequence == []
    assert ion.GeneralMachineVerificationSequence == []
