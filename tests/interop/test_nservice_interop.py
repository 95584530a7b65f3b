"""DIMSE-N services with real peers (PS3.7 10; PS3.4 F, J, R).

Each service dicomnet implements, in both directions against pynetdicom 3.0.4
(scripts in ``scripts/``, run with the pynetdicom venv's python):

* Modality Performed Procedure Step (N-CREATE, N-SET, N-GET and the refusals
  PS3.4 F.7.2 asks for);
* Instance Availability Notification (N-CREATE);
* Storage Commitment Push Model (N-ACTION, and the N-EVENT-REPORT on the
  association of the request and on a new one the SCP opens, proposing the
  SCP role);
* Unified Procedure Step (push, C-FIND, change state, N-SET, N-GET and the
  CC.2 refusals; a subscription and the UPS event report to the subscriber);
* Print Management under the Basic Grayscale Print Management Meta SOP Class
  (film session, film box, image box, print, printer status, delete);
* Procedural Event Logging (N-ACTION), Display System (N-GET) and Media
  Creation Management (N-CREATE, N-ACTION initiate/cancel, N-GET);
* RT Machine Verification, conventional and ion (N-CREATE, N-SET, N-ACTION
  with the Pending and Done reports on the same association, N-GET, N-DELETE
  and the Annex DD refusals; ``scripts/pynetdicom_rt_verification_*.py``);

and Storage Commitment against Orthanc both ways: dicomnet asking Orthanc to
commit what it stored, and Orthanc (REST ``/modalities/{id}/storage-commitment``)
asking dicomnet. A missing peer skips the test (fails it under
``DICOMNET_REQUIRE_PEERS=1``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import AE, evt
from dicomnet.plugins.application_event_logging import (
    PROCEDURAL_EVENT_LOGGING,
    PROCEDURAL_EVENT_LOGGING_INSTANCE,
    RECORD_PROCEDURAL_EVENT,
)
from dicomnet.plugins.display_system import DISPLAY_SYSTEM, DISPLAY_SYSTEM_INSTANCE
from dicomnet.plugins.instance_availability import (
    INSTANCE_AVAILABILITY_NOTIFICATION,
    availability_notification,
)
from dicomnet.plugins.media_creation import (
    ACTION_CANCEL,
    ACTION_INITIATE,
    MEDIA_CREATION_MANAGEMENT,
)
from dicomnet.plugins.print_management import (
    ACTION_PRINT,
    BASIC_FILM_BOX,
    BASIC_FILM_SESSION,
    BASIC_GRAYSCALE_IMAGE_BOX,
    GRAYSCALE_META,
    PRINTER,
    PRINTER_INSTANCE,
)
from dicomnet.plugins.procedure_step import (
    COMPLETED,
    IN_PROGRESS,
    MPPS,
    MPPS_RETRIEVE,
    may_no_longer_be_updated,
)
from dicomnet.plugins.rt_machine_verification import (
    EVT_MACHINE_VERIFICATION,
    NOT_VERIFIED,
    RT_CONVENTIONAL_MACHINE_VERIFICATION,
    RT_ION_MACHINE_VERIFICATION,
    VERIFIED,
    VerificationResults,
    creation_attributes,
    send_verification_report,
)
from dicomnet.plugins.storage_commitment import (
    EVENT_FAILURES_EXIST,
    EVT_STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_PUSH_MODEL,
    CommitmentResults,
    FailedReference,
    request_commitment,
)
from dicomnet.plugins.unified_procedure_step import (
    ACTION_CHANGE_STATE,
    ACTION_SUBSCRIBE,
    EVENT_STATE_REPORT,
    SCHEDULED,
    UPS_EVENT,
    UPS_PULL,
    UPS_PUSH,
    UPS_QUERY,
    UPS_WATCH,
    send_ups_event,
)
from tests.interop.peers import (
    Orthanc,
    PeerGroup,
    describe,
    python_runner,
    run_client,
    watch,
)

pytestmark = pytest.mark.interop

SCRIPTS = Path(__file__).parent / "scripts"
SC = STORAGE_COMMITMENT_PUSH_MODEL
IAN = INSTANCE_AVAILABILITY_NOTIFICATION
CT = "1.2.840.10008.5.1.4.1.1.2"
#: the instances the pynetdicom SCU asks to commit (scripts/pynetdicom_nservice_scu.py)
ROOT = "1.2.826.0.1.3680043.8.498.66001"
SCP_AET = "DICOMNET-SCP"
SCU_AET = "DICOMNET-SCU"
PYNETDICOM_SCU = "PYNETDICOM-SCU"
PYNETDICOM_SCP = "PYNETDICOM-SCP"
WAIT = 20.0


def lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects a script printed, one per line."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def by_op(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["op"]: obj for obj in objects}


def dicomnet_ae(title: str, *, requested: tuple[str, ...] = (),
                supported: tuple[Any, ...] = ()) -> Any:
    ae = AE(title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = WAIT
    for uid in requested:
        ae.add_requested_context(uid)
    for entry in supported:
        if isinstance(entry, tuple):
            ae.add_supported_context(entry[0], scu_role=entry[1], scp_role=entry[2])
        else:
            ae.add_supported_context(entry)
    return ae


@pytest.fixture
def aes() -> Iterator[list[Any]]:
    """AEs a test makes; all shut down at teardown (servers and associations with them)."""
    made: list[Any] = []
    yield made
    for ae in reversed(made):
        ae.shutdown()


def serve(ae: Any, handlers: list[Any]) -> int:
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
    return int(server.server_address[1])


# -- a dicomnet information system and archive -----------------------------------------------


class InformationSystem:
    """MPPS SCP keeping the steps in memory; IAN SCP recording notifications."""

    def __init__(self) -> None:
        self.steps: dict[str, Dataset] = {}
        self.notifications: list[Dataset] = []

    def on_create(self, event: Any) -> Any:
        if event.request.AffectedSOPClassUID == IAN:
            self.notifications.append(event.attribute_list)
            return 0x0000, None
        uid = event.request.AffectedSOPInstanceUID
        if uid in self.steps:
            return 0x0111, None
        self.steps[uid] = event.attribute_list
        return 0x0000, None

    def on_set(self, event: Any) -> Any:
        step = self.steps.get(event.request.RequestedSOPInstanceUID)
        if step is None:
            return 0x0112, None
        if step.PerformedProcedureStepStatus != IN_PROGRESS:
            return may_no_longer_be_updated(), None
        step.update(event.modification_list)
        return 0x0000, None

    def on_get(self, event: Any) -> Any:
        step = self.steps.get(event.request.RequestedSOPInstanceUID)
        if step is None:
            return 0x0112, None
        answer = Dataset()
        for tag in event.attribute_identifiers:
            if tag in step:
                answer[tag] = step[tag]
        return 0x0000, answer

    def handlers(self) -> list[Any]:
        return [
            (evt.EVT_N_CREATE, self.on_create),
            (evt.EVT_N_SET, self.on_set),
            (evt.EVT_N_GET, self.on_get),
        ]


def commit_all_but_99(event: Any) -> Any:
    """An archive's EVT_STORAGE_COMMITMENT handler: UIDs ending in .99 are not held."""
    commitment = event.commitment
    return commitment.result(
        failed={r.sop_instance_uid: 0x0112 for r in commitment.references
                if r.sop_instance_uid.endswith(".99")}
    )


