"""``dicomnet serve``: a small PACS -- Verification, Storage, Query/Retrieve and Worklist SCP.

One AE serves, on one port:

* **Verification** (PS3.4 A): C-ECHO.
* **Storage** (PS3.4 B, GG): every storage SOP class in the uncompressed and
  the common compressed transfer syntaxes. Each received instance goes
  through the Storage receive path (:mod:`dicomnet.spool`, spooled to disk as
  it arrives, never decoded on the way) into
  ``DIR/<Study UID>/<Series UID>/<SOP Instance UID>.dcm`` and is added to the
  index (:class:`dicomnet.contrib.pacs.Index`).
* **Query/Retrieve** (PS3.4 C): C-FIND, C-GET and C-MOVE in the Patient Root
  and Study Root information models, answered from the index. C-FIND is
  hierarchical, or relational when the SCU asked for relational-queries by
  SOP Class Extended Negotiation (PS3.4 C.4.1.3.2, C.5.1.1), which is also
  how combined date-time, empty value and multiple value matching are agreed;
  C-GET/C-MOVE accept relational-retrieval the same way (C.5.2, C.5.3). C-GET and
  C-MOVE send the stored files as they are, streamed, never decoded (when the
  peer accepted their transfer syntax). C-MOVE destinations come from a
  static table (:class:`~dicomnet.plugins.qr.MoveDestinations`).
* **Modality Worklist** (PS3.4 K): C-FIND over the ``.wl`` files of a folder
  (:class:`~dicomnet.contrib.pacs.WorklistSource`), when one is given.

**Durability and the order of things** (see docs/serve.md): a C-STORE is
answered Success only after (1) the file is flushed to disk and atomically
renamed to its final name in a flushed folder (``event.store()``), then (2)
its row is committed in the index (SQLite with ``synchronous=FULL``, so that
the commit survives a power loss; PostgreSQL commits are durable). A crash
between (1) and (2) leaves a complete file that is not indexed and a C-STORE
that was never acknowledged: the SCU sends it again, or ``--rescan`` indexes
it at the next start. The reverse order could leave a row pointing to no file.

API: :class:`ServeOptions` describes a server; :class:`PacsServer` runs one in
the background (for embedding and tests: ``start()``, ``shutdown()``);
:func:`serve` runs in the foreground until SIGTERM or SIGINT, with
``workers`` processes sharing the port, as the command does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import click
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomnet import AE, evt
from dicomnet.events import Event
from dicomnet.plugins.qr import MoveDestinations
from dicomnet.plugins.storage import (
    COMMON_TRANSFER_SYNTAXES,
    OUT_OF_RESOURCES,
    storage_sop_classes,
)
from dicomnet.server import AssociationServer
from dicomnet.sop_class import (
    ModalityWorklistInformationModelFind,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from dicomnet.spool import instance_file_name, sync_directory

from . import _workers
from ._cli_common import (
    accept_retired_option,
    bind_option,
    max_associations_option,
    max_pdu_option,
    port_option,
    server_aet_option,
    verbosity_options,
    workers_option,
)

if TYPE_CHECKING:  # the PACS library (SQLAlchemy) is imported when a server starts, so
    # that the other commands of the dicomnet CLI do not pay for it
    from .pacs import Index, QueryError, WorklistSource

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "PacsServer",
    "ServeOptions",
    "ServerTLS",
    "load_config",
    "parse_move_destination",
    "serve",
]

LOGGER = logging.getLogger("dicomnet.serve")

#: where received data sets are spooled before they are stored (a hidden folder of DIR,
#: on its file system, so that storing is a rename)
INCOMING: Final = ".incoming"

#: Error: data set does not match SOP class (PS3.4 B.2.3)
DATASET_MISMATCH: Final = 0xA900
#: Processing failure (PS3.7 C.4.2): the instance could not be indexed
PROCESSING_FAILURE: Final = 0x0110

FIND_MODELS: Final[Mapping[str, str]] = {
    str(PatientRootQueryRetrieveInformationModelFind): "patient",
    str(StudyRootQueryRetrieveInformationModelFind): "study",
}
RETRIEVE_MODELS: Final[Mapping[str, str]] = {
    str(PatientRootQueryRetrieveInformationModelGet): "patient",
    str(StudyRootQueryRetrieveInformationModelGet): "study",
    str(PatientRootQueryRetrieveInformationModelMove): "patient",
    str(StudyRootQueryRetrieveInformationModelMove): "study",
}
WORKLIST_FIND: Final = str(ModalityWorklistInformationModelFind)

#: C-FIND extended negotiation we perform, byte by byte (PS3.4 Table C.5-2): relational
#: queries, combined date-time matching, (no fuzzy person names, no timezone adjustment,
#: no multi-frame conversion), empty value matching, multiple value matching
_FIND_EXTENDED: Final = (1, 1, 0, 0, 0, 1, 1)
#: C-GET/C-MOVE extended negotiation (PS3.4 C.5.2, C.5.3): relational retrieval only (byte 1)
_RETRIEVE_EXTENDED: Final = (1,)

# -- options -----------------------------------------------------------------------------------


@attrs.frozen
class ServerTLS:
    """TLS for the server (PS3.15 B.1, TLS 1.2 or later).

    ``cert_file`` (PEM, with the key unless ``key_file`` is given) is the
    server's certificate. With ``ca_file``, clients must present a certificate
    that chains to one of its CAs (mutual TLS). The same certificate and CAs
    are used towards move destinations configured with TLS.
    """

    cert_file: Path
    key_file: Path | None = None
    ca_file: Path | None = None

    def server_context(self) -> ssl.SSLContext:
        """The server-side context; :class:`ValueError` for unusable files."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._load(context)
        if self.ca_file is not None:
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """The context of an association to a move destination over TLS.

        The destination's chain is verified against ``ca_file`` (the system's
        CAs without it); its host name is not checked, as ``dicomnet echo``
        does not without ``--tls-hostname`` (DICOM peers are known by address).
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        self._load(context)
        if self.ca_file is None:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return context

    def _load(self, context: ssl.SSLContext) -> None:
        try:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load the certificate {self.cert_file}: {exc}") from exc
        if self.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"cannot load CA certificates from {self.ca_file}: {exc}") from exc


#: a move destination: ``(host, port)``, or ``(host, port, True)`` to reach it over TLS
MoveTarget = tuple[str, int] | tuple[str, int, bool]


def _destinations(value: Mapping[str, MoveTarget]) -> dict[str, MoveTarget]:
    out: dict[str, MoveTarget] = {}
    for title, target in value.items():
        out[str(title).strip()] = tuple(target)  # type: ignore[assignment]
    return out


@attrs.frozen
class ServeOptions:
    """What ``dicomnet serve`` runs: see docs/serve.md for each option.

    ``directory`` holds the stored instances (and the SQLite index when
    ``db`` is ``None``); ``port`` 0 picks a free port. ``move_destinations``
    maps AE titles to ``(host, port)`` or ``(host, port, tls)``.
    """

    directory: Path = attrs.field(converter=Path)
    port: int = 11112
    ae_title: str = "DICOMNET"
    host: str = ""
    db: str | None = None
    worklist_dir: Path | None = attrs.field(
        default=None, converter=attrs.converters.optional(Path)
    )
    move_destinations: Mapping[str, MoveTarget] = attrs.field(
        factory=dict, converter=_destinations
    )
    tls: ServerTLS | None = None
    max_associations: int = 10
    max_pdu: int = 16382
    acse_timeout: float | None = 30.0
    dimse_timeout: float | None = 30.0
    idle_timeout: float | None = 60.0
    workers: int = 1
    require_called_aet: bool = False
    accept_retired: bool = False
    fsync: bool = True
    rescan: bool = False

    @property
    def database(self) -> str:
        """The index's database URL (the SQLite file in ``directory`` by default)."""
        if self.db is not None:
            from .pacs.index import database_url

            return database_url(self.db).render_as_string(hide_password=False)
        return f"sqlite:///{(self.directory / 'index.sqlite').resolve()}"

    def open_index(self, *, create: bool = True) -> Index:
        """The index of this server (a pool as large as the associations it serves)."""
        from .pacs import Index

        return Index(
            self.db,
            storage_dir=self.directory,
            create=create,
            synchronous="FULL" if self.fsync else "NORMAL",
            pool_size=max(5, self.max_associations),
            max_overflow=10,
        )


