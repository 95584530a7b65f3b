"""C-FIND query execution on the index (PS3.4 C.4.1.3) and the instances of a retrieval (C.4.2.2).

A request identifier becomes a :class:`FindPlan`: one SQL ``SELECT`` over the
table of the Query/Retrieve level joined to the tables above it, whose
``WHERE`` holds every key the index has a column for (translated by
:func:`~.matching.key_condition`), and a :class:`~.matching.Matcher` for the
other keys, run in Python on the JSON copy of the entity's most recent
instance. Rows stream from the database and become response identifiers
without an ORM object: each row is a tuple, each response a
:class:`~pydicom.dataset.Dataset` built from a dict of prebuilt elements.

Hierarchical queries (C.4.1.3.1.1): the unique key of every level above the
query level must be a single value (else :class:`~.matching.InvalidIdentifier`,
A900H); responses hold those unique keys, the requested keys of the query
level and Query/Retrieve Level. Keys of lower levels are ignored (and not
returned) and keys of higher levels are matched like in a relational query,
unless ``strict`` is asked, which rejects both. Relational queries
(C.4.1.3.2) match and return keys of every level.

Which level an attribute belongs to: the index's columns say it for theirs,
a table of common optional keys for some others (PS3.3 modules), and any
other attribute is taken to belong to the query level.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

import attrs
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName
from sqlalchemy import (
    ColumnElement,
    Engine,
    FromClause,
    Select,
    and_,
    distinct,
    exists,
    func,
    literal_column,
    or_,
    select,
)

from .index import INSTANCE, PATIENT, SERIES, STUDY
from .matching import (
    DEFAULT_IGNORED,
    ColumnKind,
    InvalidIdentifier,
    Key,
    KeyKind,
    Matcher,
    MatchOptions,
    combine_datetime,
    format_da,
    format_tm,
    has_non_ascii,
    iter_keys,
    key_condition,
    parse_key,
    term_condition,
    unknown_condition,
)

__all__ = [
    "LEVELS",
    "FindPlan",
    "InstanceLocation",
    "level_of",
    "plan_find",
    "plan_retrieve",
]

#: Query/Retrieve levels of each information model, top first (PS3.4 C.6.1, C.6.2)
LEVELS: Final[dict[str, tuple[str, ...]]] = {
    "patient": ("PATIENT", "STUDY", "SERIES", "IMAGE"),
    "study": ("STUDY", "SERIES", "IMAGE"),
}
#: depth of each level in the Patient Root model
_DEPTH: Final = {"PATIENT": 0, "STUDY": 1, "SERIES": 2, "IMAGE": 3}
#: unique key of each depth (PS3.4 C.6.1.1)
_UNIQUE: Final = {
    0: BaseTag(0x00100020),
    1: BaseTag(0x0020000D),
    2: BaseTag(0x0020000E),
    3: BaseTag(0x00080018),
}
_QR_LEVEL: Final = BaseTag(0x00080052)
_CHARSET: Final = BaseTag(0x00080005)
_RETRIEVE_AE: Final = BaseTag(0x00080054)
_AVAILABILITY: Final = BaseTag(0x00080056)
#: return-only attributes of the response (C.4.1.1.3.2), never matched
_RESPONSE_ONLY: Final = frozenset(
    {_RETRIEVE_AE, _AVAILABILITY, BaseTag(0x00880130), BaseTag(0x00880140)}
)


class InstanceLocation(NamedTuple):
    """One instance to send for a C-GET or C-MOVE."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str | None


# --- what the index knows ---------------------------------------------------------------


@attrs.frozen
class _Attr:
    """An attribute the index holds in a column, or computes in SQL.

    ``value`` is what is returned, ``match`` what keys are compared with
    (stored as ``kind`` says); ``convert`` turns a database value into the
    element's value.
    """

    tag: BaseTag
    vr: str
    depth: int
    kind: ColumnKind
    value: ColumnElement[Any]
    match: ColumnElement[Any]
    convert: Callable[[Any], Any]
    unique: bool = False


