"""C-FIND responses written together, over loopback (the engine's FIND_HOLD_FOR rule).

The engine holds the Pending responses of a quick handler and writes them in
batches; these tests check what must not change for the SCU: every response
arrives, in order; a burst the handler yielded arrives while the handler
blocks (the watchdog writes it); a C-CANCEL still ends the operation; an
error after held matches comes after them; listeners of EVT_DIMSE_SENT see
every response.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet.plugins import _qr_engine

from .conftest import FIND, WAIT, MakeSCU, MakeServer, associate, query

pytestmark = pytest.mark.leakcheck


def match(n: int) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = f"P{n:05d}"
    ds.StudyInstanceUID = f"1.2.3.{n}"
    return ds


def test_a_small_answer_is_never_held(make_server: MakeServer, make_scu: MakeSCU) -> None:
    threads: list[int] = []

    def on_find(event: Any) -> Any:
        for n in range(_qr_engine.FIND_HOLD_AFTER):
            yield 0xFF00, match(n)
        threads.append(threading.active_count())

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    before = threading.active_count()
    statuses = [s.Status for s, _ in assoc.send_c_find(query(), FIND)]
    assoc.release()

    assert statuses == [0xFF00] * _qr_engine.FIND_HOLD_AFTER + [0x0000]
    assert threads == [before]  # no watchdog was started


def test_many_quick_matches_arrive_all_and_in_order(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    identifiers = [match(n) for n in range(3000)]

    def on_find(event: Any) -> Any:
        for ds in identifiers:
            yield 0xFF00, ds

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    results = [(s.Status, i) for s, i in assoc.send_c_find(query(), FIND)]
    assoc.release()

    assert [s for s, _ in results] == [0xFF00] * 3000 + [0x0000]
    assert [i.PatientID for _, i in results[:-1]] == [f"P{n:05d}" for n in range(3000)]


def test_a_burst_arrives_while_the_handler_blocks(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    """Quick matches, then the handler waits until the SCU has received them."""
    burst = _qr_engine.FIND_HOLD_AFTER + 30  # the last ones are held
    received = threading.Event()
    waited: list[float] = []

    def on_find(event: Any) -> Any:
        for n in range(burst):
            yield 0xFF00, match(n)
        start = time.monotonic()
        assert received.wait(WAIT)  # held for ever without the watchdog
        waited.append(time.monotonic() - start)
        yield 0xFF00, match(burst)

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    results = []
    for status, identifier in assoc.send_c_find(query(), FIND):
        results.append((status.Status, identifier))
        if len(results) == burst:
            received.set()
    assoc.release()

    assert [s for s, _ in results] == [0xFF00] * (burst + 1) + [0x0000]
    assert waited and waited[0] < WAIT / 2


def test_cancel_during_a_stream_of_quick_matches(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    def on_find(event: Any) -> Any:
        for n in range(1_000_000):
            yield 0xFF00, match(n % 100)

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    statuses = []
    for status, _identifier in assoc.send_c_find(query(), FIND, msg_id=3):
        statuses.append(status.Status)
        if len(statuses) == 100:
            assoc.send_c_cancel(3, query_model=FIND)
    assoc.release()

    assert statuses[-1] == 0xFE00
    assert set(statuses[:-1]) == {0xFF00}
    assert len(statuses) < 1_000_000


def test_a_failure_after_held_matches_comes_after_them(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    def on_find(event: Any) -> Any:
        for n in range(50):
            yield 0xFF00, match(n)
        yield "not a status", None

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    statuses = [s.Status for s, _ in assoc.send_c_find(query(), FIND)]
    assoc.release()

    assert statuses[:50] == [0xFF00] * 50
    assert statuses[50:] == [_qr_engine.FIND_FAILURES.invalid]


def test_listeners_see_every_response(make_server: MakeServer, make_scu: MakeSCU) -> None:
    sent: list[int] = []

    def on_find(event: Any) -> Any:
        for n in range(200):
            yield 0xFF00, match(n)

    def on_sent(event: Any) -> None:
        sent.append(event.message.Status)

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find), (evt.EVT_DIMSE_SENT, on_sent)])
    assoc = associate(make_scu(), scp)
    statuses = [s.Status for s, _ in assoc.send_c_find(query(), FIND)]
    assoc.release()

    assert statuses == [0xFF00] * 200 + [0x0000]
    assert sent == statuses
