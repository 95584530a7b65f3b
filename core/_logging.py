"""Logging: a NullHandler on the ``dicomnet`` logger, and :func:`debug_logger`."""

from __future__ import annotations

import logging

__all__ = ["debug_logger"]


def debug_logger() -> None:
    """Log everything dicomnet does to stderr, PDU and DIMSE dumps included (as pynetdicom)."""
    logger = logging.getLogger("dicomnet")
    logger.handlers = [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]
    if not any(getattr(h, "_dicomnet_debug", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname).1s: %(message)s"))
        handler._dicomnet_debug = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
