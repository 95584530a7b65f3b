"""Hostile and broken peers, scripted byte by byte on plain sockets (PS3.8 9.2, 9.3).

Against our SCP: a peer sends hand-built bytes and reads back what the SCP
answers. Each case checks the answer PS3.8 Table 9-10 asks for (the A-ABORT's
source and reason, or the A-ASSOCIATE-RJ), that the SCP then ends the
connection, and that the same SCP still serves a normal association: a
malformed PDU aborts that association only.

Against our SCU: a fake SCP answers the A-ASSOCIATE-RQ with garbage, with an
A-ASSOCIATE-AC for contexts never proposed, or closes mid-negotiation;
``associate()`` returns an aborted association, raises nothing and leaves no
thread behind.

Where the A-ABORT comes from: in Sta2 (no A-ASSOCIATE-RQ yet) an invalid or
unexpected PDU is answered by AA-1, whose A-ABORT has the *service-user*
source (0) and reason 0; on an association (Sta3, Sta6...) AA-8 sends the
*service-provider* source (2) with the reason of Table 9-26: 1 unrecognized
PDU, 2 unexpected PDU, 6 invalid parameter value.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

import pytest

from dicomnet import evt
from dicomnet.pdu import (
    PDU_HEADER,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PDUType,
    PresentationContextAC,
    PresentationDataValue,
)

from .peers import VERIFICATION, WAIT, RawPeer, accept, echo_rq_pdata, verification_rq

SERVICE_USER, SERVICE_PROVIDER = 0, 2
NOT_SPECIFIED, UNRECOGNIZED_PDU, UNEXPECTED_PDU = 0, 1, 2
UNEXPECTED_PARAMETER, INVALID_PARAMETER = 5, 6


def header(pdu_type: int, length: int) -> bytes:
    return PDU_HEADER.pack(pdu_type, 0, length)


def expect_abort_then_close(peer: RawPeer) -> AAbort:
    """The next PDU is an A-ABORT, and then the SCP ends the connection.

    More A-ABORTs may come first: in Sta13 each further invalid PDU already sent
    is answered with one (AA-7).
    """
    abort: AAbort = peer.expect(AAbort)
    assert all(pdu_type == PDUType.A_ABORT for pdu_type, _ in peer.wait_closed())
    return abort


def assert_still_serving(scp: Any, scu: Any) -> None:
    with scu.associate("127.0.0.1", scp.port, ae_title="SCP") as assoc:
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0


@pytest.fixture
def peer(scp: Any) -> Any:
    with RawPeer.connect(scp.address) as raw:
        yield raw


@pytest.fixture
def associated(peer: RawPeer) -> RawPeer:
    """A raw peer with an established Verification association (Sta6 at the SCP)."""
    ac = peer.associate(verification_rq())
    assert ac.presentation_contexts[0].result == 0
    return peer


# -- the Upper Layer: PDUs the SCP must refuse ---------------------------------------------


def test_echo_by_hand(scp: Any, associated: RawPeer) -> None:
    """The scripted peer itself works: C-ECHO and release by hand."""
    associated.send(echo_rq_pdata())
    response = associated.read_dimse()
    assert response.Status == 0 and response.MessageIDBeingRespondedTo == 1
    associated.send(AReleaseRQ())
    associated.expect(AReleaseRP)


def test_unknown_pdu_type_on_an_association(scp: Any, scu: Any, associated: RawPeer) -> None:
    associated.send(header(0x0A, 4) + b"\x00" * 4)
    abort = expect_abort_then_close(associated)
    assert (abort.source, abort.reason) == (SERVICE_PROVIDER, UNRECOGNIZED_PDU)  # AA-8
    assert_still_serving(scp, scu)


def test_unknown_pdu_type_before_association(scp: Any, scu: Any, peer: RawPeer) -> None:
    peer.send(header(0x0A, 4) + b"\x00" * 4)
    abort = expect_abort_then_close(peer)
    assert (abort.source, abort.reason) == (SERVICE_USER, NOT_SPECIFIED)  # Sta2: AA-1
    assert_still_serving(scp, scu)


def test_unsupported_protocol_version(scp: Any, scu: Any, peer: RawPeer) -> None:
    peer.send(verification_rq(protocol_version=2))  # bit 0 not set (PS3.8 9.3.2)
    rj: AAssociateRJ = peer.expect(AAssociateRJ)
    assert (rj.result, rj.source, rj.reason) == (1, 2, 2)  # permanent, ACSE, protocol version
    peer.close()
    assert_still_serving(scp, scu)


def test_protocol_version_with_bit_zero_set_is_accepted(scp: Any, peer: RawPeer) -> None:
    """A receiver implementing only version 1 tests only bit 0 (PS3.8 9.3.2)."""
    ac = peer.associate(verification_rq(protocol_version=3))
    assert ac.presentation_contexts[0].result == 0


@pytest.mark.parametrize(
    "pdu",
    [
        PDataTF([PresentationDataValue(1, True, True, b"\x00" * 8)]),
        AReleaseRQ(),
        AReleaseRP(),
        AAssociateAC("SCP", "RAWPEER", [PresentationContextAC(1, 0, "1.2.840.10008.1.2")]),
        AAssociateRJ(1, 1, 1),
    ],
    ids=["P-DATA-TF", "A-RELEASE-RQ", "A-RELEASE-RP", "A-ASSOCIATE-AC", "A-ASSOCIATE-RJ"],
)
def test_pdu_before_association(scp: Any, scu: Any, peer: RawPeer, pdu: Any) -> None:
    """Sta2 + Evt3/4/10/12/13: AA-1, an A-ABORT, and the connection is closed."""
    peer.send(pdu)
    abort = expect_abort_then_close(peer)
    assert (abort.source, abort.reason) == (SERVICE_USER, NOT_SPECIFIED)
    assert_still_serving(scp, scu)


def test_abort_before_association_closes(scp: Any, scu: Any, peer: RawPeer) -> None:
    """Sta2 + Evt16: AA-2, the connection is closed without an answer."""
    peer.send(AAbort(0, 0))
    assert peer.wait_closed() == []
    assert_still_serving(scp, scu)


def test_truncated_pdu_then_close(scp: Any, scu: Any, peer: RawPeer) -> None:
    """The header announces more than is sent, then the peer goes away."""
    rq = verification_rq().to_bytes()
    peer.send(rq[: len(rq) // 2])
    peer.close()
    assert_still_serving(scp, scu)


def test_truncated_pdu_on_an_association(scp: Any, scu: Any, associated: RawPeer) -> None:
    data = echo_rq_pdata()
    associated.send(data[:-10])
    associated.close()
    assert_still_serving(scp, scu)


def test_oversized_pdata_is_refused_from_its_header(
    scp: Any, scu: Any, associated: RawPeer
) -> None:
    """A P-DATA-TF longer than the Maximum Length we announced: A-ABORT (reason 6) as
    soon as the 6-byte header is in, before any of the body is sent (PS3.8 D.1)."""
    limit = scp.ae.maximum_pdu_size
    associated.send(header(PDUType.P_DATA_TF, limit + 1))
    abort = expect_abort_then_close(associated)
    assert (abort.source, abort.reason) == (SERVICE_PROVIDER, INVALID_PARAMETER)
    assert_still_serving(scp, scu)


def padded_echo_command(length: int) -> bytes:
    """A C-ECHO-RQ command set of exactly ``length`` bytes: an element the command
    dictionary does not know, (0000,7FFF), pads it (receivers skip unknown elements)."""
    from dicomnet.dimse_messages import CEchoRQ, encode_command

    command = encode_command(CEchoRQ(MessageID=7, AffectedSOPClassUID=VERIFICATION), False)
    body = command[12:]  # without (0000,0000) CommandGroupLength
    padding = length - len(command) - 8
    assert padding >= 0
    body += struct.pack("<HHI", 0x0000, 0x7FFF, padding) + b"\x00" * padding
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


@pytest.mark.parametrize(("excess", "accepted"), [(0, True), (1, False)])
def test_pdata_at_the_maximum_length(make_scp: Any, excess: int, accepted: bool) -> None:
    """The Maximum Length is the largest P-DATA-TF variable field accepted: equal is
    fine, one byte more is refused (PS3.8 D.1)."""
    scp = make_scp(maximum_pdu_size=100)
    with RawPeer.connect(scp.address) as raw:
        raw.associate(verification_rq())
        command = padded_echo_command(100 - 6 + excess)  # the PDV header takes 6 bytes
        raw.send(pdata(1, 0x03, command))
        if accepted:
            response = raw.read_dimse()
            assert (response.MessageIDBeingRespondedTo, response.Status) == (7, 0)
        else:
            abort = expect_abort_then_close(raw)
            assert (abort.source, abort.reason) == (SERVICE_PROVIDER, INVALID_PARAMETER)


def test_oversized_associate_rq_is_refused_from_its_header(
    scp: Any, scu: Any, peer: RawPeer
) -> None:
    """Any other PDU is capped too (1 MiB): refused before its body is buffered."""
    peer.send(header(PDUType.A_ASSOCIATE_RQ, 64 * 1024 * 1024))
    abort = expect_abort_then_close(peer)
    assert abort.source == SERVICE_USER  # Sta2: AA-1
    assert_still_serving(scp, scu)


def test_second_associate_rq_on_an_association(scp: Any, scu: Any, associated: RawPeer) -> None:
    associated.send(verification_rq())
    abort = expect_abort_then_close(associated)
    assert (abort.source, abort.reason) == (SERVICE_PROVIDER, UNEXPECTED_PDU)  # AA-8
    assert_still_serving(scp, scu)


def test_release_rp_without_release_rq(scp: Any, scu: Any, associated: RawPeer) -> None:
    associated.send(AReleaseRP())
    abort = expect_abort_then_close(associated)
    assert (abort.source, abort.reason) == (SERVICE_PROVIDER, UNEXPECTED_PDU)
    assert_still_serving(scp, scu)


def test_malformed_pdu_body(scp: Any, scu: Any, associated: RawPeer) -> None:
    """An A-RELEASE-RQ whose body is too short to decode."""
    associated.send(header(PDUType.A_RELEASE_RQ, 2) + b"\x00\x00")
    abort = expect_abort_then_close(associated)
    assert (abort.source, abort.reason) == (SERVICE_PROVIDER, INVALID_PARAMETER)
    assert_still_serving(scp, scu)


def pdata(context_id: int, control: int, data: bytes) -> bytes:
    pdv = struct.pack(">IBB", len(data) + 2, context_id, control) + data
    return header(PDUType.P_DATA_TF, len(pdv)) + pdv


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (pdata(1, 0x03, b"\x00" * 10), INVALID_PARAMETER),  # a command set that does not decode
        (pdata(1, 0x03, b"\x08\x00\x00\x00" + b"\x00" * 8), INVALID_PARAMETER),  # not group 0
        (pdata(3, 0x03, echo_rq_pdata()[12:]), INVALID_PARAMETER),  # context 3 not accepted
        (pdata(1, 0x02, b"\x00" * 8), UNEXPECTED_PARAMETER),  # a data set with no command
        (header(PDUType.P_DATA_TF, 3) + b"\x00\x00\x00", INVALID_PARAMETER),  # PDV too short
        (header(PDUType.P_DATA_TF, 0), INVALID_PARAMETER),  # no PDV at all
    ],
    ids=[
        "garbage-command",
        "wrong-group",
        "unaccepted-context",
        "data-first",
        "short-pdv",
        "empty",
    ],
)
def test_malformed_pdata(scp: Any, scu: Any, associated: RawPeer, body: bytes, reason: int) -> None:
    aborted = threading.Event()
    scp.server.bind(evt.EVT_ABORTED, lambda e: aborted.set())
    associated.send(body)
    abort = expect_abort_then_close(associated)
    assert (abort.source, abort.reason) == (SERVICE_PROVIDER, reason)
    assert aborted.wait(WAIT)
    assert_still_serving(scp, scu)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: dicom\r\n\r\n",
        bytes.fromhex("16030100a5010000a10303") + b"\x00" * 32,  # a TLS ClientHello
        b"\x00" * 64,
        bytes(range(256)),
    ],
    ids=["http", "tls-client-hello", "zeros", "bytes"],
)
def test_garbage_bytes(scp: Any, scu: Any, peer: RawPeer, garbage: bytes) -> None:
    peer.send(garbage)
    abort = expect_abort_then_close(peer)
    assert abort.source == SERVICE_USER  # Sta2: AA-1
    assert_still_serving(scp, scu)


def test_peer_abort_on_an_association(scp: Any, scu: Any, associated: RawPeer) -> None:
    aborted: list[Any] = []
    flag = threading.Event()
    scp.server.bind(evt.EVT_ABORTED, lambda e: (aborted.append(e.assoc), flag.set()))
    associated.send(AAbort(SERVICE_USER, 0))
    assert associated.wait_closed() == []  # AA-3: closed, no answer
    assert flag.wait(WAIT)
    assert aborted[0].is_aborted
    assert_still_serving(scp, scu)


def test_many_broken_peers_at_once(scp: Any, scu: Any) -> None:
    """Bad connections in parallel with a good one: each is dealt with on its own."""
    scp.ae.maximum_associations = 50
    peers = [RawPeer.connect(scp.address) for _ in range(10)]
    try:
        for i, raw in enumerate(peers):
            raw.send(verification_rq() if i % 2 else b"\xff" * 10)
        assert_still_serving(scp, scu)
        for i, raw in enumerate(peers):
            if i % 2:
                raw.expect(AAssociateAC)
                raw.send(header(0x0B, 0))
            abort = expect_abort_then_close(raw)
            assert abort.source == (SERVICE_PROVIDER if i % 2 else SERVICE_USER)
    finally:
        for raw in peers:
            raw.close()


# -- our SCU against a broken SCP ----------------------------------------------------------


def run_against(fake_scp: Any, make_scu: Any, script: Any, **ae: Any) -> tuple[Any, Any]:
    server = fake_scp(script)
    scu = make_scu(**ae)
    assoc = scu.associate("127.0.0.1", server.port, ae_title="FAKESCP")
    assoc.join(WAIT)
    assert not assoc.is_alive()
    assert server.done.wait(WAIT)
    server.check()
    return assoc, server


def test_scu_against_garbage_answer(fake_scp: Any, make_scu: Any) -> None:
    answers: list[Any] = []

    def garbage(peer: RawPeer) -> None:
        peer.expect(AAssociateRQ)
        peer.send(b"\x02\x00\x00\x00\x00\x04garbage!")  # an A-ASSOCIATE-AC that does not decode
        answers.extend(peer.wait_closed())

    assoc, _ = run_against(fake_scp, make_scu, garbage)
    assert assoc.is_aborted and not assoc.is_established
    [(pdu_type, body)] = answers
    assert pdu_type == PDUType.A_ABORT
    assert AAbort.from_body(memoryview(body)).source == SERVICE_PROVIDER  # Sta5: AA-8


def test_scu_against_unknown_pdu_answer(fake_scp: Any, make_scu: Any) -> None:
    def unknown(peer: RawPeer) -> None:
        peer.expect(AAssociateRQ)
        peer.send(header(0x09, 2) + b"??")
        peer.wait_closed()

    assoc, _ = run_against(fake_scp, make_scu, unknown)
    assert assoc.is_aborted and not assoc.is_established


def test_scu_against_ac_for_contexts_never_proposed(fake_scp: Any, make_scu: Any) -> None:
    answers: list[Any] = []

    def wrong_contexts(peer: RawPeer) -> None:
        rq: AAssociateRQ = peer.expect(AAssociateRQ)
        ac = accept(rq)
        contexts = [PresentationContextAC(3, 0, "1.2.840.10008.1.2")]  # only 1 was proposed
        peer.send(
            AAssociateAC(
                ac.called_ae_title,
                ac.calling_ae_title,
                contexts,
                ac.user_information,
                ac.application_context_name,
            )
        )
        answers.extend(peer.wait_closed())

    assoc, _ = run_against(fake_scp, make_scu, wrong_contexts)
    assert assoc.is_aborted and not assoc.is_established
    assert [t for t, _ in answers] == [PDUType.A_ABORT]


def test_scu_against_peer_closing_mid_negotiation(fake_scp: Any, make_scu: Any) -> None:
    def hang_up(peer: RawPeer) -> None:
        peer.expect(AAssociateRQ)

    assoc, _ = run_against(fake_scp, make_scu, hang_up)
    assert assoc.is_aborted and not assoc.is_established


def test_scu_against_peer_closing_before_rq(fake_scp: Any, make_scu: Any) -> None:
    def rude(peer: RawPeer) -> None:
        pass  # accept the connection and close it at once

    assoc, _ = run_against(fake_scp, make_scu, rude)
    assert assoc.is_aborted and not assoc.is_established


def test_scu_against_rejection(fake_scp: Any, make_scu: Any) -> None:
    def reject(peer: RawPeer) -> None:
        peer.expect(AAssociateRQ)
        peer.send(AAssociateRJ(2, 3, 1))
        peer.wait_closed()  # the requestor closes (AE-4)

    assoc, _ = run_against(fake_scp, make_scu, reject)
    assert assoc.is_rejected and not assoc.is_aborted and not assoc.is_established


def test_scu_against_pdata_instead_of_ac(fake_scp: Any, make_scu: Any) -> None:
    def early_data(peer: RawPeer) -> None:
        peer.expect(AAssociateRQ)
        peer.send(echo_rq_pdata())
        peer.wait_closed()

    assoc, _ = run_against(fake_scp, make_scu, early_data)
    assert assoc.is_aborted and not assoc.is_established


def test_scu_answers_a_release_request_from_the_acceptor(fake_scp: Any, make_scu: Any) -> None:
    """PS3.8 lets either side request release; the requestor answers and is released."""
    got: list[Any] = []
    released = threading.Event()

    def release_first(peer: RawPeer) -> None:
        peer.send(accept(peer.expect(AAssociateRQ)))
        peer.send(AReleaseRQ())
        got.append(peer.recv())  # then close, as the release requestor does (AR-3)

    server = fake_scp(release_first)
    scu = make_scu()
    assoc = scu.associate(
        "127.0.0.1",
        server.port,
        ae_title="FAKESCP",
        evt_handlers=[(evt.EVT_RELEASED, lambda e: released.set())],
    )
    assert released.wait(WAIT)
    assert server.done.wait(WAIT)
    server.check()
    assoc.join(WAIT)
    assert not assoc.is_alive()
    assert assoc.is_released and not assoc.is_aborted
    assert isinstance(got[0], AReleaseRP)


def test_scu_against_peer_that_aborts_during_a_request(fake_scp: Any, make_scu: Any) -> None:
    def abort_on_echo(peer: RawPeer) -> None:
        peer.send(accept(peer.expect(AAssociateRQ)))
        peer.read_dimse()
        peer.send(AAbort(SERVICE_PROVIDER, UNEXPECTED_PARAMETER))
        peer.wait_closed()

    server = fake_scp(abort_on_echo)
    scu = make_scu()
    assoc = scu.associate("127.0.0.1", server.port, ae_title="FAKESCP")
    assert assoc.is_established
    from pydicom.dataset import Dataset

    assert assoc.send_c_echo() == Dataset()
    assoc.join(WAIT)
    assert assoc.is_aborted and not assoc.is_alive()
    assert server.done.wait(WAIT)
    server.check()


def test_scu_against_response_with_the_wrong_message_id(fake_scp: Any, make_scu: Any) -> None:
    """A response to a request never sent is ignored; the real one still arrives."""
    from dicomnet.dimse import fragment_message
    from dicomnet.dimse_messages import CEchoRSP

    def two_responses(peer: RawPeer) -> None:
        peer.send(accept(peer.expect(AAssociateRQ)))
        request = peer.read_dimse()
        for message_id in (request.MessageID + 1, request.MessageID):
            rsp = CEchoRSP(
                MessageIDBeingRespondedTo=message_id,
                AffectedSOPClassUID="1.2.840.10008.1.1",
                Status=0,
            )
            for batch in fragment_message(1, rsp, None, 16382):
                peer.send(b"".join(bytes(b) for b in batch))
        peer.expect(AReleaseRQ)
        peer.send(AReleaseRP())

    server = fake_scp(two_responses)
    scu = make_scu(dimse_timeout=WAIT)
    with scu.associate("127.0.0.1", server.port, ae_title="FAKESCP") as assoc:
        assert assoc.send_c_echo().Status == 0
    assert assoc.is_released
    assert server.done.wait(WAIT)
    server.check()
