"""The generic DIMSE-N machinery, both sides (PS3.7 10, Annex C).

SCU: ``Association.send_n_*`` return what pynetdicom documents -- a status
Dataset (empty without a valid response), with the reply data set for Success
and Warning, ``None`` otherwise -- and raise ``RuntimeError`` without an
association, ``ValueError`` without a context or with arguments that cannot be
sent. SCP: :mod:`dicomnet.plugins._n_engine` turns handler answers into
responses, refuses what PS3.7 says to refuse, and turns every failure of the
application into 0110H and a log record, never a dead association.

The SCP side runs a private service class (``TEST_SERVICE``) built with the
engine, so that every request type can be exercised on one SOP class.
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import dimse_messages as dm
from dicomnet import evt
from dicomnet.hookspecs import hookimpl
from dicomnet.plugins._n_engine import Rules, n_service_class, refusal
from dicomnet.service import ServiceCall, ServiceClass
from dicomnet.status import StatusTable

from .conftest import WAIT, Established, associate, serve

#: private SOP classes (under pydicom's test root) served by the test service class
WIDGET = "1.2.826.0.1.3680043.8.498.77001.1"
GADGET = "1.2.826.0.1.3680043.8.498.77001.2"
META = "1.2.826.0.1.3680043.8.498.77001.9"
NOT_IN_META = "1.2.826.0.1.3680043.8.498.77001.3"
#: Rows (0028,0010), US, with 3 bytes: pydicom refuses to decode it
UNDECODABLE = b"\x28\x00\x10\x00\x03\x00\x00\x00abc"
ALL_N = (dm.NCreateRQ, dm.NSetRQ, dm.NGetRQ, dm.NActionRQ, dm.NDeleteRQ, dm.NEventReportRQ)


def _refuse_action_7(call: ServiceCall, dataset: Dataset | None) -> Any:
    if getattr(call.request, "ActionTypeID", None) == 7:
        return refusal(0x0123, "action 7 is refused by the check")
    return None


TEST_SERVICE: ServiceClass = n_service_class(
    "test_widgets",
    sop_classes={
        WIDGET: "TestWidget",
        GADGET: "TestGadget",
        META: "TestMeta",
        NOT_IN_META: "TestOutsider",
    },
    status_table=StatusTable("Test widgets", {0xB123: ("Warning", "Widget coerced")}),
    operations={WIDGET: ALL_N, GADGET: (dm.NGetRQ,), NOT_IN_META: (dm.NGetRQ,)},
    meta_sop_classes={META: (WIDGET, GADGET)},
    rules={dm.NActionRQ: Rules(check=_refuse_action_7)},
    reference="tests",
)


class TestPlugin:
    @hookimpl
    def dicomnet_service_classes(self) -> list[ServiceClass]:
        return [TEST_SERVICE]


class Recorder:
    """Handlers for every N-event that record the event and answer what the test set."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.answers: dict[Any, Any] = {}
        self.seen = threading.Event()

    def handler(self, event: Any) -> Any:
        self.events.append(event)
        self.seen.set()
        answer = self.answers.get(event.event, (0x0000, None))
        if isinstance(answer, BaseException):
            raise answer
        return answer(event) if callable(answer) else answer

    def bindings(self) -> list[Any]:
        return [
            (event, self.handler)
            for event in (
                evt.EVT_N_CREATE, evt.EVT_N_SET, evt.EVT_N_GET, evt.EVT_N_ACTION,
                evt.EVT_N_DELETE, evt.EVT_N_EVENT_REPORT,
            )
        ]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def widgets(make_ae: Any, recorder: Recorder) -> Any:
    """An established association from an SCU to the test SCP (handlers: ``recorder``)."""
    scp = make_ae("WIDGETS", supported=[WIDGET, GADGET, META], plugins=[TestPlugin()])
    port = serve(scp, recorder.bindings())
    scu = make_ae("SCU", requested=[WIDGET, GADGET, META], plugins=[TestPlugin()])
    return associate(scu, port, "WIDGETS")