def parse_move_destination(text: str) -> tuple[str, MoveTarget]:
    """``"AE=HOST:PORT"`` (``[v6addr]:PORT`` for IPv6) -> ``(AE, (HOST, PORT))``.

    :raises ValueError: for anything else.
    """
    title, sep, address = text.partition("=")
    title = title.strip()
    if not sep or not 0 < len(title) <= 16:
        raise ValueError(f"{text!r} is not AE=HOST:PORT")
    host, sep, port_text = address.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not AE=HOST:PORT (port 1 to 65535)")
    return title, (host, int(port_text))


# -- the handlers ---------------------------------------------------------------------------------


def _status(code: int, comment: str, offending: Sequence[int] = ()) -> Dataset:
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    if offending:
        ds.OffendingElement = list(offending)
    return ds


def _query_failure(exc: QueryError) -> Dataset:
    LOGGER.warning("Refusing a request with 0x%04X: %s", exc.status, exc.comment)
    return _status(exc.status, exc.error_comment, exc.offending)


def _agreed(event: Event, expected: tuple[int, ...]) -> tuple[bool, ...]:
    """The extended negotiation agreed for the request's SOP class, as booleans."""
    negotiation = event.assoc.negotiation
    uid = str(event.context.abstract_syntax)
    info = negotiation.extended_negotiation(uid) if negotiation is not None else None
    info = info or b""
    return tuple(i < len(info) and bool(info[i]) for i in range(len(expected)))


