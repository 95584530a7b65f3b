"""The 23 DIMSE messages and their command-set codec (PS3.7 9.3, 10.3 and Annex E).

Each message is a small frozen value whose field names are the DICOM keywords
of its command elements (PS3.7 Table E.1-1), so ``request.MessageID`` or
``response.Status`` read as in pynetdicom. Fields are keyword-only; optional
ones default to ``None``. Each class knows its Command Field value
(``CStoreRQ.CommandField == 0x0001``).

:func:`encode_command` writes a command set in implicit VR little endian
(PS3.7 6.3.1, PS3.5 7.1.3): group 0000 elements in ascending tag order,
Command Group Length (0000,0000) first, Command Data Set Type (0000,0800)
``0101H`` when no data set follows and ``0001H`` (what DCMTK and pynetdicom
send) when one does. UIDs are padded to even length with a NUL, AE titles and
the error comment with a space (PS3.5 6.2). Retired command elements are never
written.

:func:`decode_command` reads one back. It checks every element length against
the buffer and raises :class:`~dicomnet.errors.RemoteProtocolError` (abort
reason *invalid PDU parameter value*), naming the tag, for a malformed command
set, a missing or unknown Command Field, or a missing mandatory field. Group
0000 elements it does not know (including the retired ones) are skipped, as are
elements that do not belong to the decoded message type. Zero-length values
read as absent.

Performance: this codec is on the hot path (one command set per C-STORE, one
per C-FIND match), so it is written with :mod:`struct` over precomputed
per-class tables instead of pydicom's reader and writer. Encoding or decoding
a C-STORE-RQ/RSP or C-FIND-RSP takes a few microseconds.
:func:`message_to_dataset` builds a pydicom data set for logs and event
consumers and is not meant for the hot path.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import attrs
from pydicom.dataset import Dataset

from .errors import AbortReason, RemoteProtocolError

__all__ = [
    "COMMAND_ELEMENTS",
    "DATASET_ABSENT",
    "DATASET_PRESENT",
    "MESSAGE_TYPES",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_MEDIUM",
    "STATUS_FIELDS",
    "CCancelRQ",
    "CEchoRQ",
    "CEchoRSP",
    "CFindRQ",
    "CFindRSP",
    "CGetRQ",
    "CGetRSP",
    "CMoveRQ",
    "CMoveRSP",
    "CStoreRQ",
    "CStoreRSP",
    "DimseMessage",
    "DimseRequest",
    "DimseResponse",
    "Message",
    "NActionRQ",
    "NActionRSP",
    "NCreateRQ",
    "NCreateRSP",
    "NDeleteRQ",
    "NDeleteRSP",
    "NEventReportRQ",
    "NEventReportRSP",
    "NGetRQ",
    "NGetRSP",
    "NSetRQ",
    "NSetRSP",
    "UnrecognizedCommand",
    "decode_command",
    "encode_command",
    "message_to_dataset",
    "with_status",
]

#: Command Data Set Type (0000,0800) values, PS3.7 Table E.1-1: 0101H means no
#: data set; any other value means one follows. 0001H is what DCMTK sends.
DATASET_ABSENT = 0x0101
DATASET_PRESENT = 0x0001

_VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"


#: Priority (0000,0700) values, PS3.7 Table E.1-1.
PRIORITY_LOW = 0x0002
PRIORITY_MEDIUM = 0x0000
PRIORITY_HIGH = 0x0001


#: Group 0000 command elements (PS3.7 Table E.1-1): element number -> (keyword, VR).
#: Retired elements (PS3.7 Table E.2-1) are absent on purpose: they are skipped
#: on decode and never sent.
COMMAND_ELEMENTS: Mapping[int, tuple[str, str]] = MappingProxyType(
    {
        0x0000: ("CommandGroupLength", "UL"),
        0x0002: ("AffectedSOPClassUID", "UI"),
        0x0003: ("RequestedSOPClassUID", "UI"),
        0x0100: ("CommandField", "US"),
        0x0110: ("MessageID", "US"),
        0x0120: ("MessageIDBeingRespondedTo", "US"),
        0x0600: ("MoveDestination", "AE"),
        0x0700: ("Priority", "US"),
        0x0800: ("CommandDataSetType", "US"),
        0x0900: ("Status", "US"),
        0x0901: ("OffendingElement", "AT"),
        0x0902: ("ErrorComment", "LO"),
        0x0903: ("ErrorID", "US"),
        0x1000: ("AffectedSOPInstanceUID", "UI"),
        0x1001: ("RequestedSOPInstanceUID", "UI"),
        0x1002: ("EventTypeID", "US"),
        0x1005: ("AttributeIdentifierList", "AT"),
        0x1008: ("ActionTypeID", "US"),
        0x1020: ("NumberOfRemainingSuboperations", "US"),
        0x1021: ("NumberOfCompletedSuboperations", "US"),
        0x1022: ("NumberOfFailedSuboperations", "US"),
        0x1023: ("NumberOfWarningSuboperations", "US"),
        0x1030: ("MoveOriginatorApplicationEntityTitle", "AE"),
        0x1031: ("MoveOriginatorMessageID", "US"),
    }
)
_ELEMENTS: dict[int, tuple[str, str]] = dict(COMMAND_ELEMENTS)  # plain dict: faster lookups
_ELEMENT_OF: dict[str, int] = {kw: elem for elem, (kw, _) in COMMAND_ELEMENTS.items()}
_VR_OF: dict[str, str] = {kw: vr for kw, vr in COMMAND_ELEMENTS.values()}


def _tag(keyword: str) -> str:
    return f"(0000,{_ELEMENT_OF[keyword]:04X}) {keyword}"


def _tags(value: int | Iterable[int] | None) -> tuple[int, ...] | None:
    """AT values: one tag or an iterable of tags (ints, pydicom ``Tag``) -> tuple of ints."""
    if value is None:
        return None
    if isinstance(value, int):
        return (int(value),)
    return tuple(int(v) for v in value)


# -- the messages ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DimseMessage:
    """Base of the 23 DIMSE messages."""

    #: Command Field (0000,0100), PS3.7 E.1-1
    CommandField: ClassVar[int]
    #: "C-STORE-RQ" etc.
    message_name: ClassVar[str]
    #: command fields a message of this type must carry (PS3.7 9.3, 10.3)
    mandatory: ClassVar[tuple[str, ...]]


@attrs.frozen(kw_only=True)
class DimseRequest(DimseMessage):
    """Base of the requests that carry a Message ID (all but C-CANCEL-RQ)."""

    MessageID: int


@attrs.frozen(kw_only=True)
class DimseResponse(DimseMessage):
    """Base of the responses, with the status-related fields of PS3.7 Annex C."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    OffendingElement: tuple[int, ...] | None = attrs.field(default=None, converter=_tags)
    ErrorComment: str | None = None
    ErrorID: int | None = None


