"""The Storage SCU: C-STORE from data sets, files and streams (PS3.4 Annex B, PS3.7 9.1.1).

:func:`c_store` is what ``Association.send_c_store`` does. It takes a
:class:`pydicom.Dataset`, the path of a file or a binary file object, as
pynetdicom 2+ does:

* **Dataset**: it needs SOP Class UID and SOP Instance UID; its transfer syntax
  is ``file_meta.TransferSyntaxUID`` or, without one, the encoding it was read
  with. It is encoded in memory.
* **Part 10 file** (path or file object): only the File Meta Information is
  read (:mod:`dicomnet.part10`) -- the SOP Class and Instance UIDs come from
  *Media Storage SOP Class/Instance UID*. When the peer accepted the file's
  transfer syntax for its SOP class, **the data set bytes are streamed from the
  file as they are**: read in chunks of at most :data:`CHUNK_SIZE` (a file that
  fits in one chunk is read with one call), never decoded, never copied again
  on the way to the socket. Memory stays bounded for any file size.
* A file without File Meta Information (a bare data set) is decoded with
  pydicom and sent like a Dataset.

When the file's own syntax was not accepted, the data set is converted
(:mod:`dicomnet.transcode`): the accepted context asking the least is chosen --
another native syntax, then lossless re-compression, then decompression; lossy
compression only with ``allow_lossy=True``. Explicit VR Little Endian to
Implicit VR Little Endian and deflating/inflating stream too; the other
conversions decode the data set in memory. When no accepted context can take
the data set, :class:`ValueError` names the syntaxes the peer accepted.

:func:`send_files` sends many files over as few associations as possible,
with the contexts :func:`dicomnet.context_planning.plan_contexts` derives from
the files' meta; it is what ``dicomnet store`` runs.

The C-STORE itself is a plan (:func:`store_plan`, see :mod:`dicomnet.scu_plan`):
the threaded association runs it with :func:`dicomnet.scu_plan.run`, the
asyncio one (:mod:`dicomnet.aio`) with its async driver, the same code either way.

The kernel rule holds: no socket, thread or clock here; the association does
the I/O with the peer, this module only reads files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import attrs
from pydicom.dataset import Dataset
from pydicom.uid import UID

from . import dimse_messages as dm
from . import transcode as tc
from .acse import NegotiatedContext
from .datasets import decode_dataset, encode_dataset
from .part10 import (
    FileInfo,
    NotDicomError,
    guess_info,
    header_from_stream,
    info_from_meta,
    read_file_info,
    syntax_of_encoding,
)
from .scu_plan import NEXT, Exchange, Plan, PlanHost, SyncHost, run
from .status import code_to_category

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    from .ae import ApplicationEntity
    from .association import Association

__all__ = [
    "CHUNK_SIZE",
    "SendReport",
    "StoreResult",
    "c_store",
    "choose_context",
    "iter_files",
    "scan_files",
    "send_files",
    "store_plan",
    "store_status",
]

LOGGER = logging.getLogger("dicomnet.store")

#: the largest piece of a file read at once, and held while it is written
CHUNK_SIZE = 1024 * 1024

Buffer = bytes | bytearray | memoryview
DatasetSource = Dataset | str | os.PathLike[str] | IO[bytes]


def _uid_name(uid: str | None) -> str:
    if not uid:
        return "(none)"
    name = UID(uid).name
    return name if name and name != uid else uid


# -- choosing the context ----------------------------------------------------------------------


def choose_context(
    contexts: Iterable[NegotiatedContext],
    sop_class_uid: str,
    transfer_syntax: str,
    *,
    allow_lossy: bool = False,
) -> tuple[NegotiatedContext, tc.Conversion]:
    """The accepted context to send a ``sop_class_uid`` data set encoded in ``transfer_syntax``.

    Among the accepted contexts for the SOP class on which we are SCU, the one
    whose transfer syntax needs the least conversion (:func:`dicomnet.transcode.
    best_target`); the lowest context ID breaks ties.

    :raises ValueError: no such context, or none the data set can be converted
        to; the message names the syntaxes the peer accepted for the SOP class.
    """
    usable = [
        cx
        for cx in contexts
        if cx.accepted and cx.as_scu and cx.abstract_syntax == sop_class_uid and cx.transfer_syntax
    ]
    found = tc.best_target(
        transfer_syntax, (str(cx.transfer_syntax) for cx in usable), allow_lossy=allow_lossy
    )
    if found is None:
        accepted = sorted({_uid_name(cx.transfer_syntax) for cx in usable})
        if not accepted:
            raise ValueError(
                f"No presentation context for '{_uid_name(sop_class_uid)}' has been accepted "
                "by the peer"
            )
        raise ValueError(
            f"The '{_uid_name(sop_class_uid)}' data set in '{_uid_name(transfer_syntax)}' cannot "
            f"be sent: the peer accepted only {', '.join(repr(a) for a in accepted)} for it, and "
            "no conversion to those is possible" + ("" if allow_lossy else " without loss")
        )
    target, kind = found
    context = min(
        (cx for cx in usable if cx.transfer_syntax == target), key=lambda cx: cx.context_id
    )
    return context, kind


# -- what is sent --------------------------------------------------------------------------------


class _Source:
    """A data set to send: its UIDs, its transfer syntax and ways to get its bytes."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    #: the path, for results and messages
    path: str | None = None

    def raw(self) -> Buffer | Iterator[Buffer]:
        """The data set encoded in :attr:`transfer_syntax`: bytes or chunks streamed once."""
        raise NotImplementedError

    def decoded(self) -> Dataset:
        """The data set, decoded into a Dataset the caller may change."""
        raise NotImplementedError

    @property
    def streams(self) -> bool:
        """Whether :meth:`raw` reads as it goes (a file) rather than holding everything."""
        return False

    def close(self) -> None:
        pass


