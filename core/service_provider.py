"""The DIMSE service provider side: route a received request to its service class (PS3.7 9, 10).

For each complete request the association hands over, :func:`dispatch` finds
the service class that claims the presentation context's abstract syntax in
the AE's registry (built once from the plugins) and calls its SCP with a
:class:`Call` -- the association layer's implementation of
:class:`dicomnet.service.ServiceCall`.

What PS3.7 asks when a request cannot be served is answered here, with the
matching response type so the peer is never left waiting:

* no service class claims the SOP class, or we may not act as SCP on the
  context: *SOP Class not supported* (0122H, PS3.7 C.5.3 / C.4.3);
* the service class does not serve that DIMSE operation: *Unrecognized
  operation* (0211H, PS3.7 C.5.6 / C.4.5);
* a request arriving after we asked to release the association (PS3.8 Sta7)
  cannot be answered -- PS3.8 Table 9-10 allows no P-DATA request there -- and
  is dropped with a warning, without calling the application;
* an N-EVENT-REPORT-RQ is served whatever roles the context has: it is sent by
  the SCP of the SOP class to its SCU (PS3.7 10.1.1), on the association the SCU
  requested or on one the SCP requested itself, with or without SCP/SCU Role
  Selection (PS3.4 J.3.3.1.3 -- many peers negotiate none);
* the SCP itself raised (a bug in a plugin, not in the application's
  handler, which the plugin already maps to a status): the service class's
  failure status, and a log record. The association goes on.

A request's data set reaches the SCP as it was received: ``bytes`` collected
in memory, or -- when the service class's ``dataset_sink`` wrote it out as it
arrived -- a :class:`~dicomnet.spool.SpooledDataset` (``call.dataset_path``).
A temporary file is deleted once the SCP returns, unless the handler moved it
(``event.store()``); a file written on demand for ``event.dataset_path`` too.

**Batched responses.** Writing each of thousands of small C-FIND responses
with its own ``sendmsg`` costs more than building it. A service class may
therefore :meth:`Call.hold` Pending responses: they are queued, encoded (the
command set once for identical responses: only the identifier differs), and
written together with the next :meth:`Call.send`, at the latest at
:meth:`Call.flush` or when :data:`HOLD_MAX_MESSAGES` or
:data:`HOLD_MAX_BYTES` are queued, and when the SCP returns. The service
class decides when holding cannot delay a response unduly (the C-FIND engine
holds only while its handler yields quickly, and never longer than a few
milliseconds). With DIMSE logging on, or a handler bound to
``EVT_DIMSE_SENT``/``EVT_DATA_SENT``, every response is written at once.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from pydicom.dataset import Dataset
from pydicom.uid import UID

from . import dimse_messages as dm
from .acse import NegotiatedContext
from .datasets import encode_dataset
from .dimse import Buffer, command_pdus, dataset_pdus
from .errors import LocalProtocolError
from .events import InterventionEvent
from .fsm import State
from .spool import FileMetaInfo, Received, SpooledDataset, spool_bytes
from .status import StatusTable, code_to_category

if TYPE_CHECKING:  # pragma: no cover
    from .association import Association
    from .service import ServiceClass

__all__ = [
    "HOLD_MAX_BYTES",
    "HOLD_MAX_MESSAGES",
    "Call",
    "ContextView",
    "dispatch",
    "file_meta_info",
]

LOGGER = logging.getLogger("dicomnet.assoc")

SOP_CLASS_NOT_SUPPORTED = 0x0122
UNRECOGNIZED_OPERATION = 0x0211

#: held responses (:meth:`Call.hold`) are written once this many are queued...
HOLD_MAX_MESSAGES = 64
#: ... or this many bytes; a response with a larger data set is never held
HOLD_MAX_BYTES = 64 * 1024

_RESPONSE_TYPES: dict[type[dm.DimseMessage], type[dm.DimseResponse]] = {
    dm.CStoreRQ: dm.CStoreRSP,
    dm.CFindRQ: dm.CFindRSP,
    dm.CGetRQ: dm.CGetRSP,
    dm.CMoveRQ: dm.CMoveRSP,
    dm.CEchoRQ: dm.CEchoRSP,
    dm.NEventReportRQ: dm.NEventReportRSP,
    dm.NGetRQ: dm.NGetRSP,
    dm.NSetRQ: dm.NSetRSP,
    dm.NActionRQ: dm.NActionRSP,
    dm.NCreateRQ: dm.NCreateRSP,
    dm.NDeleteRQ: dm.NDeleteRSP,
}


class ContextView:
    """An accepted context as handlers see it (``event.context``) and SCPs use it.

    Unpacks like pynetdicom's ``PresentationContextTuple`` -- ``(context_id,
    abstract_syntax, transfer_syntax)`` with :class:`pydicom.uid.UID` syntaxes --
    and also tells the local roles, as :class:`dicomnet.service.AcceptedContext`.
    """

    __slots__ = ("abstract_syntax", "as_scp", "as_scu", "context_id", "transfer_syntax")

    def __init__(self, context: NegotiatedContext) -> None:
        self.context_id = context.context_id
        self.abstract_syntax = UID(context.abstract_syntax)
        self.transfer_syntax = UID(context.transfer_syntax or "")
        self.as_scu = context.as_scu
        self.as_scp = context.as_scp

    def __iter__(self) -> Any:
        return iter((self.context_id, self.abstract_syntax, self.transfer_syntax))

    def __repr__(self) -> str:
        return (
            f"ContextView(context_id={self.context_id}, "
            f"abstract_syntax={self.abstract_syntax!r}, transfer_syntax={self.transfer_syntax!r})"
        )


def context_view(assoc: Association, context: NegotiatedContext) -> ContextView:
    """The :class:`ContextView` of an accepted context, built once per association.

    Every request on the context shares it (the data set sink, the SCP, the
    handlers' ``event.context``): making one converts two UIDs, with pydicom's
    validation, which is worth doing once rather than twice per C-STORE.
    """
    views = assoc._context_views
    view = views.get(context.context_id)
    if view is None:
        view = views[context.context_id] = ContextView(context)
    return view


def _affected_sop_class(message: dm.DimseMessage) -> str | None:
    uid = getattr(message, "AffectedSOPClassUID", None)
    return uid if uid is not None else getattr(message, "RequestedSOPClassUID", None)


def response_for(request: dm.DimseMessage, status: int) -> dm.DimseResponse:
    """A bare response of the right type for ``request``, with ``status``."""
    response_type = _RESPONSE_TYPES[type(request)]
    fields: dict[str, Any] = {
        "MessageIDBeingRespondedTo": request.MessageID,  # type: ignore[attr-defined]
        "Status": status,
    }
    sop_class = _affected_sop_class(request)
    if sop_class is not None:
        fields["AffectedSOPClassUID"] = sop_class
    instance = getattr(request, "AffectedSOPInstanceUID", None) or getattr(
        request, "RequestedSOPInstanceUID", None
    )
    if instance is not None and "AffectedSOPInstanceUID" in attrs_fields(response_type):
        fields["AffectedSOPInstanceUID"] = instance
    return response_type(**fields)


def attrs_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(cls))


def file_meta_info(assoc: Association, transfer_syntax: str, request: Any) -> FileMetaInfo:
    """The File Meta Information (PS3.10 7.1) of a data set received with ``request``.

    SOP Class and Instance from the request's Affected SOP Class/Instance UID,
    the context's transfer syntax, our implementation, the peer's AE title as
    the Source Application Entity Title.
    """
    ae = assoc.ae
    return FileMetaInfo(
        sop_class_uid=request.AffectedSOPClassUID or "",
        sop_instance_uid=request.AffectedSOPInstanceUID or "",
        transfer_syntax=str(transfer_syntax),
        implementation_class_uid=str(ae.implementation_class_uid),
        implementation_version_name=ae.implementation_version_name,
        source_ae_title=(
            assoc.requestor.ae_title if assoc.is_acceptor else assoc.acceptor.ae_title
        )
        or None,
    )


class Call:
    """One received request, as a service class's SCP sees it (``ServiceCall``)."""

    __slots__ = (
        "_assoc",
        "_batching",
        "_context",
        "_data",
        "_event_context",
        "_final_sent",
        "_held",
        "_held_bytes",
        "_held_count",
        "_last_command",
        "_on_demand",
        "_received",
        "_request",
        "_service",
    )

    def __init__(
        self,
        assoc: Association,
        context: NegotiatedContext,
        request: dm.DimseRequest,
        data: Received | None,
        service: ServiceClass,
    ) -> None:
        self._assoc = assoc
        self._context = context
        self._event_context = context_view(assoc, context)
        self._request = request
        self._received = data
        self._data = data if isinstance(data, bytes) else None
        self._service = service
        self._final_sent = False
        self._on_demand: SpooledDataset | None = None
        self._held: list[Buffer] = []
        self._held_count = 0
        self._held_bytes = 0
        self._batching = False
        self._last_command: tuple[dm.DimseResponse, bool, bytes] | None = None

    @property
    def assoc(self) -> Association:
        return self._assoc

    @property
    def context(self) -> ContextView:
        return self._event_context

    @property
    def request(self) -> dm.DimseRequest:
        return self._request

    @property
    def has_dataset(self) -> bool:
        return self._received is not None

    @property
    def dataset_bytes(self) -> bytes | None:
        """The request's data set exactly as received (not decoded), if it was kept in memory."""
        return self._data

    @property
    def received(self) -> Received | None:
        """What the data set sink returned: ``bytes``, a spooled file or a spool failure."""
        return self._received

    @property
    def dataset_path(self) -> Path | None:
        """The Part 10 file the data set was written to as it arrived, if it was."""
        received = self._received
        return received.path if isinstance(received, SpooledDataset) else None

    @property
    def status_table(self) -> StatusTable:
        return self._service.status_table

    @property
    def service(self) -> ServiceClass:
        return self._service

    @property
    def is_cancelled(self) -> bool:
        return self._assoc._is_cancelled(self._request.MessageID)

    @property
    def final_sent(self) -> bool:
        """Whether a final (non-pending) response has been sent."""
        return self._final_sent

    def is_bound(self, event: InterventionEvent, /) -> bool:
        """Whether the application bound a handler to ``event`` (association, server or AE)."""
        return self._assoc._handlers.intervention_handler(event) is not None

    def trigger(self, event: InterventionEvent, /, **attrs: Any) -> Any:
        message_id = self._request.MessageID
        base: dict[str, Any] = {
            "request": self._request,
            "context": self._event_context,
            "_dataset_bytes": self._data,
            "_is_cancelled": lambda: self._assoc._is_cancelled(message_id),
        }
        received = self._received
        if isinstance(received, SpooledDataset):
            base["_dataset_path"] = received.path
            base["_spooled"] = received
        elif self._data is not None:
            base["_spool"] = self._spool_on_demand
        base.update(attrs)
        return self._assoc._intervene(event, base)

    def _spool_on_demand(self) -> SpooledDataset:
        """Write the in-memory data set as a temporary Part 10 file (``event.dataset_path``)."""
        if self._on_demand is None:
            assert self._data is not None
            meta = file_meta_info(self._assoc, self._event_context.transfer_syntax, self._request)
            self._on_demand = spool_bytes(meta, self._data, self._assoc.ae.spool_directory)
        return self._on_demand

    def release(self) -> None:
        """Delete the temporary files of this request (those the handler did not move)."""
        received = self._received
        if isinstance(received, SpooledDataset):
            received.discard()
        if self._on_demand is not None:
            self._on_demand.discard()

    def _encode(self, dataset: Dataset | bytes | None) -> bytes | None:
        if isinstance(dataset, Dataset):
            return encode_dataset(dataset, str(self._context.transfer_syntax))
        return dataset

    def send(self, response: dm.DimseResponse, dataset: Dataset | bytes | None = None) -> None:
        """Send ``response`` now, after any held ones (PS3.7 9.3)."""
        data = self._encode(dataset)
        if code_to_category(response.Status) != "Pending":
            self._final_sent = True
        if self._held:
            if self._batching and (data is None or len(data) <= HOLD_MAX_BYTES):
                self._queue(response, data)  # one write with the held ones
                self.flush()
                return
            self.flush()
        self._assoc._send_message(self._context.context_id, response, data)

    def hold(self, response: dm.DimseResponse, dataset: Dataset | bytes | None = None) -> None:
        """Send ``response`` with the ones that follow it: see *Batched responses* above.

        It is written at the latest by the next :meth:`send` or :meth:`flush`, when
        :data:`HOLD_MAX_MESSAGES` or :data:`HOLD_MAX_BYTES` are queued, or when the
        SCP returns. Raises as :meth:`send` does (an encoding error, or
        ``LocalProtocolError`` when a write fails).
        """
        data = self._encode(dataset)
        if code_to_category(response.Status) != "Pending":
            self._final_sent = True
        if not self._held:
            self._batching = self._assoc._batching_allowed()
        if not self._batching or (data is not None and len(data) > HOLD_MAX_BYTES):
            self.send(response, data)
            return
        self._queue(response, data)
        if self._held_count >= HOLD_MAX_MESSAGES or self._held_bytes >= HOLD_MAX_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the held responses now, with one write."""
        if not self._held:
            return
        held = self._held
        self._held = []
        self._held_count = self._held_bytes = 0
        self._assoc._write_pdata([b"".join(held)])

    def _queue(self, response: dm.DimseResponse, data: bytes | None) -> None:
        """Queue the PDUs of one message; the command set is encoded once for each response
        object (the C-FIND engine reuses one for all its identical Pending responses)."""
        has_dataset = data is not None
        last = self._last_command
        if last is None or last[0] is not response or last[1] != has_dataset:
            pdus = command_pdus(
                self._context.context_id, response, has_dataset, self._assoc._max_send
            )
            last = self._last_command = (response, has_dataset, pdus)
        self._held.append(last[2])
        size = len(last[2])
        if data is not None:
            for pdu in dataset_pdus(self._context.context_id, data, self._assoc._max_send):
                self._held.append(pdu)
                size += len(pdu)
        self._held_count += 1
        self._held_bytes += size


def _refuse(
    assoc: Association, context_id: int, request: dm.DimseMessage, status: int, why: str
) -> None:
    LOGGER.warning("Refusing a %s: %s", request.message_name, why)
    if type(request) not in _RESPONSE_TYPES:
        return
    with contextlib.suppress(LocalProtocolError):
        assoc._send_message(context_id, response_for(request, status), None)


def dispatch(
    assoc: Association, context_id: int, request: dm.DimseMessage, data: Received | None
) -> None:
    """Serve one received request (see the module docstring for the refusals).

    A temporary file holding the request's data set is deleted when this returns.
    """
    try:
        _dispatch(assoc, context_id, request, data)
    finally:
        if isinstance(data, SpooledDataset):
            data.discard()


def _dispatch(
    assoc: Association, context_id: int, request: dm.DimseMessage, data: Received | None
) -> None:
    context = assoc._by_id.get(context_id)
    if context is None or not isinstance(request, dm.DimseRequest):
        return  # the assembler only lets accepted contexts through
    ul = assoc._ul
    if ul is not None and ul.state == State.Sta7:
        LOGGER.warning(
            "Ignoring a %s received after we requested the release of the association: "
            "it cannot be answered (PS3.8 Table 9-10, Sta7)",
            request.message_name,
        )
        return
    registry = assoc.ae._registry
    service = registry.service_for(context.abstract_syntax)
    sop_class = _affected_sop_class(request) or context.abstract_syntax
    if service is None or service.scp is None:
        _refuse(
            assoc,
            context_id,
            request,
            SOP_CLASS_NOT_SUPPORTED,
            f"no service class serves '{sop_class}'",
        )
        return
    if not service.serves(request.CommandField):
        _refuse(
            assoc,
            context_id,
            request,
            UNRECOGNIZED_OPERATION,
            f"the {service.name} service class does not serve {request.message_name}",
        )
        return
    if not context.as_scp and not isinstance(request, dm.NEventReportRQ):
        _refuse(
            assoc,
            context_id,
            request,
            SOP_CLASS_NOT_SUPPORTED,
            f"the SCP role was not negotiated for '{context.abstract_syntax}'",
        )
        return
    call = Call(assoc, context, request, data, service)
    try:
        service.scp(call)
        call.flush()  # responses the service class held and did not flush
    except LocalProtocolError as exc:
        LOGGER.error(
            "The %s ended while serving a %s: %s", "association", request.message_name, exc
        )
    except Exception:
        LOGGER.exception(
            "The %s service class failed serving a %s", service.name, request.message_name
        )
        if not call.final_sent:
            with contextlib.suppress(LocalProtocolError):
                call.send(response_for(request, service.failure_status))
    finally:
        call.release()
