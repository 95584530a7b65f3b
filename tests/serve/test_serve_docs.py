"""The examples of docs/serve.md run, in the order of the page, in one folder.

The folder holds what the page assumes: ``study/`` (DICOM files of the study
``1.2.826.0.1.3680043.8.498.1``), TLS certificates, ``pacs.toml`` (the page's
TOML block). Every ``dicomnet serve`` and ``dicomnet receive`` line runs as a
process listening on a free loopback port; every other ``dicomnet`` line runs
through the CLI against the server started last, the page's ports replaced by
the real ones; every ``python`` block runs the same way. A ``--db
postgresql://...`` line gets the test session's PostgreSQL cluster.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dicomnet.contrib.cli import main

from ..pacs.conftest import write_part10
from .conftest import ServeProcess, StartServe, instances

pytestmark = [
    pytest.mark.leakcheck,
    pytest.mark.timeout(300),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Invalid value for VR"),
]

DOC = Path(__file__).resolve().parents[2] / "docs" / "serve.md"
STUDY = "1.2.826.0.1.3680043.8.498.1"
#: ports of the page: PACS, WORKSTATION (receive), PACS over TLS
PAGE_PORTS = ("11112", "11113", "2762", "11114")


def blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced block of the page, in order."""
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"^```(\w+)\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_page_has_examples() -> None:
    languages = [language for language, _ in blocks()]
    assert languages.count("sh") >= 6 and languages.count("python") >= 3
    assert "toml" in languages


