"""The DIMSE service user: what ``Association.send_c_*`` and ``send_n_*`` do (PS3.7 9, 10).

Each function validates its arguments the way pynetdicom documents, picks the
accepted presentation context, sends the request and turns the response into
the documented return value:

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
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import UID

from . import dimse_messages as dm
from .acse import NegotiatedContext
from .datasets import decode_dataset, encode_dataset
from .status import code_to_category

if TYPE_CHECKING:  # pragma: no cover
    from .association import Association

__all__ = [
    "c_cancel",
    "c_echo",
    "c_find",
    "c_get",
    "c_move",
    "c_store",
    "encode_for_context",
    "n_action",
    "n_create",
    "n_delete",
    "n_event_report",
    "n_get",
    "n_set",
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

#: The single-letter query model keys older pynetdicom releases accepted.
_LEGACY_QUERY_MODELS = {
    "C-FIND": {
        "P": "1.2.840.10008.5.1.4.1.2.1.1",
        "S": "1.2.840.10008.5.1.4.1.2.2.1",
        "O": "1.2.840.10008.5.1.4.1.2.3.1",
        "W": "1.2.840.10008.5.1.4.31",
    },
    "C-GET": {
        "P": "1.2.840.10008.5.1.4.1.2.1.3",
        "S": "1.2.840.10008.5.1.4.1.2.2.3",
        "O": "1.2.840.10008.5.1.4.1.2.3.3",
        "C": "1.2.840.10008.5.1.4.1.2.4.3",
        "CB": "1.2.840.10008.5.1.4.1.2.5.3",
    },
    "C-MOVE": {
        "P": "1.2.840.10008.5.1.4.1.2.1.2",
        "S": "1.2.840.10008.5.1.4.1.2.2.2",
        "O": "1.2.840.10008.5.1.4.1.2.3.2",
        "C": "1.2.840.10008.5.1.4.1.2.4.2",
    },
}

_UNCOMPRESSED = (
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
)


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


def _invalid_response(assoc: Association, expected: str, got: dm.DimseMessage) -> Dataset:
    LOGGER.error("Received a %s in answer to a %s: aborting", got.message_name, expected)
    assoc.abort()
    return Dataset()


def _query_model(model: str, service: str) -> str:
    legacy = _LEGACY_QUERY_MODELS[service].get(str(model))
    return legacy if legacy is not None else str(model)


def _single(
    assoc: Association,
    context: NegotiatedContext,
    request: dm.DimseRequest,
    dataset: bytes | None,
    response_type: type[dm.DimseResponse],
) -> tuple[Dataset, dm.DimseResponse | None, bytes | None]:
    """Exchange a request that has one response; ``(status, response, data)``."""
    for item in assoc._exchange(context, request, dataset):
        if item is None:
            return Dataset(), None, None
        response, data = item
        if not isinstance(response, response_type):
            return _invalid_response(assoc, request.message_name, response), None, None
        return status_dataset(response), response, data
    return Dataset(), None, None


# -- C-ECHO, C-STORE ---------------------------------------------------------------------------


def c_echo(assoc: Association, msg_id: int) -> Dataset:
    """C-ECHO (PS3.7 9.1.5)."""
    assoc._check_established()
    context = assoc._context_for(VERIFICATION)
    request = dm.CEchoRQ(MessageID=assoc._next_message_id(msg_id), AffectedSOPClassUID=VERIFICATION)
    return _single(assoc, context, request, None, dm.CEchoRSP)[0]


def _store_context(assoc: Association, dataset: Dataset) -> tuple[NegotiatedContext, bytes]:
    """Choose the context for a data set and encode it (PS3.7 9.1.1; PS3.5 10)."""
    sop_class = str(dataset.SOPClassUID)
    meta = getattr(dataset, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if syntax is None:
        implicit = getattr(dataset, "is_implicit_VR", None)
        little = getattr(dataset, "is_little_endian", None)
        if implicit is None and getattr(dataset, "original_encoding", None):
            implicit, little = dataset.original_encoding
        if implicit is not None:
            syntax = (
                "1.2.840.10008.1.2"
                if implicit
                else "1.2.840.10008.1.2.1"
                if little is not False
                else "1.2.840.10008.1.2.2"
            )
    negotiation = assoc._negotiation
    assert negotiation is not None
    context = negotiation.find_context(sop_class, transfer_syntax=syntax, as_scu=True)
    if context is None and (syntax is None or str(syntax) in _UNCOMPRESSED):
        # an uncompressed data set converts to any other uncompressed syntax
        context = next(
            (
                cx
                for cx in negotiation.accepted_contexts
                if cx.abstract_syntax == sop_class
                and cx.as_scu
                and cx.transfer_syntax in _UNCOMPRESSED
            ),
            None,
        )
    if context is None:
        offered = sorted(
            {
                uid_name(cx.transfer_syntax)
                for cx in negotiation.accepted_contexts
                if cx.abstract_syntax == sop_class
            }
        )
        raise ValueError(
            f"No presentation context for '{uid_name(sop_class)}' has been accepted by the "
            f"peer for the '{uid_name(syntax)}' transfer syntax"
            + (f"; accepted: {', '.join(offered)}" if offered else "")
        )
    return context, encode_for_context(dataset, context)


def c_store(
    assoc: Association,
    dataset: Dataset,
    msg_id: int,
    priority: int,
    originator_aet: str | None,
    originator_id: int | None,
) -> Dataset:
    """C-STORE (PS3.7 9.1.1)."""
    assoc._check_established()
    if priority not in (0, 1, 2):
        raise ValueError("'priority' must be 0, 1 or 2")
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        if keyword not in dataset:
            raise AttributeError(f"The dataset to be sent is missing the '{keyword}' element")
    context, data = _store_context(assoc, dataset)
    request = dm.CStoreRQ(
        MessageID=assoc._next_message_id(msg_id),
        AffectedSOPClassUID=str(dataset.SOPClassUID),
        AffectedSOPInstanceUID=str(dataset.SOPInstanceUID),
        Priority=priority,
        MoveOriginatorApplicationEntityTitle=originator_aet,
        MoveOriginatorMessageID=originator_id,
    )
    return _single(assoc, context, request, data, dm.CStoreRSP)[0]


# -- C-FIND, C-GET, C-MOVE, C-CANCEL --------------------------------------------------------------


def _query(
    assoc: Association,
    service: str,
    dataset: Dataset,
    query_model: str,
    request: dm.DimseRequest,
    context: NegotiatedContext,
    response_type: type[dm.DimseResponse],
) -> Iterator[tuple[Dataset, Dataset | None]]:
    data = encode_for_context(dataset, context)
    for item in assoc._exchange(context, request, data):
        if item is None:
            yield Dataset(), None
            return
        response, payload = item
        if not isinstance(response, response_type):
            yield _invalid_response(assoc, request.message_name, response), None
            return
        status = status_dataset(response)
        category = code_to_category(response.Status)
        if service == "C-FIND":
            identifier = _decode(payload, context, "identifier") if category == "Pending" else None
        else:  # C-GET/C-MOVE: a Failed SOP Instance UID List after the last sub-operation
            identifier = None
            if category in ("Warning", "Failure", "Cancel"):
                identifier = _decode(payload, context, "identifier") or Dataset()
        yield status, identifier


def c_find(
    assoc: Association, dataset: Dataset, query_model: str, msg_id: int, priority: int
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-FIND (PS3.7 9.1.2): yields ``(status, identifier)`` until a final status.

    A generator, as in pynetdicom: the checks run at the first ``next()``.
    """
    assoc._check_established()
    model = _query_model(query_model, "C-FIND")
    context = assoc._context_for(model)
    request = dm.CFindRQ(
        MessageID=assoc._next_message_id(msg_id), AffectedSOPClassUID=model, Priority=priority
    )
    yield from _query(assoc, "C-FIND", dataset, model, request, context, dm.CFindRSP)