def _answer(requested: bytes, supported: tuple[int, ...]) -> bytes:
    """Our answer to one 56H item: each requested option we perform (PS3.4 C.5.1-C.5.3)."""
    return bytes(
        1 if value and i < len(supported) and supported[i] else 0
        for i, value in enumerate(requested[: len(supported)])
    )


def _dir_name(uid: str) -> str:
    """A folder name for a UID: itself when it is a plain UID, else a hash-derived name."""
    return instance_file_name(uid, suffix="")


class _Handlers:
    """The event handlers of one server: C-STORE, C-FIND, C-GET, C-MOVE, extended negotiation."""

    def __init__(
        self, options: ServeOptions, index: Index, worklist: WorklistSource | None
    ) -> None:
        self.options = options
        self.directory = Path(options.directory).resolve()
        self.index = index
        self.worklist = worklist

    # -- C-STORE --
    def store(self, event: Event) -> Any:
        """Store durably, then index; Success only once both are done (see the module)."""
        request = event.request
        affected = str(request.AffectedSOPInstanceUID or "")
        try:
            ds = dcmread(event.dataset_path, stop_before_pixels=True)
        except Exception as exc:
            LOGGER.warning("Refusing %s: cannot read its data set: %s", affected, exc)
            return _status(DATASET_MISMATCH, f"cannot read the data set: {exc}")
        uids = {k: str(ds.get(k, "") or "").strip("\0 ") for k in (
            "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"
        )}
        missing = [k for k, v in uids.items() if not v]
        if missing:
            return _status(DATASET_MISMATCH, "no " + ", ".join(missing))
        if uids["SOPInstanceUID"] != affected:
            return _status(
                DATASET_MISMATCH, "SOP Instance UID differs from Affected SOP Instance UID"
            )
        folder = self.directory / _dir_name(uids["StudyInstanceUID"])
        folder = folder / _dir_name(uids["SeriesInstanceUID"])
        try:
            self._make_folder(folder)
            path = event.store(folder, instance_file_name(affected), fsync=self.options.fsync)
        except OSError as exc:
            LOGGER.error("Cannot store %s: %s", affected, exc)
            return _status(OUT_OF_RESOURCES, f"cannot store the instance: {exc.strerror or exc}")
        try:
            result = self.index.add(ds, path)
        except Exception as exc:
            LOGGER.exception("Stored %s in %s but cannot index it", affected, path)
            return _status(PROCESSING_FAILURE, f"cannot index the instance: {exc}")
        if result.previous_path is not None and result.previous_path != result.path:
            # the instance moved to another study or series: its old file is stale
            with contextlib.suppress(OSError):
                self.index.resolve(result.previous_path).unlink()
        if LOGGER.isEnabledFor(logging.INFO):
            LOGGER.info(
                "%s %s from %r",
                "Replaced" if result.replaced else "Stored",
                result.path,
                event.assoc.requestor.ae_title,
            )
        return 0x0000

    def _make_folder(self, folder: Path) -> None:
        """Create ``folder`` (two levels below DIR) and flush the entries of new folders."""
        created: list[Path] = []
        for level in (folder.parent, folder):
            try:
                level.mkdir()
            except FileExistsError:
                continue
            created.append(level)
        if self.options.fsync:
            for level in created:
                sync_directory(level.parent)

    # -- C-FIND --
    def find(self, event: Event) -> Iterator[Any]:
        """Query/Retrieve C-FIND from the index, Modality Worklist C-FIND from the folder."""
        from .pacs import QueryError

        uid = str(event.context.abstract_syntax)
        try:
            if uid == WORKLIST_FIND:
                if self.worklist is None:  # pragma: no cover - context not accepted then
                    yield _status(0xC000, "no worklist"), None
                    return
                results = self.worklist.find(event.identifier)
            else:
                relational, datetime, _, _, _, empty, multiple = _agreed(event, _FIND_EXTENDED)
                options = attrs.evolve(
                    self.index.options,
                    combined_datetime=datetime,
                    empty_value_matching=empty,
                    multiple_value_matching=multiple,
                )
                results = self.index.find(
                    event.identifier,
                    FIND_MODELS[uid],
                    relational=relational,
                    options=options,
                    retrieve_ae_title=self.options.ae_title,
                )
        except QueryError as exc:
            yield _query_failure(exc), None
            return
        try:
            for identifier in results:
                yield 0xFF00, identifier
        finally:
            close = getattr(results, "close", None)
            if close is not None:  # release the database connection at once
                close()

    # -- C-GET and C-MOVE --
    def _instances(self, event: Event) -> list[str] | Dataset:
        from .pacs import QueryError

        uid = str(event.context.abstract_syntax)
        (relational,) = _agreed(event, _RETRIEVE_EXTENDED)
        try:
            found = self.index.instances_for(
                event.identifier, RETRIEVE_MODELS[uid], relational=relational
            )
        except QueryError as exc:
            return _query_failure(exc)
        return [str(location.path) for location in found]

    def get(self, event: Event) -> Iterator[Any]:
        """C-GET: the indexed files, sent as they are on this association."""
        instances = self._instances(event)
        if isinstance(instances, Dataset):
            yield instances, None
            return
        yield len(instances)
        for path in instances:
            yield 0xFF00, path

    def move(self, event: Event) -> Iterator[Any]:
        """C-MOVE: the destination is left to the MoveDestinations plugin, then as C-GET."""
        # (None, None): "not known to this handler"; the engine asked the
        # dicomnet_resolve_move_destination hooks first, and answers A801H if
        # none of them knows the title either.
        yield None, None
        yield from self.get(event)

    # -- association negotiation --
    def extended(self, event: Event) -> dict[str, bytes]:
        """Answer SOP Class Extended Negotiation for the models we serve (PS3.4 C.5)."""
        answers: dict[str, bytes] = {}
        for uid, info in event.app_info.items():
            if info is None:
                continue
            if str(uid) in FIND_MODELS:
                answers[str(uid)] = _answer(bytes(info), _FIND_EXTENDED)
            elif str(uid) in RETRIEVE_MODELS:
                answers[str(uid)] = _answer(bytes(info), _RETRIEVE_EXTENDED)
        return answers


