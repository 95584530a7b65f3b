"""A C-STORE data set sent in one long P-DATA-TF reaches the sink as it arrives (PS3.8 9.3.5).

A peer announcing a large maximum PDU length (1 MiB) sends a 526 kB instance
as one PDU. The SCP must not wait for the whole PDU before handing its data to
the data set sink: here a scripted peer sends the command and part of the
data PDU, and the sink must have received that part before the rest is sent.
Then the rest comes, and the instance is stored exactly as sent.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet import AE, evt
from dicomnet.dimse import fragment_message
from dicomnet.dimse_messages import CStoreRQ, CStoreRSP
from dicomnet.plugins import storage as storage_plugin
from dicomnet.spool import SpoolSink
from tests.e2e.peers import WAIT, RawPeer, verification_rq

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MIB = 1024 * 1024


class _ObservedSink(SpoolSink):
    """A SpoolSink that says when a given number of data set bytes has reached it."""

    arrived = threading.Event()
    wanted = 0

    def write(self, data: memoryview) -> None:
        super().write(data)
        if self.nbytes >= type(self).wanted:
            type(self).arrived.set()


@pytest.fixture
def scp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Path]]:
    monkeypatch.setattr(storage_plugin, "SpoolSink", _ObservedSink)
    folder = tmp_path / "stored"
    folder.mkdir()
    ae = AE("STORESCP", plugins=["storage"])
    ae.maximum_pdu_size = MIB
    ae.spool_threshold = 0
    ae.spool_directory = folder
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_supported_context(CT_IMAGE, [ExplicitVRLittleEndian, "1.2.840.10008.1.2"])

    def store(event: Any) -> int:
        event.store(folder)
        return 0x0000

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, store)]
    )
    yield server, folder
    ae.shutdown()


def test_a_long_pdu_is_written_while_it_arrives(scp: tuple[Any, Path]) -> None:
    server, folder = scp
    dataset = os.urandom(526_000)
    uid = generate_uid()
    request = CStoreRQ(MessageID=1, AffectedSOPClassUID=CT_IMAGE, AffectedSOPInstanceUID=uid)
    stream = b"".join(
        bytes(buffer)
        for batch in fragment_message(1, request, dataset, MIB)
        for buffer in batch
    )
    assert len(stream) < len(dataset) + 300  # the command PDU, then one data PDU
    head = len(stream) - len(dataset) + 300_000  # the command and 300 kB of the data set
    _ObservedSink.arrived.clear()
    _ObservedSink.wanted = 300_000
    with RawPeer.connect(server.server_address) as peer:
        ac = peer.associate(
            verification_rq(called="STORESCP", abstract_syntax=CT_IMAGE, max_pdu=MIB)
        )
        assert ac.presentation_contexts[0].result == 0
        peer.send(stream[:head])
        assert _ObservedSink.arrived.wait(WAIT), "the sink got nothing before the PDU was whole"
        assert not list(folder.glob("*.dcm"))  # not complete: not stored
        peer.send(stream[head:])
        response = peer.read_dimse()
        assert isinstance(response, CStoreRSP) and response.Status == 0
    stored = (folder / f"{uid}.dcm").read_bytes()
    assert stored.endswith(dataset)
