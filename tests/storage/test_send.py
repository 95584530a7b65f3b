"""Sending with C-STORE (dicomnet.store_scu; PS3.4 Annex B, PS3.7 9.1.1) to an in-process SCP.

What arrives is compared with what was sent: the data set bytes of the file
when it went as it is, element by element (or pixel by pixel) when it was
converted.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset

from dicomnet import AE
from dicomnet import transcode as tc
from dicomnet.acse import NegotiatedContext
from dicomnet.association import Association
from dicomnet.datasets import decode_dataset, encode_dataset
from dicomnet.part10 import NotDicomError, read_file_info
from dicomnet.presentation import build_context
from dicomnet.store_scu import c_store, choose_context, iter_files, send_files
from tests.storage.send_support import (
    BIG_ENDIAN,
    CT_IMAGE_STORAGE,
    DEFLATED,
    EXPLICIT,
    IMPLICIT,
    J2K_LOSSLESS,
    NATIVE,
    RLE,
    RecordingSCP,
    ct_dataset,
    data_set_bytes,
    write_big_file,
    write_part10,
)
from tests.storage.test_transcode import assert_same_elements

MR = "1.2.840.10008.5.1.4.1.1.4"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@pytest.fixture
def scp() -> Iterator[Callable[..., RecordingSCP]]:
    made: list[RecordingSCP] = []

    def make(contexts: dict[str, Sequence[str]], **kwargs: Any) -> RecordingSCP:
        server = RecordingSCP(contexts, **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def associate() -> Iterator[Callable[..., Association]]:
    made: list[tuple[AE, Association]] = []

    def connect(port: int, proposed: Sequence[tuple[str, Sequence[str]]]) -> Association:
        ae = AE("SEND-TEST", plugins=[])
        ae.dimse_timeout = ae.acse_timeout = 20
        assoc = ae.associate(
            "127.0.0.1",
            port,
            contexts=[build_context(uid, list(syntaxes)) for uid, syntaxes in proposed],
            ae_title="STORE-SCP",
        )
        assert assoc.is_established
        made.append((ae, assoc))
        return assoc

    yield connect
    for ae, assoc in made:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


def compressed_file(path: Path, ds: Dataset, syntax: str) -> Path:
    copy = decode_dataset(encode_dataset(ds, EXPLICIT), EXPLICIT)
    copy.file_meta = FileMetaDataset()
    copy.file_meta.TransferSyntaxUID = EXPLICIT
    copy.compress(syntax, generate_instance_uid=False)
    return write_part10(path, copy, syntax)


def file_in(tmp_path: Path, syntax: str, ds: Dataset | None = None) -> Path:
    ds = ds or ct_dataset()
    path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    if tc.is_native(syntax):
        return write_part10(path, ds, syntax)
    return compressed_file(path, ds, syntax)


def image(data: bytes, syntax: str) -> np.ndarray:
    ds = decode_dataset(data, syntax)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    return ds.pixel_array.copy()


# -- as it is ----------------------------------------------------------------------------------


@pytest.mark.parametrize("syntax", [*NATIVE, RLE])
def test_a_file_goes_as_it_is(tmp_path: Path, scp: Any, associate: Any, syntax: str) -> None:
    path = file_in(tmp_path, syntax)
    server = scp({CT_IMAGE_STORAGE: [syntax]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [syntax])])
    status = assoc.send_c_store(str(path), msg_id=7)
    assert status.Status == 0x0000
    (got,) = server.received
    assert got.transfer_syntax == syntax
    assert got.data == data_set_bytes(path)
    assert got.message_id == 7
    info = read_file_info(path)
    assert (got.sop_class_uid, got.sop_instance_uid) == (info.sop_class_uid, info.sop_instance_uid)


@pytest.mark.parametrize("kind", ["Path", "binary file", "BytesIO", "unseekable stream"])
def test_path_like_and_file_objects(tmp_path: Path, scp: Any, associate: Any, kind: str) -> None:
    path = file_in(tmp_path, EXPLICIT)
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [EXPLICIT])])
    if kind == "Path":
        status = assoc.send_c_store(path)
    elif kind == "binary file":
        with path.open("rb") as fp:
            status = assoc.send_c_store(fp)
            assert not fp.closed  # not ours to close
    elif kind == "BytesIO":
        status = assoc.send_c_store(io.BytesIO(path.read_bytes()))
    else:

        class Stream:
            def __init__(self, data: bytes) -> None:
                self._fp = io.BytesIO(data)

            def read(self, n: int = -1) -> bytes:
                return self._fp.read(min(n, 1000) if n > 0 else n)  # short reads too

        status = assoc.send_c_store(Stream(path.read_bytes()))
    assert status.Status == 0
    assert server.received[0].data == data_set_bytes(path)


def test_a_big_file_goes_in_chunks_as_it_is(tmp_path: Path, scp: Any, associate: Any) -> None:
    path, _digest, length = write_big_file(tmp_path / "big.dcm", 3)
    server = scp({"1.2.840.10008.5.1.4.1.1.7": [EXPLICIT]})
    assoc = associate(server.port, [("1.2.840.10008.5.1.4.1.1.7", [EXPLICIT])])
    assert assoc.send_c_store(path).Status == 0
    (got,) = server.received
    assert len(got.data) == length
    assert got.data == data_set_bytes(path)


def test_a_dataset_is_encoded_in_its_own_syntax(tmp_path: Path, scp: Any, associate: Any) -> None:
    path = file_in(tmp_path, IMPLICIT)
    ds = dcmread(path)
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT, IMPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [EXPLICIT]), (CT_IMAGE_STORAGE, [IMPLICIT])])
    assert assoc.send_c_store(ds).Status == 0
    (got,) = server.received
    assert got.transfer_syntax == IMPLICIT
    assert got.data == data_set_bytes(path)


def test_a_dataset_without_meta_goes_in_an_accepted_native_syntax(scp: Any, associate: Any) -> None:
    ds = ct_dataset()
    server = scp({CT_IMAGE_STORAGE: [IMPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [IMPLICIT])])
    assert assoc.send_c_store(ds).Status == 0
    (got,) = server.received
    assert got.transfer_syntax == IMPLICIT
    assert_same_elements(decode_dataset(got.data, IMPLICIT), ds)


def test_converting_leaves_the_applications_dataset_alone(scp: Any, associate: Any) -> None:
    ds = ct_dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = EXPLICIT
    before = (bytes(ds.PixelData), ds.file_meta.TransferSyntaxUID, ds.SOPInstanceUID)
    server = scp({CT_IMAGE_STORAGE: [RLE]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [RLE])])
    assert assoc.send_c_store(ds).Status == 0
    assert (bytes(ds.PixelData), ds.file_meta.TransferSyntaxUID, ds.SOPInstanceUID) == before
    assert np.array_equal(image(server.received[0].data, RLE), ds.pixel_array)


# -- files without preamble or meta --------------------------------------------------------------


def test_a_bare_data_set_is_decoded_and_sent(tmp_path: Path, scp: Any, associate: Any) -> None:
    ds = ct_dataset()
    path = tmp_path / "bare.dcm"
    path.write_bytes(encode_dataset(ds, IMPLICIT))
    server = scp({CT_IMAGE_STORAGE: [IMPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [IMPLICIT, EXPLICIT])])
    assert assoc.send_c_store(str(path)).Status == 0
    assert_same_elements(decode_dataset(server.received[0].data, IMPLICIT), ds)


def test_a_meta_without_preamble_still_streams(tmp_path: Path, scp: Any, associate: Any) -> None:
    full = file_in(tmp_path, EXPLICIT)
    path = tmp_path / "no-preamble.dcm"
    path.write_bytes(full.read_bytes()[132:])
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [EXPLICIT])])
    assert read_file_info(path).exact
    assert assoc.send_c_store(path).Status == 0
    assert server.received[0].data == data_set_bytes(full)


def test_a_meta_without_the_sop_uids_falls_back_to_the_data_set(
    tmp_path: Path, scp: Any, associate: Any
) -> None:
    ds = ct_dataset()
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = EXPLICIT
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = False, True
    write_file_meta_info(fp, meta, enforce_standard=False)
    path = tmp_path / "thin-meta.dcm"
    path.write_bytes(bytes(128) + b"DICM" + fp.getvalue() + encode_dataset(ds, EXPLICIT))
    info = read_file_info(path)
    assert (info.sop_class_uid, info.exact) == (CT_IMAGE_STORAGE, False)
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [EXPLICIT])])
    assert assoc.send_c_store(path).Status == 0
    assert_same_elements(decode_dataset(server.received[0].data, EXPLICIT), ds)


def test_not_dicom(tmp_path: Path, scp: Any, associate: Any) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Nothing to see here.\n" * 20)
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [EXPLICIT])])
    with pytest.raises(NotDicomError):
        assoc.send_c_store(path)
    assert assoc.is_established  # nothing was sent


# -- conversions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (EXPLICIT, IMPLICIT),  # streamed
        (EXPLICIT, DEFLATED),  # streamed
        (DEFLATED, EXPLICIT),  # streamed
        (DEFLATED, IMPLICIT),  # streamed
        (EXPLICIT, BIG_ENDIAN),
        (BIG_ENDIAN, EXPLICIT),
        (IMPLICIT, EXPLICIT),
    ],
)
def test_native_conversions_keep_every_element(
    tmp_path: Path, scp: Any, associate: Any, source: str, target: str
) -> None:
    ds = ct_dataset()
    path = file_in(tmp_path, source, ds)
    server = scp({CT_IMAGE_STORAGE: [target]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [source, target])])
    assert assoc.send_c_store(path).Status == 0
    (got,) = server.received
    assert got.transfer_syntax == target
    sent = decode_dataset(data_set_bytes(path), source)
    back = tc.transcode(got.data, target, EXPLICIT)
    assert_same_elements(decode_dataset(back, EXPLICIT), tc_explicit(sent, source))


def tc_explicit(ds: Dataset, syntax: str) -> Dataset:
    return decode_dataset(tc.transcode(encode_dataset(ds, syntax), syntax, EXPLICIT), EXPLICIT)


@pytest.mark.parametrize(
    ("source", "accepted", "expected"),
    [
        (RLE, [EXPLICIT], EXPLICIT),  # decompressed
        (EXPLICIT, [RLE], RLE),  # compressed losslessly
        (IMPLICIT, [RLE], RLE),
        (J2K_LOSSLESS, [RLE, EXPLICIT], RLE),  # re-encoded losslessly before decompressed
        (J2K_LOSSLESS, [IMPLICIT], IMPLICIT),
    ],
)
def test_pixel_conversions_keep_the_image(
    tmp_path: Path, scp: Any, associate: Any, source: str, accepted: list[str], expected: str
) -> None:
    for syntax in (source, expected):
        if not tc.is_native(syntax) and not (tc.can_encode(syntax) and tc.can_decode(syntax)):
            pytest.skip(f"no codec for {syntax} here (pip install dicomnet[codecs])")
    ds = ct_dataset()
    path = file_in(tmp_path, source, ds)
    server = scp({CT_IMAGE_STORAGE: accepted})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [ts]) for ts in accepted])
    assert assoc.send_c_store(path).Status == 0
    (got,) = server.received
    assert got.transfer_syntax == expected
    assert got.sop_instance_uid == ds.SOPInstanceUID
    assert np.array_equal(image(got.data, expected), image(encode_dataset(ds, EXPLICIT), EXPLICIT))


def test_the_own_syntax_is_preferred(tmp_path: Path, scp: Any, associate: Any) -> None:
    server = scp({CT_IMAGE_STORAGE: [IMPLICIT, EXPLICIT, RLE, DEFLATED]})
    proposed = [(CT_IMAGE_STORAGE, [ts]) for ts in (IMPLICIT, RLE, DEFLATED, EXPLICIT)]
    assoc = associate(server.port, proposed)
    for syntax in (EXPLICIT, RLE, DEFLATED, IMPLICIT):
        assert assoc.send_c_store(file_in(tmp_path, syntax)).Status == 0
    assert [r.transfer_syntax for r in server.received] == [EXPLICIT, RLE, DEFLATED, IMPLICIT]


def context(cid: int, syntax: str, sop_class: str = CT_IMAGE_STORAGE) -> NegotiatedContext:
    return NegotiatedContext(cid, sop_class, syntax, 0, as_scu=True)


def test_choose_context_preference_and_errors() -> None:
    contexts = [context(1, BIG_ENDIAN), context(3, IMPLICIT), context(5, RLE), context(7, IMPLICIT)]
    assert choose_context(contexts, CT_IMAGE_STORAGE, EXPLICIT)[0].context_id == 3
    assert choose_context(contexts, CT_IMAGE_STORAGE, RLE) == (contexts[2], tc.Conversion.NONE)
    with pytest.raises(ValueError, match="No presentation context for 'MR Image Storage'"):
        choose_context(contexts, MR, EXPLICIT)
    not_scu = [NegotiatedContext(1, MR, EXPLICIT, 0, as_scu=False, as_scp=True)]
    with pytest.raises(ValueError, match="No presentation context"):
        choose_context(not_scu, MR, EXPLICIT)
    jpeg = [context(1, JPEG_BASELINE)]
    with pytest.raises(ValueError, match="accepted only 'JPEG Baseline") as info:
        choose_context(jpeg, CT_IMAGE_STORAGE, EXPLICIT)
    assert "without loss" in str(info.value)


def test_no_usable_context_sends_nothing(tmp_path: Path, scp: Any, associate: Any) -> None:
    server = scp({CT_IMAGE_STORAGE: [JPEG_BASELINE], MR: [EXPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [JPEG_BASELINE]), (MR, [EXPLICIT])])
    with pytest.raises(ValueError, match="JPEG Baseline"):
        assoc.send_c_store(file_in(tmp_path, EXPLICIT))
    missing = ct_dataset()
    del missing.SOPInstanceUID
    with pytest.raises(AttributeError, match="SOPInstanceUID"):
        assoc.send_c_store(missing)
    assert assoc.is_established and not server.received


# -- statuses and failures ---------------------------------------------------------------------


@pytest.mark.parametrize("code", [0xB000, 0xA700, 0xC123])
def test_the_peers_status_is_returned(tmp_path: Path, scp: Any, associate: Any, code: int) -> None:
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]}, status=code)
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [EXPLICIT])])
    assert assoc.send_c_store(file_in(tmp_path, EXPLICIT)).Status == code


class FailingStream(io.RawIOBase):
    """A file that fails after its first megabyte."""

    def __init__(self, data: bytes) -> None:
        self._fp = io.BytesIO(data)
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        if self._fp.tell() >= 1024 * 1024:
            raise OSError("disk on fire")
        return self._fp.read(n)


def test_a_read_error_while_streaming_aborts(tmp_path: Path, scp: Any, associate: Any) -> None:
    path, _digest, _length = write_big_file(tmp_path / "big.dcm", 3)
    server = scp({"1.2.840.10008.5.1.4.1.1.7": [EXPLICIT]})
    assoc = associate(server.port, [("1.2.840.10008.5.1.4.1.1.7", [EXPLICIT])])
    with pytest.raises(OSError, match="disk on fire"):
        c_store(assoc, FailingStream(path.read_bytes()))
    assert assoc.is_aborted
    assert not server.received


def test_a_malformed_data_set_while_converting_aborts(
    tmp_path: Path, scp: Any, associate: Any
) -> None:
    good = file_in(tmp_path, EXPLICIT)
    path = tmp_path / "broken.dcm"
    raw = good.read_bytes()
    path.write_bytes(raw[: len(raw) - 100])  # cut in the middle of the pixel data
    server = scp({CT_IMAGE_STORAGE: [IMPLICIT]})
    assoc = associate(server.port, [(CT_IMAGE_STORAGE, [EXPLICIT, IMPLICIT])])
    with pytest.raises(ValueError, match="ends in the middle"):
        assoc.send_c_store(path)
    assert assoc.is_aborted


# -- many files --------------------------------------------------------------------------------


def test_send_files_mixed_classes_and_syntaxes(tmp_path: Path, scp: Any) -> None:
    files = [
        file_in(tmp_path, EXPLICIT),
        file_in(tmp_path, RLE),
        file_in(tmp_path, IMPLICIT, ct_dataset(sop_class=MR)),
        file_in(tmp_path, DEFLATED, ct_dataset(sop_class=MR)),
    ]
    (tmp_path / "README").write_text("not DICOM")
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT, IMPLICIT, RLE], MR: [EXPLICIT, IMPLICIT]})
    seen: list[Any] = []
    report = send_files(
        AE("SEND-TEST", plugins=[]),
        "127.0.0.1",
        server.port,
        [tmp_path],
        ae_title="STORE-SCP",
        progress=seen.append,
    )
    assert report.associations == 1 and report.ok
    assert (report.sent, report.failures, report.skipped) == (4, 0, 1)
    assert seen == report.results
    by_path = {r.path: r for r in report.results}
    assert by_path[str(tmp_path / "README")].category == "Skipped"
    assert by_path[str(files[1])].transfer_syntax == RLE
    assert by_path[str(files[3])].conversion is tc.Conversion.SYNTAX  # MR deflated -> inflated
    assert (
        report.nbytes
        == sum(len(data_set_bytes(p)) for p in files[:3]) + by_path[str(files[3])].nbytes
    )
    assert sorted(r.sop_instance_uid for r in server.received) == sorted(
        read_file_info(p).sop_instance_uid for p in files
    )


def test_send_files_splits_over_associations(tmp_path: Path, scp: Any) -> None:
    classes = [CT_IMAGE_STORAGE, MR, "1.2.840.10008.5.1.4.1.1.7"]
    files = [
        file_in(tmp_path, EXPLICIT, ct_dataset(sop_class=uid, seed=n))
        for n, uid in enumerate(classes)
    ]
    server = scp({uid: [EXPLICIT] for uid in classes})
    report = send_files(
        AE("SEND-TEST", plugins=[]),
        "127.0.0.1",
        server.port,
        files,
        ae_title="STORE-SCP",
        max_contexts=2,
    )
    assert report.ok and report.sent == 3
    assert report.associations == 2  # 3 contexts, 2 per association
    assert len(server.received) == 3


def test_send_files_without_a_peer(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = send_files(
        AE("SEND-TEST", plugins=[]), "127.0.0.1", port, [file_in(tmp_path, EXPLICIT)]
    )
    assert report.associations == 0 and report.failed_associations == 1
    (result,) = report.results
    assert result.category == "Error" and "no association" in (result.error or "")


def test_send_files_reports_refusals_and_goes_on(tmp_path: Path, scp: Any) -> None:
    ok, refused = ct_dataset(seed=1), ct_dataset(seed=2)
    files = [file_in(tmp_path, EXPLICIT, ok), file_in(tmp_path, EXPLICIT, refused)]
    files.append(file_in(tmp_path, EXPLICIT, ct_dataset(sop_class=MR)))  # MR not accepted

    def status(event: Any) -> int:
        return 0xA700 if event.request.AffectedSOPInstanceUID == refused.SOPInstanceUID else 0

    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]}, status=status)
    report = send_files(
        AE("SEND-TEST", plugins=[]), "127.0.0.1", server.port, files, ae_title="STORE-SCP"
    )
    assert [r.category for r in report.results] == ["Success", "Failure", "Error"]
    assert report.results[1].status == 0xA700
    assert "MR Image Storage" in (report.results[2].error or "")
    assert not report.ok and report.failures == 2


def test_send_files_resumes_after_an_abort(tmp_path: Path, scp: Any) -> None:
    datasets = [ct_dataset(seed=n) for n in range(4)]
    files = [file_in(tmp_path, EXPLICIT, ds) for ds in datasets]
    victim = datasets[1].SOPInstanceUID

    def status(event: Any) -> int:
        if event.request.AffectedSOPInstanceUID == victim:
            event.assoc.abort()
        return 0

    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]}, status=status)
    report = send_files(
        AE("SEND-TEST", plugins=[]), "127.0.0.1", server.port, files, ae_title="STORE-SCP"
    )
    assert [r.category for r in report.results] == ["Success", "Error", "Success", "Success"]
    assert report.associations == 2


def test_iter_files_walks_folders(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "deep").mkdir()
    for name in ("a1", "b/b1", "b/deep/c1", "a0"):
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])] == ["a0", "a1"]
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path], recursive=True)] == [
        "a0",
        "a1",
        "b/b1",
        "b/deep/c1",
    ]
