"""A small PACS library: the index and query engine of ``dicomnet serve``.

* :mod:`.index` -- :class:`Index`, the database of stored instances (SQLite by
  default, PostgreSQL to share it between processes and machines), their
  ingest, removal and :meth:`~Index.rescan` of the storage folder.
* :mod:`.matching` -- PS3.4 C.2.2.2 attribute matching: :func:`matches` in
  Python, and the translation of keys to SQL.
* :mod:`.query` -- C-FIND query execution (hierarchical and relational,
  PS3.4 C.4.1.3) and the instances of C-GET/C-MOVE requests.
* :mod:`.worklist` -- :class:`WorklistSource`, Modality Worklist items read
  from a folder of ``.wl`` files (PS3.4 K).

See docs/pacs_index.md.
"""

from __future__ import annotations

from .index import AddResult, Index, NotAnInstance, RescanReport, database_url, make_engine
from .matching import (
    QR_OPTIONS,
    WORKLIST_OPTIONS,
    InvalidIdentifier,
    Matcher,
    MatchOptions,
    QueryError,
    compile_identifier,
    matches,
)
from .query import InstanceLocation, level_of
from .worklist import WorklistSource

__all__ = [
    "QR_OPTIONS",
    "WORKLIST_OPTIONS",
    "AddResult",
    "Index",
    "InstanceLocation",
    "InvalidIdentifier",
    "MatchOptions",
    "Matcher",
    "NotAnInstance",
    "QueryError",
    "RescanReport",
    "WorklistSource",
    "compile_identifier",
    "database_url",
    "level_of",
    "make_engine",
    "matches",
]
