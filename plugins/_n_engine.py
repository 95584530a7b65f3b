"""The SCP engine of the DIMSE-N service classes (PS3.7 10; PS3.4 F, J, R and the others).

Modality Performed Procedure Step, Storage Commitment, Instance Availability
Notification and every other service class built on N-CREATE, N-SET, N-GET,
N-ACTION, N-DELETE and N-EVENT-REPORT serve their requests the same way, with
pynetdicom's handler contract; a plugin only declares what differs
(:func:`n_service_class`): its SOP classes, which request each SOP class
accepts, its status table, and per request type the checks PS3.4 asks of its
SCP (:class:`Rules`).

**The handler contract** (``EVT_N_CREATE``, ``EVT_N_SET``, ``EVT_N_GET``,
``EVT_N_ACTION``, ``EVT_N_EVENT_REPORT``, ``EVT_N_DELETE``): the handler
returns ``(status, dataset)`` -- ``status`` an ``int`` or a status
:class:`~pydicom.dataset.Dataset` (Status (0000,0900) with Error Comment,
Error ID, Offending Element, Attribute Identifier List... PS3.7 Annex C),
``dataset`` the response's Attribute List, Action Reply or Event Reply, or
``None``. A bare status is accepted too, and is what an ``EVT_N_DELETE``
handler returns. The request's data set is decoded before the handler runs
(``event.attribute_list``, ``event.modification_list``,
``event.action_information``, ``event.event_information``);
``event.attribute_identifiers``, ``event.action_type`` and
``event.event_type`` give the command's parameters.

**The response** (PS3.7 10.3): Affected SOP Class and Instance UID are the
request's (Affected, or Requested for N-GET, N-SET, N-ACTION and N-DELETE);
Action Type ID and Event Type ID are repeated in a Success or Warning
response (PS3.7 10.1.4.1.5, 10.1.1.1.5). The handler's data set is sent with a
Success or Warning status when it is not empty -- and with 0106H *Invalid
attribute value*, whose related field is the Attribute List holding the
invalid values (PS3.7 C.5) -- never with another failure. When an N-CREATE-RQ
leaves the SOP Instance UID to the SCP (PS3.7 10.1.5.1.4), the handler gives
the UID it chose as ``AffectedSOPInstanceUID`` in its status data set or in
its data set (removed from the Attribute List before it is sent), as with
pynetdicom; a Success without one becomes 0110H.

**Refusals before the handler**, each with a log record:

* 0211H *Unrecognized operation* -- a request the SOP class of the context
  does not define (an N-GET on the Modality Performed Procedure Step SOP
  Class, PS3.4 F.7.1);
* 0118H *No such SOP class* -- under a Meta SOP Class (Print Management), a
  request for a SOP class the meta class does not include;
* 0110H *Processing failure* -- a data set that cannot be decoded, or an
  N-SET-RQ without its Modification List (mandatory, PS3.7 10.1.3.1.4);
* whatever the service's :attr:`Rules.check` answers (PS3.4's own rules:
  0106H for an MPPS N-CREATE not IN PROGRESS, 0123H for an unknown
  Storage Commitment action...).

**Failures of the application** never escape: an exception in the handler,
no handler bound, a result that is not what the contract asks for, a data set
that cannot be encoded -- each gives 0110H *Processing failure* (PS3.7 C.5.x,
the general failure every N-service lists) and a log record on
``dicomnet.nservices``. A status the service's table does not know is sent
anyway with a warning (see :mod:`dicomnet.service`).

**Reporting to the SCU** (:func:`send_report`): an SCP that notifies its SCU
with an N-EVENT-REPORT (a Storage Commitment result, PS3.4 J.3.3) tries the
association the request came on while it is established, then -- unless the
SCU accepted the report there -- opens one of its own to the SCU's AE title,
proposing the SCP role for itself through SCP/SCU Role Selection (PS3.7
D.3.3.4; PS3.4 J.3.3.1.3). The address comes
from the ``dicomnet_resolve_report_destination`` hooks (a
:class:`ReportDestinations` table registered as a plugin, or any plugin), then
from the AE's ``report_destinations`` table, then from its
``move_destinations``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
from pydicom.dataset import Dataset

from dicomnet import dimse_messages as dm
from dicomnet.datasets import decode_dataset, encode_dataset
from dicomnet.events import (
    EVT_N_ACTION,
    EVT_N_CREATE,
    EVT_N_DELETE,
    EVT_N_EVENT_REPORT,
    EVT_N_GET,
    EVT_N_SET,
    InterventionEvent,
    NoHandlerBound,
)
from dicomnet.hookspecs import ReportDestination, hookimpl
from dicomnet.presentation import build_context, build_role
from dicomnet.service import (
    PROCESSING_FAILURE,
    InvalidHandlerResult,
    ServiceCall,
    ServiceClass,
    handler_failure,
    status_from_handler_result,
)
from dicomnet.status import Status, StatusTable, code_to_category

__all__ = [
    "Destination",
    "ReportDestinations",
    "Rules",
    "event_type_check",
    "n_service_class",
    "refusal",
    "resolve_report_destination",
    "send_report",
    "serve",
]

LOGGER = logging.getLogger("dicomnet.nservices")

#: ``(host, port, kwargs for AE.associate)``
Destination = tuple[str, int, Mapping[str, Any]]
#: What a check or a default answers: a status (``int`` or status data set), or
#: ``(status, dataset)`` as a handler does.
Answer = Any
#: ``check(call, dataset)``: ``None`` to go on, or the refusal to send (an :data:`Answer`).
Check = Callable[[ServiceCall, Dataset | None], Answer]
#: ``default(call, dataset)``: the answer when no handler is bound (``None``: there is none).
Default = Callable[[ServiceCall, Dataset | None], Answer]
#: ``after(call, dataset, status)``: runs once a Success or Warning response is sent.
After = Callable[[ServiceCall, Dataset | None, int], None]

_SUCCESSFUL = ("Success", "Warning")
#: failures whose related field is the Attribute List / Modification List (PS3.7 C.5)
_REPLY_ON_FAILURE = frozenset((Status.INVALID_ATTRIBUTE_VALUE,))


@attrs.frozen
class _Kind:
    """What PS3.7 10.1 says of one N-service request."""

    event: InterventionEvent
    response: type[dm.DimseResponse]
    #: the request's data set parameter, if it has one
    data: str | None
    #: the response's data set parameter, if it has one
    reply: str | None
    #: whether the request's data set is mandatory
    data_required: bool = False


_KINDS: Mapping[type[dm.DimseMessage], _Kind] = MappingProxyType(
    {
        dm.NCreateRQ: _Kind(EVT_N_CREATE, dm.NCreateRSP, "Attribute List", "Attribute List"),
        dm.NSetRQ: _Kind(
            EVT_N_SET, dm.NSetRSP, "Modification List", "Attribute List", data_required=True
        ),
        dm.NGetRQ: _Kind(EVT_N_GET, dm.NGetRSP, None, "Attribute List"),
        dm.NActionRQ: _Kind(EVT_N_ACTION, dm.NActionRSP, "Action Information", "Action Reply"),
        dm.NEventReportRQ: _Kind(
            EVT_N_EVENT_REPORT, dm.NEventReportRSP, "Event Information", "Event Reply"
        ),
        dm.NDeleteRQ: _Kind(EVT_N_DELETE, dm.NDeleteRSP, None, None),
    }
)


@attrs.frozen
class Rules:
    """What a service class adds to the generic N-service for one request type.

    * ``check(call, dataset)`` -- PS3.4's rules for the request, before the
      handler runs: ``None`` to go on, or the refusal to send (a status, a
      status data set, or ``(status, dataset)``). It gets the decoded data set
      (``None`` without one). An exception in it is a processing failure.
    * ``default(call, dataset)`` -- the answer when the application bound no
      handler to the request's event (without it, or when it returns ``None``,
      the request fails with 0110H as pynetdicom's does).
    * ``after(call, dataset, status)`` -- runs after a Success or Warning
      response has been sent (Storage Commitment reports its result there).
    """

    check: Check | None = None
    default: Default | None = None
    after: After | None = None


def _request_sop_class(request: Any) -> str:
    uid = getattr(request, "AffectedSOPClassUID", None) or getattr(
        request, "RequestedSOPClassUID", None
    )
    return str(uid or "")


def _request_sop_instance(request: Any) -> str | None:
    uid = getattr(request, "AffectedSOPInstanceUID", None) or getattr(
        request, "RequestedSOPInstanceUID", None
    )
    return None if uid is None else str(uid)


def _response(call: ServiceCall, kind: _Kind, status: int) -> dm.DimseResponse:
    """The response to ``call.request`` with ``status``, its UIDs and type IDs (PS3.7 10.3)."""
    request: Any = call.request
    fields: dict[str, Any] = {
        "MessageIDBeingRespondedTo": request.MessageID,
        "Status": int(status),
        "AffectedSOPClassUID": _request_sop_class(request) or None,
        "AffectedSOPInstanceUID": _request_sop_instance(request),
    }
    if code_to_category(status) in _SUCCESSFUL:
        if isinstance(request, dm.NActionRQ):
            fields["ActionTypeID"] = request.ActionTypeID
        elif isinstance(request, dm.NEventReportRQ):
            fields["EventTypeID"] = request.EventTypeID
    return kind.response(**fields)


def _what(event: InterventionEvent) -> str:
    return f"handler bound to '{event.name}'"


def _interpret(result: Any, table: StatusTable, what: str) -> tuple[int, Dataset | None, Any]:
    """``(status, status extra, dataset)`` from a handler's answer; raises
    :class:`InvalidHandlerResult` when it is not one."""
    dataset: Any = None
    if isinstance(result, tuple):
        if len(result) != 2:
            raise InvalidHandlerResult(
                f"the {what} returned a tuple of {len(result)} items; expected (status, dataset)"
            )
        result, dataset = result
        if dataset is not None and not isinstance(dataset, Dataset):
            raise InvalidHandlerResult(
                f"the {what} returned {dataset!r} as its data set; expected a Dataset or None"
            )
    status, extra = status_from_handler_result(result, table, what=what)
    return status, extra, dataset


def _refuse(call: ServiceCall, kind: _Kind, status: int, why: str) -> None:
    LOGGER.warning("Refusing a %s with status 0x%04X: %s", call.request.message_name, status, why)
    call.send(_response(call, kind, status))


def _decode(call: ServiceCall, kind: _Kind) -> tuple[bool, Dataset | None]:
    """The request's data set, decoded; ``(False, None)`` after refusing it."""
    received = call.received
    if received is None:
        if kind.data_required:
            _refuse(
                call, kind, PROCESSING_FAILURE,
                f"it has no {kind.data}, which PS3.7 10.1 makes mandatory",
            )
            return False, None
        return True, None
    if not isinstance(received, bytes | bytearray | memoryview):
        _refuse(call, kind, PROCESSING_FAILURE, f"its {kind.data} was not received in memory")
        return False, None
    try:
        dataset = decode_dataset(bytes(received), str(call.context.transfer_syntax))
        dataset.walk(lambda _ds, _elem: None)  # convert every element now: fail here
        return True, dataset
    except Exception as exc:
        LOGGER.error("Cannot decode the %s of a %s: %s", kind.data or "data set",
                     call.request.message_name, exc)
        call.send(_response(call, kind, PROCESSING_FAILURE))
        return False, None


