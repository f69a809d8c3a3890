"""How long to wait before trying again, as pure functions: Graph's `Retry-After`, else
capped exponential backoff with jitter. Whether to try again is worker.protocol.retry_policy's."""

from __future__ import annotations

import random

DEFAULT_BASE_S = 1.0
DEFAULT_CAP_S = 60.0


def backoff_s(
    attempt: int,
    rng: random.Random,
    *,
    base_s: float = DEFAULT_BASE_S,
    cap_s: float = DEFAULT_CAP_S,
) -> float:
    """Exponential backoff with "equal jitter" for the `attempt`-th retry (1-based).

    Half the delay is fixed, so a retry never comes back at once; half is random, so
    workers that failed together do not retry together.
    """
    ceiling = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_wait_s(
    retry_after_s: float | None, attempt: int, rng: random.Random, *, base_s: float = DEFAULT_BASE_S
) -> float:
    """Graph's `Retry-After` when it gave one (Graph asks callers to honour it), else
    backoff."""
    if retry_after_s is not None:
        return retry_after_s
    return backoff_s(attempt, rng, base_s=base_s)
