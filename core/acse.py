"""Association negotiation as pure functions (PS3.8 7.1, 9.3; PS3.7 Annex D.3).

Rule this module keeps: **values in, values out**. Nothing here reads a socket,
holds state or looks at a clock; every function takes the A-ASSOCIATE-RQ (or
its parts) and a configuration value, and returns PDUs and frozen results. The
Upper Layer connection sends what these functions build; the ``AE`` and
``Association`` classes hold the configuration and keep the results.

Two conventions run through the module:

* **Roles are always the requestor's roles**, exactly as in the SCP/SCU Role
  Selection sub-item (54H, PS3.7 D.3.3.4). In a :class:`ContextDefinition` used
  by a requestor, ``scu_role``/``scp_role`` are the roles it proposes for
  itself; used by an acceptor, they say whether the acceptor agrees to the
  requestor playing that role. ``None`` means "not specified": the default of
  PS3.7 D.3.3.4 applies to that role (requestor SCU yes, SCP no). The roles a
  *local* AE may then play are in :class:`NegotiatedContext` (``as_scu``,
  ``as_scp``).
* **0 means unlimited** for the Maximum Length (PS3.8 D.1) and for both counts
  of the Asynchronous Operations Window (PS3.7 D.3.3.3); :func:`min_nonzero`
  takes the smaller of two such limits.

Public surface, by PS3.7/PS3.8 section:

=================================  ====================================================
presentation contexts, roles       :func:`negotiate_as_acceptor`,
(PS3.8 7.1.1.13-14, PS3.7 D.3.3.4) :func:`negotiate_as_requestor`,
                                   :func:`acceptor_role_answer`, :func:`requestor_roles`
extended negotiation (D.3.3.5-6)   :func:`select_sop_class_extended`,
                                   :func:`interpret_sop_class_extended`
user identity (D.3.3.7, PS3.15)    ``user_identity_*`` builders,
                                   :func:`respond_to_user_identity`
asynchronous window (D.3.3.3)      :func:`negotiate_async_window_as_acceptor`,
                                   :func:`negotiate_async_window_as_requestor`
maximum length (PS3.8 D.1)         :func:`sending_limit`
A-ASSOCIATE-RJ (PS3.8 9.3.4)       :func:`check_association_request`,
                                   :func:`describe_rejection`, ``REJECT_*`` constants
whole association                  :func:`build_associate_rq`, :class:`AcceptorConfig`,
                                   :func:`accept_or_reject`,
                                   :func:`interpret_associate_response`,
                                   :class:`NegotiationResult`
=================================  ====================================================
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Literal

import attrs

from . import __version__
from .errors import AbortReason, RemoteProtocolError
from .pdu import (
    APPLICATION_CONTEXT_NAME,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    PresentationContextAC,
    PresentationContextResult,
    PresentationContextRQ,
    RejectReason,
    RejectResult,
    RejectSource,
)
from .user_info import (
    AsyncOperationsWindow,
    SCPSCURoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserIdentityType,
    UserInformation,
)

__all__ = [
    "DEFAULT_ASYNC_WINDOW",
    "DEFAULT_MAXIMUM_LENGTH",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "MAX_PRESENTATION_CONTEXTS",
    "REJECT_APPLICATION_CONTEXT",
    "REJECT_CALLED_AE_TITLE",
    "REJECT_CALLING_AE_TITLE",
    "REJECT_LOCAL_LIMIT_EXCEEDED",
    "REJECT_NO_ACCEPTABLE_CONTEXT",
    "REJECT_PROTOCOL_VERSION",
    "REJECT_TEMPORARY_CONGESTION",
    "REJECT_USER_IDENTITY",
    "AcceptorConfig",
    "ContextDefinition",
    "ContextRefusal",
    "ExtendedNegotiationPolicy",
    "IdentityVerifier",
    "NegotiatedContext",
    "NegotiationResult",
    "TransferSyntaxPreference",
    "UserIdentityOutcome",
    "accept_or_reject",
    "acceptor_role_answer",
    "build_associate_rq",
    "check_association_request",
    "describe_rejection",
    "interpret_associate_response",
    "interpret_sop_class_extended",
    "min_nonzero",
    "negotiate_as_acceptor",
    "negotiate_as_requestor",
    "negotiate_async_window_as_acceptor",
    "negotiate_async_window_as_requestor",
    "reject_local_limit_exceeded",
    "reject_temporary_congestion",
    "requestor_roles",
    "respond_to_user_identity",
    "select_sop_class_extended",
    "sending_limit",
    "user_identity_jwt",
    "user_identity_kerberos",
    "user_identity_saml",
    "user_identity_username",
    "user_identity_username_passcode",
]

# -- implementation identification (PS3.7 D.3.3.2) --------------------------------------------

#: dicomnet's Implementation Class UID. Generated once, under pydicom's registered
#: root ``1.2.826.0.1.3680043.8.498.``, with
#: ``pydicom.uid.generate_uid(prefix=PYDICOM_ROOT_UID, entropy_srcs=["dicomnet"])``
#: (a SHA-512 of the entropy source, so anyone can reproduce it) and hard-coded
#: here so that it never changes between releases. 64 characters, the UID maximum.
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.8.498.63755442005878294547641608145030782608"


def _version_name(version: str) -> str:
    """``DICOMNET_`` + ``version``; when that exceeds the 16 characters PS3.7 D.3.3.2
    allows, only the release segment (``0.1.0`` of ``0.1.0.dev0``) is kept, then cut."""
    name = "DICOMNET_" + version
    if len(name) > 16:
        release = []
        for part in version.split("."):
            if not part.isdigit():
                break
            release.append(part)
        name = "DICOMNET_" + ".".join(release)
    return name[:16]


#: dicomnet's Implementation Version Name (PS3.7 D.3.3.2), at most 16 characters.
IMPLEMENTATION_VERSION_NAME = _version_name(__version__)

#: the Maximum Length we announce unless told otherwise, and the one we assume for a
#: peer that announces none (the 51H item is mandatory, PS3.8 D.1; assuming a common,
#: modest value keeps such a peer working)
DEFAULT_MAXIMUM_LENGTH = 16382

#: the window when no Asynchronous Operations Window item is negotiated: one
#: outstanding operation each way (PS3.7 D.3.3.3)
DEFAULT_ASYNC_WINDOW = AsyncOperationsWindow(1, 1)

#: odd context IDs 1, 3, ..., 255 (PS3.8 9.3.2.2)
MAX_PRESENTATION_CONTEXTS = 128

TransferSyntaxPreference = Literal["requestor", "acceptor"]

# -- A-ASSOCIATE-RJ values (PS3.8 Table 9-21) ------------------------------------------------

#: protocol version bit 0 not set (PS3.8 9.3.2): permanent, ACSE provider, reason 2
REJECT_PROTOCOL_VERSION = AAssociateRJ(
    RejectResult.PERMANENT,
    RejectSource.SERVICE_PROVIDER_ACSE,
    RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
)
#: application context name not supported: permanent, service user, reason 2
REJECT_APPLICATION_CONTEXT = AAssociateRJ(
    RejectResult.PERMANENT,
    RejectSource.SERVICE_USER,
    RejectReason.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
)
#: called AE title not recognised: permanent, service user, reason 7
REJECT_CALLED_AE_TITLE = AAssociateRJ(
    RejectResult.PERMANENT, RejectSource.SERVICE_USER, RejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED
)
#: calling AE title not recognised: permanent, service user, reason 3
REJECT_CALLING_AE_TITLE = AAssociateRJ(
    RejectResult.PERMANENT, RejectSource.SERVICE_USER, RejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED
)
#: too many associations: transient, presentation provider, reason 2 (local-limit-exceeded)
REJECT_LOCAL_LIMIT_EXCEEDED = AAssociateRJ(
    RejectResult.TRANSIENT,
    RejectSource.SERVICE_PROVIDER_PRESENTATION,
    RejectReason.LOCAL_LIMIT_EXCEEDED,
)
#: overloaded: transient, presentation provider, reason 1 (temporary-congestion)
REJECT_TEMPORARY_CONGESTION = AAssociateRJ(
    RejectResult.TRANSIENT,
    RejectSource.SERVICE_PROVIDER_PRESENTATION,
    RejectReason.TEMPORARY_CONGESTION,
)
#: user identity not accepted. PS3.7 D.3.3.7 gives no values, and the PS3.15 Annex B
#: user identity profiles (e.g. B.6, Kerberos) say only that the association "shall be
#: rejected". Deciding who may connect is the
#: application's (the DICOM UL service-user's) business, not an ACSE protocol
#: function, so source 1; the same credentials will fail again, so permanent; and
#: "no-reason-given" tells an attacker nothing about which part was wrong.
REJECT_USER_IDENTITY = AAssociateRJ(
    RejectResult.PERMANENT, RejectSource.SERVICE_USER, RejectReason.NO_REASON_GIVEN
)
#: no presentation context could be accepted (only with
#: ``AcceptorConfig.reject_without_accepted_context``): permanent, service user, no reason
REJECT_NO_ACCEPTABLE_CONTEXT = AAssociateRJ(
    RejectResult.PERMANENT, RejectSource.SERVICE_USER, RejectReason.NO_REASON_GIVEN
)


def reject_local_limit_exceeded() -> AAssociateRJ:
    """A-ASSOCIATE-RJ for "too many associations": transient, source 3, reason 2 (PS3.8 9.3.4)."""
    return REJECT_LOCAL_LIMIT_EXCEEDED


def reject_temporary_congestion() -> AAssociateRJ:
    """A-ASSOCIATE-RJ for "overloaded, call later": transient, source 3, reason 1 (PS3.8 9.3.4)."""
    return REJECT_TEMPORARY_CONGESTION


_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
_SOURCES = {
    1: "the DICOM UL service-user",
    2: "the DICOM UL service-provider (ACSE related function)",
    3: "the DICOM UL service-provider (Presentation related function)",
}
_REASONS: dict[int, dict[int, str]] = {
    1: {
        1: "no-reason-given",
        2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized",
        4: "reserved",
        5: "reserved",
        6: "reserved",
        7: "called-AE-title-not-recognized",
        8: "reserved",
        9: "reserved",
        10: "reserved",
    },
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {
        0: "reserved",
        1: "temporary-congestion",
        2: "local-limit-exceeded",
        3: "reserved",
        4: "reserved",
        5: "reserved",
        6: "reserved",
        7: "reserved",
    },
}


def describe_rejection(rj: AAssociateRJ) -> str:
    """Human-readable text for an A-ASSOCIATE-RJ, in the terms of PS3.8 Table 9-21.

    Every value is named, with its number in brackets; values the table does not
    define are called "undefined", so the text is useful even for a broken peer::

        rejected-permanent (1) by the DICOM UL service-user (1):
        called-AE-title-not-recognized (7)
    """
    result = _RESULTS.get(rj.result, "undefined result")
    source = _SOURCES.get(rj.source, "an undefined source")
    reasons = _REASONS.get(rj.source, {})
    reason = reasons.get(rj.reason, "undefined reason")
    return f"{result} ({rj.result}) by {source} ({rj.source}): {reason} ({rj.reason})"


# -- values -------------------------------------------------------------------------------------


def _check_uid(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    if not value or len(value) > 64:
        raise ValueError(f"{attr.name}: {value!r} is not a UID of 1 to 64 characters")


def _check_transfer_syntaxes(
    _inst: object, attr: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    if not value:
        raise ValueError(f"{attr.name}: at least one transfer syntax is needed")
    for uid in value:
        if not uid or len(uid) > 64:
            raise ValueError(f"{attr.name}: {uid!r} is not a UID of 1 to 64 characters")


def _tuple_of_str(value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):  # a lone UID, not a sequence of one-character UIDs
        return (value,)
    return tuple(value)


@attrs.frozen
class ContextDefinition:
    """A presentation context an AE requests or supports (PS3.8 7.1.1.13, PS3.7 D.3.2).

    ``transfer_syntaxes`` is ordered by preference. ``scu_role``/``scp_role`` are
    the *requestor's* roles, as in the 54H sub-item (PS3.7 D.3.3.4):

    * requested by us: the roles we propose to play; no 54H item is sent when both
      are ``None``; otherwise ``None`` stands for the default (SCU yes, SCP no).
    * supported by us as acceptor: whether we agree to the requestor playing that
      role when it proposes it. Both ``None``: we do not negotiate roles for this
      SOP class (no 54H answer; the defaults hold). One ``None``: the default for
      that role (SCU yes, SCP no).
    """

    abstract_syntax: str = attrs.field(validator=_check_uid)
    transfer_syntaxes: tuple[str, ...] = attrs.field(
        converter=_tuple_of_str, validator=_check_transfer_syntaxes
    )
    scu_role: bool | None = None
    scp_role: bool | None = None

    @property
    def proposes_roles(self) -> bool:
        """True when a 54H item is to be sent or answered for this SOP class."""
        return self.scu_role is not None or self.scp_role is not None

    @property
    def resolved_roles(self) -> tuple[bool, bool]:
        """``(scu_role, scp_role)`` with ``None`` replaced by the PS3.7 D.3.3.4 default."""
        return (
            True if self.scu_role is None else self.scu_role,
            False if self.scp_role is None else self.scp_role,
        )


@attrs.frozen
class NegotiatedContext:
    """The outcome for one presentation context, from the local AE's point of view.

    ``transfer_syntax`` is ``None`` unless ``result`` is acceptance. ``as_scu`` and
    ``as_scp`` are the roles the *local* AE may play on this context (both false
    for a rejected context, PS3.7 D.3.3.4).
    """

    context_id: int = attrs.field(
        validator=attrs.validators.and_(attrs.validators.ge(1), attrs.validators.le(255))
    )
    abstract_syntax: str
    transfer_syntax: str | None
    result: PresentationContextResult = attrs.field(converter=PresentationContextResult)
    as_scu: bool = False
    as_scp: bool = False

    @property
    def accepted(self) -> bool:
        return self.result == PresentationContextResult.ACCEPTANCE


# -- presentation contexts and roles ----------------------------------------------------------

ContextRefusal = Callable[[PresentationContextRQ], bool] | Collection[int]
"""The application's refusal of contexts it could otherwise accept (result 1, user
rejection): a predicate on the requested context, or a collection of context IDs."""


def acceptor_role_answer(
    proposed: SCPSCURoleSelection | None, scu_role: bool | None, scp_role: bool | None
) -> tuple[SCPSCURoleSelection | None, bool, bool]:
    """Answer one SOP class's role proposal as acceptor (PS3.7 D.3.3.4).

    ``scu_role``/``scp_role`` are the acceptor's configuration (see
    :class:`ContextDefinition`). Returns ``(answer, requestor_scu, requestor_scp)``:
    the 54H item to send (``None`` when none is sent) and the requestor's roles.
    The acceptor's own roles are the mirror image (it is SCP where the requestor is
    SCU, SCU where the requestor is SCP).

    ==============  ================  ===============  ==========================
    proposed (RQ)   configured        answer (AC)      requestor's roles
    ==============  ================  ===============  ==========================
    none            anything          none             SCU (default)
    (u, p)          (None, None)      none             SCU (default)
    (u, p)          (a, b)            (u∧a', p∧b')     SCU if u∧a', SCP if p∧b'
    ==============  ================  ===============  ==========================

    where ``a'``/``b'`` are ``a``/``b`` with ``None`` read as the default (SCU
    yes, SCP no). The answer never carries 1 for a role that was not proposed
    ("shall not return the value (1) if the Association-requestor has not
    proposed the role"). When neither role survives, the context has no usable
    role: :func:`negotiate_as_acceptor` rejects it (user rejection).
    """
    if proposed is None or (scu_role is None and scp_role is None):
        return None, True, False
    accept_scu = True if scu_role is None else scu_role
    accept_scp = False if scp_role is None else scp_role
    scu = proposed.scu_role and accept_scu
    scp = proposed.scp_role and accept_scp
    return SCPSCURoleSelection(proposed.sop_class_uid, scu, scp), scu, scp


def requestor_roles(
    proposed: SCPSCURoleSelection | None, answer: SCPSCURoleSelection | None
) -> tuple[bool, bool]:
    """The requestor's ``(scu, scp)`` roles for one SOP class (PS3.7 D.3.3.4).

    No proposal, or no answer: the defaults (requestor SCU only). Otherwise a role
    is held when it was both proposed and accepted; the requestor ignores a 1 in
    the answer for a role it did not propose. Both false means the context cannot
    be used by either side.
    """
    if proposed is None or answer is None:
        return True, False
    return proposed.scu_role and answer.scu_role, proposed.scp_role and answer.scp_role


def _choose_transfer_syntax(
    proposed: Sequence[str], supported: Sequence[str], prefer: TransferSyntaxPreference
) -> str | None:
    if prefer == "requestor":
        wanted = set(supported)
        return next((ts for ts in proposed if ts in wanted), None)
    offered = set(proposed)
    return next((ts for ts in supported if ts in offered), None)


def _index_definitions(
    definitions: Sequence[ContextDefinition], what: str
) -> dict[str, ContextDefinition]:
    index: dict[str, ContextDefinition] = {}
    for definition in definitions:
        if definition.abstract_syntax in index:
            raise ValueError(
                f"{what}: abstract syntax {definition.abstract_syntax} is defined twice"
            )
        index[definition.abstract_syntax] = definition
    return index


def _first_by_uid(items: Sequence[SCPSCURoleSelection]) -> dict[str, SCPSCURoleSelection]:
    index: dict[str, SCPSCURoleSelection] = {}
    for item in items:
        index.setdefault(item.sop_class_uid, item)
    return index


def _is_refused(refuse: ContextRefusal | None, cx: PresentationContextRQ) -> bool:
    if refuse is None:
        return False
    if callable(refuse):
        return bool(refuse(cx))
    return cx.context_id in refuse


def negotiate_as_acceptor(
    requested: Sequence[PresentationContextRQ],
    supported: Sequence[ContextDefinition],
    role_selection: Sequence[SCPSCURoleSelection] = (),
    *,
    prefer: TransferSyntaxPreference = "requestor",
    refuse: ContextRefusal | None = None,
    common_extended: Sequence[SOPClassCommonExtendedNegotiation] = (),
    accept_specialized: bool = False,
) -> tuple[list[PresentationContextAC], list[NegotiatedContext], list[SCPSCURoleSelection]]:
    """Answer the requestor's presentation contexts (PS3.8 7.1.1.13-14, PS3.7 D.3.2, D.3.3.4).

    Returns ``(ac_items, negotiated, role_answers)``: the 21H items for the
    A-ASSOCIATE-AC, one per distinct requested context ID and in request order;
    the same outcomes as :class:`NegotiatedContext` (the acceptor's roles); and
    the 54H items for the AC.

    Each context gets the first result that applies, in this order:

    2. *no reason* (provider rejection) -- the context ID is even (PS3.8 9.3.2.2
       says odd) or appears more than once. A duplicated ID gets a single answer,
       a rejection, since the requestor could not tell two answers apart;
       rejecting the context rather than the association keeps a sloppy peer's
       other contexts working.
    3. *abstract syntax not supported* -- not in ``supported`` (and, with
       ``accept_specialized``, none of the related general SOP classes listed
       for it in a 57H item is; PS3.7 D.3.3.6, PS3.4 B.3).
    4. *transfer syntaxes not supported* -- no proposed transfer syntax is in
       the definition's list.
    1. *user rejection* -- ``refuse`` says so, or role selection leaves the
       requestor with no role (see :func:`acceptor_role_answer`).
    0. *acceptance*, with the transfer syntax chosen by ``prefer``:
       ``"requestor"`` (default) takes the first of the requestor's list that
       we support, honouring the requestor's order as PS3.8 suggests;
       ``"acceptor"`` the first of our list that the requestor proposed.

    A rejected 21H item still carries one transfer syntax sub-item (the first
    proposed), as PS3.8 Table 9-18 describes it; its value is not significant.

    Roles are negotiated per SOP class: the 54H item whose UID is the context's
    abstract syntax (which may be a meta SOP class UID; no expansion is done).
    Only the first 54H item per UID counts. A 54H answer is sent only for a SOP
    class that was proposed, that we negotiate roles for and that has at least
    one accepted context.

    Raises ``ValueError`` if ``supported`` defines an abstract syntax twice.
    """
    index = _index_definitions(supported, "supported contexts")
    proposals = _first_by_uid(role_selection)
    related: dict[str, tuple[str, ...]] = {}
    if accept_specialized:
        for item in common_extended:
            related.setdefault(item.sop_class_uid, item.related_general_sop_class_uids)

    counts: dict[int, int] = {}
    for cx in requested:
        counts[cx.context_id] = counts.get(cx.context_id, 0) + 1

    ac_items: list[PresentationContextAC] = []
    negotiated: list[NegotiatedContext] = []
    answers: dict[str, SCPSCURoleSelection] = {}
    seen: set[int] = set()
    for cx in requested:
        if cx.context_id in seen:
            continue
        seen.add(cx.context_id)
        result, ts, answer, req_scu, req_scp = _negotiate_one(
            cx,
            duplicated=counts[cx.context_id] > 1,
            index=index,
            related=related,
            proposals=proposals,
            prefer=prefer,
            refuse=refuse,
        )
        accepted = result == PresentationContextResult.ACCEPTANCE
        if answer is not None:  # only accepted contexts carry one
            answers.setdefault(cx.abstract_syntax, answer)
        ac_items.append(
            PresentationContextAC(
                cx.context_id, result, ts if accepted else cx.transfer_syntaxes[0]
            )
        )
        negotiated.append(
            NegotiatedContext(
                cx.context_id,
                cx.abstract_syntax,
                ts if accepted else None,
                result,
                as_scu=accepted and req_scp,
                as_scp=accepted and req_scu,
            )
        )
    return ac_items, negotiated, list(answers.values())


def _negotiate_one(
    cx: PresentationContextRQ,
    *,
    duplicated: bool,
    index: Mapping[str, ContextDefinition],
    related: Mapping[str, tuple[str, ...]],
    proposals: Mapping[str, SCPSCURoleSelection],
    prefer: TransferSyntaxPreference,
    refuse: ContextRefusal | None,
) -> tuple[PresentationContextResult, str | None, SCPSCURoleSelection | None, bool, bool]:
    rejected = (None, None, False, False)
    if cx.context_id % 2 == 0 or duplicated:
        return (PresentationContextResult.NO_REASON, *rejected)
    definition = index.get(cx.abstract_syntax)
    if definition is None:
        definition = next(
            (index[uid] for uid in related.get(cx.abstract_syntax, ()) if uid in index), None
        )
    if definition is None:
        return (PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, *rejected)
    ts = _choose_transfer_syntax(cx.transfer_syntaxes, definition.transfer_syntaxes, prefer)
    if ts is None:
        return (PresentationContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, *rejected)
    if _is_refused(refuse, cx):
        return (PresentationContextResult.USER_REJECTION, *rejected)
    answer, req_scu, req_scp = acceptor_role_answer(
        proposals.get(cx.abstract_syntax), definition.scu_role, definition.scp_role
    )
    if not (req_scu or req_scp):
        return (PresentationContextResult.USER_REJECTION, *rejected)
    return PresentationContextResult.ACCEPTANCE, ts, answer, req_scu, req_scp


def negotiate_as_requestor(
    requested: Sequence[PresentationContextRQ],
    accepted: Sequence[PresentationContextAC],
    proposed_roles: Sequence[SCPSCURoleSelection] = (),
    ac_roles: Sequence[SCPSCURoleSelection] = (),
) -> list[NegotiatedContext]:
    """Read the acceptor's answers to our presentation contexts (PS3.8 7.1.1.14, PS3.7 D.3.3.4).

    Returns one :class:`NegotiatedContext` per requested context, in request
    order, with the roles *we* (the requestor) may play.

    The Presentation Context Definition Result List corresponds one to one with
    the list we proposed (PS3.8 7.1.1.14), in any order. So:

    * a 21H item for a context ID we did not propose, a second 21H item for the
      same ID, an accepted transfer syntax we did not propose for that context,
      or a result outside PS3.8 Table 9-18 is the peer's protocol violation:
      :class:`~dicomnet.errors.RemoteProtocolError` (A-ABORT, invalid PDU
      parameter value). Such an AC cannot be trusted for any context.
    * a proposed context with no answer is treated as rejected with result 2
      (no reason, provider rejection): the acceptor gave it nothing, and
      tolerating the omission keeps the other contexts usable.

    Roles: :func:`requestor_roles` for the context's abstract syntax. A 54H
    answer for a SOP class we did not propose is ignored, and so is a second
    answer for the same UID.
    """
    by_id: dict[int, PresentationContextAC] = {}
    proposed_ts = {cx.context_id: cx.transfer_syntaxes for cx in requested}
    for item in accepted:
        if item.context_id not in proposed_ts:
            raise RemoteProtocolError(
                f"A-ASSOCIATE-AC answers presentation context {item.context_id}, "
                "which was not proposed",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        if item.context_id in by_id:
            raise RemoteProtocolError(
                f"A-ASSOCIATE-AC answers presentation context {item.context_id} twice",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        if item.result not in _VALID_RESULTS:
            raise RemoteProtocolError(
                f"A-ASSOCIATE-AC gives presentation context {item.context_id} the "
                f"undefined result {item.result}",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        if (
            item.result == PresentationContextResult.ACCEPTANCE
            and item.transfer_syntax not in proposed_ts[item.context_id]
        ):
            raise RemoteProtocolError(
                f"A-ASSOCIATE-AC accepts presentation context {item.context_id} with "
                f"transfer syntax {item.transfer_syntax}, which was not proposed for it",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        by_id[item.context_id] = item

    proposals = _first_by_uid(proposed_roles)
    answers = _first_by_uid(ac_roles)
    out: list[NegotiatedContext] = []
    done: set[int] = set()
    for cx in requested:
        if cx.context_id in done:
            continue
        done.add(cx.context_id)
        ac = by_id.get(cx.context_id)
        if ac is None:
            out.append(
                NegotiatedContext(
                    cx.context_id, cx.abstract_syntax, None, PresentationContextResult.NO_REASON
                )
            )
            continue
        result = PresentationContextResult(ac.result)
        if result != PresentationContextResult.ACCEPTANCE:
            out.append(NegotiatedContext(cx.context_id, cx.abstract_syntax, None, result))
            continue
        scu, scp = requestor_roles(
            proposals.get(cx.abstract_syntax), answers.get(cx.abstract_syntax)
        )
        out.append(
            NegotiatedContext(
                cx.context_id, cx.abstract_syntax, ac.transfer_syntax, result, scu, scp
            )
        )
    return out


_VALID_RESULTS = frozenset(int(r) for r in PresentationContextResult)

# -- extended negotiation (PS3.7 D.3.3.5, D.3.3.6) ------------------------------------------

ExtendedNegotiationPolicy = (
    Mapping[str, bytes] | Callable[[SOPClassExtendedNegotiation], bytes | None]
)
"""How an acceptor answers SOP Class Extended Negotiation: a mapping SOP class UID ->
the Service-class-application-information to return, or a callable given the
requested item that returns it (``None``: no answer)."""


def select_sop_class_extended(
    requested: Sequence[SOPClassExtendedNegotiation],
    accepted_sop_classes: Collection[str],
    policy: ExtendedNegotiationPolicy | None,
) -> tuple[SOPClassExtendedNegotiation, ...]:
    """The 56H items an acceptor returns (PS3.7 D.3.3.5).

    Only requested SOP classes are answered (the AC item is a reply, never an
    offer), only those with an accepted presentation context (there is nothing
    to agree on otherwise), and each once (the first request counts). With no
    policy nothing is answered: the requestor then assumes the service class's
    defaults, as for an acceptor that does not support the item.

    SOP Class Common Extended Negotiation (57H) has no answer at all (PS3.7
    D.3.3.6); an acceptor just reads the requestor's items.
    """
    if policy is None:
        return ()
    out: list[SOPClassExtendedNegotiation] = []
    seen: set[str] = set()
    for item in requested:
        uid = item.sop_class_uid
        if uid in seen or uid not in accepted_sop_classes:
            continue
        seen.add(uid)
        info = policy.get(uid) if isinstance(policy, Mapping) else policy(item)
        if info is not None:
            out.append(SOPClassExtendedNegotiation(uid, bytes(info)))
    return tuple(out)


def interpret_sop_class_extended(
    proposed: Sequence[SOPClassExtendedNegotiation],
    answered: Sequence[SOPClassExtendedNegotiation],
) -> dict[str, bytes]:
    """The acceptor's 56H answers, as SOP class UID -> application information (PS3.7 D.3.3.5).

    Answers for SOP classes we did not propose are ignored (the acceptor may only
    reply); the first answer per UID counts. A proposed SOP class missing from
    the result was not answered: its service class's defaults apply.
    """
    wanted = {item.sop_class_uid for item in proposed}
    out: dict[str, bytes] = {}
    for item in answered:
        if item.sop_class_uid in wanted:
            out.setdefault(item.sop_class_uid, item.service_class_application_information)
    return out


# -- user identity (PS3.7 D.3.3.7, PS3.15 Annex B) ------------------------------------------


def _identity(
    kind: UserIdentityType, primary: bytes, secondary: bytes, positive_response: bool
) -> UserIdentityRQ:
    if not primary:
        raise ValueError(f"user identity ({kind.name}): the primary field is empty")
    if 6 + len(primary) + len(secondary) > 0xFFFF:
        raise ValueError(f"user identity ({kind.name}) is too long for one sub-item")
    return UserIdentityRQ(int(kind), primary, secondary, positive_response)


def _utf8(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def user_identity_username(
    username: str, *, positive_response: bool = False
) -> UserIdentityRQ:
    """58H of type 1: a username, in UTF-8 (PS3.7 D.3.3.7.1)."""
    return _identity(UserIdentityType.USERNAME, _utf8(username), b"", positive_response)


def user_identity_username_passcode(
    username: str, passcode: str | bytes, *, positive_response: bool = False
) -> UserIdentityRQ:
    """58H of type 2: a username and a passcode, in UTF-8 (PS3.7 D.3.3.7.1).

    Both travel in clear: use TLS (PS3.15 Annex B).
    """
    return _identity(
        UserIdentityType.USERNAME_AND_PASSCODE, _utf8(username), _utf8(passcode),
        positive_response,
    )


def user_identity_kerberos(ticket: bytes, *, positive_response: bool = False) -> UserIdentityRQ:
    """58H of type 3: a Kerberos service ticket, RFC 1510 encoding (PS3.7 D.3.3.7.1)."""
    return _identity(UserIdentityType.KERBEROS, bytes(ticket), b"", positive_response)


def user_identity_saml(
    assertion: str | bytes, *, positive_response: bool = False
) -> UserIdentityRQ:
    """58H of type 4: a SAML assertion (PS3.7 D.3.3.7.1, PS3.15 Annex B)."""
    return _identity(UserIdentityType.SAML, _utf8(assertion), b"", positive_response)


def user_identity_jwt(token: str | bytes, *, positive_response: bool = False) -> UserIdentityRQ:
    """58H of type 5: a JSON Web Token (PS3.7 D.3.3.7.1, PS3.15 Annex B)."""
    return _identity(UserIdentityType.JWT, _utf8(token), b"", positive_response)


IdentityVerifier = Callable[[UserIdentityRQ], bytes | AAssociateRJ | None]
"""The acceptor's judgement of a user identity: the server response (``b""`` when
there is none) to accept it, ``None`` to reject the association with
:data:`REJECT_USER_IDENTITY`, or an :class:`AAssociateRJ` to reject it with other
values (for instance transient, when the identity provider is unreachable)."""


@attrs.frozen
class UserIdentityOutcome:
    """What an acceptor does about the requestor's user identity (PS3.7 D.3.3.7).

    ``rejection`` is set when the association must be rejected; otherwise
    ``response`` is the 59H item to send (or ``None``) and ``verified`` says
    whether a verifier accepted the identity.
    """

    identity: UserIdentityRQ | None
    verified: bool = False
    response: UserIdentityAC | None = None
    rejection: AAssociateRJ | None = None


def respond_to_user_identity(
    identity: UserIdentityRQ | None, verifier: IdentityVerifier | None
) -> UserIdentityOutcome:
    """Apply the acceptor's identity policy (PS3.7 D.3.3.7, D.3.3.7.2).

    * no 58H item: nothing to do, and no 59H item may be sent.
    * no verifier: we do not support user identity; we accept without a
      response, as the standard expects of such an acceptor.
    * the verifier accepts: a 59H item only if a positive response was
      requested. For types 1 and 2 its server response is empty whatever the
      verifier returned ("shall be zero length").
    * the verifier rejects: the association is rejected (PS3.15 Annex B, e.g.
      B.6: "the association shall be rejected"), with :data:`REJECT_USER_IDENTITY` unless
      the verifier returned its own A-ASSOCIATE-RJ.
    """
    if identity is None or verifier is None:
        return UserIdentityOutcome(identity)
    verdict = verifier(identity)
    if verdict is None:
        return UserIdentityOutcome(identity, rejection=REJECT_USER_IDENTITY)
    if isinstance(verdict, AAssociateRJ):
        return UserIdentityOutcome(identity, rejection=verdict)
    response = None
    if identity.positive_response_requested:
        empty = identity.user_identity_type in (
            UserIdentityType.USERNAME,
            UserIdentityType.USERNAME_AND_PASSCODE,
        )
        response = UserIdentityAC(b"" if empty else bytes(verdict))
    return UserIdentityOutcome(identity, True, response)


# -- asynchronous operations window (PS3.7 D.3.3.3) and maximum length (PS3.8 D.1) ------------


def min_nonzero(a: int, b: int) -> int:
    """The tighter of two limits where 0 means unlimited."""
    if a == 0:
        return b
    if b == 0:
        return a
    return min(a, b)


def negotiate_async_window_as_acceptor(
    proposed: AsyncOperationsWindow | None, supported: AsyncOperationsWindow | None
) -> tuple[AsyncOperationsWindow | None, AsyncOperationsWindow]:
    """Answer an Asynchronous Operations Window proposal (PS3.7 D.3.3.3).

    ``supported`` is our limit from our point of view (operations we invoke,
    operations we perform); ``None`` means we do not negotiate the window.
    Returns ``(answer, window)``: the 53H item for the AC (``None``: none is
    sent) and the negotiated window from our point of view. Fields of the AC
    item are the acceptor's, so they cross over: what we may invoke is bounded
    by what the requestor offers to *perform*, and vice versa. 0 is unlimited.
    Without a proposal (or without support) the default of 1 and 1 holds and
    no item is sent.
    """
    if proposed is None or supported is None:
        return None, DEFAULT_ASYNC_WINDOW
    answer = AsyncOperationsWindow(
        min_nonzero(supported.maximum_invoked, proposed.maximum_performed),
        min_nonzero(supported.maximum_performed, proposed.maximum_invoked),
    )
    return answer, answer


def negotiate_async_window_as_requestor(
    proposed: AsyncOperationsWindow | None, answer: AsyncOperationsWindow | None
) -> AsyncOperationsWindow:
    """Our window as requestor, from our point of view (PS3.7 D.3.3.3).

    The answer's "invoked" is what the acceptor invokes, so it bounds what we
    perform, and its "performed" bounds what we invoke; each is also kept within
    what we proposed. No proposal or no answer: 1 and 1.
    """
    if proposed is None or answer is None:
        return DEFAULT_ASYNC_WINDOW
    return AsyncOperationsWindow(
        min_nonzero(proposed.maximum_invoked, answer.maximum_performed),
        min_nonzero(proposed.maximum_performed, answer.maximum_invoked),
    )


def sending_limit(peer_maximum_length: int | None, local_limit: int = 0) -> int:
    """The largest P-DATA-TF variable field we may send (PS3.8 D.1); 0 = unlimited.

    ``peer_maximum_length`` is the peer's Maximum Length Received (51H);
    ``local_limit`` is our own cap on what we send (0: none). A peer that sent no
    51H item (it is mandatory) is assumed to take :data:`DEFAULT_MAXIMUM_LENGTH`.
    """
    peer = DEFAULT_MAXIMUM_LENGTH if peer_maximum_length is None else peer_maximum_length
    return min_nonzero(peer, local_limit)


# -- the A-ASSOCIATE-RQ checks (PS3.8 7.1.2, 9.3.4) -------------------------------------------


def check_association_request(
    rq: AAssociateRQ,
    *,
    ae_title: str,
    require_called_aet: bool = False,
    require_calling_aet: Sequence[str] = (),
    supported_application_context: str = APPLICATION_CONTEXT_NAME,
) -> AAssociateRJ | None:
    """The A-ASSOCIATE-RJ an acceptor owes this request, or ``None`` (PS3.8 Table 9-21).

    Checked in this order, the first failure deciding:

    1. protocol version: bit 0 must be set (PS3.8 9.3.2) -- else permanent,
       ACSE service-provider, protocol-version-not-supported;
    2. application context name -- else permanent, service-user,
       application-context-name-not-supported;
    3. with ``require_called_aet``, the called AE title must be ``ae_title`` --
       else permanent, service-user, called-AE-title-not-recognized;
    4. with a non-empty ``require_calling_aet``, the calling AE title must be one
       of them -- else permanent, service-user, calling-AE-title-not-recognized.

    AE titles compare exactly (they are case sensitive) after removing the
    leading and trailing spaces PS3.5 declares insignificant.
    """
    if not rq.protocol_version & 1:
        return REJECT_PROTOCOL_VERSION
    if rq.application_context_name != supported_application_context:
        return REJECT_APPLICATION_CONTEXT
    if require_called_aet and rq.called_ae_title.strip() != ae_title.strip():
        return REJECT_CALLED_AE_TITLE
    if require_calling_aet and rq.calling_ae_title.strip() not in {
        t.strip() for t in require_calling_aet
    }:
        return REJECT_CALLING_AE_TITLE
    return None


# -- whole associations -------------------------------------------------------------------------


def _contexts(value: Iterable[NegotiatedContext]) -> tuple[NegotiatedContext, ...]:
    return tuple(value)


def _extended(
    value: Iterable[SOPClassExtendedNegotiation],
) -> tuple[SOPClassExtendedNegotiation, ...]:
    return tuple(value)


def _common_extended(
    value: Iterable[SOPClassCommonExtendedNegotiation],
) -> tuple[SOPClassCommonExtendedNegotiation, ...]:
    return tuple(value)


@attrs.frozen
class NegotiationResult:
    """Everything an association needs to know after negotiation, for either side.

    Counts and limits are from the local AE's point of view; 0 is unlimited.

    * ``response``: the A-ASSOCIATE-AC or -RJ (sent by us as acceptor, received
      as requestor). When it is an RJ every other field keeps its default.
    * ``contexts``: one :class:`NegotiatedContext` per presentation context.
    * ``max_send_length``: the largest P-DATA-TF variable field we may send;
      ``max_receive_length``: the Maximum Length we announced.
    * ``async_window``: how many operations we may invoke and perform at once.
    * ``user_identity``: the requestor's identity (received or sent);
      ``identity_verified``: our verifier accepted it (acceptor) or the acceptor
      sent a positive response (requestor); ``user_identity_response``: the
      server response sent or received (``None``: no 59H item).
    * ``sop_class_extended``: the agreed SOP Class Extended Negotiation, i.e. the
      acceptor's 56H answers; ``sop_class_common_extended``: the requestor's 57H
      items.
    * ``peer_implementation_class_uid``/``peer_implementation_version_name``.
    """

    response: AAssociateAC | AAssociateRJ
    contexts: tuple[NegotiatedContext, ...] = attrs.field(default=(), converter=_contexts)
    max_send_length: int = DEFAULT_MAXIMUM_LENGTH
    max_receive_length: int = DEFAULT_MAXIMUM_LENGTH
    async_window: AsyncOperationsWindow = DEFAULT_ASYNC_WINDOW
    user_identity: UserIdentityRQ | None = None
    identity_verified: bool = False
    user_identity_response: bytes | None = None
    sop_class_extended: tuple[SOPClassExtendedNegotiation, ...] = attrs.field(
        default=(), converter=_extended
    )
    sop_class_common_extended: tuple[SOPClassCommonExtendedNegotiation, ...] = attrs.field(
        default=(), converter=_common_extended
    )
    peer_implementation_class_uid: str | None = None
    peer_implementation_version_name: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the association is established (an A-ASSOCIATE-AC)."""
        return isinstance(self.response, AAssociateAC)

    @property
    def rejection(self) -> AAssociateRJ | None:
        return self.response if isinstance(self.response, AAssociateRJ) else None

    @property
    def accepted_contexts(self) -> tuple[NegotiatedContext, ...]:
        return tuple(cx for cx in self.contexts if cx.accepted)

    def context(self, context_id: int) -> NegotiatedContext | None:
        """The context with this ID, accepted or not."""
        return next((cx for cx in self.contexts if cx.context_id == context_id), None)

    def find_context(
        self,
        abstract_syntax: str,
        *,
        transfer_syntax: str | None = None,
        as_scu: bool = False,
        as_scp: bool = False,
    ) -> NegotiatedContext | None:
        """The first accepted context for ``abstract_syntax`` (and ``transfer_syntax``
        if given) on which we may play the roles asked for."""
        for cx in self.contexts:
            if (
                cx.accepted
                and cx.abstract_syntax == abstract_syntax
                and (transfer_syntax is None or cx.transfer_syntax == transfer_syntax)
                and (cx.as_scu or not as_scu)
                and (cx.as_scp or not as_scp)
            ):
                return cx
        return None

    def extended_negotiation(self, sop_class_uid: str) -> bytes | None:
        """The agreed Service-class-application-information for a SOP class, if any."""
        return next(
            (
                item.service_class_application_information
                for item in self.sop_class_extended
                if item.sop_class_uid == sop_class_uid
            ),
            None,
        )


def build_associate_rq(
    *,
    calling_ae_title: str,
    called_ae_title: str,
    contexts: Sequence[ContextDefinition],
    maximum_length: int = DEFAULT_MAXIMUM_LENGTH,
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID,
    implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME,
    async_window: AsyncOperationsWindow | None = None,
    sop_class_extended: Sequence[SOPClassExtendedNegotiation] = (),
    sop_class_common_extended: Sequence[SOPClassCommonExtendedNegotiation] = (),
    user_identity: UserIdentityRQ | None = None,
    application_context_name: str = APPLICATION_CONTEXT_NAME,
) -> AAssociateRQ:
    """The A-ASSOCIATE-RQ for our requested contexts (PS3.8 9.3.2, PS3.7 D.3.3).

    Contexts get the odd IDs 1, 3, 5... in order; more than 128 is a
    ``ValueError`` (PS3.8 9.3.2.2 leaves no more odd IDs). The same abstract
    syntax may be requested several times (with different transfer syntaxes, as
    is usual), but its roles are per SOP class: one 54H item per abstract syntax
    whose definitions give roles, and a ``ValueError`` if they disagree or
    propose neither role. The user information sub-items are in the usual order
    (51H, 52H, 53H, 54H..., 55H, 56H..., 57H..., 58H). ``async_window`` is from
    our point of view (invoked, performed); ``None`` sends no 53H item.
    """
    if len(contexts) > MAX_PRESENTATION_CONTEXTS:
        raise ValueError(
            f"{len(contexts)} presentation contexts requested; at most "
            f"{MAX_PRESENTATION_CONTEXTS} fit the odd context IDs 1-255"
        )
    items = [
        PresentationContextRQ(2 * i + 1, cx.abstract_syntax, cx.transfer_syntaxes)
        for i, cx in enumerate(contexts)
    ]
    roles: dict[str, tuple[bool, bool]] = {}
    for cx in contexts:
        if not cx.proposes_roles:
            continue
        wanted = cx.resolved_roles
        if wanted == (False, False):
            raise ValueError(f"{cx.abstract_syntax}: a requestor must propose SCU or SCP role")
        if roles.setdefault(cx.abstract_syntax, wanted) != wanted:
            raise ValueError(
                f"{cx.abstract_syntax}: contexts for the same SOP class propose different roles"
            )
    user_information = UserInformation.build(
        maximum_length=maximum_length,
        implementation_class_uid=implementation_class_uid,
        implementation_version_name=implementation_version_name,
        async_ops_window=async_window,
        role_selection=tuple(
            SCPSCURoleSelection(uid, scu, scp) for uid, (scu, scp) in roles.items()
        ),
        sop_class_extended=tuple(sop_class_extended),
        sop_class_common_extended=tuple(sop_class_common_extended),
        user_identity=user_identity,
    )
    return AAssociateRQ(
        called_ae_title,
        calling_ae_title,
        items,
        user_information,
        application_context_name,
    )


def interpret_associate_response(
    rq: AAssociateRQ, response: AAssociateAC | AAssociateRJ, *, local_send_limit: int = 0
) -> NegotiationResult:
    """The requestor's view of the negotiation, from what it sent and what came back.

    ``local_send_limit`` caps the P-DATA-TF size we send below the peer's
    Maximum Length (0: no cap). Raises
    :class:`~dicomnet.errors.RemoteProtocolError` for an AC that breaks the
    presentation context rules (see :func:`negotiate_as_requestor`).
    """
    if isinstance(response, AAssociateRJ):
        return NegotiationResult(response)
    sent = rq.user_information
    got = response.user_information
    contexts = negotiate_as_requestor(
        rq.presentation_contexts,
        response.presentation_contexts,
        sent.role_selection,
        got.role_selection,
    )
    identity = sent.user_identity_rq
    answer = got.user_identity_ac if identity is not None else None
    agreed = interpret_sop_class_extended(sent.sop_class_extended, got.sop_class_extended)
    return NegotiationResult(
        response,
        contexts,
        max_send_length=sending_limit(got.maximum_length, local_send_limit),
        max_receive_length=sent.maximum_length or 0,
        async_window=negotiate_async_window_as_requestor(
            sent.async_ops_window, got.async_ops_window
        ),
        user_identity=identity,
        identity_verified=answer is not None,
        user_identity_response=None if answer is None else answer.server_response,
        sop_class_extended=tuple(
            SOPClassExtendedNegotiation(uid, info) for uid, info in agreed.items()
        ),
        sop_class_common_extended=sent.sop_class_common_extended,
        peer_implementation_class_uid=got.implementation_class_uid,
        peer_implementation_version_name=got.implementation_version_name,
    )


def _tuple_of_definitions(value: Sequence[ContextDefinition]) -> tuple[ContextDefinition, ...]:
    out = tuple(value)
    _index_definitions(out, "AcceptorConfig.supported_contexts")
    return out


@attrs.frozen
class AcceptorConfig:
    """An acceptor's negotiation policy, built once per AE and used for every request.

    * ``ae_title``, ``require_called_aet``, ``require_calling_aet``,
      ``supported_application_context``: see :func:`check_association_request`.
    * ``supported_contexts``: one :class:`ContextDefinition` per abstract syntax
      (``ValueError`` on a duplicate); ``transfer_syntax_preference``: see
      :func:`negotiate_as_acceptor`; ``refuse_context``: the application's
      user-rejection hook; ``accept_specialized``: accept a specialized SOP
      class through a supported related general SOP class named in a 57H item.
    * ``maximum_length``: the Maximum Length we announce (what we can receive,
      0 = unlimited); ``maximum_send_length``: our own cap on what we send.
    * ``implementation_class_uid``, ``implementation_version_name``: sent in the AC.
    * ``async_window``: what we support, from our point of view (``None``: we do
      not negotiate it; operations are synchronous).
    * ``sop_class_extended``: see :func:`select_sop_class_extended`;
      ``identity_verifier``: see :func:`respond_to_user_identity`.
    * ``reject_without_accepted_context``: reject the association (permanent,
      service-user, no-reason-given) rather than accept one with no usable
      context. Off by default: PS3.8 lets an association stand with every
      context rejected, and some peers probe that way.
    """

    ae_title: str
    supported_contexts: tuple[ContextDefinition, ...] = attrs.field(
        default=(), converter=_tuple_of_definitions
    )
    maximum_length: int = attrs.field(
        default=DEFAULT_MAXIMUM_LENGTH,
        validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(0xFFFFFFFF)),
    )
    maximum_send_length: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID
    implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME
    require_called_aet: bool = False
    require_calling_aet: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    supported_application_context: str = APPLICATION_CONTEXT_NAME
    transfer_syntax_preference: TransferSyntaxPreference = "requestor"
    refuse_context: ContextRefusal | None = None
    accept_specialized: bool = False
    async_window: AsyncOperationsWindow | None = None
    sop_class_extended: ExtendedNegotiationPolicy | None = None
    identity_verifier: IdentityVerifier | None = None
    reject_without_accepted_context: bool = False


