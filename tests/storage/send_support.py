"""Helpers for the C-STORE send tests: peers that record what arrives, and test files.

* :class:`RecordingSCP` -- a dicomnet AE on a loopback port whose C-STORE SCP is
  a test plugin (:data:`SINK_PLUGIN`), independent of the real storage plugin:
  it records, for each C-STORE, the context's transfer syntax and the data set
  bytes exactly as received (``event.encoded_dataset(include_meta=False)``).
* :class:`WireSink` -- an acceptor written directly on the sans-IO kernel that
  hashes each data set as its fragments arrive and keeps nothing: the peer for
  sending objects of hundreds of megabytes.
* file makers: CT-like images in any native syntax, compressed copies, and a big
  file written by streaming (never held in memory).
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet import AE, _sop_groups, evt
from dicomnet.acse import AcceptorConfig, ContextDefinition, accept_or_reject
from dicomnet.datasets import encode_dataset, part10_header
from dicomnet.dimse import CommandReceived, DatasetFragment, MessageAssembler, fragment_message
from dicomnet.dimse_messages import CStoreRQ, CStoreRSP
from dicomnet.events import EVT_C_STORE
from dicomnet.hookspecs import hookimpl
from dicomnet.presentation import ALL_TRANSFER_SYNTAXES
from dicomnet.service import ServiceCall, ServiceClass, run_intervention
from dicomnet.status import STORAGE_SERVICE_CLASS_STATUS
from dicomnet.ul_events import (
    AssociationRequested,
    ConnectionClosed,
    PDataReceived,
    ReleaseRequested,
)
from dicomnet.upper_layer import UpperLayer

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
NATIVE = (EXPLICIT, IMPLICIT, DEFLATED, BIG_ENDIAN)


# -- an in-process SCP with a test storage plugin ------------------------------------------------


def _sink_scp(call: ServiceCall) -> None:
    request = call.request
    assert isinstance(request, CStoreRQ)
    status, _extra = run_intervention(call, EVT_C_STORE, failure_status=0xC211)
    call.send(
        CStoreRSP(
            MessageIDBeingRespondedTo=request.MessageID,
            AffectedSOPClassUID=request.AffectedSOPClassUID,
            AffectedSOPInstanceUID=request.AffectedSOPInstanceUID,
            Status=status,
        )
    )


SINK_SERVICE = ServiceClass(
    name="test_store_sink",
    sop_classes=_sop_groups.SERVICE_GROUPS["storage"],
    status_table=STORAGE_SERVICE_CLASS_STATUS,
    requests=[CStoreRQ],
    events=[EVT_C_STORE],
    scp=_sink_scp,
    reference="PS3.4 Annex B (tests)",
)


class _SinkPlugin:
    @hookimpl
    def dicomnet_service_classes(self) -> Sequence[ServiceClass]:
        return [SINK_SERVICE]


SINK_PLUGIN = _SinkPlugin()


@attrs.frozen
class Received:
    transfer_syntax: str
    sop_class_uid: str
    sop_instance_uid: str
    data: bytes
    message_id: int


class RecordingSCP:
    """A dicomnet SCP accepting ``contexts`` ({SOP class: [syntaxes]}); records every C-STORE.

    ``status`` is what the handler answers (an int, or a callable of the event).
    """

    def __init__(
        self,
        contexts: dict[str, Sequence[str]],
        *,
        status: Any = 0x0000,
        max_pdu: int = 16382,
        ae_title: str = "STORE-SCP",
    ) -> None:
        self.received: list[Received] = []
        self.status = status
        self.ae = AE(ae_title, plugins=["verification", SINK_PLUGIN])
        self.ae.maximum_pdu_size = max_pdu
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = 20
        for sop_class, syntaxes in contexts.items():
            self.ae.add_supported_context(sop_class, list(syntaxes))
        self.ae.add_supported_context("1.2.840.10008.1.1")
        self.server = self.ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_store)]
        )
        assert self.server is not None
        self.port: int = self.server.server_address[1]
        self.lock = threading.Lock()

    def _on_store(self, event: Any) -> Any:
        with self.lock:
            self.received.append(
                Received(
                    str(event.context.transfer_syntax),
                    str(event.request.AffectedSOPClassUID),
                    str(event.request.AffectedSOPInstanceUID),
                    event.encoded_dataset(include_meta=False),
                    int(event.request.MessageID),
                )
            )
        return self.status(event) if callable(self.status) else self.status

    def close(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.ae.shutdown()

    def __enter__(self) -> RecordingSCP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a streaming sink on the kernel -------------------------------------------------------------


@attrs.frozen
class Digest:
    sop_instance_uid: str
    transfer_syntax: str
    nbytes: int
    sha256: str


class WireSink:
    """A one-association acceptor that hashes each C-STORE data set as it arrives.

    Accepts every context whose abstract syntax is in ``sop_classes``, choosing
    the first of ``syntaxes`` the requestor proposes. Keeps no data: memory does
    not grow with what is sent.
    """

    def __init__(
        self,
        sop_classes: Iterable[str],
        syntaxes: Sequence[str] = ALL_TRANSFER_SYNTAXES,
        *,
        max_pdu: int = 65536,
    ) -> None:
        self.config = AcceptorConfig(
            ae_title="WIRE-SINK",
            supported_contexts=tuple(
                ContextDefinition(uid, tuple(syntaxes)) for uid in sop_classes
            ),
            maximum_length=max_pdu,
            transfer_syntax_preference="acceptor",
        )
        self.max_pdu = max_pdu
        self.digests: list[Digest] = []
        self.error: BaseException | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._run(conn)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self._listener.close()

    def _run(self, conn: socket.socket) -> None:
        ul = UpperLayer(False, time.monotonic, max_pdata_length=self.max_pdu)
        assembler = MessageAssembler()
        syntax_of: dict[int, str] = {}
        max_send = 16382
        current: tuple[int, CStoreRQ] | None = None
        digest = hashlib.sha256()
        nbytes = 0
        ul.connection_made()
        while True:
            event = ul.next_event()
            if event is None:
                for data in ul.data_to_send():
                    conn.sendall(data)
                if ul.wants_close:
                    return
                buffer = ul.get_buffer()
                count = conn.recv_into(buffer)
                if count:
                    ul.buffer_updated(count)
                else:
                    ul.connection_lost()
                continue
            if isinstance(event, AssociationRequested):
                result = accept_or_reject(event.rq, self.config)
                ul.accept(result.response)  # type: ignore[arg-type]
                max_send = result.max_send_length or 16382
                syntax_of = {
                    cx.context_id: str(cx.transfer_syntax) for cx in result.contexts if cx.accepted
                }
                assembler.accepted_context_ids = set(syntax_of)
            elif isinstance(event, PDataReceived):
                for item in assembler.receive(event.body):
                    if isinstance(item, CommandReceived):
                        assert isinstance(item.message, CStoreRQ)
                        current = (item.context_id, item.message)
                        digest, nbytes = hashlib.sha256(), 0
                    elif isinstance(item, DatasetFragment):
                        digest.update(item.data)
                        nbytes += len(item.data)
                        if item.is_last:
                            assert current is not None
                            context_id, request = current
                            self.digests.append(
                                Digest(
                                    request.AffectedSOPInstanceUID,
                                    syntax_of[context_id],
                                    nbytes,
                                    digest.hexdigest(),
                                )
                            )
                            response = CStoreRSP(
                                MessageIDBeingRespondedTo=request.MessageID,
                                AffectedSOPClassUID=request.AffectedSOPClassUID,
                                AffectedSOPInstanceUID=request.AffectedSOPInstanceUID,
                                Status=0x0000,
                            )
                            for batch in fragment_message(context_id, response, None, max_send):
                                ul.send_pdata(batch)
            elif isinstance(event, ReleaseRequested):
                ul.release_response()
            elif isinstance(event, ConnectionClosed):
                for data in ul.data_to_send():
                    conn.sendall(data)
                return

    def join(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the sink did not finish"
        if self.error is not None:
            raise self.error


# -- files ---------------------------------------------------------------------------------------


def ct_dataset(
    *,
    rows: int = 64,
    columns: int = 48,
    seed: int = 1,
    sop_class: str = CT_IMAGE_STORAGE,
    with_sequence: bool = True,
) -> Dataset:
    """A small CT-like image with native 16-bit pixel data, a sequence and a private element."""
    rng = np.random.default_rng(seed)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.PatientName = "SEND^TEST"
    ds.PatientID = f"P{seed:04d}"
    ds.InstanceNumber = seed
    ds.ImagePositionPatient = [0.0, 0.0, float(seed)]
    ds.PixelSpacing = [0.5, 0.5]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    if with_sequence:
        item = Dataset()
        item.CodeValue = "T-D3000"
        item.CodingSchemeDesignator = "SRT"
        item.CodeMeaning = "Chest"
        nested = Dataset()
        nested.CodeValue = "1"
        nested.CodeMeaning = "nested"
        item.ConceptNameCodeSequence = [nested]
        ds.AnatomicRegionSequence = [item, Dataset()]
        ds.add_new(0x00091010, "LO", "PRIVATE VALUE")
        ds.add_new(0x00090010, "LO", "DICOMNET TEST")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    pixels = rng.integers(0, 4096, size=(rows, columns), dtype=np.uint16)
    pixels[: rows // 2, : columns // 2] = 100  # runs, so that RLE compresses something
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def write_part10(path: Path, ds: Dataset, transfer_syntax: str) -> Path:
    """``ds`` as a Part 10 file in ``transfer_syntax`` (its pixel data must already be in it)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
    path.write_bytes(part10_header(meta) + encode_dataset(ds, transfer_syntax))
    return path


