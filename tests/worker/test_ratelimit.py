import subprocess
import sys
import time

import pytest
import redis

from worker.ratelimit import RateLimiter, Tuning

EXACT = Tuning(margin=1.0)


def test_requests_from_two_limiters_share_one_rate(redis_client: redis.Redis) -> None:
    a = RateLimiter(redis_client, rate_per_s=100, tuning=EXACT)
    b = RateLimiter(redis.Redis(connection_pool=redis_client.connection_pool), 100, tuning=EXACT)
    started = time.monotonic()
    for _ in range(25):
        a.acquire()
        b.acquire()
    # 50 requests at 100/s: the first goes at once, the rest 10 ms apart.
    assert time.monotonic() - started >= 0.49 * 0.98


TWO_PROCESS_SCRIPT = """
import sys, time, redis
from worker.ratelimit import RateLimiter, Tuning
limiter = RateLimiter(redis.Redis.from_url(sys.argv[1]), 50, tuning=Tuning(margin=1.0))
for _ in range(int(sys.argv[2])):
    limiter.acquire()
    print(time.time(), flush=True)
"""


def test_two_processes_together_stay_within_the_limit(
    redis_url: str, redis_client: redis.Redis
) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", TWO_PROCESS_SCRIPT, redis_url, "40"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    stamps = sorted(float(line) for w in workers for line in w.communicate(timeout=30)[0].split())
    assert len(stamps) == 80
    # 80 grants at 50/s: no one-second window holds more than 50 (+1 for its edge).
    assert max(sum(1 for s in stamps if t <= s < t + 1.0) for t in stamps) <= 51
    assert stamps[-1] - stamps[0] >= 79 / 50 * 0.98


def test_a_429_seen_by_one_worker_holds_back_another(redis_client: redis.Redis) -> None:
    told = RateLimiter(redis_client, rate_per_s=1000)
    other = RateLimiter(redis_client, rate_per_s=1000)
    left_s, _ = told.throttled(0.3)
    assert left_s > 0.25
    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started >= 0.25


def test_a_shorter_retry_after_never_shortens_a_longer_pause(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=1000)
    limiter.throttled(0.5)
    assert limiter.throttled(0.1)[0] > 0.4


def test_a_429_leaves_a_cap_never_reached_in_one_step(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=10_000, tuning=Tuning(increase_per_s=0.0))
    for _ in range(100):  # far below the 10,000/s cap: the real rate is what counts
        limiter.acquire()
    _, rate = limiter.throttled(0.0)
    # What was granted, as a rate (100 grants in well under 0.2 s), times 0.85.
    assert 0.85 * 100 <= rate <= 0.85 * 100 / 0.2 + 1
    _, later = limiter.throttled(0.0)  # the same storm: no second decrease
    assert later == rate


def test_a_storm_of_429s_lowers_the_rate_once(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=100, tuning=Tuning(increase_per_s=0.0))
    rates = [limiter.throttled(0.0)[1] for _ in range(20)]
    assert rates == [pytest.approx(85.0)] * 20


def test_the_rate_grows_back_additively_up_to_the_cap(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=100, tuning=Tuning(increase_per_s=0.5))
    _, lowered = limiter.throttled(0.0)
    assert lowered == pytest.approx(85.0)
    grown = limiter.rate_now()
    time.sleep(0.1)  # +50% of 85 per second: +4.25 in 0.1 s
    assert 85.0 <= grown < limiter.rate_now() <= 85.0 + 42.5 * 0.2
    time.sleep(0.4)  # 15 more to the cap take 0.35 s
    assert limiter.rate_now() == 100.0  # capped
