"""``dicomnet store``: exit statuses and the summary, against an in-process SCP (PS3.4 Annex B).

0 when every instance was stored (Success or Warning), 1 when one was refused
or could not be sent, 2 when no association was established, there was
nothing to send, or the command line is wrong (docs/cli.md). The same
against real peers: tests/interop/test_storage_interop.py.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dicomnet.contrib.cli import main
from tests.storage.send_support import (
    CT_IMAGE_STORAGE,
    EXPLICIT,
    IMPLICIT,
    RecordingSCP,
    ct_dataset,
    write_part10,
)

pytestmark = pytest.mark.leakcheck

MR = "1.2.840.10008.5.1.4.1.1.4"
SUMMARY = re.compile(r"Sent (\d+) of (\d+) instances?, .*?(\d+) failed.* over (\d+) associations?")


@pytest.fixture
def scp() -> Iterator[Callable[..., RecordingSCP]]:
    made: list[RecordingSCP] = []

    def make(contexts: dict[str, Sequence[str]], **kwargs: Any) -> RecordingSCP:
        server = RecordingSCP(contexts, **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def store(*args: str | int | Path) -> Any:
    result = CliRunner().invoke(main, ["store", *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def summary(result: Any) -> tuple[int, int, int, int]:
    match = SUMMARY.search(result.stderr)
    assert match, result.stderr
    sent, total, failed, associations = map(int, match.groups())
    return sent, total, failed, associations


def files(tmp_path: Path, *classes: str) -> list[Path]:
    made = []
    for seed, sop_class in enumerate(classes, 1):
        ds = ct_dataset(seed=seed, sop_class=sop_class)
        made.append(write_part10(tmp_path / f"{seed}.dcm", ds, EXPLICIT))
    return made


def test_every_instance_stored_exits_0(tmp_path: Path, scp: Any) -> None:
    sent = files(tmp_path, CT_IMAGE_STORAGE, CT_IMAGE_STORAGE, MR)
    (tmp_path / "README").write_text("not DICOM")
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT], MR: [IMPLICIT]})
    result = store("--aec", "STORE-SCP", "127.0.0.1", server.port, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert summary(result) == (3, 3, 0, 1)
    assert "1 skipped (not DICOM)" in result.stderr
    assert result.stdout == ""  # results go to stderr; stdout stays empty
    assert len(server.received) == len(sent)


def test_a_warning_still_exits_0(tmp_path: Path, scp: Any) -> None:
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]}, status=0xB000)  # Coercion of data elements
    result = store(
        "--aec", "STORE-SCP", "127.0.0.1", server.port, *files(tmp_path, CT_IMAGE_STORAGE)
    )
    assert result.exit_code == 0, result.stderr
    assert "1 with warnings" in result.stderr


def test_a_refused_instance_exits_1(tmp_path: Path, scp: Any) -> None:
    refused, stored = files(tmp_path, CT_IMAGE_STORAGE, CT_IMAGE_STORAGE)

    def status(event: Any) -> int:
        return 0xA700 if event.request.MessageID == 1 else 0x0000  # out of resources

    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]}, status=status)
    result = store("--aec", "STORE-SCP", "127.0.0.1", server.port, refused, stored)
    assert result.exit_code == 1, result.stderr
    assert summary(result) == (1, 2, 1, 1)
    assert "0xA700" in result.stderr and str(refused) in result.stderr


def test_a_sop_class_the_peer_did_not_accept_exits_1(tmp_path: Path, scp: Any) -> None:
    server = scp({CT_IMAGE_STORAGE: [EXPLICIT]})
    result = store(
        "--aec", "STORE-SCP", "127.0.0.1", server.port, *files(tmp_path, CT_IMAGE_STORAGE, MR)
    )
    assert result.exit_code == 1, result.stderr
    assert summary(result) == (1, 2, 1, 1)
    assert "MR Image Storage" in result.stderr


def test_no_association_exits_2(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = store("--timeout", 5, "127.0.0.1", port, *files(tmp_path, CT_IMAGE_STORAGE))
    assert result.exit_code == 2, result.stderr
    assert summary(result)[3] == 0
    assert "(1 refused or failed)" in result.stderr


def test_nothing_to_send_exits_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not DICOM\n")
    result = store("127.0.0.1", 11112, tmp_path)
    assert result.exit_code == 2, result.stderr
    assert "No DICOM files to send" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["127.0.0.1", "11112"],  # no PATH
        ["127.0.0.1", "70000", "."],  # port out of range
        ["--aec", "X" * 17, "127.0.0.1", "11112", "."],  # AE title too long
        ["127.0.0.1", "11112", "/nonexistent/file.dcm"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert store(*args).exit_code == 2
