"""Real PDUs from DCMTK 3.6.7 and pynetdicom 3.0.4 decode and re-encode byte for byte.

The fixtures in ``tests/fixtures/pdus`` were recorded from the wire by
``tests/fixtures/capture_pdus.py`` (see the README there for the commands).
Reserved fields are the one allowed difference: PS3.8 9.3 has them "not tested
when received" and sent as zero, and DCMTK puts FF in one of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomnet.framing import PDUReader
from dicomnet.pdu import (
    PDU,
    PDU_HEADER,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PresentationContextAC,
    decode_pdu,
)
from dicomnet.user_info import (
    AsyncOperationsWindow,
    SCPSCURoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
)
from tests.strategies.pdu import wire_fields

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pdus"
FILES = sorted(FIXTURES.glob("*.bin"))
CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
CLASSES = {
    1: AAssociateRQ, 2: AAssociateAC, 3: AAssociateRJ, 4: PDataTF,
    5: AReleaseRQ, 6: AReleaseRP, 7: AAbort,
}


def load(name: str) -> tuple[bytes, PDU]:
    wire = (FIXTURES / f"{name}.bin").read_bytes()
    return wire, decode_pdu(wire[0], memoryview(wire)[6:])


def zero_reserved(wire: bytes) -> bytes:
    out = bytearray(wire)
    for field in wire_fields(wire):
        if field.kind == "reserved":
            out[field.offset : field.offset + field.size] = bytes(field.size)
    return bytes(out)


def test_fixtures_cover_every_pdu_from_both_peers() -> None:
    kinds = {(path.name.split("-")[0], path.read_bytes()[0]) for path in FILES}
    for peer in ("dcmtk", "pynetdicom"):
        assert {t for p, t in kinds if p == peer} == set(CLASSES), peer


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_fixture_round_trip(path: Path) -> None:
    wire = path.read_bytes()
    pdu_type, _, length = PDU_HEADER.unpack_from(wire)
    assert length == len(wire) - 6
    pdu = decode_pdu(pdu_type, memoryview(wire)[6:])
    assert isinstance(pdu, CLASSES[pdu_type])
    encoded = pdu.to_bytes()
    assert encoded == zero_reserved(wire)
    # and the value survives a second trip
    assert decode_pdu(pdu_type, memoryview(encoded)[6:]) == pdu


def test_only_dcmtk_requests_carry_non_zero_reserved_bytes() -> None:
    """Every fixture is byte-exact except DCMTK's A-ASSOCIATE-RQs (see the README)."""
    inexact = {path.stem for path in FILES if zero_reserved(path.read_bytes()) != path.read_bytes()}
    assert inexact == {
        "dcmtk-echoscu-associate-rq",
        "dcmtk-findscu-associate-rq",
        "dcmtk-getscu-associate-rq",
        "dcmtk-storescu-associate-rq",
    }
    for name in inexact:
        wire, pdu = load(name)
        assert isinstance(pdu, AAssociateRQ)
        differing = [i for i, (a, b) in enumerate(zip(wire, pdu.to_bytes(), strict=True)) if a != b]
        # byte 7 of each presentation context item (offset 2 into its value) is FF
        assert len(differing) == len(pdu.presentation_contexts)
        assert all(wire[i] == 0xFF and wire[i - 6] == 0x20 for i in differing)


def test_fixtures_survive_framing_in_small_pieces() -> None:
    wires = [path.read_bytes() for path in FILES]
    stream = b"".join(wires)
    reader = PDUReader(max_pdata_length=16384, chunk_size=4096)
    got = []
    for start in range(0, len(stream), 7):
        reader.feed(stream[start : start + 7])
        while (frame := reader.next_pdu()) is not None:
            got.append(frame)
    assert [(t, bytes(body)) for t, body in got] == [(w[0], w[6:]) for w in wires]
    decoded = [decode_pdu(t, body) for t, body in got]
    assert [pdu.to_bytes() for pdu in decoded] == [zero_reserved(w) for w in wires]


# -- decoded values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["dcmtk-echoscu-associate-rq", "dcmtk-storescp-associate-ac-echo",
     "dcmtk-getscu-associate-rq", "dcmtk-dcmqrscp-associate-ac-get"],
)
def test_dcmtk_implementation(name: str) -> None:
    _, pdu = load(name)
    assert isinstance(pdu, AAssociateRQ | AAssociateAC)
    info = pdu.user_information
    assert info.implementation_version_name is not None
    assert info.implementation_version_name.startswith("OFFIS_DCMTK")
    assert info.implementation_class_uid is not None
    assert info.implementation_class_uid.startswith("1.2.276.0.7230010.3.")  # OFFIS root
    assert info.maximum_length == 16384


def test_dcmtk_echo() -> None:
    _, rq = load("dcmtk-echoscu-associate-rq")
    assert isinstance(rq, AAssociateRQ)
    assert (rq.called_ae_title, rq.calling_ae_title) == ("STORESCP", "ECHOSCU")
    assert rq.protocol_version == 1
    assert [(cx.context_id, cx.abstract_syntax) for cx in rq.presentation_contexts] == [
        (1, VERIFICATION)
    ]
    _, ac = load("dcmtk-storescp-associate-ac-echo")
    assert isinstance(ac, AAssociateAC)
    assert ac.presentation_contexts == (PresentationContextAC(1, 0, IMPLICIT_LE),)
    _, pdata = load("dcmtk-echoscu-p-data-tf")
    assert isinstance(pdata, PDataTF)
    (pdv,) = pdata.values
    assert (pdv.context_id, pdv.is_command, pdv.is_last) == (1, True, True)
    # Command Field (0000,0100) = 0030H, C-ECHO-RQ, in implicit VR little endian
    assert bytes.fromhex("00000001 02000000 3000") in pdv.data
    assert VERIFICATION.encode() in pdv.data


