"""Run a Python program as ``python PROGRAM ARGS...`` would, with pynetdicom unimportable.

usage: run_without_pynetdicom.py PROGRAM [ARGS...]

The compatibility tests run the rewritten pynetdicom programs through this, so
that a program that still reached pynetdicom somewhere would fail with
ImportError instead of quietly using it.
"""

import os
import runpy
import sys

sys.modules["pynetdicom"] = None  # type: ignore[assignment]  # import now raises ImportError
program = os.path.abspath(sys.argv[1])
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(program)
runpy.run_path(program, run_name="__main__")