_RSP = ("MessageIDBeingRespondedTo", "Status")


@attrs.frozen(kw_only=True)
class CStoreRQ(DimseRequest):
    """C-STORE-RQ, PS3.7 9.3.1.1."""

    CommandField: ClassVar[int] = 0x0001
    message_name: ClassVar[str] = "C-STORE-RQ"
    mandatory: ClassVar[tuple[str, ...]] = (
        "MessageID", "AffectedSOPClassUID", "AffectedSOPInstanceUID", "Priority",
    )

    AffectedSOPClassUID: str
    AffectedSOPInstanceUID: str
    Priority: int = PRIORITY_MEDIUM
    MoveOriginatorApplicationEntityTitle: str | None = None
    MoveOriginatorMessageID: int | None = None


@attrs.frozen(kw_only=True)
class CStoreRSP(DimseResponse):
    """C-STORE-RSP, PS3.7 9.3.1.2."""

    CommandField: ClassVar[int] = 0x8001
    message_name: ClassVar[str] = "C-STORE-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP

    AffectedSOPInstanceUID: str | None = None


@attrs.frozen(kw_only=True)
class CFindRQ(DimseRequest):
    """C-FIND-RQ, PS3.7 9.3.2.1."""

    CommandField: ClassVar[int] = 0x0020
    message_name: ClassVar[str] = "C-FIND-RQ"
    mandatory: ClassVar[tuple[str, ...]] = ("MessageID", "AffectedSOPClassUID", "Priority")

    AffectedSOPClassUID: str
    Priority: int = PRIORITY_MEDIUM


