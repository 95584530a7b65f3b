"""PS3.8 Table 9-10 transcribed a second time, as printed, for the tests.

This is deliberately *not* derived from :mod:`dicomnet.fsm`: it is typed in
again from the standard (PS3.8 9.2.3, "DICOM Upper Layer Protocol State
Transition Table") in the standard's own shape -- one line per event row, one
column per state, ``-`` for an empty cell -- and parsed by :func:`parse_table`.
The next states of each action are typed in again from Tables 9-6 to 9-9.
``test_fsm.py`` sweeps all 13 x 19 cells of the kernel's table against it.
"""

from __future__ import annotations

TABLE_9_10 = """
      | Sta1 | Sta2 | Sta3 | Sta4 | Sta5 | Sta6 | Sta7 | Sta8 | Sta9 | Sta10 | Sta11 | Sta12 | Sta13
Evt1  | AE-1 | -    | -    | -    | -    | -    | -    | -    | -    | -     | -     | -     | -
Evt2  | -    | -    | -    | AE-2 | -    | -    | -    | -    | -    | -     | -     | -     | -
Evt3  | -    | AA-1 | AA-8 | -    | AE-3 | AA-8 | AA-8 | AA-8 | AA-8 | AA-8  | AA-8  | AA-8  | AA-6
Evt4  | -    | AA-1 | AA-8 | -    | AE-4 | AA-8 | AA-8 | AA-8 | AA-8 | AA-8  | AA-8  | AA-8  | AA-6
Evt5  | AE-5 | -    | -    | -    | -    | -    | -    | -    | -    | -     | -     | -     | -
Evt6  | -    | AE-6 | AA-8 | -    | AA-8 | AA-8 | AA-8 | AA-8 | AA-8 | AA-8  | AA-8  | AA-8  | AA-7
Evt7  | -    | -    | AE-7 | -    | -    | -    | -    | -    | -    | -     | -     | -     | -
Evt8  | -    | -    | AE-8 | -    | -    | -    | -    | -    | -    | -     | -     | -     | -
Evt9  | -    | -    | -    | -    | -    | DT-1 | -    | AR-7 | -    | -     | -     | -     | -
Evt10 | -    | AA-1 | AA-8 | -    | AA-8 | DT-2 | AR-6 | AA-8 | AA-8 | AA-8  | AA-8  | AA-8  | AA-6
Evt11 | -    | -    | -    | -    | -    | AR-1 | -    | -    | -    | -     | -     | -     | -
Evt12 | -    | AA-1 | AA-8 | -    | AA-8 | AR-2 | AR-8 | AA-8 | AA-8 | AA-8  | AA-8  | AA-8  | AA-6
Evt13 | -    | AA-1 | AA-8 | -    | AA-8 | AA-8 | AR-3 | AA-8 | AA-8 | AR-10 | AR-3  | AA-8  | AA-6
Evt14 | -    | -    | -    | -    | -    | -    | -    | AR-4 | AR-9 | -     | -     | AR-4  | -
Evt15 | -    | -    | AA-1 | AA-2 | AA-1 | AA-1 | AA-1 | AA-1 | AA-1 | AA-1  | AA-1  | AA-1  | -
Evt16 | -    | AA-2 | AA-3 | -    | AA-3 | AA-3 | AA-3 | AA-3 | AA-3 | AA-3  | AA-3  | AA-3  | AA-2
Evt17 | -    | AA-5 | AA-4 | AA-4 | AA-4 | AA-4 | AA-4 | AA-4 | AA-4 | AA-4  | AA-4  | AA-4  | AR-5
Evt18 | -    | AA-2 | -    | -    | -    | -    | -    | -    | -    | -     | -     | -     | AA-2
Evt19 | -    | AA-1 | AA-8 | -    | AA-8 | AA-8 | AA-8 | AA-8 | AA-8 | AA-8  | AA-8  | AA-8  | AA-7
"""

#: Next state(s) of each action, Tables 9-6 to 9-9. AE-6: (acceptable, not
#: acceptable); AR-8: (association requestor, acceptor).
NEXT_STATES: dict[str, tuple[int, ...]] = {
    "AE-1": (4,),
    "AE-2": (5,),
    "AE-3": (6,),
    "AE-4": (1,),
    "AE-5": (2,),
    "AE-6": (3, 13),
    "AE-7": (6,),
    "AE-8": (13,),
    "DT-1": (6,),
    "DT-2": (6,),
    "AR-1": (7,),
    "AR-2": (8,),
    "AR-3": (1,),
    "AR-4": (13,),
    "AR-5": (1,),
    "AR-6": (7,),
    "AR-7": (8,),
    "AR-8": (9, 10),
    "AR-9": (11,),
    "AR-10": (12,),
    "AA-1": (13,),
    "AA-2": (1,),
    "AA-3": (1,),
    "AA-4": (1,),
    "AA-5": (1,),
    "AA-6": (13,),
    "AA-7": (13,),
    "AA-8": (13,),
}


def parse_table(text: str = TABLE_9_10) -> dict[tuple[int, int], str]:
    """``{(state number, event number): action name}`` for every non-empty cell."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    header = [cell.strip() for cell in lines[0].split("|")][1:]
    states = [int(name.removeprefix("Sta")) for name in header]
    assert states == list(range(1, 14)), header
    cells: dict[tuple[int, int], str] = {}
    events = []
    for line in lines[1:]:
        label, *row = (cell.strip() for cell in line.split("|"))
        event = int(label.removeprefix("Evt"))
        events.append(event)
        assert len(row) == 13, f"{label} has {len(row)} cells"
        for state, action in zip(states, row, strict=True):
            if action != "-":
                assert action in NEXT_STATES, f"{label}/Sta{state}: unknown action {action}"
                cells[(state, event)] = action
    assert events == list(range(1, 20)), events
    return cells
