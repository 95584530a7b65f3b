"""The Unified Procedure Step service class (PS3.4 Annex CC): push, pull, watch, event, query.

Five SOP classes act on one kind of instance, the UPS, a worklist item
(``dicomnet._sop_groups.SERVICE_GROUPS["unified_procedure_step"]``; service
class UID 1.2.840.10008.5.1.4.34.6):

=========  ================================================  ============
SOP class  DIMSE Service Group (PS3.4 Tables CC.2-1 to -5)   Action Types
=========  ================================================  ============
Push       N-CREATE, N-ACTION, N-GET                         2
Pull       C-FIND, N-GET, N-SET, N-ACTION                    1
Watch      N-ACTION, N-GET, C-FIND                           3, 4, 5, 2
Event      N-EVENT-REPORT
Query      C-FIND
=========  ================================================  ============

Every UPS instance is an instance of the UPS Push SOP class: the N-services
name it as their Affected/Requested SOP Class UID whatever context they come
on, and "once created, UPS instances may be operated on by DIMSE services from
any of the UPS SOP Classes" (PS3.4 CC.3.1, CC.3.1.1). The SCP therefore serves
each N-service on any UPS context (pynetdicom's SCU sends them on whichever
UPS context it finds first); C-FIND on the Pull, Watch and Query contexts,
the information models of CC.2.8. The SCU side
(``Association.send_n_*``) finds a UPS context for a UPS Push request the
same way, and sends an N-EVENT-REPORT on a UPS Event context when there is
one.

Handlers: pynetdicom's contract -- ``EVT_N_CREATE``, ``EVT_N_SET``,
``EVT_N_GET``, ``EVT_N_ACTION``, ``EVT_N_EVENT_REPORT``
(:mod:`dicomnet.plugins._n_engine`) and ``EVT_C_FIND`` generators
(:mod:`dicomnet.plugins._qr_engine`; its failures are C310H-C312H).

Checked before the handler (the rules that need no stored UPS):

* N-CREATE: *Procedure Step State* (0074,1000) must be ``SCHEDULED`` (C309H,
  CC.2.5.3); missing: 0120H *Missing attribute*;
* N-ACTION: Action Type ID 1 to 5 (0123H *No such action*); Change UPS State
  (1) needs a *Transaction UID* (C301H) and a state ``IN PROGRESS``,
  ``COMPLETED`` or ``CANCELED`` -- ``SCHEDULED`` is C303H (a UPS only becomes
  SCHEDULED through N-CREATE), anything else 0115H; Subscribe (3),
  Unsubscribe (4) and Suspend Global Subscription (5) need a *Receiving AE*
  (0074,1234), Subscribe a *Deletion Lock* (0074,1230) of TRUE or FALSE
  (0115H);
* N-EVENT-REPORT: Event Type ID 1 to 5 (Table CC.2.4-1; 0113H).

The rules that need the stored UPS -- its state, its Transaction UID, its
subscribers -- are the handler's, with the statuses of
:data:`dicomnet.status.UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS` (C300H
may no longer be updated, C301H wrong Transaction UID, C302H already IN
PROGRESS, C307H no such UPS, C310H not IN PROGRESS, C311H already COMPLETED,
B304H/B306H already CANCELED/COMPLETED...). An SCP reports to its subscribers
with :func:`send_ups_event` (PS3.4 CC.2.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydicom.dataset import Dataset

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.events import EVT_C_FIND
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceCall, ServiceClass
from dicomnet.status import UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS, Status

from ._n_engine import Answer, Rules, event_type_check, n_service_class, refusal, send_report
from ._qr_engine import FIND_FAILURES, Operation, serve_find

__all__ = [
    "ACTION_CHANGE_STATE",
    "ACTION_REQUEST_CANCEL",
    "ACTION_SUBSCRIBE",
    "ACTION_SUSPEND_GLOBAL_SUBSCRIPTION",
    "ACTION_UNSUBSCRIBE",
    "CANCELED",
    "COMPLETED",
    "EVENT_CANCEL_REQUESTED",
    "EVENT_PROGRESS_REPORT",
    "EVENT_SCP_STATUS_CHANGE",
    "EVENT_STATE_REPORT",
    "EVENT_UPS_ASSIGNED",
    "FILTERED_GLOBAL_SUBSCRIPTION_INSTANCE",
    "GLOBAL_SUBSCRIPTION_INSTANCE",
    "IN_PROGRESS",
    "SCHEDULED",
    "UNIFIED_PROCEDURE_STEP",
    "UPS_EVENT",
    "UPS_PULL",
    "UPS_PUSH",
    "UPS_QUERY",
    "UPS_WATCH",
    "dicomnet_service_classes",
    "send_ups_event",
]

_UIDS = _sop_groups.SOP_CLASSES
#: UPS Push SOP Class (PS3.4 CC.3): the SOP class of every UPS instance
UPS_PUSH = _UIDS["UnifiedProcedureStepPush"]
UPS_PULL = _UIDS["UnifiedProcedureStepPull"]
UPS_WATCH = _UIDS["UnifiedProcedureStepWatch"]
UPS_EVENT = _UIDS["UnifiedProcedureStepEvent"]
UPS_QUERY = _UIDS["UnifiedProcedureStepQuery"]
_WELL_KNOWN = _sop_groups.WELL_KNOWN_INSTANCES
#: the well-known instances subscribed to for every UPS (PS3.4 CC.3.2)
GLOBAL_SUBSCRIPTION_INSTANCE = _WELL_KNOWN["UPSGlobalSubscriptionInstance"]
FILTERED_GLOBAL_SUBSCRIPTION_INSTANCE = _WELL_KNOWN["UPSFilteredGlobalSubscriptionInstance"]

#: Procedure Step State (0074,1000) values (PS3.4 Table CC.1.1-1)
SCHEDULED = "SCHEDULED"
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
CANCELED = "CANCELED"

#: Action Type IDs (PS3.4 Tables CC.2.1-1, CC.2.2-1, CC.2.3-1)
ACTION_CHANGE_STATE = 1
ACTION_REQUEST_CANCEL = 2
ACTION_SUBSCRIBE = 3
ACTION_UNSUBSCRIBE = 4
ACTION_SUSPEND_GLOBAL_SUBSCRIPTION = 5

#: Event Type IDs (PS3.4 Table CC.2.4-1)
EVENT_STATE_REPORT = 1
EVENT_CANCEL_REQUESTED = 2
EVENT_PROGRESS_REPORT = 3
EVENT_SCP_STATUS_CHANGE = 4
EVENT_UPS_ASSIGNED = 5

_STATE_TAG = 0x00741000
_RECEIVING_AE_TAG = 0x00741234
_DELETION_LOCK_TAG = 0x00741230
_TRANSACTION_UID_TAG = 0x00081195

#: C309H: the N-CREATE's Procedure Step State was not SCHEDULED (CC.2.5.3)
_NOT_SCHEDULED = 0xC309
#: C301H: the correct Transaction UID was not provided (CC.2.1.3)
_NO_TRANSACTION_UID = 0xC301
#: C303H: a UPS may only become SCHEDULED via N-CREATE (CC.2.1.3)
_ONLY_BY_N_CREATE = 0xC303

_STATUS = UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS
_FIND = Operation(_STATUS, FIND_FAILURES)
_ALL_UPS = (UPS_PUSH, UPS_PULL, UPS_WATCH, UPS_EVENT, UPS_QUERY)
_N_REQUESTS = (dm.NCreateRQ, dm.NSetRQ, dm.NGetRQ, dm.NActionRQ, dm.NEventReportRQ)
#: the C-FIND information models (PS3.4 CC.2.8, Tables CC.2-2, -3, -5)
_FIND_MODELS = frozenset((UPS_PULL, UPS_WATCH, UPS_QUERY))


def _check_create(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 CC.2.5.3: a UPS is created SCHEDULED."""
    if dataset is None or "ProcedureStepState" not in dataset:
        return refusal(Status.MISSING_ATTRIBUTE, "Procedure Step State (0074,1000) is missing",
                       _STATE_TAG)
    state = dataset.ProcedureStepState
    if state != SCHEDULED:
        return refusal(_NOT_SCHEDULED, f"a UPS is created SCHEDULED, not {state!r}", _STATE_TAG)
    return None


