"""The Media Creation Management service class (PS3.4 Annex S): N-CREATE, N-ACTION, N-GET.

One SOP class, Media Creation Management (1.2.840.10008.5.1.1.33,
``dicomnet._sop_groups.SERVICE_GROUPS["media_creation"]``). An SCU asks a
media creation device (CD/DVD burner, USB writer) to write a set of
composite instances as interchange media:

* N-CREATE (S.3.2.1) -- a media creation request: the Referenced SOP Sequence
  of the instances (already sent to the SCP), the Storage Media File-Set ID,
  the label, the application profile...; the SCP's answer means "received",
  and PS3.4 S.3.2.1.3 lets it return no warning status;
* N-ACTION (S.3.2.2, S.3.2.3) -- Action Type ID 1 *Initiate Media Creation*
  (Number of Copies, Request Priority), 2 *Cancel Media Creation*;
* N-GET (S.3.2.4) -- the request's Execution Status (IDLE, PENDING,
  CREATING, DONE, FAILURE), Execution Status Info, the pieces of media
  created, the failed instances.

The SCP answers through ``EVT_N_CREATE``, ``EVT_N_ACTION`` and ``EVT_N_GET``
(pynetdicom's contract, :mod:`dicomnet.plugins._n_engine`) with the statuses
of :data:`dicomnet.status.MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS`
(A510H initiate already received, C201H already completed, C202H in progress
and cannot be interrupted, C203H cancellation denied; 0001H optional
attributes not supported for N-GET). Checked before the handler: an Action
Type ID other than 1 or 2 gets 0123H *No such action*; another operation
0211H. Keeping warnings out of the N-CREATE answer is the handler's part.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceCall, ServiceClass
from dicomnet.status import MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS, Status

from ._n_engine import Answer, Rules, n_service_class, refusal

__all__ = [
    "ACTION_CANCEL",
    "ACTION_INITIATE",
    "MEDIA_CREATION",
    "MEDIA_CREATION_MANAGEMENT",
    "dicomnet_service_classes",
]

#: Media Creation Management SOP Class (PS3.4 S.3)
MEDIA_CREATION_MANAGEMENT = _sop_groups.SOP_CLASSES["MediaCreationManagement"]
#: Action Type IDs: Initiate Media Creation (S.3.2.2), Cancel Media Creation (S.3.2.3)
ACTION_INITIATE = 1
ACTION_CANCEL = 2


def _check_action(call: ServiceCall, dataset: Dataset | None) -> Answer:
    action = getattr(call.request, "ActionTypeID", None)
    if action not in (ACTION_INITIATE, ACTION_CANCEL):
        return refusal(
            Status.NO_SUCH_ACTION,
            f"Action Type ID {action} is neither 1 (initiate) nor 2 (cancel) media creation",
        )
    return None


MEDIA_CREATION: ServiceClass = n_service_class(
    "media_creation",
    sop_classes=_sop_groups.SERVICE_GROUPS["media_creation"],
    status_table=MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS,
    operations={MEDIA_CREATION_MANAGEMENT: (dm.NCreateRQ, dm.NActionRQ, dm.NGetRQ)},
    rules={dm.NActionRQ: Rules(check=_check_action)},
    context_lists=_sop_groups.context_lists_of("media_creation"),
    reference="PS3.4 Annex S",
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Media Creation Management service class."""
    return [MEDIA_CREATION]
