"""The chunk a worker holds from the moment its message comes: let go when the task ends,
or when the message is revoked and never runs. Held for ever, it would never be sent
again however its rows ended.

The worker's own task and Celery signal handlers, in this process, on real Redis.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import redis
from celery.app.task import Context
from celery.signals import task_revoked
from pipeline_helpers import HEADER, ORGANIZER, Batch

from worker import keys, tasks
from worker.protocol.chunk import chunk_name
from worker.runtime import close_runtime, runtime
from worker.simulator import SimulatorServer


@pytest.fixture
def process_runtime(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The worker process's runtime, as `celery worker` builds it, from the environment."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    yield
    close_runtime()
    # Building it froze the collector (gc.freeze), for a worker's life: not this session's,
    # where gc.get_referrers must still see every object (Hypothesis' plugin relies on it).
    gc.unfreeze()


def receive(message_id: str, chunk: tuple[str, int, int]) -> None:
    """What Celery's task_received signal hands the worker's hook."""
    request = SimpleNamespace(name=keys.PROCESS_CHUNK_TASK, id=message_id, args=list(chunk))
    tasks._hold_received_chunk(request=request)


def test_the_chunk_held_when_its_message_came_is_let_go_when_its_task_ends(
    process_runtime: None,
    sim: SimulatorServer,
    batch: Batch,
    queued: list,
    redis_client: redis.Redis,
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    batch_id = batch(f"{HEADER}{ORGANIZER},m-1,\n")
    (chunk,) = queued
    receive("message-1", chunk)
    leases = runtime().deps.leases
    assert leases.held().chunks == {chunk_name(*chunk)}
    tasks.process_chunk_task.apply(args=list(chunk), task_id="message-1")
    assert runtime().store.batch_status(batch_id).finished
    assert leases.held().chunks == set()  # no longer renewed
    assert redis_client.zcard(keys.INFLIGHT) == 0  # done: not to be sent again


def test_a_revoked_message_lets_go_of_the_chunk_held_when_it_came(
    process_runtime: None, redis_client: redis.Redis
) -> None:
    chunk = ("20260101-000000-abcdef", 1, 21)
    receive("message-1", chunk)
    leases = runtime().deps.leases
    assert leases.held().chunks == {chunk_name(*chunk)}
    task_revoked.send(
        sender=tasks.process_chunk_task,
        request=Context(id="message-1", args=list(chunk), task=keys.PROCESS_CHUNK_TASK),
        terminated=False,
        signum=None,
        expired=False,
    )
    assert leases.held().chunks == set()
    # Left to lapse, not dropped: the sweeper sends it again if its rows are not final.
    assert redis_client.zscore(keys.INFLIGHT, chunk_name(*chunk)) is not None
