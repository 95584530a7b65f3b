#!/usr/bin/env python3
"""Codec micro-benchmarks: dicomnet against pynetdicom 3.0.4, same process, same inputs.

Measured (PS3.8 9.3):

* A-ASSOCIATE-RQ decode and encode, per second, on two captured requests
  (``tests/fixtures/pdus``): pynetdicom's 757-byte request with extended
  negotiation and DCMTK storescu's 9,615-byte request with 128 contexts.
* P-DATA-TF receive throughput, MB/s of data-set bytes, for 16 KiB and 1 MiB
  PDUs (one PDV each): an in-memory byte stream cut into PDUs and their PDVs,
  the way each library does it after ``recv``:

  - dicomnet: ``PDUReader.get_buffer``/``buffer_updated`` (what a transport
    does around ``recv_into``), ``next_pdu`` and ``iter_pdvs``;
  - pynetdicom: its own receive code, ``DULServiceProvider._read_pdu_data``
    (``AssociationSocket.recv`` loops over ``socket.recv(<=4096)``, the PDU is
    decoded by ``P_DATA_TF.decode`` and queued) followed by what state-machine
    action DT-2 does with it, ``P_DATA_TF.to_primitive()``.

  Both read from the same in-memory stream through a stand-in for the socket
  that copies what is asked for (as a kernel ``recv`` does), so socket costs
  are left out on both sides. Bytes of PDV data delivered are counted and must
  match.

Run (it re-executes itself with the pynetdicom venv's interpreter and makes the
working tree importable as ``dicomnet`` there; both are CPython 3.11)::

    python benchmarks/bench_codec.py [--quick] [--json results.json]
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import platform
import queue
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import DEFAULT_PYNETDICOM_PYTHON, markdown_table

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "pdus"
VENV_PYTHON = Path(DEFAULT_PYNETDICOM_PYTHON)
LAYOUT = {"core": "dicomnet", "plugins": "dicomnet/plugins", "contrib": "dicomnet/contrib"}


# -- environment -------------------------------------------------------------------------------


def ensure_environment() -> None:
    """Re-run under the venv that has pynetdicom; make the working tree importable there."""
    try:
        import pynetdicom  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        if not VENV_PYTHON.exists():
            sys.exit(f"pynetdicom is not importable and {VENV_PYTHON} does not exist")
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
    try:
        import dicomnet

        if Path(dicomnet.__file__).resolve().parent != ROOT / "core":
            raise ImportError("another dicomnet")
    except ImportError:
        # the import package is assembled from three folders: lay them out with symlinks
        tree = Path(tempfile.mkdtemp(prefix="bench-dicomnet-"))
        atexit.register(shutil.rmtree, tree, True)
        for source, target in LAYOUT.items():
            dest = tree / target
            dest.mkdir(parents=True, exist_ok=True)
            for entry in (ROOT / source).iterdir():
                if entry.name != "__pycache__" and not (dest / entry.name).exists():
                    (dest / entry.name).symlink_to(entry)
        sys.path.insert(0, str(tree))
        for name in [m for m in sys.modules if m == "dicomnet" or m.startswith("dicomnet.")]:
            del sys.modules[name]


# -- timing ------------------------------------------------------------------------------------


def measure(func: Callable[[], object], *, min_time: float, repeats: int) -> float:
    """Median seconds per call of ``func`` over ``repeats`` runs of at least ``min_time``."""
    func()  # warm up
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            func()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        number *= 2
    samples = [elapsed / number]
    for _ in range(repeats - 1):
        gc.collect()
        start = time.perf_counter()
        for _ in range(number):
            func()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


# -- A-ASSOCIATE-RQ ----------------------------------------------------------------------------


def bench_associate(name: str, min_time: float, repeats: int) -> list[dict[str, Any]]:
    from pynetdicom.pdu import A_ASSOCIATE_RQ  # type: ignore[import-not-found,unused-ignore]

    from dicomnet.pdu import AAssociateRQ, decode_pdu

    wire = (FIXTURES / f"{name}.bin").read_bytes()
    ours = decode_pdu(wire[0], memoryview(wire)[6:])
    assert isinstance(ours, AAssociateRQ)
    theirs = A_ASSOCIATE_RQ()
    theirs.decode(wire)
    primitive = theirs.to_primitive()
    # both decode the same request to the same contents
    assert len(theirs.presentation_context) == len(ours.presentation_contexts)
    assert primitive.calling_ae_title == ours.calling_ae_title

    def our_decode() -> object:
        return decode_pdu(1, memoryview(wire)[6:])

    def their_decode() -> object:
        pdu = A_ASSOCIATE_RQ()
        pdu.decode(wire)
        return pdu

    def their_decode_primitive() -> object:
        pdu = A_ASSOCIATE_RQ()
        pdu.decode(wire)
        return pdu.to_primitive()

    def their_encode_primitive() -> object:
        return A_ASSOCIATE_RQ(primitive).encode()

    label = f"A-ASSOCIATE-RQ {len(wire):,} B ({name.split('-', maxsplit=1)[0]})"
    t_dec = measure(our_decode, min_time=min_time, repeats=repeats)
    t_enc = measure(ours.to_bytes, min_time=min_time, repeats=repeats)
    return [
        row(f"{label} decode", "ops/s", 1 / t_dec,
            1 / measure(their_decode, min_time=min_time, repeats=repeats),
            "pynetdicom: A_ASSOCIATE_RQ().decode()"),
        row(f"{label} decode", "ops/s", 1 / t_dec,
            1 / measure(their_decode_primitive, min_time=min_time, repeats=repeats),
            "pynetdicom: decode() + to_primitive(), what its DUL does"),
        row(f"{label} encode", "ops/s", 1 / t_enc,
            1 / measure(theirs.encode, min_time=min_time, repeats=repeats),
            "pynetdicom: encode() of a built PDU object"),
        row(f"{label} encode", "ops/s", 1 / t_enc,
            1 / measure(their_encode_primitive, min_time=min_time, repeats=repeats),
            "pynetdicom: A_ASSOCIATE_RQ(primitive).encode(), what its DUL does"),
    ]


# -- P-DATA-TF ---------------------------------------------------------------------------------


def make_stream(pdu_length: int, total: int) -> tuple[bytes, int]:
    """P-DATA-TF PDUs of ``pdu_length`` bytes (variable field), one PDV each; and the data bytes."""
    from dicomnet.pdu import pdata_header

    data_length = pdu_length - 6
    count = max(1, total // pdu_length)
    pdu = pdata_header(1, 0, data_length) + bytes(range(256)) * (data_length // 256) + bytes(
        data_length % 256
    )
    return pdu * count, data_length * count


def dicomnet_receive(stream: bytes, pdu_length: int, recv_size: int) -> int:
    from dicomnet.framing import PDUReader
    from dicomnet.pdu import iter_pdvs

    source = memoryview(stream)
    end = len(stream)
    reader = PDUReader(max_pdata_length=pdu_length)
    get_buffer, buffer_updated, next_pdu = reader.get_buffer, reader.buffer_updated, reader.next_pdu
    pos = 0
    delivered = 0
    while pos < end:
        target = get_buffer()  # recv_into(target) stand-in: copy what is asked for
        n = min(len(target), end - pos, recv_size)
        target[:n] = source[pos : pos + n]
        buffer_updated(n)
        pos += n
        while (frame := next_pdu()) is not None:
            for _cid, _control, data in iter_pdvs(frame[1]):
                delivered += len(data)
    return delivered


class _FakeSocket:
    """What ``socket.recv(n)`` returns, from memory: a new bytes object of at most n bytes."""

    def __init__(self, stream: bytes) -> None:
        self._view = memoryview(stream)
        self._pos = 0

    def recv(self, size: int) -> bytes:
        chunk = bytes(self._view[self._pos : self._pos + size])
        self._pos += len(chunk)
        return chunk


class _FakeAssociation:
    """Enough of an Association for pynetdicom's ``evt.trigger``: no handlers bound."""

    def get_handlers(self, event: object) -> list[object]:
        return []


