"""Blocking sockets for the threaded transport: TCP and TLS (PS3.8 9.1, PS3.15 B.1).

This module is the only place where the threaded transport touches the
operating system's network API. It is deliberately small: the protocol lives
in the sans-IO kernel, and this module only moves bytes.

* :func:`connect` opens a TCP connection (IPv4 or IPv6) with a connection
  timeout, ``TCP_NODELAY`` set, optionally wrapped in TLS.
* :class:`Channel` wraps one connected socket for one association: the
  association's own thread receives straight into the framing buffer
  (:meth:`Channel.read_now`, never blocking) and, only when nothing is there,
  waits for readability with the kernel's next deadline as the timeout (no
  polling loop, no sleep); any thread may write, each batch of PDUs with one
  ``sendmsg`` call (header and payload together, no copy). A TCP socket is in
  non-blocking mode for good (set once, so a reading and a writing thread
  never toggle it under each other): a read that finds data costs one
  ``recv`` system call, not a ``select`` and a ``poll`` before it, and a
  write waits for room only when the socket buffer is full. TLS sockets
  cannot ``sendmsg``; their batches are joined and sent with ``sendall``,
  and reads and writes are serialised because an OpenSSL connection must not
  be used by two threads at once.
* :class:`Listener` accepts connections until it is closed; closing wakes the
  accept wait at once, through a socket pair, without polling.
"""

from __future__ import annotations

import contextlib
import errno
import select
import selectors
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from socket import socket as Socket

__all__ = ["Channel", "Listener", "connect", "set_nodelay"]

Buffer = bytes | bytearray | memoryview
Address = tuple[str, int] | tuple[str, int, int, int]

#: Most systems accept at least this many buffers per sendmsg (POSIX IOV_MAX >= 16;
#: Linux allows 1024).
_IOV_MAX = 512