class _FromDataset(_Source):
    def __init__(self, ds: Dataset, transfer_syntax: str) -> None:
        self.ds = ds
        self.sop_class_uid = str(ds.SOPClassUID)
        self.sop_instance_uid = str(ds.SOPInstanceUID)
        self.transfer_syntax = transfer_syntax
        self._encoded: bytes | None = None

    def raw(self) -> bytes:
        if self._encoded is None:
            try:
                self._encoded = encode_dataset(self.ds, self.transfer_syntax)
            except Exception as exc:
                raise ValueError(
                    f"Failed to encode the supplied dataset in "
                    f"'{_uid_name(self.transfer_syntax)}': {exc}"
                ) from exc
        return self._encoded

    def decoded(self) -> Dataset:
        # A copy through the encoding: the application's Dataset is never changed.
        return decode_dataset(self.raw(), self.transfer_syntax)


class _FromFile(_Source):
    """A Part 10 file (path or stream) whose meta gave the UIDs and the syntax."""

    def __init__(
        self,
        info: FileInfo,
        fp: IO[bytes],
        head: bytes,
        *,
        owned: bool,
        remaining: int | None,
    ) -> None:
        self.sop_class_uid = info.sop_class_uid
        self.sop_instance_uid = info.sop_instance_uid
        self.transfer_syntax = info.transfer_syntax
        self.path = info.path
        self.info = info
        self._fp = fp
        self._head = head
        self._owned = owned
        self._remaining = remaining  # bytes left in the file after ``head``, if known
        self._used = False

    @property
    def streams(self) -> bool:
        return True

    def raw(self) -> Buffer | Iterator[Buffer]:
        if self._used:
            raise RuntimeError("the file's data set has been read already")
        self._used = True
        first = memoryview(self._head)[self.info.offset :]
        if self._remaining == 0:
            return first  # the whole data set was in the first read: one buffer
        return self._chunks(first)

    def _chunks(self, first: memoryview) -> Iterator[Buffer]:
        if len(first):
            yield first
        read = self._fp.read
        remaining = self._remaining
        while remaining is None or remaining > 0:
            # a new bytes object per read: fragments are held until written
            data = read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data

    def decoded(self) -> Dataset:
        raw = self.raw()
        data = b"".join(raw) if isinstance(raw, Iterator) else raw
        return decode_dataset(data, self.transfer_syntax)

    def close(self) -> None:
        if self._owned:
            self._fp.close()


