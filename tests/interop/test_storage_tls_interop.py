"""Storage over TLS with DCMTK (PS3.15 B.1: the Basic TLS Secure Transport Connection Profile).

Mutual TLS both ways, with certificates made for the session by a private CA
(``tls_files``): the server requires a client certificate from that CA, the
client checks the server's certificate and its host name.

* ``dicomnet store`` (the CLI) -> DCMTK ``storescp +tls`` (``--bit-preserving``);
* DCMTK ``storescu +tls`` -> ``dicomnet serve --tls-cert`` (the PACS), and the
  file it indexed is found again with ``dicomnet find`` over TLS;
* a client without a certificate is refused by ``dicomnet serve`` before any
  association, and nothing is stored.

What arrives is compared with what was sent, byte for byte after the File Meta
Information (the samples of ``test_storage_interop``, which are sent in syntaxes
both sides accept, so nothing is converted).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.interop.peers import Dcmtk, PeerGroup, PeerProcess, TlsFiles, describe, run_client
from tests.interop.qr_peers import dicomnet_argv
from tests.interop.test_storage_interop import (
    EXPLICIT,
    Sample,
    arrived,
    assert_arrived_as_sent,
    dicomnet_cli,
    files_in,
    samples,
    start_storescp,
    store_summary,
    storescu_profile,
)

pytestmark = pytest.mark.interop

__all__ = ["samples"]  # the fixture, shared with test_storage_interop


def client_options(tls: TlsFiles) -> list[str]:
    """``dicomnet store/find``: our certificate, the CA and the name to check the server by."""
    return [
        "--tls-cert", str(tls.client_cert), "--tls-key", str(tls.client_key),
        "--tls-ca", str(tls.ca_cert), "--tls-hostname", "localhost",
    ]  # fmt: skip


def test_dicomnet_store_to_storescp_over_tls(
    dcmtk_tls: Dcmtk,
    peers: PeerGroup,
    tls_files: TlsFiles,
    tmp_path: Path,
    samples: dict[str, Sample],
) -> None:
    directory = tmp_path / "storescp"
    tls = tls_files
    scp, port = start_storescp(
        peers, dcmtk_tls, directory, "+xa", "--promiscuous",
        "+tls", tls.server_key, tls.server_cert, "+cf", tls.ca_cert,
    )  # fmt: skip
    result = run_client(
        dicomnet_cli("store", "--aec", "STORESCP", "-v", "127.0.0.1", port, tmp_path / "sent",
                     *client_options(tls))
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    assert store_summary(result) == (len(samples), len(samples), 0, 1)
    stored = files_in(directory)
    assert len(stored) == len(samples)
    for sample in samples.values():
        syntax = EXPLICIT if sample.name == "mr-implicit" else None  # see the TCP test
        assert_arrived_as_sent(sample, stored[sample.sop_instance], syntax)
    assert scp.output().count("Association Received") == 1, scp.output()
    # the port really speaks TLS only: the same command without TLS gets no association
    plain = run_client(
        dicomnet_cli("store", "--aec", "STORESCP", "127.0.0.1", port, samples["ct-explicit"].path)
    )
    assert plain.returncode == 2, describe(plain)


def start_serve_tls(peers: PeerGroup, tls: TlsFiles, directory: Path) -> tuple[PeerProcess, int]:
    def argv(port: int) -> list[str]:
        return dicomnet_argv(
            "serve", "--port", port, "--bind", "127.0.0.1", "--aet", "PACS",
            "--dir", directory, "--tls-cert", tls.server_cert, "--tls-key", tls.server_key,
            "--tls-ca", tls.ca_cert, "-v",
        )  # fmt: skip

    return peers.start_listening(argv, name="dicomnet serve (TLS)")


def test_storescu_over_tls_to_dicomnet_serve(
    dcmtk_tls: Dcmtk,
    peers: PeerGroup,
    tls_files: TlsFiles,
    tmp_path: Path,
    samples: dict[str, Sample],
) -> None:
    tls = tls_files
    directory = tmp_path / "pacs"
    _, port = start_serve_tls(peers, tls, directory)
    profile = storescu_profile(tmp_path / "storescu.cfg", list(samples.values()))
    result = run_client(
        [
            dcmtk_tls.tool("storescu"), "-v", "-xf", profile, "Interop", "-aet", "STORESCU",
            "-aec", "PACS", "+tls", tls.client_key, tls.client_cert, "+cf", tls.ca_cert,
            "127.0.0.1", port, *(s.path for s in samples.values()),
        ]
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, describe(result)
    assert output.count("Received Store Response (Success)") == len(samples), describe(result)
    stored = {got.sop_instance: got for got in map(arrived, stored_files(directory))}
    for sample in samples.values():
        assert_arrived_as_sent(sample, stored[sample.sop_instance])
    # indexed: a C-FIND over TLS finds the CT image in its study and series
    ct = samples["ct-explicit"]
    header = dcmread(ct.path, stop_before_pixels=True)
    found = run_client(
        dicomnet_cli("find", "127.0.0.1", port, "--aec", "PACS", "-m", "study", "-L", "IMAGE",
                     "-k", f"StudyInstanceUID={header.StudyInstanceUID}",
                     "-k", f"SeriesInstanceUID={header.SeriesInstanceUID}",
                     "-k", f"SOPInstanceUID={ct.sop_instance}", "-k", "SOPClassUID",
                     *client_options(tls))
    )  # fmt: skip
    assert found.returncode == 0, describe(found)
    matches = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    assert [(m["SOPInstanceUID"], m["SOPClassUID"]) for m in matches] == [
        (ct.sop_instance, ct.sop_class)
    ]


def test_dicomnet_serve_refuses_a_client_without_certificate(
    dcmtk_tls: Dcmtk,
    peers: PeerGroup,
    tls_files: TlsFiles,
    tmp_path: Path,
    samples: dict[str, Sample],
) -> None:
    tls = tls_files
    directory = tmp_path / "pacs"
    _, port = start_serve_tls(peers, tls, directory)
    sample = samples["ct-explicit"]
    result = run_client(
        [
            dcmtk_tls.tool("storescu"), "-aec", "PACS", "+tls", "-n", "-n", "+cf",
            tls.ca_cert, "127.0.0.1", port, sample.path,
        ]
    )  # fmt: skip
    assert result.returncode != 0, describe(result)
    assert not stored_files(directory), "stored without a client certificate"


def stored_files(directory: Path) -> list[bytes]:
    """The Part 10 files ``dicomnet serve`` stored under ``directory`` (not its index)."""
    return [
        path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file() and path.read_bytes()[128:132] == b"DICM"
    ]
