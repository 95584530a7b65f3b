"""The examples of docs/storage.md and of the ``store``/``receive`` sections of docs/cli.md run.

The documented peer (``PACS`` at ``pacs.example.org``, port 11112) is a
Storage SCP in this process (``dicomnet receive``'s AE), the documented files
(``ct.dcm``, ``study/``) are made in a temporary folder the examples run in.
Each ``python`` block of docs/storage.md runs on its own; a block that starts
a server listens on a free port instead of 11112. Each ``dicomnet store``
line runs through the CLI; each ``dicomnet receive`` line runs as a process
on a free port, and an instance is stored through it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydicom.dataset import FileMetaDataset

from dicomnet.contrib.cli import main
from dicomnet.contrib.receive import make_storage_ae
from dicomnet.datasets import decode_dataset, encode_dataset
from tests.storage.send_support import (
    CT_IMAGE_STORAGE,
    EXPLICIT,
    IMPLICIT,
    RLE,
    SECONDARY_CAPTURE,
    ct_dataset,
    write_part10,
)

pytestmark = pytest.mark.leakcheck

DOCS = Path(__file__).resolve().parents[2] / "docs"
MR = "1.2.840.10008.5.1.4.1.1.4"


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in ``text``."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def section(path: Path, title: str) -> str:
    """The ``## title`` section of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def python_examples() -> list[str]:
    return blocks((DOCS / "storage.md").read_text(encoding="utf-8"), "python")


def cli_lines(command: str) -> list[list[str]]:
    """The ``dicomnet COMMAND ...`` lines of the ``sh`` blocks of its section of docs/cli.md."""
    found = []
    for block in blocks(section(DOCS / "cli.md", f"`dicomnet {command}`"), "sh"):
        for line in block.splitlines():
            match = re.search(rf"\bdicomnet {command} ([^;]*)", line)
            if match:
                found.append(shlex.split(match.group(1)))
    return found


class Pacs:
    """The documented peer: a Storage SCP titled PACS on a free loopback port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir()
        self.ae, _handler = make_storage_ae(directory, ae_title="PACS", fsync=False)
        self.server = self.ae.start_server(("127.0.0.1", 0), block=False)
        assert self.server is not None
        self.port: int = self.server.server_address[1]

    def stored(self) -> list[str]:
        return sorted(n for n in os.listdir(self.directory) if n.endswith(".dcm"))

    def close(self) -> None:
        self.ae.shutdown()


@pytest.fixture
def workplace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pacs]:
    """The current folder with ``ct.dcm`` and ``study/``, and the PACS to send them to."""
    work = tmp_path / "work"
    (work / "study" / "series2").mkdir(parents=True)
    write_part10(work / "ct.dcm", ct_dataset(seed=1), EXPLICIT)
    write_part10(work / "study" / "1.dcm", ct_dataset(seed=2), EXPLICIT)
    write_part10(work / "study" / "2.dcm", ct_dataset(seed=3, sop_class=MR), IMPLICIT)
    compressed = decode_dataset(encode_dataset(ct_dataset(seed=4), EXPLICIT), EXPLICIT)
    compressed.SOPClassUID = SECONDARY_CAPTURE
    compressed.file_meta = FileMetaDataset()
    compressed.file_meta.TransferSyntaxUID = EXPLICIT
    compressed.compress(RLE, generate_instance_uid=False)
    write_part10(work / "study" / "series2" / "3.dcm", compressed, RLE)
    (work / "study" / "README.txt").write_text("not DICOM\n")
    monkeypatch.chdir(work)
    pacs = Pacs(tmp_path / "pacs")
    try:
        yield pacs
    finally:
        pacs.close()


def test_the_guide_has_examples() -> None:
    examples = python_examples()
    assert len(examples) >= 6
    assert any("start_server" in e for e in examples)
    assert cli_lines("store") and cli_lines("receive")


@pytest.mark.parametrize(
    "code",
    [pytest.param(code, id=f"storage.md-{n}") for n, code in enumerate(python_examples(), 1)],
)
def test_python_example_runs(
    code: str, workplace: Pacs, capsys: pytest.CaptureFixture[str]
) -> None:
    serves = "start_server" in code
    local = code.replace("pacs.example.org", "127.0.0.1")
    local = local.replace("11112", "0" if serves else str(workplace.port))
    namespace: dict[str, Any] = {"__name__": "__docs_example__"}
    exec(compile(local, "docs/storage.md example", "exec"), namespace)
    if serves:
        assert namespace["server"]._stopped  # the example shut its server down
    elif "associate(" in code or "send_files(" in code:
        assert workplace.stored(), "the example stored nothing"
    if "print(" in code:
        assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("args", cli_lines("store"), ids=" ".join)
def test_store_example_runs(args: list[str], workplace: Pacs) -> None:
    local = [
        "127.0.0.1" if a == "pacs.example.org" else str(workplace.port) if a == "11112" else a
        for a in args
    ]
    result = CliRunner().invoke(main, ["store", *local])
    assert result.exit_code == 0, result.stderr
    expected = 1 if local[-1] == "ct.dcm" else (3 if "-r" in local else 2)
    assert len(workplace.stored()) == expected, result.stderr


@pytest.mark.parametrize("args", cli_lines("receive"), ids=" ".join)
def test_receive_example_runs(args: list[str], tmp_path: Path, workplace: Pacs) -> None:
    local = list(args)
    local[local.index("--port") + 1] = "0"
    directory = tmp_path / "received"
    local[local.index("--dir") + 1] = str(directory)
    if "--bind" not in local:
        local += ["--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dicomnet.contrib.cli", "receive", *local],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while "listening on" not in line:
            assert line, "dicomnet receive stopped before listening"
            line = proc.stderr.readline()
        port = re.search(r"listening on [\d.]+:(\d+)", line)
        assert port, line
        aet = local[local.index("--aet") + 1] if "--aet" in local else "DICOMNET"
        result = CliRunner().invoke(
            main, ["store", "--aec", aet, "127.0.0.1", port.group(1), "ct.dcm"]
        )
        assert result.exit_code == 0, result.stderr
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
        assert proc.returncode == 0, rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert [p.suffix for p in directory.iterdir()] == [".dcm"]
    assert CT_IMAGE_STORAGE in (directory / next(iter(os.listdir(directory)))).read_bytes().decode(
        "latin-1"
    )
