"""Helpers of the Storage receive tests: a receiving SCP, and a C-STORE SCU for any bytes.

* ``receiver(directory=..., threshold=..., handler=...)``: a dicomnet Storage SCP
  on a free loopback port, whose handler stores each instance in ``directory``
  (``event.store()``) unless another handler is given; shut down at teardown.
* :func:`send_store`: one C-STORE-RQ with a data set given as bytes or as an
  iterable of chunks (streamed, never joined), and any Affected SOP Class or
  Instance UID -- the checks of ``Association.send_c_store`` bypassed, so that
  hostile requests can be sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet import AE, evt
from dicomnet.datasets import encode_dataset
from dicomnet.dimse_messages import CStoreRQ

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
HANGING_PROTOCOL = "1.2.840.10008.5.1.4.38.1"
VERIFICATION = "1.2.840.10008.1.1"


def make_dataset(
    sop_class: str = SECONDARY_CAPTURE, *, size: int = 100_000, uid: str | None = None
) -> Dataset:
    """A small instance with ``size`` bytes of (random) pixel data, explicit VR little endian."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid or generate_uid()
    ds.PatientName = "Storage^Test"
    ds.PatientID = "42"
    ds.add_new(0x7FE00010, "OB", os.urandom(size))
    ds.set_original_encoding(False, True)
    return ds


def encoded(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    return encode_dataset(ds, syntax)


class Receiver:
    """A started Storage SCP and what its handler saw."""

    def __init__(self, ae: AE, server: Any, directory: Path) -> None:
        self.ae = ae
        self.server = server
        self.port: int = server.server_address[1]
        self.directory = directory
        self.calls: list[dict[str, Any]] = []

    def associate(
        self,
        contexts: Sequence[str] = (SECONDARY_CAPTURE,),
        syntax: str = ExplicitVRLittleEndian,
        **kwargs: Any,
    ) -> Any:
        scu = AE("STORESCU")
        for uid in contexts:
            scu.add_requested_context(uid, syntax)
        assoc = scu.associate("127.0.0.1", self.port, ae_title="STORESCP", **kwargs)
        assert assoc.is_established
        self._scus.append(scu)
        return assoc

    _scus: list[AE]


MakeReceiver = Callable[..., Receiver]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[MakeReceiver]:
    made: list[Receiver] = []

    def make(
        directory: Path | None = None,
        *,
        threshold: int | None = 8 * 1024 * 1024,
        spool_directory: Path | None = None,
        handler: Callable[..., Any] | None = None,
        bind_handler: bool = True,
        contexts: Sequence[str] = (SECONDARY_CAPTURE, CT_IMAGE, HANGING_PROTOCOL, VERIFICATION),
        fsync: bool = True,
    ) -> Receiver:
        folder = directory or tmp_path / "received"
        folder.mkdir(parents=True, exist_ok=True)
        ae = AE("STORESCP", plugins=["verification", "storage"])
        ae.spool_threshold = threshold
        ae.spool_directory = spool_directory
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
        for uid in contexts:
            ae.add_supported_context(uid, [ExplicitVRLittleEndian, "1.2.840.10008.1.2"])
        handlers = []
        holder: list[Receiver] = []

        def store(event: Any) -> Any:
            record: dict[str, Any] = {"request": event.request}
            holder[0].calls.append(record)
            if handler is not None:
                return handler(event)
            record["path"] = event.store(folder, fsync=fsync)
            return 0x0000

        if bind_handler:
            handlers.append((evt.EVT_C_STORE, store))
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        rec = Receiver(ae, server, folder)
        rec._scus = []
        holder.append(rec)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        for scu in rec._scus:
            scu.shutdown()
        rec.ae.shutdown()


def send_store(
    assoc: Any,
    data: bytes | Iterable[bytes | memoryview] | None,
    *,
    sop_class: str = SECONDARY_CAPTURE,
    sop_instance: str | None = None,
    context_class: str | None = None,
    message_id: int = 1,
) -> Any:
    """Send one C-STORE-RQ as given; return the C-STORE-RSP (``None`` if none came)."""
    context = assoc._context_for(context_class or sop_class)
    request = CStoreRQ(
        MessageID=message_id,
        AffectedSOPClassUID=sop_class,
        AffectedSOPInstanceUID=sop_instance or generate_uid(),
    )
    for item in assoc._exchange(context, request, data):
        if item is None:
            return None
        return item[0]
    return None


def files_in(directory: Path) -> list[str]:
    """Every entry of ``directory``, hidden ones (temporary files) included."""
    return sorted(os.listdir(directory))
