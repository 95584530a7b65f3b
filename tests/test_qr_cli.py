"""``dicomnet find``, ``get`` and ``move`` against in-process dicomnet SCPs on free ports.

Key parsing and the JSON output are tested as functions; the commands run
in-process through :class:`click.testing.CliRunner` (one through the console
script in a subprocess), against SCPs from conftest's ``make_scp`` with
``EVT_C_FIND``/``EVT_C_GET``/``EVT_C_MOVE`` handlers. Leak-checked: no thread
or descriptor may outlive a test.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from dicomnet import evt
from dicomnet.contrib.cli import main
from dicomnet.contrib.qr_cli import InvalidKey, identifier_to_json, parse_key, parse_keys
from dicomnet.sop_class import (
    CTImageStorage,
    ModalityWorklistInformationModelFind,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

pytestmark = pytest.mark.leakcheck

CT = str(CTImageStorage)
MR = str(MRImageStorage)
STUDY_FIND = str(StudyRootQueryRetrieveInformationModelFind)
STUDY_GET = str(StudyRootQueryRetrieveInformationModelGet)
STUDY_MOVE = str(StudyRootQueryRetrieveInformationModelMove)
PATIENT_FIND = str(PatientRootQueryRetrieveInformationModelFind)
PATIENT_GET = str(PatientRootQueryRetrieveInformationModelGet)
PATIENT_MOVE = str(PatientRootQueryRetrieveInformationModelMove)
WORKLIST = str(ModalityWorklistInformationModelFind)
QR_MODELS = [STUDY_FIND, STUDY_GET, STUDY_MOVE, PATIENT_FIND, PATIENT_GET, PATIENT_MOVE]
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"


def run(*args: str | int) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def instance(sop_class: str = CT, number: int = 1) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = STUDY_UID + ".1"
    ds.PatientID = "PAT1"
    ds.PatientName = "Doe^Jane"
    ds.Modality = "CT" if sop_class == CT else "MR"
    ds.InstanceNumber = number
    return ds


def study() -> list[Dataset]:
    return [instance(CT, n) for n in range(3)] + [instance(MR, n) for n in range(3, 5)]


# -- keys -------------------------------------------------------------------------------------


def test_keyword_and_tag_keys() -> None:
    ds = parse_keys(
        ["PatientName=Doe^J*", "0010,0020=PAT1", "(0008,0061)=CT\\MR", "StudyDate", "Rows=512"],
        "STUDY",
    )
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.PatientName == "Doe^J*"
    assert ds.PatientID == "PAT1"
    assert list(ds.ModalitiesInStudy) == ["CT", "MR"]
    assert ds["StudyDate"].value in (None, "")  # a return key
    assert ds.Rows == 512
    assert "SpecificCharacterSet" not in ds


def test_a_key_given_twice_keeps_the_last_value() -> None:
    assert parse_keys(["PatientID=A", "PatientID=B"]).PatientID == "B"


def test_single_valued_vrs_keep_their_backslashes() -> None:
    ds = parse_key("StudyComments=a\\b")  # LT
    assert ds.StudyComments == "a\\b"


def test_sequence_paths() -> None:
    ds = parse_keys(
        [
            "ScheduledProcedureStepSequence[0].Modality=CT",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20240101-",
            "ReferencedStudySequence",
            "RequestedProcedureCodeSequence[1].CodeValue=X",
            "0040,0275[0].(0040,0009)=SPS1",
        ]
    )
    sps = ds.ScheduledProcedureStepSequence
    assert len(sps) == 1  # no index means item 0
    assert sps[0].Modality == "CT"
    assert sps[0]["ScheduledStationAETitle"].value in (None, "")
    assert sps[0].ScheduledProcedureStepStartDate == "20240101-"
    assert ds["ReferencedStudySequence"].VR == "SQ"
    assert len(ds.ReferencedStudySequence) == 0  # universal match
    assert len(ds.RequestedProcedureCodeSequence) == 2
    assert ds.RequestedProcedureCodeSequence[1].CodeValue == "X"
    assert ds.RequestAttributesSequence[0].ScheduledProcedureStepID == "SPS1"


def test_private_and_unknown_tags() -> None:
    ds = parse_keys(["0009,0010=ACME 1.0", "0009,1001=secret", "0009,1002"])
    assert ds[Tag(0x0009, 0x0010)].VR == "LO"
    assert ds[Tag(0x0009, 0x0010)].value == "ACME 1.0"
    assert ds[Tag(0x0009, 0x1001)].VR == "UN"
    assert ds[Tag(0x0009, 0x1001)].value == b"secret"


def test_non_ascii_values_get_utf8() -> None:
    assert parse_keys(["PatientName=Müller*"]).SpecificCharacterSet == "ISO_IR 192"
    given = parse_keys(["SpecificCharacterSet=ISO_IR 100", "PatientName=Müller*"])
    assert given.SpecificCharacterSet == "ISO_IR 100"


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("NoSuchKeyword=1", "not a DICOM keyword"),
        ("0010,001=1", "neither a keyword nor a tag"),
        ("=value", "no attribute"),
        ("PatientName[0].PatientID=1", "not a sequence"),
        ("ScheduledProcedureStepSequence=CT", "a sequence takes no value"),
        ("ScheduledProcedureStepSequence..Modality", "no attribute"),
        ("Rows=big", "not a valid US value"),
    ],
)
def test_invalid_keys(key: str, why: str) -> None:
    with pytest.raises(InvalidKey, match=why):
        parse_keys([key])


def test_level_and_key_must_agree() -> None:
    assert parse_keys(["QueryRetrieveLevel=STUDY"], "STUDY").QueryRetrieveLevel == "STUDY"
    with pytest.raises(InvalidKey, match="contradicts"):
        parse_keys(["QueryRetrieveLevel=SERIES"], "STUDY")


# -- JSON -------------------------------------------------------------------------------------


def test_identifier_to_json() -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = "Doe^Jane"
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.NumberOfStudyRelatedInstances = 5
    ds.StudyDescription = ""
    item = Dataset()
    item.Modality = "CT"
    item.ScheduledStationAETitle = "CT1"
    ds.ScheduledProcedureStepSequence = DicomSequence([item])
    ds.add_new(0x00091001, "UN", b"ACME\x00")
    ds.add_new(0x00091002, "UN", b"\x01\x02\xff")
    ds.add_new(0x00091003, "LO", "private text")
    ds.FrameIncrementPointer = [0x00100010, 0x00100020]  # AT
    assert identifier_to_json(ds) == {
        "QueryRetrieveLevel": "STUDY",
        "ModalitiesInStudy": "CT\\MR",
        "StudyDescription": "",
        "0009,1001": "ACME",
        "0009,1002": "AQL/",
        "0009,1003": "private text",
        "PatientName": "Doe^Jane",
        "NumberOfStudyRelatedInstances": "5",
        "FrameIncrementPointer": "0010,0010\\0010,0020",
        "ScheduledProcedureStepSequence": [{"Modality": "CT", "ScheduledStationAETitle": "CT1"}],
    }


# -- SCPs -------------------------------------------------------------------------------------


class QRSCP:
    """A Query/Retrieve SCP: records the identifiers; serves ``self.instances``."""

    def __init__(self, make_scp: Any, **options: Any) -> None:
        self.make_scp = make_scp
        self.instances = study()
        self.finds: list[tuple[str, Dataset]] = []
        self.gets: list[Dataset] = []
        self.moves: list[tuple[str, Dataset]] = []
        self.proposed: list[list[str]] = []
        self.options = options

    def start(
        self,
        *,
        contexts: list[str] | None = None,
        find_status: int = 0x0000,
        sop_classes_in_study: bool = True,
        destinations: dict[str, Any] | None = None,
        abort: bool = False,
        ae_title: str = "ANY-SCP",
        ssl_context: Any = None,
    ) -> int:
        def on_find(event: Any) -> Any:
            identifier = event.identifier
            self.finds.append((str(event.context.abstract_syntax), identifier))
            if abort:
                event.assoc.abort()
                return
            for n in range(2):
                match = Dataset()
                match.QueryRetrieveLevel = identifier.get("QueryRetrieveLevel", "")
                match.PatientName = "Müller^Jürgen" if n else "Doe^Jane"
                match.SpecificCharacterSet = "ISO_IR 192"
                match.StudyInstanceUID = STUDY_UID
                match.ModalitiesInStudy = ["CT", "MR"]
                if sop_classes_in_study and "SOPClassesInStudy" in identifier:
                    match.SOPClassesInStudy = [CT, MR]
                if "ScheduledProcedureStepSequence" in identifier:
                    item = Dataset()
                    item.Modality = "CT"
                    item.ScheduledStationAETitle = f"CT{n}"
                    match.ScheduledProcedureStepSequence = DicomSequence([item])
                yield 0xFF00, match
            if find_status:
                yield find_status, None

        def on_get(event: Any) -> Any:
            self.gets.append(event.identifier)
            self.proposed.append(
                [str(cx.abstract_syntax) for cx in event.assoc.accepted_contexts if cx.as_scu]
            )
            yield len(self.instances)
            for ds in self.instances:
                yield 0xFF00, ds

        def on_move(event: Any) -> Any:
            self.moves.append((event.move_destination, event.identifier))
            if event.move_destination not in (destinations or {}):
                yield None, None  # unknown to us too
                return
            yield len(self.instances)
            for ds in self.instances:
                yield 0xFF00, ds

        roles = [(uid, {"scu_role": False, "scp_role": True}) for uid in (CT, MR)]

        def configure(ae: Any) -> None:
            for uid, kwargs in roles:
                ae.add_supported_context(uid, **kwargs)

        scp = self.make_scp(
            ae_title,
            contexts=contexts if contexts is not None else [*QR_MODELS, WORKLIST],
            handlers=[
                (evt.EVT_C_FIND, on_find),
                (evt.EVT_C_GET, on_get),
                (evt.EVT_C_MOVE, on_move),
            ],
            configure=configure,
            ssl_context=ssl_context,
            move_destinations=destinations or {},
        )
        return int(scp.port)


@pytest.fixture
def qr(make_scp: Any) -> QRSCP:
    return QRSCP(make_scp)


class StoreSCP:
    """A move destination recording each C-STORE."""

    def __init__(self, make_scp: Any, title: str = "DEST", refuse: bool = False) -> None:
        self.received: list[Dataset] = []
        self.originators: list[tuple[str, int]] = []

        def on_store(event: Any) -> int:
            self.received.append(event.dataset)
            request = event.request
            self.originators.append(
                (request.MoveOriginatorApplicationEntityTitle, request.MoveOriginatorMessageID)
            )
            return 0xA700 if refuse else 0x0000

        self.port = int(
            make_scp(title, contexts=[CT, MR], handlers=[(evt.EVT_C_STORE, on_store)]).port
        )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# -- find -------------------------------------------------------------------------------------


def test_find_prints_one_json_object_per_match(qr: QRSCP) -> None:
    port = qr.start()
    result = run(
        "find", "127.0.0.1", port, "-m", "study", "-k", "PatientName=Doe*",
        "-k", "StudyInstanceUID", "-k", "ModalitiesInStudy",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    lines = json_lines(result.stdout)
    assert lines == [
        {
            "SpecificCharacterSet": "ISO_IR 192",
            "QueryRetrieveLevel": "STUDY",
            "ModalitiesInStudy": "CT\\MR",
            "PatientName": name,
            "StudyInstanceUID": STUDY_UID,
        }
        for name in ("Doe^Jane", "Müller^Jürgen")
    ]
    [(model, identifier)] = qr.finds
    assert model == STUDY_FIND
    assert identifier.QueryRetrieveLevel == "STUDY"
    assert identifier.PatientName == "Doe*"
    assert identifier["StudyInstanceUID"].value in ("", None)


def test_find_patient_root_defaults_to_the_patient_level(qr: QRSCP) -> None:
    port = qr.start()
    result = run("find", "127.0.0.1", port, "-m", "patient", "-k", "PatientID=P*")
    assert result.exit_code == 0, result.stderr
    [(model, identifier)] = qr.finds
    assert (model, identifier.QueryRetrieveLevel) == (PATIENT_FIND, "PATIENT")


def test_find_worklist_with_sequence_keys(qr: QRSCP) -> None:
    port = qr.start()
    result = run(
        "find", "127.0.0.1", port, "-m", "worklist",
        "-k", "ScheduledProcedureStepSequence[0].Modality=CT",
        "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
        "-k", "PatientName",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [(model, identifier)] = qr.finds
    assert model == WORKLIST
    assert "QueryRetrieveLevel" not in identifier
    assert identifier.ScheduledProcedureStepSequence[0].Modality == "CT"
    lines = json_lines(result.stdout)
    assert [line["ScheduledProcedureStepSequence"] for line in lines] == [
        [{"Modality": "CT", "ScheduledStationAETitle": "CT0"}],
        [{"Modality": "CT", "ScheduledStationAETitle": "CT1"}],
    ]


def test_find_verbose_counts_on_stderr(qr: QRSCP) -> None:
    port = qr.start()
    result = run("find", "-v", "127.0.0.1", port, "-m", "study", "-k", "PatientID")
    assert result.exit_code == 0
    assert "C-FIND: 2 matches, 0x0000 Success" in result.stderr
    assert len(json_lines(result.stdout)) == 2


def test_find_failure_status_exits_1_after_the_matches(qr: QRSCP) -> None:
    port = qr.start(find_status=0xA700)
    result = run("find", "127.0.0.1", port, "-m", "study", "-k", "PatientID")
    assert result.exit_code == 1
    assert len(json_lines(result.stdout)) == 2
    assert "0xA700" in result.stderr and "after 2 matches" in result.stderr


def test_find_model_not_accepted_exits_1(qr: QRSCP) -> None:
    port = qr.start(contexts=[STUDY_FIND])
    result = run("find", "127.0.0.1", port, "-m", "worklist", "-k", "PatientName")
    assert result.exit_code == 1
    assert "not the Modality Worklist information model" in result.stderr
    assert result.stdout == ""


def test_find_peer_aborting_exits_1(qr: QRSCP) -> None:
    port = qr.start(abort=True)
    result = run("find", "--timeout", 5, "127.0.0.1", port, "-m", "study")
    assert result.exit_code == 1
    assert "no valid response" in result.stderr


def test_find_nothing_listening_exits_2() -> None:
    result = run("find", "127.0.0.1", free_port(), "-m", "study")
    assert result.exit_code == 2
    assert "No association" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["find", "127.0.0.1", "104"],  # no -m
        ["find", "127.0.0.1", "104", "-m", "series"],
        ["find", "127.0.0.1", "104", "-m", "study", "-k", "NoSuchKeyword"],
        ["find", "127.0.0.1", "104", "-m", "study", "-L", "PATIENT"],
        ["find", "127.0.0.1", "104", "-m", "worklist", "-L", "STUDY"],
        ["find", "127.0.0.1", "104", "-m", "study", "-k", "QueryRetrieveLevel=IMAGE"],
        ["get", "127.0.0.1", "104", "-m", "study", "-L", "STUDY"],  # no -o
        ["get", "127.0.0.1", "104", "-m", "worklist", "-L", "STUDY", "-o", "x"],
        ["get", "127.0.0.1", "104", "-m", "study", "-o", "x"],  # no -L
        ["move", "127.0.0.1", "104", "-m", "study", "-L", "STUDY"],  # no -d
        ["move", "127.0.0.1", "104", "-m", "study", "-L", "STUDY", "-D", "WAY-TOO-LONG-AE-TITLE"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""


def test_find_through_the_console_script(qr: QRSCP) -> None:
    port = qr.start()
    done = subprocess.run(
        [sys.executable, "-m", "dicomnet.contrib.cli", "find", "127.0.0.1", str(port),
         "-m", "study", "-k", "PatientName", "-v"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [line["PatientName"] for line in json_lines(done.stdout)] == [
        "Doe^Jane",
        "Müller^Jürgen",
    ]
    assert "C-FIND: 2 matches" in done.stderr


# -- get --------------------------------------------------------------------------------------


def written(directory: Path) -> dict[str, Dataset]:
    return {path.name: dcmread(path) for path in sorted(directory.iterdir())}


def test_get_writes_part10_files_proposing_what_the_find_found(
    qr: QRSCP, tmp_path: Path
) -> None:
    port = qr.start()
    out = tmp_path / "out"
    result = run(
        "get", "127.0.0.1", port, "-m", "study", "-L", "STUDY",
        "-k", f"StudyInstanceUID={STUDY_UID}", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    files = written(out)
    assert sorted(files) == sorted(f"{ds.SOPInstanceUID}.dcm" for ds in qr.instances)
    for ds in qr.instances:
        stored = files[f"{ds.SOPInstanceUID}.dcm"]
        assert stored.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert stored.PatientName == "Doe^Jane"
        assert stored.InstanceNumber == ds.InstanceNumber
    # the discovery query, then the C-GET proposing exactly CT and MR with the SCP role
    [(model, discovery)] = qr.finds
    assert model == STUDY_FIND
    assert discovery.StudyInstanceUID == STUDY_UID
    assert "SOPClassesInStudy" in discovery
    assert qr.gets[0].StudyInstanceUID == STUDY_UID
    assert qr.proposed == [[CT, MR]]


def test_get_falls_back_to_the_standard_list(qr: QRSCP, tmp_path: Path) -> None:
    port = qr.start(sop_classes_in_study=False)
    result = run(
        "get", "-v", "127.0.0.1", port, "-m", "patient", "-L", "PATIENT", "-k", "PatientID=PAT1",
        "-o", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(written(tmp_path)) == 5
    [(model, discovery)] = qr.finds
    assert (model, discovery.QueryRetrieveLevel, discovery.PatientID) == (
        PATIENT_FIND, "STUDY", "PAT1",
    )  # fmt: skip
    assert "standard storage SOP classes" in result.stderr
    # the SCP accepted the SCP role for the two it has of the standard list
    assert qr.proposed == [[CT, MR]]


def test_get_without_find(qr: QRSCP, tmp_path: Path) -> None:
    port = qr.start(contexts=[STUDY_GET])  # no C-FIND at all
    result = run(
        "get", "127.0.0.1", port, "-m", "study", "-L", "SERIES", "--no-find",
        "-k", f"StudyInstanceUID={STUDY_UID}", "-k", f"SeriesInstanceUID={STUDY_UID}.1",
        "-o", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert qr.finds == []
    assert len(written(tmp_path)) == 5
    assert qr.gets[0].QueryRetrieveLevel == "SERIES"


def test_get_when_the_peer_refuses_the_find(qr: QRSCP, tmp_path: Path) -> None:
    port = qr.start(contexts=[STUDY_GET])
    result = run("get", "127.0.0.1", port, "-m", "study", "-L", "STUDY", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert len(written(tmp_path)) == 5


def test_get_image_level_asks_for_sop_class_uid(qr: QRSCP, tmp_path: Path) -> None:
    port = qr.start()
    uid = qr.instances[0].SOPInstanceUID
    result = run(
        "get", "127.0.0.1", port, "-m", "study", "-L", "IMAGE", "-k", f"SOPInstanceUID={uid}",
        "-o", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [(_, discovery)] = qr.finds
    assert discovery.QueryRetrieveLevel == "IMAGE"
    assert "SOPClassUID" in discovery


def test_get_failed_suboperations_exit_1_and_are_listed(qr: QRSCP, tmp_path: Path) -> None:
    odd = instance("1.2.840.10008.5.1.4.1.1.7")  # Secondary Capture: not proposed
    port = qr.start()
    qr.instances.append(odd)
    result = run(
        "get", "127.0.0.1", port, "-m", "study", "-L", "STUDY",
        "-k", f"StudyInstanceUID={STUDY_UID}", "-o", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "0xB000 Warning" in result.stderr
    assert odd.SOPInstanceUID in result.stderr
    assert len(written(tmp_path)) == 5


def test_get_verbose_shows_the_counts(qr: QRSCP, tmp_path: Path) -> None:
    port = qr.start()
    result = run("get", "-v", "127.0.0.1", port, "-m", "study", "-L", "STUDY", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "C-GET: 4 remaining, 1 completed, 0 failed, 0 warning" in result.stderr
    assert re.search(r"5 completed, 0 failed, 0 warning; 5 files written to", result.stderr)


def test_get_leaves_no_temporary_file(qr: QRSCP, tmp_path: Path) -> None:
    port = qr.start()
    run("get", "127.0.0.1", port, "-m", "study", "-L", "STUDY", "-o", tmp_path)
    assert all(path.suffix == ".dcm" for path in tmp_path.iterdir())


def test_get_nothing_listening_exits_2(tmp_path: Path) -> None:
    result = run("get", "127.0.0.1", free_port(), "-m", "study", "-L", "STUDY", "-o", tmp_path)
    assert result.exit_code == 2
    assert "No association" in result.stderr


def test_get_over_mutual_tls(qr: QRSCP, tmp_path: Path) -> None:
    from tests.interop.peers import make_tls_files

    tls = make_tls_files(tmp_path / "tls")
    port = qr.start(ssl_context=tls.server_context())
    out = tmp_path / "out"
    result = run(
        "get", "127.0.0.1", port, "-m", "study", "-L", "STUDY", "-o", out,
        "--tls-ca", tls.ca_cert, "--tls-cert", tls.client_cert, "--tls-key", tls.client_key,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(written(out)) == 5
    assert len(qr.finds) == 1  # the discovery C-FIND went over TLS too
    # without a client certificate the server refuses the handshake: no association
    refused = run(
        "get", "127.0.0.1", port, "-m", "study", "-L", "STUDY", "-o", out,
        "--tls-ca", tls.ca_cert,
    )  # fmt: skip
    assert refused.exit_code == 2


@pytest.mark.parametrize("command", ["find", "get", "move"])
def test_interrupt_aborts_and_exits_130(
    qr: QRSCP, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    from dicomnet.association import Association

    def interrupted(self: Association, *args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    port = qr.start()
    monkeypatch.setattr(Association, f"send_c_{command}", interrupted)
    extra = {"find": [], "get": ["-L", "STUDY", "-o", tmp_path], "move": ["-L", "STUDY", "-d", "X"]}
    result = run(command, "127.0.0.1", port, "-m", "study", *extra[command])
    assert result.exit_code == 130
    assert "Interrupted" in result.stderr


# -- move -------------------------------------------------------------------------------------


def test_move_to_a_destination(qr: QRSCP, make_scp: Any) -> None:
    dest = StoreSCP(make_scp)
    port = qr.start(destinations={"DEST": ("127.0.0.1", dest.port)})
    result = run(
        "move", "-v", "--aet", "MOVER", "127.0.0.1", port, "-m", "study", "-L", "STUDY",
        "-k", f"StudyInstanceUID={STUDY_UID}", "-d", "DEST",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert sorted(ds.SOPInstanceUID for ds in dest.received) == sorted(
        ds.SOPInstanceUID for ds in qr.instances
    )
    assert set(dest.originators) == {("MOVER", 1)}
    [(destination, identifier)] = qr.moves
    assert (destination, identifier.StudyInstanceUID) == ("DEST", STUDY_UID)
    assert "C-MOVE: 0x0000 Success; 5 completed, 0 failed, 0 warning to 'DEST'" in result.stderr


@pytest.mark.parametrize("dest_option", ["-D", "--dest"])
def test_move_destination_aliases_and_long_debug(
    qr: QRSCP, make_scp: Any, dest_option: str
) -> None:
    # the form is -d DEST_AE; -D and --dest say the same, and --debug still dumps
    dest = StoreSCP(make_scp)
    port = qr.start(destinations={"DEST": ("127.0.0.1", dest.port)})
    result = run(
        "move", "--debug", "127.0.0.1", port, "-m", "study", "-L", "STUDY",
        "-k", f"StudyInstanceUID={STUDY_UID}", dest_option, "DEST",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(dest.received) == 5
    assert "D:" in result.stderr  # the DEBUG dumps


def test_move_patient_root(qr: QRSCP, make_scp: Any) -> None:
    dest = StoreSCP(make_scp)
    port = qr.start(destinations={"DEST": ("127.0.0.1", dest.port)})
    result = run(
        "move", "127.0.0.1", port, "-m", "patient", "-L", "PATIENT", "-k", "PatientID=PAT1",
        "-d", "DEST",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(dest.received) == 5


def test_move_unknown_destination_exits_1(qr: QRSCP) -> None:
    port = qr.start()
    result = run("move", "127.0.0.1", port, "-m", "study", "-L", "STUDY", "-d", "NOWHERE")
    assert result.exit_code == 1
    assert "0xA801" in result.stderr
    assert "it does not know the move destination 'NOWHERE'" in result.stderr
    assert "completed" not in result.stderr  # no counts: nothing was started


def test_move_failed_suboperations_exit_1(qr: QRSCP, make_scp: Any) -> None:
    dest = StoreSCP(make_scp, refuse=True)
    port = qr.start(destinations={"DEST": ("127.0.0.1", dest.port)})
    result = run("move", "127.0.0.1", port, "-m", "study", "-L", "STUDY", "-d", "DEST")
    assert result.exit_code == 1
    assert "0xA702" in result.stderr
    assert "5 failed" in result.stderr


def test_move_model_not_accepted_exits_1(qr: QRSCP) -> None:
    port = qr.start(contexts=[STUDY_FIND])
    result = run("move", "127.0.0.1", port, "-m", "study", "-L", "STUDY", "-d", "DEST")
    assert result.exit_code == 1
    assert "not the Study Root C-MOVE information model" in result.stderr


def test_move_nothing_listening_exits_2() -> None:
    result = run("move", "127.0.0.1", free_port(), "-m", "study", "-L", "STUDY", "-d", "X")
    assert result.exit_code == 2


# -- the examples of docs/cli.md --------------------------------------------------------------

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def documented_qr_commands() -> list[list[str]]:
    """The ``dicomnet find/get/move`` lines of the ``sh`` examples in docs/cli.md, split."""
    commands = []
    in_sh = False
    for line in CLI_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_sh = line == "```sh"
        elif in_sh and re.match(r"dicomnet (find|get|move) ", line):
            commands.append(shlex.split(line.split(" | ")[0])[1:])  # without a pipe into jq
    return commands


@pytest.fixture
def doc_peers(qr: QRSCP, make_scp: Any) -> Iterator[dict[str, str]]:
    dest = StoreSCP(make_scp, title="WORKSTATION")
    pacs = qr.start(ae_title="PACS", destinations={"WORKSTATION": ("127.0.0.1", dest.port)})
    yield {"11112": str(pacs)}


def test_the_documentation_has_qr_examples() -> None:
    commands = documented_qr_commands()
    assert {c[0] for c in commands} == {"find", "get", "move"}


@pytest.mark.parametrize("args", documented_qr_commands(), ids=" ".join)
def test_documented_qr_example_runs(
    doc_peers: dict[str, str], args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    local = [
        "127.0.0.1" if arg == "pacs.example.org" else doc_peers.get(arg, arg) for arg in args
    ]
    result = run(*local)
    assert result.exit_code == 0, result.stderr


def test_find_into_a_closed_pipe_cancels_quietly(make_scp: Any) -> None:
    sent: list[int] = []
    ended = threading.Event()

    def on_find(event: Any) -> Any:
        try:
            for n in range(20000):
                match = Dataset()
                match.PatientID = f"P{n:05d}"
                match.StudyInstanceUID = f"{STUDY_UID}.{n}"
                sent.append(n)
                yield 0xFF00, match
        finally:
            ended.set()

    port = make_scp(contexts=[STUDY_FIND], handlers=[(evt.EVT_C_FIND, on_find)]).port
    proc = subprocess.Popen(
        [sys.executable, "-m", "dicomnet.contrib.cli", "find", "127.0.0.1", str(port),
         "-m", "study", "-k", "PatientID"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # what `| head -1` does
    proc.stdout.close()
    try:
        stderr = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        proc.stderr.close()
    assert json.loads(first)["PatientID"] == "P00000"
    assert code == 141, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert ended.wait(10)
    assert len(sent) < 20000  # cancelled, not run to the end
