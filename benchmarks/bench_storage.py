#!/usr/bin/env python3
"""Storage (C-STORE) throughput: dicomnet, DCMTK 3.6.7 and pynetdicom 3.0.4 side by side.

One command, every side in its own process, on the data of
``/work/shared/peers/make-bench-data.py`` (made once, kept in
``benchmarks/.data/storage``, which git ignores)::

    python benchmarks/bench_storage.py                 # everything, 3 rounds
    python benchmarks/bench_storage.py --runs 5 --markdown
    python benchmarks/bench_storage.py --only large,parallel
    python benchmarks/bench_storage.py --only many --match dicomnet->dicomnet

Workloads:

* **many**: 500 CT images of 526 kB over one association, the receiver
  announcing a maximum PDU length of 16 KiB and of 1 MiB (DCMTK accepts at
  most 128 KiB: its side runs with ``-pdu 131072`` in the "1 MiB" rows).
  Pairs: dicomnet -> ``dicomnet receive``, ``storescu`` -> ``storescp``
  (the reference, also with ``--bit-preserving``), ``storescu`` ->
  ``dicomnet receive``, dicomnet -> ``storescp``, pynetdicom -> pynetdicom.
  For context, ``storescu`` -> ``storescp --ignore`` (receives every PDU,
  writes nothing): the most any receiver can get out of ``storescu``.
* **large**: one 210 MB Enhanced CT, max PDU 16 KiB: MB/s and the receiver's
  peak RSS, ``storescu`` sending to ``dicomnet receive``, ``storescp``,
  ``storescp --bit-preserving`` and the pynetdicom SCP; dicomnet -> dicomnet and
  pynetdicom -> pynetdicom for context.
* **parallel**: 8 ``storescu`` processes of 50 files each, started together,
  into one SCP: ``dicomnet receive --workers 2`` and ``--workers 1`` against
  ``storescp --fork``; aggregate files/s (400 files over the time from the
  first start to the last exit).

How it is measured:

* Every run starts a fresh receiver process writing into an empty folder; the
  run is timed on the sending side; then the receiver is stopped (SIGTERM), its
  files are counted (every file must have arrived) and deleted, and the file
  system is synced before the next run, so that one run's write-back and
  discards do not land in the next one's time.
* Senders: ``storescu`` is timed as a whole process (its start-up is a few
  milliseconds); the dicomnet and pynetdicom senders are Python workers timed
  from just before their first association request to the end of the release
  (interpreter start-up and imports excluded; dicomnet's time includes reading
  the files' meta, pynetdicom's its ``dcmread`` of each file). A context row
  times the ``dicomnet store`` command as a whole process.
* Receivers write every instance to disk: ``dicomnet receive`` with its
  default, **fsync on** (each file flushed, renamed into place and the folder
  flushed before Success) -- rows marked "no fsync" run ``--no-fsync``;
  ``storescp`` (``-od``; no fsync: DCMTK does not flush files) and the
  pynetdicom SCP (a handler writing ``event.encoded_dataset()`` to a file, the
  way pynetdicom documents; no fsync) do not flush.
* Peak RSS is the receiver's: ``wait4()`` on the stopped receiver gives the
  largest resident set of the process and of the children it reaped (the
  workers of ``dicomnet receive --workers``, the children of ``storescp
  --fork``). For the parallel workload the sum of the proportional set sizes
  (PSS) of the receiver's process tree is sampled every 50 ms as well.
* Figures are medians of ``--runs`` runs (peak RSS: the highest), run in
  rounds (every case once per round) so that a change in the machine's load
  hits all cases alike; the load averages are printed with the table. DCMTK
  runs with ``TCP_NODELAY=1`` in its environment.

The same file is the worker for the Python sides: ``--serve-pynetdicom`` and
``--send LIB`` run in the venv's python (``$DICOMNET_PYNETDICOM_PYTHON`` or
``~/.cache/dicom-peers/venv/bin/python``) for pynetdicom.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _harness import (
    DATA_ROOT,
    PEER_ENV,
    add_pynetdicom_option,
    add_runs_option,
    announce_port,
    cpu_model,
    emit_result,
    free_port,
    has_pynetdicom,
    in_rounds,
    load_average_line,
    make_bench_data,
    markdown_table,
    progress,
    read_port,
    run_worker,
    text_table,
    timed_run,
    verdict,
    versions,
    wait_for_port,
    which_all,
)

HERE = Path(__file__).resolve()
DATA = DATA_ROOT / "storage"
OUT = DATA_ROOT / "storage-out"
MAKE_DATA = Path(
    os.environ.get("DICOMNET_BENCH_DATA_SCRIPT", "/work/shared/peers/make-bench-data.py")
)
SCP_AET = "BENCH-SCP"
SCU_AET = "BENCH-SCU"
DCMTK_MAX_PDU = 131072  # the largest maximum PDU length DCMTK 3.6.7 accepts
KIB, MIB = 1024, 1024 * 1024
N_FILES = 500
PARALLEL_SENDERS, PARALLEL_FILES = 8, 50
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"


# -- worker side: pynetdicom SCP, dicomnet and pynetdicom SCUs ----------------------------------


def serve_pynetdicom(directory: str, max_pdu: int) -> int:
    """A pynetdicom Storage SCP writing each instance as received, until SIGTERM."""
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification

    def on_store(event: Any) -> int:
        name = os.path.join(directory, f"{event.request.AffectedSOPInstanceUID}.dcm")
        with open(name, "wb") as f:
            f.write(event.encoded_dataset())  # preamble, meta and the data set, not decoded
        return 0x0000

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    ae = AE(ae_title=SCP_AET)
    ae.maximum_pdu_size = max_pdu
    for uid in (CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE):
        ae.add_supported_context(uid)
    ae.add_supported_context(Verification)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    announce_port(server.server_address[1])
    signal.sigwait({signal.SIGTERM})
    server.shutdown()
    return 0


def send(lib: str, port: int, max_pdu: int) -> int:
    """Send the files named on stdin over one association; print ``{"n", "seconds", "ok"}``."""
    paths = json.loads(sys.stdin.read())
    if lib == "dicomnet":
        from dicomnet import AE
        from dicomnet.store_scu import scan_files, send_files

        ae = AE(SCU_AET, plugins=())
        ae.acse_timeout = ae.dimse_timeout = 60.0
        ae.network_timeout = None
        start = time.perf_counter()
        report = send_files(
            ae, "127.0.0.1", port, scan_files(paths), ae_title=SCP_AET, max_pdu=max_pdu
        )
        seconds = time.perf_counter() - start
        ae.shutdown()
        ok = report.sent
    else:
        from pynetdicom import AE as PAE

        pae = PAE(ae_title=SCU_AET)
        pae.maximum_pdu_size = max_pdu
        pae.acse_timeout = pae.dimse_timeout = 60.0
        for uid in (CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE):
            pae.add_requested_context(uid)
        start = time.perf_counter()
        assoc = pae.associate("127.0.0.1", port, ae_title=SCP_AET)
        if not assoc.is_established:
            raise SystemExit("pynetdicom: no association")
        ok = 0
        for path in paths:
            status = assoc.send_c_store(path)
            ok += bool(status) and status.Status == 0
        assoc.release()
        seconds = time.perf_counter() - start
    emit_result({"n": len(paths), "ok": ok, "seconds": seconds})
    return 0


# -- the data ---------------------------------------------------------------------------------


def ensure_data(python: str) -> tuple[list[Path], Path]:
    """The 500 small files and the large one, made by make-bench-data.py if missing."""
    if not MAKE_DATA.exists():
        raise SystemExit(f"{MAKE_DATA} not found (set DICOMNET_BENCH_DATA_SCRIPT)")
    make_bench_data(MAKE_DATA, DATA, python=python, n=N_FILES, large_mib=200)
    small = sorted((DATA / "small").glob("*.dcm"))
    large = DATA / "large" / "enhanced_ct.dcm"
    if len(small) != N_FILES or not large.exists():
        raise SystemExit(f"{DATA}: the benchmark data is incomplete")
    return small, large


def _data_python(pynetdicom_python: str) -> str:
    """An interpreter with numpy and pydicom, which make-bench-data.py needs."""
    for python in (sys.executable, pynetdicom_python):
        probe = subprocess.run(
            [python, "-c", "import numpy, pydicom"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return python
    raise SystemExit("make-bench-data.py needs numpy and pydicom")


# -- receivers --------------------------------------------------------------------------------


class Receiver:
    """One receiver process (tree) writing into ``directory``; stopped by :meth:`stop`."""

    def __init__(self, kind: str, directory: Path, max_pdu: int, **options: Any) -> None:
        self.kind, self.directory, self.options = kind, directory, options
        self.sampler: _PssSampler | None = None
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- closed by stop()
        port = free_port()
        stdout: Any = subprocess.DEVNULL
        if kind == "dicomnet":
            argv = [
                sys.executable,
                "-m",
                "dicomnet.contrib.cli",
                "receive",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(directory),
                "--aet",
                SCP_AET,
                "--max-pdu",
                str(max_pdu),
                "--workers",
                str(options.get("workers", 1)),
            ]
            if not options.get("fsync", True):
                argv.append("--no-fsync")
        elif kind == "storescp":
            argv = [
                "storescp",
                "-aet",
                SCP_AET,
                "-od",
                str(directory),
                "--promiscuous",
                "+xa",
                "-pdu",
                str(min(max_pdu, DCMTK_MAX_PDU)),
            ]
            if options.get("bit_preserving"):
                argv.append("--bit-preserving")
            if options.get("fork"):
                argv.append("--fork")
            if options.get("ignore"):
                argv.append("--ignore")
            argv.append(str(port))
        elif kind == "pynetdicom":
            argv = [
                options["python"],
                str(HERE),
                "--serve-pynetdicom",
                str(directory),
                str(max_pdu),
            ]
            stdout = subprocess.PIPE
        else:
            raise ValueError(kind)
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=self._log,
            env=PEER_ENV,
            text=True,
            start_new_session=True,
        )
        try:
            if kind == "pynetdicom":
                assert self.proc.stdout is not None
                announced = read_port(self.proc.stdout)
                if announced is None:
                    raise RuntimeError(f"the pynetdicom SCP did not start: {self._stderr()}")
                port = announced
            elif kind == "dicomnet":
                self._wait_for_log("listening on")
            else:
                wait_for_port(self.proc, port, timeout=20.0, what="receiver")
        except BaseException:
            self.kill()
            raise
        self.port = port
        if options.get("sample_pss"):
            self.sampler = _PssSampler(self.proc.pid)

    def log_tail(self) -> str:
        """The end of the receiver's stderr (for error messages)."""
        with contextlib.suppress(OSError, ValueError):
            return self._stderr()[-1500:]
        return ""

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read()[-2000:]

    def _wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self._stderr():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the receiver exited: {self._stderr()}")
            time.sleep(0.02)
        raise RuntimeError(f"the receiver did not start: {self._stderr()}")

    def stop(self) -> tuple[int, int | None]:
        """Stop the receiver; ``(peak RSS in KiB, peak sampled tree PSS in KiB or None)``."""
        pss = self.sampler.stop() if self.sampler is not None else None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        _pid, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        return int(usage.ru_maxrss), pss

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()


