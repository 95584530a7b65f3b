"""The PACS index (dicomnet.contrib.pacs.index): ingest, replacement, removal, rescan,
engines and concurrent writers, on SQLite and PostgreSQL (PS3.4 C.6.1.1, C.6.2.1)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import select, text

from dicomnet.contrib.pacs import Index, NotAnInstance
from dicomnet.contrib.pacs.index import (
    INSTANCE,
    PATIENT,
    SERIES,
    STUDY,
    database_url,
    json_copy,
    make_engine,
)

from .conftest import CT, MR, make_instance, small_dataset, write_part10

# Keys such as "M*" are not valid CS values: pydicom says so when they are set.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")


def instance(n: int = 1, **attrs: Any) -> Dataset:
    """Instance ``n`` of series 1.9.1.1 of study 1.9.1 of patient PX, with overrides."""
    values: dict[str, Any] = {
        "PatientID": "PX",
        "PatientName": "Test^Pat",
        "StudyInstanceUID": "1.9.1",
        "SeriesInstanceUID": "1.9.1.1",
        "SOPInstanceUID": f"1.9.1.1.{n}",
        "InstanceNumber": n,
        "StudyDate": "20240102",
    }
    values.update(attrs)
    return make_instance(**values)


def rows(index: Index, table: Any, *columns: str) -> list[tuple[Any, ...]]:
    with index.engine.connect() as conn:
        cols = [table.c[c] for c in columns]
        return [tuple(r) for r in conn.execute(select(*cols).order_by(*cols))]


def add(index: Index, ds: Dataset, name: str | None = None) -> Any:
    storage = index.storage_dir
    assert storage is not None
    return index.add(ds, storage / (name or f"{ds.SOPInstanceUID}.dcm"))


# --- ingest ---------------------------------------------------------------------------


def test_add_a_file_reads_its_header(index: Index) -> None:
    storage = index.storage_dir
    assert storage is not None
    path = write_part10(instance(1), storage / "a" / "one.dcm")
    result = index.add(path)
    assert result.path == "a/one.dcm"  # relative to the storage folder, POSIX separators
    assert result.sop_instance_uid == "1.9.1.1.1"
    assert result.sop_class_uid == CT
    assert result.transfer_syntax_uid == ExplicitVRLittleEndian
    assert result.size == path.stat().st_size
    assert not result.replaced and result.previous_path is None
    assert index.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 1}
    image = _retrieve("IMAGE", SOPInstanceUID="1.9.1.1.1")
    [location] = index.instances_for(image, relational=True)
    assert location.path == path  # resolved against the storage folder
    assert location.transfer_syntax_uid == ExplicitVRLittleEndian


def test_a_file_outside_the_storage_folder_is_kept_absolute(index: Index, tmp_path: Path) -> None:
    path = write_part10(instance(1), tmp_path / "elsewhere" / "x.dcm")
    result = index.add(path)
    assert result.path == path.resolve().as_posix()
    image = _retrieve("IMAGE", SOPInstanceUID="1.9.1.1.1")
    assert index.instances_for(image, relational=True)[0].path == path


def test_add_a_dataset_needs_its_path(index: Index) -> None:
    with pytest.raises(TypeError):
        index.add(instance(1))


@pytest.mark.parametrize("missing", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_an_instance_without_its_uids_is_refused(index: Index, missing: str) -> None:
    ds = instance(1)
    delattr(ds, missing)
    with pytest.raises(NotAnInstance, match=missing):
        add(index, ds, "x.dcm")
    assert index.counts()["instances"] == 0


def test_columns_hold_normalised_values(index: Index) -> None:
    ds = instance(
        1,
        PatientName="Doe^John^^^ ",
        PatientID=" P1 ",
        IssuerOfPatientID="HOSP",
        PatientBirthDate="1970.01.02",  # ACR-NEMA form
        PatientSex="M",
        StudyTime="10:15:30",
        AccessionNumber="ACC ",
        ReferringPhysicianName="House^Gregory",
        SeriesNumber="7",
        Modality="MR",
    )
    add(index, ds)
    assert rows(
        index, PATIENT, "patient_id", "issuer_of_patient_id", "patient_name_key",
        "patient_birth_date", "patient_sex",
    ) == [("P1", "HOSP", "doe^john", "19700102", "M")]
    assert rows(index, STUDY, "study_time", "study_time_key", "accession_number") == [
        ("10:15:30", "101530.000000", "ACC")
    ]
    assert rows(index, SERIES, "modality", "series_number") == [("MR", 7)]


def test_unparsable_values_are_kept_out_of_the_columns(index: Index) -> None:
    ds = instance(1, StudyDate="yesterday", StudyTime="noon")
    # an IS pydicom cannot convert: kept raw, as a file would hold it
    ds[0x00200011] = RawDataElement(Tag(0x00200011), "IS", 2, b"x ", 0, False, True)
    add(index, ds)
    assert rows(index, STUDY, "study_date", "study_time", "study_time_key") == [
        (None, "noon", None)
    ]
    assert rows(index, SERIES, "series_number") == [(None,)]


def test_json_copy_leaves_out_bulk_data_and_meta() -> None:
    ds = instance(1)
    ds.add_new(0x7FE00010, "OB", bytes(4096))
    ds.add_new(0x00091010, "OB", bytes(8))  # small binary value: kept
    ds.add_new(0x00091011, "OB", bytes(2000))  # large: dropped
    ds.SpecificCharacterSet = "ISO_IR 100"
    copy = json_copy(ds)
    assert "7FE00010" not in copy
    assert "00091010" in copy and "00091011" not in copy
    assert "00080005" not in copy
    assert copy["00100020"] == {"vr": "LO", "Value": ["PX"]}


# --- duplicates and replacement -------------------------------------------------------


def test_the_same_instance_again_replaces_its_row(index: Index) -> None:
    first = add(index, instance(1, SeriesDescription="first"))
    again = add(index, instance(1, SeriesDescription="second"), "other.dcm")
    assert not first.replaced
    assert again.replaced and again.previous_path == "1.9.1.1.1.dcm"
    assert again.path == "other.dcm"
    assert index.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 1}
    assert rows(index, SERIES, "series_description") == [("second",)]
    assert rows(index, INSTANCE, "path") == [("other.dcm",)]


def test_a_later_instance_updates_its_parents_but_does_not_erase_values(index: Index) -> None:
    add(index, instance(1, PatientSex="F", StudyDescription="Chest"))
    add(index, instance(2, PatientName="Test^Pat^Renamed", PatientSex=None, StudyDescription=None))
    assert rows(index, PATIENT, "patient_name", "patient_sex") == [("Test^Pat^Renamed", "F")]
    assert rows(index, STUDY, "study_description") == [("Chest",)]


def test_an_instance_that_moves_takes_its_emptied_parents_away(index: Index) -> None:
    add(index, instance(1))
    add(index, instance(2))
    # instance 2 now says it belongs to another series of another study of another patient
    moved = add(index, instance(2, PatientID="PY", StudyInstanceUID="1.9.2",
                                SeriesInstanceUID="1.9.2.1"), "moved.dcm")
    assert moved.replaced and moved.previous_path == "1.9.1.1.2.dcm"
    assert index.counts() == {"patients": 2, "studies": 2, "series": 2, "instances": 2}
    # and instance 1 follows: the old series, study and patient are left empty
    add(index, instance(1, PatientID="PY", StudyInstanceUID="1.9.2", SeriesInstanceUID="1.9.2.1"))
    assert index.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 2}
    assert rows(index, PATIENT, "patient_id") == [("PY",)]


def test_a_series_that_moves_to_another_study(index: Index) -> None:
    add(index, instance(1))
    add(index, instance(2, StudyInstanceUID="1.9.2"))  # same series UID, another study
    assert rows(index, STUDY, "study_instance_uid") == [("1.9.2",)]
    assert index.counts()["series"] == 1


def test_a_study_that_moves_to_another_patient(index: Index) -> None:
    add(index, instance(1))
    add(index, instance(2, PatientID="PZ"))  # the study now belongs to PZ
    assert rows(index, PATIENT, "patient_id") == [("PZ",)]
    assert index.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 2}


def test_issuer_of_patient_id_makes_another_patient(index: Index) -> None:
    add(index, instance(1, IssuerOfPatientID="A"))
    add(index, instance(1, StudyInstanceUID="1.9.2", SeriesInstanceUID="1.9.2.1",
                        SOPInstanceUID="1.9.2.1.1", IssuerOfPatientID="B"))
    assert rows(index, PATIENT, "patient_id", "issuer_of_patient_id") == [
        ("PX", "A"),
        ("PX", "B"),
    ]


def test_add_many_in_batches_with_duplicates_and_moves(index: Index) -> None:
    storage = index.storage_dir
    assert storage is not None
    datasets = [instance(n) for n in range(1, 8)]
    datasets.append(instance(3, SeriesDescription="again"))  # duplicate in the same batch
    datasets.append(instance(4, SeriesInstanceUID="1.9.1.2"))  # moves within the batch
    results = index.add_many(
        ((ds, storage / f"{ds.SOPInstanceUID}-{i}.dcm") for i, ds in enumerate(datasets)),
        batch_size=3,
    )
    assert [r.replaced for r in results] == [False] * 7 + [True, True]
    assert index.counts() == {"patients": 1, "studies": 1, "series": 2, "instances": 7}
    assert rows(index, SERIES, "series_instance_uid") == [("1.9.1.1",), ("1.9.1.2",)]


def test_add_many_takes_files(index: Index) -> None:
    storage = index.storage_dir
    assert storage is not None
    paths = [write_part10(instance(n), storage / f"{n}.dcm") for n in (1, 2)]
    assert [r.path for r in index.add_many(paths)] == ["1.dcm", "2.dcm"]


# --- removal ----------------------------------------------------------------------------


def test_remove_prunes_emptied_parents(loaded: Index) -> None:
    assert loaded.remove("1.2.3.2.1.1") == "1.2.3.2/1.2.3.2.1.1.dcm"  # the only one of study 2
    assert loaded.counts() == {"patients": 3, "studies": 3, "series": 5, "instances": 10}
    for uid in ("1.2.3.4.1.1", "1.2.3.4.1.2"):  # patient 3's whole study
        assert loaded.remove(uid) is not None
    assert loaded.counts() == {"patients": 2, "studies": 2, "series": 4, "instances": 8}
    assert loaded.remove("1.2.3.4.1.1") is None
    assert loaded.remove("no.such.uid") is None


# --- rescan -----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Expected implicit VR")
def test_rescan_indexes_what_a_crash_left_and_drops_what_is_gone(index: Index) -> None:
    storage = index.storage_dir
    assert storage is not None
    indexed = write_part10(instance(1), storage / "s" / "1.dcm")
    index.add(indexed)
    gone = write_part10(instance(2), storage / "s" / "2.dcm")
    index.add(gone)
    gone.unlink()
    orphan = write_part10(instance(3), storage / "s" / "3.dcm")  # stored, never indexed
    changed = write_part10(instance(4), storage / "s" / "4.dcm")
    index.add(changed)
    write_part10(instance(4, SeriesDescription="a longer description"), changed)
    (storage / "s" / "junk.dcm").write_bytes(b"not DICOM")
    (storage / "notes.txt").write_text("ignored")
    write_part10(instance(5), storage / ".incoming" / "5.dcm")  # hidden folder: ignored

    report = index.rescan(prune=True)
    assert sorted(report.added) == ["s/3.dcm", "s/4.dcm"]
    assert report.failed == ("s/junk.dcm",)
    assert report.removed == ("s/2.dcm",)
    assert rows(index, INSTANCE, "sop_instance_uid") == [
        ("1.9.1.1.1",), ("1.9.1.1.3",), ("1.9.1.1.4",)
    ]
    assert rows(index, SERIES, "series_description") == [("a longer description",)]
    assert orphan.exists()
    # nothing more to do the second time
    assert index.rescan(prune=True).added == ()


def test_rescan_needs_a_storage_folder(tmp_path: Path) -> None:
    with Index(f"sqlite:///{tmp_path / 'i.sqlite'}") as index, pytest.raises(ValueError):
        index.rescan()


# --- engines and URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:////tmp/x.sqlite", "sqlite:////tmp/x.sqlite"),
    ],
)
def test_database_url(url: str, expected: str) -> None:
    assert database_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("mode", ["NORMAL", "full"])
def test_sqlite_pragmas(tmp_path: Path, mode: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}", synchronous=mode)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            synchronous = conn.execute(text("PRAGMA synchronous")).scalar()
            assert synchronous == {"NORMAL": 1, "FULL": 2}[mode.upper()]
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_synchronous_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}", synchronous="sometimes")


def test_index_needs_a_url_or_a_folder() -> None:
    with pytest.raises(ValueError):
        Index()


def test_schema_creation_is_idempotent(index: Index) -> None:
    index.create_schema()
    index.create_schema()
    with index.engine.connect() as conn:
        version = conn.execute(text("SELECT value FROM pacs_meta WHERE name = 'schema_version'"))
        assert version.scalar() == "1"


# --- concurrent writers -------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    from pydicom.dataset import Dataset
    from dicomnet.contrib.pacs import Index

    url, storage, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    index = Index(url if url != "-" else None, storage_dir=storage, busy_timeout=30)
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    sys.stdin.readline()  # start together
    for n in range(count):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        # both workers write the same patients, studies and series, and every
        # third instance is written by both
        ds.PatientID = f"P{n % 3}"
        ds.PatientName = f"Name^{worker}"
        ds.StudyInstanceUID = f"1.8.{n % 3}"
        ds.SeriesInstanceUID = f"1.8.{n % 3}.{n % 2}"
        ds.SOPInstanceUID = f"1.8.{n % 3}.{n % 2}.{n}" + ("" if n % 3 == 0 else f".{worker}")
        ds.Modality = "CT"
        index.add(ds, f"{storage}/{worker}-{n}.dcm")
    index.close()
    """
)


