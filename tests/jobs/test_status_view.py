"""The status page's view of a batch: its one-word state and its throughput series."""

from __future__ import annotations

import pytest

from jobs.status_view import batch_state, throughput_series
from worker.models import RowState
from worker.store import BatchStatus


def status(done: int, total: int = 4, paused: str = "", cancelled: bool = False) -> BatchStatus:
    counts = dict.fromkeys(map(str, RowState), 0)
    counts["created"] = done
    counts["queued"] = total - done
    return BatchStatus("b", total, counts, paused=paused, cancelled=cancelled)


@pytest.mark.parametrize(
    ("batch", "state"),
    [
        (status(2), "running"),
        (status(4), "finished"),
        (status(2, paused="the last 20 rows failed"), "paused"),
        (status(2, paused="cancelled by the operator", cancelled=True), "cancelled"),
        (status(4, paused="cancelled by the operator", cancelled=True), "cancelled"),
        (status(0, total=0), "finished"),
    ],
)
def test_batch_state(batch: BatchStatus, state: str) -> None:
    assert batch_state(batch) == state


@pytest.mark.parametrize(
    ("buckets", "max_points", "expected"),
    [
        ([], 120, (10, [])),
        ([("2026-01-01T10:00:10Z", 5)], 120, (10, [("2026-01-01T10:00:10Z", 5)])),
        # A quiet 10 s in between is drawn as zero, not skipped.
        (
            [("2026-01-01T10:00:00Z", 5), ("2026-01-01T10:00:20Z", 7)],
            120,
            (
                10,
                [
                    ("2026-01-01T10:00:00Z", 5),
                    ("2026-01-01T10:00:10Z", 0),
                    ("2026-01-01T10:00:20Z", 7),
                ],
            ),
        ),
        # Five buckets in at most three points: 20 s intervals, rows added up.
        (
            [(f"2026-01-01T10:00:{s:02d}Z", 1) for s in (0, 10, 20, 30, 40)],
            3,
            (
                20,
                [
                    ("2026-01-01T10:00:00Z", 2),
                    ("2026-01-01T10:00:20Z", 2),
                    ("2026-01-01T10:00:40Z", 1),
                ],
            ),
        ),
    ],
)
def test_throughput_series(
    buckets: list[tuple[str, int]], max_points: int, expected: tuple[int, list[tuple[str, int]]]
) -> None:
    assert throughput_series(buckets, max_points) == expected


def test_a_day_long_batch_stays_within_the_points() -> None:
    buckets = [("2026-01-01T00:00:00Z", 1), ("2026-01-01T23:59:50Z", 1)]
    interval_s, points = throughput_series(buckets, 120)
    assert len(points) <= 120
    assert interval_s == 720
    assert sum(rows for _, rows in points) == 2
