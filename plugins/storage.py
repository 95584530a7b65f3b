"""The Storage service class (PS3.4 Annex B) and Non-Patient Object Storage (Annex GG): C-STORE.

An SCU sends a C-STORE-RQ (PS3.7 9.1.1) with the instance's data set on a
presentation context for its SOP class; the SCP answers with a C-STORE-RSP
once it has stored the instance -- or with a failure.

**Receiving without decoding.** Both service classes declare a
``dataset_sink`` (:func:`storage_sink`): the data set of a C-STORE-RQ is kept
in memory while it is small and written to a Part 10 file as it arrives once
it is larger than the AE's ``spool_threshold`` (default 8 MiB; ``0``: always a
file, ``None``: never), in ``spool_directory``. It is never decoded on the way:
a handler that only stores the instance (``event.store(directory)``) costs no
decoding at all, and memory does not grow with the size of the object.

**Flushing.** The sink starts the write-back of a spooled data set while it
arrives, so that the flush of a handler that stores durably waits for the
tail only. A handler that stores *without* flushing says so with an
attribute ``fsync = False`` (``dicomnet.contrib.receive.StoreInDirectory(...,
fsync=False)``, what ``dicomnet receive --no-fsync`` binds): the sink then
leaves write-back to the kernel and the receive path makes no system call for
it. Any other handler (a plain function) gets the write-back.

**The SCP** (:func:`storage_scp`), for each request:

1. checks what can be checked without decoding (PS3.7 9.1.1.1); a request
   that fails a check is refused and the handler is not called:

   * the Affected SOP Class UID is not the context's abstract syntax:
     0122H *Refused: SOP Class not supported* -- that class was not
     negotiated on this context (PS3.7 C.5.3);
   * an Affected SOP Instance UID too long to be written in the File Meta
     Information (more than 65534 characters): 0117H *Invalid SOP instance*;
   * no data set came with the request: A900H *Error: data set does not match
     SOP class* (a C-STORE-RQ's data set is mandatory, PS3.7 Table 9.3-1);
   * the data set could not be written as it arrived (disk full...): A700H
     *Refused: out of resources* (PS3.4 B.2.3);

2. triggers ``EVT_C_STORE`` with pynetdicom's contract: the handler gets
   ``event.request``, ``event.context``, ``event.dataset`` (decoded on first
   access), ``event.file_meta``, ``event.encoded_dataset()``, and in dicomnet
   also ``event.dataset_path`` and ``event.store(directory)``; it returns a
   status, an ``int`` or a data set with Status (0000,0900) and optionally
   Error Comment...;

3. answers with a C-STORE-RSP carrying the Affected SOP Class and Instance
   UIDs of the request (each only if it is a valid UI value: at most 64
   characters; PS3.7 Table 9.3-2 makes both optional) and the status. The
   response is sent only after the handler has returned, so a handler that
   stores the instance durably before returning Success never acknowledges
   an instance that is not on disk.

Failures of the application (codes in the Cxxx range PS3.4 B.2.3 leaves to
the implementation, the same as pynetdicom's so that tools reading them
agree):

=========  ==============================================================
C211H      the ``EVT_C_STORE`` handler raised (logged with its traceback)
C001H      the handler returned a status data set without Status
C002H      the handler returned something that is not a status
0122H      **no handler is bound** to ``EVT_C_STORE``: nothing would store
           the instance, so the SCP says it does not support the SOP
           class rather than claim Success (pynetdicom answers C211H)
=========  ==============================================================

Retired storage SOP classes are claimed too (so that an SCP *can* receive
them), but an AE accepts only the contexts it supports: add them with
``retired=True`` in :func:`add_storage_contexts` (``dicomnet receive
--accept-retired``).

The SCU side is ``Association.send_c_store``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from dicomnet import _sop_groups
from dicomnet.dimse_messages import CStoreRQ, CStoreRSP
from dicomnet.events import EVT_C_STORE, NoHandlerBound
from dicomnet.hookspecs import hookimpl
from dicomnet.service import (
    AcceptedContext,
    DatasetSink,
    InvalidHandlerResult,
    ServiceCall,
    ServiceClass,
    handler_failure,
    status_from_handler_result,
)
from dicomnet.service_provider import file_meta_info
from dicomnet.spool import DiscardSink, SpoolFailure, SpoolSink
from dicomnet.status import NON_PATIENT_SERVICE_CLASS_STATUS, STORAGE_SERVICE_CLASS_STATUS

from ._handler_status import with_handler_status

if TYPE_CHECKING:  # pragma: no cover
    from dicomnet.ae import ApplicationEntity
    from dicomnet.dimse_messages import DimseRequest

__all__ = [
    "COMMON_TRANSFER_SYNTAXES",
    "DATASET_MISSING",
    "HANDLER_EXCEPTION",
    "HANDLER_INVALID_STATUS",
    "HANDLER_STATUS_WITHOUT_STATUS",
    "INVALID_SOP_INSTANCE",
    "NON_PATIENT_OBJECT_STORAGE",
    "NO_HANDLER",
    "OUT_OF_RESOURCES",
    "SOP_CLASS_NOT_SUPPORTED",
    "STORAGE",
    "add_storage_contexts",
    "dicomnet_service_classes",
    "storage_scp",
    "storage_sink",
    "storage_sop_classes",
]

LOGGER = logging.getLogger("dicomnet.assoc")

#: the EVT_C_STORE handler raised (PS3.4 B.2.3 "Cannot understand" range; pynetdicom's code)
HANDLER_EXCEPTION = 0xC211
#: the handler returned a status data set without (0000,0900) Status (pynetdicom's code)
HANDLER_STATUS_WITHOUT_STATUS = 0xC001
#: the handler returned something that is not a status (pynetdicom's code)
HANDLER_INVALID_STATUS = 0xC002
#: Refused: SOP Class not supported (PS3.7 C.5.3): class not negotiated on the context
SOP_CLASS_NOT_SUPPORTED = 0x0122
#: no handler bound to EVT_C_STORE (see the module docstring)
NO_HANDLER = SOP_CLASS_NOT_SUPPORTED
#: Invalid SOP instance (PS3.7 C.5.x): an Affected SOP Instance UID that cannot be stored
INVALID_SOP_INSTANCE = 0x0117
#: Error: data set does not match SOP class (PS3.4 B.2.3): no data set at all
DATASET_MISSING = 0xA900
#: Refused: out of resources (PS3.4 B.2.3): the data set could not be written
OUT_OF_RESOURCES = 0xA700

#: the longest value the File Meta Information can hold (a 16-bit length, padded even)
_MAX_META_VALUE = 0xFFFE
#: the longest UID a response may carry (PS3.5 9.1)
_MAX_UID = 64

#: uncompressed and the common compressed transfer syntaxes (PS3.5 Annex A), what
#: ``dicomnet receive`` accepts: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000,
#: RLE, MPEG-2/4 and HEVC video, deflate. The data set is stored as it arrives.
COMMON_TRANSFER_SYNTAXES: tuple[str, ...] = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.100",  # MPEG2 Main Profile / Main Level
    "1.2.840.10008.1.2.4.101",  # MPEG2 Main Profile / High Level
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 High Profile
    "1.2.840.10008.1.2.4.103",  # MPEG-4 AVC/H.264 BD-compatible
    "1.2.840.10008.1.2.4.104",  # MPEG-4 AVC/H.264 for 2D video
    "1.2.840.10008.1.2.4.105",  # MPEG-4 AVC/H.264 for 3D video
    "1.2.840.10008.1.2.4.106",  # MPEG-4 AVC/H.264 Stereo
    "1.2.840.10008.1.2.4.107",  # HEVC/H.265 Main Profile
    "1.2.840.10008.1.2.4.108",  # HEVC/H.265 Main 10 Profile
    "1.2.840.10008.1.2.1.98",  # Encapsulated Uncompressed Explicit VR Little Endian
)


# -- checks without decoding ------------------------------------------------------------------


def _refusal(request: Any, context: AcceptedContext) -> tuple[int, str, str] | None:
    """``(status, Error Comment, log detail)`` if the request must be refused unheard."""
    sop_class = request.AffectedSOPClassUID
    if sop_class != str(context.abstract_syntax):
        return (
            SOP_CLASS_NOT_SUPPORTED,
            "Affected SOP Class UID is not the context's abstract syntax",
            f"Affected SOP Class UID {_shown(sop_class)} is not the abstract syntax "
            f"{context.abstract_syntax} of presentation context {context.context_id}",
        )
    if len(request.AffectedSOPInstanceUID or "") > _MAX_META_VALUE:
        reason = "Affected SOP Instance UID too long to be stored"
        return INVALID_SOP_INSTANCE, reason, reason
    return None


def _shown(uid: str | None) -> str:
    text = repr(uid)
    return text if len(text) <= 80 else text[:77] + "..."


def _echoed(uid: str | None) -> str | None:
    """A request's UID for the response, if it is a valid UI value (else left out)."""
    return uid if uid is not None and len(uid) <= _MAX_UID else None


