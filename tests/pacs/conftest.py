"""Fixtures of the PACS index tests: data sets, indexes on SQLite and PostgreSQL.

``index`` runs a test on both backends: a fresh SQLite index in ``tmp_path``,
and a fresh database in a private PostgreSQL cluster that the session starts
on a free loopback port (``pg_cluster``) and removes at the end.

Finding PostgreSQL: ``initdb`` and ``pg_ctl`` on ``PATH``, else the newest
``/usr/lib/postgresql/*/bin`` (where Debian's ``postgresql-NN`` packages put
them). Without them, or without the ``psycopg`` driver, the PostgreSQL tests
skip -- and fail when ``DICOMNET_REQUIRE_PEERS=1`` (CI).

``initdb`` refuses to run as root: when the tests run as root, the cluster
runs as ``nobody`` (``subprocess``'s ``user=``/``group=``), in a folder made
by ``tempfile.mkdtemp`` under the system temporary folder and owned by
``nobody`` (pytest's own ``tmp_path`` is private to root, so ``nobody``
could not reach it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from dicomnet.contrib.pacs import Index

REQUIRE_ENV = "DICOMNET_REQUIRE_PEERS"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SR = "1.2.840.10008.5.1.4.1.1.88.22"


def missing(reason: str) -> None:
    """Skip, or fail under ``DICOMNET_REQUIRE_PEERS=1``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)")
    pytest.skip(reason)


# --- data sets -----------------------------------------------------------------------


def make_instance(**attrs_: Any) -> Dataset:
    """A composite instance header: keyword=value, with sensible defaults."""
    ds = Dataset()
    defaults: dict[str, Any] = {
        "SOPClassUID": CT,
        "Modality": "CT",
    }
    for keyword, value in {**defaults, **attrs_}.items():
        if value is None:
            continue
        setattr(ds, keyword, value)
    return ds


@attrs.frozen
class Spec:
    """One instance of the small data set: patient, study, series, instance."""

    patient: dict[str, Any]
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]

    def dataset(self) -> Dataset:
        return make_instance(**self.patient, **self.study, **self.series, **self.instance)


def small_dataset() -> list[Dataset]:
    """3 patients, 4 studies, 6 series, 11 instances, with the edge cases tests need."""
    p1 = {
        "PatientID": "P1",
        "PatientName": "Doe^John",
        "PatientBirthDate": "19700101",
        "PatientSex": "M",
    }
    p2 = {
        "PatientID": "P2_%",
        "PatientName": "Smith^Anna^^^",
        "PatientBirthDate": "19800202",
        "PatientSex": "F",
    }
    p3 = {"PatientID": "P3", "PatientName": "Müller^Jörg", "SpecificCharacterSet": "ISO_IR 192"}
    s1 = {
        "StudyInstanceUID": "1.2.3.1",
        "StudyDate": "20200102",
        "StudyTime": "101500",
        "AccessionNumber": "A1",
        "StudyID": "S1",
        "StudyDescription": "Chest CT",
        "ReferringPhysicianName": "House^Gregory",
        "PatientAge": "050Y",
    }
    s2 = {
        "StudyInstanceUID": "1.2.3.2",
        "StudyDate": "20210315",
        "StudyTime": "2300",
        "AccessionNumber": "A2",
        "StudyID": "S2",
        "StudyDescription": "Abdomen US",
    }
    s3 = {
        "StudyInstanceUID": "1.2.3.3",
        "StudyDate": "20200102",
        "StudyTime": "080000.25",
        "AccessionNumber": "A[3]",
        "StudyID": "S3",
        "StudyDescription": "chest ct",
    }
    s4 = {"StudyInstanceUID": "1.2.3.4", "AccessionNumber": "A4", "StudyID": "S4"}
    specs: list[Spec] = []

    def add(
        patient: dict[str, Any],
        study: dict[str, Any],
        series_uid: str,
        modality: str,
        number: int,
        n: int,
        **extra: Any,
    ) -> None:
        series = {
            "SeriesInstanceUID": series_uid,
            "Modality": modality,
            "SeriesNumber": number,
            "SeriesDescription": f"{modality} series {number}",
            "BodyPartExamined": extra.pop("BodyPartExamined", "CHEST"),
        }
        for i in range(1, n + 1):
            instance = {
                "SOPInstanceUID": f"{series_uid}.{i}",
                "InstanceNumber": i,
                "SOPClassUID": extra.get("SOPClassUID", CT if modality == "CT" else MR),
            }
            specs.append(Spec(patient, study, series, instance))

    add(p1, s1, "1.2.3.1.1", "CT", 1, 3)
    add(p1, s1, "1.2.3.1.2", "MR", 2, 2, SOPClassUID=MR)
    add(p1, s2, "1.2.3.2.1", "US", 1, 1, BodyPartExamined="ABDOMEN")
    add(p2, s3, "1.2.3.3.1", "CT", 1, 2)
    add(p2, s3, "1.2.3.3.2", "SR", 99, 1, SOPClassUID=SR, BodyPartExamined=None)
    add(p3, s4, "1.2.3.4.1", "OT", 1, 2, BodyPartExamined="HEAD")
    datasets = [spec.dataset() for spec in specs]
    # a study-level sequence, kept in the JSON copy only
    code = Dataset()
    code.CodeValue = "CTCHEST"
    code.CodingSchemeDesignator = "99TEST"
    code.CodeMeaning = "CT of the chest"
    for ds in datasets:
        if ds.StudyInstanceUID == "1.2.3.1":
            ds.ProcedureCodeSequence = Sequence([code])
    return datasets