def _dataset_syntax(ds: Dataset) -> str | None:
    """The transfer syntax of a Dataset: its file meta's, or the encoding it was read with."""
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if syntax:
        return str(syntax)
    implicit, little = ds.original_encoding
    if implicit is None:
        implicit = getattr(ds, "_is_implicit_VR", None)
        little = getattr(ds, "_is_little_endian", None)
    return syntax_of_encoding(implicit, little)


def _from_dataset(ds: Dataset, contexts: Sequence[NegotiatedContext]) -> _Source:
    missing = [kw for kw in ("SOPClassUID", "SOPInstanceUID") if kw not in ds]
    if missing:
        raise AttributeError(
            "Unable to send the dataset as one or more required elements are missing: "
            + ", ".join(missing)
        )
    syntax = _dataset_syntax(ds)
    if syntax is None:
        # Built from scratch: its pixel data (if any) is native; any native syntax
        # the peer accepted is its own.
        sop_class = str(ds.SOPClassUID)
        accepted = {
            cx.transfer_syntax for cx in contexts if cx.abstract_syntax == sop_class and cx.as_scu
        }
        syntax = next((ts for ts in tc.NATIVE_SYNTAXES if ts in accepted), None)
        syntax = syntax or tc.EXPLICIT_VR_LITTLE_ENDIAN
    return _FromDataset(ds, syntax)


def _open(
    source: str | os.PathLike[str] | IO[bytes], contexts: Sequence[NegotiatedContext]
) -> _Source:
    """A file or stream: read its head, and its meta if any."""
    owned = isinstance(source, str | os.PathLike)
    if owned:
        name: str = os.fspath(source)  # type: ignore[arg-type]
        path: str | None = name
        fp: IO[bytes] = open(name, "rb", buffering=0)  # noqa: SIM115 -- closed by the source
    else:
        fp = source  # type: ignore[assignment]
        path = getattr(fp, "name", None) if isinstance(getattr(fp, "name", None), str) else None
    try:
        size = None
        start = 0
        try:
            size = os.fstat(fp.fileno()).st_size
            start = fp.tell()
        except (AttributeError, OSError, ValueError):
            size = None
        remaining = None if size is None else max(0, size - start)
        first = CHUNK_SIZE if remaining is None else max(1, min(CHUNK_SIZE, remaining))
        try:
            head, elements, offset = header_from_stream(fp, first)
        except ValueError as exc:
            raise NotDicomError(f"{path or 'the file'} is not a DICOM file: {exc}") from exc
        if remaining is not None:
            remaining = max(0, remaining - len(head))
        info = None
        if elements is not None:
            info = info_from_meta(
                elements,
                offset,
                size=None if size is None else size - start,
                path=path,
            )
        if info is not None:
            return _FromFile(info, fp, head, owned=owned, remaining=remaining)
        # No usable meta: decode the whole thing, as pydicom would.
        rest = fp.read()
        data = head + rest
        if owned:
            fp.close()
        return _decode_bare(data, path)
    except BaseException:
        if owned:
            fp.close()
        raise


def _decode_bare(data: bytes, path: str | None) -> _Source:
    import io

    from pydicom import dcmread

    guess_info(io.BytesIO(data), path)  # NotDicomError when it is not DICOM
    ds = dcmread(io.BytesIO(data), force=True)
    syntax = _dataset_syntax(ds)
    source = _FromDataset(ds, syntax or tc.EXPLICIT_VR_LITTLE_ENDIAN)
    source.path = path
    return source


def _open_scanned(info: FileInfo, contexts: Sequence[NegotiatedContext]) -> _Source:
    """A file whose meta :func:`scan_files` read already: its data set, without a second parse.

    Falls back to reading the file afresh when the meta was guessed or the file
    is no longer the size it had (changed since it was scanned).
    """
    path = info.path
    if path is None or not info.exact or info.size is None:
        return _open(path if path is not None else "", contexts)
    fp: IO[bytes] = open(path, "rb", buffering=0)  # noqa: SIM115 -- closed by the source
    try:
        if os.fstat(fp.fileno()).st_size != info.offset + info.size:
            fp.close()
            return _open(path, contexts)
        fp.seek(info.offset)
        head = fp.read(max(1, min(CHUNK_SIZE, info.size)))
        remaining = max(0, info.size - len(head))
        return _FromFile(attrs.evolve(info, offset=0), fp, head, owned=True, remaining=remaining)
    except BaseException:
        fp.close()
        raise


