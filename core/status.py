"""DIMSE status codes: categories, the general table and service-class tables.

The public module ``dicomnet.status`` mirrors the names of ``pynetdicom.status``
so that handler code written for pynetdicom runs unchanged.

* :func:`code_to_category` sorts a code into its status class with the rules of
  PS3.7 Annex C (introduction): Success ``0000``; Warning ``0001``, ``Bxxx``,
  ``0107``, ``0116``; Failure ``Axxx``, ``Cxxx``, ``01xx`` (except ``0107`` and
  ``0116``), ``02xx``; Cancel ``FE00``; Pending ``FF00`` and ``FF01``. Any other
  code is ``'Unknown'`` (PS3.7 forbids implementations from using it).
* :data:`GENERAL_STATUS` holds the codes PS3.7 Annex C assigns to every DIMSE
  service (``01xx``, ``02xx``...). Their meanings may not be changed by a
  service class.
* :class:`StatusTable` is a read-only mapping ``code -> (category, description)``
  of the codes one service class assigns (PS3.4), with ranges such as
  ``C000-CFFF`` ("any value ... as assigned by the implementation"). A lookup
  that the table itself does not answer falls back to the general table.
  Service-class plugins declare their own tables; the tables ``pynetdicom``
  exposes as module constants are defined here too.

The category helpers (:func:`is_pending` and friends) are on the response path
of every C-FIND and C-MOVE and are therefore plain comparisons.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

import attrs
from pydicom.dataset import Dataset

__all__ = [
    "APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS",
    "GENERAL_STATUS",
    "MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS",
    "MODALITY_WORKLIST_SERVICE_CLASS_STATUS",
    "NON_PATIENT_SERVICE_CLASS_STATUS",
    "PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS",
    "PROCEDURE_STEP_STATUS",
    "QR_FIND_SERVICE_CLASS_STATUS",
    "QR_GET_SERVICE_CLASS_STATUS",
    "QR_MOVE_SERVICE_CLASS_STATUS",
    "RELEVANT_PATIENT_SERVICE_CLASS_STATUS",
    "RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS",
    "STATUS_CANCEL",
    "STATUS_FAILURE",
    "STATUS_PENDING",
    "STATUS_SUCCESS",
    "STATUS_UNKNOWN",
    "STATUS_WARNING",
    "STORAGE_COMMITMENT_SERVICE_CLASS_STATUS",
    "STORAGE_MANAGEMENT_SERVICE_CLASS_STATUS",
    "STORAGE_SERVICE_CLASS_STATUS",
    "SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS",
    "UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS",
    "VERIFICATION_SERVICE_CLASS_STATUS",
    "Status",
    "StatusRange",
    "StatusTable",
    "code_to_category",
    "code_to_status",
    "is_cancel",
    "is_failure",
    "is_final",
    "is_pending",
    "is_success",
    "is_warning",
]

#: Status categories (the "Status Class" of PS3.7 Annex C), as pynetdicom spells them.
STATUS_SUCCESS = "Success"
STATUS_WARNING = "Warning"
STATUS_FAILURE = "Failure"
STATUS_CANCEL = "Cancel"
STATUS_PENDING = "Pending"
STATUS_UNKNOWN = "Unknown"

_WARNING_CODES = frozenset((0x0001, 0x0107, 0x0116))


def _check_code(code: int) -> None:
    if not isinstance(code, int) or code < 0:
        raise ValueError(f"a status code is a non-negative integer, not {code!r}")


def code_to_category(code: int) -> str:
    """The status class of ``code`` (PS3.7 Annex C), or ``'Unknown'``.

    Raises :class:`ValueError` if ``code`` is not a non-negative integer.
    """
    _check_code(code)
    if code == 0x0000:
        return STATUS_SUCCESS
    if code in (0xFF00, 0xFF01):
        return STATUS_PENDING
    if code == 0xFE00:
        return STATUS_CANCEL
    if code in _WARNING_CODES or 0xB000 <= code <= 0xBFFF:
        return STATUS_WARNING
    if 0xA000 <= code <= 0xAFFF or 0xC000 <= code <= 0xCFFF or 0x0100 <= code <= 0x02FF:
        return STATUS_FAILURE
    return STATUS_UNKNOWN


def code_to_status(code: int) -> Dataset:
    """A :class:`~pydicom.dataset.Dataset` holding only Status (0000,0900) = ``code``.

    This is the form pynetdicom handlers return when they want to add Error
    Comment, Offending Element... to a response (PS3.7 Annex C).
    """
    _check_code(code)
    if code > 0xFFFF:
        raise ValueError(f"status code 0x{code:X} does not fit in an US value")
    ds = Dataset()
    ds.Status = code
    return ds


# -- fast category tests (hot path: one call per C-FIND/C-MOVE/C-GET response) ---------


def is_success(code: int) -> bool:
    """True for 0000H (PS3.7 C.1)."""
    return code == 0x0000


def is_pending(code: int) -> bool:
    """True for FF00H and FF01H: more responses follow (PS3.7 C.2)."""
    return code == 0xFF00 or code == 0xFF01  # noqa: PLR1714 -- faster than a tuple test


def is_final(code: int) -> bool:
    """True for any status that ends the operation, i.e. anything but pending."""
    return code != 0xFF00 and code != 0xFF01  # noqa: PLR1714


def is_cancel(code: int) -> bool:
    """True for FE00H (PS3.7 C.3)."""
    return code == 0xFE00


def is_warning(code: int) -> bool:
    """True for the warning class: 0001H, 0107H, 0116H, Bxxx (PS3.7 C.4)."""
    return 0xB000 <= code <= 0xBFFF or code in _WARNING_CODES


def is_failure(code: int) -> bool:
    """True for the failure class: Axxx, Cxxx, 01xx (but 0107H, 0116H), 02xx (PS3.7 C.5)."""
    return code_to_category(code) == STATUS_FAILURE


# -- tables ---------------------------------------------------------------------------

StatusEntry = tuple[str, str]


@attrs.frozen
class StatusRange:
    """Codes ``first`` to ``last`` inclusive sharing one meaning (e.g. C000-CFFF)."""

    first: int
    last: int
    category: str
    description: str

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.first <= self.last <= 0xFFFF:
            raise ValueError(f"bad status range 0x{self.first:04X}-0x{self.last:04X}")


def _freeze_codes(codes: Mapping[int, StatusEntry]) -> Mapping[int, StatusEntry]:
    return MappingProxyType(dict(codes))


def _range_tuple(ranges: Iterable[StatusRange]) -> tuple[StatusRange, ...]:
    return tuple(ranges)


@attrs.frozen(eq=False)
class StatusTable(Mapping[int, StatusEntry]):
    """A service class's status codes: ``code -> (category, description)``.

    Lookup order: the table's own ``codes``, then its ``ranges`` (first match),
    then -- unless ``general`` is false -- the general table of PS3.7 Annex C.
    Iteration yields every code the lookup answers, in ascending order (ranges
    expanded), so the table behaves like the dicts of ``pynetdicom.status``.

    :meth:`category` and :meth:`description` also answer codes that are not in
    the table: the category then follows the rules of :func:`code_to_category`.
    """

    name: str
    codes: Mapping[int, StatusEntry] = attrs.field(factory=dict, converter=_freeze_codes)
    ranges: tuple[StatusRange, ...] = attrs.field(default=(), converter=_range_tuple)
    general: bool = True

    def __getitem__(self, code: int) -> StatusEntry:
        entry = self.codes.get(code)
        if entry is not None:
            return entry
        for rng in self.ranges:
            if rng.first <= code <= rng.last:
                return rng.category, rng.description
        if self.general:
            entry = _GENERAL_CODES.get(code)
            if entry is not None:
                return entry
        raise KeyError(code)

    def _keys(self) -> set[int]:
        keys = set(self.codes)
        for rng in self.ranges:
            keys.update(range(rng.first, rng.last + 1))
        if self.general:
            keys.update(_GENERAL_CODES)
        return keys

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._keys()))

    def __len__(self) -> int:
        return len(self._keys())

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, int):
            return False
        try:
            self[code]
        except KeyError:
            return False
        return True

    def category(self, code: int) -> str:
        """The category the table gives ``code``, else the one of PS3.7 Annex C."""
        entry = self.get(code)
        return entry[0] if entry is not None else code_to_category(code)

    def description(self, code: int) -> str:
        """The table's description of ``code``, or ``''`` if it has none."""
        entry = self.get(code)
        return entry[1] if entry is not None else ""

    def extend(
        self,
        name: str,
        codes: Mapping[int, StatusEntry] | None = None,
        ranges: Iterable[StatusRange] = (),
    ) -> StatusTable:
        """A new table whose own entries come first, then this table's."""
        merged = dict(self.codes)
        merged.update(codes or {})
        return StatusTable(name, merged, (*ranges, *self.ranges), self.general)


