"""The PACS index: a database of the stored instances (PS3.4 C.6.1.1, C.6.2.1).

Four tables follow the Patient Root information model (PS3.4 C.3.1):
``pacs_patient`` 1-n ``pacs_study`` 1-n ``pacs_series`` 1-n ``pacs_instance``.
Their columns are the unique and required keys of both Query/Retrieve
information models at every level, and the optional keys that are cheap and
common (the table is in docs/pacs_index.md). Every instance row also keeps a
DICOM JSON (PS3.18 F.2) copy of the instance's attributes without bulk data,
so that any other attribute can be matched and returned: SQL pre-filters on
the columns, Python (:mod:`.matching`) filters on the JSON copy.

Ingest (:meth:`Index.add`) reads only the header of a file (it stops before
Pixel Data), and is idempotent on SOP Instance UID: receiving an instance
again replaces its row, and moves it if its series, study or patient changed;
series, studies and patients left empty are deleted in the same transaction.
Patient, study and series attributes are those of the last instance received
for them, except that a value missing from a later instance does not erase a
known one.

Several writers, in several processes or on several machines, may share one
index. On SQLite (the default: ``index.sqlite`` in the storage folder) the
database runs in WAL mode -- readers never block the writer -- and every write
transaction starts with ``BEGIN IMMEDIATE`` so that writers queue on SQLite's
lock (with a busy timeout) instead of failing when they upgrade a read lock.
On PostgreSQL (``postgresql+psycopg://...``) rows are written with ``INSERT
... ON CONFLICT DO UPDATE``, which is atomic under concurrent inserts of the
same UID. On both, a transaction that loses a race (a deadlock, a lock
timeout, a parent deleted under it) is retried from the start.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    exists,
    func,
    select,
    text,
)
from sqlalchemy import (
    Index as SQLIndex,
)
from sqlalchemy.dialects import postgresql as _pg
from sqlalchemy.dialects import sqlite as _sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .matching import (
    QR_OPTIONS,
    MatchOptions,
    format_da,
    format_tm,
    normalize_pn,
    normalize_text,
    parse_da,
    parse_tm,
)

if TYPE_CHECKING:
    from .query import InstanceLocation

__all__ = [
    "SCHEMA_VERSION",
    "AddResult",
    "Base",
    "Index",
    "Instance",
    "NotAnInstance",
    "Patient",
    "RescanReport",
    "Series",
    "Study",
    "database_url",
    "make_engine",
]

LOGGER = logging.getLogger("dicomnet.pacs")

#: version of the schema below, stored in ``pacs_meta``
SCHEMA_VERSION: Final = 1

_T = TypeVar("_T")

# --- schema ---------------------------------------------------------------------------


class Base(DeclarativeBase):
    """Declarative base of the index tables."""

    type_annotation_map = {  # noqa: RUF012 -- SQLAlchemy's documented class attribute
        dict[str, Any]: JSON().with_variant(_pg.JSONB(), "postgresql"),
        str: String(),
    }


class Meta(Base):
    """``name -> value`` facts about the index (``schema_version``)."""

    __tablename__ = "pacs_meta"

    name: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[str]


class Patient(Base):
    """Patient level (PS3.4 C.6.1.1.2). Unique on Patient ID and Issuer of Patient ID."""

    __tablename__ = "pacs_patient"
    __table_args__ = (
        UniqueConstraint("patient_id", "issuer_of_patient_id", name="uq_pacs_patient"),
        SQLIndex("ix_pacs_patient_name", "patient_name_key"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Patient ID (0010,0020); "" when the instances have none
    patient_id: Mapped[str] = mapped_column(default="")
    #: Issuer of Patient ID (0010,0021); "" when absent
    issuer_of_patient_id: Mapped[str] = mapped_column(default="")
    #: Patient's Name (0010,0010) as received, and normalised for matching
    patient_name: Mapped[str | None]
    patient_name_key: Mapped[str | None]
    #: Patient's Birth Date (0010,0030), YYYYMMDD
    patient_birth_date: Mapped[str | None]
    #: Patient's Sex (0010,0040)
    patient_sex: Mapped[str | None]


class Study(Base):
    """Study level (PS3.4 C.6.1.1.3, C.6.2.1.2)."""

    __tablename__ = "pacs_study"
    __table_args__ = (
        SQLIndex("ix_pacs_study_patient", "patient_pk"),
        SQLIndex("ix_pacs_study_date", "study_date"),
        SQLIndex("ix_pacs_study_accession", "accession_number"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("pacs_patient.pk"))
    #: Study Instance UID (0020,000D)
    study_instance_uid: Mapped[str] = mapped_column(unique=True)
    #: Study Date (0008,0020), YYYYMMDD
    study_date: Mapped[str | None]
    #: Study Time (0008,0030) as received, and its start as HHMMSS.FFFFFF
    study_time: Mapped[str | None]
    study_time_key: Mapped[str | None]
    #: Accession Number (0008,0050)
    accession_number: Mapped[str | None]
    #: Study ID (0020,0010)
    study_id: Mapped[str | None]
    #: Referring Physician's Name (0008,0090) as received, and normalised
    referring_physician_name: Mapped[str | None]
    referring_physician_name_key: Mapped[str | None]
    #: Study Description (0008,1030)
    study_description: Mapped[str | None]


class Series(Base):
    """Series level (PS3.4 C.6.1.1.4)."""

    __tablename__ = "pacs_series"
    __table_args__ = (SQLIndex("ix_pacs_series_study", "study_pk"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("pacs_study.pk"))
    #: Series Instance UID (0020,000E)
    series_instance_uid: Mapped[str] = mapped_column(unique=True)
    #: Modality (0008,0060)
    modality: Mapped[str | None]
    #: Series Number (0020,0011)
    series_number: Mapped[int | None] = mapped_column(BigInteger)
    #: Series Description (0008,103E)
    series_description: Mapped[str | None]


class Instance(Base):
    """Composite object instance level (PS3.4 C.6.1.1.5), and where the file is."""

    __tablename__ = "pacs_instance"
    __table_args__ = (SQLIndex("ix_pacs_instance_series", "series_pk"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("pacs_series.pk"))
    #: SOP Instance UID (0008,0018)
    sop_instance_uid: Mapped[str] = mapped_column(unique=True)
    #: SOP Class UID (0008,0016)
    sop_class_uid: Mapped[str]
    #: Instance Number (0020,0013)
    instance_number: Mapped[int | None] = mapped_column(BigInteger)
    #: the file, relative to the storage folder when inside it (POSIX separators)
    path: Mapped[str]
    #: Transfer Syntax UID (0002,0010) of the file
    transfer_syntax_uid: Mapped[str | None]
    #: size of the file in bytes
    size: Mapped[int | None] = mapped_column(BigInteger)
    #: when the row was last written (UTC)
    stored_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True))
    #: DICOM JSON (PS3.18 F.2) of the attributes, without bulk data
    attrs: Mapped[dict[str, Any]]


PATIENT: Final[Table] = Patient.__table__  # type: ignore[assignment]
STUDY: Final[Table] = Study.__table__  # type: ignore[assignment]
SERIES: Final[Table] = Series.__table__  # type: ignore[assignment]
INSTANCE: Final[Table] = Instance.__table__  # type: ignore[assignment]

# --- reading instances ----------------------------------------------------------------

#: binary VRs whose values are bulk data and stay out of the JSON copy when large
_BULK_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"})
#: largest binary value kept in the JSON copy, in bytes
BULK_THRESHOLD: Final = 1024
#: groups never kept: File Meta (0002), Pixel Data (7FE0), signatures and padding
_SKIPPED_GROUPS: Final = frozenset({0x0002, 0x7FE0, 0xFFFA, 0xFFFC})


class NotAnInstance(ValueError):
    """A data set without the UIDs of a composite instance (SOP Instance, Study, Series)."""


def _element_value(ds: Dataset, tag: int) -> Any:
    try:
        elem = ds.get(tag)
    except Exception:
        return None
    return None if elem is None else elem.value


def _text(ds: Dataset, tag: int, vr: str) -> str | None:
    value = _element_value(ds, tag)
    if value is None:
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    text_value = normalize_text(str(value), vr)
    return text_value or None


def _pn(ds: Dataset, tag: int) -> tuple[str | None, str | None]:
    raw = _text(ds, tag, "PN")
    if raw is None:
        return None, None
    return raw, normalize_pn(raw) or None


def _da(ds: Dataset, tag: int) -> str | None:
    raw = _text(ds, tag, "DA")
    if raw is None:
        return None
    try:
        return format_da(parse_da(raw.split("\\")[0])[0])
    except ValueError:
        return None


def _tm(ds: Dataset, tag: int) -> tuple[str | None, str | None]:
    raw = _text(ds, tag, "TM")
    if raw is None:
        return None, None
    try:
        return raw, format_tm(parse_tm(raw.split("\\")[0])[0])
    except ValueError:
        return raw, None


def _int(ds: Dataset, tag: int) -> int | None:
    value = _element_value(ds, tag)
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip(" "))
    except ValueError:
        try:
            number = float(str(value))
        except ValueError:
            return None
        return int(number) if number.is_integer() else None


def _strip_bulk(ds: Dataset) -> Dataset:
    """A shallow copy of ``ds`` without bulk data, File Meta, Specific Character Set."""
    out = Dataset()
    for tag in list(ds.keys()):
        if tag.group in _SKIPPED_GROUPS or tag == 0x00080005 or tag.element == 0:
            continue
        try:
            elem = ds[tag]
        except Exception:
            continue
        vr = str(elem.VR)
        if vr == "SQ":
            items = [_strip_bulk(item) for item in elem.value or ()]
            out.add_new(tag, "SQ", Sequence(items))
            continue
        if vr in _BULK_VRS and elem.value is not None:
            try:
                size = len(elem.value)
            except TypeError:
                continue
            if size > BULK_THRESHOLD:
                continue
        out[tag] = elem
    return out


def json_copy(ds: Dataset) -> dict[str, Any]:
    """The DICOM JSON (PS3.18 F.2) copy the index keeps of an instance."""
    stripped = _strip_bulk(ds)
    try:
        return stripped.to_json_dict(BULK_THRESHOLD, None, suppress_invalid_tags=True)
    except Exception:
        out: dict[str, Any] = {}
        for elem in stripped:
            try:
                out[f"{int(elem.tag):08X}"] = elem.to_json_dict(None, BULK_THRESHOLD)
            except Exception:
                continue
        return out


@attrs.frozen
class _Record:
    """Column values of one instance and its parents, computed before the transaction."""

    patient: dict[str, Any]
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]


def _record(ds: Dataset, path: str, transfer_syntax: str | None, size: int | None) -> _Record:
    sop_uid = _text(ds, 0x00080018, "UI")
    study_uid = _text(ds, 0x0020000D, "UI")
    series_uid = _text(ds, 0x0020000E, "UI")
    missing = [
        name
        for name, value in (
            ("SOPInstanceUID", sop_uid),
            ("StudyInstanceUID", study_uid),
            ("SeriesInstanceUID", series_uid),
        )
        if not value
    ]
    if missing:
        raise NotAnInstance(f"{path}: no {', '.join(missing)}")
    sop_class = _text(ds, 0x00080016, "UI")
    meta = getattr(ds, "file_meta", None)
    if not sop_class and meta is not None:
        sop_class = _text(meta, 0x00020002, "UI")
    if transfer_syntax is None and meta is not None:
        transfer_syntax = _text(meta, 0x00020010, "UI")
    patient_name, patient_name_key = _pn(ds, 0x00100010)
    referring, referring_key = _pn(ds, 0x00080090)
    study_time, study_time_key = _tm(ds, 0x00080030)
    return _Record(
        patient={
            "patient_id": _text(ds, 0x00100020, "LO") or "",
            "issuer_of_patient_id": _text(ds, 0x00100021, "LO") or "",
            "patient_name": patient_name,
            "patient_name_key": patient_name_key,
            "patient_birth_date": _da(ds, 0x00100030),
            "patient_sex": _text(ds, 0x00100040, "CS"),
        },
        study={
            "study_instance_uid": study_uid,
            "study_date": _da(ds, 0x00080020),
            "study_time": study_time,
            "study_time_key": study_time_key,
            "accession_number": _text(ds, 0x00080050, "SH"),
            "study_id": _text(ds, 0x00200010, "SH"),
            "referring_physician_name": referring,
            "referring_physician_name_key": referring_key,
            "study_description": _text(ds, 0x00081030, "LO"),
        },
        series={
            "series_instance_uid": series_uid,
            "modality": _text(ds, 0x00080060, "CS"),
            "series_number": _int(ds, 0x00200011),
            "series_description": _text(ds, 0x0008103E, "LO"),
        },
        instance={
            "sop_instance_uid": sop_uid,
            "sop_class_uid": sop_class or "",
            "instance_number": _int(ds, 0x00200013),
            "path": path,
            "transfer_syntax_uid": transfer_syntax,
            "size": size,
            "attrs": json_copy(ds),
        },
    )


@attrs.frozen
class AddResult:
    """What :meth:`Index.add` stored.

    ``previous_path`` is the stored path of the instance this one replaced
    (``None`` if it is new): when it differs from ``path`` the caller may
    delete that file.
    """

    sop_instance_uid: str
    sop_class_uid: str
    path: str
    transfer_syntax_uid: str | None
    size: int | None
    replaced: bool
    previous_path: str | None


@attrs.frozen
class RescanReport:
    """What :meth:`Index.rescan` did: files indexed, files that could not be,
    and rows removed because their file is gone."""

    added: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


# --- engines --------------------------------------------------------------------------

_WRITE_OPTION: Final = "dicomnet_pacs_write"


#: values of SQLite's ``synchronous`` pragma :func:`make_engine` accepts
_SYNCHRONOUS: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


def _sqlite_connect(busy_ms: int, synchronous: str) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's own transaction handling
        # defers it and cannot do BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front: a deferred transaction that reads
    # then writes fails with SQLITE_BUSY (no busy wait) when another writer
    # committed in between; an immediate one waits its turn.
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def database_url(url: str | URL) -> URL:
    """``url`` as SQLAlchemy takes it, with psycopg (3) as the PostgreSQL driver.

    ``postgresql://...`` and ``postgres://...`` (libpq's spellings, which
    SQLAlchemy would give to psycopg2) become ``postgresql+psycopg://...``; a
    URL naming its driver is left as it is.
    """
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(
    url: str | URL,
    *,
    busy_timeout: float = 60.0,
    synchronous: str = "NORMAL",
    **kwargs: Any,
) -> Engine:
    """An engine for the index at ``url``, configured for concurrent writers.

    SQLite: WAL journal, foreign keys on, a busy timeout of ``busy_timeout``
    seconds and ``BEGIN IMMEDIATE`` for write transactions. ``synchronous``
    is SQLite's pragma: ``NORMAL`` (the default) makes a commit survive a
    crash of the process but not always a power loss; ``FULL`` flushes the
    WAL at every commit, so that a committed row survives a power loss too
    (what ``dicomnet serve`` uses). PostgreSQL (``postgresql://`` means
    psycopg 3, :func:`database_url`): ``pool_pre_ping``; its commits are
    durable unless the server is configured otherwise. ``kwargs`` go to
    :func:`sqlalchemy.create_engine`.
    """
    url = database_url(url)
    if url.get_backend_name() == "sqlite":
        mode = synchronous.upper()
        if mode not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}, not {mode!r}")
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", busy_timeout)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_connect(int(busy_timeout * 1000), mode))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


#: SQLSTATEs of PostgreSQL errors after which a transaction is worth retrying:
#: serialization failure, deadlock, lock not available, FK/unique races
_RETRY_SQLSTATES: Final = frozenset({"40001", "40P01", "55P03", "23503", "23505"})


def _retryable(exc: Exception) -> bool:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state is not None:
        return str(state) in _RETRY_SQLSTATES
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return "locked" in message or "busy" in message
    return isinstance(exc, IntegrityError)


# --- the index ------------------------------------------------------------------------


class Index:
    """The index of a storage folder, on SQLite or PostgreSQL.

    ``Index(storage_dir=DIR)`` opens (creating it if needed) the SQLite index
    ``DIR/index.sqlite``; ``Index("postgresql+psycopg://user@host/db",
    storage_dir=DIR)`` an index several ``dicomnet serve`` processes share.
    ``storage_dir`` is the folder stored paths are relative to; each process
    may mount it elsewhere. ``options`` are the default matching options of
    :meth:`find` (:data:`~.matching.QR_OPTIONS`: unknown values match,
    PS3.4 C.2.2.1.2). ``busy_timeout`` and ``synchronous`` are SQLite's (see
    :func:`make_engine`); ``engine_kwargs`` go to
    :func:`sqlalchemy.create_engine` (``pool_size``...).

    Thread-safe: every call takes its own connection from the engine's pool.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        storage_dir: str | os.PathLike[str] | None = None,
        options: MatchOptions = QR_OPTIONS,
        create: bool = True,
        busy_timeout: float = 60.0,
        synchronous: str = "NORMAL",
        retries: int = 10,
        engine: Engine | None = None,
        **engine_kwargs: Any,
    ) -> None:
        self.storage_dir = Path(storage_dir).resolve() if storage_dir is not None else None
        if engine is None:
            if url is None:
                if self.storage_dir is None:
                    raise ValueError("Index needs a database URL or a storage_dir")
                self.storage_dir.mkdir(parents=True, exist_ok=True)
                url = URL.create("sqlite", database=str(self.storage_dir / "index.sqlite"))
            engine = make_engine(
                url, busy_timeout=busy_timeout, synchronous=synchronous, **engine_kwargs
            )
        self.engine = engine
        self.dialect: str = engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r}: use SQLite or PostgreSQL")
        self.options = options
        self.retries = max(1, retries)
        if create:
            self.create_schema()

    # -- housekeeping --

    def __repr__(self) -> str:
        return f"Index({self.engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()

    def create_schema(self) -> None:
        """Create the tables if they do not exist (safe to run from several processes)."""

        def create(conn: Connection) -> None:
            if self.dialect == "postgresql":
                # one creator at a time: concurrent CREATE TABLE races on the catalog
                conn.execute(text("SELECT pg_advisory_xact_lock(7402761)"))
            Base.metadata.create_all(conn, checkfirst=True)
            if conn.execute(select(Meta.value).where(Meta.name == "schema_version")).first():
                return
            conn.execute(
                self._insert(Meta.__table__)  # type: ignore[arg-type]
                .values(name="schema_version", value=str(SCHEMA_VERSION))
                .on_conflict_do_nothing()
            )

        self._transaction(create)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def _transaction(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a write transaction, retrying it when it loses a race."""
        for attempt in range(self.retries):
            try:
                with self._writing() as conn:
                    return work(conn)
            except (OperationalError, IntegrityError) as exc:
                if attempt == self.retries - 1 or not _retryable(exc):
                    raise
                LOGGER.debug("retrying a write transaction after %s", exc.orig)
                time.sleep(random.uniform(0, min(0.02 * 2**attempt, 1.0)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _insert(self, table: Table) -> Any:
        return (_sqlite.insert if self.dialect == "sqlite" else _pg.insert)(table)

    # -- paths --

    def stored_path(self, path: str | os.PathLike[str]) -> str:
        """How ``path`` (relative to the current folder, as for ``open``) is
        stored: relative to the storage folder when inside it, else absolute."""
        absolute = Path(path).resolve()
        if self.storage_dir is not None:
            try:
                return absolute.relative_to(self.storage_dir).as_posix()
            except ValueError:
                pass
        return absolute.as_posix()

    def resolve(self, stored: str) -> Path:
        """The file of a stored path (made absolute against the storage folder)."""
        p = Path(stored)
        if p.is_absolute() or self.storage_dir is None:
            return p
        return self.storage_dir / p

    # -- ingest --

    def _prepare(
        self,
        source: str | os.PathLike[str] | Dataset,
        path: str | os.PathLike[str] | None,
        transfer_syntax: str | None,
        size: int | None,
    ) -> _Record:
        if isinstance(source, Dataset):
            if path is None:
                raise TypeError("Index.add(dataset, path): the path of the stored file is needed")
            ds = source
        else:
            path = source if path is None else path
            ds = dcmread(source, stop_before_pixels=True, force=True)
        if size is None:
            with contextlib.suppress(OSError):
                size = os.stat(self.resolve(self.stored_path(path))).st_size
        return _record(ds, self.stored_path(path), transfer_syntax, size)

    def add(
        self,
        source: str | os.PathLike[str] | Dataset,
        path: str | os.PathLike[str] | None = None,
        *,
        transfer_syntax: str | None = None,
        size: int | None = None,
    ) -> AddResult:
        """Index one stored instance, replacing any with the same SOP Instance UID.

        ``source`` is the Part 10 file (only its header is read) or the
        instance's data set, in which case ``path`` says where it is stored.
        ``transfer_syntax`` defaults to the file meta's, ``size`` to the
        file's. One transaction. Raises :class:`NotAnInstance` when the data
        set lacks its UIDs.
        """
        record = self._prepare(source, path, transfer_syntax, size)
        return self._transaction(lambda conn: _Ingest(self, conn).add(record))

    def add_many(
        self,
        sources: Iterable[str | os.PathLike[str] | tuple[Dataset, str | os.PathLike[str]]],
        *,
        batch_size: int = 500,
    ) -> list[AddResult]:
        """Index many instances, ``batch_size`` to a transaction (bulk import).

        Each source is a file path or a ``(dataset, path)`` pair.
        """
        results: list[AddResult] = []
        batch: list[_Record] = []

        def flush() -> None:
            if batch:
                records = list(batch)
                results.extend(self._transaction(lambda conn: _Ingest(self, conn).add_all(records)))
                batch.clear()

        for source in sources:
            if isinstance(source, tuple):
                batch.append(self._prepare(source[0], source[1], None, None))
            else:
                batch.append(self._prepare(source, None, None, None))
            if len(batch) >= batch_size:
                flush()
        flush()
        return results

    def rescan(
        self, *, suffix: str = ".dcm", prune: bool = False, batch_size: int = 500
    ) -> RescanReport:
        """Bring the index up to date with the files of the storage folder.

        Indexes every file under the storage folder whose name ends with
        ``suffix`` (hidden folders and files skipped) that the index does not
        hold, or whose size differs from the indexed one, or that was
        modified after its row was written: the files a crash left between
        storing and indexing (see docs/serve.md, *Durability*). With
        ``prune``, rows whose file no longer exists are removed. A file that
        cannot be indexed (not DICOM, no UIDs) is logged and listed in
        :attr:`RescanReport.failed`.
        """
        if self.storage_dir is None:
            raise ValueError("rescan needs the index's storage_dir")
        added: list[str] = []
        failed: list[str] = []
        batch: list[tuple[str, os.stat_result]] = []

        def check() -> None:
            stored = {p for p, _ in batch}
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(INSTANCE.c.path, INSTANCE.c.size, INSTANCE.c.stored_at).where(
                        INSTANCE.c.path.in_(stored)
                    )
                ).all()
            known = {str(row.path): (row.size, _timestamp(row.stored_at)) for row in rows}
            for path, st in batch:
                entry = known.get(path)
                if entry is not None and entry[0] == st.st_size and st.st_mtime <= entry[1]:
                    continue
                try:
                    self.add(self.resolve(path))
                except Exception as exc:
                    LOGGER.warning("cannot index %s: %s", path, exc)
                    failed.append(path)
                else:
                    added.append(path)
            batch.clear()

        for folder, dirs, files in os.walk(self.storage_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or not name.endswith(suffix):
                    continue
                full = Path(folder) / name
                try:
                    st = full.stat()
                except OSError:
                    continue
                batch.append((self.stored_path(full), st))
                if len(batch) >= batch_size:
                    check()
        if batch:
            check()
        removed: list[str] = []
        if prune:
            with self.engine.connect() as conn:
                rows = conn.execute(select(INSTANCE.c.sop_instance_uid, INSTANCE.c.path)).all()
            for row in rows:
                if not self.resolve(str(row.path)).exists():
                    gone = self.remove(str(row.sop_instance_uid))
                    if gone is not None:
                        removed.append(gone)
        return RescanReport(tuple(added), tuple(failed), tuple(removed))

    def remove(self, sop_instance_uid: str) -> str | None:
        """Remove an instance; return its stored path (``None`` if it was not indexed).

        Its series, study and patient are removed with it when left empty.
        """

        def work(conn: Connection) -> str | None:
            row = conn.execute(
                select(INSTANCE.c.pk, INSTANCE.c.series_pk, INSTANCE.c.path).where(
                    INSTANCE.c.sop_instance_uid == sop_instance_uid
                )
            ).first()
            if row is None:
                return None
            conn.execute(delete(INSTANCE).where(INSTANCE.c.pk == row.pk))
            _prune(conn, series={row.series_pk})
            return str(row.path)

        return self._transaction(work)

    # -- queries --

    def counts(self) -> dict[str, int]:
        """Number of patients, studies, series and instances."""
        with self.engine.connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in (
                    ("patients", PATIENT),
                    ("studies", STUDY),
                    ("series", SERIES),
                    ("instances", INSTANCE),
                )
            }

    def find(
        self,
        identifier: Dataset,
        model: str = "study",
        *,
        relational: bool = False,
        strict: bool = False,
        options: MatchOptions | None = None,
        retrieve_ae_title: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Dataset]:
        """Answer a C-FIND request: the response identifiers, one per match (PS3.4 C.4.1.3).

        ``model`` is ``"patient"`` (Patient Root) or ``"study"`` (Study Root);
        the level is the identifier's Query/Retrieve Level. ``relational``
        when relational-queries were negotiated (C.4.1.3.2); ``strict``
        rejects keys of other levels in hierarchical queries instead of
        matching keys of higher levels and ignoring those of lower levels.
        ``options`` default to the index's. ``retrieve_ae_title`` is put in
        every response as Retrieve AE Title (0008,0054).

        The identifier is checked before this returns: a request that breaks
        the rules raises :class:`~.matching.QueryError` (``status`` A900H or
        Cxxx). Results stream from the database ``batch_size`` rows at a
        time; closing the iterator (or a C-CANCEL ending the loop) releases
        the connection.
        """
        from .query import plan_find

        plan = plan_find(
            identifier,
            model,
            relational=relational,
            strict=strict,
            options=self.options if options is None else options,
            dialect=self.dialect,
            retrieve_ae_title=retrieve_ae_title,
        )
        return plan.execute(self.engine, batch_size=batch_size)

    def instances_for(
        self,
        identifier: Dataset,
        model: str = "study",
        level: str | None = None,
        *,
        relational: bool = False,
    ) -> list[InstanceLocation]:
        """The instances a C-GET or C-MOVE identifier designates (PS3.4 C.4.2.2, C.4.3.2).

        ``level`` defaults to the identifier's Query/Retrieve Level. Only the
        unique keys are used: single values above the level (unless
        ``relational``), a single UID or a list of UIDs at the level. Raises
        :class:`~.matching.QueryError` for an identifier that breaks these
        rules. Paths are resolved against the storage folder; the list is in
        study, series, instance number order.
        """
        from .query import plan_retrieve

        stmt = plan_retrieve(identifier, model, level, relational=relational)
        from .query import InstanceLocation

        with self.engine.connect() as conn:
            return [
                InstanceLocation(self.resolve(row[0]), row[1], row[2], row[3])
                for row in conn.execute(stmt)
            ]


def _timestamp(value: Any) -> float:
    """A ``stored_at`` value as POSIX seconds (naive values, from SQLite, are UTC)."""
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value)
    if not isinstance(value, _dt.datetime):
        return float("-inf")
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return float(value.timestamp())


# --- ingest in a transaction ----------------------------------------------------------


class _Ingest:
    """Writes records in one transaction, upserting each parent once."""

    def __init__(self, index: Index, conn: Connection) -> None:
        self.index = index
        self.conn = conn
        self._parents: dict[tuple[str, tuple[Any, ...]], int] = {}
        self._series_parent: dict[str, int] = {}
        self._study_parent: dict[str, int] = {}
        self._now = _dt.datetime.now(_dt.timezone.utc)

    def add_all(self, records: list[_Record]) -> list[AddResult]:
        return [self.add(record) for record in records]

    def _upsert(
        self,
        table: Table,
        values: Mapping[str, Any],
        conflict: tuple[str, ...],
        always: tuple[str, ...],
    ) -> int:
        """Insert or update one row; return its primary key.

        Columns in ``always`` take the new value; the others keep the old one
        when the new one is missing.
        """
        cache_key = (table.name, tuple(values.items()))
        cached = self._parents.get(cache_key)
        if cached is not None:
            return cached
        ins = self.index._insert(table).values(**values)
        update = {
            name: ins.excluded[name]
            if name in always
            else func.coalesce(ins.excluded[name], table.c[name])
            for name in values
            if name not in conflict
        }
        stmt = ins.on_conflict_do_update(index_elements=list(conflict), set_=update).returning(
            table.c.pk
        )
        pk = int(self.conn.execute(stmt).scalar_one())
        self._parents[cache_key] = pk
        return pk

    def add(self, record: _Record) -> AddResult:
        conn = self.conn
        inst = record.instance
        old = conn.execute(
            select(INSTANCE.c.series_pk, INSTANCE.c.path).where(
                INSTANCE.c.sop_instance_uid == inst["sop_instance_uid"]
            )
        ).first()
        # Where the series and study were before: if this instance moves them,
        # their old parents may be left empty. Within one transaction the
        # current parents are remembered.
        series_uid = record.series["series_instance_uid"]
        study_uid = record.study["study_instance_uid"]
        if series_uid in self._series_parent:
            old_study_of_series: int | None = self._series_parent[series_uid]
        else:
            old_study_of_series = conn.execute(
                select(SERIES.c.study_pk).where(SERIES.c.series_instance_uid == series_uid)
            ).scalar()
        if study_uid in self._study_parent:
            old_patient_of_study: int | None = self._study_parent[study_uid]
        else:
            old_patient_of_study = conn.execute(
                select(STUDY.c.patient_pk).where(STUDY.c.study_instance_uid == study_uid)
            ).scalar()
        patient_pk = self._upsert(
            PATIENT, record.patient, ("patient_id", "issuer_of_patient_id"), ()
        )
        study_pk = self._upsert(
            STUDY,
            {**record.study, "patient_pk": patient_pk},
            ("study_instance_uid",),
            ("patient_pk",),
        )
        series_pk = self._upsert(
            SERIES,
            {**record.series, "study_pk": study_pk},
            ("series_instance_uid",),
            ("study_pk",),
        )
        values = {**inst, "series_pk": series_pk, "stored_at": self._now}
        ins = self.index._insert(INSTANCE).values(**values)
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["sop_instance_uid"],
                set_={name: ins.excluded[name] for name in values if name != "sop_instance_uid"},
            )
        )
        self._series_parent[series_uid] = study_pk
        self._study_parent[study_uid] = patient_pk
        moved_series = {old.series_pk} if old is not None and old.series_pk != series_pk else set()
        moved_studies = (
            {old_study_of_series}
            if old_study_of_series is not None and old_study_of_series != study_pk
            else set()
        )
        moved_patients = (
            {old_patient_of_study}
            if old_patient_of_study is not None and old_patient_of_study != patient_pk
            else set()
        )
        if moved_series or moved_studies or moved_patients:
            _prune(conn, series=moved_series, studies=moved_studies, patients=moved_patients)
            self._parents.clear()
        return AddResult(
            sop_instance_uid=inst["sop_instance_uid"],
            sop_class_uid=inst["sop_class_uid"],
            path=inst["path"],
            transfer_syntax_uid=inst["transfer_syntax_uid"],
            size=inst["size"],
            replaced=old is not None,
            previous_path=None if old is None else str(old.path),
        )


def _prune(
    conn: Connection,
    *,
    series: Iterable[int] = (),
    studies: Iterable[int] = (),
    patients: Iterable[int] = (),
) -> None:
    """Delete the given series, studies and patients if empty, and their emptied parents."""
    study_pks = set(studies)
    patient_pks = set(patients)
    for pk in series:
        parent = conn.execute(select(SERIES.c.study_pk).where(SERIES.c.pk == pk)).scalar()
        gone = conn.execute(
            delete(SERIES).where(
                SERIES.c.pk == pk, ~exists().where(INSTANCE.c.series_pk == SERIES.c.pk)
            )
        ).rowcount
        if gone and parent is not None:
            study_pks.add(int(parent))
    for pk in study_pks:
        parent = conn.execute(select(STUDY.c.patient_pk).where(STUDY.c.pk == pk)).scalar()
        gone = conn.execute(
            delete(STUDY).where(STUDY.c.pk == pk, ~exists().where(SERIES.c.study_pk == STUDY.c.pk))
        ).rowcount
        if gone and parent is not None:
            patient_pks.add(int(parent))
    for pk in patient_pks:
        conn.execute(
            delete(PATIENT).where(
                PATIENT.c.pk == pk, ~exists().where(STUDY.c.patient_pk == PATIENT.c.pk)
            )
        )
