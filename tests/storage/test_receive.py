"""Receiving C-STORE over loopback: in memory and spooled, aborts, hostile UIDs, statuses, order.

PS3.4 B.2 (Storage SCP behaviour and statuses), GG (Non-Patient Object Storage),
PS3.7 9.1.1 (C-STORE), PS3.10 7.1 (the stored file).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from dicomnet import association, spool
from dicomnet.dimse_messages import CStoreRSP
from dicomnet.plugins import storage

from .conftest import (
    CT_IMAGE,
    HANGING_PROTOCOL,
    SECONDARY_CAPTURE,
    MakeReceiver,
    encoded,
    files_in,
    make_dataset,
    send_store,
)

pytestmark = pytest.mark.leakcheck


def dataset_bytes_of(path: Path) -> tuple[bytes, bytes]:
    """``(header, data set)`` of a Part 10 file: split after the meta group."""
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM"
    group_length = int.from_bytes(raw[140:144], "little")
    offset = 144 + group_length
    return raw[:offset], raw[offset:]


# -- the data set arrives as it was sent ------------------------------------------------------


@pytest.mark.parametrize("threshold", [None, 8 << 20, 1000, 0])
def test_stored_file_is_header_plus_exact_bytes(
    threshold: int | None, receiver: MakeReceiver, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    rec = receiver(threshold=threshold, spool_directory=spool_dir)
    ds = make_dataset(size=300_000)
    assoc = rec.associate()
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0x0000
    (call,) = rec.calls
    path = call["path"]
    assert path == rec.directory / f"{ds.SOPInstanceUID}.dcm"
    header, data = dataset_bytes_of(path)
    assert data == encoded(ds)
    meta = spool.FileMetaInfo(
        SECONDARY_CAPTURE,
        ds.SOPInstanceUID,
        ExplicitVRLittleEndian,
        str(rec.ae.implementation_class_uid),
        rec.ae.implementation_version_name,
        "STORESCU",
    )
    assert header == meta.encode()
    assert files_in(rec.directory) == [path.name]
    assert files_in(spool_dir) == []


def test_memory_and_spooled_files_are_identical(receiver: MakeReceiver, tmp_path: Path) -> None:
    ds = make_dataset(size=200_000)
    results = []
    for threshold, folder in ((None, "memory"), (0, "spooled")):
        rec = receiver(tmp_path / folder, threshold=threshold, spool_directory=tmp_path / folder)
        assoc = rec.associate()
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        results.append(rec.calls[0]["path"].read_bytes())
    assert results[0] == results[1]


@pytest.mark.parametrize("threshold", [None, 0])
def test_handler_sees_dataset_path_and_meta(
    threshold: int | None, receiver: MakeReceiver, tmp_path: Path
) -> None:
    """event.dataset, event.dataset_path, file_meta, encoded_dataset() work in both modes."""
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    seen: dict[str, Any] = {}

    def handler(event: Any) -> int:
        path = event.dataset_path
        seen["exists"] = path.exists()
        seen["in_spool"] = path.parent == spool_dir
        seen["file"] = path.read_bytes()
        seen["name"] = str(event.dataset.PatientName)
        seen["meta"] = event.file_meta.MediaStorageSOPInstanceUID
        seen["encoded"] = event.encoded_dataset(include_meta=False)
        seen["whole"] = event.encoded_dataset()
        seen["path"] = path
        return 0x0000

    rec = receiver(threshold=threshold, spool_directory=spool_dir, handler=handler)
    ds = make_dataset(size=50_000)
    assoc = rec.associate()
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    assert seen["exists"] and seen["in_spool"] and seen["name"] == "Storage^Test"
    assert seen["meta"] == ds.SOPInstanceUID
    assert seen["encoded"] == encoded(ds)
    assert seen["file"] == seen["whole"] and seen["whole"].endswith(encoded(ds))
    # the handler did not keep the file: it is gone, and nothing is left in the spool
    assert not seen["path"].exists()
    assert files_in(spool_dir) == [] and files_in(rec.directory) == []


def test_large_data_set_is_spooled_and_decodes(receiver: MakeReceiver, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def handler(event: Any) -> int:
        seen["spooled"] = "_spooled" in event._attrs
        seen["size"] = len(event.dataset.PixelData)
        return 0

    rec = receiver(threshold=100_000, spool_directory=tmp_path, handler=handler)
    assoc = rec.associate()
    assert assoc.send_c_store(make_dataset(size=400_000)).Status == 0
    assert assoc.send_c_store(make_dataset(size=1000)).Status == 0
    assoc.release()
    assert seen == {"spooled": False, "size": 1000}  # the last one stayed in memory
    assert len(rec.calls) == 2


def test_non_patient_object_storage(receiver: MakeReceiver) -> None:
    rec = receiver()
    ds = make_dataset(HANGING_PROTOCOL, size=10)
    assoc = rec.associate([HANGING_PROTOCOL])
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    assert rec.calls[0]["path"].name == f"{ds.SOPInstanceUID}.dcm"


def test_many_instances_on_one_association(receiver: MakeReceiver, tmp_path: Path) -> None:
    rec = receiver(threshold=0, spool_directory=tmp_path / "received")
    datasets = [make_dataset(size=30_000) for _ in range(20)]
    assoc = rec.associate()
    for ds in datasets:
        assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    assert files_in(rec.directory) == sorted(f"{ds.SOPInstanceUID}.dcm" for ds in datasets)


# -- aborted transfers ------------------------------------------------------------------------


def half_then_abort(data: bytes, spool_dir: Path, *, wait_for_temp: bool) -> Iterator[bytes]:
    """Yield the first half of ``data`` in chunks, then stop the SCU by raising."""
    half = len(data) // 2
    for start in range(0, half, 16384):
        yield data[start : min(start + 16384, half)]
    if wait_for_temp:  # the SCP is writing the file: the abort cuts a real spool
        deadline = time.monotonic() + 10
        while not [n for n in os.listdir(spool_dir) if n.endswith(".part")]:
            assert time.monotonic() < deadline, "the SCP never started spooling"
            time.sleep(0.01)
    raise ConnectionAbortedError("the SCU gives up half way")


@pytest.mark.parametrize("threshold", [0, None])
def test_abort_mid_data_set_leaves_nothing(
    threshold: int | None, receiver: MakeReceiver, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    rec = receiver(threshold=threshold, spool_directory=spool_dir)
    ended = threading.Event()
    rec.server.bind(__import__("dicomnet").evt.EVT_CONN_CLOSE, lambda event: ended.set())
    assoc = rec.associate()
    data = encoded(make_dataset(size=4_000_000))
    with pytest.raises(ConnectionAbortedError):
        send_store(assoc, half_then_abort(data, spool_dir, wait_for_temp=threshold == 0))
    assoc.abort()
    assert ended.wait(10)
    assert rec.calls == []  # the handler was never called
    assert files_in(rec.directory) == [] and files_in(spool_dir) == []


def test_connection_lost_mid_data_set_leaves_nothing(
    receiver: MakeReceiver, tmp_path: Path
) -> None:
    """The peer vanishes (no A-ABORT): the partial file goes too."""
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    rec = receiver(threshold=0, spool_directory=spool_dir)
    ended = threading.Event()
    rec.server.bind(__import__("dicomnet").evt.EVT_CONN_CLOSE, lambda event: ended.set())
    assoc = rec.associate()
    data = encoded(make_dataset(size=4_000_000))
    with pytest.raises(ConnectionAbortedError):
        send_store(assoc, half_then_abort(data, spool_dir, wait_for_temp=True))
    assoc._channel.shutdown()  # close the TCP connection without an A-ABORT
    assert ended.wait(10)
    assoc.abort()
    assert rec.calls == []
    assert files_in(rec.directory) == [] and files_in(spool_dir) == []


def test_server_shutdown_mid_data_set_leaves_nothing(
    receiver: MakeReceiver, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    rec = receiver(threshold=0, spool_directory=spool_dir)
    assoc = rec.associate()
    data = encoded(make_dataset(size=4_000_000))
    sent = threading.Event()

    def chunks() -> Iterator[bytes]:
        half = len(data) // 2
        for start in range(0, half, 16384):
            yield data[start : min(start + 16384, half)]
        deadline = time.monotonic() + 10
        while not [n for n in os.listdir(spool_dir) if n.endswith(".part")]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sent.set()
        rec.ae.shutdown()  # the SCP goes away in the middle
        yield data[half:]

    response = send_store(assoc, chunks())
    assert sent.is_set() and response is None
    assoc.abort()
    assert rec.calls == []
    assert files_in(rec.directory) == [] and files_in(spool_dir) == []


# -- hostile SOP Instance UIDs ----------------------------------------------------------------

NETWORK_HOSTILE_UIDS = [
    "../../etc/passwd",
    "/abs/path",
    "..",
    "...",
    "1.2.3/../../x",
    "1.2\x003",
    "C:\\evil",
    "1" * 63 + "/",
]


@pytest.mark.parametrize("threshold", [None, 0])
def test_hostile_instance_uid_stays_in_the_folder(
    threshold: int | None, receiver: MakeReceiver, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    folder = root / "deep" / "received"
    spool_dir = root / "deep" / "spool"
    spool_dir.mkdir(parents=True)
    rec = receiver(folder, threshold=threshold, spool_directory=spool_dir)
    assoc = rec.associate()
    data = encoded(make_dataset(size=1000))
    for n, uid in enumerate(NETWORK_HOSTILE_UIDS, 1):
        response = send_store(assoc, data, sop_instance=uid, message_id=n)
        assert isinstance(response, CStoreRSP) and response.Status == 0x0000
        # the response echoes the request's (valid-length) UID, as PS3.7 asks
        assert response.AffectedSOPInstanceUID == uid.rstrip("\x00 ")[:64]
    assoc.release()
    names = files_in(folder)
    assert len(names) == len(NETWORK_HOSTILE_UIDS)
    assert all(name.startswith("invalid-uid-") and name.endswith(".dcm") for name in names)
    everything = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert everything == sorted(
        ["deep", "deep/received", "deep/spool"] + [f"deep/received/{name}" for name in names]
    )
    assert not Path("/etc/passwd.dcm").exists()


def test_overlong_instance_uids(
    receiver: MakeReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UIDs no valid request has (PS3.5 9.1: 64 characters at most) are stored under a hash
    name, or refused with 0117H when the File Meta Information cannot even hold them."""
    from dicomnet import dimse_messages

    real_encode = dimse_messages._encode_text

    def lenient(keyword: str, vr: str, value: str, elem: int) -> bytes:
        if keyword == "AffectedSOPInstanceUID" and len(value) > 64:  # a hostile SCU
            raw = value.encode("ascii") + b"\x00" * (len(value) & 1)
            return dimse_messages._HEADER.pack(0, elem, len(raw)) + raw
        return real_encode(keyword, vr, value, elem)

    monkeypatch.setattr(dimse_messages, "_encode_text", lenient)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    rec = receiver(threshold=0, spool_directory=spool_dir)
    assoc = rec.associate()
    data = encoded(make_dataset(size=1000))
    long_uid = "1." * 500
    response = send_store(assoc, data, sop_instance=long_uid, message_id=1)
    assert response.Status == 0x0000 and response.AffectedSOPInstanceUID is None
    response = send_store(assoc, data, sop_instance="9" * 70_000, message_id=2)
    assert response.Status == 0x0117
    assoc.release()
    (name,) = files_in(rec.directory)
    assert name == spool.instance_file_name(long_uid.rstrip("\x00"))
    assert files_in(spool_dir) == []
    assert len(rec.calls) == 1


