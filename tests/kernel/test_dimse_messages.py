"""The DIMSE command-set codec (PS3.7 9.3, 10.3, Annex E) against pydicom and real peers."""

from __future__ import annotations

import contextlib
import struct
from io import BytesIO
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.tag import Tag

from dicomnet.dimse_messages import (
    COMMAND_ELEMENTS,
    DATASET_ABSENT,
    DATASET_PRESENT,
    MESSAGE_TYPES,
    PRIORITY_LOW,
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    DimseRequest,
    DimseResponse,
    NActionRSP,
    NCreateRQ,
    NEventReportRSP,
    NGetRQ,
    NGetRSP,
    UnrecognizedCommand,
    decode_command,
    encode_command,
    message_to_dataset,
    with_status,
)
from dicomnet.errors import AbortReason, RemoteProtocolError
from dicomnet.status import code_to_status
from tests.strategies.dimse import MESSAGE_CLASSES, messages, messages_of

# -- helpers ------------------------------------------------------------------------------


def element(elem: int, value: bytes) -> bytes:
    """One implicit VR LE group 0000 element."""
    return struct.pack("<HHI", 0, elem, len(value)) + value


def us(value: int) -> bytes:
    return struct.pack("<H", value)


def command_set(*elements: bytes, group_length: bool = True) -> bytes:
    body = b"".join(elements)
    if not group_length:
        return body
    return element(0x0000, struct.pack("<I", len(body))) + body


def split_elements(data: bytes) -> list[tuple[int, bytes]]:
    """(element number, whole encoded element) for each element of an encoded command set."""
    out = []
    offset = 0
    while offset < len(data):
        _, elem, length = struct.unpack_from("<HHI", data, offset)
        out.append((elem, data[offset : offset + 8 + length]))
        offset += 8 + length
    return out


def pydicom_read(data: bytes) -> Dataset:
    return read_dataset(BytesIO(data), is_implicit_VR=True, is_little_endian=True)


