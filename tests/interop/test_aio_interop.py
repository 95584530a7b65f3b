"""The asyncio API (:mod:`dicomnet.aio`) with real peers.

* asyncio requestor -> DCMTK ``storescp``: C-ECHO, C-STORE of Part 10 files
  (streamed as they are) and of Datasets, over TCP and over TLS;
* asyncio requestor -> DCMTK ``dcmqrscp``: C-FIND (and leaving one early),
  C-GET with the sub-operations stored by our ``EVT_C_STORE`` handler;
* DCMTK ``echoscu`` and ``storescu`` -> the asyncio server.

A missing peer skips a test with the way to install it (or fails it with
``DICOMNET_REQUIRE_PEERS=1``: see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet.aio import AsyncAE
from dicomnet.retrieve_helpers import retrieve_contexts
from tests.interop.peers import TLS_HOSTNAME, Dcmtk, PeerGroup, TlsFiles, describe, run_client
from tests.interop.qr_peers import (
    CT,
    MR,
    assert_same_instances,
    make_study,
    start_dcmqrscp,
    start_storescp,
)

pytestmark = pytest.mark.interop

LOCALHOST = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
#: bounds every test's event loop
WAIT = 60.0


def run(make: Any) -> Any:
    async def main() -> Any:
        result = await asyncio.wait_for(make(), WAIT)
        await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, f"tasks left pending: {left}"
        return result

    return asyncio.run(main())


def requestor(*contexts: str) -> AsyncAE:
    ae = AsyncAE("AIOSCU")
    for uid in contexts:
        ae.add_requested_context(uid)
    return ae


# -- requestor -> storescp ------------------------------------------------------------------------


def test_echo_and_store_to_storescp(dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "aio-store", ct=3, mr=1)
    received = tmp_path / "received"
    _, port = start_storescp(peers, dcmtk, received)
    files = study.paths

    async def main() -> list[int]:
        ae = requestor(VERIFICATION, CT, MR)
        async with await ae.associate(LOCALHOST, port, ae_title="STORESCP") as assoc:
            assert str(assoc.acceptor.implementation_class_uid).startswith("1.2.276.0.7230010.3")
            statuses = [int((await assoc.send_c_echo()).Status)]
            for path in files[:-1]:
                statuses.append(int((await assoc.send_c_store(path)).Status))
            # the last one as a Dataset, encoded here
            statuses.append(int((await assoc.send_c_store(dcmread(files[-1]))).Status))
        assert assoc.is_released
        return statuses

    assert run(main) == [0] * (1 + len(files))
    assert_same_instances(received, files, named_by_uid=False)


def test_echo_over_tls_to_storescp(
    dcmtk_tls: Dcmtk, peers: PeerGroup, tls_files: TlsFiles, tmp_path: Path
) -> None:
    tool = dcmtk_tls.tool("storescp")
    _, port = peers.start_listening(
        lambda port: [
            tool, "-aet", "STORESCP", "-od", str(tmp_path),
            "+tls", str(tls_files.server_key), str(tls_files.server_cert),
            "+cf", str(tls_files.ca_cert), str(port),
        ],
        name="storescp-tls",
        cwd=tmp_path,
    )  # fmt: skip

    async def main() -> tuple[int, bool]:
        ae = requestor(VERIFICATION)
        assoc = await ae.associate(
            LOCALHOST, port, ae_title="STORESCP",
            tls_args=(tls_files.client_context(), TLS_HOSTNAME),
        )  # fmt: skip
        assert assoc.is_established
        status = int((await assoc.send_c_echo()).Status)
        await assoc.release()
        return status, assoc.is_released

    assert run(main) == (0, True)


# -- requestor -> dcmqrscp ------------------------------------------------------------------------


def test_find_in_dcmqrscp(dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "aio-find", ct=2, mr=2)
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, study.paths)

    def series_query() -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID = study.study_uid
        ds.SeriesInstanceUID = ""
        ds.Modality = ""
        return ds

    async def main() -> tuple[list[tuple[int, str | None]], int, int]:
        ae = requestor(STUDY_FIND)
        async with await ae.associate(LOCALHOST, port, ae_title="QRSCP") as assoc:
            found = [
                (int(status.Status), None if ident is None else str(ident.SeriesInstanceUID))
                async for status, ident in assoc.send_c_find(series_query(), STUDY_FIND)
            ]
            # leave a query after its first match: C-CANCEL, and the association goes on
            async with assoc.send_c_find(series_query(), STUDY_FIND) as responses:
                async for status, _ in responses:
                    first = int(status.Status)
                    break
            echo_like = [
                int(status.Status)
                async for status, _ in assoc.send_c_find(series_query(), STUDY_FIND)
            ][-1]
        return found, first, echo_like

    found, first, last = run(main)
    assert sorted(uid for status, uid in found if status == 0xFF00) == sorted(study.series_uids)
    assert found[-1] == (0x0000, None)
    assert first == 0xFF00 and last == 0x0000


def test_get_from_dcmqrscp(dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "aio-get", ct=2, mr=1)
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, study.paths)
    out = tmp_path / "out"
    out.mkdir()

    def on_store(event: Any) -> int:
        event.store(out)
        return 0x0000

    async def main() -> list[int]:
        contexts, roles = retrieve_contexts([CT, MR], STUDY_GET)
        ae = requestor()
        async with await ae.associate(
            LOCALHOST, port, ae_title="QRSCP", contexts=contexts, ext_neg=roles,
            evt_handlers=[(evt.EVT_C_STORE, on_store)],
        ) as assoc:  # fmt: skip
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "STUDY"
            identifier.StudyInstanceUID = study.study_uid
            return [int(s.Status) async for s, _ in assoc.send_c_get(identifier, STUDY_GET)]

    statuses = run(main)
    assert statuses[-1] == 0x0000 and all(s == 0xFF00 for s in statuses[:-1])
    assert_same_instances(out, study.paths)


# -- DCMTK clients -> the asyncio server ---------------------------------------------------------


def test_echoscu_and_storescu_to_the_async_server(dcmtk: Dcmtk, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "aio-scp", ct=2, mr=1)
    out = tmp_path / "out"
    out.mkdir()

    def on_store(event: Any) -> int:
        event.store(out)
        return 0x0000

    async def main() -> tuple[Any, Any]:
        ae = AsyncAE("AIOSCP")
        for uid in (VERIFICATION, CT, MR):
            ae.add_supported_context(uid)
        server = await ae.start_server(
            (LOCALHOST, 0), evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )
        async with server:
            port = str(server.server_address[1])
            echo = await asyncio.to_thread(
                run_client, [dcmtk.tool("echoscu"), "-aec", "AIOSCP", LOCALHOST, port]
            )
            store = await asyncio.to_thread(
                run_client,
                [dcmtk.tool("storescu"), "-aec", "AIOSCP", LOCALHOST, port, *map(str, study.paths)],
            )
        return echo, store

    echo, store = run(main)
    assert echo.returncode == 0, describe(echo)
    assert store.returncode == 0, describe(store)
    assert_same_instances(out, study.paths)
