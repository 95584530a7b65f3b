"""Association servers: accept TCP (and TLS) connections for an AE (PS3.8 9.1.2).

An :class:`AssociationServer` owns one listening socket and one accepting
thread (or the caller's thread, with :meth:`serve_forever`). Each accepted
connection becomes an acceptor :class:`~dicomnet.association.Association`
running in its own thread; the TLS handshake happens there too, bounded by
the ACSE timeout, so a client that connects and says nothing delays nobody.

:meth:`shutdown` stops accepting at once (the accept wait is woken through a
socket pair, not polled), aborts the associations still open, waits for their
threads and closes every socket, so nothing of the server outlives it.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .events import EventHandlerType, EventType, HandlerTable
from .transport import Channel, Listener, server_handshake

if TYPE_CHECKING:  # pragma: no cover
    from .ae import ApplicationEntity
    from .association import Association
    from .presentation import PresentationContext

__all__ = ["AssociationServer", "ThreadedAssociationServer"]

LOGGER = logging.getLogger("dicomnet.server")

Address = tuple[str, int] | tuple[str, int, int, int]


class AssociationServer:
    """Accepts associations for ``ae`` on ``address``.

    :param ae_title: the AE title this server answers to (default: the AE's).
    :param contexts: the presentation contexts it supports (default: the AE's).
    :param ssl_context: serve TLS (PS3.15 B.1) with this server-side context.
    :param evt_handlers: handlers bound to every association of this server.
    :param listener: an already listening socket (shared by worker processes).
    """

    def __init__(
        self,
        ae: ApplicationEntity,
        address: Address,
        *,
        ae_title: str | None = None,
        contexts: Sequence[PresentationContext] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: Sequence[EventHandlerType] | None = None,
        listener: socket.socket | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.ae = ae
        self.ae_title = ae_title or ae.ae_title
        self.contexts = list(contexts) if contexts is not None else None
        self.ssl_context = ssl_context
        self._handlers = HandlerTable(ae._handlers)
        self._handlers.bind_all(evt_handlers)
        self._listener = (
            Listener(listener)
            if listener is not None
            else Listener.bind(address, reuse_port=reuse_port)
        )
        self._lock = threading.Lock()
        self._associations: list[Association] = []
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        #: set when serve_forever() returns; shutdown() waits for it before freeing the
        #: listener (closing an epoll fd does not wake a thread blocked on it)
        self._accept_done = threading.Event()
        self._accepting_thread: threading.Thread | None = None
        self._stopped = False
        self._warn_unserved()

    def _warn_unserved(self) -> None:
        """Say once which supported SOP classes no loaded service class serves: the
        acceptor rejects their contexts (see :func:`dicomnet.acceptor._servable_contexts`)."""
        registry = self.ae._registry
        contexts = self.contexts if self.contexts is not None else self.ae.supported_contexts
        unserved = sorted(
            {
                str(cx.abstract_syntax)
                for cx in contexts
                if (service := registry.service_for(str(cx.abstract_syntax))) is None
                or service.scp is None
            }
        )
        if unserved:
            LOGGER.warning(
                "No loaded plugin serves %d supported SOP class(es) as SCP; their "
                "presentation contexts will be rejected unless the requestor takes the SCP "
                "role: %s",
                len(unserved),
                ", ".join(unserved[:10]) + (", ..." if len(unserved) > 10 else ""),
            )

    # -- pynetdicom attributes ----------------------------------------------------------------
    @property
    def server_address(self) -> tuple[str, int]:
        """The ``(host, port)`` the server listens on (the real port when 0 was asked)."""
        return self._listener.address

    @property
    def socket(self) -> socket.socket:
        return self._listener.socket

    @property
    def active_associations(self) -> list[Association]:
        """The associations of this server whose thread is alive."""
        with self._lock:
            return [a for a in self._associations if a.is_alive()]

    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] | None = None
    ) -> None:
        """Bind ``handler`` to ``event`` for current and future associations of this server."""
        self._handlers.bind(event, handler, args)

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        self._handlers.unbind(event, handler)

    def get_handlers(self, event: EventType) -> Any:
        return self._handlers.get_handlers(event)

    def get_events(self) -> list[EventType]:
        return self._handlers.get_events()

    # -- serving ------------------------------------------------------------------------------
    def start(self) -> None:
        """Serve in a background thread."""
        if self._thread is not None:
            raise RuntimeError("the server is already serving")
        self._thread = threading.Thread(
            target=self.serve_forever,
            name=f"dicomnet-server-{self.server_address[1]}",
            daemon=True,
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`."""
        self._accepting_thread = threading.current_thread()
        self._serving.set()
        try:
            self._accept_loop()
        finally:
            self._accept_done.set()

    def _accept_loop(self) -> None:
        from .association import Association

        while True:
            accepted = self._listener.accept()
            if accepted is None:
                return
            sock, _address = accepted
            assoc = Association(self.ae, "acceptor")
            assoc._handlers = HandlerTable(self._handlers)
            assoc._server = self
            assoc._contexts_override = self.contexts
            assoc._ae_title_override = self.ae_title
            with self._lock:
                if self._stopped:
                    sock.close()
                    return
                self._associations.append(assoc)
            if self.ssl_context is None:
                assoc.set_socket(Channel(sock, write_timeout=self.ae.network_timeout))
            else:
                assoc._pending_tls = (sock, self.ssl_context)
            assoc.start()

    def _association_ended(self, assoc: Association) -> None:
        with self._lock:
            if assoc in self._associations:
                self._associations.remove(assoc)

    def shutdown(self) -> None:
        """Stop accepting, abort open associations, wait for every thread, close every socket."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._listener.close()
        if self._serving.is_set() and self._accepting_thread is not threading.current_thread():
            self._accept_done.wait()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            associations = list(self._associations)
        for assoc in associations:
            if assoc.is_alive():
                assoc.abort()
        for assoc in associations:
            if assoc.is_alive() and assoc is not threading.current_thread():
                assoc.join(5.0)
        self._listener.release()
        self.ae._server_ended(self)

    def server_close(self) -> None:
        """Alias of :meth:`shutdown` (socketserver's name)."""
        self.shutdown()

    def __enter__(self) -> AssociationServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        host, port = self.server_address
        return f"<AssociationServer {self.ae_title!r} on {host}:{port}>"


def tls_channel(
    sock: socket.socket,
    context: ssl.SSLContext,
    timeout: float | None,
    write_timeout: float | None,
    on_wrapped: Callable[[ssl.SSLSocket], None] | None = None,
) -> Channel | None:
    """Do the server-side TLS handshake; ``None`` (and the socket closed) if it fails.

    ``on_wrapped`` is passed to :func:`~dicomnet.transport.server_handshake`.
    """
    peer = _peer(sock)  # before wrapping, which takes the descriptor away from sock
    try:
        tls = server_handshake(sock, context, timeout, on_wrapped)
    except (OSError, ssl.SSLError) as exc:
        LOGGER.error("TLS handshake with %s failed: %s", peer, exc)
        sock.close()
        return None
    return Channel(tls, write_timeout=write_timeout)


def _peer(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "the peer"


#: pynetdicom's name for the threaded server.
ThreadedAssociationServer = AssociationServer
