"""``dicomnet find``, ``get`` and ``move``: the Query/Retrieve SCUs (PS3.4 C, K; PS3.7 9.1.2-9.1.4).

* ``dicomnet find HOST PORT -m patient|study|worklist [-L LEVEL] -k KEY[=VALUE]...``
  sends one C-FIND and prints each match as one JSON object per line on
  stdout (see :func:`identifier_to_json`).
* ``dicomnet get HOST PORT -m patient|study -L LEVEL -k KEY=VALUE... -o OUTDIR``
  retrieves the matching instances with C-GET on the same association and
  stores each as ``OUTDIR/<SOP Instance UID>.dcm``, exactly as received,
  durably (the receive path of ``dicomnet receive``: spooled to disk as the
  fragments arrive, flushed and renamed into place before Success is
  answered). The storage contexts it proposes, with the SCP role (PS3.7
  D.3.3.4), are those of the SOP classes a C-FIND found first
  (:func:`dicomnet.retrieve_helpers.retrieve_contexts`); the standard list
  when the C-FIND gives none.
* ``dicomnet move HOST PORT -m patient|study -L LEVEL -k KEY=VALUE... -d DEST``
  asks the peer to send the matching instances to the AE titled ``DEST``
  (``-d``/``-D``/``--dest``; in this command the dumps are ``--debug`` only).

Keys (``-k``) are written as for DCMTK's tools: a keyword or a tag
``gggg,eeee``, a path through sequences such as
``ScheduledProcedureStepSequence[0].Modality=CT``, and ``=VALUE`` for a
matching key, nothing for a return key. The keys, the models and the JSON
of the matches are :mod:`dicomnet.contrib.qr_identifiers` (re-exported here).

Exit status (``docs/cli.md``): 0 when the final response is Success (or, for
a retrieve, Warning with no failed sub-operation: everything arrived, some
with a warning); 1 for any other final status -- failure, refusal such as
A801H *Move destination unknown*, Cancel, Warning with failed
sub-operations -- or no final response, or the peer did not accept the
query model; 2 for no association or a usage error.

The ``run_*`` functions are the commands as functions.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import click
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet.association import Association
from dicomnet.dump import describe_status
from dicomnet.events import Event
from dicomnet.presentation import StoragePresentationContexts
from dicomnet.retrieve_helpers import RetrieveContexts, retrieve_contexts, sop_classes_of
from dicomnet.status import code_to_category

from ._cli_common import (
    ClientOptions,
    ExitStatus,
    NoAssociation,
    _ae_title,
    association,
    client_options,
    make_ae,
    run_command,
    verbosity_options,
    verbosity_options_long_debug,
)
from .qr_identifiers import (
    LEVELS,
    MODELS,
    InvalidKey,
    identifier_to_json,
    parse_key,
    parse_keys,
)
from .receive import StoreInDirectory

__all__ = [
    "InvalidKey",
    "find",
    "get",
    "identifier_to_json",
    "move",
    "parse_key",
    "parse_keys",
    "run_find",
    "run_get",
    "run_move",
]

LOGGER = logging.getLogger("dicomnet.cli")

#: the exit status of ``find`` when stdout is closed early: 128 + SIGPIPE, as a shell reports
#: a program that SIGPIPE killed
BROKEN_PIPE = 141

#: PS3.4 C.4.2.1.5: the peer does not know the Move Destination
MOVE_DESTINATION_UNKNOWN = 0xA801

# -- shared -----------------------------------------------------------------------------------


@attrs.frozen
class Outcome:
    """How a C-FIND, C-GET or C-MOVE ended, as seen by the SCU."""

    status: int | None  # None: no final response (timeout, abort)
    completed: int = 0
    failed: int = 0
    warning: int = 0
    matches: int = 0

    @property
    def exit_status(self) -> ExitStatus:
        if self.status is None:
            return ExitStatus.FAILURE
        category = code_to_category(self.status)
        if category == "Success":
            return ExitStatus.SUCCESS
        if category == "Warning" and self.failed == 0 and self.completed + self.warning > 0:
            return ExitStatus.SUCCESS  # everything arrived; some with a warning
        return ExitStatus.FAILURE


def _level_option(required: bool) -> Callable[[Any], Any]:
    return click.option(
        "-L",
        "--level",
        type=click.Choice(["PATIENT", "STUDY", "SERIES", "IMAGE"], case_sensitive=False),
        required=required,
        callback=lambda ctx, param, value: None if value is None else value.upper(),
        help="The Query/Retrieve Level (0008,0052)"
        + ("." if required else " [default: PATIENT for -m patient, STUDY for -m study]."),
    )


def _key_option(help_text: str) -> Callable[[Any], Any]:
    return click.option(
        "-k", "--key", "keys", multiple=True, metavar="KEY[=VALUE]", help=help_text
    )


def _model_option(choices: Sequence[str]) -> Callable[[Any], Any]:
    return click.option(
        "-m",
        "--model",
        type=click.Choice(list(choices), case_sensitive=False),
        required=True,
        callback=lambda ctx, param, value: value.lower(),
        help="The information model: " + ", ".join(f"{c} ({_MODEL_NAMES[c]})" for c in choices)
        + ".",
    )


_MODEL_NAMES = {"patient": "Patient Root", "study": "Study Root", "worklist": "Modality Worklist"}


def _identifier(model: str, level: str | None, keys: Sequence[str]) -> Dataset:
    """The identifier, or :class:`click.UsageError` (exit status 2) for a bad key or level."""
    if model == "worklist" and level is not None:
        raise click.UsageError("-L does not apply to -m worklist (it has no levels)")
    if level is not None and level not in LEVELS[model]:
        raise click.UsageError(
            f"-m {model} has no {level} level; use one of {', '.join(LEVELS[model])}"
        )
    try:
        return parse_keys(keys, level)
    except InvalidKey as exc:
        raise click.UsageError(f"-k {exc}") from None


# -- find -------------------------------------------------------------------------------------


def _find(
    assoc: Association,
    identifier: Dataset,
    model_uid: str,
    on_match: Callable[[Dataset], None],
    what: str,
) -> Outcome:
    """Send one C-FIND; call ``on_match`` per match; the outcome (``ValueError`` if the model
    was not accepted, ``RuntimeError`` if the association ended)."""
    matches = 0
    optional_warned = False
    responses = assoc.send_c_find(identifier, model_uid)
    try:
        for status, found in responses:
            if "Status" not in status:
                LOGGER.error(
                    "%s: no valid response (timeout or abort) after %d matches", what, matches
                )
                return Outcome(None, matches=matches)
            code = int(status.Status)
            if code_to_category(code) == "Pending":
                if code == 0xFF01 and not optional_warned:
                    optional_warned = True
                    LOGGER.warning(
                        "%s: the peer does not support some optional keys (0xFF01)", what
                    )
                if found is None:
                    LOGGER.warning("%s: a match whose identifier cannot be decoded", what)
                    continue
                matches += 1
                on_match(found)
                continue
            return Outcome(code, matches=matches)
    except BrokenPipeError:
        close = getattr(responses, "close", None)
        if close is not None:
            close()  # a C-CANCEL, then what still comes is read and dropped
        raise
    return Outcome(None, matches=matches)


def _stdout_to_devnull() -> None:
    """After a broken pipe: send what is left on stdout nowhere, so that exiting is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (click's test runner)
        pass
    finally:
        os.close(devnull)


def run_find(
    host: str,
    port: int,
    *,
    model: str,
    identifier: Dataset,
    client: ClientOptions,
    out: Callable[[str], None] = click.echo,
) -> int:
    """Send one C-FIND; print each match as a JSON line with ``out``; return the exit status.

    When stdout is closed before the last match (``| head -1``), the C-FIND is
    cancelled and the status is :data:`BROKEN_PIPE`, quietly.
    """
    model_uid = MODELS[model]["C-FIND"]
    peer = client.peer(host, port)

    def show(found: Dataset) -> None:
        out(json.dumps(identifier_to_json(found), ensure_ascii=False))

    ae = make_ae(client)
    try:
        with association(ae, client, host, port, [model_uid]) as assoc:
            start = time.perf_counter()
            try:
                outcome = _find(assoc, identifier, model_uid, show, "C-FIND")
            except ValueError:
                LOGGER.error(
                    "%s accepted the association but not the %s information model",
                    peer, _MODEL_NAMES[model],
                )
                return ExitStatus.FAILURE
            except RuntimeError:
                LOGGER.error("C-FIND: the association with %s has ended", peer)
                return ExitStatus.FAILURE
            except BrokenPipeError:  # the reader has gone: the C-FIND was cancelled
                _stdout_to_devnull()
                return BROKEN_PIPE
    except NoAssociation:
        return ExitStatus.NO_ASSOCIATION
    finally:
        ae.shutdown()
    elapsed = time.perf_counter() - start
    if outcome.status is not None:
        text = describe_status(outcome.status, "C-FIND")
        if outcome.exit_status == ExitStatus.SUCCESS:
            LOGGER.info(
                "C-FIND: %d match%s, %s, in %.1f ms",
                outcome.matches, "" if outcome.matches == 1 else "es", text, elapsed * 1000,
            )
        else:
            LOGGER.error("C-FIND: %s answered %s after %d matches", peer, text, outcome.matches)
    return outcome.exit_status


@click.command(short_help="Query a peer AE (C-FIND); one JSON object per match on stdout.")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@_model_option(["patient", "study", "worklist"])
@_level_option(required=False)
@_key_option(
    "A key: KEYWORD, gggg,eeee or a sequence path such as "
    "ScheduledProcedureStepSequence[0].Modality, with =VALUE to match, without to return it. "
    "Repeatable."
)
@client_options
@verbosity_options
def find(
    host: str,
    port: int,
    model: str,
    level: str | None,
    keys: tuple[str, ...],
    client: ClientOptions,
) -> None:
    """Query the AE at HOST:PORT with C-FIND and print the matches on stdout.

    Each match is one line of JSON: DICOM keywords (gggg,eeee for private or
    unknown tags) to string values, several values joined with a backslash,
    sequences as lists of objects.

    Exits with 0 when the query ended with Success (with or without matches),
    1 when the peer answered another status or did not accept the
    information model, and 2 when no association was established or the
    command line is wrong.
    """
    if level is None and model != "worklist":
        level = "PATIENT" if model == "patient" else "STUDY"
    identifier = _identifier(model, level, keys)
    run_command(
        lambda: run_find(host, port, model=model, identifier=identifier, client=client)
    )


# -- get and move -----------------------------------------------------------------------------


def _retrieve(
    responses: Iterator[tuple[Dataset, Dataset | None]], operation: str, what: str
) -> Outcome:
    """Follow the responses of a C-GET or C-MOVE; log the counts; return the outcome."""
    last: dict[str, int] = {}
    for status, identifier in responses:
        if "Status" not in status:
            LOGGER.error("%s: no valid response (timeout or abort)", what)
            return Outcome(None, **last)
        code = int(status.Status)
        last = {
            "completed": int(status.get("NumberOfCompletedSuboperations") or 0),
            "failed": int(status.get("NumberOfFailedSuboperations") or 0),
            "warning": int(status.get("NumberOfWarningSuboperations") or 0),
        }
        if code_to_category(code) == "Pending":
            remaining = status.get("NumberOfRemainingSuboperations")
            LOGGER.info(
                "%s: %s remaining, %d completed, %d failed, %d warning",
                operation, "?" if remaining is None else remaining,
                last["completed"], last["failed"], last["warning"],
            )
            continue
        if identifier is not None and "FailedSOPInstanceUIDList" in identifier:
            listed = identifier.FailedSOPInstanceUIDList
            uids = [listed] if isinstance(listed, str) else list(listed or ())
            if uids:
                LOGGER.warning("%s: failed SOP instances: %s", operation, ", ".join(uids))
        return Outcome(code, **last)
    return Outcome(None, **last)


def _report(
    outcome: Outcome, operation: str, peer: str, elapsed: float, extra: str = "", why: str = ""
) -> None:
    """One line on how the retrieve ended: INFO on success, else WARNING or ERROR."""
    if outcome.status is None:
        return
    text = describe_status(outcome.status, operation)
    counts = (
        f"{outcome.completed} completed, {outcome.failed} failed, {outcome.warning} warning"
    )
    started = outcome.completed + outcome.failed + outcome.warning > 0
    if outcome.exit_status == ExitStatus.SUCCESS:
        if code_to_category(outcome.status) == "Warning":
            LOGGER.warning("%s: %s answered %s (%s)", operation, peer, text, counts)
        LOGGER.info("%s: %s; %s%s in %.2f s", operation, text, counts, extra, elapsed)
    else:
        LOGGER.error(
            "%s: %s answered %s%s%s", operation, peer, text, f" ({counts})" if started else "",
            f": {why}" if why else "",
        )


def _discovery_identifier(identifier: Dataset, level: str) -> Dataset:
    """The C-FIND that names the SOP classes a retrieve at ``level`` will bring (PS3.4 C.6).

    IMAGE: the same keys with SOP Class UID (0008,0016). STUDY: the same keys
    with SOP Classes in Study (0008,0062). SERIES and PATIENT: a STUDY-level
    query on the unique keys above (Patient ID, Study Instance UID) with SOP
    Classes in Study, which names a superset of what the retrieve brings.
    """
    ds = Dataset()
    if level == "IMAGE":
        for element in identifier:
            ds.add(element)
        if "SOPClassUID" not in ds:
            ds.SOPClassUID = ""
        return ds
    ds.QueryRetrieveLevel = "STUDY"
    if level == "STUDY":
        for element in identifier:
            if element.keyword != "QueryRetrieveLevel":
                ds.add(element)
    else:
        for keyword in ("SpecificCharacterSet", "PatientID", "StudyInstanceUID"):
            if keyword in identifier and (level != "PATIENT" or keyword != "StudyInstanceUID"):
                ds.add(identifier[keyword])
    if "SOPClassesInStudy" not in ds:
        ds.SOPClassesInStudy = ""
    return ds


def _standard_contexts(get_model: str) -> RetrieveContexts:
    """The standard storage SOP classes (``StoragePresentationContexts``), SCP role for each."""
    classes = [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
    return retrieve_contexts(classes, get_model)


def plan_get_contexts(
    ae_factory: Callable[[], Any],
    client: ClientOptions,
    host: str,
    port: int,
    model: str,
    level: str,
    identifier: Dataset,
) -> RetrieveContexts:
    """The contexts and roles of the C-GET association, from a first C-FIND on its own
    association; the standard storage list when it names no SOP class.

    Raises :class:`NoAssociation` when the peer cannot be reached at all.
    """
    get_model = MODELS[model]["C-GET"]
    find_model = MODELS[model]["C-FIND"]
    ae = ae_factory()
    found: list[Dataset] = []
    try:
        with association(ae, client, host, port, [find_model]) as assoc:
            try:
                _find(assoc, _discovery_identifier(identifier, level), find_model,
                      found.append, "C-FIND (which SOP classes to accept)")
            except ValueError:
                LOGGER.info("The peer does not accept C-FIND under %s", _MODEL_NAMES[model])
            except RuntimeError:
                LOGGER.info("The association for the C-FIND has ended")
    finally:
        ae.shutdown()
    classes = sop_classes_of(found)
    if not classes:
        LOGGER.info(
            "The C-FIND named no SOP class (%d match%s): proposing the %d standard storage "
            "SOP classes", len(found), "" if len(found) == 1 else "es",
            len(StoragePresentationContexts),
        )
        return _standard_contexts(get_model)
    LOGGER.info("Proposing the %d SOP classes the C-FIND found: %s", len(classes),
                ", ".join(classes))
    try:
        return retrieve_contexts(classes, get_model)
    except ValueError as exc:  # more than 127 classes: the first ones
        LOGGER.warning("%s; proposing the first 127 SOP classes only", exc)
        return retrieve_contexts(classes[:127], get_model)


class _Counting:
    """An ``EVT_C_STORE`` handler storing in a folder, counting what it stored."""

    def __init__(self, directory: Path) -> None:
        self.store = StoreInDirectory(directory)
        self.stored = 0

    def __call__(self, event: Event) -> Any:
        status = self.store(event)
        if status == 0x0000:
            self.stored += 1
        return status


def _send_retrieve(
    send: Callable[[], Iterator[tuple[Dataset, Dataset | None]]],
    operation: str,
    model: str,
    peer: str,
) -> Outcome | None:
    """Run a C-GET or C-MOVE (in an :func:`association` block); ``None`` when it could not.

    The peer may have accepted the association but not the information model
    (``ValueError``), or ended the association (``RuntimeError``).
    """
    try:
        return _retrieve(send(), operation, operation)
    except ValueError:
        LOGGER.error(
            "%s accepted the association but not the %s %s information model",
            peer, _MODEL_NAMES[model], operation,
        )
    except RuntimeError:
        LOGGER.error("%s: the association with %s has ended", operation, peer)
    return None


def run_get(
    host: str,
    port: int,
    *,
    model: str,
    level: str,
    identifier: Dataset,
    directory: Path,
    client: ClientOptions,
    discover: bool = True,
) -> ExitStatus:
    """C-GET what matches ``identifier`` into ``directory``; return the exit status."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        LOGGER.error("Cannot create %s: %s", directory, exc)
        return ExitStatus.NO_ASSOCIATION
    get_model = MODELS[model]["C-GET"]

    def new_ae() -> Any:
        ae = make_ae(client, plugins=["storage"])
        ae.spool_threshold = 0  # every data set straight to disk, as it arrives
        ae.spool_directory = directory
        return ae

    peer = client.peer(host, port)
    start = time.perf_counter()
    try:
        if discover:
            contexts, roles = plan_get_contexts(
                new_ae, client, host, port, model, level, identifier
            )
        else:
            contexts, roles = _standard_contexts(get_model)
    except NoAssociation:
        return ExitStatus.NO_ASSOCIATION
    handler = _Counting(directory)
    ae = new_ae()
    try:
        with association(
            ae, client, host, port, presentation_contexts=contexts, ext_neg=roles,
            evt_handlers=[(evt.EVT_C_STORE, handler)],
        ) as assoc:
            outcome = _send_retrieve(
                lambda: assoc.send_c_get(identifier, get_model), "C-GET", model, peer
            )
    except NoAssociation:
        return ExitStatus.NO_ASSOCIATION
    finally:
        ae.shutdown()
    if outcome is None:
        return ExitStatus.FAILURE
    _report(
        outcome, "C-GET", peer, time.perf_counter() - start,
        f"; {handler.stored} file{'s' if handler.stored != 1 else ''} written to {directory}",
    )
    return outcome.exit_status


def run_move(
    host: str,
    port: int,
    *,
    model: str,
    identifier: Dataset,
    destination: str,
    client: ClientOptions,
) -> ExitStatus:
    """C-MOVE what matches ``identifier`` to ``destination``; return the exit status."""
    move_model = MODELS[model]["C-MOVE"]
    peer = client.peer(host, port)
    ae = make_ae(client)
    try:
        with association(ae, client, host, port, [move_model]) as assoc:
            start = time.perf_counter()
            outcome = _send_retrieve(
                lambda: assoc.send_c_move(identifier, destination, move_model), "C-MOVE",
                model, peer,
            )
    except NoAssociation:
        return ExitStatus.NO_ASSOCIATION
    finally:
        ae.shutdown()
    if outcome is None:
        return ExitStatus.FAILURE
    why = ""
    if outcome.status == MOVE_DESTINATION_UNKNOWN:
        why = f"it does not know the move destination {destination!r}"
    _report(outcome, "C-MOVE", peer, time.perf_counter() - start, f" to {destination!r}", why)
    return outcome.exit_status


_RETRIEVE_KEYS_HELP = (
    "A key identifying what to retrieve: KEYWORD=VALUE or gggg,eeee=VALUE, e.g. "
    "StudyInstanceUID=1.2.3 (the unique keys of the level and of the levels above). Repeatable."
)


@click.command(short_help="Retrieve instances into a folder (C-GET).")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@_model_option(["patient", "study"])
@_level_option(required=True)
@_key_option(_RETRIEVE_KEYS_HELP)
@click.option(
    "-o",
    "--out",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    metavar="OUTDIR",
    help="Where to write the instances, as <SOP Instance UID>.dcm (created if missing).",
)
@click.option(
    "--no-find",
    is_flag=True,
    help="Do not ask with C-FIND which SOP classes to accept first: propose the "
    "standard storage SOP classes.",
)
@client_options
@verbosity_options
def get(
    host: str,
    port: int,
    model: str,
    level: str,
    keys: tuple[str, ...],
    directory: Path,
    no_find: bool,
    client: ClientOptions,
) -> None:
    """Retrieve the matching instances from the AE at HOST:PORT with C-GET into OUTDIR.

    A first C-FIND on its own association finds which SOP classes the
    retrieve brings; the C-GET association proposes exactly those (the
    standard storage SOP classes when the C-FIND names none). Each instance is
    written as received and flushed to disk before Success is answered.

    Exits with 0 when every instance arrived (final Success, or Warning with
    no failed sub-operation), 1 when any sub-operation failed or the peer
    refused, and 2 when no association was established or the command line
    is wrong.
    """
    identifier = _identifier(model, level, keys)
    run_command(
        lambda: run_get(
            host, port, model=model, level=level, identifier=identifier, directory=directory,
            client=client, discover=not no_find,
        )
    )


@click.command(short_help="Have a peer AE send instances to another AE (C-MOVE).")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@_model_option(["patient", "study"])
@_level_option(required=True)
@_key_option(_RETRIEVE_KEYS_HELP)
@click.option(
    "-d",
    "-D",
    "--dest",
    "destination",
    required=True,
    callback=_ae_title,
    metavar="TITLE",
    help="The AE title of the move destination, as the peer knows it.",
)
@client_options
@verbosity_options_long_debug
def move(
    host: str,
    port: int,
    model: str,
    level: str,
    keys: tuple[str, ...],
    destination: str,
    client: ClientOptions,
) -> None:
    """Ask the AE at HOST:PORT to send the matching instances to the AE titled TITLE (C-MOVE).

    The peer must know TITLE (its address is in the peer's configuration);
    the instances travel on an association from the peer to it.

    Exits with 0 when every instance was sent (final Success, or Warning with
    no failed sub-operation), 1 when any sub-operation failed or the peer
    refused (e.g. 0xA801: unknown move destination), and 2 when no
    association was established or the command line is wrong.
    """
    identifier = _identifier(model, level, keys)
    run_command(
        lambda: run_move(
            host, port, model=model, identifier=identifier, destination=destination,
            client=client,
        )
    )
