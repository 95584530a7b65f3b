"""The SCP engine of every C-FIND, C-GET and C-MOVE service class (PS3.4 C.4, PS3.7 9.1.2-9.1.4).

Query/Retrieve, Modality Worklist, Relevant Patient Information, Substance
Administration, Hanging Protocol, Defined Procedure Protocol, Color Palette,
Implant Template, Protocol Approval and Inventory all serve the same three
DIMSE-C operations with the same handler contract (pynetdicom's): the
application binds a generator to ``EVT_C_FIND``, ``EVT_C_GET`` or
``EVT_C_MOVE`` and this module turns what it yields into responses. Each
plugin only declares its SOP classes, status tables and failure codes
(:func:`query_service_class`).

**C-FIND** (PS3.4 C.4.1.3): the handler yields ``(status, identifier)``. A
Pending status (FF00H, FF01H) sends a Pending response with the identifier; any
other status is the final response and ends the operation (an identifier given
with it is not sent: only Pending responses carry one, PS3.4 C.4.1.1.3.2).
When the generator ends, the final response is Success. With
``single_match`` (Relevant Patient Information, PS3.4 Q.2.1.1.3.1) the engine
reads one result ahead: a second match gives the final status C100H *More
than one match found* and no Pending response at all; zero matches is Success.

**Writing C-FIND responses together.** A handler that yields matches from
memory or a database cursor produces them faster than one ``sendmsg`` each
can write them, so the engine holds Pending responses (``Call.hold``) and
writes them in batches: once :data:`FIND_HOLD_AFTER` responses have gone
out one by one, a response whose handler step took less than
:data:`FIND_SLOW_STEP` is held; before asking the handler for the next match
the engine writes what it holds if the oldest has waited :data:`FIND_HOLD_FOR`;
a response from a slower step, the final response and any failure go out at
once, with everything held before them. A handler that blocks in a step
right after a quick burst does not keep the burst back: a watchdog thread
writes held responses once the oldest has waited :data:`FIND_HOLD_FOR`. So
no Pending response waits much longer than that. C-CANCEL is still checked
before every step.

**C-GET** (PS3.4 C.4.3.3): the handler yields the number of sub-operations,
then ``(status, dataset)`` pairs. For each Pending pair the data set (a
:class:`~pydicom.dataset.Dataset`, or whatever ``send_c_store`` accepts) is
sent with a C-STORE sub-operation **on the same association**, over the
context on which the requestor accepted the SCP role for its SOP class (an
instance without one is a failed sub-operation). After each sub-operation but
the last a Pending response carries the counts. **C-MOVE** (PS3.4 C.4.2.3) is
the same, with a first yield for the Move Destination and the sub-operations
on an association of our own to it (see *Move destinations* below).

The final response of a retrieve (Remaining is only sent with Cancel):

* Success 0000H -- every sub-operation completed;
* Warning B000H -- some failed or had warnings, not all failed;
* Failure A702H -- every sub-operation failed (PS3.4 C.4.2.1.5/C.4.3.1.4:
  *Refused: Out of resources -- Unable to perform sub-operations*);
* a Warning or Failure the handler yields itself, with the counts so far;

each with the *Failed SOP Instance UID List* (0008,0058) identifier when the
status is Warning, Failure or Cancel. A final Success yielded by the handler
is not sent as such: the counts decide. Sub-operations the handler announced
but never yielded count as failed (and are not listed: their UIDs are
unknown). A handler may refuse before counting by yielding a final
``(status, identifier)`` in place of the number.

**Cancellation** (PS3.7 9.3.2.3): a C-CANCEL-RQ sets ``event.is_cancelled``;
the handler should then yield ``(0xFE00, None)``. The engine also checks
before it asks the handler for each result and, when a C-CANCEL has arrived,
closes the generator and sends Cancel (FE00H) itself (for a retrieve, with the
counts and Remaining: the sub-operations not started).

**Move destinations** (PS3.4 C.4.2.2.1): the engine asks the plugins first
(``dicomnet_resolve_move_destination``, e.g. the ``MoveDestinations`` table of
:mod:`dicomnet.plugins.qr`), then takes the handler's first yield,
``(addr, port)`` or ``(addr, port, kwargs)``; ``(None, None)`` means unknown.
When a plugin knows the title the handler may leave the destination out and
yield the number of sub-operations (or a refusal) first; a destination it
yields anyway is ignored. Nobody knows the title (the plugins do not, and the
handler yields ``(None, None)`` or starts with the count): A801H *Move
destination unknown*. The association to the destination is opened when the
first sub-operation is due. Unless ``kwargs`` give ``contexts``, they are
worked out from the instances
(:func:`dicomnet.retrieve_helpers.store_contexts`): the engine reads up to
:data:`MOVE_LOOKAHEAD` results ahead and proposes a context per SOP class and
transfer syntax among them; an instance whose need was not proposed makes it
release that association and open one that proposes it too. When the
destination cannot be reached, the remaining sub-operations fail (the engine
reads the handler's remaining data sets to list them in the Failed SOP
Instance UID List) and the final status follows the counts (A702H when none
completed): A801H means *unknown*, not *unreachable*. The C-STOREs carry the
Move Originator AE Title and Message ID (PS3.7 9.1.1.1.x) and the C-MOVE's
priority.

**Failures of the application** never escape: an exception in the handler, a
value that is not what the contract asks for, an identifier that cannot be
decoded or encoded, each gives a failure status in the service's "Unable to
process" range C000H-CFFFH (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4) and a log
record. The codes (:class:`FailureCodes`) follow one scheme, the same as
pynetdicom's where it has one, so logs and peers read the same number:

=========================================================  =====  =====  =====
failure                                                    FIND   GET    MOVE
=========================================================  =====  =====  =====
request Identifier missing or undecodable                  C310   C410   C510
handler raised (or no handler bound)                       C311   C411   C511
handler yielded an invalid value, identifier not encodable C312   C412   C512
invalid number of sub-operations                           --     C413   C513
invalid Move Destination yielded                           --     --     C514
``kwargs`` for the destination association rejected       --     --     C515
more than 65535 sub-operations (the counts are US)         --     C416   C516
=========================================================  =====  =====  =====

Relevant Patient Information lists only C000H (*Unable to process*, PS3.4
Q.2.1.1.4), so it uses C000H for all of them.
"""

