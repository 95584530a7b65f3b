"""PDUReader: a byte stream cut anywhere gives back the same PDUs (PS3.8 9.3.1).

Both receive paths are exercised: ``feed`` (bytes in hand) and
``get_buffer``/``buffer_updated`` (``recv_into``). The cap is checked before a
PDU's body is buffered, and handed-out bodies are views that stay valid.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet import framing
from dicomnet.errors import AbortReason, PDUDecodeError, PDUTooLarge
from dicomnet.framing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_OTHER_LENGTH,
    MAX_PREALLOCATION,
    PDUReader,
)
from dicomnet.pdu import (
    PDU_HEADER,
    AAbort,
    AReleaseRQ,
    PDataTF,
    PDUType,
    PresentationDataValue,
    decode_pdu,
    pdata_header,
)
from tests.strategies import pdu as pst

Frames = list[tuple[int, bytes]]


def split(stream: bytes) -> Frames:
    """The expected framing, computed naively."""
    out = []
    offset = 0
    while offset < len(stream):
        pdu_type, _, length = PDU_HEADER.unpack_from(stream, offset)
        out.append((pdu_type, stream[offset + 6 : offset + 6 + length]))
        offset += 6 + length
    return out


def drain(reader: PDUReader) -> Iterator[tuple[int, memoryview]]:
    while (frame := reader.next_pdu()) is not None:
        yield frame


def receive_into(reader: PDUReader, data: bytes, recv_size: int | None = None) -> None:
    """Do what a transport does with recv_into: fill get_buffer(), report with buffer_updated()."""
    view = memoryview(data)
    while view:
        target = reader.get_buffer()
        assert len(target) > 0
        n = min(len(target), len(view), recv_size or len(view))
        target[:n] = view[:n]
        reader.buffer_updated(n)
        view = view[n:]


def pdata(size: int, context_id: int = 1, fill: int = 0xAB) -> bytes:
    return pdata_header(context_id, 0, size) + bytes([fill]) * size


stream_of_pdus = st.lists(pst.pdu_bytes, min_size=1, max_size=8)


@st.composite
def cut_points(draw: st.DrawFn, length: int) -> list[int]:
    cuts = draw(st.lists(st.integers(0, length), max_size=20))
    return sorted(set(cuts))


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


# -- any cut of any stream ------------------------------------------------------------------


@settings(max_examples=200)
@given(
    frames=stream_of_pdus,
    data=st.data(),
    chunk_size=st.sampled_from([16, 37, 100, 1000, DEFAULT_CHUNK_SIZE]),
    drain_every=st.booleans(),
)
def test_feed_any_cuts(
    frames: list[bytes], data: st.DataObject, chunk_size: int, drain_every: bool
) -> None:
    stream = b"".join(frames)
    reader = PDUReader(chunk_size=chunk_size)
    got: Frames = []
    for piece in pieces(stream, data.draw(cut_points(len(stream)))):
        reader.feed(piece)
        if drain_every:
            got.extend((t, bytes(body)) for t, body in drain(reader))
    got.extend((t, bytes(body)) for t, body in drain(reader))
    assert got == split(stream)
    assert reader.buffered == 0


@settings(max_examples=200)
@given(
    frames=stream_of_pdus,
    data=st.data(),
    chunk_size=st.sampled_from([16, 37, 100, 1000, DEFAULT_CHUNK_SIZE]),
    recv_size=st.sampled_from([None, 1, 5, 64]),
)
def test_recv_into_any_cuts(
    frames: list[bytes], data: st.DataObject, chunk_size: int, recv_size: int | None
) -> None:
    stream = b"".join(frames)
    reader = PDUReader(chunk_size=chunk_size)
    got: Frames = []
    held: list[memoryview] = []
    for piece in pieces(stream, data.draw(cut_points(len(stream)))):
        receive_into(reader, piece, recv_size)
        for t, body in drain(reader):
            held.append(body)
            got.append((t, bytes(body)))
    assert got == split(stream)
    # the views handed out earlier still hold their PDUs after everything that followed
    assert [bytes(v) for v in held] == [body for _, body in split(stream)]
    assert reader.buffered == 0


@given(frames=stream_of_pdus)
def test_decoded_pdus_survive_framing(frames: list[bytes]) -> None:
    reader = PDUReader(chunk_size=64)
    reader.feed(b"".join(frames))
    decoded = [decode_pdu(t, body).to_bytes() for t, body in drain(reader)]
    assert decoded == frames


def test_one_byte_at_a_time() -> None:
    stream = pdata(40) + AReleaseRQ().to_bytes() + pdata(0) + AAbort(2, 1).to_bytes()
    for chunk_size in (8, 11, 64):
        reader = PDUReader(chunk_size=chunk_size)
        got: Frames = []
        for i in range(len(stream)):
            reader.feed(stream[i : i + 1])
            got.extend((t, bytes(b)) for t, b in drain(reader))
        assert got == split(stream)


def test_header_split_at_chunk_end() -> None:
    # chunk of 16: a 12-byte PDU, then a header cut after 1..5 bytes at the chunk's end
    first = pdata(6)  # 6 + 6 bytes
    second = pdata(30)
    for cut in range(1, 6):
        reader = PDUReader(chunk_size=12 + cut)
        receive_into(reader, first + second[:cut])
        assert [bytes(b) for _, b in drain(reader)] == [first[6:]]
        assert reader.buffered == cut
        receive_into(reader, second[cut:])
        assert [bytes(b) for _, b in drain(reader)] == [second[6:]]


def test_empty_stream_and_partial_header() -> None:
    reader = PDUReader()
    assert reader.next_pdu() is None
    reader.feed(b"\x04\x00\x00")
    assert reader.next_pdu() is None
    assert reader.buffered == 3


def test_zero_length_body() -> None:
    # framing does not judge bodies: a PDU with an empty variable field is handed out
    reader = PDUReader()
    reader.feed(b"\x05\x00\x00\x00\x00\x00" + AReleaseRQ().to_bytes())
    frames = [(t, bytes(b)) for t, b in drain(reader)]
    assert frames == [(5, b""), (5, bytes(4))]
    with pytest.raises(PDUDecodeError):
        decode_pdu(5, memoryview(b""))


# -- PDUs larger than a chunk ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["feed", "recv_into"])
@pytest.mark.parametrize("size", [100, 1000, 64 * 1024])
def test_pdu_bigger_than_a_chunk(path: str, size: int) -> None:
    reader = PDUReader(chunk_size=64)
    stream = pdata(10, fill=1) + pdata(size, fill=2) + pdata(10, fill=3)
    if path == "feed":
        reader.feed(stream[:50])
        first = list(drain(reader))
        reader.feed(stream[50:])
    else:
        receive_into(reader, stream[:50])
        first = list(drain(reader))
        receive_into(reader, stream[50:], recv_size=1000)
    frames = first + list(drain(reader))
    assert [(t, bytes(b)) for t, b in frames] == split(stream)
    big = frames[1][1]
    # a PDU that does not fit in a chunk is assembled in a buffer of exactly its size
    assert isinstance(big.obj, bytearray)
    assert len(big.obj) == len(big) == size + 6


def test_recv_into_writes_a_big_body_in_place() -> None:
    """After the header, the rest of a big PDU is received straight into its own buffer."""
    reader = PDUReader(chunk_size=64)
    stream = pdata(10_000)
    receive_into(reader, stream[:64])
    assert reader.next_pdu() is None
    target = reader.get_buffer()
    assert len(target) == len(stream) - 64  # exactly what is missing of this PDU
    receive_into(reader, stream[64:])
    (frame,) = drain(reader)
    assert frame[1].obj is target.obj


# -- zero copy and the lifetime of views ---------------------------------------------------------


def test_bodies_in_one_chunk_are_views_of_that_chunk() -> None:
    reader = PDUReader()
    target = reader.get_buffer()
    stream = pdata(100, fill=1) + pdata(200, fill=2)
    target[: len(stream)] = stream
    reader.buffer_updated(len(stream))
    (t1, a), (t2, b) = drain(reader)
    assert (t1, t2) == (PDUType.P_DATA_TF, PDUType.P_DATA_TF)
    # no copy: both bodies are windows on the buffer the transport received into
    assert a.obj is target.obj
    assert b.obj is target.obj
    assert isinstance(a.obj, bytearray)
    assert len(a.obj) == DEFAULT_CHUNK_SIZE


def test_views_stay_valid_after_more_data() -> None:
    reader = PDUReader(chunk_size=128)
    reader.feed(pdata(50, fill=7))
    ((_, early),) = drain(reader)
    snapshot = bytes(early)
    # enough traffic to fill this chunk, start new ones and assemble a straddling PDU
    for fill in range(20):
        reader.feed(pdata(90, fill=fill))
        reader.feed(pdata(300, fill=fill))
        for _ in drain(reader):
            pass
    assert bytes(early) == snapshot
    assert early.obj is not reader.get_buffer().obj


def test_feeding_more_than_a_chunk_without_reading() -> None:
    frames = [pdata(30, fill=i) for i in range(10)]
    reader = PDUReader(chunk_size=50)
    for frame in frames:
        reader.feed(frame)
    assert reader.buffered == sum(map(len, frames))
    assert [bytes(b) for _, b in drain(reader)] == [f[6:] for f in frames]


# -- the cap: refused before buffering ------------------------------------------------------------


@pytest.mark.parametrize("path", ["feed", "recv_into"])
def test_oversized_pdata_refused_from_its_header(path: str) -> None:
    reader = PDUReader(max_pdata_length=16384, chunk_size=1024)
    header = PDU_HEADER.pack(PDUType.P_DATA_TF, 0, 1 << 30)
    if path == "feed":
        reader.feed(header)
    else:
        receive_into(reader, header)
    with pytest.raises(PDUTooLarge) as info:
        reader.next_pdu()
    err = info.value
    assert (err.length, err.limit, err.pdu_type) == (1 << 30, 16384, PDUType.P_DATA_TF)
    assert err.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    # nothing was allocated for the announced body: the reader holds the header only
    assert reader.buffered == len(header)
    assert len(reader.get_buffer()) <= 1024


def test_oversized_pdata_refused_even_with_body_bytes_in_hand() -> None:
    reader = PDUReader(max_pdata_length=100, chunk_size=256)
    reader.feed(pdata(101)[:200])
    with pytest.raises(PDUTooLarge):
        reader.next_pdu()
    assert reader.buffered <= 256
    assert len(reader.get_buffer()) <= 256


def test_pdata_at_the_limit_is_accepted() -> None:
    reader = PDUReader(max_pdata_length=100)
    reader.feed(pdata(94))  # variable field: 6 + 94 = 100 bytes
    ((_, body),) = drain(reader)
    assert len(body) == 100


@pytest.mark.parametrize("pdu_type", [1, 2, 3, 5, 6, 7, 0x42])
def test_oversized_other_pdus(pdu_type: int) -> None:
    reader = PDUReader(max_pdata_length=0, max_other_length=1000)
    reader.feed(PDU_HEADER.pack(pdu_type, 0, 1001))
    with pytest.raises(PDUTooLarge) as info:
        reader.next_pdu()
    assert (info.value.limit, info.value.pdu_type) == (1000, pdu_type)
    # the P-DATA limit does not apply to them, nor theirs to P-DATA
    reader = PDUReader(max_pdata_length=10, max_other_length=1000)
    reader.feed(PDU_HEADER.pack(pdu_type, 0, 1000) + bytes(1000))
    assert len(next(drain(reader))[1]) == 1000


def test_default_cap_for_other_pdus() -> None:
    reader = PDUReader()
    reader.feed(PDU_HEADER.pack(PDUType.A_ASSOCIATE_RQ, 0, DEFAULT_MAX_OTHER_LENGTH + 1))
    with pytest.raises(PDUTooLarge):
        reader.next_pdu()


@pytest.mark.parametrize("limit", [0, None])
def test_no_pdata_limit(limit: int | None) -> None:
    reader = PDUReader(max_pdata_length=limit, chunk_size=1024)
    assert reader.max_pdata_length == 0
    reader.feed(pdata(100_000))
    ((_, body),) = drain(reader)
    assert len(body) == 100_006


def test_without_a_cap_a_header_alone_allocates_little() -> None:
    """Regression (found by fuzz/fuzz_pdu.py): with no P-DATA cap, a 6-byte header
    announcing 4 GiB made the reader allocate 4 GiB before any body byte arrived."""
    reader = PDUReader(max_pdata_length=None, chunk_size=1024)
    reader.feed(PDU_HEADER.pack(PDUType.P_DATA_TF, 0, 0xFFFFFFF0) + bytes(100))
    assert reader.next_pdu() is None
    assert len(reader.get_buffer()) <= MAX_PREALLOCATION
    assert reader.buffered == 100


@pytest.mark.parametrize("path", ["feed", "recv_into"])
def test_pdu_longer_than_the_preallocation(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    monkeypatch.setattr(framing, "MAX_PREALLOCATION", 1000)
    reader = PDUReader(max_pdata_length=None, chunk_size=256)
    stream = pdata(10_000, fill=5) + pdata(10, fill=6)
    send = reader.feed if path == "feed" else lambda data: receive_into(reader, data)
    send(stream[:256])  # the header and 250 body bytes, one whole chunk
    assert reader.next_pdu() is None
    assert len(reader.get_buffer()) == 1000 - 250  # preallocated 1000, not 10,006
    send(stream[256:1256])
    assert reader.next_pdu() is None
    assert len(reader.get_buffer()) == 2000 - 1250  # doubled once the first 1000 filled
    for start in range(1256, len(stream), 777):
        send(stream[start : start + 777])
    assert [(t, bytes(b)) for t, b in drain(reader)] == split(stream)


def test_limit_can_change_once_negotiated() -> None:
    # the Upper Layer learns our Maximum Length Received when the association is set up
    reader = PDUReader(max_pdata_length=None)
    reader.max_pdata_length = 50
    assert reader.max_pdata_length == 50
    reader.feed(pdata(45))
    with pytest.raises(PDUTooLarge):
        reader.next_pdu()


def test_framed_pdata_decodes_to_pdvs() -> None:
    pdu = PDataTF((PresentationDataValue(1, True, True, b"cmd"),
                   PresentationDataValue(3, False, False, b"data" * 10)))
    reader = PDUReader(chunk_size=20)
    reader.feed(pdu.to_bytes())
    ((pdu_type, body),) = drain(reader)
    assert decode_pdu(pdu_type, body) == pdu


def test_a_large_feed_lands_in_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """feed() of many chunks' worth starts one chunk big enough for all of it.

    Regression: it used to fill chunk after chunk, copying the unread bytes
    again at every chunk boundary (quadratic in the size of the feed).
    """
    new_chunk = PDUReader._new_chunk
    calls: list[int] = []

    def counting(self: PDUReader, *args: int) -> None:
        calls.append(self.buffered)
        new_chunk(self, *args)

    monkeypatch.setattr(PDUReader, "_new_chunk", counting)
    frames = [pdata(94, fill=i) for i in range(100)]
    reader = PDUReader(chunk_size=256)
    reader.feed(b"".join(frames))
    assert len(calls) == 1
    # and feeding piece by piece without reading grows the chunk geometrically
    for frame in frames:
        reader.feed(frame)
    assert len(calls) <= 4
    bodies = [body for _, body in drain(reader)]
    assert [bytes(b) for b in bodies] == [f[6:] for f in frames] * 2
