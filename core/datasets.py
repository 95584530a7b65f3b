"""Data sets on the wire: encoding and decoding in a transfer syntax, Part 10 framing.

DIMSE carries data sets encoded in the presentation context's transfer syntax
(PS3.7 6.3.1, PS3.5 Section 10). dicomnet keeps them as bytes for as long as
it can: a data set is decoded only when the application asks for it, and a
received C-STORE data set is written to a Part 10 file (PS3.10 7.1) exactly as
it arrived, behind a preamble and a File Meta Information group that this
module builds.

Deflated Explicit VR Little Endian (PS3.5 A.5) is deflated as a whole; the
other syntaxes are handed to pydicom's reader and writer.
"""

from __future__ import annotations

import functools
import io
import zlib

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)

from ._dataset_codec import decode_simple, encode_simple

__all__ = [
    "PREAMBLE",
    "decode_dataset",
    "encode_dataset",
    "file_meta_for",
    "part10_header",
]

_Buffer = bytes | bytearray | memoryview

#: 128-byte preamble and the DICM prefix of a Part 10 file (PS3.10 7.1)
PREAMBLE = bytes(128) + b"DICM"


@functools.lru_cache(maxsize=64)
def _encoding(transfer_syntax: str) -> tuple[bool, bool, bool]:
    """Return ``(implicit_vr, little_endian, deflated)`` for a transfer syntax UID."""
    if transfer_syntax == ImplicitVRLittleEndian:
        return True, True, False
    if transfer_syntax == ExplicitVRBigEndian:
        return False, False, False
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        return False, True, True
    uid = UID(transfer_syntax)
    if uid.is_transfer_syntax and uid.is_deflated:  # e.g. JPIP Referenced Deflate
        return False, True, True
    # Explicit VR Little Endian and every encapsulated (compressed) syntax
    return False, True, False


def decode_dataset(data: _Buffer, transfer_syntax: str) -> Dataset:
    """Decode a data set received in ``transfer_syntax``.

    The elements stay raw (pydicom converts each on first access). A little
    endian data set without undefined lengths is cut into elements by
    :func:`~dicomnet._dataset_codec.decode_simple`, as pydicom's reader
    would, three times faster; anything else by pydicom.
    """
    implicit, little, deflated = _encoding(str(transfer_syntax))
    raw = bytes(data)
    if deflated:
        raw = zlib.decompress(raw, -zlib.MAX_WBITS)
    ds = decode_simple(raw, implicit) if little else None
    if ds is None:
        ds = read_dataset(io.BytesIO(raw), implicit, little)
    ds.set_original_encoding(implicit, little)
    return ds


def encode_dataset(ds: Dataset, transfer_syntax: str) -> bytes:
    """Encode ``ds`` in ``transfer_syntax`` for sending.

    Pixel data must already be in that syntax's encoding; converting it is the
    Storage service's job, not this function's. Small data sets of ASCII text
    and numbers (query identifiers) in a little endian syntax are written by
    :func:`~dicomnet._dataset_codec.encode_simple`, byte for byte what
    pydicom writes, ten times faster; anything else by pydicom.
    """
    implicit, little, deflated = _encoding(str(transfer_syntax))
    raw = encode_simple(ds, implicit) if little else None
    if raw is None:
        fp = DicomBytesIO()
        fp.is_implicit_VR = implicit
        fp.is_little_endian = little
        write_dataset(fp, ds)
        raw = fp.getvalue()
    if deflated:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        raw = compressor.compress(raw) + compressor.flush()
        if len(raw) % 2:  # PS3.5 A.5: a single trailing NULL byte makes the length even
            raw += b"\x00"
    return raw


def file_meta_for(
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    *,
    implementation_class_uid: str,
    implementation_version_name: str | None = None,
    source_ae_title: str | None = None,
) -> FileMetaDataset:
    """The File Meta Information (PS3.10 7.1) for a data set received over the network."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(implementation_class_uid)
    if implementation_version_name:
        meta.ImplementationVersionName = implementation_version_name
    if source_ae_title:
        meta.SourceApplicationEntityTitle = source_ae_title
    return meta


def part10_header(file_meta: FileMetaDataset) -> bytes:
    """Preamble, ``DICM`` and the encoded File Meta Information group (PS3.10 7.1).

    Appending the data set bytes, encoded in the meta's Transfer Syntax, gives a
    complete Part 10 file.
    """
    fp = DicomBytesIO()
    fp.is_implicit_VR = False
    fp.is_little_endian = True
    write_file_meta_info(fp, file_meta, enforce_standard=True)
    return PREAMBLE + fp.getvalue()
