"""Fixes of three faults, each scripted against a real association (PS3.8 9.2, Table 9-10).

* A PDU the peer sends before our A-ASSOCIATE-AC ends the association (AA-8 in
  Sta3): an ordinary abort, logged without a traceback, not an "unexpected
  error" of the association's thread.
* An A-RELEASE-RQ that arrives while requests received before it are still
  queued is answered after their responses (we may send P-DATA in Sta8: AR-7),
  not before them.
* ``StoreInDirectory`` names the peer in its log, also when we are the
  requestor (the C-STORE sub-operations of our C-GET).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dicomnet import dimse_messages as dm
from dicomnet.pdu import AAbort, AReleaseRP, AReleaseRQ

from .peers import RawPeer, echo_rq_pdata, verification_rq


def test_a_pdu_before_our_answer_is_an_ordinary_abort(
    scp: Any, scu: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dicomnet")
    with RawPeer.connect(scp.address) as peer:
        # the request and a P-DATA-TF at once: the P-DATA-TF arrives in Sta3
        peer.send(verification_rq().to_bytes() + echo_rq_pdata())
        abort: AAbort = peer.expect(AAbort)
        assert (abort.source, abort.reason) == (2, 2)  # AA-8: unexpected PDU
        peer.wait_closed()
    with scu.associate("127.0.0.1", scp.port, ae_title="SCP") as assoc:  # still serving
        assert assoc.send_c_echo().Status == 0
    assert not [r for r in caplog.records if r.exc_info or "Unexpected" in r.getMessage()]


def test_queued_requests_are_answered_before_the_release(scp: Any) -> None:
    with RawPeer.connect(scp.address) as peer:
        peer.associate(verification_rq())
        peer.send(
            echo_rq_pdata(message_id=1) + echo_rq_pdata(message_id=2) + AReleaseRQ().to_bytes()
        )
        first, second = peer.read_dimse(), peer.read_dimse()
        assert isinstance(first, dm.CEchoRSP) and isinstance(second, dm.CEchoRSP)
        assert (first.MessageIDBeingRespondedTo, second.MessageIDBeingRespondedTo) == (1, 2)
        assert first.Status == second.Status == 0
        peer.expect(AReleaseRP)
