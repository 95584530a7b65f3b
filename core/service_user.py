"""The DIMSE service user: what ``Association.send_c_*`` and ``send_n_*`` do (PS3.7 9, 10).

Each operation is written once, as a *plan* (:mod:`dicomnet.scu_plan`): a
generator that validates its arguments the way pynetdicom documents, picks the
accepted presentation context, builds the request, and yields operation values
(:class:`~dicomnet.scu_plan.Exchange`, :data:`~dicomnet.scu_plan.NEXT`,
:class:`~dicomnet.scu_plan.Send`, :class:`~dicomnet.scu_plan.Deliver`) for
whatever waits. The threaded association runs the plans with the blocking
drivers (``c_echo()``, ``c_find()``... below are ``run(assoc, echo_plan(...))``
and ``iterate(assoc, find_plan(...))``), :mod:`dicomnet.aio` with its async
drivers: both give the same answers, checks and errors. The plans turn the
responses into the documented return values:

* a status :class:`~pydicom.dataset.Dataset` holding (0000,0900) *Status* and
  the status-related elements of PS3.7 Annex C that the peer sent (for
  N-services also the Affected SOP Class/Instance UID);
* an *empty* Dataset when the peer timed out, aborted, or answered with the
  wrong kind of response (the association is then aborted);
* :class:`RuntimeError` when there is no established association, and
  :class:`ValueError` when no suitable presentation context was accepted or
  the data set cannot be encoded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import UID

from . import _sop_groups, store_scu
from . import dimse_messages as dm
from .acse import NegotiatedContext, NegotiationResult
from .datasets import decode_dataset, encode_dataset
from .errors import LocalProtocolError
from .scu_plan import NEXT, Deliver, Exchange, Plan, PlanHost, Send, SyncHost, iterate, run
from .status import code_to_category

__all__ = [
    "c_cancel",
    "c_echo",
    "c_find",
    "c_get",
    "c_move",
    "c_store",
    "cancel_plan",
    "context_for",
    "echo_plan",
    "encode_for_context",
    "find_plan",
    "get_plan",
    "move_plan",
    "n_action",
    "n_action_plan",
    "n_create",
    "n_create_plan",
    "n_delete",
    "n_delete_plan",
    "n_event_report",
    "n_event_report_plan",
    "n_get",
    "n_get_plan",
    "n_set",
    "n_set_plan",
    "status_dataset",
]

LOGGER = logging.getLogger("dicomnet.assoc")

VERIFICATION = "1.2.840.10008.1.1"

#: Status-related command elements copied into the status Dataset (PS3.7 Annex C).
_STATUS_KEYWORDS = (
    "Status",
    "ErrorComment",
    "ErrorID",
    "OffendingElement",
    "AttributeIdentifierList",
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)
#: N-service responses also name the instance acted on (e.g. the UID N-CREATE chose).
_N_STATUS_KEYWORDS = (
    "AffectedSOPClassUID",
    "AffectedSOPInstanceUID",
    "EventTypeID",
    "ActionTypeID",
)

def _models(**keys: str) -> dict[str, str]:
    return {key: _sop_groups.SOP_CLASSES[keyword] for key, keyword in keys.items()}


#: The query model keys older pynetdicom releases accepted in place of a UID (deprecated
#: there), for each service: the information models of PS3.4 C, K, Q, U, V, X, BB, HH, II.
_LEGACY_QUERY_MODELS = {
    "C-FIND": _models(
        P="PatientRootQueryRetrieveInformationModelFind",
        S="StudyRootQueryRetrieveInformationModelFind",
        O="PatientStudyOnlyQueryRetrieveInformationModelFind",
        W="ModalityWorklistInformationModelFind",
        G="GeneralRelevantPatientInformationQuery",
        B="BreastImagingRelevantPatientInformationQuery",
        C="CardiacRelevantPatientInformationQuery",
        PC="ProductCharacteristicsQuery",
        SA="SubstanceApprovalQuery",
        H="HangingProtocolInformationModelFind",
        D="DefinedProcedureProtocolInformationModelFind",
        CP="ColorPaletteQueryRetrieveInformationModelFind",
        IG="GenericImplantTemplateInformationModelFind",
        IA="ImplantAssemblyTemplateInformationModelFind",
        IT="ImplantTemplateGroupInformationModelFind",
        PA="ProtocolApprovalInformationModelFind",
    ),
    "C-GET": _models(
        P="PatientRootQueryRetrieveInformationModelGet",
        S="StudyRootQueryRetrieveInformationModelGet",
        O="PatientStudyOnlyQueryRetrieveInformationModelGet",
        C="CompositeInstanceRootRetrieveGet",
        CB="CompositeInstanceRetrieveWithoutBulkDataGet",
        H="HangingProtocolInformationModelGet",
        D="DefinedProcedureProtocolInformationModelGet",
        CP="ColorPaletteQueryRetrieveInformationModelGet",
        IG="GenericImplantTemplateInformationModelGet",
        IA="ImplantAssemblyTemplateInformationModelGet",
        IT="ImplantTemplateGroupInformationModelGet",
        PA="ProtocolApprovalInformationModelGet",
    ),
    "C-MOVE": _models(
        P="PatientRootQueryRetrieveInformationModelMove",
        S="StudyRootQueryRetrieveInformationModelMove",
        O="PatientStudyOnlyQueryRetrieveInformationModelMove",
        C="CompositeInstanceRootRetrieveMove",
        H="HangingProtocolInformationModelMove",
        D="DefinedProcedureProtocolInformationModelMove",
        CP="ColorPaletteQueryRetrieveInformationModelMove",
        IG="GenericImplantTemplateInformationModelMove",
        IA="ImplantAssemblyTemplateInformationModelMove",
        IT="ImplantTemplateGroupInformationModelMove",
        PA="ProtocolApprovalInformationModelMove",
    ),
}


# -- helpers ---------------------------------------------------------------------------------


def status_dataset(response: dm.DimseResponse) -> Dataset:
    """The status of a response as the SCU API returns it."""
    status = Dataset()
    keywords: Sequence[str] = _STATUS_KEYWORDS
    if response.message_name.startswith("N-"):
        keywords = (*_STATUS_KEYWORDS, *_N_STATUS_KEYWORDS)
    for keyword in keywords:
        value = getattr(response, keyword, None)
        if value is not None:
            setattr(status, keyword, list(value) if isinstance(value, tuple) else value)
    return status


def encode_for_context(dataset: Dataset, context: NegotiatedContext) -> bytes:
    """Encode ``dataset`` in the context's transfer syntax; ``ValueError`` when that fails."""
    try:
        return encode_dataset(dataset, str(context.transfer_syntax))
    except Exception as exc:
        raise ValueError(
            f"Failed to encode the supplied dataset in '{uid_name(context.transfer_syntax)}': {exc}"
        ) from exc