S, W, F, C, P = STATUS_SUCCESS, STATUS_WARNING, STATUS_FAILURE, STATUS_CANCEL, STATUS_PENDING

# PS3.7 Annex C: statuses shared by all DIMSE services (C.1 to C.5).
_GENERAL_CODES: Mapping[int, StatusEntry] = MappingProxyType(
    {
        0x0000: (S, "Success"),
        0x0105: (F, "No such attribute"),
        0x0106: (F, "Invalid attribute value"),
        0x0107: (W, "Attribute list error"),
        0x0110: (F, "Processing failure"),
        0x0111: (F, "Duplicate SOP instance"),
        0x0112: (F, "No such SOP instance"),
        0x0113: (F, "No such event type"),
        0x0114: (F, "No such argument"),
        0x0115: (F, "Invalid argument value"),
        0x0116: (W, "Attribute value out of range"),
        0x0117: (F, "Invalid SOP instance"),
        0x0118: (F, "No such SOP class"),
        0x0119: (F, "Class-instance conflict"),
        0x0120: (F, "Missing attribute"),
        0x0121: (F, "Missing attribute value"),
        0x0122: (F, "Refused: SOP class not supported"),
        0x0123: (F, "No such action"),
        0x0124: (F, "Refused: not authorized"),
        0x0210: (F, "Duplicate invocation"),
        0x0211: (F, "Unrecognized operation"),
        0x0212: (F, "Mistyped argument"),
        0x0213: (F, "Resource limitation"),
        0xFE00: (C, "Cancelled"),
        0xFF00: (P, "Pending"),
        0xFF01: (P, "Pending, with a warning"),
    }
)

