"""PS3.4 C.2.2.2 attribute matching, rule by rule (dicomnet.contrib.pacs.matching)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from dicomnet.contrib.pacs.matching import (
    QR_OPTIONS,
    WORKLIST_OPTIONS,
    ColumnKind,
    Exact,
    InvalidIdentifier,
    KeyKind,
    MatchOptions,
    Wildcard,
    compile_identifier,
    format_tm,
    matches,
    normalize_pn,
    parse_da,
    parse_dt,
    parse_key,
    parse_tm,
    term_condition,
)

# Keys such as "M*" for a CS are not valid CS values: pydicom says so when they are set.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")


def ds(**attrs: Any) -> Dataset:
    out = Dataset()
    for keyword, value in attrs.items():
        setattr(out, keyword, value)
    return out


def check(
    key: dict[str, Any], candidate: dict[str, Any], options: MatchOptions = QR_OPTIONS
) -> bool:
    return matches(ds(**key), ds(**candidate), options)


# --- Universal Matching (C.2.2.2.3) ---------------------------------------------------------


@pytest.mark.parametrize("options", [QR_OPTIONS, WORKLIST_OPTIONS])
@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("PatientName", ""),
        ("PatientName", "*"),  # C.2.2.2.4 note 1
        ("PatientID", "**"),
        ("StudyDate", ""),
        ("StudyDate", "*"),  # "*" is universal for any VR (lenient)
        ("SOPInstanceUID", ""),
        ("SeriesNumber", None),
    ],
)
@pytest.mark.parametrize("candidate", [{}, {"PatientName": "Doe", "PatientID": "1"}])
def test_universal(
    keyword: str, value: Any, candidate: dict[str, Any], options: MatchOptions
) -> None:
    assert check({keyword: value}, candidate, options)


def test_universal_is_key_pydicom_cannot_decode() -> None:
    """An IS key of ``*`` (pydicom refuses to decode it) is universal."""
    identifier = Dataset(
        {Tag(0x00200011): RawDataElement(Tag(0x00200011), "IS", 2, b"* ", 0, False, True)}
    )
    matcher = compile_identifier(identifier)
    assert matcher.keys[0].kind is KeyKind.UNIVERSAL
    assert matcher.matches(ds(SeriesNumber=4))


def test_undecodable_key_is_an_invalid_identifier() -> None:
    identifier = Dataset(
        {Tag(0x00200011): RawDataElement(Tag(0x00200011), "IS", 4, b"abcd", 0, False, True)}
    )
    with pytest.raises(InvalidIdentifier) as info:
        compile_identifier(identifier)
    assert info.value.status == 0xA900
    assert info.value.offending == (Tag(0x00200011),)


# --- Single Value Matching (C.2.2.2.1) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "key", "candidate", "expected"),
    [
        # case-sensitive (C.2.2.2.1)
        ("PatientID", "ABC", "ABC", True),
        ("PatientID", "ABC", "abc", False),
        ("PatientID", "ABC", "ABC1", False),
        ("PatientID", "ABC", "AB", False),
        ("Modality", "CT", "ct", False),
        # padding that PS3.5 declares not significant
        ("PatientID", "ABC", " ABC ", True),  # LO: leading and trailing
        ("PatientID", " ABC", "ABC", True),
        ("Modality", "CT ", "CT", True),  # CS
        ("StudyDescription", "Chest", "Chest ", True),
        ("StudyComments", "x", " x", False),  # LT: leading spaces are significant
        ("StudyComments", "x", "x ", True),
        ("SOPClassUID", "1.2.3", "1.2.3\0", True),  # UI: trailing NUL
        ("SOPClassUID", "1.2.3", "1.2.34", False),
        # PN: case-insensitive, empty trailing components ignored (C.2.2.2.1.1)
        ("PatientName", "DOE^JOHN", "Doe^John", True),
        ("PatientName", "doe^john", "DOE^JOHN^^^", True),
        ("PatientName", "Doe^John^", "Doe^John", True),
        ("PatientName", "Doe^John", "Doe^Johnny", False),
        ("PatientName", "Doe", "Doe^John", False),  # literal, not component-wise
        ("PatientName", "Wang^XiaoDong=王^小東", "wang^xiaodong=王^小東", True),
        ("PatientName", "Wang^XiaoDong", "Wang^XiaoDong=王^小東", False),
        ("PatientName", "Müller", "MÜLLER", True),
        # IS and DS compare as numbers
        ("SeriesNumber", "7", "007", True),
        ("SeriesNumber", "7", "+7", True),
        ("SeriesNumber", "7", "8", False),
        ("SliceThickness", "1.5", "1.50", True),
        ("SliceThickness", "1.5", "1.51", False),
        # AS: exact
        ("PatientAge", "030Y", "030Y", True),
        ("PatientAge", "030Y", "031Y", False),
        # DA, TM, DT by meaning (C.2.2.2.1.3); a partial key value is its span
        ("StudyDate", "20200101", "20200101", True),
        ("StudyDate", "20200101", "2020.01.01", True),  # ACR-NEMA form
        ("StudyDate", "20200101", "20200102", False),
        ("StudyTime", "2230", "223000", True),  # the standard's example
        ("StudyTime", "2230", "223059.999", True),
        ("StudyTime", "2230", "2231", False),
        ("StudyTime", "223000", "2230", True),
        ("StudyTime", "10:15:00", "101500", True),
        ("AcquisitionDateTime", "19980128103000", "19980128103000.0000", True),
        ("AcquisitionDateTime", "19980128103000", "19980128073000-0300", True),  # the example
        ("AcquisitionDateTime", "19980128103000+0000", "19980128103000+0100", False),
        ("AcquisitionDateTime", "1998", "19980128103000", True),
    ],
)
def test_single_value(keyword: str, key: str, candidate: str, expected: bool) -> None:
    assert check({keyword: key}, {keyword: candidate}) is expected
    assert check({keyword: key}, {keyword: candidate}, WORKLIST_OPTIONS) is expected


def test_pn_case_sensitive_option() -> None:
    options = MatchOptions(pn_case_sensitive=True)
    assert not check({"PatientName": "DOE^JOHN"}, {"PatientName": "Doe^John"}, options)
    assert check({"PatientName": "Doe^John"}, {"PatientName": "Doe^John^"}, options)
    assert not check({"PatientName": "doe*"}, {"PatientName": "Doe^John"}, options)


def test_binary_numbers() -> None:
    assert check({"Rows": 512}, {"Rows": 512})
    assert not check({"Rows": 512}, {"Rows": 256})
    assert check({"RecommendedDisplayFrameRate": 25}, {"RecommendedDisplayFrameRate": 25})


def test_specific_character_set_and_timezone_are_not_matched() -> None:
    key = {"SpecificCharacterSet": "ISO_IR 100", "TimezoneOffsetFromUTC": "+0100", "PatientID": "1"}
    assert check(key, {"PatientID": "1"})
    assert check(key, {"PatientID": "1", "SpecificCharacterSet": "ISO_IR 192"})


# --- List of UID Matching (C.2.2.2.2) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [("1.2.3", True), ("1.2.4", True), ("1.2.5", False), ("1.2", False)],
)
def test_list_of_uids(candidate: str, expected: bool) -> None:
    assert check({"SOPInstanceUID": ["1.2.3", "1.2.4"]}, {"SOPInstanceUID": candidate}) is expected


def test_list_of_uids_ignores_multiple_value_matching() -> None:
    options = MatchOptions(multiple_value_matching=True)
    assert check({"SOPInstanceUID": ["1.2.3", "1.2.4"]}, {"SOPInstanceUID": "1.2.4"}, options)


# --- Wild Card Matching (C.2.2.2.4) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "key", "candidate", "expected"),
    [
        ("PatientID", "AB*", "ABC", True),
        ("PatientID", "AB*", "AB", True),  # "*" matches a zero length run
        ("PatientID", "AB*", "XAB", False),
        ("PatientID", "*B*", "ABC", True),
        ("PatientID", "*B", "ABC", False),
        ("PatientID", "A?C", "ABC", True),
        ("PatientID", "A?C", "AC", False),
        ("PatientID", "A?C", "ABBC", False),
        ("PatientID", "A??", "AÄÖ", True),  # "?" is one character, not one byte
        ("PatientID", "ab*", "ABC", False),  # case-sensitive except PN
        ("PatientName", "doe*", "Doe^John", True),
        ("PatientName", "*^JOHN", "Doe^John", True),
        ("PatientName", "D?E^*", "Doe^John", True),
        ("PatientName", "m?ller*", "Müller^Jörg", True),
        # characters special to regular expressions, GLOB and LIKE are literals
        ("PatientID", "A.C*", "ABCD", False),
        ("PatientID", "A.C*", "A.CD", True),
        ("PatientID", "A[1]*", "A[1]x", True),
        ("PatientID", "A[1]*", "A1x", False),
        ("PatientID", "A(B)?", "A(B)C", True),
        ("PatientID", "50%*", "50%x", True),
        ("PatientID", "50%*", "500x", False),
        ("PatientID", "A_B*", "AxB", False),
        ("PatientID", "A_B*", "A_B", True),
        ("PatientID", "A\\B*", "A", True),  # a backslash separates values: "A" or "B*"
        ("PatientID", "^$*", "^$x", True),
        ("StudyComments", "a*", "a\nb", True),  # "*" crosses line breaks
        ("Modality", "C?", "CT", True),  # CS allows wild cards too
        ("SOPInstanceUID", "1.2.*", "1.2.3", False),  # not for UI: a literal
    ],
)
def test_wildcards(keyword: str, key: str, candidate: str, expected: bool) -> None:
    assert check({keyword: key}, {keyword: candidate}) is expected


def test_wildcard_in_a_date_is_an_invalid_identifier() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        compile_identifier(ds(StudyDate="2020*"))
    assert info.value.offending == (Tag(0x00080020),)
    assert "StudyDate" in info.value.error_comment


def _reference_wildcard(pattern: str, text: str) -> bool:
    """Textbook recursive definition of C.2.2.2.4, to check the compiled regex."""
    if not pattern:
        return not text
    if pattern[0] == "*":
        return any(_reference_wildcard(pattern[1:], text[i:]) for i in range(len(text) + 1))
    if not text:
        return False
    return (pattern[0] == "?" or pattern[0] == text[0]) and _reference_wildcard(
        pattern[1:], text[1:]
    )


@given(
    pattern=st.text(alphabet="ab*?.[%_\\", max_size=7),
    text=st.text(alphabet="ab.[%_\\", max_size=7),
)
def test_wildcard_regex_agrees_with_the_definition(pattern: str, text: str) -> None:
    assert (Wildcard.compile(pattern).regex.fullmatch(text) is not None) is _reference_wildcard(
        pattern, text
    )


@given(
    pattern=st.text(alphabet="ab*?.[]%_\\!", min_size=1, max_size=6),
    text=st.text(alphabet="ab.[]%_\\!", max_size=6),
)
def test_wildcard_sql_agrees_with_the_regex(pattern: str, text: str) -> None:
    """GLOB (SQLite) and LIKE with escapes give the regex's answer."""
    expected = Wildcard.compile(pattern).regex.fullmatch(text) is not None
    assert _sql_match(Wildcard.compile(pattern), text, "sqlite") is expected
    assert _sql_match(Wildcard.compile(pattern), text, "like") is expected


