"""What the simulator saw: every request, counters by status, concurrency, and early retries.

An *early retry* is a Graph request that arrived before the `Retry-After` of an earlier 429
(or 503 with `Retry-After`) had elapsed, less a 50 ms tolerance for clock and scheduling
noise. It is checked two ways: per key (the same meeting came back too soon) and globally
(anyone called while the service had asked every caller to hold back: GRAPH.md says
requests sent while throttled still count against the app).
No locking here; the `SimulatorState` holds the lock.
"""

from __future__ import annotations

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


class Traffic:
    """Counters and logs about the requests served."""

    def __init__(self) -> None:
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.by_status: Counter[str] = Counter()  # Graph (and unknown paths), "POST 201"
        self.login_by_status: Counter[str] = Counter()  # login endpoints, "POST 200"
        self.in_flight = 0
        self.in_flight_max = 0
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
        if now < self.allowed_at_global - EARLY_TOLERANCE_S:
            self.early_global.append(EarlyRetry(key, now, self.allowed_at_global))
        if key is not None:
            allowed_at = self.allowed_at.get(key, 0.0)
            if now < allowed_at - EARLY_TOLERANCE_S:
                self.early.append(EarlyRetry(key, now, allowed_at))

    def leave(self) -> None:
        # A reset() while requests were in flight must not drive the count negative.
        self.in_flight = max(0, self.in_flight - 1)

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
