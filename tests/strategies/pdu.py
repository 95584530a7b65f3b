"""Hypothesis strategies for the Upper Layer PDUs, their items and sub-items (PS3.8 9.3).

Every strategy generates values that survive a round trip through the codec:
AE titles have no leading or trailing spaces (they are not significant, PS3.5,
and are stripped on decode) and UIDs carry no trailing NUL or space (PS3.8
Annex F sends them unpadded).

``pdus`` draws any of the seven PDUs; ``pdu_bytes`` draws the wire form of one.
The building blocks (``uids``, ``ae_titles``, ``sub_items``, ``user_informations``,
``presentation_contexts_rq``...) are public so other tests can compose them.
"""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import strategies as st

from dicomnet.errors import AbortReason, AbortSource
from dicomnet.pdu import (
    APPLICATION_CONTEXT_NAME,
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PresentationContextAC,
    PresentationContextResult,
    PresentationContextRQ,
    PresentationDataValue,
    RejectResult,
    RejectSource,
)
from dicomnet.user_info import (
    AsyncOperationsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    SCPSCURoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    SubItem,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserIdentityType,
    UserInformation,
)

__all__ = [
    "KNOWN_SUB_ITEM_TYPES",
    "WireField",
    "abort_pdus",
    "ae_titles",
    "associate_ac_pdus",
    "associate_rj_pdus",
    "associate_rq_pdus",
    "async_operations_windows",
    "common_extended_negotiations",
    "context_ids",
    "implementation_class_uids",
    "implementation_version_names",
    "maximum_lengths",
    "pdata_tf_pdus",
    "pdu_bytes",
    "pdus",
    "pdus_with_noisy_reserved_fields",
    "pdvs",
    "presentation_contexts_ac",
    "presentation_contexts_rq",
    "release_rp_pdus",
    "release_rq_pdus",
    "role_selections",
    "sop_class_extended_negotiations",
    "sub_items",
    "uids",
    "unknown_sub_items",
    "user_identities_ac",
    "user_identities_of_type",
    "user_identities_rq",
    "user_informations",
    "wire_fields",
]

#: Sub-item types PS3.8 D.1 and PS3.7 D.3.3 define (51H-59H).
KNOWN_SUB_ITEM_TYPES = frozenset(range(0x51, 0x5A))

# -- text fields --------------------------------------------------------------------------

#: Well-known UIDs, so that shrunk examples look like the real thing.
_WELL_KNOWN_UIDS = (
    APPLICATION_CONTEXT_NAME,
    "1.2.840.10008.1.1",  # Verification SOP Class
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.2.1.1",  # Patient Root Q/R FIND
    "1.2.840.10008.4.2",  # Storage Service Class
)

_uid_components = st.one_of(st.just("0"), st.integers(1, 10**12).map(str))

#: Syntactically valid UIDs (PS3.5 9.1): dot-separated numbers, 1 to 64 characters.
uids: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(_WELL_KNOWN_UIDS),
    st.lists(_uid_components, min_size=1, max_size=10)
    .map(".".join)
    .filter(lambda uid: len(uid) <= 64),
)

# Default character repertoire of PS3.5 (G0 of ISO 646) without the backslash,
# which AE titles may not contain; control characters are not allowed either.
_ae_chars = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\")

#: AE titles of 1 to 16 characters without leading or trailing spaces.
ae_titles: st.SearchStrategy[str] = (
    st.text(_ae_chars, min_size=1, max_size=16).map(lambda t: t.strip(" ")).filter(bool)
)

# -- user information sub-items (PS3.8 D.1, PS3.7 D.3.3) -------------------------------------

maximum_lengths = st.builds(
    MaximumLength, st.one_of(st.sampled_from([0, 16382, 16384, 1 << 20]),
                             st.integers(0, 0xFFFFFFFF))
)
implementation_class_uids = st.builds(ImplementationClassUID, uids)
implementation_version_names = st.builds(
    ImplementationVersionName,
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=16),
)
async_operations_windows = st.builds(
    AsyncOperationsWindow, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)
)
role_selections = st.builds(SCPSCURoleSelection, uids, st.booleans(), st.booleans())
sop_class_extended_negotiations = st.builds(
    SOPClassExtendedNegotiation, uids, st.binary(max_size=32)
)
common_extended_negotiations = st.builds(
    SOPClassCommonExtendedNegotiation,
    uids,
    uids,
    st.lists(uids, max_size=4).map(tuple),
    # the sub-item version is in the header's second byte; PS3.7 defines version 0
    st.one_of(st.just(0), st.integers(0, 255)),
)


