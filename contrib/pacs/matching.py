"""Attribute matching of C-FIND identifiers (PS3.4 C.2.2.2), in Python and as SQL.

One parser turns each key of a request identifier into a :class:`Key`: which
kind of matching it asks for and its *terms* (exact values, wild card
patterns, date/time ranges, numbers). The same keys are then either evaluated
in Python against a candidate data set (:class:`Matcher`, :func:`matches`,
used for worklists and for attributes the index keeps only in its JSON copy)
or translated into SQL conditions on the index's columns
(:func:`key_condition`). Both evaluate the same normalised values, so the SQL
pre-filter and the Python matcher agree; ``tests/pacs`` checks it.

The rules kept (see docs/pacs_index.md for the full table):

* Universal Matching (C.2.2.2.3): a zero-length key matches everything. So
  does a key made only of ``*`` (C.2.2.2.4 note 1), for any VR. A sequence
  key with no item, or with one item holding no constraining key, is
  universal too (C.2.2.2.6).
* Single Value Matching (C.2.2.2.1): exact and case-sensitive, except PN
  which is matched case-insensitively (C.2.2.2.1.1 allows it) with trailing
  component delimiters ignored. Padding that PS3.5 Table 6.2-1 declares not
  significant is ignored: leading and trailing spaces of AE, CS, DS, IS, LO
  and SH, trailing spaces of the other text VRs, trailing NULs of UI. IS and
  DS compare as numbers (C.2.2.2.1 leaves it to the implementation); DA, TM
  and DT compare by meaning (C.2.2.2.1.3): ``2230`` and ``223000`` are the
  same time.
* List of UID Matching (C.2.2.2.2): a multi-valued UI key matches any of its
  UIDs.
* Wild Card Matching (C.2.2.2.4): only for AE, CS, LO, LT, PN, SH, ST, UC, UR
  and UT; ``*`` is any run of characters, ``?`` one character. There is no
  escape: a ``*`` or ``?`` in such a key is always a wild card.
* Range Matching (C.2.2.2.5): DA, TM and DT keys ``a-b``, ``-b`` and ``a-``.
  A partial value stands for the span it denotes: the lower bound is the
  span's start and the upper bound its end (``-10`` for TM includes
  10:59:59.999999). A single DA/TM/DT value is the range ``v-v``. Candidate
  values compare by the start of what they denote. DT values take their UTC
  offset into account (C.2.2.2.5.3 d); values without one are in the
  Timezone Offset From UTC (0008,0201) of their data set, else in
  :attr:`MatchOptions.utc_offset` minutes. With the Date-time extended
  negotiation, a DA key and the TM key of the same name (StudyDate and
  StudyTime...) that specify the same form of range are combined
  (C.2.2.2.5.4).
* Sequence Matching (C.2.2.2.6): the item keys of the key's one item must all
  match in at least one item of the candidate's sequence; the response
  carries the matching items, reduced to the requested attributes.
* Candidates with several values (C.2.2.3): the key matches if any value does.
  A key with several values (not UI) matches if any of its values matches
  any candidate value; with the Multiple Value Matching extended negotiation
  (C.2.2.2.8) each key value must match (for AE, AS, AT, CS, LO, PN, SH, UC).
* Empty Value Matching (C.2.2.2.7, extended negotiation): a key of ``""``
  matches candidates whose value is empty or absent.
* Unknown values: a candidate whose attribute is absent or empty matches
  every key when :attr:`MatchOptions.match_unknown` is set -- the
  Query/Retrieve rule of C.2.2.1.2 -- and no key otherwise -- the Worklist
  rule of K.2.2.1.1.1.

Not implemented: fuzzy semantic matching of person names and Timezone query
adjustment of TM/DA values (extended negotiations); TM and DA are compared as
given.
"""

from __future__ import annotations

import calendar
import copy
import datetime as _dt
import decimal
import enum
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final, TypeAlias

import attrs
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName
from sqlalchemy import ColumnElement, and_, false, or_

__all__ = [
    "QR_OPTIONS",
    "WORKLIST_OPTIONS",
    "ColumnKind",
    "Exact",
    "InvalidIdentifier",
    "Key",
    "KeyKind",
    "MatchOptions",
    "Matcher",
    "Number",
    "QueryError",
    "Range",
    "Wildcard",
    "compile_identifier",
    "format_da",
    "format_tm",
    "has_non_ascii",
    "iter_keys",
    "key_condition",
    "matches",
    "normalize_pn",
    "normalize_text",
    "parse_da",
    "parse_dt",
    "parse_key",
    "parse_tm",
    "term_condition",
    "unknown_condition",
]

