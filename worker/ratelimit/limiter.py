"""One adaptive rate limit for every worker on every machine, kept in Redis.

Graph publishes no limit for this API: meetreg is given a cap
(`MEETREG_RATE_LIMIT`) and finds the real limit from Graph's 429s. Each request first
reserves a slot with one Lua call, in the same round trip as the row's store write when
there is one (see `RESERVE_SLOT`). Time is Redis' clock (`TIME`), so machines need not
agree on theirs; `SlotClock` turns a slot's time into this process's clock.

- **Pacing (GCRA).** `rate:tat` holds the theoretical arrival time; slots are
  `1 / (margin x rate)` apart, so requests leave evenly spaced, never in bursts that a
  per-second window would count against us. The margin absorbs arrival jitter. A slot
  asked for in a pause comes after it (callers wake one by one, not 256 at once); a caller
  that wakes too late for its slot gives it up and takes a new one, so the requests that
  missed their slots in a stall do not all go at once when it ends.
- **Slot log.** Every slot is logged for a few seconds (`rate:log`), so a 429 can be
  judged against what the service's last second held when that request left: Graph (like
  the simulator) counts every request it received in a sliding window, 429s included.
- **Shared pause.** A `429` (or `503`) with `Retry-After` sets `rate:pause_until` for all
  workers: requests sent while throttled still count against the app. A pause is only
  ever extended. A request about to leave checks it in this process's `PauseWatch`,
  which one thread keeps fresh, not with a round trip of its own.
- **Finding the rate.** With nothing learned, *slow start*: the rate starts at
  `start_rate_per_s` and doubles every `doubling_s` up to the cap, so a cap far above the
  real limit is not hit with a storm of 256 threads before the first 429 comes back. A 429
  is then read in one of three ways:

  1. *Measured.* The second before the refused request held clearly fewer slots than our
     pace: the service's limit is about that count. The rate becomes it, and the 429s of
     the same storm (requests that left before this decision) refine it.
  2. *Jitter.* It held about our pace: we sit just under the limit and a clump of
     arrivals tipped one window over. The pause is the cost. At the cap (the limit is
     known) the rate stays; below it (a rate we found may be a little high) it drops by
     `jitter_decrease`. Never 15%, which took seconds to grow back.
  3. *Repeated.* Another such 429 within `repeat_s` after the last pause ended: the limit
     is below our pace over a window longer than a second, or it moved. Each repeat
     doubles the cut (2%, 4%, 8%, ...): multiplicative decrease, as in AIMD.

  After a decision the rate holds for `hold_s`, then grows by `probe_per_s` a second (a
  limit may rise), up to the cap. After `idle_s` without a request, what was learned is
  forgotten and slow start begins again: the limit may have moved meanwhile.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import redis
from redis.commands.core import Script

from worker import keys
from worker.errors import StoreError
from worker.ratelimit.slot_clock import SlotClock
from worker.redis.connection import store_errors
from worker.redis.lua import LuaFile, lua_script


class Throttled(NamedTuple):
    """What `RateLimiter.throttled` did."""

    pause_s: float  # the shared pause left
    rate_per_s: float  # the rate now in force, before the pacing margin
    reading: str  # "measured", "echo" (left before the last decision), or the cut: "0.02"


@dataclass(frozen=True, slots=True)
class Tuning:
    """How the limiter paces and adapts. Fractions are of the rate in force."""

    # Pace at this share of the rate: arrival jitter must not push a window over the limit.
    # A window can hold the pace times (1 s + the spread of sends after their slots), and
    # `$batch`'s linger (worker/graph/batching.py) is most of that spread. Measured
    # (bench/, a known 200/s limit, quiet hour): with a 25 ms linger, 0.96 peaked at 198
    # requests in a second and 0.97 at 200, one short of a 429 (each a 1 s pause for
    # every worker); with a 10 ms linger 0.97 peaks at 197 (docs/performance.md).
    margin: float = 0.97
    # Slow start: the first rate (if the cap is higher) and how fast it doubles. At 100 ms
    # latency a 429 comes back before the rate has grown by a third.
    start_rate_per_s: float = 100.0
    doubling_s: float = 0.25
    # A 429 whose second held fewer than this share of our pace is a measurement.
    measured_below: float = 0.8
    # Fewer slots than this in that second say nothing about the service's limit (another
    # app may use it up): read as jitter or a repeat instead.
    min_measured: int = 5
    # The cut of a 429 at our own pace below the cap (none at it); each repeat within
    # repeat_s after the last pause ended doubles it. A limit over a longer window strikes
    # again at once; jitter seldom does (seconds apart at a 200/s limit, 2 busy cores).
    jitter_decrease: float = 0.02
    repeat_s: float = 2.0
    # After a decision: hold, then grow by this share of the decided rate per second.
    hold_s: float = 30.0
    probe_per_s: float = 0.01
    # Forget what was learned after this long without a request.
    idle_s: float = 60.0
    # A thread that wakes this long after its slot takes a new one (see RateLimiter._keep).
    # The requests a stall lets go at once are at most late_s x rate: kept under the
    # margin's headroom, (1 - margin) x 1 s = 30 ms, they cannot tip a second over.
    late_s: float = 0.02
    # How often each process reads the shared pause in the background (see PauseWatch).
    pause_poll_s: float = 0.02
    # How long slots stay in the log: a 429 answered later than this less 1 s after its
    # slot is not measured.
    log_s: float = 5.0
    min_rate_per_s: float = 0.5

    def args(self) -> list[float]:
        """The Lua scripts' tuning arguments, in the order `tuning()` reads them."""
        return [
            self.margin,
            self.start_rate_per_s,
            self.doubling_s * 1000,
            self.measured_below,
            self.min_measured,
            self.jitter_decrease,
            self.repeat_s * 1000,
            self.hold_s * 1000,
            self.probe_per_s,
            self.idle_s * 1000,
            self.log_s * 1000,
            self.min_rate_per_s,
        ]


