"""DIMSE over the Upper Layer between an in-memory requestor and acceptor (PS3.7 8.1, PS3.8 9, E.2).

The two layers stack without sockets or sleeps: each side's
:class:`~dicomnet.upper_layer.UpperLayer` carries P-DATA-TF PDUs cut by
:func:`~dicomnet.dimse.fragment_message` within the *peer's* Maximum Length
Received, and the receiving side's :class:`~dicomnet.dimse.MessageAssembler`
puts the messages back together. Maximum lengths 0 (no limit), 16382 (the
common default) and a small odd value are exercised in both directions, then
the association is released, or aborted in the middle of a data set.
"""

from __future__ import annotations

import pytest

from dicomnet.dimse import (
    CommandReceived,
    DatasetCollector,
    DatasetFragment,
    MessageAssembler,
    fragment_message,
)
from dicomnet.dimse_messages import CStoreRQ, CStoreRSP, DimseMessage
from dicomnet.errors import AbortSource
from dicomnet.fsm import State
from dicomnet.pdu import PDU_HEADER, PDUType
from dicomnet.upper_layer import (
    Aborted,
    ConnectionClosed,
    PDataReceived,
    ReleaseConfirmed,
    ReleaseRequested,
)

from .test_upper_layer import Pair

CT = "1.2.840.10008.5.1.4.1.1.2"
#: a data set whose bytes are all different from their neighbours, so that any
#: misplaced or lost fragment shows
DATASET = bytes((i * 7 + i // 251) & 0xFF for i in range(100_003))
REQUEST = CStoreRQ(
    MessageID=7,
    AffectedSOPClassUID=CT,
    AffectedSOPInstanceUID="1.2.3.4.5",
    Priority=0,
)
RESPONSE = CStoreRSP(
    MessageIDBeingRespondedTo=7,
    AffectedSOPClassUID=CT,
    AffectedSOPInstanceUID="1.2.3.4.5",
    Status=0x0000,
)


def receive_messages(
    events: list[object], assembler: MessageAssembler
) -> list[tuple[DimseMessage, bytes | None]]:
    """Reassemble the DIMSE messages carried by ``events`` (the P-DATA indications)."""
    messages: list[tuple[DimseMessage, bytes | None]] = []
    collector: DatasetCollector | None = None
    pending: DimseMessage | None = None
    for event in events:
        if not isinstance(event, PDataReceived):
            continue
        for item in assembler.receive(event.body):
            if isinstance(item, CommandReceived):
                if item.has_dataset:
                    pending, collector = item.message, DatasetCollector()
                else:
                    messages.append((item.message, None))
            else:
                assert isinstance(item, DatasetFragment)
                assert collector is not None and pending is not None
                if collector.add(item):
                    messages.append((pending, collector.result()))
                    pending = collector = None
    return messages


def pdata_lengths(buffers: list[bytes]) -> list[int]:
    """The variable-field length of each P-DATA-TF PDU in what a side sent."""
    data = b"".join(buffers)
    lengths = []
    while data:
        pdu_type, _, length = PDU_HEADER.unpack_from(data)
        assert pdu_type == PDUType.P_DATA_TF
        lengths.append(length)
        data = data[6 + length :]
    return lengths


def send(pair: Pair, requestor: bool, message: DimseMessage, dataset: bytes | None,
         peer_max: int) -> list[int]:
    """Send ``message`` from one side within the peer's maximum; return the PDU lengths."""
    side = pair.side(requestor)
    sent: list[bytes] = []
    for batch in fragment_message(1, message, dataset, peer_max):
        sent += [bytes(b) for b in batch]
        side.send_pdata(batch)
    pair.pump()
    return pdata_lengths(sent)


@pytest.mark.parametrize("acceptor_max", [0, 16382, 101], ids=["unlimited", "16382", "odd-101"])
@pytest.mark.parametrize("requestor_max", [0, 16382, 257], ids=["unlimited", "16382", "odd-257"])
def test_fragmented_store_both_ways_then_release(requestor_max: int, acceptor_max: int) -> None:
    # each side refuses P-DATA longer than its own Maximum Length Received
    pair = Pair(max_pdata_length=None)
    pair.requestor.max_pdata_length = requestor_max or None
    pair.acceptor.max_pdata_length = acceptor_max or None
    pair.associate()

    # requestor -> acceptor: the C-STORE-RQ with its data set, cut for the acceptor
    lengths = send(pair, True, REQUEST, DATASET, acceptor_max)
    if acceptor_max:
        assert max(lengths) <= acceptor_max
        assert len(lengths) > 1
    received = receive_messages(pair.take(False), MessageAssembler({1}))
    assert received == [(REQUEST, DATASET)]

    # acceptor -> requestor: the response, and a data set back, cut for the requestor
    send(pair, False, RESPONSE, None, requestor_max)
    lengths = send(pair, False, REQUEST, DATASET[:5000], requestor_max)
    if requestor_max:
        assert max(lengths) <= requestor_max
    received = receive_messages(pair.take(True), MessageAssembler({1}))
    assert received == [(RESPONSE, None), (REQUEST, DATASET[:5000])]

    pair.requestor.release()
    pair.pump()
    assert pair.take(False) == [ReleaseRequested(collision=False)]
    pair.acceptor.release_response()
    pair.pump()
    assert pair.take(True) == [ReleaseConfirmed(), ConnectionClosed()]
    assert pair.requestor.state is pair.acceptor.state is State.Sta1


def test_a_pdu_past_the_peers_maximum_aborts() -> None:
    # the requestor ignores the acceptor's limit of 101: the acceptor aborts (PS3.8 D.1)
    pair = Pair(max_pdata_length=101)
    pair.associate()
    send(pair, True, REQUEST, DATASET[:1000], 0)
    events = pair.take(False)
    aborted = [e for e in events if isinstance(e, Aborted)]
    assert len(aborted) == 1 and aborted[0].local
    assert not any(isinstance(e, PDataReceived) for e in events)
    assert pair.acceptor.state is State.Sta1


@pytest.mark.parametrize("aborter", [True, False], ids=["sender-aborts", "receiver-aborts"])
def test_abort_in_the_middle_of_a_data_set(aborter: bool) -> None:
    pair = Pair(max_pdata_length=16382)
    pair.associate()
    batches = list(fragment_message(1, REQUEST, DATASET, 16382, batch_size=16_000))
    assert len(batches) > 2
    for batch in batches[:2]:  # the command and part of the data set, then an abort
        pair.requestor.send_pdata(batch)
    pair.pump()
    assembler = MessageAssembler({1})
    assert receive_messages(pair.take(False), assembler) == []
    assert assembler.in_message  # a half-received data set is never complete
    (pair.requestor if aborter else pair.acceptor).abort()
    pair.pump()
    receiver_events = pair.take(False)
    if aborter:
        assert receiver_events == [
            Aborted(AbortSource.SERVICE_USER, 0, local=False),
            ConnectionClosed(),
        ]
    else:
        assert pair.take(True) == [
            Aborted(AbortSource.SERVICE_USER, 0, local=False),
            ConnectionClosed(),
        ]
    assert pair.requestor.state is pair.acceptor.state is State.Sta1
