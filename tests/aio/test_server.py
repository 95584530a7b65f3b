"""The asyncio server (``AsyncAE.start_server``) and many associations on one loop.

The server's associations are served by the same plugins and handlers as the
threaded server's; handlers run in the loop's executor. Clients are both the
threaded AE (in a worker thread) and asyncio associations on the same loop.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomnet import AE, evt
from dicomnet.aio import AsyncAE, AsyncServer
from dicomnet.retrieve_helpers import retrieve_contexts

from .conftest import CT, FIND, GET, VERIFICATION, WAIT, MakeServer, instance, query, run

CONCURRENT = 100


def async_scp(*contexts: Any, **attributes: Any) -> AsyncAE:
    ae = AsyncAE("ASYNCSCP")
    for entry in contexts or (VERIFICATION,):
        uid, kwargs = (entry, {}) if isinstance(entry, str) else entry
        ae.add_supported_context(uid, **kwargs)
    for name, value in attributes.items():
        setattr(ae, name, value)
    return ae


async def start(ae: AsyncAE, handlers: Any = ()) -> tuple[AsyncServer, int]:
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=list(handlers))
    return server, server.server_address[1]


def blocking_scu(*contexts: str) -> AE:
    ae = AE("SYNCSCU")
    for uid in contexts or (VERIFICATION,):
        ae.add_requested_context(uid)
    return ae


def test_verification_for_threaded_and_async_clients() -> None:
    async def main() -> tuple[int, int]:
        async with (await start(async_scp()))[0] as server:
            port = server.server_address[1]

            def threaded_echo() -> int:
                ae = blocking_scu()
                assoc = ae.associate("127.0.0.1", port, ae_title="ASYNCSCP")
                try:
                    return int(assoc.send_c_echo().Status)
                finally:
                    assoc.release()

            threaded = await asyncio.to_thread(threaded_echo)
            client = AsyncAE("ASYNCSCU")
            client.add_requested_context(VERIFICATION)
            async with await client.associate("127.0.0.1", port, ae_title="ASYNCSCP") as assoc:
                assert assoc.remote["ae_title"] == "ASYNCSCP"
                own = int((await assoc.send_c_echo()).Status)
            return threaded, own

    assert run(main) == (0, 0)


def test_storage_streams_to_disk_and_the_handler_stores(tmp_path: Path) -> None:
    stored = tmp_path / "stored"
    stored.mkdir()
    threads: set[str] = set()

    def on_store(event: Any) -> int:
        threads.add(threading.current_thread().name)
        assert event.dataset_path is not None  # spooled to a file as it arrived
        event.store(stored)
        return 0

    ds = instance(CT, 1)
    ds.add_new(0x00091010, "OB", b"\x03" * (2 * 1024 * 1024))

    async def main() -> list[int]:
        ae = async_scp(CT, spool_threshold=0, spool_directory=str(tmp_path))
        server, port = await start(ae, [(evt.EVT_C_STORE, on_store)])
        try:
            client = AsyncAE("ASYNCSCU")
            client.add_requested_context(CT)
            async with await client.associate("127.0.0.1", port, max_pdu=32768) as assoc:
                first = int((await assoc.send_c_store(ds)).Status)

            def threaded_store() -> int:
                assoc = blocking_scu(CT).associate("127.0.0.1", port)
                try:
                    return int(assoc.send_c_store(instance(CT, 2)).Status)
                finally:
                    assoc.release()

            second = await asyncio.to_thread(threaded_store)
            return [first, second]
        finally:
            server.close()
            await server.wait_closed()

    assert run(main) == [0, 0]
    files = sorted(stored.iterdir())
    assert len(files) == 2
    numbers = sorted(int(dcmread(f).InstanceNumber) for f in files)
    assert numbers == [1, 2]
    assert threading.main_thread().name not in threads


def test_find_and_get_served_on_the_loop() -> None:
    study = [instance(CT, n) for n in range(3)]

    def on_find(event: Any) -> Any:
        for n in range(4):
            found = Dataset()
            found.QueryRetrieveLevel = "STUDY"
            found.PatientID = str(n)
            yield 0xFF00, found

    def on_get(event: Any) -> Any:
        yield len(study)
        yield from ((0xFF00, ds) for ds in study)

    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset.SOPInstanceUID)
        return 0

    async def main() -> tuple[list[int], list[int]]:
        ae = async_scp(FIND, GET, (CT, {"scu_role": False, "scp_role": True}))
        server, port = await start(ae, [(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)])
        async with server:
            client = AsyncAE("ASYNCSCU")
            contexts, roles = retrieve_contexts([CT], GET)
            async with await client.associate(
                "127.0.0.1", port, contexts=[*contexts, *_find_context()], ext_neg=roles,
                evt_handlers=[(evt.EVT_C_STORE, on_store)],
            ) as assoc:
                found = [s.Status async for s, _ in assoc.send_c_find(query(PatientID=""), FIND)]
                got = [s.Status async for s, _ in assoc.send_c_get(query(), GET)]
        return found, got

    found, got = run(main)
    assert found == [0xFF00] * 4 + [0]
    assert got == [0xFF00] * 2 + [0]
    assert received == [ds.SOPInstanceUID for ds in study]


def _find_context() -> list[Any]:
    from dicomnet.presentation import build_context

    return [build_context(FIND)]


def test_close_aborts_open_associations() -> None:
    async def main() -> tuple[bool, bool]:
        server, port = await start(async_scp())
        client = AsyncAE("ASYNCSCU")
        client.add_requested_context(VERIFICATION)
        assoc = await client.associate("127.0.0.1", port)
        assert assoc.is_established and len(server.active_associations) == 1
        server.close()
        await server.wait_closed()
        await assoc.wait_closed(WAIT)
        return assoc.is_aborted, bool(server.active_associations)

    assert run(main) == (True, False)


def test_the_association_limit_rejects() -> None:
    async def main() -> tuple[bool, bool]:
        server, port = await start(async_scp(maximum_associations=1))
        async with server:
            client = AsyncAE("ASYNCSCU")
            client.add_requested_context(VERIFICATION)
            async with await client.associate("127.0.0.1", port) as first:
                second = await client.associate("127.0.0.1", port)
                await second.wait_closed(WAIT)
                return first.is_established, second.is_rejected

    assert run(main) == (True, True)


# -- hundreds of associations on one loop -------------------------------------------------------


async def _echo_many(port: int, title: str, count: int) -> list[int]:
    client = AsyncAE("ASYNCSCU")
    client.add_requested_context(VERIFICATION)

    async def one() -> int:
        async with await client.associate("127.0.0.1", port, ae_title=title) as assoc:
            return int((await assoc.send_c_echo()).Status)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def test_concurrent_echoes_to_the_threaded_server(make_server: MakeServer) -> None:
    peer = make_server("ECHOSCP", contexts=[VERIFICATION], maximum_associations=CONCURRENT)
    assert run(lambda: _echo_many(peer.port, "ECHOSCP", CONCURRENT)) == [0] * CONCURRENT


def test_concurrent_echoes_to_the_async_server() -> None:
    async def main() -> list[int]:
        server, port = await start(async_scp(maximum_associations=CONCURRENT))
        async with server:
            return await _echo_many(port, "ASYNCSCP", CONCURRENT)

    assert run(main) == [0] * CONCURRENT


def test_concurrent_finds_on_one_loop(make_server: MakeServer) -> None:
    """C-FINDs overlapping on one loop, each on its own association (the async ops window
    is 1 by default, so one association carries one operation at a time)."""

    def on_find(event: Any) -> Any:
        for n in range(50):
            found = Dataset()
            found.QueryRetrieveLevel = "STUDY"
            found.PatientID = f"{event.request.MessageID}-{n}"
            yield 0xFF00, found

    peer = make_server(
        "FINDSCP", contexts=[FIND], handlers=[(evt.EVT_C_FIND, on_find)], maximum_associations=40
    )

    async def one(client: AsyncAE, msg_id: int) -> set[str]:
        async with await client.associate("127.0.0.1", peer.port, ae_title="FINDSCP") as assoc:
            return {
                identifier.PatientID
                async for status, identifier in assoc.send_c_find(query(), FIND, msg_id=msg_id)
                if identifier is not None
            }

    async def main() -> list[set[str]]:
        client = AsyncAE("ASYNCSCU")
        client.add_requested_context(FIND)
        return list(await asyncio.gather(*(one(client, n) for n in range(1, 31))))

    results = run(main)
    assert results == [{f"{n}-{i}" for i in range(50)} for n in range(1, 31)]
