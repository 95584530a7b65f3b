"""The Application Entity: configuration, association requests and servers (PS3.7 A, PS3.8 7).

:class:`ApplicationEntity` (alias ``AE``) is the object a pynetdicom program
builds first, with the same attributes and methods: its AE title and
timeouts, the presentation contexts it requests and supports,
:meth:`~ApplicationEntity.associate` as a requestor and
:meth:`~ApplicationEntity.start_server` as an acceptor.

Two things are new. Its service classes come from plugins: ``AE()`` loads the
built-in and installed ones, ``AE(plugins=["verification"])`` composes a
minimal build, and ``AE(block_plugins=[...])`` leaves some out; the SOP class
registry is built once here and shared by every association. And handlers
can be bound on the AE itself (:meth:`bind`), below those of its servers and
associations.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydicom.uid import UID

from . import acse
from .association import Association
from .events import EventHandlerType, EventType, HandlerTable
from .pdu_primitives import SCP_SCU_RoleSelectionNegotiation, items_from_primitives
from .plugin_manager import ServiceRegistry, make_plugin_manager
from .presentation import DEFAULT_TRANSFER_SYNTAXES, PresentationContext
from .server import AssociationServer
from .transport import connect
from .user_info import (
    AsyncOperationsWindow,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
)

if TYPE_CHECKING:  # pragma: no cover
    import ssl

__all__ = ["AE", "ApplicationEntity"]

LOGGER = logging.getLogger("dicomnet.ae")

Address = tuple[str, int] | tuple[str, int, int, int]


def _timeout(name: str, value: float | None, *, allow_zero: bool = True) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"'{name}' must be a number of seconds or None")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"'{name}' must be {'>=' if allow_zero else '>'} 0 or None")
    return float(value)


def _ae_title(value: str | bytes, name: str = "ae_title") -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if not isinstance(value, str):
        raise TypeError(f"'{name}' must be str")
    title = value.strip()
    if not 0 < len(title) <= 16 or "\\" in title or any(ord(c) < 32 for c in title):
        raise ValueError(
            f"Invalid '{name}' value {value!r}: 1 to 16 characters, no backslash or control "
            "characters (PS3.5 Table 6.2-1, AE)"
        )
    return title


def _syntaxes(transfer_syntax: Any) -> list[str]:
    if transfer_syntax is None:
        return list(DEFAULT_TRANSFER_SYNTAXES)
    if isinstance(transfer_syntax, str | bytes):
        transfer_syntax = [transfer_syntax]
    return [s.decode("ascii") if isinstance(s, bytes) else str(s) for s in transfer_syntax]


class ApplicationEntity:
    """A local DICOM Application Entity.

    :param ae_title: this AE's title (1 to 16 characters).
    :param plugins: the plugins providing its service classes; ``None`` loads
        every built-in and installed plugin (see :mod:`dicomnet.plugin_manager`).
    :param block_plugins: names of plugins never to load.
    """

    def __init__(
        self,
        ae_title: str = "DICOMNET",
        *,
        plugins: Sequence[Any] | None = None,
        block_plugins: Sequence[str] = (),
    ) -> None:
        self._ae_title = _ae_title(ae_title)
        self._acse_timeout: float | None = 30.0
        self._dimse_timeout: float | None = 30.0
        self._network_timeout: float | None = 60.0
        self._connection_timeout: float | None = None
        self._artim_timeout = 30.0
        self._maximum_associations = 10
        self._maximum_pdu_size = 16382
        self._maximum_send_length = 0
        self._spool_threshold: int | None = 8 * 1024 * 1024
        self._spool_directory: str | None = None
        self._require_called_aet = False
        self._require_calling_aet: list[str] = []
        self._implementation_class_uid = UID(acse.IMPLEMENTATION_CLASS_UID)
        self._implementation_version_name: str | None = acse.IMPLEMENTATION_VERSION_NAME
        self._requested: list[PresentationContext] = []
        self._supported: dict[str, PresentationContext] = {}
        self._handlers = HandlerTable()
        self._lock = threading.Lock()
        self._servers: list[AssociationServer] = []
        self._requestors: list[Association] = []
        self._config_generation = 0
        self._config_cache: dict[tuple[int, int, str | None], acse.AcceptorConfig] = {}
        self._plugin_manager = make_plugin_manager(plugins, block_plugins)
        self._registry = ServiceRegistry.from_plugin_manager(self._plugin_manager)

    # -- identity -----------------------------------------------------------------------------
    @property
    def ae_title(self) -> str:
        """This AE's title."""
        return self._ae_title

    @ae_title.setter
    def ae_title(self, value: str) -> None:
        self._ae_title = _ae_title(value)
        self._changed()

    @property
    def implementation_class_uid(self) -> UID:
        """The Implementation Class UID sent in negotiation (PS3.7 D.3.3.2)."""
        return self._implementation_class_uid

    @implementation_class_uid.setter
    def implementation_class_uid(self, value: str) -> None:
        uid = UID(value)
        if not uid.is_valid:
            raise ValueError(f"Invalid 'implementation_class_uid' value {value!r}")
        self._implementation_class_uid = uid
        self._changed()

    @property
    def implementation_version_name(self) -> str | None:
        """The Implementation Version Name sent in negotiation, 1 to 16 characters or None."""
        return self._implementation_version_name

    @implementation_version_name.setter
    def implementation_version_name(self, value: str | None) -> None:
        if value is not None and not 0 < len(value.strip()) <= 16:
            raise ValueError("'implementation_version_name' must be 1 to 16 characters or None")
        self._implementation_version_name = None if value is None else value.strip()
        self._changed()

    # -- timeouts and limits ------------------------------------------------------------------
    @property
    def acse_timeout(self) -> float | None:
        """Seconds to wait for an association or release response (default 30)."""
        return self._acse_timeout

    @acse_timeout.setter
    def acse_timeout(self, value: float | None) -> None:
        self._acse_timeout = _timeout("acse_timeout", value)

    @property
    def dimse_timeout(self) -> float | None:
        """Seconds to wait for each DIMSE response (default 30)."""
        return self._dimse_timeout

    @dimse_timeout.setter
    def dimse_timeout(self, value: float | None) -> None:
        self._dimse_timeout = _timeout("dimse_timeout", value)

    @property
    def network_timeout(self) -> float | None:
        """Seconds without any data from the peer before aborting (default 60)."""
        return self._network_timeout

    @network_timeout.setter
    def network_timeout(self, value: float | None) -> None:
        self._network_timeout = _timeout("network_timeout", value)

    @property
    def connection_timeout(self) -> float | None:
        """Seconds to wait for the TCP connection (and TLS handshake) to open (default None)."""
        return self._connection_timeout

    @connection_timeout.setter
    def connection_timeout(self, value: float | None) -> None:
        self._connection_timeout = _timeout("connection_timeout", value, allow_zero=False)

    @property
    def maximum_associations(self) -> int:
        """How many associations may be active at once; more are rejected (default 10)."""
        return self._maximum_associations

    @maximum_associations.setter
    def maximum_associations(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("'maximum_associations' must be an int >= 1")
        self._maximum_associations = value

    @property
    def maximum_pdu_size(self) -> int:
        """The Maximum Length we announce: the largest P-DATA-TF we accept (0: unlimited)."""
        return self._maximum_pdu_size

    @maximum_pdu_size.setter
    def maximum_pdu_size(self, value: int) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (value == 0 or 7 <= value <= 0xFFFFFFFF)
        ):
            raise ValueError("'maximum_pdu_size' must be 0 (unlimited) or 7 to 4294967295")
        self._maximum_pdu_size = value
        self._changed()

    @property
    def spool_threshold(self) -> int | None:
        """Received C-STORE data sets larger than this many bytes go to a file as they arrive.

        Smaller ones stay in memory. ``0`` writes every data set to a file
        (pynetdicom's ``STORE_RECV_CHUNKED_DATASET``); ``None`` keeps every one
        in memory. Default 8 MiB. See docs/storage.md, "Receiving".
        """
        return self._spool_threshold

    @spool_threshold.setter
    def spool_threshold(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ValueError("'spool_threshold' must be an int >= 0 or None")
        self._spool_threshold = value

    @property
    def spool_directory(self) -> str | None:
        """Where received data sets are written as they arrive (default: the system's temp folder).

        Put it on the file system of the folder the instances are stored in,
        so that storing one (``event.store()``) is an atomic rename.
        """
        return self._spool_directory

    @spool_directory.setter
    def spool_directory(self, value: str | os.PathLike[str] | None) -> None:
        self._spool_directory = None if value is None else os.fspath(value)

    @property
    def require_called_aet(self) -> bool:
        """Reject requests whose Called AE Title is not ours (PS3.8 Table 9-21, reason 7)."""
        return self._require_called_aet

    @require_called_aet.setter
    def require_called_aet(self, value: bool) -> None:
        self._require_called_aet = bool(value)
        self._changed()

    @property
    def require_calling_aet(self) -> list[str]:
        """If not empty, accept only requestors with one of these AE titles (reason 3)."""
        return list(self._require_calling_aet)

    @require_calling_aet.setter
    def require_calling_aet(self, titles: Sequence[str]) -> None:
        self._require_calling_aet = [_ae_title(t, "require_calling_aet") for t in titles]
        self._changed()

    # -- presentation contexts ----------------------------------------------------------------
    @property
    def requested_contexts(self) -> list[PresentationContext]:
        """The presentation contexts proposed by :meth:`associate`, in order."""
        return list(self._requested)

    @requested_contexts.setter
    def requested_contexts(self, contexts: Sequence[PresentationContext]) -> None:
        self._requested = []
        for cx in contexts:
            self.add_requested_context(cx.abstract_syntax or "", cx.transfer_syntax or None)

    def add_requested_context(self, abstract_syntax: str, transfer_syntax: Any = None) -> None:
        """Propose ``abstract_syntax`` with ``transfer_syntax`` (default: the uncompressed ones).

        :raises ValueError: past 128 requested contexts (PS3.8 9.3.2.2).
        """
        if len(self._requested) >= acse.MAX_PRESENTATION_CONTEXTS:
            raise ValueError(
                "Failed to add the requested presentation context as there are already the "
                f"maximum allowed number of requested contexts ({acse.MAX_PRESENTATION_CONTEXTS})"
            )
        cx = PresentationContext()
        cx.abstract_syntax = abstract_syntax
        for syntax in _syntaxes(transfer_syntax):
            cx.add_transfer_syntax(syntax)
        self._requested.append(cx)

    def remove_requested_context(self, abstract_syntax: str, transfer_syntax: Any = None) -> None:
        """Stop proposing ``abstract_syntax`` (or only some of its transfer syntaxes)."""
        uid = UID(abstract_syntax)
        if not any(cx.abstract_syntax == uid for cx in self._requested):
            raise ValueError(f"No requested context for '{uid.name}'")
        if transfer_syntax is None:
            self._requested = [cx for cx in self._requested if cx.abstract_syntax != uid]
            return
        drop = {UID(s) for s in _syntaxes(transfer_syntax)}
        kept = []
        for cx in self._requested:
            if cx.abstract_syntax == uid:
                cx.transfer_syntax = [ts for ts in cx.transfer_syntax if ts not in drop]
                if not cx.transfer_syntax:
                    continue
            kept.append(cx)
        self._requested = kept

    @property
    def supported_contexts(self) -> list[PresentationContext]:
        """The presentation contexts accepted as an acceptor, sorted by abstract syntax."""
        return sorted(self._supported.values(), key=lambda cx: str(cx.abstract_syntax))

    @supported_contexts.setter
    def supported_contexts(self, contexts: Sequence[PresentationContext]) -> None:
        self._supported = {}
        for cx in contexts:
            self.add_supported_context(
                cx.abstract_syntax or "", cx.transfer_syntax or None, cx.scu_role, cx.scp_role
            )

    def add_supported_context(
        self,
        abstract_syntax: str,
        transfer_syntax: Any = None,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
    ) -> None:
        """Accept ``abstract_syntax`` in these transfer syntaxes; roles per PS3.7 D.3.3.4.

        Adding an abstract syntax again adds its new transfer syntaxes and sets its roles.
        """
        uid = str(UID(abstract_syntax))
        cx = self._supported.get(uid)
        if cx is None:
            cx = PresentationContext()
            cx.abstract_syntax = uid
            self._supported[uid] = cx
        for syntax in _syntaxes(transfer_syntax):
            if syntax not in cx.transfer_syntax:
                cx.add_transfer_syntax(syntax)
        cx.scu_role = scu_role
        cx.scp_role = scp_role
        self._changed()

    def remove_supported_context(self, abstract_syntax: str, transfer_syntax: Any = None) -> None:
        """Stop accepting ``abstract_syntax`` (or only some of its transfer syntaxes)."""
        uid = str(UID(abstract_syntax))
        cx = self._supported.get(uid)
        if cx is None:
            raise ValueError(f"No supported context for '{UID(uid).name}'")
        if transfer_syntax is None:
            del self._supported[uid]
        else:
            drop = {UID(s) for s in _syntaxes(transfer_syntax)}
            cx.transfer_syntax = [ts for ts in cx.transfer_syntax if ts not in drop]
            if not cx.transfer_syntax:
                del self._supported[uid]
        self._changed()

    def _changed(self) -> None:
        self._config_generation += 1
        self._config_cache.clear()

    def _acceptor_config(
        self, contexts: Sequence[PresentationContext] | None, ae_title: str | None
    ) -> acse.AcceptorConfig:
        """The negotiation policy for an association, cached until the AE changes."""
        key = (self._config_generation, id(contexts) if contexts is not None else 0, ae_title)
        config = self._config_cache.get(key)
        if config is None:
            merged: dict[str, PresentationContext] = {}
            for cx in contexts if contexts is not None else self._supported.values():
                uid = str(cx.abstract_syntax)
                if uid in merged:  # the same abstract syntax twice: merge transfer syntaxes
                    for ts in cx.transfer_syntax:
                        if ts not in merged[uid].transfer_syntax:
                            merged[uid].add_transfer_syntax(ts)
                else:
                    copy = PresentationContext()
                    copy.abstract_syntax = uid
                    copy.transfer_syntax = list(cx.transfer_syntax)
                    copy.scu_role, copy.scp_role = cx.scu_role, cx.scp_role
                    merged[uid] = copy
            config = acse.AcceptorConfig(
                ae_title=ae_title or self._ae_title,
                supported_contexts=tuple(cx.to_definition() for cx in merged.values()),
                maximum_length=self._maximum_pdu_size,
                maximum_send_length=self._maximum_send_length,
                implementation_class_uid=str(self._implementation_class_uid),
                implementation_version_name=self._implementation_version_name,
                require_called_aet=self._require_called_aet,
                require_calling_aet=tuple(self._require_calling_aet),
            )
            self._config_cache[key] = config
        return config

    # -- events -------------------------------------------------------------------------------
    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] | None = None
    ) -> None:
        """Bind ``handler`` to ``event`` for every association of this AE."""
        self._handlers.bind(event, handler, args)

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        self._handlers.unbind(event, handler)

    def get_handlers(self, event: EventType) -> Any:
        return self._handlers.get_handlers(event)

    # -- associations -------------------------------------------------------------------------
    @property
    def active_associations(self) -> list[Association]:
        """Every association of this AE whose thread is alive, as requestor or acceptor."""
        with self._lock:
            found = [a for a in self._requestors if a.is_alive()]
            servers = list(self._servers)
        for server in servers:
            found.extend(server.active_associations)
        return found

    def _association_ended(self, assoc: Association) -> None:
        with self._lock:
            if assoc in self._requestors:
                self._requestors.remove(assoc)
        if assoc._server is not None:
            assoc._server._association_ended(assoc)

    def associate(
        self,
        addr: str,
        port: int,
        contexts: Sequence[PresentationContext] | None = None,
        ae_title: str = "ANY-SCP",
        max_pdu: int = 16382,
        ext_neg: Sequence[Any] | None = None,
        bind_address: tuple[str, int] | tuple[str, int, int, int] | None = None,
        tls_args: tuple[ssl.SSLContext, str | None] | None = None,
        evt_handlers: Sequence[EventHandlerType] | None = None,
    ) -> Association:
        """Request an association with the AE at ``addr``:``port`` (PS3.8 7.1).

        Returns the :class:`Association`; check ``is_established`` (or
        ``is_rejected``/``is_aborted``) before using it. ``tls_args`` is
        ``(ssl_context, server_hostname)``.

        :raises RuntimeError: when no presentation context is requested.
        :raises ValueError: for an invalid ``ae_title``, ``max_pdu`` or ``ext_neg``.
        """
        requested = list(contexts) if contexts is not None else self._requested
        if not requested:
            raise RuntimeError(
                "At least one requested presentation context is required before associating "
                "with a peer"
            )
        called = _ae_title(ae_title, "ae_title")
        if (
            isinstance(max_pdu, bool)
            or not isinstance(max_pdu, int)
            or not (max_pdu == 0 or 7 <= max_pdu <= 0xFFFFFFFF)
        ):
            raise ValueError("'max_pdu' must be 0 (unlimited) or 7 to 4294967295")
        assoc = Association(self, "requestor")
        assoc._handlers.bind_all(evt_handlers)
        assoc.requestor.ae_title = self._ae_title
        assoc.requestor.maximum_length = max_pdu
        assoc.requestor.implementation_class_uid = self._implementation_class_uid
        assoc.requestor.implementation_version_name = self._implementation_version_name
        assoc.acceptor.ae_title = called
        assoc.acceptor.address, assoc.acceptor.port = addr, port
        assoc._rq = self._build_rq(called, requested, max_pdu, ext_neg)
        with self._lock:
            self._requestors.append(assoc)
        ssl_context, hostname = tls_args if tls_args else (None, None)
        try:
            sock = connect(
                addr,
                port,
                timeout=self._connection_timeout,
                bind_address=bind_address,
                ssl_context=ssl_context,
                server_hostname=hostname,
            )
        except OSError as exc:
            LOGGER.error(
                "Association request failed: unable to connect to %s:%s (%s)", addr, port, exc
            )
            assoc.is_aborted = True
            with self._lock:
                self._requestors.remove(assoc)
            return assoc
        assoc.set_socket(sock)
        try:
            assoc.request()
        except BaseException:
            assoc.abort()
            raise
        return assoc

    def _build_rq(
        self,
        called: str,
        requested: Sequence[PresentationContext],
        max_pdu: int,
        ext_neg: Sequence[Any] | None,
    ) -> Any:
        items = items_from_primitives(
            [p for p in ext_neg or () if not isinstance(p, SCP_SCU_RoleSelectionNegotiation)]
        )
        roles = {
            str(p.sop_class_uid): (p.scu_role, p.scp_role)
            for p in ext_neg or ()
            if isinstance(p, SCP_SCU_RoleSelectionNegotiation)
        }
        definitions = []
        for cx in requested:
            definition = cx.to_definition()
            role = roles.get(str(cx.abstract_syntax))
            if role is not None:
                definition = acse.ContextDefinition(
                    definition.abstract_syntax, definition.transfer_syntaxes, role[0], role[1]
                )
            definitions.append(definition)
        return acse.build_associate_rq(
            calling_ae_title=self._ae_title,
            called_ae_title=called,
            contexts=definitions,
            maximum_length=max_pdu,
            implementation_class_uid=str(self._implementation_class_uid),
            implementation_version_name=self._implementation_version_name,
            async_window=next((i for i in items if isinstance(i, AsyncOperationsWindow)), None),
            sop_class_extended=[i for i in items if isinstance(i, SOPClassExtendedNegotiation)],
            sop_class_common_extended=[
                i for i in items if isinstance(i, SOPClassCommonExtendedNegotiation)
            ],
            user_identity=next((i for i in items if isinstance(i, UserIdentityRQ)), None),
        )

    # -- servers ------------------------------------------------------------------------------
    def make_server(
        self,
        address: Address,
        ae_title: str | None = None,
        contexts: Sequence[PresentationContext] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: Sequence[EventHandlerType] | None = None,
        server_class: type[AssociationServer] | None = None,
        **kwargs: Any,
    ) -> AssociationServer:
        """A listening, not yet serving, association server for this AE."""
        cls = server_class or AssociationServer
        server = cls(
            self,
            address,
            ae_title=_ae_title(ae_title) if ae_title else self._ae_title,
            contexts=contexts,
            ssl_context=ssl_context,
            evt_handlers=evt_handlers,
            **kwargs,
        )
        with self._lock:
            self._servers.append(server)
        return server

    def start_server(
        self,
        address: Address,
        block: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: Sequence[EventHandlerType] | None = None,
        ae_title: str | None = None,
        contexts: Sequence[PresentationContext] | None = None,
    ) -> AssociationServer | None:
        """Listen on ``address`` and accept associations (PS3.8 7.1).

        With ``block=True`` serve in this thread until :meth:`shutdown` (or
        Ctrl-C) and return ``None``; otherwise serve in a background thread and
        return the server.

        :raises ValueError: when no presentation context is supported.
        """
        if contexts is None and not self._supported:
            raise ValueError(
                "At least one supported presentation context is required before starting an "
                "association server"
            )
        server = self.make_server(address, ae_title, contexts, ssl_context, evt_handlers)
        if block:
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                server.shutdown()
            return None
        server.start()
        return server

    def _server_ended(self, server: AssociationServer) -> None:
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)

    def shutdown(self) -> None:
        """Stop every server of this AE and abort every association it still has."""
        with self._lock:
            servers = list(self._servers)
            requestors = list(self._requestors)
        for server in servers:
            server.shutdown()
        for assoc in requestors:
            if assoc.is_alive():
                assoc.abort()
                assoc.join(5.0)

    def __repr__(self) -> str:
        return f"<ApplicationEntity {self._ae_title!r}>"


AE = ApplicationEntity