def user_identities_of_type(kind: int) -> st.SearchStrategy[UserIdentityRQ]:
    """User identity requests (58H) of one User-Identity-Type."""
    # PS3.7 D.3.3.7.1: only type 2 has a secondary field (the passcode)
    primary = st.binary(min_size=1, max_size=64)
    secondary = st.binary(max_size=32) if kind == UserIdentityType.USERNAME_AND_PASSCODE else (
        st.just(b"")
    )
    return st.builds(UserIdentityRQ, st.just(kind), primary, secondary, st.booleans())


#: User identity requests of all five types (username, username and passcode,
#: Kerberos ticket, SAML assertion, JSON web token).
user_identities_rq: st.SearchStrategy[UserIdentityRQ] = st.one_of(
    *(user_identities_of_type(kind) for kind in UserIdentityType)
)
user_identities_ac = st.builds(UserIdentityAC, st.binary(max_size=64))

#: Sub-items of a type PS3.7 does not define; any second byte.
unknown_sub_items = st.builds(
    UnknownSubItem,
    st.integers(0, 255).filter(lambda t: t not in KNOWN_SUB_ITEM_TYPES),
    st.binary(max_size=32),
    st.integers(0, 255),
)

sub_items: st.SearchStrategy[SubItem] = st.one_of(
    maximum_lengths,
    implementation_class_uids,
    implementation_version_names,
    async_operations_windows,
    role_selections,
    sop_class_extended_negotiations,
    common_extended_negotiations,
    user_identities_rq,
    user_identities_ac,
    unknown_sub_items,
)


@st.composite
def _usual_user_information(draw: st.DrawFn, *, acceptor: bool) -> UserInformation:
    """The order a real peer sends: 51H, 52H, 53H, 54H..., 55H, 56H..., 57H..., 58H/59H."""
    identity: st.SearchStrategy[UserIdentityRQ | UserIdentityAC] = (
        user_identities_ac if acceptor else user_identities_rq
    )
    return UserInformation.build(
        maximum_length=draw(st.integers(0, 0xFFFFFFFF)),
        implementation_class_uid=draw(uids),
        implementation_version_name=draw(
            st.none() | implementation_version_names.map(lambda item: item.name)
        ),
        async_ops_window=draw(st.none() | async_operations_windows),
        role_selection=tuple(draw(st.lists(role_selections, max_size=3))),
        sop_class_extended=tuple(draw(st.lists(sop_class_extended_negotiations, max_size=3))),
        sop_class_common_extended=(
            () if acceptor else tuple(draw(st.lists(common_extended_negotiations, max_size=3)))
        ),
        user_identity=draw(st.none() | identity),
    )


#: User Information items: either in the usual order of a requestor or an
#: acceptor, or any sequence of sub-items (known, unknown, repeated, any order).
user_informations: st.SearchStrategy[UserInformation] = st.one_of(
    _usual_user_information(acceptor=False),
    _usual_user_information(acceptor=True),
    st.lists(sub_items, max_size=10).map(lambda items: UserInformation(tuple(items))),
)

# -- presentation contexts (PS3.8 9.3.2.2, 9.3.3.2) ------------------------------------------

#: Presentation context IDs are odd integers 1-255 (PS3.8 9.3.2.2).
context_ids = st.integers(0, 127).map(lambda n: 2 * n + 1)

presentation_contexts_rq = st.builds(
    PresentationContextRQ,
    context_ids,
    uids,
    st.lists(uids, min_size=1, max_size=5).map(tuple),
)


@st.composite
def presentation_contexts_ac(draw: st.DrawFn) -> PresentationContextAC:
    result = draw(st.sampled_from(PresentationContextResult))
    # the transfer syntax sub-item is mandatory for an accepted context; for a
    # rejected one it is "not significant" and may be present or absent
    ts = draw(uids) if result == PresentationContextResult.ACCEPTANCE else draw(st.none() | uids)
    return PresentationContextAC(draw(context_ids), int(result), ts)


