"""Loading plugins and building the SOP class registry (pluggy; PS3.4 service classes).

Rules this module keeps:

* **Built-ins are ordinary plugins.** :data:`BUILTIN_PLUGINS` names them, as
  pytest's ``default_plugins`` does; our own distribution declares each in the
  ``dicomnet.plugins`` entry-point group (:data:`ENTRY_POINT_GROUP`), the group
  third-party distributions use. They are loaded through the same path as
  third-party plugins, and any of them can be blocked. Running from a source
  tree, where our entry points are not installed, a built-in is imported as
  ``dicomnet.plugins.<name>``.
* **Autoload, like pytest.** ``make_plugin_manager()`` with no list loads the
  built-ins and every third-party entry point. Setting the environment variable
  :data:`AUTOLOAD_ENV` (``DICOMNET_DISABLE_PLUGIN_AUTOLOAD``) to a non-empty
  value turns third-party autoloading off; built-ins still load.
* **Validate at registration.** Unknown plugin names, unknown hooks (a
  misspelt ``dicomnet_*`` function), hook implementations with arguments the
  specification lacks, and a SOP class claimed twice all raise
  :class:`PluginError` when the plugin manager or the registry is built, never
  while serving.
* **Register before serving.** pluggy registration is not thread-safe: build
  the plugin manager and the :class:`ServiceRegistry` once per AE, then only
  read them.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from types import MappingProxyType, ModuleType
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import DicomnetError
from .hookspecs import PROJECT_NAME, ExtraSOPClass
from .service import ServiceClass

__all__ = [
    "AUTOLOAD_ENV",
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginError",
    "PluginManager",
    "ServiceRegistry",
    "add_registered_uid",
    "default_registry",
    "make_plugin_manager",
    "registered_uids",
    "reset_default_registry",
]

LOGGER = logging.getLogger("dicomnet.plugins")

#: the entry-point group plugins are declared in (``[project.entry-points."dicomnet.plugins"]``)
ENTRY_POINT_GROUP = "dicomnet.plugins"
#: set to a non-empty value to stop loading third-party entry points (built-ins still load)
AUTOLOAD_ENV = "DICOMNET_DISABLE_PLUGIN_AUTOLOAD"
#: the built-in plugins, in registration order; each is ``dicomnet.plugins.<name>``
BUILTIN_PLUGINS: tuple[str, ...] = (
    "verification",
    "storage",
    "qr",
    "worklist",
    "query_services",
    "procedure_step",
    "storage_commitment",
    "instance_availability",
    "unified_procedure_step",
    "print_management",
    "application_event_logging",
    "display_system",
    "media_creation",
    "rt_machine_verification",
)

_OWN_DISTRIBUTION = "dicomnet"
_BUILTIN_PACKAGE = "dicomnet.plugins"


class PluginError(DicomnetError):
    """A plugin could not be loaded, or what it declares conflicts with another plugin."""


def _autoload_disabled() -> bool:
    return bool(os.environ.get(AUTOLOAD_ENV))


# -- the plugin manager -----------------------------------------------------------------------


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with the dicomnet hook specifications added.

    Like pytest with ``pytest_*``, a function named ``dicomnet_*`` is taken as a
    hook implementation even without the ``@hookimpl`` marker, so that a
    forgotten marker or one made with another project name cannot make a hook
    silently disappear.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None or not name.startswith("dicomnet_"):
            return opts
        method = getattr(plugin, name)
        if not inspect.isroutine(method) or hasattr(method, PROJECT_NAME + "_spec"):
            return None
        return pluggy.HookimplOpts(
            wrapper=False,
            hookwrapper=False,
            optionalhook=False,
            tryfirst=False,
            trylast=False,
            specname=None,
        )

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin``; a hook it gets wrong raises :class:`PluginError`."""
        try:
            return super().register(plugin, name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name or plugin!r}: {exc}") from exc
        except ValueError as exc:  # duplicate name or object
            raise PluginError(str(exc)) from exc

    def check_pending(self) -> None:
        """Raise :class:`PluginError` for any implementation of a hook that does not exist."""
        try:
            super().check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin {self.get_name(exc.plugin)!r}: {exc} (misspelt hook name? "
                f"the hooks are listed in dicomnet.hookspecs)"
            ) from exc


