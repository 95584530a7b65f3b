"""The RT Machine Verification service classes (PS3.4 Annex DD): N-CREATE, N-SET, N-GET,
N-ACTION, N-DELETE, N-EVENT-REPORT.

Two SOP classes, RT Conventional Machine Verification and RT Ion Machine
Verification (``dicomnet._sop_groups.SERVICE_GROUPS["rt_machine_verification"]``),
let a treatment delivery system (TDS, the SCU) have a Machine Parameter
Verifier (MPV, the SCP) check the geometric and dosimetric settings of a beam
against the RT (Ion) Plan before radiation is delivered (DD.1, DD.2.1). Both
SOP classes define all six DIMSE-N services, M/M (Table DD.3.2-1):

==============  ===========================================================  ==========
request         what it does                                                 PS3.4
==============  ===========================================================  ==========
N-CREATE        the TDS starts verifying a plan: Referenced RT Plan          DD.3.2.1
                Sequence (one item), Patient ID, Referenced Fraction Group
                Number; the machine verification sequences created empty
N-SET           the beam's parameters to verify (General and Conventional    DD.3.2.1
                or Ion Machine Verification Sequence, one item each)
N-ACTION        1 *Request Beam Verification* (no Action Information):       DD.3.2.3
                Success means "initiated"
N-EVENT-REPORT  MPV -> TDS: 1 *Pending* (no Event Information), 2 *Done*     DD.3.2.5
                with the Treatment Verification Status (3008,002C)
N-GET           the result: Treatment Verification Status, Failed and       DD.3.2.2
                Overridden Attributes Sequences
N-DELETE        the TDS ends the session once every beam is delivered       DD.3.2.4
==============  ===========================================================  ==========

Treatment Verification Status (DD.3.2.2.4): :data:`VERIFIED`,
:data:`VERIFIED_OVR` (out-of-range values overridden), :data:`NOT_VERIFIED`.

**Statuses** (:data:`dicomnet.status.RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS`),
each defined for some requests only:

======  =============================================================  =================
code    meaning                                                        request (PS3.4)
======  =============================================================  =================
C227H   no such object instance: the Referenced RT Plan is not found   N-CREATE
C221H   the Referenced Fraction Group Number is not in the plan        N-CREATE
C222H   no beams in the referenced fraction group                      N-CREATE
C223H   the SCU is already verifying and cannot be served now          N-CREATE
C224H   the Referenced Beam Number is not in the fraction group        N-SET
C225H   a referenced device or accessory is not supported              N-SET
C226H   a referenced device or accessory is not in the beam            N-SET
C112H   no such Machine Verification instance                          N-GET, N-ACTION
======  =============================================================  =================

(Tables DD.3.2.1.2-1 and -2, DD.3.2.2.3-1, DD.3.2.3-2; N-DELETE and
N-EVENT-REPORT have none of their own, DD.3.2.4.2, DD.3.2.5.2.)

**The handler contract** (pynetdicom's, :mod:`dicomnet.plugins._n_engine`):
the MPV binds ``EVT_N_CREATE`` (``event.attribute_list``; returns the status
and, optionally, an Attribute List), ``EVT_N_SET`` (``event.modification_list``:
it compares the values with the plan, within its tolerances, DD.3.2.1.3.2),
``EVT_N_GET`` (``event.attribute_identifiers``; returns the attributes, with the
Treatment Verification Status), ``EVT_N_DELETE`` (a status), and for the
N-ACTION:

* ``EVT_N_ACTION`` -- pynetdicom's contract: the handler returns the N-ACTION
  status (C112H for an unknown instance); bound alone, sending the reports is
  the application's business (:func:`send_verification_report`);
* :data:`EVT_MACHINE_VERIFICATION` -- dicomnet's: called *after* a Success
  N-ACTION response has gone out, with ``event.verification`` (a
  :class:`Verification`: the SOP class and instance). It returns the Treatment
  Verification Status (or the Event Information as a Dataset) and the plugin
  reports *Done* with it; it may report *Pending* first
  (``send_verification_report(event.assoc, event.verification)``), or return
  :data:`REPORT_LATER` and report *Done* itself, from any thread. Without an
  ``EVT_N_ACTION`` handler the N-ACTION is then answered Success. A handler
  that raises, or returns anything else, makes the plugin report *Done* with
  :data:`NOT_VERIFIED` (and log why): the TDS is never left waiting, and never
  told a failed check passed.

The reports go on the association of the N-ACTION (DD.2.1: the SCP "signals
the status of the verification using N-EVENT-REPORT"); Annex DD defines no
other association for them -- unlike Storage Commitment, no SCP/SCU Role
Selection -- so a report after the TDS released it is lost (logged); the TDS
then reads the result with an N-GET.

The TDS (SCU) receives the reports through ``EVT_N_EVENT_REPORT`` bound to its
association (:class:`VerificationResults` is such a handler: ``wait()`` for the
next *Done* of an instance).

**Checked before the handler** (PS3.4 5.4.2.1 and Tables DD.3.2.1-1/-2 for the
Attribute Lists; PS3.7 Annex C for the codes):

* N-CREATE: Referenced RT Plan Sequence with one item holding its Referenced
  SOP Class and Instance UID, and Patient ID -- absent 0120H *Missing
  attribute*, empty 0121H *Missing attribute value*, more than one plan 0106H
  *Invalid attribute value*; the machine verification sequences must be empty
  (0106H: their content comes with N-SET, DD.3.2.1.3.1);
* N-SET: the plan reference and Patient ID may no longer be set; General and
  Conventional/Ion Machine Verification Sequence hold at most one item, whose
  Control Point Verification Sequence holds exactly one (DD.3.2.1.3.2; 0106H,
  0120H when absent);
* N-CREATE and N-SET: the attributes the tables mark *Not allowed* -- the
  MPV's own result (Treatment Verification Status, Failed and Overridden
  Attributes Sequences) and the other SOP class's module (an Ion Machine
  Verification Sequence for a conventional beam) -- get 0105H *No such
  attribute* with their tags in the Attribute Identifier List (PS3.4 5.4.2.1:
  the SCP "shall not support receiving" them);
* N-ACTION: Action Type ID 1 only (0123H *No such action*);
* N-EVENT-REPORT: Event Type ID 1 or 2 (0113H *No such event type*); *Done*
  must carry a valid Treatment Verification Status (0115H *Invalid argument
  value*).

The rules that need the plan or the stored instance (C221H ... C227H, C112H)
are the handler's.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from pydicom.dataset import Dataset

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.events import InterventionEvent
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceCall, ServiceClass
from dicomnet.status import RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS, Status, code_to_category

from ._n_engine import Answer, Rules, event_type_check, n_service_class, refusal

__all__ = [
    "ACTION_REQUEST_BEAM_VERIFICATION",
    "ALREADY_VERIFYING",
    "BEAM_NOT_IN_FRACTION_GROUP",
    "DEVICE_NOT_IN_BEAM",
    "DEVICE_NOT_SUPPORTED",
    "EVENT_DONE",
    "EVENT_PENDING",
    "EVT_MACHINE_VERIFICATION",
    "FRACTION_GROUP_NOT_IN_PLAN",
    "NOT_VERIFIED",
    "NO_BEAMS_IN_FRACTION_GROUP",
    "NO_SUCH_VERIFICATION",
    "REPORT_LATER",
    "RT_CONVENTIONAL_MACHINE_VERIFICATION",
    "RT_ION_MACHINE_VERIFICATION",
    "RT_MACHINE_VERIFICATION",
    "RT_PLAN_NOT_FOUND",
    "TREATMENT_VERIFICATION_STATUSES",
    "VERIFIED",
    "VERIFIED_OVR",
    "Verification",
    "VerificationResults",
    "creation_attributes",
    "dicomnet_service_classes",
    "send_verification_report",
]

LOGGER = logging.getLogger("dicomnet.nservices")

_UIDS = _sop_groups.SOP_CLASSES
#: RT Conventional Machine Verification SOP Class (PS3.4 DD.3)
RT_CONVENTIONAL_MACHINE_VERIFICATION = _UIDS["RTConventionalMachineVerification"]
#: RT Ion Machine Verification SOP Class (PS3.4 DD.3)
RT_ION_MACHINE_VERIFICATION = _UIDS["RTIonMachineVerification"]

#: Action Type ID "Request Beam Verification" (PS3.4 Table DD.3.2.3-1)
ACTION_REQUEST_BEAM_VERIFICATION = 1
#: Event Type IDs (PS3.4 Table DD.3.2.5-1): verification in progress; completed
EVENT_PENDING = 1
EVENT_DONE = 2

#: Treatment Verification Status (3008,002C) values (PS3.4 DD.3.2.2.4)
VERIFIED = "VERIFIED"
VERIFIED_OVR = "VERIFIED_OVR"
NOT_VERIFIED = "NOT_VERIFIED"
TREATMENT_VERIFICATION_STATUSES = frozenset((VERIFIED, VERIFIED_OVR, NOT_VERIFIED))

# statuses of the service (Tables DD.3.2.1.2-1, DD.3.2.1.2-2, DD.3.2.2.3-1, DD.3.2.3-2)
#: N-GET, N-ACTION: the Machine Verification instance is not found
NO_SUCH_VERIFICATION = 0xC112
#: N-CREATE: the Referenced Fraction Group Number does not exist in the referenced plan
FRACTION_GROUP_NOT_IN_PLAN = 0xC221
#: N-CREATE: no beams exist within the referenced fraction group
NO_BEAMS_IN_FRACTION_GROUP = 0xC222
#: N-CREATE: the SCU is already verifying and cannot currently process this request
ALREADY_VERIFYING = 0xC223
#: N-SET: the Referenced Beam Number is not found within the referenced fraction group
BEAM_NOT_IN_FRACTION_GROUP = 0xC224
#: N-SET: a referenced device or accessory is not supported
DEVICE_NOT_SUPPORTED = 0xC225
#: N-SET: a referenced device or accessory is not found within the referenced beam
DEVICE_NOT_IN_BEAM = 0xC226
#: N-CREATE: no such object instance, the Referenced RT Plan is not found
RT_PLAN_NOT_FOUND = 0xC227

_PLAN_SEQUENCE = 0x300C0002  # Referenced RT Plan Sequence
_FRACTION_GROUP = 0x300C0022  # Referenced Fraction Group Number
_PATIENT_ID = 0x00100020
_TREATMENT_VERIFICATION_STATUS = 0x3008002C
#: the MPV's results: Treatment Verification Status, Failed and Overridden Attributes
#: Sequences (PS3.4 calls the two sequences "... Parameters Sequence"; PS3.6 "... Attributes")
_RESULTS = (_TREATMENT_VERIFICATION_STATUS, 0x00741048, 0x0074104A)
_GENERAL = 0x00741042  # General Machine Verification Sequence
_CONVENTIONAL = 0x00741044  # Conventional Machine Verification Sequence
_ION = 0x00741046  # Ion Machine Verification Sequence
#: the control point sequence inside each module's sequence (one item, DD.3.2.1.3.2)
_CONTROL_POINT = {_CONVENTIONAL: 0x0074104C, _ION: 0x0074104E}


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@attrs.frozen
class Verification:
    """The Machine Verification instance a verification is for (its SOP class and instance)."""

    sop_class_uid: str = attrs.field(converter=str)
    sop_instance_uid: str = attrs.field(converter=str)

    @property
    def is_ion(self) -> bool:
        """Whether it is an RT Ion Machine Verification instance."""
        return self.sop_class_uid == RT_ION_MACHINE_VERIFICATION


EVT_MACHINE_VERIFICATION = InterventionEvent(
    "EVT_MACHINE_VERIFICATION",
    "Beam verification requested: verify the machine parameters (PS3.4 DD.3.2.3, DD.3.2.5)",
)


class _ReportLater:
    """The type of :data:`REPORT_LATER`."""

    def __repr__(self) -> str:
        return "REPORT_LATER"


#: Returned by an ``EVT_MACHINE_VERIFICATION`` handler that reports *Done* on its own, later.
REPORT_LATER = _ReportLater()


def creation_attributes(
    sop_class_uid: str,
    rt_plan_uid: str,
    patient_id: str,
    *,
    fraction_group: int | None = None,
    rt_plan_class: str | None = None,
) -> Dataset:
    """The Attribute List of an N-CREATE (PS3.4 Tables DD.3.2.1-1, DD.3.2.1-2).

    The Referenced RT Plan Sequence (``rt_plan_class`` defaults to RT Plan
    Storage for the conventional SOP class, RT Ion Plan Storage for the ion
    one), the Patient ID, the Referenced Fraction Group Number when given
    (required when the plan has more than one fraction group), and the General
    and Conventional or Ion Machine Verification Sequences, empty.
    """
    ion = str(sop_class_uid) == RT_ION_MACHINE_VERIFICATION
    plan = Dataset()
    plan.ReferencedSOPClassUID = rt_plan_class or _UIDS[
        "RTIonPlanStorage" if ion else "RTPlanStorage"
    ]
    plan.ReferencedSOPInstanceUID = rt_plan_uid
    ds = Dataset()
    ds.ReferencedRTPlanSequence = [plan]
    if fraction_group is not None:
        ds.ReferencedFractionGroupNumber = fraction_group
    ds.PatientID = patient_id
    ds.GeneralMachineVerificationSequence = []
    if ion:
        ds.IonMachineVerificationSequence = []
    else:
        ds.ConventionalMachineVerificationSequence = []
    return ds


# -- the checks before the handler --------------------------------------------------------------


def _sop_class(call: ServiceCall) -> str:
    request: Any = call.request
    uid = getattr(request, "AffectedSOPClassUID", None) or getattr(
        request, "RequestedSOPClassUID", None
    )
    return str(uid or call.context.abstract_syntax)


def _other_module(sop_class: str) -> int | None:
    """The machine verification sequence of the *other* SOP class (not in this one's table)."""
    if sop_class == RT_CONVENTIONAL_MACHINE_VERIFICATION:
        return _ION
    if sop_class == RT_ION_MACHINE_VERIFICATION:
        return _CONVENTIONAL
    return None


def _own_module(sop_class: str) -> int | None:
    if sop_class == RT_CONVENTIONAL_MACHINE_VERIFICATION:
        return _CONVENTIONAL
    if sop_class == RT_ION_MACHINE_VERIFICATION:
        return _ION
    return None


def _not_allowed(dataset: Dataset, tags: Iterable[int], request: str) -> Answer:
    """0105H *No such attribute* for the attributes PS3.4 does not allow in ``request``."""
    present = sorted(tag for tag in tags if tag in dataset)
    if not present:
        return None
    comment = f"not allowed in an {request}: {', '.join(map(_tag_text, present))}"
    LOGGER.warning("Refusing with status 0x%04X: %s", Status.NO_SUCH_ATTRIBUTE, comment)
    status = Dataset()
    status.Status = Status.NO_SUCH_ATTRIBUTE
    status.ErrorComment = comment[:64]
    status.AttributeIdentifierList = present[0] if len(present) == 1 else present
    return status


def _invalid(dataset: Dataset, tag: int, why: str) -> Answer:
    """0106H with the attribute as Offending Element and in the Attribute List (PS3.7 C.5)."""
    invalid = Dataset()
    invalid[tag] = dataset[tag]
    return refusal(Status.INVALID_ATTRIBUTE_VALUE, why, tag), invalid


def _required(dataset: Dataset, tag: int, where: str = "") -> Answer:
    """0120H when ``tag`` is absent, 0121H when it is empty (PS3.4 5.4.2.1: type 1)."""
    if tag not in dataset:
        return refusal(Status.MISSING_ATTRIBUTE, f"{_tag_text(tag)}{where} is missing", tag)
    value = dataset[tag].value
    if value is None or value == "" or (isinstance(value, Sequence) and not len(value)):
        return refusal(Status.MISSING_ATTRIBUTE_VALUE, f"{_tag_text(tag)}{where} is empty", tag)
    return None


def _items(dataset: Dataset, tag: int) -> list[Dataset]:
    value = dataset[tag].value if tag in dataset else None
    return list(value or ())


def _check_create(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 Tables DD.3.2.1-1/-2 (N-CREATE) and DD.3.2.1.3.1."""
    ds = dataset if dataset is not None else Dataset()
    sop_class = _sop_class(call)
    other = _other_module(sop_class)
    refused = _not_allowed(ds, (*_RESULTS, *(() if other is None else (other,))), "N-CREATE")
    if refused is not None:
        return refused
    refused = _required(ds, _PLAN_SEQUENCE)
    if refused is not None:
        return refused
    plans = _items(ds, _PLAN_SEQUENCE)
    if len(plans) != 1:
        return _invalid(ds, _PLAN_SEQUENCE, f"{len(plans)} plans referenced; one is permitted")
    for tag in (0x00081150, 0x00081155):  # Referenced SOP Class / Instance UID
        refused = _required(plans[0], tag, " in the Referenced RT Plan Sequence")
        if refused is not None:
            return refused
    refused = _required(ds, _PATIENT_ID)
    if refused is not None:
        return refused
    own = _own_module(sop_class)
    for tag in (_GENERAL, *(() if own is None else (own,))):
        if _items(ds, tag):
            return _invalid(
                ds, tag, f"{_tag_text(tag)} is created empty; its items come with N-SET"
            )
    return None


def _check_set(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 Tables DD.3.2.1-1/-2 (N-SET) and DD.3.2.1.3.2."""
    ds = dataset if dataset is not None else Dataset()
    sop_class = _sop_class(call)
    other = _other_module(sop_class)
    fixed = (_PLAN_SEQUENCE, _FRACTION_GROUP, _PATIENT_ID, *_RESULTS)
    refused = _not_allowed(ds, (*fixed, *(() if other is None else (other,))), "N-SET")
    if refused is not None:
        return refused
    own = _own_module(sop_class)
    for tag in (_GENERAL, *(() if own is None else (own,))):
        items = _items(ds, tag)
        if len(items) > 1:
            return _invalid(ds, tag, f"{_tag_text(tag)} has {len(items)} items; one is permitted")
        control_point = _CONTROL_POINT.get(tag)
        if items and control_point is not None:
            where = f" in {_tag_text(tag)}"
            if control_point not in items[0]:
                return refusal(Status.MISSING_ATTRIBUTE, f"{_tag_text(control_point)}{where} is "
                               "missing", control_point)
            points = _items(items[0], control_point)
            if len(points) != 1:
                return _invalid(
                    ds, tag, f"{_tag_text(control_point)}{where} has {len(points)} items, not 1"
                )
    return None


def _check_action(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 Table DD.3.2.3-1: Request Beam Verification is the only action."""
    action = getattr(call.request, "ActionTypeID", None)
    if action != ACTION_REQUEST_BEAM_VERIFICATION:
        return refusal(
            Status.NO_SUCH_ACTION,
            f"Action Type ID {action} is not defined (1: request beam verification)",
        )
    return None


_check_event_type = event_type_check((EVENT_PENDING, EVENT_DONE))


def _check_event_report(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 Table DD.3.2.5-1: Pending, or Done with the Treatment Verification Status."""
    refused = _check_event_type(call, dataset)
    if refused is not None or getattr(call.request, "EventTypeID", None) != EVENT_DONE:
        return refused
    value = None if dataset is None else dataset.get("TreatmentVerificationStatus")
    if value not in TREATMENT_VERIFICATION_STATUSES:
        return refusal(
            Status.INVALID_ARGUMENT_VALUE,
            f"a Done report needs a Treatment Verification Status, not {value!r}",
        )
    return None


# -- reporting (the SCP) ------------------------------------------------------------------------


def _event_information(status: str | Dataset) -> Dataset:
    """The Event Information of a *Done* report (Table DD.3.2.5-1); :class:`ValueError` if
    ``status`` is not a valid Treatment Verification Status or does not hold one."""
    if isinstance(status, Dataset):
        value = status.get("TreatmentVerificationStatus")
        information = status
    else:
        value = status
        information = Dataset()
        information.TreatmentVerificationStatus = status
    if not isinstance(value, str) or value not in TREATMENT_VERIFICATION_STATUSES:
        raise ValueError(
            f"{value!r} is not a Treatment Verification Status "
            f"({', '.join(sorted(TREATMENT_VERIFICATION_STATUSES))})"
        )
    return information


def send_verification_report(
    assoc: Any, verification: Verification, status: str | Dataset | None = None
) -> Dataset:
    """Report on a verification to the TDS, on ``assoc`` (PS3.4 DD.3.2.5).

    ``status`` ``None`` sends *Pending* (Event Type ID 1, no Event
    Information); a Treatment Verification Status (:data:`VERIFIED`,
    :data:`VERIFIED_OVR`, :data:`NOT_VERIFIED`) or an Event Information data
    set holding one sends *Done* (2). ``assoc`` is the association of the
    N-ACTION (``event.assoc``): Annex DD defines no other. Returns the
    N-EVENT-REPORT-RSP's status, an empty Dataset when the report could not be
    delivered (logged). :class:`ValueError` for an invalid ``status``. Callable
    from any thread.
    """
    information: Dataset | None = None
    event_type, what = EVENT_PENDING, "Pending"
    if status is not None:
        information = _event_information(status)
        event_type, what = EVENT_DONE, f"Done ({information.TreatmentVerificationStatus})"
    if assoc is None or not assoc.is_established:
        LOGGER.error(
            "Cannot report %s for %s: the association of the N-ACTION is no longer "
            "established (PS3.4 Annex DD defines no other)", what, verification.sop_instance_uid,
        )
        return Dataset()
    answer: Dataset
    try:
        answer, _reply = assoc.send_n_event_report(
            information, event_type, verification.sop_class_uid, verification.sop_instance_uid
        )
    except (RuntimeError, ValueError) as exc:
        LOGGER.error("Cannot report %s for %s: %s", what, verification.sop_instance_uid, exc)
        return Dataset()
    if "Status" not in answer:
        LOGGER.error("The report %s for %s got no answer", what, verification.sop_instance_uid)
    elif code_to_category(int(answer.Status)) in ("Success", "Warning"):
        LOGGER.info("Reported %s for %s", what, verification.sop_instance_uid)
    else:
        LOGGER.error(
            "The TDS refused the report %s for %s with status 0x%04X",
            what, verification.sop_instance_uid, int(answer.Status),
        )
    return answer


def _default_action(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """Without an ``EVT_N_ACTION`` handler, the verification is initiated (Success) when an
    ``EVT_MACHINE_VERIFICATION`` handler will do it."""
    return Status.SUCCESS if call.is_bound(EVT_MACHINE_VERIFICATION) else None


def _verify(call: ServiceCall, dataset: Dataset | None, status: int) -> None:
    """After the N-ACTION response: ask ``EVT_MACHINE_VERIFICATION``, report *Done*."""
    if not call.is_bound(EVT_MACHINE_VERIFICATION):
        return  # EVT_N_ACTION alone: the application reports, as with pynetdicom
    request: Any = call.request
    verification = Verification(request.RequestedSOPClassUID, request.RequestedSOPInstanceUID)
    try:
        answer = call.trigger(
            EVT_MACHINE_VERIFICATION, verification=verification, _decoded_dataset=dataset
        )
        if answer is REPORT_LATER:
            return
        if not isinstance(answer, str | Dataset):
            raise TypeError(
                f"{answer!r} is neither a Treatment Verification Status, an Event Information "
                "Dataset nor REPORT_LATER"
            )
        information = _event_information(answer)
    except Exception:
        LOGGER.exception(
            "The handler bound to EVT_MACHINE_VERIFICATION failed for %s: reporting %s",
            verification.sop_instance_uid, NOT_VERIFIED,
        )
        information = _event_information(NOT_VERIFIED)
    send_verification_report(call.assoc, verification, information)


# -- the TDS's mailbox --------------------------------------------------------------------------


class VerificationResults:
    """The verification reports a TDS receives, by Machine Verification instance.

    Bind it to ``EVT_N_EVENT_REPORT`` on the association that sends the
    N-ACTION (``AE.associate(..., evt_handlers=[(evt.EVT_N_EVENT_REPORT,
    results)])``) and :meth:`wait` for the result. As a handler it answers
    Success to the reports of the two RT Machine Verification SOP classes
    (the plugin has checked them) and 0118H *No such SOP class* to another's.
    Each *Done* is kept until :meth:`wait` takes it, so a result that arrives
    before the caller waits is not lost, and a second verification of the same
    instance (after an override, PS3.17 BBB.3.3) gets its own. Thread-safe.
    """

    def __init__(self) -> None:
        self._done: dict[str, deque[str]] = {}
        self._pending: dict[str, int] = {}
        self._cond = threading.Condition()

    def __call__(self, event: Any) -> tuple[int | Dataset, None]:
        request = event.request
        if request.AffectedSOPClassUID not in (
            RT_CONVENTIONAL_MACHINE_VERIFICATION, RT_ION_MACHINE_VERIFICATION
        ):
            return refusal(Status.NO_SUCH_SOP_CLASS, "not an RT Machine Verification report"), None
        uid = str(request.AffectedSOPInstanceUID)
        if request.EventTypeID == EVENT_PENDING:
            with self._cond:
                self._pending[uid] = self._pending.get(uid, 0) + 1
                self._cond.notify_all()
            return Status.SUCCESS, None
        try:
            status = str(_event_information(event.event_information).TreatmentVerificationStatus)
        except Exception as exc:
            return refusal(Status.INVALID_ARGUMENT_VALUE, f"unreadable report: {exc}"), None
        with self._cond:
            self._done.setdefault(uid, deque()).append(status)
            self._cond.notify_all()
        return Status.SUCCESS, None

    def wait(self, sop_instance_uid: str, timeout: float | None = None) -> str | None:
        """The next *Done* of ``sop_instance_uid`` -- its Treatment Verification Status --,
        waiting up to ``timeout`` seconds; ``None`` if none has come by then."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._done.get(sop_instance_uid)), timeout)
            results = self._done.get(sop_instance_uid)
            return results.popleft() if results else None

    def pending(self, sop_instance_uid: str) -> int:
        """How many *Pending* reports ``sop_instance_uid`` has received."""
        with self._cond:
            return self._pending.get(sop_instance_uid, 0)


_N_REQUESTS = (
    dm.NCreateRQ, dm.NSetRQ, dm.NGetRQ, dm.NActionRQ, dm.NDeleteRQ, dm.NEventReportRQ,
)
_GROUP = _sop_groups.SERVICE_GROUPS["rt_machine_verification"]

RT_MACHINE_VERIFICATION: ServiceClass = n_service_class(
    "rt_machine_verification",
    sop_classes=_GROUP,
    status_table=RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS,
    operations=dict.fromkeys(_GROUP, _N_REQUESTS),  # Table DD.3.2-1, for both SOP classes
    rules={
        dm.NCreateRQ: Rules(check=_check_create),
        dm.NSetRQ: Rules(check=_check_set),
        dm.NActionRQ: Rules(check=_check_action, default=_default_action, after=_verify),
        dm.NEventReportRQ: Rules(check=_check_event_report),
    },
    events=[EVT_MACHINE_VERIFICATION],
    context_lists=_sop_groups.context_lists_of("rt_machine_verification"),
    reference="PS3.4 Annex DD",
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The RT Machine Verification service classes."""
    return [RT_MACHINE_VERIFICATION]
