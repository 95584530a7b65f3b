"""The plumbing every benchmark script shares: peers, processes, ports, rounds and tables.

One job: what the ``bench_*.py`` scripts of this folder would otherwise each
write again -- none of it measures anything by itself. A script run as
``python benchmarks/bench_x.py`` has this folder on ``sys.path``, so it
imports it by name. The shape of a script (``bench_associations.py`` is the
smallest whole one)::

    from _harness import ServerProcess, emit_result, in_rounds, run_worker, text_table
    # worker side, ``--client ...``: time the work, then emit_result({"n": n, "seconds": s})
    # driver side:
    server = ServerProcess([sys.executable, str(HERE), "--serve", "dicomnet"])
    try:
        for _, case in in_rounds(cases, args.runs):
            figures = run_worker([python, str(HERE), "--client", ..., str(server.port)],
                                 what="dicomnet client", timeout=600)
            case.rates.append(figures["n"] / figures["seconds"])
    finally:
        server.stop()
    print("\n".join(text_table(["case", "per s", "runs"], rows, widths=[9])))

Importing it needs the standard library only (:func:`versions` alone imports
``dicomnet``, when called): a script's worker side, run in the pynetdicom
venv's python where ``dicomnet`` is not installed, imports it too.

What is here, in the order below:

* **Where things are**: :data:`DATA_ROOT` (``benchmarks/.data``, which git
  ignores), :data:`DEFAULT_PYNETDICOM_PYTHON` (``$DICOMNET_PYNETDICOM_PYTHON``,
  else the venv under ``$DICOM_PEERS_HOME`` or ``~/.cache/dicom-peers``),
  :data:`PEER_ENV` (the environment every peer process gets: ``TCP_NODELAY=1``,
  without which DCMTK stalls ~40 ms per exchange);
  :func:`has_pynetdicom`, :func:`which_all` (DCMTK tools on ``PATH``),
  :func:`versions`, :func:`cpu_model`, :func:`make_bench_data`.
* **The worker side** of a script (the same file re-run with hidden options,
  one side of a pairing in its own process): :func:`import_library`,
  :func:`announce_port` and :func:`serve_until_stdin_closes` (a server tells
  its port on its first line of standard output), :func:`emit_result` (a
  client's figures, one JSON line, last on standard output).
* **The driver side**: :func:`free_port`, :func:`read_port`,
  :func:`wait_for_port`, :class:`ServerProcess` (start a server, learn its
  port, stop it), :func:`run_worker` (run a worker client and read its
  figures), :func:`timed_run` (seconds of a whole process),
  :func:`add_runs_option` and :func:`add_pynetdicom_option` (the options
  every script has), :func:`in_rounds` (the order of runs), :func:`progress`.
* **The report**: :func:`load_average_line`, :func:`verdict`,
  :func:`text_table`, :func:`markdown_table`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

# -- where things are -------------------------------------------------------------------------

DATA_ROOT = Path(__file__).resolve().parent / ".data"
"""Cached benchmark data (``benchmarks/.data``, ignored by git): one folder per script."""

PEERS_HOME = Path(os.environ.get("DICOM_PEERS_HOME", Path.home() / ".cache" / "dicom-peers"))
DEFAULT_PYNETDICOM_PYTHON = os.environ.get(
    "DICOMNET_PYNETDICOM_PYTHON", str(PEERS_HOME / "venv" / "bin" / "python")
)
"""The python of the venv that has pynetdicom 3.0.4 (the default of ``--pynetdicom-python``)."""

PEER_ENV = {**os.environ, "TCP_NODELAY": "1"}
"""The environment of every peer and worker process: DCMTK without ``TCP_NODELAY=1`` waits
~40 ms for the delayed ACK on each exchange."""

_LISTENING = re.compile(r"listening on (?:port |\S*:)(\d+)")


def has_pynetdicom(python: str) -> bool:
    """Whether ``python`` exists and can import pynetdicom."""
    if not Path(python).exists():
        return False
    result = subprocess.run(
        [python, "-c", "import pynetdicom"], capture_output=True, timeout=60, check=False
    )
    return result.returncode == 0


def which_all(*names: str) -> tuple[str, ...] | None:
    """The paths of the programs ``names`` (DCMTK's tools, say), or None unless all are on PATH."""
    paths = tuple(shutil.which(name) for name in names)
    return None if None in paths else tuple(p for p in paths if p is not None)


def versions(
    pynetdicom_python: str | None, dcmtk_tool: str, *, python_label: str = "python"
) -> dict[str, str]:
    """``{"dicomnet": ..., python_label: ..., "pynetdicom": ..., "DCMTK": ...}``.

    pynetdicom's is asked of ``pynetdicom_python`` (None: left out, as when it
    cannot import pynetdicom); DCMTK's of ``dcmtk_tool --version`` (left out
    when that is not on PATH). Imports ``dicomnet``: the driver side only.
    """
    import dicomnet

    found = {"dicomnet": dicomnet.__version__, python_label: platform.python_version()}
    if pynetdicom_python is not None:
        found["pynetdicom"] = subprocess.run(
            [pynetdicom_python, "-c", "import pynetdicom; print(pynetdicom.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    tool = shutil.which(dcmtk_tool)
    if tool:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"v(\d+\.\d+\.\d+)", out.stdout)
        found["DCMTK"] = match.group(1) if match else "?"
    return found


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def make_bench_data(
    script: Path, folder: Path, *, python: str, n: int = 0, large_mib: int = 0, find_k: int = 0
) -> None:
    """Run the shared ``make-bench-data.py`` (``script``) to fill ``folder``.

    ``n`` small CT images, one Enhanced CT of ``large_mib`` MiB, ``find_k``
    instances of one series for C-FIND; the script itself keeps what it has
    already made. ``python`` needs numpy and pydicom.
    """
    if not script.exists():
        raise SystemExit(f"{script} not found")
    argv = [python, str(script), str(folder), "--n", str(n), "--large-mib", str(large_mib)]
    subprocess.run([*argv, "--find-k", str(find_k)], check=True, stdout=subprocess.DEVNULL)


# -- the worker side --------------------------------------------------------------------------


def import_library(name: str) -> tuple[Any, Any]:
    """``dicomnet`` or ``pynetdicom`` (whose APIs match) and its ``sop_class`` module, by name."""
    module = importlib.import_module(name)
    return module, importlib.import_module(f"{name}.sop_class")


def announce_port(port: int) -> None:
    """Tell the driver a server's port: the line :func:`read_port` looks for."""
    print(f"listening on port {port}", flush=True)


def serve_until_stdin_closes(server: Any) -> None:
    """Announce a started server's port, then shut it down once standard input closes
    (:meth:`ServerProcess.stop` closes it)."""
    announce_port(server.server_address[1])
    sys.stdin.read()
    server.shutdown()


def emit_result(figures: Mapping[str, Any]) -> None:
    """A worker's figures: one JSON line, the last on standard output (see :func:`run_worker`)."""
    print(json.dumps(dict(figures)), flush=True)


# -- the driver side --------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free at the moment, for a server that must be given one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_port(stream: IO[str], timeout: float = 60.0) -> int | None:
    """The port from the first line of ``stream`` that says ``listening on port N`` (or
    ``listening on HOST:N``); None when the stream ends or ``timeout`` passes first
    (looked at between lines: a silent server is waited for until it exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            return None
        match = _LISTENING.search(line)
        if match:
            return int(match.group(1))
    return None


def wait_for_port(
    proc: subprocess.Popen[Any], port: int, timeout: float = 10.0, what: str = "server"
) -> None:
    """Wait until something accepts connections on loopback ``port``; RuntimeError if
    ``proc`` (the ``what``) exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the {what} exited before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


class ServerProcess:
    """A server in its own process (session), with :data:`PEER_ENV`; :meth:`stop` ends it.

    Given ``port`` (a :func:`free_port` passed on its command line), it waits
    until that port accepts connections. Without, it reads the port from the
    server's standard output (``ready="stdout"``: a worker's
    :func:`announce_port`) or standard error (``ready="stderr"``: a
    ``dicomnet`` command's log). :meth:`stop` closes its standard input (a
    worker's :func:`serve_until_stdin_closes` then ends), or first sends
    SIGTERM when ``terminate``; it kills what does not end within seconds.
    """

    def __init__(
        self,
        argv: Sequence[str],
        port: int | None = None,
        *,
        ready: str = "stdout",
        terminate: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.terminate = terminate
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if ready == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if ready == "stderr" else subprocess.DEVNULL,
            env=PEER_ENV,
            text=True,
            start_new_session=True,
        )
        if port is None:
            stream = self.proc.stdout if ready == "stdout" else self.proc.stderr
            assert stream is not None
            port = read_port(stream, timeout)
            if port is None:
                self.stop()
                raise RuntimeError(f"{argv[0]} {list(argv[1:3])}: did not start")
        else:
            try:
                wait_for_port(self.proc, port)
            except RuntimeError:
                self.stop()
                raise
        self.port = port

    def stop(self) -> None:
        """End the server: ask (standard input closed, SIGTERM if ``terminate``), then insist."""
        if self.terminate:
            self.proc.terminate()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_worker(
    argv: Sequence[str], *, what: str, timeout: float, input: str | None = None
) -> dict[str, Any]:
    """Run a worker client to its end with :data:`PEER_ENV`; the figures of its
    :func:`emit_result`. RuntimeError (``what`` failed, its stderr) if it fails."""
    result = subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=PEER_ENV,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stderr.strip()[-2000:] or result.stdout}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def timed_run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float | None = None,
    env: Mapping[str, str] | None = PEER_ENV,
) -> float:
    """Seconds of a whole process, start-up included (output captured, unread);
    RuntimeError with the end of its stderr if it fails. ``env=None``: this process's."""
    start = time.perf_counter()
    result = subprocess.run(list(argv), env=env, capture_output=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed: {result.stderr.decode(errors='replace').strip()[-500:]}"
        )
    return seconds