def pynetdicom_receive(stream: bytes, pdu_count: int) -> int:
    from pynetdicom.dul import DULServiceProvider  # type: ignore[import-not-found,unused-ignore]
    from pynetdicom.transport import (  # type: ignore[import-not-found,unused-ignore]
        AssociationSocket,
    )

    sock = object.__new__(AssociationSocket)
    sock.socket = _FakeSocket(stream)
    dul = object.__new__(DULServiceProvider)
    dul.socket = sock
    dul.event_queue = queue.Queue()
    dul._recv_pdu = queue.Queue()
    dul._assoc = _FakeAssociation()
    read, events, pdus = dul._read_pdu_data, dul.event_queue, dul._recv_pdu
    delivered = 0
    for _ in range(pdu_count):
        read()  # the DUL reactor's read: PDU bytes from the socket, decoded and queued
        assert events.get_nowait() == "Evt10"
        primitive = pdus.get_nowait().to_primitive()  # state-machine action DT-2
        for _cid, value in primitive.presentation_data_value_list:
            delivered += len(value) - 1  # the first byte is the message control header
    return delivered


def bench_pdata(pdu_length: int, total: int, repeats: int) -> list[dict[str, Any]]:
    stream, data_bytes = make_stream(pdu_length, total)
    count = len(stream) // (pdu_length + 6)
    label = f"P-DATA-TF {pdu_length // 1024} KiB PDUs -> PDVs"
    rows = []
    results: dict[str, float] = {}
    runs: dict[str, Callable[[], int]] = {
        "ours": lambda: dicomnet_receive(stream, pdu_length, 64 * 1024),
        "ours4k": lambda: dicomnet_receive(stream, pdu_length, 4096),
        "theirs": lambda: pynetdicom_receive(stream, count),
    }
    for key, func in runs.items():
        assert func() == data_bytes, key
        results[key] = data_bytes / 1e6 / measure(func, min_time=0.2, repeats=repeats)
    rows.append(row(label, "MB/s", results["ours"], results["theirs"],
                    "dicomnet reads up to 64 KiB per recv_into; pynetdicom 4 KiB per recv"))
    rows.append(row(label, "MB/s", results["ours4k"], results["theirs"],
                    "both read at most 4 KiB per call"))
    return rows


