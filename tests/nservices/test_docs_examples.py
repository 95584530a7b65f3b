"""The examples of docs/nservices.md run as written: every ``python`` block, in order, in
one namespace, in a temporary folder (they serve on free loopback ports)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "nservices.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_guide_has_examples() -> None:
    code = "\n".join(python_blocks(GUIDE.read_text(encoding="utf-8")))
    for call in (
        "send_n_create", "send_n_set", "send_n_get", "request_commitment",
        "EVT_STORAGE_COMMITMENT", "CommitmentResults", "availability_notification",
        "n_service_class", "send_ups_event", "GRAYSCALE_META", "EVT_MACHINE_VERIFICATION",
        "VerificationResults",
    ):
        assert call in code


def test_the_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "nservices_guide"}
    blocks = python_blocks(GUIDE.read_text(encoding="utf-8"))
    try:
        for number, block in enumerate(blocks, 1):
            exec(compile(block, f"{GUIDE.name} block {number}", "exec"), namespace)
    finally:  # a failing block must not leave servers behind
        for name in (
            "ris", "modality", "archive", "workstation", "workflow", "labels", "manager",
            "watcher", "scheduler", "performer", "printer", "viewer", "cath_lab", "injector",
            "burner", "mpv", "tds",
        ):
            ae = namespace.get(name)
            if ae is not None:
                ae.shutdown()  # type: ignore[attr-defined]
