"""What every ``dicomnet`` subcommand shares: options, exit statuses, logging, associating.

A subcommand is a plain click command whose callback receives ready-made
values instead of loose options:

* :func:`client_options` adds ``--aet``, ``--aec``, ``--timeout``,
  ``--max-pdu`` and the TLS options and passes them as one
  :class:`ClientOptions` argument named ``client``;
* :func:`verbosity_options` adds ``-v/--verbose`` and ``-d/--debug`` and runs
  the callback with dicomnet's log records going to stderr at the chosen level.

:func:`open_association` (or :func:`association`, for a ``with`` block that
releases or aborts it) then requests the association or raises
:class:`NoAssociation`, which the command turns into exit status 2;
:func:`run_command` runs the command's work and exits with its status. The
server commands (``receive``, ``serve``) share ``--port``, ``--aet``,
``--bind``, ``--max-pdu``, ``--workers``, ``--max-associations`` and
``--accept-retired`` (the ``*_option`` decorators); ``serve`` adds its own TLS
options, whose certificate is mandatory and whose CA file verifies *clients*.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import ssl
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from dicomnet import AE, Association
from dicomnet._logging import LineFormatter

__all__ = [
    "ClientOptions",
    "ExitStatus",
    "NoAssociation",
    "TLSOptions",
    "accept_retired_option",
    "association",
    "bind_option",
    "client_options",
    "log_to_stderr",
    "max_associations_option",
    "max_pdu_option",
    "open_association",
    "port_option",
    "run_command",
    "server_aet_option",
    "verbosity_options",
    "workers_option",
]

LOGGER = logging.getLogger("dicomnet.cli")

F = TypeVar("F", bound=Callable[..., Any])


class ExitStatus(enum.IntEnum):
    """The exit statuses of every ``dicomnet`` subcommand (documented in docs/cli.md)."""

    #: everything asked for was done, and the peer answered Success
    SUCCESS = 0
    #: associated, but the peer answered with a failure status or refused the service
    FAILURE = 1
    #: no association (connection refused or timed out, host unreachable, TLS
    #: handshake failed, association rejected or aborted during negotiation), or
    #: a usage error (click's own usage errors exit with 2 as well)
    NO_ASSOCIATION = 2
    #: interrupted (Ctrl-C, SIGINT): 128 + 2, as shells report it
    INTERRUPTED = 130


class NoAssociation(Exception):
    """The association could not be established; the reason was logged."""


# -- option values ----------------------------------------------------------------------------


@attrs.frozen
class TLSOptions:
    """The client side of a TLS connection (PS3.15 B.1; TLS 1.2 or later).

    The server's certificate chain is verified against ``ca_file`` (or the
    system's trusted CAs without it) unless ``verify`` is false. Its host name is
    checked only when ``hostname`` is given: DICOM peers are usually addressed by
    IP address, and their certificates often name no address.
    """

    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    hostname: str | None = None
    verify: bool = True

    def client_context(self) -> ssl.SSLContext:
        """An SSL context for connecting; raises :class:`click.BadParameter` for bad files."""
        if self.verify and self.ca_file is None:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        else:  # only the CAs given are trusted
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.verify:
            context.check_hostname = self.hostname is not None
            if self.ca_file is not None:
                try:
                    context.load_verify_locations(cafile=str(self.ca_file))
                except (OSError, ssl.SSLError) as exc:
                    raise click.BadParameter(
                        f"cannot load CA certificates from {self.ca_file}: {exc}",
                        param_hint="'--tls-ca'",
                    ) from exc
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file is not None:
            try:
                context.load_cert_chain(
                    str(self.cert_file), str(self.key_file) if self.key_file else None
                )
            except (OSError, ssl.SSLError) as exc:
                raise click.BadParameter(
                    f"cannot load the certificate {self.cert_file} and its key: {exc}",
                    param_hint="'--tls-cert' / '--tls-key'",
                ) from exc
        return context


@attrs.frozen
class ClientOptions:
    """How to reach the peer: AE titles, timeouts, Maximum Length and TLS."""

    calling_ae_title: str
    called_ae_title: str
    timeout: float
    max_pdu: int
    tls: TLSOptions | None = None

    def peer(self, host: str, port: int) -> str:
        """The peer as the messages name it: ``'ANY-SCP' at HOST:PORT``."""
        return f"{self.called_ae_title!r} at {host}:{port}"

    def tls_args(self, host: str) -> tuple[ssl.SSLContext, str] | None:
        """``AE.associate``'s ``tls_args`` towards ``host`` (``None`` without TLS)."""
        if self.tls is None:
            return None
        return self.tls.client_context(), self.tls.hostname or host


