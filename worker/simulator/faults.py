"""Which Graph requests go wrong, and how: scripts, the service's rate limit, random faults.

For every authenticated Graph request `FaultPlan.decide()` answers with a `Fault` or None
(answer normally). In order of precedence:

1. a script step queued for the request's key (a meeting id, or the UPN/id of a user lookup);
2. the service's own rate limit, a sliding one-second window over every caller, in which
   requests answered 429 count too (Graph: requests sent while throttled still count);
3. random faults drawn from one seeded RNG.

No locking here; the `SimulatorState` holds the lock.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from worker.simulator.config import FaultConfig
from worker.simulator.errors import format_retry_after

CommitAction = Literal["timeout", "500"]
SCRIPT_STATUSES = frozenset({400, 401, 403, 404, 429, 500, 502, 503, 504})
SERVER_ERRORS = (500, 502, 503, 504)
# The calls that change something, so can be done and then answered badly (ambiguous).
COMMITTING_METHODS = frozenset({"POST", "DELETE"})


@dataclass(frozen=True, slots=True)
class Fault:
    """What happens to one request instead of, or after, its normal answer.

    Neither set: answer normally (a script's `answer` step).
    `status` set: answer that status and do nothing (nothing is committed).
    `commit` set: do the operation, then stall past the client's timeout ("timeout") or
    answer 500 ("500") anyway.
    """

    status: int | None = None
    retry_after: str | None = None
    commit: CommitAction | None = None


def parse_step(step: Mapping[str, Any]) -> Fault:
    """Turn one script step (`{"status": 429, "retry_after": "0.5"}`,
    `{"action": "commit_then_timeout"}`, ...) into a Fault; raises ValueError if unknown."""
    action = step.get("action")
    if action is not None:
        if action == "answer":  # answer normally: lets a script reach a later request
            return Fault()
        if action == "commit_then_timeout":
            return Fault(commit="timeout")
        if action == "commit_then_500":
            return Fault(commit="500")
        raise ValueError(f"unknown script action {action!r}")
    status = step.get("status")
    if not isinstance(status, int) or status not in SCRIPT_STATUSES:
        raise ValueError(f"script status must be one of {sorted(SCRIPT_STATUSES)}, not {status!r}")
    retry_after = step.get("retry_after")
    if retry_after is not None:
        retry_after = str(retry_after)
        float(retry_after)  # a step with an unparseable Retry-After is a bug in the test
    elif status == 429:
        retry_after = "1"
    return Fault(status=status, retry_after=retry_after)


class FaultPlan:
    """The live fault configuration, the rate-limit window and the per-key scripts."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.window: deque[float] = deque()  # arrival times within the last second
        self.scripts: dict[str, deque[Fault]] = {}
        # Faults given out by chance or by the limit (not by scripts), by kind: "429 limit",
        # "503", "commit_then_timeout", ... The chaos test reports them.
        self.injected: Counter[str] = Counter()

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration; the RNG restarts from the new seed."""
        self.config = config
        self.rng = random.Random(config.seed)

    def script(self, key: str, steps: Iterable[Mapping[str, Any]]) -> None:
        """Queue steps for the next requests about `key`; raises ValueError for a bad step."""
        faults = [parse_step(step) for step in steps]
        self.scripts.setdefault(key, deque()).extend(faults)

    def clear(self) -> None:
        self.window.clear()
        self.scripts.clear()
        self.injected.clear()

    def decide(self, key: str | None, method: str, now: float) -> Fault | None:
        """The fault for one request arriving `now` (monotonic seconds), or None."""
        over_by_s = self._count(now)
        if key is not None and key in self.scripts:
            steps = self.scripts[key]
            fault = steps.popleft()
            if not steps:
                del self.scripts[key]
            return fault
        config = self.config
        if over_by_s is not None:
            self.injected["429 limit"] += 1
            return Fault(429, format_retry_after(over_by_s, config.retry_after_style))
        chance = self._random(method)
        if chance is not None:
            kind = f"commit_then_{chance.commit}" if chance.commit else str(chance.status)
            self.injected[kind] += 1
        return chance

    def _count(self, now: float) -> float | None:
        """Add a request to the window; if that is over the limit, the wait until it is not."""
        limit = self.config.rate_limit_per_s
        if limit is None:
            return None
        window = self.window
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        capacity = max(1, math.floor(limit))
        if len(window) <= capacity:
            return None
        # One more request fits once all but capacity-1 of those in the window have aged
        # out: the (len - capacity)-th oldest must be a second old.
        return window[len(window) - capacity] + 1.0 - now

    def _random(self, method: str) -> Fault | None:
        config = self.config
        rng = self.rng
        style = config.retry_after_style
        if config.throttle_probability and rng.random() < config.throttle_probability:
            return Fault(429, format_retry_after(config.throttle_retry_after_s, style))
        if config.error_5xx_probability and rng.random() < config.error_5xx_probability:
            status = rng.choice(SERVER_ERRORS)
            # 503 may carry Retry-After (Graph's throttling docs); the others never do.
            retry_after = (
                format_retry_after(config.throttle_retry_after_s, style) if status == 503 else None
            )
            return Fault(status, retry_after)
        if method not in COMMITTING_METHODS:
            return None
        if (
            config.commit_then_timeout_probability
            and rng.random() < config.commit_then_timeout_probability
        ):
            return Fault(commit="timeout")
        if config.commit_then_500_probability and rng.random() < config.commit_then_500_probability:
            return Fault(commit="500")
        return None