def pydicom_write(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return fp.getvalue()


def field_values(message: DimseMessage) -> dict[str, Any]:
    return {a.name: getattr(message, a.name) for a in attrs.fields(type(message))}


# -- the classes ----------------------------------------------------------------------------


def test_there_are_23_messages_with_the_command_fields_of_ps3_7() -> None:
    expected = {
        0x0001: "C-STORE-RQ", 0x8001: "C-STORE-RSP", 0x0010: "C-GET-RQ", 0x8010: "C-GET-RSP",
        0x0020: "C-FIND-RQ", 0x8020: "C-FIND-RSP", 0x0021: "C-MOVE-RQ", 0x8021: "C-MOVE-RSP",
        0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP", 0x0FFF: "C-CANCEL-RQ",
        0x0100: "N-EVENT-REPORT-RQ", 0x8100: "N-EVENT-REPORT-RSP",
        0x0110: "N-GET-RQ", 0x8110: "N-GET-RSP", 0x0120: "N-SET-RQ", 0x8120: "N-SET-RSP",
        0x0130: "N-ACTION-RQ", 0x8130: "N-ACTION-RSP", 0x0140: "N-CREATE-RQ",
        0x8140: "N-CREATE-RSP", 0x0150: "N-DELETE-RQ", 0x8150: "N-DELETE-RSP",
    }  # fmt: skip
    assert {cf: cls.message_name for cf, cls in MESSAGE_TYPES.items()} == expected
    for cf, cls in MESSAGE_TYPES.items():
        name = "".join(p.capitalize() for p in cls.message_name.split("-")[:-1])
        assert cls.__name__ == name + cls.message_name.rsplit("-", 1)[1]
        assert cls.CommandField == cf
        assert issubclass(cls, DimseResponse) == bool(cf & 0x8000)
        assert issubclass(cls, DimseRequest) == (not cf & 0x8000 and cf != 0x0FFF)


def test_field_names_are_command_element_keywords() -> None:
    keywords = {kw for kw, _ in COMMAND_ELEMENTS.values()}
    for cls in MESSAGE_CLASSES:
        names = {a.name for a in attrs.fields(cls)}
        assert names <= keywords
        assert set(cls.mandatory) <= names
        for keyword in names:
            # the keywords are pydicom's, so pynetdicom-style code finds them
            assert Tag(keyword) == next(e for e, (k, _) in COMMAND_ELEMENTS.items()
                                        if k == keyword)


def test_optional_fields_default_to_none_and_fields_are_keyword_only() -> None:
    rq = CStoreRQ(MessageID=1, AffectedSOPClassUID="1.2", AffectedSOPInstanceUID="1.3")
    assert rq.MoveOriginatorApplicationEntityTitle is None
    assert rq.MoveOriginatorMessageID is None
    rsp = CFindRSP(MessageIDBeingRespondedTo=1, Status=0)
    assert (rsp.AffectedSOPClassUID, rsp.ErrorComment, rsp.OffendingElement) == (None,) * 3
    with pytest.raises(TypeError):
        CFindRSP(1, 0)  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rsp.Status = 1  # type: ignore[misc]


def test_at_fields_take_one_tag_or_many() -> None:
    assert CFindRSP(MessageIDBeingRespondedTo=1, Status=0xA900,
                    OffendingElement=0x00100010).OffendingElement == (0x00100010,)
    assert NGetRQ(MessageID=1, RequestedSOPClassUID="1.2", RequestedSOPInstanceUID="1.3",
                  AttributeIdentifierList=[Tag(0x0010, 0x0010), 0x00100020]
                  ).AttributeIdentifierList == (0x00100010, 0x00100020)


# -- round trips and the pydicom oracle -----------------------------------------------------


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.message_name)
@given(data=st.data(), has_dataset=st.booleans())
def test_round_trip(cls: type[DimseMessage], data: st.DataObject, has_dataset: bool) -> None:
    message = data.draw(messages_of(cls))
    encoded = encode_command(message, has_dataset)
    assert decode_command(encoded) == (message, has_dataset)
    assert decode_command(memoryview(encoded)) == (message, has_dataset)
    assert decode_command(bytearray(encoded)) == (message, has_dataset)


@given(message=messages, has_dataset=st.booleans())
def test_pydicom_reads_the_same_values(message: DimseMessage, has_dataset: bool) -> None:
    encoded = encode_command(message, has_dataset)
    ds = pydicom_read(encoded)
    assert ds.CommandGroupLength == len(encoded) - 12
    assert ds.CommandField == message.CommandField
    assert ds.CommandDataSetType == (DATASET_PRESENT if has_dataset else DATASET_ABSENT)
    expected = {k: v for k, v in field_values(message).items() if v is not None}
    assert {e.keyword for e in ds} == {"CommandGroupLength", "CommandField",
                                        "CommandDataSetType", *expected}
    for keyword, value in expected.items():
        got = ds[keyword].value
        if isinstance(value, tuple):  # AT: pydicom gives one Tag or a list of them
            got = tuple(got) if ds[keyword].VM > 1 else (got,)
        assert got == value, keyword
    # and the elements are in ascending order, every value of even length
    elems = split_elements(encoded)
    assert [e for e, _ in elems] == sorted(e for e, _ in elems)
    assert all(len(raw) % 2 == 0 for _, raw in elems)


@given(message=messages, has_dataset=st.booleans())
def test_byte_exact_against_pydicom_writer(message: DimseMessage, has_dataset: bool) -> None:
    # pydicom pads UI with NUL and the other text VRs with a space (PS3.5 6.2)
    ds = message_to_dataset(message, has_dataset)
    assert pydicom_write(ds) == encode_command(message, has_dataset)


# -- real peers -------------------------------------------------------------------------------