def _answer(
    call: ServiceCall, kind: _Kind, rules: Rules, dataset: Dataset | None
) -> tuple[Any, str]:
    """The handler's answer (or the default's), and who gave it; exceptions propagate."""
    if rules.default is not None and not call.is_bound(kind.event):
        answer = rules.default(call, dataset)
        if answer is not None:
            return answer, f"default answer of the {call.request.message_name}"
    return call.trigger(kind.event, _decoded_dataset=dataset), _what(kind.event)


def _created_instance(call: ServiceCall, response: dm.DimseResponse, reply: Any) -> tuple[
    dm.DimseResponse, Any
]:
    """An N-CREATE-RSP's Affected SOP Instance UID when the SCP chose it (PS3.7 10.1.5.1.4):
    the handler's, from its status data set (already copied) or its data set."""
    if response.AffectedSOPInstanceUID:  # type: ignore[attr-defined]
        return response, reply
    if isinstance(reply, Dataset) and "AffectedSOPInstanceUID" in reply:
        uid = str(reply.AffectedSOPInstanceUID)
        reply = copy.copy(reply)
        del reply.AffectedSOPInstanceUID
        return attrs.evolve(response, AffectedSOPInstanceUID=uid), reply  # type: ignore[call-arg]
    LOGGER.error(
        "The N-CREATE-RQ has no Affected SOP Instance UID and the %s gave none (as "
        "AffectedSOPInstanceUID in its status or data set): responding 0x%04X",
        _what(EVT_N_CREATE), PROCESSING_FAILURE,
    )
    return attrs.evolve(response, Status=PROCESSING_FAILURE), None


