"""``dicomnet receive --workers N``: a worker that dies after running a while is restarted.

The process model is :mod:`dicomnet.contrib._workers` (shared with ``dicomnet
serve``); its start-up and stop are tested through both commands
(test_receive_cli.py, tests/serve/test_serve_cli.py). Here the receiver runs
with the crash-loop window at 0 s, so that a worker killed at once counts as
one that ran a while.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import test_receive_cli as receive_cli
from .conftest import make_dataset

pytestmark = pytest.mark.timeout(180)

#: ``dicomnet receive`` with no crash-loop window: every dead worker is restarted
_RESTART_ALWAYS = (
    "import dicomnet.contrib._workers as w; w.CRASH_LOOP_SECONDS = 0.0; "
    "from dicomnet.contrib.receive import receive; receive(prog_name='dicomnet receive')"
)


def children(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry))
    return found


@pytest.fixture
def receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[receive_cli.ReceiverProcess]:
    """``dicomnet receive --workers 2 -v`` restarting every worker that dies."""
    monkeypatch.setattr(
        receive_cli, "receive_command", lambda: [sys.executable, "-c", _RESTART_ALWAYS]
    )
    rec = receive_cli.ReceiverProcess(tmp_path / "received", "--workers", "2", "-v")
    yield rec
    with contextlib.suppress(ProcessLookupError):  # the workers too
        os.killpg(rec.proc.pid, signal.SIGKILL)
    rec.proc.wait()


def test_a_worker_dying_after_its_start_is_restarted_and_serves(
    receiver: receive_cli.ReceiverProcess,
) -> None:
    rec = receiver
    first = children(rec.proc.pid)
    assert len(first) == 2, rec.stderr
    killed = min(first)
    os.kill(killed, signal.SIGKILL)
    rec.wait_for(rf"Worker [12] \(pid {killed}\) died; restarting it")
    deadline = time.monotonic() + 30
    while len(now := children(rec.proc.pid)) != 2 or killed in now:
        assert time.monotonic() < deadline, rec.stderr
        time.sleep(0.05)
    (restarted,) = now - first
    # the new worker listens on the shared port: the kernel gives it associations too
    for _ in range(24):
        assoc = receive_cli.associate(rec.port)
        assert assoc.send_c_store(make_dataset(size=1000)).Status == 0
        assoc.release()
    rec.wait_for(rf"Stored .*\[worker [12], pid {restarted}\]")
    assert len(os.listdir(rec.directory)) == 24
    assert rec.stop() == 0
    assert "Traceback" not in rec.stderr
    assert "died at start-up" not in rec.stderr
    assert children(rec.proc.pid) == set()
    assert not re.search(r"Worker \d failed", rec.stderr)
