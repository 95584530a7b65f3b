"""dicomnet: the DICOM network protocol (PS3.7 DIMSE, PS3.8 Upper Layer and ACSE)."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
