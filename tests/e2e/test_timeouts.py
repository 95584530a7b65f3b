"""Timeouts and silent peers: nothing waits longer than the configured timeout.

Each test configures short timeouts on the AE (0.5 s) and checks that the
association ends within a bounded time, aborted, with its thread and socket
gone (the leak check of ``tests/conftest.py`` runs after every test).
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet.pdu import AAbort, AAssociateRQ, AReleaseRQ, PDUType

from .peers import WAIT, RawPeer, accept, verification_rq

TIMEOUT = 0.5
#: how late a timeout may fire on a loaded test machine
SLACK = 2.0


def associate(scu: Any, port: int, **kwargs: Any) -> Any:
    return scu.associate("127.0.0.1", port, ae_title="SCP", **kwargs)


# -- ACSE timeout ----------------------------------------------------------------------------


def test_acse_timeout_against_a_silent_peer(fake_scp: Any, make_scu: Any) -> None:
    """A peer that accepts the connection and never answers the A-ASSOCIATE-RQ."""
    seen: list[tuple[int, bytes]] = []

    def silent(peer: RawPeer) -> None:
        seen.extend(peer.wait_closed(WAIT))

    server = fake_scp(silent)
    scu = make_scu(acse_timeout=TIMEOUT)
    start = time.monotonic()
    assoc = associate(scu, server.port)
    elapsed = time.monotonic() - start
    assert assoc.is_aborted and not assoc.is_established and not assoc.is_rejected
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assert server.done.wait(WAIT)  # we closed the connection: the peer saw it end
    server.check()
    assert [pdu_type for pdu_type, _ in seen] == [PDUType.A_ASSOCIATE_RQ, PDUType.A_ABORT]
    assoc.join(WAIT)
    assert not assoc.is_alive()


def test_release_without_answer_aborts_after_acse_timeout(fake_scp: Any, make_scu: Any) -> None:
    """An SCP that never sends the A-RELEASE-RP."""
    after_release: list[tuple[int, bytes]] = []

    def no_release_rp(peer: RawPeer) -> None:
        rq = peer.expect(AAssociateRQ)
        peer.send(accept(rq))
        peer.expect(AReleaseRQ)
        after_release.extend(peer.wait_closed(WAIT))

    server = fake_scp(no_release_rp)
    scu = make_scu(acse_timeout=TIMEOUT)
    assoc = associate(scu, server.port)
    assert assoc.is_established
    start = time.monotonic()
    assoc.release()
    elapsed = time.monotonic() - start
    assert assoc.is_aborted and not assoc.is_released
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assert server.done.wait(WAIT)
    server.check()
    assert [pdu_type for pdu_type, _ in after_release] == [PDUType.A_ABORT]
    assoc.join(WAIT)
    assert not assoc.is_alive()


def test_silent_tcp_client_is_dropped_after_acse_timeout(make_scp: Any, scu: Any) -> None:
    """A client that connects and sends nothing: dropped when ARTIM expires, which
    follows the ACSE timeout as in pynetdicom; meanwhile others are served."""
    scp = make_scp(acse_timeout=TIMEOUT)
    closed = threading.Event()
    scp.server.bind(evt.EVT_CONN_CLOSE, lambda e: closed.set())
    with RawPeer.connect(scp.address) as silent:
        start = time.monotonic()
        with associate(scu, scp.port) as assoc:
            assert assoc.send_c_echo().Status == 0
        closed.clear()
        assert silent.wait_closed(TIMEOUT + SLACK) == []
        assert time.monotonic() - start < TIMEOUT + SLACK
    assert closed.wait(WAIT)


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    pytest.importorskip("cryptography")
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dicomnet-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) trusting the test certificate."""
    cert_path, key_path = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert_path))
    return server, client


def test_echo_over_tls(make_scp: Any, scu: Any, tls: Any) -> None:
    server_context, client_context = tls
    scp = make_scp(ssl_context=server_context)
    for _ in range(3):
        with associate(scu, scp.port, tls_args=(client_context, "127.0.0.1")) as assoc:
            assert assoc.is_established
            assert assoc.send_c_echo().Status == 0
        assert assoc.is_released


def test_silent_tls_client_blocks_nobody_and_is_dropped(make_scp: Any, scu: Any, tls: Any) -> None:
    """A client that connects and never starts the TLS handshake."""
    server_context, client_context = tls
    scp = make_scp(ssl_context=server_context, acse_timeout=TIMEOUT)
    with socket.create_connection(scp.address) as silent:
        start = time.monotonic()
        for _ in range(3):  # others are served while it hangs
            with associate(scu, scp.port, tls_args=(client_context, "127.0.0.1")) as assoc:
                assert assoc.send_c_echo().Status == 0
        silent.settimeout(TIMEOUT + SLACK)
        assert silent.recv(1) == b""  # dropped after the handshake timeout
        assert time.monotonic() - start < TIMEOUT + SLACK


