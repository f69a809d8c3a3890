"""One rate limit for every worker on every machine: GCRA in Redis, plus a shared pause.

Each Graph request first reserves a slot with one Lua call. The script keeps GCRA's
theoretical arrival time (TAT) in `rate:tat`, and honours `rate:pause_until`, which any
worker told `Retry-After` sets for all of them (GRAPH.md: requests sent while throttled
still count against the app). Time is Redis' clock, so machines need not agree on theirs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from redis.commands.core import Script

from worker import keys
from worker.redis_conn import store_errors

# KEYS: tat, pause. ARGV: interval_ms, burst_ms.
# Returns {wait_ms, reserved}: reserved=1 means a slot is ours at now+wait_ms;
# reserved=0 means a pause is on: wait, then ask again.
_RESERVE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > now then return {tostring(pause - now), 0} end
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait < 0 then wait = 0 end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {tostring(wait), 1}
"""

# KEYS: tat, pause. ARGV: seconds. Push the shared pause out to now+seconds, never pull it in.
_PAUSE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local until_ms = now + tonumber(ARGV[1]) * 1000
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[2], tostring(until_ms), 'PX', math.ceil(until_ms - now) + 1000)
end
return tostring(math.max(until_ms, current) - now)
"""


class RateLimiter:
    """Blocks each caller until the shared limit lets its request go.

    `rate_per_s` caps all workers together; `burst` requests may go back to back.
    """

    def __init__(
        self,
        client: redis.Redis,
        rate_per_s: float,
        *,
        burst: int = 1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval_ms = 1000.0 / rate_per_s
        self.burst_ms = self.interval_ms * max(0, burst - 1)
        self._sleep = sleep
        self._redis = client
        self._reserve = client.register_script(_RESERVE)
        self._pause = client.register_script(_PAUSE)

    @store_errors
    def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited.

        A slot reserved for later is given up if a pause began while we waited for it:
        the request would land inside the window Graph asked everyone to keep quiet.
        """
        waited = 0.0
        while True:
            wait_ms, reserved = self._call(self._reserve, self.interval_ms, self.burst_ms)
            if wait_ms > 0:
                self._sleep(wait_ms / 1000)
                waited += wait_ms / 1000
            if reserved and (wait_ms == 0 or not self._paused()):
                return waited

    def _paused(self) -> bool:
        until = self._redis.get(keys.RATE_PAUSE_UNTIL)
        if until is None:
            return False
        seconds, micros = self._redis.time()
        return float(until) > int(seconds) * 1000 + int(micros) / 1000

    @store_errors
    def pause(self, seconds: float) -> float:
        """Hold every worker back for `seconds` from now; returns the pause left (s)."""
        left_ms, _ = self._call(self._pause, max(0.0, seconds))
        return left_ms / 1000

    @staticmethod
    def _call(script: Script, *args: float) -> tuple[float, int]:
        result = script(keys=[keys.RATE_TAT, keys.RATE_PAUSE_UNTIL], args=list(args))
        if isinstance(result, list):
            return float(result[0]), int(result[1])
        return float(result), 1
