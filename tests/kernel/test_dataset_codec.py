"""The fast data-set codec writes and reads exactly what pydicom does (PS3.5 7.1, 7.5).

``encode_dataset`` takes :func:`dicomnet._dataset_codec.encode_simple` for
small little endian data sets and pydicom's ``write_dataset`` for the rest;
whichever runs, the bytes must be pydicom's. Hypothesis draws data sets of
every VR the fast path handles and some it must refuse (non-ASCII text, OB,
AT, ambiguous VRs, raw elements, values too long for a 16-bit length), with
nested sequences of defined and undefined length. ``decode_simple`` must give
the raw elements pydicom's ``read_dataset`` gives, for those encodings, cut
short, and for any bytes, or refuse.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.valuerep import DS, IS

from dicomnet._dataset_codec import decode_simple, encode_simple
from dicomnet.datasets import decode_dataset, encode_dataset

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"


def pydicom_bytes(ds: Dataset, implicit: bool, little: bool = True) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()


def element(tag: int, vr: str, value: Any) -> DataElement:
    return DataElement(tag, vr, value, validation_mode=config.IGNORE)


# -- strategies -----------------------------------------------------------------------------

_ascii = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\"))
_any_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x17F, exclude_characters="\\"), max_size=20
)
_short_ascii = _ascii.map(lambda s: s[:20])
_texts = st.one_of(_short_ascii, _short_ascii, _short_ascii, _any_text)  # mostly ASCII


def _multi(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(values, st.lists(values, max_size=4))


_TEXT_VRS = ("AE", "AS", "CS", "DA", "DT", "TM", "LO", "LT", "SH", "ST", "UC", "UT", "UR")
_BINARY = {
    "US": st.integers(0, 0xFFFF),
    "SS": st.integers(-0x8000, 0x7FFF),
    "UL": st.integers(0, 0xFFFFFFFF),
    "SL": st.integers(-(2**31), 2**31 - 1),
    "SV": st.integers(-(2**63), 2**63 - 1),
    "UV": st.integers(0, 2**64 - 1),
    "FL": st.floats(width=32, allow_nan=False),
    "FD": st.floats(allow_nan=False),
}
_uids = st.lists(st.integers(0, 10**12).map(str), min_size=1, max_size=6).map(".".join)
_names = st.one_of(
    _ascii.map(lambda s: s[:30]),
    st.sampled_from(["DOE^JOHN", "A^B=", "=X", "A^B^^^", "YAMADA^TARO=山田^太郎", "Müller^K", ""]),
)


@st.composite
def plain_elements(draw: st.DrawFn) -> tuple[str, Any]:
    kinds = ["text"] * 4 + ["UI"] * 3 + ["IS", "DS", "PN", "PN"] + ["binary"] * 3 + ["other"]
    kind = draw(st.sampled_from(kinds))
    if kind == "text":
        return draw(st.sampled_from(_TEXT_VRS)), draw(_multi(_texts))
    if kind == "UI":
        return "UI", draw(_multi(_uids))
    if kind == "IS":
        numbers = st.integers(-(2**31), 2**31 - 1)
        return "IS", draw(_multi(st.one_of(numbers.map(str), numbers.map(IS))))
    if kind == "DS":
        numbers = st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.6g}")
        return "DS", draw(_multi(st.one_of(numbers, numbers.map(DS))))
    if kind == "PN":
        return "PN", draw(_multi(_names))
    if kind == "binary":
        vr = draw(st.sampled_from(sorted(_BINARY)))
        strategy = _BINARY[vr]
        if vr == "SS":  # a multi-valued SS is refused (pydicom's LUT Descriptor rule)
            return vr, draw(st.one_of(strategy, st.lists(strategy, max_size=3)))
        return vr, draw(st.one_of(strategy, st.lists(strategy, max_size=4)))
    # what the fast path refuses: pydicom must write these
    return draw(
        st.sampled_from(
            [
                ("OB", b"\x01\x02\x03"),
                ("AT", 0x00100010),
                ("US or SS", 1),
                ("LO", b"bytes value"),
                ("LO", "x" * 70000),
                ("UN", b"\x00\x01"),
            ]
        )
    )


_tags = st.integers(0x0008, 0x7FDF).flatmap(
    lambda group: st.integers(0, 0xFFFF).map(lambda elem: (group << 16) | elem)
)


@st.composite
def datasets(draw: st.DrawFn, depth: int = 2) -> Dataset:
    ds = Dataset()
    for tag in draw(st.lists(_tags, max_size=8, unique=True)):
        if depth and draw(st.integers(0, 7)) == 0:
            items = draw(st.lists(datasets(depth=depth - 1), max_size=3))
            for item in items:
                item.is_undefined_length_sequence_item = draw(st.booleans())
            elem = element(tag, "SQ", Sequence(items))
            elem.is_undefined_length = draw(st.booleans())
        else:
            vr, value = draw(plain_elements())
            elem = element(tag, vr, value)
        ds.add(elem)
    if draw(st.integers(0, 9)) == 0:
        ds.add(element(0x00090000, "UL", 4))  # a retired group length: not written
    if draw(st.integers(0, 3)) == 0:  # text is written by the character set's rules
        charset = draw(
            st.sampled_from(
                ["ISO_IR 100", "ISO_IR 192", ["", "ISO 2022 IR 87"], "GB18030", "ISO_IR 6", "X"]
            )
        )
        ds.add(element(0x00080005, "CS", charset))
    return ds


# -- tests ----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The value for the data element")  # pydicom's LO -> UN
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ds=datasets(), implicit=st.booleans())
def test_encode_dataset_writes_what_pydicom_writes(ds: Dataset, implicit: bool) -> None:
    syntax = IMPLICIT_LE if implicit else EXPLICIT_LE
    try:
        ours = encode_dataset(ds, syntax)  # first: pydicom caches encoded person names
    except Exception as exc:
        with pytest.raises(type(exc)):
            pydicom_bytes(ds, implicit)
        return
    assert ours == pydicom_bytes(ds, implicit)
    assert encode_dataset(ds, syntax) == ours  # and again, with the names cached


def identifier() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.QueryRetrieveLevel = "IMAGE"
    ds.RetrieveAETitle = "QR-SCP"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "P123"
    ds.StudyDate = "20240101"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    ds.InstanceNumber = "7"
    ds.SliceThickness = "1.25"
    ds.Rows = 512
    ds.ModalitiesInStudy = ["CT", "PR"]
    step = Dataset()
    step.ScheduledStationAETitle = "CT1"
    step.ScheduledProcedureStepStartDate = ""
    ds.ScheduledProcedureStepSequence = [step]
    return ds


@pytest.mark.parametrize("implicit", [True, False])
def test_a_query_identifier_takes_the_fast_path(implicit: bool) -> None:
    ds = identifier()
    fast = encode_simple(ds, implicit)
    assert fast is not None
    assert fast == pydicom_bytes(ds, implicit)


def test_what_the_fast_path_refuses() -> None:
    ds = identifier()
    ds.PatientName = "Müller^Karl"  # its bytes depend on the Specific Character Set
    assert encode_simple(ds, False) is None
    ds = identifier()
    ds.add(RawDataElement(Tag(0x00100020), "LO", 4, b"P123", 0, False, True))
    assert encode_simple(ds, False) is None
    ds = identifier()
    ds.add(element(0x00281101, "US or SS", [256, 0, 16]))
    assert encode_simple(ds, True) is None
    ds = identifier()
    ds.add(element(0x00080005, "PN", "0"))  # pydicom fails on such a character set
    assert encode_simple(ds, False) is None
    with pytest.raises(TypeError):
        encode_dataset(ds, EXPLICIT_LE)


def test_other_syntaxes_use_pydicom() -> None:
    ds = identifier()
    assert encode_dataset(ds, EXPLICIT_BE) == pydicom_bytes(ds, False, little=False)


@pytest.mark.parametrize("syntax", [IMPLICIT_LE, EXPLICIT_LE])
def test_round_trip(syntax: str) -> None:
    ds = identifier()
    back = decode_dataset(encode_dataset(ds, syntax), syntax)
    assert back.PatientName == "DOE^JANE"
    assert back.ModalitiesInStudy == MultiValue(str, ["CT", "PR"])
    assert back.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT1"
    assert back.Rows == 512


# -- decoding -------------------------------------------------------------------------------


def pydicom_read(data: bytes, implicit: bool) -> Dataset:
    return read_dataset(io.BytesIO(data), implicit, True)


def same_raw(ours: Dataset, theirs: Dataset) -> None:
    tags = list(theirs.keys())  # iterating a Dataset would convert its elements
    assert list(ours.keys()) == tags
    for tag in tags:
        assert ours.get_item(tag) == theirs.get_item(tag)  # RawDataElement: a named tuple
    assert ours.original_encoding == theirs.original_encoding
    assert ours.original_character_set == theirs.original_character_set


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on odd values and LO -> UN
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ds=datasets(), implicit=st.booleans(), cut=st.integers(0, 12))
def test_decode_reads_what_pydicom_reads(ds: Dataset, implicit: bool, cut: int) -> None:
    try:
        data = pydicom_bytes(ds, implicit)
    except Exception:
        return  # pydicom cannot write it: nothing to read
    for sample in (data, data[: len(data) - cut]):  # whole, and truncated
        ours = decode_simple(sample, implicit)
        if ours is None:
            continue  # pydicom reads it: nothing to compare
        same_raw(ours, pydicom_read(sample, implicit))


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80), implicit=st.booleans())
def test_decode_of_any_bytes_is_pydicoms_or_refused(data: bytes, implicit: bool) -> None:
    ours = decode_simple(data, implicit)
    if ours is not None:
        same_raw(ours, pydicom_read(data, implicit))


@pytest.mark.parametrize("implicit", [True, False])
def test_an_identifier_is_decoded_by_the_fast_path(implicit: bool) -> None:
    data = pydicom_bytes(identifier(), implicit)
    ds = decode_simple(data, implicit)
    assert ds is not None
    same_raw(ds, pydicom_read(data, implicit))
    assert ds.PatientName == "DOE^JANE" and ds.Rows == 512
    assert ds.original_character_set == ["latin_1"]  # ISO_IR 100


def test_decode_refuses_what_pydicom_must_read() -> None:
    ds = identifier()
    ds["ScheduledProcedureStepSequence"].is_undefined_length = True
    assert decode_simple(pydicom_bytes(ds, False), False) is None  # undefined length
    explicit = pydicom_bytes(identifier(), False)
    assert decode_simple(explicit, True) is None  # looks explicit: pydicom decides
    assert decode_simple(explicit + b"\x00\x00", False) is None  # trailing bytes
