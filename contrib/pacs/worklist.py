"""Modality Worklist items read from a folder of ``.wl`` files (PS3.4 K).

The layout is the one DCMTK's ``wlmscpfs`` reads: one worklist item per file,
each a DICOM data set (Part 10, or a bare data set as ``dump2dcm`` writes
it), with a name ending in ``.wl``, all in one folder. ``wlmscpfs`` keeps one
such folder per called AE title under a root (``ROOT/AETITLE/*.wl``);
:meth:`WorklistSource.for_called_ae` opens that layout.

Files are read when first needed and again whenever their modification time
or size changes; deleted files drop out. Every query re-lists the folder
(one ``scandir``), so an item added by another program is found by the next
query. Write items atomically -- to a temporary name that does not end in
``.wl``, then rename -- so that a query never reads half a file. A file that
cannot be read is logged and skipped until it changes.

Matching follows PS3.4 K.2.2.1.1 with :mod:`.matching`: sequence matching
(C.2.2.2.6) for Scheduled Procedure Step Sequence and the like, and unknown
values fail to match (K.2.2.1.1.1). Responses hold the requested keys only
(K.2.2.1.2), sequences the matching items reduced to the requested item keys.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from .matching import WORKLIST_OPTIONS, MatchOptions, compile_identifier, has_non_ascii

__all__ = ["WorklistSource"]

LOGGER = logging.getLogger("dicomnet.pacs.worklist")

_CHARSET = 0x00080005


@attrs.frozen
class _Cached:
    mtime_ns: int
    size: int
    dataset: Dataset | None


class WorklistSource:
    """The worklist items of ``directory`` (files matching ``suffix``).

    ``options`` are the default matching options of :meth:`find`
    (:data:`~.matching.WORKLIST_OPTIONS`). Thread-safe.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        suffix: str = ".wl",
        options: MatchOptions = WORKLIST_OPTIONS,
    ) -> None:
        self.directory = Path(directory)
        self.suffix = suffix
        self.options = options
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_called_ae(
        cls, root: str | os.PathLike[str], called_ae_title: str, **kwargs: object
    ) -> WorklistSource:
        """The items of ``root/<called AE title>``, DCMTK ``wlmscpfs``'s layout."""
        name = called_ae_title.strip()
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"not a usable AE title for a folder name: {called_ae_title!r}")
        return cls(Path(root) / name, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"WorklistSource({str(self.directory)!r})"

    def refresh(self) -> None:
        """Re-list the folder; read new and changed files, forget deleted ones."""
        seen: dict[str, os.stat_result] = {}
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.endswith(self.suffix) and entry.is_file():
                        seen[entry.path] = entry.stat()
        except FileNotFoundError:
            LOGGER.warning("worklist folder %s does not exist", self.directory)
        with self._lock:
            for path in list(self._cache):
                if path not in seen:
                    del self._cache[path]
            for path, st in seen.items():
                cached = self._cache.get(path)
                if cached is not None and (cached.mtime_ns, cached.size) == (
                    st.st_mtime_ns,
                    st.st_size,
                ):
                    continue
                self._cache[path] = _Cached(st.st_mtime_ns, st.st_size, _read(path))

    def items(self) -> list[Dataset]:
        """The current worklist items (after :meth:`refresh`), in file name order."""
        self.refresh()
        with self._lock:
            return [
                cached.dataset
                for _, cached in sorted(self._cache.items())
                if cached.dataset is not None
            ]

    def find(
        self, identifier: Dataset, *, options: MatchOptions | None = None
    ) -> Iterator[Dataset]:
        """The response identifiers of the items matching ``identifier`` (PS3.4 K.4.1.3).

        The identifier is parsed before this returns: a key that cannot be
        parsed raises :class:`~.matching.InvalidIdentifier` (A900H).
        """
        matcher = compile_identifier(identifier, self.options if options is None else options)
        items = self.items()

        def responses() -> Iterator[Dataset]:
            for item in items:
                if not matcher.matches(item):
                    continue
                response = matcher.project(item)
                if any(has_non_ascii(elem) for elem in response):
                    response[_CHARSET] = DataElement(_CHARSET, "CS", "ISO_IR 192")
                yield response

        return responses()


def _read(path: str) -> Dataset | None:
    try:
        ds = dcmread(path, force=True)
        ds.decode()  # decode text now, with the item's Specific Character Set
    except Exception as exc:
        LOGGER.warning("cannot read worklist item %s: %s", path, exc)
        return None
    return ds
