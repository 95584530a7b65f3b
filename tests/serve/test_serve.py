"""``dicomnet serve`` end to end over loopback, in this process: store, find, get, move,
worklist, TLS, durability order (PS3.4 A, B, C, K).

The server is a :class:`~dicomnet.contrib.serve.PacsServer` on a free port; the
SCUs are dicomnet AEs. Every test is leak-checked.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from dicomnet.contrib.receive import make_storage_ae
from dicomnet.contrib.serve import PacsServer, ServeOptions, ServerTLS, parse_move_destination
from dicomnet.pdu_primitives import SOPClassExtendedNegotiation
from dicomnet.sop_class import ModalityWorklistInformationModelFind

from .conftest import (
    CT,
    PATIENT_FIND,
    PATIENT_GET,
    PATIENT_MOVE,
    SR,
    STUDY_FIND,
    STUDY_GET,
    STUDY_MOVE,
    TITLE,
    VERIFICATION,
    MakePacs,
    MakeSCU,
    Pacs,
    associate,
    find,
    get,
    instances,
    query,
    store,
)

pytestmark = [
    pytest.mark.leakcheck,
    pytest.mark.filterwarnings("ignore:Invalid value for VR", "ignore:VR lookup failed"),
]

WORKLIST = str(ModalityWorklistInformationModelFind)


@pytest.fixture
def pacs(make_pacs: MakePacs, make_scu: MakeSCU) -> Pacs:
    """A server holding the small data set, stored over the network (without flushing to
    disk: faster; the tests that use ``make_pacs()`` flush)."""
    server = make_pacs(fsync=False)
    assert store(make_scu(), server.host, server.port, instances()) == [0] * 11
    return server


def extended(uid: str, *flags: int) -> SOPClassExtendedNegotiation:
    item = SOPClassExtendedNegotiation()
    item.sop_class_uid = uid
    item.service_class_application_information = bytes(flags)
    return item


# --- Verification and Storage --------------------------------------------------------------


def test_echo(make_pacs: MakePacs, make_scu: MakeSCU) -> None:
    server = make_pacs()
    assoc = associate(make_scu(contexts=[VERIFICATION]), server.host, server.port)
    assert assoc.send_c_echo().Status == 0
    assoc.release()


def test_stored_files_hold_what_was_sent(pacs: Pacs) -> None:
    sent = {ds.SOPInstanceUID: ds for ds in instances()}
    files = sorted(p for p in pacs.directory.rglob("*.dcm"))
    assert len(files) == 11
    for path in files:
        stored = dcmread(path)
        assert path.relative_to(pacs.directory).parts == (
            stored.StudyInstanceUID, stored.SeriesInstanceUID, f"{stored.SOPInstanceUID}.dcm"
        )
        original = sent[stored.SOPInstanceUID]
        assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert stored.file_meta.SourceApplicationEntityTitle == "SCU"
        assert stored.PatientName == original.PatientName
        assert stored.PixelData == original.PixelData
    assert list((pacs.directory / ".incoming").iterdir()) == []  # no temporary file left
    assert pacs.index.counts() == {"patients": 3, "studies": 4, "series": 6, "instances": 11}


def test_storing_again_replaces_and_a_moved_instance_leaves_no_stale_file(
    pacs: Pacs, make_scu: MakeSCU
) -> None:
    ds = instances()[0]  # study 1.2.3.1, series 1.2.3.1.1
    old = pacs.directory / "1.2.3.1" / "1.2.3.1.1" / f"{ds.SOPInstanceUID}.dcm"
    assert old.exists()
    ds.SeriesDescription = "corrected"
    assert store(make_scu(), pacs.host, pacs.port, [ds]) == [0]
    assert dcmread(old).SeriesDescription == "corrected"
    ds.SeriesInstanceUID = "1.2.3.1.9"  # now in another series
    assert store(make_scu(), pacs.host, pacs.port, [ds]) == [0]
    assert not old.exists()
    assert (pacs.directory / "1.2.3.1" / "1.2.3.1.9" / f"{ds.SOPInstanceUID}.dcm").exists()
    assert pacs.index.counts() == {"patients": 3, "studies": 4, "series": 7, "instances": 11}


@pytest.mark.parametrize("change", ["no study", "other instance uid"])
def test_store_refuses_what_cannot_be_indexed(
    make_pacs: MakePacs, make_scu: MakeSCU, change: str
) -> None:
    server = make_pacs()
    ds = instances()[0]
    if change == "no study":
        del ds.StudyInstanceUID
    scu = make_scu()
    assoc = associate(scu, server.host, server.port)
    try:
        if change == "other instance uid":
            # the request names one instance, the data set is another
            from dicomnet.datasets import encode_dataset

            from ..storage.conftest import send_store

            syntax = str(assoc._context_for(CT).transfer_syntax)
            status = send_store(
                assoc, encode_dataset(ds, syntax), sop_class=CT, sop_instance="1.2.3.999"
            )
        else:
            status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    assert status.Status == 0xA900
    assert status.ErrorComment
    assert server.index.counts()["instances"] == 0
    assert list(server.directory.rglob("*.dcm")) == []
    assert list((server.directory / ".incoming").iterdir()) == []


def test_hostile_uids_name_no_path_outside_the_folder(
    make_pacs: MakePacs, make_scu: MakeSCU
) -> None:
    server = make_pacs(fsync=False)
    ds = instances()[0]
    ds.StudyInstanceUID = "../../escaped"
    ds.SeriesInstanceUID = "/absolute"
    assert store(make_scu(), server.host, server.port, [ds]) == [0]
    [path] = list(server.directory.rglob("*.dcm"))
    study, series, name = path.relative_to(server.directory).parts
    assert study.startswith("invalid-uid-") and series.startswith("invalid-uid-")
    assert name == f"{ds.SOPInstanceUID}.dcm"
    found, _ = find(make_scu(), server.host, server.port,
                    query("STUDY", StudyInstanceUID="../../escaped"))
    assert len(found) == 1


def test_success_only_after_the_file_is_stored_and_indexed(
    make_pacs: MakePacs, make_scu: MakeSCU, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_pacs()
    answered = threading.Event()
    seen: list[tuple[bool, bool]] = []
    add = server.index.add

    def watching_add(ds: Dataset, path: Any, **kwargs: Any) -> Any:
        # the file is in place (flushed and renamed) before the row is written,
        # and the SCU has no answer yet
        seen.append((Path(path).exists(), answered.is_set()))
        return add(ds, path, **kwargs)

    monkeypatch.setattr(server.index, "add", watching_add)
    assoc = associate(make_scu(), server.host, server.port)
    status = assoc.send_c_store(instances()[0])
    answered.set()
    assoc.release()
    assert status.Status == 0
    assert seen == [(True, False)]


def test_an_index_failure_is_a_processing_failure(
    make_pacs: MakePacs, make_scu: MakeSCU, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_pacs()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(server.index, "add", broken)
    assoc = associate(make_scu(), server.host, server.port)
    status = assoc.send_c_store(instances()[0])
    assoc.release()
    assert status.Status == 0x0110
    assert "database gone" in status.ErrorComment
    # the file stays: the SCU sends it again, or --rescan indexes it
    assert len(list(server.directory.rglob("*.dcm"))) == 1
    monkeypatch.undo()
    assert server.index.rescan().added == (
        f"1.2.3.1/1.2.3.1.1/{instances()[0].SOPInstanceUID}.dcm",
    )


# --- C-FIND ---------------------------------------------------------------------------------


def test_find_at_each_level_of_the_study_root(pacs: Pacs, make_scu: MakeSCU) -> None:
    scu = make_scu()
    studies, final = find(scu, pacs.host, pacs.port, query(
        "STUDY", StudyInstanceUID="", StudyDate="", PatientName="", ModalitiesInStudy="",
        NumberOfStudyRelatedInstances="",
    ))  # fmt: skip
    assert final.Status == 0x0000
    by_uid = {ds.StudyInstanceUID: ds for ds in studies}
    assert set(by_uid) == {"1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"}
    assert list(by_uid["1.2.3.1"].ModalitiesInStudy) == ["CT", "MR"]
    assert by_uid["1.2.3.1"].NumberOfStudyRelatedInstances == 5
    assert by_uid["1.2.3.4"].PatientName == "Müller^Jörg"  # sent in UTF-8
    assert by_uid["1.2.3.4"].SpecificCharacterSet == "ISO_IR 192"
    assert {ds.RetrieveAETitle for ds in studies} == {TITLE}

    series, _ = find(scu, pacs.host, pacs.port, query(
        "SERIES", StudyInstanceUID="1.2.3.3", SeriesInstanceUID="", Modality="", SeriesNumber="",
    ))  # fmt: skip
    assert sorted((ds.SeriesInstanceUID, ds.Modality, ds.SeriesNumber) for ds in series) == [
        ("1.2.3.3.1", "CT", 1), ("1.2.3.3.2", "SR", 99)
    ]
    images, _ = find(scu, pacs.host, pacs.port, query(
        "IMAGE", StudyInstanceUID="1.2.3.3", SeriesInstanceUID="1.2.3.3.1", SOPInstanceUID="",
        InstanceNumber="2",
    ))  # fmt: skip
    assert [ds.SOPInstanceUID for ds in images] == ["1.2.3.3.1.2"]


def test_find_at_each_level_of_the_patient_root(pacs: Pacs, make_scu: MakeSCU) -> None:
    scu = make_scu()

    def uids(level: str, key: str, **keys: Any) -> set[str]:
        found, final = find(scu, pacs.host, pacs.port, query(level, **{key: ""}, **keys),
                            PATIENT_FIND)
        assert final.Status == 0
        return {str(ds[key].value) for ds in found}

    assert uids("PATIENT", "PatientID", PatientName="d*") == {"P1"}
    assert uids("STUDY", "StudyInstanceUID", PatientID="P1") == {"1.2.3.1", "1.2.3.2"}
    assert uids("SERIES", "SeriesInstanceUID", PatientID="P1", StudyInstanceUID="1.2.3.1",
                Modality="MR") == {"1.2.3.1.2"}
    assert uids("IMAGE", "SOPInstanceUID", PatientID="P3", StudyInstanceUID="1.2.3.4",
                SeriesInstanceUID="1.2.3.4.1") == {"1.2.3.4.1.1", "1.2.3.4.1.2"}


def test_find_refuses_an_identifier_that_breaks_the_rules(pacs: Pacs, make_scu: MakeSCU) -> None:
    # a hierarchical STUDY query of the Patient Root needs the Patient ID
    found, final = find(make_scu(), pacs.host, pacs.port, query("STUDY", StudyInstanceUID=""),
                        PATIENT_FIND)
    assert found == []
    assert final.Status == 0xA900
    assert final.OffendingElement == 0x00100020
    assert "PatientID" in final.ErrorComment
    _, final = find(make_scu(), pacs.host, pacs.port, query("STUDY", StudyDate="2020-01-02-03"))
    assert (final.Status, final.OffendingElement) == (0xA900, 0x00080020)


def test_relational_queries_are_negotiated(pacs: Pacs, make_scu: MakeSCU) -> None:
    identifier = query("SERIES", SeriesInstanceUID="", Modality="CT", PatientName="")
    scu = make_scu()
    _, final = find(scu, pacs.host, pacs.port, identifier, PATIENT_FIND)
    assert final.Status == 0xA900  # hierarchical: the Patient ID and Study UID are needed

    assoc = associate(scu, pacs.host, pacs.port, ext_neg=[extended(PATIENT_FIND, 1, 1, 1, 1)])
    # we answer: relational yes, date-time yes, fuzzy names no, timezone no
    assert assoc.negotiation.extended_negotiation(PATIENT_FIND) == b"\x01\x01\x00\x00"
    responses = list(assoc.send_c_find(identifier, PATIENT_FIND))
    assoc.release()
    found = [ident for status, ident in responses if status.Status == 0xFF00]
    assert sorted((ds.SeriesInstanceUID, str(ds.PatientName)) for ds in found) == [
        ("1.2.3.1.1", "Doe^John"), ("1.2.3.3.1", "Smith^Anna^^^")
    ]
    assert {(ds.PatientID, ds.StudyInstanceUID) for ds in found} == {
        ("P1", "1.2.3.1"), ("P2_%", "1.2.3.3")
    }


def test_extended_matching_is_negotiated(pacs: Pacs, make_scu: MakeSCU) -> None:
    identifier = query("STUDY", StudyInstanceUID="", StudyDate="20200102-20210315",
                       StudyTime="090000-100000", ModalitiesInStudy="")
    scu = make_scu()
    separate, _ = find(scu, pacs.host, pacs.port, identifier)
    assert {ds.StudyInstanceUID for ds in separate} == {"1.2.3.4"}  # only the unknown one
    combined, _ = find(scu, pacs.host, pacs.port, identifier,
                       ext_neg=[extended(STUDY_FIND, 0, 1)])
    assert {ds.StudyInstanceUID for ds in combined} == {"1.2.3.1", "1.2.3.4"}

    both = query("STUDY", StudyInstanceUID="", ModalitiesInStudy=["CT", "MR"])
    anyof, _ = find(scu, pacs.host, pacs.port, both)
    assert {ds.StudyInstanceUID for ds in anyof} == {"1.2.3.1", "1.2.3.3"}
    allof, _ = find(scu, pacs.host, pacs.port, both,
                    ext_neg=[extended(STUDY_FIND, 0, 0, 0, 0, 0, 0, 1)])
    assert {ds.StudyInstanceUID for ds in allof} == {"1.2.3.1"}

    # everything asked: what we perform is answered 1 (PS3.4 Table C.5-2), the rest 0
    assoc = associate(scu, pacs.host, pacs.port, ext_neg=[extended(STUDY_FIND, *[1] * 8)])
    assert assoc.negotiation.extended_negotiation(STUDY_FIND) == bytes([1, 1, 0, 0, 0, 1, 1])
    assoc.release()


def test_cancel_stops_a_find(pacs: Pacs, make_scu: MakeSCU) -> None:
    # far more matches than can be written before the C-CANCEL arrives, so that the
    # outcome does not depend on timing (11 matches went out whole before it at times);
    # indexed directly: C-FIND reads only the index, never the files
    many = 1000
    template = instances()[0]
    extra = []
    for n in range(many):
        ds = copy.deepcopy(template)  # its own elements: update() would share them
        ds.SOPInstanceUID = f"{template.SeriesInstanceUID}.9{n}"
        extra.append((ds, pacs.directory / f"cancel-{n}.dcm"))
    pacs.index.add_many(extra)

    assoc = associate(make_scu(), pacs.host, pacs.port, ext_neg=[extended(STUDY_FIND, 1)])
    responses = assoc.send_c_find(query("IMAGE", SOPInstanceUID=""), STUDY_FIND, msg_id=7)
    status, first = next(responses)
    assert status.Status == 0xFF00 and first is not None
    assoc.send_c_cancel(7, query_model=STUDY_FIND)
    rest = [status.Status for status, _ in responses]
    assoc.release()
    assert rest[-1] == 0xFE00
    assert len(rest) < many
    assert pacs.index.engine.pool.checkedout() == 0  # the cursor was closed


# --- C-GET ---------------------------------------------------------------------------------


def test_get_a_study(pacs: Pacs, make_scu: MakeSCU) -> None:
    received, final = get(make_scu(), pacs.host, pacs.port,
                          query("STUDY", StudyInstanceUID="1.2.3.1"))
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == 5
    assert final.NumberOfFailedSuboperations == 0
    sent = {ds.SOPInstanceUID: ds for ds in instances()}
    assert sorted(ds.SOPInstanceUID for ds, _, _ in received) == sorted(
        uid for uid in sent if uid.startswith("1.2.3.1.")
    )
    for ds, syntax, _ in received:
        assert syntax == ExplicitVRLittleEndian  # as stored
        assert ds.PatientName == sent[ds.SOPInstanceUID].PatientName


def test_get_in_the_patient_root_and_by_instance(pacs: Pacs, make_scu: MakeSCU) -> None:
    received, final = get(make_scu(), pacs.host, pacs.port, query("PATIENT", PatientID="P3"),
                          PATIENT_GET)
    assert final.Status == 0 and len(received) == 2
    received, final = get(make_scu(), pacs.host, pacs.port, query(
        "IMAGE", StudyInstanceUID="1.2.3.3", SeriesInstanceUID="1.2.3.3.2",
        SOPInstanceUID="1.2.3.3.2.1",
    ))  # fmt: skip
    assert final.Status == 0
    assert [(ds.SOPInstanceUID, ds.SOPClassUID) for ds, _, _ in received] == [
        ("1.2.3.3.2.1", SR)
    ]


def test_get_refuses_an_identifier_that_breaks_the_rules(pacs: Pacs, make_scu: MakeSCU) -> None:
    received, final = get(make_scu(), pacs.host, pacs.port,
                          query("SERIES", SeriesInstanceUID="1.2.3.3.1"))
    assert received == []
    assert final.Status == 0xA900
    # relational retrieval, once negotiated, needs only the series
    assoc = associate(make_scu(), pacs.host, pacs.port, ext_neg=[extended(STUDY_GET, 1)])
    assert assoc.negotiation.extended_negotiation(STUDY_GET) == b"\x01"
    assoc.release()


def test_get_sends_stored_files_as_they_are(make_pacs: MakePacs, make_scu: MakeSCU) -> None:
    """A JPEG instance whose "pixels" no decoder could read comes back byte for byte."""
    server = make_pacs()
    ds = instances()[0]
    ds.PixelData = encapsulate([b"\xff\xd8 not really a JPEG \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    scu = make_scu(contexts=[STUDY_GET])
    scu.add_requested_context(CT, [JPEGBaseline8Bit])
    assoc = associate(scu, server.host, server.port)
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    stored = next(server.directory.rglob("*.dcm")).read_bytes()

    received, final = get(scu, server.host, server.port,
                          query("STUDY", StudyInstanceUID=ds.StudyInstanceUID))
    assert final.Status == 0
    [(_, syntax, data)] = received
    assert syntax == JPEGBaseline8Bit
    assert stored.endswith(data)  # the data set part of the file, unchanged


# --- C-MOVE --------------------------------------------------------------------------------


@pytest.fixture
def destination(tmp_path: Path) -> Any:
    """A ``dicomnet receive`` AE storing in ``tmp_path / "dest"`` (its server's port)."""
    folder = tmp_path / "dest"
    folder.mkdir()
    ae, _handler = make_storage_ae(folder, ae_title="DEST")
    server = ae.start_server(("127.0.0.1", 0), block=False)
    assert server is not None
    server.folder = folder  # type: ignore[attr-defined]
    yield server
    ae.shutdown()


def test_move_to_a_receive_destination(
    make_pacs: MakePacs, make_scu: MakeSCU, destination: Any
) -> None:
    port = destination.server_address[1]
    server = make_pacs(move_destinations={"DEST": ("127.0.0.1", port)})
    assert store(make_scu(), server.host, server.port, instances()) == [0] * 11
    assoc = associate(make_scu(), server.host, server.port)
    responses = list(assoc.send_c_move(query("STUDY", StudyInstanceUID="1.2.3.3"), "DEST",
                                       STUDY_MOVE))
    assoc.release()
    final = responses[-1][0]
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == 3
    moved = sorted(p.name for p in destination.folder.iterdir())
    assert moved == ["1.2.3.3.1.1.dcm", "1.2.3.3.1.2.dcm", "1.2.3.3.2.1.dcm"]
    for name in moved:  # the destination's file holds the data set exactly as we stored it
        stored = next(server.directory.rglob(name))
        assert dataset_bytes(destination.folder / name) == dataset_bytes(stored)
        assert dcmread(destination.folder / name).file_meta.SourceApplicationEntityTitle == TITLE

    # and in the Patient Root, a single instance
    assoc = associate(make_scu(), server.host, server.port)
    responses = list(assoc.send_c_move(query(
        "IMAGE", PatientID="P1", StudyInstanceUID="1.2.3.2", SeriesInstanceUID="1.2.3.2.1",
        SOPInstanceUID="1.2.3.2.1.1",
    ), "DEST", PATIENT_MOVE))  # fmt: skip
    assoc.release()
    assert responses[-1][0].Status == 0
    assert (destination.folder / "1.2.3.2.1.1.dcm").exists()


def dataset_bytes(path: Path) -> bytes:
    """The data set of a Part 10 file: what follows its File Meta Information group."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00"  # (0002,0000)
    length = int.from_bytes(data[140:144], "little")
    return data[144 + length:]


def test_unknown_move_destination_is_a801(pacs: Pacs, make_scu: MakeSCU) -> None:
    assoc = associate(make_scu(), pacs.host, pacs.port)
    responses = list(assoc.send_c_move(query("STUDY", StudyInstanceUID="1.2.3.1"), "NOBODY",
                                       STUDY_MOVE))
    assoc.release()
    assert [status.Status for status, _ in responses] == [0xA801]


def test_unreachable_move_destination_fails_every_suboperation(
    make_pacs: MakePacs, make_scu: MakeSCU
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    server = make_pacs(move_destinations={"GONE": ("127.0.0.1", closed)})
    assert store(make_scu(), server.host, server.port, instances()[:3]) == [0] * 3
    assoc = associate(make_scu(), server.host, server.port)
    responses = list(assoc.send_c_move(query("STUDY", StudyInstanceUID="1.2.3.1"), "GONE",
                                       STUDY_MOVE))
    assoc.release()
    final, identifier = responses[-1]
    assert final.Status == 0xA702
    assert final.NumberOfFailedSuboperations == 3
    assert identifier is not None and len(identifier.FailedSOPInstanceUIDList) == 3


def test_parse_move_destination() -> None:
    assert parse_move_destination("DEST=10.0.0.7:104") == ("DEST", ("10.0.0.7", 104))
    assert parse_move_destination(" WS1 = ws1.example.org:11112") == (
        "WS1", ("ws1.example.org", 11112)
    )
    assert parse_move_destination("V6=[::1]:11112") == ("V6", ("::1", 11112))
    for bad in ("DEST", "DEST=host", "DEST=host:0", "DEST=host:70000", "=host:1",
                "A_TITLE_TOO_LONG_X=h:1", "DEST=:104"):
        with pytest.raises(ValueError):
            parse_move_destination(bad)


# --- Modality Worklist -------------------------------------------------------------------------


def worklist_item(name: str, modality: str, date: str, accession: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = name
    ds.PatientID = accession + "-P"
    ds.AccessionNumber = accession
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = "CT1" if modality == "CT" else "MR1"
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = "0900"
    step.ScheduledProcedureStepID = accession + "-S"
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


def write_worklist(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, item in enumerate([
        worklist_item("Doe^John", "CT", "20240102", "W1"),
        worklist_item("Smith^Anna", "MR", "20240102", "W2"),
        worklist_item("Łukasz^Zoë", "CT", "20240103", "W3"),
    ]):  # fmt: skip
        if n % 2:  # a bare data set, as dump2dcm writes them
            item.set_original_encoding(True, True)
            item.save_as(folder / f"item{n}.wl", implicit_vr=True, little_endian=True)
            continue
        item.file_meta = FileMetaDataset()
        item.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        item.file_meta.MediaStorageSOPClassUID = WORKLIST
        item.file_meta.MediaStorageSOPInstanceUID = f"1.2.9.{n}"
        item.save_as(folder / f"item{n}.wl", enforce_file_format=True)
    (folder / "broken.wl").write_bytes(b"not a data set")


def test_worklist_find(make_pacs: MakePacs, make_scu: MakeSCU, tmp_path: Path) -> None:
    folder = tmp_path / "worklist"
    write_worklist(folder)
    server = make_pacs(worklist_dir=folder)
    step = Dataset()
    step.Modality = "CT"
    step.ScheduledProcedureStepStartDate = "20240101-20240102"
    step.ScheduledProcedureStepID = ""
    identifier = Dataset()
    identifier.PatientName = ""
    identifier.AccessionNumber = ""
    identifier.ScheduledProcedureStepSequence = Sequence([step])
    found, final = find(make_scu(contexts=[WORKLIST]), server.host, server.port, identifier,
                        WORKLIST)
    assert final.Status == 0
    assert [(str(ds.PatientName), ds.AccessionNumber) for ds in found] == [("Doe^John", "W1")]
    [returned] = found[0].ScheduledProcedureStepSequence
    assert set(returned.keys()) == {0x00080060, 0x00400002, 0x00400009}  # requested only
    step.ScheduledProcedureStepStartDate = ""
    found, _ = find(make_scu(contexts=[WORKLIST]), server.host, server.port, identifier,
                    WORKLIST)
    assert {ds.AccessionNumber for ds in found} == {"W1", "W3"}
    assert "Łukasz^Zoë" in {str(ds.PatientName) for ds in found}


def test_no_worklist_without_a_folder(pacs: Pacs, make_scu: MakeSCU) -> None:
    assoc = make_scu(contexts=[WORKLIST]).associate(pacs.host, pacs.port, ae_title=TITLE)
    try:
        assert assoc.is_established
        assert [cx.result for cx in assoc.rejected_contexts] != []
        assert assoc.accepted_contexts == []
    finally:
        assoc.release()


# --- TLS ---------------------------------------------------------------------------------------


def test_tls_with_client_certificates_and_a_tls_move_destination(
    make_pacs: MakePacs, make_scu: MakeSCU, pki: Any, tmp_path: Path
) -> None:
    import ssl

    folder = tmp_path / "dest"
    folder.mkdir()
    dest_ae, _ = make_storage_ae(folder, ae_title="DEST")
    dest = dest_ae.start_server(
        ("127.0.0.1", 0), block=False, ssl_context=pki.server_context(require_client_cert=False)
    )
    assert dest is not None
    try:
        tls = ServerTLS(Path(pki.path("server.pem")), Path(pki.path("server.key")),
                        Path(pki.path("ca.pem")))
        server = make_pacs(
            tls=tls, move_destinations={"DEST": ("127.0.0.1", dest.server_address[1], True)}
        )
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.load_verify_locations(pki.path("ca.pem"))
        client.load_cert_chain(pki.path("client.pem"), pki.path("client.key"))
        scu = make_scu()
        assoc = associate(scu, server.host, server.port, tls_args=(client, "localhost"))
        assert assoc.send_c_store(instances()[0]).Status == 0
        responses = list(assoc.send_c_move(query("STUDY", StudyInstanceUID="1.2.3.1"), "DEST",
                                           STUDY_MOVE))
        assoc.release()
        assert responses[-1][0].Status == 0
        assert len(list(folder.iterdir())) == 1

        # without a client certificate: no association
        anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        anonymous.load_verify_locations(pki.path("ca.pem"))
        refused = scu.associate(server.host, server.port, ae_title=TITLE,
                                tls_args=(anonymous, "localhost"))
        assert not refused.is_established
    finally:
        dest_ae.shutdown()


def test_tls_files_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("no certificate here")
    with pytest.raises(ValueError, match="certificate"):
        ServerTLS(bad).server_context()
    options = ServeOptions(tmp_path / "pacs", move_destinations={"D": ("h", 1, True)})
    with pytest.raises(ValueError, match="TLS"):
        PacsServer(options)
