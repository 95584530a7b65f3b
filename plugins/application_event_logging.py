"""The Application Event Logging service class (PS3.4 Annex P): N-ACTION.

Two SOP classes (``dicomnet._sop_groups.SERVICE_GROUPS["application_event_logging"]``),
each acting on a well-known SOP instance the SCP has from its start:

* **Procedural Event Logging** (P.2): devices taking part in a procedure report
  events to the SCP that keeps the study's Procedure Log (PS3.3), with an
  N-ACTION, Action Type ID 1 *Record Procedural Event* (Table P.2-2), whose
  Action Information identifies the study (Patient ID, Study Instance UID,
  Study ID, Performed Location, Synchronization Frame of Reference UID) and
  carries the event as SR content;
* **Substance Administration Logging** (P.3): a device reports the
  administration of a drug, contrast or implant for the patient's Medication
  Administration Record, with an N-ACTION as well.

The SCP answers through ``EVT_N_ACTION`` (pynetdicom's contract,
:mod:`dicomnet.plugins._n_engine`); the statuses of P.2.2.4 and P.3.2.4 are
:data:`dicomnet.status.APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS` (B101H
synchronization frame of reference mismatch ... C111H MAR update failed).
Checked before the handler: N-ACTION is the only operation (0211H), and a
Procedural Event Logging N-ACTION is Action Type ID 1 (0123H otherwise). The
Action Type IDs of Substance Administration Logging are left to the handler.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceCall, ServiceClass
from dicomnet.status import APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS, Status

from ._n_engine import Answer, Rules, n_service_class, refusal

__all__ = [
    "APPLICATION_EVENT_LOGGING",
    "PROCEDURAL_EVENT_LOGGING",
    "PROCEDURAL_EVENT_LOGGING_INSTANCE",
    "RECORD_PROCEDURAL_EVENT",
    "SUBSTANCE_ADMINISTRATION_LOGGING",
    "SUBSTANCE_ADMINISTRATION_LOGGING_INSTANCE",
    "dicomnet_service_classes",
]

PROCEDURAL_EVENT_LOGGING = _sop_groups.SOP_CLASSES["ProceduralEventLogging"]
SUBSTANCE_ADMINISTRATION_LOGGING = _sop_groups.SOP_CLASSES["SubstanceAdministrationLogging"]
#: the well-known SOP instances the N-ACTIONs act on
PROCEDURAL_EVENT_LOGGING_INSTANCE = _sop_groups.WELL_KNOWN_INSTANCES[
    "ProceduralEventLoggingInstance"
]
SUBSTANCE_ADMINISTRATION_LOGGING_INSTANCE = _sop_groups.WELL_KNOWN_INSTANCES[
    "SubstanceAdministrationLoggingInstance"
]
#: Action Type ID "Record Procedural Event" (PS3.4 Table P.2-2)
RECORD_PROCEDURAL_EVENT = 1


def _check_action(call: ServiceCall, dataset: Dataset | None) -> Answer:
    request = call.request
    if str(getattr(request, "RequestedSOPClassUID", "")) != PROCEDURAL_EVENT_LOGGING:
        return None
    action = getattr(request, "ActionTypeID", None)
    if action != RECORD_PROCEDURAL_EVENT:
        return refusal(
            Status.NO_SUCH_ACTION, f"Action Type ID {action} is not 1 (Record Procedural Event)"
        )
    return None


APPLICATION_EVENT_LOGGING: ServiceClass = n_service_class(
    "application_event_logging",
    sop_classes=_sop_groups.SERVICE_GROUPS["application_event_logging"],
    status_table=APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS,
    operations={
        PROCEDURAL_EVENT_LOGGING: (dm.NActionRQ,),
        SUBSTANCE_ADMINISTRATION_LOGGING: (dm.NActionRQ,),
    },
    rules={dm.NActionRQ: Rules(check=_check_action)},
    context_lists=_sop_groups.context_lists_of("application_event_logging"),
    reference="PS3.4 Annex P",
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Application Event Logging service class."""
    return [APPLICATION_EVENT_LOGGING]
