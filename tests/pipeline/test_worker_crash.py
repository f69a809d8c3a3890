"""A worker killed with SIGKILL mid-batch: a new worker finishes, no meeting registered twice.

Real `celery -A worker.app worker` processes, started as an operator would, the simulator
over HTTPS, real Redis. The killed worker's messages stay with the broker (its visibility
timeout is 12 h), so finishing proves the sweeper took the rows up from the outcome store.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

import redis
from cli_helpers import command_env, meetreg, start_worker, wait_until
from pipeline_helpers import meetings_csv

from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus

ROWS = 150


@dataclass
class KilledMidBatch:
    batch_id: str
    env: dict[str, str]
    store: OutcomeStore
    at_kill: BatchStatus


def kill_worker_mid_batch(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> KilledMidBatch:
    """A batch of ROWS enqueued, and its worker SIGKILLed with rows mid-call, against a
    Graph that makes a second registration on a second POST."""
    sim.state.set_conflict("replace")
    sim.state.set_faults(latency_ms=80)
    path = meetings_csv(sim, tmp_path / "meetings.csv", [f"m-{i}" for i in range(ROWS)])
    env = command_env(
        **sim.env(),
        REDIS_URL=redis_url,
        MEETREG_RECOVERY_S="4",  # a dead worker's rows come back within 4 s
        MEETREG_CONCURRENCY="8",
        MEETREG_RATE_LIMIT="1000",
        MEETREG_REQUEST_TIMEOUT_S="5",
    )
    enqueued = meetreg("enqueue", str(path), env=env)
    assert enqueued.returncode == 0, enqueued.stderr
    batch_id = enqueued.stdout.strip()
    store = OutcomeStore(redis_client)

    first = start_worker("first", env, tmp_path)
    try:
        wait_until(lambda: store.batch_status(batch_id).done >= 30, timeout_s=60, what="30 rows")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    at_kill = store.batch_status(batch_id)
    assert not at_kill.finished
    assert at_kill.counts["running"] > 0  # killed with rows in the middle of Graph calls
    return KilledMidBatch(batch_id, env, store, at_kill)


def assert_created_once_each(sim: SimulatorServer, status: BatchStatus) -> None:
    assert status.counts["created"] + status.counts["already_enabled"] == ROWS
    assert status.counts["created"] == sum(sim.state.creations.values()) == ROWS
    assert sim.state.stats()["duplicates"] == []


def test_killed_worker_rows_are_finished_by_another_without_duplicates(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    killed = kill_worker_mid_batch(sim, redis_url, redis_client, tmp_path)
    batch_id, store = killed.batch_id, killed.store

    second = start_worker("second", killed.env, tmp_path)
    try:
        wait_until(lambda: store.batch_status(batch_id).finished, timeout_s=90, what="the batch")
    finally:
        second.terminate()
        second.wait(timeout=30)

    assert_created_once_each(sim, store.batch_status(batch_id))


def test_meetreg_run_takes_up_the_rows_a_dead_worker_held(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """`meetreg run` on the same Redis is a worker too: its sweeper finds the dead worker's
    rows and its threads finish them, while it runs a batch of its own."""
    killed = kill_worker_mid_batch(sim, redis_url, redis_client, tmp_path)
    own = meetings_csv(sim, tmp_path / "own.csv", [f"own-{i}" for i in range(30)])
    # Its own batch paced to last past the sweeper's first look (within 4 s): 60 calls.
    env = {**killed.env, "MEETREG_RATE_LIMIT": "15"}
    ran = meetreg("run", str(own), env=env, timeout=90)
    assert ran.returncode == 0, ran.stderr

    # Every row the dead worker held is final: taken up, not left to the broker's 12 h.
    final = killed.store.batch_status(killed.batch_id)
    assert final.counts["running"] == 0
    assert final.done > killed.at_kill.done
    assert sim.state.stats()["duplicates"] == []