@attrs.frozen
class _ListAttr:
    """A multi-valued attribute derived from the entities below (C.3.4 Table C.3-1).

    ``column`` and ``parent`` belong to the private alias ``source`` whose rows
    hold the values of the entity in ``owner``'s row (``parent == owner.pk``).
    """

    tag: BaseTag
    vr: str
    depth: int
    source: FromClause
    column: ColumnElement[Any]
    parent: ColumnElement[Any]
    owner_pk: ColumnElement[Any]


def _same(value: Any) -> Any:
    return value


def _person_name(value: Any) -> Any:
    return PersonName(value)


def _column(
    keyword: str,
    vr: str,
    depth: int,
    kind: ColumnKind,
    value: ColumnElement[Any],
    match: ColumnElement[Any] | None = None,
    *,
    unique: bool = False,
) -> _Attr:
    convert = _person_name if vr == "PN" else _same
    tag = BaseTag(tag_for_keyword(keyword) or 0)
    return _Attr(tag, vr, depth, kind, value, value if match is None else match, convert, unique)


def _count(depth: int, keyword: str, chain: list[tuple[Any, str]], owner: Any) -> _Attr:
    """``COUNT`` of the rows of ``chain[0]`` below ``owner`` (through private aliases)."""
    aliases = [table.alias() for table, _ in chain]
    stmt = select(func.count()).select_from(aliases[0])
    for (_, fk), child, parent in zip(chain, aliases, aliases[1:], strict=False):
        stmt = stmt.join(parent, child.c[fk] == parent.c.pk)
    last_fk = chain[-1][1]
    expr = stmt.where(aliases[-1].c[last_fk] == owner.c.pk).correlate(owner).scalar_subquery()
    tag = BaseTag(tag_for_keyword(keyword) or 0)
    return _Attr(tag, "IS", depth, ColumnKind.INT, expr, expr, _same)


def _build_attrs() -> tuple[dict[BaseTag, _Attr], dict[BaseTag, _ListAttr]]:
    t = ColumnKind.TEXT
    attrs_ = [
        _column("PatientID", "LO", 0, t, PATIENT.c.patient_id, unique=True),
        _column("IssuerOfPatientID", "LO", 0, t, PATIENT.c.issuer_of_patient_id),
        _column(
            "PatientName",
            "PN",
            0,
            ColumnKind.PN,
            PATIENT.c.patient_name,
            PATIENT.c.patient_name_key,
        ),
        _column("PatientBirthDate", "DA", 0, ColumnKind.DATE, PATIENT.c.patient_birth_date),
        _column("PatientSex", "CS", 0, t, PATIENT.c.patient_sex),
        _column(
            "StudyInstanceUID", "UI", 1, ColumnKind.UID, STUDY.c.study_instance_uid, unique=True
        ),
        _column("StudyDate", "DA", 1, ColumnKind.DATE, STUDY.c.study_date),
        _column("StudyTime", "TM", 1, ColumnKind.TIME, STUDY.c.study_time, STUDY.c.study_time_key),
        _column("AccessionNumber", "SH", 1, t, STUDY.c.accession_number),
        _column("StudyID", "SH", 1, t, STUDY.c.study_id),
        _column(
            "ReferringPhysicianName",
            "PN",
            1,
            ColumnKind.PN,
            STUDY.c.referring_physician_name,
            STUDY.c.referring_physician_name_key,
        ),
        _column("StudyDescription", "LO", 1, t, STUDY.c.study_description),
        _column(
            "SeriesInstanceUID", "UI", 2, ColumnKind.UID, SERIES.c.series_instance_uid, unique=True
        ),
        _column("Modality", "CS", 2, t, SERIES.c.modality),
        _column("SeriesNumber", "IS", 2, ColumnKind.INT, SERIES.c.series_number),
        _column("SeriesDescription", "LO", 2, t, SERIES.c.series_description),
        _column(
            "SOPInstanceUID", "UI", 3, ColumnKind.UID, INSTANCE.c.sop_instance_uid, unique=True
        ),
        _column("SOPClassUID", "UI", 3, ColumnKind.UID, INSTANCE.c.sop_class_uid),
        _column("InstanceNumber", "IS", 3, ColumnKind.INT, INSTANCE.c.instance_number),
        _column(
            "AvailableTransferSyntaxUID", "UI", 3, ColumnKind.UID, INSTANCE.c.transfer_syntax_uid
        ),
        _count(0, "NumberOfPatientRelatedStudies", [(STUDY, "patient_pk")], PATIENT),
        _count(
            0,
            "NumberOfPatientRelatedSeries",
            [(SERIES, "study_pk"), (STUDY, "patient_pk")],
            PATIENT,
        ),
        _count(
            0,
            "NumberOfPatientRelatedInstances",
            [(INSTANCE, "series_pk"), (SERIES, "study_pk"), (STUDY, "patient_pk")],
            PATIENT,
        ),
        _count(1, "NumberOfStudyRelatedSeries", [(SERIES, "study_pk")], STUDY),
        _count(
            1,
            "NumberOfStudyRelatedInstances",
            [(INSTANCE, "series_pk"), (SERIES, "study_pk")],
            STUDY,
        ),
        _count(2, "NumberOfSeriesRelatedInstances", [(INSTANCE, "series_pk")], SERIES),
    ]
    series_alias = SERIES.alias()
    inst_alias = INSTANCE.alias()
    inst_series = SERIES.alias()
    sop_classes = inst_alias.join(inst_series, inst_alias.c.series_pk == inst_series.c.pk)
    lists = [
        _ListAttr(
            BaseTag(0x00080061),  # ModalitiesInStudy
            "CS",
            1,
            series_alias,
            series_alias.c.modality,
            series_alias.c.study_pk,
            STUDY.c.pk,
        ),
        _ListAttr(
            BaseTag(0x00080062),  # SOPClassesInStudy
            "UI",
            1,
            sop_classes,
            inst_alias.c.sop_class_uid,
            inst_series.c.study_pk,
            STUDY.c.pk,
        ),
    ]
    return {a.tag: a for a in attrs_}, {a.tag: a for a in lists}


