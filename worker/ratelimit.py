"""One adaptive rate limit for every worker on every machine, kept in Redis.

Each Graph request first reserves a slot with one Lua call (one round trip):

- **Pacing (GCRA).** `rate:tat` holds the theoretical arrival time; a slot is granted
  `1 / rate` after the previous one, so requests leave evenly spaced, never in bursts that
  a per-second window would count against us.
- **Shared pause.** A `429` (or `503`) with `Retry-After` sets `rate:pause_until` for all
  workers: requests sent while throttled still count against the app (GRAPH.md).
- **Adaptive rate (AIMD).** The same answer lowers the rate multiplicatively, to a share of
  what was actually granted in the last second the first time (so a configured cap far
  above the real limit is left in one step, not ten), to a share of the current rate
  after that; the rate then grows back additively with time, up to
  `MEETREG_RATE_LIMIT`. Against an unknown limit it settles just under it.

Time is Redis' clock (`TIME`), so machines need not agree on theirs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.commands.core import Script

from worker import keys
from worker.redis_conn import redis_now_ms, store_errors


@dataclass(frozen=True, slots=True)
class Tuning:
    """How the limiter adapts. Fractions are of the current rate."""

    # Pace at this share of the rate: arrival jitter must not push a window over the limit.
    margin: float = 0.97
    # On a 429, drop to this share of what was granted in the last second.
    decrease: float = 0.85
    # Grow back by this share of the rate set at the last decrease, per second.
    increase_per_s: float = 0.03
    # 429s within this long of a decrease are the same storm: decrease once.
    storm_ms: float = 250.0
    min_rate_per_s: float = 0.5


# The current rate: the rate set at the last decrease, grown since, capped. Shared by both
# scripts. `st` = HMGET state rate since sec count prev.
_CURRENT_RATE = """
local function current_rate(st, now, cap, growth)
  if not st[1] then return cap end
  local base = tonumber(st[1])
  return math.min(cap, base + base * growth * (now - tonumber(st[2])) / 1000)
end
local function granted_last_second(st, now)
  local sec = math.floor(now / 1000)
  local count, prev = 0, 0
  if st[3] and tonumber(st[3]) == sec then count, prev = tonumber(st[4]), tonumber(st[5])
  elseif st[3] and tonumber(st[3]) == sec - 1 then prev = tonumber(st[4]) end
  local into = (now % 1000) / 1000
  if prev == 0 then
    -- Nothing granted the second before: a run that just started. Scale what this
    -- second granted so far up to a rate.
    return count / math.max(into, 0.2)
  end
  return count + prev * (1 - into)
end
"""

# Reserving a slot, as a Lua function other scripts can include: the outcome store's
# scripts take the slot for a row's next Graph call in the same round trip as its write.
# Returns {wait_ms, reserved}: reserved=1: the slot is ours at now+wait_ms;
# reserved=0: a pause is on, wait wait_ms and ask again.
RESERVE_FUNCTION = (
    _CURRENT_RATE
    + """
