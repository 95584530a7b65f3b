"""SOP Class UIDs by keyword: ``from dicomnet.sop_class import CTImageStorage``.

The pynetdicom-compatible module ``dicomnet.sop_class``. Its names are
**generated**, never typed: one :class:`SOPClass` per *SOP Class* and *Meta SOP
Class* row of the PS3.6 UID registry (Table A-1) as pydicom ships it
(:data:`pydicom.uid.UID_dictionary`; the keyword column gives the name), plus
the well-known SOP instances (``PrinterInstance``...) as plain
:class:`~pydicom.uid.UID`. The generation rules, and the registry rows newer
than the installed pydicom, are in :mod:`dicomnet._sop_groups`.

Compatibility with pynetdicom 3.0.4 (checked against
``tests/fixtures/pynetdicom/reference.json``): every name pynetdicom exports
exists here with the same UID. The few names pynetdicom spells differently
from PS3.6 (typos such as ``PseudoColorSoftcopyPresentationStageStorage``,
older names such as ``ModalityWorklistInformationFind``) are aliases of the
PS3.6 keyword, listed in :data:`dicomnet._sop_groups.PYNETDICOM_ALIASES`.
This module also has the SOP classes pynetdicom leaves out (retired ones,
DICOS, DICONDE, real-time communication).

Differences from pynetdicom, by design:

* ``SOPClass.service_class`` is the :class:`~dicomnet.service.ServiceClass`
  *value* declared by the plugin that claims the SOP class in the default
  registry (built-ins plus autoloaded plugins, see
  :func:`dicomnet.plugin_manager.default_registry`), resolved on first use,
  or ``None`` when no loaded plugin claims it -- not a class.
* SOP classes that plugins declare (``dicomnet_service_classes`` or
  ``dicomnet_extra_sop_classes``) are importable by keyword through the
  module's ``__getattr__``; nothing rewrites this module's globals except
  :func:`register_uid`, kept for pynetdicom programs.
"""

from __future__ import annotations

import keyword as _pykeyword
from typing import Any, cast

from pydicom.uid import UID

from . import _sop_groups
from .plugin_manager import add_registered_uid, default_registry, registered_uids
from .service import ServiceClass

__all__ = [  # the generated names are appended below
    "SOPClass",
    "register_uid",
    "registered_uids",
    "uid_to_service_class",
    "uid_to_sop_class",
]


class SOPClass(UID):
    """A SOP Class UID that knows its keyword and the service class serving it."""

    _keyword: str = ""

    def __new__(cls, val: str, keyword: str = "") -> SOPClass:
        if isinstance(val, SOPClass) and not keyword:
            return val
        obj = cast(SOPClass, super().__new__(cls, str(val)))
        if keyword:
            obj._keyword = keyword
        return obj

    @property
    def keyword(self) -> str:
        """The PS3.6 keyword, or the one a plugin or :func:`register_uid` gave it."""
        return self._keyword or super().keyword

    @property
    def service_class(self) -> ServiceClass | None:
        """The service class that claims this SOP class in the default registry, or ``None``."""
        return default_registry().service_for(str(self))


def _generate() -> dict[str, UID]:
    names: dict[str, UID] = {}
    for kw, uid in _sop_groups.SOP_CLASSES.items():
        names[kw] = SOPClass(uid, kw)
    for alias, kw in _sop_groups.PYNETDICOM_ALIASES.items():
        names[alias] = names[kw]
    for kw, uid in _sop_groups.WELL_KNOWN_INSTANCES.items():
        names.setdefault(kw, UID(uid))
    return names


_GENERATED = _generate()
globals().update(_GENERATED)
__all__ += sorted(_GENERATED)  # noqa: PLE0605 -- generated names, like pynetdicom's module

#: UID -> the SOPClass object of that UID (first keyword wins: PS3.6 before aliases)
_BY_UID: dict[str, SOPClass] = {}
for _value in _GENERATED.values():
    if isinstance(_value, SOPClass):
        _BY_UID.setdefault(str(_value), _value)
del _value

#: uid -> "C-FIND" / "C-GET" / "C-MOVE" for Query/Retrieve registrations
_REGISTERED_DIMSE: dict[str, str] = {}


def uid_to_sop_class(uid: str) -> SOPClass:
    """The :class:`SOPClass` for ``uid``; a new one (no keyword) if it is not known."""
    found = _BY_UID.get(str(uid))
    if found is not None:
        return found
    keyword = default_registry().all_sop_classes().get(str(uid), "")
    return SOPClass(uid, keyword)


def uid_to_service_class(uid: str) -> ServiceClass | None:
    """The service class serving the SOP class (or with the service class UID) ``uid``.

    Unlike pynetdicom, which returns a base class for an unsupported UID, this
    returns ``None`` when no loaded plugin claims ``uid``.
    """
    registry = default_registry()
    found = registry.service_for(str(uid))
    if found is None:
        found = next((s for s in registry.services if s.uid == uid), None)
    return found


def _service_name(service_class: object) -> str:
    if isinstance(service_class, str):
        return service_class
    name = getattr(service_class, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError(
        "'service_class' must be a service class name (such as 'storage') or a ServiceClass"
    )


def register_uid(
    uid: str, keyword: str, service_class: Any, dimse_msg_type: str = ""
) -> None:
    """Register a private or new SOP class with a service class (pynetdicom's ``register_uid``).

    ``service_class`` is the service class's name (``"storage"``,
    ``"query_retrieve"``...) or a :class:`~dicomnet.service.ServiceClass`.
    ``dimse_msg_type`` (``"C-FIND"``, ``"C-GET"`` or ``"C-MOVE"``) is required
    for the Query/Retrieve service class, as in pynetdicom.

    Afterwards ``dicomnet.sop_class.<keyword>`` is the new :class:`SOPClass`,
    and every registry built from then on attaches it to the service class
    (when that service class is loaded). A plugin's
    ``dicomnet_extra_sop_classes()`` hook does the same without global state.
    """
    if not keyword.isidentifier() or _pykeyword.iskeyword(keyword):
        raise ValueError(
            f"The keyword '{keyword}' is not a valid Python identifier or is a Python keyword"
        )
    name = _service_name(service_class)
    if name == "query_retrieve":
        if dimse_msg_type not in ("C-FIND", "C-GET", "C-MOVE"):
            raise ValueError(
                "'dimse_msg_type' must be 'C-FIND', 'C-GET' or 'C-MOVE' when registering a "
                "UID with the Query/Retrieve service class"
            )
        _REGISTERED_DIMSE[str(uid)] = dimse_msg_type
    sop_class = SOPClass(uid, keyword)
    _BY_UID[str(uid)] = sop_class
    globals()[keyword] = sop_class
    if keyword not in __all__:
        __all__.append(keyword)
    add_registered_uid(name, str(uid), keyword)


def registered_message_type(uid: str) -> str:
    """The DIMSE message type a Query/Retrieve UID was registered for, or ``''``."""
    return _REGISTERED_DIMSE.get(str(uid), "")


def __getattr__(name: str) -> SOPClass:
    """A SOP class that a loaded plugin declares under the keyword ``name``."""
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    uid = default_registry().uid_for_keyword(name)
    if uid is None:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}: no PS3.6 keyword, pynetdicom "
            f"name or loaded plugin declares a SOP class of that name"
        )
    return SOPClass(uid, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
