"""The User Information item (50H) and its sub-items (PS3.8 9.3.2.3, Annex D; PS3.7 Annex D).

A :class:`UserInformation` keeps its sub-items in the order they came in, so a
decoded A-ASSOCIATE-RQ/AC re-encodes byte for byte; the properties give the
typed view the negotiation code uses. Sub-items of a type this module does not
know are kept as :class:`UnknownSubItem` (and otherwise ignored, as PS3.8 D.3.3
asks of an acceptor that does not support an extended negotiation).

=====  ===========================================  ===========================
Type   Sub-item                                     Defined in
=====  ===========================================  ===========================
51H    Maximum Length                               PS3.8 D.1
52H    Implementation Class UID                     PS3.7 D.3.3.2
53H    Asynchronous Operations Window               PS3.7 D.3.3.3
54H    SCP/SCU Role Selection                       PS3.7 D.3.3.4
55H    Implementation Version Name                  PS3.7 D.3.3.2
56H    SOP Class Extended Negotiation               PS3.7 D.3.3.5
57H    SOP Class Common Extended Negotiation        PS3.7 D.3.3.6
58H    User Identity Negotiation (request)          PS3.7 D.3.3.7
59H    User Identity Negotiation (response)         PS3.7 D.3.3.7
=====  ===========================================  ===========================
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from typing import ClassVar, TypeAlias, TypeVar

import attrs

from ._wire import (
    check_uid,
    decode_text,
    decode_uid,
    encode_item,
    encode_uid,
    iter_items,
    read_u16_prefixed,
)
from .errors import PDUDecodeError

__all__ = [
    "AsyncOperationsWindow",
    "ImplementationClassUID",
    "ImplementationVersionName",
    "MaximumLength",
    "SCPSCURoleSelection",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "SubItem",
    "UnknownSubItem",
    "UserIdentityAC",
    "UserIdentityRQ",
    "UserIdentityType",
    "UserInformation",
]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U16x2 = struct.Struct(">HH")


def _check_uid(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    check_uid(attr.name, value)


def _uid_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _check_uids(
    _inst: object, attr: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for uid in value:
        check_uid(attr.name, uid)


@attrs.frozen
class MaximumLength:
    """51H: the largest P-DATA-TF variable field the sender will receive; 0 means no limit."""

    item_type: ClassVar[int] = 0x51
    maximum_length: int = attrs.field(validator=attrs.validators.and_(
        attrs.validators.ge(0), attrs.validators.le(0xFFFFFFFF)))

    def value_bytes(self) -> bytes:
        return _U32.pack(self.maximum_length)

    @classmethod
    def from_value(cls, value: memoryview) -> MaximumLength:
        if len(value) != 4:
            raise PDUDecodeError(f"is {len(value)} bytes, not 4", field="Maximum Length (51H)")
        return cls(_U32.unpack(value)[0])


@attrs.frozen
class ImplementationClassUID:
    """52H: identifies the implementation of the sender (PS3.7 D.3.3.2)."""

    item_type: ClassVar[int] = 0x52
    uid: str = attrs.field(validator=_check_uid)

    def value_bytes(self) -> bytes:
        return encode_uid(self.uid)

    @classmethod
    def from_value(cls, value: memoryview) -> ImplementationClassUID:
        return cls(decode_uid(value, "Implementation Class UID (52H)"))


@attrs.frozen
class AsyncOperationsWindow:
    """53H: how many operations may be outstanding at once; 0 means unlimited (PS3.7 D.3.3.3)."""

    item_type: ClassVar[int] = 0x53
    maximum_invoked: int = attrs.field(
        validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(0xFFFF))
    )
    maximum_performed: int = attrs.field(
        validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(0xFFFF))
    )

    def value_bytes(self) -> bytes:
        return _U16x2.pack(self.maximum_invoked, self.maximum_performed)

    @classmethod
    def from_value(cls, value: memoryview) -> AsyncOperationsWindow:
        if len(value) != 4:
            raise PDUDecodeError(
                f"is {len(value)} bytes, not 4", field="Asynchronous Operations Window (53H)"
            )
        return cls(*_U16x2.unpack(value))


@attrs.frozen
class SCPSCURoleSelection:
    """54H: proposes (RQ) or confirms (AC) the roles for one SOP class (PS3.7 D.3.3.4).

    ``scu_role``/``scp_role`` are ``True`` when the role is proposed/accepted.
    """

    item_type: ClassVar[int] = 0x54
    sop_class_uid: str = attrs.field(validator=_check_uid)
    scu_role: bool
    scp_role: bool

    def value_bytes(self) -> bytes:
        uid = encode_uid(self.sop_class_uid)
        return _U16.pack(len(uid)) + uid + bytes((int(self.scu_role), int(self.scp_role)))

    @classmethod
    def from_value(cls, value: memoryview) -> SCPSCURoleSelection:
        field = "SCP/SCU Role Selection (54H)"
        uid, offset = read_u16_prefixed(value, 0, field)
        if len(value) - offset != 2:
            raise PDUDecodeError("SCU-role and SCP-role bytes missing or extra bytes", field=field)
        return cls(decode_uid(uid, field), value[offset] == 1, value[offset + 1] == 1)


@attrs.frozen
class ImplementationVersionName:
    """55H: free-form version of the sender's implementation, 1 to 16 characters."""

    item_type: ClassVar[int] = 0x55
    name: str = attrs.field()

    @name.validator
    def _check(self, _attr: attrs.Attribute[str], value: str) -> None:
        if len(value.encode("ascii")) > 16:
            raise ValueError(f"Implementation Version Name {value!r} is longer than 16 characters")

    def value_bytes(self) -> bytes:
        return self.name.encode("ascii")

    @classmethod
    def from_value(cls, value: memoryview) -> ImplementationVersionName:
        field = "Implementation Version Name (55H)"
        if len(value) > 16:
            raise PDUDecodeError(f"is {len(value)} bytes, more than 16", field=field)
        return cls(decode_text(value, field))