def _entry_points() -> dict[str, tuple[metadata.EntryPoint, str]]:
    """name -> (entry point, distribution name) of every plugin entry point.

    Two distributions declaring the same name raise :class:`PluginError`.
    """
    found: dict[str, tuple[metadata.EntryPoint, str]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        previous = found.get(ep.name)
        if previous is not None and previous[0].value != ep.value:
            theirs = dist if _is_own(previous[1]) else previous[1] if _is_own(dist) else None
            if theirs is not None:
                raise PluginError(_builtin_name_taken(theirs, ep.name))
            raise PluginError(
                f"two distributions declare the plugin {ep.name!r}: "
                f"{previous[1]} ({previous[0].value}) and {dist} ({ep.value})"
            )
        found[ep.name] = (ep, dist)
    return found


def _builtin_name_taken(dist: str, name: str) -> str:
    return (
        f"the distribution {dist} declares a plugin named {name!r}, the name of a "
        f"built-in plugin; rename its entry point"
    )


def _is_own(dist: str) -> bool:
    return dist.replace("_", "-").lower() == _OWN_DISTRIBUTION


def _load_entry_point(name: str, ep: metadata.EntryPoint, dist: str) -> object:
    try:
        return ep.load()
    except Exception as exc:
        raise PluginError(
            f"cannot load plugin {name!r} ({ep.value}, from the distribution {dist}): {exc}"
        ) from exc


def _load_builtin(name: str, eps: Mapping[str, tuple[metadata.EntryPoint, str]]) -> object:
    entry = eps.get(name)
    if entry is not None:
        ep, dist = entry
        if not _is_own(dist):
            raise PluginError(_builtin_name_taken(dist, name))
        return _load_entry_point(name, ep, dist)
    # running from a source tree: our entry points are not installed
    try:
        return importlib.import_module(f"{_BUILTIN_PACKAGE}.{name}")
    except ImportError as exc:
        raise PluginError(f"cannot import the built-in plugin {name!r}: {exc}") from exc


def _plugin_name(plugin: object, eps: Mapping[str, tuple[metadata.EntryPoint, str]]) -> str:
    """The name a plugin given as an object registers under (what errors and ``block`` use).

    A module: its entry-point name if it has one (``verification`` for
    ``dicomnet.plugins.verification``), else its dotted name. Another object:
    its ``__name__``, else its class's name.
    """
    if isinstance(plugin, ModuleType):
        module = plugin.__name__
        if module.startswith(_BUILTIN_PACKAGE + "."):
            return module.rpartition(".")[2]
        for name, (ep, _dist) in eps.items():
            if ep.value == module:
                return name
        return module
    own = getattr(plugin, "__name__", None)
    return own if isinstance(own, str) else type(plugin).__name__


def _register(pm: PluginManager, plugin: object, name: str, *, unique: bool = False) -> None:
    """Register ``plugin`` as ``name`` unless blocked or already there.

    ``unique``: ``plugin`` was given as an object, and another object of the same
    name is a different plugin (two instances of one class): number it.
    """
    if pm.is_blocked(name) or pm.is_registered(plugin):
        return
    if pm.has_plugin(name):
        if not unique:
            return
        number = 2
        while pm.has_plugin(f"{name}#{number}"):
            number += 1
        name = f"{name}#{number}"
    pm.register(plugin, name)


def make_plugin_manager(
    plugins: Sequence[str | ModuleType | object] | None = None,
    block: Sequence[str] = (),
) -> PluginManager:
    """A plugin manager with the requested plugins registered and validated.

    * ``plugins=None`` -- every built-in plugin, then every plugin declared in
      the :data:`ENTRY_POINT_GROUP` entry-point group by installed distributions
      (unless :data:`AUTOLOAD_ENV` is set);
    * a sequence -- a minimal build with exactly these plugins: names of
      built-in or entry-point plugins, dotted module names, or modules and
      objects to register directly.

    ``block`` names plugins never to load, even if listed. An unknown name, a
    plugin that fails to import, or a hook it gets wrong raises
    :class:`PluginError`.
    """
    pm = PluginManager()
    for name in block:
        pm.set_blocked(name)
    eps = _entry_points()
    if plugins is None:
        for name in BUILTIN_PLUGINS:
            if not pm.is_blocked(name):
                _register(pm, _load_builtin(name, eps), name)
        for name, (ep, dist) in sorted(eps.items()):
            if pm.is_blocked(name) or pm.has_plugin(name):
                continue
            if _is_own(dist):
                # a built-in added to pyproject.toml but not to BUILTIN_PLUGINS
                _register(pm, _load_entry_point(name, ep, dist), name)
            elif not _autoload_disabled():
                _register(pm, _load_entry_point(name, ep, dist), name)
    else:
        for item in plugins:
            if isinstance(item, str):
                if pm.is_blocked(item):
                    continue
                _register(pm, _load_named(item, eps), item)
            else:
                _register(pm, item, _plugin_name(item, eps), unique=True)
    pm.check_pending()
    return pm


def _load_named(name: str, eps: Mapping[str, tuple[metadata.EntryPoint, str]]) -> object:
    if name in BUILTIN_PLUGINS:
        return _load_builtin(name, eps)
    entry = eps.get(name)
    if entry is not None:
        return _load_entry_point(name, *entry)
    if "." in name:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise PluginError(f"cannot import the plugin module {name!r}: {exc}") from exc
    known = sorted({*BUILTIN_PLUGINS, *eps})
    raise PluginError(
        f"unknown plugin {name!r}; known plugins: {', '.join(known)} (or give a module)"
    )


# -- the registry -----------------------------------------------------------------------------


@attrs.frozen
class _Claim:
    plugin: str
    service: str
    keyword: str


class ServiceRegistry:
    """SOP Class UID -> service class, built once per AE from its plugins.

    Lookups are plain dictionary reads, safe from any thread once built.
    """

    __slots__ = ("_by_uid", "_claims", "_lists", "_plugins", "_services", "_sop_classes")

    def __init__(
        self,
        services: Iterable[tuple[str, ServiceClass]] = (),
        extras: Iterable[tuple[str, ExtraSOPClass]] = (),
    ) -> None:
        """Build from ``(plugin name, service class)`` pairs and ``(plugin name, extra)`` pairs.

        Raises :class:`PluginError` when two service classes share a name, a SOP
        class is claimed twice, or two service classes contribute the same
        presentation context list.
        """
        claims: dict[str, _Claim] = {}
        by_name: dict[str, ServiceClass] = {}
        plugins: dict[str, str] = {}

        def claim(plugin: str, service: str, uid: str, keyword: str) -> None:
            previous = claims.get(uid)
            if previous is not None:
                raise PluginError(
                    f"SOP class {uid} is claimed twice: as {previous.keyword!r} by the "
                    f"service class {previous.service!r} of plugin {previous.plugin!r}, and as "
                    f"{keyword!r} by the service class {service!r} of plugin {plugin!r}"
                )
            claims[uid] = _Claim(plugin, service, keyword)

        for plugin, service in services:
            if not isinstance(service, ServiceClass):
                raise PluginError(
                    f"plugin {plugin!r} declared {service!r}, which is not a ServiceClass"
                )
            if service.name in by_name:
                raise PluginError(
                    f"two service classes are named {service.name!r}: one from plugin "
                    f"{plugins[service.name]!r}, one from plugin {plugin!r}"
                )
            by_name[service.name] = service
            plugins[service.name] = plugin
            for uid, keyword in service.sop_classes.items():
                claim(plugin, service.name, uid, keyword)

        added: dict[str, dict[str, str]] = {}
        for plugin, extra in extras:
            try:
                service_name, uid, keyword = extra
            except (TypeError, ValueError):
                raise PluginError(
                    f"plugin {plugin!r} declared the extra SOP class {extra!r}; expected "
                    f"(service_name, uid, keyword)"
                ) from None
            if service_name not in by_name:
                LOGGER.warning(
                    "Plugin %r attaches %s (%s) to the service class %r, which is not loaded; "
                    "skipped",
                    plugin, uid, keyword, service_name,
                )
                continue
            claim(plugin, service_name, str(uid), str(keyword))
            added.setdefault(service_name, {})[str(uid)] = str(keyword)
        for service_name, more in added.items():
            service = by_name[service_name]
            by_name[service_name] = attrs.evolve(
                service, sop_classes={**service.sop_classes, **more}
            )

        lists: dict[str, tuple[str, ...]] = {}
        owners: dict[str, str] = {}
        for service in by_name.values():
            for list_name, uids in service.context_lists.items():
                if list_name in lists:
                    raise PluginError(
                        f"two service classes contribute {list_name}: {owners[list_name]!r} "
                        f"and {service.name!r}"
                    )
                lists[list_name] = uids
                owners[list_name] = service.name

        self._services: Mapping[str, ServiceClass] = MappingProxyType(by_name)
        self._plugins: Mapping[str, str] = MappingProxyType(plugins)
        self._claims: Mapping[str, _Claim] = MappingProxyType(claims)
        self._by_uid: Mapping[str, ServiceClass] = MappingProxyType(
            {uid: by_name[c.service] for uid, c in claims.items()}
        )
        self._sop_classes: Mapping[str, str] = MappingProxyType(
            {uid: c.keyword for uid, c in claims.items()}
        )
        self._lists: Mapping[str, tuple[str, ...]] = MappingProxyType(lists)

    @classmethod
    def from_plugin_manager(
        cls, pm: pluggy.PluginManager, *, include_registered_uids: bool = True
    ) -> ServiceRegistry:
        """Ask every plugin of ``pm`` for its declarations and build the registry.

        Each hook implementation is called on its own, so that a conflict or an
        exception names the plugin responsible. With ``include_registered_uids``
        the SOP classes registered with :func:`dicomnet.sop_class.register_uid`
        are attached too (those for service classes absent from the build, or
        already claimed by the service class, are skipped).
        """
        services: list[tuple[str, ServiceClass]] = []
        for plugin, result in _call_each(pm, "dicomnet_service_classes"):
            services.extend((plugin, service) for service in _as_sequence(plugin, result))
        extras: list[tuple[str, ExtraSOPClass]] = []
        for plugin, result in _call_each(pm, "dicomnet_extra_sop_classes"):
            extras.extend((plugin, extra) for extra in _as_sequence(plugin, result))
        if include_registered_uids:
            by_name = {s.name: s for _, s in services if isinstance(s, ServiceClass)}
            extras.extend(
                ("register_uid", entry)
                for entry in registered_uids()
                # for a service class in this build, unless it claims the UID already
                if entry[0] in by_name and entry[1] not in by_name[entry[0]].sop_classes
            )
        return cls(services, extras)

    # -- lookups --------------------------------------------------------------------------
    def service_for(self, uid: str) -> ServiceClass | None:
        """The service class that claims the SOP class ``uid``, or ``None``."""
        return self._by_uid.get(uid)

    def plugin_for(self, uid: str) -> str | None:
        """The name of the plugin that claims the SOP class ``uid``, or ``None``."""
        claim = self._claims.get(uid)
        return None if claim is None else claim.plugin

    def service(self, name: str) -> ServiceClass:
        """The service class called ``name`` (:class:`KeyError` if absent)."""
        return self._services[name]

    @property
    def services(self) -> tuple[ServiceClass, ...]:
        """Every service class, in registration order."""
        return tuple(self._services.values())

    def all_sop_classes(self) -> Mapping[str, str]:
        """SOP Class UID -> keyword of every claimed SOP class."""
        return self._sop_classes

    def uid_for_keyword(self, keyword: str) -> str | None:
        """The UID a plugin declared under ``keyword``, or ``None``."""
        for uid, kw in self._sop_classes.items():
            if kw == keyword:
                return uid
        return None

    def context_list(self, name: str) -> tuple[str, ...]:
        """The SOP classes of the prebuilt list ``name`` (:class:`KeyError` if no plugin has it)."""
        return self._lists[name]

    def context_list_names(self) -> tuple[str, ...]:
        return tuple(self._lists)

    def __contains__(self, uid: object) -> bool:
        return uid in self._by_uid

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_uid)

    def __len__(self) -> int:
        return len(self._by_uid)

    def __repr__(self) -> str:
        return (
            f"<ServiceRegistry: {len(self._services)} service classes, "
            f"{len(self._by_uid)} SOP classes>"
        )


