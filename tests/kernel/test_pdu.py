"""The seven PDUs: round trips, wire layouts and a decoder that fails only with PDUDecodeError.

PS3.8 9.3. Wire layouts are written out by hand from the standard's tables so
that the encoder is not only checked against its own decoder.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dicomnet.errors import AbortReason, AbortSource, PDUDecodeError
from dicomnet.pdu import (
    APPLICATION_CONTEXT_NAME,
    PDU,
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
    PresentationContextRQ,
    PresentationDataValue,
    decode_pdu,
    iter_pdvs,
    pdata_header,
)
from dicomnet.user_info import (
    AsyncOperationsWindow,
    SCPSCURoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from tests.strategies import pdu as pst

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def decode(data: bytes | bytearray) -> PDU:
    """Decode a whole PDU, header included, as the Upper Layer does after framing."""
    pdu_type, _, length = PDU_HEADER.unpack_from(data)
    assert length == len(data) - 6
    return decode_pdu(pdu_type, memoryview(data)[6:])


def body_of(data: bytes | bytearray) -> memoryview:
    return memoryview(data)[6:]


# A request and an answer that use every item and sub-item the codec knows.
FULL_RQ = AAssociateRQ(
    "STORESCP",
    "STORESCU",
    (
        PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)),
        PresentationContextRQ(3, CT_IMAGE_STORAGE, (EXPLICIT_LE, IMPLICIT_LE)),
    ),
    UserInformation.build(
        maximum_length=16384,
        implementation_class_uid="1.2.826.0.1.3680043.9.7433.1",
        implementation_version_name="DICOMNET_010",
        async_ops_window=AsyncOperationsWindow(5, 3),
        role_selection=(SCPSCURoleSelection(CT_IMAGE_STORAGE, True, True),),
        sop_class_extended=(SOPClassExtendedNegotiation(CT_IMAGE_STORAGE, b"\x01\x00\x01"),),
        sop_class_common_extended=(
            SOPClassCommonExtendedNegotiation(
                CT_IMAGE_STORAGE, "1.2.840.10008.4.2", ("1.2.840.10008.5.1.4.1.1.2.1",)
            ),
        ),
        user_identity=UserIdentityRQ(2, b"alice", b"secret", True),
    ),
)
FULL_AC = AAssociateAC(
    "STORESCP",
    "STORESCU",
    (
        PresentationContextAC(1, 0, IMPLICIT_LE),
        PresentationContextAC(3, 3, None),
        PresentationContextAC(5, 4, IMPLICIT_LE),
    ),
    UserInformation.build(
        maximum_length=0,
        implementation_class_uid="1.2.826.0.1.3680043.9.7433.1",
        implementation_version_name="DICOMNET_010",
        async_ops_window=AsyncOperationsWindow(1, 1),
        role_selection=(SCPSCURoleSelection(CT_IMAGE_STORAGE, False, True),),
        sop_class_extended=(SOPClassExtendedNegotiation(CT_IMAGE_STORAGE, b"\x01"),),
        user_identity=UserIdentityAC(b"token"),
    ),
)
SAMPLES: list[PDU] = [
    FULL_RQ,
    FULL_AC,
    AAssociateRJ(1, 1, 7),
    PDataTF((PresentationDataValue(1, True, True, b"\x01\x02"),
             PresentationDataValue(1, False, False, b"xyz"))),
    AReleaseRQ(),
    AReleaseRP(),
    AAbort(2, 6),
]
SAMPLE_IDS = [type(pdu).__name__ for pdu in SAMPLES]


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "strategy",
    [
        pst.associate_rq_pdus,
        pst.associate_ac_pdus,
        pst.associate_rj_pdus,
        pst.pdata_tf_pdus,
        pst.release_rq_pdus,
        pst.release_rp_pdus,
        pst.abort_pdus,
    ],
    ids=["RQ", "AC", "RJ", "P-DATA-TF", "RELEASE-RQ", "RELEASE-RP", "ABORT"],
)
@given(data=st.data())
def test_round_trip(strategy: st.SearchStrategy[PDU], data: st.DataObject) -> None:
    pdu = data.draw(strategy)
    wire = pdu.to_bytes()
    pdu_type, reserved, length = PDU_HEADER.unpack_from(wire)
    assert (pdu_type, reserved, length) == (pdu.pdu_type, 0, len(wire) - 6)
    decoded = decode(wire)
    assert decoded == pdu
    assert type(decoded) is type(pdu)
    assert decoded.to_bytes() == wire


@given(pst.pdus_with_noisy_reserved_fields())
def test_reserved_fields_are_not_tested_and_sent_as_zero(case: tuple[PDU, bytes]) -> None:
    """PS3.8 9.3.1: reserved fields are sent as zero and not tested when received."""
    pdu, noisy = case
    decoded = decode(noisy)
    assert decoded == pdu
    assert decoded.to_bytes() == pdu.to_bytes()


def test_noisy_reserved_fields_strategy_really_changes_bytes() -> None:
    # guard for the test above: the walker finds the reserved fields of every sample
    for pdu in SAMPLES:
        reserved = [f for f in pst.wire_fields(pdu.to_bytes()) if f.kind == "reserved"]
        assert reserved, type(pdu).__name__
    rq_reserved = {f.container for f in pst.wire_fields(FULL_RQ.to_bytes())
                   if f.kind == "reserved"}
    assert {"A-ASSOCIATE-RQ", "Presentation Context (20H)", "User Information (50H)"} <= (
        rq_reserved
    )


# -- wire layouts, written out from PS3.8 9.3 --------------------------------------------------


def test_release_and_abort_layouts() -> None:
    assert AReleaseRQ().to_bytes() == bytes.fromhex("05 00 00000004 00000000")
    assert AReleaseRP().to_bytes() == bytes.fromhex("06 00 00000004 00000000")
    assert AAbort().to_bytes() == bytes.fromhex("07 00 00000004 0000 00 00")
    abort = AAbort(AbortSource.SERVICE_PROVIDER, AbortReason.UNEXPECTED_PDU)
    assert abort.to_bytes() == bytes.fromhex("07 00 00000004 0000 02 02")
    assert AAssociateRJ(1, 1, 7).to_bytes() == bytes.fromhex("03 00 00000004 00 01 01 07")
    assert decode(bytes.fromhex("07 00 00000004 0000 02 06")) == AAbort(2, 6)
    assert decode(bytes.fromhex("03 00 00000004 00 02 03 01")) == AAssociateRJ(2, 3, 1)


def test_pdata_layout_and_header_helper() -> None:
    pdu = PDataTF((PresentationDataValue(3, True, False, b"ab"),
                   PresentationDataValue(5, False, True, b"")))
    # PS3.8 9.3.5.1 + E.2: PDV length, context ID, control header (bit 0 command, bit 1 last)
    expected = bytes.fromhex("04 00 0000000e" "00000004 03 01 6162" "00000002 05 02")
    assert pdu.to_bytes() == expected
    assert decode(expected) == pdu
    one = PDataTF((PresentationDataValue(7, False, True, b"data"),)).to_bytes()
    assert pdata_header(7, 0b10, 4) + b"data" == one


def test_associate_rq_layout() -> None:
    """An A-ASSOCIATE-RQ assembled by hand from PS3.8 Tables 9-11 to 9-16 and D.1."""
    acn = APPLICATION_CONTEXT_NAME.encode()
    abstract, ts = VERIFICATION.encode(), IMPLICIT_LE.encode()
    context = (
        bytes((0x20, 0)) + (4 + 4 + len(abstract) + 4 + len(ts)).to_bytes(2, "big")
        + bytes((1, 0, 0, 0))
        + bytes((0x30, 0)) + len(abstract).to_bytes(2, "big") + abstract
        + bytes((0x40, 0)) + len(ts).to_bytes(2, "big") + ts
    )
    user = bytes.fromhex("50 00 0008 51 00 0004 00004000")
    body = (
        bytes.fromhex("0001 0000") + b"ANY-SCP".ljust(16) + b"ECHOSCU".ljust(16) + bytes(32)
        + bytes((0x10, 0)) + len(acn).to_bytes(2, "big") + acn + context + user
    )
    wire = bytes((1, 0)) + len(body).to_bytes(4, "big") + body
    expected = AAssociateRQ(
        "ANY-SCP",
        "ECHOSCU",
        (PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)),),
        UserInformation.build(maximum_length=16384),
    )
    assert decode(wire) == expected
    assert expected.to_bytes() == wire


def test_ae_titles_are_space_padded_and_stripped() -> None:
    wire = AAssociateRQ(" A B", "C", (), UserInformation()).to_bytes()
    assert wire[10:26] == b" A B            "
    assert wire[26:42] == b"C" + b" " * 15
    # leading/trailing spaces (and NUL padding some peers send) are not significant
    noisy = bytearray(wire)
    noisy[26:42] = b"  C\x00" + b" " * 12
    decoded = decode(noisy)
    assert isinstance(decoded, AAssociateRQ)
    assert (decoded.called_ae_title, decoded.calling_ae_title) == ("A B", "C")


def test_ac_ae_titles_are_reserved_and_not_tested() -> None:
    """PS3.8 9.3.3: the AC's AE title fields are reserved: any bytes are accepted."""
    wire = bytearray(FULL_AC.to_bytes())
    wire[10:26] = bytes(range(0xF0, 0x100))
    decoded = decode(wire)
    assert isinstance(decoded, AAssociateAC)
    assert decoded.called_ae_title == "?" * 16
    assert decoded.calling_ae_title == "STORESCU"
    # ... but in the RQ they are significant
    wire = bytearray(FULL_RQ.to_bytes())
    wire[10] = 0xC3
    with pytest.raises(PDUDecodeError) as info:
        decode(wire)
    assert info.value.field == "A-ASSOCIATE-RQ Called-AE-title"


