"""Events: what happens on an association, and the handlers applications bind to it.

This is the event API pynetdicom users know (``from dicomnet import evt``):

* **Notification events** (``EVT_ESTABLISHED``, ``EVT_PDU_RECV``...) tell any
  number of handlers that something happened; their return values are
  ignored, and an exception in one is logged, never propagated.
* **Intervention events** (``EVT_C_STORE``, ``EVT_USER_ID``...) ask exactly one
  handler for a decision; its return value is the answer. Each has a default
  handler used when none is bound. An exception in it becomes the service's
  failure status and a log record (the service class does that, see
  :mod:`dicomnet.service`); it never kills the association or the server.

Handlers are bound per AE, per server or per association. A
:class:`HandlerTable` holds one level and falls back to its parent, so an
association sees its own handlers, then its server's, then its AE's. A bound
handler is ``handler(event)`` or, bound with extra arguments
``(evt.EVT_X, handler, [a, b])``, ``handler(event, a, b)``.

A notification nobody listens to costs nothing: the association asks
:meth:`HandlerTable.listens` once per change of bindings and only builds
:class:`Event` objects (and asks the kernel for diagnostic events) when someone
does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag, Tag

from .datasets import decode_dataset, file_meta_for, part10_header

if TYPE_CHECKING:  # pragma: no cover
    from .association import Association

__all__ = [
    "EVT_ABORTED",
    "EVT_ACCEPTED",
    "EVT_ACSE_RECV",
    "EVT_ACSE_SENT",
    "EVT_ASYNC_OPS",
    "EVT_CONN_CLOSE",
    "EVT_CONN_OPEN",
    "EVT_C_ECHO",
    "EVT_C_FIND",
    "EVT_C_GET",
    "EVT_C_MOVE",
    "EVT_C_STORE",
    "EVT_DATA_RECV",
    "EVT_DATA_SENT",
    "EVT_DIMSE_RECV",
    "EVT_DIMSE_SENT",
    "EVT_ESTABLISHED",
    "EVT_FSM_TRANSITION",
    "EVT_N_ACTION",
    "EVT_N_CREATE",
    "EVT_N_DELETE",
    "EVT_N_EVENT_REPORT",
    "EVT_N_GET",
    "EVT_N_SET",
    "EVT_PDU_RECV",
    "EVT_PDU_SENT",
    "EVT_REJECTED",
    "EVT_RELEASED",
    "EVT_REQUESTED",
    "EVT_SOP_COMMON",
    "EVT_SOP_EXTENDED",
    "EVT_USER_ID",
    "Event",
    "EventHandlerType",
    "EventType",
    "HandlerTable",
    "InterventionEvent",
    "NotificationEvent",
    "get_default_handler",
]

LOGGER = logging.getLogger("dicomnet.events")


class NotificationEvent(NamedTuple):
    """An event any number of handlers may observe."""

    name: str
    description: str

    @property
    def is_intervention(self) -> bool:
        return False

    @property
    def is_notification(self) -> bool:
        return True

    def __str__(self) -> str:
        return self.name


class InterventionEvent(NamedTuple):
    """An event one handler answers; a default handler answers when none is bound."""

    name: str
    description: str

    @property
    def is_intervention(self) -> bool:
        return True

    @property
    def is_notification(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.name


EventType = NotificationEvent | InterventionEvent
HandlerFunc = Callable[..., Any]
#: ``(event, handler)`` or ``(event, handler, [extra args])``, as passed in ``evt_handlers``
EventHandlerType = tuple[EventType, HandlerFunc] | tuple[EventType, HandlerFunc, Sequence[Any]]

# -- notification events ----------------------------------------------------------------------
EVT_ABORTED = NotificationEvent("EVT_ABORTED", "Association aborted")
EVT_ACCEPTED = NotificationEvent("EVT_ACCEPTED", "Association request accepted")
EVT_ESTABLISHED = NotificationEvent("EVT_ESTABLISHED", "Association established")
EVT_REJECTED = NotificationEvent("EVT_REJECTED", "Association request rejected")
EVT_RELEASED = NotificationEvent("EVT_RELEASED", "Association released")
EVT_REQUESTED = NotificationEvent("EVT_REQUESTED", "Association requested")
EVT_CONN_OPEN = NotificationEvent("EVT_CONN_OPEN", "Connection with remote opened")
EVT_CONN_CLOSE = NotificationEvent("EVT_CONN_CLOSE", "Connection with remote closed")
EVT_DATA_RECV = NotificationEvent("EVT_DATA_RECV", "Data received from the peer AE")
EVT_DATA_SENT = NotificationEvent("EVT_DATA_SENT", "Data sent to the peer AE")
EVT_PDU_RECV = NotificationEvent("EVT_PDU_RECV", "PDU received from the peer AE")
EVT_PDU_SENT = NotificationEvent("EVT_PDU_SENT", "PDU sent to the peer AE")
EVT_DIMSE_RECV = NotificationEvent("EVT_DIMSE_RECV", "Complete DIMSE message received")
EVT_DIMSE_SENT = NotificationEvent("EVT_DIMSE_SENT", "Complete DIMSE message sent")
EVT_ACSE_RECV = NotificationEvent("EVT_ACSE_RECV", "ACSE primitive received from the UL")
EVT_ACSE_SENT = NotificationEvent("EVT_ACSE_SENT", "ACSE primitive sent to the UL")
EVT_FSM_TRANSITION = NotificationEvent("EVT_FSM_TRANSITION", "State machine transitioning")

# -- intervention events ----------------------------------------------------------------------
EVT_ASYNC_OPS = InterventionEvent("EVT_ASYNC_OPS", "Asynchronous operations negotiation requested")
EVT_SOP_COMMON = InterventionEvent("EVT_SOP_COMMON", "SOP class common extended negotiation")
EVT_SOP_EXTENDED = InterventionEvent("EVT_SOP_EXTENDED", "SOP class extended negotiation")
EVT_USER_ID = InterventionEvent("EVT_USER_ID", "User identity negotiation requested")
EVT_C_ECHO = InterventionEvent("EVT_C_ECHO", "C-ECHO request received")
EVT_C_FIND = InterventionEvent("EVT_C_FIND", "C-FIND request received")
EVT_C_GET = InterventionEvent("EVT_C_GET", "C-GET request received")
EVT_C_MOVE = InterventionEvent("EVT_C_MOVE", "C-MOVE request received")
EVT_C_STORE = InterventionEvent("EVT_C_STORE", "C-STORE request received")
EVT_N_ACTION = InterventionEvent("EVT_N_ACTION", "N-ACTION request received")
EVT_N_CREATE = InterventionEvent("EVT_N_CREATE", "N-CREATE request received")
EVT_N_DELETE = InterventionEvent("EVT_N_DELETE", "N-DELETE request received")
EVT_N_EVENT_REPORT = InterventionEvent("EVT_N_EVENT_REPORT", "N-EVENT-REPORT request received")
EVT_N_GET = InterventionEvent("EVT_N_GET", "N-GET request received")
EVT_N_SET = InterventionEvent("EVT_N_SET", "N-SET request received")

_ALL_EVENTS: tuple[EventType, ...] = tuple(
    value
    for name, value in sorted(globals().items())
    if name.startswith("EVT_") and isinstance(value, NotificationEvent | InterventionEvent)
)


# -- default handlers for intervention events ------------------------------------------------


class NoHandlerBound(NotImplementedError):
    """Raised by a default handler that has no sensible answer of its own."""


def _echo_default(event: Event) -> int:
    """Verification needs no application logic: answer Success (PS3.4 A.4)."""
    return 0x0000


def _refuse(event: Event) -> Any:
    raise NoHandlerBound(f"no handler is bound to {event.event.name}")


def _empty_mapping(event: Event) -> dict[str, Any]:
    """Extended negotiation: answer nothing, which PS3.7 D.3.3.5 allows."""
    return {}


_DEFAULT_HANDLERS: dict[InterventionEvent, HandlerFunc] = {
    EVT_C_ECHO: _echo_default,
    EVT_SOP_COMMON: _empty_mapping,
    EVT_SOP_EXTENDED: _empty_mapping,
    # Without a handler the window and the identity are not negotiated: the
    # acceptor sends no item back, as PS3.7 D.3.3.3 and D.3.3.7 allow.
    EVT_ASYNC_OPS: _refuse,
    EVT_USER_ID: _refuse,
}


def get_default_handler(event: InterventionEvent) -> HandlerFunc:
    """The handler used for ``event`` when the application bound none."""
    return _DEFAULT_HANDLERS.get(event, _refuse)


# -- binding ---------------------------------------------------------------------------------


class HandlerTable:
    """Handlers bound at one level (AE, server or association), with a parent to fall back on.

    Not thread-safe for binding; bind before serving, as pluggy asks of plugins.
    Reading (the hot path) takes no lock.
    """

    __slots__ = ("_children", "_intervention", "_notification", "_parent", "_version")

    def __init__(self, parent: HandlerTable | None = None) -> None:
        self._parent = parent
        self._notification: dict[NotificationEvent, list[tuple[HandlerFunc, tuple[Any, ...]]]] = {}
        self._intervention: dict[InterventionEvent, tuple[HandlerFunc, tuple[Any, ...]]] = {}
        self._version = 0

    # mutation
    def bind(
        self, event: EventType, handler: HandlerFunc, args: Sequence[Any] | None = None
    ) -> None:
        """Bind ``handler`` to ``event``; an intervention event keeps only the last one bound."""
        extra = tuple(args or ())
        if isinstance(event, InterventionEvent):
            self._intervention[event] = (handler, extra)
        elif isinstance(event, NotificationEvent):
            handlers = self._notification.setdefault(event, [])
            for i, (bound, _) in enumerate(handlers):
                if bound == handler:
                    handlers[i] = (handler, extra)
                    break
            else:
                handlers.append((handler, extra))
        else:
            raise TypeError(f"{event!r} is not an event")
        self._version += 1

    def unbind(self, event: EventType, handler: HandlerFunc) -> None:
        """Unbind ``handler``; an intervention event falls back to its default handler."""
        if isinstance(event, InterventionEvent):
            bound = self._intervention.get(event)
            if bound is not None and bound[0] == handler:
                del self._intervention[event]
        else:
            handlers = self._notification.get(event, [])
            handlers[:] = [(h, a) for h, a in handlers if h != handler]
            if not handlers:
                self._notification.pop(event, None)
        self._version += 1

    def bind_all(self, evt_handlers: Sequence[EventHandlerType] | None) -> None:
        """Bind every ``(event, handler[, args])`` of an ``evt_handlers`` list."""
        for entry in evt_handlers or ():
            if len(entry) == 2:
                self.bind(entry[0], entry[1])
            elif len(entry) == 3:
                self.bind(entry[0], entry[1], entry[2])
            else:
                raise ValueError(
                    f"evt_handlers entries are (event, handler[, args]), not {entry!r}"
                )

    @property
    def version(self) -> int:
        """Changes whenever this table or one of its ancestors changes."""
        return self._version + (self._parent.version if self._parent is not None else 0)

    # lookup
    def notification_handlers(
        self, event: NotificationEvent
    ) -> list[tuple[HandlerFunc, tuple[Any, ...]]]:
        """All handlers for a notification event: this level's, then its ancestors'."""
        found = list(self._notification.get(event, ()))
        if self._parent is not None:
            found.extend(h for h in self._parent.notification_handlers(event) if h not in found)
        return found

    def intervention_handler(
        self, event: InterventionEvent
    ) -> tuple[HandlerFunc, tuple[Any, ...]] | None:
        """The most specific handler bound to an intervention event, or ``None``."""
        bound = self._intervention.get(event)
        if bound is None and self._parent is not None:
            return self._parent.intervention_handler(event)
        return bound

    def listens(self, event: EventType) -> bool:
        """Whether anything is bound to ``event`` at this level or above."""
        if isinstance(event, InterventionEvent):
            return self.intervention_handler(event) is not None
        if event in self._notification:
            return True
        return self._parent is not None and self._parent.listens(event)

    def get_handlers(self, event: EventType) -> Any:
        """pynetdicom's ``get_handlers``: a list of ``(handler, args)`` for a notification
        event; ``(handler, args)`` or ``None`` for an intervention event (this level only)."""
        if isinstance(event, InterventionEvent):
            bound = self._intervention.get(event)
            return None if bound is None else (bound[0], list(bound[1]) or None)
        return [(h, list(a) or None) for h, a in self._notification.get(event, ())]

    def get_events(self) -> list[EventType]:
        """Events with a handler bound at this level."""
        return [*self._notification, *self._intervention]

    def iter_bindings(self) -> Iterator[tuple[EventType, HandlerFunc, tuple[Any, ...]]]:
        for event, handlers in self._notification.items():
            for handler, args in handlers:
                yield event, handler, args
        for ievent, (handler, args) in self._intervention.items():
            yield ievent, handler, args


# -- the event object ------------------------------------------------------------------------


class Event:
    """What a handler receives: the association, the event, when, and the event's details.

    Attributes given when the event is triggered are read as attributes
    (``event.request``, ``event.context``, ``event.data``, ``event.pdu``...).
    Data sets are decoded only when a handler reads ``event.dataset`` (or
    ``identifier``, ``attribute_list``...), and at most once.
    """

    __slots__ = ("_attrs", "_decoded", "assoc", "event", "timestamp")

    def __init__(self, assoc: Association, event: EventType, attrs: dict[str, Any] | None = None):
        self.assoc = assoc
        self.event = event
        self.timestamp = datetime.now()
        self._attrs: dict[str, Any] = attrs or {}
        self._decoded: Dataset | None = None

    def __getattr__(self, name: str) -> Any:
        try:
            return self._attrs[name]
        except KeyError:
            raise AttributeError(f"'{self.event.name}' event has no attribute '{name}'") from None

    def __repr__(self) -> str:
        return f"<Event {self.event.name} at {self.timestamp:%H:%M:%S.%f}>"

    # -- data sets ----------------------------------------------------------------------------
    def _dataset(self, what: str) -> Dataset:
        """Decode the request's data set once, in the context's transfer syntax.

        A service class that decoded it already (to check it before calling the
        handler) passes it as ``_decoded_dataset``; it is not decoded again.
        """
        if self._decoded is None:
            given = self._attrs.get("_decoded_dataset")
            if given is not None:
                self._decoded = given
                return given  # type: ignore[no-any-return]
            data = self._attrs.get("_dataset_bytes")
            if data is None:
                path = self._attrs.get("_dataset_path")
                if path is None:
                    raise AttributeError(f"the '{self.event.name}' event has no {what}")
                from pydicom import dcmread  # only when streamed to a file

                ds = dcmread(path)
                self._attrs.setdefault("_file_meta", ds.file_meta)
                ds.file_meta = FileMetaDataset()
                self._decoded = ds
            else:
                self._decoded = decode_dataset(data, self.context.transfer_syntax)
        return self._decoded

    @property
    def dataset(self) -> Dataset:
        """The request's data set (C-STORE), decoded on first access."""
        return self._dataset("dataset")

    @property
    def identifier(self) -> Dataset:
        """The C-FIND, C-GET or C-MOVE request's Identifier."""
        return self._dataset("identifier")

    @property
    def action_information(self) -> Dataset:
        """The N-ACTION request's Action Information."""
        return self._dataset("action information")

    @property
    def event_information(self) -> Dataset:
        """The N-EVENT-REPORT request's Event Information."""
        return self._dataset("event information")

    @property
    def attribute_list(self) -> Dataset:
        """The N-CREATE request's Attribute List."""
        return self._dataset("attribute list")

    @property
    def modification_list(self) -> Dataset:
        """The N-SET request's Modification List."""
        return self._dataset("modification list")

    @property
    def dataset_path(self) -> Path:
        """The received data set as a Part 10 file (C-STORE).

        The file the data set was written to as it arrived (spooled), or -- for
        one received in memory -- a file written now, in the AE's
        ``spool_directory``. Either is deleted when the handler returns, unless
        the handler moved it (:meth:`store`, or ``os.replace``).
        """
        path = self._attrs.get("_dataset_path")
        if path is None:
            spool = self._attrs.get("_spool")
            if spool is None:
                raise AttributeError(f"the '{self.event.name}' event has no data set")
            spooled = spool()
            self._attrs["_spooled"] = spooled
            path = self._attrs["_dataset_path"] = spooled.path
        return Path(path)

    def store(
        self, directory: str | os.PathLike[str], name: str | None = None, *, fsync: bool = True
    ) -> Path:
        """Store the received instance as a Part 10 file in ``directory``; return its path.

        The data set is written exactly as received, behind the File Meta
        Information (:attr:`file_meta`), atomically -- under a temporary name,
        then renamed, so that no reader ever sees a partial file -- and, with
        ``fsync`` (the default), durably: the file and the folder are flushed to
        stable storage before this returns, so a handler that returns Success
        afterwards never acknowledges an instance a crash could lose. A spooled
        data set is moved (a rename, on the spool folder's file system).

        ``name`` defaults to ``<SOP Instance UID>.dcm`` when the Affected SOP
        Instance UID is a safe UID, else to a hash-derived name
        (:func:`dicomnet.spool.instance_file_name`): a hostile UID never
        names a file outside ``directory``. An existing file of that name is
        replaced. ``directory`` must exist.
        """
        from . import spool

        if name is None:
            name = spool.instance_file_name(str(self.request.AffectedSOPInstanceUID or ""))
        spooled = self._attrs.get("_spooled")
        path: Path
        if spooled is not None:
            path = spooled.store(directory, name, fsync=fsync)
        else:
            data = self._attrs.get("_dataset_bytes")
            if data is None:
                raise AttributeError(f"the '{self.event.name}' event has no data set")
            header = self._meta_info().encode()
            path = spool.store_bytes(directory, name, [header, data], fsync=fsync)
        self._attrs["_dataset_path"] = path
        return path

    def _meta_info(self) -> Any:
        """The :class:`dicomnet.spool.FileMetaInfo` of the received data set."""
        spooled = self._attrs.get("_spooled")
        if spooled is not None:
            return spooled.meta
        from .service_provider import file_meta_info

        return file_meta_info(self.assoc, self.context.transfer_syntax, self.request)

    @property
    def file_meta(self) -> FileMetaDataset:
        """File Meta Information for the received data set (PS3.10 7.1)."""
        meta = self._attrs.get("_file_meta")
        if meta is None:
            request = self.request
            meta = file_meta_for(
                request.AffectedSOPClassUID,
                request.AffectedSOPInstanceUID,
                self.context.transfer_syntax,
                implementation_class_uid=self.assoc.ae.implementation_class_uid,
                implementation_version_name=self.assoc.ae.implementation_version_name,
                source_ae_title=self.assoc.requestor.ae_title
                if self.assoc.is_acceptor
                else self.assoc.acceptor.ae_title,
            )
            self._attrs["_file_meta"] = meta
        return meta

    def encoded_dataset(self, include_meta: bool = True) -> bytes:
        """The data set as received, optionally as a whole Part 10 file; never re-encoded."""
        data = self._attrs.get("_dataset_bytes")
        spooled = self._attrs.get("_spooled")
        if data is None and spooled is not None:
            raw: bytes = spooled.path.read_bytes() if include_meta else spooled.read_dataset()
            return raw
        if data is None:
            path = self._attrs.get("_dataset_path")
            if path is None:
                raise AttributeError(f"the '{self.event.name}' event has no data set")
            raw = Path(path).read_bytes()
            return raw if include_meta else raw[len(part10_header(self.file_meta)) :]
        if not include_meta:
            return bytes(data)
        return part10_header(self.file_meta) + bytes(data)

    # -- request details ----------------------------------------------------------------------
    @property
    def is_cancelled(self) -> bool:
        """Whether a C-CANCEL has arrived for this C-FIND, C-GET or C-MOVE request."""
        check = self._attrs.get("_is_cancelled")
        return bool(check()) if check is not None else False

    @property
    def message_id(self) -> int:
        return int(self.request.MessageID)

    @property
    def move_destination(self) -> str | None:
        return getattr(self.request, "MoveDestination", None)

    @property
    def action_type(self) -> int | None:
        return getattr(self.request, "ActionTypeID", None)

    @property
    def event_type(self) -> int | None:
        return getattr(self.request, "EventTypeID", None)

    @property
    def attribute_identifiers(self) -> list[BaseTag]:
        """The N-GET request's Attribute Identifier List, as tags."""
        return [Tag(t) for t in (getattr(self.request, "AttributeIdentifierList", None) or ())]


def trigger_notification(
    table: HandlerTable, assoc: Association, event: NotificationEvent, attrs: dict[str, Any]
) -> None:
    """Call every handler bound to a notification event; log, never raise, their errors."""
    handlers = table.notification_handlers(event)
    if not handlers:
        return
    evt = Event(assoc, event, attrs)
    for handler, args in handlers:
        try:
            handler(evt, *args)
        except Exception:
            LOGGER.exception("Exception in the handler bound to %s", event.name)


def trigger_intervention(
    table: HandlerTable, assoc: Association, event: InterventionEvent, attrs: dict[str, Any]
) -> Any:
    """Call the handler bound to an intervention event (or its default) and return its answer.

    Exceptions propagate: the caller turns them into the service's failure status.
    """
    bound = table.intervention_handler(event)
    evt = Event(assoc, event, attrs)
    if bound is None:
        return get_default_handler(event)(evt)
    handler, args = bound
    return handler(evt, *args)
