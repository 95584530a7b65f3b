"""The hook specifications of dicomnet plugins: every hook a plugin may implement.

A plugin is a module (or any object) with functions marked ``@hookimpl`` whose
names are hooks below. Built-in service classes (``dicomnet.plugins.*``) are
plugins like any third-party one. See ``docs/plugins.md`` for the guide and
:mod:`dicomnet.plugin_manager` for loading.

Rules this module keeps:

* **One module, one marker name.** The markers are made once, here, with the
  project name ``"dicomnet"``; pluggy ignores an implementation whose marker
  has another name, so import them from here::

      from dicomnet.hookspecs import hookimpl

* **Declarative hooks, explicit dispatch.** The collect-all hooks
  (:func:`dicomnet_service_classes`, :func:`dicomnet_extra_sop_classes`) are
  called once per application entity, when its registry is built. DIMSE
  requests are then routed through the registry straight to the one service
  class that claims their SOP class -- never through a hook per message.
* **Policy hooks answer first, or not at all.** The association hooks are
  ``firstresult``: plugins are asked in pluggy's order (last registered first)
  and the first answer that is not ``None`` wins; ``None`` means "no opinion,
  ask the next". When nobody answers, the AE's own configuration decides.
* **Validated at registration.** A function named ``dicomnet_*`` that is not
  specified here, or whose arguments are not a subset of the specification's,
  is an error when the plugin is registered
  (:func:`dicomnet.plugin_manager.make_plugin_manager` calls
  ``check_pending()``), not when it would first have been called.

Hook implementations may take fewer arguments than specified (pluggy passes
only those they name).
"""
# The specifications are signatures with a docstring; pluggy never calls them.
# mypy: disable-error-code="empty-body"

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .pdu import AAssociateRJ, AAssociateRQ
    from .service import ServiceClass
    from .user_info import UserIdentityRQ

__all__ = [
    "PROJECT_NAME",
    "ExtraSOPClass",
    "IdentityDecision",
    "MoveDestination",
    "ReportDestination",
    "dicomnet_accept_association",
    "dicomnet_extra_sop_classes",
    "dicomnet_resolve_move_destination",
    "dicomnet_resolve_report_destination",
    "dicomnet_service_classes",
    "dicomnet_verify_user_identity",
    "hookimpl",
    "hookspec",
]

#: The pluggy project name: markers, plugin managers and entry points use it.
PROJECT_NAME = "dicomnet"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: ``(service_name, sop_class_uid, keyword)``
ExtraSOPClass = tuple[str, str, str]
#: ``(accepted, server_response)``
IdentityDecision = tuple[bool, bytes | None]
#: ``(host, port)`` or ``(host, port, kwargs)`` (kwargs for ``AE.associate``)
MoveDestination = tuple[str, int] | tuple[str, int, Mapping[str, Any]]
#: the same shape, for the association an N-EVENT-REPORT is sent on
ReportDestination = MoveDestination


# -- declarations: collect-all, called once per AE ------------------------------------------


@hookspec
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """Declare the service classes this plugin provides (PS3.4).

    **Collect-all**: every plugin's list is gathered when an AE builds its
    registry. Each :class:`~dicomnet.service.ServiceClass` names its SOP
    classes, status table, the DIMSE requests it serves and its SCP.

    A SOP Class UID may be claimed by one service class only: a second claim,
    from the same or another plugin, fails at start-up with a
    :class:`~dicomnet.plugin_manager.PluginError` naming both plugins and the
    UID. Service class names must be unique too.
    """


@hookspec
def dicomnet_extra_sop_classes() -> Sequence[ExtraSOPClass]:
    """Attach more SOP classes to a service class declared by some plugin.

    **Collect-all.** Each entry is ``(service_name, sop_class_uid, keyword)``:
    a private SOP class (e.g. a vendor's private storage class, PS3.4 B.5 allows
    specialised and private SOP classes) served by an existing service class,
    such as ``("storage", "1.2.246.352.70.1.70", "VarianRTPlanStorage")``. The
    keyword becomes ``dicomnet.sop_class.<keyword>``.

    The same uniqueness rule as for :func:`dicomnet_service_classes` applies.
    An entry for a service class absent from this build (a minimal build
    without it) is skipped with a warning in the log.
    """


