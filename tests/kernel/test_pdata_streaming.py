"""Long P-DATA-TF PDUs received in pieces as they arrive (PS3.8 9.3.5, E.2; PS3.7 8.1).

Three layers cooperate: ``PDUReader.next_pdata_part`` cuts the body of a long
P-DATA-TF out of the receive chunks as the bytes arrive,
``UpperLayer.next_pdata_part`` hands the pieces out while Table 9-10 indicates
a P-DATA-TF (DT-2, AR-6) and drops them otherwise (AA-6), and
``MessageAssembler.receive_part`` walks the PDVs across the pieces. The
properties checked here: any cut of the byte stream gives the same messages,
bodies and events as receiving every PDU whole; a PDU longer than our maximum
is refused from its header, before anything is buffered or handed out; a
malformed PDV is refused as soon as its item header is in; and a data set is
never reported complete before its last byte.
"""

from __future__ import annotations

import contextlib
import itertools
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.dimse import (
    MAX_COMMAND_LENGTH,
    CommandReceived,
    DatasetFragment,
    DimseEvent,
    MessageAssembler,
    fragment_message,
)
from dicomnet.dimse_messages import CFindRSP, CStoreRQ, CStoreRSP
from dicomnet.errors import LocalProtocolError, PDUTooLarge, RemoteProtocolError
from dicomnet.framing import PDUReader
from dicomnet.fsm import State
from dicomnet.pdu import AAbort, AReleaseRP, AReleaseRQ
from dicomnet.ul_events import (
    Aborted,
    ConnectionClosed,
    PDataReceived,
    PDUReceived,
    ReleaseConfirmed,
)
from dicomnet.upper_layer import UpperLayer
from tests.kernel.test_upper_layer import build

STORE_RQ = CStoreRQ(
    MessageID=7,
    AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
    AffectedSOPInstanceUID="1.2.826.0.1.3680043.8.498.7",
)
STORE_RSP = CStoreRSP(MessageIDBeingRespondedTo=7, Status=0)
FIND_RSP = CFindRSP(MessageIDBeingRespondedTo=2, Status=0xFF00)

RELEASE_RQ = AReleaseRQ().to_bytes()
RELEASE_RP = AReleaseRP().to_bytes()
ABORT = AAbort(0, 0).to_bytes()


def pdv(context_id: int, control: int, data: bytes) -> bytes:
    return struct.pack(">IBB", len(data) + 2, context_id, control) + data


def pdu(body: bytes) -> bytes:
    return struct.pack(">BBI", 0x04, 0, len(body)) + body


def message_pdvs(
    context_id: int, message: object, dataset: bytes | None, max_pdu: int
) -> list[bytes]:
    """The PDV items ``fragment_message`` makes for a message, one per PDU."""
    out = []
    for batch in fragment_message(context_id, message, dataset, max_pdu):  # type: ignore[arg-type]
        stream = b"".join(bytes(b) for b in batch)
        offset = 0
        while offset < len(stream):
            (length,) = struct.unpack_from(">I", stream, offset + 2)
            out.append(stream[offset + 6 : offset + 6 + length])
            offset += 6 + length
    return out


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def normalised(events: list[DimseEvent]) -> list[tuple[object, ...]]:
    """Commands, and each data set joined with its end (fragment boundaries do not matter)."""
    out: list[tuple[object, ...]] = []
    data = b""
    for event in events:
        if isinstance(event, CommandReceived):
            out.append(("command", event.context_id, event.message, event.has_dataset))
        else:
            data += bytes(event.data)
            if event.is_last:
                out.append(("dataset", event.context_id, data))
                data = b""
    if data:
        out.append(("partial", data))
    return out


# -- framing ------------------------------------------------------------------------------


def test_a_long_pdata_is_streamed_as_it_arrives_and_the_next_pdu_waits() -> None:
    body = pdv(1, 0x02, bytes(range(256)) * 40)  # 10 246 bytes
    stream = pdu(body) + RELEASE_RQ
    reader = PDUReader(0, chunk_size=4096)
    pieces: list[tuple[bytes, int]] = []
    for part in cut(stream, [100, 3000, 9000]):
        reader.feed(part)
        assert reader.next_pdu(None, 1000) is None or not pieces or not reader.streaming
        while (item := reader.next_pdata_part(1000)) is not None:
            pieces.append((bytes(item[0]), item[1]))
    assert b"".join(p for p, _ in pieces) == body
    assert [left for _, left in pieces] == [
        len(body) - sum(len(p) for p, _ in pieces[: i + 1]) for i in range(len(pieces))
    ]
    assert all(p for p, _ in pieces) and pieces[-1][1] == 0
    assert not reader.streaming
    assert reader.next_pdata_part(1000) is None  # an A-RELEASE-RQ is next: next_pdu's
    assert reader.next_pdu() == (0x05, memoryview(RELEASE_RQ)[6:])


