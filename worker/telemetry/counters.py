"""The counters this process keeps: rows recorded final, Graph calls and their answers.

They are read by this process's /metrics (worker.telemetry.metrics), summed across
processes by whoever scrapes them. The store counts rows as it records them; nothing here
reads the store.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

from worker.models import FINAL_STATES, RowState

# No `*_created` series beside each counter: in the text format they are extra gauges
# nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream

ROWS = Counter("meetreg_rows_total", "Rows that reached a final state, by outcome.", ["outcome"])
GRAPH_REQUESTS = Counter(
    "meetreg_graph_requests_total",
    "Graph calls by method and answer status ('error': none came).",
    ["method", "status"],
)
GRAPH_SECONDS = Histogram(
    "meetreg_graph_request_seconds",
    "Time of each Graph call (a $batch item: its envelope's), in seconds.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
THROTTLED = Counter(
    "meetreg_graph_throttled_total", "Graph answers that said slow down (429, 503 Retry-After)."
)
for _state in sorted(FINAL_STATES):
    ROWS.labels(outcome=str(_state))  # every outcome's series exists from the start, at 0


def count_row(state: RowState, rows: int = 1) -> None:
    """`rows` rows' final state was recorded by this process (call once per recording)."""
    ROWS.labels(outcome=str(state)).inc(rows)


def count_graph_call(method: str, status: int | None, seconds: float, throttled: bool) -> None:
    """One Graph call came back (`status` None: without an answer)."""
    GRAPH_REQUESTS.labels(method=method, status=str(status) if status else "error").inc()
    GRAPH_SECONDS.observe(seconds)
    if throttled:
        THROTTLED.inc()
