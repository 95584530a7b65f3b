"""The asyncio transport: associations and servers on an event loop, over the sans-IO kernel.

::

    from dicomnet.aio import AsyncAE

    ae = AsyncAE("ME")                       # an ApplicationEntity's configuration
    ae.add_requested_context(Verification)
    async with await ae.associate("127.0.0.1", 11112) as assoc:
        status = await assoc.send_c_echo()

One :class:`AsyncAssociation` is one :class:`asyncio.BufferedProtocol` over
one :class:`~dicomnet.upper_layer.UpperLayer`; nothing else runs per
association on the loop:

* receiving: the loop's ``get_buffer()``/``buffer_updated(n)`` are the kernel's
  (``recv_into`` straight into the framing buffer); the kernel is drained at
  once -- P-DATA-TF bodies in batches, a long one in pieces as it arrives (a
  data set streams to its sink, a storage plugin's spool file, as it comes),
  other PDUs as events -- and responses go to the task awaiting them;
* sending: one ``transport.writelines(ul.data_to_send())`` per batch of PDUs;
  a long message (a C-STORE of a large file) awaits the transport's
  ``resume_writing()`` whenever the write buffer passes its high-water mark, so
  memory stays bounded by that mark plus one batch whatever the file's size;
* time: the kernel's :meth:`~dicomnet.upper_layer.UpperLayer.next_deadline`
  (ARTIM, ACSE and network timeouts; the loop's clock is the kernel's) is one
  ``loop.call_at`` timer; a DIMSE timeout is the awaiting task's own.

What every ``send_*`` does is not written here: the operations are the
*plans* of :mod:`dicomnet.service_user` and :mod:`dicomnet.store_scu`, which
the threaded association runs with a blocking driver and this module with
:func:`run_plan` / :func:`iterate_plan` (see :mod:`dicomnet.scu_plan`). Same
checks, same errors, same return values: a status Dataset, an empty one on a
timeout, an abort or an invalid response, ``RuntimeError`` without an
association, ``ValueError`` without an accepted context.

Requests of the peer (the C-STORE sub-operations of a C-GET, N-EVENT-REPORTs;
every request on a server's association) are served by the AE's plugins with
the application's handlers, which are blocking functions (pynetdicom's
contract): they run in the loop's default executor, one request at a time per
association, in the order received. There the association looks like a
blocking one (:class:`_ThreadSide`): ``event.assoc.send_c_store(...)`` in a
handler, or a C-GET SCP's sub-operations, run the same plans with the blocking
driver, each operation carried out on the loop.

Call the methods of an :class:`AsyncAssociation` from its loop's thread.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from pydicom.dataset import Dataset
from pydicom.uid import UID

from . import dimse_messages as dm
from . import service_user as scu
from ._logging import ACSE_LOGGER, DIMSE_LOGGER, INFO, log_acse, log_dimse
from .acceptor import _record_requestor, decide
from .acse import (
    NegotiatedContext,
    NegotiationResult,
    describe_rejection,
    interpret_associate_response,
    reject_local_limit_exceeded,
)
from .ae import ApplicationEntity, _ae_title
from .association import STREAM_PDATA_OVER, ServiceUser, _Incoming
from .dimse import DatasetFragment, MessageAssembler, MessageIDs, fragment_message
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    EVT_ABORTED,
    EVT_ACCEPTED,
    EVT_ACSE_RECV,
    EVT_ACSE_SENT,
    EVT_CONN_CLOSE,
    EVT_CONN_OPEN,
    EVT_DIMSE_RECV,
    EVT_DIMSE_SENT,
    EVT_ESTABLISHED,
    EVT_FSM_TRANSITION,
    EVT_PDU_RECV,
    EVT_PDU_SENT,
    EVT_REJECTED,
    EVT_RELEASED,
    EVT_REQUESTED,
    EventHandlerType,
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
from .scu_plan import NEXT, Deliver, Exchange, Plan, Send
from .service_provider import context_view, dispatch
from .spool import Received, SpooledDataset
from .status import code_to_category
from .store_scu import DatasetSource, store_plan, store_status
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
    import ssl

    from .service import DatasetSink

__all__ = [
    "AE",
    "AsyncAE",
    "AsyncAssociation",
    "AsyncServer",
    "Responses",
    "iterate_plan",
    "run_plan",
]

LOGGER = logging.getLogger("dicomnet.assoc")

T = TypeVar("T")
Address = tuple[str, int] | tuple[str, int, int, int]
Response = tuple[dm.DimseResponse, bytes | None]

#: how often a handler thread waiting for the loop checks that the loop still runs (seconds)
_LOOP_CHECK = 1.0


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


async def _wait(
    loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[bool], timeout: float | None
) -> bool:
    """Await ``waiter`` (a wake-up sets it ``True``); ``False`` once ``timeout`` passes first.

    A timer on the loop rather than ``wait_for``: no task per wait.
    """
    if timeout is None:
        return await waiter
    handle = loop.call_later(max(0.0, timeout), _expire, waiter)
    try:
        return await waiter
    finally:
        handle.cancel()


def _any(value: object) -> Any:
    """The asyncio association where the shared code names the threaded one's type."""
    return value


# -- the drivers of the service-user plans -----------------------------------------------------


async def run_plan(assoc: AsyncAssociation, plan: Plan[T]) -> T:
    """Run a plan (:mod:`dicomnet.scu_plan`) that delivers nothing on the loop; its result."""
    exchange: _Exchange | None = None
    result: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                op = plan.send(result) if error is None else plan.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            result = error = None
            try:
                if op is NEXT:
                    assert exchange is not None, "NEXT before Exchange"
                    result = await exchange.next()
                elif type(op) is Exchange:
                    if exchange is not None:
                        exchange.close()
                    exchange = _Exchange(assoc, op.context, op.request, op.dataset)
                elif type(op) is Send:
                    await assoc._send_message(op.context_id, op.message, op.dataset)
                else:
                    raise TypeError(f"a plan run by run_plan() cannot yield {op!r}")
            except Exception as exc:
                error = exc
    finally:
        plan.close()
        if exchange is not None:
            exchange.close()