#: PS3.7 Annex C: the codes every DIMSE service may return.
GENERAL_STATUS = StatusTable("General", _GENERAL_CODES, general=False)

#: PS3.4 Annex A: the Verification service uses only general codes.
VERIFICATION_SERVICE_CLASS_STATUS = StatusTable("Verification")

#: PS3.4 B.2.3 (Table B.2-1): C-STORE.
STORAGE_SERVICE_CLASS_STATUS = StatusTable(
    "Storage",
    {
        0xB000: (W, "Coercion of data elements"),
        0xB006: (W, "Elements discarded"),
        0xB007: (W, "Data set does not match SOP class"),
    },
    (
        StatusRange(0xA700, 0xA7FF, F, "Refused: out of resources"),
        StatusRange(0xA900, 0xA9FF, F, "Error: data set does not match SOP class"),
        StatusRange(0xC000, 0xCFFF, F, "Error: cannot understand"),
    ),
)

_UNABLE_TO_PROCESS = StatusRange(0xC000, 0xCFFF, F, "Unable to process")

#: PS3.4 C.4.1.1.4 (Table C.4-1) and the repository query of C.6.4: C-FIND.
QR_FIND_SERVICE_CLASS_STATUS = StatusTable(
    "Query/Retrieve - FIND",
    {
        0xA700: (F, "Refused: out of resources"),
        0xA710: (F, "Invalid prior record key"),
        0xA900: (F, "Identifier does not match SOP class"),
        0xB001: (W, "Matching reached the response limit; another request may return more"),
        0xFE00: (C, "Matching terminated due to a cancel request"),
        0xFF00: (P, "Match supplied; optional keys supported like required keys"),
        0xFF01: (P, "Match supplied; one or more optional keys were not supported"),
    },
    (_UNABLE_TO_PROCESS,),
)

