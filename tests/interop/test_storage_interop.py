"""Storage (C-STORE) with real peers (PS3.4 Annex B, PS3.7 9.1.1).

Each direction against each reference peer:

* DCMTK ``storescu`` -> ``dicomnet receive`` (the CLI, as a process);
* ``dicomnet store`` (the CLI) -> DCMTK ``storescp`` (``--bit-preserving``),
  accepting everything, only Implicit VR Little Endian, or -- through the API
  -- only compressed syntaxes; -> Orthanc, accepting everything or only
  uncompressed syntaxes;
* pynetdicom 3.0.4 SCU -> a dicomnet SCP (the API); dicomnet (the API and the
  CLI) -> pynetdicom SCP.

The test data are small synthetic Part 10 files made here, deterministically:
five SOP classes (CT, MR, Secondary Capture, X-Ray Angiography, Encapsulated
PDF) in seven transfer syntaxes (explicit and implicit VR little endian,
deflated, explicit VR big endian, RLE, JPEG-LS lossless). What arrives is
compared with what was sent: the data set bytes after the File Meta
Information exactly, where nothing was converted; element by element and
pixel by pixel (against the array the image was made from) where the
transfer syntax was converted on the way.
"""

from __future__ import annotations

import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from dicomnet import AE, evt
from dicomnet import transcode as tc
from dicomnet.datasets import decode_dataset, encode_dataset, part10_header
from dicomnet.part10 import parse_header
from dicomnet.plugins.storage import add_storage_contexts
from dicomnet.presentation import build_context
from tests.interop.peers import (
    Dcmtk,
    Orthanc,
    PeerGroup,
    PeerProcess,
    describe,
    python_runner,
    run_client,
    watch,
)
from tests.storage.test_transcode import assert_same_elements

pytestmark = pytest.mark.interop

SCRIPTS = Path(__file__).parent / "scripts"

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
XA = "1.2.840.10008.5.1.4.1.1.12.1"
PDF = "1.2.840.10008.5.1.4.1.1.104.1"
#: a SOP class no peer knows (storescp refuses it without --promiscuous)
PRIVATE_CLASS = "1.2.826.0.1.3680043.9.7133.2.1"

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"
JPEG_LS = "1.2.840.10008.1.2.4.80"
UNCOMPRESSED = (EXPLICIT, IMPLICIT, BIG_ENDIAN)

#: the UID root of the test data (generate_uid with fixed entropy: the same UIDs every run)
UID_ROOT = "1.2.826.0.1.3680043.8.498."
DCMTK_ROOT = "1.2.276.0.7230010.3"
PYNETDICOM_ROOT = "1.2.826.0.1.3680043.9.3811"


# -- test data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One test file: what it holds, and the pixel values its image was made from."""

    name: str
    path: Path
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    pixels: np.ndarray | None

    @property
    def body(self) -> bytes:
        """The data set bytes (after the File Meta Information)."""
        return split_part10(self.path.read_bytes())[1]


def uid(*entropy: object) -> str:
    sources = ["dicomnet storage interop", *map(str, entropy)]
    return generate_uid(prefix=UID_ROOT, entropy_srcs=sources)