@attrs.frozen
class SOPClassExtendedNegotiation:
    """56H: service-class specific application information for one SOP class (PS3.7 D.3.3.5)."""

    item_type: ClassVar[int] = 0x56
    sop_class_uid: str = attrs.field(validator=_check_uid)
    service_class_application_information: bytes

    def value_bytes(self) -> bytes:
        uid = encode_uid(self.sop_class_uid)
        return _U16.pack(len(uid)) + uid + self.service_class_application_information

    @classmethod
    def from_value(cls, value: memoryview) -> SOPClassExtendedNegotiation:
        field = "SOP Class Extended Negotiation (56H)"
        uid, offset = read_u16_prefixed(value, 0, field)
        return cls(decode_uid(uid, field), bytes(value[offset:]))


@attrs.frozen
class SOPClassCommonExtendedNegotiation:
    """57H: the service class and related general SOP classes of a SOP class (PS3.7 D.3.3.6).

    Sent only by the requestor; the acceptor never answers it.
    """

    item_type: ClassVar[int] = 0x57
    sop_class_uid: str = attrs.field(validator=_check_uid)
    service_class_uid: str = attrs.field(validator=_check_uid)
    related_general_sop_class_uids: tuple[str, ...] = attrs.field(
        default=(), converter=_uid_tuple, validator=_check_uids
    )
    #: the sub-item version, carried in the header's second byte; 0 in PS3.7 today
    version: int = 0

    def value_bytes(self) -> bytes:
        sop = encode_uid(self.sop_class_uid)
        svc = encode_uid(self.service_class_uid)
        related = b"".join(
            _U16.pack(len(raw)) + raw
            for raw in (encode_uid(u) for u in self.related_general_sop_class_uids)
        )
        return (
            _U16.pack(len(sop)) + sop + _U16.pack(len(svc)) + svc + _U16.pack(len(related))
            + related
        )

    @classmethod
    def from_value(
        cls, value: memoryview, version: int = 0
    ) -> SOPClassCommonExtendedNegotiation:
        field = "SOP Class Common Extended Negotiation (57H)"
        sop, offset = read_u16_prefixed(value, 0, field)
        svc, offset = read_u16_prefixed(value, offset, field)
        related_block, offset = read_u16_prefixed(value, offset, field)
        related: list[str] = []
        pos = 0
        while pos < len(related_block):
            uid, pos = read_u16_prefixed(related_block, pos, field + " related general SOP class")
            related.append(decode_uid(uid, field))
        # bytes after the related SOP class block are reserved: ignored
        return cls(decode_uid(sop, field), decode_uid(svc, field), tuple(related), version)


