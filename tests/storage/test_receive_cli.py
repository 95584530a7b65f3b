"""``dicomnet receive`` as a process: storing, signals, workers, bounded memory (PS3.4 B).

Each test runs the receiver in a subprocess on a free port and talks to it with
a dicomnet SCU.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet import AE
from dicomnet.datasets import encode_dataset
from dicomnet.sop_class import Verification

from .conftest import SECONDARY_CAPTURE, encoded, make_dataset, send_store

pytestmark = pytest.mark.timeout(180)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receive_command() -> list[str]:
    """``dicomnet receive`` through the CLI group once registered, else the module itself."""
    try:
        from dicomnet.contrib import cli

        if "receive" in cli.main.commands:
            return [sys.executable, "-m", "dicomnet.contrib.cli", "receive"]
    except ImportError:  # pragma: no cover - no CLI group yet
        pass
    return [sys.executable, "-m", "dicomnet.contrib.receive"]


class ReceiverProcess:
    """``dicomnet receive`` in a subprocess; its stderr is collected line by line."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.port = _free_port()
        self.argv = [
            *receive_command(),
            "--port",
            str(self.port),
            "--dir",
            str(directory),
            "--bind",
            "127.0.0.1",
            *args,
        ]
        self.proc = subprocess.Popen(
            self.argv,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group: a hung worker is killed too
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(r"listening on")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise AssertionError(f"never saw /{pattern}/ in:\n{self.stderr}")
                self._cond.wait(remaining)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"the receiver did not stop:\n{self.stderr}") from None
        self._reader.join(10)
        return code

    def status(self, key: str) -> int:
        """A field of /proc/<pid>/status in KiB (VmHWM: peak resident set size)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)


@pytest.fixture
def start_receiver(tmp_path: Path) -> Iterator[Any]:
    started: list[ReceiverProcess] = []

    def start(*args: str, directory: Path | None = None) -> ReceiverProcess:
        proc = ReceiverProcess(directory or tmp_path / "received", *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):  # the workers too
            os.killpg(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait()


def associate(port: int, *contexts: str) -> Any:
    scu = AE("STORESCU")
    for uid in contexts or (SECONDARY_CAPTURE,):
        scu.add_requested_context(uid, ExplicitVRLittleEndian)
    assoc = scu.associate("127.0.0.1", port, ae_title="DICOMNET")
    assert assoc.is_established
    return assoc


def temp_files(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(".part")]


def test_receive_stores_and_stops_on_sigterm(start_receiver: Any) -> None:
    rec = start_receiver("-v")
    datasets = [make_dataset(size=50_000) for _ in range(5)]
    assoc = associate(rec.port, SECONDARY_CAPTURE, Verification)
    assert assoc.send_c_echo().Status == 0
    for ds in datasets:
        assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    for ds in datasets:
        raw = (rec.directory / f"{ds.SOPInstanceUID}.dcm").read_bytes()
        assert raw.endswith(encoded(ds)) and raw[128:132] == b"DICM"
    assert rec.stop() == 0
    assert "Traceback" not in rec.stderr
    assert sorted(os.listdir(rec.directory)) == sorted(
        f"{ds.SOPInstanceUID}.dcm" for ds in datasets
    )


def test_receive_stops_on_sigint(start_receiver: Any) -> None:
    rec = start_receiver()
    assert rec.stop(signal.SIGINT) == 0
    assert "Traceback" not in rec.stderr


def test_sigterm_mid_transfer_leaves_no_temporary_file(start_receiver: Any) -> None:
    rec = start_receiver()
    assoc = associate(rec.port)
    data = encoded(make_dataset(size=6_000_000))
    stopped: list[int] = []

    def chunks() -> Iterator[bytes]:
        half = len(data) // 2
        for start in range(0, half, 65536):
            yield data[start : min(start + 65536, half)]
        deadline = time.monotonic() + 10
        while not temp_files(rec.directory):
            assert time.monotonic() < deadline, rec.stderr
            time.sleep(0.01)
        stopped.append(rec.stop())  # the receiver aborts the association and exits
        yield data[half:]

    try:
        response = send_store(assoc, chunks())
    except OSError:  # the connection reset under the sender
        response = None
    assoc.abort()
    assert stopped == [0] and response is None
    assert "Traceback" not in rec.stderr
    assert os.listdir(rec.directory) == []


def test_workers_share_the_port(start_receiver: Any) -> None:
    rec = start_receiver("--workers", "2", "-v")
    assert "2 workers" in rec.wait_for("listening on")
    for _ in range(24):
        assoc = associate(rec.port)
        assert assoc.send_c_store(make_dataset(size=1000)).Status == 0
        assoc.release()
    rec.wait_for(r"Stored .*worker")
    workers = set(re.findall(r"\[worker (\d+), pid (\d+)\]", rec.stderr))
    assert {number for number, _pid in workers} == {"1", "2"}, rec.stderr
    assert len(os.listdir(rec.directory)) == 24
    pids = [int(pid) for _number, pid in workers]
    assert rec.stop() == 0
    assert "Traceback" not in rec.stderr
    for pid in pids:  # every worker is gone
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert temp_files(rec.directory) == []


def test_hostile_instance_uids_stay_in_dir(start_receiver: Any, tmp_path: Path) -> None:
    """A peer's Affected SOP Instance UID names no file outside --dir (hash-derived names)."""
    root = tmp_path / "root"
    rec = start_receiver(directory=root / "received")
    assoc = associate(rec.port)
    data = encoded(make_dataset(size=1000))
    hostile = ["../../escaped", "/tmp/absolute", "..", "1.2/../../x"]
    for n, uid in enumerate(hostile, 1):
        response = send_store(assoc, data, sop_instance=uid, message_id=n)
        assert response is not None and response.Status == 0x0000
    assoc.release()
    assert rec.stop() == 0
    everything = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    names = [name for name in everything if name != "received"]
    assert len(names) == len(hostile), everything
    assert all(re.fullmatch(r"received/invalid-uid-[0-9a-f]{40}\.dcm", n) for n in names), names
    assert os.listdir(tmp_path) == ["root"]  # nothing escaped upwards
    assert not Path("/tmp/absolute.dcm").exists()


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [*receive_command(), "--port", "1", "--dir", str(tmp_path), "--aet", "X" * 17],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "AE title" in result.stderr


