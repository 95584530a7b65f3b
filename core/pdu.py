"""The seven Upper Layer PDUs and their codec (PS3.8 9.3).

Each PDU is a small frozen value with ``to_bytes()`` (the whole PDU, header
included) and ``from_body(body)`` (the variable part after the six-byte PDU
header, which :mod:`dicomnet.framing` has already checked and split off).
:func:`decode_pdu` dispatches on the PDU type.

Decoding checks every length against the buffer and raises
:class:`~dicomnet.errors.PDUDecodeError` naming the field at fault. Reserved
fields are written as zero and not checked on receipt (PS3.8 9.3.1). Variable
items and sub-items of an unknown type are ignored, as PS3.8 9.3.2 and D.3.3 ask.

P-DATA-TF is the hot path: :class:`PDataTF` exists for completeness and tests,
but the transports use :func:`iter_pdvs` (memoryview slices, no object per
fragment) and :func:`pdata_header` (the 12 bytes in front of a one-PDV PDU), so
data-set bytes are never copied to be framed.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator
from typing import ClassVar, TypeAlias

import attrs

from ._wire import (
    check_uid,
    decode_ae_title,
    decode_reserved_ae_title,
    decode_uid,
    encode_ae_title,
    encode_item,
    encode_uid,
    iter_items,
)
from .errors import AbortReason, AbortSource, PDUDecodeError
from .user_info import UserInformation

__all__ = [
    "APPLICATION_CONTEXT_NAME",
    "PDU",
    "PDU_HEADER",
    "AAbort",
    "AAssociateAC",
    "AAssociateRJ",
    "AAssociateRQ",
    "AReleaseRP",
    "AReleaseRQ",
    "PDUType",
    "PDataTF",
    "PresentationContextAC",
    "PresentationContextRQ",
    "PresentationContextResult",
    "PresentationDataValue",
    "RejectReason",
    "RejectResult",
    "RejectSource",
    "decode_pdu",
    "iter_pdvs",
    "pdata_header",
]

#: The DICOM Application Context Name (PS3.7 Annex A.2.1).
APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"

#: PDU type, reserved, PDU length (PS3.8 9.3.1)
PDU_HEADER = struct.Struct(">BBI")
_PDV_HEADER = struct.Struct(">IBB")
_PDATA_HEADER = struct.Struct(">BBIIBB")
_ASSOC_FIXED = struct.Struct(">HH16s16s32x")
_FOUR_BYTES = struct.Struct(">BBBB")


class PDUType(enum.IntEnum):
    """PDU types, PS3.8 Table 9-11."""

    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class PresentationContextResult(enum.IntEnum):
    """Result/Reason of a presentation context in an A-ASSOCIATE-AC, PS3.8 Table 9-18."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class RejectResult(enum.IntEnum):
    """A-ASSOCIATE-RJ result, PS3.8 Table 9-21."""

    PERMANENT = 1
    TRANSIENT = 2


class RejectSource(enum.IntEnum):
    """A-ASSOCIATE-RJ source, PS3.8 Table 9-21."""

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


class RejectReason(enum.IntEnum):
    """A-ASSOCIATE-RJ reason/diag., PS3.8 Table 9-21; the meaning depends on the source.

    Source 1 (service user): 1, 2, 3, 7. Source 2 (ACSE): 1, 2.
    Source 3 (presentation): 1, 2.
    """

    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AE_TITLE_NOT_RECOGNIZED = 3
    CALLED_AE_TITLE_NOT_RECOGNIZED = 7
    # source 2 (service provider, ACSE related function)
    PROTOCOL_VERSION_NOT_SUPPORTED = 2
    # source 3 (service provider, presentation related function)
    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2


def _uid_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _rq_contexts(value: Iterable[PresentationContextRQ]) -> tuple[PresentationContextRQ, ...]:
    return tuple(value)


def _ac_contexts(value: Iterable[PresentationContextAC]) -> tuple[PresentationContextAC, ...]:
    return tuple(value)