async def iterate_plan(assoc: AsyncAssociation, plan: Plan[None]) -> AsyncIterator[Any]:
    """Run a plan as an async generator: what it delivers is yielded.

    ``aclose()`` before the end answers the plan's pending :class:`Deliver` with
    ``False``; the plan then finishes (a query sends its C-CANCEL and reads the
    responses left) before ``aclose()`` returns.
    """
    exchange: _Exchange | None = None
    result: Any = None
    error: BaseException | None = None
    listening = True
    try:
        while True:
            try:
                op = plan.send(result) if error is None else plan.throw(error)
            except StopIteration:
                return
            result = error = None
            if type(op) is Deliver:
                if listening:
                    try:
                        yield op.item
                    except GeneratorExit:
                        listening = False
                    except Exception as exc:  # thrown in by the caller
                        error = exc
                        continue
                result = listening
                continue
            try:
                if op is NEXT:
                    assert exchange is not None, "NEXT before Exchange"
                    result = await exchange.next()
                elif type(op) is Exchange:
                    if exchange is not None:
                        exchange.close()
                    exchange = _Exchange(assoc, op.context, op.request, op.dataset)
                elif type(op) is Send:
                    await assoc._send_message(op.context_id, op.message, op.dataset)
                else:
                    raise TypeError(f"a plan cannot yield {op!r}")
            except Exception as exc:
                error = exc
    finally:
        plan.close()
        if exchange is not None:
            exchange.close()


class Responses:
    """The responses of a C-FIND, C-GET or C-MOVE: ``async for status, identifier in ...``.

    Leaving the loop early cancels the operation (C-CANCEL-RQ, then the
    responses left are read and dropped) when the iterator is closed: use it as
    ``async with assoc.send_c_find(...) as responses:`` (or call
    :meth:`aclose`) to have that happen at once; otherwise it happens when the
    iterator is garbage-collected. Nothing is sent before the first step.
    """

    __slots__ = ("_agen",)

    def __init__(self, agen: AsyncIterator[Any]) -> None:
        self._agen = agen

    def __aiter__(self) -> Responses:
        return self

    async def __anext__(self) -> tuple[Dataset, Dataset | None]:
        return await self._agen.__anext__()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop here: cancel the operation if its final response has not come."""
        await self._agen.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> Responses:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# -- one request's responses ---------------------------------------------------------------------


class _Exchange:
    """A request sent (at the first :meth:`next`) and the responses that came for it."""

    __slots__ = (
        "_assoc",
        "_context",
        "_dataset",
        "_done",
        "_message_id",
        "_queue",
        "_request",
        "_started",
        "_waiter",
    )

    _waiter: asyncio.Future[bool] | None

    def __init__(
        self,
        assoc: AsyncAssociation,
        context: NegotiatedContext,
        request: dm.DimseRequest,
        dataset: Any,
    ) -> None:
        self._assoc = assoc
        self._context = context
        self._request = request
        self._dataset = dataset
        self._queue: collections.deque[Response] = collections.deque()
        self._waiter = None
        self._started = False
        self._done = False
        self._message_id: int | None = None

    def deliver(self, response: dm.DimseResponse, data: bytes | None) -> None:
        self._queue.append((response, data))
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def next(self) -> Response | None:
        """The next response; ``None`` after the final one, or when none will come."""
        assoc = self._assoc
        if not self._started:
            self._started = True
            request = self._request
            message_id = request.MessageID
            if message_id in assoc._responses:  # given to another request since chosen
                message_id = assoc._free_message_id()
                request = self._request = attrs.evolve(request, MessageID=message_id)
            self._message_id = message_id
            assoc._responses[message_id] = self
            try:
                await assoc._send_message(self._context.context_id, request, self._dataset)
            except LocalProtocolError as exc:
                LOGGER.error("Unable to send the %s: %s", request.message_name, exc)
                self._done = True
                return None
            finally:
                self._dataset = None
        if self._done:
            return None
        queue = self._queue
        while not queue:
            if assoc._ended:
                self._done = True
                return None
            timeout = assoc.dimse_timeout
            waiter = self._waiter = assoc._loop.create_future()
            try:
                woken = await _wait(assoc._loop, waiter, timeout)
            finally:
                self._waiter = None
            if not woken and not queue:
                self._done = True
                if not assoc._ended:
                    LOGGER.error(
                        "DIMSE timeout: no response to the %s within %s s; aborting",
                        self._request.message_name,
                        timeout,
                    )
                    assoc.abort()
                return None
        item = queue.popleft()
        if code_to_category(item[0].Status) != "Pending":
            self._done = True
        return item

    def close(self) -> None:
        """The request is no longer outstanding: its Message ID may be used again."""
        self._done = True
        message_id = self._message_id
        if message_id is not None and self._assoc._responses.get(message_id) is self:
            del self._assoc._responses[message_id]


# -- the association ----------------------------------------------------------------------------


class _Protocol(asyncio.BufferedProtocol):
    """The loop's callbacks, handed to the association (kept off its public namespace)."""

    __slots__ = ("_assoc",)

    def __init__(self, assoc: AsyncAssociation) -> None:
        self._assoc = assoc

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._assoc._connection_made(transport)  # type: ignore[arg-type]

    def get_buffer(self, sizehint: int) -> memoryview:
        ul = self._assoc._ul
        assert ul is not None
        return ul.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        assoc = self._assoc
        assert assoc._ul is not None
        assoc._ul.buffer_updated(nbytes)
        assoc._process()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._assoc._connection_lost(exc)

    def pause_writing(self) -> None:
        self._assoc._paused = True

    def resume_writing(self) -> None:
        self._assoc._paused = False
        self._assoc._wake_writers()