# -- pynetdicom SCU -> dicomnet SCP --------------------------------------------------------------


def test_pynetdicom_mpps_to_dicomnet(pynetdicom_python: str, aes: list[Any]) -> None:
    system = InformationSystem()
    scp = dicomnet_ae(SCP_AET, supported=(MPPS, MPPS_RETRIEVE))
    aes.append(scp)
    port = serve(scp, system.handlers())
    result = run_client(python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET,
                                      "mpps", python=pynetdicom_python))
    assert result.returncode == 0, describe(result)
    ops = by_op(lines(result.stdout))
    uid = ops["N-CREATE"]["uid"]
    assert ops["N-CREATE"]["status"] == 0x0000, describe(result)
    assert ops["N-SET"]["status"] == 0x0000
    assert ops["N-GET"]["status"] == 0x0000
    assert ops["N-GET"]["state"] == COMPLETED and ops["N-GET"]["patient"] == "Doe^Jane"
    assert ops["N-CREATE-completed"]["status"] == 0x0106  # PS3.4 F.7.2.1.3
    assert ops["N-CREATE-completed"]["reply"] is False
    assert ops["N-SET-again"]["status"] == 0x0110  # PS3.4 F.7.2.2.3
    assert ops["N-SET-again"]["ErrorID"] == 0xA710
    assert ops["N-GET-on-mpps"]["status"] == 0x0211
    assert list(system.steps) == [uid]
    assert system.steps[uid].PerformedProcedureStepStatus == COMPLETED


def test_pynetdicom_ian_to_dicomnet(pynetdicom_python: str, aes: list[Any]) -> None:
    system = InformationSystem()
    scp = dicomnet_ae(SCP_AET, supported=(IAN,))
    aes.append(scp)
    port = serve(scp, system.handlers())
    result = run_client(python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET,
                                      "ian", python=pynetdicom_python))
    assert result.returncode == 0, describe(result)
    ops = by_op(lines(result.stdout))
    assert ops["N-CREATE"]["status"] == 0x0000, describe(result)
    assert ops["N-SET"]["status"] == 0x0211  # N-CREATE is IAN's only operation
    (notification,) = system.notifications
    assert notification.StudyInstanceUID == ROOT
    ref = notification.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == ROOT + ".1.1" and ref.InstanceAvailability == "ONLINE"


def _expected_commitment(report: dict[str, Any]) -> None:
    assert report["event_type"] == EVENT_FAILURES_EXIST
    assert sorted(report["committed"]) == [ROOT + ".1", ROOT + ".2"]
    assert report["failed"] == [[ROOT + ".99", 0x0112]]


def test_pynetdicom_commitment_to_dicomnet_reported_on_the_same_association(
    pynetdicom_python: str, aes: list[Any]
) -> None:
    scp = dicomnet_ae(SCP_AET, supported=(SC,))
    aes.append(scp)
    port = serve(scp, [(EVT_STORAGE_COMMITMENT, commit_all_but_99)])
    result = run_client(python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET,
                                      "commit-same", python=pynetdicom_python))
    assert result.returncode == 0, describe(result)
    ops = by_op(lines(result.stdout))
    assert ops["N-ACTION"]["status"] == 0x0000, describe(result)
    report = ops["N-EVENT-REPORT"]
    assert report.get("status", 0) is not None, describe(result)
    assert report["transaction"] == ops["N-ACTION"]["transaction"]
    assert report["on_requestor"] is True
    _expected_commitment(report)


def test_pynetdicom_commitment_to_dicomnet_reported_on_a_new_association(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp = dicomnet_ae(SCP_AET, supported=(SC,))
    aes.append(scp)
    port = serve(scp, [(EVT_STORAGE_COMMITMENT, commit_all_but_99)])
    scu = peers.start(
        python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET, "commit-new",
                      python=pynetdicom_python),
        name="pynetdicom SCU",
        stdin=True,
    )
    report_port = int(scu.wait_for_line(r"listening on port (\d+)").group(1))
    scp.report_destinations = {PYNETDICOM_SCU: ("127.0.0.1", report_port)}
    scu.write_stdin("go\n")
    scu.wait_for_line(r'"op": "N-EVENT-REPORT"', WAIT)
    assert scu.wait() == 0, scu.output()
    ops = by_op(lines("\n".join(scu.stdout_lines)))
    assert ops["N-ACTION"]["status"] == 0x0000, scu.output()
    report = ops["N-EVENT-REPORT"]
    assert report.get("status", 0) is not None, scu.output()
    assert report["on_requestor"] is False  # on the association dicomnet opened
    _expected_commitment(report)


# -- dicomnet SCU -> pynetdicom SCP --------------------------------------------------------------


def start_pynetdicom_scp(
    peers: PeerGroup, python: str, report: str, scu_port: int | None = None
) -> tuple[Any, int]:
    args: list[Any] = [PYNETDICOM_SCP, report]
    if scu_port is not None:
        args.append(scu_port)
    proc = peers.start(
        python_runner(SCRIPTS / "pynetdicom_nservice_scp.py", *args, python=python),
        name="pynetdicom SCP",
        stdin=True,
    )
    return proc, int(proc.wait_for_line(r"listening on port (\d+)").group(1))


