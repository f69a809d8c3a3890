"""The lone row (batching off, MEETREG_ENVELOPE_SIZE=1): every outcome as the wave reaches
it, one Graph call at a time. The real protocol, Graph client and MSAL, the simulator over
HTTPS, real Redis."""

from __future__ import annotations

from pipeline_helpers import HEADER, NO_POLICY_USER, ORGANIZER, Batch, fast_settings, rows

from worker.models import RowState
from worker.protocol.chunk import process_chunk
from worker.runtime import build_runtime
from worker.simulator import SimulatorServer


def test_with_batching_off_every_outcome_is_the_same(
    sim: SimulatorServer, redis_url: str, batch: Batch, queued: list
) -> None:
    single = build_runtime(fast_settings(redis_url, envelope_size=1))
    assert not single.deps.policy.in_waves
    sim.state.set_conflict("replace")  # a second POST would be a second registration
    try:
        sim.state.add_meeting(ORGANIZER, "m-new")
        sim.state.add_meeting(ORGANIZER, "m-old", existing="external")
        sim.state.add_meeting(NO_POLICY_USER, "m-forbidden")
        sim.state.script("m-new", [{"status": 404}, {"status": 429, "retry_after": "0.2"}])
        batch_id = batch(
            f"{HEADER}{ORGANIZER},m-new,\n{ORGANIZER},m-old,\n{NO_POLICY_USER},m-forbidden,\n"
        )
        while queued:
            process_chunk(single.deps, *queued.pop(0))
        new, old, forbidden = rows(single, batch_id)
    finally:
        single.close()
    assert (new.status, new.http_status) == (RowState.CREATED, 201)
    assert (old.status, old.http_status) == (RowState.ALREADY_ENABLED, 200)
    assert (forbidden.status, forbidden.http_status) == (RowState.FAILED, 403)
    assert not any(path.endswith("$batch") for _, path, _ in sim.state.requests)
    assert sim.state.creations["m-new"] == 1
    assert sim.state.early_retries() == []
