"""The sans-IO Upper Layer connection (PS3.8 9), driven without sockets or sleeps.

Three kinds of tests:

* a sweep: a connection is brought into each state by legal steps, each of the
  19 events is fired, and the observable effects (PDUs sent, events, next
  state, ``wants_close``, ARTIM) are checked against the independent
  transcription of Table 9-10 in ``state_table_ps38.py``;
* scenarios between an in-memory requestor and acceptor (``Pair``: the bytes
  one side sends are fed to the other), timers driven by a fake clock;
* a hypothesis state machine throwing random primitives at a pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from dicomnet.errors import AbortReason, AbortSource, LocalProtocolError, RemoteProtocolError
from dicomnet.fsm import CONNECTED_STATES, State
from dicomnet.pdu import (
    PDU_HEADER,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PDUType,
    PresentationContextAC,
    PresentationContextRQ,
    PresentationDataValue,
    RejectReason,
    RejectResult,
    RejectSource,
    decode_pdu,
)
from dicomnet.upper_layer import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    ConnectionClosed,
    PDataReceived,
    PDUReceived,
    PDUSent,
    RawPData,
    ReleaseConfirmed,
    ReleaseRequested,
    Transition,
    ULEvent,
    UpperLayer,
)

from .state_table_ps38 import NEXT_STATES, parse_table

STANDARD = parse_table()

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
RQ = AAssociateRQ("ACCEPTOR", "REQUESTOR", [PresentationContextRQ(1, VERIFICATION, [IMPLICIT_LE])])
AC = AAssociateAC("ACCEPTOR", "REQUESTOR", [PresentationContextAC(1, 0, IMPLICIT_LE)])
RJ = AAssociateRJ(
    RejectResult.PERMANENT, RejectSource.SERVICE_USER, RejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED
)
PDATA = PDataTF([PresentationDataValue(1, True, True, b"\x01\x02\x03\x04")]).to_bytes()
PEER_ABORT = AAbort(AbortSource.SERVICE_PROVIDER, AbortReason.UNEXPECTED_PDU_PARAMETER)
#: a PDU of type 08H, which PS3.8 does not define
UNKNOWN_PDU = bytes([0x08, 0, 0, 0, 0, 4, 0, 0, 0, 0])
#: an A-RELEASE-RQ whose variable field is 3 bytes instead of 4
MALFORMED_RELEASE_RQ = bytes([0x05, 0, 0, 0, 0, 3, 0, 0, 0])

ARTIM = 30.0
DIAGNOSTICS = (PDUReceived, PDUSent, Transition)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def drain(ul: UpperLayer) -> list[ULEvent]:
    events = []
    while (event := ul.next_event()) is not None:
        events.append(event)
    return events


def split_pdus(buffers: Iterable[bytes | bytearray | memoryview]) -> list[tuple[int, bytes]]:
    """Cut what a connection sent into ``(pdu_type, body)`` pairs."""
    data = b"".join(bytes(b) for b in buffers)
    out = []
    while data:
        pdu_type, _, length = PDU_HEADER.unpack_from(data)
        out.append((pdu_type, data[6 : 6 + length]))
        data = data[6 + length :]
    return out


def sent_pdus(ul: UpperLayer) -> list[tuple[int, bytes]]:
    return split_pdus(ul.data_to_send())


def indications(events: list[ULEvent]) -> list[ULEvent]:
    return [e for e in events if not isinstance(e, DIAGNOSTICS)]


# -- bringing a connection into each state by legal steps ------------------------------------

#: the roles a connection can have in each state (acceptors never connect; Sta9/11
#: are the requestor side of a release collision, Sta10/12 the acceptor side)
ROLES: dict[int, tuple[bool, ...]] = {
    1: (True, False),
    2: (False,),
    3: (False,),
    4: (True,),
    5: (True,),
    6: (True, False),
    7: (True, False),
    8: (True, False),
    9: (True,),
    10: (False,),
    11: (True,),
    12: (False,),
    13: (True, False),
}


def build(
    state: int, requestor: bool, clock: FakeClock | None = None, **options: Any
) -> tuple[UpperLayer, FakeClock]:
    """An UpperLayer in ``state``, reached by legal steps at clock time 0, drained."""
    clock = clock or FakeClock()
    kwargs: dict[str, Any] = {"acse_timeout": None, "network_timeout": None}
    kwargs.update(options)
    ul = UpperLayer(requestor, clock, **kwargs)

    def feed(pdu_bytes: bytes) -> None:
        ul.receive_data(pdu_bytes)
        drain(ul)

    if state == 1:
        pass
    elif state in (2, 3):
        ul.connection_made()
        if state == 3:
            feed(RQ.to_bytes())
    elif state in (4, 5):
        ul.request_association(RQ)
        if state == 5:
            ul.connection_made()
    else:
        if requestor:
            ul.request_association(RQ)
            ul.connection_made()
            feed(AC.to_bytes())
        else:
            ul.connection_made()
            feed(RQ.to_bytes())
            ul.accept(AC)
        if state in (7, 9, 10, 11, 12):
            ul.release()
            if state != 7:
                feed(AReleaseRQ().to_bytes())  # a collision
            if state == 11:
                ul.release_response()
            if state == 12:
                feed(AReleaseRP().to_bytes())
        elif state == 8:
            feed(AReleaseRQ().to_bytes())
        elif state == 13:
            ul.abort()
    drain(ul)
    ul.data_to_send()
    assert ul.state == State(state)
    assert not ul.wants_close
    return ul, clock


@pytest.mark.parametrize(
    ("state", "requestor"), [(s, r) for s, roles in ROLES.items() for r in roles]
)
def test_build_reaches_the_state(state: int, requestor: bool) -> None:
    ul, _ = build(state, requestor)
    assert ul.state == State(state)
    assert ul.requestor is requestor


# -- firing each event --------------------------------------------------------------------------

RECEIVED: dict[int, bytes] = {
    3: AC.to_bytes(),
    4: RJ.to_bytes(),
    6: RQ.to_bytes(),
    10: PDATA,
    12: AReleaseRQ().to_bytes(),
    13: AReleaseRP().to_bytes(),
    16: PEER_ABORT.to_bytes(),
    19: UNKNOWN_PDU,
}

LOCAL: dict[int, Callable[[UpperLayer], None]] = {
    1: lambda ul: ul.request_association(RQ),
    2: lambda ul: ul.connection_made(),
    5: lambda ul: ul.connection_made(),
    7: lambda ul: ul.accept(AC),
    8: lambda ul: ul.reject(RJ),
    9: lambda ul: ul.send_pdata([PDATA]),
    11: lambda ul: ul.release(),
    14: lambda ul: ul.release_response(),
    15: lambda ul: ul.abort(),
    17: lambda ul: ul.connection_lost(),
}

#: the moment the event is fired (ARTIM armed while building ends at 0 + 30)
NOW = 10.0


def fire(ul: UpperLayer, clock: FakeClock, event: int) -> None:
    clock.t = NOW
    if event in RECEIVED:
        ul.receive_data(RECEIVED[event])
    elif event == 18:
        clock.t = 1000.0
        ul.handle_timer()
    else:
        LOCAL[event](ul)


def fireable(requestor: bool, event: int) -> bool:
    """Evt1 and Evt2 are a requestor's, Evt5 an acceptor's: the API maps by role."""
    if event in (1, 2):
        return requestor
    if event == 5:
        return not requestor
    return True


SWEEP = [
    (state, requestor, event)
    for state, roles in ROLES.items()
    for requestor in roles
    for event in range(1, 20)
    if fireable(requestor, event)
]


def sweep_id(value: object) -> str:
    return str(value)


# What each action visibly does: the PDUs it sends, the indications it issues,
# whether it closes the transport, and what it does to ARTIM ("start": armed at
# NOW + 30, "keep": still armed from the build at 0 + 30, None: not armed).
_T = PDUType
EFFECTS: dict[str, tuple[list[int], list[type], bool, str | None]] = {
    "AE-1": ([], [], False, None),
    "AE-2": ([_T.A_ASSOCIATE_RQ], [], False, None),
    "AE-3": ([], [AssociationAccepted], False, None),
    "AE-4": ([], [AssociationRejected, ConnectionClosed], True, None),
    "AE-5": ([], [], False, "start"),
    "AE-6": ([], [AssociationRequested], False, None),
    "AE-7": ([_T.A_ASSOCIATE_AC], [], False, None),
    "AE-8": ([_T.A_ASSOCIATE_RJ], [], False, "start"),
    "DT-1": ([_T.P_DATA_TF], [], False, None),
    "DT-2": ([], [PDataReceived], False, None),
    "AR-1": ([_T.A_RELEASE_RQ], [], False, None),
    "AR-2": ([], [ReleaseRequested], False, None),
    "AR-3": ([], [ReleaseConfirmed, ConnectionClosed], True, None),
    "AR-4": ([_T.A_RELEASE_RP], [], False, "start"),
    "AR-5": ([], [ConnectionClosed], False, None),
    "AR-6": ([], [PDataReceived], False, None),
    "AR-7": ([_T.P_DATA_TF], [], False, None),
    "AR-8": ([], [ReleaseRequested], False, None),
    "AR-9": ([_T.A_RELEASE_RP], [], False, None),
    "AR-10": ([], [ReleaseConfirmed], False, None),
    "AA-1": ([_T.A_ABORT], [], False, "start"),
    "AA-2": ([], [ConnectionClosed], True, None),
    "AA-3": ([], [Aborted, ConnectionClosed], True, None),
    "AA-4": ([], [Aborted, ConnectionClosed], False, None),
    "AA-5": ([], [ConnectionClosed], False, None),
    "AA-6": ([], [], False, "keep"),
    "AA-7": ([_T.A_ABORT], [], False, "keep"),
    "AA-8": ([_T.A_ABORT], [Aborted], False, "start"),
}


def expected_indications(action: str, state: int, event: int) -> list[type]:
    kinds = list(EFFECTS[action][1])
    if action == "AA-1" and event != 15:
        kinds = [Aborted]  # our abort after a bad PDU in Sta2 is reported
    if action == "AA-2" and state == 2 and event == 18:
        kinds = [Aborted, ConnectionClosed]  # ARTIM expired: no A-ASSOCIATE-RQ came
    return kinds


@pytest.mark.parametrize("diagnostics", [False, True], ids=["plain", "diagnostics"])
@pytest.mark.parametrize(("state", "requestor", "event"), SWEEP, ids=sweep_id)
def test_sweep(state: int, requestor: bool, event: int, diagnostics: bool) -> None:
    ul, clock = build(state, requestor, emit_pdus=diagnostics, emit_transitions=diagnostics)
    artim_before = ul.next_deadline()
    action = STANDARD.get((state, event))
    if action is None:
        check_empty_cell(ul, clock, state, event, artim_before)
        return

    fire(ul, clock, event)
    events = drain(ul)
    sent = sent_pdus(ul)

    choices = NEXT_STATES[action]
    expected_state = choices[0] if action != "AR-8" or requestor else choices[1]
    assert ul.state == State(expected_state)

    sent_types, _, closes, artim = EFFECTS[action]
    assert [t for t, _ in sent] == sent_types
    assert [type(e) for e in indications(events)] == expected_indications(action, state, event)
    assert ul.wants_close is closes
    expected_deadline = {"start": NOW + ARTIM, "keep": ARTIM, None: None}[artim]
    assert ul.next_deadline() == expected_deadline
    if artim == "keep":
        assert artim_before == ARTIM
    check_details(action, event, events, sent)

    if diagnostics:
        transitions = [e for e in events if isinstance(e, Transition)]
        assert [(t.state, t.event, t.action.name, t.next_state) for t in transitions] == [
            (State(state), event, action, State(expected_state))
        ]
        assert [type(e.pdu).pdu_type for e in events if isinstance(e, PDUSent)] == sent_types
        received = [e for e in events if isinstance(e, PDUReceived)]
        if event in RECEIVED and event != 19:
            assert [type(e.pdu).pdu_type for e in received] == [RECEIVED[event][0]]
            assert events.index(received[0]) < events.index(transitions[0])
        else:
            assert received == []
        # the transition is reported before what the action does
        first_indication = next((e for e in events if not isinstance(e, DIAGNOSTICS)), None)
        if first_indication is not None:
            assert events.index(transitions[0]) < events.index(first_indication)


def check_empty_cell(
    ul: UpperLayer, clock: FakeClock, state: int, event: int, artim_before: float | None
) -> None:
    if (state, event) == (13, 15) or (state, event) == (1, 17) or event == 18:
        # documented no-ops: abort() while waiting for the close, connection_lost()
        # when idle; and Evt18 cannot happen: ARTIM only runs in Sta2 and Sta13
        if event == 18:
            assert artim_before is None
        fire(ul, clock, event)
    else:
        with pytest.raises(LocalProtocolError):
            fire(ul, clock, event)
    assert ul.state == State(state)
    assert drain(ul) == []
    assert ul.data_to_send() == []
    assert not ul.wants_close
    assert ul.next_deadline() == artim_before


def check_details(action: str, event: int, events: list[ULEvent], sent: list[tuple[int, bytes]]
                  ) -> None:
    """The contents of what the action sent and issued."""
    shown = indications(events)
    if action in ("AA-1", "AA-7", "AA-8"):
        [(_, body)] = sent
        abort = AAbort.from_body(memoryview(body))
        if action == "AA-1":
            assert (abort.source, abort.reason) == (0, 0)
        else:
            reason = AbortReason.UNRECOGNIZED_PDU if event == 19 else AbortReason.UNEXPECTED_PDU
            assert (abort.source, abort.reason) == (AbortSource.SERVICE_PROVIDER, reason)
        if shown:
            [aborted] = shown
            assert aborted == Aborted(abort.source, abort.reason, local=True, error=aborted.error)
            assert aborted.error
            if event != 19:
                assert "unexpected" in aborted.error
    elif action == "AA-3":
        assert shown[0] == Aborted(PEER_ABORT.source, PEER_ABORT.reason, local=False)
    elif action == "AA-4":
        assert shown[0] == Aborted(2, 0, local=False, error="the transport connection was closed")
    elif action in ("DT-2", "AR-6"):
        assert isinstance(shown[0], PDataReceived)
        assert bytes(shown[0].body) == PDATA[6:]
    elif action in ("DT-1", "AR-7"):
        assert sent == [(PDUType.P_DATA_TF, PDATA[6:])]
    elif action in ("AR-2", "AR-8"):
        assert shown == [ReleaseRequested(collision=action == "AR-8")]
    elif action == "AE-3":
        assert shown == [AssociationAccepted(AC)]
    elif action == "AE-4":
        assert shown[0] == AssociationRejected(RJ)
    elif action == "AE-6":
        assert shown == [AssociationRequested(RQ)]
    elif action == "AE-2":
        assert sent == [(PDUType.A_ASSOCIATE_RQ, RQ.to_bytes()[6:])]
    elif action == "AE-7":
        assert sent == [(PDUType.A_ASSOCIATE_AC, AC.to_bytes()[6:])]
    elif action == "AE-8":
        assert sent == [(PDUType.A_ASSOCIATE_RJ, RJ.to_bytes()[6:])]


@pytest.mark.parametrize("state", [1, 4])
@pytest.mark.parametrize("event", sorted(RECEIVED))
def test_nothing_is_received_without_a_connection(state: int, event: int) -> None:
    ul, _ = build(state, requestor=True)
    with pytest.raises(LocalProtocolError, match="no transport connection"):
        ul.receive_data(RECEIVED[event])
    with pytest.raises(LocalProtocolError):
        ul.get_buffer()
    assert ul.state == State(state)


def test_acceptor_cannot_request_an_association() -> None:
    ul = UpperLayer(False, FakeClock())
    with pytest.raises(LocalProtocolError, match="acceptor"):
        ul.request_association(RQ)
    assert ul.state is State.Sta1


# -- an in-memory requestor/acceptor pair --------------------------------------------------------


class Pair:
    """A requestor and an acceptor joined by an in-memory 'transport'.

    ``pump()`` moves the bytes each side sends to the other and collects the
    events; when a side sets ``wants_close`` its transport closes: it calls its
    own ``connection_lost()`` and the other side sees the end of the stream.
    """

    def __init__(self, clock: FakeClock | None = None, **options: Any) -> None:
        self.clock = clock or FakeClock()
        self.requestor = UpperLayer(True, self.clock, **options)
        self.acceptor = UpperLayer(False, self.clock, **options)
        self.events: dict[bool, list[ULEvent]] = {True: [], False: []}
        self.closed = False

    def side(self, requestor: bool) -> UpperLayer:
        return self.requestor if requestor else self.acceptor

    def connect(self) -> None:
        self.requestor.request_association(RQ)
        self.requestor.connection_made()
        self.acceptor.connection_made()

    def pump(self) -> None:
        for _ in range(100):
            progress = False
            for src_role in (True, False):
                src, dst = self.side(src_role), self.side(not src_role)
                data = src.data_to_send()
                if data and not self.closed and dst.state in CONNECTED_STATES:
                    dst.receive_data(b"".join(bytes(b) for b in data))
                    progress = True
                for role in (True, False):
                    new = drain(self.side(role))
                    self.events[role] += new
                    progress = progress or bool(new)
            if not self.closed and (self.requestor.wants_close or self.acceptor.wants_close):
                # the closing side writes out, closes; the other sees EOF after the data
                self.closed = True
                closer = self.requestor.wants_close
                other = self.side(not closer)
                data = self.side(closer).data_to_send()
                if data and other.state in CONNECTED_STATES:
                    other.receive_data(b"".join(bytes(b) for b in data))
                self.side(closer).connection_lost()
                other.connection_lost()
                progress = True
            if not progress:
                return
        raise AssertionError("pump does not settle")

    def take(self, requestor: bool) -> list[ULEvent]:
        events = self.events[requestor]
        self.events[requestor] = []
        return indications(events)

    def associate(self) -> None:
        self.connect()
        self.pump()
        assert self.take(False) == [AssociationRequested(RQ)]
        self.acceptor.accept(AC)
        self.pump()
        assert self.take(True) == [AssociationAccepted(AC)]
        assert self.requestor.state is self.acceptor.state is State.Sta6


def test_pair_associate_exchange_and_release() -> None:
    pair = Pair()
    pair.associate()
    assert pair.acceptor.rq == RQ and pair.requestor.rq == RQ
    assert pair.acceptor.ac == AC and pair.requestor.ac == AC

    other = PDataTF([PresentationDataValue(1, False, True, b"dataset")]).to_bytes()
    pair.requestor.send_pdata([PDATA, other])
    pair.acceptor.send_pdata([other])
    pair.pump()
    got = pair.take(False)
    assert [bytes(e.body) for e in got if isinstance(e, PDataReceived)] == [PDATA[6:], other[6:]]
    assert [bytes(e.body) for e in pair.take(True) if isinstance(e, PDataReceived)] == [other[6:]]

    pair.requestor.release()
    pair.pump()
    assert pair.take(False) == [ReleaseRequested(collision=False)]
    assert pair.acceptor.state is State.Sta8
    pair.acceptor.send_pdata([other])  # AR-7: still allowed before the response
    pair.acceptor.release_response()
    assert pair.acceptor.state is State.Sta13
    pair.pump()
    # the requestor gets the data (AR-6), the confirmation, closes; the acceptor sees EOF
    assert [type(e) for e in pair.take(True)] == [PDataReceived, ReleaseConfirmed,
                                                  ConnectionClosed]
    assert pair.take(False) == [ConnectionClosed()]
    assert pair.requestor.state is pair.acceptor.state is State.Sta1
    assert pair.requestor.next_deadline() is None and pair.acceptor.next_deadline() is None


def test_pair_release_requested_by_the_acceptor() -> None:
    pair = Pair()
    pair.associate()
    pair.acceptor.release()
    pair.pump()
    assert pair.take(True) == [ReleaseRequested(collision=False)]
    pair.requestor.release_response()
    pair.pump()
    assert pair.take(False) == [ReleaseConfirmed(), ConnectionClosed()]
    assert pair.take(True) == [ConnectionClosed()]
    assert pair.requestor.state is pair.acceptor.state is State.Sta1


def test_pair_release_collision() -> None:
    pair = Pair()
    pair.associate()
    pair.requestor.release()
    pair.acceptor.release()
    assert pair.requestor.state is pair.acceptor.state is State.Sta7
    pair.pump()
    assert (pair.requestor.state, pair.acceptor.state) == (State.Sta9, State.Sta10)
    assert pair.take(True) == [ReleaseRequested(collision=True)]
    assert pair.take(False) == [ReleaseRequested(collision=True)]
    with pytest.raises(LocalProtocolError):
        pair.acceptor.release_response()  # the acceptor answers only after its confirmation
    pair.requestor.release_response()  # AR-9
    assert pair.requestor.state is State.Sta11
    pair.pump()
    assert pair.acceptor.state is State.Sta12  # AR-10
    assert pair.take(False) == [ReleaseConfirmed()]
    pair.acceptor.release_response()  # AR-4
    assert pair.acceptor.state is State.Sta13
    pair.pump()
    assert pair.take(True) == [ReleaseConfirmed(), ConnectionClosed()]  # AR-3
    assert pair.take(False) == [ConnectionClosed()]  # AR-5
    assert pair.requestor.state is pair.acceptor.state is State.Sta1


@pytest.mark.parametrize("aborter", [True, False], ids=["requestor", "acceptor"])
def test_pair_abort(aborter: bool) -> None:
    pair = Pair()
    pair.associate()
    pair.side(aborter).abort()
    assert pair.side(aborter).state is State.Sta13
    pair.pump()
    assert pair.take(not aborter) == [
        Aborted(AbortSource.SERVICE_USER, 0, local=False),
        ConnectionClosed(),
    ]
    assert pair.take(aborter) == [ConnectionClosed()]  # AR-5: the peer closed
    assert pair.requestor.state is pair.acceptor.state is State.Sta1


def test_pair_abort_while_association_is_requested() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    assert pair.acceptor.state is State.Sta3
    pair.acceptor.abort()  # AA-1 in Sta3
    pair.pump()
    assert pair.take(True) == [Aborted(0, 0, local=False), ConnectionClosed()]
    assert pair.take(False) == [AssociationRequested(RQ), ConnectionClosed()]


def test_pair_rejection() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    pair.acceptor.reject(RJ)
    assert pair.acceptor.state is State.Sta13
    pair.pump()
    assert pair.take(True) == [AssociationRejected(RJ), ConnectionClosed()]
    assert pair.take(False) == [AssociationRequested(RQ), ConnectionClosed()]
    assert pair.requestor.state is pair.acceptor.state is State.Sta1


def test_provider_rejects_an_unsupported_protocol_version() -> None:
    ul, clock = build(2, requestor=False)
    clock.t = NOW
    ul.receive_data(AAssociateRQ("A", "B", [], protocol_version=2).to_bytes())
    assert drain(ul) == []  # the user never sees it
    assert ul.state is State.Sta13
    [(pdu_type, body)] = sent_pdus(ul)
    assert decode_pdu(pdu_type, memoryview(body)) == AAssociateRJ(1, 2, 2)
    assert ul.next_deadline() == NOW + ARTIM


def test_protocol_version_bit_zero_is_all_that_is_tested() -> None:
    ul, _ = build(2, requestor=False)
    ul.receive_data(AAssociateRQ("A", "B", [], protocol_version=0x0003).to_bytes())
    assert [type(e) for e in drain(ul)] == [AssociationRequested]


# -- timers ---------------------------------------------------------------------------------


def test_artim_expires_in_sta2_when_the_peer_is_silent() -> None:
    ul, clock = build(2, requestor=False)
    assert ul.next_deadline() == ARTIM
    clock.t = ARTIM - 0.1
    ul.handle_timer()
    assert ul.state is State.Sta2 and drain(ul) == []
    clock.t = ARTIM
    ul.handle_timer()
    assert ul.state is State.Sta1
    assert ul.wants_close
    events = drain(ul)
    assert [type(e) for e in events] == [Aborted, ConnectionClosed]
    assert isinstance(events[0], Aborted) and events[0].local
    assert "ARTIM" in (events[0].error or "")
    assert ul.data_to_send() == []  # AA-2 sends nothing
    assert ul.next_deadline() is None


def test_artim_expires_in_sta13_when_the_peer_never_closes() -> None:
    pair = Pair()
    pair.associate()
    pair.requestor.release()
    pair.pump()
    pair.acceptor.release_response()
    # the requestor's transport is broken: it never reads the RP nor closes
    pair.acceptor.data_to_send()
    assert pair.acceptor.state is State.Sta13
    assert pair.acceptor.next_deadline() == ARTIM
    pair.clock.t = 100.0
    pair.acceptor.handle_timer()
    assert pair.acceptor.state is State.Sta1 and pair.acceptor.wants_close
    assert indications(drain(pair.acceptor)) == [ReleaseRequested(), ConnectionClosed()][1:]


def test_acse_timeout_in_sta5() -> None:
    ul, clock = build(5, requestor=True, acse_timeout=20.0)
    assert ul.next_deadline() == 20.0
    clock.t = 19.0
    ul.handle_timer()
    assert ul.state is State.Sta5
    clock.t = 20.0
    ul.handle_timer()
    assert ul.state is State.Sta13
    [(pdu_type, body)] = sent_pdus(ul)
    assert pdu_type == PDUType.A_ABORT
    assert AAbort.from_body(memoryview(body)) == AAbort(AbortSource.SERVICE_USER, 0)
    [event] = drain(ul)
    assert isinstance(event, Aborted) and event.local and event.source == 0
    assert event.error == "ACSE timeout: no A-ASSOCIATE-AC or -RJ within 20 s"
    assert ul.next_deadline() == 20.0 + ARTIM  # AA-1 started ARTIM
    clock.t = 50.0
    ul.handle_timer()
    assert ul.state is State.Sta1 and ul.wants_close
    assert drain(ul) == [ConnectionClosed()]


@pytest.mark.parametrize("requestor", [True, False])
def test_acse_timeout_in_sta7(requestor: bool) -> None:
    ul, clock = build(6, requestor, acse_timeout=20.0)
    assert ul.next_deadline() is None  # not armed in Sta6
    clock.t = 5.0
    ul.release()
    assert ul.next_deadline() == 25.0
    ul.receive_data(PDATA)  # AR-6: data does not stop the wait for the RP
    assert [type(e) for e in drain(ul)] == [PDataReceived]
    clock.t = 25.0
    ul.handle_timer()
    assert ul.state is State.Sta13
    assert [t for t, _ in sent_pdus(ul)] == [PDUType.A_RELEASE_RQ, PDUType.A_ABORT]
    [event] = drain(ul)
    assert isinstance(event, Aborted)
    assert event.error == "ACSE timeout: no A-RELEASE-RP within 20 s"


def test_acse_timeout_is_disarmed_by_the_answer() -> None:
    ul, clock = build(5, requestor=True, acse_timeout=20.0)
    ul.receive_data(AC.to_bytes())
    drain(ul)
    assert ul.next_deadline() is None
    clock.t = 100.0
    ul.handle_timer()
    assert ul.state is State.Sta6


def test_acse_timeout_covers_the_collision_states() -> None:
    pair = Pair(acse_timeout=20.0)
    pair.associate()
    pair.requestor.release()
    pair.acceptor.release()
    pair.pump()
    assert pair.acceptor.state is State.Sta10
    assert pair.acceptor.next_deadline() == 20.0  # still waiting for the RP since Sta7
    assert pair.requestor.next_deadline() is None  # Sta9 waits for its own user
    pair.requestor.release_response()
    assert pair.requestor.next_deadline() == 20.0  # Sta11


def test_network_timeout() -> None:
    ul, clock = build(6, requestor=False, network_timeout=60.0)
    assert ul.next_deadline() == 60.0
    clock.t = 50.0
    ul.receive_data(PDATA[:3])  # any byte counts
    assert ul.next_deadline() == 110.0
    view = ul.get_buffer()
    view[: len(PDATA) - 3] = PDATA[3:]
    clock.t = 70.0
    ul.buffer_updated(len(PDATA) - 3)
    assert ul.next_deadline() == 130.0
    assert [type(e) for e in drain(ul)] == [PDataReceived]
    clock.t = 129.0
    ul.handle_timer()
    assert ul.state is State.Sta6
    clock.t = 130.0
    ul.handle_timer()
    assert ul.state is State.Sta13
    [event] = drain(ul)
    assert isinstance(event, Aborted) and event.local
    assert event.error == "network timeout: nothing received for 60 s"
    assert [t for t, _ in sent_pdus(ul)] == [PDUType.A_ABORT]
    assert ul.next_deadline() == 130.0 + ARTIM  # only ARTIM now


def test_network_timeout_not_armed_while_artim_runs() -> None:
    ul, _ = build(2, requestor=False, network_timeout=5.0)
    assert ul.next_deadline() == ARTIM


def test_earliest_deadline_and_several_timers_due() -> None:
    ul, clock = build(5, requestor=True, acse_timeout=20.0, network_timeout=10.0)
    assert ul.next_deadline() == 10.0
    clock.t = 1000.0  # both overdue: the earlier one (network, at 10) is the cause
    ul.handle_timer()
    assert ul.state is State.Sta13
    [event] = drain(ul)
    assert isinstance(event, Aborted) and "network timeout" in (event.error or "")
    assert ul.next_deadline() == 1000.0 + ARTIM  # ARTIM starts from now, not overdue
    clock.t = 1030.0
    ul.handle_timer()
    assert ul.state is State.Sta1 and drain(ul) == [ConnectionClosed()]


# -- protocol errors ----------------------------------------------------------------------------


def test_oversized_pdu_is_aborted_with_reason_6() -> None:
    pair = Pair(max_pdata_length=100)
    pair.associate()
    big = PDataTF([PresentationDataValue(1, False, True, bytes(200))]).to_bytes()
    pair.requestor.send_pdata([big])
    pair.pump()
    event, *rest = pair.take(False)
    assert isinstance(event, Aborted)
    assert (event.source, event.reason, event.local) == (2, 6, True)
    assert "more than the limit of 100 bytes" in (event.error or "")
    assert rest == [ConnectionClosed()]  # AR-5: the requestor closed
    assert pair.take(True) == [Aborted(2, 6, local=False), ConnectionClosed()]
    assert pair.acceptor.state is State.Sta1


def test_oversized_pdu_is_refused_before_its_body_arrives() -> None:
    ul, _ = build(6, requestor=False, max_pdata_length=100)
    header = PDU_HEADER.pack(PDUType.P_DATA_TF, 0, 10_000_000)
    ul.receive_data(header)
    [event] = drain(ul)
    assert isinstance(event, Aborted) and event.reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert ul.state is State.Sta13
    # the stream cannot be cut any more: what follows is discarded, not buffered
    ul.receive_data(bytes(50_000))
    view = ul.get_buffer()
    ul.buffer_updated(len(view))
    assert drain(ul) == []
    assert [t for t, _ in sent_pdus(ul)] == [PDUType.A_ABORT]


def test_max_pdata_length_is_settable() -> None:
    ul, _ = build(6, requestor=False)
    assert ul.max_pdata_length == 16382
    ul.max_pdata_length = None
    assert ul.max_pdata_length is None
    big = PDataTF([PresentationDataValue(1, False, True, bytes(20000))]).to_bytes()
    ul.receive_data(big)
    assert [type(e) for e in drain(ul)] == [PDataReceived]
    ul.max_pdata_length = len(PDATA) - 7  # one byte short of PDATA's variable field
    ul.receive_data(PDATA)
    [event] = drain(ul)
    assert isinstance(event, Aborted) and event.reason == 6


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (UNKNOWN_PDU, AbortReason.UNRECOGNIZED_PDU),
        (MALFORMED_RELEASE_RQ, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (AReleaseRP().to_bytes(), AbortReason.UNEXPECTED_PDU),  # well-formed, wrong state
    ],
    ids=["unknown-type", "malformed", "unexpected"],
)
def test_bad_pdu_in_sta6(data: bytes, reason: int) -> None:
    pair = Pair()
    pair.associate()
    pair.acceptor.receive_data(data)  # as if the requestor had sent it
    [event] = drain(pair.acceptor)
    assert isinstance(event, Aborted)
    assert (event.source, event.reason, event.local) == (2, reason, True)
    assert pair.acceptor.state is State.Sta13
    pair.pump()
    assert pair.take(True) == [Aborted(2, reason, local=False), ConnectionClosed()]
    assert pair.take(False) == [ConnectionClosed()]


def test_bad_pdu_in_sta2_is_aa1() -> None:
    ul, _ = build(2, requestor=False)
    ul.receive_data(MALFORMED_RELEASE_RQ)
    [event] = drain(ul)
    assert isinstance(event, Aborted) and event.local
    assert "A-RELEASE-RQ" in (event.error or "")
    # AA-1 sends the A-ABORT with source service-user, as Table 9-9 says
    [(_, body)] = sent_pdus(ul)
    assert AAbort.from_body(memoryview(body)) == AAbort(0, 0)
    assert ul.state is State.Sta13


def test_sta13_answers_bad_pdus_and_ignores_good_ones() -> None:
    ul, _ = build(13, requestor=True)
    ul.receive_data(PDATA + AReleaseRQ().to_bytes() + UNKNOWN_PDU + RQ.to_bytes())
    assert drain(ul) == []
    sent = [AAbort.from_body(memoryview(b)) for _, b in sent_pdus(ul)]
    assert sent == [AAbort(2, AbortReason.UNRECOGNIZED_PDU), AAbort(2, AbortReason.UNEXPECTED_PDU)]
    assert ul.state is State.Sta13


def test_protocol_error_from_the_dimse_layer() -> None:
    ul, clock = build(6, requestor=True)
    clock.t = NOW
    ul.receive_data(PDataTF([]).to_bytes())  # no PDV: the DIMSE layer will object
    [event] = drain(ul)
    assert isinstance(event, PDataReceived) and len(event.body) == 0
    ul.protocol_error(RemoteProtocolError("P-DATA-TF with no PDV", abort_reason=6))
    assert ul.state is State.Sta13
    assert drain(ul) == [Aborted(2, 6, local=True, error="P-DATA-TF with no PDV")]
    [(_, body)] = sent_pdus(ul)
    assert AAbort.from_body(memoryview(body)) == AAbort(2, 6)
    assert ul.next_deadline() == NOW + ARTIM
    ul.protocol_error(RemoteProtocolError("again"))  # nothing left to abort
    assert ul.data_to_send() == [] and drain(ul) == []


def test_after_a_protocol_error_only_abort_is_accepted() -> None:
    ul, _ = build(6, requestor=True)
    ul.receive_data(UNKNOWN_PDU)
    drain(ul)
    ul.data_to_send()
    with pytest.raises(LocalProtocolError, match="unrecognized PDU type 0x08"):
        ul.send_pdata([PDATA])
    with pytest.raises(LocalProtocolError):
        ul.release()
    ul.abort()  # a no-op: the A-ABORT is already sent
    assert ul.data_to_send() == [] and ul.state is State.Sta13


def test_finished_connection_refuses_everything_but_connection_lost() -> None:
    pair = Pair()
    pair.associate()
    pair.requestor.abort()
    pair.pump()
    ul = pair.acceptor
    assert ul.state is State.Sta1
    for call in LOCAL.values():
        if call is LOCAL[17]:
            continue
        with pytest.raises(LocalProtocolError, match=r"finished|acceptor"):
            call(ul)
    with pytest.raises(LocalProtocolError):
        ul.receive_data(PDATA)
    ul.connection_lost()
    assert ul.state is State.Sta1 and drain(ul) == []


# -- transport-side behaviour ----------------------------------------------------------------


def test_bytes_may_arrive_one_at_a_time_through_get_buffer() -> None:
    ul, _ = build(5, requestor=True)
    data = AC.to_bytes() + PDATA
    for i in range(len(data)):
        view = ul.get_buffer()
        view[0] = data[i]
        ul.buffer_updated(1)
        if i == len(AC.to_bytes()) - 2:
            assert ul.next_event() is None
    assert [type(e) for e in drain(ul)] == [AssociationAccepted, PDataReceived]


def test_events_are_produced_lazily_one_pdu_at_a_time() -> None:
    ul, _ = build(2, requestor=False)
    ul.receive_data(RQ.to_bytes() + PDATA)
    assert ul.state is State.Sta2  # nothing parsed yet
    assert ul.next_event() == AssociationRequested(RQ)
    assert ul.state is State.Sta3
    ul.accept(AC)  # the user answers before the next PDU is looked at
    event = ul.next_event()
    assert isinstance(event, PDataReceived)  # so the P-DATA arrives in Sta6: DT-2
    assert ul.state is State.Sta6 and ul.next_event() is None


def test_connection_lost_reads_the_peers_last_pdus_first() -> None:
    ul, _ = build(7, requestor=True)
    ul.receive_data(PDATA + AReleaseRP().to_bytes())
    ul.connection_lost()  # EOF came with the RP still unread
    assert [type(e) for e in drain(ul)] == [PDataReceived, ReleaseConfirmed, ConnectionClosed]
    assert ul.state is State.Sta1


def test_connection_lost_mid_association_is_a_provider_abort() -> None:
    ul, _ = build(6, requestor=False)
    ul.connection_lost("connection reset by peer")
    assert drain(ul) == [
        Aborted(2, 0, local=False, error="connection reset by peer"),
        ConnectionClosed(),
    ]
    assert not ul.wants_close


def test_connect_failure_and_abort_while_connecting() -> None:
    ul, _ = build(4, requestor=True)
    ul.connection_lost("connection refused")  # AA-4 in Sta4
    assert drain(ul) == [Aborted(2, 0, local=False, error="connection refused"),
                         ConnectionClosed()]
    ul, _ = build(4, requestor=True)
    ul.abort()  # AA-2 in Sta4: give up the connection attempt
    assert ul.wants_close and ul.state is State.Sta1
    assert drain(ul) == [ConnectionClosed()]
    assert ul.data_to_send() == []


def test_send_pdata_queues_the_buffers_themselves() -> None:
    ul, _ = build(6, requestor=True)
    header = bytes(PDATA[:12])
    payload = memoryview(bytearray(PDATA[12:]))
    ul.send_pdata([header, payload])
    out = ul.data_to_send()
    assert out[0] is header and out[1] is payload
    assert ul.data_to_send() == []


def test_received_pdata_body_is_a_view_not_a_copy() -> None:
    ul, _ = build(6, requestor=True)
    ul.receive_data(PDATA)
    event = ul.next_event()
    assert isinstance(event, PDataReceived)
    assert isinstance(event.body, memoryview) and bytes(event.body) == PDATA[6:]


def test_diagnostics_are_off_by_default_and_switchable() -> None:
    ul, _ = build(6, requestor=True)
    ul.send_pdata([PDATA])
    ul.receive_data(PDATA)
    assert [type(e) for e in drain(ul)] == [PDataReceived]
    ul.emit_pdus = True
    ul.send_pdata([PDATA[:12], PDATA[12:]])
    ul.receive_data(PDATA)
    events = drain(ul)
    assert [type(e) for e in events] == [PDUSent, PDUReceived, PDataReceived]
    sent, received = events[0], events[1]
    assert isinstance(sent, PDUSent) and isinstance(sent.pdu, RawPData)
    assert isinstance(received, PDUReceived) and isinstance(received.pdu, RawPData)
    expected = PDataTF.from_body(memoryview(PDATA)[6:])
    assert sent.pdu.decode() == received.pdu.decode() == (expected,)


def test_raw_pdata_decodes_several_pdus() -> None:
    raw = RawPData((PDATA, PDATA[:7], PDATA[7:]))
    assert len(raw.decode()) == 2


def test_diagnostic_order_for_a_received_pdu() -> None:
    ul, _ = build(2, requestor=False, emit_pdus=True, emit_transitions=True)
    ul.receive_data(RQ.to_bytes())
    events = drain(ul)
    assert [type(e) for e in events] == [PDUReceived, Transition, AssociationRequested]
    transition = events[1]
    assert isinstance(transition, Transition)
    assert (transition.state, transition.action.name, transition.next_state) == (
        State.Sta2, "AE-6", State.Sta3)


# -- random sequences on a pair (hypothesis) ------------------------------------------------------

# repeated names are drawn more often: releases need several steps to collide
PRIMITIVES = [
    "request",
    "accept",
    "accept",
    "reject",
    "send_pdata",
    "send_pdata",
    "release",
    "release",
    "release",
    "release_response",
    "release_response",
    "release_response",
    "abort",
    "network_dies",
]


class PairMachine(RuleBasedStateMachine):
    """Random primitives on both sides of a pair, with the clock moving on.

    Invariants: only LocalProtocolError comes out of an illegal call, and it
    changes nothing; ARTIM is armed exactly in Sta2 and Sta13; once everything
    is torn down both sides are in Sta1, each having reported one
    ConnectionClosed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair(acse_timeout=20.0, network_timeout=50.0)

    @initialize(start=st.sampled_from(["connect", "requested", "associated"]))
    def start(self, start: str) -> None:
        if start == "associated":
            self.pair.associate()
        else:
            self.pair.connect()
            if start == "requested":
                self.pair.pump()

    @rule(
        requestor=st.booleans(),
        primitive=st.sampled_from(PRIMITIVES),
        pump=st.booleans(),
    )
    def call(self, requestor: bool, primitive: str, pump: bool) -> None:
        ul = self.pair.side(requestor)
        before = (ul.state, ul.wants_close, ul.next_deadline(), len(ul._out), len(ul._events))
        calls: dict[str, Callable[[], None]] = {
            "request": lambda: ul.request_association(RQ),
            "accept": lambda: ul.accept(AC),
            "reject": lambda: ul.reject(RJ),
            "send_pdata": lambda: ul.send_pdata([PDATA]),
            "release": ul.release,
            "release_response": ul.release_response,
            "abort": ul.abort,
            "network_dies": self.network_dies,
        }
        try:
            calls[primitive]()
        except LocalProtocolError:
            # nothing changed, nothing was queued to send or to report
            after = (ul.state, ul.wants_close, ul.next_deadline(), len(ul._out), len(ul._events))
            assert after == before
        if pump:
            self.pair.pump()

    @precondition(lambda self: self.pair.requestor.state is self.pair.acceptor.state is State.Sta6)
    @rule()
    def both_release(self) -> None:
        """A release collision: both sides ask before either request arrives."""
        self.pair.requestor.release()
        self.pair.acceptor.release()
        self.pair.pump()

    def network_dies(self) -> None:
        if not self.pair.closed:
            self.pair.closed = True
            self.pair.requestor.connection_lost("network down")
            self.pair.acceptor.connection_lost("network down")

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 5.0, 25.0, 40.0]))
    def wait(self, seconds: float) -> None:
        self.pair.clock.t += seconds
        self.pair.requestor.handle_timer()
        self.pair.acceptor.handle_timer()

    @invariant()
    def artim_only_in_sta2_and_sta13(self) -> None:
        for ul in (self.pair.requestor, self.pair.acceptor):
            artim_states = (State.Sta2, State.Sta13)
            assert (ul._artim is not None) == (ul.state in artim_states), ul.state

    def teardown(self) -> None:
        pair = self.pair
        pair.pump()
        for _ in range(3):
            pair.clock.t += 1000.0
            for role in (True, False):
                pair.side(role).handle_timer()
            pair.pump()
        for role in (True, False):
            pair.side(role).connection_lost()
            pair.events[role] += drain(pair.side(role))
            assert pair.side(role).state is State.Sta1
            closed = [e for e in pair.events[role] if isinstance(e, ConnectionClosed)]
            assert len(closed) == 1


TestPairMachine = PairMachine.TestCase
TestPairMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