def serve(
    call: ServiceCall, rules: Rules | None = None, *, failure_status: int = PROCESSING_FAILURE
) -> int | None:
    """Serve one N-service request (see the module docstring); the status sent, or ``None``.

    For service classes that compose their own SCP; :func:`n_service_class`
    calls it after checking the operation against the SOP class.
    """
    request = call.request
    kind = _KINDS.get(type(request))
    if kind is None:  # not an N-service request: the service class's own business
        raise TypeError(f"{request.message_name} is not a DIMSE-N request")
    rules = rules or Rules()
    ok, dataset = _decode(call, kind)
    if not ok:
        return PROCESSING_FAILURE
    what = _what(kind.event)
    try:
        refused = None if rules.check is None else rules.check(call, dataset)
        if refused is not None:
            result, what = refused, f"check of the {request.message_name}"
        else:
            result, what = _answer(call, kind, rules, dataset)
        status, extra, reply = _interpret(result, call.status_table, what)
    except NoHandlerBound:
        LOGGER.error(
            "No handler is bound to %s: responding to the %s with 0x%04X (processing failure)",
            kind.event.name, request.message_name, failure_status,
        )
        status, extra, reply = failure_status, None, None
    except Exception as exc:
        status, extra, reply = handler_failure(exc, what=what, status=failure_status), None, None
    response = _response(call, kind, status)
    if extra is not None:
        try:
            response = dm.with_status(response, extra)
        except (TypeError, ValueError) as exc:
            response = _response(
                call, kind, handler_failure(exc, what=f"status data set of the {what}",
                                            status=failure_status)
            )
            reply = None
    if isinstance(request, dm.NCreateRQ) and code_to_category(response.Status) in _SUCCESSFUL:
        response, reply = _created_instance(call, response, reply)
    data: bytes | None = None
    sends_reply = (
        code_to_category(response.Status) in _SUCCESSFUL
        or response.Status in _REPLY_ON_FAILURE
    )
    if isinstance(reply, Dataset) and len(reply) and kind.reply is not None and sends_reply:
        try:
            data = encode_dataset(reply, str(call.context.transfer_syntax))
        except Exception as exc:
            LOGGER.error(
                "Cannot encode the %s returned by the %s: %s; responding 0x%04X",
                kind.reply, what, exc, failure_status,
            )
            response = _response(call, kind, failure_status)
    call.send(response, data)
    if rules.after is not None and code_to_category(response.Status) in _SUCCESSFUL:
        try:
            rules.after(call, dataset, response.Status)
        except Exception:
            LOGGER.exception("Failed after answering a %s", request.message_name)
    return response.Status


