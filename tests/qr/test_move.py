"""C-MOVE over loopback: sub-operations on an association of the SCP's own to the move
destination, counts, failures, cancellation (PS3.4 C.4.2; PS3.7 9.1.4, 9.1.1.1).

Three dicomnet AEs per test: the move SCU, the Query/Retrieve SCP, and a
Storage SCP as move destination recording every C-STORE it receives (with the
association it came on).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet.plugins.qr import MoveDestinations
from dicomnet.presentation import build_context

from .conftest import (
    CT,
    MOVE,
    MR,
    WAIT,
    MakeSCU,
    MakeServer,
    Peer,
    associate,
    instance,
    query,
    with_meta,
)

pytestmark = pytest.mark.leakcheck

DEST = "DEST"


class Destination:
    """A Storage SCP recording each C-STORE: the data set, the request, the association."""

    def __init__(
        self,
        make_server: MakeServer,
        title: str = DEST,
        *,
        refuse: set[str] | None = None,
        hold: Any = None,
        **attributes: Any,
    ) -> None:
        self.stores: list[dict[str, Any]] = []
        self.associations: list[tuple[str, str]] = []
        self.refuse = refuse or set()
        self.hold = hold
        self.peer: Peer = make_server(
            title,
            contexts=[CT, MR],
            handlers=[
                (evt.EVT_C_STORE, self._on_store),
                (evt.EVT_ESTABLISHED, self._on_established),
            ],
            **attributes,
        )

    @property
    def port(self) -> int:
        return self.peer.port

    def _on_established(self, event: Any) -> None:
        self.associations.append(
            (event.assoc.requestor.ae_title, event.assoc.acceptor.ae_title)
        )

    def _on_store(self, event: Any) -> int:
        ds = event.dataset
        self.stores.append(
            {
                "uid": ds.SOPInstanceUID,
                "request": event.request,
                "assoc": id(event.assoc),
                "syntax": str(event.context.transfer_syntax),
            }
        )
        if self.hold is not None:
            self.hold(len(self.stores))
        return 0xA700 if ds.SOPInstanceUID in self.refuse else 0x0000

    @property
    def uids(self) -> list[str]:
        return [store["uid"] for store in self.stores]


def move_scp(
    make_server: MakeServer,
    on_move: Any,
    destinations: dict[str, Any] | None = None,
    **attributes: Any,
) -> Peer:
    if destinations is not None:
        attributes["move_destinations"] = destinations
    return make_server(handlers=[(evt.EVT_C_MOVE, on_move)], **attributes)


def serving(datasets: list[Any]) -> Any:
    """An EVT_C_MOVE handler that leaves the destination to ``move_destinations``."""

    def on_move(event: Any) -> Any:
        yield len(datasets)
        for ds in datasets:
            yield 0xFF00, ds

    return on_move


def failed_uids(identifier: Dataset) -> list[str]:
    """The Failed SOP Instance UID List (0008,0058) as a sorted list (one value is a str)."""
    value = identifier.get("FailedSOPInstanceUIDList", [])
    return sorted([value] if isinstance(value, str) else value)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_move_to_a_dicomnet_destination(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(3)] + [instance(MR, n) for n in range(3, 5)]
    dest = Destination(make_server)
    seen: list[Any] = []

    def on_move(event: Any) -> Any:
        seen.append((event.move_destination, event.identifier.StudyInstanceUID))
        yield len(study)
        for ds in study:
            yield 0xFF00, ds

    scp = move_scp(make_server, on_move, {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu("MOVESCU"), scp)
    responses = list(
        assoc.send_c_move(query(StudyInstanceUID="1.2.3.4"), DEST, MOVE, msg_id=7, priority=1)
    )
    assoc.release()

    assert seen == [(DEST, "1.2.3.4")]
    assert dest.uids == [ds.SOPInstanceUID for ds in study]
    # one association of the SCP's own, from its title to the destination's
    assert dest.associations == [("QRSCP", DEST)]
    assert len({store["assoc"] for store in dest.stores}) == 1
    for store in dest.stores:
        request = store["request"]
        assert request.MoveOriginatorApplicationEntityTitle == "MOVESCU"
        assert request.MoveOriginatorMessageID == 7
        assert request.Priority == 1
    statuses = [s.Status for s, _ in responses]
    assert statuses == [0xFF00] * 4 + [0x0000]
    assert [s.NumberOfRemainingSuboperations for s, _ in responses[:-1]] == [4, 3, 2, 1]
    assert [s.NumberOfCompletedSuboperations for s, _ in responses[:-1]] == [1, 2, 3, 4]
    final, identifier = responses[-1]
    assert (
        final.NumberOfCompletedSuboperations,
        final.NumberOfFailedSuboperations,
        final.NumberOfWarningSuboperations,
    ) == (5, 0, 0)
    assert "NumberOfRemainingSuboperations" not in final
    assert identifier is None


def test_destination_from_the_handler(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(2)]
    dest = Destination(make_server)
    titles: list[str] = []

    def on_move(event: Any) -> Any:
        titles.append(event.move_destination)
        yield "127.0.0.1", dest.port
        yield len(study)
        for ds in study:
            yield 0xFF00, ds

    scp = move_scp(make_server, on_move)
    assoc = associate(make_scu(), scp)
    final, _ = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert titles == [DEST]
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == 2
    assert dest.uids == [ds.SOPInstanceUID for ds in study]


def test_destination_as_a_plugin_and_with_fixed_contexts(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    study = [instance(CT, n) for n in range(2)]
    dest = Destination(make_server)
    table = MoveDestinations(
        {DEST: ("127.0.0.1", dest.port, {"contexts": [build_context(CT)], "max_pdu": 0})}
    )
    scp = move_scp(make_server, serving(study), plugins=["qr", table])
    assoc = associate(make_scu(), scp)
    final, _ = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0x0000
    assert dest.uids == [ds.SOPInstanceUID for ds in study]


def test_part10_files_go_as_they_are(
    make_server: MakeServer, make_scu: MakeSCU, tmp_path: Path
) -> None:
    paths = []
    for n in range(3):
        path = tmp_path / f"{n}.dcm"
        with_meta(instance(CT, n)).save_as(path, enforce_file_format=True)
        paths.append(str(path))
    dest = Destination(make_server)
    scp = move_scp(make_server, serving(paths), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    final, _ = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0x0000
    assert len(dest.uids) == 3
    # Explicit VR Little Endian first: the files' own syntax, sent without conversion
    assert {store["syntax"] for store in dest.stores} == {"1.2.840.10008.1.2.1"}


def test_a_sop_class_beyond_the_lookahead_gets_a_new_association(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    study = [instance(CT, n) for n in range(40)] + [instance(MR, 40)]
    dest = Destination(make_server)
    scp = move_scp(make_server, serving(study), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    final, _ = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == 41
    assert dest.uids == [ds.SOPInstanceUID for ds in study]
    assert len(dest.associations) == 2
    # the CTs before the MR on the first association, the MR on the second
    first, second = dest.stores[0]["assoc"], dest.stores[-1]["assoc"]
    assert first != second
    assert [s["assoc"] for s in dest.stores[:40]] == [first] * 40


def test_failed_suboperations_are_counted_and_listed(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    study = [instance(CT, n) for n in range(5)]
    refused = {study[1].SOPInstanceUID, study[3].SOPInstanceUID}
    dest = Destination(make_server, refuse=refused)
    scp = move_scp(make_server, serving(study), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    responses = list(assoc.send_c_move(query(), DEST, MOVE))
    assoc.release()
    final, identifier = responses[-1]
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (3, 2)
    assert failed_uids(identifier) == sorted(refused)
    assert [s.NumberOfFailedSuboperations for s, _ in responses[:-1]] == [0, 1, 1, 2]


def test_all_failed_is_a702(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(3)]
    dest = Destination(make_server, refuse={ds.SOPInstanceUID for ds in study})
    scp = move_scp(make_server, serving(study), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    final, identifier = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0xA702
    assert final.NumberOfFailedSuboperations == 3
    assert failed_uids(identifier) == sorted(ds.SOPInstanceUID for ds in study)


@pytest.mark.parametrize("first", [(None, None), None])
def test_unknown_destination_is_a801(
    make_server: MakeServer, make_scu: MakeSCU, first: Any
) -> None:
    asked: list[str] = []

    def on_move(event: Any) -> Any:
        asked.append(event.move_destination)
        yield first
        yield 1  # never asked for
        yield 0xFF00, instance(CT)

    scp = move_scp(make_server, on_move, {"OTHER": ("127.0.0.1", 104)})
    assoc = associate(make_scu(), scp)
    responses = list(assoc.send_c_move(query(), "NOWHERE", MOVE))
    assoc.release()
    assert asked == ["NOWHERE"]
    assert [s.Status for s, _ in responses] == [0xA801]
    assert "NumberOfCompletedSuboperations" not in responses[0][0]


def test_handler_ending_before_the_destination_is_a801(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    def on_move(event: Any) -> Any:
        return iter(())

    scp = move_scp(make_server, on_move)
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_move(query(), DEST, MOVE)] == [0xA801]
    assoc.release()


def test_unreachable_destination(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(3)]
    scp = move_scp(make_server, serving(study), {DEST: ("127.0.0.1", closed_port())})
    assoc = associate(make_scu(), scp)
    responses = list(assoc.send_c_move(query(), DEST, MOVE))
    assoc.release()
    final, identifier = responses[-1]
    assert len(responses) == 1  # no Pending: no sub-operation was started
    # A801 means unknown; a known destination that cannot be reached fails the sub-operations
    assert final.Status == 0xA702
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (0, 3)
    assert "FailedSOPInstanceUIDList" in identifier


def test_destination_rejecting_the_association(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    study = [instance(CT, n) for n in range(2)]
    dest = Destination(make_server, "REALNAME", require_called_aet=True)
    scp = move_scp(make_server, serving(study), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    final, _ = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0xA702
    assert final.NumberOfFailedSuboperations == 2
    assert dest.stores == []


def test_zero_matches_opens_no_association(make_server: MakeServer, make_scu: MakeSCU) -> None:
    dest = Destination(make_server)
    scp = move_scp(make_server, serving([]), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    responses = list(assoc.send_c_move(query(), DEST, MOVE))
    assoc.release()
    assert [(s.Status, s.NumberOfCompletedSuboperations) for s, _ in responses] == [(0, 0)]
    assert dest.associations == []


def test_cancel_during_move(make_server: MakeServer, make_scu: MakeSCU) -> None:
    # more than MOVE_LOOKAHEAD, so that the handler is still running when cancelled
    study = [instance(CT, n) for n in range(100)]
    third = threading.Event()
    cancel_sent = threading.Event()
    closed: list[bool] = []

    def hold(count: int) -> None:
        if count == 3:  # hold the 3rd until the C-CANCEL is on its way
            third.set()
            assert cancel_sent.wait(WAIT)

    dest = Destination(make_server, hold=hold)

    def on_move(event: Any) -> Any:
        yield len(study)
        try:
            for ds in study:
                yield 0xFF00, ds
        except GeneratorExit:
            closed.append(True)
            raise

    scp = move_scp(make_server, on_move, {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    responses = []
    for status, identifier in assoc.send_c_move(query(), DEST, MOVE, msg_id=5):
        responses.append((status, identifier))
        if len(responses) == 1:
            assert third.wait(WAIT)
            assoc.send_c_cancel(5, query_model=MOVE)
            cancel_sent.set()
    assoc.release()

    final, identifier = responses[-1]
    assert final.Status == 0xFE00
    assert final.NumberOfCompletedSuboperations == 3
    assert final.NumberOfRemainingSuboperations == 97
    assert "FailedSOPInstanceUIDList" in identifier
    assert len(dest.uids) == 3
    assert closed == [True]


def test_handler_seeing_the_cancel(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(10)]
    second = threading.Event()
    cancel_sent = threading.Event()

    def hold(count: int) -> None:
        if count == 2:
            second.set()
            assert cancel_sent.wait(WAIT)

    dest = Destination(make_server, hold=hold)
    saw: list[bool] = []

    def on_move(event: Any) -> Any:
        yield len(study)
        for ds in study:
            if event.is_cancelled:
                saw.append(True)
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    scp = move_scp(make_server, on_move, {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    responses = []
    for status, identifier in assoc.send_c_move(query(), DEST, MOVE, msg_id=3):
        responses.append((status, identifier))
        if len(responses) == 1:
            assert second.wait(WAIT)
            assoc.send_c_cancel(3, query_model=MOVE)
            cancel_sent.set()
    assoc.release()
    final, _ = responses[-1]
    assert final.Status == 0xFE00
    assert final.NumberOfCompletedSuboperations == 2
    assert final.NumberOfRemainingSuboperations == 8
    assert len(dest.uids) == 2


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (["not a destination"], 0xC514),
        ([("127.0.0.1", 70000)], 0xC514),
        ([("127.0.0.1", "PORT")], 0xC514),
        ([("127.0.0.1", 11112), "three"], 0xC513),
        ([("127.0.0.1", 11112), -1], 0xC513),
        ([("127.0.0.1", 11112)], 0xC513),  # ends without a count
        ([("127.0.0.1", 11112), 70000], 0xC516),
        ([("127.0.0.1", 11112), (0xA900, None)], 0xA900),  # refuses instead of counting
    ],
)
def test_invalid_handler_results(
    make_server: MakeServer, make_scu: MakeSCU, results: list[Any], expected: int
) -> None:
    def on_move(event: Any) -> Any:
        yield from results

    scp = move_scp(make_server, on_move)
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_move(query(), DEST, MOVE)] == [expected]
    assoc.release()


def test_handler_raising_at_once_is_c511(make_server: MakeServer, make_scu: MakeSCU) -> None:
    def on_move(event: Any) -> Any:
        raise OSError("archive offline")

    scp = move_scp(make_server, on_move)
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_move(query(), DEST, MOVE)] == [0xC511]
    assoc.release()


def test_no_handler_bound_is_c511(make_server: MakeServer, make_scu: MakeSCU) -> None:
    scp = make_server(handlers=[])
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_move(query(), DEST, MOVE)] == [0xC511]
    assoc.release()


def test_handler_failing_midway_is_c511_with_counts(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    dest = Destination(make_server)

    def on_move(event: Any) -> Any:
        yield 4
        yield 0xFF00, instance(CT)
        raise OSError("archive offline")

    scp = move_scp(make_server, on_move, {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    final, identifier = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0xC511
    assert final.NumberOfCompletedSuboperations == 1
    assert not identifier.FailedSOPInstanceUIDList
    assert len(dest.uids) == 1


def test_bad_association_arguments_are_c515(make_server: MakeServer, make_scu: MakeSCU) -> None:
    dest = Destination(make_server)

    def on_move(event: Any) -> Any:
        yield "127.0.0.1", dest.port, {"no_such_argument": True}
        yield 1
        yield 0xFF00, instance(CT)

    scp = move_scp(make_server, on_move)
    assoc = associate(make_scu(), scp)
    final, _ = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0xC515
    assert final.NumberOfFailedSuboperations == 1
    assert dest.associations == []


def test_pending_without_a_data_set_is_a_failed_suboperation(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    dest = Destination(make_server)
    ct = instance(CT)

    def on_move(event: Any) -> Any:
        yield 2
        yield 0xFF00, ct
        yield 0xFF00, None

    scp = move_scp(make_server, on_move, {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    final, _ = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 1)
    assert dest.uids == [ct.SOPInstanceUID]


def test_a_move_scu_leaving_early_cancels(make_server: MakeServer, make_scu: MakeSCU) -> None:
    study = [instance(CT, n) for n in range(30)]
    dest = Destination(make_server)
    scp = move_scp(make_server, serving(study), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    responses = assoc.send_c_move(query(), DEST, MOVE)
    next(responses)
    responses.close()
    first = len(dest.uids)
    assert first < 30
    again = list(assoc.send_c_move(query(), DEST, MOVE, msg_id=2))
    assoc.release()
    assert again[-1][0].Status == 0x0000
    assert again[-1][0].NumberOfCompletedSuboperations == 30
    assert len(dest.uids) == first + 30


def test_destination_aborting_midway_with_fixed_contexts(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    study = [instance(CT, n) for n in range(5)]

    def on_store(event: Any) -> int:
        if event.dataset.InstanceNumber == 2:
            event.assoc.abort()
        return 0x0000

    dest = make_server(DEST, contexts=[CT], handlers=[(evt.EVT_C_STORE, on_store)])
    table = {DEST: ("127.0.0.1", dest.port, {"contexts": [build_context(CT)]})}
    scp = move_scp(make_server, serving(study), table)
    assoc = associate(make_scu(), scp)
    final, identifier = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0xB000
    assert final.NumberOfCompletedSuboperations == 2
    assert final.NumberOfFailedSuboperations == 3
    assert study[2].SOPInstanceUID in identifier.FailedSOPInstanceUIDList


def test_dataset_has_the_identifier_to_match(make_server: MakeServer, make_scu: MakeSCU) -> None:
    identifiers: list[Dataset] = []

    def on_move(event: Any) -> Any:
        identifiers.append(event.identifier)
        yield 0

    dest = Destination(make_server)
    scp = move_scp(make_server, on_move, {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    list(assoc.send_c_move(query("SERIES", SeriesInstanceUID="1.2.3.4.5"), DEST, MOVE))
    assoc.release()
    assert identifiers[0].QueryRetrieveLevel == "SERIES"
    assert identifiers[0].SeriesInstanceUID == "1.2.3.4.5"


def test_refusal_when_the_table_knows_the_destination(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    """With ``move_destinations``, the handler's first yield may refuse instead of counting,
    as for C-GET (the destination is not its business then)."""
    dest = Destination(make_server)

    def on_move(event: Any) -> Any:
        yield 0xA900, None  # Identifier does not match SOP Class

    scp = move_scp(make_server, on_move, {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_move(query(), DEST, MOVE)] == [0xA900]
    assoc.release()
    assert dest.associations == []


def test_unreachable_destination_lists_every_failed_instance(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    study = [instance(CT, n) for n in range(40)]
    scp = move_scp(make_server, serving(study), {DEST: ("127.0.0.1", closed_port())})
    assoc = associate(make_scu(), scp)
    final, identifier = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0xA702
    assert final.NumberOfFailedSuboperations == 40
    assert failed_uids(identifier) == sorted(ds.SOPInstanceUID for ds in study)


def test_destination_accepting_none_of_the_contexts(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    study = [instance(CT, n) for n in range(3)]
    dest = make_server(DEST, contexts=[MR])  # CT is rejected, the association accepted
    scp = move_scp(make_server, serving(study), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    final, identifier = list(assoc.send_c_move(query(), DEST, MOVE))[-1]
    assoc.release()
    assert final.Status == 0xA702
    assert final.NumberOfFailedSuboperations == 3
    assert failed_uids(identifier) == sorted(ds.SOPInstanceUID for ds in study)


def test_title_missing_from_the_table_is_a801_when_the_handler_counts(
    make_server: MakeServer, make_scu: MakeSCU
) -> None:
    """A handler relying on ``move_destinations`` starts with the count: a title the table
    does not know is unknown (A801H), not an invalid destination from the handler."""
    dest = Destination(make_server)
    scp = move_scp(make_server, serving([instance(CT)]), {DEST: ("127.0.0.1", dest.port)})
    assoc = associate(make_scu(), scp)
    assert [s.Status for s, _ in assoc.send_c_move(query(), "NOWHERE", MOVE)] == [0xA801]
    assoc.release()
    assert dest.associations == []
