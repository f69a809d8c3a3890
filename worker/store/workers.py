"""Workers alive: each worker process's heartbeat, by Redis' clock."""

from __future__ import annotations

from worker import keys
from worker.redis.connection import redis_now_ms, store_errors
from worker.store.core import DAY_S, StoreCore


class Workers(StoreCore):
    """Notes heartbeats and counts the processes that beat lately."""

    @store_errors
    def worker_seen(self, process: str) -> None:
        """Note that a worker process is alive now (its heartbeat); forget ones silent a day."""
        now_ms = int(redis_now_ms(self.redis))
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.WORKERS, {process: now_ms})
        pipe.zremrangebyscore(keys.WORKERS, "-inf", now_ms - DAY_S * 1000)
        pipe.execute()

    @store_errors
    def workers_seen_within(self, window_ms: int) -> int:
        """How many worker processes beat within the last `window_ms`."""
        now_ms = int(redis_now_ms(self.redis))
        return int(self.redis.zcount(keys.WORKERS, now_ms - window_ms, "+inf"))