def add_runs_option(parser: argparse.ArgumentParser) -> None:
    """``--runs N``: runs per case, of which the figures are the median (default 3)."""
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median; default 3)")


def add_pynetdicom_option(parser: argparse.ArgumentParser) -> None:
    """``--pynetdicom-python PATH``, default :data:`DEFAULT_PYNETDICOM_PYTHON`."""
    parser.add_argument("--pynetdicom-python", default=DEFAULT_PYNETDICOM_PYTHON)


def in_rounds(cases: Sequence[T], runs: int) -> Iterator[tuple[int, T]]:
    """``(round number from 1, case)``: every case once per round, ``runs`` rounds.

    Run in this order, a change in the machine's load (it is shared) hits every
    case alike, and the ratios between cases stay fair.
    """
    for round_number in range(1, runs + 1):
        for case in cases:
            yield round_number, case


def progress(message: str) -> None:
    """A line for whoever watches the run (standard error): the report is on standard output."""
    print(message, file=sys.stderr, flush=True)


# -- the report -------------------------------------------------------------------------------


def load_average_line(before: Sequence[float], after: Sequence[float]) -> str:
    """``load average (1, 5, 15 min) before a, b, c; after a, b, c`` (``os.getloadavg()``)."""
    return (
        "load average (1, 5, 15 min) before "
        + ", ".join(f"{x:.2f}" for x in before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in after)
    )


def verdict(value: float, target: float, *, lower_is_better: bool = False) -> str:
    """``meets`` when ``value`` reaches ``target`` (is at most ``target`` when
    ``lower_is_better``: a memory ceiling), else ``MISSES`` (loud on purpose)."""
    met = value <= target if lower_is_better else value >= target
    return "meets" if met else "MISSES"


def text_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]
) -> list[str]:
    """A plain-text table's lines, columns two spaces apart.

    In each line the first cell is left-aligned to the longest first cell of
    ``rows``, the last cell stands as it is (a row shorter than the header
    ends early: a note under the row above), and every cell between is
    right-aligned to ``widths[i - 1]`` (column ``i``).
    """
    first = max((len(row[0]) for row in rows), default=0)

    def line(cells: Sequence[str]) -> str:
        out = [f"{cells[0]:<{first}}"]
        for i, cell in enumerate(cells[1:], start=1):
            out.append(cell if i == len(cells) - 1 else f"{cell:>{widths[i - 1]}}")
        return "  ".join(out)

    return [line(header), *(line(row) for row in rows)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """A Markdown table's lines; ``align`` has a letter per column, ``l`` or ``r``."""
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align)
    return [
        "| " + " | ".join(header) + " |",
        rule,
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
