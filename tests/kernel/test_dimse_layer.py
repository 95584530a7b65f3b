"""The DIMSE layer: fragmentation into P-DATA-TF PDUs and reassembly (PS3.7 8.1, PS3.8 E.2)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.dimse import (
    DEFAULT_FRAGMENT_SIZE,
    MAX_COMMAND_LENGTH,
    Buffer,
    CommandReceived,
    DatasetCollector,
    DatasetFragment,
    DimseEvent,
    MessageAssembler,
    MessageIDs,
    fragment_message,
)
from dicomnet.dimse_messages import (
    CEchoRQ,
    CFindRQ,
    CFindRSP,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    decode_command,
    encode_command,
)
from dicomnet.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from dicomnet.pdu import PDataTF, PresentationDataValue
from tests.strategies.dimse import messages

STORE_RQ = CStoreRQ(
    MessageID=7,
    AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
    AffectedSOPInstanceUID="1.2.826.0.1.3680043.8.498.1234567890",
)
STORE_RSP = CStoreRSP(MessageIDBeingRespondedTo=7, Status=0)
FIND_RQ = CFindRQ(MessageID=2, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.1")


# -- an independent reading of what fragment_message produces --------------------------------


def parse_pdus(stream: bytes) -> list[list[tuple[int, int, bytes]]]:
    """Split a byte stream into P-DATA-TF PDUs, each a list of (context, control, data)."""
    pdus = []
    offset = 0
    while offset < len(stream):
        pdu_type, _, length = struct.unpack_from(">BBI", stream, offset)
        assert pdu_type == 0x04
        body = stream[offset + 6 : offset + 6 + length]
        assert len(body) == length
        pdvs = []
        inner = 0
        while inner < len(body):
            pdv_length, context_id, control = struct.unpack_from(">IBB", body, inner)
            pdvs.append((context_id, control, body[inner + 6 : inner + 4 + pdv_length]))
            inner += 4 + pdv_length
        assert inner == len(body)
        pdus.append(pdvs)
        offset += 6 + length
    return pdus


def check_fragments(
    batches: list[list[Buffer]],
    context_id: int,
    message: DimseMessage,
    dataset: bytes | None,
    max_pdu_length: int,
) -> list[tuple[int, int, bytes]]:
    """Check the PDUs against PS3.8 9.3.5 and E.2; return the PDVs."""
    stream = b"".join(bytes(buf) for batch in batches for buf in batch)
    pdus = parse_pdus(stream)
    limit = max_pdu_length or DEFAULT_FRAGMENT_SIZE + 6
    pdvs = []
    for pdu in pdus:
        assert len(pdu) == 1  # one PDV per PDU
        assert 6 + len(pdu[0][2]) <= limit
        pdvs.extend(pdu)
    assert all(cid == context_id for cid, _, _ in pdvs)
    commands = [p for p in pdvs if p[1] & 1]
    data = [p for p in pdvs if not p[1] & 1]
    assert pdvs[: len(commands)] == commands  # command first
    assert [c for _, c, _ in commands] == [0x01] * (len(commands) - 1) + [0x03]
    assert decode_command(b"".join(d for _, _, d in commands)) == (message, dataset is not None)
    if dataset is None:
        assert data == []
    else:
        assert [c for _, c, _ in data] == [0x00] * (len(data) - 1) + [0x02]
        assert b"".join(d for _, _, d in data) == dataset
    return pdvs


def bodies(batches: Iterable[list[Buffer]]) -> Iterator[memoryview]:
    """The variable fields of the PDUs, as the Upper Layer hands them to the assembler."""
    stream = b"".join(bytes(buf) for batch in batches for buf in batch)
    offset = 0
    while offset < len(stream):
        (length,) = struct.unpack_from(">I", stream, offset + 2)
        yield memoryview(stream)[offset + 6 : offset + 6 + length]
        offset += 6 + length


def reassemble(batches: Iterable[list[Buffer]], assembler: MessageAssembler | None = None
               ) -> list[DimseEvent]:
    assembler = assembler or MessageAssembler()
    events: list[DimseEvent] = []
    for body in bodies(batches):
        events.extend(assembler.receive(body))
    assert not assembler.in_message
    return events


# -- fragmenting --------------------------------------------------------------------------------

MAX_LENGTHS = [0, 16382, 16384, 7, 8, 13, 101, 1 << 20]


@pytest.mark.parametrize("max_pdu_length", MAX_LENGTHS)
@pytest.mark.parametrize("size", ["none", 0, 1, "fragment-1", "fragment", "fragment+1",
                                  "2*fragment", 512 * 1024])
def test_fragment_sizes(max_pdu_length: int, size: int | str) -> None:
    fragment = max_pdu_length - 6 if max_pdu_length else DEFAULT_FRAGMENT_SIZE
    if max_pdu_length and max_pdu_length < 100 and size == 512 * 1024:
        size = 5000  # keep the one-byte-per-PDV cases quick
    named = {"fragment-1": fragment - 1, "fragment": fragment, "fragment+1": fragment + 1,
             "2*fragment": 2 * fragment}
    dataset = None
    if size != "none":
        n = named[size] if isinstance(size, str) else size
        dataset = (bytes(range(251)) * (n // 251 + 1))[:n]
    batches = list(fragment_message(3, STORE_RQ, dataset, max_pdu_length))
    pdvs = check_fragments(batches, 3, STORE_RQ, dataset, max_pdu_length)
    if dataset is not None:
        data = [d for _, c, d in pdvs if not c & 1]
        expected = max(1, -(-len(dataset) // fragment))
        assert len(data) == expected
        assert all(len(d) == fragment for d in data[:-1])
    events = reassemble(batches)
    assert events[0] == CommandReceived(3, STORE_RQ, dataset is not None)
    if dataset is not None:
        assert all(isinstance(e, DatasetFragment) for e in events[1:])
        assert b"".join(e.data for e in events[1:]) == dataset  # type: ignore[union-attr]


def test_command_set_is_fragmented_too() -> None:
    command = encode_command(STORE_RQ, True)
    batches = list(fragment_message(1, STORE_RQ, b"xy", 7))  # one byte per PDV
    pdvs = check_fragments(batches, 1, STORE_RQ, b"xy", 7)
    assert len([p for p in pdvs if p[1] & 1]) == len(command)
    assert len(pdvs) == len(command) + 2


def test_data_fragments_are_views_of_the_data_set_never_copies() -> None:
    for dataset in (bytes(512 * 1024), bytearray(512 * 1024)):
        batches = list(fragment_message(1, STORE_RQ, dataset, 16382))
        assert len(batches) == 1  # 512 KiB fits in one batch: one sendmsg
        views = [buf for buf in batches[0] if isinstance(buf, memoryview)]
        assert len(views) == -(-len(dataset) // 16376)
        assert all(view.obj is dataset for view in views)
        # everything else is a PDU header (12 bytes) or the command PDU
        others = [buf for buf in batches[0] if not isinstance(buf, memoryview)]
        assert sum(len(b) for b in others) == 12 * len(views) + 12 + len(
            encode_command(STORE_RQ, True))


def test_memoryview_and_other_buffers() -> None:
    backing = bytearray(range(200))
    view = memoryview(backing)[10:110]
    batches = list(fragment_message(5, STORE_RQ, view, 56))
    check_fragments(batches, 5, STORE_RQ, bytes(view), 56)
    assert all(buf.obj is backing for batch in batches for buf in batch
               if isinstance(buf, memoryview))
    import array

    words = array.array("H", range(100))  # itemsize 2: fragments count bytes, not items
    batches = list(fragment_message(5, STORE_RQ, memoryview(words), 57))
    check_fragments(batches, 5, STORE_RQ, words.tobytes(), 57)


def test_batches_hold_about_batch_size_bytes() -> None:
    dataset = bytes(1000)
    batches = list(fragment_message(1, STORE_RQ, dataset, 106, batch_size=300))
    # 10 fragments of 100 bytes, batched as 3 + 3 + 3 + 1 (the command rides in the first)
    assert [sum(len(b) for b in batch if isinstance(b, memoryview)) for batch in batches] == [
        300, 300, 300, 100]
    check_fragments(batches, 1, STORE_RQ, dataset, 106)


def test_no_dataset_is_one_batch_with_only_the_command() -> None:
    batches = list(fragment_message(9, STORE_RSP, None, 16384))
    assert len(batches) == 1
    check_fragments(batches, 9, STORE_RSP, None, 16384)


# -- streaming from chunks -------------------------------------------------------------------


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    offset = 0
    for size in sizes:
        yield data[offset : offset + size]
        offset += size
    yield data[offset:]


@given(
    data=st.binary(max_size=3000),
    sizes=st.lists(st.integers(0, 700), max_size=12),
    max_pdu_length=st.sampled_from([0, 7, 13, 101, 262, 16382]),
    batch_size=st.sampled_from([1, 100, 1 << 20]),
)
@settings(max_examples=200, deadline=None)
def test_streaming_chunks(data: bytes, sizes: list[int], max_pdu_length: int,
                          batch_size: int) -> None:
    batches = list(fragment_message(
        11, STORE_RQ, chunked(data, sizes), max_pdu_length, batch_size=batch_size))
    check_fragments(batches, 11, STORE_RQ, data, max_pdu_length)
    events = reassemble(batches)
    assert b"".join(e.data for e in events[1:]) == data  # type: ignore[union-attr]


def test_streaming_is_zero_copy_and_lazy() -> None:
    chunks = [bytes([i]) * 1000 for i in range(5)]
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for i, chunk in enumerate(chunks):
            pulled.append(i)
            yield chunk

    stream = fragment_message(1, STORE_RQ, source(), 406, batch_size=1000)
    first = next(stream)
    assert pulled == [0, 1]  # the second chunk tells whether the first one's tail is last
    views = [b for b in first if isinstance(b, memoryview)]
    assert views and all(v.obj is chunks[0] for v in views)
    rest = list(stream)
    check_fragments([first, *rest], 1, STORE_RQ, b"".join(chunks), 406)


def test_empty_chunks_are_skipped_and_an_empty_stream_is_an_empty_dataset() -> None:
    batches = list(fragment_message(1, STORE_RQ, iter([b"", b"abc", b"", b"", b"de", b""]), 9))
    pdvs = check_fragments(batches, 1, STORE_RQ, b"abcde", 9)
    assert all(d for _, c, d in pdvs if not c & 1)  # no empty data PDV
    for empty in ([], [b"", b""], iter(())):
        batches = list(fragment_message(1, STORE_RQ, empty, 16382))
        pdvs = check_fragments(batches, 1, STORE_RQ, b"", 16382)
        assert pdvs[-1] == (1, 0x02, b"")


def test_chunks_of_every_buffer_kind() -> None:
    chunks: list[Buffer] = [b"ab", bytearray(b"cd"), memoryview(b"xxefxx")[2:4]]
    batches = list(fragment_message(1, STORE_RQ, chunks, 16382))
    check_fragments(batches, 1, STORE_RQ, b"abcdef", 16382)


@pytest.mark.parametrize("max_pdu_length", [-1, 1, 2, 6])
def test_max_length_too_small(max_pdu_length: int) -> None:
    with pytest.raises(ValueError, match="no room"):
        fragment_message(1, STORE_RQ, b"x", max_pdu_length)


@pytest.mark.parametrize("context_id", [0, 256, -1])
def test_context_id_range(context_id: int) -> None:
    with pytest.raises(ValueError, match="context ID"):
        fragment_message(context_id, STORE_RQ, b"x", 16382)


def test_errors_are_raised_before_anything_is_yielded() -> None:
    with pytest.raises(ValueError, match="MessageID"):
        fragment_message(1, CEchoRQ(MessageID=1 << 16), None, 16382)
    with pytest.raises(TypeError, match="not str"):
        fragment_message(1, STORE_RQ, "text", 16382)  # type: ignore[arg-type]


@given(message=messages, dataset=st.none() | st.binary(max_size=500),
       max_pdu_length=st.sampled_from([0, 7, 31, 200, 16382]),
       context_id=st.integers(1, 255))
def test_any_message_round_trips(message: DimseMessage, dataset: bytes | None,
                                 max_pdu_length: int, context_id: int) -> None:
    batches = list(fragment_message(context_id, message, dataset, max_pdu_length))
    check_fragments(batches, context_id, message, dataset, max_pdu_length)
    events = reassemble(batches, MessageAssembler({context_id}))
    assert events[0] == CommandReceived(context_id, message, dataset is not None)
    if dataset is not None:
        assert b"".join(e.data for e in events[1:]) == dataset  # type: ignore[union-attr]


# -- reassembling -------------------------------------------------------------------------------


def pdata(*pdvs: tuple[int, bool, bool, bytes]) -> memoryview:
    """A P-DATA-TF variable field holding the given (context, command?, last?, data) PDVs."""
    pdu = PDataTF([PresentationDataValue(cid, cmd, last, data) for cid, cmd, last, data in pdvs])
    return memoryview(pdu.to_bytes())[6:]


STORE_CMD = encode_command(STORE_RQ, True)
RSP_CMD = encode_command(STORE_RSP, False)


def test_command_and_data_in_one_pdu_and_data_views_of_the_pdu() -> None:
    body = pdata((1, True, True, STORE_CMD), (1, False, False, b"abc"), (1, False, True, b"de"))
    assembler = MessageAssembler()
    events = assembler.receive(body)
    assert events == [
        CommandReceived(1, STORE_RQ, True),
        DatasetFragment(1, memoryview(b"abc"), False),
        DatasetFragment(1, memoryview(b"de"), True),
    ]
    fragment = events[1]
    assert isinstance(fragment, DatasetFragment)
    assert fragment.data.obj is body.obj  # a view of the received PDU
    assert not assembler.in_message


def test_fragmented_command_and_in_message() -> None:
    assembler = MessageAssembler()
    assert not assembler.in_message
    assert assembler.receive(pdata((3, True, False, STORE_CMD[:10]))) == []
    assert assembler.in_message
    assert assembler.receive(pdata((3, True, False, STORE_CMD[10:20]))) == []
    assert assembler.receive(pdata((3, True, True, STORE_CMD[20:]))) == [
        CommandReceived(3, STORE_RQ, True)]
    assert assembler.in_message  # the data set is still to come
    assert assembler.receive(pdata((3, False, False, b"1"))) == [
        DatasetFragment(3, memoryview(b"1"), False)]
    assert assembler.in_message
    assembler.receive(pdata((3, False, True, b"2")))
    assert not assembler.in_message
    # next message on another context
    assert assembler.receive(pdata((5, True, True, RSP_CMD))) == [
        CommandReceived(5, STORE_RSP, False)]
    assert not assembler.in_message


def test_real_dcmtk_store_and_orthanc_find_pdus() -> None:
    # storescu (DCMTK 3.6.7) C-STORE-RQ: command PDU, then data PDU, context 201
    command_pdu = bytes.fromhex(
        "0400000000720000006ec903000000000400000060000000000002001a000000312e322e3834302e3130"
        "3030382e352e312e342e312e312e37000000000102000000010000001001020000000100000000070200"
        "0000000000000008020000000100000000100e000000312e322e332e342e352e362e3700")
    data_pdu = bytes.fromhex(
        "04000000008600000082c9020800160055491a00312e322e3834302e31303030382e352e312e342e312e"
        "312e37000800180055490e00312e322e332e342e352e362e370008006000435302004f54100010005"
        "04e0800546573745e506174100020004c4f04005049443120000d0055490800312e322e332e340020000e"
        "0055490a00312e322e332e342e3500")
    assembler = MessageAssembler({201})
    events = assembler.receive(memoryview(command_pdu)[6:])
    assert events == [CommandReceived(201, CStoreRQ(
        MessageID=1, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.7",
        AffectedSOPInstanceUID="1.2.3.4.5.6.7"), True)]
    events = assembler.receive(memoryview(data_pdu)[6:])
    assert len(events) == 1
    fragment = events[0]
    assert isinstance(fragment, DatasetFragment)
    assert fragment.is_last
    assert bytes(fragment.data) == data_pdu[12:]
    # Orthanc C-FIND-RSP, pending, with its identifier, context 5
    rsp_pdu = bytes.fromhex(
        "04000000005e0000005a050300000000040000004c000000000002001c000000312e322e3834302e3130"
        "3030382e352e312e342e312e322e312e3100000000010200000020800000200102000000010000000008"
        "020000000100000000090200000000ff")
    events = MessageAssembler({5}).receive(memoryview(rsp_pdu)[6:])
    assert events == [CommandReceived(5, CFindRSP(
        MessageIDBeingRespondedTo=1, Status=0xFF00,
        AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.1"), True)]


def _violation(assembler: MessageAssembler, body: memoryview, reason: AbortReason,
               match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        assembler.receive(body)
    assert info.value.abort_reason == reason


UNEXPECTED = AbortReason.UNEXPECTED_PDU_PARAMETER
INVALID = AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_data_with_no_command() -> None:
    _violation(MessageAssembler(), pdata((1, False, True, b"x")), UNEXPECTED,
               "no data set is expected")


def test_data_before_the_command_is_complete() -> None:
    assembler = MessageAssembler()
    assembler.receive(pdata((1, True, False, STORE_CMD[:10])))
    _violation(assembler, pdata((1, False, True, b"x")), UNEXPECTED,
               "before the command set is complete")


def test_data_after_a_command_without_dataset() -> None:
    assembler = MessageAssembler()
    assembler.receive(pdata((1, True, True, RSP_CMD)))
    _violation(assembler, pdata((1, False, True, b"x")), UNEXPECTED, "no data set is expected")


def test_command_while_the_dataset_is_expected() -> None:
    assembler = MessageAssembler()
    assembler.receive(pdata((1, True, True, STORE_CMD), (1, False, False, b"x")))
    _violation(assembler, pdata((1, True, True, RSP_CMD)), UNEXPECTED,
               "while the data set of the previous command is expected")
    assembler = MessageAssembler()
    assembler.receive(pdata((1, True, True, STORE_CMD)))  # no data fragment yet
    _violation(assembler, pdata((1, True, True, RSP_CMD)), UNEXPECTED, "data set")


def test_context_change_inside_a_message() -> None:
    assembler = MessageAssembler()
    assembler.receive(pdata((1, True, False, STORE_CMD[:10])))
    _violation(assembler, pdata((3, True, True, STORE_CMD[10:])), UNEXPECTED,
               "context 3 while a message on context 1")
    assembler = MessageAssembler()
    assembler.receive(pdata((1, True, True, STORE_CMD), (1, False, False, b"x")))
    _violation(assembler, pdata((3, False, True, b"y")), UNEXPECTED, "context 1 is incomplete")


def test_accepted_context_ids_are_set_after_negotiation() -> None:
    assembler = MessageAssembler()
    assembler.receive(pdata((7, True, True, RSP_CMD)))  # anything goes before
    assembler.accepted_context_ids = frozenset({1, 3})
    assembler.receive(pdata((3, True, True, RSP_CMD)))
    _violation(assembler, pdata((5, True, True, RSP_CMD)), INVALID,
               "context 5, which is not an accepted one")


def test_malformed_command_set() -> None:
    _violation(MessageAssembler(), pdata((1, True, True, RSP_CMD[:-1])), INVALID,
               "malformed command set")


def test_command_set_length_is_capped() -> None:
    assembler = MessageAssembler()
    chunk = b"\x00" * 60000
    with pytest.raises(RemoteProtocolError, match="exceeds") as info:
        for _ in range(MAX_COMMAND_LENGTH // len(chunk) + 2):
            assembler.receive(pdata((1, True, False, chunk)))
    assert info.value.abort_reason == INVALID


def test_malformed_pdvs_are_reported_by_the_pdu_codec() -> None:
    with pytest.raises(RemoteProtocolError):
        MessageAssembler().receive(memoryview(b"\x00\x00\x00\x01\x01"))


# -- collecting --------------------------------------------------------------------------------


def test_dataset_collector() -> None:
    dataset = bytes(range(256)) * 100
    batches = list(fragment_message(1, FIND_RQ, dataset, 1000))
    collector = DatasetCollector()
    done = False
    for event in reassemble(batches):
        if isinstance(event, DatasetFragment):
            assert not done
            done = collector.add(event)
    assert done
    assert collector.complete
    assert collector.nbytes == len(dataset)
    assert collector.result() == dataset
    with pytest.raises(LocalProtocolError):
        collector.add(DatasetFragment(1, memoryview(b"x"), True))


def test_dataset_collector_partial_and_empty() -> None:
    collector = DatasetCollector()
    assert collector.result() == b""
    assert not collector.add(DatasetFragment(1, memoryview(b"ab"), False))
    assert not collector.complete
    assert collector.result() == b"ab"
    assert collector.add(DatasetFragment(1, memoryview(b""), True))
    assert collector.result() == b"ab"


# -- message IDs -------------------------------------------------------------------------------


def test_message_ids_count_from_1() -> None:
    ids = MessageIDs()
    assert [ids.allocate() for _ in range(3)] == [1, 2, 3]
    assert 2 in ids
    ids.release(2)
    assert 2 not in ids
    assert ids.outstanding == frozenset({1, 3})
    assert ids.allocate() == 4  # no immediate reuse
    ids.release(99)  # unknown: ignored


def test_message_ids_wrap_and_skip_outstanding() -> None:
    ids = MessageIDs(first=65534)
    assert [ids.allocate() for _ in range(3)] == [65534, 65535, 1]  # 0 is never used
    ids = MessageIDs()
    assert ids.allocate() == 1  # an operation that never ends
    for expected in range(2, 65536):
        assert ids.allocate() == expected
        ids.release(expected)
    assert ids.allocate() == 2  # wrapped around, 1 still outstanding


def test_message_ids_exhausted() -> None:
    ids = MessageIDs()
    allocated = {ids.allocate() for _ in range(65535)}
    assert allocated == set(range(1, 65536))
    with pytest.raises(LocalProtocolError, match="outstanding"):
        ids.allocate()
    ids.release(40000)
    assert ids.allocate() == 40000


@pytest.mark.parametrize("first", [0, 65536])
def test_message_ids_first(first: int) -> None:
    with pytest.raises(ValueError):
        MessageIDs(first)
