"""Storage Commitment Push Model, dicomnet SCU <-> dicomnet SCP (PS3.4 Annex J).

The request (N-ACTION), the checks before any handler, the two SCP contracts
(``EVT_N_ACTION`` alone as with pynetdicom; ``EVT_STORAGE_COMMITMENT`` with the
result reported by the plugin), the report on the association of the request
and on one the SCP opens (proposing the SCP role), the address hooks, and the
failures that must still give the SCU a result.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import dimse_messages as dm
from dicomnet import evt
from dicomnet.hookspecs import hookimpl
from dicomnet.plugins.storage_commitment import (
    EVENT_FAILURES_EXIST,
    EVENT_SUCCESSFUL,
    EVT_STORAGE_COMMITMENT,
    PUSH_MODEL_INSTANCE,
    REPORT_LATER,
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_PUSH_MODEL,
    CommitmentRequest,
    CommitmentResult,
    CommitmentResults,
    FailedReference,
    Reference,
    ReportDestinations,
    request_commitment,
    send_commitment_report,
)

from .conftest import WAIT, Established, associate, serve

SC = STORAGE_COMMITMENT_PUSH_MODEL
CT = "1.2.840.10008.5.1.4.1.1.2"
ARCHIVED = {f"1.2.826.0.1.3680043.8.498.88001.{n}" for n in (1, 2, 3)}
MISSING = "1.2.826.0.1.3680043.8.498.88001.99"


def refs(*uids: str) -> list[tuple[str, str]]:
    return [(CT, uid) for uid in uids]


def archive_commit(event: Any) -> Any:
    """An archive's EVT_STORAGE_COMMITMENT handler: what it holds is committed."""
    commitment = event.commitment
    return commitment.result(
        failed={r.sop_instance_uid: 0x0112 for r in commitment.references
                if r.sop_instance_uid not in ARCHIVED}
    )


class Setup:
    """A modality (SCU, with a server for reports) and an archive (SCP) on loopback."""

    def __init__(self, make_ae: Any, handlers: list[Any], *, archive_plugins: Any = None,
                 **archive_attributes: Any) -> None:
        self.results = CommitmentResults()
        self.report_associations: list[Any] = []
        self.modality = make_ae(
            "MODALITY", requested=[SC], supported=[(SC, False, True)]
        )
        self.modality_port = serve(
            self.modality, [(evt.EVT_N_EVENT_REPORT, self.on_report)]
        )
        self.archive = make_ae("ARCHIVE", supported=[SC], plugins=archive_plugins,
                               **archive_attributes)
        self.established = Established()
        self.archive_port = serve(self.archive, [*handlers, self.established.binding()])

    def on_report(self, event: Any) -> Any:
        """The modality's server: record which association brought the report."""
        self.report_associations.append(
            (event.assoc.is_acceptor, event.context.as_scu, event.context.as_scp)
        )
        return self.results(event)

    def associate(self, **kwargs: Any) -> Any:
        return associate(self.modality, self.archive_port, "ARCHIVE", **kwargs)


@pytest.fixture
def setup(make_ae: Any) -> Setup:
    s = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, archive_commit)])
    s.archive.report_destinations = {"MODALITY": ("127.0.0.1", s.modality_port)}
    return s


def test_the_plugin_declares_the_push_model() -> None:
    assert dict(STORAGE_COMMITMENT.sop_classes) == {SC: "StorageCommitmentPushModel"}
    assert PUSH_MODEL_INSTANCE == "1.2.840.10008.1.20.1.1"
    assert EVT_STORAGE_COMMITMENT in STORAGE_COMMITMENT.events


def test_report_on_the_association_of_the_request(setup: Setup) -> None:
    assoc = setup.associate(evt_handlers=[(evt.EVT_N_EVENT_REPORT, setup.on_report)])
    uids = [*sorted(ARCHIVED)[:2], MISSING]
    status, request = request_commitment(assoc, refs(*uids))
    assert status.Status == 0x0000 and status.ActionTypeID == 1
    result = setup.results.wait(request.transaction_uid, WAIT)
    assert result is not None
    assert result.event_type == EVENT_FAILURES_EXIST and not result.success
    assert {r.sop_instance_uid for r in result.committed} == set(uids[:2])
    assert result.failed == (FailedReference(CT, MISSING, 0x0112),)
    assert setup.report_associations == [(False, True, False)]  # our requestor association
    assoc.release()


