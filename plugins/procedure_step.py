"""The Modality Performed Procedure Step SOP classes (PS3.4 Annex F): N-CREATE, N-SET, N-GET,
N-EVENT-REPORT.

Three SOP classes share one SOP instance per performed procedure step
(PS3.4 F.7-F.9; ``dicomnet._sop_groups.SERVICE_GROUPS["procedure_step"]``):

================================================  ===============  =======
SOP class                                         requests         PS3.4
================================================  ===============  =======
Modality Performed Procedure Step                 N-CREATE, N-SET  F.7
Modality Performed Procedure Step Retrieve        N-GET            F.8
Modality Performed Procedure Step Notification    N-EVENT-REPORT   F.9
================================================  ===============  =======

The modality (SCU) creates the step IN PROGRESS with an N-CREATE and ends it
COMPLETED or DISCONTINUED with an N-SET; the information system (SCP) answers
through the handlers bound to ``EVT_N_CREATE``, ``EVT_N_SET`` and ``EVT_N_GET``
(pynetdicom's contract, :mod:`dicomnet.plugins._n_engine`). The notification
goes the other way: the SCP of the Notification SOP class sends the
N-EVENT-REPORT (``assoc.send_n_event_report``) and its SCU answers through
``EVT_N_EVENT_REPORT``.

What this plugin checks before the handler runs, as PS3.4 asks:

* an N-CREATE whose Performed Procedure Step Status (0040,0252) is not
  ``IN PROGRESS`` gets 0106H *Invalid attribute value*, with the attribute as
  Offending Element and in the Attribute List (F.7.2.1.3); one without it gets
  0120H *Missing attribute*;
* an N-SET that sets the status to anything but ``IN PROGRESS``,
  ``COMPLETED`` or ``DISCONTINUED`` gets 0106H (Table F.1-4 has no other
  state);
* an N-EVENT-REPORT whose Event Type ID is not one of Table F.9.2-1 (1 to 5)
  gets 0113H *No such event type*;
* a request the SOP class does not define (an N-GET on the Modality Performed
  Procedure Step SOP class) gets 0211H *Unrecognized operation*.

The rule that needs the stored step -- an N-SET of a step already COMPLETED or
DISCONTINUED is refused -- is the handler's: it returns
:func:`may_no_longer_be_updated`, the 0110H with Error Comment and Error ID
A710H of Table F.7.2-2. Statuses: PS3.4 F.7.2 and F.8.2, with the general ones
of PS3.7 Annex C (:data:`dicomnet.status.PROCEDURE_STEP_STATUS`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceCall, ServiceClass
from dicomnet.status import PROCEDURE_STEP_STATUS, Status

from ._n_engine import Answer, Rules, event_type_check, n_service_class, refusal

__all__ = [
    "COMPLETED",
    "DISCONTINUED",
    "EVENT_COMPLETED",
    "EVENT_DELETED",
    "EVENT_DISCONTINUED",
    "EVENT_IN_PROGRESS",
    "EVENT_UPDATED",
    "IN_PROGRESS",
    "MPPS",
    "MPPS_NOTIFICATION",
    "MPPS_RETRIEVE",
    "PROCEDURE_STEP",
    "dicomnet_service_classes",
    "may_no_longer_be_updated",
]

_UIDS = _sop_groups.SOP_CLASSES
#: Modality Performed Procedure Step SOP Class (PS3.4 F.7)
MPPS = _UIDS["ModalityPerformedProcedureStep"]
#: Modality Performed Procedure Step Retrieve SOP Class (PS3.4 F.8)
MPPS_RETRIEVE = _UIDS["ModalityPerformedProcedureStepRetrieve"]
#: Modality Performed Procedure Step Notification SOP Class (PS3.4 F.9)
MPPS_NOTIFICATION = _UIDS["ModalityPerformedProcedureStepNotification"]

#: Performed Procedure Step Status (0040,0252) values (PS3.4 Table F.1-3)
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
_STATES = frozenset((IN_PROGRESS, COMPLETED, DISCONTINUED))

#: Event Type IDs of the MPPS Notification SOP class (PS3.4 Table F.9.2-1)
EVENT_IN_PROGRESS = 1
EVENT_COMPLETED = 2
EVENT_DISCONTINUED = 3
EVENT_UPDATED = 4
EVENT_DELETED = 5

_STATUS_TAG = 0x00400252  # Performed Procedure Step Status
#: Error ID of "Performed Procedure Step Object may no longer be updated" (Table F.7.2-2)
_NO_LONGER_UPDATABLE_ID = 0xA710


def may_no_longer_be_updated() -> Dataset:
    """The N-SET status for a step already COMPLETED or DISCONTINUED (PS3.4 F.7.2.2.3).

    0110H *Processing failure* with the Error Comment and Error ID A710H of
    PS3.4 Table F.7.2-2; return it from an ``EVT_N_SET`` handler.
    """
    status = Dataset()
    status.Status = Status.PROCESSING_FAILURE
    status.ErrorComment = "Performed Procedure Step Object may no longer be updated"
    status.ErrorID = _NO_LONGER_UPDATABLE_ID
    return status


def _invalid_status(value: object, why: str) -> Answer:
    invalid = Dataset()
    invalid.PerformedProcedureStepStatus = value
    return (
        refusal(Status.INVALID_ATTRIBUTE_VALUE, why, _STATUS_TAG),
        invalid,
    )


def _check_create(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 F.7.2.1.3: only a step IN PROGRESS may be created."""
    if dataset is None or "PerformedProcedureStepStatus" not in dataset:
        return refusal(
            Status.MISSING_ATTRIBUTE,
            "Performed Procedure Step Status (0040,0252) is missing",
            _STATUS_TAG,
        )
    value = dataset.PerformedProcedureStepStatus
    if value != IN_PROGRESS:
        return _invalid_status(value, f"an N-CREATE needs status IN PROGRESS, not {value!r}")
    return None


def _check_set(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 Table F.1-4: IN PROGRESS, COMPLETED and DISCONTINUED are the only states."""
    if dataset is None or "PerformedProcedureStepStatus" not in dataset:
        return None
    value = dataset.PerformedProcedureStepStatus
    if value not in _STATES:
        return _invalid_status(value, f"{value!r} is not a Performed Procedure Step Status")
    return None


PROCEDURE_STEP: ServiceClass = n_service_class(
    "procedure_step",
    sop_classes=_sop_groups.SERVICE_GROUPS["procedure_step"],
    status_table=PROCEDURE_STEP_STATUS,
    operations={
        MPPS: (dm.NCreateRQ, dm.NSetRQ),
        MPPS_RETRIEVE: (dm.NGetRQ,),
        MPPS_NOTIFICATION: (dm.NEventReportRQ,),
    },
    rules={
        dm.NCreateRQ: Rules(check=_check_create),
        dm.NSetRQ: Rules(check=_check_set),
        dm.NEventReportRQ: Rules(check=event_type_check(range(1, 6))),
    },
    context_lists=_sop_groups.context_lists_of("procedure_step"),
    reference="PS3.4 Annex F",
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Modality Performed Procedure Step service class."""
    return [PROCEDURE_STEP]
