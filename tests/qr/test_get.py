"""C-GET over loopback: role selection, sub-operations on the same association, counts
(PS3.4 C.4.3; PS3.7 9.1.3, D.3.3.4)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet.retrieve_helpers import retrieve_contexts

from .conftest import (
    CT,
    FIND,
    GET,
    MR,
    WAIT,
    MakeSCU,
    MakeServer,
    associate,
    instance,
    query,
    with_meta,
)

pytestmark = pytest.mark.leakcheck

#: the storage classes a C-GET SCP sends: it accepts the requestor's SCP role for them
STORAGE_ROLES = [
    (CT, {"scu_role": False, "scp_role": True}),
    (MR, {"scu_role": False, "scp_role": True}),
]


def get_scp(make_server: MakeServer, on_get: Any, on_find: Any = None) -> Any:
    handlers = [(evt.EVT_C_GET, on_get)]
    if on_find is not None:
        handlers.append((evt.EVT_C_FIND, on_find))
    return make_server(contexts=[FIND, GET, *STORAGE_ROLES], handlers=handlers)


def receiver(fail: set[str] | None = None) -> tuple[list[Dataset], Any]:
    """An EVT_C_STORE handler keeping what it receives; it refuses the UIDs in ``fail``."""
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        ds = event.dataset
        if fail and ds.SOPInstanceUID in fail:
            return 0xA700
        received.append(ds)
        return 0x0000

    return received, on_store


def test_get_what_a_find_found(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(3)] + [instance(MR, n) for n in range(3, 5)]

    def on_find(event: Any) -> Any:
        found = Dataset()
        found.QueryRetrieveLevel = "STUDY"
        found.StudyInstanceUID = "1.2.3.4"
        found.SOPClassesInStudy = [CT, MR]
        yield 0xFF00, found

    contexts_seen: list[Any] = []

    def on_get(event: Any) -> Any:
        contexts_seen.append(event.context.abstract_syntax)
        assert event.identifier.StudyInstanceUID == "1.2.3.4"
        yield len(study)
        for ds in study:
            yield 0xFF00, ds

    scp = get_scp(make_server, on_get, on_find)
    scu = make_scu()

    # 1. what is in the study?
    assoc = associate(scu, scp)
    found = [ident for _, ident in assoc.send_c_find(query(SOPClassesInStudy=""), FIND) if ident]
    assoc.release()

    # 2. get it, proposing exactly its SOP classes with the SCP role
    contexts, roles = retrieve_contexts(found, GET)
    assert [str(cx.abstract_syntax) for cx in contexts] == [GET, CT, MR]
    received, on_store = receiver()
    assoc = associate(
        scu, scp, contexts=contexts, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    responses = list(assoc.send_c_get(query(StudyInstanceUID="1.2.3.4"), GET))
    assoc.release()

    assert contexts_seen == [GET]
    assert sorted(ds.SOPInstanceUID for ds in received) == sorted(ds.SOPInstanceUID for ds in study)
    statuses = [s.Status for s, _ in responses]
    assert statuses == [0xFF00] * 4 + [0x0000]
    remaining = [s.NumberOfRemainingSuboperations for s, _ in responses[:-1]]
    assert remaining == [4, 3, 2, 1]
    final, identifier = responses[-1]
    assert final.NumberOfCompletedSuboperations == 5
    assert final.NumberOfFailedSuboperations == 0
    assert final.NumberOfWarningSuboperations == 0
    assert "NumberOfRemainingSuboperations" not in final
    assert identifier is None


def test_failed_suboperations_are_counted_and_listed(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    study = [instance(CT, n) for n in range(6)]
    refused = {study[1].SOPInstanceUID, study[4].SOPInstanceUID}

    def on_get(event: Any) -> Any:
        yield len(study)
        for ds in study:
            yield 0xFF00, ds

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    received, on_store = receiver(fail=refused)
    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    responses = list(assoc.send_c_get(query(), GET))
    assoc.release()

    final, identifier = responses[-1]
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (4, 2)
    assert sorted(identifier.FailedSOPInstanceUIDList) == sorted(refused)
    assert len(received) == 4
    assert [s.NumberOfFailedSuboperations for s, _ in responses[:-1]] == [0, 1, 1, 1, 2]


def test_all_failed_is_a702(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(3)]

    def on_get(event: Any) -> Any:
        yield len(study)
        for ds in study:
            yield 0xFF00, ds

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    _, on_store = receiver(fail={ds.SOPInstanceUID for ds in study})
    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    final, identifier = list(assoc.send_c_get(query(), GET))[-1]
    assoc.release()
    assert final.Status == 0xA702
    assert final.NumberOfFailedSuboperations == 3
    assert len(identifier.FailedSOPInstanceUIDList) == 3


def test_instance_without_a_negotiated_context_is_a_failed_suboperation(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    ct, mr = instance(CT), instance(MR)

    def on_get(event: Any) -> Any:
        yield 2
        yield 0xFF00, ct
        yield 0xFF00, mr

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)  # MR not proposed
    received, on_store = receiver()
    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    final, identifier = list(assoc.send_c_get(query(), GET))[-1]
    assoc.release()
    assert [ds.SOPInstanceUID for ds in received] == [ct.SOPInstanceUID]
    assert final.Status == 0xB000
    assert identifier.FailedSOPInstanceUIDList == mr.SOPInstanceUID


def test_without_the_scp_role_nothing_can_be_sent(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    def on_get(event: Any) -> Any:
        yield 1
        yield 0xFF00, instance(CT)

    scp = get_scp(make_server, on_get)
    contexts, _roles = retrieve_contexts([CT], GET)
    received, on_store = receiver()
    # no role selection: the requestor is SCU only, the C-GET SCP may not send C-STOREs
    assoc = associate(
        make_scu(), scp, contexts=contexts, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    final, _ = list(assoc.send_c_get(query(), GET))[-1]
    assoc.release()
    assert final.Status == 0xA702
    assert received == []


def test_cancel_during_get(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(20)]
    fifth = threading.Event()
    cancel_sent = threading.Event()
    closed: list[bool] = []

    def on_get(event: Any) -> Any:
        yield len(study)
        try:
            for ds in study:
                if event.is_cancelled:
                    yield 0xFE00, None
                    return
                yield 0xFF00, ds
        except GeneratorExit:
            closed.append(True)
            raise

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        if len(received) == 5:  # hold the 5th until the C-CANCEL is on its way
            fifth.set()
            assert cancel_sent.wait(WAIT)
        return 0x0000

    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    responses = []
    for status, identifier in assoc.send_c_get(query(), GET, msg_id=9):
        responses.append((status, identifier))
        if len(responses) == 3:
            assert fifth.wait(WAIT)
            assoc.send_c_cancel(9, query_model=GET)
            cancel_sent.set()
    assoc.release()

    final, identifier = responses[-1]
    assert final.Status == 0xFE00
    assert final.NumberOfCompletedSuboperations == 5
    assert final.NumberOfRemainingSuboperations == 15
    assert "FailedSOPInstanceUIDList" in identifier
    assert not identifier.FailedSOPInstanceUIDList
    assert len(received) == 5


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("three", 0xC413),
        (-1, 0xC413),
        (True, 0xC413),
        (70000, 0xC416),
        ((0xA900, None), 0xA900),  # a refusal instead of a count
        ((0xFF00, None), 0xC413),
    ],
)
def test_bad_count(make_server: MakeServer, make_scu: MakeSCU, first: Any, expected: int) -> None:
    def on_get(event: Any) -> Any:
        yield first

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    assoc = associate(make_scu(), scp, contexts=contexts, ext_neg=roles)
    assert [s.Status for s, _ in assoc.send_c_get(query(), GET)] == [expected]
    assoc.release()


def test_handler_failing_midway_is_c411_with_counts(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    def on_get(event: Any) -> Any:
        yield 4
        yield 0xFF00, instance(CT)
        raise OSError("archive offline")

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    _, on_store = receiver()
    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    final, identifier = list(assoc.send_c_get(query(), GET))[-1]
    assoc.release()
    assert final.Status == 0xC411
    assert final.NumberOfCompletedSuboperations == 1
    assert not identifier.FailedSOPInstanceUIDList


def test_fewer_data_sets_than_announced_count_as_failed(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    def on_get(event: Any) -> Any:
        yield 3
        yield 0xFF00, instance(CT)

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    _, on_store = receiver()
    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    final, _ = list(assoc.send_c_get(query(), GET))[-1]
    assoc.release()
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0xB000, 1)
    assert final.NumberOfFailedSuboperations == 2


def test_zero_matches_and_a_warning_status(make_server: MakeServer, make_scu: MakeSCU) -> None:
    def on_get(event: Any) -> Any:
        if event.identifier.PatientID == "none":
            yield 0
            return
        yield 2
        yield 0xFF00, instance(CT)
        yield 0xB000, None  # the handler's own final: stop here

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    _, on_store = receiver()
    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    none = list(assoc.send_c_get(query(PatientID="none"), GET))
    warned = list(assoc.send_c_get(query(PatientID="x"), GET))
    assoc.release()
    assert [(s.Status, s.NumberOfCompletedSuboperations) for s, _ in none] == [(0x0000, 0)]
    assert warned[-1][0].Status == 0xB000
    assert warned[-1][0].NumberOfCompletedSuboperations == 1


def test_get_part10_files(make_server: MakeServer, make_scu: MakeSCU, tmp_path: Path) -> None:
    paths = []
    for n in range(3):
        ds = with_meta(instance(CT, n))
        path = tmp_path / f"{n}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)

    def on_get(event: Any) -> Any:
        yield len(paths)
        for path in paths:
            yield 0xFF00, str(path)

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    received, on_store = receiver()
    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    final, _ = list(assoc.send_c_get(query(), GET))[-1]
    assoc.release()
    assert final.Status == 0x0000
    assert sorted(ds.InstanceNumber for ds in received) == [0, 1, 2]


def test_leaving_a_get_early_cancels_it(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(50)]

    def on_get(event: Any) -> Any:
        yield len(study)
        for ds in study:
            yield 0xFF00, ds

    scp = get_scp(make_server, on_get)
    contexts, roles = retrieve_contexts([CT], GET)
    received, on_store = receiver()
    assoc = associate(
        make_scu(),
        scp,
        contexts=contexts,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    responses = assoc.send_c_get(query(), GET)
    next(responses)
    responses.close()
    first = len(received)
    assert first < 50
    # drained: the association is quiet and usable again
    again = list(assoc.send_c_get(query(), GET, msg_id=2))
    assoc.release()
    assert again[-1][0].Status == 0x0000
    assert again[-1][0].NumberOfCompletedSuboperations == 50
    assert len(received) == first + 50
