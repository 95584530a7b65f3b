"""The asyncio association as requestor, against the threaded dicomnet server over loopback.

Every ``send_*`` path (the same service-user plans the threaded association
runs), the documented return values and errors, timeouts, aborts, C-CANCEL on
early exit, the peer's requests served by the plugins and handlers (C-GET
sub-operations, N-EVENT-REPORT), and bounded memory for a streamed C-STORE.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import evt
from dicomnet.aio import AsyncAE, AsyncAssociation
from dicomnet.retrieve_helpers import retrieve_contexts
from tests.nservices.test_n_machinery import WIDGET, Recorder, TestPlugin

from .conftest import (
    CT,
    FIND,
    GET,
    MOVE,
    MR,
    VERIFICATION,
    WAIT,
    MakeServer,
    Peer,
    instance,
    query,
    run,
    with_meta,
)

STORAGE_ROLES = [
    (CT, {"scu_role": False, "scp_role": True}),
    (MR, {"scu_role": False, "scp_role": True}),
]


def scu(*contexts: str, **attributes: Any) -> AsyncAE:
    ae = AsyncAE("ASYNCSCU")
    for uid in contexts or (VERIFICATION,):
        ae.add_requested_context(uid)
    for name, value in attributes.items():
        setattr(ae, name, value)
    return ae


async def associate(ae: AsyncAE, peer: Peer, **kwargs: Any) -> AsyncAssociation:
    assoc = await ae.associate("127.0.0.1", peer.port, ae_title=peer.title, **kwargs)
    assert assoc.is_established
    return assoc


def storage_scp(make_server: MakeServer, **attributes: Any) -> tuple[Peer, list[Dataset]]:
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0x0000

    peer = make_server(
        "STORESCP",
        contexts=[VERIFICATION, CT, MR],
        handlers=[(evt.EVT_C_STORE, on_store)],
        **attributes,
    )
    return peer, received


def write_file(path: Path, ds: Dataset) -> Path:
    with_meta(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


# -- association life cycle ------------------------------------------------------------------


def test_echo_release_and_properties(make_server: MakeServer) -> None:
    peer = make_server("ECHOSCP", contexts=[VERIFICATION])

    async def main() -> None:
        ae = scu(VERIFICATION, CT)
        assoc = await associate(ae, peer)
        assert (assoc.is_established, assoc.is_rejected, assoc.is_aborted) == (True, False, False)
        assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [VERIFICATION]
        assert [str(cx.abstract_syntax) for cx in assoc.rejected_contexts] == [CT]
        assert assoc.remote["ae_title"] == "ECHOSCP"
        status = await assoc.send_c_echo()
        assert status.Status == 0x0000
        await assoc.release()
        assert assoc.is_released and not assoc.is_established
        with pytest.raises(RuntimeError):
            await assoc.send_c_echo()

    run(main)


def test_async_with_releases_and_aborts_on_error(make_server: MakeServer) -> None:
    peer = make_server("ECHOSCP", contexts=[VERIFICATION])

    async def main() -> None:
        ae = scu()
        async with await associate(ae, peer) as assoc:
            assert (await assoc.send_c_echo()).Status == 0
        assert assoc.is_released
        with pytest.raises(KeyError):
            async with await associate(ae, peer) as other:
                raise KeyError("boom")
        assert other.is_aborted

    run(main)


def test_rejected_and_unreachable(make_server: MakeServer) -> None:
    peer = make_server("ECHOSCP", contexts=[VERIFICATION], require_called_aet=True)

    async def main() -> None:
        ae = scu()
        rejected = await ae.associate("127.0.0.1", peer.port, ae_title="SOMEONE")
        assert rejected.is_rejected and not rejected.is_established
        await rejected.wait_closed(WAIT)
        # a port nothing listens on: the connection fails
        unreachable = await ae.associate("127.0.0.1", 9, ae_title="NOBODY")
        assert unreachable.is_aborted and not unreachable.is_established
        with pytest.raises(RuntimeError):
            await unreachable.send_c_echo()

    run(main)


def test_no_context_is_value_error_and_bad_arguments(make_server: MakeServer) -> None:
    peer = make_server("ECHOSCP", contexts=[VERIFICATION])

    async def main() -> None:
        async with await associate(scu(), peer) as assoc:
            with pytest.raises(ValueError, match="No presentation context"):
                await assoc.send_c_store(instance(CT))
            with pytest.raises(ValueError):
                await assoc.send_c_echo(msg_id=70000)
            with pytest.raises(ValueError):
                async for _ in assoc.send_c_find(query(), FIND):
                    pass
            assert (await assoc.send_c_echo()).Status == 0
        with pytest.raises(RuntimeError):
            await scu().associate("127.0.0.1", peer.port, contexts=[])

    run(main)


def test_events_are_triggered(make_server: MakeServer) -> None:
    peer = make_server("ECHOSCP", contexts=[VERIFICATION])
    seen: list[str] = []

    def record(event: Any) -> None:
        seen.append(event.event.name)

    handlers = [
        (e, record)
        for e in (evt.EVT_CONN_OPEN, evt.EVT_ESTABLISHED, evt.EVT_DIMSE_SENT, evt.EVT_DIMSE_RECV,
                  evt.EVT_RELEASED, evt.EVT_CONN_CLOSE)
    ]

    async def main() -> None:
        async with await associate(scu(), peer, evt_handlers=handlers) as assoc:
            await assoc.send_c_echo()

    run(main)
    assert seen == [
        "EVT_CONN_OPEN", "EVT_ESTABLISHED", "EVT_DIMSE_SENT", "EVT_DIMSE_RECV",
        "EVT_RELEASED", "EVT_CONN_CLOSE",
    ]


# -- C-STORE --------------------------------------------------------------------------------------


def test_store_dataset_path_and_file_object(make_server: MakeServer, tmp_path: Path) -> None:
    peer, received = storage_scp(make_server)
    in_memory = instance(CT, 1)
    on_disk = write_file(tmp_path / "a.dcm", instance(MR, 2))
    as_object = write_file(tmp_path / "b.dcm", instance(CT, 3))

    async def main() -> list[int]:
        async with await associate(scu(CT, MR), peer) as assoc:
            statuses = [(await assoc.send_c_store(in_memory)).Status]
            statuses.append((await assoc.send_c_store(str(on_disk))).Status)
            with as_object.open("rb") as fp:
                statuses.append((await assoc.send_c_store(fp, msg_id=9, priority=1)).Status)
            return statuses

    assert run(main) == [0, 0, 0]
    assert [ds.InstanceNumber for ds in received] == [1, 2, 3]
    with pytest.raises(AttributeError):
        run(lambda: _store_without_uids(peer))


async def _store_without_uids(peer: Peer) -> None:
    async with await associate(scu(CT), peer) as assoc:
        await assoc.send_c_store(Dataset())


def test_big_file_is_streamed_in_bounded_memory(make_server: MakeServer, tmp_path: Path) -> None:
    """A 48 MiB data set goes out in chunks as the transport takes them, never whole."""
    stored: list[int] = []

    def on_store(event: Any) -> int:
        stored.append(event.dataset_path.stat().st_size)  # spooled to disk as it arrived
        return 0

    peer = make_server(
        "BIGSCP", contexts=[CT], handlers=[(evt.EVT_C_STORE, on_store)], spool_threshold=0
    )
    ds = instance(CT, 1)
    ds.add_new(0x00091010, "OB", b"\x01" * (48 * 1024 * 1024))  # private bulk data
    path = write_file(tmp_path / "big.dcm", ds)
    del ds

    async def main() -> tuple[int, int]:
        async with await associate(scu(CT), peer, max_pdu=65536) as assoc:
            tracemalloc.start()
            try:
                status = await assoc.send_c_store(path)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            return status.Status, peak

    status, peak = run(main)
    assert status == 0
    assert stored and stored[0] > 48 * 1024 * 1024
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes while sending 48 MiB"


class _AbortingReader(io.RawIOBase):
    """A file object that aborts the association when its data set is half read."""

    def __init__(self, data: bytes, abort: Any) -> None:
        self._fp = io.BytesIO(data)
        self._abort = abort
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        self.reads += 1
        if self.reads == 4:
            self._abort()
        return self._fp.read(size)

    def tell(self) -> int:
        return self._fp.tell()


def test_abort_mid_store_leaves_the_peer_without_the_instance(
    make_server: MakeServer, tmp_path: Path
) -> None:
    peer, received = storage_scp(make_server, spool_threshold=0)
    ds = instance(CT, 1)
    ds.add_new(0x00091010, "OB", b"\x02" * (8 * 1024 * 1024))
    data = write_file(tmp_path / "c.dcm", ds).read_bytes()

    async def main() -> tuple[Dataset, bool]:
        assoc = await associate(scu(CT), peer)
        loop = asyncio.get_running_loop()
        reader = _AbortingReader(data, lambda: loop.call_soon(assoc.abort))
        status = await assoc.send_c_store(reader)  # type: ignore[arg-type]
        await assoc.wait_closed(WAIT)
        return status, assoc.is_aborted

    status, aborted = run(main)
    assert status == Dataset() and aborted
    assert received == []


def test_dimse_timeout_gives_an_empty_dataset_and_aborts(make_server: MakeServer) -> None:
    release = threading.Event()

    def slow_echo(event: Any) -> int:
        release.wait(WAIT)
        return 0

    peer = make_server("SLOWSCP", contexts=[VERIFICATION], handlers=[(evt.EVT_C_ECHO, slow_echo)])

    async def main() -> tuple[Dataset, bool, float]:
        ae = scu(dimse_timeout=0.3)
        assoc = await associate(ae, peer)
        started = time.monotonic()
        status = await assoc.send_c_echo()
        took = time.monotonic() - started
        await assoc.wait_closed(WAIT)
        return status, assoc.is_aborted, took

    try:
        status, aborted, took = run(main)
    finally:
        release.set()
    assert status == Dataset() and aborted
    assert 0.25 < took < WAIT


# -- C-FIND, C-GET, C-MOVE, C-CANCEL --------------------------------------------------------------


def finder(count: int, produced: list[int] | None = None) -> Any:
    """An EVT_C_FIND handler matching ``count`` identifiers; ``produced`` records each one."""

    def on_find(event: Any) -> Any:
        for n in range(count):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            found = Dataset()
            found.QueryRetrieveLevel = "STUDY"
            found.PatientID = str(n)
            if produced is not None:
                produced.append(n)
                if n == 1:
                    time.sleep(0.05)  # give the C-CANCEL time to arrive
            yield 0xFF00, found

    return on_find


def test_find_yields_every_identifier_then_the_final_status(make_server: MakeServer) -> None:
    peer = make_server("FINDSCP", contexts=[FIND], handlers=[(evt.EVT_C_FIND, finder(5))])

    async def main() -> list[tuple[int, str | None]]:
        out = []
        async with await associate(scu(FIND), peer) as assoc:
            async for status, identifier in assoc.send_c_find(query(PatientID=""), FIND):
                out.append((status.Status, None if identifier is None else identifier.PatientID))
        return out

    assert run(main) == [(0xFF00, str(n)) for n in range(5)] + [(0x0000, None)]


def test_leaving_a_find_early_sends_a_c_cancel(make_server: MakeServer) -> None:
    produced: list[int] = []
    cancels: list[Any] = []

    def on_dimse(event: Any) -> None:
        if event.message.message_name == "C-CANCEL-RQ":
            cancels.append(event.message.MessageIDBeingRespondedTo)

    peer = make_server(
        "FINDSCP",
        contexts=[FIND],
        handlers=[(evt.EVT_C_FIND, finder(1000, produced)), (evt.EVT_DIMSE_RECV, on_dimse)],
    )

    async def main() -> Dataset:
        async with await associate(scu(FIND), peer) as assoc:
            async with assoc.send_c_find(query(PatientID=""), FIND, msg_id=5) as responses:
                async for status, _identifier in responses:
                    assert status.Status == 0xFF00
                    break
            # the association is usable at once: the late responses were drained
            return await _find_count(assoc)

    assert run(main) == 3
    assert cancels == [5, 1]  # the second query is left early too
    assert len(produced) < 1000  # the SCP stopped matching


async def _find_count(assoc: AsyncAssociation) -> int:
    peer_responses = 0
    async with assoc.send_c_find(query(PatientID=""), FIND) as responses:
        async for _status, _identifier in responses:
            peer_responses += 1
            if peer_responses == 3:
                break
    return peer_responses


def test_concurrent_finds_on_separate_associations(make_server: MakeServer) -> None:
    peer = make_server(
        "FINDSCP", contexts=[FIND], handlers=[(evt.EVT_C_FIND, finder(20))],
        maximum_associations=20,
    )

    async def one(ae: AsyncAE) -> int:
        async with await associate(ae, peer) as assoc:
            return sum(
                [1 async for status, _ in assoc.send_c_find(query(PatientID=""), FIND)
                 if status.Status == 0xFF00]
            )

    async def main() -> list[int]:
        ae = scu(FIND)
        return list(await asyncio.gather(*(one(ae) for _ in range(10))))

    assert run(main) == [20] * 10


def test_explicit_c_cancel(make_server: MakeServer) -> None:
    produced: list[int] = []
    peer = make_server(
        "FINDSCP", contexts=[FIND], handlers=[(evt.EVT_C_FIND, finder(1000, produced))]
    )

    async def main() -> list[int]:
        statuses = []
        async with await associate(scu(FIND), peer) as assoc:
            async for status, _ in assoc.send_c_find(query(PatientID=""), FIND, msg_id=11):
                statuses.append(status.Status)
                if len(statuses) == 1:
                    await assoc.send_c_cancel(11, query_model=FIND)
            with pytest.raises(ValueError):
                await assoc.send_c_cancel(11)
        return statuses

    statuses = run(main)
    assert statuses[-1] == 0xFE00 and len(statuses) < 1000


def test_c_get_suboperations_go_to_the_store_handler(make_server: MakeServer) -> None:
    study = [instance(CT, n) for n in range(3)] + [instance(MR, 3)]
    threads: set[str] = set()

    def on_get(event: Any) -> Any:
        yield len(study)
        yield from ((0xFF00, ds) for ds in study)

    peer = make_server("GETSCP", contexts=[GET, *STORAGE_ROLES], handlers=[(evt.EVT_C_GET, on_get)])
    received: list[str] = []

    def on_store(event: Any) -> int:
        threads.add(threading.current_thread().name)
        received.append(event.dataset.SOPInstanceUID)
        return 0

    async def main() -> list[tuple[Dataset, Dataset | None]]:
        contexts, roles = retrieve_contexts([CT, MR], GET)
        async with await associate(
            scu(), peer, contexts=contexts, ext_neg=roles,
            evt_handlers=[(evt.EVT_C_STORE, on_store)],
        ) as assoc:
            return [r async for r in assoc.send_c_get(query(StudyInstanceUID="1.2.3.4"), GET)]

    responses = run(main)
    assert received == [ds.SOPInstanceUID for ds in study]
    assert [s.Status for s, _ in responses] == [0xFF00] * 3 + [0]
    assert responses[-1][0].NumberOfCompletedSuboperations == 4
    assert threading.main_thread().name not in threads  # handlers run off the loop


def test_c_move_to_a_destination(make_server: MakeServer) -> None:
    dest, received = storage_scp(make_server)
    study = [instance(CT, n) for n in range(3)]

    def on_move(event: Any) -> Any:
        yield len(study)
        yield from ((0xFF00, ds) for ds in study)

    peer = make_server(
        "MOVESCP",
        contexts=[MOVE],
        handlers=[(evt.EVT_C_MOVE, on_move)],
        move_destinations={"STORESCP": ("127.0.0.1", dest.port)},
    )

    async def main() -> list[int]:
        async with await associate(scu(MOVE), peer) as assoc:
            responses = assoc.send_c_move(query(StudyInstanceUID="1.2.3.4"), "STORESCP", MOVE)
            return [s.Status async for s, _ in responses]

    assert run(main) == [0xFF00] * 2 + [0]
    assert [ds.SOPInstanceUID for ds in received] == [ds.SOPInstanceUID for ds in study]
    with pytest.raises(ValueError, match="move destination"):
        run(lambda: _bad_move(peer))


async def _bad_move(peer: Peer) -> None:
    async with await associate(scu(MOVE), peer) as assoc:
        async for _ in assoc.send_c_move(query(), "BAD\\AET", MOVE):
            pass


# -- DIMSE-N ------------------------------------------------------------------------------------


def test_n_services(make_server: MakeServer) -> None:
    recorder = Recorder()
    reply = Dataset()
    reply.PatientName = "Reply^Data"
    recorder.answers[evt.EVT_N_GET] = (0x0000, reply)
    recorder.answers[evt.EVT_N_ACTION] = (0x0000, reply)
    peer = make_server(
        "WIDGETS", contexts=[WIDGET], handlers=recorder.bindings(), plugins=[TestPlugin()]
    )
    uid = generate_uid()

    async def main() -> list[Any]:
        ae = AsyncAE("ASYNCSCU", plugins=[TestPlugin()])
        ae.add_requested_context(WIDGET)
        info = Dataset()
        info.PatientID = "42"
        async with await associate(ae, peer) as assoc:
            return [
                await assoc.send_n_create(info, WIDGET, uid),
                await assoc.send_n_set(info, WIDGET, uid),
                await assoc.send_n_get([0x00100010], WIDGET, uid),
                await assoc.send_n_action(info, 3, WIDGET, uid),
                await assoc.send_n_event_report(info, 2, WIDGET, uid),
                await assoc.send_n_delete(WIDGET, uid),
            ]

    create, set_, get, action, report, delete = run(main)
    for status, _reply in (create, set_, get, action, report):
        assert status.Status == 0
    assert get[1].PatientName == "Reply^Data" and action[1].PatientName == "Reply^Data"
    assert create[0].AffectedSOPInstanceUID == uid
    assert action[0].ActionTypeID == 3 and report[0].EventTypeID == 2
    assert delete.Status == 0
    assert [e.event for e in recorder.events] == [
        evt.EVT_N_CREATE, evt.EVT_N_SET, evt.EVT_N_GET, evt.EVT_N_ACTION,
        evt.EVT_N_EVENT_REPORT, evt.EVT_N_DELETE,
    ]


def test_an_n_event_report_from_the_peer_is_served_by_our_handler(make_server: MakeServer) -> None:
    """The SCP reports on the association of the N-ACTION; our handler answers off the loop."""

    def on_action(event: Any) -> Any:
        info = Dataset()
        info.PatientID = "reported"
        status, _ = event.assoc.send_n_event_report(
            info, 7, WIDGET, event.request.RequestedSOPInstanceUID
        )
        return (0x0000 if status.Status == 0 else 0x0110), None

    peer = make_server(
        "WIDGETS", contexts=[WIDGET], handlers=[(evt.EVT_N_ACTION, on_action)],
        plugins=[TestPlugin()],
    )
    reports: list[tuple[int, str, str]] = []

    def on_report(event: Any) -> Any:
        reports.append(
            (event.event_type, event.event_information.PatientID, threading.current_thread().name)
        )
        return 0x0000, None

    async def main() -> int:
        ae = AsyncAE("ASYNCSCU", plugins=[TestPlugin()])
        ae.add_requested_context(WIDGET)
        async with await associate(
            ae, peer, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
        ) as assoc:
            status, _ = await assoc.send_n_action(None, 1, WIDGET, generate_uid())
            return int(status.Status)

    assert run(main) == 0
    assert [r[:2] for r in reports] == [(7, "reported")]
    assert reports[0][2] != threading.main_thread().name


def test_acse_timeout_when_the_peer_never_answers() -> None:
    """A peer that accepts the connection and says nothing: the kernel's ACSE timer aborts."""

    async def main() -> tuple[bool, bool, float]:
        writers: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ae = scu(acse_timeout=0.3)
        started = time.monotonic()
        assoc = await ae.associate("127.0.0.1", port)
        took = time.monotonic() - started
        await assoc.wait_closed(WAIT)
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
        return assoc.is_established, assoc.is_aborted, took

    established, aborted, took = run(main)
    assert not established and aborted
    assert 0.25 < took < WAIT
