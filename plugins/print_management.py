"""The Print Management service class (PS3.4 Annex H): film sessions, film boxes, image boxes.

A print SCU (a modality, a workstation) drives a printer (the SCP) through
normalized SOP instances the two create and update
(``dicomnet._sop_groups.SERVICE_GROUPS["print_management"]``):

==============================  ====================================  ==========
SOP class                       DIMSE Service Group                   PS3.4
==============================  ====================================  ==========
Basic Film Session              N-CREATE, N-SET, N-DELETE, N-ACTION   H.4.1
Basic Film Box                  N-CREATE, N-ACTION, N-DELETE, N-SET   H.4.2
Basic Grayscale Image Box       N-SET                                 H.4.3.1
Basic Color Image Box           N-SET                                 H.4.3.2
Basic Annotation Box            N-SET                                 H.4.4
Print Job                       N-EVENT-REPORT, N-GET                 H.4
Printer                         N-EVENT-REPORT, N-GET                 H.4
Presentation LUT                N-CREATE, N-DELETE                    H.4
Printer Configuration           N-GET                                 H.4
Retrieval
VOI LUT Box                     N-CREATE, N-SET, N-DELETE (*)         --
==============================  ====================================  ==========

(*) The VOI LUT Box SOP class is current in the PS3.6 registry but the
current PS3.4 describes no DIMSE service group for it: the plugin accepts the
operations a LUT box can use and leaves the rest to the handler.

The usual ones are negotiated through a **Meta SOP Class**: Basic
Grayscale Print Management Meta (Film Session, Film Box, Grayscale Image Box,
Printer) and Basic Color Print Management Meta (the same with the Color Image
Box). On a meta context the request's own SOP class (Affected/Requested SOP
Class UID) decides, and a SOP class the meta class does not include gets
0118H *No such SOP class*; the SCU names the meta class with ``meta_uid``
(``assoc.send_n_create(ds, BASIC_FILM_SESSION, meta_uid=GRAYSCALE_META)``).

Handlers: pynetdicom's contract (:mod:`dicomnet.plugins._n_engine`) --
``EVT_N_CREATE`` (a film box's answer carries the *Referenced Image Box
Sequence* of the image boxes the SCP created, H.4.2; without an instance
UID from the SCU the handler gives the one it chose, as
``AffectedSOPInstanceUID``), ``EVT_N_SET``, ``EVT_N_GET`` (the printer's
status), ``EVT_N_ACTION`` (print), ``EVT_N_DELETE``. The SCP notifies its SCU
of printer and print job changes with ``assoc.send_n_event_report`` (on the
meta context: ``meta_uid``). Checked before the handler: N-ACTION is Action
Type ID 1, *Print* (H.4.1, H.4.2; 0123H otherwise); a Printer
N-EVENT-REPORT is Event Type 1 *Normal*, 2 *Warning* or 3 *Failure*, a Print
Job one 1 *Pending*, 2 *Printing*, 3 *Done* or 4 *Failure* (0113H otherwise);
each SOP class gets only the requests of its group (0211H). Statuses:
:data:`dicomnet.status.PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS` (B600H
memory allocation not supported... C616H), and the general ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceCall, ServiceClass
from dicomnet.status import PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS, Status

from ._n_engine import Answer, Rules, n_service_class, refusal

__all__ = [
    "ACTION_PRINT",
    "BASIC_ANNOTATION_BOX",
    "BASIC_COLOR_IMAGE_BOX",
    "BASIC_FILM_BOX",
    "BASIC_FILM_SESSION",
    "BASIC_GRAYSCALE_IMAGE_BOX",
    "COLOR_META",
    "GRAYSCALE_META",
    "PRESENTATION_LUT",
    "PRINTER",
    "PRINTER_CONFIGURATION_RETRIEVAL",
    "PRINTER_CONFIGURATION_RETRIEVAL_INSTANCE",
    "PRINTER_INSTANCE",
    "PRINT_JOB",
    "PRINT_MANAGEMENT",
    "VOI_LUT_BOX",
    "dicomnet_service_classes",
]

_UIDS = _sop_groups.SOP_CLASSES
BASIC_FILM_SESSION = _UIDS["BasicFilmSession"]
BASIC_FILM_BOX = _UIDS["BasicFilmBox"]
BASIC_GRAYSCALE_IMAGE_BOX = _UIDS["BasicGrayscaleImageBox"]
BASIC_COLOR_IMAGE_BOX = _UIDS["BasicColorImageBox"]
BASIC_ANNOTATION_BOX = _UIDS["BasicAnnotationBox"]
PRINT_JOB = _UIDS["PrintJob"]
PRINTER = _UIDS["Printer"]
PRESENTATION_LUT = _UIDS["PresentationLUT"]
PRINTER_CONFIGURATION_RETRIEVAL = _UIDS["PrinterConfigurationRetrieval"]
VOI_LUT_BOX = _UIDS["VOILUTBox"]
#: Basic Grayscale / Color Print Management Meta SOP Classes (PS3.4 H.3)
GRAYSCALE_META = _UIDS["BasicGrayscalePrintManagementMeta"]
COLOR_META = _UIDS["BasicColorPrintManagementMeta"]
#: well-known SOP instances of the Printer and Printer Configuration Retrieval (PS3.4 H.4)
PRINTER_INSTANCE = _sop_groups.WELL_KNOWN_INSTANCES["PrinterInstance"]
PRINTER_CONFIGURATION_RETRIEVAL_INSTANCE = _sop_groups.WELL_KNOWN_INSTANCES[
    "PrinterConfigurationRetrievalInstance"
]

#: Action Type ID "Print" of the film session and the film box (PS3.4 H.4.1, H.4.2)
ACTION_PRINT = 1
#: Event Type IDs: Printer 1 Normal, 2 Warning, 3 Failure; Print Job 1 Pending,
#: 2 Printing, 3 Done, 4 Failure
_EVENT_TYPES = {PRINTER: frozenset((1, 2, 3)), PRINT_JOB: frozenset((1, 2, 3, 4))}

_OPERATIONS: dict[str, tuple[type[dm.DimseRequest], ...]] = {
    BASIC_FILM_SESSION: (dm.NCreateRQ, dm.NSetRQ, dm.NDeleteRQ, dm.NActionRQ),
    BASIC_FILM_BOX: (dm.NCreateRQ, dm.NActionRQ, dm.NDeleteRQ, dm.NSetRQ),
    BASIC_GRAYSCALE_IMAGE_BOX: (dm.NSetRQ,),
    BASIC_COLOR_IMAGE_BOX: (dm.NSetRQ,),
    BASIC_ANNOTATION_BOX: (dm.NSetRQ,),
    PRINT_JOB: (dm.NEventReportRQ, dm.NGetRQ),
    PRINTER: (dm.NEventReportRQ, dm.NGetRQ),
    PRESENTATION_LUT: (dm.NCreateRQ, dm.NDeleteRQ),
    PRINTER_CONFIGURATION_RETRIEVAL: (dm.NGetRQ,),
    VOI_LUT_BOX: (dm.NCreateRQ, dm.NSetRQ, dm.NDeleteRQ),
}
_META = {
    GRAYSCALE_META: (BASIC_FILM_SESSION, BASIC_FILM_BOX, BASIC_GRAYSCALE_IMAGE_BOX, PRINTER),
    COLOR_META: (BASIC_FILM_SESSION, BASIC_FILM_BOX, BASIC_COLOR_IMAGE_BOX, PRINTER),
}


def _check_print(call: ServiceCall, dataset: Dataset | None) -> Answer:
    action = getattr(call.request, "ActionTypeID", None)
    if action != ACTION_PRINT:
        return refusal(Status.NO_SUCH_ACTION, f"Action Type ID {action} is not 1 (Print)")
    return None


def _check_event(call: ServiceCall, dataset: Dataset | None) -> Answer:
    request = call.request
    sop_class = str(getattr(request, "AffectedSOPClassUID", ""))
    event_type = getattr(request, "EventTypeID", None)
    known = _EVENT_TYPES.get(sop_class, frozenset())
    if event_type not in known:
        return refusal(
            Status.NO_SUCH_EVENT_TYPE,
            f"Event Type ID {event_type} is not defined for {_sop_groups_keyword(sop_class)}",
        )
    return None


def _sop_groups_keyword(uid: str) -> str:
    return _sop_groups.SERVICE_GROUPS["print_management"].get(uid, uid)


PRINT_MANAGEMENT: ServiceClass = n_service_class(
    "print_management",
    sop_classes=_sop_groups.SERVICE_GROUPS["print_management"],
    status_table=PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS,
    operations=_OPERATIONS,
    meta_sop_classes=_META,
    rules={
        dm.NActionRQ: Rules(check=_check_print),
        dm.NEventReportRQ: Rules(check=_check_event),
    },
    context_lists=_sop_groups.context_lists_of("print_management"),
    reference="PS3.4 Annex H",
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Print Management service class."""
    return [PRINT_MANAGEMENT]
