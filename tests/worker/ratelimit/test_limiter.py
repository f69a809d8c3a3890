import subprocess
import sys
import threading
import time

import pytest
import redis

from worker import keys
from worker.ratelimit.limiter import RateLimiter, Tuning

EXACT = Tuning(margin=1.0)
# No slow start, no growth after a decision: rates stay where a test put them.
STILL = Tuning(margin=1.0, start_rate_per_s=1e9, hold_s=3600.0)


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
from worker.ratelimit.limiter import RateLimiter, Tuning
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
    assert told.throttled(0.3).pause_s > 0.25
    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started >= 0.25


def test_a_shorter_retry_after_never_shortens_a_longer_pause(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=1000)
    limiter.throttled(0.5)
    assert limiter.throttled(0.1).pause_s > 0.4


def test_slots_asked_for_in_a_pause_come_after_it_one_by_one(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=100, tuning=STILL)
    limiter.throttled(0.2)
    started = time.monotonic()
    slots = [limiter.acquire() - started for _ in range(3)]
    # Not all at the pause's end (a clump): the first then, the others 10 ms apart (each
    # slot's time is read through a round trip: a busy machine blurs single gaps).
    assert slots[0] >= 0.19
    assert slots[2] - slots[0] == pytest.approx(0.02, abs=0.005)
    assert slots[0] < slots[1] < slots[2]


def test_slow_start_doubles_the_rate_up_to_the_cap(redis_client: redis.Redis) -> None:
    tuning = Tuning(start_rate_per_s=100, doubling_s=0.1)
    limiter = RateLimiter(redis_client, rate_per_s=1000, tuning=tuning)
    limiter.acquire()  # the first request starts it
    assert limiter.rate_now() == pytest.approx(100, rel=0.2)
    time.sleep(0.2)
    assert limiter.rate_now() == pytest.approx(400, rel=0.3)
    time.sleep(0.2)
    assert limiter.rate_now() == 1000  # capped
    assert RateLimiter(redis_client, rate_per_s=50, tuning=tuning).rate_now() == 50


def storm(limiter: RateLimiter, sent: int, admitted: int) -> list[str]:
    """`sent` requests in a burst, the service admitting `admitted` of them: each refused
    one reports its 429, as the worker threads do, some time after they all left."""
    slots = [limiter.acquire() for _ in range(sent)]
    time.sleep(0.05)  # the answers take a while
    return [
        limiter.throttled(0.0, slot_ago_s=time.monotonic() - slot).reading
        for slot in slots[admitted:]
    ]


def test_a_storm_at_a_cap_far_above_the_limit_measures_the_limit(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=10_000, tuning=STILL)
    readings = storm(limiter, sent=120, admitted=80)
    # The first 429 is news, the rest are the same storm; one second held 81 at the first.
    assert readings == ["measured"] * 40
    assert limiter.rate_now() == pytest.approx(80, abs=2)


def test_a_429_at_our_pace_at_the_cap_is_jitter_and_keeps_the_rate(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=400, tuning=STILL)
    slots = [limiter.acquire() for _ in range(440)]  # a full second and more at the cap
    verdict = limiter.throttled(0.0, slot_ago_s=time.monotonic() - slots[-1])
    assert verdict.reading == "0"
    assert verdict.rate_per_s == 400


def test_429s_again_soon_after_the_pause_cut_deeper_each_time(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=400, tuning=STILL)
    for _ in range(440):
        limiter.acquire()
    readings = []
    for _ in range(3):
        slot = limiter.acquire()  # sent after the last decision: news
        readings.append(limiter.throttled(0.0, slot_ago_s=time.monotonic() - slot).reading)
    assert readings == ["0", "0.02", "0.04"]
    assert limiter.rate_now() == pytest.approx(400 * 0.98 * 0.96)


def test_429s_of_requests_sent_before_the_pause_ended_are_echoes(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=400, tuning=STILL)
    slots = [limiter.acquire() for _ in range(440)]
    first = limiter.throttled(0.3, slot_ago_s=time.monotonic() - slots[-1])
    # A request that left during the pause: its slot was reserved before the pause began.
    late = limiter.throttled(0.3, slot_ago_s=0.0)
    assert (first.reading, late.reading) == ("0", "echo")
    assert late.rate_per_s == first.rate_per_s


