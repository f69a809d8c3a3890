"""`celery -A worker.app worker -c N`: the worker's Graph connections and `$batch`
requests in flight follow the N threads Celery runs, not MEETREG_CONCURRENCY."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg, start_worker, stop, wait_until
from pipeline_helpers import ORGANIZER

from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore

SETTING = 2  # MEETREG_CONCURRENCY
THREADS = 8  # celery worker -c


@pytest.mark.parametrize(
    ("envelope_size", "chunk_size"),
    [("1", 1), ("20", 20)],
    ids=["one-request-per-call", "batch-envelopes"],
)
def test_graph_requests_in_flight_follow_celerys_thread_count(
    sim: SimulatorServer,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    envelope_size: str,
    chunk_size: int,
) -> None:
    """One request per call: the HTTP pool; `$batch`: the envelopes in flight (each
    thread's rows go together, one envelope per thread and step)."""
    meetings = [f"c-{i}" for i in range(THREADS * chunk_size)]
    for meeting in meetings:
        sim.state.add_meeting(ORGANIZER, meeting)
    sim.state.set_faults(latency_ms=400)  # requests overlap while the threads wait
    path = tmp_path / "meetings.csv"
    path.write_text("user_id,meeting_id\n" + "".join(f"{ORGANIZER},{m}\n" for m in meetings))
    env = command_env(
        REDIS_URL=redis_url,
        MEETREG_CONCURRENCY=str(SETTING),
        MEETREG_ENVELOPE_SIZE=envelope_size,
        MEETREG_CHUNK_SIZE=str(chunk_size),  # a chunk for every thread
        MEETREG_RATE_LIMIT="1000",
    )
    assert meetreg("enqueue", str(path), "--batch-id", "wide", env=env).returncode == 0

    log = tmp_path / "worker.log"
    worker = start_worker("wide", env, tmp_path, log=log, options=("-c", str(THREADS)))
    store = OutcomeStore(redis_client)
    try:
        wait_until(lambda: store.batch_status("wide").finished, timeout_s=90, what="the batch")
    finally:
        stop(worker)
    assert store.batch_status("wide").counts["created"] == len(meetings)
    stats = sim.state.stats()
    in_flight = stats["envelopes_in_flight_max" if chunk_size > 1 else "in_flight_max"]
    assert in_flight > SETTING + 2, f"at most {in_flight} Graph requests in flight"
    assert f"{THREADS} threads" in log.read_text()
