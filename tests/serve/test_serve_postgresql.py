"""Two ``dicomnet serve`` processes sharing one PostgreSQL index and one storage folder:
what one stores, the other finds and retrieves.

The PostgreSQL server is a private cluster this test session starts (``initdb`` and
``pg_ctl`` on a free loopback port, as ``nobody`` when the tests run as root; see
``tests/pacs/conftest.py``) and removes at the end. Without the PostgreSQL server
binaries or the psycopg driver the test is skipped, saying which is missing -- and
fails under ``DICOMNET_REQUIRE_PEERS=1``, as in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomnet.contrib.receive import make_storage_ae

from ..pacs.conftest import PgCluster
from .conftest import (
    PATIENT_FIND,
    STUDY_MOVE,
    MakeSCU,
    StartServe,
    associate,
    find,
    get,
    instances,
    query,
    store,
)

pytestmark = [pytest.mark.leakcheck, pytest.mark.timeout(180)]


def test_two_servers_share_one_postgresql_index(
    pg_cluster: PgCluster, start_serve: StartServe, make_scu: MakeSCU, tmp_path: Path
) -> None:
    # libpq's spelling of the URL: dicomnet serve uses psycopg for it
    url = pg_cluster.create_schema("serve_shared").replace("postgresql+psycopg://", "postgresql://")
    storage = tmp_path / "pacs"
    storage.mkdir()
    # the second server reaches the same folder by another path, as another machine
    # mounting the shared folder elsewhere would: paths in the index are relative to it
    elsewhere = tmp_path / "mnt"
    elsewhere.symlink_to(storage, target_is_directory=True)
    dest_folder = tmp_path / "dest"
    dest_folder.mkdir()
    dest_ae, _ = make_storage_ae(dest_folder, ae_title="DEST")
    dest = dest_ae.start_server(("127.0.0.1", 0), block=False)
    assert dest is not None
    try:
        common = ["--port", "0", "--bind", "127.0.0.1", "--db", url]
        one = start_serve(*common, "--aet", "PACS", "--dir", str(storage))
        two = start_serve(
            *common, "--aet", "PACS", "--dir", str(elsewhere),
            "--move-dest", f"DEST=127.0.0.1:{dest.server_address[1]}",
        )  # fmt: skip
        assert "index postgresql+psycopg://postgres@127.0.0.1" in one.stderr

        datasets = instances()
        scu = make_scu()
        assert store(scu, one.host, one.port, datasets[:6]) == [0] * 6  # patient P1
        assert store(scu, two.host, two.port, datasets[6:]) == [0] * 5  # patients P2, P3

        # each finds what the other stored
        for server in (one, two):
            found, final = find(
                scu, server.host, server.port,
                query("PATIENT", PatientID="", NumberOfPatientRelatedInstances=""), PATIENT_FIND,
            )  # fmt: skip
            assert final.Status == 0
            assert sorted((ds.PatientID, ds.NumberOfPatientRelatedInstances) for ds in found) == [
                ("P1", 6), ("P2_%", 3), ("P3", 2)
            ]

        # the second retrieves, with C-GET, what the first stored ...
        received, final = get(scu, two.host, two.port, query("STUDY", StudyInstanceUID="1.2.3.1"))
        assert final.Status == 0
        sent = {ds.SOPInstanceUID: ds for ds in datasets}
        assert sorted(ds.SOPInstanceUID for ds, _, _ in received) == sorted(
            uid for uid in sent if uid.startswith("1.2.3.1.")
        )
        for ds, _, _ in received:
            assert ds.PixelData == sent[ds.SOPInstanceUID].PixelData
        # ... and with C-MOVE
        assoc = associate(scu, two.host, two.port)
        responses = list(assoc.send_c_move(query("STUDY", StudyInstanceUID="1.2.3.2"), "DEST",
                                           STUDY_MOVE))
        assoc.release()
        assert responses[-1][0].Status == 0
        assert [p.name for p in dest_folder.iterdir()] == ["1.2.3.2.1.1.dcm"]

        # an instance stored again through the other server replaces the first copy
        changed = datasets[0]
        changed.SeriesDescription = "stored again"
        assert store(scu, two.host, two.port, [changed]) == [0]
        found, _ = find(scu, one.host, one.port, query(
            "SERIES", StudyInstanceUID="1.2.3.1", SeriesInstanceUID="1.2.3.1.1",
            SeriesDescription="",
        ))  # fmt: skip
        assert [ds.SeriesDescription for ds in found] == ["stored again"]
        assert len(list(storage.rglob("*.dcm"))) == 11

        assert one.stop() == 0
        assert two.stop() == 0
    finally:
        dest_ae.shutdown()