def _lua(name: str) -> LuaFile:
    return LuaFile("worker.ratelimit", name)


# Reserving a slot, as Lua other scripts include before their own body: the outcome
# store's scripts take the slot for a row's next Graph call in the same round trip as its
# write (see reserve_slot_function.lua).
RESERVE_SLOT = (_lua("limiter_functions"), _lua("reserve_slot_function"))
_RESERVE = lua_script(*RESERVE_SLOT, _lua("reserve"))
_THROTTLED = lua_script(_lua("limiter_functions"), _lua("throttled"))
_RATE_NOW = lua_script(_lua("limiter_functions"), _lua("rate_now"))
_PAUSE_LEFT = lua_script(_lua("pause_left"))


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
        self._pause_left: Script = client.register_script(_PAUSE_LEFT)
        self._pause = PauseWatch(self._read_pause_s, self.tuning.pause_poll_s)
        self._clock = SlotClock()

    def close(self) -> None:
        """Stop the background read of the shared pause (before the Redis client closes)."""
        self._pause.stop()

    @property
    def slot_keys(self) -> list[str]:
        """The keys `RESERVE_SLOT` needs, for a script that includes it."""
        return list(_KEYS)

    def slot_args(self) -> list[float]:
        """`reserve_slot`'s arguments after its keys: burst, cap, then the tuning."""
        return [self.burst, self.cap_per_s, *self.tuning.args()]

    def slot_request(self) -> tuple[list[str], list[float]]:
        """Keys and arguments for a store script that reserves a slot as it writes."""
        return (self.slot_keys, self.slot_args())

    @store_errors
    def settle(
        self, wait_ms: float, reserved: bool, slot_id: str = "", asked_at: float | None = None
    ) -> float:
        """Wait for the slot `slot_id` another script reserved (see `RESERVE_SLOT`),
        asked for at `asked_at` (monotonic s; default now). If a pause began meanwhile, or
        the slot was missed, take a new one. Returns the slot's time (monotonic s)."""
        asked_at = time.monotonic() if asked_at is None else asked_at
        due = self._keep(wait_ms, reserved, slot_id, asked_at)
        if due is not None:
            return due
        return self.acquire(given_up=slot_id if reserved else "")

    @store_errors
    def acquire(self, given_up: str = "") -> float:
        """Wait for a slot of our own, giving up the slot `given_up` if any; returns the
        slot's time (monotonic s)."""
        while True:
            asked_at = time.monotonic()
            wait_ms, reserved, slot_id = self._reserve(
                keys=_KEYS, args=[*self.slot_args(), given_up]
            )
            slot_id = slot_id.decode() if isinstance(slot_id, bytes) else str(slot_id)
            due = self._keep(float(wait_ms), bool(int(reserved)), slot_id, asked_at)
            if due is not None:
                return due
            given_up = slot_id

    def _keep(self, wait_ms: float, reserved: bool, slot_id: str, asked_at: float) -> float | None:
        """Sleep until the slot `slot_id`, reserved by a call made at `asked_at`, is due
        (see SlotClock); its time (monotonic s) if the request may go now, else None.

        It is given up if a pause began while we waited: the request would land inside
        the window Graph asked everyone to keep quiet. And if this thread woke too late
        for it: requests that missed their slots in a stall would all go at once when it
        ends, a clump over the limit.
        """
        due = self._clock.due(max(0.0, wait_ms), slot_id, asked_at)
        left_s = due - time.monotonic()
        if left_s > 0:
            self._sleep(left_s)
        if not reserved:
            return None
        if wait_ms <= 0:  # not paced: the rate is not what holds us back
            return due
        if time.monotonic() - due <= self.tuning.late_s and not self._pause.paused():
            return due
        return None

    @store_errors
    def throttled(
        self, retry_after_s: float, slot_ago_s: float = 0.0, *, about_rate: bool = True
    ) -> Throttled:
        """Graph said "slow down" to a request whose slot was `slot_ago_s` ago: pause every
        worker for `retry_after_s` and adapt the rate (see the module's docstring).

        Only a 429 speaks of our rate. A 503 with `Retry-After` (`about_rate=False`) is a
        busy service: every worker honours its pause, but the rate stays. Read as a 429,
        a few random 503s cut the rate again and again (each soon after the last pause, so
        deeper each time): the chaos test's batch fell to 11 requests/s.
        """
        asked_at = time.monotonic()
        pause_ms, rate, reading = self._throttled(
            keys=[*_KEYS, keys.RATE_STORM],
            args=[
                max(0.0, retry_after_s),
                max(0.0, slot_ago_s) * 1000,
                self.cap_per_s,
                *self.tuning.args(),
                1 if about_rate else 0,
            ],
        )
        reading = reading.decode() if isinstance(reading, bytes) else str(reading)
        self._pause.extend(float(pause_ms) / 1000, asked_at)  # this process knows at once
        return Throttled(float(pause_ms) / 1000, float(rate), reading)

    @store_errors
    def rate_now(self) -> float:
        """The rate in force for all workers (requests/s), before the pacing margin."""
        return float(self._rate_now(keys=_KEYS, args=[self.cap_per_s, *self.tuning.args()]))

    @store_errors
    def _read_pause_s(self) -> float:
        return float(self._pause_left(keys=[keys.RATE_PAUSE_UNTIL])) / 1000


