"""Incremental PDU framing: a byte stream in, whole PDUs out (PS3.8 9.3.1).

:class:`PDUReader` cuts the stream at PDU boundaries without decoding anything.
It is built for ``recv_into``: the transport asks :meth:`PDUReader.get_buffer`
for writable space, receives into it and reports how much arrived with
:meth:`PDUReader.buffer_updated` (the shape of :class:`asyncio.BufferedProtocol`).
:meth:`PDUReader.feed` does the same for bytes that are already in hand.

A PDU that lies wholly inside one receive chunk is handed out as a memoryview
of that chunk: no copy. Chunks are never reused, so those views stay valid for
as long as somebody holds them (a data-set fragment waiting to be joined or
written). Only a PDU that straddles chunks is assembled into a buffer of its own,
allocated at exactly its announced length once the header has been checked
(past :data:`MAX_PREALLOCATION` the buffer grows as the bytes arrive, so that a
header alone cannot make us allocate gigabytes when there is no cap).

A long P-DATA-TF can instead be *streamed*: :meth:`PDUReader.next_pdata_part`
hands out its body in pieces as the bytes arrive (views of the receive chunks,
no buffer of its own), so that a consumer can write a data set while the rest
of the PDU is still on the wire, and a read never holds more than a chunk.
The PDU's header is checked first, as for any other; the consumer learns from
each piece how many bytes of the body are still to come, and takes the pieces
to the end before the next PDU is handed out (:meth:`PDUReader.next_pdu`
returns ``None`` meanwhile). Which P-DATA-TF PDUs are streamed is the caller's
choice (``stream_over``): the reader cuts, it does not decide.

Every PDU's announced length is checked against a cap *before* a byte of its
body is buffered: a P-DATA-TF longer than our Maximum Length Received, or any
other PDU longer than ``max_other_length``, raises
:class:`~dicomnet.errors.PDUTooLarge` (the Upper Layer answers with A-ABORT).
"""

from __future__ import annotations

from .errors import PDUTooLarge
from .pdu import PDU_HEADER, PDUType

__all__ = ["DEFAULT_CHUNK_SIZE", "DEFAULT_MAX_OTHER_LENGTH", "MAX_PREALLOCATION", "PDUReader"]

#: Size of the receive chunks; large enough to amortise the per-recv cost.
DEFAULT_CHUNK_SIZE = 256 * 1024

#: Cap for PDUs other than P-DATA-TF. An A-ASSOCIATE-RQ with 128 presentation
#: contexts of 20 transfer syntaxes each is about 330 kB.
DEFAULT_MAX_OTHER_LENGTH = 1024 * 1024

#: The most allocated for a straddling PDU on the strength of its header alone; a
#: longer PDU's buffer doubles as its bytes arrive (at most one extra copy of them).
MAX_PREALLOCATION = 16 * 1024 * 1024

_HEADER_SIZE = PDU_HEADER.size
_unpack_header = PDU_HEADER.unpack_from
_P_DATA_TF = int(PDUType.P_DATA_TF)


