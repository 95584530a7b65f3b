"""What a DICOM file holds, read from its header alone (PS3.10 7.1; PS3.5 7.1).

A Part 10 file is a 128-byte preamble, ``DICM``, the File Meta Information
(group 0002, always Explicit VR Little Endian) and then the data set, encoded
in the meta's Transfer Syntax. To send a file as it is, a C-STORE SCU needs the
meta only: the SOP Class and Instance UIDs (*Media Storage SOP Class/Instance
UID*), the Transfer Syntax, and where the data set starts.

Rule this module keeps: **the data set is not decoded when the meta says
everything.** :func:`parse_header` reads the group 0002 elements by hand from
the first bytes of the file (a few hundred usually); only a file without a
usable meta -- a bare data set, or a meta lacking one of the three UIDs -- is
handed to pydicom, which then reads the data set up to the pixel data to find
the UIDs and guess the encoding. Such a :class:`FileInfo` is marked
``exact=False``: its bytes are not to be sent as they are, the sender decodes
and re-encodes it.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Mapping
from typing import IO, Any

import attrs

__all__ = [
    "DICM_OFFSET",
    "FileInfo",
    "NotDicomError",
    "parse_header",
    "read_file_info",
]

#: where ``DICM`` is in a file with a preamble
DICM_OFFSET = 128
#: bytes read first: the preamble, ``DICM`` and a generous File Meta Information
HEAD_SIZE = 8192

_UNDEFINED = 0xFFFFFFFF
#: VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2)
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_TRANSFER_SYNTAX = 0x00020010
_SOP_CLASS = 0x00020002
_SOP_INSTANCE = 0x00020003
_GROUP_LENGTH = 0x00020000

_HEADER = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class NotDicomError(ValueError):
    """The file is neither a Part 10 file nor a data set with SOP Class and Instance UIDs."""


@attrs.frozen
class FileInfo:
    """A DICOM file as its header describes it.

    * ``sop_class_uid``, ``sop_instance_uid``, ``transfer_syntax``: from the
      File Meta Information (or, when ``exact`` is false, from the data set and
      the encoding pydicom guessed);
    * ``offset``: where the data set starts in the file (0 for a bare data set);
    * ``size``: the data set's length in bytes (file size minus ``offset``),
      ``None`` when unknown (a stream);
    * ``exact``: the bytes from ``offset`` are the data set encoded in
      ``transfer_syntax``, as the meta says: they can be sent as they are.
    """

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    offset: int = 0
    size: int | None = None
    path: str | None = None
    exact: bool = True


class _NeedMore(Exception):
    """The header continues past the bytes given."""


def _uid(value: bytes) -> str:
    return value.decode("ascii", "replace").rstrip("\0 ")


def _elements(data: bytes | memoryview, pos: int, end: int | None) -> tuple[dict[int, bytes], int]:
    """Group 0002 elements from ``pos``, up to ``end`` or the first other group."""
    found: dict[int, bytes] = {}
    size = len(data)
    while end is None or pos < end:
        if pos + 8 > size:
            raise _NeedMore
        group, element = _HEADER.unpack_from(data, pos)
        if group != 2:
            if end is not None:
                raise ValueError("the File Meta Information group length is wrong")
            break
        vr = bytes(data[pos + 4 : pos + 6])
        if vr.isalpha() and vr.isupper():  # explicit VR, as PS3.10 requires
            if vr in _LONG_VRS:
                if pos + 12 > size:
                    raise _NeedMore
                length = _U32.unpack_from(data, pos + 8)[0]
                start = pos + 12
            else:
                length = _U16.unpack_from(data, pos + 6)[0]
                start = pos + 8
        else:  # implicit VR: seen in the wild, read as pydicom does
            length = _U32.unpack_from(data, pos + 4)[0]
            start = pos + 8
        if length == _UNDEFINED:
            raise ValueError("an element of the File Meta Information has undefined length")
        stop = start + length
        if stop > size:
            raise _NeedMore
        found[(group << 16) | element] = bytes(data[start:stop])
        pos = stop
    if end is not None and pos != end:
        raise ValueError("the File Meta Information group length is wrong")
    return found, pos


def _meta(data: bytes | memoryview, start: int) -> tuple[dict[int, bytes], int]:
    """The meta elements from ``start`` and where the data set begins.

    The group length (0002,0000), when present, says where the meta ends; that
    protects a data set whose first bytes happen to look like group 0002 (a
    deflated stream). A wrong group length falls back to reading the group.
    """
    if len(data) >= start + 12 and _HEADER.unpack_from(data, start) == (2, 0):
        try:
            head, after = _elements(data, start, start + 12)
            group_length = head.get(_GROUP_LENGTH)
            if group_length is not None and len(group_length) == 4:
                end = after + _U32.unpack_from(group_length)[0]
                found, after = _elements(data, after, end)
                found.update(head)
                return found, after
        except ValueError:
            pass
    return _elements(data, start, None)


def parse_header(
    head: bytes | memoryview, *, at_eof: bool = False
) -> tuple[dict[int, bytes], int] | None:
    """The File Meta Information elements in ``head`` and where the data set starts.

    ``head`` is the beginning of the file. Returns ``None`` when there is no
    meta (no ``DICM`` and no group 0002 at the start: a bare data set). Raises
    :class:`_NeedMore` (internal) when the meta runs past ``head`` and
    ``at_eof`` is false, :class:`ValueError` when the meta is malformed.
    """
    if len(head) >= DICM_OFFSET + 4 and bytes(head[DICM_OFFSET : DICM_OFFSET + 4]) == b"DICM":
        start = DICM_OFFSET + 4
    elif len(head) >= 8 and _HEADER.unpack_from(head, 0)[0] == 2 and bytes(head[4:6]).isalpha():
        start = 0  # a meta without preamble: not conformant, but it happens
    else:
        return None
    try:
        elements, offset = _meta(head, start)
    except _NeedMore:
        if not at_eof:
            raise
        raise ValueError("the file ends inside its File Meta Information") from None
    return dict(elements), offset


def _read_head(fp: IO[bytes], size: int) -> bytes:
    """Read up to ``size`` bytes (short only at the end of the stream)."""
    parts = []
    wanted = size
    while wanted > 0:
        data = fp.read(wanted)
        if not data:
            break
        parts.append(data)
        wanted -= len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def header_from_stream(
    fp: IO[bytes], first: int = HEAD_SIZE
) -> tuple[bytes, dict[int, bytes] | None, int]:
    """Read the head of a stream: ``(bytes read, meta elements or None, data set offset)``.

    Reads more than ``first`` bytes only when the meta is longer.
    """
    head = _read_head(fp, first)
    want = first
    while True:
        at_eof = len(head) < want
        try:
            parsed = parse_header(head, at_eof=at_eof)
        except _NeedMore:
            more = _read_head(fp, want)
            head += more
            want *= 2
            continue
        if parsed is None:
            return head, None, 0
        return head, parsed[0], parsed[1]


def info_from_meta(
    elements: Mapping[int, bytes], offset: int, *, size: int | None, path: str | None
) -> FileInfo | None:
    """A :class:`FileInfo` from meta elements, ``None`` if one of the three UIDs is missing."""
    syntax = elements.get(_TRANSFER_SYNTAX)
    sop_class = elements.get(_SOP_CLASS)
    sop_instance = elements.get(_SOP_INSTANCE)
    if not syntax or not sop_class or not sop_instance:
        return None
    transfer_syntax, class_uid, instance_uid = _uid(syntax), _uid(sop_class), _uid(sop_instance)
    if not transfer_syntax or not class_uid or not instance_uid:
        return None
    return FileInfo(
        sop_class_uid=class_uid,
        sop_instance_uid=instance_uid,
        transfer_syntax=transfer_syntax,
        offset=offset,
        size=None if size is None else max(0, size - offset),
        path=path,
    )


def syntax_of_encoding(implicit_vr: bool | None, little_endian: bool | None) -> str | None:
    """The native transfer syntax of an encoding, ``None`` if unknown (PS3.5 A.1-A.3)."""
    if implicit_vr is None:
        return None
    if implicit_vr:
        return "1.2.840.10008.1.2"
    return "1.2.840.10008.1.2.1" if little_endian is not False else "1.2.840.10008.1.2.2"


def guess_info(source: str | os.PathLike[str] | IO[bytes], path: str | None) -> FileInfo:
    """Ask pydicom: for a data set without (usable) meta. Raises :class:`NotDicomError`."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():  # pydicom's guesses about garbage are not news
            warnings.simplefilter("ignore")
            ds = dcmread(source, force=True, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise NotDicomError(f"not a DICOM file: {exc}") from exc
    except Exception as exc:  # pydicom's reader fails in many ways on garbage
        raise NotDicomError(f"not a DICOM file: {type(exc).__name__}: {exc}") from exc
    meta: Any = getattr(ds, "file_meta", None)
    sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    sop_instance = ds.get("SOPInstanceUID") or (
        meta.get("MediaStorageSOPInstanceUID") if meta else None
    )
    syntax = meta.get("TransferSyntaxUID") if meta else None
    if syntax is None:
        syntax = syntax_of_encoding(*ds.original_encoding)
    valid = all(
        isinstance(v, str) and v and len(v) <= 64 and all(c.isdigit() or c == "." for c in v)
        for v in (sop_class, sop_instance, syntax)
    )
    if not valid:
        raise NotDicomError(
            "not a DICOM file: no File Meta Information and no SOP Class/Instance UID"
        )
    return FileInfo(
        sop_class_uid=str(sop_class),
        sop_instance_uid=str(sop_instance),
        transfer_syntax=str(syntax),
        offset=0,
        size=None,
        path=path,
        exact=False,
    )


def read_file_info(path: str | os.PathLike[str]) -> FileInfo:
    """What the file at ``path`` holds, from its File Meta Information.

    Reads the first few kilobytes only, unless the file has no usable meta:
    then pydicom reads the data set up to the pixel data (``exact=False``).

    :raises NotDicomError: the file is not DICOM.
    :raises OSError: it cannot be read.
    """
    name = os.fspath(path)
    with open(name, "rb", buffering=0) as fp:
        size = os.fstat(fp.fileno()).st_size
        try:
            _head, elements, offset = header_from_stream(fp)
        except ValueError as exc:
            raise NotDicomError(f"not a DICOM file: {exc}") from exc
    if elements is not None:
        info = info_from_meta(elements, offset, size=size, path=name)
        if info is not None:
            return info
    return guess_info(name, name)
