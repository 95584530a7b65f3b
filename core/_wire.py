"""Byte-level helpers shared by the PDU and user-information codecs (PS3.8 9.3).

Every PDU item and sub-item has the same four-byte header: type (1 byte), a
byte that is reserved (or a version, for item 57H), and a big-endian 16-bit
length. This module walks such item lists with every length checked against the
buffer, and encodes the text fields (UIDs, AE titles) the way PS3.8 Annex F and
9.3.2 describe them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from .errors import PDUDecodeError

__all__ = [
    "ITEM_HEADER",
    "MAX_UID_LENGTH",
    "check_uid",
    "decode_ae_title",
    "decode_reserved_ae_title",
    "decode_text",
    "decode_uid",
    "encode_ae_title",
    "encode_item",
    "encode_uid",
    "iter_items",
    "read_u16_prefixed",
]

#: The longest UID PS3.5 9.1 allows.
MAX_UID_LENGTH = 64

#: item type, reserved (or sub-item version), item length
ITEM_HEADER = struct.Struct(">BBH")
_U16 = struct.Struct(">H")

Buffer = bytes | bytearray | memoryview


def iter_items(buf: memoryview, field: str) -> Iterator[tuple[int, int, memoryview]]:
    """Yield ``(item_type, second_byte, value)`` for each item in ``buf``.

    Raises :class:`PDUDecodeError` naming ``field`` when an item header or an
    item's announced length does not fit in what is left of the buffer.
    """
    offset = 0
    end = len(buf)
    while offset < end:
        if end - offset < 4:
            raise PDUDecodeError(
                f"{end - offset} trailing byte(s), too short for an item header", field=field
            )
        item_type, second, length = ITEM_HEADER.unpack_from(buf, offset)
        start = offset + 4
        if start + length > end:
            raise PDUDecodeError(
                f"item 0x{item_type:02X} announces {length} bytes but only {end - start} remain",
                field=field,
            )
        yield item_type, second, buf[start : start + length]
        offset = start + length


def encode_item(item_type: int, value: bytes, second: int = 0) -> bytes:
    """Prefix ``value`` with an item header."""
    if len(value) > 0xFFFF:
        raise ValueError(f"item 0x{item_type:02X} value of {len(value)} bytes exceeds 65535")
    return ITEM_HEADER.pack(item_type, second, len(value)) + value


def read_u16_prefixed(buf: memoryview, offset: int, field: str) -> tuple[memoryview, int]:
    """Read a 16-bit big-endian length and that many bytes; return them and the next offset."""
    if offset + 2 > len(buf):
        raise PDUDecodeError("length field runs past the end of the item", field=field)
    (length,) = _U16.unpack_from(buf, offset)
    start = offset + 2
    if start + length > len(buf):
        raise PDUDecodeError(
            f"announces {length} bytes but only {len(buf) - start} remain", field=field
        )
    return buf[start : start + length], start + length


def decode_text(value: Buffer, field: str) -> str:
    """Decode an ASCII field (PS3.8 9.3: ISO 646 characters)."""
    try:
        return bytes(value).decode("ascii")
    except UnicodeDecodeError as exc:
        raise PDUDecodeError(f"not ASCII at byte {exc.start}", field=field) from None


def decode_uid(value: Buffer, field: str) -> str:
    """Decode a UID (PS3.8 Annex F).

    UIDs on the wire are not padded, but some implementations add a trailing
    NUL as they would in a data set (PS3.5 9.1); it is removed here. A UID
    longer than 64 characters is an invalid parameter value.
    """
    uid = decode_text(value, field).rstrip("\x00 ")
    if len(uid) > MAX_UID_LENGTH:
        raise PDUDecodeError(
            f"UID of {len(uid)} characters, more than {MAX_UID_LENGTH}", field=field
        )
    return uid


def check_uid(name: str, uid: str) -> None:
    """Raise :class:`ValueError` if ``uid`` could not be sent (PS3.5 9.1: at most 64 ASCII bytes).

    Values are checked when they are built, so that we never send what we would refuse.
    """
    if not uid.isascii():
        raise ValueError(f"{name}: UID {uid!r} is not ASCII")
    if len(uid) > MAX_UID_LENGTH:
        raise ValueError(f"{name}: UID {uid!r} is longer than {MAX_UID_LENGTH} characters")


def encode_uid(uid: str) -> bytes:
    """Encode a UID without padding (PS3.8 Annex F)."""
    return uid.encode("ascii")


def decode_ae_title(value: Buffer, field: str) -> str:
    """Decode a 16-byte AE title; leading and trailing spaces are not significant (PS3.5)."""
    return decode_text(value, field).strip(" \x00")


def decode_reserved_ae_title(value: Buffer) -> str:
    """Decode an AE title field that is reserved and "not tested when received".

    The A-ASSOCIATE-AC echoes the request's AE titles in reserved fields (PS3.8
    9.3.3); whatever they hold must not fail the PDU, so bytes outside ISO 646
    become ``?`` instead of raising.
    """
    raw = bytes(value)
    if not raw.isascii():
        raw = bytes(b if b < 0x80 else 0x3F for b in raw)
    return raw.decode("ascii").strip(" \x00")


def encode_ae_title(title: str) -> bytes:
    """Encode an AE title into its 16-byte space-padded wire form."""
    raw = title.encode("ascii")
    if len(raw) > 16:
        raise ValueError(f"AE title {title!r} is longer than 16 characters")
    return raw.ljust(16, b" ")
