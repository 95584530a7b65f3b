"""The Instance Availability Notification service class (PS3.4 Annex R): N-CREATE.

One SOP class, Instance Availability Notification (1.2.840.10008.5.1.4.33,
``dicomnet._sop_groups.SERVICE_GROUPS["instance_availability"]``), one
operation: the SCU (an archive, a modality) tells the SCP (an information
system, a workflow manager) which instances of a study are available, and
from where, with an N-CREATE whose Attribute List is Table R.3.2-1: Study
Instance UID, Referenced Performed Procedure Step Sequence and Referenced
Series Sequence, each series listing its instances with their Instance
Availability (ONLINE, NEARLINE, OFFLINE, UNAVAILABLE) and Retrieve AE Title.
"Though the terminology 'notification' is used", PS3.4 R.3.1 notes, this is an
operation, not an N-EVENT-REPORT.

The SCP answers through the handler bound to ``EVT_N_CREATE``
(``event.attribute_list`` is the notification), with pynetdicom's contract
(:mod:`dicomnet.plugins._n_engine`): ``(status, None)``, or a bare status.
PS3.4 R.3.2.1 asks nothing of the SCP beyond the response status (PS3.7 10.1.5
and Annex C: Success; 0107H and the failures 0105H-0124H, 0210H-0213H). The
SCU names the new SOP instance (R.3.2.1.2); when it does not, the handler
must give the UID it chose (as ``AffectedSOPInstanceUID`` in its status or
data set) or the answer is 0110H. An exception in the handler, or no handler,
is 0110H *Processing failure* and a log record.

The :func:`availability_notification` helper builds the Attribute List from
instances, for the SCU side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydicom.dataset import Dataset

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceClass
from dicomnet.status import StatusTable

from ._n_engine import n_service_class

__all__ = [
    "INSTANCE_AVAILABILITY",
    "INSTANCE_AVAILABILITY_NOTIFICATION",
    "INSTANCE_AVAILABILITY_STATUS",
    "availability_notification",
    "dicomnet_service_classes",
]

#: Instance Availability Notification SOP Class (PS3.4 R.3)
INSTANCE_AVAILABILITY_NOTIFICATION = _sop_groups.SOP_CLASSES["InstanceAvailabilityNotification"]

#: PS3.4 R.3 defines no status of its own: the general ones of PS3.7 Annex C
INSTANCE_AVAILABILITY_STATUS = StatusTable("Instance Availability Notification")

INSTANCE_AVAILABILITY: ServiceClass = n_service_class(
    "instance_availability",
    sop_classes=_sop_groups.SERVICE_GROUPS["instance_availability"],
    status_table=INSTANCE_AVAILABILITY_STATUS,
    operations={INSTANCE_AVAILABILITY_NOTIFICATION: (dm.NCreateRQ,)},
    context_lists=_sop_groups.context_lists_of("instance_availability"),
    reference="PS3.4 Annex R",
)


def availability_notification(
    instances: Iterable[Dataset],
    retrieve_ae_title: str,
    *,
    availability: str = "ONLINE",
    performed_procedure_steps: Iterable[tuple[str, str]] = (),
) -> Dataset:
    """The N-CREATE Attribute List announcing ``instances`` (PS3.4 Table R.3.2-1).

    ``instances`` are data sets (or anything with ``StudyInstanceUID``,
    ``SeriesInstanceUID``, ``SOPClassUID`` and ``SOPInstanceUID``) of one
    study; they are grouped by series. ``performed_procedure_steps`` are the
    ``(SOP Class UID, SOP Instance UID)`` of the steps that produced them (an
    MPPS, PS3.4 F). Raises :class:`ValueError` for instances of several studies
    or none.
    """
    by_series: dict[str, list[Any]] = {}
    studies: set[str] = set()
    for item in instances:
        studies.add(str(item.StudyInstanceUID))
        by_series.setdefault(str(item.SeriesInstanceUID), []).append(item)
    if len(studies) != 1:
        raise ValueError(
            f"an availability notification is about one study; got {len(studies)}"
        )
    notification = Dataset()
    notification.StudyInstanceUID = studies.pop()
    steps = []
    for sop_class, sop_instance in performed_procedure_steps:
        step = Dataset()
        step.ReferencedSOPClassUID = sop_class
        step.ReferencedSOPInstanceUID = sop_instance
        step.PerformedWorkitemCodeSequence = []
        steps.append(step)
    notification.ReferencedPerformedProcedureStepSequence = steps
    series_items = []
    for series_uid, members in by_series.items():
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        references = []
        for item in members:
            ref = Dataset()
            ref.ReferencedSOPClassUID = str(item.SOPClassUID)
            ref.ReferencedSOPInstanceUID = str(item.SOPInstanceUID)
            ref.InstanceAvailability = availability
            ref.RetrieveAETitle = retrieve_ae_title
            references.append(ref)
        series.ReferencedSOPSequence = references
        series_items.append(series)
    notification.ReferencedSeriesSequence = series_items
    return notification


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Instance Availability Notification service class."""
    return [INSTANCE_AVAILABILITY]