from __future__ import annotations

import collections
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info

from dicomnet import _sop_groups
from dicomnet.datasets import decode_dataset, encode_dataset
from dicomnet.dimse_messages import (
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    DimseResponse,
    with_status,
)
from dicomnet.events import EVT_C_FIND, EVT_C_GET, EVT_C_MOVE, InterventionEvent
from dicomnet.retrieve_helpers import store_context_key, store_context_keys, store_contexts
from dicomnet.service import (
    InvalidHandlerResult,
    ServiceCall,
    ServiceClass,
    handler_failure,
    status_from_handler_result,
)
from dicomnet.sop_class import registered_message_type
from dicomnet.status import StatusTable, code_to_category

__all__ = [
    "FIND_FAILURES",
    "FIND_HOLD_AFTER",
    "FIND_HOLD_FOR",
    "FIND_SLOW_STEP",
    "GET_FAILURES",
    "MOVE_FAILURES",
    "MOVE_LOOKAHEAD",
    "FailureCodes",
    "InstanceInfo",
    "Operation",
    "describe_instance",
    "parse_destination",
    "query_service_class",
]

LOGGER = logging.getLogger("dicomnet.qr")

SUCCESS = 0x0000
CANCEL = 0xFE00
PENDING = 0xFF00
#: PS3.4 C.4.2.1.5, C.4.3.1.4: every sub-operation failed (or none could be started)
SUBOPERATIONS_FAILED = 0xA702
#: PS3.4 C.4.2.1.5: the Move Destination is not known to this SCP
MOVE_DESTINATION_UNKNOWN = 0xA801
#: PS3.4 C.4.2.1.5, C.4.3.1.4: some sub-operations failed or had warnings
SUBOPERATIONS_WARNING = 0xB000
#: PS3.4 Q.2.1.1.4: a Relevant Patient Information query matched more than one patient
MORE_THAN_ONE_MATCH = 0xC100
#: the sub-operation counts are US values (PS3.7 Table 9.3-6, 9.3-10)
MAX_SUBOPERATIONS = 0xFFFF
#: how many results a C-MOVE SCP reads ahead to choose the destination association's contexts
MOVE_LOOKAHEAD = 32
#: C-FIND: Pending responses are written together (``Call.hold``) for at most this long
#: (seconds) before the handler is asked for the next match...
FIND_HOLD_FOR = 0.002
#: ... and only those whose handler step took less than this: a slow handler's matches
#: go out one by one, at once (see the module docstring)
FIND_SLOW_STEP = 0.0005
#: ... and only after this many responses were sent one by one: a small answer never
#: waits, nor pays for the watchdog thread
FIND_HOLD_AFTER = 16

_UNABLE_TO_PROCESS = 0xC000


@attrs.frozen
class FailureCodes:
    """The implementation-defined failure statuses of one operation (see the module docstring)."""

    undecodable: int
    handler: int
    invalid: int
    count: int
    destination: int
    associate: int
    too_many: int

    @classmethod
    def single(cls, code: int) -> FailureCodes:
        """One code for every failure (a service whose table has no C000H-CFFFH range)."""
        return cls(code, code, code, code, code, code, code)


FIND_FAILURES = FailureCodes(0xC310, 0xC311, 0xC312, 0xC312, 0xC312, 0xC312, 0xC312)
GET_FAILURES = FailureCodes(0xC410, 0xC411, 0xC412, 0xC413, 0xC412, 0xC412, 0xC416)
MOVE_FAILURES = FailureCodes(0xC510, 0xC511, 0xC512, 0xC513, 0xC514, 0xC515, 0xC516)


@attrs.frozen
class Operation:
    """How one service class serves one of C-FIND, C-GET, C-MOVE."""

    table: StatusTable
    failures: FailureCodes
    single_match: bool = False


# -- the instances of sub-operations --------------------------------------------------------------


@attrs.frozen
class InstanceInfo:
    """SOP Class, SOP Instance and transfer syntax of what a handler yielded (``None``: unknown)."""

    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    transfer_syntax: str | None = None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip("\x00 ")
    return text or None


