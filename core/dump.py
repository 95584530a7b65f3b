"""Human-readable dumps of ACSE PDUs and DIMSE messages, for logs and tools.

Every function here is pure: a PDU or a DIMSE message in, text out. Nothing
calls them unless a log record is going to be emitted (see
:mod:`dicomnet._logging`, which decides), so none of this costs anything in
normal operation. The text is meant for people reading a log, not for parsers:
its layout may change between releases.

* :func:`associate_rq`, :func:`associate_ac` and :func:`associate_rj` list
  every field of an A-ASSOCIATE PDU (PS3.8 9.3.2 to 9.3.4) and its user
  information sub-items (PS3.7 Annex D.3.3, PS3.8 Annex D): AE titles,
  application context, presentation contexts with names for their UIDs, the
  Maximum Length, implementation identification, roles, asynchronous
  operations window, user identity and extended negotiation. Passcodes and
  identity assertions are never printed, only their length.
* :func:`abort` and :func:`release` name the A-ABORT and A-RELEASE fields
  (PS3.8 9.3.6 to 9.3.8).
* :func:`dimse_summary` is a one-line description of a DIMSE message (PS3.7
  9.3, 10.3) and :func:`command_set` lists its command elements one per line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydicom.uid import UID

from . import dimse_messages as dm
from .acse import describe_rejection
from .errors import AbortReason, AbortSource
from .pdu import (
    APPLICATION_CONTEXT_NAME,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    PresentationContextResult,
)
from .status import (
    GENERAL_STATUS,
    QR_FIND_SERVICE_CLASS_STATUS,
    QR_GET_SERVICE_CLASS_STATUS,
    QR_MOVE_SERVICE_CLASS_STATUS,
    STORAGE_SERVICE_CLASS_STATUS,
    StatusTable,
)
from .user_info import (
    AsyncOperationsWindow,
    SCPSCURoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserIdentityType,
    UserInformation,
)

__all__ = [
    "abort",
    "associate_ac",
    "associate_rj",
    "associate_rq",
    "command_set",
    "describe_status",
    "dimse_summary",
    "release",
    "uid_text",
]

#: Width of the label column in the A-ASSOCIATE dumps.
_LABEL = 26
#: Bytes of extended negotiation information shown in hex before eliding the rest.
_HEX_SHOWN = 32


# -- small helpers ----------------------------------------------------------------------------


def uid_text(uid: str | None) -> str:
    """``"Verification SOP Class (1.2.840.10008.1.1)"``, or the bare UID when it has no name."""
    if not uid:
        return "(none)"
    name = UID(uid).name
    return uid if not name or name == uid else f"{name} ({uid})"


def _uid_name(uid: str | None) -> str:
    """The UID's name when it has one, else the UID itself (for one-line summaries)."""
    if not uid:
        return "(none)"
    name = UID(uid).name
    return name if name else uid


def _line(label: str, value: object, indent: str = "  ") -> str:
    return f"{indent}{label + ':':<{_LABEL}}{value}"


def _hex(data: bytes) -> str:
    shown = data[:_HEX_SHOWN].hex(" ")
    more = f" ... ({len(data)} bytes)" if len(data) > _HEX_SHOWN else ""
    return (shown + more) if data else "(empty)"


def _max_length(value: int | None, who: str) -> str:
    if value is None:
        return "not given (sub-item 51H missing)"
    if value == 0:
        return f"unlimited (the {who} accepts P-DATA-TF PDUs of any length)"
    return f"{value} bytes (the largest P-DATA-TF variable field the {who} accepts)"


def _window(window: AsyncOperationsWindow | None) -> str:
    if window is None:
        return "not negotiated (one operation at a time)"

    def count(n: int) -> str:
        return "unlimited" if n == 0 else str(n)

    return (
        f"{count(window.maximum_invoked)} invoked, {count(window.maximum_performed)} performed"
    )


def _roles(item: SCPSCURoleSelection | None, verb: str) -> str:
    if item is None:
        return "default (requestor SCU, acceptor SCP)"
    scu = "SCU" if item.scu_role else "no SCU"
    scp = "SCP" if item.scp_role else "no SCP"
    return f"requestor {scu}, {scp} ({verb})"


def _identity_type(kind: int) -> str:
    try:
        return UserIdentityType(kind).name.lower().replace("_", " ")
    except ValueError:
        return f"undefined type {kind}"


