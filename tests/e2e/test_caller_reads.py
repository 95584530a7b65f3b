"""A requestor's caller reads its own responses; the association's thread reads the rest.

``Association._wait`` lets a thread waiting for a response read it itself when
nobody else reads, so that a response wakes one thread rather than the
association's thread and then the caller; the association's thread reads
only once no caller has waited for ``CALLER_LINGER`` seconds. What must still
hold: several threads can use one association at once; a request the peer
sends while a caller waits is served; the peer's release is answered when no
caller waits; another thread's abort ends a wait; a handler that the caller's
thread runs (a C-STORE sub-operation of a C-GET) may abort the association.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import association, evt
from dicomnet import dimse_messages as dm
from dicomnet.dimse import fragment_message
from dicomnet.pdu import AReleaseRP, AReleaseRQ
from dicomnet.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

from .peers import WAIT, RawPeer, accept, echo_rq_pdata

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"  # Study Root Q/R GET


def associate(scu: Any, port: int, **kwargs: Any) -> Any:
    assoc = scu.associate("127.0.0.1", port, ae_title="SCP", **kwargs)
    assert assoc.is_established
    return assoc


def test_a_waiting_caller_reads_its_own_responses(
    scp: Any, scu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(association, "CALLER_LINGER", 60.0)  # the caller keeps the reading
    readers: list[int] = []
    assoc = associate(
        scu,
        scp.port,
        evt_handlers=[(evt.EVT_DIMSE_RECV, lambda event: readers.append(threading.get_ident()))],
    )
    for _ in range(5):
        assert assoc.send_c_echo().Status == 0
    assoc.release()
    assert readers == [threading.get_ident()] * 5
    assert assoc.is_released


def test_concurrent_callers_on_one_association(scp: Any, scu: Any) -> None:
    assoc = associate(scu, scp.port)
    statuses: list[int] = []
    lock = threading.Lock()

    def echo_many() -> None:
        for _ in range(40):
            status = assoc.send_c_echo(msg_id=1).Status
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=echo_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assoc.release()
    assert statuses == [0] * 160


def test_a_request_from_the_peer_while_the_caller_waits_is_answered(
    fake_scp: Any, scu: Any
) -> None:
    def script(peer: RawPeer) -> None:
        rq = peer.recv()
        peer.send(accept(rq))
        ours = peer.read_dimse()
        assert isinstance(ours, dm.CEchoRQ)
        peer.send(echo_rq_pdata(message_id=77))  # the peer asks first ...
        answer = peer.read_dimse()
        assert isinstance(answer, dm.CEchoRSP) and answer.MessageIDBeingRespondedTo == 77
        response = dm.CEchoRSP(MessageIDBeingRespondedTo=ours.MessageID, Status=0)
        peer.send(_pdata(response))  # ... and only then answers ours
        peer.expect(AReleaseRQ)
        peer.send(AReleaseRP())

    server = fake_scp(script)
    assoc = associate(scu, server.port)
    assert assoc.send_c_echo().Status == 0
    assoc.release()
    server.close()
    server.check()


def test_the_peer_s_release_is_answered_when_no_caller_waits(fake_scp: Any, scu: Any) -> None:
    def script(peer: RawPeer) -> None:
        rq = peer.recv()
        peer.send(accept(rq))
        ours = peer.read_dimse()
        peer.send(_pdata(dm.CEchoRSP(MessageIDBeingRespondedTo=ours.MessageID, Status=0)))
        peer.send(AReleaseRQ())  # nobody waits now: the association's thread answers
        peer.expect(AReleaseRP)  # then the peer closes the connection (AR-3)

    released = threading.Event()
    server = fake_scp(script)
    assoc = associate(
        scu, server.port, evt_handlers=[(evt.EVT_RELEASED, lambda e: released.set())]
    )
    assert assoc.send_c_echo().Status == 0
    assert released.wait(WAIT)
    assoc.join(WAIT)
    assert assoc.is_released and not assoc.is_alive()
    server.close()
    server.check()


def test_an_abort_from_another_thread_ends_a_callers_wait(fake_scp: Any, scu: Any) -> None:
    asked = threading.Event()

    def script(peer: RawPeer) -> None:
        rq = peer.recv()
        peer.send(accept(rq))
        peer.read_dimse()
        asked.set()  # and never answer
        peer.wait_closed()

    server = fake_scp(script)
    assoc = associate(scu, server.port)
    result: list[Dataset] = []
    caller = threading.Thread(target=lambda: result.append(assoc.send_c_echo()))
    caller.start()
    assert asked.wait(WAIT)
    assoc.abort()
    caller.join(WAIT)
    assert result == [Dataset()]
    assert assoc.is_aborted and not assoc.is_alive()
    server.close()
    server.check()


def test_a_sub_operation_handler_run_by_the_caller_may_abort(
    make_scp: Any, make_scu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller of a C-GET reads the C-STORE sub-operations and runs their handler; an
    abort there must not wait for the association's thread, which waits for the caller."""
    joins: list[tuple[int, int | None]] = []
    join = association.Association.join

    def recording_join(self: Any, timeout: float | None = None) -> None:
        joins.append((threading.get_ident(), self._pump_ident))
        join(self, timeout)

    monkeypatch.setattr(association.Association, "join", recording_join)

    def on_get(event: Any) -> Any:
        yield 2
        for number in range(2):
            ds = Dataset()
            ds.SOPClassUID = CT_IMAGE
            ds.SOPInstanceUID = f"1.2.3.{number + 1}"
            ds.PatientID = "P"
            yield 0xFF00, ds

    scp = make_scp(
        contexts=[GET],
        handlers=[(evt.EVT_C_GET, on_get)],
        configure=lambda ae: ae.add_supported_context(CT_IMAGE, scu_role=False, scp_role=True),
    )
    scu = make_scu(contexts=[GET, CT_IMAGE])
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = CT_IMAGE
    role.scu_role = False
    role.scp_role = True
    stored_in: list[int] = []

    def on_store(event: Any) -> int:
        stored_in.append(threading.get_ident())
        event.assoc.abort()
        return 0

    assoc = associate(scu, scp.port, ext_neg=[role], evt_handlers=[(evt.EVT_C_STORE, on_store)])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = "1.2.3"
    list(assoc.send_c_get(query, GET))
    assert assoc.is_aborted
    assoc.join(WAIT)
    assert not assoc.is_alive()
    assert stored_in == [threading.get_ident()]
    assert all(caller != pump for caller, pump in joins)


def _pdata(message: dm.DimseMessage) -> bytes:
    return b"".join(
        bytes(buffer) for batch in fragment_message(1, message, None, 16382) for buffer in batch
    )