def _pdv_tuple(value: Iterable[PresentationDataValue]) -> tuple[PresentationDataValue, ...]:
    return tuple(value)


def _check_uid(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    check_uid(attr.name, value)


def _check_optional_uid(
    _inst: object, attr: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None:
        check_uid(attr.name, value)


def _check_uids(
    _inst: object, attr: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for uid in value:
        check_uid(attr.name, uid)


# -- presentation context items -------------------------------------------------------


@attrs.frozen
class PresentationContextRQ:
    """20H: a proposed presentation context (PS3.8 9.3.2.2)."""

    item_type: ClassVar[int] = 0x20
    context_id: int = attrs.field(
        validator=attrs.validators.and_(attrs.validators.ge(1), attrs.validators.le(255))
    )
    abstract_syntax: str = attrs.field(validator=_check_uid)
    transfer_syntaxes: tuple[str, ...] = attrs.field(converter=_uid_tuple, validator=_check_uids)

    def to_bytes(self) -> bytes:
        value = bytes((self.context_id, 0, 0, 0)) + encode_item(
            0x30, encode_uid(self.abstract_syntax)
        ) + b"".join(encode_item(0x40, encode_uid(ts)) for ts in self.transfer_syntaxes)
        return encode_item(0x20, value)

    @classmethod
    def from_value(cls, value: memoryview) -> PresentationContextRQ:
        field = "Presentation Context (20H)"
        if len(value) < 4:
            raise PDUDecodeError(f"is {len(value)} bytes, too short", field=field)
        context_id = value[0]
        if context_id == 0:
            raise PDUDecodeError("presentation context ID 0", field=field)
        abstract: str | None = None
        transfer: list[str] = []
        for item_type, _, sub in iter_items(value[4:], field):
            if item_type == 0x30:
                if abstract is not None:
                    raise PDUDecodeError(
                        f"context {context_id} has more than one abstract syntax", field=field
                    )
                abstract = decode_uid(sub, "Abstract Syntax (30H)")
            elif item_type == 0x40:
                transfer.append(decode_uid(sub, "Transfer Syntax (40H)"))
        if abstract is None:
            raise PDUDecodeError(f"context {context_id} has no abstract syntax", field=field)
        if not transfer:
            raise PDUDecodeError(f"context {context_id} has no transfer syntax", field=field)
        return cls(context_id, abstract, tuple(transfer))


@attrs.frozen
class PresentationContextAC:
    """21H: the acceptor's answer for one presentation context (PS3.8 9.3.3.2).

    ``transfer_syntax`` is ``None`` when the sub-item was absent; PS3.8 says it is
    not significant unless the result is acceptance.
    """

    item_type: ClassVar[int] = 0x21
    context_id: int = attrs.field(
        validator=attrs.validators.and_(attrs.validators.ge(1), attrs.validators.le(255))
    )
    result: int = attrs.field(
        validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(255))
    )
    transfer_syntax: str | None = attrs.field(validator=_check_optional_uid)

    def to_bytes(self) -> bytes:
        value = bytes((self.context_id, 0, self.result, 0))
        if self.transfer_syntax is not None:
            value += encode_item(0x40, encode_uid(self.transfer_syntax))
        return encode_item(0x21, value)

    @classmethod
    def from_value(cls, value: memoryview) -> PresentationContextAC:
        field = "Presentation Context (21H)"
        if len(value) < 4:
            raise PDUDecodeError(f"is {len(value)} bytes, too short", field=field)
        context_id, result = value[0], value[2]
        if context_id == 0:
            raise PDUDecodeError("presentation context ID 0", field=field)
        transfer: str | None = None
        for item_type, _, sub in iter_items(value[4:], field):
            if item_type == 0x40:
                if transfer is not None:
                    raise PDUDecodeError(
                        f"context {context_id} has more than one transfer syntax", field=field
                    )
                transfer = decode_uid(sub, "Transfer Syntax (40H)")
        if transfer is None and result == PresentationContextResult.ACCEPTANCE:
            raise PDUDecodeError(
                f"accepted context {context_id} has no transfer syntax", field=field
            )
        return cls(context_id, result, transfer)


# -- A-ASSOCIATE-RQ / AC ----------------------------------------------------------------


def _encode_associate(pdu: AAssociateRQ | AAssociateAC) -> bytes:
    body = b"".join(
        [
            _ASSOC_FIXED.pack(
                pdu.protocol_version,
                0,
                encode_ae_title(pdu.called_ae_title),
                encode_ae_title(pdu.calling_ae_title),
            ),
            encode_item(0x10, encode_uid(pdu.application_context_name)),
            *(cx.to_bytes() for cx in pdu.presentation_contexts),
            pdu.user_information.to_bytes(),
        ]
    )
    return PDU_HEADER.pack(pdu.pdu_type, 0, len(body)) + body


def _decode_associate(
    body: memoryview, name: str, context_type: int
) -> tuple[int, str, str, str, list[memoryview], UserInformation]:
    if len(body) < _ASSOC_FIXED.size:
        raise PDUDecodeError(
            f"variable field is {len(body)} bytes, shorter than the 68 fixed bytes", field=name
        )
    version, _, raw_called, raw_calling = _ASSOC_FIXED.unpack_from(body)
    app_context: str | None = None
    contexts: list[memoryview] = []
    user_info: UserInformation | None = None
    for item_type, _, value in iter_items(body[_ASSOC_FIXED.size :], name):
        if item_type == 0x10:
            app_context = decode_uid(value, "Application Context (10H)")
        elif item_type == context_type:
            contexts.append(value)
        elif item_type == 0x50:
            user_info = UserInformation.from_value(value)
    if app_context is None:
        raise PDUDecodeError("no Application Context item (10H)", field=name)
    if user_info is None:
        # PS3.8 9.3.2: the User Information item is mandatory (it carries the Maximum Length)
        raise PDUDecodeError("no User Information item (50H)", field=name)
    if context_type == PresentationContextAC.item_type:
        # PS3.8 9.3.3: in the AC both titles are reserved fields, "not tested when received"
        called = decode_reserved_ae_title(raw_called)
        calling = decode_reserved_ae_title(raw_calling)
    else:
        called = decode_ae_title(raw_called, name + " Called-AE-title")
        calling = decode_ae_title(raw_calling, name + " Calling-AE-title")
    return (
        version,
        called,
        calling,
        app_context,
        contexts,
        user_info,
    )


def _check_ae(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{attr.name}: AE title {value!r} is not ASCII") from None
    if len(raw) > 16:
        raise ValueError(f"{attr.name}: AE title {value!r} is longer than 16 characters")


@attrs.frozen
class AAssociateRQ:
    """A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)."""

    pdu_type: ClassVar[int] = PDUType.A_ASSOCIATE_RQ
    called_ae_title: str = attrs.field(validator=_check_ae)
    calling_ae_title: str = attrs.field(validator=_check_ae)
    presentation_contexts: tuple[PresentationContextRQ, ...] = attrs.field(
        converter=_rq_contexts
    )
    user_information: UserInformation = attrs.field(factory=UserInformation)
    application_context_name: str = attrs.field(default=APPLICATION_CONTEXT_NAME,
                                                validator=_check_uid)
    #: bit 0 set: protocol version 1 (the only one, PS3.8 9.3.2)
    protocol_version: int = 1

    def to_bytes(self) -> bytes:
        return _encode_associate(self)

    @classmethod
    def from_body(cls, body: memoryview) -> AAssociateRQ:
        version, called, calling, app, raw_contexts, user = _decode_associate(
            body, "A-ASSOCIATE-RQ", 0x20
        )
        return cls(
            called,
            calling,
            tuple(PresentationContextRQ.from_value(v) for v in raw_contexts),
            user,
            app,
            version,
        )


@attrs.frozen
class AAssociateAC:
    """A-ASSOCIATE-AC PDU (PS3.8 9.3.3).

    The AE titles are echoed from the request and, per PS3.8, not tested on receipt.
    """

    pdu_type: ClassVar[int] = PDUType.A_ASSOCIATE_AC
    called_ae_title: str = attrs.field(validator=_check_ae)
    calling_ae_title: str = attrs.field(validator=_check_ae)
    presentation_contexts: tuple[PresentationContextAC, ...] = attrs.field(
        converter=_ac_contexts
    )
    user_information: UserInformation = attrs.field(factory=UserInformation)
    application_context_name: str = attrs.field(default=APPLICATION_CONTEXT_NAME,
                                                validator=_check_uid)
    protocol_version: int = 1

    def to_bytes(self) -> bytes:
        return _encode_associate(self)

    @classmethod
    def from_body(cls, body: memoryview) -> AAssociateAC:
        version, called, calling, app, raw_contexts, user = _decode_associate(
            body, "A-ASSOCIATE-AC", 0x21
        )
        return cls(
            called,
            calling,
            tuple(PresentationContextAC.from_value(v) for v in raw_contexts),
            user,
            app,
            version,
        )


def _four_byte_body(body: memoryview, name: str) -> tuple[int, int, int, int]:
    if len(body) != 4:
        raise PDUDecodeError(f"variable field is {len(body)} bytes, not 4", field=name)
    result: tuple[int, int, int, int] = _FOUR_BYTES.unpack(body)
    return result


@attrs.frozen
class AAssociateRJ:
    """A-ASSOCIATE-RJ PDU (PS3.8 9.3.4); values in :class:`RejectResult` and friends."""

    pdu_type: ClassVar[int] = PDUType.A_ASSOCIATE_RJ
    result: int
    source: int
    reason: int

    def to_bytes(self) -> bytes:
        return PDU_HEADER.pack(self.pdu_type, 0, 4) + bytes((0, self.result, self.source,
                                                             self.reason))

    @classmethod
    def from_body(cls, body: memoryview) -> AAssociateRJ:
        _, result, source, reason = _four_byte_body(body, "A-ASSOCIATE-RJ")
        return cls(result, source, reason)


@attrs.frozen
class AReleaseRQ:
    """A-RELEASE-RQ PDU (PS3.8 9.3.6)."""

    pdu_type: ClassVar[int] = PDUType.A_RELEASE_RQ

    def to_bytes(self) -> bytes:
        return _RELEASE_RQ_BYTES

    @classmethod
    def from_body(cls, body: memoryview) -> AReleaseRQ:
        _four_byte_body(body, "A-RELEASE-RQ")
        return cls()


@attrs.frozen
class AReleaseRP:
    """A-RELEASE-RP PDU (PS3.8 9.3.7)."""

    pdu_type: ClassVar[int] = PDUType.A_RELEASE_RP

    def to_bytes(self) -> bytes:
        return _RELEASE_RP_BYTES

    @classmethod
    def from_body(cls, body: memoryview) -> AReleaseRP:
        _four_byte_body(body, "A-RELEASE-RP")
        return cls()


_RELEASE_RQ_BYTES = PDU_HEADER.pack(PDUType.A_RELEASE_RQ, 0, 4) + bytes(4)
_RELEASE_RP_BYTES = PDU_HEADER.pack(PDUType.A_RELEASE_RP, 0, 4) + bytes(4)


@attrs.frozen
class AAbort:
    """A-ABORT PDU (PS3.8 9.3.8). ``reason`` is significant only for a provider abort."""

    pdu_type: ClassVar[int] = PDUType.A_ABORT
    source: int = AbortSource.SERVICE_USER
    reason: int = AbortReason.NOT_SPECIFIED

    def to_bytes(self) -> bytes:
        return PDU_HEADER.pack(self.pdu_type, 0, 4) + bytes((0, 0, self.source, self.reason))

    @classmethod
    def from_body(cls, body: memoryview) -> AAbort:
        _, _, source, reason = _four_byte_body(body, "A-ABORT")
        return cls(source, reason)


# -- P-DATA-TF ----------------------------------------------------------------------------


@attrs.frozen
class PresentationDataValue:
    """One PDV item (PS3.8 9.3.5.1, message control header in Annex E.2)."""

    context_id: int = attrs.field(
        validator=attrs.validators.and_(attrs.validators.ge(1), attrs.validators.le(255))
    )
    is_command: bool
    is_last: bool
    data: bytes

    @property
    def control_header(self) -> int:
        return int(self.is_command) | (int(self.is_last) << 1)


@attrs.frozen
class PDataTF:
    """P-DATA-TF PDU (PS3.8 9.3.5). For tests and tools; transports use :func:`iter_pdvs`."""

    pdu_type: ClassVar[int] = PDUType.P_DATA_TF
    values: tuple[PresentationDataValue, ...] = attrs.field(converter=_pdv_tuple)

    def to_bytes(self) -> bytes:
        parts = [
            _PDV_HEADER.pack(len(pdv.data) + 2, pdv.context_id, pdv.control_header) + pdv.data
            for pdv in self.values
        ]
        body = b"".join(parts)
        return PDU_HEADER.pack(self.pdu_type, 0, len(body)) + body

    @classmethod
    def from_body(cls, body: memoryview) -> PDataTF:
        values = []
        for cid, ctrl, data in iter_pdvs(body):
            if cid == 0:
                # PS3.8 9.3.5.1: IDs are odd integers 1-255; iter_pdvs leaves that to DIMSE
                raise PDUDecodeError("PDV with presentation context ID 0", field="P-DATA-TF")
            values.append(PresentationDataValue(cid, bool(ctrl & 1), bool(ctrl & 2), bytes(data)))
        return cls(tuple(values))


def iter_pdvs(body: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """Yield ``(context_id, control_header, data)`` for each PDV of a P-DATA-TF body.

    ``data`` is a slice of ``body``: nothing is copied. Bit 0 of the control
    header is set for a command fragment, bit 1 for the last fragment.
    """
    offset = 0
    end = len(body)
    if end == 0:
        raise PDUDecodeError("P-DATA-TF with no presentation data value", field="P-DATA-TF")
    unpack = _PDV_HEADER.unpack_from
    while offset < end:
        if end - offset < 6:
            raise PDUDecodeError(
                f"{end - offset} trailing byte(s), too short for a PDV header", field="P-DATA-TF"
            )
        length, context_id, control = unpack(body, offset)
        if length < 2 or offset + 4 + length > end:
            raise PDUDecodeError(
                f"PDV item length {length} does not fit the {end - offset - 4} bytes left",
                field="P-DATA-TF",
            )
        yield context_id, control, body[offset + 6 : offset + 4 + length]
        offset += 4 + length


def pdata_header(context_id: int, control: int, data_length: int) -> bytes:
    """The 12 bytes before the data of a P-DATA-TF PDU holding one PDV of ``data_length`` bytes."""
    return _PDATA_HEADER.pack(
        PDUType.P_DATA_TF, 0, data_length + 6, data_length + 2, context_id, control
    )


# -- dispatch ---------------------------------------------------------------------------------

PDU: TypeAlias = (
    AAssociateRQ | AAssociateAC | AAssociateRJ | PDataTF | AReleaseRQ | AReleaseRP | AAbort
)

_PDU_CLASSES: dict[int, type[PDU]] = {
    cls.pdu_type: cls
    for cls in (AAssociateRQ, AAssociateAC, AAssociateRJ, PDataTF, AReleaseRQ, AReleaseRP, AAbort)
}


def decode_pdu(pdu_type: int, body: memoryview) -> PDU:
    """Decode the variable field of a PDU of type ``pdu_type``.

    Raises :class:`PDUDecodeError` with reason *unrecognized PDU* for an unknown
    type, and *invalid PDU parameter value* for a malformed body.
    """
    cls = _PDU_CLASSES.get(pdu_type)
    if cls is None:
        raise PDUDecodeError(
            f"unrecognized PDU type 0x{pdu_type:02X}",
            field="PDU-type",
            abort_reason=AbortReason.UNRECOGNIZED_PDU,
        )
    return cls.from_body(body)