def test_dicomnet_mpps_to_pynetdicom(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, "same")
    scu = dicomnet_ae(SCU_AET, requested=(MPPS, MPPS_RETRIEVE))
    aes.append(scu)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP)
    assert assoc.is_established, scp.output()
    uid = generate_uid()
    step = Dataset()
    step.PatientName = "Doe^John"
    step.PerformedProcedureStepStatus = IN_PROGRESS
    status, attributes = assoc.send_n_create(step, MPPS, uid)
    assert status.Status == 0x0000 and status.AffectedSOPInstanceUID == uid
    assert attributes.PatientName == "Doe^John"  # pynetdicom's SCP echoes the list
    assert assoc.send_n_create(step, MPPS, uid)[0].Status == 0x0111
    done = Dataset()
    done.PerformedProcedureStepStatus = COMPLETED
    status, attributes = assoc.send_n_set(done, MPPS, uid)
    assert status.Status == 0x0000 and attributes.PerformedProcedureStepStatus == COMPLETED
    status, attributes = assoc.send_n_get([0x00400252, 0x00100010], MPPS_RETRIEVE, uid)
    assert status.Status == 0x0000
    assert attributes.PerformedProcedureStepStatus == COMPLETED
    assert attributes.PatientName == "Doe^John"
    status, attributes = assoc.send_n_set(done, MPPS, uid)
    assert status.Status == 0x0110 and status.ErrorID == 0xA710 and attributes is None
    assert assoc.send_n_get([], MPPS_RETRIEVE, generate_uid())[0].Status == 0x0112
    assoc.release()
    scp.close_stdin()
    assert scp.wait() == 0
    ops = [obj["op"] for obj in lines("\n".join(scp.stdout_lines))]
    assert ops == ["N-CREATE", "N-CREATE", "N-SET", "N-GET", "N-SET", "N-GET"]


def test_dicomnet_ian_to_pynetdicom(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, "same")
    scu = dicomnet_ae(SCU_AET, requested=(IAN,))
    aes.append(scu)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP)
    assert assoc.is_established, scp.output()
    ds = Dataset()
    ds.StudyInstanceUID = ROOT
    ds.SeriesInstanceUID = ROOT + ".1"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = ROOT + ".1.1"
    uid = generate_uid()
    status, _ = assoc.send_n_create(availability_notification([ds], SCU_AET), IAN, uid)
    assert status.Status == 0x0000
    assoc.release()
    scp.close_stdin()
    assert scp.wait() == 0
    (created,) = lines("\n".join(scp.stdout_lines))
    assert created["op"] == "N-CREATE" and created["uid"] == uid and created["sop_class"] == IAN


def test_dicomnet_commitment_to_pynetdicom_reported_on_the_same_association(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, "same")
    results = CommitmentResults()
    scu = dicomnet_ae(SCU_AET, requested=(SC,))
    aes.append(scu)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP,
                          evt_handlers=[(evt.EVT_N_EVENT_REPORT, results)])
    assert assoc.is_established, scp.output()
    status, request = request_commitment(
        assoc, [(CT, ROOT + ".1"), (CT, ROOT + ".2"), (CT, ROOT + ".99")]
    )
    assert status.Status == 0x0000
    result = results.wait(request.transaction_uid, WAIT)
    assert result is not None, scp.output()
    assert sorted(r.sop_instance_uid for r in result.committed) == [ROOT + ".1", ROOT + ".2"]
    assert result.failed == (FailedReference(CT, ROOT + ".99", 0x0112),)
    scp.wait_for_line(r'"op": "report", "where": "same", "status": 0')
    assoc.release()


def test_dicomnet_commitment_to_pynetdicom_reported_on_a_new_association(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    results = CommitmentResults()
    scu = dicomnet_ae(SCU_AET, requested=(SC,), supported=((SC, False, True),))
    aes.append(scu)
    report_port = serve(scu, [(evt.EVT_N_EVENT_REPORT, results)])
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, "new", report_port)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP)
    assert assoc.is_established, scp.output()
    status, request = request_commitment(assoc, [(CT, ROOT + ".1"), (CT, ROOT + ".99")])
    assert status.Status == 0x0000
    assoc.release()
    result = results.wait(request.transaction_uid, WAIT)
    assert result is not None, scp.output()
    assert [r.sop_instance_uid for r in result.committed] == [ROOT + ".1"]
    assert result.failed == (FailedReference(CT, ROOT + ".99", 0x0112),)
    scp.wait_for_line(r'"op": "report", "where": "new", "status": 0')


# -- Unified Procedure Step ------------------------------------------------------------------


class Worklist:
    """A UPS SCP keeping its workitems and subscribers in memory (PS3.4 CC.2)."""

    def __init__(self) -> None:
        self.items: dict[str, Dataset] = {}
        self.transactions: dict[str, str] = {}
        self.subscribed = threading.Event()
        self.subscribers: list[str] = []

    def on_create(self, event: Any) -> Any:
        self.items[event.request.AffectedSOPInstanceUID] = event.attribute_list
        return 0x0000, None

    def on_find(self, event: Any) -> Any:
        wanted = event.identifier.get("ProcedureStepState")
        for uid, item in self.items.items():
            if not wanted or item.ProcedureStepState == wanted:
                match = Dataset()
                match.SOPInstanceUID = uid
                match.ProcedureStepState = item.ProcedureStepState
                yield 0xFF00, match

    def on_action(self, event: Any) -> Any:
        info = event.action_information
        if event.action_type == ACTION_SUBSCRIBE:
            self.subscribers.append(info.ReceivingAE)
            self.subscribed.set()
            return 0x0000, None
        uid = event.request.RequestedSOPInstanceUID
        item = self.items.get(uid)
        if item is None:
            return 0xC307, None
        state, transaction = info.ProcedureStepState, info.TransactionUID
        if item.ProcedureStepState == SCHEDULED:
            self.transactions[uid] = transaction
        elif self.transactions.get(uid) != transaction:
            return 0xC301, None
        item.ProcedureStepState = state
        return 0x0000, None

    def on_set(self, event: Any) -> Any:
        uid = event.request.RequestedSOPInstanceUID
        changes = event.modification_list
        if changes.get("TransactionUID") != self.transactions.get(uid):
            return 0xC301, None
        self.items[uid].update(changes)
        return 0x0000, None

    def on_get(self, event: Any) -> Any:
        item = self.items[event.request.RequestedSOPInstanceUID]
        answer = Dataset()
        for tag in event.attribute_identifiers:
            if tag in item:
                answer[tag] = item[tag]
        return 0x0000, answer

    def handlers(self) -> list[Any]:
        return [
            (evt.EVT_N_CREATE, self.on_create),
            (evt.EVT_C_FIND, self.on_find),
            (evt.EVT_N_ACTION, self.on_action),
            (evt.EVT_N_SET, self.on_set),
            (evt.EVT_N_GET, self.on_get),
        ]


