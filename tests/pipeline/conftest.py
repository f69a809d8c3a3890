"""Fixtures for the pipeline: the simulator over real HTTPS, Redis, and the worker's clients.

`batch(csv_text)` enqueues a CSV into the real store and returns its id; `work(batch_id)`
runs the queued chunks through the real protocol (the function the Celery task calls),
in this process, with the real Graph client against the simulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import redis
from pipeline_helpers import Batch, Work, fast_settings

from jobs.enqueue import Chunk, enqueue_rows
from jobs.sources.csv_file import read_rows
from worker.protocol.chunk import process_chunk
from worker.runtime import Runtime, build_runtime
from worker.settings import Settings
from worker.simulator import SimulatorServer
from worker.store.records import BatchStatus


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

        done = enqueue_rows(
            read_rows(path),
            store=runtime.store,
            publish=publish,
            source=str(path),
            batch_id=batch_id,
        )
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
