"""Finding, starting and stopping the reference peers for the interop tests.

The peers are real DICOM implementations nobody on this project wrote:
DCMTK's command-line tools, Orthanc, and pynetdicom 3.0.4 in its own virtual
environment (see ``../shared/peers/README.md``). This module finds them, runs
them as subprocesses on free ports, and guarantees that none outlives its
test.

A missing peer skips the test with the reason and the way to install it --
unless ``DICOMNET_REQUIRE_PEERS=1`` is set (CI sets it), in which case the test
fails, so that interop is never skipped silently where it must run.

Used by ``tests/interop`` and ``tests/compat`` (their conftest files re-export
the fixtures).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

#: set to 1 (CI does) to turn "peer missing" skips into failures
REQUIRE_ENV = "DICOMNET_REQUIRE_PEERS"
#: the python of a virtual environment with pynetdicom 3.0.4
PYNETDICOM_ENV = "DICOMNET_PYNETDICOM_PYTHON"
PEERS_HOME = Path(os.environ.get("DICOM_PEERS_HOME", Path.home() / ".cache" / "dicom-peers"))
DEFAULT_PYNETDICOM_PYTHON = PEERS_HOME / "venv" / "bin" / "python"
PYNETDICOM_VERSION = "3.0.4"

SETUP_HINT = "run `bash ../shared/peers/setup.sh` as root (from the repository root)"
DCMTK_HINT = f"{SETUP_HINT}, or `apt-get install dcmtk`"
ORTHANC_HINT = f"{SETUP_HINT}, or `apt-get install orthanc`"
PYNETDICOM_HINT = (
    f"{SETUP_HINT}, or create a venv with `pip install pynetdicom=={PYNETDICOM_VERSION}` "
    f"and point {PYNETDICOM_ENV} at its python"
)

#: how long a peer may take to start listening
START_TIMEOUT = 15.0
#: how long a one-shot client (echoscu, a script) may run
CLIENT_TIMEOUT = 30.0

#: the environment every peer runs with: DCMTK and Orthanc leave Nagle's
#: algorithm on unless told, and each request/response then stalls ~40 ms
PEER_ENV = {"TCP_NODELAY": "1"}


def peers_required() -> bool:
    """Whether a missing peer is a failure (CI) rather than a skip."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def peer_missing(what: str, hint: str) -> NoReturn:
    """Skip the test because ``what`` is missing -- or fail it when peers are required."""
    message = f"{what}; to install: {hint}"
    if peers_required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: interop tests must not be skipped)", False)
    pytest.skip(message)


def peer_env(**extra: str) -> dict[str, str]:
    """The environment for a peer subprocess: ours plus TCP_NODELAY=1."""
    return {**os.environ, **PEER_ENV, **extra}


# -- finding the peers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Dcmtk:
    """DCMTK's command-line tools, found on PATH."""

    bindir: Path
    version: str
    has_tls: bool

    def tool(self, name: str) -> str:
        path = self.bindir / name
        if not path.exists():
            peer_missing(f"DCMTK tool {name!r} not found in {self.bindir}", DCMTK_HINT)
        return str(path)


