import time

import redis

from worker.ratelimit import RateLimiter


def test_requests_from_two_limiters_share_one_rate(redis_client: redis.Redis) -> None:
    a = RateLimiter(redis_client, rate_per_s=100)
    b = RateLimiter(redis.Redis(connection_pool=redis_client.connection_pool), rate_per_s=100)
    started = time.monotonic()
    for _ in range(25):
        a.acquire()
        b.acquire()
    elapsed = time.monotonic() - started
    # 50 requests at 100/s: the first goes at once, the rest 10 ms apart.
    assert elapsed >= 0.49 * 0.98


def test_a_pause_set_by_one_worker_holds_back_another(redis_client: redis.Redis) -> None:
    told = RateLimiter(redis_client, rate_per_s=1000)
    other = RateLimiter(redis_client, rate_per_s=1000)
    assert told.pause(0.3) > 0.25
    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started >= 0.25


def test_a_shorter_pause_never_shortens_a_longer_one(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=1000)
    limiter.pause(0.5)
    assert limiter.pause(0.1) > 0.4
