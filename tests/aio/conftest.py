"""Fixtures of the asyncio tests: threaded dicomnet servers over loopback, and ``run()``.

Every test here is leak-checked (see ``tests/conftest.py``): no thread or
descriptor may outlive it. :func:`run` runs a coroutine in a fresh event loop
and fails when a task of it is still pending at its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from tests.qr.conftest import (  # noqa: F401 -- fixtures
    CT,
    FIND,
    GET,
    MOVE,
    MR,
    WAIT,
    MakeServer,
    Peer,
    instance,
    make_server,
    query,
    with_meta,
)

T = TypeVar("T")

VERIFICATION = "1.2.840.10008.1.1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/aio/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.leakcheck)


def run(make: Callable[[], Coroutine[Any, Any, T]], timeout: float = 4 * WAIT) -> T:
    """``asyncio.run(make())``, bounded; no task may be left pending when it returns."""

    async def main() -> T:
        result = await asyncio.wait_for(make(), timeout)
        for _ in range(3):  # callbacks scheduled by the last closes (asyncgen finalizers)
            await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, f"tasks left pending: {left}"
        return result

    return asyncio.run(main())
