"""A row's steps' rules for errors that pass: a transient error retried until the row's
attempts run out, throttling waited out and never counted; and for an error that does not:
a retired API pauses the batch at once. The real protocol, Graph client and MSAL, the
simulator over HTTPS, real Redis."""

from __future__ import annotations

import logging

from pipeline_helpers import HEADER, ORGANIZER, Batch, Work, fast_settings, only_row, posts, rows

from worker.models import RowState
from worker.protocol.chunk import process_chunk
from worker.runtime import Runtime, build_runtime
from worker.simulator import SimulatorServer


def test_transient_errors_are_retried_until_created(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.set_conflict("replace")  # a second POST would be a second registration
    sim.state.add_meeting(ORGANIZER, "m-1")
    sim.state.script("m-1", [{"status": 503}, {"status": 502}, {"status": 500}])
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.CREATED, 201)
    assert sum(sim.state.creations.values()) == 1


def test_transient_errors_fail_the_row_once_attempts_run_out(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    sim.state.script("m-1", [{"status": 503}] * 10)
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.FAILED, 503)
    assert row.attempts == runtime.settings.max_attempts
    assert sim.state.registration("m-1") is None


def test_throttling_alone_never_fails_a_row_and_fractional_retry_after_is_honoured(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    # More 429s than max_attempts allows for other errors, each asking for 0.35 s.
    sim.state.script("m-1", [{"status": 429, "retry_after": "0.35"}] * 6)
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.CREATED, 201)
    assert sim.state.early_retries() == []
    assert sim.state.stats()["throttled"] == 6


def _meetings(sim: SimulatorServer, count: int) -> str:
    for i in range(count):
        sim.state.add_meeting(ORGANIZER, f"m-{i}")
    return HEADER + "".join(f"{ORGANIZER},m-{i},\n" for i in range(count))


def test_a_retired_api_pauses_the_batch_at_its_first_answer_with_the_rows_put_back(
    sim: SimulatorServer, redis_url: str, batch: Batch, queued: list, caplog
) -> None:
    lone = build_runtime(fast_settings(redis_url, envelope_size=1))  # one call at a time
    sim.state.set_registration_api("gone")
    try:
        batch_id = batch(_meetings(sim, 30))
        with caplog.at_level(logging.ERROR, logger="worker.protocol.row"):
            while queued:
                process_chunk(lone.deps, *queued.pop(0))
        status = lone.store.batch_status(batch_id)
        records = rows(lone, batch_id)
    finally:
        lone.close()
    assert "2024-12-12" in status.paused
    assert "webinar_id,email,first_name,last_name" in status.paused
    # One registration call answered, then nothing: not the safety valve's 20 rows.
    assert [status for _, path, status in sim.state.requests if "registration" in path] == [400]
    assert all(r.status is RowState.QUEUED for r in records)  # none burnt, none final
    assert status.counts[RowState.FAILED] == 0
    paused_lines = [r for r in caplog.records if "paused" in r.getMessage()]
    assert len(paused_lines) == 1


def test_a_wave_in_flight_when_the_api_is_refused_pauses_once_and_fails_no_row(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    assert runtime.deps.policy.in_waves
    sim.state.set_registration_api("app-only-refused")
    status = work(batch(_meetings(sim, 60)))
    assert "app-only tokens" in status.paused
    assert status.counts[RowState.FAILED] == 0
    assert status.counts[RowState.QUEUED] == 60
    # The first wave was in flight together; no later chunk sent a call.
    assert posts(sim) <= runtime.settings.chunk_size


def test_an_ordinary_403_stays_the_rows_own_failure(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_user(ORGANIZER, access_policy=False)
    status = work(batch(_meetings(sim, 3)))
    assert status.paused == ""
    assert status.counts[RowState.FAILED] == 3
