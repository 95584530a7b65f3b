"""Query/Retrieve with real peers: ``dicomnet find/get/move`` (the CLI, in subprocesses)
against DCMTK's ``dcmqrscp`` and ``wlmscpfs`` and against Orthanc; C-MOVE from each of
them to ``dicomnet receive`` (PS3.4 C, K; PS3.7 9.1.2-9.1.4).

Every test loads a synthetic study of its own (:func:`tests.interop.qr_peers.make_study`)
and checks what arrives -- in ``get``'s output folder or the receiver's -- against the
files it loaded, attribute for attribute. dcmqrscp and wlmscpfs run per test (they
start in milliseconds); one Orthanc serves the whole module (it takes seconds to stop),
which is why its fixture is called ``orthanc_factory`` (see conftest: no leak check for
the tests sharing it).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.interop.peers import Dcmtk, PeerGroup, describe, run_client, watch
from tests.interop.qr_peers import (
    QROrthanc,
    assert_same_instances,
    dicomnet,
    json_lines,
    make_study,
    make_worklist,
    start_dcmqrscp,
    start_receiver,
    start_serve,
    start_storescp,
    start_wlmscpfs,
)

pytestmark = pytest.mark.interop

LOCALHOST = "127.0.0.1"


# -- DCMTK dcmqrscp ---------------------------------------------------------------------------


def test_find_studies_in_dcmqrscp(peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "dq-find")
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, study.paths)
    result = dicomnet(
        "find", LOCALHOST, port, "--aec", "QRSCP", "-m", "study",
        "-k", f"PatientID={study.patient_id}", "-k", "PatientName", "-k", "StudyInstanceUID",
        "-k", "StudyDate",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    [match] = json_lines(result.stdout)
    assert match["QueryRetrieveLevel"] == "STUDY"
    assert (match["StudyInstanceUID"], match["PatientName"], match["StudyDate"]) == (
        study.study_uid, study.patient_name, "20240105",
    )  # fmt: skip


def test_find_images_in_dcmqrscp_patient_root(
    peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "src", "dq-images", ct=3, mr=1)
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, study.paths)
    ct_series = study.series_uids[0]
    result = dicomnet(
        "find", LOCALHOST, port, "--aec", "QRSCP", "-m", "patient", "-L", "IMAGE",
        "-k", f"PatientID={study.patient_id}", "-k", f"StudyInstanceUID={study.study_uid}",
        "-k", f"SeriesInstanceUID={ct_series}", "-k", "SOPInstanceUID",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    found = sorted(match["SOPInstanceUID"] for match in json_lines(result.stdout))
    assert found == sorted(uid for uid, s in study.series_of.items() if s == ct_series)


def test_find_without_match_in_dcmqrscp(peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "dq-none")
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, study.paths)
    result = dicomnet(
        "find", LOCALHOST, port, "--aec", "QRSCP", "-m", "study", "-k", "PatientID=NOBODY"
    )
    assert result.returncode == 0, describe(result)
    assert result.stdout == ""


def test_get_study_from_dcmqrscp(peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "dq-get")
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, study.paths)
    out = tmp_path / "out"
    result = dicomnet(
        "get", LOCALHOST, port, "--aec", "QRSCP", "-v", "-m", "study", "-L", "STUDY",
        "-k", f"StudyInstanceUID={study.study_uid}", "-o", out,
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(out, study.paths)
    # dcmqrscp does not return SOP Classes in Study: the standard list was proposed
    assert "standard storage SOP classes" in result.stderr


def test_get_series_from_dcmqrscp(peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "dq-series", ct=2, mr=2)
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, study.paths)
    out = tmp_path / "out"
    mr_series = study.series_uids[1]
    result = dicomnet(
        "get", LOCALHOST, port, "--aec", "QRSCP", "-m", "patient", "-L", "SERIES",
        "-k", f"PatientID={study.patient_id}", "-k", f"StudyInstanceUID={study.study_uid}",
        "-k", f"SeriesInstanceUID={mr_series}", "-o", out,
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(out, study.in_series(mr_series))


def test_move_from_dcmqrscp_to_dicomnet_receive(
    peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "src", "dq-move", ct=3, mr=2)
    incoming = tmp_path / "incoming"
    _, receiver = start_receiver(peers, incoming, "DEST")
    _, port = start_dcmqrscp(
        peers, dcmtk, tmp_path, study.paths, destinations={"DEST": (LOCALHOST, receiver)}
    )
    result = dicomnet(
        "move", LOCALHOST, port, "--aec", "QRSCP", "-v", "-m", "study", "-L", "STUDY",
        "-k", f"StudyInstanceUID={study.study_uid}", "-d", "DEST",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert "5 completed, 0 failed, 0 warning to 'DEST'" in result.stderr
    assert_same_instances(incoming, study.paths)


def test_move_patient_from_dcmqrscp(peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", "dq-move-patient")
    incoming = tmp_path / "incoming"
    _, receiver = start_receiver(peers, incoming, "DEST")
    _, port = start_dcmqrscp(
        peers, dcmtk, tmp_path, study.paths, destinations={"DEST": (LOCALHOST, receiver)}
    )
    result = dicomnet(
        "move", LOCALHOST, port, "--aec", "QRSCP", "-m", "patient", "-L", "PATIENT",
        "-k", f"PatientID={study.patient_id}", "-d", "DEST",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(incoming, study.paths)


def test_move_to_a_destination_dcmqrscp_does_not_know(
    peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "src", "dq-move-unknown")
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, study.paths)
    result = dicomnet(
        "move", LOCALHOST, port, "--aec", "QRSCP", "-m", "study", "-L", "STUDY",
        "-k", f"StudyInstanceUID={study.study_uid}", "-d", "NOWHERE",
    )  # fmt: skip
    assert result.returncode == 1, describe(result)
    assert "0xA801" in result.stderr


def test_dcmqrscp_rejecting_the_called_ae_title_exits_2(
    peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path
) -> None:
    _, port = start_dcmqrscp(peers, dcmtk, tmp_path, [])
    result = dicomnet("find", LOCALHOST, port, "--aec", "NOT-QRSCP", "-m", "study")
    assert result.returncode == 2, describe(result)
    assert "rejected" in result.stderr


# -- DCMTK wlmscpfs ---------------------------------------------------------------------------


def test_find_worklist_in_wlmscpfs(peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path) -> None:
    items = make_worklist(tmp_path / "worklists" / "WLSCP", "wl", ["CT", "MR", "CT"])
    _, port = start_wlmscpfs(peers, dcmtk, tmp_path / "worklists", "WLSCP")
    result = dicomnet(
        "find", LOCALHOST, port, "--aec", "WLSCP", "-m", "worklist",
        "-k", "ScheduledProcedureStepSequence[0].Modality=CT",
        "-k", "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240501",
        "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
        "-k", "PatientName", "-k", "PatientID", "-k", "AccessionNumber",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    matches = sorted(json_lines(result.stdout), key=lambda m: m["PatientID"])
    expected = [ds for ds in items if ds.ScheduledProcedureStepSequence[0].Modality == "CT"]
    assert [m["PatientID"] for m in matches] == [ds.PatientID for ds in expected]
    assert [m["PatientName"] for m in matches] == [str(ds.PatientName) for ds in expected]
    for match in matches:
        [step] = match["ScheduledProcedureStepSequence"]
        assert step["Modality"] == "CT"
        assert step["ScheduledStationAETitle"] == "CT1"


# -- Orthanc ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qr_orthanc(
    orthanc_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QROrthanc]:
    group = PeerGroup()
    try:
        yield QROrthanc(group, orthanc_binary, tmp_path_factory.mktemp("orthanc-qr"))
    finally:
        group.stop_all()


@pytest.fixture
def orthanc_factory(
    request: pytest.FixtureRequest, qr_orthanc: QROrthanc
) -> Callable[[], QROrthanc]:
    """The module's Orthanc (the name tells conftest not to leak-check its users)."""

    def get() -> QROrthanc:
        watch(request.node, qr_orthanc.proc)
        return qr_orthanc

    return get


