#!/usr/bin/env python3
"""Run ``mypy --strict`` on the ``dicomnet`` package as it is imported.

The import package is assembled from three folders (core/ is ``dicomnet``,
plugins/ is ``dicomnet.plugins``, contrib/ is ``dicomnet.contrib``), a mapping
the build backend knows but mypy cannot follow through an editable install.
This script builds a tree of symbolic links with the installed layout under
``build/typecheck/`` and runs mypy on it with the settings of pyproject.toml.
Extra arguments are passed to mypy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
LAYOUT = {"core": "dicomnet", "plugins": "dicomnet/plugins", "contrib": "dicomnet/contrib"}


def build_tree() -> Path:
    if TREE.exists():
        shutil.rmtree(TREE)
    for source, target in LAYOUT.items():
        dest = TREE / target
        dest.mkdir(parents=True, exist_ok=True)
        for entry in (ROOT / source).iterdir():
            if entry.name == "__pycache__" or (
                entry.is_dir() and not (entry / "__init__.py").exists()
            ):
                continue
            link = dest / entry.name
            if not link.exists():
                os.symlink(entry, link)
    return TREE


def main() -> int:
    tree = build_tree()
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "-p",
        "dicomnet",
        *sys.argv[1:],
    ]
    env = dict(os.environ, MYPYPATH=str(tree))
    return subprocess.call(cmd, cwd=tree, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