def n_service_class(
    name: str,
    *,
    sop_classes: Mapping[str, str],
    status_table: StatusTable,
    operations: Mapping[str, Iterable[type[dm.DimseRequest]]],
    meta_sop_classes: Mapping[str, Iterable[str]] | None = None,
    rules: Mapping[type[dm.DimseRequest], Rules] | None = None,
    events: Sequence[InterventionEvent] = (),
    context_lists: Mapping[str, Sequence[str]] | None = None,
    uid: str | None = None,
    reference: str = "",
) -> ServiceClass:
    """A :class:`~dicomnet.service.ServiceClass` whose SCP serves N-requests with this engine.

    ``operations`` maps each SOP Class UID to the N-request types it defines
    (its DIMSE Service Group, PS3.4); a request of another type on a context
    for it is refused with 0211H. ``meta_sop_classes`` maps a Meta SOP Class to
    the SOP classes it includes: on its contexts the request's own SOP class
    decides. ``rules`` adds the service's checks per request type. ``events``
    lists intervention events of its own (beyond the ``EVT_N_*`` of its
    requests) for documentation and conformance.
    """
    allowed: dict[str, frozenset[type[dm.DimseMessage]]] = {
        str(sop_class): frozenset(kinds) for sop_class, kinds in operations.items()
    }
    for kinds in allowed.values():
        for kind in kinds:
            if kind not in _KINDS:
                raise ValueError(f"{kind!r} is not a DIMSE-N request type")
    meta = {str(k): frozenset(map(str, v)) for k, v in (meta_sop_classes or {}).items()}
    per_request = dict(rules or {})
    requests = sorted(
        {kind for kinds in allowed.values() for kind in kinds}, key=lambda k: k.CommandField
    )

    def scp(call: ServiceCall) -> None:
        request = call.request
        kind = _KINDS.get(type(request))
        sop_class = str(call.context.abstract_syntax)
        members = meta.get(sop_class)
        if members is not None:
            own = _request_sop_class(request)
            if own not in members and kind is not None:
                _refuse(call, kind, Status.NO_SUCH_SOP_CLASS,
                        f"the Meta SOP Class {sop_class} does not include {own or '(none)'}")
                return
            sop_class = own
        if kind is None or type(request) not in allowed.get(sop_class, ()):
            LOGGER.warning(
                "Refusing a %s: PS3.4 does not define it for %s",
                request.message_name, sop_classes.get(sop_class, sop_class),
            )
            if kind is not None:
                call.send(_response(call, kind, Status.UNRECOGNIZED_OPERATION))
            return
        serve(call, per_request.get(type(request)))

    own_events = [_KINDS[kind].event for kind in requests]
    return ServiceClass(
        name=name,
        sop_classes=sop_classes,
        status_table=status_table,
        requests=requests,
        events=[*own_events, *events],
        context_lists=context_lists or {},
        scp=scp,
        uid=uid,
        failure_status=PROCESSING_FAILURE,
        reference=reference,
    )