# --- errors -------------------------------------------------------------------------


class QueryError(ValueError):
    """A C-FIND/C-MOVE/C-GET identifier the SCP cannot process.

    ``status`` is the DIMSE status to answer with (PS3.4 Table C.4-1, K.4-1),
    ``offending`` the tags for Offending Element (0000,0901), ``comment`` the
    text for Error Comment (0000,0902).
    """

    status: int = 0xC000

    def __init__(
        self, comment: str, *, offending: Iterable[int] = (), status: int | None = None
    ) -> None:
        super().__init__(comment)
        self.comment = comment
        self.offending: tuple[BaseTag, ...] = tuple(BaseTag(t) for t in offending)
        if status is not None:
            self.status = status

    @property
    def error_comment(self) -> str:
        """``comment`` cut to the 64 characters of an LO Error Comment (0000,0902)."""
        return self.comment[:64]


class InvalidIdentifier(QueryError):
    """The identifier breaks the rules of its SOP class: status A900H
    ("Identifier does not match SOP Class", PS3.4 Table C.4-1)."""

    status = 0xA900


# --- options --------------------------------------------------------------------------


@attrs.frozen
class MatchOptions:
    """How keys are matched; the extended negotiation flags of PS3.4 C.5.1.1.

    ``match_unknown``: an absent or empty candidate value matches any key
    (C.2.2.1.2, Query/Retrieve) rather than none (K.2.2.1.1.1, Worklist).
    ``pn_case_sensitive``: match PN exactly rather than case-insensitively.
    ``combined_datetime``: the Date-time matching extended negotiation
    (C.2.2.2.5.4). ``empty_value_matching`` and ``multiple_value_matching``:
    the extended negotiations of C.2.2.2.7 and C.2.2.2.8. ``utc_offset``:
    minutes east of UTC assumed for DT values without an offset when their
    data set has no Timezone Offset From UTC (0008,0201).
    """

    match_unknown: bool = False
    pn_case_sensitive: bool = False
    combined_datetime: bool = False
    empty_value_matching: bool = False
    multiple_value_matching: bool = False
    utc_offset: int = 0


#: Query/Retrieve matching: unknown values match (PS3.4 C.2.2.1.2)
QR_OPTIONS: Final = MatchOptions(match_unknown=True)
#: Worklist matching: unknown values fail to match (PS3.4 K.2.2.1.1.1)
WORKLIST_OPTIONS: Final = MatchOptions(match_unknown=False)

# --- value normalisation (PS3.5 Table 6.2-1) ----------------------------------------

#: VRs whose values may carry wild cards (PS3.4 C.2.2.2.4)
WILDCARD_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
#: VRs whose leading and trailing spaces are not significant
_STRIP_BOTH: Final = frozenset({"AE", "CS", "DS", "IS", "LO", "SH"})
#: VRs that are never split on backslashes (PS3.5 6.4: VM is always 1)
_SINGLE_VALUED: Final = frozenset({"LT", "ST", "UT", "UR"})
#: VRs the Multiple Value Matching negotiation applies to (C.2.2.2.8)
_MULTIPLE_VALUE_VRS: Final = frozenset({"AE", "AS", "AT", "CS", "LO", "PN", "SH", "UC"})
_NUMBER_STRING_VRS: Final = frozenset({"IS", "DS"})
_BINARY_NUMBER_VRS: Final = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})
_TEMPORAL_VRS: Final = frozenset({"DA", "TM", "DT"})
#: request attributes that are never matched (C.2.2.2: Specific Character Set,
#: Timezone Offset From UTC; C.4.1.1.3.1: Query/Retrieve Level and View)
DEFAULT_IGNORED: Final = frozenset({0x00080005, 0x00080052, 0x00080053, 0x00080201})


def normalize_text(text: str, vr: str) -> str:
    """``text`` without the padding PS3.5 declares not significant for ``vr``."""
    if vr in _STRIP_BOTH:
        return text.strip(" ")
    if vr == "UI":
        return text.rstrip("\0 ")
    return text.rstrip(" ")


def normalize_pn(text: str, *, fold: bool = True) -> str:
    """A person name for comparison: trailing spaces, empty trailing components
    and groups removed (PS3.5 6.2.1), case folded unless ``fold`` is false."""
    groups = [g.rstrip("^ ") for g in text.rstrip(" ").split("=")]
    while groups and not groups[-1]:
        groups.pop()
    name = "=".join(groups)
    return name.casefold() if fold else name


# --- dates and times ------------------------------------------------------------------

