"""``dicomnet store``: send DICOM files to a peer with C-STORE (PS3.4 Annex B, PS3.7 9.1.1).

Files and folders (``-r``: their subfolders too) are read for their File Meta
Information only; the presentation contexts are planned from it
(:func:`dicomnet.context_planning.plan_contexts`) and the files are sent over
as few associations as those contexts allow -- one, unless more than 128
(SOP class, transfer syntax) contexts are needed. Each file goes as it is when
the peer accepted its transfer syntax, converted otherwise
(:mod:`dicomnet.transcode`; lossy compression only with ``--allow-lossy``).
Files that are not DICOM are skipped with a warning.

On a terminal, a progress bar (files/s, MB/s) runs on stderr; at the end a
summary goes to stderr. Exit status: 0 when every instance was answered
Success or Warning, 1 when any was refused or could not be sent, 2 when no
association could be established, nothing was there to send, or the command
line is wrong.

:func:`run_store` is the command as a function.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from dicomnet.part10 import FileInfo
from dicomnet.store_scu import SendReport, StoreResult, scan_files, send_files

from ._cli_common import (
    ClientOptions,
    ExitStatus,
    client_options,
    make_ae,
    run_command,
    verbosity_options,
)

__all__ = ["run_store", "store"]

LOGGER = logging.getLogger("dicomnet.cli")


def _rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def summary(report: SendReport, seconds: float) -> str:
    """The last line of ``dicomnet store``: counts, bytes and rates."""
    total = report.sent + report.failures
    megabytes = report.nbytes / 1e6
    parts = [f"Sent {report.sent} of {total} instance{'s' if total != 1 else ''}"]
    if report.warnings:
        parts.append(f"{report.warnings} with warnings")
    parts.append(f"{report.failures} failed")
    if report.skipped:
        parts.append(f"{report.skipped} skipped (not DICOM)")
    text = ", ".join(parts)
    text += (
        f"; {megabytes:.1f} MB in {seconds:.2f} s "
        f"({_rate(report.sent, seconds):.1f} files/s, {_rate(megabytes, seconds):.1f} MB/s)"
    )
    associations = report.associations
    text += f" over {associations} association{'s' if associations != 1 else ''}"
    if report.failed_associations:
        text += f" ({report.failed_associations} refused or failed)"
    return text


@contextlib.contextmanager
def _progress_bar(infos: Sequence[FileInfo]) -> Iterator[Callable[[StoreResult], None] | None]:
    """A rich progress bar on stderr while sending, when stderr is a terminal and rich is there."""
    if not sys.stderr.isatty():
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    except ImportError:  # the optional `cli` extra is missing: no bar
        yield None
        return
    total_bytes = sum(info.size or 0 for info in infos) or 1
    progress = Progress(
        TextColumn("[bold]store[/]"),
        BarColumn(),
        TextColumn("{task.fields[files]}/{task.fields[total_files]} files"),
        TextColumn("{task.fields[files_rate]:.0f} files/s"),
        TextColumn("{task.fields[mb_rate]:.1f} MB/s"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task(
        "store", total=total_bytes, files=0, total_files=len(infos), files_rate=0.0, mb_rate=0.0
    )
    start = time.perf_counter()
    state = {"files": 0, "bytes": 0}

    def update(result: StoreResult) -> None:
        if result.category == "Skipped":
            return
        state["files"] += 1
        state["bytes"] += result.nbytes
        elapsed = time.perf_counter() - start
        progress.update(
            task,
            completed=min(total_bytes, state["bytes"]),
            files=state["files"],
            files_rate=_rate(state["files"], elapsed),
            mb_rate=_rate(state["bytes"] / 1e6, elapsed),
        )

    # Log records go through rich's console while the bar is shown, so that they
    # print above it instead of through it.
    logger = logging.getLogger("dicomnet")
    handlers = [
        h
        for h in logger.handlers
        if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr
    ]
    with progress:
        previous = [h.setStream(progress.console.file) for h in handlers]
        try:
            yield update
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                if stream is not None:
                    handler.setStream(stream)


def run_store(
    host: str,
    port: int,
    paths: Sequence[str | Path],
    *,
    client: ClientOptions,
    recursive: bool = False,
    allow_lossy: bool = False,
) -> ExitStatus:
    """Send the files in ``paths`` to ``host:port``; print the summary; return the exit status."""
    start = time.perf_counter()
    report = SendReport()
    infos = scan_files(paths, recursive=recursive, on_skip=report.results.append)
    if not infos:
        LOGGER.error("No DICOM files to send")
        click.echo(summary(report, time.perf_counter() - start), err=True)
        return ExitStatus.NO_ASSOCIATION
    ae = make_ae(client)
    tls_args = client.tls_args(host)
    try:
        with _progress_bar(infos) as progress:
            sent = send_files(
                ae,
                host,
                port,
                infos,
                ae_title=client.called_ae_title,
                max_pdu=client.max_pdu,
                tls_args=tls_args,
                allow_lossy=allow_lossy,
                progress=progress,
            )
    finally:
        ae.shutdown()
    sent.results[:0] = report.results  # the skipped files first, as they were found
    elapsed = time.perf_counter() - start
    click.echo(summary(sent, elapsed), err=True)
    if sent.associations == 0:
        return ExitStatus.NO_ASSOCIATION
    return ExitStatus.SUCCESS if sent.ok else ExitStatus.FAILURE


@click.command(short_help="Send DICOM files to a peer AE (C-STORE).")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, readable=True, path_type=Path),
    metavar="PATH...",
)
@click.option(
    "-r", "--recursive", is_flag=True, help="Send the files in the subfolders of folders too."
)
@click.option(
    "--allow-lossy",
    is_flag=True,
    help="Compress an image with loss when the peer accepts nothing else for it "
    "(it then gets a new SOP Instance UID). Off: never.",
)
@client_options
@verbosity_options
def store(
    host: str,
    port: int,
    paths: tuple[Path, ...],
    recursive: bool,
    allow_lossy: bool,
    client: ClientOptions,
    **_: Any,
) -> None:
    """Send the DICOM files in PATH... to the AE at HOST:PORT (the Storage service).

    Folders are searched for files (-r: with their subfolders); files that are
    not DICOM are skipped with a warning. Each file is sent as it is when the
    peer accepts its transfer syntax, and converted otherwise.

    Exits with 0 when every instance was stored (Success or Warning), 1 when the
    peer refused one or one could not be sent, and 2 when no association was
    established or there was nothing to send.
    """
    # Ctrl-C: the association is aborted on the way out of send_files
    run_command(
        lambda: run_store(
            host, port, paths, client=client, recursive=recursive, allow_lossy=allow_lossy
        )
    )