def test_uid_trailing_nul_is_removed() -> None:
    # some peers pad odd-length UIDs with a NUL as in a data set (PS3.5 9.1)
    cx = PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,))
    padded = PresentationContextRQ.from_value(
        memoryview(bytes.fromhex("01000000") + b"\x30\x00\x00\x12" + VERIFICATION.encode() + b"\0"
                   + b"\x40\x00\x00\x12" + IMPLICIT_LE.encode() + b"\0")
    )
    assert padded == cx


def test_pdvs_are_views_of_the_body() -> None:
    wire = PDataTF((PresentationDataValue(1, False, False, b"abc"),
                    PresentationDataValue(1, False, True, b"defg"))).to_bytes()
    body = body_of(wire)
    pdvs = list(iter_pdvs(body))
    assert [(cid, ctrl, bytes(data)) for cid, ctrl, data in pdvs] == [
        (1, 0, b"abc"), (1, 2, b"defg")
    ]
    assert all(isinstance(data, memoryview) and data.obj is body.obj for _, _, data in pdvs)


# -- unknown items and PDU types ---------------------------------------------------------------


def _insert_item(wire: bytes, offset: int, item: bytes) -> bytes:
    body = wire[6:offset] + item + wire[offset:]
    return wire[:2] + len(body).to_bytes(4, "big") + body