_RETRIEVE_CODES: dict[int, StatusEntry] = {
    0xA701: (F, "Refused: out of resources, cannot calculate the number of matches"),
    0xA702: (F, "Refused: out of resources, cannot perform sub-operations"),
    0xA900: (F, "Identifier does not match SOP class"),
    # PS3.4 Y.4 (instance and frame level retrieve)
    0xAA00: (F, "None of the requested frames were found in the SOP instance"),
    0xAA01: (F, "Unable to create a new object for this SOP class"),
    0xAA02: (F, "Unable to extract frames"),
    0xAA03: (F, "Time-based request for a SOP instance that is not time-based"),
    0xAA04: (F, "Invalid request"),
    0xFE00: (C, "Sub-operations terminated due to a cancel indication"),
    0xFF00: (P, "Sub-operations are continuing"),
}

#: PS3.4 C.4.2.1.5 (Table C.4-2) and Y.4.1.1.4: C-MOVE.
QR_MOVE_SERVICE_CLASS_STATUS = StatusTable(
    "Query/Retrieve - MOVE",
    {
        **_RETRIEVE_CODES,
        0xA801: (F, "Refused: move destination unknown"),
        0xB000: (W, "Sub-operations complete, one or more failures"),
    },
    (_UNABLE_TO_PROCESS,),
)

#: PS3.4 C.4.3.1.4 (Table C.4-3) and Y.4.2.1.4: C-GET.
QR_GET_SERVICE_CLASS_STATUS = StatusTable(
    "Query/Retrieve - GET",
    {
        **_RETRIEVE_CODES,
        0xB000: (W, "Sub-operations complete, one or more failures or warnings"),
    },
    (_UNABLE_TO_PROCESS,),
)

_WORKLIST_CODES: dict[int, StatusEntry] = {
    0xA700: (F, "Refused: out of resources"),
    0xA900: (F, "Identifier does not match SOP class"),
    0xFE00: (C, "Matching terminated due to a cancel request"),
    0xFF00: (P, "Match supplied; optional keys supported like required keys"),
    0xFF01: (P, "Match supplied; one or more optional keys were not supported"),
}

#: PS3.4 K.4.1.1.4 (Table K.4-1): Modality Worklist C-FIND.
MODALITY_WORKLIST_SERVICE_CLASS_STATUS = StatusTable(
    "Basic Worklist Management", _WORKLIST_CODES, (_UNABLE_TO_PROCESS,)
)

#: PS3.4 Q.2.1.1.4: Relevant Patient Information Query C-FIND.
RELEVANT_PATIENT_SERVICE_CLASS_STATUS = StatusTable(
    "Relevant Patient Information Query",
    {
        0xA700: (F, "Refused: out of resources"),
        0xA900: (F, "Identifier does not match SOP class"),
        0xC000: (F, "Unable to process"),
        0xC100: (F, "More than one match found"),
        0xC200: (F, "Unable to support the requested template"),
        0xFE00: (C, "Matching terminated due to a cancel request"),
        0xFF00: (P, "Current match supplied"),
    },
)

#: PS3.4 V.4.1.1.4: Substance Administration Query C-FIND.
SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS = StatusTable(
    "Substance Administration Query", _WORKLIST_CODES, (_UNABLE_TO_PROCESS,)
)

#: PS3.4 GG.4.2: Non-Patient Object Storage C-STORE.
NON_PATIENT_SERVICE_CLASS_STATUS = StatusTable(
    "Non-Patient Object Storage",
    {
        0xA700: (F, "Refused: out of resources"),
        0xA900: (F, "Data set does not match SOP class"),
        0xC000: (F, "Cannot understand"),
    },
)