def _source(
    dataset: DatasetSource | FileInfo, contexts: Sequence[NegotiatedContext]
) -> _Source:
    if isinstance(dataset, Dataset):
        return _from_dataset(dataset, contexts)
    if isinstance(dataset, FileInfo):
        return _open_scanned(dataset, contexts)
    if isinstance(dataset, str | os.PathLike) or hasattr(dataset, "read"):
        return _open(dataset, contexts)
    raise TypeError(
        "'dataset' must be a pydicom Dataset, the path of a DICOM file or a binary file "
        f"object, not {type(dataset).__name__}"
    )


class _Counted:
    """Chunks passed on while their bytes are counted."""

    __slots__ = ("_chunks", "nbytes")

    def __init__(self, chunks: Iterable[Buffer]) -> None:
        self._chunks = chunks
        self.nbytes = 0

    def __iter__(self) -> Iterator[Buffer]:
        for chunk in self._chunks:
            self.nbytes += len(chunk) if not isinstance(chunk, memoryview) else chunk.nbytes
            yield chunk


@attrs.frozen
class _Prepared:
    context: NegotiatedContext
    conversion: tc.Conversion
    data: Buffer | _Counted
    sop_instance_uid: str

    @property
    def nbytes(self) -> int:
        if isinstance(self.data, _Counted):
            return self.data.nbytes
        return memoryview(self.data).nbytes


def _prepare(
    source: _Source, contexts: Sequence[NegotiatedContext], allow_lossy: bool
) -> _Prepared:
    """Choose the context and get the bytes to send in its syntax."""
    context, kind = choose_context(
        contexts, source.sop_class_uid, source.transfer_syntax, allow_lossy=allow_lossy
    )
    target = str(context.transfer_syntax)
    instance = source.sop_instance_uid
    data: Buffer | _Counted
    if kind is tc.Conversion.NONE:
        raw = source.raw()
        data = _Counted(raw) if isinstance(raw, Iterator) else raw
    else:
        converter = tc.stream_converter(source.transfer_syntax, target) if source.streams else None
        if converter is not None:
            raw = source.raw()
            chunks: Iterable[Buffer] = raw if isinstance(raw, Iterator) else (raw,)
            data = _Counted(converter(chunks))
        else:
            ds = source.decoded()
            try:
                tc.convert_dataset(ds, source.transfer_syntax, target, allow_lossy=allow_lossy)
                data = tc.encode(ds, target)
            except ValueError:
                raise
            except Exception as exc:
                raise ValueError(
                    f"Failed to convert the dataset from '{_uid_name(source.transfer_syntax)}' "
                    f"to '{_uid_name(target)}': {exc}"
                ) from exc
            instance = str(ds.SOPInstanceUID)
        LOGGER.info(
            "Converting %s from '%s' to '%s' (%s)",
            source.path or instance,
            _uid_name(source.transfer_syntax),
            _uid_name(target),
            kind.name.lower(),
        )
    return _Prepared(context, kind, data, instance)


# -- C-STORE ---------------------------------------------------------------------------------------


@attrs.frozen
class _Outcome:
    #: the C-STORE-RSP, ``None`` if none came (timeout, abort, a wrong answer)
    response: dm.CStoreRSP | None
    context: NegotiatedContext | None = None
    conversion: tc.Conversion | None = None
    nbytes: int = 0
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None


