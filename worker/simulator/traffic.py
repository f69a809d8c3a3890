"""What the simulator saw: every request, counters by status, concurrency, arrival times,
and early retries.

An *early retry* is a Graph request that arrived before the `Retry-After` of an earlier 429
(or 503 with `Retry-After`) had elapsed, less a 50 ms tolerance for clock and scheduling
noise. It is checked two ways: per key (the same meeting came back too soon) and globally
(anyone called while the service had asked every caller to hold back: Graph's docs say
requests sent while throttled still count against the app).
Arrival times are kept for the benchmarks (`bench/`), which measure at the simulator what
rate meetreg's workers achieve together: `Arrivals` answers the sustained rate and the
busiest one-second window from them.
No locking here; the `SimulatorState` holds the lock.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

from worker.simulator.config import REQUEST_LOG_SIZE

EARLY_TOLERANCE_S = 0.05
_RATE_HISTORY_S = 60  # seconds of per-second counts kept for `requests_per_s`


@dataclass(frozen=True, slots=True)
class EarlyRetry:
    """A request that arrived `early_by_s` before it was allowed to (monotonic times)."""

    key: str | None
    arrived_at: float
    allowed_at: float

    @property
    def early_by_s(self) -> float:
        return self.allowed_at - self.arrived_at

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "early_by_s": round(self.early_by_s, 4)}


@dataclass(frozen=True, slots=True)
class Arrivals:
    """When Graph requests arrived: monotonic times, oldest first.

    The log keeps the latest `REQUEST_LOG_SIZE` arrivals; `dropped` says how many earlier
    ones it no longer holds (for `between()`: how many may be missing from its window).
    """

    times: tuple[float, ...]
    dropped: int = 0

    @property
    def count(self) -> int:
        return len(self.times)

    def between(self, start: float, end: float = float("inf")) -> Arrivals:
        """Those that arrived at or after `start` and before `end`."""
        low = bisect_left(self.times, start)
        high = bisect_left(self.times, end)
        # Only a window reaching back past the oldest logged arrival can miss dropped ones.
        return Arrivals(self.times[low:high], self.dropped if low == 0 else 0)

    def span_s(self) -> float:
        """Seconds from the first arrival to the last; 0 with fewer than two."""
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0

    def sustained_per_s(self) -> float | None:
        """The rate between the first arrival and the last ((n-1) gaps over that span);
        None when fewer than two arrived or all at once."""
        span_s = self.span_s()
        return (len(self.times) - 1) / span_s if span_s > 0 else None

    def busiest(self, window_s: float = 1.0) -> int:
        """The most arrivals in any window of `window_s` seconds, wherever it starts (the
        simulator's own rate limit counts the same way: arrivals less than 1 s apart)."""
        times = self.times
        best = 0
        first = 0
        for last, arrived_at in enumerate(times):
            while arrived_at - times[first] >= window_s:
                first += 1
            best = max(best, last - first + 1)
        return best

    def per_second(self) -> list[int]:
        """Arrivals in each whole second from the first arrival on."""
        if not self.times:
            return []
        start = self.times[0]
        counts = Counter(int(arrived_at - start) for arrived_at in self.times)
        return [counts.get(second, 0) for second in range(max(counts) + 1)]


class Traffic:
    """Counters and logs about the requests served."""

    def __init__(self) -> None:
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.by_status: Counter[str] = Counter()  # Graph (and unknown paths), "POST 201"
        self.login_by_status: Counter[str] = Counter()  # login endpoints, "POST 200"
        self.in_flight = 0
        self.in_flight_max = 0
        self.envelopes_in_flight = 0  # `$batch` requests, whose items count above
        self.envelopes_in_flight_max = 0
        self.arrival_times: deque[float] = deque(maxlen=REQUEST_LOG_SIZE)
        self.arrivals = 0  # all time, including those the log no longer holds
        self.per_second: deque[list[int]] = deque(maxlen=_RATE_HISTORY_S)  # [second, count]
        self.throttles: deque[tuple[str | None, float, float]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.allowed_at: dict[str, float] = {}  # key -> end of its latest Retry-After
        self.allowed_at_global = 0.0
        self.early: deque[EarlyRetry] = deque(maxlen=REQUEST_LOG_SIZE)
        self.early_global: deque[EarlyRetry] = deque(maxlen=REQUEST_LOG_SIZE)

    def arrive(self, key: str | None, now: float) -> None:
        """A Graph request came in: count it in flight and check it against Retry-Afters."""
        self.in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self.in_flight)
        self.arrival_times.append(now)
        self.arrivals += 1
        if now < self.allowed_at_global - EARLY_TOLERANCE_S:
            self.early_global.append(EarlyRetry(key, now, self.allowed_at_global))
        if key is not None:
            allowed_at = self.allowed_at.get(key, 0.0)
            if now < allowed_at - EARLY_TOLERANCE_S:
                self.early.append(EarlyRetry(key, now, allowed_at))

    def arrival_log(self) -> Arrivals:
        """A copy of the arrival log."""
        times = tuple(self.arrival_times)
        return Arrivals(times, self.arrivals - len(times))

    def leave(self) -> None:
        # A reset() while requests were in flight must not drive the count negative.
        self.in_flight = max(0, self.in_flight - 1)

    def envelope_arrives(self) -> None:
        self.envelopes_in_flight += 1
        self.envelopes_in_flight_max = max(self.envelopes_in_flight_max, self.envelopes_in_flight)

    def envelope_leaves(self) -> None:
        self.envelopes_in_flight = max(0, self.envelopes_in_flight - 1)

    def record(
        self,
        method: str,
        raw_path: str,
        status: int,
        now: float,
        *,
        graph: bool = True,
        key: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        """A response went out; `retry_after_s` when it told the caller to wait."""
        self.requests.append((method, raw_path, status))
        counter = self.by_status if graph else self.login_by_status
        counter[f"{method} {status}"] += 1
        if not graph:
            return
        second = int(now)
        if self.per_second and self.per_second[-1][0] == second:
            self.per_second[-1][1] += 1
        else:
            self.per_second.append([second, 1])
        if retry_after_s is not None:
            self.throttles.append((key, now, retry_after_s))
            until = now + retry_after_s
            self.allowed_at_global = max(self.allowed_at_global, until)
            if key is not None:
                self.allowed_at[key] = max(self.allowed_at.get(key, 0.0), until)

    def requests_per_s(self, now: float, seconds: int = 10) -> list[int]:
        """Graph responses per second over the last `seconds` completed seconds, oldest first."""
        counts = {second: count for second, count in self.per_second}
        current = int(now)
        return [counts.get(second, 0) for second in range(current - seconds, current)]
