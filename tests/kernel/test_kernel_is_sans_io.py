"""The kernel does no I/O: its modules import no socket, thread, event loop or clock.

Checked statically on each module's own import statements (pydicom and the
standard library pull these modules in for their own reasons, so looking at
``sys.modules`` would prove nothing). Every module under ``core/`` is kernel
unless it is listed in ``ADAPTERS``, with the reason it may do I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dicomnet

FORBIDDEN = {"socket", "select", "selectors", "threading", "asyncio", "ssl", "time"}

#: core modules that are adapters over the kernel, allowed to do I/O
ADAPTERS: dict[str, str] = {
    "transport": "the threaded transport: sockets, TLS, selectors",
    "association": "runs an association in its own thread over the kernel",
    "server": "accepts connections in a thread",
    "ae": "owns servers and requestor associations (threads)",
    "aio": "the asyncio transport: an event loop, its transports and timers",
    "store_scu": "bulk sends: opens associations (with TLS) and streams files from disk",
}

CORE = Path(dicomnet.__file__).parent
KERNEL_MODULES = sorted(
    p for p in CORE.rglob("*.py") if p.relative_to(CORE).with_suffix("").as_posix() not in ADAPTERS
)


def imported_top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value).split(".")[0])
    return names


def test_there_are_kernel_modules() -> None:
    names = {p.stem for p in KERNEL_MODULES}
    assert {"pdu", "framing", "errors"} <= names


@pytest.mark.parametrize("path", KERNEL_MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_kernel_module_imports_no_io(path: Path) -> None:
    bad = imported_top_level_names(path) & FORBIDDEN
    assert not bad, f"{path.name} imports {sorted(bad)}; the kernel must stay sans-IO"


def test_checker_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import socket\nfrom time import monotonic\nimport os.path\n")
    assert imported_top_level_names(sample) == {"socket", "time", "os"}