# -- the data set sink ------------------------------------------------------------------------


def storage_sink(assoc: Any, context: AcceptedContext, request: DimseRequest) -> DatasetSink | None:
    """Where a C-STORE-RQ's data set goes, as it arrives (``ServiceClass.dataset_sink``).

    A :class:`~dicomnet.spool.SpoolSink` with the AE's ``spool_threshold`` and
    ``spool_directory`` (``None`` -- collect in memory -- when the threshold is
    ``None``), starting write-back early unless the ``EVT_C_STORE`` handler
    has ``fsync = False``; or a :class:`~dicomnet.spool.DiscardSink` for a
    request that will be refused anyway.
    """
    if _refusal(request, context) is not None:
        return DiscardSink()
    ae = assoc.ae
    threshold = ae.spool_threshold
    if threshold is None:
        return None
    meta = file_meta_info(assoc, str(context.transfer_syntax), request)
    return SpoolSink(meta, ae.spool_directory, threshold, writeback=_handler_flushes(assoc))


def _handler_flushes(assoc: Any) -> bool:
    """Whether the ``EVT_C_STORE`` handler may flush what it stores (unless it says not)."""
    bound = assoc._handlers.intervention_handler(EVT_C_STORE)
    return bound is None or getattr(bound[0], "fsync", True) is not False


