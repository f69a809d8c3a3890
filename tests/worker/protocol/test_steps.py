"""A row's steps' rules for errors that pass: a transient error retried until the row's
attempts run out, throttling waited out and never counted. The real protocol, Graph client
and MSAL, the simulator over HTTPS, real Redis."""

from __future__ import annotations

from pipeline_helpers import HEADER, ORGANIZER, Batch, Work, only_row

from worker.models import RowState
from worker.runtime import Runtime
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