_ATTRS, _LISTS = _build_attrs()
#: the tables of each depth
_TABLES: Final = {0: PATIENT, 1: STUDY, 2: SERIES, 3: INSTANCE}
#: the foreign key from each depth to the one above
_UP: Final = {1: STUDY.c.patient_pk, 2: SERIES.c.study_pk, 3: INSTANCE.c.series_pk}


def _keywords(depth: int, *keywords: str) -> dict[BaseTag, int]:
    return {BaseTag(tag_for_keyword(k) or 0): depth for k in keywords if tag_for_keyword(k)}


#: the level of common optional keys the index has no column for (PS3.3 modules)
_KNOWN_LEVELS: Final[dict[BaseTag, int]] = {
    **_keywords(
        0,
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientBirthTime",
        "EthnicGroup",
        "PatientComments",
        "IssuerOfPatientIDQualifiersSequence",
        "PatientSpeciesDescription",
        "PatientSpeciesCodeSequence",
        "PatientBreedDescription",
        "PatientBreedCodeSequence",
        "ResponsiblePerson",
        "ResponsiblePersonRole",
        "ResponsibleOrganization",
        "PatientIdentityRemoved",
        "DeidentificationMethod",
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
    ),
    **_keywords(
        1,
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "Occupation",
        "AdditionalPatientHistory",
        "AdmittingDiagnosesDescription",
        "NameOfPhysiciansReadingStudy",
        "PhysiciansOfRecord",
        "ProcedureCodeSequence",
        "OtherStudyNumbers",
        "IssuerOfAccessionNumberSequence",
        "AnatomicRegionsInStudyCodeSequence",
        "ModalitiesInStudy",
        "SOPClassesInStudy",
    ),
    **_keywords(
        2,
        "SeriesDate",
        "SeriesTime",
        "BodyPartExamined",
        "ProtocolName",
        "Laterality",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "PerformedProcedureStepID",
        "PerformedProcedureStepDescription",
        "RequestAttributesSequence",
        "OperatorsName",
        "PerformingPhysicianName",
        "FrameOfReferenceUID",
        "Manufacturer",
        "ManufacturerModelName",
        "InstitutionName",
        "InstitutionalDepartmentName",
        "StationName",
    ),
}


