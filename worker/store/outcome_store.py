"""The outcome store: every row's outcome, every batch's counters, every meeting's record.

Redis is the truth (no Celery result backend); keys are in `worker.keys`. `OutcomeStore`
is the one object callers hold: each concern's methods live in a module of their own
(batches, rows, meetings, pausing, leases, chunks, workers, caches) and this class is all
of them on one client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.redis.connection import connect
from worker.store.caches import Caches
from worker.store.chunks import Chunks
from worker.store.leases import Leases
from worker.store.meetings import Meetings
from worker.store.pausing import Pausing
from worker.store.workers import Workers

if TYPE_CHECKING:
    from worker.settings import Settings


class OutcomeStore(Pausing, Meetings, Leases, Chunks, Workers, Caches):
    """Reads and writes outcomes. Thread-safe: redis-py clients pool their connections."""


def open_store(settings: Settings) -> OutcomeStore:
    """The outcome store on a new Redis client (`.redis`); raises ConfigError without
    REDIS_URL. Nothing is sent to Redis yet."""
    target = settings.require_redis()
    client = connect(target, max_connections=settings.concurrency * 2 + 8)
    return OutcomeStore(
        client,
        retention_days=settings.retention_days,
        idempotency_retention_days=settings.idempotency_retention_days,
        pause_after=settings.pause_after,
        pause_min_users=settings.pause_min_users,
        stall_after_s=settings.recovery_s,
    )