#: microseconds in a day
DAY: Final = 86_400_000_000
_SECOND: Final = 1_000_000
_TM_RE: Final = re.compile(r"(\d\d)(?:(\d\d)(?:(\d\d)(?:\.(\d{1,6}))?)?)?")
_DT_BODY: Final = r"\d{4}(?:\d\d(?:\d\d(?:\d\d(?:\d\d(?:\d\d(?:\.\d{1,6})?)?)?)?)?)?(?:[+-]\d{4})?"
_DT_RE: Final = re.compile(
    r"(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(?:\.(\d{1,6}))?(?:([+-])(\d\d)(\d\d))?"
)
_DT_RANGE_RE: Final = re.compile(rf"\s*({_DT_BODY})?\s*-\s*({_DT_BODY})?\s*")
_EPOCH_ORDINAL: Final = 1  # date.fromordinal(1) is 0001-01-01: our zero


def _day_start(year: int, month: int, day: int) -> int:
    return (_dt.date(year, month, day).toordinal() - _EPOCH_ORDINAL) * DAY


def parse_da(text: str) -> tuple[int, int]:
    """The span ``(first, last)`` microsecond of a DA value (PS3.5 Table 6.2-1).

    ``YYYYMMDD``; the ACR-NEMA form ``YYYY.MM.DD`` and, leniently, ``YYYY`` and
    ``YYYYMM`` (a year or a month) are accepted. ``ValueError`` otherwise.
    """
    s = text.strip(" ")
    if len(s) == 10 and s[4] == "." and s[7] == ".":
        s = s[:4] + s[5:7] + s[8:]
    if not s.isdigit() or not s.isascii() or len(s) not in (4, 6, 8):
        raise ValueError(f"not a date: {text!r}")
    year = int(s[:4])
    if len(s) == 4:
        return _day_start(year, 1, 1), _day_start(year, 12, 31) + DAY - 1
    month = int(s[4:6])
    if len(s) == 6:
        last = calendar.monthrange(year, month)[1]
        return _day_start(year, month, 1), _day_start(year, month, last) + DAY - 1
    start = _day_start(year, month, int(s[6:8]))
    return start, start + DAY - 1


def parse_tm(text: str) -> tuple[int, int]:
    """The span ``(first, last)`` of a TM value in microseconds since midnight.

    ``HH[MM[SS[.F{1,6}]]]``; the ACR-NEMA ``HH:MM:SS`` form is accepted; a
    leap second 60 counts as 59.999999. ``ValueError`` otherwise.
    """
    s = text.strip(" ").replace(":", "")
    m = _TM_RE.fullmatch(s)
    if m is None:
        raise ValueError(f"not a time: {text!r}")
    hh, mm, ss, frac = m.groups()
    hour = int(hh)
    minute = int(mm) if mm else 0
    second = int(ss) if ss else 0
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError(f"not a time: {text!r}")
    start = ((hour * 60 + minute) * 60 + min(second, 59)) * _SECOND
    if second == 60:
        return start + _SECOND - 1, start + _SECOND - 1
    if frac:
        start += int(frac.ljust(6, "0"))
        return start, start + 10 ** (6 - len(frac)) - 1
    if ss:
        return start, start + _SECOND - 1
    if mm:
        return start, start + 60 * _SECOND - 1
    return start, start + 3600 * _SECOND - 1


def parse_dt(text: str, offset_minutes: int = 0) -> tuple[int, int]:
    """The span ``(first, last)`` of a DT value in UTC microseconds since 0001-01-01.

    ``YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]``; without an offset suffix the
    value is taken to be ``offset_minutes`` east of UTC. ``ValueError``
    otherwise.
    """
    m = _DT_RE.fullmatch(text.strip(" "))
    if m is None:
        raise ValueError(f"not a date-time: {text!r}")
    yyyy, mo, dd, hh, mi, ss, frac, sign, oh, om = m.groups()
    try:
        year = int(yyyy)
        if not mo:
            first_day = _day_start(year, 1, 1)
            span = (first_day, _day_start(year, 12, 31) + DAY - 1)
        elif not dd:
            month = int(mo)
            last = calendar.monthrange(year, month)[1]
            span = (_day_start(year, month, 1), _day_start(year, month, last) + DAY - 1)
        else:
            day = _day_start(year, int(mo), int(dd))
            if not hh:
                span = (day, day + DAY - 1)
            else:
                tm = parse_tm(hh + (mi or "") + (ss or "") + ("." + frac if frac else ""))
                span = (day + tm[0], day + tm[1])
    except ValueError:
        raise ValueError(f"not a date-time: {text!r}") from None
    if sign:
        offset_minutes = (int(oh) * 60 + int(om)) * (-1 if sign == "-" else 1)
    shift = offset_minutes * 60 * _SECOND
    return span[0] - shift, span[1] - shift


