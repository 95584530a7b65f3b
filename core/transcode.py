"""Transfer syntax conversion for sending (PS3.5 Section 10 and Annex A; PS3.4 B.4.1).

A C-STORE SCU sends each data set in the transfer syntax of an accepted
presentation context. When the peer did not accept the data set's own syntax,
it must be converted, and this module says which conversions are possible,
which is best, and does them.

Rules this module keeps:

* **Nothing lossy unless asked.** A conversion never adds loss to the pixel
  data unless the caller opted in (``allow_lossy=True``). Lossy compression
  then also does what PS3.3 C.7.6.1.1.5 asks of a lossy copy: Lossy Image
  Compression "01", Image Type value 1 DERIVED and a new SOP Instance UID.
* **Preference, best first** (:class:`Conversion`): the data set's own syntax
  (nothing to do); another native syntax (only the encoding of the data set
  changes: Implicit/Explicit VR Little Endian, Deflated Explicit VR Little
  Endian, Explicit VR Big Endian, PS3.5 A.1-A.5); lossless re-encoding of the
  pixel data (a native image compressed losslessly, or a compressed image
  re-encoded in another lossless syntax, keeping its size down); decompression
  to a native syntax; lossy compression, last and only when allowed.
* **Streaming where the bytes allow it.** Explicit VR Little Endian to Implicit
  VR Little Endian -- the conversion every peer can take, since every DICOM AE
  supports Implicit VR Little Endian (PS3.5 10.1) -- and deflating or inflating
  (PS3.5 A.5) run chunk by chunk over the bytes read from the file
  (:func:`stream_converter`), in bounded memory for any size. The other
  conversions decode the data set with pydicom, in memory.

Pixel data codecs are pydicom's (``Dataset.decompress``/``compress``, backed by
pylibjpeg, openjpeg... when installed: ``pip install dicomnet[codecs]``). RLE
Lossless needs no extra package. Whether a codec is available is asked of
pydicom, once per transfer syntax (:func:`can_decode`, :func:`can_encode`).
"""

from __future__ import annotations

import enum
import functools
import struct
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, generate_uid

from .datasets import decode_dataset, encode_dataset

__all__ = [
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "NATIVE_SYNTAXES",
    "STREAM_CHUNK_SIZE",
    "Conversion",
    "best_target",
    "can_decode",
    "can_encode",
    "conversion",
    "convert_dataset",
    "deflate_chunks",
    "encode",
    "explicit_to_implicit",
    "inflate_chunks",
    "is_lossless",
    "is_native",
    "stream_converter",
    "transcode",
]

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

#: the syntaxes whose pixel data is native (not encapsulated), in order of preference
#: as a conversion target: the cheapest conversions first
NATIVE_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
)

#: size of the chunks the streaming converters produce
STREAM_CHUNK_SIZE = 1024 * 1024

#: compression ratio used for lossy JPEG 2000 when lossy compression is allowed
LOSSY_J2K_RATIO = 10.0
#: maximum error used for JPEG-LS near-lossless when lossy compression is allowed
LOSSY_JLS_ERROR = 2

#: compressed targets, by preference among the lossless ones: cheap encoders first
_COMPRESSED_ORDER = (
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
)


class Conversion(enum.IntEnum):
    """What sending a data set in another transfer syntax takes; lower is better."""

    #: the data set's own syntax: sent as it is
    NONE = 0
    #: another native syntax: the data set's encoding changes, the pixel values do not
    SYNTAX = 1
    #: the pixel data is (re-)compressed without loss
    RECOMPRESS = 2
    #: the pixel data is decompressed to a native syntax
    DECOMPRESS = 3
    #: the pixel data is compressed with loss (only when allowed)
    LOSSY = 4


def is_native(transfer_syntax: str) -> bool:
    """Whether pixel data in this syntax is native (PS3.5 A.1-A.5), not encapsulated."""
    return transfer_syntax in NATIVE_SYNTAXES


@functools.cache
def is_lossless(transfer_syntax: str) -> bool:
    """Whether this syntax keeps every pixel value: native, or a lossless-only compression.

    Read from the syntax's name in PS3.6 (``... Lossless ...``, but not
    ``Near-Lossless``). JPEG 2000 (1.2.840.10008.1.2.4.91) and the other
    "lossy or lossless" syntaxes count as lossy: nothing in the syntax says
    which was used.
    """
    if is_native(transfer_syntax):
        return True
    name = UID(transfer_syntax).name
    return "Lossless" in name and "Near-Lossless" not in name


