"""Service classes as values: what a plugin declares, and what an SCP receives (PS3.4, PS3.7).

A DICOM service class (PS3.4) is a set of SOP classes served by one set of
rules. In dicomnet it is a frozen :class:`ServiceClass` value that a plugin
returns from the ``dicomnet_service_classes()`` hook (see
:mod:`dicomnet.hookspecs`): its name, its SOP classes, its status table, the
DIMSE requests it serves as an SCP, the intervention events it triggers, the
prebuilt ``*PresentationContexts`` lists it contributes and its SCP function.

Rule this module keeps: **a service class is data plus one function**. The
association finds the service class of a request's SOP class in the
:class:`~dicomnet.plugin_manager.ServiceRegistry` and calls ``scp(call)`` with
a :class:`ServiceCall`, the association's view of that one request. The SCP
never sees the association's internals; everything it may do goes through
``call``.

Handlers are application code and may fail. Two helpers keep that from
reaching the peer as anything but a status (PS3.7 Annex C):

* :func:`status_from_handler_result` checks what a handler returned -- an
  ``int`` or a :class:`~pydicom.dataset.Dataset` with Status (0000,0900), the
  two forms pynetdicom handlers use;
* :func:`handler_failure` logs an exception raised by a handler (or an invalid
  result) and gives the service's failure status.

Receiving without decoding: a service class may declare a ``dataset_sink``
factory. When a request of one of its SOP classes announces a data set, the
association asks the factory for a :class:`DatasetSink` before the first data
fragment is processed, and hands every fragment to it (a memoryview of the
received PDU, never copied) instead of collecting the data set in memory. The
SCP then gets whatever the sink's ``finish()`` returned (``call.dataset_path``
for a file). The Storage plugin uses it to write C-STORE data sets to disk as
they arrive (:mod:`dicomnet.spool`).

:func:`run_intervention` combines them for the usual SCP step "ask the
application, get a status".

Unknown statuses: a code the service's status table does not list is **sent
anyway, with a warning in the log**. The application may know codes the table
does not (a newer edition of PS3.4, a service-specific Cxxx code), and the peer
classifies any code by its range (PS3.7 Annex C). A value that is not a status
at all (not an ``int`` in 0..FFFFH, a data set without Status) is a bug in the
handler and is treated like an exception in it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
from pydicom.dataset import Dataset

from .events import InterventionEvent
from .status import StatusTable

if TYPE_CHECKING:  # pragma: no cover
    from .dimse_messages import DimseRequest, DimseResponse
    from .spool import Received

__all__ = [
    "COMMAND_FIELDS",
    "PROCESSING_FAILURE",
    "AcceptedContext",
    "DatasetSink",
    "DatasetSinkFactory",
    "InvalidHandlerResult",
    "ServiceCall",
    "ServiceClass",
    "handler_failure",
    "run_intervention",
    "status_from_handler_result",
]

LOGGER = logging.getLogger("dicomnet.service")

#: Processing failure 0110H, a general failure status of PS3.7 Annex C: "a general
#: failure in processing the operation was encountered". The default answer to a
#: failing handler.
PROCESSING_FAILURE = 0x0110

#: Command Field (0000,0100) of each DIMSE request, PS3.7 Table E.1-1, by message name.
COMMAND_FIELDS: Mapping[str, int] = MappingProxyType(
    {
        "C-STORE-RQ": 0x0001,
        "C-GET-RQ": 0x0010,
        "C-FIND-RQ": 0x0020,
        "C-MOVE-RQ": 0x0021,
        "C-ECHO-RQ": 0x0030,
        "N-EVENT-REPORT-RQ": 0x0100,
        "N-GET-RQ": 0x0110,
        "N-SET-RQ": 0x0120,
        "N-ACTION-RQ": 0x0130,
        "N-CREATE-RQ": 0x0140,
        "N-DELETE-RQ": 0x0150,
        "C-CANCEL-RQ": 0x0FFF,
    }
)
_REQUEST_FIELDS = frozenset(COMMAND_FIELDS.values())


# -- what the SCP sees -------------------------------------------------------------------------


@runtime_checkable
class AcceptedContext(Protocol):
    """An accepted presentation context, as an SCP needs it (PS3.8 7.1.1.13).

    ``transfer_syntax`` is the one accepted syntax; ``as_scu``/``as_scp`` are
    the roles the *local* AE may play on it (PS3.7 D.3.3.4).
    """

    @property
    def context_id(self) -> int: ...
    @property
    def abstract_syntax(self) -> str: ...
    @property
    def transfer_syntax(self) -> str: ...
    @property
    def as_scu(self) -> bool: ...
    @property
    def as_scp(self) -> bool: ...


class ServiceCall(Protocol):
    """What the association hands a service class for one received request.

    Implemented by the association layer; an SCP only uses these members.

    * ``assoc`` -- the :class:`~dicomnet.association.Association` (pynetdicom API;
      ``send_c_store`` for C-GET/C-MOVE sub-operations).
    * ``context`` -- the accepted presentation context of the request.
    * ``request`` -- the DIMSE request message (:mod:`dicomnet.dimse_messages`).
    * ``has_dataset`` -- whether a data set came with the request.
    * ``trigger(event, **attrs)`` -- call the application's handler for an
      intervention event, with ``request``, ``context`` and the data set filled
      in; returns the handler's answer; exceptions propagate.
    * ``is_bound(event)`` -- whether the application bound a handler to an
      intervention event (else ``trigger`` runs the event's default handler).
    * ``send(response, dataset=None)`` -- send a response on the request's
      context; ``dataset`` is a :class:`~pydicom.dataset.Dataset` (encoded in
      the context's transfer syntax), bytes already encoded, or ``None``.
    * ``is_cancelled`` -- a C-CANCEL-RQ arrived for this request's Message ID.
    * ``status_table`` -- the service class's status table.
    * ``received`` -- the data set as it was received: ``bytes``, a
      :class:`~dicomnet.spool.SpooledDataset` written by the service class's
      ``dataset_sink``, a :class:`~dicomnet.spool.SpoolFailure`, or ``None``.
    """

    @property
    def assoc(self) -> Any: ...
    @property
    def context(self) -> AcceptedContext: ...
    @property
    def request(self) -> DimseRequest: ...
    @property
    def has_dataset(self) -> bool: ...
    def trigger(self, event: InterventionEvent, /, **attrs: Any) -> Any: ...
    def is_bound(self, event: InterventionEvent, /) -> bool: ...
    def send(
        self, response: DimseResponse, dataset: Dataset | bytes | None = None
    ) -> None: ...
    @property
    def is_cancelled(self) -> bool: ...
    @property
    def status_table(self) -> StatusTable: ...
    @property
    def received(self) -> Received | None: ...


#: ``scp(call)``: serve one request; never raises for an application error.
SCPFunction = Callable[[ServiceCall], None]


class DatasetSink(Protocol):
    """Where the data set of one received request goes, fragment by fragment (PS3.7 8.1).

    Called in the association's thread, in this order: :meth:`write` for each
    data-set fragment as it arrives, then exactly one of :meth:`finish` (the
    last fragment arrived) or :meth:`abort` (the association ended first).

    * ``write(data)`` -- ``data`` is a view of the received PDU; the sink may
      keep it (the framing never reuses its buffers) or write it out. It must
      not raise: a sink that cannot store the data set remembers the error,
      discards the rest and reports it from ``finish()``.
    * ``finish()`` -- the received object handed to the SCP: the data set as
      ``bytes``, a :class:`~dicomnet.spool.SpooledDataset` (a Part 10 file,
      ``call.dataset_path``; deleted after the SCP returns unless it was
      moved) or a :class:`~dicomnet.spool.SpoolFailure`.
    * ``abort()`` -- release everything (delete a temporary file); nothing was
      received, and nothing is reported to anyone.
    """

    def write(self, data: memoryview, /) -> None: ...
    def finish(self) -> Received: ...
    def abort(self) -> None: ...


#: ``factory(assoc, context, request)``: the sink for ``request``'s data set, or
#: ``None`` to collect it in memory (the default). ``context`` is the accepted
#: presentation context (``context_id``, ``abstract_syntax``, ``transfer_syntax``).
DatasetSinkFactory = Callable[[Any, AcceptedContext, "DimseRequest"], DatasetSink | None]


# -- the declaration -------------------------------------------------------------------------


def _command_field(request: object) -> int:
    """The Command Field of a request given as a number, a message class or a message name."""
    if isinstance(request, bool):
        raise TypeError(f"{request!r} is not a DIMSE request")
    if isinstance(request, int):
        value = request
    elif isinstance(request, str):
        try:
            value = COMMAND_FIELDS[request]
        except KeyError:
            raise ValueError(f"{request!r} is not a DIMSE request name") from None
    else:
        field = getattr(request, "CommandField", None)
        if not isinstance(field, int):
            raise TypeError(f"{request!r} is neither a Command Field value nor a DIMSE message")
        value = field
    if value not in _REQUEST_FIELDS:
        raise ValueError(f"0x{value:04X} is not the Command Field of a DIMSE request")
    return value


def _requests(value: Iterable[object]) -> frozenset[int]:
    return frozenset(_command_field(item) for item in value)


def _sop_classes(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({str(uid): str(keyword) for uid, keyword in value.items()})


def _context_lists(value: Mapping[str, Sequence[str]]) -> Mapping[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, uids in value.items():
        if isinstance(uids, str):
            raise TypeError(f"context list {name!r} must be a sequence of UIDs, not one string")
        out[name] = tuple(str(uid) for uid in uids)
    return MappingProxyType(out)


def _events(value: Iterable[InterventionEvent]) -> tuple[InterventionEvent, ...]:
    events = tuple(value)
    for event in events:
        if not isinstance(event, InterventionEvent):
            raise TypeError(f"{event!r} is not an intervention event")
    return events


def _check_status(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{attr.name}: 0x{value:X} is not a status code")


@attrs.frozen
class ServiceClass:
    """A service class as a plugin declares it (PS3.4).

    * ``name`` -- unique, lower-case identifier (``"verification"``, ``"storage"``).
    * ``sop_classes`` -- SOP Class UID -> keyword, the SOP classes it claims.
      The standard ones are taken from pydicom's UID dictionary, see
      :mod:`dicomnet._sop_groups`.
    * ``status_table`` -- its :class:`~dicomnet.status.StatusTable`.
    * ``requests`` -- the DIMSE requests it serves as an SCP, as Command Field
      values; message classes (``CEchoRQ``) and names (``"C-ECHO-RQ"``) are
      converted.
    * ``events`` -- the intervention events its SCP triggers (documentation and
      conformance; the association does not enforce it).
    * ``context_lists`` -- name -> UIDs of the prebuilt ``*PresentationContexts``
      lists it contributes (``{"VerificationPresentationContexts": [...]}``).
    * ``scp`` -- ``scp(call)``, or ``None`` for an SCU-only declaration.
    * ``uid`` -- the service class UID, when PS3.6 assigns one (Storage:
      ``1.2.840.10008.4.2``); used in SOP Class Common Extended Negotiation.
    * ``failure_status`` -- what an exception in a handler becomes (PS3.7 C).
    * ``reference`` -- the section of PS3.4 that defines it, for docs and the
      conformance statement.
    * ``dataset_sink`` -- ``factory(assoc, context, request)`` giving a
      :class:`DatasetSink` for a received request's data set, or ``None``
      (the default, and the factory's answer) to collect it in memory.

    Mappings are copied into read-only views, so a declared value cannot change
    behind the registry's back.
    """

    name: str = attrs.field()
    sop_classes: Mapping[str, str] = attrs.field(converter=_sop_classes, hash=False)
    status_table: StatusTable = attrs.field(hash=False)
    requests: frozenset[int] = attrs.field(default=frozenset(), converter=_requests)
    events: tuple[InterventionEvent, ...] = attrs.field(default=(), converter=_events)
    context_lists: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict, converter=_context_lists, hash=False
    )
    scp: SCPFunction | None = attrs.field(default=None, hash=False)
    uid: str | None = None
    failure_status: int = attrs.field(default=PROCESSING_FAILURE, validator=_check_status)
    reference: str = ""
    dataset_sink: DatasetSinkFactory | None = attrs.field(default=None, hash=False)

    @name.validator
    def _check_name(self, _attr: attrs.Attribute[str], value: str) -> None:
        if not value or not value.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"service class name {value!r} must be a non-empty identifier")

    def serves(self, command_field: int) -> bool:
        """Whether the SCP serves requests with this Command Field."""
        return command_field in self.requests

    def __str__(self) -> str:
        return self.name


# -- handler results ---------------------------------------------------------------------------


class InvalidHandlerResult(TypeError):
    """A handler returned something that is not a status (an ``int`` or a status data set)."""


def status_from_handler_result(
    result: object, table: StatusTable | Mapping[int, Any] | None = None, *, what: str = "handler"
) -> tuple[int, Dataset | None]:
    """``(status, extra)`` from what a pynetdicom-style handler returned (PS3.7 Annex C).

    * an ``int`` (or :class:`enum.IntEnum`) in 0..FFFFH -> ``(code, None)``;
    * a :class:`~pydicom.dataset.Dataset` with Status (0000,0900) -> ``(code, dataset)``;
      the data set's other elements (Error Comment, Offending Element...) are
      for :func:`dicomnet.dimse_messages.with_status` to copy into the response.

    A code missing from ``table`` is logged as a warning and returned anyway
    (see the module docstring). Anything else raises
    :class:`InvalidHandlerResult`; treat it as an exception in the handler.
    """
    extra: Dataset | None = None
    if isinstance(result, Dataset):
        if "Status" not in result:
            raise InvalidHandlerResult(
                f"the status data set returned by the {what} has no Status (0000,0900)"
            )
        code: object = result.Status
        extra = result
    else:
        code = result
    if isinstance(code, bool) or not isinstance(code, int):
        raise InvalidHandlerResult(
            f"the {what} returned {result!r}, not a status code or a status data set"
        )
    if not 0 <= code <= 0xFFFF:
        raise InvalidHandlerResult(f"the {what} returned 0x{code:X}, which is not a status code")
    if table is not None and code not in table:
        LOGGER.warning(
            "The %s returned status 0x%04X, which the %s status table does not know; "
            "sending it anyway",
            what,
            code,
            getattr(table, "name", "service's"),
        )
    return int(code), extra


def handler_failure(
    exc: BaseException, *, what: str = "handler", status: int = PROCESSING_FAILURE
) -> int:
    """Log ``exc`` (raised by or about a handler) and return the failure status to send.

    The log record carries the traceback; the peer only sees ``status``
    (default 0110H *Processing failure*, PS3.7 Annex C). An exception in an
    application's handler never aborts the association.
    """
    LOGGER.error(
        "Exception in the %s; responding with status 0x%04X", what, status, exc_info=exc
    )
    return status


def run_intervention(
    call: ServiceCall,
    event: InterventionEvent,
    *,
    failure_status: int = PROCESSING_FAILURE,
    **attrs: Any,
) -> tuple[int, Dataset | None]:
    """Trigger ``event`` through ``call`` and turn the handler's answer into a status.

    Returns ``(status, extra)`` as :func:`status_from_handler_result` does; an
    exception in the handler, or an answer that is not a status, gives
    ``(failure_status, None)`` and a log record.
    """
    what = f"handler bound to '{event.name}'"
    try:
        result = call.trigger(event, **attrs)
        return status_from_handler_result(result, call.status_table, what=what)
    except Exception as exc:
        return handler_failure(exc, what=what, status=failure_status), None