# -- checks shared by service classes -----------------------------------------------------------


def event_type_check(known: Iterable[int]) -> Check:
    """A check refusing an N-EVENT-REPORT-RQ whose Event Type ID is not one of ``known``
    with 0113H *No such event type* (PS3.7 C.5.x)."""
    types = frozenset(known)

    def check(call: ServiceCall, dataset: Dataset | None) -> Answer:
        event_type = getattr(call.request, "EventTypeID", None)
        if event_type in types:
            return None
        return refusal(
            Status.NO_SUCH_EVENT_TYPE,
            f"Event Type ID {event_type} is not defined for this SOP class "
            f"(known: {', '.join(map(str, sorted(types)))})",
        )

    return check


def refusal(status: int, comment: str, offending: Iterable[int] | int | None = None) -> Dataset:
    """A status data set with an Error Comment (PS3.7 C) and, optionally, Offending Elements."""
    LOGGER.warning("Refusing with status 0x%04X: %s", status, comment)
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    if offending is not None:
        tags = [offending] if isinstance(offending, int) else list(offending)
        ds.OffendingElement = tags[0] if len(tags) == 1 else tags
    return ds


# -- reporting to the SCU --------------------------------------------------------------------


def _destination(value: object) -> Destination | None:
    """``(host, port)`` or ``(host, port, kwargs)`` -> :data:`Destination`; ``None`` if unknown."""
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) not in (2, 3):
        raise ValueError(f"{value!r} is not (host, port) or (host, port, kwargs)")
    host, port = value[0], value[1]
    if host is None or port is None:
        return None
    kwargs = value[2] if len(value) == 3 and value[2] is not None else {}
    if (
        not isinstance(host, str)
        or isinstance(port, bool)
        or not isinstance(port, int)
        or not 0 < port < 65536
        or not isinstance(kwargs, Mapping)
    ):
        raise ValueError(f"{value!r} is not (host: str, port: 1-65535, kwargs: dict)")
    return host, port, kwargs


