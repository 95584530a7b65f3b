#!/usr/bin/env python3
"""C-FIND: one query answered with K pending responses (default 5,000), responses per second.

The query is a Study Root IMAGE-level C-FIND (PS3.4 C.6.2) for one series of
K tiny CT images (``/work/shared/peers/make-bench-data.py --find-k K``): the
unique keys of the study and the series, and SOP Instance UID and Instance
Number as return keys. Every SCP answers with K Pending responses, each with
the same six-element identifier (SOP Instance UID, Query/Retrieve Level,
Retrieve AE Title, Study and Series Instance UID, Instance Number -- what
``dcmqrscp`` returns for that query), then Success.

    python benchmarks/bench_find.py                 # everything available, ~2 min
    python benchmarks/bench_find.py --runs 5 --markdown
    python benchmarks/bench_find.py --no-context    # only the findscu rows

**The fixed SCU** is DCMTK ``findscu -q`` (C++, writing nothing), the same
binary and arguments for every SCP, so that the SCPs are what differs. Its
figure comes from two ``findscu`` processes per run: one with ``--repeat 1``
and one with ``--repeat 1+E`` (E extra queries over the same association);
``E * K / (t(1+E) - t(1))`` is the SCP's rate with process start-up,
association set-up and release subtracted (E = 8 by default, 1 for the slow
pynetdicom SCP: enough work that a hiccup of the baseline run barely moves
the difference). The SCPs:

* **dicomnet SCP** and **pynetdicom 3.0.4 SCP** (in the venv's python,
  ``$DICOMNET_PYNETDICOM_PYTHON`` or ``~/.cache/dicom-peers/venv/bin/python``),
  each with the same in-memory handler bound to ``EVT_C_FIND``: a generator
  that yields ``(0xFF00, identifier)`` for each of K Datasets built once at
  start-up (from a JSON list of the instances), checking ``event.is_cancelled``
  before each as pynetdicom's documentation does. No matching: this measures
  the response path of the library, not a database.
* **DCMTK dcmqrscp** (``-q``, default forking mode, TCP_NODELAY=1) with its
  own index of the K files, built once with ``dcmqridx``: it matches the
  query against its index and reads each answer's keys from it.
  (Its index file outgrows the 32 MiB that dcmqrscp expects beyond about
  4,100 instances; it logs an alert per record past that -- suppressed by
  ``-q`` -- and still answers correctly.)
* **dicomnet serve** with its SQLite index holding the same K instances, the
  apples-to-apples database comparison with dcmqrscp -- when
  ``dicomnet.contrib.serve`` exists (reported as skipped otherwise).

**End to end** (``--no-context`` leaves these out), timed inside the client
process over one association after a one-match warm-up query, identifiers
decoded and their SOP Instance UID read as an application would:
dicomnet SCU -> dicomnet SCP, pynetdicom SCU -> pynetdicom SCP, and dicomnet
SCU -> dcmqrscp (where the SCU's own cost shows).

Before timing, one query per SCP through the dicomnet SCU checks that all of
them answer K Pending responses with the same identifiers. Figures are
medians of ``--runs`` runs (default 3) in rounds (every case once per round);
the load average is printed with the table. The same file is the worker:
``--serve LIB DATA AET`` and ``--client LIB PORT AET DATA N [--check]`` run
one side with ``LIB`` (``dicomnet`` or ``pynetdicom``), imported by name.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from _harness import (
    DATA_ROOT,
    ServerProcess,
    add_pynetdicom_option,
    add_runs_option,
    emit_result,
    free_port,
    has_pynetdicom,
    import_library,
    in_rounds,
    load_average_line,
    make_bench_data,
    markdown_table,
    progress,
    run_worker,
    serve_until_stdin_closes,
    text_table,
    timed_run,
    verdict,
    versions,
    which_all,
)

HERE = Path(__file__).resolve()
MAKE_DATA = Path(os.environ.get("DICOM_PEERS_DIR", "/work/shared/peers")) / "make-bench-data.py"
DEFAULT_DATA = DATA_ROOT / "find"
SCP_AET = "BENCH-QR"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PENDING = (0xFF00, 0xFF01)


# -- the data: K instances, their identifiers ---------------------------------------------------


def load_instances(data: Path) -> dict[str, Any]:
    """``{"study", "series", "instances": [[sop_uid, instance_number], ...]}`` (cached JSON)."""
    return dict(json.loads((data / "identifiers.json").read_text()))


def build_identifiers(data: Path, ae_title: str) -> list[Any]:
    """The K identifiers every SCP answers with, as pydicom Datasets (built once)."""
    from pydicom.dataset import Dataset

    info = load_instances(data)
    identifiers = []
    for sop_uid, number in info["instances"]:
        ds = Dataset()
        ds.SOPInstanceUID = sop_uid
        ds.QueryRetrieveLevel = "IMAGE"
        ds.RetrieveAETitle = ae_title
        ds.StudyInstanceUID = info["study"]
        ds.SeriesInstanceUID = info["series"]
        ds.InstanceNumber = str(number)
        identifiers.append(ds)
    return identifiers


def query(info: dict[str, Any], sop_uid: str = "") -> Any:
    """The IMAGE-level query: all K instances, or the one with ``sop_uid``."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = info["study"]
    ds.SeriesInstanceUID = info["series"]
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = ""
    return ds


