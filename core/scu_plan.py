"""DIMSE service-user operations as *plans*: the same code for every transport (PS3.7 9, 10).

What ``send_c_echo``, ``send_c_store``, ``send_c_find``... do -- check the
arguments, pick the accepted presentation context, build the request, read the
responses, turn them into the documented return values, cancel a query left
early -- is written once (:mod:`dicomnet.service_user`,
:mod:`dicomnet.store_scu`), as a generator *plan*. A plan never waits: it calls
the association's non-blocking methods directly (``_check_established``,
``_context_for``, ``_next_message_id``, ``negotiation``, ``abort``) and *yields*
an operation value for everything that waits for the network or the caller:

* :class:`Exchange`: the driver starts the exchange of a request (the request
  goes out with the first ``NEXT``); the plan gets ``None`` back;
* :data:`NEXT`: the driver waits for the exchange's next response (sending the
  request first); the plan gets ``(response, data)``, or ``None`` when the
  request could not be sent, on a DIMSE timeout (the driver aborts) or when the
  association ended;
* :class:`Send`: the driver sends a message that has no response (a
  C-CANCEL-RQ); ``None`` back, or ``LocalProtocolError`` thrown into the plan;
* :class:`Deliver`: the driver hands ``item`` to the caller (a C-FIND response:
  the plan's own *yield*); ``True`` back, or ``False`` once the caller has left
  the loop.

An exception raised while the driver carries out an operation (a file that
cannot be read while its data set is streamed) is thrown into the plan at the
``yield``. A plan's return value is the operation's result.

Two drivers run plans: :func:`run` and :func:`iterate` here, for the threaded
:class:`~dicomnet.association.Association` (they map ``Exchange``/``NEXT`` onto
its blocking ``_exchange`` generator: no extra thread, queue or copy), and
their ``async`` twins in :mod:`dicomnet.aio`, which await the same operations
on the event loop. The drivers own the exchange: they close it when the plan
ends, however it ends.

This is a kernel module: no socket, thread, event loop or clock.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any, Protocol, TypeVar

import attrs

from . import dimse_messages as dm
from .acse import NegotiatedContext, NegotiationResult

__all__ = [
    "NEXT",
    "Deliver",
    "Exchange",
    "Operation",
    "Plan",
    "PlanHost",
    "Send",
    "iterate",
    "run",
]

T = TypeVar("T")

#: a response and its data set bytes (``None`` without one), as exchanges give them
Response = tuple[dm.DimseResponse, bytes | None]


@attrs.frozen
class Exchange:
    """Send ``request`` (with ``dataset``: ``None``, bytes or an iterable of chunks) and
    collect its responses, which ``NEXT`` reads one by one until the final one."""

    context: NegotiatedContext
    request: dm.DimseRequest
    dataset: Any


class _Next:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEXT"


#: the next response of the plan's exchange: ``(response, data)``, or ``None``
NEXT = _Next()


@attrs.frozen
class Send:
    """Send a message for which no response is awaited (a C-CANCEL-RQ, PS3.7 9.3.2.3)."""

    context_id: int
    message: dm.DimseMessage
    dataset: Any = None


@attrs.frozen
class Deliver:
    """Give ``item`` to the caller; the answer is whether it still listens."""

    item: Any


Operation = Exchange | _Next | Send | Deliver
Plan = Generator[Operation, Any, T]


class PlanHost(Protocol):
    """What a plan uses of an association directly: the calls that never wait."""

    @property
    def is_established(self) -> bool: ...

    @property
    def negotiation(self) -> NegotiationResult | None: ...

    @property
    def _negotiation(self) -> NegotiationResult | None: ...

    def _check_established(self) -> None: ...

    def _context_for(
        self, abstract_syntax: str, *, as_scp: bool = False, transfer_syntax: str | None = None
    ) -> NegotiatedContext: ...

    def _next_message_id(self, msg_id: int | None) -> int: ...

    def abort(self) -> None: ...


class SyncHost(PlanHost, Protocol):
    """A blocking association: what the synchronous drivers need besides."""

    def _exchange(
        self, context: NegotiatedContext, message: dm.DimseRequest, dataset: Any
    ) -> Iterator[Response | None]: ...

    def _send_message(self, context_id: int, message: dm.DimseMessage, dataset: Any) -> None: ...


# -- the synchronous drivers ---------------------------------------------------------------------


def run(host: SyncHost, plan: Plan[T]) -> T:
    """Run a plan that delivers nothing to its end, blocking; return its result."""
    exchange: Iterator[Response | None] | None = None
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
                    result = next(exchange, None)
                elif type(op) is Exchange:
                    if exchange is not None:
                        _close(exchange)
                    exchange = host._exchange(op.context, op.request, op.dataset)
                elif type(op) is Send:
                    host._send_message(op.context_id, op.message, op.dataset)
                else:
                    raise TypeError(f"a plan run by run() cannot yield {op!r}")
            except Exception as exc:
                error = exc
    finally:
        plan.close()
        if exchange is not None:
            _close(exchange)


def iterate(host: SyncHost, plan: Plan[None]) -> Iterator[Any]:
    """Run a plan as a generator: what it delivers is yielded to the caller.

    Closing the generator early (leaving a ``for`` loop) answers the plan's
    pending :class:`Deliver` with ``False``; the plan then finishes -- a query
    sends its C-CANCEL and reads the responses left -- before ``close()`` returns.
    Nothing runs before the first ``next()``.
    """
    exchange: Iterator[Response | None] | None = None
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
            if op is NEXT:
                assert exchange is not None, "NEXT before Exchange"
                try:
                    result = next(exchange, None)
                except Exception as exc:
                    error = exc
                continue
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
                if type(op) is Exchange:
                    if exchange is not None:
                        _close(exchange)
                    exchange = host._exchange(op.context, op.request, op.dataset)
                elif type(op) is Send:
                    host._send_message(op.context_id, op.message, op.dataset)
                else:
                    raise TypeError(f"a plan cannot yield {op!r}")
            except Exception as exc:
                error = exc
    finally:
        plan.close()
        if exchange is not None:
            _close(exchange)


def _close(exchange: object) -> None:
    close: Callable[[], None] | None = getattr(exchange, "close", None)
    if close is not None:
        close()
