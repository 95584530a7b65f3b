"""The ``dicomnet`` command line: DICOM network tools (see docs/cli.md).

``dicomnet`` is a click group; each tool is a subcommand built from the shared
options of :mod:`dicomnet.contrib._cli_common`:

* ``dicomnet echo HOST PORT``: verify that a peer answers C-ECHO (PS3.4 Annex
  A, PS3.7 9.1.5).
* ``dicomnet store HOST PORT PATH...``: send files and folders (C-STORE, PS3.4 B).
* ``dicomnet receive --port P --dir DIR``: a Storage SCP writing Part 10 files.
* ``dicomnet serve --port P --aet AE --dir DIR``: a small PACS (Storage,
  Query/Retrieve, Worklist SCP) on an index (docs/serve.md).

Messages go to stderr; stdout is kept for a command's results (``echo`` has
none). The exit status is 0 on success, 1 when the peer answered with a
failure status or refused the service, 2 when no association was established
or on a usage error (:class:`~dicomnet.contrib._cli_common.ExitStatus`).

Run as ``dicomnet`` (the console script) or ``python -m dicomnet.contrib.cli``.
"""

from __future__ import annotations

import logging
import time

import click

from dicomnet import __version__
from dicomnet.dump import describe_status
from dicomnet.sop_class import Verification

from ._cli_common import (
    ClientOptions,
    ExitStatus,
    NoAssociation,
    association,
    client_options,
    make_ae,
    run_command,
    verbosity_options,
)
from .qr_cli import find, get, move
from .receive import receive
from .serve import serve_command
from .store import store

__all__ = ["echo", "main", "run_echo"]

LOGGER = logging.getLogger("dicomnet.cli")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="dicomnet")
def main() -> None:
    """DICOM network tools.

    Each command prints its messages on stderr, and exits with 0 on success,
    1 when the peer answered with a failure status or refused the service, and
    2 when no association could be established or the command line is wrong.
    """


def run_echo(host: str, port: int, *, repeat: int, client: ClientOptions) -> ExitStatus:
    """Send ``repeat`` C-ECHO requests on one association; return the exit status.

    Stops at the first echo that does not answer Success (0000H). The
    association is released at the end, or aborted on an exception (Ctrl-C).
    """
    ae = make_ae(client)
    peer = client.peer(host, port)
    result = ExitStatus.SUCCESS
    times: list[float] = []
    try:
        with association(ae, client, host, port, [Verification]) as assoc:
            for n in range(1, repeat + 1):
                start = time.perf_counter()
                try:
                    status = assoc.send_c_echo(msg_id=(n - 1) % 0xFFFF + 1)
                except ValueError:
                    LOGGER.error(
                        "%s accepted the association but not the Verification SOP Class", peer
                    )
                    result = ExitStatus.FAILURE
                    break
                except RuntimeError:
                    LOGGER.error(
                        "Echo %d of %d: the association with %s has ended", n, repeat, peer
                    )
                    result = ExitStatus.FAILURE
                    break
                elapsed = time.perf_counter() - start
                if "Status" not in status:
                    LOGGER.error("Echo %d of %d: no valid response from %s", n, repeat, peer)
                    result = ExitStatus.FAILURE
                    break
                code = int(status.Status)
                if code != 0x0000:
                    LOGGER.error(
                        "Echo %d of %d: %s answered %s",
                        n,
                        repeat,
                        peer,
                        describe_status(code, "C-ECHO"),
                    )
                    result = ExitStatus.FAILURE
                    break
                times.append(elapsed)
                LOGGER.info("Echo %d of %d: Success in %.1f ms", n, repeat, elapsed * 1000)
    except NoAssociation:
        return ExitStatus.NO_ASSOCIATION
    finally:
        ae.shutdown()
    if times and repeat > 1:
        LOGGER.info(
            "%d of %d echoes succeeded; round trip min %.1f ms, mean %.1f ms, max %.1f ms",
            len(times),
            repeat,
            min(times) * 1000,
            sum(times) / len(times) * 1000,
            max(times) * 1000,
        )
    return result


@main.command(short_help="Verify that a peer AE answers (C-ECHO).")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Send N C-ECHO requests on the same association.",
)
@client_options
@verbosity_options
def echo(host: str, port: int, repeat: int, client: ClientOptions) -> None:
    """Send C-ECHO requests to the AE at HOST:PORT (the Verification service).

    Exits with 0 when every echo was answered with Success, 1 when the peer
    answered another status or did not accept the Verification SOP Class, and
    2 when no association was established (connection refused, host
    unreachable, TLS failure, association rejected or aborted).
    """
    run_command(lambda: run_echo(host, port, repeat=repeat, client=client))


main.add_command(store)
main.add_command(receive)
main.add_command(find)
main.add_command(get)
main.add_command(move)
main.add_command(serve_command)

if __name__ == "__main__":  # pragma: no cover - python -m dicomnet.contrib.cli
    main()