_ENGINE = create_engine("sqlite://")
_TABLE = Table("t", MetaData(), Column("v", String))
_TABLE.create(_ENGINE)


def _sql_match(term: Wildcard | Exact, text: str, dialect: str) -> bool:
    """Evaluate a term condition in SQLite; dialect "like" forces the LIKE form."""
    with _ENGINE.connect() as conn:
        conn.exec_driver_sql("PRAGMA case_sensitive_like = ON")
        conn.execute(_TABLE.delete())
        conn.execute(insert(_TABLE).values(v=text))
        cond = term_condition(term, _TABLE.c.v, ColumnKind.TEXT, dialect)
        return conn.execute(select(_TABLE.c.v).where(cond)).first() is not None


# --- Range Matching (C.2.2.2.5) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "key", "candidate", "expected"),
    [
        # DA (C.2.2.2.5.1)
        ("StudyDate", "20200101-20201231", "20200615", True),
        ("StudyDate", "20200101-20201231", "20200101", True),  # inclusive
        ("StudyDate", "20200101-20201231", "20201231", True),
        ("StudyDate", "20200101-20201231", "20191231", False),
        ("StudyDate", "20200101-20201231", "20210101", False),
        ("StudyDate", "-20200101", "19000101", True),
        ("StudyDate", "-20200101", "20200102", False),
        ("StudyDate", "20200101-", "20991231", True),
        ("StudyDate", "20200101-", "20191231", False),
        ("StudyDate", "20201231-20200101", "20200601", False),  # empty range
        ("StudyDate", "20200101 - 20200131", "20200115", True),  # spaces tolerated
        ("StudyDate", "-", "20200115", True),
        ("StudyDate", "2020-", "20200615", True),  # a partial bound is its span
        ("StudyDate", "-202006", "20200630", True),
        ("StudyDate", "-202006", "20200701", False),
        # TM (C.2.2.2.5.2)
        ("StudyTime", "1000-1100", "1030", True),
        ("StudyTime", "1000-1100", "1000", True),
        ("StudyTime", "1000-1100", "110059.999999", True),  # "1100" lasts a minute
        ("StudyTime", "1000-1100", "110100", False),
        ("StudyTime", "1000-1100", "0959", False),
        ("StudyTime", "-10", "105959", True),
        ("StudyTime", "-10", "11", False),
        ("StudyTime", "1015-", "101500.5", True),
        ("StudyTime", "1015-", "101459.999", False),
        ("StudyTime", "101500.5-101500.7", "101500.6", True),
        ("StudyTime", "101500.5-101500.7", "101500.79", True),
        ("StudyTime", "101500.5-101500.7", "101500.8", False),
        ("StudyTime", "101500.5", "101500.512", True),
        ("StudyTime", "10:00-11:00", "10:30:00", True),
        ("StudyTime", "2300-0100", "2330", False),  # crossing midnight: not supported
        # DT (C.2.2.2.5.3), offsets taken into account
        ("AcquisitionDateTime", "20200101120000-20200101130000", "20200101123000", True),
        ("AcquisitionDateTime", "20200101120000-20200101130000", "20200101130001", False),
        (
            "AcquisitionDateTime",
            "20200101120000+0000-20200101130000+0000",
            "20200101073000-0500",
            True,
        ),
        (
            "AcquisitionDateTime",
            "20200101120000+0000-20200101130000+0000",
            "20200101123000-0500",
            False,
        ),
        ("AcquisitionDateTime", "2020-", "20210101", True),
        ("AcquisitionDateTime", "2020-", "2019", False),
        ("AcquisitionDateTime", "-2020", "20201231235959", True),
        ("AcquisitionDateTime", "-2020", "20210101", False),
        ("AcquisitionDateTime", "-20200101120000.5", "20200101120000.599999", True),
    ],
)
def test_range(keyword: str, key: str, candidate: str, expected: bool) -> None:
    assert check({keyword: key}, {keyword: candidate}) is expected


