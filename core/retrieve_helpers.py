"""Presentation contexts for retrieves, worked out from the instances involved (PS3.4 C.4.2, C.4.3).

A C-GET brings the matching instances back as C-STORE sub-operations **on the
same association**, with the C-GET SCU acting as Storage SCP (PS3.4 C.4.3.3).
So the SCU must propose, when it asks for the association, a presentation
context for the SOP class of every instance it will receive, and the SCP role
for each through SCP/SCU Role Selection (PS3.7 D.3.3.4); an instance whose SOP
class has no such context is a failed sub-operation. A fixed list (the 120 of
``StoragePresentationContexts``) leaves little room and still misses classes.
:func:`retrieve_contexts` proposes exactly the classes a prior C-FIND found:

* STUDY level: *SOP Classes in Study* (0008,0062) of each matching study;
* IMAGE level: *SOP Class UID* (0008,0016) of each matching instance;

plus the query model's own context, within the 128 contexts an association
may propose (PS3.8 9.3.2.2)::

    found = [ident for status, ident in assoc.send_c_find(query, StudyRootFind) if ident]
    contexts, roles = retrieve_contexts(found, StudyRootQueryRetrieveInformationModelGet)
    assoc = ae.associate(host, port, contexts=contexts, ext_neg=roles, evt_handlers=...)

A C-MOVE SCP has the mirror problem for its own association to the move
destination: :func:`store_contexts` proposes one context per SOP class and
transfer syntax of the instances it is about to send.

Rule this module keeps: pure functions over UIDs and data sets; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from . import _sop_groups
from .acse import MAX_PRESENTATION_CONTEXTS
from .pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from .presentation import DEFAULT_TRANSFER_SYNTAXES, PresentationContext, build_context, build_role

__all__ = [
    "UNCOMPRESSED_TRANSFER_SYNTAXES",
    "RetrieveContexts",
    "retrieve_contexts",
    "sop_classes_of",
    "store_context_key",
    "store_context_keys",
    "store_contexts",
]

#: Study Root C-GET (PS3.4 C.6.2.1.3), the default query model of :func:`retrieve_contexts`
STUDY_ROOT_GET = _sop_groups.SOP_CLASSES["StudyRootQueryRetrieveInformationModelGet"]

#: transfer syntaxes a data set can be re-encoded into without touching its pixel data
#: (PS3.5 A.1-A.5): Implicit VR LE, Explicit VR LE, Deflated Explicit VR LE, Explicit VR BE
UNCOMPRESSED_TRANSFER_SYNTAXES: frozenset[str] = frozenset(_sop_groups.DEFAULT_TRANSFER_SYNTAXES)

#: what :func:`store_contexts` proposes for an uncompressed (or unknown) encoding:
#: Explicit VR Little Endian first (keeps the VRs), then the default Implicit VR LE
_NATIVE_PROPOSAL: tuple[str, ...] = (str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian))

_SOP_CLASSES_IN_STUDY = 0x00080062
_SOP_CLASS_UID = 0x00080016
_REFERENCED_SOP_CLASS_UID = 0x00081150


class RetrieveContexts(NamedTuple):
    """What :func:`retrieve_contexts` returns; unpacks as ``contexts, ext_neg``.

    Pass them to ``ae.associate(..., contexts=contexts, ext_neg=ext_neg)``.
    """

    contexts: list[PresentationContext]
    ext_neg: list[SCP_SCU_RoleSelectionNegotiation]


def _values(ds: Dataset, tag: int) -> list[str]:
    element = ds.get(tag)
    if element is None or element.value is None or element.value == "":
        return []
    value = element.value
    if isinstance(value, str | bytes):
        value = [value]
    out = []
    for item in value:
        text = item.decode("ascii", "replace") if isinstance(item, bytes) else str(item)
        text = text.strip("\x00 ")
        if text:
            out.append(text)
    return out


def sop_classes_of(
    found: Iterable[Dataset | tuple[Dataset, Dataset | None] | str | None],
) -> list[str]:
    """The SOP Class UIDs named by C-FIND results, in order of first appearance.

    ``found`` holds C-FIND response identifiers (``None`` is skipped), the
    ``(status, identifier)`` pairs ``send_c_find`` yields, or UIDs. From each
    identifier it takes *SOP Classes in Study* (0008,0062), *SOP Class UID*
    (0008,0016) and *Referenced SOP Class UID* (0008,1150), whichever are
    present (PS3.4 C.6.1.1, C.6.2.1).
    """
    seen: dict[str, None] = {}
    for entry in found:
        item = entry[1] if isinstance(entry, tuple) else entry
        if item is None:
            continue
        if isinstance(item, str):
            uids = [item.strip("\x00 ")] if item.strip("\x00 ") else []
        elif isinstance(item, Dataset):
            uids = [
                *_values(item, _SOP_CLASSES_IN_STUDY),
                *_values(item, _SOP_CLASS_UID),
                *_values(item, _REFERENCED_SOP_CLASS_UID),
            ]
        else:
            raise TypeError(
                f"expected C-FIND identifiers, (status, identifier) pairs or UIDs, not {item!r}"
            )
        for uid in uids:
            seen.setdefault(str(uid), None)
    return list(seen)


def retrieve_contexts(
    found: Iterable[Dataset | tuple[Dataset, Dataset | None] | str | None],
    query_model: str | Sequence[str] | None = STUDY_ROOT_GET,
    transfer_syntaxes: str | Sequence[str] | None = None,
    *,
    limit: int = MAX_PRESENTATION_CONTEXTS,
) -> RetrieveContexts:
    """Contexts and SCP/SCU role items for a C-GET of what a C-FIND found (PS3.4 C.4.3.2).

    * ``found`` -- C-FIND identifiers, ``(status, identifier)`` pairs or SOP
      Class UIDs (see :func:`sop_classes_of`);
    * ``query_model`` -- the C-GET information model(s) to propose first
      (default Study Root; ``None`` for none, e.g. when you add it yourself);
    * ``transfer_syntaxes`` -- what to accept the instances in (default: the
      uncompressed syntaxes of ``DEFAULT_TRANSFER_SYNTAXES``; add compressed
      ones to receive compressed instances as they are stored).

    Each storage SOP class gets one context and a role item proposing the SCP
    role only (PS3.7 D.3.3.4: the C-GET SCU is the Storage SCP). Raises
    :class:`ValueError` when the query models and SOP classes need more than
    ``limit`` contexts (at most 128, PS3.8 9.3.2.2): split the retrieve then.
    """
    if not 0 < limit <= MAX_PRESENTATION_CONTEXTS:
        raise ValueError(f"'limit' must be 1 to {MAX_PRESENTATION_CONTEXTS}")
    if query_model is None:
        models: list[str] = []
    elif isinstance(query_model, str):
        models = [str(query_model)]
    else:
        models = [str(uid) for uid in query_model]
    if transfer_syntaxes is None:
        syntaxes = list(DEFAULT_TRANSFER_SYNTAXES)
    elif isinstance(transfer_syntaxes, str):
        syntaxes = [transfer_syntaxes]
    else:
        syntaxes = [str(ts) for ts in transfer_syntaxes]
    if not syntaxes:
        raise ValueError("'transfer_syntaxes' must not be empty")
    classes = [uid for uid in sop_classes_of(found) if uid not in models]
    needed = len(models) + len(classes)
    if needed > limit:
        raise ValueError(
            f"the retrieve needs {needed} presentation contexts ({len(models)} query model, "
            f"{len(classes)} storage SOP classes) but at most {limit} may be proposed "
            "(PS3.8 9.3.2.2); retrieve the studies or series in several associations"
        )
    contexts = [build_context(uid) for uid in models]
    contexts += [build_context(uid, syntaxes) for uid in classes]
    roles = [build_role(uid, scu_role=False, scp_role=True) for uid in classes]
    return RetrieveContexts(contexts, roles)


def store_context_key(sop_class: str, transfer_syntax: str | None) -> tuple[str, str | None]:
    """Which context of :func:`store_contexts` carries an instance: ``(sop_class, syntax)``,
    with ``None`` for every uncompressed (or unknown) syntax, which share one context."""
    if transfer_syntax is None or str(transfer_syntax) in UNCOMPRESSED_TRANSFER_SYNTAXES:
        return str(sop_class), None
    return str(sop_class), str(transfer_syntax)


def store_contexts(
    instances: Iterable[tuple[str, str | None]], *, limit: int = MAX_PRESENTATION_CONTEXTS
) -> list[PresentationContext]:
    """Contexts for sending instances given as ``(sop_class_uid, transfer_syntax)`` pairs.

    Each SOP class gets a context proposing Explicit, then Implicit VR Little
    Endian: an instance in any uncompressed syntax can be re-encoded in either
    (PS3.5 A.1-A.5), and Implicit VR Little Endian is the syntax every AE
    accepts (PS3.5 10.1), so it is also the way to send a compressed instance
    decompressed when its own syntax is refused. Each compressed syntax in use
    gets a context of its own proposing only it, so that the instance can go
    as it is stored (PS3.8 9.3.2.2 allows an abstract syntax in several
    contexts). At most ``limit`` contexts, SOP classes in order of first
    appearance, each class's fallback context first.
    """
    by_class: dict[str, dict[str | None, None]] = {}
    for sop_class, transfer_syntax in instances:
        uid, syntax = store_context_key(sop_class, transfer_syntax)
        syntaxes = by_class.setdefault(uid, {None: None})
        syntaxes.setdefault(syntax, None)
    contexts = []
    for uid, syntaxes in by_class.items():
        for syntax in syntaxes:
            proposal = list(_NATIVE_PROPOSAL) if syntax is None else [syntax]
            contexts.append(build_context(uid, proposal))
    return contexts[:limit]


def store_context_keys(contexts: Iterable[PresentationContext]) -> set[tuple[str, str | None]]:
    """The :func:`store_context_key` values carried by ``contexts`` of :func:`store_contexts`."""
    keys: set[tuple[str, str | None]] = set()
    for cx in contexts:
        syntaxes = [str(ts) for ts in cx.transfer_syntax]
        if len(syntaxes) == 1 and syntaxes[0] not in UNCOMPRESSED_TRANSFER_SYNTAXES:
            keys.add((str(cx.abstract_syntax), syntaxes[0]))
        else:
            keys.add((str(cx.abstract_syntax), None))
    return keys
