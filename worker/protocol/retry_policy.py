"""Whether a failed call is tried again, and after how long: one rule for the rows of a
batch (worker.protocol.steps), the dry run (jobs.dry_run) and the notification tasks
(worker.tasks), which differ only in the RetryPolicy they pass.

    sign-in failed (GraphAuthError)   -> give up: every call would fail the same way
    Graph refused (GraphPermanent)    -> give up at once
    throttled (429, 503 + Retry-After)-> retry after Retry-After (else backoff); with
                                         throttling_uses_attempts off, never gives up
    other transient (5xx, timeout)    -> retry after Retry-After, else backoff, until the
                                         attempt that failed is the policy's last
    StoreError                        -> transient with store_errors_transient, else give up
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from worker.errors import GraphAuthError, GraphTransient, StoreError
from worker.protocol.backoff import DEFAULT_BASE_S, retry_wait_s


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a caller retries: the knobs its decisions differ in."""

    max_attempts: int = 6  # attempts in all, the first one included
    backoff_base_s: float = DEFAULT_BASE_S
    rng: random.Random = field(default_factory=random.Random, compare=False)
    # Throttling is not the caller's fault, so a row never spends an attempt on it (docs/graph.md,
    # Throttling); a notification task counts every retry Celery makes.
    throttling_uses_attempts: bool = False
    # A notification task may wait for Redis to come back; a row's Redis failure is left to
    # the sweeper instead (the chunk is sent again).
    store_errors_transient: bool = False


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again after `wait_s`. `throttled`: Graph asked every caller to slow down, so
    every worker waits (the rate limiter's pause), not this caller alone."""

    wait_s: float
    throttled: bool = False


class GiveUpReason(StrEnum):
    PERMANENT = "permanent"  # Graph refused for good, or the error is not worth a retry
    SIGN_IN = "sign_in"  # no token, or a fresh one refused: every call would fail alike
    ATTEMPTS_USED_UP = "attempts_used_up"


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: GiveUpReason


def decide(error: Exception, attempt: int, policy: RetryPolicy) -> Retry | GiveUp:
    """What to do after `error` ended the `attempt`-th try (1-based; a throttled try
    counted apart when the policy does not let throttling use attempts, see Attempts)."""
    if isinstance(error, GraphAuthError):
        return GiveUp(GiveUpReason.SIGN_IN)
    if isinstance(error, GraphTransient):
        retry_after_s = error.retry_after_s
        throttled = error.throttled
    elif isinstance(error, StoreError) and policy.store_errors_transient:
        retry_after_s, throttled = None, False
    else:
        return GiveUp(GiveUpReason.PERMANENT)
    counted = not throttled or policy.throttling_uses_attempts
    if counted and attempt >= policy.max_attempts:
        return GiveUp(GiveUpReason.ATTEMPTS_USED_UP)
    wait_s = retry_wait_s(retry_after_s, attempt, policy.rng, base_s=policy.backoff_base_s)
    return Retry(wait_s, throttled=throttled)


@dataclass(slots=True)
class Attempts:
    """One caller's failed tries so far, counted as `decide` expects: throttled ones
    apart (their backoff grows on its own) unless the policy lets them use attempts."""

    failures: int = 0
    throttles: int = 0

    def decide(self, error: Exception, policy: RetryPolicy) -> Retry | GiveUp:
        if (
            isinstance(error, GraphTransient)
            and error.throttled
            and not policy.throttling_uses_attempts
        ):
            self.throttles += 1
            return decide(error, self.throttles, policy)
        self.failures += 1
        return decide(error, self.failures, policy)