def test_dt_without_offset_takes_the_data_set_timezone() -> None:
    key = {"AcquisitionDateTime": "20200101120000"}
    assert check(key, {"AcquisitionDateTime": "20200101130000", "TimezoneOffsetFromUTC": "+0100"})
    assert not check(key, {"AcquisitionDateTime": "20200101130000"})
    east = MatchOptions(match_unknown=True, utc_offset=60)
    assert check(key, {"AcquisitionDateTime": "20200101120000+0100"}, east)
    # the identifier's own Timezone Offset From UTC applies to its keys
    key_tz = {**key, "TimezoneOffsetFromUTC": "-0100"}
    assert check(key_tz, {"AcquisitionDateTime": "20200101130000+0000"})


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("StudyDate", "2020-13-01"),
        ("StudyDate", "20201301"),
        ("StudyDate", "yesterday"),
        ("StudyDate", "20200101-20200201-20200301"),
        ("StudyTime", "25"),
        ("StudyTime", "1060"),
        ("StudyTime", "10:1"),
        ("AcquisitionDateTime", "2020013"),
        ("SeriesNumber", "ten"),
    ],
)
def test_unparsable_keys(keyword: str, value: str) -> None:
    identifier = Dataset()
    identifier.add_new(
        keyword,
        {"StudyDate": "DA", "StudyTime": "TM", "AcquisitionDateTime": "DT"}.get(keyword, "SH"),
        value,
    )
    if keyword == "SeriesNumber":
        identifier = Dataset(
            {Tag(0x00200011): RawDataElement(Tag(0x00200011), "IS", 4, b"ten ", 0, False, True)}
        )
    with pytest.raises(InvalidIdentifier):
        compile_identifier(identifier)


