#!/usr/bin/env python3
"""Concurrent associations: N clients at once, each associate + C-ECHO + release.

    python benchmarks/bench_aio.py                     # N = 100 and 300, 3 runs each
    python benchmarks/bench_aio.py --n 50 200 --runs 5
    python benchmarks/bench_aio.py --markdown          # the table for README.md

One client process opens N associations at the same time to one server
process (a dicomnet threaded server, the same for every case) over loopback,
each doing one C-ECHO and a release; the figure is the wall time from the
first connection to the last release, and N over it. Cases:

* ``dicomnet.aio``: one event loop in one thread carries the N associations;
* dicomnet threads: N threads, each with its own blocking association (which
  has its own thread too);
* pynetdicom 3.0.4 threads (the venv's python: ``$DICOMNET_PYNETDICOM_PYTHON``
  or ``~/.cache/dicom-peers/venv/bin/python``): N threads, each with its own
  association (pynetdicom runs two threads per association).

Also reported: the client's peak thread count and CPU seconds (user +
system), which is where a loop and threads differ most. Medians of
``--runs`` runs, in rounds (every case once per round). The same file is the
worker: ``--serve`` and ``--client CASE HOST PORT N`` run one side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _harness import (
    ServerProcess,
    add_pynetdicom_option,
    add_runs_option,
    emit_result,
    has_pynetdicom,
    import_library,
    in_rounds,
    load_average_line,
    markdown_table,
    progress,
    run_worker,
    serve_until_stdin_closes,
    text_table,
    versions,
)

HERE = Path(__file__).resolve()
SCP_AET = "BENCH-SCP"
CASES = {
    "aio": "dicomnet.aio, one loop",
    "dicomnet": "dicomnet, a thread each",
    "pynetdicom": "pynetdicom 3.0.4, a thread each",
}


# -- worker side ------------------------------------------------------------------------------


def serve(most: int) -> int:
    """A dicomnet Verification SCP on a free loopback port, until standard input closes."""
    module, sop_class = import_library("dicomnet")
    ae = module.AE(ae_title=SCP_AET)
    ae.add_supported_context(sop_class.Verification)
    ae.maximum_associations = most
    serve_until_stdin_closes(ae.start_server(("127.0.0.1", 0), block=False))
    return 0


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def client_aio(host: str, port: int, count: int) -> dict[str, Any]:
    import asyncio

    from dicomnet.aio import AsyncAE
    from dicomnet.sop_class import Verification

    ae = AsyncAE("BENCH-SCU")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = 120

    async def once() -> None:
        assoc = await ae.associate(host, port, ae_title=SCP_AET)
        if not assoc.is_established:
            raise SystemExit("aio: association failed")
        status = await assoc.send_c_echo()
        if not status or status.Status != 0:
            raise SystemExit(f"aio: C-ECHO failed: {status}")
        await assoc.release()

    async def main() -> float:
        await asyncio.gather(*(once() for _ in range(5)))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(once() for _ in range(count)))
        return time.perf_counter() - start

    cpu = _cpu()
    seconds = asyncio.run(main())
    threads = threading.active_count()
    return {"n": count, "seconds": seconds, "cpu": _cpu() - cpu, "threads": threads}


def client_threads(lib: str, host: str, port: int, count: int) -> dict[str, Any]:
    module, sop_class = import_library(lib)
    ae = module.AE(ae_title="BENCH-SCU")
    ae.add_requested_context(sop_class.Verification)
    ae.acse_timeout = ae.dimse_timeout = 120
    failures: list[str] = []
    peak = [threading.active_count()]
    barrier = threading.Barrier(count + 1)

    def once(wait: bool) -> None:
        if wait:
            barrier.wait()
        assoc = ae.associate(host, port, ae_title=SCP_AET)
        if not assoc.is_established:
            failures.append("association failed")
            return
        status = assoc.send_c_echo()
        peak[0] = max(peak[0], threading.active_count())
        if not status or status.Status != 0:
            failures.append(f"C-ECHO failed: {status}")
        assoc.release()

    for _ in range(5):
        once(False)
    threads = [threading.Thread(target=once, args=(True,)) for _ in range(count)]
    for thread in threads:
        thread.start()
    cpu = _cpu()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{lib}: {len(failures)} failures, e.g. {failures[0]}")
    return {"n": count, "seconds": seconds, "cpu": _cpu() - cpu, "threads": peak[0]}


# -- driver side ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 300], help="concurrent clients")
    add_runs_option(parser)
    add_pynetdicom_option(parser)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--serve", type=int, metavar="MAX", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=4, metavar=("CASE", "HOST", "PORT", "N"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve)
    if args.client is not None:
        case, host, port, count = args.client
        if case == "aio":
            emit_result(client_aio(host, int(port), int(count)))
        else:
            emit_result(client_threads(case, host, int(port), int(count)))
        return 0

    pyn = args.pynetdicom_python
    cases = ["aio", "dicomnet"]
    if has_pynetdicom(pyn):
        cases.append("pynetdicom")
    else:
        progress(f"pynetdicom: {pyn} cannot import pynetdicom; skipped")
    most = max(args.n) + 100
    server = ServerProcess([sys.executable, str(HERE), "--serve", str(most)])
    figures: dict[tuple[str, int], list[dict[str, Any]]] = {}
    load_before = os.getloadavg()
    try:
        pairs = [(case, n) for n in args.n for case in cases]
        for round_number, (case, n) in in_rounds(pairs, args.runs):
            progress(f"round {round_number}: {CASES[case]}, N={n}")
            python = pyn if case == "pynetdicom" else sys.executable
            figures.setdefault((case, n), []).append(
                run_worker(
                    [python, str(HERE), "--client", case, "127.0.0.1", str(server.port), str(n)],
                    what=f"{case} client",
                    timeout=900,
                )
            )
    finally:
        server.stop()
    header = ["client", "N", "assoc/s", "wall s", "client CPU s", "threads"]
    rows = []
    for n in args.n:
        for case in cases:
            runs = figures[(case, n)]
            seconds = statistics.median(r["seconds"] for r in runs)
            rows.append([
                CASES[case], str(n), f"{n / seconds:,.0f}", f"{seconds:.2f}",
                f"{statistics.median(r['cpu'] for r in runs):.2f}",
                str(max(r["threads"] for r in runs)),
            ])  # fmt: skip
    if args.markdown:
        print("\n".join(markdown_table(header, rows, "lrrrrr")))
    else:
        print("\n".join(text_table(header, rows, widths=[5, 9, 8, 13])))
    print(load_average_line(load_before, os.getloadavg()))
    found = versions(pyn if "pynetdicom" in cases else None, "echoscu")
    print(", ".join(f"{name} {version}" for name, version in found.items() if name != "DCMTK"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
