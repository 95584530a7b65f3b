"""User-information negotiation items as pynetdicom programs build them (PS3.7 D.3.3, PS3.8 D.1).

The public module ``dicomnet.pdu_primitives``: the classes an application
passes as ``ext_neg`` to ``AE.associate`` or meets in ``EVT_USER_ID`` and
friends, with pynetdicom 3.0.4's class and attribute names and defaults::

    item = SCP_SCU_RoleSelectionNegotiation()
    item.sop_class_uid = CTImageStorage
    item.scp_role = True

They are mutable for that reason (built by assignment, validated on each
assignment). Each converts to and from the kernel's frozen sub-item of
:mod:`dicomnet.user_info` with :meth:`to_item` and :meth:`from_item`; the
association code works only with the frozen items.
:func:`items_from_primitives` and :func:`primitives_from_items` convert whole
lists.

=========================================  ======  =========================================
primitive                                  item    sub-item (dicomnet.user_info)
=========================================  ======  =========================================
MaximumLengthNotification                  51H     MaximumLength (PS3.8 D.1)
ImplementationClassUIDNotification         52H     ImplementationClassUID (PS3.7 D.3.3.2)
AsynchronousOperationsWindowNegotiation    53H     AsyncOperationsWindow (PS3.7 D.3.3.3)
SCP_SCU_RoleSelectionNegotiation           54H     SCPSCURoleSelection (PS3.7 D.3.3.4)
ImplementationVersionNameNotification      55H     ImplementationVersionName (PS3.7 D.3.3.2)
SOPClassExtendedNegotiation                56H     SOPClassExtendedNegotiation (D.3.3.5)
SOPClassCommonExtendedNegotiation          57H     SOPClassCommonExtendedNegotiation (D.3.3.6)
UserIdentityNegotiation                    58/59H  UserIdentityRQ / UserIdentityAC (D.3.3.7)
=========================================  ======  =========================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TypeAlias

from pydicom.uid import UID

from . import user_info as ui

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "AsynchronousOperationsWindowNegotiation",
    "ImplementationClassUIDNotification",
    "ImplementationVersionNameNotification",
    "MaximumLengthNotification",
    "SCP_SCU_RoleSelectionNegotiation",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "ServiceParameter",
    "UserIdentityNegotiation",
    "UserInformationPrimitive",
    "items_from_primitives",
    "primitives_from_items",
]

LOGGER = logging.getLogger("dicomnet.pdu_primitives")

#: pynetdicom's default Maximum Length Received (bytes of P-DATA-TF variable field)
DEFAULT_MAX_LENGTH = 16382


def _uid(value: str | bytes | None, name: str) -> UID | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii").rstrip("\0 ")
    if not isinstance(value, str):
        raise TypeError(f"'{name}' must be a str, bytes or UID, not {type(value).__name__}")
    if len(value) > 64:
        raise ValueError(f"Invalid '{name}' value '{value}': a UID has at most 64 characters")
    uid = UID(value)
    if not uid:
        raise ValueError(f"Invalid '{name}' value - must not be an empty str")
    if not uid.is_valid:
        LOGGER.warning("The %s '%s' is non-conformant", name, uid)
    return uid


def _bool_or_none(value: object, name: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be boolean")
    return value


def _unsigned(value: object, name: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be between 0 and {maximum}")
    return value


class ServiceParameter:
    """Base of the primitives: equal when all their parameters are equal."""

    item_class: ClassVar[type]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, self.__class__):
            return vars(self) == vars(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        fields = ", ".join(f"{k.lstrip('_')}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class MaximumLengthNotification(ServiceParameter):
    """The largest P-DATA-TF variable field we will receive; 0 means no limit (PS3.8 D.1)."""

    item_class = ui.MaximumLength

    def __init__(self) -> None:
        self._maximum_length_received = DEFAULT_MAX_LENGTH

    @property
    def maximum_length_received(self) -> int:
        """Maximum Length Received in bytes (default 16382; 0: unlimited)."""
        return self._maximum_length_received

    @maximum_length_received.setter
    def maximum_length_received(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("Maximum Length Received must be numerical")
        if value < 0:
            raise ValueError("Maximum Length Received must be greater than 0")
        self._maximum_length_received = _unsigned(value, "Maximum Length Received", 0xFFFFFFFF)

    def to_item(self) -> ui.MaximumLength:
        return ui.MaximumLength(self._maximum_length_received)

    @classmethod
    def from_item(cls, item: ui.MaximumLength) -> MaximumLengthNotification:
        obj = cls()
        obj.maximum_length_received = item.maximum_length
        return obj

    def __str__(self) -> str:
        return (
            "Maximum Length Negotiation\n"
            f"  Maximum length received: {self._maximum_length_received:d} bytes\n"
        )


class ImplementationClassUIDNotification(ServiceParameter):
    """The Implementation Class UID of the sender (PS3.7 D.3.3.2)."""

    item_class = ui.ImplementationClassUID

    def __init__(self) -> None:
        self._implementation_class_uid: UID | None = None

    @property
    def implementation_class_uid(self) -> UID | None:
        return self._implementation_class_uid

    @implementation_class_uid.setter
    def implementation_class_uid(self, value: str | bytes | None) -> None:
        self._implementation_class_uid = _uid(value, "Implementation Class UID")

    def to_item(self) -> ui.ImplementationClassUID:
        if self._implementation_class_uid is None:
            raise ValueError(
                "The Implementation Class UID must be set prior to requesting Association"
            )
        return ui.ImplementationClassUID(str(self._implementation_class_uid))

    @classmethod
    def from_item(cls, item: ui.ImplementationClassUID) -> ImplementationClassUIDNotification:
        obj = cls()
        obj.implementation_class_uid = item.uid
        return obj

    def __str__(self) -> str:
        return (
            "Implementation Class UID\n"
            f"  Implementation class UID: {self._implementation_class_uid}\n"
        )


class ImplementationVersionNameNotification(ServiceParameter):
    """The Implementation Version Name of the sender, 1 to 16 characters (PS3.7 D.3.3.2)."""

    item_class = ui.ImplementationVersionName

    def __init__(self) -> None:
        self._implementation_version_name: str | None = None

    @property
    def implementation_version_name(self) -> str | None:
        return self._implementation_version_name

    @implementation_version_name.setter
    def implementation_version_name(self, value: str | bytes | None) -> None:
        if value is None:
            self._implementation_version_name = None
            return
        if isinstance(value, bytes):
            value = value.decode("ascii")
        if not isinstance(value, str):
            raise TypeError("Implementation Version Name must be a str")
        if not value.strip():
            raise ValueError("Invalid 'Implementation Version Name' value - must not be empty")
        if len(value) > 16 or "\\" in value or any(ord(c) < 0x20 for c in value):
            raise ValueError(
                f"Invalid 'Implementation Version Name' value '{value}' - must be 1 to 16 "
                f"characters, without backslash or control characters"
            )
        self._implementation_version_name = value

    def to_item(self) -> ui.ImplementationVersionName:
        if self._implementation_version_name is None:
            raise ValueError("Implementation Version Name must be set prior to Association")
        return ui.ImplementationVersionName(self._implementation_version_name)

    @classmethod
    def from_item(
        cls, item: ui.ImplementationVersionName
    ) -> ImplementationVersionNameNotification:
        obj = cls()
        obj._implementation_version_name = item.name  # as received, even if odd
        return obj

    def __str__(self) -> str:
        return (
            "Implementation Version Name\n"
            f"  Implementation version name: {self._implementation_version_name}\n"
        )


class AsynchronousOperationsWindowNegotiation(ServiceParameter):
    """How many operations may be outstanding at once; 0 means unlimited (PS3.7 D.3.3.3)."""

    item_class = ui.AsyncOperationsWindow

    def __init__(self) -> None:
        self._maximum_number_operations_invoked = 1
        self._maximum_number_operations_performed = 1

    @property
    def maximum_number_operations_invoked(self) -> int:
        return self._maximum_number_operations_invoked

    @maximum_number_operations_invoked.setter
    def maximum_number_operations_invoked(self, value: int) -> None:
        self._maximum_number_operations_invoked = _unsigned(
            value, "Maximum Number Operations Invoked", 0xFFFF
        )

    @property
    def maximum_number_operations_performed(self) -> int:
        return self._maximum_number_operations_performed

    @maximum_number_operations_performed.setter
    def maximum_number_operations_performed(self, value: int) -> None:
        self._maximum_number_operations_performed = _unsigned(
            value, "Maximum Number Operations Performed", 0xFFFF
        )

    def to_item(self) -> ui.AsyncOperationsWindow:
        return ui.AsyncOperationsWindow(
            self._maximum_number_operations_invoked, self._maximum_number_operations_performed
        )

    @classmethod
    def from_item(
        cls, item: ui.AsyncOperationsWindow
    ) -> AsynchronousOperationsWindowNegotiation:
        obj = cls()
        obj.maximum_number_operations_invoked = item.maximum_invoked
        obj.maximum_number_operations_performed = item.maximum_performed
        return obj

    def __str__(self) -> str:
        return (
            "Asynchronous Operations Window\n"
            f"  Maximum number operations invoked: {self._maximum_number_operations_invoked:d}\n"
            f"  Maximum number operations performed: "
            f"{self._maximum_number_operations_performed:d}\n"
        )


class SCP_SCU_RoleSelectionNegotiation(ServiceParameter):  # pynetdicom's name
    """The roles proposed (requestor) or accepted (acceptor) for one SOP class (PS3.7 D.3.3.4).

    Without this item the requestor is SCU and the acceptor SCP. Build one with
    :func:`dicomnet.presentation.build_role`.
    """

    item_class = ui.SCPSCURoleSelection

    def __init__(self) -> None:
        self._sop_class_uid: UID | None = None
        self._scu_role: bool | None = None
        self._scp_role: bool | None = None

    @property
    def sop_class_uid(self) -> UID | None:
        return self._sop_class_uid

    @sop_class_uid.setter
    def sop_class_uid(self, value: str | bytes | None) -> None:
        self._sop_class_uid = _uid(value, "SOP Class UID")

    @property
    def scu_role(self) -> bool | None:
        return self._scu_role

    @scu_role.setter
    def scu_role(self, value: bool | None) -> None:
        self._scu_role = _bool_or_none(value, "SCU Role")

    @property
    def scp_role(self) -> bool | None:
        return self._scp_role

    @scp_role.setter
    def scp_role(self, value: bool | None) -> None:
        self._scp_role = _bool_or_none(value, "SCP Role")

    def to_item(self) -> ui.SCPSCURoleSelection:
        if self._sop_class_uid is None:
            raise ValueError("'sop_class_uid' must be set prior to Association")
        if not self._scu_role and not self._scp_role:
            raise ValueError(
                f"SCU and SCP Roles cannot both be unsupported for '{self._sop_class_uid}'"
            )
        return ui.SCPSCURoleSelection(
            str(self._sop_class_uid), bool(self._scu_role), bool(self._scp_role)
        )

    @classmethod
    def from_item(cls, item: ui.SCPSCURoleSelection) -> SCP_SCU_RoleSelectionNegotiation:
        obj = cls()
        obj.sop_class_uid = item.sop_class_uid
        obj.scu_role = item.scu_role
        obj.scp_role = item.scp_role
        return obj

    def __str__(self) -> str:
        return (
            "SCP/SCU Role Selection\n"
            f"  SOP class UID: {self._sop_class_uid}\n"
            f"  SCU role: {self._scu_role}\n  SCP role: {self._scp_role}\n"
        )


class SOPClassExtendedNegotiation(ServiceParameter):
    """Service-class application information for one SOP class (PS3.7 D.3.3.5)."""

    item_class = ui.SOPClassExtendedNegotiation

    def __init__(self) -> None:
        self._sop_class_uid: UID | None = None
        self._service_class_application_information: bytes | None = None

    @property
    def sop_class_uid(self) -> UID | None:
        return self._sop_class_uid

    @sop_class_uid.setter
    def sop_class_uid(self, value: str | bytes | None) -> None:
        self._sop_class_uid = _uid(value, "SOP Class UID")

    @property
    def service_class_application_information(self) -> bytes | None:
        return self._service_class_application_information

    @service_class_application_information.setter
    def service_class_application_information(self, value: bytes | None) -> None:
        if value is not None and not isinstance(value, bytes):
            raise TypeError("Service Class Application Information should be a bytes object")
        self._service_class_application_information = value

    def to_item(self) -> ui.SOPClassExtendedNegotiation:
        if self._sop_class_uid is None or self._service_class_application_information is None:
            raise ValueError(
                "SOP Class UID and Service Class Application Information must be set prior to "
                "Association negotiation"
            )
        return ui.SOPClassExtendedNegotiation(
            str(self._sop_class_uid), self._service_class_application_information
        )

    @classmethod
    def from_item(cls, item: ui.SOPClassExtendedNegotiation) -> SOPClassExtendedNegotiation:
        obj = cls()
        obj.sop_class_uid = item.sop_class_uid
        obj.service_class_application_information = item.service_class_application_information
        return obj

    def __str__(self) -> str:
        return (
            "SOP Class Extended Negotiation\n"
            f"  SOP class UID: {self._sop_class_uid}\n"
            f"  Service class application information: "
            f"{self._service_class_application_information!r}\n"
        )


class SOPClassCommonExtendedNegotiation(ServiceParameter):
    """The service class and related general SOP classes of a SOP class (PS3.7 D.3.3.6)."""

    item_class = ui.SOPClassCommonExtendedNegotiation

    def __init__(self) -> None:
        self._sop_class_uid: UID | None = None
        self._service_class_uid: UID | None = None
        self._related_general_sop_class_identification: list[UID] = []

    @property
    def sop_class_uid(self) -> UID | None:
        return self._sop_class_uid

    @sop_class_uid.setter
    def sop_class_uid(self, value: str | bytes | None) -> None:
        self._sop_class_uid = _uid(value, "SOP Class UID")

    @property
    def service_class_uid(self) -> UID | None:
        return self._service_class_uid

    @service_class_uid.setter
    def service_class_uid(self, value: str | bytes | None) -> None:
        self._service_class_uid = _uid(value, "Service Class UID")

    @property
    def related_general_sop_class_identification(self) -> list[UID]:
        return self._related_general_sop_class_identification

    @related_general_sop_class_identification.setter
    def related_general_sop_class_identification(self, uids: list[str | bytes]) -> None:
        if not isinstance(uids, list):
            raise TypeError(
                "Related General SOP Class Identification must be a list of "
                "pydicom.uid.UID, str or bytes"
            )
        converted: list[UID] = []
        for uid in uids:
            value = _uid(uid, "Related General SOP Class Identification")
            if value is None:
                raise TypeError("Related General SOP Class Identification may not contain None")
            converted.append(value)
        self._related_general_sop_class_identification = converted

    def to_item(self) -> ui.SOPClassCommonExtendedNegotiation:
        if self._sop_class_uid is None or self._service_class_uid is None:
            raise ValueError(
                "SOP Class UID and Service Class UID must be set prior to Association "
                "negotiation"
            )
        return ui.SOPClassCommonExtendedNegotiation(
            str(self._sop_class_uid),
            str(self._service_class_uid),
            tuple(str(u) for u in self._related_general_sop_class_identification),
        )

    @classmethod
    def from_item(
        cls, item: ui.SOPClassCommonExtendedNegotiation
    ) -> SOPClassCommonExtendedNegotiation:
        obj = cls()
        obj.sop_class_uid = item.sop_class_uid
        obj.service_class_uid = item.service_class_uid
        obj.related_general_sop_class_identification = list(item.related_general_sop_class_uids)
        return obj

    def __str__(self) -> str:
        related = ", ".join(str(u) for u in self._related_general_sop_class_identification)
        return (
            "SOP Class Common Extended Negotiation\n"
            f"  SOP class UID: {self._sop_class_uid}\n"
            f"  Service class UID: {self._service_class_uid}\n"
            f"  Related general SOP classes: {related or '(none)'}\n"
        )


class UserIdentityNegotiation(ServiceParameter):
    """User identity of the requestor (58H) or the acceptor's response (59H), PS3.7 D.3.3.7.

    A requestor sets ``user_identity_type`` (1 username, 2 username and
    passcode, 3 Kerberos, 4 SAML, 5 JWT), ``primary_field``, ``secondary_field``
    (the passcode, type 2 only) and ``positive_response_requested``. An
    acceptor's answer has only ``server_response`` set; that is how
    :meth:`to_item` tells the two apart.
    """

    item_class = ui.UserIdentityRQ

    def __init__(self) -> None:
        self._user_identity_type: int | None = None
        self._positive_response_requested = False
        self._primary_field: bytes | None = None
        self._secondary_field: bytes | None = b""
        self._server_response: bytes | None = None

    @property
    def user_identity_type(self) -> int | None:
        return self._user_identity_type

    @user_identity_type.setter
    def user_identity_type(self, value: int | None) -> None:
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("User Identity Type must be an int or None")
            if value not in (1, 2, 3, 4, 5):
                raise ValueError(
                    "User Identity Type must be 1, 2, 3, 4 or 5 if requesting Association, "
                    "None otherwise"
                )
        self._user_identity_type = value

    @property
    def positive_response_requested(self) -> bool:
        return self._positive_response_requested

    @positive_response_requested.setter
    def positive_response_requested(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError("Positive Response Requested must be boolean")
        self._positive_response_requested = value

    @staticmethod
    def _bytes(value: object, name: str) -> bytes | None:
        if value is not None and not isinstance(value, bytes):
            raise TypeError(f"{name} must be bytes or None")
        return value

    @property
    def primary_field(self) -> bytes | None:
        return self._primary_field

    @primary_field.setter
    def primary_field(self, value: bytes | None) -> None:
        self._primary_field = self._bytes(value, "Primary Field")

    @property
    def secondary_field(self) -> bytes | None:
        return self._secondary_field

    @secondary_field.setter
    def secondary_field(self, value: bytes | None) -> None:
        self._secondary_field = self._bytes(value, "Secondary Field")

    @property
    def server_response(self) -> bytes | None:
        return self._server_response

    @server_response.setter
    def server_response(self, value: bytes | None) -> None:
        self._server_response = self._bytes(value, "Server Response")

    def to_item(self) -> ui.UserIdentityRQ | ui.UserIdentityAC:
        if self._server_response is not None:
            return ui.UserIdentityAC(self._server_response)
        if self._user_identity_type is None or self._primary_field is None:
            raise ValueError(
                "User Identity Type and Primary Field must be set prior to Association "
                "negotiation"
            )
        if self._user_identity_type == 2 and not self._secondary_field:
            raise ValueError("Secondary Field must be set when User Identity is 2")
        return ui.UserIdentityRQ(
            self._user_identity_type,
            self._primary_field,
            self._secondary_field or b"",
            self._positive_response_requested,
        )

    @classmethod
    def from_item(cls, item: ui.UserIdentityRQ | ui.UserIdentityAC) -> UserIdentityNegotiation:
        obj = cls()
        if isinstance(item, ui.UserIdentityAC):
            obj.server_response = item.server_response
            return obj
        # as received: the type byte may be one PS3.7 does not define yet
        obj._user_identity_type = item.user_identity_type
        obj.primary_field = item.primary_field
        obj.secondary_field = item.secondary_field
        obj.positive_response_requested = item.positive_response_requested
        return obj

    def __str__(self) -> str:
        if self._server_response is not None:
            return f"User Identity Parameters\n  Server response: {self._server_response!r}\n"
        return (
            "User Identity Parameters\n"
            f"  User identity type: {self._user_identity_type}\n"
            f"  Positive response requested: {self._positive_response_requested}\n"
            f"  Primary field: {self._primary_field!r}\n"
            f"  Secondary field: {self._secondary_field!r}\n"
        )


UserInformationPrimitive: TypeAlias = (
    MaximumLengthNotification
    | ImplementationClassUIDNotification
    | ImplementationVersionNameNotification
    | AsynchronousOperationsWindowNegotiation
    | SCP_SCU_RoleSelectionNegotiation
    | SOPClassExtendedNegotiation
    | SOPClassCommonExtendedNegotiation
    | UserIdentityNegotiation
)

_FROM_ITEM: dict[type, Any] = {
    ui.MaximumLength: MaximumLengthNotification,
    ui.ImplementationClassUID: ImplementationClassUIDNotification,
    ui.ImplementationVersionName: ImplementationVersionNameNotification,
    ui.AsyncOperationsWindow: AsynchronousOperationsWindowNegotiation,
    ui.SCPSCURoleSelection: SCP_SCU_RoleSelectionNegotiation,
    ui.SOPClassExtendedNegotiation: SOPClassExtendedNegotiation,
    ui.SOPClassCommonExtendedNegotiation: SOPClassCommonExtendedNegotiation,
    ui.UserIdentityRQ: UserIdentityNegotiation,
    ui.UserIdentityAC: UserIdentityNegotiation,
}


def items_from_primitives(primitives: Iterable[UserInformationPrimitive]) -> tuple[ui.SubItem, ...]:
    """The frozen sub-items for a list of primitives (an ``ext_neg`` list), in order."""
    items: list[ui.SubItem] = []
    for primitive in primitives:
        to_item = getattr(primitive, "to_item", None)
        if to_item is None:
            raise TypeError(f"{primitive!r} is not a user information negotiation item")
        items.append(to_item())
    return tuple(items)


def primitives_from_items(items: Sequence[ui.SubItem]) -> list[UserInformationPrimitive]:
    """The primitives for the sub-items of a User Information item; unknown ones are skipped."""
    out: list[UserInformationPrimitive] = []
    for item in items:
        cls = _FROM_ITEM.get(type(item))
        if cls is not None:
            out.append(cls.from_item(item))
    return out