#: PS3.4 F.7.2 and F.8.2: Modality Performed Procedure Step N-CREATE/N-SET.
PROCEDURE_STEP_STATUS = StatusTable(
    "Modality Performed Procedure Step",
    {
        0x0001: (W, "Requested optional attributes are not supported"),
        0x0110: (F, "Processing failure: the performed procedure step may no longer be updated"),
    },
)

#: PS3.4 H.4: Print Management (film session, film box, image box, print job).
PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS = StatusTable(
    "Print Management",
    {
        0xB600: (W, "Memory allocation not supported"),
        0xB601: (W, "Film session printing (collation) not supported"),
        0xB602: (W, "Film session has no image box instances (empty page)"),
        0xB603: (W, "Film box has no image box instances (empty page)"),
        0xB604: (W, "Image larger than the image box: demagnified"),
        0xB605: (W, "Requested density outside the printer's range: its limit is used"),
        0xB609: (W, "Image larger than the image box: cropped to fit"),
        0xB60A: (W, "Image or combined print image larger than the image box: decimated"),
        0xC600: (F, "Film session has no film box instances"),
        0xC601: (F, "Cannot create a print job: print queue full (film session)"),
        0xC602: (F, "Cannot create a print job: print queue full (film box)"),
        0xC603: (F, "Image larger than the image box"),
        0xC604: (F, "Image position collision"),
        0xC605: (F, "Insufficient printer memory to store the image"),
        0xC606: (F, "More than one VOI LUT in the image box"),
        0xC613: (F, "Combined print image larger than the image box"),
        0xC616: (F, "A film box has not been printed yet and session-level printing "
                    "is not supported"),
    },
)

#: PS3.4 J.3: Storage Commitment uses only general codes.
STORAGE_COMMITMENT_SERVICE_CLASS_STATUS = StatusTable("Storage Commitment")

#: PS3.4 (Inventory / storage management): C-FIND warning for unsupported keys.
STORAGE_MANAGEMENT_SERVICE_CLASS_STATUS = StatusTable(
    "Storage Management",
    {0xB010: (W, "Attribute list error: one or more key attributes not supported for matching")},
)

#: PS3.4 P.3: Application Event Logging N-ACTION.
APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS = StatusTable(
    "Application Event Logging",
    {
        0xB101: (W, "Synchronization Frame of Reference UID does not match the SCP's"),
        0xB102: (W, "Study Instance UID coerced: event logged under another study"),
        0xB104: (W, "IDs inconsistent in matching a current study: event logged"),
        0xC101: (F, "Procedural logging not available for this Study Instance UID"),
        0xC102: (F, "Event information does not match the template"),
        0xC103: (F, "Cannot match the event to a current study"),
        0xC104: (F, "IDs inconsistent in matching a current study: event not logged"),
        0xC10E: (F, "Operator not authorized to add to the Medication Administration Record"),
        0xC110: (F, "Patient cannot be identified from Patient ID or Admission ID"),
        0xC111: (F, "Update of the Medication Administration Record failed"),
    },
)

#: PS3.4 S.3: Media Creation Management.
MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS = StatusTable(
    "Media Creation Management",
    {
        0x0001: (W, "Requested optional attributes are not supported"),
        0xA510: (F, "Initiate Media Creation already received for this SOP instance"),
        0xC201: (F, "Media creation request already completed"),
        0xC202: (F, "Media creation already in progress and cannot be interrupted"),
        0xC203: (F, "Cancellation denied for an unspecified reason"),
    },
)