class _PssSampler:
    """Samples the summed PSS of a process and its descendants every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, ()))
        return tree

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = 0
            for pid in self._tree():
                with (
                    contextlib.suppress(OSError, ValueError),
                    open(f"/proc/{pid}/smaps_rollup") as f,
                ):
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
                            break
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


# -- senders ----------------------------------------------------------------------------------


def storescu_argv(port: int, paths: Sequence[Path], max_pdu: int) -> list[str]:
    """``storescu`` sending ``paths`` over one association."""
    pdu = str(min(max_pdu, DCMTK_MAX_PDU))
    return [
        "storescu", "-aet", SCU_AET, "-aec", SCP_AET, "-pdu", pdu, "127.0.0.1", str(port),
        *map(str, paths),
    ]  # fmt: skip


def run_storescu(port: int, paths: Sequence[Path], max_pdu: int) -> float:
    """``storescu`` over one association; seconds of the whole process."""
    return timed_run(storescu_argv(port, paths, max_pdu), what="storescu")


def run_storescu_parallel(port: int, groups: Sequence[Sequence[Path]], max_pdu: int) -> float:
    """Several ``storescu`` processes started together; seconds until the last one exits."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            storescu_argv(port, group, max_pdu),
            env=PEER_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for group in groups
    ]
    errors = [p.communicate()[1] for p in procs]
    seconds = time.perf_counter() - start
    for proc, err in zip(procs, errors, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.strip()[-500:]}")
    return seconds


