"""The other query services of PS3.4: C-FIND (and C-GET, C-MOVE) over non-image information.

One plugin, eight service classes, all served by :mod:`dicomnet.plugins._qr_engine`
with the handlers the application binds to ``EVT_C_FIND``, ``EVT_C_GET`` and
``EVT_C_MOVE`` (pynetdicom's contract):

==================================  ======  =========================  ==================
service class (name)                PS3.4   operations                 statuses
==================================  ======  =========================  ==================
relevant_patient_query              Q       FIND, single match         Q.2.1.1.4
substance_administration_query      V       FIND                       V.4.1.1.4
hanging_protocol_qr                 U       FIND, MOVE, GET            as C.4 (U.4)
defined_procedure_protocol_qr       HH      FIND, MOVE, GET            as C.4 (HH.4)
color_palette_qr                    X       FIND, MOVE, GET            as C.4 (X.4)
implant_template_qr                 BB      FIND, MOVE, GET (three     as C.4 (BB.4)
                                            information models)
protocol_approval_qr                II      FIND, MOVE, GET            as C.4 (II.4)
inventory_qr                        KK      FIND, MOVE, GET            as C.4 (KK.4)
==================================  ======  =========================  ==================

**Relevant Patient Information Query** (PS3.4 Q.2.1.1.3.1) returns at most
one patient: the engine reads the handler's results one ahead, and a second
match gives C100H *More than one match found* with no Pending response; no
match is plain Success. Its status table lists only C000H as *Unable to
process*, so every failure of the application (handler raised, invalid value,
identifier not decodable) is C000H there; C200H *Unable to support the
requested template* is for the handler to yield.

The SOP classes come from ``dicomnet._sop_groups.SERVICE_GROUPS`` under the
names above (the retired classes are not claimed).
"""

from __future__ import annotations

from collections.abc import Sequence

from dicomnet import _sop_groups
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceClass
from dicomnet.status import (
    QR_FIND_SERVICE_CLASS_STATUS,
    QR_GET_SERVICE_CLASS_STATUS,
    QR_MOVE_SERVICE_CLASS_STATUS,
    RELEVANT_PATIENT_SERVICE_CLASS_STATUS,
    SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS,
)

from ._qr_engine import (
    FIND_FAILURES,
    GET_FAILURES,
    MOVE_FAILURES,
    FailureCodes,
    Operation,
    query_service_class,
)

__all__ = [
    "COLOR_PALETTE",
    "DEFINED_PROCEDURE_PROTOCOL",
    "HANGING_PROTOCOL",
    "IMPLANT_TEMPLATE",
    "INVENTORY",
    "PROTOCOL_APPROVAL",
    "RELEVANT_PATIENT",
    "SERVICE_CLASSES",
    "SUBSTANCE_ADMINISTRATION",
    "dicomnet_service_classes",
]

_FIND = Operation(QR_FIND_SERVICE_CLASS_STATUS, FIND_FAILURES)
_GET = Operation(QR_GET_SERVICE_CLASS_STATUS, GET_FAILURES)
_MOVE = Operation(QR_MOVE_SERVICE_CLASS_STATUS, MOVE_FAILURES)
_QR_STATUS = QR_FIND_SERVICE_CLASS_STATUS.extend(
    "Query/Retrieve", {**QR_GET_SERVICE_CLASS_STATUS.codes, **QR_MOVE_SERVICE_CLASS_STATUS.codes}
)


def _retrievable(name: str, annex: str) -> ServiceClass:
    """A service class with the Query/Retrieve FIND, MOVE and GET behaviour (PS3.4 C.4)."""
    return query_service_class(
        name,
        sop_classes=_sop_groups.SERVICE_GROUPS[name],
        status_table=_QR_STATUS,
        find=_FIND,
        get=_GET,
        move=_MOVE,
        context_lists=_sop_groups.context_lists_of(name),
        reference=f"PS3.4 Annex {annex}",
    )


RELEVANT_PATIENT: ServiceClass = query_service_class(
    "relevant_patient_query",
    sop_classes=_sop_groups.SERVICE_GROUPS["relevant_patient_query"],
    status_table=RELEVANT_PATIENT_SERVICE_CLASS_STATUS,
    find=Operation(
        RELEVANT_PATIENT_SERVICE_CLASS_STATUS, FailureCodes.single(0xC000), single_match=True
    ),
    context_lists=_sop_groups.context_lists_of("relevant_patient_query"),
    reference="PS3.4 Annex Q",
)

SUBSTANCE_ADMINISTRATION: ServiceClass = query_service_class(
    "substance_administration_query",
    sop_classes=_sop_groups.SERVICE_GROUPS["substance_administration_query"],
    status_table=SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS,
    find=Operation(SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS, FIND_FAILURES),
    context_lists=_sop_groups.context_lists_of("substance_administration_query"),
    reference="PS3.4 Annex V",
)

HANGING_PROTOCOL = _retrievable("hanging_protocol_qr", "U")
DEFINED_PROCEDURE_PROTOCOL = _retrievable("defined_procedure_protocol_qr", "HH")
COLOR_PALETTE = _retrievable("color_palette_qr", "X")
IMPLANT_TEMPLATE = _retrievable("implant_template_qr", "BB")
PROTOCOL_APPROVAL = _retrievable("protocol_approval_qr", "II")
INVENTORY = _retrievable("inventory_qr", "KK")

#: every service class of this plugin, in PS3.4 order
SERVICE_CLASSES: tuple[ServiceClass, ...] = (
    RELEVANT_PATIENT,
    HANGING_PROTOCOL,
    SUBSTANCE_ADMINISTRATION,
    COLOR_PALETTE,
    IMPLANT_TEMPLATE,
    DEFINED_PROCEDURE_PROTOCOL,
    PROTOCOL_APPROVAL,
    INVENTORY,
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The eight query service classes."""
    return list(SERVICE_CLASSES)