def store_plan(
    assoc: PlanHost,
    dataset: DatasetSource | FileInfo,
    msg_id: int,
    priority: int,
    originator_aet: str | None,
    originator_id: int | None,
    allow_lossy: bool,
) -> Plan[_Outcome]:
    """C-STORE as a plan (:mod:`dicomnet.scu_plan`): the threaded and the asyncio
    associations both run it. A file's data set is an iterator of chunks read as
    the driver writes them, so memory stays bounded whichever drives it."""
    assoc._check_established()
    if priority not in (0, 1, 2):
        raise ValueError("'priority' must be 0, 1 or 2")
    negotiation = assoc._negotiation
    assert negotiation is not None
    contexts = negotiation.accepted_contexts
    source = _source(dataset, contexts)
    try:
        prepared = _prepare(source, contexts, allow_lossy)
        request = dm.CStoreRQ(
            MessageID=assoc._next_message_id(msg_id),
            AffectedSOPClassUID=source.sop_class_uid,
            AffectedSOPInstanceUID=prepared.sop_instance_uid,
            Priority=priority,
            MoveOriginatorApplicationEntityTitle=originator_aet,
            MoveOriginatorMessageID=originator_id,
        )
        answer: dm.CStoreRSP | None = None
        yield Exchange(prepared.context, request, prepared.data)
        try:
            item = yield NEXT
        except Exception:
            # The message was cut off (a read error, a malformed data set while
            # converting): the peer cannot make sense of what follows.
            LOGGER.error("Sending the C-STORE-RQ data set failed; aborting the association")
            assoc.abort()
            raise
        if item is not None:
            response = item[0]
            if isinstance(response, dm.CStoreRSP):
                answer = response
            else:
                LOGGER.error(
                    "Received a %s in answer to a C-STORE-RQ: aborting", response.message_name
                )
                assoc.abort()
        return _Outcome(
            answer,
            prepared.context,
            prepared.conversion,
            prepared.nbytes,
            source.sop_class_uid,
            prepared.sop_instance_uid,
        )
    finally:
        source.close()


def _store(
    assoc: SyncHost,
    dataset: DatasetSource | FileInfo,
    msg_id: int,
    priority: int,
    originator_aet: str | None,
    originator_id: int | None,
    allow_lossy: bool,
) -> _Outcome:
    return run(
        assoc,
        store_plan(assoc, dataset, msg_id, priority, originator_aet, originator_id, allow_lossy),
    )


def store_status(outcome: _Outcome) -> Dataset:
    """The status ``send_c_store`` returns for what :func:`store_plan` gave."""
    from .service_user import status_dataset

    return Dataset() if outcome.response is None else status_dataset(outcome.response)


def c_store(
    assoc: SyncHost,
    dataset: DatasetSource,
    msg_id: int = 1,
    priority: int = 2,
    originator_aet: str | None = None,
    originator_id: int | None = None,
    *,
    allow_lossy: bool = False,
) -> Dataset:
    """C-STORE (PS3.7 9.1.1): send ``dataset`` and return the response's status.

    ``dataset`` is a :class:`~pydicom.dataset.Dataset`, the path of a DICOM
    file, or a binary file object positioned at the start of one (see the
    module docstring). ``allow_lossy`` lets a lossless image be compressed with
    loss when the peer accepts nothing else for it.

    :returns: a Dataset with (0000,0900) *Status* and the status-related
        elements the peer sent; an empty Dataset if the peer timed out,
        aborted or sent an invalid response.
    :raises RuntimeError: without an established association.
    :raises AttributeError: a Dataset without SOP Class UID or SOP Instance UID.
    :raises ValueError: no accepted context can take the data set, or it cannot
        be encoded or converted; a bad ``priority`` or ``msg_id``.
    :raises OSError: the file cannot be read.
    """
    return store_status(
        _store(assoc, dataset, msg_id, priority, originator_aet, originator_id, allow_lossy)
    )


# -- many files --------------------------------------------------------------------------------