# Command sets captured from DCMTK 3.6.7 (echoscu, storescu, findscu, movescu, getscu,
# storescp), Orthanc (DCMTK inside) and pynetdicom, reassembled from their P-DATA-TF PDUs.
CAPTURED: list[tuple[str, DimseMessage, bool]] = [
    (  # echoscu
        "0000000004000000380000000000020012000000312e322e3834302e31303030382e312e3100000000"
        "010200000030000000100102000000010000000008020000000101",
        CEchoRQ(MessageID=1),
        False,
    ),
    (  # storescp
        "0000000004000000420000000000020012000000312e322e3834302e31303030382e312e3100000000"
        "01020000003080000020010200000001000000000802000000010100000009020000000000",
        CEchoRSP(MessageIDBeingRespondedTo=1, Status=0, AffectedSOPClassUID="1.2.840.10008.1.1"),
        False,
    ),
    (  # storescu
        "000000000400000060000000000002001a000000312e322e3834302e31303030382e352e312e342e312e"
        "312e37000000000102000000010000001001020000000100000000070200000000000000000802000000"
        "0100000000100e000000312e322e332e342e352e362e3700",
        CStoreRQ(MessageID=1, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.7",
                 AffectedSOPInstanceUID="1.2.3.4.5.6.7"),
        True,
    ),
    (  # pynetdicom 3.0.4 (low priority by default)
        "000000000400000060000000000002001a000000312e322e3834302e31303030382e352e312e342e31"
        "2e312e370000000001020000000100000010010200000001000000000702000000020000000008020000"
        "000100000000100e000000312e322e332e342e352e362e3700",
        CStoreRQ(MessageID=1, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.7",
                 AffectedSOPInstanceUID="1.2.3.4.5.6.7", Priority=PRIORITY_LOW),
        True,
    ),
    (  # storescp
        "000000000400000060000000000002001a000000312e322e3834302e31303030382e352e312e342e31"
        "2e312e370000000001020000000180000020010200000001000000000802000000010100000009020000"
        "000000000000100e000000312e322e332e342e352e362e3700",
        CStoreRSP(MessageIDBeingRespondedTo=1, Status=0,
                  AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.7",
                  AffectedSOPInstanceUID="1.2.3.4.5.6.7"),
        False,
    ),
    (  # findscu
        "00000000040000004c000000000002001c000000312e322e3834302e31303030382e352e312e342e31"
        "2e322e312e310000000001020000002000000010010200000001000000000702000000000000000008"
        "020000000100",
        CFindRQ(MessageID=1, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.1"),
        True,
    ),
    (  # Orthanc, pending match
        "00000000040000004c000000000002001c000000312e322e3834302e31303030382e352e312e342e31"
        "2e322e312e310000000001020000002080000020010200000001000000000802000000010000000009"
        "0200000000ff",
        CFindRSP(MessageIDBeingRespondedTo=1, Status=0xFF00,
                 AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.1"),
        True,
    ),
    (  # Orthanc, final
        "00000000040000004c000000000002001c000000312e322e3834302e31303030382e352e312e342e31"
        "2e322e312e310000000001020000002080000020010200000001000000000802000000010100000009"
        "020000000000",
        CFindRSP(MessageIDBeingRespondedTo=1, Status=0,
                 AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.1"),
        False,
    ),
    (  # movescu
        "00000000040000005c000000000002001c000000312e322e3834302e31303030382e352e312e342e31"
        "2e322e312e320000000001020000002100000010010200000001000000000608000000"
        "4e4f5748455245200000000702000000000000000008020000000100",
        CMoveRQ(MessageID=1, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.2",
                MoveDestination="NOWHERE"),
        True,
    ),
    (  # getscu
        "00000000040000004c000000000002001c000000312e322e3834302e31303030382e352e312e342e312e"
        "322e312e3300000000010200000010000000100102000000010000000007020000000000000000080200"
        "00000100",
        CGetRQ(MessageID=1, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.3"),
        True,
    ),
    (  # Orthanc, failure with sub-operation counts
        "00000000040000006a000000000002001c000000312e322e3834302e31303030382e352e312e342e31"
        "2e322e312e320000000001020000002180000020010200000001000000000802000000010100000009"
        "0200000000c0000021100200000000000000221002000000000000002310020000000000",
        CMoveRSP(MessageIDBeingRespondedTo=1, Status=0xC000,
                 AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.2",
                 NumberOfCompletedSuboperations=0, NumberOfFailedSuboperations=0,
                 NumberOfWarningSuboperations=0),
        False,
    ),
]


@pytest.mark.parametrize(("hex_bytes", "message", "has_dataset"), CAPTURED,
                         ids=[m.message_name for _, m, _ in CAPTURED])
def test_real_peer_command_sets(hex_bytes: str, message: DimseMessage, has_dataset: bool) -> None:
    data = bytes.fromhex(hex_bytes)
    assert decode_command(data) == (message, has_dataset)
    assert encode_command(message, has_dataset) == data


def test_dataset_present_is_0001_as_dcmtk_sends_and_anything_but_0101_means_present() -> None:
    rq = CFindRQ(MessageID=3, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.1.1")
    assert pydicom_read(encode_command(rq, True)).CommandDataSetType == 0x0001
    assert pydicom_read(encode_command(rq, False)).CommandDataSetType == 0x0101
    for value in (0x0000, 0x0001, 0x0102, 0xFEFE):
        data = command_set(
            element(0x0002, b"1.2.840.10008.5.1.4.1.2.1.1\x00"),
            element(0x0100, us(0x0020)), element(0x0110, us(3)), element(0x0700, us(0)),
            element(0x0800, us(value)),
        )
        assert decode_command(data) == (rq, True)


# -- encoding details ---------------------------------------------------------------------------


def test_uids_are_nul_padded_and_ae_titles_space_padded() -> None:
    rq = CMoveRQ(MessageID=1, AffectedSOPClassUID="1.2.3", MoveDestination="ABC")
    elements = dict(split_elements(encode_command(rq, True)))
    assert elements[0x0002][8:] == b"1.2.3\x00"
    assert elements[0x0600][8:] == b"ABC "
    rq = CMoveRQ(MessageID=1, AffectedSOPClassUID="1.2.34", MoveDestination="ABCD")
    elements = dict(split_elements(encode_command(rq, True)))
    assert elements[0x0002][8:] == b"1.2.34"
    assert elements[0x0600][8:] == b"ABCD"


def test_command_group_length_counts_everything_after_it() -> None:
    rsp = CStoreRSP(MessageIDBeingRespondedTo=9, Status=0xB000, ErrorComment="coerced",
                    OffendingElement=(0x00100010, 0x00100020))
    data = encode_command(rsp, False)
    assert data[:8] == struct.pack("<HHI", 0, 0, 4)
    assert struct.unpack_from("<I", data, 8)[0] == len(data) - 12


def test_error_comment_is_cut_to_64_characters_and_made_ascii() -> None:
    rsp = CStoreRSP(MessageIDBeingRespondedTo=1, Status=0xC000, ErrorComment="é" + "x" * 100)
    decoded, _ = decode_command(encode_command(rsp, False))
    assert isinstance(decoded, CStoreRSP)
    assert decoded.ErrorComment == "?" + "x" * 63


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (CEchoRQ(MessageID=70000), "MessageID"),
        (CEchoRQ(MessageID=-1), "MessageID"),
        (CEchoRQ(MessageID=1, AffectedSOPClassUID="1." + "2" * 63), "longer than 64"),
        (CEchoRQ(MessageID=1, AffectedSOPClassUID="1.2.é"), "not ASCII"),
        (CEchoRQ(MessageID=1, AffectedSOPClassUID=""), "empty"),
        (CMoveRQ(MessageID=1, AffectedSOPClassUID="1.2", MoveDestination="A" * 17),
         "longer than 16"),
        (CFindRSP(MessageIDBeingRespondedTo=1, Status=0, OffendingElement=(1 << 32,)),
         "32-bit tag"),
        (CEchoRQ(MessageID=None), "mandatory"),  # type: ignore[arg-type]
    ],
)
def test_encode_rejects_values_that_do_not_fit(message: DimseMessage, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_command(message, False)


# -- decoding: tolerance -------------------------------------------------------------------------

_ECHO_RQ = [
    element(0x0002, b"1.2.840.10008.1.1\x00"),
    element(0x0100, us(0x0030)),
    element(0x0110, us(5)),
    element(0x0800, us(0x0101)),
]


_NO_GL = command_set(*_ECHO_RQ, group_length=False)


def test_unknown_and_retired_elements_are_ignored() -> None:
    data = command_set(
        element(0x0001, struct.pack("<I", 999)),  # retired Command Length to End
        _ECHO_RQ[0],
        element(0x0010, b"RECOGNITION "),  # retired Command Recognition Code
        _ECHO_RQ[1],
        _ECHO_RQ[2],
        element(0x0200, b"INITIATOR "),  # retired Initiator
        _ECHO_RQ[3],
        element(0x5010, b"ID"),  # retired Message Set ID
        element(0x7777, b"\x01\x02\x03"),  # unknown, odd length
    )
    assert decode_command(data) == (CEchoRQ(MessageID=5), False)


def test_group_length_may_be_absent() -> None:
    assert decode_command(command_set(*_ECHO_RQ, group_length=False)) == (
        CEchoRQ(MessageID=5), False
    )


def test_elements_of_other_messages_are_ignored() -> None:
    data = command_set(
        *_ECHO_RQ[:3],
        element(0x0600, b"DEST"),  # Move Destination: not in a C-ECHO-RQ
        _ECHO_RQ[3],
        element(0x0900, us(0)),  # Status
    )
    assert decode_command(data) == (CEchoRQ(MessageID=5), False)


def test_padding_and_spaces_are_stripped_on_decode() -> None:
    data = command_set(
        element(0x0002, b"1.2.840.10008.5.1.4.1.2.2.2 "),  # space padded: a common error
        element(0x0100, us(0x0021)),
        element(0x0110, us(1)),
        element(0x0600, b" DEST           "),  # AE: leading/trailing spaces insignificant
        element(0x0700, us(0)),
        element(0x0800, us(1)),
    )
    message, _ = decode_command(data)
    assert message == CMoveRQ(MessageID=1, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.2",
                              MoveDestination="DEST")


def test_zero_length_values_read_as_absent() -> None:
    data = command_set(
        element(0x0002, b""),
        element(0x0100, us(0x8020)),
        element(0x0120, us(1)),
        element(0x0800, us(0x0101)),
        element(0x0900, us(0)),
        element(0x0901, b""),
        element(0x0902, b""),
    )
    assert decode_command(data) == (CFindRSP(MessageIDBeingRespondedTo=1, Status=0), False)


def test_non_ascii_error_comment_does_not_fail() -> None:
    data = command_set(
        element(0x0100, us(0x8001)), element(0x0120, us(1)), element(0x0800, us(0x0101)),
        element(0x0900, us(0xC000)), element(0x0902, "Fehler: ä".encode("latin-1") + b" "),
    )
    message, _ = decode_command(data)
    assert isinstance(message, CStoreRSP)
    assert message.ErrorComment == "Fehler: \ufffd"


# -- decoding: errors ----------------------------------------------------------------------------


def _decode_error(data: bytes, match: str) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        decode_command(data)
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    return info.value


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_NO_GL[:-1], "announces 2 bytes but only 1 remain"),
        (_NO_GL + b"\x00\x00\x00", "3 trailing byte"),
        (_NO_GL + struct.pack("<HHI", 0, 0x0900, 0xFFFFFFFF), r"\(0000,0900\)"),
        (command_set(*_ECHO_RQ, element(0x0700, us(0))), "not in ascending order"),
        (command_set(_ECHO_RQ[0], _ECHO_RQ[1], _ECHO_RQ[1], *_ECHO_RQ[2:]), "ascending"),
        (_NO_GL + struct.pack("<HHI", 8, 0x0005, 0), r"\(0008,0005\)"),
        (command_set(_ECHO_RQ[0], _ECHO_RQ[1], element(0x0110, b"\x05\x00\x00\x00"),
                     _ECHO_RQ[3]), r"\(0000,0110\) MessageID \(US\) has length 4"),
        (command_set(_ECHO_RQ[0], _ECHO_RQ[1], element(0x0110, b"\x05"),
                     _ECHO_RQ[3]), r"\(0000,0110\).*length 1"),
        (command_set(element(0x0002, b"1.2.\xe9"), *_ECHO_RQ[1:]), r"\(0000,0002\).*not ASCII"),
        (command_set(*_ECHO_RQ[:3], element(0x0600, b"\xff\xfe"), _ECHO_RQ[3]), "not ASCII"),
        (element(0x0000, struct.pack("<I", 99)) + b"".join(_ECHO_RQ), "CommandGroupLength is 99"),
        (element(0x0000, b"\x01\x00") + b"".join(_ECHO_RQ), "CommandGroupLength has length 2"),
        (command_set(_ECHO_RQ[0], *_ECHO_RQ[2:]), r"\(0000,0100\) CommandField is missing"),
        (command_set(*_ECHO_RQ[:3]), r"C-ECHO-RQ: \(0000,0800\) CommandDataSetType is missing"),
    ],
    ids=[
        "value-past-end", "trailing-bytes", "undefined-length", "out-of-order", "duplicate",
        "other-group", "us-too-long", "us-too-short", "uid-not-ascii", "ae-not-ascii",
        "group-length-wrong", "group-length-size", "no-command-field", "no-dataset-type",
    ],
)
def test_malformed_command_sets(data: bytes, match: str) -> None:
    _decode_error(data, match)


def test_at_length_must_be_a_multiple_of_4() -> None:
    data = command_set(
        element(0x0100, us(0x8020)), element(0x0120, us(1)), element(0x0800, us(0x0101)),
        element(0x0900, us(0xA900)), element(0x0901, b"\x10\x00\x10\x00\x10\x00"),
    )
    _decode_error(data, r"\(0000,0901\) OffendingElement \(AT\) has length 6")


def test_unknown_command_field_carries_the_message_id() -> None:
    data = command_set(element(0x0100, us(0x0040)), element(0x0110, us(77)),
                       element(0x0800, us(0x0101)))
    error = _decode_error(data, r"\(0000,0100\) CommandField: unrecognized value 0x0040")
    assert isinstance(error, UnrecognizedCommand)
    assert (error.command_field, error.message_id) == (0x0040, 77)
    error = _decode_error(command_set(element(0x0100, us(0x8FFF)), element(0x0800, us(0x0101))),
                          "unrecognized")
    assert isinstance(error, UnrecognizedCommand)
    assert error.message_id is None


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.message_name)
@given(data=st.data())
def test_each_missing_mandatory_field_is_named(cls: type[DimseMessage], data: st.DataObject
                                                ) -> None:
    message = data.draw(messages_of(cls))
    keyword = data.draw(st.sampled_from(cls.mandatory))
    elem = next(e for e, (k, _) in COMMAND_ELEMENTS.items() if k == keyword)
    kept = [raw for e, raw in split_elements(encode_command(message, False)) if e not in (0, elem)]
    _decode_error(command_set(*kept),
                  rf"{cls.message_name}: mandatory \(0000,{elem:04X}\) {keyword} is missing")


