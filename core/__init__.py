"""dicomnet: the DICOM network protocol (PS3.7 DIMSE, PS3.8 Upper Layer and ACSE).

The public API is pynetdicom's: a pynetdicom program runs on dicomnet with
its imports changed and nothing else::

    from dicomnet import AE, evt, debug_logger
    from dicomnet.sop_class import Verification

See ``docs/`` for the user guide and ``docs/architecture.md`` for the layers.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0.dev0"

logging.getLogger("dicomnet").addHandler(logging.NullHandler())

from . import events as evt  # noqa: E402
from ._logging import debug_logger  # noqa: E402
from .ae import AE, ApplicationEntity  # noqa: E402
from .association import Association  # noqa: E402
from .presentation import (  # noqa: E402
    ALL_TRANSFER_SYNTAXES,
    DEFAULT_TRANSFER_SYNTAXES,
    PresentationContext,
    build_context,
    build_role,
)
from .sop_class import register_uid  # noqa: E402

__all__ = [
    "AE",
    "ALL_TRANSFER_SYNTAXES",
    "DEFAULT_TRANSFER_SYNTAXES",
    "ApplicationEntity",
    "Association",
    "PresentationContext",
    "build_context",
    "build_role",
    "debug_logger",
    "evt",
    "register_uid",
]


def __getattr__(name: str) -> object:
    """The prebuilt ``*PresentationContexts`` lists, built on first use."""
    if name.endswith("PresentationContexts"):
        from . import presentation

        return getattr(presentation, name)
    raise AttributeError(f"module 'dicomnet' has no attribute {name!r}")
