"""What the status page shows of a batch, as plain data: its state in one word, and its
throughput as a series a chart can draw. The page and its JSON endpoints share it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from worker.store.records import BatchStats, BatchStatus

BUCKET_S = 10  # the outcome store counts finished rows per 10 s (worker.keys: stats)
MAX_POINTS = 120  # a longer run is drawn with wider intervals, not more points
RECENT_BATCHES = 50


def batch_state(status: BatchStatus) -> str:
    """running, paused, cancelled or finished (a cancelled batch stays `cancelled`)."""
    if status.cancelled:
        return "cancelled"
    if status.finished:
        return "finished"
    return "paused" if status.paused else "running"


def batch_summary(status: BatchStatus) -> dict[str, Any]:
    """`meetreg status --json`'s object, with the page's one-word state and the rows
    still to do (queued, running or retrying)."""
    pending = status.total - status.done
    return {**status.to_json_dict(), "state": batch_state(status), "pending": pending}


def batch_detail(status: BatchStatus, stats: BatchStats) -> dict[str, Any]:
    interval_s, points = throughput_series(stats.finished_per_10s)
    return {
        **batch_summary(status),
        "failures": [
            {"http_status": group.http_status, "code": group.code, "rows": group.rows}
            for group in stats.failures
        ],
        "throughput": {
            "interval_s": interval_s,
            "points": [{"t": start, "rows": rows} for start, rows in points],
        },
    }


def throughput_series(
    buckets: list[tuple[str, int]], max_points: int = MAX_POINTS
) -> tuple[int, list[tuple[str, int]]]:
    """Rows finished per interval, from the first finished row to the last, empty
    intervals included (a chart must show a pause as a dip, not join across it).

    `buckets` are (UTC ISO start of a 10 s bucket, rows), oldest first. The interval is
    the smallest multiple of 10 s that keeps the series within `max_points`. Returns
    (interval_s, [(UTC ISO start, rows)]).
    """
    if not buckets:
        return BUCKET_S, []
    starts = [(_parse(start), rows) for start, rows in buckets]
    first, last = starts[0][0], starts[-1][0]
    span = int((last - first).total_seconds()) // BUCKET_S + 1
    interval_s = BUCKET_S * -(-span // max_points)
    counts = [0] * (int((last - first).total_seconds()) // interval_s + 1)
    for start, rows in starts:
        counts[int((start - first).total_seconds()) // interval_s] += rows
    return interval_s, [
        (_format(first + timedelta(seconds=i * interval_s)), rows) for i, rows in enumerate(counts)
    ]


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _format(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
