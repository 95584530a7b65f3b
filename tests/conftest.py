"""Top-level fixtures: a leak check for tests that open sockets, and a running SCP.

* ``no_leaks`` (autouse for ``tests/e2e`` and for tests marked ``leakcheck``):
  records the threads and the open file descriptors before the test and, after
  every other fixture has been torn down, fails the test if a thread it started
  is still alive or a descriptor it opened is still open. Threads get a short
  grace period spent in ``Thread.join`` (an association thread finishing its
  last close), never in a sleep loop.
* ``scp``: an AE with Verification serving on a free loopback port in a
  background thread, shut down at teardown. ``make_scp`` builds more of them,
  configured by the test.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

VERIFICATION = "1.2.840.10008.1.1"

#: how long, in total, the threads a test started may take to finish after it
THREAD_GRACE = 5.0

_FD_DIR = Path("/proc/self/fd")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "leakcheck: fail the test if it leaves a thread or a file descriptor behind "
        "(automatic for tests/e2e)",
    )


def open_fds() -> dict[int, str]:
    """The process's open file descriptors and what they point at (``socket:[inode]``...)."""
    fds: dict[int, str] = {}
    if not _FD_DIR.is_dir():  # pragma: no cover - not Linux
        return fds
    for entry in os.listdir(_FD_DIR):
        try:
            fds[int(entry)] = os.readlink(_FD_DIR / entry)
        except OSError:  # the listing's own descriptor, closed already
            continue
    return fds


def new_fds(before: dict[int, str]) -> dict[int, str]:
    """Descriptors open now that were not open (to the same object) in ``before``."""
    return {fd: target for fd, target in open_fds().items() if before.get(fd) != target}


def leftover_threads(before: set[threading.Thread], grace: float = THREAD_GRACE) -> list[str]:
    """Threads started since ``before`` that are still alive after joining each one."""
    deadline = time.monotonic() + grace
    alive = []
    for thread in threading.enumerate():
        if thread in before or thread is threading.current_thread():
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            alive.append(repr(thread))
    return alive


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a socket-opening test that leaves a thread or a descriptor behind."""
    path = Path(str(request.node.fspath))
    if "e2e" not in path.parts and request.node.get_closest_marker("leakcheck") is None:
        yield
        return
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    yield
    threads = leftover_threads(threads_before)
    fds = new_fds(fds_before)
    problems = []
    if threads:
        problems.append(f"threads still alive: {threads}")
    if fds:
        problems.append(f"file descriptors still open: {fds}")
    if problems:
        pytest.fail("the test leaked " + "; ".join(problems), pytrace=False)


class SCP:
    """A started association server and its AE (``port`` is the real, free one)."""

    def __init__(self, ae: Any, server: Any) -> None:
        self.ae = ae
        self.server = server
        self.address: tuple[str, int] = server.server_address
        self.port = self.address[1]

    def shutdown(self) -> None:
        self.ae.shutdown()


MakeSCP = Callable[..., SCP]


@pytest.fixture
def make_scp() -> Iterator[MakeSCP]:
    """``make_scp(ae_title="SCP", contexts=[...], handlers=[...], ssl_context=None,
    plugins=None, configure=None, **ae_attributes)``: a started SCP, shut down at teardown."""
    from dicomnet import AE

    started: list[SCP] = []

    def make(
        ae_title: str = "SCP",
        *,
        contexts: Sequence[str] = (VERIFICATION,),
        handlers: Sequence[Any] | None = None,
        ssl_context: Any = None,
        plugins: Sequence[Any] | None = None,
        configure: Callable[[Any], None] | None = None,
        **attributes: Any,
    ) -> SCP:
        ae = AE(ae_title, plugins=plugins)
        for uid in contexts:
            ae.add_supported_context(uid)
        for name, value in attributes.items():
            setattr(ae, name, value)
        if configure is not None:
            configure(ae)
        server = ae.start_server(
            ("127.0.0.1", 0), block=False, ssl_context=ssl_context, evt_handlers=handlers
        )
        scp = SCP(ae, server)
        started.append(scp)
        return scp

    yield make
    for scp in reversed(started):
        scp.shutdown()


@pytest.fixture
def scp(make_scp: MakeSCP) -> SCP:
    """An SCP with Verification on a free loopback port."""
    return make_scp()
