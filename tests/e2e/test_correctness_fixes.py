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
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import dimse_messages as dm
from dicomnet import evt
from dicomnet.contrib.receive import StoreInDirectory
from dicomnet.pdu import AAbort, AReleaseRP, AReleaseRQ
from dicomnet.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

from .peers import WAIT, RawPeer, echo_rq_pdata, verification_rq

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"  # Study Root Q/R GET


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


def test_store_in_directory_names_the_peer_of_our_c_get(
    make_scp: Any, make_scu: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def on_get(event: Any) -> Any:
        yield 1
        ds = Dataset()
        ds.SOPClassUID = CT_IMAGE
        ds.SOPInstanceUID = "1.2.3.4.5"
        ds.PatientID = "P"
        yield 0xFF00, ds

    scp = make_scp(
        "GETSCP",
        contexts=[GET],
        handlers=[(evt.EVT_C_GET, on_get)],
        configure=lambda ae: ae.add_supported_context(CT_IMAGE, scu_role=False, scp_role=True),
    )
    scu = make_scu("GETSCU", contexts=[GET, CT_IMAGE])
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = CT_IMAGE
    role.scu_role = False
    role.scp_role = True
    caplog.set_level(logging.INFO, logger="dicomnet.receive")
    assoc = scu.associate(
        "127.0.0.1",
        scp.port,
        ae_title="GETSCP",
        ext_neg=[role],
        evt_handlers=[(evt.EVT_C_STORE, StoreInDirectory(tmp_path, fsync=False))],
    )
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = "1.2.3"
    statuses = [status.Status for status, _ in assoc.send_c_get(query, GET)]
    assoc.release()
    assert statuses[-1] == 0
    assert (tmp_path / "1.2.3.4.5.dcm").exists()
    stored = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Stored")]
    assert stored == ["Stored 1.2.3.4.5.dcm from 'GETSCP'"]


def test_a_release_while_a_handler_waits_for_the_peer_is_answered_at_once(
    make_scp: Any, make_scu: Any
) -> None:
    """The peer asks for the release while our C-GET handler waits for the response to
    a C-STORE sub-operation: it can send no P-DATA any more (Sta7), so the release is
    answered at once rather than after the handler's wait has timed out."""

    def on_get(event: Any) -> Any:
        yield 1
        ds = Dataset()
        ds.SOPClassUID = CT_IMAGE
        ds.SOPInstanceUID = "1.2.3.4.6"
        ds.PatientID = "P"
        yield 0xFF00, ds

    scp = make_scp(
        "GETSCP",
        contexts=[GET],
        handlers=[(evt.EVT_C_GET, on_get)],
        configure=lambda ae: ae.add_supported_context(CT_IMAGE, scu_role=False, scp_role=True),
        dimse_timeout=60,
    )
    scu = make_scu("GETSCU", contexts=[GET, CT_IMAGE], acse_timeout=WAIT)
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = CT_IMAGE
    role.scu_role = False
    role.scp_role = True

    def release_instead(event: Any) -> int:
        event.assoc.release()  # before answering the sub-operation
        return 0

    assoc = scu.associate(
        "127.0.0.1",
        scp.port,
        ae_title="GETSCP",
        ext_neg=[role],
        evt_handlers=[(evt.EVT_C_STORE, release_instead)],
    )
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = "1.2.3"
    list(assoc.send_c_get(query, GET))
    assert assoc.is_released and not assoc.is_aborted  # the A-RELEASE-RP came in time
