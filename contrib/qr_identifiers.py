"""Query/Retrieve identifiers on the command line (PS3.4 C.4.1, C.6; K.6).

What ``dicomnet find``, ``get`` and ``move`` (:mod:`dicomnet.contrib.qr_cli`)
and ``dicomnet serve`` share about the information models, and how keys and
matches are written:

* :data:`MODELS`, :data:`LEVELS`: the models of ``-m`` (Patient Root, Study
  Root, Modality Worklist): their SOP Class UIDs per operation, their levels;
* :func:`parse_key`, :func:`parse_keys`: ``-k`` keys written as for DCMTK's
  tools -- a keyword or a tag ``gggg,eeee``, a path through sequences such as
  ``ScheduledProcedureStepSequence[0].Modality=CT``, and ``=VALUE`` for a
  matching key, nothing for a return key -- into an identifier;
* :func:`identifier_to_json`: a response identifier as one JSON object.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag

from dicomnet.sop_class import (
    ModalityWorklistInformationModelFind,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

__all__ = ["LEVELS", "MODELS", "InvalidKey", "identifier_to_json", "parse_key", "parse_keys"]

#: the information models of ``-m``, per operation (PS3.4 C.6.1, C.6.2, K.6.1)
MODELS: dict[str, dict[str, str]] = {
    "patient": {
        "C-FIND": str(PatientRootQueryRetrieveInformationModelFind),
        "C-GET": str(PatientRootQueryRetrieveInformationModelGet),
        "C-MOVE": str(PatientRootQueryRetrieveInformationModelMove),
    },
    "study": {
        "C-FIND": str(StudyRootQueryRetrieveInformationModelFind),
        "C-GET": str(StudyRootQueryRetrieveInformationModelGet),
        "C-MOVE": str(StudyRootQueryRetrieveInformationModelMove),
    },
    "worklist": {"C-FIND": str(ModalityWorklistInformationModelFind)},
}

#: the Query/Retrieve levels each model has (PS3.4 C.6.1.1, C.6.2.1: Study Root has no PATIENT)
LEVELS: dict[str, tuple[str, ...]] = {
    "patient": ("PATIENT", "STUDY", "SERIES", "IMAGE"),
    "study": ("STUDY", "SERIES", "IMAGE"),
    "worklist": (),
}

_QUERY_RETRIEVE_LEVEL = 0x00080052
_SPECIFIC_CHARACTER_SET = 0x00080005

#: VRs whose value is one value, backslash included (PS3.5 6.2: LT, ST, UT, UR allow no VM > 1)
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR", "OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})

_COMPONENT = re.compile(
    r"""^(?:\(?(?P<group>[0-9A-Fa-f]{4}),(?P<element>[0-9A-Fa-f]{4})\)?|(?P<keyword>[A-Za-z][A-Za-z0-9]*))
        (?:\[(?P<index>\d+)\])?$""",
    re.VERBOSE,
)


# -- keys -------------------------------------------------------------------------------------


class InvalidKey(ValueError):
    """A ``-k`` key that cannot be understood; the message says why."""


def _tag_of(text: str, key: str) -> tuple[BaseTag, int | None]:
    match = _COMPONENT.match(text)
    if match is None:
        raise InvalidKey(
            f"{key!r}: {text!r} is neither a keyword nor a tag gggg,eeee (optionally with [n])"
        )
    index = None if match["index"] is None else int(match["index"])
    if match["keyword"] is not None:
        number = tag_for_keyword(match["keyword"])
        if number is None:
            raise InvalidKey(f"{key!r}: {match['keyword']!r} is not a DICOM keyword")
        return Tag(number), index
    return Tag(int(match["group"], 16), int(match["element"], 16)), index


def _vr_of(tag: BaseTag) -> str:
    """The tag's VR from the data dictionary: LO for a private creator, UN if unknown."""
    try:
        vr = str(dictionary_VR(tag))
    except KeyError:
        if tag.is_private and 0x0010 <= tag.element <= 0x00FF:
            return "LO"  # Private Creator Data Element (PS3.5 7.8.1)
        return "UN"
    # ambiguous VRs (US or SS, OB or OW...): the first is good enough for a key
    return vr.split(" or ", maxsplit=1)[0]


def _value(vr: str, text: str, key: str) -> Any:
    """The element value for ``text`` (``\\`` separates values where the VR allows several)."""
    if text == "":
        return None if vr not in _BINARY_VRS else b""
    if vr in _BINARY_VRS:
        return text.encode("utf-8")
    parts = [text] if vr in _SINGLE_VALUED else text.split("\\")
    try:
        if vr in _INT_VRS:
            values: list[Any] = [int(p, 0) for p in parts]
        elif vr in _FLOAT_VRS:
            values = [float(p) for p in parts]
        elif vr == "AT":
            values = [_tag_of(p.strip(), key)[0] for p in parts]
        else:
            values = parts
    except (ValueError, InvalidKey) as exc:
        raise InvalidKey(f"{key!r}: {text!r} is not a valid {vr} value ({exc})") from None
    return values[0] if len(values) == 1 else values


