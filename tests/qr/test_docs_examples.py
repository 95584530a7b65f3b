"""The examples of docs/query_retrieve.md run as written: every ``python`` block, in order,
in one namespace, in a temporary folder (they serve on free loopback ports)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.leakcheck

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "query_retrieve.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_guide_has_examples() -> None:
    blocks = python_blocks(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    code = "\n".join(blocks)
    for call in ("send_c_find", "send_c_get", "send_c_move", "retrieve_contexts"):
        assert call in code


def test_the_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "query_retrieve_guide"}
    blocks = python_blocks(GUIDE.read_text(encoding="utf-8"))
    try:
        for number, block in enumerate(blocks, 1):
            exec(compile(block, f"{GUIDE.name} block {number}", "exec"), namespace)
    finally:  # a failing block must not leave servers behind
        for name in ("pacs", "workstation", "scu"):
            ae = namespace.get(name)
            if ae is not None:
                ae.shutdown()  # type: ignore[attr-defined]