ALL_UPS = (UPS_PUSH, UPS_PULL, UPS_WATCH, UPS_EVENT, UPS_QUERY)


def test_pynetdicom_ups_to_dicomnet(pynetdicom_python: str, aes: list[Any]) -> None:
    worklist = Worklist()
    scp = dicomnet_ae(SCP_AET, supported=ALL_UPS)
    aes.append(scp)
    port = serve(scp, worklist.handlers())
    result = run_client(python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET,
                                      "ups", python=pynetdicom_python))
    assert result.returncode == 0, describe(result)
    ops = by_op(lines(result.stdout))
    uid = ops["N-CREATE"]["uid"]
    assert ops["N-CREATE"]["status"] == 0x0000, describe(result)
    assert ops["C-FIND"]["found"] == [uid]
    # pynetdicom sends the N-ACTION and N-SET on the UPS Push context it proposed
    assert ops["claim"]["status"] == 0x0000
    assert ops["N-SET"]["status"] == 0x0000
    assert ops["N-GET"]["status"] == 0x0000
    assert ops["N-GET"]["label"] == "Segment the liver and the spleen"
    assert ops["N-GET"]["state"] == "IN PROGRESS"
    assert ops["complete"]["status"] == 0x0000
    assert ops["N-CREATE-in-progress"]["status"] == 0xC309  # PS3.4 CC.2.5.3
    assert ops["claim-without-transaction"]["status"] == 0xC301
    assert worklist.items[uid].ProcedureStepState == "COMPLETED"


def test_dicomnet_ups_to_pynetdicom(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, "same")
    scu = dicomnet_ae(SCU_AET, requested=(UPS_PUSH, UPS_PULL))
    aes.append(scu)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP)
    assert assoc.is_established, scp.output()
    uid = generate_uid()
    item = Dataset()
    item.ProcedureStepState = SCHEDULED
    item.ProcedureStepLabel = "Register the images"
    assert assoc.send_n_create(item, UPS_PUSH, uid)[0].Status == 0x0000
    query = Dataset()
    query.ProcedureStepState = SCHEDULED
    query.SOPInstanceUID = ""
    found = [ds.SOPInstanceUID for _, ds in assoc.send_c_find(query, UPS_PULL) if ds]
    assert found == [uid]
    transaction = generate_uid()
    claim = Dataset()
    claim.ProcedureStepState = "IN PROGRESS"
    claim.TransactionUID = transaction
    assert assoc.send_n_action(claim, ACTION_CHANGE_STATE, UPS_PUSH, uid)[0].Status == 0
    change = Dataset()
    change.TransactionUID = generate_uid()  # not the UPS's
    change.ProcedureStepLabel = "Register them twice"
    assert assoc.send_n_set(change, UPS_PUSH, uid)[0].Status == 0xC301
    change.TransactionUID = transaction
    assert assoc.send_n_set(change, UPS_PUSH, uid)[0].Status == 0x0000
    status, got = assoc.send_n_get([0x00741204], UPS_PUSH, uid)
    assert status.Status == 0x0000 and got.ProcedureStepLabel == "Register them twice"
    assoc.release()
    scp.close_stdin()
    assert scp.wait() == 0
    ops = [obj["op"] for obj in lines("\n".join(scp.stdout_lines))]
    assert ops == ["N-CREATE", "C-FIND", "N-ACTION", "N-SET", "N-SET", "N-GET"]


def test_dicomnet_ups_event_to_a_pynetdicom_subscriber(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    """PS3.4 CC.2.3-CC.2.4: pynetdicom subscribes globally; dicomnet reports to it on an
    association of its own (UPS Event context, SCP role proposed)."""
    worklist = Worklist()
    scp = dicomnet_ae(SCP_AET, supported=ALL_UPS)
    aes.append(scp)
    port = serve(scp, worklist.handlers())
    scu = peers.start(
        python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET, "ups-watch",
                      python=pynetdicom_python),
        name="pynetdicom SCU",
        stdin=True,
    )
    report_port = int(scu.wait_for_line(r"listening on port (\d+)").group(1))
    scp.report_destinations = {PYNETDICOM_SCU: ("127.0.0.1", report_port)}
    scu.write_stdin("go\n")
    assert worklist.subscribed.wait(WAIT), scu.output()
    assert worklist.subscribers == [PYNETDICOM_SCU]
    info = Dataset()
    info.ProcedureStepState = SCHEDULED
    info.InputReadinessState = "READY"
    uid = generate_uid()
    status = send_ups_event(scp, PYNETDICOM_SCU, uid, EVENT_STATE_REPORT, info)
    assert status.Status == 0x0000, scu.output()
    scu.wait_for_line(r'"op": "N-EVENT-REPORT"', WAIT)
    assert scu.wait() == 0, scu.output()
    ops = by_op(lines("\n".join(scu.stdout_lines)))
    assert ops["subscribe"]["status"] == 0x0000
    report = ops["N-EVENT-REPORT"]
    assert report == {"op": "N-EVENT-REPORT", "event_type": EVENT_STATE_REPORT, "ups": uid,
                      "state": SCHEDULED, "context": UPS_EVENT}


# -- Print Management ----------------------------------------------------------------------------


