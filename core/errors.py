"""Exceptions raised by the dicomnet kernel.

Errors say whose fault they are, and carry what goes on the wire:

* :class:`RemoteProtocolError` -- the peer broke PS3.8 or PS3.7. It carries the
  A-ABORT source and reason (PS3.8 Table 9-26) the Upper Layer sends in answer.
* :class:`LocalProtocolError` -- the caller asked for something the protocol does
  not allow in the current state (a P-DATA request before the association is
  established, a second release request...). Nothing is sent; the connection's
  state is unchanged.
* :class:`PDUTooLarge` -- a PDU longer than the configured cap; refused before a
  byte of its body is buffered.
"""

from __future__ import annotations

import enum

__all__ = [
    "AbortReason",
    "AbortSource",
    "DicomnetError",
    "LocalProtocolError",
    "PDUDecodeError",
    "PDUTooLarge",
    "ProtocolError",
    "RemoteProtocolError",
]


class AbortSource(enum.IntEnum):
    """A-ABORT source field, PS3.8 Table 9-26."""

    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(enum.IntEnum):
    """A-ABORT reason/diag. field when the source is the service provider, PS3.8 Table 9-26."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    RESERVED = 3
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class DicomnetError(Exception):
    """Base class of every exception dicomnet raises on purpose."""


class ProtocolError(DicomnetError):
    """A violation of the DICOM network protocol.

    ``abort_source`` and ``abort_reason`` are the values of the A-ABORT PDU that
    the Upper Layer sends because of this error (PS3.8 9.3.8).
    """

    def __init__(
        self,
        message: str,
        *,
        abort_reason: AbortReason = AbortReason.NOT_SPECIFIED,
        abort_source: AbortSource = AbortSource.SERVICE_PROVIDER,
    ) -> None:
        super().__init__(message)
        self.abort_source = abort_source
        self.abort_reason = abort_reason


class RemoteProtocolError(ProtocolError):
    """The peer sent something PS3.8 or PS3.7 does not allow."""


class PDUDecodeError(RemoteProtocolError):
    """A PDU or item could not be decoded; the message names the offending field."""

    def __init__(
        self,
        message: str,
        *,
        field: str = "",
        abort_reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ) -> None:
        super().__init__(f"{field}: {message}" if field else message, abort_reason=abort_reason)
        self.field = field


class PDUTooLarge(RemoteProtocolError):
    """The peer announced a PDU longer than we agreed to receive (PS3.8 D.1)."""

    def __init__(self, length: int, limit: int, pdu_type: int) -> None:
        super().__init__(
            f"PDU type 0x{pdu_type:02X} announces {length} bytes, more than the limit of "
            f"{limit} bytes",
            abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
        )
        self.length = length
        self.limit = limit
        self.pdu_type = pdu_type


class LocalProtocolError(DicomnetError):
    """The local user asked for an action the protocol forbids in the current state."""
