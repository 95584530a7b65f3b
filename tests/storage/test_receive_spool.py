"""The spool: receiving data sets to disk without copying, and storing them durably (no sockets).

PS3.10 7.1 (the Part 10 header), PS3.5 9.1 (UIDs as file names).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet import spool
from dicomnet.datasets import part10_header
from dicomnet.spool import (
    DiscardSink,
    FileMetaInfo,
    SpooledDataset,
    SpoolFailure,
    SpoolSink,
    instance_file_name,
    is_safe_uid,
    store_bytes,
)

META = FileMetaInfo(
    sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
    sop_instance_uid="1.2.3.4.5.6.7.8.9",
    transfer_syntax="1.2.840.10008.1.2.1",
    implementation_class_uid="1.2.826.0.1.3680043.8.498.1",
    implementation_version_name="DICOMNET_010",
    source_ae_title="STORESCU",
)

uid_strategy = st.from_regex(r"[1-9][0-9]{0,5}(\.(0|[1-9][0-9]{0,7})){1,6}", fullmatch=True)
text_strategy = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\"),
    min_size=1,
    max_size=16,
)


def temp_files(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(spool.TEMP_PREFIX)]


# -- the File Meta Information ----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    sop_class=uid_strategy,
    sop_instance=uid_strategy,
    syntax=uid_strategy,
    implementation=uid_strategy,
    version=text_strategy,
    source=st.none() | text_strategy,
)
def test_meta_encoding_is_pydicoms(
    sop_class: str,
    sop_instance: str,
    syntax: str,
    implementation: str,
    version: str,
    source: str | None,
) -> None:
    """Our hand-written File Meta Information is byte for byte what pydicom writes."""
    meta = FileMetaInfo(sop_class, sop_instance, syntax, implementation, version, source)
    assert meta.encode() == part10_header(meta.to_dataset())


def test_meta_value_too_long_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        FileMetaInfo("1.2", "1" * 70000, "1.2", "1.2").encode()


# -- file names -------------------------------------------------------------------------------

HOSTILE_UIDS = [
    "../../etc/passwd",
    "/abs/path",
    "/",
    "..",
    ".",
    "...",
    "",
    "1.2.3\x00/../../x",
    "\x00",
    "1" * 1000,
    "1." * 40 + "1",  # 81 characters: valid form, too long
    "1..2",
    ".1.2",
    "1.2.",
    "1.2/3",
    "1.2\\3",
    "C:\\Windows\\win.ini",
    "1.2.3 ",
    "１.２",  # full-width digits
]


@pytest.mark.parametrize("uid", ["1.2.3", "1", "0.0", "1.2.840.10008.5.1.4.1.1.2", "9" * 64])
def test_safe_uid_names_itself(uid: str) -> None:
    assert is_safe_uid(uid)
    assert instance_file_name(uid) == uid + ".dcm"


@pytest.mark.parametrize("uid", HOSTILE_UIDS)
def test_hostile_uid_gets_a_hash_name(uid: str) -> None:
    assert not is_safe_uid(uid)
    name = instance_file_name(uid)
    assert name.startswith("invalid-uid-") and name.endswith(".dcm")
    assert all(c.isalnum() or c in "-." for c in name)
    assert instance_file_name(uid) == name  # stable
    assert len({instance_file_name(u) for u in HOSTILE_UIDS}) == len(HOSTILE_UIDS)


@pytest.mark.parametrize("uid", HOSTILE_UIDS)
def test_hostile_uid_stays_in_the_folder(uid: str, tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    path = store_bytes(folder, instance_file_name(uid), [b"data"])
    assert path.parent == folder and path.read_bytes() == b"data"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a",
        "a/b",
        f"a/b/{path.name}",
    ]


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "/etc/passwd", "x\x00"])
def test_store_refuses_a_name_that_is_not_a_plain_file_name(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        store_bytes(tmp_path, name, [b"x"])
    assert os.listdir(tmp_path) == []


# -- the sink ---------------------------------------------------------------------------------


def fragments(data: bytes, size: int = 16376) -> list[memoryview]:
    view = memoryview(data)
    return [view[i : i + size] for i in range(0, len(data), size)]


def feed(sink: Any, data: bytes, size: int = 16376) -> Any:
    for piece in fragments(data, size):
        sink.write(piece)
    return sink.finish()


def test_small_data_set_stays_in_memory(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    result = feed(SpoolSink(META, tmp_path, threshold=50_000), data)
    assert result == data and isinstance(result, bytes)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("threshold", [0, 1, 49_999])
def test_large_data_set_is_spooled_as_part10(threshold: int, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    result = feed(SpoolSink(META, tmp_path, threshold=threshold, buffer_size=20_000), data)
    assert isinstance(result, SpooledDataset)
    try:
        raw = result.path.read_bytes()
        header = META.encode()
        assert raw == header + data
        assert (result.offset, result.length) == (len(header), len(data))
        assert result.read_dataset() == data
        assert result.path.parent == tmp_path and result.path.name.startswith(".dicomnet-")
        assert os.stat(result.path).st_mode & 0o777 == 0o600  # private while temporary
    finally:
        result.discard()
    assert os.listdir(tmp_path) == []


def test_in_memory_and_spooled_give_the_same_file(tmp_path: Path) -> None:
    data = os.urandom(100_001)
    in_memory = feed(SpoolSink(META, tmp_path, threshold=1 << 20), data)
    spooled = feed(SpoolSink(META, tmp_path, threshold=0), data)
    assert isinstance(in_memory, bytes) and isinstance(spooled, SpooledDataset)
    a = store_bytes(tmp_path, "a.dcm", [META.encode(), in_memory])
    b = spooled.store(tmp_path, "b.dcm")
    assert a.read_bytes() == b.read_bytes() == META.encode() + data


def test_empty_data_set_is_a_file_when_files_are_asked_for(tmp_path: Path) -> None:
    sink = SpoolSink(META, tmp_path, threshold=0)
    sink.write(memoryview(b""))
    result = sink.finish()
    assert isinstance(result, SpooledDataset)
    assert result.path.read_bytes() == META.encode() and result.length == 0
    result.discard()
    assert SpoolSink(META, tmp_path, threshold=10).finish() == b""


def test_fragments_are_written_without_copies_and_in_few_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each fragment reaches writev as the very view received; ~1 call per MiB."""
    data = os.urandom(4 * 1024 * 1024)
    pieces = fragments(data)
    seen: list[int] = []
    calls = 0
    real_writev = os.writev

    def writev(fd: int, buffers: Any) -> int:
        nonlocal calls
        calls += 1
        seen.extend(id(b) for b in buffers)
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", writev)
    sink = SpoolSink(META, tmp_path, threshold=0)
    for piece in pieces:
        sink.write(piece)
    result = sink.finish()
    assert isinstance(result, SpooledDataset)
    assert set(map(id, pieces)) <= set(seen)
    assert calls <= len(data) // spool.DEFAULT_BUFFER_SIZE + 2
    assert result.read_dataset() == data
    result.discard()