def describe_instance(item: object) -> InstanceInfo:
    """What a C-GET/C-MOVE handler's data set is: a Dataset, a Part 10 file path or file object.

    Paths and file objects have only their File Meta Information read (a file
    object is put back where it was). Anything unreadable gives an empty
    :class:`InstanceInfo`.
    """
    try:
        if isinstance(item, Dataset):
            meta = getattr(item, "file_meta", None)
            syntax = meta.get("TransferSyntaxUID") if meta is not None else None
            return InstanceInfo(
                _text(item.get("SOPClassUID")), _text(item.get("SOPInstanceUID")), _text(syntax)
            )
        if isinstance(item, str | os.PathLike):
            meta = read_file_meta_info(item)
            return InstanceInfo(
                _text(meta.get("MediaStorageSOPClassUID")),
                _text(meta.get("MediaStorageSOPInstanceUID")),
                _text(meta.get("TransferSyntaxUID")),
            )
        if hasattr(item, "read") and hasattr(item, "seek") and hasattr(item, "tell"):
            position = item.tell()
            try:
                ds = dcmread(item, stop_before_pixels=True, specific_tags=[0x00080016, 0x00080018])
            finally:
                item.seek(position)
            meta = ds.file_meta
            return InstanceInfo(
                _text(ds.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID")),
                _text(ds.get("SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID")),
                _text(meta.get("TransferSyntaxUID")),
            )
    except Exception as exc:
        LOGGER.debug("Cannot tell what %r is: %s", item, exc)
    return InstanceInfo()


# -- small helpers --------------------------------------------------------------------------------


def _close(results: object) -> None:
    close = getattr(results, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            LOGGER.exception("Exception while closing the handler's generator")


def _what(event: InterventionEvent) -> str:
    return f"handler bound to '{event.name}'"


def _status(value: object, op: Operation, event: InterventionEvent) -> tuple[int, Dataset | None]:
    return status_from_handler_result(value, op.table, what=_what(event))


def _pair(item: object, event: InterventionEvent, op: Operation) -> tuple[int, Dataset | None, Any]:
    """``(status, status extra, payload)`` from a yielded ``(status, identifier/dataset)``."""
    if not isinstance(item, tuple | list) or len(item) != 2:
        raise InvalidHandlerResult(
            f"the {_what(event)} yielded {item!r}, not a (status, data set) pair"
        )
    status, extra = _status(item[0], op, event)
    return status, extra, item[1]


def _refuse(call: ServiceCall, exc: BaseException, event: InterventionEvent, status: int) -> None:
    """Log ``exc`` (about the handler of ``event``) and send the final ``status``."""
    call.send(_response(call, _failed(exc, event, status)))


def _failed(exc: BaseException, event: InterventionEvent, status: int) -> int:
    return handler_failure(exc, what=_what(event), status=status)


def _response_type(request: object) -> type[DimseResponse]:
    if isinstance(request, CFindRQ):
        return CFindRSP
    if isinstance(request, CGetRQ):
        return CGetRSP
    return CMoveRSP


def _response(
    call: ServiceCall, status: int, extra: Dataset | None = None, **counts: Any
) -> DimseResponse:
    request: Any = call.request
    response = _response_type(request)(
        MessageIDBeingRespondedTo=request.MessageID,
        AffectedSOPClassUID=request.AffectedSOPClassUID,
        Status=status,
        **counts,
    )
    if extra is not None:
        try:
            response = with_status(response, extra)
        except (TypeError, ValueError) as exc:
            LOGGER.error("Ignoring the handler's status data set: %s", exc)
    return response


def _encode(call: ServiceCall, identifier: Dataset) -> bytes:
    return encode_dataset(identifier, str(call.context.transfer_syntax))


def _check_identifier(call: ServiceCall, op: Operation) -> bool:
    """Decode the request's Identifier once; answer the undecodable-failure if it fails."""
    message = call.request.message_name
    if not call.has_dataset:
        reason = "it has no Identifier"
    else:
        data = getattr(call, "dataset_bytes", None)
        if data is None:
            return True  # a ServiceCall that does not expose the bytes: the handler decodes
        try:
            for _element in decode_dataset(data, str(call.context.transfer_syntax)).iterall():
                pass
            return True
        except Exception as exc:
            reason = f"its Identifier cannot be decoded: {exc}"
    LOGGER.error(
        "Refusing a %s: %s; responding with 0x%04X", message, reason, op.failures.undecodable
    )
    call.send(_response(call, op.failures.undecodable))
    return False


def _start(call: ServiceCall, event: InterventionEvent, op: Operation) -> Iterator[Any] | None:
    """Call the handler; its results as an iterator, or ``None`` after sending the failure."""
    try:
        result = call.trigger(event)
    except Exception as exc:
        _refuse(call, exc, event, op.failures.handler)
        return None
    try:
        results: Iterator[Any] = iter(result)
    except TypeError:
        error = InvalidHandlerResult(
            f"the {_what(event)} returned {result!r}; it must be a generator (or an iterable)"
        )
        _refuse(call, error, event, op.failures.invalid)
        return None
    return results


# -- C-FIND -------------------------------------------------------------------------------------


def serve_find(call: ServiceCall, op: Operation) -> None:
    """Serve one C-FIND-RQ (PS3.4 C.4.1.3, Q.2.1.1.3; PS3.7 9.1.2)."""
    if not _check_identifier(call, op):
        return
    results = _start(call, EVT_C_FIND, op)
    if results is None:
        return
    try:
        _find(call, op, results)
    finally:
        _close(results)


def _find(call: ServiceCall, op: Operation, results: Iterator[Any]) -> None:
    out = _FindResponses(call)
    try:
        _find_loop(call, op, results, out)
    finally:
        out.close()


def _find_loop(
    call: ServiceCall, op: Operation, results: Iterator[Any], out: _FindResponses
) -> None:
    held: tuple[int, Dataset | None, Dataset] | None = None
    final: tuple[int, Dataset | None] = (SUCCESS, None)
    clock = time.perf_counter
    while True:
        if call.is_cancelled:
            LOGGER.info("C-FIND cancelled by the peer")
            out.send(_response(call, CANCEL))
            return
        out.before_step()
        started = clock()
        try:
            item = next(results)
        except StopIteration:
            break
        except Exception as exc:
            status = handler_failure(exc, what=_what(EVT_C_FIND), status=op.failures.handler)
            out.send(_response(call, status))
            return
        quick = clock() - started < FIND_SLOW_STEP
        try:
            status, extra, identifier = _pair(item, EVT_C_FIND, op)
            if code_to_category(status) == "Pending" and not isinstance(identifier, Dataset):
                raise InvalidHandlerResult(
                    f"the {_what(EVT_C_FIND)} yielded a Pending status with {identifier!r} "
                    "instead of the matching identifier (a Dataset)"
                )
        except InvalidHandlerResult as exc:
            out.send(_response(call, _failed(exc, EVT_C_FIND, op.failures.invalid)))
            return
        if code_to_category(status) != "Pending":
            if identifier is not None:
                LOGGER.debug("Not sending the identifier yielded with final status 0x%04X", status)
            final = (status, extra)
            break
        if op.single_match:
            if held is not None:
                LOGGER.info("The query matched more than one patient: 0x%04X", MORE_THAN_ONE_MATCH)
                out.send(_response(call, MORE_THAN_ONE_MATCH))
                return
            held = (status, extra, identifier)
            continue
        if not out.match(op, status, extra, identifier, hold=quick):
            return
    if held is not None and final[0] == SUCCESS and not out.match(op, *held):
        return
    out.send(_response(call, *final))


class _FindResponses:
    """How the C-FIND engine sends: Pending responses held and written together while the
    handler is quick, never held longer than :data:`FIND_HOLD_FOR` (module docstring).

    The engine's thread writes what is held before each handler step once the oldest
    held response is :data:`FIND_HOLD_FOR` old. A handler that blocks in a step cannot
    hold them longer: a watchdog thread, started at the first held response, writes
    them when that time has passed. Every send goes through one lock, shared with it.
    One response object serves all Pending responses of one status (the association
    encodes its command set once).
    """

    def __init__(self, call: ServiceCall) -> None:
        self._call = call
        hold = getattr(call, "hold", None)
        self._can_hold = hold is not None and hasattr(call, "flush")
        self._responses: dict[int, DimseResponse] = {}
        self._count = 0  # Pending responses so far
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._since = 0.0  # when the oldest held response was queued; 0.0: none held
        self._closed = False
        self._watchdog: threading.Thread | None = None

    def send(self, response: DimseResponse, data: bytes | None = None) -> None:
        """Send now (with everything held before it)."""
        with self._lock:
            self._since = 0.0
            self._call.send(response, data)

    def match(
        self,
        op: Operation,
        status: int,
        extra: Dataset | None,
        identifier: Dataset,
        *,
        hold: bool = False,
    ) -> bool:
        """Send (or hold) one Pending response; ``False`` after sending a failure instead."""
        call = self._call
        try:
            data = _encode(call, identifier)
        except Exception as exc:
            status = handler_failure(
                exc, what=f"encoding of an identifier yielded by the {_what(EVT_C_FIND)}",
                status=op.failures.invalid,
            )
            self.send(_response(call, status))
            return False
        if extra is None:
            response = self._responses.get(status)
            if response is None:
                response = self._responses[status] = _response(call, status)
        else:
            response = _response(call, status, extra)
        self._count += 1
        if not (hold and self._can_hold and self._count > FIND_HOLD_AFTER):
            self.send(response, data)
            return True
        with self._lock:
            call.hold(response, data)  # type: ignore[attr-defined]
            if not self._since:
                self._since = time.perf_counter()
                if self._watchdog is None:
                    self._watchdog = threading.Thread(
                        target=self._watch, name="dicomnet-find-flush", daemon=True
                    )
                    self._watchdog.start()
                else:
                    self._wake.notify()
        return True

    def before_step(self) -> None:
        """Before asking the handler for a match: write what has been held long enough."""
        since = self._since
        if since and time.perf_counter() - since >= FIND_HOLD_FOR:
            with self._lock:
                self._flush()

    def close(self) -> None:
        watchdog = self._watchdog
        with self._lock:
            self._closed = True
            self._wake.notify()
        if watchdog is not None:
            watchdog.join()

    def _flush(self) -> None:  # with the lock held
        self._since = 0.0
        self._call.flush()  # type: ignore[attr-defined]

    def _watch(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._since:
                    self._wake.wait()
                    continue
                left = self._since + FIND_HOLD_FOR - time.perf_counter()
                if left > 0:
                    self._wake.wait(left)
                    continue
                try:
                    self._flush()  # the handler is blocked in a step
                except Exception as exc:  # the association ended: the engine will see it
                    LOGGER.debug("Could not write the held C-FIND responses: %s", exc)
                    return


# -- C-GET and C-MOVE ---------------------------------------------------------------------------


class _Progress:
    """The sub-operation counts of one C-GET or C-MOVE (PS3.7 9.1.3.1, 9.1.4.1)."""

    __slots__ = ("completed", "failed", "failed_uids", "total", "warning")

    def __init__(self, total: int) -> None:
        self.total = total
        self.completed = 0
        self.failed = 0
        self.warning = 0
        self.failed_uids: list[str] = []

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.completed - self.failed - self.warning)

    def fail(self, uid: str | None) -> None:
        self.failed += 1
        if uid:
            self.failed_uids.append(uid)

    def fail_remaining(self) -> None:
        self.failed += self.remaining

    def counts(self, *, remaining: bool) -> dict[str, Any]:
        return {
            "NumberOfRemainingSuboperations": self.remaining if remaining else None,
            "NumberOfCompletedSuboperations": self.completed,
            "NumberOfFailedSuboperations": self.failed,
            "NumberOfWarningSuboperations": self.warning,
        }

    def final_status(self) -> int:
        """PS3.4 C.4.2.3.1 / C.4.3.3.1: Success, Warning B000H or Failure A702H."""
        if self.failed == 0 and self.warning == 0:
            return SUCCESS
        if self.completed == 0 and self.warning == 0:
            return SUBOPERATIONS_FAILED
        return SUBOPERATIONS_WARNING


class _Lookahead:
    """The handler's results, with room to read some ahead (for the C-MOVE contexts)."""

    __slots__ = ("_buffer", "_done", "_error", "_source")

    def __init__(self, source: Iterator[Any]) -> None:
        self._source = source
        self._buffer: collections.deque[Any] = collections.deque()
        self._error: BaseException | None = None
        self._done = False

    def __iter__(self) -> _Lookahead:
        return self

    def __next__(self) -> Any:
        if self._buffer:
            return self._buffer.popleft()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._done:
            raise StopIteration
        return next(self._source)

    def push(self, item: Any) -> None:
        """Put ``item`` back in front."""
        self._buffer.appendleft(item)

    def fill(self, count: int) -> list[Any]:
        """Read up to ``count`` results ahead, stopping after one that is not Pending."""
        while len(self._buffer) < count and self._error is None and not self._done:
            try:
                item = next(self._source)
            except StopIteration:
                self._done = True
                break
            except Exception as exc:
                self._error = exc
                break
            self._buffer.append(item)
            if not _looks_pending(item):
                break
        return list(self._buffer)

    def close(self) -> None:
        _close(self._source)


def _looks_pending(item: object) -> bool:
    if not isinstance(item, tuple | list) or len(item) != 2:
        return False
    status = item[0]
    if isinstance(status, Dataset):
        status = status.get("Status")
    return isinstance(status, int) and code_to_category(status) == "Pending"


def _suboperation_count(
    call: ServiceCall, event: InterventionEvent, op: Operation, results: Iterator[Any]
) -> int | None:
    """The handler's number of sub-operations, or ``None`` after sending the failure."""
    try:
        item = next(results)
    except StopIteration:
        exc: Exception = InvalidHandlerResult(
            f"the {_what(event)} ended without yielding the number of sub-operations"
        )
        _refuse(call, exc, event, op.failures.count)
        return None
    except Exception as exc:
        _refuse(call, exc, event, op.failures.handler)
        return None
    if isinstance(item, tuple | list) and len(item) == 2 and not _looks_pending(item):
        # a final (status, identifier) instead of the number: the handler refuses
        try:
            status, extra, identifier = _pair(item, event, op)
        except InvalidHandlerResult as exc:
            _refuse(call, exc, event, op.failures.count)
            return None
        _send_identifier_response(call, _response(call, status, extra), identifier)
        return None
    try:
        if isinstance(item, bool):
            raise TypeError("a bool is not a count")
        total = operator.index(item)
        if total < 0:
            raise ValueError("a negative count")
    except (TypeError, ValueError) as exc:
        error = InvalidHandlerResult(
            f"the {_what(event)} yielded {item!r} as the number of sub-operations ({exc})"
        )
        _refuse(call, error, event, op.failures.count)
        return None
    if total > MAX_SUBOPERATIONS:
        LOGGER.error(
            "The %s announced %d sub-operations, more than the %d the counts can carry; "
            "responding with 0x%04X",
            _what(event), total, MAX_SUBOPERATIONS, op.failures.too_many,
        )
        call.send(_response(call, op.failures.too_many))
        return None
    return total


def _send_identifier_response(
    call: ServiceCall, response: DimseResponse, identifier: object
) -> None:
    data: bytes | None = None
    if isinstance(identifier, Dataset):
        try:
            data = _encode(call, identifier)
        except Exception as exc:
            LOGGER.error("Cannot encode the response identifier, sending none: %s", exc)
    call.send(response, data)


def _final(
    call: ServiceCall,
    progress: _Progress,
    status: int,
    extra: Dataset | None = None,
    identifier: object = None,
) -> None:
    """The final response of a retrieve, with counts and the Failed SOP Instance UID List."""
    category = code_to_category(status)
    response = _response(call, status, extra, **progress.counts(remaining=category == "Cancel"))
    payload: Dataset | None = None
    if category in ("Warning", "Failure", "Cancel"):
        payload = Dataset()
        if isinstance(identifier, Dataset):
            payload.update(identifier)
        listed = payload.get("FailedSOPInstanceUIDList")
        uids = [] if listed is None or listed == "" else (
            [str(listed)] if isinstance(listed, str) else [str(u) for u in listed]
        )
        uids += [uid for uid in progress.failed_uids if uid not in uids]
        payload.FailedSOPInstanceUIDList = uids
    elif identifier is not None:
        LOGGER.debug("Not sending the identifier yielded with final status 0x%04X", status)
    _send_identifier_response(call, response, payload)


Sender = Callable[[Any], Dataset]


class _Unreachable(Exception):
    """No further sub-operation can be started (the move destination cannot be reached).

    ``status`` is the final status to send; ``None``: the one the counts give.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _run_suboperations(
    call: ServiceCall,
    event: InterventionEvent,
    op: Operation,
    results: Iterator[Any],
    progress: _Progress,
    send: Sender,
) -> None:
    """Send each Pending result as a C-STORE sub-operation; answer Pending, then the final."""
    while True:
        if call.is_cancelled:
            LOGGER.info("%s cancelled by the peer", call.request.message_name[:-3])
            _final(call, progress, CANCEL)
            return
        try:
            item = next(results)
        except StopIteration:
            break
        except Exception as exc:
            _final(call, progress, _failed(exc, event, op.failures.handler))
            return
        try:
            status, extra, payload = _pair(item, event, op)
        except InvalidHandlerResult as exc:
            _final(call, progress, _failed(exc, event, op.failures.invalid))
            return
        category = code_to_category(status)
        if category != "Pending":
            if category == "Success":
                break  # the counts decide the final status
            _final(call, progress, status, extra, payload)
            return
        if progress.remaining == 0:
            LOGGER.warning(
                "The %s yielded more data sets than the %d sub-operations it announced; "
                "ignoring the rest", _what(event), progress.total,
            )
            break
        try:
            _suboperation(payload, send, progress)
        except _Unreachable as exc:
            _list_unsent(results, progress)
            progress.fail_remaining()
            status = exc.status if exc.status is not None else progress.final_status()
            _final(call, progress, status)
            return
        if not getattr(call.assoc, "is_established", True):
            return  # aborted or released under us: nobody to answer
        if progress.remaining:
            call.send(_response(call, PENDING, **progress.counts(remaining=True)))
    if progress.remaining:
        LOGGER.warning(
            "The %s yielded %d data sets fewer than the %d sub-operations it announced; "
            "they count as failed", _what(event), progress.remaining, progress.total,
        )
        progress.fail_remaining()
    _final(call, progress, progress.final_status())


def _list_unsent(results: Iterator[Any], progress: _Progress) -> None:
    """List the instances the handler still has for the sub-operations that can no longer be
    started, so that the Failed SOP Instance UID List names every failed one (PS3.4 C.4.2.3.1)."""
    for _ in range(progress.remaining):
        try:
            item = next(results)
        except Exception as exc:  # StopIteration included: the rest count as failed, unlisted
            LOGGER.debug("No more instances to list as failed: %r", exc)
            return
        if not _looks_pending(item):
            return
        uid = describe_instance(item[1]).sop_instance_uid
        if uid:
            progress.failed_uids.append(uid)


def _suboperation(item: object, send: Sender, progress: _Progress) -> None:
    """One C-STORE sub-operation; its outcome goes into ``progress``."""
    if item is None:
        LOGGER.warning("A Pending result without a data set: a failed sub-operation")
        progress.fail(None)
        return
    try:
        status = send(item)
    except _Unreachable:
        progress.fail(describe_instance(item).sop_instance_uid)
        raise
    except Exception as exc:
        LOGGER.warning("C-STORE sub-operation not started: %s", exc)
        progress.fail(describe_instance(item).sop_instance_uid)
        return
    code = status.get("Status") if isinstance(status, Dataset) else None
    category = code_to_category(code) if isinstance(code, int) else "Failure"
    if category == "Success":
        progress.completed += 1
    elif category == "Warning":
        progress.warning += 1
    else:
        if code is None:
            LOGGER.warning("No response to a C-STORE sub-operation (timeout or abort)")
        progress.fail(describe_instance(item).sop_instance_uid)


def serve_get(call: ServiceCall, op: Operation) -> None:
    """Serve one C-GET-RQ (PS3.4 C.4.3.3; PS3.7 9.1.3)."""
    if not _check_identifier(call, op):
        return
    results = _start(call, EVT_C_GET, op)
    if results is None:
        return
    try:
        total = _suboperation_count(call, EVT_C_GET, op, results)
        if total is None:
            return
        priority = getattr(call.request, "Priority", 2)

        def send(item: Any) -> Dataset:
            return call.assoc.send_c_store(item, priority=priority)  # type: ignore[no-any-return]

        _run_suboperations(call, EVT_C_GET, op, results, _Progress(total), send)
    finally:
        _close(results)


# -- C-MOVE -------------------------------------------------------------------------------------

Destination = tuple[str, int, Mapping[str, Any]]


def parse_destination(value: object) -> Destination | None:
    """``(addr, port)`` or ``(addr, port, kwargs)`` -> ``(addr, port, kwargs)``; ``None`` for
    unknown (``None`` or ``(None, None)``); :class:`InvalidHandlerResult` for anything else."""
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) not in (2, 3):
        raise InvalidHandlerResult(
            f"{value!r} is not a move destination (addr, port) or (addr, port, kwargs)"
        )
    addr, port = value[0], value[1]
    if addr is None or port is None:
        return None
    kwargs = value[2] if len(value) == 3 and value[2] is not None else {}
    if (
        not isinstance(addr, str)
        or isinstance(port, bool)
        or not isinstance(port, int)
        or not 0 < port < 65536
        or not isinstance(kwargs, Mapping)
    ):
        raise InvalidHandlerResult(
            f"{value!r} is not a move destination (addr: str, port: 1-65535, kwargs: dict)"
        )
    return addr, port, kwargs


def _destination_shaped(value: object) -> bool:
    """Whether a first yield is meant as a destination (an address or ``None`` first), not as
    the number of sub-operations or a ``(status, identifier)`` refusal."""
    return (
        isinstance(value, tuple | list)
        and len(value) in (2, 3)
        and (value[0] is None or isinstance(value[0], str))
    )


def _resolve_by_plugins(call: ServiceCall, title: str) -> Destination | None:
    """Ask the ``dicomnet_resolve_move_destination`` hooks (firstresult)."""
    pm = getattr(call.assoc.ae, "_plugin_manager", None)
    if pm is None:
        return None
    try:
        answer = pm.hook.dicomnet_resolve_move_destination(assoc=call.assoc, ae_title=title)
        return parse_destination(answer)
    except Exception:
        LOGGER.exception("A dicomnet_resolve_move_destination hook failed for %r", title)
        return None


class _MoveSender:
    """Sends the sub-operations of one C-MOVE over its own association to the destination."""

    def __init__(
        self,
        call: ServiceCall,
        title: str,
        destination: Destination,
        results: _Lookahead,
        invalid_kwargs: int,
    ) -> None:
        self._call = call
        self._invalid_kwargs = invalid_kwargs
        self._title = title
        self._addr, self._port, kwargs = destination
        self._kwargs = dict(kwargs)
        self._fixed = self._kwargs.get("contexts") is not None
        self._results = results
        self._assoc: Any = None
        self._proposed: dict[tuple[str, str | None], None] = {}
        request: Any = call.request
        self._priority = getattr(request, "Priority", 2)
        self._originator = str(call.assoc.remote.get("ae_title") or "").strip() or None
        self._originator_id = request.MessageID

    def __call__(self, item: Any) -> Dataset:
        info = describe_instance(item)
        key = (
            store_context_key(info.sop_class_uid, info.transfer_syntax)
            if info.sop_class_uid
            else None
        )
        if self._assoc is None or not self._assoc.is_established or (
            not self._fixed and key is not None and key not in self._proposed
        ):
            self._open(key)
        return self._assoc.send_c_store(  # type: ignore[no-any-return]
            item,
            priority=self._priority,
            originator_aet=self._originator,
            originator_id=self._originator_id,
        )

    def _open(self, key: tuple[str, str | None] | None) -> None:
        if self._assoc is not None:
            self.close()
            if self._fixed:
                raise _Unreachable("the association to the move destination ended")
        kwargs = dict(self._kwargs)
        if not self._fixed:
            needs: dict[tuple[str, str | None], None] = {}
            if key is not None:
                needs[key] = None
            for item in self._results.fill(MOVE_LOOKAHEAD):
                if _looks_pending(item):
                    info = describe_instance(item[1])
                    if info.sop_class_uid:
                        needs.setdefault(
                            store_context_key(info.sop_class_uid, info.transfer_syntax), None
                        )
            needs.update(self._proposed)
            if not needs:
                raise _Unreachable("no SOP class is known for the instances to send")
            contexts = store_contexts(needs)
            kwargs["contexts"] = contexts
            self._proposed = dict.fromkeys(store_context_keys(contexts))
        kwargs.setdefault("ae_title", self._title)
        try:
            assoc = self._call.assoc.ae.associate(self._addr, self._port, **kwargs)
        except Exception as exc:
            status = handler_failure(
                exc,
                what=f"association request to the move destination {self._title!r}",
                status=self._invalid_kwargs,
            )
            raise _Unreachable(str(exc), status) from exc
        if not assoc.is_established:
            LOGGER.error(
                "Cannot associate with the move destination %r at %s:%s",
                self._title, self._addr, self._port,
            )
            raise _Unreachable(f"cannot associate with {self._title}")
        self._assoc = assoc

    def close(self) -> None:
        assoc, self._assoc = self._assoc, None
        if assoc is not None and assoc.is_established:
            assoc.release()


def serve_move(call: ServiceCall, op: Operation) -> None:
    """Serve one C-MOVE-RQ (PS3.4 C.4.2.3; PS3.7 9.1.4)."""
    if not _check_identifier(call, op):
        return
    request: Any = call.request
    title = str(request.MoveDestination).strip()
    known = _resolve_by_plugins(call, title)
    started = _start(call, EVT_C_MOVE, op)
    if started is None:
        return
    results = _Lookahead(started)
    try:
        try:
            first = next(results)
        except StopIteration:
            first = None
        except Exception as exc:
            _refuse(call, exc, EVT_C_MOVE, op.failures.handler)
            return
        if known is not None and first is not None and not _destination_shaped(first):
            results.push(first)  # destination left to the plugins: the count, or a refusal
            first = None
        elif isinstance(first, int) and not isinstance(first, bool):
            first = None  # a count: the handler counted on the plugins, which do not know it
        try:
            offered = parse_destination(first)
        except InvalidHandlerResult as exc:
            if known is None:
                call.send(_response(call, handler_failure(
                    exc, what=_what(EVT_C_MOVE), status=op.failures.destination
                )))
                return
            offered = None
        destination = known or offered
        if destination is None:
            LOGGER.error("Unknown move destination %r: 0x%04X", title, MOVE_DESTINATION_UNKNOWN)
            call.send(_response(call, MOVE_DESTINATION_UNKNOWN))
            return
        total = _suboperation_count(call, EVT_C_MOVE, op, results)
        if total is None:
            return
        progress = _Progress(total)
        if total == 0:
            _final(call, progress, SUCCESS)
            return
        sender = _MoveSender(call, title, destination, results, op.failures.associate)
        try:
            _run_suboperations(call, EVT_C_MOVE, op, results, progress, sender)
        finally:
            sender.close()
    finally:
        results.close()


# -- the service class ----------------------------------------------------------------------------

_SOP_KEYWORDS: Mapping[str, str] = {uid: kw for kw, uid in _sop_groups.SOP_CLASSES.items()}
_BY_REQUEST = {CFindRQ: "C-FIND", CGetRQ: "C-GET", CMoveRQ: "C-MOVE"}


def operation_of(uid: str, keyword: str | None = None) -> str | None:
    """The DIMSE operation a query/retrieve SOP class is for, from its keyword (PS3.6)."""
    registered = registered_message_type(uid)
    if registered:
        return registered
    keyword = keyword or _SOP_KEYWORDS.get(uid, "")
    if keyword.endswith("Move"):
        return "C-MOVE"
    if keyword.endswith("Get"):
        return "C-GET"
    if keyword.endswith(("Find", "Query")):
        return "C-FIND"
    return None


def query_service_class(
    name: str,
    *,
    sop_classes: Mapping[str, str],
    status_table: StatusTable,
    find: Operation | None = None,
    get: Operation | None = None,
    move: Operation | None = None,
    context_lists: Mapping[str, Sequence[str]] | None = None,
    reference: str = "",
) -> ServiceClass:
    """A :class:`ServiceClass` whose SCP serves the given operations with this engine.

    A request of one operation on a context whose SOP class is for another (a
    C-GET-RQ under a FIND information model) is answered with 0211H
    *Unrecognized operation* (PS3.7 C.5.6).
    """
    operations: dict[type, tuple[Operation, Callable[[ServiceCall, Operation], None]]] = {}
    if find is not None:
        operations[CFindRQ] = (find, serve_find)
    if get is not None:
        operations[CGetRQ] = (get, serve_get)
    if move is not None:
        operations[CMoveRQ] = (move, serve_move)
    declared = dict(sop_classes)

    def scp(call: ServiceCall) -> None:
        request = call.request
        kind = type(request)
        uid = str(call.context.abstract_syntax)
        service = getattr(call, "service", None)
        keyword = (service.sop_classes if service is not None else declared).get(uid)
        expected = operation_of(uid, keyword)
        if kind not in operations or (expected is not None and expected != _BY_REQUEST[kind]):
            LOGGER.warning(
                "Refusing a %s on a context for %s (%s)", request.message_name, keyword or uid,
                expected or "unknown operation",
            )
            call.send(_response(call, 0x0211))
            return
        op, serve = operations[kind]
        serve(call, op)

    events = [
        event
        for event, present in ((EVT_C_FIND, find), (EVT_C_GET, get), (EVT_C_MOVE, move))
        if present is not None
    ]
    return ServiceClass(
        name=name,
        sop_classes=sop_classes,
        status_table=status_table,
        requests=list(operations),
        events=events,
        context_lists=context_lists or {},
        scp=scp,
        failure_status=_UNABLE_TO_PROCESS,
        reference=reference,
    )
