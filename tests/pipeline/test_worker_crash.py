"""A worker killed with SIGKILL mid-batch: a new worker finishes, no meeting registered twice,
no person registered twice for a webinar (whatever Graph does with a second POST).

Real `celery -A worker.app worker` processes, started as an operator would, the simulator
over HTTPS, real Redis. The killed worker's messages stay with the broker (its visibility
timeout is 12 h), so finishing proves the sweeper took the rows up from the outcome store.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg, start_worker, wait_until
from pipeline_helpers import meetings_csv, registrants_csv

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


def running_rows(status: BatchStatus) -> bool:
    return status.counts["running"] > 0


def kill_worker_mid_batch(
    sim: SimulatorServer,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    path: Path | None = None,
) -> KilledMidBatch:
    """A batch of ROWS enqueued (meetings, or the registrants in the CSV at `path`), and
    its worker SIGKILLed with rows mid-call, against a Graph that makes a second
    registration on a second POST (for meetings; a webinar's mode is the caller's).
    Registrants: some POSTs commit, then stall past the client's timeout; the worker is
    killed while one is stalled, Graph having registered the person unbeknown to meetreg."""
    sim.state.set_conflict("replace")
    mid_calls: Callable[[BatchStatus], bool] = running_rows
    if path is None:
        sim.state.set_faults(latency_ms=80)
        path = meetings_csv(sim, tmp_path / "meetings.csv", [f"m-{i}" for i in range(ROWS)])
    else:
        sim.state.set_faults(
            latency_ms=80, commit_then_timeout_probability=0.05, stall_s=3.0, seed=3
        )

        def mid_calls(status: BatchStatus) -> bool:
            committed = sim.state.stats()["webinar_registrations_created"]
            return committed > status.counts["registered"] + status.counts["already_registered"]

    env = command_env(
        **sim.env(),
        REDIS_URL=redis_url,
        MEETREG_RECOVERY_S="4",  # a dead worker's rows come back within 4 s
        MEETREG_CONCURRENCY="8",
        MEETREG_RATE_LIMIT="1000",
        MEETREG_REQUEST_TIMEOUT_S="2",
    )
    enqueued = meetreg("enqueue", str(path), env=env)
    assert enqueued.returncode == 0, enqueued.stderr
    batch_id = enqueued.stdout.strip()
    store = OutcomeStore(redis_client)

    first = start_worker("first", env, tmp_path)
    try:
        # Killed while rows are claimed and their calls in flight, once 30 are done.
        wait_until(
            lambda: (status := store.batch_status(batch_id)).done >= 30 and mid_calls(status),
            timeout_s=60,
            what="30 rows done, and rows mid-call",
        )
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


def assert_registered_once_each(sim: SimulatorServer, webinars: list[str], status: BatchStatus):
    assert status.counts["registered"] + status.counts["already_registered"] == ROWS
    made = [r for w in webinars for r in sim.state.webinar_registrations(w)]
    assert status.counts["registered"] == len(made) == ROWS
    # Each registration is the one its own row made, under that row's key.
    assert len({r["externalRegistrationInformation"]["registrationId"] for r in made}) == ROWS
    assert sim.state.webinar_duplicates() == 0


# Webinars under "duplicate": a second POST would make a second registration, the one
# answer under which a duplicate shows. Every other mode is met in test_lost_response.py,
# whose lost answers put the same question to the protocol without a process to kill.
@pytest.mark.parametrize("target", ["meetings", "duplicate"])
def test_killed_worker_rows_are_finished_by_another_without_duplicates(
    target: str, sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """`target`: meetings, or webinar registrants under that webinar conflict mode (what a
    second POST for a person already registered gets)."""
    webinars: list[str] = []
    path = None
    if target != "meetings":
        sim.state.set_webinar_conflict(target)  # type: ignore[arg-type]
        path, webinars = registrants_csv(sim, tmp_path / "registrants.csv", ROWS, webinars=5)
    killed = kill_worker_mid_batch(sim, redis_url, redis_client, tmp_path, path)
    batch_id, store = killed.batch_id, killed.store

    second = start_worker("second", killed.env, tmp_path)
    try:
        wait_until(lambda: store.batch_status(batch_id).finished, timeout_s=90, what="the batch")
    finally:
        second.terminate()
        second.wait(timeout=30)

    if webinars:
        assert_registered_once_each(sim, webinars, store.batch_status(batch_id))
    else:
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