# -- bounded memory ---------------------------------------------------------------------------

LARGE = 200 * 1024 * 1024


def large_object(size: int, digest: Any) -> tuple[str, Iterator[bytes]]:
    """A Secondary Capture data set with ``size`` bytes of pixel data, as a stream of chunks.

    Never held whole: one 1 MiB block, repeated. ``digest`` is updated with every
    byte yielded.
    """
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Large^Object"
    head = encode_dataset(ds, ExplicitVRLittleEndian) + struct.pack(
        "<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, size
    )
    block = os.urandom(1024 * 1024)

    def chunks() -> Iterator[bytes]:
        digest.update(head)
        yield head
        left = size
        while left:
            piece = block if left >= len(block) else block[:left]
            digest.update(piece)
            yield piece
            left -= len(piece)

    return ds.SOPInstanceUID, chunks()


@pytest.mark.slow
def test_200_mb_object_in_bounded_memory(start_receiver: Any) -> None:
    rec = start_receiver()
    assoc = associate(rec.port)
    # warm up: one small instance, so that the baseline includes everything a store loads
    assert assoc.send_c_store(make_dataset(size=1000)).Status == 0
    baseline = rec.status("VmHWM")
    sent = hashlib.sha256()
    uid, stream = large_object(LARGE, sent)
    response = send_store(assoc, stream, sop_instance=uid)
    assoc.release()
    assert response is not None and response.Status == 0x0000
    peak = rec.status("VmHWM")
    assert rec.stop() == 0
    growth_mib = (peak - baseline) / 1024
    assert growth_mib <= 64, f"peak RSS grew by {growth_mib:.1f} MiB ({baseline} -> {peak} KiB)"
    path = rec.directory / f"{uid}.dcm"
    received = hashlib.sha256()
    with open(path, "rb") as f:
        head = f.read(132 + 12)
        group_length = struct.unpack_from("<I", head, 140)[0]
        f.seek(144 + group_length)
        while block := f.read(1 << 20):
            received.update(block)
    assert received.hexdigest() == sent.hexdigest()
    assert (
        path.stat().st_size
        == 144
        + group_length
        + LARGE
        + len(encode_dataset(_head_only(uid), ExplicitVRLittleEndian))
        + 12
    )


def _head_only(uid: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = uid
    ds.PatientName = "Large^Object"
    return ds
