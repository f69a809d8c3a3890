"""A response lost after Graph committed: created or already_enabled (a webinar registrant:
registered), never a duplicate.

With the rows of a chunk in lock-step (the runtime's default, as in production) and each
row alone (MEETREG_ENVELOPE_SIZE=1).
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest
from pipeline_helpers import HEADER, ORGANIZER, Batch, Work, only_row

from worker.models import RowState
from worker.protocol.chunk import process_chunk
from worker.runtime import Runtime
from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep", "alone"])
@pytest.mark.parametrize("conflict", ["409", "replace"])
@pytest.mark.parametrize("get_before_post", [True, False])
@pytest.mark.parametrize("lost", ["commit_then_timeout", "commit_then_500"])
def test_lost_answer_to_a_committed_post_ends_created_with_one_registration(
    lost: str,
    get_before_post: bool,
    conflict: str,
    lockstep: bool,
    sim: SimulatorServer,
    batch: Batch,
    work: Work,
    runtime: Runtime,
) -> None:
    # "replace" is the dangerous server: a second POST silently makes a second registration.
    sim.state.set_conflict(conflict)  # type: ignore[arg-type]
    sim.state.set_faults(stall_s=2.0)  # longer than the client's 1 s timeout
    assert runtime.deps.policy.in_waves  # the runtime's, as in production
    runtime.deps.policy = dataclasses.replace(
        runtime.deps.policy, get_before_post=get_before_post, in_waves=lockstep
    )
    sim.state.add_meeting(ORGANIZER, "m-1")
    steps = [{"action": lost}]
    if get_before_post:
        steps.insert(0, {"status": 404})  # the first GET: nothing there yet
    sim.state.script("m-1", steps)
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert row.status is RowState.CREATED
    assert row.registration_id == sim.state.registration("m-1")["id"]  # type: ignore[index]
    assert sim.state.creations["m-1"] == 1
    assert sim.state.stats()["duplicates"] == []


def test_our_lost_post_seen_late_through_a_409_still_counts_as_created(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    # The POST commits but answers 500; the next GET does not see it yet (Graph is not
    # read-your-writes everywhere); the second POST meets the first one: 409.
    sim.state.add_meeting(ORGANIZER, "m-1")
    sim.state.script("m-1", [{"status": 404}, {"action": "commit_then_500"}, {"status": 404}])
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.CREATED, 409)
    assert sim.state.creations["m-1"] == 1


def test_two_copies_of_a_chunk_in_one_process_register_each_meeting_once(
    sim: SimulatorServer, batch: Batch, runtime: Runtime, queued: list
) -> None:
    """The sweeper's copy and the original (or a resumed batch's) can run the same rows in
    one worker process at once; against a Graph that replaces on POST, a second POST would
    be a second registration."""
    sim.state.set_conflict("replace")
    sim.state.set_faults(latency_ms=50)
    for i in range(10):
        sim.state.add_meeting(ORGANIZER, f"twin-{i}")
    batch_id = batch(HEADER + "".join(f"{ORGANIZER},twin-{i},\n" for i in range(10)))
    (chunk,) = queued
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: process_chunk(runtime.deps, *chunk), range(4)))
    assert runtime.store.batch_status(batch_id).counts["created"] == 10
    assert max(sim.state.creations.values()) == 1
    assert len(sim.state.creations) == 10


WEBINAR_ORGANIZER = "5e7c1d2a-3b4f-4a6e-9c8d-7f6e5d4c3b2a"
REGISTRANT_HEADER = "webinar_id,email,first_name,last_name\n"


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep", "alone"])
@pytest.mark.parametrize("conflict", ["409", "400", "duplicate", "silent"])
@pytest.mark.parametrize("lost", ["commit_then_timeout", "commit_then_500"])
def test_lost_answer_to_a_committed_registration_ends_registered_with_one_registration(
    lost: str,
    conflict: str,
    lockstep: bool,
    sim: SimulatorServer,
    batch: Batch,
    work: Work,
    runtime: Runtime,
) -> None:
    # "duplicate" is the dangerous server: a second POST registers the person twice.
    sim.state.set_webinar_conflict(conflict)  # type: ignore[arg-type]
    sim.state.set_faults(stall_s=2.0)  # longer than the client's 1 s timeout
    runtime.deps.policy = dataclasses.replace(runtime.deps.policy, in_waves=lockstep)
    webinar_id = new_webinar_id()
    sim.state.add_webinar(webinar_id, WEBINAR_ORGANIZER)
    # The webinar and its questions read, the person looked up (not there): the POST's
    # answer is lost after Graph registered the person.
    sim.state.script(webinar_id, [{"action": "answer"}] * 3 + [{"action": lost}])
    status = work(batch(f"{REGISTRANT_HEADER}{webinar_id},ann@contoso.example,Ann,Lee\n"))
    row = only_row(runtime, status.batch_id)
    assert row.status is RowState.REGISTERED
    (made,) = sim.state.webinar_registrations(webinar_id)
    assert made["externalRegistrationInformation"]["registrationId"] == row.external_id
    assert sim.state.stats()["webinar_registration_posts"] == 1  # never POSTed again
    assert sim.state.webinar_duplicates() == 0
