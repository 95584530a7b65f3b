"""Hypothesis strategies for the DIMSE messages (PS3.7 9.3, 10.3, Annex E).

Every strategy generates values that survive a round trip through the
command-set codec: UIDs are valid (PS3.5 9.1) and unpadded, AE titles and
error comments carry no leading or trailing spaces (not significant, stripped
on decode), AT lists are non-empty, no string is empty (a zero-length value
reads as absent).

``messages`` draws any of the 23 messages; ``messages_of(cls)`` one type. The
building blocks are public so other tests can compose them.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st

from dicomnet.dimse_messages import COMMAND_ELEMENTS, MESSAGE_TYPES, DimseMessage

__all__ = [
    "MESSAGE_CLASSES",
    "ae_titles",
    "error_comments",
    "messages",
    "messages_of",
    "statuses",
    "tag_lists",
    "tags",
    "uids",
    "us_values",
]

#: The 23 message classes, in Command Field order.
MESSAGE_CLASSES: tuple[type[DimseMessage], ...] = tuple(
    MESSAGE_TYPES[cf] for cf in sorted(MESSAGE_TYPES)
)

_WELL_KNOWN_UIDS = (
    "1.2.840.10008.1.1",  # Verification
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.2.1.1",  # Patient Root Q/R FIND
    "1.2.840.10008.5.1.4.1.2.2.2",  # Study Root Q/R MOVE
    "1.2.840.10008.1.20.1",  # Storage Commitment Push Model
    "1.2.840.10008.1.20.1.1",  # its well-known SOP instance
)

# A UID component is "0" or a number without a leading zero (PS3.5 9.1).
_uid_components = st.one_of(
    st.just("0"), st.integers(1, 10**20).map(str)
)

#: Valid UIDs of 1 to 64 characters, both odd and even lengths.
uids: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(_WELL_KNOWN_UIDS),
    st.lists(_uid_components, min_size=1, max_size=12)
    .map(".".join)
    .filter(lambda uid: len(uid) <= 64),
)

# Default character repertoire (PS3.5 6.1.2.1) without the backslash (a value
# delimiter) and without control characters.
_text_chars = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\")

#: AE titles of 1 to 16 characters without leading or trailing spaces (PS3.5 6.2 AE).
ae_titles: st.SearchStrategy[str] = (
    st.text(_text_chars, min_size=1, max_size=16).map(lambda t: t.strip(" ")).filter(bool)
)

#: Error Comment (0000,0902) values: LO, at most 64 characters.
error_comments: st.SearchStrategy[str] = (
    st.text(_text_chars, min_size=1, max_size=64).map(lambda t: t.strip(" ")).filter(bool)
)

#: Any US value, with the boundaries drawn often.
us_values: st.SearchStrategy[int] = st.one_of(
    st.sampled_from([0, 1, 0x7FFF, 0x8000, 0xFFFF]), st.integers(0, 0xFFFF)
)

#: Status codes: the well-known ones of each class, and anything else.
statuses: st.SearchStrategy[int] = st.one_of(
    st.sampled_from([
        0x0000, 0x0001, 0x0107, 0x0110, 0x0122, 0x0211, 0xA700, 0xA801, 0xA900,
        0xB000, 0xC000, 0xCFFF, 0xFE00, 0xFF00, 0xFF01,
    ]),
    st.integers(0, 0xFFFF),
)  # fmt: skip

#: Data element tags as 32-bit integers (group << 16 | element).
tags: st.SearchStrategy[int] = st.one_of(
    st.sampled_from([0x00100010, 0x00100020, 0x0020000D, 0x7FE00010, 0xFFFEE000]),
    st.integers(0, 0xFFFFFFFF),
)

#: AT values with VM 1-n.
tag_lists: st.SearchStrategy[tuple[int, ...]] = st.lists(tags, min_size=1, max_size=8).map(
    tuple
)

_BY_VR: dict[str, st.SearchStrategy[Any]] = {
    "UI": uids,
    "AE": ae_titles,
    "LO": error_comments,
    "US": us_values,
    "AT": tag_lists,
}
_BY_KEYWORD: dict[str, st.SearchStrategy[Any]] = {
    "Status": statuses,
    "Priority": st.sampled_from([0x0000, 0x0001, 0x0002]),
}


def messages_of(cls: type[DimseMessage]) -> st.SearchStrategy[DimseMessage]:
    """Messages of type ``cls``: mandatory fields always set, optional ones sometimes."""
    vr_of = {keyword: vr for keyword, vr in COMMAND_ELEMENTS.values()}
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in attrs.fields(cls):
        value = _BY_KEYWORD.get(field.name, _BY_VR[vr_of[field.name]])
        if field.name in cls.mandatory:
            fields[field.name] = value
        else:
            fields[field.name] = st.none() | value
    return st.builds(cls, **fields)


#: Any of the 23 DIMSE messages.
messages: st.SearchStrategy[DimseMessage] = st.one_of(
    [messages_of(cls) for cls in MESSAGE_CLASSES]
)