class ReportDestinations(Mapping[str, Destination]):
    """A static table of the SCUs an SCP reports to: AE title -> ``(host, port[, kwargs])``.

    Usable as ``ae.report_destinations`` or registered as a plugin: it
    implements the ``dicomnet_resolve_report_destination`` hook. ``kwargs`` go to
    ``AE.associate`` (``tls_args``, ``max_pdu``...). Checked when built
    (:class:`ValueError` for a bad entry).
    """

    def __init__(self, table: Mapping[str, Sequence[Any]] | None = None, **titles: Any) -> None:
        entries: dict[str, Destination] = {}
        for title, value in {**(table or {}), **titles}.items():
            key = str(title).strip()
            if not 0 < len(key) <= 16:
                raise ValueError(f"{title!r} is not an AE title (1 to 16 characters)")
            destination = _destination(tuple(value))
            if destination is None:
                raise ValueError(f"report destination {key!r} has no address")
            entries[key] = destination
        self._entries = entries

    def __getitem__(self, title: str) -> Destination:
        return self._entries[str(title).strip()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"ReportDestinations({ {t: d[:2] for t, d in self._entries.items()} !r})"

    @hookimpl
    def dicomnet_resolve_report_destination(self, ae_title: str) -> ReportDestination | None:
        """This table's entry for ``ae_title``, or ``None``."""
        return self._entries.get(ae_title.strip())


def resolve_report_destination(
    ae: Any, assoc: Any, ae_title: str, sop_class_uid: str
) -> Destination | None:
    """Where the AE titled ``ae_title`` listens: the plugins' answer
    (``dicomnet_resolve_report_destination``), else the AE's ``report_destinations``,
    else its ``move_destinations``; ``None`` if nobody knows."""
    title = ae_title.strip()
    pm = getattr(ae, "_plugin_manager", None)
    if pm is not None:
        try:
            answer = pm.hook.dicomnet_resolve_report_destination(
                assoc=assoc, ae_title=title, sop_class_uid=sop_class_uid
            )
            found = _destination(answer)
        except Exception:
            LOGGER.exception("A dicomnet_resolve_report_destination hook failed for %r", title)
            found = None
        if found is not None:
            return found
    for attribute in ("report_destinations", "move_destinations"):
        table = getattr(ae, attribute, None)
        if not table:
            continue
        entry = table.get(title) if isinstance(table, Mapping) else None
        if entry is None:
            continue
        try:
            found = _destination(tuple(entry))
        except (TypeError, ValueError) as exc:
            LOGGER.error("The entry for %r in ae.%s is invalid: %s", title, attribute, exc)
            continue
        if found is not None:
            return found
    return None


def send_report(
    ae: Any,
    *,
    ae_title: str,
    sop_class_uid: str,
    sop_instance_uid: str,
    event_type: int,
    information: Dataset | None,
    assoc: Any = None,
    context_uid: str | None = None,
) -> Dataset:
    """Send an N-EVENT-REPORT to the SCU titled ``ae_title`` (PS3.7 10.1.1); its status.

    On ``assoc`` first, while it is established (the association the request
    came on); then, if the SCU released it, did not answer, or refused the report
    there (an SCU that handles reports only on associations it accepts answers
    0110H), on an association of our own to the SCU, proposing one context for
    ``sop_class_uid`` with the SCP role for us (SCP/SCU Role Selection, PS3.7
    D.3.3.4; PS3.4 J.3.3.1.3), released once the report is answered. Returns the
    last response's status, or an empty Dataset when no response came (logged).

    ``context_uid`` is the SOP class of that context when it is not the report's
    own (a UPS report names UPS Push and goes under UPS Event, PS3.4 CC.3.1).
    """
    negotiated = context_uid or sop_class_uid
    status: Dataset
    first: Dataset = Dataset()  # the answer on the association of the request, if any
    if assoc is not None and assoc.is_established:
        try:
            first, _reply = assoc.send_n_event_report(
                information, event_type, sop_class_uid, sop_instance_uid
            )
        except (RuntimeError, ValueError) as exc:
            LOGGER.info("Cannot report on the association of the request: %s", exc)
        else:
            if "Status" in first and code_to_category(int(first.Status)) in _SUCCESSFUL:
                _log_report_status(first, ae_title, "on the association of the request")
                return first
            LOGGER.info(
                "The N-EVENT-REPORT on the association of the request was %s; "
                "opening one to %r",
                f"refused (0x{int(first.Status):04X})" if "Status" in first else "not answered",
                ae_title,
            )
    destination = resolve_report_destination(ae, assoc, ae_title, sop_class_uid)
    if destination is None:
        LOGGER.error(
            "Cannot send the N-EVENT-REPORT to %r: its address is unknown (add it to "
            "ae.report_destinations, or implement dicomnet_resolve_report_destination)",
            ae_title,
        )
        return first
    host, port, kwargs = destination
    options = dict(kwargs)
    options.setdefault("ae_title", ae_title.strip())
    options["contexts"] = [build_context(negotiated)]
    options["ext_neg"] = [
        *options.get("ext_neg", ()),
        build_role(negotiated, scu_role=False, scp_role=True),
    ]
    try:
        report_assoc = ae.associate(host, port, **options)
    except Exception:
        LOGGER.exception("Cannot request an association with %r at %s:%s", ae_title, host, port)
        return first
    if not report_assoc.is_established:
        LOGGER.error("Cannot associate with %r at %s:%s to send the N-EVENT-REPORT",
                     ae_title, host, port)
        return first
    try:
        status, _reply = report_assoc.send_n_event_report(
            information, event_type, sop_class_uid, sop_instance_uid, meta_uid=negotiated
        )
    except (RuntimeError, ValueError) as exc:
        LOGGER.error("Cannot send the N-EVENT-REPORT to %r: %s", ae_title, exc)
        status = Dataset()
    finally:
        if report_assoc.is_established:
            report_assoc.release()
    if "Status" in status:
        _log_report_status(status, ae_title, f"on a new association to {host}:{port}")
    else:
        LOGGER.error("The N-EVENT-REPORT to %r got no answer", ae_title)
    return status


def _log_report_status(status: Dataset, ae_title: str, where: str) -> None:
    code = int(status.Status)
    if code_to_category(code) in _SUCCESSFUL:
        LOGGER.info("N-EVENT-REPORT delivered to %r %s (status 0x%04X)", ae_title, where, code)
    else:
        LOGGER.error("%r refused the N-EVENT-REPORT %s with status 0x%04X", ae_title, where, code)