#: PS3.4 CC.2: Unified Procedure Step (push, pull, watch, event, query).
UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS = StatusTable(
    "Unified Procedure Step",
    {
        0x0001: (W, "Requested optional attributes are not supported"),
        0xA700: (F, "Refused: out of resources"),
        0xA900: (F, "Identifier does not match SOP class"),
        0xB300: (W, "UPS created with modifications"),
        0xB301: (W, "Deletion lock not granted"),
        0xB304: (W, "UPS already in the requested state of CANCELED"),
        0xB305: (W, "Invalid values coerced to valid values"),
        0xB306: (W, "UPS already in the requested state of COMPLETED"),
        0xC300: (F, "Refused: the UPS may no longer be updated"),
        0xC301: (F, "Refused: the correct Transaction UID was not provided"),
        0xC302: (F, "Refused: the UPS is already IN PROGRESS"),
        0xC303: (F, "Refused: the UPS may only become SCHEDULED via N-CREATE"),
        0xC304: (F, "Refused: the UPS has not met final state requirements"),
        0xC307: (F, "SOP instance UID does not exist or is not a UPS managed by this SCP"),
        0xC308: (F, "Receiving AE title is unknown to this SCP"),
        0xC309: (F, "The provided UPS State was not SCHEDULED"),
        0xC310: (F, "Refused: the UPS is not yet IN PROGRESS"),
        0xC311: (F, "Refused: the UPS is already COMPLETED"),
        0xC312: (F, "Refused: the performer cannot be contacted"),
        0xC313: (F, "Refused: the performer chooses not to cancel"),
        0xC314: (F, "Refused: the action is not appropriate for this instance"),
        0xC315: (F, "Refused: the SCP does not support event reports"),
        0xFE00: (C, "Matching terminated due to a cancel request"),
        0xFF00: (P, "Match supplied; optional keys supported like required keys"),
        0xFF01: (P, "Match supplied; one or more optional keys were not supported"),
    },
    (_UNABLE_TO_PROCESS,),
)

#: PS3.4 DD: RT Machine Verification.
RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS = StatusTable(
    "RT Machine Verification",
    {
        0xC112: (F, "No such object instance: machine verification instance not found"),
        0xC221: (F, "Referenced fraction group number not in the referenced plan"),
        0xC222: (F, "No beams in the referenced fraction group"),
        0xC223: (F, "SCU already verifying; cannot process this request now"),
        0xC224: (F, "Referenced beam number not in the referenced fraction group"),
        0xC225: (F, "Referenced device or accessory not supported"),
        0xC226: (F, "Referenced device or accessory not in the referenced beam"),
        0xC227: (F, "No such object instance: referenced RT plan not found"),
    },
)

del S, W, F, C, P


class Status(enum.IntEnum):
    """Named status codes, as ``pynetdicom.status.Status`` (values from PS3.7 C, PS3.4).

    More names can be added with ``Status.add(name, code)``; they become plain
    ``int`` class attributes.
    """

    SUCCESS = 0x0000
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PENDING_WARNING = 0xFF01
    MOVE_DESTINATION_UNKNOWN = 0xA801
    # general codes, PS3.7 Annex C
    NO_SUCH_ATTRIBUTE = 0x0105
    INVALID_ATTRIBUTE_VALUE = 0x0106
    ATTRIBUTE_LIST_ERROR = 0x0107
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    NO_SUCH_SOP_INSTANCE = 0x0112
    NO_SUCH_EVENT_TYPE = 0x0113
    NO_SUCH_ARGUMENT = 0x0114
    INVALID_ARGUMENT_VALUE = 0x0115
    ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116
    INVALID_SOP_INSTANCE = 0x0117
    NO_SUCH_SOP_CLASS = 0x0118
    CLASS_INSTANCE_CONFLICT = 0x0119
    MISSING_ATTRIBUTE = 0x0120
    MISSING_ATTRIBUTE_VALUE = 0x0121
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    NO_SUCH_ACTION = 0x0123
    NOT_AUTHORIZED = 0x0124
    DUPLICATE_INVOCATION = 0x0210
    UNRECOGNIZED_OPERATION = 0x0211
    MISTYPED_ARGUMENT = 0x0212
    RESOURCE_LIMITATION = 0x0213

    @classmethod
    def add(cls, name: str, code: int) -> None:
        """Add the constant ``name`` with value ``code`` (as pynetdicom allows)."""
        setattr(cls, name, code)
