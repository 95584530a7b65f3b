"""The Basic Worklist Management service class (PS3.4 Annex K): Modality Worklist C-FIND.

SOP class: Modality Worklist Information Model - FIND (PS3.4 K.6.1). The
application answers with a generator bound to ``EVT_C_FIND`` that yields
``(status, identifier)`` for each matching Scheduled Procedure Step, exactly
as for a Query/Retrieve C-FIND (see :mod:`dicomnet.plugins._qr_engine`):
Pending FF00H (or FF01H when optional keys were not supported) with the
identifier, then Success when the generator ends; Cancel FE00H after a
C-CANCEL. Statuses: PS3.4 K.4.1.1.4 (A700H, A900H, C000H-CFFFH); the failures
of the application are C310H-C312H, as for Query/Retrieve.
"""

from __future__ import annotations

from collections.abc import Sequence

from dicomnet import _sop_groups
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceClass
from dicomnet.status import MODALITY_WORKLIST_SERVICE_CLASS_STATUS

from ._qr_engine import FIND_FAILURES, Operation, query_service_class

__all__ = ["BASIC_WORKLIST", "dicomnet_service_classes"]

BASIC_WORKLIST: ServiceClass = query_service_class(
    "basic_worklist",
    sop_classes=_sop_groups.SERVICE_GROUPS["basic_worklist"],
    status_table=MODALITY_WORKLIST_SERVICE_CLASS_STATUS,
    find=Operation(MODALITY_WORKLIST_SERVICE_CLASS_STATUS, FIND_FAILURES),
    context_lists=_sop_groups.context_lists_of("basic_worklist"),
    reference="PS3.4 Annex K",
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Basic Worklist Management service class."""
    return [BASIC_WORKLIST]