def test_report_on_a_new_association_when_the_scu_released(make_ae: Any) -> None:
    """PS3.4 J.3.3.1.2-3: the SCU may release after the N-ACTION-RSP; the SCP then opens an
    association to it, proposing the SCP role for itself, which the SCU accepts."""
    releasing = threading.Event()

    def commit_once_released(event: Any) -> Any:
        releasing.wait(WAIT)  # the SCU has sent its A-RELEASE-RQ
        return archive_commit(event)

    setup = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, commit_once_released)])
    setup.archive.report_destinations = {"MODALITY": ("127.0.0.1", setup.modality_port)}

    def on_sent(event: Any) -> None:
        if event.primitive == "A-RELEASE-RQ":
            releasing.set()

    assoc = setup.associate(evt_handlers=[(evt.EVT_ACSE_SENT, on_sent)])
    status, request = request_commitment(assoc, refs(*sorted(ARCHIVED)))
    assert status.Status == 0x0000
    assoc.release()
    result = setup.results.wait(request.transaction_uid, WAIT)
    assert result is not None and result.success and result.event_type == EVENT_SUCCESSFUL
    assert len(result.committed) == 3
    # on the modality's server, as acceptor; the archive was granted the SCP role
    assert setup.report_associations == [(True, True, False)]


def test_a_report_refused_on_the_request_association_comes_again_on_a_new_one(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    """An SCU with no handler on the association of its request answers 0110H there (as
    pynetdicom's do); it handles reports on the associations it accepts (PS3.4 J.3.3.1.3)."""
    assoc = setup.associate()  # no EVT_N_EVENT_REPORT handler on it
    with caplog.at_level(logging.INFO, "dicomnet.nservices"):
        status, request = request_commitment(assoc, refs(*sorted(ARCHIVED)))
        result = setup.results.wait(request.transaction_uid, WAIT)
    assert status.Status == 0x0000
    assert result is not None and result.success
    assert setup.report_associations == [(True, True, False)]
    assert "refused (0x0110)" in caplog.text
    assoc.release()


def test_a_refused_report_without_an_address_returns_the_refusal(
    make_ae: Any, caplog: pytest.LogCaptureFixture
) -> None:
    reported: list[Any] = []
    done = threading.Event()

    def commit_and_keep(event: Any) -> Any:
        reported.append(
            send_commitment_report(event.assoc.ae, event.commitment.result(), "MODALITY",
                                   assoc=event.assoc)
        )
        done.set()
        return REPORT_LATER

    setup = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, commit_and_keep)])  # no destinations
    assoc = setup.associate()
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        request_commitment(assoc, refs(MISSING))
        assert done.wait(WAIT)
    assoc.release()
    assert [status.Status for status in reported] == [0x0110]
    assert "address is unknown" in caplog.text


def test_report_later_from_the_application(make_ae: Any) -> None:
    pending: list[Any] = []

    def later(event: Any) -> Any:
        pending.append((event.commitment, event.assoc))
        return REPORT_LATER

    setup = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, later)],
                  archive_plugins=None)
    table = ReportDestinations({"MODALITY": ("127.0.0.1", setup.modality_port)})
    # a ReportDestinations registered as a plugin answers the resolving hook
    archive = make_ae("ARCHIVE2", supported=[SC],
                      plugins=["storage_commitment", table])
    port = serve(archive, [(EVT_STORAGE_COMMITMENT, later)])
    assoc = associate(setup.modality, port, "ARCHIVE2")
    status, request = request_commitment(assoc, refs(*sorted(ARCHIVED)))
    assoc.release()
    assert status.Status == 0x0000 and len(pending) == 1
    commitment, scp_assoc = pending[0]
    assert commitment == request
    assert not scp_assoc.is_established  # released: a new association is needed
    report = send_commitment_report(archive, commitment.result(), "MODALITY", assoc=scp_assoc)
    assert report.Status == 0x0000
    result = setup.results.get(request.transaction_uid)
    assert result is not None and result.success


def test_a_failing_commit_handler_reports_every_instance_failed(
    make_ae: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> Any:
        raise OSError("the archive's disk is gone")

    setup = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, broken)])
    assoc = setup.associate(evt_handlers=[(evt.EVT_N_EVENT_REPORT, setup.results)])
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        status, request = request_commitment(assoc, refs(*sorted(ARCHIVED)))
        result = setup.results.wait(request.transaction_uid, WAIT)
    assert status.Status == 0x0000  # the request was received
    assert result is not None and result.committed == ()
    assert {r.failure_reason for r in result.failed} == {0x0110} and len(result.failed) == 3
    assert "the archive's disk is gone" in caplog.text
    assoc.release()


@pytest.mark.parametrize(
    "answer", [None, "all good", CommitmentResult("1.2.3.4")], ids=["none", "str", "other-uid"]
)
def test_an_invalid_commit_answer_reports_every_instance_failed(
    make_ae: Any, answer: Any
) -> None:
    setup = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, lambda event: answer)])
    assoc = setup.associate(evt_handlers=[(evt.EVT_N_EVENT_REPORT, setup.results)])
    _status, request = request_commitment(assoc, refs(MISSING))
    result = setup.results.wait(request.transaction_uid, WAIT)
    assert result is not None and result.failed == (FailedReference(CT, MISSING, 0x0110),)
    assoc.release()


