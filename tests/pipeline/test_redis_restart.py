"""Redis restarted again and again under a running worker: every row ends, none is left
`running` behind a lease its worker keeps renewing, no meeting is registered twice.

A worker in this process (its runtime, its threads, its heartbeat) works a batch while a
private redis-server (AOF, appendfsync always) is killed and started again at random
moments. Leases are of production length (60 s): a lease the worker kept renewing for
work no thread does would hold its rows up for ever, and a short one would hide that by
lapsing. A chunk whose work Redis broke is left for the sweeper: its claim lapses (here
at once, for chunks the worker no longer renews, rather than 60 s later) and the real
sweep sends it again. Against a Graph that makes a second registration on a second POST.
Run with -s to see the seed and the figures; RESTART_TEST_SEED replays a run.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import redis
from pipeline_helpers import fast_settings, meetings_csv, registrants_csv

from jobs.enqueue import Chunk, enqueue_file
from worker import keys
from worker.errors import StoreError
from worker.protocol.chunk import chunk_name, process_chunk
from worker.protocol.recovery import sweep_once
from worker.redis.embedded import EmbeddedRedis
from worker.runtime import Runtime, build_runtime
from worker.simulator import SimulatorServer
from worker.store.records import BatchStatus

ROWS = 400
THREADS = 8
RESTARTS = 5
DEADLINE_S = 45.0


class InProcessWorker:
    """A worker's threads taking chunk messages from a queue, as `celery worker` does:
    the chunk held when its message comes, then worked. The broker is Redis: a message
    comes only while Redis answers, so one whose chunk could not be held waits in the
    queue. A message whose work failed is gone (acknowledged, as Celery does); its chunk
    is the sweeper's to send again."""

    def __init__(self, runtime: Runtime, threads: int) -> None:
        self.runtime = runtime
        self.messages: queue.Queue[Chunk] = queue.Queue()
        self.failed = 0  # chunks whose work Redis broke
        self._unreceived: Counter[str] = Counter()  # chunk -> its messages not taken yet
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"worker-{n}", daemon=True)
            for n in range(threads)
        ]

    def publish(self, chunks: Iterable[Chunk]) -> int:
        sent = list(chunks)
        for chunk in sent:
            with self._lock:
                self._unreceived[chunk_name(*chunk)] += 1
            self.messages.put(chunk)
        return len(sent)

    def unreceived(self) -> set[str]:
        """The chunks with a message still with the broker: no worker holds them yet."""
        with self._lock:
            return {name for name, messages in self._unreceived.items() if messages}

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float) -> list[str]:
        """Stop taking messages; the threads still working after `timeout_s`."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in self._threads if thread.is_alive()]

    def _work(self) -> None:
        deps = self.runtime.deps
        while not self._stop.is_set():
            try:
                chunk = self.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            message_id = uuid.uuid4().hex
            name = chunk_name(*chunk)
            try:  # the task_received hook
                deps.leases.hold_chunk(name, holder=message_id)
            except StoreError:
                self.messages.put(chunk)
                self._stop.wait(0.1)
                continue
            with self._lock:
                self._unreceived[name] -= 1
            try:
                process_chunk(deps, *chunk, holder=message_id)
            except StoreError:
                self.failed += 1
            except BaseException as exc:
                self.errors.append(exc)


def lapse_chunks_no_one_renews(worker: InProcessWorker, client: redis.Redis) -> None:
    """What lease_ms without a renewal does to a chunk's claim, at once: for the chunks in
    `inflight` the worker's heartbeat does not renew (each beat renews exactly those it
    holds), and that have no message waiting to be taken (sent again already)."""
    waiting = worker.unreceived()
    renewed = worker.runtime.deps.leases.held().chunks
    for member in client.zrange(keys.INFLIGHT, 0, -1):
        chunk = member.decode()
        if chunk not in renewed and chunk not in waiting:
            client.zadd(keys.INFLIGHT, {chunk: 0}, xx=True)


def meeting_rows(sim: SimulatorServer, path: Path) -> Callable[[], list[int]]:
    """Meetings, against a Graph that replaces a registration on a second POST; how many
    registrations each meeting got."""
    sim.state.set_conflict("replace")
    meetings_csv(sim, path, [f"r-{i}" for i in range(ROWS)])
    return lambda: list(sim.state.creations.values())


def registrant_rows(sim: SimulatorServer, path: Path) -> Callable[[], list[int]]:
    """Webinar registrants, against a Graph that makes a second registration on a second
    POST; how many registrations each person got."""
    sim.state.set_webinar_conflict("duplicate")
    _, webinars = registrants_csv(sim, path, ROWS, webinars=3)

    def made() -> list[int]:
        per_person: Counter[tuple[str, str]] = Counter()
        for webinar in webinars:
            for registration in sim.state.webinar_registrations(webinar):
                per_person[(webinar, registration["email"].casefold())] += 1
        return list(per_person.values())

    return made


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_S + 60)
@pytest.mark.parametrize(
    ("rows", "made_state"),
    [(meeting_rows, "created"), (registrant_rows, "registered")],
    ids=["meetings", "webinar-registrants"],
)
def test_rows_end_once_each_while_redis_restarts_under_the_worker(
    sim: SimulatorServer,
    tmp_path: Path,
    rows: Callable[[SimulatorServer, Path], Callable[[], list[int]]],
    made_state: str,
) -> None:
    seed = int(os.environ.get("RESTART_TEST_SEED") or random.randrange(2**32))
    print(f"\nredis restart: seed {seed}")
    rng = random.Random(seed)
    sim.state.set_faults(latency_ms=30)
    path = tmp_path / "rows.csv"
    made = rows(sim, path)

    with EmbeddedRedis(appendonly=True, args=["--appendfsync", "always"]) as server:
        # Paced to last through the restarts: 30 rows/s, a GET and a POST each.
        settings = fast_settings(server.url, rate_limit_per_s=60, concurrency=THREADS)
        assert settings.lease_ms == 60_000  # production's
        runtime = build_runtime(settings)
        client = redis.Redis.from_url(server.url)
        worker = InProcessWorker(runtime, THREADS)
        batch_id = enqueue_file(
            path, store=runtime.store, publish=worker.publish, chunk_size=settings.chunk_size
        ).batch_id
        worker.start()
        started = time.monotonic()
        restarts, resent = 0, 0
        next_restart = started + rng.uniform(1.0, 3.0)
        status: BatchStatus | None = None
        try:
            while time.monotonic() - started < DEADLINE_S:
                now = time.monotonic()
                if restarts < RESTARTS and now >= next_restart:
                    server.kill()
                    time.sleep(rng.uniform(0.0, 0.5))  # Redis down a moment
                    server.start()
                    restarts += 1
                    next_restart = time.monotonic() + rng.uniform(1.0, 3.0)
                try:
                    lapse_chunks_no_one_renews(worker, client)
                    resent += sweep_once(runtime.store, worker.publish, settings.lease_ms)
                    status = runtime.store.batch_status(batch_id)
                except (StoreError, redis.RedisError):
                    continue  # Redis is starting: look again
                if status.finished and restarts == RESTARTS:
                    break
                time.sleep(0.1)
        finally:
            still_working = worker.stop(timeout_s=10)
            elapsed = time.monotonic() - started
            held = runtime.deps.leases.held()
            leases_left = len(list(client.scan_iter(f"{keys.PREFIX}lease:*")))
            runtime.close()
            client.close()

    registrations = made()
    duplicates = sum(n - 1 for n in registrations if n > 1)
    print(
        f"redis restart: {ROWS} rows, {restarts} restarts, {worker.failed} chunk runs broken, "
        f"{resent} chunks sent again by the sweep, {elapsed:.1f} s; "
        f"{status.counts if status else None}; duplicates {duplicates}"
    )
    assert worker.errors == []
    assert restarts == RESTARTS
    assert worker.failed > 0, f"no restart hit a chunk's work (seed {seed})"
    assert status is not None and status.finished, f"rows stuck (seed {seed}): {status}"
    assert status.counts[made_state] == ROWS
    assert still_working == [], f"threads waiting for ever (seed {seed})"
    assert held.chunks == set() and held.leases == {}
    assert leases_left == 0
    assert len(registrations) == ROWS and duplicates == 0, f"seed {seed}"