def image(sop_class: str, seed: int) -> tuple[Dataset, np.ndarray]:
    """A 64 x 48 16-bit image with a sequence and a private element; its pixel values."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 4096, size=(64, 48), dtype=np.uint16)
    pixels[:32, :24] = 7  # runs, for RLE to compress
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid("instance", seed)
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series", sop_class)
    ds.Modality = "OT"
    ds.PatientName = "Interop^Storage"
    ds.PatientID = "IOP-1"
    ds.InstanceNumber = seed
    item = Dataset()
    item.CodeValue = "T-D3000"
    item.CodingSchemeDesignator = "SRT"
    item.CodeMeaning = "Chest"
    ds.AnatomicRegionSequence = [item]
    ds.add_new(0x00090010, "LO", "DICOMNET INTEROP")
    ds.add_new(0x00091010, "LO", f"private {seed}")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    return ds, pixels


def pdf_document(seed: int) -> Dataset:
    """An Encapsulated PDF instance (no pixel data)."""
    ds = Dataset()
    ds.SOPClassUID = PDF
    ds.SOPInstanceUID = uid("instance", seed)
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series", PDF)
    ds.Modality = "DOC"
    ds.PatientName = "Interop^Storage"
    ds.PatientID = "IOP-1"
    ds.InstanceNumber = seed
    ds.DocumentTitle = "Interop report"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n% dicomnet interop test\n%%EOF\n"
    return ds


def write_sample(
    folder: Path, name: str, ds: Dataset, syntax: str, pixels: np.ndarray | None
) -> Sample:
    if syntax == BIG_ENDIAN and pixels is not None:
        ds.PixelData = pixels.astype(">u2").tobytes()  # OW values are written as they are
    if syntax in (RLE, JPEG_LS):
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = EXPLICIT
        ds.compress(syntax, generate_instance_uid=False)
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = UID_ROOT + "1"
    path = folder / f"{name}.dcm"
    path.write_bytes(part10_header(meta) + encode_dataset(ds, syntax))
    return Sample(name, path, str(ds.SOPClassUID), str(ds.SOPInstanceUID), syntax, pixels)


def make_samples(folder: Path) -> dict[str, Sample]:
    """The test files, by name: five SOP classes, seven transfer syntaxes."""
    if not (tc.can_encode(JPEG_LS) and tc.can_decode(JPEG_LS) and tc.can_decode(RLE)):
        pytest.skip("pixel codecs missing: pip install 'dicomnet[codecs]'")
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for seed, (name, sop_class, syntax) in enumerate(
        [
            ("ct-explicit", CT, EXPLICIT),
            ("ct-jpeg-ls", CT, JPEG_LS),
            ("mr-implicit", MR, IMPLICIT),
            ("sc-deflated", SC, DEFLATED),
            ("sc-rle", SC, RLE),
            ("xa-big-endian", XA, BIG_ENDIAN),
        ],
        start=1,
    ):
        ds, pixels = image(sop_class, seed)
        made[name] = write_sample(folder, name, ds, syntax, pixels)
    made["pdf-explicit"] = write_sample(folder, "pdf-explicit", pdf_document(7), EXPLICIT, None)
    return made


@pytest.fixture
def samples(tmp_path: Path) -> dict[str, Sample]:
    return make_samples(tmp_path / "sent")


# -- what arrived ------------------------------------------------------------------------------


def split_part10(data: bytes) -> tuple[str, bytes]:
    """A Part 10 file's transfer syntax and its data set bytes (after the meta group)."""
    parsed = parse_header(data, at_eof=True)
    assert parsed is not None, "not a Part 10 file"
    elements, offset = parsed
    return elements[0x00020010].decode("ascii").rstrip("\0 "), data[offset:]


@dataclass(frozen=True)
class Arrived:
    """A stored file, read back: its meta's UIDs and its data set bytes."""

    sop_class: str
    sop_instance: str
    transfer_syntax: str
    body: bytes


def arrived(data: bytes) -> Arrived:
    parsed = parse_header(data, at_eof=True)
    assert parsed is not None, "not a Part 10 file"
    elements, offset = parsed

    def text(tag: int) -> str:
        return elements[tag].decode("ascii").rstrip("\0 ")

    return Arrived(text(0x00020002), text(0x00020003), text(0x00020010), data[offset:])


def files_in(folder: Path) -> dict[str, Arrived]:
    """The DICOM files in ``folder`` by SOP Instance UID (from their meta)."""
    found = {}
    for path in folder.iterdir():
        got = arrived(path.read_bytes())
        found[got.sop_instance] = got
    return found


def decoded(body: bytes, syntax: str) -> Dataset:
    ds = decode_dataset(body, syntax)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    return ds


