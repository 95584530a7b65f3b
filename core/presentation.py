"""Presentation contexts as pynetdicom programs build them (PS3.8 7.1.1.13, 9.3.2.2; PS3.7 D.3).

The public module ``dicomnet.presentation``: :class:`PresentationContext`,
:func:`build_context`, :func:`build_role`, the transfer syntax lists and the
prebuilt ``*PresentationContexts`` lists, with pynetdicom 3.0.4's names and
behaviour.

Why :class:`PresentationContext` is a mutable class and not a frozen attrs
value like the kernel's: pynetdicom programs build contexts by assignment
(``cx = PresentationContext(); cx.abstract_syntax = ...;
cx.add_transfer_syntax(...)``, ``cx.scp_role = True``), and that must keep
working unchanged. It is an *application-side* description only: the
negotiation code takes it apart into the kernel's frozen
:class:`~dicomnet.acse.ContextDefinition` (:meth:`PresentationContext.to_definition`)
and builds one back from a :class:`~dicomnet.acse.NegotiatedContext`
(:meth:`PresentationContext.from_negotiated`); nothing in the kernel holds one.

The prebuilt lists (``StoragePresentationContexts``...) are built on first
access (module ``__getattr__``), so importing dicomnet loads no plugin. Each is
taken from the service class that contributes it in the default plugin
registry; a list no loaded plugin contributes yet is built from the SOP class
rules of :mod:`dicomnet._sop_groups` -- the same rules the built-in plugins use
-- so that every list has its final content from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from pydicom.uid import UID

from . import _sop_groups
from .acse import ContextDefinition, NegotiatedContext
from .pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from .plugin_manager import default_registry

__all__ = [
    "ALL_TRANSFER_SYNTAXES",
    "CONTEXT_LIST_NAMES",
    "DEFAULT_TRANSFER_SYNTAXES",
    "PresentationContext",
    "PresentationContextTuple",
    "build_context",
    "build_role",
]
__all__ += sorted(_sop_groups.CONTEXT_LISTS)  # noqa: PLE0605 -- the lazily built lists

LOGGER = logging.getLogger("dicomnet.presentation")

#: Implicit VR Little Endian, Explicit VR Little Endian, Deflated Explicit VR Little
#: Endian, Explicit VR Big Endian: what :func:`build_context` proposes by default.
DEFAULT_TRANSFER_SYNTAXES: list[str] = list(_sop_groups.DEFAULT_TRANSFER_SYNTAXES)
#: every current transfer syntax of PS3.6 (and Explicit VR Big Endian), defaults first
ALL_TRANSFER_SYNTAXES: list[str] = list(_sop_groups.ALL_TRANSFER_SYNTAXES)

#: names of the prebuilt ``*PresentationContexts`` lists
CONTEXT_LIST_NAMES: tuple[str, ...] = tuple(sorted(_sop_groups.CONTEXT_LISTS))

#: Result/Reason of a presentation context in an A-ASSOCIATE-AC (PS3.8 Table 9-18)
_RESULTS = {
    None: "Pending",
    0x00: "Accepted",
    0x01: "User Rejected",
    0x02: "Provider Rejected",
    0x03: "Abstract Syntax Not Supported",
    0x04: "Transfer Syntax(es) Not Supported",
}


class PresentationContextTuple(NamedTuple):
    """An accepted context as event handlers see it (``event.context``)."""

    context_id: int
    abstract_syntax: UID
    transfer_syntax: UID


def _to_uid(value: str | bytes | None, name: str, *, allow_none: bool = True) -> UID | None:
    """``value`` as a UID: bytes are decoded, more than 64 characters is an error (PS3.5 9.1)."""
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"'{name}' must be a UID, not None")
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


class PresentationContext:
    """A presentation context: its ID, abstract syntax and transfer syntaxes (PS3.8 9.3.2.2).

    As proposed (A-ASSOCIATE-RQ), ``transfer_syntax`` lists one or more
    transfer syntaxes and ``result`` is ``None``. As answered (A-ASSOCIATE-AC),
    ``result`` is one of 0 (acceptance), 1 (user rejection), 2 (no reason), 3
    (abstract syntax not supported), 4 (transfer syntaxes not supported), and
    an accepted context has exactly one transfer syntax (PS3.8 9.3.3.2).

    ``scu_role`` and ``scp_role`` are for SCP/SCU Role Selection (PS3.7
    D.3.3.4): as a requestor, the roles proposed for ourselves; as an acceptor,
    whether we agree to the requestor's proposal (``None``: no answer, the
    default roles apply). ``as_scu`` and ``as_scp`` are the outcome, the roles
    the local AE may play, known once negotiation is complete.
    """

    def __init__(self) -> None:
        self._context_id: int | None = None
        self._abstract_syntax: UID | None = None
        self._transfer_syntax: list[UID] = []
        self.result: int | None = None
        self._scu_role: bool | None = None
        self._scp_role: bool | None = None
        self._as_scu: bool | None = None
        self._as_scp: bool | None = None

    # -- context ID -------------------------------------------------------------------
    @property
    def context_id(self) -> int | None:
        """The Presentation Context ID, an odd integer 1 to 255 (PS3.8 9.3.2.2)."""
        return self._context_id

    @context_id.setter
    def context_id(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int)
            or not 1 <= value <= 255 or value % 2 == 0
        ):
            raise ValueError("'context_id' must be an odd integer between 1 and 255, inclusive")
        self._context_id = value

    # -- syntaxes ---------------------------------------------------------------------
    @property
    def abstract_syntax(self) -> UID | None:
        """The abstract syntax (the SOP class UID), as a :class:`~pydicom.uid.UID`."""
        return self._abstract_syntax

    @abstract_syntax.setter
    def abstract_syntax(self, value: str | bytes | None) -> None:
        self._abstract_syntax = _to_uid(value, "abstract_syntax")

    @property
    def transfer_syntax(self) -> list[UID]:
        """The transfer syntaxes, in order of preference; set with a list."""
        return self._transfer_syntax

    @transfer_syntax.setter
    def transfer_syntax(self, syntaxes: list[str | bytes]) -> None:
        if not isinstance(syntaxes, list):
            raise TypeError("'transfer_syntax' must be a list")
        self._transfer_syntax = []
        for syntax in syntaxes:
            self.add_transfer_syntax(syntax)

    def add_transfer_syntax(self, syntax: str | bytes | None) -> None:
        """Append a transfer syntax unless it is already there (``None`` and ``''`` are ignored)."""
        value: object = syntax
        if value is None or value in ("", b""):
            return
        if not isinstance(value, str | bytes):
            LOGGER.error("Attempted to add an invalid transfer syntax")
            return
        uid = _to_uid(value, "transfer_syntax")
        assert uid is not None
        if uid in self._transfer_syntax:
            return
        if not uid.is_private and not uid.is_transfer_syntax:
            LOGGER.warning(
                "A UID has been added to 'transfer_syntax' that is not a transfer syntax: '%s'",
                uid,
            )
        self._transfer_syntax.append(uid)

    # -- roles ------------------------------------------------------------------------
    @property
    def scu_role(self) -> bool | None:
        """SCU role proposed (requestor) or agreed to (acceptor); ``None``: not negotiated."""
        return self._scu_role

    @scu_role.setter
    def scu_role(self, value: bool | None) -> None:
        if not isinstance(value, bool | type(None)):
            raise TypeError("'scu_role' must be a bool or None")
        self._scu_role = value

    @property
    def scp_role(self) -> bool | None:
        """SCP role proposed (requestor) or agreed to (acceptor); ``None``: not negotiated."""
        return self._scp_role

    @scp_role.setter
    def scp_role(self, value: bool | None) -> None:
        if not isinstance(value, bool | type(None)):
            raise TypeError("'scp_role' must be a bool or None")
        self._scp_role = value

    @property
    def as_scu(self) -> bool | None:
        """Whether the local AE may act as SCU on this context (after negotiation)."""
        return self._as_scu

    @property
    def as_scp(self) -> bool | None:
        """Whether the local AE may act as SCP on this context (after negotiation)."""
        return self._as_scp

    # -- views ------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """The result in words: ``'Accepted'``, ``'Pending'`` (no result yet)..."""
        return _RESULTS.get(self.result, "Unknown")

    @property
    def as_tuple(self) -> PresentationContextTuple:
        """``(context_id, abstract_syntax, transfer_syntax)`` of an accepted context."""
        if self._context_id is None or self._abstract_syntax is None or not self._transfer_syntax:
            raise ValueError("as_tuple needs a context ID, an abstract and a transfer syntax")
        return PresentationContextTuple(
            self._context_id, self._abstract_syntax, self._transfer_syntax[0]
        )

    def _key(self) -> tuple[Any, ...]:
        return (
            self._context_id,
            self._abstract_syntax,
            tuple(self._transfer_syntax),
            self.result,
            self._scu_role,
            self._scp_role,
            self._as_scu,
            self._as_scp,
        )

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if isinstance(other, PresentationContext):
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(
            (
                self._abstract_syntax,
                self._context_id,
                tuple(self._transfer_syntax),
                self._as_scp,
                self._as_scu,
            )
        )

    def __repr__(self) -> str:
        return self._abstract_syntax.name if self._abstract_syntax is not None else "(no syntax)"

    def __str__(self) -> str:
        lines = []
        if self._context_id is not None:
            lines.append(f"ID: {self._context_id}")
        if self._abstract_syntax is not None:
            lines.append(f"Abstract Syntax: {self._abstract_syntax.name}")
        lines.append("Transfer Syntax(es):")
        if self._transfer_syntax:
            lines.extend(f"    ={syntax.name}" for syntax in self._transfer_syntax)
        else:
            lines.append("    (none)")
        if self.result is not None:
            lines.append(f"Result: {self.status}")
        if self._as_scu is not None and self._as_scp is not None:
            roles = {
                (True, False): "SCU only",
                (True, True): "SCU and SCP",
                (False, True): "SCP only",
                (False, False): "(none)",
            }
            lines.append(f"Role: {roles[(self._as_scu, self._as_scp)]}")
        return "\n".join(lines)

    # -- bridges to the negotiation code ------------------------------------------------
    def to_definition(self) -> ContextDefinition:
        """The kernel's frozen description of this context, for negotiation."""
        if self._abstract_syntax is None:
            raise ValueError("the presentation context has no abstract syntax")
        return ContextDefinition(
            abstract_syntax=str(self._abstract_syntax),
            transfer_syntaxes=tuple(str(s) for s in self._transfer_syntax),
            scu_role=self._scu_role,
            scp_role=self._scp_role,
        )

    @classmethod
    def from_negotiated(cls, negotiated: NegotiatedContext) -> PresentationContext:
        """The pynetdicom view of a negotiated context (``assoc.accepted_contexts``...)."""
        cx = cls()
        cx.context_id = negotiated.context_id
        cx.abstract_syntax = negotiated.abstract_syntax
        if negotiated.transfer_syntax:
            cx.add_transfer_syntax(negotiated.transfer_syntax)
        cx.result = int(negotiated.result)
        cx._as_scu = negotiated.as_scu
        cx._as_scp = negotiated.as_scp
        return cx