@attrs.frozen
class StoreResult:
    """What became of one file given to :func:`send_files`.

    ``category`` is the status category (``"Success"``, ``"Warning"``,
    ``"Failure"``, ``"Cancel"``) of the peer's answer, ``"Skipped"`` for a file
    that is not DICOM, ``"Error"`` when no answer came (no association, no
    usable context, the association ended, the file could not be read).
    """

    path: str
    category: str
    status: int | None = None
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    #: the transfer syntax it was sent in
    transfer_syntax: str | None = None
    conversion: tc.Conversion | None = None
    #: data set bytes sent
    nbytes: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Success or Warning: the peer stored it."""
        return self.category in ("Success", "Warning")


@attrs.define
class SendReport:
    """The outcome of :func:`send_files`: one :class:`StoreResult` per file, in order sent."""

    results: list[StoreResult] = attrs.field(factory=list)
    #: associations established, and those asked for that were not
    associations: int = 0
    failed_associations: int = 0

    def _count(self, *categories: str) -> int:
        return sum(1 for r in self.results if r.category in categories)

    @property
    def sent(self) -> int:
        """Instances the peer stored (Success or Warning)."""
        return self._count("Success", "Warning")

    @property
    def warnings(self) -> int:
        return self._count("Warning")

    @property
    def failures(self) -> int:
        """Instances the peer refused, or that could not be sent."""
        return self._count("Failure", "Cancel", "Error")

    @property
    def skipped(self) -> int:
        return self._count("Skipped")

    @property
    def nbytes(self) -> int:
        """Data set bytes of the instances sent."""
        return sum(r.nbytes for r in self.results if r.ok)

    @property
    def ok(self) -> bool:
        """Every DICOM file was stored (Success or Warning)."""
        return self.failures == 0


def iter_files(
    paths: Iterable[str | os.PathLike[str]], *, recursive: bool = False
) -> Iterator[Path]:
    """Files named in ``paths``, folders expanded (their files sorted; subfolders if ``recursive``).

    A path that does not exist is yielded as it is; reading it fails later.
    """
    for item in paths:
        path = Path(item)
        if path.is_dir():
            if recursive:
                for root, dirs, files in os.walk(path):
                    dirs.sort()
                    for name in sorted(files):
                        yield Path(root) / name
            else:
                yield from sorted(p for p in path.iterdir() if p.is_file())
        else:
            yield path


ProgressCallback = Callable[[StoreResult], None]


def scan_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    on_skip: Callable[[StoreResult], None] | None = None,
) -> list[FileInfo]:
    """The meta of the DICOM files in ``paths`` (see :func:`iter_files`), in order.

    A file that is not DICOM is logged (warning) and left out, as is one that
    cannot be read (error); ``on_skip`` gets a ``"Skipped"`` or ``"Error"``
    :class:`StoreResult` for each.
    """
    infos = []
    for path in iter_files(paths, recursive=recursive):
        try:
            infos.append(read_file_info(path))
        except NotDicomError as exc:
            LOGGER.warning("Skipping %s: %s", path, exc)
            if on_skip is not None:
                on_skip(StoreResult(str(path), "Skipped", error=str(exc)))
        except OSError as exc:
            LOGGER.error("Cannot read %s: %s", path, exc)
            if on_skip is not None:
                on_skip(StoreResult(str(path), "Error", error=str(exc)))
    return infos


def _send_one(
    assoc: SyncHost, info: FileInfo, priority: int, allow_lossy: bool, msg_id: int
) -> StoreResult:
    path = info.path or ""
    try:
        outcome = _store(assoc, info, msg_id, priority, None, None, allow_lossy)
    except (ValueError, AttributeError, OSError, RuntimeError) as exc:
        LOGGER.error("%s: %s", path, exc)
        return StoreResult(
            path,
            "Error",
            sop_class_uid=info.sop_class_uid,
            sop_instance_uid=info.sop_instance_uid,
            error=str(exc),
        )
    response = outcome.response
    if response is None:
        return StoreResult(
            path,
            "Error",
            sop_class_uid=info.sop_class_uid,
            sop_instance_uid=outcome.sop_instance_uid,
            error="no response (the peer timed out, aborted or answered wrongly)",
        )
    code = response.Status
    category = code_to_category(code)
    if category not in ("Success", "Warning"):
        comment = response.ErrorComment
        LOGGER.error(
            "%s: the peer answered 0x%04X (%s)%s",
            path,
            code,
            category,
            f": {comment}" if comment else "",
        )
    return StoreResult(
        path,
        category if category in ("Success", "Warning", "Failure", "Cancel") else "Failure",
        status=code,
        sop_class_uid=outcome.sop_class_uid,
        sop_instance_uid=outcome.sop_instance_uid,
        transfer_syntax=None if outcome.context is None else outcome.context.transfer_syntax,
        conversion=outcome.conversion,
        nbytes=outcome.nbytes,
    )


#: associations requested in a row for one plan without storing anything, before giving up
MAX_ATTEMPTS_WITHOUT_PROGRESS = 2


def send_files(
    ae: ApplicationEntity,
    host: str,
    port: int,
    paths: Iterable[str | os.PathLike[str] | FileInfo],
    *,
    ae_title: str = "ANY-SCP",
    max_pdu: int = 16382,
    recursive: bool = False,
    tls_args: tuple[ssl.SSLContext, str | None] | None = None,
    priority: int = 2,
    allow_lossy: bool = False,
    max_contexts: int | None = None,
    progress: ProgressCallback | None = None,
) -> SendReport:
    """Send the DICOM files in ``paths`` (folders expanded) to ``host:port`` with C-STORE.

    ``paths`` may also hold :class:`~dicomnet.part10.FileInfo` values already
    read (:func:`scan_files`), which are not read again before planning.

    The files' meta is read first; :func:`~dicomnet.context_planning.plan_contexts`
    derives the presentation contexts and splits the files over as few
    associations as the 128 contexts of an association allow. Each file is then
    sent as it is or converted (:func:`c_store`). Files that are not DICOM are
    skipped with a warning. When an association ends early, a new one is
    requested for the files left.

    ``progress(result)`` is called after each file (and each skipped one).
    Returns a :class:`SendReport`; nothing is raised for a file or an
    association that fails -- see each result.
    """
    from .context_planning import MAX_CONTEXTS, plan_contexts
    from .presentation import build_context

    report = SendReport()

    def emit(result: StoreResult) -> None:
        report.results.append(result)
        if progress is not None:
            progress(result)

    items = list(paths)
    infos = [item for item in items if isinstance(item, FileInfo)]
    if len(infos) != len(items):  # paths to read (FileInfo values are taken as read)
        infos = []
        for item in items:
            if isinstance(item, FileInfo):
                infos.append(item)
            else:
                infos.extend(scan_files([item], recursive=recursive, on_skip=emit))
    plans = plan_contexts(infos, max_contexts=max_contexts or MAX_CONTEXTS)
    for plan in plans:
        contexts = [
            build_context(cx.abstract_syntax, list(cx.transfer_syntaxes)) for cx in plan.contexts
        ]
        pending = list(plan.files)
        attempts = 0
        while pending:
            assoc = ae.associate(
                host, port, contexts=contexts, ae_title=ae_title, max_pdu=max_pdu, tls_args=tls_args
            )
            if not assoc.is_established:
                report.failed_associations += 1
                why = _no_association(assoc)
                LOGGER.error("No association with %r at %s:%s: %s", ae_title, host, port, why)
                for info in pending:
                    emit(
                        StoreResult(
                            info.path or "",
                            "Error",
                            sop_class_uid=info.sop_class_uid,
                            sop_instance_uid=info.sop_instance_uid,
                            error=f"no association: {why}",
                        )
                    )
                break
            report.associations += 1
            attempts += 1
            stored_here = 0
            try:
                message_id = 0
                while pending and assoc.is_established:
                    message_id = message_id % 0xFFFF + 1
                    result = _send_one(assoc, pending.pop(0), priority, allow_lossy, message_id)
                    stored_here += result.status is not None
                    emit(result)
            except BaseException:  # Ctrl-C, a failing progress callback: no time to release
                assoc.abort()
                raise
            if assoc.is_established:
                assoc.release()
            if stored_here:
                attempts = 0
            if pending and attempts >= MAX_ATTEMPTS_WITHOUT_PROGRESS:
                for info in pending:
                    emit(
                        StoreResult(
                            info.path or "",
                            "Error",
                            sop_class_uid=info.sop_class_uid,
                            sop_instance_uid=info.sop_instance_uid,
                            error="the association ended and could not be resumed",
                        )
                    )
                break
    return report


def _no_association(assoc: Association) -> str:
    if assoc.is_rejected:
        return "the association was rejected"
    if assoc.is_aborted:
        return "the connection failed or the association was aborted"
    return "no answer to the association request"