@given(
    pdu=st.sampled_from([FULL_RQ, FULL_AC]),
    item_type=st.integers(0, 255).filter(lambda t: t not in (0x10, 0x20, 0x21, 0x50)),
    value=st.binary(max_size=20),
    where=st.integers(0, 100),
)
def test_unknown_items_are_ignored(
    pdu: AAssociateRQ | AAssociateAC, item_type: int, value: bytes, where: int
) -> None:
    """Items of an unknown type in an A-ASSOCIATE-RQ/AC are skipped (PS3.8 9.3.1)."""
    wire = pdu.to_bytes()
    item_starts = [f.offset - 2 for f in pst.wire_fields(wire)
                   if f.kind == "length" and f.container == pdu_name(pdu)]
    offset = [*item_starts, len(wire)][where % (len(item_starts) + 1)]
    item = bytes((item_type, 0)) + len(value).to_bytes(2, "big") + value
    decoded = decode(_insert_item(wire, offset, item))
    assert decoded == pdu


def test_items_of_the_other_direction_are_ignored() -> None:
    # a 21H item inside an RQ (or 20H inside an AC) is not a context of that PDU
    ac_context = PresentationContextAC(1, 0, IMPLICIT_LE).to_bytes()
    assert decode(_insert_item(FULL_RQ.to_bytes(), 74, ac_context)) == FULL_RQ
    rq_context = PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)).to_bytes()
    assert decode(_insert_item(FULL_AC.to_bytes(), 74, rq_context)) == FULL_AC