def build_context(
    abstract_syntax: str | UID,
    transfer_syntax: str | UID | Sequence[str | UID] | None = None,
) -> PresentationContext:
    """A :class:`PresentationContext` for ``abstract_syntax``.

    ``transfer_syntax`` is one UID or a list of them; by default
    :data:`DEFAULT_TRANSFER_SYNTAXES`.
    """
    if transfer_syntax is None:
        syntaxes: list[str | bytes] = list(DEFAULT_TRANSFER_SYNTAXES)
    elif isinstance(transfer_syntax, str):
        syntaxes = [transfer_syntax]
    else:
        syntaxes = list(transfer_syntax)
    cx = PresentationContext()
    cx.abstract_syntax = UID(abstract_syntax)
    cx.transfer_syntax = syntaxes
    return cx


def build_role(
    uid: str | UID, scu_role: bool = False, scp_role: bool = False
) -> SCP_SCU_RoleSelectionNegotiation:
    """An SCP/SCU Role Selection item proposing roles for the SOP class ``uid`` (PS3.7 D.3.3.4)."""
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = UID(uid)
    role.scu_role = scu_role
    role.scp_role = scp_role
    return role


# -- the prebuilt lists ------------------------------------------------------------------------


def _list_uids(name: str) -> tuple[str, ...]:
    try:
        return default_registry().context_list(name)
    except KeyError:
        return _sop_groups.CONTEXT_LISTS[name][1]


def _build_list(uids: Iterable[str]) -> list[PresentationContext]:
    return [build_context(uid) for uid in uids]


def __getattr__(name: str) -> list[PresentationContext]:
    if name in _sop_groups.CONTEXT_LISTS:
        contexts = _build_list(_list_uids(name))
        globals()[name] = contexts
        return contexts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