def _ae_title(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """AE titles: 1 to 16 characters of the default repertoire, no backslash (PS3.5 6.2)."""
    title = value.strip(" ")
    if not 0 < len(title) <= 16 or not all(32 <= ord(c) < 127 and c != "\\" for c in title):
        raise click.BadParameter(
            f"{value!r} is not an AE title: 1 to 16 printable ASCII characters, no backslash"
        )
    return title


def _max_pdu(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value != 0 and not 7 <= value <= 0xFFFFFFFF:
        raise click.BadParameter("must be 0 (no limit) or between 7 and 4294967295")
    return value


_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)

#: ``--max-pdu``: our Maximum Length (PS3.8 D.1), for SCU and SCP commands alike
max_pdu_option = click.option(
    "--max-pdu",
    type=int,
    default=16382,
    show_default=True,
    callback=_max_pdu,
    metavar="BYTES",
    help="The largest P-DATA-TF PDU we accept (our Maximum Length); 0 for no limit.",
)

# -- the options of the server commands (receive, serve) --

#: ``--port``: where a server listens (0: a free port)
port_option = click.option(
    "--port", "-p", type=click.IntRange(0, 65535), required=True, help="TCP port to listen on."
)
#: ``--aet``: the server's AE title
server_aet_option = click.option(
    "--aet",
    default="DICOMNET",
    show_default=True,
    callback=_ae_title,
    metavar="TITLE",
    help="Our AE title.",
)
#: ``--bind``: the address a server listens on (the parameter ``host``)
bind_option = click.option(
    "--bind",
    "host",
    default="",
    metavar="ADDR",
    help="Address to listen on [default: all interfaces].",
)
#: ``--workers``: processes sharing the port (:mod:`dicomnet.contrib._workers`)
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Worker processes sharing the port.",
)
#: ``--max-associations``: associations each worker serves at once
max_associations_option = click.option(
    "--max-associations",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    metavar="N",
    help="Simultaneous associations per worker.",
)
#: ``--accept-retired``: serve the retired storage SOP classes too
accept_retired_option = click.option(
    "--accept-retired", is_flag=True, help="Accept the retired storage SOP classes too."
)



