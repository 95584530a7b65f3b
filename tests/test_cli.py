"""The ``dicomnet`` command line against an in-process dicomnet SCP on a free port.

Most tests drive the click group in-process with :class:`click.testing.CliRunner`;
a few run the installed console script (and ``python -m``) in a subprocess,
since that is what users run. Servers come from conftest's ``make_scp``, which
shuts them down; the ``leakcheck`` marker fails a test that leaves a thread or
a file descriptor behind.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dicomnet import evt
from dicomnet.contrib._cli_common import ExitStatus
from dicomnet.contrib.cli import main
from dicomnet.sop_class import CTImageStorage, Verification

pytestmark = pytest.mark.leakcheck  # no thread or descriptor may outlive a test (conftest)


class EchoSCP:
    """Verification SCPs on 127.0.0.1 and free ports, recording the C-ECHOs they serve."""

    def __init__(self, make_scp: Any) -> None:
        self.make_scp = make_scp
        self.echoes: list[dict[str, Any]] = []
        self.associations = 0

    def start(
        self,
        *,
        ae_title: str = "ANY-SCP",
        status: int = 0x0000,
        abort: bool = False,
        require_called_aet: bool = False,
        contexts: Sequence[str] = (Verification,),
        ssl_context: ssl.SSLContext | None = None,
    ) -> int:
        def on_echo(event: Any) -> int:
            self.echoes.append(
                {
                    "calling": event.assoc.requestor.ae_title,
                    "max_pdu": event.assoc.requestor.maximum_length,
                    "message_id": event.request.MessageID,
                    "log_level": logging.getLogger("dicomnet.dimse").getEffectiveLevel(),
                }
            )
            if abort:
                event.assoc.abort()
            return status

        def on_established(event: Any) -> None:
            self.associations += 1

        started = self.make_scp(
            ae_title,
            contexts=contexts,
            handlers=[(evt.EVT_C_ECHO, on_echo), (evt.EVT_ESTABLISHED, on_established)],
            ssl_context=ssl_context,
            require_called_aet=require_called_aet,
        )
        return int(started.port)


@pytest.fixture
def scp(make_scp: Any) -> EchoSCP:
    """Shadows conftest's ``scp``: started on demand, with options, shut down by ``make_scp``."""
    return EchoSCP(make_scp)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str | int) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


# -- success and the exit statuses ------------------------------------------------------------


def test_echo_success_exits_0_and_prints_nothing(scp: EchoSCP) -> None:
    port = scp.start()
    result = run("echo", "127.0.0.1", port)
    assert result.exit_code == ExitStatus.SUCCESS == 0, result.output
    assert result.stdout == ""
    assert result.stderr == ""
    assert len(scp.echoes) == 1


def test_failure_status_exits_1(scp: EchoSCP) -> None:
    port = scp.start(status=0x0122)
    result = run("echo", "127.0.0.1", port)
    assert result.exit_code == ExitStatus.FAILURE == 1
    assert "0x0122" in result.stderr and "Failure" in result.stderr
    assert result.stdout == ""


def test_peer_aborting_during_the_echo_exits_1(scp: EchoSCP) -> None:
    port = scp.start(abort=True)
    result = run("echo", "--timeout", 5, "127.0.0.1", port)
    assert result.exit_code == 1
    assert "no valid response" in result.stderr


def test_verification_not_accepted_exits_1(scp: EchoSCP) -> None:
    port = scp.start(contexts=[CTImageStorage])
    result = run("echo", "127.0.0.1", port)
    assert result.exit_code == 1
    assert "not the Verification SOP Class" in result.stderr
    assert scp.echoes == []


def test_rejected_association_exits_2(scp: EchoSCP) -> None:
    port = scp.start(ae_title="STORE-SCP", require_called_aet=True)
    result = run("echo", "--aec", "SOMEONE-ELSE", "127.0.0.1", port)
    assert result.exit_code == ExitStatus.NO_ASSOCIATION == 2
    assert "rejected" in result.stderr
    assert "called-AE-title-not-recognized" in result.stderr
    assert scp.echoes == []
    # the right called AE title is accepted
    assert run("echo", "--aec", "STORE-SCP", "127.0.0.1", port).exit_code == 0