def assert_arrived_as_sent(sample: Sample, got: Arrived, syntax: str | None = None) -> None:
    """The sample arrived in ``syntax`` (default: its own) with the same content.

    In its own syntax: the very same data set bytes. In another (converted):
    the same elements, and the same pixel values as the array the image was
    made from.
    """
    expected = syntax or sample.transfer_syntax
    where = f"{sample.name} ({sample.transfer_syntax} -> {got.transfer_syntax})"
    assert (got.sop_class, got.sop_instance) == (sample.sop_class, sample.sop_instance), where
    assert got.transfer_syntax == expected, where
    if expected == sample.transfer_syntax:
        assert got.body == sample.body, where
        return
    sent = decoded(sample.body, sample.transfer_syntax)
    received = decoded(got.body, got.transfer_syntax)
    if sample.pixels is not None:
        assert np.array_equal(received.pixel_array, sample.pixels), where
        del sent.PixelData, received.PixelData
    assert_same_elements(received, sent)


def inflated(body: bytes) -> bytes:
    return zlib.decompress(body, -zlib.MAX_WBITS)


# -- running dicomnet's commands ---------------------------------------------------------------


def dicomnet_cli(*args: str | int | Path) -> list[str]:
    """The argv of ``dicomnet ...`` with our python (what the console script runs)."""
    return [sys.executable, "-m", "dicomnet.contrib.cli", *map(str, args)]


def start_receive(peers: PeerGroup, directory: Path, *options: str) -> tuple[PeerProcess, int]:
    """``dicomnet receive`` on a free loopback port (``--port 0``), verbose; and its port."""
    proc = peers.start(
        dicomnet_cli(
            "receive", "--port", 0, "--bind", "127.0.0.1", "--dir", directory, "-v", *options
        ),
        name="dicomnet receive",
    )
    port = int(proc.wait_for_line(r"listening on [\d.]+:(\d+)", stream="stderr").group(1))
    return proc, port


#: the summary line of ``dicomnet store``
SUMMARY = re.compile(r"Sent (\d+) of (\d+) instances?, .*?(\d+) failed.* over (\d+) associations?")


def store_summary(result: Any) -> tuple[int, int, int, int]:
    """(sent, total, failed, associations) from ``dicomnet store``'s summary line."""
    match = SUMMARY.search(result.stderr)
    assert match, describe(result)
    sent, total, failed, associations = map(int, match.groups())
    return sent, total, failed, associations


# -- DCMTK -------------------------------------------------------------------------------------


def storescu_profile(path: Path, samples: list[Sample]) -> Path:
    """A storescu association profile proposing each sample's SOP class in its own syntax.

    One context per (SOP class, syntax), the uncompressed one of a class first:
    storescu sends an uncompressed file on the first accepted context of its
    class (converting it if need be), a compressed one on a context of its
    own syntax.
    """
    pairs: list[tuple[str, str]] = []
    for sample in sorted(samples, key=lambda s: tc.is_native(s.transfer_syntax), reverse=True):
        pair = (sample.sop_class, sample.transfer_syntax)
        if pair not in pairs:
            pairs.append(pair)
    syntaxes = sorted({syntax for _, syntax in pairs})
    lines = ["[[TransferSyntaxes]]"]
    for n, syntax in enumerate(syntaxes):
        lines += [f"[TS{n}]", f"TransferSyntax1 = {syntax}"]
    lines += ["", "[[PresentationContexts]]", "[Storage]"]
    for n, (sop_class, syntax) in enumerate(pairs, 1):
        lines.append(f"PresentationContext{n} = {sop_class}\\TS{syntaxes.index(syntax)}")
    lines += ["", "[[Profiles]]", "[Interop]", "PresentationContexts = Storage", ""]
    path.write_text("\n".join(lines))
    return path


