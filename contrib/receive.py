"""``dicomnet receive``: a Storage SCP writing every received instance to a folder (PS3.4 B).

A Storage (and Non-Patient Object Storage) + Verification SCP that accepts
every storage SOP class in the uncompressed and the common compressed
transfer syntaxes and stores each received instance as one Part 10 file,
``DIR/<SOP Instance UID>.dcm``, holding the data set **exactly as it was
received** behind a File Meta Information group built from the request.

The hot path decodes nothing and copies nothing in user space: each data set
is spooled to a temporary file in DIR as its fragments arrive (the AE's
``spool_threshold`` is 0), then flushed, renamed into place and the folder
flushed -- and only then is Success sent (``event.store()``). Memory does not
grow with the size of the instances.

``--workers N`` runs N processes, each a full SCP, sharing the listening port
(``SO_REUSEPORT`` where the system has it, so that the kernel spreads the
connections over the workers; else one listening socket inherited by all).
The parent stops them on SIGTERM/SIGINT and waits; a worker that dies after
running a while is restarted (:mod:`dicomnet.contrib._workers`).

:func:`serve_storage` is the same as an API; :func:`make_storage_ae` builds
the AE of one worker.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from dicomnet import AE, evt
from dicomnet.events import Event
from dicomnet.plugins.storage import (
    COMMON_TRANSFER_SYNTAXES,
    OUT_OF_RESOURCES,
    add_storage_contexts,
)
from dicomnet.server import AssociationServer
from dicomnet.sop_class import Verification
from dicomnet.spool import Folder, sync_directory

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

__all__ = ["StoreInDirectory", "make_storage_ae", "receive", "serve_storage"]

LOGGER = logging.getLogger("dicomnet.receive")

#: errors that mean "no room" rather than "broken": answered with A700H
_OUT_OF_RESOURCES_ERRNOS = frozenset(
    e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EMFILE, errno.ENFILE) if e
)


class StoreInDirectory:
    """The ``EVT_C_STORE`` handler of ``dicomnet receive``: store durably in ``directory``.

    Returns Success (0000H) once the instance is on disk (``event.store()``);
    A700H *Refused: out of resources* when the disk or the quota is full; any
    other error propagates (the SCP answers C211H and logs it). With
    ``fsync=False`` it neither flushes nor, through its ``fsync`` attribute,
    lets the storage plugin's sink start write-back while an instance arrives.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, fsync: bool = True, keep_open: bool = False
    ) -> None:
        self.directory = os.fspath(directory)
        self.fsync = fsync
        self.worker = ""
        # flushing the folder after each rename through one descriptor kept open
        # (close() it) rather than opening and closing the folder for every file
        self._folder = Folder(directory) if keep_open and fsync else None

    def close(self) -> None:
        """Close the folder's descriptor, if one is kept open. Idempotent."""
        if self._folder is not None:
            self._folder.close()

    def __call__(self, event: Event) -> Any:
        try:
            where = self._folder if self._folder is not None else self.directory
            path = event.store(where, fsync=self.fsync)
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES_ERRNOS:
                raise
            LOGGER.error("Cannot store %s: %s", event.request.AffectedSOPInstanceUID, exc)
            return OUT_OF_RESOURCES
        if LOGGER.isEnabledFor(logging.INFO):
            assoc = event.assoc  # the peer: the requestor, or the acceptor of our C-GET
            peer = assoc.acceptor if assoc.is_requestor else assoc.requestor
            LOGGER.info("Stored %s from %r%s", path.name, peer.ae_title, self.worker)
        return 0x0000


def make_storage_ae(
    directory: str | os.PathLike[str],
    *,
    ae_title: str = "DICOMNET",
    max_pdu: int = 16382,
    max_associations: int = 10,
    fsync: bool = True,
    accept_retired: bool = False,
    transfer_syntaxes: Sequence[str] = COMMON_TRANSFER_SYNTAXES,
    keep_folder_open: bool = False,
) -> tuple[AE, StoreInDirectory]:
    """The AE of one ``dicomnet receive`` worker, and its ``EVT_C_STORE`` handler (bound).

    Verification and every storage SOP class (retired ones with
    ``accept_retired``) in ``transfer_syntaxes``; data sets spooled straight
    to ``directory`` (same file system: storing is a rename). With
    ``keep_folder_open`` the handler flushes the folder through a descriptor it
    keeps open: ``close()`` it after the AE is shut down.
    """
    ae = AE(ae_title, plugins=["verification", "storage"])
    ae.maximum_pdu_size = max_pdu
    ae.maximum_associations = max_associations
    ae.spool_threshold = 0
    ae.spool_directory = os.fspath(directory)
    add_storage_contexts(ae, transfer_syntaxes, retired=accept_retired)
    ae.add_supported_context(Verification)
    handler = StoreInDirectory(directory, fsync=fsync, keep_open=keep_folder_open)
    ae.bind(evt.EVT_C_STORE, handler)
    return ae, handler