def test_find_studies_in_orthanc(
    orthanc_factory: Callable[[], QROrthanc], tmp_path: Path
) -> None:
    orthanc = orthanc_factory()
    study = make_study(tmp_path / "src", "or-find", ct=2, mr=1)
    orthanc.upload(study.paths)
    result = dicomnet(
        "find", LOCALHOST, orthanc.dicom_port, "--aec", QROrthanc.AET, "-m", "study",
        "-k", f"PatientID={study.patient_id}", "-k", "StudyInstanceUID", "-k", "PatientName",
        "-k", "ModalitiesInStudy", "-k", "SOPClassesInStudy",
        "-k", "NumberOfStudyRelatedInstances",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    [match] = json_lines(result.stdout)
    assert match["StudyInstanceUID"] == study.study_uid
    assert match["PatientName"] == study.patient_name
    assert sorted(match["ModalitiesInStudy"].split("\\")) == ["CT", "MR"]
    assert sorted(match["SOPClassesInStudy"].split("\\")) == [
        "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4",
    ]  # fmt: skip
    assert match["NumberOfStudyRelatedInstances"] == "3"


def test_get_study_from_orthanc(orthanc_factory: Callable[[], QROrthanc], tmp_path: Path) -> None:
    orthanc = orthanc_factory()
    study = make_study(tmp_path / "src", "or-get", ct=2, mr=2)
    orthanc.upload(study.paths)
    out = tmp_path / "out"
    result = dicomnet(
        "get", LOCALHOST, orthanc.dicom_port, "--aec", QROrthanc.AET, "-v", "-m", "study",
        "-L", "STUDY", "-k", f"StudyInstanceUID={study.study_uid}", "-o", out,
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(out, study.paths)
    # Orthanc returns SOP Classes in Study: exactly CT and MR were proposed
    assert "Proposing the 2 SOP classes the C-FIND found" in result.stderr
    assert "(3 presentation contexts proposed)" in result.stderr


def test_get_image_from_orthanc(orthanc_factory: Callable[[], QROrthanc], tmp_path: Path) -> None:
    orthanc = orthanc_factory()
    study = make_study(tmp_path / "src", "or-image", ct=2, mr=1)
    orthanc.upload(study.paths)
    sop_uid, path = next(iter(study.files.items()))
    out = tmp_path / "out"
    result = dicomnet(
        "get", LOCALHOST, orthanc.dicom_port, "--aec", QROrthanc.AET, "-m", "study",
        "-L", "IMAGE", "-k", f"StudyInstanceUID={study.study_uid}",
        "-k", f"SeriesInstanceUID={study.series_of[sop_uid]}", "-k", f"SOPInstanceUID={sop_uid}",
        "-o", out,
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(out, [path])


def test_move_from_orthanc_to_dicomnet_receive(
    orthanc_factory: Callable[[], QROrthanc], peers: PeerGroup, tmp_path: Path
) -> None:
    orthanc = orthanc_factory()
    study = make_study(tmp_path / "src", "or-move", ct=3, mr=1)
    orthanc.upload(study.paths)
    incoming = tmp_path / "incoming"
    _, receiver = start_receiver(peers, incoming, "ORMOVEDEST1")
    orthanc.add_modality("ormovedest1", "ORMOVEDEST1", receiver)
    result = dicomnet(
        "move", LOCALHOST, orthanc.dicom_port, "--aec", QROrthanc.AET, "-m", "study",
        "-L", "STUDY", "-k", f"StudyInstanceUID={study.study_uid}", "-d", "ORMOVEDEST1",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(incoming, study.paths)


def test_move_patient_from_orthanc(
    orthanc_factory: Callable[[], QROrthanc], peers: PeerGroup, tmp_path: Path
) -> None:
    orthanc = orthanc_factory()
    study = make_study(tmp_path / "src", "or-move-patient", ct=1, mr=1)
    orthanc.upload(study.paths)
    incoming = tmp_path / "incoming"
    _, receiver = start_receiver(peers, incoming, "ORMOVEDEST2")
    orthanc.add_modality("ormovedest2", "ORMOVEDEST2", receiver)
    result = dicomnet(
        "move", LOCALHOST, orthanc.dicom_port, "--aec", QROrthanc.AET, "-m", "patient",
        "-L", "PATIENT", "-k", f"PatientID={study.patient_id}", "-d", "ORMOVEDEST2",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(incoming, study.paths)


def test_move_to_a_destination_orthanc_does_not_know(
    orthanc_factory: Callable[[], QROrthanc], tmp_path: Path
) -> None:
    orthanc = orthanc_factory()
    study = make_study(tmp_path / "src", "or-move-unknown", ct=1, mr=0)
    orthanc.upload(study.paths)
    result = dicomnet(
        "move", LOCALHOST, orthanc.dicom_port, "--aec", QROrthanc.AET, "-m", "study",
        "-L", "STUDY", "-k", f"StudyInstanceUID={study.study_uid}", "-d", "NOWHERE",
    )  # fmt: skip
    # Orthanc 1.10 answers C000H (Unable to process), not A801H: a failure all the same
    assert result.returncode == 1, describe(result)
    assert "Failure" in result.stderr


# -- DCMTK findscu/getscu/movescu -> dicomnet serve --------------------------------------------


class Served:
    """``dicomnet serve`` holding a study (stored with DCMTK's storescu), with a DCMTK
    storescp as its move destination ``STORESCP`` and a worklist folder."""

    AET = "DNSERVE"

    def __init__(self, peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path, tag: str) -> None:
        self.dcmtk = dcmtk
        self.tmp_path = tmp_path
        self.study = make_study(tmp_path / "src", tag, ct=2, mr=1)
        self.worklists = make_worklist(tmp_path / "worklists", tag, ["CT", "MR", "CT"])
        self.moved = tmp_path / "storescp"
        _, storescp = start_storescp(peers, dcmtk, self.moved)
        _, self.port = start_serve(
            peers, tmp_path / "pacs", self.AET, worklist_dir=tmp_path / "worklists",
            move_destinations={"STORESCP": storescp},
        )  # fmt: skip
        stored = self.dcmtk_tool("storescu", files=self.study.paths)
        assert stored.returncode == 0, describe(stored)

    def dcmtk_tool(
        self, name: str, *options: str | Path, files: Sequence[Path] = (), cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the DCMTK SCU ``name`` against the server: ``name -aec DNSERVE OPTIONS host port
        FILES``."""
        argv = [self.dcmtk.tool(name), "-aec", self.AET, *options, LOCALHOST, self.port, *files]
        return run_client(argv, cwd=cwd)


@pytest.fixture
def served(peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path) -> Served:
    return Served(peers, dcmtk, tmp_path, "served")


def responses(directory: Path) -> list[Dataset]:
    """What ``findscu -X`` extracted (rsp0001.dcm, ...), in order."""
    return [dcmread(path) for path in sorted(directory.glob("rsp*.dcm"))]


def test_findscu_study_root_against_dicomnet_serve(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "find"
    out.mkdir()
    study = served.study
    result = served.dcmtk_tool(
        "findscu", "-S", "-X", "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"PatientID={study.patient_id}", "-k", "StudyInstanceUID", "-k", "PatientName",
        "-k", "NumberOfStudyRelatedInstances", cwd=out,
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    [match] = responses(out)
    assert match.StudyInstanceUID == study.study_uid
    assert match.PatientName == study.patient_name
    assert int(match.NumberOfStudyRelatedInstances) == 3


def test_findscu_patient_root_images_against_dicomnet_serve(
    served: Served, tmp_path: Path
) -> None:
    out = tmp_path / "find"
    out.mkdir()
    study = served.study
    result = served.dcmtk_tool(
        "findscu", "-P", "-X", "-k", "QueryRetrieveLevel=IMAGE",
        "-k", f"PatientID={study.patient_id}", "-k", f"StudyInstanceUID={study.study_uid}",
        "-k", f"SeriesInstanceUID={study.series_uids[0]}", "-k", "SOPInstanceUID", cwd=out,
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    found = sorted(str(ds.SOPInstanceUID) for ds in responses(out))
    assert found == sorted(u for u, s in study.series_of.items() if s == study.series_uids[0])


def test_findscu_worklist_against_dicomnet_serve(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "find"
    out.mkdir()
    result = served.dcmtk_tool(
        "findscu", "-W", "-X", "-k", "ScheduledProcedureStepSequence[0].Modality=CT",
        "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
        "-k", "PatientName", "-k", "PatientID", cwd=out,
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    found = sorted(str(ds.PatientID) for ds in responses(out))
    expected = [
        ds for ds in served.worklists if ds.ScheduledProcedureStepSequence[0].Modality == "CT"
    ]
    assert found == sorted(ds.PatientID for ds in expected)
    for ds in responses(out):
        assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT1"


def test_getscu_against_dicomnet_serve(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "get"
    out.mkdir()
    result = served.dcmtk_tool(
        "getscu", "-S", "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={served.study.study_uid}", "-od", out,
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(out, served.study.paths, named_by_uid=False)


def test_movescu_against_dicomnet_serve(served: Served) -> None:
    result = served.dcmtk_tool(
        "movescu", "-S", "-aem", "STORESCP", "-k", "QueryRetrieveLevel=SERIES",
        "-k", f"StudyInstanceUID={served.study.study_uid}",
        "-k", f"SeriesInstanceUID={served.study.series_uids[0]}",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert_same_instances(
        served.moved, served.study.in_series(served.study.series_uids[0]), named_by_uid=False
    )


def test_movescu_to_an_unknown_destination_of_dicomnet_serve(served: Served) -> None:
    result = served.dcmtk_tool(
        "movescu", "-v", "-S", "-aem", "NOWHERE", "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={served.study.study_uid}",
    )  # fmt: skip
    assert "Refused: MoveDestinationUnknown" in result.stderr, describe(result)  # A801H
    assert not any(served.moved.iterdir())
