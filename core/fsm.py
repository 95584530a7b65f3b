"""Every change of Upper Layer state happens here: the PS3.8 9.2 state machine as data.

The state changes in :meth:`StateMachine.fire` and nowhere else. This module
knows the 13 states (PS3.8 Tables 9-1 to 9-5), the 19 events and the 28 actions
(Tables 9-6 to 9-9), and :data:`TRANSITIONS`, the state transition table
(Table 9-10): ``(State, Event) -> Action``. It does not perform the actions --
sending PDUs, issuing indications, running timers is
:mod:`dicomnet.upper_layer`'s job -- and it does no I/O.

A key missing from :data:`TRANSITIONS` is an empty cell of Table 9-10: the event
cannot happen in that state. For a local primitive that is the caller's error
(:class:`~dicomnet.errors.LocalProtocolError`, nothing changes). Received PDUs
(Evt3, 4, 6, 10, 12, 13, 16, 19) have an entry in every state with an open
transport connection (Sta2, Sta3, Sta5 to Sta13), so whatever the peer sends
has a defined answer; in Sta1 and Sta4 there is no connection to receive on.

Two actions choose between two next states: AE-6 (whether the service provider
accepts the A-ASSOCIATE-RQ) and AR-8 (whether this side is the association
requestor). :meth:`Action.next_state` makes that choice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from .errors import LocalProtocolError

__all__ = [
    "ACTIONS",
    "CONNECTED_STATES",
    "LOCAL_EVENTS",
    "PDU_EVENTS",
    "TRANSITIONS",
    "Action",
    "Event",
    "State",
    "StateMachine",
]


class State(enum.IntEnum):
    """The states of the Upper Layer protocol machine, PS3.8 Tables 9-1 to 9-5."""

    Sta1 = 1
    Sta2 = 2
    Sta3 = 3
    Sta4 = 4
    Sta5 = 5
    Sta6 = 6
    Sta7 = 7
    Sta8 = 8
    Sta9 = 9
    Sta10 = 10
    Sta11 = 11
    Sta12 = 12
    Sta13 = 13

    @property
    def description(self) -> str:
        return _STATE_DESCRIPTIONS[self]

    def __str__(self) -> str:
        return self.name


_STATE_DESCRIPTIONS: dict[State, str] = {
    State.Sta1: "Idle",
    State.Sta2: "Transport connection open (Awaiting A-ASSOCIATE-RQ PDU)",
    State.Sta3: "Awaiting local A-ASSOCIATE response primitive (from local user)",
    State.Sta4: "Awaiting transport connection opening to complete (from local transport service)",
    State.Sta5: "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
    State.Sta6: "Association established and ready for data transfer",
    State.Sta7: "Awaiting A-RELEASE-RP PDU",
    State.Sta8: "Awaiting local A-RELEASE response primitive (from local user)",
    State.Sta9: "Release collision requestor side; awaiting A-RELEASE response (from local user)",
    State.Sta10: "Release collision acceptor side; awaiting A-RELEASE-RP PDU",
    State.Sta11: "Release collision requestor side; awaiting A-RELEASE-RP PDU",
    State.Sta12: "Release collision acceptor side; awaiting A-RELEASE response primitive (from "
    "local user)",
    State.Sta13: "Awaiting Transport Connection Close Indication (Association no longer exists)",
}


class Event(enum.IntEnum):
    """The events of the Upper Layer protocol machine, the rows of PS3.8 Table 9-10."""

    Evt1 = 1
    Evt2 = 2
    Evt3 = 3
    Evt4 = 4
    Evt5 = 5
    Evt6 = 6
    Evt7 = 7
    Evt8 = 8
    Evt9 = 9
    Evt10 = 10
    Evt11 = 11
    Evt12 = 12
    Evt13 = 13
    Evt14 = 14
    Evt15 = 15
    Evt16 = 16
    Evt17 = 17
    Evt18 = 18
    Evt19 = 19

    @property
    def description(self) -> str:
        return _EVENT_DESCRIPTIONS[self]

    def __str__(self) -> str:
        return self.name


_EVENT_DESCRIPTIONS: dict[Event, str] = {
    Event.Evt1: "A-ASSOCIATE Request (local user)",
    Event.Evt2: "Transport Conn. Confirm (local transport service)",
    Event.Evt3: "A-ASSOCIATE-AC PDU (received on transport connection)",
    Event.Evt4: "A-ASSOCIATE-RJ PDU (received on transport connection)",
    Event.Evt5: "Transport Connection Indication (local transport service)",
    Event.Evt6: "A-ASSOCIATE-RQ PDU (received on transport connection)",
    Event.Evt7: "A-ASSOCIATE response primitive (accept)",
    Event.Evt8: "A-ASSOCIATE response primitive (reject)",
    Event.Evt9: "P-DATA request primitive",
    Event.Evt10: "P-DATA-TF PDU",
    Event.Evt11: "A-RELEASE Request primitive",
    Event.Evt12: "A-RELEASE-RQ PDU (received on open transport connection)",
    Event.Evt13: "A-RELEASE-RP PDU (received on transport connection)",
    Event.Evt14: "A-RELEASE Response primitive",
    Event.Evt15: "A-ABORT Request primitive",
    Event.Evt16: "A-ABORT PDU (received on open transport connection)",
    Event.Evt17: "Transport connection closed indication (local transport service)",
    Event.Evt18: "ARTIM timer expired (Association reject/release timer)",
    Event.Evt19: "Unrecognized or invalid PDU received",
}

#: Events that are primitives of the local user (or, Evt2 and Evt5, of the local
#: transport service telling us the connection is up).
LOCAL_EVENTS = frozenset(
    {
        Event.Evt1,
        Event.Evt2,
        Event.Evt5,
        Event.Evt7,
        Event.Evt8,
        Event.Evt9,
        Event.Evt11,
        Event.Evt14,
        Event.Evt15,
    }
)

#: Events caused by something received on the transport connection.
PDU_EVENTS = frozenset(
    {
        Event.Evt3,
        Event.Evt4,
        Event.Evt6,
        Event.Evt10,
        Event.Evt12,
        Event.Evt13,
        Event.Evt16,
        Event.Evt19,
    }
)

#: States in which a transport connection is open (bytes can be received).
CONNECTED_STATES = frozenset(State) - {State.Sta1, State.Sta4}


@attrs.frozen
class Action:
    """One action of PS3.8 Tables 9-6 to 9-9, as a value.

    ``next_states`` lists the possible next states: one, except for AE-6 (first:
    the A-ASSOCIATE-RQ is acceptable to the service provider; second: it is
    not) and AR-8 (first: this side is the association requestor; second: it is
    the acceptor). ``start_artim``, ``stop_artim`` and ``close_transport`` are
    what the definition says about the ARTIM timer and the transport connection;
    AE-6 stops ARTIM and, in its rejection branch only, starts it again.
    """

    name: str
    description: str
    next_states: tuple[State, ...]
    start_artim: bool = False
    stop_artim: bool = False
    close_transport: bool = False

    def next_state(self, *, requestor: bool = True, acceptable: bool = True) -> State:
        """The state this action leads to (PS3.8 Table 9-6 AE-6, Table 9-8 AR-8)."""
        if len(self.next_states) == 1:
            return self.next_states[0]
        if self.name == "AR-8":
            return self.next_states[0] if requestor else self.next_states[1]
        return self.next_states[0] if acceptable else self.next_states[1]

    def __str__(self) -> str:
        return self.name


S = State

# -- Table 9-6: association establishment related actions ---------------------------------
AE_1 = Action(
    "AE-1", "Issue TRANSPORT CONNECT request primitive to local transport service", (S.Sta4,)
)
AE_2 = Action("AE-2", "Send A-ASSOCIATE-RQ-PDU", (S.Sta5,))
AE_3 = Action("AE-3", "Issue A-ASSOCIATE confirmation (accept) primitive", (S.Sta6,))
AE_4 = Action(
    "AE-4",
    "Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection",
    (S.Sta1,),
    close_transport=True,
)
AE_5 = Action(
    "AE-5",
    "Issue Transport connection response primitive; start ARTIM timer",
    (S.Sta2,),
    start_artim=True,
)
AE_6 = Action(
    "AE-6",
    "Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider: issue "
    "A-ASSOCIATE indication primitive (next state Sta3); otherwise: issue A-ASSOCIATE-RJ-PDU "
    "and start ARTIM timer (next state Sta13)",
    (S.Sta3, S.Sta13),
    stop_artim=True,
)
AE_7 = Action("AE-7", "Send A-ASSOCIATE-AC PDU", (S.Sta6,))
AE_8 = Action("AE-8", "Send A-ASSOCIATE-RJ PDU and start ARTIM timer", (S.Sta13,), start_artim=True)

# -- Table 9-7: data transfer related actions ------------------------------------------------
DT_1 = Action("DT-1", "Send P-DATA-TF PDU", (S.Sta6,))
DT_2 = Action("DT-2", "Send P-DATA indication primitive", (S.Sta6,))

# -- Table 9-8: association release related actions -----------------------------------------
AR_1 = Action("AR-1", "Send A-RELEASE-RQ PDU", (S.Sta7,))
AR_2 = Action("AR-2", "Issue A-RELEASE indication primitive", (S.Sta8,))
AR_3 = Action(
    "AR-3",
    "Issue A-RELEASE confirmation primitive, and close transport connection",
    (S.Sta1,),
    close_transport=True,
)
AR_4 = Action("AR-4", "Issue A-RELEASE-RP PDU and start ARTIM timer", (S.Sta13,), start_artim=True)
AR_5 = Action("AR-5", "Stop ARTIM timer", (S.Sta1,), stop_artim=True)
AR_6 = Action("AR-6", "Issue P-DATA indication", (S.Sta7,))
AR_7 = Action("AR-7", "Issue P-DATA-TF PDU", (S.Sta8,))
AR_8 = Action(
    "AR-8",
    "Issue A-RELEASE indication (release collision): if association-requestor, next state is "
    "Sta9; if not, next state is Sta10",
    (S.Sta9, S.Sta10),
)
AR_9 = Action("AR-9", "Send A-RELEASE-RP PDU", (S.Sta11,))
AR_10 = Action("AR-10", "Issue A-RELEASE confirmation primitive", (S.Sta12,))

# -- Table 9-9: association abort related actions -------------------------------------------
AA_1 = Action(
    "AA-1",
    "Send A-ABORT PDU (service-user source) and start (or restart if already started) ARTIM "
    "timer",
    (S.Sta13,),
    start_artim=True,
)
AA_2 = Action(
    "AA-2",
    "Stop ARTIM timer if running. Close transport connection",
    (S.Sta1,),
    stop_artim=True,
    close_transport=True,
)
AA_3 = Action(
    "AA-3",
    "If (service-user initiated abort): issue A-ABORT indication and close transport "
    "connection; otherwise (service-provider initiated abort): issue A-P-ABORT indication and "
    "close transport connection",
    (S.Sta1,),
    close_transport=True,
)
AA_4 = Action("AA-4", "Issue A-P-ABORT indication primitive", (S.Sta1,))
AA_5 = Action("AA-5", "Stop ARTIM timer", (S.Sta1,), stop_artim=True)
AA_6 = Action("AA-6", "Ignore PDU", (S.Sta13,))
AA_7 = Action("AA-7", "Send A-ABORT PDU", (S.Sta13,))
AA_8 = Action(
    "AA-8",
    "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and start "
    "ARTIM timer",
    (S.Sta13,),
    start_artim=True,
)

#: Every action by its name ("AE-1" ... "AA-8").
ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        a.name: a
        for a in (
            AE_1, AE_2, AE_3, AE_4, AE_5, AE_6, AE_7, AE_8,
            DT_1, DT_2,
            AR_1, AR_2, AR_3, AR_4, AR_5, AR_6, AR_7, AR_8, AR_9, AR_10,
            AA_1, AA_2, AA_3, AA_4, AA_5, AA_6, AA_7, AA_8,
        )
    }
)  # fmt: skip


# -- Table 9-10 ----------------------------------------------------------------------------
# One entry per event row; the states of a row not named have an empty cell.
_RELEASE_AND_TRANSFER = (S.Sta6, S.Sta7, S.Sta8, S.Sta9, S.Sta10, S.Sta11, S.Sta12)
_ESTABLISHED_OR_RELEASING = (S.Sta3, S.Sta5, *_RELEASE_AND_TRANSFER)


def _row(*cells: tuple[tuple[State, ...] | State, Action]) -> dict[State, Action]:
    row: dict[State, Action] = {}
    for states, action in cells:
        for state in (states,) if isinstance(states, State) else states:
            assert state not in row, f"{state} twice in a row"
            row[state] = action
    return row


def _unexpected_pdu_row(
    *special: tuple[State, Action], sta13: Action = AA_6
) -> dict[State, Action]:
    """A row for a received PDU: AA-1 in Sta2, AA-8 where an association exists, the
    given exceptions, and ``sta13`` while waiting for the transport to close."""
    row = _row((S.Sta2, AA_1), (_ESTABLISHED_OR_RELEASING, AA_8), (S.Sta13, sta13))
    row.update(special)
    return row


_TABLE: dict[Event, dict[State, Action]] = {
    Event.Evt1: _row((S.Sta1, AE_1)),
    Event.Evt2: _row((S.Sta4, AE_2)),
    Event.Evt3: _unexpected_pdu_row((S.Sta5, AE_3)),
    Event.Evt4: _unexpected_pdu_row((S.Sta5, AE_4)),
    Event.Evt5: _row((S.Sta1, AE_5)),
    Event.Evt6: _unexpected_pdu_row((S.Sta2, AE_6), sta13=AA_7),
    Event.Evt7: _row((S.Sta3, AE_7)),
    Event.Evt8: _row((S.Sta3, AE_8)),
    Event.Evt9: _row((S.Sta6, DT_1), (S.Sta8, AR_7)),
    Event.Evt10: _unexpected_pdu_row((S.Sta6, DT_2), (S.Sta7, AR_6)),
    Event.Evt11: _row((S.Sta6, AR_1)),
    Event.Evt12: _unexpected_pdu_row((S.Sta6, AR_2), (S.Sta7, AR_8)),
    Event.Evt13: _unexpected_pdu_row((S.Sta7, AR_3), (S.Sta10, AR_10), (S.Sta11, AR_3)),
    Event.Evt14: _row((S.Sta8, AR_4), (S.Sta9, AR_9), (S.Sta12, AR_4)),
    Event.Evt15: _row((S.Sta4, AA_2), ((S.Sta3, S.Sta5, *_RELEASE_AND_TRANSFER), AA_1)),
    Event.Evt16: _row((S.Sta2, AA_2), (_ESTABLISHED_OR_RELEASING, AA_3), (S.Sta13, AA_2)),
    Event.Evt17: _row(
        (S.Sta2, AA_5), ((S.Sta3, S.Sta4, S.Sta5, *_RELEASE_AND_TRANSFER), AA_4), (S.Sta13, AR_5)
    ),
    Event.Evt18: _row((S.Sta2, AA_2), (S.Sta13, AA_2)),
    Event.Evt19: _unexpected_pdu_row(sta13=AA_7),
}

#: PS3.8 Table 9-10: ``(state, event) -> action``; a missing key is an empty cell.
TRANSITIONS: Mapping[tuple[State, Event], Action] = MappingProxyType(
    {(state, event): action for event, row in _TABLE.items() for state, action in row.items()}
)


class StateMachine:
    """The current Upper Layer state of one connection, changed only by :meth:`fire`.

    :param requestor: whether this side is the association requestor; it decides
        AR-8's next state in a release collision.
    """

    __slots__ = ("_state", "requestor")

    def __init__(self, requestor: bool) -> None:
        self.requestor = requestor
        self._state = State.Sta1

    @property
    def state(self) -> State:
        return self._state

    def action_for(self, event: Event) -> Action | None:
        """The action ``event`` triggers in the current state, or ``None`` (empty cell)."""
        return TRANSITIONS.get((self._state, event))

    def fire(self, event: Event, *, acceptable: bool = True) -> tuple[Action, State]:
        """Look ``event`` up in Table 9-10, move to the next state and return the action.

        ``acceptable`` is AE-6's test: whether the service provider accepts the
        received A-ASSOCIATE-RQ. Returns ``(action, previous_state)``. Raises
        :class:`LocalProtocolError`, changing nothing, for an empty cell.
        """
        previous = self._state
        action = TRANSITIONS.get((previous, event))
        if action is None:
            raise LocalProtocolError(
                f"{event} ({event.description}) is not possible in {previous} "
                f"({previous.description})"
            )
        self._state = action.next_state(requestor=self.requestor, acceptable=acceptable)
        return action, previous