def test_unparsable_candidate_values_match_no_range() -> None:
    assert not check({"StudyDate": "20200101-"}, {"StudyDate": "garbage!"})
    assert not check({"StudyTime": "10-"}, {"StudyTime": "99"})


# --- combined date and time (C.2.2.2.5.4) --------------------------------------------------------

COMBINED = MatchOptions(match_unknown=True, combined_datetime=True)
RANGE = {"StudyDate": "20060705-20060707", "StudyTime": "1000-1800"}


@pytest.mark.parametrize(
    ("date", "time", "combined", "separate"),
    [
        ("20060706", "0500", True, False),  # the standard's example: July 6 all day
        ("20060705", "0900", False, False),
        ("20060705", "2000", True, False),
        ("20060707", "1700", True, True),
        ("20060707", "1900", False, False),
        ("20060708", "1200", False, False),
        ("20060705", None, True, True),  # no time: the day meets the range
        (None, "1200", True, True),  # unknown date (Q/R: unknown matches)
    ],
)
def test_combined_datetime(
    date: str | None, time: str | None, combined: bool, separate: bool
) -> None:
    candidate = {k: v for k, v in (("StudyDate", date), ("StudyTime", time)) if v is not None}
    assert check(RANGE, candidate, COMBINED) is combined
    assert check(RANGE, candidate, QR_OPTIONS) is separate


