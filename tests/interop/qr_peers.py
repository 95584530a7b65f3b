"""Peers and data for the Query/Retrieve interop tests (``test_qr_interop.py``).

* :func:`make_study` writes a small synthetic study (CT and MR instances with
  pixel data) as Part 10 files; UIDs are derived from a tag, so every test has
  its own patient and study and tests sharing one peer never see each
  other's data.
* :func:`start_dcmqrscp` configures DCMTK's ``dcmqrscp`` in a temporary folder
  (``AETable`` with its called AE title, ``HostTable`` with the move
  destinations), indexes the files with ``dcmqridx`` and runs it in its
  default forking mode (``--single-process`` can crash after an association).
* :func:`start_wlmscpfs` runs DCMTK's worklist SCP over ``.wl`` files made by
  :func:`make_worklist`.
* :class:`QROrthanc` runs an Orthanc answering C-FIND/C-GET/C-MOVE from anyone
  (``DicomAlwaysAllowFind/Get/Move``), loaded through its REST API.
* :func:`start_receiver` runs ``dicomnet receive`` (the move destination);
  :func:`dicomnet` runs any ``dicomnet`` command to completion.
* :func:`assert_same_instances` checks that a folder holds exactly the
  instances of some source files, attribute for attribute.

Peers run through :class:`tests.interop.peers.PeerGroup`, so they are stopped
at the end of the test (or module) that started them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.interop.peers import Dcmtk, PeerGroup, PeerProcess, free_port, run_client

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
#: the root of the test UIDs (pydicom's, as generate_uid uses by default)
UID_ROOT = "1.2.826.0.1.3680043.8.498."


def uid(*entropy: object) -> str:
    """A UID derived from ``entropy`` (the same for the same values, in every run)."""
    return str(generate_uid(prefix=UID_ROOT, entropy_srcs=["qr interop", *map(str, entropy)]))


# -- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """A synthetic study on disk: one CT series and one MR series."""

    patient_id: str
    patient_name: str
    study_uid: str
    series_uids: tuple[str, ...]
    #: SOP Instance UID -> Part 10 file
    files: dict[str, Path] = field(default_factory=dict)
    #: SOP Instance UID -> Series Instance UID
    series_of: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return list(self.files.values())

    def in_series(self, series_uid: str) -> list[Path]:
        return [path for sop, path in self.files.items() if self.series_of[sop] == series_uid]


def make_study(directory: Path, tag: str, *, ct: int = 2, mr: int = 1) -> Study:
    """Write ``ct`` CT and ``mr`` MR instances (4x4 pixels) of one study into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    patient_id = f"QR-{tag}"[:64]
    study = Study(
        patient_id=patient_id,
        patient_name=f"Interop^{tag.title()}",
        study_uid=uid(tag, "study"),
        series_uids=(uid(tag, "series", 1), uid(tag, "series", 2)),
    )
    number = 0
    for sop_class, count, series in ((CT, ct, 0), (MR, mr, 1)):
        for _ in range(count):
            number += 1
            ds = Dataset()
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.SOPClassUID = sop_class
            ds.SOPInstanceUID = uid(tag, "instance", number)
            ds.StudyDate = "20240105"
            ds.StudyTime = "101010"
            ds.AccessionNumber = f"A{tag}"[:16]
            ds.Modality = "CT" if sop_class == CT else "MR"
            ds.ReferringPhysicianName = ""
            ds.StudyDescription = f"interop {tag}"
            ds.SeriesDescription = f"series {series + 1}"
            ds.PatientName = study.patient_name
            ds.PatientID = patient_id
            ds.PatientBirthDate = "19700101"
            ds.PatientSex = "O"
            ds.StudyInstanceUID = study.study_uid
            ds.SeriesInstanceUID = study.series_uids[series]
            ds.StudyID = "1"
            ds.SeriesNumber = series + 1
            ds.InstanceNumber = number
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = ds.Columns = 4
            ds.BitsAllocated = 16
            ds.BitsStored = 12
            ds.HighBit = 11
            ds.PixelRepresentation = 0
            ds.PixelData = bytes(range(number, number + 32))
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = sop_class
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            path = directory / f"{tag}-{number}.dcm"
            ds.save_as(path, enforce_file_format=True)
            study.files[ds.SOPInstanceUID] = path
            study.series_of[ds.SOPInstanceUID] = ds.SeriesInstanceUID
    return study