def test_after_a_decision_the_rate_holds_then_grows_to_the_cap(
    redis_client: redis.Redis,
) -> None:
    tuning = Tuning(start_rate_per_s=1e9, hold_s=0.2, probe_per_s=1.0)
    limiter = RateLimiter(redis_client, rate_per_s=10_000, tuning=tuning)
    storm(limiter, sent=120, admitted=80)
    found = limiter.rate_now()
    time.sleep(0.1)
    assert limiter.rate_now() == found  # holding
    time.sleep(0.25)
    assert found < limiter.rate_now() < found * 1.3  # +100% a second after the hold


def test_an_idle_limiter_forgets_what_it_learned(redis_client: redis.Redis) -> None:
    tuning = Tuning(start_rate_per_s=1e9, idle_s=0.2)
    limiter = RateLimiter(redis_client, rate_per_s=10_000, tuning=tuning)
    storm(limiter, sent=120, admitted=80)
    assert limiter.rate_now() < 100
    time.sleep(0.3)
    assert limiter.rate_now() == 10_000  # a fresh start (slow start from 1e9, capped)


def test_a_slot_woken_for_too_late_is_given_up_for_a_new_one(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=1000, tuning=STILL)
    redis_client.zadd(keys.RATE_LOG, {"missed": 1.0})  # a slot a store script reserved
    started = time.monotonic()
    # Asked for a second ago: the slot, 5 ms after that, passed long ago.
    slot_at = limiter.settle(5.0, True, "missed", asked_at=started - 1.0)
    assert slot_at >= started  # a new slot, not the missed one
    assert redis_client.zscore(keys.RATE_LOG, "missed") is None  # no request will fill it
    assert redis_client.zcard(keys.RATE_LOG) == 1  # the new one


def test_a_slot_reserved_before_another_workers_pause_waits_for_its_end(
    redis_client: redis.Redis,
) -> None:
    """A request queued for a slot must not leave inside a pause another worker began
    meanwhile: Graph counts it against us, and the pause would be for nothing."""
    waiting = RateLimiter(redis_client, rate_per_s=5, tuning=STILL)
    other = RateLimiter(redis.Redis(connection_pool=redis_client.connection_pool), 5)
    waiting.acquire()  # the next slot is 200 ms away
    paused_at: list[float] = []

    def pause_meanwhile() -> None:
        time.sleep(0.05)
        paused_at.append(time.monotonic())
        other.throttled(0.5)

    pauser = threading.Thread(target=pause_meanwhile)
    pauser.start()
    slot = waiting.acquire()
    pauser.join()
    assert slot >= paused_at[0] + 0.45


def test_a_503_with_retry_after_pauses_everyone_but_leaves_the_rate(
    redis_client: redis.Redis,
) -> None:
    """A busy service's 503 says nothing about how many requests we sent: taken for a 429,
    a few random 503s would cut the rate again and again, down to a crawl."""
    limiter = RateLimiter(redis_client, rate_per_s=400, tuning=STILL)
    other = RateLimiter(redis.Redis(connection_pool=redis_client.connection_pool), 400)
    for _ in range(3):
        slot = limiter.acquire()
        verdict = limiter.throttled(0.1, slot_ago_s=time.monotonic() - slot, about_rate=False)
        assert verdict.reading == "pause"
        assert verdict.pause_s > 0.05
    started = time.monotonic()
    other.acquire()  # everyone honours the pause
    assert time.monotonic() - started > 0.05
    assert limiter.rate_now() == 400


def test_a_closed_limiter_opens_no_connection_after_its_client_closed(redis_url: str) -> None:
    # The pause watcher polls in the background for seconds after the last request; a read
    # after the process closed its Redis client reopened a socket nobody closed.
    client = redis.Redis.from_url(redis_url)
    limiter = RateLimiter(client, rate_per_s=1000, tuning=Tuning(pause_poll_s=0.01))
    before = set(threading.enumerate())  # other tests' limiters may watch too
    for _ in range(20):  # paced requests check the pause, which starts the watcher
        limiter.acquire()
    watchers = [
        t for t in threading.enumerate() if t.name == "meetreg-pause-watch" and t not in before
    ]
    assert watchers
    limiter.close()
    client.close()
    pool = client.connection_pool
    opened = pool._created_connections
    time.sleep(0.2)  # twenty of the watcher's polls, had it kept going
    assert pool._created_connections == opened
    assert not [t for t in watchers if t.is_alive()]
