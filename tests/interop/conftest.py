"""Interop tests against real peers: fixtures from :mod:`tests.interop.peers`.

A test here asks for the peer it needs (``dcmtk``, ``dcmtk_tls``,
``orthanc_binary``, ``pynetdicom_python``); a missing peer skips it with the
way to install it, or fails it when ``DICOMNET_REQUIRE_PEERS=1`` (CI). Peers a
test starts through the ``peers`` fixture are always stopped, and their output
is attached to the report of a failed test.

Every test here is also leak-checked (``leakcheck``, see ``tests/conftest.py``):
no thread or descriptor of ours may outlive it -- except the tests sharing
the module's Orthanc instances, whose pipes stay open on purpose.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests.interop.peers import (  # noqa: F401 -- fixtures
    attach_peer_output,
    dcmtk,
    dcmtk_tls,
    orthanc_binary,
    peers,
    pynetdicom_python,
    tls_files,
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    attach_peer_output(item, report)
    return report


HERE = Path(__file__).parent
#: fixtures holding peers beyond one test (module scope): no leak check for their users
SHARED_PEER_FIXTURES = {"orthanc_factory"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue
        if SHARED_PEER_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.leakcheck)
