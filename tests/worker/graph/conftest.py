"""Fixtures shared by the Graph client's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from worker.graph.auth import MsalTokenSource
from worker.graph.client import GraphClient


@pytest.fixture
def closing() -> Iterator[Callable[..., object]]:
    """Close token sources and clients after the test (the server waits for idle sockets)."""
    opened: list[MsalTokenSource | GraphClient] = []

    def track(thing: MsalTokenSource | GraphClient) -> MsalTokenSource | GraphClient:
        opened.append(thing)
        return thing

    yield track
    for thing in opened:
        thing.close()
