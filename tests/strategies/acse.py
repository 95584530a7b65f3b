"""Hypothesis strategies for association negotiation (``dicomnet.acse``).

UIDs come from small pools so that requested and supported abstract syntaxes
and transfer syntaxes overlap often: random 64-digit UIDs would almost never
match and every context would be rejected for the same dull reason.
"""

from __future__ import annotations

from hypothesis import strategies as st

from dicomnet.acse import ContextDefinition
from dicomnet.pdu import PresentationContextRQ
from dicomnet.user_info import AsyncOperationsWindow, SCPSCURoleSelection

__all__ = [
    "ABSTRACT_SYNTAXES",
    "TRANSFER_SYNTAXES",
    "abstract_syntaxes",
    "any_context_ids",
    "async_windows",
    "optional_roles",
    "requested_context_lists",
    "role_proposals",
    "supported_context_lists",
    "transfer_syntax_lists",
    "unique_odd_requested_contexts",
]

ABSTRACT_SYNTAXES = (
    "1.2.840.10008.1.1",  # Verification
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.2.1.1",  # Patient Root Q/R FIND
    "1.2.840.10008.5.1.4.1.2.1.3",  # Patient Root Q/R GET
    "1.2.840.10008.5.1.1.9",  # Basic Grayscale Print Management Meta SOP Class
)
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.5",  # RLE Lossless
)

abstract_syntaxes = st.sampled_from(ABSTRACT_SYNTAXES)
#: ordered, without repetition, 1 to 4 long
transfer_syntax_lists = st.lists(
    st.sampled_from(TRANSFER_SYNTAXES), min_size=1, max_size=4, unique=True
).map(tuple)
optional_roles = st.sampled_from([None, True, False])

#: any context ID the codec accepts (even ones included: the acceptor must cope)
any_context_ids = st.integers(1, 255)

#: requested contexts as a careless peer might send them: even and repeated IDs
requested_context_lists = st.lists(
    st.builds(PresentationContextRQ, any_context_ids, abstract_syntaxes, transfer_syntax_lists),
    max_size=12,
)


@st.composite
def unique_odd_requested_contexts(draw: st.DrawFn) -> list[PresentationContextRQ]:
    """Requested contexts as a correct requestor sends them: distinct odd IDs."""
    ids = draw(st.lists(st.integers(0, 127), max_size=12, unique=True))
    return [
        PresentationContextRQ(2 * n + 1, draw(abstract_syntaxes), draw(transfer_syntax_lists))
        for n in ids
    ]


#: an acceptor's supported contexts: each abstract syntax at most once
supported_context_lists = st.lists(
    st.builds(ContextDefinition, abstract_syntaxes, transfer_syntax_lists, optional_roles,
              optional_roles),
    max_size=len(ABSTRACT_SYNTAXES),
    unique_by=lambda cx: cx.abstract_syntax,
)

#: 54H items from a requestor, possibly several for one SOP class
role_proposals = st.lists(
    st.builds(SCPSCURoleSelection, abstract_syntaxes, st.booleans(), st.booleans()), max_size=8
)

#: small counts so that the interesting cases (0 = unlimited, 1, equal values) come up
async_windows = st.builds(
    AsyncOperationsWindow,
    st.sampled_from([0, 1, 2, 5, 0xFFFF]) | st.integers(0, 0xFFFF),
    st.sampled_from([0, 1, 2, 5, 0xFFFF]) | st.integers(0, 0xFFFF),
)
