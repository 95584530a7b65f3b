"""The data set sink starts early write-back only for a receiver that flushes.

``SpoolSink`` hints the kernel to start writing a spooled data set while it
arrives (``posix_fadvise``), so that the flush before a durable Success waits
for the tail only. A receiver that does not flush -- ``dicomnet receive
--no-fsync``, ``StoreInDirectory(fsync=False)`` -- must not pay for that
hint: the storage plugin's sink asks the bound ``EVT_C_STORE`` handler.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from dicomnet import spool
from dicomnet.contrib.receive import make_storage_ae
from dicomnet.spool import FileMetaInfo, SpooledDataset, SpoolSink

from .conftest import SECONDARY_CAPTURE, encoded, make_dataset, send_store

pytestmark = pytest.mark.skipif(
    not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this platform"
)


@pytest.fixture
def hints(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every write-back hint the spool gives: ``(offset, length)``."""
    seen: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        seen.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(spool.os, "posix_fadvise", record)
    return seen


META = FileMetaInfo(SECONDARY_CAPTURE, "1.2.3", "1.2.840.10008.1.2.1", "1.2.3.4")


@pytest.mark.parametrize("writeback", [True, False])
def test_the_sink_hints_only_when_asked(
    writeback: bool, tmp_path: Path, hints: list[tuple[int, int]]
) -> None:
    sink = SpoolSink(META, tmp_path, 0, buffer_size=4096, writeback=writeback)
    for _ in range(10):
        sink.write(memoryview(b"x" * 3000))
    result = sink.finish()
    assert isinstance(result, SpooledDataset)
    try:
        assert result.read_dataset() == b"x" * 30000
    finally:
        result.discard()
    assert bool(hints) is writeback


@pytest.mark.parametrize("fsync", [True, False])
def test_receive_hints_only_when_it_flushes(
    fsync: bool, tmp_path: Path, hints: list[tuple[int, int]]
) -> None:
    from dicomnet import AE

    ae, _handler = make_storage_ae(tmp_path, ae_title="STORESCP", fsync=fsync)
    server = ae.start_server(("127.0.0.1", 0), block=False)
    scu: Any = AE("STORESCU")
    scu.add_requested_context(SECONDARY_CAPTURE, "1.2.840.10008.1.2.1")
    try:
        assoc = scu.associate("127.0.0.1", server.server_address[1], ae_title="STORESCP")
        assert assoc.is_established
        uid = generate_uid()
        response = send_store(assoc, encoded(make_dataset(size=600_000)), sop_instance=uid)
        assoc.release()
        assert response is not None and response.Status == 0
        assert (tmp_path / f"{uid}.dcm").exists()
    finally:
        scu.shutdown()
        ae.shutdown()
    assert bool(hints) is fsync
