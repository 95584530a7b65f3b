"""The Query/Retrieve service class (PS3.4 Annex C, Y, Z): C-FIND, C-GET and C-MOVE.

SOP classes (``dicomnet._sop_groups.SERVICE_GROUPS["query_retrieve"]``): the
Patient Root, Study Root and (retired) Patient/Study Only information models
for FIND, GET and MOVE (PS3.4 C.6.1-C.6.3), Composite Instance Root Retrieve
MOVE and GET (PS3.4 Y), Composite Instance Retrieve Without Bulk Data GET
(PS3.4 Z) and the Repository Query FIND (PS3.4 C.6.4).

The application serves them with generators bound to ``EVT_C_FIND``,
``EVT_C_GET`` and ``EVT_C_MOVE`` -- pynetdicom's handler contract, run by
:mod:`dicomnet.plugins._qr_engine` (statuses, cancellation, sub-operations and
failure codes are documented there and in ``docs/query_retrieve.md``). A
request under a SOP class of another operation (a C-GET-RQ on a FIND model)
gets 0211H *Unrecognized operation*.

**Move destinations.** The plugin answers the
``dicomnet_resolve_move_destination`` hook from a static table, so that an
application need not resolve AE titles in its ``EVT_C_MOVE`` handler:

* ``ae.move_destinations = {"STORESCP": ("10.0.0.7", 11112)}`` on the AE (a
  mapping, or a :class:`MoveDestinations`), or
* a :class:`MoveDestinations` registered as a plugin of its own
  (``AE(plugins=[..., MoveDestinations({...})])``).

Entries are ``(host, port)`` or ``(host, port, kwargs)``, ``kwargs`` going to
``AE.associate`` (``contexts``, ``tls_args``, ``max_pdu``...). A title the
table does not know is left to other plugins, then to the handler's first
yield; unknown to all, the C-MOVE gets A801H *Move destination unknown*.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dicomnet import _sop_groups
from dicomnet.hookspecs import hookimpl
from dicomnet.service import ServiceClass
from dicomnet.status import (
    QR_FIND_SERVICE_CLASS_STATUS,
    QR_GET_SERVICE_CLASS_STATUS,
    QR_MOVE_SERVICE_CLASS_STATUS,
    StatusTable,
)

from ._qr_engine import (
    FIND_FAILURES,
    GET_FAILURES,
    MOVE_FAILURES,
    Destination,
    Operation,
    parse_destination,
    query_service_class,
)

__all__ = [
    "QUERY_RETRIEVE",
    "QUERY_RETRIEVE_STATUS",
    "MoveDestinations",
    "dicomnet_resolve_move_destination",
    "dicomnet_service_classes",
]

#: every status of C-FIND, C-GET and C-MOVE (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4); the
#: engine checks each response against the table of its own operation
QUERY_RETRIEVE_STATUS: StatusTable = QR_FIND_SERVICE_CLASS_STATUS.extend(
    "Query/Retrieve",
    {**QR_GET_SERVICE_CLASS_STATUS.codes, **QR_MOVE_SERVICE_CLASS_STATUS.codes},
)

FIND = Operation(QR_FIND_SERVICE_CLASS_STATUS, FIND_FAILURES)
GET = Operation(QR_GET_SERVICE_CLASS_STATUS, GET_FAILURES)
MOVE = Operation(QR_MOVE_SERVICE_CLASS_STATUS, MOVE_FAILURES)

QUERY_RETRIEVE: ServiceClass = query_service_class(
    "query_retrieve",
    sop_classes=_sop_groups.SERVICE_GROUPS["query_retrieve"],
    status_table=QUERY_RETRIEVE_STATUS,
    find=FIND,
    get=GET,
    move=MOVE,
    context_lists=_sop_groups.context_lists_of("query_retrieve"),
    reference="PS3.4 Annex C, Y, Z",
)


class MoveDestinations(Mapping[str, Destination]):
    """A static table of C-MOVE destinations: AE title -> ``(host, port[, kwargs])``.

    Checked when built (:class:`ValueError` for a bad entry). Usable as
    ``ae.move_destinations`` or registered as a plugin: it implements the
    ``dicomnet_resolve_move_destination`` hook (PS3.4 C.4.2.2.1).
    """

    def __init__(self, table: Mapping[str, Sequence[Any]] | None = None, **titles: Any) -> None:
        entries: dict[str, Destination] = {}
        for title, value in {**(table or {}), **titles}.items():
            key = str(title).strip()
            if not 0 < len(key) <= 16:
                raise ValueError(f"{title!r} is not an AE title (1 to 16 characters)")
            try:
                destination = parse_destination(tuple(value))
            except Exception as exc:
                raise ValueError(f"move destination {key!r}: {exc}") from None
            if destination is None:
                raise ValueError(f"move destination {key!r} has no address")
            entries[key] = destination
        self._entries = entries

    def __getitem__(self, title: str) -> Destination:
        return self._entries[str(title).strip()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MoveDestinations({ {t: d[:2] for t, d in self._entries.items()} !r})"

    @hookimpl
    def dicomnet_resolve_move_destination(self, ae_title: str) -> Destination | None:
        """This table's entry for ``ae_title``, or ``None``."""
        return self._entries.get(ae_title.strip())


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Query/Retrieve service class."""
    return [QUERY_RETRIEVE]


@hookimpl
def dicomnet_resolve_move_destination(assoc: Any, ae_title: str) -> Destination | None:
    """The AE's ``move_destinations`` entry for ``ae_title``, if it has such a table."""
    table = getattr(getattr(assoc, "ae", None), "move_destinations", None)
    if not table:
        return None
    if not isinstance(table, MoveDestinations):
        table = MoveDestinations(table)
    return table.get(ae_title.strip())