def parse_key(key: str, into: Dataset | None = None) -> Dataset:
    """Add one ``-k`` key to ``into`` (a new Dataset by default) and return it.

    ``KEY`` or ``KEY=VALUE``, where ``KEY`` is a keyword (``PatientName``), a
    tag (``0010,0010`` or ``(0010,0010)``), or a path through sequences whose
    items are numbered from 0: ``ScheduledProcedureStepSequence[0].Modality``
    (an item without ``[n]`` is item 0). Without a value the key is a return
    key (an empty value; an empty sequence for a sequence, which matches any,
    PS3.4 C.2.2.2.6). Values of VRs that allow several are separated by
    ``\\``. A key given twice keeps the last value. Raises :class:`InvalidKey`.
    """
    ds = Dataset() if into is None else into
    path, _, text = key.partition("=")
    components = path.strip().split(".")
    if not path.strip() or any(not c for c in components):
        raise InvalidKey(f"{key!r}: no attribute named")
    current = ds
    for position, component in enumerate(components):
        tag, index = _tag_of(component, key)
        vr = _vr_of(tag)
        last = position == len(components) - 1
        if not last or index is not None:
            if vr != "SQ":
                raise InvalidKey(f"{key!r}: {component!r} is not a sequence (VR {vr})")
            if last and text:
                raise InvalidKey(f"{key!r}: a sequence item cannot have a value")
            element = current.get(tag)
            if element is None or element.VR != "SQ":
                current.add(DataElement(tag, "SQ", DicomSequence()))
                element = current[tag]
            items = element.value
            wanted = 0 if index is None else index
            while len(items) <= wanted:
                items.append(Dataset())
            current = items[wanted]
            continue
        if vr == "SQ":
            if text:
                raise InvalidKey(
                    f"{key!r}: a sequence takes no value; give its items' keys "
                    f"({component}[0].Keyword=VALUE)"
                )
            if tag not in current:
                current.add(DataElement(tag, "SQ", DicomSequence()))
            continue
        current.add(DataElement(tag, vr, _value(vr, text, key)))
    return ds


def parse_keys(keys: Sequence[str], level: str | None = None) -> Dataset:
    """The query identifier: Query/Retrieve Level ``level`` and the ``-k`` keys, in order.

    A key giving QueryRetrieveLevel must agree with ``level``. When a value
    holds characters beyond ASCII and no Specific Character Set key is given,
    ISO_IR 192 (UTF-8) is set (PS3.5 6.1.2.5.3).
    """
    ds = Dataset()
    if level is not None:
        ds.QueryRetrieveLevel = level
    for key in keys:
        parse_key(key, ds)
    if level is not None and str(ds.get("QueryRetrieveLevel", "")).strip().upper() != level:
        raise InvalidKey(
            f"QueryRetrieveLevel={ds.QueryRetrieveLevel} contradicts -L {level}"
        )
    if _SPECIFIC_CHARACTER_SET not in ds and not all(k.isascii() for k in keys):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


# -- JSON output ------------------------------------------------------------------------------


def _name(tag: BaseTag) -> str:
    keyword = keyword_for_tag(tag) if not tag.is_private else ""
    return keyword or f"{tag.group:04X},{tag.element:04X}"


def _one(value: Any) -> str:
    if isinstance(value, BaseTag):
        return f"{value.group:04X},{value.element:04X}"
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


def _text(element: DataElement) -> str:
    value = element.value
    if value is None or value == "":
        return ""
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
        text = data.rstrip(b"\x00 ")
        if element.VR == "UN" and all(32 <= b < 127 or b in b"\\" for b in text):
            return text.decode("ascii")  # a text value of unknown VR (private, implicit VR)
        return base64.b64encode(data).decode("ascii")
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_one(v) for v in value)
    return _one(value)


def identifier_to_json(ds: Dataset) -> dict[str, Any]:
    """A C-FIND response identifier as a JSON-ready dict, in tag order.

    Keys are the DICOM keywords, ``gggg,eeee`` (upper-case hex) for private
    and unknown tags; values are strings, several values joined with ``\\``
    as on the wire, an empty value ``""``; a sequence is a list of such dicts;
    binary values (OB, OW, UN...) are base64, except UN values that are
    printable text (private attributes read in Implicit VR Little Endian).
    """
    out: dict[str, Any] = {}
    for element in ds:
        name = _name(element.tag)
        if element.VR == "SQ":
            out[name] = [identifier_to_json(item) for item in element.value or ()]
        else:
            out[name] = _text(element)
    return out
