"""System calls per stored instance: what the receive path no longer pays for.

* A :class:`~dicomnet.spool.Folder` keeps the folder's descriptor open: the
  flush of the folder after each rename is one ``fsync``, not an ``open``, an
  ``fsync`` and a ``close``. ``dicomnet receive`` stores through one.
* Temporary names draw on the random source once per process (and again in a
  forked child), not once per file, and stay unique.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dicomnet import spool
from dicomnet.contrib.receive import StoreInDirectory
from dicomnet.spool import FileMetaInfo, Folder, SpooledDataset, SpoolSink, store_bytes

META = FileMetaInfo("1.2.840.10008.5.1.4.1.1.7", "1.2.3", "1.2.840.10008.1.2.1", "1.2.3.4")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The spool's opens of folders, folder flushes and random draws, in order."""
    seen: list[str] = []
    real_open, real_fsync, real_urandom = os.open, os.fsync, os.urandom

    def open_(path: Any, flags: int, *args: Any) -> int:
        if flags & getattr(os, "O_DIRECTORY", 0):
            seen.append("open folder")
        return real_open(path, flags, *args)

    def fsync(fd: int) -> None:
        seen.append("fsync")
        real_fsync(fd)

    def urandom(n: int) -> bytes:
        seen.append("random")
        return real_urandom(n)

    monkeypatch.setattr(spool.os, "open", open_)
    monkeypatch.setattr(spool.os, "fsync", fsync)
    monkeypatch.setattr(spool.os, "urandom", urandom)
    return seen


def _spooled(directory: Path, data: bytes) -> SpooledDataset:
    sink = SpoolSink(META, directory, 0)
    sink.write(memoryview(data))
    result = sink.finish()
    assert isinstance(result, SpooledDataset)
    return result


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="no directory descriptors")
def test_a_folder_is_opened_once_for_all_its_flushes(tmp_path: Path, calls: list[str]) -> None:
    with Folder(tmp_path) as folder:
        for n in range(3):
            _spooled(tmp_path, b"x" * 100).store(folder, f"{n}.dcm")
        store_bytes(folder, "3.dcm", [b"abc"])
    assert calls.count("open folder") == 1
    assert calls.count("fsync") == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.dcm", "1.dcm", "2.dcm", "3.dcm"]
    with pytest.raises(ValueError, match="closed"):
        folder.sync()


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="no directory descriptors")
def test_a_path_is_opened_for_each_flush(tmp_path: Path, calls: list[str]) -> None:
    for n in range(3):
        _spooled(tmp_path, b"x" * 100).store(tmp_path, f"{n}.dcm")
    assert calls.count("open folder") == 3


def test_store_in_directory_keeps_the_folder_open_only_when_asked(tmp_path: Path) -> None:
    kept = StoreInDirectory(tmp_path, keep_open=True)
    assert isinstance(kept._folder, Folder)
    kept.close()
    kept.close()  # idempotent
    assert StoreInDirectory(tmp_path)._folder is None
    assert StoreInDirectory(tmp_path, fsync=False, keep_open=True)._folder is None


def test_temporary_names_draw_randomness_once(tmp_path: Path, calls: list[str]) -> None:
    spool._TEMP_NAMES.renew()
    calls.clear()
    paths = {str(_spooled(tmp_path, b"y").path) for _ in range(20)}
    assert len(paths) == 20
    assert calls.count("random") == 0
    assert all(Path(p).name.startswith(spool.TEMP_PREFIX) for p in paths)
    assert all(p.endswith(spool.TEMP_SUFFIX) for p in paths)


def test_a_clash_draws_a_new_stem(tmp_path: Path) -> None:
    names = spool._TEMP_NAMES
    names.renew()
    stem = names.stem
    taken = tmp_path / f"{spool.TEMP_PREFIX}{stem}-0{spool.TEMP_SUFFIX}"
    taken.write_bytes(b"")
    names.count = iter([0, 0])  # type: ignore[assignment]
    spooled = _spooled(tmp_path, b"z")
    assert names.stem != stem
    assert spooled.path != taken
    spooled.discard()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_draws_its_own_stem() -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.write(write_fd, spool._TEMP_NAMES.stem.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    child_stem = os.read(read_fd, 64).decode()
    os.close(read_fd)
    os.waitpid(pid, 0)
    assert child_stem and child_stem != spool._TEMP_NAMES.stem