# -- the server -----------------------------------------------------------------------------------


class PacsServer:
    """One ``dicomnet serve`` process's AE, index and handlers, served in the background.

    ``PacsServer(options)`` opens (and creates) the index and builds the AE;
    :meth:`start` listens on ``options.host``:``options.port`` (or on
    ``listener``, an already listening socket) and returns the bound address;
    :meth:`shutdown` aborts the associations still open, stops listening and
    closes the index. A context manager. ``index`` may be given (then it is
    not closed).
    """

    def __init__(self, options: ServeOptions, *, index: Index | None = None) -> None:
        self.options = options
        directory = Path(options.directory)
        directory.mkdir(parents=True, exist_ok=True)
        incoming = directory / INCOMING
        incoming.mkdir(exist_ok=True)
        self._owns_index = index is None
        self.index = index if index is not None else options.open_index()
        self.server: AssociationServer | None = None
        try:
            from .pacs import WorklistSource

            self.worklist = (
                WorklistSource(options.worklist_dir) if options.worklist_dir is not None else None
            )
            self.handlers = _Handlers(options, self.index, self.worklist)
            self.ae = self._make_ae(incoming)
        except BaseException:
            if self._owns_index:
                self.index.close()
            raise

    def _make_ae(self, incoming: Path) -> AE:
        options = self.options
        table: dict[str, Any] = {}
        client_tls: ssl.SSLContext | None = None
        for title, target in options.move_destinations.items():
            if len(target) == 3 and target[2]:
                if options.tls is None:
                    raise ValueError(f"move destination {title!r} uses TLS: give --tls-cert")
                if client_tls is None:
                    client_tls = options.tls.client_context()
                table[title] = (target[0], target[1], {"tls_args": (client_tls, None)})
            else:
                table[title] = (target[0], target[1])
        plugins: list[Any] = ["verification", "storage", "qr", "worklist"]
        plugins.append(MoveDestinations(table))
        ae = AE(options.ae_title, plugins=plugins)
        ae.maximum_associations = options.max_associations
        ae.maximum_pdu_size = options.max_pdu
        ae.acse_timeout = options.acse_timeout
        ae.dimse_timeout = options.dimse_timeout
        ae.network_timeout = options.idle_timeout
        ae.require_called_aet = options.require_called_aet
        ae.spool_threshold = 0  # every data set to a file in DIR/.incoming as it arrives
        ae.spool_directory = str(incoming)
        ae.add_supported_context(Verification)
        for uid in storage_sop_classes(retired=options.accept_retired):
            # scu_role/scp_role: accept either role when proposed (a C-GET SCU asks to
            # be the Storage SCP, PS3.7 D.3.3.4); without a proposal, the default roles
            ae.add_supported_context(uid, COMMON_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
        for uid in (*FIND_MODELS, *RETRIEVE_MODELS):
            ae.add_supported_context(uid)
        if self.worklist is not None:
            ae.add_supported_context(WORKLIST_FIND)
        handlers = self.handlers
        ae.bind(evt.EVT_C_STORE, handlers.store)
        ae.bind(evt.EVT_C_FIND, handlers.find)
        ae.bind(evt.EVT_C_GET, handlers.get)
        ae.bind(evt.EVT_C_MOVE, handlers.move)
        ae.bind(evt.EVT_SOP_EXTENDED, handlers.extended)
        return ae

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (after :meth:`listen`)."""
        if self.server is None:
            raise RuntimeError("the server is not started")
        return self.server.server_address

    def listen(self, listener: socket.socket | None = None) -> AssociationServer:
        """Listen (on ``listener`` if given), without serving yet; the server."""
        if self.server is not None:
            raise RuntimeError("the server is already started")
        options = self.options
        ssl_context = options.tls.server_context() if options.tls is not None else None
        self.server = self.ae.make_server(
            (options.host, options.port), ssl_context=ssl_context, listener=listener
        )
        return self.server

    def start(self, listener: socket.socket | None = None) -> tuple[str, int]:
        """Listen and serve in a background thread; return the bound ``(host, port)``."""
        self.listen(listener).start()
        return self.address

    def shutdown(self) -> None:
        """Stop serving, abort the open associations, close the index. Idempotent."""
        if self.server is not None:
            self.server.shutdown()
        self.ae.shutdown()
        if self._owns_index:
            self.index.close()

    def __enter__(self) -> PacsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# -- running in the foreground --------------------------------------------------------------------


def _serve_process(options: ServeOptions) -> _workers.ServeProcess:
    """Run one :class:`PacsServer` in the calling process (a worker, or the only process)."""

    def serve_process(
        listener: socket.socket | None,
        signals: _workers.Signals,
        ready: Callable[[str, int], None],
        worker: int | None,
    ) -> int:
        pacs = PacsServer(options)
        try:
            return _workers.serve_until_stopped(
                pacs.listen(listener), signals, ready, logger=LOGGER, name="dicomnet-serve"
            )
        finally:
            pacs.shutdown()

    return serve_process


def serve(
    options: ServeOptions, *, on_ready: Callable[[str, int], None] | None = None
) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status (0 after a clean stop).

    With ``options.workers`` > 1 that many processes are forked, each a full
    server with its own connections to the index, sharing the port
    (``SO_REUSEPORT``, so that the kernel spreads the associations; else one
    inherited listening socket); a worker that dies after running a while is
    restarted (:mod:`dicomnet.contrib._workers`). Call from the main thread of
    a process that runs no other thread. ``on_ready(host, port)`` is called
    once every worker listens. With ``options.rescan`` the storage folder is
    first reconciled with the index (:meth:`~dicomnet.contrib.pacs.Index.rescan`).

    :raises OSError: the port or the folder cannot be used.
    :raises ValueError: a certificate, a move destination or the database URL
        cannot be used.
    """
    if options.workers < 1:
        raise ValueError("'workers' must be >= 1")
    directory = Path(options.directory)
    directory.mkdir(parents=True, exist_ok=True)
    if options.tls is not None:
        options.tls.server_context()  # fail now, not in each worker
    with options.open_index() as index:  # create the schema once, before any fork
        if options.rescan:
            report = index.rescan(prune=True)
            LOGGER.info(
                "Rescan: %d files indexed, %d could not be, %d rows of missing files removed",
                len(report.added), len(report.failed), len(report.removed),
            )
    return _workers.run(
        _serve_process(options),
        workers=options.workers,
        host=options.host,
        port=options.port,
        logger=LOGGER,
        on_ready=on_ready,
    )


# -- the configuration file -----------------------------------------------------------------------

#: options a configuration file may set, by the name of their command-line option
_CONFIG_KEYS: Final = {
    "port": "port",
    "aet": "aet",
    "dir": "directory",
    "bind": "host",
    "db": "db",
    "worklist-dir": "worklist_dir",
    "move-dest": "move_dest",
    "tls-cert": "tls_cert",
    "tls-key": "tls_key",
    "tls-ca": "tls_ca",
    "max-associations": "max_associations",
    "max-pdu": "max_pdu",
    "acse-timeout": "acse_timeout",
    "dimse-timeout": "dimse_timeout",
    "idle-timeout": "idle_timeout",
    "workers": "workers",
    "require-called-aet": "require_called_aet",
    "accept-retired": "accept_retired",
    "no-fsync": "no_fsync",
    "rescan": "rescan",
}
_PATH_KEYS: Final = frozenset({"dir", "worklist-dir", "tls-cert", "tls-key", "tls-ca"})


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The options of a TOML configuration file, by the parameter names of the command.

    Keys are the long option names without ``--`` (``dir``, ``move-dest``...;
    ``_`` may stand for ``-``). Relative paths are relative to the file's
    folder. ``move-dest`` is a list of ``"AE=HOST:PORT"`` strings, or a table
    ``AE = "HOST:PORT"`` (or ``AE = {host = "...", port = N, tls = true}``).

    :raises ValueError: unreadable file, TOML error, unknown key.
    """
    file = Path(path)
    try:
        with open(file, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read {file}: {exc}") from exc
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("_", "-")
        if key not in _CONFIG_KEYS:
            known = ", ".join(sorted(_CONFIG_KEYS))
            raise ValueError(f"{file}: unknown option {raw_key!r} (known: {known})")
        if key in _PATH_KEYS and isinstance(value, str):
            out[_CONFIG_KEYS[key]] = str(file.parent / Path(value).expanduser())
        elif key == "move-dest":
            out[_CONFIG_KEYS[key]] = _config_destinations(file, value)
        else:
            out[_CONFIG_KEYS[key]] = value
    return out


def _config_destinations(file: Path, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, dict):
        out = []
        for title, target in value.items():
            if isinstance(target, str):
                out.append(f"{title}={target}")
            elif isinstance(target, dict) and {"host", "port"} <= set(target):
                host = str(target["host"])
                host = f"[{host}]" if ":" in host else host
                suffix = "+tls" if target.get("tls") else ""
                out.append(f"{title}={host}:{target['port']}{suffix}")
            else:
                raise ValueError(f"{file}: move-dest {title!r}: use \"HOST:PORT\" or a table")
        return out
    raise ValueError(f"{file}: move-dest must be a list of \"AE=HOST:PORT\" or a table")


def _read_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--config``: its options become the defaults of the others (flags win)."""
    if value is not None:
        try:
            defaults = load_config(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _move_dests(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, MoveTarget]:
    table: dict[str, MoveTarget] = {}
    for text in values:
        tls = text.endswith("+tls")
        try:
            title, target = parse_move_destination(text[:-4] if tls else text)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        table[title] = (target[0], target[1], True) if tls else target
    return table


def _timeout(ctx: click.Context, param: click.Parameter, value: float) -> float | None:
    return None if value == 0 else value


# -- the command ----------------------------------------------------------------------------------

_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
_TIMEOUT = click.FloatRange(min=0)


@click.command("serve", short_help="A small PACS: Storage, Query/Retrieve and Worklist SCP.")
@click.option(
    "--config",
    type=_FILE,
    is_eager=True,
    expose_value=False,
    callback=_read_config,
    metavar="FILE",
    help="Read options from this TOML file (same names as the options; options given "
    "on the command line win).",
)
@port_option
@server_aet_option
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), required=True,
    metavar="DIR", help="Where to store the instances (and the SQLite index); created if missing.",
)
@bind_option
@click.option(
    "--db", metavar="URL",
    help="The index database: postgresql://USER@HOST/DB to share one index between "
    "servers [default: DIR/index.sqlite].",
)
@click.option(
    "--worklist-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
    help="Answer Modality Worklist C-FINDs from the .wl files of DIR.",
)
@click.option(
    "--move-dest", multiple=True, callback=_move_dests, metavar="AE=HOST:PORT",
    help="A C-MOVE destination (repeatable); append +tls to reach it over TLS.",
)
@click.option(
    "--tls-cert", type=_FILE, metavar="FILE", help="Serve TLS with this certificate (PEM)."
)
@click.option(
    "--tls-key", type=_FILE, metavar="FILE", help="The key of --tls-cert, if not in the same file."
)
@click.option(
    "--tls-ca", type=_FILE, metavar="FILE",
    help="Require client certificates issued by these CAs (PEM).",
)
@max_associations_option
@max_pdu_option
@click.option(
    "--acse-timeout", type=_TIMEOUT, default=30.0, show_default=True, callback=_timeout,
    metavar="SECONDS", help="Wait for association messages (0: forever).",
)
@click.option(
    "--dimse-timeout", type=_TIMEOUT, default=30.0, show_default=True, callback=_timeout,
    metavar="SECONDS", help="Wait for DIMSE messages (0: forever).",
)
@click.option(
    "--idle-timeout", type=_TIMEOUT, default=60.0, show_default=True, callback=_timeout,
    metavar="SECONDS", help="Abort an association silent for this long (0: never).",
)
@workers_option
@click.option(
    "--require-called-aet", is_flag=True,
    help="Reject associations whose called AE title is not ours.",
)
@accept_retired_option
@click.option(
    "--no-fsync", is_flag=True,
    help="Answer Success without flushing files and index to disk (faster, not durable).",
)
@click.option(
    "--rescan", is_flag=True,
    help="At start, index the files of DIR the index lacks and drop rows of missing files.",
)
@verbosity_options
def serve_command(
    port: int,
    aet: str,
    directory: Path,
    host: str,
    db: str | None,
    worklist_dir: Path | None,
    move_dest: dict[str, MoveTarget],
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    max_associations: int,
    max_pdu: int,
    acse_timeout: float | None,
    dimse_timeout: float | None,
    idle_timeout: float | None,
    workers: int,
    require_called_aet: bool,
    accept_retired: bool,
    no_fsync: bool,
    rescan: bool,
) -> None:
    """Run a PACS on PORT: store what is sent to it in DIR and answer queries and retrieves.

    Verification, Storage (every storage SOP class; each instance stored as it
    was received, flushed to disk and indexed before Success is answered),
    Query/Retrieve C-FIND, C-GET and C-MOVE in the Patient Root and Study Root
    models (hierarchical and relational queries), and Modality Worklist
    C-FIND with --worklist-dir. Runs in the foreground until SIGTERM or
    Ctrl-C, then aborts open associations and exits with 0. See docs/serve.md.
    """
    if (tls_key is not None or tls_ca is not None) and tls_cert is None:
        raise click.UsageError("--tls-key and --tls-ca need --tls-cert")
    from .pacs.index import database_url

    if db is not None:
        try:
            database_url(db)
        except Exception as exc:
            raise click.BadParameter(str(exc), param_hint="'--db'") from exc
    options = ServeOptions(
        directory=directory,
        port=port,
        ae_title=aet,
        host=host,
        db=db,
        worklist_dir=worklist_dir,
        move_destinations=move_dest,
        tls=ServerTLS(tls_cert, tls_key, tls_ca) if tls_cert is not None else None,
        max_associations=max_associations,
        max_pdu=max_pdu,
        acse_timeout=acse_timeout,
        dimse_timeout=dimse_timeout,
        idle_timeout=idle_timeout,
        workers=workers,
        require_called_aet=require_called_aet,
        accept_retired=accept_retired,
        fsync=not no_fsync,
        rescan=rescan,
    )

    def ready(bound_host: str, bound_port: int) -> None:
        plural = f" ({workers} workers)" if workers > 1 else ""
        index = database_url(options.database).render_as_string(hide_password=True)
        click.echo(
            f"dicomnet serve: listening on {bound_host or '0.0.0.0'}:{bound_port}{plural} "
            f"as {aet!r}, storing in {directory}, index {index}",
            err=True,
        )

    try:
        code = serve(options, on_ready=ready)
    except (OSError, ValueError) as exc:
        LOGGER.error("Cannot serve on port %d: %s", port, exc)
        code = 2
    except Exception as exc:  # the database cannot be reached, its schema is wrong...
        LOGGER.error("Cannot serve on port %d: %s", port, exc)
        code = 2
    sys.stderr.flush()
    click.get_current_context().exit(code)


if __name__ == "__main__":  # pragma: no cover - python -m dicomnet.contrib.serve
    serve_command()