def _known(transfer_syntax: str) -> bool:
    uid = UID(transfer_syntax)
    return bool(uid.is_transfer_syntax) and not uid.is_private


@functools.cache
def can_decode(transfer_syntax: str) -> bool:
    """Whether pydicom can decompress pixel data in this (compressed) syntax here."""
    from pydicom.pixels.decoders.base import get_decoder

    try:
        return bool(get_decoder(transfer_syntax).is_available)
    except (NotImplementedError, ValueError, KeyError):
        return False


@functools.cache
def can_encode(transfer_syntax: str) -> bool:
    """Whether pydicom can compress pixel data into this syntax here."""
    from pydicom.pixels.encoders.base import get_encoder

    try:
        return bool(get_encoder(transfer_syntax).is_available)
    except (NotImplementedError, ValueError, KeyError):
        return False


def conversion(source: str, target: str, *, allow_lossy: bool = False) -> Conversion | None:
    """What it takes to send a data set encoded in ``source`` as ``target``; ``None``: impossible.

    Impossible: a private or unknown syntax on either side (other than the
    data set's own), a codec that is not installed, or loss that was not
    allowed. A lossy source may be decompressed or re-encoded losslessly (no
    further loss); encoding it again lossily needs ``allow_lossy``.
    """
    if source == target:
        return Conversion.NONE
    if not (_known(source) and _known(target)):
        return None
    source_native, target_native = is_native(source), is_native(target)
    if source_native and target_native:
        return Conversion.SYNTAX
    if not source_native and not can_decode(source):
        return None
    if target_native:
        return Conversion.DECOMPRESS
    if not can_encode(target):
        return None
    if is_lossless(target):
        return Conversion.RECOMPRESS
    return Conversion.LOSSY if allow_lossy else None


def _target_rank(target: str) -> int:
    if target in NATIVE_SYNTAXES:
        return NATIVE_SYNTAXES.index(target)
    if target in _COMPRESSED_ORDER:
        return len(NATIVE_SYNTAXES) + _COMPRESSED_ORDER.index(target)
    return len(NATIVE_SYNTAXES) + len(_COMPRESSED_ORDER)


def best_target(
    source: str, targets: Iterable[str], *, allow_lossy: bool = False
) -> tuple[str, Conversion] | None:
    """The best of ``targets`` for a data set in ``source`` (see the module docstring)."""
    best: tuple[tuple[int, int, str], str, Conversion] | None = None
    for target in targets:
        kind = conversion(source, target, allow_lossy=allow_lossy)
        if kind is None:
            continue
        key = (int(kind), _target_rank(target), target)
        if best is None or key < best[0]:
            best = (key, target, kind)
    return None if best is None else (best[1], best[2])


# -- in-memory conversion (pydicom) ----------------------------------------------------------

#: byte-swapping unit of the VRs whose values pydicom keeps as raw bytes (PS3.5 7.3)
_SWAP_UNIT = {"OW": "H", "OF": "I", "OL": "I", "OD": "Q", "OV": "Q"}


def _swap(value: bytes, code: str) -> bytes:
    words = array(code)
    if len(value) % words.itemsize:
        return value  # malformed: left alone rather than guessed at
    words.frombytes(value)
    words.byteswap()
    return words.tobytes()


def _swap_raw_values(ds: Dataset, *, little_endian_out: bool) -> None:
    """Swap the byte order of the OW/OF/OL/OD/OV values of ``ds``, recursively (PS3.5 7.3).

    pydicom decodes numeric VRs into numbers, which it writes in any byte
    order, but keeps these VRs as bytes and writes them as they are; changing
    the byte order of the data set is our job. Every element is decoded first,
    so that none is read later with the wrong byte order, and ambiguous VRs
    (``OB or OW``...) are resolved as the writer will resolve them.
    """
    from pydicom.filewriter import correct_ambiguous_vr

    correct_ambiguous_vr(ds, little_endian_out)
    for elem in ds:  # decodes raw elements
        if elem.VR == "SQ":
            for item in elem.value:
                _swap_raw_values(item, little_endian_out=little_endian_out)
        else:
            code = _SWAP_UNIT.get(elem.VR)
            if code is not None and isinstance(elem.value, bytes | bytearray):
                elem.value = _swap(bytes(elem.value), code)