def format_da(micros: int) -> str:
    """``YYYYMMDD`` of the day holding ``micros`` (the scale of :func:`parse_da`)."""
    return _dt.date.fromordinal(micros // DAY + _EPOCH_ORDINAL).strftime("%Y%m%d")


def format_tm(micros: int) -> str:
    """Fixed-width ``HHMMSS.FFFFFF`` of a time of day (the scale of :func:`parse_tm`).

    The index stores TM values in this form so that SQL compares them as strings.
    """
    seconds, fraction = divmod(micros, _SECOND)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}{minute:02d}{second:02d}.{fraction:06d}"


def _offset_of(ds: Dataset | None, default: int) -> int:
    """Minutes east of UTC from Timezone Offset From UTC (0008,0201) of ``ds``."""
    if ds is None:
        return default
    elem = ds.get(0x00080201)
    if elem is None or not isinstance(elem.value, str) or not elem.value.strip():
        return default
    value = elem.value.strip()
    if len(value) == 5 and value[0] in "+-" and value[1:].isdigit():
        minutes = int(value[1:3]) * 60 + int(value[3:])
        return -minutes if value[0] == "-" else minutes
    return default


# --- keys and terms -------------------------------------------------------------------


@attrs.frozen
class Exact:
    """Single Value Matching (C.2.2.2.1), or one UID of a list (C.2.2.2.2).

    ``text`` is normalised (:func:`normalize_text`, :func:`normalize_pn`).
    """

    text: str


@attrs.frozen
class Wildcard:
    """Wild Card Matching (C.2.2.2.4) of the normalised ``pattern``."""

    pattern: str
    regex: re.Pattern[str] = attrs.field(eq=False, repr=False)

    @classmethod
    def compile(cls, pattern: str) -> Wildcard:
        parts = ("(?s:.*)" if c == "*" else "(?s:.)" if c == "?" else re.escape(c) for c in pattern)
        return cls(pattern, re.compile("".join(parts)))

    def glob(self) -> str:
        """The pattern for SQLite's case-sensitive GLOB (``[`` is its only other special)."""
        return self.pattern.replace("[", "[[]")

    def like(self, escape: str = "\\") -> str:
        """The pattern for SQL LIKE with ``escape`` as escape character."""
        out = []
        for c in self.pattern:
            if c == "*":
                out.append("%")
            elif c == "?":
                out.append("_")
            elif c in ("%", "_", escape):
                out.append(escape + c)
            else:
                out.append(c)
        return "".join(out)


@attrs.frozen
class Range:
    """Range Matching (C.2.2.2.5), and single DA/TM/DT values (C.2.2.2.1.3).

    Bounds are inclusive microseconds on the scale of the VR (:func:`parse_da`,
    :func:`parse_tm`, :func:`parse_dt`); ``None`` leaves a side open. ``text``
    is the key value as received.
    """

    lower: int | None
    upper: int | None
    text: str = attrs.field(eq=False)
    is_range: bool = attrs.field(default=True, eq=False)

    def contains(self, point: int) -> bool:
        return (self.lower is None or point >= self.lower) and (
            self.upper is None or point <= self.upper
        )


@attrs.frozen
class Number:
    """Single Value Matching of IS, DS and binary numbers, compared as numbers."""

    value: decimal.Decimal


Term: TypeAlias = Exact | Wildcard | Range | Number


class KeyKind(enum.Enum):
    """What a key asks for."""

    UNIVERSAL = "universal"  # C.2.2.2.3; "*" (C.2.2.2.4 note 1); empty sequence (C.2.2.2.6)
    EMPTY = "empty"  # Empty Value Matching, C.2.2.2.7
    VALUES = "values"  # Single Value, List of UID, Wild Card or Range Matching
    SEQUENCE = "sequence"  # Sequence Matching with item keys, C.2.2.2.6


@attrs.frozen
class Key:
    """One key of a request identifier, parsed.

    ``terms`` are alternatives (any may match) unless ``all_terms`` (Multiple
    Value Matching, C.2.2.2.8). ``items`` is the matcher of a sequence key's
    item. ``element`` is the request's element, kept for its VR.
    """

    tag: BaseTag
    vr: str
    kind: KeyKind
    terms: tuple[Term, ...] = ()
    all_terms: bool = False
    items: Matcher | None = None
    fold: bool = False
    element: DataElement | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def keyword(self) -> str:
        return keyword_for_tag(self.tag) or str(self.tag)

    @property
    def constrains(self) -> bool:
        """Whether the key can reject a candidate (it is not universal)."""
        return self.kind is not KeyKind.UNIVERSAL


