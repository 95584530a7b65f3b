"""The kernel's Table 9-10 (dicomnet.fsm) against an independent transcription of PS3.8."""

from __future__ import annotations

import itertools

import pytest

from dicomnet import fsm
from dicomnet.errors import LocalProtocolError
from dicomnet.fsm import (
    ACTIONS,
    CONNECTED_STATES,
    LOCAL_EVENTS,
    PDU_EVENTS,
    TRANSITIONS,
    Event,
    State,
    StateMachine,
)

from .state_table_ps38 import NEXT_STATES, parse_table

STANDARD = parse_table()
ALL_CELLS = list(itertools.product(range(1, 14), range(1, 20)))


def test_transcription_has_the_expected_shape() -> None:
    # 123 non-empty cells of 247; a parser or typing slip would change the count
    assert len(STANDARD) == 123
    assert len(ALL_CELLS) == 13 * 19


@pytest.mark.parametrize(("state", "event"), ALL_CELLS, ids=str)
def test_cell_matches_the_standard(state: int, event: int) -> None:
    action = TRANSITIONS.get((State(state), Event(event)))
    expected = STANDARD.get((state, event))
    assert (action.name if action else None) == expected


def test_no_extra_keys() -> None:
    assert {(int(s), int(e)) for s, e in TRANSITIONS} == set(STANDARD)


@pytest.mark.parametrize("name", sorted(NEXT_STATES))
def test_action_next_states(name: str) -> None:
    assert tuple(int(s) for s in ACTIONS[name].next_states) == NEXT_STATES[name]


def test_every_action_is_used() -> None:
    assert len(ACTIONS) == 28
    assert {a.name for a in TRANSITIONS.values()} == set(ACTIONS)


def test_two_way_actions_choose() -> None:
    ae6, ar8 = ACTIONS["AE-6"], ACTIONS["AR-8"]
    assert ae6.next_state(acceptable=True) is State.Sta3
    assert ae6.next_state(acceptable=False) is State.Sta13
    assert ar8.next_state(requestor=True) is State.Sta9
    assert ar8.next_state(requestor=False) is State.Sta10
    # the other argument does not matter
    assert ar8.next_state(requestor=True, acceptable=False) is State.Sta9
    assert ae6.next_state(requestor=False, acceptable=True) is State.Sta3


@pytest.mark.parametrize("event", sorted(PDU_EVENTS))
def test_received_pdus_have_an_answer_in_every_connected_state(event: Event) -> None:
    for state in State:
        has_cell = (state, event) in TRANSITIONS
        assert has_cell == (state in CONNECTED_STATES), (state, event)


def test_transport_closed_has_an_answer_wherever_a_connection_may_exist() -> None:
    assert {s for s in State if (s, Event.Evt17) in TRANSITIONS} == set(State) - {State.Sta1}


def test_artim_runs_only_in_sta2_and_sta13() -> None:
    # Evt18 only where ARTIM can run...
    assert {s for s in State if (s, Event.Evt18) in TRANSITIONS} == {State.Sta2, State.Sta13}
    # ...and the actions that start it all lead there (AE-6 restarts it for Sta13)
    for action in ACTIONS.values():
        if action.start_artim:
            assert set(action.next_states) <= {State.Sta2, State.Sta13}, action
    # an action leaving Sta2/Sta13 for another state stops it, or it was never running
    for (state, _event), action in TRANSITIONS.items():
        if state in (State.Sta2, State.Sta13):
            for nxt in action.next_states:
                if nxt not in (State.Sta2, State.Sta13):
                    assert action.stop_artim, (state, action)


def test_event_classes_partition() -> None:
    assert not LOCAL_EVENTS & PDU_EVENTS
    assert set(Event) - LOCAL_EVENTS - PDU_EVENTS == {Event.Evt17, Event.Evt18}


def test_descriptions() -> None:
    assert State.Sta1.description == "Idle"
    assert State.Sta13.description.startswith("Awaiting Transport Connection Close")
    assert Event.Evt19.description == "Unrecognized or invalid PDU received"
    assert all(s.description for s in State)
    assert all(e.description for e in Event)
    assert str(State.Sta6) == "Sta6"
    assert str(Event.Evt10) == "Evt10"
    assert str(ACTIONS["AA-8"]) == "AA-8"


def test_state_machine_fire_moves_and_reports() -> None:
    machine = StateMachine(requestor=True)
    assert machine.state is State.Sta1
    action, previous = machine.fire(Event.Evt1)
    assert (action.name, previous, machine.state) == ("AE-1", State.Sta1, State.Sta4)
    assert machine.action_for(Event.Evt2) is fsm.ACTIONS["AE-2"]
    assert machine.action_for(Event.Evt7) is None


def test_state_machine_empty_cell_raises_and_changes_nothing() -> None:
    machine = StateMachine(requestor=True)
    with pytest.raises(LocalProtocolError, match=r"Evt9 \(P-DATA request primitive\).*Sta1"):
        machine.fire(Event.Evt9)
    assert machine.state is State.Sta1


@pytest.mark.parametrize(("requestor", "expected"), [(True, State.Sta9), (False, State.Sta10)])
def test_state_machine_release_collision_by_role(requestor: bool, expected: State) -> None:
    machine = StateMachine(requestor)
    path = [Event.Evt1, Event.Evt2, Event.Evt3] if requestor else [Event.Evt5, Event.Evt6,
                                                                   Event.Evt7]
    for event in path:
        machine.fire(event)
    machine.fire(Event.Evt11)
    assert machine.state is State.Sta7
    machine.fire(Event.Evt12)
    assert machine.state is expected


def test_state_machine_ae6_rejects_when_not_acceptable() -> None:
    machine = StateMachine(requestor=False)
    machine.fire(Event.Evt5)
    machine.fire(Event.Evt6, acceptable=False)
    assert machine.state is State.Sta13