def _owner_depth(tag: BaseTag, query_depth: int, top: int) -> int:
    """The depth of the level ``tag`` belongs to (at least ``top``, the model's top)."""
    if tag in _ATTRS:
        depth = _ATTRS[tag].depth
    elif tag in _LISTS:
        depth = _LISTS[tag].depth
    else:
        depth = _KNOWN_LEVELS.get(tag, query_depth)
    return max(depth, top)


def level_of(identifier: Dataset, model: str) -> str:
    """The identifier's Query/Retrieve Level (0008,0052), checked against ``model``.

    Raises :class:`~.matching.InvalidIdentifier` when it is missing or not a
    level of the model (``"patient"`` or ``"study"`` root).
    """
    if model not in LEVELS:
        raise ValueError(f"unknown information model {model!r}: use 'patient' or 'study'")
    elem = identifier.get(_QR_LEVEL)
    value = str(elem.value).strip(" ") if elem is not None and elem.value else ""
    if value not in LEVELS[model]:
        found = f"{value!r}" if value else "none"
        raise InvalidIdentifier(
            f"Query/Retrieve Level {found} is not one of {', '.join(LEVELS[model])}",
            offending=[_QR_LEVEL],
        )
    return value


def _single_value(elem: DataElement | None) -> str | None:
    """The one value of a unique key fit for Single Value Matching, else ``None``."""
    if elem is None or elem.value is None or isinstance(elem.value, MultiValue | list):
        return None
    value = str(elem.value).strip(" \0")
    if not value or "*" in value or "?" in value or "\\" in value:
        return None
    return value


# --- the plan ----------------------------------------------------------------------------


@attrs.frozen
class _Field:
    tag: BaseTag
    vr: str
    index: int
    convert: Callable[[Any], Any]


def _list_value(value: Any) -> Any:
    values = sorted({v for v in str(value).split(",") if v})
    return values[0] if len(values) == 1 else MultiValue(str, values)


@attrs.frozen
class FindPlan:
    """A C-FIND request compiled for the index: its SELECT and how rows become responses."""

    level: str
    statement: Select[Any]
    fields: tuple[_Field, ...]
    constants: tuple[tuple[BaseTag, str, Any], ...]
    json_index: int | None = None
    json_matcher: Matcher | None = None
    json_keys: tuple[str, ...] = ()

    def execute(self, engine: Engine, *, batch_size: int = 1000) -> Iterator[Dataset]:
        """The response identifiers, streamed ``batch_size`` rows at a time."""
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(self.statement)
            build = self.build
            for row in result:
                ds = build(row)
                if ds is not None:
                    yield ds

    def build(self, row: Any) -> Dataset | None:
        """The response identifier of one row, ``None`` if a Python-matched key rejects it."""
        elements: dict[BaseTag, DataElement | RawDataElement] = {}
        utf8 = False
        for field in self.fields:
            value = row[field.index]
            if value is None or value == "":
                elements[field.tag] = DataElement(field.tag, field.vr, empty_value_for_VR(field.vr))
                continue
            if isinstance(value, str) and not value.isascii():
                utf8 = True
            elements[field.tag] = DataElement(
                field.tag, field.vr, field.convert(value), already_converted=True
            )
        if self.json_matcher is not None:
            candidate = _json_candidate(row[self.json_index], self.json_keys)
            if not self.json_matcher.matches(candidate):
                return None
            for elem in self.json_matcher.project_elements(candidate):
                elements[elem.tag] = elem
                utf8 = utf8 or has_non_ascii(elem)
        for tag, vr, value in self.constants:
            elements[tag] = DataElement(tag, vr, value, already_converted=True)
        if utf8:
            elements[_CHARSET] = DataElement(_CHARSET, "CS", "ISO_IR 192", already_converted=True)
        return Dataset(elements)