def _release_startup_memory() -> None:
    """Hand the memory that start-up freed (imports, the negotiation policy) back to the system.

    glibc keeps freed memory in its heaps; ``malloc_trim`` returns the free
    pages, a few MiB of a worker's resident set. Elsewhere nothing happens.
    """
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc
        pass


# -- the API ----------------------------------------------------------------------------------


def serve_storage(
    directory: str | os.PathLike[str],
    port: int,
    *,
    host: str = "",
    ae_title: str = "DICOMNET",
    workers: int = 1,
    max_pdu: int = 16382,
    max_associations: int = 10,
    fsync: bool = True,
    accept_retired: bool = False,
    on_ready: Callable[[str, int], None] | None = None,
) -> int:
    """Receive instances into ``directory`` until SIGTERM or SIGINT; return the exit status.

    ``workers`` processes (forked; call this from the main thread of a
    process that runs no other thread) each serve up to ``max_associations``
    associations at once, so the whole receiver takes ``workers *
    max_associations``. ``port`` 0 picks a free port. ``on_ready(host, port)``
    is called once every worker listens. The process model (signals, restart
    of a worker, exit) is :mod:`dicomnet.contrib._workers`'.

    Returns 0 after a clean stop (every association aborted or finished, no
    temporary file left), 1 if the server failed or a worker kept failing.
    """
    if workers < 1:
        raise ValueError("'workers' must be >= 1")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    sync_directory(folder.parent if folder.parent != folder else folder)
    options: dict[str, Any] = {
        "ae_title": ae_title,
        "max_pdu": max_pdu,
        "max_associations": max_associations,
        "fsync": fsync,
        "accept_retired": accept_retired,
    }

    def serve_process(
        listener: socket.socket | None,
        signals: _workers.Signals,
        ready: Callable[[str, int], None],
        worker: int | None,
    ) -> int:
        ae, handler = make_storage_ae(folder, keep_folder_open=True, **options)
        if worker is not None:
            handler.worker = f" [worker {worker}, pid {os.getpid()}]"
        try:
            server = AssociationServer(ae, (host, port), listener=listener)
            # The negotiation policy for ~150 SOP classes x 26 transfer syntaxes takes
            # tens of milliseconds to build: build it now (the AE caches it) rather than
            # in the first association.
            ae._acceptor_config(server.contexts, server.ae_title)
            _release_startup_memory()
            return _workers.serve_until_stopped(
                server, signals, ready, logger=LOGGER, name="dicomnet-receive"
            )
        finally:
            handler.close()

    return _workers.run(
        serve_process, workers=workers, host=host, port=port, logger=LOGGER, on_ready=on_ready
    )


# -- the command ------------------------------------------------------------------------------


@click.command(short_help="Receive instances into a folder (Storage SCP).")
@port_option
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    metavar="DIR",
    help="Where to store the instances (created if missing).",
)
@server_aet_option
@bind_option
@max_pdu_option
@workers_option
@max_associations_option
@accept_retired_option
@click.option(
    "--no-fsync",
    is_flag=True,
    help="Do not flush each file to disk before answering Success (faster, not durable).",
)
@verbosity_options
def receive(
    port: int,
    directory: Path,
    aet: str,
    host: str,
    max_pdu: int,
    workers: int,
    max_associations: int,
    accept_retired: bool,
    no_fsync: bool,
) -> None:
    """Receive DICOM instances (C-STORE) and store each one in DIR as <SOP Instance UID>.dcm.

    Accepts every storage SOP class in the uncompressed and the common
    compressed transfer syntaxes, and Verification (C-ECHO). Each file holds
    the data set exactly as received; it is flushed to disk and renamed into
    place before Success is answered. Runs in the foreground until SIGTERM or
    Ctrl-C, then aborts open associations and exits with 0.
    """
    def ready(bound_host: str, bound_port: int) -> None:
        where = f"{bound_host or '0.0.0.0'}:{bound_port}"
        plural = f" ({workers} workers)" if workers > 1 else ""
        click.echo(
            f"dicomnet receive: listening on {where}{plural}, storing in {directory}", err=True
        )

    try:
        code = serve_storage(
            directory,
            port,
            host=host,
            ae_title=aet,
            workers=workers,
            max_pdu=max_pdu,
            max_associations=max_associations,
            fsync=not no_fsync,
            accept_retired=accept_retired,
            on_ready=ready,
        )
    except OSError as exc:
        LOGGER.error("Cannot receive on port %d into %s: %s", port, directory, exc)
        code = 2
    sys.stderr.flush()
    click.get_current_context().exit(code)


if __name__ == "__main__":  # pragma: no cover - python -m dicomnet.contrib.receive
    receive()