def _ensure_meta(ds: Dataset, transfer_syntax: str) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    meta.TransferSyntaxUID = UID(transfer_syntax)


def convert_dataset(ds: Dataset, source: str, target: str, *, allow_lossy: bool = False) -> Dataset:
    """Make ``ds`` (decoded from ``source``) ready to be encoded in ``target``, in place.

    Pixel data is decompressed or compressed as needed; for Explicit VR Big
    Endian on either side the raw-byte values are byte-swapped. Lossy
    compression (only with ``allow_lossy``) gives the data set a new SOP
    Instance UID and marks it lossy and derived (PS3.3 C.7.6.1.1.5).
    Returns ``ds``.

    :raises ValueError: when the conversion is impossible or a codec fails.
    """
    kind = conversion(source, target, allow_lossy=allow_lossy)
    if kind is None:
        raise ValueError(
            f"cannot convert a data set from '{UID(source).name}' to '{UID(target).name}'"
        )
    if kind is Conversion.NONE:
        return ds
    _ensure_meta(ds, source)
    has_pixels = "PixelData" in ds
    if source == EXPLICIT_VR_BIG_ENDIAN:
        _swap_raw_values(ds, little_endian_out=True)
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
    try:
        if has_pixels and not is_native(source):
            ds.decompress(generate_instance_uid=False)
        if has_pixels and not is_native(target):
            _compress(ds, target, lossy=kind is Conversion.LOSSY)
    except (RuntimeError, ValueError, NotImplementedError, ImportError) as exc:
        raise ValueError(
            f"cannot convert the pixel data from '{UID(source).name}' to "
            f"'{UID(target).name}': {exc}"
        ) from exc
    if target == EXPLICIT_VR_BIG_ENDIAN:
        _swap_raw_values(ds, little_endian_out=False)
    ds.file_meta.TransferSyntaxUID = UID(target)
    return ds


def _compress(ds: Dataset, target: str, *, lossy: bool) -> None:
    options: dict[str, Any] = {}
    if lossy:
        name = UID(target).name
        if "JPEG-LS" in name:
            options["jls_error"] = LOSSY_JLS_ERROR
        elif "2000" in name:
            options["j2k_cr"] = [LOSSY_J2K_RATIO]
    ds.compress(target, generate_instance_uid=False, **options)
    if lossy:
        ds.LossyImageCompression = "01"
        image_type = list(ds.get("ImageType") or ["DERIVED"])
        image_type[0] = "DERIVED"
        ds.ImageType = image_type
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def encode(ds: Dataset, transfer_syntax: str) -> bytes:
    """Encode ``ds`` (already converted, see :func:`convert_dataset`) in ``transfer_syntax``."""
    return encode_dataset(ds, transfer_syntax)


def transcode(
    data: bytes | bytearray | memoryview, source: str, target: str, *, allow_lossy: bool = False
) -> bytes:
    """A data set encoded in ``source``, re-encoded in ``target`` (in memory)."""
    if source == target:
        return bytes(data)
    ds = decode_dataset(data, source)
    return encode(convert_dataset(ds, source, target, allow_lossy=allow_lossy), target)


# -- streaming conversion ----------------------------------------------------------------------

Buffer = bytes | bytearray | memoryview
ChunkConverter = Callable[[Iterable[Buffer]], Iterator[Buffer]]


def stream_converter(source: str, target: str) -> ChunkConverter | None:
    """A chunk-to-chunk converter from ``source`` to ``target``, ``None`` if none streams.

    Streams: Explicit VR Little Endian to Implicit VR Little Endian, deflating
    and inflating (PS3.5 A.5), and their combinations.
    """
    explicit, implicit, deflated = (
        EXPLICIT_VR_LITTLE_ENDIAN,
        IMPLICIT_VR_LITTLE_ENDIAN,
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    )
    if (source, target) == (explicit, implicit):
        return explicit_to_implicit
    if (source, target) == (explicit, deflated):
        return deflate_chunks
    if (source, target) == (deflated, explicit):
        return inflate_chunks
    if (source, target) == (deflated, implicit):
        return lambda chunks: explicit_to_implicit(inflate_chunks(chunks))
    return None


