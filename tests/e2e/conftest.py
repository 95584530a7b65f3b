"""Fixtures of the end-to-end tests: requesting AEs and scripted fake SCPs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from .peers import VERIFICATION, FakeSCP, Script

MakeSCU = Callable[..., Any]


@pytest.fixture
def make_scu() -> Iterator[MakeSCU]:
    """``make_scu(ae_title="SCU", contexts=[VERIFICATION], **ae_attributes)``: a requesting
    AE; every association it still has is aborted at teardown."""
    from dicomnet import AE

    made: list[Any] = []

    def make(
        ae_title: str = "SCU", *, contexts: Sequence[str] = (VERIFICATION,), **attributes: Any
    ) -> Any:
        ae = AE(ae_title)
        for uid in contexts:
            ae.add_requested_context(uid)
        for name, value in attributes.items():
            setattr(ae, name, value)
        made.append(ae)
        return ae

    yield make
    for ae in made:
        ae.shutdown()


@pytest.fixture
def scu(make_scu: MakeSCU) -> Any:
    """A requesting AE proposing Verification."""
    return make_scu()


@pytest.fixture
def fake_scp() -> Iterator[Callable[[Script], FakeSCP]]:
    """``fake_scp(script)``: a raw TCP server running ``script(peer)`` on its connection."""
    made: list[FakeSCP] = []

    def make(script: Script) -> FakeSCP:
        server = FakeSCP(script)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()