def _json_candidate(attrs_json: Any, keys: tuple[str, ...]) -> Dataset:
    """A data set of the requested attributes of an instance's JSON copy."""
    if attrs_json is None:
        return Dataset()
    if isinstance(attrs_json, str):  # a driver that does not decode JSON columns
        attrs_json = json.loads(attrs_json)
    subset = {k: attrs_json[k] for k in keys if k in attrs_json}
    if not subset:
        return Dataset()
    return Dataset.from_json(subset)


def _representative_attrs(depth: int) -> ColumnElement[Any]:
    """The JSON copy of the most recent instance of the entity at ``depth``."""
    if depth == 3:
        return INSTANCE.c.attrs
    inst = INSTANCE.alias()
    stmt: Select[Any] = select(inst.c.attrs)
    if depth == 2:
        stmt = stmt.where(inst.c.series_pk == SERIES.c.pk).correlate(SERIES)
    else:
        ser = SERIES.alias()
        stmt = stmt.select_from(inst.join(ser, inst.c.series_pk == ser.c.pk))
        if depth == 1:
            stmt = stmt.where(ser.c.study_pk == STUDY.c.pk).correlate(STUDY)
        else:
            stu = STUDY.alias()
            stmt = stmt.join(stu, ser.c.study_pk == stu.c.pk)
            stmt = stmt.where(stu.c.patient_pk == PATIENT.c.pk).correlate(PATIENT)
    return stmt.order_by(inst.c.pk.desc()).limit(1).scalar_subquery()