def run_worker_sender(
    python: str, lib: str, port: int, paths: Sequence[Path], max_pdu: int
) -> float:
    """A dicomnet or pynetdicom sender process; seconds as it timed itself."""
    figures = run_worker(
        [python, str(HERE), "--send", lib, str(port), str(max_pdu)],
        what=f"{lib} sender",
        timeout=1800,
        input=json.dumps([str(p) for p in paths]),
    )
    if figures["ok"] != len(paths):
        raise RuntimeError(f"{lib} sender: {figures['ok']} of {len(paths)} stored")
    return float(figures["seconds"])


def run_dicomnet_store_cli(port: int, paths: Sequence[Path], max_pdu: int) -> float:
    """The ``dicomnet store`` command over the files; seconds of the whole process."""
    argv = [
        sys.executable,
        "-m",
        "dicomnet.contrib.cli",
        "store",
        "--aet",
        SCU_AET,
        "--aec",
        SCP_AET,
        "--max-pdu",
        str(max_pdu),
        "127.0.0.1",
        str(port),
        *map(str, paths),
    ]
    return timed_run(argv, what="dicomnet store", env=None)


# -- cases ------------------------------------------------------------------------------------


class Case:
    """One sender -> receiver pairing of one workload, and its measured runs."""

    def __init__(
        self,
        workload: str,
        key: str,
        label: str,
        receiver: Callable[[Path], Receiver],
        sender: Callable[[int], float],
        files: int,
        nbytes: int,
        note: str = "",
        stores: bool = True,
    ) -> None:
        self.workload, self.key, self.label, self.note = workload, key, label, note
        self.receiver, self.sender = receiver, sender
        self.files, self.nbytes = files, nbytes
        self.stored = files if stores else 0  # files the receiver must have written
        self.seconds: list[float] = []
        self.rss: list[int] = []
        self.pss: list[int] = []

    def run(self, out: Path, attempts: int = 2) -> None:
        """One run; a run whose sender fails is retried once (and reported on stderr)."""
        for attempt in range(1, attempts + 1):
            try:
                self._run(out)
                return
            except RuntimeError as exc:
                if attempt == attempts:
                    raise
                progress(f"  {self.label}: run failed, retrying: {exc}")

    def _run(self, out: Path) -> None:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        os.sync()
        receiver = self.receiver(out)
        try:
            seconds = self.sender(receiver.port)
        except RuntimeError as exc:
            log = receiver.log_tail()
            receiver.kill()
            raise RuntimeError(f"{exc}\nreceiver's stderr: {log}") from exc
        except BaseException:
            receiver.kill()
            raise
        rss, pss = receiver.stop()
        stored = [e for e in os.scandir(out) if e.is_file() and not e.name.startswith(".")]
        if len(stored) != self.stored:
            raise RuntimeError(f"{self.label}: {len(stored)} files stored, not {self.stored}")
        shutil.rmtree(out)
        os.sync()
        self.seconds.append(seconds)
        self.rss.append(rss)
        if pss is not None:
            self.pss.append(pss)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def files_per_second(self) -> float:
        return self.files / self.median_seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.nbytes / 1e6 / self.median_seconds

    @property
    def peak_rss_mib(self) -> float:
        return max(self.rss) / 1024

    @property
    def peak_pss_mib(self) -> float | None:
        return max(self.pss) / 1024 if self.pss else None


