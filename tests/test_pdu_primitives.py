"""dicomnet.pdu_primitives: pynetdicom's ext_neg classes over the kernel's frozen sub-items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dicomnet import pdu_primitives as pp
from dicomnet import user_info as ui
from tests.strategies.pdu import (
    async_operations_windows,
    common_extended_negotiations,
    implementation_class_uids,
    implementation_version_names,
    maximum_lengths,
    role_selections,
    sop_class_extended_negotiations,
    unknown_sub_items,
    user_identities_ac,
    user_identities_rq,
)

REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "pynetdicom" / "reference.json").read_text()
)["pdu_primitives"]
NEGOTIATION_CLASSES = [
    "MaximumLengthNotification",
    "ImplementationClassUIDNotification",
    "ImplementationVersionNameNotification",
    "AsynchronousOperationsWindowNegotiation",
    "SCP_SCU_RoleSelectionNegotiation",
    "SOPClassExtendedNegotiation",
    "SOPClassCommonExtendedNegotiation",
    "UserIdentityNegotiation",
]

#: known sub-items a primitive can represent exactly: role items need a role (as in
#: pynetdicom), a type-2 identity needs a passcode, 57H items of version 0 (PS3.7 today)
convertible_items = st.one_of(
    maximum_lengths,
    implementation_class_uids,
    implementation_version_names,
    async_operations_windows,
    role_selections.filter(lambda r: r.scu_role or r.scp_role),
    sop_class_extended_negotiations,
    common_extended_negotiations.map(lambda item: attrs.evolve(item, version=0)),
    user_identities_rq.filter(lambda u: u.user_identity_type != 2 or u.secondary_field),
    user_identities_ac,
)


@pytest.mark.parametrize("name", NEGOTIATION_CLASSES)
def test_same_properties_and_defaults_as_pynetdicom(name: str) -> None:
    cls = getattr(pp, name)
    obj = cls()
    reference = REFERENCE[name]
    for prop in reference["properties"]:
        assert isinstance(getattr(cls, prop), property), prop
    for prop, default in reference["defaults"].items():
        value = getattr(obj, prop)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        assert value == default, prop


@given(convertible_items)
def test_item_round_trip(item: ui.SubItem) -> None:
    (primitive,) = pp.primitives_from_items([item])
    assert primitive.to_item() == item
    assert type(primitive).from_item(item) == primitive  # type: ignore[arg-type]


@given(st.lists(st.one_of(convertible_items, unknown_sub_items), max_size=8))
def test_list_conversion_skips_unknown_items(items: list[ui.SubItem]) -> None:
    known = [item for item in items if not isinstance(item, ui.UnknownSubItem)]
    primitives = pp.primitives_from_items(items)
    assert pp.items_from_primitives(primitives) == tuple(known)


def test_items_from_primitives_rejects_other_objects() -> None:
    with pytest.raises(TypeError):
        pp.items_from_primitives(["not a primitive"])  # type: ignore[list-item]


def test_maximum_length() -> None:
    item = pp.MaximumLengthNotification()
    assert item.to_item() == ui.MaximumLength(16382)
    item.maximum_length_received = 0
    assert item.to_item() == ui.MaximumLength(0)
    with pytest.raises(ValueError):
        item.maximum_length_received = -1
    with pytest.raises(TypeError):
        item.maximum_length_received = "16382"  # type: ignore[assignment]
    with pytest.raises(ValueError):
        item.maximum_length_received = 1 << 32
    assert "16382" not in str(item) and "0 bytes" in str(item)


def test_implementation_class_uid() -> None:
    item = pp.ImplementationClassUIDNotification()
    with pytest.raises(ValueError, match="must be set"):
        item.to_item()
    item.implementation_class_uid = b"1.2.826.0.1.3680043.9.3811.3.0.4"
    assert item.to_item() == ui.ImplementationClassUID("1.2.826.0.1.3680043.9.3811.3.0.4")
    with pytest.raises(ValueError):
        item.implementation_class_uid = "1." * 40


def test_implementation_version_name() -> None:
    item = pp.ImplementationVersionNameNotification()
    with pytest.raises(ValueError, match="must be set"):
        item.to_item()
    item.implementation_version_name = b"SOME_NAME"  # pynetdicom's docs still show bytes
    assert item.to_item() == ui.ImplementationVersionName("SOME_NAME")
    for bad in ("", "   ", "X" * 17, "A\\B"):
        with pytest.raises(ValueError):
            item.implementation_version_name = bad
    with pytest.raises(TypeError):
        item.implementation_version_name = 5  # type: ignore[assignment]


def test_async_window() -> None:
    item = pp.AsynchronousOperationsWindowNegotiation()
    item.maximum_number_operations_invoked = 5
    item.maximum_number_operations_performed = 0
    assert item.to_item() == ui.AsyncOperationsWindow(5, 0)
    with pytest.raises(ValueError):
        item.maximum_number_operations_invoked = -1
    with pytest.raises(TypeError):
        item.maximum_number_operations_performed = 1.5  # type: ignore[assignment]


def test_role_selection() -> None:
    item = pp.SCP_SCU_RoleSelectionNegotiation()
    with pytest.raises(ValueError, match="sop_class_uid"):
        item.to_item()
    item.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2"
    with pytest.raises(ValueError, match="both be unsupported"):
        item.to_item()
    item.scp_role = True
    assert item.to_item() == ui.SCPSCURoleSelection("1.2.840.10008.5.1.4.1.1.2", False, True)
    with pytest.raises(TypeError, match="SCU Role"):
        item.scu_role = "yes"  # type: ignore[assignment]


def test_sop_class_extended() -> None:
    item = pp.SOPClassExtendedNegotiation()
    item.sop_class_uid = "1.2.840.10008.5.1.4.1.2.1.3"
    with pytest.raises(ValueError, match="must be set"):
        item.to_item()
    item.service_class_application_information = b"\x01"
    assert item.to_item() == ui.SOPClassExtendedNegotiation("1.2.840.10008.5.1.4.1.2.1.3", b"\x01")
    with pytest.raises(TypeError):
        item.service_class_application_information = "\x01"  # type: ignore[assignment]


def test_sop_class_common_extended() -> None:
    item = pp.SOPClassCommonExtendedNegotiation()
    item.sop_class_uid = "1.2.840.10008.5.1.4.1.1.88.40"
    item.service_class_uid = "1.2.840.10008.4.2"
    item.related_general_sop_class_identification = ["1.2.840.10008.5.1.4.1.1.88.22"]
    assert item.to_item() == ui.SOPClassCommonExtendedNegotiation(
        "1.2.840.10008.5.1.4.1.1.88.40", "1.2.840.10008.4.2", ("1.2.840.10008.5.1.4.1.1.88.22",)
    )
    with pytest.raises(TypeError, match="list"):
        item.related_general_sop_class_identification = "1.2.3"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        item.related_general_sop_class_identification = [None]  # type: ignore[list-item]


def test_user_identity_request_and_response() -> None:
    item = pp.UserIdentityNegotiation()
    with pytest.raises(ValueError, match="must be set"):
        item.to_item()
    item.user_identity_type = 2
    item.primary_field = b"username"
    with pytest.raises(ValueError, match="Secondary Field"):
        item.to_item()
    item.secondary_field = b"password"
    item.positive_response_requested = True
    assert item.to_item() == ui.UserIdentityRQ(2, b"username", b"password", True)

    response = pp.UserIdentityNegotiation()
    response.server_response = b"ticket"
    assert response.to_item() == ui.UserIdentityAC(b"ticket")

    for bad in (0, 6):
        with pytest.raises(ValueError):
            item.user_identity_type = bad
    with pytest.raises(TypeError):
        item.user_identity_type = "1"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        item.primary_field = "username"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        item.positive_response_requested = 1  # type: ignore[assignment]


def test_equality_is_by_value() -> None:
    a, b = pp.SCP_SCU_RoleSelectionNegotiation(), pp.SCP_SCU_RoleSelectionNegotiation()
    assert a == b
    b.scu_role = True
    assert a != b
    assert a != pp.SOPClassExtendedNegotiation()
    with pytest.raises(TypeError):
        hash(a)


@pytest.mark.parametrize("name", NEGOTIATION_CLASSES)
def test_str_and_repr(name: str) -> None:
    obj: Any = getattr(pp, name)()
    assert str(obj) and repr(obj).startswith(name)
