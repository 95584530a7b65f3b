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
The parent forwards SIGTERM/SIGINT to them and waits.

:func:`serve_storage` is the same as an API; :func:`make_storage_ae` builds
the AE of one worker.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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

from ._cli_common import _ae_title, _max_pdu, verbosity_options

__all__ = ["StoreInDirectory", "make_storage_ae", "receive", "serve_storage"]

LOGGER = logging.getLogger("dicomnet.receive")

#: errors that mean "no room" rather than "broken": answered with A700H
_OUT_OF_RESOURCES_ERRNOS = frozenset(
    e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EMFILE, errno.ENFILE) if e
)

#: a worker that dies within this many seconds of starting is not restarted
_CRASH_LOOP_SECONDS = 5.0

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


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


# -- signals ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _stop_signals() -> Iterator[Callable[[], int]]:
    """Catch SIGTERM and SIGINT; yield ``wait()``, which blocks until one arrives.

    The handlers only write the signal number into a pipe that ``wait()``
    reads: nothing runs inside a signal handler but one ``write``. Call from
    the main thread (Python's rule for ``signal.signal``).
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def handler(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.write(write_fd, bytes([signum]))

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def wait() -> int:
        return os.read(read_fd, 1)[0]

    try:
        yield wait
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        os.close(read_fd)
        os.close(write_fd)


# -- listening sockets ------------------------------------------------------------------------


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _socket(host: str, port: int, *, reuse_port: bool, listen: bool) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _serve_one(
    ae: AE, sock: socket.socket, wait: Callable[[], int], on_ready: Callable[[], None]
) -> None:
    """Serve on ``sock`` in a background thread until ``wait()`` returns, then shut down."""
    host, port = sock.getsockname()[:2]
    server = AssociationServer(ae, (host, port), listener=sock)
    # The negotiation policy for ~150 SOP classes x 26 transfer syntaxes takes tens
    # of milliseconds to build: build it now (the AE caches it) rather than in the
    # first association.
    ae._acceptor_config(server.contexts, server.ae_title)
    _release_startup_memory()
    main = threading.main_thread()

    def accept() -> None:
        try:
            server.serve_forever()
        except Exception:
            LOGGER.exception("The association server failed")
        finally:
            if not stopping.is_set():  # wake the main thread: we are done
                signal.pthread_kill(main.ident or 0, signal.SIGTERM)

    stopping = threading.Event()
    thread = threading.Thread(target=accept, name=f"dicomnet-receive-{port}", daemon=True)
    thread.start()
    on_ready()
    try:
        signum = wait()
        LOGGER.info("%s: stopping", signal.Signals(signum).name)
    finally:
        stopping.set()
        server.shutdown()
        thread.join()


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
    is called once every worker listens.

    Returns 0 after a clean stop (every association aborted or finished, no
    temporary file left), 1 if a worker kept failing.
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
    with _stop_signals() as wait:
        if workers == 1:
            sock = _socket(host, port, reuse_port=False, listen=True)
            ae, handler = make_storage_ae(folder, keep_folder_open=True, **options)
            bound = sock.getsockname()[:2]

            def ready() -> None:
                _announce(bound[0], bound[1], 1)
                if on_ready is not None:
                    on_ready(bound[0], bound[1])

            try:
                _serve_one(ae, sock, wait, ready)
            finally:
                handler.close()
            return 0
        return _supervise(folder, host, port, workers, options, wait, on_ready)


def _announce(host: str, port: int, workers: int) -> None:
    suffix = f" with {workers} workers" if workers > 1 else ""
    LOGGER.info("Listening on %s:%d%s", host or "0.0.0.0", port, suffix)


def _supervise(
    folder: Path,
    host: str,
    port: int,
    workers: int,
    options: dict[str, Any],
    wait: Callable[[], int],
    on_ready: Callable[[str, int], None] | None,
) -> int:
    """Fork the workers, forward the stop signal, restart a worker that dies (once it ran)."""
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    # The parent holds the port: bound only (the workers' sockets share it) with
    # SO_REUSEPORT, or the one listening socket every worker inherits without it.
    parent_sock = _socket(host, port, reuse_port=reuse_port, listen=not reuse_port)
    host, port = parent_sock.getsockname()[:2]
    ready_r, ready_w = os.pipe()
    children: dict[int, tuple[int, float]] = {}  # pid -> (worker number, start time)
    stopping = False
    status = 0

    def spawn(number: int) -> None:
        # Signals stay blocked across fork() until the worker has its own handlers:
        # in between, they would be written into the parent's pipe.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:  # the worker
                code = 1
                try:
                    os.close(ready_r)
                    code = _worker(
                        number, folder, host, port, reuse_port, parent_sock, options, ready_w
                    )
                except BaseException:
                    LOGGER.exception("Worker %d failed", number)
                finally:
                    os._exit(code)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        children[pid] = (number, time.monotonic())

    # SIGCHLD wakes the wait too, so that a dead worker is noticed at once.
    previous_chld = signal.signal(signal.SIGCHLD, signal.getsignal(signal.SIGTERM))
    try:
        for number in range(1, workers + 1):
            spawn(number)
        os.close(ready_w)
        ready = 0
        while ready < workers:
            if not os.read(ready_r, 1):
                break
            ready += 1
        os.close(ready_r)
        if ready == workers:
            _announce(host, port, workers)
            if on_ready is not None:
                on_ready(host, port)
        else:
            LOGGER.error("Only %d of %d workers started", ready, workers)
            stopping, status = True, 1
        while children and not stopping:
            signum = wait()
            if signum != signal.SIGCHLD:
                LOGGER.info("%s: stopping the workers", signal.Signals(signum).name)
                break
            for pid, (number, started), code in _reap(children):
                if code == 0:  # told to stop (Ctrl-C reaches the whole process group)
                    LOGGER.info("Worker %d stopped; stopping the others", number)
                    stopping = True
                elif time.monotonic() - started < _CRASH_LOOP_SECONDS:
                    LOGGER.error("Worker %d (pid %d) died at start-up; stopping", number, pid)
                    stopping, status = True, 1
                else:
                    LOGGER.error("Worker %d (pid %d) died; restarting it", number, pid)
                    spawn(number)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in list(children):
            with contextlib.suppress(ChildProcessError):
                _pid, code = os.waitpid(pid, 0)
                if os.waitstatus_to_exitcode(code) != 0:
                    status = status or 1
        signal.signal(signal.SIGCHLD, previous_chld)
        parent_sock.close()
    return status


def _reap(
    children: dict[int, tuple[int, float]],
) -> list[tuple[int, tuple[int, float], int]]:
    """The workers that have exited: ``(pid, (number, start time), exit code)``."""
    dead = []
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if pid in children:
            dead.append((pid, children.pop(pid), os.waitstatus_to_exitcode(status)))
    return dead


def _worker(
    number: int,
    folder: Path,
    host: str,
    port: int,
    reuse_port: bool,
    parent_sock: socket.socket,
    options: dict[str, Any],
    ready_w: int,
) -> int:
    """One worker process: its own AE and server on the shared port, until SIGTERM."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if reuse_port:
        sock = _socket(host, port, reuse_port=True, listen=True)
        parent_sock.close()
    else:
        sock = parent_sock
    with _stop_signals() as wait:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        ae, handler = make_storage_ae(folder, keep_folder_open=True, **options)
        handler.worker = f" [worker {number}, pid {os.getpid()}]"

        def ready() -> None:
            os.write(ready_w, b"r")
            os.close(ready_w)

        try:
            _serve_one(ae, sock, wait, ready)
        finally:
            handler.close()
    return 0


# -- the command ------------------------------------------------------------------------------


@click.command(short_help="Receive instances into a folder (Storage SCP).")
@click.option(
    "--port", "-p", type=click.IntRange(0, 65535), required=True, help="TCP port to listen on."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    metavar="DIR",
    help="Where to store the instances (created if missing).",
)
@click.option(
    "--aet",
    default="DICOMNET",
    show_default=True,
    callback=_ae_title,
    metavar="TITLE",
    help="Our AE title.",
)
@click.option(
    "--bind",
    "host",
    default="",
    metavar="ADDR",
    help="Address to listen on [default: all interfaces].",
)
@click.option(
    "--max-pdu",
    type=int,
    default=16382,
    show_default=True,
    callback=_max_pdu,
    metavar="BYTES",
    help="The largest P-DATA-TF PDU we accept (our Maximum Length); 0 for no limit.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Worker processes sharing the port.",
)
@click.option(
    "--max-associations",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    metavar="N",
    help="Simultaneous associations per worker.",
)
@click.option(
    "--accept-retired", is_flag=True, help="Accept the retired storage SOP classes too."
)
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
