"""C-FIND over loopback: matches, statuses, cancellation, failures.

PS3.4 C.4.1, K, Q; PS3.7 9.1.2.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import _sop_groups, evt
from dicomnet import dimse_messages as dm
from dicomnet.sop_class import (
    GeneralRelevantPatientInformationQuery,
    ModalityWorklistInformationModelFind,
)

from .conftest import FIND, GET, WAIT, MakeSCU, MakeServer, associate, query

pytestmark = pytest.mark.leakcheck

RELEVANT = str(GeneralRelevantPatientInformationQuery)
WORKLIST = str(ModalityWorklistInformationModelFind)


def match(n: int) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = f"P{n:04d}"
    ds.StudyInstanceUID = f"1.2.3.{n}"
    return ds


def test_many_matches_with_both_pending_statuses(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    seen: list[Any] = []

    def on_find(event: Any) -> Any:
        seen.append((event.identifier.PatientID, event.context.abstract_syntax))
        for n in range(1000):
            yield (0xFF01 if n % 2 else 0xFF00), match(n)

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    results = list(assoc.send_c_find(query(PatientID="P*"), FIND))
    assoc.release()

    assert seen == [("P*", FIND)]
    assert len(results) == 1001
    statuses = [status.Status for status, _ in results]
    assert statuses[:4] == [0xFF00, 0xFF01, 0xFF00, 0xFF01]
    assert statuses[-1] == 0x0000
    assert [ident.PatientID for _, ident in results[:-1]] == [f"P{n:04d}" for n in range(1000)]
    assert results[-1][1] is None


def test_no_match_is_success(make_server: MakeServer, make_scu: MakeSCU) -> None:
    def on_find(event: Any) -> Any:
        return iter(())  # any iterable will do

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    assert [(s.Status, i) for s, i in assoc.send_c_find(query(), FIND)] == [(0x0000, None)]
    assoc.release()


def test_scu_cancels_after_ten_and_handler_sees_it(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    waiting = threading.Event()
    cancel_sent = threading.Event()
    saw_cancel: list[bool] = []

    def on_find(event: Any) -> Any:
        for n in range(10):
            yield 0xFF00, match(n)
        waiting.set()  # past the engine's own check: the handler is the one to notice
        assert cancel_sent.wait(WAIT)
        for n in range(10, 1000):
            if event.is_cancelled:
                saw_cancel.append(True)
                yield 0xFE00, None
                return
            yield 0xFF00, match(n)

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    results = []
    for status, identifier in assoc.send_c_find(query(), FIND, msg_id=7):
        results.append((status.Status, identifier))
        if len(results) == 10:
            assert waiting.wait(WAIT)
            assoc.send_c_cancel(7, query_model=FIND)
            cancel_sent.set()
    assoc.release()

    assert saw_cancel == [True]
    assert results[-1] == (0xFE00, None)
    assert all(s == 0xFF00 for s, _ in results[:-1])
    assert len(results) < 1000  # stopped early


def test_engine_cancels_when_the_handler_does_not_look(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    cancel_sent = threading.Event()
    closed: list[bool] = []

    def on_find(event: Any) -> Any:
        try:
            for n in range(1000):
                if n == 10:
                    assert cancel_sent.wait(WAIT)
                yield 0xFF00, match(n)
        except GeneratorExit:
            closed.append(True)
            raise

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    results = []
    for status, _identifier in assoc.send_c_find(query(), FIND):
        results.append(status.Status)
        if len(results) == 10:
            assoc.send_c_cancel(1, query_model=FIND)
            cancel_sent.set()
    assoc.release()

    assert results[-1] == 0xFE00
    assert closed == [True]  # the engine closed the generator
    assert len(results) <= 12


def test_leaving_the_loop_early_cancels_and_drains(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    calls: list[str] = []
    cancelled: set[bool] = set()

    def on_find(event: Any) -> Any:
        calls.append(event.identifier.PatientID)
        if event.identifier.PatientID == "second":
            yield 0xFF00, match(99999)
            return
        try:
            for n in range(100000):
                if event.is_cancelled:
                    cancelled.add(True)
                    yield 0xFE00, None
                    return
                yield 0xFF00, match(n)
        except GeneratorExit:  # or the engine noticed the C-CANCEL first
            cancelled.add(True)
            raise

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    first = assoc.send_c_find(query(PatientID="first"), FIND)
    for n, (_status, _identifier) in enumerate(first):
        if n == 4:
            break
    first.close()  # what dropping the last reference to it does in CPython
    # only the second query's responses may come back: the first one's were drained
    second = [
        (s.Status, i) for s, i in assoc.send_c_find(query(PatientID="second"), FIND, msg_id=2)
    ]
    assoc.release()

    assert cancelled == {True}
    assert calls == ["first", "second"]
    assert [s for s, _ in second] == [0xFF00, 0x0000]
    assert second[0][1].PatientID == "P99999"


def test_message_id_of_a_cancelled_find_can_be_reused(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    def on_find(event: Any) -> Any:
        for n in range(3):
            yield 0xFF00, match(n)

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    first = assoc.send_c_find(query(), FIND, msg_id=1)
    next(first)
    assoc.send_c_cancel(1, query_model=FIND)
    assert [s.Status for s, _ in first][-1] in (0xFE00, 0x0000)
    again = [s.Status for s, _ in assoc.send_c_find(query(), FIND, msg_id=1)]
    assoc.release()
    assert again == [0xFF00, 0xFF00, 0xFF00, 0x0000]


def test_final_status_from_the_handler(make_server: MakeServer, make_scu: MakeSCU) -> None:
    def on_find(event: Any) -> Any:
        yield 0xFF00, match(1)
        status = Dataset()
        status.Status = 0xA700
        status.ErrorComment = "out of resources"
        yield status, match(2)  # the identifier of a final response is not sent
        yield 0xFF00, match(3)  # never read

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    results = list(assoc.send_c_find(query(), FIND))
    assoc.release()
    assert [s.Status for s, _ in results] == [0xFF00, 0xA700]
    assert results[1][0].ErrorComment == "out of resources"
    assert results[1][1] is None


@pytest.mark.parametrize(
    ("when", "expected"), [("start", [0xC311]), ("after two", [0xFF00, 0xFF00, 0xC311])]
)
def test_handler_exception_is_c311(
    make_server: MakeServer,
    make_scu: MakeSCU,
    caplog: pytest.LogCaptureFixture,
    when: str,
    expected: list[int],
) -> None:
    def on_find(event: Any) -> Any:
        if when == "after two":
            yield 0xFF00, match(1)
            yield 0xFF00, match(2)
        raise RuntimeError("database is down")

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    with caplog.at_level(logging.ERROR, logger="dicomnet"):
        statuses = [s.Status for s, _ in assoc.send_c_find(query(), FIND)]
    assoc.release()
    assert statuses == expected
    assert any("database is down" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_no_handler_bound_is_c311(make_server: MakeServer, make_scu: MakeSCU) -> None:
    scp = make_server()
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_find(query(), FIND)] == [0xC311]
    assert assoc.is_established  # a failing handler never kills the association
    assoc.release()


@pytest.mark.parametrize(
    "bad",
    [
        "not a pair",
        (0xFF00, None),  # a Pending response needs its identifier
        (0xFF00, "not a data set"),
        ("status?", match(1)),
        (0x1FFFF, match(1)),
    ],
)
def test_invalid_yield_is_c312(make_server: MakeServer, make_scu: MakeSCU, bad: Any) -> None:
    def on_find(event: Any) -> Any:
        yield 0xFF00, match(0)
        yield bad

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_find(query(), FIND)] == [0xFF00, 0xC312]
    assoc.release()


def test_handler_returning_a_non_iterable_is_c312(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    scp = make_server(handlers=[(evt.EVT_C_FIND, lambda event: 0x0000)])
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_find(query(), FIND)] == [0xC312]
    assoc.release()


def test_identifier_that_cannot_be_encoded_is_c312(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    def on_find(event: Any) -> Any:
        bad = Dataset()
        bad.add_new(0x00280010, "US", 0)  # Rows
        bad[0x00280010]._value = "not a number"  # past pydicom's checks
        yield 0xFF00, bad

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_find(query(), FIND)] == [0xC312]
    assoc.release()


def test_undecodable_request_identifier_is_c310(make_server: MakeServer, make_scu: MakeSCU) -> None:
    called: list[bool] = []

    def on_find(event: Any) -> Any:
        called.append(True)
        yield 0xFF00, match(1)

    scp = make_server(handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(), scp)
    context = assoc._context_for(FIND)
    request = dm.CFindRQ(MessageID=3, AffectedSOPClassUID=FIND)
    # Rows (0028,0010) is US: three bytes cannot be one
    garbage = b"\x28\x00\x10\x00\x03\x00\x00\x00abc"
    responses = [item[0].Status for item in assoc._exchange(context, request, garbage) if item]
    assoc.release()
    assert responses == [0xC310]
    assert called == []


def test_cget_on_a_find_context_is_unrecognized(make_server: MakeServer, make_scu: MakeSCU) -> None:
    scp = make_server()
    assoc = associate(make_scu(), scp)
    context = assoc._context_for(FIND)
    request = dm.CGetRQ(MessageID=5, AffectedSOPClassUID=FIND)
    data = b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "
    responses = [item[0] for item in assoc._exchange(context, request, data) if item]
    assoc.release()
    assert [type(r) for r in responses] == [dm.CGetRSP]
    assert responses[0].Status == 0x0211


def test_legacy_query_model_keys(make_server: MakeServer, make_scu: MakeSCU) -> None:
    def on_find(event: Any) -> Any:
        yield 0xFF00, match(1)

    scp = make_server(contexts=[FIND, WORKLIST], handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(contexts=[FIND, WORKLIST]), scp)
    assert [s.Status for s, _ in assoc.send_c_find(query(), "S")] == [0xFF00, 0x0000]
    assert [s.Status for s, _ in assoc.send_c_find(Dataset(), "W")] == [0xFF00, 0x0000]
    assoc.release()


def test_bad_arguments(make_server: MakeServer, make_scu: MakeSCU) -> None:
    scp = make_server()
    assoc = associate(make_scu(contexts=[FIND]), scp)
    with pytest.raises(ValueError, match="priority"):
        next(assoc.send_c_find(query(), FIND, priority=5))
    with pytest.raises(ValueError, match="No presentation context"):
        next(assoc.send_c_find(query(), GET))
    with pytest.raises(ValueError, match="move destination"):
        next(assoc.send_c_move(query(), "X" * 17, FIND))
    assoc.release()
    with pytest.raises(RuntimeError):
        next(assoc.send_c_find(query(), FIND))


# -- Modality Worklist (PS3.4 K) ----------------------------------------------------------------


def test_worklist_find(make_server: MakeServer, make_scu: MakeSCU) -> None:
    steps = []
    for n, modality in enumerate(["CT", "MR", "CT"]):
        step = Dataset()
        step.PatientID = f"W{n}"
        item = Dataset()
        item.Modality = modality
        item.ScheduledStationAETitle = "CT1"
        step.ScheduledProcedureStepSequence = [item]
        steps.append(step)

    def on_find(event: Any) -> Any:
        wanted = event.identifier.ScheduledProcedureStepSequence[0].Modality
        for step in steps:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            if step.ScheduledProcedureStepSequence[0].Modality == wanted:
                yield 0xFF00, step

    scp = make_server(contexts=[WORKLIST], handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(contexts=[WORKLIST]), scp)
    request = Dataset()
    request.PatientID = ""
    item = Dataset()
    item.Modality = "CT"
    request.ScheduledProcedureStepSequence = [item]
    results = list(assoc.send_c_find(request, WORKLIST))
    assoc.release()
    assert [s.Status for s, _ in results] == [0xFF00, 0xFF00, 0x0000]
    assert [i.PatientID for _, i in results[:-1]] == ["W0", "W2"]


# -- Relevant Patient Information (PS3.4 Q) -----------------------------------------------------


@pytest.mark.parametrize(
    ("matches", "expected"),
    [(0, [0x0000]), (1, [0xFF00, 0x0000]), (2, [0xC100]), (5, [0xC100])],
)
def test_relevant_patient_single_match_rule(
    make_server: MakeServer, make_scu: MakeSCU, matches: int, expected: list[int]
) -> None:
    def on_find(event: Any) -> Any:
        for n in range(matches):
            yield 0xFF00, match(n)

    scp = make_server(contexts=[RELEVANT], handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(contexts=[RELEVANT]), scp)
    results = list(assoc.send_c_find(query(PatientID="P0000"), RELEVANT))
    assoc.release()
    assert [s.Status for s, _ in results] == expected
    if matches == 1:
        assert results[0][1].PatientID == "P0000"


def test_relevant_patient_failures_are_c000(make_server: MakeServer, make_scu: MakeSCU) -> None:
    def on_find(event: Any) -> Any:
        raise RuntimeError("no template")
        yield  # pragma: no cover

    scp = make_server(contexts=[RELEVANT], handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(contexts=[RELEVANT]), scp)
    assert [s.Status for s, _ in assoc.send_c_find(query(), RELEVANT)] == [0xC000]
    assoc.release()


# -- every FIND information model is routed -----------------------------------------------------

_FIND_MODELS = sorted(
    uid
    for name in (
        "query_retrieve",
        "basic_worklist",
        "relevant_patient_query",
        "substance_administration_query",
        "hanging_protocol_qr",
        "defined_procedure_protocol_qr",
        "color_palette_qr",
        "implant_template_qr",
        "protocol_approval_qr",
        "inventory_qr",
    )
    for uid, keyword in _sop_groups.SERVICE_GROUPS[name].items()
    if keyword.endswith(("Find", "Query"))
)


def test_every_find_model_is_accepted_and_routed(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    assert len(_FIND_MODELS) == 18
    seen: list[str] = []

    def on_find(event: Any) -> Any:
        seen.append(str(event.context.abstract_syntax))
        yield 0xFF00, match(1)

    scp = make_server(contexts=_FIND_MODELS, handlers=[(evt.EVT_C_FIND, on_find)])
    assoc = associate(make_scu(contexts=_FIND_MODELS), scp)
    for uid in _FIND_MODELS:
        statuses = [s.Status for s, _ in assoc.send_c_find(query(), uid)]
        assert statuses == [0xFF00, 0x0000], uid
    assoc.release()
    assert seen == _FIND_MODELS