class PDUReader:
    """Split a byte stream into ``(pdu_type, body)`` pairs.

    :param max_pdata_length: the largest P-DATA-TF variable field accepted, our
        Maximum Length Received (PS3.8 D.1); ``0`` or ``None`` means no limit.
    :param max_other_length: the largest variable field for any other PDU type.
    """

    __slots__ = (
        "_chunk",
        "_chunk_size",
        "_end",
        "_max_other",
        "_max_pdata",
        "_pending",
        "_pending_fill",
        "_pending_length",
        "_pending_type",
        "_start",
        "_stream_left",
    )

    def __init__(
        self,
        max_pdata_length: int | None = None,
        *,
        max_other_length: int = DEFAULT_MAX_OTHER_LENGTH,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self._max_pdata = max_pdata_length or 0
        self._max_other = max_other_length
        self._chunk_size = chunk_size
        self._chunk = bytearray(chunk_size)
        self._start = 0  # first byte not yet handed out
        self._end = 0  # first byte not yet received
        # a PDU straddling chunks: its own buffer, how much of it is filled, its
        # announced length (the buffer may still be shorter) and its type
        self._pending: bytearray | None = None
        self._pending_fill = 0
        self._pending_length = 0
        self._pending_type = 0
        # the body of a streamed P-DATA-TF: bytes not yet handed out (0: none is)
        self._stream_left = 0

    @property
    def max_pdata_length(self) -> int:
        return self._max_pdata

    @max_pdata_length.setter
    def max_pdata_length(self, value: int | None) -> None:
        self._max_pdata = value or 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out as part of a whole PDU."""
        return (self._end - self._start) + self._pending_fill

    @property
    def streaming(self) -> bool:
        """Whether a P-DATA-TF body is being streamed (its rest: :meth:`next_pdata_part`)."""
        return self._stream_left > 0

    def get_buffer(self) -> memoryview:
        """Writable space to receive into; report the amount with :meth:`buffer_updated`."""
        pending = self._pending
        if pending is not None and self._pending_fill < self._pending_length:
            if self._pending_fill == len(pending):
                pending = self._grow_pending()
            return memoryview(pending)[self._pending_fill :]
        if self._end == len(self._chunk):
            self._new_chunk()
        return memoryview(self._chunk)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """Record that ``nbytes`` were written into the last :meth:`get_buffer` view."""
        if self._pending is not None and self._pending_fill < self._pending_length:
            self._pending_fill += nbytes
        else:
            self._end += nbytes

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes that are already in memory (tests, asyncio ``data_received``)."""
        view = memoryview(data).cast("B")
        while view:
            if (self._pending is None or self._pending_fill == self._pending_length) and (
                len(view) > len(self._chunk) - self._end
            ):
                # More than this chunk can take: one new chunk for all of it. Filling
                # chunk after chunk would copy the unread bytes again at every chunk
                # boundary, quadratic in the size of a large feed.
                self._new_chunk(len(view))
            target = self.get_buffer()
            n = min(len(target), len(view))
            target[:n] = view[:n]
            self.buffer_updated(n)
            view = view[n:]

    def next_pdu(
        self, only_type: int | None = None, stream_over: int = 0
    ) -> tuple[int, memoryview] | None:
        """Return the next whole PDU as ``(pdu_type, body)``, or ``None`` if incomplete.

        With ``only_type``, a next PDU of another type is left where it is and
        ``None`` returned (so is one whose header has not arrived yet). With
        ``stream_over``, a P-DATA-TF whose body is longer than that and has not
        wholly arrived is left where it is too (for :meth:`next_pdata_part`)
        instead of being gathered into a buffer of its own. While a streamed
        body is unfinished this returns ``None``.

        Raises :class:`PDUTooLarge` when the next PDU's header announces more than
        the cap; the stream is then unusable (the association is to be aborted).
        Nothing is consumed then, so the same call raises again.
        """
        if self._stream_left:
            return None
        if self._pending is not None:
            if self._pending_fill < self._pending_length:
                return None
            if only_type is not None and self._pending_type != only_type:
                return None
            body = memoryview(self._pending)
            pdu_type = self._pending_type
            self._pending = None
            self._pending_fill = 0
            return pdu_type, body
        available = self._end - self._start
        if available < _HEADER_SIZE:
            return None
        pdu_type, _, length = _unpack_header(self._chunk, self._start)
        if only_type is not None and pdu_type != only_type:
            return None
        limit = self._max_pdata if pdu_type == PDUType.P_DATA_TF else self._max_other
        if limit and length > limit:
            raise PDUTooLarge(length, limit, pdu_type)
        total = _HEADER_SIZE + length
        if available >= total:
            start = self._start + _HEADER_SIZE
            self._start += total
            return pdu_type, memoryview(self._chunk)[start : start + length]
        if stream_over and length > stream_over and pdu_type == _P_DATA_TF:
            return None  # to be streamed: next_pdata_part()
        if self._start + total <= len(self._chunk):
            return None  # it will fit in this chunk: wait for more
        # The PDU runs past the end of this chunk: give it a buffer of its own and
        # move what has arrived of its body there (the only copy framing makes).
        body_start = self._start + _HEADER_SIZE
        received = self._end - body_start
        pending = bytearray(min(length, max(MAX_PREALLOCATION, received)))
        pending[:received] = self._chunk[body_start : self._end]
        self._pending = pending
        self._pending_fill = received
        self._pending_length = length
        self._pending_type = pdu_type
        # nothing of this chunk is unread now; later bytes go after the moved ones
        self._start = self._end
        return None

    def next_pdata_part(self, stream_over: int = 0) -> tuple[memoryview, int] | None:
        """The next piece of a streamed P-DATA-TF body: ``(piece, left)``, or ``None``.

        ``piece`` is what has arrived of the body and was not handed out yet (a
        view of a receive chunk, never empty), ``left`` how many bytes of the
        body follow it; the PDU ends with the piece whose ``left`` is 0. While a
        body is streamed, every call continues it. Otherwise a body is streamed
        only when the next PDU is a P-DATA-TF longer than ``stream_over`` (0:
        none is) whose header and at least one body byte have arrived, but not
        all of it -- a whole PDU is :meth:`next_pdu`'s, as is anything else.

        Raises :class:`PDUTooLarge`, consuming nothing, when the next PDU's
        header announces more than the cap (:meth:`next_pdu` raises it again).
        """
        left = self._stream_left
        start = self._start
        available = self._end - start
        if left:
            if not available:
                return None
            n = available if available < left else left
            self._start = start + n
            self._stream_left = left - n
            return memoryview(self._chunk)[start : start + n], left - n
        if not stream_over or self._pending is not None or available <= _HEADER_SIZE:
            return None
        pdu_type, _, length = _unpack_header(self._chunk, start)
        if pdu_type != _P_DATA_TF:
            return None
        if self._max_pdata and length > self._max_pdata:
            raise PDUTooLarge(length, self._max_pdata, pdu_type)
        if length <= stream_over or available >= _HEADER_SIZE + length:
            return None
        received = available - _HEADER_SIZE
        self._start = self._end
        self._stream_left = length - received
        body_start = start + _HEADER_SIZE
        return memoryview(self._chunk)[body_start : body_start + received], length - received

    def _grow_pending(self) -> bytearray:
        """Double the buffer of a PDU longer than :data:`MAX_PREALLOCATION`, up to its length."""
        assert self._pending is not None
        grown = bytearray(min(self._pending_length, 2 * len(self._pending)))
        grown[: self._pending_fill] = self._pending
        self._pending = grown
        return grown

    def _new_chunk(self, min_free: int = 0) -> None:
        """Start a fresh chunk, carrying over the bytes not yet handed out.

        Normally that is at most an incomplete PDU header; after :meth:`feed`
        without :meth:`next_pdu` in between it can be more. The new chunk has room
        for ``min_free`` more bytes and at least doubles when it carries much over,
        so repeated feeds without reading copy each byte a bounded number of times.
        """
        leftover = self._chunk[self._start : self._end]
        free = max(self._chunk_size, min_free, len(leftover))
        self._chunk = bytearray(len(leftover) + free)
        self._chunk[: len(leftover)] = leftover
        self._start = 0
        self._end = len(leftover)