# -- PDUs ----------------------------------------------------------------------------------

_protocol_versions = st.one_of(st.just(1), st.integers(0, 0xFFFF))
_app_context_names = st.one_of(st.just(APPLICATION_CONTEXT_NAME), uids)

associate_rq_pdus = st.builds(
    AAssociateRQ,
    called_ae_title=ae_titles,
    calling_ae_title=ae_titles,
    presentation_contexts=st.lists(presentation_contexts_rq, max_size=6).map(tuple),
    user_information=user_informations,
    application_context_name=_app_context_names,
    protocol_version=_protocol_versions,
)
associate_ac_pdus = st.builds(
    AAssociateAC,
    called_ae_title=ae_titles,
    calling_ae_title=ae_titles,
    presentation_contexts=st.lists(presentation_contexts_ac(), max_size=6).map(tuple),
    user_information=user_informations,
    application_context_name=_app_context_names,
    protocol_version=_protocol_versions,
)


@st.composite
def _reject(draw: st.DrawFn) -> AAssociateRJ:
    if draw(st.booleans()):
        # the combinations PS3.8 Table 9-21 defines
        source = draw(st.sampled_from(RejectSource))
        reasons = {
            RejectSource.SERVICE_USER: [1, 2, 3, 7],
            RejectSource.SERVICE_PROVIDER_ACSE: [1, 2],
            RejectSource.SERVICE_PROVIDER_PRESENTATION: [1, 2],
        }[source]
        return AAssociateRJ(
            int(draw(st.sampled_from(RejectResult))), int(source), draw(st.sampled_from(reasons))
        )
    byte = st.integers(0, 255)
    return AAssociateRJ(draw(byte), draw(byte), draw(byte))


associate_rj_pdus: st.SearchStrategy[AAssociateRJ] = _reject()

pdvs = st.builds(
    PresentationDataValue, context_ids, st.booleans(), st.booleans(), st.binary(max_size=300)
)
pdata_tf_pdus = st.builds(PDataTF, st.lists(pdvs, min_size=1, max_size=5).map(tuple))
release_rq_pdus = st.just(AReleaseRQ())
release_rp_pdus = st.just(AReleaseRP())
abort_pdus = st.one_of(
    st.builds(AAbort, st.sampled_from(AbortSource).map(int), st.sampled_from(AbortReason).map(int)),
    st.builds(AAbort, st.integers(0, 255), st.integers(0, 255)),
)

#: Any of the seven PDUs.
pdus: st.SearchStrategy[PDU] = st.one_of(
    associate_rq_pdus,
    associate_ac_pdus,
    associate_rj_pdus,
    pdata_tf_pdus,
    release_rq_pdus,
    release_rp_pdus,
    abort_pdus,
)

#: The wire form of any PDU, header included.
pdu_bytes: st.SearchStrategy[bytes] = pdus.map(lambda pdu: pdu.to_bytes())


# -- the wire layout, walked independently of the codec ---------------------------------------


class WireField(NamedTuple):
    """A field of an encoded PDU that the tests tamper with.

    ``kind`` is ``"reserved"`` (sent as zero, not tested on receipt) or
    ``"length"`` (a big-endian length of ``size`` bytes); ``container`` is the
    field name the decoder must blame when that length overruns its buffer.
    """

    offset: int
    size: int
    kind: str
    container: str


_SUB_ITEM_NAMES = {
    0x54: "SCP/SCU Role Selection (54H)",
    0x56: "SOP Class Extended Negotiation (56H)",
    0x57: "SOP Class Common Extended Negotiation (57H)",
    0x58: "User Identity Negotiation RQ (58H)",
    0x59: "User Identity Negotiation AC (59H)",
}
_PDU_NAMES = {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC"}
# 57H carries its sub-item version in the second byte; unknown sub-items are kept as they are
_RESERVED_SECOND_BYTE = KNOWN_SUB_ITEM_TYPES - {0x57}


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "big")


