"""The Storage Commitment service class, Push Model (PS3.4 Annex J): N-ACTION, N-EVENT-REPORT.

An SCU that has sent instances asks the SCP to take responsibility for them
with an N-ACTION-RQ (Action Type ID 1, on the well-known SOP instance
1.2.840.10008.1.20.1.1, PS3.4 J.3.2.1) whose Action Information holds a
Transaction UID and the Referenced SOP Sequence. The SCP answers at once --
Success means "received", not "committed" -- and reports the result later
with an N-EVENT-REPORT-RQ carrying the same Transaction UID (PS3.4 J.3.3.1):
Event Type ID 1 when every instance is committed, 2 when some failed, each
failure with its Failure Reason (PS3.3 C.14.1.1). The report goes on the same
association if it is still open, else on one the SCP opens to the SCU,
proposing the SCP role for itself (PS3.4 J.3.3.1.2-3; the SCU must accept it).

**SCP.** Two ways to serve, which can be combined:

* ``EVT_N_ACTION`` -- pynetdicom's contract: the handler returns the N-ACTION
  status (and ``None``); sending the report is then the application's business
  (``send_commitment_report``, or ``assoc.send_n_event_report``).
* :data:`EVT_STORAGE_COMMITMENT` -- dicomnet's: called *after* the N-ACTION
  response has gone out, with ``event.commitment``, the
  :class:`CommitmentRequest`. The handler returns the
  :class:`CommitmentResult` (``event.commitment.result(failed={...})``) or the
  Event Information as a Dataset, and the plugin reports it (same association
  first, else a new one, see :func:`send_commitment_report`); or it returns
  :data:`REPORT_LATER` and calls :func:`send_commitment_report` itself when the
  instances are safe. Without an ``EVT_N_ACTION`` handler the N-ACTION is
  answered Success. A handler that raises, or returns something else, reports
  every instance failed with 0110H *Processing failure* (and logs why), so
  the SCU is never left waiting. References the result leaves out are
  reported failed (0110H): J.3.3.1.2 wants each requested instance in the
  report.

Checked before any handler runs (PS3.4 J.3.2.1; PS3.7 Annex C): an Action Type
ID other than 1 gets 0123H *No such action*; a Requested SOP Instance UID other
than the well-known instance gets 0112H *No such SOP instance*; Action
Information without a Transaction UID or with an empty or incomplete
Referenced SOP Sequence gets 0115H *Invalid argument value*.

**SCU.** :func:`request_commitment` sends the N-ACTION; the report arrives as
an N-EVENT-REPORT-RQ, on the same association (bind ``EVT_N_EVENT_REPORT`` to
it) or on a new one (bind it to the server of an AE that accepts Storage
Commitment with ``scu_role=False, scp_role=True``). :class:`CommitmentResults`
is such a handler: it collects the results by Transaction UID, and its
``wait()`` blocks until one arrives. An N-EVENT-REPORT with an Event Type ID
other than 1 or 2 gets 0113H *No such event type*. Storage Commitment has no
status codes of its own (PS3.4 J.3.2.1.4): PS3.7 Annex C's.

The report's address, when the SCP opens the association: the
``dicomnet_resolve_report_destination`` hooks (a :class:`ReportDestinations`
registered as a plugin), then ``ae.report_destinations``, then
``ae.move_destinations``, under the AE title the N-ACTION came from.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.events import InterventionEvent
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceCall, ServiceClass
from dicomnet.status import STORAGE_COMMITMENT_SERVICE_CLASS_STATUS, Status

from ._n_engine import (
    Answer,
    ReportDestinations,
    Rules,
    event_type_check,
    n_service_class,
    refusal,
    send_report,
)

__all__ = [
    "EVENT_FAILURES_EXIST",
    "EVENT_SUCCESSFUL",
    "EVT_STORAGE_COMMITMENT",
    "PUSH_MODEL_INSTANCE",
    "REPORT_LATER",
    "REQUEST_STORAGE_COMMITMENT",
    "STORAGE_COMMITMENT",
    "STORAGE_COMMITMENT_PUSH_MODEL",
    "CommitmentRequest",
    "CommitmentResult",
    "CommitmentResults",
    "FailedReference",
    "Reference",
    "ReportDestinations",
    "dicomnet_service_classes",
    "request_commitment",
    "send_commitment_report",
]

LOGGER = logging.getLogger("dicomnet.nservices")

#: Storage Commitment Push Model SOP Class (PS3.4 J.3)
STORAGE_COMMITMENT_PUSH_MODEL = _sop_groups.SOP_CLASSES["StorageCommitmentPushModel"]
#: its well-known SOP instance (PS3.4 J.3.5), the target of every N-ACTION and report
PUSH_MODEL_INSTANCE = _sop_groups.WELL_KNOWN_INSTANCES["StorageCommitmentPushModelInstance"]
#: Action Type ID "Request Storage Commitment" (PS3.4 Table J.3-1)
REQUEST_STORAGE_COMMITMENT = 1
#: Event Type IDs of the report (PS3.4 Table J.3-2)
EVENT_SUCCESSFUL = 1
EVENT_FAILURES_EXIST = 2

#: Failure Reason 0110H *Processing failure* (PS3.3 C.14.1.1)
_PROCESSING_FAILURE = 0x0110

EVT_STORAGE_COMMITMENT = InterventionEvent(
    "EVT_STORAGE_COMMITMENT",
    "Storage commitment requested: decide which instances are committed (PS3.4 J.3.3.1)",
)


class _ReportLater:
    """The type of :data:`REPORT_LATER`."""

    def __repr__(self) -> str:
        return "REPORT_LATER"


#: Returned by an ``EVT_STORAGE_COMMITMENT`` handler that reports on its own, later.
REPORT_LATER = _ReportLater()


# -- values --------------------------------------------------------------------------------------


@attrs.frozen
class Reference:
    """One instance of a commitment: Referenced SOP Class and Instance UID (PS3.4 Table J.3-1)."""

    sop_class_uid: str = attrs.field(converter=str)
    sop_instance_uid: str = attrs.field(converter=str)

    def failed(self, reason: int = _PROCESSING_FAILURE) -> FailedReference:
        """This reference, failed with ``reason`` (PS3.3 C.14.1.1)."""
        return FailedReference(self.sop_class_uid, self.sop_instance_uid, reason)

    def _item(self) -> Dataset:
        item = Dataset()
        item.ReferencedSOPClassUID = self.sop_class_uid
        item.ReferencedSOPInstanceUID = self.sop_instance_uid
        return item


@attrs.frozen
class FailedReference(Reference):
    """An instance the SCP does not commit to store, and why (PS3.3 C.14.1.1 Failure Reason):

    0110H processing failure, 0112H no such object instance, 0213H resource
    limitation, 0122H SOP class not supported, 0119H class/instance conflict,
    0131H duplicate transaction UID.
    """

    failure_reason: int = _PROCESSING_FAILURE

    def _item(self) -> Dataset:
        item = super()._item()
        item.FailureReason = self.failure_reason
        return item


def _references(sequence: Any, what: str, failed: bool = False) -> tuple[Any, ...]:
    found: list[Reference] = []
    for number, item in enumerate(sequence or (), 1):
        sop_class = item.get("ReferencedSOPClassUID")
        sop_instance = item.get("ReferencedSOPInstanceUID")
        if not sop_class or not sop_instance:
            raise ValueError(
                f"item {number} of the {what} lacks its Referenced SOP Class or Instance UID"
            )
        if failed:
            reason = item.get("FailureReason")
            found.append(
                FailedReference(
                    sop_class, sop_instance, _PROCESSING_FAILURE if reason is None else int(reason)
                )
            )
        else:
            found.append(Reference(sop_class, sop_instance))
    return tuple(found)


def _reference(value: Any) -> Reference:
    if isinstance(value, Reference):
        return value
    if isinstance(value, Dataset):
        return Reference(value.SOPClassUID, value.SOPInstanceUID)
    sop_class, sop_instance = value
    return Reference(sop_class, sop_instance)


def _reference_tuple(values: Iterable[Reference]) -> tuple[Reference, ...]:
    return tuple(values)


def _failed_tuple(values: Iterable[FailedReference]) -> tuple[FailedReference, ...]:
    return tuple(values)


@attrs.frozen
class CommitmentResult:
    """A Storage Commitment result: the Event Information of the report (PS3.4 Table J.3-2)."""

    transaction_uid: str = attrs.field(converter=str)
    committed: tuple[Reference, ...] = attrs.field(default=(), converter=_reference_tuple)
    failed: tuple[FailedReference, ...] = attrs.field(default=(), converter=_failed_tuple)

    @property
    def event_type(self) -> int:
        """1 (successful) without failures, else 2 (failures exist)."""
        return EVENT_FAILURES_EXIST if self.failed else EVENT_SUCCESSFUL

    @property
    def success(self) -> bool:
        """Whether every instance is committed."""
        return not self.failed

    def to_dataset(self) -> Dataset:
        """The Event Information: Transaction UID, Referenced SOP Sequence (committed; absent
        when none is) and Failed SOP Sequence (only with event type 2)."""
        ds = Dataset()
        ds.TransactionUID = self.transaction_uid
        if self.committed:
            ds.ReferencedSOPSequence = [ref._item() for ref in self.committed]
        if self.failed:
            ds.FailedSOPSequence = [ref._item() for ref in self.failed]
        return ds

    @classmethod
    def from_dataset(cls, ds: Dataset) -> CommitmentResult:
        """Read an Event Information; :class:`ValueError` when it is not one."""
        uid = ds.get("TransactionUID")
        if not uid:
            raise ValueError("the Event Information has no Transaction UID (0008,1195)")
        return cls(
            str(uid),
            _references(ds.get("ReferencedSOPSequence"), "Referenced SOP Sequence"),
            _references(ds.get("FailedSOPSequence"), "Failed SOP Sequence", failed=True),
        )


@attrs.frozen
class CommitmentRequest:
    """A Storage Commitment request: the Action Information of the N-ACTION (PS3.4 Table J.3-1)."""

    transaction_uid: str = attrs.field(converter=str)
    references: tuple[Reference, ...] = attrs.field(converter=_reference_tuple)

    @classmethod
    def of(
        cls, instances: Iterable[Any], transaction_uid: str | None = None
    ) -> CommitmentRequest:
        """A request for ``instances``: data sets (their SOP Class and Instance UID),
        ``(class, instance)`` pairs or :class:`Reference`; a new Transaction UID unless given."""
        references = tuple(_reference(item) for item in instances)
        if not references:
            raise ValueError("a storage commitment request needs at least one instance")
        return cls(transaction_uid or generate_uid(), references)

    def to_dataset(self) -> Dataset:
        ds = Dataset()
        ds.TransactionUID = self.transaction_uid
        ds.ReferencedSOPSequence = [ref._item() for ref in self.references]
        return ds

    @classmethod
    def from_dataset(cls, ds: Dataset) -> CommitmentRequest:
        """Read an Action Information; :class:`ValueError` when it is not one."""
        uid = ds.get("TransactionUID")
        if not uid:
            raise ValueError("the Action Information has no Transaction UID (0008,1195)")
        references = _references(ds.get("ReferencedSOPSequence"), "Referenced SOP Sequence")
        if not references:
            raise ValueError("the Action Information has no Referenced SOP Sequence (0008,1199)")
        return cls(str(uid), references)

    def result(
        self, failed: Mapping[str, int] | Iterable[FailedReference] = ()
    ) -> CommitmentResult:
        """The result committing every instance but ``failed``: SOP Instance UID -> Failure
        Reason, or :class:`FailedReference` values."""
        if isinstance(failed, Mapping):
            reasons = {str(uid): int(reason) for uid, reason in failed.items()}
        else:
            reasons = {ref.sop_instance_uid: ref.failure_reason for ref in failed}
        committed = [ref for ref in self.references if ref.sop_instance_uid not in reasons]
        failures = [
            ref.failed(reasons[ref.sop_instance_uid])
            for ref in self.references
            if ref.sop_instance_uid in reasons
        ]
        return CommitmentResult(self.transaction_uid, committed, failures)

    def complete(self, result: CommitmentResult) -> CommitmentResult:
        """``result`` with every requested instance it leaves out added as failed (0110H):
        PS3.4 J.3.3.1.2 wants the whole Referenced SOP Sequence in the report."""
        mentioned = {ref.sop_instance_uid for ref in (*result.committed, *result.failed)}
        missing = [ref.failed() for ref in self.references if ref.sop_instance_uid not in mentioned]
        if not missing:
            return result
        LOGGER.warning(
            "The storage commitment result of %s leaves out %d requested instance(s): "
            "reported as failed (0110H)", self.transaction_uid, len(missing),
        )
        return attrs.evolve(result, failed=(*result.failed, *missing))


# -- the SCP -----------------------------------------------------------------------------------


def _check_action(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """PS3.4 J.3.2.1: Action Type ID 1, on the well-known instance, with a valid request."""
    request: Any = call.request
    if request.ActionTypeID != REQUEST_STORAGE_COMMITMENT:
        return refusal(
            Status.NO_SUCH_ACTION,
            f"Action Type ID {request.ActionTypeID} is not defined (1: request commitment)",
        )
    if request.RequestedSOPInstanceUID != PUSH_MODEL_INSTANCE:
        return refusal(
            Status.NO_SUCH_SOP_INSTANCE,
            f"the Storage Commitment instance is {PUSH_MODEL_INSTANCE}",
        )
    if dataset is None:
        return refusal(Status.INVALID_ARGUMENT_VALUE, "the N-ACTION has no Action Information")
    try:
        CommitmentRequest.from_dataset(dataset)
    except ValueError as exc:
        return refusal(Status.INVALID_ARGUMENT_VALUE, str(exc))
    return None


def _default_action(call: ServiceCall, dataset: Dataset | None) -> Answer:
    """Without an ``EVT_N_ACTION`` handler, a request is received (Success) when someone will
    decide it (an ``EVT_STORAGE_COMMITMENT`` handler)."""
    return Status.SUCCESS if call.is_bound(EVT_STORAGE_COMMITMENT) else None


def _result_of(commitment: CommitmentRequest, answer: Any) -> CommitmentResult | Dataset:
    if isinstance(answer, CommitmentResult):
        if answer.transaction_uid != commitment.transaction_uid:
            raise ValueError(
                f"the result is for transaction {answer.transaction_uid}, "
                f"not {commitment.transaction_uid}"
            )
        return commitment.complete(answer)
    if isinstance(answer, Dataset):
        if answer.get("TransactionUID") != commitment.transaction_uid:
            raise ValueError("the Event Information does not carry the request's Transaction UID")
        return answer
    raise TypeError(
        f"{answer!r} is neither a CommitmentResult, an Event Information Dataset nor REPORT_LATER"
    )


def _commit(call: ServiceCall, dataset: Dataset | None, status: int) -> None:
    """After the N-ACTION response: ask ``EVT_STORAGE_COMMITMENT``, report the result."""
    if dataset is None or not call.is_bound(EVT_STORAGE_COMMITMENT):
        return  # EVT_N_ACTION alone: the application reports, as with pynetdicom
    commitment = CommitmentRequest.from_dataset(dataset)
    result: CommitmentResult | Dataset
    try:
        answer = call.trigger(
            EVT_STORAGE_COMMITMENT, commitment=commitment, _decoded_dataset=dataset
        )
        if answer is REPORT_LATER:
            return
        result = _result_of(commitment, answer)
    except Exception:
        LOGGER.exception(
            "The handler bound to EVT_STORAGE_COMMITMENT failed for transaction %s: "
            "reporting every instance failed (0110H)", commitment.transaction_uid,
        )
        result = commitment.result(failed=dict.fromkeys(
            (ref.sop_instance_uid for ref in commitment.references), _PROCESSING_FAILURE
        ))
    title = str(call.assoc.remote.get("ae_title") or "").strip()
    send_commitment_report(call.assoc.ae, result, title, assoc=call.assoc)


def send_commitment_report(
    ae: Any, result: CommitmentResult | Dataset, ae_title: str, *, assoc: Any = None
) -> Dataset:
    """Report a Storage Commitment result to the SCU titled ``ae_title`` (PS3.4 J.3.3.1.2).

    ``result`` is a :class:`CommitmentResult` or the Event Information itself
    (event type 2 when it has a Failed SOP Sequence). Sent on ``assoc`` if it
    is given and still established, else on an association ``ae`` opens to the
    SCU (see :mod:`dicomnet.plugins._n_engine`). Returns the status of the
    N-EVENT-REPORT-RSP, an empty Dataset when the report could not be delivered
    (logged). Callable from any thread, e.g. after :data:`REPORT_LATER`.
    """
    if isinstance(result, CommitmentResult):
        information, event_type = result.to_dataset(), result.event_type
    else:
        information = result
        event_type = EVENT_FAILURES_EXIST if result.get("FailedSOPSequence") else EVENT_SUCCESSFUL
    return send_report(
        ae,
        ae_title=ae_title,
        sop_class_uid=STORAGE_COMMITMENT_PUSH_MODEL,
        sop_instance_uid=PUSH_MODEL_INSTANCE,
        event_type=event_type,
        information=information,
        assoc=assoc,
    )


STORAGE_COMMITMENT: ServiceClass = n_service_class(
    "storage_commitment",
    sop_classes=_sop_groups.SERVICE_GROUPS["storage_commitment"],
    status_table=STORAGE_COMMITMENT_SERVICE_CLASS_STATUS,
    operations={STORAGE_COMMITMENT_PUSH_MODEL: (dm.NActionRQ, dm.NEventReportRQ)},
    rules={
        dm.NActionRQ: Rules(check=_check_action, default=_default_action, after=_commit),
        dm.NEventReportRQ: Rules(check=event_type_check((EVENT_SUCCESSFUL, EVENT_FAILURES_EXIST))),
    },
    events=[EVT_STORAGE_COMMITMENT],
    context_lists=_sop_groups.context_lists_of("storage_commitment"),
    reference="PS3.4 Annex J",
)


# -- the SCU -----------------------------------------------------------------------------------


def request_commitment(
    assoc: Any, instances: Iterable[Any], transaction_uid: str | None = None, msg_id: int = 1
) -> tuple[Dataset, CommitmentRequest]:
    """Ask the peer to commit ``instances`` (PS3.4 J.3.2.1.2): ``(status, request)``.

    ``instances`` are data sets, ``(class, instance)`` pairs or
    :class:`Reference`. The status is the N-ACTION response's (Success: the
    request was received); the result comes later, see :class:`CommitmentResults`.
    Raises as ``send_n_action`` does.
    """
    request = CommitmentRequest.of(instances, transaction_uid)
    status, _reply = assoc.send_n_action(
        request.to_dataset(),
        REQUEST_STORAGE_COMMITMENT,
        STORAGE_COMMITMENT_PUSH_MODEL,
        PUSH_MODEL_INSTANCE,
        msg_id=msg_id,
    )
    return status, request


class CommitmentResults:
    """Storage Commitment results as they arrive, by Transaction UID (an SCU's mailbox).

    Bind it to ``EVT_N_EVENT_REPORT`` -- on the association of the request and
    on the server the SCP may report to -- and :meth:`wait` for a transaction.
    As a handler it answers Success to a valid report of the Storage Commitment
    Push Model, 0115H *Invalid argument value* to one it cannot read, and 0118H
    *No such SOP class* to the report of another SOP class. Thread-safe; the
    first report of a transaction is kept.
    """

    def __init__(self) -> None:
        self._results: dict[str, CommitmentResult] = {}
        self._cond = threading.Condition()

    def __call__(self, event: Any) -> tuple[int | Dataset, None]:
        request = event.request
        if request.AffectedSOPClassUID != STORAGE_COMMITMENT_PUSH_MODEL:
            return refusal(Status.NO_SUCH_SOP_CLASS, "not a Storage Commitment report"), None
        try:
            result = CommitmentResult.from_dataset(event.event_information)
        except Exception as exc:
            return refusal(Status.INVALID_ARGUMENT_VALUE, f"unreadable report: {exc}"), None
        with self._cond:
            self._results.setdefault(result.transaction_uid, result)
            self._cond.notify_all()
        return Status.SUCCESS, None

    def wait(self, transaction_uid: str, timeout: float | None = None) -> CommitmentResult | None:
        """The result of ``transaction_uid``, waiting up to ``timeout`` seconds; ``None`` if it
        has not arrived by then."""
        with self._cond:
            self._cond.wait_for(lambda: transaction_uid in self._results, timeout)
            return self._results.get(transaction_uid)

    def get(self, transaction_uid: str) -> CommitmentResult | None:
        """The result of ``transaction_uid`` if it has arrived."""
        with self._cond:
            return self._results.get(transaction_uid)

    def __len__(self) -> int:
        with self._cond:
            return len(self._results)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Storage Commitment service class."""
    return [STORAGE_COMMITMENT]