class UserIdentityType(enum.IntEnum):
    """User-Identity-Type values of item 58H (PS3.7 D.3.3.7.1)."""

    USERNAME = 1
    USERNAME_AND_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


@attrs.frozen
class UserIdentityRQ:
    """58H: the requestor's identity (PS3.7 D.3.3.7.1; PS3.15 for the assertion types).

    ``secondary_field`` carries the passcode for type 2 and is empty otherwise.
    """

    item_type: ClassVar[int] = 0x58
    user_identity_type: int = attrs.field(
        validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(255))
    )
    primary_field: bytes
    secondary_field: bytes = b""
    positive_response_requested: bool = False

    def value_bytes(self) -> bytes:
        return (
            bytes((self.user_identity_type, int(self.positive_response_requested)))
            + _U16.pack(len(self.primary_field)) + self.primary_field
            + _U16.pack(len(self.secondary_field)) + self.secondary_field
        )

    @classmethod
    def from_value(cls, value: memoryview) -> UserIdentityRQ:
        field = "User Identity Negotiation RQ (58H)"
        if len(value) < 2:
            raise PDUDecodeError("too short for the identity type and response flag", field=field)
        primary, offset = read_u16_prefixed(value, 2, field + " primary field")
        secondary, offset = read_u16_prefixed(value, offset, field + " secondary field")
        return cls(value[0], bytes(primary), bytes(secondary), value[1] == 1)


@attrs.frozen
class UserIdentityAC:
    """59H: the acceptor's server response to a user identity request (PS3.7 D.3.3.7.2)."""

    item_type: ClassVar[int] = 0x59
    server_response: bytes = b""

    def value_bytes(self) -> bytes:
        return _U16.pack(len(self.server_response)) + self.server_response

    @classmethod
    def from_value(cls, value: memoryview) -> UserIdentityAC:
        response, _ = read_u16_prefixed(value, 0, "User Identity Negotiation AC (59H)")
        return cls(bytes(response))


@attrs.frozen
class UnknownSubItem:
    """A sub-item of a type PS3.7 does not define; kept so the PDU re-encodes exactly."""

    item_type: int
    value: bytes
    second: int = 0

    def value_bytes(self) -> bytes:
        return self.value


SubItem: TypeAlias = (
    MaximumLength
    | ImplementationClassUID
    | AsyncOperationsWindow
    | SCPSCURoleSelection
    | ImplementationVersionName
    | SOPClassExtendedNegotiation
    | SOPClassCommonExtendedNegotiation
    | UserIdentityRQ
    | UserIdentityAC
    | UnknownSubItem
)

_DECODERS = {
    cls.item_type: cls
    for cls in (
        MaximumLength,
        ImplementationClassUID,
        AsyncOperationsWindow,
        SCPSCURoleSelection,
        ImplementationVersionName,
        SOPClassExtendedNegotiation,
        UserIdentityRQ,
        UserIdentityAC,
    )
}

_T = TypeVar("_T")


