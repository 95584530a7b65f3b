"""The compatibility claim: a pynetdicom program runs on dicomnet with only its imports changed.

``programs/`` holds three ordinary pynetdicom 3.0.4 programs, written against
pynetdicom's documented API and importing ``pynetdicom``:

* ``echo_scp.py`` -- a Verification SCP: ``evt_handlers`` with extra
  arguments, ``server.bind``/``server.unbind``, EVT_CONN_OPEN, EVT_ESTABLISHED,
  EVT_RELEASED and EVT_ABORTED logging, a required called AE title, a handler
  answering a failure status;
* ``echo_scu.py`` -- the checks an engineer runs against a new node:
  rejection of a wrong called AE title, accepted and refused contexts,
  C-ECHO statuses, ``ValueError`` for C-STORE without a context,
  ``release()`` then ``RuntimeError``, ``abort()``, a failure status;
* ``verify_peers.py`` -- C-ECHO to a list of nodes (one of them DCMTK's
  storescp, one unreachable, one rejecting) with
  ``VerificationPresentationContexts``.

For each program: (a) it runs unmodified with pynetdicom in its venv -- it is
a genuine pynetdicom program -- and (b) its rewritten copy, with ``pynetdicom``
replaced by ``dicomnet`` on import lines only, runs with our python, where
pynetdicom is made unimportable. The scenario (SCP program serving, SCU
programs against it) runs with every combination of implementations, and
everything observable must equal the all-pynetdicom run: exit statuses and
standard output of every program. The SCP's lines are compared per phase as
multisets, since its associations' threads may interleave their lines (an
A-ABORT is processed after the aborting SCU has already moved on).

One pynetdicom race is allowed for: under load, a pynetdicom SCU may report
a rejected association as aborted (see :func:`pynetdicom_requestor_race`);
such a run is repeated, at most twice, when the SCP's log shows it rejected.
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers import (
    Dcmtk,
    PeerGroup,
    describe,
    free_port,
    python_runner,
    run_client,
)

pytestmark = [pytest.mark.interop, pytest.mark.leakcheck]

HERE = Path(__file__).parent
PROGRAMS = HERE / "programs"
GUARD = HERE / "run_without_pynetdicom.py"
PROGRAM_NAMES = ["echo_scp.py", "echo_scu.py", "verify_peers.py"]

#: an import statement naming pynetdicom (or one of its modules) first
IMPORT_LINE = re.compile(r"^(\s*(?:from|import)\s+)pynetdicom(?=[\s.]|$)")


def to_dicomnet(source: str) -> str:
    """``source`` with ``pynetdicom`` replaced by ``dicomnet`` in its import statements only."""
    return "".join(
        IMPORT_LINE.sub(r"\1dicomnet", line) for line in source.splitlines(keepends=True)
    )


def name_tokens(source: str, name: str) -> int:
    """How many times ``name`` occurs in ``source`` as code (not in strings or comments)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return sum(1 for tok in tokens if tok.type == tokenize.NAME and tok.string == name)


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_rewrite_changes_import_lines_only(name: str) -> None:
    original = (PROGRAMS / name).read_text()
    rewritten = to_dicomnet(original)
    before, after = original.splitlines(), rewritten.splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed, f"{name} imports nothing from pynetdicom"
    for old, new in changed:
        assert IMPORT_LINE.match(old), old
        assert new == old.replace("pynetdicom", "dicomnet", 1), (old, new)
    assert name_tokens(original, "pynetdicom") == len(changed)
    assert name_tokens(rewritten, "pynetdicom") == 0  # no use of pynetdicom left in code
    compile(rewritten, name, "exec")


# -- running the programs ---------------------------------------------------------------------