def test_nothing_listening_exits_2() -> None:
    result = run("echo", "127.0.0.1", free_port())
    assert result.exit_code == 2
    assert "No association" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["echo"],
        ["echo", "127.0.0.1"],
        ["echo", "127.0.0.1", "not-a-port"],
        ["echo", "127.0.0.1", "0"],
        ["echo", "127.0.0.1", "104", "--repeat", "0"],
        ["echo", "127.0.0.1", "104", "--timeout", "0"],
        ["echo", "127.0.0.1", "104", "--max-pdu", "6"],
        ["echo", "127.0.0.1", "104", "--aet", "WAY-TOO-LONG-AE-TITLE"],
        ["echo", "127.0.0.1", "104", "--aec", "BACK\\SLASH"],
        ["echo", "127.0.0.1", "104", "--no-such-option"],
        ["no-such-command"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr or "Error" in result.stderr
    assert result.stdout == ""


def test_repeat_sends_n_echoes_on_one_association(scp: EchoSCP) -> None:
    port = scp.start()
    result = run("echo", "--repeat", 4, "-v", "127.0.0.1", port)
    assert result.exit_code == 0, result.stderr
    assert [e["message_id"] for e in scp.echoes] == [1, 2, 3, 4]
    assert scp.associations == 1
    assert "Echo 4 of 4: Success" in result.stderr
    assert "4 of 4 echoes succeeded" in result.stderr


def test_repeat_stops_at_the_first_failure(scp: EchoSCP) -> None:
    port = scp.start(status=0x0211)
    result = run("echo", "--repeat", 3, "127.0.0.1", port)
    assert result.exit_code == 1
    assert len(scp.echoes) == 1


def test_interrupt_aborts_and_exits_130(scp: EchoSCP, monkeypatch: pytest.MonkeyPatch) -> None:
    from dicomnet.association import Association

    def interrupted(self: Association, msg_id: int = 1) -> Any:
        raise KeyboardInterrupt

    port = scp.start()
    monkeypatch.setattr(Association, "send_c_echo", interrupted)
    result = run("echo", "127.0.0.1", port)
    assert result.exit_code == ExitStatus.INTERRUPTED == 130
    assert "Interrupted" in result.stderr
    assert scp.associations == 1


def test_aet_and_max_pdu_reach_the_peer(scp: EchoSCP) -> None:
    port = scp.start()
    result = run("echo", "--aet", "MY-SCU", "--max-pdu", 32768, "127.0.0.1", port)
    assert result.exit_code == 0
    assert scp.echoes[0]["calling"] == "MY-SCU"
    assert scp.echoes[0]["max_pdu"] == 32768


@pytest.mark.parametrize(
    ("flags", "level"),
    [([], logging.WARNING), (["-v"], logging.INFO), (["--debug"], logging.DEBUG)],
)
def test_verbosity_sets_the_log_level_for_the_command_only(
    scp: EchoSCP, flags: list[str], level: int
) -> None:
    port = scp.start()
    logger = logging.getLogger("dicomnet")
    handlers, previous = list(logger.handlers), logger.level
    result = run("echo", *flags, "127.0.0.1", port)
    assert result.exit_code == 0
    # the in-process SCP logs through the same loggers: it saw the command's level
    assert scp.echoes[0]["log_level"] == level
    assert logger.handlers == handlers and logger.level == previous
    if level <= logging.INFO:
        assert "I: Echo 1 of 1: Success" in result.stderr
    else:
        assert result.stderr == ""


def test_version_and_help() -> None:
    assert run("--version").stdout.startswith("dicomnet, version ")
    result = run("echo", "--help")
    assert result.exit_code == 0
    for option in ("--aet", "--aec", "--repeat", "--timeout", "--max-pdu", "--tls-ca", "-v", "-d"):
        assert option in result.stdout


# -- TLS --------------------------------------------------------------------------------------


class PKI:
    """A CA, a server certificate for localhost and 127.0.0.1, and a client certificate."""

    def __init__(self, directory: Path, generator: str) -> None:
        self.dir = directory
        if generator == "cryptography":
            _make_pki_with_cryptography(directory)
        else:
            _make_pki_with_openssl(directory)

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def server_context(self, *, require_client_cert: bool = True) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.path("server.pem"), self.path("server.key"))
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.path("ca.pem"))
        return context


