import random

import pytest

from worker.protocol.backoff import backoff_s, retry_wait_s


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [
        (1, 0.5, 1.0),
        (2, 1.0, 2.0),
        (3, 2.0, 4.0),
        (6, 16.0, 32.0),
        (7, 30.0, 60.0),
        (30, 30.0, 60.0),
    ],
)
def test_backoff_doubles_per_attempt_within_half_jitter_and_stops_at_the_cap(
    attempt: int, low: float, high: float
) -> None:
    rng = random.Random(attempt)
    waits = [backoff_s(attempt, rng) for _ in range(200)]
    assert all(low <= w <= high for w in waits)
    assert len({round(w, 6) for w in waits}) > 100  # jittered, not one value for everyone


def test_retry_after_from_graph_wins_over_backoff_even_when_fractional() -> None:
    assert retry_wait_s(2.128, attempt=5, rng=random.Random(0)) == 2.128


def test_without_retry_after_the_wait_is_backoff_scaled_by_its_base() -> None:
    wait = retry_wait_s(None, attempt=3, rng=random.Random(0), base_s=0.1)
    assert 0.2 <= wait <= 0.4