@attrs.frozen(kw_only=True)
class CFindRSP(DimseResponse):
    """C-FIND-RSP, PS3.7 9.3.2.2."""

    CommandField: ClassVar[int] = 0x8020
    message_name: ClassVar[str] = "C-FIND-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP


@attrs.frozen(kw_only=True)
class CGetRQ(DimseRequest):
    """C-GET-RQ, PS3.7 9.3.3.1."""

    CommandField: ClassVar[int] = 0x0010
    message_name: ClassVar[str] = "C-GET-RQ"
    mandatory: ClassVar[tuple[str, ...]] = ("MessageID", "AffectedSOPClassUID", "Priority")

    AffectedSOPClassUID: str
    Priority: int = PRIORITY_MEDIUM


@attrs.frozen(kw_only=True)
class _SuboperationsRSP(DimseResponse):
    """The sub-operation counters of C-GET-RSP and C-MOVE-RSP."""

    NumberOfRemainingSuboperations: int | None = None
    NumberOfCompletedSuboperations: int | None = None
    NumberOfFailedSuboperations: int | None = None
    NumberOfWarningSuboperations: int | None = None


@attrs.frozen(kw_only=True)
class CGetRSP(_SuboperationsRSP):
    """C-GET-RSP, PS3.7 9.3.3.2."""

    CommandField: ClassVar[int] = 0x8010
    message_name: ClassVar[str] = "C-GET-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP


@attrs.frozen(kw_only=True)
class CMoveRQ(DimseRequest):
    """C-MOVE-RQ, PS3.7 9.3.4.1."""

    CommandField: ClassVar[int] = 0x0021
    message_name: ClassVar[str] = "C-MOVE-RQ"
    mandatory: ClassVar[tuple[str, ...]] = (
        "MessageID", "AffectedSOPClassUID", "Priority", "MoveDestination",
    )

    AffectedSOPClassUID: str
    MoveDestination: str
    Priority: int = PRIORITY_MEDIUM


@attrs.frozen(kw_only=True)
class CMoveRSP(_SuboperationsRSP):
    """C-MOVE-RSP, PS3.7 9.3.4.2."""

    CommandField: ClassVar[int] = 0x8021
    message_name: ClassVar[str] = "C-MOVE-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP


@attrs.frozen(kw_only=True)
class CEchoRQ(DimseRequest):
    """C-ECHO-RQ, PS3.7 9.3.5.1."""

    CommandField: ClassVar[int] = 0x0030
    message_name: ClassVar[str] = "C-ECHO-RQ"
    mandatory: ClassVar[tuple[str, ...]] = ("MessageID", "AffectedSOPClassUID")

    AffectedSOPClassUID: str = _VERIFICATION_SOP_CLASS


@attrs.frozen(kw_only=True)
class CEchoRSP(DimseResponse):
    """C-ECHO-RSP, PS3.7 9.3.5.2."""

    CommandField: ClassVar[int] = 0x8030
    message_name: ClassVar[str] = "C-ECHO-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP


@attrs.frozen(kw_only=True)
class CCancelRQ(DimseMessage):
    """C-CANCEL-RQ, PS3.7 9.3.2.3 (C-FIND), 9.3.3.3 (C-GET), 9.3.4.3 (C-MOVE)."""

    CommandField: ClassVar[int] = 0x0FFF
    message_name: ClassVar[str] = "C-CANCEL-RQ"
    mandatory: ClassVar[tuple[str, ...]] = ("MessageIDBeingRespondedTo",)

    MessageIDBeingRespondedTo: int


