"""Fixtures of the ``dicomnet serve`` tests: servers in this process and as processes, SCUs.

* ``make_pacs(**options)``: a :class:`~dicomnet.contrib.serve.PacsServer` on a free
  loopback port, storing in a folder of ``tmp_path``; shut down at teardown.
* ``make_scu(title, contexts)``: a requesting AE, shut down at teardown.
* :class:`ServeProcess`: ``dicomnet serve`` as a subprocess on port 0; the port it
  bound is read from its "listening on" line, its stderr collected line by line.
* ``pg_cluster``: the private PostgreSQL cluster of ``tests/pacs/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomnet import AE, evt
from dicomnet.contrib.serve import PacsServer, ServeOptions
from dicomnet.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from dicomnet.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from tests.pacs.conftest import CT, MR, SR, pg_cluster, small_dataset  # noqa: F401

PATIENT_FIND = str(PatientRootQueryRetrieveInformationModelFind)
PATIENT_GET = str(PatientRootQueryRetrieveInformationModelGet)
PATIENT_MOVE = str(PatientRootQueryRetrieveInformationModelMove)
STUDY_FIND = str(StudyRootQueryRetrieveInformationModelFind)
STUDY_GET = str(StudyRootQueryRetrieveInformationModelGet)
STUDY_MOVE = str(StudyRootQueryRetrieveInformationModelMove)
QR_MODELS = (PATIENT_FIND, PATIENT_GET, PATIENT_MOVE, STUDY_FIND, STUDY_GET, STUDY_MOVE)
STORAGE = (CT, MR, SR)
VERIFICATION = "1.2.840.10008.1.1"
TITLE = "PACS"

#: seconds any wait of a test may take before it fails
WAIT = 30.0


def instances() -> list[Dataset]:
    """:func:`small_dataset` as instances to send: fake pixels, Explicit VR Little Endian."""
    out = []
    for ds in small_dataset():
        ds.Rows = ds.Columns = 2
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.SamplesPerPixel = 1
        ds.PixelRepresentation = 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = bytes(4)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out.append(ds)
    return out


def query(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def scp_role(uid: str) -> SCP_SCU_RoleSelectionNegotiation:
    """A role item proposing that we be the Storage SCP for ``uid`` (a C-GET SCU)."""
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = uid
    role.scu_role = False
    role.scp_role = True
    return role


class Pacs:
    """A started in-process server: its options, address and :class:`PacsServer`."""

    def __init__(self, server: PacsServer) -> None:
        self.server = server
        self.host, self.port = server.address
        self.options = server.options
        self.directory = Path(server.options.directory)
        self.index = server.index


MakePacs = Callable[..., Pacs]


@pytest.fixture
def make_pacs(tmp_path: Path) -> Iterator[MakePacs]:
    """``make_pacs(directory=..., **ServeOptions fields)``: a started server."""
    started: list[PacsServer] = []

    def make(**options: Any) -> Pacs:
        options.setdefault("directory", tmp_path / "pacs")
        options.setdefault("ae_title", TITLE)
        options = {"host": "127.0.0.1", "port": 0, **options}
        server = PacsServer(ServeOptions(**options))
        started.append(server)
        server.start()
        return Pacs(server)

    yield make
    for server in reversed(started):
        server.shutdown()


MakeSCU = Callable[..., AE]


@pytest.fixture
def make_scu() -> Iterator[MakeSCU]:
    """``make_scu(title="SCU", contexts=[...])``: a requesting AE, shut down at teardown."""
    made: list[AE] = []

    def make(title: str = "SCU", contexts: Sequence[str] = (*STORAGE, *QR_MODELS)) -> AE:
        ae = AE(title)
        for uid in contexts:
            if uid in STORAGE:  # explicit VR first: what the instances are in
                ae.add_requested_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
            else:
                ae.add_requested_context(uid)
        made.append(ae)
        return ae

    yield make
    for ae in made:
        ae.shutdown()


def associate(scu: AE, host: str, port: int, **kwargs: Any) -> Any:
    kwargs.setdefault("ae_title", TITLE)
    assoc = scu.associate(host, port, **kwargs)
    assert assoc.is_established
    return assoc


def store(scu: AE, host: str, port: int, datasets: Sequence[Dataset]) -> list[int]:
    """C-STORE each data set on one association; the statuses."""
    assoc = associate(scu, host, port)
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def find(
    scu: AE, host: str, port: int, identifier: Dataset, model: str = STUDY_FIND, **kwargs: Any
) -> tuple[list[Dataset], Dataset]:
    """The matches of a C-FIND, and its final status."""
    assoc = associate(scu, host, port, **kwargs)
    try:
        responses = list(assoc.send_c_find(identifier, model))
    finally:
        assoc.release()
    matches = [ident for status, ident in responses if status.Status in (0xFF00, 0xFF01)]
    assert all(ident is not None for ident in matches)
    return matches, responses[-1][0]


def get(
    scu: AE, host: str, port: int, identifier: Dataset, model: str = STUDY_GET
) -> tuple[list[Any], Dataset]:
    """C-GET: the events of the C-STOREs received, and the final status."""
    received: list[Any] = []

    def on_store(event: Any) -> int:
        received.append(
            (event.dataset, str(event.context.transfer_syntax), event.encoded_dataset(False))
        )
        return 0x0000

    assoc = associate(
        scu, host, port,
        ext_neg=[scp_role(uid) for uid in STORAGE],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )  # fmt: skip
    try:
        responses = list(assoc.send_c_get(identifier, model))
    finally:
        assoc.release()
    return received, responses[-1][0]


# --- dicomnet serve as a process -------------------------------------------------------------


class ServeProcess:
    """``dicomnet serve`` (or ``command``) in a subprocess; stderr collected line by line."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, command: str = "serve"
    ) -> None:
        self.argv = [sys.executable, "-m", "dicomnet.contrib.cli", command, *args]
        self.proc = subprocess.Popen(
            self.argv,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: workers are killed too
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.host = ""
        self.port = 0

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

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """The first stderr line matching ``pattern`` (waits for it; fails if the process ends)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    found = regex.search(line)
                    if found:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise AssertionError(f"never saw /{pattern}/ in:\n{self.stderr}")
                self._cond.wait(remaining)

    def ready(self) -> ServeProcess:
        """Wait for the "listening on HOST:PORT" line; learn the port."""
        found = self.wait_for(r"listening on (\S+):(\d+)")
        self.host, self.port = "127.0.0.1", int(found.group(2))
        return self

    def wait(self, timeout: float = WAIT) -> int:
        """The exit status (the process is killed, and the test fails, after ``timeout``)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"dicomnet serve did not stop:\n{self.stderr}") from None
        self._reader.join(WAIT)
        return code

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(WAIT)


StartServe = Callable[..., ServeProcess]


@pytest.fixture
def start_serve() -> Iterator[StartServe]:
    """``start_serve(*args, ready=True, command="serve")``: ``dicomnet serve ARGS``
    (``dicomnet receive`` prints the same "listening on" line), killed at teardown."""
    started: list[ServeProcess] = []

    def start(
        *args: str,
        ready: bool = True,
        env: dict[str, str] | None = None,
        command: str = "serve",
    ) -> ServeProcess:
        proc = ServeProcess(*args, env=env, command=command)
        started.append(proc)
        return proc.ready() if ready else proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.kill()
        else:
            proc._reader.join(WAIT)
        if proc.proc.stderr is not None:
            proc.proc.stderr.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A CA, a server certificate (localhost, 127.0.0.1) and a client certificate
    (``tests/test_cli.py``'s): ``pki.path("server.pem")``..."""
    import shutil

    from ..test_cli import PKI

    try:
        import cryptography  # noqa: F401

        generator = "cryptography"
    except ImportError:  # pragma: no cover - then openssl
        if shutil.which("openssl") is None:
            pytest.skip("neither cryptography nor openssl is available to make certificates")
        generator = "openssl"
    return PKI(tmp_path_factory.mktemp("pki"), generator)
