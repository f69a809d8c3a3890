"""Workers alive, by their heartbeats on Redis' clock: what `status` and the gauges count."""

from __future__ import annotations

import redis

from worker import keys
from worker.redis.connection import redis_now_ms
from worker.store.outcome_store import OutcomeStore


def test_workers_that_beat_within_the_window_are_counted_once_each(store: OutcomeStore) -> None:
    store.worker_seen("host-a:1")
    store.worker_seen("host-b:7")
    store.worker_seen("host-a:1")
    assert store.workers_seen_within(60_000) == 2


def test_a_worker_silent_longer_than_the_window_is_not_counted(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    now_ms = redis_now_ms(redis_client)
    redis_client.zadd(keys.WORKERS, {"host-old:3": now_ms - 120_000})
    store.worker_seen("host-a:1")
    assert store.workers_seen_within(60_000) == 1
    assert store.workers_seen_within(180_000) == 2


def test_a_heartbeat_forgets_workers_silent_for_a_day(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    now_ms = redis_now_ms(redis_client)
    redis_client.zadd(keys.WORKERS, {"host-gone:9": now_ms - 86_400_000 - 1_000})
    store.worker_seen("host-a:1")
    assert redis_client.zscore(keys.WORKERS, "host-gone:9") is None