class PrintSCP:
    """A dicomnet printer: film boxes get one image box per position of their format."""

    def __init__(self) -> None:
        self.films: dict[str, list[str]] = {}
        self.images: dict[str, Dataset | None] = {}
        self.printed: list[list[bool]] = []
        self.deleted: list[str] = []

    def on_create(self, event: Any) -> Any:
        request = event.request
        if request.AffectedSOPClassUID != BASIC_FILM_BOX:
            return 0x0000, None
        fmt = event.attribute_list.ImageDisplayFormat
        columns, rows = (int(n) for n in fmt.split("\\")[1].split(","))
        references = []
        for _ in range(columns * rows):
            ref = Dataset()
            ref.ReferencedSOPClassUID = BASIC_GRAYSCALE_IMAGE_BOX
            ref.ReferencedSOPInstanceUID = generate_uid()
            self.images[ref.ReferencedSOPInstanceUID] = None
            references.append(ref)
        self.films[request.AffectedSOPInstanceUID] = [
            r.ReferencedSOPInstanceUID for r in references
        ]
        answer = Dataset()
        answer.ImageDisplayFormat = fmt
        answer.ReferencedImageBoxSequence = references
        return 0x0000, answer

    def on_set(self, event: Any) -> Any:
        uid = event.request.RequestedSOPInstanceUID
        if uid not in self.images:
            return 0x0112, None
        self.images[uid] = event.modification_list
        return 0x0000, None

    def on_action(self, event: Any) -> Any:
        film = self.films.get(event.request.RequestedSOPInstanceUID)
        if film is None:
            return 0x0112, None
        self.printed.append([self.images[uid] is not None for uid in film])
        return 0x0000, None

    def on_get(self, event: Any) -> Any:
        answer = Dataset()
        answer.PrinterStatus = "NORMAL"
        return 0x0000, answer

    def on_delete(self, event: Any) -> int:
        self.deleted.append(event.request.RequestedSOPInstanceUID)
        return 0x0000

    def handlers(self) -> list[Any]:
        return [
            (evt.EVT_N_CREATE, self.on_create),
            (evt.EVT_N_SET, self.on_set),
            (evt.EVT_N_ACTION, self.on_action),
            (evt.EVT_N_GET, self.on_get),
            (evt.EVT_N_DELETE, self.on_delete),
        ]


def test_pynetdicom_prints_to_dicomnet(pynetdicom_python: str, aes: list[Any]) -> None:
    printer = PrintSCP()
    scp = dicomnet_ae(SCP_AET, supported=(GRAYSCALE_META,))
    aes.append(scp)
    port = serve(scp, printer.handlers())
    result = run_client(python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET,
                                      "print", python=pynetdicom_python))
    assert result.returncode == 0, describe(result)
    ops = by_op(lines(result.stdout))
    assert ops["N-CREATE-session"]["status"] == 0x0000, describe(result)
    assert ops["N-CREATE-box"]["status"] == 0x0000
    assert ops["N-CREATE-box"]["image_boxes"] == 1
    assert ops["N-SET-image"]["status"] == 0x0000
    assert ops["print"]["status"] == 0x0000
    assert ops["N-GET-printer"]["status"] == 0x0000
    assert ops["N-GET-printer"]["printer"] == "NORMAL"
    assert ops["action-7"]["status"] == 0x0123  # only Print (Action Type ID 1)
    assert ops["N-DELETE-session"]["status"] == 0x0000
    assert printer.printed == [[True]]
    assert len(printer.deleted) == 1


