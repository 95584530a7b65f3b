"""The DICOM Upper Layer connection, sans-IO (PS3.8 9): framing, state machine, timers.

:class:`UpperLayer` performs the actions of PS3.8 Tables 9-6 to 9-9 for one
transport connection; which action runs, and every change of state, is decided
by :mod:`dicomnet.fsm` (Table 9-10). It never touches a socket or a clock:

* the local user calls the primitives (:meth:`~UpperLayer.request_association`,
  :meth:`~UpperLayer.accept`, :meth:`~UpperLayer.send_pdata`,
  :meth:`~UpperLayer.release`, :meth:`~UpperLayer.abort`...); one that Table 9-10
  does not allow in the current state raises
  :class:`~dicomnet.errors.LocalProtocolError` and changes nothing;
* the transport feeds received bytes (:meth:`~UpperLayer.get_buffer` and
  :meth:`~UpperLayer.buffer_updated`, or :meth:`~UpperLayer.receive_data`),
  drains :meth:`~UpperLayer.next_event` -- which cuts and decodes one PDU at a
  time, lazily, and runs the state machine on it -- writes
  :meth:`~UpperLayer.data_to_send` and closes the connection when
  :attr:`~UpperLayer.wants_close` is set, then calls
  :meth:`~UpperLayer.connection_lost`;
* the transport waits until :meth:`~UpperLayer.next_deadline` and calls
  :meth:`~UpperLayer.handle_timer`, which reads the injected clock.

Decisions the standard leaves open, taken here:

* Evt19 covers a PDU that does not decode, an unknown PDU type and a PDU longer
  than our cap (:class:`~dicomnet.errors.PDUTooLarge`; the stream cannot be cut
  any further, so later input is discarded). The A-ABORT of AA-8 and AA-7 carries
  the error's reason (PS3.8 Table 9-26); for a well-formed PDU that is not
  expected in the state it is *unexpected PDU* (2).
* P-DATA-TF bodies are not decoded here: the DIMSE layer walks the PDVs and, if
  they are malformed, calls :meth:`UpperLayer.protocol_error`, which acts as
  Evt19 does.
* With ``stream_pdata_over`` set, a P-DATA-TF longer than that which starts in
  Sta6 (DT-2: the state does not change) is handed out in pieces as its bytes
  arrive (:meth:`UpperLayer.next_pdata_part`) rather than whole. The P-DATA
  indication is then spread over the pieces: its rest is indicated while
  Table 9-10 answers Evt10 with an indication (DT-2 in Sta6, AR-6 in Sta7,
  after a local A-RELEASE request) and ignored otherwise (AA-6 in Sta13, after
  a local abort). Such a PDU gives no :class:`PDUReceived` or
  :class:`Transition` (it began without diagnostics, as the batched
  :meth:`UpperLayer.next_pdata` gives none).
* The ACSE timeout (armed in Sta5, Sta7, Sta10 and Sta11, the states that await
  the peer's answer to an A-ASSOCIATE-RQ or A-RELEASE-RQ) and the network idle
  timeout (nothing received for ``network_timeout`` seconds in Sta3, Sta5 to
  Sta12) abort the association as the local user would: Evt15, AA-1, an A-ABORT
  with source service-user, since Table 9-10 has no provider abort other than
  AA-8's answer to a bad PDU. Unlike an :meth:`~UpperLayer.abort` of the user,
  they are reported with an :class:`~dicomnet.ul_events.Aborted` event
  (``local=True``).
* Our own aborts after a protocol error of the peer or a timeout are always
  reported as ``Aborted(local=True, error=...)``, in Sta2 too (where the user
  has not seen the association yet); the peer's aborts only where Table 9-10
  issues an indication (AA-3, AA-4).
* :meth:`~UpperLayer.abort` in Sta13 does nothing: the association is already
  gone and the connection is waiting to close.
* One :class:`UpperLayer` serves one connection: once Sta1 is reached again,
  every primitive raises :class:`~dicomnet.errors.LocalProtocolError` except
  :meth:`~UpperLayer.connection_lost`, which is then a no-op.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

from .errors import (
    AbortReason,
    AbortSource,
    LocalProtocolError,
    PDUDecodeError,
    PDUTooLarge,
    ProtocolError,
)
from .framing import PDUReader
from .fsm import CONNECTED_STATES, Event, State, StateMachine
from .pdu import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDUType,
    RejectReason,
    RejectResult,
    RejectSource,
    decode_pdu,
)
from .ul_events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    Buffer,
    ConnectionClosed,
    PDataReceived,
    PDUReceived,
    PDUSent,
    RawPData,
    ReleaseConfirmed,
    ReleaseRequested,
    Transition,
    ULEvent,
)

__all__ = [
    "ACSE_TIMEOUT_STATES",
    "NETWORK_TIMEOUT_STATES",
    "Aborted",
    "AssociationAccepted",
    "AssociationRejected",
    "AssociationRequested",
    "ConnectionClosed",
    "PDUReceived",
    "PDUSent",
    "PDataReceived",
    "RawPData",
    "ReleaseConfirmed",
    "ReleaseRequested",
    "Transition",
    "ULEvent",
    "UpperLayer",
]

#: States awaiting the peer's answer to our A-ASSOCIATE-RQ or A-RELEASE-RQ.
ACSE_TIMEOUT_STATES = frozenset({State.Sta5, State.Sta7, State.Sta10, State.Sta11})

#: States in which the network idle timeout runs (a connection is open and ARTIM is not).
NETWORK_TIMEOUT_STATES = CONNECTED_STATES - {State.Sta2, State.Sta13}

_EVENT_BY_PDU_TYPE: dict[int, Event] = {
    PDUType.A_ASSOCIATE_RQ: Event.Evt6,
    PDUType.A_ASSOCIATE_AC: Event.Evt3,
    PDUType.A_ASSOCIATE_RJ: Event.Evt4,
    PDUType.P_DATA_TF: Event.Evt10,
    PDUType.A_RELEASE_RQ: Event.Evt12,
    PDUType.A_RELEASE_RP: Event.Evt13,
    PDUType.A_ABORT: Event.Evt16,
}

_P_DATA_TF = int(PDUType.P_DATA_TF)
#: the actions of Table 9-10 that indicate a received P-DATA-TF to the user
_PDATA_INDICATIONS = frozenset({"DT-2", "AR-6"})
_STA6 = State.Sta6
_STA8 = State.Sta8
_RELEASE_RQ = AReleaseRQ()
_RELEASE_RP = AReleaseRP()
_PROTOCOL_VERSION_RJ = AAssociateRJ(
    RejectResult.PERMANENT,
    RejectSource.SERVICE_PROVIDER_ACSE,
    RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
)


class _Cause(NamedTuple):
    """What triggered an action: the event, the state it happened in, its data."""

    event: Event
    previous: State
    payload: object
    reason: int
    text: str | None


class UpperLayer:
    """One DICOM Upper Layer connection (PS3.8 9), driven by its caller.

    :param requestor: ``True`` for the association requestor (who connects),
        ``False`` for the acceptor.
    :param clock: monotonic seconds; read only to arm and fire timers.
    :param max_pdata_length: our Maximum Length Received (PS3.8 D.1): the
        largest P-DATA-TF variable field accepted, ``None`` or 0 for no limit.
    :param artim_timeout: seconds for the ARTIM timer (PS3.8 9.1.5).
    :param acse_timeout: seconds to wait for an A-ASSOCIATE-AC/RJ or an
        A-RELEASE-RP before aborting; ``None`` to wait for ever.
    :param network_timeout: abort after this many seconds without receiving a
        byte on an association; ``None`` (the default) to never do so.
    :param emit_pdus: also report :class:`PDUReceived` and :class:`PDUSent`.
    :param emit_transitions: also report a :class:`Transition` per state-machine step.
    :param stream_pdata_over: hand out the body of a P-DATA-TF longer than this
        many bytes in pieces as it arrives (:meth:`next_pdata_part`); ``None``
        (the default): every P-DATA-TF whole. A consumer that sets it takes
        :meth:`next_pdata_part` whenever :meth:`next_pdata` and
        :meth:`next_event` have nothing.
    """

    __slots__ = (
        "_ac",
        "_acse",
        "_artim",
        "_clock",
        "_discard_input",
        "_error",
        "_events",
        "_finished",
        "_fsm",
        "_last_rx",
        "_out",
        "_reader",
        "_rq",
        "_scratch",
        "_stream_over",
        "acse_timeout",
        "artim_timeout",
        "emit_pdus",
        "emit_transitions",
        "network_timeout",
        "wants_close",
    )

    def __init__(
        self,
        requestor: bool,
        clock: Callable[[], float],
        *,
        max_pdata_length: int | None = 16382,
        artim_timeout: float = 30.0,
        acse_timeout: float | None = 30.0,
        network_timeout: float | None = None,
        emit_pdus: bool = False,
        emit_transitions: bool = False,
        stream_pdata_over: int | None = None,
    ) -> None:
        self._fsm = StateMachine(requestor)
        self._clock = clock
        self._reader = PDUReader(max_pdata_length)
        self.artim_timeout = artim_timeout
        self.acse_timeout = acse_timeout
        self.network_timeout = network_timeout
        self.emit_pdus = emit_pdus
        self.emit_transitions = emit_transitions
        self._stream_over = stream_pdata_over or 0
        #: set when an action closes the transport connection: write out
        #: :meth:`data_to_send`, close, then call :meth:`connection_lost`.
        self.wants_close = False
        self._events: deque[ULEvent] = deque()
        self._out: list[Buffer] = []
        self._artim: float | None = None
        self._acse: float | None = None
        self._last_rx = 0.0
        self._finished = False
        self._discard_input = False
        self._scratch: bytearray | None = None
        self._error: str | None = None
        self._rq: AAssociateRQ | None = None
        self._ac: AAssociateAC | None = None

    # -- properties -------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state, Sta1 to Sta13."""
        return self._fsm.state

    @property
    def requestor(self) -> bool:
        return self._fsm.requestor

    @property
    def max_pdata_length(self) -> int | None:
        """Largest P-DATA-TF variable field accepted (``None``: no limit)."""
        return self._reader.max_pdata_length or None

    @max_pdata_length.setter
    def max_pdata_length(self, value: int | None) -> None:
        self._reader.max_pdata_length = value

    @property
    def stream_pdata_over(self) -> int | None:
        """P-DATA-TF bodies longer than this are streamed (``None``: none is)."""
        return self._stream_over or None

    @stream_pdata_over.setter
    def stream_pdata_over(self, value: int | None) -> None:
        self._stream_over = value or 0

    @property
    def rq(self) -> AAssociateRQ | None:
        """The A-ASSOCIATE-RQ of this association: the one we sent, or the one received."""
        return self._rq

    @property
    def ac(self) -> AAssociateAC | None:
        """The A-ASSOCIATE-AC of this association: the one we sent, or the one received."""
        return self._ac

    # -- local primitives (each one event of Table 9-10) ------------------------------------

    def request_association(self, rq: AAssociateRQ) -> None:
        """A-ASSOCIATE request (Evt1, AE-1); then open the transport connection."""
        if not self._fsm.requestor:
            raise LocalProtocolError("an association acceptor cannot request an association")
        self._primitive(Event.Evt1, rq)

    def connection_made(self) -> None:
        """The transport connection is open: Evt2 (requestor, AE-2) or Evt5 (acceptor, AE-5)."""
        self._primitive(Event.Evt2 if self._fsm.requestor else Event.Evt5)

    def accept(self, ac: AAssociateAC) -> None:
        """A-ASSOCIATE response (accept): send the A-ASSOCIATE-AC (Evt7, AE-7)."""
        self._primitive(Event.Evt7, ac)

    def reject(self, rj: AAssociateRJ) -> None:
        """A-ASSOCIATE response (reject): send the A-ASSOCIATE-RJ (Evt8, AE-8)."""
        self._primitive(Event.Evt8, rj)

    def send_pdata(self, buffers: Sequence[Buffer]) -> None:
        """P-DATA request (Evt9: DT-1 in Sta6, AR-7 in Sta8).

        ``buffers`` together are one or more whole, already framed P-DATA-TF PDUs
        (see ``dimse.fragment_message``); they are queued as they are, uncopied.
        """
        state = self._fsm.state
        if (state is _STA6 or state is _STA8) and not (self.emit_pdus or self.emit_transitions):
            self._out.extend(buffers)  # DT-1 / AR-7, the state does not change
            return
        self._primitive(Event.Evt9, buffers)

    def release(self) -> None:
        """A-RELEASE request: send A-RELEASE-RQ (Evt11, AR-1)."""
        self._primitive(Event.Evt11)

    def release_response(self) -> None:
        """A-RELEASE response: send A-RELEASE-RP (Evt14: AR-4 in Sta8/Sta12, AR-9 in Sta9)."""
        self._primitive(Event.Evt14)

    def abort(self) -> None:
        """A-ABORT request (Evt15): A-ABORT PDU with source service-user (AA-1), or
        close the connection being opened (AA-2, Sta4). Does nothing in Sta13."""
        if self._fsm.state is State.Sta13:
            return
        self._primitive(Event.Evt15)

    def connection_lost(self, error: str | None = None) -> None:
        """The transport connection is closed (Evt17); ``error`` says why, if known.

        Whole PDUs already received are processed first (the peer's last words,
        an A-ABORT or A-RELEASE-RP before it closed). A no-op in Sta1.
        """
        if self._fsm.state is State.Sta1:
            return
        self._drain()
        if self._finished:  # the peer's last PDU ended the association
            return
        self._fire(Event.Evt17, text=error or "the transport connection was closed")

    def protocol_error(self, exc: ProtocolError) -> None:
        """The layer above found the peer's P-DATA malformed: act as for Evt19.

        That is AA-8 (A-ABORT with ``exc.abort_reason``, an :class:`Aborted`
        event, ARTIM, Sta13) on an association, and nothing where there is no
        association to abort (Sta1, Sta4, Sta13).
        """
        if self._fsm.state in (State.Sta1, State.Sta4, State.Sta13):
            return
        self._fire(Event.Evt19, reason=exc.abort_reason, text=str(exc))

    # -- transport side ---------------------------------------------------------------------

    def get_buffer(self) -> memoryview:
        """Writable space to ``recv_into``; report the amount with :meth:`buffer_updated`."""
        if self._discard_input:
            if self._scratch is None:
                self._scratch = bytearray(65536)
            return memoryview(self._scratch)
        self._check_receiving()
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` were written into the last :meth:`get_buffer` view."""
        if self._discard_input:
            return
        self._check_receiving()
        self._reader.buffer_updated(nbytes)
        if self.network_timeout is not None:
            self._last_rx = self._clock()

    def receive_data(self, data: Buffer) -> None:
        """Bytes received (copied into the receive buffer). End of stream is
        :meth:`connection_lost`, not empty data."""
        if self._discard_input:
            return
        self._check_receiving()
        self._reader.feed(data)
        if self.network_timeout is not None:
            self._last_rx = self._clock()

    def next_event(self) -> ULEvent | None:
        """The next event, or ``None`` when more bytes are needed.

        Received PDUs are cut and decoded here, one at a time, and each runs the
        state machine; answers it calls for are queued for :meth:`data_to_send`.
        """
        events = self._events
        if events:
            return events.popleft()
        fsm = self._fsm
        while (item := self._read_pdu()) is not None:
            pdu_type, body = item
            if (
                pdu_type == _P_DATA_TF
                and fsm.state is _STA6
                and not (self.emit_pdus or self.emit_transitions)
            ):
                return PDataReceived(body)  # DT-2, the state does not change
            self._receive_pdu(pdu_type, body)
            if events:
                return events.popleft()
        return events.popleft() if events else None

    def next_pdata(self) -> list[memoryview]:
        """The bodies of the P-DATA-TF PDUs received, in order, as one batch.

        The bulk form of what :meth:`next_event` returns one
        :class:`~dicomnet.ul_events.PDataReceived` at a time in Sta6 (DT-2; the
        state does not change), for a transport that moves many PDUs per read.
        It returns what ``next_event`` would, in the same order, and leaves
        everything else to it: an empty list while events are queued, outside
        Sta6, with the diagnostic events switched on, or when the next PDU is of
        another type (or too long) -- then call :meth:`next_event`. A body
        returned here has been through the state machine exactly as one
        returned by ``next_event``.
        """
        if (
            self._events
            or self._discard_input
            or self._fsm.state is not _STA6
            or self.emit_pdus
            or self.emit_transitions
        ):
            return []
        bodies: list[memoryview] = []
        next_pdu = self._reader.next_pdu
        stream_over = self._stream_over
        try:
            while (item := next_pdu(_P_DATA_TF, stream_over)) is not None:
                bodies.append(item[1])
        except PDUTooLarge:
            pass  # not consumed: next_event() reads it again and aborts (Evt19)
        return bodies

    def next_pdata_part(self) -> tuple[memoryview, int] | None:
        """The next piece of a long P-DATA-TF body as it arrives: ``(piece, left)``.

        Only with :attr:`stream_pdata_over` set. ``piece`` is a view of the
        receive buffer (never empty), ``left`` how many bytes of the PDU's body
        follow it: the PDU ends with the piece whose ``left`` is 0, and until
        then :meth:`next_pdata` and :meth:`next_event` leave the stream alone.
        A body starts streaming here only as :meth:`next_pdata` would hand it
        out whole -- in Sta6, no events queued, no diagnostics -- once its
        header (checked against our Maximum Length Received first) and some of
        it have arrived; its rest is handed out while Evt10 would be indicated
        (Sta6, Sta7) and dropped otherwise (see the module docstring). ``None``
        when there is no piece: then call :meth:`next_event`.
        """
        reader = self._reader
        if reader.streaming:
            if self._discard_input or not self._streamed_pdata_indicated():
                self._skip_streamed_pdata()
                return None
            return reader.next_pdata_part()
        if (
            not self._stream_over
            or self._events
            or self._discard_input
            or self._fsm.state is not _STA6
            or self.emit_pdus
            or self.emit_transitions
        ):
            return None
        try:
            return reader.next_pdata_part(self._stream_over)
        except PDUTooLarge:
            return None  # not consumed: next_event() reads it again and aborts (Evt19)

    def data_to_send(self) -> list[Buffer]:
        """Take the bytes to write, in order (one ``sendmsg`` can write them all)."""
        out = self._out
        self._out = []
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called (clock time), or ``None``."""
        deadlines = [d for d in (self._artim, self._acse, self._idle_deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self) -> None:
        """Fire the timers that are due by the clock, earliest first: ARTIM (Evt18),
        the ACSE and the network timeouts (Evt15). Harmless to call early or often."""
        now = self._clock()
        while True:
            state = self._fsm.state
            due = [
                (deadline, kind)
                for deadline, kind in (
                    (self._artim, 0),
                    (self._acse, 1),
                    (self._idle_deadline(), 2),
                )
                if deadline is not None and deadline <= now
            ]
            if not due:
                return
            _, kind = min(due)
            if kind == 0:
                self._artim = None
                text = None
                if state is State.Sta2:
                    text = f"ARTIM timer expired: no A-ASSOCIATE-RQ within {self.artim_timeout:g} s"
                self._fire(Event.Evt18, text=text)
            elif kind == 1:
                self._acse = None
                awaited = "A-ASSOCIATE-AC or -RJ" if state is State.Sta5 else "A-RELEASE-RP"
                self._fire(
                    Event.Evt15, text=f"ACSE timeout: no {awaited} within {self.acse_timeout:g} s"
                )
            else:
                self._fire(
                    Event.Evt15,
                    text=f"network timeout: nothing received for {self.network_timeout:g} s",
                )

    # -- machinery ----------------------------------------------------------------------------

    def _idle_deadline(self) -> float | None:
        if self.network_timeout is None or self._fsm.state not in NETWORK_TIMEOUT_STATES:
            return None
        return self._last_rx + self.network_timeout

    def _check_receiving(self) -> None:
        if self._fsm.state not in CONNECTED_STATES:
            raise LocalProtocolError(
                f"no transport connection is open in {self._fsm.state} "
                f"({self._fsm.state.description})"
            )

    def _primitive(self, event: Event, payload: object = None) -> None:
        if self._finished:
            raise LocalProtocolError(
                "the connection is finished (back in Sta1); use a new UpperLayer"
                + (f"; it ended with: {self._error}" if self._error else "")
            )
        try:
            self._fire(event, payload)
        except LocalProtocolError as exc:
            if self._error:
                msg = f"{exc}; the association was aborted: {self._error}"
                raise LocalProtocolError(msg) from None
            raise

    def _read_pdu(self) -> tuple[int, memoryview] | None:
        """The next whole PDU received, if there is a connection to read and one is there.

        A PDU announcing more than our cap is Evt19; the stream cannot be cut
        after it, so all further input is discarded.
        """
        state = self._fsm.state
        if self._discard_input or state not in CONNECTED_STATES:
            return None
        reader = self._reader
        if reader.streaming:
            if self._streamed_pdata_indicated():
                return None  # the rest of a streamed body is next_pdata_part()'s
            if not self._skip_streamed_pdata():
                return None
        stream_over = 0
        if state is _STA6 and not (self.emit_pdus or self.emit_transitions):
            stream_over = self._stream_over
        try:
            return reader.next_pdu(None, stream_over)
        except PDUTooLarge as exc:
            self._discard_input = True
            self._fire(Event.Evt19, reason=exc.abort_reason, text=str(exc))
            return None

    def _streamed_pdata_indicated(self) -> bool:
        """Whether Table 9-10 indicates a P-DATA-TF now (DT-2, AR-6): a streamed body goes on."""
        action = self._fsm.action_for(Event.Evt10)
        return action is not None and action.name in _PDATA_INDICATIONS

    def _skip_streamed_pdata(self) -> bool:
        """Drop what has arrived of a streamed body (AA-6); whether all of it has."""
        reader = self._reader
        while reader.next_pdata_part() is not None:
            pass
        return not reader.streaming

    def _drain(self) -> None:
        """Run the state machine on every whole PDU received, queueing all events."""
        while (item := self._read_pdu()) is not None:
            self._receive_pdu(*item)

    def _receive_pdu(self, pdu_type: int, body: memoryview) -> None:
        """Classify one received PDU as an event of Table 9-10 and fire it."""
        if pdu_type == _P_DATA_TF:
            if self.emit_pdus:
                self._events.append(PDUReceived(RawPData.from_body(body)))
            self._fire(Event.Evt10, body)
            return
        try:
            pdu = decode_pdu(pdu_type, body)
        except PDUDecodeError as exc:
            self._fire(Event.Evt19, reason=exc.abort_reason, text=str(exc))
            return
        if self.emit_pdus:
            self._events.append(PDUReceived(pdu))
        event = _EVENT_BY_PDU_TYPE[pdu_type]
        acceptable = True
        if isinstance(pdu, AAssociateRQ):
            # AE-6: the service provider's own check; PS3.8 9.3.2 -- a receiver
            # implementing only version 1 tests only that bit 0 is set
            acceptable = bool(pdu.protocol_version & 1)
        self._fire(event, pdu, acceptable=acceptable)

    def _fire(
        self,
        event: Event,
        payload: object = None,
        *,
        reason: int = AbortReason.NOT_SPECIFIED,
        text: str | None = None,
        acceptable: bool = True,
    ) -> None:
        """Run ``event`` through Table 9-10 and perform the action it selects."""
        mark = len(self._events)
        action, previous = self._fsm.fire(event, acceptable=acceptable)
        new = self._fsm.state
        if action.stop_artim:
            self._artim = None
        if action.start_artim:
            self._artim = self._clock() + self.artim_timeout
        if action.close_transport:
            self.wants_close = True
        _EFFECTS[action.name](self, _Cause(event, previous, payload, reason, text))
        if new is not previous:
            self._entered(previous, new)
        if self.emit_transitions:
            self._events.insert(mark, Transition(previous, event, action, new))

    def _entered(self, previous: State, new: State) -> None:
        if new in ACSE_TIMEOUT_STATES:
            if previous not in ACSE_TIMEOUT_STATES and self.acse_timeout is not None:
                self._acse = self._clock() + self.acse_timeout
        else:
            self._acse = None
        if new is State.Sta1:
            self._finished = True
            self._artim = None
            self._events.append(ConnectionClosed())

    def _emit(self, event: ULEvent) -> None:
        self._events.append(event)

    def _send(self, pdu: PDU) -> None:
        self._out.append(pdu.to_bytes())
        if self.emit_pdus:
            self._events.append(PDUSent(pdu))

    def _send_pdata(self, buffers: Sequence[Buffer]) -> None:
        self._out.extend(buffers)
        if self.emit_pdus:
            self._events.append(PDUSent(RawPData(tuple(buffers))))

    def _abort_text(self, cause: _Cause) -> str:
        """Why we abort: the given text, or the received PDU was unexpected."""
        if cause.text is not None:
            return cause.text
        return (
            f"unexpected {cause.event.description} in {cause.previous} "
            f"({cause.previous.description})"
        )

    def _abort_reason(self, cause: _Cause) -> int:
        return cause.reason if cause.event is Event.Evt19 else AbortReason.UNEXPECTED_PDU

    def _local_abort(self, source: int, reason: int, text: str) -> None:
        self._error = text
        self._emit(Aborted(source, reason, local=True, error=text))

    # -- the actions of PS3.8 Tables 9-6 to 9-9 ----------------------------------------------

    def _ae_1(self, cause: _Cause) -> None:
        assert isinstance(cause.payload, AAssociateRQ)
        self._rq = cause.payload

    def _ae_2(self, cause: _Cause) -> None:
        assert self._rq is not None
        self._last_rx = self._clock()
        self._send(self._rq)

    def _ae_3(self, cause: _Cause) -> None:
        assert isinstance(cause.payload, AAssociateAC)
        self._ac = cause.payload
        self._emit(AssociationAccepted(cause.payload))

    def _ae_4(self, cause: _Cause) -> None:
        assert isinstance(cause.payload, AAssociateRJ)
        self._emit(AssociationRejected(cause.payload))

    def _ae_5(self, cause: _Cause) -> None:
        self._last_rx = self._clock()

    def _ae_6(self, cause: _Cause) -> None:
        assert isinstance(cause.payload, AAssociateRQ)
        self._rq = cause.payload
        if self._fsm.state is State.Sta3:
            self._emit(AssociationRequested(cause.payload))
        else:  # not acceptable to the service provider: reject and start ARTIM
            self._send(_PROTOCOL_VERSION_RJ)
            self._artim = self._clock() + self.artim_timeout

    def _ae_7(self, cause: _Cause) -> None:
        assert isinstance(cause.payload, AAssociateAC)
        self._ac = cause.payload
        self._send(cause.payload)

    def _ae_8(self, cause: _Cause) -> None:
        assert isinstance(cause.payload, AAssociateRJ)
        self._send(cause.payload)

    def _send_pdata_action(self, cause: _Cause) -> None:  # DT-1, AR-7
        self._send_pdata(cast("Sequence[Buffer]", cause.payload))

    def _pdata_indication(self, cause: _Cause) -> None:  # DT-2, AR-6
        assert isinstance(cause.payload, memoryview)
        self._emit(PDataReceived(cause.payload))

    def _ar_1(self, cause: _Cause) -> None:
        self._send(_RELEASE_RQ)

    def _ar_2(self, cause: _Cause) -> None:
        self._emit(ReleaseRequested(collision=False))

    def _release_confirmation(self, cause: _Cause) -> None:  # AR-3, AR-10
        self._emit(ReleaseConfirmed())

    def _send_release_rp(self, cause: _Cause) -> None:  # AR-4, AR-9
        self._send(_RELEASE_RP)

    def _nothing(self, cause: _Cause) -> None:  # AR-5, AA-5, AA-6: timers/ignoring only
        pass

    def _ar_8(self, cause: _Cause) -> None:
        self._emit(ReleaseRequested(collision=True))

    def _aa_1(self, cause: _Cause) -> None:
        source, reason = AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED
        self._send(AAbort(source, reason))
        if cause.event is not Event.Evt15 or cause.text is not None:
            # not the user's own abort: a timeout, or a bad PDU in Sta2
            self._local_abort(source, reason, self._abort_text(cause))

    def _aa_2(self, cause: _Cause) -> None:
        if cause.text is not None:  # ARTIM expired in Sta2
            self._local_abort(AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED, cause.text)

    def _aa_3(self, cause: _Cause) -> None:
        assert isinstance(cause.payload, AAbort)
        self._emit(Aborted(cause.payload.source, cause.payload.reason, local=False))

    def _aa_4(self, cause: _Cause) -> None:
        self._emit(
            Aborted(
                AbortSource.SERVICE_PROVIDER,
                AbortReason.NOT_SPECIFIED,
                local=False,
                error=cause.text,
            )
        )

    def _aa_7(self, cause: _Cause) -> None:
        self._send(AAbort(AbortSource.SERVICE_PROVIDER, self._abort_reason(cause)))

    def _aa_8(self, cause: _Cause) -> None:
        source, reason = AbortSource.SERVICE_PROVIDER, self._abort_reason(cause)
        self._send(AAbort(source, reason))
        self._local_abort(source, reason, self._abort_text(cause))


_EFFECTS: dict[str, Callable[[UpperLayer, _Cause], None]] = {
    "AE-1": UpperLayer._ae_1,
    "AE-2": UpperLayer._ae_2,
    "AE-3": UpperLayer._ae_3,
    "AE-4": UpperLayer._ae_4,
    "AE-5": UpperLayer._ae_5,
    "AE-6": UpperLayer._ae_6,
    "AE-7": UpperLayer._ae_7,
    "AE-8": UpperLayer._ae_8,
    "DT-1": UpperLayer._send_pdata_action,
    "DT-2": UpperLayer._pdata_indication,
    "AR-1": UpperLayer._ar_1,
    "AR-2": UpperLayer._ar_2,
    "AR-3": UpperLayer._release_confirmation,
    "AR-4": UpperLayer._send_release_rp,
    "AR-5": UpperLayer._nothing,
    "AR-6": UpperLayer._pdata_indication,
    "AR-7": UpperLayer._send_pdata_action,
    "AR-8": UpperLayer._ar_8,
    "AR-9": UpperLayer._send_release_rp,
    "AR-10": UpperLayer._release_confirmation,
    "AA-1": UpperLayer._aa_1,
    "AA-2": UpperLayer._aa_2,
    "AA-3": UpperLayer._aa_3,
    "AA-4": UpperLayer._aa_4,
    "AA-5": UpperLayer._nothing,
    "AA-6": UpperLayer._nothing,
    "AA-7": UpperLayer._aa_7,
    "AA-8": UpperLayer._aa_8,
}