def _list_aggregate(attr: _ListAttr, dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        agg = func.group_concat(distinct(attr.column))
    else:
        agg = func.string_agg(distinct(attr.column), literal_column("','"))
    return (
        select(agg)
        .select_from(attr.source)
        .where(attr.parent == attr.owner_pk)
        .correlate(STUDY)
        .scalar_subquery()
    )


def _list_condition(
    attr: _ListAttr, key: Key, dialect: str, match_unknown: bool
) -> ColumnElement[bool] | None:
    """A key on a derived multi-valued attribute: any value matches (C.2.2.3)."""
    if key.kind is KeyKind.UNIVERSAL:
        return None

    def having(cond: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists(
            select(literal_column("1"))
            .select_from(attr.source)
            .where(attr.parent == attr.owner_pk, cond)
            .correlate(STUDY)
        )

    kind = ColumnKind.UID if attr.vr == "UI" else ColumnKind.TEXT
    known = ~having(~unknown_condition(attr.column, kind))
    if key.kind is KeyKind.EMPTY:
        return known
    conds = [having(term_condition(t, attr.column, kind, dialect)) for t in key.terms]
    cond = and_(*conds) if key.all_terms else or_(*conds)
    return or_(cond, known) if match_unknown else cond


def plan_find(
    identifier: Dataset,
    model: str,
    *,
    relational: bool,
    strict: bool,
    options: MatchOptions,
    dialect: str,
    retrieve_ae_title: str | None = None,
) -> FindPlan:
    """Compile a C-FIND identifier for the index (PS3.4 C.4.1.3).

    Raises :class:`~.matching.QueryError` when the identifier breaks the
    rules of the model or of its level.
    """
    level = level_of(identifier, model)
    depth = _DEPTH[level]
    top = _DEPTH[LEVELS[model][0]]

    if not relational:
        for d in range(top, depth):
            tag = _UNIQUE[d]
            if _single_value(identifier.get(tag)) is None:
                raise InvalidIdentifier(
                    f"hierarchical {level} query needs a single value for {_keyword(tag)}",
                    offending=[tag],
                )

    column_keys: list[tuple[_Attr, Key]] = []
    list_keys: list[tuple[_ListAttr, Key]] = []
    json_elements: list[DataElement] = []
    response_only: list[BaseTag] = []
    offending: list[BaseTag] = []
    for elem in iter_keys(identifier):
        tag = elem.tag
        if tag in DEFAULT_IGNORED or tag.element == 0 or tag.group < 0x0008:
            continue
        if tag in _RESPONSE_ONLY:
            response_only.append(tag)
            continue
        owner = _owner_depth(tag, depth, top)
        if owner > depth:
            # Keys of lower levels: neither search method goes below the query
            # level (C.4.1.3.1.1, C.4.1.3.2.2).
            if strict:
                offending.append(tag)
            continue
        if strict and not relational and owner < depth and tag != _UNIQUE[owner]:
            # Baseline SCUs send no other key of a higher level (C.4.1.2.1);
            # unless strict, such keys are matched as in a relational query.
            offending.append(tag)
            continue
        key = parse_key(elem, options, identifier=identifier)
        if tag in _ATTRS:
            column_keys.append((_ATTRS[tag], key))
        elif tag in _LISTS:
            list_keys.append((_LISTS[tag], key))
        else:
            json_elements.append(elem)
    if offending:
        raise InvalidIdentifier(
            f"{level} query has keys of other levels: " + ", ".join(_keyword(t) for t in offending),
            offending=offending,
        )

    # The unique keys of the levels above are always returned (C.4.1.3.1.1).
    requested = {attr.tag for attr, _ in column_keys}
    for d in range(top, depth):
        tag = _UNIQUE[d]
        if tag not in requested:
            attr = _ATTRS[tag]
            column_keys.append((attr, Key(tag, attr.vr, KeyKind.UNIVERSAL)))
            requested.add(tag)

    select_list: list[ColumnElement[Any]] = []
    fields: list[_Field] = []
    conditions: list[ColumnElement[bool]] = []
    needed_depth = depth  # the highest level the query touches

    paired = _combined_conditions(column_keys, options, conditions)
    model_unique = {_UNIQUE[d] for d in range(top, 4)}
    for attr, key in column_keys:
        needed_depth = min(needed_depth, attr.depth)
        fields.append(_Field(attr.tag, attr.vr, len(select_list), attr.convert))
        select_list.append(attr.value)
        if attr.tag in paired:
            continue
        unknown = options.match_unknown and attr.tag not in model_unique
        cond = key_condition(key, attr.match, attr.kind, dialect, match_unknown=unknown)
        if cond is not None:
            conditions.append(cond)
    for lattr, key in list_keys:
        needed_depth = min(needed_depth, lattr.depth)
        fields.append(_Field(lattr.tag, lattr.vr, len(select_list), _list_value))
        select_list.append(_list_aggregate(lattr, dialect))
        cond = _list_condition(lattr, key, dialect, options.match_unknown)
        if cond is not None:
            conditions.append(cond)

    json_index = None
    json_matcher = None
    json_keys: tuple[str, ...] = ()
    if json_elements:
        json_matcher = Matcher.from_elements(json_elements, options, identifier=identifier)
        json_keys = tuple(f"{int(e.tag):08X}" for e in json_elements)
        json_index = len(select_list)
        select_list.append(_representative_attrs(depth))

    # FROM the level's table, joined up to the highest level touched.
    source: FromClause = _TABLES[depth]
    for d in range(depth, needed_depth, -1):
        source = source.join(_TABLES[d - 1], _UP[d] == _TABLES[d - 1].c.pk)
    if not select_list:
        select_list.append(_TABLES[depth].c.pk)
    stmt = select(*select_list).select_from(source).where(*conditions).order_by(_TABLES[depth].c.pk)

    constants: list[tuple[BaseTag, str, Any]] = [(_QR_LEVEL, "CS", level)]
    if retrieve_ae_title is not None:
        constants.append((_RETRIEVE_AE, "AE", retrieve_ae_title))
    for tag in response_only:
        if tag == _AVAILABILITY:
            constants.append((tag, "CS", "ONLINE"))
        elif tag == _RETRIEVE_AE and retrieve_ae_title is None:
            constants.append((tag, "AE", ""))
        elif tag != _RETRIEVE_AE:
            constants.append((tag, "SH" if tag == 0x00880130 else "UI", ""))
    return FindPlan(
        level,
        stmt,
        tuple(fields),
        tuple(constants),
        json_index,
        json_matcher,
        json_keys,
    )


def _keyword(tag: BaseTag) -> str:
    return keyword_for_tag(tag) or str(tag)


def _combined_conditions(
    column_keys: list[tuple[_Attr, Key]],
    options: MatchOptions,
    conditions: list[ColumnElement[bool]],
) -> set[BaseTag]:
    """Study Date and Study Time matched as one range (C.2.2.2.5.4): their tags."""
    if not options.combined_datetime:
        return set()
    by_tag = {attr.tag: (attr, key) for attr, key in column_keys}
    date = by_tag.get(BaseTag(0x00080020))
    time = by_tag.get(BaseTag(0x00080030))
    if date is None or time is None:
        return set()
    bounds = combine_datetime(date[1], time[1])
    if bounds is None:
        return set()
    lower, upper = bounds
    day, tm = STUDY.c.study_date, STUDY.c.study_time_key
    parts: list[ColumnElement[bool]] = []
    # Without a time, the study is known to the day: it matches when that day
    # meets the range.
    if lower is not None:
        latest = day + func.coalesce(tm, "235959.999999")
        parts.append(latest >= format_da(lower) + format_tm(lower % 86_400_000_000))
    if upper is not None:
        earliest = day + func.coalesce(tm, "000000.000000")
        parts.append(earliest <= format_da(upper) + format_tm(upper % 86_400_000_000))
    cond: ColumnElement[bool] = and_(*parts)
    if options.match_unknown:
        cond = or_(cond, unknown_condition(day, ColumnKind.DATE))
    conditions.append(cond)
    return {date[0].tag, time[0].tag}


# --- retrieval ---------------------------------------------------------------------------


def plan_retrieve(
    identifier: Dataset, model: str, level: str | None = None, *, relational: bool = False
) -> Select[Any]:
    """The SELECT of the instances a C-MOVE/C-GET identifier designates (PS3.4 C.4.2.2.1).

    Rows are ``(path, sop_class_uid, sop_instance_uid, transfer_syntax_uid)``.
    """
    if level is None:
        level = level_of(identifier, model)
    elif level not in LEVELS.get(model, ()):
        raise InvalidIdentifier(
            f"Query/Retrieve Level {level!r} is not valid", offending=[_QR_LEVEL]
        )
    depth = _DEPTH[level]
    top = _DEPTH[LEVELS[model][0]]
    conditions: list[ColumnElement[bool]] = []
    for d in range(top, depth + 1):
        tag = _UNIQUE[d]
        elem = identifier.get(tag)
        column = _ATTRS[tag].value
        if d < depth:
            value = _single_value(elem)
            if value is None:
                if relational and (elem is None or not elem.value):
                    continue
                raise InvalidIdentifier(
                    f"retrieval at {level} level needs a single {_keyword(tag)}", offending=[tag]
                )
            conditions.append(column == value)
            continue
        values = _uid_list(elem)
        if not values:
            raise InvalidIdentifier(
                f"retrieval at {level} level needs {_keyword(tag)}", offending=[tag]
            )
        conditions.append(column.in_(values) if len(values) > 1 else column == values[0])
    source: FromClause = INSTANCE
    for d in range(3, top, -1):
        source = source.join(_TABLES[d - 1], _UP[d] == _TABLES[d - 1].c.pk)
    return (
        select(
            INSTANCE.c.path,
            INSTANCE.c.sop_class_uid,
            INSTANCE.c.sop_instance_uid,
            INSTANCE.c.transfer_syntax_uid,
        )
        .select_from(source)
        .where(*conditions)
        .order_by(INSTANCE.c.series_pk, INSTANCE.c.instance_number, INSTANCE.c.pk)
    )


def _uid_list(elem: DataElement | None) -> list[str]:
    """Single value or List of UID Matching values of a unique key (C.2.2.2.2)."""
    if elem is None or elem.value is None:
        return []
    raw = elem.value if isinstance(elem.value, MultiValue | list) else str(elem.value).split("\\")
    values = [str(v).strip(" \0") for v in raw]
    if any(not v or "*" in v or "?" in v for v in values):
        return []
    return values