def iter_keys(identifier: Dataset) -> Iterator[DataElement]:
    """The elements of a request identifier, decoded one by one.

    A value pydicom cannot decode (an IS of ``*``...) is universal when it
    is only wild cards and padding (C.2.2.2.4 note 1); otherwise it raises
    :class:`InvalidIdentifier` naming the element.
    """
    for tag in list(identifier.keys()):
        try:
            elem = identifier[tag]
        except Exception as exc:
            raw = identifier.get_item(tag)
            value = getattr(raw, "value", None)
            if isinstance(value, bytes) and not value.strip(b" *\0"):
                vr = str(raw.VR) if raw is not None and raw.VR else str(dictionary_VR(tag))
                yield DataElement(tag, vr, empty_value_for_VR(vr))
                continue
            name = keyword_for_tag(tag) or str(tag)
            raise InvalidIdentifier(f"{name}: {exc}", offending=[tag]) from None
        yield elem


def _element_vr(elem: DataElement) -> str:
    vr = str(elem.VR)
    if vr in ("UN", "OB or OW", "US or SS", "US or SS or OW", "US or OW"):
        try:
            return str(dictionary_VR(elem.tag))
        except KeyError:
            return vr
    return vr


def _raw_values(value: Any) -> list[Any]:
    """The values of an element as a list (empty list: no value)."""
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    if isinstance(value, str | bytes) and not value:
        return []
    return [value]


def _key_text(elem: DataElement) -> str | None:
    """The key's text as received (values joined by ``\\``), or ``None`` if not text."""
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return None
    return str(value)


def _to_decimal(value: Any) -> decimal.Decimal:
    try:
        number = decimal.Decimal(str(value).strip(" "))
    except decimal.InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return number


def _temporal_term(vr: str, value: str, offset: int) -> Range:
    """A DA/TM/DT key value: a range ``a-b``, ``-b``, ``a-`` or a single value."""
    if vr == "DT":
        m = _DT_RANGE_RE.fullmatch(value)
        if m is not None:
            first, last = m.groups()
            lower = parse_dt(first, offset)[0] if first else None
            upper = parse_dt(last, offset)[1] if last else None
            return Range(lower, upper, value)
        span = parse_dt(value, offset)
        return Range(span[0], span[1], value, is_range=False)
    parse = parse_da if vr == "DA" else parse_tm
    if "-" in value:
        first, _, last = value.partition("-")
        first, last = first.strip(" "), last.strip(" ")
        lower = parse(first)[0] if first else None
        upper = parse(last)[1] if last else None
        return Range(lower, upper, value)
    span = parse(value)
    return Range(span[0], span[1], value, is_range=False)


def parse_key(
    elem: DataElement,
    options: MatchOptions = QR_OPTIONS,
    *,
    identifier: Dataset | None = None,
) -> Key:
    """Parse one request element into a :class:`Key` (PS3.4 C.2.2.2).

    ``identifier`` is the request data set, for its Timezone Offset From UTC.
    Raises :class:`InvalidIdentifier` naming the element when a value cannot
    be parsed (a date that is not one, a range ``a-b-c``...).
    """
    tag = BaseTag(elem.tag)
    vr = _element_vr(elem)
    if vr == "SQ":
        items = elem.value
        if not items or len(items[0]) == 0:
            return Key(tag, vr, KeyKind.UNIVERSAL, element=elem)
        sub = Matcher.from_elements(items[0], options, identifier=identifier)
        kind = KeyKind.SEQUENCE if sub.constrains else KeyKind.UNIVERSAL
        return Key(tag, vr, kind, items=sub, element=elem)
    text = _key_text(elem)
    if text == "":
        return Key(tag, vr, KeyKind.UNIVERSAL, element=elem)
    if text is not None and options.empty_value_matching and text == '""':
        return Key(tag, vr, KeyKind.EMPTY, element=elem)
    if text is not None and text.strip(" ") and not text.strip(" *"):
        return Key(tag, vr, KeyKind.UNIVERSAL, element=elem)  # "*": C.2.2.2.4 note 1
    fold = vr == "PN" and not options.pn_case_sensitive
    try:
        terms = _parse_terms(elem, vr, text, fold, _offset_of(identifier, options.utc_offset))
    except ValueError as exc:
        raise InvalidIdentifier(f"{keyword_for_tag(tag) or tag}: {exc}", offending=[tag]) from None
    if not terms:
        return Key(tag, vr, KeyKind.UNIVERSAL, element=elem)
    if any(isinstance(t, Wildcard) and not t.pattern.strip("*") for t in terms):
        return Key(tag, vr, KeyKind.UNIVERSAL, element=elem)
    all_terms = options.multiple_value_matching and vr in _MULTIPLE_VALUE_VRS and len(terms) > 1
    return Key(tag, vr, KeyKind.VALUES, tuple(terms), all_terms, fold=fold, element=elem)


