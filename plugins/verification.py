"""The Verification service class (PS3.4 Annex A): C-ECHO.

An SCU sends a C-ECHO-RQ on a presentation context for the Verification SOP
Class (1.2.840.10008.1.1); the SCP answers with a C-ECHO-RSP (PS3.7 9.1.5,
9.3.5). The SCP asks the application through ``EVT_C_ECHO`` first; without a
bound handler the answer is Success (the event's default handler).

Statuses (PS3.7 9.1.5.1.4 and Annex C): Success 0000H, and the failures
0122H *Refused: SOP class not supported*, 0210H *Duplicate invocation*, 0211H
*Unrecognized operation*, 0212H *Mistyped argument*. A handler may return any
of them, as an ``int`` or as a data set with Status (0000,0900).

**A handler that raises** gets 0110H *Processing failure* and a log record with
the traceback. PS3.7 Table 9.3-13 says the C-ECHO-RSP status "shall have a
value of Success", and 0110H is not in the list of 9.1.5.1.4; none of those
four failures means "the application failed", and answering Success when the
application's own check failed would make a health-check echo lie. 0110H is
the general failure of PS3.7 Annex C for exactly this case, and any SCU reads a
non-zero status as "not verified". (pynetdicom answers Success here.)

The SCU side needs nothing from this plugin: ``Association.send_c_echo``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dicomnet import _sop_groups
from dicomnet.dimse_messages import CEchoRQ, CEchoRSP
from dicomnet.events import EVT_C_ECHO
from dicomnet.hookspecs import hookimpl
from dicomnet.service import (
    PROCESSING_FAILURE,
    ServiceCall,
    ServiceClass,
    run_intervention,
)
from dicomnet.status import VERIFICATION_SERVICE_CLASS_STATUS

from ._handler_status import with_handler_status

__all__ = ["VERIFICATION", "dicomnet_service_classes", "verification_scp"]

#: the status an exception in the EVT_C_ECHO handler becomes (see the module docstring)
FAILURE_STATUS = PROCESSING_FAILURE


def verification_scp(call: ServiceCall) -> None:
    """Answer one C-ECHO-RQ (PS3.7 9.3.5.2): the handler's status, Success by default."""
    request = call.request
    status, extra = run_intervention(call, EVT_C_ECHO, failure_status=FAILURE_STATUS)
    response = CEchoRSP(
        MessageIDBeingRespondedTo=request.MessageID,
        AffectedSOPClassUID=getattr(request, "AffectedSOPClassUID", None),
        Status=status,
    )
    call.send(
        with_handler_status(response, extra, event=EVT_C_ECHO, failure_status=FAILURE_STATUS)
    )


VERIFICATION = ServiceClass(
    name="verification",
    sop_classes=_sop_groups.SERVICE_GROUPS["verification"],
    status_table=VERIFICATION_SERVICE_CLASS_STATUS,
    requests=[CEchoRQ],
    events=[EVT_C_ECHO],
    context_lists=_sop_groups.context_lists_of("verification"),
    scp=verification_scp,
    failure_status=FAILURE_STATUS,
    reference="PS3.4 Annex A",
)


@hookimpl
def dicomnet_service_classes() -> Sequence[ServiceClass]:
    """The Verification service class."""
    return [VERIFICATION]