@attrs.frozen(kw_only=True)
class NEventReportRQ(DimseRequest):
    """N-EVENT-REPORT-RQ, PS3.7 10.3.1.1."""

    CommandField: ClassVar[int] = 0x0100
    message_name: ClassVar[str] = "N-EVENT-REPORT-RQ"
    mandatory: ClassVar[tuple[str, ...]] = (
        "MessageID", "AffectedSOPClassUID", "AffectedSOPInstanceUID", "EventTypeID",
    )

    AffectedSOPClassUID: str
    AffectedSOPInstanceUID: str
    EventTypeID: int


@attrs.frozen(kw_only=True)
class NEventReportRSP(DimseResponse):
    """N-EVENT-REPORT-RSP, PS3.7 10.3.1.2."""

    CommandField: ClassVar[int] = 0x8100
    message_name: ClassVar[str] = "N-EVENT-REPORT-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP

    AffectedSOPInstanceUID: str | None = None
    EventTypeID: int | None = None


@attrs.frozen(kw_only=True)
class NGetRQ(DimseRequest):
    """N-GET-RQ, PS3.7 10.3.2.1."""

    CommandField: ClassVar[int] = 0x0110
    message_name: ClassVar[str] = "N-GET-RQ"
    mandatory: ClassVar[tuple[str, ...]] = (
        "MessageID", "RequestedSOPClassUID", "RequestedSOPInstanceUID",
    )

    RequestedSOPClassUID: str
    RequestedSOPInstanceUID: str
    AttributeIdentifierList: tuple[int, ...] | None = attrs.field(default=None, converter=_tags)


@attrs.frozen(kw_only=True)
class NGetRSP(DimseResponse):
    """N-GET-RSP, PS3.7 10.3.2.2 (Attribute Identifier List: PS3.7 C.4.2)."""

    CommandField: ClassVar[int] = 0x8110
    message_name: ClassVar[str] = "N-GET-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP

    AffectedSOPInstanceUID: str | None = None
    AttributeIdentifierList: tuple[int, ...] | None = attrs.field(default=None, converter=_tags)


@attrs.frozen(kw_only=True)
class NSetRQ(DimseRequest):
    """N-SET-RQ, PS3.7 10.3.3.1."""

    CommandField: ClassVar[int] = 0x0120
    message_name: ClassVar[str] = "N-SET-RQ"
    mandatory: ClassVar[tuple[str, ...]] = (
        "MessageID", "RequestedSOPClassUID", "RequestedSOPInstanceUID",
    )

    RequestedSOPClassUID: str
    RequestedSOPInstanceUID: str


@attrs.frozen(kw_only=True)
class NSetRSP(DimseResponse):
    """N-SET-RSP, PS3.7 10.3.3.2 (Attribute Identifier List: PS3.7 C.4.2)."""

    CommandField: ClassVar[int] = 0x8120
    message_name: ClassVar[str] = "N-SET-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP

    AffectedSOPInstanceUID: str | None = None
    AttributeIdentifierList: tuple[int, ...] | None = attrs.field(default=None, converter=_tags)


@attrs.frozen(kw_only=True)
class NActionRQ(DimseRequest):
    """N-ACTION-RQ, PS3.7 10.3.4.1."""

    CommandField: ClassVar[int] = 0x0130
    message_name: ClassVar[str] = "N-ACTION-RQ"
    mandatory: ClassVar[tuple[str, ...]] = (
        "MessageID", "RequestedSOPClassUID", "RequestedSOPInstanceUID", "ActionTypeID",
    )

    RequestedSOPClassUID: str
    RequestedSOPInstanceUID: str
    ActionTypeID: int


@attrs.frozen(kw_only=True)
class NActionRSP(DimseResponse):
    """N-ACTION-RSP, PS3.7 10.3.4.2."""

    CommandField: ClassVar[int] = 0x8130
    message_name: ClassVar[str] = "N-ACTION-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP

    AffectedSOPInstanceUID: str | None = None
    ActionTypeID: int | None = None


