"""What :class:`dicomnet.upper_layer.UpperLayer` reports: indications and diagnostics.

The indications are the Upper Layer service primitives of PS3.8 7 as seen by
the local user (A-ASSOCIATE indication and confirmation, P-DATA indication,
A-RELEASE indication and confirmation, A-ABORT and A-P-ABORT indication), plus
:class:`ConnectionClosed` when the connection is over. The diagnostics
(:class:`PDUReceived`, :class:`PDUSent`, :class:`Transition`) exist only when the
connection was created with ``emit_pdus`` or ``emit_transitions``, so nobody
pays for them by default.

All are small frozen values; :class:`PDataReceived` holds a memoryview of the
receive buffer (no copy).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from .fsm import Action, Event, State
from .pdu import (
    PDU,
    PDU_HEADER,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    PDataTF,
    PDUType,
)

__all__ = [
    "Aborted",
    "AssociationAccepted",
    "AssociationRejected",
    "AssociationRequested",
    "Buffer",
    "ConnectionClosed",
    "PDUReceived",
    "PDUSent",
    "PDataReceived",
    "RawPData",
    "ReleaseConfirmed",
    "ReleaseRequested",
    "Transition",
    "ULEvent",
]

Buffer = bytes | bytearray | memoryview


@attrs.frozen
class AssociationRequested:
    """A-ASSOCIATE indication: the peer asks for an association (PS3.8 7.1.2).

    Answer with :meth:`UpperLayer.accept` or :meth:`UpperLayer.reject`.
    """

    rq: AAssociateRQ


@attrs.frozen
class AssociationAccepted:
    """A-ASSOCIATE confirmation (accept): the association is established."""

    ac: AAssociateAC


@attrs.frozen
class AssociationRejected:
    """A-ASSOCIATE confirmation (reject); the transport connection is being closed."""

    rj: AAssociateRJ


@attrs.frozen
class PDataReceived:
    """P-DATA indication: the variable field of one P-DATA-TF PDU, not validated.

    The PDVs in it are checked by the DIMSE layer (:func:`dicomnet.pdu.iter_pdvs`),
    which reports a malformed body with :meth:`UpperLayer.protocol_error`.
    """

    body: memoryview


@attrs.frozen
class ReleaseRequested:
    """A-RELEASE indication (PS3.8 7.2.2); answer with :meth:`UpperLayer.release_response`.

    ``collision`` is true when both sides asked for release at once (AR-8). Then
    the association requestor answers at once (Sta9 -> Sta11), while the acceptor
    waits for :class:`ReleaseConfirmed` and answers after it (Sta10 -> Sta12).
    """

    collision: bool = False


@attrs.frozen
class ReleaseConfirmed:
    """A-RELEASE confirmation: the peer answered our A-RELEASE-RQ."""


@attrs.frozen
class Aborted:
    """The association ended abnormally (PS3.8 7.3, 7.4).

    * ``local=False``: an A-ABORT indication (the peer's A-ABORT PDU, whose
      ``source`` and ``reason`` are given) or an A-P-ABORT indication (the
      transport connection closed under us: source service-provider).
    * ``local=True``: this side aborted because of a timeout or a protocol
      error of the peer; ``source`` and ``reason`` are those of the A-ABORT PDU
      sent (if any was) and ``error`` says why.

    A :meth:`UpperLayer.abort` requested by the local user is not reported.
    """

    source: int
    reason: int
    local: bool
    error: str | None = None


@attrs.frozen
class ConnectionClosed:
    """Sta1 reached: the association and its transport connection are finished."""


@attrs.frozen
class RawPData:
    """P-DATA-TF PDUs as they are on the wire, decoded only on demand (diagnostics).

    ``buffers`` concatenated are one or more whole P-DATA-TF PDUs, headers included.
    """

    buffers: tuple[Buffer, ...]

    pdu_type: ClassVar[int] = PDUType.P_DATA_TF

    @classmethod
    def from_body(cls, body: memoryview) -> RawPData:
        return cls((PDU_HEADER.pack(PDUType.P_DATA_TF, 0, len(body)), body))

    def decode(self) -> tuple[PDataTF, ...]:
        """The PDUs as :class:`~dicomnet.pdu.PDataTF` values (raises ``PDUDecodeError``)."""
        data = memoryview(b"".join(self.buffers))
        pdus: list[PDataTF] = []
        offset = 0
        while offset < len(data):
            _, _, length = PDU_HEADER.unpack_from(data, offset)
            start = offset + PDU_HEADER.size
            pdus.append(PDataTF.from_body(data[start : start + length]))
            offset = start + length
        return tuple(pdus)


@attrs.frozen
class PDUReceived:
    """Diagnostic: a PDU was received (only with ``emit_pdus``).

    Undecodable PDUs are not reported here but by the :class:`Aborted` they cause.
    """

    pdu: PDU | RawPData


@attrs.frozen
class PDUSent:
    """Diagnostic: a PDU was queued for sending (only with ``emit_pdus``)."""

    pdu: PDU | RawPData


@attrs.frozen
class Transition:
    """Diagnostic: one step of the state machine (only with ``emit_transitions``).

    Reported before the events the action itself produces.
    """

    state: State
    event: Event
    action: Action
    next_state: State


ULEvent = (
    AssociationRequested
    | AssociationAccepted
    | AssociationRejected
    | PDataReceived
    | ReleaseRequested
    | ReleaseConfirmed
    | Aborted
    | ConnectionClosed
    | PDUReceived
    | PDUSent
    | Transition
)