def test_unknown_sub_items_of_a_presentation_context_are_ignored() -> None:
    cx = PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,))
    value = cx.to_bytes()[4:] + b"\x99\x00\x00\x02zz"
    assert PresentationContextRQ.from_value(memoryview(value)) == cx


def pdu_name(pdu: PDU) -> str:
    return {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC"}[pdu.pdu_type]


@pytest.mark.parametrize("pdu_type", [0, 8, 9, 0x10, 0xFF])
def test_unknown_pdu_type(pdu_type: int) -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode_pdu(pdu_type, memoryview(bytes(4)))
    assert info.value.field == "PDU-type"
    assert info.value.abort_reason == AbortReason.UNRECOGNIZED_PDU
    assert info.value.abort_source == AbortSource.SERVICE_PROVIDER


# -- malformed PDUs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pdu_type", "name"),
    [(3, "A-ASSOCIATE-RJ"), (5, "A-RELEASE-RQ"), (6, "A-RELEASE-RP"), (7, "A-ABORT")],
)
@pytest.mark.parametrize("length", [0, 1, 3, 5, 8])
def test_four_byte_pdus_with_wrong_length(pdu_type: int, name: str, length: int) -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode_pdu(pdu_type, memoryview(bytes(length)))
    assert info.value.field == name
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


@pytest.mark.parametrize("pdu", [FULL_RQ, FULL_AC], ids=["RQ", "AC"])
def test_every_overrunning_length_field_is_named(pdu: AAssociateRQ | AAssociateAC) -> None:
    """Each item and sub-item length made too long raises PDUDecodeError naming its container."""
    wire = pdu.to_bytes()
    lengths = [f for f in pst.wire_fields(wire) if f.kind == "length"]
    containers = {f.container for f in lengths}
    # the walker found every kind of length field of the sample
    assert {
        pdu_name(pdu),
        "User Information (50H)",
        "SCP/SCU Role Selection (54H)",
        "SOP Class Extended Negotiation (56H)",
        f"Presentation Context ({0x20 if pdu.pdu_type == 1 else 0x21:02X}H)",
    } <= containers
    if pdu.pdu_type == 1:
        assert {
            "SOP Class Common Extended Negotiation (57H)",
            "SOP Class Common Extended Negotiation (57H) related general SOP class",
            "User Identity Negotiation RQ (58H) primary field",
            "User Identity Negotiation RQ (58H) secondary field",
        } <= containers
    else:
        assert "User Identity Negotiation AC (59H)" in containers
    for field in lengths:
        corrupt = bytearray(wire)
        corrupt[field.offset : field.offset + field.size] = b"\xff" * field.size
        with pytest.raises(PDUDecodeError) as info:
            decode(corrupt)
        assert info.value.field == field.container, field