def _items(
    data: bytes,
    start: int,
    end: int,
    container: str,
    out: list[WireField],
    *,
    reserved_second_byte: frozenset[int] | None = None,
) -> list[tuple[int, int, int]]:
    """Record the header fields of the items in ``data[start:end]``.

    The second header byte is reserved for the item types in
    ``reserved_second_byte`` (for all types when it is ``None``). Returns
    ``(item type, value start, value end)`` for each item.
    """
    items = []
    offset = start
    while offset < end:
        item_type = data[offset]
        if reserved_second_byte is None or item_type in reserved_second_byte:
            out.append(WireField(offset + 1, 1, "reserved", container))
        out.append(WireField(offset + 2, 2, "length", container))
        length = _u16(data, offset + 2)
        items.append((item_type, offset + 4, offset + 4 + length))
        offset += 4 + length
    return items


def _u16_prefixed(
    data: bytes, offset: int, container: str, out: list[WireField]
) -> int:
    out.append(WireField(offset, 2, "length", container))
    return offset + 2 + _u16(data, offset)


def _sub_item_fields(data: bytes, item_type: int, start: int, out: list[WireField]) -> None:
    name = _SUB_ITEM_NAMES.get(item_type)
    if item_type in (0x54, 0x56, 0x59):
        _u16_prefixed(data, start, name or "", out)
    elif item_type == 0x57:
        assert name is not None
        offset = _u16_prefixed(data, start, name, out)
        offset = _u16_prefixed(data, offset, name, out)
        related_start = offset + 2
        related_end = _u16_prefixed(data, offset, name, out)
        offset = related_start
        while offset < related_end:
            offset = _u16_prefixed(data, offset, name + " related general SOP class", out)
    elif item_type == 0x58:
        offset = _u16_prefixed(data, start + 2, f"{name} primary field", out)
        _u16_prefixed(data, offset, f"{name} secondary field", out)


def wire_fields(pdu: bytes) -> list[WireField]:
    """The reserved and length fields of a well-formed encoded PDU (PS3.8 9.3, PS3.7 D.3.3).

    Offsets are from the start of the PDU. The PDU-length field itself (bytes
    3-6, the framing's business) is left out.
    """
    out = [WireField(1, 1, "reserved", "PDU header")]
    pdu_type = pdu[0]
    if pdu_type in (1, 2):
        name = _PDU_NAMES[pdu_type]
        out.append(WireField(8, 2, "reserved", name))
        out.append(WireField(42, 32, "reserved", name))
        for item_type, start, end in _items(pdu, 74, len(pdu), name, out):
            if item_type in (0x20, 0x21):
                context = f"Presentation Context ({item_type:02X}H)"
                out.append(WireField(start + 1, 1, "reserved", context))
                if item_type == 0x20:  # in 21H this byte is the result
                    out.append(WireField(start + 2, 1, "reserved", context))
                out.append(WireField(start + 3, 1, "reserved", context))
                _items(pdu, start + 4, end, context, out)
            elif item_type == 0x50:
                for sub_type, sub_start, _ in _items(
                    pdu, start, end, "User Information (50H)", out,
                    reserved_second_byte=_RESERVED_SECOND_BYTE,
                ):
                    _sub_item_fields(pdu, sub_type, sub_start, out)
    elif pdu_type == 3:
        out.append(WireField(6, 1, "reserved", "A-ASSOCIATE-RJ"))
    elif pdu_type == 4:
        offset = 6
        while offset < len(pdu):
            out.append(WireField(offset, 4, "length", "P-DATA-TF"))
            offset += 4 + int.from_bytes(pdu[offset : offset + 4], "big")
    elif pdu_type in (5, 6):
        out.append(WireField(6, 4, "reserved", "A-RELEASE-RQ" if pdu_type == 5 else "A-RELEASE-RP"))
    elif pdu_type == 7:
        out.append(WireField(6, 2, "reserved", "A-ABORT"))
    return out


@st.composite
def pdus_with_noisy_reserved_fields(draw: st.DrawFn) -> tuple[PDU, bytes]:
    """A PDU and its wire form with every reserved field filled with non-zero bytes."""
    pdu = draw(pdus)
    data = bytearray(pdu.to_bytes())
    for field in wire_fields(bytes(data)):
        if field.kind == "reserved":
            data[field.offset : field.offset + field.size] = draw(
                st.binary(min_size=field.size, max_size=field.size).filter(any)
            )
    return pdu, bytes(data)