def test_references_left_out_of_the_result_are_failed(make_ae: Any) -> None:
    """PS3.4 J.3.3.1.2: every requested instance is in the report."""
    def partial(event: Any) -> Any:
        first = event.commitment.references[0]
        return CommitmentResult(event.commitment.transaction_uid, [first])

    setup = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, partial)])
    assoc = setup.associate(evt_handlers=[(evt.EVT_N_EVENT_REPORT, setup.results)])
    uids = sorted(ARCHIVED)
    _, request = request_commitment(assoc, refs(*uids))
    result = setup.results.wait(request.transaction_uid, WAIT)
    assert result is not None
    assert [r.sop_instance_uid for r in result.committed] == uids[:1]
    assert [(r.sop_instance_uid, r.failure_reason) for r in result.failed] == [
        (uid, 0x0110) for uid in uids[1:]
    ]
    assoc.release()


def test_the_handler_may_answer_the_event_information(make_ae: Any) -> None:
    def as_dataset(event: Any) -> Any:
        return event.commitment.result(failed={MISSING: 0x0213}).to_dataset()

    setup = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, as_dataset)])
    assoc = setup.associate(evt_handlers=[(evt.EVT_N_EVENT_REPORT, setup.results)])
    _, request = request_commitment(assoc, refs(MISSING))
    result = setup.results.wait(request.transaction_uid, WAIT)
    assert result is not None and result.event_type == EVENT_FAILURES_EXIST
    assert result.failed == (FailedReference(CT, MISSING, 0x0213),)
    assoc.release()


def test_evt_n_action_alone_is_pynetdicom_semantics(make_ae: Any) -> None:
    """Without EVT_STORAGE_COMMITMENT the plugin sends no report: the application does."""
    actions: list[Any] = []

    def on_action(event: Any) -> Any:
        actions.append(event.action_information.TransactionUID)
        return 0x0000, None

    sent: list[str] = []
    setup = Setup(make_ae, [
        (evt.EVT_N_ACTION, on_action),
        (evt.EVT_DIMSE_SENT, lambda event: sent.append(event.message.message_name)),
    ])
    assoc = setup.associate()
    status, request = request_commitment(assoc, refs(MISSING))
    assert status.Status == 0x0000 and actions == [request.transaction_uid]
    assoc.release()  # the archive answers the release once its SCP has returned
    assert sent == ["N-ACTION-RSP"]


def test_evt_n_action_refusal_stops_the_commitment(make_ae: Any) -> None:
    committed: list[Any] = []
    setup = Setup(make_ae, [
        (evt.EVT_N_ACTION, lambda event: (0x0213, None)),
        (EVT_STORAGE_COMMITMENT, lambda event: committed.append(event) or REPORT_LATER),
    ])
    assoc = setup.associate()
    status, _ = request_commitment(assoc, refs(MISSING))
    assert status.Status == 0x0213
    assoc.release()
    assert committed == []


def test_no_handler_is_processing_failure(make_ae: Any) -> None:
    setup = Setup(make_ae, [])
    assoc = setup.associate()
    status, _ = request_commitment(assoc, refs(MISSING))
    assert status.Status == 0x0110
    assoc.release()


def test_requests_are_checked_before_any_handler(setup: Setup) -> None:
    """PS3.4 J.3.2.1: Action Type ID 1, the well-known instance, a valid Action Information."""
    assoc = setup.associate()
    good = CommitmentRequest.of(refs(MISSING)).to_dataset()
    status, _ = assoc.send_n_action(good, 2, SC, PUSH_MODEL_INSTANCE)
    assert status.Status == 0x0123  # No such action
    status, _ = assoc.send_n_action(good, 1, SC, generate_uid())
    assert status.Status == 0x0112  # No such SOP instance
    no_uid = Dataset()
    no_uid.ReferencedSOPSequence = good.ReferencedSOPSequence
    status, _ = assoc.send_n_action(no_uid, 1, SC, PUSH_MODEL_INSTANCE)
    assert status.Status == 0x0115 and "Transaction UID" in status.ErrorComment
    empty = Dataset()
    empty.TransactionUID = generate_uid()
    empty.ReferencedSOPSequence = []
    status, _ = assoc.send_n_action(empty, 1, SC, PUSH_MODEL_INSTANCE)
    assert status.Status == 0x0115
    incomplete = Dataset()
    incomplete.TransactionUID = generate_uid()
    item = Dataset()
    item.ReferencedSOPClassUID = CT
    incomplete.ReferencedSOPSequence = [item]
    status, _ = assoc.send_n_action(incomplete, 1, SC, PUSH_MODEL_INSTANCE)
    assert status.Status == 0x0115
    status, _ = assoc.send_n_action(None, 1, SC, PUSH_MODEL_INSTANCE)
    assert status.Status == 0x0115
    assert setup.results.wait("none", 0) is None and len(setup.results) == 0
    assoc.release()