def _call_each(pm: pluggy.PluginManager, hook_name: str) -> Iterator[tuple[str, Any]]:
    """``(plugin name, result)`` for each implementation of a no-argument hook."""
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():  # registration order
        try:
            result = impl.function()
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name!r} failed in {hook_name}(): {exc!r}"
            ) from exc
        if result is not None:
            yield impl.plugin_name, result


def _as_sequence(plugin: str, result: object) -> Sequence[Any]:
    if isinstance(result, str | bytes) or not isinstance(result, Sequence | set | frozenset):
        raise PluginError(
            f"plugin {plugin!r} returned {result!r}; a declaration hook returns a sequence"
        )
    return list(result)


# -- SOP classes registered at run time (pynetdicom's register_uid) ---------------------------

_registered: dict[str, ExtraSOPClass] = {}


def add_registered_uid(service_name: str, uid: str, keyword: str) -> None:
    """Attach ``uid`` to ``service_name`` in every registry built from now on.

    The store behind :func:`dicomnet.sop_class.register_uid`; a plugin's
    ``dicomnet_extra_sop_classes()`` hook does the same without global state.
    """
    _registered[str(uid)] = (service_name, str(uid), keyword)
    reset_default_registry()


def registered_uids() -> tuple[ExtraSOPClass, ...]:
    """``(service name, uid, keyword)`` of every run-time registration, in order."""
    return tuple(_registered.values())


# -- the default registry ---------------------------------------------------------------------

_default: ServiceRegistry | None = None


def default_registry() -> ServiceRegistry:
    """The registry of ``make_plugin_manager()`` (built-ins and autoloaded plugins).

    Built on first use and kept; :mod:`dicomnet.sop_class` and
    :mod:`dicomnet.presentation` resolve ``service_class`` and the prebuilt
    context lists from it. An AE built with its own plugin list has its own
    registry.
    """
    global _default  # noqa: PLW0603 -- a lazily built, process-wide value
    registry = _default
    if registry is None:
        registry = ServiceRegistry.from_plugin_manager(make_plugin_manager())
        _default = registry
    return registry


def reset_default_registry() -> None:
    """Forget the default registry (after installing plugins, or in tests)."""
    global _default  # noqa: PLW0603
    _default = None
