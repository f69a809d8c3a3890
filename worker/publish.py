"""Sending messages to the workers: chunks of rows, and Graph notifications.

By task name, over the Celery app alone: a producer (`meetreg enqueue`, the nightly job,
the HTTP intake) does not load the worker's code (its Graph client, MSAL and its
cryptography), whose imports took about half of `meetreg enqueue`'s start-up, the time
before the first row can go.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import redis
from kombu.exceptions import OperationalError

from worker import keys
from worker.app import app
from worker.errors import StoreError


def publish_chunks(chunks: Iterable[tuple[str, int, int]]) -> int:
    """Send many chunks over one broker connection; returns how many were sent. Raises
    StoreError when the broker (Redis) fails."""
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for batch_id, start, stop in chunks:
                app.send_task(
                    keys.PROCESS_CHUNK_TASK,
                    args=[batch_id, start, stop],
                    queue=keys.QUEUE,
                    producer=producer,
                )
                sent += 1
    except (OperationalError, redis.RedisError) as exc:
        raise StoreError(f"cannot send to the queue: {type(exc).__name__}: {exc}") from exc
    return sent


class Notification(Protocol):
    """What a notification message carries: a record that knows its JSON form."""

    def to_json_dict(self) -> dict[str, Any]: ...


def _send_one(task: str, note: Notification) -> None:
    try:
        app.send_task(task, args=[note.to_json_dict()], queue=keys.QUEUE)
    except (OperationalError, redis.RedisError) as exc:
        raise StoreError(f"cannot send to the queue: {type(exc).__name__}: {exc}") from exc


def publish_change(note: Notification) -> None:
    """Send one change notification to the workers."""
    _send_one(keys.HANDLE_CHANGE_TASK, note)


def publish_lifecycle(note: Notification) -> None:
    """Send one lifecycle notification to the workers."""
    _send_one(keys.HANDLE_LIFECYCLE_TASK, note)
