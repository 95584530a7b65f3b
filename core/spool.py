"""Received data sets on disk: spooling as they arrive, and durable, atomic storage (PS3.10 7.1).

A C-STORE data set arrives as P-DATA fragments (PS3.7 8.1). Rule this module
keeps: **a data set is written exactly as it was received, never decoded and
never copied in user space** -- the fragments are memoryviews of the received
PDUs and go to the kernel with ``os.writev``, in batches of about
:data:`DEFAULT_BUFFER_SIZE` bytes so that a 16 KiB fragment does not cost a
system call. The batches are small enough that writing keeps pace with the
network: when the last fragment arrives, little is left to write before the
instance can be stored and answered, and only a few receive buffers are held
at a time whatever the size of the object.

* :class:`SpoolSink` is a :class:`dicomnet.service.DatasetSink`: it keeps the
  fragments in memory until the data set is larger than a threshold, then
  opens a temporary file, writes the Part 10 header (preamble, ``DICM`` and
  the File Meta Information built from the request, :class:`FileMetaInfo`)
  and everything received so far, and streams the rest. ``finish()`` returns
  the data set as ``bytes`` (small ones) or a :class:`SpooledDataset` (a
  complete Part 10 file); :meth:`SpoolSink.abort` deletes the temporary file.
  A write error (disk full) does not stop the transfer: the rest of the data
  set is discarded and ``finish()`` returns a :class:`SpoolFailure`, which the
  Storage SCP answers with A700H *Refused: out of resources*.
* :func:`store_bytes` and :meth:`SpooledDataset.store` put a received
  instance into a folder **durably and atomically**: the file is written to a
  temporary name in that folder, flushed to stable storage (``fdatasync``;
  ``F_FULLFSYNC`` where the platform has it), renamed into place with
  ``os.replace`` and the folder itself is flushed, before they return. A
  reader never sees a partial file, and once they return the file survives a
  crash or power loss (as far as the storage device honours flushes).
* :func:`instance_file_name` derives the file name from the SOP Instance UID
  so that no UID, however hostile, names a file outside the folder: a UID of
  1 to 64 characters made of digits separated by single dots gives
  ``<UID>.dcm``; anything else (``../../etc/passwd``, ``/abs``, NULs, 1000
  characters, dots only) gives ``invalid-uid-<SHA-256 prefix>.dcm``.

**Durability, and why it is paid per instance.** A Success status tells the
SCU that it may forget the instance (delete its copy, free its queue), so it
is sent only once the instance would survive a crash -- the Storage SCP sends
the response after the handler's ``store()`` returns. That needs, in order:
the file's data on stable storage (``fdatasync``), *then* the rename (so that
the name never points to a file whose data is not there yet: a crash between
a rename and a later data flush could leave a complete-looking name with
missing data), then the folder's entry on stable storage (``fsync`` of the
folder). Each of the two flushes is a journal commit on most file systems,
and both are on the path from the last fragment to the response. What is
done about their cost, and what is not:

* The data flush is shortened, not skipped: while a data set arrives,
  write-back of what has been written is started after each ``writev`` for
  the first :data:`WRITEBACK_STEP` bytes, then every ``WRITEBACK_STEP``
  bytes (``posix_fadvise(POSIX_FADV_DONTNEED)``, which on Linux starts
  writing dirty pages without waiting and drops only pages already clean).
  The device writes during the transfer instead of after it, and the final
  ``fdatasync`` waits for the tail only. It is a hint: the ``fdatasync``
  still decides durability. A receiver that does not flush (``dicomnet
  receive --no-fsync``) does not ask for it (``SpoolSink(writeback=False)``):
  the hint would cost it system calls and device writes it does not wait for.
* Flushing the folder once per *batch* of instances (one ``fsync`` for the
  instances of an association, or every N files) is **not** done: the SCU
  waits for each response before it sends the next instance (DCMTK's
  ``storescu``, pynetdicom and ``dicomnet store`` negotiate no asynchronous
  window), so delaying the flush delays the Success that depends on it --
  and answering Success before it would acknowledge an instance a crash can
  still lose. Folding "rename, then flush the folder" into one flush of the
  file (which covers the rename on ext4 and XFS, whose journals commit in
  order) is not done either: POSIX promises nothing of the sort, and other
  file systems (btrfs, NFS) do not behave so.
* Concurrent associations storing into the same folder already share
  journal commits: file systems with a journal fold the flushes that wait at
  the same time into one commit (ext4's jbd2, XFS's log force), so parallel
  senders cost fewer commits than files without any coordination here.

Temporary files are named ``.dicomnet-<random>-<n>.part`` (a random stem per
process, then a counter: no ``getrandom`` call per file), created with mode
0600 and given the process's normal file mode (``0666 & ~umask``) only when
stored. After a crash (``SIGKILL``, power loss) such files may remain; they
are never a complete instance under its final name and may be deleted when
no receiver is running.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import itertools
import os
import re
import secrets
import shutil
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    _F_FULLFSYNC: int | None = None
else:
    _F_FULLFSYNC = getattr(fcntl, "F_FULLFSYNC", None)

from .datasets import PREAMBLE, file_meta_for

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import FileMetaDataset

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "WRITEBACK_STEP",
    "DiscardSink",
    "FileMetaInfo",
    "Folder",
    "Received",
    "SpoolFailure",
    "SpoolSink",
    "SpooledDataset",
    "instance_file_name",
    "is_safe_uid",
    "spool_bytes",
    "store_bytes",
    "sync_directory",
    "sync_file",
]

#: bytes of fragments gathered before one ``writev`` (the only buffering: views, no copy);
#: about one receive chunk of the framing layer, so a chunk is let go once it is written
DEFAULT_BUFFER_SIZE = 256 * 1024

#: while a data set is written, start write-back after every this many bytes (a hint);
#: for the first WRITEBACK_STEP bytes after every writev, so that a small instance is on
#: its way to the device before its last fragment arrives
WRITEBACK_STEP = 2 * 1024 * 1024

_FADV_DONTNEED: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)

#: temporary files: ``.dicomnet-<random>.part`` (hidden, never ``*.dcm``)
TEMP_PREFIX = ".dicomnet-"
TEMP_SUFFIX = ".part"

#: a UID usable as a file name as it is: digits separated by single dots (PS3.5 9.1)
_SAFE_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_MAX_UID_LENGTH = 64



def _iov_max() -> int:
    """How many buffers one ``writev`` takes (1024 on Linux; POSIX guarantees 16)."""
    try:
        count = os.sysconf("SC_IOV_MAX")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - no sysconf
        count = 16
    return min(count, 1024) if count > 0 else 16


_IOV_MAX = _iov_max()

_O_BINARY = getattr(os, "O_BINARY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", None)

_Buffer = bytes | bytearray | memoryview
_PathLike = str | os.PathLike[str]


# -- file names --------------------------------------------------------------------------------


def is_safe_uid(uid: str) -> bool:
    """Whether ``uid`` can be a file name as it is: ``[0-9]+(.[0-9]+)*``, 1 to 64 characters."""
    return len(uid) <= _MAX_UID_LENGTH and _SAFE_UID.fullmatch(uid) is not None


def instance_file_name(sop_instance_uid: str, suffix: str = ".dcm") -> str:
    """The file name of an instance: ``<UID>.dcm``, or a hash-derived name for a hostile UID.

    The UID comes from the peer (the C-STORE-RQ's Affected SOP Instance UID),
    so it is checked before it becomes part of a path: only digits separated
    by single dots, at most 64 characters (PS3.5 9.1). Any other value --
    path separators, ``..``, NULs, other characters, empty, too long -- is
    replaced by ``invalid-uid-`` and the first 40 hex digits of its SHA-256,
    which is safe, stable (the same UID gives the same name) and unlikely to
    collide.
    """
    if is_safe_uid(sop_instance_uid):
        return sop_instance_uid + suffix
    digest = hashlib.sha256(sop_instance_uid.encode("utf-8", "surrogatepass")).hexdigest()
    return f"invalid-uid-{digest[:40]}{suffix}"


def _check_name(name: str) -> str:
    """A plain file name: no separator, not ``.``/``..``/empty, no NUL."""
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    if not name or name in (".", "..") or "\x00" in name or any(s in name for s in seps):
        raise ValueError(f"{name!r} is not a plain file name")
    return name


# -- File Meta Information ------------------------------------------------------------------------


def _element(tag_element: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) & 1:
        value += pad
    if len(value) > 0xFFFE:
        raise ValueError(f"(0002,{tag_element:04X}) is too long to encode ({len(value)} bytes)")
    return struct.pack("<HH2sH", 0x0002, tag_element, vr, len(value)) + value


@attrs.frozen
class FileMetaInfo:
    """The File Meta Information of a received instance (PS3.10 7.1), from the request.

    :meth:`encode` writes it by hand -- a few microseconds instead of the
    hundreds pydicom's writer takes -- with exactly the bytes
    :func:`dicomnet.datasets.part10_header` gives for :meth:`to_dataset`.
    """

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    implementation_class_uid: str
    implementation_version_name: str | None = None
    source_ae_title: str | None = None

    def encode(self) -> bytes:
        """Preamble, ``DICM`` and the File Meta Information group, explicit VR little endian.

        :raises ValueError: a value too long for a 16-bit length, or not ASCII.
        """
        parts = [
            # (0002,0001) File Meta Information Version, OB: a 4-byte length
            b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01",
            _element(0x0002, b"UI", self.sop_class_uid.encode("ascii"), b"\x00"),
            _element(0x0003, b"UI", self.sop_instance_uid.encode("ascii"), b"\x00"),
            _element(0x0010, b"UI", self.transfer_syntax.encode("ascii"), b"\x00"),
            _element(0x0012, b"UI", self.implementation_class_uid.encode("ascii"), b"\x00"),
        ]
        if self.implementation_version_name:
            parts.append(
                _element(0x0013, b"SH", self.implementation_version_name.encode("ascii"), b" ")
            )
        if self.source_ae_title:
            parts.append(_element(0x0016, b"AE", self.source_ae_title.encode("ascii"), b" "))
        body = b"".join(parts)
        return PREAMBLE + struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(body)) + body

    def to_dataset(self) -> FileMetaDataset:
        """The same information as a pydicom ``FileMetaDataset``."""
        return file_meta_for(
            self.sop_class_uid,
            self.sop_instance_uid,
            self.transfer_syntax,
            implementation_class_uid=self.implementation_class_uid,
            implementation_version_name=self.implementation_version_name,
            source_ae_title=self.source_ae_title,
        )


# -- durability primitives --------------------------------------------------------------------


def sync_file(fd: int) -> None:
    """Flush a file's data (and the metadata needed to read it) to stable storage.

    ``F_FULLFSYNC`` on macOS (its ``fsync`` does not flush the drive's cache),
    else ``fdatasync`` (a new file's size is part of what it flushes), else
    ``fsync``.
    """
    if _F_FULLFSYNC is not None:  # pragma: no cover - macOS
        fcntl.fcntl(fd, _F_FULLFSYNC)
    elif hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - Windows
        os.fsync(fd)


def sync_directory(directory: _PathLike) -> None:
    """Flush a directory's entries (a rename into it) to stable storage; no-op on Windows.

    A :class:`Folder` is flushed through the descriptor it keeps open; any other
    path is opened, flushed and closed.
    """
    if isinstance(directory, Folder):
        directory.sync()
        return
    if _O_DIRECTORY is None:  # pragma: no cover - Windows has no directory descriptors
        return
    fd = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Folder(os.PathLike[str]):
    """A folder that instances are stored in, its descriptor kept open for the flushes.

    Give it wherever a directory is expected (``event.store(folder)``,
    :meth:`SpooledDataset.store`, :func:`store_bytes`): the ``fsync`` of the
    folder after each rename then costs one system call instead of three (open,
    flush, close). Close it when done (or use it as a context manager).
    """

    __slots__ = ("_fd", "path")

    def __init__(self, path: _PathLike) -> None:
        self.path = os.fspath(path)
        self._fd = -1
        if _O_DIRECTORY is not None:
            self._fd = os.open(self.path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)

    def __fspath__(self) -> str:
        return self.path

    def sync(self) -> None:
        """Flush the folder's entries to stable storage."""
        if self._fd >= 0:
            os.fsync(self._fd)
        elif _O_DIRECTORY is not None:
            raise ValueError(f"the folder {self.path!r} is closed")

    def close(self) -> None:
        """Close the descriptor. Idempotent."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Folder {self.path!r}{'' if self._fd >= 0 else ' closed'}>"


@functools.cache
def _file_mode() -> int:
    """``0666 & ~umask``: the mode an ordinary new file gets (the umask read once)."""
    mask = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                mask = int(line.split()[1], 8)
    if mask is None:  # pragma: no cover - not Linux: the classic (racy) read
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


class _TempNames:
    """``<random>-<n>``: a random stem per process (drawn again in a forked child and after
    a clash), then a counter -- unpredictable names without a ``getrandom`` per file."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.stem = secrets.token_hex(8)
        self.count = itertools.count()

    def next(self) -> str:
        return f"{TEMP_PREFIX}{self.stem}-{next(self.count):x}{TEMP_SUFFIX}"


_TEMP_NAMES = _TempNames()
if hasattr(os, "register_at_fork"):  # a receiver's workers are forked: each its own stem
    os.register_at_fork(after_in_child=_TEMP_NAMES.renew)


def _create_temp(directory: _PathLike) -> tuple[int, str]:
    """Create ``.dicomnet-<random>-<n>.part`` in ``directory`` (mode 0600, exclusive)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_BINARY
    for _ in range(100):
        path = os.path.join(directory, _TEMP_NAMES.next())
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            _TEMP_NAMES.renew()
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(directory))


def _write_all(fd: int, buffers: Sequence[_Buffer], total: int | None = None) -> None:
    """``writev`` every buffer, whatever the partial writes and the IOV_MAX limit.

    ``total``, the byte count of ``buffers`` when the caller knows it, lets the
    common case -- everything written by one call -- skip the bookkeeping.
    """
    if total is not None and len(buffers) <= _IOV_MAX:
        written = os.writev(fd, buffers)
        if written == total:
            return
        pending = [b for b in buffers if len(b)]
        while written:  # a partial write: drop what went out, keep the tail
            head = pending[0]
            if written >= len(head):
                written -= len(head)
                pending.pop(0)
            else:
                pending[0] = memoryview(head)[written:]
                written = 0
    else:
        pending = [b for b in buffers if len(b)]
    while pending:
        batch = pending[:_IOV_MAX]
        written = os.writev(fd, batch)
        total = sum(len(b) for b in batch)
        if written == total:
            del pending[: len(batch)]
            continue
        while written:  # a partial write: drop what went out, keep the tail
            head = pending[0]
            if written >= len(head):
                written -= len(head)
                pending.pop(0)
            else:
                pending[0] = memoryview(head)[written:]
                written = 0


def _place(fd: int, temp: str, directory: _PathLike, name: str, fsync: bool) -> Path:
    """Give ``temp`` its final mode, flush it, rename it to ``directory/name``, flush the folder."""
    target = os.path.join(directory, _check_name(name))
    if hasattr(os, "fchmod"):
        os.fchmod(fd, _file_mode())
    if fsync:
        sync_file(fd)
    os.replace(temp, target)
    if fsync:
        sync_directory(directory)
    return Path(target)


def store_bytes(
    directory: _PathLike, name: str, buffers: Sequence[_Buffer], *, fsync: bool = True
) -> Path:
    """Write ``buffers`` as the file ``directory/name``, atomically and (``fsync``) durably.

    The bytes go to a temporary file in ``directory``, which is flushed,
    renamed over ``name`` (replacing an existing file atomically) and the
    folder flushed, before this returns. On any error the temporary file is
    removed and the error raised; an existing ``name`` is left as it was.

    :raises ValueError: ``name`` is not a plain file name.
    :raises OSError: the folder does not exist, the disk is full...
    """
    _check_name(name)
    fd, temp = _create_temp(directory)
    try:
        _write_all(fd, buffers)
        return _place(fd, temp, directory, name, fsync)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    finally:
        os.close(fd)


# -- what a sink returns ------------------------------------------------------------------------


@attrs.frozen
class SpoolFailure:
    """The data set could not be written (``reason``); it was discarded as it arrived."""

    reason: str
    errno: int | None = None


class SpooledDataset:
    """A received data set in a temporary Part 10 file, still open for writing.

    ``path`` is the file (preamble, File Meta Information, then the data set
    bytes exactly as received, from ``offset`` for ``length`` bytes). The
    association deletes it (:meth:`discard`) once the request has been served,
    unless it was moved with :meth:`store` (or by the application, with
    ``os.replace``).
    """

    __slots__ = ("_fd", "_path", "length", "meta", "offset", "stored_path")

    def __init__(self, fd: int, path: str, meta: FileMetaInfo, offset: int, length: int) -> None:
        self._fd = fd
        self._path = path
        self.meta = meta
        self.offset = offset
        self.length = length
        #: where :meth:`store` put the file, once it has
        self.stored_path: Path | None = None

    @property
    def path(self) -> Path:
        """Where the file is now: its temporary name, or where :meth:`store` put it."""
        return self.stored_path if self.stored_path is not None else Path(self._path)

    @property
    def temporary(self) -> bool:
        """Whether the file is still at its temporary name (deleted by :meth:`discard`)."""
        return self.stored_path is None and self._fd >= 0

    def store(self, directory: _PathLike, name: str, *, fsync: bool = True) -> Path:
        """Move the file to ``directory/name`` atomically and (``fsync``) durably.

        A rename when ``directory`` is on the spool folder's file system, else a
        copy to a temporary file there, flushed and renamed. Storing again
        copies the stored file.
        """
        _check_name(name)
        if self._fd < 0:
            if self.stored_path is None:
                raise ValueError("the spooled data set has been discarded")
            return self._copy_into(self.stored_path, directory, name, fsync)
        fd = self._fd
        try:
            target = _place(fd, self._path, directory, name, fsync)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # another file system than the spool folder's: copy, flush, rename there
            target = self._copy_into(self._path, directory, name, fsync)
            self.discard()
            self.stored_path = target
            return target
        self.stored_path = target
        self._fd = -1
        os.close(fd)
        return target

    @staticmethod
    def _copy_into(source: _PathLike, directory: _PathLike, name: str, fsync: bool) -> Path:
        fd, temp = _create_temp(directory)
        try:
            with open(source, "rb") as src, open(fd, "wb", closefd=False) as dst:
                shutil.copyfileobj(src, dst, DEFAULT_BUFFER_SIZE)
            return _place(fd, temp, directory, name, fsync)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        finally:
            os.close(fd)

    def read_dataset(self) -> bytes:
        """The data set bytes as received (without the Part 10 header)."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return f.read(self.length)

    def discard(self) -> None:
        """Close and delete the temporary file (nothing if it was stored). Idempotent."""
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        with contextlib.suppress(OSError):
            os.close(fd)
        if self.stored_path is None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)

    def __repr__(self) -> str:
        return f"<SpooledDataset {self.path} ({self.length} bytes at {self.offset})>"


#: what a :class:`~dicomnet.service.DatasetSink` returns for a complete data set
Received = bytes | SpooledDataset | SpoolFailure


def spool_bytes(
    meta: FileMetaInfo, data: _Buffer, directory: _PathLike | None = None
) -> SpooledDataset:
    """Write a data set received in memory as a temporary Part 10 file (``event.dataset_path``)."""
    header = meta.encode()
    fd, path = _create_temp(directory if directory is not None else tempfile.gettempdir())
    try:
        _write_all(fd, [header, data])
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return SpooledDataset(fd, path, meta, len(header), len(data))


# -- the sinks ---------------------------------------------------------------------------------


class DiscardSink:
    """A :class:`~dicomnet.service.DatasetSink` that drops the data set (a request to refuse)."""

    __slots__ = ("nbytes",)

    def __init__(self) -> None:
        self.nbytes = 0

    def write(self, data: memoryview) -> None:
        self.nbytes += len(data)

    def finish(self) -> Received:
        return b""

    def abort(self) -> None:
        pass


class SpoolSink:
    """Receive one data set: in memory up to ``threshold`` bytes, in a Part 10 file beyond.

    :param meta: the File Meta Information of the file, if one is written.
    :param directory: where the temporary file goes (``None``: the system's
        temporary folder). Put it on the file system of the final folder, so
        that storing is a rename.
    :param threshold: data sets of more than this many bytes are written to a
        file as they arrive; ``0`` writes every data set (even an empty one).
    :param buffer_size: fragments are written to the file once this many bytes
        are waiting (one ``writev``; the fragments themselves are not copied).
    :param writeback: start write-back while the data set arrives (see the
        module docstring), for a file that will be flushed when stored; a
        receiver that does not flush passes ``False``.

    Implements :class:`dicomnet.service.DatasetSink`. Not thread-safe: one
    association's thread feeds it.
    """

    __slots__ = (
        "_buffer_size",
        "_directory",
        "_failure",
        "_fd",
        "_header",
        "_kicked",
        "_meta",
        "_nbytes",
        "_path",
        "_pending",
        "_pending_bytes",
        "_threshold",
        "_writeback",
        "_written",
    )

    def __init__(
        self,
        meta: FileMetaInfo,
        directory: _PathLike | None = None,
        threshold: int = 0,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        writeback: bool = True,
    ) -> None:
        self._meta = meta
        self._writeback = writeback and _FADV_DONTNEED is not None
        self._directory = directory
        self._threshold = threshold
        self._buffer_size = buffer_size
        self._pending: list[_Buffer] = []
        self._pending_bytes = 0
        self._nbytes = 0
        self._fd = -1
        self._path = ""
        self._header = b""
        self._failure: SpoolFailure | None = None
        self._written = 0  # bytes written to the file (header included)
        self._kicked = 0  # bytes whose write-back has been started

    @property
    def nbytes(self) -> int:
        """Data set bytes received so far."""
        return self._nbytes

    @property
    def spooling(self) -> bool:
        """Whether the data set is being written to a file."""
        return self._fd >= 0

    def write(self, data: memoryview) -> None:
        """Take the next fragment (kept as a view until written)."""
        if self._failure is not None:
            return
        size = len(data)
        self._nbytes += size
        if not size:
            return
        self._pending.append(data)
        self._pending_bytes += size
        if self._fd < 0:
            if self._nbytes <= self._threshold:
                return
            self._open()
        if self._pending_bytes >= self._buffer_size:
            self._flush()

    def finish(self) -> Received:
        """The data set: ``bytes``, a :class:`SpooledDataset` or a :class:`SpoolFailure`."""
        if self._failure is not None:
            return self._failure
        if self._fd < 0:
            if self._threshold > 0:  # never more than the threshold: keep it in memory
                data = b"".join(self._pending)
                self._pending = []
                return data
            self._open()  # an empty data set, and files were asked for
        failure = self._flush(last=True)
        if failure is not None:
            return failure
        spooled = SpooledDataset(self._fd, self._path, self._meta, len(self._header), self._nbytes)
        self._fd = -1
        return spooled

    def abort(self) -> None:
        """The message will never be complete: drop the fragments, delete the file. Idempotent."""
        self._pending = []
        self._pending_bytes = 0
        self._close_and_remove()

    # -- internals ------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            self._header = self._meta.encode()
            directory = self._directory if self._directory is not None else tempfile.gettempdir()
            self._fd, self._path = _create_temp(directory)
            self._pending.insert(0, self._header)
            self._pending_bytes += len(self._header)
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def _flush(self, last: bool = False) -> SpoolFailure | None:
        """Write the waiting fragments; the failure, if this or an earlier write failed.

        The ``last`` write starts no write-back: the flush that follows, if any,
        starts it at once anyway.
        """
        if self._fd >= 0 and self._pending:
            try:
                _write_all(self._fd, self._pending, self._pending_bytes)
            except OSError as exc:
                self._fail(exc)
            else:
                self._written += self._pending_bytes
                self._pending = []
                self._pending_bytes = 0
                if (
                    self._writeback
                    and not last
                    and (self._written <= WRITEBACK_STEP
                    or self._written - self._kicked >= WRITEBACK_STEP)
                ):
                    self._start_writeback()
        return self._failure

    def _start_writeback(self) -> None:
        """Have the kernel start writing what was written since the last call (no wait)."""
        assert _FADV_DONTNEED is not None
        start, length = self._kicked, self._written - self._kicked
        with contextlib.suppress(OSError):
            os.posix_fadvise(self._fd, start, length, _FADV_DONTNEED)
        self._kicked = self._written

    def _fail(self, exc: Exception) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._failure = SpoolFailure(
            f"could not write the data set: {reason}",
            exc.errno if isinstance(exc, OSError) else None,
        )
        self._pending = []
        self._pending_bytes = 0
        self._close_and_remove()

    def _close_and_remove(self) -> None:
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(self._path)