class Runner:
    """Builds the command lines of a program on one implementation."""

    def __init__(self, impl: str, pynetdicom_python: str, workdir: Path) -> None:
        self.impl = impl
        self.pynetdicom_python = pynetdicom_python
        self.workdir = workdir

    def argv(self, name: str, *args: str | int) -> list[str]:
        if self.impl == "pynetdicom":
            return python_runner(PROGRAMS / name, *args, python=self.pynetdicom_python)
        rewritten = self.workdir / "dicomnet" / name
        if not rewritten.exists():
            rewritten.parent.mkdir(parents=True, exist_ok=True)
            rewritten.write_text(to_dicomnet((PROGRAMS / name).read_text()))
        return [sys.executable, "-u", str(GUARD), str(rewritten), *map(str, args)]


def run_scenario(
    scp_impl: str,
    scu_impl: str,
    *,
    pynetdicom_python: str,
    dcmtk: Dcmtk,
    workdir: Path,
    peers: PeerGroup,
) -> dict[str, Any]:
    """Serve with echo_scp.py on ``scp_impl``; run the SCU programs on ``scu_impl`` against it."""
    scp_runner = Runner(scp_impl, pynetdicom_python, workdir)
    scu_runner = Runner(scu_impl, pynetdicom_python, workdir)

    storescp_tool = dcmtk.tool("storescp")
    storescp, store_port = peers.start_listening(
        lambda port: [storescp_tool, "-aet", "STORESCP", "-od", str(workdir), str(port)],
        name="storescp",
        cwd=workdir,
    )
    scp = peers.start(
        scp_runner.argv("echo_scp.py", 0), name=f"echo_scp.py ({scp_impl})", stdin=True
    )
    port = int(scp.wait_for_line(r"^listening on port (\d+)$").group(1))

    scu = run_client(scu_runner.argv("echo_scu.py", "127.0.0.1", port, "COMPAT-SCP"))
    # the SCP's last events of that run, before it is told to stop logging connections
    # (the A-ABORT may be processed after the next association: wait for each)
    for ending in (
        "from COMPAT-SCU rejected",
        "released by COMPAT-SCU",
        "aborted by COMPAT-SCU",
        "released by MAINTENANCE",
    ):
        scp.wait_for_line(f"^association {ending}$")
    scp.write_stdin("quiet\n")
    scp.wait_for_line(r"^no longer logging connections$")

    verify = run_client(
        scu_runner.argv(
            "verify_peers.py",
            f"scp=127.0.0.1:{port}:COMPAT-SCP",
            f"dcmtk=127.0.0.1:{store_port}:STORESCP",
            f"offline=127.0.0.1:{free_port()}:NOBODY",
            f"misnamed=127.0.0.1:{port}:NOT-COMPAT-SCP",
        )
    )
    scp.wait_for_line(r"^association released by VERIFIER$")
    scp.wait_for_line(r"^association from VERIFIER rejected$")
    scp.close_stdin()
    scp_status = scp.wait()
    storescp.stop()

    lines = scp.stdout_lines[1:]  # after "listening on port N"
    split = lines.index("no longer logging connections")
    return {
        "echo_scu.py": (scu.returncode, scu.stdout),
        "verify_peers.py": (verify.returncode, verify.stdout),
        "echo_scp.py": (scp_status, sorted(lines[:split]), sorted(lines[split:])),
        "_details": describe(scu) + describe(verify) + scp.output(),
    }


def pynetdicom_requestor_race(outcome: dict[str, Any]) -> bool:
    """Whether a pynetdicom SCU took an A-ASSOCIATE-RJ for an abort (its race, not ours).

    pynetdicom 3.0.4's ``ACSE._negotiate_as_requestor`` checks
    ``socket._is_connected`` after handing its A-ASSOCIATE-RQ to the DUL thread.
    When the peer rejects quickly and that thread has already received the
    A-ASSOCIATE-RJ and closed the socket (AE-4) by then -- under CPU load --
    pynetdicom aborts and reports ``is_aborted`` instead of ``is_rejected``.
    Counted only when the SCP's own log shows that it did reject.
    """
    _, scu_out = outcome["echo_scu.py"]
    _, verify_out = outcome["verify_peers.py"]
    _, phase1, phase2 = outcome["echo_scp.py"]
    raced = "NOT rejected (established=False)" in scu_out or bool(
        re.search(r"^misnamed .* association aborted or never connected$", verify_out, re.M)
    )
    rejected = (
        "association from COMPAT-SCU rejected" in phase1
        and "association from VERIFIER rejected" in phase2
    )
    return raced and rejected


