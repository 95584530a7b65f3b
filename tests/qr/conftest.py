"""Fixtures of the query/retrieve tests: SCPs and SCUs over loopback, instances in memory.

Every test module here is leak-checked (``pytestmark = pytest.mark.leakcheck``, see
``tests/conftest.py``):
servers are shut down and associations released or aborted at teardown, and a
thread or socket left behind fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet import AE
from dicomnet.sop_class import (
    CTImageStorage,
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

FIND = str(StudyRootQueryRetrieveInformationModelFind)
GET = str(StudyRootQueryRetrieveInformationModelGet)
MOVE = str(StudyRootQueryRetrieveInformationModelMove)
CT = str(CTImageStorage)
MR = str(MRImageStorage)

#: seconds any wait in a test may take before the test fails
WAIT = 10.0


def instance(sop_class: str = CT, number: int = 1, **attributes: Any) -> Dataset:
    """A small composite instance of ``sop_class`` (no pixel data)."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = attributes.pop("StudyInstanceUID", "1.2.3.4")
    ds.SeriesInstanceUID = attributes.pop("SeriesInstanceUID", "1.2.3.4.5")
    ds.PatientID = attributes.pop("PatientID", "PAT1")
    ds.PatientName = "Test^Patient"
    ds.InstanceNumber = number
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def with_meta(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> Dataset:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def query(level: str = "STUDY", **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


class Peer:
    """A started server and its AE (``port`` is the real, free one)."""

    def __init__(self, ae: AE, server: Any) -> None:
        self.ae = ae
        self.server = server
        self.port: int = server.server_address[1]
        self.title = ae.ae_title


MakeServer = Callable[..., Peer]


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    """``make_server(title, contexts=[uid or (uid, kwargs)], handlers=[...], **ae_attributes)``."""
    started: list[Peer] = []

    def make(
        title: str = "QRSCP",
        *,
        contexts: Sequence[str | tuple[str, dict[str, Any]]] = (FIND, GET, MOVE),
        handlers: Sequence[Any] = (),
        plugins: Sequence[Any] | None = None,
        configure: Callable[[AE], None] | None = None,
        **attributes: Any,
    ) -> Peer:
        ae = AE(title, plugins=plugins)
        for entry in contexts:
            uid, kwargs = (entry, {}) if isinstance(entry, str) else entry
            ae.add_supported_context(uid, **kwargs)
        for name, value in attributes.items():
            setattr(ae, name, value)
        if configure is not None:
            configure(ae)
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=list(handlers))
        assert server is not None
        peer = Peer(ae, server)
        started.append(peer)
        return peer

    yield make
    for peer in reversed(started):
        peer.ae.shutdown()


MakeSCU = Callable[..., AE]


@pytest.fixture
def make_scu() -> Iterator[MakeSCU]:
    """``make_scu(title, contexts=[...])``: a requesting AE, shut down at teardown."""
    made: list[AE] = []

    def make(
        title: str = "SCU", *, contexts: Sequence[str] = (FIND, GET, MOVE), **attrs: Any
    ) -> AE:
        ae = AE(title)
        for uid in contexts:
            ae.add_requested_context(uid)
        for name, value in attrs.items():
            setattr(ae, name, value)
        made.append(ae)
        return ae

    yield make
    for ae in made:
        ae.shutdown()


def associate(scu: AE, peer: Peer, **kwargs: Any) -> Any:
    assoc = scu.associate("127.0.0.1", peer.port, ae_title=peer.title, **kwargs)
    assert assoc.is_established
    return assoc
