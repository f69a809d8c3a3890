"""The Celery task: parse the message, fetch this process's clients, call the protocol.

Also the worker's lifecycle hooks: the sweeper starts with the worker and stops with it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from celery.signals import worker_init, worker_ready, worker_shutdown

from worker import keys
from worker.app import app
from worker.errors import ConfigError
from worker.recovery import Sweeper
from worker.register import process_chunk
from worker.runtime import close_runtime, current_settings, runtime


@app.task(name=keys.PROCESS_CHUNK_TASK)
def process_chunk_task(batch_id: str, start: int, stop: int) -> None:
    """Bring rows start..stop-1 of the batch to a final state."""
    process_chunk(runtime().deps, str(batch_id), int(start), int(stop))


_sweeper: Sweeper | None = None


@worker_init.connect
def _check_configuration(**_: Any) -> None:
    """Refuse to start without what every task will need: one line, exit 2."""
    try:
        current_settings().require_credentials()
    except ConfigError as exc:
        print(f"meetreg: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    global _sweeper
    current = runtime()
    settings = current.settings
    _sweeper = Sweeper(
        current.store, publish_chunks, settings.lease_ms, settings.sweep_interval_s
    ).start()


@worker_shutdown.connect
def _stop_sweeper(**_: Any) -> None:
    if _sweeper is not None:
        _sweeper.stop()
    close_runtime()


def publish_chunks(chunks: Iterable[tuple[str, int, int]]) -> int:
    """Send many chunks over one broker connection; returns how many were sent."""
    sent = 0
    with app.producer_or_acquire() as producer:
        for batch_id, start, stop in chunks:
            process_chunk_task.apply_async(
                args=[batch_id, start, stop], queue=keys.QUEUE, producer=producer
            )
            sent += 1
    return sent