def run_scenario_until_no_race(
    scp_impl: str, scu_impl: str, attempts: int = 3, **kwargs: Any
) -> dict[str, Any]:
    """:func:`run_scenario`, again when a pynetdicom SCU lost its rejection race."""
    outcome = run_scenario(scp_impl, scu_impl, **kwargs)
    for _ in range(attempts - 1):
        if scu_impl != "pynetdicom" or not pynetdicom_requestor_race(outcome):
            break
        outcome = run_scenario(scp_impl, scu_impl, **kwargs)
    return outcome


@pytest.fixture(scope="module")
def reference(
    pynetdicom_python: str, dcmtk: Dcmtk, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The scenario with pynetdicom on both sides: what every other run must reproduce."""
    group = PeerGroup()
    try:
        return run_scenario_until_no_race(
            "pynetdicom",
            "pynetdicom",
            pynetdicom_python=pynetdicom_python,
            dcmtk=dcmtk,
            workdir=tmp_path_factory.mktemp("reference"),
            peers=group,
        )
    finally:
        group.stop_all()


def test_reference_run_is_meaningful(reference: dict[str, Any]) -> None:
    """The all-pynetdicom run exercises what the programs claim (else equality proves little)."""
    details = reference["_details"]
    scu_status, scu_out = reference["echo_scu.py"]
    assert scu_status == 0, details
    for expected in (
        "rejected, as it should be",
        "accepted: Verification SOP Class in Implicit VR Little Endian",
        "refused: CT Image Storage",
        "C-ECHO status: 0x0000",
        "C-STORE refused locally: no accepted context",
        "C-ECHO after release refused",
        "is_aborted=True is_established=False",
        "C-ECHO status: 0x0211",
        "0 check(s) failed",
    ):
        assert expected in scu_out, details
    verify_status, verify_out = reference["verify_peers.py"]
    assert verify_status == 2, details
    assert "2 of 4 node(s) verified" in verify_out, details
    scp_status, phase1, phase2 = reference["echo_scp.py"]
    assert scp_status == 0, details
    assert "association aborted by COMPAT-SCU" in phase1, details
    assert "association from COMPAT-SCU rejected" in phase1, details
    assert "served 4 C-ECHO request(s): COMPAT-SCU, COMPAT-SCU, MAINTENANCE, VERIFIER" in phase2


@pytest.mark.parametrize(
    ("scp_impl", "scu_impl"),
    [("pynetdicom", "dicomnet"), ("dicomnet", "pynetdicom"), ("dicomnet", "dicomnet")],
    ids=["pynetdicom-scp--dicomnet-scus", "dicomnet-scp--pynetdicom-scus", "dicomnet-both"],
)
def test_programs_behave_as_on_pynetdicom(
    scp_impl: str,
    scu_impl: str,
    reference: dict[str, Any],
    pynetdicom_python: str,
    dcmtk: Dcmtk,
    tmp_path: Path,
    peers: PeerGroup,
) -> None:
    outcome = run_scenario_until_no_race(
        scp_impl,
        scu_impl,
        pynetdicom_python=pynetdicom_python,
        dcmtk=dcmtk,
        workdir=tmp_path,
        peers=peers,
    )
    for program in ("echo_scu.py", "verify_peers.py", "echo_scp.py"):
        assert outcome[program] == reference[program], (
            f"{program} differs from the all-pynetdicom run\n"
            f"--- this run ({scp_impl} SCP, {scu_impl} SCUs):\n{outcome['_details']}\n"
            f"--- the all-pynetdicom run:\n{reference['_details']}"
        )