def prepare_data(data: Path, count: int) -> dict[str, Any]:
    """Make the K files (make-bench-data.py) and the identifier list, unless cached."""
    manifest = data / "manifest.json"
    fresh = False
    if not manifest.exists() or json.loads(manifest.read_text())["finddb"]["count"] != count:
        data.mkdir(parents=True, exist_ok=True)
        progress(f"making {count} C-FIND instances in {data} ...")
        make_bench_data(MAKE_DATA, data, python=sys.executable, find_k=count)
        fresh = True
    listing = data / "identifiers.json"
    if fresh or not listing.exists():
        from pydicom import dcmread

        found = json.loads(manifest.read_text())["finddb"]
        instances = []
        for path in sorted((data / found["dir"]).glob("*.dcm")):
            ds = dcmread(path, stop_before_pixels=True, specific_tags=[0x00080018, 0x00200013])
            instances.append([str(ds.SOPInstanceUID), int(ds.InstanceNumber)])
        listing.write_text(
            json.dumps(
                {"study": found["study_uid"], "series": found["series_uid"], "instances": instances}
            )
        )
    return load_instances(data)


def prepare_dcmqrscp_index(data: Path, dcmqridx: str) -> Path:
    """dcmqrscp's storage area with its index of the K files (``dcmqridx``; cached)."""
    area = data / "dcmqrscp"
    files = sorted(str(p) for p in (data / "finddb").glob("*.dcm"))
    marker = area / f"indexed-{len(files)}"
    if marker.exists():
        return area
    if area.exists():
        shutil.rmtree(area)
    area.mkdir(parents=True)
    progress(f"indexing {len(files)} files for dcmqrscp ...")
    for start in range(0, len(files), 500):
        subprocess.run(
            [dcmqridx, "-q", str(area), *files[start : start + 500]],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    marker.touch()
    return area


def prepare_serve_index(data: Path) -> Path:
    """The storage folder of ``dicomnet serve``: the K files (hard links) and its SQLite
    index of them, built with the index's own rescan (cached)."""
    folder = data / "serve"
    files = sorted((data / "finddb").glob("*.dcm"))
    marker = folder / f"indexed-{len(files)}"
    if marker.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "finddb").mkdir(parents=True)
    for path in files:
        os.link(path, folder / "finddb" / path.name)
    progress(f"indexing {len(files)} files for dicomnet serve ...")
    from dicomnet.contrib.pacs import Index

    with Index(storage_dir=folder) as index:
        report = index.rescan()
    if report.failed:
        raise SystemExit(f"dicomnet serve's index could not take {len(report.failed)} files")
    marker.touch()
    return folder


# -- worker side: runs with either library ----------------------------------------------------


def serve(lib: str, data: Path, ae_title: str) -> int:
    """Serve Study Root C-FIND from K prebuilt identifiers until standard input closes."""
    module, sop_class = import_library(lib)
    identifiers = build_identifiers(data, ae_title)

    def on_find(event: Any) -> Iterator[tuple[int, Any]]:
        wanted = str(event.identifier.get("SOPInstanceUID", "") or "")
        for ds in identifiers:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            if not wanted or ds.SOPInstanceUID == wanted:
                yield 0xFF00, ds

    ae = module.AE(ae_title=ae_title)
    ae.add_supported_context(sop_class.StudyRootQueryRetrieveInformationModelFind)
    serve_until_stdin_closes(
        ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(module.evt.EVT_C_FIND, on_find)]
        )
    )
    return 0