def test_dicomnet_prints_to_pynetdicom(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, "same")
    scu = dicomnet_ae(SCU_AET, requested=(GRAYSCALE_META,))
    aes.append(scu)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP)
    assert assoc.is_established, scp.output()
    session = Dataset()
    session.NumberOfCopies = 1
    status, _ = assoc.send_n_create(session, BASIC_FILM_SESSION, meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000
    session_uid = status.AffectedSOPInstanceUID  # chosen by pynetdicom's SCP
    box = Dataset()
    box.ImageDisplayFormat = "STANDARD\\1,2"
    box_uid = generate_uid()
    status, attributes = assoc.send_n_create(box, BASIC_FILM_BOX, box_uid,
                                             meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000 and len(attributes.ReferencedImageBoxSequence) == 2
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
    first = attributes.ReferencedImageBoxSequence[0].ReferencedSOPInstanceUID
    status, _ = assoc.send_n_set(image, BASIC_GRAYSCALE_IMAGE_BOX, first,
                                 meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000
    status, _ = assoc.send_n_action(None, ACTION_PRINT, BASIC_FILM_BOX, box_uid,
                                    meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000
    status, info = assoc.send_n_get([0x21100010], PRINTER, PRINTER_INSTANCE,
                                    meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000 and info.PrinterStatus == "NORMAL"
    assert assoc.send_n_delete(BASIC_FILM_SESSION, session_uid,
                               meta_uid=GRAYSCALE_META).Status == 0x0000
    assoc.release()
    scp.close_stdin()
    assert scp.wait() == 0
    printed = [obj for obj in lines("\n".join(scp.stdout_lines)) if obj["op"] == "printed"]
    assert printed == [{"op": "printed", "images": [True, False]}]


# -- Application Event Logging and Display System --------------------------------------------


def test_pynetdicom_logs_and_reads_the_display_system_of_dicomnet(
    pynetdicom_python: str, aes: list[Any]
) -> None:
    logged: list[str] = []

    def on_action(event: Any) -> Any:
        logged.append(event.action_information.PatientID)
        return 0x0000, None

    def on_get(event: Any) -> Any:
        answer = Dataset()
        answer.Manufacturer = "ACME displays"
        return 0x0000, answer

    scp = dicomnet_ae(SCP_AET, supported=(PROCEDURAL_EVENT_LOGGING, DISPLAY_SYSTEM))
    aes.append(scp)
    port = serve(scp, [(evt.EVT_N_ACTION, on_action), (evt.EVT_N_GET, on_get)])
    result = run_client(python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET,
                                      "log-display", python=pynetdicom_python))
    assert result.returncode == 0, describe(result)
    ops = by_op(lines(result.stdout))
    assert ops["log"]["status"] == 0x0000, describe(result)
    assert ops["log-action-2"]["status"] == 0x0123  # only Record Procedural Event
    assert ops["display"]["status"] == 0x0000
    assert ops["display"]["manufacturer"] == "ACME displays"
    assert logged == ["P-1"]


def test_dicomnet_logs_and_reads_the_display_system_of_pynetdicom(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, "same")
    scu = dicomnet_ae(SCU_AET, requested=(PROCEDURAL_EVENT_LOGGING, DISPLAY_SYSTEM))
    aes.append(scu)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP)
    assert assoc.is_established, scp.output()
    event = Dataset()
    event.PatientID = "P-2"
    status, reply = assoc.send_n_action(event, RECORD_PROCEDURAL_EVENT,
                                        PROCEDURAL_EVENT_LOGGING,
                                        PROCEDURAL_EVENT_LOGGING_INSTANCE)
    assert status.Status == 0x0000 and reply == Dataset()
    status, got = assoc.send_n_get([0x00080070], DISPLAY_SYSTEM, DISPLAY_SYSTEM_INSTANCE)
    assert status.Status == 0x0000 and got.Manufacturer == "ACME"
    assoc.release()
    scp.close_stdin()
    assert scp.wait() == 0
    ops = [(obj["op"], obj.get("state")) for obj in lines("\n".join(scp.stdout_lines))]
    assert ops == [("N-ACTION", "P-2"), ("N-GET", None)]


def test_pynetdicom_media_creation_to_dicomnet(pynetdicom_python: str, aes: list[Any]) -> None:
    states: dict[str, str] = {}

    def on_create(event: Any) -> Any:
        states[event.request.AffectedSOPInstanceUID] = "IDLE"
        return 0x0000, None

    def on_action(event: Any) -> Any:
        uid = event.request.RequestedSOPInstanceUID
        states[uid] = "PENDING" if event.action_type == ACTION_INITIATE else "CANCELED"
        return 0x0000, None

    def on_get(event: Any) -> Any:
        answer = Dataset()
        answer.ExecutionStatus = states[event.request.RequestedSOPInstanceUID]
        return 0x0000, answer

    scp = dicomnet_ae(SCP_AET, supported=(MEDIA_CREATION_MANAGEMENT,))
    aes.append(scp)
    port = serve(scp, [(evt.EVT_N_CREATE, on_create), (evt.EVT_N_ACTION, on_action),
                       (evt.EVT_N_GET, on_get)])
    result = run_client(python_runner(SCRIPTS / "pynetdicom_nservice_scu.py", port, SCP_AET,
                                      "media", python=pynetdicom_python))
    assert result.returncode == 0, describe(result)
    ops = by_op(lines(result.stdout))
    assert ops["N-CREATE"]["status"] == 0x0000, describe(result)
    assert ops["initiate"]["status"] == 0x0000
    assert ops["N-GET"]["status"] == 0x0000 and ops["N-GET"]["state"] == "PENDING"
    assert ops["action-3"]["status"] == 0x0123
    assert ops["cancel"]["status"] == 0x0000
    assert list(states.values()) == ["CANCELED"]


def test_dicomnet_media_creation_to_pynetdicom(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, "same")
    scu = dicomnet_ae(SCU_AET, requested=(MEDIA_CREATION_MANAGEMENT,))
    aes.append(scu)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP)
    assert assoc.is_established, scp.output()
    uid = generate_uid()
    request = Dataset()
    item = Dataset()
    item.ReferencedSOPClassUID = CT
    item.ReferencedSOPInstanceUID = ROOT + ".1"
    request.ReferencedSOPSequence = [item]
    assert assoc.send_n_create(request, MEDIA_CREATION_MANAGEMENT, uid)[0].Status == 0
    status, _ = assoc.send_n_action(None, ACTION_INITIATE, MEDIA_CREATION_MANAGEMENT, uid)
    assert status.Status == 0x0000
    status, got = assoc.send_n_get([0x21000020], MEDIA_CREATION_MANAGEMENT, uid)
    assert status.Status == 0x0000 and got.ExecutionStatus == "PENDING"
    status, _ = assoc.send_n_action(None, ACTION_CANCEL, MEDIA_CREATION_MANAGEMENT, uid)
    assert status.Status == 0x0000
    assoc.release()
    scp.close_stdin()
    assert scp.wait() == 0
    ops = [obj["op"] for obj in lines("\n".join(scp.stdout_lines))]
    assert ops == ["N-CREATE", "N-ACTION", "N-GET", "N-ACTION"]


# -- RT Machine Verification ------------------------------------------------------------------

RT_CONVENTIONAL = RT_CONVENTIONAL_MACHINE_VERIFICATION
RT_ION = RT_ION_MACHINE_VERIFICATION
#: the plans both verifiers know (scripts/pynetdicom_rt_verification_*.py)
RT_PLANS = ("1.2.826.0.1.3680043.8.498.77001", "1.2.826.0.1.3680043.8.498.77002")
#: every beam is planned at this gantry angle, within 0.5 degrees
PLANNED_GANTRY = 180.0


def rt_beam(number: int, gantry: float, *, ion: bool = False) -> Dataset:
    """An N-SET Modification List for one beam (PS3.4 Tables DD.3.2.1-1/-2)."""
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


class ParameterVerifier:
    """A dicomnet MPV (PS3.4 Annex DD): instances in memory, beam 1 only; Pending, then Done."""

    def __init__(self) -> None:
        self.instances: dict[str, Dataset] = {}

    def on_create(self, event: Any) -> Any:
        attributes = event.attribute_list
        if attributes.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID not in RT_PLANS:
            return 0xC227, None  # Referenced RT Plan not found
        self.instances[event.request.AffectedSOPInstanceUID] = attributes
        return 0x0000, None

    def on_set(self, event: Any) -> Any:
        instance = self.instances.get(event.request.RequestedSOPInstanceUID)
        if instance is None:
            return 0x0112, None
        changes = event.modification_list
        if changes.GeneralMachineVerificationSequence[0].ReferencedBeamNumber != 1:
            return 0xC224, None  # beam not in the fraction group
        instance.update(changes)
        return 0x0000, None

    def on_get(self, event: Any) -> Any:
        instance = self.instances.get(event.request.RequestedSOPInstanceUID)
        if instance is None:
            return 0xC112, None
        answer = Dataset()
        for tag in event.attribute_identifiers:
            if tag in instance:
                answer[tag] = instance[tag]
        return 0x0000, answer

    def on_delete(self, event: Any) -> Any:
        return 0x0000 if self.instances.pop(event.request.RequestedSOPInstanceUID, None) else 0x0112

    def verify(self, event: Any) -> Any:
        verification = event.verification
        send_verification_report(event.assoc, verification)  # Pending
        instance = self.instances[verification.sop_instance_uid]
        if verification.is_ion:
            points = instance.IonMachineVerificationSequence[0].IonControlPointVerificationSequence
        else:
            module = instance.ConventionalMachineVerificationSequence[0]
            points = module.ConventionalControlPointVerificationSequence
        good = abs(float(points[0].GantryAngle) - PLANNED_GANTRY) <= 0.5
        instance.TreatmentVerificationStatus = VERIFIED if good else NOT_VERIFIED
        return instance.TreatmentVerificationStatus

    def on_action(self, event: Any) -> Any:
        known = event.request.RequestedSOPInstanceUID in self.instances
        return (0x0000 if known else 0xC112), None

    def handlers(self) -> list[Any]:
        return [
            (evt.EVT_N_CREATE, self.on_create),
            (evt.EVT_N_SET, self.on_set),
            (evt.EVT_N_GET, self.on_get),
            (evt.EVT_N_ACTION, self.on_action),
            (evt.EVT_N_DELETE, self.on_delete),
            (EVT_MACHINE_VERIFICATION, self.verify),
        ]


def test_pynetdicom_rt_verification_to_dicomnet(pynetdicom_python: str, aes: list[Any]) -> None:
    verifier = ParameterVerifier()
    scp = dicomnet_ae(SCP_AET, supported=(RT_CONVENTIONAL, RT_ION))
    aes.append(scp)
    port = serve(scp, verifier.handlers())
    result = run_client(python_runner(SCRIPTS / "pynetdicom_rt_verification_scu.py", port,
                                      SCP_AET, python=pynetdicom_python))
    assert result.returncode == 0, describe(result)
    objects = lines(result.stdout)
    ops = by_op(objects)
    assert "timeout" not in ops, describe(result)
    uid, ion_uid = ops["N-CREATE"]["uid"], ops["N-CREATE-ion"]["uid"]
    assert ops["N-CREATE"]["status"] == 0x0000, describe(result)
    assert ops["N-SET"]["status"] == 0x0000
    assert ops["N-ACTION"]["status"] == 0x0000
    assert ops["N-GET"]["status"] == 0x0000 and ops["N-GET"]["result"] == VERIFIED
    assert ops["N-SET-off"]["status"] == 0x0000 and ops["N-ACTION-off"]["status"] == 0x0000
    assert ops["action-2"]["status"] == 0x0123
    assert ops["N-DELETE"]["status"] == 0x0000
    assert ops["N-GET-deleted"]["status"] == 0xC112
    assert ops["N-CREATE-ion"]["status"] == 0x0000 and ops["N-SET-ion"]["status"] == 0x0000
    assert ops["N-ACTION-ion"]["status"] == 0x0000
    assert ops["create-with-result"]["status"] == 0x0105  # Not allowed (5.4.2.1)
    assert ops["create-unknown-plan"]["status"] == 0xC227
    assert ops["set-patient"]["status"] == 0x0105
    assert ops["set-beam-7"]["status"] == 0xC224
    reports = [(obj["uid"], obj["sop_class"], obj["event_type"], obj.get("result"))
               for obj in objects if obj["op"] == "N-EVENT-REPORT"]
    assert reports == [
        (uid, RT_CONVENTIONAL, 1, None), (uid, RT_CONVENTIONAL, 2, VERIFIED),
        (uid, RT_CONVENTIONAL, 1, None), (uid, RT_CONVENTIONAL, 2, NOT_VERIFIED),
        (ion_uid, RT_ION, 1, None), (ion_uid, RT_ION, 2, VERIFIED),
    ]
    assert list(verifier.instances) == [ion_uid]


def test_dicomnet_rt_verification_to_pynetdicom(
    pynetdicom_python: str, peers: PeerGroup, aes: list[Any]
) -> None:
    scp = peers.start(
        python_runner(SCRIPTS / "pynetdicom_rt_verification_scp.py", PYNETDICOM_SCP,
                      python=pynetdicom_python),
        name="pynetdicom SCP",
        stdin=True,
    )
    port = int(scp.wait_for_line(r"listening on port (\d+)").group(1))
    results = VerificationResults()
    scu = dicomnet_ae(SCU_AET, requested=(RT_CONVENTIONAL, RT_ION))
    aes.append(scu)
    assoc = scu.associate("127.0.0.1", port, ae_title=PYNETDICOM_SCP,
                          evt_handlers=[(evt.EVT_N_EVENT_REPORT, results)])
    assert assoc.is_established, scp.output()
    uid = generate_uid()
    status, _ = assoc.send_n_create(creation_attributes(RT_CONVENTIONAL, RT_PLANS[0], "P-1"),
                                    RT_CONVENTIONAL, uid)
    assert status.Status == 0x0000, scp.output()
    assert assoc.send_n_set(rt_beam(1, 180.2), RT_CONVENTIONAL, uid)[0].Status == 0x0000
    status, _ = assoc.send_n_action(None, 1, RT_CONVENTIONAL, uid)
    assert status.Status == 0x0000 and status.ActionTypeID == 1
    assert results.wait(uid, WAIT) == VERIFIED, scp.output()
    assert results.pending(uid) == 1
    status, got = assoc.send_n_get([0x3008002C], RT_CONVENTIONAL, uid)
    assert status.Status == 0x0000 and got.TreatmentVerificationStatus == VERIFIED
    assert assoc.send_n_set(rt_beam(1, 175.0), RT_CONVENTIONAL, uid)[0].Status == 0x0000
    assert assoc.send_n_action(None, 1, RT_CONVENTIONAL, uid)[0].Status == 0x0000
    assert results.wait(uid, WAIT) == NOT_VERIFIED, scp.output()
    assert assoc.send_n_set(rt_beam(7, 180.0), RT_CONVENTIONAL, uid)[0].Status == 0xC224
    assert assoc.send_n_delete(RT_CONVENTIONAL, uid).Status == 0x0000
    assert assoc.send_n_get([0x3008002C], RT_CONVENTIONAL, uid)[0].Status == 0xC112
    assert assoc.send_n_action(None, 1, RT_CONVENTIONAL, uid)[0].Status == 0xC112
    unknown = creation_attributes(RT_CONVENTIONAL, "1.2.826.0.1.3680043.8.498.77099", "P-1")
    assert assoc.send_n_create(unknown, RT_CONVENTIONAL, generate_uid())[0].Status == 0xC227
    ion_uid = generate_uid()
    status, _ = assoc.send_n_create(creation_attributes(RT_ION, RT_PLANS[1], "P-1"), RT_ION,
                                    ion_uid)
    assert status.Status == 0x0000
    assert assoc.send_n_set(rt_beam(1, 180.0, ion=True), RT_ION, ion_uid)[0].Status == 0x0000
    assert assoc.send_n_action(None, 1, RT_ION, ion_uid)[0].Status == 0x0000
    assert results.wait(ion_uid, WAIT) == VERIFIED, scp.output()
    assoc.release()
    scp.close_stdin()
    assert scp.wait() == 0
    objects = lines("\n".join(scp.stdout_lines))
    assert [obj["op"] for obj in objects if obj["op"] != "report"] == [
        "N-CREATE", "N-SET", "N-ACTION", "N-GET", "N-SET", "N-ACTION", "N-SET", "N-DELETE",
        "N-GET", "N-ACTION", "N-CREATE", "N-CREATE", "N-SET", "N-ACTION",
    ]
    assert [(obj["event_type"], obj.get("result"), obj["status"])
            for obj in objects if obj["op"] == "report"] == [
        (1, None, 0), (2, VERIFIED, 0), (1, None, 0), (2, NOT_VERIFIED, 0), (1, None, 0),
        (2, VERIFIED, 0),
    ]


# -- Orthanc -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orthanc_instances() -> Iterator[tuple[PeerGroup, dict[str, Orthanc]]]:
    """One Orthanc for the whole module (Orthanc takes seconds to stop)."""
    group = PeerGroup()
    try:
        yield group, {}
    finally:
        group.stop_all()


@pytest.fixture
def orthanc_factory(
    request: pytest.FixtureRequest,
    orthanc_binary: str,
    orthanc_instances: tuple[PeerGroup, dict[str, Orthanc]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Orthanc:
    """The module's Orthanc, emptied (the name keeps its users out of the leak check:
    its pipes outlive the test on purpose, see tests/interop/conftest.py)."""
    group, instances = orthanc_instances
    if "default" not in instances:
        instances["default"] = Orthanc(group, orthanc_binary, tmp_path_factory.mktemp("orthanc"))
    orthanc = instances["default"]
    orthanc.clear()
    watch(request.node, orthanc.proc)
    return orthanc


def ct_instance() -> Dataset:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "COMMIT-1"
    ds.PatientName = "Commit^Me"
    ds.Modality = "CT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def test_dicomnet_commitment_to_orthanc(orthanc_factory: Orthanc, aes: list[Any]) -> None:
    """Orthanc, as SCP, reports on a new association to the modality it knows."""
    orthanc = orthanc_factory
    results = CommitmentResults()
    scu = dicomnet_ae(SCU_AET, requested=(SC, CT), supported=((SC, False, True),))
    aes.append(scu)
    report_port = serve(scu, [(evt.EVT_N_EVENT_REPORT, results)])
    code, body = orthanc.rest("PUT", "/modalities/dicomnet",
                              {"AET": SCU_AET, "Host": "127.0.0.1", "Port": report_port})
    assert code == 200, body
    assoc = scu.associate("127.0.0.1", orthanc.dicom_port, ae_title=Orthanc.AET,
                          evt_handlers=[(evt.EVT_N_EVENT_REPORT, results)])
    assert assoc.is_established, orthanc.proc.output()
    stored = ct_instance()
    assert assoc.send_c_store(stored).Status == 0x0000
    missing = (CT, generate_uid())
    status, request = request_commitment(assoc, [stored, missing])
    assert status.Status == 0x0000
    result = results.wait(request.transaction_uid, WAIT)
    assoc.release()
    assert result is not None, orthanc.proc.output()
    assert [r.sop_instance_uid for r in result.committed] == [stored.SOPInstanceUID]
    assert [(r.sop_instance_uid, r.failure_reason) for r in result.failed] == [
        (missing[1], 0x0112)
    ]


def test_orthanc_commitment_to_dicomnet(orthanc_factory: Orthanc, aes: list[Any]) -> None:
    """Orthanc, as SCU, releases after the N-ACTION-RSP: dicomnet reports on a new
    association to Orthanc's DICOM port."""
    orthanc = orthanc_factory
    scp = dicomnet_ae(SCP_AET, supported=(SC,))
    aes.append(scp)
    scp.report_destinations = {Orthanc.AET: ("127.0.0.1", orthanc.dicom_port)}
    port = serve(scp, [(EVT_STORAGE_COMMITMENT, commit_all_but_99)])
    code, body = orthanc.rest("PUT", "/modalities/archive",
                              {"AET": SCP_AET, "Host": "127.0.0.1", "Port": port})
    assert code == 200, body
    serial = uuid.uuid4().int % 10**12
    kept, lost = f"{ROOT}.{serial}.1", f"{ROOT}.{serial}.99"
    code, job = orthanc.rest("POST", "/modalities/archive/storage-commitment", {
        "DicomInstances": [[CT, kept], {"SOPClassUID": CT, "SOPInstanceUID": lost}],
        "Timeout": 10,
    })
    assert code == 200, job
    deadline = time.monotonic() + WAIT
    while True:  # Orthanc's REST API offers no way to wait for the report
        code, report = orthanc.rest("GET", job["Path"])
        assert code == 200, report
        if report["Status"] != "Pending" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert report["Status"] == "Failure", (report, orthanc.proc.output())
    assert report["RemoteAET"] == SCP_AET
    assert [item["SOPInstanceUID"] for item in report["Success"]] == [kept]
    assert [(item["SOPInstanceUID"], item["FailureReason"]) for item in report["Failures"]] == [
        (lost, 0x0112)
    ]