def _make_pki_with_cryptography(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def write(stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        (directory / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def build(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        issuer_key: ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
        san: list[x509.GeneralName] | None = None,
        usage: Any = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
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
            ).add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    for stem, ca_name in (("ca", "dicomnet test CA"), ("other-ca", "another test CA")):
        key = ec.generate_private_key(ec.SECP256R1())
        write(stem, key, build(ca_name, key, ca_name, key, ca=True))
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    server_key = ec.generate_private_key(ec.SECP256R1())
    san: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    write(
        "server",
        server_key,
        build(
            "localhost", server_key, "dicomnet test CA", ca_key,
            ca=False, san=san, usage=ExtendedKeyUsageOID.SERVER_AUTH,
        ),
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    write(
        "client",
        client_key,
        build(
            "DICOMNET", client_key, "dicomnet test CA", ca_key,
            ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
    )


def _make_pki_with_openssl(directory: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for stem, ca_name in (("ca", "dicomnet test CA"), ("other-ca", "another test CA")):
        openssl(
            "req", "-x509", *curve, "-keyout", f"{stem}.key", "-out", f"{stem}.pem",
            "-days", "2", "-subj", f"/CN={ca_name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth\n"
    )
    (directory / "client.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n"
    )
    for stem, cn in (("server", "localhost"), ("client", "DICOMNET")):
        openssl(
            "req", *curve, "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={cn}",
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{stem}.pem", "-days", "2", "-sha256",
            "-extfile", f"{stem}.ext",
        )  # fmt: skip


def _generators() -> list[Any]:
    params = []
    for generator in ("cryptography", "openssl"):
        if generator == "cryptography":
            try:
                import cryptography  # noqa: F401

                available = True
            except ImportError:
                available = False
        else:
            available = shutil.which("openssl") is not None
        params.append(
            pytest.param(
                generator,
                marks=pytest.mark.skipif(not available, reason=f"{generator} is not available"),
            )
        )
    return params


@pytest.fixture(scope="module", params=_generators())
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp(f"pki-{request.param}"), request.param)


def test_tls_with_client_certificate(scp: EchoSCP, pki: PKI) -> None:
    port = scp.start(ssl_context=pki.server_context())
    result = run(
        "echo", "--tls-ca", pki.path("ca.pem"),
        "--tls-cert", pki.path("client.pem"), "--tls-key", pki.path("client.key"),
        "127.0.0.1", port,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(scp.echoes) == 1


@pytest.mark.parametrize(
    ("hostname", "status"), [("localhost", 0), ("127.0.0.1", 0), ("pacs.example.org", 2)]
)
def test_tls_hostname_is_checked_only_when_given(
    scp: EchoSCP, pki: PKI, hostname: str, status: int
) -> None:
    port = scp.start(ssl_context=pki.server_context(require_client_cert=False))
    without = run("echo", "--tls-ca", pki.path("ca.pem"), "127.0.0.1", port)
    assert without.exit_code == 0, without.stderr
    result = run(
        "echo", "--tls-ca", pki.path("ca.pem"), "--tls-hostname", hostname, "127.0.0.1", port
    )
    assert result.exit_code == status, result.stderr


def test_tls_server_signed_by_another_ca_exits_2(scp: EchoSCP, pki: PKI) -> None:
    port = scp.start(ssl_context=pki.server_context(require_client_cert=False))
    result = run("echo", "--tls-ca", pki.path("other-ca.pem"), "127.0.0.1", port)
    assert result.exit_code == 2
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr or "certificate" in result.stderr
    assert scp.echoes == []
    insecure = run("echo", "--tls-no-verify", "127.0.0.1", port)
    assert insecure.exit_code == 0, insecure.stderr


def test_tls_without_the_required_client_certificate_exits_2(scp: EchoSCP, pki: PKI) -> None:
    port = scp.start(ssl_context=pki.server_context(require_client_cert=True))
    result = run("echo", "--tls-ca", pki.path("ca.pem"), "--timeout", 5, "127.0.0.1", port)
    assert result.exit_code == 2
    assert scp.echoes == []


def test_plain_client_to_a_tls_server_exits_2(scp: EchoSCP, pki: PKI) -> None:
    port = scp.start(ssl_context=pki.server_context(require_client_cert=False))
    result = run("echo", "--timeout", 2, "127.0.0.1", port)
    assert result.exit_code == 2


@pytest.mark.parametrize(
    "make_args",
    [
        lambda p: ["--tls-key", p.path("client.key")],
        lambda p: ["--tls-no-verify", "--tls-ca", p.path("ca.pem")],
        lambda p: ["--tls-ca", p.path("no-such-file.pem")],
        lambda p: ["--tls-ca", p.path("client.key")],
        lambda p: ["--tls-cert", p.path("ca.pem"), "--tls-key", p.path("client.key")],
    ],
    ids=["key-without-cert", "no-verify-with-ca", "missing-file", "not-a-ca", "key-mismatch"],
)
def test_tls_usage_errors_exit_2(pki: PKI, make_args: Callable[[PKI], list[str]]) -> None:
    result = run("echo", *make_args(pki), "127.0.0.1", free_port())
    assert result.exit_code == 2
    assert "Error" in result.stderr


# -- the installed console script -------------------------------------------------------------


def console_script() -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "dicomnet", scripts / "dicomnet.exe"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("dicomnet")
    if found is None:
        pytest.fail("the dicomnet console script is not installed (pip install -e .)")
    return found


def test_console_script_echo(scp: EchoSCP) -> None:
    port = scp.start(status=0x0000)
    done = subprocess.run(
        [console_script(), "echo", "-v", "--repeat", "2", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "Echo 2 of 2: Success" in done.stderr
    assert len(scp.echoes) == 2


def test_console_script_exit_statuses(scp: EchoSCP) -> None:
    failing = scp.start(status=0x0122)
    refused = subprocess.run(
        [console_script(), "echo", "127.0.0.1", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "No association" in refused.stderr
    failed = subprocess.run(
        [sys.executable, "-m", "dicomnet.contrib.cli", "echo", "127.0.0.1", str(failing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1, failed.stderr
    assert "0x0122" in failed.stderr
    assert failed.stdout == ""


# -- the examples of docs/cli.md --------------------------------------------------------------

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def documented_commands() -> list[list[str]]:
    """The ``$ dicomnet ...`` lines of the console examples in docs/cli.md, split."""
    commands = []
    for line in CLI_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("$ dicomnet "):
            commands.append(shlex.split(line[2:])[1:])
    return commands


def test_the_documentation_has_examples() -> None:
    commands = documented_commands()
    assert len(commands) >= 6
    assert any("--tls-cert" in c for c in commands)


@pytest.mark.parametrize("args", documented_commands(), ids=" ".join)
def test_documented_example_runs(scp: EchoSCP, pki: PKI, args: list[str]) -> None:
    """Each example, with the documented peer replaced by SCPs on this machine."""
    ports = {
        "11112": str(scp.start(ae_title="PACS")),
        "2762": str(
            scp.start(
                ae_title="PACS",
                ssl_context=pki.server_context(require_client_cert="--tls-cert" in args),
            )
        ),
    }
    files = {"ca.pem": "ca.pem", "me.pem": "client.pem", "me.key": "client.key"}
    local = []
    for i, arg in enumerate(args):
        if arg in files:
            local.append(pki.path(files[arg]))
        elif arg == "pacs.example.org":
            local.append("localhost" if args[i - 1] == "--tls-hostname" else "127.0.0.1")
        elif arg in ports and i == len(args) - 1:
            local.append(ports[arg])
        else:
            local.append(arg)
    result = run(*local)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" or "--help" in args