class _Out:
    """Output gathered into chunks of about :data:`STREAM_CHUNK_SIZE` bytes, each a new object."""

    __slots__ = ("buf", "ready", "size")

    def __init__(self, size: int = STREAM_CHUNK_SIZE) -> None:
        self.size = size
        self.buf = bytearray()
        self.ready: list[bytearray] = []

    def write(self, data: Buffer) -> None:
        self.buf += data
        if len(self.buf) >= self.size:
            self.ready.append(self.buf)
            self.buf = bytearray()

    def drain(self, final: bool = False) -> Iterator[bytearray]:
        if self.ready:
            ready, self.ready = self.ready, []
            yield from ready
        if final and self.buf:
            buf, self.buf = self.buf, bytearray()
            yield buf


def deflate_chunks(
    chunks: Iterable[Buffer], level: int = zlib.Z_DEFAULT_COMPRESSION
) -> Iterator[Buffer]:
    """Deflate a data set as it streams (PS3.5 A.5: raw deflate, no zlib header).

    A bit stream of odd length gets a single trailing NULL byte (PS3.5 A.5).
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = _Out()
    length = 0
    for chunk in chunks:
        data = compressor.compress(chunk)
        length += len(data)
        out.write(data)
        yield from out.drain()
    data = compressor.flush()
    length += len(data)
    out.write(data + b"\x00" if length % 2 else data)
    yield from out.drain(final=True)


def inflate_chunks(chunks: Iterable[Buffer]) -> Iterator[Buffer]:
    """Inflate a deflated data set as it streams; each output chunk is bounded in size."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = _Out()
    try:
        for chunk in chunks:
            data: Buffer = chunk
            while data and not inflater.eof:
                out.write(inflater.decompress(data, STREAM_CHUNK_SIZE))
                yield from out.drain()
                data = inflater.unconsumed_tail
            if inflater.eof:
                break
        out.write(inflater.flush())
    except zlib.error as exc:
        raise ValueError(f"the deflated data set is corrupt: {exc}") from exc
    yield from out.drain(final=True)