def _identity_rq(item: UserIdentityRQ | None) -> str:
    if item is None:
        return "none"
    kind = item.user_identity_type
    text = f"{_identity_type(kind)} (type {kind})"
    if kind in (UserIdentityType.USERNAME, UserIdentityType.USERNAME_AND_PASSCODE):
        user = item.primary_field.decode("utf-8", "replace")
        text += f", user {user!r}"
        if kind == UserIdentityType.USERNAME_AND_PASSCODE:
            text += f", passcode of {len(item.secondary_field)} bytes (not shown)"
    else:
        text += f", {len(item.primary_field)} bytes (not shown)"
    if item.positive_response_requested:
        text += ", positive response requested"
    return text


def _identity_ac(item: UserIdentityAC | None) -> str:
    if item is None:
        return "none"
    return f"server response of {len(item.server_response)} bytes"


def _extended(items: Sequence[SOPClassExtendedNegotiation], indent: str) -> list[str]:
    return [
        f"{indent}{uid_text(item.sop_class_uid)}: "
        f"{_hex(item.service_class_application_information)}"
        for item in items
    ]


def _common_extended(
    items: Sequence[SOPClassCommonExtendedNegotiation], indent: str
) -> list[str]:
    lines = []
    for item in items:
        lines.append(
            f"{indent}{uid_text(item.sop_class_uid)}: service class "
            f"{uid_text(item.service_class_uid)}"
        )
        lines.extend(
            f"{indent}  related general SOP class {uid_text(uid)}"
            for uid in item.related_general_sop_class_uids
        )
    return lines


def _unknown(items: Iterable[object], indent: str) -> list[str]:
    return [
        f"{indent}sub-item {item.item_type:02X}H of {len(item.value)} bytes (ignored)"
        for item in items
        if isinstance(item, UnknownSubItem)
    ]


def _header_lines(pdu: AAssociateRQ | AAssociateAC, who: str) -> list[str]:
    info = pdu.user_information
    context = pdu.application_context_name
    context_text = (
        f"{context} (the DICOM application context)"
        if context == APPLICATION_CONTEXT_NAME
        else f"{context} (not the DICOM application context)"
    )
    version = info.implementation_version_name
    return [
        _line("calling AE title", repr(pdu.calling_ae_title)),
        _line("called AE title", repr(pdu.called_ae_title)),
        _line("application context", context_text),
        _line("protocol version", pdu.protocol_version),
        _line("maximum PDU length", _max_length(info.maximum_length, who)),
        _line("implementation class", info.implementation_class_uid or "none"),
        _line("implementation version", repr(version) if version else "none"),
        _line("asynchronous operations", _window(info.async_ops_window)),
    ]


def _negotiation_lines(info: UserInformation, *, request: bool) -> list[str]:
    lines: list[str] = []
    if request:
        lines.append(_line("user identity", _identity_rq(info.user_identity_rq)))
    else:
        lines.append(_line("user identity response", _identity_ac(info.user_identity_ac)))
    extended = info.sop_class_extended
    lines.append(_line("extended negotiation", len(extended) or "none"))
    lines.extend(_extended(extended, "    "))
    common = info.sop_class_common_extended
    if request or common:
        lines.append(_line("common extended", len(common) or "none"))
        lines.extend(_common_extended(common, "    "))
    unknown = _unknown(info.items, "    ")
    if unknown:
        lines.append(_line("other sub-items", len(unknown)))
        lines.extend(unknown)
    return lines


def _roles_by_uid(info: UserInformation) -> dict[str, SCPSCURoleSelection]:
    found: dict[str, SCPSCURoleSelection] = {}
    for item in info.role_selection:
        found.setdefault(item.sop_class_uid, item)
    return found


# -- A-ASSOCIATE ------------------------------------------------------------------------------


def associate_rq(rq: AAssociateRQ) -> str:
    """Every field of an A-ASSOCIATE-RQ (PS3.8 9.3.2), one per line, indented."""
    lines = _header_lines(rq, "requestor")
    roles = _roles_by_uid(rq.user_information)
    contexts = rq.presentation_contexts
    lines.append(_line("presentation contexts", f"{len(contexts)} proposed"))
    for cx in contexts:
        lines.append(f"    [{cx.context_id}] {uid_text(cx.abstract_syntax)}")
        for i, ts in enumerate(cx.transfer_syntaxes):
            label = "transfer syntaxes:" if i == 0 else ""
            lines.append(f"        {label:<19}{uid_text(ts)}")
        lines.append(f"        {'roles:':<19}{_roles(roles.get(cx.abstract_syntax), 'proposed')}")
    lines.extend(_negotiation_lines(rq.user_information, request=True))
    return "\n".join(lines)


