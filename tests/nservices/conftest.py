"""Fixtures of the DIMSE-N tests: dicomnet SCPs and SCUs over loopback.

Every test here is leak-checked (the ``leakcheck`` marker is added to each
item below, see ``tests/conftest.py``): servers are shut down and
associations released or aborted at teardown, and a thread or socket left
behind fails the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from dicomnet import AE, evt

#: seconds any wait in a test may take before the test fails
WAIT = 10.0

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.leakcheck)


MakeAE = Callable[..., Any]


@pytest.fixture
def make_ae() -> Iterator[MakeAE]:
    """``make_ae(title, requested=[...], supported=[...], plugins=None, **attributes)``: an AE
    with short timeouts, shut down (with its servers and associations) at teardown.
    ``supported`` entries are UIDs or ``(uid, scu_role, scp_role)``."""
    made: list[Any] = []

    def make(
        ae_title: str = "SCU",
        *,
        requested: Sequence[str] = (),
        supported: Sequence[Any] = (),
        plugins: Sequence[Any] | None = None,
        **attributes: Any,
    ) -> Any:
        ae = AE(ae_title, plugins=plugins)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = WAIT
        for uid in requested:
            ae.add_requested_context(uid)
        for entry in supported:
            if isinstance(entry, tuple):
                uid, scu_role, scp_role = entry
                ae.add_supported_context(uid, scu_role=scu_role, scp_role=scp_role)
            else:
                ae.add_supported_context(entry)
        for name, value in attributes.items():
            setattr(ae, name, value)
        made.append(ae)
        return ae

    yield make
    for ae in reversed(made):
        ae.shutdown()


def serve(ae: Any, handlers: Sequence[Any] = ()) -> int:
    """Start ``ae`` serving on a free loopback port with ``handlers``; its port."""
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=list(handlers))
    return int(server.server_address[1])


def associate(ae: Any, port: int, title: str, **kwargs: Any) -> Any:
    """An established association to ``title`` on ``port`` (the test fails otherwise)."""
    assoc = ae.associate("127.0.0.1", port, ae_title=title, **kwargs)
    assert assoc.is_established, "the association was not established"
    return assoc


class Established:
    """A handler for ``EVT_ESTABLISHED`` on a server: the associations it accepted, in order.

    The acceptor marks an association established once its A-ASSOCIATE-AC is out, a
    moment after the requestor may already use it: :meth:`next` waits for that.
    """

    def __init__(self) -> None:
        self._accepted: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, event: Any) -> None:
        with self._cond:
            self._accepted.append(event.assoc)
            self._cond.notify_all()

    def binding(self) -> tuple[Any, Any]:
        return (evt.EVT_ESTABLISHED, self)

    def next(self, index: int = 0) -> Any:
        """The ``index``-th association accepted (the test fails if it does not come)."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self._accepted) > index, WAIT)
            return self._accepted[index]