def unencodable_dataset() -> Dataset:
    """Rows (0028,0010) = 70000, which does not fit in an US."""
    ds = Dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.add_new(0x00280010, "US", 70000)
    return ds


def info(**elements: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


# -- the SCU API ---------------------------------------------------------------------------------


def test_send_n_methods_need_an_established_association(make_ae: Any) -> None:
    scu = make_ae("SCU", requested=[WIDGET])
    assoc = scu.associate("127.0.0.1", 9, ae_title="NOBODY")  # nothing listens on port 9
    assert not assoc.is_established
    uid = generate_uid()
    calls = [
        lambda: assoc.send_n_action(None, 1, WIDGET, uid),
        lambda: assoc.send_n_create(None, WIDGET, uid),
        lambda: assoc.send_n_delete(WIDGET, uid),
        lambda: assoc.send_n_event_report(None, 1, WIDGET, uid),
        lambda: assoc.send_n_get([], WIDGET, uid),
        lambda: assoc.send_n_set(Dataset(), WIDGET, uid),
    ]
    for call in calls:
        with pytest.raises(RuntimeError):
            call()


def test_send_n_methods_need_an_accepted_context(widgets: Any) -> None:
    other = "1.2.826.0.1.3680043.8.498.77001.55"
    uid = generate_uid()
    calls = [
        lambda: widgets.send_n_action(None, 1, other, uid),
        lambda: widgets.send_n_create(None, other, uid),
        lambda: widgets.send_n_delete(other, uid),
        lambda: widgets.send_n_event_report(None, 1, other, uid),
        lambda: widgets.send_n_get([], other, uid),
        lambda: widgets.send_n_set(Dataset(), other, uid),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="No presentation context"):
            call()
    assert widgets.is_established  # nothing was sent


def test_arguments_that_cannot_be_sent_raise_value_error(widgets: Any) -> None:
    uid = generate_uid()
    unencodable = unencodable_dataset()
    with pytest.raises(ValueError, match="encode"):
        widgets.send_n_create(unencodable, WIDGET, uid)
    with pytest.raises(ValueError, match="action_type"):
        widgets.send_n_action(None, 0x10000, WIDGET, uid)
    with pytest.raises(ValueError, match="event_type"):
        widgets.send_n_event_report(None, -1, WIDGET, uid)
    with pytest.raises(ValueError, match="msg_id"):
        widgets.send_n_delete(WIDGET, uid, msg_id=70000)
    with pytest.raises(ValueError, match="identifier_list"):
        widgets.send_n_get(["not a tag"], WIDGET, uid)
    with pytest.raises(ValueError, match="Modification List"):
        widgets.send_n_set(None, WIDGET, uid)
    assert widgets.send_n_delete(WIDGET, uid).Status == 0x0000  # still usable


def test_success_returns_the_status_and_the_reply(widgets: Any, recorder: Recorder) -> None:
    uid = generate_uid()
    recorder.answers[evt.EVT_N_SET] = (0x0000, info(PatientName="Coerced^Name"))
    status, reply = widgets.send_n_set(info(PatientName="Set^Name"), WIDGET, uid, msg_id=7)
    assert status.Status == 0x0000
    assert status.AffectedSOPClassUID == WIDGET and status.AffectedSOPInstanceUID == uid
    assert reply.PatientName == "Coerced^Name"
    event = recorder.events[-1]
    assert event.modification_list.PatientName == "Set^Name"
    assert event.message_id == 7
    assert event.request.RequestedSOPInstanceUID == uid


def test_success_without_a_reply_gives_an_empty_dataset(widgets: Any, recorder: Recorder) -> None:
    uid = generate_uid()
    for call in (
        lambda: widgets.send_n_action(None, 3, WIDGET, uid),
        lambda: widgets.send_n_create(None, WIDGET, uid),
        lambda: widgets.send_n_get([], WIDGET, uid),
        lambda: widgets.send_n_event_report(None, 2, WIDGET, uid),
    ):
        status, reply = call()
        assert status.Status == 0x0000
        assert isinstance(reply, Dataset) and len(reply) == 0


def test_failure_returns_no_reply(widgets: Any, recorder: Recorder) -> None:
    recorder.answers[evt.EVT_N_GET] = (0x0112, info(PatientName="never sent"))
    status, reply = widgets.send_n_get([0x00100010], WIDGET, generate_uid())
    assert status.Status == 0x0112
    assert reply is None


def test_warning_returns_the_reply(widgets: Any, recorder: Recorder) -> None:
    recorder.answers[evt.EVT_N_GET] = (0x0001, info(PatientID="42"))
    status, reply = widgets.send_n_get([0x00100020, 0x00100010], WIDGET, generate_uid())
    assert status.Status == 0x0001
    assert reply.PatientID == "42"
    assert recorder.events[-1].attribute_identifiers == [0x00100020, 0x00100010]


def test_action_and_event_type_ids_travel_both_ways(widgets: Any, recorder: Recorder) -> None:
    uid = generate_uid()
    recorder.answers[evt.EVT_N_ACTION] = (0x0000, info(PatientID="reply"))
    status, reply = widgets.send_n_action(info(PatientID="arg"), 5, WIDGET, uid)
    assert status.ActionTypeID == 5 and reply.PatientID == "reply"
    event = recorder.events[-1]
    assert event.action_type == 5 and event.action_information.PatientID == "arg"
    status, _ = widgets.send_n_event_report(info(PatientID="what"), 9, WIDGET, uid)
    assert status.EventTypeID == 9
    assert recorder.events[-1].event_type == 9
    assert recorder.events[-1].event_information.PatientID == "what"


def test_n_create_returns_the_instance_uid_the_scp_chose(
    widgets: Any, recorder: Recorder
) -> None:
    chosen = generate_uid()
    recorder.answers[evt.EVT_N_CREATE] = (0x0000, info(AffectedSOPInstanceUID=chosen,
                                                       PatientName="Created"))
    status, reply = widgets.send_n_create(info(PatientName="Created"), WIDGET)
    assert status.Status == 0x0000 and status.AffectedSOPInstanceUID == chosen
    assert "AffectedSOPInstanceUID" not in reply and reply.PatientName == "Created"
    assert recorder.events[-1].request.AffectedSOPInstanceUID is None

    # given in the status data set instead
    other = generate_uid()
    recorder.answers[evt.EVT_N_CREATE] = (info(Status=0, AffectedSOPInstanceUID=other), None)
    status, _ = widgets.send_n_create(None, WIDGET)
    assert status.AffectedSOPInstanceUID == other


def test_n_create_without_a_uid_from_anyone_fails(
    widgets: Any, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.answers[evt.EVT_N_CREATE] = (0x0000, info(PatientName="No^Uid"))
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        status, reply = widgets.send_n_create(None, WIDGET)
    assert status.Status == 0x0110 and reply is None
    assert "no Affected SOP Instance UID" in caplog.text


def test_the_status_dataset_carries_the_status_details(widgets: Any, recorder: Recorder) -> None:
    recorder.answers[evt.EVT_N_SET] = (
        info(Status=0x0106, ErrorComment="bad value", ErrorID=0x1234,
             OffendingElement=[0x00100010, 0x00100020]),
        None,
    )
    status, reply = widgets.send_n_set(info(PatientName="X"), WIDGET, generate_uid())
    assert status.Status == 0x0106
    assert status.ErrorComment == "bad value" and status.ErrorID == 0x1234
    assert list(status.OffendingElement) == [0x00100010, 0x00100020]
    assert reply is None

    recorder.answers[evt.EVT_N_GET] = (
        info(Status=0x0107, AttributeIdentifierList=[0x00100030]), info(PatientID="1")
    )
    status, reply = widgets.send_n_get([0x00100020, 0x00100030], WIDGET, generate_uid())
    assert status.Status == 0x0107 and status.AttributeIdentifierList == 0x00100030
    assert reply.PatientID == "1"


def test_invalid_attribute_value_may_carry_the_attribute_list(
    widgets: Any, recorder: Recorder
) -> None:
    """PS3.7 C.5: 0106H's related field is the Attribute List with the invalid values."""
    recorder.answers[evt.EVT_N_SET] = (0x0106, info(PatientSex="Q"))
    uid = generate_uid()
    context = widgets._context_for(WIDGET)
    items = list(widgets._exchange(
        context,
        dm.NSetRQ(MessageID=3, RequestedSOPClassUID=WIDGET, RequestedSOPInstanceUID=uid),
        b"\x10\x00\x40\x00\x02\x00\x00\x00Q ",  # (0010,0040) CS "Q " in implicit VR LE
    ))
    response, data = items[-1]
    assert response.Status == 0x0106
    assert data is not None and b"Q" in data


def test_n_delete_returns_a_status(widgets: Any, recorder: Recorder) -> None:
    recorder.answers[evt.EVT_N_DELETE] = 0x0000
    uid = generate_uid()
    status = widgets.send_n_delete(WIDGET, uid)
    assert isinstance(status, Dataset) and status.Status == 0x0000
    recorder.answers[evt.EVT_N_DELETE] = (0x0112, None)
    assert widgets.send_n_delete(WIDGET, uid).Status == 0x0112


def test_a_reply_that_cannot_be_decoded_becomes_processing_failure(
    widgets: Any, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """pynetdicom's rule: Success with an undecodable reply is reported as 0110H."""
    server_call: list[Any] = []

    def garbage(event: Any) -> Any:
        server_call.append(event)
        return 0x0000, None

    recorder.answers[evt.EVT_N_GET] = garbage
    original = ServiceCallSend.patch(UNDECODABLE)
    try:
        with caplog.at_level(logging.ERROR, "dicomnet.assoc"):
            status, reply = widgets.send_n_get([], WIDGET, generate_uid())
    finally:
        ServiceCallSend.restore(original)
    assert server_call
    assert status.Status == 0x0110 and reply is None
    assert "cannot be decoded" in caplog.text


class ServiceCallSend:
    """Make every N-GET-RSP the SCP sends carry ``data`` as its data set (a broken peer)."""

    @staticmethod
    def patch(data: bytes) -> Any:
        from dicomnet import service_provider

        original = service_provider.Call.send

        def send(self: Any, response: Any, dataset: Any = None) -> None:
            if isinstance(response, dm.NGetRSP):
                dataset = data
            original(self, response, dataset)

        service_provider.Call.send = send  # type: ignore[method-assign]
        return original

    @staticmethod
    def restore(original: Any) -> None:
        from dicomnet import service_provider

        service_provider.Call.send = original  # type: ignore[method-assign]


def test_no_response_within_the_dimse_timeout_gives_an_empty_dataset(
    widgets: Any, recorder: Recorder
) -> None:
    release = threading.Event()

    def stall(event: Any) -> Any:
        release.wait(WAIT)
        return 0x0000, None

    recorder.answers[evt.EVT_N_ACTION] = stall
    widgets.dimse_timeout = 0.3
    try:
        status, reply = widgets.send_n_action(None, 1, WIDGET, generate_uid())
    finally:
        release.set()
    assert status == Dataset() and reply is None
    assert widgets.is_aborted


# -- the SCP engine ------------------------------------------------------------------------------


def test_handler_exception_is_processing_failure_and_a_log_record(
    widgets: Any, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.answers[evt.EVT_N_ACTION] = RuntimeError("the widget press jammed")
    with caplog.at_level(logging.ERROR, "dicomnet.service"):
        status, reply = widgets.send_n_action(None, 1, WIDGET, generate_uid())
    assert status.Status == 0x0110 and reply is None
    assert "the widget press jammed" in caplog.text
    assert any(r.exc_info for r in caplog.records)
    # the association lives on
    recorder.answers.pop(evt.EVT_N_ACTION)
    assert widgets.send_n_action(None, 1, WIDGET, generate_uid())[0].Status == 0x0000


@pytest.mark.parametrize(
    "answer",
    [None, "success", (0, None, None), (0, "not a dataset"), Dataset(), 0x12345, True],
    ids=["none", "str", "3-tuple", "bad-dataset", "no-status", "too-big", "bool"],
)
def test_an_invalid_answer_is_processing_failure(
    widgets: Any, recorder: Recorder, caplog: pytest.LogCaptureFixture, answer: Any
) -> None:
    recorder.answers[evt.EVT_N_CREATE] = lambda event: answer
    with caplog.at_level(logging.ERROR, "dicomnet.service"):
        status, reply = widgets.send_n_create(None, WIDGET, generate_uid())
    assert status.Status == 0x0110 and reply is None
    assert "EVT_N_CREATE" in caplog.text


def test_no_handler_bound_is_processing_failure(
    make_ae: Any, caplog: pytest.LogCaptureFixture
) -> None:
    scp = make_ae("WIDGETS", supported=[WIDGET], plugins=[TestPlugin()])
    port = serve(scp)
    scu = make_ae("SCU", requested=[WIDGET], plugins=["verification"])
    assoc = associate(scu, port, "WIDGETS")
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        status = assoc.send_n_delete(WIDGET, generate_uid())
    assert status.Status == 0x0110
    assert "No handler is bound to EVT_N_DELETE" in caplog.text
    assoc.release()


def test_an_unknown_status_is_sent_with_a_warning(
    widgets: Any, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.answers[evt.EVT_N_SET] = (0xB123, None)  # in the service's own table
    with caplog.at_level(logging.WARNING, "dicomnet.service"):
        assert widgets.send_n_set(info(PatientID="1"), WIDGET, generate_uid())[0].Status == 0xB123
    assert "does not know" not in caplog.text
    recorder.answers[evt.EVT_N_SET] = (0xC777, None)
    with caplog.at_level(logging.WARNING, "dicomnet.service"):
        assert widgets.send_n_set(info(PatientID="1"), WIDGET, generate_uid())[0].Status == 0xC777
    assert "does not know" in caplog.text


def test_a_reply_that_cannot_be_encoded_is_processing_failure(
    widgets: Any, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.answers[evt.EVT_N_GET] = (0x0000, unencodable_dataset())
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        status, reply = widgets.send_n_get([], WIDGET, generate_uid())
    assert status.Status == 0x0110 and reply is None
    assert "Cannot encode the Attribute List" in caplog.text


def test_a_request_the_sop_class_does_not_define_is_unrecognized(
    widgets: Any, recorder: Recorder
) -> None:
    status, reply = widgets.send_n_set(info(PatientID="1"), GADGET, generate_uid())
    assert status.Status == 0x0211 and reply is None
    assert recorder.events == []


def test_a_check_refuses_before_the_handler(widgets: Any, recorder: Recorder) -> None:
    status, _ = widgets.send_n_action(None, 7, WIDGET, generate_uid())
    assert status.Status == 0x0123 and "refused by the check" in status.ErrorComment
    assert recorder.events == []


def test_meta_sop_class_routes_by_the_request_sop_class(
    widgets: Any, recorder: Recorder
) -> None:
    uid = generate_uid()
    status, _ = widgets.send_n_get([], GADGET, uid, meta_uid=META)
    assert status.Status == 0x0000 and status.AffectedSOPClassUID == GADGET
    assert recorder.events[-1].context.abstract_syntax == META
    status, _ = widgets.send_n_set(info(PatientID="1"), GADGET, uid, meta_uid=META)
    assert status.Status == 0x0211  # Gadget has N-GET only, even under the meta class
    status, _ = widgets.send_n_get([], NOT_IN_META, uid, meta_uid=META)
    assert status.Status == 0x0118  # No such SOP class: not a member of the meta class


def test_a_request_data_set_that_cannot_be_decoded_is_processing_failure(
    widgets: Any, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    context = widgets._context_for(WIDGET)
    request = dm.NCreateRQ(MessageID=11, AffectedSOPClassUID=WIDGET,
                           AffectedSOPInstanceUID=generate_uid())
    with caplog.at_level(logging.ERROR, "dicomnet.nservices"):
        items = list(widgets._exchange(context, request, UNDECODABLE))
    assert items[-1][0].Status == 0x0110
    assert "Cannot decode the Attribute List" in caplog.text
    assert recorder.events == []


def test_an_n_set_without_modification_list_is_processing_failure(
    widgets: Any, recorder: Recorder
) -> None:
    context = widgets._context_for(WIDGET)
    request = dm.NSetRQ(MessageID=12, RequestedSOPClassUID=WIDGET,
                        RequestedSOPInstanceUID=generate_uid())
    items = list(widgets._exchange(context, request, None))
    assert items[-1][0].Status == 0x0110
    assert recorder.events == []


def test_failure_responses_omit_action_and_event_type(widgets: Any, recorder: Recorder) -> None:
    """PS3.7 10.1.4.1.5 and 10.1.1.1.5: the type IDs belong to successful responses."""
    recorder.answers[evt.EVT_N_ACTION] = (0x0110, None)
    status, _ = widgets.send_n_action(None, 3, WIDGET, generate_uid())
    assert status.Status == 0x0110 and "ActionTypeID" not in status
    recorder.answers[evt.EVT_N_EVENT_REPORT] = (0x0113, None)
    status, _ = widgets.send_n_event_report(None, 3, WIDGET, generate_uid())
    assert status.Status == 0x0113 and "EventTypeID" not in status


# -- N-EVENT-REPORT in both directions -----------------------------------------------------------


def test_the_acceptor_notifies_the_requestor_on_its_association(make_ae: Any) -> None:
    """An SCU receives an N-EVENT-REPORT-RQ on the association it requested (PS3.7 10.1.1):
    ``EVT_N_EVENT_REPORT`` bound on the requestor side answers it."""
    reported = threading.Event()
    received: list[Any] = []

    def on_action(event: Any) -> Any:
        # answer first, then notify the requestor on the same association
        return 0x0000, None

    def on_report(event: Any) -> Any:
        received.append((event.event_type, event.event_information.PatientID,
                         event.assoc.is_requestor))
        reported.set()
        return 0x0000, info(PatientName="Ack")

    notifier_status: list[Any] = []

    established = Established()
    scp = make_ae("NOTIFIER", supported=[WIDGET], plugins=[TestPlugin()])
    port = serve(scp, [(evt.EVT_N_ACTION, on_action), established.binding()])
    scu = make_ae("LISTENER", requested=[WIDGET], plugins=[TestPlugin()])
    assoc = associate(scu, port, "NOTIFIER", evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    assert assoc.send_n_action(None, 1, WIDGET, generate_uid())[0].Status == 0
    acceptor = established.next()
    # the acceptor is the SCP of the context (no role selection): it may still notify
    status, reply = acceptor.send_n_event_report(info(PatientID="P1"), 4, WIDGET, generate_uid())
    notifier_status.append(status)
    assert reported.wait(WAIT)
    assert received == [(4, "P1", True)]
    assert status.Status == 0x0000 and status.EventTypeID == 4
    assert reply.PatientName == "Ack"
    assoc.release()


def test_a_report_on_an_acceptor_context_without_roles_is_served(
    make_ae: Any, recorder: Recorder
) -> None:
    """A peer that opens an association to report, proposing no SCP/SCU Role Selection,
    leaves us in the default acceptor role (SCP): the report is served anyway."""
    listener = make_ae("LISTENER", supported=[WIDGET], plugins=[TestPlugin()])
    port = serve(listener, recorder.bindings())
    notifier = make_ae("NOTIFIER", requested=[WIDGET], plugins=[TestPlugin()])
    assoc = associate(notifier, port, "LISTENER")
    status, _ = assoc.send_n_event_report(info(PatientID="2"), 1, WIDGET, generate_uid())
    assert status.Status == 0x0000
    assert recorder.events[-1].event_information.PatientID == "2"
    assoc.release()