class AsyncAssociation:
    """An association on an event loop, requested (``"requestor"``) or accepted (``"acceptor"``).

    Made by :meth:`AsyncAE.associate` or by an :class:`AsyncServer`. Its API is the
    threaded :class:`~dicomnet.association.Association`'s with ``await``:
    ``await send_c_echo()``, ``await send_c_store(...)``, ``async for ... in
    send_c_find(...)``, ``await release()``; :meth:`abort` does not wait.
    ``async with`` releases on exit (aborts if the block raised).
    """

    def __init__(self, ae: ApplicationEntity, mode: str, loop: asyncio.AbstractEventLoop) -> None:
        if mode not in ("requestor", "acceptor"):
            raise ValueError(f"mode must be 'requestor' or 'acceptor', not {mode!r}")
        self._ae = ae
        self._mode = mode
        self._loop = loop
        self.requestor = ServiceUser("requestor")
        self.acceptor = ServiceUser("acceptor")
        self.is_established = False
        self.is_rejected = False
        self.is_aborted = False
        self.is_released = False
        self.acse_timeout: float | None = ae.acse_timeout
        self.dimse_timeout: float | None = ae.dimse_timeout
        self.network_timeout: float | None = ae.network_timeout
        self._handlers = HandlerTable(ae._handlers)
        self._server: AsyncServer | None = None
        self._contexts_override: Sequence[PresentationContext] | None = None
        self._ae_title_override: str | None = None

        self._transport: asyncio.Transport | None = None
        self._ul: UpperLayer | None = None
        self._assembler = MessageAssembler()
        self._negotiation: NegotiationResult | None = None
        self._rq: AAssociateRQ | None = None
        self._rejection: AAssociateRJ | None = None
        self._accepted: list[PresentationContext] = []
        self._rejected: list[PresentationContext] = []
        self._by_id: dict[int, NegotiatedContext] = {}
        self._context_views: dict[int, Any] = {}
        self._max_send = 16382
        self._message_ids = MessageIDs()
        self._responses: dict[int, _Exchange] = {}
        self._incoming: _Incoming | None = None
        self._serving: set[int] = set()
        self._cancelled: set[int] = set()
        self._requests: collections.deque[tuple[int, dm.DimseMessage, Received | None]] = (
            collections.deque()
        )
        self._serve_task: asyncio.Task[None] | None = None
        self._answer_task: asyncio.Task[None] | None = None
        self._release_requested: ReleaseRequested | None = None
        self._send_lock = asyncio.Lock()
        self._paused = False
        self._writers: list[asyncio.Future[None]] = []
        self._waiters: list[asyncio.Future[bool]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False
        self._closed_future: asyncio.Future[None] = loop.create_future()
        self._thread_side = _ThreadSide(self)

    # -- pynetdicom properties ----------------------------------------------------------------
    @property
    def ae(self) -> ApplicationEntity:
        """The local AE (its configuration)."""
        return self._ae

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def is_requestor(self) -> bool:
        return self._mode == "requestor"

    @property
    def is_acceptor(self) -> bool:
        return self._mode == "acceptor"

    @property
    def local(self) -> dict[str, Any]:
        return (self.requestor if self.is_requestor else self.acceptor).info

    @property
    def remote(self) -> dict[str, Any]:
        return (self.acceptor if self.is_requestor else self.requestor).info

    @property
    def accepted_contexts(self) -> list[PresentationContext]:
        return list(self._accepted)

    @property
    def rejected_contexts(self) -> list[PresentationContext]:
        return list(self._rejected)

    @property
    def negotiation(self) -> NegotiationResult | None:
        return self._negotiation

    @property
    def _ended(self) -> bool:
        return self._closed or self.is_aborted or self.is_released or self.is_rejected

    # -- events -------------------------------------------------------------------------------
    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] | None = None
    ) -> None:
        self._handlers.bind(event, handler, args)

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        self._handlers.unbind(event, handler)

    def get_handlers(self, event: EventType) -> Any:
        return self._handlers.get_handlers(event)

    def get_events(self) -> list[EventType]:
        return self._handlers.get_events()

    def _listens(self, event: EventType) -> bool:
        return self._handlers.listens(event)

    def _notify(self, event: NotificationEvent, **attrs: Any) -> None:
        if (event is EVT_ACSE_SENT or event is EVT_ACSE_RECV) and ACSE_LOGGER.isEnabledFor(INFO):
            log_acse(_any(self), attrs.get("primitive"), sent=event is EVT_ACSE_SENT)
        if self._handlers.listens(event):
            trigger_notification(self._handlers, _any(self), event, attrs)

    def _intervene(self, event: InterventionEvent, attrs: dict[str, Any]) -> Any:
        return trigger_intervention(self._handlers, _any(self), event, attrs)

    # -- the connection -----------------------------------------------------------------------
    def _make_upper_layer(self) -> UpperLayer:
        ul = UpperLayer(
            self.is_requestor,
            self._loop.time,
            max_pdata_length=self._ae.maximum_pdu_size or None,
            artim_timeout=(
                self.acse_timeout if self.acse_timeout is not None else self._ae._artim_timeout
            ),
            acse_timeout=self.acse_timeout,
            network_timeout=self.network_timeout,
            stream_pdata_over=STREAM_PDATA_OVER,
        )
        ul.emit_pdus = self._listens(EVT_PDU_RECV) or self._listens(EVT_PDU_SENT)
        ul.emit_transitions = self._listens(EVT_FSM_TRANSITION)
        self._ul = ul
        return ul

    def _connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        local = self.requestor if self.is_requestor else self.acceptor
        peer = self.acceptor if self.is_requestor else self.requestor
        with contextlib.suppress(Exception):
            sockname = transport.get_extra_info("sockname")
            local.address, local.port = sockname[0], sockname[1]
            peername = transport.get_extra_info("peername")
            peer.address, peer.port = peername[0], peername[1]
        if self._ul is None:
            self._make_upper_layer()
        ul = self._ul
        assert ul is not None
        self._notify(EVT_CONN_OPEN, address=(peer.address, peer.port))
        ul.connection_made()
        if self.is_requestor:
            self._notify(EVT_ACSE_SENT, primitive=self._rq)
        self._process()
        if self.is_requestor:
            self._notify(EVT_REQUESTED)

    def _connection_lost(self, exc: Exception | None) -> None:
        ul = self._ul
        if ul is not None and ul.state != State.Sta1:
            ul.connection_lost(None if exc is None else str(exc))
            self._process()
        self._on_closed()

    def _process(self) -> None:
        """Run the kernel on what has been received; write what it queued; rearm its timer."""
        ul = self._ul
        assert ul is not None
        while True:
            bodies = ul.next_pdata()
            if bodies:
                for body in bodies:
                    if not self._on_pdata(body):
                        break  # aborted: the kernel ignores the rest (AA-6 in Sta13)
                continue
            part = ul.next_pdata_part()
            if part is not None:
                self._on_pdata_part(part[0], part[1])
                continue
            event = ul.next_event()
            if event is None:
                break
            self._on_ul_event(event)
        self._flush()
        self._arm_timer()

    def _flush(self) -> None:
        ul = self._ul
        transport = self._transport
        if ul is None or transport is None:
            return
        out = ul.data_to_send()
        if out and not transport.is_closing():
            transport.writelines(out)
        if ul.wants_close and not transport.is_closing():
            transport.close()

    def _arm_timer(self) -> None:
        """Have :meth:`_on_timer` run by the kernel's next deadline.

        A timer already set for no later than that is kept (the network timeout
        moves on with every read: rescheduling each time would cost more than an
        early wake-up, which the kernel answers by doing nothing).
        """
        ul = self._ul
        if ul is None or self._closed:
            return
        deadline = ul.next_deadline()
        if deadline is None:
            return
        at = self._timer_at
        if at is not None and at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        ul = self._ul
        if ul is None or self._closed:
            return
        before = ul.state
        ul.handle_timer()
        self._process()
        transport = self._transport
        if before is State.Sta13 and ul.state is State.Sta1 and transport is not None:
            transport.abort()  # ARTIM expired waiting for the peer to close (PS3.8 9.1.5)

    # -- received P-DATA ----------------------------------------------------------------------
    def _on_pdata(self, body: memoryview) -> bool:
        incoming = self._incoming
        if incoming is not None and incoming.sink is not None:
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
            self._dimse_error(exc)
            return False
        for dimse_event in dimse_events:
            self._on_dimse_event(dimse_event)
        return True

    def _on_pdata_part(self, piece: memoryview, left: int) -> None:
        try:
            dimse_events = self._assembler.receive_part(piece, left)
        except RemoteProtocolError as exc:
            self._dimse_error(exc)
            return
        for dimse_event in dimse_events:
            self._on_dimse_event(dimse_event)

    def _dimse_error(self, exc: RemoteProtocolError) -> None:
        LOGGER.error("DIMSE protocol error from the peer: %s", exc)
        assert self._ul is not None
        self._ul.protocol_error(exc)

    def _on_dimse_event(self, event: Any) -> None:
        if isinstance(event, DatasetFragment):
            incoming = self._incoming
            assert incoming is not None  # the assembler guarantees the order
            sink = incoming.sink
            if sink is not None:  # streamed: each fragment straight to the sink
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
        """Where the service class wants a request's data set written as it arrives."""
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
            return service.dataset_sink(_any(self), context_view(_any(self), context), message)
        except Exception:
            LOGGER.exception(
                "The %s service class could not give a data set sink; collecting in memory",
                service.name,
            )
            return None

    def _on_message(self, context_id: int, message: dm.DimseMessage, data: Received | None) -> None:
        if DIMSE_LOGGER.isEnabledFor(INFO):
            log_dimse(_any(self), message, context_id, sent=False, has_dataset=data is not None)
        if self._listens(EVT_DIMSE_RECV):
            self._notify(EVT_DIMSE_RECV, message=message, context_id=context_id)
        if isinstance(message, dm.DimseResponse):
            exchange = self._responses.get(message.MessageIDBeingRespondedTo)
            if exchange is None:
                LOGGER.warning(
                    "Ignoring a %s for message ID %d, which is not outstanding",
                    message.message_name,
                    message.MessageIDBeingRespondedTo,
                )
                return
            exchange.deliver(message, data if isinstance(data, bytes) else None)
        elif isinstance(message, dm.CCancelRQ):
            if message.MessageIDBeingRespondedTo in self._serving:
                self._cancelled.add(message.MessageIDBeingRespondedTo)
        else:
            if isinstance(message, dm.DimseRequest):
                self._serving.add(message.MessageID)
            self._requests.append((context_id, message, data))
            if self._serve_task is None:
                self._serve_task = self._loop.create_task(self._serve_requests())

    # -- Upper Layer events -------------------------------------------------------------------
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
            self._answer_task = self._loop.create_task(self._answer(event.rq))
        elif isinstance(event, AssociationAccepted):
            self._notify(EVT_ACSE_RECV, primitive=event.ac)
            self._on_accepted(event.ac)
        elif isinstance(event, AssociationRejected):
            self._notify(EVT_ACSE_RECV, primitive=event.rj)
            self.is_rejected = True
            self._rejection = event.rj
            LOGGER.error("Association rejected: %s", describe_rejection(event.rj))
            self._notify(EVT_REJECTED)
            self._wake()
        elif isinstance(event, ReleaseRequested):
            self._notify(EVT_ACSE_RECV, primitive=event)
            if not event.collision and (self._requests or self._serve_task is not None):
                self._release_requested = event  # answered once the requests before it are
            else:
                self._answer_release(event)
        elif isinstance(event, ReleaseConfirmed):
            self._notify(EVT_ACSE_RECV, primitive=event)
            assert self._ul is not None
            if self._ul.state == State.Sta12:
                self._ul.release_response()
            self._mark_released()
        elif isinstance(event, Aborted):
            self._on_aborted(event)
        elif isinstance(event, ConnectionClosed):
            self._on_closed()

    def _answer_release(self, event: ReleaseRequested) -> None:
        ul = self._ul
        assert ul is not None
        if ul.state not in (State.Sta8, State.Sta9):
            return  # aborted meanwhile, or a collision being resolved
        ul.release_response()
        self._notify(EVT_ACSE_SENT, primitive=event)
        if not event.collision:
            self._mark_released()

    def _on_accepted(self, ac: AAssociateAC) -> None:
        assert self._rq is not None and self._ul is not None
        try:
            result = interpret_associate_response(
                self._rq, ac, local_send_limit=self._ae._maximum_send_length
            )
        except RemoteProtocolError as exc:
            LOGGER.error("Invalid A-ASSOCIATE-AC: %s", exc)
            self._ul.protocol_error(exc)
            return
        self._established(result)
        self.acceptor.maximum_length = ac.user_information.maximum_length
        self._notify(EVT_ACCEPTED)
        self._notify(EVT_ESTABLISHED)
        self._wake()

    def _established(self, result: NegotiationResult) -> None:
        self._negotiation = result
        self._max_send = result.max_send_length
        for cx in result.contexts:
            pc = PresentationContext.from_negotiated(cx)
            (self._accepted if cx.accepted else self._rejected).append(pc)
            if cx.accepted:
                self._by_id[cx.context_id] = cx
        self._assembler.accepted_context_ids = frozenset(self._by_id)
        peer = self.acceptor if self.is_requestor else self.requestor
        peer.implementation_class_uid = (
            UID(result.peer_implementation_class_uid)
            if result.peer_implementation_class_uid
            else None
        )
        peer.implementation_version_name = result.peer_implementation_version_name
        local = self.requestor if self.is_requestor else self.acceptor
        window = result.async_window
        local.asynchronous_operations = (window.maximum_invoked, window.maximum_performed)
        self.is_established = True

    def _on_aborted(self, event: Aborted) -> None:
        self._drop_incoming("aborted")
        if not (self.is_released or self.is_rejected or self.is_aborted):
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
        if event.local:
            self._flush()
            self._close_transport()
        self._wake()

    def _mark_released(self) -> None:
        if not self.is_released:
            self.is_released = True
            self.is_established = False
            self._notify(EVT_RELEASED)
        self._wake()

    def _drop_incoming(self, why: str) -> None:
        incoming = self._incoming
        if incoming is not None:
            self._incoming = None
            LOGGER.error(
                "Association %s in the middle of a %s: its data set is discarded",
                why,
                incoming.message.message_name,
            )
            incoming.abort()

    def _on_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_incoming("closed")
        if self.is_established:  # the peer vanished without release or abort
            self._on_aborted(Aborted(source=2, reason=0, local=True, error="connection closed"))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()
        if transport is not None:
            self._notify(EVT_CONN_CLOSE)
        self._wake()
        self._wake_writers()
        if self._serve_task is None:
            self._drop_requests()
        if not self._closed_future.done():
            self._closed_future.set_result(None)
        if self._server is not None:
            self._server._association_ended(self)

    def _close_transport(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _wake(self) -> None:
        """Something changed (established, rejected, released, aborted, closed): wake waiters."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(True)
        for exchange in list(self._responses.values()):
            exchange.wake()

    async def _wait_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``done()``, at most ``timeout`` seconds; whether it is."""
        loop = self._loop
        deadline = None if timeout is None else loop.time() + timeout
        while not done():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            waiter: asyncio.Future[bool] = loop.create_future()
            self._waiters.append(waiter)
            await _wait(loop, waiter, remaining)
        return done()

    # -- sending ------------------------------------------------------------------------------
    def _wake_writers(self) -> None:
        writers, self._writers = self._writers, []
        for writer in writers:
            if not writer.done():
                writer.set_result(None)

    async def _drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        transport = self._transport
        while self._paused and not self._closed and transport is not None:
            if transport.is_closing():
                raise LocalProtocolError("the connection is closing")
            writer = self._loop.create_future()
            self._writers.append(writer)
            await writer

    def _write_now(self, buffers: Sequence[bytes | bytearray | memoryview]) -> None:
        ul = self._ul
        transport = self._transport
        if ul is None or transport is None or self._closed or transport.is_closing():
            raise LocalProtocolError("the connection is closed")
        ul.send_pdata(buffers)
        transport.writelines(ul.data_to_send())

    async def _send_message(self, context_id: int, message: dm.DimseMessage, dataset: Any) -> None:
        """Fragment ``message`` and write it, batch by batch, minding write flow control.

        Raises ``LocalProtocolError`` once the association or the connection is gone.
        """
        if DIMSE_LOGGER.isEnabledFor(INFO):
            log_dimse(_any(self), message, context_id, sent=True, has_dataset=dataset is not None)
        async with self._send_lock:
            for batch in fragment_message(context_id, message, dataset, self._max_send):
                self._write_now(batch)
                if self._paused:
                    await self._drain()
        if self._listens(EVT_DIMSE_SENT):
            self._notify(EVT_DIMSE_SENT, message=message, context_id=context_id)

    async def _write_pdata(self, buffers: Sequence[bytes | bytearray | memoryview]) -> None:
        """Whole P-DATA-TF PDUs of one or more messages at once (held C-FIND responses)."""
        async with self._send_lock:
            self._write_now(buffers)
            if self._paused:
                await self._drain()

    def _batching_allowed(self) -> bool:
        return not (DIMSE_LOGGER.isEnabledFor(INFO) or self._listens(EVT_DIMSE_SENT))

    # -- what the plans use -------------------------------------------------------------------
    def _check_established(self) -> None:
        if not self.is_established:
            raise RuntimeError(
                "The association with a peer SCP has been released, aborted or "
                "was never established"
            )

    def _context_for(
        self, abstract_syntax: str, *, as_scp: bool = False, transfer_syntax: str | None = None
    ) -> NegotiatedContext:
        negotiation = self._negotiation
        assert negotiation is not None
        return scu.context_for(
            negotiation, abstract_syntax, as_scp=as_scp, transfer_syntax=transfer_syntax
        )

    def _next_message_id(self, msg_id: int | None) -> int:
        if msg_id is not None and not 0 <= msg_id <= 0xFFFF:
            raise ValueError("'msg_id' must be between 0 and 65535, inclusive")
        if msg_id is None or msg_id in self._responses:
            return self._free_message_id()
        return msg_id

    def _free_message_id(self) -> int:
        ids = self._message_ids
        for _ in range(ids.LAST):
            message_id = ids.allocate()
            ids.release(message_id)
            if message_id not in self._responses:
                return message_id
        raise LocalProtocolError("all 65535 message IDs are outstanding")

    def _is_cancelled(self, message_id: int) -> bool:
        return message_id in self._cancelled

    # -- the SCU API --------------------------------------------------------------------------
    async def send_c_echo(self, msg_id: int = 1) -> Dataset:
        """C-ECHO (PS3.7 9.1.5): the response's status (empty Dataset: none came)."""
        return await run_plan(self, scu.echo_plan(self, msg_id))

    async def send_c_store(
        self,
        dataset: DatasetSource,
        msg_id: int = 1,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
        *,
        allow_lossy: bool = False,
    ) -> Dataset:
        """C-STORE (PS3.7 9.1.1) of a Dataset, a file path or a binary file object.

        A Part 10 file whose transfer syntax was accepted is streamed in chunks,
        written as the transport takes them (bounded memory); see
        :mod:`dicomnet.store_scu`.
        """
        outcome = await run_plan(
            self,
            store_plan(self, dataset, msg_id, priority, originator_aet, originator_id, allow_lossy),
        )
        return store_status(outcome)

    def send_c_find(
        self, dataset: Dataset, query_model: str, msg_id: int = 1, priority: int = 2
    ) -> Responses:
        """C-FIND (PS3.7 9.1.2): ``async for status, identifier in ...`` (:class:`Responses`)."""
        return Responses(
            iterate_plan(self, scu.find_plan(self, dataset, query_model, msg_id, priority))
        )

    def send_c_get(
        self, dataset: Dataset, query_model: str, msg_id: int = 1, priority: int = 2
    ) -> Responses:
        """C-GET (PS3.7 9.1.3): the C-STORE sub-operations go to the ``EVT_C_STORE`` handler."""
        return Responses(
            iterate_plan(self, scu.get_plan(self, dataset, query_model, msg_id, priority))
        )

    def send_c_move(
        self,
        dataset: Dataset,
        move_aet: str,
        query_model: str,
        msg_id: int = 1,
        priority: int = 2,
    ) -> Responses:
        """C-MOVE (PS3.7 9.1.4): the peer sends the matches to ``move_aet``."""
        return Responses(
            iterate_plan(
                self, scu.move_plan(self, dataset, move_aet, query_model, msg_id, priority)
            )
        )

    async def send_c_cancel(
        self, msg_id: int, context_id: int | None = None, query_model: str | None = None
    ) -> None:
        """C-CANCEL (PS3.7 9.3.2.3) for the operation with ``msg_id``."""
        await run_plan(self, scu.cancel_plan(self, msg_id, context_id, query_model))

    async def send_n_action(
        self,
        dataset: Dataset | None,
        action_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-ACTION (PS3.7 10.1.4): ``(status, action_reply)``."""
        return await run_plan(
            self,
            scu.n_action_plan(
                self, dataset, action_type, class_uid, instance_uid, msg_id, meta_uid
            ),
        )

    async def send_n_create(
        self,
        dataset: Dataset | None,
        class_uid: str,
        instance_uid: str | None = None,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-CREATE (PS3.7 10.1.5): ``(status, attribute_list)``."""
        return await run_plan(
            self, scu.n_create_plan(self, dataset, class_uid, instance_uid, msg_id, meta_uid)
        )

    async def send_n_delete(
        self, class_uid: str, instance_uid: str, msg_id: int = 1, meta_uid: str | None = None
    ) -> Dataset:
        """N-DELETE (PS3.7 10.1.6): the status."""
        return await run_plan(
            self, scu.n_delete_plan(self, class_uid, instance_uid, msg_id, meta_uid)
        )

    async def send_n_event_report(
        self,
        dataset: Dataset | None,
        event_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-EVENT-REPORT (PS3.7 10.1.1): ``(status, event_reply)``."""
        return await run_plan(
            self,
            scu.n_event_report_plan(
                self, dataset, event_type, class_uid, instance_uid, msg_id, meta_uid
            ),
        )

    async def send_n_get(
        self,
        identifier_list: Sequence[Any],
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-GET (PS3.7 10.1.2): ``(status, attribute_list)``."""
        return await run_plan(
            self, scu.n_get_plan(self, identifier_list, class_uid, instance_uid, msg_id, meta_uid)
        )

    async def send_n_set(
        self,
        dataset: Dataset,
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-SET (PS3.7 10.1.3): ``(status, attribute_list)``."""
        return await run_plan(
            self, scu.n_set_plan(self, dataset, class_uid, instance_uid, msg_id, meta_uid)
        )

    # -- serving the peer's requests ----------------------------------------------------------
    async def _serve_requests(self) -> None:
        """Serve the received requests one at a time, in order, in the default executor."""
        try:
            while self._requests and not self._closed:
                context_id, message, data = self._requests.popleft()
                try:
                    await self._loop.run_in_executor(
                        None, self._dispatch_in_thread, context_id, message, data
                    )
                finally:
                    if isinstance(message, dm.DimseRequest):
                        self._serving.discard(message.MessageID)
                        self._cancelled.discard(message.MessageID)
        finally:
            self._serve_task = None
            self._drop_requests()
        release = self._release_requested
        if release is not None and not self._closed:
            self._release_requested = None
            self._answer_release(release)
            self._flush()
            self._arm_timer()

    def _dispatch_in_thread(
        self, context_id: int, message: dm.DimseMessage, data: Received | None
    ) -> None:
        dispatch(_any(self._thread_side), context_id, message, data)

    def _drop_requests(self) -> None:
        """Requests received but never served (the association ended): delete their files."""
        if not self._closed:
            return
        while self._requests:
            data = self._requests.popleft()[2]
            if isinstance(data, SpooledDataset):
                data.discard()

    # -- the acceptor's answer ----------------------------------------------------------------
    async def _answer(self, rq: AAssociateRQ) -> None:
        """Decide on an A-ASSOCIATE-RQ (the policy and handlers run in the executor), answer."""
        _record_requestor(_any(self), rq)
        self._notify(EVT_REQUESTED)
        server = self._server
        decision: Any
        if server is not None and server._active() > self._ae.maximum_associations:
            decision = reject_local_limit_exceeded()
        else:
            try:
                decision = await self._loop.run_in_executor(None, decide, _any(self), rq)
            except Exception:
                LOGGER.exception("Error while deciding on an association request; rejecting it")
                decision = None
        ul = self._ul
        assert ul is not None
        response: AAssociateAC | AAssociateRJ
        if decision is None or isinstance(decision, AAssociateRJ):
            response = decision if decision is not None else AAssociateRJ(2, 1, 1)
        else:
            response = decision.response
        if ul.state is not State.Sta3:
            LOGGER.info("The association from %r ended before it was answered", rq.calling_ae_title)
            return
        if isinstance(response, AAssociateRJ):
            ul.reject(response)
            LOGGER.info(
                "Rejecting the association from %r: %s",
                rq.calling_ae_title,
                describe_rejection(response),
            )
            self.is_rejected = True
            self._notify(EVT_ACSE_SENT, primitive=response)
            self._process()
            self._notify(EVT_REJECTED)
        else:
            ul.accept(response)
            self._notify(EVT_ACSE_SENT, primitive=response)
            self._established(decision)
            self.acceptor.maximum_length = decision.max_receive_length
            self._process()
            self._notify(EVT_ACCEPTED)
            self._notify(EVT_ESTABLISHED)
        self._wake()

    # -- release and abort --------------------------------------------------------------------
    async def release(self) -> None:
        """Release the association (A-RELEASE, PS3.8 7.2): wait for the peer's answer and for
        the connection to close; abort if no answer comes within the ACSE timeout."""
        ul = self._ul
        if ul is None or not self.is_established:
            return
        try:
            ul.release()
        except LocalProtocolError:
            return
        self._notify(EVT_ACSE_SENT, primitive="A-RELEASE-RQ")
        self._process()
        timeout = self.acse_timeout
        if not await self._wait_until(
            lambda: self.is_released or self.is_aborted or self._closed, timeout
        ):
            LOGGER.error("No A-RELEASE-RP within the ACSE timeout: aborting")
            self.abort()
        await self.wait_closed(timeout)

    def abort(self) -> None:
        """Send an A-ABORT (source: service user) and close the connection (PS3.8 7.3).

        Does not wait: ``await wait_closed()`` for the connection to be gone.
        """
        ul = self._ul
        if ul is None or self._closed:
            self.is_aborted = self.is_aborted or not (self.is_released or self.is_rejected)
            self._close_transport()
            return
        aborted_now = False
        if ul.state not in (State.Sta1, State.Sta2, State.Sta13):
            try:
                ul.abort()
                aborted_now = True
            except LocalProtocolError:
                pass
        if aborted_now:
            self._notify(EVT_ACSE_SENT, primitive="A-ABORT")
        if not (self.is_released or self.is_rejected or self.is_aborted):
            self.is_aborted = True
            self.is_established = False
            self._notify(EVT_ABORTED)
        self._drop_incoming("aborted")
        self._flush()
        self._close_transport()  # PS3.8 lets the sender of an A-ABORT close at once
        self._arm_timer()
        self._wake()
        self._wake_writers()

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until the connection is closed (at most ``timeout`` seconds; then drop it)."""
        if self._transport is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._closed_future), timeout)
        except asyncio.TimeoutError:
            self._transport.abort()
            await asyncio.shield(self._closed_future)
        task = self._serve_task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(Exception):
                await task
        task = self._answer_task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(Exception):
                await task

    async def __aenter__(self) -> AsyncAssociation:
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        if self.is_established and exc_type is None:
            await self.release()
        else:
            self.abort()
            await self.wait_closed(self.acse_timeout)

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
        return f"<AsyncAssociation {self._mode} {state} {self.remote.get('ae_title')!r}>"


class _ThreadSide:
    """An asyncio association as blocking code in a worker thread sees it.

    The service classes and the application's handlers are blocking code; they
    run in the loop's executor and get this as the association (``call.assoc``,
    ``event.assoc``). Reads go straight to the association; every write and
    every wait is carried out on the loop (``run_coroutine_threadsafe``), and
    the ``send_*`` methods run the service-user plans with the blocking driver
    over those, so that a C-GET SCP's C-STORE sub-operations or a handler's
    ``event.assoc.send_n_event_report(...)`` work as on a threaded association.
    """

    def __init__(self, assoc: AsyncAssociation) -> None:
        self._assoc = assoc
        self._loop = assoc._loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._assoc, name)

    def __repr__(self) -> str:
        return repr(self._assoc)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it; ``LocalProtocolError`` if the loop stops."""
        loop = self._loop
        if loop.is_closed():
            coro.close()
            raise LocalProtocolError("the event loop is closed")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        while True:
            try:
                return future.result(_LOOP_CHECK)
            except concurrent.futures.TimeoutError:
                # a loop stopped by asyncio.run() would never run it: do not wait forever
                if loop.is_closed() or not loop.is_running():
                    future.cancel()
                    raise LocalProtocolError("the event loop stopped") from None

    def _send_message(self, context_id: int, message: dm.DimseMessage, dataset: Any) -> None:
        self._call(self._assoc._send_message(context_id, message, dataset))

    def _write_pdata(self, buffers: Sequence[bytes | bytearray | memoryview]) -> None:
        self._call(self._assoc._write_pdata(buffers))

    def _intervene(self, event: InterventionEvent, attrs: dict[str, Any]) -> Any:
        return trigger_intervention(self._assoc._handlers, _any(self), event, attrs)

    def _next_message_id(self, msg_id: int | None) -> int:
        return self._call(_value(self._assoc._next_message_id, msg_id))

    def _exchange(
        self, context: NegotiatedContext, message: dm.DimseRequest, dataset: Any
    ) -> Iterator[Response | None]:
        exchange = _Exchange(self._assoc, context, message, dataset)
        try:
            while True:
                item = self._call(exchange.next())
                yield item
                if item is None:
                    return
        finally:
            self._loop.call_soon_threadsafe(exchange.close)

    def abort(self) -> None:
        self._call(_value(self._assoc.abort))

    def release(self) -> None:
        self._call(self._assoc.release())

    def send_c_echo(self, msg_id: int = 1) -> Dataset:
        return scu.c_echo(_any(self), msg_id)

    def send_c_store(
        self,
        dataset: Any,
        msg_id: int = 1,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> Dataset:
        return scu.c_store(_any(self), dataset, msg_id, priority, originator_aet, originator_id)

    def send_n_event_report(
        self,
        dataset: Dataset | None,
        event_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int = 1,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        return scu.n_event_report(
            _any(self), dataset, event_type, class_uid, instance_uid, msg_id, meta_uid
        )


async def _value(function: Callable[..., T], *args: Any) -> T:
    return function(*args)


# -- the AE -------------------------------------------------------------------------------------


class AsyncAE:
    """An :class:`~dicomnet.ae.ApplicationEntity` whose associations and servers run on asyncio.

    ``AsyncAE("ME")`` makes the AE (the same keyword arguments: ``plugins``,
    ``block_plugins``); ``AsyncAE.wrap(ae)`` uses one already configured. The
    configuration *is* the ApplicationEntity's: every attribute and method other
    than :meth:`associate` and :meth:`start_server` is the wrapped AE's
    (``add_requested_context``, ``dimse_timeout``, ``bind``...), and the plugins'
    registry is built once for both. The sync AE stays available as :attr:`ae`.
    """

    __slots__ = ("_ae",)
    _ae: ApplicationEntity

    def __init__(self, ae_title: str = "DICOMNET", **kwargs: Any) -> None:
        object.__setattr__(self, "_ae", ApplicationEntity(ae_title, **kwargs))

    @classmethod
    def wrap(cls, ae: ApplicationEntity) -> AsyncAE:
        self = cls.__new__(cls)
        object.__setattr__(self, "_ae", ae)
        return self

    @property
    def ae(self) -> ApplicationEntity:
        """The ApplicationEntity holding the configuration (its blocking API too)."""
        return self._ae

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ae, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._ae, name, value)

    def __repr__(self) -> str:
        return f"<AsyncAE {self._ae.ae_title!r}>"

    async def associate(
        self,
        addr: str,
        port: int,
        contexts: Sequence[PresentationContext] | None = None,
        ae_title: str = "ANY-SCP",
        max_pdu: int = 16382,
        ext_neg: Sequence[Any] | None = None,
        bind_address: tuple[str, int] | None = None,
        tls_args: tuple[ssl.SSLContext, str | None] | None = None,
        evt_handlers: Sequence[EventHandlerType] | None = None,
    ) -> AsyncAssociation:
        """Request an association with the AE at ``addr``:``port`` (PS3.8 7.1).

        The arguments are :meth:`ApplicationEntity.associate`'s. Returns the
        association once it is established, rejected or aborted (check
        ``is_established``); the TCP connection (and TLS handshake) is bounded
        by ``connection_timeout``, the negotiation by ``acse_timeout``.

        :raises RuntimeError: when no presentation context is requested.
        :raises ValueError: for an invalid ``ae_title``, ``max_pdu`` or ``ext_neg``.
        """
        ae = self._ae
        requested = list(contexts) if contexts is not None else ae.requested_contexts
        if not requested:
            raise RuntimeError(
                "At least one requested presentation context is required before associating "
                "with a peer"
            )
        called = _ae_title(ae_title, "ae_title")
        if (
            isinstance(max_pdu, bool)
            or not isinstance(max_pdu, int)
            or not (max_pdu == 0 or 7 <= max_pdu <= 0xFFFFFFFF)
        ):
            raise ValueError("'max_pdu' must be 0 (unlimited) or 7 to 4294967295")
        loop = asyncio.get_running_loop()
        assoc = AsyncAssociation(ae, "requestor", loop)
        assoc._handlers.bind_all(evt_handlers)
        assoc.requestor.ae_title = ae.ae_title
        assoc.requestor.maximum_length = max_pdu
        assoc.requestor.implementation_class_uid = ae.implementation_class_uid
        assoc.requestor.implementation_version_name = ae.implementation_version_name
        assoc.acceptor.ae_title = called
        assoc.acceptor.address, assoc.acceptor.port = addr, port
        rq = ae._build_rq(called, requested, max_pdu, ext_neg)
        assoc._rq = rq
        ul = assoc._make_upper_layer()
        ul.request_association(rq)
        ssl_context, hostname = tls_args if tls_args else (None, None)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Protocol(assoc),
                    addr,
                    port,
                    ssl=ssl_context,
                    server_hostname=(hostname or addr) if ssl_context is not None else None,
                    local_addr=bind_address,
                ),
                ae.connection_timeout,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            LOGGER.error(
                "Association request failed: unable to connect to %s:%s (%s)", addr, port, exc
            )
            assoc.is_aborted = True
            return assoc
        try:
            await assoc._wait_until(
                lambda: assoc.is_established or assoc._ended, None
            )  # the kernel's ACSE timeout bounds it
        except BaseException:
            assoc.abort()
            raise
        return assoc

    async def start_server(
        self,
        address: Address,
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: Sequence[EventHandlerType] | None = None,
        ae_title: str | None = None,
        contexts: Sequence[PresentationContext] | None = None,
    ) -> AsyncServer:
        """Listen on ``address`` and serve associations on this loop (PS3.8 7.1).

        Returns the :class:`AsyncServer` (already serving); ``server.close()``
        and ``await server.wait_closed()`` stop it. Requests are served by the
        AE's plugins with the handlers in ``evt_handlers`` (and the AE's), which
        run in the loop's default executor.

        :raises ValueError: when no presentation context is supported.
        """
        ae = self._ae
        if contexts is None and not ae.supported_contexts:
            raise ValueError(
                "At least one supported presentation context is required before starting an "
                "association server"
            )
        server = AsyncServer(
            ae,
            ae_title=_ae_title(ae_title) if ae_title else ae.ae_title,
            contexts=contexts,
            evt_handlers=evt_handlers,
        )
        await server._listen(address, ssl_context)
        return server


AE = AsyncAE


class AsyncServer:
    """Associations accepted on one listening socket, served on the loop."""

    def __init__(
        self,
        ae: ApplicationEntity,
        *,
        ae_title: str,
        contexts: Sequence[PresentationContext] | None,
        evt_handlers: Sequence[EventHandlerType] | None,
    ) -> None:
        self.ae = ae
        self.ae_title = ae_title
        self.contexts = list(contexts) if contexts is not None else None
        self._handlers = HandlerTable(ae._handlers)
        self._handlers.bind_all(evt_handlers)
        self._server: asyncio.Server | None = None
        self._associations: set[AsyncAssociation] = set()

    async def _listen(self, address: Address, ssl_context: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Protocol(self._new_association(loop)),
            address[0],
            address[1],
            ssl=ssl_context,
            reuse_address=os.name != "nt",
        )

    def _new_association(self, loop: asyncio.AbstractEventLoop) -> AsyncAssociation:
        assoc = AsyncAssociation(self.ae, "acceptor", loop)
        assoc._handlers = HandlerTable(self._handlers)
        assoc._server = self
        assoc._contexts_override = self.contexts
        assoc._ae_title_override = self.ae_title
        assoc._make_upper_layer()
        self._associations.add(assoc)
        return assoc

    def _association_ended(self, assoc: AsyncAssociation) -> None:
        self._associations.discard(assoc)

    def _active(self) -> int:
        return sum(
            1
            for a in self._associations
            if not (a.is_released or a.is_aborted or a.is_rejected or a._closed)
        )

    @property
    def server_address(self) -> tuple[str, int]:
        """The address and port listened on (the port chosen for port 0)."""
        assert self._server is not None
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    @property
    def active_associations(self) -> list[AsyncAssociation]:
        return [a for a in self._associations if not a._closed]

    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] | None = None
    ) -> None:
        """Bind ``handler`` to ``event`` for the associations accepted from now on."""
        self._handlers.bind(event, handler, args)

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        self._handlers.unbind(event, handler)

    def close(self) -> None:
        """Stop accepting, and abort the associations still open."""
        if self._server is not None:
            self._server.close()
        for assoc in list(self._associations):
            assoc.abort()

    async def wait_closed(self) -> None:
        """Wait until the listening socket and every association's connection are closed."""
        for assoc in list(self._associations):
            await assoc.wait_closed(assoc.acse_timeout)
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until cancelled (then close)."""
        try:
            await asyncio.Event().wait()
        finally:
            self.close()
            await self.wait_closed()

    async def __aenter__(self) -> AsyncServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<AsyncServer {self.ae_title!r}>"
