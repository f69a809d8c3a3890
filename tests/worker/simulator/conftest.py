"""Fixtures for the simulator's tests: one server per module, state reset per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sim_helpers import MEETING, ORGANIZER, Graph
from sim_receiver import Receiver

from worker.simulator import SimulatorServer, ssl_context


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatorServer) -> SimulatorServer:
    """The module's simulator, emptied: no users, meetings, tokens, faults or statistics."""
    server.state.reset()
    return server


@pytest.fixture
def http(sim: SimulatorServer) -> Iterator[httpx.Client]:
    """An httpx client trusting the simulator's CA, based at the simulator's root."""
    with httpx.Client(
        base_url=sim.https_url, verify=ssl_context(sim.ca_path), timeout=10
    ) as client:
        yield client


@pytest.fixture
def graph(sim: SimulatorServer, http: httpx.Client) -> Graph:
    """A Graph caller holding a fresh token."""
    return Graph(sim, http)


@pytest.fixture
def meeting(sim: SimulatorServer) -> Callable[..., dict[str, Any]]:
    """Seed a meeting (default: MEETING organised by ORGANIZER); returns its Graph JSON."""

    def add(
        meeting_id: str = MEETING, organizer_id: str = ORGANIZER, **kwargs: Any
    ) -> dict[str, Any]:
        return sim.state.add_meeting(organizer_id, meeting_id, **kwargs)

    return add


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook on a free loopback port that answers the handshake correctly."""
    running = Receiver()
    yield running
    running.close()
