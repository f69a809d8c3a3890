"""The one retry rule (worker.protocol.retry_policy), as a table: error x attempt x
Retry-After -> decision, for the rows' policy and the notification tasks'."""

from __future__ import annotations

import random

import pytest

from worker.errors import GraphAuthError, GraphPermanent, GraphTransient, StoreError
from worker.protocol.retry_policy import (
    Attempts,
    GiveUp,
    GiveUpReason,
    Retry,
    RetryPolicy,
    decide,
)


def rows_policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, backoff_base_s=1.0, rng=random.Random(0))


def tasks_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=13,
        backoff_base_s=5.0,
        rng=random.Random(0),
        throttling_uses_attempts=True,
        store_errors_transient=True,
    )


def server_error(retry_after_s: float | None = None) -> GraphTransient:
    return GraphTransient("boom", status=503, retry_after_s=retry_after_s)


def throttled(retry_after_s: float | None = None) -> GraphTransient:
    return GraphTransient("slow down", status=429, retry_after_s=retry_after_s, throttled=True)


USED_UP = GiveUp(GiveUpReason.ATTEMPTS_USED_UP)
PERMANENT = GiveUp(GiveUpReason.PERMANENT)
SIGN_IN = GiveUp(GiveUpReason.SIGN_IN)


@pytest.mark.parametrize(
    ("policy", "error", "attempt", "expected"),
    [
        # Retry-After is honoured exactly, for a 5xx and for throttling
        (rows_policy, server_error(2.5), 1, Retry(2.5)),
        (rows_policy, throttled(7.0), 1, Retry(7.0, throttled=True)),
        # throttling never uses up a row's attempts, however many
        (rows_policy, throttled(7.0), 50, Retry(7.0, throttled=True)),
        # the last attempt gives up, Retry-After or not
        (rows_policy, server_error(2.5), 2, Retry(2.5)),
        (rows_policy, server_error(2.5), 3, USED_UP),
        (rows_policy, server_error(), 3, USED_UP),
        # Graph refused for good: at once
        (rows_policy, GraphPermanent("no", status=403), 1, PERMANENT),
        (rows_policy, GraphPermanent("conflict", status=409), 1, PERMANENT),
        # sign-in failed: given up (the row pauses its batch, the dry run stops)
        (rows_policy, GraphAuthError("bad secret", status=401), 1, SIGN_IN),
        (tasks_policy, GraphAuthError("bad secret", status=401), 1, SIGN_IN),
        # a row does not wait for Redis; a notification task does
        (rows_policy, StoreError("down"), 1, PERMANENT),
        (tasks_policy, StoreError("down"), 12, "retry"),
        (tasks_policy, StoreError("down"), 13, USED_UP),
        # a notification task counts throttling as a retry like any other
        (tasks_policy, throttled(30.0), 12, Retry(30.0, throttled=True)),
        (tasks_policy, throttled(30.0), 13, USED_UP),
        (tasks_policy, GraphPermanent("gone", status=404), 1, PERMANENT),
    ],
)
def test_the_decision_for_each_error_attempt_and_retry_after(
    policy: object, error: Exception, attempt: int, expected: object
) -> None:
    assert callable(policy)
    decision = decide(error, attempt, policy())
    if expected == "retry":
        assert isinstance(decision, Retry)
    else:
        assert decision == expected


@pytest.mark.parametrize(
    ("policy", "attempt", "low", "high"),
    [
        (rows_policy, 1, 0.5, 1.0),
        (rows_policy, 2, 1.0, 2.0),
        (tasks_policy, 1, 2.5, 5.0),
        (tasks_policy, 3, 10.0, 20.0),
    ],
)
def test_without_retry_after_the_wait_is_jittered_backoff_from_the_policys_base(
    policy: object, attempt: int, low: float, high: float
) -> None:
    assert callable(policy)
    decision = decide(server_error(), attempt, policy())
    assert isinstance(decision, Retry)
    assert low <= decision.wait_s <= high


def test_attempts_count_throttling_apart_so_it_neither_uses_up_nor_resets_the_others() -> None:
    policy = rows_policy()
    attempts = Attempts()
    assert isinstance(attempts.decide(server_error(1.0), policy), Retry)
    for _ in range(10):
        assert attempts.decide(throttled(1.0), policy) == Retry(1.0, throttled=True)
    assert isinstance(attempts.decide(server_error(1.0), policy), Retry)
    assert attempts.decide(server_error(1.0), policy) == USED_UP  # the third failure
    assert (attempts.failures, attempts.throttles) == (3, 10)


def test_backoff_for_throttling_without_retry_after_grows_with_the_throttles() -> None:
    attempts, policy = Attempts(), rows_policy()
    waits = []
    for _ in range(4):
        decision = attempts.decide(throttled(), policy)
        assert isinstance(decision, Retry) and decision.throttled
        waits.append(decision.wait_s)
    assert 4.0 <= waits[-1] <= 8.0  # the 4th throttle: base 1 s doubled three times
