"""A fast encoder and decoder for the common, simple data sets (PS3.5 7.1, 7.5; little endian).

C-FIND, worklist and other query responses are small data sets of a few text
attributes, sent thousands of times per query; pydicom's general writer costs
tens of microseconds for each. :func:`encode_simple` writes such a data set in
Implicit or Explicit VR Little Endian directly from its elements with
:mod:`struct`, and produces **exactly the bytes pydicom's**
``write_dataset`` **would** (a property test compares the two).

It only handles what it can reproduce with certainty and returns ``None`` for
anything else, so that the caller uses pydicom for the whole data set:

* elements pydicom has not converted (``RawDataElement``: kept as read, and
  pydicom copies them verbatim), ambiguous VRs (``US or SS``...: pydicom
  resolves them first), bulk and binary-string VRs (OB, OW, OD, OF, OL, OV,
  UN) and AT;
* text that is not pure ASCII (its bytes depend on the Specific Character
  Set, PS3.5 6.1) and values of unexpected types (``bytes`` for text, date
  and time objects, numpy arrays...);
* a value too long for the 16-bit length of its VR in explicit VR (pydicom
  then changes the VR to UN).

Values are padded to even length as pydicom does (PS3.5 6.2: UI with NUL,
other text with a space); multiple values are joined with a backslash;
sequences and items get defined lengths unless they were read with undefined
ones; retired group lengths (gggg,0000), g > 6, are not written.

:func:`decode_simple` is the reverse for the receiving side: it cuts a data
set into pydicom ``RawDataElement`` s with :mod:`struct`, as pydicom's
``read_dataset`` does (values stay bytes until an application reads them:
pydicom converts each element on first access), and returns ``None`` -- use
pydicom -- for undefined lengths, item delimiters, a VR pydicom would not
recognise, an encoding that looks switched (pydicom's heuristic then
decides), and truncated data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, cast

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataelem import empty_value_for_VR as _empty_value
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR, PersonName

__all__ = ["decode_simple", "encode_simple"]


class _Unsupported(Exception):
    """The data set needs pydicom's writer."""


_UNSUPPORTED = _Unsupported()

_IMPLICIT_HEADER = struct.Struct("<HHI")
_SHORT_HEADER = struct.Struct("<HH2sH")
_LONG_HEADER = struct.Struct("<HH2sHI")
_ITEM = 0xE000
_ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_UNDEFINED = 0xFFFFFFFF

#: VRs with a 16-bit length field in explicit VR (PS3.5 Table 7.1-2); all others have 32 bits
_SHORT_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO"}
    | {"LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"}
)
_MULTI = (list, tuple, MultiValue)
_SPECIFIC_CHARACTER_SET = 0x00080005
_VR_BYTES = {vr: vr.encode() for vr in (*_SHORT_VRS, "OB", "OD", "OF", "OL", "OV", "OW", "SQ")}
_VR_BYTES.update({vr: vr.encode() for vr in ("SV", "UC", "UN", "UR", "UT", "UV")})


