"""C-FIND plans and retrieve plans on the index (PS3.4 C.4.1.3, C.4.2.2, C.4.3.2).

The index holds :func:`~.conftest.small_dataset` (3 patients, 4 studies, 6
series, 11 instances); every test runs on SQLite and on PostgreSQL. Expected
matches are written out by hand; :func:`test_sql_agrees_with_the_python_matcher`
also compares the index with :func:`~dicomnet.contrib.pacs.matching.matches`
run on each instance.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from dicomnet.contrib.pacs import QR_OPTIONS, Index, InvalidIdentifier, QueryError, matches
from dicomnet.contrib.pacs.query import level_of

from .conftest import CT, MR, SR, PgCluster, small_dataset

# Keys such as "M*" are not valid CS values: pydicom says so when they are set.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Invalid value for VR", "ignore:Value .* is not valid"
)

UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
STRICT = attrs.evolve(QR_OPTIONS, match_unknown=False)


def identifier(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def find(index: Index, level: str, model: str = "study", **kwargs: Any) -> list[Dataset]:
    """The responses to a query at ``level``; keyword arguments that are DICOM keywords are keys."""
    options = {k: kwargs.pop(k) for k in ("relational", "strict", "options") if k in kwargs}
    return list(index.find(identifier(level, **kwargs), model, **options))


def uids(index: Index, level: str, model: str = "study", **kwargs: Any) -> set[str]:
    """The unique keys of the entities a query at ``level`` matches."""
    key = UNIQUE[level]
    kwargs.setdefault(key, "")
    return {str(ds[key].value) for ds in find(index, level, model, **kwargs)}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Index]:
    """The index holding :func:`small_dataset`, one per backend for the whole module: every
    test here only reads it."""
    storage = tmp_path_factory.mktemp("query") / "storage"
    if request.param == "sqlite":
        index = Index(storage_dir=storage)
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        index = Index(cluster.create_schema(f"query_{os.getpid()}"), storage_dir=storage)
    try:
        index.add_many(
            (ds, storage / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm")
            for ds in small_dataset()
        )
        yield index
    finally:
        index.close()


# --- levels and models ---------------------------------------------------------------------


def test_level_of() -> None:
    assert level_of(identifier("SERIES"), "study") == "SERIES"
    assert level_of(identifier("PATIENT "), "patient") == "PATIENT"
    for bad, model in [("PATIENT", "study"), ("", "study"), ("FRAME", "patient")]:
        with pytest.raises(InvalidIdentifier) as info:
            level_of(identifier(bad), model)
        assert info.value.status == 0xA900
        assert info.value.offending == (0x00080052,)
    with pytest.raises(InvalidIdentifier):
        level_of(Dataset(), "study")
    with pytest.raises(ValueError, match="information model"):
        level_of(identifier("STUDY"), "worklist")


def test_patient_level(loaded: Index) -> None:
    [p1, p2, p3] = sorted(
        find(
            loaded, "PATIENT", "patient",
            PatientID="", PatientName="", PatientBirthDate="", PatientSex="",
            NumberOfPatientRelatedStudies="", NumberOfPatientRelatedSeries="",
            NumberOfPatientRelatedInstances="",
        ),
        key=lambda ds: ds.PatientID,
    )
    assert p1.PatientName == PersonName("Doe^John")
    assert (p1.PatientBirthDate, p1.PatientSex) == ("19700101", "M")
    assert (
        p1.NumberOfPatientRelatedStudies,
        p1.NumberOfPatientRelatedSeries,
        p1.NumberOfPatientRelatedInstances,
    ) == (2, 3, 6)
    assert (p2.PatientID, p2.NumberOfPatientRelatedInstances) == ("P2_%", 3)
    # values the index does not have are returned empty (C.4.1.1.3.2)
    assert (p3.PatientBirthDate, p3.PatientSex) == ("", "")
    assert p3.PatientName == "Müller^Jörg"
    assert p3.SpecificCharacterSet == "ISO_IR 192"
    assert "SpecificCharacterSet" not in p1
    assert {ds.QueryRetrieveLevel for ds in (p1, p2, p3)} == {"PATIENT"}


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"PatientID": "P1"}, {"P1"}),
        ({"PatientID": "P2_%"}, {"P2_%"}),  # _ and % are not wild cards
        ({"PatientID": "P2_*"}, {"P2_%"}),
        ({"PatientID": "P?"}, {"P1", "P3"}),
        ({"PatientID": "*"}, {"P1", "P2_%", "P3"}),
        ({"PatientName": "DOE^JOHN"}, {"P1"}),  # PN: case-insensitive
        ({"PatientName": "Smith^Anna"}, {"P2_%"}),  # trailing empty components
        ({"PatientName": "m*"}, {"P3"}),
        ({"PatientName": "*Jörg"}, {"P3"}),
        ({"PatientBirthDate": "1975-"}, {"P2_%", "P3"}),  # P3 has none: unknown matches
        ({"PatientBirthDate": "19700101"}, {"P1", "P3"}),
        ({"PatientSex": "F"}, {"P2_%", "P3"}),
        ({"PatientID": "P1\\P3"}, {"P1", "P3"}),  # several values: any
    ],
)
def test_patient_level_matching(loaded: Index, keys: dict[str, Any], expected: set[str]) -> None:
    found = uids(loaded, "PATIENT", "patient", **keys)
    assert found == expected


# --- STUDY level -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, {"1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"}),
        ({"StudyInstanceUID": "1.2.3.2"}, {"1.2.3.2"}),
        ({"StudyInstanceUID": ["1.2.3.1", "1.2.3.4", "9.9"]}, {"1.2.3.1", "1.2.3.4"}),
        ({"StudyDate": "20200102"}, {"1.2.3.1", "1.2.3.3", "1.2.3.4"}),
        ({"StudyDate": "20210101-"}, {"1.2.3.2", "1.2.3.4"}),
        ({"StudyDate": "-20200102"}, {"1.2.3.1", "1.2.3.3", "1.2.3.4"}),
        ({"StudyDate": "202001"}, {"1.2.3.1", "1.2.3.3", "1.2.3.4"}),
        ({"StudyTime": "0800-0900"}, {"1.2.3.3", "1.2.3.4"}),
        ({"StudyTime": "23"}, {"1.2.3.2", "1.2.3.4"}),
        ({"AccessionNumber": "A?"}, {"1.2.3.1", "1.2.3.2", "1.2.3.4"}),
        ({"AccessionNumber": "A[3]"}, {"1.2.3.3"}),  # [ is not special
        ({"AccessionNumber": "A[*"}, {"1.2.3.3"}),
        ({"StudyID": "S4"}, {"1.2.3.4"}),
        ({"StudyDescription": "chest*"}, {"1.2.3.3", "1.2.3.4"}),  # case-sensitive
        ({"StudyDescription": "*CT"}, {"1.2.3.1", "1.2.3.4"}),
        ({"ReferringPhysicianName": "house^gregory"}, {"1.2.3.1", "1.2.3.2", "1.2.3.3",
                                                       "1.2.3.4"}),
        # keys of the patient level: a Study Root query matches them at its top level
        ({"PatientName": "smith*"}, {"1.2.3.3"}),
        ({"PatientID": "P1"}, {"1.2.3.1", "1.2.3.2"}),
        # derived multi-valued attributes (C.3.4): any value matches
        ({"ModalitiesInStudy": "MR"}, {"1.2.3.1"}),
        ({"ModalitiesInStudy": ["SR", "US"]}, {"1.2.3.2", "1.2.3.3"}),
        ({"ModalitiesInStudy": "?T"}, {"1.2.3.1", "1.2.3.3", "1.2.3.4"}),
        ({"SOPClassesInStudy": SR}, {"1.2.3.3"}),
        # a key the index keeps only in its JSON copy
        ({"PatientAge": "050Y"}, {"1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"}),
    ],
)
def test_study_level_matching(loaded: Index, keys: dict[str, Any], expected: set[str]) -> None:
    assert uids(loaded, "STUDY", **keys) == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        # without the Query/Retrieve rule that unknown values match
        ({"StudyDate": "20200102"}, {"1.2.3.1", "1.2.3.3"}),
        ({"StudyTime": "0800-0900"}, {"1.2.3.3"}),
        ({"StudyDescription": "chest*"}, {"1.2.3.3"}),
        ({"ReferringPhysicianName": "house^gregory"}, {"1.2.3.1"}),
        ({"PatientAge": "050Y"}, {"1.2.3.1"}),
        ({"ModalitiesInStudy": "OT"}, {"1.2.3.4"}),
    ],
)
def test_study_level_matching_without_unknown_values(
    loaded: Index, keys: dict[str, Any], expected: set[str]
) -> None:
    assert uids(loaded, "STUDY", options=STRICT, **keys) == expected


def test_study_level_returns(loaded: Index) -> None:
    [study] = find(
        loaded, "STUDY",
        StudyInstanceUID="1.2.3.1", StudyDate="", StudyTime="", AccessionNumber="",
        ModalitiesInStudy="", SOPClassesInStudy="", NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances="", ReferringPhysicianName="", PatientAge="",
        ProcedureCodeSequence=Sequence(),
    )
    assert (study.StudyDate, study.StudyTime, study.AccessionNumber) == (
        "20200102", "101500", "A1"
    )
    assert isinstance(study["ModalitiesInStudy"].value, MultiValue)
    assert list(study.ModalitiesInStudy) == ["CT", "MR"]
    assert list(study.SOPClassesInStudy) == [CT, MR]
    assert (study.NumberOfStudyRelatedSeries, study.NumberOfStudyRelatedInstances) == (2, 5)
    assert study.ReferringPhysicianName == "House^Gregory"
    assert study.PatientAge == "050Y"
    assert study.ProcedureCodeSequence[0].CodeValue == "CTCHEST"
    assert study.QueryRetrieveLevel == "STUDY"
    assert "PatientID" not in study  # no level above STUDY in Study Root


def test_study_level_single_valued_list_attributes(loaded: Index) -> None:
    [study] = find(loaded, "STUDY", StudyInstanceUID="1.2.3.2", ModalitiesInStudy="")
    assert study.ModalitiesInStudy == "US"


def test_sequence_matching(loaded: Index) -> None:
    item = Dataset()
    item.CodeValue = "CTCHEST"
    item.CodeMeaning = ""
    key = Sequence([item])
    assert uids(loaded, "STUDY", options=STRICT, ProcedureCodeSequence=key) == {"1.2.3.1"}
    item.CodeValue = "OTHER"
    assert uids(loaded, "STUDY", options=STRICT, ProcedureCodeSequence=key) == set()
    [study] = find(
        loaded, "STUDY", StudyInstanceUID="1.2.3.1",
        ProcedureCodeSequence=Sequence([_item(CodeValue="CT*", CodeMeaning="")]),
    )
    [returned] = study.ProcedureCodeSequence
    assert set(returned.keys()) == {0x00080100, 0x00080104}  # the requested item keys only
    assert returned.CodeMeaning == "CT of the chest"


def _item(**keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_combined_date_time_matching(loaded: Index) -> None:
    keys = {"StudyDate": "20200102-20210315", "StudyTime": "090000-100000"}
    # separately: any day in the range, and a time of day between 9 and 10
    assert uids(loaded, "STUDY", options=STRICT, **keys) == set()
    # combined (C.2.2.2.5.4): from 2020-01-02 09:00 to 2021-03-15 10:00
    combined = attrs.evolve(STRICT, combined_datetime=True)
    assert uids(loaded, "STUDY", options=combined, **keys) == {"1.2.3.1"}
    unknown = attrs.evolve(QR_OPTIONS, combined_datetime=True)
    assert uids(loaded, "STUDY", options=unknown, **keys) == {"1.2.3.1", "1.2.3.4"}


def test_empty_value_matching(loaded: Index) -> None:
    options = attrs.evolve(QR_OPTIONS, empty_value_matching=True)
    assert uids(loaded, "STUDY", options=options, StudyDescription='""') == {"1.2.3.4"}
    assert uids(loaded, "STUDY", options=options, StudyDate='""') == {"1.2.3.4"}
    assert uids(loaded, "STUDY", options=options, PatientAge='""') == {
        "1.2.3.2", "1.2.3.3", "1.2.3.4"
    }
    assert uids(loaded, "STUDY", options=options, ModalitiesInStudy='""') == set()


def test_multiple_value_matching(loaded: Index) -> None:
    keys = {"ModalitiesInStudy": ["CT", "MR"]}
    assert uids(loaded, "STUDY", **keys) == {"1.2.3.1", "1.2.3.3"}
    options = attrs.evolve(QR_OPTIONS, multiple_value_matching=True)
    assert uids(loaded, "STUDY", options=options, **keys) == {"1.2.3.1"}


def test_invalid_keys_are_refused_before_any_row(loaded: Index) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        loaded.find(identifier("STUDY", StudyDate="2020-01-02-03"), "study")
    assert info.value.offending == (0x00080020,)
    assert "StudyDate" in info.value.comment


# --- Patient Root below PATIENT: hierarchical needs the unique keys above ------------------------


def test_patient_root_study_level(loaded: Index) -> None:
    found = find(loaded, "STUDY", "patient", PatientID="P1", StudyInstanceUID="")
    assert {ds.StudyInstanceUID for ds in found} == {"1.2.3.1", "1.2.3.2"}
    assert {ds.PatientID for ds in found} == {"P1"}  # the unique key above is returned
    for bad in ({}, {"PatientID": "P*"}, {"PatientID": "P1\\P2_%"}, {"PatientID": ""}):
        with pytest.raises(InvalidIdentifier) as info:
            find(loaded, "STUDY", "patient", StudyInstanceUID="", **bad)
        assert info.value.offending == (0x00100020,)
    # relational: no unique key needed above
    assert uids(loaded, "STUDY", "patient", relational=True, PatientName="doe*") == {
        "1.2.3.1", "1.2.3.2"
    }


def test_series_level(loaded: Index) -> None:
    found = find(
        loaded, "SERIES", StudyInstanceUID="1.2.3.1", SeriesInstanceUID="", Modality="",
        SeriesNumber="", SeriesDescription="", BodyPartExamined="",
        NumberOfSeriesRelatedInstances="",
    )
    by_uid = {ds.SeriesInstanceUID: ds for ds in found}
    assert set(by_uid) == {"1.2.3.1.1", "1.2.3.1.2"}
    ct = by_uid["1.2.3.1.1"]
    assert (ct.Modality, ct.SeriesNumber, ct.NumberOfSeriesRelatedInstances) == ("CT", 1, 3)
    assert ct.SeriesDescription == "CT series 1"
    assert ct.BodyPartExamined == "CHEST"
    assert ct.StudyInstanceUID == "1.2.3.1"
    for keys, expected in [
        ({"Modality": "CT"}, {"1.2.3.1.1"}),
        ({"SeriesNumber": "2"}, {"1.2.3.1.2"}),
        ({"SeriesNumber": "2.0"}, {"1.2.3.1.2"}),  # IS compares as a number
        ({"SeriesNumber": "2.5"}, set()),
        ({"SeriesDescription": "*series 1"}, {"1.2.3.1.1"}),
    ]:
        assert uids(loaded, "SERIES", StudyInstanceUID="1.2.3.1", **keys) == expected
    with pytest.raises(InvalidIdentifier):
        find(loaded, "SERIES", SeriesInstanceUID="")


def test_json_keys_at_series_level(loaded: Index) -> None:
    found = uids(loaded, "SERIES", StudyInstanceUID="1.2.3.3", BodyPartExamined="CHEST")
    assert found == {"1.2.3.3.1", "1.2.3.3.2"}  # the SR series has none: unknown matches
    strict = uids(
        loaded, "SERIES", StudyInstanceUID="1.2.3.3", options=STRICT, BodyPartExamined="CH*"
    )
    assert strict == {"1.2.3.3.1"}


def test_image_level(loaded: Index) -> None:
    base = {"StudyInstanceUID": "1.2.3.1", "SeriesInstanceUID": "1.2.3.1.1"}
    found = find(loaded, "IMAGE", SOPInstanceUID="", SOPClassUID="", InstanceNumber="", **base)
    assert sorted(ds.SOPInstanceUID for ds in found) == ["1.2.3.1.1.1", "1.2.3.1.1.2",
                                                         "1.2.3.1.1.3"]
    assert {(ds.StudyInstanceUID, ds.SeriesInstanceUID) for ds in found} == {
        ("1.2.3.1", "1.2.3.1.1")
    }
    assert {ds.SOPClassUID for ds in found} == {CT}
    assert uids(loaded, "IMAGE", InstanceNumber="2", **base) == {"1.2.3.1.1.2"}
    assert uids(loaded, "IMAGE", SOPInstanceUID=["1.2.3.1.1.1", "1.2.3.1.1.3"], **base) == {
        "1.2.3.1.1.1", "1.2.3.1.1.3"
    }
    with pytest.raises(InvalidIdentifier):  # the series is needed too
        find(loaded, "IMAGE", StudyInstanceUID="1.2.3.1", SOPInstanceUID="")


def test_patient_root_image_level_returns_every_unique_key_above(loaded: Index) -> None:
    [image] = find(
        loaded, "IMAGE", "patient",
        PatientID="P2_%", StudyInstanceUID="1.2.3.3", SeriesInstanceUID="1.2.3.3.2",
        SOPInstanceUID="",
    )
    assert (image.PatientID, image.StudyInstanceUID, image.SeriesInstanceUID) == (
        "P2_%", "1.2.3.3", "1.2.3.3.2"
    )
    assert image.SOPInstanceUID == "1.2.3.3.2.1"


# --- hierarchical vs relational vs strict --------------------------------------------------------


def test_hierarchical_ignores_keys_of_lower_levels(loaded: Index) -> None:
    found = find(loaded, "STUDY", StudyInstanceUID="", Modality="MR", SOPInstanceUID="x")
    assert len(found) == 4  # neither key constrains a study query
    assert all("Modality" not in ds and "SOPInstanceUID" not in ds for ds in found)


def test_hierarchical_matches_and_returns_other_keys_of_higher_levels(loaded: Index) -> None:
    found = find(loaded, "SERIES", StudyInstanceUID="1.2.3.3", StudyDescription="chest*",
                 SeriesInstanceUID="")
    assert len(found) == 2
    assert {ds.StudyDescription for ds in found} == {"chest ct"}


def test_strict_rejects_keys_of_other_levels(loaded: Index) -> None:
    for keys in ({"Modality": "MR"}, {"PatientName": "Doe"}):
        with pytest.raises(InvalidIdentifier) as info:
            find(loaded, "STUDY", "patient", PatientID="P1", StudyInstanceUID="", strict=True,
                 **keys)
        assert info.value.status == 0xA900
    # the unique key above is allowed, so are keys of the level
    assert len(find(loaded, "STUDY", "patient", PatientID="P1", StudyInstanceUID="",
                    StudyDate="", strict=True)) == 2


@pytest.mark.parametrize(
    ("level", "keys", "expected"),
    [
        ("SERIES", {"Modality": "CT"}, {"1.2.3.1.1", "1.2.3.3.1"}),
        ("SERIES", {"Modality": "CT", "PatientName": "doe*"}, {"1.2.3.1.1"}),
        ("SERIES", {"StudyDate": "2021"}, {"1.2.3.2.1"}),
        ("IMAGE", {"SOPClassUID": SR}, {"1.2.3.3.2.1"}),
        ("IMAGE", {"PatientID": "P3", "InstanceNumber": "2"}, {"1.2.3.4.1.2"}),
        ("IMAGE", {"BodyPartExamined": "HEAD"}, {"1.2.3.4.1.1", "1.2.3.4.1.2"}),
        ("IMAGE", {"AccessionNumber": "A2", "Modality": "US"}, {"1.2.3.2.1.1"}),
    ],
)
def test_relational(loaded: Index, level: str, keys: dict[str, Any], expected: set[str]) -> None:
    assert uids(loaded, level, relational=True, options=STRICT, **keys) == expected


def test_relational_returns_the_keys_of_every_level(loaded: Index) -> None:
    [series] = find(loaded, "SERIES", relational=True, SeriesInstanceUID="1.2.3.2.1",
                    PatientName="", StudyDate="", Modality="")
    assert (str(series.PatientName), series.StudyDate, series.Modality) == (
        "Doe^John", "20210315", "US"
    )
    assert series.StudyInstanceUID == "1.2.3.2"


def test_response_only_attributes(loaded: Index) -> None:
    found = list(
        loaded.find(
            identifier("STUDY", StudyInstanceUID="1.2.3.1", RetrieveAETitle="",
                       InstanceAvailability=""),
            retrieve_ae_title="PACS",
        )
    )
    assert [(ds.RetrieveAETitle, ds.InstanceAvailability) for ds in found] == [("PACS", "ONLINE")]
    [plain] = find(loaded, "STUDY", StudyInstanceUID="1.2.3.1", RetrieveAETitle="")
    assert plain.RetrieveAETitle == ""


def test_streaming_and_closing_releases_the_connection(loaded: Index) -> None:
    results = loaded.find(identifier("IMAGE", SOPInstanceUID=""), "study", relational=True,
                          batch_size=2)
    first = next(results)
    assert first.QueryRetrieveLevel == "IMAGE"
    results.close()  # a C-CANCEL
    assert loaded.engine.pool.checkedout() == 0
    assert len(list(loaded.find(identifier("IMAGE", SOPInstanceUID=""), relational=True,
                                batch_size=3))) == 11


# --- the SQL pre-filter agrees with the Python matcher ---------------------------------------

_KEY_VALUES: dict[str, list[Any]] = {
    "PatientID": ["P1", "P?", "P2_*", "*3", "P1\\P3"],
    "PatientName": ["doe^john", "SMITH*", "*ö*", "?oe*", "Smith^Anna\\Doe^John"],
    "PatientBirthDate": ["19700101", "1975-", "-19750101", "19800202-19800202"],
    "PatientSex": ["M", "F", "?"],
    "StudyDate": ["20200102", "2021", "20200101-20201231", "-20200102", "20210315-"],
    "StudyTime": ["10", "0800-1100", "2300", "101500-"],
    "AccessionNumber": ["A1", "A?", "A[*", "*3]", "A1\\A2"],
    "StudyDescription": ["chest*", "*CT", "Abdomen US", "*e*"],
    "Modality": ["CT", "MR", "?T", "CT\\SR", "S*"],
    "SeriesNumber": ["1", "2", "99", "1\\2"],
    "InstanceNumber": ["1", "2", "3"],
    "SOPClassUID": [CT, MR, SR, f"{CT}\\{SR}"],
    "BodyPartExamined": ["CHEST", "HEAD", "*A*"],
    "PatientAge": ["050Y", "0??Y"],
}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    keys=st.dictionaries(
        st.sampled_from(sorted(_KEY_VALUES)), st.integers(0, 4), min_size=1, max_size=3
    ),
    unknown=st.booleans(),
)
def test_sql_agrees_with_the_python_matcher(
    loaded: Index, keys: dict[str, int], unknown: bool
) -> None:
    """A relational IMAGE query over any keys: the index and matches() pick the same instances."""
    query = identifier("IMAGE", SOPInstanceUID="")
    for keyword, choice in keys.items():
        values = _KEY_VALUES[keyword]
        setattr(query, keyword, values[choice % len(values)])
    options = attrs.evolve(QR_OPTIONS, match_unknown=unknown)
    expected = {ds.SOPInstanceUID for ds in small_dataset() if matches(query, ds, options)}
    found = {ds.SOPInstanceUID for ds in loaded.find(query, relational=True, options=options)}
    assert found == expected


# --- retrieve plans ---------------------------------------------------------------------------


def retrieved(index: Index, level: str, model: str = "study", **kwargs: Any) -> list[str]:
    relational = kwargs.pop("relational", False)
    query = identifier(level, **kwargs)
    return [loc.sop_instance_uid for loc in index.instances_for(query, model,
                                                                  relational=relational)]


def test_retrieve_a_study(loaded: Index) -> None:
    locations = loaded.instances_for(identifier("STUDY", StudyInstanceUID="1.2.3.1"))
    assert [loc.sop_instance_uid for loc in locations] == [
        "1.2.3.1.1.1", "1.2.3.1.1.2", "1.2.3.1.1.3", "1.2.3.1.2.1", "1.2.3.1.2.2"
    ]  # series by series, in instance number order
    storage = loaded.storage_dir
    assert storage is not None
    assert locations[0].path == storage / "1.2.3.1" / "1.2.3.1.1.1.dcm"
    assert {loc.sop_class_uid for loc in locations} == {CT, MR}


def test_retrieve_at_each_level(loaded: Index) -> None:
    assert retrieved(loaded, "STUDY", StudyInstanceUID=["1.2.3.2", "1.2.3.4"]) == [
        "1.2.3.2.1.1", "1.2.3.4.1.1", "1.2.3.4.1.2"
    ]
    assert retrieved(loaded, "SERIES", StudyInstanceUID="1.2.3.3",
                     SeriesInstanceUID="1.2.3.3.2") == ["1.2.3.3.2.1"]
    assert retrieved(loaded, "IMAGE", StudyInstanceUID="1.2.3.1", SeriesInstanceUID="1.2.3.1.2",
                     SOPInstanceUID=["1.2.3.1.2.2", "1.2.3.1.2.1"]) == [
        "1.2.3.1.2.1", "1.2.3.1.2.2"
    ]
    assert retrieved(loaded, "PATIENT", "patient", PatientID="P2_%") == [
        "1.2.3.3.1.1", "1.2.3.3.1.2", "1.2.3.3.2.1"
    ]
    assert retrieved(loaded, "STUDY", "patient", PatientID="P1", StudyInstanceUID="1.2.3.2") == [
        "1.2.3.2.1.1"
    ]
    # unique keys that do not belong together designate nothing
    assert retrieved(loaded, "STUDY", "patient", PatientID="P3", StudyInstanceUID="1.2.3.2") == []
    assert retrieved(loaded, "STUDY", StudyInstanceUID="9.9.9") == []


def test_relational_retrieve_needs_only_the_level_key(loaded: Index) -> None:
    assert retrieved(loaded, "IMAGE", relational=True, SOPInstanceUID="1.2.3.3.2.1") == [
        "1.2.3.3.2.1"
    ]
    assert retrieved(loaded, "STUDY", "patient", relational=True, StudyInstanceUID="1.2.3.4") == [
        "1.2.3.4.1.1", "1.2.3.4.1.2"
    ]
    # a key given above must still be a single value
    with pytest.raises(InvalidIdentifier):
        retrieved(loaded, "SERIES", relational=True, StudyInstanceUID="1.2.3.*",
                  SeriesInstanceUID="1.2.3.3.1")


@pytest.mark.parametrize(
    ("level", "model", "keys", "offending"),
    [
        ("STUDY", "study", {}, 0x0020000D),
        ("STUDY", "study", {"StudyInstanceUID": ""}, 0x0020000D),
        ("STUDY", "study", {"StudyInstanceUID": "1.2.*"}, 0x0020000D),
        ("STUDY", "study", {"StudyInstanceUID": "1.2.3.1\\"}, 0x0020000D),
        ("SERIES", "study", {"SeriesInstanceUID": "1.2.3.1.1"}, 0x0020000D),
        ("IMAGE", "study", {"StudyInstanceUID": "1.2.3.1", "SOPInstanceUID": "1"}, 0x0020000E),
        ("STUDY", "patient", {"StudyInstanceUID": "1.2.3.1"}, 0x00100020),
        ("PATIENT", "patient", {"PatientID": "P*"}, 0x00100020),
        ("PATIENT", "study", {"PatientID": "P1"}, 0x00080052),
    ],
)
def test_retrieve_identifiers_that_break_the_rules(
    loaded: Index, level: str, model: str, keys: dict[str, Any], offending: int
) -> None:
    with pytest.raises(QueryError) as info:
        loaded.instances_for(identifier(level, **keys), model)
    assert info.value.status == 0xA900
    assert info.value.offending == (offending,)


def test_retrieve_level_given_apart(loaded: Index) -> None:
    query = Dataset()
    query.StudyInstanceUID = "1.2.3.2"
    assert [loc.sop_instance_uid for loc in loaded.instances_for(query, level="STUDY")] == [
        "1.2.3.2.1.1"
    ]
    with pytest.raises(InvalidIdentifier):
        loaded.instances_for(query, level="PATIENT")