def write_part10(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a Part 10 file (Explicit VR Little Endian) with fake pixels."""
    ds = ds.copy()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.SamplesPerPixel = 1
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(16)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# --- PostgreSQL ----------------------------------------------------------------------


def find_pg_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: PATH, else /usr/lib/postgresql/*/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    for initdb_path in reversed(candidates):
        folder = Path(initdb_path).parent
        if (folder / "pg_ctl").exists():
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.frozen
class PgCluster:
    host: str
    port: int
    datadir: Path

    def url(self, database: str, schema: str | None = None) -> str:
        url = f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"
        if schema is not None:  # libpq's options: every connection works in that schema
            url += f"?options=-csearch_path%3D{schema}"
        return url

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, name: str) -> str:
        """A fresh schema in the ``postgres`` database, and a URL working in it (much
        faster than a database per test)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return self.url("postgres", name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL cluster for the session; removed at the end."""
    bindir = find_pg_bin()
    if bindir is None:
        missing(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
            "/usr/lib/postgresql/*/bin: apt-get install postgresql"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("the psycopg driver is not installed: pip install 'dicomnet[postgresql]'")
    assert bindir is not None
    as_root = os.geteuid() == 0
    run_as: dict[str, Any] = {}
    if as_root:
        run_as = {"user": "nobody", "group": "nogroup" if _group_exists("nogroup") else "nobody"}
    datadir_parent = Path(tempfile.mkdtemp(prefix="dicomnet-pg-"))
    datadir = datadir_parent / "data"
    log = datadir_parent / "server.log"
    if as_root:
        shutil.chown(datadir_parent, run_as["user"], run_as["group"])
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    port = free_port()
    started = False
    try:
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            env=env,
            cwd=datadir_parent,
            timeout=120,
            **run_as,
        )
        options = (
            f"-p {port} -k {datadir_parent} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            check=True,
            capture_output=True,
            env=env,
            cwd=datadir_parent,
            timeout=90,
            **run_as,
        )
        started = True
        yield PgCluster("127.0.0.1", port, datadir)
    except subprocess.CalledProcessError as exc:
        server_log = log.read_text(errors="replace") if log.exists() else ""
        pytest.fail(f"cannot start PostgreSQL: {exc}\n{exc.stdout!r}\n{exc.stderr!r}\n{server_log}")
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    [str(bindir / "pg_ctl"), "-D", str(datadir), "stop", "-m", "immediate", "-w"],
                    check=False,
                    capture_output=True,
                    env=env,
                    cwd=datadir_parent,
                    timeout=60,
                    **run_as,
                )
        shutil.rmtree(datadir_parent, ignore_errors=True)


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


_db_counter = iter(range(1, 1_000_000))


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty schema in the session's cluster (as good as a database for an index)."""
    return pg_cluster.create_schema(f"pacs_{os.getpid()}_{next(_db_counter)}")


# --- indexes ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def index(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Index]:
    """An empty index on each backend, with ``tmp_path / "storage"`` as storage folder."""
    storage = tmp_path / "storage"
    if backend == "sqlite":
        idx = Index(storage_dir=storage)
    else:
        idx = Index(request.getfixturevalue("pg_url"), storage_dir=storage)
    try:
        yield idx
    finally:
        idx.close()


@pytest.fixture
def loaded(index: Index) -> Index:
    """The index holding :func:`small_dataset`."""
    storage = index.storage_dir
    assert storage is not None
    index.add_many(
        (ds, storage / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm") for ds in small_dataset()
    )
    return index