@attrs.frozen
class UserInformation:
    """50H: the user information item, an ordered tuple of sub-items.

    Build one with :meth:`build` for the usual order (51H, 52H, 53H, 54H..., 55H,
    56H..., 57H..., 58H/59H), or pass ``items`` directly for full control.
    """

    item_type: ClassVar[int] = 0x50
    items: tuple[SubItem, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        maximum_length: int | None = None,
        implementation_class_uid: str | None = None,
        implementation_version_name: str | None = None,
        async_ops_window: AsyncOperationsWindow | None = None,
        role_selection: tuple[SCPSCURoleSelection, ...] = (),
        sop_class_extended: tuple[SOPClassExtendedNegotiation, ...] = (),
        sop_class_common_extended: tuple[SOPClassCommonExtendedNegotiation, ...] = (),
        user_identity: UserIdentityRQ | UserIdentityAC | None = None,
    ) -> UserInformation:
        items: list[SubItem] = []
        if maximum_length is not None:
            items.append(MaximumLength(maximum_length))
        if implementation_class_uid is not None:
            items.append(ImplementationClassUID(implementation_class_uid))
        if async_ops_window is not None:
            items.append(async_ops_window)
        items.extend(role_selection)
        if implementation_version_name:
            items.append(ImplementationVersionName(implementation_version_name))
        items.extend(sop_class_extended)
        items.extend(sop_class_common_extended)
        if user_identity is not None:
            items.append(user_identity)
        return cls(tuple(items))

    # -- typed views -------------------------------------------------------------
    def _first(self, kind: type[_T]) -> _T | None:
        for item in self.items:
            if isinstance(item, kind):
                return item
        return None

    def _all(self, kind: type[_T]) -> tuple[_T, ...]:
        return tuple(item for item in self.items if isinstance(item, kind))

    @property
    def maximum_length(self) -> int | None:
        item = self._first(MaximumLength)
        return None if item is None else item.maximum_length

    @property
    def implementation_class_uid(self) -> str | None:
        item = self._first(ImplementationClassUID)
        return None if item is None else item.uid

    @property
    def implementation_version_name(self) -> str | None:
        item = self._first(ImplementationVersionName)
        return None if item is None else item.name

    @property
    def async_ops_window(self) -> AsyncOperationsWindow | None:
        return self._first(AsyncOperationsWindow)

    @property
    def role_selection(self) -> tuple[SCPSCURoleSelection, ...]:
        return self._all(SCPSCURoleSelection)

    @property
    def sop_class_extended(self) -> tuple[SOPClassExtendedNegotiation, ...]:
        return self._all(SOPClassExtendedNegotiation)

    @property
    def sop_class_common_extended(self) -> tuple[SOPClassCommonExtendedNegotiation, ...]:
        return self._all(SOPClassCommonExtendedNegotiation)

    @property
    def user_identity_rq(self) -> UserIdentityRQ | None:
        return self._first(UserIdentityRQ)

    @property
    def user_identity_ac(self) -> UserIdentityAC | None:
        return self._first(UserIdentityAC)

    # -- wire form ---------------------------------------------------------------
    def value_bytes(self) -> bytes:
        parts = []
        for item in self.items:
            second = (
                item.version if isinstance(item, SOPClassCommonExtendedNegotiation)
                else item.second if isinstance(item, UnknownSubItem) else 0
            )
            parts.append(encode_item(item.item_type, item.value_bytes(), second))
        return b"".join(parts)

    def to_bytes(self) -> bytes:
        return encode_item(0x50, self.value_bytes())

    @classmethod
    def from_value(cls, value: memoryview) -> UserInformation:
        items: list[SubItem] = []
        for item_type, second, sub in iter_items(value, "User Information (50H)"):
            decoder = _DECODERS.get(item_type)
            if decoder is not None:
                items.append(decoder.from_value(sub))
            elif item_type == 0x57:
                items.append(SOPClassCommonExtendedNegotiation.from_value(sub, second))
            else:
                items.append(UnknownSubItem(item_type, bytes(sub), second))
        return cls(tuple(items))
