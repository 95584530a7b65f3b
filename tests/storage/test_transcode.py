"""Transfer syntax conversion (dicomnet.transcode; PS3.5 7.1, 7.3, 7.5, A.1-A.5, A.4).

Native syntaxes convert element by element with nothing lost; pixel data
compresses and decompresses through pydicom's codecs; the streaming
converters give the same data set whatever the chunking; nothing lossy
happens unless asked.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from dicomnet import transcode as tc
from dicomnet.datasets import decode_dataset, encode_dataset
from tests.storage.send_support import (
    BIG_ENDIAN,
    DEFLATED,
    EXPLICIT,
    IMPLICIT,
    J2K_LOSSLESS,
    JPEG_LS_LOSSLESS,
    RLE,
    ct_dataset,
)

J2K = "1.2.840.10008.1.2.4.91"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
PRIVATE_SYNTAX = "1.2.3.4.5.6.7"


_WORD = {"OW": "H", "OF": "I", "OL": "I", "OD": "Q", "OV": "Q"}


def assert_same_elements(a: Dataset, b: Dataset, *, swapped: bool = False) -> None:
    """Equal element by element (tags, values; sequences recursively); VRs may be resolved.

    ``swapped``: ``a`` is big endian and ``b`` little endian, so the values
    pydicom keeps as bytes (OW, OF...) are compared word by word.
    """
    assert [e.tag for e in a] == [e.tag for e in b]
    for x, y in zip(a, b, strict=True):
        if x.VR == "SQ":
            assert len(x.value) == len(y.value), x.tag
            for i, j in zip(x.value, y.value, strict=True):
                assert_same_elements(i, j, swapped=swapped)
        elif swapped and x.VR in _WORD:
            assert tc._swap(x.value, _WORD[x.VR]) == y.value, x.tag
        elif "UN" in (x.VR, y.VR) and x.VR != y.VR:
            # implicit VR: an unknown private element reads as UN; its bytes are the same
            assert _as_bytes(x.value) == _as_bytes(y.value), x.tag
        else:
            assert x.value == y.value, x.tag


def _as_bytes(value: object) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode("latin-1")
    return data + b" " if len(data) % 2 else data


def pixels(ds: Dataset, syntax: str) -> np.ndarray:
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    return ds.pixel_array.copy()


# -- what converts to what ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (EXPLICIT, EXPLICIT, tc.Conversion.NONE),
        (EXPLICIT, IMPLICIT, tc.Conversion.SYNTAX),
        (BIG_ENDIAN, DEFLATED, tc.Conversion.SYNTAX),
        (EXPLICIT, RLE, tc.Conversion.RECOMPRESS),
        (RLE, EXPLICIT, tc.Conversion.DECOMPRESS),
        (RLE, J2K_LOSSLESS, tc.Conversion.RECOMPRESS),
        (JPEG_BASELINE, EXPLICIT, tc.Conversion.DECOMPRESS),
        (JPEG_BASELINE, RLE, tc.Conversion.RECOMPRESS),  # no further loss
        (PRIVATE_SYNTAX, PRIVATE_SYNTAX, tc.Conversion.NONE),
        (PRIVATE_SYNTAX, EXPLICIT, None),
        (EXPLICIT, PRIVATE_SYNTAX, None),
        (EXPLICIT, JPEG_BASELINE, None),  # lossy and no encoder
    ],
)
def test_conversion_kinds(source: str, target: str, expected: tc.Conversion | None) -> None:
    if expected in (tc.Conversion.RECOMPRESS,) and not tc.can_encode(target):
        pytest.skip(f"no encoder for {UID(target).name} here")
    if source == JPEG_BASELINE and not tc.can_decode(source):
        pytest.skip("no JPEG decoder here (pip install dicomnet[codecs])")
    assert tc.conversion(source, target) == expected


def test_lossy_only_when_allowed() -> None:
    if not tc.can_encode(J2K):
        pytest.skip("no JPEG 2000 encoder here (pip install dicomnet[codecs])")
    assert tc.conversion(EXPLICIT, J2K) is None
    assert tc.conversion(EXPLICIT, J2K, allow_lossy=True) == tc.Conversion.LOSSY
    assert tc.best_target(EXPLICIT, [J2K]) is None
    assert tc.best_target(EXPLICIT, [J2K], allow_lossy=True) == (J2K, tc.Conversion.LOSSY)


@pytest.mark.parametrize(
    ("uid", "lossless"),
    [
        (EXPLICIT, True),
        (DEFLATED, True),
        (RLE, True),
        (J2K_LOSSLESS, True),
        (JPEG_LS_LOSSLESS, True),
        ("1.2.840.10008.1.2.4.70", True),
        (J2K, False),
        (JPEG_LS_NEAR, False),
        (JPEG_BASELINE, False),
    ],
)
def test_is_lossless(uid: str, lossless: bool) -> None:
    assert tc.is_lossless(uid) is lossless


def test_preference_order() -> None:
    """Own syntax > another native one > lossless re-compression > decompression."""
    everything = [IMPLICIT, RLE, EXPLICIT, BIG_ENDIAN, DEFLATED, J2K_LOSSLESS]
    assert tc.best_target(EXPLICIT, everything) == (EXPLICIT, tc.Conversion.NONE)
    assert tc.best_target(DEFLATED, [BIG_ENDIAN, IMPLICIT, RLE]) == (
        IMPLICIT,
        tc.Conversion.SYNTAX,
    )
    assert tc.best_target(EXPLICIT, [BIG_ENDIAN, IMPLICIT]) == (IMPLICIT, tc.Conversion.SYNTAX)
    assert tc.best_target(EXPLICIT, [RLE, J2K_LOSSLESS]) == (RLE, tc.Conversion.RECOMPRESS)
    assert tc.best_target(RLE, [IMPLICIT, EXPLICIT]) == (EXPLICIT, tc.Conversion.DECOMPRESS)
    if tc.can_encode(J2K_LOSSLESS):
        assert tc.best_target(RLE, [EXPLICIT, J2K_LOSSLESS]) == (
            J2K_LOSSLESS,
            tc.Conversion.RECOMPRESS,
        )
    assert tc.best_target(EXPLICIT, [PRIVATE_SYNTAX]) is None


# -- native syntaxes, in memory ----------------------------------------------------------------


@pytest.mark.parametrize("target", [IMPLICIT, BIG_ENDIAN, DEFLATED])
def test_native_round_trip_keeps_every_element(target: str) -> None:
    ds = ct_dataset()
    original = encode_dataset(ds, EXPLICIT)
    there = tc.transcode(original, EXPLICIT, target)
    back = tc.transcode(there, target, EXPLICIT)
    assert_same_elements(decode_dataset(back, EXPLICIT), decode_dataset(original, EXPLICIT))
    assert_same_elements(
        decode_dataset(there, target),
        decode_dataset(original, EXPLICIT),
        swapped=target == BIG_ENDIAN,
    )
    if target != IMPLICIT:  # through implicit VR, an unknown private element comes back UN
        assert back == original


def test_big_endian_swaps_the_pixel_values() -> None:
    """OW values change byte order (PS3.5 7.3): the image read from the big endian
    data set is the same image."""
    ds = ct_dataset()
    expected = pixels(decode_dataset(encode_dataset(ds, EXPLICIT), EXPLICIT), EXPLICIT)
    big = tc.transcode(encode_dataset(ds, EXPLICIT), EXPLICIT, BIG_ENDIAN)
    got = decode_dataset(big, BIG_ENDIAN)
    assert np.array_equal(pixels(got, BIG_ENDIAN), expected)
    # and the raw bytes really were swapped
    assert got.PixelData != ds.PixelData
    assert struct.unpack(">H", got.PixelData[:2]) == struct.unpack("<H", ds.PixelData[:2])


def test_implicit_to_big_endian_resolves_ambiguous_vr() -> None:
    """Implicit VR gives pixel data the VR 'OB or OW'; it must be written and swapped as OW."""
    implicit = tc.transcode(encode_dataset(ct_dataset(), EXPLICIT), EXPLICIT, IMPLICIT)
    big = tc.transcode(implicit, IMPLICIT, BIG_ENDIAN)
    expected = pixels(decode_dataset(implicit, IMPLICIT), IMPLICIT)
    assert np.array_equal(pixels(decode_dataset(big, BIG_ENDIAN), BIG_ENDIAN), expected)


def test_impossible_conversion_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot convert"):
        tc.transcode(encode_dataset(ct_dataset(), EXPLICIT), EXPLICIT, PRIVATE_SYNTAX)


# -- pixel data codecs -------------------------------------------------------------------------


def compressed(ds: Dataset, syntax: str) -> bytes:
    copy = decode_dataset(encode_dataset(ds, EXPLICIT), EXPLICIT)
    copy.file_meta = FileMetaDataset()
    copy.file_meta.TransferSyntaxUID = EXPLICIT
    copy.compress(syntax, generate_instance_uid=False)
    return encode_dataset(copy, syntax)


def test_rle_to_uncompressed_gives_the_same_pixels() -> None:
    ds = ct_dataset()
    expected = pixels(decode_dataset(encode_dataset(ds, EXPLICIT), EXPLICIT), EXPLICIT)
    rle = compressed(ds, RLE)
    for target in (EXPLICIT, IMPLICIT, BIG_ENDIAN, DEFLATED):
        out = decode_dataset(tc.transcode(rle, RLE, target), target)
        assert np.array_equal(pixels(out, target), expected), target
        assert out.SOPInstanceUID == ds.SOPInstanceUID  # lossless: same instance


def test_uncompressed_to_rle_gives_the_same_pixels() -> None:
    ds = ct_dataset()
    expected = pixels(decode_dataset(encode_dataset(ds, EXPLICIT), EXPLICIT), EXPLICIT)
    for source in (EXPLICIT, IMPLICIT, BIG_ENDIAN):
        data = tc.transcode(encode_dataset(ds, EXPLICIT), EXPLICIT, source)
        out = decode_dataset(tc.transcode(data, source, RLE), RLE)
        assert "LossyImageCompression" not in out
        assert np.array_equal(pixels(out, RLE), expected), source


@pytest.mark.parametrize("syntax", [J2K_LOSSLESS, JPEG_LS_LOSSLESS])
def test_lossless_jpeg_family_round_trip(syntax: str) -> None:
    """A JPEG 2000 / JPEG-LS lossless image decompresses to the original pixels (pylibjpeg)."""
    if not tc.can_encode(syntax):
        pytest.skip(
            f"no {UID(syntax).name} encoder here: pip install dicomnet[codecs] "
            "(JPEG-LS encoding needs pyjpegls)"
        )
    if not tc.can_decode(syntax):
        pytest.skip(f"no {UID(syntax).name} decoder here: pip install dicomnet[codecs]")
    ds = ct_dataset()
    expected = pixels(decode_dataset(encode_dataset(ds, EXPLICIT), EXPLICIT), EXPLICIT)
    data = compressed(ds, syntax)
    out = decode_dataset(tc.transcode(data, syntax, IMPLICIT), IMPLICIT)
    assert np.array_equal(pixels(out, IMPLICIT), expected)
    # and re-encoded losslessly in another compressed syntax rather than decompressed
    rle = decode_dataset(tc.transcode(data, syntax, RLE), RLE)
    assert np.array_equal(pixels(rle, RLE), expected)


def test_lossy_compression_makes_a_new_derived_instance() -> None:
    if not tc.can_encode(J2K):
        pytest.skip("no JPEG 2000 encoder here (pip install dicomnet[codecs])")
    ds = ct_dataset()
    data = encode_dataset(ds, EXPLICIT)
    with pytest.raises(ValueError, match="cannot convert"):
        tc.transcode(data, EXPLICIT, J2K)
    out = decode_dataset(tc.transcode(data, EXPLICIT, J2K, allow_lossy=True), J2K)
    assert out.LossyImageCompression == "01"
    assert out.ImageType[0] == "DERIVED"
    assert out.SOPInstanceUID != ds.SOPInstanceUID


# -- streaming ---------------------------------------------------------------------------------


def rechunk(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    pos = 0
    for size in sizes:
        if pos >= len(data):
            return
        yield data[pos : pos + size]
        pos += size
    if pos < len(data):
        yield data[pos:]


def join(chunks: Iterable[bytes | bytearray | memoryview]) -> bytes:
    return b"".join(bytes(c) for c in chunks)


def test_stream_converters_exist_for_the_cheap_conversions() -> None:
    assert tc.stream_converter(EXPLICIT, IMPLICIT) is tc.explicit_to_implicit
    assert tc.stream_converter(EXPLICIT, DEFLATED) is tc.deflate_chunks
    assert tc.stream_converter(DEFLATED, EXPLICIT) is tc.inflate_chunks
    assert tc.stream_converter(DEFLATED, IMPLICIT) is not None
    assert tc.stream_converter(IMPLICIT, EXPLICIT) is None  # needs the dictionary: in memory
    assert tc.stream_converter(EXPLICIT, BIG_ENDIAN) is None
    assert tc.stream_converter(EXPLICIT, RLE) is None


def test_explicit_to_implicit_streaming_matches_pydicom() -> None:
    ds = ct_dataset()
    explicit = encode_dataset(ds, EXPLICIT)
    streamed = join(tc.explicit_to_implicit([explicit]))
    assert_same_elements(decode_dataset(streamed, IMPLICIT), decode_dataset(explicit, EXPLICIT))


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 97), min_size=1, max_size=200))
def test_streaming_does_not_depend_on_chunking(sizes: list[int]) -> None:
    explicit = encode_dataset(ct_dataset(rows=8, columns=8), EXPLICIT)
    whole = join(tc.explicit_to_implicit([explicit]))
    assert join(tc.explicit_to_implicit(rechunk(explicit, sizes))) == whole
    deflated = join(tc.deflate_chunks(rechunk(explicit, sizes)))
    assert zlib.decompress(deflated, -zlib.MAX_WBITS) == explicit
    assert join(tc.inflate_chunks(rechunk(deflated, sizes))) == explicit


def explicit_element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def item(content: bytes, *, undefined: bool = False) -> bytes:
    if undefined:
        return (
            struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
            + content
            + bytes.fromhex("feff0de000000000")
        )
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(content)) + content


def test_explicit_to_implicit_sequences_of_both_lengths_and_group_lengths() -> None:
    inner = explicit_element(0x0008, 0x0100, b"SH", b"CODE01")
    defined_sq = explicit_element(0x0008, 0x1115, b"SQ", item(inner) + item(b""))
    undefined_sq = (
        struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
        + item(inner, undefined=True)
        + bytes.fromhex("feffdde000000000")
    )
    group_length = explicit_element(0x0008, 0x0000, b"UL", struct.pack("<I", 99))
    data = (
        group_length
        + explicit_element(0x0008, 0x0016, b"UI", b"1.2.3\0")
        + defined_sq
        + undefined_sq
        + explicit_element(0x0010, 0x0010, b"PN", b"A^B ")
    )
    out = join(tc.explicit_to_implicit([data]))
    ds = decode_dataset(out, IMPLICIT)
    assert Dataset.__contains__(ds, 0x00080000) is False  # the group length went
    assert ds.SOPClassUID == "1.2.3"
    assert ds[0x00081115][0].CodeValue == "CODE01"
    assert len(ds[0x00081115].value) == 2
    assert ds[0x00081140][0].CodeValue == "CODE01"
    assert ds.PatientName == "A^B"


def test_un_of_undefined_length_is_copied_as_it_is() -> None:
    """A UN element of undefined length already holds implicit VR LE (PS3.5 6.2.2)."""
    implicit_inner = struct.pack("<HHI", 0x0011, 0x1001, 4) + b"ABCD"
    body = (
        struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + implicit_inner
        + bytes.fromhex("feff0de000000000")
        + bytes.fromhex("feffdde000000000")
    )
    un = struct.pack("<HH2sHI", 0x0011, 0x1010, b"UN", 0, 0xFFFFFFFF) + body
    out = join(tc.explicit_to_implicit([un]))
    assert out == struct.pack("<HHI", 0x0011, 0x1010, 0xFFFFFFFF) + body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (explicit_element(0x0010, 0x0010, b"PN", b"A^B ")[:-2], "ends in the middle"),
        (struct.pack("<HHI", 0x0010, 0x0010, 4) + b"A^B ", "no explicit VR"),
        (
            struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF),
            "encapsulated pixel data",
        ),
    ],
)
def test_explicit_to_implicit_refuses_what_is_not_explicit_native(
    data: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        join(tc.explicit_to_implicit([data]))


def test_inflate_output_is_bounded_per_chunk() -> None:
    """A small deflated input that inflates hugely comes out in bounded chunks."""
    data = bytes(64 * 1024 * 1024)
    deflated = zlib.compress(data, 9)[2:-4]  # raw deflate
    total = 0
    for chunk in tc.inflate_chunks([deflated]):
        assert len(chunk) <= 2 * tc.STREAM_CHUNK_SIZE
        total += len(chunk)
    assert total == len(data)


def test_explicit_to_implicit_streams_a_large_value_in_bounded_chunks() -> None:
    """A value far larger than a chunk (multi-frame pixel data) is passed on as it is read,
    never gathered whole: the output chunks stay bounded, and the first comes out long
    before the input is exhausted."""
    size = 16 * tc.STREAM_CHUNK_SIZE
    head = encode_dataset(ct_dataset(with_sequence=False), EXPLICIT)
    head = head[: head.index(struct.pack("<HH", 0x7FE0, 0x0010))]
    pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, size)
    block = bytes(range(256)) * 256  # 64 KiB
    consumed = [0]

    def chunks() -> Iterator[bytes]:
        for piece in (head, pixel_header):
            consumed[0] += len(piece)
            yield piece
        for _ in range(size // len(block)):
            consumed[0] += len(block)
            yield block

    total = len(head) + len(pixel_header) + size
    first_at = None
    largest = 0
    out = 0
    for chunk in tc.explicit_to_implicit(chunks()):
        if first_at is None:
            first_at = consumed[0]
        largest = max(largest, len(chunk))
        out += len(chunk)
    assert largest <= 2 * tc.STREAM_CHUNK_SIZE
    assert first_at is not None and first_at <= 2 * tc.STREAM_CHUNK_SIZE < total
    assert out == total - 4  # the pixel data header loses its VR and reserved bytes


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def test_deflated_data_sets_have_even_length() -> None:
    """PS3.5 A.5: a deflated bit stream of odd length gets a single trailing NULL byte --
    whether deflated as it streams or encoded from a Dataset; it still inflates the same."""
    parities = set()
    for seed in range(1, 40):
        raw = encode_dataset(ct_dataset(rows=8, columns=8, seed=seed), EXPLICIT)
        deflated = raw_deflate(raw)
        odd = len(deflated) % 2
        parities.add(odd)
        expected = deflated + b"\x00" * odd
        assert join(tc.deflate_chunks([raw[:100], raw[100:]])) == expected, seed
        assert encode_dataset(decode_dataset(raw, EXPLICIT), DEFLATED) == expected, seed
        assert join(tc.inflate_chunks([expected])) == raw
        assert encode_dataset(decode_dataset(expected, DEFLATED), EXPLICIT) == raw
        if parities == {0, 1}:
            break
    assert parities == {0, 1}, "no data set of each parity found: the test proves nothing"


def test_corrupt_deflated_data_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="corrupt"):
        join(tc.inflate_chunks([b"\xff\xff\xff\xff not deflate"]))