# -- report ------------------------------------------------------------------------------------


def row(name: str, unit: str, ours: float, theirs: float, note: str) -> dict[str, Any]:
    return {"benchmark": name, "unit": unit, "dicomnet": ours, "pynetdicom": theirs,
            "ratio": ours / theirs, "note": note}


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ["benchmark", "unit", "dicomnet", "pynetdicom 3.0.4", "dicomnet/pynetdicom",
              "what pynetdicom did"]
    cells = [[r["benchmark"], r["unit"], fmt(r["dicomnet"]), fmt(r["pynetdicom"]),
              f"{r['ratio']:.1f}x", r["note"]] for r in rows]
    print("\n".join(markdown_table(header, cells, "llrrrl")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    ensure_environment()
    import pynetdicom  # type: ignore[import-not-found,unused-ignore]

    import dicomnet

    min_time, repeats, total = (0.05, 3, 8 << 20) if args.quick else (0.2, 7, 64 << 20)
    rows: list[dict[str, Any]] = []
    for name in ("pynetdicom-scu-associate-rq-extended", "dcmtk-storescu-associate-rq"):
        rows += bench_associate(name, min_time, repeats)
    for pdu_length in (16 * 1024, 1024 * 1024):
        rows += bench_pdata(pdu_length, total, repeats)
    cpus = os.cpu_count()
    print(f"# dicomnet {dicomnet.__version__} vs pynetdicom {pynetdicom.__version__}, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, {cpus} CPUs, {time.strftime('%Y-%m-%d')}; "
          f"median of {repeats}, P-DATA stream of {total >> 20} MiB\n")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