local function reserve_slot(tat_key, pause_key, state_key, cap, burst, margin, growth)
  local t = redis.call('TIME')
  local now = t[1] * 1000 + t[2] / 1000
  local pause = tonumber(redis.call('GET', pause_key) or '0')
  if pause > now then return {tostring(pause - now), 0} end
  local st = redis.call('HMGET', state_key, 'rate', 'since', 'sec', 'count', 'prev')
  local rate = current_rate(st, now, tonumber(cap), tonumber(growth)) * tonumber(margin)
  local interval = 1000 / rate
  local tat = tonumber(redis.call('GET', tat_key) or '0')
  if tat < now then tat = now end
  local wait = tat - interval * (tonumber(burst) - 1) - now
  if wait < 0 then wait = 0 end
  local new_tat = tat + interval
  redis.call('SET', tat_key, tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  -- Count grants per second (this one and the last), for the next decrease.
  local sec = math.floor(now / 1000)
  if st[3] and tonumber(st[3]) == sec then
    redis.call('HINCRBY', state_key, 'count', 1)
  else
    local prev = 0
    if st[3] and tonumber(st[3]) == sec - 1 then prev = tonumber(st[4]) end
    redis.call('HSET', state_key, 'sec', sec, 'count', 1, 'prev', prev)
  end
  redis.call('EXPIRE', state_key, 86400)
  return {tostring(wait), 1}
end
"""
)

# KEYS: tat, pause, state. ARGV: cap, burst, margin, growth.
_RESERVE = (
    RESERVE_FUNCTION
    + """
return reserve_slot(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# KEYS: tat, pause, state. ARGV: retry_after_s, cap, growth, decrease, storm_ms, min_rate.
# Returns the pause left (ms) and the rate now in force.
_THROTTLED = (
    _CURRENT_RATE
    + """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local until_ms = now + tonumber(ARGV[1]) * 1000
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[2], tostring(until_ms), 'PX', math.ceil(until_ms - now) + 1000)
  current = until_ms
end
local st = redis.call('HMGET', KEYS[3], 'rate', 'since', 'sec', 'count', 'prev')
local rate = current_rate(st, now, tonumber(ARGV[2]), tonumber(ARGV[3]))
if not st[2] or now - tonumber(st[2]) >= tonumber(ARGV[5]) then
  -- The first time, the cap may be far above anything reachable (1,000/s configured,
  -- 80/s real): start from what was actually granted. Later, what was granted is
  -- depressed by the pauses themselves, so decrease from the current rate alone.
  if not st[1] then
    local granted = granted_last_second(st, now)
    if granted > 0 and granted < rate then rate = granted end
  end
  rate = math.max(tonumber(ARGV[6]), rate * tonumber(ARGV[4]))
  redis.call('HSET', KEYS[3], 'rate', tostring(rate), 'since', tostring(now))
  redis.call('EXPIRE', KEYS[3], 86400)
end
return {tostring(current - now), tostring(rate)}
"""
)


# KEYS: tat, pause, state. ARGV: cap, growth. The rate in force now (requests/s).
_RATE_NOW = (
    _CURRENT_RATE
    + """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local st = redis.call('HMGET', KEYS[3], 'rate', 'since', 'sec', 'count', 'prev')
return tostring(current_rate(st, now, tonumber(ARGV[1]), tonumber(ARGV[2])))
"""
)


class RateLimiter:
    """Blocks each caller until the shared, adaptive limit lets its request go.

    `rate_per_s` caps all workers together; `burst` requests may go back to back.
    """

    def __init__(
        self,
        client: redis.Redis,
        rate_per_s: float,
        *,
        burst: int = 1,
        tuning: Tuning | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cap_per_s = rate_per_s
        self.burst = max(1, burst)
        self.tuning = tuning or Tuning()
        self._sleep = sleep
        self._redis = client
        self._reserve: Script = client.register_script(_RESERVE)
        self._throttled: Script = client.register_script(_THROTTLED)
        self._rate_now: Script = client.register_script(_RATE_NOW)

    @property
    def slot_keys(self) -> list[str]:
        """The keys `RESERVE_FUNCTION` needs, for a script that includes it."""
        return list(_KEYS)

    def slot_args(self) -> list[float]:
        """`reserve_slot`'s arguments after its keys: cap, burst, margin, growth."""
        return [self.cap_per_s, self.burst, self.tuning.margin, self.tuning.increase_per_s]

    @store_errors
    def settle(self, wait_ms: float, reserved: bool) -> float:
        """Wait out a slot another script reserved (see `RESERVE_FUNCTION`); returns the
        seconds waited. Without a slot (a pause was on), or if a pause began meanwhile,
        take one the ordinary way."""
        waited = 0.0
        if wait_ms > 0:
            self._sleep(wait_ms / 1000)
            waited = wait_ms / 1000
        if reserved and (wait_ms == 0 or not self._paused()):
            return waited
        return waited + self.acquire()

    @store_errors
    def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited.

        A slot reserved for later is given up if a pause began while we waited for it:
        the request would land inside the window Graph asked everyone to keep quiet.
        """
        waited = 0.0
        while True:
            result = self._reserve(keys=_KEYS, args=self.slot_args())
            wait_ms, reserved = float(result[0]), int(result[1])
            if wait_ms > 0:
                self._sleep(wait_ms / 1000)
                waited += wait_ms / 1000
            if reserved and (wait_ms == 0 or not self._paused()):
                return waited

    @store_errors
    def throttled(self, retry_after_s: float) -> tuple[float, float]:
        """Graph said "slow down": pause every worker for `retry_after_s` and lower the rate.

        Returns the pause left (s) and the rate now in force (requests/s).
        """
        tuning = self.tuning
        result = self._throttled(
            keys=_KEYS,
            args=[
                max(0.0, retry_after_s),
                self.cap_per_s,
                tuning.increase_per_s,
                tuning.decrease,
                tuning.storm_ms,
                tuning.min_rate_per_s,
            ],
        )
        return float(result[0]) / 1000, float(result[1])

    @store_errors
    def rate_now(self) -> float:
        """The rate in force for all workers (requests/s), after decreases and regrowth."""
        return float(self._rate_now(keys=_KEYS, args=[self.cap_per_s, self.tuning.increase_per_s]))

    def _paused(self) -> bool:
        until = self._redis.get(keys.RATE_PAUSE_UNTIL)
        if until is None:
            return False
        return float(until) > redis_now_ms(self._redis)


_KEYS = [keys.RATE_TAT, keys.RATE_PAUSE_UNTIL, keys.RATE_STATE]