def test_the_scu_refuses_an_unknown_event_type(setup: Setup) -> None:
    assoc = setup.associate(evt_handlers=[(evt.EVT_N_EVENT_REPORT, setup.results)])
    acceptor = setup.established.next()
    info = CommitmentRequest.of(refs(MISSING)).result().to_dataset()
    status, _ = acceptor.send_n_event_report(info, 3, SC, PUSH_MODEL_INSTANCE)
    assert status.Status == 0x0113
    status, _ = acceptor.send_n_event_report(Dataset(), 1, SC, PUSH_MODEL_INSTANCE)
    assert status.Status == 0x0115  # unreadable: no Transaction UID
    assert len(setup.results) == 0
    status, _ = acceptor.send_n_event_report(info, 1, SC, PUSH_MODEL_INSTANCE)
    assert status.Status == 0x0000 and len(setup.results) == 1
    assoc.release()


def test_an_unknown_scu_gets_no_report_and_a_log_record(
    make_ae: Any, caplog: pytest.LogCaptureFixture
) -> None:
    setup = Setup(make_ae, [(EVT_STORAGE_COMMITMENT, lambda event: REPORT_LATER)])
    result = CommitmentRequest.of(refs(MISSING)).result()
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        status = send_commitment_report(setup.archive, result, "STRANGER")
    assert status == Dataset()
    assert "address is unknown" in caplog.text


def test_addresses_from_hooks_and_tables(make_ae: Any) -> None:
    asked: list[tuple[Any, str, str]] = []
    setup = Setup(make_ae, [])

    class Directory:
        @hookimpl
        def dicomnet_resolve_report_destination(
            self, assoc: Any, ae_title: str, sop_class_uid: str
        ) -> Any:
            asked.append((assoc, ae_title, sop_class_uid))
            return ("127.0.0.1", setup.modality_port) if ae_title == "MODALITY" else None

    archive = make_ae("ARCHIVE", supported=[SC], plugins=["storage_commitment", Directory()])
    request = CommitmentRequest.of(refs(MISSING))
    assert send_commitment_report(archive, request.result(), "MODALITY").Status == 0
    assert asked == [(None, "MODALITY", SC)]

    # the AE's tables: report_destinations first, then move_destinations
    other = make_ae("ARCHIVE3", supported=[SC])
    other.move_destinations = {"MODALITY": ("127.0.0.1", setup.modality_port)}
    second = CommitmentRequest.of(refs(MISSING))
    assert send_commitment_report(other, second.result(), "MODALITY").Status == 0
    assert setup.results.get(second.transaction_uid) is not None
    other.report_destinations = {"MODALITY": ("127.0.0.1", 9)}  # nothing listens there
    third = CommitmentRequest.of(refs(MISSING))
    assert send_commitment_report(other, third.result(), "MODALITY") == Dataset()


# -- values ------------------------------------------------------------------------------------


def test_request_and_result_round_trip() -> None:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = MISSING
    request = CommitmentRequest.of([ds, (CT, "1.2.3"), Reference(CT, "1.2.4")], "1.2.99")
    assert request.transaction_uid == "1.2.99"
    assert CommitmentRequest.from_dataset(request.to_dataset()) == request
    result = request.result(failed=[FailedReference(CT, "1.2.3", 0x0122)])
    assert [r.sop_instance_uid for r in result.committed] == [MISSING, "1.2.4"]
    info = result.to_dataset()
    assert info.TransactionUID == "1.2.99" and info.FailedSOPSequence[0].FailureReason == 0x0122
    assert CommitmentResult.from_dataset(info) == result
    everything = request.result()
    assert "FailedSOPSequence" not in everything.to_dataset()
    assert everything.event_type == EVENT_SUCCESSFUL
    nothing = request.result(failed=dict.fromkeys([MISSING, "1.2.3", "1.2.4"], 0x0112))
    assert "ReferencedSOPSequence" not in nothing.to_dataset()
    with pytest.raises(ValueError):
        CommitmentRequest.of([])
    with pytest.raises(ValueError):
        CommitmentResult.from_dataset(Dataset())


def test_the_results_mailbox_refuses_other_reports() -> None:
    results = CommitmentResults()

    class FakeEvent:
        request = dm.NEventReportRQ(
            MessageID=1, AffectedSOPClassUID="1.2.840.10008.3.1.2.3.5",
            AffectedSOPInstanceUID="1.2.3", EventTypeID=1,
        )
        event_information = Dataset()

    status, reply = results(FakeEvent())
    assert status.Status == 0x0118 and reply is None
    assert results.wait("1.2.3", 0) is None