def client(lib: str, port: int, called: str, data: Path, count: int, check: bool) -> int:
    """``count`` full queries over one association after a one-match warm-up; prints JSON."""
    module, sop_class = import_library(lib)
    info = load_instances(data)
    ae = module.AE(ae_title="BENCH-SCU")
    ae.add_requested_context(sop_class.StudyRootQueryRetrieveInformationModelFind)
    model = sop_class.StudyRootQueryRetrieveInformationModelFind
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        raise SystemExit(f"{lib}: association with port {port} failed")

    def run(ds: Any, keep: list[Any] | None = None) -> int:
        pending = 0
        for status, identifier in assoc.send_c_find(ds, model):
            code = status.get("Status") if status else None
            if code in PENDING:
                pending += 1
                uid = identifier.SOPInstanceUID  # what an application does with a match
                if keep is not None:
                    keep.append((uid, identifier))
            elif code != 0x0000:
                raise SystemExit(f"{lib}: C-FIND ended with status {code!r}")
        return pending

    first = info["instances"][0][0]
    if run(query(info, first)) != 1:
        raise SystemExit(f"{lib}: the one-match warm-up query did not match one instance")
    if check:
        kept: list[Any] = []
        pending = run(query(info), kept)
        assoc.release()
        keys = sorted({e.keyword for _, ds in kept for e in ds})
        digest = hashlib.sha1()
        for uid, ds in sorted(kept, key=lambda item: str(item[0])):
            digest.update(f"{uid}|{ds.InstanceNumber}|{ds.RetrieveAETitle}\n".encode())
        emit_result({"pending": pending, "keys": keys, "digest": digest.hexdigest()})
        return 0
    start = time.perf_counter()
    responses = sum(run(query(info)) for _ in range(count))
    seconds = time.perf_counter() - start
    assoc.release()
    emit_result({"pending": responses, "seconds": seconds})
    return 0


# -- driver side ------------------------------------------------------------------------------


def start_dcmqrscp(dcmqrscp: str, area: Path, workdir: Path) -> ServerProcess:
    """dcmqrscp in its default (forking) mode, its AETable naming our storage area."""
    port = free_port()
    config = workdir / "dcmqrscp.cfg"
    config.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\n{SCP_AET} {area} R (10, 1024mb) ANY\nAETable END\n"
    )
    return ServerProcess([dcmqrscp, "-q", "-c", str(config)], port=port)


def start_serve(folder: Path) -> ServerProcess:
    """``dicomnet serve`` on its folder and index (no fsync: nothing is stored here)."""
    argv = [
        sys.executable, "-m", "dicomnet.contrib.cli", "serve", "--port", "0",
        "--bind", "127.0.0.1", "--dir", str(folder), "--aet", SCP_AET, "--no-fsync",
    ]  # fmt: skip
    return ServerProcess(argv, ready="stderr", terminate=True)


def findscu_argv(findscu: str, info: dict[str, Any], port: int, repeat: int) -> list[str]:
    keys = {
        "QueryRetrieveLevel": "IMAGE",
        "StudyInstanceUID": info["study"],
        "SeriesInstanceUID": info["series"],
        "SOPInstanceUID": "",
        "InstanceNumber": "",
    }
    argv = [findscu, "-q", "-S", "-aec", SCP_AET, "--repeat", str(repeat)]
    for key, value in keys.items():
        argv += ["-k", f"{key}={value}"]
    return [*argv, "127.0.0.1", str(port)]


def run_findscu(findscu: str, info: dict[str, Any], port: int, extra: int) -> float:
    """Pending responses per second of one SCP, from ``--repeat 1`` and ``--repeat 1+extra``."""
    seconds = [
        timed_run(findscu_argv(findscu, info, port, repeat), what="findscu", timeout=900)
        for repeat in (1, 1 + extra)
    ]
    return extra * len(info["instances"]) / (seconds[1] - seconds[0])


def run_client(
    python: str, lib: str, port: int, data: Path, count: int, check: bool = False
) -> dict[str, Any]:
    argv = [python, str(HERE), "--client", lib, str(port), SCP_AET, str(data), str(count)]
    return run_worker([*argv, *(["--check"] if check else [])], what=f"{lib} client", timeout=900)


