"""``dicomnet store`` of a ~200 MB object in bounded memory (PS3.4 Annex B, PS3.7 9.1.1).

The sender runs as a subprocess; its peak resident set size comes from the
kernel when it is reaped (``os.wait4``: ``ru_maxrss``) and is compared with
the peak of the same command sending a 1 MiB file. What is asserted is
memory, never time. The peer is :class:`~tests.storage.send_support.WireSink`,
which hashes each data set as it arrives and keeps nothing.

Two paths: the file sent as it is (streamed from the file in chunks), and
converted from Explicit to Implicit VR Little Endian on the way (the
streaming converter of :mod:`dicomnet.transcode`), because the peer accepts
only the latter.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomnet import transcode as tc
from dicomnet.part10 import read_file_info
from tests.storage.send_support import (
    EXPLICIT,
    IMPLICIT,
    SECONDARY_CAPTURE,
    WireSink,
    write_big_file,
)

pytestmark = [pytest.mark.slow, pytest.mark.leakcheck, pytest.mark.timeout(180)]

LARGE_MIB = 200
#: how much more the sender of the large file may hold at its peak than that of a small one
MAX_GROWTH_MIB = 64


def store_peak_rss(path: Path, syntaxes: list[str], log: Path) -> tuple[int, float, WireSink]:
    """Run ``dicomnet store PATH`` against a new sink; its exit status and peak RSS in MiB."""
    sink = WireSink([SECONDARY_CAPTURE], syntaxes)
    argv = [
        sys.executable, "-m", "dicomnet.contrib.cli", "store", "--aec", "WIRE-SINK",
        "--timeout", "60", "127.0.0.1", str(sink.port), str(path),
    ]  # fmt: skip
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    sink.join()
    return proc.returncode, usage.ru_maxrss / 1024, sink  # ru_maxrss: KiB on Linux


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, str, int]]]:
    """A 1 MiB and a 200 MiB Secondary Capture file, explicit VR little endian."""
    folder = tmp_path_factory.mktemp("send-memory")
    made = {
        "small": write_big_file(folder / "small.dcm", 1),
        "large": write_big_file(folder / "large.dcm", LARGE_MIB),
    }
    yield made
    for path, _digest, _length in made.values():
        path.unlink()


def converted_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and length of the file's data set as Implicit VR Little Endian (streamed)."""
    info = read_file_info(path)

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as fp:
            fp.seek(info.offset)
            while block := fp.read(1 << 20):
                yield block

    digest = hashlib.sha256()
    length = 0
    for chunk in tc.explicit_to_implicit(chunks()):
        digest.update(chunk)
        length += len(chunk)
    return digest.hexdigest(), length


@pytest.mark.parametrize(
    "accepted", [EXPLICIT, IMPLICIT], ids=["as-it-is", "converted-to-implicit"]
)
def test_store_of_a_200_mb_file_in_bounded_memory(
    files: dict[str, tuple[Path, str, int]], accepted: str, tmp_path: Path
) -> None:
    log = tmp_path / "store.log"
    small, _, _ = files["small"]
    code, baseline, _sink = store_peak_rss(small, [accepted], log)
    assert code == 0, log.read_text()
    large, digest, length = files["large"]
    code, peak, sink = store_peak_rss(large, [accepted], log)
    assert code == 0, log.read_text()
    growth = peak - baseline
    assert growth <= MAX_GROWTH_MIB, (
        f"sending {LARGE_MIB} MiB raised the sender's peak RSS by {growth:.1f} MiB "
        f"({baseline:.1f} -> {peak:.1f} MiB)"
    )
    (got,) = sink.digests
    assert got.transfer_syntax == accepted
    if accepted == EXPLICIT:
        assert (got.sha256, got.nbytes) == (digest, length)
    else:
        assert (got.sha256, got.nbytes) == converted_digest(large)