_RESULTS: dict[int, str] = {
    PresentationContextResult.ACCEPTANCE: "acceptance",
    PresentationContextResult.USER_REJECTION: "user-rejection",
    PresentationContextResult.NO_REASON: "no-reason (provider-rejection)",
    PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED: (
        "abstract-syntax-not-supported (provider-rejection)"
    ),
    PresentationContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED: (
        "transfer-syntaxes-not-supported (provider-rejection)"
    ),
}


def associate_ac(ac: AAssociateAC, rq: AAssociateRQ | None = None) -> str:
    """Every field of an A-ASSOCIATE-AC (PS3.8 9.3.3), one per line, indented.

    With the request ``rq`` the abstract syntax of each context is named (the
    AC only gives context IDs) and proposed roles are shown next to the answer.
    """
    lines = _header_lines(ac, "acceptor")
    proposed = {cx.context_id: cx for cx in rq.presentation_contexts} if rq is not None else {}
    roles = _roles_by_uid(ac.user_information)
    contexts = ac.presentation_contexts
    accepted = sum(1 for cx in contexts if cx.result == PresentationContextResult.ACCEPTANCE)
    lines.append(
        _line("presentation contexts", f"{accepted} accepted, {len(contexts) - accepted} rejected")
    )
    for cx in contexts:
        asked = proposed.get(cx.context_id)
        abstract = asked.abstract_syntax if asked is not None else None
        name = uid_text(abstract) if abstract else "(abstract syntax not in the AC)"
        lines.append(f"    [{cx.context_id}] {name}")
        result = _RESULTS.get(cx.result, "undefined")
        lines.append(f"        {'result:':<19}{cx.result}, {result}")
        if cx.result == PresentationContextResult.ACCEPTANCE:
            lines.append(f"        {'transfer syntax:':<19}{uid_text(cx.transfer_syntax)}")
            if abstract is not None:
                answer = _roles(roles.get(abstract), "accepted")
                lines.append(f"        {'roles:':<19}{answer}")
    lines.extend(_negotiation_lines(ac.user_information, request=False))
    return "\n".join(lines)


def associate_rj(rj: AAssociateRJ) -> str:
    """The result, source and reason of an A-ASSOCIATE-RJ (PS3.8 9.3.4, Table 9-21)."""
    return "  " + describe_rejection(rj)


# -- A-RELEASE and A-ABORT --------------------------------------------------------------------


def release(*, response: bool) -> str:
    """A-RELEASE-RQ or -RP (PS3.8 9.3.6, 9.3.7): they carry no parameters."""
    return "  (a release " + ("response" if response else "request") + " carries no parameters)"


_ABORT_SOURCES: dict[int, str] = {
    AbortSource.SERVICE_USER: "the DICOM UL service-user",
    AbortSource.RESERVED: "reserved",
    AbortSource.SERVICE_PROVIDER: "the DICOM UL service-provider",
}
_ABORT_REASONS: dict[int, str] = {
    AbortReason.NOT_SPECIFIED: "reason not specified",
    AbortReason.UNRECOGNIZED_PDU: "unrecognized PDU",
    AbortReason.UNEXPECTED_PDU: "unexpected PDU",
    AbortReason.RESERVED: "reserved",
    AbortReason.UNRECOGNIZED_PDU_PARAMETER: "unrecognized PDU parameter",
    AbortReason.UNEXPECTED_PDU_PARAMETER: "unexpected PDU parameter",
    AbortReason.INVALID_PDU_PARAMETER_VALUE: "invalid PDU parameter value",
}


def abort(source: int, reason: int, cause: str | None = None) -> str:
    """The source and reason of an A-ABORT (PS3.8 9.3.8, Table 9-26), and why it was sent."""
    who = _ABORT_SOURCES.get(source, "an undefined source")
    text = f"  source: {who} ({source})"
    if source == AbortSource.SERVICE_PROVIDER:
        # PS3.8 9.3.8: the reason is significant only when the provider aborts
        why = _ABORT_REASONS.get(reason, "an undefined reason")
        text += f"; reason: {why} ({reason})"
    if cause:
        text += f"\n  because: {cause}"
    return text


# -- DIMSE ------------------------------------------------------------------------------------

_PRIORITIES = {0: "medium", 1: "high", 2: "low"}

_STATUS_TABLES: dict[str, StatusTable] = {
    "C-STORE": STORAGE_SERVICE_CLASS_STATUS,
    "C-FIND": QR_FIND_SERVICE_CLASS_STATUS,
    "C-GET": QR_GET_SERVICE_CLASS_STATUS,
    "C-MOVE": QR_MOVE_SERVICE_CLASS_STATUS,
}