def test_dcmtk_store() -> None:
    _, rq = load("dcmtk-storescu-associate-rq")
    assert isinstance(rq, AAssociateRQ)
    assert CT in {cx.abstract_syntax for cx in rq.presentation_contexts}
    _, command = load("dcmtk-storescu-p-data-tf-command")
    _, dataset = load("dcmtk-storescu-p-data-tf-dataset")
    assert isinstance(command, PDataTF)
    assert isinstance(dataset, PDataTF)
    (cmd,), (data,) = command.values, dataset.values
    assert cmd.is_command and cmd.is_last
    assert not data.is_command and data.is_last
    assert cmd.context_id == data.context_id
    context = next(cx for cx in rq.presentation_contexts if cx.context_id == data.context_id)
    assert context.abstract_syntax == CT
    assert b"Fixture^Capture" in data.data
    assert data.data.endswith(bytes(range(128)))  # the pixel data is last


def test_dcmtk_role_selection() -> None:
    _, rq = load("dcmtk-getscu-associate-rq")
    _, ac = load("dcmtk-dcmqrscp-associate-ac-get")
    assert isinstance(rq, AAssociateRQ)
    assert isinstance(ac, AAssociateAC)
    # getscu proposes the SCP role for each storage SOP class it offers
    roles = rq.user_information.role_selection
    assert len(roles) > 100
    assert all((r.scu_role, r.scp_role) == (False, True) for r in roles)
    storage = {cx.abstract_syntax for cx in rq.presentation_contexts}
    assert {r.sop_class_uid for r in roles} <= storage
    assert ac.user_information.role_selection


def test_dcmtk_find() -> None:
    _, query = load("dcmtk-findscu-p-data-tf-identifier")
    _, match = load("dcmtk-dcmqrscp-p-data-tf-match")
    assert isinstance(query, PDataTF)
    assert isinstance(match, PDataTF)
    assert b"DICOMNET-001" in query.values[0].data
    assert b"Fixture^Capture" in match.values[0].data


def test_rejected_context_keeps_its_transfer_syntax() -> None:
    _, ac = load("dcmtk-storescp-associate-ac-rejected-context")
    assert isinstance(ac, AAssociateAC)
    assert ac.presentation_contexts == (PresentationContextAC(1, 3, IMPLICIT_LE),)


@pytest.mark.parametrize("name", ["dcmtk-dcmqrscp-associate-rj", "pynetdicom-scp-associate-rj"])
def test_rejections(name: str) -> None:
    # rejected permanent, by the service user, called AE title not recognised
    assert load(name)[1] == AAssociateRJ(1, 1, 7)


@pytest.mark.parametrize("name", ["dcmtk-echoscu-a-abort", "pynetdicom-scu-a-abort"])
def test_aborts(name: str) -> None:
    assert load(name)[1] == AAbort(0, 0)


def test_pynetdicom_extended_negotiation_request() -> None:
    _, rq = load("pynetdicom-scu-associate-rq-extended")
    assert isinstance(rq, AAssociateRQ)
    info = rq.user_information
    assert info.implementation_version_name == "PYNETDICOM_304"
    assert info.implementation_class_uid == "1.2.826.0.1.3680043.9.3811.3.0.4"
    assert info.maximum_length == 16382
    assert info.async_ops_window == AsyncOperationsWindow(5, 3)
    assert info.role_selection == (SCPSCURoleSelection(CT, True, True),)
    assert info.sop_class_extended == (SOPClassExtendedNegotiation(CT, b"\x02\x00\x01"),)
    assert info.sop_class_common_extended == (
        SOPClassCommonExtendedNegotiation(
            CT, "1.2.840.10008.4.2", ("1.2.840.10008.5.1.4.1.1.2.1",)
        ),
    )
    identity = info.user_identity_rq
    assert identity is not None
    assert identity.user_identity_type == 5  # JSON web token
    assert identity.primary_field.startswith(b"eyJ")
    assert identity.positive_response_requested


def test_pynetdicom_extended_negotiation_answer() -> None:
    _, ac = load("pynetdicom-scp-associate-ac-extended")
    assert isinstance(ac, AAssociateAC)
    info = ac.user_information
    assert info.async_ops_window == AsyncOperationsWindow(1, 1)
    assert info.role_selection == (SCPSCURoleSelection(CT, True, True),)
    assert info.sop_class_extended == (SOPClassExtendedNegotiation(CT, b"\x01"),)
    assert info.user_identity_ac == UserIdentityAC(b"identity-accepted")
    assert [cx.result for cx in ac.presentation_contexts] == [0, 0, 3]


def test_pynetdicom_passcode() -> None:
    _, rq = load("pynetdicom-scu-associate-rq-passcode")
    assert isinstance(rq, AAssociateRQ)
    assert rq.user_information.user_identity_rq == UserIdentityRQ(
        2, b"fixture-user", b"fixture-passcode", False
    )


@pytest.mark.parametrize("name", ["dcmtk-echoscu-p-data-tf", "pynetdicom-scu-p-data-tf"])
def test_both_peers_send_c_echo_rq_in_one_pdv(name: str) -> None:
    _, pdata = load(name)
    assert isinstance(pdata, PDataTF)
    (pdv,) = pdata.values
    assert pdv.is_command and pdv.is_last
    assert bytes.fromhex("00000001 02000000 3000") in pdv.data  # Command Field: C-ECHO-RQ
    assert VERIFICATION.encode() in pdv.data
