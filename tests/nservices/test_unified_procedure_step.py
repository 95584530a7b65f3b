"""Unified Procedure Step, dicomnet SCU <-> dicomnet SCP (PS3.4 Annex CC).

A worklist manager keeps its UPSs in memory: push (N-CREATE, request cancel),
pull (C-FIND, change state with the Transaction UID, N-SET, N-GET), watch
(subscribe, and the N-EVENT-REPORTs it sends to its subscribers), the checks
the plugin makes before any handler, and the SCU finding a UPS context for
requests that name UPS Push (CC.3.1).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import evt
from dicomnet.plugins.unified_procedure_step import (
    ACTION_CHANGE_STATE,
    ACTION_REQUEST_CANCEL,
    ACTION_SUBSCRIBE,
    COMPLETED,
    EVENT_CANCEL_REQUESTED,
    EVENT_STATE_REPORT,
    GLOBAL_SUBSCRIPTION_INSTANCE,
    IN_PROGRESS,
    SCHEDULED,
    UNIFIED_PROCEDURE_STEP,
    UPS_EVENT,
    UPS_PULL,
    UPS_PUSH,
    UPS_QUERY,
    UPS_WATCH,
    send_ups_event,
)

from .conftest import WAIT, Established, associate, serve

ALL_UPS = (UPS_PUSH, UPS_PULL, UPS_WATCH, UPS_EVENT, UPS_QUERY)


class WorklistManager:
    """A UPS SCP keeping its worklist and subscribers in memory (PS3.4 CC.2)."""

    def __init__(self, ae: Any) -> None:
        self.ae = ae
        self.items: dict[str, Dataset] = {}
        self.transactions: dict[str, str] = {}
        self.subscribers: set[str] = set()

    def notify(self, uid: str, event_type: int, info: Dataset) -> None:
        for title in sorted(self.subscribers):
            send_ups_event(self.ae, title, uid, event_type, info)

    def state_report(self, uid: str) -> Dataset:
        info = Dataset()
        info.ProcedureStepState = self.items[uid].ProcedureStepState
        info.InputReadinessState = "READY"
        return info

    def on_create(self, event: Any) -> Any:
        uid = event.request.AffectedSOPInstanceUID
        if uid in self.items:
            return 0x0111, None
        self.items[uid] = event.attribute_list
        return 0x0000, None

    def on_find(self, event: Any) -> Iterator[Any]:
        wanted = event.identifier.get("ProcedureStepState")
        for uid, item in self.items.items():
            if wanted and item.ProcedureStepState != wanted:
                continue
            match = Dataset()
            match.SOPInstanceUID = uid
            match.ProcedureStepState = item.ProcedureStepState
            yield 0xFF00, match

    def on_action(self, event: Any) -> Any:
        info = event.action_information if event.action_type != ACTION_REQUEST_CANCEL else None
        uid = event.request.RequestedSOPInstanceUID
        if event.action_type == ACTION_SUBSCRIBE:
            self.subscribers.add(info.ReceivingAE)
            return 0x0000, None
        item = self.items.get(uid)
        if item is None:
            return 0xC307, None
        if event.action_type == ACTION_REQUEST_CANCEL:
            cancel = Dataset()
            cancel.RequestingAE = event.assoc.remote["ae_title"]
            self.notify(uid, EVENT_CANCEL_REQUESTED, cancel)
            return 0x0000, None
        state, transaction = info.ProcedureStepState, info.TransactionUID
        if item.ProcedureStepState == SCHEDULED and state == IN_PROGRESS:
            self.transactions[uid] = transaction
        elif self.transactions.get(uid) != transaction:
            return 0xC301, None
        elif item.ProcedureStepState == COMPLETED:
            return 0xC311, None
        item.ProcedureStepState = state
        self.notify(uid, EVENT_STATE_REPORT, self.state_report(uid))
        return 0x0000, None

    def on_set(self, event: Any) -> Any:
        uid = event.request.RequestedSOPInstanceUID
        item = self.items.get(uid)
        if item is None:
            return 0xC307, None
        changes = event.modification_list
        if item.ProcedureStepState == IN_PROGRESS and (
            changes.get("TransactionUID") != self.transactions.get(uid)
        ):
            return 0xC301, None
        item.update(changes)
        return 0x0000, None

    def on_get(self, event: Any) -> Any:
        item = self.items.get(event.request.RequestedSOPInstanceUID)
        if item is None:
            return 0xC307, None
        answer = Dataset()
        for tag in event.attribute_identifiers:
            if tag in item:
                answer[tag] = item[tag]
        return 0x0000, answer

    def handlers(self) -> list[Any]:
        return [
            (evt.EVT_N_CREATE, self.on_create),
            (evt.EVT_C_FIND, self.on_find),
            (evt.EVT_N_ACTION, self.on_action),
            (evt.EVT_N_SET, self.on_set),
            (evt.EVT_N_GET, self.on_get),
        ]


class Setup:
    def __init__(self, make_ae: Any) -> None:
        self.scp_ae = make_ae("WORKLIST", supported=ALL_UPS)
        self.manager = WorklistManager(self.scp_ae)
        self.established = Established()
        self.port = serve(self.scp_ae, [*self.manager.handlers(), self.established.binding()])
        self.reports: list[tuple[int, str, str]] = []
        self.reported = threading.Condition()
        self.watcher = make_ae("WATCHER", supported=[(UPS_EVENT, False, True)],
                               requested=[UPS_WATCH])
        self.watcher_port = serve(self.watcher, [(evt.EVT_N_EVENT_REPORT, self.on_report)])
        self.scp_ae.report_destinations = {"WATCHER": ("127.0.0.1", self.watcher_port)}

    def on_report(self, event: Any) -> Any:
        with self.reported:
            info = event.event_information
            self.reports.append((event.event_type, event.request.AffectedSOPClassUID,
                                 str(info.get("ProcedureStepState", ""))))
            self.reported.notify_all()
        return 0x0000, None

    def wait_reports(self, count: int) -> list[tuple[int, str, str]]:
        with self.reported:
            assert self.reported.wait_for(lambda: len(self.reports) >= count, WAIT)
            return list(self.reports)


@pytest.fixture
def setup(make_ae: Any) -> Setup:
    return Setup(make_ae)


def workitem(state: str = SCHEDULED) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = state
    ds.ProcedureStepLabel = "Segment the liver"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.InputReadinessState = "READY"
    return ds


def test_the_plugin_declares_the_five_sop_classes() -> None:
    assert set(UNIFIED_PROCEDURE_STEP.sop_classes) == set(ALL_UPS)
    assert UNIFIED_PROCEDURE_STEP.uid == "1.2.840.10008.5.1.4.34.6"
    assert "UnifiedProcedurePresentationContexts" in UNIFIED_PROCEDURE_STEP.context_lists


def test_push_pull_and_watch(setup: Setup, make_ae: Any) -> None:
    # the watcher subscribes globally (on a UPS Watch association only: the N-ACTION names
    # UPS Push and goes on the Watch context, PS3.4 CC.3.1)
    watch = associate(setup.watcher, setup.port, "WORKLIST")
    subscribe = Dataset()
    subscribe.ReceivingAE = "WATCHER"
    subscribe.DeletionLock = "FALSE"
    status, _ = watch.send_n_action(subscribe, ACTION_SUBSCRIBE, UPS_PUSH,
                                    GLOBAL_SUBSCRIPTION_INSTANCE)
    assert status.Status == 0x0000
    watch.release()

    # a scheduler pushes a workitem
    scheduler = make_ae("SCHEDULER", requested=[UPS_PUSH])
    push = associate(scheduler, setup.port, "WORKLIST")
    uid = generate_uid()
    status, _ = push.send_n_create(workitem(), UPS_PUSH, uid)
    assert status.Status == 0x0000
    push.release()

    # a performer pulls it: C-FIND, claim, update, complete
    performer = make_ae("PERFORMER", requested=[UPS_PULL])
    pull = associate(performer, setup.port, "WORKLIST")
    query = Dataset()
    query.ProcedureStepState = SCHEDULED
    query.SOPInstanceUID = ""
    found = [ds.SOPInstanceUID for st, ds in pull.send_c_find(query, UPS_PULL) if ds]
    assert found == [uid]
    transaction = generate_uid()
    claim = Dataset()
    claim.ProcedureStepState = IN_PROGRESS
    claim.TransactionUID = transaction
    assert pull.send_n_action(claim, ACTION_CHANGE_STATE, UPS_PUSH, uid)[0].Status == 0
    again = Dataset()
    again.ProcedureStepState = IN_PROGRESS
    again.TransactionUID = generate_uid()
    assert pull.send_n_action(again, ACTION_CHANGE_STATE, UPS_PUSH, uid)[0].Status == 0xC301
    progress = Dataset()
    progress.TransactionUID = transaction
    progress.ProcedureStepLabel = "Segment the liver and the spleen"
    assert pull.send_n_set(progress, UPS_PUSH, uid)[0].Status == 0x0000
    status, got = pull.send_n_get([0x00741204], UPS_PUSH, uid)  # Procedure Step Label
    assert status.Status == 0x0000
    assert got.ProcedureStepLabel == "Segment the liver and the spleen"
    done = Dataset()
    done.ProcedureStepState = COMPLETED
    done.TransactionUID = transaction
    assert pull.send_n_action(done, ACTION_CHANGE_STATE, UPS_PUSH, uid)[0].Status == 0
    pull.release()

    # the watcher heard both state changes, on associations the SCP opened (UPS Event)
    reports = setup.wait_reports(2)
    assert reports == [
        (EVENT_STATE_REPORT, UPS_PUSH, IN_PROGRESS),
        (EVENT_STATE_REPORT, UPS_PUSH, COMPLETED),
    ]


def test_creation_is_checked(setup: Setup, make_ae: Any) -> None:
    scheduler = make_ae("SCHEDULER", requested=[UPS_PUSH])
    assoc = associate(scheduler, setup.port, "WORKLIST")
    status, _ = assoc.send_n_create(workitem(IN_PROGRESS), UPS_PUSH, generate_uid())
    assert status.Status == 0xC309 and status.OffendingElement == 0x00741000
    missing = workitem()
    del missing.ProcedureStepState
    assert assoc.send_n_create(missing, UPS_PUSH, generate_uid())[0].Status == 0x0120
    assert setup.manager.items == {}
    assoc.release()


def test_actions_are_checked(setup: Setup, make_ae: Any) -> None:
    performer = make_ae("PERFORMER", requested=[UPS_PULL, UPS_WATCH])
    assoc = associate(performer, setup.port, "WORKLIST")
    uid = generate_uid()

    def action(action_type: int, **elements: Any) -> int:
        info = Dataset()
        for keyword, value in elements.items():
            setattr(info, keyword, value)
        return int(assoc.send_n_action(info, action_type, UPS_PUSH, uid)[0].Status)

    assert action(9) == 0x0123
    assert action(ACTION_CHANGE_STATE, ProcedureStepState=IN_PROGRESS) == 0xC301
    assert action(ACTION_CHANGE_STATE, ProcedureStepState=SCHEDULED,
                  TransactionUID=generate_uid()) == 0xC303
    assert action(ACTION_CHANGE_STATE, ProcedureStepState="PAUSED",
                  TransactionUID=generate_uid()) == 0x0115
    assert action(ACTION_SUBSCRIBE, DeletionLock="FALSE") == 0x0115
    assert action(ACTION_SUBSCRIBE, ReceivingAE="WATCHER", DeletionLock="MAYBE") == 0x0115
    assert action(4, ReceivingAE="WATCHER") == 0xC307  # the handler's turn: no such UPS
    assert setup.manager.subscribers == set()
    assoc.release()


def test_request_cancel_is_reported_to_the_subscribers(setup: Setup, make_ae: Any) -> None:
    setup.manager.subscribers.add("WATCHER")
    uid = generate_uid()
    setup.manager.items[uid] = workitem()
    requester = make_ae("REQUESTER", requested=[UPS_PUSH])
    assoc = associate(requester, setup.port, "WORKLIST")
    status, _ = assoc.send_n_action(None, ACTION_REQUEST_CANCEL, UPS_PUSH, uid)
    assert status.Status == 0x0000
    assoc.release()
    assert setup.wait_reports(1) == [(EVENT_CANCEL_REQUESTED, UPS_PUSH, "")]


def test_c_find_only_on_the_information_models(setup: Setup, make_ae: Any) -> None:
    setup.manager.items[generate_uid()] = workitem()
    scu = make_ae("SCU", requested=[UPS_QUERY, UPS_PUSH])
    assoc = associate(scu, setup.port, "WORKLIST")
    query = Dataset()
    query.ProcedureStepState = ""
    responses = list(assoc.send_c_find(query, UPS_QUERY))
    assert [st.Status for st, _ in responses] == [0xFF00, 0x0000]
    (final, _), = list(assoc.send_c_find(query, UPS_PUSH))
    assert final.Status == 0x0211  # UPS Push is no C-FIND information model
    assoc.release()


def test_events_on_the_association_of_the_subscriber(setup: Setup, make_ae: Any) -> None:
    """An N-EVENT-REPORT naming UPS Push goes on the UPS Event context (PS3.4 CC.3.1);
    an event type outside Table CC.2.4-1 is refused."""
    seen: list[Any] = []

    def on_report(event: Any) -> Any:
        seen.append((event.event_type, str(event.context.abstract_syntax)))
        return 0x0000, None

    listener = make_ae("LISTENER", requested=[UPS_WATCH, UPS_EVENT])
    assoc = associate(listener, setup.port, "WORKLIST",
                      evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    scp_side = setup.established.next()
    uid = generate_uid()
    status = send_ups_event(setup.scp_ae, "LISTENER", uid, EVENT_STATE_REPORT, Dataset(),
                            assoc=scp_side)
    assert status.Status == 0x0000
    assert seen == [(EVENT_STATE_REPORT, UPS_EVENT)]
    status, _ = scp_side.send_n_event_report(None, 9, UPS_PUSH, uid)
    assert status.Status == 0x0113
    assoc.release()


def test_the_scu_finds_a_ups_context_for_ups_push(setup: Setup, make_ae: Any) -> None:
    uid = generate_uid()
    setup.manager.items[uid] = workitem()
    scu = make_ae("SCU", requested=[UPS_PULL])
    assoc = associate(scu, setup.port, "WORKLIST")
    status, got = assoc.send_n_get([0x00741000], UPS_PUSH, uid)
    assert status.Status == 0x0000 and got.ProcedureStepState == SCHEDULED
    with pytest.raises(ValueError):
        assoc.send_n_get([], "1.2.840.10008.3.1.2.3.3", uid)  # not UPS: no fallback
    assoc.release()