def test_shutdown_does_not_wait_for_a_silent_tls_client(make_scp: Any, scu: Any, tls: Any) -> None:
    """The handshake timeout is long; shutting the server down ends the handshake at once."""
    server_context, client_context = tls
    scp = make_scp(ssl_context=server_context, acse_timeout=60)
    with socket.create_connection(scp.address) as silent:
        # connections are accepted in order: once this one is served, the silent one
        # is in its own association thread, in the handshake
        with associate(scu, scp.port, tls_args=(client_context, "127.0.0.1")) as assoc:
            assert assoc.send_c_echo().Status == 0
        assert len(scp.server.active_associations) >= 1
        start = time.monotonic()
        scp.shutdown()
        assert time.monotonic() - start < SLACK
        silent.settimeout(WAIT)
        assert silent.recv(1) == b""


# -- DIMSE timeout ---------------------------------------------------------------------------


@pytest.fixture
def gate(make_scp: Any) -> Iterator[threading.Event]:
    """An event SCP handlers wait on; set at teardown, before the SCPs shut down."""
    event = threading.Event()
    yield event
    event.set()


def test_dimse_timeout(make_scp: Any, make_scu: Any, gate: threading.Event) -> None:
    entered = threading.Event()

    def stuck(event: Any) -> int:
        entered.set()
        gate.wait(WAIT)
        return 0

    scp = make_scp(handlers=[(evt.EVT_C_ECHO, stuck)])
    scu = make_scu(dimse_timeout=TIMEOUT)
    assoc = associate(scu, scp.port)
    start = time.monotonic()
    status = assoc.send_c_echo()
    elapsed = time.monotonic() - start
    assert entered.is_set()
    assert status == Dataset()
    assert assoc.is_aborted
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assoc.join(WAIT)
    assert not assoc.is_alive()
    gate.set()
    # the server is unharmed
    scu.dimse_timeout = 30
    with associate(scu, scp.port) as again:
        assert again.send_c_echo().Status == 0


# -- network (idle) timeout ------------------------------------------------------------------


def test_idle_association_is_aborted_by_the_acceptor(make_scp: Any, scu: Any) -> None:
    scp = make_scp(network_timeout=TIMEOUT)
    aborted = threading.Event()
    start = time.monotonic()
    assoc = associate(scu, scp.port, evt_handlers=[(evt.EVT_ABORTED, lambda e: aborted.set())])
    assert assoc.send_c_echo().Status == 0  # activity restarts the idle timer
    assert aborted.wait(TIMEOUT + SLACK)
    assert time.monotonic() - start >= TIMEOUT * 0.9
    assert assoc.is_aborted
    assoc.join(WAIT)
    assert not assoc.is_alive()


def test_idle_association_is_aborted_by_the_requestor(scp: Any, make_scu: Any) -> None:
    aborted_at_scp = threading.Event()
    scp.server.bind(evt.EVT_ABORTED, lambda e: aborted_at_scp.set())
    scu = make_scu(network_timeout=TIMEOUT)
    start = time.monotonic()
    assoc = associate(scu, scp.port)
    assert aborted_at_scp.wait(TIMEOUT + SLACK)
    assert time.monotonic() - start >= TIMEOUT * 0.9
    assoc.join(WAIT)
    assert assoc.is_aborted and not assoc.is_alive()


def test_idle_timeout_against_a_silent_established_peer(fake_scp: Any, make_scu: Any) -> None:
    """The peer accepts, then neither talks nor closes: we abort and close promptly."""
    after: list[tuple[int, bytes]] = []

    def mute(peer: RawPeer) -> None:
        peer.send(accept(peer.expect(AAssociateRQ)))
        after.extend(peer.wait_closed(WAIT))

    server = fake_scp(mute)
    scu = make_scu(network_timeout=TIMEOUT)
    assoc = associate(scu, server.port)
    assert assoc.is_established
    assoc.join(TIMEOUT + SLACK)
    assert not assoc.is_alive()
    assert assoc.is_aborted
    assert server.done.wait(WAIT)
    server.check()
    assert [t for t, _ in after] == [PDUType.A_ABORT]
    assert AAbort.from_body(memoryview(after[0][1])).source == 0


def test_silent_peer_that_stays_connected_after_rq(make_scp: Any) -> None:
    """A requestor that sends its A-ASSOCIATE-RQ, is accepted and then says nothing."""
    scp = make_scp(network_timeout=TIMEOUT)
    with RawPeer.connect(scp.address) as peer:
        peer.associate(verification_rq())
        start = time.monotonic()
        rest = peer.wait_closed(TIMEOUT + SLACK)
        assert [t for t, _ in rest] == [PDUType.A_ABORT]
        assert time.monotonic() - start >= TIMEOUT * 0.9
