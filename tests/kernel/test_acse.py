"""Association negotiation (dicomnet.acse): PS3.8 7.1, 9.3 and PS3.7 Annex D.3.

The role-selection truth tables are written out row by row from PS3.7 D.3.3.4,
not derived from the rule the code uses, so that a wrong rule fails here.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dicomnet import acse
from dicomnet.acse import (
    DEFAULT_ASYNC_WINDOW,
    DEFAULT_MAXIMUM_LENGTH,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    REJECT_APPLICATION_CONTEXT,
    REJECT_CALLED_AE_TITLE,
    REJECT_CALLING_AE_TITLE,
    REJECT_NO_ACCEPTABLE_CONTEXT,
    REJECT_PROTOCOL_VERSION,
    REJECT_USER_IDENTITY,
    AcceptorConfig,
    ContextDefinition,
    NegotiatedContext,
    NegotiationResult,
    accept_or_reject,
    acceptor_role_answer,
    build_associate_rq,
    check_association_request,
    describe_rejection,
    interpret_associate_response,
    interpret_sop_class_extended,
    min_nonzero,
    negotiate_as_acceptor,
    negotiate_as_requestor,
    negotiate_async_window_as_acceptor,
    negotiate_async_window_as_requestor,
    reject_local_limit_exceeded,
    reject_temporary_congestion,
    requestor_roles,
    respond_to_user_identity,
    select_sop_class_extended,
    sending_limit,
    user_identity_jwt,
    user_identity_kerberos,
    user_identity_saml,
    user_identity_username,
    user_identity_username_passcode,
)
from dicomnet.errors import AbortReason, RemoteProtocolError
from dicomnet.pdu import (
    APPLICATION_CONTEXT_NAME,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    PresentationContextAC,
    PresentationContextResult,
    PresentationContextRQ,
    decode_pdu,
)
from dicomnet.user_info import (
    AsyncOperationsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    SCPSCURoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from tests.strategies import acse as acse_st

R = PresentationContextResult

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PRINT_META = "1.2.840.10008.5.1.1.9"
PRIVATE_CT = "1.2.3.4.5.6.7"  # a specialized CT image storage class
STORAGE_SERVICE = "1.2.840.10008.4.2"
ILE = "1.2.840.10008.1.2"
ELE = "1.2.840.10008.1.2.1"
JPEG = "1.2.840.10008.1.2.4.50"
RLE = "1.2.840.10008.1.2.5"


def roundtrip(pdu: AAssociateRQ | AAssociateAC) -> AAssociateRQ | AAssociateAC:
    raw = pdu.to_bytes()
    decoded = decode_pdu(raw[0], memoryview(raw)[6:])
    assert isinstance(decoded, AAssociateRQ | AAssociateAC)
    return decoded


# -- SCP/SCU role selection: the acceptor (PS3.7 D.3.3.4) -----------------------------------

T, F, N = True, False, None
#: (proposed (scu, scp) or None, acceptor's configured (scu_role, scp_role),
#:  expected answer (scu, scp) or None, expected requestor roles (scu, scp))
ACCEPTOR_TABLE = [
    # no 54H item proposed: defaults whatever the configuration, no answer
    (None, (N, N), None, (T, F)),
    (None, (T, T), None, (T, F)),
    (None, (T, F), None, (T, F)),
    (None, (F, T), None, (T, F)),
    (None, (F, F), None, (T, F)),
    # proposed, but we do not negotiate roles for this SOP class: no answer, defaults
    ((T, T), (N, N), None, (T, F)),
    ((T, F), (N, N), None, (T, F)),
    ((F, T), (N, N), None, (T, F)),
    ((F, F), (N, N), None, (T, F)),
    # requestor proposes SCU and SCP
    ((T, T), (T, T), (T, T), (T, T)),
    ((T, T), (T, F), (T, F), (T, F)),
    ((T, T), (F, T), (F, T), (F, T)),
    ((T, T), (F, F), (F, F), (F, F)),
    # requestor proposes SCU only: we may never return 1 for SCP
    ((T, F), (T, T), (T, F), (T, F)),
    ((T, F), (T, F), (T, F), (T, F)),
    ((T, F), (F, T), (F, F), (F, F)),
    ((T, F), (F, F), (F, F), (F, F)),
    # requestor proposes SCP only: we may never return 1 for SCU
    ((F, T), (T, T), (F, T), (F, T)),
    ((F, T), (T, F), (F, F), (F, F)),
    ((F, T), (F, T), (F, T), (F, T)),
    ((F, T), (F, F), (F, F), (F, F)),
    # an invalid proposal of neither role can only be turned down
    ((F, F), (T, T), (F, F), (F, F)),
    ((F, F), (T, F), (F, F), (F, F)),
    ((F, F), (F, T), (F, F), (F, F)),
    ((F, F), (F, F), (F, F), (F, F)),
    # one role left unspecified: that role takes its default (SCU yes, SCP no)
    ((T, T), (N, T), (T, T), (T, T)),
    ((T, T), (N, F), (T, F), (T, F)),
    ((T, T), (T, N), (T, F), (T, F)),
    ((T, T), (F, N), (F, F), (F, F)),
    ((T, F), (N, T), (T, F), (T, F)),
    ((T, F), (N, F), (T, F), (T, F)),
    ((T, F), (T, N), (T, F), (T, F)),
    ((T, F), (F, N), (F, F), (F, F)),
    ((F, T), (N, T), (F, T), (F, T)),
    ((F, T), (N, F), (F, F), (F, F)),
    ((F, T), (T, N), (F, F), (F, F)),
    ((F, T), (F, N), (F, F), (F, F)),
]


@pytest.mark.parametrize(("proposed", "configured", "answer", "roles"), ACCEPTOR_TABLE)
def test_acceptor_role_truth_table(
    proposed: tuple[bool, bool] | None,
    configured: tuple[bool | None, bool | None],
    answer: tuple[bool, bool] | None,
    roles: tuple[bool, bool],
) -> None:
    item = None if proposed is None else SCPSCURoleSelection(CT, *proposed)
    got_answer, req_scu, req_scp = acceptor_role_answer(item, *configured)
    assert (req_scu, req_scp) == roles
    if answer is None:
        assert got_answer is None
    else:
        assert got_answer == SCPSCURoleSelection(CT, *answer)


@pytest.mark.parametrize(("proposed", "configured", "answer", "roles"), ACCEPTOR_TABLE)
def test_acceptor_roles_through_context_negotiation(
    proposed: tuple[bool, bool] | None,
    configured: tuple[bool | None, bool | None],
    answer: tuple[bool, bool] | None,
    roles: tuple[bool, bool],
) -> None:
    """The table again, through negotiate_as_acceptor: the acceptor's roles are the
    mirror image, a context without a role is a user rejection, and a 54H answer is
    sent only for an accepted context."""
    rq_roles = [] if proposed is None else [SCPSCURoleSelection(CT, *proposed)]
    supported = [ContextDefinition(CT, [ELE], *configured)]
    ac, negotiated, answers = negotiate_as_acceptor(
        [PresentationContextRQ(1, CT, [ELE])], supported, rq_roles
    )
    (cx,) = negotiated
    if roles == (F, F):
        assert ac == [PresentationContextAC(1, R.USER_REJECTION, ELE)]
        assert (cx.result, cx.transfer_syntax, cx.as_scu, cx.as_scp) == (
            R.USER_REJECTION, None, False, False,
        )
        assert answers == []
    else:
        assert ac == [PresentationContextAC(1, R.ACCEPTANCE, ELE)]
        # the acceptor is SCP where the requestor is SCU, and SCU where it is SCP
        assert (cx.as_scp, cx.as_scu) == roles
        assert answers == ([] if answer is None else [SCPSCURoleSelection(CT, *answer)])


def test_role_answer_only_for_proposed_sop_classes() -> None:
    supported = [ContextDefinition(CT, [ELE], T, T), ContextDefinition(MR, [ELE], T, T)]
    _, negotiated, answers = negotiate_as_acceptor(
        [PresentationContextRQ(1, CT, [ELE]), PresentationContextRQ(3, MR, [ELE])],
        supported,
        [SCPSCURoleSelection(MR, F, T)],
    )
    assert answers == [SCPSCURoleSelection(MR, F, T)]
    assert [(cx.as_scu, cx.as_scp) for cx in negotiated] == [(F, T), (T, F)]


def test_role_selection_is_per_sop_class_and_answered_once() -> None:
    """Two contexts for one SOP class share its roles; only the first 54H item
    per UID counts; the meta SOP class UID is matched as given."""
    supported = [
        ContextDefinition(CT, [ELE, ILE], T, T),
        ContextDefinition(PRINT_META, [ILE], T, T),
    ]
    _, negotiated, answers = negotiate_as_acceptor(
        [
            PresentationContextRQ(1, CT, [ELE]),
            PresentationContextRQ(3, CT, [ILE]),
            PresentationContextRQ(5, PRINT_META, [ILE]),
        ],
        supported,
        [
            SCPSCURoleSelection(CT, T, T),
            SCPSCURoleSelection(CT, F, T),  # a second item for CT: ignored
            SCPSCURoleSelection(PRINT_META, F, T),
        ],
    )
    assert answers == [SCPSCURoleSelection(CT, T, T), SCPSCURoleSelection(PRINT_META, F, T)]
    assert [(cx.as_scu, cx.as_scp) for cx in negotiated] == [(T, T), (T, T), (T, F)]


def test_no_role_answer_when_every_context_of_the_class_is_rejected() -> None:
    _, negotiated, answers = negotiate_as_acceptor(
        [PresentationContextRQ(1, CT, [JPEG])],
        [ContextDefinition(CT, [ELE], T, T)],
        [SCPSCURoleSelection(CT, T, T)],
    )
    assert negotiated[0].result == R.TRANSFER_SYNTAXES_NOT_SUPPORTED
    assert answers == []


# -- SCP/SCU role selection: the requestor (PS3.7 D.3.3.4) ----------------------------------

#: (proposed (scu, scp) or None, answer (scu, scp) or None, our roles (scu, scp))
REQUESTOR_TABLE = [
    # nothing proposed: the defaults, and any answer is ignored
    (None, None, (T, F)),
    (None, (T, T), (T, F)),
    (None, (F, T), (T, F)),
    (None, (F, F), (T, F)),
    # proposed but not answered: the defaults (PS3.7 D.3.3.4 Note)
    ((T, T), None, (T, F)),
    ((T, F), None, (T, F)),
    ((F, T), None, (T, F)),
    # proposed SCU and SCP
    ((T, T), (T, T), (T, T)),
    ((T, T), (T, F), (T, F)),
    ((T, T), (F, T), (F, T)),
    ((T, T), (F, F), (F, F)),
    # proposed SCU only: a 1 for SCP in the answer is ignored
    ((T, F), (T, T), (T, F)),
    ((T, F), (T, F), (T, F)),
    ((T, F), (F, T), (F, F)),
    ((T, F), (F, F), (F, F)),
    # proposed SCP only: a 1 for SCU in the answer is ignored
    ((F, T), (T, T), (F, T)),
    ((F, T), (T, F), (F, F)),
    ((F, T), (F, T), (F, T)),
    ((F, T), (F, F), (F, F)),
]


@pytest.mark.parametrize(("proposed", "answer", "roles"), REQUESTOR_TABLE)
def test_requestor_role_truth_table(
    proposed: tuple[bool, bool] | None,
    answer: tuple[bool, bool] | None,
    roles: tuple[bool, bool],
) -> None:
    p = None if proposed is None else SCPSCURoleSelection(CT, *proposed)
    a = None if answer is None else SCPSCURoleSelection(CT, *answer)
    assert requestor_roles(p, a) == roles
    (cx,) = negotiate_as_requestor(
        [PresentationContextRQ(1, CT, [ELE])],
        [PresentationContextAC(1, R.ACCEPTANCE, ELE)],
        [] if p is None else [p],
        [] if a is None else [a],
    )
    assert cx.accepted
    assert (cx.as_scu, cx.as_scp) == roles


# -- presentation context results (PS3.8 Table 9-18) ----------------------------------------


def test_each_presentation_context_result() -> None:
    requested = [
        PresentationContextRQ(1, VERIFICATION, [ILE]),  # 0 acceptance
        PresentationContextRQ(3, CT, [ELE]),  # 1 user rejection (refused below)
        PresentationContextRQ(4, VERIFICATION, [ILE]),  # 2 even ID
        PresentationContextRQ(5, MR, [ELE]),  # 3 abstract syntax not supported
        PresentationContextRQ(7, FIND, [JPEG, RLE]),  # 4 transfer syntaxes not supported
    ]
    supported = [
        ContextDefinition(VERIFICATION, [ILE]),
        ContextDefinition(CT, [ELE]),
        ContextDefinition(FIND, [ILE, ELE]),
    ]
    ac, negotiated, _ = negotiate_as_acceptor(requested, supported, refuse={3})
    assert ac == [
        PresentationContextAC(1, R.ACCEPTANCE, ILE),
        PresentationContextAC(3, R.USER_REJECTION, ELE),
        PresentationContextAC(4, R.NO_REASON, ILE),
        PresentationContextAC(5, R.ABSTRACT_SYNTAX_NOT_SUPPORTED, ELE),
        PresentationContextAC(7, R.TRANSFER_SYNTAXES_NOT_SUPPORTED, JPEG),
    ]
    assert negotiated == [
        NegotiatedContext(1, VERIFICATION, ILE, R.ACCEPTANCE, as_scu=False, as_scp=True),
        NegotiatedContext(3, CT, None, R.USER_REJECTION),
        NegotiatedContext(4, VERIFICATION, None, R.NO_REASON),
        NegotiatedContext(5, MR, None, R.ABSTRACT_SYNTAX_NOT_SUPPORTED),
        NegotiatedContext(7, FIND, None, R.TRANSFER_SYNTAXES_NOT_SUPPORTED),
    ]


def test_duplicate_context_id_gets_one_rejection() -> None:
    ac, negotiated, _ = negotiate_as_acceptor(
        [
            PresentationContextRQ(1, VERIFICATION, [ILE]),
            PresentationContextRQ(3, CT, [ELE]),
            PresentationContextRQ(1, CT, [ELE]),
        ],
        [ContextDefinition(VERIFICATION, [ILE]), ContextDefinition(CT, [ELE])],
    )
    assert [(item.context_id, item.result) for item in ac] == [
        (1, R.NO_REASON), (3, R.ACCEPTANCE),
    ]
    assert [cx.context_id for cx in negotiated] == [1, 3]


def test_user_rejection_hook_as_predicate() -> None:
    ac, _, _ = negotiate_as_acceptor(
        [PresentationContextRQ(1, CT, [ELE]), PresentationContextRQ(3, VERIFICATION, [ILE])],
        [ContextDefinition(CT, [ELE]), ContextDefinition(VERIFICATION, [ILE])],
        refuse=lambda cx: cx.abstract_syntax == CT,
    )
    assert [item.result for item in ac] == [R.USER_REJECTION, R.ACCEPTANCE]


def test_user_rejection_is_not_consulted_for_unsupported_contexts() -> None:
    asked: list[int] = []

    def refuse(cx: PresentationContextRQ) -> bool:
        asked.append(cx.context_id)
        return True

    ac, _, _ = negotiate_as_acceptor(
        [PresentationContextRQ(1, MR, [ELE]), PresentationContextRQ(3, CT, [JPEG])],
        [ContextDefinition(CT, [ELE])],
        refuse=refuse,
    )
    assert [item.result for item in ac] == [
        R.ABSTRACT_SYNTAX_NOT_SUPPORTED, R.TRANSFER_SYNTAXES_NOT_SUPPORTED,
    ]
    assert asked == []


def test_duplicate_supported_abstract_syntax_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        negotiate_as_acceptor(
            [], [ContextDefinition(CT, [ELE]), ContextDefinition(CT, [ILE])]
        )
    with pytest.raises(ValueError, match="defined twice"):
        AcceptorConfig("SCP", [ContextDefinition(CT, [ELE]), ContextDefinition(CT, [ILE])])


def test_context_definition_validation() -> None:
    with pytest.raises(ValueError, match="at least one transfer syntax"):
        ContextDefinition(CT, [])
    with pytest.raises(ValueError, match="not a UID"):
        ContextDefinition("", [ELE])
    with pytest.raises(ValueError, match="not a UID"):
        ContextDefinition(CT, ["1." * 40])
    # a lone string is one transfer syntax, not a list of characters
    assert ContextDefinition(CT, ELE).transfer_syntaxes == (ELE,)


# -- transfer syntax choice ------------------------------------------------------------------


def test_transfer_syntax_requestor_preference_is_the_default() -> None:
    ac, negotiated, _ = negotiate_as_acceptor(
        [PresentationContextRQ(1, CT, [JPEG, ELE, ILE])], [ContextDefinition(CT, [ILE, ELE])]
    )
    assert ac[0].transfer_syntax == ELE
    assert negotiated[0].transfer_syntax == ELE


def test_transfer_syntax_acceptor_preference() -> None:
    ac, _, _ = negotiate_as_acceptor(
        [PresentationContextRQ(1, CT, [JPEG, ELE, ILE])],
        [ContextDefinition(CT, [ILE, ELE])],
        prefer="acceptor",
    )
    assert ac[0].transfer_syntax == ILE


def test_acceptor_preference_skips_what_was_not_proposed() -> None:
    ac, _, _ = negotiate_as_acceptor(
        [PresentationContextRQ(1, CT, [ELE, JPEG])],
        [ContextDefinition(CT, [RLE, ILE, JPEG, ELE])],
        prefer="acceptor",
    )
    assert ac[0].transfer_syntax == JPEG


# -- specialized SOP classes through 57H (PS3.7 D.3.3.6) ------------------------------------


def test_specialized_sop_class_accepted_through_related_general_class() -> None:
    common = [SOPClassCommonExtendedNegotiation(PRIVATE_CT, STORAGE_SERVICE, (MR, CT))]
    supported = [ContextDefinition(CT, [ELE], scu_role=True, scp_role=True)]
    rq = [PresentationContextRQ(1, PRIVATE_CT, [ILE, ELE])]
    roles = [SCPSCURoleSelection(PRIVATE_CT, F, T)]

    ac, _, _ = negotiate_as_acceptor(rq, supported, roles, common_extended=common)
    assert ac[0].result == R.ABSTRACT_SYNTAX_NOT_SUPPORTED  # off by default

    ac, negotiated, answers = negotiate_as_acceptor(
        rq, supported, roles, common_extended=common, accept_specialized=True
    )
    assert ac == [PresentationContextAC(1, R.ACCEPTANCE, ELE)]
    assert negotiated[0].abstract_syntax == PRIVATE_CT
    assert (negotiated[0].as_scu, negotiated[0].as_scp) == (T, F)
    assert answers == [SCPSCURoleSelection(PRIVATE_CT, F, T)]


# -- the requestor's reading of the AC --------------------------------------------------------

REQUESTED = [
    PresentationContextRQ(1, VERIFICATION, [ILE]),
    PresentationContextRQ(3, CT, [JPEG, ELE]),
    PresentationContextRQ(5, MR, [ELE]),
]


def test_requestor_matches_by_id_in_any_order() -> None:
    out = negotiate_as_requestor(
        REQUESTED,
        [
            PresentationContextAC(5, R.ABSTRACT_SYNTAX_NOT_SUPPORTED, None),
            PresentationContextAC(1, R.ACCEPTANCE, ILE),
            PresentationContextAC(3, R.ACCEPTANCE, ELE),
        ],
    )
    assert out == [
        NegotiatedContext(1, VERIFICATION, ILE, R.ACCEPTANCE, as_scu=True, as_scp=False),
        NegotiatedContext(3, CT, ELE, R.ACCEPTANCE, as_scu=True, as_scp=False),
        NegotiatedContext(5, MR, None, R.ABSTRACT_SYNTAX_NOT_SUPPORTED),
    ]


def test_requestor_rejected_context_ignores_its_transfer_syntax() -> None:
    # not significant for a rejection, even if it was never proposed
    (cx,) = negotiate_as_requestor(
        [PresentationContextRQ(1, CT, [ELE])],
        [PresentationContextAC(1, R.TRANSFER_SYNTAXES_NOT_SUPPORTED, RLE)],
    )
    assert (cx.result, cx.transfer_syntax, cx.as_scu, cx.as_scp) == (
        R.TRANSFER_SYNTAXES_NOT_SUPPORTED, None, False, False,
    )


def test_requestor_missing_answer_is_rejected_no_reason() -> None:
    out = negotiate_as_requestor(REQUESTED, [PresentationContextAC(1, R.ACCEPTANCE, ILE)])
    assert [(cx.context_id, cx.result) for cx in out] == [
        (1, R.ACCEPTANCE), (3, R.NO_REASON), (5, R.NO_REASON),
    ]
    assert not any(cx.as_scu or cx.as_scp for cx in out[1:])


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([PresentationContextAC(7, R.ACCEPTANCE, ILE)], "context 7, which was not proposed"),
        ([PresentationContextAC(2, R.USER_REJECTION, None)], "context 2, which was not proposed"),
        (
            [PresentationContextAC(1, R.ACCEPTANCE, ILE), PresentationContextAC(1, 1, None)],
            "context 1 twice",
        ),
        ([PresentationContextAC(3, R.ACCEPTANCE, ILE)], f"transfer syntax {ILE}, which was not"),
        ([PresentationContextAC(5, 5, None)], "undefined result 5"),
    ],
)
def test_requestor_protocol_violations(answers: list[PresentationContextAC], message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message) as info:
        negotiate_as_requestor(REQUESTED, answers)
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


# -- asynchronous operations window (PS3.7 D.3.3.3) ------------------------------------------


def test_min_nonzero() -> None:
    assert min_nonzero(0, 0) == 0
    assert min_nonzero(0, 7) == 7
    assert min_nonzero(7, 0) == 7
    assert min_nonzero(3, 7) == 3
    assert min_nonzero(7, 3) == 3


@pytest.mark.parametrize(
    ("proposed", "supported", "answer"),
    [
        # the answer's invoked is bounded by the proposal's performed, and vice versa
        ((10, 2), (5, 5), (2, 5)),
        ((2, 10), (5, 5), (5, 2)),
        ((3, 4), (8, 9), (4, 3)),
        # 0 is unlimited
        ((0, 0), (5, 6), (5, 6)),
        ((0, 0), (0, 0), (0, 0)),
        ((7, 0), (0, 3), (0, 3)),
        ((1, 1), (0, 0), (1, 1)),
    ],
)
def test_async_window_acceptor(
    proposed: tuple[int, int], supported: tuple[int, int], answer: tuple[int, int]
) -> None:
    item, window = negotiate_async_window_as_acceptor(
        AsyncOperationsWindow(*proposed), AsyncOperationsWindow(*supported)
    )
    assert item == AsyncOperationsWindow(*answer)
    assert window == AsyncOperationsWindow(*answer)


def test_async_window_defaults() -> None:
    assert AsyncOperationsWindow(1, 1) == DEFAULT_ASYNC_WINDOW
    assert negotiate_async_window_as_acceptor(None, AsyncOperationsWindow(5, 5)) == (
        None, AsyncOperationsWindow(1, 1),
    )
    assert negotiate_async_window_as_acceptor(AsyncOperationsWindow(5, 5), None) == (
        None, AsyncOperationsWindow(1, 1),
    )
    assert negotiate_async_window_as_requestor(None, AsyncOperationsWindow(5, 5)) == (
        AsyncOperationsWindow(1, 1)
    )
    assert negotiate_async_window_as_requestor(AsyncOperationsWindow(5, 5), None) == (
        AsyncOperationsWindow(1, 1)
    )


@pytest.mark.parametrize(
    ("proposed", "answer", "window"),
    [
        # the acceptor performs 2 of ours and invokes 5 on us
        ((10, 10), (5, 2), (2, 5)),
        ((0, 0), (5, 2), (2, 5)),
        ((0, 0), (0, 0), (0, 0)),
        # an answer looser than the proposal is held to the proposal
        ((3, 1), (0, 0), (3, 1)),
        ((3, 1), (9, 9), (3, 1)),
    ],
)
def test_async_window_requestor(
    proposed: tuple[int, int], answer: tuple[int, int], window: tuple[int, int]
) -> None:
    assert negotiate_async_window_as_requestor(
        AsyncOperationsWindow(*proposed), AsyncOperationsWindow(*answer)
    ) == AsyncOperationsWindow(*window)


@given(acse_st.async_windows, acse_st.async_windows, acse_st.async_windows)
def test_async_window_sides_agree(
    proposed: AsyncOperationsWindow, supported: AsyncOperationsWindow, _: AsyncOperationsWindow
) -> None:
    """What one side may invoke is what the other may perform, and nobody gets
    more than it asked for (0 being the largest)."""
    answer, acceptor = negotiate_async_window_as_acceptor(proposed, supported)
    requestor = negotiate_async_window_as_requestor(proposed, answer)
    assert requestor.maximum_invoked == acceptor.maximum_performed
    assert requestor.maximum_performed == acceptor.maximum_invoked

    def within(value: int, limit: int) -> bool:
        return limit == 0 or (value != 0 and value <= limit)

    assert within(acceptor.maximum_invoked, supported.maximum_invoked)
    assert within(acceptor.maximum_invoked, proposed.maximum_performed)
    assert within(requestor.maximum_invoked, proposed.maximum_invoked)


# -- maximum length (PS3.8 D.1) ---------------------------------------------------------------


def test_sending_limit() -> None:
    assert sending_limit(16384) == 16384
    assert sending_limit(0) == 0  # peer: unlimited
    assert sending_limit(0, 65536) == 65536
    assert sending_limit(1 << 20, 65536) == 65536
    assert sending_limit(4096, 65536) == 4096
    assert sending_limit(None) == DEFAULT_MAXIMUM_LENGTH


# -- implementation identification (PS3.7 D.3.3.2) ------------------------------------------


def test_implementation_class_uid_is_reproducible() -> None:
    from pydicom.uid import PYDICOM_ROOT_UID, UID, generate_uid

    assert generate_uid(prefix=PYDICOM_ROOT_UID, entropy_srcs=["dicomnet"]) == (
        IMPLEMENTATION_CLASS_UID
    )
    assert IMPLEMENTATION_CLASS_UID.startswith("1.2.826.0.1.3680043.8.498.")
    assert UID(IMPLEMENTATION_CLASS_UID).is_valid


def test_implementation_version_name() -> None:
    assert IMPLEMENTATION_VERSION_NAME.startswith("DICOMNET_")
    assert 1 <= len(IMPLEMENTATION_VERSION_NAME) <= 16
    ImplementationVersionName(IMPLEMENTATION_VERSION_NAME)  # the codec accepts it
    assert acse._version_name("1.2.3") == "DICOMNET_1.2.3"
    assert acse._version_name("0.1.0.dev0") == "DICOMNET_0.1.0"
    assert acse._version_name("10.20.30rc1") == "DICOMNET_10.20"
    assert len(acse._version_name("123.456.789.1011")) == 16


# -- A-ASSOCIATE-RJ (PS3.8 Table 9-21) -------------------------------------------------------


def _rq(**changes: Any) -> AAssociateRQ:
    rq = AAssociateRQ("STORESCP", "STORESCU", [PresentationContextRQ(1, VERIFICATION, [ILE])],
                      UserInformation.build(maximum_length=16384))
    return attrs.evolve(rq, **changes)


@pytest.mark.parametrize(
    ("rq", "kwargs", "expected"),
    [
        (_rq(), {}, None),
        (_rq(protocol_version=2), {}, AAssociateRJ(1, 2, 2)),
        (_rq(protocol_version=0), {}, AAssociateRJ(1, 2, 2)),
        (_rq(protocol_version=3), {}, None),  # bit 0 is what counts
        (_rq(application_context_name="1.2.3"), {}, AAssociateRJ(1, 1, 2)),
        (_rq(called_ae_title="OTHER"), {"require_called_aet": True}, AAssociateRJ(1, 1, 7)),
        (_rq(called_ae_title="OTHER"), {}, None),
        (_rq(called_ae_title="storescp"), {"require_called_aet": True}, AAssociateRJ(1, 1, 7)),
        (_rq(), {"require_called_aet": True}, None),
        (_rq(), {"require_calling_aet": ["A", "B"]}, AAssociateRJ(1, 1, 3)),
        (_rq(), {"require_calling_aet": ["A", " STORESCU "]}, None),
        # the first failure decides
        (
            _rq(protocol_version=0, application_context_name="1.2.3"),
            {"require_called_aet": True},
            AAssociateRJ(1, 2, 2),
        ),
        (
            _rq(application_context_name="1.2.3", called_ae_title="OTHER"),
            {"require_called_aet": True},
            AAssociateRJ(1, 1, 2),
        ),
        (
            _rq(called_ae_title="OTHER"),
            {"require_called_aet": True, "require_calling_aet": ["X"]},
            AAssociateRJ(1, 1, 7),
        ),
    ],
)
def test_check_association_request(
    rq: AAssociateRQ, kwargs: dict[str, object], expected: AAssociateRJ | None
) -> None:
    assert check_association_request(rq, ae_title=" STORESCP", **kwargs) == expected  # type: ignore[arg-type]


def test_rejection_constants() -> None:
    assert AAssociateRJ(1, 2, 2) == REJECT_PROTOCOL_VERSION
    assert AAssociateRJ(1, 1, 2) == REJECT_APPLICATION_CONTEXT
    assert AAssociateRJ(1, 1, 3) == REJECT_CALLING_AE_TITLE
    assert AAssociateRJ(1, 1, 7) == REJECT_CALLED_AE_TITLE
    assert reject_local_limit_exceeded() == AAssociateRJ(2, 3, 2)
    assert reject_temporary_congestion() == AAssociateRJ(2, 3, 1)
    assert AAssociateRJ(1, 1, 1) == REJECT_USER_IDENTITY
    assert AAssociateRJ(1, 1, 1) == REJECT_NO_ACCEPTABLE_CONTEXT


@pytest.mark.parametrize(
    ("rj", "text"),
    [
        (AAssociateRJ(1, 1, 1), "rejected-permanent (1) by the DICOM UL service-user (1): "
                                "no-reason-given (1)"),
        (AAssociateRJ(1, 1, 2), "application-context-name-not-supported (2)"),
        (AAssociateRJ(1, 1, 3), "calling-AE-title-not-recognized (3)"),
        (AAssociateRJ(1, 1, 4), "DICOM UL service-user (1): reserved (4)"),
        (AAssociateRJ(1, 1, 5), "reserved (5)"),
        (AAssociateRJ(1, 1, 6), "reserved (6)"),
        (AAssociateRJ(1, 1, 7), "called-AE-title-not-recognized (7)"),
        (AAssociateRJ(1, 1, 8), "reserved (8)"),
        (AAssociateRJ(1, 1, 9), "reserved (9)"),
        (AAssociateRJ(1, 1, 10), "reserved (10)"),
        (AAssociateRJ(2, 2, 1), "rejected-transient (2) by the DICOM UL service-provider "
                                "(ACSE related function) (2): no-reason-given (1)"),
        (AAssociateRJ(1, 2, 2), "(ACSE related function) (2): protocol-version-not-supported (2)"),
        (AAssociateRJ(2, 3, 0), "(Presentation related function) (3): reserved (0)"),
        (AAssociateRJ(2, 3, 1), "(Presentation related function) (3): temporary-congestion (1)"),
        (AAssociateRJ(2, 3, 2), "(Presentation related function) (3): local-limit-exceeded (2)"),
        *(
            (AAssociateRJ(2, 3, n), f"(Presentation related function) (3): reserved ({n})")
            for n in range(3, 8)
        ),
        (AAssociateRJ(1, 1, 11), "service-user (1): undefined reason (11)"),
        (AAssociateRJ(1, 2, 3), "undefined reason (3)"),
        (AAssociateRJ(3, 1, 1), "undefined result (3) by the DICOM UL service-user (1)"),
        (AAssociateRJ(1, 9, 1), "rejected-permanent (1) by an undefined source (9): "
                                "undefined reason (1)"),
    ],
)
def test_describe_rejection(rj: AAssociateRJ, text: str) -> None:
    assert text in describe_rejection(rj)


# -- user identity (PS3.7 D.3.3.7) ------------------------------------------------------------


def test_user_identity_builders() -> None:
    assert user_identity_username("bob") == UserIdentityRQ(1, b"bob", b"", False)
    assert user_identity_username("jörg", positive_response=True) == UserIdentityRQ(
        1, "jörg".encode(), b"", True
    )
    assert user_identity_username_passcode("bob", "s3cret") == UserIdentityRQ(
        2, b"bob", b"s3cret", False
    )
    assert user_identity_kerberos(b"\x01\x02") == UserIdentityRQ(3, b"\x01\x02", b"", False)
    assert user_identity_saml("<saml/>") == UserIdentityRQ(4, b"<saml/>", b"", False)
    assert user_identity_jwt(b"a.b.c", positive_response=True) == UserIdentityRQ(
        5, b"a.b.c", b"", True
    )
    with pytest.raises(ValueError, match="empty"):
        user_identity_username("")
    with pytest.raises(ValueError, match="too long"):
        user_identity_saml(b"x" * 0xFFFF)


@pytest.mark.parametrize(
    ("identity", "verdict", "response"),
    [
        # types 1 and 2: the server response is empty whatever the verifier says
        (user_identity_username("bob", positive_response=True), b"ignored", b""),
        (user_identity_username_passcode("bob", "pw", positive_response=True), b"", b""),
        (user_identity_kerberos(b"ticket", positive_response=True), b"server-ticket",
         b"server-ticket"),
        (user_identity_saml("<a/>", positive_response=True), b"<response/>", b"<response/>"),
        (user_identity_jwt("a.b.c", positive_response=True), b"x.y.z", b"x.y.z"),
    ],
)
def test_user_identity_positive_response(
    identity: UserIdentityRQ, verdict: bytes, response: bytes
) -> None:
    outcome = respond_to_user_identity(identity, lambda _: verdict)
    assert outcome.verified
    assert outcome.rejection is None
    assert outcome.response == UserIdentityAC(response)


def test_user_identity_without_positive_response_request() -> None:
    outcome = respond_to_user_identity(user_identity_kerberos(b"t"), lambda _: b"server")
    assert (outcome.verified, outcome.response, outcome.rejection) == (True, None, None)


def test_user_identity_rejections() -> None:
    identity = user_identity_username_passcode("bob", "wrong", positive_response=True)
    outcome = respond_to_user_identity(identity, lambda _: None)
    assert outcome.rejection == REJECT_USER_IDENTITY
    assert outcome.response is None
    custom = AAssociateRJ(2, 1, 1)
    assert respond_to_user_identity(identity, lambda _: custom).rejection == custom


def test_user_identity_not_supported_or_not_sent() -> None:
    identity = user_identity_username("bob", positive_response=True)
    # an acceptor that does not support it accepts without a response
    assert respond_to_user_identity(identity, None) == acse.UserIdentityOutcome(identity)
    # no request: the verifier is not even asked
    assert respond_to_user_identity(None, lambda _: pytest.fail("called")) == (
        acse.UserIdentityOutcome(None)
    )


# -- SOP class extended negotiation (PS3.7 D.3.3.5, D.3.3.6) ---------------------------------


EXT_RQ = [
    SOPClassExtendedNegotiation(FIND, b"\x01\x01"),
    SOPClassExtendedNegotiation(MR, b"\x01"),
    SOPClassExtendedNegotiation(CT, b"\x02"),
    SOPClassExtendedNegotiation(FIND, b"\x00"),  # a second one for FIND: ignored
]


def test_extended_negotiation_with_mapping() -> None:
    out = select_sop_class_extended(
        EXT_RQ, {FIND, CT}, {FIND: b"\x01\x00", MR: b"\x01", VERIFICATION: b"\x09"}
    )
    # MR is answered by the policy but has no accepted context; CT has no policy entry;
    # VERIFICATION was never requested
    assert out == (SOPClassExtendedNegotiation(FIND, b"\x01\x00"),)


def test_extended_negotiation_with_callable() -> None:
    seen: list[bytes] = []

    def policy(item: SOPClassExtendedNegotiation) -> bytes | None:
        seen.append(item.service_class_application_information)
        return None if item.sop_class_uid == CT else item.service_class_application_information[:1]

    out = select_sop_class_extended(EXT_RQ, {FIND, CT, MR}, policy)
    assert out == (
        SOPClassExtendedNegotiation(FIND, b"\x01"),
        SOPClassExtendedNegotiation(MR, b"\x01"),
    )
    assert seen == [b"\x01\x01", b"\x01", b"\x02"]


def test_extended_negotiation_without_policy() -> None:
    assert select_sop_class_extended(EXT_RQ, {FIND}, None) == ()


def test_extended_negotiation_requestor_side() -> None:
    answered = [
        SOPClassExtendedNegotiation(FIND, b"\x01"),
        SOPClassExtendedNegotiation(VERIFICATION, b"\x01"),  # not proposed: ignored
        SOPClassExtendedNegotiation(FIND, b"\x00"),  # second answer: ignored
    ]
    assert interpret_sop_class_extended(EXT_RQ, answered) == {FIND: b"\x01"}


# -- building the A-ASSOCIATE-RQ --------------------------------------------------------------


def test_build_associate_rq() -> None:
    common = SOPClassCommonExtendedNegotiation(PRIVATE_CT, STORAGE_SERVICE, (CT,))
    ext = SOPClassExtendedNegotiation(FIND, b"\x01")
    identity = user_identity_username("bob")
    rq = build_associate_rq(
        calling_ae_title="FINDSCU",
        called_ae_title="ANY-SCP",
        contexts=[
            ContextDefinition(VERIFICATION, [ILE]),
            ContextDefinition(CT, [ELE, ILE], scp_role=True),
            ContextDefinition(CT, [JPEG], scp_role=True),
            ContextDefinition(MR, [ELE], scu_role=False, scp_role=True),
            ContextDefinition(FIND, [ELE]),
        ],
        maximum_length=65536,
        async_window=AsyncOperationsWindow(3, 1),
        sop_class_extended=[ext],
        sop_class_common_extended=[common],
        user_identity=identity,
    )
    assert (rq.calling_ae_title, rq.called_ae_title) == ("FINDSCU", "ANY-SCP")
    assert rq.application_context_name == APPLICATION_CONTEXT_NAME
    assert [cx.context_id for cx in rq.presentation_contexts] == [1, 3, 5, 7, 9]
    assert rq.presentation_contexts[1] == PresentationContextRQ(3, CT, (ELE, ILE))
    assert rq.user_information.items == (
        MaximumLength(65536),
        ImplementationClassUID(IMPLEMENTATION_CLASS_UID),
        AsyncOperationsWindow(3, 1),
        # one item per SOP class; an unspecified SCU role is the default: proposed
        SCPSCURoleSelection(CT, True, True),
        SCPSCURoleSelection(MR, False, True),
        ImplementationVersionName(IMPLEMENTATION_VERSION_NAME),
        ext,
        common,
        identity,
    )
    assert roundtrip(rq) == rq


def test_build_associate_rq_minimal() -> None:
    rq = build_associate_rq(
        calling_ae_title="A", called_ae_title="B", contexts=[ContextDefinition(CT, ELE)],
        implementation_version_name=None,
    )
    assert rq.user_information.items == (
        MaximumLength(DEFAULT_MAXIMUM_LENGTH), ImplementationClassUID(IMPLEMENTATION_CLASS_UID),
    )


def test_build_associate_rq_128_contexts() -> None:
    contexts = [ContextDefinition(CT, [ELE])] * 128
    rq = build_associate_rq(calling_ae_title="A", called_ae_title="B", contexts=contexts)
    assert [cx.context_id for cx in rq.presentation_contexts] == list(range(1, 256, 2))
    with pytest.raises(ValueError, match="129 presentation contexts"):
        build_associate_rq(
            calling_ae_title="A", called_ae_title="B", contexts=[*contexts, contexts[0]]
        )


def test_build_associate_rq_role_errors() -> None:
    with pytest.raises(ValueError, match="propose different roles"):
        build_associate_rq(
            calling_ae_title="A",
            called_ae_title="B",
            contexts=[
                ContextDefinition(CT, [ELE], scp_role=True),
                ContextDefinition(CT, [ILE], scu_role=False, scp_role=True),
            ],
        )
    with pytest.raises(ValueError, match="must propose SCU or SCP"):
        build_associate_rq(
            calling_ae_title="A",
            called_ae_title="B",
            contexts=[ContextDefinition(CT, [ELE], scu_role=False)],
        )


# -- whole associations ---------------------------------------------------------------------


def _scu_rq(**kwargs: object) -> AAssociateRQ:
    defaults: dict[str, object] = {
        "calling_ae_title": "SCU",
        "called_ae_title": "SCP",
        "contexts": [
            ContextDefinition(VERIFICATION, [ILE]),
            ContextDefinition(CT, [JPEG, ELE], scu_role=True, scp_role=True),
            ContextDefinition(MR, [ELE]),
        ],
    }
    defaults.update(kwargs)
    return build_associate_rq(**defaults)  # type: ignore[arg-type]


SCP_CONFIG = AcceptorConfig(
    "SCP",
    [
        ContextDefinition(VERIFICATION, [ILE, ELE]),
        ContextDefinition(CT, [ELE, ILE], scu_role=False, scp_role=True),
        ContextDefinition(FIND, [ELE]),
    ],
    maximum_length=32768,
    require_called_aet=True,
)


def test_accept_or_reject_then_interpret_the_response() -> None:
    rq = _scu_rq(
        maximum_length=0,
        async_window=AsyncOperationsWindow(4, 2),
        user_identity=user_identity_kerberos(b"ticket", positive_response=True),
        sop_class_extended=[SOPClassExtendedNegotiation(CT, b"\x01")],
    )
    config = attrs.evolve(
        SCP_CONFIG,
        async_window=AsyncOperationsWindow(3, 3),
        identity_verifier=lambda identity: b"server-ticket",
        sop_class_extended={CT: b"\x00"},
        maximum_send_length=65536,
    )
    result = accept_or_reject(roundtrip(rq), config)  # type: ignore[arg-type]
    ac = result.response
    assert isinstance(ac, AAssociateAC)
    assert result.accepted and result.rejection is None
    assert (ac.called_ae_title, ac.calling_ae_title) == ("SCP", "SCU")
    assert ac.presentation_contexts == (
        PresentationContextAC(1, R.ACCEPTANCE, ILE),
        PresentationContextAC(3, R.ACCEPTANCE, ELE),
        PresentationContextAC(5, R.ABSTRACT_SYNTAX_NOT_SUPPORTED, ELE),
    )
    assert ac.user_information.items == (
        MaximumLength(32768),
        ImplementationClassUID(IMPLEMENTATION_CLASS_UID),
        AsyncOperationsWindow(2, 3),
        SCPSCURoleSelection(CT, False, True),
        ImplementationVersionName(IMPLEMENTATION_VERSION_NAME),
        SOPClassExtendedNegotiation(CT, b"\x00"),
        UserIdentityAC(b"server-ticket"),
    )
    # the acceptor's view
    assert result.max_send_length == 65536  # requestor unlimited, our cap
    assert result.max_receive_length == 32768
    assert result.async_window == AsyncOperationsWindow(2, 3)
    assert result.identity_verified
    assert result.user_identity == rq.user_information.user_identity_rq
    assert result.user_identity_response == b"server-ticket"
    assert result.extended_negotiation(CT) == b"\x00"
    assert result.extended_negotiation(MR) is None
    assert result.peer_implementation_class_uid == IMPLEMENTATION_CLASS_UID
    assert result.peer_implementation_version_name == IMPLEMENTATION_VERSION_NAME
    ct = result.context(3)
    assert ct is not None and (ct.as_scu, ct.as_scp) == (True, False)
    assert result.find_context(CT, as_scu=True) == ct
    assert result.find_context(CT, as_scp=True) is None
    assert result.find_context(VERIFICATION, as_scp=True, transfer_syntax=ILE) is not None
    assert result.find_context(VERIFICATION, transfer_syntax=ELE) is None
    assert result.find_context(MR) is None
    assert [cx.context_id for cx in result.accepted_contexts] == [1, 3]

    # the requestor's view of the same AC
    mine = interpret_associate_response(rq, roundtrip(ac))  # type: ignore[arg-type]
    assert mine.accepted
    assert [(cx.context_id, cx.result, cx.transfer_syntax) for cx in mine.contexts] == [
        (1, R.ACCEPTANCE, ILE), (3, R.ACCEPTANCE, ELE), (5, R.ABSTRACT_SYNTAX_NOT_SUPPORTED, None),
    ]
    mine_ct = mine.context(3)
    assert mine_ct is not None and (mine_ct.as_scu, mine_ct.as_scp) == (False, True)
    assert mine.max_send_length == 32768
    assert mine.max_receive_length == 0
    assert mine.async_window == AsyncOperationsWindow(3, 2)
    assert mine.identity_verified
    assert mine.user_identity_response == b"server-ticket"
    assert mine.extended_negotiation(CT) == b"\x00"
    assert mine.peer_implementation_class_uid == IMPLEMENTATION_CLASS_UID


def test_accept_or_reject_rejections() -> None:
    assert accept_or_reject(_scu_rq(called_ae_title="WRONG"), SCP_CONFIG) == NegotiationResult(
        REJECT_CALLED_AE_TITLE
    )
    rq = _scu_rq(user_identity=user_identity_username_passcode("bob", "bad"))
    result = accept_or_reject(rq, attrs.evolve(SCP_CONFIG, identity_verifier=lambda _: None))
    assert result.rejection == REJECT_USER_IDENTITY
    assert not result.accepted and result.contexts == ()

    rq = _scu_rq(contexts=[ContextDefinition(MR, [ELE])])
    assert accept_or_reject(rq, SCP_CONFIG).accepted  # every context rejected, still accepted
    strict = attrs.evolve(SCP_CONFIG, reject_without_accepted_context=True)
    assert accept_or_reject(rq, strict).rejection == REJECT_NO_ACCEPTABLE_CONTEXT


def test_accept_without_identity_support_sends_no_response() -> None:
    rq = _scu_rq(user_identity=user_identity_username("bob", positive_response=True))
    result = accept_or_reject(rq, SCP_CONFIG)
    assert isinstance(result.response, AAssociateAC)
    assert result.response.user_information.user_identity_ac is None
    assert not result.identity_verified
    assert result.user_identity == rq.user_information.user_identity_rq
    mine = interpret_associate_response(rq, result.response)
    assert not mine.identity_verified and mine.user_identity_response is None


def test_interpret_rejection() -> None:
    rj = AAssociateRJ(2, 3, 1)
    assert interpret_associate_response(_scu_rq(), rj) == NegotiationResult(rj)


def test_interpret_response_ignores_unsolicited_items() -> None:
    rq = _scu_rq(contexts=[ContextDefinition(CT, [ELE])])
    ac = AAssociateAC(
        "SCP",
        "SCU",
        [PresentationContextAC(1, R.ACCEPTANCE, ELE)],
        UserInformation(
            (
                AsyncOperationsWindow(0, 0),  # we proposed none: synchronous
                SCPSCURoleSelection(CT, True, True),  # we proposed none: defaults
                UserIdentityAC(b"?"),  # we sent no identity
                SOPClassExtendedNegotiation(CT, b"\x01"),  # we proposed none
            )
        ),
    )
    mine = interpret_associate_response(rq, ac)
    assert mine.async_window == AsyncOperationsWindow(1, 1)
    assert (mine.contexts[0].as_scu, mine.contexts[0].as_scp) == (True, False)
    assert mine.user_identity_response is None and not mine.identity_verified
    assert mine.sop_class_extended == ()
    # no Maximum Length item (mandatory): assume the common default
    assert mine.max_send_length == DEFAULT_MAXIMUM_LENGTH


# -- properties --------------------------------------------------------------------------------


@given(
    acse_st.requested_context_lists,
    acse_st.supported_context_lists,
    acse_st.role_proposals,
    st.sampled_from(["requestor", "acceptor"]),
    st.sets(acse_st.any_context_ids, max_size=3),
)
def test_acceptor_answers_each_context_exactly_once(
    requested: list[PresentationContextRQ],
    supported: list[ContextDefinition],
    roles: list[SCPSCURoleSelection],
    prefer: acse.TransferSyntaxPreference,
    refused: set[int],
) -> None:
    ac, negotiated, answers = negotiate_as_acceptor(
        requested, supported, roles, prefer=prefer, refuse=refused
    )
    distinct = list(dict.fromkeys(cx.context_id for cx in requested))
    assert [item.context_id for item in ac] == distinct
    assert [cx.context_id for cx in negotiated] == distinct
    by_id = {cx.context_id: cx for cx in reversed(requested)}  # first occurrence wins
    defs = {d.abstract_syntax: d for d in supported}
    for item, cx in zip(ac, negotiated, strict=True):
        rq = by_id[item.context_id]
        assert item.result == cx.result
        assert item.result in {0, 1, 2, 3, 4}
        assert item.transfer_syntax is not None  # the sub-item is always there
        if cx.accepted:
            assert item.context_id % 2 == 1 and item.context_id not in refused
            assert cx.transfer_syntax == item.transfer_syntax
            assert item.transfer_syntax in rq.transfer_syntaxes
            assert item.transfer_syntax in defs[rq.abstract_syntax].transfer_syntaxes
            assert cx.as_scu or cx.as_scp
        else:
            assert cx.transfer_syntax is None and not (cx.as_scu or cx.as_scp)
    proposed = {r.sop_class_uid: r for r in reversed(roles)}
    accepted_syntaxes = {cx.abstract_syntax for cx in negotiated if cx.accepted}
    for answer in answers:
        assert answer.sop_class_uid in accepted_syntaxes
        p = proposed[answer.sop_class_uid]
        assert p.scu_role or not answer.scu_role
        assert p.scp_role or not answer.scp_role
    assert len({a.sop_class_uid for a in answers}) == len(answers)


@given(
    acse_st.unique_odd_requested_contexts(),
    acse_st.supported_context_lists,
    acse_st.role_proposals,
)
def test_both_sides_agree(
    requested: list[PresentationContextRQ],
    supported: list[ContextDefinition],
    roles: list[SCPSCURoleSelection],
) -> None:
    """The requestor reading the acceptor's answer never sees a protocol error, and
    both sides agree on every context: the same result and transfer syntax, and
    mirrored roles (one side's SCU is the other's SCP)."""
    ac, acceptor, answers = negotiate_as_acceptor(requested, supported, roles)
    requestor = negotiate_as_requestor(requested, ac[::-1], roles, answers)
    assert len(requestor) == len(acceptor)
    for mine, theirs in zip(requestor, acceptor, strict=True):
        assert (mine.context_id, mine.abstract_syntax, mine.result, mine.transfer_syntax) == (
            theirs.context_id, theirs.abstract_syntax, theirs.result, theirs.transfer_syntax,
        )
        assert (mine.as_scu, mine.as_scp) == (theirs.as_scp, theirs.as_scu)


@given(acse_st.unique_odd_requested_contexts(), acse_st.supported_context_lists)
def test_whole_association_roundtrip(
    requested: list[PresentationContextRQ], supported: list[ContextDefinition]
) -> None:
    """accept_or_reject's AC survives the codec and interprets consistently."""
    rq = AAssociateRQ("SCP", "SCU", requested, UserInformation.build(maximum_length=0))
    result = accept_or_reject(rq, AcceptorConfig("SCP", supported))
    assert isinstance(result.response, AAssociateAC)
    mine = interpret_associate_response(rq, roundtrip(result.response))  # type: ignore[arg-type]
    assert [(c.context_id, c.result, c.transfer_syntax) for c in mine.contexts] == [
        (c.context_id, c.result, c.transfer_syntax) for c in result.contexts
    ]
    assert mine.max_send_length == DEFAULT_MAXIMUM_LENGTH
    assert result.max_send_length == 0