@given(data=st.binary(max_size=200))
def test_garbage_raises_only_remote_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):  # anything else fails the test
        decode_command(data)


@given(message=messages, cut=st.integers(1, 400))
def test_truncated_command_sets_are_rejected(message: DimseMessage, cut: int) -> None:
    data = encode_command(message, True)
    with pytest.raises(RemoteProtocolError):
        decode_command(data[: max(0, len(data) - cut)])


# -- helpers: message_to_dataset and with_status --------------------------------------------


def test_message_to_dataset() -> None:
    rq = CStoreRQ(MessageID=3, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.7",
                  AffectedSOPInstanceUID="1.2.3", MoveOriginatorApplicationEntityTitle="MOVER",
                  MoveOriginatorMessageID=2)
    ds = message_to_dataset(rq)
    assert "CommandGroupLength" not in ds
    assert "CommandDataSetType" not in ds
    assert ds.CommandField == 0x0001
    assert ds.MessageID == 3
    assert ds.AffectedSOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert ds.AffectedSOPClassUID.name == "Secondary Capture Image Storage"
    assert ds.MoveOriginatorApplicationEntityTitle == "MOVER"
    assert "Status" not in ds
    ds = message_to_dataset(rq, True)
    assert ds.CommandDataSetType == 0x0001
    assert ds.CommandGroupLength == len(encode_command(rq, True)) - 12