def test_combined_datetime_only_for_the_same_form() -> None:
    key = {"StudyDate": "20060705-20060707", "StudyTime": "1000-"}
    # not the same form: each is matched alone
    assert not check(key, {"StudyDate": "20060706", "StudyTime": "0500"}, COMBINED)
    key = {"StudyDate": "20060705-", "StudyTime": "1000-"}
    assert check(key, {"StudyDate": "20060706", "StudyTime": "0500"}, COMBINED)
    assert not check(key, {"StudyDate": "20060705", "StudyTime": "0500"}, COMBINED)
    key = {
        "ScheduledProcedureStepStartDate": "-20060707",
        "ScheduledProcedureStepStartTime": "-1000",
    }
    candidate = {
        "ScheduledProcedureStepStartDate": "20060706",
        "ScheduledProcedureStepStartTime": "2300",
    }
    assert check(key, candidate, COMBINED)
    assert not check(key, candidate, QR_OPTIONS)


# --- Sequence Matching (C.2.2.2.6) ---------------------------------------------------------------


def _sps(**attrs: Any) -> Dataset:
    return ds(**attrs)


def _worklist_item() -> Dataset:
    protocol = ds(CodeValue="P1", CodingSchemeDesignator="99X")
    return ds(
        PatientName="Doe^John",
        PatientID="P1",
        ScheduledProcedureStepSequence=[
            _sps(
                Modality="CT",
                ScheduledStationAETitle="CT1",
                ScheduledProcedureStepStartDate="20240101",
            ),
            _sps(
                Modality="MR",
                ScheduledStationAETitle="MR1",
                ScheduledProcedureStepStartDate="20240102",
                ScheduledProtocolCodeSequence=[protocol],
            ),
        ],
    )


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"Modality": "MR"}, True),
        ({"Modality": "US"}, False),
        ({"Modality": "MR", "ScheduledStationAETitle": "CT1"}, False),  # same item for all keys
        ({"Modality": "CT", "ScheduledStationAETitle": "CT*"}, True),
        ({"ScheduledProcedureStepStartDate": "20240102-"}, True),
        ({"ScheduledProcedureStepStartDate": "-20231231"}, False),
        ({"ScheduledProtocolCodeSequence": [ds(CodeValue="P1")]}, True),  # recursive
        ({"ScheduledProtocolCodeSequence": [ds(CodeValue="P2")]}, False),
        ({"Modality": "", "ScheduledStationAETitle": ""}, True),  # only return keys
    ],
)
def test_sequence_matching(item: dict[str, Any], expected: bool) -> None:
    key = ds(ScheduledProcedureStepSequence=[ds(**item)])
    assert matches(key, _worklist_item(), WORKLIST_OPTIONS) is expected


