"""Events end to end: which fire, in what order, and where handlers are bound.

Notification events are observed on both sides of real associations; handlers
are bound on the AE, on the server (before and after it starts) and on the
association, with and without extra arguments. Intervention handlers are
looked up association > server > AE > default.

Ordering: lifecycle events (connection, negotiation, DIMSE messages, release)
are checked in strict order. The diagnostic events of a local primitive
(``EVT_PDU_SENT``, ``EVT_FSM_TRANSITION``) are reported when the association's
thread next drains the Upper Layer, so they are checked as exact sequences
among themselves, not interleaved with the others.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet.dimse_messages import CEchoRQ, CEchoRSP
from dicomnet.pdu import AAssociateAC, AAssociateRQ, AReleaseRP, AReleaseRQ
from dicomnet.ul_events import RawPData

WAIT = 5.0
NOTIFICATIONS = [e for e in evt._ALL_EVENTS if e.is_notification]


class Recorder:
    """Records every event it is bound to, per thread-safe list; ``done`` is set on one."""

    def __init__(self, until: Any = evt.EVT_CONN_CLOSE) -> None:
        self.events: list[Any] = []
        self.until = until
        self.done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, event: Any, *args: Any) -> None:
        with self._lock:
            self.events.append(event)
        if event.event == self.until:
            self.done.set()

    def handlers(self, events: list[Any] = NOTIFICATIONS) -> list[Any]:
        return [(e, self) for e in events]

    def names(self, only: set[Any] | None = None) -> list[str]:
        return [e.event.name for e in self.events if only is None or e.event in only]

    def of(self, event: Any) -> list[Any]:
        return [e for e in self.events if e.event == event]


def associate(scu: Any, scp: Any, **kwargs: Any) -> Any:
    return scu.associate("127.0.0.1", scp.port, ae_title=scp.ae.ae_title, **kwargs)


LIFECYCLE = {
    evt.EVT_CONN_OPEN,
    evt.EVT_REQUESTED,
    evt.EVT_ACCEPTED,
    evt.EVT_REJECTED,
    evt.EVT_ESTABLISHED,
    evt.EVT_DIMSE_SENT,
    evt.EVT_DIMSE_RECV,
    evt.EVT_RELEASED,
    evt.EVT_ABORTED,
    evt.EVT_CONN_CLOSE,
}


def transitions(recorder: Recorder) -> list[tuple[str, str, str]]:
    return [
        (e.current_state, e.fsm_event, e.next_state) for e in recorder.of(evt.EVT_FSM_TRANSITION)
    ]


def test_every_notification_fires_in_order_on_both_sides(make_scp: Any, scu: Any) -> None:
    at_scp = Recorder()
    scp = make_scp(handlers=at_scp.handlers())
    at_scu = Recorder()
    assoc = associate(scu, scp, evt_handlers=at_scu.handlers())
    assert assoc.send_c_echo().Status == 0
    assoc.release()
    assert at_scu.done.is_set()  # release() returns after the connection is closed
    assert at_scp.done.wait(WAIT)

    everything = set(NOTIFICATIONS) - {evt.EVT_REJECTED, evt.EVT_ABORTED}
    assert {e.event for e in at_scu.events} == everything
    assert {e.event for e in at_scp.events} == everything
    for recorder in (at_scu, at_scp):
        assert recorder.events[0].event == evt.EVT_CONN_OPEN
        assert recorder.events[-1].event == evt.EVT_CONN_CLOSE
        assert all(e.assoc is recorder.events[0].assoc for e in recorder.events)

    assert at_scu.names(LIFECYCLE) == [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_ACCEPTED",
        "EVT_ESTABLISHED",
        "EVT_DIMSE_SENT",
        "EVT_DIMSE_RECV",
        "EVT_RELEASED",
        "EVT_CONN_CLOSE",
    ]
    assert at_scp.names(LIFECYCLE) == [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_ACCEPTED",
        "EVT_ESTABLISHED",
        "EVT_DIMSE_RECV",
        "EVT_DIMSE_SENT",
        "EVT_RELEASED",
        "EVT_CONN_CLOSE",
    ]
    [sent] = at_scu.of(evt.EVT_DIMSE_SENT)
    [received] = at_scp.of(evt.EVT_DIMSE_RECV)
    assert isinstance(sent.message, CEchoRQ) and isinstance(received.message, CEchoRQ)
    assert received.message == sent.message
    assert sent.context_id == received.context_id == 1
    assert isinstance(at_scu.of(evt.EVT_DIMSE_RECV)[0].message, CEchoRSP)

    # PDUs, in order on each side
    def pdu_types(recorder: Recorder, event: Any) -> list[type]:
        return [type(e.pdu) for e in recorder.of(event)]

    assert pdu_types(at_scu, evt.EVT_PDU_SENT) == [AAssociateRQ, RawPData, AReleaseRQ]
    assert pdu_types(at_scu, evt.EVT_PDU_RECV) == [AAssociateAC, RawPData, AReleaseRP]
    assert pdu_types(at_scp, evt.EVT_PDU_RECV) == [AAssociateRQ, RawPData, AReleaseRQ]
    assert pdu_types(at_scp, evt.EVT_PDU_SENT) == [AAssociateAC, RawPData, AReleaseRP]
    assert at_scp.of(evt.EVT_PDU_RECV)[0].pdu == at_scu.of(evt.EVT_PDU_SENT)[0].pdu

    # the bytes: what one side wrote is exactly what the other read
    def stream(recorder: Recorder, event: Any) -> bytes:
        return b"".join(e.data for e in recorder.of(event))

    assert stream(at_scu, evt.EVT_DATA_SENT) == stream(at_scp, evt.EVT_DATA_RECV)
    assert stream(at_scp, evt.EVT_DATA_SENT) == stream(at_scu, evt.EVT_DATA_RECV)
    assert stream(at_scu, evt.EVT_DATA_SENT)[:1] == b"\x01"  # A-ASSOCIATE-RQ first

    # ACSE primitives
    def first_primitive(recorder: Recorder, event: Any) -> type:
        return type(recorder.of(event)[0].primitive)

    assert first_primitive(at_scu, evt.EVT_ACSE_SENT) is AAssociateRQ
    assert first_primitive(at_scu, evt.EVT_ACSE_RECV) is AAssociateAC
    assert first_primitive(at_scp, evt.EVT_ACSE_RECV) is AAssociateRQ
    assert first_primitive(at_scp, evt.EVT_ACSE_SENT) is AAssociateAC
    assert len(at_scu.of(evt.EVT_ACSE_SENT)) == len(at_scu.of(evt.EVT_ACSE_RECV)) == 2
    assert len(at_scp.of(evt.EVT_ACSE_SENT)) == len(at_scp.of(evt.EVT_ACSE_RECV)) == 2

    # the state machine, step by step (PS3.8 Table 9-10)
    assert transitions(at_scu) == [
        ("Sta1", "Evt1", "Sta4"),
        ("Sta4", "Evt2", "Sta5"),
        ("Sta5", "Evt3", "Sta6"),
        ("Sta6", "Evt9", "Sta6"),
        ("Sta6", "Evt10", "Sta6"),
        ("Sta6", "Evt11", "Sta7"),
        ("Sta7", "Evt13", "Sta1"),
    ]
    assert transitions(at_scp) == [
        ("Sta1", "Evt5", "Sta2"),
        ("Sta2", "Evt6", "Sta3"),
        ("Sta3", "Evt7", "Sta6"),
        ("Sta6", "Evt10", "Sta6"),
        ("Sta6", "Evt9", "Sta6"),
        ("Sta6", "Evt12", "Sta8"),
        ("Sta8", "Evt14", "Sta13"),
        ("Sta13", "Evt17", "Sta1"),
    ]


def test_rejected_fires_on_both_sides(make_scp: Any, scu: Any) -> None:
    at_scp = Recorder()
    scp = make_scp(handlers=at_scp.handlers(), require_called_aet=True)
    at_scu = Recorder()
    assoc = scu.associate(
        "127.0.0.1", scp.port, ae_title="NOT-THE-SCP", evt_handlers=at_scu.handlers()
    )
    assert assoc.is_rejected and not assoc.is_established and not assoc.is_aborted
    assoc.join(WAIT)
    assert at_scu.done.is_set()
    assert at_scp.done.wait(WAIT)
    assert at_scu.names(LIFECYCLE) == [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_REJECTED",
        "EVT_CONN_CLOSE",
    ]
    assert at_scp.names(LIFECYCLE) == [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_REJECTED",
        "EVT_CONN_CLOSE",
    ]


def test_aborted_fires_on_both_sides(make_scp: Any, scu: Any) -> None:
    at_scp = Recorder()
    scp = make_scp(handlers=at_scp.handlers())
    at_scu = Recorder()
    assoc = associate(scu, scp, evt_handlers=at_scu.handlers())
    assoc.abort()
    assoc.join(WAIT)
    assert at_scu.done.is_set()
    assert at_scp.done.wait(WAIT)
    expected = [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_ACCEPTED",
        "EVT_ESTABLISHED",
        "EVT_ABORTED",
        "EVT_CONN_CLOSE",
    ]
    assert at_scu.names(LIFECYCLE) == expected
    assert at_scp.names(LIFECYCLE) == expected
    assert transitions(at_scp)[-1] == ("Sta6", "Evt16", "Sta1")  # AA-3
    assert ("Sta6", "Evt15", "Sta13") in transitions(at_scu)  # AA-1


# -- where handlers are bound --------------------------------------------------------------


def echo_status(scu: Any, scp: Any) -> int:
    with associate(scu, scp) as assoc:
        return int(assoc.send_c_echo().Status)


def test_handlers_bound_on_the_ae(make_scp: Any, make_scu: Any) -> None:
    established: list[str] = []
    released = threading.Event()

    def configure(ae: Any) -> None:
        ae.bind(evt.EVT_ESTABLISHED, lambda e: established.append(e.assoc.mode))
        ae.bind(evt.EVT_C_ECHO, lambda e: 0x0210)

    scp = make_scp(configure=configure)
    scu = make_scu()
    scu.bind(evt.EVT_ESTABLISHED, lambda e: established.append(e.assoc.mode))
    assert echo_status(scu, scp) == 0x0210
    # bound on the AE after the server started: applies too
    scp.ae.bind(evt.EVT_RELEASED, lambda e: released.set())
    scp.ae.bind(evt.EVT_C_ECHO, lambda e: 0x0211)
    assert echo_status(scu, scp) == 0x0211
    assert released.wait(WAIT)
    assert sorted(established) == ["acceptor", "acceptor", "requestor", "requestor"]


def test_server_bind_after_start_applies_to_new_and_existing(scp: Any, scu: Any) -> None:
    existing = associate(scu, scp)
    assert existing.send_c_echo().Status == 0
    received: list[Any] = []

    def refuse(event: Any) -> int:
        return 0x0211

    scp.server.bind(evt.EVT_C_ECHO, refuse)
    scp.server.bind(evt.EVT_DIMSE_RECV, received.append)
    assert existing.send_c_echo().Status == 0x0211
    assert len(received) == 1 and received[0].assoc.is_acceptor
    new = associate(scu, scp)
    assert new.send_c_echo().Status == 0x0211
    assert len(received) == 2
    scp.server.unbind(evt.EVT_C_ECHO, refuse)
    scp.server.unbind(evt.EVT_DIMSE_RECV, received.append)
    assert existing.send_c_echo().Status == 0
    assert new.send_c_echo().Status == 0
    assert len(received) == 2
    existing.release()
    new.release()


def test_handlers_bound_per_association(scp: Any, scu: Any) -> None:
    sent: list[Any] = []
    assoc = associate(scu, scp, evt_handlers=[(evt.EVT_DIMSE_SENT, sent.append)])
    assert assoc.get_handlers(evt.EVT_DIMSE_SENT) == [(sent.append, None)]
    assoc.send_c_echo()
    assert len(sent) == 1
    assoc.unbind(evt.EVT_DIMSE_SENT, sent.append)
    assoc.send_c_echo()
    assert len(sent) == 1
    recv: list[Any] = []
    assoc.bind(evt.EVT_DIMSE_RECV, recv.append)
    assoc.send_c_echo()
    assert [type(e.message) for e in recv] == [CEchoRSP]
    assoc.release()
    # a handler bound on one association is not seen by another
    other = associate(scu, scp)
    other.send_c_echo()
    other.release()
    assert len(recv) == 1


def test_acceptor_association_bound_from_a_handler(scp: Any, scu: Any) -> None:
    """An SCP binds a handler on one accepted association from EVT_REQUESTED."""

    def on_requested(event: Any) -> None:
        if event.assoc.requestor.ae_title == "SPECIAL":
            event.assoc.bind(evt.EVT_C_ECHO, lambda e: 0x0212)

    scp.server.bind(evt.EVT_REQUESTED, on_requested)
    assert echo_status(scu, scp) == 0
    scu.ae_title = "SPECIAL"
    assert echo_status(scu, scp) == 0x0212
    scu.ae_title = "SCU"
    assert echo_status(scu, scp) == 0


def test_handlers_with_extra_arguments(make_scp: Any, scu: Any) -> None:
    calls: list[tuple[Any, ...]] = []

    def echo(event: Any, status: int, log: list[tuple[Any, ...]]) -> int:
        log.append((event.event.name, status))
        return status

    def note(event: Any, label: str) -> None:
        calls.append((event.event.name, label))

    scp = make_scp(
        handlers=[(evt.EVT_C_ECHO, echo, [0x0210, calls]), (evt.EVT_ESTABLISHED, note, ["scp"])]
    )
    assert scp.server.get_handlers(evt.EVT_C_ECHO) == (echo, [0x0210, calls])
    assert scp.server.get_handlers(evt.EVT_ESTABLISHED) == [(note, ["scp"])]
    with associate(scu, scp, evt_handlers=[(evt.EVT_ESTABLISHED, note, ["scu"])]) as assoc:
        assert assoc.send_c_echo().Status == 0x0210
    assert ("EVT_C_ECHO", 0x0210) in calls
    assert ("EVT_ESTABLISHED", "scu") in calls
    assert ("EVT_ESTABLISHED", "scp") in calls


def test_intervention_precedence_association_server_ae_default(make_scp: Any, scu: Any) -> None:
    def by_ae(event: Any) -> int:
        return 0x0210

    def by_server(event: Any) -> int:
        return 0x0211

    def by_association(event: Any) -> int:
        return 0x0212

    def on_requested(event: Any) -> None:
        if event.assoc.requestor.ae_title == "PER-ASSOC":
            event.assoc.bind(evt.EVT_C_ECHO, by_association)

    scp = make_scp(
        configure=lambda ae: ae.bind(evt.EVT_C_ECHO, by_ae),
        handlers=[(evt.EVT_C_ECHO, by_server), (evt.EVT_REQUESTED, on_requested)],
    )
    scu.ae_title = "PER-ASSOC"
    assert echo_status(scu, scp) == 0x0212
    scu.ae_title = "SCU"
    assert echo_status(scu, scp) == 0x0211
    scp.server.unbind(evt.EVT_C_ECHO, by_server)
    assert echo_status(scu, scp) == 0x0210
    scp.ae.unbind(evt.EVT_C_ECHO, by_ae)
    assert echo_status(scu, scp) == 0x0000  # the default handler


def test_exception_in_notification_handler_is_logged(
    make_scp: Any, scu: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError(f"broken handler for {event.event.name}")

    broken_everywhere = [(e, broken) for e in NOTIFICATIONS]
    scp = make_scp(handlers=broken_everywhere)
    with caplog.at_level(logging.ERROR, logger="dicomnet"):
        assoc = associate(scu, scp, evt_handlers=broken_everywhere)
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()
        assert assoc.is_released
        again = associate(scu, scp)
        assert again.send_c_echo().Status == 0
        again.release()
    messages = [r.getMessage() for r in caplog.records]
    assert any("EVT_ESTABLISHED" in m for m in messages)
    assert any("EVT_DIMSE_RECV" in m for m in messages)
    assert all(r.exc_info is not None for r in caplog.records if "handler bound" in r.getMessage())


def test_exception_in_echo_handler_gives_processing_failure(
    make_scp: Any, scu: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from dicomnet.plugins.verification import FAILURE_STATUS

    def broken(event: Any) -> int:
        raise ValueError("the application is broken")

    scp = make_scp(handlers=[(evt.EVT_C_ECHO, broken)])
    with caplog.at_level(logging.ERROR):
        assoc = associate(scu, scp)
        assert assoc.send_c_echo().Status == FAILURE_STATUS == 0x0110
        assert assoc.is_established  # the association goes on
        assert assoc.send_c_echo().Status == 0x0110
    assert any(
        r.exc_info and "the application is broken" in str(r.exc_info[1]) for r in caplog.records
    )
    scp.server.unbind(evt.EVT_C_ECHO, broken)
    assert assoc.send_c_echo().Status == 0
    assoc.release()
    assert echo_status(scu, scp) == 0  # and the server too


@pytest.mark.parametrize(
    "answer",
    [
        "not a status",
        0x10000,
        Dataset(),  # no Status
    ],
)
def test_invalid_echo_handler_answer_gives_processing_failure(
    make_scp: Any, scu: Any, answer: Any
) -> None:
    scp = make_scp(handlers=[(evt.EVT_C_ECHO, lambda e: answer)])
    assert echo_status(scu, scp) == 0x0110


def test_status_dataset_with_error_comment_reaches_the_scu(make_scp: Any, scu: Any) -> None:
    def refuse(event: Any) -> Dataset:
        status = Dataset()
        status.Status = 0x0211
        status.ErrorComment = "echo is switched off"
        status.ErrorID = 42
        return status

    scp = make_scp(handlers=[(evt.EVT_C_ECHO, refuse)])
    with associate(scu, scp) as assoc:
        status = assoc.send_c_echo()
    assert status.Status == 0x0211
    assert status.ErrorComment == "echo is switched off"
    assert status.ErrorID == 42


def test_get_handlers_and_get_events_shapes(scp: Any, scu: Any) -> None:
    def intervention(event: Any) -> int:
        return 0

    def notification(event: Any) -> None:
        pass

    server = scp.server
    assert server.get_handlers(evt.EVT_C_ECHO) is None
    assert server.get_handlers(evt.EVT_ESTABLISHED) == []
    assert server.get_events() == []
    server.bind(evt.EVT_C_ECHO, intervention)
    server.bind(evt.EVT_ESTABLISHED, notification, ["x"])
    server.bind(evt.EVT_ESTABLISHED, notification, ["y"])  # rebinding replaces the args
    assert server.get_handlers(evt.EVT_C_ECHO) == (intervention, None)
    assert server.get_handlers(evt.EVT_ESTABLISHED) == [(notification, ["y"])]
    assert set(server.get_events()) == {evt.EVT_C_ECHO, evt.EVT_ESTABLISHED}

    scu.bind(evt.EVT_RELEASED, notification)
    assert scu.get_handlers(evt.EVT_RELEASED) == [(notification, None)]
    assert scu.get_handlers(evt.EVT_C_ECHO) is None

    assoc = associate(scu, scp, evt_handlers=[(evt.EVT_C_ECHO, intervention, [1])])
    assert assoc.get_handlers(evt.EVT_C_ECHO) == (intervention, [1])
    assert assoc.get_events() == [evt.EVT_C_ECHO]
    assert assoc.get_handlers(evt.EVT_RELEASED) == []  # bound on the AE, not here
    assoc.release()