def build_cases(
    args: argparse.Namespace, small: list[Path], large: Path
) -> tuple[list[Case], list[str]]:
    pyn = args.pynetdicom_python
    skipped: list[str] = []
    have_pynetdicom = has_pynetdicom(pyn)
    if not have_pynetdicom:
        skipped.append(f"pynetdicom: {pyn} cannot import pynetdicom")
    have_dcmtk = which_all("storescu", "storescp") is not None
    if not have_dcmtk:
        skipped.append("DCMTK: storescu/storescp not on PATH")
    ours = sys.executable
    small_bytes = sum(p.stat().st_size for p in small)
    large_bytes = large.stat().st_size
    cases: list[Case] = []

    def dicomnet_rx(max_pdu: int, **options: Any) -> Callable[[Path], Receiver]:
        return lambda out: Receiver("dicomnet", out, max_pdu, **options)

    def storescp_rx(max_pdu: int, **options: Any) -> Callable[[Path], Receiver]:
        return lambda out: Receiver("storescp", out, max_pdu, **options)

    def pynetdicom_rx(max_pdu: int) -> Callable[[Path], Receiver]:
        return lambda out: Receiver("pynetdicom", out, max_pdu, python=pyn)

    def storescu_tx(paths: Sequence[Path], max_pdu: int) -> Callable[[int], float]:
        return lambda port: run_storescu(port, paths, max_pdu)

    def worker_tx(
        python: str, lib: str, paths: Sequence[Path], max_pdu: int
    ) -> Callable[[int], float]:
        return lambda port: run_worker_sender(python, lib, port, paths, max_pdu)

    if "many" in args.only:
        n = len(small)
        for max_pdu in (16 * KIB, MIB):
            size = "16 KiB" if max_pdu == 16 * KIB else "1 MiB"
            dcmtk_size = size if max_pdu <= DCMTK_MAX_PDU else "128 KiB"

            def add(
                key: str, label: str, rx: Any, tx: Any, note: str = "", size: str = size
            ) -> None:
                cases.append(Case("many", f"{key}@{size}", label, rx, tx, n, small_bytes, note))

            add(
                "dicomnet->dicomnet",
                f"dicomnet -> dicomnet receive, {size}",
                dicomnet_rx(max_pdu),
                worker_tx(ours, "dicomnet", small, max_pdu),
                "fsync",
            )
            add(
                "dicomnet->dicomnet-nofsync",
                f"dicomnet -> dicomnet receive --no-fsync, {size}",
                dicomnet_rx(max_pdu, fsync=False),
                worker_tx(ours, "dicomnet", small, max_pdu),
                "no fsync",
            )
            if max_pdu == 16 * KIB:
                add(
                    "store-cli->dicomnet",
                    f"`dicomnet store` command -> dicomnet receive, {size}",
                    dicomnet_rx(max_pdu),
                    lambda port, m=max_pdu: run_dicomnet_store_cli(port, small, m),
                    "fsync; whole sender process incl. start-up",
                )
            if have_dcmtk:
                add(
                    "storescu->storescp",
                    f"storescu -> storescp, {dcmtk_size}",
                    storescp_rx(max_pdu),
                    storescu_tx(small, max_pdu),
                    "reference; no fsync",
                )
                add(
                    "storescu->storescp-B",
                    f"storescu -> storescp --bit-preserving, {dcmtk_size}",
                    storescp_rx(max_pdu, bit_preserving=True),
                    storescu_tx(small, max_pdu),
                    "no fsync",
                )
                cases.append(
                    Case(
                        "many",
                        f"storescu->storescp-ignore@{size}",
                        f"storescu -> storescp --ignore, {dcmtk_size}",
                        storescp_rx(max_pdu, ignore=True),
                        storescu_tx(small, max_pdu),
                        n,
                        small_bytes,
                        "receives, writes nothing: storescu's own ceiling",
                        stores=False,
                    )
                )
                add(
                    "storescu->dicomnet",
                    f"storescu ({dcmtk_size}) -> dicomnet receive, {size}",
                    dicomnet_rx(max_pdu),
                    storescu_tx(small, max_pdu),
                    "fsync",
                )
                add(
                    "storescu->dicomnet-nofsync",
                    f"storescu ({dcmtk_size}) -> dicomnet receive --no-fsync, {size}",
                    dicomnet_rx(max_pdu, fsync=False),
                    storescu_tx(small, max_pdu),
                    "no fsync",
                )
                add(
                    "dicomnet->storescp",
                    f"dicomnet ({size}) -> storescp, {dcmtk_size}",
                    storescp_rx(max_pdu),
                    worker_tx(ours, "dicomnet", small, max_pdu),
                    "no fsync",
                )
            if have_pynetdicom:
                add(
                    "pynetdicom->pynetdicom",
                    f"pynetdicom -> pynetdicom, {size}",
                    pynetdicom_rx(max_pdu),
                    worker_tx(pyn, "pynetdicom", small, max_pdu),
                    "no fsync",
                )

    if "large" in args.only:
        pdu = 16 * KIB
        one = [large]

        def add_large(key: str, label: str, rx: Any, tx: Any, note: str = "") -> None:
            cases.append(Case("large", key, label, rx, tx, 1, large_bytes, note))

        if have_dcmtk:
            add_large(
                "storescu->dicomnet",
                "storescu -> dicomnet receive",
                dicomnet_rx(pdu),
                storescu_tx(one, pdu),
                "fsync",
            )
            add_large(
                "storescu->dicomnet-nofsync",
                "storescu -> dicomnet receive --no-fsync",
                dicomnet_rx(pdu, fsync=False),
                storescu_tx(one, pdu),
                "no fsync",
            )
            add_large(
                "storescu->storescp",
                "storescu -> storescp",
                storescp_rx(pdu),
                storescu_tx(one, pdu),
                "no fsync",
            )
            add_large(
                "storescu->storescp-B",
                "storescu -> storescp --bit-preserving",
                storescp_rx(pdu, bit_preserving=True),
                storescu_tx(one, pdu),
                "no fsync",
            )
            if have_pynetdicom:
                add_large(
                    "storescu->pynetdicom",
                    "storescu -> pynetdicom",
                    pynetdicom_rx(pdu),
                    storescu_tx(one, pdu),
                    "no fsync",
                )
        add_large(
            "dicomnet->dicomnet",
            "dicomnet -> dicomnet receive",
            dicomnet_rx(pdu),
            worker_tx(ours, "dicomnet", one, pdu),
            "fsync",
        )
        if have_pynetdicom:
            add_large(
                "pynetdicom->pynetdicom",
                "pynetdicom -> pynetdicom",
                pynetdicom_rx(pdu),
                worker_tx(pyn, "pynetdicom", one, pdu),
                "no fsync",
            )

    if "parallel" in args.only and have_dcmtk:
        pdu = 16 * KIB
        groups = [
            small[i * PARALLEL_FILES : (i + 1) * PARALLEL_FILES] for i in range(PARALLEL_SENDERS)
        ]
        files = PARALLEL_SENDERS * PARALLEL_FILES
        nbytes = sum(p.stat().st_size for g in groups for p in g)

        def parallel_tx(port: int) -> float:
            return run_storescu_parallel(port, groups, pdu)

        def add_parallel(key: str, label: str, rx: Any, note: str = "") -> None:
            cases.append(Case("parallel", key, label, rx, parallel_tx, files, nbytes, note))

        add_parallel(
            "dicomnet-w2",
            "dicomnet receive --workers 2",
            dicomnet_rx(pdu, workers=2, sample_pss=True),
            "fsync",
        )
        add_parallel(
            "dicomnet-w1",
            "dicomnet receive --workers 1",
            dicomnet_rx(pdu, workers=1, sample_pss=True),
            "fsync",
        )
        add_parallel(
            "dicomnet-w2-nofsync",
            "dicomnet receive --workers 2 --no-fsync",
            dicomnet_rx(pdu, workers=2, fsync=False, sample_pss=True),
            "no fsync",
        )
        add_parallel(
            "storescp-fork",
            "storescp --fork",
            storescp_rx(pdu, fork=True, sample_pss=True),
            "no fsync",
        )
    elif "parallel" in args.only:
        skipped.append("parallel: needs DCMTK's storescu")
    return cases, skipped