def find_dcmtk() -> Dcmtk:
    echoscu = _which("echoscu")
    if echoscu is None or _which("storescp") is None:
        peer_missing("DCMTK (echoscu, storescp) not found on PATH", DCMTK_HINT)
    result = subprocess.run(
        [echoscu, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    text = result.stdout + result.stderr
    match = re.search(r"v(\d+\.\d+\.\d+)", text)
    return Dcmtk(
        bindir=Path(echoscu).parent,
        version=match.group(1) if match else "unknown",
        has_tls="OpenSSL" in text,
    )


def find_orthanc() -> tuple[str, str]:
    """The Orthanc binary and its version."""
    binary = _which("Orthanc")
    if binary is None:
        peer_missing("Orthanc (the `Orthanc` binary) not found on PATH", ORTHANC_HINT)
    result = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    match = re.search(r"Orthanc (\d+\.\d+\.\d+)", result.stdout + result.stderr)
    return binary, match.group(1) if match else "unknown"


def find_pynetdicom_python() -> str:
    """The python of the pynetdicom virtual environment (``$DICOMNET_PYNETDICOM_PYTHON``)."""
    configured = os.environ.get(PYNETDICOM_ENV)
    python = Path(configured) if configured else DEFAULT_PYNETDICOM_PYTHON
    if not python.exists():
        origin = f"${PYNETDICOM_ENV}" if configured else "the default venv"
        peer_missing(f"no python for pynetdicom at {python} ({origin})", PYNETDICOM_HINT)
    result = subprocess.run(
        [str(python), "-c", "import pynetdicom; print(pynetdicom.__version__)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    version = result.stdout.strip()
    if result.returncode != 0:
        peer_missing(f"{python} cannot import pynetdicom: {result.stderr.strip()}", PYNETDICOM_HINT)
    if version != PYNETDICOM_VERSION:
        peer_missing(
            f"{python} has pynetdicom {version}, the tests expect {PYNETDICOM_VERSION}",
            PYNETDICOM_HINT,
        )
    return str(python)


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


# -- ports ------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago.

    Bind to port 0, read the port, close. Another process may take it before
    the peer binds it; for peers that only take a port number (DCMTK,
    Orthanc) that race cannot be avoided, so :func:`start_listening` retries
    with a new port when the peer fails to listen.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on ``port`` (IPv4 or IPv6); ``None`` without /proc."""
    found: set[str] = set()
    seen_any = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        seen_any = True
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                found.add(fields[9])
    return found if seen_any else None


def _process_socket_inodes(pids: Sequence[int]) -> set[str]:
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    return inodes


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                # pid (comm) state ppid pgrp ...: comm may contain spaces, split after ')'
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    pids.append(int(entry.name))
    return pids


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- subprocess peers -------------------------------------------------------------------------


class PeerProcess:
    """A peer running as a subprocess in its own process group.

    Its stdout and stderr are drained by threads into line lists (so the peer
    never blocks on a full pipe), available to :meth:`wait_for_line` and, for
    failure messages, :meth:`output`. :meth:`stop` terminates the whole process
    group and waits; the fixtures call it in a finalizer.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stdin: bool = False,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._cond = threading.Condition()
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else peer_env(),
            cwd=cwd,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._readers = [
            threading.Thread(target=self._drain, args=(stream, key), daemon=True)
            for stream, key in ((self._proc.stdout, "stdout"), (self._proc.stderr, "stderr"))
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: object, key: str) -> None:
        assert stream is not None
        for line in stream:  # type: ignore[attr-defined]
            with self._cond:
                self._lines[key].append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the peer has been reaped (:meth:`wait`, :meth:`stop`)."""
        return self._proc.returncode

    @property
    def stdout_lines(self) -> list[str]:
        with self._cond:
            return list(self._lines["stdout"])

    def output(self) -> str:
        """Everything the peer printed so far, for failure messages."""
        with self._cond:
            out = "\n".join(self._lines["stdout"])
            err = "\n".join(self._lines["stderr"])
        return (
            f"--- {self.name}: {' '.join(self.argv)} (exit {self._proc.returncode})\n"
            f"--- stdout:\n{out}\n--- stderr:\n{err}"
        )

    @property
    def stderr_lines(self) -> list[str]:
        with self._cond:
            return list(self._lines["stderr"])

    def wait_for_line(
        self, pattern: str, timeout: float = START_TIMEOUT, *, stream: str = "stdout"
    ) -> re.Match[str]:
        """Wait until the peer prints a line matching ``pattern`` on ``stream`` ("stdout" or
        "stderr"); fail with its output."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                lines = self._lines[stream]
                for line in lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(lines)
                remaining = deadline - time.monotonic()
                finished = self._exited() and not any(r.is_alive() for r in self._readers)
                if remaining <= 0 or finished:
                    break
                self._cond.wait(min(remaining, 0.1))
        pytest.fail(f"{self.name} never printed /{pattern}/\n{self.output()}", False)

    def wait_listening(self, port: int, timeout: float = START_TIMEOUT) -> bool:
        """Wait until this peer (or a child) listens on ``port``; ``False`` if it exited first.

        Reads /proc so that a probe connection never disturbs the peer (a
        single-process storescp would log a failed association); without
        /proc it falls back to connecting.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._exited():
                return False
            listening = _listening_inodes(port)
            if listening is None:
                if _port_accepts(port):
                    return True
            elif listening & _process_socket_inodes(_group_pids(self._proc.pid)):
                return True
            time.sleep(0.01)  # waiting on another process: nothing to block on but time
        pytest.fail(
            f"{self.name} did not listen on port {port} within {timeout} s\n{self.output()}"
        )

    def close_stdin(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()

    def write_stdin(self, text: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(text)
        self._proc.stdin.flush()

    # The leader is never reaped before its group has been signalled: while it is
    # a zombie its PID (the group's ID) cannot be reused, so killpg() reaches our
    # peer's processes and nobody else's.

    def _exited(self) -> bool:
        """Whether the leader has exited (without reaping it)."""
        if self._proc.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _wait_exited(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _signal_group(self, signum: int) -> None:
        if self._proc.returncode is None:  # not reaped: the group ID is still ours
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signum)

    def _reap(self) -> int:
        self._signal_group(signal.SIGKILL)  # whatever the peer forked and left behind
        code = self._proc.wait()
        for reader in self._readers:
            reader.join(5.0)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()
        return code

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the peer to exit by itself; fail (after stopping it) if it does not."""
        if not self._wait_exited(timeout):
            self.stop()
            pytest.fail(f"{self.name} did not exit within {timeout} s\n{self.output()}", False)
        return self._reap()

    def terminate(self) -> None:
        """Ask the peer's process group to stop (SIGTERM); :meth:`stop` waits for it."""
        self.close_stdin()
        if not self._exited():
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the peer's process group (SIGTERM, then SIGKILL) and reap it."""
        if self._proc.returncode is not None:
            return
        self.terminate()
        if not self._wait_exited(timeout):
            self._signal_group(signal.SIGKILL)
            self._wait_exited(timeout)
        self._reap()


class PeerGroup:
    """Peers started together and stopped together (by a test, or a module's fixture).

    With ``item``, the output of each peer started is attached to that test's
    report when it fails.
    """

    def __init__(self, item: pytest.Item | None = None) -> None:
        self.processes: list[PeerProcess] = []
        self._item = item

    def start(self, argv: Sequence[str], *, name: str, **kwargs: object) -> PeerProcess:
        proc = PeerProcess(argv, name=name, **kwargs)  # type: ignore[arg-type]
        self.processes.append(proc)
        if self._item is not None:
            watch(self._item, proc)
        return proc

    def start_listening(
        self,
        make_argv: Callable[[int], Sequence[str]],
        *,
        name: str,
        attempts: int = 5,
        **kwargs: object,
    ) -> tuple[PeerProcess, int]:
        """Start a peer that takes a port number; retry on a new port if it cannot listen."""
        failures = []
        for _ in range(attempts):
            port = free_port()
            proc = self.start(make_argv(port), name=name, **kwargs)
            if proc.wait_listening(port):
                return proc, port
            proc.stop()
            failures.append(proc.output())
            if not re.search(r"in use|bind|listen", proc.output(), re.IGNORECASE):
                break  # not the port race: do not hide the real problem
        pytest.fail(f"{name} could not listen on a free port:\n" + "\n".join(failures), False)

    def stop_all(self) -> None:
        for proc in self.processes:  # all at once: Orthanc alone takes seconds to stop
            proc.terminate()
        for proc in reversed(self.processes):
            proc.stop()

    def output(self) -> str:
        return "\n".join(proc.output() for proc in self.processes)


def run_client(
    argv: Sequence[str],
    *,
    timeout: float = CLIENT_TIMEOUT,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a one-shot peer (echoscu, a script) to completion; fail with its output on timeout."""
    argv = [str(a) for a in argv]
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else peer_env(),
            cwd=cwd,
            input=stdin,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
        pytest.fail(
            f"{' '.join(argv)} did not finish within {timeout} s\n"
            f"stdout:\n{exc.stdout}\nstderr:\n{exc.stderr}",
            False,
        )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """A completed client's command, exit code and output, for assertion messages."""
    args = result.args if isinstance(result.args, str) else " ".join(map(str, result.args))
    return (
        f"--- {args} (exit {result.returncode})\n--- stdout:\n{result.stdout}\n"
        f"--- stderr:\n{result.stderr}"
    )


# -- TLS material -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A private CA and a server and a client certificate signed by it (PEM files)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: what made them: "cryptography" or "openssl"
    made_with: str

    def server_context(self) -> ssl.SSLContext:
        """Server side: our certificate, and a client certificate from our CA required."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_cert))
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """Client side: the server checked against our CA (host name ``localhost``)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_cert))
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


#: the host name in the server certificate (also valid: IP 127.0.0.1)
TLS_HOSTNAME = "localhost"


def make_tls_files(directory: Path, *, use: str | None = None) -> TlsFiles:
    """Make a CA, a server and a client certificate in ``directory``.

    With the ``cryptography`` package when it is installed, else with the
    ``openssl`` command (``use`` forces one). RSA 2048 and SHA-256: DCMTK's
    default BCP 195 profile negotiates ECDHE-RSA suites only.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if use is None:
        try:
            import cryptography  # noqa: F401
        except ImportError:
            use = "openssl"
        else:
            use = "cryptography"
    if use == "cryptography":
        return _make_with_cryptography(directory)
    if _which("openssl") is None:
        peer_missing(
            "neither the `cryptography` package nor the `openssl` command is available to make "
            "TLS certificates",
            "`pip install cryptography` or `apt-get install openssl`",
        )
    return _make_with_openssl(directory)


def _files(directory: Path, made_with: str) -> TlsFiles:
    return TlsFiles(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        made_with=made_with,
    )


def _make_with_cryptography(directory: Path) -> TlsFiles:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    files = _files(directory, "cryptography")
    now = datetime.datetime.now(datetime.timezone.utc)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dicomnet interop tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    def write_key(path: Path, private: rsa.RSAPrivateKey) -> None:
        path.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )

    ca_key = key()
    ca_name = name("dicomnet test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    # Both leaf certificates allow both uses: a DICOM node is client and server
    # alike, and Orthanc presents its one certificate in both roles.
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    for cert_path, key_path, common_name, is_server in (
        (files.server_cert, files.server_key, TLS_HOSTNAME, True),
        (files.client_cert, files.client_key, "dicomnet-client", False),
    ):
        leaf_key = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if is_server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(TLS_HOSTNAME),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_path, leaf_key)
    return files


def _make_with_openssl(directory: Path) -> TlsFiles:
    files = _files(directory, "openssl")

    def openssl(*args: str | Path) -> None:
        result = subprocess.run(
            ["openssl", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"openssl {' '.join(map(str, args))} failed:\n{result.stderr}", False)

    subj = "/O=dicomnet interop tests/CN="
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-keyout", files.ca_cert.with_suffix(".key"), "-out", files.ca_cert,
        "-subj", subj + "dicomnet test CA",
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    for cert, key, common_name, extensions in (
        (
            files.server_cert,
            files.server_key,
            TLS_HOSTNAME,
            f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName=DNS:{TLS_HOSTNAME},IP:127.0.0.1\n",
        ),
        (
            files.client_cert,
            files.client_key,
            "dicomnet-client",
            "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n",
        ),
    ):
        csr = cert.with_suffix(".csr")
        ext = cert.with_suffix(".ext")
        ext.write_text(extensions)
        openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", subj + common_name,
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", csr, "-CA", files.ca_cert,
            "-CAkey", files.ca_cert.with_suffix(".key"), "-CAcreateserial", "-sha256",
            "-days", "2", "-out", cert, "-extfile", ext,
        )  # fmt: skip
        # DCMTK reads traditional and PKCS#8 keys alike; Python's ssl too.
    return files


# -- Orthanc ----------------------------------------------------------------------------------


class Orthanc:
    """An Orthanc on free ports with its storage in a temporary folder; driven over REST.

    ``config`` is merged into the configuration file written for it (for
    instance ``{"RleTransferSyntaxAccepted": False}``). Orthanc takes seconds
    to stop: tests share one per configuration per module.
    """

    AET = "ORTHANC"

    def __init__(
        self,
        peers: PeerGroup,
        binary: str,
        tmp_path: Path,
        tls: TlsFiles | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.http_port = 0

        def argv(dicom_port: int) -> list[str]:
            self.http_port = free_port()
            settings: dict[str, Any] = {
                "Name": "dicomnet-interop",
                "DicomAet": self.AET,
                "DicomPort": dicom_port,
                "HttpPort": self.http_port,
                "RemoteAccessAllowed": False,
                "AuthenticationEnabled": False,
                "StorageDirectory": str(tmp_path / "storage"),
                "IndexDirectory": str(tmp_path / "index"),
                "Plugins": [],
                "DicomCheckCalledAet": True,
                "DicomAlwaysAllowEcho": True,
                "DicomScuTimeout": 10,
                "DicomModalities": {},
            }
            if tls is not None:
                settings.update(
                    {
                        "DicomTlsEnabled": True,
                        "DicomTlsCertificate": str(tls.server_cert),
                        "DicomTlsPrivateKey": str(tls.server_key),
                        "DicomTlsTrustedCertificates": str(tls.ca_cert),
                        "DicomTlsRemoteCertificateRequired": True,
                    }
                )
            settings.update(config or {})
            path = tmp_path / f"orthanc-{dicom_port}.json"
            path.write_text(json.dumps(settings, indent=2))
            return [binary, "--no-jobs", str(path)]

        self.proc, self.dicom_port = peers.start_listening(argv, name="Orthanc", cwd=tmp_path)
        assert self.proc.wait_listening(self.http_port), self.proc.output()

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def rest(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A REST call; the answer decoded from JSON (as text if it is not JSON)."""
        code, raw = self._request(method, path, body)
        if not raw.strip():
            return code, None
        try:
            return code, json.loads(raw)
        except ValueError:
            return code, raw.decode(errors="replace")

    def download(self, path: str) -> bytes:
        """``GET path`` as bytes (``/instances/{id}/file``: the stored DICOM file)."""
        code, raw = self._request("GET", path)
        if code != 200:
            pytest.fail(f"Orthanc answered {code} to GET {path}: {raw[:200]!r}", False)
        return raw

    def stored_files(self) -> dict[str, bytes]:
        """Every instance Orthanc holds: its SOP Instance UID -> the stored Part 10 file."""
        code, ids = self.rest("GET", "/instances")
        assert code == 200, ids
        files = {}
        for orthanc_id in ids:
            code, tags = self.rest("GET", f"/instances/{orthanc_id}/simplified-tags")
            assert code == 200, tags
            files[tags["SOPInstanceUID"]] = self.download(f"/instances/{orthanc_id}/file")
        return files

    def clear(self) -> None:
        """Delete every instance (tests sharing one Orthanc start from an empty one)."""
        code, ids = self.rest("GET", "/instances")
        assert code == 200, ids
        for orthanc_id in ids:
            self.rest("DELETE", f"/instances/{orthanc_id}")


# -- fixtures (re-exported by the conftest files) ---------------------------------------------


@pytest.fixture(scope="session")
def dcmtk() -> Dcmtk:
    """DCMTK's tools; skips (fails under DICOMNET_REQUIRE_PEERS=1) when missing."""
    return find_dcmtk()


@pytest.fixture(scope="session")
def dcmtk_tls(dcmtk: Dcmtk) -> Dcmtk:
    """DCMTK built with OpenSSL (``+tls`` options)."""
    if not dcmtk.has_tls:
        peer_missing(
            "this DCMTK build has no OpenSSL (`echoscu --version` lists no OpenSSL), so no TLS",
            "install a DCMTK built with OpenSSL (Debian's `dcmtk` package is)",
        )
    return dcmtk


@pytest.fixture(scope="session")
def orthanc_binary() -> str:
    return find_orthanc()[0]


@pytest.fixture(scope="session")
def pynetdicom_python() -> str:
    """The python of the pynetdicom 3.0.4 venv."""
    return find_pynetdicom_python()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and server/client certificates for mutual TLS, made once per session."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


PEER_GROUP_KEY = pytest.StashKey[list[PeerProcess]]()


def watch(item: pytest.Item, proc: PeerProcess) -> None:
    """Attach ``proc``'s output to ``item``'s report if the test fails."""
    item.stash.setdefault(PEER_GROUP_KEY, []).append(proc)


@pytest.fixture
def peers(request: pytest.FixtureRequest) -> Iterator[PeerGroup]:
    """Start peer subprocesses; all are stopped at teardown, their output kept for failures."""
    group = PeerGroup(request.node)
    try:
        yield group
    finally:
        group.stop_all()


def attach_peer_output(item: pytest.Item, report: pytest.TestReport) -> None:
    """Add every watched peer's output to a failed test's report (from the conftest hooks)."""
    if not report.failed:
        return
    for proc in item.stash.get(PEER_GROUP_KEY, []):
        report.sections.append((f"peer output: {proc.name}", proc.output()))


def python_runner(
    module_path: str | Path, *args: str | int, python: str | None = None
) -> list[str]:
    """The argv running a script with ``python`` (default: ours), unbuffered."""
    return [python or sys.executable, "-u", str(module_path), *map(str, args)]