def test_with_status_code() -> None:
    rsp = CStoreRSP(MessageIDBeingRespondedTo=1, Status=0, AffectedSOPInstanceUID="1.2")
    assert with_status(rsp, 0xA700) == attrs.evolve(rsp, Status=0xA700)


def test_with_status_dataset_copies_the_status_detail_this_response_carries() -> None:
    status = code_to_status(0xA900)
    status.ErrorComment = "Identifier does not match"
    status.OffendingElement = [0x00100010, 0x00100020]
    status.ErrorID = 7
    status.NumberOfFailedSuboperations = 3  # not a C-FIND-RSP field: ignored
    rsp = with_status(CFindRSP(MessageIDBeingRespondedTo=4, Status=0xFF00), status)
    assert rsp == CFindRSP(MessageIDBeingRespondedTo=4, Status=0xA900,
                           ErrorComment="Identifier does not match",
                           OffendingElement=(0x00100010, 0x00100020), ErrorID=7)

    status = code_to_status(0xB000)
    status.NumberOfFailedSuboperations = 3
    status.NumberOfCompletedSuboperations = 5
    status.OffendingElement = 0x00080018
    rsp2 = with_status(CGetRSP(MessageIDBeingRespondedTo=4, Status=0xFF00), status)
    assert (rsp2.Status, rsp2.NumberOfFailedSuboperations, rsp2.NumberOfCompletedSuboperations,
            rsp2.OffendingElement) == (0xB000, 3, 5, (0x00080018,))

    status = code_to_status(0x0123)
    status.ActionTypeID = 2
    status.AffectedSOPInstanceUID = "1.2.3"
    assert with_status(NActionRSP(MessageIDBeingRespondedTo=1, Status=0), status) == NActionRSP(
        MessageIDBeingRespondedTo=1, Status=0x0123, ActionTypeID=2, AffectedSOPInstanceUID="1.2.3"
    )
    status = code_to_status(0x0113)
    status.EventTypeID = 9
    assert with_status(NEventReportRSP(MessageIDBeingRespondedTo=1, Status=0),
                       status).EventTypeID == 9
    status = code_to_status(0x0107)
    status.AttributeIdentifierList = [0x00100010]
    assert with_status(NGetRSP(MessageIDBeingRespondedTo=1, Status=0),
                       status).AttributeIdentifierList == (0x00100010,)


def test_with_status_needs_a_status() -> None:
    with pytest.raises(ValueError, match="Status"):
        with_status(CEchoRSP(MessageIDBeingRespondedTo=1, Status=0), Dataset())


def test_c_cancel_and_n_create_without_optional_fields() -> None:
    for message in (CCancelRQ(MessageIDBeingRespondedTo=12),
                    NCreateRQ(MessageID=2, AffectedSOPClassUID="1.2.840.10008.3.1.2.3.3")):
        assert decode_command(encode_command(message, False)) == (message, False)