def context_for(
    negotiation: NegotiationResult,
    abstract_syntax: str,
    *,
    as_scp: bool = False,
    transfer_syntax: str | None = None,
) -> NegotiatedContext:
    """The accepted context on which we may use ``abstract_syntax`` as SCU (or SCP).

    With ``transfer_syntax``, one in that syntax if there is one, else any.

    :raises ValueError: none was accepted.
    """
    found = negotiation.find_context(
        abstract_syntax, transfer_syntax=transfer_syntax, as_scu=not as_scp, as_scp=as_scp
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


def uid_name(uid: str | None) -> str:
    if not uid:
        return ""
    name = UID(uid).name
    return name if name and name != uid else uid


def _decode(data: bytes | None, context: NegotiatedContext, what: str) -> Dataset | None:
    if data is None:
        return None
    try:
        return decode_dataset(data, str(context.transfer_syntax))
    except Exception as exc:
        LOGGER.error("Failed to decode the %s received from the peer: %s", what, exc)
        return None


def _invalid_response(assoc: PlanHost, expected: str, got: dm.DimseMessage) -> Dataset:
    LOGGER.error("Received a %s in answer to a %s: aborting", got.message_name, expected)
    assoc.abort()
    return Dataset()


def _query_model(model: str, service: str) -> str:
    legacy = _LEGACY_QUERY_MODELS[service].get(str(model))
    return legacy if legacy is not None else str(model)


def _single(
    assoc: PlanHost,
    context: NegotiatedContext,
    request: dm.DimseRequest,
    dataset: bytes | None,
    response_type: type[dm.DimseResponse],
) -> Plan[tuple[Dataset, dm.DimseResponse | None, bytes | None]]:
    """Exchange a request that has one response; ``(status, response, data)``."""
    yield Exchange(context, request, dataset)
    item = yield NEXT
    if item is None:
        return Dataset(), None, None
    response, data = item
    if not isinstance(response, response_type):
        return _invalid_response(assoc, request.message_name, response), None, None
    return status_dataset(response), response, data


# -- C-ECHO, C-STORE ---------------------------------------------------------------------------


def echo_plan(assoc: PlanHost, msg_id: int) -> Plan[Dataset]:
    """C-ECHO (PS3.7 9.1.5)."""
    assoc._check_established()
    context = assoc._context_for(VERIFICATION)
    request = dm.CEchoRQ(MessageID=assoc._next_message_id(msg_id), AffectedSOPClassUID=VERIFICATION)
    return (yield from _single(assoc, context, request, None, dm.CEchoRSP))[0]


def c_echo(assoc: SyncHost, msg_id: int) -> Dataset:
    """C-ECHO (PS3.7 9.1.5), blocking."""
    return run(assoc, echo_plan(assoc, msg_id))


def c_store(
    assoc: SyncHost,
    dataset: Any,
    msg_id: int,
    priority: int,
    originator_aet: str | None,
    originator_id: int | None,
) -> Dataset:
    """C-STORE (PS3.7 9.1.1): a Dataset, a file path or a binary file object.

    See :func:`dicomnet.store_scu.c_store`: a Part 10 file whose transfer syntax
    was accepted is streamed as it is; otherwise the data set is converted.
    """
    return store_scu.c_store(assoc, dataset, msg_id, priority, originator_aet, originator_id)


# -- C-FIND, C-GET, C-MOVE, C-CANCEL --------------------------------------------------------------


def _check_priority(priority: int) -> None:
    if priority not in (0, 1, 2):
        raise ValueError("'priority' must be 0 (medium), 1 (high) or 2 (low)")


def _query(
    assoc: PlanHost,
    service: str,
    dataset: Dataset,
    request: dm.DimseRequest,
    context: NegotiatedContext,
    response_type: type[dm.DimseResponse],
) -> Plan[None]:
    """Send the request; deliver ``(status, identifier)`` per response until the final one.

    Identifiers (PS3.7 9.1.2-9.1.4): a C-FIND's with each Pending response; a
    C-GET's or C-MOVE's with a final Warning, Failure or Cancel (its Failed SOP
    Instance UID List; an empty Dataset when the peer sent none); else ``None``.
    A caller leaving the loop before the final response cancels the operation
    (see :func:`_abandon`).
    """
    data = encode_for_context(dataset, context)
    yield Exchange(context, request, data)
    while True:
        item = yield NEXT
        if item is None:
            yield Deliver((Dataset(), None))
            return
        response, payload = item
        if not isinstance(response, response_type):
            yield Deliver((_invalid_response(assoc, request.message_name, response), None))
            return
        status = status_dataset(response)
        category = code_to_category(response.Status)
        if service == "C-FIND":
            identifier = _decode(payload, context, "identifier") if category == "Pending" else None
        else:  # C-GET/C-MOVE: a Failed SOP Instance UID List after the last sub-operation
            identifier = None
            if category in ("Warning", "Failure", "Cancel"):
                identifier = _decode(payload, context, "identifier") or Dataset()
        listening = yield Deliver((status, identifier))
        if category != "Pending":
            return
        if not listening:
            yield from _abandon(assoc, request, context)
            return


def _abandon(assoc: PlanHost, request: dm.DimseRequest, context: NegotiatedContext) -> Plan[None]:
    """The caller left the loop before the final response: cancel, and drain what is left.

    Without this the peer would go on matching (or sending sub-operations), and
    its late responses would reach the next request that reuses the Message
    ID. So a C-CANCEL-RQ is sent (PS3.7 9.3.2.3) and the responses are read and
    dropped until the final one (or a DIMSE timeout or an abort).
    """
    if not assoc.is_established:
        return
    LOGGER.info(
        "Leaving a %s before its final response: sending a C-CANCEL", request.message_name
    )
    try:
        yield Send(context.context_id, dm.CCancelRQ(MessageIDBeingRespondedTo=request.MessageID))
    except LocalProtocolError:
        return
    while True:
        item = yield NEXT
        if item is None or code_to_category(item[0].Status) != "Pending":
            return


def find_plan(
    assoc: PlanHost, dataset: Dataset, query_model: str, msg_id: int, priority: int
) -> Plan[None]:
    """C-FIND (PS3.7 9.1.2): delivers ``(status, identifier)`` until a final status."""
    assoc._check_established()
    _check_priority(priority)
    model = _query_model(query_model, "C-FIND")
    context = assoc._context_for(model)
    request = dm.CFindRQ(
        MessageID=assoc._next_message_id(msg_id), AffectedSOPClassUID=model, Priority=priority
    )
    yield from _query(assoc, "C-FIND", dataset, request, context, dm.CFindRSP)


def get_plan(
    assoc: PlanHost, dataset: Dataset, query_model: str, msg_id: int, priority: int
) -> Plan[None]:
    """C-GET (PS3.7 9.1.3): the C-STORE sub-operations arrive on this association and go to
    the handler bound to ``EVT_C_STORE``; delivers ``(status, identifier)``."""
    assoc._check_established()
    _check_priority(priority)
    model = _query_model(query_model, "C-GET")
    context = assoc._context_for(model)
    request = dm.CGetRQ(
        MessageID=assoc._next_message_id(msg_id), AffectedSOPClassUID=model, Priority=priority
    )
    yield from _query(assoc, "C-GET", dataset, request, context, dm.CGetRSP)


def move_plan(
    assoc: PlanHost,
    dataset: Dataset,
    move_aet: str | bytes,
    query_model: str,
    msg_id: int,
    priority: int,
) -> Plan[None]:
    """C-MOVE (PS3.7 9.1.4): the peer sends the matches to ``move_aet``."""
    assoc._check_established()
    _check_priority(priority)
    model = _query_model(query_model, "C-MOVE")
    context = assoc._context_for(model)
    destination = (
        move_aet.decode("ascii", "replace") if isinstance(move_aet, bytes) else str(move_aet)
    ).strip()
    if not 0 < len(destination) <= 16 or "\\" in destination or not destination.isprintable():
        raise ValueError(
            f"Invalid move destination {move_aet!r}: an AE title of 1 to 16 characters, "
            "no backslash or control characters (PS3.5 Table 6.2-1, AE)"
        )
    request = dm.CMoveRQ(
        MessageID=assoc._next_message_id(msg_id),
        AffectedSOPClassUID=model,
        Priority=priority,
        MoveDestination=destination,
    )
    yield from _query(assoc, "C-MOVE", dataset, request, context, dm.CMoveRSP)


def cancel_plan(
    assoc: PlanHost, msg_id: int, context_id: int | None, query_model: str | None
) -> Plan[None]:
    """C-CANCEL (PS3.7 9.3.2.3) for the C-FIND, C-GET or C-MOVE with ``msg_id``."""
    assoc._check_established()
    if not 0 <= msg_id <= 0xFFFF:
        raise ValueError("'msg_id' must be between 0 and 65535, inclusive")
    if context_id is None:
        if query_model is None:
            raise ValueError("'context_id' or 'query_model' is required")
        context_id = assoc._context_for(str(query_model)).context_id
    yield Send(context_id, dm.CCancelRQ(MessageIDBeingRespondedTo=msg_id))


def c_find(
    assoc: SyncHost, dataset: Dataset, query_model: str, msg_id: int, priority: int
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-FIND, blocking: a generator, as in pynetdicom (the checks run at the first
    ``next()``); leaving it early cancels the query."""
    return iterate(assoc, find_plan(assoc, dataset, query_model, msg_id, priority))


def c_get(
    assoc: SyncHost, dataset: Dataset, query_model: str, msg_id: int, priority: int
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-GET, blocking: a generator (see :func:`c_find`)."""
    return iterate(assoc, get_plan(assoc, dataset, query_model, msg_id, priority))


def c_move(
    assoc: SyncHost,
    dataset: Dataset,
    move_aet: str | bytes,
    query_model: str,
    msg_id: int,
    priority: int,
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-MOVE, blocking: a generator (see :func:`c_find`)."""
    return iterate(assoc, move_plan(assoc, dataset, move_aet, query_model, msg_id, priority))


def c_cancel(
    assoc: SyncHost, msg_id: int, context_id: int | None, query_model: str | None
) -> None:
    """C-CANCEL, blocking."""
    run(assoc, cancel_plan(assoc, msg_id, context_id, query_model))


# -- N-services ---------------------------------------------------------------------------------

#: Processing failure (PS3.7 C.5.x), reported in place of a Success or Warning whose reply
#: could not be decoded, as pynetdicom does: the caller gets no reply data set to trust.
_PROCESSING_FAILURE = 0x0110


_UPS = {
    key: _sop_groups.SOP_CLASSES[f"UnifiedProcedureStep{key}"]
    for key in ("Push", "Pull", "Watch", "Event", "Query")
}
#: PS3.4 CC.3.1: every UPS instance is an instance of the UPS Push SOP Class, so the N-services
#: name UPS Push as their SOP class; they may go out on a context negotiated for another UPS
#: SOP class (CC.3.1.1) when there is none for UPS Push (pynetdicom's order of preference)
_UPS_ALTERNATIVES = (_UPS["Pull"], _UPS["Watch"], _UPS["Event"], _UPS["Query"])
#: an N-EVENT-REPORT belongs to the UPS Event SOP class (PS3.4 Table CC.2-4): tried first
_UPS_REPORT_CONTEXTS = (_UPS["Event"], _UPS["Push"], _UPS["Watch"], _UPS["Pull"], _UPS["Query"])


def _n_context(assoc: PlanHost, abstract_syntax: str) -> NegotiatedContext:
    """The context on which we may send an N-request for ``abstract_syntax`` as SCU.

    For the UPS Push SOP class, any UPS context will do (see :data:`_UPS_ALTERNATIVES`).
    """
    try:
        return assoc._context_for(abstract_syntax)
    except ValueError:
        if abstract_syntax != _UPS["Push"]:
            raise
        negotiation = assoc.negotiation
        assert negotiation is not None
        for alternative in _UPS_ALTERNATIVES:
            found = negotiation.find_context(alternative, as_scu=True)
            if found is not None:
                return found
        raise


def _notify_context(assoc: PlanHost, abstract_syntax: str) -> NegotiatedContext:
    """The context an N-EVENT-REPORT goes out on (PS3.7 10.1.1).

    An N-EVENT-REPORT is invoked by the SCP of the SOP class to notify its SCU, on
    the association on which it serves the SCU (we are then its acceptor, and SCU is
    the requestor's default role) or on one it opens itself, proposing the SCP role
    for the requestor through SCP/SCU Role Selection (PS3.7 D.3.3.4; PS3.4 J.3.3.1.3).
    Many peers negotiate no roles for that association at all, so a context on which
    we are SCP is preferred and any accepted context of the SOP class is taken
    otherwise, as pynetdicom does. A report on a UPS (SOP class UPS Push) goes on a
    UPS Event context if there is one, else on any UPS context (PS3.4 CC.3.1.1).
    """
    negotiation = assoc.negotiation
    assert negotiation is not None  # established
    candidates = _UPS_REPORT_CONTEXTS if abstract_syntax == _UPS["Push"] else (abstract_syntax,)
    found = None
    for uid in candidates:
        found = negotiation.find_context(uid, as_scp=True) or negotiation.find_context(uid)
        if found is not None:
            break
    if found is None:
        raise ValueError(
            f"No presentation context for '{uid_name(abstract_syntax)}' has been accepted "
            "by the peer for the association"
        )
    return found


def _n_exchange(
    assoc: PlanHost,
    context: NegotiatedContext,
    request: dm.DimseRequest,
    dataset: Dataset | None,
    response_type: type[dm.DimseResponse],
) -> Plan[tuple[Dataset, Dataset | None]]:
    """Send an N-request; ``(status, reply)`` as ``send_n_*`` documents (PS3.7 10.1).

    ``reply`` is the response's data set (Attribute List, Action Reply, Event
    Reply) when the status is Success or Warning -- an empty Dataset when the peer
    sent none -- and ``None`` otherwise. A reply that cannot be decoded turns the
    status into 0110H *Processing failure* (with the peer's status in the log).
    """
    data = None if dataset is None else encode_for_context(dataset, context)
    status, response, payload = yield from _single(assoc, context, request, data, response_type)
    if response is None or code_to_category(response.Status) not in ("Success", "Warning"):
        return status, None
    if payload is None:
        return status, Dataset()
    reply = _decode_whole(payload, context, f"data set of the {response.message_name}")
    if reply is None:
        LOGGER.error(
            "The peer answered the %s with status 0x%04X and a data set that cannot be "
            "decoded: returning 0x%04X (processing failure)",
            request.message_name, response.Status, _PROCESSING_FAILURE,
        )
        status.Status = _PROCESSING_FAILURE
    return status, reply


def _decode_whole(data: bytes, context: NegotiatedContext, what: str) -> Dataset | None:
    """Decode an N-service data set with every element converted now (pydicom converts on
    first access), so that a broken one is found here, not in the caller's hands."""
    try:
        ds = decode_dataset(data, str(context.transfer_syntax))
        ds.walk(lambda _ds, _elem: None)
    except Exception as exc:
        LOGGER.error("Failed to decode the %s received from the peer: %s", what, exc)
        return None
    return ds


def n_action_plan(
    assoc: PlanHost,
    dataset: Dataset | None,
    action_type: int,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> Plan[tuple[Dataset, Dataset | None]]:
    """N-ACTION (PS3.7 10.1.4): ``(status, action_reply)``.

    ``dataset`` is the Action Information (or ``None``); ``meta_uid`` names the
    Meta SOP Class of the presentation context when the SOP class is one of its
    members (Print Management, PS3.4 H).
    """
    assoc._check_established()
    context = _n_context(assoc, str(meta_uid or class_uid))
    request = dm.NActionRQ(
        MessageID=assoc._next_message_id(msg_id),
        RequestedSOPClassUID=str(class_uid),
        RequestedSOPInstanceUID=str(instance_uid),
        ActionTypeID=_us(action_type, "action_type"),
    )
    return (yield from _n_exchange(assoc, context, request, dataset, dm.NActionRSP))


def n_create_plan(
    assoc: PlanHost,
    dataset: Dataset | None,
    class_uid: str,
    instance_uid: str | None,
    msg_id: int,
    meta_uid: str | None,
) -> Plan[tuple[Dataset, Dataset | None]]:
    """N-CREATE (PS3.7 10.1.5): ``(status, attribute_list)``.

    Without ``instance_uid`` the SCP chooses the SOP Instance UID and returns it
    in the response's Affected SOP Instance UID, which the status data set holds
    (PS3.7 10.1.5.1.4).
    """
    assoc._check_established()
    context = _n_context(assoc, str(meta_uid or class_uid))
    request = dm.NCreateRQ(
        MessageID=assoc._next_message_id(msg_id),
        AffectedSOPClassUID=str(class_uid),
        AffectedSOPInstanceUID=str(instance_uid) if instance_uid else None,
    )
    return (yield from _n_exchange(assoc, context, request, dataset, dm.NCreateRSP))


def n_delete_plan(
    assoc: PlanHost, class_uid: str, instance_uid: str, msg_id: int, meta_uid: str | None
) -> Plan[Dataset]:
    """N-DELETE (PS3.7 10.1.6): the status."""
    assoc._check_established()
    context = _n_context(assoc, str(meta_uid or class_uid))
    request = dm.NDeleteRQ(
        MessageID=assoc._next_message_id(msg_id),
        RequestedSOPClassUID=str(class_uid),
        RequestedSOPInstanceUID=str(instance_uid),
    )
    return (yield from _single(assoc, context, request, None, dm.NDeleteRSP))[0]


def n_event_report_plan(
    assoc: PlanHost,
    dataset: Dataset | None,
    event_type: int,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> Plan[tuple[Dataset, Dataset | None]]:
    """N-EVENT-REPORT (PS3.7 10.1.1): ``(status, event_reply)``.

    Sent by the SCP of the SOP class, so the context is found whatever the
    negotiated roles (see :func:`_notify_context`).
    """
    assoc._check_established()
    context = _notify_context(assoc, str(meta_uid or class_uid))
    request = dm.NEventReportRQ(
        MessageID=assoc._next_message_id(msg_id),
        AffectedSOPClassUID=str(class_uid),
        AffectedSOPInstanceUID=str(instance_uid),
        EventTypeID=_us(event_type, "event_type"),
    )
    return (yield from _n_exchange(assoc, context, request, dataset, dm.NEventReportRSP))


def n_get_plan(
    assoc: PlanHost,
    identifier_list: Sequence[Any] | None,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> Plan[tuple[Dataset, Dataset | None]]:
    """N-GET (PS3.7 10.1.2): ``(status, attribute_list)``.

    An empty ``identifier_list`` asks for every attribute (PS3.7 10.1.2.1.3).
    """
    assoc._check_established()
    try:
        tags = tuple(int(Tag(t)) for t in identifier_list or ())
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"'identifier_list' must hold data element tags: {exc}") from None
    context = _n_context(assoc, str(meta_uid or class_uid))
    request = dm.NGetRQ(
        MessageID=assoc._next_message_id(msg_id),
        RequestedSOPClassUID=str(class_uid),
        RequestedSOPInstanceUID=str(instance_uid),
        AttributeIdentifierList=tags or None,
    )
    return (yield from _n_exchange(assoc, context, request, None, dm.NGetRSP))


def n_set_plan(
    assoc: PlanHost,
    dataset: Dataset,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> Plan[tuple[Dataset, Dataset | None]]:
    """N-SET (PS3.7 10.1.3): ``(status, attribute_list)``; ``dataset`` is the Modification
    List, which PS3.7 Table 10.3-5 makes mandatory."""
    assoc._check_established()
    if not isinstance(dataset, Dataset):
        raise ValueError("an N-SET needs its Modification List as a pydicom Dataset")
    context = _n_context(assoc, str(meta_uid or class_uid))
    request = dm.NSetRQ(
        MessageID=assoc._next_message_id(msg_id),
        RequestedSOPClassUID=str(class_uid),
        RequestedSOPInstanceUID=str(instance_uid),
    )
    return (yield from _n_exchange(assoc, context, request, dataset, dm.NSetRSP))


# -- the blocking N-services (the threaded association) -------------------------------------------


def n_action(
    assoc: SyncHost,
    dataset: Dataset | None,
    action_type: int,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-ACTION, blocking: see :func:`n_action_plan`."""
    return run(
        assoc, n_action_plan(assoc, dataset, action_type, class_uid, instance_uid, msg_id, meta_uid)
    )


def n_create(
    assoc: SyncHost,
    dataset: Dataset | None,
    class_uid: str,
    instance_uid: str | None,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-CREATE, blocking: see :func:`n_create_plan`."""
    return run(assoc, n_create_plan(assoc, dataset, class_uid, instance_uid, msg_id, meta_uid))


def n_delete(
    assoc: SyncHost, class_uid: str, instance_uid: str, msg_id: int, meta_uid: str | None
) -> Dataset:
    """N-DELETE, blocking: see :func:`n_delete_plan`."""
    return run(assoc, n_delete_plan(assoc, class_uid, instance_uid, msg_id, meta_uid))


def n_event_report(
    assoc: SyncHost,
    dataset: Dataset | None,
    event_type: int,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-EVENT-REPORT, blocking: see :func:`n_event_report_plan`."""
    return run(
        assoc,
        n_event_report_plan(assoc, dataset, event_type, class_uid, instance_uid, msg_id, meta_uid),
    )


def n_get(
    assoc: SyncHost,
    identifier_list: Sequence[Any] | None,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-GET, blocking: see :func:`n_get_plan`."""
    return run(assoc, n_get_plan(assoc, identifier_list, class_uid, instance_uid, msg_id, meta_uid))


def n_set(
    assoc: SyncHost,
    dataset: Dataset,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-SET, blocking: see :func:`n_set_plan`."""
    return run(assoc, n_set_plan(assoc, dataset, class_uid, instance_uid, msg_id, meta_uid))


def _us(value: int, name: str) -> int:
    """An US command value (Action/Event Type ID, PS3.7 Table E.1-1): ``ValueError`` if not."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ValueError(f"'{name}' must be an int between 0 and 65535, not {value!r}")
    return int(value)