@attrs.frozen(kw_only=True)
class NCreateRQ(DimseRequest):
    """N-CREATE-RQ, PS3.7 10.3.5.1."""

    CommandField: ClassVar[int] = 0x0140
    message_name: ClassVar[str] = "N-CREATE-RQ"
    mandatory: ClassVar[tuple[str, ...]] = ("MessageID", "AffectedSOPClassUID")

    AffectedSOPClassUID: str
    AffectedSOPInstanceUID: str | None = None


@attrs.frozen(kw_only=True)
class NCreateRSP(DimseResponse):
    """N-CREATE-RSP, PS3.7 10.3.5.2 (Attribute Identifier List: PS3.7 C.4.2)."""

    CommandField: ClassVar[int] = 0x8140
    message_name: ClassVar[str] = "N-CREATE-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP

    AffectedSOPInstanceUID: str | None = None
    AttributeIdentifierList: tuple[int, ...] | None = attrs.field(default=None, converter=_tags)


@attrs.frozen(kw_only=True)
class NDeleteRQ(DimseRequest):
    """N-DELETE-RQ, PS3.7 10.3.6.1."""

    CommandField: ClassVar[int] = 0x0150
    message_name: ClassVar[str] = "N-DELETE-RQ"
    mandatory: ClassVar[tuple[str, ...]] = (
        "MessageID", "RequestedSOPClassUID", "RequestedSOPInstanceUID",
    )

    RequestedSOPClassUID: str
    RequestedSOPInstanceUID: str


@attrs.frozen(kw_only=True)
class NDeleteRSP(DimseResponse):
    """N-DELETE-RSP, PS3.7 10.3.6.2."""

    CommandField: ClassVar[int] = 0x8150
    message_name: ClassVar[str] = "N-DELETE-RSP"
    mandatory: ClassVar[tuple[str, ...]] = _RSP

    AffectedSOPInstanceUID: str | None = None


#: Any of the 23 messages (for exhaustive ``match`` statements).
Message = (
    CStoreRQ | CStoreRSP | CFindRQ | CFindRSP | CGetRQ | CGetRSP | CMoveRQ | CMoveRSP
    | CEchoRQ | CEchoRSP | CCancelRQ
    | NEventReportRQ | NEventReportRSP | NGetRQ | NGetRSP | NSetRQ | NSetRSP
    | NActionRQ | NActionRSP | NCreateRQ | NCreateRSP | NDeleteRQ | NDeleteRSP
)

_ALL: tuple[type[DimseMessage], ...] = (
    CStoreRQ, CStoreRSP, CFindRQ, CFindRSP, CGetRQ, CGetRSP, CMoveRQ, CMoveRSP,
    CEchoRQ, CEchoRSP, CCancelRQ,
    NEventReportRQ, NEventReportRSP, NGetRQ, NGetRSP, NSetRQ, NSetRSP,
    NActionRQ, NActionRSP, NCreateRQ, NCreateRSP, NDeleteRQ, NDeleteRSP,
)  # fmt: skip

#: Command Field value -> message class.
MESSAGE_TYPES: Mapping[int, type[DimseMessage]] = MappingProxyType(
    {cls.CommandField: cls for cls in _ALL}
)

#: Response fields that carry status detail (PS3.7 Annex C) and that
#: :func:`with_status` copies from a status data set.
STATUS_FIELDS = (
    "Status",
    "OffendingElement",
    "ErrorComment",
    "ErrorID",
    "AffectedSOPClassUID",
    "AffectedSOPInstanceUID",
    "AttributeIdentifierList",
    "EventTypeID",
    "ActionTypeID",
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)


# -- per-class codec tables -------------------------------------------------------------

_HEADER = struct.Struct("<HHI")
_US_ELEMENT = struct.Struct("<HHIH")
_UL_ELEMENT = struct.Struct("<HHII")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")

# One entry per element in ascending tag order: (keyword, element, VR, constant bytes).
# The Command Field and Command Data Set Type are constants of the class/variant.
_Spec = tuple[tuple[str, int, str, bytes | None], ...]