def test_sequence_projection_holds_the_matching_items_reduced() -> None:
    key = ds(
        PatientName="",
        ScheduledProcedureStepSequence=[ds(Modality="MR", ScheduledStationAETitle="")],
    )
    matcher = compile_identifier(key, WORKLIST_OPTIONS)
    response = matcher.project(_worklist_item())
    assert set(response.keys()) == {Tag("PatientName"), Tag("ScheduledProcedureStepSequence")}
    (item,) = response.ScheduledProcedureStepSequence
    assert set(item.keys()) == {Tag("Modality"), Tag("ScheduledStationAETitle")}
    assert item.ScheduledStationAETitle == "MR1"


@pytest.mark.parametrize("empty", [Sequence(), Sequence([Dataset()])])
def test_empty_sequence_key_is_universal_and_returns_everything(empty: Sequence) -> None:
    key = ds(ScheduledProcedureStepSequence=empty)
    assert matches(key, ds(PatientID="1"), WORKLIST_OPTIONS)
    response = compile_identifier(key).project(_worklist_item())
    assert len(response.ScheduledProcedureStepSequence) == 2
    assert (
        response.ScheduledProcedureStepSequence[1].ScheduledProtocolCodeSequence[0].CodeValue
        == "P1"
    )


def test_sequence_key_against_a_missing_sequence() -> None:
    key = ds(ScheduledProcedureStepSequence=[ds(Modality="MR")])
    assert not matches(key, ds(PatientID="1"), WORKLIST_OPTIONS)  # unknown fails (K.2.2.1.1.1)
    assert matches(key, ds(PatientID="1"), QR_OPTIONS)  # unknown matches (C.2.2.1.2)
    only_return_keys = ds(ScheduledProcedureStepSequence=[ds(Modality="")])
    assert matches(only_return_keys, ds(PatientID="1"), WORKLIST_OPTIONS)
    response = compile_identifier(only_return_keys).project(ds(PatientID="1"))
    assert response.ScheduledProcedureStepSequence == Sequence()


# --- multiple values (C.2.2.3, C.2.2.2.8) ----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "candidate", "any_value", "all_values"),
    [
        ("CT", ["MR", "CT"], True, True),
        ("US", ["MR", "CT"], False, False),
        (["CT", "US"], ["MR", "CT"], True, False),
        (["CT", "MR"], ["MR", "CT", "PT"], True, True),
        (["C*", "US"], ["MR", "CT"], True, False),
        ("C*", ["MR", "CT"], True, True),
    ],
)
def test_multiple_values(key: Any, candidate: list[str], any_value: bool, all_values: bool) -> None:
    assert check({"ModalitiesInStudy": key}, {"ModalitiesInStudy": candidate}) is any_value
    options = MatchOptions(match_unknown=True, multiple_value_matching=True)
    assert (
        check({"ModalitiesInStudy": key}, {"ModalitiesInStudy": candidate}, options) is all_values
    )