def test_overrunning_pdv_length() -> None:
    wire = SAMPLES[3].to_bytes()
    for field in pst.wire_fields(wire):
        if field.kind == "length":
            for bad in (b"\xff\xff\xff\xff", b"\x00\x00\x00\x01", b"\x00\x00\x00\x00"):
                corrupt = bytearray(wire)
                corrupt[field.offset : field.offset + 4] = bad
                with pytest.raises(PDUDecodeError) as info:
                    decode(corrupt)
                assert info.value.field == "P-DATA-TF"


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\x00\x00", b"\x00\x00\x00\x02\x01", b"\x00\x00\x00\x02\x01\x00\x00"],
    ids=["empty", "short-header", "short-pdv", "trailing-byte"],
)
def test_malformed_pdata(body: bytes) -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode_pdu(PDUType.P_DATA_TF, memoryview(body))
    assert info.value.field == "P-DATA-TF"


def test_pdv_with_context_id_zero() -> None:
    # regression: the value class refused it with a ValueError that escaped the decoder
    with pytest.raises(PDUDecodeError, match="context ID 0"):
        decode_pdu(PDUType.P_DATA_TF, memoryview(bytes.fromhex("00000003 00 03 ff")))
    # the hot path leaves the check to the DIMSE layer (the context is not negotiated)
    assert [cid for cid, _, _ in iter_pdvs(memoryview(bytes.fromhex("00000003 00 03 ff")))] == [0]


@pytest.mark.parametrize("pdu", [FULL_RQ, FULL_AC], ids=["RQ", "AC"])
def test_every_truncation_of_an_association_pdu_is_refused(
    pdu: AAssociateRQ | AAssociateAC,
) -> None:
    """Cutting the variable field anywhere leaves a bad length or a missing mandatory item."""
    body = body_of(pdu.to_bytes())
    for cut in range(len(body)):
        with pytest.raises(PDUDecodeError):
            decode_pdu(pdu.pdu_type, body[:cut])


def test_truncated_pdata_decodes_whole_pdvs_or_fails() -> None:
    pdu = SAMPLES[3]
    assert isinstance(pdu, PDataTF)
    body = body_of(pdu.to_bytes())
    boundaries = {0}
    offset = 0
    for value in pdu.values:
        offset += 6 + len(value.data)
        boundaries.add(offset)
    for cut in range(len(body)):
        if cut in boundaries and cut:
            decoded = decode_pdu(4, body[:cut])
            assert isinstance(decoded, PDataTF)
            assert decoded.values == pdu.values[: len(decoded.values)]
        else:
            with pytest.raises(PDUDecodeError):
                decode_pdu(4, body[:cut])


@pytest.mark.parametrize(("cut", "message"), [(68, "no Application Context"), (60, "68 fixed")])
def test_associate_missing_parts(cut: int, message: str) -> None:
    with pytest.raises(PDUDecodeError, match=message) as info:
        decode_pdu(1, body_of(FULL_RQ.to_bytes())[:cut])
    assert info.value.field == "A-ASSOCIATE-RQ"


def _rq_with_items(*items: bytes) -> bytes:
    fixed = bytes.fromhex("0001 0000") + b"A".ljust(16) + b"B".ljust(16) + bytes(32)
    body = fixed + b"".join(items)
    return bytes((1, 0)) + len(body).to_bytes(4, "big") + body


def _item(item_type: int, value: bytes) -> bytes:
    return bytes((item_type, 0)) + len(value).to_bytes(2, "big") + value


ACN_ITEM = _item(0x10, APPLICATION_CONTEXT_NAME.encode())
USER_ITEM = bytes.fromhex("50 00 0008 51 00 0004 00004000")
#: a role selection sub-item whose UID is 67 characters long
LONG_UID_ROLE = _item(0x54, (67).to_bytes(2, "big") + b"1." + b"2" * 65 + b"\x01\x01")