@attrs.frozen
class _ClassCodec:
    with_dataset: _Spec
    without_dataset: _Spec
    fields: frozenset[str]
    mandatory: tuple[str, ...]


def _build_codec(cls: type[DimseMessage]) -> _ClassCodec:
    names = [a.name for a in attrs.fields(cls)]
    unknown = [n for n in names if n not in _ELEMENT_OF]
    if unknown:  # pragma: no cover -- a typo in a class above
        raise AssertionError(f"{cls.__name__}: {unknown} are not command elements")

    def spec(dataset_type: int) -> _Spec:
        entries: list[tuple[str, int, str, bytes | None]] = [
            (n, _ELEMENT_OF[n], _VR_OF[n], None) for n in names
        ]
        entries.append(
            ("CommandField", 0x0100, "US", _US_ELEMENT.pack(0, 0x0100, 2, cls.CommandField))
        )
        entries.append(
            ("CommandDataSetType", 0x0800, "US", _US_ELEMENT.pack(0, 0x0800, 2, dataset_type))
        )
        entries.sort(key=lambda e: e[1])
        return tuple(entries)

    return _ClassCodec(
        spec(DATASET_PRESENT), spec(DATASET_ABSENT), frozenset(names), cls.mandatory
    )


_CODECS: dict[type[DimseMessage], _ClassCodec] = {cls: _build_codec(cls) for cls in _ALL}


# -- encoding ---------------------------------------------------------------------------


def _encode_text(keyword: str, vr: str, value: str, elem: int) -> bytes:
    if vr == "LO":
        # A diagnostic comment: never let it fail a response. LO holds 64 characters
        # of the default repertoire (PS3.5 6.2); others are replaced, the rest cut.
        raw = value[:64].encode("ascii", "replace")
        pad = b" "
    else:
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"{_tag(keyword)}: {value!r} is not ASCII") from None
        if vr == "UI":
            if len(raw) > 64:
                raise ValueError(f"{_tag(keyword)}: UID {value!r} is longer than 64 characters")
            pad = b"\x00"
        else:  # AE
            if len(raw) > 16:
                raise ValueError(
                    f"{_tag(keyword)}: AE title {value!r} is longer than 16 characters"
                )
            pad = b" "
    if len(raw) & 1:
        raw += pad
    return _HEADER.pack(0, elem, len(raw)) + raw


def _encode_tags(keyword: str, value: tuple[int, ...], elem: int) -> bytes:
    halves: list[int] = []
    for tag in value:
        if not 0 <= tag <= 0xFFFFFFFF:
            raise ValueError(f"{_tag(keyword)}: {tag!r} is not a 32-bit tag")
        halves.append(tag >> 16)
        halves.append(tag & 0xFFFF)
    return _HEADER.pack(0, elem, 4 * len(value)) + struct.pack(f"<{len(halves)}H", *halves)


def encode_command(message: DimseMessage, has_dataset: bool) -> bytes:
    """The command set of ``message`` in implicit VR little endian (PS3.7 6.3.1, E).

    ``has_dataset`` sets Command Data Set Type (0000,0800). Raises
    :class:`ValueError` for values that cannot be encoded (a US out of range,
    a UID over 64 characters, an AE title over 16, a missing mandatory field).
    """
    codec = _CODECS[type(message)]
    spec = codec.with_dataset if has_dataset else codec.without_dataset
    parts: list[bytes] = [b""]
    append = parts.append
    total = 0
    for keyword, elem, vr, constant in spec:
        if constant is not None:
            append(constant)
            total += 10
            continue
        value = getattr(message, keyword)
        if value is None:
            if keyword in codec.mandatory:
                raise ValueError(f"{message.message_name}: mandatory {_tag(keyword)} is None")
            continue
        if vr == "US":
            try:
                append(_US_ELEMENT.pack(0, elem, 2, value))
            except struct.error:
                raise ValueError(f"{_tag(keyword)}: {value!r} is not a US value") from None
            total += 10
            continue
        if vr == "AT":
            encoded = _encode_tags(keyword, value, elem)
        else:
            if not value and keyword in codec.mandatory:
                raise ValueError(f"{message.message_name}: mandatory {_tag(keyword)} is empty")
            encoded = _encode_text(keyword, vr, value, elem)
        append(encoded)
        total += len(encoded)
    parts[0] = _UL_ELEMENT.pack(0, 0x0000, 4, total)
    return b"".join(parts)


