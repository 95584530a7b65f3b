"""Status categories and tables (PS3.7 Annex C, PS3.4), and parity with pynetdicom.status."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dicomnet import status
from dicomnet.status import (
    GENERAL_STATUS,
    QR_FIND_SERVICE_CLASS_STATUS,
    QR_MOVE_SERVICE_CLASS_STATUS,
    STORAGE_SERVICE_CLASS_STATUS,
    Status,
    StatusRange,
    StatusTable,
    code_to_category,
    code_to_status,
    is_cancel,
    is_failure,
    is_final,
    is_pending,
    is_success,
    is_warning,
)

# The public names of pynetdicom.status (3.0), which handler code imports.
PYNETDICOM_NAMES = [
    "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_WARNING", "STATUS_CANCEL", "STATUS_PENDING",
    "STATUS_UNKNOWN", "GENERAL_STATUS", "VERIFICATION_SERVICE_CLASS_STATUS",
    "STORAGE_SERVICE_CLASS_STATUS", "QR_FIND_SERVICE_CLASS_STATUS",
    "QR_MOVE_SERVICE_CLASS_STATUS", "QR_GET_SERVICE_CLASS_STATUS",
    "MODALITY_WORKLIST_SERVICE_CLASS_STATUS", "RELEVANT_PATIENT_SERVICE_CLASS_STATUS",
    "SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS", "NON_PATIENT_SERVICE_CLASS_STATUS",
    "PROCEDURE_STEP_STATUS", "PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS",
    "STORAGE_COMMITMENT_SERVICE_CLASS_STATUS", "APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS",
    "MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS",
    "UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS", "RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS",
    "code_to_status", "code_to_category", "Status",
]  # fmt: skip

TABLES = {
    name: getattr(status, name) for name in PYNETDICOM_NAMES if name.endswith("_STATUS")
}


def category_by_the_words_of_ps3_7(code: int) -> str:
    """PS3.7 Annex C, read off the hexadecimal digits as the standard writes them."""
    text = f"{code:04X}"
    if len(text) > 4:
        return "Unknown"
    if text == "0000":
        return "Success"
    if text in ("0001", "0107", "0116") or text[0] == "B":
        return "Warning"
    if text[0] in "AC" or text[:2] in ("01", "02"):
        return "Failure"
    if text == "FE00":
        return "Cancel"
    if text in ("FF00", "FF01"):
        return "Pending"
    return "Unknown"


def test_the_names_of_pynetdicom_status_exist() -> None:
    assert set(PYNETDICOM_NAMES) <= set(status.__all__)
    for name in PYNETDICOM_NAMES:
        assert hasattr(status, name), name
    assert (status.STATUS_SUCCESS, status.STATUS_WARNING, status.STATUS_FAILURE,
            status.STATUS_CANCEL, status.STATUS_PENDING, status.STATUS_UNKNOWN) == (
        "Success", "Warning", "Failure", "Cancel", "Pending", "Unknown")


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (0x0000, "Success"), (0x0001, "Warning"), (0x0107, "Warning"), (0x0116, "Warning"),
        (0xB000, "Warning"), (0xBFFF, "Warning"), (0x0100, "Failure"), (0x0110, "Failure"),
        (0x0122, "Failure"), (0x0124, "Failure"), (0x01FF, "Failure"), (0x0213, "Failure"),
        (0x02FF, "Failure"), (0xA000, "Failure"), (0xA801, "Failure"), (0xAFFF, "Failure"),
        (0xC000, "Failure"), (0xCFFF, "Failure"), (0xFE00, "Cancel"), (0xFF00, "Pending"),
        (0xFF01, "Pending"), (0x0002, "Unknown"), (0x0300, "Unknown"), (0x9FFF, "Unknown"),
        (0xD000, "Unknown"), (0xFE01, "Unknown"), (0xFF02, "Unknown"), (0x10000, "Unknown"),
    ],
)
def test_code_to_category(code: int, category: str) -> None:
    assert code_to_category(code) == category


def test_every_us_code_is_categorised_as_ps3_7_says() -> None:
    for code in range(0x10000):
        category = code_to_category(code)
        assert category == category_by_the_words_of_ps3_7(code), hex(code)
        assert is_success(code) == (category == "Success")
        assert is_warning(code) == (category == "Warning")
        assert is_failure(code) == (category == "Failure")
        assert is_cancel(code) == (category == "Cancel")
        assert is_pending(code) == (category == "Pending")
        assert is_final(code) == (category != "Pending")


@pytest.mark.parametrize("bad", [-1, "0", 1.0, None])
def test_code_to_category_wants_a_non_negative_int(bad: object) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        code_to_category(bad)  # type: ignore[arg-type]


def test_code_to_status() -> None:
    ds = code_to_status(0xA801)
    assert ds.Status == 0xA801
    assert [e.keyword for e in ds] == ["Status"]
    assert ds["Status"].VR == "US"
    for bad in (-1, 0x10000):
        with pytest.raises(ValueError):
            code_to_status(bad)


def test_status_names() -> None:
    assert (Status.SUCCESS, Status.CANCEL, Status.PENDING, Status.MOVE_DESTINATION_UNKNOWN) == (
        0x0000, 0xFE00, 0xFF00, 0xA801)
    assert Status.PROCESSING_FAILURE == 0x0110
    assert Status.NOT_AUTHORIZED == 0x0124
    for member in Status:
        assert GENERAL_STATUS.category(member) == code_to_category(member)
    Status.add("UNABLE_TO_PROCESS_TEST", 0xC123)
    assert Status.UNABLE_TO_PROCESS_TEST == 0xC123  # type: ignore[attr-defined]


# -- tables ---------------------------------------------------------------------------------


def test_general_table_is_ps3_7_annex_c() -> None:
    assert set(GENERAL_STATUS) == {
        0x0000, 0x0105, 0x0106, 0x0107, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115,
        0x0116, 0x0117, 0x0118, 0x0119, 0x0120, 0x0121, 0x0122, 0x0123, 0x0124,
        0x0210, 0x0211, 0x0212, 0x0213, 0xFE00, 0xFF00, 0xFF01,
    }  # fmt: skip
    assert GENERAL_STATUS[0x0122] == ("Failure", "Refused: SOP class not supported")


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_entry_agrees_with_the_status_classes(name: str) -> None:
    table = TABLES[name]
    assert isinstance(table, StatusTable)
    assert len(table) == len(list(table))
    assert list(table) == sorted(table)
    for code in table:
        category, description = table[code]
        assert category == code_to_category(code), (name, hex(code))
        assert description
        assert code in table
    # the general codes are always there
    assert set(GENERAL_STATUS) <= set(table)


def test_lookup_order_codes_then_ranges_then_general() -> None:
    table = StatusTable(
        "Test",
        {0xC001: ("Failure", "specific"), 0x0110: ("Failure", "service meaning")},
        [StatusRange(0xC000, 0xC0FF, "Failure", "first range"),
         StatusRange(0xC000, 0xCFFF, "Failure", "second range")],
    )
    assert table[0xC001] == ("Failure", "specific")
    assert table[0xC002] == ("Failure", "first range")
    assert table[0xC100] == ("Failure", "second range")
    assert table[0x0110] == ("Failure", "service meaning")
    assert table[0x0211] == GENERAL_STATUS[0x0211]
    assert 0xD000 not in table
    assert "0xC001" not in table
    with pytest.raises(KeyError):
        table[0xD000]
    assert table.get(0xD000) is None
    # C001 lies in the ranges and 0110 is a general code: each is counted once
    assert len(table) == 0x1000 + len(GENERAL_STATUS)
    # codes the table does not know still get a category
    assert table.category(0xB123) == "Warning"
    assert table.description(0xB123) == ""
    assert table.description(0xC555) == "second range"
    without_general = StatusTable("Bare", {0xC001: ("Failure", "x")}, general=False)
    assert 0x0000 not in without_general
    assert list(without_general) == [0xC001]


def test_extend_puts_new_entries_first() -> None:
    table = STORAGE_SERVICE_CLASS_STATUS.extend(
        "Vendor storage",
        {0xC123: ("Failure", "disk full")},
        [StatusRange(0xA700, 0xA70F, "Failure", "quota exceeded")],
    )
    assert table.name == "Vendor storage"
    assert table[0xC123] == ("Failure", "disk full")
    assert table[0xC124] == STORAGE_SERVICE_CLASS_STATUS[0xC124]
    assert table[0xA705] == ("Failure", "quota exceeded")
    assert table[0xA710] == STORAGE_SERVICE_CLASS_STATUS[0xA710]
    assert table[0xB007] == STORAGE_SERVICE_CLASS_STATUS[0xB007]


def test_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        STORAGE_SERVICE_CLASS_STATUS.codes[0xC000] = ("Success", "")  # type: ignore[index]
    with pytest.raises(AttributeError):
        STORAGE_SERVICE_CLASS_STATUS.name = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        StatusRange(0xC0FF, 0xC000, "Failure", "backwards")


def test_some_service_codes() -> None:
    assert STORAGE_SERVICE_CLASS_STATUS[0xA7FF][0] == "Failure"
    assert STORAGE_SERVICE_CLASS_STATUS[0xB006][0] == "Warning"
    assert QR_FIND_SERVICE_CLASS_STATUS[0xFF01][0] == "Pending"
    assert QR_MOVE_SERVICE_CLASS_STATUS[0xA801] == ("Failure", "Refused: move destination unknown")
    assert 0xA801 not in status.QR_GET_SERVICE_CLASS_STATUS


@given(code=st.integers(0, 0xFFFF))
def test_table_category_falls_back_to_the_status_classes(code: int) -> None:
    for table in TABLES.values():
        assert table.category(code) == code_to_category(code)


# -- parity with the reference implementation ------------------------------------------------

PEER_PYTHON = Path(os.path.expanduser("~/.cache/dicom-peers/venv/bin/python"))

_DUMP = """
import json
from pynetdicom import status
out = {}
for name in status.__all__:
    value = getattr(status, name)
    if name.endswith("_STATUS"):
        out[name] = {str(code): entry[0] for code, entry in value.items()}
print(json.dumps(out))
"""


@pytest.mark.interop
@pytest.mark.skipif(not PEER_PYTHON.exists(), reason="pynetdicom venv not installed")
def test_codes_and_categories_match_pynetdicom() -> None:
    dumped = json.loads(
        subprocess.run([str(PEER_PYTHON), "-c", _DUMP], capture_output=True, check=True,
                       text=True, timeout=60).stdout
    )
    assert set(dumped) == set(TABLES)
    for name, entries in dumped.items():
        ours = TABLES[name]
        for code_text, category in entries.items():
            code = int(code_text)
            assert code in ours, (name, hex(code))
            assert ours[code][0] == category, (name, hex(code))