def set_nodelay(sock: socket.socket) -> None:
    """Disable Nagle's algorithm: DICOM is request/response, a 40 ms stall per message hurts."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect(
    host: str,
    port: int,
    *,
    timeout: float | None = None,
    bind_address: tuple[str, int] | tuple[str, int, int, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> socket.socket:
    """Open a TCP connection (IPv4 or IPv6), with TCP_NODELAY and optional TLS.

    ``timeout`` bounds the TCP connection and the TLS handshake; ``None`` waits
    as long as the operating system does. Raises :class:`OSError` (including
    :class:`TimeoutError` and :class:`ssl.SSLError`) when the peer cannot be reached.
    """
    source = None
    if bind_address is not None and (bind_address[0] or bind_address[1]):
        source = (bind_address[0], bind_address[1])
    sock = socket.create_connection((host, port), timeout=timeout, source_address=source)
    try:
        set_nodelay(sock)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_side=False, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise
    return sock


def server_handshake(
    sock: socket.socket,
    ssl_context: ssl.SSLContext,
    timeout: float | None,
    on_wrapped: Callable[[ssl.SSLSocket], None] | None = None,
) -> ssl.SSLSocket:
    """Do the server side of a TLS handshake within ``timeout`` seconds.

    Run it in the association's own thread: a client that connects and stays
    silent then delays nobody but itself. ``on_wrapped`` receives the TLS socket
    before the handshake starts, so that another thread can cut the handshake
    short (``socket.socket.shutdown(tls, SHUT_RDWR)``). On failure the socket is
    closed (the TLS socket owns the descriptor once wrapped) and the error raised.
    """
    sock.settimeout(timeout)
    tls = ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    try:
        if on_wrapped is not None:
            on_wrapped(tls)
        tls.do_handshake()
    except BaseException:
        tls.close()
        raise
    return tls


class Channel:
    """One connected socket of one association.

    :param write_timeout: how long one write may block on a peer that does not
        read (``None``: for ever). Reads are bounded by the timeout given to
        :meth:`wait_readable`.
    """

    __slots__ = (
        "_closed",
        "_io_lock",
        "_selector",
        "_sock",
        "_tls",
        "_write_poll",
        "_write_timeout",
        "local",
        "peer",
    )

    def __init__(self, sock: socket.socket, *, write_timeout: float | None = None) -> None:
        self._sock = sock
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._write_timeout = write_timeout
        if self._tls:
            # A timeout (even a long one) keeps the descriptor non-blocking inside
            # CPython, so reads in one thread and writes in another never toggle
            # its mode under each other; the SSL layer waits for us.
            sock.settimeout(write_timeout if write_timeout is not None else 365 * 24 * 3600.0)
        else:
            # Non-blocking for good: no poll() before every recv and send (CPython
            # does one when the socket has a timeout); writes wait for room below.
            sock.setblocking(False)
        self._io_lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._write_poll: select.poll | None = None
        self._closed = False
        try:
            self.peer: tuple[str, int] = sock.getpeername()[:2]
        except OSError:
            self.peer = ("", 0)
        self.local: tuple[str, int] = sock.getsockname()[:2]

    @property
    def socket(self) -> Socket:
        return self._sock

    @property
    def is_tls(self) -> bool:
        return self._tls

    def wait_readable(self, timeout: float | None) -> bool:
        """Block until bytes can be read or ``timeout`` seconds pass; ``False`` on timeout."""
        if self._tls and self._sock.pending():  # type: ignore[attr-defined]
            return True
        if timeout is not None and timeout < 0:
            timeout = 0
        try:
            return bool(self._selector.select(timeout))
        except (OSError, ValueError):  # closed under us: let recv_into report it
            return True

    def recv_into(self, buffer: memoryview) -> int | None:
        """Receive into ``buffer`` (call when :meth:`wait_readable` said so).

        Returns the number of bytes received, ``0`` when the connection is closed
        (by the peer, or by us from another thread), ``None`` when nothing is
        available after all (a partial TLS record).
        """
        try:
            if self._tls:
                with self._io_lock:
                    return self._sock.recv_into(buffer)
            return self._sock.recv_into(buffer)
        except (ssl.SSLWantReadError, TimeoutError, BlockingIOError):
            return None
        except OSError:
            return 0

    def read_now(self, buffer: memoryview) -> int | None:
        """Receive into ``buffer`` what is there already, without ever blocking.

        As :meth:`recv_into`; ``None`` means nothing is there yet (wait with
        :meth:`wait_readable`). For TCP this is one ``recv`` system call.
        """
        if self._tls and not self.wait_readable(0):
            return None
        return self.recv_into(buffer)

    def write(self, buffers: Sequence[Buffer]) -> None:
        """Write every buffer, in order, atomically with respect to other writers.

        Raises :class:`TimeoutError` when the peer takes nothing for
        ``write_timeout`` seconds, :class:`OSError` when the connection fails.
        """
        if not buffers:
            return
        with self._io_lock:
            if self._tls:
                self._sock.sendall(b"".join(buffers))
                return
            sendmsg = self._sock.sendmsg
            if len(buffers) <= _IOV_MAX:
                # the common case: everything goes out with the first call
                try:
                    sent = sendmsg(buffers)
                except BlockingIOError:
                    sent = 0
                if sent == sum([b.nbytes if type(b) is memoryview else len(b) for b in buffers]):
                    return
            else:
                sent = 0
            pending = [b if type(b) is bytes else memoryview(b).cast("B") for b in buffers]
            while True:
                # drop what went out; a partial write leaves a tail to resend
                while sent:
                    head = pending[0]
                    if sent >= len(head):
                        sent -= len(head)
                        del pending[0]
                    else:
                        pending[0] = memoryview(head)[sent:]
                        sent = 0
                while pending and not len(pending[0]):
                    del pending[0]
                if not pending:
                    return
                try:
                    sent = sendmsg(pending[:_IOV_MAX])
                except BlockingIOError:
                    self._wait_writable()

    def _wait_writable(self) -> None:
        """Block until the socket takes more bytes, at most ``write_timeout`` seconds."""
        poll = self._write_poll
        if poll is None:
            poll = self._write_poll = select.poll()
            poll.register(self._sock, select.POLLOUT)
        timeout = self._write_timeout
        if not poll.poll(None if timeout is None else max(0, int(timeout * 1000))):
            raise TimeoutError(f"the peer took nothing for {timeout:g} s")

    def shutdown(self, how: int | None = None) -> None:
        """Stop both directions now (a thread blocked on this socket wakes up), or with
        ``how=socket.SHUT_WR`` only the sending one: what was written is delivered,
        then the peer reads the end of the stream.

        For TLS this bypasses :meth:`ssl.SSLSocket.shutdown`, which would drop the
        TLS layer under a thread still reading through it.
        """
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR if how is None else how)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._selector.close()
        finally:
            self._sock.close()


class Listener:
    """A listening socket whose :meth:`accept` can be interrupted by :meth:`close`."""

    def __init__(self, sock: socket.socket) -> None:
        """Wrap a bound, listening socket (possibly shared by worker processes)."""
        sock.setblocking(False)
        self._sock = sock
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def bind(cls, address: Address, *, backlog: int = 128, reuse_port: bool = False) -> Listener:
        """Listen on ``address`` (IPv4, or IPv6 when the host contains ``:``)."""
        family = socket.AF_INET6 if ":" in address[0] or len(address) == 4 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(backlog)
            return cls(sock)
        except BaseException:
            sock.close()
            raise

    @property
    def address(self) -> tuple[str, int]:
        addr: tuple[str, int] = self._sock.getsockname()[:2]
        return addr

    @property
    def socket(self) -> Socket:
        return self._sock

    def accept(self) -> tuple[Socket, tuple[str, int]] | None:
        """Wait for the next connection; ``None`` once the listener is closed."""
        while not self._closed:
            for key, _ in self._selector.select():
                if key.fileobj is self._wake_r:
                    return None
                try:
                    conn, addr = self._sock.accept()
                except BlockingIOError:
                    continue  # another process sharing the socket took it
                except OSError as exc:
                    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        raise
                    continue
                conn.setblocking(True)
                set_nodelay(conn)
                return conn, addr[:2]
        return None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def release(self) -> None:
        """Free the sockets; call after the accepting thread has returned."""
        self._selector.close()
        self._sock.close()
        self._wake_r.close()
        self._wake_w.close()