# -- decoding ---------------------------------------------------------------------------


class UnrecognizedCommand(RemoteProtocolError):
    """The command set's Command Field is not one of PS3.7 Table E.1-1.

    ``message_id`` is the Message ID (0000,0110) if the command set had one, so
    that a service user may answer with status 0211H (unrecognized operation)
    instead of aborting.
    """

    def __init__(self, command_field: int, message_id: int | None) -> None:
        super().__init__(
            f"(0000,0100) CommandField: unrecognized value 0x{command_field:04X}",
            abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
        )
        self.command_field = command_field
        self.message_id = message_id


def _malformed(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"malformed command set: {text}", abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE
    )


def _decode_value(buf: bytes, start: int, length: int, keyword: str, vr: str) -> Any:
    if vr == "US":
        if length != 2:
            raise _malformed(f"{_tag(keyword)} (US) has length {length}, not 2")
        return _U16.unpack_from(buf, start)[0]
    if vr == "AT":
        if length % 4:
            raise _malformed(f"{_tag(keyword)} (AT) has length {length}, not a multiple of 4")
        halves = struct.unpack_from(f"<{length // 2}H", buf, start)
        return tuple((halves[i] << 16) | halves[i + 1] for i in range(0, len(halves), 2))
    raw = buf[start : start + length]
    if vr == "LO":
        return raw.decode("ascii", "replace").strip(" \x00") or None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise _malformed(f"{_tag(keyword)} ({vr}) is not ASCII") from None
    if vr == "UI":
        # PS3.5 9.1: padded with one NUL; a trailing space is a common error.
        return text.rstrip("\x00 ") or None
    return text.strip(" \x00") or None  # AE: leading and trailing spaces are not significant


_unpack_header = _HEADER.unpack_from


#: Pending C-FIND-RSP command sets already decoded: thousands of identical ones arrive
#: per query (only the identifiers differ), and messages are immutable values
_PENDING_FIND: dict[bytes, tuple[DimseMessage, bool]] = {}
_PENDING_FIND_MAX = 64


def decode_command(data: bytes | bytearray | memoryview) -> tuple[DimseMessage, bool]:
    """Decode a command set; return the message and whether a data set follows.

    Raises :class:`~dicomnet.errors.RemoteProtocolError` (or its subclass
    :class:`UnrecognizedCommand`) naming the offending tag. A Pending
    C-FIND-RSP seen before is returned from a small cache (the same value).
    """
    buf = bytes(data)
    known = _PENDING_FIND.get(buf)
    if known is not None:
        return known
    decoded = _decode_command(buf)
    message = decoded[0]
    if type(message) is CFindRSP and message.Status in (0xFF00, 0xFF01):
        if len(_PENDING_FIND) >= _PENDING_FIND_MAX:
            _PENDING_FIND.clear()
        _PENDING_FIND[buf] = decoded
    return decoded