def _parse_terms(
    elem: DataElement, vr: str, text: str | None, fold: bool, offset: int
) -> list[Term]:
    if text is None or vr in _BINARY_NUMBER_VRS or vr == "AT":
        values = _raw_values(elem.value)
        if vr in _BINARY_NUMBER_VRS or vr == "AT":
            return [Number(_to_decimal(int(v) if vr == "AT" else v)) for v in values]
        return [Exact(v.hex() if isinstance(v, bytes) else str(v)) for v in values]
    raw = [text] if vr in _SINGLE_VALUED else text.split("\\")
    terms: list[Term] = []
    for value in raw:
        if vr in _TEMPORAL_VRS:
            if value.strip(" "):
                terms.append(_temporal_term(vr, value, offset))
        elif vr in _NUMBER_STRING_VRS:
            if value.strip(" "):
                terms.append(Number(_to_decimal(value)))
        elif vr == "PN":
            name = normalize_pn(value, fold=fold)
            terms.append(Wildcard.compile(name) if ("*" in name or "?" in name) else Exact(name))
        elif vr in WILDCARD_VRS and ("*" in value or "?" in value):
            terms.append(Wildcard.compile(normalize_text(value, vr)))
        else:
            terms.append(Exact(normalize_text(value, vr)))
    return terms


# --- candidate values -----------------------------------------------------------------


def _candidate_values(
    key: Key, elem: DataElement | None, ds: Dataset | None, utc: int
) -> list[Any]:
    """The candidate's values, normalised to compare with ``key``'s terms."""
    if elem is None:
        return []
    values = _raw_values(elem.value)
    if not values:
        return []
    vr = key.vr
    out: list[Any] = []
    if vr in _TEMPORAL_VRS:
        offset = _offset_of(ds, utc)
        for v in values:
            s = str(v).strip(" ")
            if not s:
                continue
            try:
                if vr == "DA":
                    out.append(parse_da(s)[0])
                elif vr == "TM":
                    out.append(parse_tm(s)[0])
                else:
                    out.append(parse_dt(s, offset)[0])
            except ValueError:
                out.append(None)  # present but unparsable: matches no range
        return out
    if vr in _NUMBER_STRING_VRS or vr in _BINARY_NUMBER_VRS or vr == "AT":
        for v in values:
            if isinstance(v, str) and not v.strip(" "):
                continue
            try:
                out.append(_to_decimal(int(v) if vr == "AT" else v))
            except (ValueError, TypeError):
                out.append(None)
        return out
    for v in values:
        if isinstance(v, bytes):
            out.append(v.hex())
            continue
        s = normalize_pn(str(v), fold=key.fold) if vr == "PN" else normalize_text(str(v), vr)
        if s:
            out.append(s)
    return out


def _term_matches(term: Term, value: Any) -> bool:
    if value is None:
        return False
    if isinstance(term, Exact):
        return bool(term.text == value)
    if isinstance(term, Wildcard):
        return isinstance(value, str) and term.regex.fullmatch(value) is not None
    if isinstance(term, Range):
        return isinstance(value, int) and term.contains(value)
    return bool(term.value == value)


def _values_match(key: Key, values: list[Any], match_unknown: bool) -> bool:
    if not values:
        return match_unknown
    if key.all_terms:
        return all(any(_term_matches(t, v) for v in values) for t in key.terms)
    return any(_term_matches(t, v) for t in key.terms for v in values)


@attrs.frozen
class _Combined:
    """A DA key and its TM key matched as one DT range (C.2.2.2.5.4)."""

    date: Key
    time: Key
    lower: int | None  # on the DA scale plus the time of day
    upper: int | None

    def matches(self, ds: Dataset, match_unknown: bool) -> bool:
        date_elem = ds.get(self.date.tag)
        days = [v for v in _candidate_values(self.date, date_elem, ds, 0) if v is not None]
        if not days:
            return match_unknown
        times = [
            v for v in _candidate_values(self.time, ds.get(self.time.tag), ds, 0) if v is not None
        ]
        for day in days:
            first = day + (times[0] if times else 0)
            last = day + (times[0] if times else DAY - 1)
            if (self.upper is None or first <= self.upper) and (
                self.lower is None or last >= self.lower
            ):
                return True
        return False