def describe_status(code: int, message_name: str = "") -> str:
    """``"0x0000 Success"``, ``"0xA700 Failure: Refused: out of resources"``... (PS3.7 C)."""
    table = _STATUS_TABLES.get(message_name[:7], GENERAL_STATUS)
    category = table.category(code)
    description = table.description(code)
    text = f"0x{code:04X} {category}"
    if description and description != category:
        text += f": {description}"
    return text


def _sop(message: dm.DimseMessage, kind: str) -> list[str]:
    parts = []
    for prefix in ("Affected", "Requested"):
        uid = getattr(message, f"{prefix}SOP{kind}UID", None)
        if uid:
            label = "SOP Class" if kind == "Class" else "SOP Instance"
            value = _uid_name(uid) if kind == "Class" else uid
            parts.append(f"{prefix} {label} {value}")
    return parts


def dimse_summary(
    message: dm.DimseMessage, has_dataset: bool | None = None, context_id: int | None = None
) -> str:
    """One line naming the message and its main fields (PS3.7 9.3, 10.3).

    ``"C-ECHO-RQ (context 1): Message ID 1, Affected SOP Class Verification SOP Class"``.
    """
    parts: list[str] = []
    if isinstance(message, dm.DimseRequest):
        parts.append(f"Message ID {message.MessageID}")
    elif isinstance(message, dm.DimseResponse | dm.CCancelRQ):
        parts.append(f"answering Message ID {message.MessageIDBeingRespondedTo}")
    if isinstance(message, dm.DimseResponse):
        parts.append(f"Status {describe_status(message.Status, message.message_name)}")
    parts.extend(_sop(message, "Class"))
    parts.extend(_sop(message, "Instance"))
    priority = getattr(message, "Priority", None)
    if priority is not None and priority != dm.PRIORITY_MEDIUM:
        parts.append(f"Priority {_PRIORITIES.get(priority, priority)}")
    for keyword, label in (
        ("MoveDestination", "Move Destination"),
        ("MoveOriginatorApplicationEntityTitle", "Move Originator"),
        ("EventTypeID", "Event Type ID"),
        ("ActionTypeID", "Action Type ID"),
        ("NumberOfRemainingSuboperations", "remaining"),
        ("NumberOfCompletedSuboperations", "completed"),
        ("NumberOfFailedSuboperations", "failed"),
        ("NumberOfWarningSuboperations", "warning"),
        ("ErrorComment", "Error Comment"),
    ):
        value = getattr(message, keyword, None)
        if value is not None:
            parts.append(f"{label} {value!r}" if isinstance(value, str) else f"{label} {value}")
    if has_dataset:
        parts.append("with a data set")
    where = f" (context {context_id})" if context_id is not None else ""
    return f"{message.message_name}{where}: " + ", ".join(parts)


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def command_set(message: dm.DimseMessage, has_dataset: bool | None = None) -> str:
    """The command elements of ``message``, one per line, indented (PS3.7 E.1).

    Command Group Length and Command Data Set Type are included when
    ``has_dataset`` is known. UIDs, the Command Field, the Status and the
    priority are explained after their value.
    """
    ds = dm.message_to_dataset(message, has_dataset)
    lines = []
    for elem in ds:
        value = elem.value
        note = ""
        keyword = elem.keyword or "?"
        if elem.VR == "UI":
            name = UID(str(value)).name
            note = f" ({name})" if name and name != str(value) else ""
        elif keyword == "CommandField":
            note = f" ({message.message_name})"
        elif keyword == "CommandDataSetType":
            note = " (no data set)" if value == dm.DATASET_ABSENT else " (a data set follows)"
        elif keyword == "Status":
            note = f" ({describe_status(int(value), message.message_name)[7:]})"
        elif keyword == "Priority":
            note = f" ({_PRIORITIES.get(int(value), 'undefined')})"
        if elem.VR == "AT":
            # one tag, or several (a pydicom MultiValue, a list or a tuple)
            tags = [value] if isinstance(value, int) else list(value)
            text = ", ".join(_tag(int(t)) for t in tags)
        elif keyword in ("CommandField", "Status", "CommandDataSetType"):
            text = f"0x{int(value):04X}"
        else:
            text = str(value)
        lines.append(f"  {_tag(int(elem.tag))} {elem.VR} {keyword:<38} {text}{note}")
    return "\n".join(lines)