def _text(value: Any, pad: bytes) -> bytes:
    """AE, AS, CS, DA, DT, TM, UI, UR (pydicom's write_string) and LO, LT, SH, ST, UC,
    UT (write_text): one or more ASCII strings."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, _MULTI):
        for item in value:
            if not isinstance(item, str):
                raise _UNSUPPORTED
        text = "\\".join(value)
    else:
        raise _UNSUPPORTED
    if not text.isascii():
        raise _UNSUPPORTED
    raw = text.encode("ascii")
    return raw + pad if len(raw) & 1 else raw


def _space_padded(value: Any) -> bytes:
    return _text(value, b" ")


def _uid(value: Any) -> bytes:
    return _text(value, b"\x00")


def _number_string(value: Any) -> bytes:
    """IS and DS: the string the value was made from, else ``str()`` (write_number_string)."""
    if isinstance(value, _MULTI):
        text = "\\".join(
            v.original_string if hasattr(v, "original_string") else str(v) for v in value
        )
    elif isinstance(value, str | int | float):
        text = value.original_string if hasattr(value, "original_string") else str(value)
    else:
        raise _UNSUPPORTED
    if not isinstance(text, str) or not text.isascii():
        raise _UNSUPPORTED
    raw = text.encode("ascii")
    return raw + b" " if len(raw) & 1 else raw


def _one_name(name: Any) -> bytes:
    if not isinstance(name, PersonName):
        raise _UNSUPPORTED
    original: bytes | None = name.original_string  # None until encoded, when made from a str
    if original is None:
        # what PersonName.encode() builds from the components (trailing empty ones dropped
        # when it was made from a str)
        text = "=".join(name.components)
        if not text.isascii():
            raise _UNSUPPORTED
        return text.encode("ascii")
    # read from the wire or already encoded: pydicom writes these bytes, or re-encodes
    # the components, which gives the same bytes when they are ASCII without a trailing '='
    if not isinstance(original, bytes) or not original.isascii() or original.endswith(b"="):
        raise _UNSUPPORTED
    return original


def _person_name(value: Any) -> bytes:
    if isinstance(value, _MULTI):
        raw = b"\\".join([_one_name(v) for v in value])
    else:
        raw = _one_name(value)
    return raw + b" " if len(raw) & 1 else raw


def _binary(fmt: str) -> Callable[[Any], bytes]:
    single = struct.Struct("<" + fmt)

    def encode(value: Any) -> bytes:
        if isinstance(value, int | float):
            try:
                return single.pack(value)
            except struct.error:
                raise _UNSUPPORTED from None
        if type(value) is list or isinstance(value, MultiValue):
            # pydicom treats the first value of a multi-valued SS LUT Descriptor as US
            if fmt == "h":
                raise _UNSUPPORTED
            try:
                return struct.pack(f"<{len(value)}{fmt}", *value)
            except struct.error:
                raise _UNSUPPORTED from None
        raise _UNSUPPORTED

    return encode


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    **dict.fromkeys(("AE", "AS", "CS", "DA", "DT", "TM", "UR"), _space_padded),
    **dict.fromkeys(("LO", "LT", "SH", "ST", "UC", "UT"), _space_padded),
    "UI": _uid,
    "IS": _number_string,
    "DS": _number_string,
    "PN": _person_name,
    "US": _binary("H"),
    "SS": _binary("h"),
    "UL": _binary("L"),
    "SL": _binary("l"),
    "FL": _binary("f"),
    "FD": _binary("d"),
    "SV": _binary("q"),
    "UV": _binary("Q"),
}


def _is_text(value: Any) -> bool:
    """A str or a list of them (what pydicom can take as a Specific Character Set)."""
    if isinstance(value, str) or value is None:
        return True
    return isinstance(value, _MULTI) and all(isinstance(v, str) for v in value)


def _is_empty(value: Any) -> bool:
    """pydicom writes no value when the element's VM is 0."""
    if value is None:
        return True
    if isinstance(value, str | bytes | PersonName):
        return not value
    if isinstance(value, _MULTI):
        return len(value) == 0
    return False


def _sequence(items: Any, implicit: bool, undefined: bool) -> bytes:
    parts: list[bytes] = []
    for item in items:
        if not isinstance(item, Dataset):
            raise _UNSUPPORTED
        body = _encode(item, implicit)
        if getattr(item, "is_undefined_length_sequence_item", False):
            parts += (_IMPLICIT_HEADER.pack(0xFFFE, _ITEM, _UNDEFINED), body, _ITEM_DELIMITER)
        else:
            parts += (_IMPLICIT_HEADER.pack(0xFFFE, _ITEM, len(body)), body)
    if undefined:
        parts.append(_SEQUENCE_DELIMITER)
    return b"".join(parts)


def _elements(ds: Dataset) -> Any:
    """``ds.elements()``, without its per-element lookups when pydicom keeps a plain dict
    (a deferred raw element shows as raw either way, and is refused)."""
    store = getattr(ds, "_dict", None)
    if type(store) is dict:
        return [store[tag] for tag in sorted(store)]
    return ds.elements()


