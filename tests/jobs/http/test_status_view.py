"""The status page's view of a batch: its one-word state and its throughput series."""

from __future__ import annotations

import pytest

from jobs.http.status_page import batch_page, batches_page
from jobs.http.status_view import batch_detail, batch_state, batch_summary, throughput_series
from worker.models import RowState
from worker.store.records import BatchStats, BatchStatus


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


# Redis' clock as a batch's read saw it: 2027-01-15T08:00:00Z.
READ_MS = 1_800_000_000_000


def at_work(
    quiet_s: float,
    *,
    running: int = 1,
    retrying: int = 0,
    paused: str = "",
    cancelled: bool = False,
    read_ms: int = READ_MS,
) -> BatchStatus:
    """A batch of 4 rows, 1 created, whose last row moved `quiet_s` ago; its rows in
    workers' hands since then, the others queued."""
    counts = dict.fromkeys(map(str, RowState), 0)
    counts.update(created=1, running=running, retrying=retrying)
    counts["queued"] = 3 - running - retrying
    moved_ms = READ_MS - int(quiet_s * 1000)
    return BatchStatus(
        "b",
        4,
        counts,
        paused=paused,
        cancelled=cancelled,
        moved_ms=moved_ms,
        oldest_working_ms=moved_ms if running + retrying else None,
        read_ms=read_ms,
        stall_after_s=120,
    )


@pytest.mark.parametrize(
    ("batch", "stalled"),
    [
        (at_work(121), True),
        (at_work(119), False),  # within the recovery window: a worker may still be at it
        (at_work(600, running=0, retrying=2), True),
        (at_work(600, running=0), False),  # rows only queued: behind another batch, say
        (at_work(600, paused="the last 20 rows failed"), False),
        (at_work(600, paused="cancelled by the operator", cancelled=True), False),
        (at_work(600, read_ms=0), False),  # not read from the store: no clock to say
    ],
)
def test_a_batch_is_stalled_when_rows_at_work_have_not_moved_for_the_window(
    batch: BatchStatus, stalled: bool
) -> None:
    assert batch.stalled is stalled
    assert batch.to_json_dict()["stalled"] is stalled


def test_the_status_pages_say_since_when_a_stalled_batch_has_not_moved() -> None:
    stalled, moving = at_work(300), at_work(5)
    note = "stalled: no row has moved since 07:55:00 UTC"
    stats = BatchStats(failures=[], finished_per_10s=[])
    assert note in batches_page([batch_summary(stalled)])
    assert note in batch_page(batch_detail(stalled, stats), None)
    shown = batches_page([batch_summary(moving)])
    assert "stalled" not in shown[shown.index("<main>") : shown.index("</main>")]
    summary = batch_summary(stalled)
    assert summary["state"] == "running"  # the page's states are as they were
    assert (summary["oldest_running_s"], summary["since_progress_s"]) == (300.0, 300.0)
    assert summary["last_progress_at"] == "2027-01-15T07:55:00.000Z"
