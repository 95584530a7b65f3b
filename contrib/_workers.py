"""Prefork worker processes sharing one listening port: how ``receive`` and ``serve`` run.

``dicomnet receive`` and ``dicomnet serve`` run in the foreground until
SIGTERM or SIGINT. With ``--workers N`` (N > 1) the process forks N workers,
each a complete server, all listening on one port: with ``SO_REUSEPORT`` each
worker has a listening socket of its own and the kernel spreads the
connections over them while the parent holds the port with a socket that is
bound but does not listen; without it the parent's one listening socket is
inherited by every worker. :func:`run` is that process model; the command
gives it a :class:`ServeProcess`, the function that builds and runs one server
in the calling process.

The policy, identical for both commands:

* **Start-up.** The parent waits until every worker listens (each writes one
  byte into a pipe) before it announces the server (``on_ready``); if one
  exits before, all are stopped and :func:`run` returns 1.
* **Signals.** Nothing runs in a signal handler but one ``write`` into a pipe
  (:class:`Signals`). SIGTERM/SIGINT stop the parent, which sends SIGTERM to
  every worker and waits for them; SIGCHLD wakes it when a worker exits.
  Signals stay blocked across ``fork()`` until the worker has its own
  handlers, so that none is lost or handled by the parent's.
* **Restart and reap.** A worker that exits with 0 was told to stop (Ctrl-C
  reaches the whole process group): the others are stopped and :func:`run`
  returns 0. A worker that dies within :data:`CRASH_LOOP_SECONDS` of its start
  stops them all (a crash loop: restarting would not help) and :func:`run`
  returns 1; one that dies after running a while is restarted under its
  number.
* **Clean exit.** :func:`run` returns only when every worker has been reaped:
  0 after a stop signal, 1 when the server or a worker failed. The children
  are stopped and reaped even when the parent itself fails.

Where the two commands' former copies differed, the better behaviour was kept:

* A restarted worker gets no start-up pipe (``serve``). ``receive`` had it
  close and write the descriptors the parent had already closed: the new
  worker failed at once (EBADF), was seen dying at start-up, and so the death
  of one worker stopped the whole receiver instead of being restarted. A
  first-generation worker closes the pipe's read end (``receive``), and every
  worker closes the parent's signal pipe (``serve``).
* A server whose accepting thread fails wakes the main thread with no signal
  and the process exits with 1 (``serve``); ``receive`` sent itself SIGTERM
  and so exited with 0, as after a requested stop.
* The workers are stopped and reaped in a ``finally`` (``receive``), so that
  an exception in the parent (a failed ``fork()``) leaves no orphan.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from dicomnet.server import AssociationServer

__all__ = [
    "CRASH_LOOP_SECONDS",
    "STOP_SIGNALS",
    "ServeProcess",
    "Signals",
    "listening_socket",
    "run",
    "serve_until_stopped",
    "signal_name",
]

#: the signals that stop a server (and its workers)
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)

#: a worker that dies within this many seconds of its start is not restarted: it stops all
CRASH_LOOP_SECONDS: Final = 5.0

_BLOCKED: Final = frozenset({*STOP_SIGNALS, signal.SIGCHLD})


class Signals:
    """Signals written to a pipe as they arrive; :meth:`wait` reads the next one.

    Nothing runs in the signal handler but one ``write``. Create and close from
    the main thread (Python's rule for ``signal.signal``); closing restores the
    previous handlers. A context manager.
    """

    def __init__(self, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous = {sig: signal.signal(sig, self._handler) for sig in signals}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.wake(signum)

    def wake(self, value: int = 0) -> None:
        """Wake :meth:`wait` with ``value`` (0: from the program, not a signal)."""
        with contextlib.suppress(OSError):
            os.write(self._write, bytes([value]))

    def wait(self) -> int:
        """Block until a signal (its number) or :meth:`wake` (its value) arrives."""
        return os.read(self._read, 1)[0]

    def close(self) -> None:
        """Restore the previous handlers and close the pipe."""
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        os.close(self._read)
        os.close(self._write)

    def __enter__(self) -> Signals:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for SIGTERM...; ``"stop"`` for a wake-up by the program (0)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "stop"


def listening_socket(
    host: str, port: int, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` (IPv6 if ``host`` has a colon).

    With ``reuse_port`` several sockets may be bound to the port; without
    ``listen`` it only holds the port (a listening socket would take
    connections nobody accepts).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
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


def serve_until_stopped(
    server: AssociationServer,
    signals: Signals,
    on_ready: Callable[[str, int], None],
    *,
    logger: logging.Logger,
    name: str,
) -> int:
    """Accept associations in a background thread until a stop signal; then shut down.

    ``on_ready(host, port)`` is called once the thread runs. Returns 0 after a
    stop signal, 1 when the accepting thread ended by itself (it failed): it
    wakes :meth:`Signals.wait` with no signal. ``server.shutdown()`` aborts
    the associations still open.
    """
    stopping = threading.Event()

    def accept() -> None:
        try:
            server.serve_forever()
        except Exception:
            logger.exception("The association server failed")
        finally:
            if not stopping.is_set():  # wake the main thread: we are done
                signals.wake(0)

    host, port = server.server_address
    thread = threading.Thread(target=accept, name=f"{name}-{port}", daemon=True)
    thread.start()
    try:
        on_ready(host, port)
        signum = signals.wait()
        logger.info("%s: stopping", signal_name(signum))
        return 0 if signum else 1
    finally:
        stopping.set()
        server.shutdown()
        thread.join()


class ServeProcess(Protocol):
    """Build and run one server in the calling process until a stop signal; its exit status.

    ``listener`` is the listening socket to serve on (``None``: bind the
    command's address); ``signals`` is what to wait on (with
    :func:`serve_until_stopped`); ``ready(host, port)`` is to be called once it
    listens; ``worker`` is the worker's number (1 to N), ``None`` when the
    server runs in the main process (``--workers 1``).
    """

    def __call__(
        self,
        listener: socket.socket | None,
        signals: Signals,
        ready: Callable[[str, int], None],
        worker: int | None,
    ) -> int: ...


def run(
    serve_process: ServeProcess,
    *,
    workers: int,
    host: str,
    port: int,
    logger: logging.Logger,
    on_ready: Callable[[str, int], None] | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT with ``workers`` processes; the exit status (see the module).

    With one worker, ``serve_process`` runs in this process. Otherwise
    ``workers`` processes are forked: call from the main thread of a process
    that runs no other thread. ``on_ready(host, port)`` is called once every
    worker listens (``port`` is the bound one when 0 was asked).
    """
    if workers < 1:
        raise ValueError("'workers' must be >= 1")

    def ready(bound_host: str, bound_port: int) -> None:
        suffix = f" with {workers} workers" if workers > 1 else ""
        logger.info("Listening on %s:%d%s", bound_host or "0.0.0.0", bound_port, suffix)
        if on_ready is not None:
            on_ready(bound_host, bound_port)

    if workers == 1:
        with Signals() as signals:
            return serve_process(None, signals, ready, None)
    with Signals((*STOP_SIGNALS, signal.SIGCHLD)) as signals:
        return _Supervisor(serve_process, workers, host, port, signals, logger).run(ready)


class _Supervisor:
    """Forks the workers, stops them on a stop signal, restarts one that dies (once it ran)."""

    def __init__(
        self,
        serve_process: ServeProcess,
        workers: int,
        host: str,
        port: int,
        signals: Signals,
        logger: logging.Logger,
    ) -> None:
        self.serve_process = serve_process
        self.workers = workers
        self.signals = signals
        self.logger = logger
        self.reuse_port = hasattr(socket, "SO_REUSEPORT")
        # The parent holds the port: bound only (each worker listens on a socket of
        # its own) with SO_REUSEPORT, else the one listening socket all inherit.
        self.sock = listening_socket(
            host, port, reuse_port=self.reuse_port, listen=not self.reuse_port
        )
        self.host, self.port = self.sock.getsockname()[:2]
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (worker number, start)
        #: the start-up pipe (read end, write end) while the first workers start
        self._startup: tuple[int, int] | None = None

    def run(self, on_ready: Callable[[str, int], None]) -> int:
        status = 1
        try:
            status = self._run(on_ready)
        finally:
            status = self._stop_all() or status
            self.sock.close()
        return status

    def _run(self, on_ready: Callable[[str, int], None]) -> int:
        ready_r, ready_w = self._startup = os.pipe()
        try:
            try:
                for number in range(1, self.workers + 1):
                    self._spawn(number)
            finally:  # the workers hold the write end: EOF once each wrote or died
                self._startup = None
                os.close(ready_w)
            started = 0
            while started < self.workers and os.read(ready_r, 1):
                started += 1
        finally:
            os.close(ready_r)
        if started < self.workers:
            self.logger.error("Only %d of %d workers started", started, self.workers)
            return 1
        on_ready(self.host, self.port)
        while self.children:
            signum = self.signals.wait()
            if signum != signal.SIGCHLD:
                self.logger.info("%s: stopping the workers", signal_name(signum))
                return 0
            for pid, (number, since), code in self._reap():
                if code == 0:  # told to stop (Ctrl-C reaches the whole process group)
                    self.logger.info("Worker %d stopped; stopping the others", number)
                    return 0
                if time.monotonic() - since < CRASH_LOOP_SECONDS:
                    self.logger.error(
                        "Worker %d (pid %d) died at start-up; stopping", number, pid
                    )
                    return 1
                self.logger.error("Worker %d (pid %d) died; restarting it", number, pid)
                self._spawn(number)
        return 0

    def _spawn(self, number: int) -> None:
        # Signals stay blocked across fork() until the worker has its own handlers:
        # in between, they would be written into the parent's pipe.
        signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        try:
            pid = os.fork()
            if pid == 0:  # the worker
                code = 1
                try:
                    code = self._worker(number)
                except BaseException:
                    self.logger.exception("Worker %d failed", number)
                finally:
                    os._exit(code)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _BLOCKED)
        self.children[pid] = (number, time.monotonic())

    def _worker(self, number: int) -> int:
        """One worker process (signals blocked on entry): serve on the shared port."""
        self.signals.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ready_w: int | None = None
        if self._startup is not None:  # a first start, not a restart
            os.close(self._startup[0])
            ready_w = self._startup[1]
        if self.reuse_port:
            listener = listening_socket(self.host, self.port, reuse_port=True)
            self.sock.close()
        else:
            listener = self.sock

        def ready(host: str, port: int) -> None:
            self.logger.debug("Worker %d (pid %d) listening", number, os.getpid())
            if ready_w is not None:
                os.write(ready_w, b"r")
                os.close(ready_w)

        with Signals() as signals:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _BLOCKED)
            return self.serve_process(listener, signals, ready, number)

    def _reap(self) -> list[tuple[int, tuple[int, float], int]]:
        """The workers that have exited: ``(pid, (number, start time), exit code)``."""
        dead = []
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.children:
                dead.append((pid, self.children.pop(pid), os.waitstatus_to_exitcode(status)))
        return dead

    def _stop_all(self) -> int:
        """SIGTERM every worker and wait for each; 1 if one exited with a failure."""
        status = 0
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                _pid, code = os.waitpid(pid, 0)
                if os.waitstatus_to_exitcode(code) != 0:
                    status = 1
        self.children.clear()
        return status