class PauseWatch:
    """This process's view of the shared pause, for a request about to leave.

    Checking Redis there cost a round trip per paced request, and under 256 threads that
    round trip's delay came between a request's slot and its sending (the known-limit
    benchmark still sees clumps without it: see docs/performance.md). Instead one
    background thread reads the pause every `poll_s` while requests are being checked,
    and stops after `idle_s` without one. A pause another process begins is seen within
    `poll_s`: less than the requests already on the wire when its 429 came back. When
    the view is stale (no watcher yet, or it stalled) the check reads Redis itself.
    """

    def __init__(
        self, read_pause_s: Callable[[], float], poll_s: float, idle_s: float = 5.0
    ) -> None:
        self._read_pause_s = read_pause_s
        self.poll_s = poll_s
        self.idle_s = idle_s
        self._until = 0.0  # monotonic: the end of the latest pause known here
        self._read_at = -math.inf  # monotonic: when Redis was last read
        self._asked_at = 0.0
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()

    def stop(self) -> None:
        """No more reading: the process is closing its Redis connections, and a read after
        that would open a new one nobody closes."""
        self._stopped.set()
        with self._lock:
            watcher = self._watcher
        if watcher is not None:
            watcher.join(timeout=5)

    def paused(self) -> bool:
        now = time.monotonic()
        self._asked_at = now
        if now - self._read_at > 2 * self.poll_s:
            self._refresh()
            self._watch()
        return time.monotonic() < self._until

    def extend(self, pause_s: float, asked_at: float) -> None:
        """A pause of `pause_s` from Redis' answer to a call made at `asked_at` (monotonic):
        counted from the call, not the answer, so it ends no later than in Redis."""
        self._until = max(self._until, asked_at + pause_s)

    def _refresh(self) -> None:
        read_at = time.monotonic()
        self.extend(self._read_pause_s(), read_at)  # a pause is only ever extended
        self._read_at = read_at

    def _watch(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(
                    target=self._poll, name="meetreg-pause-watch", daemon=True
                )
                self._watcher.start()

    def _poll(self) -> None:
        while time.monotonic() - self._asked_at < self.idle_s:
            try:
                self._refresh()
            except StoreError:  # Redis away: checks read it themselves, and say so
                return
            if self._stopped.wait(self.poll_s):
                return


_KEYS = [keys.RATE_TAT, keys.RATE_PAUSE_UNTIL, keys.RATE_STATE, keys.RATE_LOG]
