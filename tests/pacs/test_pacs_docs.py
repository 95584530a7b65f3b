"""The ``python`` blocks of docs/pacs_index.md run, in order, in one session, and print
what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "pacs_index.md"


def test_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "__docs__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    printed = out.getvalue().splitlines()
    for expected in (
        "1.2.3/1.dcm False",
        "{'patients': 1, 'studies': 1, 'series': 1, 'instances': 3}",
        "4",
        "1.2.3/4.dcm",
        "1.2.3 CT 3",
        "Doe^Jane 1.2.3.1",
        "Roe^Richard",
    ):
        assert expected in printed, printed
    assert sum(line.endswith(".dcm 1.2.840.10008.5.1.4.1.1.2 1.2.840.10008.1.2.1")
               for line in printed) == 3
