"""Associations and C-ECHO with real peers, over TCP and TLS (PS3.7 9.1.5, PS3.8 7, PS3.15 B.1).

Each direction against each reference peer:

* DCMTK ``echoscu`` -> dicomnet SCP; dicomnet SCU -> DCMTK ``storescp``;
  ``dicomnet echo`` (the CLI) -> ``storescp``;
* pynetdicom 3.0.4 SCU -> dicomnet SCP; dicomnet SCU -> pynetdicom SCP;
* dicomnet SCU -> Orthanc; Orthanc (REST ``/modalities/{id}/echo``) -> dicomnet SCP;

each over plain TCP and over mutual TLS with certificates made for the
session. Around them, the association outcomes a peer can observe:
rejection of a wrong called AE title, rejection of an unsupported abstract
syntax, A-ABORT in both directions, a plain client refused by a TLS server.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dicomnet import AE, evt
from dicomnet.sop_class import Verification
from tests.interop.peers import (
    TLS_HOSTNAME,
    Dcmtk,
    Orthanc,
    PeerGroup,
    TlsFiles,
    describe,
    python_runner,
    run_client,
    watch,
)

pytestmark = pytest.mark.interop

SCRIPTS = Path(__file__).parent / "scripts"
REPO = Path(__file__).resolve().parents[2]
SCP_AET = "DICOMNET-SCP"
SCU_AET = "DICOMNET-SCU"
#: DCMTK's implementation class UID root (PS3.7 D.3.3.2 lets anyone pick; DCMTK's is fixed)
DCMTK_UID_ROOT = "1.2.276.0.7230010.3"


# -- a dicomnet SCP that records what it served ----------------------------------------------


class RecordingSCP:
    """A dicomnet Verification SCP on a free loopback port, recording each association."""

    def __init__(
        self, *, ssl_context: Any = None, require_called_aet: bool = False, ae_title: str = SCP_AET
    ) -> None:
        self.echoes: list[dict[str, Any]] = []
        self.aborted = threading.Event()
        self.released = threading.Event()
        self.ae = AE(ae_title)
        self.ae.add_supported_context(Verification)
        self.ae.require_called_aet = require_called_aet
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = 10
        self.server = self.ae.start_server(
            ("127.0.0.1", 0),
            block=False,
            ssl_context=ssl_context,
            evt_handlers=[
                (evt.EVT_C_ECHO, self._on_echo),
                (evt.EVT_ABORTED, lambda event: self.aborted.set()),
                (evt.EVT_RELEASED, lambda event: self.released.set()),
            ],
        )
        assert self.server is not None
        self.port: int = self.server.server_address[1]

    def _on_echo(self, event: Any) -> int:
        assoc = event.assoc
        self.echoes.append(
            {
                "calling": assoc.requestor.ae_title,
                "called": assoc.acceptor.ae_title,
                "abstract_syntax": str(event.context.abstract_syntax),
                "message_id": event.request.MessageID,
                "implementation_class_uid": str(assoc.requestor.implementation_class_uid),
            }
        )
        return 0x0000

    def close(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.ae.shutdown()


@pytest.fixture(params=[False, True], ids=["tcp", "tls"])
def tls(request: pytest.FixtureRequest) -> TlsFiles | None:
    """``None`` for plain TCP, else the session's TLS files."""
    if not request.param:
        return None
    files: TlsFiles = request.getfixturevalue("tls_files")
    return files


@pytest.fixture
def scp_factory() -> Iterator[Any]:
    made: list[RecordingSCP] = []

    def make(**kwargs: Any) -> RecordingSCP:
        scp = RecordingSCP(**kwargs)
        made.append(scp)
        return scp

    yield make
    for scp in made:
        scp.close()


def dicomnet_scu(ae_title: str = SCU_AET) -> AE:
    ae = AE(ae_title)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.connection_timeout = 10
    return ae


def tls_args(tls: TlsFiles | None) -> tuple[Any, str] | None:
    return None if tls is None else (tls.client_context(), TLS_HOSTNAME)


def dcmtk_client_tls(tls: TlsFiles | None) -> list[str]:
    """echoscu's TLS options: our key and certificate, the CA to check the server with."""
    if tls is None:
        return []
    return ["+tls", str(tls.client_key), str(tls.client_cert), "+cf", str(tls.ca_cert)]