def _writers(url: str, storage: Path, count: int) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(storage), worker, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in ("a", "b")
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n", proc.communicate()[1]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _expected_counts(count: int) -> dict[str, int]:
    shared = len([n for n in range(count) if n % 3 == 0])
    return {"patients": 3, "studies": 3, "series": 6, "instances": 2 * count - shared}


def test_two_processes_write_one_sqlite_index(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    Index(storage_dir=storage).close()  # the schema exists before they start
    _writers("-", storage, 60)
    with Index(storage_dir=storage) as index:
        assert index.counts() == _expected_counts(60)


def test_two_processes_write_one_postgresql_index(pg_url: str, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    # no schema yet: both create it (an advisory lock serialises them)
    _writers(pg_url, storage, 60)
    with Index(pg_url, storage_dir=storage) as index:
        assert index.counts() == _expected_counts(60)


def _retrieve(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_small_dataset_is_what_the_query_tests_expect(loaded: Index) -> None:
    assert loaded.counts() == {"patients": 3, "studies": 4, "series": 6, "instances": 11}
    assert len(small_dataset()) == 11
    assert {r[0] for r in rows(loaded, INSTANCE, "sop_class_uid")} == {
        CT, MR, "1.2.840.10008.5.1.4.1.1.88.22"
    }


def test_index_is_usable_from_many_threads(loaded: Index) -> None:
    import threading

    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(10):
                assert len(list(loaded.find(_retrieve("STUDY", StudyInstanceUID="")))) in (4, 5)
                add(loaded, instance(worker * 100 + n))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert loaded.counts() == {"patients": 4, "studies": 5, "series": 7, "instances": 51}