def _encode(ds: Dataset, implicit: bool) -> bytes:
    parts: list[bytes] = []
    append = parts.append
    encoders = _ENCODERS
    vr_bytes = _VR_BYTES
    for elem in _elements(ds):
        if type(elem) is not DataElement:
            raise _UNSUPPORTED  # a RawDataElement: pydicom writes it as read
        tag = elem.tag
        group, number = tag >> 16, tag & 0xFFFF
        if number == 0 and group > 6:
            continue  # retired group length (PS3.5 7.2)
        vr = elem.VR
        value = elem.value
        if tag == _SPECIFIC_CHARACTER_SET and not _is_text(value):
            raise _UNSUPPORTED  # pydicom reads it to encode text, and may fail on it
        undefined = False
        if vr == "SQ":
            undefined = bool(elem.is_undefined_length)
            data = _sequence(value or (), implicit, undefined)
        else:
            encoder = encoders.get(vr)
            if encoder is None or elem.is_undefined_length:
                raise _UNSUPPORTED
            if type(value) is str:  # the common case
                data = encoder(value) if value else b""
            else:
                data = b"" if _is_empty(value) else encoder(value)
        length = _UNDEFINED if undefined else len(data)
        if implicit:
            append(_IMPLICIT_HEADER.pack(group, number, length))
        elif vr in _SHORT_VRS:
            if length > 0xFFFF:
                raise _UNSUPPORTED  # pydicom writes it as UN
            append(_SHORT_HEADER.pack(group, number, vr_bytes[vr], length))
        else:
            append(_LONG_HEADER.pack(group, number, vr_bytes[vr], 0, length))
        append(data)
    return b"".join(parts)


def encode_simple(ds: Dataset, implicit: bool) -> bytes | None:
    """``ds`` in Implicit (``implicit``) or Explicit VR Little Endian, or ``None`` when
    pydicom must encode it (see the module docstring)."""
    try:
        return _encode(ds, implicit)
    except _Unsupported:
        return None


# -- decoding -------------------------------------------------------------------------------

_EXPLICIT_HEAD = struct.Struct("<HH2sH")
_IMPLICIT_HEAD = struct.Struct("<HHI")
_UL = struct.Struct("<I")
#: the two-letter VRs pydicom reads, with the length of their length field
_LONG_VRS = {vr.encode(): vr for vr in VR if len(vr) == 2 and vr in EXPLICIT_VR_LENGTH_32}
_OTHER_VRS = {vr.encode(): vr for vr in VR if len(vr) == 2 and vr not in EXPLICIT_VR_LENGTH_32}


def _looks_explicit(data: bytes) -> bool:
    """pydicom's test of the first element: two capital letters where explicit VR has its VR."""
    return 0x40 < data[4] < 0x5B and 0x40 < data[5] < 0x5B


def decode_simple(data: bytes, implicit: bool) -> Dataset | None:
    """The data set in ``data`` (Implicit or Explicit VR Little Endian) as pydicom's
    ``read_dataset`` returns it, or ``None`` when pydicom must read it (module docstring)."""
    end = len(data)
    if end >= 6 and _looks_explicit(data) == implicit:
        return None  # pydicom warns and switches encodings: let it
    elements: dict[BaseTag, DataElement | RawDataElement] = {}
    offset = 0
    long_vrs, other_vrs = _LONG_VRS, _OTHER_VRS
    while end - offset >= 8:
        if implicit:
            group, number, length = _IMPLICIT_HEAD.unpack_from(data, offset)
            offset += 8
            vr: str | None = None
        else:
            group, number, raw_vr, length = _EXPLICIT_HEAD.unpack_from(data, offset)
            offset += 8
            vr = other_vrs.get(raw_vr)
            if vr is None:
                vr = long_vrs.get(raw_vr)
                if vr is None or end - offset < 4:
                    return None  # not a VR (pydicom guesses), or truncated
                length = _UL.unpack_from(data, offset)[0]
                offset += 4
        if length == 0xFFFFFFFF or group == 0xFFFE or length > end - offset:
            return None  # undefined length, delimiters, truncated value
        tag = BaseTag((group << 16) | number)
        value: bytes | None = (
            data[offset : offset + length] if length else cast(bytes | None, _empty_value(vr, True))
        )
        elements[tag] = RawDataElement(tag, vr, length, value, offset, implicit, True)
        offset += length
    if offset != end:
        return None  # trailing bytes: pydicom ignores them, and may warn
    ds = Dataset(elements)
    encoding: Any = default_encoding
    charset = elements.get(BaseTag(_SPECIFIC_CHARACTER_SET))
    if isinstance(charset, RawDataElement):
        encoding = convert_encodings(convert_raw_data_element(charset).value)
    ds.set_original_encoding(implicit, True, encoding)
    return ds