# -- report -----------------------------------------------------------------------------------


def _verdicts(cases: list[Case]) -> list[str]:
    by_key = {(c.workload, c.key): c for c in cases}
    lines = []

    def ratio(workload: str, ours: str, theirs: str, target: float, what: str) -> None:
        a, b = by_key.get((workload, ours)), by_key.get((workload, theirs))
        if a is None or b is None:
            return
        value = a.files_per_second / b.files_per_second
        lines.append(f"{what}: {value:.2f}x ({verdict(value, target)} the {target:g}x target)")

    for size in ("16 KiB", "1 MiB"):
        for ref in ("storescu->storescp", "storescu->storescp-B"):
            name = "storescp" if ref.endswith("storescp") else "storescp --bit-preserving"
            ratio(
                "many",
                f"storescu->dicomnet@{size}",
                f"{ref}@{size}",
                1.2,
                f"{size}: storescu -> dicomnet receive vs storescu -> {name}",
            )
            ratio(
                "many",
                f"storescu->dicomnet-nofsync@{size}",
                f"{ref}@{size}",
                1.2,
                f"{size}: (context, both without fsync) storescu -> dicomnet receive --no-fsync "
                f"vs storescu -> {name}",
            )
            ratio(
                "many",
                f"dicomnet->storescp@{size}",
                f"{ref}@{size}",
                1.2,
                f"{size}: dicomnet -> storescp vs storescu -> {name}",
            )
        ratio(
            "many",
            f"dicomnet->dicomnet@{size}",
            f"pynetdicom->pynetdicom@{size}",
            10,
            f"{size}: dicomnet -> dicomnet vs pynetdicom -> pynetdicom",
        )
    ours = by_key.get(("large", "storescu->dicomnet"))
    bit = by_key.get(("large", "storescu->storescp-B"))
    if ours is not None:
        lines.append(
            f"210 MB: dicomnet receive peak RSS {ours.peak_rss_mib:.1f} MiB "
            f"({verdict(ours.peak_rss_mib, 64, lower_is_better=True)} the 64 MiB target)"
        )
        if bit is not None:
            value = ours.megabytes_per_second / bit.megabytes_per_second
            lines.append(
                f"210 MB: dicomnet receive {ours.megabytes_per_second:.0f} MB/s vs storescp "
                f"--bit-preserving {bit.megabytes_per_second:.0f} MB/s: {value:.2f}x "
                f"({verdict(value, 1)} the 1x target)"
            )
    for workers in ("1", "2"):
        ratio(
            "parallel",
            f"dicomnet-w{workers}",
            "storescp-fork",
            1.0,
            f"8 parallel senders: dicomnet receive --workers {workers} vs storescp --fork",
        )
    return lines


