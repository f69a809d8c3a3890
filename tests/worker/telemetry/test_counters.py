"""This process's counters, as /metrics shows them: rows by outcome, Graph calls by answer."""

from __future__ import annotations

from prometheus_client import REGISTRY

from worker.models import FINAL_STATES, RowState
from worker.telemetry.counters import count_graph_call, count_row


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_outcome_has_a_series_from_the_start() -> None:
    for state in FINAL_STATES:
        assert REGISTRY.get_sample_value("meetreg_rows_total", {"outcome": str(state)}) is not None


def test_rows_are_counted_by_their_final_state() -> None:
    before = sample("meetreg_rows_total", outcome="created")
    count_row(RowState.CREATED)
    count_row(RowState.CREATED, rows=4)
    assert sample("meetreg_rows_total", outcome="created") == before + 5


def test_a_graph_call_is_counted_by_its_answer_timed_and_a_slow_down_counted() -> None:
    before = {
        "post 429": sample("meetreg_graph_requests_total", method="POST", status="429"),
        "get error": sample("meetreg_graph_requests_total", method="GET", status="error"),
        "throttled": sample("meetreg_graph_throttled_total"),
        "timed": sample("meetreg_graph_request_seconds_count"),
        "seconds": sample("meetreg_graph_request_seconds_sum"),
    }
    count_graph_call("POST", 429, 0.25, throttled=True)
    count_graph_call("GET", None, 1.0, throttled=False)

    assert sample("meetreg_graph_requests_total", method="POST", status="429") == (
        before["post 429"] + 1
    )
    assert sample("meetreg_graph_requests_total", method="GET", status="error") == (
        before["get error"] + 1
    )
    assert sample("meetreg_graph_throttled_total") == before["throttled"] + 1
    assert sample("meetreg_graph_request_seconds_count") == before["timed"] + 2
    assert sample("meetreg_graph_request_seconds_sum") == before["seconds"] + 1.25