def client_options(func: F) -> F:
    """Add the options of an SCU command; the callback gets ``client: ClientOptions``."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        aet: str,
        aec: str,
        timeout: float,
        max_pdu: int,
        tls: bool,
        tls_cert: Path | None,
        tls_key: Path | None,
        tls_ca: Path | None,
        tls_hostname: str | None,
        tls_no_verify: bool,
        **kwargs: Any,
    ) -> Any:
        if tls_key is not None and tls_cert is None:
            raise click.UsageError("--tls-key needs --tls-cert")
        if tls_no_verify and (tls_ca is not None or tls_hostname is not None):
            raise click.UsageError("--tls-no-verify cannot be used with --tls-ca or --tls-hostname")
        use_tls = tls or tls_no_verify or any(
            v is not None for v in (tls_cert, tls_key, tls_ca, tls_hostname)
        )
        options = ClientOptions(
            calling_ae_title=aet,
            called_ae_title=aec,
            timeout=timeout,
            max_pdu=max_pdu,
            tls=TLSOptions(tls_cert, tls_key, tls_ca, tls_hostname, not tls_no_verify)
            if use_tls
            else None,
        )
        return func(*args, client=options, **kwargs)

    options = [
        click.option(
            "--aet",
            default="DICOMNET",
            show_default=True,
            callback=_ae_title,
            metavar="TITLE",
            help="Our AE title (the Calling AE Title).",
        ),
        click.option(
            "--aec",
            default="ANY-SCP",
            show_default=True,
            callback=_ae_title,
            metavar="TITLE",
            help="The peer's AE title (the Called AE Title).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=30.0,
            show_default=True,
            metavar="SECONDS",
            help="How long to wait for the connection, for the answer to the association "
            "request and release, and for each response.",
        ),
        max_pdu_option,
        click.option("--tls", is_flag=True, help="Use TLS (implied by any other --tls option)."),
        click.option(
            "--tls-cert",
            type=_FILE,
            metavar="FILE",
            help="Our certificate (PEM), for servers that ask for a client certificate.",
        ),
        click.option(
            "--tls-key",
            type=_FILE,
            metavar="FILE",
            help="The private key of --tls-cert (PEM), if not in the same file.",
        ),
        click.option(
            "--tls-ca",
            type=_FILE,
            metavar="FILE",
            help="CA certificates (PEM) to verify the server's certificate chain with "
            "[default: the system's trusted CAs].",
        ),
        click.option(
            "--tls-hostname",
            metavar="NAME",
            help="Check that the server's certificate names NAME (not checked without it).",
        ),
        click.option(
            "--tls-no-verify",
            is_flag=True,
            help="Do not verify the server's certificate at all (insecure: for testing).",
        ),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


# -- verbosity --------------------------------------------------------------------------------


@contextlib.contextmanager
def log_to_stderr(level: int) -> Iterator[None]:
    """Send the ``dicomnet`` log records at ``level`` and above to stderr, for the duration."""
    logger = logging.getLogger("dicomnet")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter())
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


def verbosity_options(func: F) -> F:
    """Add ``-v/--verbose`` and ``-d/--debug``; run the callback with logging set up.

    Without either only warnings and errors are shown; ``-v`` adds one line per
    association step and DIMSE message, ``-d`` the full ACSE and DIMSE dumps.
    """
    return _verbosity(func, debug_short=True)


def verbosity_options_long_debug(func: F) -> F:
    """:func:`verbosity_options` with ``--debug`` only, leaving ``-d`` to the command
    (``dicomnet move -d DEST_AE``)."""
    return _verbosity(func, debug_short=False)


def _verbosity(func: F, *, debug_short: bool) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, verbose: bool, debug: bool, **kwargs: Any) -> Any:
        level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
        with log_to_stderr(level):
            return func(*args, **kwargs)

    names = ("-d", "--debug") if debug_short else ("--debug",)
    decorated: Any = click.option(
        *names, is_flag=True, help="Show everything, with ACSE and DIMSE dumps."
    )(wrapper)
    decorated = click.option(
        "-v", "--verbose", is_flag=True, help="Show each association step and DIMSE message."
    )(decorated)
    return decorated  # type: ignore[no-any-return]


# -- associating ------------------------------------------------------------------------------


def make_ae(client: ClientOptions, plugins: Sequence[str] | None = ()) -> AE:
    """An AE with the client's title and timeouts (no contexts yet).

    ``plugins`` are the service-class plugins to load: none by default, as an
    SCU command serves no request (and so a broken third-party plugin cannot
    break it); ``None`` loads them all, for commands that act as SCP.

    Every wait of a command is bounded by ``--timeout`` (connection, ACSE, each
    DIMSE response), so the idle timeout is not needed: it is switched off, and
    a long ``--timeout`` is not cut short by it.
    """
    ae = AE(client.calling_ae_title, plugins=plugins)
    ae.connection_timeout = client.timeout
    ae.acse_timeout = client.timeout
    ae.dimse_timeout = client.timeout
    ae.network_timeout = None
    return ae


def open_association(
    ae: AE,
    client: ClientOptions,
    host: str,
    port: int,
    contexts: Sequence[str] = (),
    *,
    presentation_contexts: Sequence[Any] | None = None,
    **associate_args: Any,
) -> Association:
    """Request an association with ``host:port``; raise :class:`NoAssociation` if none.

    ``contexts`` are abstract syntaxes to request, with the default transfer
    syntaxes, in addition to those already requested on ``ae``.
    ``presentation_contexts`` (a list of
    :class:`~dicomnet.presentation.PresentationContext`) replace the AE's
    requested ones, as ``AE.associate(contexts=...)``; ``associate_args`` go to
    :meth:`AE.associate` too (``ext_neg``, ``evt_handlers``...).
    """
    for abstract_syntax in contexts:
        ae.add_requested_context(abstract_syntax)
    assoc = ae.associate(
        host,
        port,
        ae_title=client.called_ae_title,
        max_pdu=client.max_pdu,
        tls_args=client.tls_args(host),
        contexts=presentation_contexts,
        **associate_args,
    )
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        why = "the association was rejected"
    elif assoc.is_aborted:
        why = "the connection failed or the association was aborted"
    else:
        why = "no answer to the association request"
    LOGGER.error("No association with %s: %s", client.peer(host, port), why)
    assoc.abort()
    raise NoAssociation(why)


@contextlib.contextmanager
def association(
    ae: AE,
    client: ClientOptions,
    host: str,
    port: int,
    contexts: Sequence[str] = (),
    **kwargs: Any,
) -> Iterator[Association]:
    """:func:`open_association` for a ``with`` block, which ends the association.

    Released when the block ends (returns included) if still established;
    aborted when an exception leaves the block (Ctrl-C: do not wait for a
    release). Raises :class:`NoAssociation` as :func:`open_association` does.
    """
    assoc = open_association(ae, client, host, port, contexts, **kwargs)
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    if assoc.is_established:
        assoc.release()


def run_command(run: Callable[[], int]) -> None:
    """Run a command's work and exit with its status; Ctrl-C is :attr:`ExitStatus.INTERRUPTED`.

    ``run`` aborts its association on the way out of a :class:`KeyboardInterrupt`
    (see :func:`association`).
    """
    try:
        status = run()
    except KeyboardInterrupt:
        LOGGER.error("Interrupted")
        status = int(ExitStatus.INTERRUPTED)
    click.get_current_context().exit(status)
