"""Scripted peers on plain sockets, for tests that need a peer that misbehaves.

* :class:`RawPeer` -- one connected socket: sends hand-built bytes, and reads
  back whole PDUs with the kernel's :class:`~dicomnet.framing.PDUReader`.
* :class:`FakeSCP` -- a listening socket whose one connection is handed to a
  script running in a thread: a silent peer, a peer that answers an
  A-ASSOCIATE-RQ with garbage, one that never answers an A-RELEASE-RQ...

Every wait is bounded by a timeout on the socket; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from dicomnet import dimse_messages as dm
from dicomnet.acse import (
    AcceptorConfig,
    ContextDefinition,
    accept_or_reject,
    build_associate_rq,
)
from dicomnet.dimse import CommandReceived, MessageAssembler, fragment_message
from dicomnet.framing import PDUReader
from dicomnet.pdu import PDU, AAssociateAC, AAssociateRQ, PDUType, decode_pdu

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"

#: the longest any single wait of a scripted peer may take
WAIT = 5.0


def verification_rq(
    called: str = "SCP",
    calling: str = "RAWPEER",
    *,
    max_pdu: int = 16382,
    abstract_syntax: str = VERIFICATION,
    protocol_version: int = 1,
) -> AAssociateRQ:
    """An A-ASSOCIATE-RQ proposing one context (ID 1) in implicit VR little endian."""
    rq = build_associate_rq(
        calling_ae_title=calling,
        called_ae_title=called,
        contexts=[ContextDefinition(abstract_syntax, (IMPLICIT_LE,))],
        maximum_length=max_pdu,
    )
    if protocol_version != 1:
        rq = AAssociateRQ(
            rq.called_ae_title,
            rq.calling_ae_title,
            rq.presentation_contexts,
            rq.user_information,
            rq.application_context_name,
            protocol_version,
        )
    return rq


def echo_rq_pdata(context_id: int = 1, message_id: int = 1, max_pdu: int = 16382) -> bytes:
    """A C-ECHO-RQ as whole P-DATA-TF PDUs."""
    message = dm.CEchoRQ(MessageID=message_id, AffectedSOPClassUID=VERIFICATION)
    return b"".join(
        bytes(buffer)
        for batch in fragment_message(context_id, message, None, max_pdu)
        for buffer in batch
    )


def accept(rq: AAssociateRQ, ae_title: str = "FAKESCP", max_pdu: int = 16382) -> AAssociateAC:
    """The A-ASSOCIATE-AC a plain Verification SCP would send for ``rq``."""
    config = AcceptorConfig(
        ae_title=ae_title,
        supported_contexts=(ContextDefinition(VERIFICATION, (IMPLICIT_LE, EXPLICIT_LE)),),
        maximum_length=max_pdu,
    )
    response = accept_or_reject(rq, config).response
    assert isinstance(response, AAssociateAC)
    return response


class RawPeer:
    """A connected socket driven by a test script."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = PDUReader(None)
        self.reset = False  #: the connection ended with a reset rather than a close

    @classmethod
    def connect(cls, address: tuple[str, int], timeout: float = WAIT) -> RawPeer:
        sock = socket.create_connection(address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes | PDU) -> None:
        if not isinstance(data, bytes | bytearray):
            data = data.to_bytes()
        self.sock.sendall(data)

    def recv_raw(self, timeout: float = WAIT) -> tuple[int, bytes] | None:
        """The next whole PDU as ``(type, body)``; ``None`` once the peer has closed.

        Raises :class:`TimeoutError` when nothing complete arrives within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            item = self.reader.next_pdu()
            if item is not None:
                return item[0], bytes(item[1])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no whole PDU within {timeout} s")
            self.sock.settimeout(remaining)
            try:
                count = self.sock.recv_into(self.reader.get_buffer())
            except ConnectionResetError:
                self.reset = True
                return None
            except TimeoutError:
                raise TimeoutError(f"no whole PDU within {timeout} s") from None
            if count == 0:
                return None
            self.reader.buffer_updated(count)

    def recv(self, timeout: float = WAIT) -> PDU | None:
        """The next PDU, decoded (``None`` once the peer has closed)."""
        item = self.recv_raw(timeout)
        if item is None:
            return None
        return decode_pdu(item[0], memoryview(item[1]))

    def expect(self, pdu_class: type[Any], timeout: float = WAIT) -> Any:
        pdu = self.recv(timeout)
        assert isinstance(pdu, pdu_class), f"expected a {pdu_class.__name__}, got {pdu!r}"
        return pdu

    def wait_closed(self, timeout: float = WAIT) -> list[tuple[int, bytes]]:
        """Read until the peer closes; the PDUs that came first. ``TimeoutError`` if it
        does not close within ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = []
        while (item := self.recv_raw(max(0.0, deadline - time.monotonic()))) is not None:
            seen.append(item)
        return seen

    def associate(self, rq: AAssociateRQ | None = None) -> AAssociateAC:
        """Send an A-ASSOCIATE-RQ (Verification by default) and expect the AC."""
        self.send(rq or verification_rq())
        ac: AAssociateAC = self.expect(AAssociateAC)
        return ac

    def read_dimse(self, timeout: float = WAIT) -> dm.DimseMessage:
        """Read P-DATA-TF PDUs until one whole command set (no data set) has arrived."""
        assembler = MessageAssembler()
        deadline = time.monotonic() + timeout
        while True:
            item = self.recv_raw(max(0.0, deadline - time.monotonic()))
            assert item is not None, "the peer closed while a DIMSE message was expected"
            assert item[0] == PDUType.P_DATA_TF, f"expected P-DATA-TF, got PDU type {item[0]}"
            for event in assembler.receive(memoryview(item[1])):
                if isinstance(event, CommandReceived):
                    return event.message


Script = Callable[[RawPeer], None]


class FakeSCP:
    """A listening socket on a free loopback port; ``script(peer)`` handles its first
    connection in a thread. :meth:`close` unblocks and joins everything."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.address: tuple[str, int] = self.listener.getsockname()
        self.port = self.address[1]
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="fake-scp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        peer = RawPeer(conn)
        try:
            if not self._stopping:
                self.script(peer)
        except BaseException as exc:  # reported by close()
            self.error = exc
        finally:
            peer.close()
            self.done.set()

    def close(self) -> None:
        self._stopping = True
        if self._thread.is_alive() and not self.done.is_set():
            # wake a pending accept(); a script still running ends at its own timeouts
            with contextlib.suppress(OSError):
                socket.create_connection(self.address, timeout=1.0).close()
        self._thread.join(2 * WAIT)
        self.listener.close()

    def check(self) -> None:
        """Re-raise what the script raised (an assertion about what it received)."""
        if self.error is not None:
            raise self.error
