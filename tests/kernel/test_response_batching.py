"""Responses written in batches: ``dimse.command_pdus``/``dataset_pdus`` and ``Call.hold``.

``command_pdus`` + ``dataset_pdus`` must give the bytes ``fragment_message``
gives, for every maximum length. ``Call.hold`` queues Pending responses and
writes them with the next ``send``, at ``flush``, or when the limits are
reached; with DIMSE logging or a listener it writes each at once. The
association is a stand-in that records what it is asked to write; the bytes
are read back with the ``MessageAssembler``, so no socket is involved.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from dicomnet import service_provider as sp
from dicomnet.acse import NegotiatedContext
from dicomnet.datasets import decode_dataset
from dicomnet.dimse import (
    CommandReceived,
    DatasetCollector,
    MessageAssembler,
    command_pdus,
    dataset_pdus,
    fragment_message,
)
from dicomnet.dimse_messages import CFindRQ, CFindRSP, DimseMessage
from dicomnet.pdu import iter_pdvs

FIND = "1.2.840.10008.5.1.4.1.2.2.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
REQUEST = CFindRQ(MessageID=5, AffectedSOPClassUID=FIND)
PENDING = CFindRSP(MessageIDBeingRespondedTo=5, AffectedSOPClassUID=FIND, Status=0xFF00)
SUCCESS = CFindRSP(MessageIDBeingRespondedTo=5, AffectedSOPClassUID=FIND, Status=0x0000)


def joined(batches: Any) -> bytes:
    return b"".join(bytes(piece) for batch in batches for piece in batch)


@given(
    max_pdu=st.one_of(st.just(0), st.integers(7, 400), st.just(16382)),
    data=st.one_of(st.none(), st.binary(max_size=1500)),
    context_id=st.sampled_from([1, 3, 255]),
)
def test_command_and_dataset_pdus_are_what_fragment_message_sends(
    max_pdu: int, data: bytes | None, context_id: int
) -> None:
    expected = joined(fragment_message(context_id, PENDING, data, max_pdu))
    ours = command_pdus(context_id, PENDING, data is not None, max_pdu)
    if data is not None:
        ours += b"".join(bytes(p) for p in dataset_pdus(context_id, data, max_pdu))
    assert ours == expected


def test_pdus_refuse_what_fragment_message_refuses() -> None:
    with pytest.raises(ValueError, match="context ID"):
        command_pdus(0, PENDING, False, 16382)
    with pytest.raises(ValueError, match="no room"):
        command_pdus(1, PENDING, False, 6)
    with pytest.raises(ValueError, match="no room"):
        dataset_pdus(1, b"x", 3)


# -- Call.hold -------------------------------------------------------------------------------


class FakeAssociation:
    """What ``Call`` uses of an association; it records the writes."""

    def __init__(self, *, batching: bool = True, max_send: int = 16382) -> None:
        self.batching = batching
        self._max_send = max_send
        self._context_views: dict[int, Any] = {}  # where an association keeps its ContextViews
        self.writes: list[bytes] = []  # one entry per write of batched PDUs
        self.messages: list[tuple[DimseMessage, bytes | None]] = []  # _send_message calls

    def _batching_allowed(self) -> bool:
        return self.batching

    def _write_pdata(self, buffers: list[bytes]) -> None:
        self.writes.append(b"".join(bytes(b) for b in buffers))

    def _send_message(self, context_id: int, message: DimseMessage, data: Any) -> None:
        self.messages.append((message, data))


def make_call(assoc: FakeAssociation) -> sp.Call:
    context = NegotiatedContext(1, FIND, EXPLICIT_LE, 0, as_scu=False, as_scp=True)
    return sp.Call(assoc, context, REQUEST, b"", service=None)  # type: ignore[arg-type]


def read_back(stream: bytes) -> list[tuple[DimseMessage, Dataset | None]]:
    """The messages in a stream of P-DATA-TF PDUs, with their data sets decoded."""
    assembler = MessageAssembler()
    messages: list[tuple[DimseMessage, Dataset | None]] = []
    offset = 0
    collector: DatasetCollector | None = None
    pending: DimseMessage | None = None
    while offset < len(stream):
        length = int.from_bytes(stream[offset + 2 : offset + 6], "big")
        body = memoryview(stream)[offset + 6 : offset + 6 + length]
        assert list(iter_pdvs(body))  # a well-formed P-DATA-TF
        for event in assembler.receive(body):
            if isinstance(event, CommandReceived):
                if event.has_dataset:
                    pending, collector = event.message, DatasetCollector()
                else:
                    messages.append((event.message, None))
            else:
                assert collector is not None and pending is not None
                if collector.add(event):
                    messages.append((pending, decode_dataset(collector.result(), EXPLICIT_LE)))
        offset += 6 + length
    return messages


def identifier(n: int) -> Dataset:
    ds = Dataset()
    ds.PatientID = f"P{n}"
    ds.QueryRetrieveLevel = "PATIENT"
    return ds


def test_held_responses_go_out_with_the_next_send_in_one_write() -> None:
    assoc = FakeAssociation()
    call = make_call(assoc)
    for n in range(3):
        call.hold(PENDING, identifier(n))
    assert assoc.writes == []  # held
    call.send(SUCCESS)
    assert len(assoc.writes) == 1 and assoc.messages == []
    back = read_back(assoc.writes[0])
    assert [m.Status for m, _ in back] == [0xFF00, 0xFF00, 0xFF00, 0x0000]
    assert [ds.PatientID for _, ds in back[:3] if ds is not None] == ["P0", "P1", "P2"]
    assert back[3][1] is None
    assert call.final_sent


def test_flush_writes_what_is_held_and_nothing_twice() -> None:
    assoc = FakeAssociation()
    call = make_call(assoc)
    call.hold(PENDING, identifier(1))
    call.flush()
    call.flush()
    assert len(assoc.writes) == 1
    assert not call.final_sent


def test_limits_flush_on_their_own() -> None:
    assoc = FakeAssociation()
    call = make_call(assoc)
    for n in range(sp.HOLD_MAX_MESSAGES + 1):
        call.hold(PENDING, identifier(n))
    assert len(assoc.writes) == 1
    assert len(read_back(assoc.writes[0])) == sp.HOLD_MAX_MESSAGES
    call.flush()
    assert [ds.PatientID for _, ds in read_back(assoc.writes[1]) if ds] == [
        f"P{sp.HOLD_MAX_MESSAGES}"
    ]


def test_a_large_data_set_is_never_held() -> None:
    assoc = FakeAssociation()
    call = make_call(assoc)
    call.hold(PENDING, identifier(0))
    big = b"\x08\x00\x50\x00" + b"\x00" * 8  # anything: the data set is not decoded here
    big += bytes(sp.HOLD_MAX_BYTES)
    call.hold(PENDING, big)
    assert len(assoc.writes) == 1  # the held one first...
    assert assoc.messages == [(PENDING, big)]  # ...then the big one on its own


def test_without_batching_every_response_is_sent_at_once() -> None:
    assoc = FakeAssociation(batching=False)  # DIMSE logging or a listener
    call = make_call(assoc)
    call.hold(PENDING, identifier(0))
    call.hold(PENDING, identifier(1))
    call.send(SUCCESS)
    assert assoc.writes == []
    assert [m.Status for m, _ in assoc.messages] == [0xFF00, 0xFF00, 0x0000]


def test_the_command_set_is_encoded_once_per_response_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[DimseMessage] = []
    real = sp.command_pdus

    def counting(context_id: int, message: DimseMessage, has: bool, max_pdu: int) -> bytes:
        encoded.append(message)
        return real(context_id, message, has, max_pdu)

    monkeypatch.setattr(sp, "command_pdus", counting)
    assoc = FakeAssociation()
    call = make_call(assoc)
    for n in range(10):
        call.hold(PENDING, identifier(n))
    other = CFindRSP(MessageIDBeingRespondedTo=5, AffectedSOPClassUID=FIND, Status=0xFF01)
    call.hold(other, identifier(10))
    call.send(SUCCESS)
    assert encoded == [PENDING, other, SUCCESS]
    assert [m.Status for m, _ in read_back(assoc.writes[0])] == [0xFF00] * 10 + [0xFF01, 0]


def test_small_pdus_cut_held_responses_like_single_ones() -> None:
    assoc = FakeAssociation(max_send=40)
    call = make_call(assoc)
    call.hold(PENDING, identifier(7))
    call.send(SUCCESS)
    back = read_back(assoc.writes[0])
    assert back[0][1] is not None and back[0][1].PatientID == "P7"
    assert back[1][0].Status == 0


# -- receiving: decode_command remembers Pending C-FIND responses ----------------------------


def test_identical_pending_find_responses_decode_to_one_value() -> None:
    from dicomnet import dimse_messages

    raw = dimse_messages.encode_command(PENDING, True)
    first = dimse_messages.decode_command(raw)
    assert first == (PENDING, True)
    assert dimse_messages.decode_command(memoryview(raw)) is first
    final = dimse_messages.encode_command(SUCCESS, False)
    assert dimse_messages.decode_command(final) is not dimse_messages.decode_command(final)
    for n in range(dimse_messages._PENDING_FIND_MAX * 2):  # bounded
        rsp = CFindRSP(MessageIDBeingRespondedTo=n + 1, AffectedSOPClassUID=FIND, Status=0xFF01)
        assert dimse_messages.decode_command(dimse_messages.encode_command(rsp, True))[0] == rsp
    assert len(dimse_messages._PENDING_FIND) <= dimse_messages._PENDING_FIND_MAX