def make_worklist(directory: Path, tag: str, modalities: Sequence[str]) -> list[Dataset]:
    """One ``.wl`` file (a Modality Worklist item, PS3.4 K.6.1.2) per modality, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    items = []
    for n, modality in enumerate(modalities):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.AccessionNumber = f"ACC{n}"
        ds.PatientName = f"Worklist^{tag.title()}{n}"
        ds.PatientID = f"WL-{tag}-{n}"
        ds.PatientBirthDate = "19800101"
        ds.PatientSex = "O"
        ds.StudyInstanceUID = uid(tag, "worklist", n)
        ds.RequestedProcedureID = f"RP{n}"
        ds.RequestedProcedureDescription = "interop"
        step = Dataset()
        step.Modality = modality
        step.ScheduledStationAETitle = f"{modality}1"
        step.ScheduledProcedureStepStartDate = "20240501"
        step.ScheduledProcedureStepStartTime = "0800"
        step.ScheduledPerformingPhysicianName = "Who^Doctor"
        step.ScheduledProcedureStepDescription = "scan"
        step.ScheduledProcedureStepID = f"SPS{n}"
        ds.ScheduledProcedureStepSequence = [step]
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = WORKLIST_FIND
        ds.file_meta.MediaStorageSOPInstanceUID = uid(tag, "worklist-file", n)
        ds.save_as(directory / f"{tag}-{n}.wl", enforce_file_format=True)
        items.append(ds)
    return items


def assert_same_instances(
    directory: Path, expected: Sequence[Path], *, named_by_uid: bool = True
) -> None:
    """``directory`` holds exactly the instances of ``expected``, with the same attributes and
    pixel data (whatever transfer syntax they travelled in); with ``named_by_uid``, each as
    ``<SOP Instance UID>.dcm`` (dicomnet's naming; DCMTK's is ``<modality>.<UID>``)."""
    wanted = {str(ds.SOPInstanceUID): ds for ds in map(dcmread, expected)}
    files = sorted(directory.iterdir()) if directory.exists() else []
    received = {}
    for path in files:
        ds = dcmread(path)
        uid = str(ds.SOPInstanceUID)
        assert uid not in received, f"{uid} received twice"
        if named_by_uid:
            assert path.name == f"{uid}.dcm", path
        received[uid] = ds
    assert sorted(received) == sorted(wanted), f"{directory}: {sorted(received)}"
    for uid, source in wanted.items():
        got = received[uid]
        assert got.file_meta.MediaStorageSOPInstanceUID == uid
        differences = [
            element.keyword or str(element.tag)
            for element in source
            if element.tag not in got or got[element.tag].value != element.value
        ]
        extra = [e.keyword or str(e.tag) for e in got if e.tag not in source]
        assert not differences and not extra, f"{uid}: differs in {differences}, extra {extra}"


# -- running dicomnet ---------------------------------------------------------------------------


def dicomnet_argv(*args: str | int | Path) -> list[str]:
    return [sys.executable, "-m", "dicomnet.contrib.cli", *map(str, args)]


def dicomnet(*args: str | int | Path) -> subprocess.CompletedProcess[str]:
    """Run ``dicomnet ARGS...`` to completion (UTF-8 output)."""
    return run_client(dicomnet_argv(*args), env=_utf8_env())


def _utf8_env() -> dict[str, str]:
    from tests.interop.peers import peer_env

    return peer_env(PYTHONIOENCODING="utf-8")


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def start_receiver(peers: PeerGroup, directory: Path, ae_title: str) -> tuple[PeerProcess, int]:
    """``dicomnet receive`` on a free loopback port, storing in ``directory``."""

    def argv(port: int) -> list[str]:
        return dicomnet_argv(
            "receive", "--port", port, "--bind", "127.0.0.1", "--aet", ae_title,
            "--dir", directory, "--no-fsync",
        )  # fmt: skip

    return peers.start_listening(argv, name=f"dicomnet receive ({ae_title})")


def start_serve(
    peers: PeerGroup,
    directory: Path,
    ae_title: str,
    *,
    worklist_dir: Path | None = None,
    move_destinations: Mapping[str, int] | None = None,
) -> tuple[PeerProcess, int]:
    """``dicomnet serve`` on a free loopback port; moves go to ``title -> loopback port``."""
    extra: list[str | Path] = []
    if worklist_dir is not None:
        extra += ["--worklist-dir", worklist_dir]
    for title, port in (move_destinations or {}).items():
        extra += ["--move-dest", f"{title}=127.0.0.1:{port}"]

    def argv(port: int) -> list[str]:
        return dicomnet_argv(
            "serve", "--port", port, "--bind", "127.0.0.1", "--aet", ae_title,
            "--dir", directory, "--no-fsync", *extra,
        )  # fmt: skip

    return peers.start_listening(argv, name=f"dicomnet serve ({ae_title})")


# -- DCMTK --------------------------------------------------------------------------------------


def start_storescp(peers: PeerGroup, dcmtk: Dcmtk, directory: Path) -> tuple[PeerProcess, int]:
    """DCMTK storescp writing what it receives to ``directory`` (``<modality>.<SOP UID>``)."""
    directory.mkdir(parents=True, exist_ok=True)
    return peers.start_listening(
        lambda port: [dcmtk.tool("storescp"), "-od", str(directory), "+xa", str(port)],
        name="storescp",
    )


def start_dcmqrscp(
    peers: PeerGroup,
    dcmtk: Dcmtk,
    workdir: Path,
    files: Sequence[Path],
    *,
    ae_title: str = "QRSCP",
    destinations: Mapping[str, tuple[str, int]] | None = None,
) -> tuple[PeerProcess, int]:
    """dcmqrscp serving ``files`` as ``ae_title``; moves go to ``destinations`` (title -> address).

    The files are copied into its storage area and indexed with ``dcmqridx``.
    """
    database = workdir / "dcmqrscp-db"
    database.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in files:
        copy = database / path.name
        copy.write_bytes(path.read_bytes())
        copies.append(copy)
    if copies:
        indexed = run_client([dcmtk.tool("dcmqridx"), database, *copies])
        assert indexed.returncode == 0, indexed.stderr
    hosts = "\n".join(
        f"dest{n} = ({title}, {host}, {port})"
        for n, (title, (host, port)) in enumerate((destinations or {}).items())
    )

    def argv(port: int) -> list[str]:
        config = workdir / f"dcmqrscp-{port}.cfg"
        config.write_text(
            f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\n"
            f"HostTable BEGIN\n{hosts}\nHostTable END\n\n"
            "VendorTable BEGIN\nVendorTable END\n\n"
            f"AETable BEGIN\n{ae_title} {database} RW (200, 1024mb) ANY\nAETable END\n"
        )
        return [dcmtk.tool("dcmqrscp"), "-c", str(config), str(port)]

    return peers.start_listening(argv, name="dcmqrscp", cwd=workdir)


def start_wlmscpfs(
    peers: PeerGroup, dcmtk: Dcmtk, root: Path, ae_title: str
) -> tuple[PeerProcess, int]:
    """wlmscpfs answering worklist queries to ``ae_title`` from ``root/<ae_title>/*.wl``."""
    folder = root / ae_title
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockfile").touch()  # wlmscpfs refuses a folder without one
    return peers.start_listening(
        lambda port: [dcmtk.tool("wlmscpfs"), "-dfp", str(root), str(port)], name="wlmscpfs"
    )


# -- Orthanc ------------------------------------------------------------------------------------


class QROrthanc:
    """An Orthanc on free loopback ports answering C-FIND/C-GET/C-MOVE from any AE.

    ``DicomAlwaysAllowFind/Get/Move`` let unknown AEs query and retrieve;
    move destinations are added over REST (:meth:`add_modality`).
    """

    AET = "ORTHANC"

    def __init__(self, peers: PeerGroup, binary: str, workdir: Path) -> None:
        self.http_port = 0

        def argv(dicom_port: int) -> list[str]:
            self.http_port = free_port()
            config = {
                "Name": "dicomnet-qr-interop",
                "DicomAet": self.AET,
                "DicomPort": dicom_port,
                "HttpPort": self.http_port,
                "RemoteAccessAllowed": False,
                "AuthenticationEnabled": False,
                "StorageDirectory": str(workdir / "storage"),
                "IndexDirectory": str(workdir / "index"),
                "Plugins": [],
                "DicomCheckCalledAet": True,
                "DicomAlwaysAllowEcho": True,
                "DicomAlwaysAllowStore": True,
                "DicomAlwaysAllowFind": True,
                "DicomAlwaysAllowGet": True,
                "DicomAlwaysAllowMove": True,
                "DicomScuTimeout": 10,
                "DicomModalities": {},
            }
            path = workdir / f"orthanc-{dicom_port}.json"
            path.write_text(json.dumps(config, indent=2))
            return [binary, "--no-jobs", str(path)]

        workdir.mkdir(parents=True, exist_ok=True)
        self.proc, self.dicom_port = peers.start_listening(argv, name="Orthanc", cwd=workdir)
        assert self.proc.wait_listening(self.http_port), self.proc.output()

    def rest(self, method: str, path: str, body: bytes | Any = None) -> tuple[int, Any]:
        """One REST call; ``(HTTP status, decoded JSON or text)``."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw.strip() else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def upload(self, paths: Sequence[Path]) -> None:
        """Store files through ``POST /instances``."""
        for path in paths:
            code, body = self.rest("POST", "/instances", path.read_bytes())
            assert code == 200, (path, code, body)

    def add_modality(self, name: str, ae_title: str, port: int) -> None:
        """Declare a move destination (``PUT /modalities/{name}``)."""
        code, body = self.rest(
            "PUT", f"/modalities/{name}", {"AET": ae_title, "Host": "127.0.0.1", "Port": port}
        )
        assert code == 200, (code, body)
