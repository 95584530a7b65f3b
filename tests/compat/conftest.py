"""pynetdicom programs run on dicomnet: fixtures shared with :mod:`tests.interop`."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.interop.peers import (  # noqa: F401 -- fixtures
    attach_peer_output,
    dcmtk,
    peers,
    pynetdicom_python,
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    attach_peer_output(item, report)
    return report