def combine_datetime(date: Key, time: Key) -> tuple[int | None, int | None] | None:
    """The combined bounds of a DA key and a TM key, or ``None`` if they do not
    specify the same form of Range Matching (C.2.2.2.5.4)."""
    if date.kind is not KeyKind.VALUES or time.kind is not KeyKind.VALUES:
        return None
    if len(date.terms) != 1 or len(time.terms) != 1:
        return None
    d, t = date.terms[0], time.terms[0]
    if not (isinstance(d, Range) and isinstance(t, Range) and d.is_range and t.is_range):
        return None
    if (d.lower is None) != (t.lower is None) or (d.upper is None) != (t.upper is None):
        return None
    lower = None if d.lower is None or t.lower is None else d.lower + t.lower
    upper = None if d.upper is None or t.upper is None else d.upper - DAY + 1 + t.upper
    return lower, upper


def datetime_pairs(keys: Iterable[Key]) -> list[tuple[Key, Key]]:
    """DA keys named ``...Date`` with the TM key of the same ``...Time`` name."""
    by_keyword = {k.keyword: k for k in keys}
    pairs = []
    for keyword, key in by_keyword.items():
        if key.vr == "DA" and keyword.endswith("Date"):
            other = by_keyword.get(keyword[:-4] + "Time")
            if other is not None and other.vr == "TM":
                pairs.append((key, other))
    return pairs


# --- the matcher ----------------------------------------------------------------------


@attrs.frozen
class Matcher:
    """The parsed keys of an identifier: :meth:`matches` and :meth:`project`.

    Build it once per request with :func:`compile_identifier`, then run it on
    each candidate.
    """

    keys: tuple[Key, ...]
    options: MatchOptions
    combined: tuple[_Combined, ...] = ()

    @classmethod
    def from_elements(
        cls,
        elements: Iterable[DataElement],
        options: MatchOptions = QR_OPTIONS,
        *,
        identifier: Dataset | None = None,
        ignore: frozenset[int] = DEFAULT_IGNORED,
    ) -> Matcher:
        keys = []
        if isinstance(elements, Dataset):
            elements = iter_keys(elements)
        for elem in elements:
            tag = elem.tag
            if tag in ignore or tag.element == 0 or tag.group < 0x0008:
                continue
            keys.append(parse_key(elem, options, identifier=identifier))
        combined: list[_Combined] = []
        if options.combined_datetime:
            for date, time in datetime_pairs(keys):
                bounds = combine_datetime(date, time)
                if bounds is not None:
                    combined.append(_Combined(date, time, *bounds))
        return cls(tuple(keys), options, tuple(combined))

    @property
    def constrains(self) -> bool:
        """Whether any key can reject a candidate."""
        return any(k.constrains for k in self.keys)

    def matches(self, ds: Dataset) -> bool:
        """Whether ``ds`` matches every key (PS3.4 C.2.2.2)."""
        unknown = self.options.match_unknown
        paired: set[BaseTag] = set()
        for comb in self.combined:
            if not comb.matches(ds, unknown):
                return False
            paired.add(comb.date.tag)
            paired.add(comb.time.tag)
        for key in self.keys:
            kind = key.kind
            if kind is KeyKind.UNIVERSAL or key.tag in paired:
                continue
            elem = ds.get(key.tag)
            if kind is KeyKind.EMPTY:
                if elem is not None and _raw_values(elem.value):
                    return False
            elif kind is KeyKind.SEQUENCE:
                items = elem.value if elem is not None and elem.VR == "SQ" else None
                if not items:
                    if not unknown:
                        return False
                    continue
                assert key.items is not None
                if not any(key.items.matches(item) for item in items):
                    return False
            elif not _values_match(
                key, _candidate_values(key, elem, ds, self.options.utc_offset), unknown
            ):
                return False
        return True

    def project(self, ds: Dataset) -> Dataset:
        """The response identifier for candidate ``ds``: each requested key with
        the candidate's value, or empty when it has none (C.4.1.1.3.2);
        sequences hold the matching items reduced to the requested item keys
        (C.2.2.2.6)."""
        out = Dataset()
        for elem in self.project_elements(ds):
            out[elem.tag] = elem
        return out

    def project_elements(self, ds: Dataset) -> Iterator[DataElement]:
        for key in self.keys:
            yield _project_key(key, ds.get(key.tag))


def _project_key(key: Key, elem: DataElement | None) -> DataElement:
    if key.vr == "SQ":
        if elem is None or elem.VR != "SQ":
            return DataElement(key.tag, "SQ", Sequence())
        if key.items is None:
            return DataElement(key.tag, "SQ", copy.deepcopy(elem.value))
        sub = key.items
        items = [sub.project(item) for item in elem.value if sub.matches(item)]
        return DataElement(key.tag, "SQ", Sequence(items))
    if elem is None:
        vr = key.vr
        return DataElement(key.tag, vr, empty_value_for_VR(vr))
    value = elem.value
    if isinstance(value, MultiValue):
        value = list(value)
    return DataElement(key.tag, elem.VR, value)


