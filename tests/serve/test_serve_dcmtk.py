"""``dicomnet serve`` with DCMTK's SCUs: storescu stores, findscu queries (both models),
getscu and movescu retrieve (the move destination is a dicomnet receive AE).

Skipped when DCMTK is missing, failed then under ``DICOMNET_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomnet.contrib.receive import make_storage_ae

from ..pacs.conftest import missing, write_part10
from .conftest import MakePacs, instances

pytestmark = [pytest.mark.interop, pytest.mark.leakcheck, pytest.mark.timeout(120)]


def dcmtk(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which(tool)
    if path is None:
        missing(f"DCMTK's {tool} is not installed (apt-get install dcmtk)")
    assert path is not None
    return subprocess.run(
        [path, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},  # else 40 ms stalls per exchange
        check=False,
    )


def test_dcmtk_scus(make_pacs: MakePacs, tmp_path: Path) -> None:
    folder = tmp_path / "dest"
    folder.mkdir()
    dest_ae, _ = make_storage_ae(folder, ae_title="STORESCP")
    dest = dest_ae.start_server(("127.0.0.1", 0), block=False)
    assert dest is not None
    try:
        server = make_pacs(
            fsync=False, move_destinations={"STORESCP": ("127.0.0.1", dest.server_address[1])}
        )
        peer = ["-aet", "DCMTK", "-aec", "PACS", "127.0.0.1", str(server.port)]
        files = [
            str(write_part10(ds, tmp_path / "in" / f"{n}.dcm"))
            for n, ds in enumerate(instances())
        ]
        stored = dcmtk("storescu", *peer, *files, cwd=tmp_path)
        assert stored.returncode == 0, stored.stderr
        assert server.index.counts()["instances"] == 11

        # Study Root, STUDY level
        (tmp_path / "studies").mkdir()
        found = dcmtk(
            "findscu", "-S", "-X", "-od", "studies",
            "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "-k", "PatientName",
            "-k", "ModalitiesInStudy", *peer, cwd=tmp_path,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        studies = [dcmread(p) for p in sorted((tmp_path / "studies").iterdir())]
        assert sorted(ds.StudyInstanceUID for ds in studies) == [
            "1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"
        ]
        assert {ds.RetrieveAETitle for ds in studies} == {"PACS"}

        # Patient Root, SERIES level under one patient and study
        (tmp_path / "series").mkdir()
        found = dcmtk(
            "findscu", "-P", "-X", "-od", "series",
            "-k", "QueryRetrieveLevel=SERIES", "-k", "PatientID=P1",
            "-k", "StudyInstanceUID=1.2.3.1", "-k", "SeriesInstanceUID", "-k", "Modality=MR",
            *peer, cwd=tmp_path,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        [series] = [dcmread(p) for p in (tmp_path / "series").iterdir()]
        assert (series.SeriesInstanceUID, series.PatientID) == ("1.2.3.1.2", "P1")

        # C-GET of a study
        (tmp_path / "got").mkdir()
        got = dcmtk(
            "getscu", "-S", "-od", "got",
            "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3.1", *peer,
            cwd=tmp_path,
        )  # fmt: skip
        assert got.returncode == 0, got.stderr
        assert len(list((tmp_path / "got").iterdir())) == 5

        # C-MOVE of another study to the receive AE
        moved = dcmtk(
            "movescu", "-S", "-aem", "STORESCP",
            "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3.3", *peer,
            cwd=tmp_path,
        )  # fmt: skip
        assert moved.returncode == 0, moved.stderr
        assert sorted(p.name for p in folder.iterdir()) == [
            "1.2.3.3.1.1.dcm", "1.2.3.3.1.2.dcm", "1.2.3.3.2.1.dcm"
        ]
        unknown = dcmtk(
            "movescu", "-S", "-aem", "NOBODY",
            "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3.3", *peer,
            cwd=tmp_path,
        )  # fmt: skip
        assert "MoveDestinationUnknown" in unknown.stderr  # A801H
    finally:
        dest_ae.shutdown()
