"""The DIMSE layer over P-DATA: messages to PDVs and back (PS3.7 6.3.1, 8.1; PS3.8 9.3.5, E.2).

A DIMSE message is a command set, optionally followed by a data set, each cut
into presentation data values (PDVs) whose message control header says whether
the fragment is command or data (bit 0) and whether it is the last of its kind
(bit 1). All fragments of one message travel on one presentation context, the
command set first (PS3.7 8.1, PS3.8 E.2).

Sending: :func:`fragment_message` yields batches of whole P-DATA-TF PDUs, one
PDV each, ready for ``UpperLayer.send_pdata`` and one ``sendmsg``.

Receiving: :class:`MessageAssembler` turns the variable fields of received
P-DATA-TF PDUs into :class:`CommandReceived` and :class:`DatasetFragment`
events, and checks the ordering rules above; a violation raises
:class:`~dicomnet.errors.RemoteProtocolError` carrying the A-ABORT reason. A
long P-DATA-TF can be fed in pieces as it arrives
(:meth:`MessageAssembler.receive_part`): a data PDV then comes out as several
fragments, the last one flagged only once the PDV's last byte is in, and the
PDV structure is checked as the pieces come (a PDV that runs past the end of
its PDU is refused at its header).

This module owns no I/O and keeps one rule: data-set bytes are never copied.
Outgoing fragments are memoryview slices of the caller's buffer or chunks
(``piece.obj is dataset``); incoming fragments are memoryview slices of the
received PDU. Fragmenting a 512 KiB data set allocates only the 12-byte PDU
headers; the consumer decides whether to join the fragments
(:class:`DatasetCollector`, one join) or to stream them to disk. Command sets
are small and are copied freely.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterable, Iterator
from typing import Any, NamedTuple, cast

import attrs

from .dimse_messages import DimseMessage, decode_command, encode_command
from .errors import AbortReason, LocalProtocolError, PDUDecodeError, RemoteProtocolError
from .pdu import iter_pdvs, pdata_header

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FRAGMENT_SIZE",
    "MAX_COMMAND_LENGTH",
    "Buffer",
    "CommandReceived",
    "DatasetCollector",
    "DatasetFragment",
    "DimseEvent",
    "MessageAssembler",
    "MessageIDs",
    "command_pdus",
    "dataset_pdus",
    "fragment_message",
]

Buffer = bytes | bytearray | memoryview

#: PDV data size when the peer announces no maximum length (0): bounds what one
#: PDU asks the peer to hold.
DEFAULT_FRAGMENT_SIZE = 4 * 1024 * 1024

#: :func:`fragment_message` yields a batch once it holds this many data bytes.
DEFAULT_BATCH_SIZE = 1024 * 1024

#: A longer command set is refused while being reassembled. Real ones are a few
#: hundred bytes; an N-GET-RQ listing 16384 attribute tags is 64 KiB.
MAX_COMMAND_LENGTH = 1024 * 1024

#: Bytes of the P-DATA-TF variable field each PDV costs besides its data:
#: the item length (4), the presentation context ID (1), the control header (1).
_PDV_OVERHEAD = 6

_COMMAND, _LAST = 0x01, 0x02

#: the PDV item header: item length, presentation context ID, message control header
_unpack_pdv_header = struct.Struct(">IBB").unpack_from


def _view(data: Any) -> memoryview:
    """A one-dimensional byte view of anything with the buffer protocol (no copy)."""
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


# -- sending ------------------------------------------------------------------------------


def fragment_message(
    context_id: int,
    message: DimseMessage,
    dataset: Buffer | Iterable[Buffer] | None,
    max_pdu_length: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[list[Buffer]]:
    """Cut a DIMSE message into P-DATA-TF PDUs (PS3.8 9.3.5, E.2).

    Yields lists of buffers; each list is one or more whole PDUs of one PDV
    each (a 12-byte header from :func:`~dicomnet.pdu.pdata_header`, then the
    data), and holds about ``batch_size`` data bytes, so that a transport
    writes each list with one ``sendmsg``. The command set comes first, then
    the data set.

    :param dataset: ``None`` (no data set), a bytes-like object (sliced, never
        copied: it must not change until the batches are written), or an
        iterable of bytes-like chunks streamed in order. Empty
        chunks are skipped; an iterable that yields nothing is an empty data
        set (one empty last fragment). Chunks are held until written: each must
        be a distinct object that is not modified afterwards.
    :param max_pdu_length: the peer's Maximum Length Received, the largest
        P-DATA-TF variable field it accepts (PS3.8 D.1); each PDV costs 6 bytes
        of it. ``0`` means no limit; :data:`DEFAULT_FRAGMENT_SIZE` is used.
    :raises ValueError: for a context ID outside 1-255, a maximum length too
        small to carry a byte (1-6) or negative, or a message that cannot be
        encoded -- before anything is yielded.
    """
    if not 1 <= context_id <= 255:
        raise ValueError(f"presentation context ID {context_id} is not in 1-255")
    if max_pdu_length < 0 or 0 < max_pdu_length <= _PDV_OVERHEAD:
        raise ValueError(
            f"maximum PDU length {max_pdu_length} leaves no room for data "
            f"(each PDV takes {_PDV_OVERHEAD} bytes of it)"
        )
    if isinstance(dataset, str):
        raise TypeError("a data set is bytes-like or an iterable of bytes-like chunks, not str")
    fragment = max_pdu_length - _PDV_OVERHEAD if max_pdu_length else DEFAULT_FRAGMENT_SIZE
    command = encode_command(message, dataset is not None)

    batch: list[Buffer] = []
    for start in range(0, len(command), fragment):
        piece = command[start : start + fragment]
        control = _COMMAND | _LAST if start + fragment >= len(command) else _COMMAND
        batch.append(pdata_header(context_id, control, len(piece)) + piece)

    if dataset is None:
        return iter((batch,))
    try:
        view = _view(dataset)
    except TypeError:
        return _stream_pdus(
            context_id, cast("Iterable[Buffer]", dataset), fragment, batch, batch_size
        )
    return _buffer_pdus(context_id, view, fragment, batch, batch_size)


def _buffer_pdus(
    context_id: int, view: memoryview, fragment: int, batch: list[Buffer], batch_size: int
) -> Iterator[list[Buffer]]:
    total = len(view)
    if total == 0:
        batch.append(pdata_header(context_id, _LAST, 0))
        yield batch
        return
    full_header = pdata_header(context_id, 0, fragment)
    size = 0
    for start in range(0, total, fragment):
        stop = start + fragment
        if stop >= total:
            batch.append(pdata_header(context_id, _LAST, total - start))
        else:
            batch.append(full_header)
        batch.append(view[start:stop])
        size += fragment
        if size >= batch_size and stop < total:
            yield batch
            batch = []
            size = 0
    yield batch


def _stream_pdus(
    context_id: int,
    chunks: Iterable[Buffer],
    fragment: int,
    batch: list[Buffer],
    batch_size: int,
) -> Iterator[list[Buffer]]:
    # The last-fragment bit is known only when the iterator is exhausted, so one
    # fragment is held back until the next one (or the end) is seen.
    full_header = pdata_header(context_id, 0, fragment)
    pending: memoryview | None = None
    size = 0
    for chunk in chunks:
        view = _view(chunk)
        for start in range(0, len(view), fragment):
            if pending is not None:
                n = len(pending)
                batch.append(full_header if n == fragment else pdata_header(context_id, 0, n))
                batch.append(pending)
                size += n
                if size >= batch_size:
                    yield batch
                    batch = []
                    size = 0
            pending = view[start : start + fragment]
    if pending is None:
        batch.append(pdata_header(context_id, _LAST, 0))
    else:
        batch.append(pdata_header(context_id, _LAST, len(pending)))
        batch.append(pending)
    yield batch


def _fragment_size(max_pdu_length: int) -> int:
    if max_pdu_length < 0 or 0 < max_pdu_length <= _PDV_OVERHEAD:
        raise ValueError(
            f"maximum PDU length {max_pdu_length} leaves no room for data "
            f"(each PDV takes {_PDV_OVERHEAD} bytes of it)"
        )
    return max_pdu_length - _PDV_OVERHEAD if max_pdu_length else DEFAULT_FRAGMENT_SIZE


def command_pdus(
    context_id: int, message: DimseMessage, has_dataset: bool, max_pdu_length: int
) -> bytes:
    """The P-DATA-TF PDU(s) of ``message``'s command set, as one bytes object (PS3.8 E.2).

    What :func:`fragment_message` sends first, for a sender that sends the same
    command set many times (the Pending responses of a C-FIND, which differ
    only in their identifiers) and encodes it once. Raises :class:`ValueError`
    as :func:`fragment_message` does.
    """
    if not 1 <= context_id <= 255:
        raise ValueError(f"presentation context ID {context_id} is not in 1-255")
    fragment = _fragment_size(max_pdu_length)
    command = encode_command(message, has_dataset)
    parts: list[bytes] = []
    for start in range(0, len(command), fragment):
        piece = command[start : start + fragment]
        control = _COMMAND | _LAST if start + fragment >= len(command) else _COMMAND
        parts.append(pdata_header(context_id, control, len(piece)))
        parts.append(piece)
    return b"".join(parts)


def dataset_pdus(context_id: int, dataset: Buffer, max_pdu_length: int) -> list[Buffer]:
    """The P-DATA-TF PDUs of a data set held in memory, one PDV each (PS3.8 E.2).

    A data set that fits in one PDV (a query identifier) is one bytes object,
    header and data together; a longer one is headers and memoryview slices,
    as :func:`fragment_message` cuts it. The context ID is not checked: this
    follows :func:`command_pdus`.
    """
    fragment = _fragment_size(max_pdu_length)
    total = len(dataset)
    if total <= fragment:
        return [pdata_header(context_id, _LAST, total) + bytes(dataset)]
    pdus: list[Buffer] = []
    for batch in _buffer_pdus(context_id, _view(dataset), fragment, [], total):
        pdus.extend(batch)
    return pdus


# -- receiving ----------------------------------------------------------------------------


@attrs.frozen
class CommandReceived:
    """A whole command set arrived on ``context_id``; a data set follows if ``has_dataset``."""

    context_id: int
    message: DimseMessage
    has_dataset: bool


class DatasetFragment(NamedTuple):
    """A data-set PDV, or a piece of one: a view of the received PDU (a tuple, not an
    object per fragment). ``is_last``: the data set ends with it."""

    context_id: int
    data: memoryview
    is_last: bool


DimseEvent = CommandReceived | DatasetFragment


def _unexpected(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(text, abort_reason=AbortReason.UNEXPECTED_PDU_PARAMETER)


def _invalid(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(text, abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE)


class MessageAssembler:
    """Reassemble DIMSE messages from P-DATA-TF bodies (PS3.7 8.1, PS3.8 E.2).

    Feed it the variable field of each received P-DATA-TF with :meth:`receive`.
    Rules enforced, each violation raising
    :class:`~dicomnet.errors.RemoteProtocolError`:

    * every fragment of a message is on the presentation context of its first
      fragment (abort reason *unexpected PDU parameter*);
    * no data fragment before the command set is complete, no command fragment
      while a data set is expected, no data set after a command that announced
      none (*unexpected PDU parameter*);
    * if :attr:`accepted_context_ids` is set, every PDV is on one of those
      contexts (*invalid PDU parameter value*);
    * a command set is at most :data:`MAX_COMMAND_LENGTH` bytes and decodes
      (see :func:`~dicomnet.dimse_messages.decode_command`);
    * the PDVs fill the P-DATA-TF exactly (see :func:`~dicomnet.pdu.iter_pdvs`;
      *invalid PDU parameter value*).

    A body can also be fed in pieces as it arrives, with :meth:`receive_part`;
    the rules are the same, each checked as soon as the bytes it needs are in.

    After an error the assembler's state is undefined: the association is to
    be aborted.
    """

    __slots__ = (
        "_command",
        "_command_length",
        "_context",
        "_expect_data",
        "_head",
        "_part_open",
        "_pdv_context",
        "_pdv_control",
        "_pdv_left",
        "accepted_context_ids",
    )

    def __init__(self, accepted_context_ids: Collection[int] | None = None) -> None:
        #: The presentation context IDs accepted during negotiation (known only
        #: after it, hence settable); ``None`` accepts any.
        self.accepted_context_ids = accepted_context_ids
        self._command: list[bytes] = []
        self._command_length = 0
        self._context = 0  # context of the message being received, 0 between messages
        self._expect_data = False
        # a body fed in pieces (receive_part): whether one is open, what has arrived
        # of a PDV item header cut by a piece boundary, and the PDV being received
        self._part_open = False
        self._head = bytearray()
        self._pdv_context = 0
        self._pdv_control = 0
        self._pdv_left = 0  # data bytes of that PDV still to come

    @property
    def in_message(self) -> bool:
        """True while a message is partly received (an abort now cuts it off)."""
        return self._context != 0

    def receive_data(self, body: memoryview) -> tuple[memoryview, bool] | None:
        """The fast path of :meth:`receive` for the commonest P-DATA-TF: the next
        fragment of the data set being received, alone in its PDU.

        Returns ``(data, is_last)`` -- ``data`` a slice of ``body`` -- when ``body``
        is exactly one PDV, a data fragment on the context of the message whose
        data set is expected: the case :meth:`receive` would answer with a single
        :class:`DatasetFragment`, and the rules it enforces hold (the context was
        checked when the command arrived). Returns ``None``, having consumed
        nothing, for anything else; then call :meth:`receive`, which applies every
        rule. Saves the generator, the list and the tuple per PDU.
        """
        if not self._expect_data or len(body) < _PDV_OVERHEAD or self._part_open:
            return None
        length, context_id, control = _unpack_pdv_header(body)
        if length + 4 != len(body) or context_id != self._context or control & _COMMAND:
            return None
        if control & _LAST:
            self._expect_data = False
            self._context = 0
            return body[_PDV_OVERHEAD:], True
        return body[_PDV_OVERHEAD:], False

    def receive(self, body: memoryview) -> list[DimseEvent]:
        """Events for the PDVs of one P-DATA-TF variable field, in order."""
        if self._part_open:
            raise LocalProtocolError("a P-DATA-TF fed with receive_part() is not finished")
        events: list[DimseEvent] = []
        for context_id, control, data in iter_pdvs(body):
            self._check_pdv(context_id, control, len(data))
            is_last = bool(control & _LAST)
            if control & _COMMAND:
                if not is_last or self._command:
                    self._command_length += len(data)
                    self._command.append(bytes(data))
                if not is_last:
                    self._context = context_id
                    continue
                raw: Buffer = data
                if self._command:
                    raw = b"".join(self._command)
                    self._command = []
                    self._command_length = 0
                self._command_received(context_id, raw, events)
            else:
                events.append(DatasetFragment(context_id, data, is_last))
                if is_last:
                    self._expect_data = False
                    self._context = 0
        return events

    def receive_part(self, piece: memoryview, left: int) -> list[DimseEvent]:
        """Events for the next piece of a P-DATA-TF variable field fed as it arrives.

        ``left`` is how many bytes of the same variable field follow ``piece``
        (``UpperLayer.next_pdata_part`` gives both): the field ends with the
        piece whose ``left`` is 0, and the next piece begins another one. A
        whole field (the first piece, with ``left`` 0) is :meth:`receive`'s.

        A data PDV comes out as one :class:`DatasetFragment` per piece it
        spans, each a view of its piece; only the one holding the PDV's last
        byte can have ``is_last`` set. A command PDV is gathered until its last
        byte (it is small: :data:`MAX_COMMAND_LENGTH`). Each rule of the class
        is checked as soon as it can be: the ordering rules and the length of
        a PDV -- it must fit in what is left of its P-DATA-TF -- when the PDV
        item header has arrived, the end of the field when ``left`` is 0.
        """
        if not self._part_open:
            if not left:
                return self.receive(piece)
            self._part_open = True
        events: list[DimseEvent] = []
        end = len(piece)
        position = 0
        while position < end:
            pdv_left = self._pdv_left
            if pdv_left:
                stop = position + pdv_left if pdv_left < end - position else end
                self._pdv_left = pdv_left - (stop - position)
                self._pdv_data(piece[position:stop], events)
                position = stop
                continue
            head = self._head
            if not head and end - position >= _PDV_OVERHEAD:
                length, context_id, control = _unpack_pdv_header(piece, position)
                position += _PDV_OVERHEAD
            else:  # an item header cut by the end of a piece
                take = min(_PDV_OVERHEAD - len(head), end - position)
                head += piece[position : position + take]
                position += take
                if len(head) < _PDV_OVERHEAD:
                    break
                length, context_id, control = _unpack_pdv_header(head)
                head.clear()
            room = end - position + left  # bytes of the P-DATA-TF after this PDV header
            if length < 2 or length - 2 > room:
                raise PDUDecodeError(
                    f"PDV item length {length} does not fit the {room + 2} bytes left",
                    field="P-DATA-TF",
                )
            self._check_pdv(context_id, control, length - 2)
            self._pdv_context = context_id
            self._pdv_control = control
            self._pdv_left = length - 2
            if length == 2:  # an empty PDV: its last byte is in
                self._pdv_data(piece[position:position], events)
        if not left:
            self._part_open = False
            if self._head:
                count = len(self._head)
                self._head.clear()
                raise PDUDecodeError(
                    f"{count} trailing byte(s), too short for a PDV header", field="P-DATA-TF"
                )
        return events

    def _check_pdv(self, context_id: int, control: int, size: int) -> None:
        """The rules a PDV must keep, known from its item header (``size``: its data bytes)."""
        accepted = self.accepted_context_ids
        if accepted is not None and context_id not in accepted:
            raise _invalid(
                f"PDV on presentation context {context_id}, which is not an accepted one"
            )
        current = self._context
        if current and context_id != current:
            raise _unexpected(
                f"PDV on presentation context {context_id} while a message on context "
                f"{current} is incomplete"
            )
        if control & _COMMAND:
            if self._expect_data:
                raise _unexpected(
                    f"command fragment on context {context_id} while the data set of the "
                    "previous command is expected"
                )
            if self._command_length + size > MAX_COMMAND_LENGTH:
                raise _invalid(
                    f"command set on context {context_id} exceeds {MAX_COMMAND_LENGTH} bytes"
                )
        elif not self._expect_data:
            if self._command:
                raise _unexpected(
                    f"data set fragment on context {context_id} before the command set "
                    "is complete"
                )
            raise _unexpected(
                f"data set fragment on context {context_id} but no data set is expected "
                "(no command, or the command announced none)"
            )

    def _pdv_data(self, data: memoryview, events: list[DimseEvent]) -> None:
        """Bytes of the PDV being received in pieces; it ends if ``_pdv_left`` is 0."""
        context_id = self._pdv_context
        control = self._pdv_control
        done = not self._pdv_left
        if control & _COMMAND:
            if data:
                self._command_length += len(data)
                self._command.append(bytes(data))
            if not done:
                return
            if not control & _LAST:
                self._context = context_id
                return
            raw = b"".join(self._command)
            self._command = []
            self._command_length = 0
            self._command_received(context_id, raw, events)
            return
        is_last = done and bool(control & _LAST)
        events.append(DatasetFragment(context_id, data, is_last))
        if is_last:
            self._expect_data = False
            self._context = 0

    def _command_received(self, context_id: int, raw: Buffer, events: list[DimseEvent]) -> None:
        message, has_dataset = decode_command(raw)
        events.append(CommandReceived(context_id, message, has_dataset))
        self._expect_data = has_dataset
        self._context = context_id if has_dataset else 0


class DatasetCollector:
    """Collect the fragments of one data set and join them once.

    The fragments stay views of the received PDUs until :meth:`result`
    copies them into one ``bytes``.
    """

    __slots__ = ("_parts", "complete", "nbytes")

    def __init__(self) -> None:
        self._parts: list[memoryview] = []
        #: total bytes collected so far
        self.nbytes = 0
        #: True once the last fragment was added
        self.complete = False

    def add(self, fragment: DatasetFragment) -> bool:
        """Keep ``fragment``; return True if it was the last one."""
        if self.complete:
            raise LocalProtocolError("the data set is already complete")
        self._parts.append(fragment.data)
        self.nbytes += len(fragment.data)
        self.complete = fragment.is_last
        return fragment.is_last

    def result(self) -> bytes:
        """The data set so far, as one bytes object (a single join)."""
        return b"".join(self._parts)


class MessageIDs:
    """Message ID allocator (PS3.7 E.1-1: Message ID (0000,0110), US).

    IDs run 1, 2, ... 65535 and wrap to 1; 0 is never used (a common "unset"
    value in other implementations). IDs still outstanding -- allocated and not
    yet released because the response has not arrived -- are skipped, so that
    an ID is unique among the open operations of an association.
    """

    __slots__ = ("_next", "_outstanding")

    LAST = 0xFFFF

    def __init__(self, first: int = 1) -> None:
        if not 1 <= first <= self.LAST:
            raise ValueError(f"first message ID {first} is not in 1-65535")
        self._next = first
        self._outstanding: set[int] = set()

    def allocate(self) -> int:
        """The next free ID, now outstanding. Raises :class:`LocalProtocolError` if none is."""
        outstanding = self._outstanding
        if len(outstanding) >= self.LAST:
            raise LocalProtocolError("all 65535 message IDs are outstanding")
        message_id = self._next
        while message_id in outstanding:
            message_id = message_id % self.LAST + 1
        outstanding.add(message_id)
        self._next = message_id % self.LAST + 1
        return message_id

    def release(self, message_id: int) -> None:
        """The operation ``message_id`` is over; its ID may be reused. Unknown IDs are ignored."""
        self._outstanding.discard(message_id)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._outstanding

    @property
    def outstanding(self) -> frozenset[int]:
        """The IDs allocated and not released."""
        return frozenset(self._outstanding)