def _decode_command(buf: bytes) -> tuple[DimseMessage, bool]:
    end = len(buf)
    offset = 0
    previous = -1
    values: dict[str, Any] = {}
    elements = _ELEMENTS
    while offset < end:
        if end - offset < 8:
            raise _malformed(f"{end - offset} trailing byte(s) at offset {offset}")
        group, elem, length = _unpack_header(buf, offset)
        offset += 8
        if group != 0x0000:
            raise _malformed(f"element ({group:04X},{elem:04X}) is not in command group 0000")
        if elem <= previous:
            raise _malformed(
                f"element (0000,{elem:04X}) follows (0000,{previous:04X}): "
                "not in ascending order"
            )
        previous = elem
        if length > end - offset:
            raise _malformed(
                f"(0000,{elem:04X}) announces {length} bytes but only {end - offset} remain"
            )
        known = elements.get(elem)
        if known is not None and length:
            keyword, vr = known
            if vr == "US" and length == 2:  # the common case, inlined
                values[keyword] = buf[offset] | (buf[offset + 1] << 8)
            elif elem == 0x0000:
                if length != 4:
                    raise _malformed(f"(0000,0000) CommandGroupLength has length {length}")
                group_length = _U32.unpack_from(buf, offset)[0]
                if group_length != end - offset - 4:
                    raise _malformed(
                        f"(0000,0000) CommandGroupLength is {group_length} but "
                        f"{end - offset - 4} bytes follow it"
                    )
            else:
                values[keyword] = _decode_value(buf, offset, length, keyword, vr)
        offset += length

    command_field = values.pop("CommandField", None)
    if command_field is None:
        raise _malformed("(0000,0100) CommandField is missing")
    cls = MESSAGE_TYPES.get(command_field)
    if cls is None:
        raise UnrecognizedCommand(command_field, values.get("MessageID"))
    dataset_type = values.pop("CommandDataSetType", None)
    if dataset_type is None:
        raise _malformed(f"{cls.message_name}: (0000,0800) CommandDataSetType is missing")
    codec = _CODECS[cls]
    for keyword in codec.mandatory:
        if values.get(keyword) is None:
            raise _malformed(f"{cls.message_name}: mandatory {_tag(keyword)} is missing")
    fields = codec.fields
    if not values.keys() <= fields:
        values = {k: v for k, v in values.items() if k in fields}
    return cls(**values), dataset_type != DATASET_ABSENT


# -- helpers ----------------------------------------------------------------------------

_M = TypeVar("_M", bound=DimseResponse)


def with_status(response: _M, status: int | Dataset) -> _M:
    """``response`` with its Status and status detail taken from ``status``.

    ``status`` is a code, or a data set holding Status (0000,0900) and, as
    PS3.7 Annex C allows, any of :data:`STATUS_FIELDS` (Error Comment, Offending
    Element...) -- the form pynetdicom handlers return. Elements that this
    response type does not carry are ignored.
    """
    if isinstance(status, int):
        return attrs.evolve(response, Status=int(status))
    if "Status" not in status:
        raise ValueError("the status data set has no Status (0000,0900) element")
    fields = _CODECS[type(response)].fields
    changes: dict[str, Any] = {}
    for keyword in STATUS_FIELDS:
        if keyword not in fields or keyword not in status:
            continue
        value = status[keyword].value
        vr = _VR_OF[keyword]
        if value is None or value == "":
            changes[keyword] = None
        elif vr == "US":
            changes[keyword] = int(value)
        elif vr == "AT":
            changes[keyword] = value  # the converter takes one tag or several
        else:
            changes[keyword] = str(value)
    return attrs.evolve(response, **changes)


def message_to_dataset(message: DimseMessage, has_dataset: bool | None = None) -> Dataset:
    """The command elements of ``message`` as a pydicom data set (for logs and events).

    Command Field is always included; Command Data Set Type and Command Group
    Length only when ``has_dataset`` is given.
    """
    ds = Dataset()
    codec = _CODECS[type(message)]
    if has_dataset is not None:
        ds.add_new(0x00000000, "UL", len(encode_command(message, has_dataset)) - 12)
    for keyword, elem, vr, _ in codec.with_dataset:
        if keyword == "CommandField":
            ds.add_new(elem, "US", message.CommandField)
            continue
        if keyword == "CommandDataSetType":
            if has_dataset is not None:
                ds.add_new(elem, "US", DATASET_PRESENT if has_dataset else DATASET_ABSENT)
            continue
        value = getattr(message, keyword)
        if value is None:
            continue
        if vr == "AT":
            ds.add_new(elem, "AT", value[0] if len(value) == 1 else list(value))
        else:
            ds.add_new(elem, vr, value)
    return ds
