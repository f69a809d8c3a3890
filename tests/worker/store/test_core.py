"""What the store's parts share: a script run many times in one round trip, even after
Redis lost its scripts (a restart, SCRIPT FLUSH)."""

from __future__ import annotations

import redis

from worker.store.core import DAY_S, StoreCore

INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def test_a_script_runs_once_per_call_in_order(redis_client: redis.Redis) -> None:
    core = StoreCore(redis_client)
    script = redis_client.register_script(INCR_BY)
    assert core._pipelined(script, [(["n"], [1]), (["n"], [2]), (["m"], [5])]) == [1, 3, 5]


def test_a_script_redis_lost_is_loaded_again_and_every_call_runs_once(
    redis_client: redis.Redis,
) -> None:
    core = StoreCore(redis_client)
    script = redis_client.register_script(INCR_BY)
    redis_client.script_flush()
    assert core._pipelined(script, [(["n"], [1]), (["n"], [2])]) == [1, 3]
    assert int(redis_client.get("n") or 0) == 3


def test_retention_is_kept_in_whole_seconds_and_never_zero(redis_client: redis.Redis) -> None:
    core = StoreCore(redis_client, retention_days=2, idempotency_retention_days=0.0)
    assert core.retention_s == 2 * DAY_S
    assert core.idempotency_retention_s == 1
