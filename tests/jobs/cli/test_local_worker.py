"""The Celery worker `meetreg run` and `meetreg demo` start inside their own process: it takes
the queue's chunks through the real tasks until told to stop, then shuts down warmly. Run in
a child process, as `meetreg run` runs it (the Celery app reads its broker once per process),
on the simulator over HTTPS and real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import command_env
from pipeline_helpers import meetings_csv

from worker.simulator import SimulatorServer

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys, time
from jobs.cli.local_worker import run_worker_until
from jobs.enqueue import enqueue_rows
from jobs.sources.csv_file import read_rows
from worker import keys
from worker.publish import publish_chunks
from worker.runtime import runtime

store = runtime().store
path, stop_at_once = sys.argv[1], sys.argv[2] == "now"
done = enqueue_rows(read_rows(path), store=store, publish=publish_chunks, source=path, chunk_size=5)
started = time.monotonic()
if stop_at_once:
    run_worker_until(lambda: True, concurrency=2)
else:
    run_worker_until(lambda: store.batch_status(done.batch_id).finished, concurrency=2)
status = store.batch_status(done.batch_id)
print(json.dumps({
    "finished": status.finished,
    "counts": status.counts,
    "chunks": done.chunks,
    "queued_messages": store.redis.llen(keys.QUEUE),
    "seconds": time.monotonic() - started,
}))
"""


def run_local_worker(csv: Path, redis_url: str, when: str) -> dict[str, object]:
    env = command_env(REDIS_URL=redis_url, MEETREG_BACKOFF_BASE_S="0.02")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(csv), when],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    counts = seen["counts"]
    assert isinstance(counts, dict)
    seen["counts"] = {state: n for state, n in counts.items() if n}
    return seen


def test_it_works_the_queue_until_the_batch_is_final_then_returns(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    csv = meetings_csv(sim, tmp_path / "m.csv", [f"local-{n}" for n in range(12)])

    seen = run_local_worker(csv, redis_url, "when-finished")

    assert seen["finished"] is True
    assert seen["counts"] == {"created": 12}
    assert seen["chunks"] == 3
    assert seen["queued_messages"] == 0  # every message taken and acknowledged
    assert sum(sim.state.stats()["creations"].values()) == 12


def test_told_to_stop_it_leaves_the_work_it_has_not_done_on_the_queue(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    csv = meetings_csv(sim, tmp_path / "m.csv", [f"stop-{n}" for n in range(12)])

    seen = run_local_worker(csv, redis_url, "now")

    # A warm shutdown: a chunk a thread had started is finished, the rest go back to the
    # queue for the next worker; nothing is lost and no row is left half done.
    assert seen["seconds"] < 30
    counts = seen["counts"]
    assert isinstance(counts, dict)
    assert sum(counts.values()) == 12
    assert set(counts) <= {"created", "queued"}
    if not seen["finished"]:
        assert isinstance(seen["queued_messages"], int) and seen["queued_messages"] >= 1