def data_set_bytes(path: Path) -> bytes:
    """The data set part of a Part 10 file (after the meta), by pydicom's reading."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    with path.open("rb") as fp:
        read_preamble(fp, False)
        _read_file_meta_info(fp)
        return fp.read()


def write_big_file(
    path: Path, mib: int, *, transfer_syntax: str = ExplicitVRLittleEndian
) -> tuple[Path, str, int]:
    """A multi-frame image of about ``mib`` MiB written by streaming, never held in memory.

    Returns the path, the SHA-256 and the length of its data set.
    """
    frame = 512 * 512 * 2
    frames = max(1, mib * 1024 * 1024 // frame)
    ds = ct_dataset(rows=512, columns=512, with_sequence=True)
    ds.SOPClassUID = SECONDARY_CAPTURE
    del ds.PixelData
    ds.NumberOfFrames = frames
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
    head = encode_dataset(ds, transfer_syntax)
    length = frames * frame
    if transfer_syntax == ExplicitVRLittleEndian:
        pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length)
    else:
        pixel_header = struct.pack("<HHI", 0x7FE0, 0x0010, length)
    digest = hashlib.sha256()
    chunk = bytes(range(256)) * 4096  # 1 MiB, not all zeros
    with path.open("wb") as fp:
        fp.write(part10_header(meta))
        for piece in (head, pixel_header):
            fp.write(piece)
            digest.update(piece)
        left = length
        while left:
            piece = chunk[: min(left, len(chunk))]
            fp.write(piece)
            digest.update(piece)
            left -= len(piece)
    return path, digest.hexdigest(), len(head) + len(pixel_header) + length
