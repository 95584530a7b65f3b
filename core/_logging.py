"""Logging: what dicomnet logs, at which level, and :func:`debug_logger`.

dicomnet logs through the standard :mod:`logging` module, under the
``dicomnet`` logger, which has a :class:`~logging.NullHandler` (so nothing is
printed unless the application configures logging). Child loggers:

=====================  =====================================================
``dicomnet.acse``      association negotiation, release and abort
``dicomnet.dimse``     DIMSE messages sent and received
``dicomnet.assoc``     association life cycle errors, service-class refusals
``dicomnet.ae``        association requests that fail to connect
``dicomnet.server``    listening sockets, TLS handshakes
``dicomnet.events``    exceptions in notification handlers
=====================  =====================================================

Levels, on ``dicomnet.acse`` and ``dicomnet.dimse``:

* INFO: one line per association step ("Requesting an association...",
  "Association accepted...", "Releasing...") and per DIMSE message
  ("Sending C-ECHO-RQ (context 1): Message ID 1, Affected SOP Class
  Verification SOP Class").
* DEBUG: in addition, a multi-line dump of every A-ASSOCIATE-RQ, -AC and -RJ,
  A-RELEASE and A-ABORT, and of each DIMSE command set (:mod:`dicomnet.dump`).

Errors and warnings (a rejected or aborted association, a refused request)
are logged by the modules that detect them, at WARNING or ERROR.

**Free when disabled.** The association calls :func:`log_acse` and
:func:`log_dimse` only after ``ACSE_LOGGER.isEnabledFor(INFO)`` or
``DIMSE_LOGGER.isEnabledFor(INFO)`` (a cached dictionary lookup in the
standard library); the DEBUG dumps are built only after
``isEnabledFor(DEBUG)``. With logging at its default level nothing is
formatted at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from . import dump
from .pdu import AAbort, AAssociateAC, AAssociateRJ, AAssociateRQ, AReleaseRP, AReleaseRQ
from .ul_events import Aborted, ReleaseConfirmed, ReleaseRequested

if TYPE_CHECKING:  # pragma: no cover
    from .association import Association

__all__ = [
    "ACSE_LOGGER",
    "DEBUG",
    "DIMSE_LOGGER",
    "INFO",
    "LineFormatter",
    "debug_logger",
    "log_acse",
    "log_dimse",
]

ROOT_LOGGER = logging.getLogger("dicomnet")
ACSE_LOGGER = logging.getLogger("dicomnet.acse")
DIMSE_LOGGER = logging.getLogger("dicomnet.dimse")

DEBUG = logging.DEBUG
INFO = logging.INFO


class LineFormatter(logging.Formatter):
    """``"D: text"``, with the level's initial repeated on every line of a multi-line record.

    Keeps dumps readable and ``grep``-able when several associations log at once.
    """

    def __init__(self) -> None:
        super().__init__("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = record.levelname[:1] + ": "
        return prefix + text.replace("\n", "\n" + prefix)


def debug_logger() -> None:
    """Log everything dicomnet does to stderr, ACSE and DIMSE dumps included (as pynetdicom).

    Sets the ``dicomnet`` logger to DEBUG and gives it one stream handler on
    stderr (calling this again adds no second one). For finer control,
    configure the loggers listed in this module's documentation yourself.
    """
    ROOT_LOGGER.handlers = [
        h for h in ROOT_LOGGER.handlers if not isinstance(h, logging.NullHandler)
    ]
    if not any(getattr(h, "_dicomnet_debug", False) for h in ROOT_LOGGER.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(LineFormatter())
        handler._dicomnet_debug = True  # type: ignore[attr-defined]
        ROOT_LOGGER.addHandler(handler)
    ROOT_LOGGER.setLevel(logging.DEBUG)


# -- ACSE -------------------------------------------------------------------------------------


def _peer(assoc: Association, rq: AAssociateRQ | None = None) -> str:
    """``'TITLE' at host:port`` for the peer AE."""
    if assoc.is_requestor:
        user = assoc.acceptor
        title = user.ae_title or (rq.called_ae_title if rq is not None else "")
    else:
        user = assoc.requestor
        title = user.ae_title or (rq.calling_ae_title if rq is not None else "")
    where = f"{user.address}:{user.port}" if user.address else "an unknown address"
    return f"{title!r} at {where}" if title else where


def _ac_summary(ac: AAssociateAC) -> str:
    contexts = ac.presentation_contexts
    accepted = sum(1 for cx in contexts if cx.result == 0)
    return f"{accepted} of {len(contexts)} presentation contexts accepted"


def log_acse(assoc: Association, primitive: Any, *, sent: bool) -> None:
    """Log an ACSE primitive sent or received on ``assoc``: a line at INFO, a dump at DEBUG.

    ``primitive`` is what the association passes with ``EVT_ACSE_SENT`` and
    ``EVT_ACSE_RECV``: an A-ASSOCIATE-RQ, -AC or -RJ PDU; the kernel's
    :class:`ReleaseRequested` (received: the peer's A-RELEASE-RQ; sent: our
    A-RELEASE-RP), :class:`ReleaseConfirmed` (the peer's A-RELEASE-RP) or
    :class:`Aborted` (the peer's A-ABORT); the strings ``"A-RELEASE-RQ"`` and
    ``"A-ABORT"`` (sent by us); or the release and abort PDUs themselves.
    """
    logger = ACSE_LOGGER
    if not logger.isEnabledFor(INFO):
        return
    verb = "sent to" if sent else "received from"
    rq: AAssociateRQ | None = getattr(assoc, "_rq", None)
    peer = _peer(assoc, rq)
    info: str | None = None
    detail: Callable[[], str]  # built only when DEBUG is enabled
    if isinstance(primitive, AAssociateRQ):
        name = "A-ASSOCIATE-RQ"
        count = len(primitive.presentation_contexts)
        proposed = f"{count} presentation context{'' if count == 1 else 's'} proposed"
        if sent:
            info = (
                f"Requesting an association with {_peer(assoc, primitive)} as "
                f"{primitive.calling_ae_title!r} ({proposed})"
            )
        else:
            info = (
                f"Association requested by {_peer(assoc, primitive)} for "
                f"{primitive.called_ae_title!r} ({proposed})"
            )
        detail = partial(dump.associate_rq, primitive)
    elif isinstance(primitive, AAssociateAC):
        name = "A-ASSOCIATE-AC"
        if sent:
            info = f"Association with {peer} accepted: {_ac_summary(primitive)}"
        else:
            info = f"Association accepted by {peer}: {_ac_summary(primitive)}"
        detail = partial(dump.associate_ac, primitive, rq)
    elif isinstance(primitive, AAssociateRJ):
        # the rejection itself is logged where it is decided (INFO) or received (ERROR)
        name = "A-ASSOCIATE-RJ"
        detail = partial(dump.associate_rj, primitive)
    elif primitive == "A-RELEASE-RQ" or isinstance(primitive, AReleaseRQ):
        name = "A-RELEASE-RQ"
        info = f"Releasing the association with {peer}" if sent else None
        detail = partial(dump.release, response=False)
    elif isinstance(primitive, ReleaseRequested) and not sent:
        name = "A-RELEASE-RQ"
        info = f"Release requested by {peer}"
        if primitive.collision:
            info += " while we asked for release too (release collision)"
        detail = partial(dump.release, response=False)
    elif isinstance(primitive, ReleaseRequested | ReleaseConfirmed | AReleaseRP):
        name = "A-RELEASE-RP"
        info = f"Association with {peer} released"
        detail = partial(dump.release, response=True)
    elif primitive == "A-ABORT":
        name = "A-ABORT"
        info = f"Aborting the association with {peer}"
        detail = partial(dump.abort, 0, 0)
    elif isinstance(primitive, Aborted) and primitive.local:
        # our provider aborted (a timeout, the peer's protocol error): logged as an error
        # where it happens; here only the dump of the A-ABORT sent
        name, verb = "A-ABORT", "sent to"
        detail = partial(dump.abort, primitive.source, primitive.reason, primitive.error)
    elif isinstance(primitive, Aborted) and primitive.error is not None:
        name, verb = "A-P-ABORT", "(connection lost) with"
        detail = partial(str, f"  {primitive.error}")
    elif isinstance(primitive, Aborted | AAbort):
        # the peer's A-ABORT: logged as an error where it is handled
        name = "A-ABORT"
        detail = partial(dump.abort, primitive.source, primitive.reason)
    else:
        logger.debug("ACSE primitive %s %s: %r", verb, peer, primitive)
        return
    if info is not None:
        logger.info("%s", info)
    if logger.isEnabledFor(DEBUG):
        logger.debug("%s %s %s\n%s", name, verb, peer, _safely(detail))


# -- DIMSE ------------------------------------------------------------------------------------


def log_dimse(
    assoc: Association,
    message: Any,
    context_id: int | None,
    *,
    sent: bool,
    has_dataset: bool | None = None,
) -> None:
    """Log a whole DIMSE message sent or received: its summary at INFO, its command set at DEBUG."""
    logger = DIMSE_LOGGER
    if not logger.isEnabledFor(INFO):
        return
    verb = "Sending" if sent else "Received"
    logger.info(
        "%s %s", verb, _safely(partial(dump.dimse_summary, message, has_dataset, context_id))
    )
    if logger.isEnabledFor(DEBUG):
        logger.debug(
            "Command set of the %s %s:\n%s",
            message.message_name,
            "sent" if sent else "received",
            _safely(partial(dump.command_set, message, has_dataset)),
        )


def _safely(describe: Callable[[], str]) -> str:
    """``describe()``, or a note saying it failed: a diagnostic never ends an association."""
    try:
        return describe()
    except Exception as exc:  # a value the dump does not expect: say so, carry on
        return f"  (cannot be shown: {type(exc).__name__}: {exc})"
