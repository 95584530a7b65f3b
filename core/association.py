"""An association with a peer AE: pynetdicom's ``Association``, over the sans-IO kernel.

The threaded transport in one picture::

    user thread(s)                         the association's thread
    ──────────────                         ────────────────────────
    send_c_echo() ─ encode ─ sendmsg ──►   wait_readable(next deadline)
         │                                  recv_into(framing buffer)
         └── wait on a condition  ◄──────   UpperLayer → MessageAssembler → route:
             (or read, if nobody does)        responses → wake the waiting caller
                                              requests  → service class → handler

One thread per association, no polling and no queues between layers: the
thread receives straight into the framing buffer what has arrived (one
``recv`` on a non-blocking socket), blocks in ``select`` with the kernel's
next deadline as its timeout only when nothing has, and runs the kernel,
taking received P-DATA-TF bodies in batches (``UpperLayer.next_pdata``), the
body of a long one in pieces as it arrives (``UpperLayer.next_pdata_part``),
and streaming a data set's fragments straight to its sink. Writes happen in
whichever thread has something to send, one ``sendmsg`` per batch of PDUs,
serialised per DIMSE message so that messages never interleave.

Reading is done by one thread at a time: the *pump*. An acceptor's own thread
is its pump for good: requests are served there. A requestor's reading goes to
whoever waits: the thread that asked for the association pumps during the
negotiation, and afterwards a caller waiting for a response reads it itself
when nobody else reads -- a response then wakes the one thread that waits for
it, not the association's thread and then the caller. The association's own
thread reads only once no caller has waited for :data:`CALLER_LINGER` seconds
(the peer's release or abort, the peer's requests, the timers), and waits for
bytes without the pump role, so that a caller can take it at any moment.
Whoever pumps processes everything that arrives: other threads' responses
(they sleep on a condition), requests of the peer's (served there: a C-GET
caller runs the C-STORE sub-operations' handler), C-CANCELs. A handler that
must wait for a response itself (a C-GET SCP sending C-STORE sub-operations)
pumps re-entrantly: responses and C-CANCELs are processed at once, new
requests wait until the handler returns.

Statuses follow the documented pynetdicom semantics: a response's status comes
back as a :class:`pydicom.Dataset`, an empty one when the peer timed out,
aborted or sent an invalid response; :class:`RuntimeError` without an
established association; :class:`ValueError` without an accepted presentation
context.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from pydicom.dataset import Dataset
from pydicom.uid import UID

from . import dimse_messages as dm
from . import service_user as scu
from ._logging import ACSE_LOGGER, DIMSE_LOGGER, INFO, log_acse, log_dimse
from .acceptor import serve_as_acceptor
from .acse import (
    NegotiatedContext,
    NegotiationResult,
    describe_rejection,
    interpret_associate_response,
)
from .dimse import DatasetCollector, DatasetFragment, MessageAssembler, MessageIDs, fragment_message
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    EVT_ABORTED,
    EVT_ACCEPTED,
    EVT_ACSE_RECV,
    EVT_ACSE_SENT,
    EVT_CONN_CLOSE,
    EVT_CONN_OPEN,
    EVT_DATA_RECV,
    EVT_DATA_SENT,
    EVT_DIMSE_RECV,
    EVT_DIMSE_SENT,
    EVT_ESTABLISHED,
    EVT_FSM_TRANSITION,
    EVT_PDU_RECV,
    EVT_PDU_SENT,
    EVT_REJECTED,
    EVT_RELEASED,
    EVT_REQUESTED,
    EventType,
    HandlerTable,
    InterventionEvent,
    NotificationEvent,
    trigger_intervention,
    trigger_notification,
)
from .fsm import State
from .pdu import AAssociateAC, AAssociateRJ, AAssociateRQ
from .presentation import PresentationContext
from .server import tls_channel
from .service_provider import ContextView, context_view, dispatch
from .service_user import uid_name
from .spool import Received, SpooledDataset
from .status import code_to_category
from .transport import Channel
from .ul_events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    ConnectionClosed,
    PDataReceived,
    PDUReceived,
    PDUSent,
    ReleaseConfirmed,
    ReleaseRequested,
    Transition,
    ULEvent,
)
from .upper_layer import UpperLayer

if TYPE_CHECKING:  # pragma: no cover
    from .ae import ApplicationEntity
    from .server import AssociationServer
    from .service import DatasetSink

__all__ = ["Association", "ServiceUser"]

LOGGER = logging.getLogger("dicomnet.assoc")

_monotonic = time.monotonic

#: a requestor's own thread leaves the reading to callers (a thread waiting for a
#: response reads it itself) until none has waited for this many seconds
CALLER_LINGER = 0.05

#: P-DATA-TF PDUs longer than this are received in pieces as they arrive
#: (``UpperLayer.next_pdata_part``): a data set is written while the rest of its
#: PDU is on the wire, and a read holds a receive chunk, not a whole PDU
STREAM_PDATA_OVER = 64 * 1024


class ServiceUser:
    """One side of an association: who it is and what it announced (``assoc.requestor``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.ae_title = ""
        self.address = ""
        self.port: int | None = None
        self.maximum_length: int | None = None
        self.implementation_class_uid: UID | None = None
        self.implementation_version_name: str | None = None
        self.asynchronous_operations: tuple[int, int] = (1, 1)
        self.role_selection: dict[UID, Any] = {}
        self.sop_class_extended: dict[UID, bytes] = {}
        self.sop_class_common_extended: dict[UID, Any] = {}
        self.user_identity: Any = None

    @property
    def is_requestor(self) -> bool:
        return self.mode == "requestor"

    @property
    def is_acceptor(self) -> bool:
        return self.mode == "acceptor"

    @property
    def info(self) -> dict[str, Any]:
        return {
            "ae_title": self.ae_title,
            "address": self.address,
            "port": self.port,
            "mode": self.mode,
            "pdv_size": self.maximum_length,
        }

    def __repr__(self) -> str:
        return f"<ServiceUser {self.mode} {self.ae_title!r} {self.address}:{self.port}>"


class _Incoming:
    """A received message whose data set is still arriving: collected, or streamed to a sink."""

    __slots__ = ("collector", "context_id", "message", "sink")

    def __init__(
        self, context_id: int, message: dm.DimseMessage, sink: DatasetSink | None = None
    ) -> None:
        self.context_id = context_id
        self.message = message
        self.sink = sink
        self.collector = DatasetCollector() if sink is None else None

    def abort(self) -> None:
        """The data set will never be complete: release what the sink holds (a temp file)."""
        if self.sink is not None:
            self.sink.abort()


class Association(threading.Thread):
    """An association with a peer AE, requested (``"requestor"``) or accepted (``"acceptor"``).

    Created by :meth:`ApplicationEntity.associate` (requestor) or by an
    association server (acceptor); applications do not usually build one.
    """

    def __init__(self, ae: ApplicationEntity, mode: str) -> None:
        if mode not in ("requestor", "acceptor"):
            raise ValueError(f"mode must be 'requestor' or 'acceptor', not {mode!r}")
        super().__init__(daemon=True)
        self._ae = ae
        self._mode = mode
        self.requestor = ServiceUser("requestor")
        self.acceptor = ServiceUser("acceptor")
        self.is_established = False
        self.is_rejected = False
        self.is_aborted = False
        self.is_released = False
        self.acse_timeout: float | None = ae.acse_timeout
        self.dimse_timeout: float | None = ae.dimse_timeout
        self.network_timeout: float | None = ae.network_timeout
        self._server: AssociationServer | None = None
        self._handlers = HandlerTable(ae._handlers)
        self._listen_version = -1
        self._listening: frozenset[EventType] = frozenset()

        self._channel: Channel | None = None
        self._ul: UpperLayer | None = None
        self._assembler = MessageAssembler()
        self._negotiation: NegotiationResult | None = None
        self._rq: AAssociateRQ | None = None
        self._accepted: list[PresentationContext] = []
        self._rejected: list[PresentationContext] = []
        self._by_id: dict[int, NegotiatedContext] = {}
        self._context_views: dict[int, ContextView] = {}  # built on first use (service_provider)
        self._max_send = 16382

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        #: where a requestor's own thread waits while callers read (see _watch)
        self._idle_cond = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        #: the thread that reads now (the pump), if any; changed under _lock
        self._pump_ident: int | None = None
        #: threads waiting in _wait (for a response, a release...), and when the last one
        #: left; both under _lock
        self._callers = 0
        self._last_call = 0.0
        self._closed = False
        self._released_event = threading.Event()
        self._message_ids = MessageIDs()
        self._responses: dict[int, collections.deque[tuple[dm.DimseResponse, bytes | None]]] = {}
        #: Message IDs of the requests being served (or waiting to be) as SCP, and those of
        #: them a C-CANCEL-RQ arrived for (PS3.7 9.3.2.3); an ID leaves both when its
        #: request is done, so that a later request may reuse it
        self._serving: set[int] = set()
        self._cancelled: set[int] = set()
        self._incoming: _Incoming | None = None
        self._deferred: collections.deque[tuple[int, dm.DimseMessage, Received | None]] = (
            collections.deque()
        )
        self._handler_depth = 0
        #: the peer's A-RELEASE-RQ, answered once the requests received before it are
        #: (we may still send P-DATA in Sta8: PS3.8 Table 9-10, AR-7)
        self._release_requested: ReleaseRequested | None = None
        #: handlers waiting for a response of the peer's (re-entrant pumps)
        self._handler_waits = 0
        self._pending_tls: tuple[Any, Any] | None = None
        self._handshaking: Any = None  # the TLS socket while its handshake runs
        self._stop_requested = False  # abort() came before the Upper Layer existed
        self._close_after_flush = False  # we aborted: end the stream once the A-ABORT is out
        self._contexts_override: Sequence[PresentationContext] | None = None
        self._ae_title_override: str | None = None

    # -- pynetdicom properties ----------------------------------------------------------------
    @property
    def ae(self) -> ApplicationEntity:
        """The local AE."""
        return self._ae

    @property
    def mode(self) -> str:
        """``"requestor"`` or ``"acceptor"``."""
        return self._mode

    @property
    def is_requestor(self) -> bool:
        return self._mode == "requestor"

    @property
    def is_acceptor(self) -> bool:
        return self._mode == "acceptor"

    @property
    def local(self) -> dict[str, Any]:
        """Information about the local AE."""
        return (self.requestor if self.is_requestor else self.acceptor).info

    @property
    def remote(self) -> dict[str, Any]:
        """Information about the peer AE."""
        return (self.acceptor if self.is_requestor else self.requestor).info

    @property
    def accepted_contexts(self) -> list[PresentationContext]:
        """The presentation contexts the acceptor accepted."""
        return list(self._accepted)

    @property
    def rejected_contexts(self) -> list[PresentationContext]:
        """The presentation contexts the acceptor rejected."""
        return list(self._rejected)

    @property
    def negotiation(self) -> NegotiationResult | None:
        """Everything negotiated: contexts, limits, windows, identity (``None`` before)."""
        return self._negotiation

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    # -- events -------------------------------------------------------------------------------
    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] | None = None
    ) -> None:
        """Bind ``handler`` (``handler(event, *args)``) to ``event`` on this association."""
        self._handlers.bind(event, handler, args)

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        """Unbind ``handler`` from ``event``."""
        self._handlers.unbind(event, handler)

    def get_handlers(self, event: EventType) -> Any:
        """Handlers bound to ``event`` on this association (pynetdicom's return shapes)."""
        return self._handlers.get_handlers(event)

    def get_events(self) -> list[EventType]:
        """Events with a handler bound on this association."""
        return self._handlers.get_events()

    def _listens(self, event: EventType) -> bool:
        """Whether a notification needs building; recomputed only when bindings change."""
        version = self._handlers.version
        if version != self._listen_version:
            self._listen_version = version
            self._listening = frozenset(e for e in _DIAGNOSTIC_EVENTS if self._handlers.listens(e))
            ul = self._ul
            if ul is not None:
                ul.emit_pdus = bool(self._listening & {EVT_PDU_RECV, EVT_PDU_SENT})
                ul.emit_transitions = EVT_FSM_TRANSITION in self._listening
        if event in _DIAGNOSTIC_SET:  # answered by the set above: no walk up the handler tables
            return event in self._listening
        return self._handlers.listens(event)

    def _notify(self, event: NotificationEvent, **attrs: Any) -> None:
        if (event is EVT_ACSE_SENT or event is EVT_ACSE_RECV) and ACSE_LOGGER.isEnabledFor(INFO):
            log_acse(self, attrs.get("primitive"), sent=event is EVT_ACSE_SENT)
        if self._listens(event):
            trigger_notification(self._handlers, self, event, attrs)

    def _intervene(self, event: InterventionEvent, attrs: dict[str, Any]) -> Any:
        return trigger_intervention(self._handlers, self, event, attrs)

    # -- wiring -------------------------------------------------------------------------------
    def set_socket(self, sock: socket.socket | Channel) -> None:
        """Give the association its connected socket (once)."""
        if self._channel is not None:
            raise RuntimeError("The Association already has a socket set")
        channel = sock if isinstance(sock, Channel) else Channel(sock)
        self._channel = channel
        local = self.requestor if self.is_requestor else self.acceptor
        peer = self.acceptor if self.is_requestor else self.requestor
        local.address, local.port = channel.local[0], channel.local[1]
        peer.address, peer.port = channel.peer[0], channel.peer[1]

    def _make_upper_layer(self) -> UpperLayer:
        ul = UpperLayer(
            self.is_requestor,
            _monotonic,
            max_pdata_length=self._ae.maximum_pdu_size or None,
            # as in pynetdicom, the ACSE timeout also bounds ARTIM: the wait for an
            # A-ASSOCIATE-RQ after a connection opens and for the peer to close after
            # a release or an abort (PS3.8 9.1.5)
            artim_timeout=(
                self.acse_timeout if self.acse_timeout is not None else self._ae._artim_timeout
            ),
            acse_timeout=self.acse_timeout,
            network_timeout=self.network_timeout,
            stream_pdata_over=STREAM_PDATA_OVER,
        )
        with self._lock:  # abort() decides under the lock whether there is a UL to abort
            self._ul = ul
        self._listen_version = -1
        self._listens(EVT_PDU_RECV)  # sets the kernel's diagnostic switches
        return ul

    # -- the pump -----------------------------------------------------------------------------
    def _pump(self, done: Callable[[], bool], deadline: float | None = None) -> bool:
        """Receive and process until ``done()``, the connection closes or ``deadline`` passes."""
        ul = self._ul
        channel = self._channel
        assert ul is not None and channel is not None
        while True:
            self._drain()
            if done():
                return True
            if self._closed:
                return False
            # Read what is there first (one recv, never blocking); wait for more,
            # with the kernel's next deadline as the timeout, only when nothing is.
            if self._receive_now():
                continue
            wake = ul.next_deadline()
            if deadline is not None and (wake is None or deadline < wake):
                wake = deadline
            timeout = None if wake is None else max(0.0, wake - _monotonic())
            if not channel.wait_readable(timeout):
                with self._lock:
                    ul.handle_timer()
                if deadline is not None and _monotonic() >= deadline:
                    self._drain()
                    return done()

    def _receive_now(self) -> bool:
        """One read of what has arrived, never blocking; whether anything (or the end) came."""
        ul = self._ul
        channel = self._channel
        assert ul is not None and channel is not None
        buffer = ul.get_buffer()
        count = channel.read_now(buffer)
        if count is None:
            return False
        with self._lock:
            if count:
                ul.buffer_updated(count)
            else:
                ul.connection_lost()
        if count and self._listens(EVT_DATA_RECV):
            self._notify(EVT_DATA_RECV, data=bytes(buffer[:count]))
        return True

    def _watch(self) -> None:
        """A requestor's own thread, once established: read whenever no caller does.

        A caller waiting for a response reads it itself (:meth:`_wait`), so
        that the response wakes one thread -- the caller -- rather than this
        one, which then wakes the caller. This thread reads what comes while
        no caller has waited for :data:`CALLER_LINGER` seconds: a release or
        an abort from the peer, requests of the peer's, the kernel's timers. It
        stays out of the way meanwhile, without a wake-up per response: a
        caller that sends request after request keeps the reading to itself.
        It waits for bytes *without* the pump role, so that a caller can take
        the role at once, and takes it only when nobody has.
        """
        ul = self._ul
        channel = self._channel
        assert ul is not None and channel is not None
        me = threading.get_ident()
        lock = self._lock
        idle = self._idle_cond
        while True:
            with lock:
                while True:
                    if self._closed:
                        while self._pump_ident is not None:  # a caller ends its pass first
                            idle.wait()
                        return
                    if self._caller_reads():
                        idle.wait(CALLER_LINGER)  # a caller reads; look again later
                        continue
                    quiet = self._last_call + CALLER_LINGER - _monotonic()
                    if quiet <= 0:
                        break
                    idle.wait(quiet)
            # Wait for bytes or a timer without the role, then take it only if nobody did.
            wake = ul.next_deadline()
            channel.wait_readable(None if wake is None else max(0.0, wake - _monotonic()))
            with lock:
                if self._caller_reads():
                    continue  # and if the connection closed meanwhile, see to it above
                self._pump_ident = me
            try:
                while not self._closed:
                    self._drain()
                    if self._closed or not self._receive_now():
                        break
                if not self._closed:
                    with lock:
                        ul.handle_timer()  # harmless when nothing is due
                    self._drain()
            finally:
                with lock:
                    self._pump_ident = None
                    self._cond.notify_all()  # a caller that came meanwhile reads now

    def _caller_reads(self) -> bool:
        """Whether a caller waits or somebody holds the pump role (call with ``_lock`` held)."""
        return bool(self._callers) or self._pump_ident is not None

    def _drain(self) -> None:
        """Process every event the kernel can produce from what has been received."""
        ul = self._ul
        assert ul is not None
        lock = self._lock
        on_pdata = self._on_pdata
        while True:
            # P-DATA-TF bodies in batches (no event object per PDU), a long one in
            # pieces as it arrives, anything else one event at a time; all in the
            # order received.
            part = event = None
            with lock:
                bodies = ul.next_pdata()
                if not bodies:
                    part = ul.next_pdata_part()
                    if part is None:
                        event = ul.next_event()
            if bodies:
                for body in bodies:
                    if not on_pdata(body):
                        break  # aborted: the kernel ignores the rest (AA-6 in Sta13)
                continue
            if part is not None:
                self._on_pdata_part(part[0], part[1])
                continue
            if event is None:
                break
            self._on_ul_event(event)
        self._flush()
        if self._handler_depth == 0:
            while self._deferred and not self._closed:
                context_id, message, data = self._deferred.popleft()
                self._dispatch_request(context_id, message, data)
            if self._release_requested is not None and not self._deferred:
                release, self._release_requested = self._release_requested, None
                self._answer_release(release)
                self._flush()

    def _flush(self) -> None:
        """Write what the kernel has queued; close the transport when an action says so."""
        ul = self._ul
        channel = self._channel
        if ul is None or channel is None:
            return
        with self._send_lock:
            with self._lock:
                out = ul.data_to_send()
                close = ul.wants_close
            if out:
                try:
                    channel.write(out)
                except OSError as exc:
                    LOGGER.debug("write failed: %s", exc)
                    close = True
        if out and self._listens(EVT_DATA_SENT):
            self._notify(EVT_DATA_SENT, data=b"".join(out))
        if close:
            channel.shutdown()
        elif self._close_after_flush:
            # We aborted (a timeout, a protocol error of the peer): the A-ABORT is
            # written, so end our side of the stream now rather than when ARTIM
            # expires; the peer reads the A-ABORT, then the end of the stream, and
            # closes (PS3.8 9.1.6 lets the sender of an A-ABORT close at once).
            self._close_after_flush = False
            channel.shutdown(socket.SHUT_WR)

    def _on_pdata(self, body: memoryview) -> bool:
        """One received P-DATA-TF body (DT-2); ``False`` if it was a protocol error (aborted)."""
        incoming = self._incoming
        if incoming is not None and incoming.sink is not None:
            # The bulk of a C-STORE: one data fragment per PDU, straight to the
            # sink without a DIMSE event per fragment (the assembler still checks it).
            fragment = self._assembler.receive_data(body)
            if fragment is not None:
                data, is_last = fragment
                incoming.sink.write(data)
                if is_last:
                    self._incoming = None
                    self._on_message(incoming.context_id, incoming.message, incoming.sink.finish())
                return True
        try:
            dimse_events = self._assembler.receive(body)
        except RemoteProtocolError as exc:
            LOGGER.error("DIMSE protocol error from the peer: %s", exc)
            with self._lock:
                assert self._ul is not None
                self._ul.protocol_error(exc)
            return False
        for dimse_event in dimse_events:
            self._on_dimse_event(dimse_event)
        return True

    def _on_pdata_part(self, piece: memoryview, left: int) -> None:
        """A piece of a long P-DATA-TF body as it arrives: its data go to the sink at once."""
        try:
            dimse_events = self._assembler.receive_part(piece, left)
        except RemoteProtocolError as exc:
            LOGGER.error("DIMSE protocol error from the peer: %s", exc)
            with self._lock:
                assert self._ul is not None
                self._ul.protocol_error(exc)  # the rest of the PDU is ignored (AA-6)
            return
        for dimse_event in dimse_events:
            self._on_dimse_event(dimse_event)

    def _on_ul_event(self, event: ULEvent) -> None:
        if type(event) is PDataReceived:
            self._on_pdata(event.body)
        elif isinstance(event, PDUReceived):
            self._notify(EVT_PDU_RECV, pdu=event.pdu)
        elif isinstance(event, PDUSent):
            self._notify(EVT_PDU_SENT, pdu=event.pdu)
        elif isinstance(event, Transition):
            self._notify(
                EVT_FSM_TRANSITION,
                current_state=event.state.name,
                fsm_event=event.event.name,
                action=event.action,
                next_state=event.next_state.name,
            )
        elif isinstance(event, AssociationRequested):
            self._rq = event.rq
            self._notify(EVT_ACSE_RECV, primitive=event.rq)
        elif isinstance(event, AssociationAccepted):
            self._notify(EVT_ACSE_RECV, primitive=event.ac)
            self._on_accepted(event.ac)
        elif isinstance(event, AssociationRejected):
            self._notify(EVT_ACSE_RECV, primitive=event.rj)
            self._on_rejected(event.rj)
        elif isinstance(event, ReleaseRequested):
            self._notify(EVT_ACSE_RECV, primitive=event)
            if not event.collision and (
                self._deferred or (self._handler_depth and not self._handler_waits)
            ):
                # Requests received before it are answered first (_drain), then it. Not
                # while a handler waits for the peer: a requestor of a release cannot
                # send P-DATA any more (Sta7), the wait would last until its timeout.
                self._release_requested = event
            else:
                self._answer_release(event)
        elif isinstance(event, ReleaseConfirmed):
            self._notify(EVT_ACSE_RECV, primitive=event)
            with self._lock:
                assert self._ul is not None
                if self._ul.state == State.Sta12:
                    self._ul.release_response()
            self._mark_released()
        elif isinstance(event, Aborted):
            self._on_aborted(event)
        elif isinstance(event, ConnectionClosed):
            self._on_closed()

    def _answer_release(self, event: ReleaseRequested) -> None:
        """Send the A-RELEASE-RP for the peer's A-RELEASE-RQ (AR-4 in Sta8, AR-9 in Sta9)."""
        with self._lock:
            assert self._ul is not None
            if self._ul.state in (State.Sta8, State.Sta9):
                self._ul.release_response()
                respond = True
            else:
                respond = False  # aborted meanwhile, or a collision being resolved
        if respond:
            self._notify(EVT_ACSE_SENT, primitive=event)
            if not event.collision:
                self._mark_released()

    def _on_dimse_event(self, event: Any) -> None:
        if isinstance(event, DatasetFragment):
            incoming = self._incoming
            assert incoming is not None  # the assembler guarantees the order
            sink = incoming.sink
            if sink is not None:  # streamed: each fragment straight to the sink, no copy
                sink.write(event.data)
                if event.is_last:
                    self._incoming = None
                    self._on_message(incoming.context_id, incoming.message, sink.finish())
            elif incoming.collector is not None and incoming.collector.add(event):
                self._incoming = None
                self._on_message(incoming.context_id, incoming.message, incoming.collector.result())
            return
        message = event.message
        if event.has_dataset:
            self._incoming = _Incoming(
                event.context_id, message, self._sink_for(event.context_id, message)
            )
        else:
            self._on_message(event.context_id, message, None)

    def _sink_for(self, context_id: int, message: dm.DimseMessage) -> DatasetSink | None:
        """Ask the request's service class where its data set goes (``None``: into memory)."""
        if not isinstance(message, dm.DimseRequest):
            return None
        context = self._by_id.get(context_id)
        if context is None or not context.as_scp:
            return None
        service = self._ae._registry.service_for(context.abstract_syntax)
        if service is None or service.dataset_sink is None or not service.serves(
            message.CommandField
        ):
            return None
        try:
            return service.dataset_sink(self, context_view(self, context), message)
        except Exception:
            LOGGER.exception(
                "The %s service class could not give a data set sink; collecting in memory",
                service.name,
            )
            return None

    def _on_message(
        self, context_id: int, message: dm.DimseMessage, data: Received | None
    ) -> None:
        """A whole DIMSE message arrived: route it."""
        if DIMSE_LOGGER.isEnabledFor(INFO):
            log_dimse(self, message, context_id, sent=False, has_dataset=data is not None)
        if self._listens(EVT_DIMSE_RECV):
            self._notify(EVT_DIMSE_RECV, message=message, context_id=context_id)
        if isinstance(message, dm.DimseResponse):
            with self._cond:
                queue = self._responses.get(message.MessageIDBeingRespondedTo)
                if queue is None:
                    LOGGER.warning(
                        "Ignoring a %s for message ID %d, which is not outstanding",
                        message.message_name,
                        message.MessageIDBeingRespondedTo,
                    )
                    return
                queue.append((message, data if isinstance(data, bytes) else None))
                self._cond.notify_all()
        elif isinstance(message, dm.CCancelRQ):
            # a C-CANCEL for a request already answered (or never made) cancels nothing
            if message.MessageIDBeingRespondedTo in self._serving:
                self._cancelled.add(message.MessageIDBeingRespondedTo)
        else:
            if isinstance(message, dm.DimseRequest):
                self._serving.add(message.MessageID)
            self._deferred.append((context_id, message, data))

    # -- association life cycle ---------------------------------------------------------------
    def _on_accepted(self, ac: AAssociateAC) -> None:
        assert self._rq is not None
        try:
            result = interpret_associate_response(
                self._rq, ac, local_send_limit=self._ae._maximum_send_length
            )
        except RemoteProtocolError as exc:
            LOGGER.error("Invalid A-ASSOCIATE-AC: %s", exc)
            with self._lock:
                assert self._ul is not None
                self._ul.protocol_error(exc)
            return
        self._established(result)
        self.acceptor.maximum_length = ac.user_information.maximum_length
        self._notify(EVT_ACCEPTED)
        self._notify(EVT_ESTABLISHED)

    def _on_rejected(self, rj: AAssociateRJ) -> None:
        self.is_rejected = True
        self._rejection = rj
        LOGGER.error("Association rejected: %s", describe_rejection(rj))
        self._notify(EVT_REJECTED)

    def _on_aborted(self, event: Aborted) -> None:
        if event.local:
            self._close_after_flush = True
        self._drop_incoming("aborted")
        if self.is_released or self.is_rejected:
            return
        if not self.is_aborted:
            self.is_aborted = True
            self.is_established = False
            if event.local:
                LOGGER.error("Association aborted: %s", event.error or "local abort")
            else:
                LOGGER.error(
                    "Association aborted by the peer (A-ABORT source %s, reason %s)",
                    event.source,
                    event.reason,
                )
            self._notify(EVT_ABORTED)
        with self._cond:
            self._cond.notify_all()

    def _mark_released(self) -> None:
        if not self.is_released:
            self.is_released = True
            self.is_established = False
            self._released_event.set()
            self._notify(EVT_RELEASED)
        with self._cond:
            self._cond.notify_all()

    def _drop_incoming(self, why: str) -> None:
        """A message cut off by an abort or a closed connection: discard its data set."""
        incoming = self._incoming
        if incoming is not None:
            self._incoming = None
            LOGGER.error(
                "Association %s in the middle of a %s: its data set is discarded",
                why,
                incoming.message.message_name,
            )
            incoming.abort()

    def _drop_deferred(self) -> None:
        """Requests received but never served (the association ended): delete their files."""
        while self._deferred:
            data = self._deferred.popleft()[2]
            if isinstance(data, SpooledDataset):
                data.discard()

    def _on_closed(self) -> None:
        self._drop_incoming("closed")
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._idle_cond.notify_all()
        if self.is_established:  # the peer vanished without release or abort
            self._on_aborted(Aborted(source=2, reason=0, local=True, error="connection closed"))

    def _established(self, result: NegotiationResult) -> None:
        self._negotiation = result
        self._max_send = result.max_send_length
        accepted: list[PresentationContext] = []
        rejected: list[PresentationContext] = []
        for cx in result.contexts:
            pc = PresentationContext.from_negotiated(cx)
            (accepted if cx.accepted else rejected).append(pc)
            if cx.accepted:
                self._by_id[cx.context_id] = cx
        self._accepted = accepted
        self._rejected = rejected
        self._assembler.accepted_context_ids = frozenset(self._by_id)
        peer = self.acceptor if self.is_requestor else self.requestor
        peer.implementation_class_uid = (
            UID(result.peer_implementation_class_uid)
            if result.peer_implementation_class_uid
            else None
        )
        peer.implementation_version_name = result.peer_implementation_version_name
        window = result.async_window
        local = self.requestor if self.is_requestor else self.acceptor
        local.asynchronous_operations = (window.maximum_invoked, window.maximum_performed)
        self.is_established = True

    # -- requestor side -----------------------------------------------------------------------
    def request(self) -> None:
        """Request the association on the socket given to :meth:`set_socket` (requestor only).

        Runs the negotiation in the calling thread; afterwards, if the
        association is established, its own thread starts serving it.
        """
        if not self.is_requestor:
            raise RuntimeError("Only the requestor requests an association")
        if self._channel is None:
            raise RuntimeError("set_socket() first")
        rq = self._rq
        assert rq is not None, "the AE builds the A-ASSOCIATE-RQ before requesting"
        ul = self._make_upper_layer()
        try:
            if self._stop_requested:  # aborted (AE shutdown) before it began
                self.is_aborted = True
                return
            self._pump_ident = threading.get_ident()
            self._notify(EVT_CONN_OPEN, address=self._channel.peer)
            with self._lock:
                ul.request_association(rq)
                ul.connection_made()
            self._notify(EVT_ACSE_SENT, primitive=rq)
            self._flush()
            self._notify(EVT_REQUESTED)
            self._pump(
                lambda: self.is_established or self.is_rejected or self.is_aborted or self._closed
            )
        finally:
            # The reading is free: a caller takes it, or the association's own thread
            # once no caller has come for a while (the caller usually comes at once).
            with self._lock:
                self._pump_ident = None
                self._last_call = _monotonic()
            # Always: the thread serves the association, or just closes the socket.
            self.start()

    def run(self) -> None:
        """The association's thread: serve it until the connection closes."""
        try:
            if self.is_acceptor:
                # an acceptor's thread is the pump for good: requests are served in it
                self._pump_ident = threading.get_ident()
                if self._pending_tls is not None:
                    sock, context = self._pending_tls
                    self._pending_tls = None
                    if self._stop_requested:
                        sock.close()
                        return
                    channel = tls_channel(
                        sock,
                        context,
                        self.acse_timeout,
                        self.network_timeout,
                        self._tls_wrapped,
                    )
                    self._handshaking = None
                    if channel is None:
                        return
                    self.set_socket(channel)
                serve_as_acceptor(self)
            elif self.is_established:
                self._watch()
        except Exception:
            LOGGER.exception("Unexpected error in the association thread; aborting")
            self.abort()
        finally:
            self._finish()

    def _tls_wrapped(self, tls: socket.socket) -> None:
        """The TLS socket exists, its handshake is about to start: make it abortable."""
        with self._lock:
            self._handshaking = tls
            stop = self._stop_requested
        if stop:
            _interrupt(tls)

    def _finish(self) -> None:
        channel = self._channel
        if channel is not None:
            if self._ul is not None and self._ul.state != State.Sta1:
                with self._lock:
                    self._ul.connection_lost()
            channel.close()
            self._notify(EVT_CONN_CLOSE)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._idle_cond.notify_all()
        self._drop_incoming("ended")
        self._drop_deferred()
        self._ae._association_ended(self)

    # -- release and abort --------------------------------------------------------------------
    def release(self) -> None:
        """Release the association (A-RELEASE, PS3.8 7.2) and wait for the peer to confirm.

        If the peer does not answer within the ACSE timeout the association is aborted.
        """
        ul = self._ul
        if ul is None or not self.is_established:
            return
        try:
            with self._send_lock, self._lock:
                ul.release()
        except LocalProtocolError:
            return
        self._notify(EVT_ACSE_SENT, primitive="A-RELEASE-RQ")
        self._flush()
        timeout = self.acse_timeout
        deadline = None if timeout is None else _monotonic() + timeout
        if not self._wait(lambda: self.is_released or self.is_aborted or self._closed, deadline):
            LOGGER.error("No A-RELEASE-RP within the ACSE timeout: aborting")
            self.abort()
            return
        if self.is_released and self._may_join():
            self.join(timeout if timeout is not None else None)

    def abort(self) -> None:
        """Send an A-ABORT (source: service user) and close the connection (PS3.8 7.3)."""
        handshaking = None
        with self._lock:
            ul = self._ul
            if ul is None:  # not connected yet: make sure it never gets there
                self._stop_requested = True
                handshaking = self._handshaking
        if ul is None or self._closed:
            if ul is None and handshaking is not None:
                _interrupt(handshaking)  # a TLS handshake may wait for long
            self.is_aborted = self.is_aborted or not self.is_released
            return
        aborted_now = False
        with self._lock:
            if ul.state not in (State.Sta1, State.Sta2, State.Sta13):
                try:
                    ul.abort()
                    aborted_now = True
                except LocalProtocolError:
                    pass
        if aborted_now:
            self._notify(EVT_ACSE_SENT, primitive="A-ABORT")
            # Write the A-ABORT unless a writer is stuck on a peer that does not read.
            if self._send_lock.acquire(timeout=1.0):
                try:
                    with self._lock:
                        out = ul.data_to_send()
                    if out and self._channel is not None:
                        with contextlib.suppress(OSError):
                            self._channel.write(out)
                finally:
                    self._send_lock.release()
        was_established = self.is_established or not (self.is_released or self.is_rejected)
        if was_established and not self.is_aborted:
            self.is_aborted = True
            self.is_established = False
            self._notify(EVT_ABORTED)
        # PS3.8 lets the sender of an A-ABORT close at once rather than wait on ARTIM.
        if self._channel is not None:
            self._channel.shutdown()
        with self._cond:
            self._cond.notify_all()
        if self._may_join():
            self.join(5.0)

    def kill(self) -> None:
        """Abort the association and wait for its thread to end."""
        self.abort()

    def isAlive(self) -> bool:
        """Deprecated alias of :meth:`is_alive`."""
        return self.is_alive()

    def _may_join(self) -> bool:
        """Whether this thread may wait for the association's thread to end: not that thread
        itself, nor one it waits for (the pump: a handler run by a caller that reads)."""
        me = threading.get_ident()
        return self.is_alive() and me not in (self.ident, self._pump_ident)

    # -- waiting ------------------------------------------------------------------------------
    def _wait(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Wait until ``done()`` or ``deadline``, reading if nobody else reads.

        The pump (re-entrant: a handler that waits) goes on pumping. Another
        thread reads itself when nobody holds the pump role -- a requestor's
        own thread steps aside for it (:meth:`_watch`) -- and otherwise sleeps
        on the condition until the pump has done the work for it or leaves the
        role free. Either way each response wakes one thread only.
        """
        me = threading.get_ident()
        if me == self._pump_ident:
            if not self._handler_depth:
                return self._pump(done, deadline)
            self._handler_waits += 1  # a handler waits for the peer (see ReleaseRequested)
            try:
                return self._pump(done, deadline)
            finally:
                self._handler_waits -= 1
        cond = self._cond
        with cond:
            self._callers += 1
            try:
                while True:
                    if done():
                        return True
                    if self._closed:
                        return done()
                    if self._pump_ident is None:
                        self._pump_ident = me
                        break
                    timeout = None if deadline is None else deadline - _monotonic()
                    if timeout is not None and timeout <= 0:
                        return done()
                    cond.wait(timeout)
            finally:
                if self._pump_ident != me:
                    self._leave_waiting()
        try:
            return self._pump(done, deadline)
        except Exception:
            LOGGER.exception("Unexpected error while receiving; aborting")
            self.abort()
            return done()
        finally:
            with cond:
                self._pump_ident = None
                cond.notify_all()  # another waiting caller may read now
                self._leave_waiting()

    def _leave_waiting(self) -> None:
        """A caller is done waiting (call with ``_lock`` held). The requestor's own thread
        takes the reading back once no caller has come for a while (:meth:`_watch`)."""
        self._callers -= 1
        self._last_call = _monotonic()
        if self._closed:
            self._idle_cond.notify_all()

    def _is_cancelled(self, message_id: int) -> bool:
        """Whether a C-CANCEL arrived for ``message_id`` (reads what is waiting, never blocks)."""
        # Every pump drains the Upper Layer's buffer, so only new bytes can hold a C-CANCEL:
        # one select() when nothing came (this runs between any two C-FIND responses).
        if (
            threading.get_ident() == self._pump_ident
            and not self._closed
            and self._readable_now()
        ):
            self._pump(lambda: True if self._channel is None else not self._readable_now(), 0.0)
        return message_id in self._cancelled

    def _readable_now(self) -> bool:
        channel = self._channel
        return channel is not None and channel.wait_readable(0)

    # -- sending DIMSE messages ---------------------------------------------------------------
    def _send_message(
        self,
        context_id: int,
        message: dm.DimseMessage,
        dataset: bytes | bytearray | memoryview | Iterable[bytes | bytearray | memoryview] | None,
    ) -> None:
        """Fragment ``message`` and write it; raises ``LocalProtocolError`` once not established."""
        if DIMSE_LOGGER.isEnabledFor(INFO):
            log_dimse(self, message, context_id, sent=True, has_dataset=dataset is not None)
        ul = self._ul
        channel = self._channel
        assert ul is not None and channel is not None
        with self._send_lock:
            for batch in fragment_message(context_id, message, dataset, self._max_send):
                with self._lock:
                    ul.send_pdata(batch)
                    out = ul.data_to_send()
                try:
                    channel.write(out)
                except OSError as exc:
                    raise LocalProtocolError(f"connection lost while sending: {exc}") from exc
                if self._listens(EVT_DATA_SENT):
                    self._notify(EVT_DATA_SENT, data=b"".join(out))
        if self._listens(EVT_DIMSE_SENT):
            self._notify(EVT_DIMSE_SENT, message=message, context_id=context_id)

    def _batching_allowed(self) -> bool:
        """Whether messages may go out in batches (:meth:`_write_pdata`): nobody logs each
        message or listens to EVT_DIMSE_SENT / EVT_DATA_SENT."""
        return not (
            DIMSE_LOGGER.isEnabledFor(INFO)
            or self._listens(EVT_DIMSE_SENT)
            or self._listens(EVT_DATA_SENT)
        )

    def _write_pdata(self, buffers: Sequence[bytes | bytearray | memoryview]) -> None:
        """Write whole P-DATA-TF PDUs of one or more messages at once (one ``sendmsg``).

        For the Pending responses a service class batches
        (:meth:`dicomnet.service_provider.Call.hold`); raises ``LocalProtocolError``
        once not established or when the connection is lost.
        """
        ul = self._ul
        channel = self._channel
        assert ul is not None and channel is not None
        with self._send_lock:
            with self._lock:
                ul.send_pdata(buffers)
                out = ul.data_to_send()
            try:
                channel.write(out)
            except OSError as exc:
                raise LocalProtocolError(f"connection lost while sending: {exc}") from exc

    def _check_established(self) -> None:
        if not self.is_established:
            raise RuntimeError(
                "The association with a peer SCP has been released, aborted or "
                "was never established"
            )

    def _context_for(
        self, abstract_syntax: str, *, as_scp: bool = False, transfer_syntax: str | None = None
    ) -> NegotiatedContext:
        """The accepted context on which we may use ``abstract_syntax`` as SCU (or SCP)."""
        negotiation = self._negotiation
        assert negotiation is not None
        found = negotiation.find_context(
            abstract_syntax,
            transfer_syntax=transfer_syntax,
            as_scu=not as_scp,
            as_scp=as_scp,
        )
        if found is None and transfer_syntax is not None:
            found = negotiation.find_context(abstract_syntax, as_scu=not as_scp, as_scp=as_scp)
        if found is None:
            role = "SCP" if as_scp else "SCU"
            raise ValueError(
                f"No presentation context for '{uid_name(abstract_syntax)}' has been accepted "
                f"by the peer with the {role} role"
                + (f" and transfer syntax '{uid_name(transfer_syntax)}'" if transfer_syntax else "")
                + " for the association"
            )
        return found

    def _exchange(
        self,
        context: NegotiatedContext,
        message: dm.DimseRequest,
        dataset: Any,
    ) -> Iterator[tuple[dm.DimseResponse, bytes | None] | None]:
        """Send a request, then yield its responses until a final one; ``None`` on failure."""
        queue: collections.deque[tuple[dm.DimseResponse, bytes | None]] = collections.deque()
        with self._lock:
            # Claim the ID and its response queue in one step: another thread may
            # have been given the same ID since _next_message_id() chose it.
            message_id = message.MessageID
            if message_id in self._responses:
                message_id = self._free_message_id()
                message = attrs.evolve(message, MessageID=message_id)
            self._responses[message_id] = queue
        try:
            try:
                self._send_message(context.context_id, message, dataset)
            except LocalProtocolError as exc:
                LOGGER.error("Unable to send the %s: %s", message.message_name, exc)
                yield None
                return
            while True:
                # A response already queued needs no wait and no lock (deque appends and
                # pops are atomic): a burst of C-FIND responses is read without a handoff.
                if not queue:
                    timeout = self.dimse_timeout
                    deadline = None if timeout is None else _monotonic() + timeout
                    if not self._wait(lambda: bool(queue), deadline):
                        if not self._closed and not self.is_aborted:
                            LOGGER.error(
                                "DIMSE timeout: no response to the %s within %s s; aborting",
                                message.message_name,
                                timeout,
                            )
                            self.abort()
                        yield None
                        return
                response, data = queue.popleft()
                yield response, data
                if code_to_category(response.Status) != "Pending":
                    return
        finally:
            with self._lock:
                self._responses.pop(message_id, None)

    def _next_message_id(self, msg_id: int | None) -> int:
        """The Message ID for a request: the caller's, unless it is still outstanding.

        pynetdicom programs pass the same ``msg_id`` (default 1) to every call;
        that is fine one operation at a time, and when operations overlap
        (threads, C-STORE sub-operations of a C-GET) a free ID is used instead,
        as PS3.7 9.1.1.1.1 requires IDs to be unique among outstanding ones.
        """
        if msg_id is not None and not 0 <= msg_id <= 0xFFFF:
            raise ValueError("'msg_id' must be between 0 and 65535, inclusive")
        with self._lock:
            if msg_id is None or msg_id in self._responses:
                return self._free_message_id()
        return msg_id

    def _free_message_id(self) -> int:
        """An ID no outstanding request uses (call with ``_lock`` held).

        The outstanding IDs are the keys of ``_responses``; the allocator only
        supplies the cycling sequence, so nothing has to be given back to it.
        """
        ids = self._message_ids
        for _ in range(ids.LAST):
            message_id = ids.allocate()
            ids.release(message_id)
            if message_id not in self._responses:
                return message_id
        raise LocalProtocolError("all 65535 message IDs are outstanding")

    # -- the SCU API --------------------------------------------------------------------------
    def send_c_echo(self, msg_id: int = 1) -> Dataset:
        """Send a C-ECHO request (PS3.7 9.1.5) and return the response's status.

        :returns: a Dataset with at least (0000,0900) *Status*; an empty Dataset
            if the peer timed out, aborted or sent an invalid response.
        :raises RuntimeError: without an established association.
        :raises ValueError: without an accepted context for Verification.
        """
        return scu.c_echo(self, msg_id)

    def send_c_store(
        self,
        dataset: Any,
        msg_id: int = 1,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> Dataset:
        """Send a C-STORE request (PS3.7 9.1.1) and return the response's status."""
        return scu.c_store(self, dataset, msg_id, priority, originator_aet, originator_id)

    def send_c_find(
        self, dataset: Dataset, query_model: str, msg_id: int = 1, priority: int = 2
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """Send a C-FIND request (PS3.7 9.1.2); yield ``(status, identifier)`` pairs."""
        return scu.c_find(self, dataset, query_model, msg_id, priority)

    def send_c_get(
        self, dataset: Dataset, query_model: str, msg_id: int = 1, priority: int = 2
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """Send a C-GET request (PS3.7 9.1.3); yield ``(status, identifier)`` pairs."""
        return scu.c_get(self, dataset, query_model, msg_id, priority)

    def send_c_move(
        self,
        dataset: Dataset,
        move_aet: str,
        query_model: str,
        msg_id: int = 1,
        priority: int = 2,
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """Send a C-MOVE request (PS3.7 9.1.4); yield ``(status, identifier)`` pairs."""
        return scu.c_move(self, dataset, move_aet, query_model, msg_id, priority)

    def send_c_cancel(
        self, msg_id: int, context_id: int | None = None, query_model: str | None = None
    ) -> None:
        """Send a C-CANCEL request (PS3.7 9.3.2.3) for the operation with ``msg_id``."""
        scu.c_cancel(self, msg_id, context_id, query_model)

    def send_n_action(
        self,
        dataset: Dataset | None,
        action_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """Send an N-ACTION request (PS3.7 10.1.4); return ``(status, action_reply)``."""
        return scu.n_action(self, dataset, action_type, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_create(
        self,
        dataset: Dataset | None,
        class_uid: str,
        instance_uid: str | None = None,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """Send an N-CREATE request (PS3.7 10.1.5); return ``(status, attribute_list)``."""
        return scu.n_create(self, dataset, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_delete(
        self, class_uid: str, instance_uid: str, msg_id: int = 1, meta_uid: str | None = None
    ) -> Dataset:
        """Send an N-DELETE request (PS3.7 10.1.6); return its status."""
        return scu.n_delete(self, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_event_report(
        self,
        dataset: Dataset | None,
        event_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """Send an N-EVENT-REPORT request (PS3.7 10.1.1); return ``(status, event_reply)``."""
        return scu.n_event_report(
            self, dataset, event_type, class_uid, instance_uid, msg_id, meta_uid
        )

    def send_n_get(
        self,
        identifier_list: Sequence[Any],
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """Send an N-GET request (PS3.7 10.1.2); return ``(status, attribute_list)``."""
        return scu.n_get(self, identifier_list, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_set(
        self,
        dataset: Dataset,
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """Send an N-SET request (PS3.7 10.1.3); return ``(status, attribute_list)``."""
        return scu.n_set(self, dataset, class_uid, instance_uid, msg_id, meta_uid)

    # -- serving requests (SCP side) ----------------------------------------------------------
    def _dispatch_request(
        self, context_id: int, message: dm.DimseMessage, data: Received | None
    ) -> None:
        self._handler_depth += 1
        try:
            dispatch(self, context_id, message, data)
        finally:
            self._handler_depth -= 1
            if isinstance(message, dm.DimseRequest):
                self._serving.discard(message.MessageID)
                self._cancelled.discard(message.MessageID)

    # -- context manager ----------------------------------------------------------------------
    def __enter__(self) -> Association:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.is_established:
            if exc_info[0] is None:
                self.release()
            else:
                self.abort()

    def __repr__(self) -> str:
        state = (
            "established"
            if self.is_established
            else "released"
            if self.is_released
            else "aborted"
            if self.is_aborted
            else "rejected"
            if self.is_rejected
            else "idle"
        )
        return f"<Association {self._mode} {state} {self.remote.get('ae_title')!r}>"


def _interrupt(sock: socket.socket) -> None:
    """Wake a thread blocked on ``sock`` (a TLS handshake), bypassing the TLS layer."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_DIAGNOSTIC_EVENTS: tuple[EventType, ...] = (
    EVT_PDU_RECV,
    EVT_PDU_SENT,
    EVT_FSM_TRANSITION,
    EVT_DATA_RECV,
    EVT_DATA_SENT,
    EVT_DIMSE_RECV,
    EVT_DIMSE_SENT,
    EVT_ACSE_RECV,
    EVT_ACSE_SENT,
)
_DIAGNOSTIC_SET = frozenset(_DIAGNOSTIC_EVENTS)
