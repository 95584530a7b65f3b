"""Fast paths of the receive side agree with the general ones (PS3.7 8.1, PS3.8 9.3.5, E.2).

``UpperLayer.next_pdata`` hands out the bodies of received P-DATA-TF PDUs in
batches; interleaved with ``next_event`` it must give the same bodies and
events, in the same order, with the same state and output, as ``next_event``
alone -- whatever the cuts of the stream and the PDUs in it.

``MessageAssembler.receive_data`` handles the commonest P-DATA-TF -- one data
fragment of the data set being received -- without building DIMSE events;
for anything else it must consume nothing and leave the body to ``receive``,
which applies every rule. Driving an assembler through the fast path first,
falling back to ``receive``, must give the same fragments and the same errors
as ``receive`` alone.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.dimse import (
    CommandReceived,
    DatasetFragment,
    DimseEvent,
    MessageAssembler,
    fragment_message,
)
from dicomnet.dimse_messages import CStoreRQ
from dicomnet.errors import LocalProtocolError, RemoteProtocolError
from dicomnet.fsm import State
from dicomnet.ul_events import Aborted, PDataReceived, PDUReceived, ReleaseRequested

STORE_RQ = CStoreRQ(
    MessageID=3,
    AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
    AffectedSOPInstanceUID="1.2.826.0.1.3680043.8.498.42",
)


def bodies(context_id: int, dataset: bytes | None, max_pdu: int) -> list[memoryview]:
    """The P-DATA-TF variable fields fragment_message produces for a C-STORE-RQ."""
    out = []
    for batch in fragment_message(context_id, STORE_RQ, dataset, max_pdu):
        stream = b"".join(bytes(b) for b in batch)
        offset = 0
        while offset < len(stream):
            (length,) = struct.unpack_from(">I", stream, offset + 2)
            out.append(memoryview(stream[offset + 6 : offset + 6 + length]))
            offset += 6 + length
    return out


def pdv(context_id: int, control: int, data: bytes) -> bytes:
    return struct.pack(">IBB", len(data) + 2, context_id, control) + data


def through_fast_path(asm: MessageAssembler, body: memoryview) -> list[DimseEvent]:
    fragment = asm.receive_data(body)
    if fragment is None:
        return asm.receive(body)
    data, is_last = fragment
    return [DatasetFragment(asm_context(body), data, is_last)]


def asm_context(body: memoryview) -> int:
    return body[4]


def normalised(events: list[DimseEvent]) -> list[tuple[object, ...]]:
    return [
        (e.context_id, bytes(e.data), e.is_last)
        if isinstance(e, DatasetFragment)
        else (e.context_id, e.message, e.has_dataset)
        for e in events
    ]


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 3000),
    max_pdu=st.sampled_from([7, 8, 64, 100, 1000, 0]),
    messages=st.integers(1, 3),
)
def test_fast_path_gives_what_receive_gives(size: int, max_pdu: int, messages: int) -> None:
    dataset = bytes(range(256)) * (size // 256) + bytes(size % 256)
    stream = [b for _ in range(messages) for b in bodies(1, dataset, max_pdu)]
    slow, fast = MessageAssembler({1}), MessageAssembler({1})
    expected = [e for body in stream for e in slow.receive(body)]
    got = [e for body in stream for e in through_fast_path(fast, body)]
    assert normalised(got) == normalised(expected)
    assert not fast.in_message


def test_the_fast_path_takes_a_lone_data_fragment_of_the_expected_data_set() -> None:
    asm = MessageAssembler({1})
    [command] = asm.receive(bodies(1, b"x" * 10, 0)[0])
    assert isinstance(command, CommandReceived)
    first = asm.receive_data(memoryview(pdv(1, 0x00, b"abcd")))
    assert first is not None and bytes(first[0]) == b"abcd" and first[1] is False
    assert asm.in_message
    last = asm.receive_data(memoryview(pdv(1, 0x02, b"ef")))
    assert last is not None and bytes(last[0]) == b"ef" and last[1] is True
    assert not asm.in_message
    # nothing is expected any more: the fast path declines, receive() refuses
    body = memoryview(pdv(1, 0x02, b"gh"))
    assert asm.receive_data(body) is None
    with pytest.raises(RemoteProtocolError):
        asm.receive(body)


@pytest.mark.parametrize(
    "body",
    [
        pdv(3, 0x00, b"data"),  # another context
        pdv(1, 0x01, b"command"),  # a command fragment
        pdv(1, 0x00, b"ab") + pdv(1, 0x02, b"cd"),  # two PDVs in one PDU
        pdv(1, 0x00, b"ab") + b"\x00",  # trailing byte
        pdv(1, 0x00, b"abcdef")[:-2],  # item length beyond the body
        b"\x00\x00\x00",  # shorter than a PDV header
    ],
    ids=["other-context", "command", "two-pdvs", "trailing", "truncated", "short"],
)
def test_the_fast_path_declines_everything_else(body: bytes) -> None:
    asm = MessageAssembler({1, 3})
    asm.receive(bodies(1, b"x" * 10, 0)[0])
    assert asm.receive_data(memoryview(body)) is None
    assert asm.in_message  # nothing consumed: the message is still being received


def test_the_fast_path_declines_when_no_data_set_is_expected() -> None:
    asm = MessageAssembler({1})
    assert asm.receive_data(memoryview(pdv(1, 0x02, b"data"))) is None
    [command] = asm.receive(bodies(1, None, 0)[0])  # a command announcing no data set
    assert isinstance(command, CommandReceived) and not command.has_dataset
    assert asm.receive_data(memoryview(pdv(1, 0x02, b"data"))) is None


# -- UpperLayer.next_pdata: the batch form of next_event's DT-2 ----------------------------


def _pdata(data: bytes) -> bytes:
    body = pdv(1, 0x00, data)
    return struct.pack(">BBI", 0x04, 0, len(body)) + body


_RELEASE_RQ = bytes.fromhex("05000000000400000000")
_ABORT = bytes.fromhex("07000000000400000000")

pdu_streams = st.lists(
    st.one_of(
        st.binary(min_size=0, max_size=300).map(_pdata),
        st.just(_RELEASE_RQ),
        st.just(_ABORT),
        st.just(_pdata(b"y" * 5000)),  # longer than the cap below: Evt19
    ),
    max_size=12,
)


def _replay(stream: bytes, cuts: list[int], batched: bool) -> tuple[list[object], object, bytes]:
    from tests.kernel.test_upper_layer import build

    ul, _ = build(6, False, max_pdata_length=4096)
    seen: list[object] = []

    def take() -> None:
        while True:
            bodies = ul.next_pdata() if batched else []
            if bodies:
                seen.extend(("P-DATA", bytes(body)) for body in bodies)
                continue
            event = ul.next_event()
            if event is None:
                return
            if isinstance(event, PDataReceived):
                seen.append(("P-DATA", bytes(event.body)))
            else:
                seen.append(event)

    position = 0
    for cut in [*sorted(cuts), len(stream)]:
        if cut > position and ul.state is not State.Sta1:
            with contextlib.suppress(LocalProtocolError):  # the connection may be closed
                ul.receive_data(stream[position:cut])
            position = cut
        take()
    return seen, ul.state, b"".join(bytes(b) for b in ul.data_to_send())


@settings(max_examples=200, deadline=None)
@given(pdus=pdu_streams, cuts=st.lists(st.integers(0, 20_000), max_size=6))
def test_next_pdata_gives_what_next_event_gives(pdus: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(pdus)
    cuts = [c for c in cuts if c < len(stream)]
    assert _replay(stream, cuts, batched=True) == _replay(stream, cuts, batched=False)


def test_next_pdata_leaves_other_pdus_and_queued_events_to_next_event() -> None:
    from tests.kernel.test_upper_layer import build

    ul, _ = build(6, False)
    ul.receive_data(_pdata(b"a") + _pdata(b"b") + _RELEASE_RQ + _pdata(b"c"))
    assert [bytes(b) for b in ul.next_pdata()] == [pdv(1, 0, b"a"), pdv(1, 0, b"b")]
    assert ul.next_pdata() == []  # an A-RELEASE-RQ is next: not consumed
    assert ul.state is State.Sta6
    assert isinstance(ul.next_event(), ReleaseRequested)
    assert ul.state is State.Sta8
    assert ul.next_pdata() == []  # not in Sta6: a P-DATA-TF in Sta8 is AA-8's business
    assert isinstance(ul.next_event(), Aborted)


def test_next_pdata_is_off_while_diagnostics_are_on() -> None:
    from tests.kernel.test_upper_layer import build

    ul, _ = build(6, False)
    ul.emit_pdus = True
    ul.receive_data(_pdata(b"a"))
    assert ul.next_pdata() == []
    assert isinstance(ul.next_event(), PDUReceived)
