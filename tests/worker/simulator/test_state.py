"""worker.simulator.state: the simulator's seeding, its statistics, and its reset to the
configuration it was made with."""

from __future__ import annotations

import pytest
from sim_helpers import EXTERNAL, MEETING, ORGANIZER

from worker.simulator import SimulatorConfig, SimulatorState
from worker.simulator.config import FaultConfig


def test_stats_count_what_was_seeded_and_created():
    state = SimulatorState()
    state.add_users([{"object_id": ORGANIZER}])
    state.add_meeting(ORGANIZER, MEETING)
    state.add_meeting(ORGANIZER, "seeded", existing="external")
    state.set_conflict("replace")
    for _ in range(2):
        state.register(ORGANIZER, MEETING, EXTERNAL)

    stats = state.stats()

    assert (stats["users"], stats["meetings"], stats["registrations"]) == (1, 2, 2)
    assert stats["creations"] == {MEETING: 2}
    assert stats["duplicates"] == [MEETING]
    assert state.registration("seeded") is not None


def test_reset_forgets_everything_and_restores_the_configured_modes():
    config = SimulatorConfig(conflict="400", faults=FaultConfig(latency_ms=3))
    state = SimulatorState(config)
    state.add_meeting(ORGANIZER, MEETING)
    state.add_event(ORGANIZER)
    state.set_conflict("replace")
    state.set_faults(latency_ms=0)
    state.record("GET", "/beta/users/x", 200)

    state.reset()

    stats = state.stats()
    assert (stats["users"], stats["meetings"], stats["events"]) == (0, 0, 0)
    assert state.requests == []
    assert state.conflict == "400"
    assert state.faults.latency_ms == 3


def test_bad_modes_are_refused():
    state = SimulatorState()

    with pytest.raises(ValueError):
        state.set_conflict("ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        state.set_resource_form("groups")  # type: ignore[arg-type]


def test_seeding_100000_meetings_in_one_call(sim):
    meetings = [{"organizer_id": ORGANIZER, "meeting_id": f"m-{i}"} for i in range(100_000)]

    assert sim.state.add_meetings(meetings) == 100_000
    assert sim.state.stats()["meetings"] == 100_000