def test_while_a_body_streams_next_pdu_hands_out_nothing() -> None:
    reader = PDUReader(0)
    reader.feed(pdu(pdv(1, 0x02, b"x" * 5000))[:2000])
    part = reader.next_pdata_part(100)
    assert part is not None and part[1] == 5006 - 1994
    reader.feed(b"x" * 100)
    assert reader.next_pdu() is None  # body bytes, not a header
    assert reader.next_pdata_part() is not None


def test_short_or_whole_pdata_and_other_pdus_are_not_streamed() -> None:
    reader = PDUReader(0)
    reader.feed(pdu(pdv(1, 0x02, b"s" * 50))[:30])  # short: waits to be whole
    assert reader.next_pdata_part(100) is None
    reader = PDUReader(0)
    reader.feed(pdu(pdv(1, 0x02, b"w" * 500)))  # long but whole: next_pdu's
    assert reader.next_pdata_part(100) is None
    assert reader.next_pdu(None, 100) is not None
    reader = PDUReader(0)
    reader.feed(pdu(pdv(1, 0x02, b"h" * 500))[:6])  # only the header: nothing to hand out
    assert reader.next_pdata_part(100) is None
    assert not reader.streaming
    reader = PDUReader(0)
    reader.feed(b"\x01\x00" + struct.pack(">I", 5000) + b"q" * 100)  # an A-ASSOCIATE-RQ
    assert reader.next_pdata_part(100) is None


def test_next_pdu_leaves_a_long_incomplete_pdata_alone_with_stream_over() -> None:
    reader = PDUReader(0, chunk_size=1024)
    reader.feed(pdu(pdv(1, 0x02, b"z" * 3000))[:1500])  # straddles the chunk
    assert reader.next_pdu(0x04, 2000) is None
    part = reader.next_pdata_part(2000)
    assert part is not None and len(part[0]) == 1494  # nothing was moved to a buffer of its own


def test_pieces_are_views_of_the_receive_chunks() -> None:
    reader = PDUReader(0, chunk_size=4096)
    body = pdv(1, 0x02, b"v" * 100_000)
    data = memoryview(pdu(body))
    position = 0
    total = 0
    while position < len(data):
        target = reader.get_buffer()
        n = min(len(target), len(data) - position, 1000)
        target[:n] = data[position : position + n]
        reader.buffer_updated(n)
        position += n
        while (item := reader.next_pdata_part(4096)) is not None:
            assert isinstance(item[0].obj, bytearray) and len(item[0].obj) == 4096
            total += len(item[0])
        assert reader.buffered < 4096  # a read never holds a PDU, only a chunk
    assert total == len(body)


@pytest.mark.parametrize("announced", [4097, 0xFFFFFFFF])
def test_a_pdata_over_the_cap_is_refused_from_its_header_before_streaming(
    announced: int,
) -> None:
    reader = PDUReader(4096)
    reader.feed(b"\x04\x00" + struct.pack(">I", announced) + b"\x00" * 100)
    for _ in range(2):  # nothing consumed: the same call raises again
        with pytest.raises(PDUTooLarge):
            reader.next_pdata_part(100)
    assert not reader.streaming
    with pytest.raises(PDUTooLarge):
        reader.next_pdu(None, 100)


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9000), min_size=1, max_size=6),
    others=st.lists(st.booleans(), min_size=6, max_size=6),
    cuts=st.lists(st.integers(0, 60_000), max_size=25),
    chunk_size=st.sampled_from([64, 1000, 4096, 256 * 1024]),
    stream_over=st.sampled_from([0, 1, 100, 5000]),
)
def test_framing_any_cut_gives_the_same_pdus(
    sizes: list[int],
    others: list[bool],
    cuts: list[int],
    chunk_size: int,
    stream_over: int,
) -> None:
    frames: list[tuple[int, bytes]] = []
    stream = b""
    for size, other in zip(sizes, others, strict=False):
        body = pdv(1, 0x02, bytes([size % 256]) * size)
        frames.append((0x04, body))
        stream += pdu(body)
        if other:
            frames.append((0x05, RELEASE_RQ[6:]))
            stream += RELEASE_RQ
    reader = PDUReader(0, chunk_size=chunk_size)
    got: list[tuple[int, bytes]] = []
    streamed = b""
    for piece in cut(stream, cuts):
        reader.feed(piece)
        while True:
            if (item := reader.next_pdu(None, stream_over)) is not None:
                got.append((item[0], bytes(item[1])))
            elif (part := reader.next_pdata_part(stream_over)) is not None:
                assert part[0]
                streamed += bytes(part[0])
                if not part[1]:
                    got.append((0x04, streamed))
                    streamed = b""
            else:
                break
    assert got == frames
    assert not reader.streaming and reader.buffered == 0