def test_all_values_of_a_matching_attribute_are_returned() -> None:
    matcher = compile_identifier(ds(ModalitiesInStudy="CT"))
    response = matcher.project(ds(ModalitiesInStudy=["MR", "CT"]))
    assert list(response.ModalitiesInStudy) == ["MR", "CT"]


# --- empty values (C.2.2.1.2, K.2.2.1.1.1, C.2.2.2.7) -------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "qr", "worklist"),
    [
        ({}, True, False),
        ({"PatientSex": ""}, True, False),
        ({"PatientSex": "M"}, True, True),
        ({"PatientSex": "F"}, False, False),
    ],
)
@pytest.mark.parametrize("key", ["M", "M*", "?M"])
def test_unknown_values(key: str, candidate: dict[str, Any], qr: bool, worklist: bool) -> None:
    if key == "?M" and candidate.get("PatientSex") == "M":
        qr = worklist = False  # "?M" wants two characters
    assert check({"PatientSex": key}, candidate, QR_OPTIONS) is qr
    assert check({"PatientSex": key}, candidate, WORKLIST_OPTIONS) is worklist


@pytest.mark.parametrize(
    ("candidate", "negotiated", "literal"),
    [
        ({}, True, True),
        ({"PatientSex": ""}, True, True),
        ({"PatientSex": "M"}, False, False),
        ({"PatientSex": '""'}, False, True),
    ],
)
def test_empty_value_matching(candidate: dict[str, Any], negotiated: bool, literal: bool) -> None:
    options = MatchOptions(empty_value_matching=True)
    assert check({"PatientSex": '""'}, candidate, options) is negotiated
    # without the negotiation '""' is a value like any other (unknowns match in Q/R)
    assert check({"PatientSex": '""'}, candidate, QR_OPTIONS) is literal


# --- projection --------------------------------------------------------------------------------


def test_projection_returns_only_requested_keys_and_fills_them() -> None:
    key = ds(
        PatientName="", PatientID="P*", StudyDate="", SeriesNumber=None, QueryRetrieveLevel="STUDY"
    )
    matcher = compile_identifier(key)
    candidate = ds(PatientName="Doe^John", PatientID="P1", SeriesNumber=3, Modality="CT")
    response = matcher.project(candidate)
    assert set(response.keys()) == {
        Tag("PatientName"),
        Tag("PatientID"),
        Tag("StudyDate"),
        Tag("SeriesNumber"),
    }
    assert response.PatientName == "Doe^John"
    assert response.SeriesNumber == 3
    assert response["StudyDate"].VR == "DA"
    assert response.StudyDate == ""


# --- value parsers -----------------------------------------------------------------------------


def test_parsers() -> None:
    start, end = parse_da("20200229")
    assert end - start == 86_400_000_000 - 1
    with pytest.raises(ValueError):
        parse_da("20210229")
    assert parse_tm("10") == (36_000_000_000, 39_599_999_999)
    assert parse_tm("235960") == (86_399_999_999, 86_399_999_999)  # leap second
    assert format_tm(parse_tm("101500.5")[0]) == "101500.500000"
    assert parse_dt("20200101000000+0100")[0] == parse_dt("20191231230000")[0]
    assert parse_dt("2020")[1] == parse_dt("20201231235959.999999")[0]
    assert normalize_pn("Doe^John^^=^^ ") == "doe^john"
    assert normalize_pn("Doe^John", fold=False) == "Doe^John"


def test_parse_key_kinds() -> None:
    key = parse_key(ds(PatientName="DOE*")["PatientName"])
    assert key.kind is KeyKind.VALUES
    assert key.fold
    assert isinstance(key.terms[0], Wildcard)
    assert key.terms[0].pattern == "doe*"
    key = parse_key(ds(StudyDate="20200101-")["StudyDate"])
    assert key.terms[0].upper is None  # type: ignore[union-attr]


def test_wildcard_sql_forms() -> None:
    w = Wildcard.compile("a[b]_%\\*?")
    assert w.glob() == "a[[]b]_%\\*?"
    assert w.like() == "a[b]\\_\\%\\\\%_"
    assert re.fullmatch(w.regex, "a[b]_%\\xyz1")