def has_non_ascii(elem: DataElement) -> bool:
    """Whether a response element holds text outside the default repertoire
    (so that the response needs a Specific Character Set, C.4.1.1.3.2)."""
    value = elem.value
    if isinstance(value, str | PersonName):
        return not str(value).isascii()
    if isinstance(value, MultiValue | list | tuple):
        return any(isinstance(v, str | PersonName) and not str(v).isascii() for v in value)
    if isinstance(value, Sequence):
        return any(has_non_ascii(e) for item in value for e in item)
    return False


def compile_identifier(
    identifier: Dataset,
    options: MatchOptions = QR_OPTIONS,
    *,
    ignore: frozenset[int] = DEFAULT_IGNORED,
) -> Matcher:
    """The :class:`Matcher` of a request identifier.

    Specific Character Set, Timezone Offset From UTC, Query/Retrieve Level and
    View (``ignore``), group lengths and groups below 0008 are not keys.
    """
    return Matcher.from_elements(identifier, options, identifier=identifier, ignore=ignore)


def matches(identifier: Dataset, candidate: Dataset, options: MatchOptions = QR_OPTIONS) -> bool:
    """Whether ``candidate`` matches every key of ``identifier`` (PS3.4 C.2.2.2)."""
    return compile_identifier(identifier, options).matches(candidate)


# --- SQL ------------------------------------------------------------------------------


class ColumnKind(enum.Enum):
    """How the index stores an attribute in a column, and so how to match it in SQL.

    TEXT: the value without its insignificant padding (:func:`normalize_text`);
    PN: :func:`normalize_pn` of the value (case folded); UID; DATE:
    ``YYYYMMDD``; TIME: :func:`format_tm` of the start of the value; INT: an
    integer (IS).
    """

    TEXT = "text"
    PN = "pn"
    UID = "uid"
    DATE = "date"
    TIME = "time"
    INT = "int"


def unknown_condition(column: ColumnElement[Any], kind: ColumnKind) -> ColumnElement[bool]:
    """The condition "this attribute has no value" for a column of ``kind``."""
    if kind is ColumnKind.INT:
        return column.is_(None)
    return or_(column.is_(None), column == "")


def term_condition(
    term: Term, column: ColumnElement[Any], kind: ColumnKind, dialect: str
) -> ColumnElement[bool]:
    """One term as an SQL condition on ``column`` (stored as ``kind`` says).

    Wild cards become GLOB on SQLite (case-sensitive, unlike its LIKE) and
    LIKE with ``\\`` as escape character elsewhere.
    """
    if isinstance(term, Exact):
        return column == term.text
    if isinstance(term, Wildcard):
        if dialect == "sqlite":
            cond: ColumnElement[bool] = column.op("GLOB", is_comparison=True)(term.glob())
            return cond
        return column.like(term.like(), escape="\\")
    if isinstance(term, Range):
        if kind is ColumnKind.DATE:
            fmt = format_da
        elif kind is ColumnKind.TIME:
            fmt = format_tm
        else:
            raise TypeError(f"range on a {kind.value} column")
        parts = []
        if term.lower is not None:
            parts.append(column >= fmt(term.lower))
        if term.upper is not None:
            parts.append(column <= fmt(term.upper))
        return and_(*parts) if parts else column.is_not(None)
    if kind is not ColumnKind.INT:
        return column == str(term.value)
    if term.value != term.value.to_integral_value():
        return false()
    return column == int(term.value)


def key_condition(
    key: Key,
    column: ColumnElement[Any],
    kind: ColumnKind,
    dialect: str,
    *,
    match_unknown: bool,
) -> ColumnElement[bool] | None:
    """``key`` as an SQL condition on ``column``, ``None`` if it is universal.

    The same rules as :meth:`Matcher.matches`, given that the column holds the
    normalised value described by ``kind``.
    """
    if key.kind is KeyKind.UNIVERSAL:
        return None
    if key.kind is KeyKind.EMPTY:
        return unknown_condition(column, kind)
    if key.kind is KeyKind.SEQUENCE:
        raise TypeError("sequence keys are matched in Python")
    conds = [term_condition(t, column, kind, dialect) for t in key.terms]
    cond = and_(*conds) if key.all_terms else or_(*conds)
    if match_unknown:
        cond = or_(cond, unknown_condition(column, kind))
    return cond