# -- Explicit VR Little Endian -> Implicit VR Little Endian, streaming -------------------------

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_TAG = struct.Struct("<HH")
_TAG_LENGTH = struct.Struct("<HHI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_ITEM_HEADER = _TAG_LENGTH.pack(0xFFFE, 0xE000, _UNDEFINED)
_ITEM_END_HEADER = _TAG_LENGTH.pack(0xFFFE, 0xE00D, 0)
_SEQUENCE_END_HEADER = _TAG_LENGTH.pack(0xFFFE, 0xE0DD, 0)


class _Reader:
    """Reads a byte stream given as chunks; values are passed on as views, not copied."""

    __slots__ = ("_chunks", "_pos", "_view", "consumed")

    def __init__(self, chunks: Iterable[Buffer]) -> None:
        self._chunks = iter(chunks)
        self._view = memoryview(b"")
        self._pos = 0
        #: bytes read so far
        self.consumed = 0

    def _fill(self) -> bool:
        while self._pos >= len(self._view):
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            view = memoryview(chunk)
            if view.ndim != 1 or view.itemsize != 1:
                view = view.cast("B")
            self._view, self._pos = view, 0
        return True

    def at_end(self) -> bool:
        return not self._fill()

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (a header); ``ValueError`` if the stream ends first."""
        if self._pos + n <= len(self._view):
            data = bytes(self._view[self._pos : self._pos + n])
            self._pos += n
            self.consumed += n
            return data
        parts = []
        wanted = n
        while wanted:
            if not self._fill():
                raise ValueError("the data set ends in the middle of an element")
            piece = self._view[self._pos : self._pos + wanted]
            parts.append(bytes(piece))
            self._pos += len(piece)
            wanted -= len(piece)
        self.consumed += n
        return b"".join(parts)

    def pieces(self, n: int) -> Iterator[memoryview]:
        """``n`` bytes as views of the chunks read."""
        while n:
            if not self._fill():
                raise ValueError("the data set ends in the middle of a value")
            piece = self._view[self._pos : self._pos + n]
            self._pos += len(piece)
            self.consumed += len(piece)
            n -= len(piece)
            yield piece


class _ExplicitToImplicit:
    """Rewrites an Explicit VR Little Endian data set as Implicit VR Little Endian (PS3.5 7.1).

    Element values are copied as they are (both are little endian); only the
    headers change: the VR goes, every length becomes 4 bytes. Sequences and
    items are written with undefined length and delimiters (PS3.5 7.5), which
    spares computing new lengths. Group length elements (gggg,0000, retired in
    data sets, PS3.5 7.2) are dropped, their values no longer being right. A
    UN element of undefined length holds an implicit VR sequence already
    (PS3.5 6.2.2) and is copied as it is.
    """

    def __init__(self, chunks: Iterable[Buffer]) -> None:
        self.r = _Reader(chunks)
        self.out = _Out()

    def run(self) -> Iterator[Buffer]:
        yield from self._dataset(None, explicit=True, top=True)
        yield from self.out.drain(final=True)

    def _dataset(self, end: int | None, *, explicit: bool, top: bool) -> Iterator[Buffer]:
        r, out = self.r, self.out
        while True:
            if end is not None:
                if r.consumed >= end:
                    if r.consumed > end:
                        raise ValueError("an element runs past the end of its item")
                    return
            elif top and r.at_end():
                return
            group, element = _TAG.unpack(r.read(4))
            tag = (group << 16) | element
            if tag == _ITEM_END:
                r.read(4)
                if top or end is not None:
                    raise ValueError("an item delimiter outside an item of undefined length")
                return
            if explicit:
                vr = r.read(2)
                if not (vr.isalpha() and vr.isupper()):
                    raise ValueError(
                        f"({group:04X},{element:04X}) has no explicit VR: "
                        "not Explicit VR Little Endian"
                    )
                if vr in _LONG_VRS:
                    length = _U32.unpack(r.read(6)[2:])[0]
                else:
                    length = _U16.unpack(r.read(2))[0]
            else:
                vr = b""
                length = _U32.unpack(r.read(4))[0]
            if (explicit and vr == b"SQ") or length == _UNDEFINED:
                if tag == _PIXEL_DATA:
                    raise ValueError("encapsulated pixel data in a native transfer syntax")
                nested_explicit = explicit and vr == b"SQ"
                if explicit and not nested_explicit and vr != b"UN":
                    raise ValueError(
                        f"({group:04X},{element:04X}) {vr.decode()} has undefined length"
                    )
                out.write(_TAG_LENGTH.pack(group, element, _UNDEFINED))
                yield from self._sequence(length, explicit=nested_explicit)
            elif element == 0 and explicit:
                for _ in r.pieces(length):  # a group length: dropped
                    pass
            else:
                out.write(_TAG_LENGTH.pack(group, element, length))
                for piece in r.pieces(length):
                    out.write(piece)
                    # a value may be far larger than a chunk (pixel data): pass it on
                    # as it is read, or the whole value would be held at once
                    yield from out.drain()
            yield from out.drain()

    def _sequence(self, length: int, *, explicit: bool) -> Iterator[Buffer]:
        r, out = self.r, self.out
        end = None if length == _UNDEFINED else r.consumed + length
        while end is None or r.consumed < end:
            group, element, item_length = _TAG_LENGTH.unpack(r.read(8))
            tag = (group << 16) | element
            if tag == _SEQUENCE_END:
                if end is not None:
                    raise ValueError("a sequence delimiter in a sequence of defined length")
                break
            if tag != _ITEM:
                raise ValueError(f"({group:04X},{element:04X}) where a sequence item was expected")
            out.write(_ITEM_HEADER)
            item_end = None if item_length == _UNDEFINED else r.consumed + item_length
            yield from self._dataset(item_end, explicit=explicit, top=False)
            out.write(_ITEM_END_HEADER)
        if end is not None and r.consumed != end:
            raise ValueError("an item runs past the end of its sequence")
        out.write(_SEQUENCE_END_HEADER)


def explicit_to_implicit(chunks: Iterable[Buffer]) -> Iterator[Buffer]:
    """Re-encode an Explicit VR Little Endian data set as Implicit VR Little Endian, streaming.

    Raises :class:`ValueError` (while iterating) on a malformed data set.
    """
    return _ExplicitToImplicit(chunks).run()
