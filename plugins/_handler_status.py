"""The status a DIMSE-C SCP answers with, from what its application handler returned.

A pynetdicom-style handler may return a status data set: Status (0000,0900)
and, as PS3.7 Annex C allows, status detail (Error Comment, Offending
Element...) that goes into the response. When that detail cannot go into the
response (an Error Comment longer than 64 characters, a value of the wrong
type), the handler failed: the response carries the service's failure status
instead, and the log says why. Shared by the Verification (PS3.4 A) and
Storage (PS3.4 B) SCPs, whose policy this is.
"""

from __future__ import annotations

from typing import TypeVar

from pydicom.dataset import Dataset

from dicomnet.dimse_messages import DimseResponse, with_status
from dicomnet.events import InterventionEvent
from dicomnet.service import handler_failure

__all__ = ["with_handler_status"]

_R = TypeVar("_R", bound=DimseResponse)


def with_handler_status(
    response: _R, extra: Dataset | None, *, event: InterventionEvent, failure_status: int
) -> _R:
    """``response`` with the status detail ``extra`` of ``event``'s handler (PS3.7 Annex C).

    ``extra`` is the data set :func:`dicomnet.service.run_intervention` (or
    :func:`~dicomnet.service.status_from_handler_result`) returned beside the
    status, ``None`` for none. If it cannot go into the response, the
    response's Status becomes ``failure_status`` (logged, with the reason).
    """
    if extra is None:
        return response
    try:
        return with_status(response, extra)
    except (TypeError, ValueError) as exc:
        what = f"status data set of {event.name}"
        return with_status(response, handler_failure(exc, what=what, status=failure_status))