@pytest.mark.parametrize(
    ("items", "field", "message"),
    [
        ((USER_ITEM,), "A-ASSOCIATE-RQ", "Application Context"),
        ((ACN_ITEM,), "A-ASSOCIATE-RQ", "User Information"),
        ((ACN_ITEM, bytes.fromhex("20 00 0004 00000000"), USER_ITEM),
         "Presentation Context (20H)", "ID 0"),
        ((ACN_ITEM, bytes.fromhex("20 00 0003 010000"), USER_ITEM),
         "Presentation Context (20H)", "too short"),
        ((ACN_ITEM, bytes.fromhex("20 00 0004 01000000"), USER_ITEM),
         "Presentation Context (20H)", "no abstract syntax"),
        ((ACN_ITEM, bytes.fromhex("20 00 000a 01000000 30 00 0002 3132"), USER_ITEM),
         "Presentation Context (20H)", "no transfer syntax"),
        ((ACN_ITEM, bytes.fromhex("20 00 0010 01000000 30 00 0002 3132 30 00 0002 3132"),
          USER_ITEM), "Presentation Context (20H)", "more than one abstract syntax"),
        ((ACN_ITEM, bytes.fromhex("20 00 0010 01000000 30 00 0002 31ff 40 00 0002 3132"),
          USER_ITEM), "Abstract Syntax (30H)", "not ASCII"),
        ((ACN_ITEM, bytes.fromhex("20 00 0010 01000000 30 00 0002 3132 40 00 0002 ff32"),
          USER_ITEM), "Transfer Syntax (40H)", "not ASCII"),
        ((bytes.fromhex("10 00 0001 ff"), USER_ITEM), "Application Context (10H)", "not ASCII"),
    ],
)
def test_malformed_associate_rq(items: tuple[bytes, ...], field: str, message: str) -> None:
    with pytest.raises(PDUDecodeError, match=message) as info:
        decode(_rq_with_items(*items))
    assert info.value.field == field


def _ac_with_context(context: bytes) -> bytes:
    wire = bytearray(_rq_with_items(ACN_ITEM, context, USER_ITEM))
    wire[0] = 2
    return bytes(wire)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (bytes.fromhex("21 00 0004 00000000"), "ID 0"),
        (bytes.fromhex("21 00 0002 0100"), "too short"),
        (bytes.fromhex("21 00 0004 01000000"), "accepted context 1 has no transfer syntax"),
        (bytes.fromhex("21 00 0010 01000000 40 00 0002 3132 40 00 0002 3132"),
         "more than one transfer syntax"),
    ],
)
def test_malformed_associate_ac(context: bytes, message: str) -> None:
    with pytest.raises(PDUDecodeError, match=message) as info:
        decode(_ac_with_context(context))
    assert info.value.field == "Presentation Context (21H)"


def test_rejected_context_without_transfer_syntax() -> None:
    # PS3.8 9.3.3.2: for a rejected context the transfer syntax is not significant
    decoded = decode(_ac_with_context(bytes.fromhex("21 00 0004 03000300")))
    assert isinstance(decoded, AAssociateAC)
    assert decoded.presentation_contexts == (PresentationContextAC(3, 3, None),)


@pytest.mark.parametrize("where", ["abstract", "transfer", "acn"])
def test_overlong_uids_are_decode_errors(where: str) -> None:
    """A UID longer than 64 characters (PS3.5 9.1) is an invalid parameter value."""
    long_uid = b"1." + b"2" * 63
    abstract = long_uid if where == "abstract" else b"12"
    transfer = long_uid if where == "transfer" else b"12"
    acn = long_uid if where == "acn" else APPLICATION_CONTEXT_NAME.encode()
    context = (
        bytes.fromhex("01000000")
        + b"\x30\x00" + len(abstract).to_bytes(2, "big") + abstract
        + b"\x40\x00" + len(transfer).to_bytes(2, "big") + transfer
    )
    wire = _rq_with_items(
        b"\x10\x00" + len(acn).to_bytes(2, "big") + acn,
        b"\x20\x00" + len(context).to_bytes(2, "big") + context,
        USER_ITEM,
    )
    with pytest.raises(PDUDecodeError, match="more than 64"):
        decode(wire)


