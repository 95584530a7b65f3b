"""The examples of docs/asyncio.md run as written: every ``python`` block, in order, in one
namespace (they serve on free loopback ports)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "asyncio.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_guide_has_examples() -> None:
    code = "\n".join(python_blocks(GUIDE.read_text(encoding="utf-8")))
    for call in ("AsyncAE", "start_server", "send_c_echo", "send_c_store", "send_c_find"):
        assert call in code


def test_the_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "asyncio_guide"}
    try:
        for number, block in enumerate(python_blocks(GUIDE.read_text(encoding="utf-8")), 1):
            exec(compile(block, f"{GUIDE.name} block {number}", "exec"), namespace)
    finally:  # a failing block must not leave servers behind
        pacs = namespace.get("pacs")
        if pacs is not None:
            pacs.shutdown()  # type: ignore[attr-defined]
    assert namespace["received"] and len(namespace["found"]) == 5  # type: ignore[arg-type]