def accept_or_reject(rq: AAssociateRQ, config: AcceptorConfig) -> NegotiationResult:
    """Decide an A-ASSOCIATE-RQ as acceptor: an A-ASSOCIATE-AC or -RJ and its outcome.

    In order: :func:`check_association_request`; the user identity
    (:func:`respond_to_user_identity`); the presentation contexts and roles
    (:func:`negotiate_as_acceptor`), then, if ``reject_without_accepted_context``
    and none was accepted, :data:`REJECT_NO_ACCEPTABLE_CONTEXT`; the SOP class
    extended negotiation (:func:`select_sop_class_extended`) and the window
    (:func:`negotiate_async_window_as_acceptor`). The AC echoes the request's AE
    titles (PS3.8 9.3.3) and carries the user information sub-items in the
    usual order. Rejections for the number of associations
    (:func:`reject_local_limit_exceeded`) are the AE's to make before calling.
    """
    rejection = check_association_request(
        rq,
        ae_title=config.ae_title,
        require_called_aet=config.require_called_aet,
        require_calling_aet=config.require_calling_aet,
        supported_application_context=config.supported_application_context,
    )
    if rejection is not None:
        return NegotiationResult(rejection)
    info = rq.user_information
    identity = respond_to_user_identity(info.user_identity_rq, config.identity_verifier)
    if identity.rejection is not None:
        return NegotiationResult(identity.rejection)

    ac_items, contexts, roles = negotiate_as_acceptor(
        rq.presentation_contexts,
        config.supported_contexts,
        info.role_selection,
        prefer=config.transfer_syntax_preference,
        refuse=config.refuse_context,
        common_extended=info.sop_class_common_extended,
        accept_specialized=config.accept_specialized,
    )
    accepted = {cx.abstract_syntax for cx in contexts if cx.accepted}
    if config.reject_without_accepted_context and not accepted:
        return NegotiationResult(REJECT_NO_ACCEPTABLE_CONTEXT)
    extended = select_sop_class_extended(
        info.sop_class_extended, accepted, config.sop_class_extended
    )
    window_answer, window = negotiate_async_window_as_acceptor(
        info.async_ops_window, config.async_window
    )
    ac = AAssociateAC(
        rq.called_ae_title,
        rq.calling_ae_title,
        ac_items,
        UserInformation.build(
            maximum_length=config.maximum_length,
            implementation_class_uid=config.implementation_class_uid,
            implementation_version_name=config.implementation_version_name,
            async_ops_window=window_answer,
            role_selection=tuple(roles),
            sop_class_extended=extended,
            user_identity=identity.response,
        ),
        rq.application_context_name,
    )
    return NegotiationResult(
        ac,
        contexts,
        max_send_length=sending_limit(info.maximum_length, config.maximum_send_length),
        max_receive_length=config.maximum_length,
        async_window=window,
        user_identity=identity.identity,
        identity_verified=identity.verified,
        user_identity_response=(
            None if identity.response is None else identity.response.server_response
        ),
        sop_class_extended=extended,
        sop_class_common_extended=info.sop_class_common_extended,
        peer_implementation_class_uid=info.implementation_class_uid,
        peer_implementation_version_name=info.implementation_version_name,
    )