TITLES = {
    "many": "500 x 526 kB CT over one association",
    "large": "one 210 MB Enhanced CT (max PDU 16 KiB)",
    "parallel": "8 parallel storescu senders x 50 files into one SCP (max PDU 16 KiB)",
}


def report(cases: list[Case], markdown: bool) -> None:
    for workload in ("many", "large", "parallel"):
        group = [c for c in cases if c.workload == workload]
        if not group:
            continue
        print(f"\n{TITLES[workload]}\n")
        with_pss = any(c.pss for c in group)
        if markdown:
            # the large object in MB/s, the rest in files/s; every run, then the median
            unit = "MB/s" if workload == "large" else "files/s"
            header = [
                "sender -> receiver",
                f"{unit} (median)",
                f"runs ({unit})",
                "receiver peak RSS (MiB, highest)",
                *(["tree PSS (MiB, highest)"] if with_pss else []),
                "disk",
            ]
            rows = []
            for c in group:
                if workload == "large":
                    median = f"{c.megabytes_per_second:,.0f}"
                    runs = ", ".join(f"{c.nbytes / s / 1e6:,.0f}" for s in c.seconds)
                else:
                    median = f"{c.files_per_second:,.1f}"
                    runs = ", ".join(f"{c.files / s:,.0f}" for s in c.seconds)
                pss = [f"{c.peak_pss_mib or 0:.0f}"] if with_pss else []
                rows.append([c.label, median, runs, f"{c.peak_rss_mib:.1f}", *pss, c.note])
            print("\n".join(markdown_table(header, rows, "lrlr" + ("r" if with_pss else "") + "l")))
        else:
            header = ["sender -> receiver", "files/s", "MB/s", "RSS MiB"]
            header += ["PSS MiB" if with_pss else "", "runs (s)"]
            rows = [
                [
                    c.label,
                    f"{c.files_per_second:.1f}",
                    f"{c.megabytes_per_second:.0f}",
                    f"{c.peak_rss_mib:.1f}",
                    f"{c.peak_pss_mib:.0f}" if c.peak_pss_mib is not None else "",
                    " ".join(f"{s:.3f}" for s in c.seconds) + f"  [{c.note}]",
                ]
                for c in group
            ]
            print("\n".join(text_table(header, rows, [8, 6, 7, 7])))


