"""Associations that go as planned: request, echo, release or abort (PS3.8 7.1-7.3)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import evt

from .peers import CT_IMAGE_STORAGE, IMPLICIT_LE, VERIFICATION

WAIT = 5.0


def associate(scu: Any, scp: Any, **kwargs: Any) -> Any:
    return scu.associate("127.0.0.1", scp.port, ae_title=scp.ae.ae_title, **kwargs)


def capture(scp: Any, event: Any) -> tuple[threading.Event, list[Any]]:
    """Bind a handler on the SCP's server that records the events and sets a flag."""
    seen: list[Any] = []
    flag = threading.Event()

    def handler(e: Any) -> None:
        seen.append(e)
        flag.set()

    scp.server.bind(event, handler)
    return flag, seen


def test_echo(scp: Any, scu: Any) -> None:
    assoc = associate(scu, scp)
    assert assoc.is_established
    status = assoc.send_c_echo()
    assert isinstance(status, Dataset)
    assert status.Status == 0x0000
    assoc.release()
    assert assoc.is_released
    assert not assoc.is_established
    assert not assoc.is_aborted
    assert not assoc.is_alive()  # release() waits for the association's thread


def test_many_sequential_associations(scp: Any, scu: Any) -> None:
    for i in range(60):
        assoc = associate(scu, scp)
        assert assoc.is_established, i
        assert assoc.send_c_echo(msg_id=i + 1).Status == 0
        assoc.release()
        assert assoc.is_released, i
    assert scu.active_associations == []


def test_concurrent_associations_from_threads(scp: Any, scu: Any) -> None:
    scp.ae.maximum_associations = 20
    barrier = threading.Barrier(8, timeout=WAIT)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            assoc = associate(scu, scp)
            assert assoc.is_established
            barrier.wait()  # all eight are established at once
            results[n] = [int(assoc.send_c_echo(msg_id=k + 1).Status) for k in range(5)]
            assoc.release()
            assert assoc.is_released
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3 * WAIT)
    assert not errors, errors
    assert results == {n: [0] * 5 for n in range(8)}


def test_one_association_used_from_several_threads(scp: Any, scu: Any) -> None:
    """Overlapping requests on one association get unique message IDs (PS3.7 9.1.1.1.1)."""
    assoc = associate(scu, scp)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            status = assoc.send_c_echo()  # every caller passes msg_id=1
            with lock:
                statuses.append(int(status.Status))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3 * WAIT)
    assoc.release()
    assert statuses == [0] * 40


def test_context_manager_releases(scp: Any, scu: Any) -> None:
    released, _ = capture(scp, evt.EVT_RELEASED)
    with associate(scu, scp) as assoc:
        assert assoc.send_c_echo().Status == 0
    assert assoc.is_released
    assert released.wait(WAIT)


def test_context_manager_aborts_on_exception(scp: Any, scu: Any) -> None:
    aborted, _ = capture(scp, evt.EVT_ABORTED)
    with pytest.raises(KeyError), associate(scu, scp) as assoc:
        raise KeyError("boom")
    assert assoc.is_aborted
    assert not assoc.is_released
    assert aborted.wait(WAIT)