class Walkthrough:
    """Runs the page's commands; remembers the processes and their real ports."""

    def __init__(self, folder: Path, start_serve: StartServe, request: pytest.FixtureRequest):
        self.folder = folder
        self.start_serve = start_serve
        self.request = request
        self.ports: dict[str, int] = {}  # page port -> real port
        self.processes: list[ServeProcess] = []

    def substitute(self, text: str) -> str:
        for page, real in self.ports.items():
            text = re.sub(rf"\b{page}\b", str(real), text)
        return text

    def server(self, argv: list[str]) -> None:
        """``dicomnet serve|receive ...`` on a free port (the page's port, or its file's)."""
        command, args = argv[1], [self.substitute(a) if a.count(":") else a for a in argv[2:]]
        page_port = args[args.index("--port") + 1] if "--port" in args else "11112"
        if "--port" in args:
            args[args.index("--port") + 1] = "0"
        else:
            args += ["--port", "0"]  # over the 11112 of the configuration file
        args += ["--bind", "127.0.0.1"]
        if "--db" in args:
            cluster = self.request.getfixturevalue("pg_cluster")
            args[args.index("--db") + 1] = cluster.create_schema("docs").replace(
                "postgresql+psycopg://", "postgresql://"
            )
            args[args.index("--dir") + 1] = str(self.folder / "srv-pacs")
        proc = self.start_serve(*args, command=command)
        self.processes.append(proc)
        self.ports[page_port] = proc.port

    def client(self, argv: list[str]) -> None:
        argv = [self.substitute(a) for a in argv]
        result = CliRunner().invoke(main, argv[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"{shlex.join(argv)}:\n{result.stderr}"
        if argv[1] == "find":  # each query of the page finds something
            model = argv[argv.index("-m") + 1]
            expected = {"study": STUDY, "patient": "Müller^Jörg", "worklist": "ACC1"}[model]
            assert expected in result.stdout, result.stdout

    def python(self, code: str) -> None:
        exec(compile(self.substitute(code), str(DOC), "exec"), {"__name__": "__docs__"})

    def stop_all(self) -> None:
        for proc in self.processes:
            assert proc.stop() == 0, proc.stderr


def test_examples(
    tmp_path: Path,
    start_serve: StartServe,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    pki: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    for ds in instances():
        ds.StudyInstanceUID = STUDY if ds.StudyInstanceUID == "1.2.3.1" else ds.StudyInstanceUID
        write_part10(ds, tmp_path / "study" / f"{ds.SOPInstanceUID}.dcm")
    for name in ("server.pem", "server.key", "ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_bytes(Path(pki.path(name)).read_bytes())
    walk = Walkthrough(tmp_path, start_serve, request)
    for language, text in blocks():
        if language == "toml":
            (tmp_path / "pacs.toml").write_text(walk.substitute(text))
        elif language == "python":
            walk.python(text)
        elif language == "sh":
            for line in text.splitlines():
                argv = shlex.split(line)
                if not argv or argv[0] != "dicomnet":
                    continue
                if argv[1] in ("serve", "receive"):
                    walk.server(argv)
                else:
                    walk.client(argv)
    walk.stop_all()
    assert (tmp_path / "retrieved" / f"{instances()[0].SOPInstanceUID}.dcm").exists()
    assert len(list((tmp_path / "received").iterdir())) == 5  # the moved study


# --- the README's quick start ----------------------------------------------------------------

README = DOC.parents[1] / "README.md"
CI = DOC.parents[1] / ".ci" / "run"


def quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Quick start\n")
    return text[start : text.index("\n## ", start + 1)]


def test_readme_quick_start(
    tmp_path: Path, start_serve: StartServe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first shell block of the README installs and starts ``dicomnet serve``; the
    commands quoted after it work against that server; the second block is CI's."""
    sh = re.findall(r"^```sh\n(.*?)^```", README.read_text(encoding="utf-8"),
                    flags=re.MULTILINE | re.DOTALL)
    first, second = sh[0], sh[1]
    assert first in quick_start() and second in quick_start()
    install, serve_line = [part.strip() for part in first.strip().split("&&")]
    assert install == "python3 -m pip install ."
    argv = shlex.split(serve_line)
    assert argv[:2] == ["dicomnet", "serve"]

    monkeypatch.chdir(tmp_path)
    args = argv[2:]
    args[args.index("--port") + 1] = "0"
    serve = start_serve(*args, "--bind", "127.0.0.1")
    aet = args[args.index("--aet") + 1]
    for ds in instances():
        write_part10(ds, tmp_path / "study" / f"{ds.SOPInstanceUID}.dcm")
    quoted = re.findall(r"`(dicomnet [^`]+)`", " ".join(quick_start().split()))
    assert [shlex.split(q)[1] for q in quoted] == ["echo", "store", "find"]
    for command in quoted:
        line = command.replace(" 11112", f" {serve.port}")
        result = CliRunner().invoke(main, shlex.split(line)[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"{line}\n{result.stderr}"
    assert result.stdout.count("StudyInstanceUID") == 4
    assert aet in serve.stderr
    assert serve.stop() == 0
    assert (tmp_path / "pacs" / "index.sqlite").exists()

    # the second block runs the test suite exactly as .ci/run does
    commands = [line.strip() for line in second.strip().splitlines()]
    assert commands == ["python3 -m pip install -e '.[dev]'", "python3 -m pytest"]
    ci = CI.read_text().replace(" --quiet", "")
    for command in commands:
        assert re.search(rf"^\s*{re.escape(command)}\s*$", ci, flags=re.MULTILINE), command


def test_cli_md_serve_section(
    tmp_path: Path, start_serve: StartServe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example of the ``dicomnet serve`` section of docs/cli.md starts and stops."""
    text = (DOC.parent / "cli.md").read_text(encoding="utf-8")
    start = text.index("\n## `dicomnet serve`\n")
    section = text[start : text.index("\n## ", start + 1)]
    lines = [line for lang, block in re.findall(r"^```(\w+)\n(.*?)^```", section,
                                                 flags=re.MULTILINE | re.DOTALL)
             if lang == "sh" for line in block.splitlines() if line.startswith("dicomnet serve")]
    assert lines
    monkeypatch.chdir(tmp_path)
    for line in lines:
        args = shlex.split(line)[2:]
        args[args.index("--port") + 1] = "0"
        serve = start_serve(*args, "--bind", "127.0.0.1")
        assert serve.stop() == 0