class Case:
    """One SCU -> SCP pairing and its rates."""

    def __init__(
        self, key: str, label: str, server: str, measure: Callable[[ServerProcess], float]
    ):
        self.key, self.label, self.server_key = key, label, server
        self._measure = measure
        self.rates: list[float] = []

    def run(self, servers: dict[str, ServerProcess]) -> float:
        return self._measure(servers[self.server_key])

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=3, metavar="X", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=5, metavar="X", help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    add_runs_option(parser)
    parser.add_argument("--k", type=int, default=5000, help="matches per query (default 5000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data folder (cached)")
    parser.add_argument(
        "--extra", type=int, default=8, help="extra findscu queries per run (default 8)"
    )
    parser.add_argument(
        "--extra-pynetdicom", type=int, default=1, help="the same, for the pynetdicom SCP"
    )
    parser.add_argument(
        "--queries", type=int, default=3, help="timed queries per end-to-end run (default 3)"
    )
    add_pynetdicom_option(parser)
    parser.add_argument(
        "--no-context", dest="context", action="store_false", help="only the findscu rows"
    )
    parser.add_argument(
        "--no-serve", dest="serve_case", action="store_false", help="leave out dicomnet serve"
    )
    parser.add_argument("--only", help="comma-separated case keys to run (e.g. dicomnet,dcmqrscp)")
    parser.add_argument("--no-check", dest="check", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)

    if args.serve:
        lib, data, ae_title = args.serve
        return serve(lib, Path(data), ae_title)
    if args.client:
        lib, port, called, data, count = args.client
        return client(lib, int(port), called, Path(data), int(count), args.check)

    dcmtk = which_all("findscu", "dcmqrscp", "dcmqridx")
    if dcmtk is None:
        raise SystemExit("DCMTK's findscu, dcmqrscp and dcmqridx must be on PATH")
    findscu, dcmqrscp, dcmqridx = dcmtk
    data = args.data.resolve()
    info = prepare_data(data, args.k)
    area = prepare_dcmqrscp_index(data, dcmqridx)
    ours, pyn = sys.executable, args.pynetdicom_python
    have_pynetdicom = has_pynetdicom(pyn)
    have_serve = importlib.util.find_spec("dicomnet.contrib.serve") is not None
    skipped = []
    if not have_pynetdicom:
        skipped.append(f"pynetdicom: {pyn} cannot import pynetdicom")
    if not have_serve:
        skipped.append(
            "dicomnet serve (SQLite index) vs dcmqrscp: dicomnet.contrib.serve has not landed yet"
        )
    serve_folder = prepare_serve_index(data) if have_serve and args.serve_case else None

    def findscu_case(extra: int) -> Callable[[ServerProcess], float]:
        return lambda server: run_findscu(findscu, info, server.port, extra)

    def client_case(python: str, lib: str) -> Callable[[ServerProcess], float]:
        def measure(server: ServerProcess) -> float:
            figures = run_client(python, lib, server.port, data, args.queries)
            if figures["pending"] != args.queries * args.k:
                raise RuntimeError(f"{lib}: {figures['pending']} pending responses")
            return float(figures["pending"] / figures["seconds"])

        return measure

    cases = [
        Case(
            "dicomnet",
            "findscu -> dicomnet SCP (in-memory handler)",
            "dicomnet",
            findscu_case(args.extra),
        ),
    ]
    if have_pynetdicom:
        cases.append(
            Case(
                "pynetdicom",
                "findscu -> pynetdicom 3.0.4 SCP (in-memory handler)",
                "pynetdicom",
                findscu_case(args.extra_pynetdicom),
            )
        )
    cases.append(
        Case(
            "dcmqrscp",
            "findscu -> DCMTK dcmqrscp (its index)",
            "dcmqrscp",
            findscu_case(args.extra),
        )
    )
    if serve_folder is not None:
        cases.append(
            Case(
                "serve",
                "findscu -> dicomnet serve (its SQLite index)",
                "serve",
                findscu_case(args.extra),
            )
        )
    if args.context:
        cases.append(
            Case(
                "dicomnet-e2e",
                "dicomnet SCU -> dicomnet SCP (in-memory handler)",
                "dicomnet",
                client_case(ours, "dicomnet"),
            )
        )
        if have_pynetdicom:
            cases.append(
                Case(
                    "pynetdicom-e2e",
                    "pynetdicom SCU -> pynetdicom SCP (in-memory handler)",
                    "pynetdicom",
                    client_case(pyn, "pynetdicom"),
                )
            )
        cases.append(
            Case(
                "dicomnet->dcmqrscp",
                "dicomnet SCU -> DCMTK dcmqrscp",
                "dcmqrscp",
                client_case(ours, "dicomnet"),
            )
        )
    if args.only:
        wanted = set(args.only.split(","))
        cases = [case for case in cases if case.key in wanted]

    load_before = os.getloadavg()
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="bench-find-") as workdir:
        try:
            needed = {case.server_key for case in cases}
            if "dicomnet" in needed:
                servers["dicomnet"] = ServerProcess(
                    [ours, str(HERE), "--serve", "dicomnet", str(data), SCP_AET]
                )
            if "pynetdicom" in needed:
                servers["pynetdicom"] = ServerProcess(
                    [pyn, str(HERE), "--serve", "pynetdicom", str(data), SCP_AET]
                )
            if "dcmqrscp" in needed:
                servers["dcmqrscp"] = start_dcmqrscp(dcmqrscp, area, Path(workdir))
            if "serve" in needed:
                assert serve_folder is not None
                servers["serve"] = start_serve(serve_folder)
            if args.check:
                # the same K identifiers from every SCP, through one SCU
                seen: dict[str, Any] = {}
                for key, server in servers.items():
                    seen[key] = run_client(ours, "dicomnet", server.port, data, 1, check=True)
                    progress(
                        f"  check {key}: {seen[key]['pending']} pending, keys "
                        f"{','.join(seen[key]['keys'])}"
                    )
                    if seen[key]["pending"] != args.k:
                        raise SystemExit(f"{key} answered {seen[key]['pending']}, not {args.k}")
                if len({json.dumps(v, sort_keys=True) for v in seen.values()}) > 1:
                    raise SystemExit(f"the SCPs answered different identifiers: {seen}")
            for _, case in in_rounds(cases, args.runs):
                case.rates.append(case.run(servers))
                progress(f"  {case.label}: {case.rates[-1]:8.0f}/s")
        finally:
            for server in servers.values():
                server.stop()
    load_after = os.getloadavg()

    by_key = {case.key: case for case in cases}
    found = versions(pyn if have_pynetdicom else None, "findscu")
    described = ", ".join(f"{k} {v}" for k, v in found.items())
    print(
        f"{os.cpu_count()} CPUs, {described}; {args.k} matches per query; "
        f"median of {args.runs} runs"
    )
    print(load_average_line(load_before, load_after))

    def ratio(case: Case, key: str) -> str:
        other = by_key.get(key)
        return f"{case.median / other.median:.2f}x" if other else ""

    if args.markdown:
        header = ["SCU -> SCP", "responses/s (median)", "runs", "vs dcmqrscp", "vs pynetdicom SCP"]
        rows = [
            [
                case.label,
                f"{case.median:,.0f}",
                ", ".join(f"{rate:,.0f}" for rate in case.rates),
                ratio(case, "dcmqrscp"),
                ratio(case, "pynetdicom"),
            ]
            for case in cases
        ]
        print("\n" + "\n".join(markdown_table(header, rows, "lrlrr")))
    else:
        header = ["SCU -> SCP", "resp/s", "/dcmqrscp", "/pynetdicom", "runs"]
        rows = [
            [
                case.label,
                f"{case.median:.0f}",
                ratio(case, "dcmqrscp"),
                ratio(case, "pynetdicom"),
                " ".join(f"{rate:.0f}" for rate in case.rates),
            ]
            for case in cases
        ]
        print("\n".join(text_table(header, rows, [8, 9, 11])))
    if "dicomnet" in by_key:
        ours_rate = by_key["dicomnet"].median
        if "dcmqrscp" in by_key:
            r = ours_rate / by_key["dcmqrscp"].median
            print(f"\ndicomnet SCP / dcmqrscp: {r:.2f}x ({verdict(r, 1.0)} the 1.0x target)")
        if "pynetdicom" in by_key:
            r = ours_rate / by_key["pynetdicom"].median
            print(f"dicomnet SCP / pynetdicom SCP: {r:.1f}x ({verdict(r, 10)} the 10x target)")
    if "dicomnet-e2e" in by_key and "pynetdicom-e2e" in by_key:
        r = by_key["dicomnet-e2e"].median / by_key["pynetdicom-e2e"].median
        print(f"dicomnet -> dicomnet / pynetdicom -> pynetdicom: {r:.1f}x")
    for reason in skipped:
        print(f"skipped: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
