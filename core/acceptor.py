"""The acceptor's side of an association: from TCP connection to release (PS3.8 7.1, 9.2).

:func:`serve_as_acceptor` runs in the association's own thread, so a peer
that connects and says nothing -- or never finishes its TLS handshake -- holds
up nobody else. It asks the kernel for the A-ASSOCIATE-RQ (ARTIM bounds the
wait, PS3.8 9.1.5), decides, and then serves the association until the
connection closes.

The decision is layered, each layer able to reject:

1. the AE's limit on simultaneous associations (A-ASSOCIATE-RJ transient,
   service provider presentation, *local limit exceeded*: PS3.8 Table 9-21);
2. the plugins' ``dicomnet_accept_association`` policy hook;
3. :func:`dicomnet.acse.accept_or_reject` with the AE's configuration: protocol
   version, application context, called/calling AE titles, presentation
   contexts and roles (without the SOP classes no loaded service class serves:
   :func:`_servable_contexts`), and the application's answers to the negotiation
   events (``EVT_USER_ID``, ``EVT_SOP_EXTENDED``, ``EVT_SOP_COMMON``,
   ``EVT_ASYNC_OPS``) or, for user identity, the plugins'
   ``dicomnet_verify_user_identity``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
from pydicom.uid import UID

from .acse import (
    AcceptorConfig,
    ContextDefinition,
    IdentityVerifier,
    accept_or_reject,
    describe_rejection,
    reject_local_limit_exceeded,
)
from .events import (
    EVT_ACCEPTED,
    EVT_ACSE_SENT,
    EVT_ASYNC_OPS,
    EVT_CONN_OPEN,
    EVT_ESTABLISHED,
    EVT_REJECTED,
    EVT_REQUESTED,
    EVT_SOP_COMMON,
    EVT_SOP_EXTENDED,
    EVT_USER_ID,
)
from .fsm import State
from .pdu import AAssociateAC, AAssociateRJ, AAssociateRQ
from .user_info import AsyncOperationsWindow, UserIdentityRQ

if TYPE_CHECKING:  # pragma: no cover
    from .association import Association

__all__ = ["serve_as_acceptor"]

LOGGER = logging.getLogger("dicomnet.assoc")


def serve_as_acceptor(assoc: Association) -> None:
    """Negotiate, then serve, one accepted connection (in the association's thread)."""
    channel = assoc._channel
    assert channel is not None
    ul = assoc._make_upper_layer()
    if assoc._stop_requested:  # aborted (server shutdown) before it began
        return
    assoc._notify(EVT_CONN_OPEN, address=channel.peer)
    with assoc._lock:
        ul.connection_made()
    assoc._pump(lambda: assoc._rq is not None or assoc._closed)
    rq = assoc._rq
    if rq is None:
        return
    _record_requestor(assoc, rq)
    assoc._notify(EVT_REQUESTED)
    try:
        decision = decide(assoc, rq)
    except Exception:
        LOGGER.exception("Error while deciding on an association request; rejecting it")
        decision = None
    response: AAssociateAC | AAssociateRJ
    if decision is None or isinstance(decision, AAssociateRJ):
        response = decision if decision is not None else AAssociateRJ(2, 1, 1)
    else:
        assert isinstance(decision.response, AAssociateAC)
        response = decision.response
    with assoc._lock:
        # The association may be over already: a PDU the peer sent before our
        # answer (an A-ABORT, or one that Table 9-10 answers with AA-8 in Sta3) or
        # our own abort (the server shutting down) ended it while we decided. That
        # is an ordinary abort, reported as such; there is nobody left to answer.
        answerable = ul.state is State.Sta3
        if answerable:
            if isinstance(response, AAssociateRJ):
                ul.reject(response)
            else:
                ul.accept(response)
    if not answerable:
        LOGGER.info("The association from %r ended before it was answered", rq.calling_ae_title)
    elif isinstance(response, AAssociateRJ):
        LOGGER.info(
            "Rejecting the association from %r: %s",
            rq.calling_ae_title,
            describe_rejection(response),
        )
        # rejected before the peer can know it: it may ask again at once, and this
        # association must not count against maximum_associations any more
        assoc.is_rejected = True
        assoc._notify(EVT_ACSE_SENT, primitive=response)
        assoc._flush()
        assoc._notify(EVT_REJECTED)
    else:
        assert decision is not None and not isinstance(decision, AAssociateRJ)
        assoc._notify(EVT_ACSE_SENT, primitive=response)
        assoc._flush()
        assoc._established(decision)
        assoc.acceptor.maximum_length = decision.max_receive_length
        assoc._notify(EVT_ACCEPTED)
        assoc._notify(EVT_ESTABLISHED)
    assoc._pump(lambda: False)


def _record_requestor(assoc: Association, rq: AAssociateRQ) -> None:
    user = assoc.requestor
    user.ae_title = rq.calling_ae_title
    info = rq.user_information
    user.maximum_length = info.maximum_length
    user.implementation_class_uid = (
        UID(info.implementation_class_uid) if info.implementation_class_uid else None
    )
    user.implementation_version_name = info.implementation_version_name
    window = info.async_ops_window
    if window is not None:
        user.asynchronous_operations = (window.maximum_invoked, window.maximum_performed)
    user.role_selection = {UID(item.sop_class_uid): item for item in info.role_selection}
    user.sop_class_extended = {
        UID(item.sop_class_uid): item.service_class_application_information
        for item in info.sop_class_extended
    }
    user.sop_class_common_extended = {
        UID(item.sop_class_uid): item for item in info.sop_class_common_extended
    }
    user.user_identity = info.user_identity_rq
    assoc.acceptor.ae_title = assoc._ae_title_override or assoc.ae.ae_title


def decide(assoc: Association, rq: AAssociateRQ) -> Any:
    """Accept (a :class:`~dicomnet.acse.NegotiationResult`) or reject (an A-ASSOCIATE-RJ)."""
    ae = assoc.ae
    # This association counts itself. Those already released, aborted or rejected
    # do not count, although their threads may not have ended yet (one waits for
    # the peer to close the connection): a client that releases and at once asks
    # again must not be turned away.
    active = sum(
        1
        for a in ae.active_associations
        if not (a.is_released or a.is_aborted or a.is_rejected)
    )
    if active > ae.maximum_associations:
        return reject_local_limit_exceeded()
    verdict = ae._plugin_manager.hook.dicomnet_accept_association(assoc=assoc, request=rq)
    if isinstance(verdict, AAssociateRJ):
        return verdict
    config: AcceptorConfig = ae._acceptor_config(assoc._contexts_override, assoc._ae_title_override)
    info = rq.user_information
    changes: dict[str, Any] = {}
    servable = _servable_contexts(assoc, config, rq)
    if servable is not None:
        changes["supported_contexts"] = servable
    verifier = _identity_verifier(assoc, info.user_identity_rq)
    if verifier is not None:
        changes["identity_verifier"] = verifier
    if info.sop_class_extended and assoc._listens(EVT_SOP_EXTENDED):
        requested = {
            UID(item.sop_class_uid): item.service_class_application_information
            for item in info.sop_class_extended
        }
        answers = assoc._intervene(EVT_SOP_EXTENDED, {"app_info": requested}) or {}
        changes["sop_class_extended"] = {
            str(uid): bytes(value) for uid, value in answers.items() if value is not None
        }
    if info.sop_class_common_extended and assoc._listens(EVT_SOP_COMMON):
        items = {UID(item.sop_class_uid): item for item in info.sop_class_common_extended}
        accepted = assoc._intervene(EVT_SOP_COMMON, {"items": items}) or {}
        changes["accept_specialized"] = bool(accepted)
    if info.async_ops_window is not None and assoc._listens(EVT_ASYNC_OPS):
        window = info.async_ops_window
        try:
            invoked, performed = assoc._intervene(
                EVT_ASYNC_OPS,
                {"invoked": window.maximum_invoked, "performed": window.maximum_performed},
            )
            changes["async_window"] = AsyncOperationsWindow(int(invoked), int(performed))
        except Exception:
            LOGGER.exception("The EVT_ASYNC_OPS handler failed; operations stay synchronous")
    if changes:
        config = attrs.evolve(config, **changes)
    result = accept_or_reject(rq, config)
    # a rejection by the checks of accept_or_reject (AE titles, user identity...)
    # comes back as a result holding the A-ASSOCIATE-RJ
    return result if result.accepted else result.response


def _servable_contexts(
    assoc: Association, config: AcceptorConfig, rq: AAssociateRQ
) -> tuple[ContextDefinition, ...] | None:
    """The supported contexts this AE can serve, or ``None`` when that is all of them.

    A supported abstract syntax that no loaded service class serves as SCP is
    left out, so the context is rejected with *abstract syntax not supported*
    (PS3.8 Table 9-18, result 3) rather than accepted only to refuse every
    request on it with *SOP class not supported* (0122H): ``AE(plugins=
    ["verification"])`` accepts Verification and nothing else it cannot serve.
    Kept anyway: a SOP class for which the requestor proposes the SCP role (SCP/SCU
    Role Selection, PS3.7 D.3.3.4), where the acceptor may only need to be SCU
    (C-STORE sub-operations of a C-GET), which needs no service class.
    """
    registry = assoc.ae._registry
    supported = config.supported_contexts
    unserved = [
        d
        for d in supported
        if (service := registry.service_for(d.abstract_syntax)) is None or service.scp is None
    ]
    if not unserved:
        return None
    wants_scp = {item.sop_class_uid for item in rq.user_information.role_selection if item.scp_role}
    dropped = {id(d) for d in unserved if d.abstract_syntax not in wants_scp}
    if not dropped:
        return None
    return tuple(d for d in supported if id(d) not in dropped)


def _identity_verifier(
    assoc: Association, identity: UserIdentityRQ | None
) -> IdentityVerifier | None:
    """The user identity policy: the ``EVT_USER_ID`` handler, else the plugins' hook."""
    if identity is None:
        return None
    hook = assoc.ae._plugin_manager.hook.dicomnet_verify_user_identity
    if not assoc._listens(EVT_USER_ID) and not hook.get_hookimpls():
        return None  # nobody verifies identities: accept without a response (PS3.7 D.3.3.7)

    def verify(item: UserIdentityRQ) -> bytes | AAssociateRJ | None:
        if assoc._listens(EVT_USER_ID):
            attrs_ = {
                "user_id_type": item.user_identity_type,
                "primary_field": item.primary_field,
                "secondary_field": item.secondary_field or None,
            }
            try:
                verified, response = assoc._intervene(EVT_USER_ID, attrs_)
            except Exception:
                LOGGER.exception("The EVT_USER_ID handler failed; rejecting the identity")
                return None
        else:
            answer = hook(assoc=assoc, identity=item)
            if answer is None:
                return b""
            verified, response = answer
        if not verified:
            return None
        return bytes(response or b"")

    return verify