def test_abort_deletes_the_temporary_file(tmp_path: Path) -> None:
    sink = SpoolSink(META, tmp_path, threshold=0, buffer_size=1)
    sink.write(memoryview(b"x" * 1000))
    assert sink.spooling and len(temp_files(tmp_path)) == 1
    sink.abort()
    sink.abort()  # idempotent
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("failing", ["open", "writev"])
def test_disk_full_discards_and_reports(
    failing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "open":
        monkeypatch.setattr(spool, "_create_temp", full)
    else:
        monkeypatch.setattr(os, "writev", full)
    sink = SpoolSink(META, tmp_path, threshold=0, buffer_size=10)
    for piece in fragments(os.urandom(100_000), 1000):
        sink.write(piece)  # never raises
    result = sink.finish()
    assert isinstance(result, SpoolFailure)
    assert result.errno == errno.ENOSPC and "No space left" in result.reason
    assert os.listdir(tmp_path) == []


def test_discard_sink() -> None:
    sink = DiscardSink()
    sink.write(memoryview(b"abc"))
    assert (sink.finish(), sink.nbytes) == (b"", 3)
    sink.abort()


# -- durable, atomic storing ------------------------------------------------------------------


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record, in order, file flushes, renames and folder flushes made by the spool."""
    events: list[tuple[str, str]] = []
    real_sync_file, real_sync_dir, real_replace = spool.sync_file, spool.sync_directory, os.replace

    def sync_file(fd: int) -> None:
        events.append(("sync_file", os.readlink(f"/proc/self/fd/{fd}")))
        real_sync_file(fd)

    def sync_directory(directory: Any) -> None:
        events.append(("sync_directory", os.fspath(directory)))
        real_sync_dir(directory)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(spool, "sync_file", sync_file)
    monkeypatch.setattr(spool, "sync_directory", sync_directory)
    monkeypatch.setattr(spool.os, "replace", replace)
    return events


def test_store_bytes_flushes_renames_then_flushes_the_folder(
    tmp_path: Path, journal: list[tuple[str, str]]
) -> None:
    path = store_bytes(tmp_path, "x.dcm", [b"abc", memoryview(b"def")])
    assert path.read_bytes() == b"abcdef"
    (kind0, temp), (kind1, target), (kind2, folder) = journal
    assert (kind0, kind1, kind2) == ("sync_file", "replace", "sync_directory")
    assert Path(temp).name.startswith(".dicomnet-") and Path(temp).parent == tmp_path
    assert (target, folder) == (str(path), str(tmp_path))
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_spooled_store_is_a_rename_then_flushes(
    tmp_path: Path, journal: list[tuple[str, str]]
) -> None:
    spooled = feed(SpoolSink(META, tmp_path, threshold=0), b"data" * 1000)
    temp = spooled.path
    target = spooled.store(tmp_path, "y.dcm")
    assert [kind for kind, _ in journal] == ["sync_file", "replace", "sync_directory"]
    assert journal[0][1] == str(temp)
    assert not temp.exists() and target.read_bytes() == META.encode() + b"data" * 1000
    assert spooled.path == target
    spooled.discard()  # never deletes the stored file
    assert target.exists()


def test_store_without_fsync(tmp_path: Path, journal: list[tuple[str, str]]) -> None:
    store_bytes(tmp_path, "x.dcm", [b"abc"], fsync=False)
    assert [kind for kind, _ in journal] == ["replace"]


def test_store_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    (tmp_path / "x.dcm").write_bytes(b"old")
    store_bytes(tmp_path, "x.dcm", [b"new"])
    assert (tmp_path / "x.dcm").read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["x.dcm"]


def test_failed_store_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.dcm").write_bytes(b"old")

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(spool, "sync_file", broken)
    with pytest.raises(OSError, match="I/O error"):
        store_bytes(tmp_path, "x.dcm", [b"new"])
    assert os.listdir(tmp_path) == ["x.dcm"] and (tmp_path / "x.dcm").read_bytes() == b"old"


def test_store_across_file_systems_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool_dir, target_dir = tmp_path / "spool", tmp_path / "target"
    spool_dir.mkdir()
    target_dir.mkdir()
    spooled = feed(SpoolSink(META, spool_dir, threshold=0), b"z" * 5000)
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(src).parent == spool_dir:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(spool.os, "replace", replace)
    target = spooled.store(target_dir, "z.dcm")
    assert target.read_bytes() == META.encode() + b"z" * 5000
    assert os.listdir(spool_dir) == [] and os.listdir(target_dir) == ["z.dcm"]
    # storing again copies the stored file
    again = spooled.store(tmp_path, "again.dcm")
    assert again.read_bytes() == target.read_bytes()


def test_spool_bytes_for_dataset_path(tmp_path: Path) -> None:
    spooled = spool.spool_bytes(META, b"abc", tmp_path)
    assert spooled.path.read_bytes() == META.encode() + b"abc"
    spooled.discard()
    assert os.listdir(tmp_path) == []