# -- statuses ---------------------------------------------------------------------------------


def store_status(rec: Any, **kwargs: Any) -> CStoreRSP:
    assoc = rec.associate([SECONDARY_CAPTURE, CT_IMAGE])
    try:
        response = send_store(assoc, encoded(make_dataset(size=100)), **kwargs)
    finally:
        assoc.release()
    assert isinstance(response, CStoreRSP)
    return response


def test_no_handler_is_refused(receiver: MakeReceiver, caplog: pytest.LogCaptureFixture) -> None:
    rec = receiver(bind_handler=False)
    response = store_status(rec)
    assert response.Status == storage.NO_HANDLER == 0x0122
    assert response.ErrorComment == "no handler stores this SOP class"
    assert "no handler is bound to EVT_C_STORE" in caplog.text


def test_handler_exception_is_c211(
    receiver: MakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(event: Any) -> int:
        raise RuntimeError("database down")

    response = store_status(receiver(handler=handler))
    assert response.Status == 0xC211
    assert "database down" in caplog.text


@pytest.mark.parametrize(
    ("result", "code"),
    [("success", 0xC002), (None, 0xC002), (0x12345, 0xC002), (Dataset(), 0xC001)],
)
def test_handler_invalid_result(result: object, code: int, receiver: MakeReceiver) -> None:
    assert store_status(receiver(handler=lambda event: result)).Status == code


@pytest.mark.parametrize("code", [0x0000, 0xB000, 0xB007, 0xA700, 0xA900, 0xC123, 0x0124])
def test_handler_status_is_sent(code: int, receiver: MakeReceiver) -> None:
    response = store_status(receiver(handler=lambda event: code))
    assert response.Status == code
    assert response.AffectedSOPClassUID == SECONDARY_CAPTURE


def test_handler_status_dataset(receiver: MakeReceiver) -> None:
    detail = Dataset()
    detail.Status = 0xA701
    detail.ErrorComment = "archive full"
    response = store_status(receiver(handler=lambda event: detail))
    assert (response.Status, response.ErrorComment) == (0xA701, "archive full")


def test_sop_class_not_of_the_context_is_refused(receiver: MakeReceiver) -> None:
    rec = receiver()
    response = store_status(rec, sop_class=CT_IMAGE, context_class=SECONDARY_CAPTURE)
    assert response.Status == 0x0122
    assert response.AffectedSOPClassUID == CT_IMAGE
    assert "abstract syntax" in (response.ErrorComment or "")
    assert rec.calls == []


def test_disk_full_while_spooling_is_out_of_resources(
    receiver: MakeReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev

    def writev(fd: int, buffers: Any) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".part"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", writev)
    rec = receiver(threshold=0, spool_directory=tmp_path)
    response = store_status(rec)
    assert response.Status == 0xA700
    assert "No space left" in (response.ErrorComment or "")
    assert rec.calls == []
    assert [n for n in files_in(tmp_path) if n.endswith(".part")] == []


# -- the response comes after the file is durable ---------------------------------------------


@pytest.mark.parametrize("threshold", [None, 0])
def test_success_is_sent_after_the_file_is_in_place(
    threshold: int | None,
    receiver: MakeReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    journal: list[str] = []
    real_sync_file, real_sync_dir, real_replace = spool.sync_file, spool.sync_directory, os.replace
    real_send = association.Association._send_message

    def sync_file(fd: int) -> None:
        real_sync_file(fd)
        journal.append("file flushed")

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        journal.append("renamed")

    def sync_directory(directory: Any) -> None:
        real_sync_dir(directory)
        journal.append("folder flushed")

    def send(self: Any, context_id: int, message: Any, dataset: Any) -> None:
        if isinstance(message, CStoreRSP):
            journal.append("response sent")
        real_send(self, context_id, message, dataset)

    monkeypatch.setattr(spool, "sync_file", sync_file)
    monkeypatch.setattr(spool, "sync_directory", sync_directory)
    monkeypatch.setattr(spool.os, "replace", replace)
    monkeypatch.setattr(association.Association, "_send_message", send)
    rec = receiver(threshold=threshold, spool_directory=tmp_path / "received")
    ds = make_dataset(size=10_000)
    assoc = rec.associate()
    status = assoc.send_c_store(ds)
    # the response has arrived: the file is there, complete
    target = rec.directory / f"{ds.SOPInstanceUID}.dcm"
    assert status.Status == 0 and target.exists()
    assert dataset_bytes_of(target)[1] == encoded(ds)
    assoc.release()
    assert journal == ["file flushed", "renamed", "folder flushed", "response sent"]