# -- arbitrary damage: only PDUDecodeError may escape -----------------------------------------


@st.composite
def damaged_pdus(draw: st.DrawFn) -> tuple[int, bytes]:
    """A valid PDU with a length field set to an edge value and/or a few bytes damaged."""
    samples = st.sampled_from([p.to_bytes() for p in SAMPLES])
    wire = bytearray(draw(st.one_of(pst.pdu_bytes, samples)))
    lengths = [f for f in pst.wire_fields(bytes(wire)) if f.kind == "length"]
    if draw(st.booleans()) and lengths:
        # hit a length field precisely with an interesting value
        f = draw(st.sampled_from(lengths))
        value = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 64, 65, 0xFF, 0xFFFF, 0xFFFFFFFF]))
        value &= (1 << (8 * f.size)) - 1
        wire[f.offset : f.offset + f.size] = value.to_bytes(f.size, "big")
    pdu_type = wire[0]
    body = wire[6:]
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(body) - 1, 0)))
        if action == "flip" and body:
            body[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and body:
            body[pos] = draw(st.integers(0, 255))
        elif action == "cut":
            del body[pos:]
        elif action == "insert":
            body[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del body[pos : pos + draw(st.integers(1, 8))]
    return pdu_type, bytes(body)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_pdus())
@example((4, bytes.fromhex("00000003 00 03 ff")))  # PDV with context ID 0
@example((1, _rq_with_items(ACN_ITEM, _item(0x50, LONG_UID_ROLE))[6:]))
def test_damaged_pdus_raise_only_decode_errors(case: tuple[int, bytes]) -> None:
    pdu_type, body = case
    try:
        pdu = decode_pdu(pdu_type, memoryview(body))
    except PDUDecodeError as exc:
        assert exc.abort_reason in (
            AbortReason.INVALID_PDU_PARAMETER_VALUE, AbortReason.UNRECOGNIZED_PDU
        )
        return
    # whatever decodes re-encodes to something that decodes to the same value
    assert decode(pdu.to_bytes()) == pdu


@given(pst.pdus)
def test_decode_accepts_bytes_like_views(pdu: PDU) -> None:
    wire = pdu.to_bytes()
    for buffer in (bytes(wire), bytearray(wire)):
        assert decode_pdu(wire[0], memoryview(buffer)[6:]) == pdu


# -- values refuse what could not be sent ----------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: AAssociateRQ("X" * 17, "B", ()),
        lambda: AAssociateRQ("A", "é", ()),
        lambda: AAssociateRQ("A", "B", (), application_context_name="1." + "2" * 63),
        lambda: PresentationContextRQ(0, VERIFICATION, (IMPLICIT_LE,)),
        lambda: PresentationContextRQ(257, VERIFICATION, (IMPLICIT_LE,)),
        lambda: PresentationContextRQ(1, "1." + "2" * 63, (IMPLICIT_LE,)),
        lambda: PresentationContextRQ(1, VERIFICATION, ("1." + "2" * 63,)),
        lambda: PresentationContextAC(1, 0, "1." + "2" * 63),
        lambda: PresentationContextAC(1, 256, None),
        lambda: PresentationDataValue(0, False, False, b""),
    ],
)
def test_invalid_values_are_refused_when_built(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError):
        build()


def test_evolve_keeps_validation() -> None:
    cx = PresentationContextRQ(1, VERIFICATION, [IMPLICIT_LE])
    assert cx.transfer_syntaxes == (IMPLICIT_LE,)
    with pytest.raises(ValueError):
        attrs.evolve(cx, abstract_syntax="é")


def test_unknown_sub_item_survives_a_pdu_round_trip() -> None:
    rq = attrs.evolve(
        FULL_RQ,
        user_information=UserInformation(
            (*FULL_RQ.user_information.items, UnknownSubItem(0x60, b"vendor", 7))
        ),
    )
    assert decode(rq.to_bytes()) == rq
