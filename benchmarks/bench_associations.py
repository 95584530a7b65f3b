#!/usr/bin/env python3
"""Sequential associations per second: associate, one C-ECHO, release -- one client process.

This measures the cost of an association itself: TCP connection, A-ASSOCIATE
negotiation, one DIMSE exchange, A-RELEASE and teardown, one after another
from one client process to one server process, over loopback.

    python benchmarks/bench_associations.py                  # everything available
    python benchmarks/bench_associations.py --runs 5 --n-dicomnet 1000
    python benchmarks/bench_associations.py --markdown       # the table for README.md

Cases (each server is its own process; each run is a fresh client process
whose clock starts after its imports and a few warm-up associations):

* dicomnet SCU -> dicomnet SCP, and pynetdicom 3.0.4 SCU -> pynetdicom SCP
  (in the venv's python: ``$DICOMNET_PYNETDICOM_PYTHON`` or
  ``~/.cache/dicom-peers/venv/bin/python``); their ratio is the headline
  figure (target: at least 10x);
* for context, the two mixed pairs, dicomnet SCU -> DCMTK ``storescp``, and
  DCMTK ``echoscu`` -> dicomnet SCP / -> ``storescp``, one echoscu process per
  association: **process start-up dominates those two**, they are not
  association costs.

Figures are medians of ``--runs`` runs (default 3), run in rounds (every case
once per round) so that a change in the machine's load hits all cases alike;
the load average is printed with the table. DCMTK runs with
``TCP_NODELAY=1`` (without it each exchange stalls ~40 ms). The same file is
the worker: ``--serve LIB`` and ``--client LIB HOST PORT N`` run one side with
``LIB`` (``dicomnet`` or ``pynetdicom``), imported by name, so that the
pynetdicom side runs in the venv's python without dicomnet.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _harness import (
    PEER_ENV,
    ServerProcess,
    add_pynetdicom_option,
    add_runs_option,
    emit_result,
    free_port,
    has_pynetdicom,
    import_library,
    in_rounds,
    markdown_table,
    progress,
    run_worker,
    serve_until_stdin_closes,
    text_table,
    verdict,
    versions,
    which_all,
)

HERE = Path(__file__).resolve()
SCP_AET = "BENCH-SCP"
WARMUP = 5


# -- worker side: runs with either library ----------------------------------------------------


def serve(lib: str) -> int:
    """Serve Verification on a free loopback port until standard input closes."""
    module, sop_class = import_library(lib)
    ae = module.AE(ae_title=SCP_AET)
    ae.add_supported_context(sop_class.Verification)
    ae.maximum_associations = 50  # threads of released associations may still be ending
    serve_until_stdin_closes(ae.start_server(("127.0.0.1", 0), block=False))
    return 0


def client(lib: str, host: str, port: int, count: int, called: str) -> int:
    """``count`` sequential associations with one C-ECHO each; prints ``{"n", "seconds"}``."""
    module, sop_class = import_library(lib)
    ae = module.AE(ae_title="BENCH-SCU")
    ae.add_requested_context(sop_class.Verification)

    def once() -> None:
        assoc = ae.associate(host, port, ae_title=called)
        if not assoc.is_established:
            raise SystemExit(f"{lib}: association with {host}:{port} failed")
        status = assoc.send_c_echo()
        if not status or status.Status != 0:
            raise SystemExit(f"{lib}: C-ECHO failed: {status}")
        assoc.release()

    for _ in range(WARMUP):
        once()
    start = time.perf_counter()
    for _ in range(count):
        once()
    seconds = time.perf_counter() - start
    emit_result({"n": count, "seconds": seconds})
    return 0


# -- driver side ------------------------------------------------------------------------------


def run_worker_client(python: str, lib: str, port: int, count: int, called: str) -> float:
    """One client run in a fresh process; associations per second."""
    figures = run_worker(
        [python, str(HERE), "--client", lib, "127.0.0.1", str(port), str(count), called],
        what=f"{lib} client",
        timeout=600,
    )
    return float(figures["n"] / figures["seconds"])


def run_echoscu_loop(echoscu: str, port: int, count: int, called: str) -> float:
    """``count`` echoscu processes, one association each; associations per second."""
    argv = [echoscu, "-aec", called, "127.0.0.1", str(port)]
    for _ in range(WARMUP):
        subprocess.run(argv, env=PEER_ENV, check=True, capture_output=True)
    start = time.perf_counter()
    for _ in range(count):
        subprocess.run(argv, env=PEER_ENV, check=True, capture_output=True)
    return count / (time.perf_counter() - start)


class Case:
    """One client -> server pairing: its server, its client runs and their rates."""

    def __init__(
        self,
        key: str,
        label: str,
        count: int,
        start_server: Callable[[], ServerProcess],
        client_for: Callable[[ServerProcess], Callable[[int], float]],
        note: str = "",
    ) -> None:
        self.key, self.label, self.count, self.note = key, label, count, note
        self._start_server, self._client_for = start_server, client_for
        self.server: ServerProcess | None = None
        self.rates: list[float] = []

    def start(self) -> ServerProcess:
        self.server = self._start_server()
        return self.server

    def run(self) -> float:
        """One client run: associations per second."""
        assert self.server is not None
        return self._client_for(self.server)(self.count)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def build_cases(args: argparse.Namespace) -> tuple[list[Case], list[str]]:
    ours = sys.executable
    pyn = args.pynetdicom_python
    skipped = []
    have_pynetdicom = has_pynetdicom(pyn)
    if not have_pynetdicom:
        skipped.append(f"pynetdicom: {pyn} cannot import pynetdicom")
    dcmtk = which_all("storescp", "echoscu")
    storescp, echoscu = dcmtk if dcmtk and not args.no_dcmtk else (None, None)
    if storescp is None:
        skipped.append("DCMTK: " + ("--no-dcmtk" if args.no_dcmtk else "not on PATH"))

    def worker_server(python: str, lib: str) -> Callable[[], ServerProcess]:
        return lambda: ServerProcess([python, str(HERE), "--serve", lib])

    def storescp_server() -> ServerProcess:
        assert storescp is not None
        port = free_port()
        return ServerProcess([storescp, "-aet", SCP_AET, str(port)], port=port)

    def worker_client(python: str, lib: str) -> Callable[[ServerProcess], Callable[[int], float]]:
        return lambda server: lambda n: run_worker_client(python, lib, server.port, n, SCP_AET)

    cases = []

    def add(key: str, label: str, count: int, start: Any, client_for: Any, note: str = "") -> None:
        cases.append(Case(key, label, count, start, client_for, note))

    add(
        "dicomnet",
        "dicomnet SCU -> dicomnet SCP",
        args.n_dicomnet,
        worker_server(ours, "dicomnet"),
        worker_client(ours, "dicomnet"),
    )
    if have_pynetdicom:
        add(
            "pynetdicom",
            "pynetdicom 3.0.4 SCU -> pynetdicom 3.0.4 SCP",
            args.n_pynetdicom,
            worker_server(pyn, "pynetdicom"),
            worker_client(pyn, "pynetdicom"),
        )
    if args.context:
        if have_pynetdicom:
            add(
                "dicomnet->pynetdicom",
                "dicomnet SCU -> pynetdicom SCP",
                args.n_pynetdicom,
                worker_server(pyn, "pynetdicom"),
                worker_client(ours, "dicomnet"),
            )
            add(
                "pynetdicom->dicomnet",
                "pynetdicom SCU -> dicomnet SCP",
                args.n_pynetdicom,
                worker_server(ours, "dicomnet"),
                worker_client(pyn, "pynetdicom"),
            )
        if storescp and echoscu:
            add(
                "dicomnet->storescp",
                "dicomnet SCU -> DCMTK storescp",
                args.n_dicomnet,
                storescp_server,
                worker_client(ours, "dicomnet"),
            )

            def echoscu_client(server: ServerProcess) -> Callable[[int], float]:
                assert echoscu is not None
                return lambda n: run_echoscu_loop(echoscu, server.port, n, SCP_AET)

            add(
                "echoscu->dicomnet",
                "DCMTK echoscu -> dicomnet SCP",
                args.n_process,
                worker_server(ours, "dicomnet"),
                echoscu_client,
                "one echoscu process per association: process start-up dominates",
            )
            add(
                "echoscu->storescp",
                "DCMTK echoscu -> DCMTK storescp",
                args.n_process,
                storescp_server,
                echoscu_client,
                "one echoscu process per association: process start-up dominates",
            )
    return cases, skipped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", metavar="LIB", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=5, metavar="X", help=argparse.SUPPRESS)
    add_runs_option(parser)
    parser.add_argument("--n-dicomnet", type=int, default=300, help="associations per dicomnet run")
    parser.add_argument(
        "--n-pynetdicom", type=int, default=100, help="associations per run with pynetdicom"
    )
    parser.add_argument(
        "--n-process", type=int, default=100, help="echoscu processes per run (DCMTK cases)"
    )
    add_pynetdicom_option(parser)
    parser.add_argument(
        "--no-context", dest="context", action="store_false", help="only the two main cases"
    )
    parser.add_argument("--no-dcmtk", action="store_true", help="leave out the DCMTK cases")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)

    if args.serve:
        return serve(args.serve)
    if args.client:
        lib, host, port, count, called = args.client
        return client(lib, host, int(port), int(count), called)

    cases, skipped = build_cases(args)
    load_before = os.getloadavg()[0]
    servers = []
    try:
        for case in cases:
            servers.append(case.start())
        for _, case in in_rounds(cases, args.runs):
            case.rates.append(case.run())
            progress(f"  {case.label}: {case.rates[-1]:8.1f}/s")
    finally:
        for server in servers:
            server.stop()
    load_after = os.getloadavg()[0]

    by_key = {case.key: case for case in cases}
    ratio = None
    if "dicomnet" in by_key and "pynetdicom" in by_key:
        ratio = by_key["dicomnet"].median / by_key["pynetdicom"].median
    pyn = args.pynetdicom_python
    found = versions(pyn if has_pynetdicom(pyn) else None, "echoscu")
    described = ", ".join(f"{k} {v}" for k, v in found.items())
    print(f"{os.cpu_count()} CPUs, {described}; median of {args.runs} runs")
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")
    if args.markdown:
        header = ["client -> server", "associations per run", "associations/s (median)", "note"]
        rows = [[c.label, str(c.count), f"{c.median:,.1f}", c.note] for c in cases]
        print("\n" + "\n".join(markdown_table(header, rows, "lrrl")))
    else:
        rows = []
        for case in cases:
            runs = " ".join(f"{rate:.1f}" for rate in case.rates)
            rows.append([case.label, str(case.count), f"{case.median:.1f}", runs])
            if case.note:
                rows.append(["", f"({case.note})"])
        print("\n".join(text_table(["client -> server", "N", "assoc/s", "runs"], rows, [5, 9])))
    if ratio is not None:
        print(f"\ndicomnet / pynetdicom: {ratio:.1f}x ({verdict(ratio, 10)} the 10x target)")
    for reason in skipped:
        print(f"skipped: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