def dcmtk_server_tls(tls: TlsFiles | None) -> list[str]:
    """storescp's TLS options; a client certificate is required (DCMTK's default)."""
    if tls is None:
        return []
    return ["+tls", str(tls.server_key), str(tls.server_cert), "+cf", str(tls.ca_cert)]


def tls_peer(request: pytest.FixtureRequest, tls: TlsFiles | None) -> Dcmtk:
    """DCMTK, with OpenSSL when the test runs over TLS."""
    name = "dcmtk_tls" if tls is not None else "dcmtk"
    dcmtk: Dcmtk = request.getfixturevalue(name)
    return dcmtk


# -- DCMTK ------------------------------------------------------------------------------------


def test_echoscu_to_dicomnet_scp(
    request: pytest.FixtureRequest, tls: TlsFiles | None, scp_factory: Any
) -> None:
    dcmtk = tls_peer(request, tls)
    scp = scp_factory(ssl_context=tls.server_context() if tls else None)
    result = run_client(
        [
            dcmtk.tool("echoscu"), "-v", "-aet", "ECHOSCU-DCMTK", "-aec", SCP_AET,
            *dcmtk_client_tls(tls), "127.0.0.1", scp.port,
        ]
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert "Received Echo Response (Success)" in result.stdout + result.stderr, describe(result)
    assert len(scp.echoes) == 1, describe(result)
    echo = scp.echoes[0]
    assert echo["calling"] == "ECHOSCU-DCMTK"
    assert echo["called"] == SCP_AET
    assert echo["abstract_syntax"] == Verification
    assert echo["implementation_class_uid"].startswith(DCMTK_UID_ROOT)
    assert scp.released.wait(5), "EVT_RELEASED never fired after echoscu released"


def test_echoscu_rejected_for_wrong_called_ae_title(dcmtk: Dcmtk, scp_factory: Any) -> None:
    scp = scp_factory(require_called_aet=True)
    result = run_client(
        [dcmtk.tool("echoscu"), "-v", "-aec", "SOMEONE-ELSE", "127.0.0.1", scp.port]
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, describe(result)
    # PS3.8 Table 9-21: rejected-permanent, service-user, called AE title not recognized
    assert "Association Rejected" in output, describe(result)
    assert "Called AE Title Not Recognized" in output, describe(result)
    assert scp.echoes == []


def test_echoscu_abort_is_seen_by_dicomnet_scp(dcmtk: Dcmtk, scp_factory: Any) -> None:
    scp = scp_factory()
    result = run_client([dcmtk.tool("echoscu"), "--abort", "127.0.0.1", scp.port])
    assert result.returncode == 0, describe(result)
    assert len(scp.echoes) == 1
    assert scp.aborted.wait(5), "EVT_ABORTED never fired after echoscu's A-ABORT"
    assert not scp.released.is_set()


def test_plain_echoscu_refused_by_tls_scp(
    dcmtk: Dcmtk, tls_files: TlsFiles, scp_factory: Any
) -> None:
    scp = scp_factory(ssl_context=tls_files.server_context())
    result = run_client([dcmtk.tool("echoscu"), "-to", "3", "-ta", "3", "127.0.0.1", scp.port])
    assert result.returncode != 0, describe(result)
    assert scp.echoes == []


def test_failed_tls_handshake_closes_the_connection(
    tls_files: TlsFiles, scp_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # caplog keeps the log record of the failure, and with it the exception
    # (the condition in which the server once left such connections open)
    caplog.set_level("ERROR", logger="dicomnet")
    scp = scp_factory(ssl_context=tls_files.server_context())
    with socket.create_connection(("127.0.0.1", scp.port), timeout=5) as sock:
        sock.sendall(b"\x01\x00\x00\x00\x00\x44" + bytes(68))  # a plaintext A-ASSOCIATE-RQ
        sock.settimeout(3)
        closed = False
        try:  # a TLS alert may come first; then the end of the stream must follow
            while not closed:
                closed = not sock.recv(4096)
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass
    assert closed, "the TLS server kept the connection open after a failed handshake"


def start_storescp(
    peers: PeerGroup, dcmtk: Dcmtk, tmp_path: Path, tls: TlsFiles | None = None
) -> int:
    """A DCMTK storescp (single process, no fork) with AE title STORESCP; returns its port."""
    tool = dcmtk.tool("storescp")
    _, port = peers.start_listening(
        lambda port: [
            tool, "-v", "-aet", "STORESCP", "-od", str(tmp_path), *dcmtk_server_tls(tls), str(port)
        ],
        name="storescp",
        cwd=tmp_path,
    )  # fmt: skip
    return port


def test_dicomnet_scu_to_storescp(
    request: pytest.FixtureRequest, tls: TlsFiles | None, peers: PeerGroup, tmp_path: Path
) -> None:
    dcmtk = tls_peer(request, tls)
    port = start_storescp(peers, dcmtk, tmp_path, tls)
    ae = dicomnet_scu()
    assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP", tls_args=tls_args(tls))
    assert assoc.is_established
    assert str(assoc.acceptor.implementation_class_uid).startswith(DCMTK_UID_ROOT)
    assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [Verification]
    status = assoc.send_c_echo()
    assert status and status.Status == 0x0000
    assoc.release()
    assert assoc.is_released and not assoc.is_aborted
    # storescp is single-process: a second association proves it saw a clean release
    again = ae.associate("127.0.0.1", port, ae_title="STORESCP", tls_args=tls_args(tls))
    assert again.is_established
    assert again.send_c_echo().Status == 0x0000
    again.release()
    assert again.is_released


def test_dicomnet_abort_then_storescp_serves_again(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path
) -> None:
    port = start_storescp(peers, dcmtk, tmp_path)
    ae = dicomnet_scu()
    assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP")
    assert assoc.is_established
    assoc.abort()
    assert assoc.is_aborted and not assoc.is_established
    again = ae.associate("127.0.0.1", port, ae_title="STORESCP")
    assert again.is_established
    assert again.send_c_echo().Status == 0x0000
    again.release()
    assert again.is_released


def test_storescp_rejects_unknown_abstract_syntax(
    dcmtk: Dcmtk, peers: PeerGroup, tmp_path: Path
) -> None:
    port = start_storescp(peers, dcmtk, tmp_path)
    ae = dicomnet_scu()
    private = "1.2.826.0.1.3680043.9.7133.1.1"  # a SOP class storescp does not know
    ae.add_requested_context(private)
    assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP")
    assert assoc.is_established
    assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [Verification]
    rejected = assoc.rejected_contexts
    assert [(str(cx.abstract_syntax), cx.result) for cx in rejected] == [(private, 3)]
    assoc.release()


CLI = REPO / "contrib" / "cli.py"
needs_cli = pytest.mark.skipif(not CLI.exists(), reason="dicomnet echo CLI not yet available")


def dicomnet_echo(*args: str | int) -> list[str]:
    """The argv of ``dicomnet echo ...`` with our python (what the console script runs)."""
    return [sys.executable, "-m", "dicomnet.contrib.cli", "echo", *map(str, args)]


def cli_tls(tls: TlsFiles | None) -> list[str]:
    if tls is None:
        return []
    return [
        "--tls-ca", str(tls.ca_cert), "--tls-cert", str(tls.client_cert),
        "--tls-key", str(tls.client_key), "--tls-hostname", TLS_HOSTNAME,
    ]  # fmt: skip


@needs_cli
def test_cli_echo_to_storescp(
    request: pytest.FixtureRequest, tls: TlsFiles | None, peers: PeerGroup, tmp_path: Path
) -> None:
    dcmtk = tls_peer(request, tls)
    port = start_storescp(peers, dcmtk, tmp_path, tls)
    result = run_client(
        dicomnet_echo("--aec", "STORESCP", "--repeat", 3, "--timeout", 10, *cli_tls(tls),
                      "127.0.0.1", port)
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    # storescp stays single-process: it must be free for the next association
    assert peers.processes[0].returncode is None
    again = run_client(dicomnet_echo("--aec", "STORESCP", *cli_tls(tls), "127.0.0.1", port))
    assert again.returncode == 0, describe(again)


@needs_cli
def test_cli_echo_to_tls_storescp_without_client_certificate(
    dcmtk_tls: Dcmtk, tls_files: TlsFiles, peers: PeerGroup, tmp_path: Path
) -> None:
    """storescp requires a client certificate (DCMTK's default): no association (exit 2)."""
    port = start_storescp(peers, dcmtk_tls, tmp_path, tls_files)
    result = run_client(
        dicomnet_echo("--timeout", 10, "--tls-ca", tls_files.ca_cert, "127.0.0.1", port)
    )
    assert result.returncode == 2, describe(result)


# -- pynetdicom -------------------------------------------------------------------------------


def test_pynetdicom_scu_to_dicomnet_scp(
    pynetdicom_python: str, tls: TlsFiles | None, scp_factory: Any
) -> None:
    scp = scp_factory(ssl_context=tls.server_context() if tls else None)
    tls_argv = [] if tls is None else [tls.ca_cert, tls.client_cert, tls.client_key]
    result = run_client(
        python_runner(
            SCRIPTS / "pynetdicom_echo_scu.py",
            "127.0.0.1", scp.port, SCP_AET, "PYNETDICOM-SCU", *map(str, tls_argv),
            python=pynetdicom_python,
        )
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip() == "status 0x0000", describe(result)
    assert [e["calling"] for e in scp.echoes] == ["PYNETDICOM-SCU"]
    assert scp.echoes[0]["implementation_class_uid"].startswith("1.2.826.0.1.3680043.9.3811")
    assert scp.released.wait(5)


def test_dicomnet_scu_to_pynetdicom_scp(
    pynetdicom_python: str, tls: TlsFiles | None, peers: PeerGroup
) -> None:
    tls_argv = [] if tls is None else [tls.ca_cert, tls.server_cert, tls.server_key]
    scp = peers.start(
        python_runner(
            SCRIPTS / "pynetdicom_echo_scp.py", "PYNETDICOM-SCP", *map(str, tls_argv),
            python=pynetdicom_python,
        ),
        name="pynetdicom SCP",
        stdin=True,
    )  # fmt: skip
    port = int(scp.wait_for_line(r"listening on port (\d+)").group(1))
    ae = dicomnet_scu()
    assoc = ae.associate("127.0.0.1", port, ae_title="PYNETDICOM-SCP", tls_args=tls_args(tls))
    assert assoc.is_established
    status = assoc.send_c_echo()
    assert status and status.Status == 0x0000
    assoc.release()
    assert assoc.is_released
    scp.wait_for_line(f"C-ECHO from {SCU_AET}$")
    scp.close_stdin()
    assert scp.wait() == 0, scp.output()


# -- Orthanc ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orthanc_instances() -> Iterator[tuple[PeerGroup, dict[bool, Orthanc]]]:
    """One Orthanc per transport for the whole module (Orthanc takes seconds to stop)."""
    group = PeerGroup()
    try:
        yield group, {}
    finally:
        group.stop_all()


@pytest.fixture
def orthanc_factory(
    request: pytest.FixtureRequest,
    orthanc_binary: str,
    orthanc_instances: tuple[PeerGroup, dict[bool, Orthanc]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    group, instances = orthanc_instances

    def get(tls: TlsFiles | None) -> Orthanc:
        key = tls is not None
        if key not in instances:
            tmp = tmp_path_factory.mktemp("orthanc")
            instances[key] = Orthanc(group, orthanc_binary, tmp, tls)
        orthanc = instances[key]
        watch(request.node, orthanc.proc)
        return orthanc

    return get


def test_dicomnet_scu_to_orthanc(tls: TlsFiles | None, orthanc_factory: Any) -> None:
    orthanc = orthanc_factory(tls)
    ae = dicomnet_scu()
    assoc = ae.associate(
        "127.0.0.1", orthanc.dicom_port, ae_title=Orthanc.AET, tls_args=tls_args(tls)
    )
    assert assoc.is_established, orthanc.proc.output()
    status = assoc.send_c_echo()
    assert status and status.Status == 0x0000
    assoc.release()
    assert assoc.is_released


def test_orthanc_rejects_wrong_called_ae_title(orthanc_factory: Any) -> None:
    orthanc = orthanc_factory(None)
    assoc = dicomnet_scu().associate("127.0.0.1", orthanc.dicom_port, ae_title="NOT-ORTHANC")
    assert assoc.is_rejected and not assoc.is_established


def test_orthanc_echoes_dicomnet_scp(
    tls: TlsFiles | None, orthanc_factory: Any, scp_factory: Any
) -> None:
    orthanc = orthanc_factory(tls)
    scp = scp_factory(ssl_context=tls.server_context() if tls else None)
    modality: dict[str, Any] = {"AET": SCP_AET, "Host": "127.0.0.1", "Port": scp.port}
    if tls is not None:
        modality["UseDicomTls"] = True
    code, body = orthanc.rest("PUT", "/modalities/dicomnet", modality)
    assert code == 200, body
    code, body = orthanc.rest("POST", "/modalities/dicomnet/echo", {})
    assert code == 200, (code, body)
    assert [(e["calling"], e["called"]) for e in scp.echoes] == [(Orthanc.AET, SCP_AET)]
    assert scp.released.wait(5)
