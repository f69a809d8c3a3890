"""A chunk's rows go the common way together (worker.protocol.wave), and every row that leaves
it still ends as it would alone: the same states, statuses and single registrations.

The real protocol, Graph client and $batch envelopes, the simulator over HTTPS, real Redis.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait

from pipeline_helpers import HEADER, ORGANIZER, UPN, Batch, Work, rows

from worker.models import RowState
from worker.protocol.chunk import process_chunk
from worker.runtime import Runtime
from worker.simulator import SimulatorServer


def envelopes(sim: SimulatorServer) -> int:
    return sum(1 for method, path, _ in sim.state.requests if path.endswith("/$batch"))


def test_a_chunk_of_mixed_rows_ends_each_row_as_it_would_alone(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.set_conflict("replace")  # a second POST would be a second registration
    sim.state.add_meeting(ORGANIZER, "m-new")
    sim.state.add_meeting(ORGANIZER, "m-has", existing="external")
    # GET says none, POST says 400: the confirming GET finds the registration.
    sim.state.add_meeting(ORGANIZER, "m-400", existing="external")
    sim.state.script("m-400", [{"status": 404}, {"status": 400}])
    sim.state.add_meeting(ORGANIZER, "m-429")
    sim.state.script("m-429", [{"status": 429, "retry_after": "0.2"}])
    sim.state.add_meeting(ORGANIZER, "m-lost")  # the POST commits, its answer is a 500
    sim.state.script("m-lost", [{"status": 404}, {"action": "commit_then_500"}])
    sim.state.add_meeting(ORGANIZER, "m-upn")  # named by the organizer's UPN: goes alone
    csv_text = HEADER + "".join(
        f"{user},{meeting},\n"
        for user, meeting in [
            (ORGANIZER, "m-new"),
            (ORGANIZER, "m-has"),
            (ORGANIZER, "m-400"),
            (ORGANIZER, "m-gone"),  # no such meeting
            (ORGANIZER, "m-429"),
            (ORGANIZER, "m-lost"),
            (UPN, "m-upn"),
        ]
    )
    status = work(batch(csv_text))
    ended = {
        row.meeting_id: (row.status, row.http_status) for row in rows(runtime, status.batch_id)
    }
    assert ended == {
        "m-new": (RowState.CREATED, 201),
        "m-has": (RowState.ALREADY_ENABLED, 200),
        "m-400": (RowState.ALREADY_ENABLED, 400),
        "m-gone": (RowState.FAILED, 404),
        "m-429": (RowState.CREATED, 201),
        "m-lost": (RowState.CREATED, 200),
        "m-upn": (RowState.CREATED, 201),
    }
    assert status.finished
    for meeting in ("m-new", "m-429", "m-lost", "m-upn"):
        assert sim.state.creations[meeting] == 1
    assert sim.state.stats()["duplicates"] == []


def test_a_chunks_calls_share_envelopes(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    meetings = [f"m-{n}" for n in range(8)]
    for meeting in meetings:
        sim.state.add_meeting(ORGANIZER, meeting)
    # Past the limiter's slow start (100/s: slots 10 ms apart, as long as the linger), so
    # the pace is the cap's, 1000/s, and the calls' slots are about 1 ms apart.
    limiter = runtime.deps.limiter
    limiter.acquire()
    deadline = time.monotonic() + 5
    while limiter.rate_now() < limiter.cap_per_s and time.monotonic() < deadline:
        time.sleep(0.05)
    assert limiter.rate_now() == limiter.cap_per_s
    status = work(batch(HEADER + "".join(f"{ORGANIZER},{m},\n" for m in meetings)))
    assert status.counts["created"] == 8
    # 16 calls (a GET and a POST per row): the GETs go together, then the POSTs, each at
    # its rate slot, so they share envelopes: two, unless a linger ends between slots.
    # One row at a time, each call would be an envelope of its own.
    assert envelopes(sim) <= 4


def test_two_chunks_crossing_the_same_meetings_both_finish(
    sim: SimulatorServer, batch: Batch, runtime: Runtime, queued: list
) -> None:
    """Two batches name the same meetings in opposite orders, and every meeting's first
    call fails: each thread holds the leases of rows it must retry while rows of the other
    wait for them. A thread must never wait for a lease while holding one the other waits
    for: the two would wait for each other forever."""
    sim.state.set_conflict("replace")  # a second POST would be a second registration
    for round_ in range(4):
        meetings = [f"cross-{round_}-{n}" for n in range(10)]
        for meeting in meetings:
            sim.state.add_meeting(ORGANIZER, meeting)
            sim.state.script(meeting, [{"status": 503}])
        forward = batch(HEADER + "".join(f"{ORGANIZER},{m},\n" for m in meetings))
        backward = batch(HEADER + "".join(f"{ORGANIZER},{m},\n" for m in reversed(meetings)))
        chunks, queued[:] = list(queued), []
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            running = [pool.submit(process_chunk, runtime.deps, *chunk) for chunk in chunks]
            done, _ = wait(running, timeout=60)
            assert len(done) == len(running), "two chunks wait for each other's leases"
        for batch_id in (forward, backward):
            counts = runtime.store.batch_status(batch_id).counts
            assert counts["created"] + counts["skipped"] == 10
        assert all(sim.state.creations[m] == 1 for m in meetings)