# -- the Upper Layer -----------------------------------------------------------------------


def _ul_replay(
    stream: bytes, cuts: list[int], stream_over: int | None
) -> tuple[list[object], State, bytes]:
    ul, _ = build(6, False, max_pdata_length=20_000, stream_pdata_over=stream_over)
    seen: list[object] = []
    pieces: list[bytes] = []

    def take() -> None:
        while True:
            bodies = ul.next_pdata()
            if bodies:
                seen.extend(("P-DATA", bytes(body)) for body in bodies)
                continue
            part = ul.next_pdata_part()
            if part is not None:
                assert stream_over is not None and part[0]
                pieces.append(bytes(part[0]))
                if not part[1]:
                    seen.append(("P-DATA", b"".join(pieces)))
                    pieces.clear()
                continue
            event = ul.next_event()
            if event is None:
                return
            if isinstance(event, PDataReceived):
                seen.append(("P-DATA", bytes(event.body)))
            else:
                seen.append(event)

    position = 0
    for point in [*sorted(cuts), len(stream)]:
        if point > position and ul.state is not State.Sta1:
            with contextlib.suppress(LocalProtocolError):  # the connection may be closed
                ul.receive_data(stream[position:point])
            position = point
        take()
    return seen, ul.state, b"".join(bytes(b) for b in ul.data_to_send())