# -- the SCP ----------------------------------------------------------------------------------


def _status_detail(status: int, comment: str) -> Dataset:
    detail = Dataset()
    detail.Status = status
    detail.ErrorComment = comment[:64]
    return detail


def _handle(call: ServiceCall, failure_status: int) -> tuple[int, Dataset | None]:
    """Ask the application's EVT_C_STORE handler for the status (see the module docstring)."""
    request = call.request
    refusal = _refusal(request, call.context)
    received = call.received
    if refusal is None and received is None:
        reason = "the C-STORE-RQ carried no data set"
        refusal = DATASET_MISSING, reason, reason
    if refusal is None and isinstance(received, SpoolFailure):
        refusal = OUT_OF_RESOURCES, received.reason, received.reason
    if refusal is not None:
        status, comment, detail = refusal
        _log_refusal(status, detail)
        return status, _status_detail(status, comment)
    what = "handler bound to 'EVT_C_STORE'"
    try:
        result = call.trigger(EVT_C_STORE)
    except NoHandlerBound:
        _log_refusal(NO_HANDLER, "no handler is bound to EVT_C_STORE")
        return NO_HANDLER, _status_detail(NO_HANDLER, "no handler stores this SOP class")
    except Exception as exc:
        return handler_failure(exc, what=what, status=failure_status), None
    try:
        return status_from_handler_result(result, call.status_table, what=what)
    except InvalidHandlerResult as exc:
        code = (
            HANDLER_STATUS_WITHOUT_STATUS
            if isinstance(result, Dataset)
            else HANDLER_INVALID_STATUS
        )
        return handler_failure(exc, what=what, status=code), None


def _log_refusal(status: int, reason: str) -> None:
    LOGGER.warning("Refusing a C-STORE-RQ with 0x%04X: %s", status, reason)


def storage_scp(call: ServiceCall) -> None:
    """Answer one C-STORE-RQ (PS3.7 9.3.1.2): checks, then the handler's status."""
    request = call.request
    assert isinstance(request, CStoreRQ)
    failure = HANDLER_EXCEPTION
    status, extra = _handle(call, failure)
    response = CStoreRSP(
        MessageIDBeingRespondedTo=request.MessageID,
        AffectedSOPClassUID=_echoed(request.AffectedSOPClassUID),
        AffectedSOPInstanceUID=_echoed(request.AffectedSOPInstanceUID),
        Status=status,
    )
    call.send(with_handler_status(response, extra, event=EVT_C_STORE, failure_status=failure))


# -- the declarations -------------------------------------------------------------------------

STORAGE = ServiceClass(
    name="storage",
    sop_classes=_sop_groups.SERVICE_GROUPS["storage"],
    status_table=STORAGE_SERVICE_CLASS_STATUS,
    requests=[CStoreRQ],
    events=[EVT_C_STORE],
    context_lists=_sop_groups.context_lists_of("storage"),
    scp=storage_scp,
    uid=_sop_groups.SERVICE_CLASS_UIDS["storage"],
    failure_status=HANDLER_EXCEPTION,
    reference="PS3.4 Annex B",
    dataset_sink=storage_sink,
)

NON_PATIENT_OBJECT_STORAGE = ServiceClass(
    name="non_patient_object_storage",
    sop_classes=_sop_groups.SERVICE_GROUPS["non_patient_object_storage"],
    status_table=NON_PATIENT_SERVICE_CLASS_STATUS,
    requests=[CStoreRQ],
    events=[EVT_C_STORE],
    context_lists=_sop_groups.context_lists_of("non_patient_object_storage"),
    scp=storage_scp,
    failure_status=HANDLER_EXCEPTION,
    reference="PS3.4 Annex GG",
    dataset_sink=storage_sink,
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Storage and Non-Patient Object Storage service classes."""
    return [STORAGE, NON_PATIENT_OBJECT_STORAGE]


# -- helpers for SCPs -------------------------------------------------------------------------


def storage_sop_classes(*, retired: bool = False, non_patient: bool = True) -> list[str]:
    """The storage SOP Class UIDs: current ones, ``retired`` ones too, and those of Annex GG."""
    legacy = set(_sop_groups.LEGACY_STORAGE)
    uids = [uid for uid in STORAGE.sop_classes if retired or uid not in legacy]
    if non_patient:
        uids.extend(NON_PATIENT_OBJECT_STORAGE.sop_classes)
    return uids


def add_storage_contexts(
    ae: ApplicationEntity,
    transfer_syntaxes: Iterable[str] = COMMON_TRANSFER_SYNTAXES,
    *,
    retired: bool = False,
    non_patient: bool = True,
) -> None:
    """Make ``ae`` accept every storage SOP class (as SCP) in ``transfer_syntaxes``."""
    syntaxes = list(transfer_syntaxes)
    for uid in storage_sop_classes(retired=retired, non_patient=non_patient):
        ae.add_supported_context(uid, syntaxes)