def _check_action(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 CC.2.1-CC.2.3: the five actions and their mandatory Action Information."""
    action = getattr(call.request, "ActionTypeID", None)
    if action not in (1, 2, 3, 4, 5):
        return refusal(Status.NO_SUCH_ACTION, f"Action Type ID {action} is not a UPS action")
    info = dataset if dataset is not None else Dataset()
    if action == ACTION_CHANGE_STATE:
        if not info.get("TransactionUID"):
            return refusal(_NO_TRANSACTION_UID, "Change UPS State needs the Transaction UID",
                           _TRANSACTION_UID_TAG)
        state = info.get("ProcedureStepState")
        if state == SCHEDULED:
            return refusal(_ONLY_BY_N_CREATE, "a UPS only becomes SCHEDULED through N-CREATE",
                           _STATE_TAG)
        if state not in (IN_PROGRESS, COMPLETED, CANCELED):
            return refusal(Status.INVALID_ARGUMENT_VALUE,
                           f"{state!r} is not a state to change a UPS to", _STATE_TAG)
    elif action in (ACTION_SUBSCRIBE, ACTION_UNSUBSCRIBE, ACTION_SUSPEND_GLOBAL_SUBSCRIPTION):
        if not info.get("ReceivingAE"):
            return refusal(Status.INVALID_ARGUMENT_VALUE,
                           "the Receiving AE (0074,1234) is missing", _RECEIVING_AE_TAG)
        if action == ACTION_SUBSCRIBE and info.get("DeletionLock") not in ("TRUE", "FALSE"):
            return refusal(Status.INVALID_ARGUMENT_VALUE,
                           "Deletion Lock (0074,1230) must be TRUE or FALSE", _DELETION_LOCK_TAG)
    return None


_N_PART: ServiceClass = n_service_class(
    "unified_procedure_step",
    sop_classes=_sop_groups.SERVICE_GROUPS["unified_procedure_step"],
    status_table=_STATUS,
    operations=dict.fromkeys(_ALL_UPS, _N_REQUESTS),
    rules={
        dm.NCreateRQ: Rules(check=_check_create),
        dm.NActionRQ: Rules(check=_check_action),
        dm.NEventReportRQ: Rules(check=event_type_check(range(1, 6))),
    },
)
_serve_n = _N_PART.scp


def ups_scp(call: ServiceCall) -> None:
    """Serve one UPS request: C-FIND on an information model, else the N-service engine."""
    if isinstance(call.request, dm.CFindRQ):
        if str(call.context.abstract_syntax) in _FIND_MODELS:
            serve_find(call, _FIND)
            return
        request: Any = call.request
        call.send(dm.CFindRSP(
            MessageIDBeingRespondedTo=request.MessageID,
            AffectedSOPClassUID=request.AffectedSOPClassUID,
            Status=int(Status.UNRECOGNIZED_OPERATION),
        ))
        return
    assert _serve_n is not None
    _serve_n(call)


UNIFIED_PROCEDURE_STEP = ServiceClass(
    name="unified_procedure_step",
    sop_classes=_sop_groups.SERVICE_GROUPS["unified_procedure_step"],
    status_table=_STATUS,
    requests=[dm.CFindRQ, *_N_REQUESTS],
    events=[EVT_C_FIND, *_N_PART.events],
    context_lists=_sop_groups.context_lists_of("unified_procedure_step"),
    scp=ups_scp,
    uid=_sop_groups.SERVICE_CLASS_UIDS["unified_procedure_step"],
    reference="PS3.4 Annex CC",
)


def send_ups_event(
    ae: Any,
    ae_title: str,
    ups_instance_uid: str,
    event_type: int,
    information: Dataset | None,
    *,
    assoc: Any = None,
) -> Dataset:
    """Report a UPS event to the subscriber titled ``ae_title`` (PS3.4 CC.2.4).

    The N-EVENT-REPORT names the UPS Push SOP class and the UPS; it goes on
    ``assoc`` if given and established (on its UPS Event context if it has one),
    else on an association ``ae`` opens to the subscriber with a UPS Event
    context and the SCP role for us (CC.2.4.3; the address as for Storage
    Commitment: :func:`dicomnet.plugins._n_engine.resolve_report_destination`).
    ``information`` is the Event Information of Table CC.2.4-1. Returns the
    response's status, an empty Dataset when the report was not delivered.
    """
    return send_report(
        ae,
        ae_title=ae_title,
        sop_class_uid=UPS_PUSH,
        sop_instance_uid=ups_instance_uid,
        event_type=event_type,
        information=information,
        assoc=assoc,
        context_uid=UPS_EVENT,
    )


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Unified Procedure Step service class."""
    return [UNIFIED_PROCEDURE_STEP]
