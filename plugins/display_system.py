"""The Display System Management service class (PS3.4 Annex EE): N-GET.

One SOP class, Display System (``dicomnet._sop_groups.SERVICE_GROUPS["display_system"]``),
one operation (Table EE.2.2-1): an SCU -- a QA application, a display
calibration tool -- reads with an N-GET the description, configuration and QA
results of a display system from the SCP that manages it, on the well-known
Display System SOP instance (:data:`DISPLAY_SYSTEM_INSTANCE`). The Attribute
Identifier List names what it wants (Table EE.2.2.1-2: the display subsystems,
their calibration and QA results...).

The SCP answers through ``EVT_N_GET`` (pynetdicom's contract,
:mod:`dicomnet.plugins._n_engine`): ``event.attribute_identifiers``, and
``(status, attributes)`` back. Annex EE has no status codes of its own: those
of PS3.7 Annex C (0107H attribute list error, 0112H no such SOP instance...).
Any other request gets 0211H *Unrecognized operation*.
"""

from __future__ import annotations

from collections.abc import Sequence

from dicomnet import _sop_groups
from dicomnet import dimse_messages as dm
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceClass
from dicomnet.status import StatusTable

from ._n_engine import n_service_class

__all__ = [
    "DISPLAY_SYSTEM",
    "DISPLAY_SYSTEM_INSTANCE",
    "DISPLAY_SYSTEM_MANAGEMENT",
    "DISPLAY_SYSTEM_STATUS",
    "dicomnet_service_classes",
]

#: Display System SOP Class (PS3.4 EE.2)
DISPLAY_SYSTEM = _sop_groups.SOP_CLASSES["DisplaySystem"]
#: the well-known Display System SOP instance
DISPLAY_SYSTEM_INSTANCE = _sop_groups.WELL_KNOWN_INSTANCES["DisplaySystemInstance"]
#: PS3.4 EE defines no status of its own: the general ones of PS3.7 Annex C
DISPLAY_SYSTEM_STATUS = StatusTable("Display System Management")

DISPLAY_SYSTEM_MANAGEMENT: ServiceClass = n_service_class(
    "display_system",
    sop_classes=_sop_groups.SERVICE_GROUPS["display_system"],
    status_table=DISPLAY_SYSTEM_STATUS,
    operations={DISPLAY_SYSTEM: (dm.NGetRQ,)},
    context_lists=_sop_groups.context_lists_of("display_system"),
    reference="PS3.4 Annex EE",
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Display System Management service class."""
    return [DISPLAY_SYSTEM_MANAGEMENT]