def c_get(
    assoc: Association, dataset: Dataset, query_model: str, msg_id: int, priority: int
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-GET (PS3.7 9.1.3): the C-STORE sub-operations arrive on this association and go to
    the handler bound to ``EVT_C_STORE``; yields ``(status, identifier)``."""
    assoc._check_established()
    model = _query_model(query_model, "C-GET")
    context = assoc._context_for(model)
    request = dm.CGetRQ(
        MessageID=assoc._next_message_id(msg_id), AffectedSOPClassUID=model, Priority=priority
    )
    yield from _query(assoc, "C-GET", dataset, model, request, context, dm.CGetRSP)


def c_move(
    assoc: Association,
    dataset: Dataset,
    move_aet: str | bytes,
    query_model: str,
    msg_id: int,
    priority: int,
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-MOVE (PS3.7 9.1.4): the peer sends the matches to ``move_aet``."""
    assoc._check_established()
    model = _query_model(query_model, "C-MOVE")
    context = assoc._context_for(model)
    destination = move_aet.decode("ascii") if isinstance(move_aet, bytes) else str(move_aet)
    request = dm.CMoveRQ(
        MessageID=assoc._next_message_id(msg_id),
        AffectedSOPClassUID=model,
        Priority=priority,
        MoveDestination=destination.strip(),
    )
    yield from _query(assoc, "C-MOVE", dataset, model, request, context, dm.CMoveRSP)


def c_cancel(
    assoc: Association, msg_id: int, context_id: int | None, query_model: str | None
) -> None:
    """C-CANCEL (PS3.7 9.3.2.3) for the C-FIND, C-GET or C-MOVE with ``msg_id``."""
    assoc._check_established()
    if not 0 <= msg_id <= 0xFFFF:
        raise ValueError("'msg_id' must be between 0 and 65535, inclusive")
    if context_id is None:
        if query_model is None:
            raise ValueError("'context_id' or 'query_model' is required")
        context_id = assoc._context_for(str(query_model)).context_id
    assoc._send_message(context_id, dm.CCancelRQ(MessageIDBeingRespondedTo=msg_id), None)


# -- N-services ---------------------------------------------------------------------------------


def _n_exchange(
    assoc: Association,
    abstract_syntax: str,
    request: dm.DimseRequest,
    dataset: Dataset | None,
    response_type: type[dm.DimseResponse],
) -> tuple[Dataset, Dataset | None]:
    context = assoc._context_for(abstract_syntax)
    data = None if dataset is None else encode_for_context(dataset, context)
    status, response, payload = _single(assoc, context, request, data, response_type)
    if response is None or code_to_category(response.Status) not in ("Success", "Warning"):
        return status, None
    reply = _decode(payload, context, "reply") if payload is not None else Dataset()
    return status, reply


def n_action(
    assoc: Association,
    dataset: Dataset | None,
    action_type: int,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-ACTION (PS3.7 10.1.4)."""
    assoc._check_established()
    request = dm.NActionRQ(
        MessageID=assoc._next_message_id(msg_id),
        RequestedSOPClassUID=str(class_uid),
        RequestedSOPInstanceUID=str(instance_uid),
        ActionTypeID=action_type,
    )
    return _n_exchange(assoc, str(meta_uid or class_uid), request, dataset, dm.NActionRSP)


def n_create(
    assoc: Association,
    dataset: Dataset | None,
    class_uid: str,
    instance_uid: str | None,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-CREATE (PS3.7 10.1.5)."""
    assoc._check_established()
    request = dm.NCreateRQ(
        MessageID=assoc._next_message_id(msg_id),
        AffectedSOPClassUID=str(class_uid),
        AffectedSOPInstanceUID=None if instance_uid is None else str(instance_uid),
    )
    return _n_exchange(assoc, str(meta_uid or class_uid), request, dataset, dm.NCreateRSP)


def n_delete(
    assoc: Association, class_uid: str, instance_uid: str, msg_id: int, meta_uid: str | None
) -> Dataset:
    """N-DELETE (PS3.7 10.1.6)."""
    assoc._check_established()
    request = dm.NDeleteRQ(
        MessageID=assoc._next_message_id(msg_id),
        RequestedSOPClassUID=str(class_uid),
        RequestedSOPInstanceUID=str(instance_uid),
    )
    context = assoc._context_for(str(meta_uid or class_uid))
    return _single(assoc, context, request, None, dm.NDeleteRSP)[0]


def n_event_report(
    assoc: Association,
    dataset: Dataset | None,
    event_type: int,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-EVENT-REPORT (PS3.7 10.1.1)."""
    assoc._check_established()
    request = dm.NEventReportRQ(
        MessageID=assoc._next_message_id(msg_id),
        AffectedSOPClassUID=str(class_uid),
        AffectedSOPInstanceUID=str(instance_uid),
        EventTypeID=event_type,
    )
    return _n_exchange(assoc, str(meta_uid or class_uid), request, dataset, dm.NEventReportRSP)


def n_get(
    assoc: Association,
    identifier_list: Sequence[Any],
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-GET (PS3.7 10.1.2)."""
    assoc._check_established()
    tags = tuple(int(Tag(t)) for t in identifier_list or ())
    request = dm.NGetRQ(
        MessageID=assoc._next_message_id(msg_id),
        RequestedSOPClassUID=str(class_uid),
        RequestedSOPInstanceUID=str(instance_uid),
        AttributeIdentifierList=tags or None,
    )
    return _n_exchange(assoc, str(meta_uid or class_uid), request, None, dm.NGetRSP)


def n_set(
    assoc: Association,
    dataset: Dataset,
    class_uid: str,
    instance_uid: str,
    msg_id: int,
    meta_uid: str | None,
) -> tuple[Dataset, Dataset | None]:
    """N-SET (PS3.7 10.1.3)."""
    assoc._check_established()
    request = dm.NSetRQ(
        MessageID=assoc._next_message_id(msg_id),
        RequestedSOPClassUID=str(class_uid),
        RequestedSOPInstanceUID=str(instance_uid),
    )
    return _n_exchange(assoc, str(meta_uid or class_uid), request, dataset, dm.NSetRSP)