# -- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--serve-pynetdicom", nargs=2, metavar=("DIR", "MAXPDU"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--send", nargs=3, metavar=("LIB", "PORT", "MAXPDU"), help=argparse.SUPPRESS
    )
    add_runs_option(parser)
    parser.add_argument(
        "--only",
        default="many,large,parallel",
        help="comma-separated workloads: many, large, parallel (default: all)",
    )
    parser.add_argument(
        "--match",
        action="append",
        metavar="TEXT",
        help="only the cases whose key contains TEXT (repeatable), e.g. 'dicomnet->dicomnet'",
    )
    add_pynetdicom_option(parser)
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args(argv)

    if args.serve_pynetdicom:
        directory, max_pdu = args.serve_pynetdicom
        return serve_pynetdicom(directory, int(max_pdu))
    if args.send:
        lib, port, max_pdu = args.send
        return send(lib, int(port), int(max_pdu))

    args.only = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = args.only - set(TITLES)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    small, large = ensure_data(_data_python(args.pynetdicom_python))
    cases, skipped = build_cases(args, small, large)
    if args.match:
        cases = [c for c in cases if any(m in c.key for m in args.match)]
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")
    try:
        for round_number, case in in_rounds(cases, args.runs):
            case.run(OUT)
            progress(
                f"  round {round_number}: {case.workload}: {case.label}: "
                f"{case.seconds[-1]:.3f} s, {case.rss[-1] / 1024:.0f} MiB "
                f"(load {os.getloadavg()[0]:.2f})"
            )
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(OUT)
    load_after = os.getloadavg()

    pyn = args.pynetdicom_python
    found = versions(pyn if has_pynetdicom(pyn) else None, "storescu", python_label="CPython")
    print(
        f"{started}, {os.cpu_count()} CPUs ({cpu_model()}), {platform.machine()}; "
        f"{', '.join(f'{k} {v}' for k, v in found.items())}; median of {args.runs} runs"
    )
    print(load_average_line(load_before, load_after))
    report(cases, args.markdown)
    print()
    for line in _verdicts(cases):
        print(line)
    for reason in skipped:
        print(f"skipped: {reason}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "started": started,
                    "load_before": load_before,
                    "load_after": load_after,
                    "cases": [
                        {
                            "workload": c.workload,
                            "key": c.key,
                            "label": c.label,
                            "files": c.files,
                            "bytes": c.nbytes,
                            "seconds": c.seconds,
                            "peak_rss_kib": c.rss,
                            "peak_pss_kib": c.pss,
                            "note": c.note,
                        }
                        for c in cases
                    ],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