# -- association policy: firstresult -----------------------------------------------------------


@hookspec(firstresult=True)
def dicomnet_accept_association(assoc: Any, request: AAssociateRQ) -> AAssociateRJ | None:
    """Decide whether to reject an association request before it is negotiated.

    **firstresult.** Called by an acceptor for every A-ASSOCIATE-RQ, after the
    checks PS3.8 7.1.1 makes of the request itself (protocol version,
    application context) and before presentation contexts are negotiated.
    ``assoc`` is the :class:`~dicomnet.association.Association` being set up;
    ``request`` the :class:`~dicomnet.pdu.AAssociateRQ`.

    Return ``None`` to leave the decision to other plugins and the AE's own
    rules (``require_called_aet``, ``maximum_associations``...), or the
    :class:`~dicomnet.pdu.AAssociateRJ` to send (PS3.8 9.3.4, Table 9-21), e.g.
    :data:`dicomnet.acse.REJECT_CALLING_AE_TITLE`. There is no "accept
    unconditionally" answer: a plugin can only refuse.
    """


@hookspec(firstresult=True)
def dicomnet_verify_user_identity(
    assoc: Any, identity: UserIdentityRQ
) -> IdentityDecision | None:
    """Check the requestor's User Identity Negotiation item (PS3.7 D.3.3.7, PS3.15).

    **firstresult.** Called by an acceptor when the A-ASSOCIATE-RQ carries a
    58H sub-item. ``identity`` is the :class:`~dicomnet.user_info.UserIdentityRQ`
    (type 1 username, 2 username and passcode, 3 Kerberos, 4 SAML, 5 JWT).

    Return ``None`` for no opinion (the application's ``EVT_USER_ID`` handler,
    if any, decides), or ``(accepted, server_response)``: ``accepted`` false
    rejects the association (:data:`dicomnet.acse.REJECT_USER_IDENTITY`);
    ``server_response`` is sent in the 59H sub-item when the requestor asked
    for a positive response (``None``: no response item).
    """


@hookspec(firstresult=True)
def dicomnet_resolve_move_destination(assoc: Any, ae_title: str) -> MoveDestination | None:
    """Find the network address of a C-MOVE destination (PS3.4 C.4.2.2.1).

    **firstresult.** Called by a Query/Retrieve SCP for each C-MOVE-RQ with the
    Move Destination AE title (stripped of padding). Return ``None`` when
    unknown to this plugin, ``(host, port)``, or ``(host, port, kwargs)`` where
    ``kwargs`` are passed to ``AE.associate`` (``contexts``, ``ext_neg``,
    ``tls_args``...) for the sub-association. When nobody knows the title the
    SCP falls back to the application's ``EVT_C_MOVE`` handler; if that does
    not know it either, it answers A801H *Move destination unknown*.
    """


@hookspec(firstresult=True)
def dicomnet_resolve_report_destination(
    assoc: Any, ae_title: str, sop_class_uid: str
) -> ReportDestination | None:
    """Find the network address of the AE an N-EVENT-REPORT must be sent to (PS3.7 10.1.1).

    **firstresult.** Asked by an SCP that notifies an SCU on an association of
    its own: the Storage Commitment SCP reporting a result after the SCU released
    the association of the request (PS3.4 J.3.3.1.2). ``ae_title`` is the SCU's
    AE title (stripped of padding), ``sop_class_uid`` the SOP class of the report
    (Storage Commitment Push Model...). ``assoc`` is the association the request
    came on, or ``None`` when the application reports later, on its own.

    Return ``None`` when unknown to this plugin, ``(host, port)``, or ``(host,
    port, kwargs)`` where ``kwargs`` go to ``AE.associate`` (``tls_args``,
    ``max_pdu``...; ``contexts`` and ``ext_neg`` are made by the SCP). When no
    plugin knows the title, the AE's ``report_destinations`` table is used, then
    its ``move_destinations``; if none knows it, the report is not sent and an
    error is logged.
    """