def test_association_attributes(scp: Any, scu: Any) -> None:
    established, seen = capture(scp, evt.EVT_ESTABLISHED)
    scu.add_requested_context(CT_IMAGE_STORAGE)  # not supported by the SCP
    assoc = associate(scu, scp, max_pdu=32768)
    try:
        assert assoc.is_established
        assert (assoc.is_rejected, assoc.is_aborted, assoc.is_released) == (False, False, False)
        assert assoc.is_requestor and not assoc.is_acceptor
        assert assoc.mode == "requestor"
        assert assoc.ae is scu

        [accepted] = assoc.accepted_contexts
        assert accepted.abstract_syntax == VERIFICATION
        assert accepted.transfer_syntax == [IMPLICIT_LE]
        assert accepted.context_id == 1
        [rejected] = assoc.rejected_contexts
        assert rejected.abstract_syntax == CT_IMAGE_STORAGE
        assert rejected.context_id == 3
        assert rejected.result == 0x03  # abstract syntax not supported

        host, port = assoc.acceptor.address, assoc.acceptor.port
        assert (host, port) == ("127.0.0.1", scp.port)
        assert assoc.acceptor.ae_title == "SCP"
        assert assoc.requestor.ae_title == "SCU"
        assert assoc.requestor.maximum_length == 32768
        assert assoc.acceptor.maximum_length == scp.ae.maximum_pdu_size
        assert assoc.acceptor.implementation_class_uid == scp.ae.implementation_class_uid
        assert assoc.local == {
            "ae_title": "SCU",
            "address": "127.0.0.1",
            "port": assoc.requestor.port,
            "mode": "requestor",
            "pdv_size": 32768,
        }
        assert assoc.remote["ae_title"] == "SCP"
        assert assoc.remote["port"] == scp.port
        assert assoc.remote["mode"] == "acceptor"

        # the association is a thread, as in pynetdicom
        assert isinstance(assoc, threading.Thread)
        assert isinstance(assoc.name, str) and assoc.name
        assert assoc.daemon is True
        assert isinstance(assoc.ident, int)
        assert assoc.is_alive() and assoc.isAlive()
        assoc.join(0.01)  # still serving: returns after the timeout
        assert assoc.is_alive()

        # the acceptor's view of the same association
        assert established.wait(WAIT)
        [event] = seen
        peer = event.assoc
        assert peer.is_acceptor and peer.mode == "acceptor"
        assert peer.is_established
        assert peer.ae is scp.ae
        assert peer.requestor.ae_title == "SCU"
        assert peer.acceptor.ae_title == "SCP"
        assert peer.requestor.maximum_length == 32768
        assert peer.remote["port"] == assoc.local["port"]
        assert peer.local["port"] == scp.port
        assert [cx.abstract_syntax for cx in peer.accepted_contexts] == [VERIFICATION]
        assert [cx.abstract_syntax for cx in peer.rejected_contexts] == [CT_IMAGE_STORAGE]
        assert peer in scp.server.active_associations
        assert peer in scp.ae.active_associations
        assert assoc in scu.active_associations
    finally:
        assoc.release()
    assert not assoc.is_alive()
    peer.join(WAIT)
    assert not peer.is_alive()
    assert peer.is_released


def test_release_from_requestor_is_seen_by_acceptor(scp: Any, scu: Any) -> None:
    released, seen = capture(scp, evt.EVT_RELEASED)
    assoc = associate(scu, scp)
    assoc.release()
    assert assoc.is_released
    assert released.wait(WAIT)
    peer = seen[0].assoc
    peer.join(WAIT)
    assert peer.is_released and not peer.is_aborted and not peer.is_alive()


def test_abort_from_requestor(scp: Any, scu: Any) -> None:
    aborted, seen = capture(scp, evt.EVT_ABORTED)
    assoc = associate(scu, scp)
    assoc.abort()
    assert assoc.is_aborted and not assoc.is_established
    assert not assoc.is_alive()
    assert aborted.wait(WAIT)
    assert seen[0].assoc.is_aborted
    with pytest.raises(RuntimeError):
        assoc.send_c_echo()
    # the SCP goes on serving others
    other = associate(scu, scp)
    assert other.send_c_echo().Status == 0
    other.release()


def test_abort_from_acceptor_handler(make_scp: Any, scu: Any) -> None:
    """The acceptor cannot release, but it can abort: here from inside its C-ECHO handler."""

    def abort_instead(event: Any) -> int:
        event.assoc.abort()
        return 0x0000

    scp = make_scp(handlers=[(evt.EVT_C_ECHO, abort_instead)])
    aborted = threading.Event()
    assoc = associate(scu, scp, evt_handlers=[(evt.EVT_ABORTED, lambda e: aborted.set())])
    status = assoc.send_c_echo()
    assert status == Dataset()  # no response: the peer aborted
    assert aborted.wait(WAIT)
    assert assoc.is_aborted
    assoc.join(WAIT)
    assert not assoc.is_alive()
    # a new association is served (and aborted) the same way; the server lives on
    scp.server.unbind(evt.EVT_C_ECHO, abort_instead)
    other = associate(scu, scp)
    assert other.send_c_echo().Status == 0
    other.release()


def test_release_and_abort_are_idempotent(scp: Any, scu: Any) -> None:
    assoc = associate(scu, scp)
    assoc.release()
    assoc.release()
    assoc.abort()
    assert assoc.is_released and not assoc.is_aborted
    other = associate(scu, scp)
    other.abort()
    other.abort()
    other.release()
    assert other.is_aborted and not other.is_released
