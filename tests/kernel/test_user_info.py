"""The User Information item (50H) and its sub-items 51H-59H (PS3.8 D.1, PS3.7 D.3.3).

Sub-item layouts are written out by hand from the standard's tables.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dicomnet.errors import PDUDecodeError
from dicomnet.user_info import (
    AsyncOperationsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    SCPSCURoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    SubItem,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserIdentityType,
    UserInformation,
)
from tests.strategies import pdu as pst

CT = "1.2.840.10008.5.1.4.1.1.2"
STORAGE_SERVICE = "1.2.840.10008.4.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def decode_items(value: bytes) -> tuple[SubItem, ...]:
    return UserInformation.from_value(memoryview(value)).items


def sub(item_type: int, value: bytes, second: int = 0) -> bytes:
    return bytes((item_type, second)) + len(value).to_bytes(2, "big") + value


def u16(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


# -- round trips ------------------------------------------------------------------------------


@given(pst.sub_items)
def test_sub_item_round_trip(item: SubItem) -> None:
    wire = UserInformation((item,)).value_bytes()
    assert decode_items(wire) == (item,)
    assert UserInformation(decode_items(wire)).value_bytes() == wire


@given(pst.user_informations)
def test_user_information_round_trip(info: UserInformation) -> None:
    wire = info.to_bytes()
    assert wire[0] == 0x50
    assert wire[1] == 0
    assert int.from_bytes(wire[2:4], "big") == len(wire) - 4
    decoded = UserInformation.from_value(memoryview(wire)[4:])
    assert decoded == info
    assert decoded.to_bytes() == wire


@pytest.mark.parametrize("kind", list(UserIdentityType))
@given(data=st.data())
def test_every_user_identity_type_round_trips(kind: UserIdentityType, data: st.DataObject) -> None:
    item = data.draw(pst.user_identities_of_type(kind))
    assert item.user_identity_type == kind
    assert decode_items(UserInformation((item,)).value_bytes()) == (item,)


# -- layouts from PS3.8 D.1 and PS3.7 D.3.3 ------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "wire"),
    [
        (MaximumLength(16384), sub(0x51, bytes.fromhex("00004000"))),
        (ImplementationClassUID("1.2.3"), sub(0x52, b"1.2.3")),
        (AsyncOperationsWindow(3, 1), sub(0x53, bytes.fromhex("0003 0001"))),
        (SCPSCURoleSelection(CT, False, True), sub(0x54, u16(CT.encode()) + b"\x00\x01")),
        (ImplementationVersionName("OFFIS_DCMTK_367"), sub(0x55, b"OFFIS_DCMTK_367")),
        (SOPClassExtendedNegotiation(CT, b"\x01\x00\x01"),
         sub(0x56, u16(CT.encode()) + b"\x01\x00\x01")),
        (SOPClassCommonExtendedNegotiation(CT, STORAGE_SERVICE, (ENHANCED_CT,)),
         sub(0x57, u16(CT.encode()) + u16(STORAGE_SERVICE.encode())
             + u16(u16(ENHANCED_CT.encode())))),
        (SOPClassCommonExtendedNegotiation(CT, STORAGE_SERVICE),
         sub(0x57, u16(CT.encode()) + u16(STORAGE_SERVICE.encode()) + b"\x00\x00")),
        (UserIdentityRQ(1, b"bob"), sub(0x58, b"\x01\x00" + u16(b"bob") + u16(b""))),
        (UserIdentityRQ(2, b"bob", b"pwd", True),
         sub(0x58, b"\x02\x01" + u16(b"bob") + u16(b"pwd"))),
        (UserIdentityRQ(5, b"eyJhbGciOi"), sub(0x58, b"\x05\x00" + u16(b"eyJhbGciOi") + u16(b""))),
        (UserIdentityAC(b""), sub(0x59, b"\x00\x00")),
        (UserIdentityAC(b"ticket"), sub(0x59, u16(b"ticket"))),
        (UnknownSubItem(0x5A, b"\x01\x02", 3), sub(0x5A, b"\x01\x02", 3)),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, bytes) else "",
)
def test_sub_item_layout(item: SubItem, wire: bytes) -> None:
    assert UserInformation((item,)).value_bytes() == wire
    assert decode_items(wire) == (item,)


def test_common_extended_version_is_kept() -> None:
    item = SOPClassCommonExtendedNegotiation(CT, STORAGE_SERVICE, (), version=1)
    wire = UserInformation((item,)).value_bytes()
    assert wire[:2] == b"\x57\x01"
    assert decode_items(wire) == (item,)


def test_common_extended_reserved_tail_is_ignored() -> None:
    # PS3.7 D.3.3.6: whatever follows the related general SOP class block is reserved
    value = u16(CT.encode()) + u16(STORAGE_SERVICE.encode()) + b"\x00\x00" + b"\x00\x07junk"
    assert decode_items(sub(0x57, value)) == (
        SOPClassCommonExtendedNegotiation(CT, STORAGE_SERVICE),
    )


@pytest.mark.parametrize("role_byte", [2, 0xFF])
def test_role_values_other_than_one_do_not_propose_the_role(role_byte: int) -> None:
    (item,) = decode_items(sub(0x54, u16(b"1.2") + bytes((role_byte, 1))))
    assert item == SCPSCURoleSelection("1.2", False, True)


@given(
    item=pst.sub_items.filter(lambda i: not isinstance(i, UnknownSubItem)),
    second=st.integers(1, 255),
)
def test_reserved_second_byte_is_not_tested(item: SubItem, second: int) -> None:
    wire = bytearray(UserInformation((item,)).value_bytes())
    if isinstance(item, SOPClassCommonExtendedNegotiation):
        return  # its second byte is the sub-item version, covered above
    wire[1] = second
    decoded = decode_items(bytes(wire))
    assert decoded == (item,)
    assert UserInformation(decoded).value_bytes()[1] == 0


# -- typed views ---------------------------------------------------------------------------------


def test_build_order_and_views() -> None:
    role = SCPSCURoleSelection(CT, True, False)
    ext = SOPClassExtendedNegotiation(CT, b"\x01")
    common = SOPClassCommonExtendedNegotiation(CT, STORAGE_SERVICE)
    identity = UserIdentityRQ(1, b"bob")
    window = AsyncOperationsWindow(2, 2)
    info = UserInformation.build(
        maximum_length=0,
        implementation_class_uid="1.2.3",
        implementation_version_name="V1",
        async_ops_window=window,
        role_selection=(role,),
        sop_class_extended=(ext,),
        sop_class_common_extended=(common,),
        user_identity=identity,
    )
    # the order of PS3.7 D.3.3 and PS3.8 D.1
    assert [item.item_type for item in info.items] == [
        0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58
    ]
    assert info.maximum_length == 0
    assert info.implementation_class_uid == "1.2.3"
    assert info.implementation_version_name == "V1"
    assert info.async_ops_window == window
    assert info.role_selection == (role,)
    assert info.sop_class_extended == (ext,)
    assert info.sop_class_common_extended == (common,)
    assert info.user_identity_rq == identity
    assert info.user_identity_ac is None


def test_empty_views() -> None:
    info = UserInformation()
    assert info.to_bytes() == b"\x50\x00\x00\x00"
    assert info.maximum_length is None
    assert info.implementation_class_uid is None
    assert info.implementation_version_name is None
    assert info.async_ops_window is None
    assert info.role_selection == ()
    assert info.user_identity_rq is None
    assert info.user_identity_ac is None


def test_unknown_sub_items_are_kept_in_place() -> None:
    wire = sub(0x51, bytes(4)) + sub(0x99, b"vendor", 9) + sub(0x52, b"1.2")
    items = decode_items(wire)
    assert items == (MaximumLength(0), UnknownSubItem(0x99, b"vendor", 9),
                     ImplementationClassUID("1.2"))
    assert UserInformation(items).value_bytes() == wire
    # and the typed views simply do not see them
    assert UserInformation(items).maximum_length == 0


# -- malformed sub-items -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        (sub(0x51, bytes(3)), "Maximum Length (51H)"),
        (sub(0x51, bytes(5)), "Maximum Length (51H)"),
        (sub(0x53, bytes(2)), "Asynchronous Operations Window (53H)"),
        (sub(0x53, bytes(6)), "Asynchronous Operations Window (53H)"),
        (sub(0x54, u16(b"1.2") + b"\x01"), "SCP/SCU Role Selection (54H)"),
        (sub(0x54, u16(b"1.2") + b"\x01\x01\x01"), "SCP/SCU Role Selection (54H)"),
        (sub(0x54, b"\x00"), "SCP/SCU Role Selection (54H)"),
        (sub(0x54, b"\x00\x09" + b"1.2\x01\x01"), "SCP/SCU Role Selection (54H)"),
        (sub(0x55, b"X" * 17), "Implementation Version Name (55H)"),
        (sub(0x55, b"\xc3\xa9"), "Implementation Version Name (55H)"),
        (sub(0x52, b"1.\xff"), "Implementation Class UID (52H)"),
        (sub(0x52, b"1." + b"2" * 63), "Implementation Class UID (52H)"),
        (sub(0x56, b"\x00"), "SOP Class Extended Negotiation (56H)"),
        (sub(0x56, b"\x00\x05" + b"1.2"), "SOP Class Extended Negotiation (56H)"),
        (sub(0x57, u16(b"1.2")), "SOP Class Common Extended Negotiation (57H)"),
        (sub(0x57, u16(b"1.2") + u16(b"1.2") + b"\x00\x09" + u16(b"1.2")),
         "SOP Class Common Extended Negotiation (57H)"),
        (sub(0x57, u16(b"1.2") + u16(b"1.2") + u16(b"\x00\x05" + b"1.2")),
         "SOP Class Common Extended Negotiation (57H) related general SOP class"),
        (sub(0x58, b"\x01"), "User Identity Negotiation RQ (58H)"),
        (sub(0x58, b"\x01\x00" + u16(b"bob")),
         "User Identity Negotiation RQ (58H) secondary field"),
        (sub(0x58, b"\x01\x00\x00\x09bob\x00\x00"),
         "User Identity Negotiation RQ (58H) primary field"),
        (sub(0x59, b""), "User Identity Negotiation AC (59H)"),
        (sub(0x59, b"\x00\x03ab"), "User Identity Negotiation AC (59H)"),
        (b"\x51\x00\x00", "User Information (50H)"),
        (b"\x51\x00\x00\x08\x00\x00", "User Information (50H)"),
    ],
)
def test_malformed_sub_item(wire: bytes, field: str) -> None:
    with pytest.raises(PDUDecodeError) as info:
        decode_items(wire)
    assert info.value.field == field


# -- values refuse what could not be sent ---------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: MaximumLength(-1),
        lambda: MaximumLength(1 << 32),
        lambda: AsyncOperationsWindow(0x10000, 0),
        lambda: ImplementationClassUID("1." + "2" * 63),
        lambda: ImplementationVersionName("X" * 17),
        lambda: SCPSCURoleSelection("1." + "2" * 63, True, True),
        lambda: SOPClassCommonExtendedNegotiation(CT, STORAGE_SERVICE, ("1." + "2" * 63,)),
        lambda: SOPClassCommonExtendedNegotiation(CT, "é"),
        lambda: UserIdentityRQ(256, b""),
    ],
)
def test_invalid_values_are_refused_when_built(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError):
        build()


def test_related_uids_accept_any_sequence() -> None:
    item = SOPClassCommonExtendedNegotiation(CT, STORAGE_SERVICE, [ENHANCED_CT])
    assert item.related_general_sop_class_uids == (ENHANCED_CT,)