ul_streams = st.lists(
    st.one_of(
        st.integers(0, 6000).map(lambda n: pdu(pdv(1, 0x00, b"d" * n))),
        st.integers(0, 3000).map(lambda n: pdu(pdv(1, 0x00, b"a" * n) + pdv(1, 0x02, b"b"))),
        st.just(RELEASE_RQ),
        st.just(ABORT),
        st.just(pdu(pdv(1, 0x00, b"y" * 25_000))),  # over the cap: Evt19
    ),
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(
    pdus=ul_streams,
    cuts=st.lists(st.integers(0, 40_000), max_size=12),
    stream_over=st.sampled_from([1, 64, 2000]),
)
def test_upper_layer_any_cut_gives_what_whole_pdus_give(
    pdus: list[bytes], cuts: list[int], stream_over: int
) -> None:
    stream = b"".join(pdus)
    cuts = [c for c in cuts if c < len(stream)]
    assert _ul_replay(stream, cuts, stream_over) == _ul_replay(stream, cuts, None)


def _streaming_ul(state: int = 6) -> tuple[UpperLayer, bytes]:
    ul, _ = build(state, True, stream_pdata_over=100)
    body = pdv(1, 0x02, b"p" * 1000)
    ul.receive_data(pdu(body)[:300])
    assert ul.next_pdata() == []
    part = ul.next_pdata_part()
    assert part is not None and bytes(part[0]) == body[:294] and part[1] == len(body) - 294
    return ul, body


def test_the_rest_of_a_streamed_pdu_is_indicated_after_a_local_release() -> None:
    ul, body = _streaming_ul()
    ul.release()  # Sta7: a P-DATA-TF is still indicated (AR-6)
    assert ul.state is State.Sta7
    ul.receive_data(pdu(body)[300:] + RELEASE_RP)
    assert ul.next_event() is None  # the body is next_pdata_part's, not next_event's
    part = ul.next_pdata_part()
    assert part is not None and bytes(part[0]) == body[294:] and part[1] == 0
    assert isinstance(ul.next_event(), ReleaseConfirmed)


def test_the_rest_of_a_streamed_pdu_is_dropped_after_a_local_abort() -> None:
    ul, body = _streaming_ul()
    ul.abort()  # Sta13: a P-DATA-TF is ignored (AA-6)
    ul.receive_data(pdu(body)[300:600])
    assert ul.next_pdata_part() is None
    ul.receive_data(pdu(body)[600:] + ABORT)  # the peer's A-ABORT after it: AA-2, Sta1
    assert isinstance(ul.next_event(), ConnectionClosed)
    assert ul.state is State.Sta1


def test_a_streamed_pdu_cut_off_by_the_connection_never_completes() -> None:
    ul, _ = _streaming_ul()
    ul.connection_lost()
    events = []
    while (event := ul.next_event()) is not None:
        events.append(event)
    assert [type(e) for e in events] == [Aborted, ConnectionClosed]
    assert ul.next_pdata_part() is None


def test_a_pdata_over_the_cap_is_still_aborted_when_streaming() -> None:
    ul, _ = build(6, False, max_pdata_length=4096, stream_pdata_over=100)
    ul.receive_data(b"\x04\x00" + struct.pack(">I", 4097) + b"\x00" * 1000)
    assert ul.next_pdata() == [] and ul.next_pdata_part() is None
    event = ul.next_event()
    assert isinstance(event, Aborted) and event.local
    assert ul.state is State.Sta13


def test_no_streaming_with_diagnostics_on_or_when_off() -> None:
    ul, _ = build(6, False, stream_pdata_over=100)
    ul.emit_pdus = True
    ul.receive_data(pdu(pdv(1, 0x02, b"x" * 1000))[:500])
    assert ul.next_pdata_part() is None
    ul, _ = build(6, False)  # stream_pdata_over not set
    ul.receive_data(pdu(pdv(1, 0x02, b"x" * 1000))[:500])
    assert ul.next_pdata_part() is None
    assert ul.stream_pdata_over is None
    ul.stream_pdata_over = 100
    assert ul.next_pdata_part() is not None


def test_diagnostics_switched_on_mid_stream_leave_the_stream_to_finish() -> None:
    ul, body = _streaming_ul()
    ul.emit_pdus = True
    ul.receive_data(pdu(body)[300:] + RELEASE_RQ)
    part = ul.next_pdata_part()
    assert part is not None and part[1] == 0
    assert isinstance(ul.next_event(), PDUReceived)  # the A-RELEASE-RQ, whole, reported


# -- the DIMSE layer -----------------------------------------------------------------------


def _feed_whole(asm: MessageAssembler, bodies: list[bytes]) -> list[DimseEvent]:
    return [e for body in bodies for e in asm.receive(memoryview(body))]


def _feed_parts(
    asm: MessageAssembler, bodies: list[bytes], cuts: Callable[[int], list[int]]
) -> list[DimseEvent]:
    events: list[DimseEvent] = []
    for body in bodies:
        pieces = cut(body, cuts(len(body)))
        left = len(body)
        for piece in pieces:
            left -= len(piece)
            events.extend(asm.receive_part(memoryview(piece), left))
    return events


@st.composite
def message_bodies(draw: st.DrawFn) -> list[bytes]:
    """P-DATA-TF bodies of a few messages, PDVs grouped into PDUs in any way."""
    items: list[bytes] = []
    for _ in range(draw(st.integers(1, 3))):
        message = draw(st.sampled_from([STORE_RQ, STORE_RSP, FIND_RSP]))
        dataset = None
        if message is not STORE_RSP:
            dataset = bytes(range(256)) * draw(st.integers(0, 12)) + b"e" * draw(
                st.integers(0, 255)
            )
        max_pdu = draw(st.sampled_from([8, 50, 500, 4096, 0]))
        items.extend(message_pdvs(1, message, dataset, max_pdu))
    bodies: list[bytes] = []
    while items:
        n = draw(st.integers(1, min(4, len(items))))
        bodies.append(b"".join(items[:n]))
        del items[:n]
    return bodies


@settings(max_examples=200, deadline=None)
@given(bodies=message_bodies(), data=st.data())
def test_assembler_any_cut_gives_the_same_messages(
    bodies: list[bytes], data: st.DataObject
) -> None:
    def cuts(length: int) -> list[int]:
        return data.draw(st.lists(st.integers(0, length), max_size=8))

    expected = normalised(_feed_whole(MessageAssembler({1}), bodies))
    asm = MessageAssembler({1})
    got = _feed_parts(asm, bodies, cuts)
    assert normalised(got) == expected
    assert not asm.in_message


def test_a_data_set_is_not_complete_before_its_last_byte() -> None:
    asm = MessageAssembler({1})
    [command] = asm.receive(memoryview(message_pdvs(1, STORE_RQ, b"x", 0)[0]))
    assert isinstance(command, CommandReceived) and command.has_dataset
    body = pdv(1, 0x02, b"D" * 10_000)
    events = asm.receive_part(memoryview(body[:4000]), len(body) - 4000)
    events += asm.receive_part(memoryview(body[4000:-1]), 1)
    assert [e.is_last for e in events if isinstance(e, DatasetFragment)] == [False, False]
    assert asm.in_message
    [last] = asm.receive_part(memoryview(body[-1:]), 0)
    assert isinstance(last, DatasetFragment) and last.is_last and bytes(last.data) == b"D"
    assert not asm.in_message


def test_a_pdv_running_past_its_pdu_is_refused_at_its_header() -> None:
    asm = MessageAssembler({1})
    asm.receive(memoryview(message_pdvs(1, STORE_RQ, b"x", 0)[0]))
    body = pdv(1, 0x02, b"D" * 1000)
    # the PDU announces 20 bytes fewer than its PDV needs: known from the first piece
    with pytest.raises(RemoteProtocolError, match="does not fit") as info:
        asm.receive_part(memoryview(body[:100]), len(body) - 100 - 20)
    assert info.value.abort_reason == 0x06  # invalid PDU parameter value


def test_a_pdv_header_cut_by_the_end_of_its_pdu_is_refused() -> None:
    asm = MessageAssembler({1})
    asm.receive(memoryview(message_pdvs(1, STORE_RQ, b"x", 0)[0]))
    body = pdv(1, 0x00, b"D" * 1000) + b"\x00\x00\x00"
    asm.receive_part(memoryview(body[:500]), len(body) - 500)
    with pytest.raises(RemoteProtocolError, match="trailing"):
        asm.receive_part(memoryview(body[500:]), 0)


def test_ordering_rules_hold_for_pieces() -> None:
    asm = MessageAssembler({1, 3})
    asm.receive(memoryview(message_pdvs(1, STORE_RQ, b"x", 0)[0]))
    body = pdv(1, 0x00, b"D" * 1000) + pdv(3, 0x02, b"E" * 1000)
    asm.receive_part(memoryview(body[:1003]), len(body) - 1003)
    with pytest.raises(RemoteProtocolError, match="context 3 while a message on context 1"):
        asm.receive_part(memoryview(body[1003:]), 0)
    asm = MessageAssembler({1})
    body = pdv(1, 0x02, b"D" * 1000)  # data, but no command came
    with pytest.raises(RemoteProtocolError, match="no data set is expected"):
        asm.receive_part(memoryview(body[:10]), len(body) - 10)


def test_a_command_set_over_the_cap_is_refused_before_it_is_gathered() -> None:
    asm = MessageAssembler({1})
    size = MAX_COMMAND_LENGTH + 1
    header = struct.pack(">IBB", size + 2, 1, 0x03)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        asm.receive_part(memoryview(header + b"\x00" * 10), size - 10)


def test_whole_bodies_may_not_be_fed_while_a_body_is_in_pieces() -> None:
    asm = MessageAssembler({1})
    asm.receive(memoryview(message_pdvs(1, STORE_RQ, b"x", 0)[0]))
    body = pdv(1, 0x02, b"D" * 1000)
    asm.receive_part(memoryview(body[:10]), len(body) - 10)
    assert asm.receive_data(memoryview(pdv(1, 0x02, b"x"))) is None
    with pytest.raises(LocalProtocolError):
        asm.receive(memoryview(pdv(1, 0x02, b"x")))


# -- all three: bytes in, DIMSE messages out ----------------------------------------------


def _messages_from(stream: bytes, cuts: list[int], stream_over: int | None) -> list[object]:
    """Drive an Upper Layer and an assembler as the association does."""
    ul, _ = build(6, False, max_pdata_length=0, stream_pdata_over=stream_over)
    asm = MessageAssembler({1})
    events: list[DimseEvent] = []

    def take() -> None:
        while True:
            bodies = ul.next_pdata()
            for body in bodies:
                fragment = asm.receive_data(body)
                if fragment is None:
                    events.extend(asm.receive(body))
                else:
                    events.append(DatasetFragment(1, fragment[0], fragment[1]))
            if bodies:
                continue
            if (part := ul.next_pdata_part()) is not None:
                events.extend(asm.receive_part(*part))
                continue
            event = ul.next_event()
            if event is None:
                return
            assert isinstance(event, PDataReceived)
            events.extend(asm.receive(event.body))

    for piece in cut(stream, cuts):
        ul.receive_data(piece)
        take()
    return normalised(events)


@settings(max_examples=150, deadline=None)
@given(
    bodies=message_bodies(),
    cuts=st.lists(st.integers(0, 20_000), max_size=15),
    stream_over=st.sampled_from([1, 100, 1000]),
)
def test_any_cut_of_the_byte_stream_gives_the_same_messages(
    bodies: list[bytes], cuts: list[int], stream_over: int
) -> None:
    stream = b"".join(pdu(body) for body in bodies)
    assert _messages_from(stream, cuts, stream_over) == _messages_from(stream, [], None)