def test_storescu_to_dicomnet_receive(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """Every sample arrives as sent, byte for byte, over one association."""
    directory = tmp_path / "received"
    receiver, port = start_receive(peers, directory)
    profile = storescu_profile(tmp_path / "storescu.cfg", list(samples.values()))
    result = run_client(
        [
            dcmtk.tool("storescu"), "-v", "-xf", profile, "Interop", "-aet", "STORESCU",
            "-aec", "DICOMNET", "127.0.0.1", port, *(s.path for s in samples.values()),
        ]
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, describe(result)
    assert output.count("Requesting Association") == 1, describe(result)
    assert output.count("Received Store Response (Success)") == len(samples), describe(result)
    receiver.terminate()
    assert receiver.wait() == 0
    log = "\n".join(receiver.stderr_lines)
    assert log.count("Association requested by 'STORESCU'") == 1, receiver.output()
    assert "Traceback" not in log, receiver.output()
    names = sorted(p.name for p in directory.iterdir())
    assert names == sorted(f"{s.sop_instance}.dcm" for s in samples.values())  # no .part left
    stored = files_in(directory)
    for sample in samples.values():
        assert_arrived_as_sent(sample, stored[sample.sop_instance])
    meta = decode_meta(directory / f"{samples['ct-explicit'].sop_instance}.dcm")
    assert meta.SourceApplicationEntityTitle == "STORESCU"


def decode_meta(path: Path) -> Any:
    from pydicom import dcmread

    return dcmread(path, stop_before_pixels=True).file_meta


def start_storescp(
    peers: PeerGroup, dcmtk: Dcmtk, directory: Path, *options: str | Path
) -> tuple[PeerProcess, int]:
    """A single-process DCMTK storescp writing what it receives to ``directory`` as it came."""
    directory.mkdir(parents=True, exist_ok=True)
    tool = dcmtk.tool("storescp")
    return peers.start_listening(
        lambda port: [
            tool, "-v", "-aet", "STORESCP", "--bit-preserving", "-od", str(directory),
            *map(str, options), str(port),
        ],
        name="storescp",
        cwd=directory,
    )  # fmt: skip


def test_dicomnet_store_to_storescp_as_sent(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """storescp accepting every syntax: nothing converted but what storescp chose."""
    directory = tmp_path / "storescp"
    scp, port = start_storescp(peers, dcmtk, directory, "+xa", "--promiscuous")
    result = run_client(dicomnet_cli("store", "--aec", "STORESCP", "-v", "127.0.0.1", port,
                                     tmp_path / "sent"))  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert store_summary(result) == (len(samples), len(samples), 0, 1)
    stored = files_in(directory)
    assert len(stored) == len(samples)
    for sample in samples.values():
        # MR is proposed as (implicit, explicit) in one context, since only the implicit
        # syntax is used for it; storescp, as acceptor, picks explicit VR there
        syntax = EXPLICIT if sample.name == "mr-implicit" else None
        assert_arrived_as_sent(sample, stored[sample.sop_instance], syntax)
    assert scp.output().count("Association Received") == 1


def test_dicomnet_store_to_storescp_accepting_implicit_vr_only(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """``storescp +xi``: every sample converted to Implicit VR Little Endian, compressed
    ones decompressed; elements and pixel values unchanged."""
    directory = tmp_path / "storescp"
    _, port = start_storescp(peers, dcmtk, directory, "+xi")
    result = run_client(
        dicomnet_cli("store", "--aec", "STORESCP", "-v", "127.0.0.1", port, tmp_path / "sent")
    )
    assert result.returncode == 0, describe(result)
    assert store_summary(result) == (len(samples), len(samples), 0, 1)
    assert result.stderr.count("Converting") == len(samples) - 1, describe(result)
    stored = files_in(directory)
    for sample in samples.values():
        assert_arrived_as_sent(sample, stored[sample.sop_instance], IMPLICIT)


def test_compressed_to_storescp_accepting_uncompressed_only(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """storescp's default (uncompressed only): RLE and JPEG-LS decompressed, pixels equal."""
    directory = tmp_path / "storescp"
    _, port = start_storescp(peers, dcmtk, directory)
    compressed = [samples["sc-rle"], samples["ct-jpeg-ls"]]
    result = run_client(
        dicomnet_cli("store", "--aec", "STORESCP", "127.0.0.1", port,
                     *(s.path for s in compressed))
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    stored = files_in(directory)
    for sample in compressed:
        got = stored[sample.sop_instance]
        assert got.transfer_syntax in UNCOMPRESSED
        assert_arrived_as_sent(sample, got, got.transfer_syntax)


def storescp_profile(path: Path, accepted: dict[str, list[str]]) -> Path:
    """A storescp association profile accepting ``{SOP class: [transfer syntaxes]}`` only."""
    lines = ["[[TransferSyntaxes]]"]
    for n, syntaxes in enumerate(accepted.values()):
        lines.append(f"[TS{n}]")
        lines += [f"TransferSyntax{i} = {ts}" for i, ts in enumerate(syntaxes, 1)]
    lines += ["", "[[PresentationContexts]]", "[Storage]"]
    for n, sop_class in enumerate(accepted):
        lines.append(f"PresentationContext{n + 1} = {sop_class}\\TS{n}")
    lines += ["", "[[Profiles]]", "[Accepted]", "PresentationContexts = Storage", ""]
    path.write_text("\n".join(lines))
    return path


def test_send_c_store_compresses_for_storescp_accepting_compressed_only(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """The reverse conversion: uncompressed files and a Dataset compressed without loss
    (JPEG-LS for CT, RLE for SC) for a storescp that accepts nothing else."""
    directory = tmp_path / "storescp"
    profile = storescp_profile(tmp_path / "storescp.cfg", {CT: [JPEG_LS], SC: [RLE]})
    _, port = start_storescp(peers, dcmtk, directory, "-xf", profile, "Accepted")
    ae = AE("DICOMNET-SCU", plugins=[])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    contexts = [
        build_context(CT, [EXPLICIT, IMPLICIT]),
        build_context(CT, [JPEG_LS]),
        build_context(SC, [EXPLICIT, IMPLICIT]),
        build_context(SC, [RLE]),
    ]
    dataset, pixels = image(SC, 20)  # in memory: no File Meta Information at all
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP", contexts=contexts)
        assert assoc.is_established
        accepted = {(c.abstract_syntax, c.transfer_syntax[0]) for c in assoc.accepted_contexts}
        assert accepted == {(CT, JPEG_LS), (SC, RLE)}
        assert assoc.send_c_store(samples["ct-explicit"].path).Status == 0x0000
        with samples["sc-deflated"].path.open("rb") as fp:
            assert assoc.send_c_store(fp).Status == 0x0000
        assert assoc.send_c_store(dataset).Status == 0x0000
        assoc.release()
    finally:
        ae.shutdown()
    stored = files_in(directory)
    assert_arrived_as_sent(samples["ct-explicit"], stored[samples["ct-explicit"].sop_instance],
                           JPEG_LS)  # fmt: skip
    assert_arrived_as_sent(samples["sc-deflated"], stored[samples["sc-deflated"].sop_instance],
                           RLE)  # fmt: skip
    got = stored[dataset.SOPInstanceUID]
    assert got.transfer_syntax == RLE
    assert np.array_equal(decoded(got.body, RLE).pixel_array, pixels)


def test_dicomnet_store_exit_status_1_when_a_class_is_refused(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """storescp (not promiscuous) refuses an unknown SOP class: the other files are stored,
    that one is reported, exit status 1."""
    ds, pixels = image(PRIVATE_CLASS, 30)
    private = write_sample(tmp_path / "sent", "private", ds, EXPLICIT, pixels)
    directory = tmp_path / "storescp"
    _, port = start_storescp(peers, dcmtk, directory)
    result = run_client(
        dicomnet_cli("store", "--aec", "STORESCP", "127.0.0.1", port,
                     samples["ct-explicit"].path, private.path)
    )  # fmt: skip
    assert result.returncode == 1, describe(result)
    assert store_summary(result) == (1, 2, 1, 1)
    assert "E: " in result.stderr and PRIVATE_CLASS in result.stderr, describe(result)
    assert list(files_in(directory)) == [samples["ct-explicit"].sop_instance]


def test_dicomnet_store_reports_no_success_when_storescp_aborts(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """``storescp --abort-after`` aborts after each C-STORE-RQ, before answering: nothing is
    reported stored, exit status 1; ``--abort-during``, in the middle of the data set, too."""
    for option in ("--abort-after", "--abort-during"):
        directory = tmp_path / option.strip("-")
        _, port = start_storescp(peers, dcmtk, directory, option)
        result = run_client(
            dicomnet_cli("store", "--aec", "STORESCP", "127.0.0.1", port,
                         samples["ct-explicit"].path, samples["mr-implicit"].path)
        )  # fmt: skip
        assert result.returncode == 1, describe(result)
        sent, total, failed, associations = store_summary(result)
        assert (sent, total, failed) == (0, 2, 2), describe(result)
        assert associations >= 1


# -- Orthanc -----------------------------------------------------------------------------------

#: Orthanc 1.10's switches for the compressed (and deflated) transfer syntaxes
ORTHANC_UNCOMPRESSED_ONLY = {
    f"{family}TransferSyntaxAccepted": False
    for family in (
        "Deflated", "Jpeg", "Jpeg2000", "JpegLossless", "Jpip", "Mpeg2", "Mpeg4", "H265", "Rle",
    )
}  # fmt: skip
ORTHANC_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "uncompressed": ORTHANC_UNCOMPRESSED_ONLY,
}


@pytest.fixture(scope="module")
def orthanc_instances() -> Iterator[tuple[PeerGroup, dict[str, Orthanc]]]:
    """One Orthanc per configuration for the whole module (Orthanc takes seconds to stop)."""
    group = PeerGroup()
    try:
        yield group, {}
    finally:
        group.stop_all()


@pytest.fixture
def orthanc_factory(
    request: pytest.FixtureRequest,
    orthanc_binary: str,
    orthanc_instances: tuple[PeerGroup, dict[str, Orthanc]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """``get(config)``: the module's Orthanc with that configuration, emptied for the test.

    (The name keeps these tests out of the leak check: the shared Orthanc's
    output threads outlive each test, see conftest.py.)
    """
    group, instances = orthanc_instances

    def get(config: str) -> Orthanc:
        if config not in instances:
            tmp = tmp_path_factory.mktemp(f"orthanc-{config}")
            instances[config] = Orthanc(group, orthanc_binary, tmp, config=ORTHANC_CONFIGS[config])
        orthanc = instances[config]
        orthanc.clear()
        watch(request.node, orthanc.proc)
        return orthanc

    return get


def test_dicomnet_store_to_orthanc(
    orthanc_factory: Any, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    orthanc = orthanc_factory("default")
    result = run_client(
        dicomnet_cli("store", "--aec", Orthanc.AET, "-v", "127.0.0.1", orthanc.dicom_port,
                     tmp_path / "sent")
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert store_summary(result) == (len(samples), len(samples), 0, 1)
    stored = {key: arrived(data) for key, data in orthanc.stored_files().items()}
    assert len(stored) == len(samples)
    for sample in samples.values():
        got = stored[sample.sop_instance]
        if sample.name == "mr-implicit":
            # proposed as (implicit, explicit) in one context; Orthanc picks explicit VR
            assert_arrived_as_sent(sample, got, EXPLICIT)
        elif sample.name == "sc-deflated":
            # sent as it is; Orthanc (DCMTK inside) re-deflates what it stores
            assert got.transfer_syntax == DEFLATED
            assert inflated(got.body) == inflated(sample.body)
        else:
            assert_arrived_as_sent(sample, got)


def test_dicomnet_store_to_orthanc_accepting_uncompressed_only(
    orthanc_factory: Any, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    orthanc = orthanc_factory("uncompressed")
    result = run_client(
        dicomnet_cli("store", "--aec", Orthanc.AET, "127.0.0.1", orthanc.dicom_port,
                     tmp_path / "sent")
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    stored = {key: arrived(data) for key, data in orthanc.stored_files().items()}
    assert len(stored) == len(samples)
    for sample in samples.values():
        got = stored[sample.sop_instance]
        if sample.transfer_syntax in (RLE, JPEG_LS, DEFLATED, IMPLICIT):
            assert got.transfer_syntax in UNCOMPRESSED, sample.name
            assert_arrived_as_sent(sample, got, got.transfer_syntax)
        else:
            assert_arrived_as_sent(sample, got)


def test_dicomnet_store_rejected_by_orthanc_exits_2(
    orthanc_factory: Any, samples: dict[str, Sample]
) -> None:
    orthanc = orthanc_factory("default")
    result = run_client(
        dicomnet_cli("store", "--aec", "NOT-ORTHANC", "127.0.0.1", orthanc.dicom_port,
                     samples["ct-explicit"].path)
    )  # fmt: skip
    assert result.returncode == 2, describe(result)
    assert store_summary(result)[3] == 0
    assert orthanc.rest("GET", "/instances") == (200, [])


# -- pynetdicom --------------------------------------------------------------------------------


class StoringSCP:
    """A dicomnet Storage SCP (the API) on a free loopback port, storing into ``directory``.

    Its handler reads the decoded data set (``event.dataset``) and stores the
    instance as received (``event.store``); it records what it saw.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.seen: list[dict[str, Any]] = []
        self.associations: set[int] = set()
        self.ae = AE("DICOMNET-SCP")
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = 20
        add_storage_contexts(self.ae)
        self.server = self.ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self.on_store)]
        )
        assert self.server is not None
        self.port: int = self.server.server_address[1]

    def on_store(self, event: Any) -> int:
        self.associations.add(id(event.assoc))
        self.seen.append(
            {
                "calling": event.assoc.requestor.ae_title,
                "implementation": str(event.assoc.requestor.implementation_class_uid),
                "syntax": str(event.context.transfer_syntax),
                "patient": str(event.dataset.PatientName),
                "path": event.store(self.directory),
            }
        )
        return 0x0000

    def close(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.ae.shutdown()


def test_pynetdicom_scu_to_dicomnet_scp(
    pynetdicom_python: str, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    scp = StoringSCP(tmp_path / "received")
    try:
        result = run_client(
            python_runner(
                SCRIPTS / "pynetdicom_store_scu.py", "127.0.0.1", scp.port, "DICOMNET-SCP",
                "PYNETDICOM-SCU", *(s.path for s in samples.values()), python=pynetdicom_python,
            )
        )  # fmt: skip
    finally:
        scp.close()
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == [w for s in samples.values() for w in (s.path.name, "0x0000")]
    assert len(scp.associations) == 1
    assert {s["calling"] for s in scp.seen} == {"PYNETDICOM-SCU"}
    assert all(s["implementation"].startswith(PYNETDICOM_ROOT) for s in scp.seen)
    assert {s["patient"] for s in scp.seen} == {"Interop^Storage"}
    stored = files_in(scp.directory)
    for sample in samples.values():
        assert_arrived_as_sent(sample, stored[sample.sop_instance])
    assert sorted(s["syntax"] for s in scp.seen) == sorted(
        s.transfer_syntax for s in samples.values()
    )


def start_pynetdicom_scp(
    peers: PeerGroup, python: str, directory: Path, *syntaxes: str
) -> tuple[PeerProcess, int]:
    directory.mkdir(parents=True, exist_ok=True)
    proc = peers.start(
        python_runner(
            SCRIPTS / "pynetdicom_store_scp.py", "PYNETDICOM-SCP", directory, *syntaxes,
            python=python,
        ),
        name="pynetdicom storage SCP",
        stdin=True,
    )  # fmt: skip
    return proc, int(proc.wait_for_line(r"listening on port (\d+)").group(1))


def test_dicomnet_send_c_store_to_pynetdicom_scp(
    pynetdicom_python: str, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """A path, a file object and a Dataset, each sent in its own syntax: the same bytes."""
    directory = tmp_path / "pynetdicom"
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, directory)
    dataset, _pixels = image(MR, 40)
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = IMPLICIT
    ae = AE("DICOMNET-SCU", plugins=[])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for sop_class, syntax in [(CT, JPEG_LS), (SC, DEFLATED), (MR, IMPLICIT), (XA, BIG_ENDIAN)]:
        ae.add_requested_context(sop_class, [syntax])
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title="PYNETDICOM-SCP")
        assert assoc.is_established
        assert assoc.send_c_store(samples["ct-jpeg-ls"].path).Status == 0x0000
        assert assoc.send_c_store(str(samples["xa-big-endian"].path)).Status == 0x0000
        with samples["sc-deflated"].path.open("rb") as fp:
            assert assoc.send_c_store(fp).Status == 0x0000
        assert assoc.send_c_store(dataset).Status == 0x0000
        assoc.release()
    finally:
        ae.shutdown()
    scp.wait_for_line(f"stored {dataset.SOPInstanceUID} {IMPLICIT} DICOMNET-SCU")
    scp.close_stdin()
    assert scp.wait() == 0, scp.output()
    stored = files_in(directory)
    for name in ("ct-jpeg-ls", "xa-big-endian", "sc-deflated"):
        assert_arrived_as_sent(samples[name], stored[samples[name].sop_instance])
    assert stored[dataset.SOPInstanceUID].body == encode_dataset(dataset, IMPLICIT)


def test_dicomnet_store_to_pynetdicom_scp_accepting_implicit_only(
    pynetdicom_python: str, peers: PeerGroup, tmp_path: Path, samples: dict[str, Sample]
) -> None:
    """The streamed conversions (explicit to implicit, inflating) and the in-memory ones
    (big endian, decompression) against another acceptor."""
    directory = tmp_path / "pynetdicom"
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, directory, IMPLICIT)
    result = run_client(
        dicomnet_cli("store", "--aec", "PYNETDICOM-SCP", "127.0.0.1", port, tmp_path / "sent")
    )
    assert result.returncode == 0, describe(result)
    assert store_summary(result) == (len(samples), len(samples), 0, 1)
    scp.close_stdin()
    assert scp.wait() == 0, scp.output()
    stored = files_in(directory)
    for sample in samples.values():
        assert_arrived_as_sent(sample, stored[sample.sop_instance], IMPLICIT)


def odd_when_deflated(sop_class: str, first_seed: int) -> tuple[Dataset, np.ndarray]:
    """An image whose explicit VR encoding deflates to an odd number of bytes (needs a pad)."""
    for seed in range(first_seed, first_seed + 50):
        ds, pixels = image(sop_class, seed)
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        raw = encode_dataset(ds, EXPLICIT)
        if len(compressor.compress(raw) + compressor.flush()) % 2:
            return ds, pixels
    pytest.fail("no image deflating to an odd length found")


def test_deflated_for_pynetdicom_scp_accepting_deflated_only(
    pynetdicom_python: str, peers: PeerGroup, tmp_path: Path
) -> None:
    """An explicit VR file deflated as it streams, and a Dataset encoded deflated, each
    with a deflated stream of odd length: both arrive padded to an even length with one
    NULL byte (PS3.5 A.5), and inflate to what was sent."""
    directory = tmp_path / "pynetdicom"
    scp, port = start_pynetdicom_scp(peers, pynetdicom_python, directory, DEFLATED)
    ds, pixels = odd_when_deflated(CT, 50)
    sample = write_sample(tmp_path, "ct-odd", ds, EXPLICIT, pixels)
    dataset, _ = odd_when_deflated(SC, 100)
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = DEFLATED
    ae = AE("DICOMNET-SCU", plugins=[])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(CT, [DEFLATED])
    ae.add_requested_context(SC, [DEFLATED])
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title="PYNETDICOM-SCP")
        assert assoc.is_established
        assert assoc.send_c_store(sample.path).Status == 0x0000
        assert assoc.send_c_store(dataset).Status == 0x0000
        assoc.release()
    finally:
        ae.shutdown()
    scp.close_stdin()
    assert scp.wait() == 0, scp.output()
    stored = files_in(directory)
    for uid, explicit in (
        (sample.sop_instance, sample.body),
        (dataset.SOPInstanceUID, encode_dataset(dataset, EXPLICIT)),
    ):
        got = stored[uid]
        assert got.transfer_syntax == DEFLATED
        assert len(got.body) % 2 == 0 and got.body.endswith(b"\x00")
        assert inflated(got.body) == explicit
