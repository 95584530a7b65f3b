"""Presentation contexts for sending many files over few associations (PS3.8 7.1.1.13, 9.3.2.2).

An association carries at most 128 presentation contexts (odd IDs 1-255,
PS3.8 9.3.2.2). A bulk sender knows, from the files' meta alone, which SOP
classes and transfer syntaxes it will send; :func:`plan_contexts` turns that
into the contexts to propose and, past 128, into several associations.

Rules this module keeps, for each SOP class among the files:

* **every file can go as it is**: each transfer syntax a file of that class is
  in gets a context proposing it -- a compressed syntax alone in its own
  context, so that the acceptor cannot pick another one in its place;
* **every file can be converted**: each SOP class is also proposed with
  Explicit VR Little Endian and Implicit VR Little Endian (the syntax every
  DICOM AE accepts, PS3.5 10.1), so that when the peer refuses a file's own
  syntax the sender can decompress or re-encode it
  (:mod:`dicomnet.transcode`). When the files of a class use only one of the
  two, that context proposes both (its own first); when they use both, each
  gets a context of its own and each is the other's fallback;
* **no duplicates**: a (SOP class, transfer syntaxes) pair is proposed once;
* **all the contexts of a SOP class travel together**, and the classes are
  packed into associations first-fit by decreasing size, which gives the
  fewest associations for these sizes in practice (a SOP class's contexts
  number 1 to a few dozen against 128 per association).

Nothing here does I/O except reading the files' meta when given paths.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence

import attrs

from .acse import MAX_PRESENTATION_CONTEXTS, ContextDefinition
from .part10 import FileInfo, read_file_info
from .transcode import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

__all__ = [
    "MAX_CONTEXTS",
    "AssociationPlan",
    "contexts_for_class",
    "plan_contexts",
]

#: contexts per association (PS3.8 9.3.2.2)
MAX_CONTEXTS = MAX_PRESENTATION_CONTEXTS

_DEFAULTS = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)


@attrs.frozen
class AssociationPlan:
    """One association of a bulk send: the contexts to propose and the files to send on it."""

    contexts: tuple[ContextDefinition, ...]
    files: tuple[FileInfo, ...]

    @property
    def sop_classes(self) -> frozenset[str]:
        return frozenset(cx.abstract_syntax for cx in self.contexts)


def contexts_for_class(
    sop_class_uid: str, syntaxes: Counter[str] | Sequence[str]
) -> list[ContextDefinition]:
    """The contexts for one SOP class whose files are in ``syntaxes`` (with counts).

    The first context is the fallback (Explicit and/or Implicit VR Little
    Endian); the others each carry one syntax as it is. See the module
    docstring.
    """
    counts = syntaxes if isinstance(syntaxes, Counter) else Counter(syntaxes)
    explicit = counts.get(EXPLICIT_VR_LITTLE_ENDIAN, 0)
    implicit = counts.get(IMPLICIT_VR_LITTLE_ENDIAN, 0)
    contexts: list[ContextDefinition] = []
    if explicit and implicit:
        # both in use: each alone, so that both go as they are; each is the other's fallback
        first, second = _DEFAULTS if explicit >= implicit else _DEFAULTS[::-1]
        contexts.append(ContextDefinition(sop_class_uid, (first,)))
        contexts.append(ContextDefinition(sop_class_uid, (second,)))
    else:
        order = _DEFAULTS[::-1] if implicit else _DEFAULTS
        contexts.append(ContextDefinition(sop_class_uid, order))
    # the other syntaxes, most used first, each alone
    for syntax, _n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if syntax not in _DEFAULTS:
            contexts.append(ContextDefinition(sop_class_uid, (syntax,)))
    return contexts


def _info(item: FileInfo | str | os.PathLike[str]) -> FileInfo:
    return item if isinstance(item, FileInfo) else read_file_info(item)


def _split_class(contexts: list[ContextDefinition], capacity: int) -> list[list[ContextDefinition]]:
    """A SOP class with more contexts than fit: chunks that each repeat the fallback."""
    if len(contexts) <= capacity:
        return [contexts]
    fallback = ContextDefinition(contexts[0].abstract_syntax, _DEFAULTS)
    singles = [cx for cx in contexts if cx != fallback]
    per_chunk = capacity - 1
    return [[fallback, *singles[i : i + per_chunk]] for i in range(0, len(singles), per_chunk)]


def plan_contexts(
    files: Iterable[FileInfo | str | os.PathLike[str]], *, max_contexts: int = MAX_CONTEXTS
) -> list[AssociationPlan]:
    """Plan the associations to send ``files`` (paths, or :class:`FileInfo` already read).

    Every file is in exactly one plan, whose contexts propose its SOP class
    with its own transfer syntax and with the Explicit/Implicit VR Little
    Endian fallback; each plan has at most ``max_contexts`` contexts. Files
    keep their order within a plan; plans are ordered by their first file.

    :raises NotDicomError: a path is not a DICOM file (read the files first,
        with :func:`dicomnet.part10.read_file_info`, to skip those).
    :raises ValueError: ``max_contexts`` is not in 2-128.
    """
    if not 2 <= max_contexts <= MAX_CONTEXTS:
        raise ValueError(f"max_contexts must be between 2 and {MAX_CONTEXTS}, not {max_contexts}")
    infos = [_info(item) for item in files]
    if not infos:
        return []
    by_class: dict[str, Counter[str]] = {}
    for info in infos:
        by_class.setdefault(info.sop_class_uid, Counter())[info.transfer_syntax] += 1

    # the units to pack: each SOP class's contexts (split only if one class overflows)
    units: list[list[ContextDefinition]] = []
    for sop_class, counts in by_class.items():
        units.extend(_split_class(contexts_for_class(sop_class, counts), max_contexts))

    # first fit, by decreasing size (ties: first seen first); in each association the
    # SOP classes then keep the order in which the files brought them
    packed: list[list[int]] = []
    sizes: list[int] = []
    for index in sorted(range(len(units)), key=lambda i: len(units[i]), reverse=True):
        size = len(units[index])
        for n, used in enumerate(sizes):
            if used + size <= max_contexts:
                packed[n].append(index)
                sizes[n] += size
                break
        else:
            packed.append([index])
            sizes.append(size)
    bins = [[cx for index in sorted(members) for cx in units[index]] for members in packed]

    # each file goes to the first plan proposing its class with its own syntax
    # (there is one unless a class was split, then the one carrying its syntax)
    assigned: list[list[FileInfo]] = [[] for _ in bins]
    where: dict[tuple[str, str], int] = {}
    fallback_of: dict[str, int] = {}
    for index, contexts in enumerate(bins):
        for cx in contexts:
            fallback_of.setdefault(cx.abstract_syntax, index)
            for syntax in cx.transfer_syntaxes:
                where.setdefault((cx.abstract_syntax, syntax), index)
    for info in infos:
        found = where.get((info.sop_class_uid, info.transfer_syntax))
        assigned[fallback_of[info.sop_class_uid] if found is None else found].append(info)

    order = {id(info): n for n, info in enumerate(infos)}
    plans = [
        AssociationPlan(tuple(contexts), tuple(files))
        for contexts, files in zip(bins, assigned, strict=True)
        if files
    ]
    plans.sort(key=lambda plan: order[id(plan.files[0])])
    return plans
