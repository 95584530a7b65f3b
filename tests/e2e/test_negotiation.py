"""Association negotiation end to end (PS3.8 7.1, 9.3; PS3.7 D.3.3).

Rejections with their exact result, source and reason (PS3.8 Table 9-21), the
association limit, presentation contexts (none in common, unsupported by any
plugin), user identity, role selection, asynchronous operations and maximum
PDU lengths down to 7 bytes.

Decision documented here (``test_minimal_build_rejects_sop_classes_it_cannot_serve``):
an AE rejects, with *abstract syntax not supported* (result 3), a supported
context whose SOP class no loaded service class serves as SCP -- unless the
requestor proposes the SCP role for it (SCP/SCU Role Selection), when the
acceptor may only have to be SCU. ``AE(plugins=["verification"])`` with CT
Image Storage among its supported contexts thus accepts Verification only,
instead of accepting CT Image Storage and answering every C-STORE with 0122H.
The server logs one warning naming such SOP classes when it starts.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from dicomnet import build_role, evt
from dicomnet.pdu import AAssociateRJ
from dicomnet.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    UserIdentityNegotiation,
)
from dicomnet.ul_events import RawPData

from .peers import CT_IMAGE_STORAGE, VERIFICATION

WAIT = 5.0


def associate(scu: Any, scp: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("ae_title", scp.ae.ae_title)
    return scu.associate("127.0.0.1", scp.port, **kwargs)


def rejection(scu: Any, scp: Any, **kwargs: Any) -> tuple[int, int, int]:
    """Associate, expect a rejection, and return its (result, source, reason)."""
    received: list[Any] = []
    assoc = associate(
        scu,
        scp,
        evt_handlers=[(evt.EVT_ACSE_RECV, lambda e: received.append(e.primitive))],
        **kwargs,
    )
    assert assoc.is_rejected
    assert not assoc.is_established and not assoc.is_aborted
    [rj] = received
    assert isinstance(rj, AAssociateRJ)
    assoc.join(WAIT)
    return (rj.result, rj.source, rj.reason)


def test_called_ae_title_required(make_scp: Any, scu: Any) -> None:
    scp = make_scp("STRICT", require_called_aet=True)
    assert rejection(scu, scp, ae_title="SOMEONE-ELSE") == (1, 1, 7)
    with associate(scu, scp) as assoc:  # the right title
        assert assoc.send_c_echo().Status == 0


def test_calling_ae_title_required(make_scp: Any, make_scu: Any) -> None:
    scp = make_scp(require_calling_aet=["FRIEND"])
    assert rejection(make_scu("STRANGER"), scp) == (1, 1, 3)
    with associate(make_scu("FRIEND"), scp) as assoc:
        assert assoc.send_c_echo().Status == 0


def test_no_common_context_is_established_with_every_context_rejected(
    scp: Any, make_scu: Any
) -> None:
    scu = make_scu(contexts=[CT_IMAGE_STORAGE])
    assoc = associate(scu, scp)
    assert assoc.is_established
    assert assoc.accepted_contexts == []
    assert [(cx.abstract_syntax, cx.result) for cx in assoc.rejected_contexts] == [
        (CT_IMAGE_STORAGE, 3)
    ]
    with pytest.raises(ValueError, match="Verification"):
        assoc.send_c_echo()
    assoc.release()
    assert assoc.is_released


def test_minimal_build_rejects_sop_classes_it_cannot_serve(
    make_scp: Any, make_scu: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dicomnet"):
        scp = make_scp(contexts=[VERIFICATION, CT_IMAGE_STORAGE], plugins=["verification"])
    assert any(CT_IMAGE_STORAGE in r.getMessage() for r in caplog.records)
    scu = make_scu(contexts=[VERIFICATION, CT_IMAGE_STORAGE])
    with associate(scu, scp) as assoc:
        assert [cx.abstract_syntax for cx in assoc.accepted_contexts] == [VERIFICATION]
        [rejected] = assoc.rejected_contexts
        assert (rejected.abstract_syntax, rejected.result) == (CT_IMAGE_STORAGE, 3)
        assert assoc.send_c_echo().Status == 0


def test_minimal_build_accepts_a_context_where_it_is_only_scu(make_scp: Any, make_scu: Any) -> None:
    """The requestor takes the SCP role (as for C-GET's C-STORE sub-operations): the
    acceptor is only SCU there and needs no service class."""

    def configure(ae: Any) -> None:
        ae.add_supported_context(CT_IMAGE_STORAGE, scu_role=True, scp_role=True)

    scp = make_scp(plugins=["verification"], configure=configure)
    scu = make_scu(contexts=[VERIFICATION, CT_IMAGE_STORAGE])
    role = build_role(CT_IMAGE_STORAGE, scp_role=True)
    with associate(scu, scp, ext_neg=[role]) as assoc:
        [ct] = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == CT_IMAGE_STORAGE]
        assert ct.as_scp and not ct.as_scu  # the requestor is SCP only


def test_maximum_associations(make_scp: Any, scu: Any) -> None:
    scp = make_scp(maximum_associations=2)
    first = associate(scu, scp)
    second = associate(scu, scp)
    assert first.is_established and second.is_established
    # transient, service provider (presentation), local limit exceeded (PS3.8 Table 9-21)
    assert rejection(scu, scp) == (2, 3, 2)
    assert first.send_c_echo().Status == 0
    assert second.send_c_echo().Status == 0
    first.release()
    third = associate(scu, scp)  # a slot is free again at once
    assert third.is_established
    assert third.send_c_echo().Status == 0
    second.release()
    third.release()


def test_maximum_associations_one_with_sequential_clients(make_scp: Any, scu: Any) -> None:
    """Released associations do not count while their threads finish closing."""
    scp = make_scp(maximum_associations=1)
    for i in range(100):
        assoc = associate(scu, scp)
        assert assoc.is_established, f"association {i} was rejected"
        assoc.release()


def identity(kind: int, primary: bytes, *, positive: bool = True) -> UserIdentityNegotiation:
    item = UserIdentityNegotiation()
    item.user_identity_type = kind
    item.primary_field = primary
    item.positive_response_requested = positive
    return item


def test_user_identity_accepted_with_a_response(make_scp: Any, scu: Any) -> None:
    seen: list[tuple[Any, ...]] = []

    def check(event: Any) -> tuple[bool, bytes]:
        seen.append((event.user_id_type, event.primary_field, event.secondary_field))
        return event.primary_field == b"valid-jwt", b"server-says-hi"

    scp = make_scp(handlers=[(evt.EVT_USER_ID, check)])
    with associate(scu, scp, ext_neg=[identity(5, b"valid-jwt")]) as assoc:
        assert assoc.is_established
        assert assoc.negotiation.identity_verified
        assert assoc.negotiation.user_identity_response == b"server-says-hi"
    assert seen == [(5, b"valid-jwt", None)]


def test_user_identity_username_response_is_empty(make_scp: Any, scu: Any) -> None:
    """For types 1 and 2 the server response shall be zero length (PS3.7 D.3.3.7.2)."""
    scp = make_scp(handlers=[(evt.EVT_USER_ID, lambda e: (True, b"ignored"))])
    with associate(scu, scp, ext_neg=[identity(1, b"alice")]) as assoc:
        assert assoc.negotiation.identity_verified
        assert assoc.negotiation.user_identity_response == b""


def test_user_identity_rejected(make_scp: Any, scu: Any) -> None:
    scp = make_scp(handlers=[(evt.EVT_USER_ID, lambda e: (False, None))])
    assert rejection(scu, scp, ext_neg=[identity(5, b"forged")]) == (1, 1, 1)


def test_user_identity_handler_that_raises_rejects(make_scp: Any, scu: Any) -> None:
    def broken(event: Any) -> Any:
        raise RuntimeError("identity provider down")

    scp = make_scp(handlers=[(evt.EVT_USER_ID, broken)])
    assert rejection(scu, scp, ext_neg=[identity(1, b"bob")]) == (1, 1, 1)
    with associate(scu, scp) as assoc:  # without an identity nobody is asked
        assert assoc.is_established


def test_user_identity_without_handler_is_accepted_without_response(scp: Any, scu: Any) -> None:
    with associate(scu, scp, ext_neg=[identity(5, b"token")]) as assoc:
        assert assoc.is_established
        assert not assoc.negotiation.identity_verified
        assert assoc.negotiation.user_identity_response is None


def test_role_selection(make_scp: Any, make_scu: Any) -> None:
    def configure(ae: Any) -> None:
        ae.add_supported_context(CT_IMAGE_STORAGE, scu_role=True, scp_role=True)

    scp = make_scp(configure=configure)
    scu = make_scu(contexts=[VERIFICATION, CT_IMAGE_STORAGE])
    roles = [build_role(CT_IMAGE_STORAGE, scu_role=True, scp_role=True)]
    accepted_at_scp = threading.Event()
    peer: list[Any] = []
    scp.server.bind(evt.EVT_ESTABLISHED, lambda e: (peer.append(e.assoc), accepted_at_scp.set()))
    with associate(scu, scp, ext_neg=roles) as assoc:
        by_uid = {cx.abstract_syntax: cx for cx in assoc.accepted_contexts}
        assert by_uid[CT_IMAGE_STORAGE].as_scu and by_uid[CT_IMAGE_STORAGE].as_scp
        assert by_uid[VERIFICATION].as_scu and not by_uid[VERIFICATION].as_scp
        assert accepted_at_scp.wait(WAIT)
        theirs = {cx.abstract_syntax: cx for cx in peer[0].accepted_contexts}
        assert theirs[CT_IMAGE_STORAGE].as_scu and theirs[CT_IMAGE_STORAGE].as_scp
        assert theirs[VERIFICATION].as_scp and not theirs[VERIFICATION].as_scu


def test_role_selection_refused_by_the_acceptor(make_scp: Any, make_scu: Any) -> None:
    """The acceptor does not allow the requestor to be SCP: the requestor stays SCU."""
    scp = make_scp(contexts=[VERIFICATION])
    scu = make_scu()
    with associate(scu, scp, ext_neg=[build_role(VERIFICATION, scu_role=True, scp_role=True)]) as a:
        [cx] = a.accepted_contexts
        assert cx.as_scu and not cx.as_scp
        assert a.send_c_echo().Status == 0


def async_window(invoked: int, performed: int) -> AsynchronousOperationsWindowNegotiation:
    item = AsynchronousOperationsWindowNegotiation()
    item.maximum_number_operations_invoked = invoked
    item.maximum_number_operations_performed = performed
    return item


def test_async_operations_negotiated_through_the_handler(make_scp: Any, scu: Any) -> None:
    asked: list[tuple[int, int]] = []

    def window(event: Any) -> tuple[int, int]:
        asked.append((event.invoked, event.performed))
        return (3, 2)  # the acceptor's answer: invoked, performed

    scp = make_scp(handlers=[(evt.EVT_ASYNC_OPS, window)])
    with associate(scu, scp, ext_neg=[async_window(5, 4)]) as assoc:
        assert asked == [(5, 4)]
        window_ = assoc.negotiation.async_window
        # we invoke at most what the acceptor performs, and perform what it invokes
        assert (window_.maximum_invoked, window_.maximum_performed) == (2, 3)
        assert assoc.send_c_echo().Status == 0


def test_async_operations_without_handler_stay_synchronous(scp: Any, scu: Any) -> None:
    with associate(scu, scp, ext_neg=[async_window(5, 5)]) as assoc:
        window = assoc.negotiation.async_window
        assert (window.maximum_invoked, window.maximum_performed) == (1, 1)


def pdata_lengths(events: list[Any]) -> list[int]:
    lengths = []
    for event in events:
        if isinstance(event.pdu, RawPData):
            lengths.extend(len(pdu.to_bytes()) - 6 for pdu in event.pdu.decode())
    return lengths


@pytest.mark.parametrize("max_pdu", [7, 20, 100, 0])
def test_small_maximum_pdu_of_the_acceptor(make_scp: Any, scu: Any, max_pdu: int) -> None:
    """The SCP announces a tiny Maximum Length: the SCU fragments to fit (PS3.8 D.1)."""
    received: list[Any] = []
    scp = make_scp(maximum_pdu_size=max_pdu, handlers=[(evt.EVT_PDU_RECV, received.append)])
    with associate(scu, scp) as assoc:
        assert assoc.acceptor.maximum_length == max_pdu
        for _ in range(3):
            assert assoc.send_c_echo().Status == 0
    lengths = pdata_lengths(received)
    assert lengths
    if max_pdu:
        assert max(lengths) <= max_pdu
        assert len(lengths) >= 3 * -(-68 // (max_pdu - 6))  # a 68-byte C-ECHO-RQ each


@pytest.mark.parametrize("max_pdu", [7, 50])
def test_small_maximum_pdu_of_the_requestor(make_scp: Any, scu: Any, max_pdu: int) -> None:
    """The SCU announces a tiny Maximum Length: the SCP's responses are fragmented."""
    received: list[Any] = []
    scp = make_scp()
    with associate(
        scu, scp, max_pdu=max_pdu, evt_handlers=[(evt.EVT_PDU_RECV, received.append)]
    ) as assoc:
        assert assoc.send_c_echo().Status == 0
    lengths = pdata_lengths(received)
    assert max(lengths) <= max_pdu
    assert len(lengths) > 1


def test_small_maximum_pdu_on_both_sides_with_an_error_comment(make_scp: Any, scu: Any) -> None:
    from pydicom.dataset import Dataset

    def refuse(event: Any) -> Dataset:
        status = Dataset()
        status.Status = 0x0211
        status.ErrorComment = "x" * 64
        return status

    scp = make_scp(maximum_pdu_size=9, handlers=[(evt.EVT_C_ECHO, refuse)])
    with associate(scu, scp, max_pdu=8) as assoc:
        status = assoc.send_c_echo()
    assert status.Status == 0x0211
    assert status.ErrorComment == "x" * 64
